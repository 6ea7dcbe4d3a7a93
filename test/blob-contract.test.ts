// One contract suite for every BlobStore (B1): local directory, in-memory, the fault-injecting
// wrapper with faults off, and S3 against a real s3rver on 127.0.0.1:<random port>. Every read
// is compared byte for byte with what was written (the aws-chunked trap changes bytes, not keys).
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FaultInjectingStore } from '../src/blob/fault-store.js';
import { hashBuffer, hashFile } from '../src/blob/hash.js';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { s3rverStore, startS3rver } from './helpers/s3rver-harness.js';
import { EMPTY_BLOB_KEY, type BlobInfo, type BlobStore } from '../src/blob/types.js';

const MiB = 1024 * 1024;
const work = await mkdtemp(join(tmpdir(), 'smhfs-blob-contract-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

interface Sample {
  name: string;
  bytes: Buffer;
  key: string;
  path: string;
}
async function sample(name: string, size: number): Promise<Sample> {
  const bytes = randomBytes(size);
  const path = join(work, `${name}.bin`);
  await writeFile(path, bytes);
  const h = await hashFile(path);
  return { name, bytes, key: h.sha256, path };
}

const small = await sample('small', 3);
const mid = await sample('mid', 2 * MiB + 12345); // crosses the 1 MiB and 2 MiB marks
const big = await sample('big', 40 * MiB + 7); // multipart on S3 (> 16 MiB threshold, 8 MiB parts)
const streamBig = randomBytes(20 * MiB + 3); // putStream of a stream larger than one PutObject

function sameBytes(tt: Tap, got: Buffer, want: Buffer, msg: string): void {
  tt.equal(got.length, want.length, `${msg}: length`);
  tt.ok(got.equals(want), `${msg}: every byte equal`);
}
type Tap = Pick<typeof t, 'equal' | 'ok'>;

async function collect(it: AsyncIterable<BlobInfo>): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for await (const b of it) {
    if (m.has(b.key)) throw new Error(`list returned ${b.key} twice`);
    m.set(b.key, b.size);
  }
  return m;
}

/** Read a whole blob back in `chunk`-sized ranges and compare with the source. */
async function readBack(store: BlobStore, key: string, size: number, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += chunk) parts.push(await store.getRange(key, off, chunk));
  return Buffer.concat(parts);
}

function contract(name: string, make: () => Promise<BlobStore>): void {
  t.test(`contract: ${name}`, async (t) => {
    const store = await make();
    t.teardown(() => store.close?.());

    t.test('empty store lists nothing and heads nothing', async (t) => {
      t.equal(await store.isEmpty?.(), true, 'it says it is empty');
      t.same(await collect(store.list()), new Map());
      t.equal(await store.head(small.key), undefined);
    });

    t.test('putFile, head, full read', async (t) => {
      await store.putFile(small.key, small.path, small.bytes.length);
      await store.putFile(mid.key, mid.path, mid.bytes.length);
      t.same(await store.head(small.key), { key: small.key, size: 3 });
      t.same(await store.head(mid.key), { key: mid.key, size: mid.bytes.length });
      sameBytes(t, await store.getRange(small.key, 0, 3), small.bytes, 'small');
      sameBytes(t, await store.getRange(mid.key, 0, mid.bytes.length), mid.bytes, 'mid whole');
    });

    t.test('ranged reads at the boundaries', async (t) => {
      const b = mid.bytes;
      const n = b.length;
      sameBytes(t, await store.getRange(mid.key, 0, 1), b.subarray(0, 1), 'first byte');
      sameBytes(t, await store.getRange(mid.key, n - 1, 1), b.subarray(n - 1), 'last byte');
      sameBytes(t, await store.getRange(mid.key, MiB - 5, 10), b.subarray(MiB - 5, MiB + 5), 'across 1 MiB');
      sameBytes(t, await store.getRange(mid.key, MiB, MiB), b.subarray(MiB, 2 * MiB), 'exactly the second MiB');
      sameBytes(t, await store.getRange(mid.key, 2 * MiB - 1, 2), b.subarray(2 * MiB - 1, 2 * MiB + 1), 'across 2 MiB');
      sameBytes(t, await store.getRange(mid.key, n - 10, 100), b.subarray(n - 10), 'past the end is short');
      t.equal((await store.getRange(mid.key, n, 10)).length, 0, 'offset == size: empty');
      t.equal((await store.getRange(mid.key, n + 5000, 10)).length, 0, 'offset > size: empty');
      t.equal((await store.getRange(mid.key, 100, 0)).length, 0, 'length 0: empty');
      sameBytes(t, await store.getRange(small.key, 1, 1), small.bytes.subarray(1, 2), 'middle byte of a tiny blob');
    });

    t.test('putStream from a Readable and from a Buffer', async (t) => {
      const bytes = randomBytes(300_000);
      const chunks = [bytes.subarray(0, 1), bytes.subarray(1, 70_000), bytes.subarray(70_000)];
      const info = await store.putStream(Readable.from(chunks));
      t.same(info, { key: hashBuffer(bytes).sha256, size: bytes.length });
      sameBytes(t, await store.getRange(info.key, 0, bytes.length), bytes, 'stream blob');

      const buf = randomBytes(4096);
      const info2 = await store.putStream(buf);
      t.same(info2, { key: createHash('sha256').update(buf).digest('hex'), size: 4096 });
      sameBytes(t, await store.getRange(info2.key, 0, 4096), buf, 'buffer blob');
      t.same(await store.head(info2.key), info2);
    });

    t.test('a large putStream (spooled, multipart on S3)', async (t) => {
      const info = await store.putStream(Readable.from([streamBig.subarray(0, 5 * MiB), streamBig.subarray(5 * MiB)]));
      t.same(info, { key: hashBuffer(streamBig).sha256, size: streamBig.length });
      sameBytes(t, await readBack(store, info.key, streamBig.length, 4 * MiB), streamBig, 'large stream blob');
      await store.delete(info.key);
    });

    t.test('the empty blob needs no storage', async (t) => {
      const info = await store.putStream(Buffer.alloc(0));
      t.same(info, { key: EMPTY_BLOB_KEY, size: 0 });
      t.same(await store.head(EMPTY_BLOB_KEY), { key: EMPTY_BLOB_KEY, size: 0 });
      t.equal((await store.getRange(EMPTY_BLOB_KEY, 0, 10)).length, 0);
    });

    t.test('idempotent put of the same key', async (t) => {
      await store.putFile(small.key, small.path, 3);
      await store.putFile(small.key, small.path, 3);
      t.same(await store.putStream(Readable.from([small.bytes])), { key: small.key, size: 3 });
      const listed = await collect(store.list());
      t.equal(listed.get(small.key), 3, 'listed once with its size');
      sameBytes(t, await store.getRange(small.key, 0, 3), small.bytes, 'content intact');
    });

    t.test('list returns every stored key with its size', async (t) => {
      const listed = await collect(store.list());
      t.equal(listed.get(small.key), small.bytes.length);
      t.equal(listed.get(mid.key), mid.bytes.length);
      t.notOk(listed.has(EMPTY_BLOB_KEY), 'the empty blob is not stored');
      t.equal(listed.size, 4, 'small, mid, the stream blob, the buffer blob');
    });

    t.test('a large blob (multipart on S3) round-trips byte for byte', async (t) => {
      await store.putFile(big.key, big.path, big.bytes.length);
      t.same(await store.head(big.key), { key: big.key, size: big.bytes.length });
      const back = await readBack(store, big.key, big.bytes.length, 3 * MiB + 1);
      sameBytes(t, back, big.bytes, '40 MiB blob');
      t.equal(hashBuffer(back).sha256, big.key, 'read-back hashes to its key');
      const n = big.bytes.length;
      sameBytes(t, await store.getRange(big.key, 8 * MiB - 3, 6), big.bytes.subarray(8 * MiB - 3, 8 * MiB + 3), 'across a part boundary');
      sameBytes(t, await store.getRange(big.key, n - 1, 1), big.bytes.subarray(n - 1), 'last byte');
    });

    const into = (store as Partial<{ getRangeInto(key: string, offset: number, targets: Buffer[]): Promise<void> }>).getRangeInto;
    if (into) {
      t.test('B2: getRangeInto fills page buffers exactly, or fails', async (t) => {
        const fill = (key: string, offset: number, targets: Buffer[]) => into.call(store, key, offset, targets);
        const targets = [Buffer.alloc(MiB), Buffer.alloc(MiB), Buffer.alloc(123)];
        await fill(big.key, 5 * MiB - 7, targets);
        sameBytes(t, Buffer.concat(targets), big.bytes.subarray(5 * MiB - 7, 7 * MiB - 7 + 123), 'three targets across page marks');
        const tail = [Buffer.alloc(MiB), Buffer.alloc(big.bytes.length % MiB)];
        await fill(big.key, big.bytes.length - tail[0]!.length - tail[1]!.length, tail);
        sameBytes(t, Buffer.concat(tail), big.bytes.subarray(big.bytes.length - MiB - (big.bytes.length % MiB)), 'up to the last byte');
        await t.rejects(fill(big.key, big.bytes.length - 10, [Buffer.alloc(20)]), { code: 'BlobUnavailable' }, 'past the end: an error, not a short read');
        await t.rejects(fill('f'.repeat(64), 0, [Buffer.alloc(10)]), { code: 'BlobMissing' }, 'absent key');
        await t.rejects(fill('nope', 0, [Buffer.alloc(10)]), { code: 'InvalidArgument' }, 'not a key');
      });
    }

    t.test('delete, also of an absent key', async (t) => {
      await store.delete(big.key);
      t.equal(await store.head(big.key), undefined, 'head: gone');
      await t.rejects(store.getRange(big.key, 0, 1), { code: 'BlobMissing' }, 'read of a deleted blob');
      await t.resolves(store.delete(big.key), 'delete again: fine');
      const absent = 'f'.repeat(64);
      await t.resolves(store.delete(absent), 'delete of a never-stored key: fine');
      t.notOk((await collect(store.list())).has(big.key), 'not listed');
      sameBytes(t, await store.getRange(mid.key, 0, 10), mid.bytes.subarray(0, 10), 'other blobs untouched');
    });

    t.test('D1: the owner marker is written once, read back, and never listed as a blob', async (t) => {
      t.ok(store.readMarker && store.createMarker, 'the store keeps an owner marker');
      t.equal(await store.readMarker!(), undefined, 'no marker at first');
      t.equal(await store.isEmpty!(), false, 'a store with blobs is not empty');
      const listedBefore = await collect(store.list());
      t.equal(await store.createMarker!('{"library":"smhA"}'), true, 'the first create writes it');
      t.equal(await store.createMarker!('{"library":"smhB"}'), false, 'a second create does not replace it');
      t.equal(await store.readMarker!(), '{"library":"smhA"}', 'the first writer owns it');
      t.same(await collect(store.list()), listedBefore, 'listings skip the marker');
      for await (const b of store.list()) {
        t.ok(b.modifiedMs === undefined || (b.modifiedMs > 0 && b.modifiedMs <= Date.now() + 5000), 'a listed time is a real time');
        break;
      }
    });

    t.test('bad input is refused with typed errors', async (t) => {
      await t.rejects(store.getRange('f'.repeat(64), 0, 1), { code: 'BlobMissing' }, 'absent key');
      await t.rejects(store.getRange('../../etc/passwd', 0, 1), { code: 'InvalidArgument' }, 'not a key');
      await t.rejects(store.getRange(mid.key.toUpperCase(), 0, 1), { code: 'InvalidArgument' }, 'uppercase key');
      await t.rejects(store.getRange(mid.key, -1, 1), { code: 'InvalidArgument' }, 'negative offset');
      await t.rejects(store.getRange(mid.key, 0, 1.5), { code: 'InvalidArgument' }, 'fractional length');
      await t.rejects(store.head('nope'), { code: 'InvalidArgument' }, 'head of a non-key');
      await t.rejects(store.putFile(small.key, small.path, 4), { code: 'InvalidArgument' }, 'putFile with the wrong size');
      await t.rejects(store.putFile(small.key, join(work, 'no-such-file'), 3), { code: 'InvalidArgument' }, 'putFile of a missing file (key stored)');
      await t.rejects(store.putFile('e'.repeat(64), join(work, 'no-such-file'), 3), { code: 'InvalidArgument' }, 'putFile of a missing file (key new)');
      t.equal(await store.head('e'.repeat(64)), undefined, 'nothing stored by a failed put');
    });
  });
}

contract('LocalBlobStore', async () => new LocalBlobStore(await mkdtemp(join(work, 'local-'))));
contract('MemoryBlobStore', async () => new MemoryBlobStore());
contract('FaultInjectingStore(memory), faults off', async () => new FaultInjectingStore(new MemoryBlobStore()));

const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), ['smhfs-contract']);
t.teardown(() => s3.close());
contract('S3BlobStore on s3rver', async () =>
  s3rverStore(s3, 'smhfs-contract', 'lib-a'),
);
// Ranged reads through the SDK (what https endpoints use) instead of the store's own reader.
contract('S3BlobStore on s3rver, reads through the SDK', async () =>
  s3rverStore(s3, 'smhfs-contract', 'lib-b', { leanGets: false }),
);
