/**
 * An open directory handle of the ll mount (./inode-adapter.ts): its readdir / readdirplus
 * replies, each from one store page (Space.readdirPlus: name order, every entry's info from one
 * range read, issue 15), cut to what fits the reply's `size` bytes so no entry is fetched,
 * counted as a lookup reference and then dropped.
 *
 * Offsets: `.` is 1, `..` is 2, and the k-th name this handle sent is k + 3; a later call resumes
 * after that name. So the cursor is a name, not a position: names created or removed meanwhile
 * (by anyone) shift nothing, and every name present throughout the listing comes exactly once
 * (POSIX leaves the others unspecified). A handle keeps the names it sent until releasedir (a
 * rewind re-reads and hands out new offsets; an offset never gets two meanings). That is a string
 * per entry listed per open handle, freed at releasedir.
 *
 * Read ahead (issue 15, a walk on two CPUs): after a names-only reply the adapter may have the
 * handle read its next page (`prepare`) while the kernel and the reader consume this one, so the
 * next request is answered without waiting for the store. A prepared page is the store's page
 * after the last name sent, read after taking the library's `listingVersion`; it is used only by
 * the request that resumes exactly there, for a names-only reply, and only while the version is
 * still that value (any commit by anyone moves it): otherwise it is dropped and the page read
 * again. One page per handle at most; it is cut to the bytes the last request was cut to, and
 * the adapter may attach the reply made from it (`Prepared.reply`: ./inode-adapter.ts counts
 * its references only when it is sent).
 */
import { fail } from '../errors.js';
import type { DirStats, NodeInfo } from '../store/types.js';
import type { FuseSpace } from './port.js';

/** Bytes before the name in a reply's entry (fuse_add_direntry[_plus]): struct fuse_dirent; fuse_entry_out + fuse_dirent. */
const FUSE_DIRENT_HEADER = 24;
const FUSE_DIRENTPLUS_HEADER = 152;

export interface DirPageEntry {
  name: string;
  info: NodeInfo;
  /** the offset that resumes after this entry */
  next: number;
}

export interface DirHooks {
  /** the directory itself (it may be an open file's last-seen info: the adapter knows) */
  self(): NodeInfo;
  /** its `..` */
  up(self: NodeInfo): NodeInfo;
  /** a listing started (relatime) */
  listed(self: NodeInfo): void;
}

/** readdirplus's page, packed (DirCursor.pageStats). */
export interface DirStatsPage {
  /** `.` and `..` when the call's offset asks for them, first */
  dots: DirPageEntry[];
  /** the store's page; its first `count` entries fit the reply */
  stats: DirStats;
  count: number;
  /** the offset that resumes after `stats`' first entry; the k-th's is firstNext + k */
  firstNext: number;
  /** the read-ahead it came from (DirCursor.prepare), if it did */
  prepared?: Prepared;
}

/** A page read ahead (DirCursor.prepare). */
export interface Prepared {
  /** the offset of the request it answers (resumes after the last name sent when it was read) */
  offset: number;
  /** the library's listingVersion taken before it was read */
  version: string;
  /** the page as pageStats would give it to a request of `room` bytes */
  page: DirStatsPage;
  room: number;
  /** the reply, made ahead by the adapter (its references still to be counted when sent) */
  reply?: unknown;
}

export class DirCursor {
  /** The names sent, in order: offset k + 3 resumes after sent[k]. */
  readonly #sent: string[] = [];
  #prepared: Prepared | undefined;
  /** Pages served from a prepared read, and prepared reads dropped (stale or not asked for). */
  readAhead = { used: 0, dropped: 0 };

  page(space: Pick<FuseSpace, 'readdirPlus'>, dirId: number, offset: number, size: number, plus: boolean, hooks: DirHooks): DirPageEntry[] {
    const start = this.#start(offset, size, plus, hooks);
    if (!start) return [];
    const { out, after, limit, bytes } = start;
    let room = start.room;
    for (const e of space.readdirPlus(dirId, after, limit)) {
      const need = bytes(e.name);
      if (need > room) break;
      room -= need;
      this.#sent.push(e.name);
      out.push({ name: e.name, info: e.info, next: this.#sent.length + 2 });
    }
    return out;
  }

  /**
   * The page `page()` gives (same entries, offsets and cut), with the store's entries packed
   * (Space.readdirStats) instead of a NodeInfo each: a walk's cost per entry.
   */
  pageStats(
    space: Pick<FuseSpace, 'readdirStats' | 'readdirNames' | 'listingVersion'>,
    dirId: number,
    offset: number,
    size: number,
    plus: boolean,
    hooks: DirHooks,
    names = false,
    spare?: ArrayBuffer,
  ): DirStatsPage {
    const ready = this.#prepared;
    this.#prepared = undefined;
    const start = this.#start(offset, size, plus, hooks);
    const firstNext = this.#sent.length + 3;
    if (!start) {
      if (ready) this.readAhead.dropped++;
      return { dots: [], stats: { names: [], nums: new Float64Array(0), layouts: new Map() }, count: 0, firstNext };
    }
    const { out, after, limit, bytes } = start;
    let room = start.room;
    let stats: DirStats;
    if (ready && names && ready.offset === offset && ready.version === space.listingVersion()) {
      this.readAhead.used++;
      if (ready.room === room) {
        // cut as it was when read (the same bytes): send its names
        for (let k = 0; k < ready.page.count; k++) this.#sent.push(ready.page.stats.names[k]!);
        return { ...ready.page, prepared: ready };
      }
      stats = ready.page.stats;
    } else {
      if (ready) this.readAhead.dropped++;
      // a names-only reply (./listing-policy.ts) reads names, ids, kinds and modes only
      // (`spare`: memory of an earlier page the caller is done with, for this one's numbers)
      stats = names ? space.readdirNames(dirId, after, limit, spare) : space.readdirStats(dirId, after, limit);
    }
    let count = 0;
    for (const name of stats.names) {
      const need = bytes(name);
      if (need > room) break;
      room -= need;
      this.#sent.push(name);
      count++;
    }
    return { dots: out, stats, count, firstNext };
  }

  /**
   * Read the names-only page that follows the last name sent (what a request resuming there, of
   * `size` bytes, would read), to answer that request from (see the opening comment). Nothing
   * when the engine has no listingVersion, or nothing was sent yet.
   */
  prepare(space: Pick<FuseSpace, 'readdirNames' | 'listingVersion'>, dirId: number, size: number): Prepared | undefined {
    this.#prepared = undefined;
    const n = this.#sent.length;
    if (n === 0) return undefined;
    const version = space.listingVersion();
    if (version === undefined) return undefined;
    const limit = Math.max(1, Math.floor(size / ((FUSE_DIRENTPLUS_HEADER + 8) & ~7)));
    const stats = space.readdirNames(dirId, this.#sent[n - 1], limit);
    // the cut a request of `size` bytes makes (#start and pageStats: no dots past offset 2)
    let room = size;
    let count = 0;
    for (const name of stats.names) {
      const need = (FUSE_DIRENTPLUS_HEADER + Buffer.byteLength(name) + 7) & ~7;
      if (need > room) break;
      room -= need;
      count++;
    }
    this.#prepared = { offset: n + 2, version, room: size, page: { dots: [], stats, count, firstNext: n + 3 } };
    return this.#prepared;
  }

  /**
   * A reply's start: `.` and `..` when the offset asks for them, the name to resume after, the
   * room left and a page size; undefined when the offset is none this handle gave.
   */
  #start(
    offset: number,
    size: number,
    plus: boolean,
    hooks: DirHooks,
  ): { out: DirPageEntry[]; after: string | undefined; limit: number; room: number; bytes: (name: string) => number } | undefined {
    const out: DirPageEntry[] = [];
    const header = plus ? FUSE_DIRENTPLUS_HEADER : FUSE_DIRENT_HEADER;
    const bytes = (name: string): number => (header + Buffer.byteLength(name) + 7) & ~7;
    let room = size;
    if (offset < 2) {
      const self = hooks.self();
      if (self.kind !== 'dir') throw fail('NotADirectory', 'not a directory', self.path);
      if (offset === 0) {
        hooks.listed(self);
        out.push({ name: '.', info: self, next: 1 });
        room -= bytes('.');
      }
      out.push({ name: '..', info: hooks.up(self), next: 2 });
      room -= bytes('..');
    }
    let after: string | undefined;
    if (offset >= 3) {
      after = this.#sent[offset - 3];
      if (after === undefined) return undefined; // an offset this handle never gave: nothing follows it
    }
    // as many entries as could fit if every name were one byte: at most a few too many
    const limit = Math.max(1, Math.floor(room / ((header + 8) & ~7)));
    return { out, after, limit, room, bytes };
  }
}
