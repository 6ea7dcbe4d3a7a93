/**
 * Read-only resolution in one space: paths to nodes (`walk`, `resolve`, `parentOf`), nodes to
 * their current path (`locate`: up their entries to the space root, or to the recycle-bin node,
 * shown as `.trash`; a node that reaches neither is gone — a cascaded link or a directory being
 * purged), following links the way the kernel would (`followLink`, `lexicalWalk`: L4–L7, D10),
 * free C2 names, and what a node looks like to a caller (`infoOf`). Nothing here writes.
 * (Over 600 lines because each walk has two forms: step by step for SQLite, where a statement
 * costs microseconds, and one query for an engine over the network — SpaceRows.walk/up.)
 */
import { fail, SmhError } from '../errors.js';
import {
  conflictName,
  conflictNumber,
  conflictPattern,
  joinPath,
  MAX_NAME_BYTES,
  relativePath,
  splitPath,
  TRASH_NAME,
  validateName,
  type PathRole,
} from './paths.js';
import { nowUs } from './engine.js';
import type { NodeRow, OpClock, SpaceCtx, SpaceRows, Way } from './space-rows.js';
import type { NodeInfo } from './types.js';

export interface Location {
  where: 'live' | 'trash' | 'gone';
  segs: string[];
}

type Place = { loc: Location; entry?: { parent: number; name: string } };

/** Where nodes are, as an engine's placed read found them (`Tree.known`), by node id. */
export type Known = Map<number, Place>;

export interface Resolved {
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
export type FreeNames = Map<string, { taken: Set<number>; next: number }>;

/** The key of `FreeNames` for the alternatives to `name` in `parent`. */
export function freeNamesKey(parent: number, name: string, isDir: boolean): string {
  const { stem, ext } = conflictPattern(name, isDir);
  return `${parent}\0${stem}\0${ext}`;
}

export const MAX_LINK_HOPS = 40;

/** Set when a walk climbs out of the space (D10). */
export interface Escape {
  outside: boolean;
}

/** A BOS key's segments, '.' dropped and '..' kept at the root (chroot semantics). */
export function spaceKeySegs(key: string): string[] {
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

/**
 * D10: how absolute link targets are read, given per call — never a property of the library, so
 * a link resolves the same whether or not a mount is running in this process. The mount passes
 * its mountpoint (an absolute target under it is taken relative to the space root, L1); HTTP and
 * the CLI pass nothing (an absolute target then leads nowhere: it dangles).
 */
export interface ResolveContext {
  mountpoint?: string | undefined;
}

export class Tree {
  readonly name: string;
  readonly root: number;
  readonly trash: number;
  private readonly rows: SpaceRows;
  private readonly clock: OpClock;

  constructor(ctx: SpaceCtx) {
    this.name = ctx.name;
    this.root = ctx.root;
    this.trash = ctx.trash;
    this.rows = ctx.rows;
    this.clock = ctx.clock;
  }

  /** The operation's time inside a transaction (see `OpClock`), else the clock's. */
  now(): number {
    return this.clock.time ?? nowUs();
  }

  row(id: number): NodeRow | undefined {
    return this.rows.node(id);
  }

  private child(parent: number, name: string): NodeRow | undefined {
    return this.rows.child(parent, name);
  }

  /**
   * Where a node is now: its segments from the space root, or from `.trash`. A node with several
   * names (hard links, L17) is where its oldest live name is (L19), else its oldest name in the bin.
   */
  locate(id: number): Location {
    return this.place(id).loc;
  }

  /** `locate`, with the name it chose (none for the root, the bin node, or a node with no name). */
  place(id: number, known?: Known): Place {
    if (id === this.root || id === this.trash) return { loc: this.locateUp(id) };
    if (known) return known.get(id) ?? { loc: { where: 'gone', segs: [] } };
    return this.choosePlace(this.rows.entriesOf(id).map((entry) => ({ entry, up: () => this.locateUp(entry.parent) })));
  }

  /**
   * The places an engine's placed read brought (SpaceRows.placed: the ways up of every name of
   * each node it covers), each chosen as `place` chooses (L19), by node id.
   */
  known(ways: Way[]): Known {
    const byNode = new Map<number, Way[]>();
    for (const w of ways) {
      const list = byNode.get(w.of);
      if (list) list.push(w);
      else byNode.set(w.of, [w]);
    }
    const out: Known = new Map();
    for (const [id, list] of byNode) {
      list.sort((a, b) => a.seq - b.seq);
      out.set(id, this.choosePlace(list.map((w) => ({ entry: { parent: w.steps[0]!.parent, name: w.steps[0]!.name }, up: () => this.upFrom(w.steps[0]!.parent, w.steps.slice(1)) }))));
    }
    return out;
  }

  /** `place`'s choice among a node's names, oldest first, each with the way to where its directory is. */
  private choosePlace(names: Array<{ entry: { parent: number; name: string }; up: () => Location }>): Place {
    if (names.length === 0) return { loc: { where: 'gone', segs: [] } };
    let inBin: { loc: Location; entry: { parent: number; name: string } } | undefined;
    for (const { entry, up: where } of names) {
      const up = where();
      if (up.where === 'gone') continue;
      const loc = { where: up.where, segs: [...up.segs, entry.name] };
      if (loc.where === 'live') return { loc, entry };
      inBin ??= { loc, entry };
    }
    return inBin ?? { loc: { where: 'gone', segs: [] } };
  }

  /** Where the name `name` of directory `parent` is (one name of a node that may have several). */
  locateEntry(parent: number, name: string): Location {
    const up = this.locateUp(parent);
    return up.where === 'gone' ? up : { where: up.where, segs: [...up.segs, name] };
  }

  /** Where a directory (or the root, or the bin node) is: up its one entry at each step. */
  private locateUp(id: number): Location {
    const segs: string[] = [];
    let cur = id;
    // Over a network, the whole way up in one query (the entries the loop below reads one by one).
    if (this.rows.up && id !== this.root && id !== this.trash) return this.upFrom(id, this.rows.up(id, [this.root, this.trash]));
    for (let depth = 0; depth < 100_000; depth++) {
      if (cur === this.root) return { where: 'live', segs: segs.reverse() };
      if (cur === this.trash) return { where: 'trash', segs: [TRASH_NAME, ...segs.reverse()] };
      const e = this.rows.entryOf(cur);
      if (!e) return { where: 'gone', segs: [] };
      segs.push(e.name);
      cur = e.parent;
    }
    throw fail('Internal', `directory cycle at node ${id}`);
  }

  /** Where directory `id` is, from the entries up from it (its own, its parent's, …), read at once. */
  private upFrom(id: number, steps: Array<{ node: number; parent: number; name: string }>): Location {
    if (id === this.root) return { where: 'live', segs: [] };
    if (id === this.trash) return { where: 'trash', segs: [TRASH_NAME] };
    const segs: string[] = [];
    let cur = id;
    for (const e of steps) {
      if (e.node !== cur) break;
      segs.push(e.name);
      cur = e.parent;
      if (cur === this.root) return { where: 'live', segs: segs.reverse() };
      if (cur === this.trash) return { where: 'trash', segs: [TRASH_NAME, ...segs.reverse()] };
    }
    if (segs.length >= 100_000) throw fail('Internal', `directory cycle at node ${id}`);
    return { where: 'gone', segs: [] };
  }

  /**
   * `locate` for one of many nodes handled by one operation (a cascade of thousands of links):
   * the locations of the directories on the way up are remembered in `dirs`, so each directory
   * is walked once, not once per link in it. Also returns the node's own entry (`entry`: its
   * oldest name, when the caller read it already; `dirEntry`: the oldest entry of that name's
   * directory, null when it has none, when the caller read that too).
   */
  locateVia(
    id: number,
    dirs: Map<number, Location>,
    entry?: { parent: number; name: string },
    dirEntry?: { parent: number; name: string } | null,
  ): { loc: Location; parent: number; name: string } {
    const own = entry ?? this.rows.entryOf(id);
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
        const e = depth === 0 && dirEntry !== undefined ? (dirEntry ?? undefined) : this.rows.entryOf(cur);
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
    // Over a network, the whole path in one query (the rows the loop below would ask one by one).
    const fromBin = segs[0] === TRASH_NAME;
    // (one name too: the walk brings the last row's nlink counts, which `child` does not)
    const ahead = segs.length > (fromBin ? 1 : 0) && this.rows.walk ? this.rows.walk(fromBin ? this.trash : this.root, fromBin ? segs.slice(1) : segs) : undefined;
    const skip = fromBin ? 1 : 0;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      if (Buffer.byteLength(seg) > MAX_NAME_BYTES) throw fail('FileNameLengthExceed', `a name is longer than ${MAX_NAME_BYTES} bytes`, subject);
      if (row && row.kind !== 'dir') throw fail('NotADirectory', `'${joinPath(segs.slice(0, i))}' is not a directory`, subject);
      const dir = row ? row.id : this.root;
      let next: NodeRow | undefined;
      if (i === 0 && seg === TRASH_NAME) {
        next = this.row(this.trash);
        inTrash = true;
      } else if (ahead) {
        next = ahead[i - skip];
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

  resolve(path: string, role: PathRole = 'source'): Resolved {
    return this.walk(splitPath(path, role), path);
  }

  /**
   * A node of this space by id, as `resolve` would find it by its path: FileNotFound for an id
   * that is not a node of this space or has no place (a directory being purged).
   */
  resolveId(id: number, pre?: { row: NodeRow | undefined; known: Known }): Resolved {
    if (!pre && this.rows.placed && id !== this.root && id !== this.trash) {
      // over a network: the row and its place at once ('' names no child: no counts asked)
      const placed = Number.isSafeInteger(id) ? this.rows.placed(id, '', [this.root, this.trash]) : undefined;
      return this.resolveId(id, { row: placed?.row, known: this.known(placed?.ways ?? []) });
    }
    const row = pre ? pre.row : this.row(id);
    if (!row || row.space !== this.name) throw fail('FileNotFound', `no node ${id}`, String(id));
    if (id === this.root) return { row, segs: [], parent: null, name: '', inTrash: false };
    if (id === this.trash) return { row, segs: [TRASH_NAME], parent: this.root, name: TRASH_NAME, inTrash: true };
    const { loc, entry } = this.place(id, pre?.known);
    if (!entry || loc.where === 'gone') throw fail('FileNotFound', `node ${id} has no place in the space`, String(id));
    return { row, segs: loc.segs, parent: entry.parent, name: entry.name, inTrash: loc.where === 'trash' };
  }

  /**
   * Node `id` as it is now, with where it is and, where the engine reads them with the row
   * (SpaceRows.placed: one round trip), its nlink counts and the places of it and its bound target.
   */
  rowPlaced(id: number): { row: NodeRow; loc: Location; counts?: { subdirs: number; names: number }; known?: Known } | undefined {
    if (this.rows.placed) {
      const placed = Number.isSafeInteger(id) ? this.rows.placed(id, undefined, [this.root, this.trash]) : undefined;
      if (!placed) return undefined;
      const known = this.known(placed.ways);
      return { row: placed.row, loc: this.place(id, known).loc, counts: placed.row, known };
    }
    const row = this.row(id);
    return row ? { row, loc: this.locate(id) } : undefined;
  }

  /** What a caller is told about node `id` as it is now (`rowPlaced`, then `infoOf`). */
  infoById(id: number): { info: NodeInfo; loc: Location } | undefined {
    const p = this.rowPlaced(id);
    return p ? { info: this.infoOf(p.row, p.loc, p.counts, p.known), loc: p.loc } : undefined;
  }

  /** The entry `name` of directory `parent`, as `walk` takes one step (the root's `.trash` included). */
  lookup(parent: number, name: string): Resolved & { counts?: { subdirs: number; names: number }; known?: Known } {
    const atBin = parent === this.root && name === TRASH_NAME;
    // over a network: the directory, its place, the child and its nlink and bound target at once
    const placed = this.rows.placed && !atBin ? this.rows.placed(parent, name, [this.root, this.trash]) : undefined;
    const known = this.rows.placed && !atBin ? this.known(placed?.ways ?? []) : undefined;
    const dir = this.resolveId(parent, known ? { row: placed?.row, known } : undefined);
    const subject = joinPath([...dir.segs, name]);
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw fail('FileNameLengthExceed', `a name is longer than ${MAX_NAME_BYTES} bytes`, subject);
    if (dir.row.kind !== 'dir') throw fail('NotADirectory', `'${joinPath(dir.segs)}' is not a directory`, subject);
    const row = atBin ? this.row(this.trash) : known ? placed?.child : this.child(parent, name);
    if (!row) throw fail('FileNotFound', 'no such file or directory', subject);
    const found = { row, segs: [...dir.segs, name], parent, name, inTrash: dir.inTrash || atBin };
    return known && placed?.child ? { ...found, counts: placed.child, known } : found;
  }

  /**
   * T3: the recycle bin is read-only — nothing in it changes but by restore or purge. The one
   * refusal every change inside it meets (`restoreFirst`: say how to get the item out).
   */
  binReadOnly(subject?: string, restoreFirst = false): SmhError {
    return fail('ReadOnly', restoreFirst ? 'the recycle bin is read-only; restore the item first' : 'the recycle bin is read-only', subject);
  }

  /** T3: whether node `id` is inside the recycle bin now (an item, or in one). */
  inBin(id: number): boolean {
    return this.locate(id).where === 'trash';
  }

  /** Resolve `path` as something the caller will change; the bin view is read-only (T3). */
  resolveWritable(path: string, role: PathRole = 'source'): Resolved {
    return this.writable(this.resolve(path, role), path);
  }

  writable(r: Resolved, path: string): Resolved {
    if (r.inTrash) throw this.binReadOnly(path, true);
    if (r.row.id === this.root) throw fail('InvalidDestinationPath', 'the root cannot be changed this way', path);
    return r;
  }

  /**
   * The parent directory of a path to be created, and the new name. A missing parent is
   * DirectoryNotFound (the dialects' code; it maps to ENOENT for the mount).
   */
  parentOf(path: string, isDir: boolean): { parent: NodeRow; name: string; segs: string[] } {
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
    if (parent.inTrash) throw this.binReadOnly(path, true);
    if (parent.row.kind !== 'dir') throw fail('NotADirectory', 'the parent is not a directory', path);
    return { parent: parent.row, name, segs };
  }

  /**
   * `parentOf` for a place given as (directory id, name): the same checks in the same order, as
   * far as a name is a path's last segment — the place's path as a path (PATH_MAX, `.`/`..`, NUL),
   * N1 on the name, a missing directory (DirectoryNotFound), T3, a parent that is no directory.
   * `subject` is the place's path, for the errors that follow.
   */
  parentAt(parentId: number, name: string, isDir: boolean): { parent: NodeRow; name: string; subject: string } {
    let dir: Resolved | undefined;
    try {
      dir = this.resolveId(parentId);
    } catch (e) {
      if (!(e instanceof SmhError && e.code === 'FileNotFound')) throw e;
    }
    const subject = dir ? joinPath([...dir.segs, name]) : name;
    splitPath(subject, 'destination');
    validateName(name, isDir, subject);
    if (!dir) throw fail('DirectoryNotFound', 'the parent directory does not exist', subject);
    if (dir.inTrash) throw this.binReadOnly(subject, true);
    if (dir.row.kind !== 'dir') throw fail('NotADirectory', 'the parent is not a directory', subject);
    return { parent: dir.row, name, subject };
  }

  /**
   * `resolveWritable` for the entry `name` of directory `parent`: the name checked as a path's
   * segment is (`.`/`..`, NUL; a name that is no single segment is InvalidFileName), `lookup`, T3.
   */
  writableAt(parent: number, name: string): Resolved {
    const segs = splitPath(name, 'source');
    if (segs.length !== 1 || segs[0] !== name) throw fail('InvalidFileName', `'${name}' is not a valid name`, name);
    const r = this.lookup(parent, name);
    return this.writable(r, joinPath(r.segs));
  }

  occupied(parent: number, name: string): NodeRow | 'reserved' | undefined {
    if (parent === this.root && name === TRASH_NAME) return 'reserved';
    return this.child(parent, name);
  }

  /**
   * C2: the first free `stem (n).ext` in `parent`. The names of that form already taken come from
   * one index range read (`stem (` ≤ name < `stem )`), not one probe per n, so naming k nodes
   * that share a name costs O(k), not O(k²) (issue 15: 2,000 same-named links took 11 s). A
   * caller naming many nodes in one transaction passes one `memo`, so each (parent, pattern) is
   * read once; each pick is still checked with a point lookup, so a name taken since the read
   * (by a move that did not go through here) is never handed out twice. A caller that gives
   * `placed`, every name it put (or is about to put: the cascade writes its moves after picking)
   * in `parent` in this transaction since it made `memo` (whether by a pick or as it was), is
   * answered without the point lookup: a pick of the full form `stem (n)ext` lies inside the
   * range read, so the memo knows the names taken before it and `placed` those since (a cascade
   * of 2,000 same-named links into the bin: 2,000 reads less). A pick whose stem had to be
   * shortened lies outside that range and is looked up, and checked against `placed`.
   */
  freeName(parent: number, name: string, isDir: boolean, memo: FreeNames = new Map(), placed?: ReadonlySet<string>): string {
    const { stem, ext } = conflictPattern(name, isDir);
    const key = freeNamesKey(parent, name, isDir);
    let names = memo.get(key);
    if (!names) {
      names = { taken: new Set(), next: 1 };
      for (const taken of this.rows.namesBetween(parent, `${stem} (`, `${stem} )`)) {
        const n = conflictNumber(taken, stem, ext);
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
      const known = placed !== undefined && candidate === `${stem} (${n})${ext}`;
      // (`placed` may hold names not written yet: the cascade moves its links after picking)
      if (known ? !placed.has(candidate) : !placed?.has(candidate) && !this.occupied(parent, candidate)) return candidate;
    }
  }

  /** `counts`: a directory's subdirectories or a node's names, when the caller read them with the row (readdirplus). */
  infoOf(row: NodeRow, loc?: Location, counts?: { subdirs: number; names: number }, known?: Known): NodeInfo {
    const where = loc ?? this.place(row.id, known).loc;
    const info: NodeInfo = {
      id: row.id,
      kind: row.kind,
      mode: row.mode,
      uid: row.uid,
      gid: row.gid,
      size: row.kind === 'dir' ? 4096 : row.size,
      // 2 + subdirectories as listed; the root also lists `.trash` (find's leaf optimisation counts on it)
      // anything else: its names (hard links, L17); a node with none is on its way out, still one file
      nlink:
        row.kind === 'dir'
          ? 2 + (counts?.subdirs ?? this.rows.subdirCount(row.id)) + (row.id === this.root ? 1 : 0)
          : Math.max(1, counts?.names ?? this.rows.nameCount(row.id)),
      rdev: row.rdev,
      blob: row.blob,
      etag: row.etag,
      ...(row.layout ? { layout: row.layout } : {}),
      storageClass: row.storage_class,
      atimeUs: row.atime,
      mtimeUs: row.mtime,
      ctimeUs: row.ctime,
      birthtimeUs: row.btime,
      atimeNsRem: row.atime_ns,
      mtimeNsRem: row.mtime_ns,
      ctimeNsRem: row.ctime_ns,
      birthtimeNsRem: row.btime_ns,
      path: joinPath(where.segs),
      // a link cascaded with its target (L12) has no place of its own but is in the bin all the same
      inTrash: where.where === 'trash' || row.state === 'detached',
    };
    if (row.kind === 'link') {
      info.link = this.linkOf(row, where, known);
      info.size = info.link.readlink === undefined ? 0 : Buffer.byteLength(info.link.readlink, 'utf8');
    }
    return info;
  }

  /**
   * What link `row` at `where` reads as (L4, L5) and leads to: `infoOf`'s link part, alone for
   * readlink(2), which needs neither the link's nlink nor the rest of its info.
   */
  linkOf(row: NodeRow, where: Location = this.locate(row.id), known?: Known): NonNullable<NodeInfo['link']> {
    const parentSegs = where.segs.slice(0, -1);
    if (row.link_flavour === 'bound') {
      // An engine's placed read may already know where the target is (one query): use it.
      const target = known ? this.place(row.link_node!, known).loc : this.locate(row.link_node!);
      const readlink = target.where === 'gone' ? undefined : relativePath(parentSegs, target.segs);
      const link: NonNullable<NodeInfo['link']> = { flavour: 'bound', readlink, targetNode: row.link_node! };
      if (target.where !== 'gone') link.targetPath = joinPath(target.segs);
      return link;
    }
    const stored = row.link_path!;
    // L5: a BOS key reads as the relative path to it; a mount-made target as stored. Where it
    // leads in the space (lexically): `targetPath`, unset when it leads outside (D10).
    const key = row.link_base === 'space' ? spaceKeySegs(stored) : undefined;
    const readlink = key ? relativePath(parentSegs, key) : stored;
    const link: NonNullable<NodeInfo['link']> = { flavour: 'path', readlink, stored, pathBase: row.link_base ?? 'parent' };
    const lexical = key ?? lexicalTarget(parentSegs, stored);
    if (lexical) link.targetPath = joinPath(lexical);
    return link;
  }

  /** Follow a link the way the kernel would for the mount (used by stat with follow). */
  followForMount(r: Resolved, ctx: ResolveContext): NodeInfo {
    const target = this.followLink(r.row, r.segs, 'parent-relative', ctx);
    if (!target) throw fail('FileNotFound', 'the link dangles', joinPath(r.segs));
    return this.infoOf(target.row, { where: target.inTrash ? 'trash' : 'live', segs: target.segs });
  }

  /**
   * The node a link points at, following path links hop by hop (up to 40, ELOOP past that).
   * Returns undefined when the target does not exist. `mode` 'one-hop' (BOS, which has no
   * secondary links) stops after one hop and reports a link target as such.
   */
  followLink(
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
  lexicalWalk(start: string[], rest: string[], depth: number, ctx: ResolveContext, escape?: Escape): Resolved | undefined {
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

  existingAt(segs: string[]): NodeRow | undefined {
    try {
      const r = this.walk(segs, joinPath(segs));
      return r.inTrash ? undefined : r.row;
    } catch {
      return undefined;
    }
  }

  /** The directory `ensureDirs` would end in, if it exists already; what `ensureDirs` would refuse is refused. */
  existingDirs(segs: string[], subject: string): number | undefined {
    let cur = this.root;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      validateName(seg, true, subject);
      const existing = this.occupied(cur, seg);
      if (existing === 'reserved') throw this.binReadOnly(subject);
      if (!existing) {
        for (const rest of segs.slice(i + 1)) validateName(rest, true, subject);
        return undefined;
      }
      if (existing.kind !== 'dir') throw fail('NotADirectory', `'${joinPath(segs.slice(0, i + 1))}' is not a directory`, subject);
      cur = existing.id;
    }
    return cur;
  }

  isAncestor(ancestor: number, node: number): boolean {
    let cur: number | undefined = node;
    while (cur !== undefined) {
      if (cur === ancestor) return true;
      const e = this.rows.entryOf(cur);
      cur = e?.parent;
    }
    return false;
  }

  resolveSource(path: string): Resolved {
    try {
      return this.resolveWritable(path, 'source');
    } catch (e) {
      if (e instanceof SmhError && e.code === 'FileNotFound') throw fail('SourceFileNotFound', 'the source does not exist', path);
      throw e;
    }
  }

  resolveWritableOrRoot(path: string): Resolved {
    const r = this.resolve(path);
    if (r.inTrash) throw this.binReadOnly(path);
    return r;
  }
}
