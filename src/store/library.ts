/**
 * A library: one folder holding `library.db` (SQLite, WAL) and, by default, `blobs/` (the local
 * blob store). `Library` owns the database, the spaces, the blob life cycle around the metadata
 * (leases while uploading, collection after the last reference is committed away: T6/B6), the
 * background purge tasks (L15), retention (T5) and access tokens.
 *
 * Transactions are synchronous and IMMEDIATE; blob bytes are never touched inside one. Keys of
 * blobs whose last reference a transaction dropped are collected after it commits.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, accessSync, constants as fsc } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { fail, isSmhError, SmhError } from '../errors.js';
import { HashingTransform, hashFile, type ContentHash } from '../blob/hash.js';
import { LocalBlobStore } from '../blob/local-store.js';
import { PageCache, type PageCacheOptions, type ReadStream } from '../blob/page-cache.js';
import { EMPTY_BLOB_KEY, type BlobStore } from '../blob/types.js';
import { SCHEMA_VERSION, migrate, secretHash } from './schema.js';
import { nowUs, Space } from './space.js';
import type { BlobConfig, BlobRef, Task } from './types.js';

export { Space } from './space.js';

export const DB_FILE = 'library.db';
const OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
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
  cache?: Omit<PageCacheOptions, 'store'>;
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

function isLocalOwnerDead(owner: string): boolean {
  const [host, pid] = owner.split(':');
  if (host !== hostname()) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
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
  readonly cache: PageCache;
  readonly stagingDir: string;
  /** Opened with `readOnly`: every write fails (`LibraryReadOnly`); no tasks, no background work. */
  readOnly = false;
  /** Set by the mount: absolute link targets under it are taken relative to the space root (L1). */
  mountpoint: string | undefined;

  private readonly spaces = new Map<string, Space>();
  private txDepth = 0;
  private txDrops: string[] = [];
  private gcQueue = new Set<string>();
  private gcRunning: Promise<void> | undefined;
  /** Keys this process's collector has doomed and not yet finished deleting (see takeLease). */
  private readonly deleting = new Map<string, Promise<void>>();
  private taskRun: Promise<void> | undefined;
  private background: NodeJS.Timeout | undefined;
  private closed = false;
  private ownsBlobs = false;
  private readonly q;

  private constructor(dir: string, db: Database.Database, blobs: BlobStore, cacheOpts: LibraryOptions['cache']) {
    this.dir = dir;
    this.db = db;
    this.blobs = blobs;
    this.cache = new PageCache({ ...cacheOpts, store: blobs });
    this.stagingDir = join(dir, 'staging', `${process.pid}-${randomBytes(4).toString('hex')}`);
    const p = (sql: string) => db.prepare(sql);
    this.q = {
      meta: p('SELECT value FROM meta WHERE key = ?'),
      setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      addMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
      blobSample: p('SELECT DISTINCT blob FROM nodes WHERE blob IS NOT NULL AND blob != ? LIMIT ?'),
      space: p('SELECT root, trash FROM spaces WHERE name = ?'),
      spaces: p('SELECT name FROM spaces ORDER BY name'),
      blobSize: p('SELECT size FROM nodes WHERE blob = ? LIMIT 1'),
      referenced: p('SELECT 1 FROM nodes WHERE blob = ? LIMIT 1'),
      pendingKey: p('SELECT 1 FROM blob_pending WHERE key = ? LIMIT 1'),
      pendingAll: p('SELECT id, owner, created FROM blob_pending'),
      insertPending: p('INSERT INTO blob_pending (key, owner, created) VALUES (?, ?, ?)'),
      deletePending: p('DELETE FROM blob_pending WHERE id = ?'),
      doomed: p('SELECT created FROM blob_doomed WHERE key = ?'),
      doomedAll: p('SELECT key FROM blob_doomed'),
      doom: p('INSERT OR IGNORE INTO blob_doomed (key, created) VALUES (?, ?)'),
      undoom: p('DELETE FROM blob_doomed WHERE key = ?'),
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
   * Open (or with `create`, initialise) the library in `dir`. Refuses a folder that holds other
   * things but no library, and a database written by a newer smhfs.
   */
  static open(dir: string, opts: LibraryOptions = {}): Library {
    if (opts.readOnly) return Library.openReadOnly(dir, opts);
    const dbPath = join(dir, DB_FILE);
    const exists = existsSync(dbPath);
    if (!exists) {
      if (!opts.create) throw fail('NotALibrary', `${dir} is not an smhfs library (no ${DB_FILE}); create it with smhfs mkdir/put or --create`, dir);
      if (existsSync(dir)) {
        if (!statSync(dir).isDirectory()) throw fail('NotALibrary', `${dir} is not a directory`, dir);
        const others = readdirSync(dir).filter((n) => !n.startsWith('.'));
        if (others.length > 0) throw fail('NotALibrary', `${dir} is not empty and holds no smhfs library; choose an empty or new folder`, dir);
      }
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
      // A new database (and the WAL and SHM files SQLite creates with its mode) is the owner's
      // alone: it names every file of the library.
      if (!exists) closeSync(openSync(dbPath, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600));
      db = new Database(dbPath, { fileMustExist: exists });
      db.pragma('busy_timeout = 10000');
      if (exists) {
        // Look before changing anything: a foreign database must be left exactly as it was.
        const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
        const version = db.pragma('user_version', { simple: true }) as number;
        const ours = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nodes'").get() !== undefined;
        // An empty database is what a crash between creating the file and the first migration leaves.
        const emptyLeftover = tables.n === 0 && version === 0 && opts.create;
        if (!emptyLeftover && (version === 0 || !ours)) {
          db.close();
          throw fail('NotALibrary', `${dbPath} is ${tables.n === 0 ? 'an empty database' : 'some other SQLite database'}, not an smhfs library`, dir);
        }
      }
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: consistent after any crash; a power loss may roll back the newest
      // metadata-only transactions (as an unsynced directory would). Commits that back a
      // durability promise (close/fsync of written content, uploads) run with FULL: see transaction().
      db.pragma('synchronous = NORMAL');
      migrate(db);
    } catch (e) {
      if (e instanceof SmhError) throw e;
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_NOTADB') throw fail('NotALibrary', `${dbPath} is not an SQLite database`, dir);
      throw sqliteToDomain(e);
    }
    const blobs = opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs'));
    const lib = new Library(dir, db, blobs, opts.cache);
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
    if (!existsSync(dbPath)) throw fail('NotALibrary', `${dir} holds no smhfs library (no ${DB_FILE})`, dir);
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
      if ((e as { code?: string }).code === 'SQLITE_NOTADB') throw fail('NotALibrary', `${dbPath} is not an SQLite database`, dir);
      throw sqliteToDomain(e);
    }
    const lib = new Library(dir, db, opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs')), opts.cache);
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
   * The blob-store record of the library in `dir`, read without changing anything (no migration,
   * no journal-mode switch, nothing created): callers decide which store to open before opening
   * the library. `library` is false when `dir` holds no library database; `blobs` is undefined
   * when there is no record — also for a database that is not an smhfs library, which
   * `Library.open` then refuses with the proper error. Works for a user who may only read the
   * library, as far as SQLite can read it (WAL: `library.db-shm` must exist or be creatable;
   * otherwise `LibraryReadOnly`).
   */
  static peekBlobConfig(dir: string): { library: boolean; blobs: BlobConfig | undefined } {
    const dbPath = join(dir, DB_FILE);
    if (!existsSync(dbPath)) return { library: false, blobs: undefined };
    let db: Database.Database | undefined;
    try {
      // Read-write if permitted (SQLite opens a write-protected file read-only by itself), so the
      // last connection to close can tidy the WAL files as usual.
      db = new Database(dbPath, { fileMustExist: true });
      db.pragma('busy_timeout = 10000');
      const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(BLOBS_KEY) as { value: string } | undefined;
      return { library: true, blobs: row ? parseBlobConfig(row.value) : undefined };
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      // Not SQLite, or no meta table: not (yet) a library; Library.open says so properly.
      if (code === 'SQLITE_NOTADB' || (code === 'SQLITE_ERROR' && /no such table/i.test((e as Error).message))) {
        return { library: true, blobs: undefined };
      }
      if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
        // A folder this process cannot write: read the record the way a read-only open would.
        db?.close();
        db = undefined;
        try {
          db = Library.readOnlyDatabase(dir);
          const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(BLOBS_KEY) as { value: string } | undefined;
          return { library: true, blobs: row ? parseBlobConfig(row.value) : undefined };
        } catch (e2) {
          if (e2 instanceof SmhError) throw e2;
          throw new SmhError('LibraryReadOnly', `cannot read ${dbPath}: ${(e2 as Error).message}`, dir, { cause: e2 });
        }
      }
      throw sqliteToDomain(e);
    } finally {
      db?.close();
    }
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
    mkdirSync(this.stagingDir, { recursive: true });
    for (const name of readdirSync(base)) {
      const pid = Number(name.split('-')[0]);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      if (isLocalOwnerDead(`${hostname()}:${pid}`)) rmSync(join(base, name), { recursive: true, force: true });
    }
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
  transaction<T>(fn: () => T, opts: { durable?: boolean } = {}): T {
    if (this.closed) throw fail('Internal', 'the library is closed');
    if (this.txDepth > 0) return fn();
    this.txDepth++;
    this.txDrops = [];
    let result: T;
    try {
      if (opts.durable) this.db.pragma('synchronous = FULL');
      result = this.db.transaction(fn).immediate();
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

  /** Called inside a transaction: these blob keys may have lost their last reference. */
  dropBlobs(keys: string[]): void {
    this.txDrops.push(...keys);
  }

  /** Called inside the commit that references a stored blob: its upload lease ends. */
  useLease(ref: BlobRef): void {
    if (ref.lease !== undefined) this.q.deletePending.run(ref.lease);
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
      await pipeline(body, hasher, createWriteStream(staged));
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
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', `storing the blob failed: ${(e as Error).message}`, undefined, { cause: e });
    }
    return { key, size, etag, lease };
  }

  private async takeLease(key: string): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const lease = this.transaction(() => {
        const doomed = this.q.doomed.get(key) as { created: number } | undefined;
        if (doomed) {
          // A collector that died mid-delete leaves its row behind; after a minute it is stale.
          if (nowUs() - doomed.created < 60_000_000) return undefined;
          this.q.undoom.run(key);
        }
        return Number(this.q.insertPending.run(key, OWNER, nowUs()).lastInsertRowid);
      });
      if (lease !== undefined) return lease;
      if (attempt > 200) throw fail('Busy', 'a blob with the same content is being deleted; retry');
      // Our own collector deleting it: go on the moment it is done (writing the same bytes again
      // right after deleting them is common: rm, then cp again). Another process's: poll.
      const ours = this.deleting.get(key);
      await (ours ?? new Promise((r) => setTimeout(r, 25)));
    }
  }

  private releaseLease(lease: number): void {
    this.transaction(() => this.q.deletePending.run(lease));
  }

  /** A stored blob that will not be committed: drop its lease and collect it if unreferenced. */
  abandonBlob(ref: BlobRef): void {
    if (ref.lease !== undefined) this.releaseLease(ref.lease);
    this.scheduleCollect([ref.key]);
  }

  /** Size of a committed blob (content-addressed, so any node holding it knows). */
  blobSize(key: string): number | undefined {
    if (key === EMPTY_BLOB_KEY) return 0;
    return (this.q.blobSize.get(key) as { size: number } | undefined)?.size;
  }

  /** Read blob bytes through the page cache (B2). */
  async readBlob(key: string, offset: number, length: number, stream?: ReadStream, size?: number): Promise<Buffer> {
    const blobSize = size ?? this.blobSize(key);
    if (blobSize === undefined) throw fail('BlobMissing', `no committed file references blob ${key}`);
    return this.cache.read(key, blobSize, offset, length, stream);
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
   * T6: delete these blobs if no committed metadata and no upload lease references them. They
   * are marked doomed first (in a transaction), so no new commit can start using them.
   */
  private async collectKeys(keys: string[]): Promise<number> {
    const doomed = this.transaction(() =>
      keys.filter((k) => {
        if (this.q.referenced.get(k) || this.q.pendingKey.get(k)) return false;
        this.q.doom.run(k, nowUs());
        return true;
      }),
    );
    let deleted = 0;
    const done = new Map<string, () => void>();
    for (const k of doomed) this.deleting.set(k, new Promise<void>((r) => done.set(k, r)));
    const finish = (k: string): void => {
      this.deleting.delete(k);
      done.get(k)?.();
    };
    try {
      for (const key of doomed) {
        try {
          await this.blobs.delete(key);
          if (!this.closed) this.transaction(() => this.q.undoom.run(key));
          deleted++;
        } finally {
          finish(key);
        }
      }
    } finally {
      for (const k of doomed) finish(k); // a failed delete leaves its row doomed: writers poll it out
    }
    return deleted;
  }

  /** Full collection: every stored blob that nothing references (crash leftovers, B6). */
  async collectGarbage(): Promise<{ deleted: number }> {
    this.transaction(() => {
      for (const p of this.q.pendingAll.all() as Array<{ id: number; owner: string; created: number }>) {
        const old = nowUs() - p.created > 24 * 3600 * 1_000_000;
        if (p.owner !== OWNER && (old || isLocalOwnerDead(p.owner))) this.q.deletePending.run(p.id);
      }
    });
    let deleted = 0;
    const leftovers = (this.q.doomedAll.all() as Array<{ key: string }>).map((r) => r.key);
    for (const key of leftovers) {
      if (this.q.referenced.get(key)) {
        this.transaction(() => this.q.undoom.run(key));
        continue;
      }
      await this.blobs.delete(key);
      this.transaction(() => this.q.undoom.run(key));
      deleted++;
    }
    let batch: string[] = [];
    for await (const b of this.blobs.list()) {
      batch.push(b.key);
      if (batch.length >= 500) {
        deleted += await this.collectKeys(batch);
        batch = [];
      }
    }
    if (batch.length > 0) deleted += await this.collectKeys(batch);
    return { deleted };
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
            });
            if (!claimed || this.closed) break;
            await this.runTask(claimed, onProgress);
          }
        } finally {
          this.taskRun = undefined;
        }
      })();
    }
    await this.taskRun;
    while (this.gcRunning) await this.gcRunning;
  }

  private async runTask(t: TaskRow, onProgress?: (t: Task) => void): Promise<void> {
    try {
      const space = this.space(t.space);
      for (;;) {
        if (this.closed) return;
        const r = space.purgeBatch(t.root, TASK_BATCH);
        this.transaction(() => this.q.progress.run(r.deleted, nowUs(), nowUs(), t.id));
        onProgress?.(this.task(t.id));
        if (r.finished) break;
        await new Promise((res) => setImmediate(res));
      }
      this.transaction(() => this.q.finish.run('done', null, nowUs(), t.id));
    } catch (e) {
      if (this.closed) return;
      this.transaction(() => this.q.finish.run('failed', (e as Error).message, nowUs(), t.id));
    }
    onProgress?.(this.task(t.id));
  }

  /**
   * For long-running processes (mount, serve): run tasks as they come, purge expired bin items
   * (T5) and collect garbage periodically. Timers are unref'd so they never keep a process alive.
   */
  startBackground(intervalMs = 60_000): void {
    if (this.background || this.readOnly) return;
    const tick = async () => {
      try {
        for (const name of this.spaceNames()) await this.space(name).purgeExpired(this.retentionDays);
        this.transaction(() => this.q.purgeTokens.run(nowUs()));
        await this.runTasks();
      } catch (e) {
        console.error(`smhfs: background maintenance failed: ${(e as Error).message}`);
      }
    };
    this.background = setInterval(() => void tick(), intervalMs);
    this.background.unref();
    void tick();
    void this.collectGarbage().catch((e) => console.error(`smhfs: garbage collection failed: ${(e as Error).message}`));
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
    this.closed = true;
    this.db.close();
    rmSync(this.stagingDir, { recursive: true, force: true });
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
