/**
 * The store's work for the mount's READLINK (issue 11: the store's per-request cost), counted in
 * statements, never timed: readlink by node id reads the link's row, its place and its target's
 * place — not the link's nlink or anything else of a whole stat — in one read transaction, and
 * answers what the path form answers (bound and path links, one and two levels deep, a link in
 * the bin). On 9ea0d77 it ran statNode: one statement more (6 for a bound link one level down).
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Library } from '../src/store/library.js';
import { countSql } from './helpers/sql-counter.js';
import { MemoryBlobStore } from './helpers/memory-store.js';

t.test('readlink by id: 5 statements for a bound link one level down, in one transaction, same answers as by path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-readlink-cost-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  t.teardown(() => lib.close());
  const sql = countSql(lib.db);
  const space = lib.space('-');
  space.mkdir('links/deeper', { parents: true });
  space.createFile('links/target.txt');
  const bound = space.symlink('links/l', 'target.txt').id;
  const deep = space.symlink('links/deeper/l', '../target.txt').id;
  const path = space.symlink('links/p', 'no/such/file').id;
  const binned = space.symlink('links/gone', 'target.txt').id;
  space.unlink('links/gone');

  sql.reset();
  t.equal(space.readlink(bound), 'target.txt');
  t.equal(sql.counts.statements, 5, 'row, the link\'s name and its directory\'s, the target\'s name and its directory\'s');
  t.equal(sql.counts.transactions, 1, 'one snapshot');
  sql.reset();
  t.equal(space.readlink(path), 'no/such/file');
  t.equal(sql.counts.statements, 3, 'a path link: the row and the link\'s place');

  for (const [id, p] of [[bound, 'links/l'], [deep, 'links/deeper/l'], [path, 'links/p']] as const) {
    t.equal(space.readlink(id), space.readlink(p), `${p}: by id as by path`);
  }
  t.equal(space.readlink(binned), space.stat(`.trash/${space.trashList()[0]!.viewName}`).link?.readlink, 'a link in the bin reads as its bin view');
  t.throws(() => space.readlink(space.stat('links/target.txt').id), { code: 'InvalidArgument' }, 'a file is no link');
  t.throws(() => space.readlink(987654), { code: 'FileNotFound' }, 'no such node');
});
