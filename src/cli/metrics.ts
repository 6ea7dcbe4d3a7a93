/**
 * `--metrics ADDR` (mount and serve): Prometheus text at `http://ADDR/metrics`, made with
 * prom-client. The numbers come from generic sources, not from one binding or store:
 *
 * - file-system requests: the adapter's per-op counters (calls, errors) and one latency
 *   observation per request (`observeOp`, fed by the adapter's op hook), so any binding whose
 *   adapter keeps the same counters feeds the same metrics;
 * - the page cache's `stats()` (hits, misses, bytes fetched, retries, errors, cached bytes, random
 *   readers' unit fetches and the unit bytes a page fetch reused instead of fetching again);
 * - blob-store requests and errors per operation, counted by a transparent wrapper around
 *   whatever store the library uses (`instrumentStore`);
 * - open files, open handles and staged (not yet committed) bytes;
 * - prom-client's process metrics (CPU, resident memory, event-loop lag, GC).
 *
 * Names follow Prometheus conventions: `smhfs_` prefix, `_total` counters, `_seconds` and
 * `_bytes` units. The server is plain node:http (the mount does not load Fastify) and answers
 * only GET /metrics (and / with a pointer to it).
 *
 * prom-client is loaded by the first `Metrics`, not when this module is imported (every command
 * imports it): with its @opentelemetry/api it is 83 modules a mount without `--metrics` has no
 * use for (~12 MiB in a bare node; at a mount's start the difference was within the noise).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import { InvalidArgumentError, Option } from 'commander';
import type { BlobStore } from '../blob/types.js';
import type { PageCacheStats } from '../blob/page-cache.js';
import type { DiskCacheStats } from '../blob/disk-cache.js';

export interface OpTotals {
  calls: number;
  errors: number;
}

export interface MetricSources {
  ops?: () => Iterable<[string, OpTotals]>;
  cache?: () => PageCacheStats | undefined;
  files?: () => { openFiles: number; openHandles: number; stagedBytes: number };
}

/** Blob-store methods that are requests to the store. */
const STORE_OPS = ['putFile', 'adoptFile', 'putStream', 'getRange', 'getRangeInto', 'getRangeIntoSync', 'openFile', 'head', 'delete', 'list'] as const;

/** The page cache's counters that are numbers (not the nested disk-cache object). */
type CacheNumber = Exclude<keyof PageCacheStats, 'disk'>;

/** `127.0.0.1:9567`, `:9567` (all interfaces), `[::1]:9567`, `localhost:0` (any free port). */
export function parseMetricsAddress(value: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!m || Number(m[3]) > 65535) throw new InvalidArgumentError(`expected HOST:PORT such as 127.0.0.1:9567 or :9567, got ${JSON.stringify(value)}.`);
  return value.trim();
}

/** `--metrics HOST:PORT` (mount and serve). */
export function metricsOption(): Option {
  return new Option('--metrics <addr>', 'serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9567, :9567; port 0 picks one)').argParser(
    parseMetricsAddress,
  );
}

function splitAddress(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr)!;
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port: Number(m[3]) };
}

let promClientModule: typeof PromClient | undefined;
/** prom-client (and the OpenTelemetry API it loads) is the CLI's heaviest import: loaded only when --metrics asks. */
const promClient = (): typeof PromClient => (promClientModule ??= createRequire(import.meta.url)('prom-client') as typeof PromClient);

export class Metrics {
  readonly registry: PromClient.Registry;
  #sources: MetricSources = {};
  readonly #opSeconds: PromClient.Histogram<'op'>;
  readonly #storeRequests: PromClient.Counter<'op'>;
  readonly #storeErrors: PromClient.Counter<'op'>;

  constructor(kind: 'mount' | 'serve') {
    const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = promClient();
    this.registry = new Registry();
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'smhfs_' });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const cacheStat = (key: CacheNumber): number => self.#sources.cache?.()?.[key] ?? 0;
    const diskStat = (key: Exclude<keyof DiskCacheStats, 'state' | 'dir'>): number => self.#sources.cache?.()?.disk?.[key] ?? 0;
    const totals = (): Array<[string, OpTotals]> => [...(self.#sources.ops?.() ?? [])];
    new Gauge({ name: 'smhfs_info', help: 'what this process serves (always 1)', labelNames: ['kind'], registers }).set({ kind }, 1);
    if (kind === 'mount') {
      new Counter({
        name: 'smhfs_fuse_requests_total',
        help: 'file-system requests answered, by operation',
        labelNames: ['op'],
        registers,
        collect() {
          this.reset();
          for (const [op, t] of totals()) this.inc({ op }, t.calls);
        },
      });
      new Counter({
        name: 'smhfs_fuse_request_errors_total',
        help: 'file-system requests answered with an error, by operation',
        labelNames: ['op'],
        registers,
        collect() {
          this.reset();
          for (const [op, t] of totals()) this.inc({ op }, t.errors);
        },
      });
    }
    this.#opSeconds = new Histogram({
      name: kind === 'mount' ? 'smhfs_fuse_request_duration_seconds' : 'smhfs_request_duration_seconds',
      help: kind === 'mount' ? 'time from a file-system request to its answer, by operation' : 'time from a request to its answer, by operation',
      labelNames: ['op'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    /** A counter that reads its running total from `get` at each scrape. */
    const counter = (name: string, help: string, get: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(get());
        },
      });
    };
    const cacheCounter = (name: string, help: string, key: CacheNumber): void => counter(name, help, () => cacheStat(key));
    cacheCounter('smhfs_cache_hits_total', 'page-cache lookups that found the page cached', 'hits');
    cacheCounter('smhfs_cache_misses_total', 'page-cache lookups that waited for a fetch', 'misses');
    cacheCounter('smhfs_cache_fetched_bytes_total', 'bytes received from the blob store into the page cache', 'bytesFetched');
    cacheCounter('smhfs_cache_prefetches_total', 'readahead page fetches started', 'prefetches');
    cacheCounter('smhfs_cache_prefetch_hits_total', 'pages a read found already prefetched', 'prefetchHits');
    cacheCounter('smhfs_blob_retries_total', 'blob reads retried after a failed or short answer', 'retries');
    cacheCounter('smhfs_blob_read_failures_total', 'page fetches that failed for good (after retries)', 'errors');
    cacheCounter('smhfs_cache_unit_fetches_total', 'small (64 KiB) fetches for random readers instead of whole pages', 'unitFetches');
    cacheCounter('smhfs_cache_unit_bytes_reused_total', 'bytes of cached small (64 KiB) units copied into a page fetched over them instead of fetched again', 'unitBytesReused');
    cacheCounter('smhfs_cache_random_streams_total', 'open files whose reads turned random', 'toRandom');
    const diskCounter = (name: string, help: string, key: Exclude<keyof DiskCacheStats, 'state' | 'dir'>): void =>
      counter(name, help, () => diskStat(key));
    diskCounter('smhfs_disk_cache_hits_total', 'pages or units read back from the on-disk cache (verified)', 'hits');
    diskCounter('smhfs_disk_cache_misses_total', 'fetches the on-disk cache did not have', 'misses');
    diskCounter('smhfs_disk_cache_read_bytes_total', 'bytes read from the on-disk cache', 'bytesRead');
    diskCounter('smhfs_disk_cache_written_bytes_total', 'bytes written to the on-disk cache', 'bytesWritten');
    diskCounter('smhfs_disk_cache_evictions_total', 'files deleted to stay within --cache-disk-size or to free a full disk', 'evictions');
    diskCounter('smhfs_disk_cache_corrupt_total', 'disk-cache reads that failed verification (never served)', 'corrupt');
    diskCounter('smhfs_disk_cache_errors_total', 'I/O errors on the cache disk', 'errors');
    diskCounter('smhfs_disk_cache_writes_dropped_total', 'pages not written to the on-disk cache (backlog full or writes paused)', 'writesDropped');
    diskCounter('smhfs_disk_cache_dropped_bytes_total', 'bytes not written to the on-disk cache (backlog full or writes paused)', 'bytesDropped');
    new Gauge({
      name: 'smhfs_disk_cache_bytes',
      help: 'bytes of on-disk cache files (headers included)',
      registers,
      collect() {
        this.set(diskStat('bytes'));
      },
    });
    new Gauge({
      name: 'smhfs_disk_cache_state',
      help: 'the on-disk cache: 1 for its current state (on, degraded: writes paused, off)',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const st = self.#sources.cache?.()?.disk?.state;
        for (const state of ['on', 'degraded', 'off']) this.set({ state }, st === state || (st === undefined && state === 'off') ? 1 : 0);
      },
    });
    new Gauge({
      name: 'smhfs_cache_bytes',
      help: 'bytes held by the page cache',
      registers,
      collect() {
        this.set(cacheStat('cachedBytes'));
      },
    });
    new Gauge({
      name: 'smhfs_cache_buffer_bytes',
      help: 'bytes of page-cache buffers: cached, in flight, lent to readers and pooled for reuse',
      registers,
      collect() {
        this.set(cacheStat('bufferBytes'));
      },
    });
    this.#storeRequests = new Counter({ name: 'smhfs_blob_requests_total', help: 'requests to the blob store, by operation', labelNames: ['op'], registers });
    this.#storeErrors = new Counter({ name: 'smhfs_blob_errors_total', help: 'blob-store requests that failed, by operation', labelNames: ['op'], registers });
    if (kind === 'mount') {
      const files = (): { openFiles: number; openHandles: number; stagedBytes: number } =>
        self.#sources.files?.() ?? { openFiles: 0, openHandles: 0, stagedBytes: 0 };
      new Gauge({ name: 'smhfs_open_files', help: 'files open through the mount', registers, collect() { this.set(files().openFiles); } });
      new Gauge({ name: 'smhfs_open_handles', help: 'open file handles (one file may have several)', registers, collect() { this.set(files().openHandles); } });
      new Gauge({ name: 'smhfs_staged_bytes', help: 'bytes written but not yet committed (waiting for close or fsync)', registers, collect() { this.set(files().stagedBytes); } });
    }
    for (const op of STORE_OPS) {
      this.#storeRequests.inc({ op }, 0);
      this.#storeErrors.inc({ op }, 0);
    }
  }

  setSources(sources: MetricSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** One answered request: its latency in seconds. */
  observeOp(op: string, seconds: number): void {
    this.#opSeconds.observe({ op }, seconds);
  }

  /**
   * The same store, counting each request and each failed one. A Proxy, so the store keeps its
   * class (instanceof), its optional methods (getRangeInto, adoptFile) and properties
   * (readRequestBytes, description).
   */
  instrumentStore<T extends BlobStore>(store: T): T {
    const requests = this.#storeRequests;
    const errors = this.#storeErrors;
    const counted = new Set<string>(STORE_OPS);
    return new Proxy(store, {
      get(target, prop, _receiver) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (typeof v !== 'function') return v;
        if (typeof prop !== 'string' || !counted.has(prop)) return (v as (...a: unknown[]) => unknown).bind(target);
        return (...args: unknown[]): unknown => {
          requests.inc({ op: prop });
          let r: unknown;
          try {
            r = (v as (...a: unknown[]) => unknown).apply(target, args);
          } catch (e) {
            errors.inc({ op: prop });
            throw e;
          }
          if (r instanceof Promise) r.catch(() => errors.inc({ op: prop }));
          return r;
        };
      },
    });
  }

  /** Serve GET /metrics at `address` (HOST:PORT; port 0 picks one). Resolves with the URL. */
  async serve(address: string): Promise<{ url: string; close: () => Promise<void> }> {
    const { host, port } = splitAddress(address);
    // node:http loads here, with --metrics only: every other command starts without it.
    const server: Server = (createRequire(import.meta.url)('node:http') as typeof import('node:http')).createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
          (e: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(e as Error).message}\n`),
        );
        return;
      }
      res.writeHead(path === '/' ? 200 : 404, { 'Content-Type': 'text/plain' }).end(path === '/' ? 'smhfs metrics: GET /metrics\n' : 'not found; GET /metrics\n');
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(port, host, () => res());
    });
    server.unref();
    const a = server.address() as AddressInfo;
    const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return {
      url: `http://${shown}:${a.port}/metrics`,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  }
}
