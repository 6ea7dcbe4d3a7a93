/**
 * The worker side of `BackgroundHasher` (hash-pipeline.ts): one thread that keeps a SHA-256 and
 * an MD5 per open hash id and answers digests in the order they were asked. Messages are tiny
 * and ordered (one port), so a digest always covers every update posted before it.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export type HashRequest =
  | { op: 'update'; id: number; chunk: Uint8Array }
  | { op: 'digest'; id: number }
  | { op: 'drop'; id: number };

export type HashReply =
  | { op: 'digest'; id: number; sha256: string; md5: string; size: number }
  /** bytes hashed since the last progress reply (backpressure for the poster) */
  | { op: 'progress'; bytes: number };

const PROGRESS_EVERY = 4 << 20;

if (parentPort) {
  const port = parentPort;
  const open = new Map<number, { sha: Hash; md5: Hash; size: number }>();
  let unreported = 0;
  port.on('message', (m: HashRequest) => {
    if (m.op === 'update') {
      let h = open.get(m.id);
      if (!h) open.set(m.id, (h = { sha: createHash('sha256'), md5: createHash('md5'), size: 0 }));
      h.sha.update(m.chunk);
      h.md5.update(m.chunk);
      h.size += m.chunk.length;
      unreported += m.chunk.length;
      if (unreported >= PROGRESS_EVERY) {
        port.postMessage({ op: 'progress', bytes: unreported } satisfies HashReply);
        unreported = 0;
      }
    } else if (m.op === 'digest') {
      const h = open.get(m.id) ?? { sha: createHash('sha256'), md5: createHash('md5'), size: 0 };
      open.delete(m.id);
      if (unreported > 0) port.postMessage({ op: 'progress', bytes: unreported } satisfies HashReply);
      unreported = 0;
      port.postMessage({ op: 'digest', id: m.id, sha256: h.sha.digest('hex'), md5: h.md5.digest('hex'), size: h.size } satisfies HashReply);
    } else {
      open.delete(m.id);
    }
  });
}
