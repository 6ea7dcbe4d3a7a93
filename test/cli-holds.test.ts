/**
 * D7 outside the mount: a reader in one process keeps its bytes while another process deletes
 * the file for good. `smhfs cat` and a `smhfs serve` download hold the blob (a row in the
 * library, src/store/library.ts `holdBlob`) until they are done; `smhfs rm --permanent` from
 * another process then leaves the bytes in the store until the reader lets go, and the last one
 * out collects them. On S3 (s3rver), where a deleted object is gone for every reader at once.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import t from 'tap';
import { S3RVER_CREDENTIALS, s3rverStore, startS3rver } from './helpers/s3rver-harness.js';
import { expectFsckClean } from './helpers/fsck.js';
import { CLI, smhfs } from './helpers/mount.js';

const work = await mkdtemp(join(tmpdir(), 'smhfs-holds-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const BUCKET = 'smhfs-holds';
const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), [BUCKET]);
t.teardown(() => s3.close());
const env = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };
const SIZE = 40 * 1024 * 1024; // well past the 16 MiB readahead a reader keeps ahead of its consumer
const big = randomBytes(SIZE);
const bigSha = createHash('sha256').update(big).digest('hex');
const src = join(work, 'big.bin');
writeFileSync(src, big);

/** A library on its own s3rver prefix holding big.bin; returns its dir, prefix and blob key. */
async function library(name: string): Promise<{ lib: string; prefix: string; key: string }> {
  const lib = join(work, name);
  const blobs = ['--blobs', `s3://${BUCKET}/${name}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'];
  const init = await smhfs(['--library', lib, ...blobs, 'init'], { env });
  if (init.code !== 0) throw new Error(init.stderr);
  const put = await smhfs(['--library', lib, 'put', src, 'big.bin'], { env });
  if (put.code !== 0) throw new Error(put.stderr);
  const st = JSON.parse((await smhfs(['--library', lib, '--json', 'stat', 'big.bin'], { env })).stdout) as { blob: string };
  return { lib, prefix: name, key: st.blob };
}

/** Read the rest of a paused stream, hashing it along with what was read already. */
async function drain(stream: Readable, first: Buffer[]): Promise<{ sha: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for (const c of first) {
    h.update(c);
    size += c.length;
  }
  for await (const c of stream) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha: h.digest('hex'), size };
}

t.test('D7: smhfs cat keeps reading a file another process deletes for good; the bytes go when it is done', async (t) => {
  const { lib, prefix, key } = await library('cat');
  const store = s3rverStore(s3, BUCKET, prefix);
  t.teardown(() => store.close());
  const cat = spawn(process.execPath, [CLI, '--library', lib, 'cat', 'big.bin'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  cat.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => cat.once('exit', (code) => r(code)));
  // The first bytes arrive; then nobody reads, so cat blocks on a full pipe mid-file.
  const stdout = cat.stdout!;
  await once(stdout, 'readable');
  const first: Buffer[] = [];
  const c = stdout.read() as Buffer | null;
  if (c) first.push(c);

  const rmr = await smhfs(['--library', lib, 'rm', '--permanent', 'big.bin'], { env });
  t.equal(rmr.code, 0, rmr.stderr);
  t.ok(await store.head(key), 'held by the reader: the purge left the bytes in the store');

  const got = await drain(stdout, first);
  t.equal(await exited, 0, `cat exits 0 ${err}`);
  t.equal(got.size, SIZE, 'every byte');
  t.equal(got.sha, bigSha, 'the right bytes');
  t.equal(await store.head(key), undefined, 'the reader, done, collected them');
  await expectFsckClean(t, lib, env);
});

t.test('D7: a serve download keeps streaming a file another process deletes for good', async (t) => {
  const { lib, prefix, key } = await library('serve');
  const store = s3rverStore(s3, BUCKET, prefix);
  t.teardown(() => store.close());
  const tok = JSON.parse((await smhfs(['--library', lib, '--json', 'token', 'create', '--grant', 'admin'], { env })).stdout) as {
    accessToken: string;
    libraryId: string;
  };
  const server = spawn(process.execPath, [CLI, '--library', lib, 'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stopped = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL');
  });
  for (let i = 0; i < 400 && !/at (http:\/\/\S+)/.test(log); i++) await new Promise((r) => setTimeout(r, 50));
  const url = /at (http:\/\/\S+)/.exec(log)?.[1];
  t.ok(url, 'serving');

  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
    get(`${url}/api/v1/file/${tok.libraryId}/-/big.bin?access_token=${tok.accessToken}`, resolve).on('error', reject),
  );
  t.equal(res.statusCode, 200);
  await once(res, 'readable');
  const first: Buffer[] = [];
  const c = res.read() as Buffer | null;
  if (c) first.push(c);

  const rmr = await smhfs(['--library', lib, 'rm', '--permanent', 'big.bin'], { env });
  t.equal(rmr.code, 0, rmr.stderr);
  t.ok(await store.head(key), 'held by the download: the bytes are still in the store');
  const got = await drain(res, first);
  t.equal(got.size, SIZE, 'the whole body');
  t.equal(got.sha, bigSha, 'the right bytes');
  // The server released its hold when the response closed, and collects the key itself.
  for (let i = 0; i < 100 && (await store.head(key)); i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(await store.head(key), undefined, 'then the bytes went');
  server.kill('SIGTERM');
  t.equal(await stopped, 0);
  await expectFsckClean(t, lib, env);
});
