/**
 * D3 and D7 across hosts (SPEC §11, issue 13): two hosts on one PostgreSQL library and one S3
 * bucket (s3rver). Host A is a real second host as far as smhfs can tell: its processes run in a
 * UTS namespace of their own (`unshare -u`) under another host name, so the rows they own
 * (`host:pid:random`) are judged by heartbeat, not by pid, on host B — as on two machines.
 *
 * - A's `smhfs cat` holds the blob it is reading; B's `rm --permanent` and `gc --delete` leave the
 *   bytes in the store while it reads; A gets every byte (checksum), and the last one out
 *   collects them. fsck is clean from both hosts.
 * - A's reader is killed mid-read (a crash on host A): B cannot know A's process is gone — its
 *   hold's heartbeat is fresh — so B's collector leaves the bytes (never delete on a guess); the
 *   next collection on host A, which can see its own pid is dead, reaps the hold and the bytes go.
 *
 * A real PostgreSQL and a real s3rver: the file fails, never skips, without them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import { S3RVER_CREDENTIALS, s3rverStore, startS3rver } from './helpers/s3rver-harness.js';
import { expectFsckClean } from './helpers/fsck.js';
import { CLI, smhfs } from './helpers/mount.js';
import { postgresForTest } from './helpers/postgres.js';

const HOST_A = 'smhfs-host-a';
const work = await mkdtemp(join(tmpdir(), 'smhfs-2host-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const cluster = await postgresForTest(t);
const BUCKET = 'smhfs-2host';
const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), [BUCKET]);
t.teardown(() => s3.close());
const env = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };
const SIZE = 40 * 1024 * 1024; // past the 16 MiB readahead a reader keeps ahead of its consumer

/** `smhfs ARGS` on host A: its own host name, in a UTS namespace of its own. */
function onHostA(args: string[]): ChildProcess {
  return spawn('unshare', ['-u', 'sh', '-c', `hostname ${HOST_A} && exec "$0" "$@"`, process.execPath, CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
}

async function onHostAWait(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = onHostA(args);
  let stdout = '';
  let stderr = '';
  c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(c, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** Two host folders on one new database and one bucket prefix, holding `name` (random bytes). */
async function twoHosts(t: Test, prefix: string): Promise<{ a: string; b: string; db: string; key: string; sha: string }> {
  const { name: db, url } = await cluster.createDatabase();
  const a = join(work, `${prefix}-host-a`);
  const b = join(work, `${prefix}-host-b`);
  const blobs = ['--blobs', `s3://${BUCKET}/${prefix}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'];
  const initA = await onHostAWait(['--library', a, '--meta', url, ...blobs, 'init']);
  t.equal(initA.code, 0, `host A: init ${initA.stderr}`);
  const initB = await smhfs(['--library', b, '--meta', url, 'init'], { env });
  t.equal(initB.code, 0, `host B joins: ${initB.stderr}`);
  const bytes = randomBytes(SIZE);
  const src = join(work, `${prefix}.bin`);
  writeFileSync(src, bytes);
  const put = await smhfs(['--library', b, 'put', src, 'big.bin'], { env });
  t.equal(put.code, 0, `host B: put ${put.stderr}`);
  const st = JSON.parse((await smhfs(['--library', b, '--json', 'stat', 'big.bin'], { env })).stdout) as { blob: string };
  return { a, b, db, key: st.blob, sha: createHash('sha256').update(bytes).digest('hex') };
}

/** A's `cat big.bin`, its first bytes read, then paused (blocked on a full pipe mid-file). */
async function pausedCat(lib: string): Promise<{ child: ChildProcess; first: Buffer[]; exited: Promise<number | null>; err: () => string }> {
  const child = onHostA(['--library', lib, 'cat', 'big.bin']);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await once(child.stdout!, 'readable');
  const first: Buffer[] = [];
  const c = child.stdout!.read() as Buffer | null;
  if (c) first.push(c);
  return { child, first, exited, err: () => err };
}

async function drain(stream: Readable, first: Buffer[]): Promise<{ sha: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for (const c of [...first]) {
    h.update(c);
    size += c.length;
  }
  for await (const c of stream) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha: h.digest('hex'), size };
}

async function holdsOf(db: string, key: string): Promise<string[]> {
  return (await cluster.sql<{ owner: string }>('SELECT owner FROM blob_holds WHERE key = $1', [key], db)).map((r) => r.owner);
}

t.test('D7 across hosts: host B deletes for good a file host A is reading; the bytes stay until A is done, then go', async (t) => {
  const { a, b, db, key, sha } = await twoHosts(t, 'read');
  const store = s3rverStore(s3, BUCKET, 'read');
  t.teardown(() => store.close());
  const cat = await pausedCat(a);
  const holders = await holdsOf(db, key);
  t.equal(holders.length, 1, 'A\'s reader holds the blob: one row in the shared library');
  t.match(holders[0] ?? '', new RegExp(`^${HOST_A}:\\d+:`), 'owned by host A (its own host name)');

  const rmr = await smhfs(['--library', b, 'rm', '--permanent', 'big.bin'], { env });
  t.equal(rmr.code, 0, `host B: rm --permanent ${rmr.stderr}`);
  t.ok(await store.head(key), 'held on host A: B\'s purge left the bytes in the store');
  const gc = await smhfs(['--library', b, 'gc', '--delete', '--grace', '0s'], { env });
  t.equal(gc.code, 0, `host B: gc --delete ${gc.stderr}`);
  t.ok(await store.head(key), 'B\'s collector and gc leave a blob another host holds (D3, D7)');
  t.same(
    (await cluster.sql<{ key: string }>('SELECT key FROM blob_queue WHERE key = $1', [key], db)).map((r) => r.key),
    [key],
    'the key waits on the library\'s deletion queue',
  );

  const got = await drain(cat.child.stdout!, cat.first);
  t.equal(await cat.exited, 0, `host A: cat exits 0 ${cat.err()}`);
  t.equal(got.size, SIZE, 'every byte');
  t.equal(got.sha, sha, 'the right bytes (sha256)');
  t.same(await holdsOf(db, key), [], 'A\'s hold is gone with its reader');
  t.equal(await store.head(key), undefined, 'the last one out collected the bytes');
  t.same(await cluster.sql('SELECT key FROM blob_queue', [], db), [], 'the deletion queue is empty');
  await expectFsckClean(t, b, env, 'fsck from host B');
  const fsckA = await onHostAWait(['--library', a, 'fsck']);
  t.equal(fsckA.code, 0, `fsck from host A: ${fsckA.stdout}${fsckA.stderr}`);
});

t.test('D7 across hosts: host A crashes mid-read; host B cannot know and keeps the bytes; host A\'s next collection reaps them', async (t) => {
  const { a, b, db, key } = await twoHosts(t, 'crash');
  const store = s3rverStore(s3, BUCKET, 'crash');
  t.teardown(() => store.close());
  const cat = await pausedCat(a);
  t.equal((await holdsOf(db, key)).length, 1, 'A\'s reader holds the blob');
  cat.child.kill('SIGKILL');
  await cat.exited;

  const rmr = await smhfs(['--library', b, 'rm', '--permanent', 'big.bin'], { env });
  t.equal(rmr.code, 0, `host B: rm --permanent ${rmr.stderr}`);
  const gc = await smhfs(['--library', b, 'gc', '--delete', '--grace', '0s'], { env });
  t.equal(gc.code, 0, `host B: gc --delete ${gc.stderr}`);
  t.ok(await store.head(key), 'a hold of another host with a fresh heartbeat is kept: B never deletes on a guess');
  t.equal((await holdsOf(db, key)).length, 1, 'the crashed reader\'s hold is still there');

  const gcA = await onHostAWait(['--library', a, 'gc', '--delete', '--grace', '0s']);
  t.equal(gcA.code, 0, `host A: gc --delete ${gcA.stderr}`);
  t.same(await holdsOf(db, key), [], 'host A sees its own process is gone and reaps its hold');
  t.equal(await store.head(key), undefined, 'then the bytes are collected');
  await expectFsckClean(t, b, env, 'fsck from host B');
});
