// SPEC S3 through the CLI: `smhfs migrate --to postgres://…` moves a SQLite library's metadata
// into a real PostgreSQL (started by this file; it fails, never skips, without one) and
// `--to sqlite:` brings it back. Every node, name, bound and path link, hard link, bin item (with
// its cascaded link), xattr, token and the library secret survive both ways with the same ids;
// the blobs do not move; fsck is clean after each move; the folder switches only after the copy
// is verified. Refused: a target that is not empty (other tables, another library), a library in
// use by another process (on this host, or another host's connection), a target the engine
// already is. A host still pointed at a database migrated away is refused. (Crashes:
// cli-migrate-crash.test.ts.)
import t, { type Test } from 'tap';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch, smhfs, type Run } from './cli-helpers.js';
import { postgresForTest } from './helpers/postgres.js';
import { expectFsckClean, librarySha256 } from './helpers/fsck.js';
import { dump, holder, nodeRows, richLibrary } from './helpers/migrate.js';
import { Library } from '../src/store/library.js';

const cluster = await postgresForTest(t);

async function ok(t: Test, dir: string, lib: string, args: string[]): Promise<Run> {
  const r = await smhfs(dir, lib, args);
  t.equal(r.code, 0, `smhfs ${args.join(' ')}: ${r.stderr.trim()}`);
  return r;
}

function secretsHold(t: Test, dir: string, secret: string, token: string, what: string): void {
  const lib = Library.open(dir);
  try {
    t.ok(lib.checkLibrarySecret(secret), `${what}: the library secret still checks`);
    t.equal(lib.tokens.check(token)?.space, '-', `${what}: the access token still checks`);
  } finally {
    lib.close();
  }
}

t.test('S3: SQLite → PostgreSQL → SQLite keeps every record and id; fsck clean; the folder switches; the old database is refused', async (t) => {
  const { dir, lib, secret, token } = await richLibrary(t);
  const before = dump(lib);
  const bytes = await librarySha256(lib);
  t.equal(Object.keys(before['tree:-'] as object).length, 8, 'the library holds a tree');
  t.equal((before['bin:-'] as Array<{ links: unknown[] }>)[0]?.links.length, 1, 'the bin item carries its cascaded link');

  const sqliteNodes = nodeRows(lib);
  const { name, url } = await cluster.createDatabase();
  const key = (before['tree:-'] as Record<string, { blob: string }>)['photos/cat.jpg']!.blob;
  const busy = await holder(lib, key);
  const refused = await smhfs(dir, lib, ['migrate', '--to', url]);
  t.equal(refused.code, 1, 'a library another process has open: exit 1');
  t.match(refused.stderr, /in use \(process \d+/, `it names the process: ${refused.stderr.trim()}`);
  t.ok(existsSync(join(lib, 'library.db')) && !existsSync(join(lib, 'library.pg')), 'nothing switched');
  await busy.release();
  const m = await smhfs(dir, lib, ['migrate', '--to', url]);
  t.equal(m.code, 0, `migrate --to postgres: ${m.stderr.trim()}`);
  t.match(m.out, /moved from sqlite:.* to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1.*rows copied and compared, fsck of the copy clean/, 'says what moved, password redacted');
  t.ok(existsSync(join(lib, 'library.pg')), 'the folder now records PostgreSQL');
  t.notOk(existsSync(join(lib, 'library.db')), 'library.db is no longer the library');
  t.equal(readdirSync(lib).filter((n) => n.startsWith('library.db.migrated-')).length, 1, 'the old SQLite database is kept, renamed');
  t.notOk(readdirSync(lib).some((n) => n.startsWith('.migrate-')), 'no scratch folder left');
  t.same(dump(lib), before, 'every node, name, link, hard link, bin item, xattr, token and space, ids included');
  t.same(await librarySha256(lib), bytes, 'every file reads the same bytes (the blobs did not move)');
  secretsHold(t, lib, secret, token, 'on PostgreSQL');
  await expectFsckClean(t, lib, {}, 'fsck on PostgreSQL');
  t.equal((await cluster.sql<{ n: string }>('SELECT count(*)::text AS n FROM nodes', [], name))[0]?.n, String(sqliteNodes), 'as many nodes in PostgreSQL as there were in SQLite');

  // The library works on PostgreSQL: a restore brings the file and its cascaded link back, new ids continue.
  const binned = (before['bin:-'] as Array<{ id: number }>)[0]!.id;
  const onPg = Library.open(lib);
  try {
    onPg.space().restore(binned);
    t.match(onPg.space().readlink('links/gone'), /photos\/gone\.txt$/, 'restore on PostgreSQL brings the bound link back with its file');
    onPg.space().putFile('new.txt', await onPg.storeBlobFromFile(join(dir, 'cat.jpg')));
    await onPg.idle();
  } finally {
    onPg.close();
  }
  const maxBefore = Math.max(...Object.values(before['tree:-'] as Record<string, { id: number }>).map((e) => e.id));
  const afterPg = dump(lib);
  t.ok((afterPg['tree:-'] as Record<string, { id: number }>)['new.txt']!.id > maxBefore, 'a new node gets a new id (the counter came over)');

  // A second host joins the PostgreSQL library, then the library goes back to SQLite.
  const hostB = join(dir, 'host-b');
  await ok(t, dir, hostB, ['--meta', url, 'init']);
  const busyB = await holder(hostB, key);
  const back = await smhfs(dir, lib, ['migrate', '--to', 'sqlite:']);
  t.equal(back.code, 1, 'a library another host has open: exit 1');
  t.match(back.stderr, /in use \(1 other smhfs connection/, `it says so: ${back.stderr.trim()}`);
  t.ok(existsSync(join(lib, 'library.pg')) && !existsSync(join(lib, 'library.db')), 'nothing switched');
  await busyB.release();

  const back2 = await smhfs(dir, lib, ['migrate', '--to', `sqlite:${lib}`]);
  t.equal(back2.code, 0, `migrate --to sqlite: ${back2.stderr.trim()}`);
  t.ok(existsSync(join(lib, 'library.db')), 'library.db is the library again');
  t.notOk(existsSync(join(lib, 'library.pg')), 'the PostgreSQL record was renamed away');
  t.same(dump(lib), afterPg, 'everything came back to SQLite, ids included');
  secretsHold(t, lib, secret, token, 'back on SQLite');
  await expectFsckClean(t, lib, {}, 'fsck back on SQLite');
  const hostBls = await smhfs(dir, hostB, ['ls']);
  t.equal(hostBls.code, 1, 'a host still pointed at the old database is refused');
  t.match(hostBls.stderr, /moved to sqlite:.*smhfs migrate/, `it says where the library went: ${hostBls.stderr.trim()}`);
  t.same(
    (await cluster.sql<{ value: string }>("SELECT value FROM meta WHERE key = 'migrated_to'", [], name)).length,
    1,
    'the old PostgreSQL database is marked as migrated',
  );
});

t.test('S3 refusals: a target that is not empty, the engine it already is, another SQLite place; nothing changes', async (t) => {
  const { dir, lib } = await richLibrary(t);
  const before = dump(lib);
  const other = await cluster.createDatabase();
  await cluster.sql('CREATE TABLE invoices (id int)', [], other.name);
  const r1 = await smhfs(dir, lib, ['migrate', '--to', other.url]);
  t.equal(r1.code, 1, 'a database holding other tables: exit 1');
  t.match(r1.stderr, /holds other tables/, r1.stderr.trim());
  t.same(await cluster.sql("SELECT to_regclass('nodes')::text AS t", [], other.name), [{ t: null }], 'nothing was created there');

  const taken = await cluster.createDatabase();
  const s2 = scratch(t);
  await ok(t, s2.dir, s2.lib, ['--meta', taken.url, 'init']);
  const r2 = await smhfs(dir, lib, ['migrate', '--to', taken.url]);
  t.equal(r2.code, 1, 'a database holding a library: exit 1');
  t.match(r2.stderr, /already holds an smhfs library/, r2.stderr.trim());
  t.equal((await cluster.sql<{ n: string }>('SELECT count(*)::text AS n FROM nodes', [], taken.name))[0]?.n, '2', 'its library is untouched');

  const r3 = await smhfs(dir, lib, ['migrate', '--to', 'sqlite:']);
  t.equal(r3.code, 1, 'SQLite to SQLite: exit 1');
  t.match(r3.stderr, /already keeps its metadata in SQLite/, r3.stderr.trim());
  const r4 = await smhfs(dir, lib, ['migrate', '--to', 'mysql://x@y/z']);
  t.not(r4.code, 0, 'an engine smhfs does not have is refused');
  t.ok(existsSync(join(lib, 'library.db')) && !existsSync(join(lib, 'library.pg')), 'the folder still records SQLite');
  t.same(dump(lib), before, 'the library is unchanged');
});

