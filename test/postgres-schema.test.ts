// S1: the library schema in PostgreSQL (src/store/postgres/schema.ts) against a real server: the
// same tables, columns and indexes as SQLite at the same version, each migration applied on the
// data of the version before, SQLite's byte order for names, the statfs counters as
// per-transaction deltas (exact, and no conflict between writers), the refusals (other tables,
// an empty database without create, a newer schema, a non-UTF8 database, an old server), and
// several hosts starting at once migrating once.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Library, DB_FILE } from '../src/store/library.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { secretHash } from '../src/store/secrets.js';
import { MAX_EXTENTS, SparseLayout } from '../src/blob/sparse.js';
import { PgConnection } from '../src/store/postgres/connection.js';
import { migratePostgres, pgSchemaVersion, PG_MIGRATIONS, PG_SCHEMA_VERSION } from '../src/store/postgres/schema.js';
import { isSmhError } from '../src/errors.js';
import { postgresForTest, type PgCluster } from './helpers/postgres.js';

const cluster: PgCluster = await postgresForTest(t);

/** A fresh database and a connection to it, closed at teardown. */
async function freshDb(t: Test): Promise<{ url: string; name: string; conn: PgConnection }> {
  const { url, name } = await cluster.createDatabase();
  const conn = await PgConnection.open(url);
  t.teardown(() => conn.close());
  return { url, name, conn };
}

/** PostgreSQL-only relations: the version row, the change feed, the usage deltas. */
const PG_ONLY = new Set(['smhfs_schema', 'changes', 'changes_horizon', 'space_usage_base', 'space_usage_delta']);

t.test('S1: one version number for both engines', async (t) => {
  t.equal(PG_SCHEMA_VERSION, SCHEMA_VERSION);
  t.equal(PG_MIGRATIONS.length, MIGRATIONS.length);
});

t.test('S1: a new library has the tables, columns and indexes SQLite has at the same version', async (t) => {
  const { conn } = await freshDb(t);
  t.equal(migratePostgres(conn, { create: true }), undefined, 'there was no library before');
  t.equal(pgSchemaVersion(conn), SCHEMA_VERSION);

  const dir = mkdtempSync(join(tmpdir(), 'smhfs-pgschema-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  Library.open(dir, { create: true }).close();
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  t.teardown(() => db.close());
  const sqliteTables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  const pgRels = conn
    .query<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1")
    .map((r) => r.name)
    .filter((n) => !PG_ONLY.has(n));
  // The change feed is in both, in each engine's own shape (PostgreSQL numbers after the commit: feed.ts).
  const feed = ['changes', 'changes_horizon'];
  t.same(feed.filter((n) => sqliteTables.includes(n)), feed, 'SQLite has the change feed too');
  const shared = sqliteTables.filter((n) => !feed.includes(n));
  t.same(pgRels, shared, 'the same tables (space_usage is a view in PostgreSQL)');
  for (const table of shared) {
    const sqliteCols = (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
    const pgCols = conn
      .query<{ name: string }>('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position', [table])
      .map((c) => c.name);
    t.same(pgCols, sqliteCols, `${table}: the same columns in the same order`);
  }
  const sqliteIndexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").all() as Array<{ name: string; sql: string }>;
  const pgIndexes = new Map(conn.query<{ name: string; def: string }>('SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = current_schema()').map((r) => [r.name, r.def]));
  for (const ix of sqliteIndexes) {
    t.ok(pgIndexes.has(ix.name), `index ${ix.name}`);
    if (/ WHERE /i.test(ix.sql)) t.match(pgIndexes.get(ix.name), / WHERE /, `${ix.name} is partial on both`);
  }
  // Every text column that is compared or ordered sorts by bytes, as SQLite's BINARY.
  const notC = conn.query<{ t: string; c: string }>(
    `SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = current_schema()
       AND data_type = 'text' AND coalesce(collation_name, '') <> 'C'
       AND column_name IN ('name', 'key', 'space', 'blob', 'hash', 'original_path', 'owner', 'subject', 'token')`,
  );
  t.same(notC.filter((r) => !['space_usage'].includes(r.t)), [], 'name-like columns are COLLATE "C"');
});

t.test('S1: each migration runs on the data of the version before (2: is_dir, 3: hashed secrets, 4: counters, 5: queue and holds, 6: sparse layout, 7: several names per node, 9: nanoseconds)', async (t) => {
  const { conn } = await freshDb(t);
  migratePostgres(conn, { create: true, to: 1 });
  t.equal(pgSchemaVersion(conn), 1);
  conn.exec(`
    INSERT INTO nodes (id, space, kind, mode, size, atime, mtime, ctime, btime) VALUES
      (1, '-', 'dir', 16877, 0, 1, 1, 1, 1), (2, '-', 'dir', 16749, 0, 1, 1, 1, 1),
      (3, '-', 'dir', 16877, 0, 1, 1, 1, 1), (4, '-', 'file', 33188, 1000, 1, 1, 1, 1),
      (5, 'b', 'dir', 16877, 0, 1, 1, 1, 1), (6, 'b', 'file', 33188, 5, 1, 1, 1, 1);
    INSERT INTO entries (parent, name, node) VALUES (1, 'photos', 3), (3, 'cat.jpg', 4), (5, 'x', 6);
    INSERT INTO tokens (token, space, grants, user_id, expires, created) VALUES ('tok-ünï', '-', 'read', NULL, 9, 1);
    INSERT INTO meta (key, value) VALUES ('library_secret', 'the secret');
  `);
  migratePostgres(conn, { to: 2 });
  t.same(conn.query('SELECT name, is_dir FROM entries ORDER BY name'), [
    { name: 'cat.jpg', is_dir: 0 },
    { name: 'photos', is_dir: 1 },
    { name: 'x', is_dir: 0 },
  ]);
  migratePostgres(conn, { to: 3 });
  t.same(conn.query('SELECT id, hash, space FROM tokens'), [{ id: 1, hash: secretHash('tok-ünï'), space: '-' }], 'tokens kept as the SHA-256 secretHash() computes');
  t.same(conn.query("SELECT key, value FROM meta WHERE key LIKE 'library_secret%'"), [{ key: 'library_secret_sha256', value: secretHash('the secret') }]);
  migratePostgres(conn, { to: 4 });
  t.same(conn.query('SELECT space, nodes, bytes FROM space_usage ORDER BY space'), [
    { space: '-', nodes: 4, bytes: 1000 },
    { space: 'b', nodes: 2, bytes: 5 },
  ]);
  conn.exec("INSERT INTO blob_pending (key, owner, created) VALUES ('k1', 'host-a:1:x', 1); INSERT INTO blob_doomed (key, created) VALUES ('k2', 1)");
  migratePostgres(conn, { to: 5 });
  t.same(conn.query('SELECT key, owner, heartbeat FROM blob_pending'), [{ key: 'k1', owner: 'host-a:1:x', heartbeat: null }], 'leases kept, no heartbeat yet');
  t.same(conn.query('SELECT key, owner FROM blob_doomed'), [{ key: 'k2', owner: null }]);
  conn.exec("INSERT INTO blob_holds (key, owner, heartbeat, created) VALUES ('k1', 'host-b:2:y', 1, 1); INSERT INTO blob_queue (key, queued) VALUES ('k3', 1)");
  conn.query('SELECT smhfs_fold_space_usage()');
  migratePostgres(conn, { to: 6 });
  t.same(conn.query('SELECT id, size, blob, layout FROM nodes WHERE id IN (4, 6) ORDER BY id'), [
    { id: 4, size: 1000, blob: null, layout: null },
    { id: 6, size: 5, blob: null, layout: null },
  ], 'existing files are dense (no layout), sizes kept');
  // A sparse version of file 4: logical size 1 GiB, one written extent at its end; the layout
  // never counts in statfs (the counters follow size only).
  const header = SparseLayout.fromExtents(2 ** 30, [{ offset: 2 ** 30 - 4096, length: 4096 }]).header;
  conn.query("UPDATE nodes SET size = $1, blob = 'c0ffee', layout = $2 WHERE id = 4", [2 ** 30, header]);
  t.same(conn.query('SELECT size, layout FROM nodes WHERE id = 4'), [{ size: 2 ** 30, layout: header }], 'the layout reads back byte for byte');
  t.same(conn.query('SELECT space, nodes, bytes FROM space_usage ORDER BY space'), [
    { space: '-', nodes: 4, bytes: 2 ** 30 },
    { space: 'b', nodes: 2, bytes: 5 },
  ], 'counters after the sparse version');
  // The largest layout sparse.ts writes (MAX_EXTENTS extents, ~1.3 MB) goes through a prepared
  // statement and back unchanged.
  const big = SparseLayout.fromExtents(2 ** 40, Array.from({ length: MAX_EXTENTS }, (_, i) => ({ offset: i * 2 ** 24, length: 4096 }))).header;
  t.ok(big.length > 1_000_000);
  conn.prepare('UPDATE nodes SET layout = $1 WHERE id = 6').run(big);
  t.ok(conn.prepare('SELECT layout FROM nodes WHERE id = 6').get<{ layout: string }>()!.layout === big, 'a 1.3 MB layout reads back byte for byte');
  t.same(SparseLayout.parse(conn.query<{ layout: string }>('SELECT layout FROM nodes WHERE id = 6')[0]!.layout).extents.length, MAX_EXTENTS);
  conn.query('UPDATE nodes SET layout = NULL WHERE id IN (4, 6)');
  t.same(conn.query('SELECT count(*) AS n FROM space_usage_delta'), [{ n: 1 }], 'a layout-only update adds no counter delta');
  migratePostgres(conn, { to: 7 });
  t.same(conn.query('SELECT name, node, seq FROM entries ORDER BY name'), [
    { name: 'cat.jpg', node: 4, seq: 1 },
    { name: 'photos', node: 3, seq: 1 },
    { name: 'x', node: 6, seq: 1 },
  ], "7 (L17): every existing name is its node's first");
  conn.exec("INSERT INTO entries (parent, name, node, seq) VALUES (1, 'cat2.jpg', 4, 2)");
  t.same(conn.query('SELECT name FROM entries WHERE node = 4 ORDER BY seq'), [{ name: 'cat.jpg' }, { name: 'cat2.jpg' }], 'a node may have a second name');
  t.throws(() => conn.exec("INSERT INTO entries (parent, name, node, seq) VALUES (1, 'cat3.jpg', 4, 2)"), 'but never two names of one age');
  // the change feed's migration: SQLite's feed; PostgreSQL has had its own since 1 (nothing changes)
  const feedBefore = conn.query('SELECT count(*) AS n FROM changes');
  migratePostgres(conn, { to: 8 });
  t.same(conn.query('SELECT count(*) AS n FROM changes'), feedBefore, 'the feed untouched');
  migratePostgres(conn, { to: 9 });
  t.same(conn.query('SELECT DISTINCT atime_ns, mtime_ns, ctime_ns, btime_ns FROM nodes'), [{ atime_ns: 0, mtime_ns: 0, ctime_ns: 0, btime_ns: 0 }],
    '9 (M2): existing times get no nanoseconds below their µs');
  conn.exec('UPDATE nodes SET mtime_ns = 999 WHERE id = 4');
  t.throws(() => conn.exec('UPDATE nodes SET atime_ns = 1000 WHERE id = 4'), 'a remainder is below 1000 ns');
  t.throws(() => conn.exec('UPDATE nodes SET ctime_ns = -1 WHERE id = 4'), 'and not negative');
  // 10 (issue 11): bound links counted per target from the rows, then kept by the trigger
  conn.exec(`INSERT INTO nodes (id, space, kind, mode, link_flavour, link_node, atime, mtime, ctime, btime) VALUES
    (20, '-', 'link', 41471, 'bound', 4, 1, 1, 1, 1), (21, '-', 'link', 41471, 'bound', 4, 1, 1, 1, 1),
    (22, 'b', 'link', 41471, 'bound', 6, 1, 1, 1, 1)`);
  migratePostgres(conn);
  t.same(conn.query('SELECT target, n FROM bound_links ORDER BY target'), [{ target: 4, n: 2 }, { target: 6, n: 1 }], '10: counted from the links');
  conn.exec("UPDATE nodes SET link_node = 4 WHERE id = 22; DELETE FROM nodes WHERE id = 20; UPDATE nodes SET link_flavour = 'path', link_node = NULL WHERE id = 21");
  t.same(conn.query('SELECT target, n FROM bound_links ORDER BY target'), [{ target: 4, n: 1 }], '10: kept by rebind, delete and re-flavour');
  conn.exec('DELETE FROM nodes WHERE id IN (21, 22)');
  t.equal(pgSchemaVersion(conn), SCHEMA_VERSION);
  // Identity columns start past ids a copy wrote once told so (what `smhfs migrate` will do).
  conn.query("SELECT setval(pg_get_serial_sequence('nodes', 'id'), (SELECT max(id) FROM nodes))");
  t.equal(conn.query<{ id: number }>("INSERT INTO nodes (space, kind, mode, atime, mtime, ctime, btime) VALUES ('-', 'file', 33188, 1, 1, 1, 1) RETURNING id")[0]!.id, 7);
});

t.test("S1: names sort and range by bytes, as SQLite's BINARY collation", async (t) => {
  const { conn } = await freshDb(t);
  migratePostgres(conn, { create: true });
  const names = ['b', 'B', 'a', 'A', '_x', '.hidden', 'Z9', 'z10', 'é', 'e', 'ß', '日本', '😀', 'a b', 'a-b', 'ab', 'a~'];
  const sqlite = new Database(':memory:');
  t.teardown(() => sqlite.close());
  sqlite.exec('CREATE TABLE e (parent INTEGER, name TEXT, PRIMARY KEY (parent, name))');
  names.forEach((n, i) => {
    sqlite.prepare('INSERT INTO e VALUES (1, ?)').run(n);
    conn.query('INSERT INTO entries (parent, name, node) VALUES (1, $1, $2)', [n, 100 + i]);
  });
  const sqliteOrder = (sqlite.prepare('SELECT name FROM e ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
  const pgOrder = conn.query<{ name: string }>('SELECT name FROM entries WHERE parent = 1 ORDER BY name').map((r) => r.name);
  t.same(pgOrder, sqliteOrder);
  const range = (lo: string, hi: string) => ({
    sqlite: (sqlite.prepare('SELECT name FROM e WHERE name >= ? AND name < ? ORDER BY name').all(lo, hi) as Array<{ name: string }>).map((r) => r.name),
    pg: conn.query<{ name: string }>('SELECT name FROM entries WHERE parent = 1 AND name >= $1 AND name < $2 ORDER BY name', [lo, hi]).map((r) => r.name),
  });
  for (const [lo, hi] of [['a', 'b'], ['A', 'a'], ['a (', 'a)'], ['e', 'f'], ['é', '😀']] as const) {
    const r = range(lo, hi);
    t.same(r.pg, r.sqlite, `[${lo}, ${hi})`);
  }
});

t.test('S1/statfs: the counters follow inserts, deletes, resizes and moves between spaces; folding keeps them; a rollback leaves nothing', async (t) => {
  const { conn } = await freshDb(t);
  migratePostgres(conn, { create: true });
  const insert = conn.prepare("INSERT INTO nodes (space, kind, mode, size, atime, mtime, ctime, btime) VALUES ($1, 'file', 33188, $2, 1, 1, 1, 1) RETURNING id");
  const truth = () => conn.query('SELECT space, count(*) AS nodes, coalesce(sum(size), 0) AS bytes FROM nodes GROUP BY space ORDER BY space');
  const counters = () => conn.query('SELECT space, nodes, bytes FROM space_usage ORDER BY space');
  const ids: number[] = [];
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let i = 0; i < 40; i++) {
    conn.transaction(() => {
      for (let j = 0; j < 1 + rnd(4); j++) {
        const op = ids.length === 0 ? 0 : rnd(4);
        if (op === 0) ids.push(insert.get<{ id: number }>(rnd(2) ? '-' : 'music', rnd(5000))!.id);
        else if (op === 1) conn.query('DELETE FROM nodes WHERE id = $1', [ids.splice(rnd(ids.length), 1)[0]]);
        else if (op === 2) conn.query('UPDATE nodes SET size = $1 WHERE id = $2', [rnd(9000), ids[rnd(ids.length)]]);
        else conn.query("UPDATE nodes SET space = CASE space WHEN '-' THEN 'music' ELSE '-' END WHERE id = $1", [ids[rnd(ids.length)]]);
      }
    });
    if (i === 20) t.ok(conn.query<{ n: number }>('SELECT smhfs_fold_space_usage() AS n')[0]!.n > 0, 'folded some deltas');
  }
  t.same(counters(), truth(), 'exact after 40 transactions and a fold in the middle');
  t.ok(conn.query<{ n: number }>('SELECT count(*) AS n FROM space_usage_delta')[0]!.n <= 2 * 19, 'at most one delta row per space per transaction since the fold');
  conn.query('SELECT smhfs_fold_space_usage()');
  t.same(conn.query('SELECT count(*) AS n FROM space_usage_delta'), [{ n: 0 }]);
  t.same(counters(), truth(), 'exact after folding everything');

  const before = counters();
  t.throws(() =>
    conn.transaction(() => {
      insert.get('-', 123456);
      throw new Error('rule says no');
    }),
  );
  t.same(counters(), before, 'a rolled-back insert counted nothing');
});

t.test('S2/statfs: two writers in one space commit side by side, no serialization failure over the counters', async (t) => {
  const { url, conn: a } = await freshDb(t);
  migratePostgres(a, { create: true });
  const b = PgConnection.connectSync(url);
  t.teardown(() => b.close());
  b.exec("SET statement_timeout = '5s'"); // were the counters one row, b would wait on a's row lock
  const ins = "INSERT INTO nodes (space, kind, mode, size, atime, mtime, ctime, btime) VALUES ('-', 'file', 33188, $1, 1, 1, 1, 1)";
  let retries = 0;
  const ac = PgConnection.connectSync(url, { onRetry: () => retries++ });
  t.teardown(() => ac.close());
  ac.transaction((tx) => {
    ac.query(ins, [10]);
    // another host's whole transaction, in the middle of this one
    if (tx.attempt === 1) b.transaction(() => b.query(ins, [20]));
  });
  t.equal(retries, 0, 'no retry');
  t.same(a.query('SELECT nodes, bytes FROM space_usage'), [{ nodes: 2, bytes: 30 }]);
});

t.test('S1: refuses a database holding other tables, and changes nothing in it', async (t) => {
  const { conn } = await freshDb(t);
  conn.exec('CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)');
  t.throws(() => migratePostgres(conn, { create: true }), { code: 'NotALibrary', message: /holds other tables and no smhfs library/ });
  t.same(conn.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public'"), [{ t: 'invoices' }]);
});

t.test('S1: an empty database is no library unless asked to create one', async (t) => {
  const { conn } = await freshDb(t);
  t.throws(() => migratePostgres(conn), { code: 'NotALibrary', message: /holds no smhfs library/ });
  t.equal(pgSchemaVersion(conn), undefined, 'nothing created');
});

t.test('S1: a library written by a newer smhfs is refused', async (t) => {
  const { conn } = await freshDb(t);
  migratePostgres(conn, { create: true });
  conn.query('UPDATE smhfs_schema SET version = $1', [SCHEMA_VERSION + 1]);
  t.throws(() => migratePostgres(conn), { code: 'SchemaTooNew' });
});

t.test('S1: a database that is not UTF8 is refused at connect (names are UTF-8, D5)', async (t) => {
  await cluster.sql("CREATE DATABASE latin TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'");
  const err = await PgConnection.open(cluster.url('latin')).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isSmhError(err, 'NotALibrary'), String(err));
  t.match((err as Error).message, /SQL_ASCII.*needs a UTF8 database/);
});

t.test('S1: hosts starting at once on an empty database migrate it once', async (t) => {
  const { url } = await cluster.createDatabase();
  const conn = pathToFileURL(join(import.meta.dirname, '..', 'src', 'store', 'postgres', 'connection.js')).href;
  const schema = pathToFileURL(join(import.meta.dirname, '..', 'src', 'store', 'postgres', 'schema.js')).href;
  const script = `
    const { PgConnection } = await import(${JSON.stringify(conn)});
    const { migratePostgres } = await import(${JSON.stringify(schema)});
    const c = PgConnection.connectSync(process.argv[1]);
    const found = migratePostgres(c, { create: true });
    process.stdout.write(String(found));
    c.close();
  `;
  const run = () =>
    new Promise<{ code: number | null; out: string; err: string }>((res) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => res({ code, out, err }));
    });
  const results = await Promise.all([run(), run(), run()]);
  for (const r of results) t.equal(r.code, 0, r.err);
  t.same(results.map((r) => r.out).sort(), [String(SCHEMA_VERSION), String(SCHEMA_VERSION), 'undefined'], 'one created it, the others found it migrated');
  const c = PgConnection.connectSync(url);
  t.teardown(() => c.close());
  t.equal(pgSchemaVersion(c), SCHEMA_VERSION);
});
