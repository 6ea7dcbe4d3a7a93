/**
 * `node dist/bench/ll-memfs.js MOUNTPOINT FILE [options]`: the ceiling of the libfuse 3 low-level
 * binding — test/helpers/ll-memfs.ts (an in-memory file system) mounted through it, with the
 * timeouts smhfs uses today (entry/attr 1 s) so that only the binding differs from bench/memfs.ts
 * (the fuse-native ceiling).
 *
 * `/data.bin` holds FILE's bytes (reads answer with a view of them: no copy in JS). Options:
 *   --discard-writes       writes are counted, not kept (the "discarded" write test)
 *   --durable-writes DIR   each file's writes go to a file in DIR (writeSync from the request
 *                          buffer), fsync at flush (close(2) waits for it) — as bench/memfs.ts
 *   --async                every op answers through a Promise (the cost of async handlers)
 *   --cache-symlinks       FUSE_CAP_CACHE_SYMLINKS
 *   --splice               reads of /data.bin answer [fd, position] of FILE, spliced
 *   --fd                   reads of /data.bin answer [fd, position] of FILE, not spliced (libfuse
 *                          reads it into a buffer of its own: the way an ll mount without
 *                          `splice` answers a local blob)
 * Prints "ready" once mounted; SIGTERM/SIGINT unmount.
 */
import { openSync, readFileSync } from 'node:fs';
import { mount } from '../src/fuse/ll/binding.js';
import { setKernelReadahead } from '../src/fuse/server.js';
import { MemFs } from '../test/helpers/ll-memfs.js';

const argv = process.argv.slice(2);
const [mp, file] = argv;
if (!mp || !file) throw new Error('usage: ll-memfs MOUNTPOINT FILE [--discard-writes] [--durable-writes DIR] [--async] [--cache-symlinks] [--splice|--fd]');
const has = (f: string): boolean => argv.includes(f);
const durableAt = argv.indexOf('--durable-writes');
const fs = new MemFs({
  discardWrites: has('--discard-writes'),
  ...(durableAt > 0 ? { durableDir: argv[durableAt + 1]! } : {}),
  async: has('--async'),
});
const data = fs.addFile('data.bin', readFileSync(file), 0o444);
if (has('--splice') || has('--fd')) {
  const fd = openSync(file, 'r');
  fs.hooks.read = (_ctx, ino, _fh, size, offset) => {
    if (ino !== data.ino) return undefined;
    const off = offset as number;
    if (off >= data.size) return 0;
    void size;
    return { fd, position: off };
  };
}
const session = await mount(mp, fs, { fsname: 'llmemfs', entryTimeout: 1, attrTimeout: 1, keepCache: true, cacheSymlinks: has('--cache-symlinks'), splice: has('--splice') });
await setKernelReadahead(mp, 1024); // as smhfs and bench/memfs.ts do
process.stdout.write('ready\n');
const stop = (): void => {
  void session.unmount({ lazy: true }).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
