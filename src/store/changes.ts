/**
 * The change feed (H4, issue 11): what every write transaction changed, recorded in that same
 * transaction and numbered in commit order, so a mount can invalidate exactly the kernel caches
 * that went stale — whoever made the change (this mount, the CLI, `serve`, another mount).
 *
 * Recording lives in the row primitives, not in the rules: `recordingRows` wraps a space's
 * `SpaceRows` so that every mutation of an entry or a node records itself (a name added or removed
 * in a directory; a node's attributes, content or readlink answer), with the side effects a rule
 * never spells out: a file that moves (rename, move, trash, restore) changes the readlink answer
 * of every link bound to it (L4), a directory that moves changes the answers of the links in it
 * and bound into it, a rebind (L10) changes its links. The writer records one 'tree' change for
 * the node that moved and reads nothing more; the reader expands it into the links concerned as
 * they are when it reads (`dependents`), so renaming a directory holding the targets of 30,000
 * links stays one row here. (Sound: a link that stopped depending on the node between the change
 * and the read did so by a later change, which is recorded and read too.) A cascade (L12) moves
 * each link's entry, so each is recorded.
 * A rule added later that only uses the primitives is covered without knowing the feed exists.
 *
 * Within a transaction a change is recorded once (a cascade touches the bin a thousand times: one
 * record). Numbers come from the engine (SQLite: AUTOINCREMENT, writers are serialised, so the
 * order of numbers is the order of commits; PostgreSQL: a sequencer pass numbers committed
 * changes after their commit, src/store/postgres/feed.ts, so the numbers a writer hands its own
 * listeners are local ones, `localNumbers`). A rolled-back transaction leaves no record; the
 * records of a committed one are also handed to in-process listeners right after the commit
 * (`onCommit`), because a connection never sees its own commits through `PRAGMA data_version`.
 *
 * Pruning keeps the feed bounded: every PRUNE_EVERY numbers, a writer drops what is more than
 * `keep` numbers old, in its own transaction; the horizon says how far. A reader that fell behind
 * the horizon cannot replay what it missed and must drop every cache (`read` says so).
 *
 * One record type for both engines (PostgreSQL's feed, src/store/postgres/feed.ts, keeps the same
 * {space, kind, node, parent, name} numbered by `seq`), so one follower serves both.
 */
import { fail } from '../errors.js';
import { nowUs, type MetaEngine, type MetaTx } from './engine.js';
import type { SpaceRows } from './space-rows.js';

/**
 * What a change invalidates: a name in a directory ('entry': `parent` + `name`, and the `node`
 * that had or has it), a node's attributes, content or readlink answer ('node'), a node whose
 * place changed ('tree': the node itself and every link whose readlink answer depends on where it
 * is — links bound to it or to a node below it, links below it; see `ChangeFeed.dependents`),
 * names of links moved at once ('moves': `name` is the JSON array of `ChangeMove`s; see there),
 * or everything of a space ('space').
 */
export type ChangeKind = 'entry' | 'node' | 'tree' | 'space' | 'moves';

/**
 * One name of a link moved, as a 'moves' change carries it (its `name` is the JSON array of them):
 * [link, fromParent, fromName, toParent, toName]. It stands for an 'entry' change of each of the
 * two names and a 'node' change of the link (a link's place is its own readlink answer only:
 * nothing is bound to a link, nothing is below one). A cascade of 2,000 links to the bin (L12) is
 * one row, not 6,000 (issue 15).
 */
export type ChangeMove = readonly [number, number, string, number, string];

export interface Change {
  space: string;
  kind: ChangeKind;
  node?: number | null;
  parent?: number | null;
  name?: string | null;
}

/**
 * `records` with each 'moves' record replaced by what it stands for, under its number: an 'entry'
 * record of each old and new name and a 'node' record of each link (what the follower invalidates
 * for it; for readers that want one record per name or node).
 */
export function expandMoves(records: readonly ChangeRecord[]): ChangeRecord[] {
  return records.flatMap((r) => {
    if (r.kind !== 'moves') return [r];
    return (JSON.parse(r.name ?? '[]') as ChangeMove[]).flatMap(([node, fromParent, fromName, toParent, toName]): ChangeRecord[] => [
      { ...r, kind: 'entry', node, parent: fromParent, name: fromName },
      { ...r, kind: 'entry', node, parent: toParent, name: toName },
      { ...r, kind: 'node', node, parent: null, name: null },
    ]);
  });
}

/** One numbered change, as the feed keeps it. */
export interface ChangeRecord {
  seq: number;
  /** µs since the epoch, when it was recorded */
  at: number;
  /** The process that recorded it (processOwner()). */
  origin: string;
  space: string;
  kind: ChangeKind;
  node: number | null;
  parent: number | null;
  name: string | null;
}

/** The feed's rows, as an engine keeps them (SQLite: src/store/sqlite/feed-rows.ts). */
export interface FeedRows {
  /** Inside a write transaction: append `changes` in order; returns the number of the last (the others precede it, one by one). */
  append(at: number, origin: string, changes: readonly Change[]): number;
  /** Changes numbered after `after`, in order, at most `limit`. */
  since(after: number, limit: number): ChangeRecord[];
  /**
   * The nodes a 'tree' change of `top` concerns, as the library is now: `top`, the links below it
   * (a directory's subtree) and the bound links to it or to any node below it; for several tops,
   * the union, in one query (a cascade of 2,000 links is 2,000 'tree' changes: one read, issue 15).
   */
  dependents(tops: readonly number[]): number[];
  /** Everything up to this number has been pruned. */
  horizon(): number;
  /** The newest number (the horizon when the feed is empty). */
  head(): number;
  /** Drop the changes numbered up to `seq`; the horizon moves there. */
  pruneTo(seq: number): void;
  /** A number that changes whenever another connection commits (SQLite: PRAGMA data_version). */
  externalVersion(): number;
  /** Whether other processes' (and hosts') commits reach a follower; false: this process's only. */
  readonly seesOthers: boolean;
  /** Call `wake` soon after another process may have committed (SQLite: the WAL was written); returns a stop function. */
  watchCommits?(wake: () => void): () => void;
  /**
   * `append`'s numbers are this process's own, not the feed's (PostgreSQL: the feed numbers a
   * commit's changes after the commit). A follower then applies its own commits as they come
   * (`onCommit`) without moving its cursor, and skips records of its own origin in the feed; the
   * writer never prunes by them.
   */
  readonly localNumbers?: boolean;
  /** After a transaction that appended committed (PostgreSQL: have its changes numbered and announced). */
  committed?(): void;
}

/** What a reader gets: the records after its number, or word that it fell behind the horizon. */
export interface FeedRead {
  records: ChangeRecord[];
  /** Changes after the reader's number were pruned: drop every cache, then go on from `head`. */
  behind: boolean;
  horizon: number;
  head: number;
}

/** Numbers kept before pruning (a follower further behind drops every cache). */
export const FEED_KEEP = 100_000;
/** A writer prunes when it hands out a multiple of this. */
export const PRUNE_EVERY = 1_000;

interface TxChanges {
  seen: Map<string, Seen>;
  changes: Change[];
  records: ChangeRecord[];
}

/**
 * What one transaction recorded in one space, kept apart by kind so that deduplicating costs a
 * numeric Set lookup (a node) or a lookup of a flat name string (an entry) — not the hashing of
 * a freshly concatenated key string per change, which was 15 % of a 2,000-link cascade (issue 15).
 */
interface Seen {
  node: Set<number | null>;
  tree: Set<number | null>;
  entry: Map<number | null, Set<string | null>>;
  space: boolean;
}

const seenIn = (mine: TxChanges, space: string): Seen => {
  let s = mine.seen.get(space);
  if (!s) {
    s = { node: new Set(), tree: new Set(), entry: new Map(), space: false };
    mine.seen.set(space, s);
  }
  return s;
};

/** Whether `c` was recorded already in this transaction; if not, it is now. */
const firstTime = (s: Seen, kind: ChangeKind, node: number | null, parent: number | null, name: string | null): boolean => {
  switch (kind) {
    case 'node':
      // a node whose place changed ('tree') is invalidated whole: a 'node' change of it adds nothing
      if (s.tree.has(node) || s.node.has(node)) return false;
      s.node.add(node);
      return true;
    case 'tree':
      if (s.tree.has(node)) return false;
      s.tree.add(node);
      return true;
    case 'entry': {
      let names = s.entry.get(parent);
      if (!names) s.entry.set(parent, (names = new Set()));
      if (names.has(name)) return false;
      names.add(name);
      return true;
    }
    case 'space':
      if (s.space) return false;
      s.space = true;
      return true;
    case 'moves':
      return true; // recordMoves marks what it stands for
  }
};

export class ChangeFeed {
  private readonly engine: MetaEngine;
  private readonly rows: FeedRows;
  private originOf: string | (() => string);
  private readonly keep: number;
  private readonly pruneEvery: number;

  /** What this feed's records carry as their `origin` (processOwner() and a random tag for a library). */
  get origin(): string {
    if (typeof this.originOf === 'function') this.originOf = this.originOf();
    return this.originOf;
  }
  private readonly pending = new WeakMap<MetaTx, TxChanges>();
  private readonly listeners = new Set<(records: readonly ChangeRecord[]) => void>();

  /** `origin`: made when first used when given as a function (a library's takes node:crypto, which a read-only command never loads). */
  constructor(engine: MetaEngine, rows: FeedRows, opts: { origin: string | (() => string); keep?: number; pruneEvery?: number }) {
    this.engine = engine;
    this.rows = rows;
    this.originOf = opts.origin;
    this.keep = opts.keep ?? FEED_KEEP;
    this.pruneEvery = opts.pruneEvery ?? PRUNE_EVERY;
  }

  /** What `tx` recorded so far (its rows are written just before its commit). */
  private pendingOf(tx: MetaTx): TxChanges {
    let mine = this.pending.get(tx);
    if (!mine) {
      const fresh: TxChanges = { seen: new Map(), changes: [], records: [] };
      mine = fresh;
      this.pending.set(tx, fresh);
      tx.beforeCommit?.(() => this.write(fresh));
      tx.afterCommit(() => this.committed(fresh.records));
    }
    return mine;
  }

  /**
   * Inside a write transaction: record `c`, once per transaction. The rows are written in one
   * statement just before the commit (`beforeCommit`), or at once by an engine without that.
   */
  record(c: Change): void {
    const tx = this.engine.current;
    if (!tx) throw fail('Internal', `a ${c.kind} change was made outside a transaction`);
    const mine = this.pendingOf(tx);
    const node = c.node ?? null;
    const parent = c.parent ?? null;
    const name = c.name ?? null;
    if (!firstTime(seenIn(mine, c.space), c.kind, node, parent, name)) return;
    mine.changes.push({ space: c.space, kind: c.kind, node, parent, name });
    if (!tx.beforeCommit) this.write(mine);
  }

  /**
   * Inside a write transaction: record many moved names of links as one 'moves' change (see
   * `ChangeMove`). Its links count as recorded: a later 'node' change of one of them in the same
   * transaction adds no row (the cascade's states). Its names are not marked (a Set per directory,
   * 2,000 of them for nothing in a cascade): a later 'entry' row for one of them would only
   * repeat an invalidation, which the follower drops.
   */
  recordMoves(space: string, moves: readonly ChangeMove[]): void {
    if (moves.length === 0) return;
    const tx = this.engine.current;
    if (!tx) throw fail('Internal', 'a moves change was made outside a transaction');
    const mine = this.pendingOf(tx);
    const seen = seenIn(mine, space);
    for (const m of moves) firstTime(seen, 'node', m[0], null, null);
    mine.changes.push({ space, kind: 'moves', node: null, parent: null, name: JSON.stringify(moves) });
    if (!tx.beforeCommit) this.write(mine);
  }

  /** Append what `mine` holds unwritten, number it, and prune now and then. */
  private write(mine: TxChanges): void {
    const todo = mine.changes.slice(mine.records.length);
    if (todo.length === 0) return;
    const at = nowUs();
    const last = this.rows.append(at, this.origin, todo);
    const first = last - todo.length + 1;
    todo.forEach((c, i) => mine.records.push({ seq: first + i, at, origin: this.origin, space: c.space, kind: c.kind, node: c.node ?? null, parent: c.parent ?? null, name: c.name ?? null }));
    // every PRUNE_EVERY numbers (a batch may step over the multiple itself); local numbers say
    // nothing of the feed's (PostgreSQL prunes after numbering, src/store/postgres/feed-rows.ts)
    if (this.rows.localNumbers) return;
    if (Math.floor(last / this.pruneEvery) > Math.floor((first - 1) / this.pruneEvery) && last > this.keep) this.rows.pruneTo(last - this.keep);
  }

  private committed(records: readonly ChangeRecord[]): void {
    for (const cb of this.listeners) {
      try {
        cb(records);
      } catch {
        // A listener's failure is its own (it logs); the commit stands and the others still hear.
      }
    }
    // This process first (its kernel caches), then the other hosts (numbering, NOTIFY).
    if (records.length > 0) this.rows.committed?.();
  }

  /** In this process: `cb` gets each committed transaction's records, right after its commit. */
  onCommit(cb: (records: readonly ChangeRecord[]) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** The changes numbered after `after` (at most `limit`), read as one snapshot. */
  read(after: number, limit = 1000): FeedRead {
    return this.engine.snapshot(() => {
      const horizon = this.rows.horizon();
      const head = this.rows.head();
      if (after < horizon) return { records: [], behind: true, horizon, head };
      return { records: after >= head ? [] : this.rows.since(after, limit), behind: false, horizon, head };
    });
  }

  /** See FeedRows.dependents (one snapshot). */
  dependents(top: number): number[] {
    return this.engine.snapshot(() => this.rows.dependents([top]));
  }

  /** The union of the dependents of every node of `tops`: one query, one snapshot (none for no tops). */
  dependentsOf(tops: readonly number[]): number[] {
    if (tops.length === 0) return [];
    return this.engine.snapshot(() => this.rows.dependents(tops));
  }

  /** The newest number: a follower that starts now starts here. */
  head(): number {
    return this.engine.snapshot(() => this.rows.head());
  }

  /** Whether a follower hears every process's (and host's) commits, or only this process's. */
  get seesOthers(): boolean {
    return this.rows.seesOthers;
  }

  /** See FeedRows.localNumbers. */
  get localNumbers(): boolean {
    return this.rows.localNumbers === true;
  }

  /** See FeedRows.externalVersion. */
  externalVersion(): number {
    return this.rows.externalVersion();
  }

  /** See FeedRows.watchCommits (a no-op stop when the engine has no such signal). */
  watchCommits(wake: () => void): () => void {
    return this.rows.watchCommits?.(wake) ?? (() => undefined);
  }

  /** Drop what is more than `keep` numbers old now (a writer does it as it goes; tests and maintenance call it). */
  prune(keep = this.keep): number {
    return this.engine.transaction(() => {
      const head = this.rows.head();
      if (head - keep > this.rows.horizon()) this.rows.pruneTo(head - keep);
      return this.rows.horizon();
    });
  }
}

/**
 * `rows` with every mutation recorded in `feed` (see the module comment). Reads pass through.
 * A node whose entry moves or goes is recorded as 'tree' — its place changed, and with it the
 * readlink answer of every link bound to it or below it, or in it — without a read here: the
 * follower asks `ChangeFeed.dependents` when it reads the record. A rebind (L10) is recorded as
 * 'tree' of the new target, which the rebound links are bound to by then.
 * Extended attributes are not recorded: the kernel keeps no copy of them, and every rule that
 * changes one changes the node's ctime too (recorded). A primitive added to SpaceRows that
 * changes entries or nodes must be recorded here too.
 */
export function recordingRows(rows: SpaceRows, space: string, feed: ChangeFeed): SpaceRows {
  const node = (id: number): void => feed.record({ space, kind: 'node', node: id });
  const tree = (id: number): void => feed.record({ space, kind: 'tree', node: id });
  const entry = (parent: number, name: string, id: number): void => feed.record({ space, kind: 'entry', parent, name, node: id });
  return {
    ...rows,
    insertEntry: (parent, name, id, isDir) => {
      rows.insertEntry(parent, name, id, isDir);
      entry(parent, name, id); // a second name (L17) also changes ctime: recorded by the rule
    },
    moveEntry: (parent, name, id) => {
      const old = rows.entryOf(id);
      rows.moveEntry(parent, name, id);
      if (old) entry(old.parent, old.name, id);
      entry(parent, name, id);
      tree(id);
    },
    moveName: (fromParent, fromName, toParent, toName) => {
      const id = rows.moveName(fromParent, fromName, toParent, toName);
      if (id !== undefined) {
        entry(fromParent, fromName, id);
        entry(toParent, toName, id);
        tree(id); // its oldest name may have changed (L19): its links' answers
      }
      return id;
    },
    moveLinkNames: (moves) => {
      const n = rows.moveLinkNames(moves);
      // one 'moves' row for all (each: both names, and the link as a 'node' — a link's place is
      // its own readlink answer only — so the follower reads no dependents for it; issue 15). If
      // not all moved, the caller fails the transaction and nothing is recorded.
      feed.recordMoves(space, moves);
      return n;
    },
    exchangeNames: (aParent, aName, bParent, bName) => {
      const ids = rows.exchangeNames(aParent, aName, bParent, bName);
      if (ids) {
        // each name now names the other node (the parked name in between is never seen)
        entry(aParent, aName, ids[1]);
        entry(bParent, bName, ids[0]);
        tree(ids[0]);
        tree(ids[1]);
      }
      return ids;
    },
    deleteName: (parent, name) => {
      const id = rows.deleteName(parent, name);
      if (id !== undefined) {
        entry(parent, name, id);
        tree(id); // nlink, and the oldest name its links show (L19)
      }
      return id;
    },
    deleteEntry: (id) => {
      const gone = rows.deleteEntry(id);
      for (const old of gone) entry(old.parent, old.name, id);
      if (gone.length > 0) tree(id);
      return gone;
    },
    deleteNode: (id) => {
      rows.deleteNode(id);
      node(id);
    },
    touch: (id, t) => {
      rows.touch(id, t);
      node(id);
    },
    touchCtime: (id, t) => {
      rows.touchCtime(id, t);
      node(id);
    },
    touchAtime: (id, t) => {
      rows.touchAtime(id, t);
      node(id);
    },
    setState: (id, state) => {
      rows.setState(id, state);
      node(id);
    },
    setStates: (ids, state) => {
      rows.setStates(ids, state);
      for (const id of ids) node(id);
    },
    setClass: (id, cls) => {
      rows.setClass(id, cls);
      node(id);
    },
    setContent: (id, blob, mtime, ctime, mtimeNs) => {
      rows.setContent(id, blob, mtime, ctime, mtimeNs);
      node(id);
    },
    setattr: (a) => {
      rows.setattr(a);
      node(a.id);
    },
    rebind: (from, to) => {
      rows.rebind(from, to);
      tree(to);
    },
  };
}
