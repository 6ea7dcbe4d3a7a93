/**
 * Helpers for the HTTP dialect tests (test/http-*.test.ts): a real server on 127.0.0.1 (random
 * port) over a fresh library, real HTTP clients (fetch/undici, node:http for raw paths, the
 * official Baidu SDK), SMH tokens, bce-auth-v1 signing (the SDK's own Auth class) and a dump of
 * every table of `<library>/library.db` for "the library is unchanged" checks (SPEC section 9).
 */
import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { rmSync } from 'node:fs';
import type { Test } from 'tap';
import { ContentReader } from '../../src/vfs/reader.js';
import { Library } from '../../src/store/library.js';
import type { BlobStore } from '../../src/blob/types.js';
import { MemoryBlobStore } from './memory-store.js';
import { startServer, type RunningServer, type ServerLimits, type ServerOptions } from '../../src/http/server.js';
import type { HttpLibrary } from '../../src/http/store-port.js';
import { dumpDb, tempDir, type DbDump } from './store.js';

export { dumpDb, md5, sha256 } from './store.js';

const require = createRequire(import.meta.url);

/* eslint-disable @typescript-eslint/no-explicit-any */
export type AnyClient = any;

/** The official SDK's BosClient class (CommonJS, untyped). */
export const BosClient: new (config: Record<string, unknown>) => AnyClient = require('@baiducloud/sdk').BosClient;
/** The SDK's signer (src/auth.js): what `BosClient` uses for every request. */
const SdkAuth: new (ak: string, sk: string) => {
  generateAuthorization(
    method: string,
    resource: string,
    params: Record<string, string>,
    headers: Record<string, string>,
    timestamp?: number,
    expirationInSeconds?: number,
    headersToSign?: string[],
  ): string;
} = require('@baiducloud/sdk/src/auth.js');

export const AK = 'test-access-key';
export const SK = 'test-secret-key-0123456789';

export interface Res {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: Buffer;
  /** Parsed JSON body (undefined when the body is not JSON). */
  json: any;
}

export interface SmhRequest {
  query?: Record<string, string | number | undefined>;
  /** Token: sent as `access_token` (default) or `Authorization: Bearer` with `bearer: true`; `null` = none. */
  token?: string | null;
  bearer?: boolean;
  /** JSON body (sent as application/json). */
  json?: unknown;
  /** Raw body (sent as application/octet-stream unless `headers` says otherwise). */
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export interface Harness {
  dir: string;
  lib: Library;
  /** The server's read path (its page cache): tests clear it to make the next read fetch. */
  reader: ContentReader;
  url: string;
  libId: string;
  server: RunningServer;
  /** A token with `admin` for space `-`. */
  admin: string;
  token(grants: string[], opts?: { space?: string; periodSec?: number }): string;
  /** Any HTTP request with fetch. */
  fetch(method: string, pathAndQuery: string, init?: { headers?: Record<string, string>; body?: string | Buffer }): Promise<Res>;
  /** SMH request: `api` is `file/<path>`, `directory/<path>`, `recycled`, `task/1`… relative to `/api/v1/{api-kind}/{lib}/{space}`. */
  smh(method: string, kind: 'file' | 'directory' | 'recycled' | 'task', rest: string, req?: SmhRequest, space?: string): Promise<Res>;
  /** A request with a bce-auth-v1 signature (SDK signer), `path` as sent (already encoded). */
  bosFetch(
    method: string,
    path: string,
    opts?: {
      query?: Record<string, string>;
      headers?: Record<string, string>;
      body?: string | Buffer;
      timestamp?: number;
      expiration?: number;
      sk?: string;
      ak?: string;
      headersToSign?: string[];
    },
  ): Promise<Res>;
  /** node:http with the path sent byte for byte (no URL normalisation of `..`). */
  raw(method: string, path: string, headers?: Record<string, string>, body?: string | Buffer): Promise<Res>;
  /** The official SDK client, path-style on this server. */
  bos: AnyClient;
  /** Wait for background work, then dump every table. */
  dump(): Promise<DbDump>;
}

function toRes(status: number, headers: Record<string, string>, body: Buffer): Res {
  const text = body.toString('utf8');
  let json: unknown;
  if ((headers['content-type'] ?? '').includes('json') && text !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status, headers, text, body, json };
}

export async function doFetch(url: string, method: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Res> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === 'string' ? body : new Uint8Array(body);
  const r = await fetch(url, init);
  const buf = Buffer.from(await r.arrayBuffer());
  const h: Record<string, string> = {};
  r.headers.forEach((v, k) => (h[k] = v));
  return toRes(r.status, h, buf);
}

export function rawRequest(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Res> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: Number(u.port), method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : v;
        resolve(toRes(res.statusCode ?? 0, h, Buffer.concat(parts)));
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * Sign with the SDK's own signer, as BosClient does: canonical headers are host, content-md5,
 * content-length and content-type when in `headers`, and every x-bce-* header (`headersToSign`
 * replaces the first four).
 */
export function signBce(
  method: string,
  path: string,
  query: Record<string, string>,
  headers: Record<string, string>,
  opts: { ak?: string; sk?: string; timestamp?: number; expiration?: number; headersToSign?: string[] } = {},
): string {
  const auth = new SdkAuth(opts.ak ?? AK, opts.sk ?? SK);
  return auth.generateAuthorization(method, path, query, headers, opts.timestamp, opts.expiration, opts.headersToSign);
}

export function queryString(q: Record<string, string | number | undefined> | undefined): string {
  if (!q) return '';
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (v === '' ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`));
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Encode a space-relative path for a URL, segment by segment. */
export function encPath(p: string): string {
  return p
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

export async function startHarness(
  t: Test,
  opts: { blobStore?: BlobStore; bos?: boolean; dir?: string; limits?: Partial<ServerLimits>; logger?: ServerOptions['logger']; wrap?: (lib: Library) => HttpLibrary } = {},
): Promise<Harness> {
  const dir = opts.dir ?? tempDir('smhfs-http-');
  const lib = Library.open(dir, { create: true, ...(opts.blobStore === undefined ? { blobStore: new MemoryBlobStore() } : { blobStore: opts.blobStore }) });
  const reader = new ContentReader(lib);
  const server = await startServer({
    lib: opts.wrap ? opts.wrap(lib) : lib,
    reader,
    listen: '127.0.0.1:0',
    bos: opts.bos === false ? undefined : { accessKey: AK, secretKey: SK },
    taskPollMs: 0,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
  });
  t.teardown(async () => {
    await server.close();
    await lib.idle();
    lib.close();
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  });
  const url = server.url;
  const libId = lib.libraryId;
  const token = (grants: string[], o: { space?: string; periodSec?: number } = {}): string =>
    lib.tokens.create({ space: o.space ?? '-', grants, periodSec: o.periodSec ?? 3600 }).accessToken;
  const admin = token(['admin']);
  const host = new URL(url).host;

  const h: Harness = {
    dir,
    lib,
    reader,
    url,
    libId,
    server,
    admin,
    token,
    fetch: (method, pq, init = {}) => doFetch(url + pq, method, init.headers, init.body),
    smh: (method, kind, rest, req = {}, space = '-') => {
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      const q: Record<string, string | number | undefined> = { ...(req.query ?? {}) };
      const tok = req.token === undefined ? admin : req.token;
      if (tok !== null) {
        if (req.bearer) headers['authorization'] = `Bearer ${tok}`;
        else q['access_token'] = tok;
      }
      let body: string | Buffer | undefined;
      if (req.json !== undefined) {
        body = typeof req.json === 'string' ? req.json : JSON.stringify(req.json);
        headers['content-type'] ??= 'application/json';
      } else if (req.body !== undefined) {
        body = req.body;
        headers['content-type'] ??= 'application/octet-stream';
      }
      const base = `/api/v1/${kind}/${encodeURIComponent(libId)}/${encodeURIComponent(space)}`;
      const path = rest === '' ? base : `${base}/${rest}`;
      return doFetch(url + path + queryString(q), method, headers, body);
    },
    bosFetch: (method, path, o = {}) => {
      const headers: Record<string, string> = { host, 'x-bce-date': new Date().toISOString().replace(/\.\d+Z$/, 'Z'), ...(o.headers ?? {}) };
      const query = o.query ?? {};
      headers['authorization'] = signBce(method, path, query, headers, o);
      const { host: _host, ...send } = headers;
      const qs = Object.entries(query)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join('&');
      return doFetch(url + path + (qs ? `?${qs}` : ''), method, send, o.body);
    },
    raw: (method, path, headers = {}, body) => rawRequest(url, method, path, headers, body),
    bos: new BosClient({ endpoint: url, credentials: { ak: AK, sk: SK } }),
    dump: async () => {
      await lib.idle();
      return dumpDb(dir);
    },
  };
  return h;
}

/** Run `fn`; the whole database must be the same before and after (section 9). */
export async function unchanged<T>(t: Test, h: Harness, what: string, fn: () => Promise<T>): Promise<T> {
  const before = await h.dump();
  // The dump is synchronous and can take seconds on a loaded machine; meanwhile the keep-alive
  // timeout of the client's idle connection expired in this very process without firing. Let it
  // fire, and the client see the close, before the request: otherwise the request may go out on
  // the connection the server is closing (ECONNRESET).
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setImmediate(r));
  const r = await fn();
  const after = await h.dump();
  t.same(after, before, `${what}: library unchanged`);
  return r;
}

/** Expect an error response: status, code in the JSON body, and (BOS) a requestId. */
export function expectError(t: Test, res: Res, status: number, code: string, what: string): void {
  t.equal(res.status, status, `${what}: status ${status} (got ${res.status} ${res.text.slice(0, 200)})`);
  t.equal(res.json?.code, code, `${what}: code ${code}`);
  t.type(res.json?.message, 'string', `${what}: has a message`);
}

/** An SDK call that must fail: returns {status, code} from the SDK's rejection. */
export async function sdkError(p: Promise<unknown>): Promise<{ status: number; code: string; message: string; raw: any }> {
  try {
    await p;
  } catch (e: any) {
    return { status: e.status_code ?? e[`status_code`], code: e.code, message: e.message, raw: e };
  }
  throw new Error('expected the SDK call to fail, but it succeeded');
}

/** Upload through SMH with the admin token. */
export async function upload(h: Harness, path: string, content: string | Buffer, query: Record<string, string> = {}): Promise<Res> {
  const r = await h.smh('PUT', 'file', encPath(path), { body: content, query });
  if (r.status !== 200) throw new Error(`upload ${path}: ${r.status} ${r.text}`);
  return r;
}

export async function mkdirp(h: Harness, path: string): Promise<void> {
  let cur = '';
  for (const seg of path.split('/').filter(Boolean)) {
    cur = cur ? `${cur}/${seg}` : seg;
    const r = await h.smh('PUT', 'directory', encPath(cur));
    if (r.status !== 201 && !(r.status === 409 && r.json?.code === 'SameNameDirectoryOrFileExists')) throw new Error(`mkdir ${cur}: ${r.status} ${r.text}`);
  }
}

export async function download(h: Harness, path: string): Promise<Res> {
  return h.smh('GET', 'file', encPath(path));
}
