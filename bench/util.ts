/**
 * Shared helpers of the benchmarks (bench/run.ts, bench/remote.ts): shell commands, timing, mounts and
 * child processes that are always cleaned up. Every child and mountpoint started through here is
 * recorded, and `cleanupAll()` unmounts and stops them (only those, by pid and path).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface Res {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, timeoutMs = 600_000): Promise<Res> {
  return new Promise((res) => {
    execFile('bash', ['-c', cmd], { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

export async function must(cmd: string, timeoutMs?: number): Promise<string> {
  const r = await sh(cmd, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function mounted(mp: string): Promise<boolean> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[1] === mp);
}

export async function waitMounted(mp: string, want = true, timeoutMs = 30_000, child?: Child): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await mounted(mp)) === want) return;
    if (want && child && child.proc.exitCode !== null) throw new Error(`${child.name} exited (${child.proc.exitCode}) before mounting: ${child.output().slice(-2000)}`);
    await sleep(25);
  }
  throw new Error(`${mp} did not ${want ? 'mount' : 'unmount'} within ${timeoutMs} ms${child ? `: ${child.output().slice(-2000)}` : ''}`);
}

export async function dropCaches(): Promise<void> {
  await must('sync && echo 3 > /proc/sys/vm/drop_caches');
}

/** Seconds a shell command takes (it must succeed). */
export async function timed(cmd: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await must(cmd);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

// ───────────────────────────── children and mounts ─────────────────────────────

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<void>;
}

const children = new Set<Child>();
const mountpoints = new Set<string>();

/** Start a child process (recorded for cleanup); its stdout+stderr are kept (last 64 KiB). */
export function startChild(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-65536);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const c: Child = { name, proc, pid: proc.pid!, output: () => out, exited };
  children.add(c);
  void exited.then(() => children.delete(c));
  return c;
}

/** SIGTERM a child we started and wait for it (SIGKILL after `ms`). */
export async function stopChild(c: Child, ms = 20_000): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill('SIGTERM');
  const done = await Promise.race([c.exited.then(() => true), sleep(ms).then(() => false)]);
  if (!done) {
    c.proc.kill('SIGKILL');
    await Promise.race([c.exited, sleep(5000)]);
  }
}

/** Remember a mountpoint so cleanupAll() detaches it if it is still mounted. */
export function trackMount(mp: string): void {
  mountpoints.add(mp);
}

export async function unmount(mp: string): Promise<void> {
  if (!(await mounted(mp))) return;
  const r = await sh(`fusermount -u '${mp}'`);
  if (r.code !== 0) await sh(`fusermount -uz '${mp}' || umount -l '${mp}'`);
  await waitMounted(mp, false, 15_000).catch(() => undefined);
}

/** Unmount every tracked mountpoint and stop every child still running. Never throws. */
export async function cleanupAll(): Promise<void> {
  for (const c of [...children]) {
    try {
      c.proc.kill('SIGTERM');
    } catch {
      // gone
    }
  }
  await Promise.race([Promise.all([...children].map((c) => c.exited)), sleep(10_000)]);
  for (const mp of mountpoints) {
    if (await mounted(mp).catch(() => false)) await sh(`fusermount -uz '${mp}' || umount -l '${mp}'`);
  }
  for (const c of [...children]) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Peak resident set (VmHWM) of a process, in bytes. */
export async function peakRss(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? NaN) * 1024;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/** CPU seconds (user + system) a live process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in clock ticks
}
