/**
 * (Over 600 lines because it is the whole TypeScript half of one addon: every op's argument
 * decoding and reply encoding share one io array and its layout with the C side.)
 *
 * The libfuse 3 low-level binding (our N-API addon, src/fuse/ll/smhfs_ll.c), typed for
 * TypeScript: `mount(mountpoint, ops, options)` serves an inode-addressed `LowLevelOps` on the JS
 * thread and returns a `LowLevelSession` (unmount, cache invalidation, an 'unmounted' event).
 *
 * How a request travels: the kernel's request is read and decoded by libfuse on this thread (the
 * addon polls /dev/fuse from Node's own loop), the addon calls the raw handler built here, which
 * calls the op with plain values and a `RequestContext` (caller uid/gid/pid/umask, interrupts).
 * The op answers by returning:
 *
 * - a value (an `Entry`, an `Attr`, a Buffer, …) — answered before the call returns;
 * - a negative number `-errno`, or by throwing an error with `errno`/`code` — an error reply;
 *   anything else thrown is reported to `onError` and answered EIO;
 * - a Promise of either — the request is answered when it settles; `ctx.signal` aborts if the
 *   caller is interrupted (a signal, e.g. kill of a reader).
 *
 * Buffers: `write`'s `data` and `setxattr`'s `value` are views into the receive buffer, valid
 * while the op runs synchronously. An op that returns a Promise keeps them: the binding gives
 * libfuse a fresh receive buffer instead of copying (the old one is the op's until it lets go).
 * A `read` may answer with a Buffer (sent from its memory, no copy), an array of Buffers (the
 * pieces of the range in order, sent together from their own memory: no joining copy) or
 * `{ fd, position }` (the kernel gets the bytes from that file; by splice with `splice: true`).
 *
 * native-notes/binding.md explains the threading, invalidation, interrupts and options.
 */
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../../package-root.js';
import { fuseUnmount, mountState, recoverStale } from '../mounts.js';

const E = constants.errno;

// ───────────────────────────── public types ─────────────────────────────

export interface Timespec {
  sec: number;
  nsec: number;
}

/** A node's attributes (struct stat). `ino` is the node id the kernel will address it by. */
export interface Attr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  rdev?: number;
  /** 512-byte blocks; default ceil(size / 512) */
  blocks?: number;
  blksize?: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** seconds the kernel may keep these attributes (default: the mount's attrTimeout) */
  attrTimeout?: number;
}

/** A name → node answer (lookup, mknod, mkdir, symlink, link, create). Each one the kernel
 * receives is one lookup reference, given back through `forget`. */
export interface Entry {
  attr: Attr;
  /** with `attr.ino`, unique for the file system's lifetime (ino reuse → a new generation) */
  generation?: number;
  /** seconds the kernel may keep the name (default: the mount's entryTimeout) */
  entryTimeout?: number;
  attrTimeout?: number;
}

export interface OpenFlags {
  directIo?: boolean;
  keepCache?: boolean;
  nonSeekable?: boolean;
  /** opendir: let the kernel cache this directory's listing */
  cacheReaddir?: boolean;
  noFlush?: boolean;
}

/** open/opendir answer: a file handle (any non-negative integer, passed back with later ops). */
export type Open = number | ({ fh: number } & OpenFlags);
export type Created = Entry & { fh: number } & OpenFlags;

/** The most pieces one read answer may have (smhfs_ll.c READ_PARTS_MAX); more are joined. */
export const READ_PARTS_MAX = 64;

export interface FdSlice {
  fd: number;
  position: number;
}

export interface DirEntry {
  name: string;
  ino: number;
  /** the entry's mode (only its type bits are used) */
  mode: number;
  /** the `offset` a later call passes to continue after this entry (default: its index in the
   * answer + the call's offset + 1, i.e. listings indexed from 0) */
  nextOffset?: number;
}

export interface DirEntryPlus {
  name: string;
  /** for names other than . and .., a lookup reference like lookup's (see forget) */
  entry: Entry;
  nextOffset?: number;
}

/**
 * A readdirplus answer already in the addon's form, for big listings (issue 15: no object per
 * entry): `names`, and per entry `DIRPLUS.STRIDE` numbers at the `DIRPLUS` offsets — the
 * attributes as `putAttr` writes an Entry (times in seconds and nanoseconds; a NaN timeout is
 * the mount's) and the offset that resumes after the entry. Each entry but `.` and `..` is a
 * lookup reference, as in DirEntryPlus[], except a name-only entry (`putName`): an attribute
 * timeout of DIRPLUS_NAME_ONLY sends it with nodeid 0, which the kernel emits as a name and
 * d_type only — no inode, no reference, no forget (src/fuse/listing-policy.ts).
 */
export class PackedDirPlus {
  /**
   * Set by the binding when it hands this answer to the addon, which copies it into the reply
   * before any other JS runs (synchronously in the handler's return, or in the call that completes
   * a deferred one). From then on its numbers are free: `of` may write a later answer over them.
   */
  sent = false;

  constructor(
    readonly names: string[],
    readonly nums: Float64Array,
  ) {}

  /**
   * An answer of `n` entries, every number zero. With `spare` (an earlier answer the binding has
   * sent) its numbers are reused when they are enough: a 1 MiB reply's ~1 MB of fresh zeroed
   * memory was page faults and memset, ~15% of a names-only walk's server time (issue 15).
   */
  static of(n: number, spare?: PackedDirPlus): PackedDirPlus {
    const len = n * DIRPLUS.STRIDE;
    if (spare?.sent && spare.nums.buffer.byteLength >= len * 8) {
      const nums = new Float64Array(spare.nums.buffer, 0, len);
      nums.fill(0);
      return new PackedDirPlus(new Array<string>(n), nums);
    }
    return new PackedDirPlus(new Array<string>(n), new Float64Array(len));
  }

  /** Entry `i` from an Entry (as DirEntryPlus[] would send it). */
  put(i: number, name: string, entry: Entry, nextOffset: number): void {
    this.names[i] = name;
    putAttr(this.nums, i * DIRPLUS.STRIDE, entry.attr, entry.generation ?? 0, entry.attrTimeout, entry.entryTimeout);
    this.nums[i * DIRPLUS.STRIDE + DIRPLUS.NEXT] = nextOffset;
  }

  /**
   * Entry `i` as a name only: its ino and type for the dirent, no attributes, no reference. Its
   * other numbers stay as `of` made them, zero: an entry is written once (a fill per entry was
   * ~6% of a names-only walk's server time, issue 15).
   */
  putName(i: number, name: string, ino: number, mode: number, nextOffset: number): void {
    this.names[i] = name;
    const b = i * DIRPLUS.STRIDE;
    this.nums[b + DIRPLUS.INO] = ino;
    this.nums[b + DIRPLUS.MODE] = mode;
    this.nums[b + DIRPLUS.ATTR_TIMEOUT] = DIRPLUS_NAME_ONLY;
    this.nums[b + DIRPLUS.NEXT] = nextOffset;
  }

  /** Whether entry `i` is a name only. */
  nameOnly(i: number): boolean {
    return this.nums[i * DIRPLUS.STRIDE + DIRPLUS.ATTR_TIMEOUT] === DIRPLUS_NAME_ONLY;
  }
}

/** An attribute timeout that marks a name-only readdirplus entry (smhfs_ll.c NAME_ONLY). */
export const DIRPLUS_NAME_ONLY = -1;

/** PackedDirPlus's offsets (the addon's attribute block, smhfs_ll.c A_*, then the next offset). */
export const DIRPLUS = {
  INO: 0,
  MODE: 1,
  NLINK: 2,
  UID: 3,
  GID: 4,
  RDEV: 5,
  SIZE: 6,
  BLOCKS: 7,
  BLKSIZE: 8,
  ATIME: 9,
  ATIME_NS: 10,
  MTIME: 11,
  MTIME_NS: 12,
  CTIME: 13,
  CTIME_NS: 14,
  GEN: 15,
  ATTR_TIMEOUT: 16,
  ENTRY_TIMEOUT: 17,
  NEXT: 18,
  STRIDE: 19,
} as const;

export interface Statfs {
  bsize: number;
  frsize?: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail?: number;
  fsid?: number;
  flag?: number;
  namemax?: number;
}

/** What a setattr changes; absent fields stay. `'now'` is UTIME_NOW. */
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: Timespec | 'now';
  mtime?: Timespec | 'now';
  ctime?: Timespec;
}

/** The caller of a request (fuse_req_ctx). Supplementary groups are checked by the kernel with
 * default_permissions. */
export interface Ctx {
  readonly id: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** the caller's umask; modes already arrive with it applied */
  readonly umask: number;
  /** aborted when the caller interrupts this request (only for ops answered later) */
  readonly signal: AbortSignal;
  readonly interrupted: boolean;
}

/** A value, -errno, or a Promise of either. */
export type Reply<T> = T | number | Promise<T | number>;

export interface ConnInfo {
  protoMajor: number;
  protoMinor: number;
  capable: number;
  want: number;
  maxWrite: number;
  maxRead: number;
  maxReadahead: number;
}

/**
 * The inode-addressed operations (libfuse's fuse_lowlevel_ops, in JS terms). Ino 1 is the root.
 * An op left out answers ENOSYS (the kernel then stops asking for some: open, flush, access …).
 */
export interface LowLevelOps {
  init?(conn: ConnInfo): void;
  destroy?(): void;
  lookup?(parent: number, name: string, ctx: Ctx): Reply<Entry>;
  /** the kernel dropped `nlookup` references of `ino` (the count of entries it received) */
  forget?(ino: number, nlookup: number): void;
  getattr?(ino: number, fh: number | undefined, ctx: Ctx): Reply<Attr>;
  setattr?(ino: number, set: SetAttr, fh: number | undefined, ctx: Ctx): Reply<Attr>;
  readlink?(ino: number, ctx: Ctx): Reply<string | Uint8Array>;
  mknod?(parent: number, name: string, mode: number, rdev: number, ctx: Ctx): Reply<Entry>;
  mkdir?(parent: number, name: string, mode: number, ctx: Ctx): Reply<Entry>;
  unlink?(parent: number, name: string, ctx: Ctx): Reply<void>;
  rmdir?(parent: number, name: string, ctx: Ctx): Reply<void>;
  symlink?(target: string, parent: number, name: string, ctx: Ctx): Reply<Entry>;
  /** flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2); answer -EINVAL for what is unsupported */
  rename?(parent: number, name: string, newParent: number, newName: string, flags: number, ctx: Ctx): Reply<void>;
  link?(ino: number, newParent: number, newName: string, ctx: Ctx): Reply<Entry>;
  open?(ino: number, flags: number, ctx: Ctx): Reply<Open>;
  create?(parent: number, name: string, mode: number, flags: number, ctx: Ctx): Reply<Created>;
  /** up to `size` bytes at `offset` (fewer only at the end of the file); pieces in order (at
   * most READ_PARTS_MAX; more, or none, are joined first) go out as one reply */
  read?(ino: number, fh: number, size: number, offset: number, ctx: Ctx): Reply<Uint8Array | readonly Uint8Array[] | FdSlice>;
  /** `data` is a view into the receive buffer (see the module comment); answer the bytes taken */
  write?(ino: number, fh: number, data: Buffer, offset: number, flags: number, ctx: Ctx): Reply<number>;
  flush?(ino: number, fh: number, ctx: Ctx): Reply<void>;
  release?(ino: number, fh: number, flags: number, ctx: Ctx): Reply<void>;
  fsync?(ino: number, fh: number, datasync: boolean, ctx: Ctx): Reply<void>;
  opendir?(ino: number, flags: number, ctx: Ctx): Reply<Open>;
  /** entries from `offset` on (0: the start; else a `nextOffset` given before — by default the
   * index in the listing this handle sees, stable per opendir); the binding sends as many as fit
   * in `size` bytes and the kernel asks again from the next one */
  readdir?(ino: number, fh: number, offset: number, size: number, ctx: Ctx): Reply<DirEntry[]>;
  /** like readdir, with attributes; entries that did not fit are given back through forget */
  readdirplus?(ino: number, fh: number, offset: number, size: number, ctx: Ctx): Reply<DirEntryPlus[] | PackedDirPlus>;
  releasedir?(ino: number, fh: number, flags: number, ctx: Ctx): Reply<void>;
  fsyncdir?(ino: number, fh: number, datasync: boolean, ctx: Ctx): Reply<void>;
  statfs?(ino: number, ctx: Ctx): Reply<Statfs>;
  /** flags: XATTR_CREATE (1), XATTR_REPLACE (2); `value` is a view, as write's data */
  setxattr?(ino: number, name: string, value: Buffer, flags: number, ctx: Ctx): Reply<void>;
  /** the whole value; the binding answers size probes and ERANGE */
  getxattr?(ino: number, name: string, ctx: Ctx): Reply<Uint8Array>;
  listxattr?(ino: number, ctx: Ctx): Reply<string[]>;
  removexattr?(ino: number, name: string, ctx: Ctx): Reply<void>;
  access?(ino: number, mask: number, ctx: Ctx): Reply<void>;
  fallocate?(ino: number, fh: number, mode: number, offset: number, length: number, ctx: Ctx): Reply<void>;
  copyFileRange?(inoIn: number, fhIn: number, offIn: number, inoOut: number, fhOut: number, offOut: number, len: number, flags: number, ctx: Ctx): Reply<number>;
  /** SEEK_DATA (3) / SEEK_HOLE (4) */
  lseek?(ino: number, fh: number, offset: number, whence: number, ctx: Ctx): Reply<number>;
}

export interface MountOptions {
  fsname?: string;
  subtype?: string;
  /** let other users (and root) in; a non-root server needs user_allow_other in /etc/fuse.conf */
  allowOther?: boolean;
  /** the kernel checks modes, owners and supplementary groups (default true) */
  defaultPermissions?: boolean;
  readOnly?: boolean;
  /** seconds (default 1, 1, 0); each reply may carry its own */
  entryTimeout?: number;
  attrTimeout?: number;
  negativeTimeout?: number;
  /** bytes per WRITE request (default and maximum 1 MiB) */
  maxWrite?: number;
  /** bytes per READ request (default 1 MiB; with splice, what a pipe can carry) */
  maxRead?: number;
  maxReadahead?: number;
  maxBackground?: number;
  congestionThreshold?: number;
  /** open defaults (each open reply may say otherwise) */
  keepCache?: boolean;
  directIo?: boolean;
  /** FUSE_CAP_CACHE_SYMLINKS: the kernel keeps readlink answers (invalidate on change) */
  cacheSymlinks?: boolean;
  /** FUSE_CAP_WRITEBACK_CACHE (default off: writes reach us as they are made) */
  writebackCache?: boolean;
  /** O_TRUNC arrives in open's flags instead of as a setattr (default on) */
  atomicOTrunc?: boolean;
  /** FUSE_CAP_AUTO_INVAL_DATA: drop cached pages when mtime/size change (default on) */
  autoInvalData?: boolean;
  /** FUSE_CAP_SPLICE_WRITE: `{ fd, position }` read answers move file → pipe → kernel */
  splice?: boolean;
  /** with a readdirplus op: 'auto' (the kernel chooses, default) or 'always' */
  readdirplus?: 'auto' | 'always';
  /** fusermount3 unmounts if this process dies (libfuse's auto_unmount) */
  autoUnmount?: boolean;
  /** more `-o` options, verbatim */
  options?: string[];
  /** how long mount() waits for the kernel's INIT (ms, default 10 s) */
  initTimeoutMs?: number;
  /** an op threw something that is not an errno (default: printed to stderr); answered EIO */
  onError?: (err: unknown, op: string) => void;
}

export const FUSE_CAP = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  POSIX_ACL: 1 << 19,
  HANDLE_KILLPRIV: 1 << 20,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  EXPIRE_ONLY: 1 << 26,
} as const;

export interface SessionInfo extends ConnInfo {
  initialized: boolean;
  recvSize: number;
  requests: number;
  deferred: number;
  pending: number;
  exceptions: number;
  ended: boolean;
}

// ───────────────────────────── the addon ─────────────────────────────

interface RawSession {
  readonly __raw: unique symbol;
}
type RawResult = number | string | Uint8Array | readonly Uint8Array[] | [number, number] | [string[], Float64Array] | undefined;
interface Addon {
  mount(
    mountpoint: string,
    args: string[],
    config: Record<string, number>,
    handlers: Record<string, (...a: never[]) => RawResult | void>,
    io: Float64Array,
    callbacks: {
      onInterrupt(id: number): void;
      onUnmounted(): void;
      onError(err: unknown, op: string): void;
      onNotified(done: Float64Array): void;
    },
  ): { session: RawSession; recv: Buffer; fd: number };
  reply(s: RawSession, slot: number, id: number, result: RawResult): boolean;
  swapRecv(s: RawSession): Buffer;
  notify(s: RawSession, kind: number, a: number, b: number, name: string | null, off: number, len: number): number;
  /** n × [kind, a, b, off, len]; the entry kinds' names in order, each followed by NUL. Older builds lack it. */
  notifyBatch?(s: RawSession, nums: Float64Array, names: string): number;
  close(s: RawSession): void;
  info(s: RawSession): SessionInfo;
  /** zlib's crc32(seed, data), with PCLMUL on x86-64 (crc32.c); absent in an older build. */
  crc32?(data: Uint8Array, seed: number): number;
  /** A buffer of `size` bytes (a multiple of 4096) carved from a 2 MiB huge-page slab (pages.c); absent in an older build. */
  allocPage?(size: number): Buffer;
  /** Whether the bytes' address and length are multiples of `n` (pages.c). */
  aligned?(data: Uint8Array, n: number): boolean;
  /** glibc's malloc counters over all arenas (pages.c); empty off glibc, absent in an older build. */
  mallocInfo?(): Partial<MallocInfo>;
  /** malloc_trim(0) (pages.c): whether any memory went back to the system. */
  mallocTrim?(): boolean;
  libfuseVersion: string;
}

/** The package root (this module runs from dist/src/fuse/ll/ or bundled into dist/src/cli/). */
const ROOT = packageRoot(import.meta.url);
const ADDON_DIR = join(ROOT, 'src', 'fuse', 'll', 'build');

let loaded: { ok: true; addon: Addon } | { ok: false; reason: string } | undefined;

/**
 * Load the addon once. `SMHFS_LL_ADDON` names another .node file (tests use it to play a machine
 * without the addon). The reason says what is missing and what to do.
 */
export function lowLevelBinding(): { ok: true; addon: Addon } | { ok: false; reason: string } {
  if (loaded) return loaded;
  const file = process.env['SMHFS_LL_ADDON'] ?? join(ADDON_DIR, 'Release', 'smhfs_ll.node');
  const hint = 'use --binding fuse-native, or install libfuse3-dev, fuse3 and pkg-config and run `make`';
  if (process.platform !== 'linux') {
    loaded = { ok: false, reason: `the libfuse 3 binding is Linux-only (this is ${process.platform}); use --binding fuse-native` };
    return loaded;
  }
  if (!existsSync(file)) {
    // build.mjs leaves the reason beside Release/ when it could not build
    const marker = join(dirname(dirname(file)), 'UNAVAILABLE');
    const why = existsSync(marker) ? readFileSync(marker, 'utf8').trim() : `${file} was not built`;
    loaded = { ok: false, reason: `the libfuse 3 binding is unavailable: ${why}; ${hint}` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(file) as Addon;
    loaded = { ok: true, addon };
  } catch (e) {
    const msg = (e as Error).message;
    const why = /libfuse3\.so/.test(msg) ? 'libfuse3 is not installed (Debian: apt-get install fuse3)' : msg;
    loaded = { ok: false, reason: `the libfuse 3 binding could not be loaded: ${why}; ${hint}` };
  }
  return loaded;
}

/**
 * The addon's CRC-32 (same results as zlib's `crc32(data, seed)`, several times faster here:
 * Node's bundled zlib takes its table path), or undefined when the addon is not there. The disk
 * cache checks every unit it writes and reads with it (src/blob/disk-cache.ts, issue 16).
 */
export function nativeCrc32(): ((data: Uint8Array, seed?: number) => number) | undefined {
  const b = lowLevelBinding();
  const f = b.ok ? b.addon.crc32 : undefined;
  return f ? (data, seed = 0) => f(data, seed) : undefined;
}

/**
 * The addon's page allocator (pages.c: 2 MiB-aligned slabs marked MADV_HUGEPAGE, so a fresh page
 * buffer costs one page fault per 2 MiB, not 512), or undefined without the addon. A size that is
 * not a multiple of 4096 gets Buffer.allocUnsafeSlow. The page cache uses it for its page buffers
 * (src/blob/page-cache.ts `allocatePage`, issue 16).
 */
export function nativePageAllocator(): ((length: number) => Buffer) | undefined {
  const b = lowLevelBinding();
  const f = b.ok ? b.addon.allocPage : undefined;
  return f ? (length) => (length > 0 && length % 4096 === 0 ? f(length) : Buffer.allocUnsafeSlow(length)) : undefined;
}

/**
 * Whether bytes may be written with O_DIRECT: address and length multiples of 4096 (the largest
 * logical block size of common disks), or undefined without the addon. The disk cache writes such
 * bytes (the page buffers from `nativePageAllocator`) past the kernel's page cache (issue 16).
 */
export function nativeDirectIoAligned(): ((data: Uint8Array) => boolean) | undefined {
  const b = lowLevelBinding();
  const f = b.ok ? b.addon.aligned : undefined;
  return f ? (data) => f(data, 4096) : undefined;
}

/** Bytes, from glibc's mallinfo2 over all arenas. */
export interface MallocInfo {
  /** What malloc holds from the system in its heaps (the main one and the per-thread arenas). */
  arena: number;
  /** Chunks mmapped on their own (large allocations). */
  mmapped: number;
  inUse: number;
  /** Free inside the heaps: RSS that malloc_trim can give back where whole pages are free. */
  free: number;
}

/** The C heap's counters and its trim (pages.c), or undefined without the addon or off glibc. */
export function nativeMalloc(): { info(): MallocInfo; trim(): boolean } | undefined {
  const b = lowLevelBinding();
  if (!b.ok || !b.addon.mallocInfo || !b.addon.mallocTrim) return undefined;
  const { mallocInfo, mallocTrim } = b.addon;
  if (mallocInfo().arena === undefined) return undefined;
  return { info: () => mallocInfo() as MallocInfo, trim: () => mallocTrim() };
}

export function lowLevelAvailable(): { ok: true; libfuse: string } | { ok: false; reason: string } {
  const b = lowLevelBinding();
  return b.ok ? { ok: true, libfuse: b.addon.libfuseVersion } : b;
}

// ───────────────────────────── io layout (mirrors smhfs_ll.c) ─────────────────────────────

const IO_REQ = 0;
const IO_UID = 1;
const IO_GID = 2;
const IO_PID = 3;
const IO_UMASK = 4;
const IO_SLOT = 5;
const IO_SA = 6; // mode uid gid size atime atimens mtime mtimens ctime ctimens
const IO_ATTR = 16;
const ATTR_STRIDE = 18;
const DIR_STRIDE = 3;
const DIRPLUS_STRIDE = ATTR_STRIDE + 1;
const IO_FH = 34;
const IO_OPEN_FLAGS = 35;
const IO_STATFS = 40;
const IO_LEN = 64;

const SET_MODE = 1 << 0;
const SET_UID = 1 << 1;
const SET_GID = 1 << 2;
const SET_SIZE = 1 << 3;
const SET_ATIME = 1 << 4;
const SET_MTIME = 1 << 5;
const SET_ATIME_NOW = 1 << 7;
const SET_MTIME_NOW = 1 << 8;
const SET_CTIME = 1 << 10;

const NOTIFY_INODE = 1;
const NOTIFY_ENTRY = 2;
const NOTIFY_DELETE = 3;

function putAttr(d: Float64Array, base: number, a: Attr, gen: number, attrTimeout: number | undefined, entryTimeout: number | undefined): void {
  d[base] = a.ino;
  d[base + 1] = a.mode;
  d[base + 2] = a.nlink;
  d[base + 3] = a.uid;
  d[base + 4] = a.gid;
  d[base + 5] = a.rdev ?? 0;
  d[base + 6] = a.size;
  d[base + 7] = a.blocks ?? Math.ceil(a.size / 512);
  d[base + 8] = a.blksize ?? 4096;
  d[base + 9] = a.atime.sec;
  d[base + 10] = a.atime.nsec;
  d[base + 11] = a.mtime.sec;
  d[base + 12] = a.mtime.nsec;
  d[base + 13] = a.ctime.sec;
  d[base + 14] = a.ctime.nsec;
  d[base + 15] = gen;
  d[base + 16] = attrTimeout ?? a.attrTimeout ?? NaN;
  d[base + 17] = entryTimeout ?? NaN;
}

/** A request's caller; `signal` is made only when asked for. */
class RequestContext implements Ctx {
  interrupted = false;
  #ac: AbortController | undefined;
  constructor(
    readonly id: number,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
    readonly umask: number,
    readonly slot: number,
  ) {}
  get signal(): AbortSignal {
    if (!this.#ac) {
      this.#ac = new AbortController();
      if (this.interrupted) this.#ac.abort(interruptedError());
    }
    return this.#ac.signal;
  }
  interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.#ac?.abort(interruptedError());
  }
}

function interruptedError(): Error {
  return Object.assign(new Error('the caller interrupted the request'), { code: 'EINTR', errno: E.EINTR });
}

/** -errno for a thrown value, or undefined when it carries none. */
function errnoOfThrown(e: unknown): number | undefined {
  if (typeof e === 'number' && Number.isInteger(e) && e !== 0) return -Math.abs(e);
  if (e && typeof e === 'object') {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in E) return -E[code as keyof typeof E];
    const errno = (e as { errno?: unknown }).errno;
    if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0) return -Math.abs(errno);
  }
  return undefined;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v instanceof Promise || (typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function');
}

/** Which sessions are live: kept reachable, and lazily unmounted if the process exits. */
const live = new Set<LowLevelSession>();
let exitHook = false;

// ───────────────────────────── the session ─────────────────────────────

/**
 * A mounted low-level file system. Events: 'unmounted' (whoever unmounted it: our unmount(),
 * fusermount -u from a shell, or close()).
 */
export class LowLevelSession extends EventEmitter {
  readonly mountpoint: string;
  /** resolves when the session has ended */
  readonly closed: Promise<void>;
  #addon: Addon;
  #raw!: RawSession;
  #io = new Float64Array(IO_LEN);
  #recv!: Buffer;
  #ops: LowLevelOps;
  #opt: MountOptions;
  #ended = false;
  #resolveClosed!: () => void;
  #pending = new Map<number, RequestContext>();
  /** Pending notifications by id; `batch`: one of notifyBatch, resolved with its count of hits. */
  #notes = new Map<number, { res: (v: boolean) => void; rej: (e: Error) => void; batch?: (hits: number) => void }>();
  #initWaiters: Array<() => void> = [];
  #initialized = false;
  #onError: (err: unknown, op: string) => void;

  /** @internal use mount() */
  constructor(addon: Addon, mountpoint: string, ops: LowLevelOps, opt: MountOptions) {
    super();
    this.#addon = addon;
    this.mountpoint = mountpoint;
    this.#ops = ops;
    this.#opt = opt;
    this.#onError =
      opt.onError ??
      ((err, op) => process.stderr.write(`smhfs: the ${op} operation failed unexpectedly (answered EIO): ${(err as Error)?.stack ?? String(err)}\n`));
    this.closed = new Promise((r) => (this.#resolveClosed = r));
  }

  /** @internal */
  start(args: string[], config: Record<string, number>): void {
    const r = this.#addon.mount(this.mountpoint, args, config, this.#handlers(), this.#io, {
      onInterrupt: (id) => this.#pending.get(id)?.interrupt(),
      onUnmounted: () => this.#ended_(),
      onError: (err, op) => this.#onError(err, op),
      onNotified: (done) => this.#notified(done),
    });
    this.#raw = r.session;
    this.#recv = r.recv;
  }

  /** What the kernel and libfuse agreed on at INIT, and request counters. */
  info(): SessionInfo {
    const i = this.#addon.info(this.#raw);
    return { ...i, initialized: !!i.initialized, ended: !!i.ended };
  }

  /** @internal resolves once INIT was answered (rejects after `ms`). */
  waitInit(ms: number): Promise<void> {
    if (this.#initialized) return Promise.resolve();
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`the kernel did not initialise the mount at ${this.mountpoint} within ${ms} ms`)), ms);
      this.#initWaiters.push(() => {
        clearTimeout(t);
        res();
      });
    });
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Unmount through the kernel (`fusermount -u`, or `umount` as root) from a child process —
   * never a blocking call on our own mountpoint — and wait for the session to end. A busy mount
   * is refused (rejects, stays mounted) unless `lazy` (detach now, end when the last user goes).
   */
  async unmount(opts: { lazy?: boolean } = {}): Promise<void> {
    if (this.#ended) return;
    const r = await fuseUnmount(this.mountpoint, opts.lazy ? { lazy: true } : {});
    if (r.code !== 0 && !this.#ended) {
      const busy = /busy/i.test(r.stderr);
      throw Object.assign(new Error(`could not unmount ${this.mountpoint}: ${r.stderr.trim() || `exit ${r.code}`}${busy ? ' (in use: close what uses it, or unmount lazily)' : ''}`), {
        code: busy ? 'EBUSY' : 'EIO',
      });
    }
    if (!opts.lazy) await this.closed;
  }

  /** End the session now: pending requests get EIO, the device is closed and the mountpoint
   * lazily detached. For shutdown paths where unmount() is not possible. */
  close(): void {
    if (!this.#ended) this.#addon.close(this.#raw);
  }

  /**
   * Drop the kernel's cached name `name` in directory `parent` (and a negative entry). Sent by a
   * helper thread (never from inside a request: that could deadlock). Resolves true when the
   * kernel had something to drop, false when it had nothing cached.
   */
  invalidateEntry(parent: number, name: string): Promise<boolean> {
    return this.#notify(NOTIFY_ENTRY, parent, 0, name, 0, 0);
  }

  /**
   * Drop the kernel's cached attributes of `ino` and its cached data from `offset` for `length`
   * bytes (0: to the end); `offset` < 0 drops only the attributes. A symlink's cached target (with
   * cacheSymlinks) is its data.
   */
  invalidateInode(ino: number, offset = 0, length = 0): Promise<boolean> {
    return this.#notify(NOTIFY_INODE, ino, 0, null, offset, length);
  }

  /** Like invalidateEntry, but also tells inotify watchers that `child` was deleted. */
  deleteEntry(parent: number, child: number, name: string): Promise<boolean> {
    return this.#notify(NOTIFY_DELETE, parent, child, name, 0, 0);
  }

  /**
   * Entry invalidations (`entries`: [parent, name]) then inode invalidations (attributes and data),
   * in that order, as one call into the addon and one completion (a cascade of 2,000 links is
   * 4,000 notifications: issue 15). Resolves with how many dropped something; rejects on the
   * first failure other than "nothing cached".
   */
  invalidateBatch(entries: ReadonlyArray<readonly [number, string]>, inodes: readonly number[]): Promise<number> {
    const n = entries.length + inodes.length;
    if (this.#ended || n === 0) return Promise.resolve(0);
    if (!this.#addon.notifyBatch) {
      // an addon built before notifyBatch: one call each
      const all = [...entries.map(([p, name]) => this.invalidateEntry(p, name)), ...inodes.map((i) => this.invalidateInode(i))];
      return Promise.all(all).then((r) => r.filter(Boolean).length);
    }
    const nums = new Float64Array(n * 5);
    let k = 0;
    for (const [p] of entries) {
      nums[k] = NOTIFY_ENTRY;
      nums[k + 1] = p;
      k += 5;
    }
    for (const ino of inodes) {
      nums[k] = NOTIFY_INODE;
      nums[k + 1] = ino;
      k += 5; // off 0, len 0: attributes and all cached data
    }
    const names = entries.length === 0 ? '' : `${entries.map((e) => e[1]).join('\0')}\0`;
    const id = this.#addon.notifyBatch(this.#raw, nums, names);
    this.notifyCalls++;
    return new Promise((res, rej) => this.#notes.set(id, { res: () => res(0), rej, batch: res }));
  }

  /** Calls into the addon that queued notifications (one per invalidation, one per batch). */
  notifyCalls = 0;

  #notify(kind: number, a: number, b: number, name: string | null, off: number, len: number): Promise<boolean> {
    if (this.#ended) return Promise.resolve(false);
    const id = this.#addon.notify(this.#raw, kind, a, b, name, off, len);
    this.notifyCalls++;
    return new Promise((res, rej) => this.#notes.set(id, { res, rej }));
  }

  #notified(done: Float64Array): void {
    for (let i = 0; i < done.length; i += 2) {
      const n = this.#notes.get(done[i]!);
      if (!n) continue;
      this.#notes.delete(done[i]!);
      const rc = done[i + 1]!;
      if (n.batch && rc >= 0) n.batch(rc);
      else if (rc === 0) n.res(true);
      else if (rc === -E.ENOENT || rc === -E.ENODEV) n.res(false);
      else n.rej(Object.assign(new Error(`cache invalidation failed: errno ${-rc}`), { errno: -rc }));
    }
  }

  #ended_(): void {
    if (this.#ended) return;
    this.#ended = true;
    live.delete(this);
    for (const n of this.#notes.values()) n.res(false);
    this.#notes.clear();
    for (const c of this.#pending.values()) c.interrupt();
    this.#pending.clear();
    this.emit('unmounted');
    this.#resolveClosed();
  }

  // ── the raw handlers the addon calls ──

  #ctx(): RequestContext {
    const io = this.#io;
    return new RequestContext(io[IO_REQ]!, io[IO_UID]!, io[IO_GID]!, io[IO_PID]!, io[IO_UMASK]!, io[IO_SLOT]!);
  }

  /** Encode a settled value: a negative number is -errno; other numbers are the op's own answer
   * (a count, an offset — or, for open/opendir, the file handle: `numIsValue`). */
  #encode<T>(v: T | number, enc: (v: T) => RawResult, op: string, numIsValue: boolean): RawResult {
    if (typeof v === 'number' && (v < 0 || !numIsValue)) return v;
    try {
      return enc(v as T);
    } catch (e) {
      return this.#thrown(e, op);
    }
  }

  #thrown(e: unknown, op: string): number {
    const n = errnoOfThrown(e);
    if (n !== undefined) return n;
    this.#onError(e, op);
    return -E.EIO;
  }

  /** The op's return value → what the addon answers now, or undefined (answered later). */
  #out<T>(r: Reply<T>, ctx: RequestContext, enc: (v: T) => RawResult, op: string, keepsRecv = false, numIsValue = false): RawResult {
    if (typeof r === 'number' && (r < 0 || !numIsValue)) return r;
    if (!isThenable(r)) return this.#encode(r as T, enc, op, numIsValue);
    // Answered later: the request keeps its slot; the receive buffer its views point into stays
    // theirs and libfuse gets a new one.
    if (keepsRecv) this.#recv = this.#addon.swapRecv(this.#raw);
    const { slot, id } = ctx;
    this.#pending.set(id, ctx);
    (r as Promise<T | number>).then(
      (v) => {
        this.#pending.delete(id);
        if (this.#ended) return;
        this.#addon.reply(this.#raw, slot, id, this.#encode(v, enc, op, numIsValue));
      },
      (e: unknown) => {
        this.#pending.delete(id);
        if (this.#ended) return;
        this.#addon.reply(this.#raw, slot, id, this.#thrown(e, op));
      },
    );
    return undefined;
  }

  #handlers(): Record<string, (...a: never[]) => RawResult | void> {
    const ops = this.#ops;
    const io = this.#io;
    const opt = this.#opt;
    const defaultOpenFlags = (opt.directIo ? 1 : 0) | (opt.keepCache ? 2 : 0);
    const entry = (e: Entry): RawResult => {
      putAttr(io, IO_ATTR, e.attr, e.generation ?? 0, e.attrTimeout, e.entryTimeout);
      return 0;
    };
    const attr = (a: Attr): RawResult => {
      putAttr(io, IO_ATTR, a, 0, a.attrTimeout, undefined);
      return 0;
    };
    const open = (o: Open): RawResult => {
      if (typeof o === 'object') {
        io[IO_FH] = o.fh;
        io[IO_OPEN_FLAGS] = openFlags(o, defaultOpenFlags);
      } else {
        io[IO_FH] = o;
        io[IO_OPEN_FLAGS] = defaultOpenFlags;
      }
      return 0;
    };
    const created = (c: Created): RawResult => {
      entry(c);
      io[IO_FH] = c.fh;
      io[IO_OPEN_FLAGS] = openFlags(c, defaultOpenFlags);
      return 0;
    };
    const none = (): RawResult => 0;
    const count = (n: number): RawResult => n;
    const bytes = (b: Uint8Array): RawResult => b;
    const link = (t: string | Uint8Array): RawResult => t;
    // Pieces go to the addon as they are (fuse_reply_iov); too many, or none, are joined here.
    const data = (d: Uint8Array | readonly Uint8Array[] | FdSlice): RawResult =>
      d instanceof Uint8Array ? d : Array.isArray(d) ? (d.length > 0 && d.length <= READ_PARTS_MAX ? d : Buffer.concat(d)) : [(d as FdSlice).fd, (d as FdSlice).position];
    const statfs = (s: Statfs): RawResult => {
      const b = IO_STATFS;
      io[b] = s.bsize;
      io[b + 1] = s.frsize ?? s.bsize;
      io[b + 2] = s.blocks;
      io[b + 3] = s.bfree;
      io[b + 4] = s.bavail;
      io[b + 5] = s.files;
      io[b + 6] = s.ffree;
      io[b + 7] = s.favail ?? s.ffree;
      io[b + 8] = s.fsid ?? 0;
      io[b + 9] = s.flag ?? 0;
      io[b + 10] = s.namemax ?? 255;
      return 0;
    };
    const xattrNames = (names: string[]): RawResult => Buffer.from(names.map((n) => `${n}\0`).join(''));
    const dir = (list: DirEntry[]): RawResult => {
      const names = new Array<string>(list.length);
      const nums = new Float64Array(list.length * DIR_STRIDE);
      for (let i = 0; i < list.length; i++) {
        const d = list[i]!;
        names[i] = d.name;
        nums[i * DIR_STRIDE] = d.ino;
        nums[i * DIR_STRIDE + 1] = d.mode;
        nums[i * DIR_STRIDE + 2] = d.nextOffset ?? NaN;
      }
      return [names, nums];
    };
    const dirPlus = (list: DirEntryPlus[] | PackedDirPlus): RawResult => {
      if (list instanceof PackedDirPlus) {
        list.sent = true; // the addon copies it before returning to JS (see PackedDirPlus.sent)
        return [list.names, list.nums];
      }
      const names = new Array<string>(list.length);
      const nums = new Float64Array(list.length * DIRPLUS_STRIDE);
      for (let i = 0; i < list.length; i++) {
        const d = list[i]!;
        names[i] = d.name;
        putAttr(nums, i * DIRPLUS_STRIDE, d.entry.attr, d.entry.generation ?? 0, d.entry.attrTimeout, d.entry.entryTimeout);
        nums[i * DIRPLUS_STRIDE + ATTR_STRIDE] = d.nextOffset ?? NaN;
      }
      return [names, nums];
    };
    const setAttrOf = (valid: number): SetAttr => {
      const s: SetAttr = {};
      if (valid & SET_MODE) s.mode = io[IO_SA]!;
      if (valid & SET_UID) s.uid = io[IO_SA + 1]!;
      if (valid & SET_GID) s.gid = io[IO_SA + 2]!;
      if (valid & SET_SIZE) s.size = io[IO_SA + 3]!;
      if (valid & SET_ATIME_NOW) s.atime = 'now';
      else if (valid & SET_ATIME) s.atime = { sec: io[IO_SA + 4]!, nsec: io[IO_SA + 5]! };
      if (valid & SET_MTIME_NOW) s.mtime = 'now';
      else if (valid & SET_MTIME) s.mtime = { sec: io[IO_SA + 6]!, nsec: io[IO_SA + 7]! };
      if (valid & SET_CTIME) s.ctime = { sec: io[IO_SA + 8]!, nsec: io[IO_SA + 9]! };
      return s;
    };

    // Each handler: build the context, call the op, turn what it returned into the addon's answer.
    const h: Record<string, (...a: never[]) => RawResult | void> = {};
    const self = this;
    function wrap<A extends unknown[], T>(name: string, fn: ((...a: A) => Reply<T>) | undefined, enc: (v: T) => RawResult, numIsValue = false): void {
      if (!fn) return;
      const bound = fn.bind(ops) as (...a: unknown[]) => Reply<T>;
      h[name] = ((...args: unknown[]) => {
        const ctx = self.#ctx();
        try {
          return self.#out(bound(...args, ctx), ctx, enc, name, false, numIsValue);
        } catch (e) {
          return self.#thrown(e, name);
        }
      }) as (...a: never[]) => RawResult;
    }
    if (ops.init) {
      h['init'] = () => {
        this.#initialized = true;
        const i = this.info();
        ops.init!({ protoMajor: i.protoMajor, protoMinor: i.protoMinor, capable: i.capable, want: i.want, maxWrite: i.maxWrite, maxRead: i.maxRead, maxReadahead: i.maxReadahead });
        for (const w of this.#initWaiters.splice(0)) w();
      };
    } else {
      h['init'] = () => {
        this.#initialized = true;
        for (const w of this.#initWaiters.splice(0)) w();
      };
    }
    if (ops.destroy) h['destroy'] = () => void ops.destroy!();
    if (ops.forget) {
      const forget = ops.forget.bind(ops);
      // one forget, or (forget_multi: drop_caches sends thousands) a Float64Array of `n` (ino, nlookup) pairs
      h['forget'] = ((ino: number | Float64Array, n: number) => {
        if (typeof ino === 'number') {
          try {
            forget(ino, n);
          } catch (e) {
            this.#onError(e, 'forget');
          }
          return;
        }
        for (let i = 0; i < n; i++) {
          const one = ino[2 * i]!;
          if (one === 0) continue;
          try {
            forget(one, ino[2 * i + 1]!);
          } catch (e) {
            this.#onError(e, 'forget');
          }
        }
      }) as (...a: never[]) => void;
    }
    wrap('lookup', ops.lookup, entry);
    wrap('getattr', ops.getattr ? (ino: number, fh: number | undefined, ctx: Ctx) => ops.getattr!(ino, fh, ctx) : undefined, attr);
    if (ops.setattr) {
      const setattr = ops.setattr.bind(ops);
      wrap('setattr', (ino: number, valid: number, fh: number | undefined, ctx: Ctx) => setattr(ino, setAttrOf(valid), fh, ctx), attr);
    }
    wrap('readlink', ops.readlink, link);
    wrap('mknod', ops.mknod, entry);
    wrap('mkdir', ops.mkdir, entry);
    wrap('unlink', ops.unlink, none);
    wrap('rmdir', ops.rmdir, none);
    wrap('symlink', ops.symlink, entry);
    wrap('rename', ops.rename, none);
    wrap('link', ops.link, entry);
    wrap('open', ops.open, open, true);
    wrap('create', ops.create, created);
    wrap('read', ops.read, data);
    if (ops.write) {
      const write = ops.write.bind(ops);
      h['write'] = ((ino: number, fh: number, where: number, size: number, off: number, flags: number, copy: Buffer | undefined) => {
        const ctx = this.#ctx();
        const view = where >= 0 ? this.#recv.subarray(where, where + size) : copy!;
        try {
          return this.#out(write(ino, fh, view, off, flags, ctx), ctx, count, 'write', where >= 0);
        } catch (e) {
          return this.#thrown(e, 'write');
        }
      }) as (...a: never[]) => RawResult;
    }
    wrap('flush', ops.flush, none);
    wrap('release', ops.release, none);
    if (ops.fsync) {
      const fsync = ops.fsync.bind(ops);
      wrap('fsync', (ino: number, fh: number, ds: number, ctx: Ctx) => fsync(ino, fh, ds !== 0, ctx), none);
    }
    wrap('opendir', ops.opendir, open, true);
    wrap('readdir', ops.readdir, dir);
    if (ops.readdirplus) wrap('readdirplus', ops.readdirplus, dirPlus);
    wrap('releasedir', ops.releasedir, none);
    if (ops.fsyncdir) {
      const fsyncdir = ops.fsyncdir.bind(ops);
      wrap('fsyncdir', (ino: number, fh: number, ds: number, ctx: Ctx) => fsyncdir(ino, fh, ds !== 0, ctx), none);
    }
    wrap('statfs', ops.statfs, statfs);
    if (ops.setxattr) {
      const setxattr = ops.setxattr.bind(ops);
      h['setxattr'] = ((ino: number, name: string, where: number, size: number, flags: number, copy: Buffer | undefined) => {
        const ctx = this.#ctx();
        const view = where >= 0 ? this.#recv.subarray(where, where + size) : copy!;
        try {
          return this.#out(setxattr(ino, name, view, flags, ctx), ctx, none, 'setxattr', where >= 0);
        } catch (e) {
          return this.#thrown(e, 'setxattr');
        }
      }) as (...a: never[]) => RawResult;
    }
    if (ops.getxattr) {
      const getxattr = ops.getxattr.bind(ops);
      wrap('getxattr', (ino: number, name: string, _size: number, ctx: Ctx) => getxattr(ino, name, ctx), bytes);
    }
    if (ops.listxattr) {
      const listxattr = ops.listxattr.bind(ops);
      wrap('listxattr', (ino: number, _size: number, ctx: Ctx) => listxattr(ino, ctx), xattrNames);
    }
    wrap('removexattr', ops.removexattr, none);
    wrap('access', ops.access, none);
    wrap('fallocate', ops.fallocate, none);
    wrap('copy_file_range', ops.copyFileRange, count);
    wrap('lseek', ops.lseek, count);
    return h;
  }
}

function openFlags(o: OpenFlags, dflt: number): number {
  let f = dflt;
  if (o.directIo !== undefined) f = o.directIo ? f | 1 : f & ~1;
  if (o.keepCache !== undefined) f = o.keepCache ? f | 2 : f & ~2;
  if (o.nonSeekable) f |= 4;
  if (o.cacheReaddir) f |= 8;
  if (o.noFlush) f |= 16;
  return f;
}

// ───────────────────────────── mount ─────────────────────────────

const MiB = 1 << 20;

/** CAP_SYS_RESOURCE lets a pipe grow past /proc/sys/fs/pipe-max-size. */
function hasCapSysResource(): boolean {
  try {
    const m = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'));
    return !!m && (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n;
  } catch {
    return false;
  }
}

/**
 * The largest read a spliced reply can carry: libfuse needs a pipe of request + 3 pages (it
 * silently falls back to copying otherwise), and without CAP_SYS_RESOURCE a pipe cannot grow past
 * pipe-max-size (1 MiB by default). A power of two keeps 1 MiB reads whole (2 × 512 KiB).
 */
export function spliceMaxRead(): number {
  if (hasCapSysResource()) return MiB;
  let max = MiB;
  try {
    max = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim()) || MiB;
  } catch {
    // keep the default
  }
  let r = MiB;
  while (r > 4096 && r + 3 * 4096 + 16 > max) r /= 2;
  return r;
}

/** libfuse's -o list and the addon's numbers for these options. */
export function mountConfig(opt: MountOptions, ops: LowLevelOps): { args: string[]; config: Record<string, number> } {
  const o: string[] = [`fsname=${opt.fsname ?? 'smhfs'}`, `subtype=${opt.subtype ?? 'smhfs'}`];
  if (opt.defaultPermissions !== false) o.push('default_permissions');
  if (opt.allowOther) o.push('allow_other');
  if (opt.readOnly) o.push('ro');
  if (opt.autoUnmount) o.push('auto_unmount');
  let maxRead = Math.min(opt.maxRead ?? MiB, MiB);
  if (opt.splice) maxRead = Math.min(maxRead, spliceMaxRead());
  o.push(`max_read=${maxRead}`);
  o.push(...(opt.options ?? []));
  for (const x of o) if (x.includes(',')) throw new Error(`mount option ${JSON.stringify(x)} contains a comma`);

  let wantSet = FUSE_CAP.ASYNC_READ | FUSE_CAP.PARALLEL_DIROPS;
  let wantClear = FUSE_CAP.SPLICE_READ | FUSE_CAP.HANDLE_KILLPRIV | FUSE_CAP.DONT_MASK;
  const flag = (on: boolean | undefined, dflt: boolean, cap: number): void => {
    if (on ?? dflt) wantSet |= cap;
    else wantClear |= cap;
  };
  flag(opt.cacheSymlinks, false, FUSE_CAP.CACHE_SYMLINKS);
  flag(opt.writebackCache, false, FUSE_CAP.WRITEBACK_CACHE);
  flag(opt.atomicOTrunc, true, FUSE_CAP.ATOMIC_O_TRUNC);
  flag(opt.autoInvalData, true, FUSE_CAP.AUTO_INVAL_DATA);
  flag(opt.splice, false, FUSE_CAP.SPLICE_WRITE);
  if (ops.readdirplus) {
    wantSet |= FUSE_CAP.READDIRPLUS;
    if ((opt.readdirplus ?? 'auto') === 'auto') wantSet |= FUSE_CAP.READDIRPLUS_AUTO;
    else wantClear |= FUSE_CAP.READDIRPLUS_AUTO;
  } else {
    wantClear |= FUSE_CAP.READDIRPLUS | FUSE_CAP.READDIRPLUS_AUTO;
  }
  const config: Record<string, number> = {
    entryTimeout: opt.entryTimeout ?? 1,
    attrTimeout: opt.attrTimeout ?? 1,
    negativeTimeout: opt.negativeTimeout ?? 0,
    maxRead,
    maxWrite: Math.min(opt.maxWrite ?? MiB, MiB),
    wantSet,
    wantClear,
  };
  if (opt.maxReadahead) config['maxReadahead'] = opt.maxReadahead;
  if (opt.maxBackground) config['maxBackground'] = opt.maxBackground;
  if (opt.congestionThreshold) config['congestionThreshold'] = opt.congestionThreshold;
  return { args: ['smhfs', '-o', o.join(',')], config };
}

/**
 * Mount `ops` at `mountpoint` and serve it on this thread. A stale mount left there by a crashed
 * server is detached first; a live one is refused. Resolves once the kernel's INIT was answered.
 */
export async function mount(mountpoint: string, ops: LowLevelOps, options: MountOptions = {}): Promise<LowLevelSession> {
  const b = lowLevelBinding();
  if (!b.ok) throw Object.assign(new Error(b.reason), { code: 'ELLUNAVAILABLE' });
  const mp = resolve(mountpoint);
  const st = await mountState(mp);
  if (st.state === 'stale') {
    const r = await recoverStale(mp);
    if (r.code !== 0) throw new Error(`${mp} is a dead mount (${st.detail}) that could not be detached: ${r.stderr.trim()}`);
    process.stderr.write(`smhfs: detached the dead mount at ${mp} (${st.detail}) left by a crashed server\n`);
  } else if (st.state === 'live' || st.state === 'hung' || st.state === 'other') {
    throw Object.assign(new Error(`${mp} is already a mount point (${st.entry?.fstype ?? 'unknown'}${st.state === 'hung' ? ', not answering' : ''}); unmount it first`), {
      code: 'EBUSY',
    });
  }
  const { args, config } = mountConfig(options, ops);
  const s = new LowLevelSession(b.addon, mp, ops, options);
  s.start(args, config);
  live.add(s);
  if (!exitHook) {
    exitHook = true;
    // a process that exits with mounts left would leave them dead ("Transport endpoint is not
    // connected"): detach them instead
    process.on('exit', () => {
      for (const x of live) x.close();
    });
  }
  try {
    await s.waitInit(options.initTimeoutMs ?? 10_000);
  } catch (e) {
    s.close();
    throw e;
  }
  return s;
}
