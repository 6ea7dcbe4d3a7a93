/**
 * `smhfs mount`: serve one space of a library at a mountpoint, in the foreground (M1).
 *
 * 1. The mountpoint is checked: a stale mount left by a crashed server (stat fails with ENOTCONN,
 *    "Transport endpoint is not connected") is detached (`fusermount -uz`, else `umount -l`) with
 *    a message; a live mount is refused.
 * 2. fuse-native mounts with our options (native-notes/fuse-native.md) and the adapter's ops.
 * 3. It runs until SIGINT/SIGTERM/SIGHUP (unmount, commit what is staged, close: exit 0) or
 *    until someone unmounts it (`smhfs unmount`, `fusermount -u`), which it notices in the
 *    mount table.
 * 4. A control socket answers `smhfs stats MOUNTPOINT`; the same JSON is the read-only xattr
 *    `user.smhfs.stats` of the mount root.
 *
 * The process never touches its own mountpoint with a blocking call (M4): all checks go through
 * /proc or child processes (./mounts.ts).
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { FuseAdapter } from './adapter.js';
import { createFuse, type OpTimeouts, type SmhFuse } from './native.js';
import {
  fuseUnmount,
  mountAt,
  mountState,
  recoverStale,
  registryPaths,
  removeRegistry,
  waitFor,
  writeRegistry,
} from './mounts.js';
import type { FuseLibrary, FuseSpace } from './port.js';

/** Always passed on Linux; see native-notes/fuse-native.md for each. */
const LINUX_MOUNT_OPTIONS = [
  'big_writes', // 128 KiB write requests instead of 4 KiB (≈10× write throughput)
  'max_write=131072',
  'use_ino', // st_ino is the node's stable identity
  'hard_remove', // unlink must not become a rename to .fuse_hidden* (trash semantics)
  'default_permissions', // the kernel enforces mode bits/owners (POSIX); we cannot see the caller
  'auto_cache', // keep the kernel page cache across opens while mtime/size are unchanged
  'fsname=smhfs',
  'subtype=smhfs',
];

/** macFUSE (untested): no big_writes/max_write/subtype; libfuse's own high-level options work. */
const MAC_MOUNT_OPTIONS = ['use_ino', 'hard_remove', 'default_permissions', 'auto_cache', 'fsname=smhfs', 'volname=smhfs'];

export const BASE_MOUNT_OPTIONS = process.platform === 'darwin' ? MAC_MOUNT_OPTIONS : LINUX_MOUNT_OPTIONS;

/**
 * Op timeouts (fuse-native's default is 15 s for everything, then ETIMEDOUT). Metadata ops are
 * one SQLite transaction; reads may wait for a remote store's retries (B4); commits (flush,
 * fsync, release, truncate) hash and upload a whole file and must not be cut short.
 */
export const OP_TIMEOUTS: OpTimeouts = {
  default: 30_000,
  read: 120_000,
  write: 60_000,
  open: 120_000,
  create: 60_000,
  flush: false,
  fsync: false,
  release: false,
  truncate: false,
  ftruncate: false,
};

export interface ServeOptions {
  mountpoint: string;
  lib: FuseLibrary & { startBackground?: () => void };
  space: FuseSpace;
  spaceName: string;
  /** User `-o` options, comma-separated strings (passed through verbatim). */
  fuseOptions?: string[];
  /** attr_timeout/entry_timeout in seconds (default 1, H4). */
  attrTimeout?: number;
  debug?: boolean;
  /** Where the server's lines go (default stderr), with a level for log files (default info). */
  log?: (line: string, level?: 'error' | 'warn' | 'info') => void;
  /** Told of every answered request (metrics, debug logs): see AdapterOptions.onOp. */
  onOp?: (op: string, path: string, ms: number, errno: number) => void;
  /** Given the adapter once it exists: its counters and open files feed `--metrics`. */
  onAdapter?: (adapter: FuseAdapter) => void;
  /** Called once the mount serves (after the "serving" line): `--daemon` tells its parent here. */
  onReady?: () => void;
  /** Resolves when the server should stop (tests); signals are handled anyway. */
  stop?: Promise<unknown>;
  /** More fields for `smhfs stats` and `user.smhfs.stats` (the blob store, injected faults). */
  extraStats?: () => Record<string, unknown>;
  /**
   * Kernel readahead for the mount in KiB (Linux, root only; default 1024). The kernel's default
   * for a FUSE mount is 128 KiB, i.e. about one 128 KiB read request in flight; 1 MiB keeps
   * several in flight, which the page cache's readahead turns into throughput (+25% cold reads
   * on a local store, measured). 0 leaves the kernel's value.
   */
  kernelReadaheadKb?: number;
}

/**
 * Set /sys/class/bdi/<dev>/read_ahead_kb of our mount (found in /proc/self/mountinfo: never a
 * call on the mountpoint itself, M4). Best effort: only root may, and only Linux has it.
 */
export async function setKernelReadahead(mp: string, kb: number): Promise<boolean> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || kb <= 0) return false;
  try {
    const unescape = (f: string): string => f.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    let dev: string | undefined;
    for (const line of info.split('\n')) {
      const f = line.split(' ');
      if (f.length > 4 && unescape(f[4]!) === mp) dev = f[2]; // the last one is the topmost mount
    }
    if (!dev || !/^\d+:\d+$/.test(dev)) return false;
    await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, `${Math.round(kb)}\n`);
    return true;
  } catch {
    return false;
  }
}

export function mountOptionList(opts: { fuseOptions?: string[]; attrTimeout?: number }): string[] {
  const t = opts.attrTimeout ?? 1;
  const user = (opts.fuseOptions ?? [])
    .flatMap((o) => o.split(','))
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
  return [...BASE_MOUNT_OPTIONS, `attr_timeout=${t}`, `entry_timeout=${t}`, ...user];
}

function mountFuse(fuse: SmhFuse): Promise<void> {
  return new Promise((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
}

/** Serve until stopped; resolves with the exit code (0 after a clean unmount). */
export async function serve(opts: ServeOptions): Promise<number> {
  const log = opts.log ?? ((line: string, _level?: 'error' | 'warn' | 'info') => process.stderr.write(`${line}\n`));
  const mp = resolve(opts.mountpoint);

  // 1. The mountpoint.
  const state = await mountState(mp);
  if (state.state === 'stale' || state.state === 'hung') {
    const r = await recoverStale(mp);
    if (r.code !== 0) throw new Error(`${mp} holds a dead FUSE mount (${state.detail}) and detaching it failed: ${r.stderr.trim()}`);
    log(`smhfs: mount: ${mp} held a stale mount (${state.detail === 'ENOTCONN' ? 'Transport endpoint is not connected' : state.detail}) left by a server that is gone; detached it`, 'warn');
  } else if (state.state !== 'none') {
    throw new Error(`${mp} is already a mount point (${state.entry?.fstype} from ${state.entry?.source}); unmount it first`);
  }
  try {
    const st = await stat(mp);
    if (!st.isDirectory()) throw new Error(`${mp} is not a directory`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(mp, { recursive: true });
  }

  // 2. Mount. (The mountpoint reaches the store per call, as the adapter's resolve context: D10.)
  let fuse: SmhFuse | undefined;
  /** What `smhfs stats` and the root's `user.smhfs.stats` show. */
  const statsSnapshot = (): Record<string, unknown> => ({
    pid: process.pid,
    mountpoint: mp,
    library: opts.lib.dir,
    space: opts.spaceName,
    uptimeSec: Math.round(process.uptime()),
    mountOptions: fuse?.optionString() ?? '',
    rssBytes: process.memoryUsage.rss(),
    memory: (({ heapTotal, external, arrayBuffers }) => ({ heapTotal, external, arrayBuffers }))(process.memoryUsage()),
    ...opts.extraStats?.(),
    ...adapter.snapshot(),
  });
  const adapter: FuseAdapter = new FuseAdapter(opts.lib, opts.space, {
    mountpoint: mp,
    presentAs: process.getuid?.() === 0 ? undefined : { uid: process.getuid!(), gid: process.getgid!() },
    log: (line) => log(line, 'error'),
    rootStats: statsSnapshot,
    onOp: opts.onOp,
  });
  opts.onAdapter?.(adapter);
  const mountOptions = mountOptionList(opts);
  fuse = createFuse(mp, adapter.ops(), { mountOptions, timeout: OP_TIMEOUTS, debug: opts.debug === true });
  try {
    await mountFuse(fuse);
  } catch (e) {
    throw new Error(
      `mounting ${mp} failed (${(e as Error).message}): is /dev/fuse there, libfuse2 and fusermount installed, ` +
        `and the mountpoint empty (or pass -o nonempty)?`,
    );
  }
  opts.lib.startBackground?.();
  await setKernelReadahead(mp, opts.kernelReadaheadKb ?? 1024);

  // 3. The control socket and registry (for `smhfs stats` and `smhfs unmount`).
  const paths = registryPaths(mp);
  let server: Server | undefined;
  try {
    await writeRegistry({
      pid: process.pid,
      mountpoint: mp,
      library: opts.lib.dir,
      space: opts.spaceName,
      socket: paths.socket,
      startedAt: new Date().toISOString(),
    });
    await rm(paths.socket, { force: true });
    server = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.end(JSON.stringify(statsSnapshot()));
    });
    await new Promise<void>((res, rej) => {
      server!.once('error', rej);
      server!.listen(paths.socket, () => res());
    });
    server.unref();
  } catch (e) {
    log(`smhfs: mount: stats socket unavailable: ${(e as Error).message}`, 'warn');
  }

  log(`smhfs: serving ${opts.lib.dir} (space ${opts.spaceName}) at ${mp}; stop with Ctrl-C or "smhfs unmount ${mp}"`);
  opts.onReady?.();

  // 4. Wait for a signal, an external unmount, or the caller's stop.
  let reason = await new Promise<'signal' | 'unmounted' | 'stop'>((res) => {
    let done = false;
    const finish = (r: 'signal' | 'unmounted' | 'stop'): void => {
      if (done) return;
      done = true;
      clearInterval(poll);
      for (const sig of SIGNALS) process.removeListener(sig, onSignal);
      res(r);
    };
    const onSignal = (): void => finish('signal');
    const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const sig of SIGNALS) process.on(sig, onSignal);
    const poll = setInterval(() => {
      mountAt(mp).then(
        (m) => {
          if (!m) finish('unmounted');
        },
        () => undefined,
      );
    }, 250);
    opts.stop?.then(() => finish('stop'));
  });

  // 5. Shut down: unmount (a busy mount is detached lazily), commit staged writes, close.
  let forced = false;
  const onSecondSignal = (): void => {
    if (forced) return;
    forced = true;
    log('smhfs: mount: second signal, detaching without waiting', 'warn');
    void fuseUnmount(mp, { lazy: true }).finally(() => process.exit(1));
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSecondSignal);
  let code = 0;
  if (reason !== 'unmounted') {
    let r = await fuseUnmount(mp);
    if (r.code !== 0 && (await mountAt(mp))) {
      log(`smhfs: mount: ${mp} is busy (${r.stderr.trim()}); detaching it lazily, open files keep working until closed`, 'warn');
      r = await fuseUnmount(mp, { lazy: true });
    }
    if (r.code !== 0 && (await mountAt(mp))) {
      log(`smhfs: mount: unmounting ${mp} failed: ${r.stderr.trim()}`, 'error');
      code = 1;
    } else {
      await waitFor(async () => !(await mountAt(mp)), 5000);
    }
  } else {
    reason = 'unmounted';
  }
  const failed = await adapter.files.commitAll();
  for (const f of failed) {
    log(`smhfs: mount: staged writes to node ${f.id} could not be committed: ${(f.error as Error).message ?? String(f.error)}`, 'error');
    code = 1;
  }
  await adapter.files.closeAll();
  server?.close();
  await removeRegistry(mp);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, onSecondSignal);
  log(`smhfs: unmounted ${mp}`);
  return code;
}
