/**
 * Hashing off the writer's thread. A blob's key (SHA-256) and ETag (MD5) must be known when a
 * written file is committed, and computing them while the writes arrive avoids a second pass over
 * the file at close. Done inline, though, MD5 alone (about 700 MB/s here) costs a 128 KiB FUSE
 * write more than the write itself, and even copying each chunk to another thread costs the
 * writer a third of it. So `FileHasher` hands over nothing but extents: the writer says "the
 * file's first N bytes are written and final", and one shared worker thread reads them back from
 * the file — from the OS page cache, on another core — and hashes them. `digest()` resolves once
 * the worker has hashed everything announced.
 *
 * The caller guarantees that announced bytes never change (the mount announces only while its
 * writes are appends, and drops the hasher on any other write or truncate).
 *
 * Backpressure: `behind` says the worker is more than HASH_BACKLOG_LIMIT bytes behind; a writer
 * should then `await drained()` (the mount's synchronous write path hands such a write to its
 * async path, which waits), so a fast writer cannot leave gigabytes to hash at close.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../package-root.js';
import type { ContentHash } from './hash.js';
import type { HashReply, HashRequest } from './hash-worker.js';

/** Above this many announced, unhashed bytes, writers should wait. */
export const HASH_BACKLOG_LIMIT = 64 << 20;
/** Extents are announced in steps of at least this much (fewer messages; digest sends the rest). */
const ANNOUNCE_STEP = 1 << 20;

interface Shared {
  worker: Worker;
  backlog: number;
  waiting: Array<() => void>;
  digests: Map<number, { resolve: (h: ContentHash) => void; reject: (e: Error) => void }>;
  failed: Error | undefined;
}

let shared: Shared | undefined;
let nextId = 1;

function pipelineWorker(): Shared {
  if (shared && !shared.failed) return shared;
  // By the package root: this module may run bundled into dist/src/cli/ (src/package-root.ts).
  const worker = new Worker(join(packageRoot(import.meta.url), 'dist', 'src', 'blob', 'hash-worker.js'));
  const s: Shared = { worker, backlog: 0, waiting: [], digests: new Map(), failed: undefined };
  worker.on('message', (m: HashReply) => {
    if (m.op === 'progress') {
      s.backlog -= m.bytes;
      if (s.backlog < HASH_BACKLOG_LIMIT / 2) for (const w of s.waiting.splice(0)) w();
    } else {
      const d = s.digests.get(m.id);
      s.digests.delete(m.id);
      if (m.op === 'digest') d?.resolve({ sha256: m.sha256, md5: m.md5, size: m.size });
      else d?.reject(new Error(`hashing failed: ${m.message}`));
    }
    holdWhileAwaited(s);
  });
  const die = (e: Error): void => {
    s.failed = e;
    s.backlog = 0;
    for (const w of s.waiting.splice(0)) w();
    for (const d of s.digests.values()) d.reject(e);
    s.digests.clear();
    holdWhileAwaited(s);
  };
  worker.on('error', die);
  worker.on('exit', (code) => die(new Error(`the hash worker exited (${code})`)));
  // An idle hasher must not keep the process alive; after the listeners, which would re-ref it.
  worker.unref();
  shared = s;
  return s;
}

/**
 * The worker keeps the process alive only while somebody awaits it (a digest or a drain), so a
 * CLI command exits when it is done and an awaited digest is never cut short by an exit.
 */
function holdWhileAwaited(s: Shared): void {
  if (s.digests.size > 0 || s.waiting.length > 0) s.worker.ref();
  else s.worker.unref();
}

/** SHA-256 + MD5 + size of a file's first bytes, as they are written, hashed on the shared worker. */
export class FileHasher {
  readonly path: string;
  readonly #id = nextId++;
  readonly #shared = pipelineWorker();
  /** Bytes [0, #written) are final; [0, #announced) were sent to the worker. */
  #written = 0;
  #announced = 0;
  /** Appends started (`appendAt`) reach up to #reserved; #inFlight of them are not written yet. */
  #reserved = 0;
  #inFlight = 0;
  #done = false;

  constructor(path: string, start = 0) {
    this.path = path;
    this.#reserved = start;
    if (start > 0) this.advance(start);
  }

  /**
   * A write of `len` bytes at `pos` is about to start: true if it extends the hashed prefix (an
   * append), and the caller must call `appended()` once its bytes are in the file. Writes may
   * overlap in time (the mount serves several at once): the extent is announced only when every
   * started append is written, so the worker never reads a byte before it is there.
   */
  appendAt(pos: number, len: number): boolean {
    if (this.#done || pos !== this.#reserved) return false;
    this.#reserved += len;
    this.#inFlight++;
    return true;
  }

  appended(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && !this.#done) this.advance(this.#reserved);
  }

  /** Everything started is written, and the hash covers exactly `size` bytes. */
  covers(size: number): boolean {
    return this.#inFlight === 0 && this.#reserved === size && this.#written === size;
  }

  /** End of the appends started so far. */
  get reservedTo(): number {
    return this.#reserved;
  }

  /** The file's bytes [0, to) are written and will not change. */
  advance(to: number): this {
    if (this.#done) throw new Error('FileHasher.advance after digest');
    if (to < this.#written) throw new Error(`FileHasher.advance(${to}) goes back from ${this.#written}`);
    this.#written = to;
    if (this.#reserved < to) this.#reserved = to;
    if (this.#written - this.#announced >= ANNOUNCE_STEP) this.#announce('extent');
    return this;
  }

  /** Bytes declared final so far. */
  get size(): number {
    return this.#written;
  }

  /** True when the worker is far enough behind that the writer should wait (`drained()`). */
  get behind(): boolean {
    return this.#shared.backlog > HASH_BACKLOG_LIMIT;
  }

  /** Resolves when the backlog is back under half the limit. */
  drained(): Promise<void> {
    if (!this.behind || this.#shared.failed) return Promise.resolve();
    return new Promise((res) => {
      this.#shared.waiting.push(res);
      holdWhileAwaited(this.#shared);
    });
  }

  /** The hash of the file's first `size` bytes; the hasher is finished afterwards. */
  digest(): Promise<ContentHash> {
    this.#done = true;
    const s = this.#shared;
    if (s.failed) return Promise.reject(s.failed);
    return new Promise((resolve, reject) => {
      s.digests.set(this.#id, { resolve, reject });
      holdWhileAwaited(s);
      this.#announce('digest');
    });
  }

  /** Forget this hash (the writes stopped being an append); frees the worker's state. */
  drop(): void {
    if (this.#done) return;
    this.#done = true;
    if (!this.#shared.failed) this.#shared.worker.postMessage({ op: 'drop', id: this.#id } satisfies HashRequest);
  }

  #announce(op: 'extent' | 'digest'): void {
    const s = this.#shared;
    if (!s.failed) s.backlog += this.#written - this.#announced; // a dead worker's digest rejects
    this.#announced = this.#written;
    s.worker.postMessage({ op, id: this.#id, path: this.path, to: this.#written } satisfies HashRequest);
  }
}
