// How the low-level binding handles requests as a whole: 1 MiB requests, lookup counts under
// churn, interrupts of async requests, exceptions, async writes keeping their buffers, reads
// answered from a file descriptor (spliced or not), unmounts by anyone, a crashed server, and a
// machine where the addon could not be built.
import t from 'tap';
import { holdKernelCachesFor } from './helpers/kernel-cache-lock.js';
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spliceMaxRead, type Ctx } from '../src/fuse/ll/binding.js';
import { MemFs } from './helpers/ll-memfs.js';
import { ROOT, isMounted, llCleanup, llMount, llUnavailable, ok, sh, sleep, until, within } from './helpers/ll.js';

const MiB = 1 << 20;

/** Start a program in a child (its pid is ours to kill); resolves its exit. */
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { pid: number; exited: Promise<{ code: number | null; signal: string | null }>; out: () => string } {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { pid: c.pid!, exited: new Promise((r) => c.on('exit', (code, signal) => r({ code, signal }))), out: () => out };
}

const why = await llUnavailable();
// drop_caches is machine-wide: each subtest that drops the kernel's caches or relies on them
// holds a lock from that step to its end (helpers/kernel-cache-lock.ts); the rest runs beside any file.
if (why) {
  t.plan(0, `binding tests need FUSE: ${why}`);
} else {
  t.test('1 MiB requests: writes and reads arrive whole (max_pages)', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    t.equal(m.session.info().maxWrite, MiB, 'max_write negotiated at 1 MiB');
    t.equal(m.session.info().maxRead, MiB, 'max_read 1 MiB');
    await ok(`head -c ${16 * MiB} /dev/urandom > '${m.dir}/src' && dd if='${m.dir}/src' of='${m.p('f')}' bs=1M oflag=direct status=none`);
    t.equal(fs.maxWrite, MiB, 'a 1 MiB O_DIRECT write is one request');
    t.equal(await ok(`dd if='${m.p('f')}' bs=1M iflag=direct status=none | cmp - '${m.dir}/src' && echo same`), 'same\n');
    t.equal(fs.maxRead, MiB, 'a 1 MiB O_DIRECT read is one request');
  });

  for (const splice of [false, true]) {
    t.test(`reads answered with [fd, position] from a file (${splice ? 'spliced' : 'copied by libfuse'})`, async (t) => {
      const disk = await mkdtemp(join(tmpdir(), 'smhfs-ll-durable-'));
      t.teardown(() => rm(disk, { recursive: true, force: true }));
      const fs = new MemFs({ durableDir: disk });
      const m = await llMount(t, fs, { splice });
      const want = splice ? spliceMaxRead() : MiB;
      t.equal(m.session.info().maxRead, want, `max_read ${want} (a spliced reply must fit in a pipe)`);
      t.equal(!!(m.session.info().want & (1 << 7)), splice, 'FUSE_CAP_SPLICE_WRITE as asked');
      await ok(`head -c ${6 * MiB + 12345} /dev/urandom > '${m.dir}/src' && cp '${m.dir}/src' '${m.p('f')}'`);
      t.equal(await ok(`dd if='${m.p('f')}' bs=1M iflag=direct status=none | cmp - '${m.dir}/src' && echo same`), 'same\n', 'O_DIRECT, to the last odd byte');
      await holdKernelCachesFor(t); // it drops them
      t.equal(await ok(`echo 1 > /proc/sys/vm/drop_caches; cmp '${m.p('f')}' '${m.dir}/src' && echo same`), 'same\n', 'through the page cache');
      t.ok(fs.maxRead <= want && fs.maxRead > 0);
    });
  }

  t.test('lookup counts under churn: every reference the kernel took comes back through forget', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    await holdKernelCachesFor(t); // the kernel's references are counted, then dropped
    // The per-name renames, symlinks, stats and links are the same system calls mv, ln -s, stat -L
    // and ln make, from one node child instead of 850 programs (~4 s of CPU on their own).
    const node = (body: string): string => `'${process.execPath}' -e "const fs = require('fs'); ${body}"`;
    await ok(
      `cd '${m.mountpoint}' && for d in 1 2 3 4; do mkdir d$d; for i in $(seq 1 250); do echo $i > d$d/f$i; done; done && ` +
        `ls -lR . > /dev/null && ` +
        node("for (let i = 1; i <= 250; i++) { fs.renameSync('d1/f' + i, 'd2/g' + i); fs.symlinkSync('../d2/g' + i, 'd3/l' + i); fs.statSync('d3/l' + i); }") +
        ` && rm d2/f* d4/f1* && ` +
        node("for (let i = 1; i <= 100; i++) fs.linkSync('d3/f' + i, 'd4/h' + i);") +
        ` && rm -r d1 && ls -lR > /dev/null`,
      { timeoutMs: 120_000 },
    );
    t.ok(fs.lookupsHeld() > 500, `the kernel holds references (${fs.lookupsHeld()})`);
    t.same(fs.violations, [], 'no count went below zero while the kernel held them');
    // evict the kernel's dentries and inodes: it forgets everything it is not using
    await ok('sync; echo 2 > /proc/sys/vm/drop_caches');
    const drained = await until(async () => {
      if (fs.lookupsHeld() === 0) return true;
      await sh('echo 2 > /proc/sys/vm/drop_caches');
      return false;
    }, 30_000, 200);
    t.ok(drained, `all references forgotten (left: ${fs.lookupsHeld()})`);
    t.same(fs.violations, [], 'no forget of more than was looked up, none of an unknown node');
    const linked = [...fs.nodes.values()].filter((n) => n.nlink > 0).length;
    t.equal(fs.nodes.size, linked, 'every removed node was freed once forgotten');
    const d4 = fs.node(fs.inoOf('d4')!)!.children!.size;
    t.equal(await ok(`ls '${m.p('d4')}' | wc -l; cat '${m.p('d3/l7')}'`), `${d4}\n7\n`, 'and the tree still answers');
  });

  t.test('interrupts: a reader killed during a slow async read is let go at once', async (t) => {
    const fs = new MemFs();
    const slow = fs.addFile('slow', Buffer.alloc(4096, 1));
    let readStarted!: () => void;
    const started = new Promise<void>((r) => (readStarted = r));
    let aborted = 0;
    fs.hooks.read = (ctx: Ctx, ino: unknown) => {
      if (ino !== slow.ino) return undefined;
      return new Promise((res, rej) => {
        const timer = setTimeout(() => res(Buffer.alloc(10, 2)), 120_000); // far longer than the test
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          aborted++;
          rej(ctx.signal.reason);
        });
        readStarted();
      });
    };
    const m = await llMount(t, fs, { directIo: true });
    const reader = start('cat', [m.p('slow')]);
    await started;
    t.equal(m.session.info().pending, 1, 'the read is pending');
    const t0 = Date.now();
    process.kill(reader.pid, 'SIGKILL');
    const r = await within(reader.exited, 20_000, 'still there');
    t.same(r, { code: null, signal: 'SIGKILL' }, 'the reader is gone');
    t.ok(Date.now() - t0 < 20_000, `within ${Date.now() - t0} ms`);
    t.equal(aborted, 1, 'the handler saw ctx.signal abort');
    t.ok(await until(() => m.session.info().pending === 0, 5000), 'and the request was answered');
    t.equal(await ok(`echo ok > '${m.p('f')}' && cat '${m.p('f')}'`), 'ok\n', 'the mount goes on');
  });

  t.test('exceptions: a handler that throws answers EIO and is reported; errno errors map', async (t) => {
    const fs = new MemFs();
    const errors: Array<[string, string]> = [];
    fs.hooks.lookup = (_ctx: Ctx, _parent: unknown, name: unknown) => {
      if (name === 'boom') throw new Error('a bug in the file system');
      if (name === 'async-boom') return Promise.reject(new TypeError('an async bug'));
      if (name === 'denied') throw Object.assign(new Error('no'), { code: 'EACCES' });
      if (name === 'minus') return -1; // EPERM
      return undefined;
    };
    const m = await llMount(t, fs, { onError: (e, op) => errors.push([op, (e as Error).message]) });
    t.match((await sh(`stat '${m.p('boom')}'`)).stderr, /Input\/output error/);
    t.match((await sh(`stat '${m.p('async-boom')}'`)).stderr, /Input\/output error/);
    t.match((await sh(`stat '${m.p('denied')}'`)).stderr, /Permission denied/);
    t.match((await sh(`stat '${m.p('minus')}'`)).stderr, /Operation not permitted/);
    t.same(errors, [
      ['lookup', 'a bug in the file system'],
      ['lookup', 'an async bug'],
    ], 'only the unexpected errors were reported, with their op');
    t.equal(await ok(`echo fine > '${m.p('f')}' && cat '${m.p('f')}'`), 'fine\n', 'the mount goes on');

    // A read answered with its pieces (an array of Buffers, as smhfs answers a read across cached
    // units) is one reply of their bytes in order — sync, async, and more pieces than the addon
    // takes at once (joined by the wrapper); on this mount, so no error is reported for them.
    const data = Buffer.alloc(3 * MiB + 777);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    const pieces = (off: number, size: number, n: number): Buffer[] => {
      const end = Math.min(data.length, off + size);
      const cut = Array.from({ length: n + 1 }, (_, i) => off + Math.floor(((end - off) * i) / n));
      return cut.slice(0, -1).map((a, i) => data.subarray(a, cut[i + 1]));
    };
    const sync = fs.addFile('pieces-sync', data, 0o444);
    const later = fs.addFile('pieces-async', data, 0o444);
    const many = fs.addFile('pieces-many', data, 0o444);
    fs.hooks.read = (_ctx: Ctx, ino: unknown, _fh: unknown, size: unknown, offset: unknown) => {
      const [n, off] = [size as number, offset as number];
      if (off >= data.length) return undefined;
      if (ino === sync.ino) return pieces(off, n, 3);
      if (ino === later.ino) return Promise.resolve(pieces(off, n, 2));
      if (ino === many.ino) return pieces(off, n, 100);
      return undefined;
    };
    await writeFile(join(m.dir, 'pieces.src'), data);
    for (const name of ['pieces-sync', 'pieces-async', 'pieces-many']) {
      t.equal(await ok(`dd if='${m.p(name)}' bs=128k iflag=direct status=none | cmp - '${m.dir}/pieces.src' && echo same`), 'same\n', `${name}: the pieces arrive in order, to the last byte`);
    }
    delete fs.hooks.read;
    t.same(errors.length, 2, 'no answer made of pieces was taken for a bad result');
  });

  t.test('async writes keep their data: concurrent writers, mixed sizes, checksums', async (t) => {
    const fs = new MemFs({ async: true });
    const m = await llMount(t, fs);
    const recvBefore = m.session.info().recvSize;
    await ok(`for i in 1 2 3 4; do head -c $((3*1048576 + i*4097)) /dev/urandom > '${m.dir}/s'$i; done`);
    await ok(
      `cd '${m.mountpoint}' && (dd if='${m.dir}/s1' of=f1 bs=1M status=none & dd if='${m.dir}/s2' of=f2 bs=4k status=none & ` +
        `dd if='${m.dir}/s3' of=f3 bs=1M oflag=direct status=none & dd if='${m.dir}/s4' of=f4 bs=65536 status=none & wait)`,
    );
    for (const i of [1, 2, 3, 4]) t.equal(await ok(`cmp '${m.dir}/s${i}' '${m.p(`f${i}`)}' && echo same`), 'same\n', `file ${i}`);
    t.ok(m.session.info().deferred > 100, 'the writes were answered later');
    t.equal(m.session.info().recvSize, recvBefore);
  });

  t.test('someone else unmounts (fusermount -u): the session ends and destroy is called', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    let event = false;
    m.session.on('unmounted', () => (event = true));
    await ok(`fusermount -u '${m.mountpoint}'`);
    await within(m.session.closed, 10_000, undefined);
    t.ok(event, "'unmounted' emitted");
    t.ok(m.session.ended);
    t.ok(fs.destroyed, 'destroy was called');
    t.equal(await isMounted(m.mountpoint), false);
  });

  t.test('unmount() of a busy mount is refused and changes nothing; lazily it detaches', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    await ok(`echo x > '${m.p('f')}'`);
    const holder = start(process.execPath, ['-e', "require('fs').openSync(process.argv[1],'r');process.stdout.write('open');setTimeout(()=>{},60000)", m.p('f')]);
    await until(() => holder.out().includes('open'), 10_000);
    await t.rejects(m.session.unmount(), { code: 'EBUSY' });
    t.equal(await ok(`cat '${m.p('f')}'`), 'x\n', 'still mounted and serving');
    process.kill(holder.pid, 'SIGKILL');
    await holder.exited;
    await m.session.unmount();
    t.ok(m.session.ended, 'unmounted once idle');
  });

  t.test('close() with a request pending: it is answered (the caller gets an error), a late reply is dropped', async (t) => {
    const fs = new MemFs();
    let release!: (v: number) => void;
    let pending = false;
    fs.hooks.lookup = (_ctx: Ctx, _p: unknown, name: unknown) =>
      name === 'hang'
        ? new Promise<number>((r) => {
            pending = true;
            release = r;
          })
        : undefined;
    const m = await llMount(t, fs);
    const caller = start('stat', [m.p('hang')]);
    await until(() => pending, 10_000);
    m.session.close();
    const r = await within(caller.exited, 10_000, 'hung');
    t.not(r, 'hung', 'the caller was let go');
    t.match(caller.out(), /not connected|aborted|Input\/output|No such device/, `with an error (${caller.out().trim()})`);
    await m.session.closed;
    release(-2); // the late answer: ignored, no crash
    await sleep(50);
    t.equal(await isMounted(m.mountpoint), false, 'the mountpoint was detached');
  });

  t.test('a crashed server (kill -9) leaves a dead mount that the next mount recovers', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'smhfs-ll-crash-'));
    const mp = join(dir, 'mnt');
    await mkdir(mp);
    await ok(`echo data > '${dir}/file'`);
    t.teardown(() => llCleanup(undefined, dir));
    const server = start(process.execPath, [join(ROOT, 'dist', 'bench', 'll-memfs.js'), mp, join(dir, 'file')]);
    t.ok(await until(() => server.out().includes('ready'), 20_000), `the server mounted: ${server.out()}`);
    t.equal(await ok(`cat '${mp}/data.bin'`), 'data\n');
    process.kill(server.pid, 'SIGKILL');
    await server.exited;
    t.match((await sh(`stat '${mp}'`)).stderr, /Transport endpoint is not connected/, 'dead mount');
    const fs = new MemFs();
    const m = await llMount(t, fs, {}, dir);
    t.equal(await ok(`echo again > '${m.p('f')}' && cat '${m.p('f')}'`), 'again\n', 'mounted over it and serving');
  });

  t.test('a machine without the addon: the build does not fail the install, and the loader says why', async (t) => {
    const tmp = await mkdtemp(join(tmpdir(), 'smhfs-ll-nobuild-'));
    t.teardown(() => rm(tmp, { recursive: true, force: true }));
    for (const f of ['smhfs_ll.c', 'binding.gyp', 'build.mjs']) await cp(join(ROOT, 'src', 'fuse', 'll', f), join(tmp, f));
    // libfuse3-dev missing: pkg-config cannot find fuse3
    const r = await sh(`cd '${tmp}' && PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH= '${process.execPath}' build.mjs`);
    t.equal(r.code, 0, 'npm ci goes on');
    t.match(r.stderr, /libfuse 3 binding was not built: libfuse3 development files are missing.*\n.*--binding fuse-native/);
    t.match(await readFile(join(tmp, 'build', 'UNAVAILABLE'), 'utf8'), /libfuse3 development files are missing/);
    const strict = await sh(`cd '${tmp}' && PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH= '${process.execPath}' build.mjs --strict`);
    t.equal(strict.code, 1, 'make (--strict) fails instead');
    const noPkgConfig = await sh(`cd '${tmp}' && PATH=/nonexistent '${process.execPath}' build.mjs`);
    t.equal(noPkgConfig.code, 0);
    t.match(noPkgConfig.stderr, /pkg-config is not installed/);
    // the loader, pointed at that build, reports the reason; mount() refuses with it
    const script =
      `const b = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'fuse', 'll', 'binding.js'))});` +
      "const a = b.lowLevelAvailable(); console.log(JSON.stringify(a));" +
      "try { await b.mount('/nonexistent-mp', {}); console.log('mounted?!') } catch (e) { console.log(e.code + ': ' + e.message) }";
    const out = await ok(`SMHFS_LL_ADDON='${tmp}/build/Release/smhfs_ll.node' '${process.execPath}' --input-type=module -e ${JSON.stringify(script)}`);
    const [avail, mounted] = out.trim().split('\n');
    t.same(JSON.parse(avail!).ok, false);
    t.match(JSON.parse(avail!).reason, /the libfuse 3 binding is unavailable: pkg-config is not installed; use --binding fuse-native/);
    t.match(mounted, /^ELLUNAVAILABLE: the libfuse 3 binding is unavailable/);
  });
}
