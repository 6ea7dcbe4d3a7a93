/**
 * POSIX rules the store holds (whoever calls it: the mount on any binding, the CLI): the group of
 * a node made in a setgid directory (M2), and which operations change a node's ctime but not its
 * mtime. The same behaviour through the kernel is in the POSIX suite (test/posix-smhfs.test.ts).
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { openLib, put } from './helpers/store.js';

t.test('M2: a node made in a setgid directory takes its group; a new directory takes the setgid bit too', async (t) => {
  const { space } = openLib(t);
  space.mkdir('shared', { mode: 0o2775, uid: 0, gid: 500 });
  t.equal(space.stat('shared').mode & 0o7777, 0o2775, 'the directory keeps its setgid bit');
  const dir = space.mkdir('shared/sub', { mode: 0o755, uid: 1000, gid: 1000 }).info;
  t.equal(dir.gid, 500, "a directory: the parent's group");
  t.equal(dir.uid, 1000, 'the owner is the one given');
  t.equal(dir.mode & 0o7777, 0o2755, 'a directory: the setgid bit, on top of the mode asked');
  const file = space.createFile('shared/sub/f', { mode: 0o644, uid: 1000, gid: 1000 });
  t.equal(file.gid, 500, 'a file one level down: the group goes on');
  t.equal(file.mode & 0o7777, 0o644, 'a file does not take the setgid bit');
  t.equal(space.mknod('shared/p', { mode: 0o010644, uid: 1000, gid: 1000 }).gid, 500, 'a fifo');
  t.equal(space.symlink('shared/l', 'f', { uid: 1000, gid: 1000 }).gid, 500, 'a symbolic link');

  space.mkdir('plain', { mode: 0o755, uid: 0, gid: 500 });
  const own = space.mkdir('plain/d', { mode: 0o755, uid: 1000, gid: 1000 }).info;
  t.equal(own.gid, 1000, 'without the setgid bit: the group given');
  t.equal(own.mode & 0o7777, 0o755, 'and no setgid bit');
  t.equal(space.createFile('plain/f', { mode: 0o644, uid: 1000, gid: 1000 }).gid, 1000);
});

t.test('POSIX times: setxattr, removexattr and a storage-class change move ctime, never mtime', async (t) => {
  const { space } = openLib(t);
  let info = space.createFile('f', { mode: 0o644 });
  const steps: Array<[string, () => void]> = [
    ['setxattr', () => space.setXattr('f', 'user.colour', Buffer.from('blue'))],
    ['removexattr', () => space.removeXattr('f', 'user.colour')],
    ['storage class', () => space.setXattr('f', 'user.smhfs.storage-class', Buffer.from('COLD'))],
  ];
  for (const [what, step] of steps) {
    await sleep(2);
    step();
    const after = space.stat('f');
    t.ok(after.ctimeUs > info.ctimeUs, `${what}: ctime advances`);
    t.equal(after.mtimeUs, info.mtimeUs, `${what}: mtime kept`);
    info = after;
  }
});

t.test('POSIX times: one operation sets one instant (a new node and its parent; a moved node and both parents)', async (t) => {
  const { space } = openLib(t);
  space.mkdir('a', {});
  space.mkdir('b', {});
  // Many tries: two clock reads inside one operation differ only now and then.
  for (let i = 0; i < 200; i++) {
    const made = space.mkdir(`a/d${i}`, {}).info;
    const parent = space.stat('a');
    if (made.ctimeUs !== parent.mtimeUs || made.mtimeUs !== made.ctimeUs || made.atimeUs !== made.ctimeUs || parent.ctimeUs !== parent.mtimeUs) {
      t.fail(`mkdir #${i}: node a/m/c ${made.atimeUs}/${made.mtimeUs}/${made.ctimeUs}, parent m/c ${parent.mtimeUs}/${parent.ctimeUs}`);
      return;
    }
    const moved = space.rename(`a/d${i}`, `b/d${i}`);
    const [from, to] = [space.stat('a'), space.stat('b')];
    if (moved.ctimeUs !== from.mtimeUs || moved.ctimeUs !== to.mtimeUs || from.ctimeUs !== to.ctimeUs) {
      t.fail(`rename #${i}: node ctime ${moved.ctimeUs}, parents m ${from.mtimeUs}/${to.mtimeUs}, c ${from.ctimeUs}/${to.ctimeUs}`);
      return;
    }
  }
  t.pass('200 mkdirs and renames, each stamped with one instant');
});

t.test("L1: a target that ends in '/' or '/.' names no file: a path link, kept as given", async (t) => {
  const { space } = openLib(t);
  space.createFile('f', { mode: 0o644 });
  for (const target of ['f/', 'f/.']) {
    const l = space.symlink(`l${target.length}`, target, {});
    t.equal(l.link?.flavour, 'path', `${target}: a path link`);
    t.equal(space.readlink(`l${target.length}`), target, `${target}: readlink as given`);
  }
  t.equal(space.symlink('bound', 'f', {}).link?.flavour, 'bound', "'f' itself is bound");
});

t.test('POSIX times (relatime): a read moves atime only when it is not later than mtime or ctime, or a day old; never ctime', async (t) => {
  const { space } = openLib(t);
  const made = space.createFile('f', { mode: 0o644 });
  const old = made.mtimeUs - 3_600_000_000; // an hour before the file's mtime
  space.setattr('f', { atimeUs: old });
  const due = space.stat('f');
  await sleep(2);
  space.accessed(due);
  const read = space.stat('f');
  t.ok(read.atimeUs > due.mtimeUs, 'atime not later than mtime: moves to now');
  t.equal(read.ctimeUs, due.ctimeUs, 'ctime kept');
  t.equal(read.mtimeUs, due.mtimeUs, 'mtime kept');
  await sleep(2);
  space.accessed(read);
  t.equal(space.stat('f').atimeUs, read.atimeUs, 'read again: atime later than mtime and ctime, so kept');
  await sleep(2);
  space.setattr('f', { mode: 0o600 });
  const changed = space.stat('f');
  t.ok(changed.ctimeUs > changed.atimeUs, 'a chmod moved ctime past atime');
  space.accessed(changed);
  t.ok(space.stat('f').atimeUs >= changed.ctimeUs, 'so the next read moves atime');
  space.mkdir('d', {});
  space.setattr('d', { atimeUs: 1_000_000, mtimeUs: 1_000_000 });
  space.accessed(space.stat('d'));
  t.ok(space.stat('d').atimeUs > 1_000_000, 'a directory listed: likewise');
});

t.test('M2: a setgid directory gives its group to what the dialects and the CLI make in it too', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('shared', { mode: 0o2775, uid: 0, gid: 500 });
  t.equal((await put(lib, space, 'shared/up.txt', 'bytes', { conflict: 'ask' })).info.gid, 500, 'an upload');
  t.equal((await put(lib, space, 'shared/new/deep/up.txt', 'x', { createParents: true })).info.gid, 500, 'an upload with its parents');
  const made = space.stat('shared/new');
  t.equal(made.gid, 500, 'a parent made on the way');
  t.equal(made.mode & 0o2000, 0o2000, 'with the setgid bit');
  t.equal(space.createLink('shared/bound', 'shared/up.txt', {}).info.gid, 500, 'an SMH link');
  t.equal(space.putSymlink('shared/bos', 'shared/up.txt').info.gid, 500, 'a BOS symlink');
  t.equal((await put(lib, space, 'elsewhere.txt', 'y')).info.gid, 0, 'outside: the default group');
});
