/**
 * One space of a library: every rule of SPEC sections 2–5 (names, links, conflicts, the recycle
 * bin) lives here, each public operation in one synchronous IMMEDIATE transaction. Nothing here
 * awaits or touches blob bytes: operations that drop the last reference to a blob hand its key to
 * the library, which collects it after the commit (T6).
 *
 * Paths are resolved node by node through `entries`. A node's current path is found by walking
 * up its entries to the space root (live) or to the space's recycle-bin node (shown as `.trash`);
 * a node that reaches neither is gone (a cascaded link or a directory being purged).
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { fail, SmhError } from '../errors.js';
import { EMPTY_BLOB_KEY } from '../blob/types.js';
import {
  conflictName,
  conflictNumber,
  conflictPattern,
  joinPath,
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
  relativePath,
  splitPath,
  trashViewName,
  TRASH_NAME,
  truncateUtf8,
  validateLinkTarget,
  validateName,
  type PathRole,
} from './paths.js';
import {
  CONFLICTS,
  DEFAULT_CONFLICT,
  STORAGE_CLASSES,
  type Attrs,
  type Authorize,
  type BlobRef,
  type Conflict,
  type DirEntry,
  type NodeInfo,
  type NodeKind,
  type Owner,
  type Placed,
  type RecycleItem,
  type StatFs,
  type StorageClass,
} from './types.js';
import type { Library } from './library.js';

export interface NodeRow {
  id: number;
  space: string;
  kind: NodeKind;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  blob: string | null;
  etag: string | null;
  layout: string | null;
  rdev: number;
  storage_class: StorageClass;
  link_flavour: 'bound' | 'path' | null;
  link_node: number | null;
  link_path: string | null;
  link_base: 'parent' | 'space' | null;
  atime: number;
  mtime: number;
  ctime: number;
  btime: number;
  state: 'live' | 'detached' | 'purging';
}

interface Location {
  where: 'live' | 'trash' | 'gone';
  segs: string[];
}

interface Resolved {
  row: NodeRow;
  segs: string[];
  parent: number | null;
  name: string;
  inTrash: boolean;
}

/**
 * C2 names already handed out in one transaction, per (parent, stem, ext): what one range read
 * found taken, plus what was picked since, and the lowest n not known to be taken.
 */
type FreeNames = Map<string, { taken: Set<number>; next: number }>;

/** The key of `FreeNames` for the alternatives to `name` in `parent`. */
function freeNamesKey(parent: number, name: string, isDir: boolean): string {
  const { stem, ext } = conflictPattern(name, isDir);
  return `${parent}\0${stem}\0${ext}`;
}

interface ItemRow {
  id: number;
  node: number;
  kind: NodeKind;
  name: string;
  original_path: string;
  size: number;
  removed_at: number;
}

/**
 * Bounded steps for purging many bin items (empty, retention): a step's transaction ends once it
 * has deleted this many nodes. ~1,000 nodes is a few ms of SQLite work here (native-notes/scale.md).
 */
const STEP_NODES = 1000;
/** Items read per query inside a step. */
const STEP_ITEMS = 200;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const EMPTY_ETAG = 'd41d8cd98f00b204e9800998ecf8427e';
const MAX_LINK_HOPS = 40;
/**
 * The most bound links one file may have. Deleting or restoring a file moves all of its links in
 * one transaction (L12), so this bounds the longest such transaction (10,000 links: ~0.5 s on the
 * 2-core test machine); like ext4's 65,000 names per inode, a limit no ordinary library meets.
 */
export const MAX_BOUND_LINKS = 10_000;
const MAX_XATTR_VALUE = 64 * 1024;
const XATTR_STORAGE_CLASS = 'user.smhfs.storage-class';
const XATTR_LINK = 'user.smhfs.link';

/** Set when a walk climbs out of the space (D10). */
interface Escape {
  outside: boolean;
}

/** A BOS key's segments, '.' dropped and '..' kept at the root (chroot semantics). */
function spaceKeySegs(key: string): string[] {
  const out: string[] = [];
  for (const s of key.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return out;
}

/** Where a mount-made relative target leads from `parentSegs`, lexically; undefined when absolute or above the root. */
function lexicalTarget(parentSegs: string[], stored: string): string[] | undefined {
  if (stored.startsWith('/')) return undefined;
  const out = [...parentSegs];
  for (const s of stored.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(s);
  }
  return out;
}

/** Options of the dialect tree operations (move, copy). */
export interface TreeOpOptions {
  conflict?: Conflict;
  /** Copy: refuse (OperationTooLarge) a copy of more nodes than this — a server's per-request budget. */
  maxNodes?: number;
  /** What the caller's endpoint handles: 'dir' refuses a non-directory source, 'file' a directory. */
  kind?: 'file' | 'dir';
  authorize?: Authorize;
}

export const nowUs = (): number => Date.now() * 1000;

/**
 * D10: how absolute link targets are read, given per call — never a property of the library, so
 * a link resolves the same whether or not a mount is running in this process. The mount passes
 * its mountpoint (an absolute target under it is taken relative to the space root, L1); HTTP and
 * the CLI pass nothing (an absolute target then leads nowhere: it dangles).
 */
export interface ResolveContext {
  mountpoint?: string | undefined;
}

/** A user-given string inside a message, cut short: errors never echo a megabyte back. */
export function quote(s: string, maxBytes = 200): string {
  const cut = truncateUtf8(s, maxBytes);
  return JSON.stringify(cut === s ? s : `${cut}…`);
}

function pathTooLong(subject: string): SmhError {
  return fail('PathTooLong', `the copy would make a path longer than ${MAX_PATH_BYTES} bytes (PATH_MAX)`, subject);
}
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

export function checkConflict(value: unknown): Conflict {
  if (value === undefined) return DEFAULT_CONFLICT.place;
  if (typeof value !== 'string' || !(CONFLICTS as readonly string[]).includes(value)) {
    throw fail('InvalidArgument', `conflict strategy must be one of ${CONFLICTS.join(', ')}, not '${String(value)}'`);
  }
  return value as Conflict;
}

function checkStorageClass(value: unknown): StorageClass {
  if (typeof value !== 'string' || !(STORAGE_CLASSES as readonly string[]).includes(value)) {
    throw fail('InvalidArgument', `storage class must be one of ${STORAGE_CLASSES.join(', ')}, not '${String(value)}'`);
  }
  return value as StorageClass;
}

export class Space {
  readonly name: string;
  readonly root: number;
  readonly trash: number;
  private readonly lib: Library;
  private readonly q: ReturnType<typeof prepare>;

  constructor(lib: Library, db: Database.Database, name: string, root: number, trash: number) {
    this.lib = lib;
    this.name = name;
    this.root = root;
    this.trash = trash;
    this.q = prepare(db);
  }

  // ───────────────────────────── transactions ─────────────────────────────

  /** `freeing`: a delete, which may use the library's reserve space on a full disk (D9). */
  private tx<T>(fn: () => T, durable = false, freeing = false): T {
    return this.lib.transaction(fn, { durable, freeing });
  }

  // ───────────────────────────── resolution ─────────────────────────────

  private row(id: number): NodeRow | undefined {
    return this.q.node.get(id) as NodeRow | undefined;
  }

  private child(parent: number, name: string): NodeRow | undefined {
    return this.q.child.get(parent, name) as NodeRow | undefined;
  }

  /** Where a node is now: its segments from the space root, or from `.trash`. */
  locate(id: number): Location {
    const segs: string[] = [];
    let cur = id;
    for (let depth = 0; depth < 100_000; depth++) {
      if (cur === this.root) return { where: 'live', segs: segs.reverse() };
      if (cur === this.trash) return { where: 'trash', segs: [TRASH_NAME, ...segs.reverse()] };
      const e = this.q.entryOf.get(cur) as { parent: number; name: string } | undefined;
      if (!e) return { where: 'gone', segs: [] };
      segs.push(e.name);
      cur = e.parent;
    }
    throw fail('Internal', `directory cycle at node ${id}`);
  }

  /**
   * `locate` for one of many nodes handled by one operation (a cascade of thousands of links):
   * the locations of the directories on the way up are remembered in `dirs`, so each directory
   * is walked once, not once per link in it. Also returns the node's own entry.
   */
  private locateVia(id: number, dirs: Map<number, Location>): { loc: Location; parent: number; name: string } {
    const own = this.q.entryOf.get(id) as { parent: number; name: string } | undefined;
    if (!own) throw fail('Internal', `node ${id} has no entry`);
    const chain: Array<{ id: number; name: string }> = [];
    let cur = own.parent;
    let base: Location | undefined;
    for (let depth = 0; depth < 100_000 && !base; depth++) {
      const known = dirs.get(cur);
      if (known) base = known;
      else if (cur === this.root) base = { where: 'live', segs: [] };
      else if (cur === this.trash) base = { where: 'trash', segs: [TRASH_NAME] };
      else {
        const e = this.q.entryOf.get(cur) as { parent: number; name: string } | undefined;
        if (!e) base = { where: 'gone', segs: [] };
        else {
          chain.push({ id: cur, name: e.name });
          cur = e.parent;
        }
      }
    }
    if (!base) throw fail('Internal', `directory cycle at node ${id}`);
    let loc = base;
    for (let i = chain.length - 1; i >= 0; i--) {
      if (loc.where !== 'gone') loc = { where: loc.where, segs: [...loc.segs, chain[i]!.name] };
      dirs.set(chain[i]!.id, loc);
    }
    return { loc: loc.where === 'gone' ? loc : { where: loc.where, segs: [...loc.segs, own.name] }, parent: own.parent, name: own.name };
  }

  private walk(segs: string[], subject: string): Resolved {
    if (segs.length === 0) return { row: this.row(this.root)!, segs, parent: null, name: '', inTrash: false };
    // The root is a directory by construction: no need to read its row to step into it.
    let row: NodeRow | undefined;
    let parent: number | null = null;
    let name = '';
    let inTrash = false;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      if (Buffer.byteLength(seg) > MAX_NAME_BYTES) throw fail('FileNameLengthExceed', `a name is longer than ${MAX_NAME_BYTES} bytes`, subject);
      if (row && row.kind !== 'dir') throw fail('NotADirectory', `'${joinPath(segs.slice(0, i))}' is not a directory`, subject);
      const dir = row ? row.id : this.root;
      let next: NodeRow | undefined;
      if (i === 0 && seg === TRASH_NAME) {
        next = this.row(this.trash);
        inTrash = true;
      } else {
        next = this.child(dir, seg);
      }
      if (!next) throw fail('FileNotFound', 'no such file or directory', subject);
      parent = dir;
      name = seg;
      row = next;
    }
    return { row: row!, segs, parent, name, inTrash };
  }

  private resolve(path: string, role: PathRole = 'source'): Resolved {
    return this.walk(splitPath(path, role), path);
  }

  /** Resolve `path` as something the caller will change; the bin view is read-only (T3). */
  private resolveWritable(path: string, role: PathRole = 'source'): Resolved {
    return this.writable(this.resolve(path, role), path);
  }

  private writable(r: Resolved, path: string): Resolved {
    if (r.inTrash) throw fail('ReadOnly', 'the recycle bin is read-only; restore the item first', path);
    if (r.row.id === this.root) throw fail('InvalidDestinationPath', 'the root cannot be changed this way', path);
    return r;
  }

  /**
   * The parent directory of a path to be created, and the new name. A missing parent is
   * `missingCode` (DirectoryNotFound for the dialects; it maps to ENOENT for the mount).
   */
  private parentOf(path: string, isDir: boolean): { parent: NodeRow; name: string; segs: string[] } {
    const segs = splitPath(path, 'destination');
    if (segs.length === 0) throw fail('InvalidDestinationPath', 'the root already exists', path);
    const name = segs[segs.length - 1]!;
    validateName(name, isDir, path);
    let parent: Resolved;
    try {
      parent = this.walk(segs.slice(0, -1), path);
    } catch (e) {
      if (e instanceof SmhError && e.code === 'FileNotFound') throw fail('DirectoryNotFound', 'the parent directory does not exist', path);
      throw e;
    }
    if (parent.inTrash) throw fail('ReadOnly', 'the recycle bin is read-only; restore the item first', path);
    if (parent.row.kind !== 'dir') throw fail('NotADirectory', 'the parent is not a directory', path);
    return { parent: parent.row, name, segs };
  }

  private occupied(parent: number, name: string): NodeRow | 'reserved' | undefined {
    if (parent === this.root && name === TRASH_NAME) return 'reserved';
    return this.child(parent, name);
  }

  /**
   * C2: the first free `stem (n).ext` in `parent`. The names of that form already taken come from
   * one index range read (`stem (` ≤ name < `stem )`), not one probe per n, so naming k nodes
   * that share a name costs O(k), not O(k²) (issue 15: 2,000 same-named links took 11 s). A
   * caller naming many nodes in one transaction passes one `memo`, so each (parent, pattern) is
   * read once; each pick is still checked with a point lookup, so a name taken since the read
   * (by a move that did not go through here) is never handed out twice.
   */
  private freeName(parent: number, name: string, isDir: boolean, memo: FreeNames = new Map()): string {
    const { stem, ext } = conflictPattern(name, isDir);
    const key = freeNamesKey(parent, name, isDir);
    let names = memo.get(key);
    if (!names) {
      names = { taken: new Set(), next: 1 };
      for (const r of this.q.namesBetween.all(parent, `${stem} (`, `${stem} )`) as Array<{ name: string }>) {
        const n = conflictNumber(r.name, stem, ext);
        if (n !== undefined) names.taken.add(n);
      }
      memo.set(key, names);
    }
    for (;;) {
      while (names.taken.has(names.next)) names.next++;
      const n = names.next;
      names.taken.add(n);
      const candidate = conflictName(name, n, isDir);
      validateName(candidate, isDir);
      if (!this.occupied(parent, candidate)) return candidate;
    }
  }

  // ───────────────────────────── node info ─────────────────────────────

  private infoOf(row: NodeRow, loc?: Location): NodeInfo {
    const where = loc ?? this.locate(row.id);
    const info: NodeInfo = {
      id: row.id,
      kind: row.kind,
      mode: row.mode,
      uid: row.uid,
      gid: row.gid,
      size: row.kind === 'dir' ? 4096 : row.size,
      // 2 + subdirectories as listed; the root also lists `.trash` (find's leaf optimisation counts on it)
      nlink: row.kind === 'dir' ? 2 + (this.q.subdirCount.get(row.id) as { n: number }).n + (row.id === this.root ? 1 : 0) : 1,
      rdev: row.rdev,
      blob: row.blob,
      etag: row.etag,
      ...(row.layout ? { layout: row.layout } : {}),
      storageClass: row.storage_class,
      atimeUs: row.atime,
      mtimeUs: row.mtime,
      ctimeUs: row.ctime,
      birthtimeUs: row.btime,
      path: joinPath(where.segs),
      // a link cascaded with its target (L12) has no place of its own but is in the bin all the same
      inTrash: where.where === 'trash' || row.state === 'detached',
    };
    if (row.kind === 'link') {
      const parentSegs = where.segs.slice(0, -1);
      if (row.link_flavour === 'bound') {
        const target = this.locate(row.link_node!);
        const readlink = target.where === 'gone' ? undefined : relativePath(parentSegs, target.segs);
        info.link = { flavour: 'bound', readlink, targetNode: row.link_node! };
        if (target.where !== 'gone') info.link.targetPath = joinPath(target.segs);
      } else {
        const stored = row.link_path!;
        // L5: a BOS key reads as the relative path to it; a mount-made target as stored. Where it
        // leads in the space (lexically): `targetPath`, unset when it leads outside (D10).
        const key = row.link_base === 'space' ? spaceKeySegs(stored) : undefined;
        const readlink = key ? relativePath(parentSegs, key) : stored;
        info.link = { flavour: 'path', readlink, stored, pathBase: row.link_base ?? 'parent' };
        const lexical = key ?? lexicalTarget(parentSegs, stored);
        if (lexical) info.link.targetPath = joinPath(lexical);
      }
      info.size = info.link.readlink === undefined ? 0 : Buffer.byteLength(info.link.readlink, 'utf8');
    }
    return info;
  }

  stat(path: string, opts: { follow?: boolean } & ResolveContext = {}): NodeInfo {
    return this.lib.snapshot(() => {
      const r = this.resolve(path);
      if (opts.follow && r.row.kind === 'link') return this.followForMount(r, opts);
      return this.infoOf(r.row, { where: r.inTrash ? 'trash' : 'live', segs: r.segs });
    });
  }

  /** Like stat, for an operation about to change the node (open for writing, truncate): the bin is read-only (T3). */
  statWritable(path: string): NodeInfo {
    const info = this.stat(path);
    if (info.inTrash) throw fail('ReadOnly', 'the recycle bin is read-only; restore the item first', path);
    return info;
  }

  /** open(2): for writing, a node that may be written and is not a directory. */
  statOpen(path: string, opts: { write: boolean }): NodeInfo {
    const info = opts.write ? this.statWritable(path) : this.stat(path);
    if (opts.write && info.kind === 'dir') throw fail('IsADirectory', 'is a directory', info.path);
    return info;
  }

  /** truncate(2): only a regular file that may be written has a size to change. */
  statTruncatable(path: string): NodeInfo {
    const info = this.statWritable(path);
    if (info.kind === 'dir') throw fail('IsADirectory', 'is a directory', info.path);
    if (info.kind !== 'file') throw fail('InvalidArgument', 'not a regular file', info.path);
    return info;
  }

  /** L17: no hard links (a node has one name; links are bound symbolic links). */
  link(path: string, _newPath: string): never {
    throw fail('NotPermitted', 'hard links are not supported (L17)', path);
  }

  statNode(id: number): NodeInfo {
    return this.lib.snapshot(() => {
      const row = this.row(id);
      if (!row || row.space !== this.name) throw fail('FileNotFound', `no node ${id}`, String(id));
      return this.infoOf(row);
    });
  }

  readdir(path: string): DirEntry[] {
    return this.lib.snapshot(() => this.readdirIn(path));
  }

  private readdirIn(path: string): DirEntry[] {
    const r = this.resolve(path);
    if (r.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory', path);
    const rows = this.q.children.all(r.row.id) as Array<NodeRow & { entry_name: string }>;
    const where = r.inTrash ? 'trash' : 'live';
    const out: DirEntry[] = rows.map((row) => ({
      name: row.entry_name,
      info: this.infoOf(row, { where, segs: [...r.segs, row.entry_name] }),
    }));
    if (r.row.id === this.root) {
      const t = this.row(this.trash)!;
      out.push({ name: TRASH_NAME, info: this.infoOf(t, { where: 'trash', segs: [TRASH_NAME] }) });
    }
    return out;
  }

  readlink(path: string): string {
    const info = this.stat(path);
    if (info.kind !== 'link') throw fail('InvalidArgument', 'not a symbolic link', path);
    if (info.link!.readlink === undefined) throw fail('FileNotFound', "the link's target is being deleted", path);
    return info.link!.readlink;
  }

  /** The stored target of a link (BOS `GET ?symlink`); a bound link answers its target's current key. */
  getSymlink(key: string): string {
    const info = this.stat(key);
    if (info.kind !== 'link') throw fail('InvalidArgument', 'the object is not a symlink', key);
    if (info.link!.flavour === 'path') return info.link!.stored!;
    if (info.link!.targetPath === undefined) throw fail('FileNotFound', "the link's target is being deleted", key);
    return info.link!.targetPath;
  }

  /** Follow a link the way the kernel would for the mount (used by stat with follow). */
  private followForMount(r: Resolved, ctx: ResolveContext): NodeInfo {
    const target = this.followLink(r.row, r.segs, 'parent-relative', ctx);
    if (!target) throw fail('FileNotFound', 'the link dangles', joinPath(r.segs));
    return this.infoOf(target.row, { where: target.inTrash ? 'trash' : 'live', segs: target.segs });
  }

  /**
   * The node a link points at, following path links hop by hop (up to 40, ELOOP past that).
   * Returns undefined when the target does not exist. `mode` 'bos' stops after one hop and
   * reports a link target as such (BOS has no secondary links).
   */
  private followLink(
    link: NodeRow,
    linkSegs: string[],
    mode: 'parent-relative' | 'one-hop',
    ctx: ResolveContext,
    escape?: Escape,
  ): Resolved | undefined {
    let cur = link;
    let segs = linkSegs;
    for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
      let next: Resolved | undefined;
      if (cur.link_flavour === 'bound') {
        const loc = this.locate(cur.link_node!);
        const row = this.row(cur.link_node!);
        if (loc.where === 'gone' || !row) return undefined;
        next = { row, segs: loc.segs, parent: null, name: loc.segs[loc.segs.length - 1] ?? '', inTrash: loc.where === 'trash' };
      } else {
        next = this.resolvePathTarget(cur, segs, ctx, escape);
      }
      if (!next) return undefined;
      if (next.row.kind !== 'link' || mode === 'one-hop') return next;
      cur = next.row;
      segs = next.segs;
    }
    throw fail('TooManyLinks', 'too many levels of symbolic links', joinPath(linkSegs));
  }

  /**
   * Resolve a path link's stored string to a node, or undefined when it dangles. A BOS key (base
   * 'space') never leaves the space: '..' at the root stays there, as in a chroot (N3 refuses such
   * keys today; this keeps any older one inside).
   */
  private resolvePathTarget(link: NodeRow, linkSegs: string[], ctx: ResolveContext, escape?: Escape): Resolved | undefined {
    const stored = link.link_path!;
    let start: string[];
    let rest: string[];
    if (link.link_base === 'space') {
      return this.lexicalWalk([], spaceKeySegs(stored), 0, ctx, escape);
    } else {
      if (stored.startsWith('/')) {
        const mp = ctx.mountpoint?.replace(/\/+$/, '');
        if (!mp || !(stored === mp || stored.startsWith(mp + '/'))) {
          if (escape) escape.outside = true;
          return undefined;
        }
        start = [];
        rest = stored.slice(mp.length).split('/').filter((s) => s.length > 0);
      } else {
        start = linkSegs.slice(0, -1);
        rest = stored.split('/').filter((s) => s.length > 0);
      }
    }
    return this.lexicalWalk(start, rest, 0, ctx, escape);
  }

  /**
   * Walk `rest` from the directory `start`, handling '.' and '..' and following links in
   * intermediate components as the kernel would. Returns undefined if anything is missing, or if
   * the walk climbs above the space root (then `escape.outside` is set: outside the mount).
   */
  private lexicalWalk(start: string[], rest: string[], depth: number, ctx: ResolveContext, escape?: Escape): Resolved | undefined {
    if (depth > MAX_LINK_HOPS) throw fail('TooManyLinks', 'too many levels of symbolic links');
    let segs = [...start];
    let cur: Resolved;
    try {
      cur = this.walk(segs, joinPath(segs));
    } catch {
      return undefined;
    }
    for (let i = 0; i < rest.length; i++) {
      const seg = rest[i]!;
      if (seg === '.') continue;
      if (seg === '..') {
        if (cur.row.kind === 'link') {
          // the kernel follows a link before stepping out of where it leads
          const t = this.followLink(cur.row, cur.segs, 'parent-relative', ctx, escape);
          if (!t) return undefined;
          cur = t;
          segs = t.segs;
        }
        if (segs.length === 0) {
          if (escape) escape.outside = true; // above the space root: outside the mount
          return undefined;
        }
        segs = segs.slice(0, -1);
        cur = this.walk(segs, joinPath(segs));
        continue;
      }
      if (cur.row.kind === 'link') {
        const t = this.followLink(cur.row, cur.segs, 'parent-relative', ctx, escape);
        if (!t) return undefined;
        cur = t;
        segs = t.segs;
      }
      if (cur.row.kind !== 'dir') return undefined;
      const next = i === 0 && segs.length === 0 && seg === TRASH_NAME ? this.row(this.trash) : this.child(cur.row.id, seg);
      if (!next) return undefined;
      segs = [...segs, seg];
      cur = { row: next, segs, parent: cur.row.id, name: seg, inTrash: cur.inTrash || next.id === this.trash };
    }
    return cur;
  }

  /**
   * L6: what a dialect GET/HEAD reads. 'smh' follows bound and path links; 'bos' follows one
   * hop and refuses secondary links (InvalidTargetType) and missing targets (SymlinkTargetNotExist).
   */
  resolveRead(path: string, how: 'smh' | 'bos', ctx: ResolveContext = {}): { node: NodeInfo; link?: NodeInfo } {
    const r = this.resolve(path);
    if (r.row.kind === 'dir') throw fail(how === 'bos' ? 'FileNotFound' : 'IsADirectory', 'is a directory', path);
    if (r.row.kind !== 'link') return { node: this.infoOf(r.row, { where: r.inTrash ? 'trash' : 'live', segs: r.segs }) };
    const link = this.infoOf(r.row, { where: r.inTrash ? 'trash' : 'live', segs: r.segs });
    const target = this.followLink(r.row, r.segs, how === 'bos' ? 'one-hop' : 'parent-relative', ctx);
    if (!target || target.row.kind === 'dir') {
      throw fail(how === 'bos' ? 'SymlinkTargetNotExist' : 'SourceFileNotFound', 'the link target does not exist', path);
    }
    if (target.row.kind === 'link') throw fail('InvalidTargetType', 'the link target is itself a link', path);
    return { node: this.infoOf(target.row, { where: target.inTrash ? 'trash' : 'live', segs: target.segs }), link };
  }

  /** The space's default storage class (new files and links take it; L3 checks it for ARCHIVE). */
  setDefaultStorageClass(value: string): void {
    const cls = checkStorageClass(value);
    this.tx(() => this.q.setSpaceClass.run(cls, this.name));
  }

  /** Nodes and bytes of the space, from counters kept exact in every transaction (O(1), issue 15). */
  statfs(): StatFs {
    const r = this.q.statfs.get(this.name) as { files: number; bytes: number } | undefined;
    return { files: r?.files ?? 0, bytes: r?.bytes ?? 0 };
  }

  userMeta(pathOrId: string | number): Record<string, string> {
    const id = typeof pathOrId === 'number' ? pathOrId : this.resolve(pathOrId).row.id;
    const out: Record<string, string> = {};
    for (const x of this.q.xattrList.all(id) as Array<{ name: string; value: Buffer }>) {
      out[x.name] = Buffer.from(x.value).toString('utf8');
    }
    return out;
  }

  // ───────────────────────────── creation helpers ─────────────────────────────

  private insertNode(fields: Partial<NodeRow> & { kind: NodeKind; mode: number }): number {
    const t = nowUs();
    const r = this.q.insertNode.run({
      space: this.name,
      kind: fields.kind,
      mode: fields.mode,
      uid: fields.uid ?? 0,
      gid: fields.gid ?? 0,
      size: fields.size ?? 0,
      blob: fields.blob ?? null,
      etag: fields.etag ?? null,
      layout: fields.layout ?? null,
      rdev: fields.rdev ?? 0,
      storage_class: fields.storage_class ?? 'STANDARD',
      link_flavour: fields.link_flavour ?? null,
      link_node: fields.link_node ?? null,
      link_path: fields.link_path ?? null,
      link_base: fields.link_base ?? null,
      atime: fields.atime ?? t,
      mtime: fields.mtime ?? t,
      ctime: fields.ctime ?? t,
      btime: fields.btime ?? t,
    });
    return Number(r.lastInsertRowid);
  }

  private attach(parent: number, name: string, node: number, kind: NodeKind): void {
    this.q.insertEntry.run(parent, name, node, kind === 'dir' ? 1 : 0);
    this.touchDir(parent);
  }

  private touchDir(id: number): void {
    const t = nowUs();
    this.q.touch.run(t, t, id);
  }

  private defaultClass(): StorageClass {
    return (this.q.spaceClass.get(this.name) as { c: StorageClass }).c;
  }

  /**
   * Give a new node of `kind` its name in `parent` under `conflict` (C1–C3): `make(name)` puts the
   * node there and returns its id. With 'overwrite' an existing non-directory is replaced by the
   * one rule for every replacement (`displace`). `authorize` sees what is about to happen (the
   * source kind, the kind of the node being replaced) before anything changes, in the same
   * transaction, so a dialect's permission check cannot race the change (C5).
   */
  private occupy(
    parent: number,
    name: string,
    kind: NodeKind,
    conflict: Conflict,
    subject: string,
    make: (name: string) => number,
    authorize?: { fn: Authorize | undefined; source?: NodeKind },
    incoming?: number,
  ): number {
    const existing = this.occupied(parent, name);
    let finalName = name;
    let replaced: NodeRow | undefined;
    if (existing) {
      if (conflict === 'rename') finalName = this.freeName(parent, name, kind === 'dir');
      else if (conflict === 'ask' || existing === 'reserved' || existing.kind === 'dir') {
        throw fail('SameNameDirectoryOrFileExists', 'a file or directory with the same name exists', subject);
      } else replaced = existing;
    }
    authorize?.fn?.({ ...(authorize.source ? { source: authorize.source } : {}), ...(replaced ? { replacing: replaced.kind } : {}) });
    if (replaced) this.displace(replaced, parent, name, kind === 'file', incoming);
    const id = make(finalName);
    if (replaced) this.rebindReplaced(replaced, id, kind === 'file');
    return id;
  }

  /** POSIX creation (create(2), mknod(2)): the name must be free (EEXIST). */
  private claimFree(parent: number, name: string, subject: string): void {
    if (this.occupied(parent, name)) throw fail('SameNameDirectoryOrFileExists', 'a file or directory with the same name exists', subject);
  }

  /**
   * The one replacement rule (C3, L10, L11, T1), for every way a node takes another's place:
   * upload/link/copy/move/mkdir with 'overwrite' (SMH, BOS, CLI), restore over, and the mount's
   * rename(2) over. Nothing is lost: the replaced file, link or special file goes to the recycle
   * bin as an item of its own. When the newcomer is a file, links bound to the replaced file stay
   * live and are rebound to the newcomer (`rebindReplaced`, L10); otherwise they go to the bin with
   * their target (L11, L12). Only an empty directory (rename(2) over it) is simply removed: it
   * holds nothing.
   */
  private displace(existing: NodeRow, parent: number, name: string, byFile: boolean, incoming?: number): void {
    if (existing.kind === 'dir') {
      if (this.q.hasChildren.get(existing.id)) throw fail('DirectoryNotEmpty', 'the destination directory is not empty', name);
      this.q.deleteEntry.run(existing.id);
      this.deleteNodeRows(existing);
      return;
    }
    // A link moved over its own target does not go to the bin with it.
    this.trashNode(existing, parent, name, { cascade: !(byFile && existing.kind === 'file'), ...(incoming !== undefined ? { keep: incoming } : {}) });
  }

  /** L10: after a file replaced `replaced` (now in the bin), links bound to it follow the newcomer. */
  private rebindReplaced(replaced: NodeRow, by: number, byFile: boolean): void {
    if (byFile && replaced.kind === 'file' && replaced.id !== by) this.q.rebind.run(by, replaced.id);
  }

  /**
   * An upload with 'overwrite' keeps the file's identity (L10: its links show the new content), so
   * the content it replaces is kept as a recycle-bin item of its own: a new node holding the old
   * blob, metadata and times, with no links (they stay with the live file). Nothing to keep when
   * the bytes do not change.
   */
  private binOldVersion(existing: NodeRow, newBlob: string): void {
    if (existing.blob === newBlob) return;
    const originalPath = joinPath(this.locate(existing.id).segs);
    const name = originalPath.slice(originalPath.lastIndexOf('/') + 1);
    const copy = this.insertNode({ ...existing });
    this.q.xattrCopy.run(copy, existing.id);
    const itemId = Number(
      this.q.insertItem.run({ space: this.name, node: copy, kind: 'file', name, original_path: originalPath, size: existing.size, removed_at: nowUs() })
        .lastInsertRowid,
    );
    const viewName = trashViewName(itemId, name);
    this.q.insertEntry.run(this.trash, this.occupied(this.trash, viewName) ? this.freeName(this.trash, viewName, false) : viewName, copy, 0);
  }

  private placed(id: number): Placed {
    const loc = this.locate(id);
    const row = this.row(id)!;
    return { info: this.infoOf(row, loc), path: loc.where === 'live' ? loc.segs : null };
  }

  // ───────────────────────────── creation ─────────────────────────────

  mkdir(path: string, opts: Owner & { parents?: boolean; conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    const conflict = opts.conflict === undefined ? DEFAULT_CONFLICT.mkdir : checkConflict(opts.conflict);
    return this.tx(() => {
      const segs = splitPath(path, 'destination');
      if (segs.length === 0) {
        if (opts.parents) return this.placed(this.root);
        throw fail('SameNameDirectoryOrFileExists', 'the root already exists', path);
      }
      if (opts.parents) {
        const dir = this.ensureDirs(segs, opts, path);
        return this.placed(dir);
      }
      const { parent, name } = this.parentOf(path, true);
      const id = this.occupy(parent.id, name, 'dir', conflict, path, (finalName) => {
        const dir = this.insertNode({ kind: 'dir', mode: S_IFDIR | ((opts.mode ?? 0o755) & 0o7777), uid: opts.uid ?? 0, gid: opts.gid ?? 0 });
        this.attach(parent.id, finalName, dir, 'dir');
        return dir;
      }, { fn: opts.authorize });
      return this.placed(id);
    });
  }

  /** mkdir -p: create every missing directory of `segs`; an existing directory is fine. */
  private ensureDirs(segs: string[], owner: Owner, subject: string): number {
    let cur = this.root;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      validateName(seg, true, subject);
      const existing = this.occupied(cur, seg);
      if (existing === 'reserved') throw fail('ReadOnly', 'the recycle bin is read-only', subject);
      if (existing) {
        if (existing.kind !== 'dir') throw fail('NotADirectory', `'${joinPath(segs.slice(0, i + 1))}' is not a directory`, subject);
        cur = existing.id;
        continue;
      }
      const id = this.insertNode({ kind: 'dir', mode: S_IFDIR | ((owner.mode ?? 0o755) & 0o7777), uid: owner.uid ?? 0, gid: owner.gid ?? 0 });
      this.attach(cur, seg, id, 'dir');
      cur = id;
    }
    return cur;
  }

  mknod(path: string, opts: { mode: number; rdev?: number; uid?: number; gid?: number }): NodeInfo {
    if ((opts.mode & S_IFMT) === S_IFREG || (opts.mode & S_IFMT) === 0) return this.createFile(path, opts);
    if ((opts.mode & S_IFMT) === S_IFDIR || (opts.mode & S_IFMT) === S_IFLNK) {
      throw fail('InvalidArgument', 'mknod cannot make directories or links', path);
    }
    return this.tx(() => {
      const { parent, name } = this.parentOf(path, false);
      this.claimFree(parent.id, name, path);
      const id = this.insertNode({ kind: 'special', mode: opts.mode, rdev: opts.rdev ?? 0, uid: opts.uid ?? 0, gid: opts.gid ?? 0 });
      this.attach(parent.id, name, id, 'special');
      return this.placed(id).info;
    });
  }

  /** create(2) through the mount: an empty file; EEXIST when the name is taken. */
  createFile(path: string, owner: Owner = {}): NodeInfo {
    return this.tx(() => {
      const { parent, name } = this.parentOf(path, false);
      this.claimFree(parent.id, name, path);
      const id = this.insertNode({
        kind: 'file',
        mode: S_IFREG | ((owner.mode ?? 0o644) & 0o7777),
        uid: owner.uid ?? 0,
        gid: owner.gid ?? 0,
        blob: EMPTY_BLOB_KEY,
        etag: EMPTY_ETAG,
        storage_class: this.defaultClass(),
      });
      this.attach(parent.id, name, id, 'file');
      return this.placed(id).info;
    });
  }

  /**
   * L1: symlink(2). Bound when TARGET resolves now (relative to the link's parent, or under
   * `mountpoint` when absolute: the mount's resolve context, D10) to a live regular file;
   * otherwise a path link storing TARGET.
   */
  symlink(linkPath: string, target: string, opts: ResolveContext & { uid?: number; gid?: number } = {}): NodeInfo {
    validateLinkTarget(target, linkPath);
    return this.tx(() => {
      const { parent, name, segs } = this.parentOf(linkPath, false);
      if (this.occupied(parent.id, name)) throw fail('SameNameDirectoryOrFileExists', 'the link name exists', linkPath);
      const bound = this.bindableTarget(segs.slice(0, -1), target, opts);
      if (bound !== undefined) this.checkLinkRoom(bound, 1, linkPath);
      const id = this.insertNode({
        kind: 'link',
        mode: S_IFLNK | 0o777,
        uid: opts.uid ?? 0,
        gid: opts.gid ?? 0,
        storage_class: this.defaultClass() === 'ARCHIVE' ? 'STANDARD' : this.defaultClass(),
        ...(bound ? { link_flavour: 'bound', link_node: bound } : { link_flavour: 'path', link_path: target, link_base: 'parent' }),
      });
      this.attach(parent.id, name, id, 'link');
      return this.placed(id).info;
    });
  }

  private bindableTarget(parentSegs: string[], target: string, ctx: ResolveContext): number | undefined {
    let start: string[];
    let rest: string;
    if (target.startsWith('/')) {
      const mp = ctx.mountpoint?.replace(/\/+$/, '');
      if (!mp || !(target === mp || target.startsWith(mp + '/'))) return undefined;
      start = [];
      rest = target.slice(mp.length);
    } else {
      start = parentSegs;
      rest = target;
    }
    let r: Resolved | undefined;
    try {
      r = this.lexicalWalk(start, rest.split('/').filter((s) => s.length > 0), 0, ctx);
    } catch {
      return undefined;
    }
    if (!r || r.inTrash || r.row.kind !== 'file') return undefined;
    return r.row.id;
  }

  /** L2: SMH create symbolic link — always bound, to a live regular file. */
  createLink(linkPath: string, linkTo: string, opts: { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const target = this.sourceFile(linkTo);
      this.checkLinkRoom(target.id, 1, linkTo);
      const { parent, name } = this.parentOf(linkPath, false);
      const id = this.occupy(parent.id, name, 'link', conflict, linkPath, (finalName) => {
        const link = this.insertNode({
          kind: 'link',
          mode: S_IFLNK | 0o777,
          storage_class: this.defaultClass() === 'ARCHIVE' ? 'STANDARD' : this.defaultClass(),
          link_flavour: 'bound',
          link_node: target.id,
        });
        this.attach(parent.id, finalName, link, 'link');
        return link;
      }, { fn: opts.authorize });
      return this.placed(id);
    });
  }

  /** A file may gain `adding` more bound links without passing MAX_BOUND_LINKS. */
  private checkLinkRoom(target: number, adding: number, subject: string): void {
    const n = (this.q.boundLinkCount.get(target) as { n: number }).n;
    if (n + adding > MAX_BOUND_LINKS) {
      throw fail('LinkLimitExceeded', `the file has ${n} bound links; a file may have at most ${MAX_BOUND_LINKS}`, subject);
    }
  }

  /** The live regular file a link may be bound to (L2). */
  private sourceFile(linkTo: string): NodeRow {
    if (typeof linkTo !== 'string' || linkTo.length === 0) throw fail('InvalidSourceFile', 'linkTo must be a non-empty path', String(linkTo));
    let r: Resolved;
    try {
      r = this.resolve(linkTo, 'source');
    } catch (e) {
      if (e instanceof SmhError && (e.code === 'FileNotFound' || e.code === 'NotADirectory')) {
        throw fail('SourceFileNotFound', 'the link target does not exist', linkTo);
      }
      throw e;
    }
    if (r.inTrash) throw fail('SourceFileNotFound', 'the link target is in the recycle bin', linkTo);
    if (r.row.kind === 'dir') throw fail('InvalidSourceFile', 'symbolic links to directories are not supported', linkTo);
    if (r.row.kind === 'link') throw fail('InvalidSourceFile', 'secondary symbolic links are not supported', linkTo);
    if (r.row.kind !== 'file') throw fail('InvalidSourceFile', 'symbolic links to special files are not supported', linkTo);
    return r.row;
  }

  /** L3: BOS PutSymlink — a path link storing the key; the target is not checked. */
  putSymlink(
    key: string,
    target: string,
    opts: { forbidOverwrite?: boolean; storageClass?: string; meta?: Record<string, string> } = {},
  ): { info: NodeInfo; etag: string } {
    validateLinkTarget(target, key);
    // N3, D10: a key is space-relative; '.' or '..' segments could lead out of the space.
    const targetSegs = splitPath(target, 'source');
    const cls = opts.storageClass === undefined ? undefined : checkStorageClass(opts.storageClass);
    const meta = this.checkMeta(opts.meta);
    return this.tx(() => {
      const effective = cls ?? this.defaultClass();
      if (effective === 'ARCHIVE') throw fail('InvalidArgument', 'symlinks do not support the ARCHIVE storage class', key);
      const segs = splitPath(key, 'destination');
      if (segs.length === 0) throw fail('InvalidDestinationPath', 'an object key must not be empty', key);
      const name = segs[segs.length - 1]!;
      validateName(name, false, key);
      const existing = this.existingAt(segs);
      if (existing && opts.forbidOverwrite) throw fail('ObjectAlreadyExists', 'an object with this key exists', key);
      const parent = this.ensureDirs(segs.slice(0, -1), {}, key);
      const id = this.occupy(parent, name, 'link', 'overwrite', key, (finalName) => {
        const link = this.insertNode({ kind: 'link', mode: S_IFLNK | 0o777, storage_class: effective, link_flavour: 'path', link_path: target, link_base: 'space' });
        this.attach(parent, finalName, link, 'link');
        return link;
      });
      for (const [k, v] of Object.entries(meta)) this.q.xattrSet.run(id, k, Buffer.from(v, 'utf8'));
      const t = this.existingAt(targetSegs);
      const etag = t && t.kind === 'file' && t.etag ? t.etag : md5(target);
      return { info: this.placed(id).info, etag };
    });
  }

  private existingAt(segs: string[]): NodeRow | undefined {
    try {
      const r = this.walk(segs, joinPath(segs));
      return r.inTrash ? undefined : r.row;
    } catch {
      return undefined;
    }
  }

  private checkMeta(meta: Record<string, string> | undefined): Record<string, string> {
    if (meta === undefined) return {};
    for (const [k, v] of Object.entries(meta)) {
      if (k.length === 0 || Buffer.byteLength(k) > 255 || typeof v !== 'string' || Buffer.byteLength(v) > MAX_XATTR_VALUE) {
        throw fail('InvalidArgument', `bad metadata entry '${k}'`);
      }
    }
    return meta;
  }

  /**
   * What an upload to `path` would meet, checked before its body is read (a bad destination is
   * refused before a byte is stored or hashed). `putFile` checks everything again in its own
   * transaction: this is only the early answer.
   */
  checkPutFile(path: string, opts: { conflict?: Conflict; createParents?: boolean; meta?: Record<string, string>; storageClass?: string } = {}): void {
    const conflict = checkConflict(opts.conflict);
    if (opts.storageClass !== undefined) checkStorageClass(opts.storageClass);
    if (opts.meta !== undefined) this.checkMeta(opts.meta);
    this.lib.snapshot(() => {
      let parentId: number | undefined;
      let name: string;
      if (opts.createParents) {
        const segs = splitPath(path, 'destination');
        if (segs.length === 0) throw fail('InvalidDestinationPath', 'a file path must not be empty', path);
        name = segs[segs.length - 1]!;
        validateName(name, false, path);
        parentId = this.existingDirs(segs.slice(0, -1), path);
      } else {
        const p = this.parentOf(path, false);
        parentId = p.parent.id;
        name = p.name;
      }
      if (parentId === undefined) return; // the missing directories will be made
      const existing = this.occupied(parentId, name);
      if (!existing || conflict === 'rename') return;
      if (conflict === 'ask' || existing === 'reserved' || existing.kind === 'dir') {
        throw fail('SameNameDirectoryOrFileExists', 'a file or directory with the same name exists', path);
      }
    });
  }

  /** The directory `ensureDirs` would end in, if it exists already; what `ensureDirs` would refuse is refused. */
  private existingDirs(segs: string[], subject: string): number | undefined {
    let cur = this.root;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      validateName(seg, true, subject);
      const existing = this.occupied(cur, seg);
      if (existing === 'reserved') throw fail('ReadOnly', 'the recycle bin is read-only', subject);
      if (!existing) {
        for (const rest of segs.slice(i + 1)) validateName(rest, true, subject);
        return undefined;
      }
      if (existing.kind !== 'dir') throw fail('NotADirectory', `'${joinPath(segs.slice(0, i + 1))}' is not a directory`, subject);
      cur = existing.id;
    }
    return cur;
  }

  /**
   * Upload (SMH PUT with a body, BOS PutObject, CLI put). With 'overwrite' an existing file keeps
   * its identity and shows the new content, so every bound link shows it too (L10); the content
   * it had goes to the recycle bin (`binOldVersion`).
   */
  putFile(
    path: string,
    blob: BlobRef,
    opts: Owner & {
      conflict?: Conflict;
      mtimeUs?: number;
      meta?: Record<string, string>;
      storageClass?: string;
      createParents?: boolean;
      authorize?: Authorize;
    } = {},
  ): Placed {
    const conflict = checkConflict(opts.conflict);
    const cls = opts.storageClass === undefined ? undefined : checkStorageClass(opts.storageClass);
    const meta = opts.meta === undefined ? undefined : this.checkMeta(opts.meta);
    return this.tx(() => {
      this.lib.useLease(blob);
      let parentId: number;
      let name: string;
      if (opts.createParents) {
        const segs = splitPath(path, 'destination');
        if (segs.length === 0) throw fail('InvalidDestinationPath', 'a file path must not be empty', path);
        name = segs[segs.length - 1]!;
        validateName(name, false, path);
        parentId = this.ensureDirs(segs.slice(0, -1), {}, path);
      } else {
        const p = this.parentOf(path, false);
        parentId = p.parent.id;
        name = p.name;
      }
      const t = opts.mtimeUs ?? nowUs();
      const existing = this.occupied(parentId, name);
      if (existing && existing !== 'reserved' && existing.kind === 'file' && conflict === 'overwrite') {
        opts.authorize?.({ replacing: 'file' });
        this.binOldVersion(existing, blob.key);
        this.q.setContent.run({ id: existing.id, blob: blob.key, size: blob.size, etag: blob.etag, layout: blob.layout ?? null, mtime: t, ctime: nowUs() });
        if (cls) this.q.setClass.run(cls, existing.id);
        if (meta) {
          this.q.xattrClear.run(existing.id);
          for (const [k, v] of Object.entries(meta)) this.q.xattrSet.run(existing.id, k, Buffer.from(v, 'utf8'));
        }
        // the old blob stays referenced by the bin item binOldVersion made: nothing to drop
        return this.placed(existing.id);
      }
      const id = this.occupy(parentId, name, 'file', conflict, path, (finalName) => {
        const file = this.insertNode({
          kind: 'file',
          mode: S_IFREG | ((opts.mode ?? 0o644) & 0o7777),
          uid: opts.uid ?? 0,
          gid: opts.gid ?? 0,
          blob: blob.key,
          size: blob.size,
          etag: blob.etag,
          layout: blob.layout ?? null,
          mtime: t,
          storage_class: cls ?? this.defaultClass(),
        });
        this.attach(parentId, finalName, file, 'file');
        for (const [k, v] of Object.entries(meta ?? {})) this.q.xattrSet.run(file, k, Buffer.from(v, 'utf8'));
        return file;
      }, { fn: opts.authorize });
      return this.placed(id);
    }, true);
  }

  /** B5: commit new content for an open file (flush/fsync/release/truncate through the mount). */
  setContent(nodeId: number, blob: BlobRef, opts: { mtimeUs?: number } = {}): NodeInfo {
    return this.tx(() => {
      this.lib.useLease(blob);
      const row = this.row(nodeId);
      if (!row || row.kind !== 'file') throw fail('FileNotFound', 'the file no longer exists', String(nodeId));
      if (this.locate(nodeId).where === 'trash') throw fail('ReadOnly', 'the file is in the recycle bin; restore it first', String(nodeId));
      const t = nowUs();
      this.q.setContent.run({ id: nodeId, blob: blob.key, size: blob.size, etag: blob.etag, layout: blob.layout ?? null, mtime: opts.mtimeUs ?? t, ctime: t });
      if (row.blob && row.blob !== blob.key) this.lib.dropBlobs([row.blob]);
      return this.infoOf(this.row(nodeId)!);
    }, true);
  }

  // ───────────────────────────── tree operations ─────────────────────────────

  private isAncestor(ancestor: number, node: number): boolean {
    let cur: number | undefined = node;
    while (cur !== undefined) {
      if (cur === ancestor) return true;
      const e = this.q.entryOf.get(cur) as { parent: number } | undefined;
      cur = e?.parent;
    }
    return false;
  }

  /** rename(2) with POSIX replacement rules; L9 holds for free (identity is untouched), L10/L11 on replace. */
  rename(from: string, to: string, _opts: { posix: true } = { posix: true }): NodeInfo {
    return this.tx(() => {
      const src = this.resolveWritable(from);
      const { parent, name } = this.parentOf(to, src.row.kind === 'dir');
      if (src.row.kind === 'dir' && this.isAncestor(src.row.id, parent.id)) {
        throw fail('MoveIntoItself', 'cannot move a directory into itself', to);
      }
      const existing = this.occupied(parent.id, name);
      if (existing === 'reserved') throw fail('ReadOnly', 'the recycle bin is read-only', to);
      if (existing && existing.id === src.row.id) return this.placed(src.row.id).info;
      if (existing) {
        if (src.row.kind === 'dir' && existing.kind !== 'dir') throw fail('NotADirectory', 'cannot replace a non-directory with a directory', to);
        if (src.row.kind !== 'dir' && existing.kind === 'dir') throw fail('IsADirectory', 'cannot replace a directory with a non-directory', to);
        this.displace(existing, parent.id, name, src.row.kind === 'file', src.row.id);
        this.rebindReplaced(existing, src.row.id, src.row.kind === 'file');
      }
      this.q.moveEntry.run(parent.id, name, src.row.id);
      this.touchDir(src.parent!);
      this.touchDir(parent.id);
      this.q.touchCtime.run(nowUs(), src.row.id);
      return this.placed(src.row.id).info;
    });
  }

  /**
   * SMH/CLI move with a conflict strategy (default rename). `kind` is what the caller's endpoint
   * moves (SMH has one for files, one for directories), checked in the same transaction. D10: a
   * move that would make a path link inside what moves lead outside the space is refused.
   */
  move(from: string, to: string, opts: TreeOpOptions = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const src = this.resolveSource(from);
      this.checkSourceKind(src.row, opts.kind, from);
      const { parent, name } = this.parentOf(to, src.row.kind === 'dir');
      if (src.row.kind === 'dir' && this.isAncestor(src.row.id, parent.id)) {
        throw fail('MoveIntoItself', 'cannot move a directory into itself', to);
      }
      if (src.parent === parent.id && src.name === name) {
        opts.authorize?.({ source: src.row.kind });
        return this.placed(src.row.id);
      }
      this.occupy(parent.id, name, src.row.kind, conflict, to, (finalName) => {
        this.q.moveEntry.run(parent.id, finalName, src.row.id);
        return src.row.id;
      }, { fn: opts.authorize, source: src.row.kind }, src.row.id);
      this.touchDir(src.parent!);
      this.touchDir(parent.id);
      this.checkLinksInside(src.row.id, 'move', to);
      return this.placed(src.row.id);
    });
  }

  /** The endpoint's kind against the source's: a directory API moves directories, a file API the rest. */
  private checkSourceKind(row: NodeRow, kind: 'file' | 'dir' | undefined, subject: string): void {
    if (kind === 'file' && row.kind === 'dir') throw fail('IsADirectory', 'the source is a directory; use the directory API', subject);
    if (kind === 'dir' && row.kind !== 'dir') throw fail('NotADirectory', 'the source is not a directory; use the file API', subject);
  }

  /**
   * D10: after a dialect (or CLI) move or copy placed `top`, every path link in it made through
   * the mount (relative to its parent, or absolute) must still lead somewhere inside the space
   * from its new place. An absolute target leads outside for every dialect (only a mount knows a
   * mountpoint); a move does not change what it names, so a move keeps it, a copy (a new link
   * made through the dialect) does not.
   */
  private checkLinksInside(top: number, op: 'move' | 'copy', subject: string): void {
    for (const l of this.q.parentPathLinksIn.all(top) as NodeRow[]) {
      const stored = l.link_path!;
      if (op === 'move' && stored.startsWith('/')) continue;
      const segs = this.locate(l.id).segs;
      if (this.leadsOutside(segs.slice(0, -1), stored)) {
        throw fail(
          'InvalidSourceFile',
          `the symbolic link ${quote(joinPath(segs))} would lead outside the space from there (its target is ${quote(stored)})`,
          subject,
        );
      }
    }
  }

  /**
   * D10: whether a path link stored as `stored` in the directory `parentSegs` leads outside the
   * space: an absolute path, or '..' climbing above the root — counted on the string itself, and
   * also walking it now the way the kernel would (through the links met on the way).
   */
  leadsOutside(parentSegs: string[], stored: string): boolean {
    if (stored.startsWith('/')) return true;
    const rest = stored.split('/').filter((s) => s.length > 0);
    let depth = parentSegs.length;
    for (const seg of rest) {
      if (seg === '.') continue;
      depth += seg === '..' ? -1 : 1;
      if (depth < 0) return true;
    }
    const escape = { outside: false };
    try {
      this.lexicalWalk(parentSegs, rest, 0, {}, escape); // a dialect or the CLI: no mountpoint (D10)
    } catch {
      // a loop (ELOOP) resolves nowhere
    }
    return escape.outside;
  }

  private resolveSource(path: string): Resolved {
    try {
      return this.resolveWritable(path, 'source');
    } catch (e) {
      if (e instanceof SmhError && e.code === 'FileNotFound') throw fail('SourceFileNotFound', 'the source does not exist', path);
      throw e;
    }
  }

  /**
   * L8: copy. A copied link is a new link of the same flavour bound to the same target. `kind` as
   * for move. D10: a copy that would make a path link lead outside the space is refused; N2/PATH_MAX:
   * so is a copy that would make a path longer than MAX_PATH_BYTES.
   */
  copy(from: string, to: string, opts: TreeOpOptions = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const src = this.resolveSource(from);
      this.checkSourceKind(src.row, opts.kind, from);
      const { parent, name } = this.parentOf(to, src.row.kind === 'dir');
      if (src.row.kind === 'dir' && this.isAncestor(src.row.id, parent.id)) {
        throw fail('MoveIntoItself', 'cannot copy a directory into itself', to);
      }
      const parentBytes = Buffer.byteLength(joinPath(this.locate(parent.id).segs));
      const id = this.occupy(parent.id, name, src.row.kind, conflict, to, (finalName) =>
        this.copyTree(src.row, parent.id, finalName, parentBytes + (parentBytes > 0 ? 1 : 0) + Buffer.byteLength(finalName), to, opts.maxNodes),
      { fn: opts.authorize, source: src.row.kind });
      this.checkLinksInside(id, 'copy', to);
      // L8 copies bound links: none of their targets may pass MAX_BOUND_LINKS
      for (const { target } of this.q.boundTargetsIn.all(id) as Array<{ target: number; n: number }>) this.checkLinkRoom(target, 0, from);
      return this.placed(id);
    });
  }

  /**
   * Copy `row` (with its whole subtree) as `name` in `parent`; `pathBytes` is the length of the
   * copy's path. Iterative: a tree of any depth copies without growing the stack.
   */
  private copyTree(row: NodeRow, parent: number, name: string, pathBytes: number, subject: string, maxNodes = Infinity): number {
    let copied = 0;
    const budget = (): void => {
      if (++copied > maxNodes) {
        throw fail('OperationTooLarge', `a copy through this server may hold at most ${maxNodes} items; copy the directories inside it one by one`, subject);
      }
    };
    const t = nowUs();
    const copyOne = (r: NodeRow, into: number, as: string): number => {
      budget();
      const id = this.insertNode({ ...r, atime: t, mtime: r.mtime, ctime: t, btime: t });
      this.q.xattrCopy.run(id, r.id);
      this.attach(into, as, id, r.kind);
      return id;
    };
    if (pathBytes > MAX_PATH_BYTES) throw pathTooLong(subject);
    const top = copyOne(row, parent, name);
    const pending: Array<{ from: number; to: number; bytes: number }> = row.kind === 'dir' ? [{ from: row.id, to: top, bytes: pathBytes }] : [];
    while (pending.length > 0) {
      const { from, to, bytes } = pending.pop()!;
      for (const c of this.q.children.all(from) as Array<NodeRow & { entry_name: string }>) {
        const b = bytes + 1 + Buffer.byteLength(c.entry_name);
        if (b > MAX_PATH_BYTES) throw pathTooLong(subject);
        const id = copyOne(c, to, c.entry_name);
        if (c.kind === 'dir') pending.push({ from: c.id, to: id, bytes: b });
      }
    }
    return top;
  }

  /** unlink(2): a file, link or special file goes to the recycle bin (T1), bound links with it (L12). */
  unlink(path: string): { recycledItemId: number } {
    return this.tx(() => {
      const r = this.resolveWritable(path);
      if (r.row.kind === 'dir') throw fail('IsADirectory', 'is a directory (use rmdir)', path);
      return { recycledItemId: this.trashNode(r.row, r.parent!, r.name) };
    });
  }

  /** rmdir(2): removes an empty directory for good (nothing to lose). */
  rmdir(path: string): void {
    this.tx(() => {
      const r = this.resolveWritable(path);
      if (r.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory', path);
      if (this.q.hasChildren.get(r.row.id)) throw fail('DirectoryNotEmpty', 'directory not empty', path);
      this.q.deleteEntry.run(r.row.id);
      this.touchDir(r.parent!);
      this.deleteNodeRows(r.row);
    });
  }

  /**
   * SMH DELETE / CLI rm. Without `permanent` anything goes to the recycle bin as one item (T1);
   * with it a file or link is deleted at once (L13) and a directory becomes a purge task (L15).
   */
  /**
   * Delete to the bin, or for good. `kind` is what the caller's endpoint deletes (SMH has one for
   * files and one for directories): checked in the same transaction as the delete.
   */
  remove(
    path: string,
    opts: { permanent?: boolean; recursive?: boolean; kind?: 'dir' | 'file'; rmdirEmpty?: boolean } = {},
  ): { recycledItemId?: number; taskId?: number } {
    return this.tx(() => {
      const found = this.resolve(path);
      if (opts.kind === 'file' && found.row.kind === 'dir') throw fail('IsADirectory', 'is a directory; delete it as a directory', path);
      if (opts.kind === 'dir' && found.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory; delete it as a file', path);
      const r = this.writable(found, path);
      if (opts.rmdirEmpty && r.row.kind === 'dir') {
        // BOS DeleteObject of a directory key: rmdir semantics (nothing in it to lose)
        if (this.q.hasChildren.get(r.row.id)) throw fail('DirectoryNotEmpty', 'directory not empty', path);
        this.q.deleteEntry.run(r.row.id);
        this.touchDir(r.parent!);
        this.deleteNodeRows(r.row);
        return {};
      }
      if (r.row.kind === 'dir' && !opts.recursive && this.q.hasChildren.get(r.row.id)) {
        throw fail('DirectoryNotEmpty', 'directory not empty (remove it recursively)', path);
      }
      if (!opts.permanent) return { recycledItemId: this.trashNode(r.row, r.parent!, r.name) };
      this.q.deleteEntry.run(r.row.id);
      this.touchDir(r.parent!);
      if (r.row.kind === 'dir') {
        if (!this.q.hasChildren.get(r.row.id)) {
          this.deleteNodeRows(r.row);
          return {};
        }
        return { taskId: this.startPurgeTask(r.row, path) };
      }
      this.purgeNode(r.row);
      return {};
    }, false, opts.permanent === true);
  }

  setattr(pathOrId: string | number, attrs: Attrs): NodeInfo {
    return this.tx(() => {
      let row: NodeRow;
      if (typeof pathOrId === 'number') {
        const r = this.row(pathOrId);
        if (!r || r.space !== this.name) throw fail('FileNotFound', `no node ${pathOrId}`, String(pathOrId));
        if (this.locate(r.id).where === 'trash') throw fail('ReadOnly', 'the recycle bin is read-only', String(pathOrId));
        row = r;
      } else {
        const r = this.resolve(pathOrId);
        if (r.inTrash) throw fail('ReadOnly', 'the recycle bin is read-only', pathOrId);
        row = r.row;
      }
      const t = nowUs();
      this.q.setattr.run({
        id: row.id,
        mode: attrs.mode === undefined ? row.mode : (row.mode & S_IFMT) | (attrs.mode & 0o7777),
        uid: attrs.uid ?? row.uid,
        gid: attrs.gid ?? row.gid,
        atime: attrs.atimeUs ?? row.atime,
        mtime: attrs.mtimeUs ?? row.mtime,
        ctime: t,
      });
      return this.infoOf(this.row(row.id)!);
    });
  }

  // ───────────────────────────── xattrs ─────────────────────────────

  private xattrNode(path: string | number, write: boolean): NodeRow {
    if (typeof path === 'number') {
      const r = this.row(path);
      if (!r) throw fail('FileNotFound', `no node ${path}`);
      if (write && this.locate(r.id).where === 'trash') throw fail('ReadOnly', 'the recycle bin is read-only');
      return r;
    }
    const r = write ? this.resolveWritableOrRoot(path) : this.resolve(path);
    return r.row;
  }

  private resolveWritableOrRoot(path: string): Resolved {
    const r = this.resolve(path);
    if (r.inTrash) throw fail('ReadOnly', 'the recycle bin is read-only', path);
    return r;
  }

  getXattr(path: string | number, name: string): Buffer {
    const row = this.xattrNode(path, false);
    if (name === XATTR_STORAGE_CLASS) return Buffer.from(row.storage_class);
    if (name === XATTR_LINK) {
      if (row.kind !== 'link') throw fail('NoSuchAttribute', 'not a link', String(path));
      return Buffer.from(row.link_flavour!);
    }
    if (!name.startsWith('user.') || name.startsWith('user.smhfs.')) throw fail('NoSuchAttribute', 'no such attribute', String(path));
    const x = this.q.xattrGet.get(row.id, name.slice(5)) as { value: Buffer } | undefined;
    if (!x) throw fail('NoSuchAttribute', 'no such attribute', String(path));
    return Buffer.from(x.value);
  }

  listXattr(path: string | number): string[] {
    const row = this.xattrNode(path, false);
    const names = [XATTR_STORAGE_CLASS];
    if (row.kind === 'link') names.push(XATTR_LINK);
    for (const x of this.q.xattrList.all(row.id) as Array<{ name: string }>) names.push(`user.${x.name}`);
    return names;
  }

  setXattr(path: string | number, name: string, value: Buffer, flags: { create?: boolean; replace?: boolean } = {}): void {
    this.tx(() => {
      const row = this.xattrNode(path, true);
      if (name === XATTR_LINK) throw fail('NotPermitted', `${XATTR_LINK} is read-only`, String(path));
      if (name === XATTR_STORAGE_CLASS) {
        const cls = checkStorageClass(value.toString('utf8').trim());
        if (cls === 'ARCHIVE' && row.kind === 'link') throw fail('InvalidArgument', 'links do not support ARCHIVE', String(path));
        this.q.setClass.run(cls, row.id);
        return;
      }
      if (!name.startsWith('user.') || name.startsWith('user.smhfs.')) throw fail('NotSupported', `attribute namespace not supported: ${name}`, String(path));
      const key = name.slice(5);
      if (key.length === 0 || Buffer.byteLength(name) > 255) throw fail('InvalidArgument', 'bad attribute name', String(path));
      if (value.length > MAX_XATTR_VALUE) throw fail('InvalidArgument', 'attribute value too large', String(path));
      const exists = this.q.xattrGet.get(row.id, key) !== undefined;
      if (flags.create && exists) throw fail('AttributeExists', 'attribute exists', String(path));
      if (flags.replace && !exists) throw fail('NoSuchAttribute', 'no such attribute', String(path));
      this.q.xattrSet.run(row.id, key, Buffer.from(value));
      this.q.touchCtime.run(nowUs(), row.id);
    });
  }

  removeXattr(path: string | number, name: string): void {
    this.tx(() => {
      const row = this.xattrNode(path, true);
      if (name === XATTR_LINK || name === XATTR_STORAGE_CLASS) throw fail('NotPermitted', `${name} cannot be removed`, String(path));
      if (!name.startsWith('user.')) throw fail('NoSuchAttribute', 'no such attribute', String(path));
      const r = this.q.xattrDelete.run(row.id, name.slice(5));
      if (r.changes === 0) throw fail('NoSuchAttribute', 'no such attribute', String(path));
    });
  }

  // ───────────────────────────── recycle bin ─────────────────────────────

  /**
   * T1/L12: move a node to the bin as one item. A file takes every bound link to it along
   * (except links that are bin items of their own); the links remember where they were.
   */
  private trashNode(row: NodeRow, parent: number, name: string, opts: { cascade?: boolean; keep?: number } = {}): number {
    const originalPath = joinPath(this.locate(row.id).segs);
    const size =
      row.kind === 'dir' ? (this.q.subtreeBytes.get(row.id) as { n: number | null }).n ?? 0 : row.kind === 'file' ? row.size : 0;
    const itemId = Number(
      this.q.insertItem.run({ space: this.name, node: row.id, kind: row.kind, name, original_path: originalPath, size, removed_at: nowUs() })
        .lastInsertRowid,
    );
    this.q.moveEntry.run(this.trash, trashViewName(itemId, name), row.id);
    this.touchDir(parent);
    if (row.kind === 'file' && opts.cascade !== false) {
      // The links are shown in the bin view beside their target, under the same item id
      // (`3-cat.jpg`, `3-cat`), where they still resolve; they are not items of their own.
      // Thousands of links may go (issue 15): their directories' paths are walked once each, and
      // once a view name is taken the C2 names for it come from `names` without asking again.
      const names: FreeNames = new Map();
      const dirs = new Map<number, Location>();
      for (const link of this.q.boundLinksToCascade.all(row.id) as Array<{ id: number }>) {
        if (link.id === opts.keep) continue;
        const { loc, parent: linkParent, name: linkName } = this.locateVia(link.id, dirs);
        this.q.insertRecycleLink.run(itemId, link.id, linkParent, linkName, joinPath(loc.segs));
        const viewName = trashViewName(itemId, linkName);
        const taken = names.has(freeNamesKey(this.trash, viewName, false)) || this.occupied(this.trash, viewName);
        this.q.moveEntry.run(this.trash, taken ? this.freeName(this.trash, viewName, false, names) : viewName, link.id);
        this.q.setState.run('detached', link.id);
      }
    }
    return itemId;
  }

  private recycleItem(it: ItemRow): RecycleItem {
    return {
      id: it.id,
      kind: it.kind,
      name: it.name,
      originalPath: it.original_path,
      size: it.size,
      removedAtUs: it.removed_at,
      viewName: trashViewName(it.id, it.name),
      links: (this.q.itemLinks.all(it.id) as Array<{ node: number; original_path: string }>).map((l) => ({
        nodeId: l.node,
        originalPath: l.original_path,
      })),
    };
  }

  /**
   * The bin's items in id order (removal order): with `after`, only those with a greater id; with
   * `limit`, at most that many. A page costs O(limit), whatever the size of the bin (issue 15).
   */
  trashList(opts: { limit?: number; after?: number } = {}): RecycleItem[] {
    const after = opts.after ?? 0;
    const limit = opts.limit ?? -1; // SQLite: a negative LIMIT is no limit
    if (!Number.isSafeInteger(after) || after < 0) throw fail('InvalidArgument', `'after' must be an item id (a whole number >= 0), not ${String(opts.after)}`);
    if (opts.limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw fail('InvalidArgument', `'limit' must be a whole number >= 1, not ${String(opts.limit)}`);
    }
    return this.lib.snapshot(() => (this.q.itemsAfter.all(this.name, after, limit) as ItemRow[]).map((it) => this.recycleItem(it)));
  }

  /** One bin item by id, with its cascaded links (a primary-key read). */
  trashItem(id: number): RecycleItem {
    return this.lib.snapshot(() => this.recycleItem(this.item(id)));
  }

  private item(id: number): ItemRow {
    const it = this.q.item.get(id, this.name) as ItemRow | undefined;
    if (!it) throw fail('RecycledItemNotFound', `no recycle-bin item ${id}`, String(id));
    return it;
  }

  /** T4: put an item back at its original path (missing parents recreated), links with it (L12). */
  restore(id: number, opts: { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const it = this.item(id);
      const row = this.row(it.node)!;
      if (row.kind === 'link' && row.link_flavour === 'bound') {
        const target = this.row(row.link_node!);
        const loc = target ? this.locate(target.id) : undefined;
        const targetIsItem = target ? this.q.itemByNode.get(target.id) !== undefined : false;
        if (!target || !loc || loc.where === 'gone' || targetIsItem) {
          throw fail('SourceFileNotFound', "the link's target no longer exists (it was deleted); restore the target first", it.original_path);
        }
      }
      const segs = it.original_path.split('/');
      const names: FreeNames = new Map();
      const parent = this.restoreParents(segs.slice(0, -1), row, names);
      this.occupy(parent, it.name, row.kind, conflict, it.original_path, (finalName) => {
        this.q.moveEntry.run(parent, finalName, row.id);
        return row.id;
      }, { fn: opts.authorize, source: row.kind }, row.id);
      this.touchDir(parent);
      for (const l of this.q.itemLinksFull.all(it.id) as Array<{ node: number; parent: number | null; name: string; original_path: string }>) {
        this.restoreCascadedLink(l, names);
      }
      this.q.deleteItemLinks.run(it.id);
      this.q.deleteItem.run(it.id);
      return this.placed(row.id);
    });
  }

  /** Recreate missing directories on the way back; a non-directory in the way is worked around (C2). */
  private restoreParents(segs: string[], owner: NodeRow, names: FreeNames): number {
    let cur = this.root;
    for (const seg of segs) {
      const existing = this.occupied(cur, seg);
      if (existing && existing !== 'reserved' && existing.kind === 'dir') {
        cur = existing.id;
        continue;
      }
      const name = existing ? this.freeName(cur, seg, true, names) : seg;
      const id = this.insertNode({ kind: 'dir', mode: S_IFDIR | 0o755, uid: owner.uid, gid: owner.gid });
      this.attach(cur, name, id, 'dir');
      cur = id;
    }
    return cur;
  }

  /**
   * A link cascaded with a file goes back to its original path, recreating missing directories
   * (T4). A link that was itself inside a trashed directory goes back into that directory if it
   * still exists (in the bin or restored since); if that directory was purged it is deleted.
   */
  private restoreCascadedLink(l: { node: number; parent: number | null; name: string; original_path: string }, names: FreeNames): void {
    const link = this.row(l.node);
    if (!link) return;
    let parent: number | undefined;
    if (!l.original_path.startsWith(`${TRASH_NAME}/`)) {
      parent = this.restoreParents(l.original_path.split('/').slice(0, -1), link, names);
    } else {
      const parentRow = l.parent === null ? undefined : this.row(l.parent);
      if (parentRow && parentRow.kind === 'dir' && this.locate(parentRow.id).where !== 'gone') parent = parentRow.id;
    }
    if (parent === undefined) {
      this.deleteNodeRows(link);
      return;
    }
    const name = this.occupied(parent, l.name) ? this.freeName(parent, l.name, false, names) : l.name;
    this.q.setState.run('live', link.id);
    this.q.moveEntry.run(parent, name, link.id);
    this.touchDir(parent);
  }

  /** T5: purge one item permanently; a directory becomes a background task (L15). */
  purge(id: number): { taskId?: number } {
    return this.tx(() => this.purgeItem(this.item(id)), false, true);
  }

  /** Purge one item; `nodes` is how many nodes that deleted now (a directory's contents go in a task). */
  private purgeItem(it: { id: number; node: number; original_path: string }): { taskId?: number; nodes: number } {
    const row = this.row(it.node)!;
    this.q.deleteItem.run(it.id);
    this.q.deleteEntry.run(row.id);
    if (row.kind === 'dir') {
      // Cascaded links recorded under a directory item do not exist (only files cascade).
      if (!this.q.hasChildren.get(row.id)) {
        this.deleteNodeRows(row);
        return { nodes: 1 };
      }
      return { taskId: this.startPurgeTask(row, it.original_path), nodes: 1 };
    }
    return { nodes: this.purgeNode(row) };
  }

  /**
   * Purge, in bounded steps, the items `next(limit)` returns until it returns none. Each step is
   * one transaction that stops once it has deleted STEP_NODES nodes (at least one item: an item
   * and its links go together, L13), and the event loop runs between steps, so a mount or server
   * doing this keeps answering other requests (issue 15). Each item's purge is atomic; a crash
   * between steps leaves the rest in the bin.
   */
  private async purgeInSteps(next: (limit: number) => ItemRow[]): Promise<{ purged: number; taskIds: number[] }> {
    let purged = 0;
    const taskIds: number[] = [];
    for (;;) {
      const more = this.tx(() => {
        let nodes = 0;
        for (;;) {
          const batch = next(STEP_ITEMS);
          if (batch.length === 0) return false;
          for (const it of batch) {
            const r = this.purgeItem(it);
            purged++;
            nodes += r.nodes;
            if (r.taskId !== undefined) taskIds.push(r.taskId);
            if (nodes >= STEP_NODES) return true;
          }
        }
      }, false, true); // deletes: may use the reserve on a full disk (D9)
      if (!more) return { purged, taskIds };
      await new Promise((r) => setImmediate(r));
    }
  }

  /** T5: purge every item the bin holds now (items binned while it runs stay), in bounded steps. */
  async emptyTrash(): Promise<{ purged: number; taskIds: number[] }> {
    const last = (this.q.lastItem.get(this.name) as { id: number | null }).id ?? 0;
    return this.purgeInSteps((limit) => this.q.itemsUpTo.all(this.name, last, limit) as ItemRow[]);
  }

  /** T5: purge items older than the retention period (0 = keep forever), in bounded steps. */
  async purgeExpired(retentionDays: number): Promise<number> {
    if (typeof retentionDays !== 'number' || !Number.isFinite(retentionDays) || retentionDays < 0) {
      throw fail('InvalidArgument', 'retention must be a number of days >= 0 (0 = keep forever)');
    }
    if (retentionDays === 0) return 0;
    const cutoff = nowUs() - retentionDays * 86_400 * 1_000_000;
    return (await this.purgeInSteps((limit) => this.q.itemsOlder.all(this.name, cutoff, limit) as ItemRow[])).purged;
  }

  // ───────────────────────────── permanent deletion ─────────────────────────────

  /** L13: delete a non-directory node for good; a file takes every link bound to it along. Returns the nodes deleted. */
  private purgeNode(row: NodeRow): number {
    let n = 1;
    if (row.kind === 'file') {
      for (const link of this.q.boundLinksAll.all(row.id) as NodeRow[]) {
        this.deleteNodeRows(link);
        n++;
      }
    }
    this.deleteNodeRows(row);
    return n;
  }

  /** Remove every row of one node; a link or file that was a bin item loses its item too. */
  deleteNodeRows(row: NodeRow): void {
    const it = this.q.itemByNode.get(row.id) as { id: number } | undefined;
    if (it) {
      for (const l of this.q.itemLinksFull.all(it.id) as Array<{ node: number }>) {
        const lr = this.row(l.node);
        if (lr) this.deleteNodeRows(lr);
      }
      this.q.deleteItemLinks.run(it.id);
      this.q.deleteItem.run(it.id);
    }
    this.q.deleteEntry.run(row.id);
    this.q.deleteRecycleLink.run(row.id);
    this.q.xattrClear.run(row.id);
    this.q.deleteNode.run(row.id);
    if (row.blob) this.lib.dropBlobs([row.blob]);
  }

  private startPurgeTask(row: NodeRow, subject: string): number {
    this.q.setState.run('purging', row.id);
    const total = (this.q.subtreeCount.get(row.id) as { n: number }).n + 1;
    const t = nowUs();
    const id = Number(this.q.insertTask.run(this.name, subject, row.id, total, t, t).lastInsertRowid);
    this.lib.wakeTasks();
    return id;
  }

  /**
   * One batch of an L15 purge task: delete up to `limit` nodes of the subtree (and every link
   * bound to a file among them), children before their directory, the root last. Depth first
   * with an explicit stack: a batch costs its deletions plus one descent, whatever the tree's
   * shape (a chain of thousands of levels purges in linear time, without recursion). Returns
   * nodes deleted and whether the subtree is gone.
   */
  purgeBatch(root: number, limit: number): { deleted: number; finished: boolean } {
    return this.tx(() => {
      let deleted = 0;
      const dirs: number[] = this.row(root) ? [root] : [];
      while (dirs.length > 0 && deleted < limit) {
        const dir = dirs[dirs.length - 1]!;
        const child = this.q.firstChild.get(dir) as { node: number; is_dir: number } | undefined;
        if (child?.is_dir) {
          dirs.push(child.node);
          continue;
        }
        if (child) {
          const row = this.row(child.node);
          if (row) this.purgeNode(row);
          else this.q.deleteEntry.run(child.node); // an entry without its node: nothing else to free
          deleted++;
          continue;
        }
        dirs.pop(); // empty now
        const row = this.row(dir);
        if (row) {
          this.purgeNode(row);
          deleted++;
        }
      }
      return { deleted, finished: this.row(root) === undefined };
    }, false, true);
  }
}

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    node: p('SELECT * FROM nodes WHERE id = ?'),
    child: p('SELECT n.* FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? AND e.name = ?'),
    children: p('SELECT n.*, e.name AS entry_name FROM entries e JOIN nodes n ON n.id = e.node WHERE e.parent = ? ORDER BY e.name'),
    entryOf: p('SELECT parent, name FROM entries WHERE node = ?'),
    // C2: the names of one parent in [lo, hi) — a range of the (parent, name) primary key
    namesBetween: p('SELECT name FROM entries WHERE parent = ? AND name >= ? AND name < ?'),
    hasChildren: p('SELECT 1 FROM entries WHERE parent = ? LIMIT 1'),
    firstChild: p('SELECT node, is_dir FROM entries WHERE parent = ? LIMIT 1'),
    subdirCount: p('SELECT count(*) AS n FROM entries WHERE parent = ? AND is_dir = 1'),
    insertNode: p(`INSERT INTO nodes (space, kind, mode, uid, gid, size, blob, etag, layout, rdev, storage_class, link_flavour, link_node,
      link_path, link_base, atime, mtime, ctime, btime) VALUES (@space, @kind, @mode, @uid, @gid, @size, @blob, @etag, @layout, @rdev,
      @storage_class, @link_flavour, @link_node, @link_path, @link_base, @atime, @mtime, @ctime, @btime)`),
    insertEntry: p('INSERT INTO entries (parent, name, node, is_dir) VALUES (?, ?, ?, ?)'),
    moveEntry: p('UPDATE entries SET parent = ?, name = ? WHERE node = ?'),
    deleteEntry: p('DELETE FROM entries WHERE node = ?'),
    deleteNode: p('DELETE FROM nodes WHERE id = ?'),
    touch: p('UPDATE nodes SET mtime = ?, ctime = ? WHERE id = ?'),
    touchCtime: p('UPDATE nodes SET ctime = ? WHERE id = ?'),
    setState: p('UPDATE nodes SET state = ? WHERE id = ?'),
    setClass: p('UPDATE nodes SET storage_class = ? WHERE id = ?'),
    setContent: p('UPDATE nodes SET blob = @blob, size = @size, etag = @etag, layout = @layout, mtime = @mtime, ctime = @ctime WHERE id = @id'),
    setattr: p('UPDATE nodes SET mode = @mode, uid = @uid, gid = @gid, atime = @atime, mtime = @mtime, ctime = @ctime WHERE id = @id'),
    rebind: p("UPDATE nodes SET link_node = ? WHERE link_flavour = 'bound' AND link_node = ?"),
    spaceClass: p('SELECT default_storage_class AS c FROM spaces WHERE name = ?'),
    setSpaceClass: p('UPDATE spaces SET default_storage_class = ? WHERE name = ?'),
    // kept by the triggers of migration 4: O(1) whatever the size of the space
    statfs: p('SELECT nodes AS files, bytes FROM space_usage WHERE space = ?'),
    // links to cascade with a trashed file: bound, not detached already, not a bin item of their own
    boundLinksToCascade: p(`SELECT n.* FROM nodes n WHERE n.link_flavour = 'bound' AND n.link_node = ? AND n.state = 'live'
      AND NOT EXISTS (SELECT 1 FROM recycle_items r WHERE r.node = n.id)`),
    boundLinksAll: p("SELECT * FROM nodes WHERE link_flavour = 'bound' AND link_node = ?"),
    boundLinkCount: p("SELECT count(*) AS n FROM nodes WHERE link_node = ? AND link_flavour = 'bound'"),
    // the bound links in a subtree, per target: what a copy added
    boundTargetsIn: p(`WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
      SELECT n.link_node AS target, count(*) AS n FROM sub JOIN nodes n ON n.id = sub.id WHERE n.link_flavour = 'bound' GROUP BY n.link_node`),
    // D10: the mount-made path links in a subtree (the node itself included)
    parentPathLinksIn: p(`WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
      SELECT n.* FROM sub JOIN nodes n ON n.id = sub.id WHERE n.link_flavour = 'path' AND n.link_base = 'parent'`),
    subtreeBytes: p(`WITH RECURSIVE sub(id) AS (SELECT node FROM entries WHERE parent = ?
      UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
      SELECT sum(n.size) AS n FROM sub JOIN nodes n ON n.id = sub.id WHERE n.kind = 'file'`),
    subtreeCount: p(`WITH RECURSIVE sub(id) AS (SELECT node FROM entries WHERE parent = ?
      UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id) SELECT count(*) AS n FROM sub`),
    insertItem: p(`INSERT INTO recycle_items (space, node, kind, name, original_path, size, removed_at)
      VALUES (@space, @node, @kind, @name, @original_path, @size, @removed_at)`),
    // the bin by (space, id) and (space, removed_at): migration 4's indexes
    itemsAfter: p('SELECT * FROM recycle_items WHERE space = ? AND id > ? ORDER BY id LIMIT ?'),
    itemsUpTo: p('SELECT * FROM recycle_items WHERE space = ? AND id <= ? ORDER BY id LIMIT ?'),
    itemsOlder: p('SELECT * FROM recycle_items WHERE space = ? AND removed_at < ? ORDER BY removed_at LIMIT ?'),
    lastItem: p('SELECT max(id) AS id FROM recycle_items WHERE space = ?'),
    item: p('SELECT * FROM recycle_items WHERE id = ? AND space = ?'),
    itemByNode: p('SELECT id FROM recycle_items WHERE node = ?'),
    deleteItem: p('DELETE FROM recycle_items WHERE id = ?'),
    insertRecycleLink: p('INSERT INTO recycle_links (item, node, parent, name, original_path) VALUES (?, ?, ?, ?, ?)'),
    itemLinks: p('SELECT node, original_path FROM recycle_links WHERE item = ? ORDER BY node'),
    itemLinksFull: p('SELECT node, parent, name, original_path FROM recycle_links WHERE item = ? ORDER BY node'),
    deleteItemLinks: p('DELETE FROM recycle_links WHERE item = ?'),
    deleteRecycleLink: p('DELETE FROM recycle_links WHERE node = ?'),
    insertTask: p(`INSERT INTO tasks (space, kind, state, subject, root, total, done, created, updated)
      VALUES (?, 'purge-directory', 'queued', ?, ?, ?, 0, ?, ?)`),
    xattrGet: p('SELECT value FROM xattrs WHERE node = ? AND name = ?'),
    xattrList: p('SELECT name, value FROM xattrs WHERE node = ? ORDER BY name'),
    xattrSet: p('INSERT INTO xattrs (node, name, value) VALUES (?, ?, ?) ON CONFLICT (node, name) DO UPDATE SET value = excluded.value'),
    xattrDelete: p('DELETE FROM xattrs WHERE node = ? AND name = ?'),
    xattrClear: p('DELETE FROM xattrs WHERE node = ?'),
    xattrCopy: p('INSERT INTO xattrs (node, name, value) SELECT ?, name, value FROM xattrs WHERE node = ?'),
  };
}
