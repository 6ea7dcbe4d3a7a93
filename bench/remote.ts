/**
 * `make bench` (remote part; `node dist/bench/run.js --only remote`): smhfs on the S3 blob store
 * and on the local store against its peers, all over the same random bytes, in one run.
 *
 *   1. smhfs on S3 (s3rver) cold sequential read (empty disk cache)  vs  the AWS SDK reading the
 *      object straight from s3rver with the same total concurrency (8 = the page cache's request
 *      limit; 8 MiB ranged GETs)                                                        ≥ 0.9×
 *   2. the same cold read  vs  `s3fs` on the same s3rver bucket (the very object)      ≥ 1.0×
 *   3. random 4 KiB reads (fio, psync) with smhfs's default 256 MiB cache on a file 4× the cache
 *      (the default 1 GiB)  vs  `rclone mount --vfs-cache-mode full` of the same bytes  ≥ 1.0×
 *   4. a warm remount of the S3 library, served by the disk cache (kernel caches dropped)  vs
 *      a cold read of the local store                                                   ≥ 0.9×
 *   4b. a cold sequential read of the local store  vs  the ll in-memory file system
 *      (bench/ll-memfs.ts: the ceiling of ll, smhfs's default binding)                   ≥ 0.8×
 *   5. peak RSS of the mount process reading a 4 GiB file with a 256 MiB cache, sequentially
 *      (dd) and at random (fio, 2 jobs, 4 KiB then 128 KiB reads)                     ≤ 350 MiB
 *   and, for context: warm re-reads from the page cache (S3 vs local), cold/warm sequential vs
 *   rclone, random reads with a cache that holds the file, the S3 cold read without the disk
 *   cache, CPU seconds per GiB, and the ceiling of fuse-native here: an in-memory fuse-native
 *   file system (bench/memfs.ts), cold sequential and random, to tell what the binding allows
 *   from what smhfs does.
 *
 * s3rver runs in its own process (bench/s3rver-main.ts), as do the raw reader, every file system
 * and fio/dd. Cold = kernel caches dropped and the file system freshly mounted (rclone: its cache
 * folder emptied). Medians of `--runs` runs. Every mount is unmounted at the end, also on failure.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  cleanupAll,
  cpuSeconds,
  dropCaches,
  median,
  must,
  peakRss,
  sh,
  startChild,
  stopChild,
  timed,
  trackMount,
  unmount,
  waitMounted,
  type Child,
} from './util.js';

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
  keep: boolean;
}

const BUCKET = 'smhfs-bench';
const S3ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const MiB = 1024 * 1024;

function log(line: string): void {
  process.stderr.write(`bench remote: ${line}\n`);
}

export async function runRemote(o: RemoteOptions): Promise<string> {
  const started = Date.now();
  const CLI = join(o.root, 'dist', 'src', 'cli', 'main.js');
  const DIST = join(o.root, 'dist', 'bench');
  const BASE = join(o.root, '.tmp', 'bench-remote');
  const PLAIN = join(BASE, 'plain');
  const DATA = join(PLAIN, 'big.bin');
  const S3DIR = join(BASE, 's3rver');
  const LIB_S3 = join(BASE, 'lib-s3');
  const LIB_LOCAL = join(BASE, 'lib-local');
  const RC_CACHE = join(BASE, 'rclone-cache');
  const MNT = {
    s3: join(BASE, 'mnt-smhfs-s3'),
    local: join(BASE, 'mnt-smhfs-local'),
    rclone: join(BASE, 'mnt-rclone'),
    s3fs: join(BASE, 'mnt-s3fs'),
    mem: join(BASE, 'mnt-memfs'),
    llmem: join(BASE, 'mnt-ll-memfs'),
  };
  for (const tool of ['rclone', 's3fs', 'fio', 'fusermount', 'dd']) {
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
    const s3rver = startChild('s3rver', process.execPath, [join(DIST, 's3rver-main.js'), S3DIR, BUCKET]);
    let endpoint = '';
    for (let i = 0; i < 400 && !endpoint; i++) {
      endpoint = /endpoint (\S+)/.exec(s3rver.output())?.[1] ?? '';
      if (!endpoint) await new Promise((r) => setTimeout(r, 25));
    }
    if (!endpoint) throw new Error(`s3rver did not start: ${s3rver.output()}`);
    const blobArgs = ['--blobs', `s3://${BUCKET}/lib`, '--s3-endpoint', endpoint, '--s3-path-style'];
    const cli = (args: string[]): Promise<string> =>
      must(`env ${Object.entries(S3ENV).map(([k, v]) => `${k}=${v}`).join(' ')} '${process.execPath}' '${CLI}' ${args.map((a) => `'${a}'`).join(' ')}`);
    log('storing it in a local library and in s3rver (multipart upload)…');
    await cli(['--library', LIB_LOCAL, 'init']);
    await cli(['--library', LIB_LOCAL, 'put', DATA, 'big.bin']);
    await cli(['--library', LIB_S3, ...blobArgs, 'init']);
    const tUp = Date.now();
    await cli(['--library', LIB_S3, ...blobArgs, 'put', DATA, 'big.bin']);
    const uploadMBps = o.sizeMiB / ((Date.now() - tUp) / 1000);
    const key = (JSON.parse(await cli(['--library', LIB_S3, ...blobArgs, '--json', 'stat', 'big.bin'])) as { blob: string }).blob;
    const objectKey = `lib/${key}`;

    // ── file systems ──
    const warmCache = `${o.sizeMiB + 256}M`; // the whole file fits: re-reads are page-cache hits
    const DEFAULT_CACHE = '256M'; // smhfs's default, for everything else
    const fsChildren: Partial<Record<keyof typeof MNT, Child>> = {};
    const mountSmhfs = async (which: 's3' | 'local', cacheSize = warmCache, lib?: string, extra: string[] = []): Promise<Child> => {
      // As `make install`'s smhfs and `make run` start it (Makefile NODE_FLAGS). A library of its
      // own (lib) knows its blob store since init.
      const args = ['--max-semi-space-size=1', CLI, 'mount', MNT[which], '--library', lib ?? (which === 's3' ? LIB_S3 : LIB_LOCAL), '--cache-size', cacheSize, ...(which === 's3' && lib === undefined ? blobArgs : []), ...extra];
      const c = startChild(`smhfs-${which}`, process.execPath, args, S3ENV);
      await waitMounted(MNT[which], true, 30_000, c);
      fsChildren[which] = c;
      return c;
    };
    const passwd = join(BASE, 's3fs.passwd');
    await writeFile(passwd, 'S3RVER:S3RVER\n', { mode: 0o600 });
    const mountOther = async (which: 'rclone' | 's3fs' | 'mem' | 'llmem'): Promise<Child> => {
      const c =
        which === 'rclone'
          ? startChild('rclone', 'rclone', ['mount', PLAIN, MNT.rclone, '--vfs-cache-mode', 'full', '--cache-dir', RC_CACHE, '--read-only'])
          : which === 's3fs'
            ? startChild('s3fs', 's3fs', [BUCKET, MNT.s3fs, '-f', '-o', `url=${endpoint},use_path_request_style,passwd_file=${passwd},ro`])
            : which === 'llmem'
              ? startChild('ll-memfs', process.execPath, [join(DIST, 'll-memfs.js'), MNT.llmem, DATA])
              : startChild('memfs', process.execPath, [join(DIST, 'memfs.js'), MNT.mem, DATA]);
      await waitMounted(MNT[which], true, 60_000, c);
      fsChildren[which] = c;
      return c;
    };
    const stopFs = async (which: keyof typeof MNT): Promise<void> => {
      const c = fsChildren[which];
      if (c) await stopChild(c);
      fsChildren[which] = undefined;
      await unmount(MNT[which]);
    };
    const FILE = {
      s3: join(MNT.s3, 'big.bin'),
      local: join(MNT.local, 'big.bin'),
      rclone: join(MNT.rclone, 'big.bin'),
      s3fs: join(MNT.s3fs, objectKey),
      mem: join(MNT.mem, 'data.bin'),
      llmem: join(MNT.llmem, 'data.bin'),
    };
    const readMBps = async (file: string): Promise<number> => o.sizeMiB / (await timed(`dd if='${file}' of=/dev/null bs=1M status=none`));
    const fio = async (file: string): Promise<number> => {
      const out = await must(
        `fio --name=rand --filename='${file}' --rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1 ` +
          `--time_based --runtime=${o.randomSec} --readonly --output-format=json`,
      );
      return (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ read: { iops: number } }> }).jobs[0]!.read.iops;
    };
    const cacheStats = async (mp: string): Promise<{ bytesFetched: number }> =>
      (JSON.parse(await must(`'${process.execPath}' '${CLI}' --json stats '${mp}'`)) as { cache: { bytesFetched: number } }).cache;

    // Same bytes everywhere?
    await mountSmhfs('s3', DEFAULT_CACHE);
    await mountOther('s3fs');
    await must(`cmp '${FILE.s3}' '${DATA}' && cmp '${FILE.s3fs}' '${DATA}'`);
    await stopFs('s3');
    await stopFs('s3fs');

    const R: Record<string, number[]> = {};
    const add = (k: string, v: number): void => void (R[k] ??= []).push(v);
    let pageCacheFetchedDuringWarm = 0;
    let diskFetchedDuringWarm = 0;
    const S3_CACHE_DIR = join(LIB_S3, 'cache');
    for (let run = 1; run <= o.runs; run++) {
      log(`run ${run}/${o.runs}: raw SDK and smhfs on S3`);
      await dropCaches();
      {
        // CPU seconds per GiB of the reader and of s3rver: the box has few cores and s3rver is JS.
        const s0 = await cpuSeconds(s3rver.pid);
        const out = await must(
          `/usr/bin/time -f 'cpu %U %S' env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER '${process.execPath}' '${join(DIST, 'raw-s3.js')}' ${endpoint} ${BUCKET} ${objectKey} ${o.sizeMiB * MiB} 8 8 2>&1`,
        );
        add('raw', (JSON.parse(out.slice(out.indexOf('{'), out.indexOf('}') + 1)) as { MBps: number }).MBps);
        const [, u, sy] = /cpu ([\d.]+) ([\d.]+)/.exec(out) ?? [];
        add('cpu/GiB raw reader', ((Number(u) + Number(sy)) * 1024) / o.sizeMiB);
        add('cpu/GiB s3rver (raw)', (((await cpuSeconds(s3rver.pid)) - s0) * 1024) / o.sizeMiB);
      }
      if (run === 1) add('raw 1MiB', JSON.parse(await must(`'${process.execPath}' '${join(DIST, 'raw-s3.js')}' ${endpoint} ${BUCKET} ${objectKey} ${o.sizeMiB * MiB} 8 1`)).MBps as number);
      // Cold: empty disk cache (smhfs's default on S3 writes what it reads there).
      await rm(S3_CACHE_DIR, { recursive: true, force: true });
      await dropCaches();
      const cs3 = await mountSmhfs('s3', DEFAULT_CACHE);
      const [m0, s0] = [await cpuSeconds(cs3.pid), await cpuSeconds(s3rver.pid)];
      add('s3 cold', await readMBps(FILE.s3));
      add('cpu/GiB smhfs mount', (((await cpuSeconds(cs3.pid)) - m0) * 1024) / o.sizeMiB);
      add('cpu/GiB s3rver (smhfs)', (((await cpuSeconds(s3rver.pid)) - s0) * 1024) / o.sizeMiB);
      add('s3 warm kernel', await readMBps(FILE.s3));
      await stopFs('s3'); // finishes the disk cache's writes
      // Warm remount: the disk cache holds the file; kernel caches dropped.
      await dropCaches();
      await mountSmhfs('s3', DEFAULT_CACHE);
      add('s3 disk warm', await readMBps(FILE.s3));
      diskFetchedDuringWarm = Math.max(diskFetchedDuringWarm, (await cacheStats(MNT.s3)).bytesFetched);
      await stopFs('s3');
      // Cold without the disk cache (what the read costs when nothing is written to disk).
      await dropCaches();
      await mountSmhfs('s3', DEFAULT_CACHE, undefined, ['--cache-disk-size', '0']);
      add('s3 cold nodisk', await readMBps(FILE.s3));
      await stopFs('s3');
      // Page-cache re-read: a cache that holds the file, filled by one read, kernel cache dropped.
      await mountSmhfs('s3', warmCache, undefined, ['--cache-disk-size', '0']);
      await readMBps(FILE.s3);
      const before = (await cacheStats(MNT.s3)).bytesFetched;
      await dropCaches();
      add('s3 warm pagecache', await readMBps(FILE.s3));
      pageCacheFetchedDuringWarm = Math.max(pageCacheFetchedDuringWarm, (await cacheStats(MNT.s3)).bytesFetched - before);
      await stopFs('s3');

      log(`run ${run}/${o.runs}: smhfs on the local store`);
      await dropCaches();
      await mountSmhfs('local', DEFAULT_CACHE);
      add('local cold', await readMBps(FILE.local));
      add('local warm kernel', await readMBps(FILE.local));
      await stopFs('local');
      await mountSmhfs('local');
      await readMBps(FILE.local);
      await dropCaches();
      add('local warm pagecache', await readMBps(FILE.local));
      await stopFs('local');
      // Random reads: with smhfs's default 256 MiB cache on the file (4× the cache at 1 GiB),
      // and with a cache that holds the file (rclone's full VFS cache keeps all of it on disk).
      await dropCaches();
      await mountSmhfs('local', DEFAULT_CACHE);
      add('local random 256M', await fio(FILE.local));
      await stopFs('local');
      await dropCaches();
      await mountSmhfs('local');
      add('local random', await fio(FILE.local));
      await stopFs('local');

      log(`run ${run}/${o.runs}: s3fs`);
      await dropCaches();
      await mountOther('s3fs');
      add('s3fs cold', await readMBps(FILE.s3fs));
      await stopFs('s3fs');

      log(`run ${run}/${o.runs}: rclone mount --vfs-cache-mode full`);
      await rm(RC_CACHE, { recursive: true, force: true });
      await dropCaches();
      await mountOther('rclone');
      add('rclone cold', await readMBps(FILE.rclone));
      add('rclone warm', await readMBps(FILE.rclone));
      await stopFs('rclone');
      await rm(RC_CACHE, { recursive: true, force: true });
      await dropCaches();
      await mountOther('rclone');
      add('rclone random', await fio(FILE.rclone));
      await stopFs('rclone');

      log(`run ${run}/${o.runs}: in-memory fuse-native (the ceiling)`);
      const cm = await mountOther('mem');
      await dropCaches();
      const c0 = await cpuSeconds(cm.pid);
      add('mem cold', await readMBps(FILE.mem));
      add('cpu/GiB memfs', (((await cpuSeconds(cm.pid)) - c0) * 1024) / o.sizeMiB);
      await dropCaches();
      add('mem random', await fio(FILE.mem));
      await stopFs('mem');

      // smhfs's default binding is ll: its ceiling is the ll in-memory file system (issue 16's
      // local-cold target is against the binding smhfs runs on).
      log(`run ${run}/${o.runs}: in-memory ll (the default binding's ceiling)`);
      await mountOther('llmem');
      await dropCaches();
      add('llmem cold', await readMBps(FILE.llmem));
      await dropCaches();
      add('llmem random', await fio(FILE.llmem));
      await stopFs('llmem');
    }

    // ── RSS: a 4 GiB file through a 256 MiB cache ──
    const rss: Record<string, number> = {};
    if (o.rssGiB > 0) {
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
        await dropCaches();
        const r = await mountSmhfs(which, '256M', lib);
        for (const bs of ['4k', '128k']) {
          await must(
            `fio --name=rss --filename='${join(MNT[which], 'rss.bin')}' --rw=randread --bs=${bs} --ioengine=psync --numjobs=2 ` +
              `--time_based --runtime=${o.randomSec} --readonly --output-format=json`,
          );
        }
        rss[`${which} random`] = await peakRss(r.pid);
        await stopFs(which);
        await rm(lib, { recursive: true, force: true });
      }
      await rm(bigFile, { force: true });
    }

    // ── report ──
    const m = (k: string): number => median(R[k] ?? []);
    type Row = [name: string, unit: string, ours: number, peer: number, target: number | undefined, higherIsBetter: boolean];
    const rows: Row[] = [
      ['S3 cold seq read vs raw SDK (8×8 MiB GETs)', 'MB/s', m('s3 cold'), m('raw'), 0.9, true],
      ['S3 cold seq read vs s3fs', 'MB/s', m('s3 cold'), m('s3fs cold'), 1.0, true],
      ['random 4 KiB, 256 MiB cache, file 4× vs rclone', 'IOPS', m('local random 256M'), m('rclone random'), 1.0, true],
      ['S3 warm remount (disk cache) vs local cold', 'MB/s', m('s3 disk warm'), m('local cold'), 0.9, true],
      ['local cold seq vs ll in-memory fs (ceiling)', 'MB/s', m('local cold'), m('llmem cold'), 0.8, true],
      ['S3 cold, no disk cache, vs raw SDK', 'MB/s', m('s3 cold nodisk'), m('raw'), undefined, true],
      ['S3 warm re-read, page cache vs local store', 'MB/s', m('s3 warm pagecache'), m('local warm pagecache'), undefined, true],
      ['S3 warm re-read, kernel cache vs local', 'MB/s', m('s3 warm kernel'), m('local warm kernel'), undefined, true],
      ['cold seq read vs rclone (vfs full)', 'MB/s', m('local cold'), m('rclone cold'), undefined, true],
      ['warm seq read vs rclone (vfs full)', 'MB/s', m('local warm kernel'), m('rclone warm'), undefined, true],
      ['random 4 KiB psync vs rclone (cache ≥ file)', 'IOPS', m('local random'), m('rclone random'), undefined, true],
      ['ceiling: cold seq, smhfs local vs memfs', 'MB/s', m('local cold'), m('mem cold'), undefined, true],
      ['ceiling: random 4 KiB, smhfs 256M vs ll memfs', 'IOPS', m('local random 256M'), m('llmem random'), undefined, true],
      ['ceiling: random 4 KiB, smhfs 256M vs memfs', 'IOPS', m('local random 256M'), m('mem random'), undefined, true],
      ['ceiling: random 4 KiB, memfs vs rclone', 'IOPS', m('mem random'), m('rclone random'), undefined, true],
      ['ceiling: raw SDK (server limit) vs s3fs', 'MB/s', m('raw'), m('s3fs cold'), undefined, true],
    ];
    const lines: string[] = [];
    lines.push(
      `smhfs remote/peers: ${o.sizeMiB} MiB random bytes, median of ${o.runs} run(s); s3rver ${endpoint} in its own process; ` +
        `raw SDK = 8 concurrent ranged GETs (smhfs page cache: 8 concurrent requests)`,
    );
    lines.push('');
    lines.push('| test                                           | unit |   smhfs |    peer | ratio | target | ok   |');
    lines.push('|------------------------------------------------|------|---------|---------|-------|--------|------|');
    for (const [name, unit, ours, peer, target] of rows) {
      const ratio = ours / peer;
      const okMark = target === undefined ? '' : ratio >= target ? 'PASS' : 'NO';
      lines.push(
        `| ${name.padEnd(46)} | ${unit.padEnd(4)} | ${ours.toFixed(0).padStart(7)} | ${peer.toFixed(0).padStart(7)} | ${ratio.toFixed(2).padStart(5)} | ${(target === undefined ? '-' : `≥${target}`).padStart(6)} | ${okMark.padEnd(4)} |`,
      );
    }
    if (o.rssGiB > 0) {
      for (const which of ['local', 's3', 'local random', 's3 random'] as const) {
        if (rss[which] === undefined) continue;
        const mibUsed = rss[which]! / MiB;
        const what = which.endsWith('random') ? `peak RSS, random 4K+128K, 256M cache, ${which.split(' ')[0]}` : `peak RSS, ${o.rssGiB} GiB read, 256 MiB cache, ${which}`;
        lines.push(
          `| ${what.padEnd(46)} | MiB  | ${mibUsed.toFixed(0).padStart(7)} | ${'350'.padStart(7)} |     - |  ≤350 | ${(mibUsed <= 350 ? 'PASS' : 'NO').padEnd(4)} |`,
        );
      }
    }
    lines.push('');
    lines.push(`all runs: ${JSON.stringify(Object.fromEntries(Object.entries(R).filter(([k]) => !k.startsWith('cpu/')).map(([k, v]) => [k, v.map((x) => Math.round(x))])))}`);
    lines.push(
      `CPU seconds per GiB on the S3 cold read (medians; ${(await must('nproc')).trim()} CPUs): raw reader ${m('cpu/GiB raw reader').toFixed(2)} + s3rver ${m('cpu/GiB s3rver (raw)').toFixed(2)}; ` +
        `smhfs mount ${m('cpu/GiB smhfs mount').toFixed(2)} + s3rver ${m('cpu/GiB s3rver (smhfs)').toFixed(2)} (plus the kernel's FUSE and page-cache work for dd); ` +
        `the in-memory fuse-native file system alone ${m('cpu/GiB memfs').toFixed(2)} (raw reader includes its ~0.3 s start)`,
    );
    if (o.rssGiB > 0) lines.push(`RSS test read speed: ${Object.entries(rss).filter(([k]) => k.endsWith('MBps')).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
    lines.push(
      `(MB = MiB. smhfs runs with its defaults (256M cache; readahead 16M local, 64M S3). Cold: caches dropped, fresh mount. ` +
        `"page cache": a mount with --cache-size ${warmCache} read the file once, kernel cache dropped, re-read; ` +
        `bytes fetched from S3 during that re-read: ${pageCacheFetchedDuringWarm}; during the warm remount (disk cache): ${diskFetchedDuringWarm}. Upload to s3rver ${uploadMBps.toFixed(0)} MB/s. ` +
        `raw SDK with 1 MiB GETs: ${m('raw 1MiB').toFixed(0)} MB/s. random = fio randread 4k psync ${o.randomSec} s from a cold mount (caches dropped), ` +
        `smhfs --cache-size ${warmCache} unless marked. ` +
        `${((Date.now() - started) / 1000).toFixed(0)} s in all)`,
    );
    const report = lines.join('\n');
    await writeFile(join(o.root, '.tmp', 'bench-remote-result.md'), `${report}\n`);
    return report;
  } finally {
    await cleanupAll();
    if (!o.keep) await rm(BASE, { recursive: true, force: true }).catch(() => undefined);
  }
}
