/**
 * `node dist/bench/memfs.js MOUNTPOINT FILE [--durable-writes DIR]`: the ceiling of fuse-native
 * here — a file system held in memory, mounted with the same options as smhfs, that does as little
 * as a file system can:
 *
 * - `/data.bin` holds FILE's bytes; reads answer synchronously with a copy;
 * - files, directories and symlinks can be created, and writes are accepted and thrown away (only
 *   the size is kept), so a write, symlink or readlink loop measures fuse-native + libfuse 2 + the
 *   kernel and nothing of ours.
 *
 * Whatever smhfs does per request comes on top of this; a target above the ceiling's own ratio
 * cannot be met by any fuse-native file system. SIGTERM unmounts.
 *
 * `--durable-writes DIR` is the ceiling of a fuse-native file system that keeps what it is given
 * the way B5 asks: each file's writes go to a file in DIR (`writeSync` from the request buffer, as
 * smhfs does) and its flush (close(2)) fsyncs it before answering — no hashing, no database.
 */
import { closeSync, fsyncSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { createFuse, type FuseOps, type FuseStat } from '../src/fuse/native.js';
import { fuseUnmount } from '../src/fuse/mounts.js';
import { mountOptionList } from '../src/fuse/native.js';
import { setKernelReadahead } from '../src/fuse/server.js';

const [mp, file] = process.argv.slice(2);
if (!mp || !file) throw new Error('usage: memfs MOUNTPOINT FILE [--durable-writes DIR]');
const durableAt = process.argv.indexOf('--durable-writes');
const durableDir = durableAt > 0 ? process.argv[durableAt + 1] : undefined;
/** Open files' backing descriptors (durable mode), by file handle. */
const backing = new Map<number, number>();
let nextFd = 10;
const data = readFileSync(file);
const now = Date.now();

interface Entry {
  ino: number;
  mode: number;
  size: number;
  target?: string;
  /** --durable-writes: the file in DIR holding its bytes (removed with it, as bindfs would). */
  file?: string;
}
let nextIno = 3;
const tree = new Map<string, Entry>([
  ['/', { ino: 1, mode: 0o40755, size: 0 }],
  ['/data.bin', { ino: 2, mode: 0o100444, size: data.length }],
]);
const st = (e: Entry): FuseStat => ({
  mode: e.mode, uid: 0, gid: 0, size: e.size, nlink: 1, ino: e.ino, rdev: 0, blksize: 131072,
  blocks: Math.ceil(e.size / 512), atime: now, mtime: now, ctime: now,
});
const ENOENT = -constants.errno.ENOENT;
const EEXIST = -constants.errno.EEXIST;
const add = (path: string, mode: number, cb: (err: number, fd?: number) => void, target?: string): void => {
  if (tree.has(path)) return cb(EEXIST);
  tree.set(path, { ino: nextIno++, mode, size: target?.length ?? 0, ...(target !== undefined ? { target } : {}) });
  cb(0, 1);
};
const ok = (cb: (err: number) => void): void => cb(0);
const ops: Partial<FuseOps> = {
  init: ok,
  getattr: (path, cb) => {
    const e = tree.get(path);
    return e ? cb(0, st(e)) : cb(ENOENT);
  },
  readdir: (path, cb) => {
    const prefix = path === '/' ? '/' : `${path}/`;
    const names = [...tree.keys()].filter((p) => p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'));
    cb(0, names.map((p) => p.slice(prefix.length)));
  },
  open: (path, _flags, cb) => (tree.has(path) ? cb(0, 1) : cb(ENOENT)),
  create: (path, mode, cb) =>
    add(path, mode, (err) => {
      if (err || !durableDir) return cb(err, 1);
      const fd = nextFd++;
      const file = join(durableDir, `f${fd}`);
      backing.set(fd, openSync(file, 'w'));
      tree.get(path)!.file = file;
      cb(0, fd);
    }),
  mkdir: (path, mode, cb) => add(path, 0o40000 | mode, cb),
  symlink: (target, path, cb) => add(path, 0o120777, cb, target),
  readlink: (path, cb) => {
    const e = tree.get(path);
    return e?.target !== undefined ? cb(0, e.target) : cb(ENOENT);
  },
  unlink: (path, cb) => {
    const e = tree.get(path);
    if (!e) return cb(ENOENT);
    tree.delete(path);
    if (e.file) unlinkSync(e.file);
    cb(0);
  },
  rmdir: (path, cb) => (tree.delete(path) ? cb(0) : cb(ENOENT)),
  release: (_path, fd, cb) => {
    const real = backing.get(fd);
    if (real !== undefined) {
      backing.delete(fd);
      closeSync(real);
    }
    cb(0);
  },
  // close(2) waits for FLUSH, not for RELEASE (the kernel sends that one without waiting), so
  // this is where B5's "durable when close returns" is paid — as smhfs commits on flush.
  flush: (_path, fd, cb) => {
    const real = backing.get(fd);
    if (real !== undefined) fsyncSync(real);
    cb(0);
  },
  fsync: (_path, _ds, _fd, cb) => cb(0),
  truncate: (path, size, cb) => {
    const e = tree.get(path);
    if (e) e.size = size;
    cb(e ? 0 : ENOENT);
  },
  ftruncate: (path, _fd, size, cb) => {
    const e = path === null ? undefined : tree.get(path);
    if (e) e.size = size;
    cb(e ? 0 : ENOENT);
  },
  utimens: (_path, _a, _m, cb) => cb(0),
  chmod: (_path, _mode, cb) => cb(0),
  chown: (_path, _uid, _gid, cb) => cb(0),
  read: (path, _fd, buf, len, pos, cb) =>
    path === '/data.bin' ? cb(data.copy(buf, 0, pos, Math.min(data.length, pos + len))) : cb(0),
  write: (path, fd, buf, len, pos, cb) => {
    const real = backing.get(fd);
    if (real !== undefined) writeSync(real, buf, 0, len, pos);
    const e = path === null ? undefined : tree.get(path);
    if (e && pos + len > e.size) e.size = pos + len;
    cb(len);
  },
};
const fuse = createFuse(mp, ops as FuseOps, { mountOptions: mountOptionList({}), timeout: { default: 30_000 }, debug: false });
await new Promise<void>((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
await setKernelReadahead(mp, 1024); // as smhfs does
process.stdout.write('ready\n');
const stop = (): void => {
  void fuseUnmount(mp, { lazy: true }).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
