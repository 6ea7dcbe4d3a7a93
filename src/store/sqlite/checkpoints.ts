/**
 * Checkpoints off the serving thread (issue 15). SQLite copies the WAL back into library.db in a
 * checkpoint; by default (`wal_autocheckpoint` = 1,000 pages) the connection whose commit takes
 * the WAL past 1,000 pages runs it inside that commit: copies every page, syncs the WAL and the
 * database. In the mount and `serve` that is one request of a client, chosen by chance, paying
 * 10–60 ms (measured: the rm of a file with 2,000 bound links wrote ~225 frames and took 156 ms
 * when it crossed the mark, 60–100 ms when it did not).
 *
 * Long-running processes (`Library.startBackground`: mount, serve) therefore move checkpoints to a
 * worker thread with its own connection (checkpoint-worker.ts). The serving connection's automatic
 * checkpoint is raised to a safety net (`NET_PAGES`) instead of turned off. Every `TICK_MS` the
 * serving thread reads the WAL-index header (one pread of 136 bytes, on an unref'd timer) and a
 * checkpoint is due (`CheckpointDue`) when the frames not yet copied reach `HIGH_PAGES`, or when
 * any are left and no commit came since the previous look (the writes paused). The worker is
 * started the first time the mark is reached (starting a thread that loads better-sqlite3 costs
 * ~0.1–0.2 s of CPU here; most test mounts never write that much) and runs each due checkpoint,
 * one at a time, as PASSIVE: it never takes the write lock and never waits for readers, so no
 * request waits for it. TRUNCATE and RESTART (which block writers) are never used while serving.
 * The last connection to close does SQLite's final checkpoint, as before.
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
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
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

/** The progress of the WAL of the library in `dir`, read once (tests, benches). */
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
 * When a checkpoint is due, one look at a time: at `high` frames not yet copied, or with any left
 * once the writes paused (no commit since the previous look).
 */
export class CheckpointDue {
  private lastFrames = -1;
  /** Frames not yet copied at the last look. */
  pending = 0;

  constructor(private readonly high = HIGH_PAGES) {}

  look(p: WalProgress | undefined): boolean {
    if (!p) return false; // no header to read (not WAL, no shared memory): SQLite's net only
    this.pending = p.frames >= p.backfilled ? p.frames - p.backfilled : p.frames;
    const due = this.pending >= this.high || (this.pending > 0 && p.frames === this.lastFrames);
    this.lastFrames = p.frames;
    return due;
  }
}

/** A PASSIVE checkpoint: copies what no reader still needs, never waits, never blocks a writer. Throws as SQLite does. */
export function passiveCheckpoint(db: Database.Database): { log: number; checkpointed: number } {
  const r = (db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>)[0];
  return { log: r?.log ?? 0, checkpointed: r?.checkpointed ?? 0 };
}

/** What the worker is started with. */
export interface CheckpointWorkerData {
  dbPath: string;
  /** Int32Array over it: [0] the worker has closed its connection (1) or never opened one (2), [1] checkpoints run. */
  state: SharedArrayBuffer;
}

/** Worker → serving thread. */
export type CheckpointReply = { op: 'ready' } | { op: 'done'; ok: boolean; log: number };

/**
 * A running checkpointer (see the module comment). The looks run here, on the serving thread: a
 * pread of the WAL-index header every `TICK_MS` on an unref'd timer (a few µs). The worker is
 * started only once the WAL first holds `high` uncopied frames — a mount or `serve` that never
 * writes that much (most test mounts) never pays for a thread (~0.1–0.2 s of CPU to start one
 * with better-sqlite3 here) — and from then on runs each due checkpoint, one at a time.
 */
export class Checkpointer {
  private readonly state = new Int32Array(new SharedArrayBuffer(8));
  private readonly due: CheckpointDue;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly shmPath: string;
  private fd: number | undefined;
  private worker: Worker | undefined;
  private ready = false;
  private inFlight = false;
  private stopped = false;
  private failed = false;
  private backoff = 0;
  private readonly waiters: Array<() => void> = [];

  private constructor(
    private readonly db: Database.Database,
    private readonly dir: string,
    private readonly high: number,
    tickMs: number,
  ) {
    this.due = new CheckpointDue(high);
    this.shmPath = join(dir, 'library.db-shm');
    this.timer = setInterval(() => this.look(), tickMs);
    this.timer.unref();
  }

  /** Start looking for the serving connection `db` of the library in `dir`. */
  static start(db: Database.Database, dir: string, opts: { tickMs?: number; high?: number; net?: number } = {}): Checkpointer {
    const c = new Checkpointer(db, dir, opts.high ?? HIGH_PAGES, opts.tickMs ?? TICK_MS);
    db.pragma(`wal_autocheckpoint = ${opts.net ?? NET_PAGES}`);
    return c;
  }

  /** Checkpoints the worker has run. */
  get checkpoints(): number {
    return Atomics.load(this.state, 1);
  }

  /** Whether the worker died (its checkpoints are SQLite's own again). */
  get dead(): boolean {
    return this.failed;
  }

  /** Resolves after the worker's next checkpoint (or once it is gone). Tests. */
  next(): Promise<void> {
    if (this.failed || this.stopped) return Promise.resolve();
    this.timer.ref();
    this.worker?.ref();
    return new Promise<void>((resolve) => this.waiters.push(resolve)).finally(() => {
      if (this.waiters.length > 0) return;
      this.timer.unref();
      this.worker?.unref();
    });
  }

  /** One look at the WAL-index header; hands a due checkpoint to the worker (started at the first mark). */
  private look(): void {
    if (this.stopped || this.failed) return;
    if (this.backoff > 0) {
      this.backoff--;
      return;
    }
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.shmPath, 'r');
      } catch {
        return;
      }
    }
    if (!this.due.look(readWalProgress(this.fd))) return;
    if (!this.worker) {
      if (this.due.pending >= this.high) this.spawn();
      return;
    }
    if (!this.ready || this.inFlight) return;
    this.inFlight = true;
    this.worker.postMessage('checkpoint');
  }

  private spawn(): void {
    let worker: Worker;
    try {
      // By the package root: this module may run bundled into dist/src/cli/ (src/package-root.ts).
      const data: CheckpointWorkerData = { dbPath: join(this.dir, 'library.db'), state: this.state.buffer as SharedArrayBuffer };
      // node:worker_threads loads with the first checkpointer's worker, not with every command.
      const { Worker } = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
      worker = this.worker = new Worker(join(packageRoot(import.meta.url), 'dist', 'src', 'store', 'sqlite', 'checkpoint-worker.js'), { workerData: data });
    } catch {
      this.die();
      return;
    }
    worker.on('error', () => this.die());
    worker.on('exit', () => this.die());
    worker.on('message', (m: CheckpointReply) => {
      if (m.op === 'ready') {
        this.ready = true;
        return;
      }
      this.inFlight = false;
      // busy, a full disk (D9), I/O: try again in 5 s, not every look; the net holds meanwhile
      if (!m.ok) this.backoff = BACKOFF_TICKS;
      for (const w of this.waiters.splice(0)) w();
    });
    // A checkpointer must not keep the process alive; after the listeners, which would re-ref it.
    if (this.waiters.length === 0) worker.unref();
  }

  /** No worker after all: SQLite's own checkpoints again, so the WAL stays as small as it always was. */
  private die(): void {
    if (this.stopped || this.failed) return;
    this.failed = true;
    clearInterval(this.timer);
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Stop, synchronously: a worker closes its connection before this returns (up to 10 s, the
   * length of a checkpoint it may be in), so the serving connection's close is the last one and
   * does SQLite's final checkpoint and removes the WAL, as without a worker.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    if (this.fd !== undefined) closeSync(this.fd);
    for (const w of this.waiters.splice(0)) w();
    if (this.worker) {
      if (!this.failed) {
        this.worker.postMessage('stop');
        Atomics.wait(this.state, 0, 0, 10_000);
      }
      void this.worker.terminate();
    }
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
  }
}
