/**
 * The PostgreSQL engine (src/store/engine.ts over the synchronous PgConnection): a write
 * transaction is one SERIALIZABLE transaction, which the connection runs again, from the start,
 * after a serialization failure, a deadlock or a connection lost before COMMIT — never surfaced
 * to a user. Each attempt gets a fresh transaction value, so the after-commit work of an attempt
 * that was rolled back is dropped with it; the value of the attempt that committed runs its work
 * once, after the commit. Nested calls join the outer transaction. A snapshot is one REPEATABLE
 * READ READ ONLY transaction (never a serialization failure), begun only when the read asks a
 * second statement (PgConnection.snapshot's `bare`: a single statement is its own snapshot).
 *
 * `durable` keeps the server's synchronous_commit; otherwise a commit does not wait for the WAL
 * flush (as SQLite's synchronous=NORMAL). `freeing` (SQLite's full-disk reserve, D9) means nothing
 * here: a PostgreSQL server out of disk answers 53100, InsufficientStorage.
 */
import { fail } from '../../errors.js';
import { TxValue, type MetaEngine, type MetaTx, type TxOptions } from '../engine.js';
import type { PgConnection, PgTx } from './connection.js';

export class PgEngine implements MetaEngine {
  readonly conn: PgConnection;
  private tx: TxValue | undefined;
  private attemptTx: PgTx | undefined;
  closed = false;

  constructor(conn: PgConnection) {
    this.conn = conn;
  }

  get current(): MetaTx | undefined {
    return this.tx;
  }

  /** The connection's transaction attempt now running (the change feed records its xid on it). */
  get attempt(): PgTx | undefined {
    return this.attemptTx;
  }

  snapshot<T>(fn: () => T): T {
    if (this.closed) throw fail('Internal', 'the library is closed');
    if (this.tx || this.conn.inTransaction) return fn();
    // most of the store's reads are one statement: no BEGIN/COMMIT unless it asks a second
    return this.conn.snapshot(fn, { bare: true });
  }

  transaction<T>(fn: (tx: MetaTx) => T, opts: TxOptions = {}): T {
    if (this.closed) throw fail('Internal', 'the library is closed');
    if (this.tx) return fn(this.tx);
    return this.conn.transaction(
      (attempt) => {
        // A fresh value per attempt: a re-run must not inherit the work of the attempt it replaces.
        const tx = (this.tx = new TxValue());
        this.attemptTx = attempt;
        try {
          const result = fn(tx);
          // Work that must run inside the transaction at its end (the change feed's batched
          // append), where the transaction value offers it.
          (tx as { committing?: () => void }).committing?.();
          attempt.afterCommit(() => tx.committed());
          return result;
        } finally {
          this.tx = undefined;
          this.attemptTx = undefined;
        }
      },
      { durable: opts.durable === true },
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn.close();
  }
}
