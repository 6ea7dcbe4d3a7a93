// SPEC §11 through the CLI: `smhfs init --meta postgres://…` makes a library whose metadata lives
// in a real PostgreSQL (started by this file; it fails, never skips, without one), every command
// works on it from the folder's record, a second folder (a second host) joins it and sees the same
// tree and bytes; the start-up check answers in one line, exit 1, within 5 s, for an unreachable
// server, a wrong password and a missing database; D2 holds (no library over a non-empty folder or
// a database holding other tables; the record is never silently re-pointed).
import t, { type Test } from 'tap';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { lines, scratch, smhfs } from './cli-helpers.js';
import { postgresForTest } from './helpers/postgres.js';
import { expectFsckClean, runFsck } from './helpers/fsck.js';

function checks(r: Awaited<ReturnType<typeof runFsck>>): Record<string, { count: number; repaired: number; problem: boolean }> {
  const out: Record<string, { count: number; repaired: number; problem: boolean }> = {};
  for (const f of r.report?.findings ?? []) out[f.check] = { count: f.count, repaired: f.repaired, problem: f.problem };
  return out;
}

const cluster = await postgresForTest(t);

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/** A failed command: exit 1, one line on stderr, within 5 s (plus the CLI's own start-up). */
async function oneLineFailure(t: Test, run: () => Promise<{ code: number; stderr: string }>, pattern: RegExp, what: string): Promise<string> {
  const started = Date.now();
  const r = await run();
  const took = Date.now() - started;
  t.equal(r.code, 1, `${what}: exit 1`);
  const errLines = lines(r.stderr);
  t.equal(errLines.length, 1, `${what}: one line (${r.stderr.trim()})`);
  t.match(errLines[0] ?? '', pattern, `${what}: says why`);
  t.ok(took < 5000 + 2500, `${what}: within 5 s of the check (took ${took} ms, CLI start-up included)`);
  t.notMatch(r.stderr, new RegExp(cluster.password), `${what}: never shows the password`);
  return errLines[0] ?? '';
}

t.test('S1: init --meta makes a PostgreSQL library; every command works from the folder record; a second folder joins it', async (t) => {
  const { name, url } = await cluster.createDatabase();
  const s = scratch(t);
  const shared = join(s.dir, 'shared-blobs');
  const init = await smhfs(s.dir, s.lib, ['--meta', url, '--blobs', shared, 'init']);
  t.equal(init.code, 0, `init: ${init.stderr}`);
  t.match(init.out, /new library smh[0-9a-f]+; metadata in PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/, 'init names the server, password redacted');
  const record = join(s.lib, 'library.pg');
  t.ok(existsSync(record), 'the folder records where its metadata lives');
  t.equal(statSync(record).mode & 0o777, 0o600, 'the record (it may hold a password) is 0600');
  t.notOk(existsSync(join(s.lib, 'library.db')), 'no SQLite database in the folder');
  t.same(
    (await cluster.sql<{ n: string }>("SELECT count(*)::text AS n FROM nodes WHERE kind = 'dir'", [], name))[0]?.n,
    '2',
    'the space root and its bin are rows in PostgreSQL',
  );

  writeFileSync(join(s.dir, 'cat.jpg'), 'meow');
  for (const args of [
    ['mkdir', '-p', 'photos', 'links'],
    ['put', 'cat.jpg', 'photos/cat.jpg'],
    ['ln', 'photos/cat.jpg', 'links/cat'],
    ['mv', 'photos', 'albums'],
  ]) {
    const r = await smhfs(s.dir, s.lib, args);
    t.equal(r.code, 0, `smhfs ${args.join(' ')}: ${r.stderr}`);
  }
  const cat = await smhfs(s.dir, s.lib, ['cat', 'links/cat']);
  t.equal(cat.out, 'meow', 'cat through the bound link after the move (L8)');
  const ls = await smhfs(s.dir, s.lib, ['ls', '-l', 'links']);
  t.match(ls.out, /cat -> albums\/cat\.jpg/, 'the link follows its target');

  // a second host: its own folder, the same database and blob store
  const second = join(s.dir, 'host-b');
  const join2 = await smhfs(s.dir, second, ['--meta', url, 'init']);
  t.equal(join2.code, 0, `init on a database holding a library joins it: ${join2.stderr}`);
  t.match(join2.out, /joined library/, 'it says it joined');
  t.match(join2.out, new RegExp(shared.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'with the blob store the library records');
  const cat2 = await smhfs(s.dir, second, ['cat', 'albums/cat.jpg']);
  t.equal(cat2.out, 'meow', 'the second folder reads the same bytes');
  const rm = await smhfs(s.dir, second, ['rm', 'albums/cat.jpg']);
  t.equal(rm.code, 0, `rm on the second folder: ${rm.stderr}`);
  const ls1 = await smhfs(s.dir, s.lib, ['ls', 'links']);
  t.equal(ls1.out, '', 'the first folder sees the link cascaded into the bin with its file (L12)');
  const list = await smhfs(s.dir, s.lib, ['--json', 'trash', 'list']);
  const items = JSON.parse(list.out) as Array<{ id: number; originalPath: string }>;
  t.same(items.map((i) => i.originalPath), ['albums/cat.jpg'], 'one item in the bin');
  const restore = await smhfs(s.dir, s.lib, ['trash', 'restore', String(items[0]!.id)]);
  t.equal(restore.code, 0, `restore from the first folder: ${restore.stderr}`);
  t.equal((await smhfs(s.dir, second, ['cat', 'links/cat'])).out, 'meow', 'the link is back, seen from the second folder');

  const other = await smhfs(s.dir, second, ['--meta', cluster.url('postgres'), 'ls']);
  t.equal(other.code, 1, 'a --meta naming another database than the record is refused');
  t.match(other.stderr, /is the library at .*, not .*; leave out --meta/, 'saying which one the folder records');
  t.notMatch(other.stderr, new RegExp(cluster.password), 'without the password');
});

t.test('S1/D2: no library over data: a non-empty folder, a database holding other tables', async (t) => {
  const { name, url } = await cluster.createDatabase();
  const s = scratch(t);
  writeFileSync(join(s.dir, 'notes.txt'), 'mine');
  const busy = await smhfs(s.dir, s.dir, ['--meta', url, 'init']);
  t.equal(busy.code, 1, 'init into a non-empty folder is refused');
  t.match(busy.stderr, /not empty/);
  t.notOk(existsSync(join(s.dir, 'library.pg')), 'no record written');
  t.same(await cluster.sql("SELECT 1 FROM pg_tables WHERE schemaname = 'public'", [], name), [], 'and nothing made in the database');

  await cluster.sql('CREATE TABLE invoices (id INT PRIMARY KEY)', [], name);
  const foreign = await smhfs(s.dir, join(s.dir, 'lib'), ['--meta', url, 'init']);
  t.equal(foreign.code, 1, 'init on a database holding other tables is refused');
  t.match(foreign.stderr, /holds other tables/);
  t.same(
    (await cluster.sql<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'", [], name)).map((r) => r.t),
    ['invoices'],
    'the database is left as it was',
  );
  t.notOk(existsSync(join(s.dir, 'lib', 'library.pg')), 'no record written');
});

t.test('S1: the start-up check: unreachable, wrong password, missing database: one line, exit 1, within 5 s', async (t) => {
  const s = scratch(t);
  const port = await freePort();
  await oneLineFailure(
    t,
    () => smhfs(s.dir, join(s.dir, 'a'), ['--meta', `postgres://postgres:${cluster.password}@127.0.0.1:${port}/x`, 'init']),
    /^smhfs: init: .*cannot reach PostgreSQL at 127\.0\.0\.1:\d+: connection refused/,
    'nothing listening',
  );
  await oneLineFailure(
    t,
    () => smhfs(s.dir, join(s.dir, 'b'), ['--meta', cluster.url('postgres', 'postgres', 'not-the-password'), 'init']),
    /refused the password of user "postgres"/,
    'wrong password',
  );
  await oneLineFailure(
    t,
    () => smhfs(s.dir, join(s.dir, 'c'), ['--meta', cluster.url('no_such_db'), 'init']),
    /database "no_such_db" does not exist .*createdb/,
    'missing database',
  );
  t.notOk(existsSync(join(s.dir, 'a')) || existsSync(join(s.dir, 'b')) || existsSync(join(s.dir, 'c')), 'no folder was made');

  // A library whose database is gone afterwards: every command says so the same way.
  const { name, url } = await cluster.createDatabase();
  const lib = join(s.dir, 'lib');
  t.equal((await smhfs(s.dir, lib, ['--meta', url, 'init'])).code, 0, 'made');
  await cluster.sql(`DROP DATABASE ${name}`);
  await oneLineFailure(t, () => smhfs(s.dir, lib, ['ls']), new RegExp(`^smhfs: ls: .*database "${name}" does not exist`), 'ls on a library whose database was dropped');
  t.match(readFileSync(join(lib, 'library.pg'), 'utf8'), /postgres:\/\//, 'the record is kept (the database may come back from a backup)');
});

t.test('D4 on PostgreSQL: fsck of a sound library is clean; rows bent with SQL are named, --repair fixes what loses no byte', async (t) => {
  const { name, url } = await cluster.createDatabase();
  const s = scratch(t);
  t.equal((await smhfs(s.dir, s.lib, ['--meta', url, 'init'])).code, 0, 'made');
  writeFileSync(join(s.dir, 'one'), 'one');
  writeFileSync(join(s.dir, 'four'), 'four');
  for (const args of [
    ['mkdir', 'docs'],
    ['put', 'one', 'docs/one'],
    ['put', 'four', 'four'],
    ['ln', 'docs/one', 'link-to-one'],
    ['ln', 'four', 'link-to-four'],
    ['rm', 'four'],
    ['mkdir', '-p', 'big/sub'],
  ]) {
    const r = await smhfs(s.dir, s.lib, args);
    t.equal(r.code, 0, `${args.join(' ')} ${r.stderr}`);
  }
  const clean = await expectFsckClean(t, s.lib, {}, 'a sound PostgreSQL library');
  t.equal(clean?.counts.files, 2, 'two files (one in the bin)');

  const sql = (text: string, params: unknown[] = []) => cluster.sql<Record<string, unknown>>(text, params, name);
  const id = async (p: string): Promise<number> => {
    let cur = Number((await sql("SELECT root FROM spaces WHERE name = '-'"))[0]!.root);
    for (const seg of p.split('/')) cur = Number((await sql('SELECT node FROM entries WHERE parent = $1 AND name = $2', [cur, seg]))[0]!.node);
    return cur;
  };
  const oneId = await id('docs/one');
  await sql('DELETE FROM entries WHERE node = $1', [oneId]); // nameless
  await sql('INSERT INTO entries (parent, name, node, is_dir) VALUES ($1, $2, $3, 0)', [await id('docs'), 'ghost', 999_999]); // no node
  await sql('UPDATE entries SET is_dir = 1 WHERE node = $1', [await id('link-to-one')]); // wrong flag
  const big = await id('big');
  await sql("UPDATE nodes SET state = 'purging' WHERE id = $1", [big]); // a purge no task will finish
  await sql('DELETE FROM entries WHERE node = $1', [big]);
  await sql('DELETE FROM recycle_links'); // the link cascaded with 'four' loses its record
  await sql("INSERT INTO space_usage_delta (space, nodes, bytes) VALUES ('-', 5, 5)"); // df counters off

  const found = await runFsck(s.lib);
  t.equal(found.code, 4, `problems: exit 4 ${found.stderr}`);
  const c = checks(found);
  for (const check of ['nameless-node', 'entry-without-node', 'entry-dir-flag', 'purge-task', 'detached-link', 'space-usage']) {
    t.ok(c[check]?.problem, `reports ${check}`);
  }
  const repaired = await runFsck(s.lib, {}, ['--repair']);
  t.equal(repaired.code, 1, `all repaired: exit 1 ${repaired.stderr}`);
  const rc = checks(repaired);
  for (const check of ['nameless-node', 'entry-without-node', 'entry-dir-flag', 'purge-task', 'detached-link', 'space-usage']) {
    t.equal(rc[check]?.repaired, rc[check]?.count, `${check} repaired`);
  }
  t.equal((await smhfs(s.dir, s.lib, ['cat', `lost+found/#${oneId}`])).out, 'one', 'the nameless file is in lost+found with its bytes');
  t.equal((await smhfs(s.dir, s.lib, ['cat', 'link-to-one'])).out, 'one', 'and its link still resolves');
  await expectFsckClean(t, s.lib, {}, 'after --repair');
});
