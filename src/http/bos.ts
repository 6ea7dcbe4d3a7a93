/**
 * The BOS object dialect (SPEC H3, L3, L6, T1) with bce-auth-v1 signatures (./bos-auth.ts).
 *
 * Routes: `/v1/{bucket}/{key}` (the documented form) and `/{bucket}/{key}` (what the official
 * Node SDK 1.0.7 sends for an IP endpoint: its path-style resource has no `/v1`). A bucket is a
 * space, named by its space id (`-` for the single-tenant space). `api` cannot be a bucket in the
 * unprefixed form (that is the SMH dialect), nor `v1`.
 *
 * Header text (D5): Node hands header values over as Latin-1, one character per byte; the bytes
 * are decoded as UTF-8, as BOS does, and what is not UTF-8 is refused — never stored altered.
 * `x-bce-symlink-target` is a key, percent-encoded where it needs to be (`%` itself as `%25`), and
 * `GET ?symlink` answers it encoded the same way. Query parameters other than the ones below are
 * refused (SPEC 9): a misspelt sub-resource must not turn into a plain PUT.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { NodeInfo, StorageClass } from '../store/types.js';
import { STORAGE_CLASSES } from '../store/types.js';
import { verifyBosRequest } from './bos-auth.js';
import type { BosCredentials } from './bos-auth.js';
import { httpDate, sendContent } from './download.js';
import { bosRequestId, closeIfBodyUnread, sendBosError, sendSmhError, wire } from './errors.js';
import type { ContentReader } from '../vfs/reader.js';
import { upload } from '../vfs/upload.js';
import type { HttpLibrary, HttpSpace } from './store-port.js';

export interface BosOptions {
  lib: HttpLibrary;
  /** The one read path (src/vfs/reader.ts). */
  reader: ContentReader;
  credentials: BosCredentials | undefined;
}

interface P {
  bucket: string;
  '*'?: string;
}
type Q = Record<string, string | undefined>;

const META_PREFIX = 'x-bce-meta-';
const MAX_META_BYTES = 2048; // BOS: user metadata up to 2 KB
const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
/** Sub-resources of the object API we do not implement (answered 501 rather than misread as a plain PUT/GET). */
const UNSUPPORTED_SUBRESOURCES = ['acl', 'uploads', 'uploadId', 'partNumber', 'append', 'restore', 'fetch', 'tagging', 'objectMeta', 'rename'];
/** Every query parameter an object request may carry. */
const KNOWN_QUERY = new Set(['authorization', 'symlink', ...UNSUPPORTED_SUBRESOURCES]);

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A header value as the bytes that arrived, decoded as UTF-8; not UTF-8 → `code` (D5). */
export function headerText(raw: string, name: string, code: ErrorCode): string {
  try {
    return UTF8.decode(Buffer.from(raw, 'latin1'));
  } catch {
    throw fail(code, `the ${name} header is not valid UTF-8; send UTF-8 (percent-encoded where needed)`);
  }
}

/** `x-bce-symlink-target`: UTF-8 bytes, then percent-decoding. */
export function symlinkTarget(raw: string): string {
  const text = headerText(raw, 'x-bce-symlink-target', 'NameNotUtf8');
  if (!text.includes('%')) return text;
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) throw fail('InvalidArgument', 'x-bce-symlink-target has a stray %; encode a literal % as %25');
  try {
    return decodeURIComponent(text);
  } catch {
    throw fail('NameNotUtf8', 'x-bce-symlink-target percent-decodes to bytes that are not UTF-8');
  }
}

/** A key for a response header: percent-encoded (by segment) when it holds % or anything outside printable ASCII. */
export function keyHeader(key: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(key) ? key : key.split('/').map(encodeURIComponent).join('/');
}

const headerSchema = {
  type: 'object',
  properties: {
    'x-bce-forbid-overwrite': { type: 'string', enum: ['true', 'false'] },
    'x-bce-storage-class': { type: 'string', enum: [...STORAGE_CLASSES] },
    'x-bce-symlink-target': { type: 'string', minLength: 1 },
  },
} as const;

function metaOf(req: FastifyRequest): Record<string, string> | undefined {
  const meta: Record<string, string> = {};
  let bytes = 0;
  let any = false;
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith(META_PREFIX) || value === undefined) continue;
    const key = name.slice(META_PREFIX.length);
    if (key === '') throw fail('InvalidArgument', 'an x-bce-meta- header needs a name after the prefix');
    const v = headerText(Array.isArray(value) ? value.join(',') : value, name, 'InvalidArgument');
    bytes += Buffer.byteLength(name) + Buffer.byteLength(v);
    meta[key] = v;
    any = true;
  }
  if (bytes > MAX_META_BYTES) throw fail('InvalidArgument', `user metadata is ${bytes} bytes; at most ${MAX_META_BYTES} allowed`);
  return any ? meta : undefined;
}

/** Header-safe value: anything outside printable ASCII is percent-encoded. */
function headerValue(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : encodeURI(s);
}

function setMetaHeaders(reply: FastifyReply, meta: Record<string, string>): void {
  for (const [k, v] of Object.entries(meta)) reply.header(META_PREFIX + k.toLowerCase(), headerValue(v));
}

function keyOf(req: FastifyRequest): string {
  return (req.params as P)['*'] ?? '';
}

function hasSubresource(q: Q): string | undefined {
  const unknown = Object.keys(q).find((k) => !KNOWN_QUERY.has(k));
  if (unknown !== undefined) throw fail('InvalidArgument', `unknown query parameter ${JSON.stringify(unknown.slice(0, 64))}`);
  return UNSUPPORTED_SUBRESOURCES.find((s) => q[s] !== undefined);
}

export async function bosRoutes(app: FastifyInstance, opts: BosOptions): Promise<void> {
  const { lib, reader } = opts;

  // No body is ever parsed: PutObject streams the raw request to the blob store.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, req, reply) => sendBosError(req, reply, err));

  app.addHook('onRequest', async (req, reply) => {
    reply.header('server', 'smhfs');
    bosRequestId(reply);
  });

  const bucketSpace = (req: FastifyRequest): HttpSpace => lib.space((req.params as P).bucket);

  async function getOrHead(req: FastifyRequest, reply: FastifyReply, head: boolean): Promise<FastifyReply> {
    const q = req.query as Q;
    const sub = hasSubresource(q);
    if (sub) throw fail('NotSupported', `the ${sub} sub-resource is not supported`);
    const space = bucketSpace(req);
    const key = keyOf(req);
    if (q.symlink !== undefined) {
      const target = await space.getSymlink(key);
      reply.header('x-bce-symlink-target', keyHeader(target));
      const info = await space.stat(key, { follow: false });
      reply.header('last-modified', httpDate(info.mtimeUs)).header('x-bce-storage-class', info.storageClass);
      return reply.code(200).header('content-length', '0').send();
    }
    const { node, link } = await space.resolveRead(key, 'bos');
    if (node.kind === 'dir') throw fail('FileNotFound', 'the key names a directory, not an object', key);
    // L6: length and ETag from the target; Last-Modified the later of the two; metadata and
    // storage class from the link.
    const own: NodeInfo = link ?? node;
    const lastModified = Math.max(node.mtimeUs, link ? link.mtimeUs : 0);
    reply
      .header('content-type', 'application/octet-stream')
      .header('last-modified', httpDate(lastModified))
      .header('etag', `"${node.etag ?? EMPTY_MD5}"`)
      .header('x-bce-storage-class', own.storageClass);
    if (link) reply.header('x-bce-object-type', 'Symlink');
    setMetaHeaders(reply, await space.userMeta(own.id));
    return sendContent(reply, reader, node, req.headers.range, head);
  }

  async function put(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const q = req.query as Q;
    const sub = hasSubresource(q);
    if (sub) throw fail('NotSupported', `the ${sub} sub-resource is not supported`);
    if (req.headers['x-bce-copy-source'] !== undefined) throw fail('NotSupported', 'CopyObject is not supported');
    const space = bucketSpace(req);
    const key = keyOf(req);
    const h = req.headers as Record<string, string | undefined>;
    const forbidOverwrite = h['x-bce-forbid-overwrite'] === 'true';
    const storageClass = h['x-bce-storage-class'] as StorageClass | undefined;
    const meta = metaOf(req);

    if (q.symlink !== undefined) {
      const raw = h['x-bce-symlink-target'];
      if (raw === undefined) throw fail('InvalidArgument', 'PutSymlink needs the x-bce-symlink-target header');
      const r = await space.putSymlink(key, symlinkTarget(raw), {
        forbidOverwrite,
        ...(storageClass ? { storageClass } : {}),
        ...(meta ? { meta } : {}),
      });
      return reply.code(200).header('etag', `"${r.etag}"`).header('content-length', '0').send();
    }

    // A key ending in '/' is a directory marker (what consoles create for folders).
    if (key.endsWith('/')) {
      const len = h['content-length'];
      if (h['transfer-encoding'] !== undefined || (len !== undefined && len !== '0')) {
        throw fail('InvalidFileName', 'a key ending in "/" names a directory and cannot have content', key);
      }
      await space.mkdir(key, { parents: true }); // mkdir -p: an existing directory is fine
      return reply.code(200).header('etag', `"${EMPTY_MD5}"`).header('content-length', '0').send();
    }

    // Everything that can be checked before the body is read is checked first: a refused
    // destination costs no upload (the connection is closed unread).
    const md5 = h['content-md5'];
    if (md5 !== undefined && !/^[A-Za-z0-9+/]{22}==$/.test(md5.trim())) throw wire('InvalidDigest', 'Content-MD5 must be the base64 of 16 bytes');
    const putOpts = {
      conflict: forbidOverwrite ? ('ask' as const) : ('overwrite' as const),
      createParents: true, // BOS keys imply their directories
      ...(storageClass ? { storageClass } : {}),
      ...(meta ? { meta } : {}),
    };
    await space.checkPutFile(key, putOpts);
    const body = req.body instanceof Readable ? req.body : Readable.from([]);
    const etag = await upload(lib, { stream: body }, async (ref) => {
      if (md5 !== undefined && Buffer.from(md5.trim(), 'base64').toString('hex') !== ref.etag) {
        throw wire('BadDigest', 'the Content-MD5 you specified did not match what was received');
      }
      await space.putFile(key, ref, putOpts);
      return ref.etag;
    });
    return reply.code(200).header('etag', `"${etag}"`).header('content-length', '0').send();
  }

  async function del(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const q = req.query as Q;
    const sub = hasSubresource(q);
    if (sub) throw fail('NotSupported', `the ${sub} sub-resource is not supported`);
    // One store call (no stat-then-remove race): files and links to the bin (T1), an empty
    // directory key removed, a non-empty one refused.
    await bucketSpace(req).remove(keyOf(req), { permanent: false, rmdirEmpty: true });
    return reply.code(204).send();
  }

  const bucketOnly = async (req: FastifyRequest): Promise<never> => {
    bucketSpace(req); // NoSuchBucket first
    throw fail('NotSupported', `bucket-level ${req.method} is not supported; use object keys`);
  };

  for (const prefix of ['/v1', '']) {
    const guard = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      // `/api/...` that matched no SMH route falls through to here: answer as SMH.
      if (prefix === '' && (req.params as P).bucket === 'api') {
        await sendSmhError(req, reply, wire('SmhRouteNotFound', `no SMH API at ${req.method} ${req.url.split('?')[0]}`));
        return reply;
      }
      verifyBosRequest(req, opts.credentials);
      return undefined;
    };
    const o = { onRequest: guard, schema: { headers: headerSchema } };
    app.put(`${prefix}/:bucket/*`, o, put);
    app.get(`${prefix}/:bucket/*`, o, (req, reply) => getOrHead(req, reply, false));
    app.head(`${prefix}/:bucket/*`, o, (req, reply) => getOrHead(req, reply, true));
    app.delete(`${prefix}/:bucket/*`, o, del);
    for (const m of ['GET', 'HEAD', 'PUT', 'DELETE'] as const) app.route({ method: m, url: `${prefix}/:bucket`, onRequest: guard, handler: bucketOnly });
  }
}
