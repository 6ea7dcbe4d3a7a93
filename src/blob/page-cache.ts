/**
 * (Over 600 lines because the cache, its readahead and its pooled buffers share one byte budget
 * and one LRU: split apart, each part would reach into the private state of the others.)
 *
 * The page cache: every read of blob bytes goes through here (B2). A blob is cut into fixed-size
 * pages (default 1 MiB) cached in an `lru-cache` under `${key}:${index}` with a byte budget
 * (`maxSize` + `sizeCalculation`). Its `fetchMethod` does the remote read, so concurrent misses
 * of one page share one request. Remote reads run through one `p-queue` (bounded concurrency);
 * reads the caller waits for outrank prefetches, and a prefetch that a read starts waiting for is
 * promoted.
 *
 * Correctness before speed (B4): each page fetch checks it got exactly the bytes the blob must
 * have there, retries failures and short bodies with exponential backoff, and finally throws
 * `SmhError('BlobUnavailable')`. A failed or short fetch is never cached (fetchMethod throws, so
 * lru-cache drops the entry) and never served.
 *
 * Readahead (B3) is per open file (`ReadStream`): reads that continue where the previous one
 * ended are sequential and grow the window by doubling, from one page up to `readaheadMax`,
 * each time the reader enters a new page; any other read is a seek and resets the window to
 * zero (random readers get no prefetch). Prefetch can never crowd out the pages being read now:
 * the window is capped at a fraction of the budget, the pages being prefetched at any one time
 * are capped at the same fraction globally, cached or in-flight pages are not fetched again, and
 * fetched pages enter the LRU as most recent, so eviction takes the oldest pages first.
 *
 * Remote requests (`maxRequestBytes`): against a store with `getRangeInto` (S3), contiguous
 * missing pages — those of one read, and readahead, which is then issued in batches of a quarter
 * window — are fetched in one ranged request that fills the page buffers directly. Object stores
 * charge per request (latency, and per-request CPU on the server), so 1 MiB GETs would cap a
 * sequential read far below the link. Against other stores each page is its own request.
 *
 * Memory: cached pages plus the buffers of running fetches ≤ maxBytes (a fetch that starts evicts
 * the least recently used pages to make room for its buffers; lru-cache evicts before inserting).
 * Page buffers are pooled: a page evicted from the cache is reused for the next fetch instead of
 * becoming garbage, so a long read does not churn 1 MiB allocations through malloc and the GC
 * (measured: that churn, not the cache, is what pushed the mount's RSS past its budget). Because
 * a pooled buffer is rewritten later, `read` never hands one out: it returns a copy (a view only
 * of a buffer the store gave us, which is never reused), and a page a read is copying from is
 * pinned so it is not recycled under it. Queued prefetches hold no buffers.
 */
import { LRUCache } from 'lru-cache';
import PQueue from 'p-queue';
import { SmhError, isSmhError } from '../errors.js';
import { checkRange, messageOf } from './common.js';
import { EMPTY_BLOB_KEY, type BlobStore } from './types.js';

export const MiB = 1024 * 1024;

export interface PageCacheOptions {
  store: BlobStore;
  /** Page size in bytes (default 1 MiB). */
  pageSize?: number;
  /** Byte budget of cached pages (default 256 MiB). */
  maxBytes?: number;
  /** Concurrent store requests (default 8). */
  concurrency?: number;
  /** Largest readahead window in bytes (default 16 MiB; 0 = no readahead). */
  readaheadMax?: number;
  /** Retries after the first failed attempt of a page fetch (default 4). */
  retries?: number;
  /** First backoff delay; doubles per retry, with jitter (default 50 ms). */
  backoffMs?: number;
  /** Cap on one backoff delay (default 2 s). */
  maxBackoffMs?: number;
  /** Share of maxBytes that prefetch may occupy, window and in-flight alike (default 1/4). */
  prefetchFraction?: number;
  /**
   * Largest single store request: contiguous missing pages are fetched together up to this many
   * bytes. Default: the store's `readRequestBytes` (S3: 8 MiB), else one page. Never more
   * than the prefetch share of the budget.
   */
  maxRequestBytes?: number;
}

/**
 * Optional store capability: one ranged read filling several buffers in order (scatter read),
 * so a coalesced request needs no intermediate buffer. Must throw (BlobUnavailable/BlobMissing)
 * unless every byte of every target arrived.
 */
export interface RangeIntoStore {
  getRangeInto(key: string, offset: number, targets: Buffer[]): Promise<void>;
  /**
   * How many bytes one request should ask for at most (contiguous missing pages are coalesced up
   * to this). Object stores want large requests (S3: 8 MiB); a local store leaves it out and is
   * asked one page at a time, which measured faster there.
   */
  readonly readRequestBytes?: number;
}

function canRangeInto(store: BlobStore): store is BlobStore & RangeIntoStore {
  return typeof (store as Partial<RangeIntoStore>).getRangeInto === 'function';
}

export interface PageCacheStats {
  /** Page lookups by reads that found the page cached. */
  hits: number;
  /** Page lookups by reads that had to wait for a fetch (new or already in flight). */
  misses: number;
  /** Bytes received from the store in successful page fetches. */
  bytesFetched: number;
  /** Prefetch page fetches started. */
  prefetches: number;
  /** Pages a read found already prefetched (cached or in flight). */
  prefetchHits: number;
  /** Failed attempts that were retried. */
  retries: number;
  /** Page fetches that failed for good (read or prefetch). */
  errors: number;
  /** Bytes of pages in the cache now. */
  cachedBytes: number;
}

interface FetchContext {
  key: string;
  blobSize: number;
  index: number;
  prefetch: boolean;
  /** The coalesced request this page's first attempt belongs to. */
  run?: Run;
}

/** One store request for pages first..first+lengths.length-1 of a blob. */
interface Run {
  first: number;
  lengths: number[];
  /** p-queue id while queued (promotion), undefined once running. */
  taskId: string | undefined;
  promise: Promise<Buffer[]>;
}

interface Pending {
  prefetch: boolean;
  /** p-queue id of the attempt waiting in the queue, for promotion. */
  taskId: string | undefined;
  run: Run | undefined;
}

const READ_PRIORITY = 10;
const PREFETCH_PRIORITY = 0;

/**
 * Per-open-file readahead state; create with `PageCache.openStream()` and pass it to every
 * `read` of that open file. Fields are public so tests and `stats` can observe them.
 */
export class ReadStream {
  /** Current readahead window in bytes; 0 = no readahead (before the first read, after a seek). */
  window = 0;
  /** Offset a sequential read starts at (where the last read ended). */
  nextOffset = 0;
  /** Last page index the previous read touched. */
  lastPage = -1;
  /** Highest page index readahead has already requested (or found cached). */
  prefetchedThrough = -1;
  /** Blob the state is about; a different key (new content) starts over. */
  key: string | undefined;
  sequentialReads = 0;
  seeks = 0;

  reset(key?: string): void {
    this.window = 0;
    this.nextOffset = 0;
    this.lastPage = -1;
    this.prefetchedThrough = -1;
    this.key = key;
  }
}

/** Bytes of one read as pinned views of cached pages (`PageCache.readLease`). */
export class PageLease {
  /** Total bytes (min(length, blobSize − offset)). */
  readonly length: number;
  constructor(
    /** Views of the pages, in order; valid until `release()`. */
    readonly parts: Buffer[],
    /** Some part lives in a pooled buffer (rewritten after release + eviction): copy, never keep. */
    readonly pooled: boolean,
    readonly release: () => void,
  ) {
    this.length = parts.reduce((a, p) => a + p.length, 0);
  }

  /** Copy the bytes into `target` (at most target.length); returns the count. */
  copyTo(target: Buffer, targetOffset = 0): number {
    let pos = targetOffset;
    for (const p of this.parts) {
      if (pos >= target.length) break;
      pos += p.copy(target, pos, 0, Math.min(p.length, target.length - pos));
    }
    return pos - targetOffset;
  }
}

export class PageCache {
  readonly store: BlobStore;
  readonly pageSize: number;
  readonly maxBytes: number;
  readonly readaheadMax: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** The largest window a stream can reach: readaheadMax, but never more than the prefetch share. */
  readonly windowCap: number;
  /** Pages that may be prefetching at once, across all streams. */
  readonly prefetchPagesCap: number;
  /** Most pages one store request may cover (1 = no coalescing). */
  readonly maxRequestPages: number;

  readonly #cache: LRUCache<string, Buffer, FetchContext>;
  readonly #queue: PQueue;
  readonly #pending = new Map<string, Pending>();
  /** Pages brought in (or being brought in) by prefetch and not yet read: for prefetchHits. */
  readonly #prefetched = new Set<string>();
  readonly #inflight = new Set<Promise<unknown>>();
  #prefetchInFlight = 0;
  #closed = false;
  #taskSeq = 0;
  /** Page buffers this cache allocated (only these are ever reused). */
  readonly #owned = new WeakSet<Buffer>();
  /** Free page-size buffers, reused by the next fetches. */
  readonly #pool: Buffer[] = [];
  readonly #poolMax: number;
  /** Evicted owned buffers, recycled at the next turn of the event loop unless pinned. */
  #retired: Buffer[] = [];
  #drainScheduled = false;
  /** Fetches waiting for retired buffers to reach the pool. */
  #drainWaiters: Array<() => void> = [];
  /** Owned buffers a read is copying from, with counts; and those evicted meanwhile. */
  readonly #pins = new Map<Buffer, number>();
  readonly #evictedWhilePinned = new Set<Buffer>();
  /** Bytes of buffers held by running fetches (counted against the budget). */
  #inflightBytes = 0;
  #s = { hits: 0, misses: 0, bytesFetched: 0, prefetches: 0, prefetchHits: 0, retries: 0, errors: 0 };

  constructor(options: PageCacheOptions) {
    this.store = options.store;
    this.pageSize = options.pageSize ?? MiB;
    this.maxBytes = options.maxBytes ?? 256 * MiB;
    this.readaheadMax = options.readaheadMax ?? 16 * MiB;
    this.retries = options.retries ?? 4;
    this.backoffMs = options.backoffMs ?? 50;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    const concurrency = options.concurrency ?? 8;
    const fraction = options.prefetchFraction ?? 0.25;
    for (const [name, v] of Object.entries({ pageSize: this.pageSize, maxBytes: this.maxBytes, concurrency })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new SmhError('InvalidArgument', `page cache: ${name} must be a positive integer, got ${v}`);
    }
    if (this.maxBytes < this.pageSize) {
      throw new SmhError('InvalidArgument', `page cache: maxBytes (${this.maxBytes}) is smaller than one page (${this.pageSize})`);
    }
    const prefetchBudget = Math.floor(this.maxBytes * fraction);
    const capPages = Math.floor(Math.min(this.readaheadMax, prefetchBudget) / this.pageSize);
    this.windowCap = this.readaheadMax <= 0 ? 0 : Math.max(1, capPages) * this.pageSize; // 0 turns readahead off
    this.prefetchPagesCap = Math.max(1, Math.floor(prefetchBudget / this.pageSize));
    const requestBytes = options.maxRequestBytes ?? (canRangeInto(this.store) ? (this.store.readRequestBytes ?? this.pageSize) : this.pageSize);
    this.maxRequestPages = Math.max(1, Math.min(Math.floor(requestBytes / this.pageSize), this.prefetchPagesCap));
    this.#poolMax = Math.max(1, Math.min(64, Math.floor(this.maxBytes / this.pageSize / 4)));

    this.#queue = new PQueue({ concurrency });
    this.#cache = new LRUCache<string, Buffer, FetchContext>({
      maxSize: this.maxBytes,
      sizeCalculation: (v) => v.length,
      // A fetch whose placeholder gets evicted still delivers to its waiters (it is just not
      // cached); without this, lru-cache would resolve the waiting read with undefined.
      ignoreFetchAbort: true,
      fetchMethod: (k, _stale, { context }) => this.#fetchPage(k, context),
      dispose: (v, k) => {
        this.#prefetched.delete(k);
        if (this.#owned.has(v)) this.#retire(v);
      },
    });
  }

  /** Readahead state for one open file. */
  openStream(): ReadStream {
    return new ReadStream();
  }

  /**
   * Read `length` bytes at `offset` of blob `key` whose size is `blobSize` (from metadata).
   * Returns min(length, blobSize - offset) bytes (empty at or past EOF, per POSIX read(2)), or
   * throws SmhError BlobUnavailable / BlobMissing — never short or wrong bytes as success.
   * A read within one page returns a view of the cached page (no copy): treat it as read-only.
   * The result is one buffer, so callers serving big ranges (HTTP) read in bounded chunks.
   */
  async read(key: string, blobSize: number, offset: number, length: number, stream?: ReadStream): Promise<Buffer> {
    const lease = await this.readLease(key, blobSize, offset, length, stream);
    try {
      if (lease.parts.length === 0) return Buffer.alloc(0);
      if (lease.parts.length === 1) {
        // A pooled buffer will be rewritten after eviction: hand out a copy, never the page.
        return lease.pooled ? Buffer.from(lease.parts[0]!) : lease.parts[0]!;
      }
      const out = Buffer.allocUnsafe(lease.length);
      lease.copyTo(out);
      return out;
    } finally {
      lease.release();
    }
  }

  /**
   * `read` without the copy, for a caller that consumes the bytes right away (the mount copies
   * them into the kernel's buffer): `parts` are views of the cached pages, in order, pinned —
   * never recycled — until `release()`, which the caller must call (in a `finally`). Same
   * errors as `read`; the same readahead.
   */
  async readLease(key: string, blobSize: number, offset: number, length: number, stream?: ReadStream): Promise<PageLease> {
    checkRange(key, offset, length);
    if (!Number.isSafeInteger(blobSize) || blobSize < 0) throw new SmhError('InvalidArgument', `bad blob size ${blobSize}`, key);
    if (this.#closed) throw new SmhError('BlobUnavailable', 'page cache is closed', key);
    if (key === EMPTY_BLOB_KEY || length === 0 || offset >= blobSize) return new PageLease([], false, () => undefined);
    const ps = this.pageSize;
    const end = Math.min(blobSize, offset + length);
    const first = Math.floor(offset / ps);
    const last = Math.floor((end - 1) / ps);
    const pages: Promise<Buffer>[] = [];
    if (this.maxRequestPages > 1 && last > first) {
      // Contiguous missing pages of this read: one request each run.
      let runStart = -1;
      let runLen = 0;
      const flush = (): void => {
        if (runLen === 0) return;
        const run = runLen > 1 ? this.#startRun(key, blobSize, runStart, runLen, false) : undefined;
        for (let i = runStart; i < runStart + runLen; i++) pages.push(this.#page(key, blobSize, i, false, run));
        runLen = 0;
      };
      for (let i = first; i <= last; i++) {
        if (this.#isMissing(key, i)) {
          if (runLen === 0) runStart = i;
          if (++runLen === this.maxRequestPages) flush();
        } else {
          flush();
          pages.push(this.#page(key, blobSize, i, false));
        }
      }
      flush();
    } else {
      for (let i = first; i <= last; i++) pages.push(this.#page(key, blobSize, i, false));
    }
    // After the read's own pages are queued, so they are ahead of any prefetch they trigger.
    if (stream) this.#readahead(stream, key, blobSize, offset, end, last);
    const settled = await Promise.allSettled(pages);
    const bufs: Buffer[] = [];
    for (const r of settled) if (r.status === 'fulfilled') bufs.push(r.value);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const b of bufs) this.#unpin(b);
    };
    const bad = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) {
      release();
      throw bad.reason;
    }
    const parts = bufs.map((b, j) => {
      const pageStart = (first + j) * ps;
      return b.subarray(Math.max(offset, pageStart) - pageStart, Math.min(end, pageStart + ps) - pageStart);
    });
    return new PageLease(parts, bufs.some((b) => this.#owned.has(b)), release);
  }

  stats(): PageCacheStats {
    return { ...this.#s, cachedBytes: this.#cachedBytes() };
  }

  /**
   * `readLease` answered synchronously when every page of the range is cached (counted as hits,
   * readahead as usual); undefined — with nothing counted or started — when any page is not,
   * and the caller goes the async way. For a caller that copies the bytes before it yields (the
   * mount answering a cached read without a promise round trip); `release()` is a no-op.
   */
  readCachedSync(key: string, blobSize: number, offset: number, length: number, stream?: ReadStream): PageLease | undefined {
    if (this.#closed || key === EMPTY_BLOB_KEY || length <= 0 || offset < 0 || offset >= blobSize) return undefined;
    const ps = this.pageSize;
    const end = Math.min(blobSize, offset + length);
    const first = Math.floor(offset / ps);
    const last = Math.floor((end - 1) / ps);
    for (let i = first; i <= last; i++) if (!this.#cache.has(pageKey(key, i))) return undefined;
    const parts: Buffer[] = [];
    for (let i = first; i <= last; i++) {
      const k = pageKey(key, i);
      const b = this.#cache.get(k)!; // has() said cached: get() refreshes its recency
      this.#s.hits++;
      if (this.#prefetched.delete(k)) this.#s.prefetchHits++;
      const pageStart = i * ps;
      parts.push(b.subarray(Math.max(offset, pageStart) - pageStart, Math.min(end, pageStart + ps) - pageStart));
    }
    if (stream) this.#readahead(stream, key, blobSize, offset, end, last);
    return new PageLease(parts, true, () => undefined);
  }

  /** Whether a page is cached (fetched, not merely in flight). */
  hasPage(key: string, index: number): boolean {
    return this.#cache.has(pageKey(key, index));
  }

  /** Resolves once no page fetch (read, prefetch, or backoff between retries) is under way. */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#queue.onIdle();
  }

  /** Drop every cached page (blobs are immutable, so this is only ever needed to free memory). */
  clear(): void {
    this.#cache.clear();
    this.#prefetched.clear();
  }

  /** Stop: new reads fail, queued fetches fail fast, cached pages are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
    this.clear();
  }

  #cachedBytes(): number {
    // lru-cache counts an in-flight placeholder as 1 byte; report only real pages.
    return Math.max(0, this.#cache.calculatedSize - this.#pending.size);
  }

  #isMissing(key: string, index: number): boolean {
    const k = pageKey(key, index);
    return !this.#pending.has(k) && !this.#cache.has(k);
  }

  #page(key: string, blobSize: number, index: number, prefetch: boolean, run?: Run): Promise<Buffer> {
    const k = pageKey(key, index);
    const status: LRUCache.Status<string, Buffer, FetchContext> = {};
    const p = this.#cache.fetch(k, { context: { key, blobSize, index, prefetch, ...(run ? { run } : {}) }, status });
    if (!prefetch) {
      // status.fetch is set synchronously by lru-cache, before its first await.
      if (status.fetch === 'hit') this.#s.hits++;
      else this.#s.misses++;
      if (status.fetch === 'inflight') this.#promote(k);
      if (this.#prefetched.delete(k)) this.#s.prefetchHits++;
    }
    return p.then((v) => {
      if (v === undefined) throw new SmhError('Internal', `page cache lost page ${index} of ${key}`, key);
      // Pinned in the same microtask checkpoint it is delivered in: recycling waits for a later
      // turn of the event loop, so the read copies from it before it can be reused.
      if (!prefetch) this.#pin(v);
      return v;
    });
  }

  // ── buffer pool ──

  #take(length: number): Buffer {
    const b = (length === this.pageSize ? this.#pool.pop() : undefined) ?? Buffer.allocUnsafeSlow(length);
    this.#owned.add(b);
    return b;
  }

  #retire(b: Buffer): void {
    this.#retired.push(b);
    this.#scheduleDrain();
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => {
      this.#drainScheduled = false;
      const list = this.#retired;
      this.#retired = [];
      for (const r of list) {
        if (this.#pins.has(r)) this.#evictedWhilePinned.add(r);
        else this.#recycle(r);
      }
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    });
  }

  /** A page buffer for a fetch: from the pool, after the retired ones reach it, else new. */
  async #takePage(): Promise<Buffer> {
    while (this.#pool.length === 0 && this.#retired.length > 0) {
      await new Promise<void>((r) => this.#drainWaiters.push(r));
    }
    return this.#take(this.pageSize);
  }

  #recycle(b: Buffer): void {
    if (b.length === this.pageSize && this.#pool.length < this.#poolMax && !this.#closed) this.#pool.push(b);
  }

  #pin(b: Buffer): void {
    if (this.#owned.has(b)) this.#pins.set(b, (this.#pins.get(b) ?? 0) + 1);
  }

  #unpin(b: Buffer): void {
    const n = this.#pins.get(b);
    if (n === undefined) return;
    if (n > 1) {
      this.#pins.set(b, n - 1);
      return;
    }
    this.#pins.delete(b);
    if (this.#evictedWhilePinned.delete(b)) this.#recycle(b);
  }

  /**
   * A fetch is about to hold `bytes` of buffers: evict least recently used pages until cached
   * pages plus running fetches fit the budget (pages in flight are not in the LRU yet).
   */
  #reserve(bytes: number): void {
    this.#inflightBytes += bytes;
    while (this.#cachedBytes() + this.#inflightBytes > this.maxBytes) {
      const lru = this.#cache.rkeys().next();
      if (lru.done) break;
      this.#cache.delete(lru.value);
    }
  }

  /** Fetch pages first.. (lengths) in one store request, into page buffers. */
  async #getPages(key: string, first: number, lengths: number[]): Promise<Buffer[]> {
    const offset = first * this.pageSize;
    const total = lengths.reduce((a, b) => a + b, 0);
    this.#reserve(total);
    try {
      if (lengths.length === 1 && !canRangeInto(this.store)) {
        // A plain store returns a fresh buffer of its own: keep it as the page (no copy).
        return [await this.store.getRange(key, offset, total)];
      }
      const targets: Buffer[] = [];
      try {
        for (const n of lengths) targets.push(n === this.pageSize ? await this.#takePage() : this.#take(n));
        if (canRangeInto(this.store)) {
          await this.store.getRangeInto(key, offset, targets);
        } else {
          const buf = await this.store.getRange(key, offset, total);
          if (!Buffer.isBuffer(buf) || buf.length !== total) {
            throw new SmhError('BlobUnavailable', `short read of ${key} pages ${first}+${lengths.length}: ${Buffer.isBuffer(buf) ? buf.length : typeof buf} of ${total} bytes`, key);
          }
          let pos = 0;
          for (const t of targets) pos += buf.copy(t, 0, pos, pos + t.length);
        }
      } catch (e) {
        for (const t of targets) this.#recycle(t); // never handed out
        throw e;
      }
      return targets;
    } finally {
      this.#inflightBytes -= total;
    }
  }

  /** Queue one request for pages first..first+count-1 (all missing); their fetches share it. */
  #startRun(key: string, blobSize: number, first: number, count: number, prefetch: boolean): Run {
    const lengths: number[] = [];
    for (let i = first; i < first + count; i++) lengths.push(Math.min(this.pageSize, blobSize - i * this.pageSize));
    const id = `${pageKey(key, first)}+${count}#${++this.#taskSeq}`;
    const run: Run = { first, lengths, taskId: id, promise: Promise.resolve([]) };
    run.promise = this.#queue.add(
      () => {
        run.taskId = undefined;
        if (this.#closed) throw new SmhError('BlobUnavailable', 'page cache is closed', key);
        return this.#getPages(key, first, lengths);
      },
      { priority: prefetch ? PREFETCH_PRIORITY : READ_PRIORITY, id },
    ) as Promise<Buffer[]>;
    run.promise.catch(() => undefined); // each page's fetch reports (and retries) on its own
    return run;
  }

  /** A read now waits on a page a prefetch is fetching: move its queued attempt to read priority. */
  #promote(k: string): void {
    const pending = this.#pending.get(k);
    if (!pending || !pending.prefetch) return;
    pending.prefetch = false; // later retries queue at read priority too
    for (const id of [pending.taskId, pending.run?.taskId]) {
      if (id === undefined) continue;
      try {
        this.#queue.setPriority(id, READ_PRIORITY);
      } catch {
        // already running: nothing to promote
      }
    }
  }

  #readahead(s: ReadStream, key: string, blobSize: number, offset: number, end: number, lastPage: number): void {
    const ps = this.pageSize;
    if (s.key !== key) s.reset(key); // new content under this open file: start over
    // Near-sequential counts as sequential: the kernel has several reads of one file in flight
    // (async readahead) and they can arrive slightly out of order. Within `slack` of where the
    // previous read ended is part of the same stream; anything further is a seek.
    const slack = Math.max(s.window, ps);
    const near = s.sequentialReads + s.seeks > 0 && Math.abs(offset - s.nextOffset) <= slack;
    if (offset === s.nextOffset || near) {
      s.sequentialReads++;
      if (s.window === 0) s.window = Math.min(ps, this.windowCap);
      else if (lastPage > s.lastPage) s.window = Math.min(s.window * 2, this.windowCap);
      s.nextOffset = Math.max(s.nextOffset, end);
      s.lastPage = Math.max(s.lastPage, lastPage);
    } else {
      s.seeks++;
      s.window = 0;
      s.prefetchedThrough = lastPage;
      s.nextOffset = end;
      s.lastPage = lastPage;
    }
    if (s.window === 0) return;
    const lastBlobPage = Math.floor((blobSize - 1) / ps);
    const upTo = Math.min(lastBlobPage, s.lastPage + s.window / ps);
    const from = Math.max(s.lastPage + 1, s.prefetchedThrough + 1);
    if (from > upTo) return;
    // Coalescing stores: ask in batches of a quarter window (so requests are big and several
    // are in flight), unless the reader has caught up with what was asked for.
    let runPages = 1;
    if (this.maxRequestPages > 1) {
      runPages = Math.max(1, Math.min(this.maxRequestPages, Math.floor(s.window / ps / 4)));
      const caughtUp = s.prefetchedThrough <= s.lastPage;
      if (!caughtUp && upTo - from + 1 < runPages && upTo < lastBlobPage) return;
    }
    let runStart = -1;
    let runLen = 0;
    const flush = (): void => {
      if (runLen > 0) this.#prefetch(key, blobSize, runStart, runLen);
      runLen = 0;
    };
    for (let i = from; i <= upTo; i++) {
      if (this.#prefetchInFlight + runLen >= this.prefetchPagesCap) break; // retried on a later read
      s.prefetchedThrough = i;
      if (!this.#isMissing(key, i)) {
        flush();
        continue;
      }
      if (runLen === 0) runStart = i;
      if (++runLen === runPages) flush();
    }
    flush();
  }

  /** Prefetch pages first..first+count-1 (all missing), in one request when count > 1. */
  #prefetch(key: string, blobSize: number, first: number, count: number): void {
    const run = count > 1 ? this.#startRun(key, blobSize, first, count, true) : undefined;
    for (let index = first; index < first + count; index++) {
      const k = pageKey(key, index);
      this.#s.prefetches++;
      this.#prefetchInFlight++;
      this.#prefetched.add(k);
      // Fire and forget: a failed prefetch only costs the read that later needs the page a fetch.
      this.#page(key, blobSize, index, true, run).then(
        () => {
          this.#prefetchInFlight--;
          if (!this.#cache.has(k)) this.#prefetched.delete(k); // evicted before it landed
        },
        () => {
          this.#prefetchInFlight--;
          this.#prefetched.delete(k);
        },
      );
    }
  }

  #fetchPage(k: string, ctx: FetchContext | undefined): Promise<Buffer> {
    if (!ctx) throw new SmhError('Internal', `page cache fetch without context for ${k}`);
    const p = this.#fetchWithRetries(k, ctx);
    this.#inflight.add(p);
    const done = (): void => {
      this.#inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  async #fetchWithRetries(k: string, ctx: FetchContext): Promise<Buffer> {
    const { key, blobSize, index } = ctx;
    const offset = index * this.pageSize;
    const expected = Math.min(this.pageSize, blobSize - offset);
    const pending: Pending = { prefetch: ctx.prefetch, taskId: undefined, run: ctx.run };
    this.#pending.set(k, pending);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          let buf: Buffer;
          const run = pending.run;
          if (run) {
            // First attempt: this page's share of a coalesced request; retries go alone.
            pending.run = undefined;
            buf = (await run.promise)[index - run.first]!;
          } else {
            const id = `${k}#${++this.#taskSeq}`;
            pending.taskId = id;
            buf = (await this.#queue.add(
              async () => {
                pending.taskId = undefined;
                if (this.#closed) throw new SmhError('BlobUnavailable', 'page cache is closed', key);
                return (await this.#getPages(key, index, [expected]))[0]!;
              },
              { priority: pending.prefetch ? PREFETCH_PRIORITY : READ_PRIORITY, id },
            )) as Buffer;
          }
          if (!Buffer.isBuffer(buf) || buf.length !== expected) {
            // The store broke its contract (a truncated body): never cache or serve this.
            throw new SmhError('BlobUnavailable', `short read of ${key} page ${index}: ${Buffer.isBuffer(buf) ? buf.length : typeof buf} of ${expected} bytes`, key);
          }
          this.#s.bytesFetched += buf.length;
          return buf;
        } catch (e) {
          pending.taskId = undefined;
          // A missing blob or a bad argument will not heal by waiting.
          const permanent = isSmhError(e, 'BlobMissing') || isSmhError(e, 'InvalidArgument') || this.#closed;
          if (permanent || attempt >= this.retries) {
            this.#s.errors++;
            if (isSmhError(e, 'BlobMissing') || isSmhError(e, 'InvalidArgument')) throw e;
            throw new SmhError(
              'BlobUnavailable',
              `cannot read ${key} page ${index} from ${this.store.description} after ${attempt + 1} attempt(s): ${messageOf(e)}`,
              key,
              { cause: e },
            );
          }
          this.#s.retries++;
          await sleep(this.#backoff(attempt));
        }
      }
    } finally {
      this.#pending.delete(k);
    }
  }

  #backoff(attempt: number): number {
    const base = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** attempt);
    return base * (0.5 + Math.random() / 2); // jitter: concurrent retries do not stampede together
  }
}

export function pageKey(key: string, index: number): string {
  return `${key}:${index}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
