/**
 * A library: one folder holding `library.db` (SQLite, WAL) and, by default, `blobs/` (the local
 * blob store). `Library` owns the database, the spaces, the blob life cycle around the metadata
 * (leases while uploading, collection after the last reference is committed away: T6/B6), the
 * background purge tasks (L15), retention (T5) and access tokens.
 *
 * Transactions are synchronous and IMMEDIATE; blob bytes are never touched inside one.
 *
 * Blob deletion works only from the library's own records (D3, T6): a transaction that drops the
 * last reference to a key writes the key into `blob_queue` in that same transaction; after the
 * commit the collector (this process at once, any long-running process periodically, `smhfs gc`)
 * dooms queued keys that nothing references, leases (an upload in flight) or holds (a reader in
 * any process, D7), deletes their bytes, and forgets them. A crash anywhere in between leaves the
 * key queued or doomed, never deleted while referenced and never forgotten. The store is never
 * listed to find garbage: only `smhfs gc` does that, and only reports unless told to delete.
 *
 * Rows owned by a process (upload leases, holds, doomed keys) name it as `host:pid:random`; a row
 * whose owner is gone (same host: its pid is not alive; another host: no heartbeat for 5 minutes)
 * is cleaned by the next collection (`reapDeadOwners`).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants as fsc,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { fail, isSmhError, SmhError } from '../errors.js';
import { HashingTransform, hashFile, type ContentHash } from '../blob/hash.js';
import { LocalBlobStore } from '../blob/local-store.js';
import { EMPTY_BLOB_KEY, type BlobInfo, type BlobStore } from '../blob/types.js';
import { SparseLayout, storedBlobSize } from '../blob/sparse.js';
import { SCHEMA_VERSION, migrate, secretHash } from './schema.js';
import { nowUs, Space } from './space.js';
import type { BlobConfig, BlobRef, Task } from './types.js';

export { Space, type ResolveContext } from './space.js';

export const DB_FILE = 'library.db';
/** This process, as named in the rows it owns (leases, holds, doomed keys, tasks). */
export const PROCESS_OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
const OWNER = PROCESS_OWNER;
/** Heartbeat of this process's holds and leases. */
const HEARTBEAT_MS = 30_000;
/** A holder on another host is dead after this long without a heartbeat. */
const REMOTE_STALE_US = 5 * 60_000_000;
/** On this host the pid decides; a heartbeat this old means a reused pid (or a process stopped that long). */
const LOCAL_STALE_US = 60 * 60_000_000;
/** Rows written before owners had heartbeats: an upload lease of another host is trusted for a day. */
const LEGACY_LEASE_STALE_US = 24 * 3600 * 1_000_000;
/** Doomed rows without an owner (written by an older smhfs): stale after a minute, as that version decided. */
const LEGACY_DOOMED_STALE_US = 60_000_000;
/**
 * D9: space kept in `<library>/.smhfs-reserve` so the library still works on a full disk. The
 * first OPEN_RESERVE bytes are given up by any open that cannot create SQLite's shared-memory
 * file (reads then work: a full disk still lists); the rest only by deletes (their WAL frames),
 * so that `rm --permanent`, purge and `trash empty` work when nothing else can. Given-up space is
 * taken back when the library closes, once the disk has room for it twice over.
 */
const RESERVE_FILE = '.smhfs-reserve';
const RESERVE_BYTES = 4 * 1024 * 1024;
const OPEN_RESERVE = 32 * 1024; // what SQLite's shared-memory file takes, no more: writes must still fail
/** Keys a short-lived command collects from an old backlog before it exits (long-running processes take the rest). */
const COMMAND_COLLECT_LIMIT = 500;
/** Transactions of the collector, tasks and leases: they lead to space coming back, so they may use the reserve (D9). */
const FREEING = { freeing: true } as const;
const TASK_BATCH = 500;
const TASK_STALE_US = 30_000_000;
const DEFAULT_RETENTION_DAYS = 30;
/** `meta` key of the library's blob-store record (JSON `BlobConfig`). */
const BLOBS_KEY = 'blobs';

export interface LibraryOptions {
  create?: boolean;
  /**
   * Open for reading only (`smhfs ls/cat/stat` on a library the user may not write, or on a
   * read-only file system): nothing is created, migrated, cleaned or initialised; any write fails
   * with `LibraryReadOnly`. See `openReadOnly`.
   */
  readOnly?: boolean;
  blobStore?: BlobStore;
}

export interface TokenInfo {
  space: string;
  grants: string[];
  userId: string | null;
  expiresAtUs: number;
}

/** A token as `smhfs token list` shows it: never the token itself (only its hash is kept). */
export interface TokenRecord extends TokenInfo {
  id: number;
  createdAtUs: number;
}

/** `meta` key of the library secret's SHA-256 (the secret itself is shown once, by rotateLibrarySecret). */
const SECRET_KEY = 'library_secret_sha256';

/** Staging folders (`staging/<pid>-<random>`) of processes on this host that are gone (B6: crash leftovers). */
export function deadStagingFolders(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(join(dir, 'staging'));
  } catch {
    return [];
  }
  return names.filter((name) => {
    const pid = Number(name.split('-')[0]);
    return Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid);
  });
}

/** `host:pid:random` → host and pid (a host name may itself hold ':'). */
function splitOwner(owner: string): { host: string; pid: number } {
  const parts = owner.split(':');
  if (parts.length < 3) return { host: parts[0] ?? '', pid: Number(parts[1]) };
  return { host: parts.slice(0, -2).join(':'), pid: Number(parts[parts.length - 2]) };
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, someone else's
  }
}

function isLocalOwnerDead(owner: string): boolean {
  const { host, pid } = splitOwner(owner);
  if (host !== hostname()) return false;
  return !pidAlive(pid);
}

/**
 * Is the process that owns a row gone? Same host: its pid is not alive (or its heartbeat is an
 * hour old: a reused pid); another host: no heartbeat for 5 minutes. `lastSeenUs` is the row's
 * heartbeat (or creation time).
 */
export function ownerGone(owner: string | null, lastSeenUs: number, now = nowUs(), legacyStaleUs = LEGACY_DOOMED_STALE_US): boolean {
  if (owner === OWNER) return false;
  if (owner === null) return now - lastSeenUs > legacyStaleUs;
  const { host, pid } = splitOwner(owner);
  if (host === hostname()) return !pidAlive(pid) || now - lastSeenUs > LOCAL_STALE_US;
  return now - lastSeenUs > REMOTE_STALE_US;
}

/**
 * A hold on a blob's bytes (D7): while any process holds a key, no collector in any process
 * deletes it, even after its last reference is gone. `release()` is idempotent; a process that
 * dies releases its holds implicitly (they are reaped as its owner is gone).
 */
export interface BlobHold {
  readonly key: string;
  release(): void;
}

const NO_HOLD: BlobHold = Object.freeze({ key: EMPTY_BLOB_KEY, release: () => undefined });

/** What `reapDeadOwners` cleaned. */
export interface ReapResult {
  holds: number;
  leases: number;
  doomed: number;
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

/** Bytes free for unprivileged use on the file system holding `dir` (Infinity when unknown). */
function freeBytes(dir: string): number {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return Infinity;
  }
}

/** Is this error a full disk? SQLITE_FULL, ENOSPC, or an SQLite I/O error while the disk has no room left. */
function isDiskFull(e: unknown, dir: string): boolean {
  const code = (e as { code?: string }).code ?? '';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return true;
  return code.startsWith('SQLITE_IOERR') && freeBytes(dir) < OPEN_RESERVE;
}

/** Shrink the reserve to `keep` bytes; true when that gave space back. */
function releaseReserve(dir: string, keep: number): boolean {
  const p = join(dir, RESERVE_FILE);
  try {
    const size = statSync(p).size;
    if (size <= keep) return false;
    truncateSync(p, keep);
    return true;
  } catch {
    return false;
  }
}

/** Grow the reserve back to its full size when the disk has room for it twice over. Best effort. */
function topUpReserve(dir: string): void {
  const p = join(dir, RESERVE_FILE);
  const want = RESERVE_BYTES + OPEN_RESERVE;
  let size = 0;
  try {
    size = statSync(p).size;
  } catch {
    size = 0;
  }
  const missing = want - size;
  if (missing <= 0 || freeBytes(dir) < 2 * want) return;
  let fd: number | undefined;
  try {
    fd = openSync(p, 'a');
    // Real zeros, not a sparse extension: the blocks must be taken now to be given back later.
    const zeros = Buffer.alloc(Math.min(missing, 1 << 20));
    for (let left = missing; left > 0; left -= zeros.length) writeSync(fd, zeros, 0, Math.min(left, zeros.length));
  } catch {
    // no room after all, or read-only: the reserve stays as it is
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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

/** What `Library.peek` reads from an open database (see there). */
function peekRecord(db: Database.Database): { library: true; blobs: BlobConfig | undefined; libraryId: string | undefined; referenced: string[] } {
  const meta = db.prepare('SELECT value FROM meta WHERE key = ?');
  const row = meta.get(BLOBS_KEY) as { value: string } | undefined;
  const id = meta.get('library_id') as { value: string } | undefined;
  const referenced = (db.prepare('SELECT DISTINCT blob FROM nodes WHERE blob IS NOT NULL AND blob != ? LIMIT 16').all(EMPTY_BLOB_KEY) as Array<{ blob: string }>).map(
    (r) => r.blob,
  );
  return { library: true, blobs: row ? parseBlobConfig(row.value) : undefined, libraryId: id?.value, referenced };
}

function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function sqliteToDomain(e: unknown): unknown {
  if (e instanceof SmhError) return e;
  const code = (e as { code?: string }).code ?? '';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new SmhError('Busy', 'the library is busy (another process holds a write lock); try again', undefined, { cause: e });
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
    return new SmhError('LibraryReadOnly', 'the library cannot be written (read-only folder or file); fix its permissions', undefined, { cause: e });
  }
  if (code.startsWith('SQLITE_')) {
    return new SmhError('Internal', `database error ${code}: ${(e as Error).message}`, undefined, { cause: e });
  }
  return e;
}

export class Library {
  readonly dir: string;
  readonly db: Database.Database;
  private readRunner: Database.Transaction<(f: () => unknown) => unknown> | undefined;
  readonly blobs: BlobStore;
  readonly stagingDir: string;
  /** Opened with `readOnly`: every write fails (`LibraryReadOnly`); no tasks, no background work. */
  readOnly = false;

  private readonly spaces = new Map<string, Space>();
  private txDepth = 0;
  private txDrops: string[] = [];
  /** This process's holds: one row per key, counted here. */
  private readonly holds = new Map<string, { id: number; refs: number }>();
  private heartbeat: NodeJS.Timeout | undefined;
  /** Leases this process took and has not yet seen end (approximate; only keeps the heartbeat running). */
  private leasesOut = 0;
  private gcQueue = new Set<string>();
  private gcRunning: Promise<void> | undefined;
  /** Keys this process's collector has doomed and not yet finished deleting (see takeLease). */
  private readonly deleting = new Map<string, Promise<void>>();
  private taskRun: Promise<void> | undefined;
  private background: NodeJS.Timeout | undefined;
  private closed = false;
  private ownsBlobs = false;
  private readonly q;

  private constructor(dir: string, db: Database.Database, blobs: BlobStore) {
    this.dir = dir;
    this.db = db;
    this.blobs = blobs;
    this.stagingDir = join(dir, 'staging', `${process.pid}-${randomBytes(4).toString('hex')}`);
    const p = (sql: string) => db.prepare(sql);
    this.q = {
      meta: p('SELECT value FROM meta WHERE key = ?'),
      setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      addMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
      blobSample: p('SELECT DISTINCT blob FROM nodes WHERE blob IS NOT NULL AND blob != ? LIMIT ?'),
      space: p('SELECT root, trash FROM spaces WHERE name = ?'),
      spaces: p('SELECT name FROM spaces ORDER BY name'),
      blobSize: p('SELECT size, layout FROM nodes WHERE blob = ? LIMIT 1'),
      referenced: p('SELECT 1 FROM nodes WHERE blob = ? LIMIT 1'),
      pendingKey: p('SELECT 1 FROM blob_pending WHERE key = ? LIMIT 1'),
      pendingAll: p('SELECT id, key, owner, created, heartbeat FROM blob_pending'),
      pendingById: p('SELECT key FROM blob_pending WHERE id = ?'),
      pendingOf: p('SELECT id, key FROM blob_pending WHERE owner = ?'),
      insertPending: p('INSERT INTO blob_pending (key, owner, created, heartbeat) VALUES (?, ?, ?, ?)'),
      deletePending: p('DELETE FROM blob_pending WHERE id = ?'),
      beatPending: p('UPDATE blob_pending SET heartbeat = ? WHERE owner = ?'),
      doomed: p('SELECT created, owner FROM blob_doomed WHERE key = ?'),
      doomedAll: p('SELECT key, created, owner FROM blob_doomed'),
      doom: p('INSERT OR IGNORE INTO blob_doomed (key, created, owner) VALUES (?, ?, ?)'),
      undoom: p('DELETE FROM blob_doomed WHERE key = ?'),
      queued: p('SELECT 1 FROM blob_queue WHERE key = ?'),
      enqueue: p('INSERT OR IGNORE INTO blob_queue (key, queued) VALUES (?, ?)'),
      dequeue: p('DELETE FROM blob_queue WHERE key = ?'),
      queuePage: p('SELECT key FROM blob_queue WHERE key > ? ORDER BY key LIMIT ?'),
      queueAny: p('SELECT 1 FROM blob_queue LIMIT 1'),
      held: p('SELECT 1 FROM blob_holds WHERE key = ? LIMIT 1'),
      insertHold: p('INSERT INTO blob_holds (key, owner, heartbeat, created) VALUES (?, ?, ?, ?)'),
      deleteHold: p('DELETE FROM blob_holds WHERE id = ?'),
      deleteHoldsOf: p('DELETE FROM blob_holds WHERE owner = ?'),
      beatHolds: p('UPDATE blob_holds SET heartbeat = ? WHERE owner = ?'),
      ownsRows: p('SELECT 1 FROM blob_holds WHERE owner = ? UNION ALL SELECT 1 FROM blob_pending WHERE owner = ? LIMIT 1'),
      holdOwners: p('SELECT owner, max(heartbeat) AS heartbeat FROM blob_holds GROUP BY owner'),
      tasks: p('SELECT * FROM tasks ORDER BY id'),
      task: p('SELECT * FROM tasks WHERE id = ?'),
      claimable: p(`SELECT * FROM tasks WHERE state = 'queued' OR (state = 'running' AND (heartbeat < ? OR owner IS NOT NULL)) ORDER BY id`),
      claim: p(`UPDATE tasks SET state = 'running', owner = ?, heartbeat = ?, updated = ? WHERE id = ?`),
      progress: p('UPDATE tasks SET done = done + ?, heartbeat = ?, updated = ? WHERE id = ?'),
      finish: p('UPDATE tasks SET state = ?, error = ?, updated = ?, owner = NULL WHERE id = ?'),
      insertToken: p('INSERT INTO tokens (hash, space, grants, user_id, expires, created) VALUES (?, ?, ?, ?, ?, ?)'),
      token: p('SELECT * FROM tokens WHERE hash = ?'),
      tokens: p('SELECT * FROM tokens ORDER BY id'),
      revokeToken: p('DELETE FROM tokens WHERE id = ?'),
      revokeTokenHash: p('DELETE FROM tokens WHERE hash = ?'),
      purgeTokens: p('DELETE FROM tokens WHERE expires < ?'),
      insertSpace: p('INSERT INTO spaces (name, root, trash, created) VALUES (?, ?, ?, ?)'),
      insertDir: p(`INSERT INTO nodes (space, kind, mode, atime, mtime, ctime, btime) VALUES (?, 'dir', ?, ?, ?, ?, ?)`),
    };
  }

  /**
   * Open the library in `dir`; with `create`, initialise it when the folder holds none yet.
   *
   * D2, nothing is created over data: a folder without a library database is initialised only
   * when it is empty (or holds only an empty database left by an initialisation that crashed
   * before its first migration, and no blobs or staging). A missing, empty, unreadable or damaged
   * database beside blobs or staging is refused with a message naming `smhfs fsck`; a folder that
   * does not exist, or holds no library, is refused with a hint naming `smhfs init`.
   */
  static open(dir: string, opts: LibraryOptions = {}): Library {
    if (opts.readOnly) return Library.openReadOnly(dir, opts);
    const dbPath = join(dir, DB_FILE);
    const folder = Library.checkFolder(dir, opts.create === true);
    const exists = folder.state === 'database';
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
    let db: Database.Database;
    try {
      db = Library.openDatabase(dir, folder, opts);
    } catch (e) {
      // D9: a full disk cannot even hold SQLite's shared-memory file: give up the small part of
      // the reserve and try again (reads work on a full disk; writes then say InsufficientStorage).
      if (!(e instanceof SmhError) && isDiskFull(e, dir) && releaseReserve(dir, RESERVE_BYTES)) db = Library.openDatabase(dir, folder, opts, true);
      else if (!(e instanceof SmhError) && isDiskFull(e, dir)) throw new SmhError('InsufficientStorage', `no space left on device for the library database; free some space (the disk holding ${dir} is full)`, dir, { cause: e });
      else throw e;
    }
    const blobs = opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs'));
    const lib = new Library(dir, db, blobs);
    lib.ownsBlobs = opts.blobStore === undefined; // a store the caller passed in is the caller's to close
    lib.initialise();
    lib.cleanStaging();
    return lib;
  }

  /**
   * A read-only open. SQLite reads a WAL database read-only only where it can open or create
   * `library.db-shm`; in a folder nobody may write (a read-only file system, another user's
   * library) and after a clean close there is none. Then the database file alone is the whole
   * library — a clean close checkpointed everything into it — so it is read into memory and
   * opened from there (its header switched from WAL to rollback mode in the copy, which the
   * in-memory engine needs). A library whose `library.db-wal` still holds changes cannot be read
   * that way without losing them, and is refused with a message saying so.
   */
  private static openReadOnly(dir: string, opts: LibraryOptions): Library {
    const dbPath = join(dir, DB_FILE);
    // D2: the same refusals as a writable open (missing or empty database beside data: fsck).
    Library.checkFolder(dir, false);
    let db: Database.Database | undefined;
    try {
      db = Library.readOnlyDatabase(dir);
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
    const lib = new Library(dir, db, opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs')));
    lib.ownsBlobs = opts.blobStore === undefined;
    lib.readOnly = true;
    return lib;
  }

  /** The database of `dir` opened read-only (see `openReadOnly`); SQLite errors are thrown as they are. */
  private static readOnlyDatabase(dir: string): Database.Database {
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
  private static openDatabase(dir: string, folder: ReturnType<typeof inspectLibraryFolder>, opts: LibraryOptions, retry = false): Database.Database {
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
  static checkFolder(dir: string, create: boolean): ReturnType<typeof inspectLibraryFolder> {
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
  static peek(dir: string): { library: boolean; blobs: BlobConfig | undefined; libraryId: string | undefined; referenced: string[] } {
    try {
      return Library.peekOnce(dir);
    } catch (e) {
      // D9: as in `open`, a full disk may need the small part of the reserve for SQLite's shared memory.
      if (e instanceof SmhError || !isDiskFull(e, dir)) throw e;
      if (releaseReserve(dir, RESERVE_BYTES)) {
        try {
          return Library.peekOnce(dir);
        } catch (e2) {
          if (e2 instanceof SmhError || !isDiskFull(e2, dir)) throw e2;
        }
      }
      throw new SmhError('InsufficientStorage', `no space left on device for the library database; free some space (the disk holding ${dir} is full)`, dir, { cause: e });
    }
  }

  private static peekOnce(dir: string): { library: boolean; blobs: BlobConfig | undefined; libraryId: string | undefined; referenced: string[] } {
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
          db = Library.readOnlyDatabase(dir);
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

  /** `peek`, the blob-store record only. */
  static peekBlobConfig(dir: string): { library: boolean; blobs: BlobConfig | undefined } {
    const { library, blobs } = Library.peek(dir);
    return { library, blobs };
  }

  private initialise(): void {
    this.transaction(() => {
      if (!this.q.meta.get('library_id')) {
        this.q.setMeta.run('library_id', `smh${randomBytes(8).toString('hex')}`);
        this.q.setMeta.run('retention_days', String(DEFAULT_RETENTION_DAYS));
      }
      if (!this.q.space.get('-')) this.insertSpace('-');
    });
  }

  private insertSpace(name: string): void {
    const t = nowUs();
    const root = Number(this.q.insertDir.run(name, 0o040755, t, t, t, t).lastInsertRowid);
    const trash = Number(this.q.insertDir.run(name, 0o040555, t, t, t, t).lastInsertRowid);
    this.q.insertSpace.run(name, root, trash, t);
  }

  /** B6: staging folders of processes that are gone are leftovers of a crash. */
  private cleanStaging(): void {
    const base = join(this.dir, 'staging');
    try {
      mkdirSync(this.stagingDir, { recursive: true });
    } catch (e) {
      // A full disk (D9): made when an upload needs it; deletes must not wait for it.
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC' && (e as NodeJS.ErrnoException).code !== 'EDQUOT') throw e;
    }
    for (const name of deadStagingFolders(this.dir)) rmSync(join(base, name), { recursive: true, force: true });
  }

  get libraryId(): string {
    return (this.q.meta.get('library_id') as { value: string }).value;
  }

  /**
   * Whether `secret` is the library secret (SMH token endpoint). Only its hash is kept; a library
   * has no secret until `rotateLibrarySecret` makes one.
   */
  checkLibrarySecret(secret: string): boolean {
    const row = this.q.meta.get(SECRET_KEY) as { value: string } | undefined;
    const given = Buffer.from(secretHash(secret), 'hex');
    const kept = Buffer.from(row?.value ?? secretHash(randomBytes(24).toString('hex')), 'hex');
    return timingSafeEqual(given, kept) && row !== undefined;
  }

  /** Make a new library secret, keep its hash, and return it (the only time it is shown). */
  rotateLibrarySecret(): string {
    const secret = randomBytes(24).toString('hex');
    this.transaction(() => this.q.setMeta.run(SECRET_KEY, secretHash(secret)));
    return secret;
  }

  get retentionDays(): number {
    return Number((this.q.meta.get('retention_days') as { value: string } | undefined)?.value ?? DEFAULT_RETENTION_DAYS);
  }

  set retentionDays(days: number) {
    if (!Number.isInteger(days) || days < 0) throw fail('InvalidArgument', 'retention must be a whole number of days (0 = keep forever)');
    this.transaction(() => this.q.setMeta.run('retention_days', String(days)));
  }

  /** Where this library's blob bytes live, as recorded (undefined: no record, see `recordBlobConfig`). */
  blobConfig(): BlobConfig | undefined {
    const row = this.q.meta.get(BLOBS_KEY) as { value: string } | undefined;
    return row ? parseBlobConfig(row.value) : undefined;
  }

  /** Record where the blob bytes live, replacing any record (re-pointing moves no bytes). */
  setBlobConfig(config: BlobConfig): void {
    const value = JSON.stringify(cleanBlobConfig(config));
    this.transaction(() => this.q.setMeta.run(BLOBS_KEY, value));
  }

  /** Record `config` unless a record exists; returns the record in force afterwards. */
  recordBlobConfig(config: BlobConfig): BlobConfig {
    const value = JSON.stringify(cleanBlobConfig(config));
    return this.transaction(() => {
      this.q.addMeta.run(BLOBS_KEY, value);
      return parseBlobConfig((this.q.meta.get(BLOBS_KEY) as { value: string }).value);
    });
  }

  /** Up to `n` distinct non-empty blob keys that nodes reference (index order: hash order, so a spread sample). */
  sampleBlobKeys(n: number): string[] {
    return (this.q.blobSample.all(EMPTY_BLOB_KEY, n) as Array<{ blob: string }>).map((r) => r.blob);
  }

  // ───────────────────────────── spaces ─────────────────────────────

  space(name = '-'): Space {
    const cached = this.spaces.get(name);
    if (cached) return cached;
    const row = this.q.space.get(name) as { root: number; trash: number } | undefined;
    if (!row) throw fail('SpaceNotFound', `no space '${name}' in this library`, name);
    const s = new Space(this, this.db, name, row.root, row.trash);
    this.spaces.set(name, s);
    return s;
  }

  createSpace(name: string): Space {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw fail('InvalidArgument', 'a space name is 1–64 letters, digits, - or _', name);
    this.transaction(() => {
      if (this.q.space.get(name)) throw fail('SameNameDirectoryOrFileExists', `space '${name}' exists`, name);
      this.insertSpace(name);
    });
    return this.space(name);
  }

  spaceNames(): string[] {
    return (this.q.spaces.all() as Array<{ name: string }>).map((r) => r.name);
  }

  // ───────────────────────────── transactions ─────────────────────────────

  /**
   * Run a read of several statements in one DEFERRED transaction: they see one snapshot (a
   * rename committed by another process between two of them cannot tear a path), and the WAL
   * read lock is taken once instead of per statement (about 20% of a stat). Inside any
   * transaction it just runs.
   */
  snapshot<T>(fn: () => T): T {
    if (this.closed) throw fail('Internal', 'the library is closed');
    if (this.db.inTransaction) return fn();
    try {
      // One wrapper made once: building a transaction function per call cost as much as a query.
      this.readRunner ??= this.db.transaction((f: () => unknown) => f());
      return this.readRunner.deferred(fn) as T;
    } catch (e) {
      throw sqliteToDomain(e);
    }
  }

  /**
   * Run `fn` in one IMMEDIATE transaction (nested calls join the outer one). `durable` syncs the
   * WAL at commit (synchronous=FULL), which also makes every earlier commit durable.
   */
  transaction<T>(fn: () => T, opts: { durable?: boolean; freeing?: boolean } = {}): T {
    if (this.closed) throw fail('Internal', 'the library is closed');
    if (this.txDepth > 0) return fn();
    this.txDepth++;
    this.txDrops = [];
    let result: T;
    try {
      if (opts.durable) this.db.pragma('synchronous = FULL');
      try {
        result = this.db.transaction(fn).immediate();
      } catch (e) {
        if (e instanceof SmhError || !isDiskFull(e, this.dir)) throw e;
        // D9: a delete on a full disk may use the reserve for its WAL frames, once.
        if (!opts.freeing || !releaseReserve(this.dir, 0)) throw this.diskFull(e);
        this.txDrops = [];
        try {
          result = this.db.transaction(fn).immediate();
        } catch (e2) {
          throw !(e2 instanceof SmhError) && isDiskFull(e2, this.dir) ? this.diskFull(e2) : e2;
        }
      }
    } catch (e) {
      this.txDrops = [];
      throw sqliteToDomain(e);
    } finally {
      if (opts.durable) this.db.pragma('synchronous = NORMAL');
      this.txDepth--;
    }
    const drops = this.txDrops;
    this.txDrops = [];
    if (drops.length > 0) this.scheduleCollect(drops);
    return result;
  }

  /**
   * D9: the error for a full disk, saying what `smhfs trash empty` would free (the bytes of blobs
   * only items in the recycle bin reference).
   */
  diskFull(cause?: unknown): SmhError {
    let hint = '';
    try {
      const { bytes, items } = this.trashReclaimable();
      hint =
        items > 0
          ? `; "smhfs trash empty" would free ${formatBytes(bytes)} (${items} item${items === 1 ? '' : 's'} in the recycle bin), "smhfs rm --permanent" frees a file's space at once`
          : '; the recycle bin is empty: free space with "smhfs rm --permanent" or outside the library';
    } catch {
      hint = '; free space with "smhfs trash empty" or "smhfs rm --permanent"';
    }
    // Shell words, as the CLI prints SQLite's SQLITE_FULL: "no space left on device" (ENOSPC).
    const what = /^SQLITE_/.test(String((cause as { code?: unknown } | undefined)?.code ?? '')) ? 'the library database' : 'the library\'s files';
    return new SmhError('InsufficientStorage', `no space left on device for ${what}${hint}`, undefined, { cause });
  }

  /**
   * Make (or fill up) the reserve that keeps deletes working on a full disk (D9). `smhfs init`
   * and every mount/serve start call it; a library closes it back to full size when it can.
   */
  ensureReserve(): void {
    topUpReserve(this.dir);
  }

  /** Bytes of the blobs that only nodes in recycle bins reference: what emptying the bins frees. */
  trashReclaimable(): { bytes: number; items: number } {
    const row = this.db
      .prepare(
        `WITH RECURSIVE bin(id) AS (SELECT trash FROM spaces UNION ALL SELECT e.node FROM entries e JOIN bin ON e.parent = bin.id)
         SELECT coalesce(sum(size), 0) AS bytes FROM (
           SELECT n.blob, max(n.size) AS size FROM nodes n WHERE n.id IN (SELECT id FROM bin) AND n.blob IS NOT NULL AND n.blob != ?
             AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.blob = n.blob AND m.id NOT IN (SELECT id FROM bin))
           GROUP BY n.blob)`,
      )
      .get(EMPTY_BLOB_KEY) as { bytes: number };
    const items = (this.db.prepare('SELECT count(*) AS n FROM recycle_items').get() as { n: number }).n;
    return { bytes: row.bytes, items };
  }

  /**
   * Called inside a transaction: these blob keys may have lost their last reference. They are
   * queued in the same transaction (D3: the record survives a crash) and collected after it commits.
   */
  dropBlobs(keys: string[]): void {
    if (this.txDepth === 0) throw fail('Internal', 'dropBlobs outside a transaction');
    const t = nowUs();
    for (const k of keys) {
      if (k === EMPTY_BLOB_KEY) continue;
      this.q.enqueue.run(k, t);
      this.txDrops.push(k);
    }
  }

  /** Called inside the commit that references a stored blob: its upload lease ends. */
  useLease(ref: BlobRef): void {
    if (ref.lease !== undefined && this.q.deletePending.run(ref.lease).changes > 0) this.leasesOut = Math.max(0, this.leasesOut - 1);
    if (ref.key !== EMPTY_BLOB_KEY && this.q.doomed.get(ref.key)) {
      throw fail('Busy', 'the blob is being garbage-collected; retry the write');
    }
  }

  // ───────────────────────────── blobs ─────────────────────────────

  /**
   * Store a local file as a blob; the returned ref holds a lease until committed. `hash` skips
   * hashing when the caller computed it while writing; `consume` lets the store take the file
   * over (a rename for the local store) — the path is gone afterwards.
   */
  async storeBlobFromFile(
    path: string,
    opts: { hash?: ContentHash; consume?: boolean; onProgress?: (storedBytes: number) => void } = {},
  ): Promise<BlobRef> {
    const h = opts.hash ?? (await hashFile(path));
    return this.storeHashed(path, h.sha256, h.md5, h.size, opts.consume ?? false, opts.onProgress);
  }

  /** Stage a stream to a local file (hashing as it goes), then store it. */
  async storeBlobFromStream(body: Readable, opts: { onProgress?: (storedBytes: number) => void } = {}): Promise<BlobRef> {
    const staged = join(this.stagingDir, `upload-${randomBytes(8).toString('hex')}`);
    const hasher = new HashingTransform();
    try {
      try {
        mkdirSync(this.stagingDir, { recursive: true }); // not made at open on a full disk
        await pipeline(body, hasher, createWriteStream(staged));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') throw this.diskFull(e);
        throw e;
      }
      const h = hasher.digest();
      return await this.storeHashed(staged, h.sha256, h.md5, h.size, true, opts.onProgress);
    } finally {
      await unlink(staged).catch(() => undefined);
    }
  }

  private async storeHashed(
    path: string,
    key: string,
    etag: string,
    size: number,
    consume: boolean,
    onProgress?: (storedBytes: number) => void,
  ): Promise<BlobRef> {
    if (key === EMPTY_BLOB_KEY) {
      if (consume) await unlink(path).catch(() => undefined);
      return { key, size: 0, etag };
    }
    const lease = await this.takeLease(key);
    try {
      if (consume && this.blobs.adoptFile) {
        try {
          await this.blobs.adoptFile(key, path, size);
          return { key, size, etag, lease };
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
        }
      }
      await this.blobs.putFile(key, path, size, onProgress);
      if (consume) await unlink(path).catch(() => undefined);
    } catch (e) {
      this.releaseLease(lease);
      if (isSmhError(e, 'InsufficientStorage')) throw this.diskFull(e); // D9, with what the bin would free
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', `storing the blob failed: ${(e as Error).message}`, undefined, { cause: e });
    }
    return { key, size, etag, lease };
  }

  private async takeLease(key: string): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const lease = this.transaction(() => {
        const doomed = this.q.doomed.get(key) as { created: number; owner: string | null } | undefined;
        if (doomed) {
          // A collector that died mid-delete leaves its row behind: the key is no one's, and the
          // upload that follows stores the bytes again if the delete happened.
          if (!ownerGone(doomed.owner, doomed.created)) return undefined;
          this.q.undoom.run(key);
        }
        const t = nowUs();
        return Number(this.q.insertPending.run(key, OWNER, t, t).lastInsertRowid);
      });
      if (lease !== undefined) {
        this.leasesOut++;
        this.startHeartbeat();
        return lease;
      }
      if (attempt > 200) throw fail('Busy', 'a blob with the same content is being deleted; retry');
      // Our own collector deleting it: go on the moment it is done (writing the same bytes again
      // right after deleting them is common: rm, then cp again). Another process's: poll.
      const ours = this.deleting.get(key);
      await (ours ?? new Promise((r) => setTimeout(r, 25)));
    }
  }

  /** End an upload lease without a commit: its key is queued (collected if nothing references it). */
  private releaseLease(lease: number): void {
    this.transaction(() => {
      const row = this.q.pendingById.get(lease) as { key: string } | undefined;
      if (!row) return;
      this.q.deletePending.run(lease);
      this.leasesOut = Math.max(0, this.leasesOut - 1);
      this.dropBlobs([row.key]);
    }, FREEING);
  }

  /** A stored blob that will not be committed: drop its lease and collect it if unreferenced. */
  abandonBlob(ref: BlobRef): void {
    if (ref.lease !== undefined) this.releaseLease(ref.lease);
    else if (ref.key !== EMPTY_BLOB_KEY) this.transaction(() => this.dropBlobs([ref.key]), FREEING);
  }

  // ───────────────────────────── holds (D7) ─────────────────────────────

  /**
   * Hold `key`'s bytes for a reader (D7): until `release()`, no collector in any process deletes
   * them, even once no file references them. Refused (FileNotFound) when the bytes are already
   * gone or being deleted — the file the caller resolved was deleted meanwhile: resolve again.
   * One row per key and process, counted in memory, so holding a key twice costs no write. On a
   * library this user may only read nothing can be recorded: the hold is then a no-op (such a
   * reader cannot protect its bytes, as before holds existed).
   */
  holdBlob(key: string): BlobHold {
    if (key === EMPTY_BLOB_KEY) return NO_HOLD;
    if (this.readOnly) return { key, release: () => undefined }; // nothing can be recorded (see above)
    let entry = this.holds.get(key);
    if (!entry) {
      let id: number;
      try {
        id = this.transaction(() => {
          if (this.q.doomed.get(key)) throw fail('FileNotFound', 'the file was deleted while it was being opened (its bytes are being deleted)', key);
          if (!this.q.referenced.get(key) && !this.q.pendingKey.get(key) && !this.q.queued.get(key)) {
            throw fail('FileNotFound', 'the file was deleted while it was being opened (its bytes are gone)', key);
          }
          const t = nowUs();
          return Number(this.q.insertHold.run(key, OWNER, t, t).lastInsertRowid);
        });
      } catch (e) {
        if (isSmhError(e, 'LibraryReadOnly')) return { key, release: () => undefined };
        throw e;
      }
      entry = { id, refs: 0 };
      this.holds.set(key, entry);
      this.startHeartbeat();
    }
    entry.refs++;
    const held = entry;
    let released = false;
    return {
      key,
      release: () => {
        if (released) return;
        released = true;
        if (--held.refs > 0 || this.holds.get(key) !== held) return;
        this.holds.delete(key);
        if (this.closed) return; // close() dropped the rows
        let queued = false;
        try {
          queued = this.transaction(() => {
            this.q.deleteHold.run(held.id);
            return this.q.queued.get(key) !== undefined;
          }, FREEING);
        } catch (e) {
          // The row stays until this process is gone or the next collection reaps it.
          console.error(`smhfs: releasing a blob hold failed (it is cleaned up later): ${(e as Error).message}`);
          return;
        }
        if (queued) this.scheduleCollect([key]);
      },
    };
  }

  /** Keep this process's holds and leases alive for other processes' collectors. */
  private startHeartbeat(): void {
    if (this.heartbeat || this.closed) return;
    this.heartbeat = setInterval(() => {
      if (this.closed) return;
      try {
        const t = nowUs();
        const n = this.transaction(() => this.q.beatHolds.run(t, OWNER).changes + this.q.beatPending.run(t, OWNER).changes);
        if (n === 0 && this.holds.size === 0) {
          this.leasesOut = 0;
          clearInterval(this.heartbeat);
          this.heartbeat = undefined;
        }
      } catch (e) {
        console.error(`smhfs: blob hold heartbeat failed (will retry): ${(e as Error).message}`);
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /**
   * Clean the rows of processes that are gone (`ownerGone`): their holds are dropped, their
   * upload leases end (the keys are queued: collected unless something references them), and
   * keys their collector had doomed are queued again (their delete may or may not have happened).
   */
  reapDeadOwners(opts: { dryRun?: boolean } = {}): ReapResult {
    const now = nowUs();
    const deadHolders = (this.q.holdOwners.all() as Array<{ owner: string; heartbeat: number }>)
      .filter((h) => ownerGone(h.owner, h.heartbeat, now))
      .map((h) => h.owner);
    const deadLeases = (this.q.pendingAll.all() as Array<{ id: number; key: string; owner: string; created: number; heartbeat: number | null }>).filter(
      (p) => p.owner !== OWNER && (p.heartbeat === null ? isLocalOwnerDead(p.owner) || now - p.created > LEGACY_LEASE_STALE_US : ownerGone(p.owner, p.heartbeat, now)),
    );
    const deadDoomed = (this.q.doomedAll.all() as Array<{ key: string; created: number; owner: string | null }>).filter(
      (d) => d.owner !== OWNER && ownerGone(d.owner, d.created, now),
    );
    const r: ReapResult = { holds: 0, leases: deadLeases.length, doomed: deadDoomed.length };
    if (opts.dryRun) {
      r.holds = deadHolders.length === 0 ? 0 : (this.db.prepare(`SELECT count(*) AS n FROM blob_holds WHERE owner IN (${deadHolders.map(() => '?').join(',')})`).get(...deadHolders) as { n: number }).n;
      return r;
    }
    if (deadHolders.length === 0 && deadLeases.length === 0 && deadDoomed.length === 0) return r;
    this.transaction(() => {
      for (const o of deadHolders) r.holds += this.q.deleteHoldsOf.run(o).changes;
      for (const p of deadLeases) {
        this.q.deletePending.run(p.id);
        this.dropBlobs([p.key]);
      }
      for (const d of deadDoomed) {
        this.q.undoom.run(d.key);
        this.dropBlobs([d.key]);
      }
    }, FREEING);
    return r;
  }

  /** Size of a committed blob (content-addressed, so any node holding it knows). */
  blobSize(key: string): number | undefined {
    if (key === EMPTY_BLOB_KEY) return 0;
    const row = this.q.blobSize.get(key) as { size: number; layout: string | null } | undefined;
    return row ? storedBlobSize(row) : undefined;
  }

  private scheduleCollect(keys: string[]): void {
    for (const k of keys) if (k !== EMPTY_BLOB_KEY) this.gcQueue.add(k);
    if (this.gcQueue.size === 0 || this.gcRunning) return;
    this.gcRunning = (async () => {
      try {
        while (this.gcQueue.size > 0 && !this.closed) {
          const batch = [...this.gcQueue];
          this.gcQueue.clear();
          await this.collectKeys(batch);
        }
      } catch (e) {
        console.error(`smhfs: blob collection failed (will retry at the next garbage collection): ${(e as Error).message}`);
      } finally {
        this.gcRunning = undefined;
      }
    })();
  }

  /**
   * T6/D3: delete those of these queued keys that no committed metadata, no upload lease and no
   * hold references. They are doomed first (in a transaction), so no new commit or hold can start
   * using them; a referenced key leaves the queue; a leased or held one stays queued.
   */
  private async collectKeys(keys: string[]): Promise<number> {
    const doomed = this.transaction(() =>
      keys.filter((k) => {
        if (!this.q.queued.get(k)) return false; // not (or no longer) on the library's records
        if (this.q.referenced.get(k)) {
          this.q.dequeue.run(k);
          return false;
        }
        if (this.q.pendingKey.get(k) || this.q.held.get(k)) return false;
        this.q.doom.run(k, nowUs(), OWNER);
        this.q.dequeue.run(k);
        return true;
      }),
      FREEING,
    );
    let deleted = 0;
    const done = new Map<string, () => void>();
    for (const k of doomed) this.deleting.set(k, new Promise<void>((r) => done.set(k, r)));
    const finish = (k: string): void => {
      this.deleting.delete(k);
      done.get(k)?.();
    };
    let failure: unknown;
    try {
      for (const key of doomed) {
        try {
          await this.blobs.delete(key);
          if (!this.closed) this.transaction(() => this.q.undoom.run(key), FREEING);
          deleted++;
        } catch (e) {
          // Back on the queue for the next collection; the bytes are intact or gone, both fine.
          failure ??= e;
          if (!this.closed) {
            this.transaction(() => {
              this.q.undoom.run(key);
              this.q.enqueue.run(key, nowUs());
            }, FREEING);
          }
        } finally {
          finish(key);
        }
      }
    } finally {
      for (const k of doomed) finish(k); // closed mid-way: rows left doomed are reaped once this process is gone
    }
    if (failure !== undefined) throw failure;
    return deleted;
  }

  /**
   * Collection from the library's own records (D3, B6): reap the rows of dead processes, then
   * delete every queued key nothing references, leases or holds (up to `limit` keys looked at).
   * Never lists the store: orphans no record mentions are `smhfs gc`'s (collectOrphans).
   */
  async collectGarbage(opts: { limit?: number } = {}): Promise<{ deleted: number; reaped: ReapResult }> {
    const reaped = this.reapDeadOwners();
    const limit = opts.limit ?? Infinity;
    let deleted = 0;
    let seen = 0;
    let after = '';
    while (seen < limit && !this.closed) {
      const keys = (this.q.queuePage.all(after, Math.min(500, limit - seen)) as Array<{ key: string }>).map((r) => r.key);
      if (keys.length === 0) break;
      seen += keys.length;
      after = keys[keys.length - 1]!;
      deleted += await this.collectKeys(keys);
    }
    while (this.gcRunning) await this.gcRunning;
    return { deleted, reaped };
  }

  /** Does any record of the library mention `key` (a file, an upload, a hold, the queue, a deletion)? */
  private mentioned(key: string): boolean {
    return (
      this.q.referenced.get(key) !== undefined ||
      this.q.pendingKey.get(key) !== undefined ||
      this.q.held.get(key) !== undefined ||
      this.q.queued.get(key) !== undefined ||
      this.q.doomed.get(key) !== undefined
    );
  }

  /**
   * D3, `smhfs gc`: the keys in the store that no record of the library mentions (orphans), with
   * their size and age. The only place the store is listed to find garbage; it deletes nothing.
   */
  async listOrphans(onProgress?: (listed: number) => void): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    let listed = 0;
    for await (const b of this.blobs.list()) {
      if (b.key !== EMPTY_BLOB_KEY && !this.mentioned(b.key)) out.push(b);
      if (++listed % 1000 === 0) onProgress?.(listed);
    }
    onProgress?.(listed);
    return out;
  }

  /**
   * Delete orphans found by `listOrphans`. Each batch is doomed first (in a transaction that
   * checks again that nothing mentions the key), so an upload of the same bytes that started
   * since waits, and a crash leaves doomed rows that the next collection finishes.
   */
  async deleteOrphans(keys: string[], onProgress?: (deleted: number) => void): Promise<{ deleted: number }> {
    let deleted = 0;
    for (let i = 0; i < keys.length && !this.closed; i += 200) {
      const batch = this.transaction(() =>
        keys.slice(i, i + 200).filter((k) => {
          if (k === EMPTY_BLOB_KEY || this.mentioned(k)) return false;
          this.q.doom.run(k, nowUs(), OWNER);
          return true;
        }),
        FREEING,
      );
      for (const key of batch) {
        try {
          await this.blobs.delete(key);
        } finally {
          this.transaction(() => this.q.undoom.run(key), FREEING);
        }
        deleted++;
        if (deleted % 100 === 0) onProgress?.(deleted);
      }
    }
    onProgress?.(deleted);
    return { deleted };
  }

  /** Keys on the library's deletion queue (fsck, gc). */
  queuedBlobCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM blob_queue').get() as { n: number }).n;
  }

  // ───────────────────────────── tasks (L15) ─────────────────────────────

  tasks(): Task[] {
    return (this.q.tasks.all() as TaskRow[]).map(taskOf);
  }

  task(id: number): Task {
    const row = this.q.task.get(id) as TaskRow | undefined;
    if (!row) throw fail('TaskNotFound', `no task ${id}`, String(id));
    return taskOf(row);
  }

  /** Called when a purge task is queued: a long-running process starts on it at once. */
  wakeTasks(): void {
    if (this.background) setImmediate(() => void this.runTasks().catch(() => undefined));
  }

  /**
   * Run every queued (or abandoned) task to completion, and wait for pending blob collection.
   * Batches are separate transactions, so other operations interleave.
   */
  async runTasks(onProgress?: (t: Task) => void): Promise<void> {
    if (!this.taskRun) {
      this.taskRun = (async () => {
        // Yield first: with nothing to do the body would finish (and clear taskRun) before
        // taskRun is even assigned, leaving a settled promise cached for good.
        await null;
        try {
          for (;;) {
            const claimed = this.transaction(() => {
              // queued, or running but abandoned: a stale heartbeat, or an owner process that is gone
              const t = (this.q.claimable.all(nowUs() - TASK_STALE_US) as Array<TaskRow & { owner: string | null }>).find(
                (c) => c.state === 'queued' || c.heartbeat < nowUs() - TASK_STALE_US || (c.owner !== null && c.owner !== OWNER && isLocalOwnerDead(c.owner)),
              );
              if (t) this.q.claim.run(OWNER, nowUs(), nowUs(), t.id);
              return t;
            }, FREEING);
            if (!claimed || this.closed) break;
            await this.runTask(claimed, onProgress);
          }
        } finally {
          this.taskRun = undefined;
        }
      })();
    }
    await this.taskRun;
    // A backlog left by a crash or by a reader's hold: a command takes a bounded share of it.
    if (!this.closed && this.q.queueAny.get()) {
      try {
        await this.collectGarbage({ limit: COMMAND_COLLECT_LIMIT });
      } catch (e) {
        if (!isSmhError(e, 'LibraryReadOnly') && !isSmhError(e, 'Busy')) throw e;
      }
    }
    while (this.gcRunning) await this.gcRunning;
  }

  private async runTask(t: TaskRow, onProgress?: (t: Task) => void): Promise<void> {
    try {
      const space = this.space(t.space);
      for (;;) {
        if (this.closed) return;
        const r = space.purgeBatch(t.root, TASK_BATCH);
        this.transaction(() => this.q.progress.run(r.deleted, nowUs(), nowUs(), t.id), FREEING);
        onProgress?.(this.task(t.id));
        if (r.finished) break;
        await new Promise((res) => setImmediate(res));
      }
      this.transaction(() => this.q.finish.run('done', null, nowUs(), t.id), FREEING);
    } catch (e) {
      if (this.closed) return;
      this.transaction(() => this.q.finish.run('failed', (e as Error).message, nowUs(), t.id), FREEING);
    }
    onProgress?.(this.task(t.id));
  }

  /**
   * For long-running processes (mount, serve): run tasks as they come, purge expired bin items
   * (T5) and collect the deletion queue periodically (D3: the library's own records; the store is
   * never listed). Timers are unref'd so they never keep a process alive.
   */
  startBackground(intervalMs = 60_000): void {
    if (this.background || this.readOnly) return;
    this.ensureReserve();
    const tick = async () => {
      try {
        for (const name of this.spaceNames()) await this.space(name).purgeExpired(this.retentionDays);
        this.transaction(() => this.q.purgeTokens.run(nowUs()));
        await this.runTasks();
        await this.collectGarbage();
      } catch (e) {
        console.error(`smhfs: background maintenance failed: ${(e as Error).message}`);
      }
    };
    this.background = setInterval(() => void tick(), intervalMs);
    this.background.unref();
    void tick();
  }

  // ───────────────────────────── tokens (SMH access tokens) ─────────────────────────────

  createToken(opts: { space: string; grants: string[]; periodSec: number; userId?: string }): { accessToken: string; expiresIn: number } {
    if (!Number.isInteger(opts.periodSec) || opts.periodSec <= 0 || opts.periodSec > 365 * 86400) {
      throw fail('InvalidArgument', 'token period must be 1 s to 365 days');
    }
    this.space(opts.space);
    const token = randomBytes(24).toString('base64url');
    const t = nowUs();
    this.transaction(() =>
      this.q.insertToken.run(secretHash(token), opts.space, JSON.stringify(opts.grants), opts.userId ?? null, t + opts.periodSec * 1_000_000, t),
    );
    return { accessToken: token, expiresIn: opts.periodSec };
  }

  checkToken(token: string): TokenInfo | undefined {
    const row = this.q.token.get(secretHash(token)) as TokenRow | undefined;
    if (!row || row.expires <= nowUs()) return undefined;
    return tokenInfo(row);
  }

  /** Every unexpired token (`smhfs token list`): ids and grants, never the tokens. */
  listTokens(): TokenRecord[] {
    const now = nowUs();
    return (this.q.tokens.all() as TokenRow[]).filter((r) => r.expires > now).map((r) => ({ ...tokenInfo(r), id: r.id, createdAtUs: r.created }));
  }

  /** Revoke a token by its id (from `listTokens`) or by the token itself; false when there was none. */
  revokeToken(idOrToken: number | string): boolean {
    return this.transaction(() =>
      typeof idOrToken === 'number' ? this.q.revokeToken.run(idOrToken).changes > 0 : this.q.revokeTokenHash.run(secretHash(idOrToken)).changes > 0,
    );
  }

  // ───────────────────────────── life cycle ─────────────────────────────

  /**
   * fsync(2)/fsyncdir(2): make every committed transaction durable now. A durable commit syncs
   * the WAL up to and including itself; an empty transaction would write no frame, so it records
   * the time of the sync.
   */
  sync(): void {
    this.transaction(() => this.q.setMeta.run('synced_at', String(nowUs())), { durable: true });
  }

  /** Wait for background blob collection and tasks started by this process. */
  async idle(): Promise<void> {
    while (this.gcRunning || this.taskRun) {
      await this.gcRunning;
      await this.taskRun;
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.background) clearInterval(this.background);
    if (this.heartbeat) clearInterval(this.heartbeat);
    // A clean exit ends this process's holds and its uncommitted uploads' leases (queued, so the
    // next collection deletes what nothing references).
    // Not this.transaction(): nothing is collected on the way out.
    try {
      if (this.q.ownsRows.get(OWNER, OWNER)) this.db
        .transaction(() => {
          this.q.deleteHoldsOf.run(OWNER);
          const t = nowUs();
          for (const l of this.q.pendingOf.all(OWNER) as Array<{ id: number; key: string }>) {
            this.q.deletePending.run(l.id);
            if (l.key !== EMPTY_BLOB_KEY) this.q.enqueue.run(l.key, t);
          }
        })
        .immediate();
    } catch {
      // read-only or busy: the rows are reaped once this process is gone
    }
    this.holds.clear();
    this.closed = true;
    this.db.close();
    rmSync(this.stagingDir, { recursive: true, force: true });
    // After the WAL and shared memory are gone, their space counts as free again.
    // A read-only open creates nothing, the reserve included.
    if (!this.readOnly && existsSync(join(this.dir, RESERVE_FILE))) topUpReserve(this.dir);
    // Releases the read descriptors the local store keeps; its close starts synchronously.
    if (this.ownsBlobs) void this.blobs.close?.()?.catch(() => undefined);
  }
}

interface TokenRow {
  id: number;
  space: string;
  grants: string;
  user_id: string | null;
  expires: number;
  created: number;
}

function tokenInfo(r: TokenRow): TokenInfo {
  return { space: r.space, grants: JSON.parse(r.grants) as string[], userId: r.user_id, expiresAtUs: r.expires };
}

interface TaskRow {
  id: number;
  heartbeat: number;
  space: string;
  kind: 'purge-directory';
  state: Task['state'];
  subject: string;
  root: number;
  total: number;
  done: number;
  error: string | null;
  created: number;
  updated: number;
}

function taskOf(r: TaskRow): Task {
  return {
    id: r.id,
    space: r.space,
    kind: r.kind,
    state: r.state,
    subject: r.subject,
    total: r.total,
    done: Math.min(r.done, r.total),
    error: r.error,
    createdAtUs: r.created,
    updatedAtUs: r.updated,
  };
}

/** Only the known fields, with their types checked: nothing else (no credentials) is ever recorded. */
function cleanBlobConfig(c: BlobConfig): BlobConfig {
  if (typeof c.url !== 'string' || c.url === '') throw fail('InvalidArgument', 'a blob configuration needs a url');
  const out: BlobConfig = { url: c.url };
  if (c.s3Endpoint !== undefined) {
    if (typeof c.s3Endpoint !== 'string') throw fail('InvalidArgument', 's3Endpoint must be a string');
    out.s3Endpoint = c.s3Endpoint;
  }
  if (c.s3Region !== undefined) {
    if (typeof c.s3Region !== 'string') throw fail('InvalidArgument', 's3Region must be a string');
    out.s3Region = c.s3Region;
  }
  if (c.s3PathStyle === true) out.s3PathStyle = true;
  return out;
}

function parseBlobConfig(value: string): BlobConfig {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    v = undefined;
  }
  try {
    if (typeof v !== 'object' || v === null) throw new Error('not an object');
    return cleanBlobConfig(v as BlobConfig);
  } catch {
    throw fail('Internal', `the library's blob-store record (meta "${BLOBS_KEY}") is damaged: ${value}`);
  }
}
