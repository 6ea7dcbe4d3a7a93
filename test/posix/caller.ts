/**
 * A caller of the POSIX suite: one python3 process (test/posix/syscalls.py) that makes the
 * system calls the cases ask for, as root or as a throw-away uid/gid (`setpriv --reuid --regid
 * --clear-groups`). Requests go as JSON lines over its stdin and answers come back in order, so
 * the test process itself never touches the file system under test (M4: the serving process may
 * be this very test's child, and a blocking call on a FUSE mount from the wrong process can hang).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../helpers/mount.js';
import { PYTHON } from '../helpers/python.js';

/** What one system call gave: its value, or the errno's name (`ENOENT`). */
export type SysResult = { ok: unknown; errno?: undefined } | { errno: string; ok?: undefined };

export interface StatResult {
  mode: number;
  type: number;
  perm: number;
  ino: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  rdev: number;
  blocks: number;
  /** Nanoseconds since the epoch. */
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
}

const DRIVER = join(ROOT, 'test', 'posix', 'syscalls.py');
const CALL_TIMEOUT_MS = 60_000;

export class Caller {
  readonly uid: number;
  readonly gid: number;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting = new Map<number, { res: (r: SysResult) => void; rej: (e: Error) => void; what: string }>();
  #next = 1;
  #stderr = '';
  #exited: string | undefined;

  /** uid 0: the test's own identity (root); any other: a setpriv'd process with no supplementary groups. */
  constructor(uid = 0, gid = uid) {
    this.uid = uid;
    this.gid = gid;
    // The driver's source is passed inline: a throw-away uid may not be able to read the repo.
    const source = readFileSync(DRIVER, 'utf8');
    const argv = [PYTHON, '-c', source];
    const cmd = uid === 0 ? argv : ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...argv];
    this.#child = spawn(cmd[0]!, cmd.slice(1), { cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    this.#child.on('exit', (code, sig) => {
      this.#exited = `exited (${code ?? sig})`;
      for (const w of this.#waiting.values()) w.rej(new Error(`syscall driver ${this.#exited} during ${w.what}: ${this.#stderr}`));
      this.#waiting.clear();
    });
    this.#child.stdin.on('error', () => undefined);
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as { id: number; ok?: unknown; errno?: string; error?: string };
      const w = this.#waiting.get(msg.id);
      if (!w) return;
      this.#waiting.delete(msg.id);
      if (msg.error !== undefined) w.rej(new Error(`syscall driver refused ${w.what}: ${msg.error}`));
      else if (msg.errno !== undefined) w.res({ errno: msg.errno });
      else w.res({ ok: msg.ok ?? null });
    });
  }

  /** Make one system call; resolves with its value or its errno (never throws for an errno). */
  call(op: string, ...args: unknown[]): Promise<SysResult> {
    const what = `${op}(${args.map((a) => JSON.stringify(a)).join(', ').slice(0, 200)})`;
    if (this.#exited) return Promise.reject(new Error(`syscall driver ${this.#exited}: ${this.#stderr}`));
    const id = this.#next++;
    return new Promise<SysResult>((res, rej) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        rej(new Error(`${what} did not return within ${CALL_TIMEOUT_MS / 1000} s`));
      }, CALL_TIMEOUT_MS);
      timer.unref();
      this.#waiting.set(id, {
        what,
        res: (r) => {
          clearTimeout(timer);
          res(r);
        },
        rej: (e) => {
          clearTimeout(timer);
          rej(e);
        },
      });
      this.#child.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** The call's value; throws (the case's own set-up failed) when it returns an errno. */
  async must<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const r = await this.call(op, ...args);
    if (r.errno !== undefined) throw new SetupError(`${op}(${args.map((a) => JSON.stringify(a)).join(', ').slice(0, 200)}) failed: ${r.errno}`);
    return r.ok as T;
  }

  async stat(path: string): Promise<StatResult> {
    return withTimes(await this.must<RawStat>('stat', path));
  }

  async lstat(path: string): Promise<StatResult> {
    return withTimes(await this.must<RawStat>('lstat', path));
  }

  async fstat(fd: number): Promise<StatResult> {
    return withTimes(await this.must<RawStat>('fstat', fd));
  }

  close(): void {
    this.#child.stdin.end();
    if (!this.#exited) this.#child.kill('SIGTERM');
  }
}

type RawStat = Omit<StatResult, 'atime' | 'mtime' | 'ctime'> & { atime: string; mtime: string; ctime: string };

/** The driver sends times as decimal strings (ns since the epoch do not fit a double). */
export function withTimes(raw: RawStat): StatResult {
  return { ...raw, atime: BigInt(raw.atime), mtime: BigInt(raw.mtime), ctime: BigInt(raw.ctime) };
}

/** A step a case needs before it can check anything failed: the case fails with this message. */
export class SetupError extends Error {}
