// Issue 15 item 4 (readdirplus): a directory page with each entry's NodeInfo from one range read,
// so a walk costs one request per batch of entries, not a lookup per entry. The pages of a big
// directory, concatenated, are the listing `readdir` gives (in name order), attributes included;
// a page's work does not grow with the directory nor with the pages before it.
import t from 'tap';
import { Library } from '../src/store/library.js';
import type { DirEntry } from '../src/store/types.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { countSql } from './helpers/sql-counter.js';
import { openLib, put, tempDir } from './helpers/store.js';
import { rmSync } from 'node:fs';

const byName = (a: DirEntry, b: DirEntry) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));

function pages(space: { readdirPlus(id: number, after: string | undefined, limit: number): DirEntry[] }, id: number, limit: number): DirEntry[][] {
  const out: DirEntry[][] = [];
  let after: string | undefined;
  for (;;) {
    const page = space.readdirPlus(id, after, limit);
    if (page.length > 0) out.push(page);
    if (page.length < limit) return out;
    after = page[page.length - 1]!.name;
  }
}

t.test('issue 15: readdirPlus pages are readdir in name order, NodeInfo included; the root lists .trash in its place', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d/sub1', { parents: true });
  space.mkdir('d/sub2');
  await put(lib, space, 'f.txt', 'hello', { conflict: 'ask' });
  space.createLink('link', 'f.txt');
  space.symlink('path-link', 'nowhere');
  space.link('f.txt', 'hard.txt'); // a second name (L17): nlink 2 on both
  for (const n of ['!first', '-dash', '.hidden', '.u', 'zz', 'é', '日本']) space.mkdir(n);
  const root = space.root;
  const want = space.readdir(root).sort(byName);
  for (const limit of [1, 2, 3, 5, 100]) {
    const got = pages(space, root, limit);
    t.same(got.flat(), want, `limit ${limit}: the same entries and infos as readdir`);
    t.ok(got.every((p) => p.length <= limit), 'no page over its limit');
  }
  const page = space.readdirPlus(root, undefined, 100);
  t.same(page.map((e) => e.name).indexOf('.trash'), want.map((e) => e.name).indexOf('.trash'), '.trash where its name sorts');
  t.equal(page.find((e) => e.name === 'd')!.info.nlink, 4, 'a directory\'s nlink (2 + 2 subdirectories) from the page read');
  t.equal(page.find((e) => e.name === 'link')!.info.link?.readlink, 'f.txt', 'a bound link\'s answer');
  t.equal(page.find((e) => e.name === 'f.txt')!.info.size, 5);
  t.equal(page.find((e) => e.name === 'hard.txt')!.info.nlink, 2, 'a file\'s nlink counts its names (L17), from the page read');
  t.same(space.readdirPlus(space.stat('d').id, 'sub1', 10).map((e) => e.name), ['sub2'], 'after a name');
  t.same(space.readdirPlus(space.stat('d').id, 'zzz', 10), [], 'after the last: nothing');
  const binned = space.unlink('f.txt').recycledItemId;
  t.equal(binned, undefined, 'f.txt had another name: nothing went to the bin (L18)');
  const item = space.unlink('hard.txt').recycledItemId;
  t.same(space.readdirPlus(space.trash, undefined, 10).map((e) => e.name), [`${item}-hard.txt`, `${item}-link`], 'the bin view');
  t.ok(space.readdirPlus(space.trash, undefined, 10).every((e) => e.info.inTrash), 'in the bin');
  t.throws(() => space.readdirPlus(space.stat('zz').id + 1000, undefined, 10), { code: 'FileNotFound' });
  t.throws(() => space.readdirPlus(space.stat('path-link', { follow: false }).id, undefined, 10), { code: 'NotADirectory' });
  t.throws(() => space.readdirPlus(root, undefined, 0), { code: 'InvalidArgument' });
});

t.test('issue 15: a page of 1,000 entries of a 5,000-entry directory is a few statements, whichever page', async (t) => {
  const dir = tempDir();
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  const sql = countSql(lib.db);
  const space = lib.space('-');
  t.teardown(() => {
    lib.close();
    rmSync(dir, { recursive: true, force: true });
  });
  space.mkdir('big');
  const big = space.stat('big').id;
  lib.transaction(() => {
    for (let i = 0; i < 5000; i++) {
      const n = `e${String(i).padStart(5, '0')}`;
      if (i % 10 === 0) space.mkdir(`big/${n}`);
      else space.mknod(`big/${n}`, { mode: 0o100644 });
    }
  });
  let after: string | undefined;
  const perPage: number[] = [];
  const names: string[] = [];
  for (let p = 0; p < 5; p++) {
    sql.reset();
    const page = space.readdirPlus(big, after, 1000);
    perPage.push(sql.counts.statements);
    names.push(...page.map((e) => e.name));
    after = page[page.length - 1]!.name;
    t.same(sql.fullScans(), [], `page ${p}: no table scan`);
  }
  t.equal(new Set(names).size, 5000, 'every entry once');
  t.ok(perPage.every((n) => n <= 10), `statements per page: ${perPage.join(', ')} (readdir+lookups: ~1 per entry)`);
  sql.reset();
  space.readdir(big);
  t.ok(sql.counts.statements > 500, `readdir of the same directory: ${sql.counts.statements} statements (a subdirectory count per directory)`);
});
