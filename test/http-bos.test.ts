/**
 * BOS dialect contract tests (SPEC H3, L3, L5, L6, T1, B4) with the official Baidu SDK
 * (`@baiducloud/sdk` BosClient, path-style endpoint http://127.0.0.1:PORT) as the client, plus
 * signed fetch requests for what the SDK cannot send (metadata and storage class on PutSymlink,
 * bad header values, skewed clocks).
 */
import t from 'tap';
import { FaultInjectingStore } from '../src/blob/fault-store.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { AK, BosClient, expectError, md5, sdkError, startHarness, unchanged, upload, encPath } from './helpers/http.js';

const B = '-'; // the single-tenant space is bucket "-"

t.test('seed: PutSymlink → 200 with the target ETag; GetSymlink; GetObject/HEAD through the link (L3, L6)', async (t) => {
  const h = await startHarness(t);
  const put = await h.bos.putObjectFromString(B, 'docs/target.txt', 'hello target', { 'x-bce-meta-owner': 'target-meta' });
  t.equal(put.http_headers.etag, md5('hello target'), 'PutObject ETag is the MD5');

  const s = await h.bos.putSymlink(B, 'links/l.txt', 'docs/target.txt');
  t.same(s.body, {}, 'empty response body');
  t.equal(s.http_headers.etag, md5('hello target'), 'ETag = the target object’s ETag');

  const g = await h.bos.getSymlink(B, 'links/l.txt');
  t.equal(g.http_headers['x-bce-symlink-target'], 'docs/target.txt');

  const body = await h.bos.getObject(B, 'links/l.txt');
  t.equal(body.body.toString(), 'hello target', 'GetObject follows the link');
  const ranged = await h.bos.getObject(B, 'links/l.txt', '6-11');
  t.equal(ranged.body.toString(), 'target', 'Range through the link');
  t.equal(ranged.http_headers['content-range'], 'bytes 6-11/12');

  const meta = await h.bos.getObjectMetadata(B, 'links/l.txt');
  t.equal(meta.http_headers['content-length'], '12', 'Content-Length from the target');
  t.equal(meta.http_headers.etag, md5('hello target'), 'ETag from the target');
  t.equal(meta.http_headers['x-bce-meta-owner'], undefined, 'target metadata is not the link’s');
  t.equal(meta.http_headers['x-bce-storage-class'], 'STANDARD');
  t.ok(meta.http_headers['last-modified'], 'Last-Modified');

  // Raw check of the seed's response shape: 200, ETag header, common headers.
  const raw = await h.bosFetch('PUT', `/${B}/links/raw.txt`, { query: { symlink: '' }, headers: { 'x-bce-symlink-target': 'docs/target.txt' } });
  t.equal(raw.status, 200);
  t.equal(raw.headers['etag'], `"${md5('hello target')}"`);
  t.ok(raw.headers['x-bce-request-id'], 'x-bce-request-id');
  t.equal(raw.body.length, 0, 'no body');

  // The same under the documented /v1 prefix.
  const v1 = await h.bosFetch('GET', `/v1/${B}/links/l.txt`, { query: { symlink: '' } });
  t.equal(v1.status, 200);
  t.equal(v1.headers['x-bce-symlink-target'], 'docs/target.txt');

  // SMH sees a BOS symlink as a symlink (H4, one library).
  const info = await h.smh('GET', 'file', 'links/l.txt', { query: { info: '' } });
  t.equal(info.json.type, 'symlink');
  t.same(info.json.linkTo, ['docs', 'target.txt']);
});

t.test('L6: headers through a link — metadata and storage class from the link, Last-Modified the later', async (t) => {
  const h = await startHarness(t);
  await h.bos.putObjectFromString(B, 't.bin', 'abcdef', { 'x-bce-meta-a': 'from-target', 'x-bce-storage-class': 'COLD' });
  await new Promise((r) => setTimeout(r, 1100)); // HTTP dates have 1 s resolution
  const r = await h.bosFetch('PUT', `/${B}/l.bin`, {
    query: { symlink: '' },
    headers: { 'x-bce-symlink-target': 't.bin', 'x-bce-storage-class': 'STANDARD_IA', 'x-bce-meta-a': 'from-link', 'x-bce-meta-b': 'bee' },
  });
  t.equal(r.status, 200, r.text);
  const head = await h.bos.getObjectMetadata(B, 'l.bin');
  const hh = head.http_headers;
  t.equal(hh['x-bce-meta-a'], 'from-link');
  t.equal(hh['x-bce-meta-b'], 'bee');
  t.equal(hh['x-bce-storage-class'], 'STANDARD_IA');
  t.equal(hh['content-length'], '6');
  t.equal(hh.etag, md5('abcdef'));
  const target = await h.bos.getObjectMetadata(B, 't.bin');
  t.equal(target.http_headers['x-bce-storage-class'], 'COLD');
  t.equal(target.http_headers['x-bce-meta-a'], 'from-target');
  t.ok(Date.parse(hh['last-modified']) > Date.parse(target.http_headers['last-modified']), 'Last-Modified is the link’s (later)');
  // Overwrite the target later: Last-Modified moves to the target's.
  await new Promise((r) => setTimeout(r, 1100));
  await h.bos.putObjectFromString(B, 't.bin', 'ABCDEFG');
  const again = await h.bos.getObjectMetadata(B, 'l.bin');
  const t2 = await h.bos.getObjectMetadata(B, 't.bin');
  t.equal(again.http_headers['last-modified'], t2.http_headers['last-modified'], 'now the target’s');
  t.equal(again.http_headers['content-length'], '7');
});

t.test('PutSymlink with and without x-bce-forbid-overwrite (SDK last argument)', async (t) => {
  const h = await startHarness(t);
  await h.bos.putObjectFromString(B, 'a.txt', 'A');
  await h.bos.putObjectFromString(B, 'b.txt', 'B');
  await h.bos.putSymlink(B, 'l', 'a.txt');

  const e = await sdkError(h.bos.putSymlink(B, 'l', 'b.txt', true));
  t.equal(e.status, 409);
  t.equal(e.code, 'ObjectAlreadyExists');
  t.equal((await h.bos.getSymlink(B, 'l')).http_headers['x-bce-symlink-target'], 'a.txt', 'unchanged');

  await h.bos.putSymlink(B, 'l', 'b.txt', false);
  t.equal((await h.bos.getSymlink(B, 'l')).http_headers['x-bce-symlink-target'], 'b.txt', 'false: replaced');
  await h.bos.putSymlink(B, 'l', 'a.txt');
  t.equal((await h.bos.getSymlink(B, 'l')).http_headers['x-bce-symlink-target'], 'a.txt', 'absent: replaced');

  // Over an existing object (not a link)
  const e2 = await sdkError(h.bos.putSymlink(B, 'b.txt', 'a.txt', true));
  t.equal(e2.code, 'ObjectAlreadyExists');
  await h.bos.putSymlink(B, 'b.txt', 'a.txt');
  t.equal((await h.bos.getObject(B, 'b.txt')).body.toString(), 'A', 'the object was replaced by a link');

  // New key in new directories, forbid-overwrite true is fine when absent
  await h.bos.putSymlink(B, 'deep/er/l', 'a.txt', true);
  t.equal((await h.bos.getObject(B, 'deep/er/l')).body.toString(), 'A');
});

t.test('L3/L6 errors: missing target, secondary link, ARCHIVE', async (t) => {
  const h = await startHarness(t);
  await h.bos.putObjectFromString(B, 'file', 'F');

  // Missing target: creation succeeds, ETag = MD5 of the target key; GET → 404 SymlinkTargetNotExist
  const c = await h.bos.putSymlink(B, 'dangling', 'no/such/key');
  t.equal(c.http_headers.etag, md5('no/such/key'), 'ETag = MD5 of the target key');
  t.equal((await h.bos.getSymlink(B, 'dangling')).http_headers['x-bce-symlink-target'], 'no/such/key', 'GetSymlink of a dangling link');
  const m = await sdkError(h.bos.getObject(B, 'dangling'));
  t.equal(m.status, 404);
  t.equal(m.code, 'SymlinkTargetNotExist');
  t.equal((await sdkError(h.bos.getObjectMetadata(B, 'dangling'))).status, 404, 'HEAD too');

  // Secondary link: no check at creation, 400 InvalidTargetType on read
  await h.bos.putSymlink(B, 'first', 'file');
  await h.bos.putSymlink(B, 'second', 'first');
  const s = await sdkError(h.bos.getObject(B, 'second'));
  t.equal(s.status, 400);
  t.equal(s.code, 'InvalidTargetType');
  t.equal((await sdkError(h.bos.getObjectMetadata(B, 'second'))).status, 400);

  // ARCHIVE: explicit header
  const a = await unchanged(t, h, 'ARCHIVE header', () =>
    h.bosFetch('PUT', `/${B}/arch`, { query: { symlink: '' }, headers: { 'x-bce-symlink-target': 'file', 'x-bce-storage-class': 'ARCHIVE' } }),
  );
  expectError(t, a, 400, 'InvalidArgument', 'x-bce-storage-class: ARCHIVE');
  t.type(a.json.requestId, 'string', 'BOS error has a requestId');
  // ARCHIVE: no header while the bucket default is ARCHIVE (SDK putSymlink sends no class)
  h.lib.space('-').setDefaultStorageClass('ARCHIVE');
  const d = await sdkError(h.bos.putSymlink(B, 'arch2', 'file'));
  t.equal(d.status, 400);
  t.equal(d.code, 'InvalidArgument');
  const ok = await h.bosFetch('PUT', `/${B}/arch3`, { query: { symlink: '' }, headers: { 'x-bce-symlink-target': 'file', 'x-bce-storage-class': 'STANDARD' } });
  t.equal(ok.status, 200, 'an explicit non-ARCHIVE class is fine with an ARCHIVE default');
});

t.test('L5: a path link made through the mount resolves against its parent for BOS GET', async (t) => {
  const h = await startHarness(t);
  await h.smh('PUT', 'directory', 'a');
  await h.smh('PUT', 'directory', 'x');
  // What ln -s does through the mount; the target does not exist yet, so it is a path link (L1).
  const l = h.lib.space('-').symlink('x/l', '../a/b.txt');
  t.equal(l.link?.flavour, 'path');
  await upload(h, 'a/b.txt', 'bee');
  t.equal((await h.bos.getObject(B, 'x/l')).body.toString(), 'bee');
  t.equal((await h.bos.getSymlink(B, 'x/l')).http_headers['x-bce-symlink-target'], '../a/b.txt', 'GET ?symlink returns what was stored');
  // A bound link (SMH) read through BOS
  await h.smh('PUT', 'file', 'bound', { json: { linkTo: 'a/b.txt' } });
  t.equal((await h.bos.getObject(B, 'bound')).body.toString(), 'bee');
});

t.test('PutObject/GetObject/HeadObject/DeleteObject with the SDK', async (t) => {
  const h = await startHarness(t);
  const data = Buffer.from('some bytes for bos');
  const p = await h.bos.putObject(B, 'dir/sub/obj.bin', data, { 'x-bce-meta-color': 'blue', 'x-bce-storage-class': 'STANDARD_IA' });
  t.equal(p.http_headers.etag, md5(data));
  const g = await h.bos.getObject(B, 'dir/sub/obj.bin');
  t.ok(g.body.equals(data));
  const m = await h.bos.getObjectMetadata(B, 'dir/sub/obj.bin');
  t.equal(m.http_headers['x-bce-meta-color'], 'blue');
  t.equal(m.http_headers['x-bce-storage-class'], 'STANDARD_IA');
  t.equal(m.http_headers['content-length'], String(data.length));
  t.equal(m.http_headers['content-type'], 'application/octet-stream');

  // Overwrite by default; forbid-overwrite on PutObject → 409
  await h.bos.putObjectFromString(B, 'dir/sub/obj.bin', 'v2');
  t.equal((await h.bos.getObject(B, 'dir/sub/obj.bin')).body.toString(), 'v2');
  const f = await sdkError(h.bos.putObjectFromString(B, 'dir/sub/obj.bin', 'v3', { 'x-bce-forbid-overwrite': 'true' }));
  t.equal(f.code, 'ObjectAlreadyExists');

  // Delete → 204, to the recycle bin (T1)
  const d = await h.bos.deleteObject(B, 'dir/sub/obj.bin');
  t.equal(d.http_headers['content-length'] ?? '0', '0');
  const gone = await sdkError(h.bos.getObject(B, 'dir/sub/obj.bin'));
  t.equal(gone.status, 404);
  t.equal(gone.code, 'NoSuchKey');
  const bin = await h.smh('GET', 'recycled', '');
  t.match(bin.json.contents, [{ name: 'obj.bin', originalPath: ['dir', 'sub', 'obj.bin'] }], 'the deleted object is in the recycle bin');
  const raw = await h.bosFetch('DELETE', `/${B}/dir/sub`, {});
  t.equal(raw.status, 204, 'an empty directory key can be deleted');
  expectError(t, await h.bosFetch('DELETE', `/${B}/nope`, {}), 404, 'NoSuchKey', 'delete of a missing key');

  // Unknown bucket, missing key
  const nb = await sdkError(h.bos.getObject('no-such-bucket', 'k'));
  t.equal(nb.status, 404);
  t.equal(nb.code, 'NoSuchBucket');
  expectError(t, await h.bosFetch('GET', `/${B}/dir`, {}), 404, 'NoSuchKey', 'a directory is not an object');

  // Keys with spaces and parentheses (URI encoding in the signature)
  await h.bos.putObjectFromString(B, 'we ird/na me (1)*!.txt', 'odd');
  t.equal((await h.bos.getObject(B, 'we ird/na me (1)*!.txt')).body.toString(), 'odd');
  t.equal((await h.smh('GET', 'file', encPath('we ird/na me (1)*!.txt'))).text, 'odd', 'same object through SMH');

  // Directory marker
  const dm = await h.bosFetch('PUT', `/${B}/folder/`, {});
  t.equal(dm.status, 200);
  t.equal((await h.smh('GET', 'directory', 'folder')).status, 200, 'a key ending in / made a directory');

  // Presigned URL (signature in the query string, under /v1)
  await h.bos.putObjectFromString(B, 'shared.txt', 'presigned');
  const url: string = h.bos.generatePresignedUrl(B, 'shared.txt', 0, 1800, null, null);
  const ps = await fetch(url);
  t.equal(ps.status, 200, url);
  t.equal(await ps.text(), 'presigned');

  // Content-MD5 mismatch → 400 BadDigest, nothing stored
  const bad = await unchanged(t, h, 'BadDigest', () =>
    h.bosFetch('PUT', `/${B}/md5.txt`, { headers: { 'content-md5': Buffer.from(md5('other'), 'hex').toString('base64') }, body: 'payload' }),
  );
  expectError(t, bad, 400, 'BadDigest', 'Content-MD5 mismatch');
});

t.test('bce-auth-v1: wrong signature, clock skew, bad headers', async (t) => {
  const h = await startHarness(t);
  await h.bos.putObjectFromString(B, 'k', 'v');

  const wrong = new BosClient({ endpoint: h.url, credentials: { ak: AK, sk: 'not-the-secret' } });
  const w = await sdkError(wrong.getObject(B, 'k'));
  t.equal(w.status, 403);
  t.equal(w.code, 'SignatureDoesNotMatch');
  const wp = await unchanged(t, h, 'wrong signature', () => sdkError(wrong.putObjectFromString(B, 'k2', 'x')));
  t.equal(wp.code, 'SignatureDoesNotMatch');

  const unknownAk = new BosClient({ endpoint: h.url, credentials: { ak: 'someone-else', sk: 'x' } });
  t.equal((await sdkError(unknownAk.getObject(B, 'k'))).code, 'InvalidAccessKeyId');

  const now = Date.now() / 1000;
  const old = await h.bosFetch('GET', `/${B}/k`, { timestamp: now - 3600, expiration: 1800 });
  expectError(t, old, 403, 'RequestExpired', 'signed an hour ago, valid 30 min');
  const future = await h.bosFetch('GET', `/${B}/k`, { timestamp: now + 3600 });
  expectError(t, future, 403, 'RequestExpired', 'signed an hour in the future');
  const fine = await h.bosFetch('GET', `/${B}/k`, { timestamp: now - 600, expiration: 1800 });
  t.equal(fine.status, 200, 'within the window');
  const skewPut = await unchanged(t, h, 'skewed PutSymlink', () =>
    h.bosFetch('PUT', `/${B}/sk`, { query: { symlink: '' }, headers: { 'x-bce-symlink-target': 'k' }, timestamp: now - 7200 }),
  );
  expectError(t, skewPut, 403, 'RequestExpired', 'skewed PutSymlink');

  expectError(t, await h.fetch('GET', `/${B}/k`), 403, 'AccessDenied', 'no Authorization');
  expectError(t, await h.fetch('GET', `/${B}/k`, { headers: { authorization: 'AWS abc:def' } }), 400, 'InvalidHTTPAuthHeader', 'not bce-auth-v1');

  // A signed x-bce header changed in transit
  const signedHeaders = { 'x-bce-symlink-target': 'k' };
  const tampered = await unchanged(t, h, 'tampered', async () => {
    const host = new URL(h.url).host;
    const { signBce } = await import('./helpers/http.js');
    const headers: Record<string, string> = { host, ...signedHeaders };
    const auth = signBce('PUT', `/${B}/tl`, { symlink: '' }, headers);
    return h.fetch('PUT', `/${B}/tl?symlink`, { headers: { 'x-bce-symlink-target': 'other', authorization: auth } });
  });
  expectError(t, tampered, 403, 'SignatureDoesNotMatch', 'tampered header');
});

t.test('bad header values (SPEC 9): forbid-overwrite, storage class, missing target; library unchanged', async (t) => {
  const h = await startHarness(t);
  await h.bos.putObjectFromString(B, 'k', 'v');
  for (const [what, headers, code] of [
    ['x-bce-forbid-overwrite: maybe', { 'x-bce-symlink-target': 'k', 'x-bce-forbid-overwrite': 'maybe' }, 'InvalidArgument'],
    ['x-bce-storage-class: GLACIER', { 'x-bce-symlink-target': 'k', 'x-bce-storage-class': 'GLACIER' }, 'InvalidArgument'],
    ['no x-bce-symlink-target', {}, 'InvalidArgument'],
    ['target over 4095 bytes (N2)', { 'x-bce-symlink-target': 'a/'.repeat(2048) + 'x' }, 'InvalidArgument'],
  ] as const) {
    const r = await unchanged(t, h, what, () => h.bosFetch('PUT', `/${B}/l`, { query: { symlink: '' }, headers }));
    expectError(t, r, 400, code, what);
  }
  const name = 'n'.repeat(256);
  const long = await unchanged(t, h, 'oversize key segment', () => h.bosFetch('PUT', `/${B}/${name}`, { query: { symlink: '' }, headers: { 'x-bce-symlink-target': 'k' } }));
  expectError(t, long, 400, 'InvalidObjectName', 'a 256-byte name');
  const putLong = await unchanged(t, h, 'oversize PutObject key', () => h.bosFetch('PUT', `/${B}/d/${name}`, { body: 'x' }));
  expectError(t, putLong, 400, 'InvalidObjectName', 'PutObject with a 256-byte name');
  const dotdot = await unchanged(t, h, '.. key', () =>
    h.raw('PUT', `/${B}/a/../k?symlink`, {}).then(async () => {
      // signed properly for the raw path
      const { signBce } = await import('./helpers/http.js');
      const host = new URL(h.url).host;
      const headers = { host, 'x-bce-symlink-target': 'k' };
      const auth = signBce('PUT', `/${B}/a/../l2`, { symlink: '' }, headers);
      return h.raw('PUT', `/${B}/a/../l2?symlink=`, { 'x-bce-symlink-target': 'k', authorization: auth });
    }),
  );
  t.equal(dotdot.status, 400, `.. segment: ${dotdot.text}`);
  t.ok(['InvalidObjectName', 'InvalidArgument'].includes(dotdot.json?.code), `.. segment code ${dotdot.json?.code}`);
  const badRange = await h.bosFetch('GET', `/${B}/k`, { headers: { range: 'bytes=5-9' } });
  expectError(t, badRange, 416, 'InvalidRange', 'range past the end');
  t.equal(badRange.headers['content-range'], 'bytes */1');
  expectError(t, await h.bosFetch('GET', `/${B}/k`, { query: { acl: '' } }), 501, 'NotImplemented', 'unsupported sub-resource');
});

t.test('BOS disabled without credentials', async (t) => {
  const h = await startHarness(t, { bos: false });
  const e = await sdkError(h.bos.getObject(B, 'k'));
  t.equal(e.status, 403);
  t.equal(e.code, 'AccessDenied');
});

/** Memory store whose reads fail from a given offset on (deterministic mid-stream failures). */
class FailFrom extends MemoryBlobStore {
  failFrom: number | undefined;
  override async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    if (this.failFrom !== undefined && offset + length > this.failFrom) throw new Error('injected read failure');
    return super.getRange(key, offset, length);
  }
}

t.test('B4: a blob that cannot be read is 503, never wrong bytes', async (t) => {
  const store = new FaultInjectingStore(new MemoryBlobStore());
  const h = await startHarness(t, { blobStore: store });
  const big = Buffer.alloc(3 << 20, 7);
  await h.bos.putObject(B, 'big', big);
  h.reader.cache.clear();
  store.failNext(1000);
  const e = await sdkError(h.bos.getObject(B, 'big'));
  t.equal(e.status, 503);
  t.equal(e.code, 'ServiceUnavailable');
  const s = await h.smh('GET', 'file', 'big');
  expectError(t, s, 503, 'ServiceUnavailable', 'SMH download');
  store.reset();
  const ok = await h.bos.getObject(B, 'big');
  t.ok(ok.body.equals(big), 'after recovery the bytes are right');
});

t.test('B4: a failure after the first chunk cuts the response (the client sees an error, not success)', async (t) => {
  const store = new FailFrom();
  const h = await startHarness(t, { blobStore: store });
  const big = Buffer.alloc(3 << 20, 9);
  await h.bos.putObject(B, 'big', big);
  h.reader.cache.clear();
  store.failFrom = 2 << 20;
  const res = await fetch(`${h.url}/api/v1/file/${h.libId}/-/big?access_token=${h.admin}`);
  t.equal(res.status, 200, 'headers went out with the first chunk');
  t.equal(res.headers.get('content-length'), String(big.length));
  await t.rejects(res.arrayBuffer(), 'the body fails before Content-Length bytes');
  // (Not with the SDK: its getObject waits forever on a connection closed mid-body, as it never
  // listens for the response's 'aborted'/'error'.)
  store.failFrom = undefined;
});
