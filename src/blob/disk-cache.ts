/**
 * The on-disk cache under the page cache: remote bytes survive a remount (and kill -9) on local
 * disk, so reading a file again after a restart costs no object-store request.
 *
 * Format v2: one file per *segment* of a blob (16 MiB by default: `segmentSize`), holding the
 * cached bytes at their own offsets (a sparse file) after a header. Pages and random-read units
 * are written into their segment's file in place, so a cold read of 1 GiB creates 64 files, not
 * the 1,024 of format v1 (one file per page, written to `tmp/` and renamed: creating them was
 * ~21% of the mount's CPU on a cold S3 read). Blobs are immutable and keys content-addressed, so
 * bytes never go stale: there is nothing to invalidate, only to evict.
 *
 * A byte is served only after it is verified. The cache knows bytes by *check unit* (64 KiB): the
 * header holds, per unit of the segment, a record (CRC-32 of the unit's bytes seeded with the
 * blob key and the unit's offset, and the unit's length; length 0 = absent). A write puts the
 * data first and its records after it, so a crash between the two leaves units with no record
 * (absent), and a record whose data never reached the disk (power loss: no fsync) fails its CRC.
 * The records are also kept in memory (4 KiB per 16 MiB segment), so a hit is one read and a CRC
 * per unit: a torn, truncated, zero-filled or misplaced unit is never served — its record is
 * cleared and the bytes come from the store again. The fixed part of the header (magic, key,
 * segment, sizes) has its own CRC; a file whose header does not check out is deleted at start.
 * CRC-32 (zlib's, ~7 GB/s here) is an error check, not a defence against someone who can write
 * the cache folder: that folder is the library owner's (0700).
 *
 * Layout: `<dir>/lock` (owner), `<dir>/v2/<2 hex of key>/<key>-<segment index>`. A folder of an
 * older format (`v1/`, `tmp/`) is never read: it is removed in the background at start, with a
 * log line. The index (segments, least recently used first, with their unit records) lives in
 * memory, rebuilt from the headers at start ordered by modification time; a hit refreshes a
 * file's time at most once a minute, so recency survives a remount roughly. Eviction deletes the
 * least recently used segment files (never one a write is using) until the bytes (headers and
 * units held) fit `maxBytes`.
 *
 * One process uses a cache folder at a time (`lock` holds host:pid; a dead owner's lock is taken
 * over). Another process on the same library runs memory-only and says so.
 *
 * Faults never reach a reader: a full disk (ENOSPC/EDQUOT) or a failing one (EIO, EROFS…) on a
 * write turns writes off for a while with one log line (evicting a tenth of the cache on ENOSPC,
 * to give the space back); a read that fails or does not verify is a miss. Writes are
 * fire-and-forget with a bounded backlog (4 at a time on the thread pool): when the disk cannot
 * keep up, pages are not written (counted in `writesDropped`) rather than held in memory.
 * Over half that budget (`writeBacklogHigh`) the page cache holds back its readahead until the
 * writer catches up (on one CPU the reader outran it: pages dropped, fresh buffers allocated).
 * Queued writes that continue one another (the pages of a sequential read) go out as one batch
 * per segment file (2 MiB at most): one `pwritev` of the data, then one write of their records —
 * the same order, data before records — and segment files stay open between writes (16 at most),
 * so a cold read costs two file operations per 2 MiB instead of four per 1 MiB page.
 * The records' CRCs of bytes fetched from S3 are computed as each socket read lands them
 * (`landingCrcs`, fed by the page cache through the store's `onBytes`), while they are still in
 * the CPU's cache; a write without them computes them itself.
 * Data in aligned buffers (a mount's page buffers, from the addon's huge-page slabs) is written
 * with O_DIRECT (`directIo`): the kernel's buffered write was most of what the disk cache added
 * to a cold S3 read's CPU, and the bytes are in the mount's kernel cache already. Records, units
 * and short last pages go through the page cache as before; the write order is the same.
 *
 * Over 600 lines because the file format, the write order that keeps it safe, its verification
 * and the index that mirrors it are one invariant, read and changed together.
 */
import { hostname } from 'node:os';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, stat, statfs, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { errno, messageOf } from './common.js';

const MAGIC = Buffer.from('SMHCSG02', 'latin1');
const FIXED_HEADER = 64;
const RECORD = 8;
const ALIGN = 4096;
const FORMAT_DIR = 'v2';
/** Folders of older formats in the cache folder: removed at start, never read. */
const OLD_DIRS = ['v1', 'tmp'];
const NAME_RE = /^([0-9a-f]{64})-(\d+)$/;
/** Errors that mean "the cache disk cannot take writes now": stop writing for a while. */
const FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);
const TOUCH_EVERY_MS = 60_000;
/** Segment files kept open for writing (a sequential read writes one segment at a time). */
const MAX_OPEN_FILES = 16;
/**
 * Bytes of contiguous queued writes that go out as one `pwritev` and one record write. 2 MiB:
 * measured here (512 MiB written as 8-page runs, 3 rounds each), batches of 4 MiB and more cost
 * 2–3× the kernel CPU of 1 MiB writes (one 8 MiB write instead of four writes in parallel on the
 * thread pool), 2 MiB the same as 1 MiB with half the file operations.
 */
const MAX_BATCH_BYTES = 2 * 1024 * 1024;
/** O_DIRECT wants the file position, address and length on the disk's logical block size: 4096 covers the common ones. */
const DIRECT_ALIGN = 4096;

export type DiskCacheOp = 'write' | 'read';

/** Test hook: return an errno code (e.g. 'ENOSPC', 'EIO') to make that file operation fail. */
export type DiskCacheFaults = (op: DiskCacheOp, path: string) => string | undefined;

export interface DiskCacheOptions {
  dir: string;
  /** Bytes on disk (headers included) the cache may hold. */
  maxBytes: number;
  /** Check unit: each has its own CRC-32, and reads verify whole units (default 64 KiB). */
  unitSize?: number;
  /** Bytes of a blob per cache file (default 16 MiB; a multiple of unitSize). */
  segmentSize?: number;
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
  /**
   * zlib's CRC-32 as `crc32(data, seed)` (default: node:zlib's). A mount passes the libfuse 3
   * addon's (PCLMUL, same results): Node's bundled zlib takes its table path here, and the CRC
   * of every byte written was the largest single cost of a cold S3 read with the disk cache
   * (issue 16: 19% of the mount's CPU samples). The format does not change.
   */
  crc32?: (data: Uint8Array, seed?: number) => number;
  /**
   * Whether bytes may be written with O_DIRECT (their address and length 4096-aligned). Given (a
   * mount passes the addon's check; the page cache's page buffers are aligned slabs), such data
   * goes to the cache files with O_DIRECT, past the kernel's page cache: the buffered write cost
   * ~1.1 CPU-s per GiB here (dd, 2 MiB writes) against ~0.14 direct, and a cold read no longer
   * fills the host's memory with a second, dirty copy of what the mount's kernel cache already
   * holds. Anything else (units, a blob's short last page), and every record, is written as
   * before. A file system without O_DIRECT (EINVAL) turns it off with one log line.
   */
  directIo?: (data: Uint8Array) => boolean;
}

export interface DiskCacheStats {
  /** on: reading and writing; degraded: reading, writes paused after a disk error; off: not used. */
  state: 'on' | 'degraded' | 'off';
  dir: string;
  maxBytes: number;
  /** Bytes held (headers and the units present), and in how many files. */
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
  /** Reads that failed verification (the units' records cleared, never served). */
  corrupt: number;
  /** I/O errors on the cache disk (reads and writes). */
  errors: number;
  /** Writes not done: backlog full or writes paused; and their bytes. */
  writesDropped: number;
  bytesDropped: number;
  /** Bytes written whose records' CRCs were computed as the bytes landed (`landingCrcs`), not read back by the write. */
  bytesCrcLanded: number;
  /** Bytes written with O_DIRECT (`directIo`). */
  bytesWrittenDirect: number;
  /** Bytes of writes queued or running now (their page buffers are pinned until written). */
  pendingWriteBytes: number;
}

/** One cache file: a segment of a blob, and which of its units it holds. */
interface Segment {
  key: string;
  index: number;
  path: string;
  /** CRC-32 seed of the key (the records' CRCs start from it and the unit's offset). */
  keyCrc: number;
  /** Per unit: its length (0 = absent) and the CRC its record holds. */
  lens: Uint32Array;
  crcs: Uint32Array;
  /** Header plus the units present, as counted in the cache's bytes. */
  size: number;
  /** Last time the file's mtime was set (ms). */
  touched: number;
  /** Writes using the file: it is not evicted meanwhile. */
  busy: number;
  /** The file being made (or made): its header written. */
  creating: Promise<void> | undefined;
  /** The file opened for writing, kept open between writes (`#handle`), and the writes using it. */
  fh: Promise<FileHandle> | undefined;
  /** The same file opened with O_DIRECT for aligned data (`directIo`), kept and closed with `fh`. */
  dfh: Promise<FileHandle> | undefined;
  fhUsers: number;
}

interface PendingWrite {
  key: string;
  offset: number;
  data: Buffer;
  /** The units' CRCs, computed as the bytes landed (`LandingCrcs`), or undefined: computed here. */
  crcs: Uint32Array | undefined;
  done: () => void;
}

/** Bytes before a segment's data: the fixed header and a record per unit, 4 KiB-aligned. */
export function headerSize(segmentSize: number, unitSize: number): number {
  return Math.ceil((FIXED_HEADER + RECORD * Math.ceil(segmentSize / unitSize)) / ALIGN) * ALIGN;
}

function extentId(key: string, offset: number, length: number): string {
  return `${key}-${offset}-${length}`;
}

export class DiskCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly unitSize: number;
  readonly segmentSize: number;
  readonly #unitsPerSegment: number;
  readonly #hsize: number;
  readonly #log: (line: string) => void;
  readonly #retryAfterMs: number;
  readonly #maxPendingBytes: number;
  readonly #writeConcurrency: number;
  readonly #faults: DiskCacheFaults | undefined;
  readonly #minFreeRatio: number;
  #freeCheckedAt = 0;
  #writtenSinceFreeCheck = 0;
  #lowSpaceLoggedAt = 0;
  /** Segments by `<key>-<index>`, least recently used first. */
  readonly #index = new Map<string, Segment>();
  /** Extents being written. */
  readonly #writing = new Set<string>();
  readonly #queue: PendingWrite[] = [];
  #pendingBytes = 0;
  #running = 0;
  #pumpScheduled = false;
  /** Segments whose file is open for writing, least recently used first. */
  readonly #open = new Set<Segment>();
  #idleWaiters: Array<() => void> = [];
  #state: 'on' | 'degraded' | 'off' = 'off';
  #writesOffUntil = 0;
  #lastReadErrorLog = 0;
  #opened = false;
  /** This instance holds the folder's lock. */
  #locked = false;
  #closed = false;
  #s = { hits: 0, misses: 0, bytesRead: 0, writes: 0, bytesWritten: 0, evictions: 0, corrupt: 0, errors: 0, writesDropped: 0, bytesDropped: 0, bytesCrcLanded: 0, bytesWrittenDirect: 0 };
  #bytes = 0;
  readonly #offBuf = Buffer.alloc(8);
  readonly #crc32: (data: Uint8Array, seed?: number) => number;
  /** Aligned data goes out with O_DIRECT (off when not asked for, not on Linux, or the file system refused it). */
  readonly #directIo: ((data: Uint8Array) => boolean) | undefined;
  #direct: boolean;

  constructor(opts: DiskCacheOptions) {
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes;
    this.unitSize = opts.unitSize ?? 64 * 1024;
    this.segmentSize = opts.segmentSize ?? 16 * 1024 * 1024;
    this.#log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.#retryAfterMs = opts.retryAfterMs ?? 60_000;
    this.#maxPendingBytes = opts.maxPendingWriteBytes ?? 128 * 1024 * 1024;
    this.#writeConcurrency = opts.writeConcurrency ?? 4;
    this.#faults = opts.faults;
    this.#minFreeRatio = opts.minFreeRatio ?? 0.05;
    this.#crc32 = opts.crc32 ?? crc32;
    this.#directIo = opts.directIo;
    this.#direct = opts.directIo !== undefined && typeof fsConstants.O_DIRECT === 'number';
    if (!Number.isSafeInteger(this.unitSize) || this.unitSize < 4096) throw new Error(`disk cache: unitSize must be ≥ 4096, got ${this.unitSize}`);
    if (!Number.isSafeInteger(this.segmentSize) || this.segmentSize < this.unitSize || this.segmentSize % this.unitSize !== 0) {
      throw new Error(`disk cache: segmentSize must be a multiple of unitSize, got ${this.segmentSize}`);
    }
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 0) throw new Error(`disk cache: maxBytes must be ≥ 0, got ${this.maxBytes}`);
    this.#unitsPerSegment = this.segmentSize / this.unitSize;
    this.#hsize = headerSize(this.segmentSize, this.unitSize);
  }

  /**
   * Take the folder (lock), remove older formats' folders, and index what is there. Never
   * throws: a folder that cannot be used leaves the cache off, with a log line saying why.
   */
  async open(): Promise<void> {
    if (this.#opened) return;
    this.#opened = true;
    if (this.maxBytes === 0) return;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (!(await this.#lock())) return;
      for (const old of OLD_DIRS) {
        const path = join(this.dir, old);
        if (!(await stat(path).catch(() => undefined))) continue;
        if (old !== 'tmp') this.#log(`smhfs: disk cache: ${path} is an older cache format; removing it (never read)`);
        // In the background: a big old cache must not hold the mount's start.
        void rm(path, { recursive: true, force: true }).catch(() => undefined);
      }
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

  /** Whether every byte of (key, offset, length) is stored (no I/O, nothing counted). */
  has(key: string, offset: number, length: number): boolean {
    if (this.#state === 'off' || length <= 0) return false;
    const U = this.unitSize;
    const end = offset + length;
    let seg: Segment | undefined;
    let segIndex = -1;
    for (let u = Math.floor(offset / U); u * U < end; u++) {
      const index = Math.floor(u / this.#unitsPerSegment);
      if (index !== segIndex) {
        // One index lookup per segment, not per unit (this runs for every extent a read looks up).
        segIndex = index;
        seg = this.#index.get(segmentId(key, index));
      }
      const len = seg?.lens[u % this.#unitsPerSegment] ?? 0;
      if (len === 0 || (len < U && u * U + len < end)) return false;
    }
    return true;
  }

  /** Count a lookup that `has` answered no to (the caller went to the store). */
  missed(): undefined {
    this.#s.misses++;
    return undefined;
  }

  /**
   * Fill `target` with the bytes at blob offset `at` of the extent (key, offset, length); `at`
   * is on a unit boundary and the target ends on one or at the end of the blob's last unit, in
   * one segment. Resolves true when every byte was read and verified; false — with the bytes of
   * `target` undefined — when they are absent, unreadable or fail verification (then their
   * records are cleared). Never throws.
   */
  async read(key: string, offset: number, length: number, at: number, target: Buffer): Promise<boolean> {
    const U = this.unitSize;
    const n = target.length;
    const index = Math.floor(at / this.segmentSize);
    const seg = this.#index.get(segmentId(key, index));
    const rel = at - index * this.segmentSize;
    if (this.#state === 'off' || !seg || at < offset || at + n > offset + length || n === 0 || at % U !== 0 || rel + n > this.segmentSize || !this.#holds(seg, rel, n)) {
      this.#s.misses++;
      return false;
    }
    let fh: FileHandle | undefined;
    try {
      this.#inject('read', seg.path);
      fh = await open(seg.path, 'r');
      const { bytesRead } = await fh.read(target, 0, n, this.#hsize + rel);
      const why = bytesRead < n ? `short file (${bytesRead} of ${n} bytes at ${this.#hsize + rel})` : this.#verify(seg, rel, target);
      if (why) {
        this.#s.corrupt++;
        this.#clear(seg, rel, n);
        this.#log(`smhfs: disk cache: ${seg.path} failed verification (${why}); not served, reading from the store`);
        this.#s.misses++;
        return false;
      }
      this.#s.hits++;
      this.#s.bytesRead += n;
      if (this.#index.get(segmentId(key, index)) === seg) {
        // Most recently used: to the end of the map (eviction takes from the front).
        this.#index.delete(segmentId(key, index));
        this.#index.set(segmentId(key, index), seg);
        const now = Date.now();
        if (now - seg.touched > TOUCH_EVERY_MS) {
          seg.touched = now;
          const t = new Date(now);
          await fh.utimes(t, t).catch(() => undefined);
        }
      }
      return true;
    } catch (err) {
      this.#s.misses++;
      if (errno(err) === 'ENOENT') {
        this.#forget(seg); // deleted behind our back: just a miss
      } else {
        this.#s.errors++;
        this.#clear(seg, rel, n);
        const now = Date.now();
        if (now - this.#lastReadErrorLog > 60_000) {
          this.#lastReadErrorLog = now;
          this.#log(`smhfs: disk cache: reading ${seg.path} failed (${errno(err) ?? messageOf(err)}); reading from the store instead`);
        }
      }
      return false;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /**
   * Store `data` as the bytes at `offset` of blob `key`, in the background. `offset` is on a
   * unit boundary and `data` ends on one or at the blob's end (what the page cache fetches). The
   * caller must leave `data` unchanged until the returned promise settles (it never rejects).
   * Already stored, being written, writes paused, or the backlog full: nothing is written.
   * `crcs`: the records' CRCs of `data`'s units, from `landingCrcs` (computed while the bytes were
   * still in the CPU's cache); without them the write computes them. A wrong one costs a miss on
   * the read that checks it, never wrong bytes: reads verify the bytes they read from the file.
   */
  write(key: string, offset: number, data: Buffer, crcs?: Uint32Array): Promise<void> {
    const id = extentId(key, offset, data.length);
    if (data.length === 0 || this.#closed || offset % this.unitSize !== 0 || this.#writing.has(id) || this.has(key, offset, data.length)) return Promise.resolve();
    if (this.state !== 'on' || this.#pendingBytes + data.length > this.#maxPendingBytes) {
      if (this.#state !== 'off') {
        this.#s.writesDropped++;
        this.#s.bytesDropped += data.length;
      }
      return Promise.resolve();
    }
    this.#writing.add(id);
    this.#pendingBytes += data.length;
    return new Promise<void>((done) => {
      const fits = crcs !== undefined && crcs.length === Math.ceil(data.length / this.unitSize);
      this.#queue.push({ key, offset, data, crcs: fits ? crcs : undefined, done });
      this.#schedulePump();
    });
  }

  /**
   * A tracker for bytes about to land in `targets` (consecutive, from `offset` of blob `key`): fed
   * each run of bytes as it lands, it computes their units' CRCs while they are still in the
   * CPU's cache, for `write(…, crcs)`. Computed after the fetch instead, the CRC read every byte
   * back from memory (issue 16: 16% of a cold S3 read's mount CPU). Undefined when no unit could
   * use it (writes off, or extents that do not start on a unit).
   */
  landingCrcs(key: string, offset: number, targets: Buffer[]): LandingCrcs | undefined {
    if (this.state !== 'on' || offset % this.unitSize !== 0) return undefined;
    for (let i = 0; i < targets.length - 1; i++) if (targets[i]!.length % this.unitSize !== 0) return undefined;
    return new LandingCrcs(this.#crc32, this.#crc32(Buffer.from(key, 'hex')), this.unitSize, offset, targets);
  }

  /**
   * Whether the write backlog is over half its byte budget: the page cache then holds back its
   * readahead until the writer catches up, rather than fetch pages the backlog would drop (and a
   * remount fetch again) while their pinned buffers force fresh allocations (issue 16, one CPU).
   */
  get writeBacklogHigh(): boolean {
    return this.#pendingBytes * 2 > this.#maxPendingBytes;
  }

  /** Resolves when no write is queued or running. */
  async idle(): Promise<void> {
    while (this.#running > 0 || this.#queue.length > 0) await new Promise<void>((r) => this.#idleWaiters.push(r));
  }

  stats(): DiskCacheStats {
    return { state: this.state, dir: this.dir, maxBytes: this.maxBytes, bytes: this.#bytes, entries: this.#index.size, ...this.#s, pendingWriteBytes: this.#pendingBytes };
  }

  /** Finish the writes under way and release the folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.idle();
    await Promise.all([...this.#open].map((seg) => this.#closeHandle(seg)));
    await this.#unlock();
    this.#state = 'off';
  }

  // ── writing ──

  /**
   * Start writes at the next turn of the event loop, not at once: the pages of one store request
   * land together, and waiting for them all lets `#pump` write them as one batch.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    const U = this.unitSize;
    while (this.#running < this.#writeConcurrency && this.#queue.length > 0) {
      // Queued writes that continue one another (a sequential read's pages) go out together:
      // one pwritev and one record write per segment instead of open/write/write/close per page
      // (issue 16: the cache's file operations were a large part of a cold S3 read's CPU).
      const batch = [this.#queue.shift()!];
      let bytes = batch[0]!.data.length;
      for (;;) {
        const next = this.#queue[0];
        const last = batch[batch.length - 1]!;
        if (!next || next.key !== last.key || next.offset !== last.offset + last.data.length || last.data.length % U !== 0 || bytes + next.data.length > MAX_BATCH_BYTES) break;
        batch.push(this.#queue.shift()!);
        bytes += next.data.length;
      }
      this.#running++;
      void this.#writeBatch(batch).finally(() => {
        this.#running--;
        for (const w of batch) {
          this.#pendingBytes -= w.data.length;
          this.#writing.delete(extentId(w.key, w.offset, w.data.length));
          w.done();
        }
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const r of waiters) r();
        }
      });
    }
  }

  /**
   * Contiguous extents of one blob (possibly spanning segments): each segment's piece goes to
   * its own file. Extents are counted as written only when every piece was.
   */
  async #writeBatch(batch: PendingWrite[]): Promise<void> {
    const start = batch[0]!.offset;
    const datas = batch.map((w) => w.data);
    const total = datas.reduce((a, d) => a + d.length, 0);
    // The batch's unit CRCs when every write brought its own (all but the last are whole units).
    const U = this.unitSize;
    let crcs: Uint32Array | undefined;
    if (batch.every((w) => w.crcs)) {
      crcs = batch.length === 1 ? batch[0]!.crcs! : new Uint32Array(Math.ceil(total / U));
      if (batch.length > 1) batch.reduce((at, w) => (crcs!.set(w.crcs!, at), at + w.crcs!.length), 0);
    }
    for (let pos = 0; pos < total; ) {
      const at = start + pos;
      const index = Math.floor(at / this.segmentSize);
      const n = Math.min(total - pos, (index + 1) * this.segmentSize - at);
      const pieceCrcs = crcs?.subarray(pos / U, Math.ceil((pos + n) / U));
      if (!(await this.#writePiece(batch[0]!.key, index, at - index * this.segmentSize, slices(datas, pos, pos + n), n, pieceCrcs))) return;
      pos += n;
    }
    this.#s.writes += batch.length;
    this.#s.bytesWritten += total;
    if (crcs) this.#s.bytesCrcLanded += total;
  }

  /** Data, then its records; false when the write did not happen (paused, no room, error). `given`: the units' CRCs, if known. */
  async #writePiece(key: string, index: number, rel: number, parts: Buffer[], length: number, given?: Uint32Array): Promise<boolean> {
    if (this.state !== 'on') {
      this.#s.writesDropped++;
      this.#s.bytesDropped += length;
      return false;
    }
    const U = this.unitSize;
    if (this.#hsize + length > this.maxBytes) return false; // larger than the whole cache: never stored
    const id = segmentId(key, index);
    let seg = this.#index.get(id);
    const isNew = seg === undefined;
    if (seg === undefined) {
      seg = this.#newSegment(key, index);
      this.#index.set(id, seg);
    }
    seg.busy++; // from here on, never evicted under this write
    const u0 = rel / U;
    const units = Math.ceil(length / U);
    let adds = isNew ? this.#hsize : 0;
    for (let u = u0; u < u0 + units; u++) adds += seg.lens[u] === 0 ? Math.min(U, length - (u - u0) * U) : 0;
    let reserved = false;
    let fh: FileHandle | undefined;
    try {
      if (!(await this.#roomOnDisk(adds))) {
        this.#s.writesDropped++;
        this.#s.bytesDropped += length;
        return false;
      }
      this.#evictTo(this.maxBytes - adds);
      this.#bytes += adds; // reserved now, so concurrent writes do not overshoot together
      seg.size += adds;
      reserved = true;
      this.#inject('write', seg.path);
      // The first write of a file makes it, with an empty record table; the others wait for it.
      seg.creating ??= this.#create(seg);
      await seg.creating;
      fh = await this.#handle(seg);
      await this.#writeData(seg, fh, parts, this.#hsize + rel);
      // The records after the data: a record never names bytes that were not written first.
      const crcs = new Uint32Array(units);
      const records = Buffer.allocUnsafe(units * RECORD);
      let i = 0;
      for (const part of parts) {
        // Parts start on unit boundaries (pages and units are unit-aligned; only the blob's last can be short).
        for (let p = 0; p < part.length; p += U, i++) {
          const chunk = part.subarray(p, Math.min(part.length, p + U));
          crcs[i] = given ? given[i]! : this.#unitCrc(seg, index * this.segmentSize + rel + i * U, chunk);
          records.writeUInt32LE(crcs[i]!, i * RECORD);
          records.writeUInt32LE(chunk.length, i * RECORD + 4);
        }
      }
      await writeAll(fh, records, FIXED_HEADER + u0 * RECORD);
      for (let j = 0; j < units; j++) {
        seg.lens[u0 + j] = Math.min(U, length - j * U);
        seg.crcs[u0 + j] = crcs[j]!;
      }
      return true;
    } catch (e) {
      if (reserved) {
        this.#bytes -= adds;
        seg.size -= adds;
      }
      if (errno(e) === 'ENOENT') return false; // evicted or deleted meanwhile: nothing to say
      this.#s.errors++;
      this.#pauseWrites(e);
      return false;
    } finally {
      if (fh) this.#releaseHandle(seg);
      seg.busy--;
      // A file that holds nothing (its first write failed or was dropped) is not kept.
      if (seg.busy === 0 && seg.size <= this.#hsize && !seg.lens.some((l) => l > 0) && this.#index.get(id) === seg) {
        this.#drop(seg);
      }
    }
  }

  /**
   * The data of a piece: its leading aligned parts (`directIo`: the page buffers) with O_DIRECT,
   * the rest (a blob's short last page, units in plain buffers) through the page cache. A file
   * system that refuses O_DIRECT (EINVAL, at open or write) turns it off for good and those bytes
   * are written the buffered way; the bytes are the same either way, and the records follow.
   */
  async #writeData(seg: Segment, fh: FileHandle, parts: Buffer[], position: number): Promise<void> {
    let k = 0;
    let bytes = 0;
    if (this.#direct && position % DIRECT_ALIGN === 0) {
      while (k < parts.length && this.#directIo!(parts[k]!)) bytes += parts[k++]!.length;
    }
    if (k > 0) {
      const opening = (seg.dfh ??= open(seg.path, fsConstants.O_RDWR | fsConstants.O_DIRECT));
      try {
        const dfh = await opening.catch((e: unknown) => {
          if (seg.dfh === opening) seg.dfh = undefined; // not kept: the next write tries again
          throw e;
        });
        await writevAll(dfh, k === parts.length ? parts : parts.slice(0, k), position);
        this.#s.bytesWrittenDirect += bytes;
        if (k === parts.length) return;
        parts = parts.slice(k);
        position += bytes;
      } catch (e) {
        if (errno(e) !== 'EINVAL' || !this.#direct) throw e;
        this.#direct = false;
        this.#log(`smhfs: disk cache: the file system of ${this.dir} refuses O_DIRECT writes (EINVAL); writing through the kernel's page cache`);
      }
    }
    await writevAll(fh, parts, position);
  }

  /** Make the segment's file: the fixed header and an empty record table (any old file is emptied). */
  async #create(seg: Segment): Promise<void> {
    const fh = await open(seg.path, 'w', 0o600).catch(async (e: unknown) => {
      if (errno(e) !== 'ENOENT') throw e;
      await mkdir(join(seg.path, '..'), { recursive: true }); // its folder was removed: make it again
      return open(seg.path, 'w', 0o600);
    });
    try {
      await writeAll(fh, this.#header(seg.key, seg.index), 0);
    } finally {
      await fh.close();
    }
  }

  #newSegment(key: string, index: number): Segment {
    const n = this.#unitsPerSegment;
    return {
      key,
      index,
      path: join(this.dir, FORMAT_DIR, key.slice(0, 2), segmentId(key, index)),
      keyCrc: this.#crc32(Buffer.from(key, 'hex')),
      lens: new Uint32Array(n),
      crcs: new Uint32Array(n),
      size: 0,
      touched: Date.now(),
      busy: 0,
      creating: undefined,
      fh: undefined,
      dfh: undefined,
      fhUsers: 0,
    };
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

  /** A new file's header: the fixed part with its CRC, and an empty record table. */
  #header(key: string, index: number): Buffer {
    const h = Buffer.alloc(this.#hsize);
    MAGIC.copy(h, 0);
    h.write(key, 8, 32, 'hex');
    h.writeUInt32LE(index % 2 ** 32, 40);
    h.writeUInt32LE(Math.floor(index / 2 ** 32), 44);
    h.writeUInt32LE(this.segmentSize, 48);
    h.writeUInt32LE(this.unitSize, 52);
    h.writeUInt32LE(this.#crc32(h.subarray(0, 56)), 56);
    return h;
  }

  /** Why the fixed header does not name segment `index` of `key` in this geometry, or undefined. */
  #checkHeader(h: Buffer, key: string, index: number): string | undefined {
    if (!h.subarray(0, 8).equals(MAGIC)) return 'bad magic';
    if (h.readUInt32LE(56) !== this.#crc32(h.subarray(0, 56))) return 'header checksum';
    if (h.toString('hex', 8, 40) !== key || h.readUInt32LE(40) + h.readUInt32LE(44) * 2 ** 32 !== index) return 'header names another segment';
    if (h.readUInt32LE(48) !== this.segmentSize || h.readUInt32LE(52) !== this.unitSize) return 'written with another segment or unit size';
    return undefined;
  }

  /** A unit's CRC, seeded with its blob and offset: a record never verifies bytes from elsewhere. */
  #unitCrc(seg: Segment, blobOffset: number, chunk: Buffer): number {
    return this.#crc32(chunk, unitSeed(this.#crc32, this.#offBuf, seg.keyCrc, blobOffset));
  }

  /** Whether the units of [rel, rel + n) are present and the read ends where they do. */
  #holds(seg: Segment, rel: number, n: number): boolean {
    const U = this.unitSize;
    for (let u = rel / U; u * U < rel + n; u++) {
      const len = seg.lens[u]!;
      const want = Math.min(U, rel + n - u * U);
      if (len === 0 || len !== want) return false; // absent, or a part of a unit (cannot be verified)
    }
    return true;
  }

  /** Why a unit of `data` (at `rel` in the segment) does not check out, or undefined. */
  #verify(seg: Segment, rel: number, data: Buffer): string | undefined {
    const U = this.unitSize;
    const base = seg.index * this.segmentSize;
    for (let i = 0; i * U < data.length; i++) {
      const u = rel / U + i;
      if (this.#unitCrc(seg, base + u * U, data.subarray(i * U, Math.min(data.length, (i + 1) * U))) !== seg.crcs[u]) return `unit ${u} checksum`;
    }
    return undefined;
  }

  // ── index ──

  #evictTo(limit: number): void {
    for (const seg of this.#index.values()) {
      if (this.#bytes <= limit) break;
      if (seg.busy > 0) continue; // a write is putting bytes in it
      this.#s.evictions++;
      this.#drop(seg);
    }
  }

  #forget(seg: Segment): void {
    const id = segmentId(seg.key, seg.index);
    if (this.#index.get(id) !== seg) return;
    this.#index.delete(id);
    this.#bytes -= seg.size;
    if (seg.fhUsers === 0) void this.#closeHandle(seg); // else when its last write lets go of it
  }

  // ── open files ──

  /** The segment's file, open for writing (kept open for the next writes; a few at most). */
  async #handle(seg: Segment): Promise<FileHandle> {
    seg.fhUsers++;
    this.#open.delete(seg);
    this.#open.add(seg); // most recently used
    const p = (seg.fh ??= open(seg.path, 'r+'));
    try {
      const fh = await p;
      this.#trimOpen();
      return fh;
    } catch (e) {
      seg.fhUsers--;
      if (seg.fh === p) {
        seg.fh = undefined;
        this.#open.delete(seg);
      }
      throw e;
    }
  }

  #releaseHandle(seg: Segment): void {
    seg.fhUsers--;
    if (seg.fhUsers === 0 && this.#index.get(segmentId(seg.key, seg.index)) !== seg) void this.#closeHandle(seg);
    else this.#trimOpen();
  }

  /** Close the least recently used idle files beyond MAX_OPEN_FILES. */
  #trimOpen(): void {
    for (const seg of this.#open) {
      if (this.#open.size <= MAX_OPEN_FILES) break;
      if (seg.fhUsers === 0) void this.#closeHandle(seg);
    }
  }

  #closeHandle(seg: Segment): Promise<void> {
    this.#open.delete(seg);
    const ps = [seg.fh, seg.dfh];
    seg.fh = undefined;
    seg.dfh = undefined;
    return Promise.all(ps.map((p) => p?.then((fh) => fh.close()).catch(() => undefined))).then(() => undefined);
  }

  #drop(seg: Segment): void {
    this.#forget(seg);
    void unlink(seg.path).catch(() => undefined);
  }

  /** Units that did not verify: absent from now on, in memory and (best effort) in the file. */
  #clear(seg: Segment, rel: number, n: number): void {
    const U = this.unitSize;
    const first = rel / U;
    const count = Math.ceil(n / U);
    for (let u = first; u < first + count; u++) {
      seg.size -= seg.lens[u]!;
      this.#bytes -= seg.lens[u]!;
      seg.lens[u] = 0;
      seg.crcs[u] = 0;
    }
    void (async () => {
      const fh = await open(seg.path, 'r+');
      try {
        await writeAll(fh, Buffer.alloc(count * RECORD), FIXED_HEADER + first * RECORD);
      } finally {
        await fh.close();
      }
    })().catch(() => undefined);
  }

  async #scan(formatDir: string): Promise<void> {
    const found: Segment[] = [];
    const U = this.unitSize;
    for (let i = 0; i < 256; i++) {
      const sub = join(formatDir, fanName(i));
      const names = await readdir(sub);
      for (let j = 0; j < names.length; j += 64) {
        await Promise.all(
          names.slice(j, j + 64).map(async (name) => {
            const m = NAME_RE.exec(name);
            if (!m) return; // not ours: left alone
            const [key, index] = [m[1]!, Number(m[2])];
            const path = join(sub, name);
            let fh: FileHandle | undefined;
            try {
              fh = await open(path, 'r');
              const st = await fh.stat();
              const h = Buffer.alloc(this.#hsize);
              const { bytesRead } = await fh.read(h, 0, this.#hsize, 0);
              // In the wrong folder, a header that does not check out (a crash, another format): gone.
              if (key.slice(0, 2) !== fanName(i) || bytesRead < this.#hsize || this.#checkHeader(h, key, index) !== undefined) {
                await unlink(path).catch(() => undefined);
                return;
              }
              const seg = this.#newSegment(key, index);
              seg.creating = Promise.resolve();
              seg.size = this.#hsize;
              seg.touched = st.mtimeMs;
              for (let u = 0; u < this.#unitsPerSegment; u++) {
                const len = h.readUInt32LE(FIXED_HEADER + u * RECORD + 4);
                // A record whose data the file does not reach (truncated) is no unit.
                if (len === 0 || len > U || this.#hsize + u * U + len > st.size) continue;
                seg.lens[u] = len;
                seg.crcs[u] = h.readUInt32LE(FIXED_HEADER + u * RECORD);
                seg.size += len;
              }
              if (seg.size === this.#hsize) {
                await unlink(path).catch(() => undefined); // holds nothing
                return;
              }
              found.push(seg);
            } catch {
              // unreadable: not indexed (never served)
            } finally {
              await fh?.close().catch(() => undefined);
            }
          }),
        );
      }
    }
    found.sort((a, b) => a.touched - b.touched);
    for (const seg of found) {
      this.#index.set(segmentId(seg.key, seg.index), seg);
      this.#bytes += seg.size;
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

/** The CRC a unit's bytes start from: the blob key's CRC, then the unit's offset (8 bytes LE). */
function unitSeed(crc: (data: Uint8Array, seed?: number) => number, scratch: Buffer, keyCrc: number, blobOffset: number): number {
  scratch.writeUInt32LE(blobOffset % 2 ** 32, 0);
  scratch.writeUInt32LE(Math.floor(blobOffset / 2 ** 32), 4);
  return crc(scratch, keyCrc);
}

/**
 * Unit CRCs of bytes as they land in a fetch's buffers (`DiskCache.landingCrcs`). `feed` must be
 * given each run of bytes where it landed, in order; the CRCs of target i are given out
 * (`crcsOf`) only when every byte of every target was fed exactly once, in place and in order —
 * anything else (a run elsewhere, out of order, a retry) turns the tracker off, and the disk
 * cache computes the CRCs itself. The CRC is incremental (crc(a‖b, s) = crc(b, crc(a, s))), so a
 * unit split over several socket reads needs no combine step.
 */
export class LandingCrcs {
  readonly #crc: (data: Uint8Array, seed?: number) => number;
  readonly #keyCrc: number;
  readonly #unit: number;
  readonly #targets: Buffer[];
  readonly #bases: number[] = [];
  readonly #out: Uint32Array[] = [];
  readonly #scratch = Buffer.alloc(8);
  #t = 0;
  #pos = 0;
  #running = 0;
  #ok = true;

  constructor(crc: (data: Uint8Array, seed?: number) => number, keyCrc: number, unit: number, offset: number, targets: Buffer[]) {
    this.#crc = crc;
    this.#keyCrc = keyCrc;
    this.#unit = unit;
    this.#targets = targets;
    let at = offset;
    for (const t of targets) {
      this.#bases.push(at);
      this.#out.push(new Uint32Array(Math.ceil(t.length / unit)));
      at += t.length;
    }
  }

  /** `b`: bytes that just landed, a view of the next unfed bytes of the current target. */
  feed(b: Uint8Array): void {
    const target = this.#targets[this.#t];
    if (!this.#ok || b.length === 0) return;
    if (!target || b.buffer !== target.buffer || b.byteOffset !== target.byteOffset + this.#pos || this.#pos + b.length > target.length) {
      this.#ok = false;
      return;
    }
    const U = this.#unit;
    for (let k = 0; k < b.length; ) {
      const u = Math.floor(this.#pos / U);
      const unitEnd = Math.min((u + 1) * U, target.length);
      const n = Math.min(unitEnd - this.#pos, b.length - k);
      if (this.#pos === u * U) this.#running = unitSeed(this.#crc, this.#scratch, this.#keyCrc, this.#bases[this.#t]! + u * U);
      this.#running = this.#crc(b.subarray(k, k + n), this.#running);
      k += n;
      this.#pos += n;
      if (this.#pos === unitEnd) this.#out[this.#t]![u] = this.#running;
    }
    if (this.#pos === target.length) {
      this.#t++;
      this.#pos = 0;
    }
  }

  /** Target i's unit CRCs, when every byte of every target was fed; else undefined. */
  crcsOf(i: number): Uint32Array | undefined {
    return this.#ok && this.#t === this.#targets.length ? this.#out[i] : undefined;
  }
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error('wrote nothing'), { code: 'EIO' });
    done += bytesWritten;
  }
}

/** Write `parts` one after another from `position` (pwritev; whatever a short write left, piece by piece). */
async function writevAll(fh: FileHandle, parts: Buffer[], position: number): Promise<void> {
  const total = parts.reduce((a, p) => a + p.length, 0);
  const { bytesWritten } = await fh.writev(parts, position);
  if (bytesWritten >= total) return;
  let skip = bytesWritten;
  let pos = position + bytesWritten;
  for (const p of parts) {
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    await writeAll(fh, p.subarray(skip), pos);
    pos += p.length - skip;
    skip = 0;
  }
}

/** Views of bytes [from, to) of the concatenation of `bufs`. */
function slices(bufs: Buffer[], from: number, to: number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (const b of bufs) {
    const s = Math.max(from, pos);
    const e = Math.min(to, pos + b.length);
    if (s < e) out.push(b.subarray(s - pos, e - pos));
    pos += b.length;
    if (pos >= to) break;
  }
  return out;
}

function segmentId(key: string, index: number): string {
  return `${key}-${index}`;
}

function fanName(i: number): string {
  return i.toString(16).padStart(2, '0');
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
