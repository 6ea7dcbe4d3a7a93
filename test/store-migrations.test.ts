// Numbered migrations (PRAGMA user_version): a library written by an older smhfs opens, is
// upgraded in place, and keeps its data; the upgrade is recorded.
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Library, DB_FILE } from '../src/store/library.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/store/sqlite/schema.js';
import { listFiles, readerOf } from './helpers/store.js';

/** Schema 1–3 had no statfs counters and no bin indexes (undoes migration 4). */
const SCHEMA_3_USAGE = `
  DROP TRIGGER nodes_usage_insert; DROP TRIGGER nodes_usage_delete; DROP TRIGGER nodes_usage_update;
  DROP TABLE space_usage; DROP INDEX recycle_items_by_space; DROP INDEX recycle_items_by_age;
`;

/** Schema 1–2 kept access tokens and the library secret in clear (undoes migration 3). */
const SCHEMA_2_TOKENS = `
  DROP TABLE tokens;
  CREATE TABLE tokens (token TEXT PRIMARY KEY, space TEXT NOT NULL, grants TEXT NOT NULL, user_id TEXT,
    expires INTEGER NOT NULL, created INTEGER NOT NULL);
  DELETE FROM meta WHERE key = 'library_secret_sha256';
`;

/** Schema 1–4 had no blob queue, no holds, no owners of leases and doomed rows (undoes migration 5). */
const SCHEMA_4_SAFETY = `DROP TABLE blob_queue; DROP TABLE blob_holds; DROP INDEX blob_pending_by_owner;
  ALTER TABLE blob_pending DROP COLUMN heartbeat; ALTER TABLE blob_doomed DROP COLUMN owner;`;
/** Schema 1–5 had no sparse layouts (undoes migration 6, D8). */
const SCHEMA_5_LAYOUT = 'ALTER TABLE nodes DROP COLUMN layout;';
/** Before the bound-link counters (undoes migration 10, issue 11). */
const BEFORE_BOUND_COUNTS = 'DROP TRIGGER nodes_bound_insert; DROP TRIGGER nodes_bound_delete; DROP TRIGGER nodes_bound_update; DROP TABLE bound_links;';
/** Before the change feed (undoes its migration, H4, and the later ones). */
const BEFORE_FEED = `${BEFORE_BOUND_COUNTS} DROP TABLE changes; DROP TABLE changes_horizon;`;
/** Schema 1–8 kept µs times only (undoes migration 9, M2). */
const SCHEMA_8_TIMES = 'ALTER TABLE nodes DROP COLUMN atime_ns; ALTER TABLE nodes DROP COLUMN mtime_ns; ALTER TABLE nodes DROP COLUMN ctime_ns; ALTER TABLE nodes DROP COLUMN btime_ns;';
/** Schema 1–6 gave a node one name: entries.node UNIQUE, no seq (undoes migration 7, L17). */
const SCHEMA_6_NAMES = `
  CREATE TABLE entries_v6 (parent INTEGER NOT NULL, name TEXT NOT NULL, node INTEGER NOT NULL UNIQUE,
    is_dir INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (parent, name)) WITHOUT ROWID;
  INSERT INTO entries_v6 (parent, name, node, is_dir) SELECT parent, name, node, is_dir FROM entries;
  DROP TABLE entries; ALTER TABLE entries_v6 RENAME TO entries; CREATE INDEX entries_subdirs ON entries(parent, is_dir);
`;

t.test('a schema-1 library is upgraded to the current version with its tree intact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Build the library with the current code, then rewind it to what schema 1 looked like.
  const lib = Library.open(dir, { create: true });
  lib.space().mkdir('a/b/c', { parents: true });
  lib.space().mkdir('a/d');
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(SCHEMA_8_TIMES);
  db.exec(BEFORE_FEED);
  db.exec(SCHEMA_6_NAMES);
  db.exec(SCHEMA_5_LAYOUT);
  db.exec(SCHEMA_4_SAFETY);
  db.exec(SCHEMA_3_USAGE);
  db.exec(SCHEMA_2_TOKENS);
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

t.test('migration 3: tokens and the library secret of an older library are kept as hashes only, and still work', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  Library.open(dir, { create: true }).close();
  const token = 'Zm9vYmFyLXRva2VuLW9mLWFuLW9sZGVyLWxpYnJhcnk';
  const secret = '0123456789abcdef0123456789abcdef0123456789abcdef';
  const db = new Database(join(dir, DB_FILE));
  db.exec(SCHEMA_8_TIMES);
  db.exec(BEFORE_FEED);
  db.exec(SCHEMA_6_NAMES);
  db.exec(SCHEMA_5_LAYOUT);
  db.exec(SCHEMA_4_SAFETY);
  db.exec(SCHEMA_3_USAGE);
  db.exec(SCHEMA_2_TOKENS);
  const now = Date.now() * 1000;
  db.prepare('INSERT INTO tokens VALUES (?, ?, ?, NULL, ?, ?)').run(token, '-', '["admin"]', now + 3600e6, now);
  db.prepare("INSERT INTO meta (key, value) VALUES ('library_secret', ?)").run(secret);
  db.pragma('user_version = 2');
  db.close();

  const lib = Library.open(dir);
  t.equal(lib.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.same(lib.tokens.check(token)?.grants, ['admin'], 'the old token still works');
  t.equal(lib.checkLibrarySecret(secret), true, 'the old secret still works');
  t.equal(lib.checkLibrarySecret(secret + 'x'), false);
  t.equal(lib.tokens.list().length, 1);
  lib.close();
  for (const f of listFiles(dir)) {
    const bytes = (await import('node:fs')).readFileSync(f);
    t.equal(bytes.includes(token), false, `${f.slice(dir.length)} holds no token in clear`);
    t.equal(bytes.includes(secret), false, `${f.slice(dir.length)} holds no secret in clear`);
  }
});

t.test('D3: a schema-4 library gets the blob queue and holds; its doomed and leased keys keep their meaning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  lib.space().mkdir('kept');
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(SCHEMA_8_TIMES);
  db.exec(BEFORE_FEED);
  db.exec(SCHEMA_6_NAMES);
  db.exec(SCHEMA_5_LAYOUT);
  db.exec(SCHEMA_4_SAFETY);
  db.pragma('user_version = 4');
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

t.test('D8: a schema-5 library gets nodes.layout; its files stay dense and readable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  const bytes = Buffer.from('dense bytes, stored before sparse files existed');
  const { Readable } = await import('node:stream');
  const ref = await lib.storeBlobFromStream(Readable.from([bytes]));
  lib.space().putFile('f.txt', ref);
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(SCHEMA_8_TIMES);
  db.exec(BEFORE_FEED);
  db.exec(SCHEMA_6_NAMES);
  db.exec(SCHEMA_5_LAYOUT);
  db.pragma('user_version = 5');
  db.close();

  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  const info = again.space().stat('f.txt');
  t.equal(info.layout, undefined, 'no layout: a dense file');
  t.same(await readerOf(again).readContent(info, 0, 1000), bytes, 'read back byte for byte');
});

t.test('L17: a schema-6 library (one name per node) is upgraded to several names per node, ordered by age', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  const { Readable } = await import('node:stream');
  const ref = await lib.storeBlobFromStream(Readable.from([Buffer.from('one name')]));
  lib.space().mkdir('d');
  lib.space().putFile('d/f.txt', ref);
  lib.space().createLink('l', 'd/f.txt');
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(SCHEMA_8_TIMES);
  db.exec(BEFORE_FEED);
  db.exec(SCHEMA_6_NAMES);
  db.pragma('user_version = 6');
  t.throws(() => db.prepare("INSERT INTO entries (parent, name, node) SELECT parent, 'x', node FROM entries WHERE name = 'f.txt'").run(), /UNIQUE/, 'schema 6: one name per node');
  db.close();

  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.same(again.db.prepare('SELECT DISTINCT seq FROM entries').all(), [{ seq: 1 }], 'every existing name is its node\'s first');
  const s = again.space();
  t.equal(s.stat('d/f.txt').nlink, 1);
  s.link('d/f.txt', 'g.txt');
  t.equal(s.stat('g.txt').nlink, 2, 'a second name after the upgrade');
  t.equal(s.readlink('l'), 'd/f.txt', 'the bound link names the oldest name');
  t.same(s.readdir('d').map((e) => e.name), ['f.txt'], 'the tree is intact');
  t.equal(s.stat('d').nlink, 2, 'is_dir survived the rebuild');
});

t.test('H4: a library from before the change feed gets an empty feed; its first write is numbered after the horizon', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  lib.space().mkdir('kept');
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(SCHEMA_8_TIMES);
  db.exec(BEFORE_FEED);
  db.pragma('user_version = 7');
  db.close();

  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.same(again.changes.read(0), { records: [], behind: false, horizon: 0, head: 0 }, 'an empty feed');
  const kept = again.space().stat('kept');
  again.space().rename('kept', 'moved');
  const { records } = again.changes.read(0);
  t.ok(records.length > 0 && records[0]!.seq === 1, 'numbered from 1');
  t.ok(records.some((r) => r.kind === 'entry' && r.name === 'kept' && r.node === kept.id), 'the old name is recorded');
  t.ok(records.some((r) => r.kind === 'entry' && r.name === 'moved' && r.node === kept.id), 'the new name is recorded');
});

t.test('M2: a schema-8 library gets the nanoseconds below each time, 0; they keep what utimensat gives from then on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  const made = lib.space().createFile('kept', { mode: 0o644 });
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(BEFORE_BOUND_COUNTS);
  db.exec(SCHEMA_8_TIMES);
  db.pragma('user_version = 8');
  db.close();

  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  const kept = again.space().stat('kept');
  t.same([kept.atimeUs, kept.mtimeUs, kept.ctimeUs, kept.birthtimeUs], [made.atimeUs, made.mtimeUs, made.ctimeUs, made.birthtimeUs], 'the µs times are kept');
  t.same([kept.atimeNsRem, kept.mtimeNsRem, kept.ctimeNsRem, kept.birthtimeNsRem], [0, 0, 0, 0], 'with no nanoseconds below them');
  const set = again.space().setattr('kept', { mtimeUs: kept.mtimeUs, mtimeNsRem: 999 });
  t.equal(set.mtimeNsRem, 999, 'and take nanoseconds from then on');
  t.throws(() => again.db.exec('UPDATE nodes SET atime_ns = 1000'), 'the column refuses a remainder of 1000 ns or more');
});

t.test('migration 10: a library from before the bound-link counters gets them counted from its links', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  const space = lib.space();
  const f = space.createFile('f.txt').id;
  const g = space.createFile('g.txt').id;
  for (let i = 0; i < 5; i++) space.symlink(`lf${i}`, 'f.txt');
  space.symlink('lg', 'g.txt');
  space.symlink('path-link', 'nowhere');
  space.unlink('lf0'); // a link in the bin still counts: it may come back
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  db.exec(BEFORE_BOUND_COUNTS);
  db.pragma('user_version = 9');
  db.close();

  const again = Library.open(dir);
  t.teardown(() => again.close());
  t.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.same(again.db.prepare('SELECT target, n FROM bound_links ORDER BY target').all(), [
    { target: f, n: 5 },
    { target: g, n: 1 },
  ], 'counted from the links, the one in the bin included');
  again.space().symlink('lg2', 'g.txt');
  t.same(again.db.prepare('SELECT n FROM bound_links WHERE target = ?').get(g), { n: 2 }, 'and kept from then on');
});
