/**
 * `smhfs mount MOUNTPOINT`, `smhfs unmount MOUNTPOINT`, `smhfs stats MOUNTPOINT` (M1).
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
 * with those FaultOptions, so tests can drive B4/B5 failures through the kernel. It prints a
 * warning at start; never set it in production.
 */
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { DiskCache, type DiskCacheFaults } from '../../blob/disk-cache.js';
import type { PageCacheStats } from '../../blob/page-cache.js';
import { FaultInjectingStore, type FaultOptions } from '../../blob/fault-store.js';
import { LocalBlobStore } from '../../blob/local-store.js';
import type { BlobConfig } from '../../store/types.js';
import { isS3 } from '../blobs.js';
import { defaultLibraryDir, globalOptions, openLibraryWithBlobs, printJson, printLine, runAction } from '../context.js';
import { UsageError } from '../usage.js';

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `256M`, `1m`, `512KiB`, `1G`, `4096` → bytes. */
export function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a size such as 256M, 1M, 512K or a number of bytes, got ${JSON.stringify(value)}.`);
  const n = Math.round(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`size must be positive, got ${JSON.stringify(value)}.`);
  return n;
}

/** `parseSize`, where 0 means "off". */
function parseSizeOrZero(value: string): number {
  return value.trim() === '0' ? 0 : parseSize(value);
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 86400) throw new InvalidArgumentError('expected seconds, 0 to 86400.');
  return n;
}

function collect(value: string, prev: string[]): string[] {
  return [...prev, value];
}

interface MountCmdOptions {
  cacheSize: number;
  cacheDir?: string;
  cacheDiskSize: number;
  pageSize: number;
  readahead?: number;
  options: string[];
  attrTimeout: number;
  kernelReadahead: number;
  debug?: boolean;
}

export function register(program: Command): void {
  program
    .command('mount')
    .description('serve the library at MOUNTPOINT through FUSE, in the foreground (Ctrl-C unmounts)')
    .argument('<mountpoint>', 'an empty directory (created if missing)')
    .option('--cache-size <size>', 'page cache budget', parseSize, 256 * 1024 ** 2)
    .option('--page-size <size>', 'page cache page size', parseSize, 1024 ** 2)
    .option('--readahead <size>', 'largest readahead window per open file (default 16M; 64M on S3)', parseSize)
    .option('--cache-dir <dir>', 'on-disk cache of remote bytes, kept across remounts (default: <library>/cache for an S3 library; none for a local one)')
    .option('--cache-disk-size <size>', 'largest on-disk cache (0 turns it off)', parseSizeOrZero, DEFAULT_DISK_CACHE)
    .option('-o, --options <opts>', 'FUSE mount options, comma-separated, passed through (allow_other, …); repeatable', collect, [])
    .option('--attr-timeout <seconds>', 'how long the kernel caches attributes and names (changes by others show after it)', parseSeconds, 1)
    .option(
      '--kernel-readahead <size>',
      "the kernel's readahead for this mount (Linux, as root; 0 keeps the kernel's 128K)",
      (v: string) => (v.trim() === '0' ? 0 : parseSize(v)),
      1024 ** 2,
    )
    .option('--debug', 'libfuse debug output (every request) on stderr')
    .action(
      runAction('mount', async (mountpoint: string, o: MountCmdOptions, cmd: Command) => {
        if (o.pageSize < 4096 || o.pageSize > 64 * 1024 ** 2) throw new UsageError('--page-size must be 4K to 64M');
        if (o.cacheSize < o.pageSize * 4) throw new UsageError('--cache-size must hold at least four pages');
        const g = globalOptions(cmd);
        const dir = resolve(g.library || defaultLibraryDir());
        const faults = testFaults();
        // Readahead: SPEC B3's 16 MiB, but 64 MiB against an object store, whose per-request
        // latency needs several large requests in flight (cold 1 GiB from s3rver: 225 → 275 MB/s,
        // and less CPU on both sides). Always capped at a quarter of the cache by the page cache.
        let disk: DiskCache | undefined;
        const cacheFor = (config: BlobConfig) => {
          const cacheDir = o.cacheDir !== undefined ? resolve(o.cacheDir) : isS3(config) ? join(dir, 'cache') : undefined;
          if (cacheDir !== undefined && o.cacheDiskSize > 0) {
            disk = new DiskCache({
              dir: cacheDir,
              maxBytes: o.cacheDiskSize,
              // Pages waiting to be written stay in memory (counted in --cache-size): half of it at most.
              maxPendingWriteBytes: Math.min(128 * 1024 ** 2, Math.floor(o.cacheSize / 2)),
              ...(faults?.diskCache ? { faults: diskFaults(faults.diskCache) } : {}),
            });
          }
          return {
            cache: { maxBytes: o.cacheSize, pageSize: o.pageSize, readaheadMax: o.readahead ?? (isS3(config) ? 64 : 16) * 1024 ** 2, ...(disk ? { disk } : {}) },
          };
        };
        const { lib, blobStore } = await openLibraryWithBlobs(dir, g, cacheFor, (store) => {
          if (!faults) return store;
          process.stderr.write(`smhfs: mount: SMHFS_TEST_FAULTS is set: injecting faults ${JSON.stringify(faults)} (tests only)\n`);
          const { diskCache: _onlyTheDiskCache, ...storeFaults } = faults;
          if (Object.keys(storeFaults).length === 0) return store;
          return new FaultInjectingStore(store ?? new LocalBlobStore(join(dir, 'blobs')), storeFaults);
        });
        const blobs = blobStore;
        try {
          await disk?.open(); // never throws: an unusable folder means memory only, said in one line
          const spaceName = g.space ?? '-';
          const space = lib.space(spaceName);
          const { serve } = await import('../../fuse/server.js');
          return await serve({
            mountpoint,
            lib,
            space,
            spaceName,
            fuseOptions: o.options,
            attrTimeout: o.attrTimeout,
            debug: o.debug === true,
            kernelReadaheadKb: Math.floor(o.kernelReadahead / 1024),
            extraStats: () => ({
              blobs: blobs?.description ?? `local:${join(dir, 'blobs')}`,
              ...(blobs instanceof FaultInjectingStore ? { faults: blobs.stats } : {}),
            }),
          });
        } finally {
          // Finishes the disk cache's writes and releases its folder.
          await lib.cache.close().catch(() => undefined);
          // No lib.idle(): a background purge may be long; tasks resume in the next process.
          lib.close();
          await blobStore?.close?.().catch(() => undefined);
        }
      }),
    );

  program
    .command('unmount')
    .alias('umount')
    .description('unmount an smhfs mount (waits for its server to finish); recovers a stale one')
    .argument('<mountpoint>', 'where it is mounted')
    .option('-l, --lazy', 'detach now even if files are open (they keep working until closed)')
    .action(
      runAction('unmount', async (mountpoint: string, o: { lazy?: boolean }) => {
        const { fuseUnmount, mountState, pidAlive, readRegistry, recoverStale, waitFor } = await import('../../fuse/mounts.js');
        const mp = resolve(mountpoint);
        const st = await mountState(mp);
        if (st.state === 'none') throw new UsageError(`${mp} is not mounted`);
        if (st.state === 'other') throw new UsageError(`${mp} is not a FUSE mount (${st.entry?.fstype})`);
        const reg = await readRegistry(mp);
        if (st.state === 'stale' || st.state === 'hung') {
          const r = await recoverStale(mp);
          if (r.code !== 0) throw new Error(`detaching the dead mount at ${mp} failed: ${r.stderr.trim()}`);
          process.stderr.write(`smhfs: unmount: ${mp} was stale (its server is gone); detached it\n`);
          return 0;
        }
        const r = await fuseUnmount(mp, { lazy: o.lazy === true });
        if (r.code !== 0) {
          const busy = /busy/i.test(r.stderr);
          throw new Error(`${mp}: ${r.stderr.trim() || 'unmount failed'}${busy ? ' (files are open there; close them, or use --lazy)' : ''}`);
        }
        // The server notices, commits what is staged and exits: wait for it.
        if (reg && pidAlive(reg.pid)) await waitFor(async () => !pidAlive(reg.pid), 30_000, 100);
        return 0;
      }),
    );

  program
    .command('stats')
    .description("a running mount's counters: operations, open files, page cache")
    .argument('<mountpoint>', 'where it is mounted')
    .action(
      runAction('stats', async (mountpoint: string, _o: unknown, cmd: Command) => {
        const { readRegistry } = await import('../../fuse/mounts.js');
        const mp = resolve(mountpoint);
        const reg = await readRegistry(mp);
        if (!reg) throw new UsageError(`no smhfs mount is being served at ${mp} by this user`);
        const text = await new Promise<string>((res, rej) => {
          const chunks: Buffer[] = [];
          const sock = createConnection(reg.socket);
          sock.setTimeout(5000, () => sock.destroy(new Error('the mount did not answer within 5 s')));
          sock.on('data', (c: Buffer) => chunks.push(c));
          sock.on('end', () => res(Buffer.concat(chunks).toString('utf8')));
          sock.on('error', (e) => rej(new Error(`cannot reach the mount's server (pid ${reg.pid}): ${e.message}`)));
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

const DEFAULT_DISK_CACHE = 10 * 1024 ** 3;

/** Faults for the mount's store and its disk cache (`diskCache: {"read": "EIO", "write": "ENOSPC"}`). */
interface TestFaults extends FaultOptions {
  diskCache?: Partial<Record<'read' | 'write', string>>;
}

function diskFaults(spec: Partial<Record<'read' | 'write', string>>): DiskCacheFaults {
  return (op) => spec[op];
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
  ops: Record<string, { calls: number; errors: number; ms: number }>;
  openHandles: number;
  openFiles: number;
  io: { commits: number; commitBytes: number; stagedCopies: number; bytesRead: number; bytesWritten: number };
  cache?: PageCacheStats;
  blobs?: string;
  faults?: { injectedFailures: number; injectedTruncations: number };
  rssBytes?: number;
}

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

function printStats(s: StatsReply): void {
  printLine(`mount     ${s.mountpoint} (pid ${s.pid}, up ${s.uptimeSec} s)`);
  printLine(`library   ${s.library} (space ${s.space})`);
  printLine(`options   ${s.mountOptions}`);
  if (s.blobs) printLine(`blobs     ${s.blobs}`);
  if (s.rssBytes !== undefined) printLine(`memory    ${mib(s.rssBytes)} resident`);
  printLine(`open      ${s.openHandles} handles on ${s.openFiles} files`);
  printLine(`io        read ${mib(s.io.bytesRead)}, written ${mib(s.io.bytesWritten)}, ${s.io.commits} commits (${mib(s.io.commitBytes)})`);
  if (s.cache) {
    const c = s.cache;
    printLine(
      `cache     ${mib(c.cachedBytes)} cached; ${c.hits} hits, ${c.misses} misses, ${c.prefetches} prefetches (${c.prefetchHits} used), ` +
        `${mib(c.bytesFetched)} fetched, ${c.retries} retries, ${c.errors} errors`,
    );
    if (c.toRandom > 0 || c.unitFetches > 0) printLine(`random    ${c.toRandom} streams turned random (${c.toSequential} back), ${c.unitFetches} small reads`);
    const d = c.disk;
    if (d) {
      printLine(
        `disk      ${d.state}, ${d.dir}: ${mib(d.bytes)} of ${mib(d.maxBytes)} in ${d.entries} files; ${d.hits} hits, ${d.misses} misses, ` +
          `${mib(d.bytesRead)} read, ${mib(d.bytesWritten)} written, ${d.evictions} evictions, ${d.corrupt} corrupt, ${d.errors} errors` +
          (d.writesDropped > 0 ? `, ${d.writesDropped} writes skipped` : ''),
      );
    }
  }
  if (s.faults) printLine(`faults    injected ${s.faults.injectedFailures} failures, ${s.faults.injectedTruncations} truncations (SMHFS_TEST_FAULTS)`);
  printLine('op              calls   errors   avg ms');
  for (const [op, c] of Object.entries(s.ops)) {
    printLine(`${op.padEnd(14)} ${String(c.calls).padStart(7)} ${String(c.errors).padStart(8)} ${(c.calls ? c.ms / c.calls : 0).toFixed(3).padStart(8)}`);
  }
}
