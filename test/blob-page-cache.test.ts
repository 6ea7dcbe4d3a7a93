// The page cache (B2–B4): counters, one request per concurrently missed page, the byte budget,
// the doubling/resetting readahead window, read-over-prefetch priority, and faults — a truncated
// or failed fetch is retried, never served, never cached.
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { isSmhError } from '../src/errors.js';
import { FaultInjectingStore } from '../src/blob/fault-store.js';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { PageCache } from '../src/blob/page-cache.js';
import { EMPTY_BLOB_KEY, type BlobInfo, type BlobStore } from '../src/blob/types.js';

const PS = 4096; // small pages keep the tests fast; the logic does not depend on the size

/** Records every getRange; optionally holds them all until `open()`. */
class CountingStore implements BlobStore {
  readonly description = 'counting';
  readonly calls: { key: string; offset: number; length: number }[] = [];
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  constructor(readonly inner: BlobStore) {}
  hold(): void {
    this.#gate = new Promise((r) => (this.#open = r));
  }
  open(): void {
    this.#open?.();
    this.#gate = undefined;
  }
  offsets(): number[] {
    return this.calls.map((c) => c.offset);
  }
  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.calls.push({ key, offset, length });
    if (this.#gate) await this.#gate;
    return this.inner.getRange(key, offset, length);
  }
  putFile(key: string, path: string, size: number): Promise<void> {
    return this.inner.putFile(key, path, size);
  }
  putStream(body: Readable | Buffer): Promise<BlobInfo> {
    return this.inner.putStream(body);
  }
  head(key: string): Promise<BlobInfo | undefined> {
    return this.inner.head(key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(): AsyncIterable<BlobInfo> {
    return this.inner.list();
  }
}

async function blob(pages: number, extra = 0): Promise<{ mem: MemoryBlobStore; key: string; bytes: Buffer }> {
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(pages * PS + extra);
  const { key } = await mem.putStream(bytes);
  return { mem, key, bytes };
}

t.test('hits, misses, multi-page assembly and POSIX short reads', async (t) => {
  const { mem, key, bytes } = await blob(10, 123);
  const store = new CountingStore(mem);
  const cache = new PageCache({ store, pageSize: PS, maxBytes: 64 * PS });
  const size = bytes.length;

  t.ok((await cache.read(key, size, 10, 100)).equals(bytes.subarray(10, 110)), 'bytes of a one-page read');
  t.match(cache.stats(), { hits: 0, misses: 1, bytesFetched: PS });
  t.ok((await cache.read(key, size, 200, 50)).equals(bytes.subarray(200, 250)));
  t.match(cache.stats(), { hits: 1, misses: 1 }, 'second read of the page is a hit');

  const across = await cache.read(key, size, PS - 7, 2 * PS + 14); // pages 0..3
  t.ok(across.equals(bytes.subarray(PS - 7, 3 * PS + 7)), 'read spanning four pages is assembled exactly');
  t.match(cache.stats(), { hits: 2, misses: 4 }, 'page 0 hit, pages 1–3 missed');

  const tail = await cache.read(key, size, size - 20, 1000);
  t.ok(tail.equals(bytes.subarray(size - 20)), 'read past EOF is short');
  t.equal(store.calls.at(-1)!.length, 123, 'the last, partial page is fetched at its true length');
  t.equal((await cache.read(key, size, size, 10)).length, 0, 'offset == size: empty');
  t.equal((await cache.read(key, size, size + 1, 10)).length, 0, 'offset > size: empty');
  t.equal((await cache.read(key, size, 5, 0)).length, 0, 'length 0: empty');

  const before = store.calls.length;
  t.equal((await cache.read(EMPTY_BLOB_KEY, 0, 0, 4096)).length, 0, 'empty blob');
  t.equal(store.calls.length, before, 'the empty blob needs no store request');
  await t.rejects(cache.read(key, size, -1, 1), { code: 'InvalidArgument' });
  t.equal(cache.stats().cachedBytes, 4 * PS + 123, 'pages 0–3 and the 123-byte last page cached');
});

t.test('concurrent misses of one page make exactly one store request', async (t) => {
  const { mem, key, bytes } = await blob(4);
  const store = new CountingStore(mem);
  store.hold(); // every reader arrives before the fetch completes
  const cache = new PageCache({ store, pageSize: PS, maxBytes: 16 * PS });
  const reads = Array.from({ length: 20 }, (_, i) => cache.read(key, bytes.length, PS + i * 10, 50));
  store.open();
  const got = await Promise.all(reads);
  got.forEach((b, i) => t.ok(b.equals(bytes.subarray(PS + i * 10, PS + i * 10 + 50)), `reader ${i} got its bytes`));
  t.equal(store.calls.length, 1, 'one request');
  t.same(store.calls[0], { key, offset: PS, length: PS });
  t.match(cache.stats(), { misses: 20, hits: 0, bytesFetched: PS });
});

t.test('LRU eviction keeps cachedBytes within maxBytes', async (t) => {
  const { mem, key, bytes } = await blob(40);
  const store = new CountingStore(mem);
  const cache = new PageCache({ store, pageSize: PS, maxBytes: 4 * PS });
  for (let i = 0; i < 40; i++) {
    const b = await cache.read(key, bytes.length, i * PS, PS);
    t.ok(b.equals(bytes.subarray(i * PS, (i + 1) * PS)), `page ${i} bytes`);
    t.ok(cache.stats().cachedBytes <= 4 * PS, `after page ${i}: within budget`);
  }
  t.equal(cache.stats().cachedBytes, 4 * PS, 'budget full');
  t.notOk(cache.hasPage(key, 0), 'oldest page evicted');
  t.ok(cache.hasPage(key, 39), 'newest page kept');
  const n = store.calls.length;
  await cache.read(key, bytes.length, 39 * PS, 10);
  t.equal(store.calls.length, n, 'newest page is a hit');
  await cache.read(key, bytes.length, 0, 10);
  t.equal(store.calls.length, n + 1, 'evicted page is fetched again');
});

t.test('a read larger than the whole budget still gets every byte', async (t) => {
  const { mem, key, bytes } = await blob(8);
  const store = new CountingStore(mem);
  const cache = new PageCache({ store, pageSize: PS, maxBytes: PS }); // room for one page
  const got = await cache.read(key, bytes.length, 10, 6 * PS);
  t.ok(got.equals(bytes.subarray(10, 10 + 6 * PS)), 'pages evicted while the read waited were still delivered');
  t.equal(store.calls.length, 7, 'each page fetched once');
  t.ok(cache.stats().cachedBytes <= PS, 'and the budget held');
});

t.test('memory stays within budget on a long sequential read with readahead', async (t) => {
  const { mem, key, bytes } = await blob(1024); // 4 MiB through a 64 KiB cache
  const cache = new PageCache({ store: mem, pageSize: PS, maxBytes: 16 * PS, readaheadMax: 64 * PS });
  const s = cache.openStream();
  let maxCached = 0;
  let maxWindow = 0;
  const chunk = 3000; // not page-aligned on purpose
  for (let off = 0; off < bytes.length; off += chunk) {
    const b = await cache.read(key, bytes.length, off, chunk, s);
    if (!b.equals(bytes.subarray(off, off + chunk))) t.fail(`bytes at ${off}`);
    maxCached = Math.max(maxCached, cache.stats().cachedBytes);
    maxWindow = Math.max(maxWindow, s.window);
  }
  t.ok(maxCached <= 16 * PS, `cachedBytes peaked at ${maxCached} ≤ ${16 * PS}`);
  t.equal(cache.windowCap, 4 * PS, 'window capped at a quarter of the budget, not readaheadMax');
  t.equal(maxWindow, 4 * PS, 'the window reached the cap and no further');
  t.ok(cache.stats().prefetches > 0 && cache.stats().prefetchHits > 0, 'readahead ran and paid off');
  await cache.idle();
});

t.test('B2/drop-behind: a sequential stream over a blob larger than the cache gives back the pages it read; a blob that fits keeps caching', async (t) => {
  const mem = new MemoryBlobStore();
  const big = randomBytes(256 * PS);
  const small = randomBytes(32 * PS);
  const bigKey = (await mem.putStream(big)).key;
  const smallKey = (await mem.putStream(small)).key;
  const store = new CountingStore(mem);
  const budget = 64 * PS;
  const cache = new PageCache({ store, pageSize: PS, maxBytes: budget, readaheadMax: 8 * PS });
  const readAll = async (key: string, bytes: Buffer): Promise<number> => {
    const s = cache.openStream();
    let peak = 0;
    let wrong = 0;
    for (let off = 0; off < bytes.length; off += 3000) {
      if (!(await cache.read(key, bytes.length, off, 3000, s)).equals(bytes.subarray(off, off + 3000))) wrong++;
      peak = Math.max(peak, cache.stats().cachedBytes);
    }
    await cache.idle();
    t.equal(wrong, 0, 'every read returned the right bytes');
    return peak;
  };
  // A blob that fits (half the budget): cached whole, and a re-read is all hits.
  await readAll(smallKey, small);
  const afterSmall = store.calls.length;
  t.equal(afterSmall, 32, 'the small blob: each page fetched once');
  t.notOk(cache.stats().droppedBehind, 'nothing dropped behind a blob that fits');
  // The big blob (4x the budget) streams through a footprint of its window plus the pages kept
  // behind — also after another stream read its first bytes and stopped (\`file\`, a player's probe).
  t.ok((await cache.read(bigKey, big.length, 0, 100, cache.openStream())).equals(big.subarray(0, 100)), 'a probe of the first bytes');
  const peak = await readAll(bigKey, big);
  const bigCalls = store.calls.slice(afterSmall);
  t.equal(bigCalls.length, 256, 'the big blob: 256 page requests');
  t.equal(new Set(bigCalls.map((c) => c.offset)).size, 256, 'each page fetched once: no page dropped before its late reads');
  const bigPeak = peak - 32 * PS;
  t.ok(bigPeak <= (8 + 8 + 2) * PS, `the big stream held at most ${bigPeak / PS} pages (window 8 + 8 kept behind + 2), not the rest of the budget`);
  t.ok(cache.stats().droppedBehind >= 256 - 8 - 8 - 2, `pages given back: ${cache.stats().droppedBehind}`);
  t.equal([...Array(32).keys()].filter((i) => cache.hasPage(smallKey, i)).length, 32, 'the small blob was not evicted by the big stream');
  const before = store.calls.length;
  await readAll(smallKey, small);
  t.equal(store.calls.length, before, 'the small blob is still cached whole: its re-read fetched nothing');
  // Re-reading the big blob: an LRU re-read of a blob larger than the cache finds nothing (each miss
  // evicts the oldest page, the next one it needs), so drop-behind costs no re-read; only the
  // tail it kept is a hit.
  const beforeBig = store.calls.length;
  await readAll(bigKey, big);
  const reread = store.calls.length - beforeBig;
  const lruStore = new CountingStore(mem);
  const lru = new PageCache({ store: lruStore, pageSize: PS, maxBytes: budget, readaheadMax: 8 * PS, dropBehind: false });
  for (let pass = 0; pass < 2; pass++) {
    const s = lru.openStream();
    for (let off = 0; off < big.length; off += 3000) await lru.read(bigKey, big.length, off, 3000, s);
    await lru.idle();
    if (pass === 0) t.equal(lru.stats().cachedBytes, budget, 'without drop-behind the big stream fills the budget');
  }
  const lruReread = lruStore.calls.length - 256;
  t.equal(lruReread, 256, 'without drop-behind, the re-read fetched every page again');
  t.ok(reread <= lruReread, `with drop-behind the re-read fetched ${reread} pages, no more`);
});

t.test('B2/drop-behind: a reader in front drops nothing a moving reader behind it on the same blob has still to read', async (t) => {
  const mem = new MemoryBlobStore();
  const big = randomBytes(256 * PS);
  const key = (await mem.putStream(big)).key;
  const store = new CountingStore(mem);
  const cache = new PageCache({ store, pageSize: PS, maxBytes: 64 * PS, readaheadMax: 8 * PS });
  const front = cache.openStream();
  const back = cache.openStream();
  let wrong = 0;
  const step = async (s: typeof front, off: number): Promise<void> => {
    if (off < big.length && !(await cache.read(key, big.length, off, PS, s)).equals(big.subarray(off, off + PS))) wrong++;
  };
  // Both read their first pages; then the front reader runs 20 pages ahead of the one behind
  // it: within the budget, so without drop-behind the LRU served the laggard every page; it must
  // still.
  let f = 0;
  let b = 0;
  while (f < 256 || b < 256) {
    if (f < 256) await step(front, f++ * PS);
    if (b < 256 && (b < 3 || f - b > 20 || f >= 256)) await step(back, b++ * PS);
  }
  await cache.idle();
  t.equal(wrong, 0, 'both readers got the right bytes');
  t.equal(store.calls.length, 256, 'each page fetched once for the two readers');
  t.ok(cache.stats().droppedBehind > 200, `the reader behind gave the pages back once past them (${cache.stats().droppedBehind})`);
});

t.test('readahead window doubles on sequential reads and resets on a seek', async (t) => {
  const { mem, key, bytes } = await blob(200);
  const store = new CountingStore(mem);
  const cache = new PageCache({ store, pageSize: PS, maxBytes: 1024 * PS, readaheadMax: 16 * PS });
  const size = bytes.length;
  const s = cache.openStream();
  t.equal(s.window, 0, 'no readahead before the first read');

  const windows: number[] = [];
  for (let i = 0; i < 7; i++) {
    t.ok((await cache.read(key, size, i * PS, PS, s)).equals(bytes.subarray(i * PS, (i + 1) * PS)));
    windows.push(s.window / PS);
    await cache.idle();
  }
  t.same(windows, [1, 2, 4, 8, 16, 16, 16], 'window in pages: doubling up to readaheadMax');
  t.ok(cache.hasPage(key, 6 + 16), 'prefetched a full window ahead');
  t.notOk(cache.hasPage(key, 6 + 17), 'and not further');
  const st = cache.stats();
  t.ok(st.prefetches >= 20, `prefetches counted (${st.prefetches})`);
  t.equal(st.prefetchHits, 6, 'pages 1–6 were found prefetched');

  // Reads within one page continue the sequence but do not double the window.
  const calls = store.calls.length;
  await cache.read(key, size, 7 * PS, 100, s);
  await cache.read(key, size, 7 * PS + 100, 100, s);
  t.equal(s.window, 16 * PS, 'stays at the cap');
  t.equal(store.calls.length, calls + 1, 'only the one new page beyond the window was fetched (prefetch of page 23)');

  // A seek resets the window; random reads trigger no prefetch.
  await cache.idle();
  const p0 = cache.stats().prefetches;
  await cache.read(key, size, 150 * PS, 10, s);
  t.equal(s.window, 0, 'seek: window reset');
  await cache.read(key, size, 100 * PS, 10, s);
  await cache.read(key, size, 120 * PS + 77, 10, s);
  t.equal(s.window, 0);
  await cache.idle();
  t.equal(cache.stats().prefetches, p0, 'random reads prefetch nothing');
  t.equal(s.seeks, 3);

  // A new sequential run starts again from one page.
  await cache.read(key, size, 120 * PS + 87, PS, s);
  t.equal(s.window, PS, 'sequential again: one page');
  await cache.read(key, size, 121 * PS + 87, PS, s);
  t.equal(s.window, 2 * PS, 'then doubling');
  await cache.idle();
});

t.test('readaheadMax 0 turns readahead off', async (t) => {
  const { mem, key, bytes } = await blob(8);
  const store = new CountingStore(mem);
  const cache = new PageCache({ store, pageSize: PS, readaheadMax: 0 });
  const s = cache.openStream();
  for (let i = 0; i < 8; i++) await cache.read(key, bytes.length, i * PS, PS, s);
  await cache.idle();
  t.equal(s.window, 0);
  t.equal(cache.stats().prefetches, 0);
  t.equal(store.calls.length, 8, 'only the pages read');
});

t.test('reads outrank prefetches, and a read waiting on a prefetch promotes it', async (t) => {
  const { mem, key, bytes } = await blob(64);
  const store = new CountingStore(mem);
  store.hold();
  const cache = new PageCache({ store, pageSize: PS, maxBytes: 64 * PS, concurrency: 1, readaheadMax: 4 * PS });
  const s = cache.openStream();
  const size = bytes.length;
  // Not awaited: each read registers its pages and readahead synchronously.
  const a = cache.read(key, size, 0, PS, s); // page 0 runs; prefetch page 1 queued
  const b = cache.read(key, size, PS, PS, s); // joins prefetch of page 1 (promoted); prefetch 2, 3
  const c = cache.read(key, size, 30 * PS, PS); // an unrelated read
  store.open();
  await Promise.all([a, b, c]);
  await cache.idle();
  t.same(store.offsets().map((o) => o / PS), [0, 1, 30, 2, 3], 'promoted prefetch, then the read, then prefetches');
  t.equal(cache.stats().prefetchHits, 1);
});

/** CountingStore with a scatter read (so readahead coalesces pages into runs); held like getRange. */
class RangeCountingStore extends CountingStore {
  async getRangeInto(key: string, offset: number, targets: Buffer[]): Promise<void> {
    const total = targets.reduce((a, b) => a + b.length, 0);
    const got = await this.getRange(key, offset, total); // records the call, waits at the gate
    let pos = 0;
    for (const tg of targets) pos += got.copy(tg, 0, pos, pos + tg.length);
  }
}

t.test('B2/B3 priority: a read of a page in a queued coalesced prefetch run promotes the whole run', async (t) => {
  const { mem, key, bytes } = await blob(64);
  const store = new RangeCountingStore(mem);
  store.hold();
  const cache = new PageCache({ store, pageSize: PS, maxBytes: 256 * PS, concurrency: 1, readaheadMax: 16 * PS, maxRequestBytes: 4 * PS });
  const s = cache.openStream();
  const size = bytes.length;
  // Not awaited: page 0 takes the one slot (held); each read joins the page prefetched for it and
  // doubles the window, up to 16 pages, prefetched in runs of up to 4 pages (all queued).
  const reads = [0, 1, 2, 3, 4].map((p) => cache.read(key, size, p * PS, PS, s));
  // A read (no stream: no readahead of its own) of a page inside a later queued run.
  const late = cache.read(key, size, 18 * PS, PS);
  store.open();
  const got = await Promise.all([...reads, late]);
  await cache.idle();
  t.ok(got.at(-1)!.equals(bytes.subarray(18 * PS, 19 * PS)), 'the read gets its bytes');
  const calls = store.calls.map((c) => [c.offset / PS, c.length / PS]);
  t.comment(JSON.stringify(calls));
  const at = calls.findIndex(([o, n]) => o! <= 18 && 18 < o! + n!);
  t.ok(at >= 0 && calls[at]![1]! > 1, 'page 18 came in a coalesced run');
  const prefetchRuns = calls.filter(([o, n]) => n! > 1 || o! > 4);
  t.ok(prefetchRuns.length >= 3, 'several prefetch runs were queued');
  // The promoted run goes first among the prefetch runs, though queued after several of them
  // (pages 5–15 were queued before it: the window reached page 18 only with the read of page 4).
  t.same(prefetchRuns[0], calls[at], 'the run holding the page read goes before the other queued prefetches');
  t.same(calls.slice(0, 5), [0, 1, 2, 3, 4].map((p) => [p, 1]), 'the stream\'s own reads first (promoted single pages)');
  t.equal(cache.stats().errors, 0);
});

t.test('a truncated body is retried and never served', async (t) => {
  const { mem, key, bytes } = await blob(3);
  const faults = new FaultInjectingStore(mem);
  const cache = new PageCache({ store: faults, pageSize: PS, maxBytes: 16 * PS, backoffMs: 1 });
  faults.truncateNext(2);
  const got = await cache.read(key, bytes.length, 0, PS);
  t.ok(got.equals(bytes.subarray(0, PS)), 'the full, correct page');
  t.equal(faults.stats.injectedTruncations, 2);
  t.equal(faults.stats.calls.getRange, 3, 'two short answers, then a good one');
  t.match(cache.stats(), { retries: 2, errors: 0, bytesFetched: PS });
});

t.test('a persistently truncating store gives BlobUnavailable and caches nothing', async (t) => {
  const { mem, key, bytes } = await blob(3);
  const faults = new FaultInjectingStore(mem, { truncateRate: 1 });
  const cache = new PageCache({ store: faults, pageSize: PS, maxBytes: 16 * PS, retries: 3, backoffMs: 1 });
  const err = await cache.read(key, bytes.length, PS + 5, 10).catch((e: unknown) => e);
  t.ok(isSmhError(err, 'BlobUnavailable'), 'BlobUnavailable');
  t.match((err as Error).message, /short read/);
  t.equal(faults.stats.calls.getRange, 4, 'first attempt + 3 retries');
  t.match(cache.stats(), { retries: 3, errors: 1, cachedBytes: 0, bytesFetched: 0 });
  t.notOk(cache.hasPage(key, 1), 'nothing cached');
  faults.reset();
  t.ok((await cache.read(key, bytes.length, PS + 5, 10)).equals(bytes.subarray(PS + 5, PS + 15)), 'recovers once the store does');
});

t.test('persistent failure gives BlobUnavailable, nothing cached; transient failure heals', async (t) => {
  const { mem, key, bytes } = await blob(3);
  const faults = new FaultInjectingStore(mem, { failRate: 1 });
  const cache = new PageCache({ store: faults, pageSize: PS, maxBytes: 16 * PS, backoffMs: 1 });
  await t.rejects(cache.read(key, bytes.length, 0, 10), { code: 'BlobUnavailable' });
  t.equal(faults.stats.calls.getRange, 5, 'default: first attempt + 4 retries');
  t.match(cache.stats(), { retries: 4, errors: 1, cachedBytes: 0 });
  t.notOk(cache.hasPage(key, 0));

  faults.reset();
  faults.failNext(3);
  t.ok((await cache.read(key, bytes.length, 0, 10)).equals(bytes.subarray(0, 10)), 'succeeds after 3 failures');
  t.match(cache.stats(), { retries: 7, errors: 1 });
  t.ok(cache.hasPage(key, 0), 'the good page is cached');
});

t.test('a missing blob is not retried', async (t) => {
  const faults = new FaultInjectingStore(new MemoryBlobStore());
  const cache = new PageCache({ store: faults, pageSize: PS, backoffMs: 1 });
  await t.rejects(cache.read('a'.repeat(64), 100, 0, 10), { code: 'BlobMissing' });
  t.equal(faults.stats.calls.getRange, 1);
  t.match(cache.stats(), { retries: 0, errors: 1, cachedBytes: 0 });
});

t.test('random faults under a sequential read with readahead: every byte right or an error', async (t) => {
  const { mem, key, bytes } = await blob(64, 99);
  const faults = new FaultInjectingStore(mem, { failRate: 0.15, truncateRate: 0.15, seed: 42 });
  const cache = new PageCache({ store: faults, pageSize: PS, maxBytes: 16 * PS, backoffMs: 1, maxBackoffMs: 5, retries: 10 });
  const s = cache.openStream();
  for (let off = 0; off < bytes.length; off += 5000) {
    const b = await cache.read(key, bytes.length, off, 5000, s);
    if (!b.equals(bytes.subarray(off, off + 5000))) t.fail(`wrong bytes at ${off}`);
  }
  await cache.idle();
  const st = cache.stats();
  t.ok(st.retries > 0, `faults were retried (${st.retries})`);
  t.ok(faults.stats.injectedTruncations > 0 && faults.stats.injectedFailures > 0, 'both kinds of fault happened');
  t.ok(st.cachedBytes <= 16 * PS);
});

t.test('options are validated; close stops reads', async (t) => {
  const mem = new MemoryBlobStore();
  t.throws(() => new PageCache({ store: mem, pageSize: 0 }), { code: 'InvalidArgument' });
  t.throws(() => new PageCache({ store: mem, pageSize: 8192, maxBytes: 4096 }), { code: 'InvalidArgument' });
  const { key, bytes } = await (async () => {
    const b = randomBytes(100);
    return { key: (await mem.putStream(b)).key, bytes: b };
  })();
  const cache = new PageCache({ store: mem, pageSize: PS });
  t.ok((await cache.read(key, 100, 0, 100)).equals(bytes));
  await cache.close();
  t.equal(cache.stats().cachedBytes, 0);
  await t.rejects(cache.read(key, 100, 0, 100), { code: 'BlobUnavailable' });
});

// ── random access (issue 16): misses of a random stream fetch small units, not whole pages ──

const RPS = 64 * 1024; // pages of these tests
const RUS = 4096; // units

async function rblob(pages: number): Promise<{ store: CountingStore; key: string; bytes: Buffer }> {
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(pages * RPS);
  const { key } = await mem.putStream(bytes);
  return { store: new CountingStore(mem), key, bytes };
}

t.test('B3/random: two seeks in a row make a stream random; its misses fetch units, without readahead', async (t) => {
  const { store, key, bytes } = await rblob(64);
  const cache = new PageCache({ store, pageSize: RPS, unitSize: RUS, maxBytes: 64 * RPS, readaheadMax: 8 * RPS });
  const s = cache.openStream();
  const at = [40 * RPS + 100, 10 * RPS + 5000, 50 * RPS + 3 * RUS, 20 * RPS + RUS - 10, 33 * RPS];
  for (const off of at) t.ok((await cache.read(key, bytes.length, off, 4096, s)).equals(bytes.subarray(off, off + 4096)), `bytes at ${off}`);
  await cache.idle();
  t.ok(s.random, 'the stream is random');
  t.same(
    store.calls.map((c) => c.length),
    [2 * RUS, 2 * RUS, RUS, 2 * RUS, RUS],
    'only the units the reads touched (a read crossing a unit boundary: two, in one request), the first read too: a new stream is not known to read on',
  );
  t.same(store.calls.slice(1, 3).map((c) => c.offset), [10 * RPS + RUS, 50 * RPS + 3 * RUS], 'units are aligned');
  t.equal(cache.stats().prefetches, 0, 'no readahead for a random stream');
  t.match(cache.stats(), { toRandom: 1, toSequential: 0 });
  // A unit already in memory is a hit, synchronously too.
  const n = store.calls.length;
  t.ok((await cache.read(key, bytes.length, 50 * RPS + 3 * RUS + 8, 100, s)).equals(bytes.subarray(50 * RPS + 3 * RUS + 8, 50 * RPS + 3 * RUS + 108)));
  const lease = cache.readCachedSync(key, bytes.length, 10 * RPS + RUS, 2000, s);
  t.ok(lease && Buffer.concat(lease.parts).equals(bytes.subarray(10 * RPS + RUS, 10 * RPS + RUS + 2000)), 'readCachedSync answers from a cached unit');
  t.equal(store.calls.length, n, 'no fetch for cached units');
  t.equal(cache.stats().cachedBytes, 8 * RUS, 'memory holds eight units, no page');
});

t.test('B3/random: enough contiguous bytes make a random stream sequential again (pages, doubling window)', async (t) => {
  const { store, key, bytes } = await rblob(64);
  const cache = new PageCache({ store, pageSize: RPS, unitSize: RUS, maxBytes: 64 * RPS, readaheadMax: 8 * RPS });
  const s = cache.openStream();
  await cache.read(key, bytes.length, 30 * RPS, 100, s);
  await cache.read(key, bytes.length, 5 * RPS, 100, s);
  t.ok(s.random, 'random');
  // Now read on from 5 * RPS + 100 in 4 KiB steps: units until four units' worth, then pages.
  let off = 5 * RPS + 100;
  const lengths: boolean[] = [];
  const fetched: number[][] = [];
  const spans: Array<Array<[number, number]>> = [];
  for (let i = 0; i < 8; i++) {
    const n0 = store.calls.length;
    t.ok((await cache.read(key, bytes.length, off, 4096, s)).equals(bytes.subarray(off, off + 4096)));
    await cache.idle();
    fetched.push(store.calls.slice(n0).map((c) => c.length));
    spans.push(store.calls.slice(n0).map((c): [number, number] => [c.offset, c.length]).sort((x, y) => x[0] - y[0]));
    lengths.push(s.random);
    off += 4096;
  }
  t.same(lengths, [true, true, true, false, false, false, false, false], 'sequential again once four units (16 KiB) were read contiguously, counting the seek\'s 100 bytes');
  // The read that switches fetches only the unit it lacks, with no readahead: a random reader
  // lands near its previous read by chance now and then, and one page for it (plus one prefetched)
  // in a cache full of units sends thirty-two units to the GC. Pages from the next read on.
  t.same(fetched[3], [RUS], 'the read that made it sequential fetched one unit, no page');
  // Its page holds units 0–4 already (the random reads' and this run's): the page fetch copies
  // them and asks only for the gap (no byte twice); the next page comes whole, as readahead.
  t.same(spans[4], [[5 * RPS + 5 * RUS, RPS - 5 * RUS], [6 * RPS, RPS]], 'the next contiguous read: the rest of its page (the units it held copied, not fetched again) and one page of readahead');
  t.ok(s.window >= RPS, `readahead is back (window ${s.window})`);
  await cache.idle();
  t.ok(cache.stats().prefetches > 0, 'and prefetches pages');
  t.ok(store.calls.some((c) => c.offset === 6 * RPS && c.length === RPS), 'whole pages again');
  t.match(cache.stats(), { toRandom: 1, toSequential: 1 });
  // And random once more after two seeks. The first seek, after less than a page read
  // contiguously, is not known to read on: a unit, not a page.
  await cache.read(key, bytes.length, 60 * RPS, 100, s);
  await cache.idle();
  t.notOk(s.random, 'one seek: not random yet');
  t.has(store.calls.at(-1), { offset: 60 * RPS, length: RUS }, 'a seek after a short run fetches a unit');
  await cache.read(key, bytes.length, 2 * RPS, 100, s);
  t.ok(s.random, 'random again');
  t.equal(store.calls.at(-1)!.length, RUS, 'a unit');
  t.match(cache.stats(), { toRandom: 2, toSequential: 1 });
});

t.test('B3/random: one seek (a player jumping once) keeps whole pages; a page that lands drops its units', async (t) => {
  const { store, key, bytes } = await rblob(32);
  const cache = new PageCache({ store, pageSize: RPS, unitSize: RUS, maxBytes: 64 * RPS, readaheadMax: 4 * RPS });
  const s = cache.openStream();
  for (let off = 0; off < 3 * RPS; off += 16384) await cache.read(key, bytes.length, off, 16384, s);
  await cache.read(key, bytes.length, 20 * RPS, 16384, s); // one seek
  t.notOk(s.random, 'one seek is not random access');
  for (let off = 20 * RPS + 16384; off < 22 * RPS; off += 16384) await cache.read(key, bytes.length, off, 16384, s);
  await cache.idle();
  t.notOk(store.calls.some((c) => c.length !== RPS), 'only whole pages were fetched');
  // Units of page 10, then page 10 itself: the units go.
  const r = cache.openStream();
  await cache.read(key, bytes.length, 28 * RPS, 10, r);
  await cache.read(key, bytes.length, 10 * RPS, 10, r);
  await cache.read(key, bytes.length, 10 * RPS + 5 * RUS, 10, r);
  t.ok(r.random);
  const before = cache.stats().cachedBytes;
  await cache.read(key, bytes.length, 10 * RPS, RPS); // no stream: the whole page
  t.equal(cache.stats().cachedBytes, before - 2 * RUS + RPS, 'the page replaced its two units in memory');
  t.ok((await cache.read(key, bytes.length, 10 * RPS + 5 * RUS, 10, r)).equals(bytes.subarray(10 * RPS + 5 * RUS, 10 * RPS + 5 * RUS + 10)), 'served from the page');
});

t.test('a unit as large as a page turns random-access detection off', async (t) => {
  const { store, key, bytes } = await rblob(16);
  const cache = new PageCache({ store, pageSize: RPS, unitSize: RPS, maxBytes: 64 * RPS });
  const s = cache.openStream();
  for (const off of [9 * RPS, 2 * RPS, 13 * RPS, 5 * RPS]) await cache.read(key, bytes.length, off, 100, s);
  t.notOk(s.random);
  t.notOk(store.calls.some((c) => c.length !== RPS), 'pages only');
  t.equal(cache.stats().toRandom, 0);
});

/** A local blob store in a temp dir (removed at teardown) holding `size` random bytes as one blob. */
async function localBlob(t: Test, prefix: string, size: number): Promise<{ local: LocalBlobStore; bytes: Buffer; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const local = new LocalBlobStore(dir);
  t.teardown(() => local.close());
  const bytes = randomBytes(size);
  const { key } = await local.putStream(bytes);
  return { local, bytes, key };
}

t.test('B3/random: a random stream on a local store fetches missing units synchronously (readCachedSync)', async (t) => {
  const { local, bytes, key } = await localBlob(t, 'smhfs-pc-sync-', 32 * RPS + 5000);
  const cache = new PageCache({ store: local, pageSize: RPS, unitSize: RUS, maxBytes: 16 * RPS });
  const s = cache.openStream();
  t.equal(cache.readCachedSync(key, bytes.length, 20 * RPS, 100, s, true), undefined, 'a stream not known to be random: no sync fetch');
  await cache.read(key, bytes.length, 20 * RPS, 100, s); // opens the blob's descriptor
  await cache.read(key, bytes.length, 3 * RPS + 10, 100, s);
  t.ok(s.random, 'random now');
  const before = cache.stats();
  for (const off of [7 * RPS + 1, 30 * RPS + RUS - 50, 32 * RPS + 4000, 11 * RPS]) {
    const lease = cache.readCachedSync(key, bytes.length, off, 4096, s, true);
    t.ok(lease, `answered synchronously at ${off}`);
    t.ok(Buffer.concat(lease!.parts).equals(bytes.subarray(off, off + 4096)), `bytes at ${off}`);
  }
  const after = cache.stats();
  t.equal(after.misses - before.misses, 7, 'seven units fetched (three reads crossed a unit boundary)');
  t.equal(after.bytesFetched - before.bytesFetched, 6 * RUS + (5000 - RUS), 'only those units\' bytes (the last one short)');
  t.equal(cache.readCachedSync(key, bytes.length, 9 * RPS, 100, s, false), undefined, 'without fetchSync: only what is cached');
  const lease = cache.readCachedSync(key, bytes.length, 7 * RPS + 1, 100, s, false);
  t.ok(lease && Buffer.concat(lease.parts).equals(bytes.subarray(7 * RPS + 1, 7 * RPS + 101)), 'a unit fetched synchronously is cached like any other');
  t.ok(cache.stats().cachedBytes <= 16 * RPS, 'within budget');
});

/** A reader for the budget tests: reads through `cache`, counts wrong bytes, and calls `after` after each read. */
function budgetReader(cache: PageCache, key: string, bytes: Buffer, after: () => void) {
  const counts = { wrong: 0 };
  const check = async (s: ReturnType<PageCache['openStream']>, off: number, len: number): Promise<void> => {
    const lease = await cache.readLease(key, bytes.length, off, len, s);
    after();
    if (!Buffer.concat(lease.parts).equals(bytes.subarray(off, off + len))) counts.wrong++;
    lease.release();
  };
  return { check, counts };
}

t.test('B4: every buffer the cache holds (cached, in flight, lent, free in its pools) stays within the budget, sequential then random then sequential', async (t) => {
  const { local, bytes, key } = await localBlob(t, 'smhfs-pc-budget-', 128 * RPS);
  const budget = 16 * RPS;
  const cache = new PageCache({ store: local, pageSize: RPS, unitSize: RUS, maxBytes: budget, readaheadMax: 8 * RPS });
  let peak = 0;
  const { check, counts } = budgetReader(cache, key, bytes, () => (peak = Math.max(peak, cache.stats().bufferBytes)));
  // A sequential pass fills the cache and its page pool; random units then need room; a second
  // sequential pass needs pages again. Free pool buffers must give way, never add to the budget.
  const seq = cache.openStream();
  for (let off = 0; off < bytes.length; off += 50_000) await check(seq, off, Math.min(50_000, bytes.length - off));
  const rnd = cache.openStream();
  let x = 12345;
  for (let i = 0; i < 400; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    await check(rnd, x % (bytes.length - 4096), 4096);
  }
  t.ok(rnd.random, 'the second stream turned random');
  const seq2 = cache.openStream();
  for (let off = 0; off < bytes.length; off += 131_072) await check(seq2, off, Math.min(131_072, bytes.length - off));
  await cache.idle();
  t.equal(counts.wrong, 0, 'every read returned the right bytes');
  t.ok(cache.stats().unitFetches > 0, 'units were fetched');
  t.ok(peak <= budget, `buffer bytes peaked at ${peak} ≤ ${budget}`);
  t.ok(cache.stats().bufferBytes <= budget, 'and stay within it at rest');
});

t.test('B4/slabs: after a random phase fills the cache with units, a sequential read allocates nothing beyond the budget, lent units are never rewritten, and random again reuses the slabs', async (t) => {
  // Issue 16: units used to be buffers of their own; a page needing room in a cache full of them
  // dropped sixteen to the GC and allocated a new one (a mount then held both: 395 MiB RSS on a
  // 256 MiB cache). Units are now slots of page-size slabs, and a page takes a slab emptied whole.
  const { local, bytes, key } = await localBlob(t, 'smhfs-pc-slabs-', 128 * RPS);
  const budget = 16 * RPS;
  const cache = new PageCache({ store: local, pageSize: RPS, unitSize: RUS, maxBytes: budget, readaheadMax: 4 * RPS });
  let peakAllocated = 0;
  let peakBuffers = 0;
  const { check, counts } = budgetReader(cache, key, bytes, () => {
    peakAllocated = Math.max(peakAllocated, cache.stats().allocatedBytes);
    peakBuffers = Math.max(peakBuffers, cache.stats().bufferBytes);
  });
  let x = 4242;
  const next = (): number => (x = (x * 1103515245 + 12345) % 2 ** 31);
  const rnd = cache.openStream();
  for (let i = 0; i < 700; i++) await check(rnd, next() % (bytes.length - 4096), 4096);
  await cache.idle();
  t.ok(rnd.random, 'the first stream turned random');
  t.ok(cache.stats().unitFetches > (2 * budget) / RUS, `it fetched ${cache.stats().unitFetches} units: the cache filled with units and evicted`);
  t.ok(cache.stats().cachedBytes >= budget - 2 * RPS, `units fill the cache (${cache.stats().cachedBytes} of ${budget})`);

  // Three units lent to replies (leases held) across the sequential read: never moved, never rewritten.
  const lent: Array<{ off: number; lease: Awaited<ReturnType<PageCache['readLease']>>; copy: Buffer }> = [];
  for (const off of [3 * RPS + 5 * RUS, 77 * RPS + 9 * RUS + 100, 120 * RPS + 15 * RUS]) {
    const lease = await cache.readLease(key, bytes.length, off, 1000, rnd);
    lent.push({ off, lease, copy: Buffer.from(Buffer.concat(lease.parts)) });
  }
  const seq = cache.openStream();
  for (let off = 0; off < bytes.length; off += 20_000) await check(seq, off, Math.min(20_000, bytes.length - off));
  await cache.idle();
  t.notOk(seq.random, 'the second stream read sequentially (whole pages)');
  for (const l of lent) {
    t.ok(Buffer.concat(l.lease.parts).equals(l.copy) && l.copy.equals(bytes.subarray(l.off, l.off + 1000)), `the unit lent at ${l.off} still holds its bytes`);
    l.lease.release();
  }

  // Random again: units carved from the slabs the pages used.
  const rnd2 = cache.openStream();
  for (let i = 0; i < 700; i++) await check(rnd2, next() % (bytes.length - 4096), 4096);
  await cache.idle();
  t.ok(rnd2.random, 'the third stream turned random');
  t.equal(counts.wrong, 0, 'every read returned the right bytes');
  t.ok(peakAllocated <= budget, `the cache allocated ${peakAllocated / RPS} pages of buffers over the whole run ≤ ${budget / RPS} (the budget)`);
  t.ok(peakBuffers <= budget, `its buffers peaked at ${peakBuffers / RPS} pages ≤ ${budget / RPS}`);
  t.ok(cache.stats().bufferBytes <= budget, 'and stay within it at rest');
});

t.test('B3/near-sequential: the kernel\'s out-of-order 128 KiB readahead reads fetch every byte once', async (t) => {
  // fuse-native (and sometimes the ll binding) delivers the kernel's readahead reads slightly out
  // of order: the read at 128 KiB before the one at 0, 384 KiB before 256 KiB. The first of them
  // used to count as a seek (units fetched), and the page fetched next held those units again.
  const K128 = 128 * 1024;
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(8 * 1024 * 1024 + 5000);
  const { key } = await mem.putStream(bytes);
  const n = Math.ceil(bytes.length / K128);
  const swapped: number[] = [];
  for (let i = 0; i < n; i += 2) swapped.push(...(i + 1 < n ? [i + 1, i] : [i]));
  const lateFirst = [2, 1, 0, ...Array.from({ length: n - 3 }, (_, i) => i + 3)];
  for (const [mode, order, together] of [['pairs swapped', swapped, 1], ['pairs swapped, both in flight', swapped, 2], ['reads 2, 1, 0 then in order', lateFirst, 1]] as const) {
    const store = new CountingStore(mem);
    const cache = new PageCache({ store, maxBytes: 64 * 1024 * 1024 }); // 1 MiB pages, 64 KiB units: the mount's
    const s = cache.openStream();
    const got = Buffer.alloc(bytes.length);
    for (let j = 0; j < order.length; j += together) {
      await Promise.all(order.slice(j, j + together).map(async (i) => (await cache.read(key, bytes.length, i * K128, K128, s)).copy(got, i * K128)));
    }
    await cache.idle();
    t.ok(got.equals(bytes), `${mode}: every byte right`);
    t.equal(store.calls.reduce((a, c) => a + c.length, 0), bytes.length, `${mode}: every byte fetched once from the store`);
    t.match(cache.stats(), { bytesFetched: bytes.length, toRandom: 0, unitFetches: 0 }, `${mode}: no unit, never random`);
    t.equal(s.seeks, 0, `${mode}: no read counted as a seek`);
    await cache.close();
  }
});

t.test('B3/random: a page fetched over units in memory or in flight fetches only its gaps', async (t) => {
  const { store, key, bytes } = await rblob(16);
  const cache = new PageCache({ store, pageSize: RPS, unitSize: RUS, maxBytes: 64 * RPS, readaheadMax: 4 * RPS });
  const s = cache.openStream();
  // Random: two seeks; then small reads near each other in page 5 (units 0, 3, 8), then a run long
  // enough (units 9–12) to make the stream sequential again; its next read fetches page 5.
  for (const [off, len] of [[12 * RPS, 100], [5 * RPS + 10, 100], [5 * RPS + 3 * RUS, 100], [5 * RPS + 8 * RUS + 10, 100], [5 * RPS + 9 * RUS, 4 * RUS]] as const) {
    t.ok((await cache.read(key, bytes.length, off, len, s)).equals(bytes.subarray(off, off + len)), `bytes at ${off}`);
  }
  t.notOk(s.random, 'sequential again');
  t.match(cache.stats(), { toRandom: 1, toSequential: 1 });
  await cache.idle();
  const n0 = store.calls.length;
  const fetched0 = cache.stats().bytesFetched;
  const off = 5 * RPS + 13 * RUS;
  t.ok((await cache.read(key, bytes.length, off, 4096, s)).equals(bytes.subarray(off, off + 4096)));
  await cache.idle();
  const page5 = store.calls.slice(n0).filter((c) => c.offset >= 5 * RPS && c.offset < 6 * RPS).map((c) => [c.offset - 5 * RPS, c.length]);
  t.same(page5.sort((a, b) => a[0]! - b[0]!), [[RUS, 2 * RUS], [4 * RUS, 4 * RUS], [13 * RUS, 3 * RUS]], 'page 5: one request per gap between the units it held (0, 3, 8–12)');
  t.ok(cache.hasPage(key, 5), 'page 5 cached');
  t.ok((await cache.read(key, bytes.length, 5 * RPS, RPS)).equals(bytes.subarray(5 * RPS, 6 * RPS)), 'page 5 holds every byte right');
  t.equal(cache.stats().unitBytesReused, 7 * RUS, 'seven units copied, not fetched again');
  t.equal(cache.stats().bytesFetched - fetched0, RPS - 7 * RUS + RPS, 'bytes fetched: the gaps, and page 6 (readahead)');

  // Units still in flight when the page fetch starts: it waits for them, then copies them.
  const r = cache.openStream();
  await cache.read(key, bytes.length, 14 * RPS, 100, r);
  await cache.read(key, bytes.length, 9 * RPS + 10, 100, r); // random now; unit 0 of page 9 cached
  t.ok(r.random);
  store.hold();
  const n1 = store.calls.length;
  const unit5 = cache.read(key, bytes.length, 9 * RPS + 5 * RUS, 100, r);
  const page9 = cache.read(key, bytes.length, 9 * RPS, RPS); // no stream: the whole page
  await new Promise((res) => setImmediate(res));
  t.same(store.calls.slice(n1).map((c) => [c.offset - 9 * RPS, c.length]), [[5 * RUS, RUS]], 'the page fetch waits for the unit in flight');
  store.open();
  t.ok((await unit5).equals(bytes.subarray(9 * RPS + 5 * RUS, 9 * RPS + 5 * RUS + 100)));
  t.ok((await page9).equals(bytes.subarray(9 * RPS, 10 * RPS)), 'the page: every byte right');
  await cache.idle();
  const got9 = store.calls.slice(n1).map((c) => [c.offset - 9 * RPS, c.length]).sort((a, b) => a[0]! - b[0]!);
  t.same(got9, [[RUS, 4 * RUS], [5 * RUS, RUS], [6 * RUS, 10 * RUS]], 'then fetches only the gaps around units 0 and 5');
  t.equal(got9.reduce((a, c) => a + c[1]!, 0) + RUS, RPS, 'with unit 0 fetched before: each byte of page 9 fetched once');
});

t.test('B2/B3 priority: a promoted prefetch run still waiting for units in flight enters the queue at read priority', async (t) => {
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(64 * RPS);
  const { key } = await mem.putStream(bytes);
  const store = new RangeCountingStore(mem);
  const size = bytes.length;
  const cache = new PageCache({ store, pageSize: RPS, unitSize: RUS, maxBytes: 256 * RPS, concurrency: 1, readaheadMax: 16 * RPS, maxRequestBytes: 4 * RPS });
  const r = cache.openStream();
  await cache.read(key, size, 40 * RPS, 100, r);
  await cache.read(key, size, 30 * RPS + 10, 100, r);
  t.ok(r.random, 'a random stream');
  store.hold();
  const n0 = store.calls.length;
  const unit = cache.read(key, size, 18 * RPS + 5 * RUS, 100, r); // a unit of page 18, held in flight
  const s = cache.openStream();
  // As above: the stream's reads queue prefetch runs; the one over pages 16–19 first waits,
  // outside the queue, for the unit of page 18.
  const reads = [0, 1, 2, 3, 4].map((p) => cache.read(key, size, p * RPS, RPS, s));
  const late = cache.read(key, size, 18 * RPS, RPS);
  store.open();
  const got = await Promise.all([unit, ...reads, late]);
  await cache.idle();
  t.ok(got.at(-1)!.equals(bytes.subarray(18 * RPS, 19 * RPS)), 'the read gets its bytes');
  const calls = store.calls.slice(n0).map((c) => [c.offset / RPS, c.length / RPS]);
  t.comment(JSON.stringify(calls));
  const page = (c: number[]): number => Math.floor(c[0]!);
  const first16 = calls.findIndex((c) => page(c) >= 16 && page(c) <= 19 && c[1]! >= 1);
  const first5 = calls.findIndex((c) => page(c) === 5);
  t.ok(first16 >= 0 && first5 >= 0, 'both fetched');
  t.ok(first16 < first5, 'the run over pages 16–19 went before the prefetches queued ahead of it');
  await cache.close();
});

t.test('B3/random: real seeks still make a stream random and a contiguous run sequential again; near-sequential reads are no seeks', async (t) => {
  const { store, key, bytes } = await rblob(64);
  const cache = new PageCache({ store, pageSize: RPS, unitSize: RUS, maxBytes: 64 * RPS, readaheadMax: 8 * RPS });
  const s = cache.openStream();
  const read = async (off: number, len = 4096): Promise<void> => {
    t.ok((await cache.read(key, bytes.length, off, len, s)).equals(bytes.subarray(off, off + len)), `bytes at ${off}`);
  };
  // A first read within two pages of offset 0, then one back at 0, then two pages past the end
  // of the last read: one stream, no seek.
  await read(RPS + 100);
  await read(0);
  await read(RPS + 4196 + 2 * RPS);
  t.equal(s.seeks, 0, 'near-sequential: no seek');
  t.ok(s.window > 0, 'readahead on');
  // Back to before the page the run began in, or further ahead than two pages (and the window): seeks.
  await read(40 * RPS); // far ahead: seek 1
  t.equal(s.seeks, 1);
  t.notOk(s.random, 'one seek: not random');
  await read(40 * RPS + 8192 + 8192); // near, ahead
  await read(40 * RPS - RPS); // one page back, but before the page the run began in: seek 2 (a near read between: not in a row)
  t.equal(s.seeks, 2, 'a read back before the page the run began in is a seek');
  t.notOk(s.random, 'seeks not in a row: not random');
  await read(20 * RPS); // seek 3, second in a row
  t.ok(s.random, 'two seeks in a row: random');
  t.equal(store.calls.at(-1)!.length, RUS, 'a unit');
  for (let off = 20 * RPS + 4096; off < 20 * RPS + 4 * RUS + 4096; off += 4096) await read(off);
  t.notOk(s.random, 'four units read contiguously: sequential again');
  await read(50 * RPS);
  await read(3 * RPS);
  t.ok(s.random, 'and random once more after two real seeks');
  t.match(cache.stats(), { toRandom: 2, toSequential: 1 });
  await cache.idle();
});
