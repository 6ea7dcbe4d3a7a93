/**
 * `smhfs serve`: one Fastify server with both dialects over one library (SPEC section 8).
 *   /api/v1/…            SMH (./smh.ts)
 *   /v1/{bucket}/{key}   BOS (./bos.ts), also /{bucket}/{key} as the Node SDK sends it
 * Asynchronous purge tasks (L15) run on the store's one scheduler, kicked when a request queues one.
 *
 * Connection limits (`ServerLimits`, documented in the README): the header section must arrive
 * within `headersTimeoutMs`, a whole request within `requestTimeoutMs`, a connection silent for
 * `idleTimeoutMs` (slow body, idle client) is closed, at most `maxConnections` are open at once
 * (more are refused at accept), headers are at most `maxHeaderBytes`. A request refused before its
 * body was read (authentication, a bad destination) is answered and its connection closed
 * without reading the body. Errors from the HTTP parser and from URL decoding leave in the
 * dialects' error shapes (./errors.ts); the log never holds a secret (./redact.ts).
 */
import type { Writable } from 'node:stream';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AddressInfo, Socket } from 'node:net';
import type { BosCredentials } from './bos-auth.js';
import { bosRoutes } from './bos.js';
import { clientErrorResponse, sendBosError, sendSmhError, wire } from './errors.js';
import { logSerializers } from './redact.js';
import { parseListen } from './listen.js';
import { smhRoutes } from './smh.js';
import type { HttpLibrary } from './store-port.js';
import { ContentReader } from '../vfs/reader.js';

export interface ServerOptions {
  lib: HttpLibrary;
  /** The one read path (it owns the page cache); default: one of its own over `lib`. */
  reader?: ContentReader;
  /** `host:port` (`[::1]:8080` for IPv6); port 0 picks a free one. Default 127.0.0.1:8080. */
  listen?: string;
  /** BOS access key pair; without it every BOS request is refused (403 AccessDenied). */
  bos?: BosCredentials | undefined;
  /** Log requests and failures as JSON lines (secrets redacted): true = stdout, or a stream. */
  logger?: boolean | { stream: Writable; level?: string };
  /** How often to look for purge tasks queued by other processes (ms, default 5000; 0 = never). */
  taskPollMs?: number;
  /** Connection limits; each defaults to DEFAULT_LIMITS. */
  limits?: Partial<ServerLimits>;
}

export interface ServerLimits {
  /** The whole header section must arrive within this (slow-header clients). */
  headersTimeoutMs: number;
  /** A whole request, body included, must arrive within this. */
  requestTimeoutMs: number;
  /** A connection with no traffic either way for this long is closed (slow bodies, idle clients). */
  idleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Connections open at once; further ones are closed at accept. */
  maxConnections: number;
  /** Size of the request line and headers together. */
  maxHeaderBytes: number;
  /**
   * The most items one copy request may create: a copy is one transaction, and while it runs no
   * other request is answered (10,000 items: ~0.4 s on the 2-core test machine).
   */
  maxCopyNodes: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 3_600_000,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 256,
  maxHeaderBytes: 16 * 1024,
  maxCopyNodes: 10_000,
};

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export { parseListen };

/**
 * When the server looks for purge tasks (L15): after a request queued one, and on a slow timer
 * for tasks other processes queued. Running them is the store's one scheduler (`lib.kickTasks`:
 * never twice at once, again after a kick during a run); this only decides when.
 */
class TaskTrigger {
  private last: Promise<void> | undefined;
  private stopped = false;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly lib: HttpLibrary,
    private readonly log: FastifyInstance['log'],
    pollMs: number,
  ) {
    if (pollMs > 0) {
      this.timer = setInterval(() => this.kick(), pollMs);
      this.timer.unref();
    }
  }

  kick(): void {
    if (this.stopped) return;
    this.last = this.lib.kickTasks((err) => this.log.error({ err }, 'background task run failed'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.last;
  }
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:8080');
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const logger =
    opts.logger === undefined || opts.logger === false
      ? false
      : { level: opts.logger === true ? 'info' : (opts.logger.level ?? 'info'), serializers: logSerializers, ...(opts.logger === true ? {} : { stream: opts.logger.stream }) };
  const dialectError = (err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const path = req.url.split('?')[0] ?? '';
    return path.startsWith('/api/') ? sendSmhError(req, reply, err) : sendBosError(req, reply, err);
  };
  const app = Fastify({
    logger,
    exposeHeadRoutes: false,
    bodyLimit: 1 << 20, // JSON bodies; uploads are streamed and not subject to it
    routerOptions: { maxParamLength: 1 << 16, ignoreDuplicateSlashes: false },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    http: {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // Node checks the header and request deadlines on this period: keep it below them.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // A URL that does not decode (invalid UTF-8, a bad %) or a path over the router's limit: the
    // dialect's error, never Fastify's (which echoes the URL, token included).
    frameworkErrors: dialectError,
    // Name what was wrong (an unknown parameter, a bad value) — ajv's defaults do not.
    schemaErrorFormatter: (errors, dataVar) =>
      new Error(
        errors
          .map((e) => {
            const extra = (e.params as { additionalProperty?: string; allowedValues?: unknown[] }) ?? {};
            const name = extra.additionalProperty !== undefined ? ` ${JSON.stringify(extra.additionalProperty.slice(0, 64))}` : '';
            const allowed = extra.allowedValues ? ` (one of ${extra.allowedValues.join(', ')})` : '';
            return `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}${name}${allowed}`;
          })
          .join('; '),
      ),
    clientErrorHandler(err: Error, socket: Socket) {
      const e = err as NodeJS.ErrnoException & { rawPacket?: Buffer };
      if (e.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(clientErrorResponse(e));
      socket.destroy();
    },
  });
  app.server.maxConnections = limits.maxConnections;
  const tasks = new TaskTrigger(opts.lib, app.log, opts.taskPollMs ?? 5000);

  const reader = opts.reader ?? new ContentReader(opts.lib);
  await app.register(smhRoutes, { prefix: '/api/v1', lib: opts.lib, reader, onTaskQueued: () => tasks.kick(), maxCopyNodes: limits.maxCopyNodes });
  await app.register(bosRoutes, { lib: opts.lib, reader, credentials: opts.bos });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if (path.startsWith('/api/')) return sendSmhError(req, reply, wire('SmhRouteNotFound', `no SMH API at ${req.method} ${path}`));
    if (path.split('/').filter(Boolean).length > 0) return sendBosError(req, reply, wire('MethodNotAllowed', `${req.method} is not supported on ${path}`));
    return sendBosError(req, reply, wire('BosRouteNotFound', `no API at ${req.method} ${path}`));
  });
  app.setErrorHandler(dialectError);

  await app.listen({ host, port });
  const addr = app.server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  tasks.kick(); // tasks left queued or interrupted by an earlier run
  let closed: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${addr.port}`,
    app,
    close: () =>
      (closed ??= (async () => {
        await app.close();
        await tasks.stop();
      })()),
  };
}
