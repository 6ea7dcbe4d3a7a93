/**
 * The errnos every path-taking syscall shares (pjdfstest's 01–07 of each syscall): ENOTDIR for a
 * prefix that is not a directory, ENAMETOOLONG for a 256-byte name and for a path past PATH_MAX,
 * ENOENT for a missing prefix (and a missing file, where one must exist), EACCES for a prefix
 * the caller may not search, ELOOP for a symlink loop on the way. One table, one case per
 * (syscall, errno).
 */
import type { Caller, SysResult } from './caller.js';
import type { CaseList, Ctx } from './suite.js';

interface PathOp {
  name: string;
  /** The call creates `path` (its last component need not exist). */
  creates: boolean;
  /** Make the call on `path` as `who`; `c` for sources it needs. */
  call(c: Ctx, who: Caller, path: string): Promise<SysResult>;
}

/** A source file in a directory everyone may write, owned by `who` (rename/link need one). */
async function source(c: Ctx, who: Caller): Promise<string> {
  const dir = c.p('src');
  await c.root.call('mkdir', dir, 0o777); // may exist already
  await c.root.must('chmod', dir, 0o777);
  const f = `${dir}/${c.name()}`;
  await c.file(f);
  await c.give(f, who);
  return f;
}

const OPS: PathOp[] = [
  { name: 'stat', creates: false, call: (_c, w, p) => w.call('stat', p) },
  { name: 'lstat', creates: false, call: (_c, w, p) => w.call('lstat', p) },
  { name: 'open', creates: false, call: (_c, w, p) => w.call('open', p, ['O_RDONLY']) },
  { name: 'open O_CREAT', creates: true, call: (_c, w, p) => w.call('open', p, ['O_WRONLY', 'O_CREAT'], 0o644) },
  { name: 'mkdir', creates: true, call: (_c, w, p) => w.call('mkdir', p, 0o755) },
  { name: 'rmdir', creates: false, call: (_c, w, p) => w.call('rmdir', p) },
  { name: 'unlink', creates: false, call: (_c, w, p) => w.call('unlink', p) },
  { name: 'rename (from)', creates: false, call: async (c, w, p) => w.call('rename', p, c.p(c.name())) },
  { name: 'rename (to)', creates: true, call: async (c, w, p) => w.call('rename', await source(c, w), p) },
  { name: 'link (from)', creates: false, call: async (c, w, p) => w.call('link', p, c.p(c.name())) },
  { name: 'link (to)', creates: true, call: async (c, w, p) => w.call('link', await source(c, w), p) },
  { name: 'symlink', creates: true, call: (_c, w, p) => w.call('symlink', 'target', p) },
  { name: 'readlink', creates: false, call: (_c, w, p) => w.call('readlink', p) },
  { name: 'chmod', creates: false, call: (_c, w, p) => w.call('chmod', p, 0o644) },
  { name: 'chown', creates: false, call: (_c, w, p) => w.call('chown', p, -1, -1) },
  { name: 'lchown', creates: false, call: (_c, w, p) => w.call('lchown', p, -1, -1) },
  { name: 'truncate', creates: false, call: (_c, w, p) => w.call('truncate', p, 0) },
  { name: 'utimensat', creates: false, call: (_c, w, p) => w.call('utimensat', p, 'UTIME_NOW', 'UTIME_NOW') },
  { name: 'mknod', creates: true, call: (_c, w, p) => w.call('mknod', p, 'fifo', 0o644) },
  { name: 'mkfifo', creates: true, call: (_c, w, p) => w.call('mkfifo', p, 0o644) },
  { name: 'getxattr', creates: false, call: (_c, w, p) => w.call('getxattr', p, 'user.x', 0) },
  { name: 'setxattr', creates: false, call: (_c, w, p) => w.call('setxattr', p, 'user.x', 'v', 0) },
  { name: 'listxattr', creates: false, call: (_c, w, p) => w.call('listxattr', p, 0) },
  { name: 'removexattr', creates: false, call: (_c, w, p) => w.call('removexattr', p, 'user.x') },
  { name: 'statfs', creates: false, call: (_c, w, p) => w.call('statvfs', p) },
  { name: 'access', creates: false, call: (_c, w, p) => w.call('access', p, ['F_OK']) },
];

export function registerPathErrors(l: CaseList): void {
  for (const op of OPS) {
    l.kase(`${op.name}: ENOTDIR when a component of the path prefix is a file`, async (c) => {
      const f = await c.file(c.p('file'));
      c.errno(`${op.name} file/x`, await op.call(c, c.root, `${f}/x`), 'ENOTDIR');
    });

    l.kase(`${op.name}: ENAMETOOLONG for a name of 256 bytes, not for 255`, async (c) => {
      c.errno(`${op.name} of a 256-byte name`, await op.call(c, c.root, c.p('x'.repeat(256))), 'ENAMETOOLONG');
      // 255 bytes is a valid name: whatever else happens, it is not ENAMETOOLONG
      const r = await op.call(c, c.root, c.p('y'.repeat(255)));
      c.check(`${op.name} of a 255-byte name is not ENAMETOOLONG`, r.errno !== 'ENAMETOOLONG', r.errno, 'anything but ENAMETOOLONG');
    });

    l.kase(`${op.name}: ENAMETOOLONG for a path longer than PATH_MAX`, async (c) => {
      const long = c.p(`${'d'.repeat(200)}/`.repeat(21) + 'x');
      c.errno(`${op.name} of a ${long.length}-byte path`, await op.call(c, c.root, long), 'ENAMETOOLONG');
    });

    l.kase(`${op.name}: ENOENT when a component of the path prefix does not exist`, async (c) => {
      c.errno(`${op.name} missing/x`, await op.call(c, c.root, c.p('missing', 'x')), 'ENOENT');
      if (!op.creates) c.errno(`${op.name} of a missing name`, await op.call(c, c.root, c.p('missing')), 'ENOENT');
    });

    l.kase(`${op.name}: EACCES when search permission is denied on the path prefix`, async (c) => {
      const priv = await c.mkdir(c.p('private'), 0o755);
      const inside = `${priv}/x`;
      if (!op.creates) await c.file(inside, { mode: 0o666 });
      await c.root.must('chmod', priv, 0o644); // readable, not searchable
      c.errno(`${op.name} private/x as a user`, await op.call(c, c.a, inside), 'EACCES');
    });

    l.kase(`${op.name}: ELOOP when symbolic links loop on the path`, async (c) => {
      await c.root.must('symlink', 'loop2', c.p('loop1'));
      await c.root.must('symlink', 'loop1', c.p('loop2'));
      c.errno(`${op.name} loop1/x`, await op.call(c, c.root, c.p('loop1', 'x')), 'ELOOP');
    });
  }
}
