/**
 * A library whose metadata lives in PostgreSQL (SPEC §11). Each host keeps a small library folder
 * of its own — its staging, its local blob folder if any — holding `library.pg`, the record of
 * where the metadata is: `{"url": "postgres://…"}`, written by `smhfs init --meta URL`, mode 0600
 * (a URL may carry a password, as ~/.pgpass would). Every later command, mount and serve on that
 * folder use the record; a `--meta` naming another server, user or database is refused.
 *
 * The rules are those of every library (src/store/*.ts); only the engine and the row primitives
 * are PostgreSQL's (engine.ts, rows.ts, space-rows.ts). D2 holds as for SQLite: a library is made
 * only in an empty database (migratePostgres refuses one holding other tables) and only in a
 * folder that is absent or empty; a database already holding a library is joined (a second host).
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { fail, SmhError } from '../../errors.js';
import { EMPTY_BLOB_KEY } from '../../blob/types.js';
import { BLOBS_KEY, parseBlobConfig } from '../blob-config.js';
import type { MetaBackend } from '../backend.js';
import type { BlobConfig } from '../types.js';
import { describeTarget, PgConnection, redactUrl } from './connection.js';
import { PgEngine } from './engine.js';
import { pgBlobRows, pgMetaRows, pgTaskRows, pgTokenRows } from './rows.js';
import { migratePostgres, pgSchemaVersion, PG_SCHEMA_VERSION } from './schema.js';
import { pgSpaceRows } from './space-rows.js';
import { pgFeedRows } from './feed-rows.js';

/** The folder's record of where its metadata lives. */
export const PG_RECORD_FILE = 'library.pg';

export interface PgBackend extends MetaBackend {
  postgres: { conn: PgConnection; url: string };
}

/** The URL `dir` records, or undefined when it records none. */
export function pgRecordOf(dir: string): { url: string } | undefined {
  const file = join(dir, PG_RECORD_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new SmhError('LibraryReadOnly', `cannot read ${file}: ${(e as Error).message}`, dir, { cause: e });
  }
  try {
    const rec = JSON.parse(text) as { url?: unknown };
    if (typeof rec.url !== 'string') throw new Error('no url');
    describeTarget(rec.url);
    return { url: rec.url };
  } catch {
    throw fail('NotALibrary', `${file} is damaged (expected {"url": "postgres://…"}); write the library's URL back into it, or run "smhfs init --meta URL" in a new folder`, dir);
  }
}

/** Whether two URLs name the same library: server, port, user and database (the password aside). */
function sameTarget(a: string, b: string): boolean {
  const x = describeTarget(a);
  const y = describeTarget(b);
  return x.host === y.host && x.port === y.port && x.user === y.user && x.database === y.database;
}

/** Write the record atomically (a crash leaves the old file or the new one), 0600. */
export function writePgRecord(dir: string, url: string): void {
  const file = join(dir, PG_RECORD_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify({ url })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** The URL to use for `dir`: its record, or `meta` (which must agree with the record). */
export function pgUrlFor(dir: string, meta: string | undefined): { url: string; recorded: boolean } {
  const rec = pgRecordOf(dir);
  if (rec && meta !== undefined && !sameTarget(rec.url, meta)) {
    throw fail(
      'NotALibrary',
      `${dir} is the library at ${redactUrl(rec.url)}, not ${redactUrl(meta)}; leave out --meta to use it, or use another folder`,
      dir,
    );
  }
  if (rec) return { url: meta ?? rec.url, recorded: true };
  if (meta === undefined) throw fail('NotALibrary', `there is no library at ${dir}`, dir);
  return { url: meta, recorded: false };
}

/**
 * Connect to the library's database and check (with `create`: make or join) the library there.
 * The folder must be absent or empty unless it already records this URL (D2).
 */
export function openPostgresBackend(dir: string, opts: { meta?: string; create?: boolean; readOnly?: boolean }): PgBackend {
  const { url, recorded } = pgUrlFor(dir, opts.meta);
  if (!recorded) {
    if (!opts.create) {
      throw fail('NotALibrary', `there is no library at ${dir}; create one with "smhfs --library ${dir} init --meta ${redactUrl(url)}"`, dir);
    }
    const names = existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : [];
    if (names.length > 0) {
      throw fail('NotALibrary', `${dir} is not empty (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}); a PostgreSQL library needs an empty or new folder`, dir);
    }
  }
  const conn = PgConnection.connectSync(url, { applicationName: 'smhfs' });
  try {
    if (opts.readOnly) {
      const v = pgSchemaVersion(conn);
      if (v === undefined) throw fail('NotALibrary', `database ${JSON.stringify(conn.target.database)} holds no smhfs library`, redactUrl(url));
      if (v > PG_SCHEMA_VERSION) throw fail('SchemaTooNew', `library schema version ${v} is newer than this smhfs supports (${PG_SCHEMA_VERSION}); upgrade smhfs`);
      if (v < PG_SCHEMA_VERSION) throw fail('LibraryReadOnly', `the library has schema version ${v} and needs an upgrade to ${PG_SCHEMA_VERSION}, which needs write access`);
    } else {
      migratePostgres(conn, { create: opts.create === true });
    }
    if (!recorded) {
      mkdirSync(dir, { recursive: true });
      writePgRecord(dir, url);
    }
  } catch (e) {
    conn.close();
    throw e;
  }
  const engine = new PgEngine(conn);
  return {
    engine,
    meta: pgMetaRows(conn),
    blobRows: pgBlobRows(conn),
    taskRows: pgTaskRows(conn),
    tokenRows: pgTokenRows(conn),
    spaceRows: () => pgSpaceRows(conn),
    feedRows: () => pgFeedRows(engine, conn, url),
    // statfs reads totals plus one delta row per writing transaction (migration 4): fold the
    // committed deltas into the totals now and then, at READ COMMITTED, conflicting with nobody.
    maintain: () => void conn.query('SELECT smhfs_fold_space_usage() AS folded'),
    postgres: { conn, url },
  };
}

/** `Library.peek` for a folder recording a PostgreSQL library: read without changing anything. */
export function peekPostgres(dir: string): ReturnType<typeof peekDatabase> {
  return peekDatabase(pgUrlFor(dir, undefined).url);
}

/** What the database at `url` holds, read without changing anything (`library: false`: no smhfs library there). */
export function peekDatabase(url: string): { library: boolean; blobs: BlobConfig | undefined; libraryId: string | undefined; referenced: string[] } {
  const conn = PgConnection.connectSync(url, { applicationName: 'smhfs' });
  try {
    if (pgSchemaVersion(conn) === undefined) return { library: false, blobs: undefined, libraryId: undefined, referenced: [] };
    const meta = (key: string) => conn.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key])[0]?.value;
    const blobs = meta(BLOBS_KEY);
    const referenced = conn
      .query<{ blob: string }>('SELECT DISTINCT blob FROM nodes WHERE blob IS NOT NULL AND blob <> $1 LIMIT 16', [EMPTY_BLOB_KEY])
      .map((r) => r.blob);
    return { library: true, blobs: blobs === undefined ? undefined : parseBlobConfig(blobs), libraryId: meta('library_id'), referenced };
  } finally {
    conn.close();
  }
}
