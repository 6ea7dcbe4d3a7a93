/**
 * Cases for the calls that make, remove and rename names: mkdir, rmdir, unlink, rename and
 * renameat2, link, symlink, readlink, mknod/mkfifo — what each returns, what it makes (type,
 * mode, owner, nlink), and the times it must change or keep on the node and on its parent
 * directories (POSIX: "marks for update the last data modification and last file status change
 * timestamps of the parent directory").
 */
import type { Caller } from './caller.js';
import { ALL_KINDS, S_IF, type CaseList, type Ctx, type NodeKind } from './suite.js';

/** Python's sorted() order (code points), which readdir answers in. */
const byCodePoint = (x: string, y: string): number => {
  const a = [...x].map((ch) => ch.codePointAt(0)!);
  const b = [...y].map((ch) => ch.codePointAt(0)!);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/** Another file system than any target's (EXDEV): tmpfs. */
const OTHER_FS = '/dev/shm';

/** Run `op` and check that `dir`'s mtime and ctime advanced. */
async function parentTimes(c: Ctx, dir: string, what: string, op: () => Promise<unknown>): Promise<void> {
  const before = await c.stat(dir);
  await c.tick();
  await op();
  const after = await c.stat(dir);
  c.advanced(`${what}: parent mtime advances`, before.mtime, after.mtime);
  c.advanced(`${what}: parent ctime advances`, before.ctime, after.ctime);
}

/** A node of `kind` owned by `who`, made by root then given away (callers' ownership is another case). */
async function owned(c: Ctx, kind: NodeKind, path: string, who: Caller, mode = 0o644): Promise<string> {
  await c.make(kind, path, mode);
  await c.give(path, who);
  return path;
}

export function registerNames(l: CaseList): void {
  // ───────────── names ─────────────
  l.kase("names: any byte but '/' and NUL makes a name (spaces, newline, tab, backslash, '*', UTF-8)", async (c) => {
    const names = [' lead and trail ', 'new\nline', 'tab\there', 'back\\slash', 'star*?[x]', '-dash', 'émoji 🎞', "quote'\"", '..dots', '.hidden'];
    for (const n of names) c.succeeds(`create ${JSON.stringify(n)}`, await c.root.call('mknod', c.p(n), 'fifo', 0o644, 0));
    c.eq('readdir', (await c.root.call('readdir', c.dir)).ok, [...names].sort(byCodePoint));
  });
  l.kase('names: case and Unicode normalization make different names', async (c) => {
    const names = ['a', 'A', 'caf\u00e9', 'cafe\u0301'];
    for (const n of names) c.succeeds(`create ${JSON.stringify(n)}`, await c.root.call('mknod', c.p(n), 'fifo', 0o644, 0));
    c.eq('four names', ((await c.root.call('readdir', c.dir)).ok as string[] | undefined)?.length, 4);
  });
  l.kase('names: a name that is not UTF-8 is kept byte for byte, or refused with EILSEQ where names must be UTF-8 (SPEC D5)', async (c) => {
    // a lone surrogate travels to python as the raw byte 0xE9 (surrogateescape)
    const name = 'caf\udce9';
    if (!c.target.utf8Names) {
      c.succeeds('create caf\\xe9', await c.root.call('mknod', c.p(name), 'fifo', 0o644, 0));
      c.eq('readdir', (await c.root.call('readdir', c.dir)).ok, [name]);
      return;
    }
    // Never altered (D5): refused, so two names differing only in such bytes can never become one.
    c.errno('create caf\\xe9', await c.root.call('mknod', c.p(name), 'fifo', 0o644, 0), 'EILSEQ');
    c.errno('create caf\\xe8', await c.root.call('mknod', c.p('caf\udce8'), 'fifo', 0o644, 0), 'EILSEQ');
    c.errno('lookup caf\\xe9', await c.root.call('lstat', c.p(name)), 'EILSEQ');
    c.eq('readdir: nothing was made', (await c.root.call('readdir', c.dir)).ok, []);
  });

  // ───────────── mkdir ─────────────
  l.kase('mkdir: makes a directory with the mode asked, nlink 2, parent nlink + 1', async (c) => {
    const before = await c.stat(c.dir);
    c.succeeds('mkdir 0751', await c.root.call('mkdir', c.p('d'), 0o751));
    const st = await c.stat(c.p('d'));
    c.eq('type', st.type, S_IF.dir);
    c.eq('mode', st.perm, 0o751);
    c.eq('nlink', st.nlink, 2);
    c.eq('parent nlink', (await c.stat(c.dir)).nlink, before.nlink + 1);
  });
  l.kase('mkdir: the new directory belongs to the caller', async (c) => {
    const w = await c.openDir(c.p('w'));
    c.succeeds('mkdir as a user', await c.a.call('mkdir', `${w}/d`, 0o755));
    const st = await c.stat(`${w}/d`);
    c.eq('uid is the caller', st.uid, c.a.uid);
    c.eq('gid is the caller', st.gid, c.a.gid);
  });
  l.kase('mkdir: in a setgid directory the new directory takes its group and the setgid bit', async (c) => {
    const w = await c.openDir(c.p('w'), 0o2777);
    await c.root.must('chown', w, 0, c.b.gid);
    await c.root.must('chmod', w, 0o2777);
    c.succeeds('mkdir as a user', await c.a.call('mkdir', `${w}/d`, 0o755));
    const st = await c.stat(`${w}/d`);
    c.eq("gid is the directory's", st.gid, c.b.gid);
    c.eq('setgid bit inherited', st.perm & 0o2000, 0o2000);
  });
  l.kase('mkdir: the sticky bit asked for is kept', async (c) => {
    c.succeeds('mkdir 01777', await c.root.call('mkdir', c.p('d'), 0o1777));
    c.eq('mode', (await c.stat(c.p('d'))).perm, 0o1777);
  });
  l.kase('mkdir: parent mtime and ctime advance', async (c) => {
    await parentTimes(c, c.dir, 'mkdir', () => c.root.must('mkdir', c.p('d'), 0o755));
  });
  l.kase("mkdir: the new directory's atime, mtime and ctime are the time of creation", async (c) => {
    await c.root.must('mkdir', c.p('d'), 0o755);
    const st = await c.stat(c.p('d'));
    const parent = await c.stat(c.dir);
    c.eq('mtime = ctime', st.mtime, st.ctime);
    c.eq('atime = ctime', st.atime, st.ctime);
    c.eq("parent's new mtime = the directory's ctime", parent.mtime, st.ctime);
  });
  l.each(ALL_KINDS, 'mkdir: EEXIST when the name exists', async (c, kind) => {
    await c.make(kind, c.p('x'));
    c.errno('mkdir over an existing name', await c.root.call('mkdir', c.p('x'), 0o755), 'EEXIST');
  });
  l.kase('mkdir: EACCES without write permission on the parent', async (c) => {
    c.errno('mkdir in a 0755 root directory as a user', await c.a.call('mkdir', c.p('d'), 0o755), 'EACCES');
  });

  l.kase('readdir: lists what the directory holds; its atime advances when not later than mtime (relatime)', async (c) => {
    await c.mkdir(c.p('d'));
    await c.file(c.p('d', 'f'));
    await c.mkdir(c.p('d', 'e'));
    await c.root.must('utimensat', c.p('d'), '1000000000000000000', '1000000000000000000');
    c.eq('names', (await c.root.call('readdir', c.p('d'))).ok, ['e', 'f']);
    c.advanced('atime', 1_100_000_000_000_000_000n, (await c.stat(c.p('d'))).atime);
  });

  l.kase('readdir: lists a thousand names, each once', async (c) => {
    await c.mkdir(c.p('d'));
    const names: string[] = [];
    for (let i = 0; i < 1000; i++) names.push(`entry-${String(i).padStart(4, '0')}-${'x'.repeat(i % 200)}`);
    for (const n of names) await c.root.must('mknod', c.p('d', n), 'fifo', 0o644, 0);
    c.eq('names', (await c.root.call('readdir', c.p('d'))).ok, [...names].sort());
  });

  // ───────────── rmdir ─────────────
  l.kase('rmdir: removes an empty directory; parent nlink - 1, parent mtime and ctime advance', async (c) => {
    await c.mkdir(c.p('d'));
    const nlink = (await c.stat(c.dir)).nlink;
    await parentTimes(c, c.dir, 'rmdir', () => c.root.must('rmdir', c.p('d')));
    c.errno('gone', await c.root.call('lstat', c.p('d')), 'ENOENT');
    c.eq('parent nlink', (await c.stat(c.dir)).nlink, nlink - 1);
  });
  l.kase('rmdir: ENOTEMPTY (or EEXIST) when the directory holds a name', async (c) => {
    await c.mkdir(c.p('d'));
    await c.file(c.p('d', 'f'));
    c.errno('rmdir of a non-empty directory', await c.root.call('rmdir', c.p('d')), 'ENOTEMPTY', 'EEXIST');
    c.succeeds('still there', await c.root.call('stat', c.p('d', 'f')));
  });
  l.each(['regular', 'fifo', 'symlink', 'socket'], 'rmdir: ENOTDIR when the name is not a directory', async (c, kind) => {
    await c.make(kind, c.p('x'));
    c.errno('rmdir of a non-directory', await c.root.call('rmdir', c.p('x')), 'ENOTDIR');
  });
  l.kase("rmdir: EINVAL for '.', ENOTEMPTY or EEXIST for '..'", async (c) => {
    await c.mkdir(c.p('d'));
    await c.mkdir(c.p('d', 'e'));
    c.errno("rmdir d/e/.", await c.root.call('rmdir', c.p('d', 'e', '.')), 'EINVAL');
    c.errno("rmdir d/e/..", await c.root.call('rmdir', c.p('d', 'e', '..')), 'ENOTEMPTY', 'EEXIST');
  });
  l.kase('rmdir: EACCES without write permission on the parent', async (c) => {
    await c.mkdir(c.p('d'));
    c.errno('rmdir as a user', await c.a.call('rmdir', c.p('d')), 'EACCES');
  });
  l.kase('rmdir: in a sticky directory only the owner of the directory or of the parent may remove it', async (c) => {
    const s = await c.openDir(c.p('s'), 0o1777);
    await c.a.must('mkdir', `${s}/mine`, 0o755);
    await c.a.must('mkdir', `${s}/mine2`, 0o755);
    c.errno("another user's rmdir", await c.b.call('rmdir', `${s}/mine`), 'EPERM', 'EACCES');
    c.succeeds("the owner's rmdir", await c.a.call('rmdir', `${s}/mine`));
    await c.give(s, c.b);
    c.succeeds("the sticky directory's owner's rmdir", await c.b.call('rmdir', `${s}/mine2`));
  });

  // ───────────── unlink ─────────────
  l.each(['regular', 'fifo', 'block', 'char', 'socket', 'symlink'], 'unlink: removes the name; parent mtime and ctime advance', async (c, kind) => {
    await c.make(kind, c.p('x'));
    await parentTimes(c, c.dir, 'unlink', () => c.root.must('unlink', c.p('x')));
    c.errno('gone', await c.root.call('lstat', c.p('x')), 'ENOENT');
  });
  l.kase('unlink: EISDIR (Linux) on a directory', async (c) => {
    await c.mkdir(c.p('d'));
    c.errno('unlink of a directory', await c.root.call('unlink', c.p('d')), 'EISDIR', 'EPERM');
  });
  l.kase('unlink: EACCES without write permission on the parent', async (c) => {
    await c.file(c.p('f'), { mode: 0o666 });
    c.errno('unlink as a user', await c.a.call('unlink', c.p('f')), 'EACCES');
  });
  l.kase('unlink: in a sticky directory only the owner of the file or of the directory may remove it', async (c) => {
    const s = await c.openDir(c.p('s'), 0o1777);
    await c.file(`${s}/f1`, { as: c.a, mode: 0o666 });
    await c.file(`${s}/f2`, { as: c.a, mode: 0o666 });
    c.errno("another user's unlink", await c.b.call('unlink', `${s}/f1`), 'EPERM', 'EACCES');
    c.succeeds("the owner's unlink", await c.a.call('unlink', `${s}/f1`));
    await c.give(s, c.b);
    c.succeeds("the sticky directory's owner's unlink", await c.b.call('unlink', `${s}/f2`));
  });
  l.kase('unlink: a symbolic link to the removed file stays, dangling, and reads the same', async (c) => {
    await c.file(c.p('f'), { data: 'x' });
    await c.root.must('symlink', 'f', c.p('l'));
    await c.root.must('unlink', c.p('f'));
    c.succeeds('lstat of the link', await c.root.call('lstat', c.p('l')));
    c.eq('readlink', (await c.root.call('readlink', c.p('l'))).ok, 'f');
    c.errno('stat through the link', await c.root.call('stat', c.p('l')), 'ENOENT');
  });
  l.kase("unlink: a name of a file with two names: the other keeps the content, nlink - 1, the file's ctime advances", async (c) => {
    await c.file(c.p('f'), { data: 'kept' });
    c.succeeds('link', await c.root.call('link', c.p('f'), c.p('g')));
    const before = await c.stat(c.p('g'));
    await c.tick();
    c.succeeds('unlink f', await c.root.call('unlink', c.p('f')));
    const after = await c.stat(c.p('g'));
    c.eq('nlink', after.nlink, before.nlink - 1);
    c.advanced('ctime', before.ctime, after.ctime);
    const fd = await c.root.must<number>('open', c.p('g'), ['O_RDONLY']);
    c.eq('content', await c.root.must('read', fd, 100), 'kept');
    await c.root.must('close', fd);
  });

  // ───────────── rename ─────────────
  l.each(['regular', 'dir', 'fifo', 'symlink', 'socket'], 'rename: moves the name; st_ino kept, old name gone', async (c, kind) => {
    await c.make(kind, c.p('a'));
    const ino = (await c.stat(c.p('a'), { l: true })).ino;
    c.succeeds('rename', await c.root.call('rename', c.p('a'), c.p('b')));
    c.errno('old name', await c.root.call('lstat', c.p('a')), 'ENOENT');
    c.eq('same inode', (await c.stat(c.p('b'), { l: true })).ino, ino);
  });
  l.each(['regular', 'dir', 'fifo', 'symlink', 'socket'], "rename: the moved node's ctime advances, its mtime is kept (Linux)", async (c, kind) => {
    await c.make(kind, c.p('a'));
    const before = await c.stat(c.p('a'), { l: true });
    await c.tick();
    await c.root.must('rename', c.p('a'), c.p('b'));
    const after = await c.stat(c.p('b'), { l: true });
    c.advanced('ctime', before.ctime, after.ctime);
    c.kept('mtime', before.mtime, after.mtime);
  });
  l.kase('rename: mtime and ctime of both parent directories advance', async (c) => {
    await c.mkdir(c.p('s'));
    await c.mkdir(c.p('t'));
    await c.file(c.p('s', 'f'));
    const s0 = await c.stat(c.p('s'));
    const t0 = await c.stat(c.p('t'));
    await c.tick();
    await c.root.must('rename', c.p('s', 'f'), c.p('t', 'f'));
    const s1 = await c.stat(c.p('s'));
    const t1 = await c.stat(c.p('t'));
    c.advanced('source parent mtime', s0.mtime, s1.mtime);
    c.advanced('source parent ctime', s0.ctime, s1.ctime);
    c.advanced('destination parent mtime', t0.mtime, t1.mtime);
    c.advanced('destination parent ctime', t0.ctime, t1.ctime);
  });
  l.kase("rename: within one directory its mtime and ctime advance", async (c) => {
    await c.file(c.p('a'));
    await parentTimes(c, c.dir, 'rename a b', () => c.root.must('rename', c.p('a'), c.p('b')));
  });
  l.kase('rename: a directory keeps what it holds', async (c) => {
    await c.mkdir(c.p('a'));
    await c.mkdir(c.p('a', 'sub'));
    await c.file(c.p('a', 'sub', 'f'), { data: 'deep' });
    c.succeeds('rename a b', await c.root.call('rename', c.p('a'), c.p('b')));
    c.eq('listing', (await c.root.call('readdir', c.p('b', 'sub'))).ok, ['f']);
    c.eq('size of b/sub/f', (await c.stat(c.p('b', 'sub', 'f'))).size, 4);
  });
  l.kase('rename: ENOTDIR for a trailing slash on a non-directory', async (c) => {
    await c.file(c.p('f'));
    c.errno('rename f g/', await c.root.call('rename', c.p('f'), `${c.p('g')}/`), 'ENOTDIR');
    c.errno('rename f/ g', await c.root.call('rename', `${c.p('f')}/`, c.p('g')), 'ENOTDIR');
  });
  l.kase("rename: a directory moved to another parent: nlinks of both parents, its '..'", async (c) => {
    await c.mkdir(c.p('s'));
    await c.mkdir(c.p('t'));
    await c.mkdir(c.p('s', 'd'));
    const s0 = (await c.stat(c.p('s'))).nlink;
    const t0 = (await c.stat(c.p('t'))).nlink;
    await c.root.must('rename', c.p('s', 'd'), c.p('t', 'd'));
    c.eq('source parent nlink - 1', (await c.stat(c.p('s'))).nlink, s0 - 1);
    c.eq('destination parent nlink + 1', (await c.stat(c.p('t'))).nlink, t0 + 1);
    c.eq("'..' is the new parent", (await c.stat(c.p('t', 'd', '..'))).ino, (await c.stat(c.p('t'))).ino);
  });
  l.kase('rename: over an existing file replaces it (the new name shows the moved content)', async (c) => {
    await c.file(c.p('a'), { data: 'from a' });
    await c.file(c.p('b'), { data: 'old b' });
    const ino = (await c.stat(c.p('a'))).ino;
    c.succeeds('rename a b', await c.root.call('rename', c.p('a'), c.p('b')));
    c.eq('b is a', (await c.stat(c.p('b'))).ino, ino);
    const fd = await c.root.must<number>('open', c.p('b'), ['O_RDONLY']);
    c.eq('content', await c.root.must('read', fd, 100), 'from a');
    await c.root.must('close', fd);
    c.errno('a is gone', await c.root.call('lstat', c.p('a')), 'ENOENT');
  });
  l.kase('rename: over an empty directory replaces it', async (c) => {
    await c.mkdir(c.p('a'));
    await c.mkdir(c.p('b'));
    const ino = (await c.stat(c.p('a'))).ino;
    c.succeeds('rename a b', await c.root.call('rename', c.p('a'), c.p('b')));
    c.eq('b is a', (await c.stat(c.p('b'))).ino, ino);
  });
  l.kase('rename: a name onto itself succeeds and changes nothing', async (c) => {
    await c.file(c.p('a'), { data: 'x' });
    const before = await c.stat(c.p('a'));
    c.succeeds('rename a a', await c.root.call('rename', c.p('a'), c.p('a')));
    c.eq('still there, same inode', (await c.stat(c.p('a'))).ino, before.ino);
  });
  l.kase('rename: two names of one file: succeeds and both names stay (POSIX)', async (c) => {
    await c.file(c.p('a'));
    c.succeeds('link a b', await c.root.call('link', c.p('a'), c.p('b')));
    c.succeeds('rename a b', await c.root.call('rename', c.p('a'), c.p('b')));
    c.succeeds('a is still there', await c.root.call('lstat', c.p('a')));
    c.succeeds('b is still there', await c.root.call('lstat', c.p('b')));
  });
  l.kase('rename: over a name of a file with two names, the file keeps its other name', async (c) => {
    await c.file(c.p('a'), { data: 'moved' });
    await c.file(c.p('b'), { data: 'linked' });
    c.succeeds('link b c', await c.root.call('link', c.p('b'), c.p('c')));
    c.succeeds('rename a b', await c.root.call('rename', c.p('a'), c.p('b')));
    const st = await c.stat(c.p('c'));
    c.eq('c has one name left', st.nlink, 1);
    const fd = await c.root.must<number>('open', c.p('c'), ['O_RDONLY']);
    c.eq('c keeps its content', await c.root.must('read', fd, 100), 'linked');
    await c.root.must('close', fd);
  });
  l.each(['regular', 'fifo', 'symlink'], 'rename: EISDIR when a non-directory would replace a directory', async (c, kind) => {
    await c.make(kind, c.p('a'));
    await c.mkdir(c.p('d'));
    c.errno('rename over a directory', await c.root.call('rename', c.p('a'), c.p('d')), 'EISDIR');
  });
  l.each(['regular', 'fifo', 'symlink'], 'rename: ENOTDIR when a directory would replace a non-directory', async (c, kind) => {
    await c.mkdir(c.p('d'));
    await c.make(kind, c.p('a'));
    c.errno('rename a directory over a non-directory', await c.root.call('rename', c.p('d'), c.p('a')), 'ENOTDIR');
  });
  l.kase('rename: ENOTEMPTY (or EEXIST) when the directory to replace is not empty', async (c) => {
    await c.mkdir(c.p('a'));
    await c.mkdir(c.p('b'));
    await c.file(c.p('b', 'f'));
    c.errno('rename over a non-empty directory', await c.root.call('rename', c.p('a'), c.p('b')), 'ENOTEMPTY', 'EEXIST');
    c.succeeds('b/f is still there', await c.root.call('stat', c.p('b', 'f')));
  });
  l.kase('rename: EINVAL when a directory would move into itself', async (c) => {
    await c.mkdir(c.p('a'));
    await c.mkdir(c.p('a', 'b'));
    c.errno('rename a a/b/c', await c.root.call('rename', c.p('a'), c.p('a', 'b', 'c')), 'EINVAL');
    c.errno('rename a a/c', await c.root.call('rename', c.p('a'), c.p('a', 'c')), 'EINVAL');
  });
  l.kase("rename: EINVAL or EBUSY for '.' and '..'", async (c) => {
    await c.mkdir(c.p('a'));
    await c.mkdir(c.p('a', 'b'));
    c.errno("rename a/b/. x", await c.root.call('rename', c.p('a', 'b', '.'), c.p('x')), 'EINVAL', 'EBUSY');
    c.errno("rename a/b/.. x", await c.root.call('rename', c.p('a', 'b', '..'), c.p('x')), 'EINVAL', 'EBUSY');
  });
  l.kase('rename: EXDEV to another file system', async (c) => {
    await c.file(c.p('a'));
    const other = `${OTHER_FS}/smhfs-posix-${process.pid}-${c.name()}`;
    c.errno('rename into /dev/shm', await c.root.call('rename', c.p('a'), other), 'EXDEV');
    c.succeeds('the source stays', await c.root.call('stat', c.p('a')));
    await c.root.call('unlink', other);
  });
  l.kase('rename: EACCES without write permission on a parent', async (c) => {
    const w = await c.openDir(c.p('w'));
    await owned(c, 'regular', c.p('f'), c.a);
    c.errno('rename out of a 0755 root directory', await c.a.call('rename', c.p('f'), `${w}/f`), 'EACCES');
    await owned(c, 'regular', `${w}/g`, c.a);
    c.errno('rename into a 0755 root directory', await c.a.call('rename', `${w}/g`, c.p('g')), 'EACCES');
  });
  l.kase('rename: EACCES when moving a directory to another parent without write permission on it', async (c) => {
    const w1 = await c.openDir(c.p('w1'));
    const w2 = await c.openDir(c.p('w2'));
    await c.mkdir(`${w1}/d`, 0o555);
    await c.give(`${w1}/d`, c.a);
    await c.root.must('chmod', `${w1}/d`, 0o555);
    c.errno("another user moves a directory it cannot write ('..' changes)", await c.b.call('rename', `${w1}/d`, `${w2}/d`), 'EACCES');
  });
  l.kase('rename: in a sticky directory a user may not move or replace what others own', async (c) => {
    const s = await c.openDir(c.p('s'), 0o1777);
    await c.file(`${s}/theirs`, { as: c.a, mode: 0o666 });
    await c.file(`${s}/mine`, { as: c.b, mode: 0o666 });
    c.errno("move another user's file", await c.b.call('rename', `${s}/theirs`, `${s}/x`), 'EPERM', 'EACCES');
    c.errno("replace another user's file", await c.b.call('rename', `${s}/mine`, `${s}/theirs`), 'EPERM', 'EACCES');
    c.succeeds('move my own file', await c.b.call('rename', `${s}/mine`, `${s}/mine2`));
  });
  l.kase('rename: RENAME_NOREPLACE moves to a free name, EEXIST over an existing one', async (c) => {
    await c.file(c.p('a'));
    await c.file(c.p('b'));
    c.errno('over b', await c.root.call('renameat2', c.p('a'), c.p('b'), ['RENAME_NOREPLACE']), 'EEXIST');
    c.succeeds('to c', await c.root.call('renameat2', c.p('a'), c.p('c'), ['RENAME_NOREPLACE']));
    c.errno('a is gone', await c.root.call('lstat', c.p('a')), 'ENOENT');
  });
  l.kase('rename: RENAME_EXCHANGE swaps two names atomically', async (c) => {
    await c.file(c.p('a'));
    await c.mkdir(c.p('b'));
    const a = (await c.stat(c.p('a'))).ino;
    const b = (await c.stat(c.p('b'))).ino;
    c.succeeds('exchange', await c.root.call('renameat2', c.p('a'), c.p('b'), ['RENAME_EXCHANGE']));
    c.eq('a is the directory', (await c.stat(c.p('a'))).ino, b);
    c.eq('b is the file', (await c.stat(c.p('b'))).ino, a);
    c.errno('with a missing name: ENOENT', await c.root.call('renameat2', c.p('a'), c.p('zz'), ['RENAME_EXCHANGE']), 'ENOENT');
  });

  // ───────────── link ─────────────
  l.each(['regular', 'fifo', 'socket', 'symlink'], 'link: a second name: same inode, nlink 2, ctime advances, parent times advance', async (c, kind) => {
    await c.make(kind, c.p('a'));
    const before = await c.stat(c.p('a'), { l: true });
    const dir0 = await c.stat(c.dir);
    await c.tick();
    c.succeeds('link', await c.root.call('link', c.p('a'), c.p('b')));
    const a = await c.stat(c.p('a'), { l: true });
    const b = await c.stat(c.p('b'), { l: true });
    const dir1 = await c.stat(c.dir);
    c.eq('same inode', b.ino, a.ino);
    c.eq('nlink', [a.nlink, b.nlink], [2, 2]);
    c.advanced('ctime', before.ctime, a.ctime);
    c.advanced('parent mtime', dir0.mtime, dir1.mtime);
    c.advanced('parent ctime', dir0.ctime, dir1.ctime);
  });
  l.kase('link: both names share the content; a write through one shows through the other', async (c) => {
    await c.file(c.p('a'), { data: 'one' });
    c.succeeds('link', await c.root.call('link', c.p('a'), c.p('b')));
    const fd = await c.root.must<number>('open', c.p('b'), ['O_WRONLY', 'O_TRUNC']);
    await c.root.must('write', fd, 'two');
    await c.root.must('close', fd);
    const r = await c.root.must<number>('open', c.p('a'), ['O_RDONLY']);
    c.eq('content through a', await c.root.must('read', r, 100), 'two');
    await c.root.must('close', r);
  });
  l.each(['regular', 'dir', 'symlink'], 'link: EEXIST when the new name exists', async (c, kind) => {
    await c.file(c.p('a'));
    await c.make(kind, c.p('b'));
    c.errno('link over an existing name', await c.root.call('link', c.p('a'), c.p('b')), 'EEXIST');
  });
  l.kase('link: EPERM on a directory', async (c) => {
    await c.mkdir(c.p('d'));
    c.errno('link of a directory', await c.root.call('link', c.p('d'), c.p('e')), 'EPERM');
  });
  l.kase('link: ENOENT when the source does not exist', async (c) => {
    c.errno('link of a missing file', await c.root.call('link', c.p('missing'), c.p('b')), 'ENOENT');
  });
  l.kase('link: EXDEV to another file system', async (c) => {
    await c.file(c.p('a'));
    c.errno('link into /dev/shm', await c.root.call('link', c.p('a'), `${OTHER_FS}/smhfs-posix-${process.pid}-${c.name()}`), 'EXDEV');
  });
  l.kase('link: EACCES without write permission on the new parent', async (c) => {
    const w = await c.openDir(c.p('w'));
    await owned(c, 'regular', `${w}/a`, c.a);
    c.errno('link into a 0755 root directory as a user', await c.a.call('link', `${w}/a`, c.p('b')), 'EACCES');
  });

  // ───────────── symlink / readlink ─────────────
  l.kase('symlink: makes a link: type, mode 0777, size = length of the target, readlink gives it back', async (c) => {
    c.succeeds('symlink', await c.root.call('symlink', 'some/where', c.p('l')));
    const st = await c.stat(c.p('l'), { l: true });
    c.eq('type', st.type, S_IF.symlink);
    c.eq('mode', st.perm, 0o777);
    c.eq('size', st.size, 'some/where'.length);
    c.eq('readlink', await c.root.must('readlink', c.p('l')), 'some/where');
  });
  l.kase('symlink: the target is kept byte for byte (absolute, dots, a 4095-byte target)', async (c) => {
    for (const target of ['/etc/passwd', '../x/./y/', 'a'.repeat(255) + '/' + 'b'.repeat(255), `${'c/'.repeat(2047)}c`]) {
      const l = c.p(c.name());
      const r = await c.root.call('symlink', target, l);
      c.succeeds(`symlink of ${target.length} bytes`, r);
      if (r.errno === undefined) c.eq(`readlink of ${target.length} bytes`, (await c.root.call('readlink', l)).ok, target);
    }
  });
  l.kase('symlink: a link to an existing file reads back exactly as given', async (c) => {
    await c.mkdir(c.p('d'));
    await c.file(c.p('d', 'f'));
    for (const [name, target] of [['l1', 'f'], ['l2', './f'], ['l3', '../d/f']]) {
      c.succeeds(`symlink ${target}`, await c.root.call('symlink', target, c.p('d', name!)));
      c.eq(`readlink ${target}`, (await c.root.call('readlink', c.p('d', name!))).ok, target);
    }
  });
  l.kase("symlink: 'f/' and 'f/.' name no file (ENOTDIR through them), and read back as given", async (c) => {
    await c.file(c.p('f'));
    for (const [name, target] of [['l1', 'f/'], ['l2', 'f/.']]) {
      c.succeeds(`symlink ${target}`, await c.root.call('symlink', target, c.p(name!)));
      c.eq(`readlink ${target}`, (await c.root.call('readlink', c.p(name!))).ok, target);
      c.errno(`stat through ${target}`, await c.root.call('stat', c.p(name!)), 'ENOTDIR');
    }
  });
  l.kase('symlink: the new link belongs to the caller', async (c) => {
    const w = await c.openDir(c.p('w'));
    c.succeeds('symlink as a user', await c.a.call('symlink', 'target', `${w}/l`));
    const st = await c.stat(`${w}/l`, { l: true });
    c.eq('uid', st.uid, c.a.uid);
    c.eq('gid', st.gid, c.a.gid);
  });
  l.kase('symlink: parent mtime and ctime advance', async (c) => {
    await parentTimes(c, c.dir, 'symlink', () => c.root.must('symlink', 'target', c.p('l')));
  });
  l.each(ALL_KINDS, 'symlink: EEXIST when the name exists', async (c, kind) => {
    await c.make(kind, c.p('x'));
    c.errno('symlink over an existing name', await c.root.call('symlink', 'target', c.p('x')), 'EEXIST');
  });
  l.kase('symlink: ENAMETOOLONG for a target of PATH_MAX bytes or more', async (c) => {
    c.errno('a 4096-byte target', await c.root.call('symlink', 'x'.repeat(4096), c.p('l')), 'ENAMETOOLONG');
  });
  l.kase('symlink: EACCES without write permission on the parent', async (c) => {
    c.errno('symlink as a user in a 0755 root directory', await c.a.call('symlink', 'target', c.p('l')), 'EACCES');
  });
  l.each(['regular', 'dir', 'fifo'], 'readlink: EINVAL when the name is not a symbolic link', async (c, kind) => {
    await c.make(kind, c.p('x'));
    c.errno('readlink of a non-link', await c.root.call('readlink', c.p('x')), 'EINVAL');
  });

  // ───────────── mknod / mkfifo ─────────────
  l.kase('mknod: S_IFREG makes an empty regular file', async (c) => {
    c.succeeds('mknod S_IFREG', await c.root.call('mknod', c.p('f'), 'reg', 0o640, 0));
    const st = await c.stat(c.p('f'));
    c.eq('type', st.type, S_IF.regular);
    c.eq('mode', st.perm, 0o640);
    c.eq('size', st.size, 0);
  });
  for (const [kind, how, perm, dev] of [
    ['fifo', 'fifo', 0o640, 0],
    ['socket', 'sock', 0o640, 0],
    ['char', 'chr', 0o600, 0x0103],
    ['block', 'blk', 0o600, 0x0801],
  ] as Array<[NodeKind, string, number, number]>) {
    l.kase(`mknod: makes a ${kind} with the mode${dev ? ' and device number' : ''} asked`, async (c) => {
      c.succeeds('mknod', await c.root.call('mknod', c.p('x'), how, perm, dev));
      const st = await c.stat(c.p('x'), { l: true });
      c.eq('type', st.type, S_IF[kind]);
      c.eq('mode', st.perm, perm);
      if (dev) c.eq('rdev', st.rdev, dev);
      c.eq('nlink', st.nlink, 1);
    });
  }
  l.each(['fifo', 'socket', 'char', 'block', 'symlink'], "mknod, symlink: a new node's atime, mtime and ctime are the time of creation", async (c, kind) => {
    await c.make(kind, c.p('x'));
    const st = await c.stat(c.p('x'), { l: true });
    c.eq('mtime = ctime', st.mtime, st.ctime);
    c.eq('atime = ctime', st.atime, st.ctime);
    c.eq("parent's new mtime = the node's ctime", (await c.stat(c.dir)).mtime, st.ctime);
  });
  l.kase('mknod: parent mtime and ctime advance', async (c) => {
    await parentTimes(c, c.dir, 'mknod', () => c.root.must('mknod', c.p('x'), 'fifo', 0o644, 0));
  });
  l.kase('mkfifo: makes a fifo that carries data between a reader and a writer', async (c) => {
    c.succeeds('mkfifo', await c.root.call('mkfifo', c.p('f'), 0o644));
    const r = await c.root.must<number>('open', c.p('f'), ['O_RDONLY', 'O_NONBLOCK']);
    const w = await c.root.must<number>('open', c.p('f'), ['O_WRONLY', 'O_NONBLOCK']);
    await c.root.must('write', w, 'through the fifo');
    c.eq('read', await c.root.must('read', r, 100), 'through the fifo');
    await c.root.must('close', w);
    await c.root.must('close', r);
  });
  l.kase('mkfifo: the new fifo belongs to the caller', async (c) => {
    const w = await c.openDir(c.p('w'));
    c.succeeds('mkfifo as a user', await c.a.call('mkfifo', `${w}/f`, 0o644));
    const st = await c.stat(`${w}/f`);
    c.eq('uid', st.uid, c.a.uid);
    c.eq('gid', st.gid, c.a.gid);
  });
  l.kase('mkfifo: parent mtime and ctime advance', async (c) => {
    await parentTimes(c, c.dir, 'mkfifo', () => c.root.must('mkfifo', c.p('f'), 0o644));
  });
  l.kase('mknod: the new node belongs to the caller', async (c) => {
    const w = await c.openDir(c.p('w'));
    c.succeeds('mknod as a user', await c.a.call('mknod', `${w}/f`, 'fifo', 0o644, 0));
    const st = await c.stat(`${w}/f`);
    c.eq('uid', st.uid, c.a.uid);
    c.eq('gid', st.gid, c.a.gid);
  });
  l.each(ALL_KINDS, 'mkfifo: EEXIST when the name exists', async (c, kind) => {
    await c.make(kind, c.p('x'));
    c.errno('mkfifo over an existing name', await c.root.call('mkfifo', c.p('x'), 0o644), 'EEXIST');
  });
  l.kase('mknod: EACCES without write permission on the parent', async (c) => {
    c.errno('mknod as a user in a 0755 root directory', await c.a.call('mknod', c.p('x'), 'fifo', 0o644, 0), 'EACCES');
  });
  l.kase('mknod: EPERM for a device node made by a user', async (c) => {
    const w = await c.openDir(c.p('w'));
    c.errno('mknod of a character device as a user', await c.a.call('mknod', `${w}/x`, 'chr', 0o644, 0x0103), 'EPERM');
  });
}
