// SPEC S3, crash safety of `smhfs migrate`: SIGKILL after the copy, and after its verification,
// leaves the folder pointing at the untouched source, which opens and works; the unfinished copy
// is marked so nobody joins it as a library, and the next run replaces it. Both directions
// (SQLite → PostgreSQL, PostgreSQL → SQLite). A real PostgreSQL: fails, never skips, without one.
import t, { type Test } from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { scratch, smhfs, type Run } from './cli-helpers.js';
import { postgresForTest } from './helpers/postgres.js';
import { dump, richLibrary, smhfsRaw } from './helpers/migrate.js';
import { Library } from '../src/store/library.js';
import { expectFsckClean, expectSameFiles, librarySha256 } from './helpers/fsck.js';

const cluster = await postgresForTest(t);

async function ok(t: Test, dir: string, lib: string, args: string[]): Promise<Run> {
  const r = await smhfs(dir, lib, args);
  t.equal(r.code, 0, `smhfs ${args.join(' ')}: ${r.stderr.trim()}`);
  return r;
}

t.test('S3 crash safety: SIGKILL before the switch leaves the source in use; the next run replaces the unfinished copy', async (t) => {
  const { dir, lib } = await richLibrary(t);
  const before = dump(lib);
  const bytesBefore = await librarySha256(lib);
  const { name, url } = await cluster.createDatabase();
  for (const step of ['copied', 'verified']) {
    const r = await smhfsRaw(dir, lib, ['migrate', '--to', url], { SMHFS_TEST_MIGRATE_CRASH: step });
    t.equal(r.signal, 'SIGKILL', `killed after the copy was ${step}`);
    t.ok(existsSync(join(lib, 'library.db')) && !existsSync(join(lib, 'library.pg')), `${step}: the folder still records SQLite`);
    t.same(dump(lib), before, `${step}: the source library is intact and opens`);
    const pending = await cluster.sql<{ value: string }>("SELECT value FROM meta WHERE key = 'migration_pending'", [], name);
    t.equal(pending.length, 1, `${step}: the copy in PostgreSQL is marked unfinished`);
    const s2 = scratch(t);
    const join2 = await smhfs(s2.dir, s2.lib, ['--meta', url, 'init']);
    t.equal(join2.code, 1, `${step}: nobody joins an unfinished copy as a library`);
  }
  const l = Library.open(lib);
  l.space().mkdir('made-after-the-crash');
  l.close();
  const after = dump(lib);
  await ok(t, dir, lib, ['migrate', '--to', url]);
  t.same(dump(lib), after, 'the next run replaced the unfinished copy with the library as it is now');

  // PostgreSQL → SQLite, killed after verification: the folder still records PostgreSQL.
  const r = await smhfsRaw(dir, lib, ['migrate', '--to', 'sqlite:'], { SMHFS_TEST_MIGRATE_CRASH: 'verified' });
  t.equal(r.signal, 'SIGKILL', 'killed after verifying the SQLite copy');
  t.ok(existsSync(join(lib, 'library.pg')) && !existsSync(join(lib, 'library.db')), 'the folder still records PostgreSQL');
  t.same(dump(lib), after, 'the PostgreSQL library is intact and opens');
  await ok(t, dir, lib, ['migrate', '--to', 'sqlite:']);
  t.same(dump(lib), after, 'and moves back on the next run');
  t.notOk(readdirSync(lib).some((n) => n.startsWith('.migrate-')), 'the crashed run\'s scratch folder was cleared');
  // §10: after both crashes and both moves, every earlier file has its bytes and fsck is clean
  expectSameFiles(t, bytesBefore, await librarySha256(lib), 'earlier files');
  await expectFsckClean(t, lib);
});
