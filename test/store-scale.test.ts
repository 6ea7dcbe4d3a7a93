/**
 * Issue 15 (scale), store tier: no rule does work proportional to the library, or quadratic in
 * what it moves. Each test bounds the SQL work (statements run, rows returned, statements per
 * transaction; test/helpers/sql-counter.ts) — never the time taken.
 */
import t from 'tap';
import type { Test } from 'tap';
import { Library, type Space } from '../src/store/library.js';
import { MemoryBlobStore } from '../src/blob/memory-store.js';
import { countSql, type SqlCounter } from './helpers/sql-counter.js';
import { put, tempDir } from './helpers/store.js';
import { rmSync } from 'node:fs';

/** A library whose space statements are counted (the counter must exist before `lib.space`). */
function countedLib(t: Test): { lib: Library; space: Space; sql: SqlCounter; dir: string } {
  const dir = tempDir();
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  const sql = countSql(lib.db);
  const space = lib.space('-');
  t.teardown(() => {
    lib.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { lib, space, sql, dir };
}

/** `photo.jpg` and N directories `d0…` each holding a bound link `cover` to it. */
async function sameNamedLinks(lib: Library, space: Space, n: number): Promise<void> {
  await put(lib, space, 'photo.jpg', 'jpeg bytes', { conflict: 'ask' });
  lib.transaction(() => {
    for (let i = 0; i < n; i++) {
      space.mkdir(`d${i}`);
      space.createLink(`d${i}/cover`, 'photo.jpg', { conflict: 'ask' });
    }
  });
}

const LINKS = 2000;
/** Statements per cascaded link: locate (a few levels), entry, record, move, state, a name. */
const PER_LINK = 20;

t.test('L12/C2: removing a file whose 2,000 bound links share one name does O(links) work', async (t) => {
  const { lib, space, sql } = countedLib(t);
  await sameNamedLinks(lib, space, LINKS);
  sql.reset();
  const { recycledItemId: id } = space.unlink('photo.jpg');
  const c = { ...sql.counts };
  t.ok(c.statements <= PER_LINK * LINKS, `statements ${c.statements} ≤ ${PER_LINK} per link (quadratic naming runs ~${(LINKS * LINKS) / 2})`);
  t.ok(c.rowsRead <= PER_LINK * LINKS, `rows returned ${c.rowsRead} ≤ ${PER_LINK} per link`);
  t.same(sql.fullScans(), [], 'every statement is an index search, so rows returned bound rows visited');

  // C2 naming is unchanged: the links sit beside their target in the bin view as `<id>-cover`,
  // `<id>-cover (1)`, … — each name once, the first free n each time.
  const view = space.readdir('.trash').map((e) => e.name);
  const covers = view.filter((n) => n.startsWith(`${id}-cover`)).sort();
  const want = [`${id}-cover`, ...Array.from({ length: LINKS - 1 }, (_, i) => `${id}-cover (${i + 1})`)].sort();
  t.same(covers, want, 'bin view names: <id>-cover, <id>-cover (1) … (1999)');
  for (const name of [`${id}-cover`, `${id}-cover (1999)`]) {
    t.equal(space.readlink(`.trash/${name}`), `${id}-photo.jpg`, `${name} still resolves inside the bin`);
  }
});

t.test('T4/L12: restoring that item puts the 2,000 links back with O(links) work', async (t) => {
  const { lib, space, sql } = countedLib(t);
  await sameNamedLinks(lib, space, LINKS);
  const { recycledItemId: id } = space.unlink('photo.jpg');
  space.mkdir('d7/cover-dir-in-the-way'); // unrelated, so d7 exists with another entry
  sql.reset();
  const placed = space.restore(id);
  t.same(placed.path, ['photo.jpg']);
  t.ok(sql.counts.statements <= PER_LINK * LINKS, `statements ${sql.counts.statements} ≤ ${PER_LINK} per link`);
  t.ok(sql.counts.rowsRead <= PER_LINK * LINKS, `rows returned ${sql.counts.rowsRead} ≤ ${PER_LINK} per link`);
  t.same(sql.fullScans(), [], 'no table scans');
  for (const i of [0, 7, LINKS - 1]) t.equal(space.readlink(`d${i}/cover`), '../photo.jpg', `d${i}/cover is back and bound`);
  t.same(space.trashList(), [], 'the bin is empty again');
});

t.test('C2: a restore into taken names picks the first free `name (n)` with one range read', async (t) => {
  const { lib, space, sql } = countedLib(t);
  await sameNamedLinks(lib, space, 300);
  const { recycledItemId: id } = space.unlink('photo.jpg');
  // While the target is in the bin, every link's place is taken by a new file, and gaps and
  // look-alikes of the C2 pattern sit beside some of them.
  lib.transaction(() => {
    for (let i = 0; i < 300; i++) space.mkdir(`d${i}/cover`);
  });
  for (const n of ['cover (1)', 'cover (3)', 'cover (01)', 'cover (x)', 'cover (2) (1)', 'cover (4']) {
    space.mkdir(`d0/${n}`);
  }
  sql.reset();
  space.restore(id);
  t.ok(sql.counts.statements <= PER_LINK * 300, `statements ${sql.counts.statements} ≤ ${PER_LINK} per link`);
  t.equal(space.stat('d0/cover (2)').kind, 'link', 'd0: (1) and (3) taken, "(01)" and "(x)" are not C2 names: (2)');
  t.equal(space.stat('d1/cover (1)').kind, 'link', 'd1: (1)');
  t.equal(space.stat('d299/cover (1)').kind, 'link', 'd299: (1)');
});

t.test('C2: conflict renames skip look-alikes and fill gaps, files split at the last dot', async (t) => {
  const { lib, space } = countedLib(t);
  for (const n of ['a.txt', 'a (1).txt', 'a (3).txt', 'a (02).txt', 'a (2)', 'a (x).txt', 'a (1) (1).txt']) {
    await put(lib, space, n, n, { conflict: 'ask' });
  }
  t.same((await put(lib, space, 'a.txt', 'new', { conflict: 'rename' })).path, ['a (2).txt']);
  t.same((await put(lib, space, 'a.txt', 'new', { conflict: 'rename' })).path, ['a (4).txt']);
  space.mkdir('v1.2');
  t.same(space.mkdir('v1.2', { conflict: 'rename' }).path, ['v1.2 (1)'], 'directories never split');
  await put(lib, space, '.bashrc', 'x', { conflict: 'ask' });
  t.same((await put(lib, space, '.bashrc', 'y', { conflict: 'rename' })).path, ['.bashrc (1)']);
  await put(lib, space, 'é (1)', 'x', { conflict: 'ask' });
  await put(lib, space, 'é', 'x', { conflict: 'ask' });
  t.same((await put(lib, space, 'é', 'y', { conflict: 'rename' })).path, ['é (2)'], 'non-ASCII stems');
});

t.test('L13: purging that item deletes the 2,000 links with O(links) work', async (t) => {
  const { lib, space, sql } = countedLib(t);
  await sameNamedLinks(lib, space, LINKS);
  const { recycledItemId: id } = space.unlink('photo.jpg');
  sql.reset();
  space.purge(id);
  t.ok(sql.counts.statements <= PER_LINK * LINKS, `statements ${sql.counts.statements} ≤ ${PER_LINK} per link`);
  t.same(sql.fullScans(), [], 'no table scans');
  t.same(space.readdir('d0'), [], 'the links are gone');
});
