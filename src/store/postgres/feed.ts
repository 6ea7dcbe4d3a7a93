/**
 * The change feed of a PostgreSQL library (SPEC S2): how one host learns, at once and without
 * guessing, what other hosts changed. The engine's feed rows (feed-rows.ts) use it: they append in
 * each write transaction, have the commits numbered, and listen with `deliver: false` (a mount's
 * follower reads the feed itself from its own number; the listener only wakes it).
 *
 * Writing: a write transaction appends what it changed (`appendChanges`, one round trip, rows in
 * `changes` without a number). Nothing in it takes a lock or notifies, so writers never wait for
 * each other: PostgreSQL serialises the commits of every transaction that NOTIFYs, cluster-wide
 * (a lock on "database 0" held through the commit and its WAL flush, src/backend/commands/
 * async.c), which would make every write of every host queue behind the slowest commit.
 *
 * Numbering: after commits, a sequencer pass (`sequenceChanges`, or a listener's `sequenceSoon`)
 * numbers every committed change that has none, in one small durable transaction under an
 * advisory lock, and notifies once. Passes run one at a time and each becomes visible whole, so
 * once a reader sees number n, every smaller number is visible too: "everything after my last
 * number" is an exact catch-up query. (Numbers taken inside the write transactions would not do:
 * they are handed out in statement order, and a transaction holding 9 may commit after the one
 * holding 10 was read.) The writer's own host runs the pass right after its commit, off the
 * writer's path; every listener also runs one now and then, so the changes of a host that died
 * between its commit and its pass are numbered all the same, a moment later.
 *
 * Reading: `ChangeFeedListener` holds one asynchronous `pg` connection that LISTENs, and on each
 * notification (and after every (re)connect) asks for everything after its last number and
 * delivers it in order, each change exactly once. A lost connection is re-opened with back-off,
 * LISTEN first and catch-up second, so nothing numbered in between slips through. Changes older
 * than the feed's horizon (`pruneFeed`, `pruneFeedKeep`) cannot be replayed: the listener then
 * reports `resync` (drop every cache) and goes on from the newest change.
 */
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { pgModule } from './lazy.js';
import type { Change, ChangeRecord } from '../changes.js';
import type { PgConnection, PgStatement, PgTx } from './connection.js';
import { FEED_CHANNEL } from './schema.js';

export type { Change, ChangeKind, ChangeRecord } from '../changes.js';

const appendStatements = new WeakMap<PgConnection, PgStatement>();

/**
 * Record `changes` as part of the open transaction `tx` (they are numbered after it commits).
 * Also records the transaction's xid on `tx`, which lets the connection settle a COMMIT whose
 * answer was lost. Call it once, last, in a write transaction; after the commit, have the changes
 * numbered (`sequenceChanges`, or the host's listener's `sequenceSoon`).
 */
export function appendChanges(conn: PgConnection, tx: PgTx, origin: string, changes: readonly Change[]): void {
  if (changes.length === 0) throw new Error('appendChanges: nothing to append');
  if (!conn.inTransaction) throw new Error('appendChanges: must run inside conn.transaction()');
  let st = appendStatements.get(conn);
  if (!st) {
    st = conn.prepare('SELECT smhfs_feed_append($1, $2::jsonb) AS xid');
    appendStatements.set(conn, st);
  }
  const rows = changes.map((c) => ({ space: c.space, kind: c.kind, node: c.node ?? null, parent: c.parent ?? null, name: c.name ?? null }));
  tx.xid = st.get<{ xid: string }>(origin, rows)!.xid;
}

/** One sequencer pass, synchronously, outside any transaction: returns the newest number. */
export function sequenceChanges(conn: PgConnection): number {
  if (conn.inTransaction) throw new Error('sequenceChanges: run it after the commit, not inside a transaction');
  return conn.query<{ head: number }>('SELECT smhfs_feed_sequence() AS head')[0]!.head;
}

/**
 * Keep the newest `keep` numbers, drop the rest; returns the new horizon. One statement (one
 * snapshot, atomic), at READ COMMITTED outside any transaction: what bounds the feed's size
 * whatever the write rate. A numbering pass committing meanwhile only adds numbers above the
 * head this statement saw, so nothing it numbers is dropped unseen; two prunes at once settle on
 * the horizon row (the greater wins).
 */
export const PRUNE_KEEP_SQL = `WITH h AS (SELECT max(seq) - $1::bigint AS upto FROM changes),
    d AS (DELETE FROM changes WHERE seq <= (SELECT upto FROM h) RETURNING 1),
    u AS (UPDATE changes_horizon SET pruned_to = (SELECT upto FROM h) WHERE (SELECT upto FROM h) > pruned_to RETURNING pruned_to)
  SELECT coalesce((SELECT pruned_to FROM u), (SELECT pruned_to FROM changes_horizon)) AS h`;

export function pruneFeedKeep(conn: PgConnection, keep: number): number {
  if (conn.inTransaction) throw new Error('pruneFeedKeep: run it outside a transaction');
  return Number(conn.query<{ h: string | number }>(PRUNE_KEEP_SQL, [keep])[0]!.h);
}

/** Drop changes recorded before `beforeUs` (µs since the epoch); returns the new horizon. */
export function pruneFeed(conn: PgConnection, beforeUs: number): number {
  if (conn.inTransaction) throw new Error('pruneFeed: run it outside a transaction');
  return conn.query<{ h: number }>('SELECT smhfs_feed_prune($1) AS h', [beforeUs])[0]!.h;
}

export interface ListenerOptions {
  /** Last sequence number already applied (0: from the beginning of the feed). */
  after?: number;
  /** Changes per catch-up query. */
  batch?: number;
  /** Back-off between reconnect attempts: doubles from min to max. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** A sequencer pass at least this often (ms), for changes whose writer died before numbering them; 0: never. */
  sequenceEveryMs?: number;
  applicationName?: string;
  /**
   * false: read nothing, only announce (`notified`) that changes were numbered or that the
   * connection is back (anything may have been numbered meanwhile); the caller reads the feed
   * itself from its own number (a mount's follower). Default true: deliver `changes`.
   */
  deliver?: boolean;
  /** After a pass of this listener that numbered across a multiple of 1,000: keep this many numbers, drop older ones (0: never). */
  keep?: number;
}

export interface ListenerEvents {
  /** Changes after the last delivered one, in sequence order, each exactly once. */
  changes: [records: ChangeRecord[]];
  /** The changes after `after` were pruned: drop every cache; delivery goes on from `head`. */
  resync: [info: { after: number; horizon: number; head: number }];
  /** Connected and listening (first time and after every reconnect). */
  connected: [];
  /** With `deliver: false`: numbers up to `head` may be new (a notification; NaN after a reconnect). */
  notified: [head: number];
  /** The connection was lost; a reconnect is scheduled. */
  disconnected: [error: Error];
  error: [error: Error];
}

export class ChangeFeedListener extends EventEmitter<ListenerEvents> {
  private readonly url: string;
  private readonly opts: Required<Omit<ListenerOptions, 'after'>>;
  /** The head after this listener's last numbering pass (pruning every 1,000 numbers). */
  private passHead = 0;
  private client: pg.Client | undefined;
  private last: number;
  private closed = false;
  private backoff: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** One catch-up at a time; a notification during one asks for another after it. */
  private catching: Promise<void> | undefined;
  private again = false;
  /** One sequencer pass at a time; a request during one asks for another after it. */
  private sequencing: Promise<void> | undefined;
  private sequenceAgain = false;
  private sequenceTimer: NodeJS.Timeout | undefined;

  constructor(url: string, opts: ListenerOptions = {}) {
    super();
    this.url = url;
    this.last = opts.after ?? 0;
    this.opts = {
      batch: opts.batch ?? 1000,
      reconnectMinMs: opts.reconnectMinMs ?? 50,
      reconnectMaxMs: opts.reconnectMaxMs ?? 2000,
      sequenceEveryMs: opts.sequenceEveryMs ?? 1000,
      applicationName: opts.applicationName ?? 'smhfs-feed',
      deliver: opts.deliver ?? true,
      keep: opts.keep ?? 0,
    };
    this.backoff = this.opts.reconnectMinMs;
  }

  /** The last sequence number delivered. */
  get lastSeq(): number {
    return this.last;
  }

  /** Connect, listen, catch up. Resolves once listening (rejects if the first connect fails). */
  async start(): Promise<void> {
    await this.connect();
    this.startTimer();
  }

  /** As `start`, in the background: a first connect that fails is retried like any reconnect. */
  begin(): void {
    this.startTimer();
    this.connect().catch((e: Error) => {
      if (this.closed) return;
      this.client = undefined;
      this.emit('disconnected', e);
      this.scheduleReconnect();
    });
  }

  private startTimer(): void {
    if (this.opts.sequenceEveryMs > 0 && !this.sequenceTimer) {
      this.sequenceTimer = setInterval(() => void this.sequenceSoon(), this.opts.sequenceEveryMs);
      this.sequenceTimer.unref();
    }
  }

  /**
   * Have the committed changes numbered (and so announced to every host): what a host calls
   * after each of its write commits. Asynchronous, coalesced: never more than one pass in flight
   * and one waiting. Resolves when a pass that started after the call has committed.
   */
  sequenceSoon(): Promise<void> {
    if (this.sequencing) {
      this.sequenceAgain = true;
      return this.sequencing;
    }
    this.sequencing = (async () => {
      try {
        do {
          this.sequenceAgain = false;
          const client = this.client;
          if (!client || this.closed) return; // the next connect's catch-up and timer pass cover it
          try {
            await this.pass(client);
          } catch (e) {
            // A pass that failed on a connection since replaced must not swallow a request made
            // for the new one: go round again when asked (see `catchUp`).
            if (!this.closed && this.client === client) this.emit('error', e as Error);
          }
        } while (this.sequenceAgain);
      } finally {
        this.sequencing = undefined;
      }
    })();
    return this.sequencing;
  }

  /** One numbering pass on `client`; now and then, prune (`keep`). */
  private async pass(client: pg.Client): Promise<void> {
    const r = await client.query<{ head: string }>('SELECT smhfs_feed_sequence() AS head');
    const head = Number(r.rows[0]!.head);
    const before = this.passHead;
    this.passHead = head;
    if (this.opts.keep > 0 && head > this.opts.keep && Math.floor(head / 1000) > Math.floor(before / 1000)) {
      await client.query(PRUNE_KEEP_SQL, [this.opts.keep]);
    }
  }

  private async connect(): Promise<void> {
    const client = new (pgModule().Client)({ connectionString: this.url, application_name: this.opts.applicationName, connectionTimeoutMillis: 5000 });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (n) => {
      if (n.channel !== FEED_CHANNEL) return;
      const seq = Number(n.payload);
      if (!this.opts.deliver) {
        this.emit('notified', seq);
        return;
      }
      if (!(seq > this.last)) return; // already delivered by a catch-up
      void this.catchUp();
    });
    await client.connect();
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    // LISTEN before the catch-up query: a change numbered in between is then either in the
    // query's answer or announced after it (and filtered by seq), never in neither. READ
    // COMMITTED whatever the server's default: a sequencer pass must see the passes before it.
    await client.query(`SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; LISTEN ${FEED_CHANNEL}`);
    this.client = client;
    this.backoff = this.opts.reconnectMinMs;
    this.emit('connected');
    if (this.opts.deliver) await this.catchUp();
    else this.emit('notified', NaN);
    void this.sequenceSoon(); // changes committed while nobody was numbering
  }

  private lost(client: pg.Client, e: Error): void {
    if (this.client !== client && this.client !== undefined) return; // an old connection's late event
    if (this.client === undefined && this.reconnectTimer) return;
    this.client = undefined;
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.emit('disconnected', e);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.opts.reconnectMaxMs, this.backoff * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch((e: Error) => {
        if (this.closed) return;
        this.client = undefined;
        this.emit('disconnected', e);
        this.scheduleReconnect();
      });
    }, delay);
  }

  /** Ask for everything after the last delivered sequence number, until there is no more. */
  catchUp(): Promise<void> {
    if (this.catching) {
      this.again = true;
      return this.catching;
    }
    this.catching = (async () => {
      try {
        do {
          this.again = false;
          const client = this.client;
          try {
            await this.drain();
          } catch (e) {
            // The connection's own 'error'/'end' reconnects; a failed query alone is reported.
            // Either way the loop goes on when asked: a reconnect's catch-up that arrived while a
            // drain on the dead connection was still failing only set `again`, and ending here
            // would drop it: the listener would then wait for the next notification, which never
            // comes once the writers are done (the S2 restart test's stall).
            if (!this.closed && this.client && this.client === client) this.emit('error', e as Error);
          }
        } while (this.again && !this.closed);
      } finally {
        this.catching = undefined;
      }
    })();
    return this.catching;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const client = this.client;
      if (!client || this.closed) return;
      // One statement, one snapshot: the horizon, the head and the rows agree with each other.
      const r = await client.query<{ horizon: string; head: string; rows: ChangeRecord[] }>(
        `SELECT h.pruned_to AS horizon, coalesce((SELECT max(seq) FROM changes), h.pruned_to) AS head,
           (SELECT coalesce(json_agg(c ORDER BY c.seq), '[]'::json) FROM
             (SELECT seq, at, origin, space, kind, node, parent, name FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2) c) AS rows
         FROM changes_horizon h`,
        [this.last, this.opts.batch],
      );
      const row = r.rows[0]!;
      const horizon = Number(row.horizon);
      const head = Number(row.head);
      if (this.last < horizon) {
        const after = this.last;
        this.last = head;
        this.emit('resync', { after, horizon, head });
        continue;
      }
      const records = row.rows;
      if (records.length === 0) return;
      this.last = records[records.length - 1]!.seq;
      this.emit('changes', records);
      if (records.length < this.opts.batch) return;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sequenceTimer) clearInterval(this.sequenceTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const c = this.client;
    this.client = undefined;
    await this.catching?.catch(() => undefined);
    await this.sequencing?.catch(() => undefined);
    if (c) await c.end().catch(() => undefined);
  }
}
