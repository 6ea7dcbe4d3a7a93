/**
 * `make bench-postgres BENCH_ARGS='--only mount'` (issue 13 "Performance"): the PostgreSQL engine
 * against the SQLite engine in the same run, through real mounts and real `serve` processes.
 *
 * Mount part: two libraries filled alike through the store (bench/scale-populate.ts: FILES empty
 * files in directories of 10,000), one SQLite, one on a PostgreSQL cluster on this machine (the
 * test harness's, fsync on, loopback TCP); both mounted (the default binding), and each step run
 * on one and at once on the other, so both meet the same machine:
 *   stat       lstat of every file (kernel dentries dropped first)          µs per file
 *   ls -l      of one 10,000-entry directory, cold, then again at once      µs per entry
 *   find       of the whole tree (dentries dropped first)                    µs per entry
 *   symlink    FILES/10 relative links to files across the tree             µs per link
 *   readlink   of each                                                       µs per link
 * Ratio = SQLite µs / PostgreSQL µs (1 is as fast as SQLite; the issue's target for cached
 * metadata reads is ≥ 0.5).
 *
 * Serve part: SMH `GET …/file/…?info` of random files of the PostgreSQL library, from one client
 * process keeping CONNS requests in flight over keep-alive connections, against 1 and then 2
 * `smhfs serve` processes on that library (requests spread round-robin), SECONDS each, 1 and 2
 * alternated three times (medians). The CPU seconds of each serve, of the PostgreSQL server (all
 * its processes) and of the client are reported per request, to say what limits the rate on this
 * machine.
 * Options: --files N (100000), --conns N (32), --seconds S (5), --pin both|yes|no (no), --keep.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '../test/helpers/postgres.js';
import { cleanupAll, cpuSeconds, median, must, startChild, stopChild, trackMount, unmount, waitMounted, type Child } from './util.js';

type Engine = 'sqlite' | 'postgres';
const ENGINES: Engine[] = ['sqlite', 'postgres'];
const PER_DIR = 10_000;

export interface PgMountOptions {
  root: string;
  files: number;
  conns: number;
  seconds: number;
  pinned: boolean[];
  keep: boolean;
}

function log(line: string): void {
  process.stderr.write(`bench-postgres mount: ${line}\n`);
}

/** CPU seconds of every process of the cluster (the postmaster and its children, backends included). */
async function clusterCpu(postmaster: number): Promise<number> {
  let total = 0;
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = await readFile(`/proc/${p}/stat`, 'utf8');
      const f = stat.replace(/^.*\) /, '').split(' ');
      if (Number(p) === postmaster || Number(f[1]) === postmaster) total += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      /* gone meanwhile */
    }
  }
  return total;
}

export async function runPostgresMount(o: PgMountOptions): Promise<string> {
  const CLI = join(o.root, 'dist', 'src', 'cli', 'main.js');
  const WORKER = join(o.root, 'dist', 'bench', 'scale-worker.js');
  const POPULATE = join(o.root, 'dist', 'bench', 'scale-populate.js');
  const LOADGEN = join(o.root, 'dist', 'bench', 'smh-load.js');
  const BASE = join(o.root, '.tmp', 'bench-postgres-mount');
  await rm(BASE, { recursive: true, force: true });
  await mkdir(BASE, { recursive: true });
  const prevTmp = process.env.TMPDIR;
  process.env.TMPDIR = BASE;
  const cluster = await startPostgres({ settings: { fsync: 'on', synchronous_commit: 'on', shared_buffers: "'256MB'" } });
  if (prevTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = prevTmp;
  const lines: string[] = [];
  const started = new Date().toISOString();
  try {
    const { url } = await cluster.createDatabase('bench');
    const data: Record<Engine, string> = { sqlite: join(BASE, 'lib-sqlite'), postgres: join(BASE, 'lib-postgres') };
    for (const e of ENGINES) {
      log(`populating ${o.files} files (${e})`);
      const t0 = Date.now();
      await must(`'${process.execPath}' '${POPULATE}' '${data[e]}' ${o.files} ${PER_DIR}${e === 'postgres' ? ` '${url}'` : ''}`, 3_600_000);
      log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    const pin = (pinned: boolean): string[] => (pinned ? ['taskset', '-c', '0'] : []);

    interface Mounted {
      engine: Engine;
      mp: string;
      child: Child;
    }
    const mountOf = async (e: Engine, pinned: boolean): Promise<Mounted> => {
      const mp = join(BASE, `mnt-${e}`);
      await mkdir(mp, { recursive: true });
      trackMount(mp);
      const [cmd, ...args] = [...pin(pinned), process.execPath, CLI, 'mount', mp, '--library', data[e]];
      const child = startChild(`smhfs-${e}`, cmd!, args);
      await waitMounted(mp, true, 60_000, child);
      return { engine: e, mp, child };
    };
    interface Sample {
      ops: number;
      wall: number;
      cpu: number;
    }
    const worker = async (pinned: boolean, m: Mounted, ...args: Array<string | number>): Promise<Sample> => {
      const before = await cpuSeconds(m.child.pid);
      const out = await must([...pin(pinned), process.execPath, WORKER, ...args.map(String)].map((a) => `'${a}'`).join(' '), 3_600_000);
      const r = JSON.parse(out) as { ops: number; seconds: number; cpu: number };
      return { ops: r.ops, wall: r.seconds, cpu: r.cpu + (await cpuSeconds(m.child.pid)) - before };
    };
    const command = async (pinned: boolean, m: Mounted, cmd: string, ops: number): Promise<Sample> => {
      const before = await cpuSeconds(m.child.pid);
      const t0 = process.hrtime.bigint();
      const out = await must(`${pinned ? 'taskset -c 0 ' : ''}${cmd}; times`, 3_600_000);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const t = [...out.trim().split('\n').pop()!.matchAll(/(\d+)m([\d.]+)s/g)].map((x) => Number(x[1]) * 60 + Number(x[2]));
      return { ops, wall, cpu: (t[0] ?? 0) + (t[1] ?? 0) + (await cpuSeconds(m.child.pid)) - before };
    };
    const dropDentries = () => must('echo 2 > /proc/sys/vm/drop_caches');

    for (const pinned of o.pinned) {
      const mode = pinned ? 'pinned (CPU 0: mounts, PostgreSQL, clients)' : 'unpinned';
      if (pinned) await must(`for p in ${cluster.pid()} $(ps -o pid= --ppid ${cluster.pid()}); do taskset -a -p -c 0 $p > /dev/null; done`);
      else await must(`for p in ${cluster.pid()} $(ps -o pid= --ppid ${cluster.pid()}); do taskset -a -p -c 0-${cpus().length - 1} $p > /dev/null; done`);
      const ms = {} as Record<Engine, Mounted>;
      for (const e of ENGINES) ms[e] = await mountOf(e, pinned);
      const res: Record<string, Record<Engine, Sample>> = {};
      const each = async (step: string, fn: (m: Mounted) => Promise<Sample>): Promise<void> => {
        for (const e of ENGINES) {
          log(`${mode}: ${step} on ${e}`);
          (res[step] ??= {} as Record<Engine, Sample>)[e] = await fn(ms[e]);
        }
      };
      const entries = o.files + Math.ceil(o.files / PER_DIR) + 1;
      const links = Math.max(1, Math.floor(o.files / 10));
      const big = Math.min(o.files, PER_DIR);
      try {
        await each('stat (every file, dentries dropped)', async (m) => {
          await dropDentries();
          return worker(pinned, m, 'stat', m.mp, o.files, PER_DIR);
        });
        await each('stat again (kernel cache)', (m) => worker(pinned, m, 'stat', m.mp, o.files, PER_DIR));
        const ls = async (m: Mounted) => command(pinned, m, `ls -l '${m.mp}/d0' > /dev/null`, big);
        await each('ls -l 10k (first, dentries dropped)', async (m) => {
          await dropDentries();
          return ls(m);
        });
        await each('ls -l 10k (repeat at once)', ls);
        await each(`find over ${entries} entries (dentries dropped)`, async (m) => {
          await dropDentries();
          return command(pinned, m, `find '${m.mp}' -path '${m.mp}/.trash' -prune -o -print > /dev/null`, entries);
        });
        await each(`symlink (${links} links)`, (m) => worker(pinned, m, 'symlink', m.mp, links, PER_DIR, o.files));
        await each('readlink (each link)', (m) => worker(pinned, m, 'readlink', m.mp, links));
        await each('readlink again (kernel cache)', (m) => worker(pinned, m, 'readlink', m.mp, links));
      } finally {
        for (const e of ENGINES) {
          // a second mode starts from the same libraries: its links go in a fresh `links`
          await must(`mv '${ms[e].mp}/links' '${ms[e].mp}/links-${pinned ? 'pinned' : 'unpinned'}'`).catch(() => undefined);
          await unmount(ms[e].mp);
          await stopChild(ms[e].child);
        }
      }
      lines.push(`\n## Through a mount, ${mode}: µs per op (wall / CPU of client + mount), ratio = SQLite µs / PostgreSQL µs`);
      lines.push('| step | SQLite wall | PostgreSQL wall | ratio (wall) | SQLite CPU | PostgreSQL CPU (mount+client; server not counted) |');
      lines.push('|---|---|---|---|---|---|');
      for (const [step, r] of Object.entries(res)) {
        const us = (s: Sample, k: 'wall' | 'cpu') => (s[k] * 1e6) / s.ops;
        lines.push(`| ${step} | ${us(r.sqlite, 'wall').toFixed(1)} | ${us(r.postgres, 'wall').toFixed(1)} | ${(us(r.sqlite, 'wall') / us(r.postgres, 'wall')).toFixed(2)} | ${us(r.sqlite, 'cpu').toFixed(1)} | ${us(r.postgres, 'cpu').toFixed(1)} |`);
      }
    }

    // ── serve: 1 and 2 instances on the PostgreSQL library ──
    const token = JSON.parse(await must(`'${process.execPath}' '${CLI}' --library '${data.postgres}' --json token create --grant admin --period 86400`)) as {
      accessToken: string;
      libraryId: string;
    };
    const serves: Child[] = [];
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const child = startChild(`serve-${i}`, process.execPath, [CLI, '--library', data.postgres, 'serve', '--listen', '127.0.0.1:0']);
      for (let k = 0; k < 400 && !/at (http:\/\/\S+)/.test(child.output()); k++) await new Promise((r) => setTimeout(r, 50));
      const u = /at (http:\/\/\S+)/.exec(child.output())?.[1];
      if (!u) throw new Error(`serve ${i} printed no URL: ${child.output()}`);
      serves.push(child);
      urls.push(u);
    }
    try {
      const run = async (n: number) => {
        const pgBefore = await clusterCpu(cluster.pid()!);
        const sBefore = await Promise.all(serves.map((s) => cpuSeconds(s.pid)));
        const out = await new Promise<string>((res, rej) => {
          const c = spawn(process.execPath, [LOADGEN, JSON.stringify({ urls: urls.slice(0, n), token: token.accessToken, library: token.libraryId, files: o.files, perDir: PER_DIR, conns: o.conns, seconds: o.seconds })], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let s = '';
          c.stdout.on('data', (d: Buffer) => (s += d.toString()));
          c.on('close', (code) => (code === 0 ? res(s) : rej(new Error(`load generator exited ${code}`))));
        });
        const r = JSON.parse(out) as { requests: number; errors: number; seconds: number; cpu: number };
        const pg = (await clusterCpu(cluster.pid()!)) - pgBefore;
        const sCpu = (await Promise.all(serves.map((s) => cpuSeconds(s.pid)))).map((c, i) => c - sBefore[i]!);
        return { rate: r.requests / r.seconds, errors: r.errors, requests: r.requests, pgPerReq: (pg * 1e6) / r.requests, servePerReq: (sCpu.reduce((a, b) => a + b, 0) * 1e6) / r.requests, clientPerReq: (r.cpu * 1e6) / r.requests, cpuTotal: pg + sCpu.reduce((a, b) => a + b, 0) + r.cpu, seconds: r.seconds };
      };
      const ones: Array<Awaited<ReturnType<typeof run>>> = [];
      const twos: Array<Awaited<ReturnType<typeof run>>> = [];
      for (let rep = 0; rep < 3; rep++) {
        log(`serve: round ${rep + 1}: 1 instance`);
        ones.push(await run(1));
        log(`serve: round ${rep + 1}: 2 instances`);
        twos.push(await run(2));
      }
      const row = (label: string, xs: typeof ones) => {
        const m = (f: (x: (typeof ones)[number]) => number) => median(xs.map(f));
        return `| ${label} | ${m((x) => x.rate).toFixed(0)} | ${xs.map((x) => x.rate.toFixed(0)).join(' / ')} | ${m((x) => x.servePerReq).toFixed(0)} | ${m((x) => x.pgPerReq).toFixed(0)} | ${m((x) => x.clientPerReq).toFixed(0)} | ${m((x) => x.cpuTotal / x.seconds).toFixed(2)} | ${xs.reduce((a, x) => a + x.errors, 0)} |`;
      };
      lines.push(`\n## SMH GET ?info of random files, PostgreSQL library, ${o.conns} requests in flight, ${o.seconds} s per run, unpinned`);
      lines.push('| serve instances | req/s (median) | runs | serve CPU µs/req | PostgreSQL CPU µs/req | client CPU µs/req | CPUs busy (of ' + cpus().length + ') | errors |');
      lines.push('|---|---|---|---|---|---|---|---|');
      lines.push(row('1', ones));
      lines.push(row('2', twos));
      lines.push(`2 / 1 (median of the three same-time ratios): ${median(twos.map((x, i) => x.rate / ones[i]!.rate)).toFixed(2)}x (target ≥ 1.6)`);
    } finally {
      for (const s of serves) await stopChild(s);
    }
  } finally {
    await cleanupAll();
    await cluster.destroy();
    if (!o.keep) await rm(BASE, { recursive: true, force: true });
  }
  return `# bench-postgres mount/serve, ${started}, PostgreSQL ${cluster.versionNum}, ${o.files} files\n${lines.join('\n')}\n`;
}
