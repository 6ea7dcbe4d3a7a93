/**
 * A library: one folder holding `library.db` (SQLite, WAL) and, by default, `blobs/` (the local
 * blob store) — or, for a library shared by several hosts (SPEC §11), a folder per host holding
 * `library.pg` (where its metadata lives: a PostgreSQL URL, src/store/postgres/library.ts) and
 * this host's staging. `Library` opens and closes it and holds its parts together: the metadata engine
 * (src/store/engine.ts, SQLite in src/store/sqlite/), the spaces (src/store/space.ts), the blob
 * life cycle around the metadata (src/store/blob-refs.ts: leases, holds, the deletion queue and
 * the collector), the one scheduler of background work (src/store/tasks.ts), access-token
 * records (src/store/tokens.ts) and the library's own records (meta: its id, secret, retention,
 * where its blobs live). Its methods are the store's public API (native-notes/store-api.md); most
 * hand the call on to the part that holds the rule.
 *
 * Transactions are synchronous and IMMEDIATE; blob bytes are never touched inside one.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Database from 'better-sqlite3';
import { fail, SmhError } from '../errors.js';
import type { ContentHash } from '../blob/hash.js';
import { LocalBlobStore } from '../blob/local-store.js';
import { EMPTY_BLOB_KEY, type BlobInfo, type BlobStore } from '../blob/types.js';
import { storedBlobSize } from '../blob/sparse.js';
import { BLOBS_KEY, cleanBlobConfig, parseBlobConfig } from './blob-config.js';
import { BlobRefs, type BlobHold, type ReapResult } from './blob-refs.js';
import { ChangeFeed, recordingRows } from './changes.js';
import { nowUs, type MetaEngine, type MetaTx, type TxOptions } from './engine.js';
import { deadStagingFolders, processOwner } from './owners.js';
import type { MetaBackend } from './backend.js';
import type { MetaRows } from './rows.js';
import { secretHash } from './secrets.js';
import { Space } from './space.js';
import type { SpaceHost } from './space-rows.js';
import { openPostgresBackend, peekPostgres, pgRecordOf, type PgBackend } from './postgres/library.js';
import { RESERVE_FILE, topUpReserve } from './sqlite/disk.js';
import { Checkpointer } from './sqlite/checkpoints.js';
import { SqliteEngine } from './sqlite/engine.js';
import { sqliteFeedRows } from './sqlite/feed-rows.js';
import { checkFolder, openReadOnlyDatabase, openWritableDatabase, peek, type PeekResult } from './sqlite/open.js';
import { sqliteBlobRows, sqliteMetaRows, sqliteTaskRows, sqliteTokenRows } from './sqlite/rows.js';
import { sqliteSpaceRows } from './sqlite/space-rows.js';
import { TaskScheduler } from './tasks.js';
import { Tokens } from './tokens.js';
import type { BlobConfig, BlobRef, Task } from './types.js';

export { Space, type ResolveContext } from './space.js';
export type { BlobHold, ReapResult } from './blob-refs.js';
export type { TokenInfo, TokenRecord, Tokens } from './tokens.js';
export { deadStagingFolders, ownerGone, processOwner } from './owners.js';
export { DB_FILE, inspectLibraryFolder } from './sqlite/open.js';

const DEFAULT_RETENTION_DAYS = 30;
/** `meta` key of the library secret's SHA-256 (the secret itself is shown once, by rotateLibrarySecret). */
const SECRET_KEY = 'library_secret_sha256';

export interface LibraryOptions {
  create?: boolean;
  /**
   * Open for reading only (`smhfs ls/cat/stat` on a library the user may not write, or on a
   * read-only file system): nothing is created, migrated, cleaned or initialised; any write fails
   * with `LibraryReadOnly`. See `openReadOnlyDatabase` (src/store/sqlite/open.ts).
   */
  readOnly?: boolean;
  blobStore?: BlobStore;
  /**
   * SPEC §11: the library's metadata lives in PostgreSQL at this URL (`postgres://user@host/db`).
   * With `create`, a new library is made there (in an empty database) and the folder records the
   * URL (`library.pg`); afterwards the record is used, and a different URL is refused.
   */
  meta?: string;
  /**
   * `smhfs migrate`'s own look at its unfinished copy (fsck of the target before the switch):
   * open a library marked `migration_pending`, which every other open refuses.
   */
  migrating?: boolean;
}

/** `meta` key of a database whose library moved to another engine (`smhfs migrate`): never opened again. */
export const MIGRATED_KEY = 'migrated_to';
/** `meta` key of a copy `smhfs migrate` has not switched to yet: no command opens it as a library. */
export const PENDING_KEY = 'migration_pending';

function sqliteBackend(dir: string, db: Database.Database, diskFull: (cause: unknown) => SmhError): MetaBackend {
  return {
    engine: new SqliteEngine(db, dir, diskFull),
    meta: sqliteMetaRows(db),
    blobRows: sqliteBlobRows(db),
    taskRows: sqliteTaskRows(db),
    tokenRows: sqliteTokenRows(db),
    spaceRows: () => sqliteSpaceRows(db),
    feedRows: () => sqliteFeedRows(db, dir),
    sqlite: db,
  };
}

function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

export class Library {
  readonly dir: string;
  readonly engine: MetaEngine;
  /** `sqlite` or `postgres`. */
  readonly engineKind: 'sqlite' | 'postgres';
  /** For a PostgreSQL library: its connection and URL. */
  readonly postgres: PgBackend['postgres'] | undefined;
  private readonly backend: MetaBackend;
  readonly blobs: BlobStore;
  readonly stagingDir: string;
  /** Opened with `readOnly`: every write fails (`LibraryReadOnly`); no tasks, no background work. */
  readOnly = false;

  private readonly spaces = new Map<string, Space>();
  private readonly meta: MetaRows;
  private readonly refs: BlobRefs;
  private readonly scheduler: TaskScheduler;
  /** Access tokens' records (`lib.tokens.create/check/list/revoke`): what a grant means is src/http's. */
  readonly tokens: Tokens;
  /**
   * What every write transaction changed, numbered (src/store/changes.ts): a mount follows it to
   * invalidate the kernel's caches (src/vfs/changes.ts).
   */
  readonly changes: ChangeFeed;
  private readonly spaceHost: SpaceHost;
  private ownsBlobs = false;
  /** SQLite's checkpoints off the serving thread, once `startBackground` ran (src/store/sqlite/checkpoints.ts). */
  checkpointer: Checkpointer | undefined;

  private constructor(dir: string, backend: MetaBackend | ((diskFull: (cause: unknown) => SmhError) => MetaBackend), blobs: BlobStore) {
    this.dir = dir;
    this.backend = typeof backend === 'function' ? backend((cause) => this.diskFull(cause)) : backend;
    this.engine = this.backend.engine;
    this.engineKind = this.backend.sqlite ? 'sqlite' : 'postgres';
    this.postgres = (this.backend as Partial<PgBackend>).postgres;
    this.blobs = blobs;
    // <pid>-<8 hex digits>: the digits only tell apart a reused pid's folder, and Math.random()
    // spares a start node:crypto (~10 ms of CPU to load; a read-only command needs none of it).
    this.stagingDir = join(dir, 'staging', `${process.pid}-${Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0')}`);
    this.meta = this.backend.meta;
    // One origin per open library, not per process: a follower skips its own library's records
    // when it reads them back from a PostgreSQL feed, never another library's of the same process.
    this.changes = new ChangeFeed(this.engine, this.backend.feedRows(), { origin: () => `${processOwner()}/${randomBytes(3).toString('hex')}` });
    this.refs = new BlobRefs({
      engine: this.engine,
      rows: this.backend.blobRows,
      blobs,
      stagingDir: this.stagingDir,
      readOnly: () => this.readOnly,
      diskFull: (cause) => this.diskFull(cause),
    });
    this.spaceHost = {
      engine: this.engine,
      dropBlobs: (keys) => this.refs.dropBlobs(keys),
      useLease: (ref) => this.refs.useLease(ref),
      queuePurge: (space, subject, root, total, timeUs) => this.scheduler.queuePurge(space, subject, root, total, timeUs),
    };
    this.tokens = new Tokens(this.engine, this.backend.tokenRows, (name) => void this.space(name));
    this.scheduler = new TaskScheduler(this.engine, this.backend.taskRows, {
      purgeBatch: (space, root, limit) => this.space(space).purgeBatch(root, limit),
      expire: async () => {
        for (const name of this.spaceNames()) await this.space(name).purgeExpired(this.retentionDays);
        this.tokens.purgeExpired();
        this.backend.maintain?.();
      },
      backlog: () => this.refs.backlog(),
      collect: (opts) => this.refs.collectGarbage(opts),
      collected: () => this.refs.idle(),
    });
  }

  /** The SQLite database (tests and fsck read it directly); a PostgreSQL library has none. */
  get db(): Database.Database {
    if (!this.backend.sqlite) throw fail('Internal', 'this library keeps its metadata in PostgreSQL, not in an SQLite database');
    return this.backend.sqlite;
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.engine.closed;
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
    if (opts.meta !== undefined || pgRecordOf(dir) !== undefined) return Library.openPostgres(dir, opts);
    if (opts.readOnly) {
      const db = openReadOnlyDatabase(dir);
      const lib = new Library(dir, (diskFull) => sqliteBackend(dir, db, diskFull), opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs')));
      lib.ownsBlobs = opts.blobStore === undefined;
      lib.readOnly = true;
      lib.closeOnError(() => lib.refuseMigrated(opts));
      return lib;
    }
    const db = openWritableDatabase(dir, opts);
    const blobs = opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs'));
    const lib = new Library(dir, (diskFull) => sqliteBackend(dir, db, diskFull), blobs);
    lib.ownsBlobs = opts.blobStore === undefined; // a store the caller passed in is the caller's to close
    lib.initialise();
    lib.closeOnError(() => lib.refuseMigrated(opts));
    lib.cleanStaging();
    return lib;
  }

  /** A library whose metadata lives in PostgreSQL (SPEC §11): see src/store/postgres/library.ts. */
  private static openPostgres(dir: string, opts: LibraryOptions): Library {
    const backend = openPostgresBackend(dir, opts);
    let lib: Library;
    try {
      lib = new Library(dir, backend, opts.blobStore ?? new LocalBlobStore(join(dir, 'blobs')));
    } catch (e) {
      backend.engine.close();
      throw e;
    }
    lib.ownsBlobs = opts.blobStore === undefined;
    if (opts.readOnly) {
      lib.readOnly = true;
      lib.closeOnError(() => lib.refuseMigrated(opts));
      return lib;
    }
    try {
      lib.initialise();
      lib.refuseMigrated(opts);
      lib.cleanStaging();
      lib.backend.maintain?.();
    } catch (e) {
      lib.close();
      throw e;
    }
    return lib;
  }

  /**
   * The D2 checks of `open` on the folder alone, without opening or creating anything: throws
   * what `open` would throw for the folder (with `create`: whether a library may be created
   * there), else returns what it holds. `smhfs init` runs it before it touches a blob store.
   */
  static checkFolder(dir: string, create: boolean): ReturnType<typeof checkFolder> {
    if (pgRecordOf(dir) !== undefined) {
      if (create) throw fail('NotALibrary', `${dir} is already a library (its metadata is in PostgreSQL); nothing was changed`, dir);
      return { state: 'database', data: [], others: [] };
    }
    return checkFolder(dir, create);
  }

  /**
   * What the library in `dir` records, read without changing anything (no migration, no
   * journal-mode switch, nothing created): see `peek` in src/store/sqlite/open.ts.
   */
  static peek(dir: string): PeekResult {
    if (pgRecordOf(dir) !== undefined) return peekPostgres(dir);
    return peek(dir);
  }

  /** `peek`, the blob-store record only. */
  static peekBlobConfig(dir: string): { library: boolean; blobs: BlobConfig | undefined } {
    const { library, blobs } = Library.peek(dir);
    return { library, blobs };
  }

  private initialise(): void {
    this.transaction(() => {
      if (this.meta.get('library_id') === undefined) {
        this.meta.set('library_id', `smh${randomBytes(8).toString('hex')}`);
        this.meta.set('retention_days', String(DEFAULT_RETENTION_DAYS));
      }
      if (!this.meta.space('-')) this.insertSpace('-');
    });
  }

  /**
   * S3: a database `smhfs migrate` moved away from, or a copy it has not switched to, is no
   * library to use: a process still pointed at it (another host's folder, a command that opened
   * it during the migration) is refused instead of writing where nobody will read.
   */
  private closeOnError(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private refuseMigrated(opts: LibraryOptions): void {
    const moved = this.meta.get(MIGRATED_KEY);
    if (moved !== undefined) {
      let to = moved;
      try {
        to = String((JSON.parse(moved) as { to?: unknown }).to ?? moved);
      } catch {
        /* an older record: shown as it is */
      }
      throw fail('NotALibrary', `this library's metadata was moved to ${to} by "smhfs migrate"; point this folder at it ("smhfs init --meta URL" in a new folder for PostgreSQL)`, this.dir);
    }
    if (!opts.migrating && this.meta.get(PENDING_KEY) !== undefined) {
      throw fail('NotALibrary', 'this database holds an unfinished "smhfs migrate" copy; run the migrate again, or use another database', this.dir);
    }
  }

  private insertSpace(name: string): void {
    const t = nowUs();
    const root = this.meta.insertSpaceDir(name, 0o040755, t);
    const trash = this.meta.insertSpaceDir(name, 0o040555, t);
    this.meta.insertSpace(name, root, trash, t);
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
    return this.meta.get('library_id')!;
  }

  /**
   * Whether `secret` is the library secret (SMH token endpoint). Only its hash is kept; a library
   * has no secret until `rotateLibrarySecret` makes one.
   */
  checkLibrarySecret(secret: string): boolean {
    const kept = this.meta.get(SECRET_KEY);
    const given = Buffer.from(secretHash(secret), 'hex');
    const against = Buffer.from(kept ?? secretHash(randomBytes(24).toString('hex')), 'hex');
    return timingSafeEqual(given, against) && kept !== undefined;
  }

  /** Make a new library secret, keep its hash, and return it (the only time it is shown). */
  rotateLibrarySecret(): string {
    const secret = randomBytes(24).toString('hex');
    this.transaction(() => this.meta.set(SECRET_KEY, secretHash(secret)));
    return secret;
  }

  get retentionDays(): number {
    return Number(this.meta.get('retention_days') ?? DEFAULT_RETENTION_DAYS);
  }

  set retentionDays(days: number) {
    if (!Number.isInteger(days) || days < 0) throw fail('InvalidArgument', 'retention must be a whole number of days (0 = keep forever)');
    this.transaction(() => this.meta.set('retention_days', String(days)));
  }

  /** Where this library's blob bytes live, as recorded (undefined: no record, see `recordBlobConfig`). */
  blobConfig(): BlobConfig | undefined {
    const value = this.meta.get(BLOBS_KEY);
    return value === undefined ? undefined : parseBlobConfig(value);
  }

  /** Record where the blob bytes live, replacing any record (re-pointing moves no bytes). */
  setBlobConfig(config: BlobConfig): void {
    const value = JSON.stringify(cleanBlobConfig(config));
    this.transaction(() => this.meta.set(BLOBS_KEY, value));
  }

  /** Record `config` unless a record exists; returns the record in force afterwards. */
  recordBlobConfig(config: BlobConfig): BlobConfig {
    const value = JSON.stringify(cleanBlobConfig(config));
    return this.transaction(() => {
      this.meta.add(BLOBS_KEY, value);
      return parseBlobConfig(this.meta.get(BLOBS_KEY)!);
    });
  }

  /** Up to `n` distinct non-empty blob keys that nodes reference (index order: hash order, so a spread sample). */
  sampleBlobKeys(n: number): string[] {
    return this.meta.blobSample(EMPTY_BLOB_KEY, n);
  }

  // ───────────────────────────── spaces ─────────────────────────────

  space(name = '-'): Space {
    const cached = this.spaces.get(name);
    if (cached) return cached;
    const row = this.meta.space(name);
    if (!row) throw fail('SpaceNotFound', `no space '${name}' in this library`, name);
    // Each space prepares its statements when it is made (test/helpers/sql-counter.ts counts on it).
    const s = new Space(this.spaceHost, recordingRows(this.backend.spaceRows(), name, this.changes), name, row.root, row.trash);
    this.spaces.set(name, s);
    return s;
  }

  createSpace(name: string): Space {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw fail('InvalidArgument', 'a space name is 1–64 letters, digits, - or _', name);
    this.transaction(() => {
      if (this.meta.space(name)) throw fail('SameNameDirectoryOrFileExists', `space '${name}' exists`, name);
      this.insertSpace(name);
    });
    return this.space(name);
  }

  spaceNames(): string[] {
    return this.meta.spaceNames();
  }

  // ───────────────────────────── transactions ─────────────────────────────

  /** One snapshot for a read of several statements (see `SqliteEngine.snapshot`). */
  snapshot<T>(fn: () => T): T {
    return this.engine.snapshot(fn);
  }

  /**
   * Run `fn` in one IMMEDIATE transaction (nested calls join the outer one). `durable` syncs the
   * WAL at commit, which also makes every earlier commit durable; `freeing` (a delete) may use the
   * full-disk reserve (D9).
   */
  transaction<T>(fn: (tx: MetaTx) => T, opts: TxOptions = {}): T {
    return this.engine.transaction(fn, opts);
  }

  /**
   * D9: the error for a full disk, saying what `smhfs trash empty` would free (the bytes of blobs
   * only items in the recycle bin reference).
   */
  private diskFull(cause?: unknown): SmhError {
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
    if (this.engineKind !== 'sqlite') return; // the metadata is not on this disk
    topUpReserve(this.dir);
  }

  /** Bytes of the blobs that only nodes in recycle bins reference: what emptying the bins frees. */
  private trashReclaimable(): { bytes: number; items: number } {
    return this.meta.trashReclaimable(EMPTY_BLOB_KEY);
  }

  // ───────────────────────────── blobs (src/store/blob-refs.ts) ─────────────────────────────

  /** Store a local file as a blob; the returned ref holds a lease until committed. */
  storeBlobFromFile(path: string, opts: { hash?: ContentHash; consume?: boolean; onProgress?: (storedBytes: number) => void } = {}): Promise<BlobRef> {
    return this.refs.storeBlobFromFile(path, opts);
  }

  /** Stage a stream to a local file (hashing as it goes), then store it. */
  storeBlobFromStream(body: Readable, opts: { onProgress?: (storedBytes: number) => void } = {}): Promise<BlobRef> {
    return this.refs.storeBlobFromStream(body, opts);
  }

  /** A stored blob that will not be committed: drop its lease and collect it if unreferenced. */
  abandonBlob(ref: BlobRef): void {
    this.refs.abandonBlob(ref);
  }

  /** D7: no collector in any process deletes `key`'s bytes until `release()`. */
  holdBlob(key: string): BlobHold {
    return this.refs.holdBlob(key);
  }

  /** Clean the holds, leases and doomed keys of processes that are gone. */
  reapDeadOwners(opts: { dryRun?: boolean } = {}): ReapResult {
    return this.refs.reapDeadOwners(opts);
  }

  /** D3, B6: collect the deletion queue from the library's own records (never lists the store). */
  collectGarbage(opts: { limit?: number } = {}): Promise<{ deleted: number; reaped: ReapResult }> {
    return this.refs.collectGarbage(opts);
  }

  /** D3, `smhfs gc`: keys in the store no record mentions (it deletes nothing). */
  listOrphans(onProgress?: (listed: number) => void): Promise<BlobInfo[]> {
    return this.refs.listOrphans(onProgress);
  }

  /** Delete orphans found by `listOrphans`, each checked again. */
  deleteOrphans(keys: string[], onProgress?: (deleted: number) => void): Promise<{ deleted: number }> {
    return this.refs.deleteOrphans(keys, onProgress);
  }

  /** Keys on the library's deletion queue (fsck, gc). */
  queuedBlobCount(): number {
    return this.refs.queuedBlobCount();
  }

  // ───────────────────────────── blob sizes ─────────────────────────────
  // (Reading bytes is src/vfs/reader.ts, which owns the page cache and asks this.)

  /** Size of a committed blob (content-addressed, so any node holding it knows). */
  blobSize(key: string): number | undefined {
    if (key === EMPTY_BLOB_KEY) return 0;
    const row = this.meta.blobSize(key);
    return row ? storedBlobSize(row) : undefined;
  }

  // ───────────────────────────── tasks (src/store/tasks.ts) ─────────────────────────────

  tasks(): Task[] {
    return this.scheduler.tasks();
  }

  task(id: number): Task {
    return this.scheduler.task(id);
  }

  /**
   * Run queued tasks now (never twice at once; a kick during a run runs again after it), for a
   * process that decides itself when to look — without `startBackground`'s maintenance.
   */
  kickTasks(onError: (e: unknown) => void): Promise<void> {
    return this.scheduler.kick(onError);
  }

  /** Run every queued (or abandoned) task to completion, and wait for pending blob collection. */
  runTasks(onProgress?: (t: Task) => void): Promise<void> {
    return this.scheduler.runTasks(onProgress);
  }

  /**
   * For long-running processes (mount, serve): tasks as they come, retention, token expiry,
   * collection, and SQLite's checkpoints on a worker thread instead of inside a request's commit.
   */
  startBackground(intervalMs = 60_000): void {
    if (this.scheduler.started || this.readOnly) return;
    this.ensureReserve();
    this.scheduler.start(intervalMs);
    if (this.backend.sqlite) this.checkpointer = Checkpointer.start(this.backend.sqlite, this.dir);
  }

  // ───────────────────────────── life cycle ─────────────────────────────

  /**
   * fsync(2)/fsyncdir(2): make every committed transaction durable now. A durable commit syncs
   * the WAL up to and including itself; an empty transaction would write no frame, so it records
   * the time of the sync.
   */
  sync(): void {
    this.transaction(() => this.meta.set('synced_at', String(nowUs())), { durable: true });
  }

  /** Wait for background blob collection and tasks started by this process. */
  async idle(): Promise<void> {
    while (this.refs.collecting || this.scheduler.running) {
      await this.refs.collecting;
      await this.scheduler.running;
    }
  }

  close(): void {
    if (this.engine.closed) return;
    this.scheduler.stop();
    // A clean exit ends this process's holds and its uncommitted uploads' leases.
    this.refs.close();
    this.checkpointer?.stop(); // its connection closed first: ours is the last, and does the final checkpoint
    this.engine.close();
    rmSync(this.stagingDir, { recursive: true, force: true });
    // After the WAL and shared memory are gone, their space counts as free again.
    // A read-only open creates nothing, the reserve included.
    if (!this.readOnly && this.engineKind === 'sqlite' && existsSync(join(this.dir, RESERVE_FILE))) topUpReserve(this.dir);
    // Releases the read descriptors the local store keeps; its close starts synchronously.
    if (this.ownsBlobs) void this.blobs.close?.()?.catch(() => undefined);
  }
}
