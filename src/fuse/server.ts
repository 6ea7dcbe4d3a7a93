/**
 * `smhfs mount`: serve one space of a library at a mountpoint, in the foreground (M1).
 *
 * 1. The mountpoint is checked: a stale mount left by a crashed server (stat fails with ENOTCONN,
 *    "Transport endpoint is not connected") is detached (`fusermount -uz`, else `umount -l`) with
 *    a message; a live mount is refused.
 * 2. the binding (./binding.ts; fuse-native today) mounts with our options (native-notes/fuse-native.md) and the adapter's ops.
 * 3. It runs until SIGINT/SIGTERM/SIGHUP or `smhfs unmount` (a stop request on the control
 *    socket), or until someone detaches it (`smhfs unmount -l`, `umount -l`, `fusermount -u`),
 *    which it notices in the mount table.
 * 4. The control socket answers `smhfs stats MOUNTPOINT` and `smhfs unmount`; the stats JSON is
 *    also the read-only xattr `user.smhfs.stats` of the mount root.
 * 5. D6, the truthful unmount (native-notes/unmount.md): a stop unmounts at once when nothing is
 *    open; otherwise it detaches the mount (no new opens) and waits up to the grace for the files
 *    open for writing to be closed or fsynced, then discards what is still unsaved — the previous
 *    version stays, each discarded file is named in the log — and exits (1 if it discarded
 *    anything). A detach by someone else keeps serving the open files until they are closed.
 *
 * The process never touches its own mountpoint with a blocking call (M4): all checks go through
 * /proc or child processes (./mounts.ts).
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import type { MountedFs } from './binding.js';
import { nativeMalloc } from './ll/binding.js';
import { chooseFrontend, type BindingName, type MountAdapter } from './frontends.js';
import type { OpTimeouts } from './native.js';
import {
  fuseConnectionOpen,
  fuseUnmount,
  mountAt,
  mountState,
  recoverStale,
  registryPaths,
  removeRegistry,
  writeRegistry,
} from './mounts.js';
import type { FuseLibrary, FuseSpace } from './port.js';
import type { ContentReader } from '../vfs/reader.js';

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
  /** The one read path (it owns the page cache): src/vfs/reader.ts. */
  reader: ContentReader;
  /** The FUSE binding (./frontends.ts); default ll on Linux when its addon loads, else fuse-native. */
  binding?: BindingName;
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
  onAdapter?: (adapter: MountAdapter) => void;
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
  /**
   * D6: how long SIGINT/SIGTERM/`smhfs unmount` wait for files open for writing to be closed or
   * fsynced before discarding what is unsaved (seconds, default 30; `smhfs unmount --grace`
   * overrides it per request).
   */
  graceSec?: number;
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
  let mounted: MountedFs | undefined;
  /** What `smhfs stats` and the root's `user.smhfs.stats` show. */
  const cHeap = nativeMalloc();
  const statsSnapshot = (): Record<string, unknown> => ({
    pid: process.pid,
    mountpoint: mp,
    library: opts.lib.dir,
    space: opts.spaceName,
    uptimeSec: Math.round(process.uptime()),
    binding: frontend.name,
    mountOptions: mounted?.optionString() ?? '',
    rssBytes: process.memoryUsage.rss(),
    memory: { ...(({ heapTotal, external, arrayBuffers }) => ({ heapTotal, external, arrayBuffers }))(process.memoryUsage()), ...(cHeap ? { malloc: cHeap.info() } : {}) },
    ...opts.extraStats?.(),
    ...adapter.snapshot(),
  });
  const { frontend, note } = chooseFrontend(opts.binding);
  if (note) log(`smhfs: mount: ${note}`, 'warn');
  const prepared = frontend.prepare(
    opts.lib,
    opts.space,
    opts.reader,
    {
      mountpoint: mp,
      presentAs: process.getuid?.() === 0 ? undefined : { uid: process.getuid!(), gid: process.getgid!() },
      log: (line) => log(line, 'error'),
      rootStats: statsSnapshot,
      onOp: opts.onOp,
    },
    { fuseOptions: opts.fuseOptions ?? [], attrTimeout: opts.attrTimeout, timeouts: OP_TIMEOUTS, debug: opts.debug === true },
  );
  const adapter = prepared.adapter;
  opts.onAdapter?.(adapter);
  try {
    mounted = await prepared.mount(mp);
  } catch (e) {
    // A mount the kernel made but nobody serves would answer ENOTCONN forever: never leave one.
    const left = await mountState(mp);
    if (left.state === 'stale' || left.state === 'hung') await recoverStale(mp);
    const user = (opts.fuseOptions ?? []).flatMap((o) => o.split(',')).filter((o) => o.length > 0);
    if (/refused the mount options/.test((e as Error).message)) {
      throw new Error(`mounting ${mp} failed: libfuse refused the mount options${user.length ? ` -o ${user.join(',')}` : ''} (its message above says which); nothing is mounted`);
    }
    throw new Error(
      `mounting ${mp} failed (${(e as Error).message}): is /dev/fuse there, ${frontend.needs} installed, ` +
        `and the mountpoint empty (or pass -o nonempty)?`,
    );
  }
  opts.lib.startBackground?.();
  await setKernelReadahead(mp, opts.kernelReadaheadKb ?? 1024);

  // 3. The control socket and registry (for `smhfs stats` and `smhfs unmount`).
  const paths = registryPaths(mp);
  let server: Server | undefined;
  /** Clients of a stop request: they get every line the shutdown logs, then `{"exit":code}`. */
  const watchers = new Set<Socket>();
  const say = (line: string, level: 'error' | 'warn' | 'info' = 'info'): void => {
    log(line, level);
    for (const w of watchers) w.write(`${line}\n`);
  };
  let requestStop: ((r: StopReason) => void) | undefined;
  const pendingStops: StopReason[] = [];
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
      readRequest(sock).then(
        (req) => {
          if (req.op === 'stop') {
            watchers.add(sock);
            sock.on('close', () => watchers.delete(sock));
            const r: StopReason = { kind: 'request', grace: req.grace };
            if (requestStop) requestStop(r);
            else pendingStops.push(r);
          } else {
            sock.end(JSON.stringify(statsSnapshot()));
          }
        },
        () => sock.destroy(),
      );
    });
    await new Promise<void>((res, rej) => {
      server!.once('error', rej);
      server!.listen(paths.socket, () => res());
    });
    server.unref();
  } catch (e) {
    log(`smhfs: mount: stats socket unavailable: ${(e as Error).message}`, 'warn');
  }

  // 4. Wait for a signal, a stop request, an external unmount, or the caller's stop. Later ones
  // (a second Ctrl-C while waiting for writers) arrive through `nextStop`.
  const stops: StopReason[] = [...pendingStops];
  let wake: (() => void) | undefined;
  const push = (r: StopReason): void => {
    stops.push(r);
    wake?.();
  };
  requestStop = push;
  const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (sig: NodeJS.Signals): void => push({ kind: 'signal', signal: sig });
  for (const sig of SIGNALS) process.on(sig, onSignal);
  opts.stop?.then(() => push({ kind: 'signal', signal: 'stop' }));
  // Announced only now: whoever reads "serving" may signal at once (a test, systemd), and a
  // signal before the handlers above would kill the process instead of unmounting cleanly.
  log(`smhfs: serving ${opts.lib.dir} (space ${opts.spaceName}) at ${mp}; stop with Ctrl-C or "smhfs unmount ${mp}"`);
  opts.onReady?.();
  const nextStop = (ms: number, poll: () => Promise<boolean>): Promise<StopReason | 'condition' | 'timeout'> =>
    new Promise((res) => {
      const end = Date.now() + ms;
      let done = false;
      const finish = (v: StopReason | 'condition' | 'timeout'): void => {
        if (done) return;
        done = true;
        clearInterval(timer);
        wake = undefined;
        res(v);
      };
      const check = (): void => {
        if (stops.length > 0) return finish(stops.shift()!);
        if (Date.now() >= end) return finish('timeout');
        poll().then((c) => c && finish('condition'), () => undefined);
      };
      wake = () => finish(stops.shift()!);
      const timer = setInterval(check, 100);
      check();
    });

  let first = await nextStop(Number.POSITIVE_INFINITY, async () => !(await mountAt(mp)));
  const files = adapter.files;
  const writing = (): boolean => files.openForWriting().length > 0;
  let code = 0;

  // 5. Shut down (D6, native-notes/unmount.md).
  if (first === 'condition') {
    // Unmounted by someone else: `smhfs unmount -l`, `umount -l`, or `fusermount -u` of an idle
    // mount. Open files keep working until they are closed, with no time limit; a signal or a
    // stop request meanwhile switches to the graceful stop below.
    if (files.openHandles > 0) {
      say(
        `smhfs: mount: ${mp} was detached; serving the ${files.openHandles} open file${files.openHandles === 1 ? '' : 's'} ` +
          `until they are closed (changes are saved at each close or fsync, as usual)`,
      );
      const r = await nextStop(Number.POSITIVE_INFINITY, async () => files.openHandles === 0 || !(await fuseConnectionOpen()));
      first = r;
    }
  }
  if (first !== 'condition' && first !== 'timeout') {
    const grace = first.kind === 'request' && first.grace !== undefined ? first.grace : (opts.graceSec ?? DEFAULT_GRACE_SEC);
    const why = first.kind === 'request' ? 'smhfs unmount' : first.signal;
    // A plain unmount succeeds only when nothing is open; then there is nothing to wait for.
    let busy = files.openHandles > 0;
    let detail = 'open files or a working directory there';
    if (await mountAt(mp)) {
      const r = await fuseUnmount(mp);
      busy = r.code !== 0 && (await mountAt(mp)) !== undefined;
      if (r.stderr.trim()) detail = r.stderr.trim();
    }
    if (busy) {
      const open = files.openForWriting();
      const mounted = (await mountAt(mp)) !== undefined;
      if (open.length === 0) {
        say(`smhfs: mount: ${why}: ${mp} is in use (${detail}) but nothing is open for writing: ${mounted ? 'detaching it; ' : ''}programs still using it get errors from now on`, 'warn');
      } else {
        const list = open.map((f) => f.path || `node ${f.id}`).join(', ');
        say(
          `smhfs: mount: ${why}: ${open.length} file${open.length === 1 ? ' is' : 's are'} open for writing (${list}). ` +
            `${mounted ? `Detaching ${mp} (no new opens) and waiting` : 'Waiting'} up to ${grace} s for ${open.length === 1 ? 'it' : 'them'} to be closed or fsynced; ` +
            `writes neither closed nor fsynced by then are discarded and the previous version kept. Signal again to stop waiting.`,
          'warn',
        );
      }
      if (mounted) {
        const r = await fuseUnmount(mp, { lazy: true });
        if (r.code !== 0 && (await mountAt(mp))) {
          say(`smhfs: mount: unmounting ${mp} failed: ${r.stderr.trim()}`, 'error');
          code = 1;
        }
      }
      if (open.length > 0) {
        const w = await nextStop(grace * 1000, async () => !writing() || !(await fuseConnectionOpen()));
        if (w === 'timeout') say(`smhfs: mount: the grace of ${grace} s is over`, 'warn');
        else if (w !== 'condition') say(`smhfs: mount: ${w.kind === 'signal' ? w.signal : 'smhfs unmount'} again: not waiting any longer`, 'warn');
      }
    }
  }
  // From here on a signal no longer waits for anything: commits in progress are abandoned too.
  for (const sig of SIGNALS) process.removeListener(sig, onSignal);
  const force = (): void => {
    log('smhfs: mount: exiting now, without waiting for commits in progress (their files keep the previous version)', 'warn');
    process.exit(1);
  };
  for (const sig of SIGNALS) process.on(sig, force);
  // Whatever is still unsaved now was neither closed nor fsynced: it is dropped, never committed.
  const discarded = await files.discardUnsaved(`${mp} was unmounted: the file was not saved (its previous version is kept)`);
  for (const d of discarded) {
    say(`smhfs: mount: discarded unsaved writes to ${d.path || `node ${d.id}`} (${d.size} bytes, neither closed nor fsynced before the unmount); its previous version is kept`, 'error');
    code = 1;
  }
  await files.closeAll();
  for (const sig of SIGNALS) process.removeListener(sig, force);
  requestStop = undefined;
  await removeRegistry(mp);
  say(`smhfs: unmounted ${mp}${discarded.length > 0 ? ` (${discarded.length} unsaved file${discarded.length === 1 ? '' : 's'} discarded)` : ''}`);
  for (const w of watchers) w.end(`${JSON.stringify({ exit: code })}\n`);
  server?.close();
  return code;
}

/** Why the server stops: a signal (or the caller's `stop`), or `smhfs unmount` over the socket. */
type StopReason = { kind: 'signal'; signal: string } | { kind: 'request'; grace: number | undefined };

export const DEFAULT_GRACE_SEC = 30;

/** A control request: one JSON line, `{"op":"stats"}` or `{"op":"stop","grace":N}`. */
type ControlRequest = { op: 'stats' } | { op: 'stop'; grace: number | undefined };

function readRequest(sock: Socket): Promise<ControlRequest> {
  return new Promise((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => rej(new Error('no request')), 5000);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 4096) rej(new Error('request too long'));
        return;
      }
      clearTimeout(timer);
      try {
        const v = JSON.parse(buf.slice(0, nl)) as { op?: unknown; grace?: unknown };
        if (v.op === 'stop') {
          const g = v.grace;
          res({ op: 'stop', grace: typeof g === 'number' && Number.isFinite(g) && g >= 0 ? g : undefined });
        } else {
          res({ op: 'stats' });
        }
      } catch (e) {
        rej(e as Error);
      }
    });
    sock.on('end', () => rej(new Error('no request')));
  });
}
