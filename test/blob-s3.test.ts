// S3-specific behaviour on a real s3rver (127.0.0.1, random port): what goes over the wire
// (Content-MD5, no aws-chunked framing, multipart above the threshold), prefix isolation, the
// mount-time check() with clear one-line errors that never hang, and the --blobs URL helpers.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashBuffer } from '../src/blob/hash.js';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { PageCache } from '../src/blob/page-cache.js';
import { S3BlobStore, checkBlobStore, openBlobStore, parseBlobsUrl } from '../src/blob/s3-store.js';
import { S3RVER_CREDENTIALS, s3rverStore, startS3rver } from './helpers/s3rver-harness.js';

const MiB = 1024 * 1024;
const work = await mkdtemp(join(tmpdir(), 'smhfs-blob-s3-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), ['smhfs-s3']);
t.teardown(() => s3.close());

function store(prefix: string, extra: Partial<ConstructorParameters<typeof S3BlobStore>[0]> = {}): S3BlobStore {
  const s = s3rverStore(s3, 'smhfs-s3', prefix, extra);
  t.teardown(() => s.close());
  return s;
}

interface Sent {
  command: string;
  headers: Record<string, string>;
}
/** Record each request's command name and final HTTP headers. */
function spy(s: S3BlobStore): Sent[] {
  const sent: Sent[] = [];
  s.client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { headers?: Record<string, string> };
      sent.push({ command: String(context.commandName), headers: { ...(req.headers ?? {}) } });
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'testSpy' },
  );
  return sent;
}

t.test('wire: Content-MD5, no aws-chunked, multipart only above the threshold', async (t) => {
  const s = store('wire');
  const sent = spy(s);
  const smallBytes = randomBytes(1000);
  const smallPath = join(work, 'small');
  await writeFile(smallPath, smallBytes);
  const bigBytes = randomBytes(20 * MiB + 1); // 3 parts of 8 MiB
  const bigPath = join(work, 'big');
  await writeFile(bigPath, bigBytes);

  await s.putFile(hashBuffer(smallBytes).sha256, smallPath, smallBytes.length);
  await s.putFile(hashBuffer(bigBytes).sha256, bigPath, bigBytes.length);
  const names = sent.map((x) => x.command);
  t.equal(names.filter((n) => n === 'PutObjectCommand').length, 1, 'one PutObject (the small blob)');
  t.equal(names.filter((n) => n === 'CreateMultipartUploadCommand').length, 1);
  t.equal(names.filter((n) => n === 'UploadPartCommand').length, 3, 'three parts');
  t.equal(names.filter((n) => n === 'CompleteMultipartUploadCommand').length, 1);

  const uploads = sent.filter((x) => x.command === 'PutObjectCommand' || x.command === 'UploadPartCommand');
  for (const u of uploads) {
    const h = Object.fromEntries(Object.entries(u.headers).map(([k, v]) => [k.toLowerCase(), v]));
    t.match(h['content-md5'], /^[A-Za-z0-9+/]{22}==$/, `${u.command} carries Content-MD5`);
    t.notOk(/aws-chunked/.test(h['content-encoding'] ?? ''), `${u.command} is not aws-chunked`);
    t.notOk(/STREAMING/.test(h['x-amz-content-sha256'] ?? ''), `${u.command} is not a streaming signature`);
    t.notOk('x-amz-trailer' in h, `${u.command} has no checksum trailer`);
  }
  t.same(await s.head(hashBuffer(bigBytes).sha256), { key: hashBuffer(bigBytes).sha256, size: bigBytes.length }, 'stored size is exact');

  // Second put of the same key: a HEAD, no upload (the HEAD goes through the lean reader, s3-get.ts).
  const before = sent.length;
  await s.putFile(hashBuffer(bigBytes).sha256, bigPath, bigBytes.length);
  t.same(sent.slice(before).map((x) => x.command), [], 'idempotent put: no upload (its HEAD is not the SDK\'s)');
  const sdkOnly = store('wire', { leanGets: false });
  const sentSdk = spy(sdkOnly);
  await sdkOnly.putFile(hashBuffer(bigBytes).sha256, bigPath, bigBytes.length);
  t.same(sentSdk.map((x) => x.command), ['HeadObjectCommand'], 'idempotent put costs one HEAD (SDK only)');
});

t.test('the page cache reads an S3 blob exactly, through ranged GETs', async (t) => {
  const s = store('cache');
  const bytes = randomBytes(5 * MiB + 333);
  const { key } = await s.putStream(bytes);
  for (const leanGets of [true, false]) {
    const s2 = leanGets ? s : store('cache', { leanGets: false });
    const sent = spy(s2);
    const gets: string[] = [];
    s2.onRangedGet = (offset, length) => gets.push(`bytes=${offset}-${offset + length - 1}`);
    const cache = new PageCache({ store: s2, pageSize: MiB, maxBytes: 8 * MiB, readaheadMax: 2 * MiB });
    const st = cache.openStream();
    const parts: Buffer[] = [];
    for (let off = 0; off < bytes.length; off += 128 * 1024) parts.push(await cache.read(key, bytes.length, off, 128 * 1024, st));
    const how = leanGets ? 'own reader' : 'SDK';
    t.ok(Buffer.concat(parts).equals(bytes), `${how}: sequential read, every byte`);
    await cache.idle();
    t.equal(gets.length, 6, `${how}: one GET per page, none twice`);
    t.equal(sent.filter((x) => x.command === 'GetObjectCommand').length, leanGets ? 0 : 6, `${how}: ${leanGets ? 'the SDK sent none' : 'all through the SDK'}`);
    if (!leanGets) {
      const ranges = sent.filter((x) => x.command === 'GetObjectCommand').map((x) => x.headers['range'] ?? x.headers['Range']);
      t.ok(ranges.every((r) => /^bytes=\d+-\d+$/.test(r ?? '')), 'every GET is ranged');
    }
  }
});

t.test('prefixes isolate stores sharing a bucket', async (t) => {
  const a = store('lib-a/');
  const b = store('lib-b');
  t.equal(a.prefix, 'lib-a/');
  t.equal(b.prefix, 'lib-b/', 'a trailing slash is added');
  const { key } = await a.putStream(Buffer.from('only in a'));
  t.ok(await a.head(key));
  t.equal(await b.head(key), undefined, 'b does not see a');
  const listed: string[] = [];
  for await (const x of b.list()) listed.push(x.key);
  t.same(listed, []);
  await b.delete(key);
  t.ok(await a.head(key), "b's delete does not touch a");
});

t.test('list pages through several ListObjects pages', async (t) => {
  const s = store('many', { listPageSize: 10 });
  const keys = new Set<string>();
  for (let i = 0; i < 25; i += 1) keys.add((await s.putStream(Buffer.from(`blob ${i}`))).key);
  const sent = spy(s);
  const listed: string[] = [];
  for await (const x of s.list()) listed.push(x.key);
  t.same(listed.slice().sort(), [...keys].sort(), 'all 25 keys, none twice');
  t.equal(listed.length, 25);
  t.equal(sent.filter((x) => x.command === 'ListObjectsCommand').length, 3, 'three pages of 10');
});

t.test('check(): ok, missing bucket, bad credentials, refused, silent endpoint', async (t) => {
  await t.resolves(store('x').check(2000), 'reachable bucket');
  await t.resolves(checkBlobStore(store('x'), 2000), 'checkBlobStore delegates');

  const missing = new S3BlobStore({ bucket: 'no-such-bucket', endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  t.teardown(() => missing.close());
  await t.rejects(missing.check(2000), { code: 'BlobUnavailable', message: /no-such-bucket.*does not exist/ });

  const badCreds = store('x', { credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' } });
  await t.rejects(badCreds.check(2000), { code: 'BlobUnavailable', message: /access denied/ });

  // A port nobody listens on.
  const closed = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
  const refused = store('x', { endpoint: `http://127.0.0.1:${closed}`, maxAttempts: 1 });
  const e1 = (await refused.check(2000).then(() => new Error('resolved'), (e: unknown) => e)) as Error;
  t.match(e1, { code: 'BlobUnavailable', message: /cannot reach|no answer/ }, 'refused connection');
  t.notOk(/\n/.test(e1.message), 'one line');

  // A server that accepts connections and never answers: check() must give up, not hang.
  const sockets = new Set<Socket>();
  const silent: Server = createServer((sock) => sockets.add(sock));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const sock of sockets) sock.destroy();
    silent.close();
  });
  const { port } = silent.address() as { port: number };
  const hung = store('x', { endpoint: `http://127.0.0.1:${port}` });
  await t.rejects(hung.check(300), { code: 'BlobUnavailable', message: /no answer within 300 ms/ });
});

t.test('parseBlobsUrl and openBlobStore', async (t) => {
  t.same(parseBlobsUrl('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
  t.same(parseBlobsUrl('s3://my-bucket/'), { bucket: 'my-bucket', prefix: '' });
  t.same(parseBlobsUrl('s3://my.bucket/lib/one'), { bucket: 'my.bucket', prefix: 'lib/one/' });
  t.same(parseBlobsUrl('s3://b12/p/'), { bucket: 'b12', prefix: 'p/' });
  for (const bad of ['http://b/p', 's3://', 's3:///p', 's3://UPPER/p', 's3://a/p', 's3://bucket/a//b', 's3://bucket/../x', 'bucket/prefix']) {
    t.throws(() => parseBlobsUrl(bad), { code: 'InvalidArgument' }, `refuses ${bad}`);
  }
  const local = openBlobStore({ localDir: join(work, 'local-blobs') });
  t.ok(local instanceof LocalBlobStore, 'no --blobs: the local directory store');
  const remote = openBlobStore({ blobs: 's3://smhfs-s3/via-open', localDir: join(work, 'unused'), s3Endpoint: s3.endpoint, s3PathStyle: true, s3Region: 'us-east-1', s3Credentials: S3RVER_CREDENTIALS });
  t.teardown(() => remote.close());
  t.ok(remote instanceof S3BlobStore);
  t.equal((remote as S3BlobStore).prefix, 'via-open/');
  t.match(remote.description, /^s3:\/\/smhfs-s3\/via-open\//);
  await t.resolves(checkBlobStore(remote, 2000));
  const { key } = await remote.putStream(Buffer.from('opened'));
  t.equal((await remote.getRange(key, 0, 100)).toString(), 'opened');
  t.throws(() => openBlobStore({ blobs: 'ftp://x', localDir: work }), { code: 'InvalidArgument' });
});

t.test('a store that only reads loads no AWS SDK code: check, owner marker, HEAD, ranged reads (issue 16)', async (t) => {
  const writer = store('lean');
  const body = randomBytes(100_000);
  const { key } = await writer.putStream(body);
  t.ok(await writer.createMarker('{"format":1,"library":"lean-test"}'), 'marker written');
  // A fresh process: this one has loaded the SDK long ago. What it loaded is in require.cache
  // (the SDK is required at run time, never imported).
  const script = `
    import { createRequire } from 'node:module';
    const { openBlobStore } = await import(${JSON.stringify(new URL('../src/blob/s3-store.js', import.meta.url).href)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((p) => /node_modules\\/(@aws-sdk|@smithy)\\//.test(p)).length;
    const s = openBlobStore({ blobs: 's3://smhfs-s3/lean', localDir: '/nonexistent', s3Endpoint: ${JSON.stringify(s3.endpoint)}, s3PathStyle: true });
    await s.check(2000);
    const marker = await s.readMarker();
    const head = await s.head(${JSON.stringify(key)});
    const missing = await s.head('00'.repeat(32));
    const target = Buffer.alloc(1000);
    await s.getRangeInto(${JSON.stringify(key)}, 5000, [target]);
    const before = { sdk: s.sdkLoaded, modules: loaded(), marker, head, missing: missing ?? null, bytes: target.toString('hex') };
    for await (const _ of s.list()) break; // a list is the SDK's: the probe sees it load
    console.log(JSON.stringify({ before, after: { sdk: s.sdkLoaded, modules: loaded() } }));
    await s.close();
  `;
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { env: { ...process.env, AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1', AWS_PROFILE: '' } },
      (e, stdout, stderr) => (e ? reject(new Error(`${e.message}: ${stderr}`)) : resolve(stdout)),
    ),
  );
  const r = JSON.parse(out) as { before: { sdk: boolean; modules: number; marker: string; head: unknown; missing: unknown; bytes: string }; after: { sdk: boolean; modules: number } };
  t.equal(r.before.marker, '{"format":1,"library":"lean-test"}', 'the owner marker read');
  t.same(r.before.head, { key, size: body.length }, 'HEAD of a blob');
  t.equal(r.before.missing, null, 'HEAD of a missing blob');
  t.equal(r.before.bytes, body.subarray(5000, 6000).toString('hex'), 'a ranged read');
  t.equal(r.before.sdk, false, 'no SDK client made');
  t.equal(r.before.modules, 0, 'no @aws-sdk or @smithy module loaded');
  t.ok(r.after.sdk && r.after.modules >= 5, `a list loads the SDK (${r.after.modules} modules): the probe works`);
});

t.test('start-up requests: SDK-shaped errors from the lean reader, the SDK on 5xx or a dead connection', async (t) => {
  const okStore = store('shape');
  t.equal(await okStore.readMarker(), undefined, 'no marker: undefined (a 404 NoSuchKey)');
  t.equal(await okStore.head('11'.repeat(32)), undefined, 'no blob: undefined (a 404 to a HEAD)');
  t.equal(okStore.sdkLoaded, false, 'all without the SDK client');
  const badCreds = store('shape', { credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' } });
  await t.rejects(badCreds.readMarker(), { code: 'BlobUnavailable', message: /owner marker/ }, 'a 403 is an error, not a missing marker');
  t.equal(badCreds.sdkLoaded, false, 'a 4xx answer is final: no SDK');

  // A server that answers 503 to everything, then closes: the SDK gets the request (and its retries).
  let hits = 0;
  const sick: Server = createServer((sock) => {
    hits++;
    sock.on('error', () => undefined);
    sock.once('data', () => sock.end('HTTP/1.1 503 Slow Down\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
  });
  await new Promise<void>((r) => sick.listen(0, '127.0.0.1', r));
  t.teardown(() => sick.close());
  const onSick = store('x', { endpoint: `http://127.0.0.1:${(sick.address() as { port: number }).port}`, maxAttempts: 2 });
  await t.rejects(onSick.check(3000), { code: 'BlobUnavailable' });
  t.equal(onSick.sdkLoaded, true, 'a 5xx goes to the SDK');
  t.ok(hits >= 3, `one lean try, then the SDK's attempts (${hits} connections)`);
});
