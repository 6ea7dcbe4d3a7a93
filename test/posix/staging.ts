/**
 * The POSIX suite's STAGING LIST: cases known to fail on a target, each with its cause. `make
 * test` runs every other case (test/posix-*.test.ts) and requires it to pass; `make posix`
 * runs everything, counts the staged failures per cause, and fails when a staged case passes
 * (then it belongs in `make test`: delete its line here) or an unstaged one fails.
 *
 * Causes are of two sorts: what smhfs still lacks through fuse-native (the caller's identity,
 * nanoseconds, UTIME_OMIT, renameat2 flags, one kernel inode per hard link — which the libfuse3
 * binding `ll` lifts, issue 11, leaving O_TMPFILE; the store keeps nanoseconds since migration 9) and what the
 * reference itself cannot do through libfuse 2 (bindfs 1.14.7 on libfuse 2.9). A case is never staged for a bug we can fix now.
 */

export type Cause =
  | 'fuse-native-hard-link-inodes'
  | 'caller-identity'
  | 'fuse-native-times'
  | 'libfuse2-utime-omit'
  | 'libfuse2-renameat2'
  | 'no-o-tmpfile'
  | 'no-fallocate'
  | 'spec-L12'
  | 'spec-L4'
  | 'bindfs-mode-bits'
  | 'libfuse2-hard-link-inodes'
  | 'bindfs-create-as-user'
  | 'll-no-tmpfile';

export const CAUSES: Record<Cause, string> = {
  'fuse-native-hard-link-inodes':
    "fuse-native is libfuse 2's high-level (path) API: each name of a hard-linked file is its own kernel inode, so after link/unlink/rename by one name the others' cached nlink and ctime stay until attr_timeout (1 s); the libfuse3 binding answers by inode",
  'caller-identity':
    "new nodes take the parent's owner, not the caller's uid/gid: fuse-native cannot see the caller (libfuse3 binding, issue 11; M2)",
  'fuse-native-times':
    'fuse-native carries times as unsigned milliseconds: nanoseconds are lost and times before 1970 wrap around (libfuse3 binding; M2)',
  'libfuse2-utime-omit': "libfuse 2.9 calls utimens only with both times: UTIME_OMIT of one time is not honoured (libfuse3 binding; M2)",
  'libfuse2-renameat2': 'libfuse 2 has no rename flags: RENAME_NOREPLACE/RENAME_EXCHANGE give EINVAL (libfuse3 binding)',
  'no-o-tmpfile': 'O_TMPFILE gives EOPNOTSUPP through libfuse 2 (libfuse3 binding, if the kernel offers it)',
  'no-fallocate': 'fallocate(2) gives EOPNOTSUPP: bindfs 1.14.7 has no fallocate op (smhfs has one since i9-mount, D8)',
  'spec-L12':
    'deliberate (SPEC L12): removing a file removes its bound links with it, so a symlink does not stay behind dangling',
  'spec-L4':
    "deliberate (SPEC L1/L4): a link to an existing file is bound to it, and readlink gives the current relative path ('./f' reads 'f')",
  'bindfs-mode-bits': 'bindfs 1.14.7 drops the sticky bit of a new directory',
  'libfuse2-hard-link-inodes':
    "libfuse 2's high-level API gives each name of a hard-linked file its own kernel inode: the other name's nlink/ctime stay cached until attr_timeout",
  'bindfs-create-as-user': 'bindfs creates as root then chowns to the caller: the new node’s ctime is later than its mtime and atime',
  'll-no-tmpfile':
    'libfuse 3.14 has no tmpfile op (the kernel sends FUSE_TMPFILE, libfuse answers ENOSYS) and the store has no live node without a name: O_TMPFILE gives EOPNOTSUPP (native-notes/binding.md, O_TMPFILE)',
};

/**
 * Causes whose failure depends on timing (bindfs creates, then chowns: both may land in one clock
 * tick): a staged case with such a cause may pass, and `make posix` does not call it stale.
 */
export const TIMING_DEPENDENT: ReadonlySet<Cause> = new Set<Cause>(['bindfs-create-as-user']);

/** Who lifts a cause, for `make posix`'s report. */
export const LIFTED_BY: Record<Cause, string> = {
  'fuse-native-hard-link-inodes': 'libfuse3 binding',
  'caller-identity': 'libfuse3 binding',
  'fuse-native-times': 'libfuse3 binding',
  'libfuse2-utime-omit': 'libfuse3 binding',
  'libfuse2-renameat2': 'libfuse3 binding + issue 12 (store)',
  'no-o-tmpfile': 'libfuse3 binding',
  'no-fallocate': 'reference limitation',
  'spec-L12': 'stays (SPEC)',
  'spec-L4': 'stays (SPEC)',
  'bindfs-mode-bits': 'reference limitation',
  'libfuse2-hard-link-inodes': 'reference limitation',
  'bindfs-create-as-user': 'reference limitation',
  'll-no-tmpfile': 'store (unnamed live nodes) + the addon answering FUSE_TMPFILE itself',
};

/** On every binding: the SMH rules a POSIX file system would not have. */
const SMHFS_BOTH: Record<string, Cause> = {
  'unlink: a symbolic link to the removed file stays, dangling, and reads the same': 'spec-L12',
  'symlink: a link to an existing file reads back exactly as given': 'spec-L4',
};

const SMHFS_FUSE_NATIVE: Record<string, Cause> = {
  'open: the new file belongs to the caller': 'caller-identity',
  'mkdir: the new directory belongs to the caller': 'caller-identity',
  'symlink: the new link belongs to the caller': 'caller-identity',
  'mkfifo: the new fifo belongs to the caller': 'caller-identity',
  'mknod: the new node belongs to the caller': 'caller-identity',
  // the user's own node was made with the parent's owner (root): the sticky rule then refuses its owner
  'rmdir: in a sticky directory only the owner of the directory or of the parent may remove it': 'caller-identity',
  'unlink: in a sticky directory only the owner of the file or of the directory may remove it': 'caller-identity',
  'rename: in a sticky directory a user may not move or replace what others own': 'caller-identity',

  'utimensat: keeps nanoseconds': 'fuse-native-times',
  'utimensat: times before 1970': 'fuse-native-times',
  'utimensat: UTIME_OMIT leaves atime as it was while mtime is set': 'libfuse2-utime-omit',
  'utimensat: UTIME_OMIT leaves mtime as it was while atime is set': 'libfuse2-utime-omit',
  'rename: RENAME_NOREPLACE moves to a free name, EEXIST over an existing one': 'libfuse2-renameat2',
  'rename: RENAME_EXCHANGE swaps two names atomically': 'libfuse2-renameat2',
  'open: O_TMPFILE gives a writable unnamed file (nlink 0)': 'no-o-tmpfile',

  "unlink: a name of a file with two names: the other keeps the content, nlink - 1, the file's ctime advances": 'fuse-native-hard-link-inodes',
  'rename: over a name of a file with two names, the file keeps its other name': 'fuse-native-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (regular)': 'fuse-native-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (fifo)': 'fuse-native-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (socket)': 'fuse-native-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (symlink)': 'fuse-native-hard-link-inodes',

  ...SMHFS_BOTH,
};

/** What is left on our libfuse 3 binding (the rest of fuse-native's causes are gone there). */
const SMHFS_LL: Record<string, Cause> = {
  ...SMHFS_BOTH,

  'open: O_TMPFILE gives a writable unnamed file (nlink 0)': 'll-no-tmpfile',
};

const BINDFS: Record<string, Cause> = {
  'mkdir: the sticky bit asked for is kept': 'bindfs-mode-bits',
  "open: a new file's atime, mtime and ctime are the time of creation": 'bindfs-create-as-user',
  "mkdir: the new directory's atime, mtime and ctime are the time of creation": 'bindfs-create-as-user',
  "mknod, symlink: a new node's atime, mtime and ctime are the time of creation (fifo)": 'bindfs-create-as-user',
  "mknod, symlink: a new node's atime, mtime and ctime are the time of creation (socket)": 'bindfs-create-as-user',
  "mknod, symlink: a new node's atime, mtime and ctime are the time of creation (char)": 'bindfs-create-as-user',
  "mknod, symlink: a new node's atime, mtime and ctime are the time of creation (block)": 'bindfs-create-as-user',
  "mknod, symlink: a new node's atime, mtime and ctime are the time of creation (symlink)": 'bindfs-create-as-user',
  'open: O_TMPFILE gives a writable unnamed file (nlink 0)': 'no-o-tmpfile',
  'fallocate: mode 0 extends the file; FALLOC_FL_KEEP_SIZE keeps the size': 'no-fallocate',
  "unlink: a name of a file with two names: the other keeps the content, nlink - 1, the file's ctime advances": 'libfuse2-hard-link-inodes',
  'rename: over a name of a file with two names, the file keeps its other name': 'libfuse2-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (regular)': 'libfuse2-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (fifo)': 'libfuse2-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (socket)': 'libfuse2-hard-link-inodes',
  'link: a second name: same inode, nlink 2, ctime advances, parent times advance (symlink)': 'libfuse2-hard-link-inodes',
  'rename: RENAME_NOREPLACE moves to a free name, EEXIST over an existing one': 'libfuse2-renameat2',
  'rename: RENAME_EXCHANGE swaps two names atomically': 'libfuse2-renameat2',
  'utimensat: UTIME_OMIT leaves atime as it was while mtime is set': 'libfuse2-utime-omit',
  'utimensat: UTIME_OMIT leaves mtime as it was while atime is set': 'libfuse2-utime-omit',
};

/** Per target: case name → why it fails there. `plain` (Linux itself) has none. */
export const STAGING: Record<string, Record<string, Cause>> = {
  plain: {},
  bindfs: BINDFS,
  'smhfs-fuse-native': SMHFS_FUSE_NATIVE,
  'smhfs-ll': SMHFS_LL,
};

export function stagedOn(target: string): Record<string, Cause> {
  const s = STAGING[target];
  if (!s) throw new Error(`no staging list for POSIX target ${target}: add one to test/posix/staging.ts`);
  return s;
}
