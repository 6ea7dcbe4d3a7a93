/**
 * `smhfs mount MOUNTPOINT`, `smhfs unmount MOUNTPOINT`, `smhfs stats MOUNTPOINT` (M1).
 *
 * `mount` runs in the foreground, or with `--daemon` returns once the mount serves
 * (src/cli/daemon.ts; also what mount(8) runs through /sbin/mount.smhfs, src/cli/mount-helper.ts).
 * It logs to stderr or `--log-file` (src/cli/log.ts) and serves `--metrics` (src/cli/metrics.ts).
 * The flags peers have (`--read-only`, `--allow-other`, `--uid/--gid/--umask`) become FUSE
 * options; `--read-only` also opens the library read-only, so a library on read-only media mounts.
 *
 * The mount opens the library itself (not through `openLibrary`) because the page-cache options
 * (`--cache-size`, `--page-size`, `--readahead`, the disk cache) are fixed when a Library is
 * constructed; it closes it itself when the mount stops.
 *
 * The on-disk cache (`--cache-dir`, `--cache-disk-size`; src/blob/disk-cache.ts) is on by default
 * for an S3 library, in `<library>/cache`: remote bytes then survive a remount. It is off for a
 * local store, whose blobs already are local files; `--cache-dir` turns it on there too, and
 * `--cache-disk-size 0` turns it off.
 *
 * Test-only: `SMHFS_TEST_FAULTS='{"failRate":1,"failOps":["putFile"],"truncateRate":0.5,…}'` in
 * the environment wraps the mount's blob store in a FaultInjectingStore (src/blob/fault-store.ts)
 * with those FaultOptions, so tests can drive B4/B5 failures through the kernel;
 * `{"diskCache":{"read":"EIO","write":"ENOSPC"}}` fails those operations of the disk cache (and
 * wraps the store only if store faults are given too). It prints a warning at start; never set it
 * in production.
 */
import { createRequire } from 'node:module';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
// Types only: the disk cache and the fault injector load with the mount that uses them (the
// command's other commands start without them; test/cli-start.test.ts).
import type { DiskCache, DiskCacheFaults } from '../../blob/disk-cache.js';
import type { FaultInjectingStore, FaultOptions } from '../../blob/fault-store.js';
import type { PageCacheStats } from '../../blob/page-cache.js';
import { LocalBlobStore } from '../../blob/local-store.js';
import type { BlobStore } from '../../blob/types.js';
import { BINDING_NAMES, type BindingName } from '../../fuse/binding.js';
import { nativeCrc32, nativeDirectIoAligned, nativePageAllocator } from '../../fuse/ll/binding.js';
import type { MountAdapter } from '../../fuse/frontends.js';
import type { Library } from '../../store/library.js';
import type { BlobConfig } from '../../store/types.js';
import type { ContentReader, ReaderOptions } from '../../vfs/reader.js';
import { isS3 } from '../blobs.js';
import {
  CliError,
  READ_ONLY_COMMANDS,
  globalOptions,
  instrumentableStore,
  libraryDir,
  openLibraryWithBlobs,
  printJson,
  printLine,
  runAction,
} from '../context.js';
import { daemonReady, defaultDaemonLog, isDaemonChild, runDaemon } from '../daemon.js';
import { type LogLevel, type Logger, checkLogFile, logFileOption, logLevelOption, openLogger } from '../log.js';
import { Metrics, metricsOption } from '../metrics.js';
import { formatSize, humanBytes, sizeIn } from '../sizes.js';
import { UsageError } from '../usage.js';

// node:net loads for `unmount`/`stats` only (their control-socket requests), not with every command.
const require = createRequire(import.meta.url);

export { parseSize } from '../sizes.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 86400) throw new InvalidArgumentError('expected seconds, 0 to 86400.');
  return n;
}

function parseId(what: string): (value: string) => number {
  return (value: string): number => {
    if (!/^\d{1,10}$/.test(value) || Number(value) > 0xfffffffe) throw new InvalidArgumentError(`expected a numeric ${what} (0 to 4294967294).`);
    return Number(value);
  };
}

function parseBinding(value: string): BindingName {
  const b = BINDING_NAMES.find((n) => n === value);
  if (!b) throw new InvalidArgumentError(`expected one of ${BINDING_NAMES.join(', ')}.`);
  return b;
}

function parseUmask(value: string): string {
  if (!/^0?[0-7]{1,3}$/.test(value)) throw new InvalidArgumentError('expected an octal umask such as 022 or 0027.');
  return value.replace(/^0(?=[0-7])/, '').padStart(3, '0');
}

function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

/** The page cache may not hold more than this machine's memory. */
const MAX_CACHE = Math.max(64 * MiB, Math.floor(totalmem() / MiB) * MiB);

interface MountCmdOptions {
  grace: number;
  cacheSize: number;
  cacheDir?: string;
  cacheDiskSize: number;
  pageSize: number;
  readahead?: number;
  options?: string[];
  attrTimeout: number | undefined;
  kernelReadahead: number;
  debug?: boolean;
  daemon?: boolean;
  readOnly?: boolean;
  allowOther?: boolean;
  uid?: number;
  gid?: number;
  umask?: string;
  logFile?: string;
  logLevel?: LogLevel;
  metrics?: string;
  binding?: BindingName;
}

export function register(program: Command): void {
  const mount = program
    .command('mount')
    .description('serve the library at MOUNTPOINT through FUSE (foreground: Ctrl-C unmounts; --daemon: in the background)')
    .argument('<mountpoint>', 'an empty directory (created if missing)')
    .option('-d, --daemon', 'return once the mount serves (exit 0) or has failed (exit 1); the server runs in the background')
    .option('--read-only', 'a read-only mount (also of a library on read-only media)')
    .option('--allow-other', 'let other users use the mount (FUSE allow_other; non-root needs user_allow_other in /etc/fuse.conf)')
    .option('--uid <uid>', 'show every file as owned by this user id (FUSE uid=)', parseId('user id'))
    .option('--gid <gid>', 'show every file as owned by this group id (FUSE gid=)', parseId('group id'))
    .option('--umask <octal>', 'show every file and directory with mode 0777 minus these bits (FUSE umask=; 022 shows 755)', parseUmask)
    .option('--cache-size <size>', `page cache budget (16M to ${formatSize(MAX_CACHE)}, this machine's memory)`, sizeIn({ min: 16 * MiB, max: MAX_CACHE }), 256 * MiB)
    .option('--page-size <size>', 'page cache page size (4K to 64M)', sizeIn({ min: 4 * KiB, max: 64 * MiB }), MiB)
    .option('--readahead <size>', 'largest readahead window per open file (64K to 1G; default 16M, 64M on S3)', sizeIn({ min: 64 * KiB, max: GiB }))
    .option('--cache-dir <dir>', 'on-disk cache of remote bytes, kept across remounts (default: <library>/cache for an S3 library; none for a local one)')
    .option('--cache-disk-size <size>', 'largest on-disk cache (0 turns it off; up to 64T)', sizeIn({ min: 64 * MiB, max: 64 * 1024 * GiB, zero: true }), 10 * GiB)
    .option(
      '--kernel-readahead <size>',
      "the kernel's readahead for this mount (Linux, as root; 0 keeps the kernel's 128K; up to 256M)",
      sizeIn({ min: 4 * KiB, max: 256 * MiB, zero: true }),
      MiB,
    )
    .addOption(
      new Option('--binding <name>', 'the FUSE binding: ll (our libfuse 3 low-level binding; the default on Linux when it is built) or fuse-native (libfuse 2)')
        .argParser(parseBinding)
        .env('SMHFS_BINDING'),
    )
    .option(
      '--attr-timeout <seconds>',
      'how long the kernel caches attributes and names (default: 60 on the ll binding, where every change invalidates them at once; 1 on fuse-native and for a PostgreSQL library, where changes by others show after it)',
      parseSeconds,
    )
    .option('-o, --options <opts>', 'FUSE mount options, comma-separated, passed through (allow_other, nosuid, …); repeatable', collect)
    .option(
      '--grace <seconds>',
      'on SIGINT/SIGTERM/"smhfs unmount": how long to wait for files open for writing to be closed or fsynced; unsaved writes are discarded after it',
      parseSeconds,
      30,
    );
  mount.addOption(logFileOption()).addOption(logLevelOption()).addOption(metricsOption());
  mount.option('--debug', 'libfuse debug output (every request) on stderr');
  for (const o of mount.options) {
    const def = o.defaultValue as unknown;
    if (typeof def === 'number' && /<size>/.test(o.flags)) o.default(def, formatSize(def));
  }
  mount.action(
    runAction('mount', async (mountpoint: string, o: MountCmdOptions, cmd: Command) => {
      if (o.cacheSize < o.pageSize * 4) throw new UsageError(`--cache-size must hold at least four pages (${formatSize(o.pageSize * 4)} with --page-size ${formatSize(o.pageSize)})`);
      try {
        checkLogFile(o.logFile, mountpoint);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      if (o.daemon && !isDaemonChild()) {
        const logFile = o.logFile ?? defaultDaemonLog();
        const r = await runDaemon(logFile, 'mount');
        if (r.code === 0) {
          const mp = resolve(mountpoint);
          const metricsUrl = typeof r.info?.['metrics'] === 'string' ? `; metrics at ${r.info['metrics']}` : '';
          process.stderr.write(
            `smhfs: mount: serving ${String(r.info?.['library'] ?? '')} at ${mp} in the background (pid ${r.pid}); log: ${resolve(logFile)}${metricsUrl}; stop with "smhfs unmount ${mp}"\n`,
          );
        }
        return r.code;
      }
      const logger = openLogger({ file: o.logFile ?? (isDaemonChild() ? defaultDaemonLog() : undefined), level: o.logLevel });
      try {
        return await serveMount(mountpoint, o, cmd, logger);
      } finally {
        logger.close();
      }
    }),
  );

  const unmount = program
    .command('unmount')
    .alias('umount')
    .description('unmount an smhfs mount: waits for files open for writing (up to --grace), then stops its server; recovers a stale one')
    .argument('<mountpoint>', 'where it is mounted')
    .option('-l, --lazy', 'detach now; the server keeps serving files that are open until they are closed')
    .option('--grace <seconds>', "how long to wait for files open for writing to be closed or fsynced (default: the mount's --grace, 30 s); unsaved writes are discarded after it", parseSeconds);
  unmount.action(
    runAction('unmount', async (mountpoint: string, o: { lazy?: boolean; grace?: number }) => {
      const { askMount, fuseUnmount, mountState, pidAlive, readRegistry, recoverStale, waitFor } = await import('../../fuse/mounts.js');
      const mp = resolve(mountpoint);
      const st = await mountState(mp);
      if (st.state === 'none') throw new CliError('NotMounted', 'not mounted', mp);
      if (st.state === 'other') throw new CliError('NotFuse', `not an smhfs mount (${st.entry?.fstype}); use umount(8)`, mp);
      const reg = await readRegistry(mp);
      if (st.state === 'stale' || st.state === 'hung') {
        const r = await recoverStale(mp);
        if (r.code !== 0) throw new CliError('UnmountFailed', `detaching the dead mount failed: ${r.stderr.trim()}`, mp);
        process.stderr.write(`smhfs: unmount: ${mp} was stale (its server is gone); detached it\n`);
        return 0;
      }
      if (o.lazy) {
        // Detach here (works even when the server does not answer); the server notices and
        // keeps serving the files still open until they are closed.
        const open = reg && pidAlive(reg.pid) ? await askMount(reg.socket, { op: 'stats' }).then((t) => (JSON.parse(t) as StatsReply).openHandles, () => undefined) : undefined;
        const r = await fuseUnmount(mp, { lazy: true });
        if (r.code !== 0) throw new CliError('UnmountFailed', r.stderr.trim() || 'detaching failed', mp);
        process.stderr.write(
          open
            ? `smhfs: unmount: detached ${mp}; its server keeps serving the ${open} open file${open === 1 ? '' : 's'} until they are closed, then exits\n`
            : `smhfs: unmount: detached ${mp}\n`,
        );
        return 0;
      }
      if (reg && pidAlive(reg.pid)) {
        // Ask the server to stop (D6): it waits for writers up to the grace and says what it does.
        const code = await stopServer(reg.socket, o.grace);
        if (code !== undefined) {
          await waitFor(async () => !pidAlive(reg.pid), 30_000, 100);
          return code;
        }
      }
      // No server of ours to ask (another user's, or an older smhfs): a plain unmount.
      const r = await fuseUnmount(mp);
      if (r.code !== 0) {
        const busy = /busy/i.test(r.stderr);
        throw new CliError(
          busy ? 'MountBusy' : 'UnmountFailed',
          busy ? 'files are open there; close them, or use "smhfs unmount --lazy"' : r.stderr.trim() || 'unmount failed',
          mp,
        );
      }
      if (reg && pidAlive(reg.pid)) await waitFor(async () => !pidAlive(reg.pid), 30_000, 100);
      return 0;
    }),
  );

  const stats = program
    .command('stats')
    .description("a running mount's counters: operations, open files, page cache")
    .argument('<mountpoint>', 'where it is mounted');
  stats.action(
    runAction('stats', async (mountpoint: string, _o: unknown, cmd: Command) => {
      const { askMount, readRegistry } = await import('../../fuse/mounts.js');
      const mp = resolve(mountpoint);
      const reg = await readRegistry(mp);
      if (!reg) throw new CliError('NotMounted', 'no smhfs mount is served here by this user', mp);
      const text = await askMount(reg.socket, { op: 'stats' }).catch((e: Error) => {
        throw new CliError('MountUnreachable', `cannot reach the mount's server (pid ${reg.pid}): ${e.message}`, mp);
      });
      const s = JSON.parse(text) as StatsReply;
      if (globalOptions(cmd).json) {
        printJson(s);
        return 0;
      }
      printStats(s);
      return 0;
    }),
  );
}

/** The foreground mount (also the background child of --daemon). */
async function serveMount(mountpoint: string, o: MountCmdOptions, cmd: Command, logger: Logger): Promise<number> {
  const g = globalOptions(cmd);
  const dir = resolve(libraryDir(g));
  const faults = testFaults();
  const metrics = o.metrics !== undefined ? new Metrics('mount') : undefined;
  let metricsServer: { url: string; close: () => Promise<void> } | undefined;
  if (metrics && o.metrics !== undefined) {
    try {
      metricsServer = await metrics.serve(o.metrics);
    } catch (e) {
      throw new CliError('MetricsUnavailable', `cannot serve metrics at ${o.metrics}: ${(e as Error).message}`);
    }
  }
  // Readahead: SPEC B3's 16 MiB, but 64 MiB against an object store, whose per-request
  // latency needs several large requests in flight (cold 1 GiB from s3rver: 225 → 275 MB/s,
  // and less CPU on both sides). Always capped at a quarter of the cache by the page cache.
  let disk: DiskCache | undefined;
  const { DiskCache, pendingWriteAllowance } = await import('../../blob/disk-cache.js');
  const Faulty: typeof FaultInjectingStore | undefined = faults ? (await import('../../blob/fault-store.js')).FaultInjectingStore : undefined;
  const crc = nativeCrc32();
  // Page buffers from the addon's huge-page slabs, aligned for O_DIRECT (issue 16: page faults
  // and the kernel's buffered writes were most of what the disk cache added to a cold S3 read).
  const allocatePage = nativePageAllocator();
  const directIo = allocatePage ? nativeDirectIoAligned() : undefined;
  const cacheFor = (config: BlobConfig): ReaderOptions => {
    const cacheDir = o.cacheDir !== undefined ? resolve(o.cacheDir) : isS3(config) ? join(dir, 'cache') : undefined;
    if (cacheDir !== undefined && o.cacheDiskSize > 0) {
      disk = new DiskCache({
        dir: cacheDir,
        maxBytes: o.cacheDiskSize,
        log: (line) => logger.log(/failed|cannot|full|less than/.test(line) ? 'warn' : 'info', line.replace(/^smhfs: /, '')),
        // Pages waiting to be written may stay in memory beyond --cache-size: half of it at most.
        maxPendingWriteBytes: pendingWriteAllowance(o.cacheSize),
        // The addon's CRC-32 (PCLMUL; zlib's results) when it is there, whatever the binding.
        ...(crc ? { crc32: crc } : {}),
        ...(directIo ? { directIo } : {}),
        ...(faults?.diskCache ? { faults: diskFaults(faults.diskCache) } : {}),
      });
    }
    return { maxBytes: o.cacheSize, pageSize: o.pageSize, readaheadMax: o.readahead ?? (isS3(config) ? 64 : 16) * MiB, ...(disk ? { disk } : {}), ...(allocatePage ? { allocatePage } : {}) };
  };
  let lib: Library;
  let blobStore: BlobStore | undefined;
  let blobConfig: BlobConfig;
  try {
    ({ lib, blobStore, blobs: blobConfig } = await openLibraryWithBlobs(dir, g, { readOnly: o.readOnly === true }, (store) => {
      let s = store;
      if (faults) {
        logger.warn(`mount: SMHFS_TEST_FAULTS is set: injecting faults ${JSON.stringify(faults)} (tests only)`);
        const { diskCache: _theDiskCachesOwn, ...storeFaults } = faults;
        if (Object.keys(storeFaults).length > 0 && Faulty) s = new Faulty(s ?? new LocalBlobStore(join(dir, 'blobs')), storeFaults);
      }
      return metrics ? instrumentableStore(s, dir, (x) => metrics.instrumentStore(x)) : s;
    }));
  } catch (e) {
    await metricsServer?.close();
    if (o.readOnly !== true && (e as { code?: string }).code === 'LibraryReadOnly') {
      throw new CliError('LibraryReadOnly', `${(e as Error).message}; mount it with --read-only (${READ_ONLY_COMMANDS} also work)`, dir);
    }
    throw e;
  }
  const blobs = blobStore;
  let reader: ContentReader | undefined;
  const { ContentReader } = await import('../../vfs/reader.js');
  try {
    const spaceName = g.space ?? '-';
    const space = lib.space(spaceName);
    const read = (reader = new ContentReader(lib, cacheFor(blobConfig)));
    await disk?.open(); // never throws: an unusable folder means memory only, said in one line
    const fuseOptions = [...(o.options ?? [])];
    if (o.readOnly) fuseOptions.push('ro');
    if (o.allowOther) fuseOptions.push('allow_other');
    if (o.uid !== undefined) fuseOptions.push(`uid=${o.uid}`);
    if (o.gid !== undefined) fuseOptions.push(`gid=${o.gid}`);
    if (o.umask !== undefined) fuseOptions.push(`umask=${o.umask}`);
    const debugOps = logger.enabled('debug');
    const { serve } = await import('../../fuse/server.js');
    return await serve({
      mountpoint,
      lib,
      space,
      reader: read,
      spaceName,
      fuseOptions,
      attrTimeout: o.attrTimeout,
      ...(o.binding ? { binding: o.binding } : {}),
      debug: o.debug === true,
      kernelReadaheadKb: Math.floor(o.kernelReadahead / 1024),
      graceSec: o.grace,
      log: (line, level) => logger.log(level ?? 'info', line),
      ...(metrics || debugOps
        ? {
            onOp: (op: string, path: string, ms: number, errno: number) => {
              metrics?.observeOp(op, ms / 1000);
              if (debugOps) logger.debug(`${op} ${path} -> ${errno === 0 ? 'ok' : `errno ${errno}`} (${ms.toFixed(3)} ms)`);
            },
          }
        : {}),
      onAdapter: (adapter: MountAdapter) =>
        metrics?.setSources({
          ops: () => adapter.counters.entries(),
          cache: () => read.cache.stats(),
          files: () => ({ openFiles: adapter.files.openNodes, openHandles: adapter.files.openHandles, stagedBytes: adapter.files.stagedBytes }),
        }),
      onReady: () => {
        if (metricsServer) logger.info(`mount: metrics at ${metricsServer.url}`);
        daemonReady({ pid: process.pid, library: dir, mountpoint: resolve(mountpoint), ...(metricsServer ? { metrics: metricsServer.url } : {}) });
      },
      extraStats: () => ({
        blobs: blobs?.description ?? `local:${join(dir, 'blobs')}`,
        ...(Faulty && blobs instanceof Faulty ? { faults: blobs.stats } : {}),
        ...(metricsServer ? { metrics: metricsServer.url } : {}),
      }),
    });
  } finally {
    // Finishes the disk cache's writes and releases its folder.
    await reader?.cache.close().catch(() => undefined);
    // No lib.idle(): a background purge may be long; tasks resume in the next process.
    lib.close();
    await blobStore?.close?.().catch(() => undefined);
    await metricsServer?.close();
  }
}

/** Faults for the mount's store and its disk cache (`diskCache: {"read": "EIO", "write": "ENOSPC"}`). */
interface TestFaults extends FaultOptions {
  diskCache?: Partial<Record<'read' | 'write', string>>;
}

function diskFaults(spec: Partial<Record<'read' | 'write', string>>): DiskCacheFaults {
  return (op) => spec[op];
}

/**
 * Ask a mount's server to stop (D6) and relay what it says (which files it waits for, which it
 * discards) until it is done. Resolves with its exit code, or undefined when it cannot be asked.
 */
function stopServer(socket: string, grace: number | undefined): Promise<number | undefined> {
  return new Promise((res) => {
    let buf = '';
    let code: number | undefined;
    let connected = false;
    const sock = (require('node:net') as typeof import('node:net')).createConnection(socket);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      connected = true;
      sock.write(`${JSON.stringify({ op: 'stop', ...(grace !== undefined ? { grace } : {}) })}\n`);
    });
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^\{"exit":(\d+)\}$/.exec(line);
        if (m) code = Number(m[1]);
        else process.stderr.write(`${line}\n`);
      }
    });
    // The server closes the connection when it is done (or when it exits).
    sock.on('close', () => res(connected ? (code ?? 1) : undefined));
    sock.on('error', () => undefined);
  });
}

/** `SMHFS_TEST_FAULTS` (tests only): FaultOptions as JSON, or undefined when unset. */
function testFaults(): TestFaults | undefined {
  const raw = process.env['SMHFS_TEST_FAULTS'];
  if (raw === undefined || raw === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new UsageError('SMHFS_TEST_FAULTS must be JSON fault options, e.g. {"failRate":1}');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError('SMHFS_TEST_FAULTS must be a JSON object');
  return v as TestFaults;
}

interface StatsReply {
  pid: number;
  mountpoint: string;
  library: string;
  space: string;
  uptimeSec: number;
  mountOptions: string;
  binding?: string;
  ops: Record<string, { calls: number; errors: number; ms: number }>;
  openHandles: number;
  openFiles: number;
  io: {
    commits: number;
    commitBytes: number;
    stagedCopies: number;
    bytesRead: number;
    bytesWritten: number;
    bytesHashed?: number;
    bytesStored?: number;
    sparseCommits?: number;
    discarded?: number;
  };
  cache?: PageCacheStats;
  blobs?: string;
  faults?: { injectedFailures: number; injectedTruncations: number };
  rssBytes?: number;
}

const mib = (n: number): string => humanBytes(n);

function printStats(s: StatsReply): void {
  printLine(`mount     ${s.mountpoint} (pid ${s.pid}, up ${s.uptimeSec} s)`);
  printLine(`library   ${s.library} (space ${s.space})`);
  printLine(`binding   ${s.binding ?? 'fuse-native'}`);
  printLine(`options   ${s.mountOptions}`);
  if (s.blobs) printLine(`blobs     ${s.blobs}`);
  if (s.rssBytes !== undefined) printLine(`memory    ${mib(s.rssBytes)} resident`);
  printLine(`open      ${s.openHandles} handles on ${s.openFiles} files`);
  printLine(`io        read ${mib(s.io.bytesRead)}, written ${mib(s.io.bytesWritten)}, ${s.io.commits} commits (${mib(s.io.commitBytes)})`);
  if (s.io.bytesHashed !== undefined) {
    printLine(`commits   ${mib(s.io.bytesHashed)} hashed, ${mib(s.io.bytesStored ?? 0)} stored, ${s.io.sparseCommits ?? 0} sparse, ${s.io.discarded ?? 0} discarded at unmount`);
  }
  if (s.cache) {
    const c = s.cache;
    printLine(
      `cache     ${mib(c.cachedBytes)} cached; ${c.hits} hits, ${c.misses} misses, ${c.prefetches} prefetches (${c.prefetchHits} used), ` +
        `${mib(c.bytesFetched)} fetched, ${c.retries} retries, ${c.errors} errors`,
    );
    if (c.toRandom > 0 || c.unitFetches > 0 || c.unitBytesReused > 0) {
      printLine(`random    ${c.toRandom} streams turned random (${c.toSequential} back), ${c.unitFetches} small reads (${mib(c.unitBytesReused)} reused by page fetches)`);
    }
    const d = c.disk;
    if (d) {
      printLine(
        `disk      ${d.state}, ${d.dir}: ${mib(d.bytes)} of ${mib(d.maxBytes)} in ${d.entries} files; ${d.hits} hits, ${d.misses} misses, ` +
          `${mib(d.bytesRead)} read, ${mib(d.bytesWritten)} written, ${d.evictions} evictions, ${d.corrupt} corrupt, ${d.errors} errors` +
          (d.writesDropped > 0 ? `, ${d.writesDropped} writes skipped (${mib(d.bytesDropped ?? 0)})` : ''),
      );
    }
  }
  if (s.faults) printLine(`faults    injected ${s.faults.injectedFailures} failures, ${s.faults.injectedTruncations} truncations (SMHFS_TEST_FAULTS)`);
  printLine('op              calls   errors   avg ms');
  for (const [op, c] of Object.entries(s.ops)) {
    printLine(`${op.padEnd(14)} ${String(c.calls).padStart(7)} ${String(c.errors).padStart(8)} ${(c.calls ? c.ms / c.calls : 0).toFixed(3).padStart(8)}`);
  }
}
