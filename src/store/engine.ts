/**
 * The engine seam: what the store's rules need of a metadata database, and nothing more. An engine
 * runs a synchronous function as one write transaction (`transaction`) or as one consistent read
 * (`snapshot`); the rules never see a connection, a pragma or SQL. SQLite implements it today
 * (src/store/sqlite/engine.ts); the PostgreSQL engine of issue 13 implements it over its
 * synchronous connection (src/store/postgres/connection.ts), which may run a transaction function
 * again after a serialization failure.
 *
 * So a transaction function must be pure with respect to the world outside the database: whatever
 * it wants done once the data is committed (collect the blobs it dropped, wake the task runner) it
 * registers on the transaction value with `afterCommit`, and the engine runs that work only after
 * the commit, once — never for an attempt that was rolled back. Nested calls join the outer
 * transaction and share its value.
 *
 * The row primitives the rules use are typed interfaces beside the rules that use them
 * (src/store/rows.ts); each engine implements them with its own statements.
 */

export interface TxOptions {
  /** Make the commit durable (and every earlier one): the WAL is synced at commit. */
  durable?: boolean;
  /** A transaction that leads to space coming back (a delete): it may use the full-disk reserve (D9). */
  freeing?: boolean;
}

/** One write transaction, as the rules see it. */
export interface MetaTx {
  /** Run `cb` once this transaction has committed (never for an attempt rolled back or re-run). */
  afterCommit(cb: () => void): void;
  /**
   * Run `cb` inside the transaction, once its function has returned and just before the commit:
   * a last write that sums up the transaction (the change feed's rows, src/store/changes.ts). An
   * engine without it has its callers write as they go.
   */
  beforeCommit?(cb: () => void): void;
}

export interface MetaEngine {
  /** Run `fn` in one write transaction (nested calls join the outer one, with the same `tx`). */
  transaction<T>(fn: (tx: MetaTx) => T, opts?: TxOptions): T;
  /** Run a read of several statements against one snapshot; inside a transaction it just runs. */
  snapshot<T>(fn: () => T): T;
  /** The transaction running now, if any. */
  readonly current: MetaTx | undefined;
  readonly closed: boolean;
  close(): void;
}

/**
 * A transaction value whose before- and after-commit work runs in registration order. An engine
 * makes one per attempt, calls `committing()` inside the transaction once its function returned,
 * and `committed()` once the commit succeeded.
 */
export class TxValue implements MetaTx {
  private readonly after: Array<() => void> = [];
  private readonly before: Array<() => void> = [];

  afterCommit(cb: () => void): void {
    this.after.push(cb);
  }

  beforeCommit(cb: () => void): void {
    this.before.push(cb);
  }

  /** The engine calls it inside the transaction, after its function returned (work may add work). */
  committing(): void {
    for (let i = 0; i < this.before.length; i++) this.before[i]!();
  }

  committed(): void {
    for (const cb of this.after) cb();
  }
}

/** Microseconds since the epoch: every time the store records. */
export const nowUs = (): number => Date.now() * 1000;
