// D6, the truthful unmount (reproducer 4): a file's new content is committed only by its
// writer's close(2) or fsync(2). SIGTERM/SIGINT/`smhfs unmount` wait up to --grace for files open
// for writing, then discard what neither saved (the previous version stays, the log names each
// file); `smhfs unmount -l` detaches at once and keeps serving open files until they close.
// Every test ends with `smhfs fsck` and the checksums of every earlier file.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileDriver } from './helpers/file-driver.js';
import { expectFsckClean, expectSameFiles, librarySha256, sha256File } from './helpers/fsck.js';
import { cleanup, fuseUnavailable, isMounted, mountStats, ok, sh, smhfs, startMount, type Mount } from './helpers/mount.js';

const MiB = 1024 * 1024;
/**
 * The grace of the tests whose writer never closes: it runs out in full every time, so it is
 * short. Its length is not what they check (that the wait is said and bounded, and what is
 * discarded after it); the writer that closes within the grace has 120 s.
 */
const SHORT_GRACE = '0.2';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `bash -c cmd` in its own process group (killed as a group, by the pid we started). */
function background(cmd: string): { done: Promise<number | null>; kill(): void } {
  const child = spawn('bash', ['-c', cmd], { detached: true, stdio: 'ignore' });
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    done,
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
}

/** The mount's counters (what `smhfs --json stats` prints, asked from this process: polled below). */
function stats(m: Mount): Promise<{ io: { bytesWritten: number; discarded: number } }> {
  return mountStats(m.mountpoint);
}

async function until(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Earlier files every test checks at its end: a random 3 MB file and a text file. */
async function earlierFiles(m: Mount): Promise<Map<string, string>> {
  await writeFile(join(m.dir, 'keep.bin'), randomBytes(3_000_000));
  await ok(`cp '${m.dir}/keep.bin' '${m.p('keep.bin')}' && echo text > '${m.p('keep.txt')}'`);
  return librarySha256(m.library);
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  t.test('D6: SIGTERM while dd writes (reproducer 4): nothing is committed truncated; the log names each discarded file', async (t) => {
    const m = await startMount({ args: ['--grace', SHORT_GRACE] });
    t.teardown(() => cleanup(m, { keepDir: true }));
    const v1 = randomBytes(MiB);
    await writeFile(join(m.dir, 'v1.bin'), v1);
    await ok(`cp '${m.dir}/v1.bin' '${m.p('t.bin')}' && cp '${m.dir}/v1.bin' '${m.p('o.bin')}'`);
    const before = await earlierFiles(m);
    before.delete('t.bin'); // checked on their own below
    before.delete('o.bin');
    // Two dd's, one overwriting t.bin and one making new.bin: each writes 20 MiB, then waits for
    // more input for a long time — so each is in the middle of its file when the signal comes.
    const feed = `(head -c ${20 * MiB} /dev/urandom; sleep 60; head -c ${380 * MiB} /dev/urandom)`;
    const dd1 = background(`${feed} | dd of='${m.p('t.bin')}' bs=1M iflag=fullblock status=none`);
    const dd2 = background(`${feed} | dd of='${m.p('new.bin')}' bs=1M iflag=fullblock status=none`);
    t.teardown(() => {
      dd1.kill();
      dd2.kill();
    });
    // And a program rewriting o.bin through one descriptor (open with O_TRUNC, write, no close).
    const d = fileDriver();
    t.teardown(() => d.kill());
    const fd = await d.open(m.p('o.bin'), 'w');
    await d.write(fd, randomBytes(5 * MiB));
    await until('45 MiB written', async () => (await stats(m)).io.bytesWritten >= 45 * MiB);
    process.kill(m.pid, 'SIGTERM');
    t.equal(await m.exited, 1, 'exit 1: files were discarded');
    const log = m.output();
    t.match(log, /SIGTERM: 3 files are open for writing \(/, 'the log says what it waits for');
    t.match(log, /waiting up to 0\.2 s/);
    t.match(log, /discarded unsaved writes to t\.bin \(20971520 bytes/, 'and names each discarded file');
    t.match(log, /discarded unsaved writes to new\.bin/);
    t.match(log, /discarded unsaved writes to o\.bin \(5242880 bytes/);
    t.notMatch(log, /open files keep working until closed/, 'no promise it cannot keep');
    t.equal(await isMounted(m.mountpoint), false, 'unmounted');
    dd1.kill();
    dd2.kill();
    d.kill();
    await Promise.all([dd1.done, dd2.done, d.exited]);

    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    t.equal(await sha256File(again.p('o.bin')), sha(v1), 'o.bin has its previous content, not 5 MiB of a partial write');
    // dd opens its output with O_TRUNC, dups it onto fd 1 and closes the first descriptor: that
    // close(2) is a commit (of the emptied file) before dd writes a byte. So t.bin holds the
    // version dd's own close saved — or, had dd not closed anything, its previous one.
    const tbin = await sha256File(again.p('t.bin'));
    t.ok(tbin === sha(Buffer.alloc(0)) || tbin === sha(v1), 't.bin: the version a close saved, never 20 MiB of a partial write');
    t.equal((await ok(`stat -c %s '${again.p('new.bin')}'`)).trim(), '0', 'new.bin has its previous (empty) version');
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
    expectSameFiles(t, before, await librarySha256(m.library), 'earlier files');
  });

  t.test('D6: a writer that closes within the grace is committed whole', async (t) => {
    const m = await startMount({ args: ['--grace', '120'] });
    t.teardown(() => cleanup(m, { keepDir: true }));
    const before = await earlierFiles(m);
    const d = fileDriver();
    t.teardown(() => d.kill());
    const part1 = randomBytes(8 * MiB);
    const part2 = randomBytes(8 * MiB);
    const fd = await d.open(m.p('w.bin'), 'w');
    await d.write(fd, part1);
    process.kill(m.pid, 'SIGTERM');
    await until('the server to say it waits', async () => /waiting up to 120 s for it/.test(m.output()));
    t.match(m.output(), /1 file is open for writing \(w\.bin\)/);
    // The server says it is detaching, then detaches: wait for the detach itself (under load it
    // comes a little after the line), while the writer still holds its file open.
    await until('the mount to be detached', async () => !(await isMounted(m.mountpoint)));
    t.equal(await isMounted(m.mountpoint), false, 'detached: no new opens');
    // The writer goes on through its open descriptor, and closes.
    await d.write(fd, part2);
    await d.close(fd);
    t.equal(await m.exited, 0, 'the server exits 0 once the writer closed, long before the grace');
    t.notMatch(m.output(), /discarded unsaved/);
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    t.equal(await sha256File(again.p('w.bin')), sha(Buffer.concat([part1, part2])), 'committed whole');
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
    expectSameFiles(t, before, await librarySha256(m.library), 'earlier files');
  });

  t.test('D6: smhfs unmount --grace says what it waits for, discards what is unsaved after it, exits 1', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m, { keepDir: true }));
    await ok(`echo previous > '${m.p('w.txt')}'`);
    const before = await earlierFiles(m);
    const d = fileDriver();
    t.teardown(() => d.kill());
    const fd = await d.open(m.p('w.txt'), 'r+');
    await d.write(fd, Buffer.from('half-written, never closed'), 0);
    const r = await smhfs(['unmount', m.mountpoint, '--grace', SHORT_GRACE]);
    t.equal(r.code, 1, 'exit 1: a file was discarded');
    t.match(r.stderr, /smhfs unmount: 1 file is open for writing \(w\.txt\).*waiting up to 0\.2 s/, 'the CLI relays what the server does');
    t.match(r.stderr, /the grace of 0\.2 s is over/);
    t.match(r.stderr, /discarded unsaved writes to w\.txt/);
    t.match(r.stderr, /unmounted .* \(1 unsaved file discarded\)/);
    t.equal(await m.exited, 1);
    await t.rejects(d.write(fd, Buffer.from('more')), 'the writer gets an error afterwards, never a silent success');
    d.kill();
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    t.equal(await ok(`cat '${again.p('w.txt')}'`), 'previous\n', 'the previous version stays');
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
    expectSameFiles(t, before, await librarySha256(m.library), 'earlier files');
  });

  t.test('D6: smhfs unmount -l detaches at once; the open writer goes on and its close commits', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m, { keepDir: true }));
    const before = await earlierFiles(m);
    const d = fileDriver();
    t.teardown(() => d.kill());
    const part1 = randomBytes(4 * MiB);
    const part2 = randomBytes(4 * MiB);
    const fd = await d.open(m.p('lazy.bin'), 'w');
    await d.write(fd, part1);
    const r = await smhfs(['unmount', '-l', m.mountpoint]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /detached .*; its server keeps serving the 1 open file until they are closed/);
    t.equal(await isMounted(m.mountpoint), false, 'detached at once');
    await until('the server to notice', async () => /was detached; serving the 1 open file/.test(m.output()));
    await d.write(fd, part2);
    t.equal((await d.fstat(fd)).size, 8 * MiB, 'fstat through the handle');
    await d.close(fd);
    t.equal(await m.exited, 0, 'the server exits 0 once the last file is closed');
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    t.equal(await sha256File(again.p('lazy.bin')), sha(Buffer.concat([part1, part2])), 'committed whole by its close');
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
    expectSameFiles(t, before, await librarySha256(m.library), 'earlier files');
  });

  t.test('D6: fsync saves; what is written after it and never saved is discarded at the unmount', async (t) => {
    const m = await startMount({ args: ['--grace', SHORT_GRACE] });
    t.teardown(() => cleanup(m, { keepDir: true }));
    const before = await earlierFiles(m);
    const d = fileDriver();
    t.teardown(() => d.kill());
    const saved = randomBytes(MiB + 17);
    const fd = await d.open(m.p('synced.bin'), 'w');
    await d.write(fd, saved);
    await d.fsync(fd);
    await d.write(fd, randomBytes(2 * MiB)); // never saved
    process.kill(m.pid, 'SIGINT');
    t.equal(await m.exited, 1);
    t.match(m.output(), /SIGINT: 1 file is open for writing \(synced\.bin\)/);
    t.match(m.output(), /discarded unsaved writes to synced\.bin \(3145745 bytes/);
    d.kill();
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    t.equal(await sha256File(again.p('synced.bin')), sha(saved), 'the fsynced version, exactly');
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
    expectSameFiles(t, before, await librarySha256(m.library), 'earlier files');
  });

  t.test('D6: nothing open: SIGTERM and an unmount by someone else (fusermount -u) stop at once, exit 0', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m));
    await ok(`echo x > '${m.p('f')}'`);
    const r = await sh(`fusermount -u '${m.mountpoint}'`);
    t.equal(r.code, 0, r.stderr);
    t.equal(await m.exited, 0, 'the server notices and exits 0');
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    process.kill(again.pid, 'SIGTERM');
    t.equal(await again.exited, 0);
    t.notMatch(again.output(), /waiting|discarded unsaved/);
    await expectFsckClean(t, m.library);
  });
}
