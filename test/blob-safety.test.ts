// Blob-layer parts of issue 9, without FUSE:
// - D8: the sparse container format (src/blob/sparse.ts): the header, strict parsing, the mapping
//   of logical ranges, which staged files become sparse, and reads of a sparse file through
//   Library.readContent that never ask the store for a hole;
// - D7: the local store's kept descriptors are closed once another process deletes their blob,
//   so the disk space comes back.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readlink, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { ExtentSet, HOLE_MIN, MAX_EXTENTS, planLayout, SparseLayout, sparseEtag, storedBlobSize } from '../src/blob/sparse.js';
import { Library } from '../src/store/library.js';
import { ContentReader } from '../src/vfs/reader.js';

const work = await mkdtemp(join(tmpdir(), 'smhfs-blob-safety-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const MiB = 1024 * 1024;

t.test('D8: a layout is a documented text header; parsing is strict', async (t) => {
  const l = SparseLayout.fromExtents(1024 ** 4, [
    { offset: 0, length: 10 },
    { offset: 5 * MiB, length: 3 },
  ]);
  t.equal(l.header, 'SMHFS-SPARSE 1\nsize 1099511627776\n0 10\n5242880 3\nend\n', 'the exact format');
  t.equal(l.headerBytes, l.header.length);
  t.equal(l.dataBytes, 13);
  t.equal(l.blobSize, l.headerBytes + 13);
  t.same(SparseLayout.parse(l.header).extents, l.extents, 'parse(format(x)) = x');
  t.equal(storedBlobSize({ size: 1024 ** 4, layout: l.header }), l.blobSize, 'the blob of a sparse file is its container');
  t.equal(storedBlobSize({ size: 77 }), 77, 'a dense file is its own blob');
  const bad = [
    '',
    'SMHFS-SPARSE 2\nsize 10\nend\n',
    'SMHFS-SPARSE 1\nsize 10\n0 4\nend', // no final newline
    'SMHFS-SPARSE 1\nsize 10\n4 4\n0 2\nend\n', // out of order
    'SMHFS-SPARSE 1\nsize 10\n0 4\n4 2\nend\n', // touching
    'SMHFS-SPARSE 1\nsize 10\n8 4\nend\n', // past the size
    'SMHFS-SPARSE 1\nsize 10\n0 0\nend\n', // empty extent
    'SMHFS-SPARSE 1\nsize 010\nend\n', // leading zero
    'SMHFS-SPARSE 1\nsize 10\n 1 2\nend\n',
  ];
  for (const h of bad) t.throws(() => SparseLayout.parse(h), /not a valid sparse layout/, JSON.stringify(h));
  t.equal(sparseEtag('d41d8cd98f00b204e9800998ecf8427e'), 'd41d8cd98f00b204e9800998ecf8427e-sparse');
});

t.test('D8: logical ranges map to container offsets; holes map to nothing; SEEK_DATA/SEEK_HOLE', async (t) => {
  const l = SparseLayout.fromExtents(100, [
    { offset: 10, length: 5 },
    { offset: 40, length: 20 },
  ]);
  const H = l.headerBytes;
  t.same(l.segments(0, 100), [
    { offset: 0, length: 10, blobOffset: null },
    { offset: 10, length: 5, blobOffset: H },
    { offset: 15, length: 25, blobOffset: null },
    { offset: 40, length: 20, blobOffset: H + 5 },
    { offset: 60, length: 40, blobOffset: null },
  ]);
  t.same(l.segments(12, 30), [
    { offset: 12, length: 3, blobOffset: H + 2 },
    { offset: 15, length: 25, blobOffset: null },
    { offset: 40, length: 2, blobOffset: H + 5 },
  ]);
  t.same(l.segments(95, 50), [{ offset: 95, length: 5, blobOffset: null }], 'clipped to the size');
  t.same(l.segments(100, 5), [], 'nothing past the end');
  t.equal(l.nextData(0), 10);
  t.equal(l.nextData(12), 12);
  t.equal(l.nextData(15), 40);
  t.equal(l.nextData(60), undefined, 'no data after the last extent: ENXIO');
  t.equal(l.nextHole(0), 0);
  t.equal(l.nextHole(10), 15);
  t.equal(l.nextHole(45), 60);
  t.equal(l.nextHole(100), undefined);
});

t.test('D8: written ranges merge; truncate clips them', async (t) => {
  const s = new ExtentSet();
  for (let i = 0; i < 100; i++) s.add(i * 10, i * 10 + 10); // appends
  t.same(s.list(), [{ offset: 0, length: 1000 }], 'appends make one extent');
  s.add(5000, 5010);
  s.add(3000, 3010);
  s.add(2990, 3005); // overlaps the start
  s.add(3010, 3020); // touches the end
  t.same(s.list(), [
    { offset: 0, length: 1000 },
    { offset: 2990, length: 30 },
    { offset: 5000, length: 10 },
  ]);
  s.add(500, 4000); // swallows the middle one
  t.same(s.list(), [
    { offset: 0, length: 4000 },
    { offset: 5000, length: 10 },
  ]);
  t.equal(s.bytes, 4010);
  t.ok(s.isHole(4000, 5000) && !s.isHole(3999, 4001));
  s.truncate(5005);
  t.same(s.list(), [
    { offset: 0, length: 4000 },
    { offset: 5000, length: 5 },
  ]);
  s.truncate(10);
  t.same(s.list(), [{ offset: 0, length: 10 }]);
});

t.test('D8: a punched hole (fallocate PUNCH_HOLE) leaves the written ranges: splits, trims, drops; then a hole of 1 MiB is kept', async (t) => {
  const of = (...r: Array<[number, number]>) => ExtentSet.of(r.map(([offset, length]) => ({ offset, length })));
  const s = of([0, 100], [200, 100], [400, 100]);
  s.remove(50, 60); // inside one: it splits in two
  t.same(s.list(), [
    { offset: 0, length: 50 },
    { offset: 60, length: 40 },
    { offset: 200, length: 100 },
    { offset: 400, length: 100 },
  ]);
  s.remove(250, 450); // the end of one, all of none between, the start of another
  t.same(s.list(), [
    { offset: 0, length: 50 },
    { offset: 60, length: 40 },
    { offset: 200, length: 50 },
    { offset: 450, length: 50 },
  ]);
  s.remove(0, 100); // exactly two whole extents
  t.same(s.list(), [
    { offset: 200, length: 50 },
    { offset: 450, length: 50 },
  ]);
  s.remove(600, 700); // past everything: nothing
  s.remove(300, 300); // empty: nothing
  t.equal(s.bytes, 100);
  const big = of([0, 4 * HOLE_MIN]);
  big.remove(HOLE_MIN, 2 * HOLE_MIN);
  const layout = planLayout(4 * HOLE_MIN, big);
  t.same(layout?.extents.map((e) => [e.offset, e.length]), [[0, HOLE_MIN], [2 * HOLE_MIN, 2 * HOLE_MIN]], 'a 1 MiB punched hole is stored as a hole');
});

t.test('D8: only gaps of at least 1 MiB are kept as holes; a file without one stays dense', async (t) => {
  const of = (...r: Array<[number, number]>) => ExtentSet.of(r.map(([offset, length]) => ({ offset, length })));
  t.equal(planLayout(10 * MiB, of([0, 10 * MiB])), undefined, 'fully written: dense');
  t.equal(planLayout(HOLE_MIN - 1, of()), undefined, 'a small empty file: dense zeros');
  t.same(planLayout(1024 ** 4, of())!.extents, [], 'truncate -s 1T: no data at all');
  t.same(planLayout(1024 ** 4, of([1024 ** 4 - 1, 1]))!.extents, [{ offset: 1024 ** 4 - 1, length: 1 }], 'one byte at the end');
  t.same(planLayout(8 * MiB, of([0, 100], [200, 100], [4 * MiB, 10]))!.extents, [
    { offset: 0, length: 300 },
    { offset: 4 * MiB, length: 10 },
  ], 'a small gap is stored as zeros; trailing hole kept');
  t.same(planLayout(3 * MiB, of([1000, 10], [2 * MiB + 10, MiB - 10]))!.extents, [
    { offset: 0, length: 1010 },
    { offset: 2 * MiB + 10, length: MiB - 10 },
  ], 'a small leading gap is stored as zeros');
  t.equal(planLayout(2 * MiB, of([0, MiB], [MiB + 10, MiB - 10])), undefined, 'only small gaps: dense');
  // More pieces than MAX_EXTENTS, with gaps alternating 2 and 3 MiB: the smallest gaps are stored
  // as zeros first, the bigger holes stay holes, and the header stays bounded.
  const n = MAX_EXTENTS + 1000;
  const at: number[] = [];
  for (let i = 0, pos = 0; i < n; i++, pos += i % 2 ? 2 * MiB : 3 * MiB) at.push(pos);
  const end = at[n - 1]! + 10 * MiB;
  const l = planLayout(end, of(...at.map((p): [number, number] => [p, 1])))!;
  t.equal(l.extents.length, MAX_EXTENTS, 'exactly MAX_EXTENTS extents');
  const gaps = l.extents.slice(1).map((e, i) => e.offset - (l.extents[i]!.offset + l.extents[i]!.length));
  t.ok(gaps.filter((g) => g >= 3 * MiB - 1).length >= (n - 1) / 2 - 1, 'every 3 MiB gap is still a hole');
  t.ok(at.every((p) => l.segments(p, 1)[0]!.blobOffset !== null), 'every written byte is in the data');
});

/** A memory store that counts the bytes read from it. */
class CountingStore extends MemoryBlobStore {
  bytesRead = 0;
  override async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const b = await super.getRange(key, offset, length);
    this.bytesRead += b.length;
    return b;
  }
}

t.test('D8: a sparse file is stored as its container and read through its layout; holes are never fetched', async (t) => {
  const store = new CountingStore();
  const lib = Library.open(join(work, 'lib-sparse'), { create: true, blobStore: store });
  const reader = new ContentReader(lib, { pageSize: 64 * 1024, readaheadMax: 0 });
  t.teardown(() => lib.close());
  const data1 = randomBytes(1000);
  const data2 = randomBytes(70_000);
  const size = 64 * MiB;
  const layout = SparseLayout.fromExtents(size, [
    { offset: 5 * MiB, length: data1.length },
    { offset: size - data2.length, length: data2.length },
  ]);
  const container = Buffer.concat([Buffer.from(layout.header, 'latin1'), data1, data2]);
  const path = join(work, 'container');
  await writeFile(path, container);
  const stored = await lib.storeBlobFromFile(path);
  t.equal(stored.key, createHash('sha256').update(container).digest('hex'), 'the key is the SHA-256 of the container bytes');
  t.equal(stored.size, container.length);
  const ref = { ...stored, size, etag: sparseEtag(stored.etag), layout: layout.header };
  const info = lib.space().putFile('sparse.bin', ref).info;
  t.equal(info.size, size, 'the file has its logical size');
  t.equal(info.layout, layout.header, 'and its layout');
  t.match(info.etag, /^[0-9a-f]{32}-sparse$/);
  t.equal(lib.blobSize(stored.key), container.length, 'the blob size is the container size');

  store.bytesRead = 0;
  const hole = await reader.readContent(info, 10 * MiB, 4 * MiB);
  t.equal(hole.length, 4 * MiB);
  t.ok(hole.every((b) => b === 0), 'a hole reads as zeros');
  t.equal(store.bytesRead, 0, 'without a single byte from the store');

  const around = await reader.readContent(info, 5 * MiB - 10, 1020);
  t.same(around, Buffer.concat([Buffer.alloc(10), data1, Buffer.alloc(10)]), 'data and the holes around it');
  const tail = await reader.readContent(info, size - data2.length - 5, 100_000);
  t.same(tail, Buffer.concat([Buffer.alloc(5), data2]), 'clipped at the end');
  t.ok(store.bytesRead <= 2 * 64 * 1024 + data2.length, `only pages of data were fetched (${store.bytesRead} bytes)`);

  // A copy (SMH copy, CLI cp) carries the layout with the blob.
  const copied = lib.space().copy('sparse.bin', 'copy.bin').info;
  t.equal(copied.layout, layout.header);
  t.same(await reader.readContent(copied, 5 * MiB, 1000), data1);
});

t.test('D7: kept descriptors of blobs deleted by another process are closed: the space comes back', async (t) => {
  const dir = join(work, 'local-sweep');
  const store = new LocalBlobStore(dir);
  t.teardown(() => store.close());
  const bytes = randomBytes(100_000);
  const { key } = await store.putStream(bytes);
  t.same(await store.getRange(key, 0, 10), bytes.subarray(0, 10), 'read once: the descriptor is kept');
  const held = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
      if (target.includes(key)) out.push(target);
    }
    return out;
  };
  t.equal((await held()).length, 1, 'one descriptor on the blob');
  await unlink(store.pathOf(key)); // what another process's collector does
  t.match((await held())[0], /\(deleted\)$/, 'it now pins a deleted file');
  t.equal(store.sweepDeleted(), 1, 'the sweep closes it');
  await new Promise((r) => setTimeout(r, 50)); // the close runs on the thread pool
  t.same(await held(), [], 'no descriptor on the deleted blob any more');
  await t.rejects(store.getRange(key, 0, 10), { code: 'BlobMissing' }, 'and the next read says it is gone');
});
