/**
 * The worker side of `FileHasher` (hash-pipeline.ts): one thread that keeps a SHA-256 and an MD5
 * per hash id and reads the bytes to hash from the file itself — the staging file the writer has
 * just written, so they come from the OS page cache and the writer never copies them. Messages
 * are ordered (one port), so a digest covers every extent announced before it.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export type HashRequest =
  /** The file's bytes [0, to) are written and final: hash up to there. */
  | { op: 'extent'; id: number; path: string; to: number }
  | { op: 'digest'; id: number; path: string; to: number }
  | { op: 'drop'; id: number };

export type HashReply =
  | { op: 'digest'; id: number; sha256: string; md5: string; size: number }
  | { op: 'failed'; id: number; message: string }
  /** bytes hashed since the last progress reply (backpressure for the writer) */
  | { op: 'progress'; bytes: number };

const PROGRESS_EVERY = 4 << 20;
const READ_CHUNK = 1 << 20;

interface State {
  sha: Hash;
  md5: Hash;
  size: number;
  fd: number | undefined;
  error: string | undefined;
}

if (parentPort) {
  const port = parentPort;
  const open = new Map<number, State>();
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  let unreported = 0;

  const stateOf = (id: number): State => {
    let s = open.get(id);
    if (!s) open.set(id, (s = { sha: createHash('sha256'), md5: createHash('md5'), size: 0, fd: undefined, error: undefined }));
    return s;
  };
  const close = (s: State): void => {
    if (s.fd !== undefined) closeSync(s.fd);
    s.fd = undefined;
  };
  const hashTo = (s: State, path: string, to: number): void => {
    if (s.error) return;
    try {
      s.fd ??= openSync(path, 'r');
      while (s.size < to) {
        const n = readSync(s.fd, buf, 0, Math.min(READ_CHUNK, to - s.size), s.size);
        if (n === 0) throw new Error(`${path} ended at ${s.size}, before ${to}`);
        const chunk = buf.subarray(0, n);
        s.sha.update(chunk);
        s.md5.update(chunk);
        s.size += n;
        unreported += n;
      }
    } catch (e) {
      s.error = (e as Error).message;
    }
  };
  const report = (): void => {
    if (unreported > 0) port.postMessage({ op: 'progress', bytes: unreported } satisfies HashReply);
    unreported = 0;
  };

  port.on('message', (m: HashRequest) => {
    if (m.op === 'extent') {
      const s = stateOf(m.id);
      const before = s.size;
      hashTo(s, m.path, m.to);
      if (s.error) unreported += m.to - before - (s.size - before); // nothing more will be hashed: release the backlog
      if (unreported >= PROGRESS_EVERY) report();
    } else if (m.op === 'digest') {
      const s = stateOf(m.id);
      open.delete(m.id);
      const before = s.size;
      hashTo(s, m.path, m.to);
      if (s.error) unreported += Math.max(0, m.to - before - (s.size - before));
      close(s);
      report();
      port.postMessage(
        s.error
          ? ({ op: 'failed', id: m.id, message: s.error } satisfies HashReply)
          : ({ op: 'digest', id: m.id, sha256: s.sha.digest('hex'), md5: s.md5.digest('hex'), size: s.size } satisfies HashReply),
      );
    } else {
      const s = open.get(m.id);
      if (s) close(s);
      open.delete(m.id);
    }
  });
}
