/**
 * The mutations every operation of a space shares: make a node and give it its name (`insertNode`,
 * `attach`), claim a name under a conflict strategy (`occupy`, C1–C3) and the one replacement rule
 * (`displace`, C3/L10/L11/T1), keep a replaced upload's old content (`binOldVersion`), move a node
 * to the recycle bin with its bound links (`trashNode`, T1/L12), and delete rows for good
 * (`purgeNode`, `deleteNodeRows`, L13; `startPurgeTask`, L15). Each runs inside the caller's
 * transaction.
 */
import { fail } from '../errors.js';
import { joinPath, trashViewName, validateName } from './paths.js';
import type { ItemLinkRow, NodeRow, SpaceCtx, SpaceHost, SpaceRows } from './space-rows.js';
import { freeNamesKey, type FreeNames, type Location, type Tree } from './tree.js';
import type { Authorize, Conflict, NodeKind, Owner, Placed, StorageClass } from './types.js';

export const S_IFMT = 0o170000;
export const S_ISGID = 0o2000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export class Edits {
  readonly name: string;
  readonly root: number;
  readonly trash: number;
  private readonly rows: SpaceRows;
  private readonly host: SpaceHost;
  private readonly tree: Tree;

  constructor(ctx: SpaceCtx, tree: Tree) {
    this.name = ctx.name;
    this.root = ctx.root;
    this.trash = ctx.trash;
    this.rows = ctx.rows;
    this.host = ctx.host;
    this.tree = tree;
  }

  insertNode(fields: Partial<NodeRow> & { kind: NodeKind; mode: number }): number {
    const t = this.tree.now();
    return this.rows.insertNode({
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
      // a time given keeps its nanoseconds only with them (binOldVersion's copy); now has none
      atime_ns: fields.atime === undefined ? 0 : (fields.atime_ns ?? 0),
      mtime_ns: fields.mtime === undefined ? 0 : (fields.mtime_ns ?? 0),
      ctime_ns: fields.ctime === undefined ? 0 : (fields.ctime_ns ?? 0),
      btime_ns: fields.btime === undefined ? 0 : (fields.btime_ns ?? 0),
    });
  }

  attach(parent: number, name: string, node: number, kind: NodeKind): void {
    this.rows.insertEntry(parent, name, node, kind === 'dir');
    this.touchDir(parent);
  }

  touchDir(id: number): void {
    const t = this.tree.now();
    this.rows.touch(id, t);
  }

  defaultClass(): StorageClass {
    return this.rows.spaceClass(this.name);
  }

  /**
   * Give a new node of `kind` its name in `parent` under `conflict` (C1–C3): `make(name)` puts the
   * node there and returns its id. With 'overwrite' an existing non-directory is replaced by the
   * one rule for every replacement (`displace`). `authorize` sees what is about to happen (the
   * source kind, the kind of the node being replaced) before anything changes, in the same
   * transaction, so a dialect's permission check cannot race the change (C5).
   */
  occupy(
    parent: number,
    name: string,
    kind: NodeKind,
    conflict: Conflict,
    subject: string,
    make: (name: string) => number,
    authorize?: { fn: Authorize | undefined; source?: NodeKind },
    incoming?: number,
  ): number {
    const existing = this.tree.occupied(parent, name);
    let finalName = name;
    let replaced: NodeRow | undefined;
    if (existing) {
      if (conflict === 'rename') finalName = this.tree.freeName(parent, name, kind === 'dir');
      else if (conflict === 'ask' || existing === 'reserved' || existing.kind === 'dir') {
        throw fail('SameNameDirectoryOrFileExists', 'a file or directory with the same name exists', subject);
      } else replaced = existing;
    }
    authorize?.fn?.({ ...(authorize.source ? { source: authorize.source } : {}), ...(replaced ? { replacing: replaced.kind } : {}) });
    const left = replaced ? this.displace(replaced, parent, name, kind === 'file', incoming) : undefined;
    const id = make(finalName);
    if (replaced) this.rebindReplaced(replaced, id, kind === 'file', left);
    return id;
  }

  /** POSIX creation (create(2), mknod(2)): the name must be free (EEXIST). */
  claimFree(parent: number, name: string, subject: string): void {
    if (this.tree.occupied(parent, name)) throw fail('SameNameDirectoryOrFileExists', 'a file or directory with the same name exists', subject);
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
  displace(existing: NodeRow, parent: number, name: string, byFile: boolean, incoming?: number): 'name' | 'node' {
    if (existing.kind === 'dir') {
      if (this.rows.hasChildren(existing.id)) throw fail('DirectoryNotEmpty', 'the destination directory is not empty', name);
      this.rows.deleteEntry(existing.id);
      this.deleteNodeRows(existing);
      return 'node';
    }
    // L18: a node with other names loses this one only; nothing goes to the bin, its links stay.
    if (this.removeName(existing, parent, name)) return 'name';
    // A link moved over its own target does not go to the bin with it.
    this.trashNode(existing, parent, name, { cascade: !(byFile && existing.kind === 'file'), ...(incoming !== undefined ? { keep: incoming } : {}) });
    return 'node';
  }

  /**
   * L18: when `row` has other names than `name` in `parent`, remove that one name (the node, its
   * content and its bound links live on under the others; its ctime changes, as POSIX says for
   * link and unlink) and answer true. A last name is left to the caller (a delete, T1).
   */
  removeName(row: NodeRow, parent: number, name: string): boolean {
    if (row.kind === 'dir' || this.rows.nameCount(row.id) < 2) return false;
    this.rows.deleteName(parent, name);
    this.touchDir(parent);
    this.rows.touchCtime(row.id, this.tree.now());
    return true;
  }

  /** L10: after a file replaced `replaced` (now in the bin), links bound to it follow the newcomer. */
  rebindReplaced(replaced: NodeRow, by: number, byFile: boolean, left: 'name' | 'node' = 'node'): void {
    if (left === 'node' && byFile && replaced.kind === 'file' && replaced.id !== by) this.rows.rebind(replaced.id, by);
  }

  /**
   * An upload with 'overwrite' keeps the file's identity (L10: its links show the new content), so
   * the content it replaces is kept as a recycle-bin item of its own: a new node holding the old
   * blob, metadata and times, with no links (they stay with the live file). Nothing to keep when
   * the bytes do not change.
   */
  binOldVersion(existing: NodeRow, newBlob: string, at: { parent: number; name: string }): void {
    if (existing.blob === newBlob) return;
    // the name uploaded to, of the file's names (L17)
    const originalPath = joinPath(this.tree.locateEntry(at.parent, at.name).segs);
    const name = originalPath.slice(originalPath.lastIndexOf('/') + 1);
    const copy = this.insertNode({ ...existing });
    this.rows.copyXattrs(copy, existing.id);
    const itemId = this.rows.insertItem({ space: this.name, node: copy, kind: 'file', name, original_path: originalPath, size: existing.size, removed_at: this.tree.now() });
    const viewName = trashViewName(itemId, name);
    this.rows.insertEntry(this.trash, this.tree.occupied(this.trash, viewName) ? this.tree.freeName(this.trash, viewName, false) : viewName, copy, false);
  }

  /** What a caller is told about node `id` after a change: at its name `at` when given (one of several, L17). */
  placed(id: number, at?: { parent: number; name: string }): Placed {
    if (!at) {
      const now = this.tree.infoById(id)!;
      return { info: now.info, path: now.loc.where === 'live' ? now.loc.segs : null };
    }
    const loc = at ? this.tree.locateEntry(at.parent, at.name) : this.tree.locate(id);
    const row = this.tree.row(id)!;
    return { info: this.tree.infoOf(row, loc), path: loc.where === 'live' ? loc.segs : null };
  }

  /**
   * M2 (POSIX, BSD group semantics as Linux does them): a node made in a directory with the
   * setgid bit takes the directory's group, and a new directory takes the bit too, so a shared
   * project directory stays shared however deep it grows — whichever interface made the node
   * (mount, SMH, BOS, CLI). Copies, moves and restores keep the group the node had.
   */
  inheritGroup(parent: Pick<NodeRow, 'mode' | 'gid'>, gid: number | undefined, perm: number, isDir: boolean): { gid: number; perm: number } {
    if (!(parent.mode & S_ISGID)) return { gid: gid ?? 0, perm };
    return { gid: parent.gid, perm: isDir ? perm | S_ISGID : perm };
  }

  /** mkdir -p: create every missing directory of `segs`; an existing directory is fine. */
  ensureDirs(segs: string[], owner: Owner, subject: string): number {
    let cur = this.root;
    // what inheritGroup reads of the current directory
    let curRow: Pick<NodeRow, 'mode' | 'gid'> | undefined;
    // Once a level is made here, every deeper one is new too: a directory made in this
    // transaction has no entries, so neither the lookup nor a read-back of the row is asked
    // (2 of 5 round trips per level on PostgreSQL; mkdir -p of 2,000 levels in the L15 tests).
    let made = false;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      validateName(seg, true, subject);
      const existing = made ? undefined : this.tree.occupied(cur, seg);
      if (existing === 'reserved') throw this.tree.binReadOnly(subject);
      if (existing) {
        if (existing.kind !== 'dir') throw fail('NotADirectory', `'${joinPath(segs.slice(0, i + 1))}' is not a directory`, subject);
        cur = existing.id;
        curRow = existing;
        continue;
      }
      const { gid, perm } = this.inheritGroup(curRow ?? this.tree.row(cur)!, owner.gid, (owner.mode ?? 0o755) & 0o7777, true);
      const mode = S_IFDIR | perm;
      const id = this.insertNode({ kind: 'dir', mode, uid: owner.uid ?? 0, gid });
      this.attach(cur, seg, id, 'dir');
      cur = id;
      curRow = { mode, gid }; // as inserted
      made = true;
    }
    return cur;
  }

  /**
   * T1/L12: move a node to the bin as one item. A file takes every bound link to it along
   * (except links that are bin items of their own); the links remember where they were.
   */
  trashNode(row: NodeRow, parent: number, name: string, opts: { cascade?: boolean; keep?: number } = {}): number {
    const originalPath = joinPath(this.tree.locate(row.id).segs);
    const size =
      row.kind === 'dir' ? this.rows.subtreeBytes(row.id) : row.kind === 'file' ? row.size : 0;
    const itemId = this.rows.insertItem({ space: this.name, node: row.id, kind: row.kind, name, original_path: originalPath, size, removed_at: this.tree.now() });
    const ownView = trashViewName(itemId, name);
    this.rows.moveEntry(this.trash, ownView, row.id);
    this.touchDir(parent);
    if (row.kind === 'file' && opts.cascade !== false) {
      // The links are shown in the bin view beside their target, under the same item id
      // (`3-cat.jpg`, `3-cat`), where they still resolve; they are not items of their own.
      // Thousands of links may go (issue 15): their directories' paths are walked once each, and
      // once a view name is taken the C2 names for it come from `names` without asking again.
      const names: FreeNames = new Map();
      // every name this cascade puts in the bin (C2 picks are checked against it, not looked up)
      const placed = new Set<string>([ownView]);
      const dirs = new Map<number, Location>();
      // one read for every link and its names, oldest first (rows of one link are adjacent), each
      // with its directory's entry (so a link's path costs no read in a directory seen first)
      const rows = this.rows.boundLinksToCascade(row.id);
      // their bin records and states are written together after the loop, one statement each
      const records: ItemLinkRow[] = [];
      const moved: number[] = [];
      // and their moves, one statement after the loop (so the bin names picked are checked
      // against `placed`, not the table: see Tree.freeName)
      const moves: Array<readonly [number, number, string, number, string]> = [];
      for (let i = 0; i < rows.length; ) {
        const link = rows[i]!.id;
        let end = i + 1;
        while (end < rows.length && rows[end]!.id === link) end++;
        const first = rows[i]!;
        const extras = rows.slice(i + 1, end);
        i = end;
        if (link === opts.keep) continue;
        if (first.parent === null || first.name === null) throw fail('Internal', `node ${link} has no entry`);
        // A link with several names (L17) goes to the bin under its oldest one; the bin records one
        // place per cascaded link (T2), so its other names are removed (native-notes/hard-links.md).
        for (const extra of extras) {
          this.rows.deleteName(extra.parent!, extra.name!);
          this.touchDir(extra.parent!);
        }
        const dirEntry = first.dparent === null || first.dname === null ? null : { parent: first.dparent, name: first.dname };
        const { loc, parent: linkParent, name: linkName } = this.tree.locateVia(link, dirs, { parent: first.parent, name: first.name }, dirEntry);
        records.push({ node: link, parent: linkParent, name: linkName, original_path: joinPath(loc.segs) });
        const viewName = trashViewName(itemId, linkName);
        const taken = placed.has(viewName) || names.has(freeNamesKey(this.trash, viewName, false)) || this.tree.occupied(this.trash, viewName);
        const binName = taken ? this.tree.freeName(this.trash, viewName, false, names, placed) : viewName;
        placed.add(binName);
        moves.push([link, linkParent, linkName, this.trash, binName]);
        moved.push(link);
      }
      // The moves name the entries they move (no read of them); every one must have happened.
      const done = this.rows.moveLinkNames(moves);
      if (done !== moves.length) throw fail('Internal', `${moves.length - done} of ${moves.length} links were not where they were read: none moved to the bin`);
      this.rows.insertItemLinks(itemId, records);
      this.rows.setStates(moved, 'detached');
    }
    return itemId;
  }

  /** L13: delete a non-directory node for good; a file takes every link bound to it along. Returns the nodes deleted. */
  purgeNode(row: NodeRow): number {
    let n = 1;
    if (row.kind === 'file') {
      for (const link of this.rows.boundLinksAll(row.id)) {
        this.deleteNodeRows(link);
        n++;
      }
    }
    this.deleteNodeRows(row);
    return n;
  }

  /** Remove every row of one node; a link or file that was a bin item loses its item too. */
  deleteNodeRows(row: NodeRow): void {
    const it = this.rows.itemByNode(row.id);
    if (it !== undefined) {
      for (const l of this.rows.itemLinks(it)) {
        const lr = this.tree.row(l.node);
        if (lr) this.deleteNodeRows(lr);
      }
      this.rows.deleteItemLinks(it);
      this.rows.deleteItem(it);
    }
    this.rows.deleteEntry(row.id);
    this.rows.deleteItemLinkOf(row.id);
    this.rows.clearXattrs(row.id);
    this.rows.deleteNode(row.id);
    if (row.blob) this.host.dropBlobs([row.blob]);
  }

  startPurgeTask(row: NodeRow, subject: string): number {
    this.rows.setState(row.id, 'purging');
    const total = this.rows.subtreeCount(row.id) + 1;
    return this.host.queuePurge(this.name, subject, row.id, total, this.tree.now());
  }
}
