// SPEC §11 and H4 with real programs: two mounts (two processes, as two hosts would be) and one
// `smhfs serve` (a third host) on one PostgreSQL library whose blobs live in one S3 bucket
// (s3rver). The mounts keep names, attributes and readlink answers in the kernel for 60 s, and
// every host's change reaches the others through the library's change feed (NOTIFY): `ln -s` on
// A, `mv` of the target on B, and A's readlink shows the new path at once (polled, 1 s at most);
// `rm` on B takes A's link into the bin with the file (L12), seen on A and through SMH; a restore
// through SMH brings both back on both mounts; a mount whose notification connection is killed
// (pg_terminate_backend) listens again on a new one and follows on; writers on both mounts at
// once; then fsck is clean and every file has its bytes. Real PostgreSQL and s3rver, started
// here (the file fails, never skips, when PostgreSQL cannot start).
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3rver } from './helpers/s3rver-harness.js';
import { CLI, fuseUnavailable, ok, sh, smhfs, TEST_BINDING, withMount } from './helpers/mount.js';
import { doFetch } from './helpers/http.js';
import { postgresForTest } from './helpers/postgres.js';
import { expectFsckClean } from './helpers/fsck.js';

/**
 * ll (the default) follows the feed and keeps the kernel's caches 60 s: a change shows "at once",
 * polled for 1 s at most. fuse-native follows no feed: its caches expire after 1 s, so there the
 * bound is that timeout plus slack.
 */
const FOLLOWS = (TEST_BINDING ?? 'll') === 'll';
const AT_ONCE_MS = FOLLOWS ? 1000 : 2500;

/** Polls `probe` every 20 ms until it holds; false when it did not within `ms`. */
async function within(probe: () => Promise<boolean>, ms = AT_ONCE_MS): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const cluster = await postgresForTest(t);
  const work = await mkdtemp(join(tmpdir(), 'smhfs-mount-pg-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), ['media']);
  t.teardown(() => s3.close());
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
  const { url } = await cluster.createDatabase();

  const hostA = await mkdtemp(join(work, 'host-a-'));
  const hostB = await mkdtemp(join(work, 'host-b-'));
  const initA = await smhfs(
    ['--library', join(hostA, 'lib'), '--meta', url, '--blobs', 's3://media/lib', '--s3-endpoint', s3.endpoint, '--s3-path-style', 'init'],
    { env },
  );
  if (initA.code !== 0) throw new Error(`init on host A: ${initA.stderr}`);
  const initB = await smhfs(['--library', join(hostB, 'lib'), '--meta', url, 'init'], { env });
  if (initB.code !== 0) throw new Error(`init on host B: ${initB.stderr}`);

  const a = await withMount(t, { dir: hostA, init: false, env });
  const b = await withMount(t, { dir: hostB, init: false, env });
  const onA = (cmd: string) => ok(cmd, { cwd: a.mountpoint });
  const onB = (cmd: string) => ok(cmd, { cwd: b.mountpoint });
  /** A command's output on a mount, or undefined when it fails (the polls below expect failures on the way). */
  const tryOn = async (m: { mountpoint: string }, cmd: string) => {
    const r = await sh(cmd, { cwd: m.mountpoint });
    return r.code === 0 ? r.stdout : undefined;
  };
  const sumsOfA = new Map<string, string>();

  // A third host serving SMH on the same library.
  const hostC = await mkdtemp(join(work, 'host-c-'));
  const initC = await smhfs(['--library', join(hostC, 'lib'), '--meta', url, 'init'], { env });
  if (initC.code !== 0) throw new Error(`init on host C: ${initC.stderr}`);
  const tok = JSON.parse((await smhfs(['--library', join(hostC, 'lib'), '--json', 'token', 'create', '--grant', 'admin'], { env })).stdout) as {
    accessToken: string;
    libraryId: string;
  };
  const server = spawn(process.execPath, [CLI, '--library', join(hostC, 'lib'), 'serve', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let serverLog = '';
  server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  const serverExit = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL');
  });
  for (let i = 0; i < 400 && !/at (http:\/\/\S+)/.test(serverLog); i++) await new Promise((r) => setTimeout(r, 50));
  const base = /at (http:\/\/\S+)/.exec(serverLog)?.[1];
  if (!base) throw new Error(`serve did not start: ${serverLog}`);
  const smh = (kind: string, path: string, method = 'GET', q = '') =>
    doFetch(`${base}/api/v1/${kind}/${tok.libraryId}/-${path ? `/${path}` : ''}?access_token=${tok.accessToken}${q}`, method);

  t.test('L8 across hosts: ln -s on A, mv of the target on B, readlink on A shows the new path at once', async (t) => {
    await onA('mkdir -p photos links && printf meow > photos/cat.jpg && ln -s ../photos/cat.jpg links/cat');
    t.equal(await onB('cat links/cat'), 'meow', 'B reads through the link A made');
    // A's kernel now holds the link's answer, the names and the attributes (60 s on PostgreSQL too)
    t.equal((await onA('readlink links/cat && stat -c %s photos/cat.jpg')).trim(), '../photos/cat.jpg\n4');
    await onB('mkdir albums && mv photos/cat.jpg albums/cat.jpg');
    t.ok(await within(async () => (await tryOn(a, 'readlink links/cat'))?.trim() === '../albums/cat.jpg'), 'A sees where the target went, at once');
    t.ok(await within(async () => (await tryOn(a, 'test -e photos/cat.jpg')) === undefined), "and the old name is gone from A's cache");
    t.equal(await onA('cat links/cat'), 'meow', 'and reads it');
    const links = await smh('directory', 'links');
    t.same((links.json as { contents: Array<{ linkTo: string[] }> }).contents.map((e) => e.linkTo), [['albums', 'cat.jpg']], 'SMH on host C: the same');
  });

  t.test("L12/T2 across hosts: rm on B takes A's link into the bin, seen on A and through SMH; a restore through SMH brings both back on both mounts", async (t) => {
    t.equal((await onA('ls links && stat -c %F links/cat')).trim(), 'cat\nsymbolic link', "A's kernel holds the link");
    await onB('rm albums/cat.jpg');
    t.ok(await within(async () => (await tryOn(a, 'test -L links/cat')) === undefined), 'the link went with its file, seen on A at once');
    t.equal((await onA('ls links')).trim(), '', 'A lists nothing there');
    t.equal((await smh('file', 'links/cat')).status, 404, 'SMH: the link is gone');
    const list = await smh('recycled', '');
    const items = (list.json as { contents: Array<{ id: number; originalPath: string[]; links: string[][] }> }).contents;
    t.same(items.map((i) => [i.originalPath, i.links]), [[['albums', 'cat.jpg'], [['links', 'cat']]]], 'SMH: one item in the bin, with the link');
    const r = await smh('recycled', String(items[0]!.id), 'POST', '&restore');
    t.equal(r.status, 200, `restore through SMH: ${JSON.stringify(r.json)}`);
    for (const [host, m] of [['A', a], ['B', b]] as const) {
      t.ok(await within(async () => (await tryOn(m, 'cat links/cat')) === 'meow'), `${host}: the link is back and leads to the file, at once`);
      t.equal((await tryOn(m, 'readlink links/cat'))?.trim(), '../albums/cat.jpg', `${host}: pointing where the file is`);
    }
  });

  t.test('S2: a mount whose notification connection is killed listens again and follows on', async (t) => {
    const feedOf = async (pid: number) =>
      (await cluster.sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`smhfs-feed ${pid}`])).map((r) => Number(r.pid));
    const before = await feedOf(a.pid);
    if (!FOLLOWS) {
      t.equal(before.length, 0, 'fuse-native follows no feed: no listening connection (its caches expire after 1 s)');
      await onB('printf meow-meow > albums/cat.jpg');
      t.ok(await within(async () => (await tryOn(a, 'stat -c %s albums/cat.jpg'))?.trim() === '9'), "A sees B's write once its 1 s cache expired");
      return;
    }
    t.equal(before.length, 1, "mount A listens on one connection");
    t.equal((await onA('stat -c %s albums/cat.jpg')).trim(), '4', "A's kernel holds the file's attributes");
    await cluster.sql('SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1', [`smhfs-feed ${a.pid}`]);
    await onB('printf meow-meow > albums/cat.jpg');
    t.ok(await within(async () => (await tryOn(a, 'stat -c %s albums/cat.jpg'))?.trim() === '9'), "A sees B's write made after its connection was killed");
    t.equal(await onA('cat links/cat'), 'meow-meow', 'and reads the new bytes through the link');
    const after = await feedOf(a.pid);
    t.equal(after.length, 1, 'listening again');
    t.not(after[0], before[0], 'on a new connection');
  });

  t.test("writers on both mounts at once, to different files; each mount reads the other's", async (t) => {
    await onA('mkdir -p from-a');
    await onB('mkdir -p from-b');
    await Promise.all([
      onA('for i in $(seq 1 25); do head -c $((1000 + i * 997)) /dev/urandom > from-a/f$i; done'),
      onB('for i in $(seq 1 25); do head -c $((1000 + i * 991)) /dev/urandom > from-b/f$i; done'),
    ]);
    const sumsA = await onA('cd from-a && sha256sum f*');
    for (const line of sumsA.trim().split('\n')) sumsOfA.set(line.split(/\s+/)[1]!, line.split(/\s+/)[0]!);
    const sumsB = await onB('cd from-b && sha256sum f*');
    t.ok(await within(async () => (await tryOn(b, 'cd from-a && sha256sum f*')) === sumsA), "B reads A's files byte for byte, at once");
    t.ok(await within(async () => (await tryOn(a, 'cd from-b && sha256sum f*')) === sumsB), "A reads B's files byte for byte, at once");
  });

  t.test('after both mounts and serve stop: fsck clean, every file with its bytes', async (t) => {
    server.kill('SIGTERM');
    t.equal(await serverExit, 0, 'serve exits 0');
    t.equal(await a.stop(), 0, 'mount A exits 0');
    t.equal(await b.stop(), 0, 'mount B exits 0');
    await expectFsckClean(t, join(hostA, 'lib'), env, 'fsck from host A');
    let listed = 0;
    for (const d of ['from-a', 'from-b']) {
      const ls = await smhfs(['--library', join(hostB, 'lib'), 'ls', d], { env });
      listed += ls.stdout.split('\n').filter((l) => /^f\d+$/.test(l)).length;
    }
    t.equal(listed, 50, 'the 50 files written on both mounts are in the library');
    const cat = await sh(`'${process.execPath}' '${CLI}' --library '${join(hostB, 'lib')}' cat from-a/f7 | sha256sum`, { env });
    t.equal(cat.stdout.split(' ')[0], sumsOfA.get('f7'), 'and read back from the bucket by the CLI, byte for byte');
    const mounted = await sh('cat /proc/mounts');
    t.notMatch(mounted.stdout, new RegExp(`${hostA}|${hostB}`), 'nothing left mounted');
  });
}
