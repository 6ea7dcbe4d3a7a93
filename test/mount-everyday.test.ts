/**
 * Issue 14, the mount as people run it every day (M1): `smhfs mount --daemon` (returns once the
 * mount serves, or fails with the reason), `mount -t fuse.smhfs` and an fstab line through the
 * mount(8) helpers that `make install` puts in /sbin, the peers' flags (`--read-only`, `--uid`,
 * `--gid`, `--umask`, `--log-file`, `--log-level`), and `--metrics` scraped and parsed while the
 * mount works.
 *
 * The mount(8) test installs /sbin/mount.smhfs and /sbin/mount.fuse.smhfs (mount(8) looks for
 * helpers only in /sbin) with `make install-files`, the rest of the install into a temporary
 * PREFIX; whatever was at those two paths before is moved aside and put back in teardown.
 * Every server started here is found by its pid (from its own message or the mount registry)
 * and only that pid is signalled.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pidAlive, readRegistry } from '../src/fuse/mounts.js';
import { Library } from '../src/store/library.js';
import { ROOT, fuseUnavailable, isMounted, ok, sh, smhfs } from './helpers/mount.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitGone(pid: number, ms = 20_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (!pidAlive(pid)) return true;
    await sleep(50);
  }
  return !pidAlive(pid);
}

/** Unmount `mp` and make sure the server `pid` (ours) is gone; last resorts: SIGKILL that pid, umount -l. */
async function stopServer(mp: string, pid: number | undefined): Promise<void> {
  if (await isMounted(mp)) await sh(`fusermount -u '${mp}' || umount '${mp}'`);
  if (pid !== undefined && !(await waitGone(pid, 15_000))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    await waitGone(pid, 5000);
  }
  if (await isMounted(mp)) await sh(`fusermount -uz '${mp}' || umount -l '${mp}'`);
}

interface Scene {
  dir: string;
  lib: string;
  mp: string;
  log: string;
}

/** A temp folder with a library holding photo.bin (1 MiB + 3, put by the CLI) and an empty mountpoint. */
async function scene(t: Test): Promise<Scene & { photo: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'smhfs-everyday-'));
  const s = { dir, lib: join(dir, 'lib'), mp: join(dir, 'mnt'), log: join(dir, 'logs', 'mount.log') };
  mkdirSync(s.mp);
  t.teardown(async () => {
    if (!(await isMounted(s.mp))) rmSync(dir, { recursive: true, force: true });
  });
  Library.open(s.lib, { create: true }).close(); // the store's API: with or without `smhfs init`
  const photo = Buffer.alloc((1 << 20) + 3, 7);
  writeFileSync(join(dir, 'photo.bin'), photo);
  const put = await smhfs(['--library', s.lib, 'put', join(dir, 'photo.bin'), 'photo.bin']);
  if (put.code !== 0) throw new Error(`put: ${put.stderr}`);
  return { ...s, photo };
}

/** `smhfs mount --daemon …`; the server's pid from its message; teardown stops it. */
async function daemon(t: Test, s: Scene, args: string[] = []): Promise<{ code: number; stderr: string; pid?: number; metrics?: string }> {
  const r = await smhfs(['--library', s.lib, 'mount', s.mp, '--daemon', '--log-file', s.log, ...args], { timeoutMs: 120_000 });
  const pid = /\(pid (\d+)\)/.exec(r.stderr)?.[1];
  const metrics = /metrics at (http:\/\/\S+\/metrics)/.exec(r.stderr)?.[1];
  const out = { code: r.code, stderr: r.stderr, ...(pid ? { pid: Number(pid) } : {}), ...(metrics ? { metrics } : {}) };
  t.teardown(() => stopServer(s.mp, out.pid));
  return out;
}

/** A child of ours that opens `file` for appending, writes `data` and keeps it open (no close, no flush). */
function holdOpen(file: string, data: string): { pid: number; ready: Promise<void>; done: Promise<unknown> } {
  const script =
    "const fs=require('fs');const fd=fs.openSync(process.argv[1],'a');fs.writeSync(fd,process.argv[2]);process.stdout.write('ready');setTimeout(()=>{},60000)";
  const child = spawn(process.execPath, ['-e', script, file, data], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ready = new Promise<void>((res, rej) => {
    child.stdout!.once('data', () => res());
    child.once('exit', () => rej(new Error(`could not open ${file}`)));
  });
  ready.catch(() => undefined);
  return { pid: child.pid!, ready, done: new Promise((r) => child.on('exit', r)) };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format (0.0.4), strictly: every line a comment or `name{labels} value`. */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
      const eq = l.indexOf('=');
      labels[l.slice(0, eq)] = l.slice(eq + 2, -1);
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  t.test('M1: mount --daemon returns once the mount serves; metrics scraped and parsed during the mount', async (t) => {
    const s = await scene(t);
    const d = await daemon(t, s, ['--metrics', '127.0.0.1:0', '--log-level', 'debug']);
    t.equal(d.code, 0, `exit 0: ${d.stderr}`);
    t.equal(await isMounted(s.mp), true, 'mounted the moment it returned (no waiting)');
    t.match(d.stderr, /^smhfs: mount: serving \S+\/lib at \S+\/mnt in the background \(pid \d+\); log: \S+\/logs\/mount\.log; metrics at http:\/\/127\.0\.0\.1:\d+\/metrics; stop with "smhfs unmount \S+\/mnt"\n$/);
    const pid = d.pid!;
    t.ok(pidAlive(pid), 'the server runs on');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    t.equal(Number(stat[3]), pid, 'in a session of its own (no terminal, no SIGHUP when the shell goes)');
    t.equal((await readRegistry(s.mp))?.pid, pid, 'the mount registry names the same server');

    // Work for the counters: a read (through the page cache on fuse-native), writes, and a writer left open.
    await ok(`cmp '${join(s.dir, 'photo.bin')}' '${join(s.mp, 'photo.bin')}'`);
    await ok(`for i in 1 2 3; do echo "file $i" > '${s.mp}/f'$i; done; cat '${s.mp}'/f* > /dev/null`);
    const writer = holdOpen(join(s.mp, 'staged.txt'), 'x'.repeat(5000));
    await writer.ready;
    t.teardown(() => {
      try {
        process.kill(writer.pid, 'SIGKILL');
      } catch {
        // gone
      }
    });
    const res = await fetch(d.metrics!);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheus(await res.text());
    t.equal(types.get('smhfs_fuse_requests_total'), 'counter');
    t.equal(types.get('smhfs_fuse_request_duration_seconds'), 'histogram');
    for (const op of ['create', 'write', 'read', 'flush', 'release']) {
      t.ok((value(samples, 'smhfs_fuse_requests_total', { op }) ?? 0) >= 1, `requests counted: ${op}`);
      const count = value(samples, 'smhfs_fuse_request_duration_seconds_count', { op }) ?? -1;
      t.ok(count >= 1, `latency observed: ${op}`);
      const buckets = samples
        .filter((x) => x.name === 'smhfs_fuse_request_duration_seconds_bucket' && x.labels['op'] === op)
        .map((x) => [x.labels['le'] === '+Inf' ? Infinity : Number(x.labels['le']), x.value] as const)
        .sort((a, b) => a[0] - b[0]);
      t.ok(buckets.length > 5, `${op}: buckets`);
      t.ok(buckets.every((b, i) => i === 0 || b[1] >= buckets[i - 1]![1]), `${op}: cumulative buckets`);
      t.equal(buckets[buckets.length - 1]![1], count, `${op}: +Inf bucket = count`);
    }
    // On the ll binding a local blob's bytes go from its file to the kernel (a lent descriptor,
    // counted as openFile), never through the page cache; on fuse-native they pass the page cache.
    const binding = /^binding\s+(\S+)/m.exec((await smhfs(['stats', s.mp])).stdout)?.[1];
    t.ok(binding === 'll' || binding === 'fuse-native', `smhfs stats names the binding (${binding})`);
    if (binding === 'll') {
      t.equal(value(samples, 'smhfs_cache_fetched_bytes_total') ?? 0, 0, 'no local bytes copied through the page cache');
      t.ok((value(samples, 'smhfs_blob_requests_total', { op: 'openFile' }) ?? 0) >= 1, 'blob descriptors lent for reads counted');
    } else {
      t.ok((value(samples, 'smhfs_cache_misses_total') ?? 0) >= 1, 'cache misses');
      t.ok((value(samples, 'smhfs_cache_fetched_bytes_total') ?? 0) >= s.photo.length, 'bytes fetched into the cache');
      t.ok((value(samples, 'smhfs_cache_bytes') ?? 0) > 0, 'cached bytes');
      const reads = (value(samples, 'smhfs_blob_requests_total', { op: 'getRange' }) ?? 0) + (value(samples, 'smhfs_blob_requests_total', { op: 'getRangeInto' }) ?? 0);
      t.ok(reads >= 1, 'blob reads counted');
    }
    t.ok((value(samples, 'smhfs_cache_buffer_bytes') ?? 0) >= (value(samples, 'smhfs_cache_bytes') ?? 0), 'buffer bytes: at least the cached bytes');
    t.ok(value(samples, 'smhfs_cache_hits_total') !== undefined && value(samples, 'smhfs_blob_retries_total') === 0, 'hits and retries exported');
    const stores = (value(samples, 'smhfs_blob_requests_total', { op: 'putFile' }) ?? 0) + (value(samples, 'smhfs_blob_requests_total', { op: 'adoptFile' }) ?? 0);
    t.ok(stores >= 3, `blob writes counted (${stores})`);
    t.equal(value(samples, 'smhfs_blob_errors_total', { op: 'getRange' }), 0, 'blob errors exported');
    t.equal(value(samples, 'smhfs_open_files'), 1, 'one file open (the writer)');
    t.ok((value(samples, 'smhfs_staged_bytes') ?? 0) >= 5000, 'its bytes are staged, not committed');
    t.ok((value(samples, 'smhfs_process_resident_memory_bytes') ?? 0) > 0, 'process metrics');

    process.kill(writer.pid, 'SIGKILL');
    await writer.done;
    const log = readFileSync(s.log, 'utf8');
    t.match(log, /^\S+Z smhfs\[\d+\] INFO serving \S+\/lib \(space -\) at \S+\/mnt/m, 'the log file, with time, pid and level');
    t.match(log, /^\S+Z smhfs\[\d+\] DEBUG write \/f1 -> ok \(\d+\.\d+ ms\)$/m, '--log-level debug: one line per request');
    const u = await smhfs(['unmount', s.mp]);
    t.equal(u.code, 0, u.stderr);
    t.ok(await waitGone(pid), 'the server exits after the unmount');
    t.match(readFileSync(s.log, 'utf8'), /INFO unmounted \S+\/mnt\n$/);
  });

  t.test('M1: mount --daemon fails with the reason and exit 1, leaving nothing behind', async (t) => {
    const s = await scene(t);
    const notLib = join(s.dir, 'papers');
    mkdirSync(notLib);
    writeFileSync(join(notLib, 'thesis.txt'), 'mine');
    const r = await smhfs(['--library', notLib, 'mount', s.mp, '--daemon', '--log-file', s.log], { timeoutMs: 120_000 });
    t.equal(r.code, 1, 'exit 1');
    t.match(r.stderr, /^smhfs: mount: \S+\/papers: is not empty and holds no smhfs library; choose an empty or new folder \(NotALibrary\)\n$/, r.stderr);
    t.equal(await isMounted(s.mp), false, 'nothing mounted');
    t.equal(await readRegistry(s.mp), undefined, 'no server registered');
    t.match(readFileSync(s.log, 'utf8'), /NotALibrary/, 'the log says it too');
    t.same(readFileSync(join(notLib, 'thesis.txt'), 'utf8'), 'mine');
    t.notOk(existsSync(join(notLib, 'blobs')), 'nothing created in a folder that is not a library');

    const file = join(s.dir, 'a-file');
    writeFileSync(file, '');
    const f = await smhfs(['--library', s.lib, 'mount', file, '--daemon', '--log-file', s.log], { timeoutMs: 120_000 });
    t.equal(f.code, 1);
    t.match(f.stderr, /^smhfs: mount: \S+a-file is not a directory\n$/, f.stderr);

    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
    t.teardown(() => busy.close());
    const port = (busy.address() as { port: number }).port;
    const m = await smhfs(['--library', s.lib, 'mount', s.mp, '--daemon', '--log-file', s.log, '--metrics', `127.0.0.1:${port}`], { timeoutMs: 120_000 });
    t.equal(m.code, 1, 'a metrics address in use');
    t.match(m.stderr, new RegExp(`^smhfs: mount: cannot serve metrics at 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.* \\(MetricsUnavailable\\)\\n$`), m.stderr);
    t.equal(await isMounted(s.mp), false);
    const log = await smhfs(['--library', s.lib, 'mount', s.mp, '--log-file', join(s.mp, 'x.log')]);
    t.equal(log.code, 2, 'a log file inside the mountpoint is refused (the server would wait on itself)');
  });

  t.test('M1: --read-only, --uid, --gid, --umask; a library on read-only media mounts read-only', async (t) => {
    const s = await scene(t);
    const ro = join(s.dir, 'ro-lib');
    mkdirSync(ro);
    const bind = await sh(`mount --bind '${s.lib}' '${ro}' && mount -o remount,bind,ro '${ro}'`);
    t.equal(bind.code, 0, `read-only bind mount (root): ${bind.stderr}`);
    t.teardown(() => sh(`umount '${ro}' || umount -l '${ro}'`));
    const refused = await smhfs(['--library', ro, 'mount', s.mp, '--daemon', '--log-file', s.log], { timeoutMs: 120_000 });
    t.equal(refused.code, 1, 'a writable mount of a read-only library is refused');
    t.match(refused.stderr, /mount it with --read-only .*\(LibraryReadOnly\)\n$/, refused.stderr);
    t.equal(await isMounted(s.mp), false);
    const d = await smhfs(['--library', ro, 'mount', s.mp, '--daemon', '--log-file', s.log, '--read-only', '--uid', '4321', '--gid', '5432', '--umask', '027'], {
      timeoutMs: 120_000,
    });
    const pid = Number(/\(pid (\d+)\)/.exec(d.stderr)?.[1]);
    t.teardown(() => stopServer(s.mp, pid || undefined));
    t.equal(d.code, 0, d.stderr);
    t.match((await sh(`grep ' ${s.mp} ' /proc/mounts`)).stdout, /fuse\.smhfs ro,/, 'mounted read-only');
    t.equal((await ok(`stat -c '%u %g %a' '${join(s.mp, 'photo.bin')}'`)).trim(), '4321 5432 750', 'owner and group as asked; mode 0777 minus the umask (FUSE umask=)');
    await ok(`cmp '${join(s.dir, 'photo.bin')}' '${join(s.mp, 'photo.bin')}'`);
    const w = await sh(`touch '${join(s.mp, 'new')}'`);
    t.not(w.code, 0);
    t.match(w.stderr, /Read-only file system/);
  });

  t.test('M1: mount -t fuse.smhfs and an fstab line (mount -a -T) through the mount(8) helpers', async (t) => {
    const s = await scene(t);
    const prefix = join(s.dir, 'usr');
    const helpers = ['/sbin/mount.smhfs', '/sbin/mount.fuse.smhfs'];
    const saved = helpers.map((h) => `${h}.saved-by-test-${process.pid}`);
    helpers.forEach((h, i) => {
      if (existsSync(h)) renameSync(h, saved[i]!);
    });
    t.teardown(() =>
      helpers.forEach((h, i) => {
        rmSync(h, { force: true });
        if (existsSync(saved[i]!)) renameSync(saved[i]!, h);
      }),
    );
    const inst = await sh(`make -s --no-print-directory install-files PREFIX='${prefix}' SBINDIR=/sbin`, { cwd: ROOT });
    t.equal(inst.code, 0, inst.stderr + inst.stdout);

    const m = await sh(`mount -t fuse.smhfs '${s.lib}' '${s.mp}' -o allow_other,nosuid,log_file='${s.log}',cache_size=64M`, { timeoutMs: 120_000 });
    const pid1 = (await readRegistry(s.mp))?.pid;
    t.teardown(() => stopServer(s.mp, pid1));
    t.equal(m.code, 0, `mount -t fuse.smhfs: ${m.stderr}`);
    t.match((await sh(`grep ' ${s.mp} ' /proc/mounts`)).stdout, /^smhfs \S+ fuse\.smhfs rw,nosuid,.*allow_other/, 'mounted, with the FUSE options');
    await ok(`cmp '${join(s.dir, 'photo.bin')}' '${join(s.mp, 'photo.bin')}'`);
    await ok(`echo through-mount8 > '${join(s.mp, 'm8.txt')}'`);
    t.equal((await sh(`umount '${s.mp}'`)).code, 0, 'umount(8) unmounts it');
    t.ok(pid1 !== undefined && (await waitGone(pid1)), 'and the server exits');

    const fstab = join(s.dir, 'fstab');
    writeFileSync(
      fstab,
      `# smhfs test fstab\n${s.lib} ${s.mp} smhfs ro,nofail,_netdev,x-systemd.automount,log_file=${s.log},uid=4321,umask=027 0 0\n` +
        `${s.lib} ${join(s.dir, 'never')} fuse.smhfs noauto 0 0\n`,
    );
    const a = await sh(`mount -a -T '${fstab}'`, { timeoutMs: 120_000 });
    const pid2 = (await readRegistry(s.mp))?.pid;
    t.teardown(() => stopServer(s.mp, pid2));
    t.equal(a.code, 0, `mount -a -T: ${a.stderr}`);
    t.match((await sh(`grep ' ${s.mp} ' /proc/mounts`)).stdout, /fuse\.smhfs ro,/, 'the fstab line mounted it read-only');
    t.equal((await ok(`stat -c '%u %a' '${join(s.mp, 'm8.txt')}'`)).trim(), '4321 750', 'uid= and umask= from fstab');
    t.equal((await ok(`cat '${join(s.mp, 'm8.txt')}'`)).trim(), 'through-mount8');
    t.match((await sh(`touch '${join(s.mp, 'x')}'`)).stderr, /Read-only file system/);
    t.notOk(existsSync(join(s.dir, 'never')), 'noauto lines are left alone');
    t.equal((await sh(`umount '${s.mp}'`)).code, 0);
    t.ok(pid2 !== undefined && (await waitGone(pid2)));
  });
}
