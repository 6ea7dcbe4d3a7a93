/**
 * `make bench` (binding part; `node dist/bench/run.js --only binding`): the ceilings of the two
 * FUSE bindings against bindfs, same run, pinned and unpinned.
 *
 *   bindfs      `bindfs -f -o big_writes` over a disk folder (as the local part of the bench)
 *   fuse-native bench/memfs.ts: in-memory, fuse-native (libfuse 2, a worker thread hands each
 *               request to the JS thread), smhfs's mount options
 *   ll          bench/ll-memfs.ts: in-memory, our libfuse 3 low-level addon (requests answered on
 *               the JS thread), entry/attr timeouts 1 s as smhfs
 *   ll async    the same, every op answered through a Promise
 *   smhfs on ll / smhfs on fuse-native
 *               `smhfs mount --binding ll|fuse-native` of a library holding the same bytes: the
 *               adapters and the store on top of each binding (issue 11 phase 2)
 *
 * Tests: 10,000 symlink / readlink / stat through the link (one node process each, sync calls),
 * with the file system's CPU per link op; fio randread 4 KiB psync, O_DIRECT (`--random-sec`
 * seconds) and buffered after fio's fadvise(DONTNEED) (16,384 reads); 1 GiB sequential read
 * O_DIRECT bs=1M; 256 MiB dd write from memory, discarded (bindfs: into its disk folder) and
 * durable (writeSync into a file, fsync at flush: bench/memfs.ts and bench/ll-memfs.ts with
 * --durable-writes; compared with bindfs's plain write, as the target is).
 *
 * Placement decides more than anything on a 2-CPU VM (fuse-binding-experiment.md): "pinned" runs
 * the file systems and every client on CPU 0 (`taskset`), i.e. the CPU cost per request;
 * "unpinned" lets the scheduler place them (what users get; bimodal here). Each placement runs
 * `--runs` rounds with the file systems in rotated order; medians are reported.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, cpuSeconds, median, must, sh, startChild, stopChild, timed, trackMount, unmount, waitMounted, type Child } from './util.js';

export interface BindingBenchOptions {
  root: string;
  sizeMiB: number;
  writeMiB: number;
  links: number;
  runs: number;
  randomSec: number;
  keep: boolean;
}

type Fs = 'bindfs' | 'native' | 'll' | 'llAsync' | 'nativeDurable' | 'llDurable' | 'smhfsLl' | 'smhfsNative';
const LABEL: Record<Fs, string> = {
  bindfs: 'bindfs',
  native: 'fuse-native',
  ll: 'll',
  llAsync: 'll async',
  nativeDurable: 'fuse-native durable',
  llDurable: 'll durable',
  smhfsLl: 'smhfs on ll',
  smhfsNative: 'smhfs on fuse-native',
};
/** smhfs itself (a library holding data.bin), mounted with each binding: what the adapters cost over the ceilings. */
const SMHFS: Partial<Record<Fs, string>> = { smhfsLl: 'll', smhfsNative: 'fuse-native' };
const MAIN: Fs[] = ['bindfs', 'native', 'll', 'llAsync', 'smhfsLl', 'smhfsNative'];
type Placement = 'pinned' | 'unpinned';

function log(line: string): void {
  process.stderr.write(`bench binding: ${line}\n`);
}

export async function runBinding(o: BindingBenchOptions): Promise<string> {
  const BASE = join(o.root, '.tmp', 'bench-binding');
  const PLAIN = join(BASE, 'plain');
  const DATA = join(PLAIN, 'data.bin');
  const SRC = join(BASE, 'write-src.bin');
  const mnt = (fs: Fs): string => join(BASE, `mnt-${fs}`);
  const dur = (fs: Fs): string => join(BASE, `durable-${fs}`);
  const started = Date.now();
  for (const tool of ['bindfs', 'fio', 'taskset', 'dd']) {
    if ((await sh(`command -v ${tool}`)).code !== 0) throw new Error(`${tool} is not installed (make bench-deps)`);
  }
  const children = new Map<Fs, Child>();
  try {
    await rm(BASE, { recursive: true, force: true });
    await mkdir(PLAIN, { recursive: true });
    log(`preparing ${o.sizeMiB} MiB of random bytes in ${BASE}…`);
    await must(`head -c ${o.sizeMiB}M /dev/urandom > '${DATA}' && head -c ${o.writeMiB}M /dev/urandom > '${SRC}'`);

    const mountFs = async (fs: Fs): Promise<void> => {
      await mkdir(mnt(fs), { recursive: true });
      trackMount(mnt(fs));
      let c: Child;
      const binding = SMHFS[fs];
      if (fs === 'bindfs') {
        c = startChild(fs, 'taskset', ['-c', '0', 'bindfs', '-f', '-o', 'big_writes', PLAIN, mnt(fs)]);
      } else if (binding) {
        const cli = join(o.root, 'dist', 'src', 'cli', 'main.js');
        const lib = join(BASE, `lib-${fs}`);
        await must(`'${process.execPath}' '${cli}' --library '${lib}' init > /dev/null && '${process.execPath}' '${cli}' --library '${lib}' put '${DATA}' data.bin > /dev/null`);
        c = startChild(fs, 'taskset', ['-c', '0', process.execPath, cli, 'mount', mnt(fs), '--library', lib, '--binding', binding]);
      } else {
        const durable = fs === 'nativeDurable' || fs === 'llDurable';
        if (durable) await mkdir(dur(fs), { recursive: true });
        const script = fs === 'native' || fs === 'nativeDurable' ? 'memfs.js' : 'll-memfs.js';
        const extra = durable ? ['--durable-writes', dur(fs)] : fs === 'll' || fs === 'llAsync' ? ['--discard-writes'] : [];
        if (fs === 'llAsync') extra.push('--async');
        c = startChild(fs, 'taskset', ['-c', '0', process.execPath, join(o.root, 'dist', 'bench', script), mnt(fs), DATA, ...extra]);
      }
      children.set(fs, c);
      await waitMounted(mnt(fs), true, 60_000, c);
    };
    const place = async (p: Placement): Promise<void> => {
      for (const c of children.values()) await must(`taskset -a -p -c ${p === 'pinned' ? '0' : '0-1'} ${c.pid} > /dev/null`);
    };
    for (const fs of [...MAIN, 'nativeDurable', 'llDurable'] as Fs[]) await mountFs(fs);
    for (const fs of ['ll', 'native', 'bindfs', 'smhfsLl', 'smhfsNative'] as Fs[]) await must(`cmp '${mnt(fs)}/data.bin' '${DATA}'`);

    const results: Record<Placement, Record<string, Partial<Record<Fs, number[]>>>> = { pinned: {}, unpinned: {} };
    const add = (p: Placement, test: string, fs: Fs, v: number): void => {
      ((results[p][test] ??= {})[fs] ??= []).push(v);
    };

    for (const p of ['pinned', 'unpinned'] as Placement[]) {
      await place(p);
      const run = p === 'pinned' ? 'taskset -c 0 ' : '';
      const links = async (fs: Fs, i: number): Promise<{ symlink: number; readlink: number; stat: number; cpuUs: number }> => {
        const dir = `${mnt(fs)}/links-${p}-${i}`;
        const script =
          "const fs=require('fs');const dir=process.argv[1];const n=Number(process.argv[2]);" +
          "fs.mkdirSync(dir);fs.writeFileSync(dir+'/target.txt','target');const t=()=>Number(process.hrtime.bigint())/1e9;" +
          "let t0=t();for(let i=0;i<n;i++)fs.symlinkSync('target.txt',dir+'/l'+i);const a=t()-t0;" +
          "t0=t();for(let i=0;i<n;i++)fs.readlinkSync(dir+'/l'+i);const b=t()-t0;" +
          "t0=t();for(let i=0;i<n;i++)fs.statSync(dir+'/l'+i);const c=t()-t0;" +
          "process.stdout.write(JSON.stringify({symlink:n/a,readlink:n/b,stat:n/c}))";
        const pid = children.get(fs)!.pid;
        const cpu0 = await cpuSeconds(pid);
        const out = await must(`${run}'${process.execPath}' -e "${script}" '${dir}' ${o.links}`);
        const cpu = (await cpuSeconds(pid)) - cpu0;
        await must(`rm -rf '${dir}'`);
        return { ...(JSON.parse(out) as { symlink: number; readlink: number; stat: number }), cpuUs: (cpu / (3 * o.links)) * 1e6 };
      };
      const fio = async (fs: Fs, direct: boolean): Promise<number> => {
        const amount = direct ? `--time_based --runtime=${o.randomSec}` : '--io_size=64m';
        const out = await must(
          `${run}fio --name=rand --filename='${mnt(fs)}/data.bin' --rw=randread --bs=4k --ioengine=psync --iodepth=1 --numjobs=1 ` +
            `--size=${Math.min(256, o.sizeMiB)}m --direct=${direct ? 1 : 0} --invalidate=1 ${amount} --readonly --output-format=json`,
        );
        return (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ read: { iops: number } }> }).jobs[0]!.read.iops;
      };
      const readDirect = async (fs: Fs): Promise<number> => o.sizeMiB / (await timed(`${run}dd if='${mnt(fs)}/data.bin' of=/dev/null bs=1M iflag=direct status=none`));
      const write = async (fs: Fs, i: number): Promise<number> => {
        await must(`cat '${SRC}' > /dev/null`); // the source comes from memory
        const target = `${mnt(fs)}/w-${p}-${i}.bin`;
        const s = await timed(`${run}dd if='${SRC}' of='${target}' bs=1M status=none`);
        await must(`rm -f '${target}'`);
        return o.writeMiB / s;
      };

      for (let i = 0; i < o.runs; i++) {
        const order = MAIN.map((_, k) => MAIN[(k + i) % MAIN.length]!);
        for (const fs of order) {
          log(`${p} run ${i + 1}/${o.runs}: ${LABEL[fs]}`);
          const l = await links(fs, i);
          add(p, 'symlink', fs, l.symlink);
          add(p, 'readlink', fs, l.readlink);
          add(p, 'stat via link', fs, l.stat);
          add(p, 'fs CPU µs per link op', fs, l.cpuUs);
          add(p, 'rand 4k O_DIRECT', fs, await fio(fs, true));
          add(p, 'rand 4k buffered', fs, await fio(fs, false));
          add(p, 'read 1 GiB O_DIRECT 1M', fs, await readDirect(fs));
          add(p, 'write (discarded)', fs, await write(fs, i));
        }
        for (const fs of ['nativeDurable', 'llDurable'] as Fs[]) {
          log(`${p} run ${i + 1}/${o.runs}: ${LABEL[fs]}`);
          add(p, 'write durable (fsync at close)', fs, await write(fs, i));
        }
      }
    }

    // ── report ──
    const units: Record<string, string> = {
      symlink: 'ops/s', readlink: 'ops/s', 'stat via link': 'ops/s', 'fs CPU µs per link op': 'µs',
      'rand 4k O_DIRECT': 'IOPS', 'rand 4k buffered': 'IOPS', 'read 1 GiB O_DIRECT 1M': 'MB/s',
      'write (discarded)': 'MB/s', 'write durable (fsync at close)': 'MB/s',
    };
    const lines: string[] = [];
    const fmt = (v: number | undefined, w: number, digits = 0): string => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits)).padStart(w);
    lines.push(`FUSE binding ceilings: in-memory file systems on fuse-native and on our libfuse 3 binding, against bindfs -o big_writes (disk folder);`);
    lines.push(`${o.links} links, fio ${o.randomSec} s O_DIRECT / 16,384 buffered 4 KiB reads, ${o.sizeMiB} MiB O_DIRECT read, ${o.writeMiB} MiB write; medians of ${o.runs}`);
    for (const p of ['pinned', 'unpinned'] as Placement[]) {
      lines.push('');
      lines.push(`### ${p === 'pinned' ? 'pinned: file systems and clients on CPU 0' : 'unpinned'}`);
      lines.push('');
      lines.push('| test | unit | bindfs | fuse-native | ll | ll async | ll / bindfs | ll / fuse-native | ll async / bindfs | fuse-native / bindfs | smhfs on ll | smhfs on fuse-native | smhfs ll / bindfs | smhfs ll / smhfs fuse-native |');
      lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
      for (const [test, unit] of Object.entries(units)) {
        const r = results[p][test] ?? {};
        const m = (fs: Fs): number | undefined => (r[fs] && r[fs]!.length > 0 ? median(r[fs]!) : undefined);
        const durable = test.startsWith('write durable');
        const b = durable ? median(results[p]['write (discarded)']?.bindfs ?? []) : m('bindfs');
        const nat = durable ? m('nativeDurable') : m('native');
        const ll = durable ? m('llDurable') : m('ll');
        const la = durable ? undefined : m('llAsync');
        const ratio = (a: number | undefined, c: number | undefined): string => (a === undefined || c === undefined ? '-' : (a / c).toFixed(2));
        const cpu = unit === 'µs';
        lines.push(
          `| ${test} | ${unit} | ${fmt(b, 0, cpu ? 1 : 0)}${durable ? ' (plain)' : ''} | ${fmt(nat, 0, cpu ? 1 : 0)} | ${fmt(ll, 0, cpu ? 1 : 0)} | ${fmt(la, 0, cpu ? 1 : 0)} | ` +
            `${ratio(ll, b)} | ${ratio(ll, nat)} | ${ratio(la, b)} | ${ratio(nat, b)} | ` +
            `${fmt(durable ? undefined : m('smhfsLl'), 0, cpu ? 1 : 0)} | ${fmt(durable ? undefined : m('smhfsNative'), 0, cpu ? 1 : 0)} | ` +
            `${durable ? '-' : ratio(m('smhfsLl'), b)} | ${durable ? '-' : ratio(m('smhfsLl'), m('smhfsNative'))} |`,
        );
      }
    }
    lines.push('');
    lines.push(`all runs: ${JSON.stringify(results, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`);
    lines.push(
      `(ll = bench/ll-memfs.ts on src/fuse/ll, fuse-native = bench/memfs.ts; both in memory: reads answer from a Buffer, discarded writes keep only the size; ` +
        `smhfs on ll / on fuse-native = smhfs mount --binding …, a library holding data.bin (its "write" row is a real, durable commit at close: hashed and stored); ` +
        `durable = writeSync into a file + fsync at flush, compared with bindfs's plain write; CPU = the file system process's user+system time over the 3 × ${o.links} link ops; ` +
        `${((Date.now() - started) / 1000).toFixed(0)} s in all)`,
    );
    const report = lines.join('\n');
    await writeFile(join(o.root, '.tmp', 'bench-binding.md'), `${report}\n`);
    return report;
  } finally {
    for (const c of children.values()) await stopChild(c).catch(() => undefined);
    for (const fs of [...MAIN, 'nativeDurable', 'llDurable'] as Fs[]) await unmount(mnt(fs)).catch(() => undefined);
    await cleanupAll();
    if (!o.keep) await rm(BASE, { recursive: true, force: true }).catch(() => undefined);
  }
}
