/**
 * The SMH dialect (SPEC H1, H2, L2, C1–C5, T1–T5, L15) under /api/v1. Parses, authorizes
 * (./grants.ts), calls the store and renders; every rule is the store's. Decisions are written
 * down in native-notes/http.md.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail } from '../errors.js';
import { type Authorize, type Conflict, DEFAULT_CONFLICT, type NodeInfo, type RecycleItem, type Task } from '../store/types.js';
import { httpDate, isoDate, sendContent } from './download.js';
import { sendSmhError, wire } from './errors.js';
import { authenticate, authorizer, parseGrants, requireGrant } from './grants.js';
import type { Operation } from './grants.js';
import type { ContentReader } from '../vfs/reader.js';
import { upload } from '../vfs/upload.js';
import type { HttpLibrary, HttpSpace, TokenInfo } from './store-port.js';

export interface SmhOptions {
  lib: HttpLibrary;
  /** The one read path (src/vfs/reader.ts). */
  reader: ContentReader;
  /** Called after an operation queued an asynchronous purge task (L15). */
  onTaskQueued: () => void;
  /** The most items one copy may create (the request's work budget). */
  maxCopyNodes?: number;
}

type Q = Record<string, string | undefined>;
interface P {
  lib: string;
  space: string;
  '*'?: string;
  id?: string;
  ids?: string;
}

const STRATEGY = { type: 'string', enum: ['ask', 'rename', 'overwrite'] } as const;
const COMMON_QUERY = { access_token: { type: 'string' }, user_id: { type: 'string' } } as const;
const PERMANENT = { type: 'string', enum: ['0', '1'] } as const;
const LIMIT = { type: 'string', pattern: '^[0-9]{1,7}$' } as const;
const MAX_LIMIT = 1000;

/** A querystring schema: these parameters (and the token's), nothing else (SPEC 9: unknown ones are refused). */
function query(props: Record<string, unknown> = {}, required: string[] = []): Record<string, unknown> {
  return { type: 'object', additionalProperties: false, properties: { ...COMMON_QUERY, ...props }, ...(required.length ? { required } : {}) };
}

const pathParams = {
  type: 'object',
  properties: { lib: { type: 'string', minLength: 1 }, space: { type: 'string', minLength: 1 }, '*': { type: 'string' } },
  required: ['lib', 'space'],
} as const;

/** PUT file/directory JSON command body: exactly one of linkTo / from / copyFrom, a non-empty string. */
const commandBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    linkTo: { type: 'string', minLength: 1 },
    from: { type: 'string', minLength: 1 },
    copyFrom: { type: 'string', minLength: 1 },
  },
} as const;

/**
 * Token endpoint parameters: in the query string as SMH documents them — except the library
 * secret, which a URL must never carry (URLs end up in logs, proxies, shell history): it comes in
 * the body of a POST, `application/x-www-form-urlencoded` or JSON (native-notes/http.md).
 */
const TOKEN_PARAMS = {
  library_id: { type: 'string', minLength: 1 },
  space_id: { type: 'string', minLength: 1 },
  grant: { type: 'string' },
  period: { type: 'string', pattern: '^[0-9]{1,10}$' },
  user_id: { type: 'string' },
} as const;
const tokenQuery = { type: 'object', additionalProperties: false, properties: { ...TOKEN_PARAMS, library_secret: { type: 'string' } } } as const;
const tokenBody = {
  type: 'object',
  additionalProperties: false,
  properties: { ...TOKEN_PARAMS, library_secret: { type: 'string', minLength: 1 } },
} as const;
const MAX_FORM_BYTES = 64 * 1024;

const MAX_PERIOD = 10 * 366 * 86400;

/** `a/b/c` → ['a','b','c'] ('' → []). */
export function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** Where a link points, as space-relative segments (null when it points outside the space or nowhere now). */
export function linkToSegments(info: NodeInfo): string[] | null {
  const l = info.link;
  if (!l || l.targetPath === undefined) return null;
  return segments(l.targetPath);
}

function typeOf(info: NodeInfo): 'file' | 'dir' | 'symlink' {
  return info.kind === 'dir' ? 'dir' : info.kind === 'link' ? 'symlink' : 'file';
}

function nodeJson(info: NodeInfo, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const type = typeOf(info);
  const o: Record<string, unknown> = {
    name: posix.basename('/' + info.path),
    type,
    creationTime: isoDate(info.birthtimeUs),
    modificationTime: isoDate(info.mtimeUs),
  };
  if (type === 'file') {
    o.size = String(info.kind === 'file' ? info.size : 0);
    o.eTag = info.etag ?? null;
    o.storageClass = info.storageClass;
  }
  if (type === 'symlink') o.linkTo = linkToSegments(info);
  return Object.assign(o, extra);
}

function itemJson(it: RecycleItem): Record<string, unknown> {
  return {
    id: it.id,
    recycledItemId: it.id,
    name: it.name,
    type: it.kind === 'dir' ? 'dir' : it.kind === 'link' ? 'symlink' : 'file',
    originalPath: segments(it.originalPath),
    size: String(it.size),
    removalTime: isoDate(it.removedAtUs),
    links: it.links.map((l) => segments(l.originalPath)),
  };
}

function taskJson(t: Task): Record<string, unknown> {
  return {
    id: t.id,
    type: t.kind,
    status: t.state,
    subject: segments(t.subject),
    progress: { total: t.total, done: t.done },
    error: t.error,
    creationTime: isoDate(t.createdAtUs),
    modificationTime: isoDate(t.updatedAtUs),
  };
}

function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(body));
}

function limitOf(limitStr: string | undefined): number {
  const limit = limitStr === undefined ? MAX_LIMIT : Number(limitStr);
  if (!(limit >= 1 && limit <= MAX_LIMIT)) throw fail('InvalidArgument', `limit must be between 1 and ${MAX_LIMIT}`);
  return limit;
}

/** The key a marker names (the last one of the previous page), or undefined for the first page. */
function afterOf(marker: string | undefined): string | undefined {
  if (marker === undefined || marker === '') return undefined;
  const after = Buffer.from(marker, 'base64url').toString('utf8');
  if (Buffer.from(after, 'utf8').toString('base64url') !== marker) throw fail('InvalidArgument', `bad marker ${JSON.stringify(marker)}`);
  return after;
}

const markerOf = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

function page<T>(items: T[], keyOf: (t: T) => string, marker: string | undefined, limitStr: string | undefined): { items: T[]; nextMarker?: string } {
  const limit = limitOf(limitStr);
  const after = afterOf(marker);
  const rest = after === undefined ? items : items.filter((t) => byteOrder(keyOf(t), after) > 0);
  const out = rest.slice(0, limit);
  return rest.length > limit ? { items: out, nextMarker: markerOf(keyOf(out[out.length - 1]!)) } : { items: out };
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function smhRoutes(app: FastifyInstance, opts: SmhOptions): Promise<void> {
  const { lib, reader } = opts;
  const maxNodes = opts.maxCopyNodes ?? Infinity;
  const tokens = new WeakMap<FastifyRequest, TokenInfo>();

  // JSON bodies are commands ({linkTo}|{from}|{copyFrom}); every other body is file content and
  // is handed to the handler as the raw stream (never buffered).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 1 << 20 }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(fail('InvalidArgument', `malformed JSON body: ${(e as Error).message}`), undefined);
    }
  });
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, req, reply) => sendSmhError(req, reply, err));
  app.setNotFoundHandler((req, reply) => sendSmhError(req, reply, wire('SmhRouteNotFound', `no SMH API at ${req.method} ${req.url.split('?')[0]}`)));

  /** Authenticate every library/space route before its body is parsed. */
  async function auth(req: FastifyRequest): Promise<void> {
    const p = req.params as P;
    tokens.set(req, await authenticate(req, lib, p.lib, p.space));
  }
  const tokenOfReq = (req: FastifyRequest): TokenInfo => tokens.get(req)!;
  const spaceOf = (req: FastifyRequest): HttpSpace => lib.space((req.params as P).space);
  const pathOf = (req: FastifyRequest): string => (req.params as P)['*'] ?? '';
  const grant = (req: FastifyRequest, op: Operation, conflict?: Conflict): void => requireGrant(tokenOfReq(req), op, conflict);
  /** C5: what the request asks for is checked now; what the store is about to replace, by the store's hook. */
  const allow = (req: FastifyRequest, op: Operation, conflict: Conflict): Authorize => {
    grant(req, op, conflict);
    return authorizer(tokenOfReq(req), op);
  };

  function command(req: FastifyRequest): { linkTo?: string; from?: string; copyFrom?: string } | undefined {
    const b = req.body;
    if (b === undefined || b === null) return undefined;
    if (req.mediaType === 'application/json') return b as { linkTo?: string; from?: string; copyFrom?: string };
    return undefined;
  }

  // ---------------------------------------------------------------- files
  // `/file/{lib}/{space}` (no path) is routed too, so the store reports the bad path.
  for (const fileRoute of ['/file/:lib/:space', '/file/:lib/:space/*']) {
    app.put(
      fileRoute,
      {
        onRequest: auth,
        schema: {
          params: pathParams,
          querystring: query({ conflict_resolution_strategy: STRATEGY }),
          body: { content: { 'application/json': { schema: commandBody } } },
        },
      },
      async (req, reply) => {
        const q = req.query as Q;
        const conflict = (q.conflict_resolution_strategy as Conflict | undefined) ?? DEFAULT_CONFLICT.place;
        const space = spaceOf(req);
        const path = pathOf(req);
        const cmd = command(req);
        if (req.mediaType === 'application/json' && cmd === undefined) {
          throw fail('InvalidArgument', 'a JSON body must be one of {"linkTo": …}, {"from": …} or {"copyFrom": …}; upload content with another Content-Type');
        }
        // The file endpoint moves and copies files and links; directories have their own (C5).
        if (cmd?.linkTo !== undefined) {
          const placed = await space.createLink(path, cmd.linkTo, { conflict, authorize: allow(req, 'create_symlink', conflict) });
          return json(reply, 200, { path: placed.path });
        }
        if (cmd?.from !== undefined) {
          const placed = await space.move(cmd.from, path, { conflict, kind: 'file', authorize: allow(req, 'move_file', conflict) });
          return json(reply, 200, { path: placed.path });
        }
        if (cmd?.copyFrom !== undefined) {
          const placed = await space.copy(cmd.copyFrom, path, { conflict, kind: 'file', authorize: allow(req, 'copy_file', conflict), maxNodes });
          return json(reply, 200, { path: placed.path });
        }
        // Upload: the body is the content. Grants and the destination are checked before a byte
        // of it is read (a refused upload is answered at once and its connection closed unread).
        const authorize = allow(req, 'upload_file', conflict);
        await space.checkPutFile(path, { conflict });
        const body = req.body as Readable | undefined;
        const { placed, etag } = await upload(lib, { stream: body instanceof Readable ? body : emptyStream() }, async (ref) => ({
          placed: await space.putFile(path, ref, { conflict, authorize }),
          etag: ref.etag,
        }));
        reply.header('etag', `"${etag}"`);
        return json(reply, 200, { path: placed.path });
      },
    );

    app.get(
      fileRoute,
      {
        onRequest: auth,
        schema: { params: pathParams, querystring: query({ info: { type: 'string' } }) },
      },
      async (req, reply) => {
        const q = req.query as Q;
        const space = spaceOf(req);
        const path = pathOf(req);
        if (q.info !== undefined) return json(reply, 200, await infoOf(space, path));
        const { node } = await space.resolveRead(path, 'smh'); // refuses a directory (IsADirectory)
        reply
          .header('content-type', 'application/octet-stream')
          .header('last-modified', httpDate(node.mtimeUs));
        if (node.etag) reply.header('etag', `"${node.etag}"`);
        return sendContent(reply, reader, node, req.headers.range, false);
      },
    );

    deleteRoute(fileRoute, 'file');
  }

  // ----------------------------------------------------------- directories
  for (const route of ['/directory/:lib/:space', '/directory/:lib/:space/*']) {
    app.put(
      route,
      {
        onRequest: auth,
        schema: {
          params: pathParams,
          querystring: query({ conflict_resolution_strategy: STRATEGY }),
          body: { content: { 'application/json': { schema: commandBody } } },
        },
      },
      async (req, reply) => {
        const q = req.query as Q;
        const strategy = q.conflict_resolution_strategy as Conflict | undefined;
        const space = spaceOf(req);
        const path = pathOf(req);
        const cmd = command(req);
        if (cmd?.linkTo !== undefined) throw fail('InvalidArgument', 'links are created with PUT /api/v1/file/…');
        if (hasBody(req) && req.mediaType !== 'application/json') {
          throw fail('InvalidArgument', 'a directory request takes no body, or a JSON {"from": …} / {"copyFrom": …}');
        }
        // The directory endpoint moves and copies directories only; replacing a file needs the
        // file grant (the store asks `authorize` what it is about to replace, C5).
        if (cmd?.from !== undefined) {
          const conflict = strategy ?? DEFAULT_CONFLICT.place;
          const placed = await space.move(cmd.from, path, { conflict, kind: 'dir', authorize: allow(req, 'move_directory', conflict) });
          return json(reply, 200, { path: placed.path });
        }
        if (cmd?.copyFrom !== undefined) {
          const conflict = strategy ?? DEFAULT_CONFLICT.place;
          const placed = await space.copy(cmd.copyFrom, path, { conflict, kind: 'dir', authorize: allow(req, 'copy_directory', conflict), maxNodes });
          return json(reply, 200, { path: placed.path });
        }
        const conflict = strategy ?? DEFAULT_CONFLICT.mkdir;
        const placed = await space.mkdir(path, { conflict, authorize: allow(req, 'create_directory', conflict) });
        return json(reply, 201, { path: placed.path });
      },
    );

    app.get(
      route,
      {
        onRequest: auth,
        schema: {
          params: pathParams,
          querystring: query({ info: { type: 'string' }, marker: { type: 'string' }, limit: LIMIT }),
        },
      },
      async (req, reply) => {
        const q = req.query as Q;
        const space = spaceOf(req);
        const path = pathOf(req);
        if (q.info !== undefined) return json(reply, 200, await infoOf(space, path));
        const dir = await space.stat(path, { follow: false });
        if (dir.kind !== 'dir') throw fail('NotADirectory', 'not a directory', path);
        // One store page in name order (issue 15: a page's cost does not grow with the
        // directory): the limit, one more to know whether a next page exists, and at the root
        // one more for `.trash`, which the bin's own API lists.
        const limit = limitOf(q.limit);
        const atRoot = segments(path).length === 0;
        let entries = await space.readdirPlus(dir.id, afterOf(q.marker), limit + (atRoot ? 2 : 1));
        if (atRoot) entries = entries.filter((e) => e.name !== '.trash');
        const pg = entries.length > limit ? { items: entries.slice(0, limit), nextMarker: markerOf(entries[limit - 1]!.name) } : { items: entries };
        const body: Record<string, unknown> = {
          path: segments(dir.path),
          type: 'dir',
          modificationTime: isoDate(dir.mtimeUs),
          contents: pg.items.map((e) => nodeJson(e.info)),
        };
        if (pg.nextMarker !== undefined) body.nextMarker = pg.nextMarker;
        return json(reply, 200, body);
      },
    );

    deleteRoute(route, 'dir');
  }

  // ---------------------------------------------------------- recycle bin
  const idParams = {
    type: 'object',
    properties: { lib: { type: 'string' }, space: { type: 'string' }, id: { type: 'string', pattern: '^[0-9]{1,15}$' } },
    required: ['lib', 'space', 'id'],
  } as const;

  app.get(
    '/recycled/:lib/:space',
    { onRequest: auth, schema: { params: pathParams, querystring: query({ marker: { type: 'string' }, limit: LIMIT }) } },
    async (req, reply) => {
      const q = req.query as Q;
      // One page read from the store by id (issue 15), not the whole bin; the marker stays the
      // opaque key of the last item returned, as for directory listings.
      const key = (it: RecycleItem): string => String(it.id).padStart(16, '0');
      const limit = q.limit === undefined ? MAX_LIMIT : Number(q.limit);
      const after = q.marker ? Buffer.from(q.marker, 'base64url').toString('utf8') : '0';
      const items = /^[0-9]{1,16}$/.test(after) ? await spaceOf(req).trashList({ after: Number(after), limit: Math.min(limit, MAX_LIMIT) + 1 }) : [];
      const pg = page(items, key, q.marker, q.limit);
      const body: Record<string, unknown> = { contents: pg.items.map(itemJson) };
      if (pg.nextMarker !== undefined) body.nextMarker = pg.nextMarker;
      return json(reply, 200, body);
    },
  );

  app.post(
    '/recycled/:lib/:space/:id',
    {
      onRequest: auth,
      schema: {
        params: idParams,
        querystring: query({ restore: { type: 'string' }, conflict_resolution_strategy: STRATEGY }, ['restore']),
      },
    },
    async (req, reply) => {
      const q = req.query as Q;
      const conflict = (q.conflict_resolution_strategy as Conflict | undefined) ?? DEFAULT_CONFLICT.place;
      const placed = await spaceOf(req).restore(Number((req.params as P).id), { conflict, authorize: allow(req, 'restore_recycled', conflict) });
      return json(reply, 200, { path: placed.path });
    },
  );

  app.delete(
    '/recycled/:lib/:space/:id',
    { onRequest: auth, schema: { params: idParams, querystring: query() } },
    async (req, reply) => {
      grant(req, 'delete_recycled');
      const r = await spaceOf(req).purge(Number((req.params as P).id));
      if (r.taskId !== undefined) {
        opts.onTaskQueued();
        return json(reply, 202, { taskId: r.taskId });
      }
      return reply.code(204).send();
    },
  );

  app.delete(
    '/recycled/:lib/:space',
    { onRequest: auth, schema: { params: pathParams, querystring: query() } },
    async (req, reply) => {
      grant(req, 'delete_recycled');
      const r = await spaceOf(req).emptyTrash();
      if (r.taskIds.length > 0) opts.onTaskQueued();
      return json(reply, r.taskIds.length > 0 ? 202 : 200, { purged: r.purged, taskIds: r.taskIds });
    },
  );

  // ---------------------------------------------------------------- tasks
  app.get(
    '/task/:lib/:space/:ids',
    {
      onRequest: auth,
      schema: {
        params: {
          type: 'object',
          properties: { lib: { type: 'string' }, space: { type: 'string' }, ids: { type: 'string', pattern: '^[0-9]{1,15}(,[0-9]{1,15}){0,99}$' } },
          required: ['lib', 'space', 'ids'],
        },
        querystring: query(),
      },
    },
    async (req, reply) => {
      const ids = String((req.params as P).ids).split(',').map(Number);
      const out: Array<Record<string, unknown>> = [];
      const space = (req.params as P).space;
      for (const id of ids) {
        const task = await lib.task(id);
        // a task id of another space is as unknown here as one that never existed
        if (task.space !== space) throw fail('TaskNotFound', `no task ${id} in space ${space}`, String(id));
        out.push(taskJson(task));
      }
      return json(reply, 200, out);
    },
  );

  // ---------------------------------------------------------------- token
  const tokenHandler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const q = req.query as Q;
    if (q.library_secret !== undefined) {
      throw fail('InvalidArgument', 'the library secret must not be sent in the URL; POST it in the body (library_secret=… or {"library_secret": …})');
    }
    const b = req.method === 'POST' ? await tokenParams(req) : {};
    for (const k of Object.keys(b)) if (q[k] !== undefined) throw fail('InvalidArgument', `${k} is given twice (query and body)`);
    const p: Q = { ...q, ...b };
    if (p.library_id === undefined || p.library_secret === undefined) {
      throw fail('InvalidArgument', 'library_id (query or body) and library_secret (POST body) are required');
    }
    const idOk = p.library_id === lib.libraryId;
    const secretOk = lib.checkLibrarySecret(p.library_secret);
    if (!idOk || !secretOk) throw wire('InvalidLibrary', 'library_id or library_secret is wrong');
    const spaceId = p.space_id ?? '-';
    lib.space(spaceId); // SpaceNotFound → 404
    const grants = parseGrants(p.grant);
    if (p.period !== undefined && !/^[0-9]{1,10}$/.test(p.period)) throw fail('InvalidArgument', 'period must be a number of seconds');
    const period = p.period === undefined ? 86400 : Number(p.period);
    if (!(period >= 1 && period <= MAX_PERIOD)) throw fail('InvalidArgument', `period must be between 1 and ${MAX_PERIOD} seconds`);
    const t = await lib.tokens.create({ space: spaceId, grants, periodSec: period, ...(p.user_id ? { userId: p.user_id } : {}) });
    return json(reply, 200, { accessToken: t.accessToken, expiresIn: t.expiresIn });
  };
  app.get('/token', { schema: { querystring: tokenQuery } }, tokenHandler);
  app.post('/token', { schema: { querystring: tokenQuery, body: { content: { 'application/json': { schema: tokenBody } } } } }, tokenHandler);

  /** The token endpoint's POST body: JSON (parsed and validated already) or a form. */
  async function tokenParams(req: FastifyRequest): Promise<Q> {
    if (req.mediaType === 'application/json') return (req.body ?? {}) as Q;
    if (req.mediaType !== 'application/x-www-form-urlencoded') {
      if (!(req.body instanceof Readable)) return {};
      throw fail('InvalidArgument', 'the token endpoint takes an application/x-www-form-urlencoded or application/json body');
    }
    const text = (await readSmall(req.body as Readable, MAX_FORM_BYTES)).toString('utf8');
    const out: Q = {};
    for (const [k, v] of new URLSearchParams(text)) {
      if (!(k in tokenBody.properties)) throw fail('InvalidArgument', `unknown parameter ${JSON.stringify(k.slice(0, 64))}`);
      if (out[k] !== undefined) throw fail('InvalidArgument', `${k} is given twice`);
      out[k] = v;
    }
    return out;
  }

  // --------------------------------------------------------------- helpers
  async function infoOf(space: HttpSpace, path: string): Promise<Record<string, unknown>> {
    const info = await space.stat(path, { follow: false });
    const meta = info.kind === 'dir' ? {} : await space.userMeta(info.id);
    return { path: segments(info.path), ...nodeJson(info, { metaData: meta }) };
  }

  /** DELETE of a file or a directory (each has its endpoint; a directory goes recursively). */
  function deleteRoute(url: string, kind: 'file' | 'dir'): void {
    app.delete(
      url,
      {
        onRequest: auth,
        schema: { params: pathParams, querystring: query({ permanent: PERMANENT }) },
      },
      async (req, reply) => {
        const q = req.query as Q;
        const space = spaceOf(req);
        const path = pathOf(req);
        grant(req, kind === 'dir' ? 'delete_directory' : 'delete_file');
        const r = await space.remove(path, { permanent: q.permanent === '1', recursive: kind === 'dir', kind });
        return removed(reply, r);
      },
    );
  }

  function removed(reply: FastifyReply, r: { recycledItemId?: number; taskId?: number }): FastifyReply {
    if (r.recycledItemId !== undefined) return json(reply, 200, { recycledItemId: r.recycledItemId });
    if (r.taskId !== undefined) {
      opts.onTaskQueued();
      return json(reply, 202, { taskId: r.taskId });
    }
    return reply.code(204).send();
  }
}

/** Read a small body whole; refuse one over `max` bytes. */
async function readSmall(stream: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > max) throw wire('EntityTooLarge', `the body is over ${max} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

function emptyStream(): Readable {
  return Readable.from([]);
}

/** Whether the request carries body bytes (a parser runs even for `Content-Length: 0`). */
export function hasBody(req: FastifyRequest): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
