/**
 * `node dist/bench/memfs.js MOUNTPOINT FILE`: the ceiling of fuse-native here — a read-only file
 * system with one file, `/data.bin`, whose bytes are FILE's, held in memory, mounted with the
 * same options as smhfs. Reads answer synchronously with a copy; nothing else happens per request,
 * so what a benchmark measures is fuse-native + libfuse 2 + the kernel. SIGTERM unmounts.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { createFuse, type FuseOps, type FuseStat } from '../src/fuse/native.js';
import { fuseUnmount } from '../src/fuse/mounts.js';
import { mountOptionList, setKernelReadahead } from '../src/fuse/server.js';

const [mp, file] = process.argv.slice(2);
if (!mp || !file) throw new Error('usage: memfs MOUNTPOINT FILE');
const data = readFileSync(file);
const now = Date.now();
const st = (mode: number, size: number, ino: number): FuseStat => ({
  mode, uid: 0, gid: 0, size, nlink: 1, ino, rdev: 0, blksize: 131072, blocks: Math.ceil(size / 512), atime: now, mtime: now, ctime: now,
});
const ENOENT = -constants.errno.ENOENT;
const ops: Partial<FuseOps> = {
  init: (cb) => cb(0),
  getattr: (path, cb) => (path === '/' ? cb(0, st(0o40755, 0, 1)) : path === '/data.bin' ? cb(0, st(0o100444, data.length, 2)) : cb(ENOENT)),
  readdir: (path, cb) => (path === '/' ? cb(0, ['data.bin']) : cb(ENOENT)),
  open: (_path, _flags, cb) => cb(0, 1),
  release: (_path, _fd, cb) => cb(0),
  flush: (_path, _fd, cb) => cb(0),
  read: (_path, _fd, buf, len, pos, cb) => cb(data.copy(buf, 0, pos, Math.min(data.length, pos + len))),
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
