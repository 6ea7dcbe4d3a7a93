/**
 * An in-memory file system on the low-level binding (`LowLevelOps`), written for the binding's
 * tests and used by the bench as the ceiling of the binding (bench/ll-memfs.ts).
 *
 * It keeps POSIX semantics a test can check through the kernel: inodes with lookup counts (a
 * node is freed when the kernel has forgotten it, no name links it and no handle has it open; a
 * count going below zero is recorded in `violations`), new nodes owned by the caller (gid of a
 * setgid parent), nanosecond times, rename flags, xattrs, holes (fallocate, SEEK_HOLE), and
 * readdir snapshots per open directory. It also counts requests per op and the largest read and
 * write it was sent. Hooks (`hooks`) let a test slow an op down, make it async, or throw.
 */
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Attr, Created, Ctx, DirEntry, DirEntryPlus, Entry, FdSlice, LowLevelOps, Open, SetAttr, Statfs, Timespec } from '../../src/fuse/ll/binding.js';

const E = constants.errno;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_ISGID = 0o2000;

export interface Node {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  data: Buffer;
  size: number;
  target?: string;
  children?: Map<string, number>;
  parent?: number;
  xattrs: Map<string, Buffer>;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** references the kernel holds (entries it was sent minus forgets) */
  lookups: number;
  opens: number;
  /** --durable-writes: the file on disk that holds this node's bytes */
  backing?: { path: string; fd: number };
}

export interface MemfsOptions {
  /** writes are counted but not kept (the bench's "discarded" write) */
  discardWrites?: boolean;
  /** writes go to a file in this directory (writeSync from the request buffer), fsync at flush */
  durableDir?: string;
  /** answer every op through a resolved Promise (the async path) */
  async?: boolean;
  /** entries answered with these timeouts (undefined: the mount's) */
  entryTimeout?: number;
  attrTimeout?: number;
}

/** The ops `async: true` answers through a Promise (forget, init and destroy have no answer). */
const ASYNC_OPS = [
  'lookup', 'getattr', 'setattr', 'readlink', 'mknod', 'mkdir', 'symlink', 'link', 'unlink', 'rmdir', 'rename', 'open',
  'create', 'read', 'write', 'flush', 'release', 'fsync', 'opendir', 'readdir', 'readdirplus', 'releasedir', 'fsyncdir',
  'statfs', 'setxattr', 'getxattr', 'listxattr', 'removexattr', 'access', 'fallocate', 'copyFileRange', 'lseek',
] as const;

export type Hook = (ctx: Ctx, ...args: unknown[]) => unknown;

function now(): Timespec {
  const ns = process.hrtime.bigint() - HR0 + EPOCH0;
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}
const HR0 = process.hrtime.bigint();
const EPOCH0 = BigInt(Date.now()) * 1_000_000n;

export class MemFs implements LowLevelOps {
  readonly nodes = new Map<number, Node>();
  readonly violations: string[] = [];
  readonly calls = new Map<string, number>();
  maxWrite = 0;
  maxRead = 0;
  /** per-op hooks: called before the op; a returned value other than undefined is the answer */
  readonly hooks: Partial<Record<keyof LowLevelOps, Hook>> = {};
  /** the last context seen per op (tests check the caller's identity) */
  readonly lastCtx = new Map<string, Ctx>();
  destroyed = false;
  #nextIno = 2;
  #nextFh = 1;
  #handles = new Map<number, { ino: number; flags: number; listing?: Array<[string, number]> }>();
  #opt: MemfsOptions;

  constructor(opt: MemfsOptions = {}) {
    this.#opt = opt;
    const t = now();
    this.nodes.set(1, {
      ino: 1, mode: S_IFDIR | 0o755, nlink: 2, uid: 0, gid: 0, rdev: 0, data: Buffer.alloc(0), size: 0,
      children: new Map(), parent: 1, xattrs: new Map(), atime: t, mtime: t, ctime: t, lookups: 1, opens: 0,
    });
    if (opt.async) {
      // every op answers through a Promise
      for (const k of ASYNC_OPS) {
        const f = this[k] as (...x: unknown[]) => unknown;
        (this as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => Promise.resolve().then(() => f.apply(this, a));
      }
    }
  }

  // ───── helpers for tests and the bench ─────

  node(ino: number): Node | undefined {
    return this.nodes.get(ino);
  }

  /** Put a regular file in the root without any request (its bytes are `data`, shared). */
  addFile(name: string, data: Buffer, mode = 0o644): Node {
    const n = this.#newNode(1, { uid: 0, gid: 0 } as Ctx, S_IFREG | mode);
    n.data = data;
    n.size = data.length;
    this.nodes.get(1)!.children!.set(name, n.ino);
    return n;
  }

  /** The ino at `path` (relative to the root), walking the tree without the kernel. */
  inoOf(path: string): number | undefined {
    let ino = 1;
    for (const part of path.split('/').filter(Boolean)) {
      const next = this.nodes.get(ino)?.children?.get(part);
      if (next === undefined) return undefined;
      ino = next;
    }
    return ino;
  }

  /** Sum of the lookup references the kernel holds, root excluded. */
  lookupsHeld(): number {
    let n = 0;
    for (const x of this.nodes.values()) if (x.ino !== 1) n += x.lookups;
    return n;
  }

  stat(n: Node): Attr {
    return {
      ino: n.ino, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: n.rdev, size: n.size,
      blocks: Math.ceil(n.size / 512), blksize: 4096, atime: n.atime, mtime: n.mtime, ctime: n.ctime,
    };
  }

  #count(op: string, ctx?: Ctx): void {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
    if (ctx) this.lastCtx.set(op, ctx);
  }

  #hook(op: keyof LowLevelOps, ctx: Ctx, args: unknown[]): unknown {
    const h = this.hooks[op];
    return h ? h(ctx, ...args) : undefined;
  }

  #entry(n: Node): Entry {
    n.lookups++;
    return { attr: this.stat(n), entryTimeout: this.#opt.entryTimeout, attrTimeout: this.#opt.attrTimeout };
  }

  #newNode(parent: number, ctx: Ctx, mode: number): Node {
    const p = this.nodes.get(parent)!;
    const t = now();
    const setgid = (p.mode & S_ISGID) !== 0;
    const isDir = (mode & S_IFMT) === S_IFDIR;
    const n: Node = {
      ino: this.#nextIno++, mode: isDir && setgid ? mode | S_ISGID : mode, nlink: isDir ? 2 : 1,
      uid: ctx.uid, gid: setgid ? p.gid : ctx.gid, rdev: 0, data: Buffer.alloc(0), size: 0,
      xattrs: new Map(), atime: t, mtime: t, ctime: t, lookups: 0, opens: 0,
    };
    if (isDir) {
      n.children = new Map();
      n.parent = parent;
    }
    this.nodes.set(n.ino, n);
    return n;
  }

  #dir(ino: number): Node | number {
    const d = this.nodes.get(ino);
    if (!d) return -E.ENOENT;
    if (!d.children) return -E.ENOTDIR;
    return d;
  }

  #touchDir(d: Node): void {
    d.mtime = d.ctime = now();
  }

  /** Free a node nobody refers to any more (no name, no kernel reference, no open handle). */
  #maybeFree(n: Node): void {
    if (n.ino === 1 || n.nlink > 0 || n.lookups > 0 || n.opens > 0) return;
    this.nodes.delete(n.ino);
    if (n.backing) {
      closeSync(n.backing.fd);
      unlinkSync(n.backing.path);
      n.backing = undefined;
    }
  }

  #unlinkNode(n: Node): void {
    n.nlink = n.children ? 0 : n.nlink - 1;
    n.ctime = now();
    this.#maybeFree(n);
  }

  #add(parent: number, name: string, ctx: Ctx, mode: number, op: string): Node | number {
    this.#count(op, ctx);
    const d = this.#dir(parent);
    if (typeof d === 'number') return d;
    if (d.children!.has(name)) return -E.EEXIST;
    if (Buffer.byteLength(name) > 255) return -E.ENAMETOOLONG;
    const n = this.#newNode(parent, ctx, mode);
    d.children!.set(name, n.ino);
    if (n.children) d.nlink++;
    this.#touchDir(d);
    return n;
  }

  // ───── LowLevelOps ─────

  init(): void {
    this.#count('init');
  }

  destroy(): void {
    this.destroyed = true;
  }

  lookup(parent: number, name: string, ctx: Ctx): Entry | number | Promise<Entry | number> {
    this.#count('lookup', ctx);
    const h = this.#hook('lookup', ctx, [parent, name]);
    if (h !== undefined) return h as Entry | number | Promise<Entry | number>;
    const d = this.#dir(parent);
    if (typeof d === 'number') return d;
    const ino = name === '.' ? parent : name === '..' ? d.parent! : d.children!.get(name);
    if (ino === undefined) return -E.ENOENT;
    return this.#entry(this.nodes.get(ino)!);
  }

  forget(ino: number, nlookup: number): void {
    this.#count('forget');
    const n = this.nodes.get(ino);
    if (!n) {
      this.violations.push(`forget of unknown ino ${ino} (${nlookup})`);
      return;
    }
    n.lookups -= nlookup;
    if (n.lookups < 0) this.violations.push(`ino ${ino}: lookup count ${n.lookups} after forget(${nlookup})`);
    this.#maybeFree(n);
  }

  getattr(ino: number, _fh: number | undefined, ctx: Ctx): Attr | number {
    this.#count('getattr', ctx);
    const h = this.#hook('getattr', ctx, [ino]);
    if (h !== undefined) return h as Attr | number;
    const n = this.nodes.get(ino);
    return n ? this.stat(n) : -E.ENOENT;
  }

  setattr(ino: number, set: SetAttr, _fh: number | undefined, ctx: Ctx): Attr | number {
    this.#count('setattr', ctx);
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    const t = now();
    if (set.mode !== undefined) n.mode = (n.mode & S_IFMT) | (set.mode & 0o7777);
    if (set.uid !== undefined) n.uid = set.uid;
    if (set.gid !== undefined) n.gid = set.gid;
    if (set.size !== undefined) {
      this.#resize(n, set.size);
      n.mtime = t;
    }
    if (set.atime !== undefined) n.atime = set.atime === 'now' ? t : set.atime;
    if (set.mtime !== undefined) n.mtime = set.mtime === 'now' ? t : set.mtime;
    n.ctime = set.ctime ?? t;
    return this.stat(n);
  }

  #resize(n: Node, size: number): void {
    if (this.#opt.discardWrites) {
      n.size = size;
      return;
    }
    if (size > n.data.length) {
      const grown = Buffer.alloc(Math.max(size, Math.min(n.data.length * 2, size + (64 << 20))));
      n.data.copy(grown, 0, 0, n.size);
      n.data = grown;
    } else if (size < n.size) {
      n.data.fill(0, size, n.size); // a later extension reads zeros
    }
    n.size = size;
  }

  readlink(ino: number, ctx: Ctx): string | number {
    this.#count('readlink', ctx);
    const h = this.#hook('readlink', ctx, [ino]);
    if (h !== undefined) return h as string | number;
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    return n.target ?? -E.EINVAL;
  }

  mknod(parent: number, name: string, mode: number, rdev: number, ctx: Ctx): Entry | number {
    const n = this.#add(parent, name, ctx, mode, 'mknod');
    if (typeof n === 'number') return n;
    n.rdev = rdev;
    return this.#entry(n);
  }

  mkdir(parent: number, name: string, mode: number, ctx: Ctx): Entry | number {
    const n = this.#add(parent, name, ctx, S_IFDIR | (mode & 0o7777), 'mkdir');
    return typeof n === 'number' ? n : this.#entry(n);
  }

  symlink(target: string, parent: number, name: string, ctx: Ctx): Entry | number {
    const n = this.#add(parent, name, ctx, S_IFLNK | 0o777, 'symlink');
    if (typeof n === 'number') return n;
    n.target = target;
    n.size = Buffer.byteLength(target);
    return this.#entry(n);
  }

  link(ino: number, newParent: number, newName: string, ctx: Ctx): Entry | number {
    this.#count('link', ctx);
    const n = this.nodes.get(ino);
    const d = this.#dir(newParent);
    if (!n) return -E.ENOENT;
    if (typeof d === 'number') return d;
    if (n.children) return -E.EPERM;
    if (d.children!.has(newName)) return -E.EEXIST;
    d.children!.set(newName, ino);
    n.nlink++;
    n.ctime = now();
    this.#touchDir(d);
    return this.#entry(n);
  }

  unlink(parent: number, name: string, ctx: Ctx): number {
    this.#count('unlink', ctx);
    const d = this.#dir(parent);
    if (typeof d === 'number') return d;
    const ino = d.children!.get(name);
    if (ino === undefined) return -E.ENOENT;
    const n = this.nodes.get(ino)!;
    if (n.children) return -E.EISDIR;
    d.children!.delete(name);
    this.#touchDir(d);
    this.#unlinkNode(n);
    return 0;
  }

  rmdir(parent: number, name: string, ctx: Ctx): number {
    this.#count('rmdir', ctx);
    const d = this.#dir(parent);
    if (typeof d === 'number') return d;
    const ino = d.children!.get(name);
    if (ino === undefined) return -E.ENOENT;
    const n = this.nodes.get(ino)!;
    if (!n.children) return -E.ENOTDIR;
    if (n.children.size > 0) return -E.ENOTEMPTY;
    d.children!.delete(name);
    d.nlink--;
    this.#touchDir(d);
    this.#unlinkNode(n);
    return 0;
  }

  rename(parent: number, name: string, newParent: number, newName: string, flags: number, ctx: Ctx): number {
    this.#count('rename', ctx);
    const RENAME_NOREPLACE = 1;
    const RENAME_EXCHANGE = 2;
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return -E.EINVAL;
    const d = this.#dir(parent);
    const nd = this.#dir(newParent);
    if (typeof d === 'number') return d;
    if (typeof nd === 'number') return nd;
    const ino = d.children!.get(name);
    if (ino === undefined) return -E.ENOENT;
    const n = this.nodes.get(ino)!;
    const existing = nd.children!.get(newName);
    if (existing === ino) return 0;
    // a directory cannot move into itself
    for (let p = newParent; ; p = this.nodes.get(p)!.parent!) {
      if (p === ino) return -E.EINVAL;
      if (p === 1) break;
    }
    if (flags & RENAME_EXCHANGE) {
      if (existing === undefined) return -E.ENOENT;
      const other = this.nodes.get(existing)!;
      d.children!.set(name, existing);
      nd.children!.set(newName, ino);
      if (n.children) n.parent = newParent;
      if (other.children) other.parent = parent;
      if (!!n.children !== !!other.children && parent !== newParent) {
        const dirMoved = n.children ? 1 : -1;
        d.nlink -= dirMoved;
        nd.nlink += dirMoved;
      }
      this.#touchDir(d);
      this.#touchDir(nd);
      return 0;
    }
    if (existing !== undefined) {
      if (flags & RENAME_NOREPLACE) return -E.EEXIST;
      const victim = this.nodes.get(existing)!;
      if (victim.children && !n.children) return -E.EISDIR;
      if (!victim.children && n.children) return -E.ENOTDIR;
      if (victim.children && victim.children.size > 0) return -E.ENOTEMPTY;
      if (victim.children) nd.nlink--;
      this.#unlinkNode(victim);
    }
    d.children!.delete(name);
    nd.children!.set(newName, ino);
    if (n.children && parent !== newParent) {
      d.nlink--;
      nd.nlink++;
      n.parent = newParent;
    }
    n.ctime = now();
    this.#touchDir(d);
    this.#touchDir(nd);
    return 0;
  }

  #openNode(ino: number, flags: number): number {
    const n = this.nodes.get(ino)!;
    const fh = this.#nextFh++;
    n.opens++;
    this.#handles.set(fh, { ino, flags });
    const O_TRUNC = 0o1000; // atomic_o_trunc: O_TRUNC arrives here, not as a setattr
    if (flags & O_TRUNC && (flags & 3) !== 0) this.#resize(n, 0);
    return fh;
  }

  open(ino: number, flags: number, ctx: Ctx): Open | number | Promise<Open | number> {
    this.#count('open', ctx);
    const h = this.#hook('open', ctx, [ino, flags]);
    if (h !== undefined) return h as Open | number;
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    if (n.children) return -E.EISDIR;
    if (this.#opt.durableDir && !n.backing && (flags & 3) !== 0) this.#back(n);
    return this.#openNode(ino, flags);
  }

  #back(n: Node): void {
    const path = join(this.#opt.durableDir!, `n${n.ino}`);
    n.backing = { path, fd: openSync(path, 'w+') };
  }

  create(parent: number, name: string, mode: number, flags: number, ctx: Ctx): Created | number {
    const n = this.#add(parent, name, ctx, S_IFREG | (mode & 0o7777), 'create');
    if (typeof n === 'number') return n;
    if (this.#opt.durableDir) this.#back(n);
    const fh = this.#openNode(n.ino, flags);
    return { ...this.#entry(n), fh };
  }

  read(ino: number, fh: number, size: number, offset: number, ctx: Ctx): Uint8Array | FdSlice | number | Promise<Uint8Array | FdSlice | number> {
    this.#count('read', ctx);
    if (size > this.maxRead) this.maxRead = size;
    const h = this.#hook('read', ctx, [ino, fh, size, offset]);
    if (h !== undefined) return h as Uint8Array | number;
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    if (offset >= n.size) return 0;
    const end = Math.min(n.size, offset + size);
    if (n.backing) return { fd: n.backing.fd, position: offset };
    if (end > n.data.length) {
      // a discarded-writes file has no bytes: zeros
      return Buffer.alloc(end - offset);
    }
    return n.data.subarray(offset, end);
  }

  write(ino: number, _fh: number, data: Buffer, offset: number, _flags: number, ctx: Ctx): number | Promise<number> {
    this.#count('write', ctx);
    if (data.length > this.maxWrite) this.maxWrite = data.length;
    const h = this.#hook('write', ctx, [ino, data, offset]);
    if (h !== undefined) return h as number | Promise<number>;
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    const end = offset + data.length;
    if (n.backing) {
      writeSync(n.backing.fd, data, 0, data.length, offset);
      if (end > n.size) n.size = end;
    } else if (this.#opt.discardWrites) {
      if (end > n.size) n.size = end;
    } else {
      if (end > n.size) this.#resize(n, end);
      data.copy(n.data, offset);
    }
    n.mtime = n.ctime = now();
    return data.length;
  }

  flush(ino: number, _fh: number, ctx: Ctx): number {
    this.#count('flush', ctx);
    const n = this.nodes.get(ino);
    // close(2) waits for FLUSH (not RELEASE): durable means synced here
    if (n?.backing) fsyncSync(n.backing.fd);
    return 0;
  }

  release(ino: number, fh: number, _flags: number, ctx: Ctx): number {
    this.#count('release', ctx);
    const hd = this.#handles.get(fh);
    if (!hd || hd.ino !== ino) {
      this.violations.push(`release of unknown handle ${fh} (ino ${ino})`);
      return 0;
    }
    this.#closeHandle(ino, fh);
    return 0;
  }

  #closeHandle(ino: number, fh: number): void {
    this.#handles.delete(fh);
    const n = this.nodes.get(ino);
    if (n) {
      n.opens--;
      this.#maybeFree(n);
    }
  }

  fsync(ino: number, _fh: number, _datasync: boolean, ctx: Ctx): number {
    this.#count('fsync', ctx);
    const n = this.nodes.get(ino);
    if (n?.backing) fsyncSync(n.backing.fd);
    return 0;
  }

  opendir(ino: number, flags: number, ctx: Ctx): Open | number {
    this.#count('opendir', ctx);
    const d = this.#dir(ino);
    if (typeof d === 'number') return d;
    const fh = this.#nextFh++;
    d.opens++;
    this.#handles.set(fh, { ino, flags, listing: [['.', ino], ['..', d.parent!], ...d.children!.entries()] });
    return fh;
  }

  #listing(ino: number, fh: number): Array<[string, number]> | number {
    const hd = this.#handles.get(fh);
    if (!hd || hd.ino !== ino || !hd.listing) return -E.EBADF;
    return hd.listing;
  }

  readdir(ino: number, fh: number, offset: number, _size: number, ctx: Ctx): DirEntry[] | number {
    this.#count('readdir', ctx);
    const l = this.#listing(ino, fh);
    if (typeof l === 'number') return l;
    const out: DirEntry[] = [];
    for (let i = offset; i < l.length && out.length < 256; i++) {
      const [name, cino] = l[i]!;
      const n = this.nodes.get(cino);
      out.push({ name, ino: cino, mode: n ? n.mode : S_IFREG, nextOffset: i + 1 });
    }
    return out;
  }

  readdirplus(ino: number, fh: number, offset: number, size: number, ctx: Ctx): DirEntryPlus[] | number {
    this.#count('readdirplus', ctx);
    const l = this.#listing(ino, fh);
    if (typeof l === 'number') return l;
    const out: DirEntryPlus[] = [];
    // about what fits; the binding gives back (forget) what does not
    const room = Math.max(1, Math.floor(size / 160));
    for (let i = offset; i < l.length && out.length < room; i++) {
      const [name, cino] = l[i]!;
      const n = this.nodes.get(cino);
      if (!n) continue; // freed since opendir: skipped, so say where the next one is
      const dot = name === '.' || name === '..';
      out.push({ name, entry: dot ? { attr: this.stat(n) } : this.#entry(n), nextOffset: i + 1 });
    }
    return out;
  }

  releasedir(ino: number, fh: number, _flags: number, ctx: Ctx): number {
    this.#count('releasedir', ctx);
    this.#closeHandle(ino, fh);
    return 0;
  }

  fsyncdir(_ino: number, _fh: number, _datasync: boolean, ctx: Ctx): number {
    this.#count('fsyncdir', ctx);
    return 0;
  }

  statfs(_ino: number, ctx: Ctx): Statfs {
    this.#count('statfs', ctx);
    let bytes = 0;
    for (const n of this.nodes.values()) bytes += n.size;
    const total = 1 << 20; // 4 GiB of 4 KiB blocks
    const used = Math.ceil(bytes / 4096);
    return { bsize: 4096, blocks: total, bfree: Math.max(0, total - used), bavail: Math.max(0, total - used), files: 1 << 20, ffree: (1 << 20) - this.nodes.size, namemax: 255 };
  }

  setxattr(ino: number, name: string, value: Buffer, flags: number, ctx: Ctx): number {
    this.#count('setxattr', ctx);
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    const XATTR_CREATE = 1;
    const XATTR_REPLACE = 2;
    if (flags & XATTR_CREATE && n.xattrs.has(name)) return -E.EEXIST;
    if (flags & XATTR_REPLACE && !n.xattrs.has(name)) return -E.ENODATA;
    n.xattrs.set(name, Buffer.from(value)); // kept past the request: a copy
    n.ctime = now();
    return 0;
  }

  getxattr(ino: number, name: string, ctx: Ctx): Uint8Array | number {
    this.#count('getxattr', ctx);
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    return n.xattrs.get(name) ?? -E.ENODATA;
  }

  listxattr(ino: number, ctx: Ctx): string[] | number {
    this.#count('listxattr', ctx);
    const n = this.nodes.get(ino);
    return n ? [...n.xattrs.keys()] : -E.ENOENT;
  }

  removexattr(ino: number, name: string, ctx: Ctx): number {
    this.#count('removexattr', ctx);
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    return n.xattrs.delete(name) ? 0 : -E.ENODATA;
  }

  /** Only asked without default_permissions: the mode bits against the caller. */
  access(ino: number, mask: number, ctx: Ctx): number {
    this.#count('access', ctx);
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    if (mask === 0 || ctx.uid === 0) return 0;
    const bits = ctx.uid === n.uid ? (n.mode >> 6) & 7 : ctx.gid === n.gid ? (n.mode >> 3) & 7 : n.mode & 7;
    return (bits & mask) === mask ? 0 : -E.EACCES;
  }

  fallocate(ino: number, _fh: number, mode: number, offset: number, length: number, ctx: Ctx): number {
    this.#count('fallocate', ctx);
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    const KEEP_SIZE = 1;
    const PUNCH_HOLE = 2;
    if (mode & ~(KEEP_SIZE | PUNCH_HOLE)) return -E.EOPNOTSUPP;
    if (mode & PUNCH_HOLE) {
      if (!(mode & KEEP_SIZE)) return -E.EOPNOTSUPP;
      n.data.fill(0, Math.min(offset, n.size), Math.min(offset + length, n.size));
    } else if (!(mode & KEEP_SIZE) && offset + length > n.size) {
      this.#resize(n, offset + length);
    }
    n.mtime = n.ctime = now();
    return 0;
  }

  copyFileRange(inoIn: number, _fhIn: number, offIn: number, inoOut: number, _fhOut: number, offOut: number, len: number, _flags: number, ctx: Ctx): number {
    this.#count('copyFileRange', ctx);
    const a = this.nodes.get(inoIn);
    const b = this.nodes.get(inoOut);
    if (!a || !b) return -E.ENOENT;
    const n = Math.max(0, Math.min(len, a.size - offIn));
    if (n === 0) return 0;
    const bytes = Buffer.from(a.data.subarray(offIn, offIn + n));
    if (offOut + n > b.size) this.#resize(b, offOut + n);
    bytes.copy(b.data, offOut);
    b.mtime = b.ctime = now();
    return n;
  }

  lseek(ino: number, _fh: number, offset: number, whence: number, ctx: Ctx): number {
    this.#count('lseek', ctx);
    const n = this.nodes.get(ino);
    if (!n) return -E.ENOENT;
    const SEEK_DATA = 3;
    const SEEK_HOLE = 4;
    if (offset >= n.size) return -E.ENXIO;
    if (whence === SEEK_DATA) return offset; // all data
    if (whence === SEEK_HOLE) return n.size; // the implicit hole at the end
    return -E.EINVAL;
  }
}
