/**
 * Issue 17, the resource findings: F2 (one DELETE must not freeze the server), F7 (connection
 * limits: slow headers, slow bodies, idle connections, a connection cap, no 1 GiB read after a
 * refusal) and F8 (a bad destination is refused before the body is read). Raw TCP clients
 * (test/helpers/raw-socket.ts) see what the server reads and when it closes a connection.
 *
 * Times here are budgets far from both sides (a limit of 1 s checked within 8 s; a request that
 * used to wait 11 s checked against 3 s), so load cannot make them flaky; what is measured
 * precisely is bytes, not time.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_BOUND_LINKS } from '../src/store/space.js';
import { encPath, expectError, startHarness, unchanged, upload, type Harness } from './helpers/http.js';
import { blobOf } from './helpers/store.js';
import { bodyOf, pushBody, rawConnect, statusOf } from './helpers/raw-socket.js';

const B = '-';
/** A limit is said to hold when the server acted within this (the limits below are 1–1.5 s). */
const SLACK_MS = 8000;

const LIMITS = { headersTimeoutMs: 1000, idleTimeoutMs: 3000, requestTimeoutMs: 20_000, keepAliveTimeoutMs: 1000, maxConnections: 16 };

/** When `closed` resolved (ms since connect), or -1 when it had not within SLACK_MS (no timer left behind). */
async function within(closed: Promise<number>): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([closed, new Promise<number>((r) => (timer = setTimeout(() => r(-1), SLACK_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Nothing staged: no upload body was kept. */
function stagedFiles(h: Harness): string[] {
  const base = join(h.dir, 'staging');
  return readdirSync(base).flatMap((d) => readdirSync(join(base, d)));
}

// ---------------------------------------------------------------------------------------------

t.test('F2: a 2,048-link DELETE does not stall a concurrent request beyond a small budget', async (t) => {
  const h = await startHarness(t);
  const space = h.lib.space('-');
  // As in the issue: copies doubled a directory holding a bound link `l` to 2,048 same-named links.
  await upload(h, 'photo.jpg', 'jpeg bytes');
  await upload(h, 'other.txt', 'other');
  space.mkdir('d', {});
  space.createLink('d/l', 'photo.jpg', {});
  for (let i = 0; i < 11; i++) {
    const r = await h.smh('PUT', 'directory', 'copy', { json: { copyFrom: 'd' } });
    t.equal(r.status, 200, `copy ${i}`);
    t.equal((await h.smh('PUT', 'directory', `d/c${i}`, { json: { from: 'copy' } })).status, 200, `move ${i}`);
  }
  t.equal((h.lib.db.prepare("SELECT count(*) AS n FROM nodes WHERE link_flavour = 'bound'").get() as { n: number }).n, 2048, '2,048 links to photo.jpg');

  const deleter = h.token(['delete_file']);
  const started = Date.now();
  const del = h.smh('DELETE', 'file', 'photo.jpg', { token: deleter });
  // A request that arrives while the delete runs waits for it (one thread): time that wait.
  const others = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const t0 = Date.now();
      const r = await h.smh('GET', 'file', 'other.txt');
      return { status: r.status, ms: Date.now() - t0 };
    }),
  );
  const d = await del;
  t.equal(d.status, 200, 'the delete succeeded');
  const item = space.trashList().find((i) => i.id === d.json.recycledItemId);
  t.equal(item?.links.length, 2048, 'with its 2,048 links (L12)');
  const worst = Math.max(...others.map((o) => o.ms));
  t.ok(others.every((o) => o.status === 200), 'the concurrent requests were answered');
  t.ok(worst < 3000, `a concurrent request waited ${worst} ms (budget 3,000 ms; the delete took ${Date.now() - started} ms)`);
});

t.test('F2: the request budget — a file has at most 10,000 bound links, a copy over HTTP at most maxCopyNodes items', async (t) => {
  const h = await startHarness(t, { limits: { maxCopyNodes: 100 } });
  const space = h.lib.space('-');
  await upload(h, 'p.jpg', 'p');
  h.lib.transaction(() => {
    space.mkdir('links', {});
    for (let i = 0; i < MAX_BOUND_LINKS; i++) space.createLink(`links/l${i}`, 'p.jpg', { conflict: 'ask' });
  });
  const over = await unchanged(t, h, 'link 10,001', () => h.smh('PUT', 'file', 'one-more', { json: { linkTo: 'p.jpg' } }));
  expectError(t, over, 409, 'LinkLimitExceeded', `the ${MAX_BOUND_LINKS + 1}th link`);
  const copyOver = await unchanged(t, h, 'copy of a link past the limit', () => h.smh('PUT', 'file', 'copied', { json: { copyFrom: 'links/l0' } }));
  expectError(t, copyOver, 409, 'LinkLimitExceeded', 'a copy of a link past the limit');
  t.throws(() => space.symlink('mount-link', 'p.jpg', {}), { code: 'LinkLimitExceeded' }, 'the mount gets EMLINK likewise');

  h.lib.transaction(() => {
    for (let i = 0; i < 150; i++) space.mkdir(`big/e${i}`, { parents: true });
    for (let i = 0; i < 50; i++) space.mkdir(`small/e${i}`, { parents: true });
  });
  const big = await unchanged(t, h, 'copy of 151 items', () => h.smh('PUT', 'directory', 'big2', { json: { copyFrom: 'big' } }));
  expectError(t, big, 400, 'OperationTooLarge', 'a copy over the budget');
  t.match(big.json.message, /100/);
  t.equal((await h.smh('PUT', 'directory', 'small2', { json: { copyFrom: 'small' } })).status, 200, 'a copy within it');
});

// ---------------------------------------------------------------------------------------------

t.test('F7: slow headers, slow bodies and idle connections are cut off; a connection cap holds', async (t) => {
  const h = await startHarness(t, { limits: LIMITS });
  const base = `/api/v1/file/${h.libId}/-`;

  // The three cut-offs run at once (each on its own connection, each timed from its own
  // connect): waited one after another they cost their limits' sum (~5 s) of idle waiting.
  const [slowHead, idle, slowBody] = await Promise.all([rawConnect(t, h.url), rawConnect(t, h.url), rawConnect(t, h.url)]);
  slowHead.socket.write(`GET ${base}/x?access_token=${h.admin} HTTP/1.1\r\nHost: x\r\n`);
  slowBody.socket.write(`PUT ${base}/slow.bin?access_token=${h.admin} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n`);
  slowBody.socket.write(Buffer.alloc(1000));
  const [slowHeadMs, idleMs, slowBodyMs] = await Promise.all([within(slowHead.closed), within(idle.closed), within(slowBody.closed)]);

  t.ok(slowHeadMs > 0, `half-sent headers: closed after ${slowHeadMs} ms (limit ${LIMITS.headersTimeoutMs} ms)`);
  const head = slowHead.received().toString('latin1');
  t.equal(statusOf(head), 408, 'with a 408');
  // (the dialect is not known before the request line is whole: the BOS shape, which has SMH's fields too)
  t.match(JSON.parse(bodyOf(head)) as object, { code: 'RequestTimeout', message: String }, 'as JSON in the error shape');

  t.ok(idleMs > 0, `a connection that sends nothing: closed after ${idleMs} ms`);

  t.ok(slowBodyMs > 0, `a body that stops coming: closed after ${slowBodyMs} ms`);
  for (let i = 0; i < 100 && stagedFiles(h).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.same(stagedFiles(h), [], 'its staged part was discarded');
  t.throws(() => h.lib.space('-').stat('slow.bin', {}), 'nothing was committed');

  // The cap: 16 open connections; the 17th is closed at once, the others stay usable.
  const held = await Promise.all(Array.from({ length: LIMITS.maxConnections }, () => rawConnect(t, h.url)));
  const extra = await rawConnect(t, h.url);
  const extraMs = await within(extra.closed);
  t.ok(extraMs >= 0 && extraMs < LIMITS.idleTimeoutMs, `connection ${LIMITS.maxConnections + 1} refused (closed after ${extraMs} ms)`);
  held[0]!.socket.write(`GET ${base}/x?info&access_token=${h.admin} HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.equal(statusOf(await held[0]!.head()), 404, 'a held connection is still served');
  for (const c of held) c.socket.destroy();
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await h.smh('GET', 'directory', '')).status, 200, 'after they close, new connections are accepted again');
});

t.test('F7: a refused request is answered and its connection closed without reading a 1 GiB body', async (t) => {
  const h = await startHarness(t, { limits: LIMITS });
  const base = `/api/v1/file/${h.libId}/-`;
  const GiB = 1 << 30;
  const cases: Array<[string, string, number, string]> = [
    ['no token', `PUT ${base}/big.bin`, 400, 'EmptyAccessToken'],
    ['a wrong token', `PUT ${base}/big.bin?access_token=nope`, 403, 'InvalidAccessToken'],
    ['a token without upload_file', `PUT ${base}/big.bin?access_token=${h.token(['create_directory'])}`, 403, 'NoPermission'],
    ['a BOS request without a signature', `PUT /v1/${B}/big.bin`, 403, 'AccessDenied'],
  ];
  for (const [what, line, status, code] of cases) {
    const c = await rawConnect(t, h.url);
    c.socket.write(`${line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${GiB}\r\n\r\n`);
    const pushed = await pushBody(c, 512 << 20, 20_000);
    const raw = c.received().toString('latin1');
    t.equal(statusOf(raw), status, `${what}: ${status}`);
    t.match(bodyOf(raw), code, `${what}: ${code}`);
    t.equal(pushed.stoppedBy, 'server', `${what}: the server closed the connection (the client had pushed ${pushed.written >> 20} MiB)`);
    t.ok(pushed.written < 128 << 20, `${what}: the server stopped reading early (${pushed.written >> 20} MiB of 1,024 MiB accepted by the socket)`);
  }
});

// ---------------------------------------------------------------------------------------------

t.test('F8: a bad destination is refused before the body is read or stored', async (t) => {
  const h = await startHarness(t, { limits: LIMITS });
  await upload(h, 'file.txt', 'in the way');
  const base = `/api/v1/file/${h.libId}/-`;
  const tok = `access_token=${h.admin}`;
  const GiB = 1 << 30;
  const cases: Array<[string, string, number, string]> = [
    ['a missing parent', `PUT ${base}/no/such/dir/f.bin?${tok}`, 404, 'DirectoryNotFound'],
    ['a .. segment', `PUT ${base}/a/../../f.bin?${tok}`, 400, 'InvalidDestinationPath'],
    ['a 300-byte name', `PUT ${base}/${'n'.repeat(300)}?${tok}`, 400, 'FileNameLengthExceed'],
    ['ask over an existing file', `PUT ${base}/file.txt?${tok}&conflict_resolution_strategy=ask`, 409, 'SameNameDirectoryOrFileExists'],
    ['upload_file_force needed for overwrite', `PUT ${base}/file.txt?access_token=${h.token(['upload_file'])}&conflict_resolution_strategy=overwrite`, 403, 'NoPermission'],
  ];
  for (const [what, line, status, code] of cases) {
    const before = await h.dump();
    const c = await rawConnect(t, h.url);
    c.socket.write(`${line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${GiB}\r\n\r\n`);
    const pushed = await pushBody(c, 512 << 20, 20_000);
    const raw = c.received().toString('latin1');
    t.equal(statusOf(raw), status, `${what}: ${status} (${raw.slice(0, 120)})`);
    t.match(bodyOf(raw), code, `${what}: ${code}`);
    t.ok(pushed.written < 128 << 20 && pushed.stoppedBy === 'server', `${what}: refused before the body (${pushed.written >> 20} MiB accepted by the socket)`);
    t.same(await h.dump(), before, `${what}: library unchanged`);
    t.same(stagedFiles(h), [], `${what}: nothing staged`);
  }
  // BOS PutObject: a key under a file is refused before its body too.
  const r = await h.bosFetch('PUT', `/${B}/file.txt/under`, { body: 'x' });
  expectError(t, r, 409, 'InvalidObjectName', 'BOS key under a file');
  void encPath;
});
