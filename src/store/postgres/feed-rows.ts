/**
 * The change feed's rows (src/store/changes.ts) for a PostgreSQL library: what one host commits
 * reaches every host's followers (SPEC S2, H4), over the feed tables of feed.ts.
 *
 * Writing: a write transaction appends its changes, without numbers, inside itself (`append`:
 * one statement just before COMMIT, which also records the transaction's xid so the connection can
 * settle a COMMIT whose answer was lost). An attempt that is rolled back or re-run takes its rows
 * with it; only the attempt that commits leaves any. After the commit (`committed`) the changes
 * are numbered and announced by a sequencer pass: on this process's listener connection, off
 * the writer's path, when something here follows the feed (a mount); otherwise synchronously, one
 * round trip (the CLI, `serve`). A pass that fails (the server gone) loses nothing: every
 * listener runs a pass every second, which numbers whatever committed without one.
 *
 * Numbers: a pass runs under the sequencer's lock and commits whole, so the feed's head is a
 * watermark no transaction in flight can fill below (native-notes/postgres.md, "The change
 * feed"). `append` cannot know the numbers yet, so it returns this process's own
 * (`localNumbers`): the follower applies its own commits at once through `onCommit` without
 * moving its cursor, and skips the records of its own origin when it reads them from the feed.
 *
 * Watching: `watchCommits` starts one LISTEN connection per library (ChangeFeedListener with
 * `deliver: false`); each notification and each reconnect moves `externalVersion`, and the
 * follower then reads everything after its own number through the library's connection. A
 * follower whose listener lost its connection therefore resumes from its number, and one whose
 * number was pruned meanwhile is told to drop every cache (`ChangeFeed.read`: behind).
 *
 * Pruning: the pass that numbers across a multiple of PRUNE_EVERY keeps the newest FEED_KEEP
 * numbers and drops the rest (PRUNE_KEEP_SQL), so the table stays bounded whatever the rate.
 */
import { FEED_KEEP, PRUNE_EVERY, type ChangeRecord, type FeedRows } from '../changes.js';
import type { PgConnection } from './connection.js';
import type { PgEngine } from './engine.js';
import { appendChanges, ChangeFeedListener, pruneFeedKeep, sequenceChanges } from './feed.js';

type Num = string | number;

export function pgFeedRows(engine: PgEngine, conn: PgConnection, url: string, opts: { keep?: number } = {}): FeedRows {
  const keep = opts.keep ?? FEED_KEEP;
  let local = 0;
  let version = 0;
  let lastHead = 0;
  let listener: ChangeFeedListener | undefined;
  const wakers = new Set<() => void>();
  const heard = (): void => {
    version++;
    for (const w of wakers) w();
  };
  const num = (v: Num | null): number | null => (v === null ? null : Number(v));
  return {
    seesOthers: true,
    localNumbers: true,
    append: (_at, origin, changes) => {
      const attempt = engine.attempt;
      if (!attempt) throw new Error('the change feed appends inside a write transaction only');
      appendChanges(conn, attempt, origin, changes);
      return (local += changes.length);
    },
    committed: () => {
      if (listener) {
        void listener.sequenceSoon();
        return;
      }
      try {
        const head = Number(sequenceChanges(conn));
        if (head > keep && Math.floor(head / PRUNE_EVERY) > Math.floor(lastHead / PRUNE_EVERY)) pruneFeedKeep(conn, keep);
        lastHead = head;
      } catch {
        // The commit stands; its changes get their numbers from the next pass of any host.
      }
    },
    since: (after, limit) =>
      conn
        .query<{ seq: Num; at: Num; origin: string; space: string; kind: ChangeRecord['kind']; node: Num | null; parent: Num | null; name: string | null }>(
          'SELECT seq, at, origin, space, kind, node, parent, name FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2',
          [after, limit],
        )
        .map((r) => ({ ...r, seq: Number(r.seq), at: Number(r.at), node: num(r.node), parent: num(r.parent) })),
    // top, the links below it, the bound links to it or below it (as sqlite/feed-rows.ts)
    // (several tops: their union, in one round trip; UNION in the recursion walks a nested top once)
    dependents: (tops) =>
      conn
        .query<{ id: Num }>(
          `WITH RECURSIVE tops(id) AS (SELECT value::bigint FROM jsonb_array_elements_text($1::jsonb)),
           sub(id) AS (SELECT id FROM tops UNION SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
           SELECT id FROM tops
           UNION SELECT n.id FROM sub JOIN nodes n ON n.id = sub.id WHERE n.kind = 'link'
           UNION SELECT l.id FROM sub JOIN nodes l ON l.link_node = sub.id WHERE l.link_flavour = 'bound'`,
          [JSON.stringify(tops)],
        )
        .map((r) => Number(r.id)),
    horizon: () => Number(conn.query<{ h: Num }>('SELECT pruned_to AS h FROM changes_horizon')[0]!.h),
    // the newest number handed out (the horizon when every numbered change was pruned)
    head: () => Number(conn.query<{ h: Num }>('SELECT coalesce((SELECT max(seq) FROM changes), (SELECT pruned_to FROM changes_horizon)) AS h')[0]!.h),
    pruneTo: (seq) => {
      conn.query('DELETE FROM changes WHERE seq <= $1', [seq]);
      conn.query('UPDATE changes_horizon SET pruned_to = greatest(pruned_to, $1)', [seq]);
    },
    externalVersion: () => version,
    watchCommits: (wake) => {
      wakers.add(wake);
      if (!listener) {
        const l = new ChangeFeedListener(url, { deliver: false, keep, applicationName: `smhfs-feed ${process.pid}` });
        listener = l;
        l.on('notified', heard);
        // Reported by the follower's own reads failing; a lost connection reconnects by itself.
        l.on('error', () => undefined);
        l.begin(); // a first connect that fails (the server restarting) is retried like any reconnect
      }
      return () => {
        wakers.delete(wake);
        if (wakers.size === 0 && listener) {
          void listener.close();
          listener = undefined;
        }
      };
    },
  };
}
