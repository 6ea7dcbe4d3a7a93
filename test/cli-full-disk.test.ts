/**
 * D9 (reproducer 8): a full disk. The library lives on a small tmpfs made by the test (root);
 * a filler file takes every free byte. Then every change through the CLI (and, when FUSE is
 * there, through a mount made before the disk filled up) fails with InsufficientStorage (507) /
 * ENOSPC, saying what `smhfs trash empty` would free — never EIO or 500 — while deletes
 * (`rm --permanent`, `trash empty`) still work, and their space comes back. fsck clean and the
 * remaining file's SHA-256 at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statfsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { expectFsckClean, expectSameFiles, librarySha256 } from './helpers/fsck.js';
import { cleanup, fuseUnavailable, sh, smhfs, startMount, type Mount } from './helpers/mount.js';

const MB = 1_000_000;
const free = (dir: string): number => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

t.test('D9: on a full disk changes fail with InsufficientStorage, deletes work and the space comes back', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'smhfs-full-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const disk = join(base, 'disk');
  mkdirSync(disk);
  const m = await sh(`mount -t tmpfs -o size=32m tmpfs '${disk}'`);
  t.equal(m.code, 0, `a 32 MiB tmpfs for the library (needs root): ${m.stderr}`);
  if (m.code !== 0) return;
  t.teardown(async () => {
    if ((await sh(`umount '${disk}'`)).code !== 0) await sh(`umount -l '${disk}'`);
  });
  const lib = join(disk, 'lib');
  const src = join(base, 'src');
  mkdirSync(src);
  const cli = (...args: string[]) => smhfs(['--library', lib, ...args]);
  t.equal((await cli('init')).code, 0);
  for (const [name, size] of [['a.bin', 4 * MB], ['b.bin', 4 * MB], ['c.bin', 1 * MB]] as const) {
    writeFileSync(join(src, name), randomBytes(size));
    t.equal((await cli('put', join(src, name), name)).code, 0, `put ${name}`);
  }
  t.equal((await cli('rm', 'a.bin')).code, 0, 'a.bin to the recycle bin');
  const keep = new Map([...(await librarySha256(lib))].filter(([p]) => p === 'c.bin'));

  const noFuse = await fuseUnavailable();
  let mount: Mount | undefined;
  if (!noFuse) {
    mount = await startMount({ dir: disk });
    t.teardown(() => (mount ? cleanup(mount, { keepDir: true }) : undefined));
  }

  const fill = await sh(`dd if=/dev/zero of='${join(disk, 'filler')}' bs=64k status=none`);
  t.not(fill.code, 0, 'the filler stopped at a full disk');
  t.ok(free(disk) < 64 * 1024, `the disk is full (${free(disk)} bytes free)`);

  // Every change through the CLI: InsufficientStorage with the hint, one line, never 500/EIO.
  writeFileSync(join(base, 'new.txt'), 'new content that has no room');
  for (const args of [['mkdir', 'x'], ['put', join(base, 'new.txt'), 'new.txt'], ['rm', 'b.bin'], ['ln', 'b.bin', 'l'], ['mv', 'b.bin', 'moved.bin'], ['trash', 'restore', '1']]) {
    const r = await cli(...args);
    t.equal(r.code, 1, `${args.join(' ')}: exit 1`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args[0]}: one line`);
    t.match(r.stderr, /: no space left on device for the library('s files| database); "smhfs trash empty" would free 3\.8 MiB \(1 item in the recycle bin\).* \(InsufficientStorage\)\n$/, `${args.join(' ')}: ${r.stderr.trim()}`);
    t.notMatch(r.stderr, /500|InternalError|I\/O error|EIO/, `${args[0]}: never 500 or EIO`);
  }
  const ls = await cli('ls');
  t.equal(ls.code, 0, `reading still works: ${ls.stderr}`);

  if (mount) {
    for (const [what, cmd] of [
      ['mkdir', `mkdir '${mount.p('x')}'`],
      ['create', `touch '${mount.p('y')}'`],
      ['rename', `mv '${mount.p('b.bin')}' '${mount.p('bb.bin')}'`],
      ['unlink', `rm '${mount.p('c.bin')}'`],
    ] as const) {
      const r = await sh(cmd);
      t.not(r.code, 0, `mount ${what} fails`);
      t.match(r.stderr, /No space left on device/, `mount ${what}: ENOSPC (${r.stderr.trim()})`);
    }
    t.equal((await sh(`cat '${mount.p('c.bin')}' > /dev/null`)).code, 0, 'the mount still reads');
  }

  // Deletes work on the full disk, and the space comes back.
  const before = free(disk);
  const del = await cli('rm', '--permanent', 'b.bin');
  t.equal(del.code, 0, `rm --permanent works on a full disk: ${del.stderr}`);
  const empty = await cli('trash', 'empty');
  t.equal(empty.code, 0, `trash empty works on a full disk: ${empty.stderr}`);
  t.match(empty.stdout, /purged 1 item/);
  const after = free(disk);
  t.ok(after - before > 3 * MB, `the space came back: ${before} → ${after} bytes free (8 MB deleted, the library keeps a 4 MiB reserve)`);
  const mk = await cli('mkdir', 'x');
  t.equal(mk.code, 0, `and changes work again: ${mk.stderr}`);

  if (mount) {
    t.equal(await mount.stop(), 0, 'the mount stops cleanly');
    mount = undefined;
  }
  await expectFsckClean(t, lib);
  expectSameFiles(t, keep, await librarySha256(lib), 'the file that stayed');
});
