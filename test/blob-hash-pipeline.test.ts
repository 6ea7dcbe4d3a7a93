// BackgroundHasher (B5's commit needs the key and ETag of what was written): hashing on the shared
// worker thread gives exactly the bytes' SHA-256 and MD5, whatever the chunking, for many hashes
// interleaved; dropped hashes leave the others intact; the backlog bound makes writers wait and
// then lets them go; and the caller may reuse its buffer as soon as update returns.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { BackgroundHasher, HASH_BACKLOG_LIMIT } from '../src/blob/hash-pipeline.js';
import { hashBuffer } from '../src/blob/hash.js';

t.test('B5: digest equals the inline hash, for any chunking', async (t) => {
  for (const size of [0, 1, 4096, 128 * 1024 + 7, 5 * 1024 * 1024 + 3]) {
    const bytes = randomBytes(size);
    const h = new BackgroundHasher();
    for (let off = 0; off < size; ) {
      const n = Math.min(size - off, 1 + Math.floor(Math.random() * 300_000));
      h.update(bytes.subarray(off, off + n));
      off += n;
    }
    t.equal(h.size, size);
    t.same(await h.digest(), hashBuffer(bytes), `${size} bytes`);
  }
});

t.test('B5: interleaved hashes and a dropped one do not mix', async (t) => {
  const a = randomBytes(300_000);
  const b = randomBytes(200_000);
  const ha = new BackgroundHasher();
  const hb = new BackgroundHasher();
  const hc = new BackgroundHasher();
  for (let off = 0; off < 300_000; off += 50_000) {
    ha.update(a.subarray(off, off + 50_000));
    hc.update(randomBytes(1000));
    if (off < 200_000) hb.update(b.subarray(off, off + 50_000));
  }
  hc.drop();
  t.throws(() => hc.update(Buffer.alloc(1)), /after digest/, 'a dropped hasher refuses updates');
  const [da, db] = await Promise.all([ha.digest(), hb.digest()]);
  t.same(da, hashBuffer(a));
  t.same(db, hashBuffer(b));
});

t.test('B5: the caller may reuse its buffer as soon as update returns', async (t) => {
  const buf = Buffer.alloc(128 * 1024, 1);
  const expected = Buffer.concat([Buffer.alloc(128 * 1024, 1), Buffer.alloc(128 * 1024, 2)]);
  const h = new BackgroundHasher();
  h.update(buf);
  buf.fill(2); // what the kernel does to its request buffer after our callback
  h.update(buf);
  buf.fill(3);
  t.same(await h.digest(), hashBuffer(expected));
});

t.test('B5: a writer far ahead of the worker is told to wait, then released', async (t) => {
  const chunk = randomBytes(8 << 20);
  const h = new BackgroundHasher();
  const all: Buffer[] = [];
  let sawBehind = false;
  // Post well past the limit without yielding: the worker cannot have caught up.
  while (!h.behind) {
    h.update(chunk);
    all.push(chunk);
  }
  sawBehind = h.behind;
  t.ok(sawBehind, `behind after ${all.length} chunks (${HASH_BACKLOG_LIMIT >> 20} MiB limit)`);
  await h.drained();
  t.notOk(h.behind, 'drained() resolves once the backlog is under the limit again');
  t.same(await h.digest(), hashBuffer(Buffer.concat(all)), 'and nothing was lost on the way');
});
