/**
 * Mount table helpers shared by the server (`smhfs mount`), `smhfs unmount`/`stats`, tests and
 * the bench. Everything here is asynchronous and never touches a mountpoint with a blocking call
 * (M4): the mount table comes from /proc, and the one stat of a mountpoint (to tell a live mount
 * from a stale one) runs in a child process with a deadline, so even a hung server cannot hang
 * the caller.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
  options: string;
}

/** `\040` etc. in /proc/mounts fields. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

const IS_MAC = process.platform === 'darwin';

export async function mountTable(): Promise<MountEntry[]> {
  if (IS_MAC) return macMountTable();
  const text = await readFile('/proc/self/mounts', 'utf8');
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 4) continue;
    out.push({ source: unescapeMount(f[0]!), mountpoint: unescapeMount(f[1]!), fstype: f[2]!, options: f[3]! });
  }
  return out;
}

/** macOS has no /proc: parse `mount` ("smhfs@macfuse0 on /path (macfuse, nodev, …)"). Untested. */
async function macMountTable(): Promise<MountEntry[]> {
  const r = await run('/sbin/mount', []);
  const out: MountEntry[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^(.*) on (.*) \(([^,)]+)(?:, (.*))?\)$/.exec(line);
    if (m) out.push({ source: m[1]!, mountpoint: m[2]!, fstype: m[3]!, options: m[4] ?? '' });
  }
  return out;
}

/** The mount at exactly `mountpoint` (the last one, if stacked). */
export async function mountAt(mountpoint: string): Promise<MountEntry | undefined> {
  const mp = resolve(mountpoint);
  const all = await mountTable();
  for (let i = all.length - 1; i >= 0; i--) if (all[i]!.mountpoint === mp) return all[i];
  return undefined;
}

export function isFuse(e: MountEntry | undefined): boolean {
  return !!e && (e.fstype === 'fuse' || e.fstype.startsWith('fuse.') || e.fstype === 'fuseblk' || /fuse/.test(e.fstype));
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<ExecResult> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      res({ code, stdout, stderr: stderr || (err && code !== 0 ? err.message : '') });
    });
  });
}

/**
 * What stat(2) says about the mountpoint, asked from a child process with a deadline:
 * 'ok', an errno name ('ENOTCONN' for a mount whose server died), or 'timeout' (a hung server).
 */
export async function probe(mountpoint: string, timeoutMs = 3000): Promise<string> {
  const script = "try{require('fs').statSync(process.argv[1]);process.stdout.write('ok')}catch(e){process.stdout.write(String(e.code||'EIO'))}";
  const r = await run(process.execPath, ['-e', script, resolve(mountpoint)], timeoutMs);
  if (r.stdout) return r.stdout.trim();
  return 'timeout';
}

export type MountState = 'none' | 'live' | 'stale' | 'hung' | 'other';

/** Is a (FUSE) file system mounted at `mountpoint`, and is its server alive? */
export async function mountState(mountpoint: string): Promise<{ state: MountState; entry?: MountEntry; detail?: string }> {
  const entry = await mountAt(mountpoint);
  if (!entry) return { state: 'none' };
  if (!isFuse(entry)) return { state: 'other', entry };
  const p = await probe(mountpoint);
  if (p === 'ok') return { state: 'live', entry };
  if (p === 'ENOTCONN' || p === 'ECONNABORTED') return { state: 'stale', entry, detail: p };
  if (p === 'timeout') return { state: 'hung', entry, detail: p };
  return { state: 'live', entry, detail: p };
}

/** Unmount: `fusermount -u` (or `-uz` when lazy), falling back to `umount [-l]`. */
export async function fuseUnmount(mountpoint: string, opts: { lazy?: boolean } = {}): Promise<ExecResult> {
  const mp = resolve(mountpoint);
  if (IS_MAC) return run('/usr/sbin/diskutil', opts.lazy ? ['unmount', 'force', mp] : ['unmount', mp]);
  let r = await run('fusermount', [opts.lazy ? '-uz' : '-u', mp]);
  if (r.code === 0) return r;
  if (process.getuid?.() === 0) {
    const r2 = await run('umount', opts.lazy ? ['-l', mp] : [mp]);
    if (r2.code === 0) return r2;
    r = { code: r2.code, stdout: r.stdout + r2.stdout, stderr: `${r.stderr.trim()}; ${r2.stderr.trim()}` };
  }
  return r;
}

/** Detach a stale mount (its server is gone): `fusermount -uz`, else `umount -l`. */
export async function recoverStale(mountpoint: string): Promise<ExecResult> {
  return fuseUnmount(mountpoint, { lazy: true });
}

/**
 * Whether this process still has a FUSE connection open (a `/dev/fuse` descriptor): the binding
 * closes it when the kernel ends the connection — after an unmount, or once the last user of a
 * detached mount is gone. Linux only (macOS: always true).
 */
export async function fuseConnectionOpen(): Promise<boolean> {
  if (process.platform !== 'linux') return true;
  let fds: string[];
  try {
    fds = await readdir('/proc/self/fd');
  } catch {
    return true;
  }
  for (const fd of fds) {
    try {
      if ((await readlink(`/proc/self/fd/${fd}`)) === '/dev/fuse') return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}

export async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

// ───────────────────────────── registry of running mounts ─────────────────────────────

export interface RegistryEntry {
  pid: number;
  mountpoint: string;
  library: string;
  space: string;
  socket: string;
  startedAt: string;
}

export function registryDir(): string {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg) return join(xdg, 'smhfs');
  if (process.getuid?.() === 0) return '/run/smhfs';
  return join(tmpdir(), `smhfs-${process.getuid?.() ?? 'user'}`);
}

function registryKey(mountpoint: string): string {
  return createHash('sha256').update(resolve(mountpoint)).digest('hex').slice(0, 24);
}

export function registryPaths(mountpoint: string): { json: string; socket: string } {
  const base = join(registryDir(), registryKey(mountpoint));
  return { json: `${base}.json`, socket: `${base}.sock` };
}

export async function writeRegistry(e: RegistryEntry): Promise<void> {
  await mkdir(registryDir(), { recursive: true, mode: 0o700 });
  await writeFile(registryPaths(e.mountpoint).json, JSON.stringify(e, null, 2));
}

export async function readRegistry(mountpoint: string): Promise<RegistryEntry | undefined> {
  try {
    const e = JSON.parse(await readFile(registryPaths(mountpoint).json, 'utf8')) as RegistryEntry;
    return e;
  } catch {
    return undefined;
  }
}

/**
 * One request to a mount's control socket (the server's `ControlRequest`); resolves with the whole
 * answer. node:net is loaded here, not at start: most commands never ask a mount anything.
 */
export function askMount(socket: string, req: { op: 'stats' }): Promise<string> {
  return new Promise<string>((res, rej) => {
    const chunks: Buffer[] = [];
    const sock = (createRequire(import.meta.url)('node:net') as typeof import('node:net')).createConnection(socket);
    sock.setTimeout(5000, () => sock.destroy(new Error('the mount did not answer within 5 s')));
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => res(Buffer.concat(chunks).toString('utf8')));
    sock.on('error', (e) => rej(e));
  });
}

export async function removeRegistry(mountpoint: string, pid = process.pid): Promise<void> {
  const cur = await readRegistry(mountpoint);
  if (cur && cur.pid !== pid) return; // someone else's now
  const p = registryPaths(mountpoint);
  await rm(p.json, { force: true });
  await rm(p.socket, { force: true });
}

/**
 * Is process `pid` still running? A zombie (exited, not yet reaped by its parent: a Python or
 * other parent that never waits) still answers kill(pid, 0) but will never do anything again, so
 * it counts as gone: /proc/PID/stat state Z or X (issue 15: `smhfs unmount` waited 30 s for one).
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    // "PID (comm) S …": comm may hold spaces and parentheses, the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
    return state === 'Z' || state === 'X';
  } catch {
    return false; // no /proc (or it vanished this instant): kill(0) said it exists
  }
}
