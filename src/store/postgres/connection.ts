/**
 * A synchronous PostgreSQL connection for the store (SPEC S1/S2), over libpq through the `libpq`
 * binding (the one pg-native is built on). The store's rules are synchronous — better-sqlite3
 * answers without a turn of the event loop, which keeps `getattr` fast — so the PostgreSQL
 * engine asks synchronously too: one query is one blocking round trip (~25–45 µs on loopback).
 * pg-native's own sync calls hide the SQLSTATE and the row count, which the retry loop and the
 * rules need, so this wrapper talks to the binding directly (native-notes/postgres.md).
 *
 * - Statements are prepared by name, once per physical connection (again after a reconnect).
 * - `transaction(fn)` runs `fn` in a SERIALIZABLE transaction and runs it again, from the start,
 *   on a serialization failure (40001) or a deadlock (40P01), with a short random back-off: a
 *   user never sees either. Work to do after the commit is registered on the transaction value
 *   and runs only once it committed, so a re-run never repeats it. A connection lost before
 *   COMMIT is re-opened and the transaction re-run; one lost during COMMIT is settled by asking
 *   the server what became of the transaction's xid (if the caller recorded it), else reported.
 * - Reads outside a transaction are single statements at READ COMMITTED: each sees one snapshot.
 * - Failures become domain errors (`toDomainError`): disk full → InsufficientStorage, a read-only
 *   server → LibraryReadOnly, an unreachable server → MetaUnavailable, and so on.
 *
 * Beside it: startup.ts (the start-up check, `PgConnection.open` runs it first), errors.ts (the
 * SQLSTATE mapping), values.ts (parameters and columns in libpq's text format).
 * Over 600 lines because the retry loop, bare snapshots and the settling of an in-doubt COMMIT all
 * work on one connection's private state (its libpq handle, prepared names, the attempt's xid).
 */
import { libpq } from './lazy.js';
import type PQType from 'libpq';
import { SmhError } from '../../errors.js';
import { CONNECTION_STATES, PgError, toDomainError } from './errors.js';
import { checkPostgres, DEFAULT_CONNECT_TIMEOUT_MS, describeTarget, redactUrl, unavailable, where, type PgTarget, type StartupOptions } from './startup.js';
import { parserFor, toParam, type PgValue } from './values.js';

export { checkPostgres, describeTarget, redactUrl, type PgTarget } from './startup.js';
export { PgError, toDomainError } from './errors.js';
export { toParam, type PgValue } from './values.js';
export type PgRow = Record<string, unknown>;

export interface PgConnectOptions extends StartupOptions {
  /** Attempts of one transaction before a serialization failure is reported as Busy. */
  maxAttempts?: number;
  /**
   * And at least this long (ms) of re-running before it is: on a loaded machine every attempt
   * takes longer while the contenders stay, so a count alone gives up soonest when contention is
   * worst (4 clients' first writes to one new folder surfaced Busy after 30 attempts, once in a
   * suite run). 3 s; 0 for the count alone.
   */
  minRetryMs?: number;
  /** How long a lost connection is retried before MetaUnavailable (a restarting server); 15 s. */
  reconnectBudgetMs?: number;
  /** Told about every retry (tests and measurements count them). */
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  attempt: number;
  reason: 'serialization' | 'deadlock' | 'connection';
  sqlState: string | undefined;
  delayMs: number;
}

export interface PgStats {
  queries: number;
  transactions: number;
  retries: number;
  serializationFailures: number;
  deadlocks: number;
  reconnects: number;
  inDoubtResolved: number;
  /** Snapshots that asked for more than one statement and ran again in a transaction. */
  snapshotsRerun: number;
}

// libpq is loaded at the first connection (./lazy.ts): a library on SQLite never loads it.
type PQ = PQType;

const DEFAULT_MAX_ATTEMPTS = 30;
const DEFAULT_MIN_RETRY_MS = 3000;
/** Unique violations of one transaction taken for a concurrent insert and re-run (see retryReason); the next surfaces. */
export const UNIQUE_RETRIES = 4;
/** Back-off of retry n: random in [0, min(CAP, BASE·2^n)) ms — spreads contenders apart. */
const BACKOFF_BASE_MS = 0.5;
const BACKOFF_CAP_MS = 50;
const DEFAULT_RECONNECT_BUDGET_MS = 15_000;
/** How long a commit lost in transit may take to settle (the server restarting) before it is reported. */
const IN_DOUBT_BUDGET_MS = 15_000;

// One round trip each: BEGIN and its settings go as one simple query.
const BEGIN_WRITE = 'BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off';
// The server's own setting (on, or stronger: remote_apply with a synchronous standby).
const BEGIN_DURABLE = 'BEGIN ISOLATION LEVEL SERIALIZABLE';
const BEGIN_READ_ONLY = 'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY';

// ───────────────────────────── the connection ─────────────────────────────

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread: the rules are synchronous, so a retry waits where it stands. */
function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * libpq's `finish()` closes its libuv poll handle, which libuv completes in the close phase of the
 * loop; the handle lives inside the binding's object, so that object must not be garbage
 * collected before then (a freed handle aborts the process: uv__finish_close assertion). Two
 * turns of setImmediate reach past the close phase of the current loop iteration.
 */
function keepUntilClosed(pq: PQ): void {
  setImmediate(() => setImmediate(() => void pq)).unref();
}

/** First word of a statement decides whether re-running it after a lost connection is harmless. */
function isPlainRead(sql: string): boolean {
  return /^\s*(select|values|show|table)\b/i.test(sql) && !/\b(nextval|setval|pg_notify|pg_advisory\w*|smhfs_\w+)\s*\(/i.test(sql);
}

/** A statement prepared by name on the connection (lazily, once per physical connection). */
export class PgStatement {
  readonly name: string;
  readonly sql: string;
  readonly nParams: number;
  /** A single-statement read: re-run after a reconnect outside a transaction. */
  readonly plainRead: boolean;
  /** Generation of the physical connection it was last prepared on. */
  preparedOn = -1;
  /** @internal its result columns, read once */
  shape: RowShape | undefined;
  private readonly conn: PgConnection;

  constructor(conn: PgConnection, name: string, sql: string) {
    this.conn = conn;
    this.name = name;
    this.sql = sql;
    let max = 0;
    for (const m of sql.matchAll(/\$(\d+)/g)) max = Math.max(max, Number(m[1]));
    this.nParams = max;
    this.plainRead = isPlainRead(sql);
  }

  all<R extends PgRow = PgRow>(...params: PgValue[]): R[] {
    return this.conn.executePrepared(this, params).rows as R[];
  }

  get<R extends PgRow = PgRow>(...params: PgValue[]): R | undefined {
    return this.conn.executePrepared(this, params).rows[0] as R | undefined;
  }

  /** For INSERT/UPDATE/DELETE: how many rows it touched. */
  run(...params: PgValue[]): { changes: number } {
    return { changes: this.conn.executePrepared(this, params).rowCount };
  }
}

interface Result {
  rows: PgRow[];
  rowCount: number;
}

/** Column names and parsers of a statement's result, for one physical connection. */
interface RowShape {
  generation: number;
  names: string[];
  parsers: Array<(v: string) => unknown>;
}

/** The transaction value handed to `fn`: its after-commit work and, for in-doubt commits, its xid. */
export class PgTx {
  readonly attempt: number;
  private readonly after: Array<() => void> = [];
  /** The transaction id, if the caller learnt it (the change feed returns it): settles a commit lost in transit. */
  xid: string | undefined;
  constructor(attempt: number) {
    this.attempt = attempt;
  }
  /** Run `cb` once this transaction has committed (never for an attempt that is rolled back and re-run). */
  afterCommit(cb: () => void): void {
    this.after.push(cb);
  }
  /** @internal */
  runAfterCommit(): void {
    for (const cb of this.after) cb();
  }
}

export class PgConnection {
  readonly url: string;
  readonly target: PgTarget;
  readonly stats: PgStats = { queries: 0, transactions: 0, retries: 0, serializationFailures: 0, deadlocks: 0, reconnects: 0, inDoubtResolved: 0, snapshotsRerun: 0 };
  private readonly opts: PgConnectOptions;
  private pq: PQ | undefined;
  private generation = 0;
  private statementCounter = 0;
  private tx: PgTx | undefined;
  /** Generation of the connection the open transaction began on. */
  private txGeneration = -1;
  /** The first retryable failure inside the current transaction: decides the retry even if `fn` swallowed it. */
  private txFailure: PgError | undefined;
  private closed = false;
  /** Set while a snapshot runs bare, as a single statement (`snapshot`). */
  private single: { statements: number; again: boolean } | undefined;

  private constructor(url: string, opts: PgConnectOptions) {
    this.url = url;
    this.target = describeTarget(url);
    this.opts = opts;
  }

  /** The start-up check, then a synchronous connection. */
  static async open(url: string, opts: PgConnectOptions = {}): Promise<PgConnection> {
    await checkPostgres(url, opts);
    return PgConnection.connectSync(url, opts);
  }

  /** Connect now, blocking (at most the connect timeout). Throws MetaUnavailable with libpq's first line. */
  static connectSync(url: string, opts: PgConnectOptions = {}): PgConnection {
    const c = new PgConnection(url, opts);
    c.connect();
    return c;
  }

  private conninfo(): string {
    const u = new URL(this.url);
    const set = (k: string, v: string) => {
      if (!u.searchParams.has(k)) u.searchParams.set(k, v);
    };
    set('connect_timeout', String(Math.max(2, Math.ceil((this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 1000))));
    set('application_name', this.opts.applicationName ?? 'smhfs');
    set('client_encoding', 'UTF8');
    // A synchronous call on a dead TCP peer would block the process: give up on unacknowledged
    // data after 15 s and probe idle connections (ignored for unix sockets).
    set('tcp_user_timeout', '15000');
    set('keepalives_idle', '15');
    set('keepalives_interval', '5');
    set('keepalives_count', '3');
    return u.toString();
  }

  private connect(): void {
    const pq = new (libpq())();
    try {
      pq.connectSync(this.conninfo());
    } catch (e) {
      const first = (e as Error).message.split('\n').find((l) => l.trim() !== '') ?? 'connection failed';
      throw unavailable(`cannot connect to PostgreSQL at ${where(this.target)}: ${first.replace(/^(FATAL|ERROR):\s*/, '').trim()}`, this.url, e);
    }
    this.pq = pq;
    this.generation++;
    // Reads outside transactions are single READ COMMITTED statements whatever the server's
    // default; notices (CREATE … IF NOT EXISTS) would go to our stderr.
    this.simple("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; SET client_min_messages = warning");
    const enc = this.simpleRows('SHOW server_encoding')[0]?.server_encoding;
    if (enc !== 'UTF8') {
      this.close();
      throw new SmhError(
        'NotALibrary',
        `database ${JSON.stringify(this.target.database)} uses encoding ${String(enc)}; smhfs keeps UTF-8 names and needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)`,
        redactUrl(this.url),
      );
    }
  }

  private dropConnection(): void {
    const pq = this.pq;
    this.pq = undefined;
    if (!pq) return;
    try {
      pq.finish();
    } catch {
      /* already broken */
    }
    keepUntilClosed(pq);
  }

  private ensureConnected(): PQ {
    if (this.closed) throw new SmhError('Internal', 'the PostgreSQL connection is closed');
    if (!this.pq) this.reconnect();
    return this.pq!;
  }

  /**
   * A lost connection is re-opened, patiently: a server restarting refuses connections for a
   * moment. Gives up with MetaUnavailable after `reconnectBudgetMs`.
   */
  private reconnect(): void {
    const deadline = Date.now() + (this.opts.reconnectBudgetMs ?? DEFAULT_RECONNECT_BUDGET_MS);
    for (let wait = 50; ; wait = Math.min(500, wait * 2)) {
      try {
        this.connect();
        this.stats.reconnects++;
        return;
      } catch (e) {
        if (!(e instanceof SmhError && e.code === 'MetaUnavailable') || Date.now() + wait > deadline) throw e;
        sleepSync(wait);
      }
    }
  }

  get serverVersion(): number {
    return this.ensureConnected().serverVersion();
  }

  /** Prepare `sql` (placeholders $1…) under a name of its own. */
  prepare(sql: string): PgStatement {
    return new PgStatement(this, `smhfs_${++this.statementCounter}`, sql);
  }

  /** One unprepared statement with parameters. */
  query<R extends PgRow = PgRow>(sql: string, params: PgValue[] = []): R[] {
    return this.execute((pq) => pq.execParams(sql, params.map(toParam)), isPlainRead(sql)).rows as R[];
  }

  /** Statements without parameters, several allowed (the simple protocol): DDL, migrations. */
  exec(sql: string): void {
    this.execute((pq) => pq.exec(sql), false);
  }

  /** @internal */
  executePrepared(st: PgStatement, params: PgValue[]): Result {
    if (params.length !== st.nParams) throw new SmhError('Internal', `statement ${st.name} takes ${st.nParams} parameters, given ${params.length}`);
    const values = params.map(toParam);
    return this.execute(
      (pq) => {
        if (st.preparedOn !== this.generation) {
          pq.prepare(st.name, st.sql, st.nParams);
          this.check(pq);
          st.preparedOn = this.generation;
        }
        pq.execPrepared(st.name, values);
      },
      st.plainRead,
      st,
    );
  }

  /**
   * Run one statement. Outside a transaction, a plain read whose connection was lost is run
   * again on a new connection; everything else reports the loss (a write's outcome is unknown).
   */
  private execute(send: (pq: PQ) => void, plainRead: boolean, holder?: { shape?: RowShape }): Result {
    if (this.single && this.single.statements++ > 0) {
      // a bare read asked a second statement: it runs again in BEGIN … COMMIT, whatever fn does with this
      this.single.again = true;
      throw new SmhError('Internal', 'a single-statement read asked for a second statement (run again in a snapshot)');
    }
    for (let attempt = 0; ; attempt++) {
      if (this.tx && (!this.pq || this.generation !== this.txGeneration)) {
        // The transaction died with its connection: nothing more may run, least of all on a new
        // connection outside it.
        const lost = new PgError('the connection was lost during the transaction', undefined, undefined, true);
        if (!this.txFailure) this.txFailure = lost;
        throw toDomainError(lost, this.url);
      }
      const pq = this.ensureConnected();
      try {
        send(pq);
        this.stats.queries++;
        return this.check(pq, holder);
      } catch (e) {
        if (!(e instanceof PgError)) throw e;
        if (this.tx) {
          // Inside a transaction: remember what aborted it, so the retry loop decides even if
          // the rule code catches the error.
          if (!this.txFailure) this.txFailure = e;
          throw toDomainError(e, this.url);
        }
        if (e.connectionLost && plainRead && attempt === 0) continue; // reconnect and ask again
        // a bare snapshot's read runs again, whole, in a transaction on a new connection
        if (e.connectionLost && this.single) this.single.again = true;
        throw toDomainError(e, this.url);
      }
    }
  }

  /** The result of the last command, or a PgError. */
  private check(pq: PQ, holder?: { shape?: RowShape }): Result {
    const status = pq.resultStatus();
    if (status === 'PGRES_TUPLES_OK' || status === 'PGRES_COMMAND_OK' || status === 'PGRES_EMPTY_QUERY') {
      const nrows = pq.ntuples();
      const rows: PgRow[] = new Array(nrows);
      if (nrows > 0) {
        // A prepared statement's columns are fixed (PostgreSQL refuses to change them under it):
        // names and parsers are read once per statement and connection, not per call.
        let shape = holder?.shape;
        if (!shape || shape.generation !== this.generation) {
          const nfields = pq.nfields();
          shape = { generation: this.generation, names: new Array(nfields), parsers: new Array(nfields) };
          for (let c = 0; c < nfields; c++) {
            shape.names[c] = pq.fname(c);
            shape.parsers[c] = parserFor(pq.ftype(c));
          }
          if (holder) holder.shape = shape;
        }
        const { names, parsers } = shape;
        const nfields = names.length;
        for (let r = 0; r < nrows; r++) {
          const row: PgRow = {};
          for (let c = 0; c < nfields; c++) {
            const text = pq.getvalue(r, c);
            // libpq gives '' for NULL: only then is the null flag worth a call
            row[names[c]!] = text === '' && pq.getisnull(r, c) ? null : parsers[c]!(text);
          }
          rows[r] = row;
        }
      }
      const tuples = pq.cmdTuples();
      return { rows, rowCount: tuples ? Number(tuples) : nrows };
    }
    const fields = pq.resultErrorFields();
    const sqlState = fields?.sqlState;
    const text = (fields?.messagePrimary ?? pq.resultErrorMessage() ?? pq.errorMessage() ?? '').trim() || 'query failed';
    // libpq's own errors (the server went away) carry no SQLSTATE; the session's status says it is gone.
    const lost = pq.transactionStatus() === 4 || CONNECTION_STATES.has(sqlState ?? '');
    if (lost) this.dropConnection();
    throw new PgError(text.split('\n')[0]!, sqlState, fields?.messageDetail, lost);
  }

  private simple(sql: string): void {
    const pq = this.ensureConnected();
    pq.exec(sql);
    this.stats.queries++;
    this.check(pq);
  }

  private simpleRows(sql: string): PgRow[] {
    const pq = this.ensureConnected();
    pq.exec(sql);
    this.stats.queries++;
    return this.check(pq).rows;
  }

  /** Whether a transaction of this connection is open (nested calls join it). */
  get inTransaction(): boolean {
    return this.tx !== undefined;
  }

  /**
   * Run `fn` in one SERIALIZABLE transaction (READ ONLY with `readOnly`), re-running it on a
   * serialization failure, a deadlock or a connection lost before COMMIT. `fn` must not await and
   * must do nothing outside the database except through `tx.afterCommit`. Nested calls join the
   * outer transaction.
   *
   * Durability as the SQLite engine has it (synchronous NORMAL, FULL where promised): a commit
   * returns without waiting for the WAL flush (synchronous_commit off: a server crash may lose the
   * last fraction of a second of commits, never consistency), unless `durable` — for commits that
   * back a promise (close/fsync of written content, an upload) or precede deleting blob bytes.
   */
  transaction<T>(fn: (tx: PgTx) => T, opts: { readOnly?: boolean; durable?: boolean } = {}): T {
    if (this.tx) return fn(this.tx);
    if (this.single) {
      this.single.again = true; // inside a bare read: it runs again in a transaction, and this joins it
      throw new SmhError('Internal', 'a transaction inside a single-statement read (run again in a snapshot)');
    }
    const maxAttempts = this.opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    let retryUntil: number | undefined; // set at the first failure: no clock read on a commit's path
    // Counted apart from the attempts: serialization failures before a unique violation (more of
    // them since every write appends to the change feed) must not use up its re-runs.
    let uniqueViolations = 0;
    for (let attempt = 1; ; attempt++) {
      const tx = new PgTx(attempt);
      this.txFailure = undefined;
      let committing = false;
      let result: T;
      try {
        this.simple(opts.readOnly ? BEGIN_READ_ONLY : opts.durable ? BEGIN_DURABLE : BEGIN_WRITE);
        this.txGeneration = this.generation;
        this.tx = tx;
        try {
          result = fn(tx);
        } finally {
          this.tx = undefined;
        }
        if (this.txFailure) throw this.txFailure; // fn swallowed the failure that aborted the transaction
        if (!this.pq || this.generation !== this.txGeneration) throw new PgError('the connection was lost during the transaction', undefined, undefined, true);
        committing = true;
        this.simple('COMMIT');
      } catch (e) {
        // What decides is the database's failure, even when `fn` caught it and threw something else.
        const failure = this.txFailure ?? (e instanceof PgError ? e : undefined);
        this.txFailure = undefined;
        this.rollbackQuietly();
        if (failure?.connectionLost && committing) {
          // The COMMIT went out and the connection died: ask what became of the transaction.
          const outcome = this.settleInDoubt(tx);
          if (outcome === 'committed') {
            this.stats.transactions++;
            tx.runAfterCommit();
            return result!;
          }
          if (outcome === 'unknown') {
            throw unavailable('the connection to PostgreSQL was lost while committing; the change may or may not have been applied', this.url, failure);
          }
          // 'aborted': nothing was applied, so running it again is safe
        }
        if (failure?.sqlState === '23505') uniqueViolations++;
        const reason = failure ? this.retryReason(failure, uniqueViolations) : undefined;
        // Serialization failures and deadlocks: the count and the time floor; a lost connection: the count.
        retryUntil ??= Date.now() + (this.opts.minRetryMs ?? DEFAULT_MIN_RETRY_MS);
        const spent = attempt >= maxAttempts && (reason === 'connection' || Date.now() >= retryUntil);
        if (!reason || spent) throw failure ? toDomainError(failure, this.url) : e;
        if (reason === 'serialization') this.stats.serializationFailures++;
        if (reason === 'deadlock') this.stats.deadlocks++;
        this.stats.retries++;
        const delayMs = reason === 'connection' ? Math.min(1000, 50 * attempt) : Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
        this.opts.onRetry?.({ attempt, reason, sqlState: failure!.sqlState, delayMs });
        sleepSync(delayMs);
        continue;
      }
      this.stats.transactions++;
      tx.runAfterCommit();
      return result;
    }
  }

  /**
   * A read-only snapshot for several statements (REPEATABLE READ READ ONLY: one consistent view,
   * never a serialization failure). Re-run on a lost connection.
   */
  snapshot<T>(fn: () => T, opts: { bare?: boolean } = {}): T {
    if (this.tx || this.single) return fn();
    return opts.bare ? this.bareSnapshot(fn) : this.snapshotTx(fn);
  }

  // `snapshot` for reads most often one statement (the store's getattr, lookup, readlink, readdir
  // page: SpaceRows' placed forms). One statement is its own snapshot, so BEGIN and COMMIT would
  // be two round trips for nothing: `fn` runs bare; at a second statement (or a lost connection)
  // it stops (`execute`) and runs again in a REPEATABLE READ transaction (fn may run twice).
  private bareSnapshot<T>(fn: () => T): T {
    const single = (this.single = { statements: 0, again: false });
    let first: { value: T } | undefined;
    let failure: unknown;
    try {
      first = { value: fn() };
    } catch (e) {
      failure = e;
    }
    this.single = undefined;
    if (!single.again) {
      if (first) return first.value;
      throw failure;
    }
    this.stats.snapshotsRerun++;
    return this.snapshotTx(fn);
  }

  private snapshotTx<T>(fn: () => T): T {
    for (let attempt = 1; ; attempt++) {
      try {
        this.simple('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        this.txGeneration = this.generation;
        this.tx = new PgTx(attempt);
        let result: T;
        try {
          result = fn();
        } finally {
          this.tx = undefined;
        }
        const failure = this.txFailure;
        this.txFailure = undefined;
        if (failure) throw failure;
        this.simple('COMMIT');
        return result;
      } catch (e) {
        const failure = this.txFailure ?? (e instanceof PgError ? e : undefined);
        this.txFailure = undefined;
        this.rollbackQuietly();
        if (failure?.connectionLost && attempt < 3) continue;
        throw failure ? toDomainError(failure, this.url) : e;
      }
    }
  }

  private retryReason(e: PgError, uniqueViolations = 1): RetryEvent['reason'] | undefined {
    if (e.sqlState === '40001') return 'serialization';
    // A unique violation in a SERIALIZABLE transaction may be a concurrent transaction's insert
    // of the same key, which PostgreSQL reports as 23505, not 40001, when this transaction had not
    // read that key first (seen by test/pg-multi-client-model: two removals putting one node in
    // the bin at once, recycle_items_node_key). A re-run sees the other's commit and lets the rule
    // decide again; a violation that persists is a real one and surfaces.
    if (e.sqlState === '23505' && uniqueViolations < UNIQUE_RETRIES) return 'serialization';
    if (e.sqlState === '40P01') return 'deadlock';
    if (e.connectionLost) return 'connection';
    return undefined;
  }

  private rollbackQuietly(): void {
    if (!this.pq) return;
    const status = this.pq.transactionStatus();
    if (status !== 2 && status !== 3) return; // not in a transaction block
    try {
      this.pq.exec('ROLLBACK');
      this.check(this.pq);
    } catch {
      this.dropConnection(); // a connection we cannot roll back is not one to reuse
    }
  }

  /**
   * After a COMMIT lost in transit: reconnect and ask the server what became of the transaction
   * (pg_xact_status). Without a recorded xid nobody can tell: a transaction that writes must
   * record it (the change feed's append returns it).
   */
  private settleInDoubt(tx: PgTx): 'committed' | 'aborted' | 'unknown' {
    if (tx.xid === undefined) return 'unknown';
    const deadline = Date.now() + IN_DOUBT_BUDGET_MS;
    while (Date.now() < deadline) {
      try {
        const s = this.query<{ s: string | null }>('SELECT pg_xact_status($1::xid8) AS s', [tx.xid])[0]?.s;
        if (s === 'committed') {
          this.stats.inDoubtResolved++;
          return 'committed';
        }
        if (s === 'aborted') return 'aborted';
        if (s === null) return 'unknown'; // too old to tell (cannot happen seconds later)
      } catch {
        /* the server is still coming back */
      }
      sleepSync(100); // 'in progress', or not reachable yet
    }
    return 'unknown';
  }

  close(): void {
    this.closed = true;
    this.dropConnection();
  }
}
