/**
 * Checkpoints off the serving thread (issue 15). SQLite copies the WAL back into library.db in a
 * checkpoint; by default (`wal_autocheckpoint` = 1,000 pages) the connection whose commit takes
 * the WAL past 1,000 pages runs it inside that commit: copies every page, syncs the WAL and the
 * database. In the mount and `serve` that is one request of a client, chosen by chance, paying
 * 10–60 ms (measured: the rm of a file with 2,000 bound links wrote ~225 frames and took 156 ms
 * when it crossed the mark, 60–100 ms when it did not).
 *
 * Long-running processes (`Library.startBackground`: mount, serve) therefore hand checkpoints to a
 * worker thread with its own connection (checkpoint-worker.ts). The serving connection's automatic
 * checkpoint is raised to a safety net (`NET_PAGES`) instead of turned off; the worker looks at the
 * WAL-index header every `TICK_MS` and runs a PASSIVE checkpoint (`WalCheckpoints.tick`) when the
 * frames not yet copied reach `HIGH_PAGES`, or when any are left and no commit came since its last
 * look (the writes paused). PASSIVE never takes the write lock and never waits for readers, so a
 * request is never held up by it; TRUNCATE and RESTART (which block writers) are never used while
 * serving. The last connection to close does SQLite's final checkpoint, as before.
 *
 * Data safety: nothing about what is committed changes. A commit is durable in the WAL exactly as
 * before (synchronous=NORMAL, or FULL for a durable one: src/store/sqlite/engine.ts); a checkpoint
 * copies only committed frames, syncs the WAL before it writes library.db and syncs library.db
 * before it records how far it got, whichever connection runs it; a crash at any point leaves the
 * WAL holding every frame not yet recorded as copied, and the next open replays it. Which thread
 * checkpoints only decides when the WAL is emptied.
 *
 * Why the net: a checkpoint that ends while the writer is between commits lets the next commit
 * restart the WAL from its start; under a steady stream of writes a concurrent checkpoint may
 * never see such a gap, and the WAL would grow without end. SQLite's own automatic checkpoint
 * runs after the writer's commit on the writer's connection (nothing can commit in between), so at
 * `NET_PAGES` it takes over: frames the worker already copied are not copied again, and the next
 * commit restarts the WAL. The net is also what bounds the WAL if the worker dies (then it is put
 * back to SQLite's default at once).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { packageRoot } from '../../package-root.js';

/** Frames not yet copied at which the worker checkpoints even while writes go on (SQLite's default mark). */
export const HIGH_PAGES = 1000;
/** The serving connection's own automatic checkpoint, a safety net only (~40 MiB of 4 KiB pages). */
export const NET_PAGES = 10_000;
/** SQLite's default `wal_autocheckpoint`, put back when there is no worker. */
export const SQLITE_DEFAULT_PAGES = 1000;
/** How often the worker looks at the WAL-index header. */
export const TICK_MS = 100;
/** Looks skipped after a checkpoint failed (a full disk, an I/O error): not one failing attempt every tick. */
const BACKOFF_TICKS = 50;

/** What the WAL-index header says: the WAL's last valid frame, and how many frames a checkpoint has copied. */
export interface WalProgress {
  frames: number;
  backfilled: number;
}

/**
 * The WAL-index header of `library.db-shm` (sqlite.org/walformat.html §2.1: mxFrame, a u32 at
 * byte 16 of the first header copy; nBackfill, a u32 at byte 96, the checkpoint-info; both in
 * the machine's byte order), read with one pread. Undefined when it cannot be read or is not
 * initialised. A read racing a commit may see a torn value: it only decides when to checkpoint.
 */
export function readWalProgress(fd: number, buf: Buffer = Buffer.alloc(136)): WalProgress | undefined {
  let n: number;
  try {
    n = readSync(fd, buf, 0, 136, 0);
  } catch {
    return undefined;
  }
  if (n < 136 || buf[12] !== 1) return undefined; // isInit
  const le = endianness() === 'LE';
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  return { frames: u32(16), backfilled: u32(96) };
}

/** The progress of the WAL of the library in `dir`, read once (tests). */
export function walProgressOf(dir: string): WalProgress | undefined {
  let fd: number;
  try {
    fd = openSync(join(dir, 'library.db-shm'), 'r');
  } catch {
    return undefined;
  }
  try {
    return readWalProgress(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The worker's policy, one look at a time (kept apart from the thread so tests can run it
 * deterministically on a connection of their own). `progress` undefined (no header to read):
 * checkpoint whenever another connection committed since the last look (`PRAGMA data_version`).
 */
export class WalCheckpoints {
  /** Checkpoints run, and the frames the last one found in the WAL. */
  checkpoints = 0;
  lastLog = 0;
  private lastFrames = -1;
  private lastVersion = -1;
  private backoff = 0;
  private readonly version: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private readonly progress: () => WalProgress | undefined,
    private readonly high = HIGH_PAGES,
  ) {
    this.version = db.prepare('PRAGMA data_version').pluck();
  }

  /** One look: checkpoint if due. Answers whether one ran. */
  tick(): boolean {
    if (this.backoff > 0) {
      this.backoff--;
      return false;
    }
    const p = this.progress();
    let due: boolean;
    if (p) {
      const pending = p.frames >= p.backfilled ? p.frames - p.backfilled : p.frames;
      // Due at the mark, or with anything left once the writes paused (no commit since the last look).
      due = pending >= this.high || (pending > 0 && p.frames === this.lastFrames);
      this.lastFrames = p.frames;
    } else {
      const v = this.version.get() as number;
      due = v !== this.lastVersion;
      this.lastVersion = v;
    }
    if (!due) return false;
    return this.checkpoint();
  }

  /** A PASSIVE checkpoint: copies what no reader still needs, never waits, never blocks a writer. */
  checkpoint(): boolean {
    try {
      const r = (this.db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>)[0];
      this.checkpoints++;
      this.lastLog = r?.log ?? 0;
      return true;
    } catch {
      // busy, a full disk (D9), I/O: a later look tries again; the serving connection's net still holds
      this.backoff = BACKOFF_TICKS;
      return false;
    }
  }
}

/** What the worker is started with. */
export interface CheckpointWorkerData {
  dbPath: string;
  shmPath: string;
  /** Int32Array over it: [0] the worker has closed its connection, [1] checkpoints run. */
  state: SharedArrayBuffer;
  tickMs: number;
  high: number;
}

/** A running checkpointer (see the module comment). */
export class Checkpointer {
  private readonly state: Int32Array;
  private stopped = false;
  private failed = false;
  private readonly waiters: Array<() => void> = [];

  private constructor(
    private readonly db: Database.Database,
    private readonly worker: Worker,
    state: SharedArrayBuffer,
  ) {
    this.state = new Int32Array(state);
  }

  /**
   * Start one for the serving connection `db` of the library in `dir`; undefined (and SQLite's
   * default left as it is) when no worker can be started.
   */
  static start(db: Database.Database, dir: string, opts: { tickMs?: number; high?: number; net?: number } = {}): Checkpointer | undefined {
    const state = new SharedArrayBuffer(8);
    const data: CheckpointWorkerData = {
      dbPath: join(dir, 'library.db'),
      shmPath: join(dir, 'library.db-shm'),
      state,
      tickMs: opts.tickMs ?? TICK_MS,
      high: opts.high ?? HIGH_PAGES,
    };
    let worker: Worker;
    try {
      // By the package root: this module may run bundled into dist/src/cli/ (src/package-root.ts).
      worker = new Worker(join(packageRoot(import.meta.url), 'dist', 'src', 'store', 'sqlite', 'checkpoint-worker.js'), { workerData: data });
    } catch {
      return undefined;
    }
    const c = new Checkpointer(db, worker, state);
    db.pragma(`wal_autocheckpoint = ${opts.net ?? NET_PAGES}`);
    const died = (): void => {
      if (c.stopped || c.failed) return;
      c.failed = true;
      // No worker: SQLite's own checkpoints again, so the WAL stays as small as it always was.
      if (db.open) db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
      for (const w of c.waiters.splice(0)) w();
    };
    worker.on('error', died);
    worker.on('exit', died);
    worker.on('message', () => {
      for (const w of c.waiters.splice(0)) w();
    });
    // A checkpointer must not keep the process alive; after the listeners, which would re-ref it.
    worker.unref();
    return c;
  }

  /** Checkpoints the worker has run. */
  get checkpoints(): number {
    return Atomics.load(this.state, 1);
  }

  /** Whether the worker is gone (its checkpoints are SQLite's own again). */
  get dead(): boolean {
    return this.failed;
  }

  /** Resolves after the worker's next checkpoint (or once it is gone). Tests. */
  next(): Promise<void> {
    if (this.failed || this.stopped) return Promise.resolve();
    this.worker.ref();
    return new Promise<void>((resolve) => this.waiters.push(resolve)).finally(() => {
      if (this.waiters.length === 0) this.worker.unref();
    });
  }

  /**
   * Stop, synchronously: the worker closes its connection before this returns (up to 10 s, the
   * length of a checkpoint it may be in), so the serving connection's close is the last one and
   * does SQLite's final checkpoint and removes the WAL, as without a worker.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.waiters.splice(0)) w();
    if (!this.failed) {
      this.worker.postMessage('stop');
      Atomics.wait(this.state, 0, 0, 10_000);
    }
    void this.worker.terminate();
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
  }
}
