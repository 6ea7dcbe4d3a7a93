/**
 * `smhfs serve`: one Fastify server with both dialects over one library (SPEC section 8).
 *   /api/v1/…            SMH (./smh.ts)
 *   /v1/{bucket}/{key}   BOS (./bos.ts), also /{bucket}/{key} as the Node SDK sends it
 * Asynchronous purge tasks (L15) are run in the background by `lib.runTasks()`.
 */
import Fastify from 'fastify';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { BosCredentials } from './bos-auth.js';
import { bosRoutes } from './bos.js';
import { sendBosError, sendSmhError, wire } from './errors.js';
import { parseListen } from './listen.js';
import { smhRoutes } from './smh.js';
import type { HttpLibrary } from './store-port.js';

export interface ServerOptions {
  lib: HttpLibrary;
  /** `host:port` (`[::1]:8080` for IPv6); port 0 picks a free one. Default 127.0.0.1:8080. */
  listen?: string;
  /** BOS access key pair; without it every BOS request is refused (403 AccessDenied). */
  bos?: BosCredentials | undefined;
  /** Fastify logger option (default: off). */
  logger?: FastifyServerOptions['logger'];
  /** How often to look for purge tasks queued by other processes (ms, default 5000; 0 = never). */
  taskPollMs?: number;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export { parseListen };

/** Runs `lib.runTasks()` whenever asked, never twice at once, and on a slow timer. */
class TaskRunner {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

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
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          // A plain read first: runTasks() claims in an IMMEDIATE (write-locking) transaction,
          // which a poll with nothing to do should not take.
          const pending = (await this.lib.tasks()).some((t) => t.state === 'queued' || t.state === 'running');
          if (pending) await this.lib.runTasks();
        } catch (err) {
          this.log.error({ err }, 'background task run failed');
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:8080');
  const app = Fastify({
    logger: opts.logger ?? false,
    exposeHeadRoutes: false,
    bodyLimit: 1 << 20, // JSON bodies; uploads are streamed and not subject to it
    routerOptions: { maxParamLength: 1 << 16, ignoreDuplicateSlashes: false },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  const tasks = new TaskRunner(opts.lib, app.log, opts.taskPollMs ?? 5000);

  await app.register(smhRoutes, { prefix: '/api/v1', lib: opts.lib, onTaskQueued: () => tasks.kick() });
  await app.register(bosRoutes, { lib: opts.lib, credentials: opts.bos });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if (path.startsWith('/api/')) return sendSmhError(req, reply, wire('SmhRouteNotFound', `no SMH API at ${req.method} ${path}`));
    if (path.split('/').filter(Boolean).length > 0) return sendBosError(req, reply, wire('MethodNotAllowed', `${req.method} is not supported on ${path}`));
    return sendBosError(req, reply, wire('BosRouteNotFound', `no API at ${req.method} ${path}`));
  });
  app.setErrorHandler((err, req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    return path.startsWith('/api/') ? sendSmhError(req, reply, err) : sendBosError(req, reply, err);
  });

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
