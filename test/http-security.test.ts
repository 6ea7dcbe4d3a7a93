/**
 * Issue 17 (HTTP hardening), tried as an attacker with network access and as a holder of
 * low-privilege tokens would: one test per finding, named after it (F1…F10), plus issue 9 item 10.
 * Requests are raw HTTP (fetch, node:http with paths sent byte for byte) and BOS requests signed
 * with the official SDK's own signer. The grant matrix (F3) is test/http-security-grants.test.ts;
 * the resource tests (F2, F7, F8) are test/http-security-limits.test.ts.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync, existsSync, statSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { LocalBlobStore } from '../src/blob/local-store.js';
import type { Library } from '../src/store/library.js';
import type { HttpLibrary } from '../src/http/store-port.js';
import {
  AK,
  SK,
  doFetch,
  encPath,
  expectError,
  mkdirp,
  rawRequest,
  sdkError,
  startHarness,
  unchanged,
  upload,
  type Harness,
  type Res,
} from './helpers/http.js';
import { CLI } from './helpers/mount.js';
import { resolveFrom, tempDir } from './helpers/store.js';
import { rawConnect, statusOf, bodyOf } from './helpers/raw-socket.js';

const require = createRequire(import.meta.url);
const SdkAuth: new (ak: string, sk: string) => {
  generateAuthorization(method: string, resource: string, params: Record<string, string>, headers: Record<string, string>, timestamp?: number, expiration?: number, headersToSign?: string[]): string;
} = require('@baiducloud/sdk/src/auth.js');

const B = '-';

/** A BOS request signed by the SDK's signer over `signed` headers, sent with `sent` headers. */
function bosSigned(h: Harness, method: string, path: string, o: { query?: Record<string, string>; signed: Record<string, string>; sent?: Record<string, string>; body?: string | Buffer; expiration?: number; headersToSign?: string[] }): Promise<Res> {
  const auth = new SdkAuth(AK, SK).generateAuthorization(method, path, o.query ?? {}, o.signed, undefined, o.expiration, o.headersToSign);
  const { host: _h, ...rest } = { ...o.signed, ...(o.sent ?? {}) };
  const qs = Object.entries(o.query ?? {})
    .map(([k, v]) => (v === '' ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`))
    .join('&');
  return rawRequest(h.url, method, path + (qs ? `?${qs}` : ''), { ...rest, authorization: auth }, o.body);
}

function hostOf(h: Harness): string {
  return new URL(h.url).host;
}

async function info(h: Harness, path: string, token?: string): Promise<Res> {
  return h.smh('GET', 'file', encPath(path), { query: { info: '' }, ...(token ? { token } : {}) });
}

// ---------------------------------------------------------------------------------------------

t.test('F1 (D10, N3): links made over HTTP never lead out of the space', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'docs');
  await upload(h, 'docs/a.txt', 'A');
  // (a) BOS targets with . or .. segments — as written, and percent-encoded (targets are decoded)
  for (const target of ['../../../../OUTSIDE', 'docs/../../..', '..', 'docs/./a.txt', '..%2F..%2FOUTSIDE', '%2e%2e/OUTSIDE', 'docs%2F%2E%2E%2F%2E%2E']) {
    const r = await unchanged(t, h, `target ${target}`, () =>
      h.bosFetch('PUT', `/${B}/docs/l`, { query: { symlink: '' }, headers: { 'x-bce-symlink-target': target } }),
    );
    expectError(t, r, 400, 'InvalidArgument', `x-bce-symlink-target: ${target}`);
  }
  const sdk = await sdkError(h.bos.putSymlink(B, 'docs/l', '../../../etc/passwd'));
  t.equal(sdk.status, 400, 'the SDK gets 400 too');
  t.equal((await h.bosFetch('PUT', `/${B}/docs/ok`, { query: { symlink: '' }, headers: { 'x-bce-symlink-target': 'docs/a.txt' } })).status, 200, 'a plain key is fine');

  // (b) A path link made in the mount (symlink(2) → space.symlink) that is fine where it is …
  const space = h.lib.space('-');
  space.mkdir('m2/b/c', { parents: true });
  space.symlink('m2/b/c/up', '../../..', {});
  space.symlink('m2/b/c/abs', '/etc', {});
  const up = (await info(h, 'm2/b/c/up')).json;
  t.same(up.linkTo, [], '?info: it leads to the space root');
  t.equal(resolveFrom('m2/b/c', space.readlink('m2/b/c/up')), '', 'the mount’s readlink leads to the same place');
  t.equal((await info(h, 'm2/b/c/abs')).json.linkTo, null, '?info: an absolute target is outside the space');
  // … cannot be copied or moved over HTTP to where it would lead outside
  const cp = h.token(['copy_file']);
  const mv = h.token(['move_file']);
  const mvd = h.token(['move_directory']);
  const cpd = h.token(['copy_directory']);
  const refused = async (what: string, fn: () => Promise<Res>) => expectError(t, await unchanged(t, h, what, fn), 400, 'InvalidSourceFile', what);
  await refused('copy_file: up-B from m2/b/c/up', () => h.smh('PUT', 'file', 'up-B', { json: { copyFrom: 'm2/b/c/up' }, token: cp }));
  await refused('move_file: up-B from m2/b/c/up', () => h.smh('PUT', 'file', 'up-B', { json: { from: 'm2/b/c/up' }, token: mv }));
  await refused('move_directory: m2/b to the root', () => h.smh('PUT', 'directory', 'b', { json: { from: 'm2/b' }, token: mvd }));
  await refused('copy_directory: a tree holding an absolute link', () => h.smh('PUT', 'directory', 'm3', { json: { copyFrom: 'm2' }, token: cpd }));
  t.equal((await h.smh('PUT', 'file', 'm2/b/c/up2', { json: { copyFrom: 'm2/b/c/up' }, token: cp })).status, 200, 'a copy that still leads inside is fine');
  t.same((await info(h, 'm2/b/c/up2')).json.linkTo, []);
});

// ---------------------------------------------------------------------------------------------

/** Lines a child process wrote, collected. */
function collect(stream: NodeJS.ReadableStream): { text: () => string } {
  let s = '';
  stream.on('data', (d: Buffer) => (s += d.toString('utf8')));
  return { text: () => s };
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = collect(child.stdout!);
  const err = collect(child.stderr!);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  return { code, stdout: out.text(), stderr: err.text() };
}

t.test('F4: no log line and no database file holds a token or the secret; token list/revoke/rotate-secret', async (t) => {
  const dir = tempDir('smhfs-secrets-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = ['--library', dir];
  t.equal((await cli([...lib, 'init'])).code, 0, 'smhfs init (D2: the only command that creates a library)');
  t.equal((await cli([...lib, 'mkdir', 'docs'])).code, 0);
  const rotated = await cli([...lib, 'token', 'rotate-secret']);
  t.equal(rotated.code, 0, rotated.stderr);
  const secret = rotated.stdout.trim();
  t.match(secret, /^[0-9a-f]{48}$/, 'rotate-secret prints the new secret once');
  const created = await cli([...lib, '--json', 'token', 'create', '--grant', 'admin']);
  const { accessToken: token, libraryId } = JSON.parse(created.stdout) as { accessToken: string; libraryId: string };

  const child = spawn(process.execPath, [CLI, ...lib, 'serve', '--log', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SMHFS_BOS_ACCESS_KEY: AK, SMHFS_BOS_SECRET_KEY: SK },
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const log = collect(child.stdout!);
  const banner = collect(child.stderr!);
  for (let i = 0; i < 200 && !/at (http:\/\/\S+)/.test(banner.text()); i++) await new Promise((r) => setTimeout(r, 50));
  const url = /at (http:\/\/\S+)/.exec(banner.text())?.[1];
  if (!url) return t.fail(`no URL in the banner: ${banner.text()}`);
  const api = `${url}/api/v1`;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };

  // Every way a secret travels: query token, Bearer token, the token endpoint (secret in the body;
  // and refused in the query), a BOS Authorization header, a presigned URL, a bad URL with a token.
  t.equal((await doFetch(`${api}/file/${libraryId}/-/docs/x?access_token=${token}`, 'PUT', { 'content-type': 'application/octet-stream' }, 'x')).status, 200);
  t.equal((await doFetch(`${api}/file/${libraryId}/-/docs/x?info`, 'GET', { authorization: `Bearer ${token}` })).status, 200);
  const minted = await doFetch(`${api}/token?library_id=${libraryId}&grant=upload_file`, 'POST', form, `library_secret=${secret}`);
  t.equal(minted.status, 200, minted.text);
  const token2 = minted.json.accessToken as string;
  const inQuery = await doFetch(`${api}/token?library_id=${libraryId}&library_secret=${secret}`, 'GET');
  expectError(t, inQuery, 400, 'InvalidArgument', 'the secret in the query string is refused');
  const { BosClient } = await import('./helpers/http.js');
  const bos = new BosClient({ endpoint: url, credentials: { ak: AK, sk: SK } });
  await bos.putObjectFromString(B, 'docs/b.txt', 'b');
  const presigned: string = bos.generatePresignedUrl(B, 'docs/b.txt', 0, 1800, null, null);
  t.equal((await doFetch(presigned, 'GET')).status, 200);
  const signature = /authorization=([^&]+)/.exec(presigned)![1]!;
  await rawRequest(url, 'GET', `/api/v1/file/${libraryId}/-/caf%E9?access_token=${token}`);

  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  const lines = log.text().split('\n').filter((l) => l !== '');
  t.ok(lines.length >= 8, `the server logged (${lines.length} lines)`);
  t.ok(lines.some((l) => l.includes('[REDACTED]')), 'secrets are replaced by [REDACTED]');
  const secrets: Array<[string, string]> = [
    ['access token', token],
    ['minted token', token2],
    ['library secret', secret],
    ['BOS secret key', SK],
    ['presigned signature', decodeURIComponent(signature).split('/').pop()!],
  ];
  for (const [what, s] of secrets) {
    t.notOk(lines.some((l) => l.includes(s)), `no log line holds the ${what}`);
  }

  // The database and its WAL/SHM: the owner's only, and no secret in clear.
  const files = ['library.db', 'library.db-wal', 'library.db-shm'].map((f) => join(dir, f)).filter((f) => existsSync(f));
  t.ok(files.length >= 1);
  for (const f of files) {
    t.equal(statSync(f).mode & 0o777, 0o600, `${f.slice(dir.length + 1)} is 0600`);
    const bytes = readFileSync(f);
    for (const [what, s] of secrets.slice(0, 3)) t.equal(bytes.includes(s), false, `${f.slice(dir.length + 1)} holds no ${what}`);
  }

  // token list shows ids and grants, never the tokens; revoke ends a token at once
  const listed = await cli([...lib, '--json', 'token', 'list']);
  const rows = JSON.parse(listed.stdout) as Array<{ id: number; grants: string[] }>;
  t.same(rows.map((r) => r.grants), [['admin'], ['upload_file']]);
  t.notOk(listed.stdout.includes(token) || listed.stdout.includes(token2), 'token list never prints a token');
  t.equal((await cli([...lib, 'token', 'revoke', String(rows[1]!.id)])).code, 0);
  t.same((JSON.parse((await cli([...lib, '--json', 'token', 'list'])).stdout) as unknown[]).length, 1, 'revoked');
  const again = await cli([...lib, 'token', 'rotate-secret']);
  t.not(again.stdout.trim(), secret, 'rotate-secret makes a new secret');
});

// ---------------------------------------------------------------------------------------------

t.test('F5 (H3): BOS signatures as strict as BOS — default signed headers, unsigned x-bce-* refused, a maximum validity', async (t) => {
  const h = await startHarness(t);
  await h.bos.putObjectFromString(B, 'docs/a.txt', 'A');
  const host = hostOf(h);
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  // An empty signed-header list (`…/1800//SIG`): the SDK's signer gives it for a request with no
  // headers to sign; BOS then signs the default set, so a symlink target sent with it is refused.
  const empty = await unchanged(t, h, 'empty signed-header list', () =>
    bosSigned(h, 'PUT', `/${B}/docs/evil`, { query: { symlink: '' }, signed: {}, sent: { host, 'x-bce-symlink-target': 'docs/a.txt' } }),
  );
  t.equal(empty.status, 403, `empty list: ${empty.text}`);
  t.equal(empty.json?.code, 'SignatureDoesNotMatch');

  // A captured request replayed with headers added: unsigned x-bce-meta-*/storage class.
  const replay = await unchanged(t, h, 'unsigned x-bce-meta', () =>
    bosSigned(h, 'PUT', `/${B}/docs/b.txt`, {
      signed: { host, 'x-bce-date': date, 'content-length': '1' },
      sent: { 'x-bce-meta-evil': 'yes', 'x-bce-storage-class': 'COLD' },
      body: 'b',
      headersToSign: ['host', 'content-length'],
    }),
  );
  expectError(t, replay, 403, 'SignatureDoesNotMatch', 'x-bce-* headers that were not signed');
  // … with another symlink target than the one signed
  const retarget = await unchanged(t, h, 'another target', () =>
    bosSigned(h, 'PUT', `/${B}/docs/l`, { query: { symlink: '' }, signed: { host, 'x-bce-symlink-target': 'docs/a.txt' }, sent: { 'x-bce-symlink-target': 'docs/b.txt' } }),
  );
  t.equal(retarget.status, 403, 'a signed target cannot be swapped');
  // … with an unsigned Content-MD5 (and so another body)
  const md5 = await unchanged(t, h, 'unsigned content-md5', () =>
    bosSigned(h, 'PUT', `/${B}/docs/c.txt`, {
      signed: { host, 'x-bce-date': date },
      sent: { 'content-md5': Buffer.alloc(16).toString('base64') },
      body: 'c',
      headersToSign: ['host'],
    }),
  );
  expectError(t, md5, 403, 'SignatureDoesNotMatch', 'Content-MD5 that was not signed');

  // A validity of 9,999,999,999 s is refused; 7 days is the most.
  const forever = await unchanged(t, h, 'forever', () => bosSigned(h, 'GET', `/${B}/docs/a.txt`, { signed: { host, 'x-bce-date': date }, expiration: 9999999999 }));
  expectError(t, forever, 400, 'InvalidHTTPAuthHeader', 'expiration 9999999999 s');
  t.match(forever.json.message, /604800/, 'the message names the limit');
  t.equal((await bosSigned(h, 'GET', `/${B}/docs/a.txt`, { signed: { host, 'x-bce-date': date }, expiration: 604800 })).status, 200, '7 days is accepted');

  // What the SDK itself sends still works.
  await h.bos.putSymlink(B, 'docs/ok-link', 'docs/a.txt');
  t.equal((await h.bos.getObject(B, 'docs/ok-link')).body.toString(), 'A');
});

// ---------------------------------------------------------------------------------------------

t.test('F6: depth is bounded (PATH_MAX, 4,095 bytes) and tree walks are iterative', async (t) => {
  const h = await startHarness(t);
  const deep = Array.from({ length: 7000 }, () => 'a').join('/') + '/x';
  const put = await unchanged(t, h, '7,000-level BOS key', () => h.bosFetch('PUT', `/${B}/${deep}`, { body: 'x' }));
  expectError(t, put, 400, 'InvalidObjectName', 'a 14,001-byte BOS key');
  t.match(put.json.message, /4095/);
  expectError(t, await h.smh('PUT', 'directory', Array.from({ length: 3000 }, () => 'd').join('/')), 400, 'PathTooLong', 'a 5,999-byte SMH path');

  // A tree deeper than PATH_MAX exists anyway (a move keeps a tree's shape): 14,000 levels, as in
  // the issue — chains of 2,000 levels, each moved to the bottom of the next.
  const space = h.lib.space('-');
  const chain = Array.from({ length: 2000 }, () => 'c').join('/');
  for (let i = 0; i < 7; i++) {
    space.mkdir(`s${i}/${chain}`, { parents: true });
    if (i > 0) space.move(`s${i - 1}`, `s${i}/${chain}/s${i - 1}`, {});
  }
  space.move('s6', 'deep', {});
  const depthOf = (): number =>
    (h.lib.db.prepare(`WITH RECURSIVE sub(id, d) AS (SELECT ?, 0 UNION ALL SELECT e.node, d + 1 FROM entries e JOIN sub ON e.parent = sub.id) SELECT max(d) AS d FROM sub`).get(space.stat('deep', {}).id) as { d: number }).d;
  t.equal(depthOf(), 14_006, 'a tree of 14,007 levels');

  const copy = await unchanged(t, h, 'copy of the deep tree', () => h.smh('PUT', 'directory', 'copy', { json: { copyFrom: 'deep' } }));
  expectError(t, copy, 400, 'PathTooLong', 'copying a tree deeper than PATH_MAX: a clear 400, never a stack overflow');

  const del = await h.smh('DELETE', 'directory', 'deep', { query: { permanent: '1' } });
  t.equal(del.status, 202, 'a permanent delete of the deep tree is a task');
  await h.lib.runTasks();
  const task = await h.smh('GET', 'task', String(del.json.taskId));
  t.equal(task.json[0].status, 'done', 'purged');
  t.same(space.readdir('').map((e) => e.name).filter((n) => n !== '.trash'), [], 'nothing left');
});

// ---------------------------------------------------------------------------------------------

t.test('F9 (D5): BOS header text is UTF-8 (targets percent-decoded); what is not UTF-8 is refused', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'docs');
  await upload(h, 'docs/encé.txt', 'accent');
  const host = hostOf(h);
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  // Header values go out as the UTF-8 bytes (Node writes a header string as Latin-1, one byte a character).
  const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  const symlink = (key: string, target: string, extra: Record<string, string> = {}) =>
    bosSigned(h, 'PUT', `/${B}/${encPath(key)}`, { query: { symlink: '' }, signed: { host, 'x-bce-date': date, 'x-bce-symlink-target': target, ...extra } });

  t.equal((await symlink('docs/l1', utf8('docs/encé.txt'), { 'x-bce-meta-owner': utf8('José') })).status, 200, 'UTF-8 target and metadata');
  const space = h.lib.space('-');
  t.equal(space.getSymlink('docs/l1'), 'docs/encé.txt', 'the target is stored as sent, not as Latin-1 (docs/encÃ©.txt)');
  t.same(space.userMeta('docs/l1'), { owner: 'José' }, 'metadata likewise');
  t.equal((await h.bos.getObject(B, 'docs/l1')).body.toString(), 'accent', 'and it resolves');
  t.equal((await symlink('docs/l2', 'docs/enc%C3%A9.txt')).status, 200, 'a percent-encoded target');
  t.equal(space.getSymlink('docs/l2'), 'docs/encé.txt', 'is decoded');
  const got = await h.bosFetch('GET', `/${B}/docs/l2`, { query: { symlink: '' } });
  t.equal(got.headers['x-bce-symlink-target'], 'docs/enc%C3%A9.txt', 'GET ?symlink answers it percent-encoded');

  const latin1 = await unchanged(t, h, 'Latin-1 target', () => symlink('docs/l3', 'docs/enc\xe9.txt'));
  expectError(t, latin1, 400, 'InvalidObjectName', 'a target that is not UTF-8');
  const badPct = await unchanged(t, h, '%E9 target', () => symlink('docs/l3', 'docs/enc%E9.txt'));
  expectError(t, badPct, 400, 'InvalidObjectName', 'a percent-encoded target that is not UTF-8');
  const stray = await unchanged(t, h, 'stray %', () => symlink('docs/l3', 'docs/100%.txt'));
  expectError(t, stray, 400, 'InvalidArgument', 'a stray %');
  const meta = await unchanged(t, h, 'Latin-1 metadata', () => symlink('docs/l3', 'docs/encé.txt'.normalize(), { 'x-bce-meta-owner': 'Jos\xe9' }));
  t.equal(meta.status, 400, 'metadata that is not UTF-8');
});

// ---------------------------------------------------------------------------------------------

t.test('F10: one error shape per dialect, nothing leaked, inputs echoed short, unknown parameters refused, quiet disconnects', async (t) => {
  const logLines: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const blobDir = tempDir('smhfs-blobs-');
  t.teardown(() => rmSync(blobDir, { recursive: true, force: true }));
  const h = await startHarness(t, { blobStore: new LocalBlobStore(blobDir), logger: { stream: logStream, level: 'info' } });
  await upload(h, 'f.txt', 'content');
  const base = `/api/v1/file/${h.libId}/-`;

  // Invalid UTF-8 in a path: the dialect's 400, never Fastify's FST_ERR_BAD_URL echoing the URL.
  const smhBad = await unchanged(t, h, 'invalid UTF-8 SMH path', () => rawRequest(h.url, 'PUT', `${base}/caf%E9.txt?access_token=${h.admin}`, { 'content-type': 'application/octet-stream' }, 'x'));
  expectError(t, smhBad, 400, 'InvalidFileName', 'SMH path not UTF-8');
  t.same(Object.keys(smhBad.json).sort(), ['code', 'message'], 'SMH shape');
  t.notMatch(smhBad.text, h.admin, 'the token is not echoed');
  t.notMatch(smhBad.text, /FST_/, 'no Fastify code');
  const bosBad = await rawRequest(h.url, 'GET', `/v1/${B}/caf%E9.txt`);
  t.equal(bosBad.status, 400);
  t.equal(bosBad.json?.code, 'InvalidObjectName', 'BOS key not UTF-8');
  t.type(bosBad.json?.requestId, 'string', 'BOS shape');

  // 431 and a malformed request: the dialect's JSON, not Fastify's or Node's.
  for (const [path, smh] of [[`${base}/f.txt`, true], [`/v1/${B}/f.txt`, false]] as const) {
    const c = await rawConnect(t, h.url);
    c.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(40_000)}\r\n\r\n`);
    await c.closed;
    const raw = c.received().toString('latin1');
    t.equal(statusOf(raw), 431, `431 for ${smh ? 'SMH' : 'BOS'}`);
    const body = JSON.parse(bodyOf(raw)) as Record<string, unknown>;
    t.equal(body.code, 'RequestHeaderTooLarge');
    t.same(Object.keys(body).sort(), smh ? ['code', 'message'] : ['code', 'message', 'requestId'], 'in the dialect’s shape');
  }
  const c = await rawConnect(t, h.url);
  c.socket.write('NONSENSE\r\n\r\n');
  await c.closed;
  const malformed = c.received().toString('latin1');
  t.equal(statusOf(malformed), 400, 'malformed request line: 400');
  t.equal((JSON.parse(bodyOf(malformed)) as { code: string }).code, 'MalformedRequest');

  // A 502 for a missing blob does not reveal the blob store's path or the key.
  const f = h.lib.space('-').stat('f.txt', {});
  rmSync(join(blobDir, f.blob!.slice(0, 2)), { recursive: true, force: true });
  h.reader.cache.clear();
  const missing = await h.smh('GET', 'file', 'f.txt');
  t.equal(missing.status, 502, `a missing blob: ${missing.text}`);
  t.notMatch(missing.text, blobDir, 'no blob-store path');
  t.notMatch(missing.text, f.blob!, 'no blob key');
  t.match(missing.json.message, /request/, 'the message names the request id to look up in the log');
  t.ok(logLines.some((l) => l.includes(f.blob!.slice(0, 8)) || l.includes('blob')), 'the details are in the server log');

  // Input echoed short.
  const long = 'x'.repeat(200_000);
  const echoed = await h.smh('PUT', 'file', 'l', { json: { linkTo: long } });
  t.equal(echoed.status, 400, echoed.text.slice(0, 200));
  t.ok(Buffer.byteLength(echoed.json.message) <= 1100, `a 200,000-byte input is echoed in ${Buffer.byteLength(echoed.json.message)} bytes`);

  // Unknown query parameters are refused, not ignored (a misspelt strategy must not rename silently).
  await upload(h, 'g.txt', 'G');
  const typo = await unchanged(t, h, 'conflict_strategy=ask', () => h.smh('PUT', 'file', 'g.txt', { body: 'new', query: { conflict_strategy: 'ask' } }));
  expectError(t, typo, 400, 'InvalidArgument', 'a misspelt parameter');
  t.match(typo.json.message, /conflict_strategy/);
  expectError(t, await h.bosFetch('GET', `/${B}/g.txt`, { query: { sybmlink: '' } }), 400, 'InvalidArgument', 'BOS: unknown parameter');

  // A client that disconnects mid-upload is one quiet log line, no error, no stack.
  const before = logLines.length;
  const up = await rawConnect(t, h.url);
  up.socket.write(`PUT ${base}/gone.bin?access_token=${h.admin} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n`);
  up.socket.write(Buffer.alloc(100_000));
  await new Promise((r) => setTimeout(r, 300));
  up.socket.destroy();
  for (let i = 0; i < 50 && !logLines.slice(before).some((l) => /client closed|aborted|completed/.test(l)); i++) await new Promise((r) => setTimeout(r, 50));
  const after = logLines.slice(before).map((l) => JSON.parse(l) as { level: number; err?: { stack?: string } });
  t.notOk(after.some((l) => l.level >= 50), 'no error-level line for a client that went away');
  t.notOk(after.some((l) => l.err?.stack), 'no stack trace');
});

// ---------------------------------------------------------------------------------------------

t.test('issue 9 item 10: BOS DeleteObject is one store call (no stat-then-remove race)', async (t) => {
  const calls: string[] = [];
  const wrap = (lib: Library): HttpLibrary =>
    new Proxy(lib, {
      get(target, prop, receiver) {
        if (prop !== 'space') return Reflect.get(target, prop, receiver);
        return (name: string) => {
          const space = target.space(name);
          return new Proxy(space, {
            get(s, p, r) {
              const v = Reflect.get(s, p, r);
              return typeof v === 'function' ? (...args: unknown[]) => (calls.push(String(p)), (v as (...a: unknown[]) => unknown).apply(s, args)) : v;
            },
          });
        };
      },
    }) as unknown as HttpLibrary;
  const h = await startHarness(t, { wrap });
  await h.bos.putObjectFromString(B, 'dir/f.txt', 'F');
  await h.bos.putSymlink(B, 'dir/l', 'dir/f.txt');
  await h.bos.putObject(B, 'empty/', Buffer.alloc(0));
  for (const key of ['dir/l', 'dir/f.txt', 'empty/']) {
    calls.length = 0;
    await h.bos.deleteObject(B, key);
    t.same(calls, ['remove'], `DeleteObject ${key}: one store call`);
  }
  t.same(
    h.lib.space('-').trashList().map((i) => i.originalPath).sort(),
    ['dir/f.txt', 'dir/l'],
    'the file and the link went to the bin (T1); the empty directory was removed',
  );
  const missing = await sdkError(h.bos.deleteObject(B, 'no/such/key'));
  t.equal(missing.status, 404, 'a missing key');
  await h.bos.putObjectFromString(B, 'full/x', 'x');
  const full = await sdkError(h.bos.deleteObject(B, 'full'));
  t.equal(full.status, 409, 'a non-empty directory key is refused');
});
