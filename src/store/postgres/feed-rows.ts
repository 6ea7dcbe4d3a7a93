/**
 * The change feed's rows (src/store/changes.ts) for a PostgreSQL library, as far as they go
 * today: this process's own commits only. A write transaction's changes get process-local
 * numbers and reach this process's listeners (`onCommit`) right after the commit, so a mount on
 * PostgreSQL invalidates the side effects of its own operations (the links bound to a file it
 * moved) exactly as on SQLite. Nothing is written to the database here and other hosts' changes
 * are not read: `externalVersion` never moves, so a mount sees another host's changes when its
 * kernel cache times out (1 s; 0 for bound links). The cross-host feed (feed.ts: appended in the
 * transaction, numbered after commit, LISTEN/NOTIFY) is the next step of issue 13
 * (native-notes/postgres.md).
 */
import type { ChangeRecord, FeedRows } from '../changes.js';
import type { PgConnection } from './connection.js';

export function pgLocalFeedRows(conn: PgConnection): FeedRows {
  let last = 0;
  return {
    seesOthers: false,
    append: (_at, _origin, changes) => (last += changes.length),
    since: (): ChangeRecord[] => [],
    // top, the links below it, the bound links to it or below it (as sqlite/feed-rows.ts)
    dependents: (top) =>
      conn
        .query<{ id: string | number }>(
          `WITH RECURSIVE sub(id) AS (SELECT $1::bigint UNION ALL SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
           SELECT $1::bigint AS id
           UNION SELECT n.id FROM sub JOIN nodes n ON n.id = sub.id WHERE n.kind = 'link'
           UNION SELECT l.id FROM sub JOIN nodes l ON l.link_node = sub.id WHERE l.link_flavour = 'bound'`,
          [top],
        )
        .map((r) => Number(r.id)),
    horizon: () => 0,
    head: () => last,
    pruneTo: () => undefined,
    externalVersion: () => 0,
  };
}
