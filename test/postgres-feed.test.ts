// S2: the change feed (src/store/postgres/feed.ts) on a real PostgreSQL: committed changes are
// delivered in sequence order exactly once, rolled-back ones never; sequence order is commit
// order; two writer processes with a listener that loses its connection and a server restarted
// mid-run lose nothing and repeat nothing; a listener behind the pruned horizon resynchronises.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgConnection } from '../src/store/postgres/connection.js';
import { appendChanges, ChangeFeedListener, pruneFeed, type FeedRecord } from '../src/store/postgres/feed.js';
import { migratePostgres } from '../src/store/postgres/schema.js';
import { postgresForTest, type PgCluster } from './helpers/postgres.js';

const cluster: PgCluster = await postgresForTest(t);
const WRITER = join(fileURLToPath(new URL('.', import.meta.url)), 'helpers', 'feed-writer.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function library(t: Test): Promise<{ url: string; conn: PgConnection }> {
  const { url } = await cluster.createDatabase();
  const conn = await PgConnection.open(url);
  t.teardown(() => conn.close());
  migratePostgres(conn, { create: true });
  return { url, conn };
}

/** A started listener that records everything it delivers; closed at teardown. */
async function listen(t: Test, url: string, opts: ConstructorParameters<typeof ChangeFeedListener>[1] = {}) {
  const l = new ChangeFeedListener(url, { reconnectMinMs: 20, reconnectMaxMs: 500, ...opts });
  const got: FeedRecord[] = [];
  const batches: number[] = [];
  const resyncs: Array<{ after: number; horizon: number; head: number }> = [];
  let disconnects = 0;
  l.on('changes', (r) => {
    got.push(...r);
    batches.push(r.length);
  });
  l.on('resync', (i) => resyncs.push(i));
  l.on('disconnected', () => disconnects++);
  l.on('error', () => undefined);
  await l.start();
  t.teardown(() => l.close());
  return { l, got, batches, resyncs, disconnects: () => disconnects };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

t.test('S2: a committed change is delivered with its sequence number, a rolled-back one never', async (t) => {
  const { url, conn } = await library(t);
  const { l, got, batches } = await listen(t, url, { batch: 10 });
  const a = conn.transaction((tx) => appendChanges(conn, tx, 'host-a', [{ space: '-', kind: 'entry', parent: 1, name: 'cat.jpg' }]));
  t.throws(() =>
    conn.transaction((tx) => {
      appendChanges(conn, tx, 'host-a', [{ space: '-', kind: 'entry', parent: 1, name: 'never' }]);
      throw new Error('the rule refused');
    }),
  );
  const many = Array.from({ length: 35 }, (_, i) => ({ space: '-', kind: 'node' as const, node: 100 + i }));
  const b = conn.transaction((tx) => appendChanges(conn, tx, 'host-b', many));
  await until('delivery', () => l.lastSeq >= b);
  t.equal(got.length, 36, 'one plus 35; the rolled-back change is not there');
  t.notOk(got.some((r) => r.name === 'never'));
  t.same(got[0], { seq: a, at: got[0]!.at, origin: 'host-a', space: '-', kind: 'entry', node: null, parent: 1, name: 'cat.jpg' });
  t.same(got.slice(1).map((r) => r.node), many.map((c) => c.node), 'in the order they were appended');
  t.ok(got.every((r, i) => i === 0 || r.seq > got[i - 1]!.seq), 'strictly increasing');
  t.ok(batches.every((n) => n <= 10), `delivered in batches of at most 10: ${batches.join(',')}`);
  t.equal(b - a, 36, 'the rolled-back transaction used one number, which stays a hole');
});

t.test('S2: sequence order is commit order: a later writer waits for the earlier one to commit', async (t) => {
  const { url, conn } = await library(t);
  // Another host appends, then holds its transaction open for 600 ms before committing.
  const holder = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
      const { PgConnection } = await import(${JSON.stringify(new URL('../src/store/postgres/connection.js', import.meta.url).href)});
      const { appendChanges } = await import(${JSON.stringify(new URL('../src/store/postgres/feed.js', import.meta.url).href)});
      const c = PgConnection.connectSync(process.argv[1]);
      const seq = c.transaction((tx) => {
        const s = appendChanges(c, tx, 'slow', [{ space: '-', kind: 'space' }]);
        process.stdout.write('appended ' + s + '\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
        return s;
      });
      process.stdout.write('committed ' + seq + ' ' + Date.now() + '\\n');
      c.close();
      `,
      url,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise((r) => holder.on('close', r));
  await until('the other host to append', () => out.includes('appended'));
  const mine = conn.transaction((tx) => appendChanges(conn, tx, 'fast', [{ space: '-', kind: 'space' }]));
  const myCommit = Date.now();
  await done;
  const [, theirs, theirCommit] = /committed (\d+) (\d+)/.exec(out)!.map(Number);
  t.ok(mine > theirs!, `my number ${mine} comes after theirs ${theirs}`);
  t.ok(myCommit >= theirCommit!, 'and I committed after they did (I waited for the feed lock)');
});

t.test('S2: two writer processes, a listener cut off twice and the server restarted mid-run: every committed change delivered once, in order', async (t) => {
  const { url, conn } = await library(t);
  const { l, got, disconnects } = await listen(t, url);
  const writers = ['w1', 'w2'].map((origin, i) => {
    const child = spawn(process.execPath, [WRITER, url, origin, '150', String(17 + i)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<{ code: number | null; out: string; err: string }>((r) => child.on('close', (code) => r({ code, out, err })));
  });
  const cutListener = async () => {
    await cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'smhfs-feed'");
  };
  await until('some changes', () => got.length > 20);
  await cutListener();
  await until('more changes', () => got.length > 120);
  await cluster.restart('fast'); // every session dies: writers mid-transaction, the listener
  await until('changes after the restart', () => got.length > 250, 60_000);
  await cutListener();
  const results = await Promise.all(writers);
  for (const r of results) t.equal(r.code, 0, `writer exited cleanly ${r.err}`);
  const reports = results.map((r) => JSON.parse(r.out) as { origin: string; committed: number[]; rolledBack: number; stats: { retries: number; reconnects: number } });
  const inTable = conn.query<{ seq: number }>('SELECT seq FROM changes ORDER BY seq').map((r) => r.seq);
  await until('the listener to catch up', () => l.lastSeq === inTable[inTable.length - 1]);
  const delivered = got.map((r) => r.seq);
  t.same(delivered, inTable, 'delivered = committed: none missing, none twice, in order');
  const claimed = reports.flatMap((r) => r.committed).sort((a, b) => a - b);
  t.same(claimed, inTable, 'exactly what the writers were told they committed');
  t.ok(disconnects() >= 3, `the listener reconnected (${disconnects()} disconnects)`);
  t.ok(reports.some((r) => r.stats.reconnects >= 1), 'writers reconnected after the restart');
  t.ok(reports.every((r) => r.rolledBack > 0), 'some transactions were rolled back on purpose');
  t.comment(`changes ${inTable.length}; writer retries ${reports.map((r) => r.stats.retries).join('/')}, reconnects ${reports.map((r) => r.stats.reconnects).join('/')}`);
});

t.test('S2: a listener whose last change was pruned resynchronises whole, then follows again', async (t) => {
  const { url, conn } = await library(t);
  const first = await listen(t, url);
  const s1 = conn.transaction((tx) => appendChanges(conn, tx, 'a', [{ space: '-', kind: 'space' }]));
  await until('first change', () => first.l.lastSeq === s1);
  await first.l.close();
  // While it is away: more changes, then everything older than now is pruned.
  const s2 = conn.transaction((tx) => appendChanges(conn, tx, 'a', [{ space: '-', kind: 'node', node: 5 }]));
  await sleep(5);
  const horizon = pruneFeed(conn, Date.now() * 1000);
  t.equal(horizon, s2);
  const back = await listen(t, url, { after: s1 });
  await until('resync', () => back.resyncs.length === 1);
  t.same(back.resyncs[0], { after: s1, horizon: s2, head: s2 }, 'told to drop every cache; goes on from the head');
  const s3 = conn.transaction((tx) => appendChanges(conn, tx, 'a', [{ space: '-', kind: 'node', node: 6 }]));
  await until('the next change', () => back.l.lastSeq === s3);
  t.same(back.got.map((r) => r.seq), [s3]);
});
