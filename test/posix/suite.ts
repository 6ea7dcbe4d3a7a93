/**
 * The POSIX conformance suite's frame (modelled on pjdfstest, which JuiceFS and SeaweedFS run):
 * a case is a named sequence of system calls made through the kernel by separate processes
 * (test/posix/caller.ts), with checks of every errno and of the time fields each call must
 * change or keep. Cases run against any directory — a plain one, bindfs, an smhfs mount on any
 * binding — so one list of cases validates itself against a reference and then judges smhfs.
 *
 * Each case gets a fresh directory (mode 0755, owned by root) and three callers: root, and two
 * throw-away users (setpriv) for EACCES/EPERM and sticky-directory cases; the mount must allow
 * other users (allow_other). Case names say the syscall and what is checked:
 * `rename: EXDEV …`, `link: EPERM on a directory`, `chmod: ctime changes, mtime kept`.
 */
import { Caller, SetupError, type StatResult, type SysResult } from './caller.js';

/** Throw-away identities (no such users need to exist: setpriv takes numbers). */
export const USER_A = { uid: 61001, gid: 61001 };
export const USER_B = { uid: 61002, gid: 61002 };

export interface Check {
  label: string;
  pass: boolean;
  found?: unknown;
  wanted?: unknown;
}

export interface CaseResult {
  name: string;
  pass: boolean;
  checks: Check[];
  /** A set-up step failed, or the case threw: what happened. */
  error?: string;
  ms: number;
}

/** Where the cases run and what that file system can show. */
export interface TargetInfo {
  /** `plain`, `bindfs`, `smhfs-fuse-native`, … (the staging lists are per target). */
  name: string;
  /** A directory root may write in; each case makes its own directory inside. */
  dir: string;
  /**
   * Smallest step between two times it can show, in ns (ms for fuse-native): `tick()` waits at
   * least this long so "changed" is observable, and set times are compared at this resolution.
   */
  timeResolutionNs: number;
  /** What ENAMETOOLONG-sized names and statfs's namemax are: 255 everywhere here. */
  nameMax: number;
  /** Names must be UTF-8 (smhfs, SPEC D5): other bytes are refused with EILSEQ, never kept or altered. */
  utf8Names: boolean;
}

export class Ctx {
  readonly root: Caller;
  readonly a: Caller;
  readonly b: Caller;
  readonly dir: string;
  readonly target: TargetInfo;
  readonly checks: Check[] = [];
  #n = 0;

  constructor(target: TargetInfo, dir: string, callers: { root: Caller; a: Caller; b: Caller }) {
    this.target = target;
    this.dir = dir;
    this.root = callers.root;
    this.a = callers.a;
    this.b = callers.b;
  }

  /** A path inside the case's directory. */
  p(...names: string[]): string {
    return [this.dir, ...names].join('/');
  }

  /** A fresh name (`n0`, `n1`, … like pjdfstest). */
  name(): string {
    return `n${this.#n++}`;
  }

  // ───────────── checks ─────────────

  check(label: string, pass: boolean, found?: unknown, wanted?: unknown): boolean {
    const plain = (v: unknown): unknown => (typeof v === 'bigint' ? String(v) : v);
    this.checks.push({ label, pass, ...(pass ? {} : { found: plain(found), wanted: plain(wanted) }) });
    return pass;
  }

  eq(label: string, found: unknown, wanted: unknown): boolean {
    return this.check(label, same(found, wanted), found, wanted);
  }

  /** The call returned this errno (or one of these). */
  errno(label: string, r: SysResult, ...wanted: string[]): boolean {
    const found = r.errno ?? `OK (${JSON.stringify(r.ok)})`;
    return this.check(label, r.errno !== undefined && wanted.includes(r.errno), found, wanted.join(' or '));
  }

  /** The call succeeded; returns its value (undefined when it failed). */
  succeeds<T = unknown>(label: string, r: SysResult): T | undefined {
    this.check(label, r.errno === undefined, r.errno, 'success');
    return r.errno === undefined ? (r.ok as T) : undefined;
  }

  /** `later` is strictly after `earlier` (a time field changed). */
  advanced(label: string, earlier: bigint, later: bigint): boolean {
    return this.check(label, later > earlier, fmtNs(later), `> ${fmtNs(earlier)}`);
  }

  /** A time field kept its value. */
  kept(label: string, before: bigint, after: bigint): boolean {
    return this.check(label, before === after, fmtNs(after), fmtNs(before));
  }

  /** A time equals one that was set, at the target's resolution. */
  timeIs(label: string, found: bigint, wanted: bigint): boolean {
    const res = BigInt(this.target.timeResolutionNs);
    return this.check(label, found / res === wanted / res, fmtNs(found), fmtNs(wanted));
  }

  // ───────────── helpers ─────────────

  /** Wait so that a time taken after differs from one taken before (coarse kernel clocks: ~4 ms). */
  async tick(): Promise<void> {
    await sleep(Math.max(15, Math.ceil((this.target.timeResolutionNs * 2) / 1e6)));
  }

  /** root's stat, or lstat with `{ l: true }`. */
  stat(path: string, opts: { l?: boolean; as?: Caller } = {}): Promise<StatResult> {
    const who = opts.as ?? this.root;
    return opts.l ? who.lstat(path) : who.stat(path);
  }

  /** Create a file with `data` (default empty) as `who` (default root); returns its path. */
  async file(path: string, opts: { mode?: number; data?: string; as?: Caller } = {}): Promise<string> {
    const who = opts.as ?? this.root;
    const fd = await who.must<number>('open', path, ['O_WRONLY', 'O_CREAT', 'O_EXCL'], opts.mode ?? 0o644);
    if (opts.data) await who.must('write', fd, opts.data);
    await who.must('close', fd);
    return path;
  }

  async mkdir(path: string, mode = 0o755, as?: Caller): Promise<string> {
    await (as ?? this.root).must('mkdir', path, mode);
    return path;
  }

  /** A directory any user may write in (0777), optionally sticky. */
  async openDir(path: string, mode = 0o777): Promise<string> {
    await this.root.must('mkdir', path, mode);
    await this.root.must('chmod', path, mode); // umask is 0, but be explicit
    return path;
  }

  /** Make `path` belong to `who` (uid and gid). */
  async give(path: string, who: Caller): Promise<void> {
    await this.root.must('lchown', path, who.uid, who.gid);
  }

  /** Make a node of a kind pjdfstest iterates over: regular, dir, fifo, block, char, socket, symlink. */
  async make(kind: NodeKind, path: string, mode = 0o644): Promise<string> {
    switch (kind) {
      case 'regular':
        return this.file(path, { mode });
      case 'dir':
        return this.mkdir(path, mode);
      case 'fifo':
        await this.root.must('mkfifo', path, mode);
        return path;
      case 'block':
        await this.root.must('mknod', path, 'blk', mode, 0x0102);
        return path;
      case 'char':
        await this.root.must('mknod', path, 'chr', mode, 0x0103);
        return path;
      case 'socket':
        await this.root.must('mknod', path, 'sock', mode, 0);
        return path;
      case 'symlink':
        await this.root.must('symlink', 'test', path);
        return path;
    }
  }
}

export type NodeKind = 'regular' | 'dir' | 'fifo' | 'block' | 'char' | 'socket' | 'symlink';
export const ALL_KINDS: NodeKind[] = ['regular', 'dir', 'fifo', 'block', 'char', 'socket', 'symlink'];
export const S_IF: Record<NodeKind, number> = {
  regular: 0o100000,
  dir: 0o040000,
  fifo: 0o010000,
  block: 0o060000,
  char: 0o020000,
  socket: 0o140000,
  symlink: 0o120000,
};

export interface PosixCase {
  name: string;
  run(c: Ctx): Promise<void>;
}

/** A case list under construction: `kase('rename: EXDEV …', async (c) => …)`. */
export class CaseList {
  readonly cases: PosixCase[] = [];
  readonly #names = new Set<string>();

  kase(name: string, run: (c: Ctx) => Promise<void>): void {
    if (this.#names.has(name)) throw new Error(`two POSIX cases are named ${JSON.stringify(name)}`);
    this.#names.add(name);
    this.cases.push({ name, run });
  }

  /** One case per node kind: `${name} (${kind})`. */
  each(kinds: NodeKind[], name: string, run: (c: Ctx, kind: NodeKind) => Promise<void>): void {
    for (const k of kinds) this.kase(`${name} (${k})`, (c) => run(c, k));
  }
}

/** Callers shared by every case of one run (three long-lived driver processes). */
export class Callers {
  readonly root = new Caller(0);
  readonly a = new Caller(USER_A.uid, USER_A.gid);
  readonly b = new Caller(USER_B.uid, USER_B.gid);

  close(): void {
    for (const c of [this.root, this.a, this.b]) c.close();
  }
}

let runCounter = 0;

/** Run one case in a fresh directory of `target`; never throws. */
export async function runCase(kase: PosixCase, target: TargetInfo, callers: Callers): Promise<CaseResult> {
  const t0 = performance.now();
  const dir = `${target.dir}/c${process.pid}-${runCounter++}`;
  let c: Ctx | undefined;
  try {
    await callers.root.must('mkdir', dir, 0o755);
    c = new Ctx(target, dir, callers);
    await kase.run(c);
    const pass = c.checks.length > 0 && c.checks.every((x) => x.pass);
    const res: CaseResult = { name: kase.name, pass, checks: c.checks, ms: performance.now() - t0 };
    if (c.checks.length === 0) res.error = 'the case checked nothing';
    return res;
  } catch (e) {
    const msg = e instanceof SetupError ? `set-up failed: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e);
    return { name: kase.name, pass: false, checks: c?.checks ?? [], error: msg, ms: performance.now() - t0 };
  }
}

export function fmtNs(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  const d = new Date(Number(s) * 1000);
  return `${Number.isNaN(d.getTime()) ? String(s) : d.toISOString().slice(0, 19)}.${String(frac < 0n ? -frac : frac).padStart(9, '0')}`;
}

/** Deep equality for plain values (bigints included). */
function same(a: unknown, b: unknown): boolean {
  const norm = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
  return norm(a) === norm(b);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
