/**
 * Raw TCP clients for the HTTP resource tests (test/http-security-limits.test.ts): requests sent
 * byte by byte, slowly, half-way or with a body the client keeps pushing, to see what the server
 * reads, answers and when it closes the connection. Every socket is destroyed in teardown.
 */
import { connect, type Socket } from 'node:net';
import type { Test } from 'tap';

export interface RawConn {
  socket: Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the server closed the connection (end or reset), with ms since connect. */
  closed: Promise<number>;
  /** Resolves once at least one complete response head arrived (or the connection closed). */
  head(): Promise<string>;
}

/** Open a connection to `url`'s host and port; destroyed at teardown. */
export function rawConnect(t: Test, url: string): Promise<RawConn> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    const started = Date.now();
    const parts: Buffer[] = [];
    let closedAt: ((ms: number) => void) | undefined;
    const closed = new Promise<number>((r) => (closedAt = r));
    const done = (): void => closedAt?.(Date.now() - started);
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', done);
    t.teardown(() => {
      socket.destroy();
    });
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => Buffer.concat(parts),
        closed,
        head: async () => {
          for (;;) {
            const text = Buffer.concat(parts).toString('latin1');
            if (text.includes('\r\n\r\n') || socket.destroyed || socket.readableEnded) return text;
            await Promise.race([new Promise((r) => setTimeout(r, 20)), closed]);
          }
        },
      }),
    );
    socket.once('error', reject);
  });
}

/** The body of the first response in `raw` (after its head), as text. */
export function bodyOf(raw: string): string {
  const i = raw.indexOf('\r\n\r\n');
  return i < 0 ? '' : raw.slice(i + 4);
}

/** Status code of the first response in `raw`, or 0. */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

/**
 * Push body bytes as fast as the connection takes them until the server closes it, `maxBytes`
 * were written or `maxMs` passed; returns the bytes the socket accepted.
 */
export async function pushBody(conn: RawConn, maxBytes: number, maxMs: number): Promise<{ written: number; stoppedBy: 'server' | 'bytes' | 'time' }> {
  const chunk = Buffer.alloc(1 << 16, 0x61);
  const deadline = Date.now() + maxMs;
  let written = 0;
  let serverClosed = false;
  void conn.closed.then(() => (serverClosed = true));
  while (!serverClosed && written < maxBytes && Date.now() < deadline) {
    if (conn.socket.destroyed || !conn.socket.writable) break;
    const ok = conn.socket.write(chunk);
    written += chunk.length;
    if (!ok) {
      // The deadline's timer is cleared once the race is decided: left pending, each kept the test
      // process alive until maxMs (20 s after the last push of http-security-limits).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise((r) => conn.socket.once('drain', r)),
        conn.closed,
        new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    }
  }
  const stoppedBy = serverClosed || conn.socket.destroyed || !conn.socket.writable ? 'server' : written >= maxBytes ? 'bytes' : 'time';
  return { written, stoppedBy };
}
