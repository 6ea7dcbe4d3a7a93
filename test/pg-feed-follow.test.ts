// S2/H4 on PostgreSQL: two libraries opened on one database (two hosts, each with its own
// connection and origin) and a change follower on host A with a recording sink (no FUSE; the
// mounts are mount-postgres's). What host B commits reaches A's follower through the feed and
// NOTIFY, with the side effects expanded on A (the links bound to a file B moved); A's own commits
// are applied once, at commit, not again when read back from the feed; a follower whose listening
// connection is killed (pg_terminate_backend) while B commits reads on from its number, and one
// whose number was pruned meanwhile is told to drop everything. The feed is written in the
// committing transaction: a rolled-back one leaves nothing. A real PostgreSQL, started here.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Library } from '../src/store/library.js';
import { ChangeFollower, type Invalidation } from '../src/vfs/changes.js';
import { ChangeFeedListener, pruneFeedKeep } from '../src/store/postgres/feed.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { postgresForTest } from './helpers/postgres.js';
import { put } from './helpers/store.js';

const cluster = await postgresForTest(t);

/** Two hosts on one new PostgreSQL library (one blob store between them, as one bucket). */
async function twoHosts(t: Test) {
  const { url } = await cluster.createDatabase();
  const work = mkdtempSync(join(tmpdir(), 'smhfs-pg-follow-'));
  const blobStore = new MemoryBlobStore();
  const A = Library.open(join(work, 'a'), { create: true, meta: url, blobStore });
  const B = Library.open(join(work, 'b'), { create: true, meta: url, blobStore });
  t.teardown(() => {
    A.close();
    B.close();
    rmSync(work, { recursive: true, force: true });
  });
  return { url, A, B, a: A.space('-'), b: B.space('-') };
}

/** A started follower on `lib` with the engine's own wake-up (NOTIFY) and no polling timer of note. */
function follow(t: Test, lib: Library) {
  const got: Invalidation[] = [];
  const f = new ChangeFollower(lib, (inv) => got.push(inv), { space: '-', pollMs: 3_600_000 });
  f.start();
  t.teardown(() => f.stop());
  const inodes = () => new Set(got.flatMap((i) => ('inode' in i ? [i.inode] : [])));
  const entries = () => got.flatMap((i) => ('entry' in i ? [`${i.entry.parent}/${i.entry.name}`] : []));
  return { f, got, inodes, entries };
}

/** Resolves once `cond()` holds (checked every 5 ms); false after `ms` (1 s: "at once"). */
async function within(cond: () => boolean, ms = 1000): Promise<boolean> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** The listening connection of this process's follower, as the server sees it. */
async function listenerPids(): Promise<number[]> {
  const rows = await cluster.sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`smhfs-feed ${process.pid}`]);
  return rows.map((r) => Number(r.pid));
}

/** Kill the follower's listening connection and wait until the server has ended it. */
async function killListener(t: Test): Promise<number[]> {
  let pids: number[] = [];
  for (let i = 0; i < 200 && pids.length === 0; i++) {
    pids = await listenerPids();
    if (pids.length === 0) await new Promise((r) => setTimeout(r, 10));
  }
  t.equal(pids.length, 1, 'the follower listens on one connection of its own');
  await cluster.sql('SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1', [`smhfs-feed ${process.pid}`]);
  return pids;
}

t.test('S2/H4: what host B commits reaches host A\'s follower at once, side effects expanded on A', async (t) => {
  const { A, B, a, b } = await twoHosts(t);
  t.ok(A.changes.seesOthers, 'a PostgreSQL feed hears other hosts (the mount keeps long caches)');
  for (const d of ['x', 'y']) a.mkdir(d);
  const photo = (await put(A, a, 'photo.jpg', 'jpeg')).info;
  const links = ['x', 'y'].map((d) => a.createLink(`${d}/cover`, 'photo.jpg').info);
  const { inodes, entries } = follow(t, A);
  b.rename('photo.jpg', 'x/photo.jpg');
  const x = a.stat('x').id;
  t.ok(await within(() => links.every((l) => inodes().has(l.id))), 'both bound links of the file B moved: their readlink answers changed');
  t.ok(inodes().has(photo.id), 'the moved node');
  t.same(entries().sort(), [`${a.root}/photo.jpg`, `${x}/photo.jpg`].sort(), 'the two names');
  t.equal(B.changes.origin === A.changes.origin, false, 'two hosts, two origins');
});

t.test('S2: host A\'s own commit is applied at commit, and not again when the feed brings it back', async (t) => {
  const { A, a, b } = await twoHosts(t);
  a.mkdir('x');
  const photo = (await put(A, a, 'photo.jpg', 'jpeg')).info;
  const link = a.createLink('x/cover', 'photo.jpg').info;
  const { f, got, inodes, entries } = follow(t, A);
  const x = a.stat('x').id;
  f.own({ entries: [[a.root, 'photo.jpg'], [x, 'p.jpg']], nodes: [a.root, x, photo.id] }, () => a.renameAt(a.root, 'photo.jpg', x, 'p.jpg'));
  t.same([...inodes()], [link.id], 'at commit, before any await: the bound link only (the reply told the kernel the rest)');
  t.same(entries(), [], 'no entry the reply answered for');
  const before = got.length;
  b.mkdir('from-b'); // numbered after A's rename: once A has it, it has read past A's own records
  t.ok(await within(() => entries().includes(`${a.root}/from-b`)), "B's later change arrives");
  t.same(got.slice(before), [{ entry: { parent: a.root, name: 'from-b' } }, { inode: a.root }], "B's name and B's change of the root's times, and nothing of A's own rename a second time");
});

t.test('S2: a follower whose listening connection is killed while B commits reads on from its number', async (t) => {
  const { a, b, A } = await twoHosts(t);
  a.mkdir('x');
  const { entries } = follow(t, A);
  const killed = await killListener(t);
  // Synchronous from here: the listener cannot reconnect before these are committed and
  // announced, so no notification of them reaches it; only its reconnect's catch-up can.
  b.mkdir('x/while-away');
  b.mkdir('x/also-away');
  const x = a.stat('x').id;
  t.ok(await within(() => entries().includes(`${x}/while-away`) && entries().includes(`${x}/also-away`)), 'both changes made while it was cut off arrive');
  const now = await listenerPids();
  t.equal(now.length, 1, 'listening again');
  t.not(now[0], killed[0], 'on a new connection');
  b.mkdir('x/after');
  t.ok(await within(() => entries().includes(`${x}/after`)), 'and it follows on');
});

t.test('S2: a follower whose number was pruned while it was cut off drops everything, then follows on', async (t) => {
  const { a, b, A, B } = await twoHosts(t);
  a.mkdir('x');
  const { got, entries } = follow(t, A);
  await killListener(t);
  b.mkdir('x/gone-by');
  B.changes.prune(0); // everything numbered so far, A's cursor with it
  t.ok(await within(() => got.some((i) => 'all' in i)), 'told to drop every cache');
  t.notOk(entries().includes(`${a.stat('x').id}/gone-by`), 'not replayed (it was pruned)');
  b.mkdir('x/later');
  t.ok(await within(() => entries().includes(`${a.stat('x').id}/later`)), 'then follows again');
});

t.test('S2: the feed is written by the committing transaction: a rolled-back one leaves no row, a committed one its changes, numbered', async (t) => {
  const { B, b } = await twoHosts(t);
  const conn = B.postgres!.conn;
  const count = () => Number(conn.query<{ n: string }>('SELECT count(*) AS n FROM changes')[0]!.n);
  const before = count();
  t.throws(() =>
    B.engine.transaction(() => {
      b.mkdir('never');
      throw new Error('the rule refused');
    }),
  );
  t.equal(count(), before, 'nothing from the rolled-back transaction');
  b.mkdir('kept');
  const rows = conn.query<{ seq: string | null; name: string | null }>("SELECT seq, name FROM changes WHERE name = 'kept'");
  t.equal(rows.length, 1, "the new name's change, once");
  t.ok(rows[0]!.seq !== null, 'numbered right after the commit (no follower in this process: the writer numbers it)');
});

t.test('S2: the feed stays bounded: pruning keeps the newest numbers, and a pass across a multiple of 1,000 prunes', async (t) => {
  const { B, b } = await twoHosts(t);
  const conn = B.postgres!.conn;
  b.mkdir('d');
  // about 1,100 numbered changes in a few transactions (each new name: an entry change, and its directory's)
  for (let i = 0; i < 11; i++) B.engine.transaction(() => Array.from({ length: 100 }, (_, j) => b.mkdir(`d/${i}-${j}`)));
  const state = () => {
    const r = conn.query<{ head: string; n: string; horizon: string }>(
      'SELECT (SELECT max(seq) FROM changes) AS head, (SELECT count(*) FROM changes) AS n, (SELECT pruned_to FROM changes_horizon) AS horizon',
    )[0]!;
    return { head: Number(r.head), n: Number(r.n), horizon: Number(r.horizon) };
  };
  const s1 = state();
  t.ok(s1.head > 1000, `numbers handed out (${s1.head})`);
  t.equal(s1.horizon, 0, 'the default keep (100,000) kept them all');
  t.equal(pruneFeedKeep(conn, 250), s1.head - 250, 'keep 250: the horizon moves to head - 250');
  t.same(state(), { head: s1.head, n: 250, horizon: s1.head - 250 }, '250 rows left');
  t.equal(pruneFeedKeep(conn, 400), s1.head - 250, 'a larger keep never moves the horizon back');
  const l = new ChangeFeedListener(B.postgres!.url, { deliver: false, keep: 100, sequenceEveryMs: 0 });
  await l.start();
  t.teardown(() => l.close());
  // The head is past 1,000 and this listener has not numbered before: its first pass prunes.
  await l.sequenceSoon();
  const s2 = state();
  t.equal(s2.horizon, s2.head - 100, 'and pruned to its keep');
  t.equal(s2.n, 100, '100 rows left');
});
