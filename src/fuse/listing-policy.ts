/**
 * Which readdirplus entries carry attributes, per calling process (issue 15, "a listing's cost
 * per entry"). A full readdirplus entry makes the kernel build an inode and a dentry and hold a
 * lookup reference (~4.4 µs of the reader's CPU, plus the server's packing and the FORGET later);
 * an entry with nodeid 0 is only a name and a d_type (fs/fuse/readdir.c fuse_direntplus_link:
 * "zero nodeid … did not want to return attributes"): no inode, no reference, no FORGET. A walk
 * that reads d_type only (find, `ls` without -l, globbing, os.walk) wants names; `ls -l`, du,
 * rsync want every entry's attributes and would otherwise look each name up. The server cannot
 * know which from one request, so it asks by evidence, per process:
 *
 * - A process not yet known gets a short first reply (`firstBytes`) with full entries, except
 *   its last `probes` non-directory names (not dot names: `ls` skips those), sent as names only.
 * - If it looks up a probe (the kernel has no dentry for it, so any stat, open or unlink of the
 *   name is a LOOKUP from that process), it stats what it lists: full entries, probes in each
 *   reply (one). When it asks for its next reply without having looked up one of its probes, it walks
 *   without stat-ing: non-directory entries go as names only. Directories always carry their
 *   attributes (a walk descends into them: a LOOKUP each would cost more than the entry).
 * - A names-only process that looks up a names-only entry (of one of the last directories it
 *   listed that way) goes back to full entries, and is marked `late`: it reads a whole directory
 *   before acting on it (tar, cp -r, rm -r, listdir-then-stat), so from then on its probes are
 *   judged only when it starts another directory, never within one listing. Such a process pays
 *   one LOOKUP per entry of the first big directory it reads, once.
 *
 * The policy only chooses what a reply carries: a names-only entry is answered by lookup like
 * any name the kernel has not seen, so listings and attributes are the same either way.
 * Processes: the FUSE request's pid is the calling thread's; `groupOf` maps it to its thread
 * group (/proc/PID/status Tgid) so a program that lists on one thread and stats on others (a
 * thread pool) is one process here. Both tables are LRU-bounded (`maxProcesses`); a reused pid
 * inherits a stale mode, which costs at most one reply's worth of lookups or attributes. pid 0
 * (the kernel's own requests) always gets full entries.
 */
import { readFileSync } from 'node:fs';

export interface ReplyPlan {
  /** the reply holds at most this many bytes (a process not yet known: decide soon) */
  maxBytes: number;
  /** every non-directory entry goes as a name only */
  namesOnly: boolean;
  /** the last `probes` eligible non-directory entries go as names only, as probes */
  probes: number;
}

export type ListingMode = 'new' | 'full' | 'names';

export interface ListingPolicyOptions {
  /** thread id → thread group id (default: /proc/PID/status; the pid itself when unreadable) */
  groupOf?: (pid: number) => number;
  /** processes (and threads) remembered, least recently seen dropped first (default 256) */
  maxProcesses?: number;
  /** a new process's first reply, in bytes (default 32 KiB: ~200 entries) */
  firstBytes?: number;
  /** probes in a new process's reply (default 2; a process known to stat gets one a reply) */
  probes?: number;
}

const NEW = 0;
const FULL = 1;
const NAMES = 2;
/** probes kept per process (a late process judges them per directory: 16 replies of 2) */
const MAX_PROBES = 32;
/** the last directories a process was sent names only in, where a lookup is evidence */
const NAMES_DIRS = 4;

interface Proc {
  mode: number;
  late: boolean;
  /** probes not yet judged: directory ids and names, in parallel */
  probeDirs: number[];
  probeNames: string[];
  /** the directory of its last reply */
  lastDir: number;
  namesDirs: number[];
}

const FULL_PLAN: ReplyPlan = { maxBytes: Infinity, namesOnly: false, probes: 0 };

export class ListingPolicy {
  readonly #groupOf: (pid: number) => number;
  readonly #max: number;
  readonly #firstBytes: number;
  readonly #probes: number;
  readonly #procs = new Map<number, Proc>();
  readonly #groups = new Map<number, number>();

  constructor(o: ListingPolicyOptions = {}) {
    this.#groupOf = o.groupOf ?? threadGroup;
    this.#max = o.maxProcesses ?? 256;
    this.#firstBytes = o.firstBytes ?? 32 * 1024;
    this.#probes = o.probes ?? 2;
  }

  /** What the reply to `pid`'s listing request in `dirId` carries; judges its probes first. */
  plan(pid: number, dirId: number): ReplyPlan {
    if (pid <= 0) return FULL_PLAN;
    const p = this.#proc(pid);
    if (p.probeNames.length > 0 && (!p.late || dirId !== p.lastDir)) {
      // asked on without looking up a probe: it does not stat what it lists
      p.mode = NAMES;
      p.probeDirs.length = 0;
      p.probeNames.length = 0;
    }
    p.lastDir = dirId;
    if (p.mode === NAMES) {
      if (!p.namesDirs.includes(dirId)) {
        p.namesDirs.push(dirId);
        if (p.namesDirs.length > NAMES_DIRS) p.namesDirs.shift();
      }
      return { maxBytes: Infinity, namesOnly: true, probes: 0 };
    }
    // a process known to stat keeps one probe a reply: enough to see it stop
    return p.mode === NEW ? { maxBytes: this.#firstBytes, namesOnly: false, probes: this.#probes } : { maxBytes: Infinity, namesOnly: false, probes: 1 };
  }

  /** The names a reply to `pid` sent as probes in `dirId`. */
  probed(pid: number, dirId: number, names: readonly string[]): void {
    if (pid <= 0 || names.length === 0) return;
    const p = this.#proc(pid);
    for (const n of names) {
      p.probeDirs.push(dirId);
      p.probeNames.push(n);
    }
    const over = p.probeNames.length - MAX_PROBES;
    if (over > 0) {
      p.probeDirs.splice(0, over);
      p.probeNames.splice(0, over);
    }
  }

  /** `pid` looked up `name` in `dirId` (found; `isDir`: a directory). */
  looked(pid: number, dirId: number, name: string, isDir: boolean): void {
    if (pid <= 0 || isDir) return;
    const p = this.#procs.get(this.#group(pid));
    if (!p) return;
    if (p.mode === NAMES) {
      if (p.namesDirs.includes(dirId)) {
        p.mode = FULL;
        p.late = true;
        p.namesDirs.length = 0;
      }
      return;
    }
    for (let i = 0; i < p.probeNames.length; i++) {
      if (p.probeNames[i] === name && p.probeDirs[i] === dirId) {
        p.mode = FULL;
        p.probeDirs.length = 0;
        p.probeNames.length = 0;
        return;
      }
    }
  }

  /**
   * `pid` asked for the attributes of a node it holds (getattr, after they expired): a names-only
   * process that stats a non-directory wants attributes after all.
   */
  stated(pid: number, isDir: boolean): void {
    if (pid <= 0 || isDir) return;
    const p = this.#procs.get(this.#group(pid));
    if (p?.mode === NAMES) {
      p.mode = FULL;
      p.late = true;
      p.namesDirs.length = 0;
    }
  }

  /** Where `pid` stands (tests, notes). */
  modeOf(pid: number): { mode: ListingMode; late: boolean } {
    const p = pid > 0 ? this.#procs.get(this.#group(pid)) : undefined;
    if (!p) return { mode: 'new', late: false };
    return { mode: p.mode === NAMES ? 'names' : p.mode === FULL ? 'full' : 'new', late: p.late };
  }

  /** How many processes and threads are remembered. */
  get size(): { processes: number; threads: number } {
    return { processes: this.#procs.size, threads: this.#groups.size };
  }

  #proc(pid: number): Proc {
    const g = this.#group(pid);
    let p = this.#procs.get(g);
    if (p) this.#procs.delete(g); // re-inserted last: the Map's order is least recently seen first
    else p = { mode: NEW, late: false, probeDirs: [], probeNames: [], lastDir: -1, namesDirs: [] };
    this.#procs.set(g, p);
    if (this.#procs.size > this.#max) this.#procs.delete(this.#procs.keys().next().value!);
    return p;
  }

  #group(pid: number): number {
    let g = this.#groups.get(pid);
    if (g === undefined) {
      g = this.#groupOf(pid);
      this.#groups.set(pid, g);
      if (this.#groups.size > this.#max * 2) this.#groups.delete(this.#groups.keys().next().value!);
    }
    return g;
  }
}

/** A thread's thread group (its process), from /proc; the pid itself when that cannot be read. */
export function threadGroup(pid: number): number {
  try {
    const m = /^Tgid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : pid;
  } catch {
    return pid;
  }
}
