// Issue 16, "local reads at the binding's ceiling": ContentReader.localFile lends a binding the
// descriptor of a local blob file, so a read can be answered from the file (splice, or one read
// into the reply) instead of through the page cache. Without FUSE: the descriptor reads exactly
// the file's bytes at the file's offsets; it is offered only for a dense version of a local blob
// whose descriptor is open, never for a sparse version, an S3/other store or an empty file; it
// stays open while lent, even when the blob is deleted and swept meanwhile (D7).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { SparseLayout, sparseEtag } from '../src/blob/sparse.js';
import { Library } from '../src/store/library.js';
import { ContentReader } from '../src/vfs/reader.js';
import { MemoryBlobStore } from './helpers/memory-store.js';

const work = await mkdtemp(join(tmpdir(), 'smhfs-local-file-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

function preadAll(fd: number, position: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return out.subarray(0, done);
}

t.test('a dense file of a local library: its blob file descriptor, once open, with the file\'s bytes at its offsets', async (t) => {
  const lib = Library.open(join(work, 'lib'), { create: true });
  t.teardown(() => lib.close());
  const reader = new ContentReader(lib);
  const bytes = randomBytes(3 * 1024 * 1024 + 123);
  const src = join(work, 'src.bin');
  await writeFile(src, bytes);
  const stored = await lib.storeBlobFromFile(src);
  const info = lib.space().putFile('a.bin', stored).info;

  t.equal(reader.localFile(info), undefined, 'not before its descriptor is open (nothing opened by asking)');
  t.same(await reader.readContent(info, 0, 16), bytes.subarray(0, 16), 'a read through the page cache opens it');
  const f = reader.localFile(info);
  if (!f) throw new Error('no local file after a read');
  t.equal(f.size, bytes.length, 'its size is the file\'s');
  for (const [pos, len] of [
    [0, 4096],
    [1024 * 1024 - 7, 128 * 1024],
    [bytes.length - 100, 1024 * 1024],
  ] as const) {
    t.same(preadAll(f.fd, pos, len), bytes.subarray(pos, pos + len), `bytes ${pos}+${len} (clipped at the end)`);
  }
  f.release();
  f.release(); // once only: a second call does nothing

  const sparseLayout = SparseLayout.fromExtents(8 * 1024 * 1024, [{ offset: 4096, length: 10 }]);
  const container = Buffer.concat([Buffer.from(sparseLayout.header, 'latin1'), Buffer.alloc(10, 7)]);
  await writeFile(src, container);
  const c = await lib.storeBlobFromFile(src);
  const sparse = lib.space().putFile('sparse.bin', { ...c, size: 8 * 1024 * 1024, etag: sparseEtag(c.etag), layout: sparseLayout.header }).info;
  await reader.readContent(sparse, 4096, 10);
  t.equal(reader.localFile(sparse), undefined, 'never for a sparse version (its offsets map through the layout)');

  await writeFile(src, '');
  const empty = lib.space().putFile('empty.bin', await lib.storeBlobFromFile(src)).info;
  t.equal(reader.localFile(empty), undefined, 'nor for an empty file');
  t.equal(reader.localFile({ ...info, size: info.size + 1 }), undefined, 'nor when the blob is not the size the version says');
});

t.test('another store: never a descriptor', async (t) => {
  const lib = Library.open(join(work, 'lib-mem'), { create: true, blobStore: new MemoryBlobStore() });
  t.teardown(() => lib.close());
  const reader = new ContentReader(lib);
  const src = join(work, 'mem.bin');
  await writeFile(src, randomBytes(5000));
  const info = lib.space().putFile('m.bin', await lib.storeBlobFromFile(src)).info;
  await reader.readContent(info, 0, 100);
  t.equal(reader.localFile(info), undefined, 'the page cache reads it');
});

t.test('D7: a lent descriptor stays open until released, even when the blob is deleted and swept', async (t) => {
  const dir = join(work, 'store');
  const store = new LocalBlobStore(dir);
  t.teardown(() => store.close());
  const bytes = randomBytes(200_000);
  const { key } = await store.putStream(bytes);
  t.equal(store.fileSync(key), undefined, 'not open yet');
  const f = await store.openFile(key);
  t.equal(f.size, bytes.length);
  await unlink(store.pathOf(key));
  t.equal(store.sweepDeleted(), 1, 'the sweep drops the deleted blob\'s descriptor');
  t.equal(store.fileSync(key), undefined, 'and lends it no more');
  t.same(preadAll(f.fd, 1000, 5000), bytes.subarray(1000, 6000), 'the lent descriptor still reads the bytes');
  f.release();
  await t.rejects(store.openFile(key), { code: 'BlobMissing' }, 'a deleted blob cannot be opened again');
});
