// Numbered migrations (PRAGMA user_version): a library written by an older smhfs opens, is
// upgraded in place, and keeps its data; the upgrade is recorded.
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Library, DB_FILE } from '../src/store/library.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/store/schema.js';

/** Migration 3 (blob queue, holds, owners of leases and doomed rows) taken back. */
const UNDO_3 = `DROP TABLE blob_queue; DROP TABLE blob_holds; DROP INDEX blob_pending_by_owner;
  ALTER TABLE blob_pending DROP COLUMN heartbeat; ALTER TABLE blob_doomed DROP COLUMN owner;`;
/** Migration 4 (D8: sparse layouts) taken back. */
const UNDO_4 = 'ALTER TABLE nodes DROP COLUMN layout;';

t.test('a schema-1 library is upgraded to the current version with its tree intact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Build the library with the current code, then rewind it to what schema 1 looked like.
  const lib = Library.open(dir, { create: true });
  lib.space().mkdir('a/b/c', { parents: true });
  lib.space().mkdir('a/d');
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(UNDO_4);
  db.exec(UNDO_3);
  db.exec('DROP INDEX entries_subdirs; ALTER TABLE entries DROP COLUMN is_dir;');
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

t.test('D3: a schema-2 library gets the blob queue and holds; its doomed and leased keys keep their meaning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  lib.space().mkdir('kept');
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(UNDO_4);
  db.exec(UNDO_3);
  db.pragma('user_version = 2');
  const key = 'a'.repeat(64);
  db.prepare('INSERT INTO blob_doomed (key, created) VALUES (?, ?)').run(key, Date.now() * 1000 - 120_000_000);
  db.close();

  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.same(again.space().readdir('').map((e) => e.name).sort(), ['.trash', 'kept'], 'the tree is intact');
  // A doomed row of an older smhfs has no owner: stale after its minute, it is queued again, and
  // the collector (finding nothing that references it) deletes it — from the records, not a listing.
  const r = await again.collectGarbage();
  t.equal(r.reaped.doomed, 1, 'the ownerless doomed row was reaped');
  t.equal(again.queuedBlobCount(), 0, 'and collected');
});

t.test('D8: a schema-3 library gets nodes.layout; its files stay dense and readable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  const bytes = Buffer.from('dense bytes, stored before sparse files existed');
  const { Readable } = await import('node:stream');
  const ref = await lib.storeBlobFromStream(Readable.from([bytes]));
  lib.space().putFile('f.txt', ref);
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(UNDO_4);
  db.pragma('user_version = 3');
  db.close();

  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  const info = again.space().stat('f.txt');
  t.equal(info.layout, undefined, 'no layout: a dense file');
  t.same(await again.readContent(info, 0, 1000), bytes, 'read back byte for byte');
});
