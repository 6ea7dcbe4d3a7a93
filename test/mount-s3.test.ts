// The mount over the S3 blob store (s3rver on 127.0.0.1, random port, temp dir): real programs
// write, read, link and rename through the kernel, byte for byte; a file above the multipart
// threshold; the CLI (put/cat) with the same --blobs flags on the same library; the page-cache
// counters in `smhfs stats` and the root's `user.smhfs.stats`; and a missing bucket or a silent
// endpoint fail the mount with one line, exit 1, within seconds.
import t from 'tap';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3rver } from './helpers/s3rver-harness.js';
import { CLI, cleanup, fuseUnavailable, ok, sh, smhfs, startMount, withMount } from './helpers/mount.js';
import { PYTHON } from './helpers/python.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const work = await mkdtemp(join(tmpdir(), 'smhfs-mount-s3-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const s3dir = await mkdtemp(join(work, 's3rver-'));
  const s3 = await startS3rver(s3dir, ['smhfs-mnt']);
  t.teardown(() => s3.close());
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
  const blobArgs = (bucket = 'smhfs-mnt', endpoint = s3.endpoint) => ['--blobs', `s3://${bucket}/lib1`, '--s3-endpoint', endpoint, '--s3-path-style'];

  const m = await withMount(t, { args: blobArgs(), env });
  const mp = m.mountpoint;
  const run = (cmd: string) => ok(cmd, { cwd: mp });
  const src = join(work, 'src');
  await ok(`mkdir -p '${src}/tree/sub' && head -c 300000 /dev/urandom > '${src}/tree/a.bin' && echo hello > '${src}/tree/sub/b.txt' && head -c 40M /dev/urandom > '${src}/big.bin'`);
  /** Objects stored in the bucket (s3rver keeps `<key>._S3rver_object` files under the prefix). */
  const objects = async (): Promise<string[]> =>
    (await readdir(join(s3dir, 'smhfs-mnt', 'lib1')).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}\._S3rver_object$/.test(n));

  t.test('write, read back, append, overwrite: byte for byte, blobs land in the bucket', async (t) => {
    const before = (await objects()).length;
    await run(`cp '${src}/tree/a.bin' a.bin && cmp a.bin '${src}/tree/a.bin'`);
    t.equal((await objects()).length, before + 1, 'one object in the bucket');
    await run('printf one > f.txt && printf two >> f.txt');
    t.equal(await run('cat f.txt'), 'onetwo', 'append');
    await run('printf new > f.txt');
    t.equal(await run('cat f.txt'), 'new', 'overwrite');
    await run(`cp -r '${src}/tree' copy && diff -r '${src}/tree' copy`);
    t.pass('a tree copied with cp -r compares equal');
  });

  t.test('a file above the multipart threshold (40 MiB): written and read exactly', async (t) => {
    await run(`dd if='${src}/big.bin' of=big.bin bs=1M status=none conv=fsync`);
    t.equal((await run('stat -c %s big.bin')).trim(), String(40 * 1024 * 1024));
    await run(`cmp big.bin '${src}/big.bin'`);
    const h = await sh(`'${process.execPath}' '${CLI}' --library '${m.library}' ${blobArgs().join(' ')} cat big.bin | cmp - '${src}/big.bin'`, { env });
    t.equal(h.code, 0, `CLI cat is byte-identical ${h.stderr}`);
  });

  t.test('links and renames work over S3 blobs', async (t) => {
    await run('mkdir -p d && printf linked > d/target && ln -s target d/link && ln -s d/target top');
    t.equal(await run('cat d/link'), 'linked');
    t.equal(await run('cat top'), 'linked');
    await run('printf again > d/target');
    t.equal(await run('cat d/link'), 'again', 'new content through the link');
    await run('mv big.bin d/big-moved.bin && mv d/big-moved.bin big.bin');
    await run(`cmp big.bin '${src}/big.bin'`);
    t.pass('renames keep the content');
  });

  t.test('CLI put/cat with the same --blobs flags, seen through the mount', async (t) => {
    const put = await smhfs(['--library', m.library, ...blobArgs(), 'put', `${src}/tree/a.bin`, 'from-cli.bin'], { env });
    t.equal(put.code, 0, put.stderr);
    await new Promise((r) => setTimeout(r, 1100)); // attr/entry timeout
    await run(`cmp from-cli.bin '${src}/tree/a.bin'`);
    const cat = await smhfs(['--library', m.library, ...blobArgs(), 'cat', 'f.txt'], { env });
    t.equal(cat.stdout, 'new');
  });

  t.test('cold reads after a remount come from S3 through the page cache; counters show it', async (t) => {
    const dir = m.dir;
    await m.stop();
    await cleanup(m, { keepDir: true });
    // Without the disk cache: the first mount's reads left the pages in <library>/cache, and this
    // test is about S3 through the page cache (test/mount-disk-cache.test.ts is about the disk).
    // What the mount process loaded, written at its exit (issue 16: a mount that only reads from
    // an http endpoint never loads the AWS SDK, nor @smithy's signer).
    const probe = join(work, 'modules-probe.cjs');
    await writeFile(
      probe,
      `if (require('node:worker_threads').isMainThread) process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(join(work, 'modules-'))} + process.pid + '.json', JSON.stringify(Object.keys(require.cache).filter((p) => /node_modules\\/(@aws-sdk|@smithy)\\//.test(p)))));\n`,
    );
    const m2 = await startMount({ dir, args: [...blobArgs(), '--cache-disk-size', '0'], env: { ...env, NODE_OPTIONS: `--require ${probe}` } });
    t.teardown(() => cleanup(m2));
    await ok(`cmp '${m2.p('big.bin')}' '${src}/big.bin' && cmp '${m2.p('a.bin')}' '${src}/tree/a.bin'`);
    const py = await sh(`${PYTHON} -c "import os,sys; sys.stdout.write(os.getxattr(sys.argv[1], 'user.smhfs.stats').decode())" '${m2.mountpoint}'`);
    t.equal(py.code, 0, `getxattr user.smhfs.stats: ${py.stderr}`);
    const x = JSON.parse(py.stdout) as { cache: Record<string, number>; blobs: string };
    t.match(x.blobs, /^s3:\/\/smhfs-mnt\/lib1\//, 'the xattr names the store');
    t.ok(x.cache['bytesFetched']! >= 40 * 1024 * 1024, `bytes fetched from S3: ${x.cache['bytesFetched']}`);
    t.ok(x.cache['prefetchHits']! > 0, 'readahead was used');
    t.equal(x.cache['errors'], 0);
    const st = await smhfs(['stats', m2.mountpoint]);
    t.equal(st.code, 0, st.stderr);
    t.match(st.stdout, /cache .* hits, \d+ misses, .* fetched, \d+ retries, \d+ errors/);
    t.match(st.stdout, /blobs\s+s3:\/\/smhfs-mnt\/lib1\//);
    await m2.stop();
    const reports = (await readdir(work)).filter((n) => /^modules-\d+\.json$/.test(n));
    t.ok(reports.includes(`modules-${m2.pid}.json`), `the mount process reported what it loaded (${reports.join(', ')})`);
    for (const r of reports) t.same(JSON.parse(await readFile(join(work, r), 'utf8')), [], `${r}: mount-up and cold reads loaded no @aws-sdk or @smithy module`);
  });

  t.test('a missing bucket or a silent endpoint: one line, exit 1, within seconds', async (t) => {
    const lib = join(work, 'lib-bad');
    const mnt = join(work, 'mnt-bad');
    const t0 = Date.now();
    const sockets = new Set<Socket>();
    const silent = createServer((c) => {
      sockets.add(c);
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => {
      for (const c of sockets) c.destroy();
      silent.close();
    });
    const endpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    // The silent endpoint's 5 s of waiting overlaps the two other refusals (each its own process,
    // none mounting anything): one after another they added their own seconds to it.
    const t1 = Date.now();
    // (its own library folder and mountpoint: two refusals at once never share either)
    const hungRun = smhfs(['--library', `${lib}-silent`, ...blobArgs('smhfs-mnt', endpoint), 'mount', `${mnt}-silent`], { env, timeoutMs: 20_000 }).then((r) => ({ ...r, ms: Date.now() - t1 }));
    const missing = await smhfs(['--library', lib, ...blobArgs('no-such-bucket'), 'mount', mnt], { env, timeoutMs: 20_000 });
    t.equal(missing.code, 1);
    t.match(missing.stderr, /^smhfs: mount: .*no-such-bucket.* does not exist \(BlobUnavailable\)\n$/, 'one line naming the bucket');
    const put = await smhfs(['--library', lib, ...blobArgs('no-such-bucket'), 'put', `${src}/tree/sub/b.txt`, 'x'], { env });
    const hung = await hungRun;
    const ms = hung.ms;
    t.equal(hung.code, 1);
    t.match(hung.stderr, /^smhfs: mount: .*no answer within 5000 ms \(BlobUnavailable\)\n$/, 'one line');
    t.ok(ms < 9000, `gave up after ${ms} ms`);
    t.equal(put.code, 1);
    t.match(put.stderr, /does not exist/, 'other commands check the store the same way');
    t.ok(Date.now() - t0 < 20_000);
    t.notOk((await sh(`grep -qE ' (${mnt}|${mnt}-silent) ' /proc/mounts`)).code === 0, 'nothing mounted');
  });
}
