/**
 * The SQLite engine (src/store/engine.ts over better-sqlite3): a write transaction is one
 * synchronous IMMEDIATE transaction, a snapshot one DEFERRED read. A delete on a full disk may use
 * the library's reserve for its WAL frames (D9) and is then run once more — with a fresh
 * transaction value, so the failed attempt's after-commit work is dropped with it.
 */
import type Database from 'better-sqlite3';
import { fail, SmhError } from '../../errors.js';
import { TxValue, type MetaEngine, type MetaTx, type TxOptions } from '../engine.js';
import { isDiskFull, releaseReserve } from './disk.js';
import { sqliteToDomain } from './errors.js';

export class SqliteEngine implements MetaEngine {
  readonly db: Database.Database;
  private readonly dir: string;
  /** The error for a full disk (the library says what emptying the bin would free). */
  private readonly diskFull: (cause: unknown) => SmhError;
  private readRunner: Database.Transaction<(f: () => unknown) => unknown> | undefined;
  private writeRunner: Database.Transaction<(f: () => unknown) => unknown> | undefined;
  /** The `db.transaction` that made writeRunner: one who replaces it (the tests' SQL counter) gets a new one. */
  private writeRunnerFrom: unknown;
  private tx: TxValue | undefined;
  closed = false;

  constructor(db: Database.Database, dir: string, diskFull: (cause: unknown) => SmhError) {
    this.db = db;
    this.dir = dir;
    this.diskFull = diskFull;
  }

  get current(): MetaTx | undefined {
    return this.tx;
  }

  /**
   * Run a read of several statements in one DEFERRED transaction: they see one snapshot (a
   * rename committed by another process between two of them cannot tear a path), and the WAL
   * read lock is taken once instead of per statement (about 20% of a stat). Inside any
   * transaction it just runs.
   */
  snapshot<T>(fn: () => T): T {
    if (this.closed) throw fail('Internal', 'the library is closed');
    if (this.db.inTransaction) return fn();
    try {
      // One wrapper made once: building a transaction function per call cost as much as a query.
      this.readRunner ??= this.db.transaction((f: () => unknown) => f());
      return this.readRunner.deferred(fn) as T;
    } catch (e) {
      throw sqliteToDomain(e);
    }
  }

  /**
   * Run `fn` in one IMMEDIATE transaction (nested calls join the outer one). `durable` syncs the
   * WAL at commit (synchronous=FULL), which also makes every earlier commit durable.
   */
  transaction<T>(fn: (tx: MetaTx) => T, opts: TxOptions = {}): T {
    if (this.closed) throw fail('Internal', 'the library is closed');
    if (this.tx) return fn(this.tx);
    let tx = (this.tx = new TxValue());
    let result: T;
    const run = (value: TxValue): T => {
      const r = fn(value);
      value.committing();
      return r;
    };
    try {
      if (opts.durable) this.db.pragma('synchronous = FULL');
      try {
        // one wrapper made once, as for snapshots: a new one per call cost ~10 µs of every write
        if (this.writeRunnerFrom !== this.db.transaction) {
          this.writeRunnerFrom = this.db.transaction;
          this.writeRunner = this.db.transaction((f: () => unknown) => f());
        }
        result = this.writeRunner!.immediate(() => run(tx)) as T;
      } catch (e) {
        if (e instanceof SmhError || !isDiskFull(e, this.dir)) throw e;
        // D9: a delete on a full disk may use the reserve for its WAL frames, once.
        if (!opts.freeing || !releaseReserve(this.dir, 0)) throw this.diskFull(e);
        tx = this.tx = new TxValue();
        try {
          result = this.writeRunner!.immediate(() => run(tx)) as T;
        } catch (e2) {
          throw !(e2 instanceof SmhError) && isDiskFull(e2, this.dir) ? this.diskFull(e2) : e2;
        }
      }
    } catch (e) {
      throw sqliteToDomain(e);
    } finally {
      if (opts.durable) this.db.pragma('synchronous = NORMAL');
      this.tx = undefined;
    }
    tx.committed();
    return result;
  }

  close(): void {
    this.closed = true;
    this.db.close();
  }
}
