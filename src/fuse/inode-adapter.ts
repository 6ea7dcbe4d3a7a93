/**
 * The inode-addressed FUSE adapter: `LowLevelOps` of our libfuse 3 binding (./ll/binding.ts)
 * over the store's id-addressed operations (lookup, statNode, readdir(id), mkdirAt, unlinkAt,
 * renameAt, createFileAt, symlinkAt, setattr(id), xattrs by id) and the mount's open files
 * (src/vfs/open-files.ts). Like ./adapter.ts (fuse-native, by path) it only translates — ids to
 * inos, flags and modes to store arguments, NodeInfo to attributes (./translate.ts, shared), errors
 * to -errno through the one mapping — and holds no rule.
 * Over 600 lines because it is the one table of every low-level op (~40), each a few lines of
 * translation; splitting the table would scatter the ino/fh bookkeeping the ops share.
 *
 * - ino = node id, except that the space's root answers as FUSE_ROOT_ID (1) and node 1, if it is
 *   not the root, as the root's id (a swap: one bijection, no table). The generation is the node's
 *   birth time in µs: SQLite may hand a deleted node's id to a new node, never with the same birth.
 * - The kernel's lookup references are counted per ino (every Entry it receives is one, `forget`
 *   gives them back); a node unlinked while open keeps answering getattr, read and write through
 *   its handles until the last release (D7; OpenFiles holds its bytes), with st_nlink 0.
 * - New nodes take the caller's uid/gid (the store gives a setgid parent's group, and setgid to new
 *   directories); modes arrive with the caller's umask applied by the kernel. Times cross as
 *   seconds + nanoseconds; the store keeps microseconds.
 * - Reads answer synchronously from cached pages (a view, sent before the call returns: no copy);
 *   otherwise from the async read path. Writes go straight from the request buffer into the
 *   staging file when they can (`writeNow`), else through the async path (the binding keeps the
 *   buffer for it).
 * - rename carries renameat2's flags: RENAME_NOREPLACE and RENAME_EXCHANGE go to the store (one
 *   transaction each); anything else is EINVAL.
 * - Listings are readdirplus (always): one store page per reply, each entry a lookup reference
 *   with its attributes, resumed after the last name sent (./dir-cursor.ts), packed from the
 *   store's numbers with no object per entry (./dir-plus.ts, issue 15). With `namesOnly`, a
 *   process that does not stat what it lists gets its non-directory entries as names only
 *   (./listing-policy.ts), judged from its own lookups.
 * - Cache invalidation: `attachKernel` gives the adapter the session's invalidation calls; the
 *   server (and i11-inval's change follower) ask through `invalidateEntry(dirId, name)` and
 *   `invalidateNode(id)` in node ids.
 */
import { availableParallelism, constants } from 'node:os';
import { fail, isSmhError } from '../errors.js';
import { DS, type Attrs, type NodeInfo } from '../store/types.js';
import type { Attr, Created, Ctx, DirEntry, Entry, FdSlice, LowLevelOps, Open, SetAttr, Statfs, Timespec } from './ll/binding.js';
import type { PackedDirPlus } from './ll/binding.js';
import { packPlus, type PackContext } from './dir-plus.js';
import { RefCounts } from './ref-counts.js';
import { ListingPolicy } from './listing-policy.js';
import type { AdapterOptions } from './adapter.js';
import { STATS_XATTR } from './adapter.js';
import type { ChangeFollower } from '../vfs/changes.js';
import { adapterSnapshot, errnoFor, nodeStat, openMode, runOp, statfsNumbers, touchAtime, type OpCounter } from './translate.js';
import type { FuseLibrary, FuseSpace } from './port.js';
import { OpenFiles, type Handle } from '../vfs/open-files.js';
import { DirCursor, type DirHooks, type DirStatsPage } from './dir-cursor.js';
import type { ContentReader } from '../vfs/reader.js';
import type { BlobFile } from '../blob/types.js';

const E = constants.errno;
const FUSE_ROOT_ID = 1;
const W_OK = 2;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
/** renameat2(2) flags (linux/fs.h). */
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
/** st_blksize: what `cat`, `cp` use as their buffer size; one FUSE request (max_write, 1 MiB). */
const BLKSIZE = 1 << 20;

export interface InodeAdapterOptions extends AdapterOptions {
  /** `-o uid=`, `gid=`, `umask=`: what every node shows (libfuse 3's low level leaves them to us). */
  show?: { uid?: number; gid?: number; umask?: number };
  /**
   * The change follower sees every change (the library's feed hears all processes): the kernel
   * may keep bound links' names and attributes as long as anything else's, since a change to
   * their target invalidates them. Otherwise a bound link is asked again on each use.
   */
  cacheBoundLinks?: boolean;
  /**
   * readdirplus sends non-directory entries as names only to a process that lists without
   * stat-ing (find, `ls`), judged per process from its lookups (./listing-policy.ts). The mount
   * turns it on; off, every entry carries its attributes.
   */
  namesOnly?: boolean | ListingPolicy;
  /**
   * With `namesOnly`: a names-only reply holds at most this many bytes, and once it is sent the
   * handle reads its next page ahead (./dir-cursor.ts `prepare`), so the reader consumes one
   * page while the next is read (default 64 KiB, ~400 entries; 0: off). Only where the store can
   * tell that nothing changed meanwhile (Space.listingVersion: SQLite), and by default only when
   * the mount may run on more than one CPU (os.availableParallelism: its affinity).
   */
  readAheadBytes?: number;
}

/** A names-only reply made ahead (#pagePlus): the page it packs, and the references to count when it is sent. */
interface Ahead {
  page: DirStatsPage;
  packed: PackedDirPlus;
  refs: number[];
}
const NAMES_PLAN = { namesOnly: true, probes: 0 } as const;

/** InodeAdapterOptions.readAheadBytes' default: small enough that a directory's first reply is a small part of it. */
const READ_AHEAD_BYTES = 64 << 10;

/** The session's invalidation calls (./ll/binding.ts LowLevelSession), in inos. */
export interface KernelCaches {
  invalidateEntry(parentIno: number, name: string): Promise<boolean>;
  invalidateInode(ino: number, offset?: number, length?: number): Promise<boolean>;
  /** Entries, then inodes, in one call (resolves with how many dropped something). */
  invalidateBatch?(entries: ReadonlyArray<readonly [number, string]>, inodes: readonly number[]): Promise<number>;
}

/**
 * A bound link changes as a side effect of changes to another name (its target moved: a new
 * readlink answer and st_size; its target deleted: the link went to the bin with it, L12), which
 * the kernel cannot know. Where the change follower cannot tell it (`cacheBoundLinks` off: a
 * library whose feed does not hear other hosts), the kernel keeps neither a bound link's name
 * nor its attributes: each use asks again, as through fuse-native's paths.
 */
const BOUND_LINK_TIMEOUTS = { entryTimeout: 0, attrTimeout: 0 } as const;

/** A store time (µs and the nanoseconds below it, M2) as the kernel's seconds + nanoseconds. */
const timespec = (us: number, nsRem: number): Timespec => {
  const sec = Math.floor(us / 1e6);
  return { sec, nsec: (us - sec * 1e6) * 1000 + nsRem };
};
/** A setattr time as the store's µs and the nanoseconds below it; UTIME_NOW is the store's clock (µs). */
const storeTime = (t: Timespec | 'now'): { us: number; nsRem: number } =>
  t === 'now' ? { us: Date.now() * 1000, nsRem: 0 } : { us: t.sec * 1e6 + Math.floor(t.nsec / 1000), nsRem: t.nsec % 1000 };

export class InodeAdapter {
  readonly files: OpenFiles;
  readonly counters = new Map<string, OpCounter>();
  readonly #lib: FuseLibrary;
  readonly #space: FuseSpace;
  readonly #opts: InodeAdapterOptions;
  readonly #log: (line: string) => void;
  readonly #root: number;
  /** The kernel's lookup references, per node id. */
  readonly #lookups = new RefCounts();
  /** Open directory handles: the names each has sent, by offset (./dir-cursor.ts). */
  readonly #dirs = new Map<number, DirCursor>();
  #nextDir = 1;
  /** libfuse 2's auto_cache: an open keeps the kernel's pages when mtime and size are as at the last open. */
  readonly #seenVersion = new Map<number, string>();
  #kernel: KernelCaches | undefined;
  /** Invalidations handed to the kernel: calls into the session, and notifications in them (`smhfs stats`). */
  readonly #sent = { calls: 0, notifications: 0 };
  #follower: Pick<ChangeFollower, 'own'> | undefined;
  /** Which listing entries carry attributes, per process (undefined: all of them). */
  readonly listing: ListingPolicy | undefined;
  /** names-only replies' size when pages are read ahead (0: not; undefined: not asked the store yet) */
  #readAhead: number | undefined;
  /** the last readdirplus answer: once the binding has sent it, the next one reuses its numbers */
  #spare: PackedDirPlus | undefined;
  /** the memory of the last names-only store page read for a request: done with once it is packed */
  #pageSpare: ArrayBuffer | undefined;

  constructor(lib: FuseLibrary, space: FuseSpace, reader: ContentReader, opts: InodeAdapterOptions) {
    this.listing = opts.namesOnly instanceof ListingPolicy ? opts.namesOnly : opts.namesOnly ? new ListingPolicy() : undefined;
    this.#lib = lib;
    this.#space = space;
    this.#opts = opts;
    this.#root = space.root;
    this.#log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.files = new OpenFiles(lib, space, reader);
  }

  // ───────────────────────────── ids, attributes ─────────────────────────────

  /** node id ↔ ino (an involution: the same swap both ways). */
  inoOf(id: number): number {
    return id === this.#root ? FUSE_ROOT_ID : id === FUSE_ROOT_ID ? this.#root : id;
  }

  /** The kernel's lookup references on node `id` (0: it holds none). */
  lookups(id: number): number {
    return this.#lookups.count(id);
  }

  /** Route invalidations to the kernel (the server does it once the session is mounted). */
  attachKernel(kernel: KernelCaches | undefined): void {
    this.#kernel = kernel;
  }

  /**
   * The change follower of this mount (src/vfs/changes.ts): each request's store call runs in its
   * `own`, so what the reply tells the kernel (the name asked about, the directory's attributes,
   * which the kernel drops itself) is not invalidated again; side effects are (H4).
   */
  attachFollower(follower: Pick<ChangeFollower, 'own'> | undefined): void {
    this.#follower = follower;
  }

  /**
   * Drop the kernel's cached name `name` in directory `dirId` (node ids); false when nothing was
   * cached or no kernel is attached. A name (positive or negative) is cached only under a
   * directory the kernel holds an inode for, so nothing is sent for a directory it was never
   * given or has forgotten (a cascade of 2,000 links names 2,000 entries in the bin: issue 15).
   */
  invalidateEntry(dirId: number, name: string): Promise<boolean> {
    if (!this.#lookups.has(dirId) && dirId !== this.#root) return Promise.resolve(false);
    if (!this.#kernel) return Promise.resolve(false);
    this.#sent.calls++;
    this.#sent.notifications++;
    return this.#kernel.invalidateEntry(this.inoOf(dirId), name);
  }

  /** Drop the kernel's cached attributes and data (a link's target) of node `id`. */
  invalidateNode(id: number): Promise<boolean> {
    if (!this.#lookups.has(id) && id !== this.#root) return Promise.resolve(false); // the kernel has no inode for it
    if (!this.#kernel) return Promise.resolve(false);
    this.#sent.calls++;
    this.#sent.notifications++;
    return this.#kernel.invalidateInode(this.inoOf(id));
  }

  /**
   * `invalidateEntry` for each (directory, name) and then `invalidateNode` for each node, by the
   * same rules, handed to the kernel as one batch (one call into the addon: issue 15's cascade is
   * 4,000 of them). Resolves with how many dropped something.
   */
  invalidateBatch(entries: ReadonlyArray<readonly [number, string]>, nodes: readonly number[]): Promise<number> {
    const kernel = this.#kernel;
    if (!kernel) return Promise.resolve(0);
    const held = (id: number): boolean => id === this.#root || this.#lookups.has(id);
    const e: Array<readonly [number, string]> = [];
    for (const [dir, name] of entries) if (held(dir)) e.push([this.inoOf(dir), name]);
    const n: number[] = [];
    for (const id of nodes) if (held(id)) n.push(this.inoOf(id));
    if (e.length + n.length === 0) return Promise.resolve(0);
    this.#sent.notifications += e.length + n.length;
    if (kernel.invalidateBatch) {
      this.#sent.calls++;
      return kernel.invalidateBatch(e, n);
    }
    this.#sent.calls += e.length + n.length;
    return Promise.all([...e.map(([p, name]) => kernel.invalidateEntry(p, name)), ...n.map((i) => kernel.invalidateInode(i))]).then((r) => r.filter(Boolean).length);
  }

  /** Drop everything the kernel caches of this mount's nodes (the follower fell behind the change feed). */
  async invalidateAll(): Promise<void> {
    await Promise.all([this.#root, ...this.#lookups.ids()].map((id) => this.invalidateNode(id)));
  }

  #attr(info: NodeInfo, view?: Handle['view']): Attr {
    const open = info.kind === 'file' ? this.files.node(info.id) : undefined;
    const show = this.#opts.show;
    const owner = this.#opts.presentAs ?? (show && (show.uid !== undefined || show.gid !== undefined) ? { uid: show.uid ?? info.uid, gid: show.gid ?? info.gid } : undefined);
    const st = nodeStat(info, open, BLKSIZE, view, owner);
    // as libfuse 2's umask=: every node shows 0777 minus it
    const mode = show?.umask !== undefined ? (st.mode & S_IFMT) | (0o777 & ~show.umask) : st.mode;
    return {
      ino: this.inoOf(st.id),
      ...(info.link?.flavour === 'bound' && !this.#opts.cacheBoundLinks ? { attrTimeout: BOUND_LINK_TIMEOUTS.attrTimeout } : {}),
      mode,
      // A file whose name this mount removed has no name left (POSIX st_nlink 0) while open.
      nlink: open?.orphan ? 0 : st.nlink,
      uid: st.uid,
      gid: st.gid,
      size: st.size,
      rdev: st.rdev,
      blocks: st.blocks,
      blksize: st.blksize,
      atime: timespec(st.atimeUs, st.atimeNsRem),
      mtime: timespec(st.mtimeUs, st.mtimeNsRem),
      ctime: timespec(st.ctimeUs, st.ctimeNsRem),
    };
  }

  /** An Entry the kernel will hold a reference on. */
  #entry(info: NodeInfo): Entry {
    this.#lookups.add(info.id);
    return this.#entryOf(info);
  }

  /** #entry's answer without counting the reference (a reply made ahead counts it when sent). */
  #entryOf(info: NodeInfo): Entry {
    return { attr: this.#attr(info), generation: info.birthtimeUs, ...(info.link?.flavour === 'bound' && !this.#opts.cacheBoundLinks ? BOUND_LINK_TIMEOUTS : {}) };
  }

  /** The node as the store has it; an open file whose node is gone (purged) answers as last seen. */
  #info(id: number): NodeInfo {
    try {
      const info = this.#space.statNode(id);
      const open = this.files.node(id);
      if (open) open.info = info;
      return info;
    } catch (e) {
      const open = isSmhError(e, 'FileNotFound') ? this.files.node(id) : undefined;
      if (open) return open.info;
      throw e;
    }
  }

  // ───────────────────────────── plumbing ─────────────────────────────

  /**
   * Run `fn` and give the binding its answer: the value, or -errno (unexpected errors logged and
   * answered EIO). Sync results stay sync: most ops are one synchronous SQLite call.
   */
  #run<T>(op: string, ino: number, name: string | undefined, fn: () => T | Promise<T>): T | number | Promise<T | number> {
    const onOp = this.#opts.onOp;
    const follower = this.#follower;
    // ops on a name (create, mkdir, unlink, rename's source, link's new name …) answer for it, and
    // the kernel drops the directory's attributes itself; what they change elsewhere is invalidated
    const direct = follower && name !== undefined && op !== 'lookup' ? { entries: [[this.inoOf(ino), name] as const], nodes: [this.inoOf(ino)] } : undefined;
    return runOp<T, T | number>(
      this.counters,
      op,
      direct ? () => follower!.own(direct, fn) : fn,
      (v, ms) => {
        onOp?.(op, this.#pathOf(ino, name), ms, 0);
        return v;
      },
      (e, ms) => {
        const errno = errnoFor(e, (msg, n) => this.#log(`smhfs: ${op} ${this.#pathOf(ino, name)}: ${msg} (returned ${n === E.EIO ? 'EIO' : n})`));
        onOp?.(op, this.#pathOf(ino, name), ms, errno);
        return -errno;
      },
    );
  }


  /** How logs and metrics name a request: the mount path of `ino` (and `name` in it), when it has one. */
  #pathOf(ino: number, name: string | undefined): string {
    let p: string;
    try {
      p = this.#space.statNode(this.inoOf(ino)).path;
    } catch {
      p = `(node ${this.inoOf(ino)})`;
    }
    const dir = `/${p}`;
    return name === undefined ? dir : `${dir === '/' ? '' : dir}/${name}`;
  }

  // ───────────────────────────── operations ─────────────────────────────

  ops(): LowLevelOps {
    const s = this.#space;
    const files = this.files;
    const id = (ino: number): number => this.inoOf(ino);
    const owner = (ctx: Ctx): { uid: number; gid: number } => ({ uid: ctx.uid, gid: ctx.gid });

    return {
      lookup: (parent, name, ctx) =>
        this.#run('lookup', parent, name, () => {
          const info = s.lookup(id(parent), name);
          this.listing?.looked(ctx.pid, id(parent), name, info.kind === 'dir');
          return this.#entry(info);
        }),

      forget: (ino, n) => {
        const nodeId = id(ino);
        if (this.#lookups.release(nodeId, n) === 0) this.#seenVersion.delete(nodeId);
      },

      getattr: (ino, fh, ctx) =>
        this.#run('getattr', ino, undefined, () => {
          const info = this.#info(id(ino));
          this.listing?.stated(ctx.pid, info.kind === 'dir');
          // fstat answers with the size of the version that handle reads (D7)
          const h = fh !== undefined && info.kind === 'file' ? this.#handleOrNone(fh) : undefined;
          return this.#attr(info, h?.view);
        }),

      setattr: (ino, set, fh) => this.#run('setattr', ino, undefined, () => this.#setattr(id(ino), set, fh)),

      readlink: (ino) => this.#run('readlink', ino, undefined, () => s.readlink(id(ino))),

      mknod: (parent, name, mode, rdev, ctx) =>
        this.#run('mknod', parent, name, () =>
          this.#entry(
            (mode & S_IFMT) === S_IFREG
              ? s.createFileAt(id(parent), name, { mode: mode & 0o7777, ...owner(ctx) })
              : s.mknodAt(id(parent), name, { mode, rdev, ...owner(ctx) }),
          ),
        ),

      mkdir: (parent, name, mode, ctx) =>
        this.#run('mkdir', parent, name, () => this.#entry(s.mkdirAt(id(parent), name, { mode: mode & 0o7777, ...owner(ctx), conflict: 'ask' }).info)),

      symlink: (target, parent, name, ctx) =>
        this.#run('symlink', parent, name, () => this.#entry(s.symlinkAt(id(parent), name, target, { mountpoint: this.#opts.mountpoint, ...owner(ctx) }))),

      // An open file unlinked here keeps working through its handles (D7): see OpenFiles.markOrphan.
      unlink: (parent, name) =>
        this.#run('unlink', parent, name, () => {
          const open = this.#openNodeAt(id(parent), name);
          s.unlinkAt(id(parent), name);
          // one name of several (L18): the file keeps its live names, and its handles their writes
          if (open !== undefined && !this.#live(open)) files.markOrphan(open);
        }),

      rmdir: (parent, name) => this.#run('rmdir', parent, name, () => s.rmdirAt(id(parent), name)),

      rename: (parent, name, newParent, newName, flags) =>
        this.#run('rename', parent, name, () => {
          // renameat2: an exchange replaces nothing (both nodes keep a name: no open file is orphaned)
          if (flags === RENAME_EXCHANGE) return void s.exchangeAt(id(parent), name, id(newParent), newName);
          // RENAME_WHITEOUT (overlayfs' own) and any mix of flags: as Linux answers a flag it has not
          if ((flags & ~RENAME_NOREPLACE) !== 0) throw fail('InvalidArgument', `rename flags 0x${flags.toString(16)} are not supported`);
          const replaced = this.#openNodeAt(id(newParent), newName);
          const moved = s.renameAt(id(parent), name, id(newParent), newName, { noReplace: flags === RENAME_NOREPLACE });
          if (replaced !== undefined && replaced !== moved.id && !this.#live(replaced)) files.markOrphan(replaced);
        }),

      // L17: another name of the node (the store says what may not have one)
      link: (ino, newParent, newName) => this.#run('link', newParent, newName, () => this.#entry(s.linkAt(id(ino), id(newParent), newName))),

      open: (ino, flags) => this.#run('open', ino, undefined, () => this.#open(id(ino), flags)),

      create: (parent, name, mode, flags, ctx) =>
        this.#run('create', parent, name, (): Created => {
          const info = s.createFileAt(id(parent), name, { mode: mode & 0o7777, ...owner(ctx) });
          const { writable, readable } = openMode(flags);
          const h = files.open(info, writable, readable);
          this.#seenVersion.set(info.id, `${info.mtimeUs}:${info.size}`);
          return { ...this.#entry(info), fh: h.fd };
        }),

      read: (ino, fh, size, offset) => this.#run('read', ino, undefined, () => this.#read(fh, size, offset)),

      write: (ino, fh, data, offset) =>
        this.#run('write', ino, undefined, () => {
          const h = files.handle(fh);
          const n = files.writeNow(h, data, data.length, offset);
          // The async path may keep `data`: the binding gave libfuse a new receive buffer for it.
          return n !== undefined ? n : files.write(h, data, offset);
        }),

      // close(2): a writer's close commits; a reader's close never fails for someone else's writes.
      flush: (ino, fh) =>
        this.#run('flush', ino, undefined, () => {
          const h = files.handle(fh);
          return h.writable ? files.commit(h.node) : undefined;
        }),

      // The last close commits what is left; if that fails the staged bytes are gone: say so.
      release: (ino, fh) =>
        this.#run('release', ino, undefined, async () => {
          this.#accessDue.delete(fh);
          const h = this.#handleOrNone(fh);
          if (!h) return;
          try {
            await files.release(fh);
          } catch (e) {
            this.#log(`smhfs: staged writes to node ${h.node.id} were discarded at the last close: ${(e as Error).message}`);
            throw e;
          }
        }),

      // A content commit is durable by itself; with nothing to commit, earlier metadata
      // (the create or rename that made this file reachable) is made durable instead.
      fsync: (ino, fh) =>
        this.#run('fsync', ino, undefined, async () => {
          const node = files.handle(fh).node;
          if (node.dirty) await files.commit(node);
          else this.#lib.sync();
        }),

      opendir: (ino) =>
        this.#run('opendir', ino, undefined, (): Open => {
          const info = this.#info(id(ino));
          if (info.kind !== 'dir') throw fail('NotADirectory', 'not a directory', info.path);
          const fh = this.#nextDir++;
          this.#dirs.set(fh, new DirCursor());
          return fh;
        }),

      // plain readdir (the kernel asks when it chooses, or for a reply it will not stat): names, inos, types
      readdir: (ino, fh, offset, size) =>
        this.#run('readdir', ino, undefined, (): DirEntry[] => {
          const pg = this.#cursor(fh).pageStats(this.#space, id(ino), offset, size, false, this.#dirHooks(id(ino)));
          const out: DirEntry[] = pg.dots.map((p) => ({ name: p.name, ino: this.inoOf(p.info.id), mode: p.info.mode, nextOffset: p.next }));
          const n = pg.stats.nums;
          for (let k = 0; k < pg.count; k++) {
            out.push({ name: pg.stats.names[k]!, ino: this.inoOf(n[k * DS.STRIDE + DS.ID]!), mode: n[k * DS.STRIDE + DS.MODE]!, nextOffset: pg.firstNext + k });
          }
          return out;
        }),

      // Each entry but . and .. is a lookup reference (the binding gives back, through forget,
      // those that did not fit the reply), with a lookup's timeouts (#entry: bound links too).
      readdirplus: (ino, fh, offset, size, ctx) => this.#run('readdirplus', ino, undefined, () => this.#pagePlus(id(ino), fh, offset, size, ctx.pid)),

      releasedir: (_ino, fh) => {
        this.#dirs.delete(fh);
        return 0;
      },

      fsyncdir: (ino) => this.#run('fsyncdir', ino, undefined, () => this.#lib.sync()),

      statfs: () => this.#run('statfs', FUSE_ROOT_ID, undefined, (): Promise<Statfs> => statfsNumbers(this.#lib.dir, s.statfs().files)),

      access: (ino, mask) =>
        this.#run('access', ino, undefined, () => {
          if (mask & W_OK) s.statWritable(id(ino));
          else this.#info(id(ino));
        }),

      getxattr: (ino, name) =>
        this.#run('getxattr', ino, undefined, () => {
          // Only user.* exists here; the kernel asks for security.capability on writes: answer fast.
          if (!name.startsWith('user.')) throw fail('NoSuchAttribute', 'no such attribute', `#${ino}`);
          if (name === STATS_XATTR && ino === FUSE_ROOT_ID) return Buffer.from(JSON.stringify(this.#opts.rootStats?.() ?? this.snapshot()));
          return s.getXattr(id(ino), name);
        }),

      setxattr: (ino, name, value, flags) =>
        this.#run('setxattr', ino, undefined, () => {
          if (!name.startsWith('user.')) throw fail('NotSupported', `only user.* attributes are supported (${name})`, `#${ino}`);
          s.setXattr(id(ino), name, Buffer.from(value), {
            ...(flags & XATTR_CREATE ? { create: true } : {}),
            ...(flags & XATTR_REPLACE ? { replace: true } : {}),
          });
        }),

      listxattr: (ino) => this.#run('listxattr', ino, undefined, () => s.listXattr(id(ino))),

      removexattr: (ino, name) =>
        this.#run('removexattr', ino, undefined, () => {
          if (!name.startsWith('user.')) throw fail('NoSuchAttribute', 'no such attribute', `#${ino}`);
          s.removeXattr(id(ino), name);
        }),

      fallocate: (ino, fh, mode, offset, length) => this.#run('fallocate', ino, undefined, () => files.fallocate(files.handle(fh), mode, offset, length)),

      // A whole file into an empty one shares the blob; anything else: EOPNOTSUPP, and the kernel
      // copies through read and write (fuse_copy_file_range's fallback).
      copyFileRange: (inoIn, fhIn, offIn, _inoOut, fhOut, offOut, len) =>
        this.#run('copy_file_range', inoIn, undefined, async () => {
          const n = await files.shareWhole(files.handle(fhIn), files.handle(fhOut), offIn, offOut, len);
          if (n === undefined) throw fail('NotSupported', 'copy_file_range: only a whole file into an empty one shares its content');
          return n;
        }),
    };
  }

  #handleOrNone(fh: number): Handle | undefined {
    try {
      return this.files.handle(fh);
    } catch {
      return undefined;
    }
  }

  /** Whether node `id` still has a live name (hard links, L18: removing one name may leave others). */
  #live(id: number): boolean {
    try {
      return !this.#space.statNode(id).inTrash;
    } catch {
      return false;
    }
  }

  /** The id of the open file named `name` in `dirId`, if it is one (before an unlink or a rename over it). */
  #openNodeAt(dirId: number, name: string): number | undefined {
    if (this.files.openNodes === 0) return undefined;
    try {
      const info = this.#space.lookup(dirId, name);
      return info.kind === 'file' && this.files.node(info.id) ? info.id : undefined;
    } catch {
      return undefined; // the store call that follows reports it
    }
  }

  async #open(nodeId: number, flags: number): Promise<Open> {
    const { writable, readable, truncate } = openMode(flags);
    const info = this.#space.statOpen(nodeId, { write: writable });
    if (info.kind !== 'file') return this.files.open(info, false, false).fd; // dirs, fifos, devices: the kernel does the rest
    const h = this.files.open(info, writable, readable);
    if (readable) this.#accessDue.set(h.fd, info);
    // atomic_o_trunc: O_TRUNC comes with the open; staged like a write, committed at close.
    if (truncate) await this.files.truncate(h.node, 0);
    const version = `${info.mtimeUs}:${info.size}`;
    const keepCache = this.#seenVersion.get(nodeId) === version && !h.node.staging;
    this.#seenVersion.set(nodeId, version);
    return { fh: h.fd, keepCache };
  }

  async #setattr(nodeId: number, set: SetAttr, fh: number | undefined): Promise<Attr> {
    const s = this.#space;
    const h = fh !== undefined ? this.#handleOrNone(fh) : undefined;
    if (set.size !== undefined) {
      if (h?.writable) await this.files.truncate(h.node, set.size);
      else {
        const info = s.statTruncatable(nodeId);
        const open = this.files.node(nodeId);
        if (open && open.writers > 0) await this.files.truncate(open, set.size);
        else await this.files.truncatePath(info, set.size);
      }
    }
    const attrs: Attrs = {};
    if (set.mode !== undefined) attrs.mode = set.mode & 0o7777;
    if (set.uid !== undefined) attrs.uid = set.uid;
    if (set.gid !== undefined) attrs.gid = set.gid;
    if (set.atime !== undefined) ({ us: attrs.atimeUs, nsRem: attrs.atimeNsRem } = storeTime(set.atime));
    if (set.mtime !== undefined) ({ us: attrs.mtimeUs, nsRem: attrs.mtimeNsRem } = storeTime(set.mtime));
    if (Object.keys(attrs).length > 0) {
      s.setattr(nodeId, attrs);
      if (attrs.mtimeUs !== undefined) this.files.setMtime(nodeId, attrs.mtimeUs, attrs.mtimeNsRem);
    }
    const info = this.#info(nodeId);
    return this.#attr(info, h && info.kind === 'file' ? h.view : undefined);
  }

  /**
   * readdirplus: the page packed straight from the store's numbers (issue 15, a walk's cost per
   * entry), each entry written as #entry would make it. An entry whose attributes need more than
   * its row — an open file (staged size, times), a sparse file (st_blocks), `-o uid/gid/umask` —
   * goes through #entry itself.
   */
  #pagePlus(dirId: number, fh: number, offset: number, size: number, pid: number): PackedDirPlus {
    const show = this.#opts.show;
    const plan = this.listing?.plan(pid, dirId);
    const probed: string[] = [];
    const cursor = this.#cursor(fh);
    const names = plan?.namesOnly === true;
    const ahead = names ? this.#readAheadBytes() : 0;
    const bytes = Math.min(size, plan?.maxBytes ?? Infinity, ahead || Infinity);
    const pageSpare = this.#pageSpare;
    this.#pageSpare = undefined;
    const pg = cursor.pageStats(this.#space, dirId, offset, bytes, true, this.#dirHooks(dirId), names, pageSpare);
    const ahead_ = pg.prepared?.reply as Ahead | undefined;
    let out: PackedDirPlus;
    if (ahead_ && pg.prepared!.page === ahead_.page) {
      // made ahead from this very page: its references are the kernel's from now on
      for (const id of ahead_.refs) this.#lookups.add(id);
      out = ahead_.packed;
    } else {
      out = packPlus(pg, this.#packContext((id) => this.#lookups.add(id), (info) => this.#entry(info)), plan, probed, this.#spare);
    }
    this.#spare = out;
    // the page is packed and nothing keeps it (a page read ahead is the cursor's until used: not it)
    this.#pageSpare = names && !pg.prepared ? (pg.stats.nums.buffer as ArrayBuffer) : pageSpare;
    if (probed.length > 0) this.listing!.probed(pid, dirId, probed);
    if (ahead > 0 && pg.count > 0) {
      // once this reply is sent (the binding answers before the loop goes on): read the next page
      // and make its reply, counting no reference until it is sent
      setImmediate(() => {
        if (this.#dirs.get(fh) !== cursor) return; // released meanwhile
        try {
          const ready = cursor.prepare(this.#space, dirId, bytes);
          if (!ready) return;
          const refs: number[] = [];
          const packed = packPlus(ready.page, this.#packContext((id) => refs.push(id), (info) => (refs.push(info.id), this.#entryOf(info))), NAMES_PLAN);
          ready.reply = { page: ready.page, packed, refs } satisfies Ahead;
        } catch {
          // (the directory went away, the library closed): the request, if any, reads and answers itself
        }
      });
    }
    return out;
  }

  /** packPlus's view of this adapter; `referenced` and `entry` count (or, ahead, collect) references. */
  #packContext(referenced: (id: number) => void, entry: (info: NodeInfo) => Entry): PackContext {
    const show = this.#opts.show;
    return {
      dot: (info) => ({ attr: this.#attr(info) }),
      entry,
      info: (id) => this.#info(id),
      referenced,
      inoOf: (id) => this.inoOf(id),
      open: (id) => this.files.node(id) !== undefined,
      plain: !this.#opts.presentAs && show?.uid === undefined && show?.gid === undefined && show?.umask === undefined,
      boundTimeout: this.#opts.cacheBoundLinks ? undefined : BOUND_LINK_TIMEOUTS.attrTimeout,
      blksize: BLKSIZE,
    };
  }

  #readAheadBytes(): number {
    // by default only with a second CPU to read on: on one (the mount pinned, a 1-CPU machine) it
    // would only add requests (measured pinned: no gain, up to +26% wall at 100k)
    const bytes = this.#opts.readAheadBytes ?? (availableParallelism() > 1 ? READ_AHEAD_BYTES : 0);
    return (this.#readAhead ??= bytes > 0 && this.#space.listingVersion() !== undefined ? bytes : 0);
  }

  #cursor(fh: number): DirCursor {
    const cursor = this.#dirs.get(fh);
    if (!cursor) throw fail('InvalidArgument', 'no such directory handle', String(fh));
    return cursor;
  }

  /** A directory handle's hooks (./dir-cursor.ts); `..` is the parent, or itself while being moved or purged. */
  #dirHooks(dirId: number): DirHooks {
    return {
      self: () => this.#info(dirId),
      up: (self) => {
        if (self.id === this.#root) return self;
        const i = self.path.lastIndexOf('/');
        try {
          return this.#space.stat(i < 0 ? '' : self.path.slice(0, i));
        } catch {
          return self;
        }
      },
      listed: (self) => touchAtime(this.#space, this.#log, self),
    };
  }

  /**
   * Readable handles whose first read is still to be told to the store (`accessed`, relatime),
   * with the node as it was at open; an entry lives from the open to the first read.
   */
  readonly #accessDue = new Map<number, NodeInfo>();

  /**
   * Cached pages answer at once: the binding sends them before this call returns, so a single
   * page is answered from its own memory (no copy). Anything else takes the async read path,
   * which returns a buffer of its own.
   */
  #read(fh: number, len: number, pos: number): Uint8Array | readonly Uint8Array[] | FdSlice | Promise<Uint8Array | readonly Uint8Array[] | FdSlice> {
    const files = this.files;
    const h = files.handle(fh);
    if (this.#accessDue.size > 0) {
      const seen = this.#accessDue.get(fh);
      if (seen) {
        this.#accessDue.delete(fh);
        touchAtime(this.#space, this.#log, seen);
      }
    }
    const node = h.node;
    const v = h.view; // a dense version only: a sparse one maps through its layout (files.read)
    if (!node.staging && !node.preparing && v.blob && !v.layout && pos < v.size) {
      files.ensureHold(h);
      // A local blob's bytes go from its file to the kernel (splice where the binding has it, else
      // one read into the reply): the page cache is for remote bytes, not a copy stage for local
      // ones (issue 16). The descriptor is lent until the binding has replied, which happens
      // (before this call returns, or as the promise settles); the hold above keeps the bytes from
      // the collector.
      const local = files.reader.localFile(v);
      if (local) return this.#lend(local, len, pos, v.size);
      if (files.reader.localFiles) {
        // The first read of a local blob opens its descriptor (kept for the next reads).
        const opening: Promise<BlobFile | undefined> = files.reader.openLocalFile(v);
        return opening.then<Uint8Array | readonly Uint8Array[] | FdSlice>((f) => (f ? this.#lend(f, len, pos, v.size) : files.read(h, pos, len)));
      }
      // Random readers of a local blob fetch missing units right here (a pread): see page-cache.ts.
      const lease = files.reader.cache.readCachedSync(v.blob, v.size, pos, len, h.stream, true);
      if (lease) {
        files.stats.bytesRead += lease.length;
        // Several pieces (a read across units or pages) go out as they are: see #readLeased.
        return lease.parts.length === 1 ? lease.parts[0]! : lease.parts;
      }
      return this.#readLeased(h, v.blob, v.size, len, pos);
    }
    return files.read(h, pos, len);
  }

  /**
   * A page-cache miss (remote bytes): answered from the cached pages themselves once they are
   * there, as the fuse-native adapter's lease read does — `files.read` would copy every byte into
   * a buffer of its own (a page may be pooled, so its copy: ~3% of the mount's CPU on a cold S3
   * read, and garbage). The pages stay pinned until the binding has replied (it replies in the
   * promise's reaction, before the setImmediate). A read across units or pages answers with
   * the pieces themselves (the binding sends them as one reply, from their own memory): joining
   * them cost a buffer the size of the read per read — with 128 KiB random reads over 64 KiB
   * units, every read — and that garbage, freed between the cache's long-lived buffers,
   * fragmented the malloc heap: tens of MiB of RSS over the cache (issue 16).
   */
  async #readLeased(h: Handle, blob: string, size: number, len: number, pos: number): Promise<Uint8Array | readonly Uint8Array[]> {
    const lease = await this.files.reader.cache.readLease(blob, size, pos, len, h.stream);
    setImmediate(() => lease.release());
    this.files.stats.bytesRead += lease.length;
    return lease.parts.length === 1 ? lease.parts[0]! : lease.parts.length === 0 ? Buffer.alloc(0) : lease.parts;
  }

  /** Answer a read from a lent blob descriptor; it goes back once the binding has replied. */
  #lend(f: BlobFile, len: number, pos: number, size: number): FdSlice {
    setImmediate(f.release);
    this.files.stats.bytesRead += Math.max(0, Math.min(len, size - pos));
    return { fd: f.fd, position: pos };
  }

  /** Counters for `smhfs stats`. */
  snapshot(): Record<string, unknown> {
    return { ...adapterSnapshot(this.counters, this.files), kernelInodes: this.#lookups.size, invalidations: { ...this.#sent } };
  }

}
