/**
 * `make bench` (remote part; `node dist/bench/run.js --only remote`): smhfs on the S3 blob store
 * and on the local store against its peers, all over the same random bytes, in one run. Groups
 * of rows run alone with `--rows` (comma-separated; default all), each in a few minutes:
 *
 *   local    local cold sequential read vs the ll in-memory file system (bench/ll-memfs.ts, the
 *            ceiling of ll, smhfs's default binding)                                    ≥ 0.8×
 *            "Cold" here means smhfs's own caches and the mount's kernel pages are empty, not
 *            that the disk is read: the blob file is read once directly first (host page cache
 *            warm, as the peer's bytes are in RAM), then a fresh mount reads it. Printed beside
 *            it: the disk-cold row (kernel caches dropped) vs reading the blob file itself after
 *            drop_caches (the disk's own ceiling), and ll-memfs answering from the same warm file
 *            by descriptor, spliced and not (what the binding allows for an fd answer).
 *   random   random 4 KiB reads (fio psync) with smhfs's default 256 MiB cache on a file 4× the
 *            cache (the default 1 GiB), local store and S3, vs rclone on the same bytes (a local
 *            folder; s3rver)                                                            ≥ 1.0×
 *            Sources warm as above; rclone's flags and why are at RCLONE_FLAGS.
 *   s3       S3 (s3rver) cold sequential read (empty disk cache) vs the AWS SDK reading the
 *            object with the same total concurrency (8 × 8 MiB ranged GETs)              ≥ 0.9×
 *            and a warm remount served by the disk cache vs the local disk-cold read   ≥ 0.9×
 *   s3fs     the same cold read vs `s3fs` on the same object                            ≥ 1.0×
 *            in like-for-like pairs (both reported, same run): smhfs `--cache-disk-size 0` vs
 *            s3fs's default (no disk cache), and smhfs's default (disk cache on) vs s3fs
 *            `-o use_cache=DIR` (its own disk cache, emptied before each cold read). The
 *            target holds only if it holds for both pairs; the first pair needs the s3 group.
 *   rclone   cold/warm sequential vs `rclone mount` (context)
 *   memfs    the in-memory fuse-native file system (bench/memfs.ts): the other binding's
 *            ceiling (context)
 *   rss      peak RSS of the mount reading a 4 GiB file with a 256 MiB cache, sequentially (dd),
 *            at random (fio, 2 jobs, 4 KiB then 128 KiB reads, by count), and random then
 *            the whole file with dd on the same mount (units, then pages)           ≤ 350 MiB
 *            (`--rss-gib N`, 0 skips; `--no-rss-s3`)
 *
 * `--pin yes|no|both` (default both) places the local, random, s3 and s3fs groups: pinned = every
 * file system, s3rver and client (dd, fio, the raw SDK reader) on CPU 0 (`taskset -c 0`: the CPU
 * cost per request), unpinned = the scheduler's choice (what users get). Pinned S3 rows are
 * suffixed " (pinned)" and the S3 CPU seconds per GiB are reported per placement.
 *
 * s3rver runs in its own process (bench/s3rver-main.ts), as do the raw reader, every file system
 * and fio/dd. Medians of `--runs` runs. Every mount is unmounted at the end, also on failure.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, cpuSeconds, dropCaches, median, must, peakRss, sh, startChild, stopChild, timed, trackMount, unmount, waitMounted, type Child } from './util.js';

export const ROW_GROUPS = ['local', 'random', 's3', 's3fs', 'rclone', 'memfs', 'rss'] as const;
export type RowGroup = (typeof ROW_GROUPS)[number];
type Placement = 'pinned' | 'unpinned';

export interface RemoteOptions {
  root: string;
  sizeMiB: number;
  runs: number;
  /** Seconds of fio random reads per file system and run. */
  randomSec: number;
  /** Size of the RSS test file (GiB); 0 skips it. */
  rssGiB: number;
  /** Also measure the RSS test on S3 (uploads rssGiB to s3rver first, about a minute). */
  rssS3: boolean;
  /** Which groups of rows to run (ROW_GROUPS). */
  rows: ReadonlySet<RowGroup>;
  /** rclone's flags for the random rows (default RCLONE_FLAGS), to compare its settings. */
  rcloneFlags?: string[];
  /** Placements for the local and random groups. */
  placements: readonly Placement[];
  keep: boolean;
}

const BUCKET = 'smhfs-bench';
const S3ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const MiB = 1024 * 1024;

/**
 * rclone as a stable peer for random reads. With `--vfs-cache-mode full` and its defaults, every
 * 4 KiB read at a new offset starts a downloader (vfs/vfscache/downloaders) whose source reader
 * is buffered (`--buffer-size`, 16 MiB, read ahead asynchronously) and which lingers 5 s; each
 * random read thus pulls up to 16 MiB from the source into a sparse cache file on disk, and the
 * number of live downloaders, the disk's write-back and the reads still in flight decide the rate:
 * 10–999 IOPS across runs (session 6). `--buffer-size 0` reads what was asked for (a downloader
 * stops at the range's end); the cache file still keeps every byte read, as smhfs's cache does.
 * The cache folder is emptied before each run. rclone reads faster still at random without its
 * cache (`--vfs-cache-mode off --buffer-size 0`: each read a ranged read of the source, nothing
 * written), so both run and the target rows take the better of the two as the peer. Measured on
 * a 1 GiB local file, 5 s of fio, 3 runs each, load 6–9 (session 7): defaults 9/12/20 IOPS;
 * full + buffer 0: 645/523/429; the same with the cache folder on tmpfs: 636/348/487; cache off:
 * 388/377/371; off + buffer 0: 1630/1514/1697; 64 KiB read chunks made full mode worse (178/59/100).
 */
export const RCLONE_FLAGS = ['--vfs-cache-mode', 'full', '--buffer-size', '0'];
export const RCLONE_NOCACHE_FLAGS = ['--vfs-cache-mode', 'off', '--buffer-size', '0'];
/** Sequential reads (the rclone group): rclone's defaults, whose read-ahead buffer helps there. */
const RCLONE_SEQ_FLAGS = ['--vfs-cache-mode', 'full'];

function log(line: string): void {
  process.stderr.write(`bench remote: ${line}\n`);
}

export async function runRemote(o: RemoteOptions): Promise<string> {
  const started = Date.now();
  const want = (g: RowGroup): boolean => o.rows.has(g);
  const needS3 = want('s3') || want('s3fs') || want('random') || (want('rss') && o.rssS3 && o.rssGiB > 0);
  const CLI = join(o.root, 'dist', 'src', 'cli', 'main.js');
  const DIST = join(o.root, 'dist', 'bench');
  const BASE = join(o.root, '.tmp', 'bench-remote');
  const PLAIN = join(BASE, 'plain');
  const DATA = join(PLAIN, 'big.bin');
  const S3DIR = join(BASE, 's3rver');
  const LIB_S3 = join(BASE, 'lib-s3');
  const LIB_LOCAL = join(BASE, 'lib-local');
  const RC_CACHE = join(BASE, 'rclone-cache');
  const S3FS_CACHE = join(BASE, 's3fs-cache');
  const MNT = {
    s3: join(BASE, 'mnt-smhfs-s3'),
    local: join(BASE, 'mnt-smhfs-local'),
    rclone: join(BASE, 'mnt-rclone'),
    rcloneS3: join(BASE, 'mnt-rclone-s3'),
    s3fs: join(BASE, 'mnt-s3fs'),
    mem: join(BASE, 'mnt-memfs'),
    llmem: join(BASE, 'mnt-ll-memfs'),
    llfd: join(BASE, 'mnt-ll-memfs-fd'),
    llsplice: join(BASE, 'mnt-ll-memfs-splice'),
  };
  type Fs = keyof typeof MNT;
  const tools = ['fio', 'fusermount', 'dd', 'taskset', ...(want('s3fs') ? ['s3fs'] : []), ...(want('random') || want('rclone') ? ['rclone'] : [])];
  for (const tool of tools) {
    if ((await sh(`command -v ${tool}`)).code !== 0) throw new Error(`${tool} is not installed (make bench-deps)`);
  }
  for (const mp of Object.values(MNT)) {
    trackMount(mp);
    await unmount(mp);
  }
  await rm(BASE, { recursive: true, force: true });
  for (const d of [PLAIN, S3DIR, RC_CACHE, ...Object.values(MNT)]) await mkdir(d, { recursive: true });

  try {
    // ── data, s3rver, the two libraries ──
    log(`preparing ${o.sizeMiB} MiB of random bytes…`);
    await must(`head -c ${o.sizeMiB}M /dev/urandom > '${DATA}'`);
    const cliEnv = `env ${Object.entries(S3ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`;
    const cli = (args: string[]): Promise<string> => must(`${cliEnv} '${process.execPath}' '${CLI}' ${args.map((a) => `'${a}'`).join(' ')}`);
    await cli(['--library', LIB_LOCAL, 'init']);
    await cli(['--library', LIB_LOCAL, 'put', DATA, 'big.bin']);
    const localKey = (JSON.parse(await cli(['--library', LIB_LOCAL, '--json', 'stat', 'big.bin'])) as { blob: string }).blob;
    const BLOB_FILE = (await must(`find '${LIB_LOCAL}' -type f -name '${localKey}'`)).trim().split('\n')[0]!;
    if (!BLOB_FILE) throw new Error(`the blob file of ${localKey} is not under ${LIB_LOCAL}`);
    let s3rver: Child | undefined;
    let endpoint = '';
    let blobArgs: string[] = [];
    let objectKey = '';
    let uploadMBps = NaN;
    if (needS3) {
      s3rver = startChild('s3rver', process.execPath, [join(DIST, 's3rver-main.js'), S3DIR, BUCKET]);
      for (let i = 0; i < 400 && !endpoint; i++) {
        endpoint = /endpoint (\S+)/.exec(s3rver.output())?.[1] ?? '';
        if (!endpoint) await new Promise((r) => setTimeout(r, 25));
      }
      if (!endpoint) throw new Error(`s3rver did not start: ${s3rver.output()}`);
      blobArgs = ['--blobs', `s3://${BUCKET}/lib`, '--s3-endpoint', endpoint, '--s3-path-style'];
      log('storing it in s3rver (multipart upload)…');
      await cli(['--library', LIB_S3, ...blobArgs, 'init']);
      const tUp = Date.now();
      await cli(['--library', LIB_S3, ...blobArgs, 'put', DATA, 'big.bin']);
      uploadMBps = o.sizeMiB / ((Date.now() - tUp) / 1000);
      objectKey = `lib/${(JSON.parse(await cli(['--library', LIB_S3, ...blobArgs, '--json', 'stat', 'big.bin'])) as { blob: string }).blob}`;
    }

    // ── file systems ──
    const warmCache = `${o.sizeMiB + 256}M`; // the whole file fits: re-reads are page-cache hits
    const DEFAULT_CACHE = '256M'; // smhfs's default, for everything else
    let pin = false; // the current placement: children started pinned, clients run pinned
    const fsChildren: Partial<Record<Fs, Child>> = {};
    const start = (name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Child =>
      pin ? startChild(name, 'taskset', ['-c', '0', cmd, ...args], env) : startChild(name, cmd, args, env);
    const mountSmhfs = async (which: 's3' | 'local', cacheSize = warmCache, lib?: string, extra: string[] = []): Promise<Child> => {
      // As `make install`'s smhfs and `make run` start it (Makefile NODE_FLAGS). A library of its
      // own (lib) knows its blob store since init.
      const args = ['--max-semi-space-size=1', CLI, 'mount', MNT[which], '--library', lib ?? (which === 's3' ? LIB_S3 : LIB_LOCAL), '--cache-size', cacheSize, ...(which === 's3' && lib === undefined ? blobArgs : []), ...extra];
      const c = start(`smhfs-${which}`, process.execPath, args, S3ENV);
      await waitMounted(MNT[which], true, 30_000, c);
      fsChildren[which] = c;
      return c;
    };
    const passwd = join(BASE, 's3fs.passwd');
    await writeFile(passwd, 'S3RVER:S3RVER\n', { mode: 0o600 });
    // rclone's S3 remote from the environment (no config file): s3rver, path style. An
    // AWS_CA_BUNDLE in the environment makes rclone's SDK refuse to start ("unsupported
    // transport"): s3rver is plain http, so none is needed.
    const RCLONE_S3_ENV = { AWS_CA_BUNDLE: '', RCLONE_CONFIG_S3RV_TYPE: 's3', RCLONE_CONFIG_S3RV_PROVIDER: 'Other', RCLONE_CONFIG_S3RV_ENDPOINT: endpoint, RCLONE_CONFIG_S3RV_ACCESS_KEY_ID: 'S3RVER', RCLONE_CONFIG_S3RV_SECRET_ACCESS_KEY: 'S3RVER', RCLONE_CONFIG_S3RV_FORCE_PATH_STYLE: 'true' };
    const mountOther = async (which: Exclude<Fs, 's3' | 'local'>, rcloneFlags = RCLONE_FLAGS, s3fsExtra = ''): Promise<Child> => {
      const ll = (extra: string[], file = DATA): Child => start(which, process.execPath, [join(DIST, 'll-memfs.js'), MNT[which], file, ...extra]);
      const c =
        which === 'rclone'
          ? start('rclone', 'rclone', ['mount', PLAIN, MNT.rclone, '--cache-dir', RC_CACHE, '--read-only', ...rcloneFlags])
          : which === 'rcloneS3'
            ? start('rclone-s3', 'rclone', ['mount', `s3rv:${BUCKET}/lib`, MNT.rcloneS3, '--cache-dir', RC_CACHE, '--read-only', ...rcloneFlags], RCLONE_S3_ENV)
            : which === 's3fs'
              ? start('s3fs', 's3fs', [BUCKET, MNT.s3fs, '-f', '-o', `url=${endpoint},use_path_request_style,passwd_file=${passwd},ro${s3fsExtra}`])
              : which === 'llmem'
                ? ll([])
                : which === 'llfd'
                  ? ll(['--fd'], BLOB_FILE)
                  : which === 'llsplice'
                    ? ll(['--splice'], BLOB_FILE)
                    : start('memfs', process.execPath, [join(DIST, 'memfs.js'), MNT.mem, DATA]);
      await waitMounted(MNT[which], true, 60_000, c);
      fsChildren[which] = c;
      return c;
    };
    const stopFs = async (which: Fs): Promise<void> => {
      const c = fsChildren[which];
      if (c) await stopChild(c);
      fsChildren[which] = undefined;
      await unmount(MNT[which]);
    };
    const FILE: Record<Fs, string> = {
      s3: join(MNT.s3, 'big.bin'),
      local: join(MNT.local, 'big.bin'),
      rclone: join(MNT.rclone, 'big.bin'),
      rcloneS3: join(MNT.rcloneS3, objectKey.slice('lib/'.length)),
      s3fs: join(MNT.s3fs, objectKey),
      mem: join(MNT.mem, 'data.bin'),
      llmem: join(MNT.llmem, 'data.bin'),
      llfd: join(MNT.llfd, 'data.bin'),
      llsplice: join(MNT.llsplice, 'data.bin'),
    };
    const client = (): string => (pin ? 'taskset -c 0 ' : '');
    const readMBps = async (file: string): Promise<number> => o.sizeMiB / (await timed(`${client()}dd if='${file}' of=/dev/null bs=1M status=none`));
    const fio = async (file: string): Promise<number> => {
      const out = await must(
        `${client()}fio --name=rand --filename='${file}' --rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1 ` +
          `--time_based --runtime=${o.randomSec} --readonly --output-format=json`,
      );
      return (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ read: { iops: number; total_ios?: number } }> }).jobs[0]!.read.iops;
    };
    type CacheStats = { bytesFetched: number; unitFetches: number; misses: number; toRandom: number; bufferBytes?: number; allocatedBytes?: number; disk?: { writesDropped: number; bytesDropped?: number; bytesWritten: number } };
    const cacheStats = async (mp: string): Promise<CacheStats> => (JSON.parse(await must(`'${process.execPath}' '${CLI}' --json stats '${mp}'`)) as { cache: CacheStats }).cache;
    // "Cold" for the fair rows: the source's bytes in the host page cache (read once, directly),
    // every file system's own caches empty (fresh mounts, rclone's cache folder emptied).
    const warmSources = async (): Promise<void> => {
      await dropCaches();
      await must(`cat '${BLOB_FILE}' '${DATA}' > /dev/null`);
      if (needS3) await must(`find '${S3DIR}' -type f -exec cat {} + > /dev/null`);
    };
    const placeS3rver = async (): Promise<void> => {
      if (s3rver) await must(`taskset -a -p -c ${pin ? '0' : '0-1'} ${s3rver.pid} > /dev/null`);
    };

    // Same bytes everywhere?
    await mountSmhfs('local', DEFAULT_CACHE);
    await must(`cmp '${FILE.local}' '${DATA}'`);
    await stopFs('local');
    if (needS3) {
      await mountSmhfs('s3', DEFAULT_CACHE);
      await must(`cmp '${FILE.s3}' '${DATA}'`);
      await stopFs('s3');
    }

    const R: Record<string, number[]> = {};
    const add = (k: string, v: number): void => void (R[k] ??= []).push(v);
    const notes: string[] = [];
    const pageCacheFetchedDuringWarm: Partial<Record<Placement, number>> = {};
    const diskFetchedDuringWarm: Partial<Record<Placement, number>> = {};
    const S3_CACHE_DIR = join(LIB_S3, 'cache');
    for (let run = 1; run <= o.runs; run++) {
      for (const p of o.placements) {
        pin = p === 'pinned';
        await placeS3rver();
        const k = (name: string): string => `${name}|${p}`;
        if (want('local')) {
          log(`run ${run}/${o.runs} ${p}: local cold (fair) vs ll memfs; disk-cold vs the blob file`);
          await warmSources();
          await mountSmhfs('local', DEFAULT_CACHE);
          add(k('local cold'), await readMBps(FILE.local));
          add(k('local warm kernel'), await readMBps(FILE.local));
          await stopFs('local');
          // The same without splice: descriptor answers copied through libfuse's buffer (before
          // session 7, smhfs's only way).
          await mountSmhfs('local', DEFAULT_CACHE, undefined, ['-o', 'no_splice_write']);
          add(k('local cold nosplice'), await readMBps(FILE.local));
          await stopFs('local');
          for (const fs of ['llmem', 'llfd', 'llsplice'] as const) {
            await mountOther(fs);
            add(k(`${fs} cold`), await readMBps(FILE[fs]));
            await stopFs(fs);
          }
          // Disk-cold: nothing cached anywhere; the peer is the disk itself.
          await dropCaches();
          add(k('blob file disk'), await readMBps(BLOB_FILE));
          await dropCaches();
          await mountSmhfs('local', DEFAULT_CACHE);
          add(k('local disk cold'), await readMBps(FILE.local));
          await stopFs('local');
        }
        if (want('random')) {
          log(`run ${run}/${o.runs} ${p}: random 4 KiB, 256 MiB cache (smhfs local, S3; rclone local, S3; ll memfs)`);
          await warmSources();
          await mountSmhfs('local', DEFAULT_CACHE);
          add(k('local random 256M'), await fio(FILE.local));
          await stopFs('local');
          await rm(S3_CACHE_DIR, { recursive: true, force: true });
          await warmSources();
          await mountSmhfs('s3', DEFAULT_CACHE);
          const iops = await fio(FILE.s3);
          add(k('s3 random 256M'), iops);
          const st = await cacheStats(MNT.s3);
          add(k('s3 random KiB fetched per read'), st.bytesFetched / 1024 / (iops * o.randomSec));
          if (run === 1) notes.push(`S3 random (${p}): ${st.unitFetches} unit fetches, ${st.misses} misses, ${(st.bytesFetched / MiB).toFixed(0)} MiB fetched, ${st.toRandom} switch(es) to random`);
          await stopFs('s3');
          // What s3rver answers a reader fetching 64 KiB units one at a time (the row's ceiling).
          const raw = await sh(`${client()}env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER '${process.execPath}' '${join(DIST, 'raw-s3.js')}' ${endpoint} ${BUCKET} ${objectKey} ${o.sizeMiB * MiB} random ${o.randomSec} 64`);
          if (raw.code === 0) add(k('raw s3 random 64K'), (JSON.parse(raw.stdout.slice(raw.stdout.indexOf('{'))) as { iops: number }).iops);
          else log(`raw SDK random GETs failed: ${raw.stderr.slice(-500)}`);
          for (const [flags, suffix] of o.rcloneFlags ? ([[o.rcloneFlags, '']] as const) : ([[RCLONE_FLAGS, ''], [RCLONE_NOCACHE_FLAGS, ' nocache']] as const)) {
            for (const fs of ['rclone', 'rcloneS3'] as const) {
              await rm(RC_CACHE, { recursive: true, force: true });
              await warmSources();
              await mountOther(fs, [...flags]);
              add(k(`${fs}${suffix} random`), await fio(FILE[fs]));
              await stopFs(fs);
            }
          }
          await warmSources();
          await mountOther('llmem');
          add(k('llmem random'), await fio(FILE.llmem));
          await stopFs('llmem');
        }
        if (want('s3') && s3rver) {
          log(`run ${run}/${o.runs} ${p}: raw SDK and smhfs on S3`);
          await dropCaches();
          {
            // CPU seconds per GiB of the reader and of s3rver: the box has few cores and s3rver is JS.
            const s0 = await cpuSeconds(s3rver.pid);
            const out = await must(
              `${client()}/usr/bin/time -f 'cpu %U %S' env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER '${process.execPath}' '${join(DIST, 'raw-s3.js')}' ${endpoint} ${BUCKET} ${objectKey} ${o.sizeMiB * MiB} 8 8 2>&1`,
            );
            add(k('raw'), (JSON.parse(out.slice(out.indexOf('{'), out.indexOf('}') + 1)) as { MBps: number }).MBps);
            const [, u, sy] = /cpu ([\d.]+) ([\d.]+)/.exec(out) ?? [];
            add(k('cpu/GiB raw reader'), ((Number(u) + Number(sy)) * 1024) / o.sizeMiB);
            add(k('cpu/GiB s3rver (raw)'), (((await cpuSeconds(s3rver.pid)) - s0) * 1024) / o.sizeMiB);
          }
          if (run === 1) add(k('raw 1MiB'), JSON.parse(await must(`${client()}'${process.execPath}' '${join(DIST, 'raw-s3.js')}' ${endpoint} ${BUCKET} ${objectKey} ${o.sizeMiB * MiB} 8 1`)).MBps as number);
          // Cold: empty disk cache (smhfs's default on S3 writes what it reads there).
          await rm(S3_CACHE_DIR, { recursive: true, force: true });
          await dropCaches();
          const cs3 = await mountSmhfs('s3', DEFAULT_CACHE);
          const [m0, s0] = [await cpuSeconds(cs3.pid), await cpuSeconds(s3rver.pid)];
          add(k('s3 cold'), await readMBps(FILE.s3));
          add(k('cpu/GiB smhfs mount'), (((await cpuSeconds(cs3.pid)) - m0) * 1024) / o.sizeMiB);
          add(k('cpu/GiB s3rver (smhfs)'), (((await cpuSeconds(s3rver.pid)) - s0) * 1024) / o.sizeMiB);
          add(k('s3 warm kernel'), await readMBps(FILE.s3));
          {
            // What the cold read could not keep on disk (backlog full): the warm remount fetches it again.
            const d = (await cacheStats(MNT.s3)).disk;
            if (d) notes.push(`S3 cold read${p === 'pinned' ? ' (pinned)' : ''}, run ${run}: disk cache wrote ${(d.bytesWritten / MiB).toFixed(0)} MiB, dropped ${d.writesDropped} writes (${d.bytesDropped === undefined ? '?' : (d.bytesDropped / MiB).toFixed(0)} MiB); load ${(await must('cut -d" " -f1-3 /proc/loadavg')).trim()}`);
          }
          await stopFs('s3'); // finishes the disk cache's writes
          // Warm remount: the disk cache holds the file; kernel caches dropped.
          await dropCaches();
          await mountSmhfs('s3', DEFAULT_CACHE);
          add(k('s3 disk warm'), await readMBps(FILE.s3));
          diskFetchedDuringWarm[p] = Math.max(diskFetchedDuringWarm[p] ?? 0, (await cacheStats(MNT.s3)).bytesFetched);
          await stopFs('s3');
          // Its peer: the local store read with nothing cached (the disk cache is on the same disk).
          await dropCaches();
          await mountSmhfs('local', DEFAULT_CACHE);
          add(k('s3 peer local disk cold'), await readMBps(FILE.local));
          await stopFs('local');
          // Cold without the disk cache (what the read costs when nothing is written to disk).
          await dropCaches();
          await mountSmhfs('s3', DEFAULT_CACHE, undefined, ['--cache-disk-size', '0']);
          add(k('s3 cold nodisk'), await readMBps(FILE.s3));
          await stopFs('s3');
          // Page-cache re-read: a cache that holds the file, filled by one read, kernel cache dropped.
          await mountSmhfs('s3', warmCache, undefined, ['--cache-disk-size', '0']);
          await readMBps(FILE.s3);
          const before = (await cacheStats(MNT.s3)).bytesFetched;
          await dropCaches();
          add(k('s3 warm pagecache'), await readMBps(FILE.s3));
          pageCacheFetchedDuringWarm[p] = Math.max(pageCacheFetchedDuringWarm[p] ?? 0, (await cacheStats(MNT.s3)).bytesFetched - before);
          await stopFs('s3');
        }
        if (want('s3fs')) {
          log(`run ${run}/${o.runs} ${p}: s3fs`);
          await dropCaches();
          await mountOther('s3fs');
          add(k('s3fs cold'), await readMBps(FILE.s3fs));
          await stopFs('s3fs');
          // s3fs with its own disk cache (use_cache), emptied first: the peer of smhfs's default,
          // which writes what it reads to its disk cache too.
          log(`run ${run}/${o.runs} ${p}: s3fs -o use_cache`);
          await rm(S3FS_CACHE, { recursive: true, force: true });
          await mkdir(S3FS_CACHE, { recursive: true });
          await dropCaches();
          await mountOther('s3fs', undefined, `,use_cache=${S3FS_CACHE}`);
          add(k('s3fs cache cold'), await readMBps(FILE.s3fs));
          await stopFs('s3fs');
        }
      }
      pin = false;
      await placeS3rver();
      if (want('rclone')) {
        log(`run ${run}/${o.runs}: sequential, smhfs local vs rclone mount (caches dropped)`);
        await dropCaches();
        await mountSmhfs('local', DEFAULT_CACHE);
        add('local seq disk cold', await readMBps(FILE.local));
        add('local seq warm', await readMBps(FILE.local));
        await stopFs('local');
        await rm(RC_CACHE, { recursive: true, force: true });
        await dropCaches();
        await mountOther('rclone', RCLONE_SEQ_FLAGS);
        add('rclone cold', await readMBps(FILE.rclone));
        add('rclone warm', await readMBps(FILE.rclone));
        await stopFs('rclone');
      }
      if (want('memfs')) {
        log(`run ${run}/${o.runs}: in-memory fuse-native (that binding's ceiling)`);
        const cm = await mountOther('mem');
        await dropCaches();
        const c0 = await cpuSeconds(cm.pid);
        add('mem cold', await readMBps(FILE.mem));
        add('cpu/GiB memfs', (((await cpuSeconds(cm.pid)) - c0) * 1024) / o.sizeMiB);
        await dropCaches();
        add('mem random', await fio(FILE.mem));
        await stopFs('mem');
      }
    }

    // ── RSS: a 4 GiB file through a 256 MiB cache ──
    const rss: Record<string, number> = {};
    if (want('rss') && o.rssGiB > 0) {
      log(`peak RSS: ${o.rssGiB} GiB file, 256 MiB cache…`);
      const bigFile = join(PLAIN, 'rss.bin');
      await must(`head -c ${o.rssGiB}G /dev/urandom > '${bigFile}'`);
      const libs: Array<['local' | 's3', string]> = [['local', join(BASE, 'lib-rss-local')]];
      if (o.rssS3) libs.push(['s3', join(BASE, 'lib-rss-s3')]);
      for (const [which, lib] of libs) {
        // Its own prefix: one store per library (D1).
        const rssBlobs = which === 's3' ? ['--blobs', `s3://${BUCKET}/rss`, ...blobArgs.slice(2)] : [];
        await cli(['--library', lib, ...rssBlobs, 'init']);
        await cli(['--library', lib, 'put', bigFile, 'rss.bin']);
        await dropCaches();
        const c = await mountSmhfs(which, '256M', lib);
        const t = await timed(`dd if='${join(MNT[which], 'rss.bin')}' of=/dev/null bs=1M status=none`);
        rss[which] = await peakRss(c.pid);
        rss[`${which} MBps`] = (o.rssGiB * 1024) / t;
        await stopFs(which);
        // Any pattern: random 4 KiB (units) then random 128 KiB (units and pages), fresh mount.
        // By count, not time (a loaded machine read too little in 5 s to fill the cache, and the
        // peak depends on that): 2 × 1,300 reads of 4 KiB (~160 MiB of units), then 2 × 2,000 of
        // 128 KiB (~500 MiB: the 256 MiB cache full and evicting).
        await dropCaches();
        const r = await mountSmhfs(which, '256M', lib);
        for (const [bs, ios] of [['4k', 1300], ['128k', 2000]] as const) {
          await must(
            `fio --name=rss --filename='${join(MNT[which], 'rss.bin')}' --rw=randread --bs=${bs} --ioengine=psync --numjobs=2 ` +
              `--number_ios=${ios} --readonly --output-format=json`,
          );
        }
        rss[`${which} random`] = await peakRss(r.pid);
        {
          // How full the cache got decides most of that peak: say it, so runs compare like for like.
          const st = await cacheStats(MNT[which]);
          notes.push(`RSS random (${which}): ${(st.bytesFetched / MiB).toFixed(0)} MiB fetched, ${((st.bufferBytes ?? NaN) / MiB).toFixed(0)} MiB of cache buffers, ${st.unitFetches} unit fetches, ${st.toRandom} streams random`);
        }
        // Then the whole file sequentially on the same mount: a cache full of units, a reader that
        // needs whole pages (issue 16: units dropped to the GC while new pages were allocated).
        await timed(`dd if='${join(MNT[which], 'rss.bin')}' of=/dev/null bs=1M status=none`);
        rss[`${which} mixed`] = await peakRss(r.pid);
        {
          const st = await cacheStats(MNT[which]);
          notes.push(`RSS random then sequential (${which}): ${((st.allocatedBytes ?? NaN) / MiB).toFixed(0)} MiB of cache buffers allocated in all, ${((st.bufferBytes ?? NaN) / MiB).toFixed(0)} MiB held at the end`);
        }
        await stopFs(which);
        await rm(lib, { recursive: true, force: true });
      }
      await rm(bigFile, { force: true });
    }

    // ── report ──
    const m = (k: string): number => median(R[k] ?? []);
    const best = (a: number, b: number): number => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.max(a, b));
    type Row = [name: string, unit: string, ours: number, peer: number, target: number | undefined];
    const rows: Row[] = [];
    for (const p of o.placements) {
      const q = (name: string): number => m(`${name}|${p}`);
      const tag = o.placements.length > 1 || p === 'pinned' ? ` (${p})` : '';
      rows.push(
        [`local cold seq vs ll in-memory fs${tag}`, 'MB/s', q('local cold'), q('llmem cold'), 0.8],
        [`local disk-cold seq vs the blob file, disk${tag}`, 'MB/s', q('local disk cold'), q('blob file disk'), undefined],
        [`ceiling: ll memfs fd answers vs in-memory${tag}`, 'MB/s', q('llfd cold'), q('llmem cold'), undefined],
        [`ceiling: ll memfs spliced vs in-memory${tag}`, 'MB/s', q('llsplice cold'), q('llmem cold'), undefined],
        [`local cold seq vs ll memfs fd answers${tag}`, 'MB/s', q('local cold'), q('llfd cold'), undefined],
        [`local cold seq, splice vs -o no_splice_write${tag}`, 'MB/s', q('local cold'), q('local cold nosplice'), undefined],
        [`local cold seq, -o no_splice_write vs ll in-memory fs${tag}`, 'MB/s', q('local cold nosplice'), q('llmem cold'), undefined],
        // rclone at its better setting (RCLONE_FLAGS); NaN (not run) leaves the other.
        [`random 4 KiB, 256M cache, file 4×, vs rclone${tag}`, 'IOPS', q('local random 256M'), best(q('rclone random'), q('rclone nocache random')), 1.0],
        [`S3 random 4 KiB, 256M cache, vs rclone on S3${tag}`, 'IOPS', q('s3 random 256M'), best(q('rcloneS3 random'), q('rcloneS3 nocache random')), 1.0],
        [`context: rclone random, vfs cache full vs off${tag}`, 'IOPS', q('rclone random'), q('rclone nocache random'), undefined],
        [`context: rclone S3 random, vfs cache full vs off${tag}`, 'IOPS', q('rcloneS3 random'), q('rcloneS3 nocache random'), undefined],
        [`ceiling: random 4 KiB, smhfs local vs ll memfs${tag}`, 'IOPS', q('local random 256M'), q('llmem random'), undefined],
        [`ceiling: S3 random 4 KiB vs raw SDK 64 KiB GETs${tag}`, 'IOPS', q('s3 random 256M'), q('raw s3 random 64K'), undefined],
      );
    }
    // The S3 sequential rows, per placement: unpinned under their plain names (what users get),
    // pinned ones suffixed " (pinned)" (everything on CPU 0: the CPU cost per byte).
    for (const p of [...o.placements].sort((a, b) => (a === 'unpinned' ? -1 : b === 'unpinned' ? 1 : 0))) {
      const q = (name: string): number => m(`${name}|${p}`);
      const tag = p === 'pinned' ? ' (pinned)' : '';
      rows.push(
        [`S3 cold seq read vs raw SDK (8×8 MiB GETs)${tag}`, 'MB/s', q('s3 cold'), q('raw'), 0.9],
        [`S3 cold seq read vs s3fs${tag}`, 'MB/s', q('s3 cold'), q('s3fs cold'), 1.0],
        // The like-for-like pairs (the s3fs target holds only if both do).
        [`S3 cold, no disk cache, vs s3fs (no disk cache)${tag}`, 'MB/s', q('s3 cold nodisk'), q('s3fs cold'), 1.0],
        [`S3 cold, disk cache, vs s3fs -o use_cache${tag}`, 'MB/s', q('s3 cold'), q('s3fs cache cold'), 1.0],
        [`S3 warm remount (disk cache) vs local disk-cold${tag}`, 'MB/s', q('s3 disk warm'), q('s3 peer local disk cold'), 0.9],
        [`S3 cold, no disk cache, vs raw SDK${tag}`, 'MB/s', q('s3 cold nodisk'), q('raw'), undefined],
        [`S3 warm re-read, kernel cache vs page cache${tag}`, 'MB/s', q('s3 warm kernel'), q('s3 warm pagecache'), undefined],
        [`ceiling: raw SDK (server limit) vs s3fs${tag}`, 'MB/s', q('raw'), q('s3fs cold'), undefined],
      );
    }
    rows.push(
      ['disk-cold seq read vs rclone (vfs full, defaults)', 'MB/s', m('local seq disk cold'), m('rclone cold'), undefined],
      ['warm seq read vs rclone (vfs full, defaults)', 'MB/s', m('local seq warm'), m('rclone warm'), undefined],
      ['ceiling: fuse-native memfs vs ll memfs, cold', 'MB/s', m('mem cold'), m('llmem cold|unpinned'), undefined],
    );
    const lines: string[] = [];
    lines.push(
      `smhfs remote/peers: ${o.sizeMiB} MiB random bytes, median of ${o.runs} run(s), rows ${[...o.rows].join(',')}, ` +
        `placements ${o.placements.join(',')}; load average at the end ${(await must('cut -d" " -f1-3 /proc/loadavg')).trim()}`,
    );
    lines.push('');
    // The name column as wide as the longest row that ran (the placement suffixes lengthen some).
    const W = Math.max(54, ...rows.filter(([, , a, b]) => Number.isFinite(a) && Number.isFinite(b)).map(([name]) => name.length));
    lines.push(`| ${'test'.padEnd(W)} | unit |   smhfs |    peer | ratio | target | ok   |`);
    lines.push(`|${'-'.repeat(W + 2)}|------|---------|---------|-------|--------|------|`);
    for (const [name, unit, ours, peer, target] of rows) {
      if (!Number.isFinite(ours) || !Number.isFinite(peer)) continue; // a group not run
      const ratio = ours / peer;
      const okMark = target === undefined ? '' : ratio >= target ? 'PASS' : 'NO';
      lines.push(
        `| ${name.padEnd(W)} | ${unit.padEnd(4)} | ${ours.toFixed(0).padStart(7)} | ${peer.toFixed(0).padStart(7)} | ${ratio.toFixed(2).padStart(5)} | ${(target === undefined ? '-' : `≥${target}`).padStart(6)} | ${okMark.padEnd(4)} |`,
      );
    }
    for (const which of ['local', 's3', 'local random', 's3 random', 'local mixed', 's3 mixed'] as const) {
      if (rss[which] === undefined) continue;
      const mibUsed = rss[which]! / MiB;
      const what = which.endsWith('random')
        ? `peak RSS, random 4K+128K, 256M cache, ${which.split(' ')[0]}`
        : which.endsWith('mixed')
          ? `peak RSS, random then dd of all, 256M, ${which.split(' ')[0]}`
          : `peak RSS, ${o.rssGiB} GiB read, 256 MiB cache, ${which}`;
      lines.push(`| ${what.padEnd(W)} | MiB  | ${mibUsed.toFixed(0).padStart(7)} | ${'350'.padStart(7)} |     - |  ≤350 | ${(mibUsed <= 350 ? 'PASS' : 'NO').padEnd(4)} |`);
    }
    lines.push('');
    lines.push(`all runs: ${JSON.stringify(Object.fromEntries(Object.entries(R).filter(([k]) => !k.startsWith('cpu/')).map(([k, v]) => [k, v.map((x) => Math.round(x * 10) / 10)])))}`);
    for (const n of notes) lines.push(n);
    if (want('s3')) {
      const nproc = (await must('nproc')).trim();
      for (const p of o.placements) {
        const q = (name: string): number => m(`${name}|${p}`);
        lines.push(
          `CPU seconds per GiB on the S3 cold read, ${p === 'pinned' ? 'pinned (all on CPU 0)' : `unpinned (${nproc} CPUs)`} (medians): raw reader ${q('cpu/GiB raw reader').toFixed(2)} + s3rver ${q('cpu/GiB s3rver (raw)').toFixed(2)}; ` +
            `smhfs mount ${q('cpu/GiB smhfs mount').toFixed(2)} + s3rver ${q('cpu/GiB s3rver (smhfs)').toFixed(2)} (plus the kernel's FUSE and page-cache work for dd). ` +
            `Bytes fetched from S3 during the page-cache re-read: ${pageCacheFetchedDuringWarm[p] ?? NaN}; during the warm remount (disk cache): ${diskFetchedDuringWarm[p] ?? NaN}. ` +
            `Raw SDK with 1 MiB GETs: ${q('raw 1MiB').toFixed(0)} MB/s.`,
        );
      }
      lines.push(`Upload to s3rver ${uploadMBps.toFixed(0)} MB/s.`);
    }
    if (want('memfs')) lines.push(`the in-memory fuse-native file system alone: ${m('cpu/GiB memfs').toFixed(2)} CPU-s per GiB`);
    if (o.rssGiB > 0 && want('rss')) lines.push(`RSS test read speed: ${Object.entries(rss).filter(([k]) => k.endsWith('MBps')).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
    lines.push(
      `(MB = MiB. smhfs runs with its defaults on ll (256M cache; readahead 16M local, 64M S3). local/random rows: the source file read once ` +
        `directly first (host page cache warm), every file system freshly mounted, rclone's cache folder emptied; disk-cold: drop_caches. ` +
        `rclone random: ${o.rcloneFlags ? o.rcloneFlags.join(' ') : `the better of ${RCLONE_FLAGS.join(' ')} and ${RCLONE_NOCACHE_FLAGS.join(' ')}`}; sequential: ${RCLONE_SEQ_FLAGS.join(' ')}. random = fio randread 4k psync ${o.randomSec} s. ${((Date.now() - started) / 1000).toFixed(0)} s in all)`,
    );
    const report = lines.join('\n');
    await writeFile(join(o.root, '.tmp', 'bench-remote-result.md'), `${report}\n`);
    return report;
  } finally {
    await cleanupAll();
    if (!o.keep) await rm(BASE, { recursive: true, force: true }).catch(() => undefined);
  }
}
