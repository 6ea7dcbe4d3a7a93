// FileHasher (B5's commit needs the key and ETag of what was written): the hash worker reads the
// announced extents back from the file and gives exactly its SHA-256 and MD5, whatever the write
// sizes; overlapping appends are announced only once all are written; interleaved and dropped
// hashes do not mix; an unreadable file fails the digest instead of inventing one; and the
// backlog bound makes writers wait, then lets them go.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileHasher, HASH_BACKLOG_LIMIT } from '../src/blob/hash-pipeline.js';
import { hashBuffer } from '../src/blob/hash.js';

const work = await mkdtemp(join(tmpdir(), 'smhfs-hash-pipeline-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
let n = 0;

/** Write `bytes` to a new file in random-sized appends, announcing each; returns the digest. */
async function appendAll(bytes: Buffer): Promise<ReturnType<typeof hashBuffer>> {
  const path = join(work, `f${n++}`);
  const fd = openSync(path, 'w');
  const h = new FileHasher(path);
  try {
    for (let off = 0; off < bytes.length; ) {
      const len = Math.min(bytes.length - off, 1 + Math.floor(Math.random() * 300_000));
      t.ok(h.appendAt(off, len) || len === 0, 'an append');
      writeSync(fd, bytes, off, len, off);
      h.appended();
      off += len;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest();
}

t.test('B5: digest equals the inline hash, for any write sizes', async (t) => {
  for (const size of [0, 1, 4096, 128 * 1024 + 7, 5 * 1024 * 1024 + 3]) {
    const bytes = randomBytes(size);
    t.same(await appendAll(bytes), hashBuffer(bytes), `${size} bytes`);
  }
});

t.test('B5: overlapping appends are hashed only once all of them are in the file', async (t) => {
  const path = join(work, 'overlap');
  const bytes = randomBytes(3 << 20);
  await writeFile(path, Buffer.alloc(0));
  const fd = openSync(path, 'r+');
  const h = new FileHasher(path);
  const MiB = 1 << 20;
  t.ok(h.appendAt(0, MiB), 'first append starts');
  t.ok(h.appendAt(MiB, MiB), 'second starts before the first is written');
  t.notOk(h.appendAt(MiB, 10), 'a write that is not at the end is not an append');
  writeSync(fd, bytes, MiB, MiB, MiB); // the second lands first
  h.appended();
  t.equal(h.size, 0, 'nothing announced while the first is still missing');
  writeSync(fd, bytes, 0, MiB, 0);
  h.appended();
  t.equal(h.size, 2 * MiB, 'both announced once both are written');
  t.ok(h.appendAt(2 * MiB, MiB));
  writeSync(fd, bytes, 2 * MiB, MiB, 2 * MiB);
  h.appended();
  closeSync(fd);
  t.ok(h.covers(3 * MiB), 'covers the whole file');
  t.same(await h.digest(), hashBuffer(bytes));
});

t.test('B5: interleaved hashes and a dropped one do not mix; a missing file fails the digest', async (t) => {
  const a = randomBytes(300_000);
  const b = randomBytes(2_000_000);
  const [da, db] = await Promise.all([appendAll(a), appendAll(b)]);
  t.same(da, hashBuffer(a));
  t.same(db, hashBuffer(b));
  const path = join(work, 'dropped');
  await writeFile(path, randomBytes(2 << 20));
  const dropped = new FileHasher(path).advance(2 << 20);
  dropped.drop();
  t.throws(() => dropped.advance(3 << 20), /after digest/, 'a dropped hasher refuses more');
  const gone = join(work, 'gone');
  await writeFile(gone, randomBytes(10));
  const h = new FileHasher(gone);
  await unlink(gone);
  h.advance(10);
  await t.rejects(h.digest(), /hashing failed/, 'an unreadable file: no digest is invented');
  t.same(await appendAll(a), hashBuffer(a), 'the worker carries on');
});

t.test('B5: a writer far ahead of the worker is told to wait, then released', async (t) => {
  const path = join(work, 'big');
  const size = HASH_BACKLOG_LIMIT + (16 << 20);
  const bytes = randomBytes(size);
  await writeFile(path, bytes);
  const h = new FileHasher(path);
  h.advance(size); // announced at once: the worker cannot have caught up
  t.ok(h.behind, `behind with ${size >> 20} MiB announced (${HASH_BACKLOG_LIMIT >> 20} MiB limit)`);
  await h.drained();
  t.notOk(h.behind, 'drained() resolves once the backlog is under the limit again');
  t.same(await h.digest(), hashBuffer(bytes), 'and nothing was lost on the way');
});
