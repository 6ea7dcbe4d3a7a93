// The mount's life cycle (M1): SIGINT/SIGTERM unmount cleanly (D6: what no close or fsync saved
// within --grace is discarded); `smhfs unmount` from another process; `smhfs stats`; a crash (SIGKILL during a write)
// leaves a stale mount that the next mount recovers, and the library is intact (B6).
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { expectFsckClean, sha256File, sha256Tree } from './helpers/fsck.js';
import { cleanup, fuseUnavailable, isMounted, ok, sh, smhfs, startMount, storeCall, withMount } from './helpers/mount.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A process of ours that keeps `file` open (for reading, or appending `data` first without any
 * close: a shell's `>&3` would dup and close, which flushes); killed by pid.
 */
function holdOpen(file: string, data?: string): { pid: number; done: Promise<unknown>; ready: Promise<void> } {
  const script =
    "const fs=require('fs');const fd=fs.openSync(process.argv[1], process.argv[2] ? 'a' : 'r');" +
    "if (process.argv[2]) fs.writeSync(fd, process.argv[2]);process.stdout.write('ready');setTimeout(()=>{},60000)";
  const child = spawn(process.execPath, ['-e', script, file, data ?? ''], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ready = new Promise<void>((res, rej) => {
    child.stdout!.once('data', () => res());
    child.once('exit', () => rej(new Error(`could not open ${file}`)));
  });
  ready.catch(() => undefined);
  return { pid: child.pid!, done: new Promise((r) => child.on('exit', r)), ready };
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    t.test(`D6: ${signal} unmounts; a file still open for writing after --grace is discarded, never committed; exit 1`, async (t) => {
      // The writer never closes: the grace runs out in full, so it is short (its length is not the check).
      const m = await startMount({ args: ['--grace', '0.2'] });
      t.teardown(() => cleanup(m));
      await ok(`echo committed > '${m.p('a.txt')}'`);
      // A writer still has the file open with staged (uncommitted) bytes when the signal comes.
      const holder = holdOpen(m.p('staged.txt'), 'staged bytes');
      await holder.ready;
      process.kill(m.pid, signal);
      t.equal(await m.exited, 1, 'exit code 1: something was discarded');
      t.equal(await isMounted(m.mountpoint), false, 'unmounted');
      t.match(m.output(), /1 file is open for writing \(staged\.txt\).*waiting up to 0\.2 s/);
      t.match(m.output(), /discarded unsaved writes to staged\.txt/, 'the log names the discarded file');
      t.match(m.output(), /unmounted/);
      process.kill(holder.pid, 'SIGKILL');
      await holder.done;
      const again = await startMount({ dir: m.dir });
      t.teardown(() => cleanup(again));
      t.equal(await ok(`cat '${again.p('a.txt')}'`), 'committed\n', 'the closed file is in the library');
      t.equal(await ok(`stat -c %s '${again.p('staged.txt')}'`), '0\n', 'the unsaved one kept its previous (empty) version');
      t.equal(await again.stop(), 0);
    });
  }

  t.test('smhfs unmount from another process stops a mount in use by readers; stats', async (t) => {
    const m = await withMount(t);
    await ok(`echo x > '${m.p('f')}' && cat '${m.p('f')}' > /dev/null`);
    const st = await smhfs(['stats', m.mountpoint]);
    t.equal(st.code, 0, st.stderr);
    t.match(st.stdout, /getattr\s+\d+/);
    const js = await smhfs(['--json', 'stats', m.mountpoint]);
    const stats = JSON.parse(js.stdout) as { ops: Record<string, { calls: number }>; pid: number; io: { commits: number } };
    t.equal(stats.pid, m.pid);
    t.ok(stats.ops['write']!.calls >= 1 && stats.io.commits >= 1);
    t.match((await sh(`grep ' ${m.mountpoint} ' /proc/mounts`)).stdout, /fuse\.smhfs .*default_permissions/);

    const again = await smhfs(['mount', m.mountpoint, '--library', m.library]);
    t.equal(again.code, 1, 'a second mount on a live mountpoint is refused');
    t.match(again.stderr, /already a mount point/);

    // A reader loses nothing: `smhfs unmount` does not wait for it, and says so (D6).
    const holder = holdOpen(m.p('f'));
    await holder.ready;
    const r = await smhfs(['unmount', m.mountpoint]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /in use .*nothing is open for writing/, 'the server says what it does');
    t.equal(await isMounted(m.mountpoint), false);
    t.equal(await m.stop(), 0, 'the server exits 0');
    process.kill(holder.pid, 'SIGKILL');
    await holder.done;
    const none = await smhfs(['unmount', m.mountpoint]);
    t.equal(none.code, 1, 'not mounted: exit 1 (an error, not a usage error)');
    t.match(none.stderr, /: not mounted \(NotMounted\)\n$/);
  });

  t.test('B6: SIGKILL during a write; the next mount recovers the stale mountpoint; the library is intact', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m, { keepDir: true }));
    await ok(`head -c 3000000 /dev/urandom > '${m.dir}/keep.bin' && cp '${m.dir}/keep.bin' '${m.p('keep.bin')}'`);
    await ok(`echo v1 > '${m.p('doc.txt')}' && ln -s doc.txt '${m.p('link')}'`);
    // A writer streaming into a new file and one rewriting an existing file, both open when the server dies.
    const writer = sh(`dd if=/dev/urandom of='${m.p('inflight.bin')}' bs=1M count=100000 status=none`, { timeoutMs: 30_000 });
    const rewriter = holdOpen(m.p('doc.txt'), 'half-written');
    await rewriter.ready;
    for (let i = 0; i < 100; i++) {
      const staged = await readdir(`${m.library}/staging`, { recursive: true }).catch(() => [] as string[]);
      if (staged.filter((n) => n.includes('open-')).length >= 2) break;
      await sleep(50);
    }
    await sleep(200);
    process.kill(m.pid, 'SIGKILL');
    t.equal(await m.exited, 'SIGKILL');
    const w = await writer;
    t.not(w.code, 0, 'the writer got an error');
    process.kill(rewriter.pid, 'SIGKILL');
    await rewriter.done;
    t.match((await sh(`stat '${m.mountpoint}'`)).stderr, /Transport endpoint is not connected/, 'the mountpoint is stale');
    t.equal(await isMounted(m.mountpoint), true);

    const again = await withMount(t, { dir: m.dir });
    // The probe is a child stat with a 3 s deadline: under heavy load it can time out before the
    // kernel's ENOTCONN arrives; either way the dead server's mount must be detached, and said so.
    t.match(again.output(), /stale mount \((Transport endpoint is not connected|timeout)\).*detached it/, 'recovered, with a message');
    t.equal((await sh(`cmp '${m.dir}/keep.bin' '${again.p('keep.bin')}'`)).code, 0, 'committed files are intact');
    t.equal((await ok(`cat '${again.p('link')}'`)).trim(), 'v1', 'the half-written rewrite is not visible');
    t.equal((await ok(`stat -c %s '${again.p('inflight.bin')}'`)).trim(), '0', 'the new file exists, empty: nothing half-written');
    const staging = await readdir(`${m.library}/staging`);
    t.equal(staging.filter((n) => n.startsWith(`${m.pid}-`)).length, 0, "the dead server's staging folder is gone");
    const gc = (await storeCall(again, 'const r = await lib.collectGarbage(); return { ...r, inflight: space.stat("inflight.bin").size };')) as {
      deleted: number;
      inflight: number;
    };
    t.equal(gc.inflight, 0);
    t.ok(gc.deleted >= 0, 'garbage collection runs on the library');
    await ok(`echo v2 > '${again.p('doc.txt')}'`);
    t.equal((await ok(`cat '${again.p('link')}'`)).trim(), 'v2', 'and it works');
    const files = await sha256Tree(again.mountpoint);
    t.equal(files.get('keep.bin'), await sha256File(`${m.dir}/keep.bin`), 'keep.bin has its bytes');
    await expectFsckClean(t, again.library, {}, 'after the crash');
  });
  t.test('the test harness: a test process that ends without its teardown leaves no mount behind', async (t) => {
    // A script that starts a mount through the harness and exits without cleaning up (as a test
    // that throws before registering its teardown would): the harness's exit hook detaches it.
    const helper = new URL('./helpers/mount.js', import.meta.url).href;
    const script = `const h = await import(${JSON.stringify(helper)}); const m = await h.startMount(); console.log(JSON.stringify({ mp: m.mountpoint, pid: m.pid, dir: m.dir })); process.exit(3);`;
    const r = await sh(`'${process.execPath}' --input-type=module -e '${script}'`, { env: { TAP: '' } });
    t.equal(r.code, 3, r.stderr);
    const left = JSON.parse(r.stdout) as { mp: string; pid: number; dir: string };
    t.teardown(async () => {
      try {
        process.kill(left.pid, 'SIGKILL'); // only if the hook failed: the pid the script printed
      } catch {
        // gone, as it should be
      }
      await sh(`umount -l '${left.mp}' 2>/dev/null; rm -rf '${left.dir}'`);
    });
    t.notOk(await isMounted(left.mp), 'nothing is mounted at its mountpoint');
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      try {
        process.kill(left.pid, 0);
        await sleep(50);
      } catch {
        alive = false;
      }
    }
    t.notOk(alive, 'its server is gone');
  });
}
