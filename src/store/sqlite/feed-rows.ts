/**
 * The change feed's rows (src/store/changes.ts) in SQLite: `changes` numbered by AUTOINCREMENT
 * (writers are serialised, so numbers follow commit order and are never reused), the horizon in
 * `changes_horizon`. Other processes' commits show as a new `PRAGMA data_version` on this
 * connection (a read of shared memory, no I/O) and, at once, as a write to the WAL, which
 * `watchCommits` hears through inotify (fs.watch on the library folder).
 */
import { watch } from 'node:fs';
import type Database from 'better-sqlite3';
import type { ChangeRecord, FeedRows } from '../changes.js';
import { DB_FILE } from './open.js';

/** Changes per VALUES block of a big append (7 parameters each: 1,792, well under SQLite's 32,766). */
const APPEND_BLOCK = 256;

export function sqliteFeedRows(db: Database.Database, dir: string): FeedRows {
  const p = (sql: string) => db.prepare(sql);
  // Prepared on first use: a library opened read-only at an older schema has no feed to prepare for.
  let prepared: ReturnType<typeof statements> | undefined;
  const statements = () => ({
    // one statement for a transaction's changes, in array order (so their numbers follow it)
    append: p(`INSERT INTO changes (at, origin, space, kind, node, parent, name)
      SELECT ?, ?, c.value ->> 0, c.value ->> 1, c.value ->> 2, c.value ->> 3, c.value ->> 4 FROM json_each(?) c ORDER BY c.key`),
    // a big transaction's changes (a cascade of 2,000 links records 6,000) in blocks of plain
    // VALUES, rows numbered in their order: half the cost of parsing and sorting one JSON array
    appendBlock: p(`INSERT INTO changes (at, origin, space, kind, node, parent, name) VALUES ${Array(APPEND_BLOCK).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`),
    since: p('SELECT seq, at, origin, space, kind, node, parent, name FROM changes WHERE seq > ? ORDER BY seq LIMIT ?'),
    horizon: p('SELECT pruned_to AS h FROM changes_horizon'),
    // the newest number ever handed out (sqlite_sequence survives the rows' deletion)
    head: p("SELECT coalesce((SELECT max(seq) FROM changes), (SELECT pruned_to FROM changes_horizon)) AS h"),
    prune: p('DELETE FROM changes WHERE seq <= ?'),
    // top, the links below it, the bound links to it or below it (a non-directory has nothing below)
    // (several tops: their union; UNION in the recursion, so a top below another is walked once)
    dependents: p(`WITH RECURSIVE tops(id) AS (SELECT value FROM json_each(@tops)),
      sub(id) AS (SELECT id FROM tops UNION SELECT e.node FROM entries e JOIN sub ON e.parent = sub.id)
      SELECT id FROM tops
      UNION SELECT n.id FROM sub JOIN nodes n ON n.id = sub.id WHERE n.kind = 'link'
      UNION SELECT l.id FROM sub JOIN nodes l ON l.link_node = sub.id WHERE l.link_flavour = 'bound'`),
    setHorizon: p('UPDATE changes_horizon SET pruned_to = max(pruned_to, ?)'),
  });
  const st = () => (prepared ??= statements());
  const wal = `${DB_FILE}-wal`;
  let dataVersion: Database.Statement | undefined;
  return {
    seesOthers: true,
    append: (at, origin, changes) => {
      let last = 0;
      let i = 0;
      const args: unknown[] = [];
      for (; i + APPEND_BLOCK <= changes.length; i += APPEND_BLOCK) {
        args.length = 0;
        for (let j = i; j < i + APPEND_BLOCK; j++) {
          const c = changes[j]!;
          args.push(at, origin, c.space, c.kind, c.node ?? null, c.parent ?? null, c.name ?? null);
        }
        last = Number(st().appendBlock.run(args).lastInsertRowid);
      }
      if (i === changes.length) return last;
      const rest = i === 0 ? changes : changes.slice(i);
      return Number(st().append.run(at, origin, JSON.stringify(rest.map((c) => [c.space, c.kind, c.node ?? null, c.parent ?? null, c.name ?? null]))).lastInsertRowid);
    },
    since: (after, limit) => st().since.all(after, limit) as ChangeRecord[],
    dependents: (tops) => (st().dependents.all({ tops: JSON.stringify(tops) }) as Array<{ id: number }>).map((r) => r.id),
    horizon: () => (st().horizon.get() as { h: number }).h,
    head: () => (st().head.get() as { h: number }).h,
    pruneTo: (seq) => {
      st().prune.run(seq);
      st().setHorizon.run(seq);
    },
    externalVersion: () => (dataVersion ??= db.prepare('PRAGMA data_version').pluck()).get() as number,
    watchCommits: (wake) => {
      let w: ReturnType<typeof watch> | undefined;
      try {
        w = watch(dir, { persistent: false }, (_ev, name) => {
          if (name === wal || name === DB_FILE) wake();
        });
        w.on('error', () => w?.close());
      } catch {
        // No inotify (a file system without it, or the watch limit reached): polling still works.
      }
      return () => w?.close();
    },
  };
}
