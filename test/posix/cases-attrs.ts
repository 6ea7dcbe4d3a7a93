/**
 * Cases for attributes: chmod, chown/lchown (with the setuid/setgid clearing Linux does),
 * utimensat (UTIME_NOW, UTIME_OMIT, nanoseconds, AT_SYMLINK_NOFOLLOW, who may set what),
 * extended attributes (flags, ENODATA, exact ERANGE), statfs and access.
 */
import type { Caller } from './caller.js';
import type { CaseList, Ctx, NodeKind } from './suite.js';

const KINDS: NodeKind[] = ['regular', 'dir', 'fifo'];

/** `path` owned by `who`. */
async function ownedFile(c: Ctx, who: Caller, mode = 0o644): Promise<string> {
  const f = await c.file(c.p(c.name()), { mode });
  await c.give(f, who);
  await c.root.must('chmod', f, mode);
  return f;
}

/** A fixed time in ns, `s` seconds after 2001-09-09, with nanoseconds. */
const T = (s: number, ns = 0): bigint => BigInt(1_000_000_000 + s) * 1_000_000_000n + BigInt(ns);

export function registerAttrs(l: CaseList): void {
  // ───────────── chmod ─────────────
  l.each(KINDS, 'chmod: sets the mode; ctime advances, mtime kept', async (c, kind) => {
    await c.make(kind, c.p('x'), 0o644);
    const before = await c.stat(c.p('x'));
    await c.tick();
    c.succeeds('chmod 0751', await c.root.call('chmod', c.p('x'), 0o751));
    const after = await c.stat(c.p('x'));
    c.eq('mode', after.perm, 0o751);
    c.advanced('ctime', before.ctime, after.ctime);
    c.kept('mtime', before.mtime, after.mtime);
  });
  l.kase('chmod: follows a symbolic link to its target', async (c) => {
    await c.file(c.p('f'), { mode: 0o644 });
    await c.root.must('symlink', 'f', c.p('l'));
    c.succeeds('chmod through the link', await c.root.call('chmod', c.p('l'), 0o600));
    c.eq("target's mode", (await c.stat(c.p('f'))).perm, 0o600);
    c.eq("the link's own mode", (await c.stat(c.p('l'), { l: true })).perm, 0o777);
  });
  l.kase('chmod: the owner may, another user gets EPERM', async (c) => {
    const f = await ownedFile(c, c.a);
    c.succeeds('owner', await c.a.call('chmod', f, 0o600));
    c.errno('another user', await c.b.call('chmod', f, 0o666), 'EPERM');
    c.eq('mode', (await c.stat(f)).perm, 0o600);
  });
  l.kase('chmod: setuid and setgid bits are kept when set by root', async (c) => {
    await c.file(c.p('f'));
    c.succeeds('chmod 06755', await c.root.call('chmod', c.p('f'), 0o6755));
    c.eq('mode', (await c.stat(c.p('f'))).perm, 0o6755);
    await c.mkdir(c.p('d'));
    c.succeeds('chmod 01777 on a directory', await c.root.call('chmod', c.p('d'), 0o1777));
    c.eq('sticky directory', (await c.stat(c.p('d'))).perm, 0o1777);
  });
  l.kase("chmod: the setgid bit is dropped when the owner is not in the file's group", async (c) => {
    const f = await ownedFile(c, c.a);
    await c.root.must('chown', f, c.a.uid, c.b.gid);
    c.succeeds('chmod 02755 by the owner', await c.a.call('chmod', f, 0o2755));
    c.eq('mode', (await c.stat(f)).perm, 0o755);
  });

  // ───────────── chown / lchown ─────────────
  l.each(KINDS, 'chown: root sets uid and gid; ctime advances, mtime kept', async (c, kind) => {
    await c.make(kind, c.p('x'));
    const before = await c.stat(c.p('x'));
    await c.tick();
    c.succeeds('chown', await c.root.call('chown', c.p('x'), c.a.uid, c.b.gid));
    const after = await c.stat(c.p('x'));
    c.eq('uid', after.uid, c.a.uid);
    c.eq('gid', after.gid, c.b.gid);
    c.advanced('ctime', before.ctime, after.ctime);
    c.kept('mtime', before.mtime, after.mtime);
  });
  l.kase('chown: -1 leaves that id unchanged', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('chown', c.p('f'), c.a.uid, c.a.gid);
    c.succeeds('chown -1 gid', await c.root.call('chown', c.p('f'), -1, c.b.gid));
    const st = await c.stat(c.p('f'));
    c.eq('uid kept', st.uid, c.a.uid);
    c.eq('gid set', st.gid, c.b.gid);
  });
  l.kase('chown: follows a symbolic link; lchown changes the link itself', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('symlink', 'f', c.p('l'));
    c.succeeds('chown through the link', await c.root.call('chown', c.p('l'), c.a.uid, c.a.gid));
    c.eq('target uid', (await c.stat(c.p('f'))).uid, c.a.uid);
    c.eq('link uid unchanged', (await c.stat(c.p('l'), { l: true })).uid, 0);
    c.succeeds('lchown', await c.root.call('lchown', c.p('l'), c.b.uid, c.b.gid));
    c.eq('link uid', (await c.stat(c.p('l'), { l: true })).uid, c.b.uid);
    c.eq('target uid unchanged', (await c.stat(c.p('f'))).uid, c.a.uid);
  });
  l.kase("lchown: on a symbolic link the link's ctime advances, its target's is kept", async (c) => {
    await c.file(c.p('f'));
    await c.root.must('symlink', 'f', c.p('l'));
    const link0 = await c.stat(c.p('l'), { l: true });
    const file0 = await c.stat(c.p('f'));
    await c.tick();
    c.succeeds('lchown', await c.root.call('lchown', c.p('l'), c.a.uid, c.a.gid));
    c.advanced("link's ctime", link0.ctime, (await c.stat(c.p('l'), { l: true })).ctime);
    c.kept("target's ctime", file0.ctime, (await c.stat(c.p('f'))).ctime);
  });
  l.kase('chown: clears setuid and setgid of a regular file (even for root)', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('chmod', c.p('f'), 0o6555);
    c.succeeds('chown', await c.root.call('chown', c.p('f'), c.a.uid, c.a.gid));
    c.eq('mode', (await c.stat(c.p('f'))).perm, 0o555);
  });
  l.kase('chown: by the owner (to its own group) clears setuid too', async (c) => {
    const f = await ownedFile(c, c.a, 0o4755);
    c.succeeds('chown -1 own gid', await c.a.call('chown', f, -1, c.a.gid));
    c.eq('mode', (await c.stat(f)).perm, 0o755);
  });
  l.kase('chown: keeps setgid of a directory', async (c) => {
    await c.mkdir(c.p('d'));
    await c.root.must('chmod', c.p('d'), 0o2755);
    c.succeeds('chown', await c.root.call('chown', c.p('d'), c.a.uid, c.a.gid));
    c.eq('mode', (await c.stat(c.p('d'))).perm, 0o2755);
  });
  l.kase('chown: EPERM for a user giving a file away or to a group it is not in', async (c) => {
    const f = await ownedFile(c, c.a);
    c.errno('owner gives it to another uid', await c.a.call('chown', f, c.b.uid, -1), 'EPERM');
    c.errno('owner sets a group it is not in', await c.a.call('chown', f, -1, c.b.gid), 'EPERM');
    c.errno('another user', await c.b.call('chown', f, c.b.uid, c.b.gid), 'EPERM');
    c.succeeds('owner sets its own uid and group', await c.a.call('chown', f, c.a.uid, c.a.gid));
    const st = await c.stat(f);
    c.eq('unchanged owner', [st.uid, st.gid], [c.a.uid, c.a.gid]);
  });

  // ───────────── utimensat ─────────────
  l.each(KINDS, 'utimensat: sets atime and mtime; ctime advances', async (c, kind) => {
    await c.make(kind, c.p('x'));
    const before = await c.stat(c.p('x'));
    await c.tick();
    c.succeeds('utimensat', await c.root.call('utimensat', c.p('x'), String(T(100)), String(T(200))));
    const after = await c.stat(c.p('x'));
    c.timeIs('atime', after.atime, T(100));
    c.timeIs('mtime', after.mtime, T(200));
    c.advanced('ctime', before.ctime, after.ctime);
  });
  l.kase('utimensat: keeps nanoseconds', async (c) => {
    await c.file(c.p('f'));
    c.succeeds('utimensat', await c.root.call('utimensat', c.p('f'), String(T(1, 123456789)), String(T(2, 987654321))));
    const st = await c.stat(c.p('f'));
    c.eq('atime', String(st.atime), String(T(1, 123456789)));
    c.eq('mtime', String(st.mtime), String(T(2, 987654321)));
  });
  l.kase('utimensat: times after 2038', async (c) => {
    await c.file(c.p('f'));
    const y2100 = 4_102_444_800n * 1_000_000_000n;
    c.succeeds('utimensat 2100', await c.root.call('utimensat', c.p('f'), String(y2100), String(y2100 + 1_000_000_000n)));
    const st = await c.stat(c.p('f'));
    c.timeIs('atime 2100', st.atime, y2100);
    c.timeIs('mtime 2100', st.mtime, y2100 + 1_000_000_000n);
  });
  l.kase('utimensat: times before 1970', async (c) => {
    await c.file(c.p('f'));
    const y1960 = -315_619_200n * 1_000_000_000n;
    c.succeeds('utimensat 1960', await c.root.call('utimensat', c.p('f'), String(y1960), String(y1960 + 1_000_000_000n)));
    const st = await c.stat(c.p('f'));
    c.timeIs('atime 1960', st.atime, y1960);
    c.timeIs('mtime 1960', st.mtime, y1960 + 1_000_000_000n);
  });
  l.kase('utimensat: mtime before atime is allowed', async (c) => {
    await c.file(c.p('f'));
    c.succeeds('utimensat', await c.root.call('utimensat', c.p('f'), String(T(500)), String(T(10))));
    const st = await c.stat(c.p('f'));
    c.timeIs('atime', st.atime, T(500));
    c.timeIs('mtime', st.mtime, T(10));
  });
  l.kase('utimensat: UTIME_NOW sets both to the current time', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('utimensat', c.p('f'), String(T(1)), String(T(1)));
    const before = await c.stat(c.p('f'));
    await c.tick();
    c.succeeds('utimensat NOW NOW', await c.root.call('utimensat', c.p('f'), 'UTIME_NOW', 'UTIME_NOW'));
    const st = await c.stat(c.p('f'));
    c.advanced('atime is now', T(1000), st.atime);
    c.advanced('mtime is now', T(1000), st.mtime);
    c.advanced('ctime', before.ctime, st.ctime);
  });
  l.kase('utimensat: UTIME_OMIT leaves atime as it was while mtime is set', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('utimensat', c.p('f'), String(T(10)), String(T(20)));
    c.succeeds('utimensat OMIT, t', await c.root.call('utimensat', c.p('f'), 'UTIME_OMIT', String(T(30))));
    const st = await c.stat(c.p('f'));
    c.timeIs('atime kept', st.atime, T(10));
    c.timeIs('mtime set', st.mtime, T(30));
  });
  l.kase('utimensat: UTIME_OMIT leaves mtime as it was while atime is set', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('utimensat', c.p('f'), String(T(10)), String(T(20)));
    c.succeeds('utimensat t, OMIT', await c.root.call('utimensat', c.p('f'), String(T(40)), 'UTIME_OMIT'));
    const st = await c.stat(c.p('f'));
    c.timeIs('atime set', st.atime, T(40));
    c.timeIs('mtime kept', st.mtime, T(20));
  });
  l.kase('utimensat: UTIME_OMIT for both changes nothing, not even ctime', async (c) => {
    await c.file(c.p('f'));
    const before = await c.stat(c.p('f'));
    await c.tick();
    c.succeeds('utimensat OMIT OMIT', await c.root.call('utimensat', c.p('f'), 'UTIME_OMIT', 'UTIME_OMIT'));
    const st = await c.stat(c.p('f'));
    c.kept('atime', before.atime, st.atime);
    c.kept('mtime', before.mtime, st.mtime);
    c.kept('ctime', before.ctime, st.ctime);
  });
  l.kase('utimensat: AT_SYMLINK_NOFOLLOW sets the times of the link, not of its target', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('utimensat', c.p('f'), String(T(5)), String(T(5)));
    await c.root.must('symlink', 'f', c.p('l'));
    c.succeeds('utimensat nofollow', await c.root.call('utimensat', c.p('l'), String(T(7)), String(T(8)), true));
    c.timeIs("the link's mtime", (await c.stat(c.p('l'), { l: true })).mtime, T(8));
    c.timeIs("the target's mtime kept", (await c.stat(c.p('f'))).mtime, T(5));
  });
  l.kase('utimensat: follows a symbolic link without the flag', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('symlink', 'f', c.p('l'));
    c.succeeds('utimensat', await c.root.call('utimensat', c.p('l'), String(T(7)), String(T(8))));
    c.timeIs("the target's mtime", (await c.stat(c.p('f'))).mtime, T(8));
  });
  l.kase('utimensat: UTIME_NOW needs write permission or ownership (EACCES otherwise)', async (c) => {
    const f = await ownedFile(c, c.a, 0o644);
    c.succeeds('owner', await c.a.call('utimensat', f, 'UTIME_NOW', 'UTIME_NOW'));
    c.errno('another user without write permission', await c.b.call('utimensat', f, 'UTIME_NOW', 'UTIME_NOW'), 'EACCES');
    await c.root.must('chmod', f, 0o666);
    c.succeeds('another user with write permission', await c.b.call('utimensat', f, 'UTIME_NOW', 'UTIME_NOW'));
  });
  l.kase('utimensat: setting explicit times needs ownership (EPERM otherwise, even with write permission)', async (c) => {
    const f = await ownedFile(c, c.a, 0o666);
    c.succeeds('owner', await c.a.call('utimensat', f, String(T(1)), String(T(2))));
    c.errno('another user', await c.b.call('utimensat', f, String(T(3)), String(T(4))), 'EPERM');
    c.timeIs('mtime kept', (await c.stat(f)).mtime, T(2));
  });

  // ───────────── extended attributes ─────────────
  l.each(['regular', 'dir'], 'setxattr: a user.* attribute reads back, is listed and can be removed', async (c, kind) => {
    await c.make(kind, c.p('x'));
    c.succeeds('setxattr', await c.root.call('setxattr', c.p('x'), 'user.colour', 'blue', 0));
    c.eq('getxattr', (await c.root.call('getxattr', c.p('x'), 'user.colour', 100)).ok, 'blue');
    const list = (await c.root.call('listxattr', c.p('x'), 4096)).ok as string[] | undefined;
    c.check('listed', Array.isArray(list) && list.includes('user.colour'), list, 'a list with user.colour');
    c.succeeds('removexattr', await c.root.call('removexattr', c.p('x'), 'user.colour'));
    c.errno('gone', await c.root.call('getxattr', c.p('x'), 'user.colour', 100), 'ENODATA');
  });
  l.kase('setxattr: ctime advances, mtime kept; removexattr likewise', async (c) => {
    await c.file(c.p('f'));
    const t0 = await c.stat(c.p('f'));
    await c.tick();
    await c.root.must('setxattr', c.p('f'), 'user.a', '1', 0);
    const t1 = await c.stat(c.p('f'));
    c.advanced('ctime after setxattr', t0.ctime, t1.ctime);
    c.kept('mtime after setxattr', t0.mtime, t1.mtime);
    await c.tick();
    await c.root.must('removexattr', c.p('f'), 'user.a');
    const t2 = await c.stat(c.p('f'));
    c.advanced('ctime after removexattr', t1.ctime, t2.ctime);
    c.kept('mtime after removexattr', t1.mtime, t2.mtime);
  });
  l.kase('setxattr: XATTR_CREATE gives EEXIST for an existing name, XATTR_REPLACE ENODATA for a missing one', async (c) => {
    await c.file(c.p('f'));
    c.errno('replace a missing name', await c.root.call('setxattr', c.p('f'), 'user.a', '1', 2), 'ENODATA');
    c.succeeds('create', await c.root.call('setxattr', c.p('f'), 'user.a', '1', 1));
    c.errno('create an existing name', await c.root.call('setxattr', c.p('f'), 'user.a', '2', 1), 'EEXIST');
    c.succeeds('replace', await c.root.call('setxattr', c.p('f'), 'user.a', '3', 2));
    c.eq('value', (await c.root.call('getxattr', c.p('f'), 'user.a', 100)).ok, '3');
  });
  l.kase('getxattr: ENODATA for a missing name; removexattr likewise', async (c) => {
    await c.file(c.p('f'));
    c.errno('getxattr', await c.root.call('getxattr', c.p('f'), 'user.none', 100), 'ENODATA');
    c.errno('removexattr', await c.root.call('removexattr', c.p('f'), 'user.none'), 'ENODATA');
  });
  l.kase('getxattr: a zero-size buffer asks the size; a buffer too small gives ERANGE', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('setxattr', c.p('f'), 'user.v', '0123456789', 0);
    c.eq('size probe', (await c.root.call('getxattr', c.p('f'), 'user.v', 0)).ok, 10);
    c.errno('9-byte buffer', await c.root.call('getxattr', c.p('f'), 'user.v', 9), 'ERANGE');
    c.eq('10-byte buffer', (await c.root.call('getxattr', c.p('f'), 'user.v', 10)).ok, '0123456789');
  });
  l.kase('listxattr: a zero-size buffer asks the size; a buffer too small gives ERANGE', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('setxattr', c.p('f'), 'user.first', '1', 0);
    const size = (await c.root.call('listxattr', c.p('f'), 0)).ok as number;
    c.check('size probe counts user.first', typeof size === 'number' && size >= 'user.first'.length + 1, size, '>= 11');
    c.errno('1-byte buffer', await c.root.call('listxattr', c.p('f'), 1), 'ERANGE');
    c.errno('one byte short', await c.root.call('listxattr', c.p('f'), size - 1), 'ERANGE');
    const list = (await c.root.call('listxattr', c.p('f'), size)).ok as string[] | undefined;
    c.check('exact size', Array.isArray(list) && list.includes('user.first'), list, 'a list with user.first');
  });
  l.kase('setxattr: an empty value is a value', async (c) => {
    await c.file(c.p('f'));
    c.succeeds('setxattr ""', await c.root.call('setxattr', c.p('f'), 'user.empty', '', 0));
    c.eq('size probe', (await c.root.call('getxattr', c.p('f'), 'user.empty', 0)).ok, 0);
    c.eq('getxattr', (await c.root.call('getxattr', c.p('f'), 'user.empty', 10)).ok, '');
  });
  l.kase('setxattr: ERANGE for a name longer than 255 bytes', async (c) => {
    await c.file(c.p('f'));
    c.errno('setxattr of a 256-byte name', await c.root.call('setxattr', c.p('f'), `user.${'n'.repeat(251)}`, '1', 0), 'ERANGE');
  });
  l.kase('setxattr: EOPNOTSUPP for an unknown namespace', async (c) => {
    await c.file(c.p('f'));
    c.errno('setxattr foo.bar', await c.root.call('setxattr', c.p('f'), 'foo.bar', '1', 0), 'EOPNOTSUPP');
  });
  l.kase('setxattr: EPERM for user.* on a symbolic link or a fifo (Linux)', async (c) => {
    await c.root.must('mkfifo', c.p('p'), 0o666);
    c.errno('setxattr on a fifo', await c.root.call('setxattr', c.p('p'), 'user.a', '1', 0), 'EPERM');
  });
  l.kase('setxattr: EACCES for a user without write permission', async (c) => {
    const f = await ownedFile(c, c.a, 0o644);
    c.errno('another user', await c.b.call('setxattr', f, 'user.a', '1', 0), 'EACCES');
    c.succeeds('the owner', await c.a.call('setxattr', f, 'user.a', '1', 0));
  });

  // ───────────── statfs / access ─────────────
  l.kase('statfs: sane numbers on a directory and on a file', async (c) => {
    await c.file(c.p('f'));
    for (const p of [c.dir, c.p('f')]) {
      const s = await c.root.must<Record<string, number>>('statvfs', p);
      c.check('bsize > 0', s.bsize! > 0, s.bsize, '> 0');
      c.check('bfree <= blocks', s.bfree! <= s.blocks!, s, 'bfree <= blocks');
      c.check('bavail <= bfree', s.bavail! <= s.bfree!, s, 'bavail <= bfree');
      c.check('ffree <= files', s.ffree! <= s.files!, s, 'ffree <= files');
      c.eq('namemax', s.namemax, c.target.nameMax);
    }
  });
  l.kase('access: F_OK, and R_OK/W_OK/X_OK by the mode bits for a user', async (c) => {
    const f = await ownedFile(c, c.a, 0o640);
    c.succeeds('F_OK', await c.b.call('access', f, ['F_OK']));
    c.succeeds('owner R_OK|W_OK', await c.a.call('access', f, ['R_OK', 'W_OK']));
    c.errno('owner X_OK', await c.a.call('access', f, ['X_OK']), 'EACCES');
    c.errno('other R_OK', await c.b.call('access', f, ['R_OK']), 'EACCES');
    c.errno('missing F_OK', await c.a.call('access', c.p('missing'), ['F_OK']), 'ENOENT');
  });
  l.kase('access: root may read and write anything, but execute only with an x bit', async (c) => {
    await c.file(c.p('f'), { mode: 0o444 });
    c.succeeds('root W_OK on 0444', await c.root.call('access', c.p('f'), ['W_OK']));
    c.errno('root X_OK on 0444', await c.root.call('access', c.p('f'), ['X_OK']), 'EACCES');
    await c.root.must('chmod', c.p('f'), 0o445);
    c.succeeds('root X_OK on 0445', await c.root.call('access', c.p('f'), ['X_OK']));
  });
}
