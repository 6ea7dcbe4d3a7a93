/**
 * A host writing to a PostgreSQL library's change feed, for test/postgres-feed.test.ts: run as
 * `node dist/test/helpers/feed-writer.js URL ORIGIN COUNT SEED`. Each of COUNT transactions appends
 * 1–3 changes; about one in ten is rolled back on purpose. Prints one JSON line at the end:
 * the sequence numbers of the changes it committed, and its connection's retry counts.
 */
import { PgConnection } from '../../src/store/postgres/connection.js';
import { appendChanges, type Change } from '../../src/store/postgres/feed.js';

const [url, origin, countArg, seedArg] = process.argv.slice(2);
let seed = Number(seedArg ?? 1);
const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const conn = PgConnection.connectSync(url!, { applicationName: `feed-writer-${origin}`, reconnectBudgetMs: 30_000 });
const committed: number[] = [];
let rolledBack = 0;
for (let i = 0; i < Number(countArg); i++) {
  const n = 1 + rnd(3);
  const changes: Change[] = Array.from({ length: n }, (_, j) => ({ space: '-', kind: 'entry', parent: i, name: `${origin}-${i}-${j}` }));
  const abort = rnd(10) === 0;
  try {
    const last = conn.transaction((tx) => {
      const seq = appendChanges(conn, tx, origin!, changes);
      block(rnd(3)); // hold the feed lock a little, as a longer transaction would
      if (abort) throw new Error('rolled back on purpose');
      return seq;
    });
    for (let s = last - n + 1; s <= last; s++) committed.push(s);
  } catch (e) {
    if (!abort) throw e;
    rolledBack++;
  }
}
process.stdout.write(`${JSON.stringify({ origin, committed, rolledBack, stats: conn.stats })}\n`);
conn.close();
