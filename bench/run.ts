/**
 * `make bench`: smhfs against bindfs (`-o big_writes`) over the same bytes, in one run.
 *
 *   1 GiB sequential read, cold (caches dropped, both file systems remounted) and warm (again)
 *   256 MiB sequential write (wall time of `dd`, including its close: for smhfs that is the commit)
 *   10,000 symlink, readlink, and stat through the link
 *
 * Needs root (drop_caches, mounts), bindfs and fusermount. Data lives in `.tmp/bench` of the
 * repo (a disk-backed folder; /tmp may be tmpfs) and is removed afterwards (`--keep` keeps it).
 * Options: `--size-mib N` (read file, default 1024), `--write-mib N` (256), `--links N` (10000),
 * `--runs N` (3; the median is reported), `--only local|binding|remote` (default all three;
 * binding is bench/binding.ts — the two FUSE bindings' ceilings against bindfs, pinned and
 * unpinned —, remote is bench/remote.ts, with `--rows local,random,s3,s3fs,rclone,memfs,rss`
 * (default all), `--pin yes|no|both` (both), `--rclone-flags '…'` (rclone's flags for the
 * random rows), `--random-sec N`, `--rss-gib N` (4; 0 skips) and
 * `--no-rss-s3`).
 *
 * `--scale` runs only the scale bench (bench/scale.ts; `make bench-scale`): `--sizes 10000,100000`,
 * `--mem-files N` (300000; 0 skips the memory test), `--pin both|yes|no` (both), `--steps ls,find`
 * (only those of stat, ls, find after the create; default every step and the store part),
 * `--rounds N` (ls -l and find: the median of N rounds; 1).
 */
import { spawn, execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropCaches, median, mounted, must, sh, sleep, timed, waitMounted } from './util.js';
import { ROW_GROUPS, type RowGroup } from './remote.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const SIZE_MIB = arg('size-mib', 1024);
const WRITE_MIB = arg('write-mib', 256);
const LINKS = arg('links', 10000);
const RUNS = arg('runs', 3);
const KEEP = process.argv.includes('--keep');

const BASE = join(ROOT, '.tmp', 'bench');
const PLAIN = join(BASE, 'plain');
const LIB = join(BASE, 'lib');
const MNT_SMHFS = join(BASE, 'mnt-smhfs');
const MNT_BINDFS = join(BASE, 'mnt-bindfs');
const MNT_MEMFS = join(BASE, 'mnt-memfs');
const MNT_DURABLE = join(BASE, 'mnt-durable');
const DURABLE_DIR = join(BASE, 'durable-files');
const SRC = join(BASE, 'write-src.bin');

// ───────────────────────────── the two file systems ─────────────────────────────

let smhfsPid: number | undefined;

async function mountSmhfs(): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'mount', MNT_SMHFS, '--library', LIB], { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  smhfsPid = child.pid;
  child.on('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`smhfs mount exited ${code}: ${err}\n`);
  });
  await waitMounted(MNT_SMHFS);
}

async function unmountSmhfs(): Promise<void> {
  if (!(await mounted(MNT_SMHFS))) return;
  const pid = smhfsPid;
  if (pid !== undefined) process.kill(pid, 'SIGTERM');
  await waitMounted(MNT_SMHFS, false);
  // wait for the process to exit (it commits and closes the library)
  for (let i = 0; pid !== undefined && i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await sleep(25);
  }
  smhfsPid = undefined;
}

async function mountBindfs(): Promise<void> {
  await must(`bindfs -o big_writes '${PLAIN}' '${MNT_BINDFS}'`);
  await waitMounted(MNT_BINDFS);
}

async function unmountBindfs(): Promise<void> {
  if (await mounted(MNT_BINDFS)) await must(`fusermount -u '${MNT_BINDFS}'`);
  await waitMounted(MNT_BINDFS, false);
}

// The fuse-native ceiling (bench/memfs.ts): writes thrown away, links in a Map. Only the write and
// link tests run on it; what it reaches is the most any fuse-native file system can do here.
// 'durable' is the same program keeping writes the way B5 asks (--durable-writes: writeSync into a
// real file, fsync at close): the write ceiling for a fuse-native file system that keeps data.
const memPids: Partial<Record<'memfs' | 'durable', number>> = {};

async function mountMemfs(which: 'memfs' | 'durable' = 'memfs'): Promise<void> {
  const tiny = join(BASE, 'memfs-data.bin');
  await writeFile(tiny, 'x');
  await mkdir(DURABLE_DIR, { recursive: true });
  const mp = which === 'memfs' ? MNT_MEMFS : MNT_DURABLE;
  const extra = which === 'durable' ? ['--durable-writes', DURABLE_DIR] : [];
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'memfs.js'), mp, tiny, ...extra], { stdio: ['ignore', 'ignore', 'inherit'] });
  memPids[which] = child.pid;
  await waitMounted(mp);
}

async function unmountMemfs(which: 'memfs' | 'durable' = 'memfs'): Promise<void> {
  const mp = which === 'memfs' ? MNT_MEMFS : MNT_DURABLE;
  if (!(await mounted(mp))) return;
  const pid = memPids[which];
  if (pid !== undefined) process.kill(pid, 'SIGTERM');
  await waitMounted(mp, false);
  delete memPids[which];
}

type Fs = 'smhfs' | 'bindfs' | 'memfs' | 'durable';
const MNT: Record<Fs, string> = { smhfs: MNT_SMHFS, bindfs: MNT_BINDFS, memfs: MNT_MEMFS, durable: MNT_DURABLE };
const mountOf = (fs: Fs) => (fs === 'smhfs' ? mountSmhfs() : fs === 'bindfs' ? mountBindfs() : mountMemfs(fs));
const unmountOf = (fs: Fs) => (fs === 'smhfs' ? unmountSmhfs() : fs === 'bindfs' ? unmountBindfs() : unmountMemfs(fs));

// ───────────────────────────── measurements ─────────────────────────────

/**
 * The file each file system reads its bytes from. Before a cold read it is read once directly, so
 * the virtual disk's host-side cache holds it equally for both (this machine's "disk" ran from
 * 600 MB/s to 2.2 GB/s depending on what the host had cached), then the guest's caches are dropped.
 */
async function backingFile(fs: Fs): Promise<string> {
  if (fs !== 'smhfs') return `${PLAIN}/big.bin`;
  return (await must(`find '${LIB}/blobs' -type f -size +${Math.max(1, SIZE_MIB - 1)}M | head -1`)).trim();
}

async function readCold(fs: Fs): Promise<number> {
  await unmountOf(fs);
  await must(`cat '${await backingFile(fs)}' > /dev/null`);
  await dropCaches();
  await mountOf(fs);
  const s = await timed(`dd if='${MNT[fs]}/big.bin' of=/dev/null bs=1M status=none`);
  return SIZE_MIB / s;
}

async function readWarm(fs: Fs): Promise<number> {
  await must(`dd if='${MNT[fs]}/big.bin' of=/dev/null bs=1M status=none`); // make sure it is warm
  const s = await timed(`dd if='${MNT[fs]}/big.bin' of=/dev/null bs=1M status=none`);
  return SIZE_MIB / s;
}

async function write(fs: Fs, i: number): Promise<number> {
  await must(`cat '${SRC}' > /dev/null`); // the source comes from memory: what is timed is the write
  const s = await timed(`dd if='${SRC}' of='${MNT[fs]}/w${i}.bin' bs=1M status=none`);
  await must(`rm -f '${MNT[fs]}/w${i}.bin'`);
  return WRITE_MIB / s;
}

/** symlink, readlink and stat-through-link, each LINKS times, timed in one child process. */
async function links(fs: Fs, i: number): Promise<{ symlink: number; readlink: number; stat: number }> {
  const dir = `${MNT[fs]}/links${i}`;
  const script = `
    const fs = require('fs'); const dir = process.argv[1]; const n = Number(process.argv[2]);
    fs.mkdirSync(dir); fs.writeFileSync(dir + '/target.txt', 'target');
    const t = () => Number(process.hrtime.bigint()) / 1e9;
    let t0 = t(); for (let i = 0; i < n; i++) fs.symlinkSync('target.txt', dir + '/l' + i); const a = t() - t0;
    t0 = t(); for (let i = 0; i < n; i++) fs.readlinkSync(dir + '/l' + i); const b = t() - t0;
    t0 = t(); for (let i = 0; i < n; i++) fs.statSync(dir + '/l' + i); const c = t() - t0;
    process.stdout.write(JSON.stringify({ symlink: n / a, readlink: n / b, stat: n / c }));`;
  const out = await new Promise<string>((res, rej) =>
    execFile(process.execPath, ['-e', script, dir, String(LINKS)], { encoding: 'utf8', timeout: 600_000 }, (err, stdout, stderr) =>
      err ? rej(new Error(`links benchmark on ${fs}: ${stderr || err.message}`)) : res(stdout),
    ),
  );
  return JSON.parse(out) as { symlink: number; readlink: number; stat: number };
}

/** `ln -s` as a user runs it: one process per link (what the issue's bindfs figures look like). */
async function lnLoop(fs: Fs, i: number, n = 1000): Promise<number> {
  const dir = `${MNT[fs]}/ln${i}`;
  const s = await timed(`mkdir '${dir}' && cd '${dir}' && echo t > target.txt && for i in $(seq ${n}); do ln -s target.txt l$i; done`);
  return n / s;
}

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (drop_caches, mounts)');
  for (const tool of ['bindfs', 'fusermount', 'dd']) {
    if ((await sh(`command -v ${tool}`)).code !== 0) throw new Error(`${tool} is not installed (make bench-deps)`);
  }
  const started = Date.now();
  await cleanupMounts();
  await rm(BASE, { recursive: true, force: true });
  await mkdir(PLAIN, { recursive: true });
  await mkdir(MNT_SMHFS, { recursive: true });
  await mkdir(MNT_BINDFS, { recursive: true });
  await mkdir(MNT_MEMFS, { recursive: true });
  await mkdir(MNT_DURABLE, { recursive: true });
  process.stderr.write(`bench: preparing ${SIZE_MIB} MiB of random bytes in ${BASE}…\n`);
  await must(`head -c ${SIZE_MIB}M /dev/urandom > '${PLAIN}/big.bin'`);
  await must(`head -c ${WRITE_MIB}M /dev/urandom > '${SRC}'`);
  await must(`node '${CLI}' --library '${LIB}' init`);
  await must(`node '${CLI}' --library '${LIB}' put '${PLAIN}/big.bin' big.bin`);
  await mountSmhfs();
  await mountBindfs();
  await mountMemfs();
  await mountMemfs('durable');
  const cmp = await sh(`cmp '${MNT_SMHFS}/big.bin' '${MNT_BINDFS}/big.bin'`);
  if (cmp.code !== 0) throw new Error(`the two mounts do not hold the same bytes: ${cmp.stdout}${cmp.stderr}`);

  const results: Record<string, Record<Fs, number[]>> = {};
  const add = (k: string, fs: Fs, v: number) => ((results[k] ??= { smhfs: [], bindfs: [], memfs: [], durable: [] })[fs].push(v));
  for (let i = 0; i < RUNS; i++) {
    for (const fs of ['bindfs', 'smhfs', 'memfs', 'durable'] as const) {
      process.stderr.write(`bench: run ${i + 1}/${RUNS} ${fs}\n`);
      if (fs === 'durable') {
        add('write', fs, await write(fs, i));
        continue;
      }
      if (fs !== 'memfs') {
        add('read cold', fs, await readCold(fs));
        add('read warm', fs, await readWarm(fs));
      }
      add('write', fs, await write(fs, i));
      const l = await links(fs, i);
      add('symlink', fs, l.symlink);
      add('readlink', fs, l.readlink);
      add('stat via link', fs, l.stat);
      add('ln -s (process each)', fs, await lnLoop(fs, i));
    }
  }

  // Issue 11's targets (ratios to bindfs): cold read ≥ 0.9, warm ≥ 1.0, the durable write and the link ops ≥ 1.0.
  const rows: Array<[string, string, number, number, number | undefined]> = [
    ['read cold', 'MB/s', 0, 0, 0.9],
    ['read warm', 'MB/s', 0, 0, 1.0],
    ['write', 'MB/s', 0, 0, 1.0],
    ['symlink', 'ops/s', 0, 0, 1.0],
    ['readlink', 'ops/s', 0, 0, 1.0],
    ['stat via link', 'ops/s', 0, 0, 1.0],
    ['ln -s (process each)', 'ops/s', 0, 0, undefined],
  ];
  const lines: string[] = [];
  lines.push(`smhfs (default binding, unpinned) vs bindfs -o big_writes: ${SIZE_MIB} MiB read, ${WRITE_MIB} MiB write, ${LINKS} links; median of ${RUNS} runs`);
  lines.push('');
  lines.push('| test                 | unit  |     smhfs |    bindfs | ratio | target | ok  | ceiling | ceiling/bindfs | smhfs/ceiling |');
  lines.push('|----------------------|-------|-----------|-----------|-------|--------|-----|---------|----------------|---------------|');
  for (const r of rows) {
    const [name, unit, , , target] = r;
    const s = median(results[name]!.smhfs);
    const b = median(results[name]!.bindfs);
    const ratio = s / b;
    const okMark = target === undefined ? '' : ratio >= target ? 'yes' : 'NO';
    const memRuns = results[name]!.memfs;
    const c = memRuns.length > 0 ? median(memRuns) : undefined;
    const ceiling = c === undefined ? '      - |              - |             - |' : `${c.toFixed(0).padStart(7)} | ${(c / b).toFixed(2).padStart(14)} | ${(s / c).toFixed(2).padStart(13)} |`;
    lines.push(
      `| ${name.padEnd(20)} | ${unit.padEnd(5)} | ${s.toFixed(0).padStart(9)} | ${b.toFixed(0).padStart(9)} | ${ratio.toFixed(2).padStart(5)} | ${(target === undefined ? '-' : `≥${target}`).padStart(6)} | ${okMark.padEnd(3)} | ${ceiling}`,
    );
  }
  const w = (f: Fs) => median(results['write']![f]);
  lines.push('');
  lines.push(
    `write ceiling when the data is kept as B5 asks (bench/memfs.ts --durable-writes: writeSync into a file, fsync at close; no hashing, no database): ` +
      `${w('durable').toFixed(0)} MB/s = ${(w('durable') / w('bindfs')).toFixed(2)}× bindfs; smhfs = ${(w('smhfs') / w('durable')).toFixed(2)}× of it`,
  );
  lines.push('');
  lines.push(`all runs: ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([f, xs]) => [f, xs.map((x) => Math.round(x))]))])))}`);
  lines.push(
    `(MB = MiB; write = wall time of dd including close, i.e. the smhfs commit; symlink/readlink/stat = ${LINKS} calls each in one process; ` +
      `ln -s = 1000 ln processes; ceiling = bench/memfs.ts, an in-memory fuse-native file system that throws writes away; ${((Date.now() - started) / 1000).toFixed(0)} s in all)`,
  );
  const report = lines.join('\n');
  process.stdout.write(`${report}\n`);
  await writeFile(join(ROOT, '.tmp', 'bench-result.md'), `${report}\n`);
}

async function cleanupMounts(): Promise<void> {
  await unmountSmhfs().catch(() => undefined);
  await unmountMemfs().catch(() => undefined);
  await unmountMemfs('durable').catch(() => undefined);
  for (const mp of [MNT_SMHFS, MNT_BINDFS, MNT_MEMFS, MNT_DURABLE]) {
    if (await mounted(mp)) await sh(`fusermount -uz '${mp}' || umount -l '${mp}'`);
  }
}

// `--only local|binding|remote` picks a part (default all): local = the bindfs comparison above,
// binding = bench/binding.ts (fuse-native and libfuse 3 ceilings vs bindfs, pinned and unpinned),
// remote = bench/remote.ts (S3 via s3rver, rclone, s3fs, the fuse-native ceiling, peak RSS).
// `--scale` is the scale bench alone (bench/scale.ts).
const SCALE = process.argv.includes('--scale');
const ONLY = (() => {
  if (SCALE) return 'scale';
  const i = process.argv.indexOf('--only');
  const v = i > 0 ? process.argv[i + 1] : 'all';
  if (v !== 'all' && v !== 'local' && v !== 'remote' && v !== 'binding') throw new Error(`--only ${v}: expected local, binding or remote`);
  return v;
})();

if (SCALE) {
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (drop_caches, mounts)');
  const i = process.argv.indexOf('--sizes');
  const sizes = (i > 0 ? process.argv[i + 1]! : '10000,100000').split(',').map(Number);
  if (sizes.length < 1 || sizes.some((n) => !Number.isInteger(n) || n < 10)) throw new Error('--sizes: whole numbers, e.g. 10000,100000');
  const p = process.argv.indexOf('--pin');
  const pinArg = p > 0 ? process.argv[p + 1] : 'both';
  if (pinArg !== 'both' && pinArg !== 'yes' && pinArg !== 'no') throw new Error(`--pin ${pinArg}: expected both, yes or no`);
  const { runScale } = await import('./scale.js');
  const report = await runScale({
    root: ROOT,
    sizes,
    memFiles: arg('mem-files', 300_000),
    pinned: pinArg === 'both' ? [false, true] : [pinArg === 'yes'],
    keep: KEEP,
    // `--steps ls,find` (stat, ls, find; default all) and `--rounds N` for ls and find's median
    ...(process.argv.includes('--steps') ? { steps: process.argv[process.argv.indexOf('--steps') + 1]!.split(',') } : {}),
    rounds: arg('rounds', 1),
  });
  process.stdout.write(`${report}\n`);
}

try {
  if (ONLY === 'all' || ONLY === 'local') await main();
} finally {
  if (!SCALE) await cleanupMounts();
  if (!KEEP && !SCALE) await rm(BASE, { recursive: true, force: true }).catch(() => undefined);
}
if (ONLY === 'all' || ONLY === 'binding') {
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (mounts, taskset of other processes)');
  const { runBinding } = await import('./binding.js');
  const report = await runBinding({
    root: ROOT,
    sizeMiB: SIZE_MIB,
    writeMiB: WRITE_MIB,
    links: LINKS,
    runs: RUNS,
    randomSec: arg('random-sec', 4),
    keep: KEEP,
  });
  process.stdout.write(`\n${report}\n`);
}
// `--rows local,random,…` (remote): which groups of rows run (bench/remote.ts ROW_GROUPS; default
// all), so each can run alone in a few minutes. `--pin yes|no|both` (remote; default both): the
// placements of the local, random, s3 and s3fs groups.
function remoteRows(): Set<RowGroup> {
  const i = process.argv.indexOf('--rows');
  if (i < 0) return new Set(ROW_GROUPS);
  const asked = (process.argv[i + 1] ?? '').split(',').filter((x) => x !== '');
  const bad = asked.filter((x) => !(ROW_GROUPS as readonly string[]).includes(x));
  if (asked.length === 0 || bad.length > 0) throw new Error(`--rows ${asked.join(',')}: expected some of ${ROW_GROUPS.join(',')}`);
  return new Set(asked as RowGroup[]);
}
function remotePlacements(): Array<'pinned' | 'unpinned'> {
  const i = process.argv.indexOf('--pin');
  const v = i > 0 ? process.argv[i + 1] : 'both';
  if (v === 'both') return ['pinned', 'unpinned'];
  if (v === 'yes') return ['pinned'];
  if (v === 'no') return ['unpinned'];
  throw new Error(`--pin ${v}: expected both, yes or no`);
}

if (ONLY === 'all' || ONLY === 'remote') {
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (drop_caches, mounts)');
  const { runRemote } = await import('./remote.js');
  const report = await runRemote({
    root: ROOT,
    sizeMiB: SIZE_MIB,
    runs: RUNS,
    randomSec: arg('random-sec', 10),
    rssGiB: arg('rss-gib', 4),
    rssS3: !process.argv.includes('--no-rss-s3'),
    rows: remoteRows(),
    ...(process.argv.includes('--rclone-flags') ? { rcloneFlags: process.argv[process.argv.indexOf('--rclone-flags') + 1]!.split(' ').filter((x) => x !== '') } : {}),
    placements: remotePlacements(),
    keep: KEEP,
  });
  process.stdout.write(`\n${report}\n`);
}
