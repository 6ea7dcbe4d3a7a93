/**
 * `smhfs migrate --to postgres://… | sqlite:` (SPEC S3): move a library's metadata to another
 * engine — SQLite to PostgreSQL, PostgreSQL to SQLite, or PostgreSQL to another PostgreSQL
 * database. The blobs do not move: the library keeps its id, its blob-store record and its
 * store's owner marker (D1).
 *
 * The order is what makes it safe (SPEC §10; native-notes/postgres.md "migrate"):
 * 1. The source is checked with fsck first; what it finds is the baseline the copy is held to.
 *    A library another process uses (a mount, serve, a CLI on another host) is refused: it would
 *    go on writing to the old database after the switch.
 * 2. The target must be empty: a PostgreSQL database holding no tables, or only the empty schema
 *    or unfinished copy of this same library an interrupted migrate left; a SQLite target is a new
 *    file in a scratch folder. Nothing is ever created over data.
 * 3. The source is locked against writers (SQLite: one IMMEDIATE transaction; PostgreSQL: EXCLUSIVE
 *    table locks, readers still served) and copied table by table in key order
 *    (src/store/migrate-tables.ts), in one target transaction, id counters carried over. The copy
 *    carries a `migration_pending` mark: no command opens it as a library until the switch.
 * 4. Verification: every row of every copied table compared, value by value, source against
 *    target; then `fsck` on the target must find no problem the source did not have.
 * 5. The switch: the pending mark is dropped, then the folder's record is pointed at the target
 *    — one atomic rename or record write — and only then is the source marked `migrated_to`
 *    (committed, releasing the lock), so any process still reaching the old database is refused.
 *    A SQLite source file is kept, renamed `library.db.migrated-<time>`; nothing is deleted.
 *
 * A crash (or an error) anywhere before the switch leaves the folder pointing at the untouched
 * source, in use as before; the unfinished target is recognised and replaced by the next run.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fail, SmhError } from '../errors.js';
import { LocalBlobStore } from '../blob/local-store.js';
import type { BlobStore } from '../blob/types.js';
import { checkLibrary, type FsckReport } from './fsck.js';
import { Library, MIGRATED_KEY, PENDING_KEY } from './library.js';
import { deadStagingFolders, processOwner } from './owners.js';
import { describeTarget, PgConnection, redactUrl } from './postgres/connection.js';
import { PG_RECORD_FILE, pgRecordOf, writePgRecord } from './postgres/library.js';
import { migratePostgres, pgSchemaVersion, PG_SCHEMA_VERSION } from './postgres/schema.js';
import { DB_FILE, openWritableDatabase } from './sqlite/open.js';
import { COPIED, comparable, DERIVED, pgRaw, sqliteRaw, type RawDb, type Row } from './migrate-tables.js';

export interface MigrateOptions {
  /** `postgres://…` (or `postgresql://…`), or `sqlite:` / `sqlite:PATH` (PATH: the library folder or its library.db). */
  to: string;
  /** The library's blob store (the CLI decides it); undefined: the folder's own `blobs/`. */
  blobStore?: BlobStore;
  /** Told the phase and how far it is (rows copied or compared of `total`). */
  onProgress?: (phase: string, done: number, total?: number) => void;
  /** Tests only: die (SIGKILL) at this step, to show a crash leaves the source in use. */
  crashAt?: 'copied' | 'verified' | 'switched';
}

export interface MigrateReport {
  library: string;
  libraryId: string;
  from: string;
  to: string;
  /** Rows copied per table. */
  rows: Record<string, number>;
  /** fsck of the source before, of the target after. */
  fsck: { source: FsckReport; target: FsckReport };
  /** Where the SQLite source database was kept (SQLite → PostgreSQL). */
  keptSource?: string;
}

type Target = { kind: 'postgres'; url: string } | { kind: 'sqlite' };

/** Rows per page when copying and comparing. */
const PAGE = 2000;

function parseTarget(dir: string, to: string): Target {
  if (/^postgres(ql)?:\/\//i.test(to)) {
    describeTarget(to); // a malformed URL is refused here, before anything is opened
    return { kind: 'postgres', url: to };
  }
  const m = /^sqlite:(.*)$/i.exec(to);
  if (!m) throw fail('InvalidArgument', `--to must be postgres://user@host/database or sqlite: (the library folder), not ${redactUrl(to)}`);
  const path = m[1] === '' ? dir : resolve(m[1]!);
  // A SQLite library is its folder's library.db: the metadata can only come home to this folder.
  if (path !== dir && path !== join(dir, DB_FILE)) {
    throw fail('InvalidArgument', `a SQLite library's database is ${join(dir, DB_FILE)}: use --to sqlite: (or sqlite:${dir}), not sqlite:${m[1]}`);
  }
  return { kind: 'sqlite' };
}

function die(step: MigrateOptions['crashAt'], opts: MigrateOptions): void {
  if (opts.crashAt === step) process.kill(process.pid, 'SIGKILL');
}

/** Scratch folders of earlier runs whose process is gone: `.migrate-<pid>-<hex>` (ours alone). */
function clearDeadScratch(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = /^\.migrate-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code !== 'ESRCH';
    }
    if (!alive) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** Other processes using the library: they would keep writing to the old database after the switch. */
function othersUsing(lib: Library, raw: RawDb): string[] {
  const found: string[] = [];
  if (lib.engineKind === 'sqlite') {
    let names: string[] = [];
    try {
      names = readdirSync(join(lib.dir, 'staging'));
    } catch {
      names = [];
    }
    const dead = new Set(deadStagingFolders(lib.dir));
    const ours = lib.stagingDir.split('/').pop();
    for (const n of names) if (n !== ours && !dead.has(n)) found.push(`process ${n.split('-')[0]} (staging/${n})`);
  } else {
    const n = Number(
      raw.get("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'smhfs%'", [])?.['n'] ?? 0,
    );
    if (n > 0) found.push(`${n} other smhfs connection${n === 1 ? '' : 's'} to the database`);
  }
  for (const t of ['blob_holds', 'blob_pending']) {
    const n = Number(raw.get(`SELECT count(*) AS n FROM ${t} WHERE owner <> ?`, [processOwner()])?.['n'] ?? 0);
    if (n > 0) found.push(`${n} ${t === 'blob_holds' ? 'open file(s)' : 'upload(s) in flight'} of another process`);
  }
  return found;
}

/** The target's raw tables, empty and at this smhfs's schema; `close` closes it, `folder` is where fsck looks. */
interface OpenTarget {
  raw: RawDb;
  close(): void;
  /** Empty the copied tables (an unfinished copy of this library): inside the copy transaction. */
  stale: boolean;
}

function openPgTarget(url: string, libraryId: string): OpenTarget & { conn: PgConnection } {
  const conn = PgConnection.connectSync(url, { applicationName: 'smhfs-migrate' });
  try {
    const raw = pgRaw(conn);
    let stale = false;
    const version = pgSchemaVersion(conn);
    if (version !== undefined) {
      const db = JSON.stringify(conn.target.database);
      if (version !== PG_SCHEMA_VERSION) throw fail('NotALibrary', `database ${db} holds an smhfs library (schema ${version}); migrate needs an empty database`);
      const pending = raw.get('SELECT value FROM meta WHERE key = ?', [PENDING_KEY])?.['value'];
      const rows = Number(raw.get('SELECT count(*) AS n FROM nodes', [])?.['n'] ?? 0) + Number(raw.get('SELECT count(*) AS n FROM meta', [])?.['n'] ?? 0);
      if (pending !== undefined) {
        if (pending !== libraryId) throw fail('NotALibrary', `database ${db} holds an unfinished migrate of another library (${String(pending)}); use an empty database`);
        stale = true; // our own unfinished copy: never opened as a library, replaced whole
      } else if (rows > 0) {
        throw fail('NotALibrary', `database ${db} already holds an smhfs library; migrate never writes over data: use an empty database`);
      }
    }
    migratePostgres(conn, { create: true }); // refuses a database holding other tables
    return { raw, conn, stale, close: () => conn.close() };
  } catch (e) {
    conn.close();
    throw e;
  }
}

/** Copy every table, compare, in the target's own transaction (committed before fsck looks). */
function copyAll(source: RawDb, target: OpenTarget, libraryId: string, opts: MigrateOptions): Record<string, number> {
  const known = new Set([...COPIED.map((t) => t.name), ...DERIVED[source.kind]]);
  const unknown = source.tables().filter((t) => !known.has(t));
  if (unknown.length > 0) throw fail('NotSupported', `this smhfs does not know how to migrate table(s) ${unknown.join(', ')}; nothing was changed`);
  const rows: Record<string, number> = {};
  const total = COPIED.reduce((a, t) => a + source.count(t.name), 0);
  let done = 0;
  target.raw.exec('BEGIN');
  try {
    if (target.stale) for (const t of COPIED) target.raw.exec(`DELETE FROM ${t.name}`);
    for (const t of COPIED) {
      const cols = source.columns(t.name);
      const theirs = new Set(target.raw.columns(t.name));
      const missing = cols.filter((c) => !theirs.has(c));
      if (missing.length > 0 || theirs.size !== cols.length) {
        throw fail('Internal', `table ${t.name} has other columns on the target (${[...theirs].join(', ')}) than on the source (${cols.join(', ')})`);
      }
      const keyAt = t.key.map((k) => cols.indexOf(k));
      let after: Row | undefined;
      rows[t.name] = 0;
      for (;;) {
        const page = source.page(t, cols, after, PAGE);
        if (page.length === 0) break;
        target.raw.insert(t.name, cols, page);
        rows[t.name] += page.length;
        done += page.length;
        opts.onProgress?.('copying', done, total);
        after = keyAt.map((i) => page[page.length - 1]![i]);
      }
      if (t.counter) target.raw.setCounter(t, source.counter(t));
    }
    target.raw.run('INSERT INTO meta (key, value) VALUES (?, ?)', [PENDING_KEY, libraryId]);
    target.raw.exec('COMMIT');
  } catch (e) {
    try {
      target.raw.exec('ROLLBACK');
    } catch {
      /* the connection is gone, and the transaction with it */
    }
    throw e;
  }
  return rows;
}

/** Every copied row, value by value, in key order on both sides; returns the first differences. */
function compareAll(source: RawDb, target: RawDb, opts: MigrateOptions): string[] {
  const diffs: string[] = [];
  const total = COPIED.reduce((a, t) => a + source.count(t.name), 0);
  let done = 0;
  for (const t of COPIED) {
    const cols = source.columns(t.name);
    const keyAt = t.key.map((k) => cols.indexOf(k));
    if (t.name === 'meta') {
      // A few rows, read whole: the target's own pending mark is left out before comparing.
      const a = source.page(t, cols, undefined, 1e6);
      const b = target.page(t, cols, undefined, 1e6).filter((r) => r[keyAt[0]!] !== PENDING_KEY);
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const x = a[i]?.map(comparable).join('|');
        const y = b[i]?.map(comparable).join('|');
        if (x !== y) diffs.push(`meta: source ${x ?? '(none)'} / target ${y ?? '(none)'}`);
      }
      done += a.length;
      continue;
    }
    let after: Row | undefined;
    for (;;) {
      const a = source.page(t, cols, after, PAGE);
      const b = target.page(t, cols, after, PAGE);
      const n = Math.max(a.length, b.length);
      for (let i = 0; i < n && diffs.length < 20; i++) {
        const x = a[i]?.map(comparable).join('|');
        const y = b[i]?.map(comparable).join('|');
        if (x !== y) diffs.push(`${t.name}: source ${x ?? '(none)'} / target ${y ?? '(none)'}`);
      }
      done += a.length;
      opts.onProgress?.('verifying', done, total);
      if (a.length === 0 && b.length === 0) break;
      const last = a.length >= b.length ? a[a.length - 1]! : b[b.length - 1]!;
      after = keyAt.map((i) => last[i]);
      if (diffs.length >= 20) return diffs;
    }
  }
  return diffs;
}

/** Problems the target's fsck found that the source's did not have (by check, counted). */
function newProblems(source: FsckReport, target: FsckReport): string[] {
  const before = new Map(source.findings.filter((f) => f.problem).map((f) => [f.check, f.count]));
  return target.findings.filter((f) => f.problem && f.count > (before.get(f.check) ?? 0)).map((f) => `${f.check}: ${f.summary}`);
}

/** Make the renames in `dir` durable before the next step counts on them. */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function migrateLibrary(dirArg: string, opts: MigrateOptions): Promise<MigrateReport> {
  const dir = resolve(dirArg);
  const target = parseTarget(dir, opts.to);
  const fromPg = pgRecordOf(dir);
  if (!fromPg && !existsSync(join(dir, DB_FILE))) throw fail('NotALibrary', `there is no library at ${dir}`, dir);
  const from = fromPg ? redactUrl(fromPg.url) : `sqlite:${join(dir, DB_FILE)}`;
  if (target.kind === 'sqlite' && !fromPg) throw fail('InvalidArgument', `${dir} already keeps its metadata in SQLite (${join(dir, DB_FILE)})`, dir);
  if (target.kind === 'postgres' && fromPg) {
    const a = describeTarget(fromPg.url);
    const b = describeTarget(target.url);
    if (a.host === b.host && a.port === b.port && a.database === b.database) throw fail('InvalidArgument', `${dir} already keeps its metadata in ${redactUrl(target.url)}`, dir);
  }
  if (target.kind === 'sqlite' && existsSync(join(dir, DB_FILE))) {
    throw fail('NotALibrary', `${join(dir, DB_FILE)} exists; migrate never writes over data: move it away first (it may be the source of an earlier migrate)`, dir);
  }
  const store = opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs'));
  clearDeadScratch(dir);
  const scratch = join(dir, `.migrate-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    // 1. the baseline: fsck of the source (it also clears the leftovers of processes that are gone)
    opts.onProgress?.('checking the source', 0);
    const sourceFsck = await checkLibrary(dir, { blobStore: store });

    const lib = Library.open(dir, { blobStore: store });
    let targetDb: (OpenTarget & { conn?: PgConnection }) | undefined;
    let sourceTx = false;
    const source: RawDb = lib.engineKind === 'sqlite' ? sqliteRaw(lib.db) : pgRaw(lib.postgres!.conn);
    try {
      lib.reapDeadOwners();
      const libraryId = lib.libraryId;
      const busy = othersUsing(lib, source);
      if (busy.length > 0) throw fail('Busy', `the library is in use (${busy.join('; ')}); unmount it and stop serve and other commands on every host, then migrate`, dir);

      // 2. the target, empty
      if (target.kind === 'postgres') targetDb = openPgTarget(target.url, libraryId);
      else {
        const db = openWritableDatabase(scratch, { create: true });
        targetDb = { raw: sqliteRaw(db), stale: false, close: () => db.close() };
      }

      // 3. the source locked against writers, then copied
      if (source.kind === 'sqlite') source.exec('BEGIN IMMEDIATE');
      else {
        source.exec('BEGIN ISOLATION LEVEL REPEATABLE READ');
        source.exec("SET LOCAL lock_timeout = '15s'");
        source.exec(`LOCK TABLE ${COPIED.map((t) => t.name).join(', ')} IN EXCLUSIVE MODE`);
      }
      sourceTx = true;
      const late = othersUsing(lib, source); // a process that opened the library meanwhile
      if (late.length > 0) throw fail('Busy', `the library came into use (${late.join('; ')}); nothing was changed`, dir);
      const rows = copyAll(source, targetDb, libraryId, opts);
      die('copied', opts);

      // 4. verification: every row, then fsck of the target (a folder of its own recording it)
      const diffs = compareAll(source, targetDb.raw, opts);
      if (diffs.length > 0) throw fail('Internal', `the copy differs from the library (nothing was switched): ${diffs.slice(0, 3).join('; ')}`);
      mkdirSync(scratch, { recursive: true });
      if (target.kind === 'postgres') writePgRecord(scratch, target.url);
      else targetDb.close();
      opts.onProgress?.('checking the copy', 0);
      const targetFsck = await checkLibrary(scratch, { blobStore: store, migrating: true });
      const worse = newProblems(sourceFsck, targetFsck);
      if (worse.length > 0) throw fail('Internal', `fsck of the copy found what the library does not have (nothing was switched): ${worse.slice(0, 3).join('; ')}`);
      die('verified', opts);

      // 5. the switch: the target becomes a library, the folder points at it, the source is marked
      let keptSource: string | undefined;
      if (target.kind === 'postgres') {
        targetDb.raw.run('DELETE FROM meta WHERE key = ?', [PENDING_KEY]);
        writePgRecord(dir, target.url); // the switch (atomic)
      } else {
        const db = openWritableDatabase(scratch, {});
        db.prepare('DELETE FROM meta WHERE key = ?').run(PENDING_KEY);
        db.close(); // checkpoints: library.db alone is the whole library
        renameSync(join(scratch, DB_FILE), join(dir, DB_FILE));
        syncDir(dir);
        renameSync(join(dir, PG_RECORD_FILE), join(dir, `${PG_RECORD_FILE}.migrated-${Date.now()}`)); // the switch
        syncDir(dir);
      }
      die('switched', opts);
      source.run(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [
        MIGRATED_KEY,
        JSON.stringify({ to: target.kind === 'postgres' ? redactUrl(target.url) : `sqlite:${join(dir, DB_FILE)}`, at: new Date().toISOString() }),
      ]);
      source.exec('COMMIT');
      sourceTx = false;
      lib.close();
      if (source.kind === 'sqlite') {
        keptSource = join(dir, `${DB_FILE}.migrated-${Date.now()}`);
        renameSync(join(dir, DB_FILE), keptSource);
        syncDir(dir);
      }
      return {
        library: dir,
        libraryId,
        from,
        to: target.kind === 'postgres' ? redactUrl(target.url) : `sqlite:${join(dir, DB_FILE)}`,
        rows,
        fsck: { source: sourceFsck, target: targetFsck },
        ...(keptSource !== undefined ? { keptSource } : {}),
      };
    } finally {
      if (sourceTx) {
        try {
          source.exec('ROLLBACK');
        } catch {
          /* the connection is gone, and the transaction with it */
        }
      }
      try {
        targetDb?.close();
      } catch {
        /* closed already */
      }
      lib.close();
    }
  } catch (e) {
    if (e instanceof SmhError) throw e;
    throw new SmhError('Internal', `migrate failed, nothing was switched: ${(e as Error).message}`, dir, { cause: e });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    if (!opts.blobStore) await store.close?.().catch(() => undefined);
  }
}
