/**
 * The on-disk cache under the page cache: remote bytes survive a remount (and kill -9) on local
 * disk, so reading a file again after a restart costs no object-store request.
 *
 * What it stores are *extents* of blobs — (key, offset, length), a whole page or, for random
 * readers, one small unit — each in its own file. Blobs are immutable and keys content-addressed,
 * so an extent never goes stale: there is nothing to invalidate, only to evict.
 *
 * A file is served only after it is verified. Each file starts with a header naming what it holds
 * (magic, blob key, offset, length) and a CRC-32 of every check unit (64 KiB) of its data, itself
 * covered by a header CRC. A reader verifies the header and every unit it reads, so a torn,
 * truncated, zero-filled or misplaced file is never served: it is deleted and the bytes come from
 * the store again. Files are written to `tmp/` and renamed into place, so a crash mid-write (kill
 * -9) leaves at worst a temp file, removed at the next start; no fsync is needed, because after a
 * power loss the checksums catch what the rename could not (data that never reached the disk).
 * CRC-32 (zlib's, ~7 GB/s here) is an error check, not a defence against someone who can write
 * the cache folder: that folder is the library owner's (0700).
 *
 * Layout: `<dir>/lock` (owner), `<dir>/tmp/`, `<dir>/v1/<2 hex>/<key>-<offset>-<length>` (256-way
 * fan-out on key and MiB, so one big blob spreads over every folder). The index (which extents
 * exist, least recently used first) lives in memory, rebuilt from the folder at start ordered by
 * modification time; a hit refreshes a file's time at most once a minute, so recency survives a
 * remount roughly. Eviction deletes the least recently used files until the bytes on disk
 * (headers included) fit `maxBytes`.
 *
 * One process uses a cache folder at a time (`lock` holds host:pid; a dead owner's lock is taken
 * over). Another process on the same library runs memory-only and says so.
 *
 * Faults never reach a reader: a full disk (ENOSPC/EDQUOT) or a failing one (EIO, EROFS…) on a
 * write turns writes off for a while with one log line (evicting a tenth of the cache on ENOSPC,
 * to give the space back); a read that fails or does not verify is a miss. Writes are
 * fire-and-forget with a bounded backlog (4 at a time on the thread pool): when the disk cannot
 * keep up, pages are not written (counted in `writesDropped`) rather than held in memory.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, open, readFile, readdir, rename, rm, stat, statfs, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { errno, messageOf } from './common.js';

const MAGIC = Buffer.from('SMHCPG01', 'latin1');
const FIXED_HEADER = 64;
const ALIGN = 4096;
const FORMAT_DIR = 'v1';
const NAME_RE = /^([0-9a-f]{64})-(\d+)-(\d+)$/;
/** Errors that mean "the cache disk cannot take writes now": stop writing for a while. */
const FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);
const TOUCH_EVERY_MS = 60_000;

export type DiskCacheOp = 'write' | 'read';

/** Test hook: return an errno code (e.g. 'ENOSPC', 'EIO') to make that file operation fail. */
export type DiskCacheFaults = (op: DiskCacheOp, path: string) => string | undefined;

export interface DiskCacheOptions {
  dir: string;
  /** Bytes on disk (headers included) the cache may hold. */
  maxBytes: number;
  /** Check unit: each has its own CRC-32, and reads verify whole units (default 64 KiB). */
  unitSize?: number;
  /** Where one-line messages go (default stderr). */
  log?: (line: string) => void;
  /** How long writes stay off after a full or failing disk (default 60 s). */
  retryAfterMs?: number;
  /** Bytes of writes queued or running at most; more are dropped (default 128 MiB; a mount: `pendingWriteAllowance`). */
  maxPendingWriteBytes?: number;
  /** Writes running at once (default 4, the thread pool's size: a cold S3 read at 400 MB/s needs them). */
  writeConcurrency?: number;
  /**
   * Share of the cache's file system kept free for everything else (default 0.05): below it the
   * cache writes nothing and gives back what it holds until the share is free again.
   */
  minFreeRatio?: number;
  faults?: DiskCacheFaults;
}

export interface DiskCacheStats {
  /** on: reading and writing; degraded: reading, writes paused after a disk error; off: not used. */
  state: 'on' | 'degraded' | 'off';
  dir: string;
  maxBytes: number;
  /** Bytes of cache files now (headers included), and how many. */
  bytes: number;
  entries: number;
  /** Extents read back and verified / looked up and not there. */
  hits: number;
  misses: number;
  bytesRead: number;
  /** Extents written, and their data bytes. */
  writes: number;
  bytesWritten: number;
  /** Files deleted to stay within maxBytes (or to give space back on ENOSPC). */
  evictions: number;
  /** Files that failed verification (deleted, never served). */
  corrupt: number;
  /** I/O errors on the cache disk (reads and writes). */
  errors: number;
  /** Writes not done: backlog full or writes paused. */
  writesDropped: number;
}

interface Entry {
  size: number;
  /** Last time the file's mtime was set (ms). */
  touched: number;
}

interface PendingWrite {
  key: string;
  offset: number;
  data: Buffer;
  done: () => void;
}

export function headerSize(length: number, unitSize: number): number {
  const units = Math.max(1, Math.ceil(length / unitSize));
  return Math.ceil((FIXED_HEADER + 4 * units) / ALIGN) * ALIGN;
}

function extentId(key: string, offset: number, length: number): string {
  return `${key}-${offset}-${length}`;
}

export class DiskCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly unitSize: number;
  readonly #log: (line: string) => void;
  readonly #retryAfterMs: number;
  readonly #maxPendingBytes: number;
  readonly #writeConcurrency: number;
  readonly #faults: DiskCacheFaults | undefined;
  readonly #minFreeRatio: number;
  #freeCheckedAt = 0;
  #writtenSinceFreeCheck = 0;
  #lowSpaceLoggedAt = 0;
  readonly #index = new Map<string, Entry>();
  /** Extents being written (not yet in the index). */
  readonly #writing = new Set<string>();
  readonly #queue: PendingWrite[] = [];
  #pendingBytes = 0;
  #running = 0;
  #idleWaiters: Array<() => void> = [];
  #state: 'on' | 'degraded' | 'off' = 'off';
  #writesOffUntil = 0;
  #lastReadErrorLog = 0;
  #opened = false;
  /** This instance holds the folder's lock. */
  #locked = false;
  #closed = false;
  #s = { hits: 0, misses: 0, bytesRead: 0, writes: 0, bytesWritten: 0, evictions: 0, corrupt: 0, errors: 0, writesDropped: 0 };
  #bytes = 0;

  constructor(opts: DiskCacheOptions) {
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes;
    this.unitSize = opts.unitSize ?? 64 * 1024;
    this.#log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.#retryAfterMs = opts.retryAfterMs ?? 60_000;
    this.#maxPendingBytes = opts.maxPendingWriteBytes ?? 128 * 1024 * 1024;
    this.#writeConcurrency = opts.writeConcurrency ?? 4;
    this.#faults = opts.faults;
    this.#minFreeRatio = opts.minFreeRatio ?? 0.05;
    if (!Number.isSafeInteger(this.unitSize) || this.unitSize < 4096) throw new Error(`disk cache: unitSize must be ≥ 4096, got ${this.unitSize}`);
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 0) throw new Error(`disk cache: maxBytes must be ≥ 0, got ${this.maxBytes}`);
  }

  /**
   * Take the folder (lock), remove temp files a crash left, and index what is there. Never
   * throws: a folder that cannot be used leaves the cache off, with a log line saying why.
   */
  async open(): Promise<void> {
    if (this.#opened) return;
    this.#opened = true;
    if (this.maxBytes === 0) return;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (!(await this.#lock())) return;
      await rm(join(this.dir, 'tmp'), { recursive: true, force: true });
      await mkdir(join(this.dir, 'tmp'), { mode: 0o700 });
      const formatDir = join(this.dir, FORMAT_DIR);
      await mkdir(formatDir, { recursive: true, mode: 0o700 });
      for (let i = 0; i < 256; i++) await mkdir(join(formatDir, fanName(i)), { recursive: true });
      await this.#scan(formatDir);
      this.#state = 'on';
    } catch (e) {
      this.#log(`smhfs: disk cache: cannot use ${this.dir} (${messageOf(e)}); caching in memory only`);
      await this.#unlock();
    }
  }

  get state(): 'on' | 'degraded' | 'off' {
    if (this.#state === 'degraded' && Date.now() >= this.#writesOffUntil) {
      this.#state = 'on';
      this.#log(`smhfs: disk cache: writing to ${this.dir} again`);
    }
    return this.#state;
  }

  /** Whether the extent is stored (no I/O, nothing counted). */
  has(key: string, offset: number, length: number): boolean {
    return this.#state !== 'off' && this.#index.has(extentId(key, offset, length));
  }

  /** Count a lookup that `has` answered no to (the caller went to the store). */
  missed(): undefined {
    this.#s.misses++;
    return undefined;
  }

  /**
   * Fill `target` with the bytes at blob offset `at` from the stored extent (key, offset,
   * length); `at - offset` is a multiple of the unit size and the target ends on a unit boundary
   * or at the extent's end. Resolves true when every byte was read and verified; false — with
   * the bytes of `target` undefined — when the extent is absent, unreadable or fails
   * verification (then it is deleted). Never throws.
   */
  async read(key: string, offset: number, length: number, at: number, target: Buffer): Promise<boolean> {
    const id = extentId(key, offset, length);
    const rel = at - offset;
    const n = target.length;
    if (this.#state === 'off' || !this.#index.has(id) || rel < 0 || rel % this.unitSize !== 0 || rel + n > length || n === 0 || ((rel + n) % this.unitSize !== 0 && rel + n !== length)) {
      this.#s.misses++;
      return false;
    }
    const path = this.#path(key, offset, length);
    const hsize = headerSize(length, this.unitSize);
    let fh: FileHandle | undefined;
    try {
      this.#inject('read', path);
      fh = await open(path, 'r');
      const header = Buffer.allocUnsafe(hsize);
      let got: number;
      let hgot: number;
      if (rel === 0) {
        const r = await fh.readv([header, target], 0);
        hgot = Math.min(r.bytesRead, hsize);
        got = Math.max(0, r.bytesRead - hsize);
      } else {
        const [h, d] = await Promise.all([fh.read(header, 0, hsize, 0), fh.read(target, 0, n, hsize + rel)]);
        hgot = h.bytesRead;
        got = d.bytesRead;
      }
      const why = hgot < hsize || got < n ? `short file (${hgot + got} bytes)` : this.#verify(header, key, offset, length, rel, target);
      if (why) {
        this.#s.corrupt++;
        this.#drop(id, path);
        this.#log(`smhfs: disk cache: ${path} failed verification (${why}); deleted it, reading from the store`);
        this.#s.misses++;
        return false;
      }
      this.#s.hits++;
      this.#s.bytesRead += n;
      const e = this.#index.get(id);
      if (e) {
        // Most recently used: to the end of the map (eviction takes from the front).
        this.#index.delete(id);
        this.#index.set(id, e);
        const now = Date.now();
        if (now - e.touched > TOUCH_EVERY_MS) {
          e.touched = now;
          const t = new Date(now);
          await fh.utimes(t, t).catch(() => undefined);
        }
      }
      return true;
    } catch (err) {
      this.#s.misses++;
      if (errno(err) === 'ENOENT') {
        this.#forget(id); // deleted behind our back: just a miss
      } else {
        this.#s.errors++;
        this.#drop(id, path);
        const now = Date.now();
        if (now - this.#lastReadErrorLog > 60_000) {
          this.#lastReadErrorLog = now;
          this.#log(`smhfs: disk cache: reading ${path} failed (${errno(err) ?? messageOf(err)}); reading from the store instead`);
        }
      }
      return false;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /**
   * Store `data` as the extent (key, offset, data.length), in the background. The caller must
   * leave `data` unchanged until the returned promise settles (it never rejects). Already stored,
   * being written, writes paused, or the backlog full: nothing is written.
   */
  write(key: string, offset: number, data: Buffer): Promise<void> {
    const id = extentId(key, offset, data.length);
    if (data.length === 0 || this.#closed || this.#index.has(id) || this.#writing.has(id)) return Promise.resolve();
    if (this.state !== 'on' || this.#pendingBytes + data.length > this.#maxPendingBytes) {
      if (this.#state !== 'off') this.#s.writesDropped++;
      return Promise.resolve();
    }
    this.#writing.add(id);
    this.#pendingBytes += data.length;
    return new Promise<void>((done) => {
      this.#queue.push({ key, offset, data, done });
      this.#pump();
    });
  }

  /** Resolves when no write is queued or running. */
  async idle(): Promise<void> {
    while (this.#running > 0 || this.#queue.length > 0) await new Promise<void>((r) => this.#idleWaiters.push(r));
  }

  stats(): DiskCacheStats {
    return { state: this.state, dir: this.dir, maxBytes: this.maxBytes, bytes: this.#bytes, entries: this.#index.size, ...this.#s };
  }

  /** Finish the writes under way and release the folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.idle();
    await this.#unlock();
    this.#state = 'off';
  }

  // ── writing ──

  #pump(): void {
    while (this.#running < this.#writeConcurrency && this.#queue.length > 0) {
      const w = this.#queue.shift()!;
      this.#running++;
      void this.#writeOne(w).finally(() => {
        this.#running--;
        this.#pendingBytes -= w.data.length;
        this.#writing.delete(extentId(w.key, w.offset, w.data.length));
        w.done();
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const r of waiters) r();
        }
      });
    }
  }

  async #writeOne(w: PendingWrite): Promise<void> {
    const length = w.data.length;
    const id = extentId(w.key, w.offset, length);
    if (this.state !== 'on') {
      this.#s.writesDropped++;
      return;
    }
    const header = this.#header(w.key, w.offset, w.data);
    const size = header.length + length;
    if (size > this.maxBytes) return; // larger than the whole cache: never stored
    if (!(await this.#roomOnDisk(size))) {
      this.#s.writesDropped++;
      return;
    }
    this.#evictTo(this.maxBytes - size);
    this.#bytes += size; // reserved now, so concurrent writes do not overshoot together
    const tmp = join(this.dir, 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`);
    const path = this.#path(w.key, w.offset, length);
    let fh: FileHandle | undefined;
    try {
      this.#inject('write', tmp);
      fh = await open(tmp, 'wx', 0o600);
      let done = 0;
      while (done < size) {
        const bufs = done < header.length ? [header.subarray(done), w.data] : [w.data.subarray(done - header.length)];
        const { bytesWritten } = await fh.writev(bufs);
        if (bytesWritten === 0) throw Object.assign(new Error('wrote nothing'), { code: 'EIO' });
        done += bytesWritten;
      }
      await fh.close();
      fh = undefined;
      await rename(tmp, path).catch(async (e: unknown) => {
        if (errno(e) !== 'ENOENT') throw e;
        await mkdir(join(path, '..'), { recursive: true }); // its folder was removed: make it again
        await rename(tmp, path);
      });
      this.#index.set(id, { size, touched: Date.now() });
      this.#s.writes++;
      this.#s.bytesWritten += length;
    } catch (e) {
      this.#bytes -= size;
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      this.#s.errors++;
      this.#pauseWrites(e);
    }
  }

  /**
   * Whether the file system keeps its free share after `size` more bytes. Checked every 5 s or
   * 256 MiB written; when short, the least recently used files go until it is free again.
   */
  async #roomOnDisk(size: number): Promise<boolean> {
    this.#writtenSinceFreeCheck += size;
    const now = Date.now();
    if (this.#minFreeRatio <= 0 || (now - this.#freeCheckedAt < 5000 && this.#writtenSinceFreeCheck < 256 * 1024 * 1024)) return true;
    this.#freeCheckedAt = now;
    this.#writtenSinceFreeCheck = 0;
    let st;
    try {
      st = await statfs(this.dir);
    } catch {
      return true; // no answer: the write itself will tell (ENOSPC)
    }
    const total = st.blocks * st.bsize;
    const short = total * this.#minFreeRatio - (st.bavail * st.bsize - size);
    if (short <= 0) return true;
    this.#evictTo(Math.max(0, this.#bytes - short));
    this.#freeCheckedAt = 0; // look again at the next write
    if (now - this.#lowSpaceLoggedAt > 60_000) {
      this.#lowSpaceLoggedAt = now;
      this.#log(
        `smhfs: disk cache: the disk holding ${this.dir} has less than ${Math.round(this.#minFreeRatio * 100)}% free; ` +
          `keeping the cache smaller (${Math.round(this.#bytes / 2 ** 20)} MiB now)`,
      );
    }
    return false;
  }

  #pauseWrites(e: unknown): void {
    const code = errno(e) ?? messageOf(e);
    const full = FULL_ERRNOS.has(code);
    if (full) this.#evictTo(Math.floor(this.#bytes * 0.9)); // our share of the full disk goes back
    if (this.#state !== 'on') return;
    this.#state = 'degraded';
    this.#writesOffUntil = Date.now() + this.#retryAfterMs;
    this.#log(
      `smhfs: disk cache: ${full ? 'the disk holding' : 'cannot write to'} ${this.dir} ${full ? 'is full' : 'any more'} (${code}); ` +
        `caching in memory only, trying again in ${Math.round(this.#retryAfterMs / 1000)} s`,
    );
  }

  #header(key: string, offset: number, data: Buffer): Buffer {
    const length = data.length;
    const units = Math.max(1, Math.ceil(length / this.unitSize));
    const h = Buffer.alloc(headerSize(length, this.unitSize));
    MAGIC.copy(h, 0);
    h.write(key, 8, 32, 'hex');
    h.writeUInt32LE(offset % 2 ** 32, 40);
    h.writeUInt32LE(Math.floor(offset / 2 ** 32), 44);
    h.writeUInt32LE(length, 48);
    h.writeUInt32LE(this.unitSize, 52);
    for (let u = 0; u < units; u++) {
      h.writeUInt32LE(crc32(data.subarray(u * this.unitSize, Math.min(length, (u + 1) * this.unitSize))), FIXED_HEADER + 4 * u);
    }
    h.writeUInt32LE(headerCrc(h, units), 56);
    return h;
  }

  /** Why the header or a unit of `data` (at `rel` in the extent) does not check out, or undefined. */
  #verify(h: Buffer, key: string, offset: number, length: number, rel: number, data: Buffer): string | undefined {
    const units = Math.max(1, Math.ceil(length / this.unitSize));
    if (!h.subarray(0, 8).equals(MAGIC)) return 'bad magic';
    if (h.readUInt32LE(56) !== headerCrc(h, units)) return 'header checksum';
    if (h.toString('hex', 8, 40) !== key || h.readUInt32LE(40) + h.readUInt32LE(44) * 2 ** 32 !== offset || h.readUInt32LE(48) !== length) {
      return 'header names another extent';
    }
    if (h.readUInt32LE(52) !== this.unitSize) return 'written with another unit size';
    const first = rel / this.unitSize;
    for (let u = 0; u * this.unitSize < data.length; u++) {
      const crc = crc32(data.subarray(u * this.unitSize, Math.min(data.length, (u + 1) * this.unitSize)));
      if (crc !== h.readUInt32LE(FIXED_HEADER + 4 * (first + u))) return `unit ${first + u} checksum`;
    }
    return undefined;
  }

  // ── index ──

  #path(key: string, offset: number, length: number): string {
    return join(this.dir, FORMAT_DIR, fanOf(key, offset), extentId(key, offset, length));
  }

  #evictTo(limit: number): void {
    for (const [id, e] of this.#index) {
      if (this.#bytes <= limit) break;
      this.#index.delete(id);
      this.#bytes -= e.size;
      this.#s.evictions++;
      const m = NAME_RE.exec(id)!;
      void unlink(this.#path(m[1]!, Number(m[2]), Number(m[3]))).catch(() => undefined);
    }
  }

  #forget(id: string): void {
    const e = this.#index.get(id);
    if (!e) return;
    this.#index.delete(id);
    this.#bytes -= e.size;
  }

  #drop(id: string, path: string): void {
    this.#forget(id);
    void unlink(path).catch(() => undefined);
  }

  async #scan(formatDir: string): Promise<void> {
    const found: Array<{ id: string; size: number; mtime: number }> = [];
    for (let i = 0; i < 256; i++) {
      const sub = join(formatDir, fanName(i));
      const names = await readdir(sub);
      for (let j = 0; j < names.length; j += 64) {
        await Promise.all(
          names.slice(j, j + 64).map(async (name) => {
            const m = NAME_RE.exec(name);
            if (!m) return; // not ours: left alone
            const [key, offset, length] = [m[1]!, Number(m[2]), Number(m[3])];
            const path = join(sub, name);
            const st = await stat(path).catch(() => undefined);
            if (!st) return;
            // In the wrong folder, or not the size its name says (a crash, a full disk): gone.
            if (fanOf(key, offset) !== fanName(i) || st.size !== headerSize(length, this.unitSize) + length) {
              await unlink(path).catch(() => undefined);
              return;
            }
            found.push({ id: name, size: st.size, mtime: st.mtimeMs });
          }),
        );
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      this.#index.set(f.id, { size: f.size, touched: f.mtime });
      this.#bytes += f.size;
    }
    this.#evictTo(this.maxBytes); // a smaller --cache-disk-size than last time
  }

  // ── the lock ──

  async #lock(): Promise<boolean> {
    const path = join(this.dir, 'lock');
    const me = `${hostname()}:${process.pid}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(path, `${me}\n`, { flag: 'wx', mode: 0o600 });
        this.#locked = true;
        return true;
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      const owner = (await readFile(path, 'utf8').catch(() => '')).trim();
      const [host, pid] = owner.split(':');
      if (host === hostname() && pid !== undefined && !alive(Number(pid))) {
        await unlink(path).catch(() => undefined); // its owner is gone (kill -9, crash)
        continue;
      }
      this.#log(`smhfs: disk cache: ${this.dir} is in use by ${owner || 'another process'}; caching in memory only (remove ${path} if that process is gone)`);
      return false;
    }
    return false;
  }

  async #unlock(): Promise<void> {
    if (!this.#locked) return;
    this.#locked = false;
    const path = join(this.dir, 'lock');
    const owner = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (owner === `${hostname()}:${process.pid}`) await unlink(path).catch(() => undefined);
  }

  #inject(op: DiskCacheOp, path: string): void {
    const code = this.#faults?.(op, path);
    if (code) throw Object.assign(new Error(`${code}: injected ${op} fault on ${path}`), { code });
  }
}

function headerCrc(h: Buffer, units: number): number {
  return crc32(h.subarray(FIXED_HEADER, FIXED_HEADER + 4 * units), crc32(h.subarray(0, 56)));
}

function fanName(i: number): string {
  return i.toString(16).padStart(2, '0');
}

/** Fan-out folder: the key's first byte plus the MiB, so one blob's extents spread over all 256. */
function fanOf(key: string, offset: number): string {
  return fanName((parseInt(key.slice(0, 2), 16) + Math.floor(offset / 2 ** 20)) % 256);
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

/** Bytes of pages held for pending disk writes (beyond the page cache's budget): half of it, ≤ 128 MiB (native-notes/blobs.md). */
export function pendingWriteAllowance(cacheBytes: number): number {
  return Math.min(128 * 1024 * 1024, Math.floor(cacheBytes / 2));
}
