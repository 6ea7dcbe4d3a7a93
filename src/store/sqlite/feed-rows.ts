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
  // A transaction's changes as plain VALUES rows, numbered in their order: one statement of k rows
  // (prepared once per k, k < APPEND_BLOCK), and a big transaction's in blocks of APPEND_BLOCK.
  // Not one JSON array through json_each: parsing and sorting it cost twice as much for 6,000
  // small rows, and ten times as much for a 'moves' row whose name is itself a JSON array of
  // 2,000 moves (its quotes escaped in the outer array; issue 15).
  const valuesOf = new Map<number, Database.Statement>();
  const values = (k: number): Database.Statement => {
    let s = valuesOf.get(k);
    if (!s) valuesOf.set(k, (s = p(`INSERT INTO changes (at, origin, space, kind, node, parent, name) VALUES ${Array(k).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`)));
    return s;
  };
  const statements = () => ({
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
      for (let i = 0; i < changes.length; i += APPEND_BLOCK) {
        const end = Math.min(changes.length, i + APPEND_BLOCK);
        const args: unknown[] = [];
        for (let j = i; j < end; j++) {
          const c = changes[j]!;
          args.push(at, origin, c.space, c.kind, c.node ?? null, c.parent ?? null, c.name ?? null);
        }
        last = Number(values(end - i).run(args).lastInsertRowid);
      }
      return last;
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
