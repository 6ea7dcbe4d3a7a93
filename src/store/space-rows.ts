/**
 * The row primitives of a space's tree — nodes, entries, recycle-bin items, xattrs — as the rules
 * use them (src/store/tree.ts, edits.ts, ops/): typed methods, no SQL, nothing engine-specific.
 * SQLite implements them in src/store/sqlite/space-rows.ts. Also here: what the rules of one
 * space share (`SpaceCtx`).
 */
import type { MetaEngine } from './engine.js';
import type { BlobRef, NodeKind, StorageClass } from './types.js';

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
  /** M2: the nanoseconds below each µs time, 0–999 (migration 9); the time in ns is t·1000 + t_ns. */
  atime_ns: number;
  mtime_ns: number;
  ctime_ns: number;
  btime_ns: number;
  state: 'live' | 'detached' | 'purging';
}

/** The fields of a new node; `space` comes from the caller. */
export type NewNode = Omit<NodeRow, 'id' | 'state'>;

export interface ItemRow {
  id: number;
  node: number;
  kind: NodeKind;
  name: string;
  original_path: string;
  size: number;
  removed_at: number;
}

/** A link cascaded with a file into the bin (L12): where it was. */
export interface ItemLinkRow {
  node: number;
  parent: number | null;
  name: string;
  original_path: string;
}

/** Counts read with a row: a directory's subdirectories, anything else's names (nlink). */
/** A link to cascade, one row per name (SpaceRows.boundLinksToCascade). */
export type CascadeLinkRow = {
  id: number;
  parent: number | null;
  name: string | null;
  /** The oldest entry of `parent` (null: it has none, or the link has no name). */
  dparent: number | null;
  dname: string | null;
};

export type Counted<R = NodeRow> = R & { subdirs: number; names: number };

/**
 * One name of node `of` (its `seq`-th) and the entries above it: steps[0] is that name's entry,
 * each next step the entry of the previous one's parent, up to an entry whose parent is the space
 * root or the bin node (or as far as entries go: a node on its way out).
 */
export interface Way {
  of: number;
  seq: number;
  steps: Array<{ node: number; parent: number; name: string }>;
}

export interface PlacedRows {
  row: Counted;
  child?: Counted | undefined;
  ways: Way[];
}

export interface PlacedPage {
  row: Counted;
  children: Array<Counted<NodeRow & { entry_name: string }>>;
  ways: Way[];
}

/**
 * statPage's row: name, id, kind × 2 + bound (kind: NODE_KINDS' index; bound: 1 for a bound link),
 * mode, uid, gid, size, rdev, atime, mtime, ctime, btime (µs), the nanoseconds below atime, mtime
 * and ctime as atime_ns·10⁶ + mtime_ns·10³ + ctime_ns, layout, count (a directory's
 * subdirectories, anything else's names). Folded: each value of a raw row costs a JS set.
 */
export type StatRow = [string, number, number, number, number, number, number, number, number, number, number, number, number, string | null, number];

export interface SpaceRows {
  // nodes and entries
  node(id: number): NodeRow | undefined;
  child(parent: number, name: string): NodeRow | undefined;
  /** Children in name order, each with the name of its entry. */
  children(parent: number): Array<NodeRow & { entry_name: string }>;
  /**
   * readdirplus: up to `limit` children named after `after` (all when undefined), in name order
   * (bytes), each with its entry's name and what its nlink counts — a directory's subdirectories,
   * anything else's names (L17): one range read of the (parent, name) key.
   */
  childrenPage(parent: number, after: string | undefined, limit: number): Array<NodeRow & { entry_name: string; subdirs: number; names: number }>;
  /**
   * Optional (an engine where a statement is cheap and row objects are not: SQLite): the
   * `childrenPage` page with only what attributes need, each row a `StatRow` tuple. Without it
   * a packed listing (Space.readdirStats) is made from `readdirPlus`'s NodeInfos.
   */
  statPage?(parent: number, after: string | undefined, limit: number): StatRow[];
  /** Optional, as statPage: the same page as name, id, kind × 2 + bound, mode (a names-only listing). */
  namePage?(parent: number, after: string | undefined, limit: number): Array<[string, number, number, number]>;
  /**
   * Optional: a value that differs after any change to the metadata, by this connection or any
   * other (SQLite: data_version and total_changes). A page read after it was taken is still the
   * library's page while it is the same (a mount prepares a listing's next page, issue 15).
   * Without it nothing read is reused.
   */
  listingVersion?(): string;
  /** The node's oldest name (L19: a node may have several, hard links L17; a directory has one). */
  entryOf(node: number): { parent: number; name: string } | undefined;
  /** Every name of the node, oldest first. */
  entriesOf(node: number): Array<{ parent: number; name: string }>;
  /** How many names the node has (st_nlink of a non-directory). */
  nameCount(node: number): number;
  /**
   * Optional, for engines where each statement is a round trip: the nodes named by `names` one
   * below the other from `start`, in one statement (one snapshot), stopping at the first name
   * that is not there. Without it the rules ask `child` once per name.
   */
  walk?(start: number, names: string[]): NodeRow[];
  /**
   * Optional, likewise: the entries from `node` up (its oldest name, then its parent's, …), in one
   * statement, stopping after the entry whose parent is one of `stops` (the space root, the bin).
   */
  up?(node: number, stops: [number, number]): Array<{ node: number; parent: number; name: string }>;
  /**
   * Optional, likewise (getattr, readlink and lookup by id in one round trip): node `id` with what
   * its nlink counts, and the ways up (`Way`) of every name of it and, for a bound link, of its
   * target — what locating them reads. With `child`: also that entry of directory `id`, with its
   * counts, and the ways of the child's bound target (not of `id`'s). Undefined: no node `id`.
   */
  placed?(id: number, child: string | undefined, stops: [number, number]): PlacedRows | undefined;
  /**
   * Optional, likewise (a readdir page in one round trip): directory `id` as `placed` has it, and
   * its children — a `childrenPage` page (`limit` set), else `children` (all, in their order) —
   * with the ways of every bound link's target among them.
   */
  placedPage?(id: number, after: string | undefined, limit: number | undefined, stops: [number, number]): PlacedPage | undefined;
  /** C2: the names of `parent` in [lo, hi). */
  namesBetween(parent: number, lo: string, hi: string): string[];
  hasChildren(parent: number): boolean;
  firstChild(parent: number): { node: number; is_dir: number; name: string } | undefined;
  /**
   * `firstChild` followed down: the first child of `parent`, its first child while it is a
   * directory, and so on, ending at a non-directory or an empty directory ([] for an empty
   * `parent`). In one statement where a round trip costs (PostgreSQL): a purge batch descends a
   * chain of thousands of levels. Absent: the caller asks `firstChild` level by level.
   */
  firstDescent?(parent: number): Array<{ node: number; is_dir: number; name: string }>;
  subdirCount(parent: number): number;
  insertNode(node: NewNode): number;
  /** A new name for `node`: its newest (L19). */
  insertEntry(parent: number, name: string, node: number, isDir: boolean): void;
  /** Move the entry of a node that has one name (a directory, a last name going to or from the bin). */
  moveEntry(parent: number, name: string, node: number): void;
  /**
   * rename(2) of one name: (fromParent, fromName) becomes (toParent, toName), the node's newest
   * name (L19). Returns the node it named (undefined: no such name).
   */
  moveName(fromParent: number, fromName: string, toParent: number, toName: string): number | undefined;
  /**
   * Many `moveName`s of **links' names** in one statement (a cascade of thousands of links to the
   * bin, issue 15): each `[link, fromParent, fromName, toParent, toName]` (a `ChangeMove`), every
   * name distinct; a name moves only if it names that link, and becomes the link's newest name
   * (L19). Returns how many moved: the caller fails the transaction unless all did. Links only,
   * because the change feed records the moves as changes of the links themselves (one 'moves'
   * row), not of their places ('tree'): nothing is bound to a link (L1, L2, L10 bind regular files
   * only) and nothing is below one, so nothing else's answer depends on where a link is.
   */
  moveLinkNames(moves: ReadonlyArray<readonly [number, number, string, number, string]>): number;
  /**
   * renameat2(RENAME_EXCHANGE): the names (aParent, aName) and (bParent, bName) trade nodes, each
   * becoming its new node's newest name (L19). Returns the nodes they named, [a's, b's]
   * (undefined: one of them is no name). Engines: `exchangeByMoves`.
   */
  exchangeNames(aParent: number, aName: string, bParent: number, bName: string): [number, number] | undefined;
  /** Remove every name of the node; returns the names removed (the change feed records them). */
  deleteEntry(node: number): Array<{ parent: number; name: string }>;
  /** Remove one name (L18); returns the node it named (undefined: no such name). */
  deleteName(parent: number, name: string): number | undefined;
  deleteNode(id: number): void;
  /** mtime and ctime of a directory whose entries changed. */
  touch(id: number, timeUs: number): void;
  touchCtime(id: number, timeUs: number): void;
  touchAtime(id: number, timeUs: number): void;
  setState(id: number, state: NodeRow['state']): void;
  /** `setState` of many nodes in one statement (a cascade of thousands of links, issue 15). */
  setStates(ids: readonly number[], state: NodeRow['state']): void;
  setClass(id: number, cls: StorageClass): void;
  /** Every time written to "now" (touch*, ctime here and in setattr) has remainder 0; `mtimeNs` is mtime's (default 0). */
  setContent(id: number, blob: BlobRef, mtimeUs: number, ctimeUs: number, mtimeNs?: number): void;
  setattr(a: { id: number; mode: number; uid: number; gid: number; atime: number; mtime: number; ctime: number; atime_ns: number; mtime_ns: number }): void;
  /** L10: every link bound to `from` is bound to `to`. */
  rebind(from: number, to: number): void;
  // the space
  spaceClass(space: string): StorageClass;
  setSpaceClass(space: string, cls: StorageClass): void;
  statfs(space: string): { files: number; bytes: number } | undefined;
  // links
  /**
   * Links to cascade with a trashed file: bound, not detached already, not a bin item of their own;
   * each with its names oldest first (one row per name, by link id then age; parent and name null
   * for a link with none), so a cascade reads no entry per link (issue 15); with the oldest entry
   * of each name's directory (`dparent`, `dname`; null for a directory without one: the root), so
   * it reads none per directory either.
   */
  boundLinksToCascade(target: number): CascadeLinkRow[];
  boundLinksAll(target: number): NodeRow[];
  boundLinkCount(target: number): number;
  /** The bound links in the subtree of `top` (itself included), counted per target. */
  boundTargetsIn(top: number): Array<{ target: number; n: number }>;
  /** D10: the mount-made path links in the subtree of `top` (itself included). */
  parentPathLinksIn(top: number): NodeRow[];
  // subtrees (below `dir`, not counting it)
  subtreeBytes(dir: number): number;
  subtreeCount(dir: number): number;
  // the recycle bin
  insertItem(it: Omit<ItemRow, 'id'> & { space: string }): number;
  /** Items in id order with ids > `after` (at most `limit`; undefined: all). */
  itemsAfter(space: string, after: number, limit: number | undefined): ItemRow[];
  itemsUpTo(space: string, last: number, limit: number): ItemRow[];
  itemsOlder(space: string, cutoffUs: number, limit: number): ItemRow[];
  lastItem(space: string): number | undefined;
  item(id: number, space: string): ItemRow | undefined;
  itemByNode(node: number): number | undefined;
  deleteItem(id: number): void;
  insertItemLink(item: number, link: ItemLinkRow): void;
  /** `insertItemLink` of many links in one statement (a cascade, issue 15). */
  insertItemLinks(item: number, links: readonly ItemLinkRow[]): void;
  itemLinks(item: number): ItemLinkRow[];
  deleteItemLinks(item: number): void;
  deleteItemLinkOf(node: number): void;
  // xattrs
  xattr(node: number, name: string): Buffer | undefined;
  xattrs(node: number): Array<{ name: string; value: Buffer }>;
  setXattr(node: number, name: string, value: Buffer): void;
  /** Whether there was such an attribute. */
  deleteXattr(node: number, name: string): boolean;
  clearXattrs(node: number): void;
  copyXattrs(to: number, from: number): void;
}

/**
 * Where an exchange parks a name while the other takes its place: no entry can be called this
 * (names never hold '/', N1), and no reader sees it (the three moves are one statement each of
 * one transaction; the (parent, name) key is checked per statement, so a direct swap would clash).
 */
const EXCHANGE_PARKING = '/exchange';

/** `SpaceRows.exchangeNames` as three `moveName`s of an engine (its own, not a recording wrapper's). */
export function exchangeByMoves(
  moveName: SpaceRows['moveName'],
  aParent: number,
  aName: string,
  bParent: number,
  bName: string,
): [number, number] | undefined {
  const a = moveName(aParent, aName, aParent, EXCHANGE_PARKING);
  if (a === undefined) return undefined;
  const b = moveName(bParent, bName, aParent, aName);
  // the caller's transaction rolls back on the throw: the parked name never commits
  if (b === undefined) throw new Error(`exchangeNames: no entry ${bName} in ${bParent}`);
  if (moveName(aParent, EXCHANGE_PARKING, bParent, bName) === undefined) throw new Error('exchangeNames: the parked name is gone');
  return [a, b];
}

/** What a space's rules need beyond its rows: the engine, and the library's blob records and scheduler. */
export interface SpaceHost {
  engine: MetaEngine;
  /** Inside a transaction: these keys may have lost their last reference (D3). */
  dropBlobs(keys: string[]): void;
  /** Inside the commit that references a stored blob: its upload lease ends. */
  useLease(ref: BlobRef): void;
  /** Inside a transaction: queue an L15 purge task; runs once committed. */
  queuePurge(space: string, subject: string, root: number, total: number, timeUs: number): number;
}

/**
 * The time of the operation running now: each public operation is one transaction, and every
 * time it sets is one instant (POSIX's "time of the call": a new directory's ctime equals its
 * parent's new mtime, a rename stamps both parents and the node alike). Set by `SpaceOps.tx`.
 */
export interface OpClock {
  time: number | undefined;
}

/** One space, as its rules see it. */
export interface SpaceCtx {
  readonly name: string;
  readonly root: number;
  readonly trash: number;
  readonly rows: SpaceRows;
  readonly host: SpaceHost;
  readonly clock: OpClock;
}
