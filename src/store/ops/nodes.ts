/**
 * SPEC §2, nodes: reading them (stat, readdir, statfs, user metadata), making them (mkdir, mknod,
 * create(2), uploads with their conflict strategy, B5 content commits) and changing their
 * attributes (setattr, the space's default storage class).
 */
import { fail } from '../../errors.js';
import { EMPTY_BLOB_KEY } from '../../blob/types.js';
import { checkConflict, checkMeta, checkStorageClass } from '../checks.js';
import { nowUs } from '../engine.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../edits.js';
import { splitPath, TRASH_NAME, validateName } from '../paths.js';
import type { Counted, NodeRow } from '../space-rows.js';
import type { Known, Resolved, ResolveContext } from '../tree.js';
import { DEFAULT_CONFLICT, DS, DS_BOUND, DS_NAMES, NODE_KINDS, newDirStats, putDirStat, type DirStats, type Attrs, type Authorize, type BlobRef, type Conflict, type DirEntry, type NodeInfo, type Owner, type Placed, type StatFs } from '../types.js';
import { SpaceOps } from './base.js';

const DIR_KIND = NODE_KINDS.indexOf('dir');
const LINK_KIND = NODE_KINDS.indexOf('link');
const EMPTY_ETAG = 'd41d8cd98f00b204e9800998ecf8427e';
const DAY_US = 86_400 * 1_000_000;

/** M2: the nanoseconds below a µs time, 0–999 (absent: 0). */
function nsRem(v: number | undefined, which: string): number {
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0 || v > 999) throw fail('InvalidArgument', `the nanoseconds below a ${which} in µs must be 0–999, not ${v}`);
  return v;
}

/** relatime: an access updates atime when it is not later than mtime or ctime, or older than a day. */
function atimeDue(atime: number, mtime: number, ctime: number, now: number): boolean {
  return atime <= mtime || atime <= ctime || now - atime >= DAY_US;
}

/** Options of an upload (`putFile`), shared by the store's façade. */
export type PutFileOptions = Owner & {
  conflict?: Conflict;
  mtimeUs?: number;
  meta?: Record<string, string>;
  storageClass?: string;
  createParents?: boolean;
  authorize?: Authorize;
};

export class NodeOps extends SpaceOps {
  stat(path: string, opts: { follow?: boolean } & ResolveContext = {}): NodeInfo {
    return this.host.engine.snapshot(() => {
      const r = this.tree.resolve(path);
      if (opts.follow && r.row.kind === 'link') return this.tree.followForMount(r, opts);
      // an engine's one-query walk (SpaceRows.walk) may bring the last row's nlink counts along
      const counted = r.row as Partial<Counted>;
      return this.tree.infoOf(r.row, { where: r.inTrash ? 'trash' : 'live', segs: r.segs }, counted.names === undefined ? undefined : (counted as Counted));
    });
  }

  /** Like stat, for an operation about to change the node (open for writing, truncate): the bin is read-only (T3). */
  statWritable(pathOrId: string | number): NodeInfo {
    const info = typeof pathOrId === 'number' ? this.statNode(pathOrId) : this.stat(pathOrId);
    if (info.inTrash) throw this.tree.binReadOnly(info.path, true);
    return info;
  }

  /** open(2): for writing, a node that may be written and is not a directory. */
  statOpen(path: string | number, opts: { write: boolean }): NodeInfo {
    const info = opts.write ? this.statWritable(path) : typeof path === 'number' ? this.statNode(path) : this.stat(path);
    if (opts.write && info.kind === 'dir') throw fail('IsADirectory', 'is a directory', info.path);
    return info;
  }

  /** truncate(2): only a regular file that may be written has a size to change. */
  statTruncatable(path: string | number): NodeInfo {
    const info = this.statWritable(path);
    if (info.kind === 'dir') throw fail('IsADirectory', 'is a directory', info.path);
    if (info.kind !== 'file') throw fail('InvalidArgument', 'not a regular file', info.path);
    return info;
  }

  statNode(id: number): NodeInfo {
    return this.host.engine.snapshot(() => {
      if (this.rows.placed) {
        // over a network: the row, its nlink, where it is and where its bound target is, at once
        const placed = Number.isSafeInteger(id) ? this.rows.placed(id, undefined, [this.root, this.trash]) : undefined;
        if (!placed || placed.row.space !== this.name) throw fail('FileNotFound', `no node ${id}`, String(id));
        return this.tree.infoOf(placed.row, undefined, placed.row, this.tree.known(placed.ways));
      }
      const row = this.tree.row(id);
      if (!row || row.space !== this.name) throw fail('FileNotFound', `no node ${id}`, String(id));
      return this.tree.infoOf(row);
    });
  }

  /** A directory's entries, by path or by node id. */
  readdir(pathOrId: string | number): DirEntry[] {
    return this.host.engine.snapshot(() => {
      if (typeof pathOrId === 'number' && this.rows.placedPage) {
        // over a network: the directory, its place, every child with its nlink and bound target at once
        const placed = this.rows.placedPage(pathOrId, undefined, undefined, [this.root, this.trash]);
        const known = this.tree.known(placed?.ways ?? []);
        return this.readdirIn(this.tree.resolveId(pathOrId, { row: placed?.row, known }), String(pathOrId), placed?.children, known);
      }
      return this.readdirIn(typeof pathOrId === 'number' ? this.tree.resolveId(pathOrId) : this.tree.resolve(pathOrId), String(pathOrId));
    });
  }

  /**
   * readdirplus (issue 15): a page of directory `id` — up to `limit` entries named after `after`
   * (from the start when undefined), in name order, each with its NodeInfo — from one range read
   * (a directory's nlink comes with it; a bound link still finds where its target is). The root
   * lists `.trash` in its place in that order. A listing pages on with the last name it got.
   */
  readdirPlus(id: number, after: string | undefined, limit: number): DirEntry[] {
    if (!Number.isInteger(limit) || limit < 1) throw fail('InvalidArgument', 'a page holds at least one entry', String(limit));
    return this.host.engine.snapshot(() => {
      // over a network: the directory, its place, the page and its bound targets' places at once
      const placed = this.rows.placedPage?.(id, after, limit, [this.root, this.trash]);
      const known = this.rows.placedPage ? this.tree.known(placed?.ways ?? []) : undefined;
      const r = this.tree.resolveId(id, known ? { row: placed?.row, known } : undefined);
      if (r.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory', String(id));
      const where = r.inTrash ? 'trash' : 'live';
      const out: DirEntry[] = (placed ? placed.children : this.rows.childrenPage(id, after, limit)).map((row) => ({
        name: row.entry_name,
        info: this.tree.infoOf(row, { where, segs: [...r.segs, row.entry_name] }, row, known),
      }));
      // `.trash` is no row of the root: it goes where its name sorts (no other entry has it)
      const last = out.length === limit ? out[out.length - 1]!.name : undefined;
      if (id === this.root && (after === undefined || after < TRASH_NAME) && (last === undefined || TRASH_NAME < last)) {
        const t = this.tree.row(this.trash)!;
        const at = out.findIndex((e) => TRASH_NAME < e.name);
        out.splice(at < 0 ? out.length : at, 0, { name: TRASH_NAME, info: this.tree.infoOf(t, { where: 'trash', segs: [TRASH_NAME] }) });
        if (out.length > limit) out.pop();
      }
      return out;
    });
  }

  /**
   * readdirPlus's page packed (DirStats): what the entries' attributes need, without a NodeInfo
   * per entry (issue 15: a walk's cost per entry). The same page, order and numbers as
   * readdirPlus, whose NodeInfos an engine without `statPage` packs instead. A link's size is its
   * readlink answer's length (L4), so a link (rare in a page) still reads its row and finds its
   * target's place; everything else comes from the page's one statement.
   */
  readdirStats(id: number, after: string | undefined, limit: number): DirStats {
    const statPage = this.rows.statPage?.bind(this.rows);
    if (!statPage) {
      const list = this.readdirPlus(id, after, limit);
      const d = newDirStats(list.length);
      list.forEach((e, i) => putDirStat(d, i, e.name, e.info));
      return d;
    }
    if (!Number.isInteger(limit) || limit < 1) throw fail('InvalidArgument', 'a page holds at least one entry', String(limit));
    return this.host.engine.snapshot(() => {
      const r = this.tree.resolveId(id);
      if (r.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory', String(id));
      const rows = statPage(id, after, limit);
      const { trashAt, n } = this.#trashSlot(id, after, limit, rows);
      const d = newDirStats(n);
      const nums = d.nums;
      for (let i = 0, k = 0; i < n; i++) {
        if (i === trashAt) {
          putDirStat(d, i, TRASH_NAME, this.tree.infoOf(this.tree.row(this.trash)!, { where: 'trash', segs: [TRASH_NAME] }));
          continue;
        }
        const w = rows[k++]!;
        const b = i * DS.STRIDE;
        const kind = w[2] >> 1;
        const ns = w[12];
        d.names[i] = w[0];
        nums[b + DS.ID] = w[1];
        nums[b + DS.KIND] = kind;
        nums[b + DS.MODE] = w[3];
        // as infoOf: 2 + subdirectories for a directory (a child is never the root), else its names
        nums[b + DS.NLINK] = kind === DIR_KIND ? 2 + w[14] : Math.max(1, w[14]);
        nums[b + DS.UID] = w[4];
        nums[b + DS.GID] = w[5];
        nums[b + DS.RDEV] = w[7];
        nums[b + DS.SIZE] = kind === DIR_KIND ? 4096 : kind === LINK_KIND ? this.linkSize(w[1], r.inTrash, r.segs, w[0]) : w[6];
        nums[b + DS.ATIME] = w[8];
        nums[b + DS.ATIME_NS] = Math.floor(ns / 1_000_000);
        nums[b + DS.MTIME] = w[9];
        nums[b + DS.MTIME_NS] = Math.floor(ns / 1000) % 1000;
        nums[b + DS.CTIME] = w[10];
        nums[b + DS.CTIME_NS] = ns % 1000;
        nums[b + DS.BTIME] = w[11];
        nums[b + DS.FLAGS] = w[2] & 1 ? DS_BOUND : 0;
        if (w[13] !== null) d.layouts.set(i, w[13]);
      }
      return d;
    });
  }

  /**
   * Where `.trash` goes in a page of the root's rows (`rows` sorted by name, first value the
   * name): it is no row of the root, so it sits where its name sorts, as in readdirPlus. -1 when
   * the page is not the root's or `.trash` falls outside it; `n` is the page's entry count.
   */
  #trashSlot(id: number, after: string | undefined, limit: number, rows: ReadonlyArray<readonly [string, ...unknown[]]>): { trashAt: number; n: number } {
    let trashAt = -1;
    const last = rows.length === limit ? rows[rows.length - 1]![0] : undefined;
    if (id === this.root && (after === undefined || after < TRASH_NAME) && (last === undefined || TRASH_NAME < last)) {
      trashAt = rows.findIndex((w) => TRASH_NAME < w[0]);
      if (trashAt < 0) trashAt = rows.length;
    }
    return { trashAt, n: Math.min(limit, rows.length + (trashAt >= 0 ? 1 : 0)) };
  }

  /**
   * readdirStats's page with names, ids, kinds and modes only (FLAGS DS_NAMES; `.trash` whole):
   * what a names-only listing needs (issue 15), one 4-value row per entry and no nlink counts.
   * An engine without `namePage` gives readdirStats. `spare`: memory the caller no longer needs,
   * for the numbers (newDirStats; a mount's walk reuses one page's memory for the next, issue 15).
   */
  readdirNames(id: number, after: string | undefined, limit: number, spare?: ArrayBuffer): DirStats {
    const namePage = this.rows.namePage?.bind(this.rows);
    if (!namePage) return this.readdirStats(id, after, limit);
    if (!Number.isInteger(limit) || limit < 1) throw fail('InvalidArgument', 'a page holds at least one entry', String(limit));
    return this.host.engine.snapshot(() => {
      const r = this.tree.resolveId(id);
      if (r.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory', String(id));
      const rows = namePage(id, after, limit);
      const { trashAt, n } = this.#trashSlot(id, after, limit, rows);
      const d = newDirStats(n, spare);
      const nums = d.nums;
      for (let i = 0, k = 0; i < n; i++) {
        if (i === trashAt) {
          putDirStat(d, i, TRASH_NAME, this.tree.infoOf(this.tree.row(this.trash)!, { where: 'trash', segs: [TRASH_NAME] }));
          continue;
        }
        const w = rows[k++]!;
        const b = i * DS.STRIDE;
        d.names[i] = w[0];
        nums[b + DS.ID] = w[1];
        nums[b + DS.KIND] = w[2] >> 1;
        nums[b + DS.MODE] = w[3];
        nums[b + DS.FLAGS] = (w[2] & 1 ? DS_BOUND : 0) | DS_NAMES;
      }
      return d;
    });
  }

  /**
   * A value that differs after any change to the library's metadata (SpaceRows.listingVersion);
   * undefined where the engine cannot tell (PostgreSQL). Taken before a page is read, the same
   * value later means the page is still the library's.
   */
  listingVersion(): string | undefined {
    return this.rows.listingVersion?.();
  }

  /** st_size of link `id` named `name` in a directory at `segs`: its readlink answer's bytes (L4), as infoOf. */
  private linkSize(id: number, inTrash: boolean, segs: string[], name: string): number {
    const row = this.tree.row(id)!;
    const link = this.tree.linkOf(row, { where: inTrash ? 'trash' : 'live', segs: [...segs, name] });
    return link.readlink === undefined ? 0 : Buffer.byteLength(link.readlink, 'utf8');
  }

  /** The entry `name` of directory `parent` (node ids): what lookup(2) asks the mount. */
  lookup(parent: number, name: string): NodeInfo {
    return this.host.engine.snapshot(() => {
      const r = this.tree.lookup(parent, name);
      return this.tree.infoOf(r.row, { where: r.inTrash ? 'trash' : 'live', segs: r.segs }, r.counts, r.known);
    });
  }

  private readdirIn(r: Resolved, path: string, counted?: Array<Counted<NodeRow & { entry_name: string }>>, known?: Known): DirEntry[] {
    if (r.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory', path);
    const rows: Array<NodeRow & { entry_name: string; subdirs?: number; names?: number }> = counted ?? this.rows.children(r.row.id);
    const where = r.inTrash ? 'trash' : 'live';
    const out: DirEntry[] = rows.map((row) => ({
      name: row.entry_name,
      info: this.tree.infoOf(row, { where, segs: [...r.segs, row.entry_name] }, counted ? (row as Counted) : undefined, known),
    }));
    if (r.row.id === this.root) {
      const t = this.tree.row(this.trash)!;
      out.push({ name: TRASH_NAME, info: this.tree.infoOf(t, { where: 'trash', segs: [TRASH_NAME] }) });
    }
    return out;
  }

  /** The space's default storage class (new files and links take it; L3 checks it for ARCHIVE). */
  setDefaultStorageClass(value: string): void {
    const cls = checkStorageClass(value);
    this.tx(() => this.rows.setSpaceClass(this.name, cls));
  }

  /** Nodes and bytes of the space, from counters kept exact in every transaction (O(1), issue 15). */
  statfs(): StatFs {
    const r = this.rows.statfs(this.name);
    return { files: r?.files ?? 0, bytes: r?.bytes ?? 0 };
  }

  userMeta(pathOrId: string | number): Record<string, string> {
    const id = typeof pathOrId === 'number' ? pathOrId : this.tree.resolve(pathOrId).row.id;
    const out: Record<string, string> = {};
    for (const x of this.rows.xattrs(id)) {
      out[x.name] = Buffer.from(x.value).toString('utf8');
    }
    return out;
  }

  mkdir(path: string, opts: Owner & { parents?: boolean; conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    const conflict = opts.conflict === undefined ? DEFAULT_CONFLICT.mkdir : checkConflict(opts.conflict);
    return this.tx(() => {
      const segs = splitPath(path, 'destination');
      if (segs.length === 0) {
        if (opts.parents) return this.edits.placed(this.root);
        throw fail('SameNameDirectoryOrFileExists', 'the root already exists', path);
      }
      if (opts.parents) {
        const dir = this.edits.ensureDirs(segs, opts, path);
        return this.edits.placed(dir);
      }
      const { parent, name } = this.tree.parentOf(path, true);
      return this.mkdirIn(parent, name, path, conflict, opts);
    });
  }

  /** mkdir in directory `parentId` (no `parents`: the directory is given). */
  mkdirAt(parentId: number, name: string, opts: Owner & { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    const conflict = opts.conflict === undefined ? DEFAULT_CONFLICT.mkdir : checkConflict(opts.conflict);
    return this.tx(() => {
      const place = this.tree.parentAt(parentId, name, true);
      return this.mkdirIn(place.parent, place.name, place.subject, conflict, opts);
    });
  }

  private mkdirIn(parent: NodeRow, name: string, path: string, conflict: Conflict, opts: Owner & { authorize?: Authorize }): Placed {
    const { gid, perm } = this.edits.inheritGroup(parent, opts.gid, (opts.mode ?? 0o755) & 0o7777, true);
    const id = this.edits.occupy(parent.id, name, 'dir', conflict, path, (finalName) => {
      const dir = this.edits.insertNode({ kind: 'dir', mode: S_IFDIR | perm, uid: opts.uid ?? 0, gid });
      this.edits.attach(parent.id, finalName, dir, 'dir');
      return dir;
    }, { fn: opts.authorize });
    return this.edits.placed(id);
  }

  mknod(path: string, opts: { mode: number; rdev?: number; uid?: number; gid?: number }): NodeInfo {
    if ((opts.mode & S_IFMT) === S_IFREG || (opts.mode & S_IFMT) === 0) return this.createFile(path, opts);
    if ((opts.mode & S_IFMT) === S_IFDIR || (opts.mode & S_IFMT) === S_IFLNK) {
      throw fail('InvalidArgument', 'mknod cannot make directories or links', path);
    }
    return this.tx(() => {
      const { parent, name } = this.tree.parentOf(path, false);
      return this.mknodIn(parent, name, path, opts);
    });
  }

  /** mknod in directory `parentId` (node ids, as `lookup`): what `mknod` of that path answers. */
  mknodAt(parentId: number, name: string, opts: { mode: number; rdev?: number; uid?: number; gid?: number }): NodeInfo {
    if ((opts.mode & S_IFMT) === S_IFREG || (opts.mode & S_IFMT) === 0) return this.createFileAt(parentId, name, opts);
    return this.tx(() => {
      const place = this.tree.parentAt(parentId, name, false);
      if ((opts.mode & S_IFMT) === S_IFDIR || (opts.mode & S_IFMT) === S_IFLNK) {
        throw fail('InvalidArgument', 'mknod cannot make directories or links', place.subject);
      }
      return this.mknodIn(place.parent, place.name, place.subject, opts);
    });
  }

  private mknodIn(parent: NodeRow, name: string, path: string, opts: { mode: number; rdev?: number; uid?: number; gid?: number }): NodeInfo {
    this.edits.claimFree(parent.id, name, path);
    const { gid } = this.edits.inheritGroup(parent, opts.gid, opts.mode, false);
    const id = this.edits.insertNode({ kind: 'special', mode: opts.mode, rdev: opts.rdev ?? 0, uid: opts.uid ?? 0, gid });
    this.edits.attach(parent.id, name, id, 'special');
    return this.edits.placed(id).info;
  }

  /** create(2) through the mount: an empty file; EEXIST when the name is taken. */
  createFile(path: string, owner: Owner = {}): NodeInfo {
    return this.tx(() => {
      const { parent, name } = this.tree.parentOf(path, false);
      return this.createFileIn(parent, name, path, owner);
    });
  }

  /** create(2) of `name` in directory `parentId` (node ids, as `lookup`). */
  createFileAt(parentId: number, name: string, owner: Owner = {}): NodeInfo {
    return this.tx(() => {
      const place = this.tree.parentAt(parentId, name, false);
      return this.createFileIn(place.parent, place.name, place.subject, owner);
    });
  }

  private createFileIn(parent: NodeRow, name: string, path: string, owner: Owner): NodeInfo {
    this.edits.claimFree(parent.id, name, path);
    const { gid } = this.edits.inheritGroup(parent, owner.gid, 0, false);
    const id = this.edits.insertNode({
      kind: 'file',
      mode: S_IFREG | ((owner.mode ?? 0o644) & 0o7777),
      uid: owner.uid ?? 0,
      gid,
      blob: EMPTY_BLOB_KEY,
      etag: EMPTY_ETAG,
      storage_class: this.edits.defaultClass(),
    });
    this.edits.attach(parent.id, name, id, 'file');
    return this.edits.placed(id).info;
  }

  /**
   * What an upload to `path` would meet, checked before its body is read (a bad destination is
   * refused before a byte is stored or hashed). `putFile` checks everything again in its own
   * transaction: this is only the early answer.
   */
  checkPutFile(path: string, opts: { conflict?: Conflict; createParents?: boolean; meta?: Record<string, string>; storageClass?: string } = {}): void {
    const conflict = checkConflict(opts.conflict);
    if (opts.storageClass !== undefined) checkStorageClass(opts.storageClass);
    if (opts.meta !== undefined) checkMeta(opts.meta);
    this.host.engine.snapshot(() => {
      const { parentId, name } = this.uploadPlace(path, opts.createParents === true, false);
      if (parentId === undefined) return; // the missing directories will be made
      const existing = this.tree.occupied(parentId, name);
      if (!existing || conflict === 'rename') return;
      if (conflict === 'ask' || existing === 'reserved' || existing.kind === 'dir') {
        throw fail('SameNameDirectoryOrFileExists', 'a file or directory with the same name exists', path);
      }
    });
  }

  /**
   * Where an upload to `path` goes: its parent directory and name. With `createParents` the
   * missing directories are made (`make`), or only looked for (undefined when some are missing:
   * the early check of `checkPutFile`); without, the parent must exist.
   */
  private uploadPlace(path: string, createParents: boolean, make: boolean): { parentId: number | undefined; name: string } {
    if (!createParents) {
      const p = this.tree.parentOf(path, false);
      return { parentId: p.parent.id, name: p.name };
    }
    const segs = splitPath(path, 'destination');
    if (segs.length === 0) throw fail('InvalidDestinationPath', 'a file path must not be empty', path);
    const name = segs[segs.length - 1]!;
    validateName(name, false, path);
    const dirs = segs.slice(0, -1);
    return { parentId: make ? this.edits.ensureDirs(dirs, {}, path) : this.tree.existingDirs(dirs, path), name };
  }

  /**
   * Upload (SMH PUT with a body, BOS PutObject, CLI put). With 'overwrite' an existing file keeps
   * its identity and shows the new content, so every bound link shows it too (L10); the content
   * it had goes to the recycle bin (`binOldVersion`).
   */
  putFile(
    path: string,
    blob: BlobRef,
    opts: PutFileOptions = {},
  ): Placed {
    const conflict = checkConflict(opts.conflict);
    const cls = opts.storageClass === undefined ? undefined : checkStorageClass(opts.storageClass);
    const meta = opts.meta === undefined ? undefined : checkMeta(opts.meta);
    return this.tx(() => {
      this.host.useLease(blob);
      const place = this.uploadPlace(path, opts.createParents === true, true);
      const parentId = place.parentId!;
      const name = place.name;
      const t = opts.mtimeUs ?? this.tree.now();
      const existing = this.tree.occupied(parentId, name);
      if (existing && existing !== 'reserved' && existing.kind === 'file' && conflict === 'overwrite') {
        opts.authorize?.({ replacing: 'file' });
        this.edits.binOldVersion(existing, blob.key, { parent: parentId, name });
        this.rows.setContent(existing.id, blob, t, this.tree.now());
        if (cls) this.rows.setClass(existing.id, cls);
        if (meta) {
          this.rows.clearXattrs(existing.id);
          for (const [k, v] of Object.entries(meta)) this.rows.setXattr(existing.id, k, Buffer.from(v, 'utf8'));
        }
        // the old blob stays referenced by the bin item binOldVersion made: nothing to drop
        return this.edits.placed(existing.id, { parent: parentId, name });
      }
      const id = this.edits.occupy(parentId, name, 'file', conflict, path, (finalName) => {
        const file = this.edits.insertNode({
          kind: 'file',
          mode: S_IFREG | ((opts.mode ?? 0o644) & 0o7777),
          uid: opts.uid ?? 0,
          gid: this.edits.inheritGroup(this.tree.row(parentId)!, opts.gid, 0, false).gid,
          blob: blob.key,
          size: blob.size,
          etag: blob.etag,
          layout: blob.layout ?? null,
          mtime: t,
          storage_class: cls ?? this.edits.defaultClass(),
        });
        this.edits.attach(parentId, finalName, file, 'file');
        for (const [k, v] of Object.entries(meta ?? {})) this.rows.setXattr(file, k, Buffer.from(v, 'utf8'));
        return file;
      }, { fn: opts.authorize });
      return this.edits.placed(id);
    }, true);
  }

  /**
   * B5: commit new content for an open file (flush/fsync/release/truncate through the mount).
   * `ctimeUs`: when the content changed (the open file's last write or truncate) — a close is no
   * change of its own, so the commit stamps that, not its own time; a later ctime already in the
   * store (a chmod since) stays. Absent: the commit's time.
   */
  setContent(nodeId: number, blob: BlobRef, opts: { mtimeUs?: number; mtimeNsRem?: number; ctimeUs?: number } = {}): NodeInfo {
    const mtimeNs = opts.mtimeUs === undefined ? 0 : nsRem(opts.mtimeNsRem, 'mtime');
    return this.tx(() => {
      this.host.useLease(blob);
      const pre = this.tree.rowPlaced(nodeId);
      const row = pre?.row;
      if (!row || row.kind !== 'file') throw fail('FileNotFound', 'the file no longer exists', String(nodeId));
      if (pre!.loc.where === 'trash') throw fail('ReadOnly', 'the file is in the recycle bin; restore it first', String(nodeId)); // T3
      const t = this.tree.now();
      const ctime = opts.ctimeUs === undefined ? t : Math.max(opts.ctimeUs, row.ctime);
      this.rows.setContent(nodeId, blob, opts.mtimeUs ?? t, ctime, mtimeNs);
      if (row.blob && row.blob !== blob.key) this.host.dropBlobs([row.blob]);
      return this.tree.infoById(nodeId)!.info;
    }, true);
  }

  /**
   * A read of a file or a listing of a directory, as Linux records it under `relatime` (its
   * default, and what the mount shows in /proc/mounts): atime moves to now only when it is not
   * later than mtime or ctime, or is more than a day old — so a first read after each change is
   * seen (mutt, tmpwatch, `find -amin`) while repeated reads cost nothing. Given the node as the
   * caller last saw it, so nothing is written when no update is due; ctime does not change.
   */
  accessed(seen: NodeInfo): void {
    if (!atimeDue(seen.atimeUs, seen.mtimeUs, seen.ctimeUs, nowUs())) return;
    this.tx(() => {
      const row = this.tree.row(seen.id);
      if (!row || row.state !== 'live' || !atimeDue(row.atime, row.mtime, row.ctime, this.tree.now())) return;
      this.rows.touchAtime(row.id, this.tree.now());
    });
  }

  setattr(pathOrId: string | number, attrs: Attrs): NodeInfo {
    const atimeNs = nsRem(attrs.atimeNsRem, 'atime');
    const mtimeNs = nsRem(attrs.mtimeNsRem, 'mtime');
    return this.tx(() => {
      let row: NodeRow;
      if (typeof pathOrId === 'number') {
        const r = this.tree.row(pathOrId);
        if (!r || r.space !== this.name) throw fail('FileNotFound', `no node ${pathOrId}`, String(pathOrId));
        if (this.tree.inBin(r.id)) throw this.tree.binReadOnly(String(pathOrId));
        row = r;
      } else {
        const r = this.tree.resolve(pathOrId);
        if (r.inTrash) throw this.tree.binReadOnly(pathOrId);
        row = r.row;
      }
      const t = this.tree.now();
      this.rows.setattr({
        id: row.id,
        mode: attrs.mode === undefined ? row.mode : (row.mode & S_IFMT) | (attrs.mode & 0o7777),
        uid: attrs.uid ?? row.uid,
        gid: attrs.gid ?? row.gid,
        atime: attrs.atimeUs ?? row.atime,
        mtime: attrs.mtimeUs ?? row.mtime,
        ctime: t,
        // a time set keeps the nanoseconds given with it (M2); one left alone keeps its own
        atime_ns: attrs.atimeUs === undefined ? row.atime_ns : atimeNs,
        mtime_ns: attrs.mtimeUs === undefined ? row.mtime_ns : mtimeNs,
      });
      return this.tree.infoById(row.id)!.info;
    });
  }
}
