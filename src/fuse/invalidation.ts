/**
 * H4 on the libfuse 3 binding: the library's changes, as the follower turns them into
 * invalidations (src/vfs/changes.ts, store node ids), sent to a mounted session (inode numbers).
 * Translation only: node id → ino (`inoOf`: the adapter's mapping, the space root answering as
 * FUSE's 1), and "drop everything" as one invalidation per entry and inode the kernel holds
 * (`known`: the adapter's lookup table). The session writes each from its helper thread, never
 * from inside a request (native-notes/binding.md, "Kernel cache invalidation").
 */
import { followChanges, type ChangeFollower, type FollowerOptions, type InvalidationSink } from '../vfs/changes.js';
import type { FeedLibrary } from '../vfs/port.js';

/** What a mounted session offers (LowLevelSession). */
export interface InvalidatingSession {
  invalidateEntry(parent: number, name: string): Promise<boolean>;
  invalidateInode(ino: number, offset?: number, length?: number): Promise<boolean>;
  /** Entries, then inodes, in one call (LowLevelSession.invalidateBatch). */
  invalidateBatch?(entries: ReadonlyArray<readonly [number, string]>, inodes: readonly number[]): Promise<number>;
}

export interface SessionSinkOptions {
  /** The adapter's node id → inode number. */
  inoOf: (node: number) => number;
  /** What the kernel may hold now (inode numbers): every entry and inode it was given and has not forgotten. */
  known?: () => { entries: Iterable<readonly [number, string]>; inodes: Iterable<number> };
  /** A failed invalidation (not "nothing cached", which resolves false). */
  onError?: (e: unknown) => void;
}

export function sessionSink(session: InvalidatingSession, opts: SessionSinkOptions): InvalidationSink {
  const onError = opts.onError ?? (() => undefined);
  const entry = (parent: number, name: string): void => void session.invalidateEntry(parent, name).catch(onError);
  const inode = (ino: number): void => void session.invalidateInode(ino).catch(onError);
  return {
    invalidateEntry: (parent, name) => entry(opts.inoOf(parent), name),
    // attributes and cached data: a link's cached target is its data (CACHE_SYMLINKS)
    invalidateInode: (node) => inode(opts.inoOf(node)),
    ...(session.invalidateBatch
      ? {
          invalidateBatch: (entries: Array<readonly [number, string]>, nodes: number[]) =>
            void session.invalidateBatch!(entries.map(([p, n]) => [opts.inoOf(p), n] as const), nodes.map(opts.inoOf)).catch(onError),
        }
      : {}),
    invalidateAll: () => {
      const k = opts.known?.();
      if (!k) return;
      for (const [parent, name] of k.entries) entry(parent, name);
      for (const ino of k.inodes) inode(ino);
    },
  };
}

/**
 * An adapter that maps node ids to inodes itself (src/fuse/inode-adapter.ts: `invalidateEntry`,
 * `invalidateNode`, and the nodes the kernel holds references on).
 */
export interface NodeCaches {
  invalidateEntry(dirId: number, name: string): Promise<boolean>;
  invalidateNode(id: number): Promise<boolean>;
  /** Entries, then nodes, in one call (InodeAdapter.invalidateBatch). */
  invalidateBatch?(entries: ReadonlyArray<readonly [number, string]>, nodes: readonly number[]): Promise<number>;
  /** Node ids the kernel holds an inode for (its lookup table), for "drop everything". */
  knownNodes?(): Iterable<number>;
}

/**
 * The follower's invalidations into such an adapter. "Drop everything" drops every inode the
 * kernel holds (attributes, data, link targets); a name it cached under a path that changed
 * meanwhile cannot be named any more and lives out its entry timeout — only a mount that missed
 * FEED_KEEP changes (a process stalled that long) ever needs it.
 */
export function nodeCachesSink(caches: NodeCaches, onError: (e: unknown) => void = () => undefined): InvalidationSink {
  return {
    invalidateEntry: (dir, name) => void caches.invalidateEntry(dir, name).catch(onError),
    invalidateInode: (id) => void caches.invalidateNode(id).catch(onError),
    ...(caches.invalidateBatch ? { invalidateBatch: (entries: Array<readonly [number, string]>, nodes: number[]) => void caches.invalidateBatch!(entries, nodes).catch(onError) } : {}),
    invalidateAll: () => {
      for (const id of caches.knownNodes?.() ?? []) void caches.invalidateNode(id).catch(onError);
    },
  };
}

/**
 * Follow `lib`'s changes to `space` into `session`: what an ll mount starts once it is mounted
 * (and stops at unmount). The adapter wraps each request's store call in `follower.own(…)`.
 */
export function followIntoSession(lib: FeedLibrary, space: string, session: InvalidatingSession, opts: SessionSinkOptions & Omit<FollowerOptions, 'space'>): ChangeFollower {
  return followChanges(lib, space, sessionSink(session, opts), opts);
}
