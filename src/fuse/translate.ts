/**
 * What both FUSE adapters translate the same way (./adapter.ts for fuse-native, path-addressed;
 * ./inode-adapter.ts for our libfuse 3 binding, inode-addressed): a store node to struct stat
 * numbers, open(2) flags to what OpenFiles needs, the statfs answer, errors to -errno with the
 * unexpected ones logged. Each adapter only formats the result for its binding (milliseconds for
 * fuse-native, seconds + nanoseconds for ll). No rule lives here.
 */
import { statfs as fsStatfs } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { isSmhError } from '../errors.js';
import type { NodeInfo } from '../store/types.js';
import { SparseLayout } from '../blob/sparse.js';
import { errnoOf } from './errno.js';
import type { OpenFiles, OpenNode, Version } from '../vfs/open-files.js';
import type { FuseStatfs } from './native.js';

const E = constants.errno;
const O_ACCMODE = 3;
const O_WRONLY = 1;
const U32 = 0xffffffff;

/** struct stat of a node, with times in microseconds and the nanoseconds below each (the store's precision, M2). */
export interface NodeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  /** the node id (each adapter maps it to the ino its binding uses) */
  id: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atimeUs: number;
  mtimeUs: number;
  ctimeUs: number;
  atimeNsRem: number;
  mtimeNsRem: number;
  ctimeNsRem: number;
}

/**
 * `open`: the node's open state in this mount (staged size and times win); `view`: fstat through
 * a handle answers with the size of the version that handle reads (D7); `presentAs`: the owner
 * every node shows when the server is not root.
 */
export function nodeStat(
  info: NodeInfo,
  open: OpenNode | undefined,
  blksize: number,
  view?: Version,
  presentAs?: { uid: number; gid: number },
): NodeStat {
  const size = open?.staging ? open.size : (view?.size ?? info.size);
  const mtimeUs = open?.mtimeUs ?? info.mtimeUs;
  const mtimeNsRem = open?.mtimeUs !== undefined ? open.mtimeNsRem : info.mtimeNsRem;
  // staged ctimes are the clock's (no nanoseconds): the store's wins a tie with its own
  const ctimeUs = Math.max(open?.ctimeUs ?? 0, info.ctimeUs);
  const ctimeNsRem = ctimeUs === info.ctimeUs ? info.ctimeNsRem : 0;
  const owner = presentAs ?? info;
  // st_blocks counts what is stored, so du and cp --sparse=auto see a sparse file's holes (D8).
  const layout = view ? view.layout : info.layout;
  const stored = open?.staging ? (open.written?.bytes ?? size) : layout ? SparseLayout.parse(layout).dataBytes : size;
  return {
    mode: info.mode,
    uid: owner.uid,
    gid: owner.gid,
    size,
    nlink: info.nlink,
    id: info.id,
    rdev: info.rdev,
    blksize,
    blocks: Math.ceil(stored / 512),
    atimeUs: info.atimeUs,
    mtimeUs,
    ctimeUs,
    atimeNsRem: info.atimeNsRem,
    mtimeNsRem,
    ctimeNsRem,
  };
}

/** open(2) flags as OpenFiles takes them. */
export function openMode(flags: number): { writable: boolean; readable: boolean; truncate: boolean } {
  const writable = (flags & O_ACCMODE) !== 0;
  return { writable, readable: (flags & O_ACCMODE) !== O_WRONLY, truncate: writable && (flags & fsConstants.O_TRUNC) !== 0 };
}

/**
 * statfs(2): space is the library folder's file system (the local blob store's home; a made-up
 * figure for S3 would lie either way); D11: f_files is the inode total and f_ffree the free ones
 * (df -i: used = files - ffree). Nodes are rows, not preallocated inodes: the total is what a
 * 32-bit field can say. Counts are scaled to 32 bits (fuse-native packs them so; harmless on ll).
 */
export async function statfsNumbers(libraryDir: string, nodes: number): Promise<FuseStatfs> {
  let bsize = 4096;
  let blocks = 0;
  let bfree = 0;
  let bavail = 0;
  try {
    const st = await fsStatfs(libraryDir);
    bsize = st.bsize;
    blocks = st.blocks;
    bfree = st.bfree;
    bavail = st.bavail;
  } catch {
    // keep zeros
  }
  let frsize = bsize;
  while (blocks > U32) {
    frsize *= 2;
    blocks = Math.floor(blocks / 2);
    bfree = Math.floor(bfree / 2);
    bavail = Math.floor(bavail / 2);
  }
  const used = Math.min(nodes, U32);
  const ffree = U32 - used;
  return { bsize: frsize, frsize, blocks, bfree, bavail, files: U32, ffree, favail: ffree, fsid: 0, flag: 0, namemax: 255 };
}

/**
 * errno (positive) for a thrown value; `log` is told of what a user could not have caused
 * (anything that is not an SmhError or an errno-carrying error, and whatever maps to EIO).
 */
export function errnoFor(e: unknown, log: (what: string, errno: number) => void): number {
  const errno = errnoOf(e);
  const expected = isSmhError(e) ? errno !== E.EIO : typeof (e as NodeJS.ErrnoException)?.code === 'string' && errno !== E.EIO;
  if (!expected) {
    const what = isSmhError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e);
    log(what, errno);
  }
  return errno;
}

/** Per-operation counters of an adapter (`smhfs stats`, metrics). */
export interface OpCounter {
  calls: number;
  errors: number;
  /** Total time in ms, from the op's start to its answer. */
  ms: number;
}

/** The counter of `op`, made on first use. */
function opCounter(counters: Map<string, OpCounter>, op: string): OpCounter {
  let c = counters.get(op);
  if (!c) counters.set(op, (c = { calls: 0, errors: 0, ms: 0 }));
  return c;
}

/**
 * Run one operation `fn` (sync or async), counted and timed under `op`, and answer through `ok`
 * or `bad` (given the ms it took). A sync result is answered without a promise round trip (most
 * ops are one synchronous SQLite call).
 */
export function runOp<T, R>(
  counters: Map<string, OpCounter>,
  op: string,
  fn: () => T | Promise<T>,
  ok: (value: T, ms: number) => R,
  bad: (err: unknown, ms: number) => R,
): R | Promise<R> {
  const c = opCounter(counters, op);
  c.calls++;
  const t0 = performance.now();
  const good = (v: T): R => {
    const ms = performance.now() - t0;
    c.ms += ms;
    return ok(v, ms);
  };
  const failed = (e: unknown): R => {
    const ms = performance.now() - t0;
    c.ms += ms;
    c.errors++;
    return bad(e, ms);
  };
  let r: T | Promise<T>;
  try {
    r = fn();
  } catch (e) {
    return failed(e);
  }
  return r instanceof Promise ? r.then(good, failed) : good(r);
}

/** What `smhfs stats` shows of an adapter: its op counters, open files, io and page cache. */
export function adapterSnapshot(counters: Map<string, OpCounter>, files: OpenFiles): Record<string, unknown> {
  const ops: Record<string, OpCounter> = {};
  for (const [k, v] of [...counters.entries()].sort()) ops[k] = { ...v, ms: Math.round(v.ms) };
  return {
    ops,
    openHandles: files.openHandles,
    openFiles: files.openNodes,
    io: { ...files.stats },
    cache: files.reader.cache.stats(),
  };
}

/** relatime through `accessed`: a read or a listing never fails for its atime (a read-only library keeps it; anything else is logged). */
export function touchAtime(space: { accessed(seen: NodeInfo): void }, log: (line: string) => void, seen: NodeInfo): void {
  try {
    space.accessed(seen);
  } catch (e) {
    if (!isSmhError(e, 'LibraryReadOnly')) log(`smhfs: atime of node ${seen.id} not recorded: ${(e as Error).message}`);
  }
}
