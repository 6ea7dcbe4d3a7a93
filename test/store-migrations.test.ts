// Numbered migrations (PRAGMA user_version): a library written by an older smhfs opens, is
// upgraded in place, and keeps its data; the upgrade is recorded.
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Library, DB_FILE } from '../src/store/library.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/store/schema.js';

t.test('a schema-1 library is upgraded to the current version with its tree intact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Build the library with the current code, then rewind it to what schema 1 looked like.
  const lib = Library.open(dir, { create: true });
  lib.space().mkdir('a/b/c', { parents: true });
  lib.space().mkdir('a/d');
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(`DROP TRIGGER nodes_usage_insert; DROP TRIGGER nodes_usage_delete; DROP TRIGGER nodes_usage_update;
    DROP TABLE space_usage; DROP INDEX recycle_items_by_space; DROP INDEX recycle_items_by_age;`); // 3
  db.exec('DROP INDEX entries_subdirs; ALTER TABLE entries DROP COLUMN is_dir;'); // 2
  db.pragma('user_version = 1');
  db.close();

  t.ok(SCHEMA_VERSION >= 2 && MIGRATIONS.length === SCHEMA_VERSION);
  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'user_version records the upgrade');
  const s = again.space();
  t.equal(s.stat('a').nlink, 4, 'nlink of a (2 + b and d) comes from the migrated is_dir column');
  t.equal(s.stat('a/b').nlink, 3);
  t.equal(s.stat('a/b/c').nlink, 2);
  t.same(s.readdir('a').map((e) => e.name), ['b', 'd'], 'the tree is intact');
  s.mkdir('a/e');
  t.equal(s.stat('a').nlink, 5, 'new directories are counted after the upgrade');
});
