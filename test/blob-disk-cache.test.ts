// The on-disk cache (issue 16), format v2 (one file per segment of a blob, pages and units at
// their offsets, a CRC record per unit): a page is served only after it verifies (torn,
// truncated, zero-filled or misplaced bytes never are), a blob's pages share a few files, an
// older format's folder is never read, LRU eviction under a size limit, concurrent readers of
// one page make one fetch, kill -9 mid-write then a reopen serves only verified pages, faults on
// the cache disk (ENOSPC, EIO) fall back to the store (S3) with the right bytes, one process per
// cache folder, and a "remount" reads a blob again with 0 bytes from S3.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiskCache, headerSize, type DiskCacheOptions } from '../src/blob/disk-cache.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { PageCache } from '../src/blob/page-cache.js';
import { s3rverStore, startS3rver } from './helpers/s3rver-harness.js';
import type { BlobInfo, BlobStore } from '../src/blob/types.js';
import type { Readable } from 'node:stream';
import { pageBytes } from './helpers/disk-cache.js';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { nativeCrc32, nativeDirectIoAligned, nativePageAllocator } from '../src/fuse/ll/binding.js';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
const KiB = 1024;
const PS = 64 * KiB; // pages
const US = 16 * KiB; // check units (and random-read units)
const SEG = 4 * PS; // four pages per cache file
const HERE = dirname(fileURLToPath(import.meta.url));

const work = await mkdtemp(join(tmpdir(), 'smhfs-disk-cache-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
let dirs = 0;
const newDir = (): string => join(work, `cache-${++dirs}`);

/** A DiskCache, opened, closed at teardown; log lines collected. */
async function disk(t: Test, extra: Partial<DiskCacheOptions> & { dir?: string } = {}): Promise<{ d: DiskCache; logs: string[] }> {
  const logs: string[] = [];
  const d = new DiskCache({ dir: newDir(), maxBytes: 64 * PS, unitSize: US, segmentSize: SEG, log: (l) => logs.push(l), ...extra });
  await d.open();
  t.teardown(() => d.close());
  return { d, logs };
}


/** Every getRange the page cache sends, counted. */
class CountingStore implements BlobStore {
  readonly description = 'counting';
  calls = 0;
  bytes = 0;
  constructor(readonly inner: BlobStore) {}
  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.calls++;
    const b = await this.inner.getRange(key, offset, length);
    this.bytes += b.length;
    return b;
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

async function cacheFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(join(dir, 'v2'))) for (const n of await readdir(join(dir, 'v2', sub))) out.push(join(dir, 'v2', sub, n));
  return out;
}

const fileOf = (dir: string, files: string[], key: string, segment: number): string =>
  files.find((f) => f.endsWith(`/${key}-${segment}`)) ?? `${dir}: no file for segment ${segment}`;

t.test('extents round-trip: pages, units read out of a page, lone units, all in one file; counters', async (t) => {
  const { d } = await disk(t);
  const key = 'a'.repeat(64);
  const page = pageBytes(key, 0, PS);
  const tail = randomBytes(PS / 2 + 100); // a short last page: units of it end early
  await d.write(key, 0, page);
  await d.write(key, PS, tail);
  await d.write(key, 3 * PS + US, page.subarray(0, US)); // a lone unit
  t.ok(d.has(key, 0, PS) && d.has(key, PS, tail.length) && d.has(key, 3 * PS + US, US), 'indexed');
  t.ok(d.has(key, 0, US) && d.has(key, PS + US, US), 'the units of a stored page are stored');
  t.notOk(d.has(key, 3 * PS, PS), 'a page of which one unit is stored is not');
  t.notOk(d.has(key, PS, PS), 'nor a range past the blob\'s last (short) unit');

  const buf = Buffer.alloc(PS);
  t.ok(await d.read(key, 0, PS, 0, buf), 'page read back');
  t.ok(buf.equals(page), 'its bytes');
  const unit = Buffer.alloc(US);
  t.ok(await d.read(key, 0, PS, 2 * US, unit), 'a unit out of the page file');
  t.ok(unit.equals(page.subarray(2 * US, 3 * US)), 'its bytes');
  const last = Buffer.alloc(tail.length - 2 * US);
  t.ok(await d.read(key, PS, tail.length, PS + 2 * US, last), 'the short last unit of a short page');
  t.ok(last.equals(tail.subarray(2 * US)));
  t.ok(await d.read(key, 3 * PS + US, US, 3 * PS + US, unit) && unit.equals(page.subarray(0, US)), 'a lone unit');
  t.notOk(await d.read(key, 0, PS, 100, unit), 'not on a unit boundary: refused, not guessed');
  t.notOk(await d.read(key, 5 * PS, PS, 5 * PS, buf), 'absent: a miss');

  const st = d.stats();
  t.match(st, { state: 'on', hits: 4, writes: 3, bytesWritten: PS + tail.length + US, entries: 1, corrupt: 0, errors: 0 });
  t.equal(st.bytes, headerSize(SEG, US) + PS + tail.length + US, 'bytes held, the header included');
  t.equal((await cacheFiles(d.dir)).length, 1, 'one file holds the three extents (format v1: three)');
  t.equal(st.misses, 2);
  await d.write(key, 0, page);
  t.equal(d.stats().writes, 3, 'an extent already stored is not written again');
});

t.test('contiguous writes go out together: one write per cache file, not one per page', async (t) => {
  // The page cache queues the pages of one store request in one go (a sequential read): they
  // are written as one batch per segment file (a pwritev of the pages, then one record write),
  // instead of open/write/write/close per page (issue 16: a cold S3 read's CPU). The fault hook
  // sees each file write once.
  const writes: string[] = [];
  const { d } = await disk(t, { maxBytes: 64 * SEG, faults: (op, path) => void (op === 'write' && writes.push(path)) });
  const key = 'b'.repeat(64);
  const pages = Array.from({ length: 6 }, (_, i) => pageBytes(key, i, PS));
  const lone = pageBytes(key, 9, PS);
  // Pages 0–5 (two segment files: SEG is four pages), and page 9, not contiguous with them.
  const done = [...pages.map((p, i) => d.write(key, i * PS, p)), d.write(key, 9 * PS, lone)];
  await Promise.all(done);
  await d.idle();
  t.equal(writes.length, 3, `file writes: pages 0–3, pages 4–5 (the next file), page 9 (${writes.length})`);
  t.equal(new Set(writes).size, 3, 'each to its own file');
  t.equal(d.stats().writes, 7, 'seven extents written');
  t.equal(d.stats().bytesWritten, 7 * PS);
  const buf = Buffer.alloc(PS);
  for (const [i, p] of [...pages.entries(), [9, lone] as const]) {
    t.ok((await d.read(key, i * PS, PS, i * PS, buf)) && buf.equals(p), `page ${i} read back, verified`);
  }
  // The files stay open between writes (a few at most): a later write to a file still works,
  // and eviction (which deletes files) leaves nothing half-written behind.
  await d.write(key, 8 * PS, pageBytes(key, 8, PS));
  t.ok((await d.read(key, 8 * PS, PS, 8 * PS, buf)) && buf.equals(pageBytes(key, 8, PS)), 'page 8 into the file page 9 is in');
  t.equal(writes.length, 4);
});

t.test('the addon\'s CRC-32 gives zlib\'s results; the cache checks with the one it is given, in the same format', async (t) => {
  // A mount passes the libfuse 3 addon's CRC-32 (PCLMUL): Node's bundled zlib takes its table
  // path, and checking every byte written was the largest single cost of a cold S3 read with
  // the disk cache (issue 16). Same results as zlib's, so the format does not change.
  const native = nativeCrc32();
  t.ok(native, 'the addon has a CRC-32');
  const crc = native ?? zlibCrc32; // (without it, the checks below still run, and the cache's fails)
  const data = randomBytes(1024 * KiB + 200);
  let same = 0;
  let cases = 0;
  for (const n of [0, 1, 15, 16, 63, 64, 65, 127, 128, 1000, 4096 + 7, US, PS, 1024 * KiB, 1024 * KiB + 13]) {
    for (const [off, seed] of [[0, 0], [3, 0xffffffff], [17, 0x12345678]] as const) {
      cases++;
      if (crc(data.subarray(off, off + n), seed) === zlibCrc32(data.subarray(off, off + n), seed)) same++;
    }
  }
  t.equal(same, cases, `zlib's value for every length and seed (${same} of ${cases})`);
  let calls = 0;
  const counted = (d: Uint8Array, s?: number): number => (calls++, crc(d, s));
  const dir = newDir();
  const key = 'e'.repeat(64);
  const page = pageBytes(key, 1, PS);
  {
    const { d } = await disk(t, { dir, crc32: counted });
    await d.write(key, PS, page);
    await d.close();
  }
  t.ok(calls >= PS / US, `the cache used the CRC-32 it was given (${calls} calls)`);
  const { d } = await disk(t, { dir }); // node:zlib's
  const buf = Buffer.alloc(PS);
  t.ok((await d.read(key, PS, PS, PS, buf)) && buf.equals(page), 'what it wrote verifies with zlib\'s: one format');
  t.equal(d.stats().corrupt, 0);
});

t.test('the addon\'s page buffers: 4096-aligned (2 MiB slabs), plain buffers for other sizes; aligned() tells', async (t) => {
  // A mount's page cache takes its page buffers from the addon (huge-page slabs: one page fault
  // per 2 MiB), and the disk cache writes what is aligned with O_DIRECT (issue 16).
  const alloc = nativePageAllocator();
  const aligned = nativeDirectIoAligned();
  t.ok(alloc && aligned, 'the addon has a page allocator and an alignment check');
  if (!alloc || !aligned) return;
  const pages = Array.from({ length: 5 }, () => alloc(1024 * KiB));
  t.same(pages.map((b) => b.length), [1024 * KiB, 1024 * KiB, 1024 * KiB, 1024 * KiB, 1024 * KiB]);
  t.equal(pages.filter((b) => aligned(b)).length, 5, 'every page buffer is aligned');
  pages.forEach((b, i) => b.fill(i + 1));
  t.ok(pages.every((b, i) => b[0] === i + 1 && b[b.length - 1] === i + 1), 'each its own memory (no overlap)');
  t.equal(aligned(pages[0]!.subarray(1)), false, 'an odd address is not aligned');
  t.equal(aligned(pages[0]!.subarray(0, 4095)), false, 'nor an odd length');
  t.equal(aligned(Buffer.allocUnsafeSlow(64 * KiB + 1).subarray(1)), false);
  const big = alloc(3 * 1024 * KiB);
  t.ok(big.length === 3 * 1024 * KiB && aligned(big), 'a size over 2 MiB: a slab of its own');
  const odd = alloc(10_000);
  t.equal(odd.length, 10_000, 'a size that is not a multiple of 4096: a plain buffer');
});

t.test('O_DIRECT: aligned page buffers are written past the kernel\'s page cache, the rest buffered; both verify', async (t) => {
  const alloc = nativePageAllocator();
  const directIo = nativeDirectIoAligned();
  t.ok(alloc && directIo, 'the addon is there');
  if (!alloc || !directIo) return;
  const dir = newDir();
  const key = 'a1'.repeat(32);
  const blob = Buffer.concat([0, 1, 2, 3, 4].map((i) => pageBytes(key, i, PS))).subarray(0, 4 * PS + US + 333);
  const targets = [0, 1, 2, 3].map((i) => {
    const b = alloc(PS);
    blob.copy(b, 0, i * PS, (i + 1) * PS);
    return b;
  });
  const tail = Buffer.from(blob.subarray(4 * PS)); // a blob's short last page: a plain buffer
  {
    const { d, logs } = await disk(t, { dir, directIo });
    // Queued together: one batch (two segment files); the aligned pages go out with O_DIRECT.
    await Promise.all([...targets.map((b, i) => d.write(key, i * PS, b)), d.write(key, 4 * PS, tail)]);
    await d.idle();
    const st = d.stats();
    t.equal(st.bytesWrittenDirect, 4 * PS, 'the four aligned pages with O_DIRECT');
    t.equal(st.bytesWritten, blob.length, 'the short last page too (buffered)');
    t.same(logs, [], 'no complaint');
    await d.close();
  }
  // Another cache over the folder (a remount): every byte from the files, verified.
  const { d } = await disk(t, { dir, directIo });
  for (let i = 0; i < 4; i++) {
    const buf = Buffer.alloc(PS);
    t.ok((await d.read(key, i * PS, PS, i * PS, buf)) && buf.equals(blob.subarray(i * PS, (i + 1) * PS)), `page ${i} verifies after a reopen`);
  }
  const back = Buffer.alloc(US + 333);
  t.ok((await d.read(key, 4 * PS, US + 333, 4 * PS, back)) && back.equals(tail), 'the short last page verifies');
  t.equal(d.stats().corrupt, 0);
});

t.test('a file system that refuses O_DIRECT (EINVAL): one line, the bytes written the buffered way, verified', async (t) => {
  // Told every buffer is aligned while none is (odd addresses): the kernel answers EINVAL, as a
  // file system without O_DIRECT does. The cache turns O_DIRECT off and writes through the page cache.
  const dir = newDir();
  const key = 'b2'.repeat(32);
  const odd = (i: number): Buffer => {
    const b = Buffer.allocUnsafeSlow(PS + 1).subarray(1);
    pageBytes(key, i, PS).copy(b);
    return b;
  };
  const { d, logs } = await disk(t, { dir, directIo: () => true });
  await d.write(key, 0, odd(0));
  await d.write(key, 2 * PS, odd(2));
  await d.idle();
  t.equal(d.stats().bytesWrittenDirect, 0, 'nothing went out with O_DIRECT');
  t.equal(d.stats().bytesWritten, 2 * PS, 'both pages written');
  t.equal(logs.filter((l) => /refuses O_DIRECT/.test(l)).length, 1, 'one line, once');
  t.equal(d.state, 'on', 'writes stay on');
  for (const i of [0, 2]) {
    const buf = Buffer.alloc(PS);
    t.ok((await d.read(key, i * PS, PS, i * PS, buf)) && buf.equals(pageBytes(key, i, PS)), `page ${i} verifies`);
  }
});

t.test('CRCs computed as the bytes land are the records\' own; a wrong one is a miss, never wrong bytes', async (t) => {
  // The page cache feeds landingCrcs each run of bytes as the socket lands it (hot in the CPU's
  // cache) and hands the CRCs to write(): the write does not read the bytes back (issue 16).
  const { d } = await disk(t, { maxBytes: 64 * SEG });
  const key = 'c'.repeat(64);
  const blob = Buffer.concat([pageBytes(key, 0, PS), pageBytes(key, 1, PS), pageBytes(key, 2, PS).subarray(0, US + 333)]);
  const targets = [Buffer.alloc(PS), Buffer.alloc(PS), Buffer.alloc(US + 333)];
  const tracker = d.landingCrcs(key, 0, targets)!;
  t.ok(tracker, 'a tracker while writes are on');
  // Socket-sized runs that straddle units (7 KiB steps against 16 KiB units), never a target.
  let pos = 0;
  for (const [i, tg] of targets.entries()) {
    for (let p = 0; p < tg.length; p += 7 * KiB) {
      const n = Math.min(7 * KiB, tg.length - p);
      blob.copy(tg, p, pos + p, pos + p + n);
      tracker.feed(tg.subarray(p, p + n));
    }
    pos += targets[i]!.length;
  }
  const crcs = targets.map((_, i) => tracker.crcsOf(i));
  t.same(crcs.map((c) => c?.length), [PS / US, PS / US, 2], 'one CRC per unit of each target');
  // Written with them: read back and verified, like a write that computed its own.
  await Promise.all(targets.map((tg, i) => d.write(key, i * PS, tg, crcs[i])));
  await d.idle();
  t.equal(d.stats().bytesCrcLanded, blob.length, 'every byte written with the CRCs computed as it landed');
  const buf = Buffer.alloc(PS);
  t.ok((await d.read(key, 0, PS, 0, buf)) && buf.equals(blob.subarray(0, PS)), 'page 0 verifies');
  const tail = Buffer.alloc(US + 333);
  t.ok((await d.read(key, 2 * PS, US + 333, 2 * PS, tail)) && tail.equals(blob.subarray(2 * PS)), 'the short last page verifies');
  t.equal(d.stats().corrupt, 0);
  // A wrong CRC (bytes changed after they were fed): the unit is a miss, never served.
  const other = 'd'.repeat(64);
  const bad = new Uint32Array(PS / US).fill(0x12345678);
  await d.write(other, 0, pageBytes(other, 0, PS), bad);
  await d.idle();
  t.notOk(await d.read(other, 0, PS, 0, buf), 'a record that does not match its bytes: a miss');
  t.equal(d.stats().corrupt, 1, 'counted as corrupt');
  // Bytes fed out of place, or not all of them: no CRCs (the write computes its own).
  const t2 = [Buffer.alloc(PS)];
  const off = d.landingCrcs(key, 0, t2)!;
  off.feed(t2[0]!.subarray(US, 2 * US));
  off.feed(t2[0]!.subarray(0, PS));
  t.equal(off.crcsOf(0), undefined, 'a run not where the next bytes land: none');
  const part = d.landingCrcs(key, 0, t2)!;
  part.feed(t2[0]!.subarray(0, PS - 1));
  t.equal(part.crcsOf(0), undefined, 'a target not full: none');
  t.equal(d.landingCrcs(key, 100, t2), undefined, 'not on a unit: no tracker');
});

t.test('a torn, truncated, zeroed, bit-flipped or misplaced unit is never served', async (t) => {
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(16 * PS);
  const { key } = await mem.putStream(bytes);
  const store = new CountingStore(mem);
  const dir = newDir();
  {
    const { d } = await disk(t, { dir });
    const cache = new PageCache({ store, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d });
    t.ok((await cache.read(key, bytes.length, 0, bytes.length)).equals(bytes));
    await cache.close();
  }
  const files = await cacheFiles(dir);
  t.equal(files.length, 4, 'sixteen pages in four files (format v1: sixteen)');
  const hs = headerSize(SEG, US);
  const unitsPerPage = PS / US;
  const [a, b, c, e] = [0, 1, 2, 3].map((i) => fileOf(dir, files, key, i)) as [string, string, string, string];
  // File a (pages 0-3): a data bit flipped in page 0, page 1's data zero-filled (a record whose
  // data never reached the disk), a record's CRC changed for page 2; page 3 intact.
  await flip(a, hs + 3 * US + 5);
  await overwrite(a, hs + PS, Buffer.alloc(PS));
  await flip(a, 64 + 2 * unitsPerPage * 8);
  // File b (pages 4-7): cut in the middle of page 5 (a torn write): 4 intact, 5-7 gone.
  await truncate(b, hs + PS + PS / 2);
  // File c (pages 8-11): its header zero-filled; file e (pages 12-15): file a's bytes under its name.
  await overwrite(c, 0, Buffer.alloc(hs));
  await writeFile(e, await readFile(a));

  const logs: string[] = [];
  const d2 = new DiskCache({ dir, maxBytes: 64 * PS, unitSize: US, segmentSize: SEG, log: (l) => logs.push(l) });
  await d2.open();
  t.teardown(() => d2.close());
  t.equal(d2.stats().entries, 2, 'the files whose header does not name their segment are dropped at start');
  t.notOk(d2.has(key, 5 * PS, PS), 'a page cut short is not indexed');
  t.ok(d2.has(key, 5 * PS, US), '…but its units before the cut are');
  const before = store.calls;
  const cache2 = new PageCache({ store, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d2 });
  for (let i = 0; i < 16; i++) {
    const got = await cache2.read(key, bytes.length, i * PS, PS);
    t.ok(got.equals(bytes.subarray(i * PS, (i + 1) * PS)), `page ${i}: right bytes`);
  }
  t.equal(store.calls - before, 14, 'the fourteen damaged or lost pages came from the store, the intact two (3, 4) from disk');
  t.match(d2.stats(), { corrupt: 3, hits: 2 }, 'three failed verification (the others were never indexed)');
  t.equal(logs.filter((l) => /failed verification/.test(l)).length, 3, 'each said so in one line');
  await cache2.close();
  // The damaged units were cleared and rewritten from the store: all sixteen verify now.
  const d3 = new DiskCache({ dir, maxBytes: 64 * PS, unitSize: US, segmentSize: SEG, log: () => undefined });
  await d3.open();
  const buf = Buffer.alloc(PS);
  for (let i = 0; i < 16; i++) t.ok((await d3.read(key, i * PS, PS, i * PS, buf)) && buf.equals(bytes.subarray(i * PS, (i + 1) * PS)), `page ${i} verifies after the repair`);
  t.equal(d3.stats().corrupt, 0);
  await d3.close();
});

t.test('an older format\'s folder is never read: removed at start, with a line', async (t) => {
  const dir = newDir();
  const key = 'e'.repeat(64);
  // A format-v1 page file (its own header + data): a v2 cache must not serve it.
  await mkdir(join(dir, 'v1', 'ee'), { recursive: true });
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await writeFile(join(dir, 'v1', 'ee', `${key}-0-${PS}`), Buffer.concat([Buffer.alloc(4096), pageBytes(key, 0, PS)]));
  await writeFile(join(dir, 'tmp', 'half'), 'x');
  const { d, logs } = await disk(t, { dir });
  t.notOk(d.has(key, 0, PS), 'nothing of it is indexed');
  t.notOk(await d.read(key, 0, PS, 0, Buffer.alloc(PS)), 'nor served');
  t.match(logs.join('\n'), /v1 is an older cache format; removing it/, 'one line says so');
  for (let i = 0; i < 100 && (await stat(join(dir, 'v1')).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 20));
  await t.rejects(stat(join(dir, 'v1')), { code: 'ENOENT' }, 'the old folder is gone');
  await t.rejects(stat(join(dir, 'tmp')), { code: 'ENOENT' }, 'and v1\'s temp folder');
});

async function flip(f: string, at: number): Promise<void> {
  const fh = await open(f, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = b[0]! ^ 0x10;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

async function overwrite(f: string, at: number, data: Buffer): Promise<void> {
  const fh = await open(f, 'r+');
  await fh.write(data, 0, data.length, at);
  await fh.close();
}

t.test('LRU eviction keeps the files within the size limit', async (t) => {
  // One page per file here, so that each eviction is one page.
  const fileSize = headerSize(PS, US) + PS;
  const { d } = await disk(t, { maxBytes: 5 * fileSize, segmentSize: PS });
  const key = 'b'.repeat(64);
  for (let i = 0; i < 5; i++) await d.write(key, i * PS, pageBytes(key, i, PS));
  t.equal(d.stats().bytes, 5 * fileSize, 'full');
  t.ok(await d.read(key, 0, PS, 0, Buffer.alloc(PS)), 'page 0 used: most recent now');
  for (let i = 5; i < 9; i++) {
    await d.write(key, i * PS, pageBytes(key, i, PS));
    t.ok(d.stats().bytes <= 5 * fileSize, `after page ${i}: ${d.stats().bytes} ≤ limit`);
  }
  t.ok(d.has(key, 0, PS), 'the page read recently survived');
  t.notOk(d.has(key, PS, PS), 'the least recently used went first');
  t.ok(d.has(key, 8 * PS, PS), 'the newest is there');
  t.equal(d.stats().evictions, 4);
  await new Promise((r) => setTimeout(r, 50)); // unlinks are fire-and-forget
  t.equal((await cacheFiles(d.dir)).length, 5, 'evicted files are gone from the disk too');
  // A smaller limit at the next open evicts down to it.
  await d.close();
  const d2 = new DiskCache({ dir: d.dir, maxBytes: 2 * fileSize, unitSize: US, segmentSize: PS, log: () => undefined });
  await d2.open();
  t.equal(d2.stats().entries, 2, 'reopened with a smaller limit: trimmed');
  await d2.close();
});

t.test('concurrent readers of one page make one fetch; a second cache over the folder makes none', async (t) => {
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(4 * PS);
  const { key } = await mem.putStream(bytes);
  const store = new CountingStore(mem);
  const dir = newDir();
  const { d } = await disk(t, { dir });
  const cache = new PageCache({ store, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d });
  const reads = Array.from({ length: 20 }, (_, i) => cache.read(key, bytes.length, PS + i * 100, 50));
  const got = await Promise.all(reads);
  got.forEach((b, i) => t.ok(b.equals(bytes.subarray(PS + i * 100, PS + i * 100 + 50)), `reader ${i}`));
  t.equal(store.calls, 1, 'one store request');
  await cache.close();
  t.equal(d.stats().writes, 1, 'one disk write');

  const d2 = new DiskCache({ dir, maxBytes: 64 * PS, unitSize: US, segmentSize: SEG, log: () => undefined });
  await d2.open();
  t.teardown(() => d2.close());
  const cache2 = new PageCache({ store, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d2 });
  const again = await Promise.all(Array.from({ length: 20 }, (_, i) => cache2.read(key, bytes.length, PS + i * 100, 50)));
  again.forEach((b, i) => t.ok(b.equals(bytes.subarray(PS + i * 100, PS + i * 100 + 50)), `reader ${i} after the reopen`));
  t.equal(store.calls, 1, 'no store request');
  t.equal(d2.stats().hits, 1, 'one disk read');
  await cache2.close();
});

t.test('random reads: units go to disk and come back; a page on disk serves its units', async (t) => {
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(16 * PS);
  const { key } = await mem.putStream(bytes);
  const store = new CountingStore(mem);
  const dir = newDir();
  const { d } = await disk(t, { dir });
  const cache = new PageCache({ store, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d });
  await cache.read(key, bytes.length, 0, PS); // page 0 whole (not a random stream)
  const s = cache.openStream();
  const offsets = [9 * PS + 5, 3 * PS + US + 7, 12 * PS + 3 * US, 7 * PS, 0 + 2 * US + 1];
  for (const off of offsets) t.ok((await cache.read(key, bytes.length, off, 100, s)).equals(bytes.subarray(off, off + 100)));
  t.ok(s.random, 'random after two seeks');
  await cache.close();
  t.equal(store.bytes, PS + 4 * US, 'page 0, then four units: a new stream\'s first read off offset 0 is not known to read on (page 0 was there)');
  const d2 = new DiskCache({ dir, maxBytes: 64 * PS, unitSize: US, segmentSize: SEG, log: () => undefined });
  await d2.open();
  t.teardown(() => d2.close());
  const cache2 = new PageCache({ store, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d2 });
  const s2 = cache2.openStream();
  const calls = store.calls;
  for (const off of [5 * PS, 14 * PS, ...offsets]) t.ok((await cache2.read(key, bytes.length, off, 100, s2)).equals(bytes.subarray(off, off + 100)));
  t.equal(store.calls - calls, 2, 'after the reopen only the two new places needed the store');
  t.ok(d2.stats().hits >= 5, 'the rest came from disk (units from unit files and from page files)');
  await cache2.close();
});

t.test('kill -9 mid-write, then a reopen serves only verified pages', async (t) => {
  const dir = newDir();
  const key = 'c'.repeat(64);
  const child = spawn(process.execPath, [join(HERE, 'helpers', 'disk-cache-child.js'), dir, key, String(PS), String(SEG)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 600 && !/wrote (\d{3,})/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
  t.match(out, /ready on/, `the child opened the cache ${err}`);
  child.kill('SIGKILL');
  await exited;
  t.equal(child.signalCode, 'SIGKILL', 'killed mid-write');
  const wrote = Math.max(...[...out.matchAll(/wrote (\d+)/g)].map((m) => Number(m[1])));
  t.ok(wrote >= 100, `it had stored ${wrote + 1} pages`);
  t.equal((await readFile(join(dir, 'lock'), 'utf8')).trim().split(':')[1], String(child.pid), 'its lock stayed behind');

  // What a power loss could add to the kill: a page whose record reached the disk and whose data
  // did not (page 0), and a file cut short (segment 1: pages 4-7).
  const files = await cacheFiles(dir);
  const hs = headerSize(SEG, 64 * KiB);
  await overwrite(fileOf(dir, files, key, 0), hs, Buffer.alloc(PS));
  await truncate(fileOf(dir, files, key, 1), hs + 100);

  const logs: string[] = [];
  const d = new DiskCache({ dir, maxBytes: 1 << 30, unitSize: 64 * KiB, segmentSize: SEG, log: (l) => logs.push(l) });
  await d.open();
  t.teardown(() => d.close());
  t.equal(d.stats().state, 'on', 'the dead owner\'s lock was taken over');
  t.same((await readdir(dir)).sort(), ['lock', 'v2'], 'nothing else in the folder');
  t.notOk(d.has(key, 4 * PS, 64 * KiB), 'the file cut short holds nothing any more');
  let served = 0;
  let refused = 0;
  const buf = Buffer.alloc(PS);
  const indexed = d.stats().entries;
  const segments = new Set<number>();
  for (let i = 0; i <= wrote + 8; i++) {
    if (!d.has(key, i * PS, PS)) continue;
    segments.add(Math.floor((i * PS) / SEG));
    if (await d.read(key, i * PS, PS, i * PS, buf)) {
      served++;
      if (!buf.equals(pageBytes(key, i, PS))) t.fail(`page ${i} was served with wrong bytes`);
    } else {
      refused++;
    }
  }
  t.equal(segments.size, indexed, 'every indexed file was tried');
  t.ok(served >= wrote - 12, `${served} pages served, all verified`);
  t.equal(refused, 1, 'the zero-filled page was refused (the cut file\'s pages were never indexed)');
  t.equal(d.stats().corrupt, 1);
});

t.test('faults on the cache disk: ENOSPC and EIO fall back to S3 with the right bytes', async (t) => {
  const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), ['smhfs-disk']);
  t.teardown(() => s3.close());
  const s3store = s3rverStore(s3, 'smhfs-disk', 'd');
  t.teardown(() => s3store.close());
  const bytes = randomBytes(24 * PS + 999);
  const { key } = await s3store.putStream(bytes);
  const dir = newDir();
  let fault: { op: string; code: string } | undefined;
  // One write at a time: the second batch below is still queued when the first one fails.
  const { d, logs } = await disk(t, { dir, retryAfterMs: 200, writeConcurrency: 1, faults: (op) => (fault && fault.op === op ? fault.code : undefined) });
  const cache = new PageCache({ store: s3store, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d });

  // ENOSPC on every write: readers never notice; the cache says it once and pauses.
  fault = { op: 'write', code: 'ENOSPC' };
  t.ok((await cache.read(key, bytes.length, 0, 8 * PS)).equals(bytes.subarray(0, 8 * PS)), 'ENOSPC: right bytes');
  // The read's 8 pages are queued as one batch (contiguous writes go together), started at the
  // next turn of the event loop: a write queued now waits behind it, and finds writes paused.
  void d.write(key, 10 * PS, bytes.subarray(10 * PS, 11 * PS));
  await d.idle();
  t.equal(d.stats().state, 'degraded', 'writes paused');
  t.equal(logs.filter((l) => /is full \(ENOSPC\); caching in memory only/.test(l)).length, 1, `one log line: ${logs.join(' | ')}`);
  t.equal(d.stats().writes, 0);
  t.ok(d.stats().writesDropped > 0, 'later writes were skipped, not queued');
  t.ok(d.stats().bytesDropped >= PS, `and their bytes are counted (${d.stats().bytesDropped})`);
  // The disk frees up: after the pause, writes resume.
  fault = undefined;
  await new Promise((r) => setTimeout(r, 250));
  t.ok((await cache.read(key, bytes.length, 8 * PS, 8 * PS)).equals(bytes.subarray(8 * PS, 16 * PS)));
  await d.idle();
  t.equal(d.stats().state, 'on', 'writing again');
  t.ok(logs.some((l) => /writing to .* again/.test(l)), 'and said so');
  t.ok(d.stats().writes >= 8, `pages written after the pause (${d.stats().writes})`);

  // EIO on every read: each page falls back to S3; the bad files are dropped.
  cache.clear();
  fault = { op: 'read', code: 'EIO' };
  const fetched = cache.stats().bytesFetched;
  t.ok((await cache.read(key, bytes.length, 8 * PS, 8 * PS)).equals(bytes.subarray(8 * PS, 16 * PS)), 'EIO: right bytes');
  t.equal(cache.stats().bytesFetched - fetched, 8 * PS, 'all from S3');
  t.ok(d.stats().errors >= 8, 'read errors counted');
  t.equal(logs.filter((l) => /reading .* failed \(EIO\)/.test(l)).length, 1, 'one log line, not one per page');
  t.equal(cache.stats().errors, 0, 'no read failed');

  // A write that fails with EIO also pauses writes, and nothing half-written is left behind.
  fault = { op: 'write', code: 'EIO' };
  cache.clear();
  await new Promise((r) => setTimeout(r, 250));
  t.ok((await cache.read(key, bytes.length, 16 * PS, 8 * PS + 999)).equals(bytes.subarray(16 * PS)), 'EIO on write: right bytes');
  await d.idle();
  t.equal(d.stats().state, 'degraded');
  t.notOk(d.has(key, 16 * PS, US), 'nothing of the failed writes is indexed');
  t.notOk((await cacheFiles(dir)).some((f) => /-[4-9]$/.test(f)), 'and no file was left for their segments');
  await cache.close();
});

t.test('a write backlog over half its budget holds back readahead; the reader\'s own pages still come', async (t) => {
  // Issue 16, one CPU: pages fetched ahead while the writer lagged were dropped from the backlog
  // (fetched again by the next mount) and their pinned buffers forced fresh allocations.
  class Backlogged extends DiskCache {
    high = true;
    override get writeBacklogHigh(): boolean {
      return this.high;
    }
  }
  const d = new Backlogged({ dir: newDir(), maxBytes: 64 * SEG, unitSize: US, segmentSize: SEG, log: () => undefined });
  await d.open();
  t.teardown(() => d.close());
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(64 * PS);
  const { key } = await mem.putStream(bytes);
  const store = new CountingStore(mem);
  const cache = new PageCache({ store, maxBytes: 64 * PS, pageSize: PS, readaheadMax: 16 * PS, disk: d });
  t.teardown(() => cache.close());
  const s = cache.openStream();
  for (let i = 0; i < 8; i++) t.ok((await cache.read(key, bytes.length, i * PS, PS, s)).equals(bytes.subarray(i * PS, (i + 1) * PS)), `page ${i}: its bytes`);
  t.equal(store.bytes, 8 * PS, 'backlog high: only the pages read were fetched, nothing ahead');
  d.high = false;
  t.ok((await cache.read(key, bytes.length, 8 * PS, PS, s)).equals(bytes.subarray(8 * PS, 9 * PS)), 'page 8: its bytes');
  await new Promise((r) => setTimeout(r, 50));
  t.ok(store.bytes > 9 * PS, `backlog drained: readahead again (${store.bytes / PS} pages fetched)`);
  t.equal(d.writeBacklogHigh, false);
  // The real getter: over half of maxPendingWriteBytes.
  const small = new DiskCache({ dir: newDir(), maxBytes: 64 * SEG, unitSize: US, segmentSize: SEG, maxPendingWriteBytes: 3 * PS, log: () => undefined });
  await small.open();
  t.teardown(() => small.close());
  t.equal(small.writeBacklogHigh, false, 'empty backlog');
  const w = [small.write(key, 0, Buffer.from(bytes.subarray(0, PS))), small.write(key, PS, Buffer.from(bytes.subarray(PS, 2 * PS)))];
  t.equal(small.writeBacklogHigh, true, 'two of three pages queued: high');
  await Promise.all(w);
  await small.idle();
  t.equal(small.writeBacklogHigh, false, 'written: low again');
});

t.test('a remount reads a blob again with 0 bytes from S3', async (t) => {
  const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), ['smhfs-disk']);
  t.teardown(() => s3.close());
  const s3store = s3rverStore(s3, 'smhfs-disk', 'r');
  t.teardown(() => s3store.close());
  const bytes = randomBytes(5 * 1024 * KiB + 77);
  const { key } = await s3store.putStream(bytes);
  const dir = newDir();
  const read = async (): Promise<{ fetched: number; ok: boolean; disk: number; written: number; landed: number }> => {
    const d = new DiskCache({ dir, maxBytes: 64 * 1024 * KiB, log: () => undefined });
    await d.open();
    const cache = new PageCache({ store: s3store, maxBytes: 16 * 1024 * KiB, disk: d });
    const s = cache.openStream();
    const parts: Buffer[] = [];
    for (let off = 0; off < bytes.length; off += 128 * KiB) parts.push(await cache.read(key, bytes.length, off, 128 * KiB, s));
    const st = cache.stats();
    await cache.close(); // finishes the disk writes, releases the folder
    const ds = d.stats();
    return { fetched: st.bytesFetched, ok: Buffer.concat(parts).equals(bytes), disk: st.disk!.hits, written: ds.bytesWritten, landed: ds.bytesCrcLanded };
  };
  const first = await read();
  t.ok(first.ok, 'first read: every byte');
  t.equal(first.fetched, bytes.length, 'from S3');
  t.equal(first.written, bytes.length, 'all of it written to the disk cache');
  // The S3 reader fed each run of bytes to the page cache as it landed: the units' CRCs were
  // computed then, not by reading the pages back when writing them (issue 16).
  t.equal(first.landed, bytes.length, 'every byte written with the CRCs computed as it landed');
  const second = await read();
  t.ok(second.ok, 'second read after the "remount": every byte');
  t.equal(second.fetched, 0, '0 bytes fetched from S3');
  t.equal(second.disk, 6, 'six pages from disk');
});

t.test('the index stays small: 20,000 units written cost under 1 MiB of memory', async (t) => {
  // Format v1 kept one Map entry per extent (~280 bytes of heap each): a mount reading at random
  // from S3 grew its heap with every unit it wrote (issue 16 item 4). v2 keeps 8 bytes per unit
  // slot of each segment file. Measured in a child (--expose-gc), so only the cache counts.
  const r = await new Promise<{ code: number | null; out: string; err: string }>((done) => {
    const c = spawn(process.execPath, ['--expose-gc', join(HERE, 'helpers', 'disk-cache-index-child.js'), newDir(), '20000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    c.on('exit', (code) => done({ code, out, err }));
  });
  t.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out) as { writes: number; indexed: boolean; grew: number };
  t.equal(got.writes, 20000, 'every unit written');
  t.ok(got.indexed, 'and indexed');
  t.ok(got.grew < 1024 * KiB, `the index grew by ${(got.grew / KiB).toFixed(0)} KiB`);
});

t.test('one process per cache folder: a second one runs memory-only; a dead owner\'s lock is taken over', async (t) => {
  const dir = newDir();
  const { d } = await disk(t, { dir });
  t.equal(d.stats().state, 'on');
  const logs: string[] = [];
  const other = new DiskCache({ dir, maxBytes: 64 * PS, unitSize: US, log: (l) => logs.push(l) });
  await other.open();
  t.equal(other.stats().state, 'off', 'the folder is taken: off');
  t.match(logs.join('\n'), /is in use by .*:\d+; caching in memory only/, 'says so in one line');
  const key = 'd'.repeat(64);
  await other.write(key, 0, pageBytes(key, 0, PS));
  t.notOk(other.has(key, 0, PS), 'an off cache stores nothing');
  await other.close();
  t.ok((await stat(join(dir, 'lock'))).isFile(), 'closing the second one left the owner\'s lock');
  await d.close();
  await t.rejects(stat(join(dir, 'lock')), { code: 'ENOENT' }, 'the owner removed its lock');
  await writeFile(join(dir, 'lock'), `${(await import('node:os')).hostname()}:999999999\n`);
  const again = new DiskCache({ dir, maxBytes: 64 * PS, unitSize: US, log: () => undefined });
  await again.open();
  t.equal(again.stats().state, 'on', 'a lock whose process is gone is taken over');
  await again.close();
});

t.test('an unusable folder leaves the cache off, with a line, never an error', async (t) => {
  const file = join(work, 'not-a-dir');
  await writeFile(file, 'x');
  const logs: string[] = [];
  const d = new DiskCache({ dir: join(file, 'cache'), maxBytes: 64 * PS, log: (l) => logs.push(l) });
  await d.open();
  t.equal(d.stats().state, 'off');
  t.match(logs.join('\n'), /cannot use .*; caching in memory only/);
  const mem = new MemoryBlobStore();
  const bytes = randomBytes(3 * PS);
  const { key } = await mem.putStream(bytes);
  const cache = new PageCache({ store: mem, pageSize: PS, unitSize: US, maxBytes: 64 * PS, disk: d });
  t.ok((await cache.read(key, bytes.length, 0, bytes.length)).equals(bytes), 'reads work without it');
  await cache.close();
  t.equal(resolve(d.dir), join(file, 'cache'));
});
