/**
 * SPEC S1: one behavioural suite, two engines. A test file that runs a store suite on PostgreSQL
 * calls `usePostgresEngine(t)` and then imports the suite: `openLib` (test/helpers/store.ts) then
 * makes each library in a fresh database of one real cluster started for that file (it fails,
 * never skips, when PostgreSQL cannot start). `sqlRun`/`sqlGet` reach into the tables on either
 * engine, for the tests that damage or inspect rows directly.
 */
import type { Test } from 'tap';
import type { BlobStore } from '../../src/blob/types.js';
import { Library } from '../../src/store/library.js';
import { PgConnection, type PgValue } from '../../src/store/postgres/connection.js';
import { migratePostgres } from '../../src/store/postgres/schema.js';
import { fileCopy, postgresForTest, type PgCluster } from './postgres.js';
import { copyDb, storeEngine } from './store.js';

let counter = 0;
const databases = new Map<string, string>();
/**
 * Databases given back by closed libraries, already emptied to the template's state: the next
 * library takes one instead of a CREATE DATABASE (0.1–0.3 s of the server's time each; the id
 * suites make two libraries per case, the model suites one per run).
 */
const spares: string[] = [];
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * One script that turns a used library database back into a copy of the template: every table
 * emptied (TRUNCATE, which no row trigger sees), the template's own rows put back, and every
 * sequence set to where the template's stands. Built from what the template holds, so a new
 * migration needs no change here; pg-engine's harness case compares a reused database with a
 * fresh one.
 */
function resetScript(tmpl: PgConnection): string {
  const tables = tmpl.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").map((r) => r.t);
  const lit = (v: string): string => `'${v.replace(/'/g, "''")}'`;
  const refill = tables.flatMap((table) => {
    const rows = tmpl.query<{ j: string }>(`SELECT coalesce(json_agg(x), '[]')::text AS j FROM "${table}" x`)[0]!.j;
    return rows === '[]' ? [] : [`INSERT INTO "${table}" SELECT * FROM json_populate_recordset(NULL::"${table}", ${lit(rows)})`];
  });
  const sequences = tmpl
    .query<{ s: string; v: string; called: boolean }>(
      `SELECT sequencename AS s, coalesce(last_value, start_value)::text AS v, last_value IS NOT NULL AS called
       FROM pg_sequences WHERE schemaname = current_schema() ORDER BY sequencename`,
    )
    .map((q) => `SELECT setval(${lit(`"${q.s}"`)}, ${q.v}, ${q.called})`);
  const empty = process.env.SMHFS_RESET_TRUNCATE
    ? [`TRUNCATE ${tables.map((t) => `"${t}"`).join(', ')}`]
    : [
        // DELETE with every trigger off (replica role: no row trigger, no foreign-key check) ends
        // where TRUNCATE does, without TRUNCATE's new files for every table and index (~30 ms of
        // the server's CPU per reset on the test machine); the refill below runs with the
        // triggers on again, as the template's own rows were made.
        'SET LOCAL session_replication_role = replica',
        ...tables.map((t) => `DELETE FROM "${t}"`),
        'SET LOCAL session_replication_role = origin',
      ];
  return [
    // A session still holding a lock would make the reset wait: fail instead (the database is dropped).
    "SET lock_timeout = '2s'",
    'BEGIN',
    ...empty,
    ...refill,
    ...sequences,
    'COMMIT',
  ].join(';\n');
}

export async function usePostgresEngine(t: Test): Promise<PgCluster> {
  const cluster = await postgresForTest(t);
  // Databases are made synchronously (openLib is synchronous), over one admin connection.
  const admin = PgConnection.connectSync(cluster.url('postgres'));
  t.teardown(() => admin.close());
  // One database migrated once, copied for each library (CREATE DATABASE … TEMPLATE): a fresh
  // library costs a file copy instead of every migration's DDL. It holds the schema only (no
  // library id, no space): Library.open makes those, as in any new database.
  admin.exec(`CREATE DATABASE lib_template TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'${fileCopy(cluster.versionNum)}`);
  const tmpl = PgConnection.connectSync(cluster.url('lib_template'));
  let reset: string;
  try {
    migratePostgres(tmpl, { create: true });
    reset = resetScript(tmpl);
  } finally {
    tmpl.close();
  }
  storeEngine.name = 'postgres';
  storeEngine.newDatabaseUrl = () => {
    const spare = spares.pop();
    if (spare) return databases.get(spare)!;
    const name = `lib_${process.pid}_${++counter}`;
    admin.exec(`CREATE DATABASE ${name} TEMPLATE lib_template${fileCopy(cluster.versionNum)}`);
    // Each library is a new connection, so a new server process: PostgreSQL plans a prepared
    // statement afresh at each of its first five runs before it settles on one generic plan
    // (the library's placed read, a recursive CTE, costs ~8 ms to plan: 5 of them per library,
    // hundreds of libraries per file). Generic from the first run: the same statements and
    // answers, planned once per connection. Only these test databases (the bench's are as shipped).
    admin.exec(`ALTER DATABASE ${name} SET plan_cache_mode = force_generic_plan`);
    databases.set(name, cluster.url(name));
    return cluster.url(name);
  };
  // One connection per pooled database kept for its resets: a new connection costs the server a
  // backend start (~40 ms of CPU on the test machine), as much as the reset itself.
  const resetters = new Map<string, { conn: PgConnection; pid: number }>();
  const closeResetter = (name: string): void => {
    resetters.get(name)?.conn.close();
    resetters.delete(name);
  };
  t.teardown(() => {
    for (const name of [...resetters.keys()]) closeResetter(name);
  });
  const kept = (name: string, url: string): PgConnection => {
    let r = resetters.get(name);
    if (!r) {
      const conn = PgConnection.connectSync(url);
      r = { conn, pid: conn.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')[0]!.pid };
      resetters.set(name, r);
    }
    return r.conn;
  };
  // The same connection serves the tests' reads on the side (dumpDb), between resets.
  storeEngine.sideConnection = (url) => {
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    return databases.has(name) ? kept(name, url) : undefined;
  };
  storeEngine.dropDatabase = (url) => {
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    closeResetter(name);
    if (databases.delete(name)) admin.exec(`DROP DATABASE ${name}`);
  };
  storeEngine.releaseDatabase = (url) => {
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    if (!databases.has(name) || spares.includes(name)) return;
    // Only a database nobody is connected to any more: a test may still hold a second library
    // (or a raw connection) on it, and that one would see its rows vanish. Such a database is
    // simply not reused.
    // A closed connection's server process leaves pg_stat_activity a moment later: wait up to 50 ms.
    // (The database's own resetter connection is not somebody else.)
    const others = (): number =>
      admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> $2', [name, resetters.get(name)?.pid ?? 0])[0]!.n;
    for (let tries = 0; others() > 0; tries++) {
      if (tries === 10) return;
      Atomics.wait(pause, 0, 0, 5);
    }
    try {
      kept(name, url).exec(reset);
    } catch {
      storeEngine.dropDatabase!(url);
      return;
    }
    spares.push(name);
  };
  return cluster;
}

/** `?` placeholders as PostgreSQL's $1, $2… */
function pgPlaceholders(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

/** Run a statement on the library's tables, whatever its engine (`?` placeholders). */
export function sqlRun(lib: Library, sql: string, ...params: Array<string | number | null>): number {
  if (lib.engineKind === 'sqlite') return lib.db.prepare(sql).run(...params).changes;
  const conn = lib.postgres!.conn;
  conn.query(pgPlaceholders(sql), params);
  return 0;
}

/** One row of a query on the library's tables, whatever its engine. */
export function sqlGet<R>(lib: Library, sql: string, ...params: Array<string | number | null>): R | undefined {
  if (lib.engineKind === 'sqlite') return lib.db.prepare(sql).get(...params) as R | undefined;
  return lib.postgres!.conn.query(pgPlaceholders(sql), params)[0] as R | undefined;
}

/** Close a library `openStoreLib`/`copyStoreLib` made, and drop its database on PostgreSQL. */
export function closeStoreLib(lib: Library): void {
  const url = lib.postgres?.url;
  lib.close();
  if (url) storeEngine.releaseDatabase?.(url);
}

/** `Library.open(dir, { create: true, … })` on the engine of this test file (a fresh database on PostgreSQL). */
export function openStoreLib(dir: string, opts: { blobStore?: BlobStore } = {}): Library {
  const meta = storeEngine.newDatabaseUrl?.();
  return Library.open(dir, { create: true, ...opts, ...(meta ? { meta } : {}) });
}

/**
 * A consistent copy of `lib`'s committed metadata as a new library in `copyDir` (the model test
 * tries restores on copies). SQLite: VACUUM INTO. PostgreSQL: a fresh database whose tables get
 * every row of the original, read in one snapshot, ids and sequences included.
 */
export function copyStoreLib(lib: Library, dir: string, copyDir: string, opts: { blobStore?: BlobStore } = {}): Library {
  if (lib.engineKind === 'sqlite') {
    copyDb(dir, copyDir);
    return Library.open(copyDir, { create: true, ...opts });
  }
  const src = lib.postgres!.conn;
  const tables = src
    .query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
    .map((r) => r.t)
    // bound_links (migration 10) is rebuilt by the triggers as the nodes are inserted: copied too, it would count twice
    .filter((t) => !['smhfs_schema', 'changes', 'changes_horizon', 'bound_links'].includes(t));
  const data = src.snapshot(() => new Map(tables.map((t) => [t, src.query(`SELECT * FROM ${t}`)])));
  const copy = openStoreLib(copyDir, opts);
  const dst = copy.postgres!.conn;
  dst.transaction(() => {
    for (const [table, rows] of data) {
      dst.query(`DELETE FROM ${table}`);
      for (const row of rows) {
        const cols = Object.keys(row);
        dst.query(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((_c, i) => `$${i + 1}`).join(', ')})`, cols.map((c) => row[c] as PgValue));
      }
    }
    for (const { t, c } of dst.query<{ t: string; c: string }>(
      "SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )) {
      dst.query(`SELECT setval(pg_get_serial_sequence('${t}', '${c}'), coalesce((SELECT max(${c}) FROM ${t}), 0) + 1, false)`);
    }
  });
  return copy;
}

/**
 * `fn`'s reads in one snapshot on PostgreSQL (one REPEATABLE READ transaction that every store
 * read inside joins), for a test that reads the whole store to compare it: each multi-statement
 * read otherwise pays a BEGIN/COMMIT, and first a bare attempt it throws away. The same reads and
 * answers (nothing else writes meanwhile); `fn` may run again after a lost connection, so it must
 * not depend on running once. SQLite: `fn` as it is.
 */
export function inOneSnapshot<T>(lib: Library, fn: () => T): T {
  if (lib.engineKind !== 'postgres') return fn();
  return lib.postgres!.conn.snapshot(fn);
}

const digestQueries = new WeakMap<Library, string>();
/**
 * PostgreSQL: every row of the library's tables as one digest, in one statement (sequences left
 * out: a refused call may draw a number and roll back). Equal digests: equal rows, so every read
 * of the store answers alike (the store keeps no metadata outside its rows; its only cache, of
 * sparse headers, is keyed by content). SQLite: undefined.
 */
export function rowsDigest(lib: Library): string | undefined {
  if (lib.engineKind !== 'postgres') return undefined;
  const conn = lib.postgres!.conn;
  let sql = digestQueries.get(lib);
  if (!sql) {
    const tables = conn.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").map((r) => r.t);
    sql = `SELECT concat_ws(',', ${tables.map((t) => `(SELECT md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM "${t}" x)`).join(', ')}) AS d`;
    digestQueries.set(lib, sql);
  }
  return conn.query<{ d: string }>(sql)[0]!.d;
}
