/**
 * A wrapper that makes any blob store misbehave on demand: added latency, thrown errors, and
 * truncated read bodies. Truncation deliberately breaks the BlobStore contract (a short buffer
 * presented as success) because that is what a flaky network or a buggy S3 gateway can do; the
 * page cache must catch it by checking lengths (B4). Faults are random (seeded, so a failing run
 * can be replayed) or scripted with `failNext`/`truncateNext`, which is what tests want.
 * With every fault off it is a transparent pass-through, and it runs the blob contract suite so.
 */
import type { Readable } from 'node:stream';
import { SmhError } from '../errors.js';
import type { BlobInfo, BlobStore } from './types.js';

export type BlobOp = 'putFile' | 'putStream' | 'getRange' | 'head' | 'delete' | 'list';

export interface FaultOptions {
  /** Delay added before every operation. */
  latencyMs?: number;
  /** Probability (0..1) that an operation listed in `failOps` throws. */
  failRate?: number;
  /** Probability (0..1) that a getRange returns only part of its bytes. */
  truncateRate?: number;
  /** Operations `failRate` applies to; default only `getRange`. */
  failOps?: BlobOp[];
  /** Seed for the fault PRNG (default 1), so random faults replay identically. */
  seed?: number;
}

export interface FaultStats {
  calls: Record<BlobOp, number>;
  injectedFailures: number;
  injectedTruncations: number;
}

export class FaultInjectingStore implements BlobStore {
  readonly inner: BlobStore;
  readonly description: string;
  readonly stats: FaultStats = {
    calls: { putFile: 0, putStream: 0, getRange: 0, head: 0, delete: 0, list: 0 },
    injectedFailures: 0,
    injectedTruncations: 0,
  };
  #opts: Required<Omit<FaultOptions, 'seed'>>;
  #rand: () => number;
  #failNext: { n: number; ops: Set<BlobOp> } = { n: 0, ops: new Set() };
  #truncateNext = 0;

  constructor(inner: BlobStore, options: FaultOptions = {}) {
    this.inner = inner;
    this.description = `faults(${inner.description})`;
    this.#opts = { latencyMs: 0, failRate: 0, truncateRate: 0, failOps: ['getRange'] };
    this.#rand = mulberry32(options.seed ?? 1);
    this.configure(options);
  }

  /** Change fault settings at run time (unspecified fields keep their value). */
  configure(options: FaultOptions): void {
    const { seed, ...rest } = options;
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) (this.#opts as Record<string, unknown>)[k] = v;
    if (seed !== undefined) this.#rand = mulberry32(seed);
  }

  /** The next `n` calls of `ops` (default: getRange) throw. */
  failNext(n: number, ops: BlobOp[] = ['getRange']): void {
    this.#failNext = { n, ops: new Set(ops) };
  }

  /** The next `n` non-empty getRange results are cut short. */
  truncateNext(n: number): void {
    this.#truncateNext = n;
  }

  /** Turn every fault off. */
  reset(): void {
    this.#opts = { latencyMs: 0, failRate: 0, truncateRate: 0, failOps: ['getRange'] };
    this.#failNext = { n: 0, ops: new Set() };
    this.#truncateNext = 0;
  }

  async #before(op: BlobOp, key?: string): Promise<void> {
    this.stats.calls[op]++;
    if (this.#opts.latencyMs > 0) await new Promise((r) => setTimeout(r, this.#opts.latencyMs));
    let fail = false;
    if (this.#failNext.n > 0 && this.#failNext.ops.has(op)) {
      this.#failNext.n--;
      fail = true;
    } else if (this.#opts.failRate > 0 && this.#opts.failOps.includes(op) && this.#rand() < this.#opts.failRate) {
      fail = true;
    }
    if (fail) {
      this.stats.injectedFailures++;
      throw new SmhError('BlobUnavailable', `injected fault in ${op}`, key);
    }
  }

  async putFile(key: string, path: string, size: number, onProgress?: (storedBytes: number) => void): Promise<void> {
    await this.#before('putFile', key);
    return this.inner.putFile(key, path, size, onProgress);
  }

  async putStream(body: Readable | Buffer): Promise<BlobInfo> {
    await this.#before('putStream');
    return this.inner.putStream(body);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    await this.#before('getRange', key);
    const buf = await this.inner.getRange(key, offset, length);
    if (buf.length === 0) return buf;
    let truncate = false;
    if (this.#truncateNext > 0) {
      this.#truncateNext--;
      truncate = true;
    } else if (this.#opts.truncateRate > 0 && this.#rand() < this.#opts.truncateRate) {
      truncate = true;
    }
    if (!truncate) return buf;
    this.stats.injectedTruncations++;
    // Cut to half: a short body that looks like success, exactly the lie B4 forbids serving.
    return buf.subarray(0, Math.floor(buf.length / 2));
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    await this.#before('head', key);
    return this.inner.head(key);
  }

  async delete(key: string): Promise<void> {
    await this.#before('delete', key);
    return this.inner.delete(key);
  }

  async *list(): AsyncIterable<BlobInfo> {
    await this.#before('list');
    yield* this.inner.list();
  }

  async readMarker(): Promise<string | undefined> {
    return this.inner.readMarker?.();
  }

  async createMarker(text: string): Promise<boolean> {
    if (!this.inner.createMarker) throw new SmhError('NotSupported', `${this.inner.description} keeps no owner marker`);
    return this.inner.createMarker(text);
  }

  async isEmpty(): Promise<boolean> {
    if (!this.inner.isEmpty) throw new SmhError('NotSupported', `${this.inner.description} cannot tell whether it is empty`);
    return this.inner.isEmpty();
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

/** A tiny seeded PRNG (mulberry32): deterministic fault sequences without a dependency. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
