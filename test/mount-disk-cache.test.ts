// The read path through the mount over S3 (s3rver, random port) — issue 16: the on-disk cache
// under <library>/cache survives a remount (the second read fetches 0 bytes from S3, asserted
// through `smhfs stats`) and a kill -9 mid-read (the remount serves only verified pages); a full
// cache disk (a real 3 MiB tmpfs: ENOSPC) and a failing one (injected EIO) cost readers nothing;
// a second process on the library runs memory-only; a local library has no disk cache unless
// asked; random reads through the kernel fetch small units, and a sequential run turns the stream
// back to whole pages. Every test compares bytes with the source.
import t from 'tap';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3rver } from './helpers/s3rver-harness.js';
import { CLI, cleanup, fuseUnavailable, mountStats, ok, sh, smhfs, startMount, withMount, type Mount } from './helpers/mount.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const MiB = 1024 * 1024;
  const work = await mkdtemp(join(tmpdir(), 'smhfs-mount-disk-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), ['smhfs-dc']);
  t.teardown(() => s3.close());
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  let libs = 0;
  const blobArgs = (): string[] => ['--blobs', `s3://smhfs-dc/lib${++libs}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'];
  const src = join(work, 'src.bin');
  await ok(`head -c ${24 * MiB + 12345} /dev/urandom > '${src}'`);

  interface Stats {
    cache: {
      bytesFetched: number;
      toRandom: number;
      toSequential: number;
      unitFetches: number;
      droppedBehind: number;
      disk?: { state: string; hits: number; misses: number; writes: number; corrupt: number; errors: number; entries: number; bytes: number; writesDropped: number; bytesWritten: number; bytesWrittenDirect?: number; pendingWriteBytes?: number };
    };
  }
  // What `smhfs --json stats` prints, asked from this process (the command itself is run below).
  const stats = (m: Mount): Promise<Stats> => mountStats<Stats>(m.mountpoint);
  /** A new S3 library (in its own temp folder) holding src.bin as big.bin. */
  const s3Library = async (): Promise<{ dir: string; args: string[] }> => {
    const dir = await mkdtemp(join(work, 'm-'));
    const args = blobArgs();
    const init = await smhfs(['--library', join(dir, 'lib'), ...args, 'init'], { env });
    if (init.code !== 0) throw new Error(`init: ${init.stderr}`);
    const put = await smhfs(['--library', join(dir, 'lib'), ...args, 'put', src, 'big.bin'], { env });
    if (put.code !== 0) throw new Error(`put: ${put.stderr}`);
    return { dir, args };
  };
  /**
   * One S3 library for the tests that never read its own <library>/cache in a state an earlier
   * test left (a cache on a tmpfs elsewhere, the disk cache off, and a mount that holds the cache's
   * lock while a second runs memory-only): an init and a 24 MiB put fewer for each.
   */
  let shared: Promise<{ dir: string; args: string[] }> | undefined;
  const sharedS3Library = (): Promise<{ dir: string; args: string[] }> => (shared ??= s3Library());
  const cacheFiles = async (lib: string): Promise<string[]> => {
    const out: string[] = [];
    for (const sub of await readdir(join(lib, 'cache', 'v2')).catch(() => [] as string[])) {
      for (const n of await readdir(join(lib, 'cache', 'v2', sub))) out.push(join(lib, 'cache', 'v2', sub, n));
    }
    return out;
  };
  /**
   * The 1 MiB pages whose every 64 KiB unit has a record, by file — read from the headers of the
   * mount's cache files (format v2: 16 MiB segments, a 4 KiB header of 8-byte records after 64).
   */
  const recordedPages = async (lib: string): Promise<Array<{ file: string; page: number }>> => {
    const out: Array<{ file: string; page: number }> = [];
    for (const file of await cacheFiles(lib)) {
      const fh = await open(file, 'r');
      const h = Buffer.alloc(4096);
      await fh.read(h, 0, 4096, 0);
      await fh.close();
      for (let p = 0; p < 16; p++) {
        let all = true;
        for (let u = p * 16; u < (p + 1) * 16; u++) all &&= h.readUInt32LE(64 + 8 * u + 4) > 0;
        if (all) out.push({ file, page: p });
      }
    }
    return out;
  };

  t.test('an S3 library: a remount reads the file again with 0 bytes from S3', async (t) => {
    const { dir, args } = await s3Library();
    const m1 = await startMount({ dir, args, env });
    t.teardown(() => cleanup(m1, { keepDir: true })); // m2 reuses the folder; it removes it
    await ok(`cmp '${m1.p('big.bin')}' '${src}'`);
    const s1 = await stats(m1);
    t.equal(s1.cache.bytesFetched, 24 * MiB + 12345, 'first read: every byte from S3');
    t.equal(s1.cache.disk?.state, 'on', 'disk cache on by default for S3');
    // The page buffers come from the addon's huge-page slabs, aligned: the disk cache writes them
    // with O_DIRECT (issue 16); only the short last page goes through the kernel's page cache.
    let d1 = s1.cache.disk;
    for (let i = 0; i < 200 && (d1?.pendingWriteBytes ?? 0) > 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      d1 = (await stats(m1)).cache.disk;
    }
    t.equal(d1?.bytesWritten, 24 * MiB + 12345, 'every byte written to the disk cache');
    t.equal(d1?.bytesWrittenDirect, 24 * MiB, 'the 24 whole pages with O_DIRECT');
    await m1.stop();
    await cleanup(m1, { keepDir: true });
    t.equal((await cacheFiles(m1.library)).length, 2, 'the 25 pages are in <library>/cache, in two files (format v1: 25)');
    t.equal((await recordedPages(m1.library)).length, 24, 'every whole page is recorded (the short 25th is checked by the remount)');

    const m2 = await startMount({ dir, args, env });
    t.teardown(() => cleanup(m2));
    await ok(`cmp '${m2.p('big.bin')}' '${src}'`);
    const s2 = await stats(m2);
    t.equal(s2.cache.bytesFetched, 0, '0 bytes fetched from S3 after the remount');
    t.equal(s2.cache.disk?.hits, 25, 'all 25 pages from the disk cache');
    const text = await smhfs(['stats', m2.mountpoint]);
    t.match(text.stdout, /^disk\s+on, .*\/cache: .* in 2 files; 25 hits, \d+ misses/m, '`smhfs stats` shows the disk cache');
  });

  t.test('kill -9 mid-read, a page damaged as by a power loss: the remount serves only verified pages', async (t) => {
    const { dir, args } = await s3Library();
    const m1 = await startMount({ dir, args, env });
    t.teardown(() => cleanup(m1, { keepDir: true })); // m2 reuses the folder; it removes it
    const reader = sh(`dd if='${m1.p('big.bin')}' of=/dev/null bs=128k status=none`, { timeoutMs: 60_000 });
    for (let i = 0; i < 400 && (await recordedPages(m1.library).catch(() => [])).length < 6; i++) await new Promise((r) => setTimeout(r, 25));
    process.kill(m1.pid, 'SIGKILL');
    await m1.exited;
    await reader; // fails with ENOTCONN; what matters is what the remount serves
    const pages = await recordedPages(m1.library);
    t.ok(pages.length >= 6, `${pages.length} pages were on disk when the mount died`);
    // A page whose records reached the disk and whose data did not: zeros where the bytes should be.
    const victim = pages[0]!;
    await ok(`dd if=/dev/zero of='${victim.file}' bs=4096 seek=${1 + 256 * victim.page} count=256 conv=notrunc status=none`);

    const m2 = await startMount({ dir, args, env }); // also detaches the dead mount
    t.teardown(() => cleanup(m2));
    t.match(m2.output(), /stale mount/, 'the dead mount was recovered');
    await ok(`cmp '${m2.p('big.bin')}' '${src}'`);
    const s = await stats(m2);
    t.equal(s.cache.disk?.state, 'on', 'the dead owner\'s lock was taken over');
    t.equal(s.cache.disk?.corrupt, 1, 'the damaged page failed verification and was not served');
    t.ok((s.cache.disk?.hits ?? 0) >= pages.length - 1, `the other pages came from disk (${s.cache.disk?.hits})`);
    t.match(m2.output(), /failed verification/, 'one line says so');
    t.same((await readdir(join(m1.library, 'cache'))).sort(), ['lock', 'v2'], 'nothing but the lock and the v2 folder');
  });

  t.test('a full cache disk (a 3 MiB tmpfs): readers get every byte, the mount says it caches in memory only', async (t) => {
    const { dir, args } = await sharedS3Library();
    const small = join(work, 'tmpfs');
    await ok(`mkdir -p '${small}' && mount -t tmpfs -o size=3m smhfs-test-tmpfs '${small}'`);
    t.teardown(() => sh(`umount -l '${small}'`));
    const m = await startMount({ dir, args: [...args, '--cache-dir', join(small, 'c')], env });
    t.teardown(() => cleanup(m, { keepDir: true })); // the shared library's folder stays
    await ok(`cmp '${m.p('big.bin')}' '${src}'`);
    await ok(`cmp '${m.p('big.bin')}' '${src}'`);
    const s = await stats(m);
    t.ok((s.cache.disk?.writesDropped ?? 0) > 0 || s.cache.disk?.state === 'degraded', `writes stopped (${JSON.stringify(s.cache.disk)})`);
    t.match(m.output(), /disk cache: (the disk holding .* is full \(ENOSPC\)|the disk holding .* has less than 5% free)/, 'one line says so');
    t.ok((s.cache.disk?.bytes ?? 0) <= 3 * MiB, 'the cache holds what fits');
  });

  t.test('EIO on every cache read: the bytes come from S3, right', async (t) => {
    const { dir, args } = await s3Library();
    const m1 = await startMount({ dir, args, env });
    t.teardown(() => cleanup(m1, { keepDir: true })); // m2 reuses the folder; it removes it
    await ok(`cmp '${m1.p('big.bin')}' '${src}'`);
    await m1.stop();
    await cleanup(m1, { keepDir: true });
    const m2 = await startMount({ dir, args, env: { ...env, SMHFS_TEST_FAULTS: JSON.stringify({ diskCache: { read: 'EIO' } }) } });
    t.teardown(() => cleanup(m2));
    await ok(`cmp '${m2.p('big.bin')}' '${src}'`);
    const s = await stats(m2);
    t.equal(s.cache.bytesFetched, 24 * MiB + 12345, 'every byte from S3');
    t.ok((s.cache.disk?.errors ?? 0) >= 25, `the failed reads were counted (${s.cache.disk?.errors})`);
    t.match(m2.output(), /disk cache: reading .* failed \(EIO\); reading from the store instead/);
  });

  t.test('a second mount of the library runs memory-only; a local library has none unless asked', async (t) => {
    const { dir, args } = await sharedS3Library();
    const m1 = await startMount({ dir, args, env });
    t.teardown(() => cleanup(m1, { keepDir: true })); // the shared library's folder stays
    const other = await mkdtemp(join(work, 'second-'));
    const m2 = await startMount({ dir: other, args: ['--library', m1.library, ...args], env, init: false });
    t.teardown(() => cleanup(m2));
    await ok(`cmp '${m2.p('big.bin')}' '${src}'`);
    t.equal((await stats(m2)).cache.disk?.state, 'off');
    t.match(m2.output(), /disk cache: .*\/cache is in use by .*; caching in memory only/);
    t.equal((await stats(m1)).cache.disk?.state, 'on', 'the first keeps it');

    const local = await withMount(t);
    await ok(`cp '${src}' '${local.p('f.bin')}'`);
    t.equal((await stats(local)).cache.disk, undefined, 'a local library: no disk cache');
    const dir2 = await mkdtemp(join(work, 'local-'));
    const asked = await withMount(t, { dir: dir2, args: ['--cache-dir', join(dir2, 'dc'), '--cache-disk-size', '64M'] });
    await ok(`cp '${src}' '${asked.p('f.bin')}' && cmp '${asked.p('f.bin')}' '${src}'`);
    t.equal((await stats(asked)).cache.disk?.state, 'on', '--cache-dir turns it on');
  });

  t.test('random reads fetch small units; a sequential run turns the stream back to pages', async (t) => {
    const { dir, args } = await s3Library();
    const m = await withMount(t, { dir, args, env });
    // One open file: 24 random 4 KiB reads in different pages (then the mount's counters, from
    // the stats socket), then 4 MiB read sequentially.
    const script = `
      const fs = require('fs'); const { execFileSync } = require('child_process');
      const [file, srcFile, cli, mp] = process.argv.slice(1);
      const fd = fs.openSync(file, 'r'); const src = fs.openSync(srcFile, 'r');
      const a = Buffer.alloc(4096), b = Buffer.alloc(4096);
      for (let i = 0; i < 24; i++) {
        const off = ((i * 7) % 24) * 1048576 + 8192 * i + 100;
        fs.readSync(fd, a, 0, 4096, off); fs.readSync(src, b, 0, 4096, off);
        if (!a.equals(b)) { console.log('wrong bytes at ' + off); process.exit(1); }
      }
      const mid = JSON.parse(execFileSync(process.execPath, [cli, '--json', 'stats', mp], { encoding: 'utf8' })).cache;
      const big = Buffer.alloc(4 << 20), want = Buffer.alloc(4 << 20);
      let got = 0; while (got < big.length) got += fs.readSync(fd, big, got, big.length - got, 10485760 + got);
      fs.readSync(src, want, 0, want.length, 10485760);
      console.log(JSON.stringify({ ok: big.equals(want), mid }));`;
    const r = await sh(`'${process.execPath}' -e "${script.replace(/\n/g, ' ')}" '${m.p('big.bin')}' '${src}' '${CLI}' '${m.mountpoint}'`);
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; mid: Stats['cache'] };
    t.ok(out.ok, 'every byte right');
    t.equal(out.mid.toRandom, 1, 'the stream turned random');
    t.ok(out.mid.unitFetches >= 20, `small reads: ${out.mid.unitFetches}`);
    // 24 whole pages would be 24 MiB; a unit is 64 KiB.
    t.ok(out.mid.bytesFetched < 6 * MiB, `random part fetched ${(out.mid.bytesFetched / MiB).toFixed(2)} MiB, not 24 MiB of pages`);
    const s = (await stats(m)).cache;
    t.equal(s.toSequential, 1, 'and sequential again');
    t.ok(s.bytesFetched - out.mid.bytesFetched >= 4 * MiB, 'the sequential part fetched its pages (and readahead)');
  });

  t.test('--cache-disk-size 0 turns the disk cache off; a file larger than the memory cache streams through it (drop-behind)', async (t) => {
    const { dir, args } = await sharedS3Library();
    const m = await startMount({ dir, args: [...args, '--cache-disk-size', '0', '--cache-size', '16M'], env });
    t.teardown(() => cleanup(m, { keepDir: true })); // the shared library's folder stays
    await ok(`cmp '${m.p('big.bin')}' '${src}'`);
    const s = (await stats(m)).cache;
    t.equal(s.disk, undefined);
    // The kernel's reads (1 MiB, several in flight, slightly out of order) each found their page:
    // the pages kept behind the reader cover them.
    t.equal(s.bytesFetched, 24 * MiB + 12345, 'every byte fetched from S3 once');
    t.ok(s.droppedBehind >= 12, `the read gave pages back as it went (${s.droppedBehind} of 25), instead of filling the 16 MiB cache`);
  });
}
