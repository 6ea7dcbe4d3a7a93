// The PostgreSQL test harness itself (test/helpers/postgres.ts): a real server in a temp dir on a
// free port, fresh databases, restart, clean-up by pid and dir even when the test process dies,
// and a failure (never a skip) that says how to install PostgreSQL when it is missing.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { findPgBindir, postgresForTest, processAlive, startPostgres } from './helpers/postgres.js';

const alive = processAlive;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a cluster of its own: 127.0.0.1 on a free port, socket in the temp dir, fsync off, password auth over TCP', async (t) => {
  const pgc = await postgresForTest(t);
  t.ok(pgc.port > 0 && pgc.port < 65536, `port ${pgc.port}`);
  t.ok(pgc.versionNum >= 130000, `server ${pgc.versionNum}`);
  t.ok(pgc.dir.startsWith('/tmp') || pgc.dir.includes('smhfs-pg-'), pgc.dir);
  t.ok(existsSync(join(pgc.socketDir, `.s.PGSQL.${pgc.port}`)), 'unix socket inside the temp dir');
  const pid = pgc.pid();
  t.ok(pid !== undefined && alive(pid), 'postmaster running');
  if (process.getuid?.() === 0) t.not(statSync(pgc.dataDir).uid, 0, 'data dir owned by the postgres user, not root');

  const settings = await pgc.sql<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','listen_addresses','port') ORDER BY name",
  );
  t.same(Object.fromEntries(settings.map((r) => [r.name, r.setting])), {
    fsync: 'off',
    full_page_writes: 'off',
    listen_addresses: '127.0.0.1',
    port: String(pgc.port),
    synchronous_commit: 'off',
  });

  // Over TCP the password is checked by the server itself.
  const good = new pg.Client({ connectionString: pgc.url('postgres') });
  await good.connect();
  t.equal((await good.query('SELECT 1 AS one')).rows[0].one, 1);
  await good.end();
  const bad = new pg.Client({ connectionString: pgc.url('postgres', 'postgres', 'not-the-password') });
  await t.rejects(bad.connect(), { code: '28P01' }, 'wrong password refused');
});

t.test('fresh databases are new, empty, UTF8 with byte-order collation', async (t) => {
  const pgc = await postgresForTest(t);
  const a = await pgc.createDatabase();
  const b = await pgc.createDatabase();
  t.not(a.name, b.name);
  await pgc.sql('CREATE TABLE only_in_a (x int)', [], a.name);
  const tables = await pgc.sql<{ n: string }>("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'", [], b.name);
  t.equal(Number(tables[0]!.n), 0, 'b does not see a table of a');
  const enc = await pgc.sql<{ e: string; c: string }>('SELECT pg_encoding_to_char(encoding) AS e, datcollate AS c FROM pg_database WHERE datname = $1', [a.name]);
  t.same(enc[0], { e: 'UTF8', c: 'C' });
});

t.test('restart keeps the data and the port; stop and start too', async (t) => {
  const pgc = await postgresForTest(t);
  const { name } = await pgc.createDatabase();
  await pgc.sql('CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)', [], name);
  const port = pgc.port;
  const before = pgc.pid();
  await pgc.restart();
  t.equal(pgc.port, port, 'same port');
  t.not(pgc.pid(), before, 'a new postmaster');
  t.same(await pgc.sql('SELECT x FROM kept', [], name), [{ x: 42 }]);
  await pgc.stop();
  t.equal(pgc.pid(), undefined, 'stopped');
  await t.rejects(pgc.sql('SELECT 1'), 'nothing answers while stopped');
  await pgc.start();
  t.same(await pgc.sql('SELECT x FROM kept', [], name), [{ x: 42 }]);
});

t.test('destroy stops the server it started and removes its dir', async (t) => {
  const pgc = await startPostgres();
  const pid = pgc.pid()!;
  t.ok(alive(pid));
  await pgc.destroy();
  t.notOk(alive(pid), 'postmaster gone');
  t.notOk(existsSync(pgc.dir), 'temp dir removed');
  await pgc.destroy(); // idempotent
});

t.test('a test process killed before its teardown leaves no server behind (the watchdog)', async (t) => {
  const helper = pathToFileURL(join(import.meta.dirname, 'helpers', 'postgres.js')).href;
  const script = `
    const { startPostgres } = await import(${JSON.stringify(helper)});
    const c = await startPostgres({ prefix: 'smhfs-pg-orphan-' });
    process.stdout.write(JSON.stringify({ pid: c.pid(), dir: c.dir }) + '\\n');
    process.kill(process.pid, 'SIGKILL');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const signal = await new Promise((r) => child.on('close', (_code, sig) => r(sig)));
  t.equal(signal, 'SIGKILL', `child died without teardown ${err}`);
  const { pid, dir } = JSON.parse(out.trim()) as { pid: number; dir: string };
  t.ok(pid > 0);
  let gone = false;
  for (let i = 0; i < 300 && !gone; i++) {
    gone = !alive(pid) && !existsSync(dir);
    if (!gone) await sleep(100);
  }
  if (!gone && alive(pid)) process.kill(pid, 'SIGKILL'); // the pid this test caused; keep the machine clean
  t.ok(gone, 'the watchdog stopped the orphaned cluster and removed its dir within 30 s');
});

t.test('PostgreSQL missing: the harness fails with what to install (it never skips)', async (t) => {
  t.match(findPgBindir(), /\/(bin)$/, 'found on this machine');
  const saved = process.env.SMHFS_PG_BINDIR;
  process.env.SMHFS_PG_BINDIR = '/nonexistent/postgresql/bin';
  t.teardown(() => {
    if (saved === undefined) delete process.env.SMHFS_PG_BINDIR;
    else process.env.SMHFS_PG_BINDIR = saved;
  });
  await t.rejects(startPostgres(), /does not hold initdb, pg_ctl, postgres.*apt-get install postgresql/);
});

t.test('PostgreSQL missing: every test file that needs it fails, with the reason, and skips nothing', async (t) => {
  // Every compiled test file that starts a cluster (this one excepted: it would recurse), found
  // by what it imports, so a new PostgreSQL test file is covered without being listed here.
  const dir = import.meta.dirname;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.test.js') && f !== 'postgres-harness.test.js')
    .filter((f) => readFileSync(join(dir, f), 'utf8').includes('/helpers/postgres.js'));
  t.ok(files.length >= 3, `PostgreSQL test files: ${files.join(', ')}`);
  for (const file of files) {
    const r = await new Promise<{ code: number | null; out: string }>((res) => {
      const child = spawn(process.execPath, [join(dir, file)], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, SMHFS_PG_BINDIR: '/nonexistent/postgresql/bin' },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => res({ code, out }));
    });
    t.not(r.code, 0, `${file} exits non-zero`);
    t.match(r.out, /not ok \d+ - a real PostgreSQL is needed and could not start: .*apt-get install postgresql/, `${file} reports a failing test with what to install`);
    t.notMatch(r.out, /# (SKIP|TODO)|\n\s*ok \d+/i, `${file} skips nothing and passes nothing`);
  }
});
