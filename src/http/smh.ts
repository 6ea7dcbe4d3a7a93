/**
 * The SMH dialect (SPEC H1, H2, L2, C1–C5, T1–T5, L15) under /api/v1. Parses, authorizes
 * (./grants.ts), calls the store and renders; every rule is the store's. Decisions are written
 * down in native-notes/http.md.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail, isSmhError } from '../errors.js';
import type { Conflict, NodeInfo, RecycleItem, Task } from '../store/types.js';
import { httpDate, isoDate, sendContent } from './download.js';
import { sendSmhError, wire } from './errors.js';
import { HTTP_OF } from './status.js';
import { authenticate, parseGrants, requireGrant } from './grants.js';
import type { Operation } from './grants.js';
import type { HttpLibrary, HttpSpace, TokenInfo } from './store-port.js';

export interface SmhOptions {
  lib: HttpLibrary;
  /** Called after an operation queued an asynchronous purge task (L15). */
  onTaskQueued: () => void;
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

const tokenQuery = {
  type: 'object',
  required: ['library_id', 'library_secret'],
  properties: {
    library_id: { type: 'string', minLength: 1 },
    library_secret: { type: 'string', minLength: 1 },
    space_id: { type: 'string', minLength: 1 },
    grant: { type: 'string' },
    period: { type: 'string', pattern: '^[0-9]{1,10}$' },
    user_id: { type: 'string' },
  },
} as const;

const MAX_PERIOD = 10 * 366 * 86400;

/** `a/b/c` → ['a','b','c'] ('' → []). */
export function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** Where a link points, as space-relative segments (null when it points outside the space or nowhere now). */
export function linkToSegments(info: NodeInfo): string[] | null {
  const l = info.link;
  if (!l) return null;
  if (l.flavour === 'bound') return l.targetPath === undefined ? null : segments(l.targetPath);
  const stored = l.stored ?? '';
  if (l.pathBase === 'space') return segments(posix.normalize('/' + stored));
  if (stored.startsWith('/')) return null; // absolute: only the mount knows its mountpoint
  const joined = posix.normalize(posix.join('/', posix.dirname('/' + info.path), stored));
  return segments(joined);
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

function page<T>(items: T[], keyOf: (t: T) => string, marker: string | undefined, limitStr: string | undefined): { items: T[]; nextMarker?: string } {
  const limit = limitStr === undefined ? MAX_LIMIT : Number(limitStr);
  if (!(limit >= 1 && limit <= MAX_LIMIT)) throw fail('InvalidArgument', `limit must be between 1 and ${MAX_LIMIT}`);
  let after: string | undefined;
  if (marker !== undefined && marker !== '') {
    after = Buffer.from(marker, 'base64url').toString('utf8');
    if (Buffer.from(after, 'utf8').toString('base64url') !== marker) throw fail('InvalidArgument', `bad marker ${JSON.stringify(marker)}`);
  }
  const rest = after === undefined ? items : items.filter((t) => byteOrder(keyOf(t), after!) > 0);
  const out = rest.slice(0, limit);
  return rest.length > limit ? { items: out, nextMarker: Buffer.from(keyOf(out[out.length - 1]!), 'utf8').toString('base64url') } : { items: out };
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function smhRoutes(app: FastifyInstance, opts: SmhOptions): Promise<void> {
  const { lib } = opts;
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
          querystring: { type: 'object', properties: { ...COMMON_QUERY, conflict_resolution_strategy: STRATEGY } },
          body: { content: { 'application/json': { schema: commandBody } } },
        },
      },
      async (req, reply) => {
        const q = req.query as Q;
        const conflict = (q.conflict_resolution_strategy as Conflict | undefined) ?? 'rename';
        const space = spaceOf(req);
        const path = pathOf(req);
        const cmd = command(req);
        if (req.mediaType === 'application/json' && cmd === undefined) {
          throw fail('InvalidArgument', 'a JSON body must be one of {"linkTo": …}, {"from": …} or {"copyFrom": …}; upload content with another Content-Type');
        }
        if (cmd?.linkTo !== undefined) {
          grant(req, 'create_symlink', conflict);
          const placed = await space.createLink(path, cmd.linkTo, { conflict });
          return json(reply, 200, { path: placed.path });
        }
        if (cmd?.from !== undefined) {
          const src = await statSource(space, cmd.from);
          grant(req, src?.kind === 'dir' ? 'move_directory' : 'move_file', conflict);
          const placed = await space.move(cmd.from, path, { conflict });
          return json(reply, 200, { path: placed.path });
        }
        if (cmd?.copyFrom !== undefined) {
          const src = await statSource(space, cmd.copyFrom);
          grant(req, src?.kind === 'dir' ? 'copy_directory' : 'copy_file', conflict);
          const placed = await space.copy(cmd.copyFrom, path, { conflict });
          return json(reply, 200, { path: placed.path });
        }
        // Upload: the body is the content.
        grant(req, 'upload_file', conflict);
        const body = req.body as Readable | undefined;
        const ref = await lib.storeBlobFromStream(body instanceof Readable ? body : emptyStream());
        try {
          const placed = await space.putFile(path, ref, { conflict });
          reply.header('etag', `"${ref.etag}"`);
          return json(reply, 200, { path: placed.path });
        } catch (e) {
          await lib.abandonBlob(ref);
          throw e;
        }
      },
    );

    app.get(
      fileRoute,
      {
        onRequest: auth,
        schema: { params: pathParams, querystring: { type: 'object', properties: { ...COMMON_QUERY, info: { type: 'string' } } } },
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
        return sendContent(reply, lib, node, req.headers.range, false);
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
          querystring: { type: 'object', properties: { ...COMMON_QUERY, conflict_resolution_strategy: STRATEGY } },
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
        if (cmd?.from !== undefined) {
          const conflict = strategy ?? 'rename';
          grant(req, 'move_directory', conflict);
          const placed = await space.move(cmd.from, path, { conflict });
          return json(reply, 200, { path: placed.path });
        }
        if (cmd?.copyFrom !== undefined) {
          const conflict = strategy ?? 'rename';
          grant(req, 'copy_directory', conflict);
          const placed = await space.copy(cmd.copyFrom, path, { conflict });
          return json(reply, 200, { path: placed.path });
        }
        const conflict = strategy ?? 'ask'; // C4: directory create defaults to ask
        grant(req, 'create_directory', conflict);
        const placed = await space.mkdir(path, { conflict });
        return json(reply, 201, { path: placed.path });
      },
    );

    app.get(
      route,
      {
        onRequest: auth,
        schema: {
          params: pathParams,
          querystring: { type: 'object', properties: { ...COMMON_QUERY, info: { type: 'string' }, marker: { type: 'string' }, limit: LIMIT } },
        },
      },
      async (req, reply) => {
        const q = req.query as Q;
        const space = spaceOf(req);
        const path = pathOf(req);
        if (q.info !== undefined) return json(reply, 200, await infoOf(space, path));
        const dir = await space.stat(path, { follow: false });
        if (dir.kind !== 'dir') throw fail('NotADirectory', 'not a directory', path);
        let entries = await space.readdir(path);
        if (segments(path).length === 0) entries = entries.filter((e) => e.name !== '.trash'); // the bin has its own API
        entries = [...entries].sort((a, b) => byteOrder(a.name, b.name));
        const pg = page(entries, (e) => e.name, q.marker, q.limit);
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
    { onRequest: auth, schema: { params: pathParams, querystring: { type: 'object', properties: { ...COMMON_QUERY, marker: { type: 'string' }, limit: LIMIT } } } },
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
        querystring: { type: 'object', required: ['restore'], properties: { ...COMMON_QUERY, restore: { type: 'string' }, conflict_resolution_strategy: STRATEGY } },
      },
    },
    async (req, reply) => {
      const q = req.query as Q;
      const conflict = (q.conflict_resolution_strategy as Conflict | undefined) ?? 'rename';
      grant(req, 'restore_recycled');
      const placed = await spaceOf(req).restore(Number((req.params as P).id), { conflict });
      return json(reply, 200, { path: placed.path });
    },
  );

  app.delete(
    '/recycled/:lib/:space/:id',
    { onRequest: auth, schema: { params: idParams, querystring: { type: 'object', properties: COMMON_QUERY } } },
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
    { onRequest: auth, schema: { params: pathParams, querystring: { type: 'object', properties: COMMON_QUERY } } },
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
        querystring: { type: 'object', properties: COMMON_QUERY },
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
    const idOk = safeEqual(q.library_id!, lib.libraryId);
    const secretOk = safeEqual(q.library_secret!, lib.librarySecret);
    if (!idOk || !secretOk) throw wire('InvalidLibrary', 'library_id or library_secret is wrong');
    const spaceId = q.space_id ?? '-';
    lib.space(spaceId); // SpaceNotFound → 404
    const grants = parseGrants(q.grant);
    const period = q.period === undefined ? 86400 : Number(q.period);
    if (!(period >= 1 && period <= MAX_PERIOD)) throw fail('InvalidArgument', `period must be between 1 and ${MAX_PERIOD} seconds`);
    const t = await lib.createToken({ space: spaceId, grants, periodSec: period, ...(q.user_id ? { userId: q.user_id } : {}) });
    return json(reply, 200, { accessToken: t.accessToken, expiresIn: t.expiresIn });
  };
  app.get('/token', { schema: { querystring: tokenQuery } }, tokenHandler);
  app.post('/token', { schema: { querystring: tokenQuery } }, tokenHandler);

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
        schema: { params: pathParams, querystring: { type: 'object', properties: { ...COMMON_QUERY, permanent: PERMANENT } } },
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

/** Stat a move/copy source to pick the grant; a missing source is the store's error to report. */
async function statSource(space: HttpSpace, from: string): Promise<NodeInfo | undefined> {
  try {
    return await space.stat(from, { follow: false });
  } catch (e) {
    // The store reports a bad or missing source authoritatively when the operation runs.
    if (isSmhError(e) && HTTP_OF[e.code].status < 500) return undefined;
    throw e;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function emptyStream(): Readable {
  return Readable.from([]);
}

/** Whether the request carries body bytes (a parser runs even for `Content-Length: 0`). */
export function hasBody(req: FastifyRequest): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
