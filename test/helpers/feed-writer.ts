/**
 * A host writing to a PostgreSQL library's change feed, for test/postgres-feed.test.ts: run as
 * `node dist/test/helpers/feed-writer.js URL ORIGIN COUNT SEED`. Each of COUNT transactions appends
 * 1–3 changes named ORIGIN-i-j; about one in ten is rolled back on purpose. After most commits it
 * runs a sequencer pass itself; after the others it leaves the numbering to the listeners (as a
 * host that died right after its commit would). Prints one JSON line at the end: the names of the
 * changes it committed, and its connection's retry counts.
 */
import { PgConnection } from '../../src/store/postgres/connection.js';
import { appendChanges, sequenceChanges, type Change } from '../../src/store/postgres/feed.js';

const [url, origin, countArg, seedArg] = process.argv.slice(2);
let seed = Number(seedArg ?? 1);
const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const conn = PgConnection.connectSync(url!, { applicationName: `feed-writer-${origin}`, reconnectBudgetMs: 30_000 });
const committed: string[] = [];
let rolledBack = 0;
let sequenceFailures = 0;
for (let i = 0; i < Number(countArg); i++) {
  const n = 1 + rnd(3);
  const changes: Change[] = Array.from({ length: n }, (_, j) => ({ space: '-', kind: 'entry', parent: i, name: `${origin}-${i}-${j}` }));
  const abort = rnd(10) === 0;
  try {
    conn.transaction((tx) => {
      appendChanges(conn, tx, origin!, changes);
      block(rnd(3)); // a longer transaction
      if (abort) throw new Error('rolled back on purpose');
    });
    committed.push(...changes.map((c) => c.name!));
  } catch (e) {
    if (!abort) throw e;
    rolledBack++;
    continue;
  }
  if (rnd(5) !== 0) {
    try {
      sequenceChanges(conn);
    } catch {
      sequenceFailures++; // the server went away between the commit and the pass: the listeners number them
    }
  }
}
process.stdout.write(`${JSON.stringify({ origin, committed, rolledBack, sequenceFailures, stats: conn.stats })}\n`);
conn.close();
