/**
 * Two builds of smhfs side by side, in one run: is a refactor free? (issue 10: "same-run ratios
 * within noise"). Each build mounts its own library holding the same file; the runs alternate
 * between the builds (old first, then new first) so drift on the machine hits both alike.
 *
 *   node dist/bench/compare.js --old /path/to/other/checkout   (built: its dist/src/cli/main.js)
 *
 * Measured per build, median of `--runs` (3): a `--size-mib` (default 512) sequential read,
 * cold (caches dropped, remounted) and warm, a `--write-mib` (128) write with its close, and
 * `--links` (5000) symlink, readlink and stat through the link from one process. `--pin both|yes|no`
 * (both): pinned runs put the mount and the client on CPU 0 (`taskset -c 0`: the CPU cost per
 * request), unpinned ones let them wake each other across CPUs. Needs root (drop_caches, mounts).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, dropCaches, median, must, startChild, stopChild, timed, trackMount, waitMounted, type Child } from './util.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function opt(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const num = (name: string, def: number): number => Number(opt(name) ?? def);
const SIZE_MIB = num('size-mib', 512);
const WRITE_MIB = num('write-mib', 128);
const LINKS = num('links', 5000);
const RUNS = num('runs', 3);
const PIN = opt('pin') ?? 'both';

interface Build {
  name: 'old' | 'new';
  cli: string;
  lib: string;
  mnt: string;
  child?: Child;
}

const BASE = join(ROOT, '.tmp', 'bench-compare');
type Metric = 'read cold MB/s' | 'read warm MB/s' | 'write MB/s' | 'symlink/s' | 'readlink/s' | 'stat via link/s';
const METRICS: Metric[] = ['read cold MB/s', 'read warm MB/s', 'write MB/s', 'symlink/s', 'readlink/s', 'stat via link/s'];

const pinCmd = (pinned: boolean): string => (pinned ? 'taskset -c 0 ' : '');

async function mount(b: Build, pinned: boolean): Promise<void> {
  const args = [b.cli, 'mount', b.mnt, '--library', b.lib];
  b.child = pinned ? startChild(`smhfs-${b.name}`, 'taskset', ['-c', '0', process.execPath, ...args]) : startChild(`smhfs-${b.name}`, process.execPath, args);
  trackMount(b.mnt);
  await waitMounted(b.mnt, true, 30_000, b.child);
}

async function unmount(b: Build): Promise<void> {
  if (b.child) await stopChild(b.child);
  b.child = undefined;
  await waitMounted(b.mnt, false, 15_000).catch(() => undefined);
}

async function links(b: Build, run: string, pinned: boolean): Promise<Record<'symlink/s' | 'readlink/s' | 'stat via link/s', number>> {
  const dir = `${b.mnt}/links-${run}`;
  const script = `
    const fs = require('fs'); const dir = process.argv[1]; const n = Number(process.argv[2]);
    fs.mkdirSync(dir); fs.writeFileSync(dir + '/target.txt', 'target');
    const t = () => Number(process.hrtime.bigint()) / 1e9;
    let t0 = t(); for (let i = 0; i < n; i++) fs.symlinkSync('target.txt', dir + '/l' + i); const a = t() - t0;
    t0 = t(); for (let i = 0; i < n; i++) fs.readlinkSync(dir + '/l' + i); const b = t() - t0;
    t0 = t(); for (let i = 0; i < n; i++) fs.statSync(dir + '/l' + i); const c = t() - t0;
    process.stdout.write(JSON.stringify({ 'symlink/s': n / a, 'readlink/s': n / b, 'stat via link/s': n / c }));`;
  const [cmd, args] = pinned ? ['taskset', ['-c', '0', process.execPath, '-e', script, dir, String(LINKS)]] : [process.execPath, ['-e', script, dir, String(LINKS)]];
  const out = await new Promise<string>((res, rej) =>
    execFile(cmd as string, args as string[], { encoding: 'utf8', timeout: 600_000 }, (err, stdout, stderr) => (err ? rej(new Error(stderr || err.message)) : res(stdout))),
  );
  return JSON.parse(out) as Record<'symlink/s' | 'readlink/s' | 'stat via link/s', number>;
}

async function once(b: Build, run: string, pinned: boolean): Promise<Record<Metric, number>> {
  const p = pinCmd(pinned);
  await dropCaches();
  await mount(b, pinned);
  try {
    const cold = SIZE_MIB / (await timed(`${p}dd if='${b.mnt}/big.bin' of=/dev/null bs=1M status=none`));
    const warm = SIZE_MIB / (await timed(`${p}dd if='${b.mnt}/big.bin' of=/dev/null bs=1M status=none`));
    await must(`cat '${BASE}/write-src.bin' > /dev/null`);
    const write = WRITE_MIB / (await timed(`${p}dd if='${BASE}/write-src.bin' of='${b.mnt}/w-${run}.bin' bs=1M status=none`));
    await must(`rm -f '${b.mnt}/w-${run}.bin'`);
    const l = await links(b, run, pinned);
    return { 'read cold MB/s': cold, 'read warm MB/s': warm, 'write MB/s': write, ...l };
  } finally {
    await unmount(b);
  }
}

async function main(): Promise<void> {
  const oldDir = opt('old');
  if (!oldDir) throw new Error('--old DIR: a checkout of the other build (with dist/ built)');
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (drop_caches, mounts)');
  const builds: Build[] = [
    { name: 'old', cli: join(resolve(oldDir), 'dist', 'src', 'cli', 'main.js'), lib: join(BASE, 'lib-old'), mnt: join(BASE, 'mnt-old') },
    { name: 'new', cli: join(ROOT, 'dist', 'src', 'cli', 'main.js'), lib: join(BASE, 'lib-new'), mnt: join(BASE, 'mnt-new') },
  ];
  for (const b of builds) if (!existsSync(b.cli)) throw new Error(`${b.cli} is missing: build that checkout first`);
  await rm(BASE, { recursive: true, force: true });
  await mkdir(BASE, { recursive: true });
  await must(`head -c ${SIZE_MIB}M /dev/urandom > '${BASE}/big.bin'`);
  await must(`head -c ${WRITE_MIB}M /dev/urandom > '${BASE}/write-src.bin'`);
  for (const b of builds) {
    await mkdir(b.mnt, { recursive: true });
    await must(`'${process.execPath}' '${b.cli}' --library '${b.lib}' init`);
    await must(`'${process.execPath}' '${b.cli}' --library '${b.lib}' put '${BASE}/big.bin' big.bin`);
  }
  const modes = PIN === 'both' ? [true, false] : [PIN === 'yes'];
  const lines: string[] = [];
  for (const pinned of modes) {
    const got: Record<string, Record<Metric, number[]>> = {};
    for (const b of builds) got[b.name] = Object.fromEntries(METRICS.map((m) => [m, [] as number[]])) as Record<Metric, number[]>;
    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 === 0 ? builds : [...builds].reverse();
      for (const b of order) {
        const res = await once(b, `${pinned ? 'p' : 'u'}${r}`, pinned);
        for (const m of METRICS) got[b.name]![m].push(res[m]);
        process.stderr.write(`compare: ${pinned ? 'pinned' : 'unpinned'} run ${r + 1}/${RUNS} ${b.name}: ${METRICS.map((m) => `${m} ${res[m].toFixed(0)}`).join(', ')}\n`);
      }
    }
    lines.push(`\n${pinned ? 'pinned (taskset -c 0: mount and client on one CPU)' : 'unpinned'}, medians of ${RUNS}:`);
    lines.push(`| metric | old | new | new / old |`, `|---|---|---|---|`);
    for (const m of METRICS) {
      const o = median(got.old![m]);
      const n = median(got.new![m]);
      lines.push(`| ${m} | ${o.toFixed(0)} | ${n.toFixed(0)} | ${(n / o).toFixed(2)} |`);
    }
  }
  process.stdout.write(`smhfs old (${oldDir}) vs new (${ROOT}), ${SIZE_MIB} MiB read, ${WRITE_MIB} MiB write, ${LINKS} links\n${lines.join('\n')}\n`);
  await rm(BASE, { recursive: true, force: true });
}

main().then(
  () => cleanupAll(),
  async (e: unknown) => {
    process.stderr.write(`compare: ${(e as Error).stack ?? String(e)}\n`);
    await cleanupAll();
    process.exitCode = 1;
  },
);
