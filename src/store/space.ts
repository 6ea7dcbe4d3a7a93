/**
 * One space of a library, as the rest of smhfs sees it: a façade over the rules of SPEC sections
 * 2–5, which live in layers below it (native-notes/architecture.md):
 *
 * - tree.ts — read-only resolution (paths, links followed, where a node is, what it looks like);
 * - edits.ts — the mutations every operation shares (naming under a conflict strategy, the one
 *   replacement rule, moving a node to the bin, deleting rows);
 * - ops/ — one file per SPEC section: nodes (§2), links (§3), the tree (§4), the recycle bin (§5),
 *   xattrs;
 * - space-rows.ts — the row primitives they use, which the engine implements (sqlite/space-rows.ts).
 *
 * Each public operation is one synchronous transaction of the engine (or one snapshot for a read);
 * only emptying the bin and retention run as several bounded transactions with the event loop
 * turning between them. No transaction awaits or touches blob bytes: an operation that drops the
 * last reference to a blob hands its key to the library's blob records, which collect it after the
 * commit (T6).
 */
import type { Edits as EditsT } from './edits.js';
import { Edits } from './edits.js';
import { LinkOps } from './ops/links.js';
import { NodeOps, type PutFileOptions } from './ops/nodes.js';
import { TrashOps } from './ops/trash.js';
import { TreeOps, type RemoveResult, type RenameOptions, type TreeOpOptions } from './ops/tree.js';
import { XattrOps } from './ops/xattrs.js';
import type { NodeRow, SpaceCtx, SpaceHost, SpaceRows } from './space-rows.js';
import { Tree, type Location, type ResolveContext } from './tree.js';
import type { Attrs, Authorize, BlobRef, Conflict, DirEntry, DirStats, NodeInfo, Owner, Placed, RecycleItem, StatFs } from './types.js';

export { MAX_BOUND_LINKS } from './ops/links.js';
export type { RemoveResult, RenameOptions, TreeOpOptions } from './ops/tree.js';
export type { ResolveContext } from './tree.js';
export type { NodeRow } from './space-rows.js';
export { checkConflict, quote } from './checks.js';
export { nowUs } from './engine.js';

export class Space {
  readonly name: string;
  readonly root: number;
  readonly trash: number;
  private readonly tree: Tree;
  private readonly edits: EditsT;
  private readonly nodes: NodeOps;
  private readonly links: LinkOps;
  private readonly treeOps: TreeOps;
  private readonly trashOps: TrashOps;
  private readonly xattrs: XattrOps;

  constructor(host: SpaceHost, rows: SpaceRows, name: string, root: number, trash: number) {
    this.name = name;
    this.root = root;
    this.trash = trash;
    const ctx: SpaceCtx = { name, root, trash, rows, host, clock: { time: undefined } };
    this.tree = new Tree(ctx);
    this.edits = new Edits(ctx, this.tree);
    this.nodes = new NodeOps(ctx, this.tree, this.edits);
    this.links = new LinkOps(ctx, this.tree, this.edits, this.nodes);
    this.treeOps = new TreeOps(ctx, this.tree, this.edits, this.links);
    this.trashOps = new TrashOps(ctx, this.tree, this.edits);
    this.xattrs = new XattrOps(ctx, this.tree, this.edits);
  }

  // ───────────────────────────── reads (§2, ops/nodes.ts) ─────────────────────────────

  /** Where a node is now: its segments from the space root, or from `.trash`. */
  locate(id: number): Location {
    return this.tree.locate(id);
  }

  stat(path: string, opts: { follow?: boolean } & ResolveContext = {}): NodeInfo {
    return this.nodes.stat(path, opts);
  }

  /** Like stat, for an operation about to change the node (open for writing, truncate): the bin is read-only (T3). */
  statWritable(path: string | number): NodeInfo {
    return this.nodes.statWritable(path);
  }

  /** open(2): for writing, a node that may be written and is not a directory. */
  statOpen(path: string | number, opts: { write: boolean }): NodeInfo {
    return this.nodes.statOpen(path, opts);
  }

  /** truncate(2): only a regular file that may be written has a size to change. */
  statTruncatable(path: string | number): NodeInfo {
    return this.nodes.statTruncatable(path);
  }

  statNode(id: number): NodeInfo {
    return this.nodes.statNode(id);
  }

  /** A directory's entries, by path or by node id. */
  readdir(pathOrId: string | number): DirEntry[] {
    return this.nodes.readdir(pathOrId);
  }

  /**
   * readdirplus: up to `limit` entries of directory `id` named after `after`, in name order, each
   * with its NodeInfo, from one range read (issue 15: a walk costs a request per batch, not per
   * entry). Page on with the last name received; fewer than `limit` entries: the end.
   */
  readdirPlus(id: number, after: string | undefined, limit: number): DirEntry[] {
    return this.nodes.readdirPlus(id, after, limit);
  }

  /**
   * readdirPlus's page packed (DirStats: names and numbers, no NodeInfo per entry) — what the
   * mount's readdirplus needs of each entry, at a fraction of the cost per entry (issue 15).
   */
  readdirStats(id: number, after: string | undefined, limit: number): DirStats {
    return this.nodes.readdirStats(id, after, limit);
  }

  /**
   * readdirStats with names, ids, kinds and modes only (FLAGS DS_NAMES): a names-only listing.
   * `spare`: memory the caller no longer needs, for the page's numbers.
   */
  readdirNames(id: number, after: string | undefined, limit: number, spare?: ArrayBuffer): DirStats {
    return this.nodes.readdirNames(id, after, limit, spare);
  }

  /**
   * A value that differs after any change to the library's metadata, by any process (undefined:
   * the engine cannot tell). A mount reads a listing's next page ahead and serves it only while
   * this is what it was before that read (issue 15).
   */
  listingVersion(): string | undefined {
    return this.nodes.listingVersion();
  }

  /** The entry `name` of directory `parent` (node ids; the root's `.trash` included): lookup(2). */
  lookup(parent: number, name: string): NodeInfo {
    return this.nodes.lookup(parent, name);
  }

  /** Nodes and bytes of the space, from counters kept exact in every transaction (O(1), issue 15). */
  statfs(): StatFs {
    return this.nodes.statfs();
  }

  userMeta(pathOrId: string | number): Record<string, string> {
    return this.nodes.userMeta(pathOrId);
  }

  // ───────────────────────────── links (§3, ops/links.ts) ─────────────────────────────

  /** L4/L5: what readlink(2) answers, for a link given by path or by node id. */
  readlink(pathOrId: string | number): string {
    return this.links.readlink(pathOrId);
  }

  /** The stored target of a link (BOS `GET ?symlink`); a bound link answers its target's current key. */
  getSymlink(key: string): string {
    return this.links.getSymlink(key);
  }

  /** L6: what a dialect GET/HEAD reads. */
  resolveRead(path: string, how: 'smh' | 'bos', ctx: ResolveContext = {}): { node: NodeInfo; link?: NodeInfo } {
    return this.links.resolveRead(path, how, ctx);
  }

  /** L1: symlink(2). */
  symlink(linkPath: string, target: string, opts: ResolveContext & { uid?: number; gid?: number } = {}): NodeInfo {
    return this.links.symlink(linkPath, target, opts);
  }

  /** L1: symlink(2) of `name` in directory `parentId` (node ids, as `lookup`). */
  symlinkAt(parentId: number, name: string, target: string, opts: ResolveContext & { uid?: number; gid?: number } = {}): NodeInfo {
    return this.links.symlinkAt(parentId, name, target, opts);
  }

  /** L2: SMH create symbolic link — always bound, to a live regular file. */
  createLink(linkPath: string, linkTo: string, opts: { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    return this.links.createLink(linkPath, linkTo, opts);
  }

  /** L3: BOS PutSymlink — a path link storing the key; the target is not checked. */
  putSymlink(
    key: string,
    target: string,
    opts: { forbidOverwrite?: boolean; storageClass?: string; meta?: Record<string, string> } = {},
  ): { info: NodeInfo; etag: string } {
    return this.links.putSymlink(key, target, opts);
  }

  /** L17: link(2) — `newPath` becomes another name of the node at `path`; its info, with the new nlink. */
  link(path: string, newPath: string): NodeInfo {
    return this.links.link(path, newPath);
  }

  /** L17 by ids: node `nodeId` gains the name `newName` in directory `newParentId`. */
  linkAt(nodeId: number, newParentId: number, newName: string): NodeInfo {
    return this.links.linkAt(nodeId, newParentId, newName);
  }

  /** D10: whether a path link stored as `stored` in the directory `parentSegs` leads outside the space. */
  leadsOutside(parentSegs: string[], stored: string): boolean {
    return this.links.leadsOutside(parentSegs, stored);
  }

  // ───────────────────────────── making nodes (§2, ops/nodes.ts) ─────────────────────────────

  setDefaultStorageClass(value: string): void {
    this.nodes.setDefaultStorageClass(value);
  }

  mkdir(path: string, opts: Owner & { parents?: boolean; conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    return this.nodes.mkdir(path, opts);
  }

  /** mkdir of `name` in directory `parentId` (node ids, as `lookup`): what `mkdir` of that path answers. */
  mkdirAt(parentId: number, name: string, opts: Owner & { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    return this.nodes.mkdirAt(parentId, name, opts);
  }

  mknod(path: string, opts: { mode: number; rdev?: number; uid?: number; gid?: number }): NodeInfo {
    return this.nodes.mknod(path, opts);
  }

  /** create(2) through the mount: an empty file; EEXIST when the name is taken. */
  createFile(path: string, owner: Owner = {}): NodeInfo {
    return this.nodes.createFile(path, owner);
  }

  /** create(2) of `name` in directory `parentId` (node ids, as `lookup`). */
  createFileAt(parentId: number, name: string, owner: Owner = {}): NodeInfo {
    return this.nodes.createFileAt(parentId, name, owner);
  }

  /** mknod(2) of `name` in directory `parentId` (node ids, as `lookup`). */
  mknodAt(parentId: number, name: string, opts: { mode: number; rdev?: number; uid?: number; gid?: number }): NodeInfo {
    return this.nodes.mknodAt(parentId, name, opts);
  }

  /** What an upload to `path` would meet, checked before its body is read. */
  checkPutFile(path: string, opts: { conflict?: Conflict; createParents?: boolean; meta?: Record<string, string>; storageClass?: string } = {}): void {
    this.nodes.checkPutFile(path, opts);
  }

  /** Upload (SMH PUT with a body, BOS PutObject, CLI put). */
  putFile(
    path: string,
    blob: BlobRef,
    opts: PutFileOptions = {},
  ): Placed {
    return this.nodes.putFile(path, blob, opts);
  }

  /** B5: commit new content for an open file (flush/fsync/release/truncate through the mount). */
  setContent(nodeId: number, blob: BlobRef, opts: { mtimeUs?: number; mtimeNsRem?: number; ctimeUs?: number } = {}): NodeInfo {
    return this.nodes.setContent(nodeId, blob, opts);
  }

  /** relatime: a read or listing moves atime when it is due (see NodeOps.accessed). */
  accessed(seen: NodeInfo): void {
    this.nodes.accessed(seen);
  }

  setattr(pathOrId: string | number, attrs: Attrs): NodeInfo {
    return this.nodes.setattr(pathOrId, attrs);
  }

  // ───────────────────────────── the tree (§4, ops/tree.ts) ─────────────────────────────

  /** rename(2) with POSIX replacement rules; `noReplace`: renameat2's RENAME_NOREPLACE. */
  rename(from: string, to: string, opts: RenameOptions = {}): NodeInfo {
    return this.treeOps.rename(from, to, opts);
  }

  /** rename(2) by node ids: the entry `name` of `parentId` becomes `newName` in `newParentId`. */
  renameAt(parentId: number, name: string, newParentId: number, newName: string, opts: RenameOptions = {}): NodeInfo {
    return this.treeOps.renameAt(parentId, name, newParentId, newName, opts);
  }

  /** renameat2(RENAME_EXCHANGE): two names trade nodes atomically; returns [a's node, b's node] at their new names. */
  exchange(a: string, b: string): [NodeInfo, NodeInfo] {
    return this.treeOps.exchange(a, b);
  }

  /** `exchange` by (directory id, name) pairs. */
  exchangeAt(aParent: number, aName: string, bParent: number, bName: string): [NodeInfo, NodeInfo] {
    return this.treeOps.exchangeAt(aParent, aName, bParent, bName);
  }

  /** SMH/CLI move with a conflict strategy (default rename). */
  move(from: string, to: string, opts: TreeOpOptions = {}): Placed {
    return this.treeOps.move(from, to, opts);
  }

  /** L8: copy. */
  copy(from: string, to: string, opts: TreeOpOptions = {}): Placed {
    return this.treeOps.copy(from, to, opts);
  }

  /**
   * unlink(2): a file, link or special file goes to the recycle bin (T1), bound links with it
   * (L12); one name of a node that has others goes alone, and no item is made (L18).
   */
  unlink(path: string): { recycledItemId?: number; namesLeft?: number } {
    return this.treeOps.unlink(path);
  }

  /** unlink(2) of the entry `name` of directory `parentId`. */
  unlinkAt(parentId: number, name: string): { recycledItemId?: number; namesLeft?: number } {
    return this.treeOps.unlinkAt(parentId, name);
  }

  /** rmdir(2): removes an empty directory for good (nothing to lose). */
  rmdir(path: string): void {
    this.treeOps.rmdir(path);
  }

  /** rmdir(2) of the entry `name` of directory `parentId`. */
  rmdirAt(parentId: number, name: string): void {
    this.treeOps.rmdirAt(parentId, name);
  }

  /** SMH DELETE / CLI rm / BOS DeleteObject: to the bin (T1), or for good (L13, L15). */
  remove(
    path: string,
    opts: { permanent?: boolean; recursive?: boolean; kind?: 'dir' | 'file'; rmdirEmpty?: boolean } = {},
  ): RemoveResult {
    return this.treeOps.remove(path, opts);
  }

  // ───────────────────────────── xattrs (ops/xattrs.ts) ─────────────────────────────

  getXattr(path: string | number, name: string): Buffer {
    return this.xattrs.getXattr(path, name);
  }

  listXattr(path: string | number): string[] {
    return this.xattrs.listXattr(path);
  }

  setXattr(path: string | number, name: string, value: Buffer, flags: { create?: boolean; replace?: boolean } = {}): void {
    this.xattrs.setXattr(path, name, value, flags);
  }

  removeXattr(path: string | number, name: string): void {
    this.xattrs.removeXattr(path, name);
  }

  // ───────────────────────────── the recycle bin (§5, ops/trash.ts) ─────────────────────────────

  trashList(opts: { limit?: number; after?: number } = {}): RecycleItem[] {
    return this.trashOps.trashList(opts);
  }

  trashItem(id: number): RecycleItem {
    return this.trashOps.trashItem(id);
  }

  /** T4: put an item back at its original path, links with it (L12). */
  restore(id: number, opts: { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    return this.trashOps.restore(id, opts);
  }

  /** T5: purge one item permanently; a directory becomes a background task (L15). */
  purge(id: number): { taskId?: number } {
    return this.trashOps.purge(id);
  }

  emptyTrash(): Promise<{ purged: number; taskIds: number[] }> {
    return this.trashOps.emptyTrash();
  }

  purgeExpired(retentionDays: number): Promise<number> {
    return this.trashOps.purgeExpired(retentionDays);
  }

  /** One batch of an L15 purge task (the scheduler, src/store/tasks.ts, runs them). */
  purgeBatch(root: number, limit: number): { deleted: number; finished: boolean } {
    return this.trashOps.purgeBatch(root, limit);
  }

  /** Remove every row of one node (inside a transaction); a link or file that was a bin item loses its item too. */
  deleteNodeRows(row: NodeRow): void {
    this.edits.deleteNodeRows(row);
  }
}
