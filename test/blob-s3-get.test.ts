// The S3 store's own ranged reader for http endpoints (src/blob/s3-get.ts, issue 16): it signs
// exactly as AWS documents (their published SigV4 example), reads bodies into the caller's
// buffers, and trusts nothing — against a scripted HTTP server: a server that ignores the range,
// a Content-Range that starts late, a body cut short, an error document, a missing object, a
// range past the end, kept-alive connections the server closes, and what the reader does not do
// (object bytes sent chunked), which goes to the SDK instead. Every byte is compared.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { S3BlobStore } from '../src/blob/s3-store.js';
import { LeanGetter } from '../src/blob/s3-get.js';
import { isSmhError } from '../src/errors.js';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
const KEY = 'ab'.repeat(32);
const object = randomBytes(300_000);

type Mode =
  | 'ok'
  | 'ignore-range'
  | 'late-start'
  | 'cut-short'
  | 'slowdown'
  | 'slowdown-chunked'
  | 'missing'
  | 'chunked'
  | 'huge-head'
  | 'close-after-each';

interface Fake {
  endpoint: string;
  mode: Mode;
  /** Requests seen: [user agent says SDK?, path, range]. */
  seen: Array<{ sdk: boolean; path: string; range: string | undefined; auth: string | undefined }>;
  connections: number;
  server: Server;
}

async function fake(t: Test): Promise<Fake> {
  const f = { mode: 'ok' as Mode, seen: [] as Fake['seen'], connections: 0 } as Fake;
  const sockets = new Set<Socket>();
  f.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const range = req.headers['range'];
    f.seen.push({ sdk: /aws-sdk/i.test(String(req.headers['user-agent'] ?? '')), path: (req.url ?? '').split('?')[0]!, range, auth: req.headers['authorization'] });
    if (!(req.url ?? '').split('?')[0]!.endsWith(`/${KEY}`)) {
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
    const start = Number(m?.[1] ?? 0);
    const end = Math.min(object.length - 1, Number(m?.[2] ?? object.length - 1));
    if (start >= object.length) {
      res.writeHead(416, { 'content-range': `bytes */${object.length}` }).end();
      return;
    }
    const body = object.subarray(start, end + 1);
    const partial = { 'content-range': `bytes ${start}-${end}/${object.length}`, 'content-length': String(body.length) };
    switch (f.mode) {
      case 'ok':
        res.writeHead(206, partial).end(body);
        return;
      case 'close-after-each':
        res.writeHead(206, { ...partial, connection: 'close' }).end(body);
        return;
      case 'ignore-range':
        res.writeHead(200, { 'content-length': String(object.length) }).end(object);
        return;
      case 'late-start':
        res.writeHead(206, { 'content-range': `bytes ${start + 10}-${end}/${object.length}`, 'content-length': String(body.length - 10) }).end(body.subarray(10));
        return;
      case 'cut-short':
        res.writeHead(206, partial);
        res.write(body.subarray(0, Math.floor(body.length / 2)));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      case 'slowdown': {
        const doc = '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
        res.writeHead(503, { 'content-type': 'application/xml', 'content-length': String(doc.length) }).end(doc);
        return;
      }
      case 'slowdown-chunked': // S3 often sends error documents chunked
        res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code></Error>');
        return;
      case 'missing':
        res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
        return;
      case 'chunked':
        res.writeHead(206, { 'content-range': partial['content-range'], 'transfer-encoding': 'chunked' });
        res.write(body.subarray(0, 1000));
        res.end(body.subarray(1000));
        return;
      case 'huge-head':
        res.writeHead(206, { ...partial, 'x-padding': 'p'.repeat(70_000) }).end(body);
        return;
    }
  });
  f.server.on('connection', (s: Socket) => {
    f.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', () => r()));
  f.endpoint = `http://127.0.0.1:${(f.server.address() as { port: number }).port}`;
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    f.server.close();
  });
  return f;
}

function store(t: Test, f: Fake): S3BlobStore {
  const s = new S3BlobStore({
    bucket: 'bkt',
    prefix: 'p',
    endpoint: f.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
    maxAttempts: 1,
    readTimeoutMs: 2000,
  });
  t.teardown(() => s.close());
  return s;
}

t.test('requests are signed as AWS documents it (SigV4 "GET Object" example)', async (t) => {
  const g = new LeanGetter({
    endpoint: new URL('http://s3.amazonaws.com'),
    bucket: 'examplebucket',
    forcePathStyle: false,
    credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
    region: 'us-east-1',
  });
  const head = await g.requestHead('test.txt', 0, 10, {
    payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    signingDate: new Date('2013-05-24T00:00:00Z'),
  });
  g.close();
  t.match(head, /^GET \/test\.txt HTTP\/1\.1\r\n/, 'virtual-hosted style: the key is the path');
  t.match(head, /\r\nhost: examplebucket\.s3\.amazonaws\.com\r\n/);
  t.match(head, /\r\nrange: bytes=0-9\r\n/);
  t.match(
    head,
    /\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/20130524\/us-east-1\/s3\/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41\r\n/,
    'the signature AWS publishes for this request',
  );
  t.ok(head.endsWith('\r\n\r\n'));
});

t.test('bytes straight into the targets; connections kept alive; path-style path, no SDK', async (t) => {
  const f = await fake(t);
  const s = store(t, f);
  for (const [off, len] of [
    [0, 65536],
    [100_000, 150_000],
    [299_990, 10],
  ] as const) {
    const targets = [Buffer.alloc(Math.floor(len / 3)), Buffer.alloc(len - Math.floor(len / 3))];
    await s.getRangeInto(KEY, off, targets);
    t.ok(Buffer.concat(targets).equals(object.subarray(off, off + len)), `bytes ${off}+${len}`);
  }
  t.ok((await s.getRange(KEY, 299_000, 5000)).equals(object.subarray(299_000)), 'getRange past the end is short, as the contract says');
  t.equal(f.connections, 1, 'one connection for four requests');
  t.ok(f.seen.every((r) => !r.sdk && r.path === `/bkt/p/${KEY}` && /^AWS4-HMAC-SHA256 /.test(r.auth ?? '')), 'signed, path-style, not the SDK');
});

t.test('a server that ignores the range: the right bytes, the rest of the object not read', async (t) => {
  const f = await fake(t);
  f.mode = 'ignore-range';
  const s = store(t, f);
  const target = Buffer.alloc(4096);
  await s.getRangeInto(KEY, 200_000, [target]);
  t.ok(target.equals(object.subarray(200_000, 204_096)), 'bytes skipped to the offset');
  await s.getRangeInto(KEY, 10, [target]);
  t.ok(target.equals(object.subarray(10, 4106)));
  t.equal(f.connections, 2, 'a connection with ~290 KiB unread is dropped, not drained');
});

t.test('never a wrong or short success: late Content-Range, body cut short, error document, missing, past the end', async (t) => {
  const f = await fake(t);
  const s = store(t, f);
  const target = Buffer.alloc(50_000);
  f.mode = 'late-start';
  let e = await s.getRangeInto(KEY, 1000, [target]).catch((x: unknown) => x);
  t.ok(isSmhError(e, 'BlobUnavailable'), 'a range starting after the offset: BlobUnavailable');
  t.match((e as Error).message, /unusable range answer/);
  f.mode = 'cut-short';
  e = await s.getRangeInto(KEY, 1000, [target]).catch((x: unknown) => x);
  t.ok(isSmhError(e, 'BlobUnavailable'), 'a body cut short: BlobUnavailable');
  t.match((e as Error).message, /closed mid-body/);
  f.mode = 'slowdown';
  e = await s.getRangeInto(KEY, 1000, [target]).catch((x: unknown) => x);
  t.ok(isSmhError(e, 'BlobUnavailable'));
  t.match((e as Error).message, /HTTP 503 SlowDown/, 'the error document\'s code is in the message');
  f.mode = 'slowdown-chunked';
  e = await s.getRangeInto(KEY, 1000, [target]).catch((x: unknown) => x);
  t.ok(isSmhError(e, 'BlobUnavailable'));
  t.match((e as Error).message, /HTTP 503/, 'a chunked error document: the status is enough');
  t.notOk(f.seen.some((r) => r.sdk), 'errors never send it to the SDK');
  f.mode = 'missing';
  e = await s.getRangeInto(KEY, 1000, [target]).catch((x: unknown) => x);
  t.ok(isSmhError(e, 'BlobMissing'), '404: BlobMissing');
  f.mode = 'ok';
  t.equal((await s.getRange(KEY, object.length + 5, 10)).length, 0, '416: nothing (offset past the end)');
  e = await s.getRangeInto(KEY, object.length + 5, [target]).catch((x: unknown) => x);
  t.ok(isSmhError(e, 'BlobUnavailable'), 'getRangeInto past the end is an error, not a short read');
  await s.getRangeInto(KEY, 1000, [target]);
  t.ok(target.equals(object.subarray(1000, 51_000)), 'and the next good answer is read right');
});

t.test('connections the server closes (Connection: close, idle timeout) are replaced', async (t) => {
  const f = await fake(t);
  const s = store(t, f);
  f.mode = 'close-after-each';
  const target = Buffer.alloc(10_000);
  for (let i = 0; i < 3; i++) {
    await s.getRangeInto(KEY, i * 10_000, [target]);
    t.ok(target.equals(object.subarray(i * 10_000, (i + 1) * 10_000)), `request ${i}`);
  }
  t.equal(f.connections, 3, 'Connection: close honoured: a new connection each time');
  f.mode = 'ok';
  f.server.keepAliveTimeout = 30;
  await s.getRangeInto(KEY, 0, [target]);
  await new Promise((r) => setTimeout(r, 120)); // the server closes the idle connection
  await s.getRangeInto(KEY, 5000, [target]);
  t.ok(target.equals(object.subarray(5000, 15_000)), 'a request after the server closed the kept-alive connection');
});

t.test('a header block over 64 KiB is an error (Node\'s HTTP client, the SDK\'s, refuses 16 KiB)', async (t) => {
  const f = await fake(t);
  f.mode = 'huge-head';
  const s = store(t, f);
  const e = await s.getRangeInto(KEY, 7, [Buffer.alloc(100)]).catch((x: unknown) => x);
  t.ok(isSmhError(e, 'BlobUnavailable'));
  t.match((e as Error).message, /header block over 64 KiB/);
});

t.test('what the reader does not do goes to the SDK, with the right bytes', async (t) => {
  for (const mode of ['chunked'] as const) {
    const f = await fake(t);
    f.mode = mode;
    const s = store(t, f);
    const target = Buffer.alloc(20_000);
    await s.getRangeInto(KEY, 7, [target]);
    t.ok(target.equals(object.subarray(7, 20_007)), `${mode}: bytes right`);
    await s.getRangeInto(KEY, 70_000, [target]);
    t.ok(target.equals(object.subarray(70_000, 90_000)), `${mode}: again`);
    t.same(
      f.seen.map((r) => r.sdk),
      [false, true, true],
      `${mode}: one try of its own, then the SDK from then on`,
    );
  }
});
