// LocalBlobStore specifics (B1, B6): the fan-out layout, verification of content against the
// key, copy-not-link, stale temp cleanup, and a writer killed with SIGKILL mid-upload leaving
// nothing visible. Plus the hashing helpers and failing uploads through the fault wrapper.
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FaultInjectingStore } from '../src/blob/fault-store.js';
import { HashingTransform, hashBuffer, hashFile } from '../src/blob/hash.js';
import { LocalBlobStore } from '../src/blob/local-store.js';

const work = await mkdtemp(join(tmpdir(), 'smhfs-blob-local-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

async function listKeys(s: LocalBlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const b of s.list()) out.push(b.key);
  return out.sort();
}

t.test('hashing helpers agree', async (t) => {
  const bytes = randomBytes(3 * 1024 * 1024 + 5);
  const p = join(work, 'h.bin');
  await writeFile(p, bytes);
  const viaBuf = hashBuffer(bytes);
  t.same(await hashFile(p), viaBuf, 'hashFile == hashBuffer');
  const h = new HashingTransform();
  const sink: Buffer[] = [];
  await pipeline(Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]), h, async function (src) {
    for await (const c of src) sink.push(c as Buffer);
  });
  t.same(h.digest(), viaBuf, 'HashingTransform == hashBuffer');
  t.ok(Buffer.concat(sink).equals(bytes), 'the transform passes bytes through unchanged');
  t.equal(hashBuffer(Buffer.alloc(0)).sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.equal(hashBuffer(Buffer.from('abc')).md5, '900150983cd24fb0d6963f7d28e17f72');
});

t.test('fan-out layout, copy not link, content verified against the key', async (t) => {
  const dir = join(work, 'layout');
  const s = new LocalBlobStore(dir);
  t.teardown(() => s.close());
  const bytes = randomBytes(10_000);
  const staged = join(work, 'staged.bin');
  await writeFile(staged, bytes);
  const { sha256: key } = hashBuffer(bytes);
  await s.putFile(key, staged, bytes.length);
  const p = join(dir, key.slice(0, 2), key.slice(2, 4), key);
  t.equal(s.pathOf(key), p);
  t.ok((await readFile(p)).equals(bytes), 'stored at ab/cd/<key>');
  t.equal((await stat(p)).nlink, 1, 'a copy, not a hard link to the staged file');
  await writeFile(staged, randomBytes(10_000)); // the writer keeps using its staging file
  t.ok((await readFile(p)).equals(bytes), 'the blob does not change with the staging file');

  const wrongKey = 'a'.repeat(64);
  await t.rejects(s.putFile(wrongKey, staged, 10_000), { code: 'InvalidArgument', message: /does not match/ });
  t.equal(await s.head(wrongKey), undefined, 'nothing stored under a wrong key');
  t.same(await readdir(join(dir, '.tmp')), [], 'no temp file left behind');

  // Foreign files in the tree are not blobs.
  await mkdir(join(dir, 'zz'), { recursive: true });
  await writeFile(join(dir, key.slice(0, 2), key.slice(2, 4), 'notes.txt'), 'x');
  await writeFile(join(dir, '.tmp', 'x.tmp'), 'x');
  t.same(await listKeys(s), [key], 'list shows only well-formed blobs');
});

t.test('stale temp files are removed on construction, fresh ones kept', async (t) => {
  const dir = join(work, 'stale');
  new LocalBlobStore(dir);
  const old = join(dir, '.tmp', '111-old.tmp');
  const fresh = join(dir, '.tmp', '222-fresh.tmp');
  await writeFile(old, 'half a blob');
  await writeFile(fresh, 'a live writer');
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  await utimes(old, twoHoursAgo, twoHoursAgo);
  const s = new LocalBlobStore(dir);
  t.teardown(() => s.close());
  t.equal(s.cleanedTempFiles, 1);
  t.same(await readdir(join(dir, '.tmp')), ['222-fresh.tmp']);
});

t.test('a writer killed with SIGKILL mid-put leaves no visible blob; its temp file is cleaned', async (t) => {
  const dir = join(work, 'crash');
  const storeUrl = new URL('../src/blob/local-store.js', import.meta.url).href;
  const script = join(work, 'crash-writer.mjs');
  await writeFile(
    script,
    `import { LocalBlobStore } from ${JSON.stringify(storeUrl)};
     import { randomBytes } from 'node:crypto';
     const s = new LocalBlobStore(process.argv[2]);
     async function* slow() {
       for (let i = 0; ; i++) {
         yield randomBytes(64 * 1024);
         if (i === 3) process.stdout.write('writing\\n');
         await new Promise((r) => setTimeout(r, 5));
       }
     }
     await s.putStream(slow());`,
  );
  const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('writing')) resolve();
    });
    child.on('exit', () => reject(new Error('writer exited early')));
  });
  const exited = new Promise((r) => child.on('exit', (_code, signal) => r(signal)));
  child.kill('SIGKILL');
  t.equal(await exited, 'SIGKILL');

  const tmpFiles = await readdir(join(dir, '.tmp'));
  t.equal(tmpFiles.length, 1, 'the half-written temp file is there');
  t.ok((await stat(join(dir, '.tmp', tmpFiles[0]!))).size > 0);
  const reopened = new LocalBlobStore(dir, { staleTempAgeMs: 0 });
  t.same(await listKeys(reopened), [], 'no blob is visible');
  t.equal(reopened.cleanedTempFiles, 1, 'the leftover is cleaned');
  t.same(await readdir(join(dir, '.tmp')), []);
});

t.test('check() and failing uploads through the fault wrapper', async (t) => {
  const dir = join(work, 'faulty');
  const local = new LocalBlobStore(dir);
  t.teardown(() => local.close());
  await t.resolves(local.check());
  const s = new FaultInjectingStore(local);
  const bytes = randomBytes(1000);
  const staged = join(work, 'f.bin');
  await writeFile(staged, bytes);
  const { sha256: key } = hashBuffer(bytes);
  s.failNext(1, ['putFile', 'putStream']);
  await t.rejects(s.putFile(key, staged, 1000), { code: 'BlobUnavailable', message: /injected/ });
  t.equal(await s.head(key), undefined, 'failed upload stored nothing');
  await s.putFile(key, staged, 1000);
  t.ok((await s.getRange(key, 0, 1000)).equals(bytes), 'the retry stores it');
  t.same(s.stats.calls, { putFile: 2, putStream: 0, getRange: 1, head: 1, delete: 0, list: 0 });
  t.equal(s.stats.injectedFailures, 1);
});

t.test('B5: adoptFile takes a staged file over by rename; an existing key just drops the file', async (t) => {
  const s = new LocalBlobStore(join(work, 'adopt'));
  t.teardown(() => s.close());
  const bytes = randomBytes(300_000);
  const staged = join(work, 'adopt-staged.bin');
  await writeFile(staged, bytes);
  const before = await stat(staged);
  const h = hashBuffer(bytes);
  await s.adoptFile(h.sha256, staged, bytes.length);
  await t.rejects(stat(staged), { code: 'ENOENT' }, 'the staged path is gone');
  t.equal((await stat(s.pathOf(h.sha256))).ino, before.ino, 'the blob is the same inode: renamed, not copied');
  t.ok((await s.getRange(h.sha256, 0, bytes.length)).equals(bytes), 'bytes readable under the key');
  await writeFile(staged, bytes);
  await s.adoptFile(h.sha256, staged, bytes.length);
  await t.rejects(stat(staged), { code: 'ENOENT' }, 'an already stored key still consumes the staged file');
  t.same(await listKeys(s), [h.sha256], 'one blob');
  await writeFile(staged, bytes.subarray(1));
  await t.rejects(s.adoptFile(h.sha256, staged, bytes.length), { code: 'InvalidArgument' }, 'a size mismatch is refused');
});

t.test('B2: reads share a bounded set of open blob files; a deleted blob is closed and missing', async (t) => {
  const s = new LocalBlobStore(join(work, 'fds'));
  t.teardown(() => s.close());
  const blobs: Array<{ key: string; bytes: Buffer }> = [];
  for (let i = 0; i < 100; i++) {
    const bytes = randomBytes(10_000 + i);
    blobs.push({ key: (await s.putStream(bytes)).key, bytes });
  }
  const fds = async () => (await readdir('/proc/self/fd')).length;
  const before = await fds();
  for (let round = 0; round < 3; round++) {
    // Concurrent reads of every blob, several per blob, at different offsets.
    const reads = blobs.flatMap(({ key, bytes }) =>
      [0, 17, 5000].map(async (off) => t.ok((await s.getRange(key, off, 100)).equals(bytes.subarray(off, off + 100)))),
    );
    await Promise.all(reads);
  }
  const open = (await fds()) - before;
  t.ok(open <= 64, `at most 64 blob files stay open (${open})`);
  const victim = blobs[99]!;
  t.ok((await s.getRange(victim.key, 0, 10)).equals(victim.bytes.subarray(0, 10)), 'open and cached');
  await s.delete(victim.key);
  await t.rejects(s.getRange(victim.key, 0, 10), { code: 'BlobMissing' }, 'deleted: not served from a kept descriptor');
  await s.close();
  await new Promise((r) => setTimeout(r, 50));
  t.ok((await fds()) <= before, 'close() closes them');
});
