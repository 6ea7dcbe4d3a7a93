/**
 * SPEC §5, the recycle bin: its items (T2), restore (T4, links with their file, L12), purge one
 * item or all, retention (T5), and the batches of an L15 purge task. Moving a node into the bin
 * is `Edits.trashNode` (T1), shared with every delete.
 */
import { fail } from '../../errors.js';
import { checkConflict } from '../checks.js';
import { S_IFDIR } from '../edits.js';
import { nowUs } from '../engine.js';
import { TRASH_NAME, trashViewName } from '../paths.js';
import type { ItemRow, NodeRow } from '../space-rows.js';
import type { FreeNames } from '../tree.js';
import type { Authorize, Conflict, Placed, RecycleItem } from '../types.js';
import { SpaceOps } from './base.js';

/**
 * Bounded steps for purging many bin items (empty, retention): a step's transaction ends once it
 * has deleted this many nodes. ~1,000 nodes is a few ms of SQLite work here (native-notes/scale.md).
 */
const STEP_NODES = 1000;
/** Items read per query inside a step. */
const STEP_ITEMS = 200;

export class TrashOps extends SpaceOps {
  private recycleItem(it: ItemRow): RecycleItem {
    return {
      id: it.id,
      kind: it.kind,
      name: it.name,
      originalPath: it.original_path,
      size: it.size,
      removedAtUs: it.removed_at,
      viewName: trashViewName(it.id, it.name),
      links: this.rows.itemLinks(it.id).map((l) => ({
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
    return this.host.engine.snapshot(() => this.rows.itemsAfter(this.name, after, opts.limit).map((it) => this.recycleItem(it)));
  }

  /** One bin item by id, with its cascaded links (a primary-key read). */
  trashItem(id: number): RecycleItem {
    return this.host.engine.snapshot(() => this.recycleItem(this.item(id)));
  }

  private item(id: number): ItemRow {
    const it = this.rows.item(id, this.name);
    if (!it) throw fail('RecycledItemNotFound', `no recycle-bin item ${id}`, String(id));
    return it;
  }

  /** T4: put an item back at its original path (missing parents recreated), links with it (L12). */
  restore(id: number, opts: { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const it = this.item(id);
      const row = this.tree.row(it.node)!;
      if (row.kind === 'link' && row.link_flavour === 'bound') {
        const target = this.tree.row(row.link_node!);
        const loc = target ? this.tree.locate(target.id) : undefined;
        const targetIsItem = target ? this.rows.itemByNode(target.id) !== undefined : false;
        if (!target || !loc || loc.where === 'gone' || targetIsItem) {
          throw fail('SourceFileNotFound', "the link's target no longer exists (it was deleted); restore the target first", it.original_path);
        }
      }
      const segs = it.original_path.split('/');
      const names: FreeNames = new Map();
      const parent = this.restoreParents(segs.slice(0, -1), row, names);
      this.edits.occupy(parent, it.name, row.kind, conflict, it.original_path, (finalName) => {
        this.rows.moveEntry(parent, finalName, row.id);
        return row.id;
      }, { fn: opts.authorize, source: row.kind }, row.id);
      this.edits.touchDir(parent);
      for (const l of this.rows.itemLinks(it.id)) {
        this.restoreCascadedLink(l, names);
      }
      this.rows.deleteItemLinks(it.id);
      this.rows.deleteItem(it.id);
      return this.edits.placed(row.id);
    });
  }

  /** Recreate missing directories on the way back; a non-directory in the way is worked around (C2). */
  private restoreParents(segs: string[], owner: NodeRow, names: FreeNames): number {
    let cur = this.root;
    for (const seg of segs) {
      const existing = this.tree.occupied(cur, seg);
      if (existing && existing !== 'reserved' && existing.kind === 'dir') {
        cur = existing.id;
        continue;
      }
      const name = existing ? this.tree.freeName(cur, seg, true, names) : seg;
      const id = this.edits.insertNode({ kind: 'dir', mode: S_IFDIR | 0o755, uid: owner.uid, gid: owner.gid });
      this.edits.attach(cur, name, id, 'dir');
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
    const link = this.tree.row(l.node);
    if (!link) return;
    let parent: number | undefined;
    if (!l.original_path.startsWith(`${TRASH_NAME}/`)) {
      parent = this.restoreParents(l.original_path.split('/').slice(0, -1), link, names);
    } else {
      const parentRow = l.parent === null ? undefined : this.tree.row(l.parent);
      if (parentRow && parentRow.kind === 'dir' && this.tree.locate(parentRow.id).where !== 'gone') parent = parentRow.id;
    }
    if (parent === undefined) {
      this.edits.deleteNodeRows(link);
      return;
    }
    const name = this.tree.occupied(parent, l.name) ? this.tree.freeName(parent, l.name, false, names) : l.name;
    this.rows.setState(link.id, 'live');
    this.rows.moveEntry(parent, name, link.id);
    this.edits.touchDir(parent);
  }

  /** T5: purge one item permanently; a directory becomes a background task (L15). */
  purge(id: number): { taskId?: number } {
    return this.tx(() => this.purgeItem(this.item(id)), false, true);
  }

  /** Purge one item; `nodes` is how many nodes that deleted now (a directory's contents go in a task). */
  private purgeItem(it: { id: number; node: number; original_path: string }): { taskId?: number; nodes: number } {
    const row = this.tree.row(it.node)!;
    this.rows.deleteItem(it.id);
    this.rows.deleteEntry(row.id);
    if (row.kind === 'dir') {
      // Cascaded links recorded under a directory item do not exist (only files cascade).
      if (!this.rows.hasChildren(row.id)) {
        this.edits.deleteNodeRows(row);
        return { nodes: 1 };
      }
      return { taskId: this.edits.startPurgeTask(row, it.original_path), nodes: 1 };
    }
    return { nodes: this.edits.purgeNode(row) };
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
    const last = this.rows.lastItem(this.name) ?? 0;
    return this.purgeInSteps((limit) => this.rows.itemsUpTo(this.name, last, limit));
  }

  /** T5: purge items older than the retention period (0 = keep forever), in bounded steps. */
  async purgeExpired(retentionDays: number): Promise<number> {
    if (typeof retentionDays !== 'number' || !Number.isFinite(retentionDays) || retentionDays < 0) {
      throw fail('InvalidArgument', 'retention must be a number of days >= 0 (0 = keep forever)');
    }
    if (retentionDays === 0) return 0;
    const cutoff = nowUs() - retentionDays * 86_400 * 1_000_000;
    return (await this.purgeInSteps((limit) => this.rows.itemsOlder(this.name, cutoff, limit))).purged;
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
      const dirs: number[] = this.tree.row(root) ? [root] : [];
      // The descent to the next node to delete: where the rows can, one statement for the whole
      // path (a 4,000-level chain is otherwise 4,000 round trips at every batch's start).
      const descend = this.rows.firstDescent?.bind(this.rows);
      while (dirs.length > 0 && deleted < limit) {
        const dir = dirs[dirs.length - 1]!;
        let child: { node: number; is_dir: number; name: string } | undefined;
        if (descend) {
          const path = descend(dir);
          for (let i = 0; i < path.length - 1; i++) dirs.push(path[i]!.node); // directories, by the descent's rule
          child = path[path.length - 1];
        } else child = this.rows.firstChild(dir);
        if (child?.is_dir) {
          dirs.push(child.node); // the descent's end: an empty directory, deleted at the next turn
          continue;
        }
        if (child) {
          const row = this.tree.row(child.node);
          const parent = dirs[dirs.length - 1]!; // the directory holding it (deeper than `dir` after a descent)
          // a node with names outside what is purged (L17) loses this one only (L18)
          if (row && this.edits.removeName(row, parent, child.name)) {
            deleted++;
            continue;
          }
          if (row) this.edits.purgeNode(row);
          else this.rows.deleteEntry(child.node); // an entry without its node: nothing else to free
          deleted++;
          continue;
        }
        dirs.pop(); // empty now
        const row = this.tree.row(dir);
        if (row) {
          this.edits.purgeNode(row);
          deleted++;
        }
      }
      return { deleted, finished: this.tree.row(root) === undefined };
    }, false, true);
  }
}
