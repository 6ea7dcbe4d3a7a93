/**
 * fuse-native (libfuse 2, CommonJS) wrapped for smhfs. See native-notes/fuse-native.md for why
 * each piece exists:
 *
 * - its mount-option whitelist (`_fuseOptions`) lacks `big_writes`, `max_write`, `use_ino`,
 *   `hard_remove`, … — `SmhFuse` appends our own list (and the user's `-o` options) verbatim;
 * - its getxattr/listxattr glue ignores the caller's buffer size (no ERANGE) — overridden here;
 * - our patch (patches/fuse-native+2.2.6.patch) refuses names that are not UTF-8 with EILSEQ on
 *   the libfuse thread (D5), passes null as the path of requests on a file unlinked while open
 *   (fd-based ops: read, write, flush, fsync, release, ftruncate, fgetattr, fallocate), adds
 *   fgetattr by handle and fallocate, and unmounts again when libfuse refuses an option;
 * - everything else (the op dispatch, timeouts, stat packing) is fuse-native's own.
 */
import { createRequire } from 'node:module';
import type { Binding } from './binding.js';

const require = createRequire(import.meta.url);

/** What fuse-native packs into a struct stat (times in ms or Date). */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev?: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: number | Date;
  mtime: number | Date;
  ctime: number | Date;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/**
 * The operations smhfs implements, with fuse-native's argument order. Callbacks: `cb(0, value)`
 * on success, `cb(-errno)` on failure; read/write answer `cb(bytes)` or `cb(-errno)`. Ops that
 * carry a file handle get a null path when the file was unlinked while open: they must use the
 * handle only.
 */
export interface FuseOps {
  init?(cb: (err: number) => void): void;
  access(path: string, mode: number, cb: (err: number) => void): void;
  statfs(path: string, cb: (err: number, st?: FuseStatfs) => void): void;
  getattr(path: string, cb: (err: number, st?: FuseStat) => void): void;
  /** fstat(2) and attributes after ftruncate: by the handle (optional: without it libfuse uses getattr by path). */
  fgetattr?(path: string | null, fd: number, cb: (err: number, st?: FuseStat) => void): void;
  readdir(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
  readlink(path: string, cb: (err: number, target?: string) => void): void;
  open(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
  create(path: string, mode: number, cb: (err: number, fd?: number) => void): void;
  read(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (res: number) => void): void;
  write(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (res: number) => void): void;
  flush(path: string | null, fd: number, cb: (err: number) => void): void;
  fsync(path: string | null, datasync: number, fd: number, cb: (err: number) => void): void;
  fsyncdir(path: string | null, datasync: number, fd: number, cb: (err: number) => void): void;
  release(path: string | null, fd: number, cb: (err: number) => void): void;
  truncate(path: string, size: number, cb: (err: number) => void): void;
  ftruncate(path: string | null, fd: number, size: number, cb: (err: number) => void): void;
  /** fallocate(2): `mode` is the FALLOC_FL_* bits. */
  fallocate?(path: string | null, fd: number, mode: number, offset: number, length: number, cb: (err: number) => void): void;
  unlink(path: string, cb: (err: number) => void): void;
  rmdir(path: string, cb: (err: number) => void): void;
  mkdir(path: string, mode: number, cb: (err: number) => void): void;
  mknod(path: string, mode: number, dev: number, cb: (err: number) => void): void;
  rename(src: string, dest: string, cb: (err: number) => void): void;
  link(src: string, dest: string, cb: (err: number) => void): void;
  symlink(target: string, path: string, cb: (err: number) => void): void;
  chmod(path: string, mode: number, cb: (err: number) => void): void;
  chown(path: string, uid: number, gid: number, cb: (err: number) => void): void;
  utimens(path: string, atimeMs: number, mtimeMs: number, cb: (err: number) => void): void;
  getxattr(path: string, name: string, position: number, cb: (err: number, value?: Buffer) => void): void;
  setxattr(path: string, name: string, value: Buffer, position: number, flags: number, cb: (err: number) => void): void;
  listxattr(path: string, cb: (err: number, names?: string[]) => void): void;
  removexattr(path: string, name: string, cb: (err: number) => void): void;
}

/** Per-op timeouts in ms (`false` = none); `default` for the rest. fuse-native's own default is 15 s. */
export type OpTimeouts = { default: number } & Partial<Record<keyof FuseOps, number | false>>;

export interface SmhFuseOptions {
  /** Mount options appended verbatim after fuse-native's own (`big_writes`, `use_ino`, `allow_other`, …). */
  mountOptions: string[];
  timeout: OpTimeouts;
  debug?: boolean;
}

interface FuseNativeInstance {
  mnt: string;
  opts: Record<string, unknown>;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

type Signal = (res: number, ...rest: unknown[]) => void;

interface FuseNativeClass {
  new (mnt: string, ops: Partial<FuseOps>, opts: Record<string, unknown>): FuseNativeInstance;
  unmount(mnt: string, cb: (err: Error | null) => void): void;
}

// Loaded lazily so that `smhfs --help` works on a machine without libfuse.
let SmhFuseClass: (new (mnt: string, ops: FuseOps, opts: SmhFuseOptions) => SmhFuse) | undefined;

export interface SmhFuse {
  readonly mnt: string;
  /** The `-o…` argument handed to libfuse (for logs and tests). */
  optionString(): string;
  mount(cb: (err: Error | null) => void): void;
}

const ERANGE = 34;

function loadClass(): new (mnt: string, ops: FuseOps, opts: SmhFuseOptions) => SmhFuse {
  if (SmhFuseClass) return SmhFuseClass;
  const Base = require('fuse-native') as FuseNativeClass;

  class Impl extends (Base as unknown as new (mnt: string, ops: Partial<FuseOps>, opts: Record<string, unknown>) => FuseNativeInstance & {
    _fuseOptions(): string;
    ops: FuseOps;
  }) {
    readonly #extra: string[];

    constructor(mnt: string, ops: FuseOps, opts: SmhFuseOptions) {
      super(mnt, ops, { timeout: opts.timeout, debug: opts.debug === true });
      this.#extra = opts.mountOptions;
    }

    /** fuse-native's whitelist, then ours verbatim (libfuse takes the last of repeated options). */
    override _fuseOptions(): string {
      const base = super._fuseOptions();
      const parts = base ? [base.replace(/^-o/, '')] : [];
      const all = [...parts, ...this.#extra].filter((s) => s.length > 0);
      return all.length > 0 ? `-o${all.join(',')}` : '';
    }

    optionString(): string {
      return this._fuseOptions();
    }

    /**
     * fuse-native copies the value into whatever buffer libfuse gave and returns the full length,
     * even when the buffer is too small; getxattr(2) must fail with ERANGE then. A zero-length
     * buffer is the size probe.
     */
    _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer, position: number): void {
      this.ops.getxattr(path, name, position, (err, value) => {
        if (err) return signal(err, valueBuf.buffer);
        const v = value ?? Buffer.alloc(0);
        if (valueBuf.length === 0) return signal(v.length, valueBuf.buffer);
        if (v.length > valueBuf.length) return signal(-ERANGE, valueBuf.buffer);
        v.copy(valueBuf);
        return signal(v.length, valueBuf.buffer);
      });
    }

    /** Same for listxattr: exact size on a probe, ERANGE when the list does not fit. */
    _op_listxattr(signal: Signal, path: string, listBuf: Buffer): void {
      this.ops.listxattr(path, (err, list) => {
        if (err) return signal(err, listBuf.buffer);
        const names = list ?? [];
        let size = 0;
        for (const n of names) size += Buffer.byteLength(n) + 1;
        if (listBuf.length === 0) return signal(size, listBuf.buffer);
        if (size > listBuf.length) return signal(-ERANGE, listBuf.buffer);
        let ptr = 0;
        for (const n of names) {
          ptr += listBuf.write(n, ptr);
          listBuf[ptr++] = 0;
        }
        return signal(ptr, listBuf.buffer);
      });
    }
  }
  SmhFuseClass = Impl as unknown as new (mnt: string, ops: FuseOps, opts: SmhFuseOptions) => SmhFuse;
  return SmhFuseClass;
}

/**
 * Every `-o` option libfuse 2.9 accepts: mount.c (kernel and fusermount options),
 * fuse_lowlevel.c, fuse.c, and the subdir/iconv modules. libfuse parses the high-level ones only
 * after the kernel mount is made, so an unknown one used to leave a dead mount behind; we refuse
 * it before mounting, by name (the patched binding also unmounts if libfuse refuses a value).
 */
const LIBFUSE2_FLAGS = new Set([
  // mount.c
  'allow_other', 'allow_root', 'auto_unmount', 'nonempty', 'blkdev', 'default_permissions', 'large_read',
  'rw', 'ro', 'suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec', 'async', 'sync', 'atime', 'noatime', 'dirsync',
  // fuse_lowlevel.c
  'debug', 'async_read', 'sync_read', 'atomic_o_trunc', 'no_remote_lock', 'no_remote_flock', 'no_remote_posix_lock',
  'big_writes', 'splice_write', 'no_splice_write', 'splice_move', 'no_splice_move', 'splice_read', 'no_splice_read',
  // fuse.c
  'hard_remove', 'use_ino', 'readdir_ino', 'direct_io', 'kernel_cache', 'auto_cache', 'noauto_cache', 'noforget', 'nopath', 'intr',
  // modules
  'rellinks', 'norellinks',
]);
const LIBFUSE2_VALUED = new Set([
  'blksize', 'context', 'fscontext', 'defcontext', 'rootcontext', 'max_read', 'user', 'fsname', 'subtype',
  'max_write', 'max_readahead', 'max_background', 'congestion_threshold',
  'umask', 'uid', 'gid', 'entry_timeout', 'attr_timeout', 'ac_attr_timeout', 'negative_timeout', 'remember', 'intr_signal', 'modules',
  'subdir', 'from_code', 'to_code',
]);

/** The options in `options` (single options, not comma lists) that libfuse 2 would refuse. */
export function unknownMountOptions(options: string[]): string[] {
  if (process.platform === 'darwin') return []; // macFUSE has its own list; it refuses before mounting
  return options.filter((o) => {
    const eq = o.indexOf('=');
    return eq < 0 ? !LIBFUSE2_FLAGS.has(o) : !LIBFUSE2_VALUED.has(o.slice(0, eq));
  });
}

export function createFuse(mnt: string, ops: FuseOps, opts: SmhFuseOptions): SmhFuse {
  const bad = unknownMountOptions(opts.mountOptions);
  if (bad.length > 0) {
    throw new Error(
      `unknown mount option${bad.length > 1 ? 's' : ''} ${bad.map((o) => `'${o}'`).join(', ')}: libfuse 2 does not know ` +
        `${bad.length > 1 ? 'them' : 'it'} (see "man mount.fuse" for the options; smhfs's own flags go before the mountpoint, not in -o)`,
    );
  }
  const C = loadClass();
  return new C(mnt, ops, opts);
}

/** Whether fuse-native and libfuse.so.2 can be loaded here (tests skip otherwise). */
export function fuseAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    loadClass();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** Always passed on Linux; see native-notes/fuse-native.md for each. */
const LINUX_MOUNT_OPTIONS = [
  'big_writes', // 128 KiB write requests instead of 4 KiB (≈10× write throughput)
  'max_write=131072',
  'use_ino', // st_ino is the node's stable identity
  'hard_remove', // unlink must not become a rename to .fuse_hidden* (trash semantics)
  'default_permissions', // the kernel enforces mode bits/owners (POSIX); we cannot see the caller
  'auto_cache', // keep the kernel page cache across opens while mtime/size are unchanged
  'fsname=smhfs',
  'subtype=smhfs',
];

/** macFUSE (untested): no big_writes/max_write/subtype; libfuse's own high-level options work. */
const MAC_MOUNT_OPTIONS = ['use_ino', 'hard_remove', 'default_permissions', 'auto_cache', 'fsname=smhfs', 'volname=smhfs'];

export const BASE_MOUNT_OPTIONS = process.platform === 'darwin' ? MAC_MOUNT_OPTIONS : LINUX_MOUNT_OPTIONS;

/** Every `-o` option fuse-native mounts with: ours, the timeouts, then the user's (libfuse takes the last of repeated ones). */
export function mountOptionList(opts: { fuseOptions?: string[]; attrTimeout?: number }): string[] {
  const t = opts.attrTimeout ?? 1;
  const user = (opts.fuseOptions ?? [])
    .flatMap((o) => o.split(','))
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
  return [...BASE_MOUNT_OPTIONS, `attr_timeout=${t}`, `entry_timeout=${t}`, ...user];
}

/** fuse-native as a `Binding` (./binding.ts): libfuse 2, path-based, the fallback and macOS binding. */
export const fuseNativeBinding: Binding<FuseOps, OpTimeouts> = {
  name: 'fuse-native',
  capabilities: { callerContext: false, nanosecondTimes: false, invalidation: false, renameFlags: false, maxRequest: 131072 },
  available: fuseAvailable,
  mount(mountpoint, ops, opts) {
    // createFuse refuses unknown options synchronously: nothing is mounted then.
    const mountOptions = mountOptionList({ fuseOptions: opts.mountOptions, attrTimeout: opts.attrTimeout });
    const fuse = createFuse(mountpoint, ops, { mountOptions, timeout: opts.timeouts ?? { default: 30_000 }, debug: opts.debug });
    return new Promise((res, rej) =>
      fuse.mount((err) => (err ? rej(err) : res({ mountpoint, optionString: () => fuse.optionString() }))),
    );
  },
};
