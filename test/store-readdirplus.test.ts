// Issue 15 item 4 (readdirplus): a directory page with each entry's NodeInfo from one range read,
// so a walk costs one request per batch of entries, not a lookup per entry. The pages of a big
// directory, concatenated, are the listing `readdir` gives (in name order), attributes included;
// a page's work does not grow with the directory nor with the pages before it.
import t from 'tap';
import { DS, DS_BOUND, DS_NAMES, NODE_KINDS, newDirStats, putDirStat, type DirEntry } from '../src/store/types.js';
import { countedLib, openLib, put } from './helpers/store.js';

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
  const { lib, space, sql } = countedLib(t);
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

t.test('issue 15: readdirStats is readdirPlus packed (the same names and numbers), a link\'s size is its readlink\'s bytes, one statement a page', async (t) => {
  const { lib, space, sql } = countedLib(t);
  space.mkdir('d/sub', { parents: true });
  space.mkdir('far/away/deeper', { parents: true });
  await put(lib, space, 'd/f.txt', 'hello', { conflict: 'ask' });
  await put(lib, space, 'far/away/deeper/target.bin', 'x'.repeat(1000), { conflict: 'ask' });
  space.link('d/f.txt', 'd/hard.txt'); // two names: nlink 2
  space.createLink('d/in-dir', 'd/f.txt'); // bound, target in the same directory
  space.createLink('d/out-of-dir', 'far/away/deeper/target.bin'); // bound, target elsewhere
  space.createLink('far/back', 'd/f.txt');
  space.symlink('d/path-link', '../far/nowhere'); // a path link
  space.mknod('d/fifo', { mode: 0o010644 });
  // times with nanoseconds below the µs (M2), which the packed page carries folded
  space.setattr('d/f.txt', { atimeUs: 1_700_000_000_123_456, atimeNsRem: 987, mtimeUs: 1_700_000_001_654_321, mtimeNsRem: 5 });
  space.setattr('d/fifo', { atimeUs: 1_600_000_000_000_001, atimeNsRem: 999, mtimeUs: 1_800_000_000_999_999, mtimeNsRem: 1 });
  space.createLink('d/é-日本', 'far/away/deeper/target.bin'); // a multibyte name
  const packed = (id: number, after: string | undefined, limit: number) => {
    const want = newDirStats(0);
    const list = space.readdirPlus(id, after, limit);
    want.names.length = list.length;
    want.nums = new Float64Array(list.length * DS.STRIDE);
    list.forEach((e, i) => putDirStat(want, i, e.name, e.info));
    return want;
  };
  const same = (id: number, what: string) => {
    for (const limit of [1, 2, 3, 7, 100]) {
      let after: string | undefined;
      for (let p = 0; ; p++) {
        const got = space.readdirStats(id, after, limit);
        const want = packed(id, after, limit);
        t.same(got.names, want.names, `${what}, limit ${limit}, page ${p}: the names`);
        t.same([...got.nums], [...want.nums], `${what}, limit ${limit}, page ${p}: the numbers`);
        t.same([...got.layouts], [...want.layouts], `${what}, limit ${limit}, page ${p}: the layouts`);
        // the names-only page (readdirNames): the same names, ids, kinds, modes and bound flags
        const names = space.readdirNames(id, after, limit);
        t.same(names.names, got.names, `${what}, limit ${limit}, page ${p}: readdirNames, the same names`);
        let bad = 0;
        for (let i = 0; i < got.names.length; i++) {
          const b = i * DS.STRIDE;
          const whole = got.names[i] === '.trash';
          if (whole ? names.nums.subarray(b, b + DS.STRIDE).some((x, j) => !Object.is(x, got.nums[b + j])) : [DS.ID, DS.KIND, DS.MODE].some((j) => names.nums[b + j] !== got.nums[b + j]) || names.nums[b + DS.FLAGS] !== (got.nums[b + DS.FLAGS]! | DS_NAMES)) bad++;
        }
        t.equal(bad, 0, `${what}, limit ${limit}, page ${p}: readdirNames, each entry's id, kind, mode and flags (.trash whole)`);
        if (got.names.length < limit) break;
        after = got.names[got.names.length - 1];
      }
    }
  };
  same(space.stat('d').id, 'd');
  same(space.root, 'the root (.trash in its place)');
  same(space.stat('far').id, 'far');
  // names whose byte order (SQLite's) is not JS's UTF-16 order (U+FFFD before an astral character):
  // the one-value names page reads such a page again row by row, the same page
  space.mkdir('u');
  for (const n of ['a', '\uFFFD', '\u{1F600}', '\uE000x', 'z']) space.mknod(`u/${n}`, { mode: 0o100644 });
  same(space.stat('u').id, 'u (bytes order ≠ UTF-16 order)');
  const sizeOf = (dirPath: string, name: string): number => {
    const d = space.readdirStats(space.stat(dirPath).id, undefined, 100);
    return d.nums[d.names.indexOf(name) * DS.STRIDE + DS.SIZE]!;
  };
  const check = (label: string) => {
    for (const [p, n] of [['d', 'in-dir'], ['d', 'out-of-dir'], ['far', 'back'], ['d', 'path-link'], ['d', 'é-日本']] as const) {
      t.equal(sizeOf(p, n), Buffer.byteLength(space.readlink(`${p}/${n}`)), `${label}: ${p}/${n}'s size is readlink's length in bytes`);
    }
  };
  check('as made');
  space.rename('far/away', 'far/somewhere-else-with-a-longer-name'); // the targets move: the answers change
  space.rename('d/f.txt', 'd/renamed.txt');
  check('after the targets moved');
  t.equal(sizeOf('d', 'out-of-dir'), Buffer.byteLength('../far/somewhere-else-with-a-longer-name/deeper/target.bin'));
  const d = space.readdirStats(space.stat('d').id, undefined, 100);
  const at = (n: string, k: number) => d.nums[d.names.indexOf(n) * DS.STRIDE + k];
  t.equal(at('hard.txt', DS.NLINK), 2, 'a second name: nlink 2');
  t.equal(at('sub', DS.NLINK), 2, 'a directory: 2 + its subdirectories');
  t.equal(at('in-dir', DS.FLAGS), DS_BOUND, 'a bound link is flagged');
  t.equal(at('path-link', DS.FLAGS), 0, 'a path link is not');
  t.equal(at('fifo', DS.KIND), NODE_KINDS.indexOf('special'));
  t.same([at('fifo', DS.ATIME), at('fifo', DS.ATIME_NS), at('fifo', DS.MTIME), at('fifo', DS.MTIME_NS)], [1_600_000_000_000_001, 999, 1_800_000_000_999_999, 1], 'times and their nanoseconds');
  // the bin's view too
  space.unlink('d/hard.txt');
  space.unlink('d/renamed.txt'); // its last name: to the bin, with the bound links to it (L12)
  same(space.trash, 'the bin');
  t.throws(() => space.readdirStats(space.stat('d/path-link', { follow: false }).id, undefined, 10), { code: 'NotADirectory' });
  t.throws(() => space.readdirStats(space.root, undefined, 0), { code: 'InvalidArgument' });

  // a page of 1,000 plain entries: one statement for the page (and the directory's own row)
  space.mkdir('big');
  const big = space.stat('big').id;
  lib.transaction(() => {
    for (let i = 0; i < 3000; i++) space.mknod(`big/e${String(i).padStart(5, '0')}`, { mode: 0o100644 });
  });
  let after: string | undefined;
  const perPage: number[] = [];
  for (let p = 0; p < 3; p++) {
    sql.reset();
    const page = space.readdirStats(big, after, 1000);
    perPage.push(sql.counts.statements);
    t.equal(page.names.length, 1000);
    after = page.names[999];
    t.same(sql.fullScans(), [], `page ${p}: no table scan`);
  }
  t.ok(perPage.every((n) => n <= 3), `statements per page of 1,000 entries: ${perPage.join(', ')}`);
  sql.reset();
  t.equal(space.readdirNames(big, undefined, 1000).names.length, 1000);
  // the directory, then the page as one value (SQLite namePage: one statement; it was two plucked
  // columns, each paying the join, i15-find4)
  t.ok(sql.counts.statements <= 3 && sql.fullScans().length === 0, `a names-only page of 1,000: ${sql.counts.statements} statements, no table scan`);
  // a page's numbers written over memory the caller is done with (a mount's walk, issue 15):
  // the same page as a fresh one, whatever that memory held
  const fresh = space.readdirNames(big, 'e00100', 500);
  const spare = new Float64Array(600 * DS.STRIDE).fill(-7);
  const over = space.readdirNames(big, 'e00100', 500, spare.buffer);
  t.ok(over.nums.buffer === spare.buffer, 'the numbers are in the spare memory');
  t.ok(over.names.length === 500 && over.names.every((n, i) => n === fresh.names[i]) && over.nums.every((x, i) => Object.is(x, fresh.nums[i])), 'the same page as read fresh');
});
