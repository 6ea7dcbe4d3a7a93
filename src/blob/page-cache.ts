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
 * Memory: every buffer the cache holds — cached, being fetched, evicted but still lent, free in
 * its pool — fits `maxBytes` (rounded down to whole pages). A fetch that starts reserves its
 * bytes, takes what is free at once, and evicts to make room for the rest; its buffers count as
 * in flight until lru-cache holds them (else the next queued fetch would take their bytes for free
 * room). Buffers are pooled and only ever **slabs** of one page (issue 16): a page takes a whole
 * slab; a unit (random readers, below) is a `unitSize` slot of a carved slab; a slab whose units
 * are all free is a page buffer again. So memory is allocated once, up to the budget, and then
 * repurposed — never freed and reallocated (measured: the churn of 1 MiB pages through malloc and
 * the GC, and later units dropped for pages, is what pushed the mount's RSS past its budget).
 * A page fetch needing room frees a whole slab: the least recently used extent if it is a page;
 * else, among the slabs of the oldest units and those with free slots, the one with the fewest
 * cached units — none lent, being fetched into, or evicted as another fetch's room — has all its
 * units evicted (its free slots are that fetch's from then on). Units evicted as nobody's room
 * (a page landed over them) are used memory for a page fetch: their slots serve units only.
 * Evicted buffers come back at the next turn of the event loop (the drain), which hands them to
 * the fetches waiting for them. Because a pooled buffer is rewritten later, `read` never hands
 * one out: it returns a copy (a view only of a buffer the store gave us, which is never reused),
 * and an extent a read is copying from is pinned so it is not recycled under it; a pinned unit
 * is never moved or rewritten, and its slab stays carved until it is released. Queued prefetches
 * hold no buffers. Buffers evicted while pinned (a read copying, a disk-cache write) still count
 * against the budget until released. A blob's short last page or unit is a buffer of its own size.
 * Drop-behind: a sequential stream over a blob larger than the budget (which it would evict
 * itself anyway) gives the pages it has read back to the pool as it goes, so it recycles a
 * window's worth of buffers instead of filling the budget with new ones (#dropBehind).
 *
 * Random access (per stream, like readahead): two seeks in a row make a stream random; a random
 * stream's misses fetch only the small units (`unitSize`, 64 KiB) the read touches instead of
 * whole pages, cached as their own LRU entries; enough contiguous bytes read (four units) make it
 * sequential again, with whole pages and a window from one page. A page in memory, in flight or
 * on disk always serves its units, and a page that lands drops its units from memory. A page
 * fetched from the store over units in memory (or in flight: it waits for them) copies them and
 * asks only for the gaps, so no byte is fetched twice when a stream turns sequential (issue 16).
 * What counts as a seek tolerates the kernel's out-of-order readahead reads (NEAR_PAGES): counted
 * as seeks, two of them made a sequential reader random for a moment, and bytes went twice.
 *
 * On-disk cache (`disk`, src/blob/disk-cache.ts): an extent missing from memory is read from the
 * disk cache when it is there (verified, else the store); what comes from the store is written
 * there in the background. Coalesced store requests only ever cover extents the disk lacks.
 * While its write backlog is over half its budget, readahead waits (`writeBacklogHigh`): the
 * pages it would fetch could not be written, and on one CPU the writer needs the time.
 */
import { LRUCache } from 'lru-cache';
import PQueue from 'p-queue';
import { SmhError, isSmhError } from '../errors.js';
import { checkRange, messageOf } from './common.js';
import type { DiskCache, DiskCacheStats } from './disk-cache.js';
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
  /**
   * What a random reader's miss fetches (default 64 KiB). Must divide the page size; a unit as
   * large as a page turns random-access detection off.
   */
  unitSize?: number;
  /** The on-disk cache below memory, already opened; `close()` closes it. */
  disk?: DiskCache;
  /**
   * Drop-behind (default on): a sequential stream over a blob larger than the budget gives the
   * pages it has read back to the pool once it is `KEEP_BEHIND_PAGES` past them (see #dropBehind).
   */
  dropBehind?: boolean;
  /**
   * Makes a new page buffer (`pageSize` bytes; default Buffer.allocUnsafeSlow). A mount passes the
   * libfuse 3 addon's `allocPage`: buffers carved from 2 MiB huge-page slabs (one page fault per
   * 2 MiB instead of 512 — faults were 10% of a cold S3 read's CPU), 4096-aligned so that the
   * disk cache can write them with O_DIRECT. These are the slabs: units are carved from them too.
   */
  allocatePage?: (length: number) => Buffer;
}

/**
 * Optional store capability: one ranged read filling several buffers in order (scatter read),
 * so a coalesced request needs no intermediate buffer. Must throw (BlobUnavailable/BlobMissing)
 * unless every byte of every target arrived.
 */
export interface RangeIntoStore {
  /** `onBytes` (optional; a store may ignore it): told of each run of bytes where it landed in the targets, in order. */
  getRangeInto(key: string, offset: number, targets: Buffer[], onBytes?: (landed: Buffer) => void): Promise<void>;
  /**
   * How many bytes one request should ask for at most (contiguous missing pages are coalesced up
   * to this). Object stores want large requests (S3: 8 MiB); a local store leaves it out and is
   * asked one page at a time, which measured faster there.
   */
  readonly readRequestBytes?: number;
  /**
   * Optional: the same read done synchronously when that is cheap (a local file whose
   * descriptor is open); false when it cannot be done now. Random readers' misses use it.
   */
  getRangeIntoSync?(key: string, offset: number, targets: Buffer[]): boolean;
}

function canRangeInto(store: BlobStore): store is BlobStore & RangeIntoStore {
  return typeof (store as Partial<RangeIntoStore>).getRangeInto === 'function';
}

export interface PageCacheStats {
  /** Lookups (of a page, or a unit for random readers) by reads that found it cached. */
  hits: number;
  /** Lookups by reads that had to wait for a fetch (new or already in flight). */
  misses: number;
  /** Bytes received from the store in successful fetches (not from the disk cache). */
  bytesFetched: number;
  /** Prefetch page fetches started. */
  prefetches: number;
  /** Pages a read found already prefetched (cached or in flight). */
  prefetchHits: number;
  /** Failed attempts that were retried. */
  retries: number;
  /** Fetches that failed for good (read or prefetch). */
  errors: number;
  /** Bytes of pages and units in memory now. */
  cachedBytes: number;
  /**
   * Bytes of every page and unit buffer the cache holds against its budget: cached, being
   * fetched, evicted but still lent to a reply, and free in the pools for the next fetches.
   */
  bufferBytes: number;
  /**
   * Of bufferBytes: evicted buffers still pinned (a reply copying them, a pending disk-cache
   * write), free pooled buffers, and buffers of running fetches.
   */
  heldBytes: number;
  /** Free slabs, and free unit slots of carved slabs (a carved slab counts whole: its used slots elsewhere, its free ones here). */
  pooledBytes: number;
  inflightBytes: number;
  /**
   * Bytes of page and unit buffers allocated new (not taken from a pool) since the cache was
   * made. A long sequential read through a full cache should allocate about its budget once:
   * more means buffers went to the GC and were replaced (page faults and malloc churn).
   */
  allocatedBytes: number;
  /** Units fetched (disk cache or store) for reads of random streams. */
  unitFetches: number;
  /**
   * Bytes page fetches copied from units already in memory (fetched for random reads) instead of
   * fetching them again: a page fetch asks the store only for its gaps (not in bytesFetched).
   */
  unitBytesReused: number;
  /** Streams that turned random (two seeks in a row) / sequential again. */
  toRandom: number;
  toSequential: number;
  /** Pages a sequential stream had read and gave back to the pool (drop-behind). */
  droppedBehind: number;
  /** The on-disk cache, when there is one. */
  disk?: DiskCacheStats;
}

/** A cached extent of a blob: a page, or a unit of one (random readers). */
interface Extent {
  /** LRU key: `${key}:${page}` for a page, `${key}:${page}.${unit}` for a unit. */
  k: string;
  offset: number;
  length: number;
  unit: boolean;
  /** The page holding it (itself, for a page): disk-cache lookups read units from page files. */
  pageOffset: number;
  pageLength: number;
}

interface FetchContext extends Extent {
  key: string;
  prefetch: boolean;
  /** The coalesced request this extent's first attempt belongs to. */
  run?: Run;
}

/** One store request for consecutive extents starting at `offset`. */
interface Run {
  offset: number;
  lengths: number[];
  /** p-queue id while queued (promotion), undefined once running. */
  taskId: string | undefined;
  /** Queued at prefetch priority; a read joining one of its extents clears it (#promote). */
  prefetch: boolean;
  promise: Promise<Buffer[]>;
}

interface Pending {
  prefetch: boolean;
  /** p-queue id of the attempt waiting in the queue, for promotion. */
  taskId: string | undefined;
  /**
   * The coalesced request of the first attempt, kept for the fetch's whole life so a read that
   * joins the extent can still promote it while it is queued (#promote; its taskId says whether).
   */
  run: Run | undefined;
  /** The fetch itself (a page fetch waits for the units of its page that are in flight: #unitsInFlight). */
  done?: Promise<Buffer>;
}

/** Units of a run's pages a page fetch copies instead of fetching again (#pinUnits), pinned meanwhile. */
interface Reuse {
  /** Per page of the run, per unit slot: the cached unit, or undefined (a gap to fetch). */
  slots: (Buffer | undefined)[][];
  pinned: Buffer[];
}

/**
 * Buffer memory is only ever `pageSize` slabs (issue 16): a page takes a whole slab, a unit a
 * `unitSize` slot of a carved one. Slabs are repurposed, never freed and reallocated in between.
 */
interface Slab {
  /** The whole slab: a page's buffer, or the memory its unit views share. */
  buf: Buffer;
  /** The unit views (made when first carved, reused after). */
  units: Buffer[] | undefined;
  /** Free slots while carved. */
  free: number[];
  /** A page fetch is emptying it: units are not taken from it. */
  reclaim: boolean;
  /** Free slots it had when a page fetch chose it: that fetch's (its in-flight bytes count them), so not pooled meanwhile. */
  claimed: number;
}

/** Owned buffers' states. */
const FREE = 0;
const BUSY = 1;
const CACHED = 2;
const RETIRED = 3;
const CARVED = 4;
/** How many of the oldest cached extents a page fetch looks through for a slab to empty. */
const RECLAIM_SCAN = 64;

const READ_PRIORITY = 10;
const PREFETCH_PRIORITY = 0;
/** Seeks in a row that make a stream random. */
const SEEKS_TO_RANDOM = 2;
/**
 * Near-sequential tolerance of a sequential stream, in pages (at least; the window when larger):
 * a read that starts this far past where the stream expected it, a new stream's first read this
 * near offset 0, or a read this far back but not before the page its run began in, continues the
 * stream. The kernel's readahead reads (128 KiB, several in flight) reach us slightly out of order;
 * counted as seeks, two made the stream random and its units were then fetched again as pages.
 */
const NEAR_PAGES = 2;
/** A random stream continues "sequentially" if a read starts within this of the previous end. */
const RANDOM_SLACK = 256 * 1024;
/**
 * Drop-behind keeps this many pages before the furthest page a sequential stream has touched: the
 * kernel's reads of one file (async readahead, 1 MiB each, a few in flight) reach us slightly out
 * of order, and a late one should still find its page.
 */
const KEEP_BEHIND_PAGES = 8;
/**
 * Drop-behind spares pages ahead of another reader of the blob only while that reader moves: it
 * entered a new page within this many ms, and has entered at least DROP_LIVE_PAGES pages. A
 * stream that read a header and stopped (`file`, a player probing, a warm-up read) spares nothing.
 */
const DROP_LIVE_MS = 2_000;
const DROP_LIVE_PAGES = 2;
/** A stream that has not read a big blob for this long is let go (it protects nothing by then). */
const DROP_STALE_MS = 10_000;

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
  /** Random access: misses fetch small units, no readahead. */
  random = false;
  /** Seeks in a row; bytes read contiguously since the last seek. */
  seekRun = 0;
  runBytes = 0;
  /** Where the current run (since the last seek) began: a near read back to before its page is a seek. */
  runStart = 0;
  /** Drop-behind: pages up to this index were given back (or skipped); `seeks` when last looked. */
  droppedThrough = -1;
  dropSeeks = 0;
  /** Drop-behind: the blob this stream is registered under, when it last read and last entered a new page (ms), and how many pages it entered. */
  dropKey: string | undefined;
  dropAt = 0;
  dropMovedAt = 0;
  dropMoves = 0;
  dropSeenPage = -1;

  reset(key?: string): void {
    this.window = 0;
    this.nextOffset = 0;
    this.lastPage = -1;
    this.prefetchedThrough = -1;
    this.key = key;
    this.random = false;
    this.seekRun = 0;
    this.runBytes = 0;
    this.runStart = 0;
    this.droppedThrough = -1;
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
  readonly unitSize: number;
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
  readonly disk: DiskCache | undefined;
  readonly dropBehind: boolean;

  readonly #cache: LRUCache<string, Buffer, FetchContext>;
  readonly #queue: PQueue;
  readonly #pending = new Map<string, Pending>();
  /** Pages brought in (or being brought in) by prefetch and not yet read: for prefetchHits. */
  readonly #prefetched = new Set<string>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #randomEnabled: boolean;
  /** Contiguous bytes that make a random stream sequential again. */
  readonly #resumeBytes: number;
  /** Largest store request for units (random reads spanning several). */
  readonly #unitRunBytes: number;
  #prefetchInFlight = 0;
  #closed = false;
  #taskSeq = 0;
  /** Buffers this cache allocated (only these are ever reused). */
  readonly #owned = new WeakSet<Buffer>();
  /**
   * Unit CRCs of a buffer's bytes, computed as they landed from the store (DiskCache.landingCrcs),
   * for its disk-cache write. Set when the fetch succeeds; any later taking of the buffer clears it.
   */
  readonly #landedCrcs = new WeakMap<Buffer, Uint32Array>();
  /** Bytes of a fetched page that were copied from its cached units, not fetched (#getExtents → bytesFetched). */
  readonly #fromUnits = new WeakMap<Buffer, number>();
  /** Free slabs (as page buffers), reused by the next fetches of pages and carved for units. */
  readonly #pool: Buffer[] = [];
  /** Carved slabs with a free slot. */
  readonly #partial = new Set<Slab>();
  /** Slabs a page fetch is emptying (units evicted, waiting for the drain): no unit is taken from them meanwhile. */
  readonly #reclaiming = new Set<Slab>();
  /** The slab of every slab and unit buffer; a unit's slot in it. */
  readonly #slabOf = new WeakMap<Buffer, Slab>();
  readonly #slotOf = new WeakMap<Buffer, number>();
  /** Where each owned buffer is in its life (FREE, BUSY, CACHED, RETIRED; a carved slab's own buffer: CARVED). */
  readonly #state = new WeakMap<Buffer, number>();
  /** The LRU key of each cached owned buffer (a slab's units are evicted by key). */
  readonly #keyOf = new Map<Buffer, string>();
  /** Owned buffers fetches delivered, with their take: the drain checks they reached the cache (else they are nobody's). */
  #delivered: Array<{ b: Buffer; take: number }> = [];
  /** Each owned buffer's latest #take (a delivered buffer recycled and taken again is another use). */
  readonly #takeOf = new WeakMap<Buffer, number>();
  #takes = 0;
  /** Fetched buffers not yet in the cache, still counted in flight (#landing). */
  readonly #landingBufs = new Set<Buffer>();
  /** Retired units no fetch counted as its room (#retire), and their bytes; units retired as a unit fetch's room. */
  readonly #loose = new Set<Buffer>();
  #looseBytes = 0;
  readonly #owed = new Set<Buffer>();
  /** Bytes of the free buffers: free slabs and free slots of carved slabs (counted against the budget like any page memory). */
  #pooledBytes = 0;
  /** The budget in whole slabs (maxBytes rounded down to pages): memory is only ever whole slabs. */
  readonly #budget: number;
  /** Evicted owned buffers, recycled at the next turn of the event loop unless pinned. */
  #retired: Buffer[] = [];
  #drainScheduled = false;
  /**
   * Fetches waiting for retired buffers of their size (`length`) to reach its pool, with how many
   * they still have to take (`count`): the drain keeps that many for them.
   */
  #drainWaiters: Array<{ length: number; count: number; wake: (bufs: Buffer[]) => void }> = [];
  /** Owned buffers a read (or a disk-cache write) is using, with counts; and those evicted meanwhile. */
  readonly #pins = new Map<Buffer, number>();
  readonly #evictedWhilePinned = new Set<Buffer>();
  /** Bytes of those evicted-while-pinned buffers: still memory, so still counted against the budget. */
  #heldBytes = 0;
  /** Bytes of buffers allocated new (stats().allocatedBytes). */
  #allocatedBytes = 0;
  /** Bytes of buffers held by running fetches (counted against the budget). */
  #inflightBytes = 0;
  /** Drop-behind: streams reading a blob larger than the budget, by blob (they protect pages ahead of them). */
  readonly #bigStreams = new Map<string, Set<ReadStream>>();
  #dropCalls = 0;
  readonly #allocatePage: ((length: number) => Buffer) | undefined;
  #s = { hits: 0, misses: 0, bytesFetched: 0, prefetches: 0, prefetchHits: 0, retries: 0, errors: 0, unitFetches: 0, unitBytesReused: 0, toRandom: 0, toSequential: 0, droppedBehind: 0 };

  constructor(options: PageCacheOptions) {
    this.store = options.store;
    this.pageSize = options.pageSize ?? MiB;
    this.maxBytes = options.maxBytes ?? 256 * MiB;
    this.readaheadMax = options.readaheadMax ?? 16 * MiB;
    this.retries = options.retries ?? 4;
    this.backoffMs = options.backoffMs ?? 50;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.disk = options.disk;
    this.dropBehind = options.dropBehind ?? true;
    this.#allocatePage = options.allocatePage;
    const concurrency = options.concurrency ?? 8;
    const fraction = options.prefetchFraction ?? 0.25;
    const unit = options.unitSize ?? 64 * 1024;
    for (const [name, v] of Object.entries({ pageSize: this.pageSize, maxBytes: this.maxBytes, concurrency, unitSize: unit })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new SmhError('InvalidArgument', `page cache: ${name} must be a positive integer, got ${v}`);
    }
    if (this.maxBytes < this.pageSize) {
      throw new SmhError('InvalidArgument', `page cache: maxBytes (${this.maxBytes}) is smaller than one page (${this.pageSize})`);
    }
    this.#budget = Math.floor(this.maxBytes / this.pageSize) * this.pageSize;
    this.#randomEnabled = unit < this.pageSize && this.pageSize % unit === 0;
    this.unitSize = this.#randomEnabled ? unit : this.pageSize;
    this.#resumeBytes = 4 * this.unitSize;
    const prefetchBudget = Math.floor(this.maxBytes * fraction);
    const capPages = Math.floor(Math.min(this.readaheadMax, prefetchBudget) / this.pageSize);
    this.windowCap = this.readaheadMax <= 0 ? 0 : Math.max(1, capPages) * this.pageSize; // 0 turns readahead off
    this.prefetchPagesCap = Math.max(1, Math.floor(prefetchBudget / this.pageSize));
    const requestBytes = options.maxRequestBytes ?? (canRangeInto(this.store) ? (this.store.readRequestBytes ?? this.pageSize) : this.pageSize);
    this.maxRequestPages = Math.max(1, Math.min(Math.floor(requestBytes / this.pageSize), this.prefetchPagesCap));
    this.#unitRunBytes = Math.max(this.pageSize, this.maxRequestPages * this.pageSize);

    this.#queue = new PQueue({ concurrency });
    this.#cache = new LRUCache<string, Buffer, FetchContext>({
      maxSize: this.maxBytes,
      sizeCalculation: (v) => v.length,
      // A fetch whose placeholder gets evicted still delivers to its waiters (it is just not
      // cached); without this, lru-cache would resolve the waiting read with undefined.
      ignoreFetchAbort: true,
      fetchMethod: (k, _stale, { context }) => this.#fetchExtent(k, context),
      onInsert: (v, k) => {
        if (!this.#owned.has(v)) return;
        this.#settled(v);
        this.#keyOf.set(v, k);
        this.#state.set(v, CACHED);
      },
      dispose: (v, k) => {
        this.#prefetched.delete(k);
        if (!this.#owned.has(v)) return;
        if (this.#keyOf.get(v) === k) this.#keyOf.delete(v);
        this.#retire(v);
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
   * them into the kernel's buffer): `parts` are views of the cached extents, in order, pinned —
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
    const units = stream ? this.#track(stream, key, offset, end, last) : false;
    const exts: Extent[] = [];
    for (let i = first; i <= last; i++) {
      const page = this.#pageExtent(key, blobSize, i);
      // A random stream (or one not yet known to be sequential) asks for units, unless the whole
      // page is here or on its way anyway.
      if (!units || this.#cachedOrPending(page.k)) {
        exts.push(page);
        continue;
      }
      const from = Math.max(offset, page.offset);
      const to = Math.min(end, page.offset + page.length);
      for (let u = Math.floor(from / this.unitSize); u * this.unitSize < to; u++) exts.push(this.#unitExtent(key, blobSize, u));
    }
    if (units) this.#s.unitFetches += exts.filter((e) => e.unit && !this.#cachedOrPending(e.k)).length;
    const pages = this.#fetchAll(key, exts, false, units ? this.#unitRunBytes : this.maxRequestPages * ps);
    // After the read's own extents are queued, so they are ahead of any prefetch they trigger.
    if (stream) {
      this.#prefetchAhead(stream, key, blobSize);
      this.#dropBehind(stream, key, blobSize, first);
    }
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
      const e = exts[j]!;
      return b.subarray(Math.max(offset, e.offset) - e.offset, Math.min(end, e.offset + e.length) - e.offset);
    });
    return new PageLease(parts, bufs.some((b) => this.#owned.has(b)), release);
  }

  stats(): PageCacheStats {
    const cachedBytes = this.#cachedBytes();
    const bufferBytes = cachedBytes + this.#inflightBytes + this.#heldBytes + this.#pooledBytes;
    return { ...this.#s, cachedBytes, bufferBytes, heldBytes: this.#heldBytes, pooledBytes: this.#pooledBytes, inflightBytes: this.#inflightBytes, allocatedBytes: this.#allocatedBytes, ...(this.disk ? { disk: this.disk.stats() } : {}) };
  }

  /**
   * `readLease` answered synchronously when every byte of the range is in memory (counted as
   * hits, readahead as usual); undefined — with nothing counted or started — when any is not,
   * and the caller goes the async way. For a caller that copies the bytes before it yields (the
   * mount answering a cached read without a promise round trip); `release()` is a no-op.
   */
  readCachedSync(key: string, blobSize: number, offset: number, length: number, stream?: ReadStream, fetchSync = false): PageLease | undefined {
    if (this.#closed || key === EMPTY_BLOB_KEY || length <= 0 || offset < 0 || offset >= blobSize) return undefined;
    // A random stream on a store that reads synchronously (local files) fetches its missing
    // units here and now: no thread-pool round trip, no promise (random 4 KiB reads, 256 MiB
    // cache, 1 GiB file: see native-notes/blobs.md).
    const sync = fetchSync && stream?.random === true && stream.key === key && this.#randomEnabled && !this.disk && this.#syncStore();
    const fetched = new Map<string, Buffer>();
    const ps = this.pageSize;
    const end = Math.min(blobSize, offset + length);
    const first = Math.floor(offset / ps);
    const last = Math.floor((end - 1) / ps);
    const exts: Extent[] = [];
    for (let i = first; i <= last; i++) {
      const page = this.#pageExtent(key, blobSize, i);
      if (this.#cache.has(page.k)) {
        exts.push(page);
        continue;
      }
      if (!this.#randomEnabled) return undefined;
      const from = Math.max(offset, page.offset);
      const to = Math.min(end, page.offset + page.length);
      for (let u = Math.floor(from / this.unitSize); u * this.unitSize < to; u++) {
        const e = this.#unitExtent(key, blobSize, u);
        if (!this.#cache.has(e.k)) {
          const b = sync && !this.#pending.has(e.k) && !this.#pending.has(page.k) ? this.#fetchUnitSync(sync, key, e) : undefined;
          if (!b) return undefined; // (units fetched so far stay cached: the async path finds them)
          fetched.set(e.k, b);
        }
        exts.push(e);
      }
    }
    const parts: Buffer[] = [];
    for (const e of exts) {
      // has() said cached: get() refreshes its recency. Just fetched: counted as a miss there.
      const b = fetched.get(e.k) ?? this.#cache.get(e.k)!;
      if (!fetched.has(e.k)) this.#s.hits++;
      if (this.#prefetched.delete(e.k)) this.#s.prefetchHits++;
      parts.push(b.subarray(Math.max(offset, e.offset) - e.offset, Math.min(end, e.offset + e.length) - e.offset));
    }
    if (stream) {
      this.#track(stream, key, offset, end, last);
      this.#prefetchAhead(stream, key, blobSize);
      this.#dropBehind(stream, key, blobSize, first);
    }
    return new PageLease(parts, true, () => undefined);
  }

  #syncStore(): (BlobStore & Required<Pick<RangeIntoStore, 'getRangeIntoSync'>>) | undefined {
    const st = this.store as BlobStore & Partial<RangeIntoStore>;
    return typeof st.getRangeIntoSync === 'function' ? (st as BlobStore & Required<Pick<RangeIntoStore, 'getRangeIntoSync'>>) : undefined;
  }

  /** A unit fetched synchronously into the cache, or undefined (nothing changed) when the store cannot now. */
  #fetchUnitSync(store: Required<Pick<RangeIntoStore, 'getRangeIntoSync'>>, key: string, e: Extent): Buffer | undefined {
    // Only with a free buffer at hand, or room for a new one: evicted buffers reach the pool at
    // the next turn of the event loop, so a full cache would otherwise allocate a unit per miss
    // and leave the evicted ones to the GC (reads in a row in one turn: 700 MiB of garbage on a
    // 64 MiB cache). The async path waits for the pool instead.
    // (A new unit is a new slab when no slot is free: room for a whole one.)
    if (!this.#hasFree(e.length) && this.#totalBytes() + this.pageSize > this.#budget) return undefined;
    const buf = this.#reserve(e.length, [e.length])[0] ?? this.#take(e.length);
    let ok = false;
    try {
      ok = store.getRangeIntoSync(key, e.offset, [buf]);
    } catch {
      ok = false; // the async path retries, and reports what it cannot heal
    } finally {
      this.#inflightBytes -= e.length;
    }
    if (!ok) {
      this.#recycle(buf);
      return undefined;
    }
    this.#cache.set(e.k, buf);
    this.#s.misses++;
    this.#s.unitFetches++;
    this.#s.bytesFetched += e.length;
    return buf;
  }

  /** Whether a page is cached (fetched, not merely in flight). */
  hasPage(key: string, index: number): boolean {
    return this.#cache.has(pageKey(key, index));
  }

  /** Resolves once no fetch (read, prefetch, or backoff between retries) is under way. */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#queue.onIdle();
  }

  /** Drop every cached page (blobs are immutable, so this is only ever needed to free memory). */
  clear(): void {
    this.#cache.clear();
    this.#prefetched.clear();
  }

  /** Stop: new reads fail, queued fetches fail fast, cached pages are dropped, the disk cache finishes its writes. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
    this.clear();
    this.#pool.length = 0;
    this.#partial.clear();
    this.#pooledBytes = 0;
    this.#loose.clear();
    this.#looseBytes = 0;
    this.#owed.clear();
    await this.disk?.close();
  }

  #cachedBytes(): number {
    // lru-cache counts an in-flight placeholder as 1 byte; report only real pages.
    return Math.max(0, this.#cache.calculatedSize - this.#pending.size);
  }

  #cachedOrPending(k: string): boolean {
    return this.#pending.has(k) || this.#cache.has(k);
  }

  #onDisk(key: string, e: Extent): boolean {
    const d = this.disk;
    return d !== undefined && (d.has(key, e.pageOffset, e.pageLength) || (e.unit && d.has(key, e.offset, e.length)));
  }

  /** Not in memory, not on its way, not on disk: only the store has it. */
  #needsStore(key: string, e: Extent): boolean {
    return !this.#cachedOrPending(e.k) && !this.#onDisk(key, e);
  }

  #pageExtent(key: string, blobSize: number, index: number): Extent {
    const offset = index * this.pageSize;
    const length = Math.min(this.pageSize, blobSize - offset);
    return { k: pageKey(key, index), offset, length, unit: false, pageOffset: offset, pageLength: length };
  }

  /** Unit `u` of the blob (units never cross a page: the unit size divides the page size). */
  #unitExtent(key: string, blobSize: number, u: number): Extent {
    const offset = u * this.unitSize;
    const index = Math.floor(offset / this.pageSize);
    const pageOffset = index * this.pageSize;
    return {
      k: `${pageKey(key, index)}.${(offset - pageOffset) / this.unitSize}`,
      offset,
      length: Math.min(this.unitSize, blobSize - offset),
      unit: true,
      pageOffset,
      pageLength: Math.min(this.pageSize, blobSize - pageOffset),
    };
  }

  /**
   * Start (or join) the fetches of `exts`, in blob order, one promise each. Consecutive extents
   * that only the store has go out as one request of at most `maxRunBytes`.
   */
  #fetchAll(key: string, exts: Extent[], prefetch: boolean, maxRunBytes: number): Promise<Buffer>[] {
    const out: Promise<Buffer>[] = [];
    let run: Extent[] = [];
    let runBytes = 0;
    const flush = (): void => {
      if (run.length === 0) return;
      const r = run.length > 1 ? this.#startRun(key, run[0]!.offset, run.map((e) => e.length), prefetch, run[0]!.unit) : undefined;
      for (const e of run) out.push(this.#extent(key, e, prefetch, r));
      run = [];
      runBytes = 0;
    };
    for (const e of exts) {
      if (!this.#needsStore(key, e)) {
        flush();
        out.push(this.#extent(key, e, prefetch));
        continue;
      }
      const prev = run.at(-1);
      if (prev && (prev.offset + prev.length !== e.offset || runBytes + e.length > maxRunBytes)) flush();
      run.push(e);
      runBytes += e.length;
    }
    flush();
    return out;
  }

  #extent(key: string, e: Extent, prefetch: boolean, run?: Run): Promise<Buffer> {
    const status: LRUCache.Status<string, Buffer, FetchContext> = {};
    const p = this.#cache.fetch(e.k, { context: { ...e, key, prefetch, ...(run ? { run } : {}) }, status });
    if (!prefetch) {
      // status.fetch is set synchronously by lru-cache, before its first await.
      if (status.fetch === 'hit') this.#s.hits++;
      else this.#s.misses++;
      if (status.fetch === 'inflight') this.#promote(e.k);
      if (this.#prefetched.delete(e.k)) this.#s.prefetchHits++;
    }
    return p.then((v) => {
      if (v === undefined) throw new SmhError('Internal', `page cache lost ${e.k}`, key);
      // Pinned in the same microtask checkpoint it is delivered in: recycling waits for a later
      // turn of the event loop, so the read copies from it before it can be reused.
      if (!prefetch) this.#pin(v);
      return v;
    });
  }

  // ── buffer pool: 1 MiB slabs ──

  /** Which pool serves a buffer of this length: a whole slab, a slot of one, or none (a short tail: allocated to size). */
  #kind(length: number): 'page' | 'unit' | undefined {
    return length === this.pageSize ? 'page' : this.#randomEnabled && length === this.unitSize ? 'unit' : undefined;
  }

  /** Whether a buffer of this length can be had without new memory. */
  #hasFree(length: number): boolean {
    const kind = this.#kind(length);
    return kind === 'page' ? this.#pool.length > 0 : kind === 'unit' ? this.#freeUnits() > 0 || this.#pool.length > 0 : false;
  }

  /** Free slots of carved slabs that a unit may take (not those of a slab being emptied for a page). */
  #freeUnits(): number {
    let n = 0;
    for (const s of this.#partial) if (!s.reclaim) n += s.free.length;
    return n;
  }

  #newSlab(): Slab {
    const slab: Slab = { buf: this.#allocatePage ? this.#allocatePage(this.pageSize) : Buffer.allocUnsafeSlow(this.pageSize), units: undefined, free: [], reclaim: false, claimed: 0 };
    this.#owned.add(slab.buf);
    this.#slabOf.set(slab.buf, slab);
    this.#allocatedBytes += this.pageSize;
    return slab;
  }

  #take(length: number): Buffer {
    const kind = this.#kind(length);
    let b: Buffer;
    if (kind === 'page') {
      const pooled = this.#pool.pop();
      if (pooled) this.#pooledBytes -= this.pageSize;
      b = pooled ?? this.#newSlab().buf;
    } else if (kind === 'unit') {
      b = this.#takeUnit();
    } else {
      b = Buffer.allocUnsafeSlow(length);
      this.#owned.add(b);
      this.#allocatedBytes += length;
    }
    this.#landedCrcs.delete(b); // about to hold other bytes
    this.#fromUnits.delete(b);
    this.#state.set(b, BUSY);
    this.#takeOf.set(b, ++this.#takes);
    return b;
  }

  /**
   * A unit: a free slot of the fullest carved slab (packing units keeps the other slabs free for
   * pages), else a free slab carved into units, else a new slab carved.
   */
  #takeUnit(): Buffer {
    let best: Slab | undefined;
    for (const s of this.#partial) if (!s.reclaim && (best === undefined || s.free.length < best.free.length)) best = s;
    if (!best) {
      const pooled = this.#pool.pop();
      best = pooled ? this.#slabOf.get(pooled)! : this.#newSlab();
      if (!pooled) this.#pooledBytes += this.pageSize; // counted free until its slots are taken
      const n = this.pageSize / this.unitSize;
      if (!best.units) {
        best.units = [];
        for (let i = 0; i < n; i++) {
          const u = best.buf.subarray(i * this.unitSize, (i + 1) * this.unitSize);
          this.#owned.add(u);
          this.#slabOf.set(u, best);
          this.#slotOf.set(u, i);
          best.units.push(u);
        }
      }
      for (let i = n - 1; i >= 0; i--) best.free.push(i);
      this.#state.set(best.buf, CARVED);
      this.#partial.add(best);
    }
    const u = best.units![best.free.pop()!]!;
    if (best.free.length === 0) this.#partial.delete(best);
    this.#pooledBytes -= this.unitSize;
    return u;
  }

  #retire(b: Buffer): void {
    const st = this.#state.get(b);
    if (st !== BUSY && st !== CACHED) return; // already on its way back (an orphan retired twice)
    this.#settled(b);
    this.#state.set(b, RETIRED);
    // A buffer a read or a disk-cache write still uses is memory until it is released: count it
    // now, so that the eviction loop in #reserve does not take it for freed room.
    if (this.#pins.has(b)) this.#holdEvicted(b);
    else {
      this.#retired.push(b);
      // A unit evicted as no fetch's room (a page landed over it, a fallback eviction): its slot
      // comes free at the drain, but only a unit can use it — a page fetch counts it as used.
      const slab = this.#slabOf.get(b);
      if (slab && slab.buf !== b && !slab.reclaim && !this.#owed.has(b)) {
        this.#loose.add(b);
        this.#looseBytes += b.length;
      }
    }
    this.#scheduleDrain();
  }

  #unloose(b: Buffer): void {
    if (this.#loose.delete(b)) this.#looseBytes -= b.length;
  }

  #holdEvicted(b: Buffer): void {
    if (!this.#evictedWhilePinned.has(b)) this.#heldBytes += b.length;
    this.#evictedWhilePinned.add(b);
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => {
      this.#drainScheduled = false;
      // Fetched buffers that never made it into the cache (their entry was dropped while they were
      // in flight): lru-cache has settled every one by now (it inserts within the microtasks that
      // deliver them), so one still BUSY is nobody's and goes back like an evicted one.
      const delivered = this.#delivered;
      this.#delivered = [];
      for (const d of delivered) if (this.#state.get(d.b) === BUSY && this.#takeOf.get(d.b) === d.take) this.#retire(d.b);
      const list = this.#retired;
      this.#retired = [];
      for (const r of list) {
        this.#unloose(r);
        this.#owed.delete(r);
        if (this.#pins.has(r)) {
          this.#holdEvicted(r);
        } else {
          this.#recycle(r);
        }
      }
      // Slabs a page fetch was emptying and that did not come free (a unit lent meanwhile): their free slots serve units again.
      for (const s of this.#reclaiming) {
        this.#pooledBytes += s.claimed * this.unitSize;
        s.claimed = 0;
        s.reclaim = false;
      }
      this.#reclaiming.clear();
      this.#trimPools();
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) {
        const got: Buffer[] = [];
        while (got.length < w.count && this.#hasFree(w.length)) got.push(this.#take(w.length));
        w.wake(got);
      }
    });
  }

  /**
   * The buffers of a fetch (`lengths`), after those #reserve took at once (`pre`): from the pools,
   * else — when evicted buffers are on their way back — handed over by the drain (as many as the
   * fetch still needs of that size, so no other fetch takes them between), else new.
   */
  async #takeBuffers(lengths: number[], pre: Buffer[]): Promise<Buffer[]> {
    const out = pre;
    while (out.length < lengths.length) {
      const n = lengths[out.length]!;
      if (this.#kind(n) !== undefined && !this.#hasFree(n) && this.#retired.length > 0) {
        let count = 0;
        for (let i = out.length; i < lengths.length && lengths[i] === n; i++) count++;
        const got = await new Promise<Buffer[]>((wake) => this.#drainWaiters.push({ length: n, count, wake }));
        out.push(...got);
        continue;
      }
      out.push(this.#take(n));
    }
    return out;
  }

  /**
   * A free buffer back to its pool: a page's slab to the page pool, a unit to its slab — and a
   * slab whose units are all free to the page pool, whole again. Pools have no cap of their own:
   * they count against the budget, and `#reserve` lets excess free slabs go before it evicts.
   */
  #recycle(b: Buffer): void {
    const st = this.#state.get(b);
    if (st === FREE || st === undefined) return; // never twice (two users of one buffer)
    this.#settled(b);
    this.#state.set(b, FREE);
    const slab = this.#slabOf.get(b);
    if (!slab || this.#closed) return; // a short tail: to the GC
    if (b === slab.buf) {
      this.#pool.push(b);
      this.#pooledBytes += this.pageSize;
      return;
    }
    slab.free.push(this.#slotOf.get(b)!);
    this.#pooledBytes += this.unitSize;
    if (slab.free.length < this.pageSize / this.unitSize) {
      this.#partial.add(slab);
      return;
    }
    // Every unit free: the slab is a page buffer again (its pooled bytes are already counted, but for claimed slots).
    this.#pooledBytes += slab.claimed * this.unitSize;
    slab.claimed = 0;
    slab.free.length = 0;
    slab.reclaim = false;
    this.#partial.delete(slab);
    this.#state.set(slab.buf, FREE);
    this.#pool.push(slab.buf);
  }

  /**
   * Free slabs over the budget go to the GC (only lent buffers, counted as held, push the total
   * over), except as many as the waiting fetches still have to take, whose bytes `#inflightBytes`
   * already counts. Free slots of a carved slab cannot go alone: the slab goes once all are free.
   */
  #trimPools(): void {
    let keepPages = 0;
    let keepUnits = 0;
    for (const w of this.#drainWaiters) {
      if (w.length === this.pageSize) keepPages += w.count;
      else if (w.length === this.unitSize) keepUnits += w.count;
    }
    const perSlab = this.pageSize / this.unitSize;
    const keepSlabs = keepPages + Math.ceil(Math.max(0, keepUnits - this.#freeUnits()) / perSlab);
    const kept = (): number => Math.min(keepSlabs, this.#pool.length) * this.pageSize + Math.min(keepUnits, this.#freeUnits()) * this.unitSize;
    while (this.#totalBytes() - kept() > this.#budget && this.#pool.length > keepSlabs) this.#dropSlab();
  }

  /** A free slab to the GC (memory over the budget). */
  #dropSlab(): void {
    this.#pooledBytes -= this.pageSize;
    this.#state.delete(this.#pool.pop()!);
  }

  /** Every buffer byte the cache holds: cached, in flight (reserved), lent after eviction, free in the pools. */
  #totalBytes(): number {
    return this.#cachedBytes() + this.#inflightBytes + this.#heldBytes + this.#pooledBytes;
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
    if (this.#evictedWhilePinned.delete(b)) {
      this.#heldBytes -= b.length;
      this.#recycle(b);
    }
  }

  /**
   * A fetch is about to hold `bytes` of buffers of `size` bytes each: make room so that cached
   * extents, running fetches, evicted-but-pinned buffers and free pooled buffers fit the budget —
   * every slab this cache holds. The free buffers this fetch will take are not counted twice;
   * free slabs it will not take go first (garbage), then cached extents: for a unit (or a short
   * tail) the least recently used one; for a page a whole slab (#evictForPage).
   */
  #reserve(bytes: number, lengths: number[], take = true): Buffer[] {
    this.#inflightBytes += bytes;
    const size = lengths[0]!;
    const kind = this.#kind(size);
    // Free buffers are taken now, so that no other fetch counts them as its room too.
    const pre: Buffer[] = [];
    while (take && kind !== undefined && pre.length < lengths.length && lengths[pre.length] === size && this.#hasFree(size)) pre.push(this.#take(size));
    const room = { slabs: kind === 'page' ? lengths.length - pre.length : 0 };
    // For a page, loose units (free slots at the drain) are no room: only a whole slab is.
    const over = (): boolean => this.#totalBytes() + (kind === 'page' ? this.#looseBytes : 0) > this.#budget;
    while (over()) {
      if (this.#pool.length > 0) {
        this.#dropSlab(); // free memory this fetch does not need: freed by the GC
        continue;
      }
      if (!(kind === 'page' ? this.#evictForPage(room) : this.#evictOldest(true))) break;
    }
    return pre;
  }

  /** The least recently used extent goes; for a unit fetch (`owed`), an evicted unit's slot is that fetch's room. */
  #evictOldest(owed = false): boolean {
    const lru = this.#cache.rkeys().next();
    if (lru.done) return false;
    const v = this.#cache.peek(lru.value);
    if (owed && v && this.#slabOf.get(v) !== undefined && this.#slabOf.get(v)!.buf !== v && !this.#pins.has(v)) this.#owed.add(v);
    this.#cache.delete(lru.value);
    return true;
  }

  /**
   * Room for a page: a whole slab must come free. The least recently used extent goes if it is a
   * page (or a short tail); among the carved slabs of the oldest units, the one with the fewest
   * cached units to evict — and none lent to a reply or a disk write, or still being fetched into
   * (those never move and are never rewritten) — has all its units evicted: its slots come back
   * at the next drain and it is a page buffer again. `room.reuse` counts its free slots, which
   * this fetch takes with it. No such slab among the oldest: the oldest extent goes anyway.
   */
  #evictForPage(room: { slabs: number }): boolean {
    let best: Slab | undefined;
    let bestCost = Infinity;
    let looked = 0;
    const seen = new Set<Slab>();
    for (const k of this.#cache.rkeys()) {
      const v = this.#cache.peek(k);
      const slab = v && this.#slabOf.get(v);
      if (!slab || slab.buf === v) {
        if (best) break; // a page behind a reclaimable slab: the slab is older
        this.#cache.delete(k);
        return true;
      }
      if (!seen.has(slab) && !slab.reclaim) {
        seen.add(slab);
        const cost = this.#slabCost(slab);
        if (cost < bestCost) {
          best = slab;
          bestCost = cost;
          if (cost <= 1) break;
        }
      }
      if (++looked >= RECLAIM_SCAN) break;
    }
    // Slabs with free slots cost less than their age says (fewest live units first).
    if (bestCost > 1) {
      looked = 0;
      for (const slab of this.#partial) {
        if (slab.reclaim || seen.has(slab)) continue;
        const cost = this.#slabCost(slab);
        if (cost < bestCost) {
          best = slab;
          bestCost = cost;
        }
        if (++looked >= RECLAIM_SCAN) break;
      }
    }
    if (!best) return this.#evictOldest();
    best.reclaim = true;
    this.#reclaiming.add(best);
    if (room.slabs > 0) {
      // This fetch takes the slab's free slots with it: counted in its in-flight bytes, no longer pooled.
      room.slabs--;
      best.claimed = best.free.length;
      this.#pooledBytes -= best.claimed * this.unitSize;
    }
    for (const u of best.units!) {
      this.#unloose(u); // retired already: this fetch's room now, with the slab
      if (this.#state.get(u) !== CACHED) continue;
      const k = this.#keyOf.get(u);
      if (k !== undefined) this.#cache.delete(k);
    }
    return true;
  }

  /**
   * Cached units to evict for a carved slab to come free; Infinity when a unit is lent, being
   * fetched into, or evicted as a unit fetch's room (its slot is that fetch's).
   */
  #slabCost(slab: Slab): number {
    let n = 0;
    for (const u of slab.units!) {
      const st = this.#state.get(u);
      if (st === FREE || (st === RETIRED && this.#loose.has(u) && !this.#pins.has(u))) continue;
      if (st !== CACHED || this.#pins.has(u)) return Infinity;
      n++;
    }
    return n;
  }

  /**
   * Fetch consecutive extents from `offset` (their `lengths`) in one store request, into cache
   * buffers. Pages (not `unit`) whose units random reads cached copy those in and ask the store
   * only for the gaps (#fillGaps): the units are pinned first, so that making room for the pages
   * cannot recycle them mid-copy.
   */
  async #getExtents(key: string, offset: number, lengths: number[], unit = false): Promise<Buffer[]> {
    const total = lengths.reduce((a, b) => a + b, 0);
    const reuse = unit ? undefined : this.#pinUnits(key, offset, lengths);
    // A plain store returns a fresh buffer of its own: keep it as the page (no copy).
    const plain = lengths.length === 1 && !canRangeInto(this.store) && !reuse;
    try {
      return await this.#getExtentsInto(key, offset, lengths, total, plain, reuse);
    } finally {
      for (const u of reuse?.pinned ?? []) this.#unpin(u);
    }
  }

  async #getExtentsInto(key: string, offset: number, lengths: number[], total: number, plain: boolean, reuse: Reuse | undefined): Promise<Buffer[]> {
    const pre = this.#reserve(total, lengths, !plain);
    try {
      if (plain) return [await this.store.getRange(key, offset, total)];
      let targets: Buffer[] = pre;
      try {
        targets = await this.#takeBuffers(lengths, pre);
        if (reuse) {
          await this.#fillGaps(key, offset, targets, reuse);
        } else if (canRangeInto(this.store)) {
          // With the disk cache writing, the units' CRCs are computed as the bytes land (hot in
          // the CPU's cache) rather than read back from memory by the write (issue 16).
          const crcs = this.disk?.landingCrcs(key, offset, targets);
          await this.store.getRangeInto(key, offset, targets, crcs && ((b) => crcs.feed(b)));
          targets.forEach((t, i) => {
            const c = crcs?.crcsOf(i);
            if (c) this.#landedCrcs.set(t, c);
          });
        } else {
          await this.#getInto(key, offset, targets);
        }
      } catch (e) {
        for (const t of targets) this.#recycle(t); // never handed out
        throw e;
      }
      this.#landing(targets);
      return targets;
    } finally {
      this.#inflightBytes -= total;
    }
  }

  /** Unit keys of the page at `pageOffset` (`pageLength` bytes). */
  #unitKeys(key: string, pageOffset: number, pageLength: number): string[] {
    const pk = pageKey(key, pageOffset / this.pageSize);
    const out: string[] = [];
    for (let j = 0; j * this.unitSize < pageLength; j++) out.push(`${pk}.${j}`);
    return out;
  }

  /** The fetches of units of the pages from `offset` (`lengths`) that are under way: a page fetch waits for them, then copies them. */
  #unitsInFlight(key: string, offset: number, lengths: number[]): Promise<Buffer>[] {
    const out: Promise<Buffer>[] = [];
    if (!this.#randomEnabled || offset % this.pageSize !== 0) return out;
    let pos = offset;
    for (const n of lengths) {
      for (const uk of this.#unitKeys(key, pos, n)) {
        const done = this.#pending.get(uk)?.done;
        if (done) out.push(done);
      }
      pos += n;
    }
    return out;
  }

  /** The cached units of the pages from `offset` (`lengths`), pinned; undefined when there are none. */
  #pinUnits(key: string, offset: number, lengths: number[]): Reuse | undefined {
    if (!this.#randomEnabled || offset % this.pageSize !== 0) return undefined;
    const reuse: Reuse = { slots: [], pinned: [] };
    let pos = offset;
    for (const n of lengths) {
      const slots = this.#unitKeys(key, pos, n).map((uk, j) => {
        const u = this.#cache.peek(uk); // undefined while in flight
        if (u === undefined || u.length !== Math.min(this.unitSize, n - j * this.unitSize)) return undefined;
        this.#pin(u);
        reuse.pinned.push(u);
        return u;
      });
      reuse.slots.push(slots);
      pos += n;
    }
    return reuse.pinned.length > 0 ? reuse : undefined;
  }

  /**
   * The pages' cached units copied into `targets`, the rest fetched: each maximal span of missing
   * units is one ranged request, straight into the pages' buffers (a store without getRangeInto:
   * a copy), the spans in turn. (A page with k gaps costs k round trips; only pages a random phase
   * left units in have more than one.) Units were written to the disk cache when they landed; the page's write computes its
   * CRCs itself (no landing CRCs here).
   */
  async #fillGaps(key: string, offset: number, targets: Buffer[], reuse: Reuse): Promise<void> {
    const us = this.unitSize;
    const spans: Array<{ offset: number; parts: Buffer[] }> = [];
    let open: { offset: number; parts: Buffer[]; end: number; t: Buffer; from: number } | undefined;
    let pos = offset;
    targets.forEach((t, i) => {
      let copied = 0;
      for (let j = 0; j * us < t.length; j++) {
        const a = j * us;
        const b = Math.min(t.length, a + us);
        const u = reuse.slots[i]![j];
        if (u) {
          u.copy(t, a);
          copied += u.length;
          open = undefined;
          continue;
        }
        if (open && open.end === pos + a) {
          // Extends the open span: within the same page, widen its last part; else a new part.
          if (open.t === t) open.parts[open.parts.length - 1] = t.subarray(open.from, b);
          else {
            open.t = t;
            open.from = a;
            open.parts.push(t.subarray(a, b));
          }
          open.end = pos + b;
        } else {
          open = { offset: pos + a, parts: [t.subarray(a, b)], end: pos + b, t, from: a };
          spans.push(open);
        }
      }
      if (copied > 0) this.#fromUnits.set(t, copied);
      pos += t.length;
    });
    // One after another: this fetch holds one queue slot, and the store's requests stay bounded by
    // the queue's concurrency (B2). In parallel, 8 fetches × several gaps opened that many S3
    // connections, 128 KiB of buffers each (test/blob-read-memory: +8 MiB of ArrayBuffers).
    for (const sp of spans) await this.#getInto(key, sp.offset, sp.parts);
  }

  /** Bytes from `offset` into `parts`, in order: every byte, or a throw. */
  async #getInto(key: string, offset: number, parts: Buffer[]): Promise<void> {
    if (canRangeInto(this.store)) return this.store.getRangeInto(key, offset, parts);
    const total = parts.reduce((a, b) => a + b.length, 0);
    const buf = await this.store.getRange(key, offset, total);
    if (!Buffer.isBuffer(buf) || buf.length !== total) {
      throw new SmhError('BlobUnavailable', `short read of ${key} at ${offset}: ${Buffer.isBuffer(buf) ? buf.length : typeof buf} of ${total} bytes`, key);
    }
    let p = 0;
    for (const t of parts) p += buf.copy(t, 0, p, p + t.length);
  }

  /**
   * Fetched buffers stay counted in flight until the cache holds them (onInsert) or they come
   * back (#retire): between a fetch's end and lru-cache's insert, the next queued fetch starts
   * and would otherwise take their bytes for free room.
   */
  #landing(bufs: Buffer[]): void {
    for (const b of bufs) {
      if (!this.#owned.has(b)) continue;
      this.#landingBufs.add(b);
      this.#inflightBytes += b.length;
    }
  }

  #settled(b: Buffer): void {
    if (this.#landingBufs.delete(b)) this.#inflightBytes -= b.length;
  }

  /** The extent from the disk cache, verified, or undefined (not there, unreadable, corrupt). */
  async #fromDisk(ctx: FetchContext): Promise<Buffer | undefined> {
    const disk = this.disk!;
    const onPage = disk.has(ctx.key, ctx.pageOffset, ctx.pageLength);
    const pre = this.#reserve(ctx.length, [ctx.length]);
    try {
      const buf = (await this.#takeBuffers([ctx.length], pre))[0]!;
      const ok = onPage
        ? await disk.read(ctx.key, ctx.pageOffset, ctx.pageLength, ctx.offset, buf)
        : await disk.read(ctx.key, ctx.offset, ctx.length, ctx.offset, buf);
      if (ok) {
        this.#landing([buf]);
        return buf;
      }
      this.#recycle(buf);
      return undefined;
    } finally {
      this.#inflightBytes -= ctx.length;
    }
  }

  /** Keep what the store sent on disk too (in the background; the buffer is pinned until written). */
  #writeBehind(ctx: FetchContext, buf: Buffer): void {
    const disk = this.disk;
    if (!disk || disk.state !== 'on' || (ctx.unit && disk.has(ctx.key, ctx.pageOffset, ctx.pageLength))) return;
    this.#pin(buf);
    const crcs = this.#landedCrcs.get(buf);
    this.#landedCrcs.delete(buf);
    void disk.write(ctx.key, ctx.offset, buf, crcs).finally(() => this.#unpin(buf));
  }

  /** A page arrived: the units of it that random reads cached are now redundant. */
  #landed(ctx: FetchContext): void {
    if (ctx.unit || !this.#randomEnabled) return;
    const pk = pageKey(ctx.key, ctx.offset / this.pageSize);
    for (let j = 0; j * this.unitSize < ctx.length; j++) {
      const uk = `${pk}.${j}`;
      if (this.#cache.has(uk)) this.#cache.delete(uk);
    }
  }

  /**
   * Queue one store request for consecutive extents (all missing); their fetches share it. Pages
   * whose units are in flight first wait for them, outside the queue (a queue slot held while
   * waiting for a fetch queued behind it could deadlock), then copy them in (#getExtents).
   */
  #startRun(key: string, offset: number, lengths: number[], prefetch: boolean, unit: boolean): Run {
    const id = `${key}@${offset}+${lengths.length}#${++this.#taskSeq}`;
    const run: Run = { offset, lengths, taskId: id, prefetch, promise: Promise.resolve([]) };
    // Priority read when queued: a run still waiting for units in flight may be promoted before.
    const queue = (): Promise<Buffer[]> =>
      this.#queue.add(
        () => {
          run.taskId = undefined;
          if (this.#closed) throw new SmhError('BlobUnavailable', 'page cache is closed', key);
          return this.#getExtents(key, offset, lengths, unit);
        },
        { priority: run.prefetch ? PREFETCH_PRIORITY : READ_PRIORITY, id },
      ) as Promise<Buffer[]>;
    const wait = unit ? [] : this.#unitsInFlight(key, offset, lengths);
    run.promise = wait.length === 0 ? queue() : Promise.allSettled(wait).then(queue);
    run.promise.catch(() => undefined); // each extent's fetch reports (and retries) on its own
    return run;
  }

  /**
   * A read now waits on a page a prefetch is fetching: move its queued attempt to read priority —
   * its own, or the coalesced run it shares (the whole run: it is one request). A run not yet in
   * the queue (waiting for units in flight) is queued at read priority when it gets there; an
   * attempt already running has nothing to promote.
   */
  #promote(k: string): void {
    const pending = this.#pending.get(k);
    if (!pending || !pending.prefetch) return;
    pending.prefetch = false; // later retries queue at read priority too
    if (pending.run) pending.run.prefetch = false;
    for (const id of [pending.taskId, pending.run?.taskId]) {
      if (id === undefined) continue;
      try {
        this.#queue.setPriority(id, READ_PRIORITY);
      } catch {
        // already running: nothing to promote
      }
    }
  }

  /**
   * Follow a stream: sequential (or near-sequential) reads grow the window, a seek resets it;
   * two seeks in a row make the stream random, enough contiguous bytes sequential again.
   * Returns whether this read's misses fetch units rather than whole pages: a random stream's,
   * and any read not yet known to be sequential — a seek by a stream that has not read a page's
   * worth contiguously before it (a new stream's first read away from offset 0, a stream just back from
   * random) and the read that makes a random stream sequential again (readahead starts with the
   * next contiguous read). Whole pages only for a reader known to read on: in a cache full of
   * units, a page costs sixteen units that go to the GC and a new megabyte (issue 16).
   */
  #track(s: ReadStream, key: string, offset: number, end: number, lastPage: number): boolean {
    const ps = this.pageSize;
    if (s.key !== key) s.reset(key); // new content under this open file: start over
    // Near-sequential counts as sequential: the kernel has several reads of one file in flight
    // (async readahead) and they can arrive slightly out of order — 256 KiB before 128 KiB, the
    // read at 128 KiB before the one at 0 (NEAR_PAGES). A sequential stream continues with a read
    // up to `slack` past where it expected one, or back as far but not before the page its run
    // began in (bytes it has asked for already); a new stream with a first read near offset 0; a
    // random stream within RANDOM_SLACK either way. Anything else is a seek.
    const slack = Math.max(s.window, NEAR_PAGES * ps);
    const d = offset - s.nextOffset;
    const near = s.random
      ? Math.abs(d) <= RANDOM_SLACK
      : s.sequentialReads + s.seeks === 0
        ? offset <= slack
        : d >= 0
          ? d <= slack
          : -d <= slack && offset >= Math.floor(s.runStart / ps) * ps;
    const wasRandom = s.random;
    if (offset === s.nextOffset || near) {
      s.sequentialReads++;
      s.seekRun = 0;
      s.runBytes += end - offset;
      if (s.random && s.runBytes >= this.#resumeBytes) {
        s.random = false;
        this.#s.toSequential++;
      }
      if (!s.random) {
        if (wasRandom) s.window = 0; // back from random: readahead from the next contiguous read
        else if (s.window === 0) s.window = Math.min(ps, this.windowCap);
        else if (lastPage > s.lastPage) s.window = Math.min(s.window * 2, this.windowCap);
      }
      s.nextOffset = Math.max(s.nextOffset, end);
      s.lastPage = Math.max(s.lastPage, lastPage);
      return wasRandom;
    }
    const knownSequential = s.runBytes >= ps; // the contiguous run this seek ends
    s.seeks++;
    s.runBytes = end - offset;
    s.runStart = offset;
    if (this.#randomEnabled && !s.random && ++s.seekRun >= SEEKS_TO_RANDOM) {
      s.random = true;
      this.#s.toRandom++;
    }
    s.window = 0;
    s.prefetchedThrough = lastPage;
    s.nextOffset = end;
    s.lastPage = lastPage;
    return s.random || (this.#randomEnabled && !knownSequential);
  }

  /** Prefetch the stream's window ahead of its last page. */
  #prefetchAhead(s: ReadStream, key: string, blobSize: number): void {
    if (s.random || s.window === 0) return;
    // The disk cache's write backlog over half its budget: ask for nothing ahead until it drains
    // (retried on a later read; the reader's own pages are still fetched). On one CPU the writer
    // competes with the reader, and pages fetched ahead meanwhile were dropped from the backlog
    // (fetched again by the next mount) while their pinned buffers forced fresh allocations.
    if (this.disk?.writeBacklogHigh === true) return;
    const ps = this.pageSize;
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
    const exts: Extent[] = [];
    for (let i = from; i <= upTo; i++) {
      if (this.#prefetchInFlight + exts.length >= this.prefetchPagesCap) break; // retried on a later read
      s.prefetchedThrough = i;
      const e = this.#pageExtent(key, blobSize, i);
      if (!this.#cachedOrPending(e.k)) exts.push(e);
    }
    if (exts.length > 0) this.#prefetch(key, exts, runPages * ps);
  }

  /**
   * Drop-behind: a sequential stream over a blob larger than the whole budget gives the pages it
   * has read back to the pool instead of letting them age through the LRU. Why: such a stream
   * would evict itself anyway — an LRU re-read of a blob larger than the cache finds nothing
   * (each miss evicts the oldest page, the next one it needs) — while it filled the whole budget
   * with fresh buffers (a cold S3 read's first 256 MiB: ~19% of the mount's CPU in page faults on
   * this VM) and pushed every other file's pages out. The kernel keeps what was read (keep_cache)
   * and the disk cache keeps it too. So the stream's footprint is its readahead window plus
   * `KEEP_BEHIND_PAGES`, a few hot buffers recycled through the pool; a blob that fits, and
   * random streams, keep caching as before. Only pages this stream went through since its last
   * seek are dropped (a seek restarts from the seek's page), never those of the read under way;
   * a page still in flight stops the sweep until it lands. A dropped page a reader holds stays
   * pinned until released (#retire), as with any eviction. Two readers of one blob (two HTTP
   * clients on one video): pages at or ahead of a reader that lags behind and is moving (see
   * DROP_LIVE_MS) are not dropped by the one in front — the laggard finds them, and drops them
   * itself once past.
   */
  #dropBehind(s: ReadStream, key: string, blobSize: number, firstOfRead: number): void {
    if (!this.dropBehind || blobSize <= this.maxBytes) return;
    const now = performance.now();
    this.#registerBig(s, key, now);
    if (s.dropSeeks !== s.seeks) {
      s.dropSeeks = s.seeks;
      s.droppedThrough = Math.max(-1, firstOfRead - 1);
      return;
    }
    if (s.random || s.key !== key) return;
    // Another live sequential reader of this blob behind us will read these pages: keep them
    // from where it is (the LRU ages them as before; that reader drops them once past them).
    let protectFrom = Infinity;
    for (const o of this.#bigStreams.get(key) ?? []) {
      if (o === s || o.random || o.key !== key || o.dropMoves < DROP_LIVE_PAGES || now - o.dropMovedAt > DROP_LIVE_MS) continue;
      protectFrom = Math.min(protectFrom, Math.floor(o.nextOffset / this.pageSize));
    }
    const limit = Math.min(s.lastPage - 1 - KEEP_BEHIND_PAGES, firstOfRead - 1, protectFrom - 1);
    for (let i = s.droppedThrough + 1; i <= limit; i++) {
      const k = pageKey(key, i);
      if (this.#pending.has(k)) return;
      if (this.#cache.delete(k)) this.#s.droppedBehind++;
      s.droppedThrough = i;
    }
  }

  /** Keep `#bigStreams` current: this stream under its blob, and whether it moves; streams idle for DROP_STALE_MS let go. */
  #registerBig(s: ReadStream, key: string, now: number): void {
    s.dropAt = now;
    if (s.dropKey !== key) {
      if (s.dropKey !== undefined) this.#unregisterBig(s);
      s.dropKey = key;
      s.dropMoves = 0;
      s.dropSeenPage = s.lastPage;
      let set = this.#bigStreams.get(key);
      if (!set) this.#bigStreams.set(key, (set = new Set()));
      set.add(s);
    }
    if (s.lastPage > s.dropSeenPage) {
      s.dropSeenPage = s.lastPage;
      s.dropMovedAt = now;
      s.dropMoves++;
    }
    if (++this.#dropCalls % 256 !== 0) return;
    for (const set of this.#bigStreams.values()) for (const o of set) if (now - o.dropAt > DROP_STALE_MS) this.#unregisterBig(o);
  }

  #unregisterBig(s: ReadStream): void {
    const set = s.dropKey === undefined ? undefined : this.#bigStreams.get(s.dropKey);
    set?.delete(s);
    if (set?.size === 0) this.#bigStreams.delete(s.dropKey!);
    s.dropKey = undefined;
  }

  /** Prefetch pages (all missing from memory); those only the store has go out in runs. */
  #prefetch(key: string, exts: Extent[], maxRunBytes: number): void {
    const promises = this.#fetchAll(key, exts, true, maxRunBytes);
    exts.forEach((e, j) => {
      this.#s.prefetches++;
      this.#prefetchInFlight++;
      this.#prefetched.add(e.k);
      // Fire and forget: a failed prefetch only costs the read that later needs the page a fetch.
      promises[j]!.then(
        () => {
          this.#prefetchInFlight--;
          if (!this.#cache.has(e.k)) this.#prefetched.delete(e.k); // evicted before it landed
        },
        () => {
          this.#prefetchInFlight--;
          this.#prefetched.delete(e.k);
        },
      );
    });
  }

  #fetchExtent(k: string, ctx: FetchContext | undefined): Promise<Buffer> {
    if (!ctx) throw new SmhError('Internal', `page cache fetch without context for ${k}`);
    const p = this.#fetchWithRetries(k, ctx);
    const pending = this.#pending.get(k); // set synchronously by #fetchWithRetries
    if (pending) pending.done = p;
    this.#inflight.add(p);
    const done = (): void => {
      this.#inflight.delete(p);
    };
    p.then((v) => {
      done();
      if (this.#owned.has(v)) {
        this.#delivered.push({ b: v, take: this.#takeOf.get(v)! });
        this.#scheduleDrain();
      }
    }, done);
    return p;
  }

  async #fetchWithRetries(k: string, ctx: FetchContext): Promise<Buffer> {
    const { key, offset, length: expected } = ctx;
    const what = ctx.unit ? `bytes ${offset}+${expected}` : `page ${offset / this.pageSize}`;
    const pending: Pending = { prefetch: ctx.prefetch, taskId: undefined, run: ctx.run };
    this.#pending.set(k, pending);
    try {
      if (!ctx.run && this.disk && this.disk.state !== 'off') {
        const fromDisk = this.#onDisk(key, ctx) ? await this.#fromDisk(ctx) : this.disk.missed();
        if (fromDisk) {
          this.#landed(ctx);
          return fromDisk;
        }
      }
      for (let attempt = 0; ; attempt++) {
        try {
          let buf: Buffer;
          // First attempt: this extent's share of a coalesced request; retries go alone.
          // (pending.run stays set: #promote needs it while the run is queued. Clearing it here,
          // before the first await, made every queued run unpromotable.)
          const run = attempt === 0 ? ctx.run : undefined;
          if (run) {
            const i = run.lengths.length === 1 ? 0 : indexIn(run, offset);
            buf = (await run.promise)[i]!;
          } else {
            const wait = ctx.unit ? [] : this.#unitsInFlight(key, offset, [expected]);
            if (wait.length > 0) await Promise.allSettled(wait); // outside the queue (see #startRun)
            const id = `${k}#${++this.#taskSeq}`;
            pending.taskId = id;
            buf = (await this.#queue.add(
              async () => {
                pending.taskId = undefined;
                if (this.#closed) throw new SmhError('BlobUnavailable', 'page cache is closed', key);
                return (await this.#getExtents(key, offset, [expected], ctx.unit))[0]!;
              },
              { priority: pending.prefetch ? PREFETCH_PRIORITY : READ_PRIORITY, id },
            )) as Buffer;
          }
          if (!Buffer.isBuffer(buf) || buf.length !== expected) {
            // The store broke its contract (a truncated body): never cache or serve this.
            throw new SmhError('BlobUnavailable', `short read of ${key} ${what}: ${Buffer.isBuffer(buf) ? buf.length : typeof buf} of ${expected} bytes`, key);
          }
          const reused = this.#fromUnits.get(buf) ?? 0;
          this.#fromUnits.delete(buf);
          this.#s.bytesFetched += buf.length - reused;
          this.#s.unitBytesReused += reused;
          this.#writeBehind(ctx, buf);
          this.#landed(ctx);
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
              `cannot read ${key} ${what} from ${this.store.description} after ${attempt + 1} attempt(s): ${messageOf(e)}`,
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

/** Which of a run's extents starts at `offset`. */
function indexIn(run: Run, offset: number): number {
  let pos = run.offset;
  for (let i = 0; i < run.lengths.length; i++) {
    if (pos === offset) return i;
    pos += run.lengths[i]!;
  }
  throw new SmhError('Internal', `offset ${offset} is not in the run at ${run.offset}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
