/**
 * A program of ours holding files open in a mount, driven step by step from a test: open, write,
 * read, fstat, fsync, close, each answered before the next. It runs in a child process (a plain
 * `node` with synchronous fs calls), so the test process never blocks on a mountpoint (M4), and
 * its handles live exactly as long as the test says — what the unmount (D6) and open-file (D7)
 * tests need and a shell redirection cannot give (`>&3` dups and closes, which flushes).
 *
 *   const d = fileDriver();
 *   const fd = await d.open(m.p('f'), 'w');
 *   await d.write(fd, bytes);          // at the current position, or d.write(fd, bytes, pos)
 *   await d.sha256(fd, from, size);    // hash of bytes [from, size) read here, 1 MiB at a time
 *   await d.close(fd);                 // commits (B5)
 *   d.kill();                          // teardown: only this child, by its pid
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A write of this many bytes or more reaches the child as a file of ours (in a temp folder, never
 * the mount) rather than base64 in a JSON line: the child's write(2) calls are the same, and
 * megabytes of base64 through the pipe and readline cost both processes CPU for nothing.
 */
const WRITE_BY_FILE = 256 * 1024;

const SCRIPT = `
const fs = require('fs');
const rl = require('readline').createInterface({ input: process.stdin });
const say = (v) => process.stdout.write(JSON.stringify(v) + '\\n');
rl.on('line', (line) => {
  const c = JSON.parse(line);
  try {
    switch (c.op) {
      case 'open': return say({ ok: fs.openSync(c.path, c.flags) });
      case 'write': {
        const b = c.file ? fs.readFileSync(c.file) : Buffer.from(c.data, 'base64');
        let done = 0;
        while (done < b.length) done += fs.writeSync(c.fd, b, done, b.length - done, c.pos === null ? null : c.pos + done);
        return say({ ok: done });
      }
      case 'read': {
        const b = Buffer.alloc(c.len);
        const n = fs.readSync(c.fd, b, 0, c.len, c.pos);
        return say({ ok: b.subarray(0, n).toString('base64') });
      }
      case 'sha256': {
        // what 'read' calls in a loop would fetch, hashed here: 48 MiB through base64 JSON lines
        // cost the test process and this child ~1 s of CPU each for bytes only compared
        const h = require('crypto').createHash('sha256');
        const b = Buffer.alloc(1 << 20);
        for (let pos = c.from; pos < c.size; ) {
          const n = fs.readSync(c.fd, b, 0, Math.min(b.length, c.size - pos), pos);
          if (n === 0) return say({ err: 'early end of file at ' + pos });
          h.update(b.subarray(0, n));
          pos += n;
        }
        return say({ ok: h.digest('hex') });
      }
      case 'fstat': { const s = fs.fstatSync(c.fd); return say({ ok: { size: s.size, blocks: s.blocks, ino: s.ino } }); }
      case 'fsync': fs.fsyncSync(c.fd); return say({ ok: 0 });
      case 'close': fs.closeSync(c.fd); return say({ ok: 0 });
    }
    say({ err: 'unknown op ' + c.op });
  } catch (e) {
    say({ err: e.code || String(e) });
  }
});
`;

export class DriverError extends Error {
  constructor(readonly code: string, op: string) {
    super(`${op}: ${code}`);
  }
}

export interface FileDriver {
  readonly pid: number;
  open(path: string, flags: string): Promise<number>;
  write(fd: number, data: Buffer, pos?: number): Promise<number>;
  read(fd: number, len: number, pos: number): Promise<Buffer>;
  /** SHA-256 (hex) of bytes [from, size) read through `fd` by the child, 1 MiB per read; an early end of file is an error. */
  sha256(fd: number, from: number, size: number): Promise<string>;
  fstat(fd: number): Promise<{ size: number; blocks: number; ino: number }>;
  fsync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  /** SIGKILL the child (its descriptors are closed by the kernel: a close without a flush check). */
  kill(): void;
  exited: Promise<unknown>;
}

export function fileDriver(): FileDriver {
  const child: ChildProcess = spawn(process.execPath, ['-e', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: Array<(v: { ok?: unknown; err?: string }) => void> = [];
  // A reply can be many MiB of base64 arriving in 64 KiB chunks: only each new chunk is searched
  // for the line's end, and the parts are joined once (re-scanning a growing string was quadratic:
  // 19 s of CPU for mount-safety-open-files' reads).
  let partial: string[] = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    let start = 0;
    for (let nl = d.indexOf('\n'); nl >= 0; nl = d.indexOf('\n', start)) {
      partial.push(d.slice(start, nl));
      const line = partial.join('');
      partial = [];
      start = nl + 1;
      waiting.shift()?.(JSON.parse(line) as { ok?: unknown; err?: string });
    }
    if (start < d.length) partial.push(d.slice(start));
  });
  let files: string | undefined;
  let written = 0;
  const exited = new Promise((r) => child.once('exit', r));
  exited.then(() => {
    if (files) rmSync(files, { recursive: true, force: true });
    for (const w of waiting.splice(0)) w({ err: 'the driver exited' });
  });
  const call = <T>(op: string, args: Record<string, unknown>): Promise<T> =>
    new Promise<T>((res, rej) => {
      waiting.push((v) => (v.err !== undefined ? rej(new DriverError(v.err, op)) : res(v.ok as T)));
      child.stdin!.write(`${JSON.stringify({ op, ...args })}\n`);
    });
  return {
    pid: child.pid!,
    open: (path, flags) => call<number>('open', { path, flags }),
    write: async (fd, data, pos) => {
      if (data.length < WRITE_BY_FILE) return call<number>('write', { fd, data: data.toString('base64'), pos: pos ?? null });
      const file = join((files ??= mkdtempSync(join(tmpdir(), 'smhfs-driver-'))), String(written++));
      writeFileSync(file, data); // synchronous: calls reach the child in the order they are made
      try {
        return await call<number>('write', { fd, file, pos: pos ?? null });
      } finally {
        await rm(file, { force: true });
      }
    },
    read: async (fd, len, pos) => Buffer.from(await call<string>('read', { fd, len, pos }), 'base64'),
    sha256: (fd, from, size) => call<string>('sha256', { fd, from, size }),
    fstat: (fd) => call('fstat', { fd }),
    fsync: (fd) => call<void>('fsync', { fd }),
    close: (fd) => call<void>('close', { fd }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    exited,
  };
}
