/**
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
 * Memory: cached pages ≤ maxBytes (lru-cache evicts before inserting); beyond that only the
 * `concurrency` pages being downloaded and the caller's assembled result exist, a small constant
 * whatever the file size. Queued prefetches hold no buffers.
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
}

interface Pending {
  prefetch: boolean;
  /** p-queue id of the attempt waiting in the queue, for promotion. */
  taskId: string | undefined;
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

  readonly #cache: LRUCache<string, Buffer, FetchContext>;
  readonly #queue: PQueue;
  readonly #pending = new Map<string, Pending>();
  /** Pages brought in (or being brought in) by prefetch and not yet read: for prefetchHits. */
  readonly #prefetched = new Set<string>();
  readonly #inflight = new Set<Promise<unknown>>();
  #prefetchInFlight = 0;
  #closed = false;
  #taskSeq = 0;
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

    this.#queue = new PQueue({ concurrency });
    this.#cache = new LRUCache<string, Buffer, FetchContext>({
      maxSize: this.maxBytes,
      sizeCalculation: (v) => v.length,
      // A fetch whose placeholder gets evicted still delivers to its waiters (it is just not
      // cached); without this, lru-cache would resolve the waiting read with undefined.
      ignoreFetchAbort: true,
      fetchMethod: (k, _stale, { context }) => this.#fetchPage(k, context),
      dispose: (_v, k) => {
        this.#prefetched.delete(k);
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
    checkRange(key, offset, length);
    if (!Number.isSafeInteger(blobSize) || blobSize < 0) throw new SmhError('InvalidArgument', `bad blob size ${blobSize}`, key);
    if (this.#closed) throw new SmhError('BlobUnavailable', 'page cache is closed', key);
    if (key === EMPTY_BLOB_KEY || length === 0 || offset >= blobSize) return Buffer.alloc(0);
    const ps = this.pageSize;
    const end = Math.min(blobSize, offset + length);
    const first = Math.floor(offset / ps);
    const last = Math.floor((end - 1) / ps);
    const pages: Promise<Buffer>[] = [];
    for (let i = first; i <= last; i++) pages.push(this.#page(key, blobSize, i, false));
    // After the read's own pages are queued, so they are ahead of any prefetch they trigger.
    if (stream) this.#readahead(stream, key, blobSize, offset, end, last);
    const bufs = await Promise.all(pages);
    if (bufs.length === 1) return bufs[0]!.subarray(offset - first * ps, end - first * ps);
    const out = Buffer.allocUnsafe(end - offset);
    let pos = 0;
    for (let j = 0; j < bufs.length; j++) {
      const pageStart = (first + j) * ps;
      const from = Math.max(offset, pageStart) - pageStart;
      const to = Math.min(end, pageStart + ps) - pageStart;
      pos += bufs[j]!.copy(out, pos, from, to);
    }
    return out;
  }

  stats(): PageCacheStats {
    return { ...this.#s, cachedBytes: this.#cachedBytes() };
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

  #page(key: string, blobSize: number, index: number, prefetch: boolean): Promise<Buffer> {
    const k = pageKey(key, index);
    const status: LRUCache.Status<string, Buffer, FetchContext> = {};
    const p = this.#cache.fetch(k, { context: { key, blobSize, index, prefetch }, status });
    if (!prefetch) {
      // status.fetch is set synchronously by lru-cache, before its first await.
      if (status.fetch === 'hit') this.#s.hits++;
      else this.#s.misses++;
      if (status.fetch === 'inflight') this.#promote(k);
      if (this.#prefetched.delete(k)) this.#s.prefetchHits++;
    }
    return p.then((v) => {
      if (v === undefined) throw new SmhError('Internal', `page cache lost page ${index} of ${key}`, key);
      return v;
    });
  }

  /** A read now waits on a page a prefetch is fetching: move its queued attempt to read priority. */
  #promote(k: string): void {
    const pending = this.#pending.get(k);
    if (!pending || !pending.prefetch) return;
    pending.prefetch = false; // later retries queue at read priority too
    if (pending.taskId !== undefined) {
      try {
        this.#queue.setPriority(pending.taskId, READ_PRIORITY);
      } catch {
        // already running: nothing to promote
      }
    }
  }

  #readahead(s: ReadStream, key: string, blobSize: number, offset: number, end: number, lastPage: number): void {
    const ps = this.pageSize;
    if (s.key !== key) s.reset(key); // new content under this open file: start over
    if (offset === s.nextOffset) {
      s.sequentialReads++;
      if (s.window === 0) s.window = Math.min(ps, this.windowCap);
      else if (lastPage > s.lastPage) s.window = Math.min(s.window * 2, this.windowCap);
    } else {
      s.seeks++;
      s.window = 0;
      s.prefetchedThrough = lastPage;
    }
    s.nextOffset = end;
    s.lastPage = lastPage;
    if (s.window === 0) return;
    const lastBlobPage = Math.floor((blobSize - 1) / ps);
    const upTo = Math.min(lastBlobPage, lastPage + s.window / ps);
    for (let i = Math.max(lastPage + 1, s.prefetchedThrough + 1); i <= upTo; i++) {
      if (this.#prefetchInFlight >= this.prefetchPagesCap) break; // retried on a later read
      s.prefetchedThrough = i;
      const k = pageKey(key, i);
      if (this.#pending.has(k) || this.#cache.has(k)) continue;
      this.#prefetch(key, blobSize, i);
    }
  }

  #prefetch(key: string, blobSize: number, index: number): void {
    const k = pageKey(key, index);
    this.#s.prefetches++;
    this.#prefetchInFlight++;
    this.#prefetched.add(k);
    // Fire and forget: a failed prefetch only costs the read that later needs the page a fetch.
    this.#page(key, blobSize, index, true).then(
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
    const pending: Pending = { prefetch: ctx.prefetch, taskId: undefined };
    this.#pending.set(k, pending);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const id = `${k}#${++this.#taskSeq}`;
          pending.taskId = id;
          const buf = (await this.#queue.add(
            () => {
              pending.taskId = undefined;
              if (this.#closed) throw new SmhError('BlobUnavailable', 'page cache is closed', key);
              return this.store.getRange(key, offset, expected);
            },
            { priority: pending.prefetch ? PREFETCH_PRIORITY : READ_PRIORITY, id },
          )) as Buffer;
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
