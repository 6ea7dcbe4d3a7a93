/**
 * Hashing off the writer's thread. A blob's key (SHA-256) and ETag (MD5) must be known when a
 * written file is committed, and computing them as the writes arrive avoids a second pass over
 * the file at close. Done inline, though, MD5 alone (about 700 MB/s here) costs a 128 KiB FUSE
 * write more than the write itself. `BackgroundHasher` copies each chunk and posts it to one
 * shared worker thread, so the hashing runs on another core while the mount serves the next
 * request; `digest()` resolves once the worker has seen everything posted.
 *
 * Backpressure: `backlog` is the number of bytes posted and not yet hashed. A writer that
 * outruns the worker should `await drained()` before posting more (the mount's synchronous
 * write path hands such a write to its async path, which waits).
 */
import { Worker } from 'node:worker_threads';
import type { ContentHash } from './hash.js';
import type { HashReply, HashRequest } from './hash-worker.js';

/** Above this many unhashed bytes in flight, writers should wait (memory stays bounded). */
export const HASH_BACKLOG_LIMIT = 64 << 20;

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
  const worker = new Worker(new URL('./hash-worker.js', import.meta.url));
  const s: Shared = { worker, backlog: 0, waiting: [], digests: new Map(), failed: undefined };
  worker.on('message', (m: HashReply) => {
    if (m.op === 'progress') {
      s.backlog -= m.bytes;
      if (s.backlog < HASH_BACKLOG_LIMIT / 2) for (const w of s.waiting.splice(0)) w();
    } else {
      const d = s.digests.get(m.id);
      s.digests.delete(m.id);
      d?.resolve({ sha256: m.sha256, md5: m.md5, size: m.size });
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

/** An incremental SHA-256 + MD5 + size whose work happens on the shared hash worker. */
export class BackgroundHasher {
  readonly #id = nextId++;
  readonly #shared = pipelineWorker();
  #size = 0;
  #done = false;

  /** Hash `chunk` (copied: the caller may reuse it as soon as this returns). */
  update(chunk: Uint8Array): this {
    if (this.#done) throw new Error('BackgroundHasher.update after digest');
    if (chunk.length === 0) return this;
    const copy = new Uint8Array(chunk.length); // its own ArrayBuffer, so it can be transferred
    copy.set(chunk);
    this.#shared.backlog += copy.length;
    this.#size += copy.length;
    this.#shared.worker.postMessage({ op: 'update', id: this.#id, chunk: copy } satisfies HashRequest, [copy.buffer]);
    return this;
  }

  get size(): number {
    return this.#size;
  }

  /** True when the worker is far enough behind that the writer should wait (`drained()`). */
  get behind(): boolean {
    return this.#shared.backlog > HASH_BACKLOG_LIMIT;
  }

  /** Resolves when the backlog is back under half the limit. */
  drained(): Promise<void> {
    if (!this.behind) return Promise.resolve();
    return new Promise((res) => {
      this.#shared.waiting.push(res);
      holdWhileAwaited(this.#shared);
    });
  }

  /** The hash of everything updated so far; the hasher is finished afterwards. */
  digest(): Promise<ContentHash> {
    this.#done = true;
    const s = this.#shared;
    if (s.failed) return Promise.reject(s.failed);
    return new Promise((resolve, reject) => {
      s.digests.set(this.#id, { resolve, reject });
      holdWhileAwaited(s);
      s.worker.postMessage({ op: 'digest', id: this.#id } satisfies HashRequest);
    });
  }

  /** Forget this hash (the writes stopped being an append); frees the worker's state. */
  drop(): void {
    if (this.#done) return;
    this.#done = true;
    if (!this.#shared.failed) this.#shared.worker.postMessage({ op: 'drop', id: this.#id } satisfies HashRequest);
  }
}
