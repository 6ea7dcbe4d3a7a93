/**
 * SPEC §4, the tree: rename(2) with POSIX replacement, the dialects' move and copy with a conflict
 * strategy (L8 copies links; D10 and PATH_MAX checked on what a move or copy makes), and deletes:
 * unlink/rmdir, and SMH/BOS/CLI delete to the bin (T1) or for good (L13, L15).
 */
import { fail, SmhError } from '../../errors.js';
import { checkConflict } from '../checks.js';
import type { Edits } from '../edits.js';
import { joinPath, MAX_PATH_BYTES } from '../paths.js';
import type { NodeRow, SpaceCtx } from '../space-rows.js';
import type { Resolved, Tree } from '../tree.js';
import type { Authorize, Conflict, NodeInfo, Placed } from '../types.js';
import { SpaceOps } from './base.js';
import type { LinkOps } from './links.js';

/** renameat2(2)'s RENAME_NOREPLACE: the new name must be free (EEXIST). RENAME_EXCHANGE is `exchange`. */
export interface RenameOptions {
  noReplace?: boolean;
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

/**
 * What a delete did: moved an item to the bin (T1), queued a purge task (L15), removed one name
 * of a node that keeps `namesLeft` others (L18), or — none of these — deleted for good.
 */
export interface RemoveResult {
  recycledItemId?: number;
  taskId?: number;
  namesLeft?: number;
}

function pathTooLong(subject: string): SmhError {
  return fail('PathTooLong', `the copy would make a path longer than ${MAX_PATH_BYTES} bytes (PATH_MAX)`, subject);
}

export class TreeOps extends SpaceOps {
  private readonly links: LinkOps;

  constructor(ctx: SpaceCtx, tree: Tree, edits: Edits, links: LinkOps) {
    super(ctx, tree, edits);
    this.links = links;
  }

  /** rename(2) with POSIX replacement rules; L9 holds for free (identity is untouched), L10/L11 on replace. */
  rename(from: string, to: string, opts: RenameOptions = {}): NodeInfo {
    return this.tx(() => {
      const src = this.tree.resolveWritable(from);
      const { parent, name } = this.tree.parentOf(to, src.row.kind === 'dir');
      return this.renameTo(src, parent, name, to, opts);
    });
  }

  /** rename(2) by (directory id, name): the entry `name` of `parentId` becomes `newName` in `newParentId`. */
  renameAt(parentId: number, name: string, newParentId: number, newName: string, opts: RenameOptions = {}): NodeInfo {
    return this.tx(() => {
      const src = this.tree.writableAt(parentId, name);
      const place = this.tree.parentAt(newParentId, newName, src.row.kind === 'dir');
      return this.renameTo(src, place.parent, place.name, place.subject, opts);
    });
  }

  /**
   * renameat2(RENAME_EXCHANGE): names `a` and `b` trade nodes in one transaction — files,
   * directories, links, specials, in one directory or two. Both must exist (ENOENT) and be
   * writable (T3); a directory may not land in its own subtree (EINVAL); two names of one node
   * (or one name twice) succeed and change nothing, as Linux does. Identity is untouched, so bound
   * links follow their targets (L9) and nothing is replaced or binned. Both nodes' ctime and both
   * directories' mtime and ctime move, one instant. Returns the nodes at their new names.
   */
  exchange(a: string, b: string): [NodeInfo, NodeInfo] {
    return this.tx(() => this.exchangeResolved(this.tree.resolveWritable(a), this.tree.resolveWritable(b), b));
  }

  /** `exchange` by (directory id, name) pairs. */
  exchangeAt(aParent: number, aName: string, bParent: number, bName: string): [NodeInfo, NodeInfo] {
    return this.tx(() => {
      const a = this.tree.writableAt(aParent, aName);
      const b = this.tree.writableAt(bParent, bName);
      return this.exchangeResolved(a, b, joinPath(b.segs));
    });
  }

  private exchangeResolved(a: Resolved, b: Resolved, subject: string): [NodeInfo, NodeInfo] {
    const aAt = { parent: a.parent!, name: a.name };
    const bAt = { parent: b.parent!, name: b.name };
    if (a.row.id === b.row.id) return [this.edits.placed(a.row.id, aAt).info, this.edits.placed(b.row.id, bAt).info];
    if ((a.row.kind === 'dir' && this.tree.isAncestor(a.row.id, bAt.parent)) || (b.row.kind === 'dir' && this.tree.isAncestor(b.row.id, aAt.parent))) {
      throw fail('MoveIntoItself', 'cannot exchange a directory with a name inside it', subject);
    }
    this.rows.exchangeNames(aAt.parent, aAt.name, bAt.parent, bAt.name);
    this.edits.touchDir(aAt.parent);
    if (bAt.parent !== aAt.parent) this.edits.touchDir(bAt.parent);
    const t = this.tree.now();
    this.rows.touchCtime(a.row.id, t);
    this.rows.touchCtime(b.row.id, t);
    return [this.edits.placed(a.row.id, bAt).info, this.edits.placed(b.row.id, aAt).info];
  }

  private renameTo(src: Resolved, parent: NodeRow, name: string, to: string, opts: RenameOptions): NodeInfo {
    if (src.row.kind === 'dir' && this.tree.isAncestor(src.row.id, parent.id)) {
      throw fail('MoveIntoItself', 'cannot move a directory into itself', to);
    }
    const existing = this.tree.occupied(parent.id, name);
    if (existing === 'reserved') throw this.tree.binReadOnly(to);
    // RENAME_NOREPLACE: even a name of the same node counts as taken (Linux checks before its same-inode shortcut)
    if (existing && opts.noReplace) throw fail('SameNameDirectoryOrFileExists', 'the new name exists (RENAME_NOREPLACE)', to);
    if (existing && existing.id === src.row.id) return this.edits.placed(src.row.id).info;
    if (existing) {
      if (src.row.kind === 'dir' && existing.kind !== 'dir') throw fail('NotADirectory', 'cannot replace a non-directory with a directory', to);
      if (src.row.kind !== 'dir' && existing.kind === 'dir') throw fail('IsADirectory', 'cannot replace a directory with a non-directory', to);
      // L18: over a name of a node that keeps other names, only that name goes
      const left = this.edits.displace(existing, parent.id, name, src.row.kind === 'file', src.row.id);
      this.edits.rebindReplaced(existing, src.row.id, src.row.kind === 'file', left);
    }
    // one name moves (a node may have others, L17); it becomes the node's newest name (L19)
    this.rows.moveName(src.parent!, src.name, parent.id, name);
    this.edits.touchDir(src.parent!);
    this.edits.touchDir(parent.id);
    this.rows.touchCtime(src.row.id, this.tree.now());
    return this.edits.placed(src.row.id, { parent: parent.id, name }).info;
  }

  /**
   * SMH/CLI move with a conflict strategy (default rename). `kind` is what the caller's endpoint
   * moves (SMH has one for files, one for directories), checked in the same transaction. D10: a
   * move that would make a path link inside what moves lead outside the space is refused.
   */
  move(from: string, to: string, opts: TreeOpOptions = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const { src, parent, name } = this.sourceAndPlace(from, to, opts.kind, 'move');
      if (src.parent === parent.id && src.name === name) {
        opts.authorize?.({ source: src.row.kind });
        return this.edits.placed(src.row.id, { parent: parent.id, name });
      }
      let placedAs = name;
      this.edits.occupy(parent.id, name, src.row.kind, conflict, to, (finalName) => {
        this.rows.moveName(src.parent!, src.name, parent.id, finalName);
        placedAs = finalName;
        return src.row.id;
      }, { fn: opts.authorize, source: src.row.kind }, src.row.id);
      this.edits.touchDir(src.parent!);
      this.edits.touchDir(parent.id);
      this.links.checkLinksInside(src.row.id, 'move', to);
      return this.edits.placed(src.row.id, { parent: parent.id, name: placedAs });
    });
  }

  /**
   * What a dialect move or copy takes and where it goes: the source (of the endpoint's kind: a
   * directory API moves directories, a file API the rest), the destination's parent and name,
   * and never a directory into its own subtree.
   */
  private sourceAndPlace(from: string, to: string, kind: 'file' | 'dir' | undefined, verb: 'move' | 'copy'): { src: Resolved; parent: NodeRow; name: string } {
    const src = this.tree.resolveSource(from);
    if (kind === 'file' && src.row.kind === 'dir') throw fail('IsADirectory', 'the source is a directory; use the directory API', from);
    if (kind === 'dir' && src.row.kind !== 'dir') throw fail('NotADirectory', 'the source is not a directory; use the file API', from);
    const { parent, name } = this.tree.parentOf(to, src.row.kind === 'dir');
    if (src.row.kind === 'dir' && this.tree.isAncestor(src.row.id, parent.id)) {
      throw fail('MoveIntoItself', `cannot ${verb} a directory into itself`, to);
    }
    return { src, parent, name };
  }

  /**
   * L8: copy. A copied link is a new link of the same flavour bound to the same target. `kind` as
   * for move. D10: a copy that would make a path link lead outside the space is refused; N2/PATH_MAX:
   * so is a copy that would make a path longer than MAX_PATH_BYTES.
   */
  copy(from: string, to: string, opts: TreeOpOptions = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const { src, parent, name } = this.sourceAndPlace(from, to, opts.kind, 'copy');
      const parentBytes = Buffer.byteLength(joinPath(this.tree.locate(parent.id).segs));
      const id = this.edits.occupy(parent.id, name, src.row.kind, conflict, to, (finalName) =>
        this.copyTree(src.row, parent.id, finalName, parentBytes + (parentBytes > 0 ? 1 : 0) + Buffer.byteLength(finalName), to, opts.maxNodes),
      { fn: opts.authorize, source: src.row.kind });
      this.links.checkLinksInside(id, 'copy', to);
      // L8 copies bound links: none of their targets may pass MAX_BOUND_LINKS
      for (const { target } of this.rows.boundTargetsIn(id)) this.links.checkLinkRoom(target, 0, from);
      return this.edits.placed(id);
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
    const t = this.tree.now();
    const copyOne = (r: NodeRow, into: number, as: string): number => {
      budget();
      const id = this.edits.insertNode({ ...r, atime: t, mtime: r.mtime, ctime: t, btime: t, atime_ns: 0, ctime_ns: 0, btime_ns: 0 });
      this.rows.copyXattrs(id, r.id);
      this.edits.attach(into, as, id, r.kind);
      return id;
    };
    if (pathBytes > MAX_PATH_BYTES) throw pathTooLong(subject);
    const top = copyOne(row, parent, name);
    const pending: Array<{ from: number; to: number; bytes: number }> = row.kind === 'dir' ? [{ from: row.id, to: top, bytes: pathBytes }] : [];
    while (pending.length > 0) {
      const { from, to, bytes } = pending.pop()!;
      for (const c of this.rows.children(from)) {
        const b = bytes + 1 + Buffer.byteLength(c.entry_name);
        if (b > MAX_PATH_BYTES) throw pathTooLong(subject);
        const id = copyOne(c, to, c.entry_name);
        if (c.kind === 'dir') pending.push({ from: c.id, to: id, bytes: b });
      }
    }
    return top;
  }

  /**
   * unlink(2): a file, link or special file goes to the recycle bin (T1), bound links with it
   * (L12) — unless it has other names (L18): then only this name goes, and no item is made.
   */
  unlink(path: string): { recycledItemId?: number; namesLeft?: number } {
    return this.tx(() => this.unlinkResolved(this.tree.resolveWritable(path), path));
  }

  /** unlink(2) of the entry `name` of directory `parentId`. */
  unlinkAt(parentId: number, name: string): { recycledItemId?: number; namesLeft?: number } {
    return this.tx(() => {
      const r = this.tree.writableAt(parentId, name);
      return this.unlinkResolved(r, joinPath(r.segs));
    });
  }

  private unlinkResolved(r: Resolved, path: string): { recycledItemId?: number; namesLeft?: number } {
    if (r.row.kind === 'dir') throw fail('IsADirectory', 'is a directory (use rmdir)', path);
    if (this.edits.removeName(r.row, r.parent!, r.name)) return { namesLeft: this.rows.nameCount(r.row.id) };
    return { recycledItemId: this.edits.trashNode(r.row, r.parent!, r.name) };
  }

  /** rmdir(2): removes an empty directory for good (nothing to lose). */
  rmdir(path: string): void {
    this.tx(() => this.rmdirResolved(this.tree.resolveWritable(path), path));
  }

  /** rmdir(2) of the entry `name` of directory `parentId`. */
  rmdirAt(parentId: number, name: string): void {
    this.tx(() => {
      const r = this.tree.writableAt(parentId, name);
      this.rmdirResolved(r, joinPath(r.segs));
    });
  }

  private rmdirResolved(r: Resolved, path: string): void {
    if (r.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory', path);
    this.removeEmptyDir(r, path);
  }

  /** rmdir semantics: an empty directory is removed for good (nothing in it to lose). */
  private removeEmptyDir(r: Resolved, path: string): void {
    if (this.rows.hasChildren(r.row.id)) throw fail('DirectoryNotEmpty', 'directory not empty', path);
    this.rows.deleteEntry(r.row.id);
    this.edits.touchDir(r.parent!);
    this.edits.deleteNodeRows(r.row);
  }

  /**
   * SMH DELETE / CLI rm / BOS DeleteObject. Without `permanent` anything goes to the recycle bin
   * as one item (T1); with it a file or link is deleted at once (L13) and a directory becomes a
   * purge task (L15). `kind` is what the caller's endpoint deletes (SMH has one for files and one
   * for directories): checked in the same transaction as the delete. `rmdirEmpty`: a directory
   * is removed as rmdir(2) would (BOS DeleteObject of a directory key).
   */
  remove(
    path: string,
    opts: { permanent?: boolean; recursive?: boolean; kind?: 'dir' | 'file'; rmdirEmpty?: boolean } = {},
  ): RemoveResult {
    return this.tx(() => {
      const found = this.tree.resolve(path);
      if (opts.kind === 'file' && found.row.kind === 'dir') throw fail('IsADirectory', 'is a directory; delete it as a directory', path);
      if (opts.kind === 'dir' && found.row.kind !== 'dir') throw fail('NotADirectory', 'not a directory; delete it as a file', path);
      const r = this.tree.writable(found, path);
      if (opts.rmdirEmpty && r.row.kind === 'dir') {
        // BOS DeleteObject of a directory key: rmdir semantics
        this.removeEmptyDir(r, path);
        return {};
      }
      if (r.row.kind === 'dir' && !opts.recursive && this.rows.hasChildren(r.row.id)) {
        throw fail('DirectoryNotEmpty', 'directory not empty (remove it recursively)', path);
      }
      // L18: one name of several goes alone, to the bin or for good alike: nothing is lost
      if (this.edits.removeName(r.row, r.parent!, r.name)) return { namesLeft: this.rows.nameCount(r.row.id) };
      if (!opts.permanent) return { recycledItemId: this.edits.trashNode(r.row, r.parent!, r.name) };
      this.rows.deleteEntry(r.row.id);
      this.edits.touchDir(r.parent!);
      if (r.row.kind === 'dir') {
        if (!this.rows.hasChildren(r.row.id)) {
          this.edits.deleteNodeRows(r.row);
          return {};
        }
        return { taskId: this.edits.startPurgeTask(r.row, path) };
      }
      this.edits.purgeNode(r.row);
      return {};
    }, false, opts.permanent === true);
  }
}
