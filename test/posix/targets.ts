/**
 * The file systems the POSIX suite runs against, each started by the suite itself in its own
 * temporary folder and stopped in teardown (only the pids it started; `umount -l` last):
 *
 * - `plain`: a temporary directory on the local disk, no FUSE — what Linux itself does;
 * - `bindfs`: bindfs (libfuse 2, like fuse-native) over a temporary directory, `-o allow_other`
 *   — the reference FUSE file system every case must pass on, or be listed as its limitation;
 * - `smhfs-<binding>`: `smhfs mount --allow-other --binding <binding>` on a fresh library, so the
 *   same cases run on every binding (`ll`: our libfuse 3 binding; `fuse-native`: libfuse 2).
 *
 * Temporary folders are made 0755: callers that are not root must be able to reach the mount.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup, isMounted, sh, startMount, type Mount } from '../helpers/mount.js';
import type { TargetInfo } from './suite.js';

export interface RunningTarget extends TargetInfo {
  stop(): Promise<void>;
  /** The server's output (smhfs), for a failure's diagnosis. */
  output?: () => string;
}

/** The smhfs bindings the suite knows; each adds its own mount arguments. */
export const SMHFS_BINDINGS: Record<string, string[]> = {
  ll: ['--binding', 'll'],
  'fuse-native': ['--binding', 'fuse-native'],
};

/** The finest time step each binding carries: fuse-native milliseconds; ll nanoseconds, but the store keeps microseconds. */
const TIME_RESOLUTION_NS: Record<string, number> = { ll: 1000, 'fuse-native': 1_000_000 };

export const TARGET_NAMES = ['plain', 'bindfs', ...Object.keys(SMHFS_BINDINGS).map((b) => `smhfs-${b}`)];

export async function startTarget(name: string): Promise<RunningTarget> {
  if (name === 'plain') return startPlain();
  if (name === 'bindfs') return startBindfs();
  const binding = name.replace(/^smhfs-/, '');
  const args = SMHFS_BINDINGS[binding];
  if (!name.startsWith('smhfs-') || !args) throw new Error(`unknown POSIX target ${name} (known: ${TARGET_NAMES.join(', ')})`);
  return startSmhfs(name, args, TIME_RESOLUTION_NS[binding] ?? 1);
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

async function startPlain(): Promise<RunningTarget> {
  const dir = await tempDir('smhfs-posix-plain-');
  return {
    name: 'plain',
    dir,
    timeResolutionNs: 1,
    nameMax: 255,
    utf8Names: false,
    stop: () => rm(dir, { recursive: true, force: true }),
  };
}

async function startBindfs(): Promise<RunningTarget> {
  const found = await sh('command -v bindfs');
  if (found.code !== 0) throw new Error('bindfs is not installed (apt-get install bindfs; `make test` installs it)');
  const dir = await tempDir('smhfs-posix-bindfs-');
  const src = join(dir, 'src');
  const mnt = join(dir, 'mnt');
  await mkdir(src, { mode: 0o755 });
  await mkdir(mnt, { mode: 0o755 });
  await chmod(src, 0o755);
  // Foreground, so the pid is bindfs's own; as root bindfs adds allow_other and creates as the caller.
  const child: ChildProcess = spawn('bindfs', ['-f', src, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  const gone = new Promise<void>((res) => child.on('exit', () => ((exited = true), res())));
  for (let i = 0; !(await isMounted(mnt)); i++) {
    if (exited || i > 200) {
      if (!exited) child.kill('SIGKILL');
      throw new Error(`bindfs did not mount ${mnt}: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name: 'bindfs',
    dir: mnt,
    timeResolutionNs: 1,
    nameMax: 255,
    utf8Names: false,
    output: () => out,
    stop: async () => {
      await sh(`fusermount -u '${mnt}'`);
      if (await isMounted(mnt)) await sh(`umount -l '${mnt}'`);
      if (!exited) child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000).unref())]);
      if (!exited) child.kill('SIGKILL');
      if (!(await isMounted(mnt))) await rm(dir, { recursive: true, force: true });
    },
  };
}

async function startSmhfs(name: string, bindingArgs: string[], timeResolutionNs: number): Promise<RunningTarget> {
  const dir = await tempDir('smhfs-posix-');
  let m: Mount;
  try {
    m = await startMount({ dir, args: ['--allow-other', ...bindingArgs] });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    name,
    dir: m.mountpoint,
    timeResolutionNs,
    nameMax: 255,
    utf8Names: true,
    output: () => m.output(),
    stop: () => cleanup(m),
  };
}
