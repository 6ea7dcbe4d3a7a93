/**
 * Child process for test/blob-read-memory.test.ts (B4: the read path's memory bound) and for
 * profiling the cold S3 read without FUSE in the way.
 *
 *   node dist/test/helpers/read-memory-child.js '<json ReadMemoryJob>'
 *
 * Reads one blob through a PageCache (over s3rver or a local store, with or without a disk
 * cache) the way the mount does — reads copied out of a lease into a reply buffer, synchronously
 * when the bytes are in memory (or a local random reader's unit), else asynchronously —
 * sequentially, or at random with two readers (4 KiB then 128 KiB reads). RSS is the kernel's:
 * the baseline is taken after a warm-up read (modules loaded, sockets open), then the peak
 * counter is reset (/proc/self/clear_refs 5) and VmHWM read at the end. Prints one JSON line.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { DiskCache, pendingWriteAllowance } from '../../src/blob/disk-cache.js';
import { LocalBlobStore } from '../../src/blob/local-store.js';
import { PageCache, type ReadStream } from '../../src/blob/page-cache.js';
import type { BlobStore } from '../../src/blob/types.js';
import { s3rverStore } from './s3rver-harness.js';

export interface ReadMemoryJob {
  /** s3rver endpoint, or a local blob folder. */
  endpoint?: string;
  bucket?: string;
  prefix?: string;
  localDir?: string;
  key: string;
  size: number;
  cacheBytes: number;
  /** mixed: random, then the whole blob sequentially with a new stream (one cache, as one mount). */
  pattern: 'sequential' | 'random' | 'mixed';
  /** Random: how many 4 KiB reads each of the two readers makes first (default 1,000). */
  reads4k?: number;
  /** Random: the 128 KiB half goes on until the cache has fetched this much (a loaded machine reads less per second). */
  minFetched?: number;
  diskDir?: string;
}

export interface ReadMemoryResult {
  baselineRss: number;
  peakRss: number;
  /** Largest PageCache bufferBytes seen (sampled after every read). */
  peakBufferBytes: number;
  /** ArrayBuffer memory (every Buffer, garbage not yet collected included): at the start, and its peak (sampled every 16 reads). */
  baselineArrayBuffers: number;
  peakArrayBuffers: number;
  /** V8 heap (heapTotal) at the start and its peak. */
  baselineHeap: number;
  peakHeap: number;
  bytesRead: number;
  bytesFetched: number;
  /** Page and unit buffers the cache allocated new (not from its pool) during the measured reads. */
  allocatedBytes: number;
  /** Of bytesFetched: what the warm-up read fetched (its page and readahead). */
  warmupFetched: number;
  /** PageCache stats at the end: unit fetches, stream flips. */
  unitFetches: number;
  toRandom: number;
  toSequential: number;
  /** The disk cache's writes dropped (count, bytes), when there is one. */
  diskDropped?: number;
  diskBytesDropped?: number;
  /** Mixed: SHA-256 of the sequential half's bytes (the whole blob), and the cache's allocations before it. */
  seqSha256?: string;
  allocatedBeforeSeq?: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  ms: number;
}

function status(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]) * 1024;
}

const job = JSON.parse(process.argv[2] ?? '') as ReadMemoryJob;
const store: BlobStore = job.endpoint
  ? s3rverStore({ endpoint: job.endpoint }, job.bucket ?? 'bucket', job.prefix ?? '')
  : new LocalBlobStore(job.localDir ?? '');
let disk: DiskCache | undefined;
if (job.diskDir) {
  disk = new DiskCache({ dir: job.diskDir, maxBytes: 4 * 2 ** 30, maxPendingWriteBytes: pendingWriteAllowance(job.cacheBytes) });
  await disk.open();
}
const cache = new PageCache({ store, maxBytes: job.cacheBytes, readaheadMax: 64 * 2 ** 20, ...(disk ? { disk } : {}) });
const reply = Buffer.alloc(128 * 1024);
let peakBufferBytes = 0;
let bytesRead = 0;

async function readAt(stream: ReadStream, offset: number, length: number): Promise<void> {
  // As the mount does (src/fuse/adapter.ts): in memory, or a local random reader's unit, answered
  // synchronously; else the async way.
  const lease = cache.readCachedSync(job.key, job.size, offset, length, stream, true) ?? (await cache.readLease(job.key, job.size, offset, length, stream));
  try {
    const n = lease.copyTo(reply);
    bytesRead += n;
    hash?.update(reply.subarray(0, n));
  } finally {
    lease.release();
  }
  peakBufferBytes = Math.max(peakBufferBytes, cache.stats().bufferBytes);
  if (++reads % 16 === 0) {
    const m = process.memoryUsage();
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
    peakHeap = Math.max(peakHeap, m.heapTotal);
  }
}
let reads = 0;
let hash: ReturnType<typeof createHash> | undefined;
let allocatedBeforeSeq: number | undefined;
let peakArrayBuffers = 0;
let peakHeap = 0;

// Warm-up: load every module the read path uses and open a connection, then forget it.
await readAt(cache.openStream(), 0, 4096);
await cache.idle();
cache.clear();
bytesRead = 0;
const allocated0 = cache.stats().allocatedBytes;
const warmupFetched = cache.stats().bytesFetched;
const baselineArrayBuffers = process.memoryUsage().arrayBuffers;
const baselineHeap = process.memoryUsage().heapTotal;
const baselineRss = status('VmRSS');
writeFileSync('/proc/self/clear_refs', '5'); // reset VmHWM to the current RSS
const cpu0 = process.cpuUsage();
const t0 = Date.now();

const sequential = async (): Promise<void> => {
  const s = cache.openStream();
  for (let off = 0; off < job.size; off += reply.length) await readAt(s, off, reply.length);
};
if (job.pattern === 'sequential') {
  await sequential();
} else {
  // Counts, not times, and one seeded sequence per reader: which reads land next to the last one
  // (a stream turning sequential, which fetches a page) must not depend on the machine's speed or
  // on how two readers interleave. The 4 KiB half reads a fixed number of blocks; the 128 KiB half
  // goes on until it has made the cache fetch minFetched more (filled and evicting again).
  // Bounded: a reader that cannot reach minFetched in a minute leaves it to the test's assertion.
  const giveUp = Date.now() + 60_000;
  const sequence = (seed: number) => (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const reader = async (blockSize: number, seed: number, reads: number, minFetched: number): Promise<void> => {
    const s = cache.openStream();
    const rand = sequence(seed);
    const fetched0 = cache.stats().bytesFetched; // this half's own fetches count
    for (let i = 0; (i < reads || cache.stats().bytesFetched - fetched0 < minFetched) && Date.now() < giveUp; i++) {
      const off = Math.floor((rand() * (job.size - blockSize)) / blockSize) * blockSize;
      await readAt(s, off, blockSize);
    }
  };
  for (const [block, reads, minFetched] of [[4096, job.reads4k ?? 1000, 0], [128 * 1024, 0, job.minFetched ?? 0]] as const) {
    await Promise.all([reader(block, 12345 + block, reads, minFetched), reader(block, 54321 + block, reads, minFetched)]);
  }
  if (job.pattern === 'mixed') {
    // The cache is full of units now; a sequential reader needs whole pages (issue 16: 395 MiB).
    await cache.idle();
    allocatedBeforeSeq = cache.stats().allocatedBytes - allocated0;
    hash = createHash('sha256');
    bytesRead = 0; // mixed: bytesRead is the sequential half's
    await sequential();
  }
}
await cache.idle();
await disk?.idle();
const cpu = process.cpuUsage(cpu0);
const result: ReadMemoryResult = {
  baselineRss,
  peakRss: status('VmHWM'),
  peakBufferBytes,
  baselineArrayBuffers,
  peakArrayBuffers,
  baselineHeap,
  peakHeap,
  bytesRead,
  bytesFetched: cache.stats().bytesFetched,
  allocatedBytes: cache.stats().allocatedBytes - allocated0,
  warmupFetched,
  unitFetches: cache.stats().unitFetches,
  toRandom: cache.stats().toRandom,
  toSequential: cache.stats().toSequential,
  ...(hash ? { seqSha256: hash.digest('hex'), allocatedBeforeSeq } : {}),
  ...(disk ? { diskDropped: disk.stats().writesDropped, diskBytesDropped: disk.stats().bytesDropped } : {}),
  cpuUserMs: cpu.user / 1000,
  cpuSystemMs: cpu.system / 1000,
  ms: Date.now() - t0,
};
await cache.close();
await store.close?.();
process.stdout.write(`${JSON.stringify(result)}\n`);
