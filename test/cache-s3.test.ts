// The page cache against a remote store (s3rver on 127.0.0.1, random port): coalesced ranged
// GETs filling pooled page buffers, every byte right under heavy eviction (buffers are reused, so
// a page must never be rewritten while a read copies from it), near-sequential reads (the
// kernel's out-of-order readahead) keep the window, and a hung endpoint fails in bounded time.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { PageCache, type RangeIntoStore } from '../src/blob/page-cache.js';
import { S3BlobStore } from '../src/blob/s3-store.js';
import { s3rverStore, startS3rver } from './helpers/s3rver-harness.js';
import type { BlobInfo, BlobStore } from '../src/blob/types.js';
import { isSmhError } from '../src/errors.js';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
const MiB = 1024 * 1024;
const KiB = 1024;
const work = await mkdtemp(join(tmpdir(), 'smhfs-cache-s3-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), ['smhfs-cache']);
t.teardown(() => s3.close());

function store(extra: Partial<ConstructorParameters<typeof S3BlobStore>[0]> = {}): S3BlobStore {
  const s = s3rverStore(s3, 'smhfs-cache', 'c', extra);
  t.teardown(() => s.close());
  return s;
}

/** Ranges of every GET the store sends (its own reader or the SDK's). */
function spyRanges(s: S3BlobStore): string[] {
  const ranges: string[] = [];
  s.onRangedGet = (offset, length) => ranges.push(`bytes=${offset}-${offset + length - 1}`);
  return ranges;
}

const s3store = store();
const big = randomBytes(40 * MiB + 333);
const { key: bigKey } = await s3store.putStream(big);

t.test('page buffers come from allocatePage (a mount: the addon\'s huge-page slabs); units and a short last page do not', async (t) => {
  const s = store();
  const made: Buffer[] = [];
  const allocatePage = (n: number): Buffer => {
    const b = Buffer.allocUnsafeSlow(n);
    made.push(b);
    return b;
  };
  const cache = new PageCache({ store: s, maxBytes: 16 * MiB, allocatePage });
  const st = cache.openStream();
  const parts: Buffer[] = [];
  for (let off = 0; off < big.length; off += 128 * KiB) parts.push(await cache.read(bigKey, big.length, off, 128 * KiB, st));
  await cache.idle();
  t.ok(Buffer.concat(parts).equals(big), 'every byte');
  t.ok(made.length >= 8 && made.every((b) => b.length === MiB), `${made.length} page buffers from allocatePage, each a page`);
  t.equal(cache.stats().allocatedBytes, made.length * MiB + 333, 'every other new buffer: the 333-byte last page');
  // A random reader: its 64 KiB units are plain buffers.
  const r = cache.openStream();
  const n = made.length;
  for (const off of [30 * MiB + 5, 3 * MiB + 70_000, 21 * MiB + 9, 12 * MiB + 4]) t.ok((await cache.read(bigKey, big.length, off, 4096, r)).equals(big.subarray(off, off + 4096)));
  t.ok(cache.stats().unitFetches > 0, 'units fetched');
  t.equal(made.length, n, 'none from allocatePage');
  await cache.close();
});

t.test('sequential read: coalesced GETs, disjoint, every byte', async (t) => {
  const s = store();
  const ranges = spyRanges(s);
  const cache = new PageCache({ store: s, maxBytes: 64 * MiB });
  t.equal(cache.maxRequestPages, 8, 'S3 (getRangeInto): up to 8 MiB per request');
  const localDir = await mkdtemp(join(tmpdir(), 'smhfs-cache-local-'));
  const local = new LocalBlobStore(localDir);
  t.equal(new PageCache({ store: local, maxBytes: 64 * MiB }).maxRequestPages, 1, 'a local store (getRangeInto, no readRequestBytes): one page per request');
  await local.close();
  await rm(localDir, { recursive: true, force: true });
  const st = cache.openStream();
  const parts: Buffer[] = [];
  for (let off = 0; off < big.length; off += 128 * KiB) parts.push(await cache.read(bigKey, big.length, off, 128 * KiB, st));
  await cache.idle();
  t.ok(Buffer.concat(parts).equals(big), 'every byte');
  const pages = Math.ceil(big.length / MiB);
  t.ok(ranges.length <= pages / 2, `${ranges.length} GETs for ${pages} pages`);
  const spans = ranges.map((r) => r.match(/^bytes=(\d+)-(\d+)$/)!.slice(1).map(Number) as [number, number]).sort((a, b) => a[0] - b[0]);
  let covered = 0;
  for (const [a, b] of spans) {
    t.equal(a, covered, `GET ${a}-${b} starts where the previous ended (no byte fetched twice, none missed)`);
    covered = b + 1;
  }
  t.equal(covered, big.length);
  t.match(cache.stats(), { bytesFetched: big.length, errors: 0 });
});

t.test('a multi-page read fetches its missing pages in one request', async (t) => {
  const s = store();
  const ranges = spyRanges(s);
  const cache = new PageCache({ store: s, maxBytes: 64 * MiB });
  const off = 3 * MiB + 12345;
  const got = await cache.read(bigKey, big.length, off, 4 * MiB);
  t.ok(got.equals(big.subarray(off, off + 4 * MiB)));
  t.same(ranges, [`bytes=${3 * MiB}-${8 * MiB - 1}`], 'pages 3–7 in one GET');
  const tail = await cache.read(bigKey, big.length, big.length - 1000, 5000);
  t.ok(tail.equals(big.subarray(big.length - 1000)), 'short last page exact');
});

/** An in-memory store with getRangeInto that fills targets a microtask later: the harshest timing. */
class QuickIntoStore implements BlobStore, RangeIntoStore {
  readonly description = 'quick-into';
  readonly mem = new MemoryBlobStore();
  async getRangeInto(key: string, offset: number, targets: Buffer[]): Promise<void> {
    const total = targets.reduce((a, b) => a + b.length, 0);
    const src = await this.mem.getRange(key, offset, total);
    if (src.length !== total) throw Object.assign(new Error('short'), { code: 'BlobUnavailable' });
    let pos = 0;
    for (const tg of targets) pos += src.copy(tg, 0, pos, pos + tg.length);
  }
  getRange(key: string, offset: number, length: number): Promise<Buffer> {
    return this.mem.getRange(key, offset, length);
  }
  putFile(key: string, path: string, size: number): Promise<void> {
    return this.mem.putFile(key, path, size);
  }
  putStream(body: Buffer): Promise<BlobInfo> {
    return this.mem.putStream(body);
  }
  head(key: string): Promise<BlobInfo | undefined> {
    return this.mem.head(key);
  }
  delete(key: string): Promise<void> {
    return this.mem.delete(key);
  }
  list(): AsyncIterable<BlobInfo> {
    return this.mem.list();
  }
}

t.test('pooled buffers under heavy eviction: every byte of every concurrent read right', async (t) => {
  const PS = 4 * KiB;
  for (const [name, st] of [
    ['s3', s3store],
    ['quick', new QuickIntoStore()],
  ] as const) {
    const bytes = randomBytes(200 * PS + 77);
    const { key } = await st.putStream(bytes);
    // Room for 8 pages: every read evicts, buffers are recycled constantly.
    const cache = new PageCache({ store: st, pageSize: PS, maxBytes: 8 * PS, readaheadMax: 8 * PS, maxRequestBytes: 4 * PS });
    let rnd = 12345;
    const next = (n: number): number => {
      rnd = (rnd * 1103515245 + 12345) % 2 ** 31;
      return rnd % n;
    };
    let wrong = 0;
    const readers = Array.from({ length: 6 }, async (_, r) => {
      const stream = cache.openStream();
      let off = r % 2 === 0 ? next(bytes.length) : 0;
      for (let i = 0; i < 60; i++) {
        const len = 1 + next(r < 3 ? 3 * PS : PS);
        const got = await cache.read(key, bytes.length, off, len, stream);
        const want = bytes.subarray(off, Math.min(bytes.length, off + len));
        if (!got.equals(want)) wrong++;
        off = r % 2 === 0 ? next(bytes.length) : (off + len) % bytes.length; // random or sequential
      }
    });
    await Promise.all(readers);
    await cache.idle();
    t.equal(wrong, 0, `${name}: no read saw a recycled page's new bytes`);
    t.ok(cache.stats().cachedBytes <= 8 * PS, `${name}: budget held`);
    await cache.close();
  }
});

t.test('near-sequential reads (out-of-order kernel readahead) keep the window', async (t) => {
  const st = new QuickIntoStore();
  const PS = 64 * KiB;
  const bytes = randomBytes(256 * PS);
  const { key } = await st.putStream(bytes);
  const cache = new PageCache({ store: st, pageSize: PS, maxBytes: 1024 * PS, readaheadMax: 16 * PS, maxRequestBytes: PS });
  const s = cache.openStream();
  const R = 16 * KiB;
  // Requests of R bytes, pairs swapped: 0, 2, 1, 3, 5, 4, …
  const order: number[] = [];
  for (let i = 0; i < 200; i += 2) order.push(i + 1, i);
  for (const i of order) {
    const got = await cache.read(key, bytes.length, i * R, R, s);
    if (!got.equals(bytes.subarray(i * R, (i + 1) * R))) t.fail(`bytes of request ${i}`);
  }
  t.equal(s.seeks, 0, 'no read counted as a seek, not even the very first (out of order, near offset 0)');
  t.equal(s.window, 16 * PS, 'window grew to the cap');
  await cache.idle();
  t.ok(cache.stats().prefetchHits > 0);
});

t.test('getRangeInto: exact fill, past the end and missing blobs are errors', async (t) => {
  const targets = [Buffer.alloc(MiB), Buffer.alloc(MiB), Buffer.alloc(123)];
  await s3store.getRangeInto(bigKey, 5 * MiB, targets);
  t.ok(Buffer.concat(targets).equals(big.subarray(5 * MiB, 7 * MiB + 123)));
  await t.rejects(s3store.getRangeInto(bigKey, big.length - 10, [Buffer.alloc(20)]), { code: 'BlobUnavailable' });
  await t.rejects(s3store.getRangeInto('f'.repeat(64), 0, [Buffer.alloc(10)]), { code: 'BlobMissing' });
});

t.test('a hung endpoint: each GET gives up at its deadline, the read fails with BlobUnavailable', async (t) => {
  // Two kinds of hang: accepts and never answers; answers headers, then stalls the body.
  const sockets = new Set<Socket>();
  const silent = createServer((c) => {
    sockets.add(c);
    c.on('error', () => undefined);
  });
  const stalled = createServer((c) => {
    sockets.add(c);
    c.on('error', () => undefined);
    c.once('data', () =>
      c.write('HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1048575/2097152\r\nContent-Length: 1048576\r\n\r\nabc'),
    );
  });
  for (const srv of [silent, stalled]) await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const c of sockets) c.destroy();
    silent.close();
    stalled.close();
  });
  // The two hangs are waited out side by side (each ~3.9 s of timers, nothing to compute), then
  // checked in order.
  const tried = await Promise.all(
    ([
      ['silent', silent],
      ['stalled body', stalled],
    ] as const).map(async ([name, srv]) => {
      const port = (srv.address() as { port: number }).port;
      const s = store({ endpoint: `http://127.0.0.1:${port}`, readTimeoutMs: 300, maxAttempts: 1 });
      const cache = new PageCache({ store: s, retries: 2, backoffMs: 10 });
      const t0 = Date.now();
      const err = await cache.read('a'.repeat(64), 2 * MiB, 0, 4096).catch((e: unknown) => e);
      return { name, err, ms: Date.now() - t0, stats: cache.stats() };
    }),
  );
  for (const { name, err, ms, stats } of tried) {
    t.ok(isSmhError(err, 'BlobUnavailable'), `${name}: BlobUnavailable`);
    t.match((err as Error).message, /no complete answer within 1300 ms/, `${name}: says why`);
    t.ok(ms < 3 * 1300 + 1500, `${name}: 3 attempts in ${ms} ms (bounded)`);
    t.match(stats, { retries: 2, errors: 1, cachedBytes: 0 });
  }
});
