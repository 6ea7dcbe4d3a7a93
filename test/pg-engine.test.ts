// SPEC S1/S2 on the PostgreSQL engine, where it differs from SQLite: several processes (hosts) run
// the rules on one library at once and every contended transaction is retried inside the engine,
// never surfaced; the statfs deltas (one row per writing transaction) are folded into the totals
// by the library's upkeep without changing what statfs says; a sparse file's layout is read only
// when asked. One real PostgreSQL for the file (fails, never skips, without one).
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Library } from '../src/store/library.js';
import { checkLibrary } from '../src/store/fsck.js';
import { usePostgresEngine, sqlGet } from './helpers/store-engines.js';
import { openLib, put, read, storeEngine, tempDir } from './helpers/store.js';
import { PgConnection } from '../src/store/postgres/connection.js';

const cluster = await usePostgresEngine(t);
const CLIENT = fileURLToPath(new URL('./helpers/pg-rules-client.js', import.meta.url));

interface ClientResult {
  files: Array<{ content: string; path: string; links: string[]; removed: boolean }>;
  errors: string[];
  retries: number;
  serializationFailures: number;
  deadlocks: number;
}

function client(dir: string, id: string, count: number): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLIENT, dir, id, String(count)], { timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`client ${id} failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ClientResult);
    });
  });
}

t.test('S2: three hosts run contending rules on one library: nothing is surfaced, every change is there once, fsck is clean', async (t) => {
  const dir = tempDir('smhfs-pg-hosts-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { url } = await cluster.createDatabase();
  const setup = Library.open(dir, { create: true, meta: url });
  for (const d of ['shared', 'links', 'own-a', 'own-b', 'own-c']) setup.space('-').mkdir(d, {});
  setup.close();

  const results = await Promise.all(['a', 'b', 'c'].map((id) => client(dir, id, 120)));
  for (const [i, r] of results.entries()) t.same(r.errors, [], `host ${i}: no error reached the rules' caller`);
  const retried = results.reduce((n, r) => n + r.retries, 0);
  t.comment(`retried transactions: ${retried} (serialization failures ${results.reduce((n, r) => n + r.serializationFailures, 0)}, deadlocks ${results.reduce((n, r) => n + r.deadlocks, 0)})`);

  const lib = Library.open(dir);
  t.teardown(() => lib.close());
  const space = lib.space('-');
  const binned = new Set(space.trashList().map((it) => it.originalPath));
  const all = results.flatMap((r) => r.files);
  t.equal(all.length, 360, 'every upload was placed');
  const livePaths = all.filter((f) => !f.removed).map((f) => f.path);
  t.equal(new Set(livePaths).size, livePaths.length, 'the live ones each under a name of its own (C2 across hosts)');
  let live = 0;
  for (const f of all) {
    if (f.removed) {
      if (!binned.has(f.path)) t.fail(`${f.content}: removed, but not in the bin as ${f.path}`);
      continue;
    }
    live++;
    const got = await read(lib, space, f.path);
    if (got !== f.content) t.fail(`${f.path}: holds ${got}, not ${f.content}`);
    for (const l of f.links) {
      const target = space.stat(l, { follow: false }).link?.targetPath;
      if (target !== f.path) t.fail(`${l}: leads to ${target}, not ${f.path}`);
    }
  }
  t.ok(live > 200, `${live} files live, each with its own bytes and its links following it`);
  const report = await checkLibrary(dir);
  t.equal(report.exitCode, 0, `fsck clean: ${report.findings.filter((f) => f.problem).map((f) => f.summary).join('; ')}`);
});

t.test('S1: statfs deltas are folded into the totals by the library upkeep; statfs says the same before and after', async (t) => {
  const { lib, space, dir } = openLib(t);
  for (let i = 0; i < 20; i++) await put(lib, space, `f${i}.txt`, 'x'.repeat(i), { conflict: 'ask' });
  const before = space.statfs();
  const deltas = sqlGet<{ n: number }>(lib, 'SELECT count(*) AS n FROM space_usage_delta')!.n;
  t.ok(deltas >= 20, `one delta row per writing transaction (${deltas})`);
  const again = Library.open(dir, { blobStore: lib.blobs });
  t.teardown(() => again.close());
  t.equal(sqlGet<{ n: number }>(again, 'SELECT count(*) AS n FROM space_usage_delta')!.n, 0, 'an open folds them');
  t.same(again.space('-').statfs(), before, 'statfs unchanged');
});

t.test('S1: a path is resolved in one query, whatever its depth (not one round trip per segment)', async (t) => {
  const { lib, space } = openLib(t);
  const deep = Array.from({ length: 12 }, (_, i) => `d${i}`).join('/');
  space.mkdir(deep, { parents: true });
  await put(lib, space, `${deep}/f.txt`, 'deep', { conflict: 'ask' });
  await put(lib, space, 'g.txt', 'shallow', { conflict: 'ask' });
  const stats = lib.postgres!.conn.stats;
  const cost = (fn: () => unknown): number => {
    const before = stats.queries;
    fn();
    return stats.queries - before;
  };
  const shallow = cost(() => space.stat('g.txt', {}));
  const deepCost = cost(() => space.stat(`${deep}/f.txt`, {}));
  t.equal(deepCost, shallow, `stat of a 13-segment path costs what a 1-segment one does (${deepCost} statements)`);
  t.equal(space.stat(`${deep}/f.txt`, {}).path, `${deep}/f.txt`, 'and finds the file');
  t.equal(await read(lib, space, `${deep}/f.txt`), 'deep');
  const { recycledItemId } = space.unlink('g.txt');
  const view = space.trashItem(recycledItemId!).viewName;
  t.equal(space.stat(`.trash/${view}`, {}).kind, 'file', 'a path into the bin view resolves too');
  t.throws(() => space.stat(`${deep}/nope/f.txt`, {}), { code: 'FileNotFound' }, 'a missing segment is FileNotFound');
  t.throws(() => space.stat(`${deep}/f.txt/x`, {}), { code: 'NotADirectory' }, 'a file in the middle is NotADirectory');
});

/** Restart this file's server from inside synchronous code (the connection blocks the thread). */
function restartServerSync(): void {
  // -l: the postmaster writes to the log file, not to our pipes (spawnSync would wait for them)
  const args = ['restart', '-D', cluster.dataDir, '-l', `${cluster.dir}/server.log`, '-m', 'fast', '-w', '-t', '60', '-s'];
  const pgCtl = `${cluster.bindir}/pg_ctl`;
  const r = process.getuid?.() === 0 ? spawnSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args], { encoding: 'utf8' }) : spawnSync(pgCtl, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pg_ctl restart failed: ${r.stdout}${r.stderr}`);
}

t.test('S2: the server restarts in the middle of an operation: it runs again, once, whole; the library goes on; fsck is clean', async (t) => {
  const { lib, space, dir } = openLib(t);
  space.mkdir('d', {});
  await put(lib, space, 'd/f.txt', 'before the restart', { conflict: 'ask' });
  space.createLink('l', 'd/f.txt', {});
  let attempts = 0;
  lib.transaction(() => {
    attempts++;
    space.mkdir('made-during', {});
    if (attempts === 1) restartServerSync(); // the connection dies under the open transaction
    space.move('d/f.txt', 'made-during/f.txt', {});
  });
  t.equal(attempts, 2, 'the transaction ran again after the lost connection');
  t.equal(space.readdir('made-during').map((e) => e.name).join(','), 'f.txt', 'its changes are there once');
  t.equal(space.stat('l', { follow: false }).link?.targetPath, 'made-during/f.txt', 'the link followed the move');
  await cluster.restart('fast'); // between operations: the next statement reconnects and prepares again
  t.equal(await read(lib, space, 'l'), 'before the restart', 'reads go on after a restart between operations');
  space.remove('made-during/f.txt', {});
  t.same(space.readdir('').map((e) => e.name).sort(), ['.trash', 'd', 'made-during'], 'the link went to the bin with its file (L12)');
  t.ok(lib.postgres!.conn.stats.reconnects >= 2, `reconnected (${lib.postgres!.conn.stats.reconnects} times)`);
  await lib.idle();
  const report = await checkLibrary(dir, { blobStore: lib.blobs });
  t.equal(report.exitCode, 0, `fsck clean: ${report.findings.filter((f) => f.problem).map((f) => f.summary).join('; ')}`);
});

t.test('the test harness: a closed library\'s database is reused only when emptied to exactly the template\'s state', async (t) => {
  // What every PostgreSQL twin relies on: a library on a reused database starts as on a fresh one.
  const state = (url: string): unknown => {
    const conn = PgConnection.connectSync(url);
    try {
      return conn.snapshot(() => {
        const names = conn.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").map((r) => r.t);
        const tables = Object.fromEntries(names.map((n) => [n, conn.query(`SELECT * FROM "${n}"`).map((r) => JSON.stringify(r)).sort()]));
        const sequences = conn.query('SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema() ORDER BY sequencename');
        return { tables, sequences };
      });
    } finally {
      conn.close();
    }
  };
  const fresh = storeEngine.newDatabaseUrl!();
  const want = state(fresh);
  const first = openLib(t, { dir: tempDir() }); // a library on a database of its own
  const used = first.lib.postgres!.url;
  first.space.mkdir('a');
  await put(first.lib, first.space, 'a/f.txt', 'bytes');
  first.space.unlink('a/f.txt');
  const firstIds = first.space.stat('a').id;
  t.not(JSON.stringify(state(used)), JSON.stringify(want), 'the used database holds rows and moved sequences');

  // Someone still connected: not reused.
  const holder = PgConnection.connectSync(used);
  first.lib.close();
  storeEngine.releaseDatabase!(used);
  const other = storeEngine.newDatabaseUrl!();
  t.not(other, used, 'a database somebody is still connected to is not handed out again');
  holder.close();
  storeEngine.releaseDatabase!(used);
  t.equal(storeEngine.newDatabaseUrl!(), used, 'once nobody is connected, it is the next one handed out');
  t.same(state(used), want, 'emptied to the template\'s rows and sequences, as a fresh database');
  storeEngine.releaseDatabase!(used);
  const again = openLib(t, { dir: tempDir() });
  t.equal(again.lib.postgres!.url, used, 'and a library opens on it');
  t.equal(again.space.mkdir('a').info.id, firstIds, 'its first node gets the id a fresh database gives');
  storeEngine.releaseDatabase!(other);
  storeEngine.releaseDatabase!(fresh);
});
