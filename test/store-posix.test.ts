/**
 * POSIX rules the store holds (whoever calls it: the mount on any binding, the CLI): the group of
 * a node made in a setgid directory (M2), and which operations change a node's ctime but not its
 * mtime. The same behaviour through the kernel is in the POSIX suite (test/posix-smhfs.test.ts).
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobOf, openLib, put } from './helpers/store.js';

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

t.test('M2: times keep nanoseconds — set by path or id, stat by path or id; a time set to now has none below its µs', async (t) => {
  const { lib, space } = openLib(t);
  const f = space.createFile('f', { mode: 0o644 });
  const ns = (i: { atimeUs: number; atimeNsRem: number; mtimeUs: number; mtimeNsRem: number; ctimeNsRem: number }) =>
    [i.atimeUs, i.atimeNsRem, i.mtimeUs, i.mtimeNsRem, i.ctimeNsRem];
  // 2001-09-09 01:46:41.123456789 and …42.987654321
  let info = space.setattr('f', { atimeUs: 1_000_000_001_123_456, atimeNsRem: 789, mtimeUs: 1_000_000_002_987_654, mtimeNsRem: 321 });
  t.same(ns(info), [1_000_000_001_123_456, 789, 1_000_000_002_987_654, 321, 0], 'setattr by path answers the nanoseconds');
  t.same(ns(space.stat('f')), ns(info), 'stat by path');
  t.same(ns(space.statNode(f.id)), ns(info), 'stat by id');
  info = space.setattr(f.id, { mtimeUs: 1_000_000_003_000_000, mtimeNsRem: 1 });
  t.same(ns(info), [1_000_000_001_123_456, 789, 1_000_000_003_000_000, 1, 0], 'by id, mtime alone: atime keeps its nanoseconds');
  info = space.setattr('f', { mode: 0o600 });
  t.same(ns(info), [1_000_000_001_123_456, 789, 1_000_000_003_000_000, 1, 0], 'a chmod keeps both times and their nanoseconds');
  info = space.setattr('f', { atimeUs: 1_000_000_004_000_000 });
  t.equal(info.atimeNsRem, 0, 'a time given without nanoseconds has none');
  t.equal(info.mtimeNsRem, 1, 'and the other time keeps its own');

  const ref = await blobOf(lib, 'staged');
  info = space.setContent(f.id, ref, { mtimeUs: 1_000_000_005_000_000, mtimeNsRem: 999 });
  t.same([info.mtimeUs, info.mtimeNsRem], [1_000_000_005_000_000, 999], 'a commit with a staged utimens keeps its nanoseconds');
  info = space.setContent(f.id, await blobOf(lib, 'written'));
  t.equal(info.mtimeNsRem, 0, 'a commit of a write: mtime is now, no nanoseconds below it');
  space.setattr('f', { mtimeUs: 1_000_000_006_000_000, mtimeNsRem: 5 });
  space.mkdir('d', {});
  space.setattr('d', { atimeUs: 1_000_000_007_000_000, atimeNsRem: 6, mtimeUs: 1_000_000_007_000_000, mtimeNsRem: 7 });
  space.createFile('d/g', { mode: 0o644 });
  const dir = space.stat('d');
  t.same([dir.atimeNsRem, dir.mtimeNsRem, dir.ctimeNsRem], [6, 0, 0], 'a directory whose entries changed: mtime is now (no nanoseconds), atime kept');
  const copied = space.copy('f', 'f2').info;
  t.same([copied.mtimeUs, copied.mtimeNsRem, copied.atimeNsRem, copied.birthtimeNsRem], [1_000_000_006_000_000, 5, 0, 0], 'a copy keeps mtime with its nanoseconds; its other times are now');
  for (const bad of [-1, 1000, 1.5, Number.NaN]) {
    t.throws(() => space.setattr('f', { mtimeUs: 1, mtimeNsRem: bad }), { code: 'InvalidArgument' }, `nanoseconds ${bad} refused`);
  }
  t.equal(space.stat('f').mtimeNsRem, 5, 'a refused setattr changed nothing');
});

t.test('POSIX times: a commit of an open file records the time of its last write as ctime, not its own; a later ctime (a chmod since) stays', async (t) => {
  const { lib, space } = openLib(t);
  const f = space.createFile('f', { mode: 0o644 });
  await sleep(5);
  const wroteAt = Date.now() * 1000; // the write, staged by the mount
  await sleep(5);
  let info = space.setContent(f.id, await blobOf(lib, 'written'), { mtimeUs: wroteAt, ctimeUs: wroteAt });
  t.same([info.mtimeUs, info.ctimeUs], [wroteAt, wroteAt], 'mtime and ctime: the write’s one instant');
  await sleep(5);
  const chmod = space.setattr('f', { mode: 0o600 }).ctimeUs;
  t.ok(chmod > wroteAt);
  info = space.setContent(f.id, await blobOf(lib, 'again'), { mtimeUs: wroteAt + 1, ctimeUs: wroteAt + 1 });
  t.equal(info.ctimeUs, chmod, 'a ctime later than the write (the chmod) stays');
  t.equal(info.mtimeUs, wroteAt + 1);
  await sleep(5);
  const before = Date.now() * 1000;
  t.ok(space.setContent(f.id, await blobOf(lib, 'upload')).ctimeUs >= before, 'no time given (an upload): ctime is the commit’s');
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
