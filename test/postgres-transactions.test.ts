// S2: the edges of PgConnection.transaction (src/store/postgres/connection.ts) against a real
// server: serialization failures that never stop end as Busy after the attempts run out, with
// nothing applied and no after-commit work; after-commit work runs only once the commit is done
// (another session already sees it) and never for a commit that failed; a server that is down
// longer than the reconnect budget is MetaUnavailable, in one line, inside or outside a
// transaction, with nothing half-applied, and the same connection works again once it is back;
// a write whose connection dropped is reported, never re-run on a guess.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { isSmhError } from '../src/errors.js';
import { PgConnection, UNIQUE_RETRIES, type RetryEvent } from '../src/store/postgres/connection.js';
import { postgresForTest, type PgCluster } from './helpers/postgres.js';

const cluster: PgCluster = await postgresForTest(t);

async function freshDb(t: Test, opts: Parameters<typeof PgConnection.connectSync>[1] = {}): Promise<{ url: string; conn: PgConnection }> {
  const { url } = await cluster.createDatabase();
  const conn = PgConnection.connectSync(url, opts);
  t.teardown(() => conn.close());
  return { url, conn };
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/**
 * Stop this test file's server from inside a synchronous transaction function (the connection
 * under test blocks the thread, so `await cluster.stop()` cannot run there): pg_ctl, as the user
 * the harness runs the server as, on the cluster's own data dir.
 */
function stopServerSync(): void {
  const args = ['stop', '-D', cluster.dataDir, '-m', 'fast', '-w', '-t', '60', '-s'];
  const pgCtl = `${cluster.bindir}/pg_ctl`;
  const r = process.getuid?.() === 0 ? spawnSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args], { encoding: 'utf8' }) : spawnSync(pgCtl, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pg_ctl stop failed: ${r.stdout}${r.stderr}`);
}

t.test('S2: serialization failures that never stop: Busy after the last attempt, nothing applied, no after-commit work', async (t) => {
  const { url, conn: other } = await freshDb(t);
  other.exec('CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL); INSERT INTO counter VALUES (1, 0)');
  const events: RetryEvent[] = [];
  // the count alone (minRetryMs 0): the time floor has its own test below
  const conn = PgConnection.connectSync(url, { maxAttempts: 3, minRetryMs: 0, onRetry: (e) => events.push(e) });
  t.teardown(() => conn.close());
  let attempts = 0;
  let afterCommits = 0;
  const err = caught(() =>
    conn.transaction((tx) => {
      attempts = tx.attempt;
      conn.query('SELECT n FROM counter WHERE id = 1');
      // another host updates the row this transaction read, every time: 40001 on the update below
      other.transaction(() => other.query('UPDATE counter SET n = n + 1 WHERE id = 1'));
      tx.afterCommit(() => afterCommits++);
      conn.query('UPDATE counter SET n = n + 100 WHERE id = 1');
    }),
  );
  t.ok(isSmhError(err, 'Busy'), String(err));
  t.match((err as Error).message, /busy.*try again/);
  t.equal(attempts, 3, 'ran maxAttempts times');
  t.same(events.map((e) => [e.attempt, e.reason, e.sqlState]), [
    [1, 'serialization', '40001'],
    [2, 'serialization', '40001'],
  ], 'each retry told, with its SQLSTATE');
  t.ok(events.every((e) => e.delayMs >= 0 && e.delayMs < 50), 'back-off within its cap');
  t.equal(afterCommits, 0, 'no after-commit work for a transaction that never committed');
  t.same(conn.query('SELECT n FROM counter'), [{ n: 3 }], "only the other host's three increments: no attempt of ours applied");
  t.equal(conn.inTransaction, false);
  t.same(conn.transaction(() => conn.query('UPDATE counter SET n = n + 100 WHERE id = 1 RETURNING n')), [{ n: 103 }], 'the connection goes on');
});

t.test('S2: serialization failures are re-run for at least minRetryMs, past maxAttempts, before Busy (a loaded server makes each attempt slower)', async (t) => {
  const { url, conn: other } = await freshDb(t);
  other.exec('CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL); INSERT INTO counter VALUES (1, 0)');
  const conn = PgConnection.connectSync(url, { maxAttempts: 3, minRetryMs: 400 });
  t.teardown(() => conn.close());
  let attempts = 0;
  const started = Date.now();
  const err = caught(() =>
    conn.transaction((tx) => {
      attempts = tx.attempt;
      conn.query('SELECT n FROM counter WHERE id = 1');
      other.transaction(() => other.query('UPDATE counter SET n = n + 1 WHERE id = 1'));
      conn.query('UPDATE counter SET n = n + 100 WHERE id = 1');
    }),
  );
  const elapsed = Date.now() - started;
  t.ok(isSmhError(err, 'Busy'), String(err));
  t.ok(attempts > 3, `re-run past maxAttempts while under the floor (${attempts} attempts)`);
  t.ok(elapsed >= 400, `gave up only after the floor (${elapsed} ms)`);
  t.same(conn.query('SELECT n FROM counter'), [{ n: attempts }], "only the other host's increments: no attempt of ours applied");
});

t.test('S2: after-commit work runs once the commit is done (another session sees it), in order, and never for a failed commit', async (t) => {
  const { url, conn } = await freshDb(t);
  // A deferred unique constraint fails at COMMIT, not at the INSERT: the last moment a commit can fail.
  conn.exec('CREATE TABLE t (k INT, CONSTRAINT t_k UNIQUE (k) DEFERRABLE INITIALLY DEFERRED); INSERT INTO t VALUES (1)');
  const other = PgConnection.connectSync(url);
  t.teardown(() => other.close());
  const seenByOther: number[] = [];
  const order: string[] = [];
  conn.transaction((tx) => {
    conn.query('INSERT INTO t VALUES (2)');
    tx.afterCommit(() => {
      order.push('first');
      seenByOther.push(other.query<{ n: number }>('SELECT count(*) AS n FROM t WHERE k = 2')[0]!.n);
    });
    tx.afterCommit(() => order.push('second'));
    t.same(other.query('SELECT count(*) AS n FROM t WHERE k = 2'), [{ n: 0 }], 'not visible before the commit');
    order.push('fn');
  });
  t.same(order, ['fn', 'first', 'second'], 'after fn, in the order registered');
  t.same(seenByOther, [1], 'when it runs, another session already sees the commit');

  let ran = 0;
  let attempts = 0;
  const err = caught(() =>
    conn.transaction((tx) => {
      attempts = tx.attempt;
      conn.query('INSERT INTO t VALUES (1)'); // a duplicate, checked at COMMIT
      tx.afterCommit(() => ran++);
    }),
  );
  t.ok(isSmhError(err), String(err));
  t.match((err as Error).message, /23505/, 'the unique violation at COMMIT, as a domain error');
  // A unique violation may be a concurrent insert that SSI reports as 23505 (retryReason): it is
  // re-run a few times, and one that persists — this one — surfaces.
  t.equal(attempts, UNIQUE_RETRIES, `a violation that persists is re-run ${UNIQUE_RETRIES - 1} times, then surfaces`);
  t.equal(ran, 0, 'no after-commit work for a commit that failed');
  t.same(conn.query('SELECT k FROM t ORDER BY k'), [{ k: 1 }, { k: 2 }], 'nothing of it applied');
  t.equal(conn.inTransaction, false);
});

t.test('S2: the server stopped in the middle of a transaction and down past the budget: MetaUnavailable, nothing applied; back up, the same connection works', async (t) => {
  const { url, conn: setup } = await freshDb(t);
  setup.exec('CREATE TABLE w (v INT)');
  setup.close();
  const reasons: string[] = [];
  const conn = PgConnection.connectSync(url, { reconnectBudgetMs: 1000, onRetry: (e) => reasons.push(e.reason) });
  t.teardown(() => conn.close());
  let attempts = 0;
  let afterCommits = 0;
  t.teardown(() => (cluster.pid() === undefined ? cluster.start() : undefined)); // never leave the file's server down
  const err = caught(() =>
    conn.transaction((tx) => {
      attempts = tx.attempt;
      conn.query('INSERT INTO w VALUES (1)');
      tx.afterCommit(() => afterCommits++);
      if (tx.attempt === 1) stopServerSync();
      conn.query('INSERT INTO w VALUES (2)');
    }),
  );
  t.ok(isSmhError(err, 'MetaUnavailable'), String(err));
  const message = (err as Error).message;
  t.match(message, new RegExp(`^cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${cluster.port}: \\S`), 'one line: where, and what libpq said');
  t.notMatch(message, /\n/, 'one line');
  t.notMatch(message, new RegExp(cluster.password), 'never the password');
  t.equal(attempts, 1, 'the second attempt could not begin: the server stayed down');
  t.same(reasons, ['connection'], 'the lost connection was retried once, then the budget ran out');
  t.equal(afterCommits, 0);

  // Outside a transaction, a read and a write alike: MetaUnavailable while it is down.
  t.ok(isSmhError(caught(() => conn.query('SELECT 1')), 'MetaUnavailable'), 'a read');
  t.ok(isSmhError(caught(() => conn.query('INSERT INTO w VALUES (3)')), 'MetaUnavailable'), 'a write');

  await cluster.start();
  t.same(conn.query('SELECT count(*) AS n FROM w'), [{ n: 0 }], 'nothing of the interrupted transaction, nor of the refused write, was applied');
  t.same(conn.transaction(() => conn.query('INSERT INTO w VALUES (4) RETURNING v')), [{ v: 4 }], 'the same connection works again');
  t.ok(conn.stats.reconnects >= 1);
});

t.test("S2: a write outside a transaction whose connection dropped is reported, not re-run on a guess; a plain read is asked again", async (t) => {
  const { url, conn: killer } = await freshDb(t);
  killer.exec('CREATE TABLE w (v INT)');
  const conn = PgConnection.connectSync(url);
  t.teardown(() => conn.close());
  const terminate = () => {
    const pid = conn.query<{ p: number }>('SELECT pg_backend_pid() AS p')[0]!.p;
    // with a timeout, pg_terminate_backend returns once the session has ended (PostgreSQL 14+)
    t.same(killer.query('SELECT pg_terminate_backend($1, 10000) AS ok', [pid]), [{ ok: true }]);
  };

  terminate();
  const err = caught(() => conn.query('INSERT INTO w VALUES (1)'));
  t.ok(isSmhError(err, 'MetaUnavailable'), String(err));
  t.match((err as Error).message, /connection to PostgreSQL was lost/);
  t.same(killer.query('SELECT count(*) AS n FROM w'), [{ n: 0 }], 'not re-run on the new connection');

  const insert = conn.prepare('INSERT INTO w VALUES ($1)');
  insert.run(2); // the next call reconnects
  terminate();
  t.ok(isSmhError(caught(() => insert.run(3)), 'MetaUnavailable'), 'a prepared write likewise');
  t.same(killer.query('SELECT v FROM w ORDER BY v'), [{ v: 2 }]);

  terminate();
  t.same(conn.query('SELECT count(*) AS n FROM w'), [{ n: 1 }], 'a plain read is asked again on a new connection, invisibly');
  const reconnects = conn.stats.reconnects;
  terminate();
  t.same(conn.prepare('SELECT v FROM w').all(), [{ v: 2 }], 'a prepared read too (prepared again on the new connection)');
  t.equal(conn.stats.reconnects, reconnects + 1);
});
