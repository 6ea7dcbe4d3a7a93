/**
 * Cases for file contents: open/creat (O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_TMPFILE, O_NOFOLLOW,
 * O_DIRECTORY, access modes), read/write/pread/pwrite, truncate/ftruncate, fallocate, and files
 * that stay open after their name is removed — errnos, contents, and times.
 */
import { S_IF, type CaseList, type Ctx } from './suite.js';

async function readAll(c: Ctx, path: string): Promise<string> {
  const fd = await c.root.must<number>('open', path, ['O_RDONLY']);
  try {
    let out = '';
    for (;;) {
      const chunk = await c.root.must<string>('read', fd, 65536);
      if (chunk.length === 0) return out;
      out += chunk;
    }
  } finally {
    await c.root.must('close', fd);
  }
}

export function registerFiles(l: CaseList): void {
  // ───────────── open / creat ─────────────
  l.kase('open: O_CREAT makes a regular file with the mode asked, size 0, nlink 1', async (c) => {
    const fd = c.succeeds<number>('open O_CREAT 0640', await c.root.call('open', c.p('f'), ['O_WRONLY', 'O_CREAT'], 0o640));
    if (fd !== undefined) await c.root.must('close', fd);
    const st = await c.stat(c.p('f'));
    c.eq('type', st.type, S_IF.regular);
    c.eq('mode', st.perm, 0o640);
    c.eq('size', st.size, 0);
    c.eq('nlink', st.nlink, 1);
  });
  l.kase('open: O_CREAT with mode 0 makes a file nobody but root may open', async (c) => {
    const fd = c.succeeds<number>('open O_CREAT 0', await c.root.call('open', c.p('f'), ['O_RDWR', 'O_CREAT'], 0));
    if (fd !== undefined) {
      c.succeeds('the creator may write through its descriptor', await c.root.call('write', fd, 'x'));
      await c.root.must('close', fd);
    }
    c.eq('mode', (await c.stat(c.p('f'))).perm, 0);
  });
  l.kase('open: the umask is applied to the mode of a new file', async (c) => {
    await c.root.must('umask', 0o027);
    try {
      const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_CREAT'], 0o666);
      await c.root.must('close', fd);
    } finally {
      await c.root.must('umask', 0);
    }
    c.eq('mode 0666 & ~027', (await c.stat(c.p('f'))).perm, 0o640);
  });
  l.kase('open: the new file belongs to the caller', async (c) => {
    const w = await c.openDir(c.p('w'));
    const fd = c.succeeds<number>('open O_CREAT as a user', await c.a.call('open', `${w}/f`, ['O_WRONLY', 'O_CREAT'], 0o644));
    if (fd !== undefined) await c.a.must('close', fd);
    const st = await c.stat(`${w}/f`);
    c.eq('uid', st.uid, c.a.uid);
    c.eq('gid', st.gid, c.a.gid);
  });
  l.kase('open: in a setgid directory a new file takes the directory group', async (c) => {
    const w = await c.openDir(c.p('w'));
    await c.root.must('chown', w, 0, c.b.gid);
    await c.root.must('chmod', w, 0o2777);
    const fd = await c.a.must<number>('open', `${w}/f`, ['O_WRONLY', 'O_CREAT'], 0o644);
    await c.a.must('close', fd);
    c.eq("gid is the directory's", (await c.stat(`${w}/f`)).gid, c.b.gid);
  });
  l.kase('open: O_CREAT of a new file advances the parent mtime and ctime', async (c) => {
    const before = await c.stat(c.dir);
    await c.tick();
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_CREAT'], 0o644);
    await c.root.must('close', fd);
    const after = await c.stat(c.dir);
    c.advanced('parent mtime', before.mtime, after.mtime);
    c.advanced('parent ctime', before.ctime, after.ctime);
  });
  l.kase("open: a new file's atime, mtime and ctime are the time of creation", async (c) => {
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_CREAT'], 0o644);
    await c.root.must('close', fd);
    const st = await c.stat(c.p('f'));
    c.eq('mtime = ctime', st.mtime, st.ctime);
    c.eq('atime = ctime', st.atime, st.ctime);
  });
  l.kase('open: O_CREAT of an existing file opens it and changes nothing', async (c) => {
    await c.file(c.p('f'), { data: 'keep' });
    const before = await c.stat(c.p('f'));
    const dir0 = await c.stat(c.dir);
    await c.tick();
    const fd = c.succeeds<number>('open O_CREAT', await c.root.call('open', c.p('f'), ['O_RDWR', 'O_CREAT'], 0o600));
    if (fd !== undefined) await c.root.must('close', fd);
    const after = await c.stat(c.p('f'));
    c.eq('mode unchanged', after.perm, before.perm);
    c.kept('mtime', before.mtime, after.mtime);
    c.kept('ctime', before.ctime, after.ctime);
    c.kept('parent mtime', dir0.mtime, (await c.stat(c.dir)).mtime);
    c.eq('content', await readAll(c, c.p('f')), 'keep');
  });
  l.each(['regular', 'dir', 'fifo', 'symlink'], 'open: EEXIST with O_CREAT|O_EXCL when the name exists', async (c, kind) => {
    await c.make(kind, c.p('x'));
    c.errno('open O_CREAT|O_EXCL', await c.root.call('open', c.p('x'), ['O_WRONLY', 'O_CREAT', 'O_EXCL'], 0o644), 'EEXIST');
  });
  l.kase('open: O_CREAT|O_EXCL does not follow a dangling symbolic link', async (c) => {
    await c.root.must('symlink', 'nowhere', c.p('l'));
    c.errno('open O_CREAT|O_EXCL of the link', await c.root.call('open', c.p('l'), ['O_WRONLY', 'O_CREAT', 'O_EXCL'], 0o644), 'EEXIST');
    c.errno('nothing made at the target', await c.root.call('lstat', c.p('nowhere')), 'ENOENT');
  });
  l.kase('open: O_CREAT through a dangling symbolic link creates its target', async (c) => {
    await c.root.must('symlink', 'made', c.p('l'));
    const fd = c.succeeds<number>('open O_CREAT of the link', await c.root.call('open', c.p('l'), ['O_WRONLY', 'O_CREAT'], 0o644));
    if (fd !== undefined) await c.root.must('close', fd);
    c.eq('the target is a file', (await c.root.call('lstat', c.p('made'))).ok !== undefined, true);
  });
  l.kase('open: O_TRUNC empties a file; its mtime and ctime advance', async (c) => {
    await c.file(c.p('f'), { data: 'some bytes' });
    const before = await c.stat(c.p('f'));
    await c.tick();
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_TRUNC']);
    const at = await c.stat(c.p('f'));
    await c.root.must('close', fd);
    c.eq('size while open', at.size, 0);
    c.advanced('mtime', before.mtime, at.mtime);
    c.advanced('ctime', before.ctime, at.ctime);
    c.eq('size after close', (await c.stat(c.p('f'))).size, 0);
  });
  l.kase('open: EACCES with O_TRUNC without write permission', async (c) => {
    await c.file(c.p('f'), { data: 'x', mode: 0o644 });
    c.errno('open O_RDONLY|O_TRUNC as a user', await c.a.call('open', c.p('f'), ['O_RDONLY', 'O_TRUNC']), 'EACCES');
    c.eq('content kept', await readAll(c, c.p('f')), 'x');
  });
  for (const [flags, mode, label] of [
    [['O_RDONLY'], 0o200, 'read on a write-only file'],
    [['O_WRONLY'], 0o400, 'write on a read-only file'],
    [['O_RDWR'], 0o400, 'read-write on a read-only file'],
    [['O_RDWR'], 0o200, 'read-write on a write-only file'],
  ] as Array<[string[], number, string]>) {
    l.kase(`open: EACCES for ${label} (mode ${mode.toString(8)})`, async (c) => {
      await c.file(c.p('f'), { mode });
      await c.give(c.p('f'), c.a);
      c.errno(`open ${flags.join('|')} as the owner`, await c.a.call('open', c.p('f'), flags), 'EACCES');
      c.errno(`open ${flags.join('|')} as another user`, await c.b.call('open', c.p('f'), flags), 'EACCES');
    });
  }
  l.kase('open: EACCES for a group member when the group bits deny, even if the other bits allow', async (c) => {
    await c.file(c.p('f'), { mode: 0o604 });
    await c.root.must('chown', c.p('f'), c.a.uid, c.b.gid);
    await c.root.must('chmod', c.p('f'), 0o604);
    const fd = c.succeeds<number>('the owner reads (owner bits 6)', await c.a.call('open', c.p('f'), ['O_RDONLY']));
    if (fd !== undefined) await c.a.must('close', fd);
    c.errno('a member of the group (group bits 0)', await c.b.call('open', c.p('f'), ['O_RDONLY']), 'EACCES');
  });
  l.kase('open: EISDIR for a directory opened for writing', async (c) => {
    await c.mkdir(c.p('d'));
    c.errno('open O_WRONLY', await c.root.call('open', c.p('d'), ['O_WRONLY']), 'EISDIR');
    c.errno('open O_RDWR', await c.root.call('open', c.p('d'), ['O_RDWR']), 'EISDIR');
  });
  l.kase('open: ELOOP with O_NOFOLLOW on a symbolic link', async (c) => {
    await c.file(c.p('f'));
    await c.root.must('symlink', 'f', c.p('l'));
    c.errno('open O_NOFOLLOW', await c.root.call('open', c.p('l'), ['O_RDONLY', 'O_NOFOLLOW']), 'ELOOP');
  });
  l.kase('open: ENOTDIR with O_DIRECTORY on a file', async (c) => {
    await c.file(c.p('f'));
    c.errno('open O_DIRECTORY', await c.root.call('open', c.p('f'), ['O_RDONLY', 'O_DIRECTORY']), 'ENOTDIR');
  });
  l.kase('open: ENXIO for a UNIX domain socket', async (c) => {
    await c.root.must('mknod', c.p('s'), 'sock', 0o644, 0);
    c.errno('open O_RDONLY', await c.root.call('open', c.p('s'), ['O_RDONLY']), 'ENXIO');
  });
  l.kase('open: ENXIO for a fifo opened O_WRONLY|O_NONBLOCK with no reader', async (c) => {
    await c.root.must('mkfifo', c.p('f'), 0o644);
    c.errno('open', await c.root.call('open', c.p('f'), ['O_WRONLY', 'O_NONBLOCK']), 'ENXIO');
  });
  l.kase('open: EACCES for O_CREAT in a directory without write permission', async (c) => {
    c.errno('open O_CREAT as a user in a 0755 root directory', await c.a.call('open', c.p('f'), ['O_WRONLY', 'O_CREAT'], 0o644), 'EACCES');
  });
  l.kase('open: O_APPEND writes at the end whatever the offset', async (c) => {
    await c.file(c.p('f'), { data: 'abc' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_APPEND']);
    await c.root.must('lseek', fd, 0, 0);
    await c.root.must('write', fd, 'def');
    await c.root.must('close', fd);
    c.eq('content', await readAll(c, c.p('f')), 'abcdef');
  });
  l.kase('open: O_TMPFILE makes an unnamed file, or EOPNOTSUPP', async (c) => {
    const r = await c.root.call('open', c.dir, ['O_RDWR', 'O_TMPFILE'], 0o600);
    if (r.errno !== undefined) {
      c.errno('open O_TMPFILE', r, 'EOPNOTSUPP');
      return;
    }
    const fd = r.ok as number;
    c.eq('nothing listed', await c.root.must('readdir', c.dir), []);
    await c.root.must('close', fd);
  });
  l.kase('open: O_TMPFILE gives a writable unnamed file (nlink 0)', async (c) => {
    const fd = c.succeeds<number>('open O_TMPFILE', await c.root.call('open', c.dir, ['O_RDWR', 'O_TMPFILE'], 0o600));
    if (fd === undefined) return;
    c.succeeds('write', await c.root.call('write', fd, 'tmp'));
    c.eq('pread', (await c.root.call('pread', fd, 10, 0)).ok, 'tmp');
    const st = await c.root.fstat(fd);
    c.eq('nlink', st.nlink, 0);
    c.eq('size', st.size, 3);
    await c.root.must('close', fd);
  });

  // ───────────── read / write ─────────────
  l.kase('write: pwrite and pread at offsets; a write past the end leaves zeros', async (c) => {
    await c.file(c.p('f'));
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    c.eq('pwrite', (await c.root.call('pwrite', fd, 'end', 10)).ok, 3);
    c.eq('pwrite at 0', (await c.root.call('pwrite', fd, 'ab', 0)).ok, 2);
    c.eq('pread', (await c.root.call('pread', fd, 100, 0)).ok, 'ab' + '\0'.repeat(8) + 'end');
    c.eq('size seen through fstat', (await c.root.fstat(fd)).size, 13);
    await c.root.must('close', fd);
    c.eq('size', (await c.stat(c.p('f'))).size, 13);
  });
  l.kase('write: mtime and ctime advance', async (c) => {
    await c.file(c.p('f'), { data: 'x' });
    const before = await c.stat(c.p('f'));
    await c.tick();
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY']);
    await c.root.must('write', fd, 'y');
    await c.root.must('close', fd);
    const after = await c.stat(c.p('f'));
    c.advanced('mtime', before.mtime, after.mtime);
    c.advanced('ctime', before.ctime, after.ctime);
  });
  l.kase('write: mtime and ctime seen at once while the file is still open', async (c) => {
    await c.file(c.p('f'), { data: 'x' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY']);
    const before = await c.stat(c.p('f'));
    await c.tick();
    await c.root.must('write', fd, 'yz');
    const after = await c.stat(c.p('f'));
    c.eq('size', after.size, 2);
    c.advanced('mtime', before.mtime, after.mtime);
    c.advanced('ctime', before.ctime, after.ctime);
    await c.root.must('close', fd);
  });
  l.kase('write: visible to another descriptor before close (read-your-writes)', async (c) => {
    await c.file(c.p('f'));
    const w = await c.root.must<number>('open', c.p('f'), ['O_WRONLY']);
    await c.root.must('write', w, 'seen');
    const r = await c.root.must<number>('open', c.p('f'), ['O_RDONLY']);
    c.eq('read through another descriptor', await c.root.must('read', r, 100), 'seen');
    await c.root.must('close', r);
    await c.root.must('close', w);
  });
  l.kase('write: by a user who is not the owner clears the setuid bit', async (c) => {
    await c.file(c.p('f'), { mode: 0o4777 });
    await c.root.must('chmod', c.p('f'), 0o4777);
    const fd = await c.a.must<number>('open', c.p('f'), ['O_WRONLY']);
    await c.a.must('write', fd, 'x');
    await c.a.must('close', fd);
    c.eq('mode', (await c.stat(c.p('f'))).perm, 0o777);
  });
  l.kase('read: atime advances when it is not later than mtime (relatime)', async (c) => {
    await c.file(c.p('f'), { data: 'some bytes' });
    await c.root.must('utimensat', c.p('f'), '1000000000000000000', '1000000000000000000');
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDONLY']);
    c.eq('read', (await c.root.call('read', fd, 100)).ok, 'some bytes');
    await c.root.must('close', fd);
    const st = await c.stat(c.p('f'));
    c.advanced('atime', 1_100_000_000_000_000_000n, st.atime);
    c.eq('mtime kept', String(st.mtime), '1000000000000000000');
  });
  l.kase('read: EBADF on a descriptor opened write-only, write: EBADF on one opened read-only', async (c) => {
    await c.file(c.p('f'), { data: 'x' });
    const w = await c.root.must<number>('open', c.p('f'), ['O_WRONLY']);
    c.errno('read', await c.root.call('read', w, 10), 'EBADF');
    await c.root.must('close', w);
    const r = await c.root.must<number>('open', c.p('f'), ['O_RDONLY']);
    c.errno('write', await c.root.call('write', r, 'y'), 'EBADF');
    await c.root.must('close', r);
  });
  l.kase('read: EISDIR on a directory', async (c) => {
    await c.mkdir(c.p('d'));
    const fd = await c.root.must<number>('open', c.p('d'), ['O_RDONLY']);
    c.errno('read', await c.root.call('read', fd, 10), 'EISDIR');
    await c.root.must('close', fd);
  });

  l.kase('fsync: on a file and on a directory succeeds', async (c) => {
    await c.file(c.p('f'), { data: 'x' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    await c.root.must('write', fd, 'y');
    c.succeeds('fsync a file', await c.root.call('fsync', fd));
    await c.root.must('close', fd);
    const d = await c.root.must<number>('open', c.dir, ['O_RDONLY', 'O_DIRECTORY']);
    c.succeeds('fsync a directory', await c.root.call('fsync', d));
    await c.root.must('close', d);
  });
  l.kase('fchmod, fchown and futimens act on the open file', async (c) => {
    await c.file(c.p('f'));
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    c.succeeds('fchmod', await c.root.call('fchmod', fd, 0o600));
    c.succeeds('fchown', await c.root.call('fchown', fd, c.a.uid, c.a.gid));
    c.succeeds('futimens', await c.root.call('futimens', fd, '1000000000000000000', '1100000000000000000'));
    await c.root.must('close', fd);
    const st = await c.stat(c.p('f'));
    c.eq('mode', st.perm, 0o600);
    c.eq('owner', [st.uid, st.gid], [c.a.uid, c.a.gid]);
    c.eq('mtime', String(st.mtime), '1100000000000000000');
  });
  l.kase('futimens: times set on a file with unsaved writes survive its close (cp -p, tar)', async (c) => {
    await c.file(c.p('f'), { data: 'old' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_TRUNC']);
    await c.root.must('write', fd, 'new content');
    c.succeeds('futimens', await c.root.call('futimens', fd, '1000000000000000000', '1100000000000000000'));
    await c.root.must('close', fd);
    const st = await c.stat(c.p('f'));
    c.eq('size', st.size, 11);
    c.eq('mtime', String(st.mtime), '1100000000000000000');
    c.eq('atime', String(st.atime), '1000000000000000000');
  });

  l.kase('write: two descriptors of one file: each close keeps both writes', async (c) => {
    await c.file(c.p('f'), { data: '....' });
    const a = await c.root.must<number>('open', c.p('f'), ['O_WRONLY']);
    const b = await c.root.must<number>('open', c.p('f'), ['O_WRONLY']);
    await c.root.must('pwrite', a, 'A', 0);
    await c.root.must('pwrite', b, 'B', 3);
    await c.root.must('close', a);
    c.eq('after the first close', await readAll(c, c.p('f')), 'A..B');
    await c.root.must('pwrite', b, 'b', 2);
    await c.root.must('close', b);
    c.eq('after the second close', await readAll(c, c.p('f')), 'A.bB');
  });
  l.kase('rename: a file with unsaved writes keeps them under its new name', async (c) => {
    await c.file(c.p('f'), { data: 'old' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_TRUNC']);
    await c.root.must('write', fd, 'draft');
    await c.root.must('rename', c.p('f'), c.p('g'));
    await c.root.must('write', fd, ' saved');
    c.succeeds('close', await c.root.call('close', fd));
    c.eq('content under the new name', await readAll(c, c.p('g')), 'draft saved');
    c.errno('old name', await c.root.call('lstat', c.p('f')), 'ENOENT');
  });
  l.kase('mmap: writes through a shared mapping reach the file', async (c) => {
    await c.file(c.p('f'), { data: 'abcdefgh' });
    c.succeeds('mmap write + msync', await c.root.call('mmap_write', c.p('f'), 2, 'XY'));
    c.eq('read(2) sees them', await readAll(c, c.p('f')), 'abXYefgh');
    c.eq('a new mapping sees them', (await c.root.call('mmap_read', c.p('f'))).ok, 'abXYefgh');
  });
  l.kase('fcntl: byte-range write locks conflict between processes (EAGAIN or EACCES)', async (c) => {
    await c.file(c.p('f'), { data: '0123456789', mode: 0o666 });
    const mine = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    const theirs = await c.a.must<number>('open', c.p('f'), ['O_RDWR']);
    c.succeeds('lock bytes 0–4', await c.root.call('lockf', mine, 'F_WRLCK', 0, 5));
    c.errno('another process: bytes 2–3', await c.a.call('lockf', theirs, 'F_WRLCK', 2, 2), 'EAGAIN', 'EACCES');
    c.succeeds('another process: bytes 5–9', await c.a.call('lockf', theirs, 'F_WRLCK', 5, 5));
    await c.root.must('lockf', mine, 'F_UNLCK', 0, 5);
    c.succeeds('after unlock: bytes 2–3', await c.a.call('lockf', theirs, 'F_WRLCK', 2, 2));
    await c.a.must('close', theirs);
    await c.root.must('close', mine);
  });
  l.kase('flock: an exclusive lock excludes another open file description (EWOULDBLOCK)', async (c) => {
    await c.file(c.p('f'), { mode: 0o666 });
    const mine = await c.root.must<number>('open', c.p('f'), ['O_RDONLY']);
    const theirs = await c.a.must<number>('open', c.p('f'), ['O_RDONLY']);
    c.succeeds('LOCK_EX', await c.root.call('flock', mine, 'LOCK_EX'));
    c.errno('another LOCK_SH', await c.a.call('flock', theirs, 'LOCK_SH'), 'EAGAIN', 'EWOULDBLOCK');
    await c.root.must('flock', mine, 'LOCK_UN');
    c.succeeds('after LOCK_UN', await c.a.call('flock', theirs, 'LOCK_SH'));
    await c.a.must('close', theirs);
    await c.root.must('close', mine);
  });

  // ───────────── files open after their name is gone ─────────────
  l.kase('unlink: an open file stays readable: read, pread and fstat after unlink', async (c) => {
    await c.file(c.p('f'), { data: 'still here' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDONLY']);
    await c.root.must('unlink', c.p('f'));
    c.eq('read', (await c.root.call('read', fd, 5)).ok, 'still');
    c.eq('pread', (await c.root.call('pread', fd, 100, 6)).ok, 'here');
    const st = await c.root.call('fstat', fd);
    c.succeeds('fstat', st);
    if (st.ok) c.eq('fstat nlink', (st.ok as { nlink: number }).nlink, 0);
    c.succeeds('close', await c.root.call('close', fd));
  });
  l.kase('unlink: an open file stays writable: write, pwrite, pread, ftruncate after unlink, and close succeeds', async (c) => {
    await c.file(c.p('f'), { data: 'abc' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    await c.root.must('unlink', c.p('f'));
    c.succeeds('pwrite', await c.root.call('pwrite', fd, 'XYZ', 3));
    c.succeeds('write', await c.root.call('write', fd, '12'));
    c.eq('pread', (await c.root.call('pread', fd, 100, 0)).ok, '12cXYZ');
    c.succeeds('ftruncate', await c.root.call('ftruncate', fd, 2));
    c.eq('pread after ftruncate', (await c.root.call('pread', fd, 100, 0)).ok, '12');
    c.succeeds('fsync', await c.root.call('fsync', fd));
    c.succeeds('close', await c.root.call('close', fd));
  });
  l.kase('rename: a file open when another is renamed over it stays readable', async (c) => {
    await c.file(c.p('old'), { data: 'old content' });
    await c.file(c.p('new'), { data: 'new content' });
    const fd = await c.root.must<number>('open', c.p('old'), ['O_RDONLY']);
    await c.root.must('rename', c.p('new'), c.p('old'));
    c.eq('read the replaced file', (await c.root.call('read', fd, 100)).ok, 'old content');
    c.succeeds('close', await c.root.call('close', fd));
    c.eq('the name shows the new file', await readAll(c, c.p('old')), 'new content');
  });

  // ───────────── truncate / ftruncate ─────────────
  l.kase('truncate: shrinks and grows (zeros); mtime and ctime advance', async (c) => {
    await c.file(c.p('f'), { data: 'abcdef' });
    const before = await c.stat(c.p('f'));
    await c.tick();
    c.succeeds('truncate 3', await c.root.call('truncate', c.p('f'), 3));
    const mid = await c.stat(c.p('f'));
    c.eq('size', mid.size, 3);
    c.advanced('mtime', before.mtime, mid.mtime);
    c.advanced('ctime', before.ctime, mid.ctime);
    c.succeeds('truncate 8', await c.root.call('truncate', c.p('f'), 8));
    c.eq('content', await readAll(c, c.p('f')), 'abc' + '\0'.repeat(5));
  });
  l.kase('truncate: of a file someone has open: new size, mtime and ctime seen at once', async (c) => {
    await c.file(c.p('f'), { data: 'abcdef' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    const before = await c.stat(c.p('f'));
    await c.tick();
    c.succeeds('truncate 0', await c.root.call('truncate', c.p('f'), 0));
    const after = await c.stat(c.p('f'));
    c.eq('size', after.size, 0);
    c.advanced('mtime', before.mtime, after.mtime);
    c.advanced('ctime', before.ctime, after.ctime);
    await c.root.must('close', fd);
  });
  l.kase('ftruncate: shrinks and grows through the descriptor; mtime and ctime advance', async (c) => {
    await c.file(c.p('f'), { data: 'abcdef' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    const before = await c.root.fstat(fd);
    await c.tick();
    c.succeeds('ftruncate 2', await c.root.call('ftruncate', fd, 2));
    const after = await c.root.fstat(fd);
    c.eq('size', after.size, 2);
    c.advanced('mtime', before.mtime, after.mtime);
    c.advanced('ctime', before.ctime, after.ctime);
    c.succeeds('ftruncate 4', await c.root.call('ftruncate', fd, 4));
    c.eq('pread', (await c.root.call('pread', fd, 10, 0)).ok, 'ab\0\0');
    await c.root.must('close', fd);
    c.eq('size after close', (await c.stat(c.p('f'))).size, 4);
  });
  l.kase('truncate: EISDIR on a directory', async (c) => {
    await c.mkdir(c.p('d'));
    c.errno('truncate', await c.root.call('truncate', c.p('d'), 0), 'EISDIR');
  });
  l.kase('truncate: EACCES without write permission', async (c) => {
    await c.file(c.p('f'), { data: 'x', mode: 0o644 });
    c.errno('truncate as a user', await c.a.call('truncate', c.p('f'), 0), 'EACCES');
  });
  l.kase('truncate: EINVAL for a negative length', async (c) => {
    await c.file(c.p('f'));
    c.errno('truncate -1', await c.root.call('truncate', c.p('f'), -1), 'EINVAL');
  });
  l.kase('truncate, ftruncate, pwrite: EFBIG (or EINVAL) past the largest file size; the file is unchanged', async (c) => {
    await c.file(c.p('f'), { data: 'abc' });
    c.errno('truncate to 10^18', await c.root.call('truncate', c.p('f'), 1e18), 'EFBIG', 'EINVAL');
    const fd = await c.root.must<number>('open', c.p('f'), ['O_WRONLY']);
    c.errno('ftruncate to 10^18', await c.root.call('ftruncate', fd, 1e18), 'EFBIG', 'EINVAL');
    c.errno('pwrite at 10^18', await c.root.call('pwrite', fd, 'x', 1e18), 'EFBIG', 'EINVAL');
    await c.root.must('close', fd);
    c.eq('size', (await c.stat(c.p('f'))).size, 3);
  });
  l.kase('ftruncate: EINVAL (or EBADF) on a descriptor not open for writing', async (c) => {
    await c.file(c.p('f'), { data: 'x' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDONLY']);
    c.errno('ftruncate', await c.root.call('ftruncate', fd, 0), 'EINVAL', 'EBADF');
    await c.root.must('close', fd);
  });

  // ───────────── fallocate ─────────────
  l.kase('posix_fallocate: extends the file with zeros', async (c) => {
    await c.file(c.p('f'), { data: 'ab' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    c.succeeds('posix_fallocate 0..4096', await c.root.call('posix_fallocate', fd, 0, 4096));
    await c.root.must('close', fd);
    const st = await c.stat(c.p('f'));
    c.eq('size', st.size, 4096);
    c.eq('content', await readAll(c, c.p('f')), 'ab' + '\0'.repeat(4094));
  });
  l.kase('fallocate: mode 0 extends the file; FALLOC_FL_KEEP_SIZE keeps the size', async (c) => {
    await c.file(c.p('f'), { data: 'ab' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDWR']);
    c.succeeds('fallocate 0..8192', await c.root.call('fallocate', fd, [], 0, 8192));
    c.eq('size', (await c.root.fstat(fd)).size, 8192);
    c.succeeds('fallocate KEEP_SIZE to 16384', await c.root.call('fallocate', fd, ['FALLOC_FL_KEEP_SIZE'], 0, 16384));
    c.eq('size kept', (await c.root.fstat(fd)).size, 8192);
    await c.root.must('close', fd);
  });
  l.kase('fallocate: EBADF on a descriptor not open for writing', async (c) => {
    await c.file(c.p('f'), { data: 'x' });
    const fd = await c.root.must<number>('open', c.p('f'), ['O_RDONLY']);
    c.errno('fallocate', await c.root.call('fallocate', fd, [], 0, 4096), 'EBADF');
    await c.root.must('close', fd);
  });
}
