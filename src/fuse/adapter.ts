/**
 * The FUSE adapter: each operation of SPEC M2 is a translation — mount path to store path, open
 * flags and modes to store arguments, NodeInfo to struct stat, errors to errnos through the one
 * mapping (`errnoOf`, M3) — and one call into the store. It holds no rules and no SQL.
 *
 * - Mount path `/x/y` is store path `x/y`; `/.trash/…` is the store's read-only bin view (T3).
 * - Unexpected errors (anything that is not an SmhError, and SmhErrors that map to EIO) are
 *   logged with the op and path, and returned as EIO — never a bare -1.
 * - Buffers handed in by fuse-native (read, write, setxattr) belong to libfuse: they are copied
 *   before any await and never kept after the callback (native-notes/fuse-native.md).
 * - The caller's uid/gid is not available through fuse-native (no fuse_get_context binding), so a
 *   new node takes the owner of its parent directory (see native-notes/fuse-native.md).
 */
import { constants } from 'node:os';
import { fail, isSmhError } from '../errors.js';
import type { NodeInfo } from '../store/types.js';
import type { FuseOps, FuseStat, FuseStatfs } from './native.js';
import { adapterSnapshot, errnoFor, nodeStat, openMode, runOp, statfsNumbers, touchAtime, type OpCounter } from './translate.js';
import { OpenFiles, type Handle, type Version } from '../vfs/open-files.js';
import type { ContentReader } from '../vfs/reader.js';
import type { FuseLibrary, FuseSpace } from './port.js';

const E = constants.errno;
/** How logs name a request on a file unlinked while open (fuse-native passes a null path). */
const NAMELESS = '(an open file without a name)';
const W_OK = 2;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
/** chown(2) passes (uid_t)-1 for "leave unchanged". */
const UNCHANGED_ID = 0xffffffff;
const OWNER_TTL_MS = 1000;
/** st_blksize: what `cat`, `cp` use as their buffer size; one FUSE request (max_write). */
const BLKSIZE = 131072;

export interface AdapterOptions {
  /** Absolute mountpoint: absolute link targets under it are taken relative to the root (L1). */
  mountpoint: string;
  /**
   * Owner shown for every node, when the serving process is not root (only it, and with
   * allow_other anyone, can use the mount; stored owners stay as they are).
   */
  presentAs?: { uid: number; gid: number } | undefined;
  log?: (line: string) => void;
  /**
   * The value of the read-only xattr `user.smhfs.stats` of the mount root, as JSON (the same
   * object `smhfs stats` prints); default `snapshot()`. Not listed by listxattr: it is a live
   * counter, not metadata, and `cp -a`/`rsync -X` of the root should not copy it.
   */
  rootStats?: () => Record<string, unknown>;
  /**
   * Told of every answered request: op, mount path, milliseconds, and 0 or the errno returned
   * (metrics histograms, debug logs). Not set: nothing is done per request beyond the counters.
   */
  onOp?: ((op: string, path: string, ms: number, errno: number) => void) | undefined;
}

/** Read-only xattr of the mount root: run-time counters (page cache, ops, io) as JSON. */
export const STATS_XATTR = 'user.smhfs.stats';

export type { OpCounter } from './translate.js';

/** `/x/y` → `x/y`; `/` → ''. */
export function storePath(fusePath: string): string {
  return fusePath.replace(/^\/+/, '');
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

const ms = (us: number): number => Math.floor(us / 1000);

export class FuseAdapter {
  readonly files: OpenFiles;
  readonly counters = new Map<string, OpCounter>();
  readonly #lib: FuseLibrary;
  readonly #space: FuseSpace;
  readonly #opts: AdapterOptions;
  readonly #log: (line: string) => void;

  constructor(lib: FuseLibrary, space: FuseSpace, reader: ContentReader, opts: AdapterOptions) {
    this.#lib = lib;
    this.#space = space;
    this.#opts = opts;
    this.#log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.files = new OpenFiles(lib, space, reader);
  }

  // ───────────────────────────── plumbing ─────────────────────────────

  /** errno (negative) for a thrown value; logs what a user could not have caused. */
  #errno(op: string, path: string | null, e: unknown): number {
    return -errnoFor(e, (what, errno) => this.#log(`smhfs: ${op} ${path ?? NAMELESS}: ${what} (returned ${errno === E.EIO ? 'EIO' : errno})`));
  }

  /**
   * Run `fn` (sync or async) and answer fuse-native: `done(0, value)` or `done(-errno)`. Sync
   * results answer without a promise round trip (most ops are one synchronous SQLite call).
   */
  #run<T>(op: string, path: string | null, fn: () => T | Promise<T>, done: (err: number, value?: T) => void): void {
    const onOp = this.#opts.onOp;
    void runOp(
      this.counters,
      op,
      fn,
      (v, ms) => {
        done(0, v);
        onOp?.(op, path ?? NAMELESS, ms, 0);
      },
      (e, ms) => {
        const errno = this.#errno(op, path, e);
        done(errno);
        onOp?.(op, path ?? NAMELESS, ms, -errno);
      },
    );
  }


  /** read/write answer with a byte count or a negative errno in the first argument. */
  #runBytes(op: string, path: string | null, fn: () => number | Promise<number>, done: (res: number) => void): void {
    this.#run(op, path, fn, (err, n) => done(err < 0 ? err : (n ?? 0)));
  }

  /** `view`: fstat through a handle answers with the size of the version that handle reads (D7). */
  #stat(info: NodeInfo, view?: Version): FuseStat {
    const open = info.kind === 'file' ? this.files.node(info.id) : undefined;
    const st = nodeStat(info, open, BLKSIZE, view, this.#opts.presentAs);
    return {
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      size: st.size,
      nlink: st.nlink,
      ino: st.id,
      rdev: st.rdev,
      blksize: st.blksize,
      blocks: st.blocks,
      atime: ms(st.atimeUs),
      mtime: ms(st.mtimeUs),
      ctime: ms(st.ctimeUs),
    };
  }

  /**
   * Owner for a node created at `p`: its parent's (the caller's identity is not available).
   * Remembered per directory for OWNER_TTL_MS — stat of a big directory is not free (nlink) and
   * `tar -x`/`cp -a` create many nodes in one directory — and forgotten on any chown, rename or
   * rmdir through the mount. A change by another process shows after at most that long, like
   * any attribute under the kernel's attr_timeout.
   */
  #owner(p: string): { uid: number; gid: number } {
    if (this.#opts.presentAs) return this.#opts.presentAs;
    const dir = parentOf(p);
    const now = Date.now();
    const cached = this.#owners.get(dir);
    if (cached && now - cached.at < OWNER_TTL_MS) return cached;
    try {
      const parent = this.#space.stat(dir);
      if (this.#owners.size > 1000) this.#owners.clear();
      const owner = { uid: parent.uid, gid: parent.gid, at: now };
      this.#owners.set(dir, owner);
      return owner;
    } catch {
      // The store call that follows reports the missing parent with the right errno.
      return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    }
  }

  readonly #owners = new Map<string, { uid: number; gid: number; at: number }>();

  /** The id of the open file at store path `p`, if it is one (before an unlink or a rename over it). */
  #openNodeAt(p: string): number | undefined {
    try {
      const info = this.#space.stat(p);
      return info.kind === 'file' && this.files.node(info.id) ? info.id : undefined;
    } catch {
      return undefined; // the store call that follows reports it
    }
  }

  // ───────────────────────────── operations ─────────────────────────────

  ops(): FuseOps {
    const s = this.#space;
    const files = this.files;
    const run = this.#run.bind(this);

    return {
      init: (cb) => cb(0),

      access: (path, mode, cb) =>
        run('access', path, () => {
          if (mode & W_OK) s.statWritable(storePath(path));
          else s.stat(storePath(path));
        }, cb),

      statfs: (path, cb) => run('statfs', path, () => this.#statfs(), cb),

      getattr: (path, cb) => run('getattr', path, () => this.#stat(s.stat(storePath(path))), cb),

      // fstat, and the kernel's attribute refresh while reading an open file: by the handle, so a
      // file deleted or renamed by anyone (or unlinked here: path null) still answers (D7).
      fgetattr: (path, fd, cb) =>
        run('fgetattr', path, () => {
          const h = files.handle(fd);
          let info = h.node.info;
          try {
            info = s.statNode(h.node.id);
            h.node.info = info;
          } catch (e) {
            if (!isSmhError(e, 'FileNotFound')) throw e; // purged: what we last saw
          }
          const st = this.#stat(info, info.kind === 'file' ? h.view : undefined);
          // A file whose name this mount removed has no name left (POSIX st_nlink 0), though the
          // node lives on in the recycle bin; with hard links (issue 12) it counts the names left.
          if (h.node.orphan) st.nlink = 0;
          return st;
        }, cb),

      readdir: (path, cb) =>
        run('readdir', path, () => {
          const p = storePath(path);
          const self = s.stat(p);
          const up = p === '' ? self : s.stat(parentOf(p));
          const entries = s.readdir(p);
          touchAtime(this.#space, this.#log, self);
          const names = ['.', '..'];
          const stats = [this.#stat(self), this.#stat(up)];
          for (const e of entries) {
            names.push(e.name);
            stats.push(this.#stat(e.info));
          }
          return { names, stats };
        }, (err, v) => (err ? cb(err) : cb(0, v!.names, v!.stats))),

      readlink: (path, cb) => run('readlink', path, () => s.readlink(storePath(path)), cb),

      open: (path, flags, cb) =>
        run('open', path, async () => {
          const { writable, readable, truncate } = openMode(flags);
          const info = s.statOpen(storePath(path), { write: writable });
          if (info.kind !== 'file') return files.open(info, false, false).fd; // dirs, fifos, devices: the kernel does the rest
          const h = files.open(info, writable, readable);
          if (readable) this.#accessDue.set(h.fd, info);
          // Only with atomic_o_trunc; otherwise the kernel sends a truncate after open.
          if (truncate) await files.truncate(h.node, 0);
          return h.fd;
        }, cb),

      create: (path, mode, cb) =>
        run('create', path, () => {
          const p = storePath(path);
          const info = s.createFile(p, { mode: mode & 0o7777, ...this.#owner(p) });
          // fuse-native does not pass create's flags: a read of committed bytes takes its hold then.
          return files.open(info, true, false).fd;
        }, cb),

      read: (path, fd, buf, len, pos, cb) =>
        this.#runBytes('read', path, () => {
          const h = files.handle(fd);
          if (this.#accessDue.size > 0) this.#accessed(fd);
          const n = this.#cachedRead(h, buf, len, pos);
          return n !== undefined ? n : this.#read(h, buf, len, pos);
        }, cb),

      write: (path, fd, buf, len, pos, cb) =>
        this.#runBytes('write', path, () => {
          const h = files.handle(fd);
          const n = files.writeNow(h, buf, len, pos);
          // The async path needs our own copy: the kernel's buffer is reused after the callback.
          return n !== undefined ? n : files.write(h, Buffer.from(buf.subarray(0, len)), pos);
        }, cb),

      // close(2): a writer's close commits; a reader's close never fails for someone else's writes.
      flush: (path, fd, cb) =>
        run('flush', path, () => {
          const h = files.handle(fd);
          return h.writable ? files.commit(h.node) : undefined;
        }, cb),

      // A content commit is durable by itself; with nothing to commit, earlier metadata
      // (the create or rename that made this file reachable) is made durable instead.
      fsync: (path, _datasync, fd, cb) =>
        run('fsync', path, async () => {
          const node = files.handle(fd).node;
          if (node.dirty) await files.commit(node);
          else this.#lib.sync();
        }, cb),

      fsyncdir: (path, _datasync, _fd, cb) => run('fsyncdir', path, () => this.#lib.sync(), cb),

      // The last close commits what is left; if that fails the staged bytes are gone: say so.
      release: (path, fd, cb) =>
        run('release', path, async () => {
          this.#accessDue.delete(fd);
          const id = files.handle(fd).node.id;
          try {
            await files.release(fd);
          } catch (e) {
            this.#log(`smhfs: staged writes to node ${id} were discarded at the last close: ${(e as Error).message}`);
            throw e;
          }
        }, cb),

      truncate: (path, size, cb) =>
        run('truncate', path, async () => {
          const info = s.statTruncatable(storePath(path));
          const open = files.node(info.id);
          if (open && open.writers > 0) await files.truncate(open, size);
          else await files.truncatePath(info, size);
        }, cb),

      ftruncate: (path, fd, size, cb) => run('ftruncate', path, () => files.truncate(files.handle(fd).node, size), cb),

      fallocate: (path, fd, mode, offset, length, cb) =>
        run('fallocate', path, () => files.fallocate(files.handle(fd), mode, offset, length), cb),

      // An open file unlinked here keeps working through its handles (D7): see OpenFiles.markOrphan.
      unlink: (path, cb) =>
        run('unlink', path, () => {
          const p = storePath(path);
          const open = files.openNodes > 0 ? this.#openNodeAt(p) : undefined;
          s.unlink(p);
          // orphaned only without a live name left (L18: one name of several goes alone); never purged here
          if (open !== undefined && s.statNode(open).inTrash) files.markOrphan(open);
        }, cb),

      rmdir: (path, cb) =>
        run('rmdir', path, () => {
          this.#owners.clear();
          s.rmdir(storePath(path));
        }, cb),

      mkdir: (path, mode, cb) =>
        run('mkdir', path, () => {
          const p = storePath(path);
          s.mkdir(p, { mode: mode & 0o7777, ...this.#owner(p), conflict: 'ask' });
        }, cb),

      mknod: (path, mode, dev, cb) =>
        run('mknod', path, () => {
          const p = storePath(path);
          const owner = this.#owner(p);
          if ((mode & S_IFMT) === S_IFREG) s.createFile(p, { mode: mode & 0o7777, ...owner });
          else s.mknod(p, { mode, rdev: dev, ...owner });
        }, cb),

      rename: (src, dest, cb) =>
        run('rename', src, () => {
          this.#owners.clear();
          const replaced = files.openNodes > 0 ? this.#openNodeAt(storePath(dest)) : undefined;
          const moved = s.rename(storePath(src), storePath(dest));
          if (replaced !== undefined && replaced !== moved.id && s.statNode(replaced).inTrash) files.markOrphan(replaced);
        }, cb),

      link: (src, dest, cb) => run('link', src, () => s.link(storePath(src), storePath(dest)), cb),

      symlink: (target, path, cb) =>
        run('symlink', path, () => {
          const p = storePath(path);
          s.symlink(p, target, { mountpoint: this.#opts.mountpoint, ...this.#owner(p) });
        }, cb),

      chmod: (path, mode, cb) => run('chmod', path, () => void s.setattr(storePath(path), { mode: mode & 0o7777 }), cb),

      chown: (path, uid, gid, cb) =>
        run('chown', path, () => {
          const attrs: { uid?: number; gid?: number } = {};
          if (uid !== UNCHANGED_ID) attrs.uid = uid;
          if (gid !== UNCHANGED_ID) attrs.gid = gid;
          this.#owners.clear();
          s.setattr(storePath(path), attrs);
        }, cb),

      // fuse-native passes milliseconds, and (2.2.6) the atime in both arguments: see native-notes.
      utimens: (path, atimeMs, mtimeMs, cb) =>
        run('utimens', path, () => {
          const info = s.setattr(storePath(path), { atimeUs: atimeMs * 1000, mtimeUs: mtimeMs * 1000 });
          files.setMtime(info.id, mtimeMs * 1000);
        }, cb),

      getxattr: (path, name, _position, cb) =>
        run('getxattr', path, () => {
          // Only user.* exists here; the kernel asks for security.capability on writes: answer fast.
          if (!name.startsWith('user.')) throw fail('NoSuchAttribute', 'no such attribute', storePath(path));
          if (name === STATS_XATTR && storePath(path) === '') {
            return Buffer.from(JSON.stringify(this.#opts.rootStats?.() ?? this.snapshot()));
          }
          return s.getXattr(storePath(path), name);
        }, cb),

      setxattr: (path, name, value, _position, flags, cb) => {
        const copy = Buffer.from(value);
        run('setxattr', path, () => {
          if (!name.startsWith('user.')) throw fail('NotSupported', `only user.* attributes are supported (${name})`, storePath(path));
          s.setXattr(storePath(path), name, copy, {
            ...(flags & XATTR_CREATE ? { create: true } : {}),
            ...(flags & XATTR_REPLACE ? { replace: true } : {}),
          });
        }, cb);
      },

      listxattr: (path, cb) => run('listxattr', path, () => s.listXattr(storePath(path)), cb),

      removexattr: (path, name, cb) =>
        run('removexattr', path, () => {
          if (!name.startsWith('user.')) throw fail('NoSuchAttribute', 'no such attribute', storePath(path));
          s.removeXattr(storePath(path), name);
        }, cb),
    };
  }

  /**
   * Readable handles whose first read is still to be told to the store (`accessed`, relatime),
   * with the node as it was at open; an entry lives from the open to the first read.
   */
  readonly #accessDue = new Map<number, NodeInfo>();

  #accessed(fd: number): void {
    const seen = this.#accessDue.get(fd);
    if (!seen) return;
    this.#accessDue.delete(fd);
    touchAtime(this.#space, this.#log, seen);
  }

  async #read(h: Handle, buf: Buffer, len: number, pos: number): Promise<number> {
    this.#readsWaiting++;
    try {
      const n = await this.#leaseRead(h, buf, len, pos);
      if (n !== undefined) return n;
      const data = await this.files.read(h, pos, len);
      // Answer from the check phase: see "Answering from setImmediate" in native-notes.
      await new Promise((r) => setImmediate(r));
      // Copy into libfuse's buffer only now, synchronously, right before answering.
      return data.copy(buf, 0, 0, Math.min(data.length, len));
    } finally {
      this.#readsWaiting--;
    }
  }

  /** Reads of this mount waiting for data or for their turn to answer. */
  #readsWaiting = 0;

  /**
   * Cached pages answer at once, without a promise round trip, when no other read is waiting
   * (a lone reader: random reads, or a sequential one the page cache keeps ahead of). With reads
   * already waiting, the new one joins them and all answer together from setImmediate, which is
   * what makes many concurrent requests fast (native-notes/fuse-native.md).
   */
  #cachedRead(h: Handle, buf: Buffer, len: number, pos: number): number | undefined {
    const node = h.node;
    const v = h.view; // a dense version only: a sparse one maps through its layout (files.read)
    if (this.#readsWaiting > 0 || node.staging || node.preparing || !v.blob || v.layout || pos >= v.size) return undefined;
    this.files.ensureHold(h);
    // Random readers of a local blob fetch missing units right here (a pread): see page-cache.ts.
    const lease = this.files.reader.cache.readCachedSync(v.blob, v.size, pos, len, h.stream, true);
    if (!lease) return undefined;
    const n = lease.copyTo(buf.subarray(0, len));
    this.files.stats.bytesRead += n;
    return n;
  }

  /**
   * The read fast path: a node with no staged writes is read straight from the page cache's
   * pinned pages into libfuse's buffer — no intermediate copy, so a long read makes no garbage
   * (GC was a quarter of the mount's CPU on a cold S3 read with the copy). Returns undefined when
   * `files.read` must do it (staged writes, a staging copy in progress, no page cache).
   */
  async #leaseRead(h: Handle, buf: Buffer, len: number, pos: number): Promise<number | undefined> {
    const node = h.node;
    const cache = this.files.reader.cache;
    const v = h.view;
    if (node.staging || node.preparing || !v.blob || v.layout || pos >= v.size) return undefined;
    this.files.ensureHold(h);
    const lease = await cache.readLease(v.blob, v.size, pos, len, h.stream);
    try {
      await new Promise((r) => setImmediate(r)); // see "Answering from setImmediate" in native-notes
      const n = lease.copyTo(buf.subarray(0, len)); // synchronously, right before answering
      this.files.stats.bytesRead += n;
      return n;
    } finally {
      lease.release();
    }
  }

  #statfs(): Promise<FuseStatfs> {
    return statfsNumbers(this.#lib.dir, this.#space.statfs().files);
  }

  /** Counters for `smhfs stats`. */
  snapshot(): Record<string, unknown> {
    return adapterSnapshot(this.counters, this.files);
  }
}
