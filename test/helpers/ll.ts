/**
 * Harness of the low-level binding tests (test/binding-ll*.test.ts). The test process itself
 * serves the mount (so a test can look at the file system's state: lookup counts, interrupts,
 * request sizes), and every use of the mount is a real program in a child process — the serving
 * process never makes a blocking call on its own mountpoint (M4). Each mount has its own temp
 * mountpoint and is unmounted in teardown, lazily and with `umount -l` as a last resort.
 */
import { createHash } from 'node:crypto';
import { access, chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lowLevelAvailable, mount, type LowLevelOps, type LowLevelSession, type MountOptions } from '../../src/fuse/ll/binding.js';
import { ROOT, isMounted, sh, type RunResult } from './mount.js';

export { sh, ok, nodeSnippet, isMounted, ROOT } from './mount.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `p`, or `onTimeout` after `ms` — whichever comes first, and the timer cleared either way: a
 * timer left pending in a race keeps the test process alive until it fires (every llCleanup's 5 s
 * wait held its file's process up to 5 s after its last test).
 */
export async function within<T, U>(p: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<U>((r) => (timer = setTimeout(() => r(onTimeout), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why the binding tests cannot run: only a machine without /dev/fuse. A missing addon is a
 * failure (make builds it), never a skip. */
export async function llUnavailable(): Promise<string | undefined> {
  try {
    await access('/dev/fuse');
  } catch {
    if (process.env['CI']) throw new Error('the binding tests must run in CI, but there is no /dev/fuse');
    return 'no /dev/fuse';
  }
  const a = lowLevelAvailable();
  if (!a.ok) throw new Error(a.reason);
  return undefined;
}

export interface LlMount {
  session: LowLevelSession;
  dir: string;
  mountpoint: string;
  p(rel?: string): string;
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** Mount `ops` on a fresh temp mountpoint; teardown unmounts (lazily if busy) and removes it. */
export async function llMount(t: Teardownable, ops: LowLevelOps, options: MountOptions = {}, at?: string): Promise<LlMount> {
  const dir = at ?? (await mkdtemp(join(tmpdir(), 'smhfs-ll-')));
  await chmod(dir, 0o755); // other users (setpriv tests) must reach the mountpoint
  const mountpoint = join(dir, 'mnt');
  // a dead mount left there (ENOTCONN) is mount()'s to recover
  await mkdir(mountpoint, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOTCONN') throw e;
  });
  const session = await mount(mountpoint, ops, { fsname: 'smhfs-ll-test', ...options });
  t.teardown(() => llCleanup(session, dir));
  return { session, dir, mountpoint, p: (rel = '') => (rel ? join(mountpoint, rel) : mountpoint) };
}

export async function llCleanup(session: LowLevelSession | undefined, dir: string): Promise<void> {
  const mp = join(dir, 'mnt');
  if (session && !session.ended) {
    await session.unmount().catch(() => session.unmount({ lazy: true }).catch(() => undefined));
    await within(session.closed, 5000, undefined);
    if (!session.ended) session.close();
  }
  if (await isMounted(mp)) await sh(`fusermount -uz '${mp}' || umount -l '${mp}'`);
  if (!(await isMounted(mp))) await rm(dir, { recursive: true, force: true });
}

/** Run `cmd` as uid/gid with only `groups` (setpriv; no passwd entry needed). */
export function asUser(uid: number, gid: number, cmd: string, groups: number[] = []): Promise<RunResult> {
  const g = groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups';
  return sh(`setpriv --reuid=${uid} --regid=${gid} ${g} bash -c ${JSON.stringify(cmd)}`);
}

let probeBin: Promise<string> | undefined;

/** test/helpers/ll-probe.c, compiled once per source version into the temp dir. */
export function probePath(): Promise<string> {
  probeBin ??= (async () => {
    const src = join(ROOT, 'test', 'helpers', 'll-probe.c');
    const hash = createHash('sha256').update(await readFile(src)).digest('hex').slice(0, 12);
    const bin = join(tmpdir(), `smhfs-ll-probe-${hash}`);
    try {
      await access(bin);
    } catch {
      const r = await sh(`cc -O1 -o '${bin}.tmp.${process.pid}' '${src}' && mv '${bin}.tmp.${process.pid}' '${bin}'`);
      if (r.code !== 0) throw new Error(`could not compile ll-probe: ${r.stderr}`);
    }
    return bin;
  })();
  return probeBin;
}

/** Run ll-probe (as `user` if given); its output, trimmed (the errno name on failure). */
export async function probe(args: string[], user?: { uid: number; gid: number }): Promise<string> {
  const bin = await probePath();
  const cmd = [bin, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = user ? await asUser(user.uid, user.gid, cmd) : await sh(cmd);
  if (r.code > 1) throw new Error(`ll-probe ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Poll `cond` until true or `ms` passed; the last value. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, step = 25): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(step);
  }
}
