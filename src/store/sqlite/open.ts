/**
 * Opening a library's SQLite database, with every refusal of D2 (nothing is created over data; a
 * damaged or foreign database is never re-created) and D9 (a full disk may give up the small part
 * of the reserve so that reads still work). `Library.open` asks here for a database and builds the
 * library around it; `peek` reads a library's records without changing anything.
 */
import { accessSync, closeSync, constants as fsc, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { fail, SmhError } from '../../errors.js';
import { EMPTY_BLOB_KEY } from '../../blob/types.js';
import { BLOBS_KEY, parseBlobConfig } from '../blob-config.js';
import type { BlobConfig } from '../types.js';
import { isDiskFull, releaseReserve, RESERVE_BYTES } from './disk.js';
import { sqliteToDomain } from './errors.js';
import { migrate, SCHEMA_VERSION } from './schema.js';

export const DB_FILE = 'library.db';

/** What `peek` answers. */
export interface PeekResult {
  library: boolean;
  blobs: BlobConfig | undefined;
  libraryId: string | undefined;
  referenced: string[];
}


/**
 * What a library folder holds, looked at without opening anything: its state, the data that
 * must never be overwritten by a new library (`data`: blob files, staging, a WAL), and other
 * entries (`others`).
 */
export function inspectLibraryFolder(dir: string): {
  state: 'absent' | 'not-a-folder' | 'no-database' | 'empty-database' | 'database';
  data: string[];
  others: string[];
} {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent', data: [], others: [] };
    throw new SmhError('LibraryReadOnly', `cannot look into ${dir}: ${(e as Error).message}`, dir, { cause: e });
  }
  if (!st.isDirectory()) return { state: 'not-a-folder', data: [], others: [] };
  const names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  const data: string[] = [];
  const blobsDir = join(dir, 'blobs');
  if (names.includes('blobs')) {
    const files = countFiles(blobsDir, new Set(['.tmp']));
    if (files > 0) data.push(`blobs/ (${files} file${files === 1 ? '' : 's'})`);
  }
  if (names.includes('staging')) data.push('staging/');
  const wal = join(dir, `${DB_FILE}-wal`);
  if (existsSync(wal) && statSync(wal).size > 0) data.push(`${DB_FILE}-wal`);
  const others = names.filter((n) => n !== DB_FILE && n !== 'blobs' && n !== 'staging' && !n.startsWith(`${DB_FILE}-`));
  if (!names.includes(DB_FILE)) return { state: 'no-database', data, others };
  const size = statSync(join(dir, DB_FILE)).size;
  return { state: size === 0 ? 'empty-database' : 'database', data, others };
}

/** Files under `dir` (not following links), skipping the top-level names in `skip`; stops counting at 100,000. */
function countFiles(dir: string, skip: Set<string> = new Set()): number {
  let n = 0;
  const stack = [dir];
  while (stack.length > 0 && n < 100_000) {
    const d = stack.pop()!;
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (d === dir && skip.has(e.name)) continue;
      if (e.isDirectory()) stack.push(join(d, e.name));
      else n++;
    }
  }
  return n;
}

/** D2: the refusal of a folder whose database is missing or empty (`what`), naming fsck when data is there. */
function refusal(dir: string, data: string[], what: string): SmhError {
  if (data.length > 0) {
    return fail(
      'NotALibrary',
      `${what}, but the folder holds ${data.join(' and ')}: smhfs will not create a library over them; ` +
        `run "smhfs --library ${dir} fsck" to see what is there (nothing was changed)`,
      dir,
    );
  }
  return fail('NotALibrary', `${what}; create a library there with "smhfs --library ${dir} init"`, dir);
}

/** D2: a database SQLite cannot read as one (NOTADB) or finds damaged (CORRUPT) is never re-created. */
function damaged(dir: string, code: string, cause: unknown): SmhError {
  return new SmhError(
    'NotALibrary',
    `${join(dir, DB_FILE)} is damaged or not an SQLite database (${code}); smhfs will not re-create it: run "smhfs --library ${dir} fsck" (nothing was changed)`,
    dir,
    { cause },
  );
}

/** What `peek` reads from an open database (see there). */
function peekRecord(db: Database.Database): { library: true; blobs: BlobConfig | undefined; libraryId: string | undefined; referenced: string[] } {
  const meta = db.prepare('SELECT value FROM meta WHERE key = ?');
  const row = meta.get(BLOBS_KEY) as { value: string } | undefined;
  const id = meta.get('library_id') as { value: string } | undefined;
  const referenced = (db.prepare('SELECT DISTINCT blob FROM nodes WHERE blob IS NOT NULL AND blob != ? LIMIT 16').all(EMPTY_BLOB_KEY) as Array<{ blob: string }>).map(
    (r) => r.blob,
  );
  return { library: true, blobs: row ? parseBlobConfig(row.value) : undefined, libraryId: id?.value, referenced };
}


/**
 * The database of a writable open of `dir` (see `Library.open`): the folder checked (D2), created
 * when it may be, the database opened, checked, migrated.
 */
export function openWritableDatabase(dir: string, opts: { create?: boolean }): Database.Database {
  const folder = checkFolder(dir, opts.create === true);
  if (folder.state === 'absent' || folder.state === 'no-database') {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new SmhError('LibraryReadOnly', `cannot create the library folder ${dir}: ${(e as Error).message}`, dir);
    }
  }
  try {
    accessSync(dir, fsc.W_OK);
  } catch {
    throw fail('LibraryReadOnly', `the library folder ${dir} is not writable; fix its permissions`, dir);
  }
  try {
    return openDatabase(dir, folder, opts);
  } catch (e) {
    // D9: a full disk cannot even hold SQLite's shared-memory file: give up the small part of
    // the reserve and try again (reads work on a full disk; writes then say InsufficientStorage).
    if (!(e instanceof SmhError) && isDiskFull(e, dir) && releaseReserve(dir, RESERVE_BYTES)) return openDatabase(dir, folder, opts, true);
    if (!(e instanceof SmhError) && isDiskFull(e, dir)) throw new SmhError('InsufficientStorage', `no space left on device for the library database; free some space (the disk holding ${dir} is full)`, dir, { cause: e });
    throw e;
  }
}


/**
 * The database of a read-only open (`Library.open` with `readOnly`). SQLite reads a WAL database
 * read-only only where it can open or create `library.db-shm`; in a folder nobody may write (a
 * read-only file system, another user's library) and after a clean close there is none. Then the database file alone is the whole
 * library — a clean close checkpointed everything into it — so it is read into memory and
 * opened from there (its header switched from WAL to rollback mode in the copy, which the
 * in-memory engine needs). A library whose `library.db-wal` still holds changes cannot be read
 * that way without losing them, and is refused with a message saying so.
 */
export function openReadOnlyDatabase(dir: string): Database.Database {
  const dbPath = join(dir, DB_FILE);
  // D2: the same refusals as a writable open (missing or empty database beside data: fsck).
  checkFolder(dir, false);
  let db: Database.Database | undefined;
  try {
    db = readOnlyDatabase(dir);
    const version = db.pragma('user_version', { simple: true }) as number;
    const ours = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nodes'").get() !== undefined;
    if (version === 0 || !ours) throw fail('NotALibrary', `${dbPath} is not an smhfs library`, dir);
    if (version > SCHEMA_VERSION) {
      throw fail('SchemaTooNew', `library schema version ${version} is newer than this smhfs supports (${SCHEMA_VERSION}); upgrade smhfs`, dir);
    }
    if (version < SCHEMA_VERSION) {
      throw fail('LibraryReadOnly', `the library has schema version ${version} and needs an upgrade to ${SCHEMA_VERSION}, which needs write access; open it once where it is writable`, dir);
    }
  } catch (e) {
    db?.close();
    if (e instanceof SmhError) throw e;
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) throw damaged(dir, code, e);
    throw sqliteToDomain(e);
  }
  return db;
}

/** The database of `dir` opened read-only (see `openReadOnlyDatabase`); SQLite errors are thrown as they are. */
function readOnlyDatabase(dir: string): Database.Database {
  const dbPath = join(dir, DB_FILE);
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 10000');
      db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get(); // whether -shm can be had is settled here
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (code !== 'SQLITE_CANTOPEN' && !code.startsWith('SQLITE_READONLY')) throw e;
  }
  let walBytes = 0;
  try {
    walBytes = statSync(`${dbPath}-wal`).size;
  } catch {
    walBytes = 0;
  }
  if (walBytes > 0) {
    throw fail('LibraryReadOnly', `${DB_FILE}-wal holds changes that were never checkpointed, and this folder cannot be written to apply them; open the library once where it is writable`, dir);
  }
  const image = readFileSync(dbPath);
  // Bytes 18–19 are 2 in WAL mode; the in-memory copy must be a rollback-journal database.
  if (image.length >= 20 && image[18] === 2 && image[19] === 2) image[18] = image[19] = 1;
  return new Database(image, { readonly: true });
}

/**
 * The writable open's database: created 0600 when new (it, and the WAL and SHM files SQLite
 * creates with its mode, name every file of the library), checked before anything changes,
 * migrated. `retry`: a second attempt after a full disk, which may find the file the first made.
 */
function openDatabase(dir: string, folder: ReturnType<typeof inspectLibraryFolder>, opts: { create?: boolean }, retry = false): Database.Database {
  const dbPath = join(dir, DB_FILE);
  const exists = folder.state === 'database';
  let db: Database.Database;
  let opened: Database.Database | undefined;
  try {
    if (!exists) {
      try {
        closeSync(openSync(dbPath, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600));
      } catch (e) {
        if (!retry || (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    db = opened = new Database(dbPath, { fileMustExist: exists });
    db.pragma('busy_timeout = 10000');
    if (exists) {
      // Look before changing anything: a foreign or damaged database must be left exactly as it was.
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
      const version = db.pragma('user_version', { simple: true }) as number;
      const ours = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nodes'").get() !== undefined;
      // An empty database is what a crash between creating the file and the first migration leaves.
      const emptyLeftover = tables.n === 0 && version === 0;
      if (emptyLeftover && (!opts.create || folder.data.length > 0)) {
        db.close();
        throw refusal(dir, folder.data, `${dbPath} is an empty database`);
      }
      if (!emptyLeftover && (version === 0 || !ours)) {
        db.close();
        throw fail('NotALibrary', `${dbPath} is some other SQLite database, not an smhfs library`, dir);
      }
    }
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: consistent after any crash; a power loss may roll back the newest
    // metadata-only transactions (as an unsynced directory would). Commits that back a
    // durability promise (close/fsync of written content, uploads) run with FULL: see transaction().
    db.pragma('synchronous = NORMAL');
    migrate(db);
  } catch (e) {
    if (opened?.open) opened.close();
    if (e instanceof SmhError) throw e;
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) throw damaged(dir, code, e);
    if (isDiskFull(e, dir)) throw e; // the caller may give up reserve space and retry
    throw sqliteToDomain(e);
  }
  return db;
}

/**
 * The D2 checks of `open` on the folder alone, without opening or creating anything: throws
 * what `open` would throw for the folder (with `create`: whether a library may be created
 * there), else returns what it holds. `smhfs init` runs it before it touches a blob store.
 */
export function checkFolder(dir: string, create: boolean): ReturnType<typeof inspectLibraryFolder> {
  const dbPath = join(dir, DB_FILE);
  const folder = inspectLibraryFolder(dir);
  if (folder.state === 'absent') {
    if (!create) throw fail('NotALibrary', `there is no library at ${dir}; create one with "smhfs --library ${dir} init"`, dir);
  } else if (folder.state === 'not-a-folder') {
    throw fail('NotALibrary', `${dir} is not a folder`, dir);
  } else if (folder.state === 'no-database') {
    if (folder.data.length > 0) throw refusal(dir, folder.data, `${dir} has no ${DB_FILE}`);
    // Other files and no library: not a library folder (init would refuse it too, so no init hint).
    if (folder.others.length > 0) throw fail('NotALibrary', `${dir} is not empty and holds no smhfs library; choose an empty or new folder`, dir);
    if (!create) throw refusal(dir, folder.data, `${dir} has no ${DB_FILE}`);
  } else if (folder.state === 'empty-database') {
    // A crash between creating the file and the first migration leaves this; nothing else does.
    if (!create || folder.data.length > 0) throw refusal(dir, folder.data, `${dbPath} is an empty file`);
  }
  return folder;
}

/**
 * What the library in `dir` records, read without changing anything (no migration, no
 * journal-mode switch, nothing created): callers decide which store to open, and check it (D1),
 * before opening the library. `library` is false when `dir` holds no library database; `blobs`
 * is undefined when there is no record — also for a database that is not an smhfs library,
 * which `Library.open` then refuses with the proper error; `libraryId` likewise; `referenced`
 * is a sample of up to 16 blob keys its files reference (the D1 adoption check). Works for a
 * user who may only read the library, as far as SQLite can read it (WAL: `library.db-shm` must
 * exist or be creatable; otherwise `LibraryReadOnly`).
 */
export function peek(dir: string): PeekResult {
  try {
    return peekOnce(dir);
  } catch (e) {
    // D9: as in `open`, a full disk may need the small part of the reserve for SQLite's shared memory.
    if (e instanceof SmhError || !isDiskFull(e, dir)) throw e;
    if (releaseReserve(dir, RESERVE_BYTES)) {
      try {
        return peekOnce(dir);
      } catch (e2) {
        if (e2 instanceof SmhError || !isDiskFull(e2, dir)) throw e2;
      }
    }
    throw new SmhError('InsufficientStorage', `no space left on device for the library database; free some space (the disk holding ${dir} is full)`, dir, { cause: e });
  }
}

function peekOnce(dir: string): PeekResult {
  const none = { library: false, blobs: undefined, libraryId: undefined, referenced: [] };
  const dbPath = join(dir, DB_FILE);
  if (!existsSync(dbPath)) return none;
  let db: Database.Database | undefined;
  try {
    // Read-write if permitted (SQLite opens a write-protected file read-only by itself), so the
    // last connection to close can tidy the WAL files as usual.
    db = new Database(dbPath, { fileMustExist: true });
    db.pragma('busy_timeout = 10000');
    return peekRecord(db);
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    // Not SQLite, damaged, or no tables: not (yet) a library; Library.open says so properly.
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT') || (code === 'SQLITE_ERROR' && /no such table/i.test((e as Error).message))) {
      return { ...none, library: true };
    }
    if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
      // A folder this process cannot write: read the record the way a read-only open would.
      db?.close();
      db = undefined;
      try {
        db = readOnlyDatabase(dir);
        return peekRecord(db);
      } catch (e2) {
        if (e2 instanceof SmhError) throw e2;
        throw new SmhError('LibraryReadOnly', `cannot read ${dbPath}: ${(e2 as Error).message}`, dir, { cause: e2 });
      }
    }
    if (isDiskFull(e, dir)) throw e;
    throw sqliteToDomain(e);
  } finally {
    db?.close();
  }
}
