/**
 * Following the library's change feed (src/store/changes.ts) so that a mount's kernel caches stay
 * exact (H4, L4 with the symlink cache on): every committed change becomes the invalidations it
 * calls for — an entry (a name in a directory, negative entries included) or an inode (its
 * attributes, cached pages and readlink answer) — handed to a sink in commit order, whoever made
 * the change.
 *
 * Two ways in, one cursor (`lastSeq`):
 * - this process's commits (the mount's own requests, its background tasks) arrive right after
 *   each commit through `changes.onCommit`: a connection never sees its own commits in
 *   `PRAGMA data_version`, and the side effects of the mount's own request (a rename that moved a
 *   target: every link bound to it has a new answer) must reach the kernel before the next one.
 * - other processes' commits (the CLI, `serve`, another mount): a timer asks the engine's cheap
 *   change counter (`externalVersion`, SQLite's data_version: shared memory, no I/O) every
 *   `pollMs`, and the library folder's inotify wakes it at once when the WAL is written; when the
 *   counter moved, everything after the cursor is read and applied. On PostgreSQL the counter is
 *   moved by the feed's NOTIFY (and by each reconnect of the listening connection), which wakes
 *   the follower too; the cursor is the feed's number, so a follower that was cut off reads on
 *   from where it was.
 *
 * Where the feed numbers a commit only after it (PostgreSQL, `changes.localNumbers`), this
 * process's records arrive first with local numbers: they are applied at once and leave the cursor
 * alone, and the same records, read later from the feed with their real numbers, are recognised
 * by their origin and not applied twice.
 *
 * A 'moves' change (names of links moved at once: a cascade to the bin) carries its invalidations
 * in its row: both names of each link and the link itself.
 *
 * A 'tree' change (a node whose place changed) is expanded here, as the library is when it is
 * read, into the node and every link whose readlink answer depends on where it is
 * (`changes.dependentsOf`: every 'tree' change of a batch in one read, so a cascade of 2,000
 * links costs one query, not 2,000). A follower that fell behind the feed's horizon, or a 'space' change,
 * gets `{ all: true }`: drop everything.
 *
 * `own(direct, fn)`: what a mount's request changes directly the kernel learns from the reply
 * (the entry it created, renamed or removed; the attributes it returned). Those records of the
 * commits made inside `fn` are not sent back as invalidations (which would only cost lookups);
 * their side effects are. Without `own`, everything is invalidated: correct, only slower.
 *
 * `batched`: one emit per applied set of records (the sink's `invalidateBatch`): an ll mount
 * then hands a cascade's 4,000 invalidations to its session in one call, not 4,000 (issue 15).
 *
 * Node ids are the store's; the sink maps them to inode numbers (the space root to FUSE's 1).
 */
import type { ChangeMove, ChangeRecord, FeedLibrary } from './port.js';

export type Invalidation =
  | { entry: { parent: number; name: string } }
  | { inode: number }
  | { all: true }
  /** Several at once (FollowerOptions.batched): the entries, then the inodes, as one call. */
  | { batch: { entries: Array<readonly [number, string]>; inodes: number[] } };

/** Where invalidations go: a mount's kernel caches (see `invalidationSink` for the ll session). */
export interface InvalidationSink {
  invalidateEntry(parent: number, name: string): unknown;
  invalidateInode(node: number): unknown;
  /**
   * Optional: entries then inodes as one call (an ll session hands them to its notifier thread in
   * one go). With it, `followChanges` emits one batch per read of changes instead of one call per
   * invalidation.
   */
  invalidateBatch?(entries: Array<readonly [number, string]>, inodes: number[]): unknown;
  /** Every cached entry and inode may be stale (the follower fell behind the feed's horizon). */
  invalidateAll(): unknown;
}

/** What a request changes directly, which the kernel learns from its reply. */
export interface DirectEffects {
  /** (directory, name) pairs the reply answers for. */
  entries?: ReadonlyArray<readonly [number, string]>;
  /** Nodes whose attributes the reply carries or the kernel drops itself (the directories of a create, the node of a setattr). */
  nodes?: readonly number[];
}

export interface FollowerOptions {
  /** The space the mount serves: changes of other spaces are not its. */
  space: string;
  /** How often the change counter is read (ms); inotify usually wakes the follower sooner. */
  pollMs?: number;
  /** Records per read of the feed. */
  batch?: number;
  /** Listen for WAL writes (inotify) to catch up at once. Default true. */
  watchCommits?: boolean;
  /** A failed read of the feed (the next poll tries again). */
  onError?: (e: unknown) => void;
  /**
   * Emit the invalidations of each applied set of records as one `{ batch }` (in the order they
   * would go one by one: entries, then inodes) instead of one emit each. `all` stays its own.
   */
  batched?: boolean;
}

interface DirectSet {
  entries: Set<string>;
  nodes: Set<number>;
}

const entryKey = (parent: number, name: string): string => `${parent}\0${name}`;

export class ChangeFollower {
  private readonly lib: FeedLibrary;
  private readonly emit: (inv: Invalidation) => void;
  private readonly space: string;
  private readonly pollMs: number;
  private readonly batch: number;
  private readonly watch: boolean;
  private readonly onError: (e: unknown) => void;
  private readonly batched: boolean;
  private last = 0;
  private version = 0;
  private direct: DirectSet | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stops: Array<() => void> = [];
  private woken = false;
  private started = false;

  constructor(lib: FeedLibrary, emit: (inv: Invalidation) => void, opts: FollowerOptions) {
    this.lib = lib;
    this.emit = emit;
    this.space = opts.space;
    this.pollMs = opts.pollMs ?? 50;
    this.batch = opts.batch ?? 1000;
    this.watch = opts.watchCommits ?? true;
    this.onError = opts.onError ?? (() => undefined);
    this.batched = opts.batched ?? false;
  }

  /** The number of the last change applied. */
  get lastSeq(): number {
    return this.last;
  }

  /** Start from the feed's head now (whatever is cached was answered from the library as it is). */
  start(): this {
    if (this.started) return this;
    this.started = true;
    this.version = this.lib.changes.externalVersion();
    this.last = this.lib.changes.head();
    this.stops.push(this.lib.changes.onCommit((records) => this.committedHere(records)));
    if (this.watch) this.stops.push(this.lib.changes.watchCommits(() => this.wake()));
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const stop of this.stops.splice(0)) stop();
  }

  /**
   * Run `fn` (a request's store call); of the changes committed inside it, those in `direct` are
   * not invalidated (the kernel learns them from the reply). Nested calls add to the outer set.
   */
  own<T>(direct: DirectEffects, fn: () => T): T {
    const outer = this.direct;
    const set: DirectSet = { entries: new Set(outer?.entries), nodes: new Set(outer?.nodes) };
    for (const [p, n] of direct.entries ?? []) set.entries.add(entryKey(p, n));
    for (const n of direct.nodes ?? []) set.nodes.add(n);
    this.direct = set;
    try {
      return fn();
    } finally {
      this.direct = outer;
    }
  }

  /** Another process may have committed: catch up once the current callback is done. */
  private wake(): void {
    if (this.woken) return;
    this.woken = true;
    setImmediate(() => {
      this.woken = false;
      this.poll();
    });
  }

  /** Read the change counter; when another process committed, apply what it recorded. */
  poll(): void {
    if (!this.started) return;
    try {
      const v = this.lib.changes.externalVersion();
      if (v === this.version) return;
      this.version = v;
      this.catchUp();
    } catch (e) {
      this.onError(e);
    }
  }

  /** Apply everything after `lastSeq` (up to and including `upTo`, when given). */
  catchUp(upTo = Infinity): void {
    for (;;) {
      const r = this.lib.changes.read(this.last, this.batch);
      if (r.behind) {
        this.last = r.head;
        this.emit({ all: true });
        return;
      }
      const records = r.records.filter((c) => c.seq <= upTo);
      if (records.length === 0) return;
      this.apply(records, undefined, Infinity, this.lib.changes.localNumbers ? this.lib.changes.origin : undefined);
      if (records.length < r.records.length || r.records.length < this.batch) return;
    }
  }

  /** This process committed `records` (numbered, in order). */
  private committedHere(records: readonly ChangeRecord[]): void {
    if (!this.started || records.length === 0) return;
    if (this.lib.changes.localNumbers) {
      // Local numbers: not the feed's, so not the cursor's (see the module comment).
      try {
        this.apply(records, this.direct, -Infinity, undefined, false);
      } catch (e) {
        this.onError(e);
      }
      return;
    }
    const first = records[0]!.seq;
    const last = records[records.length - 1]!.seq;
    if (last <= this.last) return;
    try {
      // Others' commits numbered before these are read first, so order is kept.
      if (first > this.last + 1) this.catchUp(first - 1);
      this.apply(records.filter((c) => c.seq > this.last), this.direct, first);
    } catch (e) {
      this.onError(e);
    }
  }

  /**
   * Emit the invalidations `records` call for; those from `ownFrom` on are filtered by `direct`,
   * those of origin `skipOrigin` were applied when committed here. `advance`: the numbers are the
   * feed's, the cursor moves over them.
   */
  private apply(records: readonly ChangeRecord[], direct: DirectSet | undefined, ownFrom = Infinity, skipOrigin?: string, advance = true): void {
    const entries = new Set<string>();
    const inodes = new Set<number>();
    const batch = this.batched ? { entries: [] as Array<readonly [number, string]>, inodes: [] as number[] } : undefined;
    // 'tree' changes are expanded together, in one read (of ours and of others' commits apart:
    // only ours are filtered by `direct`)
    const tops = { mine: new Set<number>(), others: new Set<number>() };
    let all = false;
    const entry = (parent: number, name: string, mine: boolean): void => {
      const key = entryKey(parent, name);
      if (!(mine && direct!.entries.has(key)) && !entries.has(key)) {
        entries.add(key);
        if (batch) batch.entries.push([parent, name]);
        else this.emit({ entry: { parent, name } });
      }
    };
    for (const c of records) {
      if (advance) this.last = c.seq;
      if (c.space !== this.space || c.origin === skipOrigin) continue;
      const mine = direct !== undefined && c.seq >= ownFrom;
      switch (c.kind) {
        case 'entry':
          entry(c.parent!, c.name!, mine);
          break;
        case 'node':
          if (!(mine && direct.nodes.has(c.node!))) inodes.add(c.node!);
          break;
        case 'moves':
          // both names of each link moved, and the link (no dependents: nothing is bound to a link)
          for (const [id, fromParent, fromName, toParent, toName] of JSON.parse(c.name!) as ChangeMove[]) {
            entry(fromParent, fromName, mine);
            entry(toParent, toName, mine);
            if (!(mine && direct.nodes.has(id))) inodes.add(id);
          }
          break;
        case 'tree':
          (mine ? tops.mine : tops.others).add(c.node!);
          break;
        case 'space':
          all = true;
          break;
      }
    }
    for (const id of this.lib.changes.dependentsOf([...tops.mine])) if (!direct?.nodes.has(id)) inodes.add(id);
    for (const id of this.lib.changes.dependentsOf([...tops.others])) inodes.add(id);
    if (batch) {
      batch.inodes = [...inodes];
      if (batch.entries.length + batch.inodes.length > 0) this.emit({ batch });
    } else for (const id of inodes) this.emit({ inode: id });
    if (all) this.emit({ all: true });
  }
}

/** Hand each invalidation to `sink`, reporting a failed one (a rejected promise) to `onError`. */
export function toSink(sink: InvalidationSink, onError: (e: unknown) => void = () => undefined): (inv: Invalidation) => void {
  const settle = (r: unknown): void => {
    if (r instanceof Promise) r.catch(onError);
  };
  return (inv) => {
    try {
      if ('entry' in inv) settle(sink.invalidateEntry(inv.entry.parent, inv.entry.name));
      else if ('inode' in inv) settle(sink.invalidateInode(inv.inode));
      else if ('batch' in inv) {
        if (sink.invalidateBatch) settle(sink.invalidateBatch(inv.batch.entries, inv.batch.inodes));
        else {
          for (const [parent, name] of inv.batch.entries) settle(sink.invalidateEntry(parent, name));
          for (const id of inv.batch.inodes) settle(sink.invalidateInode(id));
        }
      } else settle(sink.invalidateAll());
    } catch (e) {
      onError(e);
    }
  };
}

/**
 * Keep a mount's kernel caches exact: follow `lib`'s changes to `space` into `sink` (an ll
 * session's invalidateEntry/invalidateInode, node ids mapped to inode numbers). Returns the
 * started follower (its `own` for the mount's requests, `stop` at unmount).
 */
export function followChanges(lib: FeedLibrary, space: string, sink: InvalidationSink, opts: Omit<FollowerOptions, 'space'> = {}): ChangeFollower {
  return new ChangeFollower(lib, toSink(sink, opts.onError), { batched: sink.invalidateBatch !== undefined, ...opts, space }).start();
}
