/**
 * The one scheduler of a library's background work, for every process alike (mount, serve, the
 * CLI): purge tasks (L15), recycle-bin retention (T5), expired tokens, and collection of the
 * deletion queue (D3). A task is a row; any process may claim a queued one, or one whose owner is
 * gone or whose heartbeat is stale, and runs it in batches, each its own transaction, so other
 * operations interleave. A short-lived command runs what is queued before it exits
 * (`runTasks`); a long-running process calls `start`, which runs tasks as they are queued
 * (`wake`) and does the periodic maintenance. Timers are unref'd so they never keep a process alive.
 */
import { fail, isSmhError } from '../errors.js';
import { nowUs, type MetaEngine } from './engine.js';
import { isLocalOwnerDead, processOwner } from './owners.js';
import type { TaskRow, TaskRows } from './rows.js';
import type { Task } from './types.js';

/** Task transactions lead to space coming back, so they may use the reserve (D9). */
const FREEING = { freeing: true } as const;
const TASK_BATCH = 500;
const TASK_STALE_US = 30_000_000;
/** Keys a short-lived command collects from an old backlog before it exits (long-running processes take the rest). */
const COMMAND_COLLECT_LIMIT = 500;

/** What the scheduler drives; the library wires it. */
export interface SchedulerWork {
  /** One batch of an L15 purge task: delete up to `limit` nodes under `root` in `space`. */
  purgeBatch(space: string, root: number, limit: number): { deleted: number; finished: boolean };
  /** T5 and token expiry: purge what is past its time in every space. */
  expire(): Promise<void>;
  /** D3: is anything on the deletion queue? */
  backlog(): boolean;
  /** D3: collect the deletion queue (up to `limit` keys looked at). */
  collect(opts?: { limit?: number }): Promise<unknown>;
  /** Wait for collection this process started. */
  collected(): Promise<void>;
}

export class TaskScheduler {
  private readonly engine: MetaEngine;
  private readonly rows: TaskRows;
  private readonly work: SchedulerWork;
  private taskRun: Promise<void> | undefined;
  private background: NodeJS.Timeout | undefined;
  private kicked: Promise<void> | undefined;
  private again = false;

  constructor(engine: MetaEngine, rows: TaskRows, work: SchedulerWork) {
    this.engine = engine;
    this.rows = rows;
    this.work = work;
  }

  tasks(): Task[] {
    return this.rows.all().map(taskOf);
  }

  task(id: number): Task {
    const row = this.rows.get(id);
    if (!row) throw fail('TaskNotFound', `no task ${id}`, String(id));
    return taskOf(row);
  }

  /** Queue an L15 purge of the subtree under `root` (its `total` nodes), inside the caller's transaction. */
  queuePurge(space: string, subject: string, root: number, total: number, timeUs = nowUs()): number {
    const tx = this.engine.current;
    if (!tx) throw fail('Internal', 'a task is queued inside a transaction');
    const id = this.rows.insertPurge(space, subject, root, total, timeUs);
    tx.afterCommit(() => this.wake());
    return id;
  }

  /** Called when a task is queued: a long-running process (`start`) starts on it at once. */
  wake(): void {
    if (this.background) setImmediate(() => void this.runTasks().catch(() => undefined));
  }

  /**
   * Run queued tasks now, whether or not `start` was called, never twice at once: a kick during a
   * run runs again after it. A plain read first: claiming takes a write lock, which a kick with
   * nothing to do should not take. For a server that decides itself when to look (after queuing
   * a task, on a timer); errors go to `onError`.
   */
  kick(onError: (e: unknown) => void): Promise<void> {
    if (this.kicked) {
      this.again = true;
      return this.kicked;
    }
    this.kicked = (async () => {
      do {
        this.again = false;
        try {
          if (this.rows.all().some((t) => t.state === 'queued' || t.state === 'running')) await this.runTasks();
        } catch (e) {
          onError(e);
        }
      } while (this.again && !this.engine.closed);
    })().finally(() => {
      this.kicked = undefined;
    });
    return this.kicked;
  }

  get running(): Promise<void> | undefined {
    return this.taskRun;
  }

  /**
   * Run every queued (or abandoned) task to completion, and wait for pending blob collection.
   * Batches are separate transactions, so other operations interleave.
   */
  async runTasks(onProgress?: (t: Task) => void): Promise<void> {
    if (!this.taskRun) {
      this.taskRun = (async () => {
        // Yield first: with nothing to do the body would finish (and clear taskRun) before
        // taskRun is even assigned, leaving a settled promise cached for good.
        await null;
        try {
          for (;;) {
            const claimed = this.engine.transaction(() => {
              // queued, or running but abandoned: a stale heartbeat, or an owner process that is gone
              const t = this.rows.claimable(nowUs() - TASK_STALE_US).find(
                (c) => c.state === 'queued' || c.heartbeat < nowUs() - TASK_STALE_US || (c.owner !== null && c.owner !== processOwner() && isLocalOwnerDead(c.owner)),
              );
              if (t) this.rows.claim(t.id, processOwner(), nowUs());
              return t;
            }, FREEING);
            if (!claimed || this.engine.closed) break;
            await this.runTask(claimed, onProgress);
          }
        } finally {
          this.taskRun = undefined;
        }
      })();
    }
    await this.taskRun;
    // A backlog left by a crash or by a reader's hold: a command takes a bounded share of it.
    if (!this.engine.closed && this.work.backlog()) {
      try {
        await this.work.collect({ limit: COMMAND_COLLECT_LIMIT });
      } catch (e) {
        if (!isSmhError(e, 'LibraryReadOnly') && !isSmhError(e, 'Busy')) throw e;
      }
    }
    await this.work.collected();
  }

  private async runTask(t: TaskRow, onProgress?: (t: Task) => void): Promise<void> {
    try {
      for (;;) {
        if (this.engine.closed) return;
        const r = this.work.purgeBatch(t.space, t.root, TASK_BATCH);
        this.engine.transaction(() => this.rows.progress(t.id, r.deleted, nowUs()), FREEING);
        onProgress?.(this.task(t.id));
        if (r.finished) break;
        await new Promise((res) => setImmediate(res));
      }
      this.engine.transaction(() => this.rows.finish(t.id, 'done', null, nowUs()), FREEING);
    } catch (e) {
      if (this.engine.closed) return;
      this.engine.transaction(() => this.rows.finish(t.id, 'failed', (e as Error).message, nowUs()), FREEING);
    }
    onProgress?.(this.task(t.id));
  }

  /**
   * For long-running processes (mount, serve): run tasks as they come, purge expired bin items
   * (T5) and collect the deletion queue periodically (D3: the library's own records; the store is
   * never listed).
   */
  start(intervalMs = 60_000): void {
    if (this.background) return;
    const tick = async () => {
      try {
        await this.work.expire();
        await this.runTasks();
        await this.work.collect();
      } catch (e) {
        console.error(`smhfs: background maintenance failed: ${(e as Error).message}`);
      }
    };
    this.background = setInterval(() => void tick(), intervalMs);
    this.background.unref();
    void tick();
  }

  get started(): boolean {
    return this.background !== undefined;
  }

  stop(): void {
    if (this.background) clearInterval(this.background);
  }
}

function taskOf(r: TaskRow): Task {
  return {
    id: r.id,
    space: r.space,
    kind: r.kind,
    state: r.state,
    subject: r.subject,
    total: r.total,
    done: Math.min(r.done, r.total),
    error: r.error,
    createdAtUs: r.created,
    updatedAtUs: r.updated,
  };
}
