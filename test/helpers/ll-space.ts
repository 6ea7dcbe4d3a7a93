/**
 * A thin smhfs stand-in on the low-level binding, for the invalidation tests
 * (test/binding-ll-inval.test.ts) until the inode adapter (issue 11, src/fuse) serves smhfs on it:
 * a space's tree answered by node id — lookup, getattr, readlink, readdir(plus), rename — with the
 * space root as ino 1 (swapped with node 1), errors through errnoOf. Its rename runs inside the
 * change follower's `own`, as the adapter's will, so what the reply tells the kernel is not
 * invalidated again and the side effects (bound links) are. It counts requests per op, so a test
 * can tell an answer the kernel cached from one it asked for.
 */
import { constants } from 'node:os';
import { errnoOf } from '../../src/fuse/errno.js';
import type { Attr, DirEntry, DirEntryPlus, Entry, LowLevelOps, Timespec } from '../../src/fuse/ll/binding.js';
import type { Space } from '../../src/store/space.js';
import type { NodeInfo } from '../../src/store/types.js';
import type { ChangeFollower } from '../../src/vfs/changes.js';

const ts = (us: number): Timespec => ({ sec: Math.floor(us / 1e6), nsec: (us % 1e6) * 1000 });

export class SpaceOnLl implements LowLevelOps {
  readonly calls = new Map<string, number>();
  /** Set once mounted (the follower needs the session). */
  follower: ChangeFollower | undefined;
  private readonly space: Space;

  constructor(space: Space) {
    this.space = space;
  }

  /** node id ↔ ino: the root is 1 and node 1 takes the root's number (an involution). */
  readonly inoOf = (id: number): number => (id === this.space.root ? 1 : id === 1 ? this.space.root : id);
  private readonly nodeOf = this.inoOf;

  private count(op: string): void {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
  }

  private attr(info: NodeInfo): Attr {
    return {
      ino: this.inoOf(info.id),
      mode: info.mode,
      nlink: info.nlink,
      uid: info.uid,
      gid: info.gid,
      size: info.size,
      atime: ts(info.atimeUs),
      mtime: ts(info.mtimeUs),
      ctime: ts(info.ctimeUs),
    };
  }

  private answer<T>(op: string, fn: () => T): T | number {
    this.count(op);
    try {
      return fn();
    } catch (e) {
      return -errnoOf(e);
    }
  }

  lookup(parent: number, name: string): Entry | number {
    return this.answer('lookup', () => ({ attr: this.attr(this.space.lookup(this.nodeOf(parent), name)) }));
  }

  forget(): void {}

  getattr(ino: number): Attr | number {
    return this.answer('getattr', () => this.attr(this.space.statNode(this.nodeOf(ino))));
  }

  readlink(ino: number): string | number {
    return this.answer('readlink', () => this.space.readlink(this.nodeOf(ino)));
  }

  /** Per open directory: the name each offset it handed out continues after (readdirplus pages by name). */
  private readonly cursors = new Map<number, Map<number, string>>();
  private nextFh = 1;

  opendir(): number {
    const fh = this.nextFh++;
    this.cursors.set(fh, new Map());
    return fh;
  }

  /** A page of the store's readdirPlus: names and attributes in one answer (no lookup per entry). */
  readdirplus(ino: number, fh: number, offset: number, size: number): DirEntryPlus[] | number {
    return this.answer('readdirplus', () => {
      const cursor = this.cursors.get(fh)!;
      const after = offset === 0 ? undefined : cursor.get(offset);
      if (offset !== 0 && after === undefined) return [];
      // about what fits in `size` bytes; the binding gives back (forget) what does not
      const page = this.space.readdirPlus(this.nodeOf(ino), after, Math.max(1, Math.floor(size / 160)));
      return page.map((e, i) => {
        cursor.set(offset + i + 1, e.name);
        return { name: e.name, entry: { attr: this.attr(e.info) }, nextOffset: offset + i + 1 };
      });
    });
  }

  readdir(ino: number, _fh: number, offset: number): DirEntry[] | number {
    return this.answer('readdir', () =>
      this.space.readdir(this.nodeOf(ino)).slice(offset).map((e) => ({ name: e.name, ino: this.inoOf(e.info.id), mode: e.info.mode })),
    );
  }

  releasedir(_ino: number, fh: number): void {
    this.cursors.delete(fh);
  }

  rename(parent: number, name: string, newParent: number, newName: string, flags: number): void | number {
    if (flags !== 0) return -constants.errno.EINVAL;
    const [p, np] = [this.nodeOf(parent), this.nodeOf(newParent)];
    return this.answer('rename', () => {
      const moved = this.space.lookup(p, name).id;
      const run = () => void this.space.renameAt(p, name, np, newName);
      // the kernel updates both names and drops the attributes of both directories and the node itself
      if (this.follower) this.follower.own({ entries: [[p, name], [np, newName]], nodes: [p, np, moved] }, run);
      else run();
    });
  }
}
