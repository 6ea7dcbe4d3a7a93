/**
 * Issue 15 (scale), store tier: no rule does work proportional to the library, or quadratic in
 * what it moves. Each test bounds the SQL work (statements run, rows returned, statements per
 * transaction; test/helpers/sql-counter.ts) — never the time taken.
 */
import t, { type Test } from 'tap';
import { Library, type Space } from '../src/store/library.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { blobOf, countedLib, put, tempDir } from './helpers/store.js';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE } from '../src/store/library.js';
import { ChangeFollower, type Invalidation } from '../src/vfs/changes.js';
import { expandMoves } from '../src/store/changes.js';
import { CheckpointDue, Checkpointer, HIGH_PAGES, NET_PAGES, passiveCheckpoint, walProgressOf, type WalProgress } from '../src/store/sqlite/checkpoints.js';

/**
 * The checkpoint policy and the checkpoint on one connection, driven look by look by the tests
 * (the mount's looks run on the serving thread, its checkpoints on the worker: `Checkpointer`).
 */
class WalCheckpoints {
  checkpoints = 0;
  private readonly due: CheckpointDue;

  constructor(
    private readonly db: Database.Database,
    private readonly progress: () => WalProgress | undefined,
    high = HIGH_PAGES,
  ) {
    this.due = new CheckpointDue(high);
  }

  /** One look: checkpoint if due. Answers whether one ran. */
  tick(): boolean {
    if (!this.due.look(this.progress())) return false;
    passiveCheckpoint(this.db);
    this.checkpoints++;
    return true;
  }
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
  const id = space.unlink('photo.jpg').recycledItemId!;
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

t.test('L12/H4: that cascade with a mount\'s change follower: statements and feed rows independent of the link count, no dependents read for the links', async (t) => {
  const { lib, space, sql } = countedLib(t);
  await sameNamedLinks(lib, space, LINKS);
  const links = Array.from({ length: LINKS }, (_, i) => space.stat(`d${i}/cover`).id);
  const dirs = Array.from({ length: LINKS }, (_, i) => space.stat(`d${i}`).id);
  const photo = space.stat('photo.jpg').id;
  // as a mount follows: this process's commits are applied in the commit's after-commit work
  const got: Invalidation[] = [];
  const f = new ChangeFollower(lib, (inv) => got.push(inv), { space: '-', pollMs: 3_600_000, watchCommits: false }).start();
  t.teardown(() => f.stop());
  sql.reset();
  const head = lib.changes.head();
  const id = space.unlink('photo.jpg').recycledItemId!;
  const c = { ...sql.counts };
  const fed = lib.changes.read(head, 100_000).records;
  // The links' moves are one 'moves' row (each link's old name, bin name and itself), not 3 rows a link.
  t.ok(fed.length <= 10 && fed.every((r, i) => r.seq === head + 1 + i), `the feed numbers its ${fed.length} rows (≤ 10) in order, without gaps`);
  const moves = fed.filter((r) => r.kind === 'moves');
  t.equal(moves.length, 1, 'one moves row for the 2,000 links');
  const moved = new Set(expandMoves(moves).flatMap((r) => (r.kind === 'node' ? [r.node] : [])));
  t.ok(links.every((l) => moved.has(l)), 'each moved link is recorded in it');
  t.notOk(fed.some((r) => r.kind === 'tree' && links.includes(r.node!)), 'no link is recorded as a tree change (nothing depends on a link)');
  // Per cascade, whatever its size: the links' read (each with its directory's entry, for the path
  // it is remembered by), their moves, bin records and states (one statement each), the feed's rows
  // (one statement). Session 6 ran 8 statements per link and the follower one dependents query per
  // moved link; session 7 2 per link; session 8 1 per link (the move) + the feed's 6,000 rows in
  // blocks of 256.
  t.ok(c.statements <= 60, `statements ${c.statements} ≤ 60 for ${LINKS} links (follower included)`);
  t.equal(sql.timesRun(/^INSERT INTO changes/), 1, 'the feed\'s rows in one statement (plain VALUES)');
  t.equal(sql.timesRun(/link_node = sub\.id/), 1, 'the follower reads dependents once (for photo.jpg; the links need none)');
  t.equal(sql.timesRun(/^SELECT n\.\* FROM entries e JOIN nodes n ON n\.id = e\.node WHERE e\.parent = \? AND e\.name = \?$/), 2, 'names in the bin: 2 point lookups (the walk to photo.jpg, the first view name), none per pick');
  t.same(sql.fullScans(), [], 'no table scans');
  const inodes = new Set(got.flatMap((i) => ('inode' in i ? [i.inode] : [])));
  const entries = new Set(got.flatMap((i) => ('entry' in i ? [`${i.entry.parent}/${i.entry.name}`] : [])));
  t.ok(links.every((l) => inodes.has(l)) && inodes.has(photo), 'every link and the photo are invalidated (their readlink answers and places changed)');
  t.ok(dirs.every((d) => entries.has(`${d}/cover`)), 'every d*/cover name is invalidated');
  t.ok(entries.has(`${space.root}/photo.jpg`), 'and photo.jpg');
  t.equal(space.trashItem(id).links.length, LINKS, 'the item holds the 2,000 links');
  t.same(space.trashItem(id).links.map((l) => l.originalPath).sort(), Array.from({ length: LINKS }, (_, i) => `d${i}/cover`).sort(), 'each remembered at its own path');
});

t.test('C2/L12: a cascade whose links are named like C2 alternatives of each other names each once', async (t) => {
  const { lib, space } = countedLib(t);
  await put(lib, space, 'photo.jpg', 'jpeg bytes', { conflict: 'ask' });
  // by link id: cover, cover, cover (2), cover, cover (1), cover — the bin names of the plain ones
  // are picked while names of the same form are placed as they are; and three of 250 bytes, whose
  // alternatives in the bin must be shortened (`<id>-xxx… (1).jpg`)
  const long = `${'x'.repeat(246)}.jpg`;
  const names = ['cover', 'cover', 'cover (2)', 'cover', 'cover (1)', 'cover', long, long, long];
  lib.transaction(() => {
    names.forEach((n, i) => {
      space.mkdir(`e${i}`);
      space.createLink(`e${i}/${n}`, 'photo.jpg', { conflict: 'ask' });
    });
  });
  const id = space.unlink('photo.jpg').recycledItemId!;
  const view = space.readdir('.trash').map((e) => e.name).filter((n) => n.startsWith(`${id}-cover`) || n.startsWith(`${id}-xxx`)).sort();
  t.equal(view.length, names.length, 'every link has its own name in the bin');
  t.equal(new Set(view).size, view.length, 'no name twice');
  t.same(space.trashItem(id).links.map((l) => l.originalPath).sort(), names.map((n, i) => `e${i}/${n}`).sort(), 'each remembers where it was');
  space.restore(id);
  names.forEach((n, i) => t.equal(space.readlink(`e${i}/${n}`), '../photo.jpg', `e${i}/${n.slice(0, 12)} is back`));
});

t.test('T4/L12: restoring that item puts the 2,000 links back with O(links) work', async (t) => {
  const { lib, space, sql } = countedLib(t);
  await sameNamedLinks(lib, space, LINKS);
  const id = space.unlink('photo.jpg').recycledItemId!;
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
  const id = space.unlink('photo.jpg').recycledItemId!;
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
  const id = space.unlink('photo.jpg').recycledItemId!;
  sql.reset();
  space.purge(id);
  t.ok(sql.counts.statements <= PER_LINK * LINKS, `statements ${sql.counts.statements} ≤ ${PER_LINK} per link`);
  t.same(sql.fullScans(), [], 'no table scans');
  t.same(space.readdir('d0'), [], 'the links are gone');
});

// -------------------------------------------------------------------------------------------
// statfs

/** What statfs used to compute by counting: the truth the counters must equal. */
function counted(lib: Library, space: string): { files: number; bytes: number } {
  const r = lib.db.prepare('SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM nodes WHERE space = ?').get(space) as {
    files: number;
    bytes: number;
  };
  return { files: r.files, bytes: r.bytes };
}

t.test('D11: statfs is one primary-key read of counters that every change keeps exact', async (t) => {
  const { lib, space, sql } = countedLib(t);
  const other = lib.createSpace('other');
  const check = (what: string): void => {
    t.same(space.statfs(), counted(lib, '-'), `after ${what}: space -`);
    t.same(other.statfs(), counted(lib, 'other'), `after ${what}: space other`);
  };
  check('creation');
  const steps: Array<[string, () => unknown]> = [
    ['put', () => put(lib, space, 'a/photo.jpg', 'x'.repeat(1000), { createParents: true })],
    ['put in another space', () => put(lib, other, 'o.txt', 'other bytes')],
    ['overwrite (bigger)', () => put(lib, space, 'a/photo.jpg', 'y'.repeat(5000), { conflict: 'overwrite' })],
    ['a file to rename over', () => put(lib, space, 'tmp', 'z')],
    ['setContent (smaller)', async () => space.setContent(space.stat('a/photo.jpg').id, await blobOf(lib, 'small'))],
    ['links', () => {
      space.mkdir('l');
      for (let i = 0; i < 5; i++) space.createLink(`l/c${i}`, 'a/photo.jpg');
      space.symlink('l/p', '../nowhere');
    }],
    ['mknod', () => space.mknod('fifo', { mode: 0o010644 })],
    ['copy of a directory', () => space.copy('a', 'b')],
    ['rename over a file (L10)', () => space.rename('b/photo.jpg', 'tmp')],
    ['unlink with a cascade', () => space.unlink('a/photo.jpg')],
    ['restore', () => space.restore(space.trashList()[0]!.id)],
    ['rm to the bin', () => space.remove('b', { recursive: true })],
    ['permanent rm of a file with links', () => space.remove('a/photo.jpg', { permanent: true })],
    ['rmdir', () => space.rmdir('a')],
    ['permanent rm of a directory (task)', async () => {
      space.mkdir('big/x/y', { parents: true });
      await put(lib, space, 'big/x/y/f', 'ffff');
      space.remove('big', { permanent: true, recursive: true });
      await lib.runTasks();
    }],
    ['purge', () => space.purge(space.trashList()[0]!.id)],
    ['empty', () => space.emptyTrash()],
  ];
  for (const [what, fn] of steps) {
    await fn();
    check(what);
  }
  sql.reset();
  const st = space.statfs();
  t.ok(st.files > 2, `statfs answers (${st.files} nodes, ${st.bytes} bytes)`);
  t.equal(sql.counts.statements, 1, 'statfs runs one statement');
  t.same(sql.fullScans(['nodes', 'entries', 'space_usage']), [], 'which reads the counters by key, scanning nothing');
});

t.test('D11: a schema-3 library gets its statfs counters from migration 4', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  await put(lib, lib.space('-'), 'a/b/c.txt', 'hello', { createParents: true });
  lib.createSpace('other');
  await put(lib, lib.space('other'), 'x.bin', 'x'.repeat(300));
  lib.space('-').unlink('a/b/c.txt');
  const want = { '-': counted(lib, '-'), other: counted(lib, 'other') };
  lib.close();
  // Rewind to what schema 3 looked like (10's bound-link counts and 9's nanoseconds undone first,
  // then the change feed, then 6, 5, 4).
  const db = new Database(join(dir, DB_FILE));
  db.exec('DROP TRIGGER nodes_bound_insert; DROP TRIGGER nodes_bound_delete; DROP TRIGGER nodes_bound_update; DROP TABLE bound_links;');
  db.exec('ALTER TABLE nodes DROP COLUMN atime_ns; ALTER TABLE nodes DROP COLUMN mtime_ns; ALTER TABLE nodes DROP COLUMN ctime_ns; ALTER TABLE nodes DROP COLUMN btime_ns;');
  db.exec('DROP TABLE changes; DROP TABLE changes_horizon;');
  db.exec('ALTER TABLE nodes DROP COLUMN layout;');
  db.exec(`DROP TABLE blob_queue; DROP TABLE blob_holds; DROP INDEX blob_pending_by_owner;
    ALTER TABLE blob_pending DROP COLUMN heartbeat; ALTER TABLE blob_doomed DROP COLUMN owner;`);
  db.exec(`DROP TRIGGER nodes_usage_insert; DROP TRIGGER nodes_usage_delete; DROP TRIGGER nodes_usage_update;
    DROP TABLE space_usage; DROP INDEX recycle_items_by_space; DROP INDEX recycle_items_by_age;`);
  db.pragma('user_version = 3');
  db.close();
  const again = Library.open(dir, { blobStore: new MemoryBlobStore() });
  t.teardown(() => again.close());
  t.same(again.space('-').statfs(), want['-'], 'space - counted by the migration');
  t.same(again.space('other').statfs(), want.other, 'space other counted by the migration');
  again.space('-').mkdir('new');
  t.same(again.space('-').statfs(), counted(again, '-'), 'and kept after it');
});

// -------------------------------------------------------------------------------------------
// the recycle bin: pages, items by id, purges in bounded steps

/** N files binned one by one (N items), in one transaction for speed. */
async function binned(lib: Library, space: Space, n: number): Promise<number[]> {
  const ref = await blobOf(lib, 'same bytes');
  return lib.transaction(() => {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      space.putFile(`f${i}`, ref, { conflict: 'ask' });
      ids.push(space.unlink(`f${i}`).recycledItemId!);
    }
    return ids;
  });
}

t.test('T2: the bin is read a page at a time, and one item by its id, whatever its size', async (t) => {
  const { lib, space, sql } = countedLib(t);
  const ids = await binned(lib, space, 3000);
  sql.reset();
  const first = space.trashList({ limit: 100 });
  t.same(first.map((i) => i.id), ids.slice(0, 100), 'the first page: the oldest 100 items');
  const second = space.trashList({ limit: 100, after: first[99]!.id });
  t.same(second.map((i) => i.id), ids.slice(100, 200), 'the next page starts after the last id');
  t.ok(sql.counts.rowsRead <= 2 * 100 * 2, `two pages of 100 read ${sql.counts.rowsRead} rows (the bin holds 3,000)`);
  t.same(space.trashList({ after: ids[2998]! }).map((i) => i.id), [ids[2999]], 'after without limit: the rest');
  t.same(space.trashList({ after: ids[2999]! }), [], 'after the last: nothing');
  sql.reset();
  const one = space.trashItem(ids[1234]!);
  t.equal(one.id, ids[1234]);
  t.equal(one.originalPath, 'f1234');
  t.ok(sql.counts.rowsRead <= 3, `one item by id read ${sql.counts.rowsRead} rows`);
  t.same(sql.fullScans(), [], 'no table scans');
  t.throws(() => space.trashItem(999_999), { code: 'RecycledItemNotFound' });
  t.throws(() => space.trashList({ limit: 0 }), { code: 'InvalidArgument' });
  t.throws(() => space.trashList({ after: -1 }), { code: 'InvalidArgument' });
});

t.test('T5: emptying a bin of 3,000 items runs in bounded steps and other calls run in between', async (t) => {
  const { lib, space, sql } = countedLib(t);
  await binned(lib, space, 3000);
  // an item with 1,500 bound links: it and its links are purged together in one step (L13)
  await put(lib, space, 'star.jpg', 'star');
  lib.transaction(() => {
    for (let i = 0; i < 1500; i++) space.createLink(`star-link-${i}`, 'star.jpg');
  });
  space.unlink('star.jpg');
  sql.reset();
  const seen: number[] = [];
  let finished = false;
  const probe = (): void => {
    if (finished) return;
    seen.push(space.trashList({ limit: 5000 }).length); // another request, between two steps
    setImmediate(probe);
  };
  setImmediate(probe);
  const r = await space.emptyTrash();
  finished = true;
  t.equal(r.purged, 3001, 'every item purged');
  t.same(space.trashList(), [], 'the bin is empty');
  t.same(space.readdir(''), [...space.readdir('')].filter((e) => e.name === '.trash'), 'the links went with their target');
  t.ok(seen.some((n) => n > 0 && n < 3001), `requests answered while it ran saw the bin shrinking (${seen.slice(0, 8).join(', ')}…)`);
  const c = sql.counts;
  t.ok(c.transactions >= 4, `${c.transactions} transactions`);
  // a step stops once it has deleted 1,000 nodes (9 statements each); the item with 1,500 links
  // is one step by itself
  t.ok(c.maxStatementsPerTransaction <= 10 * 1501, `at most ${c.maxStatementsPerTransaction} statements in one step`);
  t.same(sql.fullScans(), [], 'no table scans');
});

t.test('T5: retention purges only expired items, in bounded steps', async (t) => {
  const { lib, space, sql } = countedLib(t);
  const ids = await binned(lib, space, 2500);
  // age the first 2,400 by two days
  lib.db.prepare('UPDATE recycle_items SET removed_at = removed_at - ? WHERE id <= ?').run(2 * 86_400 * 1_000_000, ids[2399]);
  sql.reset();
  t.equal(await space.purgeExpired(1), 2400, 'the 2,400 older than one day');
  t.same(space.trashList().map((i) => i.id), ids.slice(2400), 'the rest stay');
  t.ok(sql.counts.transactions >= 3, `${sql.counts.transactions} transactions`);
  t.ok(sql.counts.maxStatementsPerTransaction <= 10 * 1000, `at most ${sql.counts.maxStatementsPerTransaction} statements in one step`);
  t.same(sql.fullScans(), [], 'no table scans');
});

t.test('C2/L12: links with long equal names still go to the bin and come back with their names', async (t) => {
  const { lib, space } = countedLib(t);
  const long = 'é'.repeat(124) + 'x.jpg'; // 253 bytes: `<id>-` + it, and any ` (n)`, pass 255
  await put(lib, space, 'photo.jpg', 'p');
  for (const d of ['a', 'b', 'c']) {
    space.mkdir(d);
    space.createLink(`${d}/${long}`, 'photo.jpg', { conflict: 'ask' });
  }
  const id = space.unlink('photo.jpg').recycledItemId!; // was FileNameLengthExceed
  const view = space.readdir('.trash').map((e) => e.name).filter((n) => n !== `${id}-photo.jpg`);
  t.equal(view.length, 3, 'three links in the bin view');
  t.equal(new Set(view).size, 3, 'under three names');
  for (const n of view) t.ok(Buffer.byteLength(n) <= 255, `${Buffer.byteLength(n)} bytes`);
  t.ok(view.some((n) => n.endsWith(' (2).jpg')), 'shortened before the C2 suffix, extension kept');
  // While in the bin, a's place is taken: the link comes back under a fitted C2 name.
  await put(lib, space, `a/${long}`, 'other');
  space.restore(id);
  for (const d of ['b', 'c']) t.equal(space.stat(`${d}/${long}`).kind, 'link', `${d}: back under its own name`);
  const a = space.readdir('a').map((e) => e.name);
  t.equal(a.length, 2);
  const alt = a.find((n) => n !== long)!;
  t.ok(Buffer.byteLength(alt) <= 255 && alt.endsWith(' (1).jpg') && long.startsWith(alt.slice(0, -' (1).jpg'.length)), `a: ${Buffer.byteLength(alt)}-byte C2 name`);
  t.equal(space.readlink(`a/${alt}`), '../photo.jpg');
});

// ───────────── checkpoints off the serving thread (issue 15; src/store/sqlite/checkpoints.ts) ─────────────

/** A library without the SQL counter (these cases count WAL frames, not statements), removed on teardown. */
function plainLib(t: Pick<Test, 'teardown'>): { lib: Library; space: Space; dir: string } {
  const dir = tempDir();
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  t.teardown(() => {
    lib.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { lib, space: lib.space('-'), dir };
}

/** `n` directories made in `n` transactions (each ~8 WAL frames), as a mount's mkdirs commit one by one. */
function mkdirs(space: Space, prefix: string, n: number, each?: () => void): void {
  for (let i = 0; i < n; i++) {
    space.mkdir(`${prefix}${i}`);
    each?.();
  }
}

t.test('issue 15: with a checkpointer the serving connection runs no checkpoint below the net, and the WAL stays bounded under steady writes', async (t) => {
  const { lib, space, dir } = plainLib(t);
  // a mount's follower reads the feed after each of this connection's commits
  const f = new ChangeFollower(lib, () => undefined, { space: '-', pollMs: 3_600_000, watchCommits: false }).start();
  t.teardown(() => f.stop());
  // The worker is started but never looks (one tick an hour): every checkpoint below is either
  // the serving connection's own or the test's, run on its own connection like the worker's.
  const ck = Checkpointer.start(lib.db, dir, { tickMs: 3_600_000 })!;
  t.teardown(() => ck.stop());
  const other = new Database(join(dir, DB_FILE));
  t.teardown(() => other.close());
  const policy = new WalCheckpoints(other, () => walProgressOf(dir));
  t.equal(lib.db.pragma('wal_autocheckpoint', { simple: true }), NET_PAGES, `the serving connection's own checkpoint is only a net (${NET_PAGES} pages)`);

  other.pragma('wal_checkpoint(TRUNCATE)');
  mkdirs(space, 'a', 300);
  const p1 = walProgressOf(dir)!;
  // SQLite's default would have checkpointed inside the commit that passed 1,000 frames.
  t.ok(p1.frames >= 2 * HIGH_PAGES && p1.backfilled === 0, `${p1.frames} frames written, ${p1.backfilled} copied: no checkpoint inside a commit`);
  t.ok(policy.tick(), 'the checkpointer checkpoints at the mark');
  const p2 = walProgressOf(dir)!;
  t.equal(p2.backfilled, p2.frames, 'a PASSIVE checkpoint with the writer idle copies every frame');
  space.mkdir('b');
  t.ok(walProgressOf(dir)!.frames < 50, 'so the next commit starts the WAL over');

  // Steady writes (10 rounds of 100 commits, the follower reading), the checkpointer looking in between.
  let most = 0;
  let copiedByServing = 0;
  for (let r = 0; r < 10; r++) {
    mkdirs(space, `s${r}-`, 100, () => {
      const p = walProgressOf(dir)!;
      most = Math.max(most, p.frames);
      if (p.backfilled !== 0) copiedByServing++;
    });
    policy.tick();
    policy.tick(); // the second look of an idle writer
  }
  t.equal(copiedByServing, 0, 'no commit of the 1,000 ran a checkpoint');
  t.ok(most <= 2 * HIGH_PAGES, `the WAL never held more than ${most} frames (≤ ${2 * HIGH_PAGES})`);
  const pageSize = lib.db.pragma('page_size', { simple: true }) as number;
  const walBytes = statSync(join(dir, `${DB_FILE}-wal`)).size;
  t.ok(walBytes <= 32 + 3 * HIGH_PAGES * (pageSize + 24), `the WAL file is ${walBytes} bytes (as long as the first 300 commits made it; reused from its start since)`);
});

t.test('issue 15: with no checkpointer looking, the serving connection\'s net bounds the WAL', async (t) => {
  const { lib, space, dir } = plainLib(t);
  const ck = Checkpointer.start(lib.db, dir, { tickMs: 3_600_000, net: 1200 })!;
  t.teardown(() => ck.stop());
  let most = 0;
  let nets = 0;
  let last = walProgressOf(dir)?.frames ?? 0;
  mkdirs(space, 'n', 400, () => {
    const p = walProgressOf(dir)!;
    most = Math.max(most, p.frames);
    if (p.frames < last) nets++;
    last = p.frames;
  });
  t.ok(most <= 1200 + 50, `the WAL never held more than ${most} frames (net 1,200 + one commit)`);
  t.ok(nets >= 2, `the WAL started over ${nets} times`);
});

t.test('issue 15: startBackground checkpoints on a worker; close leaves no WAL', async (t) => {
  const dir = tempDir();
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  lib.startBackground();
  t.ok(lib.checkpointer, 'a long-running library has a checkpointer');
  t.equal(lib.db.pragma('wal_autocheckpoint', { simple: true }), NET_PAGES, 'and its serving connection checkpoints only at the net');
  const before = lib.checkpointer?.checkpoints ?? 0;
  mkdirs(lib.space('-'), 'w', 200);
  await lib.checkpointer?.next();
  const p = walProgressOf(dir)!;
  t.ok((lib.checkpointer?.checkpoints ?? 0) > before, 'the worker checkpointed');
  t.ok(p.backfilled === p.frames && p.frames >= HIGH_PAGES, `every one of the ${p.frames} frames copied once the writes paused`);
  lib.close();
  t.notOk(existsSync(join(dir, `${DB_FILE}-wal`)), 'the worker\'s connection closed first: the serving one did the last checkpoint and removed the WAL');
});
