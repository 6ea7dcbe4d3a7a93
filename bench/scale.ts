/**
 * `make bench-scale` (`node dist/bench/run.js --scale`): does the cost of an operation grow with
 * the library? smhfs and bindfs over the same operations, at each size (default 10,000 and
 * 100,000 files), measured in the same run, unpinned and pinned to one CPU (`taskset -c 0` for
 * the file system and its client alike). Issue 15's targets are printed beside the numbers.
 *
 * Per size, on fresh mounts of both, side by side; each step runs on smhfs and at once on bindfs
 * (files are empty, in directories of 10,000):
 *   create        open(O_CREAT)+close of every file                        µs per file
 *   stat          lstat of every file (kernel dentries dropped first)       µs per file
 *   ls -l         of one 10,000-entry directory, cold, then again at once   µs per entry
 *   find          of the whole tree (dentries dropped first)                µs per entry
 *   symlink       FILES/10 relative links to files across the tree          µs per link
 *   readlink      of each                                                   µs per link
 *   df            statfs(2), 5,000 times                                    µs per call
 *   rm same-named one file with 2,000 bound links all called `cover`      ms
 *   rm -r         of the files (on smhfs each linked file takes its link to the bin)  µs per file
 *   RSS / node    growth of the mount process's RSS over the stat step      bytes per file
 * and once, unpinned: RSS growth after stat-ing MEM_FILES files (default 300,000) and df there;
 * and, on the store alone (bench/scale-store.ts), how long the rules that must stay one
 * transaction hold the thread at their largest, and one bounded step of a bin empty.
 *
 * Each is reported as wall time and as CPU time (the client's plus the file system process's):
 * on a machine shared with other work the wall time of one run moves by 2× either way, the CPU
 * time much less. Growth = µs at the largest size / µs at the smallest (target ≤ 1.2); ratio =
 * bindfs µs / smhfs µs (≥ 1 is as fast as bindfs). Every step runs in its own process
 * (bench/scale-worker.ts, or ls/find/rm); the file systems run in theirs. Data lives in
 * `.tmp/bench-scale`.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, cpuSeconds, must, sh, startChild, stopChild, trackMount, unmount, waitMounted, type Child } from './util.js';

export interface ScaleOptions {
  root: string;
  sizes: number[];
  memFiles: number;
  pinned: Array<boolean>;
  keep: boolean;
  /**
   * Only these steps (`--steps find,ls,rm`; default all). `create` always runs (the others need the
   * files), and the store part runs only with every step.
   */
  steps?: string[];
  /** The ls -l and find steps: the median of this many rounds (`--rounds`, default 1). */
  rounds?: number;
}

type Fs = 'smhfs' | 'bindfs';
const FSES: Fs[] = ['smhfs', 'bindfs'];
const PER_DIR = 10_000;
const COVER_LINKS = 2000;
const STATFS_CALLS = 5000;

interface Step {
  name: string;
  unit: string;
  /** Issue 15 target, shown beside: growth ≤ (µs at the largest size / smallest), ratio ≥. */
  growthTarget?: number;
  ratioTarget?: number;
}

const STEPS: Step[] = [
  { name: 'create', unit: 'µs/file', growthTarget: 1.2 },
  { name: 'stat', unit: 'µs/file', growthTarget: 1.2 },
  { name: 'ls -l 10k (first)', unit: 'µs/entry', growthTarget: 1.2 },
  { name: 'ls -l 10k (repeat)', unit: 'µs/entry', growthTarget: 1.2, ratioTarget: 0.5 },
  { name: 'find', unit: 'µs/entry', growthTarget: 1.2, ratioTarget: 0.5 },
  { name: 'symlink', unit: 'µs/link', growthTarget: 1.2 },
  { name: 'readlink', unit: 'µs/link', growthTarget: 1.2 },
  { name: 'df', unit: 'µs/call', growthTarget: 1.2 },
  { name: 'rm -r (cascades)', unit: 'µs/file', growthTarget: 1.2 },
  { name: `rm of a file with ${COVER_LINKS} same-named links`, unit: 'ms' },
  { name: 'mount RSS growth per stat-ed file', unit: 'bytes' },
];

function log(line: string): void {
  process.stderr.write(`bench scale: ${line}\n`);
}

async function rssOf(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(s)?.[1] ?? NaN) * 1024;
}

/** Forget dentries and inodes (the kernel sends FORGETs): the next lookups go to the file system. */
async function dropDentries(): Promise<void> {
  await must('echo 2 > /proc/sys/vm/drop_caches');
}

export async function runScale(o: ScaleOptions): Promise<string> {
  const started = Date.now();
  const CLI = join(o.root, 'dist', 'src', 'cli', 'main.js');
  const WORKER = join(o.root, 'dist', 'bench', 'scale-worker.js');
  const POPULATE = join(o.root, 'dist', 'bench', 'scale-populate.js');
  const BASE = join(o.root, '.tmp', 'bench-scale');
  for (const tool of ['bindfs', 'fusermount', 'taskset', 'find', 'ls']) {
    if ((await sh(`command -v ${tool}`)).code !== 0) throw new Error(`${tool} is not installed (make bench-deps)`);
  }

  /** A mounted file system under test: its process (for RSS) and mountpoint. */
  interface Mounted {
    fs: Fs;
    mp: string;
    child: Child;
  }

  const pin = (pinned: boolean): string[] => (pinned ? ['taskset', '-c', '0'] : []);

  async function mountFs(fs: Fs, pinned: boolean, data: string): Promise<Mounted> {
    const mp = join(BASE, `mnt-${fs}`);
    await mkdir(mp, { recursive: true });
    trackMount(mp);
    const [cmd, ...args] =
      fs === 'smhfs'
        ? [...pin(pinned), process.execPath, CLI, 'mount', mp, '--library', data]
        : [...pin(pinned), 'bindfs', '-f', data, mp]; // -f: in the foreground, so its pid is ours to measure
    const child = startChild(fs, cmd!, args);
    await waitMounted(mp, true, 60_000, child);
    return { fs, mp, child };
  }

  async function unmountFs(m: Mounted): Promise<void> {
    await unmount(m.mp);
    await stopChild(m.child);
  }

  /** One measured step: ops done, wall seconds, CPU seconds of the client plus the file system. */
  interface Sample {
    ops: number;
    wall: number;
    cpu: number;
  }

  async function worker(pinned: boolean, m: Mounted | undefined, ...args: Array<string | number>): Promise<Sample> {
    const before = m ? await cpuSeconds(m.child.pid) : 0;
    const out = await must([...pin(pinned), process.execPath, WORKER, ...args.map(String)].map((a) => `'${a}'`).join(' '), 3_600_000);
    const fsCpu = m ? (await cpuSeconds(m.child.pid)) - before : 0;
    const r = JSON.parse(out) as { ops: number; seconds: number; cpu: number };
    return { ops: r.ops, wall: r.seconds, cpu: r.cpu + fsCpu };
  }

  /** A shell command (ls, find, rm) timed from outside; its CPU from bash's `times` (children). */
  async function command(pinned: boolean, m: Mounted, cmd: string, ops: number): Promise<Sample> {
    const before = await cpuSeconds(m.child.pid);
    const t0 = process.hrtime.bigint();
    const out = await must(`${pinned ? 'taskset -c 0 ' : ''}${cmd}; times`, 3_600_000);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const fsCpu = (await cpuSeconds(m.child.pid)) - before;
    // `times`: shell user/sys, then children's user/sys, as 0m1.234s
    const t = [...out.trim().split('\n').pop()!.matchAll(/(\d+)m([\d.]+)s/g)].map((x) => Number(x[1]) * 60 + Number(x[2]));
    return { ops, wall, cpu: (t[0] ?? 0) + (t[1] ?? 0) + fsCpu };
  }

  /** results[mode][metric][step][fs][size] = µs per op (or the step's own unit) */
  type Table = Record<string, Record<Fs, Record<number, number>>>;
  const results: Record<string, { wall: Table; cpu: Table }> = {};
  const put = (mode: string, step: string, fs: Fs, size: number, wall: number, cpu = NaN): void => {
    const r = (results[mode] ??= { wall: {}, cpu: {} });
    (r.wall[step] ??= { smhfs: {}, bindfs: {} })[fs][size] = wall;
    (r.cpu[step] ??= { smhfs: {}, bindfs: {} })[fs][size] = cpu;
  };
  const perOp = (mode: string, step: string, fs: Fs, n: number, x: Sample): void =>
    put(mode, step, fs, n, (x.wall * 1e6) / x.ops, (x.cpu * 1e6) / x.ops);

  /**
   * Both file systems mounted side by side, each step run on one and then at once on the other,
   * so both meet the same machine (other work on a shared machine moves a lone run's numbers a lot).
   */
  async function oneSize(pinned: boolean, n: number): Promise<void> {
    const mode = pinned ? 'pinned' : 'unpinned';
    const ms: Record<Fs, Mounted> = {} as Record<Fs, Mounted>;
    try {
      for (const fs of FSES) {
        const data = join(BASE, `data-${fs}`);
        await rm(data, { recursive: true, force: true });
        if (fs === 'bindfs') await mkdir(data, { recursive: true });
        // `smhfs mount` no longer makes a library where there is none: init it first
        else await must(`'${process.execPath}' '${CLI}' --library '${data}' init`);
        ms[fs] = await mountFs(fs, pinned, data);
      }
      const each = async (what: string, fn: (m: Mounted) => Promise<void>): Promise<void> => {
        for (const fs of FSES) {
          log(`${mode} ${n}: ${what} on ${fs}`);
          await fn(ms[fs]);
        }
      };
      const want = (step: string): boolean => !o.steps || o.steps.includes(step);
      const rounds = Math.max(1, o.rounds ?? 1);
      /** The median (by wall time) of `rounds` runs of `fn`. */
      const median = async (fn: () => Promise<Sample>): Promise<Sample> => {
        const xs: Sample[] = [];
        for (let r = 0; r < rounds; r++) xs.push(await fn());
        return xs.sort((a, b) => a.wall - b.wall)[(xs.length - 1) >> 1]!;
      };
      const big = Math.min(n, PER_DIR);
      const links = Math.max(1, Math.floor(n / 10));
      await each('create', async (m) => perOp(mode, 'create', m.fs, n, await worker(pinned, m, 'create', m.mp, n, PER_DIR)));
      if (want('stat')) await each('stat', async (m) => {
        await dropDentries();
        const before = await rssOf(m.child.pid);
        perOp(mode, 'stat', m.fs, n, await worker(pinned, m, 'stat', m.mp, n, PER_DIR));
        put(mode, 'mount RSS growth per stat-ed file', m.fs, n, ((await rssOf(m.child.pid)) - before) / n);
      });
      if (want('ls')) await each('ls -l', async (m) => {
        const ls = (): Promise<Sample> => command(pinned, m, `ls -l '${m.mp}/d0' > /dev/null`, big);
        let repeat: Sample[] = [];
        const first = await median(async () => {
          await dropDentries();
          const x = await ls();
          repeat.push(await ls());
          return x;
        });
        repeat = repeat.sort((a, b) => a.wall - b.wall);
        perOp(mode, 'ls -l 10k (first)', m.fs, n, first);
        perOp(mode, 'ls -l 10k (repeat)', m.fs, n, repeat[(repeat.length - 1) >> 1]!);
      });
      if (want('find')) await each('find', async (m) => {
        const entries = n + Math.ceil(n / PER_DIR) + 1;
        perOp(mode, 'find', m.fs, n, await median(async () => {
          await dropDentries();
          return command(pinned, m, `find '${m.mp}' -path '${m.mp}/.trash' -prune -o -print > /dev/null`, entries);
        }));
      });
      if (!o.steps) await each('symlink', async (m) => perOp(mode, 'symlink', m.fs, n, await worker(pinned, m, 'symlink', m.mp, links, PER_DIR, n)));
      if (!o.steps) await each('readlink', async (m) => perOp(mode, 'readlink', m.fs, n, await worker(pinned, m, 'readlink', m.mp, links)));
      if (!o.steps) await each('df', async (m) => perOp(mode, 'df', m.fs, n, await worker(pinned, m, 'statfs', m.mp, STATFS_CALLS)));
      if (!o.steps) await each(`${COVER_LINKS} same-named links`, async (m) => {
        await worker(pinned, undefined, 'cover', m.mp, COVER_LINKS);
        const x = await worker(pinned, m, 'rmcover', m.mp);
        put(mode, `rm of a file with ${COVER_LINKS} same-named links`, m.fs, n, x.wall * 1000, x.cpu * 1000);
      });
      if (want('rm')) await each('rm -r', async (m) => {
        const dirs = Array.from({ length: Math.ceil(n / PER_DIR) }, (_, i) => `'${m.mp}/d${i}'`).join(' ');
        perOp(mode, 'rm -r (cascades)', m.fs, n, await command(pinned, m, `rm -r ${dirs}`, n));
      });
    } finally {
      for (const m of Object.values(ms)) await unmountFs(m);
      for (const fs of FSES) if (!o.keep) await rm(join(BASE, `data-${fs}`), { recursive: true, force: true });
    }
  }

  /** RSS after stat-ing memFiles files, and df there (unpinned). */
  async function memory(): Promise<Record<Fs, { perNode: number; base: number; after: number; dfUs: number }>> {
    const out = {} as Record<Fs, { perNode: number; base: number; after: number; dfUs: number }>;
    for (const fs of FSES) {
      const data = join(BASE, `mem-${fs}`);
      await rm(data, { recursive: true, force: true });
      log(`memory ${fs}: ${o.memFiles} files`);
      if (fs === 'smhfs') await must(`'${process.execPath}' '${POPULATE}' '${data}' ${o.memFiles} ${PER_DIR}`, 3_600_000);
      else {
        await mkdir(data, { recursive: true });
        await worker(false, undefined, 'populate', data, o.memFiles, PER_DIR);
      }
      const m = await mountFs(fs, false, data);
      try {
        await dropDentries();
        const base = await rssOf(m.child.pid);
        await worker(false, m, 'stat', m.mp, o.memFiles, PER_DIR);
        const after = await rssOf(m.child.pid);
        const df = await worker(false, m, 'statfs', m.mp, STATFS_CALLS);
        out[fs] = { perNode: (after - base) / o.memFiles, base, after, dfUs: (df.wall * 1e6) / df.ops };
      } finally {
        await unmountFs(m);
        if (!o.keep) await rm(data, { recursive: true, force: true });
      }
    }
    return out;
  }

  await rm(BASE, { recursive: true, force: true });
  await mkdir(BASE, { recursive: true });
  let mem: Awaited<ReturnType<typeof memory>> | undefined;
  let store: Record<string, number> = {};
  try {
    log('store: the longest single transactions and bounded steps');
    if (!o.steps) store = JSON.parse(await must(`'${process.execPath}' '${join(o.root, 'dist', 'bench', 'scale-store.js')}' '${BASE}'`, 3_600_000)) as Record<string, number>;
    for (const pinned of o.pinned) {
      for (const n of o.sizes) await oneSize(pinned, n);
    }
    if (o.memFiles > 0) mem = await memory();
  } finally {
    await cleanupAll();
    if (!o.keep) await rm(BASE, { recursive: true, force: true }).catch(() => undefined);
  }

  // ───────────────────────────── report ─────────────────────────────
  const lo = o.sizes[0]!;
  const hi = o.sizes[o.sizes.length - 1]!;
  const k = (x: number): string => (x >= 1000 ? `${x / 1000}k` : String(x));
  const f = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const lines: string[] = [];
  lines.push(`smhfs vs bindfs at ${o.sizes.map(k).join(' and ')} files, same run (${((Date.now() - started) / 60000).toFixed(1)} min)`);
  for (const mode of Object.keys(results)) {
    for (const metric of ['wall', 'cpu'] as const) {
      const table = results[mode]![metric];
      lines.push('');
      lines.push(
        `### ${mode === 'pinned' ? 'pinned (taskset -c 0: file system and client on one CPU)' : 'unpinned (2 CPUs)'}: ` +
          (metric === 'wall' ? 'wall time' : 'CPU time (client + file system process), what load on a shared machine moves least'),
      );
      lines.push('');
      const sizeCols = o.sizes.map((s) => `smhfs ${k(s)}`).concat(o.sizes.map((s) => `bindfs ${k(s)}`));
      lines.push(`| step | unit | ${sizeCols.join(' | ')} | growth ${k(hi)}/${k(lo)} (target) | ratio ${o.sizes.map(k).join(' / ')} (target) |`);
      lines.push(`|---|---|${sizeCols.map(() => '---:').join('|')}|---:|---:|`);
      for (const step of STEPS) {
        const r = table[step.name];
        if (!r) continue;
        if (metric === 'cpu' && step.unit === 'bytes') continue;
        const vals = o.sizes.map((s) => f(r.smhfs[s])).concat(o.sizes.map((s) => f(r.bindfs[s])));
        const perOpStep = step.unit.startsWith('µs');
        const growth = perOpStep ? r.smhfs[hi]! / r.smhfs[lo]! : undefined;
        const ratios = perOpStep ? o.sizes.map((s) => r.bindfs[s]! / r.smhfs[s]!) : undefined;
        const g = growth === undefined ? '-' : `${growth.toFixed(2)}${step.growthTarget ? ` (≤${step.growthTarget}${growth <= step.growthTarget ? '' : ' NO'})` : ''}`;
        const ra = ratios === undefined ? '-' : `${ratios.map((x) => x.toFixed(2)).join(' / ')}${step.ratioTarget ? ` (≥${step.ratioTarget}${ratios[ratios.length - 1]! >= step.ratioTarget ? '' : ' NO'})` : ''}`;
        lines.push(`| ${step.name} | ${step.unit} | ${vals.join(' | ')} | ${g} | ${ra} |`);
      }
    }
  }
  if (mem) {
    lines.push('');
    lines.push(`### memory and df at ${k(o.memFiles)} files (unpinned; smhfs library filled through the store, bindfs's folder directly)`);
    lines.push('');
    lines.push('| | RSS after mount | RSS after stat of every file | growth per file | df µs/call |');
    lines.push('|---|---:|---:|---:|---:|');
    for (const fs of FSES) {
      const x = mem[fs];
      lines.push(`| ${fs} | ${(x.base / 2 ** 20).toFixed(1)} MiB | ${(x.after / 2 ** 20).toFixed(1)} MiB | ${x.perNode.toFixed(0)} B${fs === 'smhfs' ? ` (target ≤ 1024${x.perNode <= 1024 ? '' : ' NO'})` : ''} | ${f(x.dfUs)}${fs === 'smhfs' ? ` (target < 1000${x.dfUs < 1000 ? '' : ' NO'})` : ''} |`);
    }
  }
  lines.push('');
  lines.push('### time on the serving thread (store, no mount): single transactions at their largest, and bounded steps');
  lines.push('');
  lines.push('| what | ms |');
  lines.push('|---|---:|');
  for (const [what, v] of Object.entries(store)) lines.push(`| ${what} | ${what.endsWith('steps') ? String(v) : f(v)} |`);
  lines.push('');
  lines.push(
    `(growth = smhfs µs per op at ${k(hi)} / at ${k(lo)}; ratio = bindfs µs / smhfs µs, ≥ 1 is as fast as bindfs; ` +
      `ls -l and find wait for the libfuse3 binding's readdirplus and kernel-cache invalidation for their ratio targets; files are empty)`,
  );
  lines.push(`raw: ${JSON.stringify(results)}`);
  const report = lines.join('\n');
  await writeFile(join(o.root, '.tmp', 'bench-scale-result.md'), `${report}\n`);
  return report;
}
