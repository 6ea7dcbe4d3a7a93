/**
 * The change feed of a PostgreSQL library (SPEC S2; a prototype the engine of issue 13 builds on):
 * how one host learns, at once and without guessing, what other hosts changed.
 *
 * Writing: at the end of each write transaction the engine appends what it changed
 * (`appendChanges`, one round trip): rows in `changes` with a sequence number, and a NOTIFY
 * carrying the last one. Both are part of the transaction: a rolled-back change is never
 * announced and a committed one always is. The sequence is taken under an advisory lock held
 * until the transaction ends (smhfs_feed_append), so sequence order is commit order: once a
 * reader sees number n, every smaller number is committed or never will be, and "everything
 * after the last number I saw" is an exact catch-up query. (A plain sequence would not do:
 * numbers are handed out at insert time, and a transaction holding 9 may commit after the one
 * holding 10 was read.) PostgreSQL already serialises the commits of notifying transactions
 * (async.c queues notifications in commit order under one lock), so the lock costs little more.
 *
 * Reading: `ChangeFeedListener` holds one asynchronous `pg` connection that LISTENs, and on each
 * notification (and after every (re)connect) asks for everything after its last sequence number
 * and delivers it in order, each change exactly once. A lost connection is re-opened with
 * back-off, LISTEN first and catch-up second, so nothing committed in between slips through.
 * Changes older than the feed's horizon (pruned by `pruneFeed`) cannot be replayed: the listener
 * then reports `resync` (drop every cache) and goes on from the newest change.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { PgConnection, PgStatement, PgTx } from './connection.js';
import { FEED_CHANNEL } from './schema.js';

/** What a change invalidates: a name in a directory, a node's attributes or content, a whole space. */
export type ChangeKind = 'entry' | 'node' | 'space';

export interface Change {
  space: string;
  kind: ChangeKind;
  node?: number | null;
  parent?: number | null;
  name?: string | null;
}

export interface FeedRecord {
  seq: number;
  at: number;
  origin: string;
  space: string;
  kind: ChangeKind;
  node: number | null;
  parent: number | null;
  name: string | null;
}

const appendStatements = new WeakMap<PgConnection, PgStatement>();

/**
 * Record `changes` as part of the open transaction `tx` and announce them at its commit; returns
 * the last sequence number. Also records the transaction's xid on `tx`, which lets the
 * connection settle a COMMIT whose answer was lost. Call it once, last, in a write transaction.
 */
export function appendChanges(conn: PgConnection, tx: PgTx, origin: string, changes: readonly Change[]): number {
  if (changes.length === 0) throw new Error('appendChanges: nothing to append');
  if (!conn.inTransaction) throw new Error('appendChanges: must run inside conn.transaction()');
  let st = appendStatements.get(conn);
  if (!st) {
    st = conn.prepare('SELECT last_seq, xid FROM smhfs_feed_append($1, $2::jsonb)');
    appendStatements.set(conn, st);
  }
  const rows = changes.map((c) => ({ space: c.space, kind: c.kind, node: c.node ?? null, parent: c.parent ?? null, name: c.name ?? null }));
  const r = st.get<{ last_seq: number; xid: string }>(origin, rows)!;
  tx.xid = r.xid;
  return r.last_seq;
}

/** Drop changes recorded before `beforeUs` (µs since the epoch); returns the new horizon. */
export function pruneFeed(conn: PgConnection, beforeUs: number): number {
  return conn.transaction(() => conn.query<{ h: number }>('SELECT smhfs_feed_prune($1) AS h', [beforeUs])[0]!.h);
}

export interface ListenerOptions {
  /** Last sequence number already applied (0: from the beginning of the feed). */
  after?: number;
  /** Changes per catch-up query. */
  batch?: number;
  /** Back-off between reconnect attempts: doubles from min to max. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  applicationName?: string;
}

export interface ListenerEvents {
  /** Changes after the last delivered one, in sequence order, each exactly once. */
  changes: [records: FeedRecord[]];
  /** The changes after `after` were pruned: drop every cache; delivery goes on from `head`. */
  resync: [info: { after: number; horizon: number; head: number }];
  /** Connected and listening (first time and after every reconnect). */
  connected: [];
  /** The connection was lost; a reconnect is scheduled. */
  disconnected: [error: Error];
  error: [error: Error];
}

export class ChangeFeedListener extends EventEmitter<ListenerEvents> {
  private readonly url: string;
  private readonly opts: Required<Omit<ListenerOptions, 'after'>>;
  private client: pg.Client | undefined;
  private last: number;
  private closed = false;
  private backoff: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** One catch-up at a time; a notification during one asks for another after it. */
  private catching: Promise<void> | undefined;
  private again = false;

  constructor(url: string, opts: ListenerOptions = {}) {
    super();
    this.url = url;
    this.last = opts.after ?? 0;
    this.opts = {
      batch: opts.batch ?? 1000,
      reconnectMinMs: opts.reconnectMinMs ?? 50,
      reconnectMaxMs: opts.reconnectMaxMs ?? 2000,
      applicationName: opts.applicationName ?? 'smhfs-feed',
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
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: this.opts.applicationName, connectionTimeoutMillis: 5000 });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (n) => {
      if (n.channel !== FEED_CHANNEL) return;
      const seq = Number(n.payload);
      if (!(seq > this.last)) return; // already delivered by a catch-up
      void this.catchUp();
    });
    await client.connect();
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    // LISTEN before the catch-up query: a change committed in between is then either in the
    // query's answer or announced after it (and filtered by seq), never in neither.
    await client.query(`LISTEN ${FEED_CHANNEL}`);
    this.client = client;
    this.backoff = this.opts.reconnectMinMs;
    this.emit('connected');
    await this.catchUp();
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
          await this.drain();
        } while (this.again);
      } catch (e) {
        // The connection's own 'error'/'end' reconnects; a failed query alone is reported.
        if (!this.closed && this.client) this.emit('error', e as Error);
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
      const r = await client.query<{ horizon: string; head: string; rows: FeedRecord[] }>(
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
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const c = this.client;
    this.client = undefined;
    await this.catching?.catch(() => undefined);
    if (c) await c.end().catch(() => undefined);
  }
}
