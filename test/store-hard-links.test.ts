/**
 * Hard links in the store (SPEC L17–L19, issue 12), on SQLite without FUSE: link(2) adds a name
 * to a node (st_nlink counts them), removing one of several names removes only that name (L18),
 * a bound link's readlink names the oldest surviving name (L19), and the recycle bin, restore,
 * purge, copy and fsck see nodes with several names. Decisions where the SPEC is silent:
 * native-notes/hard-links.md.
 */
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { checkLibrary } from '../src/store/fsck.js';
import { DB_FILE, Library } from '../src/store/library.js';
import { expectCode, openLib, put, read, tempDir } from './helpers/store.js';
import { expectFsckClean } from './helpers/fsck.js';

const SN = 'SameNameDirectoryOrFileExists' as const;

t.test('L17: link(2) adds a name to a file; st_nlink counts the names; both names are one node', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  await put(lib, space, 'a.txt', 'alpha');
  const before = space.stat('a.txt');
  t.equal(before.nlink, 1, 'one name: nlink 1');
  await new Promise((r) => setTimeout(r, 2));
  const info = space.link('a.txt', 'd/b.txt');
  t.equal(info.nlink, 2, 'link(2) answers the node with nlink 2');
  t.equal(info.path, 'd/b.txt', 'at its new name');
  const a = space.stat('a.txt');
  const b = space.stat('d/b.txt');
  t.equal(a.id, b.id, 'the same node (inode) under both names');
  t.equal(a.nlink, 2);
  t.equal(b.nlink, 2);
  t.ok(a.ctimeUs > before.ctimeUs, 'POSIX: link(2) changes the file ctime');
  t.equal(a.mtimeUs, before.mtimeUs, 'but not its mtime');
  t.ok(space.stat('d').mtimeUs > before.mtimeUs, "and the new name's directory mtime");
  t.same(space.readdir('d').map((e) => [e.name, e.info.id]), [['b.txt', a.id]], 'the directory lists the new name');
  t.equal(await read(lib, space, 'd/b.txt'), 'alpha', 'one content');
  space.link('d/b.txt', 'c.txt');
  t.equal(space.stat('c.txt').nlink, 3, 'a third name');
  t.equal(space.statfs().files, before.nlink + 3, 'statfs counts nodes, not names (root, bin, d, the file)');
});

t.test('L17: links, special files may be linked; a directory, the bin, a taken name may not', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'f.txt', 'x');
  space.mkdir('d');
  space.symlink('sym', 'f.txt');
  space.symlink('dangling', 'nowhere');
  space.mknod('fifo', { mode: 0o010644, rdev: 0, uid: 0, gid: 0 });
  t.equal(space.link('sym', 'sym2').kind, 'link', 'a bound link');
  t.equal(space.readlink('sym2'), 'f.txt', 'reads like the original');
  t.equal(space.link('dangling', 'dangling2').nlink, 2, 'a dangling path link: link(2) does not follow it');
  t.equal(space.link('fifo', 'fifo2').kind, 'special', 'a fifo');
  await expectCode(t, () => space.link('d', 'd2'), 'NotPermitted', 'a directory: EPERM');
  await expectCode(t, () => space.link('', 'root2'), 'NotPermitted', 'the root: EPERM');
  await expectCode(t, () => space.link('f.txt', 'd'), SN, 'onto a directory name: EEXIST');
  await expectCode(t, () => space.link('f.txt', 'sym'), SN, 'onto any existing name: EEXIST');
  await expectCode(t, () => space.link('d', 'f.txt'), SN, 'EEXIST comes before EPERM, as in the kernel');
  await expectCode(t, () => space.link('nope', 'x'), 'FileNotFound', 'a missing source: ENOENT');
  await expectCode(t, () => space.link('f.txt', 'no/x'), 'DirectoryNotFound', 'a missing directory: ENOENT');
  await expectCode(t, () => space.link('f.txt', 'f.txt/x'), 'NotADirectory', 'through a file: ENOTDIR');
  await expectCode(t, () => space.link('f.txt', '.trash'), 'ReadOnly', 'the bin name: EPERM');
  const { recycledItemId } = space.remove('d', { recursive: true });
  const view = space.trashItem(recycledItemId!).viewName;
  await expectCode(t, () => space.link('f.txt', `.trash/${view}/x`), 'ReadOnly', 'into .trash: EPERM (T3)');
  await put(lib, space, 'g.txt', 'gone');
  const gone = space.unlink('g.txt').recycledItemId!;
  await expectCode(t, () => space.link(`.trash/${space.trashItem(gone).viewName}`, 'back.txt'), 'ReadOnly', 'out of .trash: EPERM (restore it instead)');
  t.same(
    space.readdir('').map((e) => e.name).sort(),
    ['.trash', 'dangling', 'dangling2', 'f.txt', 'fifo', 'fifo2', 'sym', 'sym2'],
    'nothing else was made',
  );
});

t.test('L17: linkAt by ids, and across spaces EXDEV', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  const f = (await put(lib, space, 'f.txt', 'x')).info;
  const d = space.stat('d');
  const info = space.linkAt(f.id, d.id, 'g.txt');
  t.equal(info.nlink, 2);
  t.equal(space.stat('d/g.txt').id, f.id);
  await expectCode(t, () => space.linkAt(f.id, d.id, 'g.txt'), SN, 'a taken name');
  await expectCode(t, () => space.linkAt(d.id, space.stat('').id, 'd2'), 'NotPermitted', 'a directory');
  await expectCode(t, () => space.linkAt(f.id, 999_999, 'x'), 'DirectoryNotFound', 'a missing directory');
  await expectCode(t, () => space.linkAt(f.id, d.id, 'a/b'), 'InvalidFileName', 'a name that is no name');
  const other = lib.createSpace('other');
  other.mkdir('o');
  await expectCode(t, () => other.linkAt(f.id, other.stat('o').id, 'x'), 'CrossSpace', 'a node of another space: EXDEV');
  t.equal(space.stat('f.txt').nlink, 2, 'unchanged');
});

t.test('L18: removing one of several names removes only that name: nothing goes to the bin, bound links stay', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'a.txt', 'alpha');
  space.link('a.txt', 'b.txt');
  space.createLink('l', 'a.txt');
  const id = space.stat('a.txt').id;
  const before = space.stat('a.txt').ctimeUs;
  await new Promise((r) => setTimeout(r, 2));
  t.same(space.unlink('a.txt'), { namesLeft: 1 }, 'unlink(2) of one name makes no recycle item');
  t.same(space.trashList(), [], 'the bin is empty');
  const b = space.stat('b.txt');
  t.equal(b.id, id, 'the node lives on');
  t.equal(b.nlink, 1, 'with one name');
  t.ok(b.ctimeUs > before, 'POSIX: unlink(2) changes the ctime of a file that keeps names');
  t.equal(await read(lib, space, 'l'), 'alpha', 'the bound link still reads the content');
  t.equal(space.readlink('l'), 'b.txt', 'and names the surviving name');
  t.equal(space.stat('l').link?.targetNode, id, 'still bound to the node');

  // the last name: a delete (T1, L12)
  const gone = space.unlink('b.txt').recycledItemId!;
  const item = space.trashItem(gone);
  t.equal(item.originalPath, 'b.txt', 'the last name goes to the bin');
  t.same(item.links.map((l) => l.originalPath), ['l'], 'with its bound link (L12)');
  await expectCode(t, () => space.stat('l'), 'FileNotFound', 'the link went along');
  const back = space.restore(gone);
  t.same(back.path, ['b.txt'], 'restore brings back the last name only');
  t.equal(space.readlink('l'), 'b.txt', 'and the link');
  await expectCode(t, () => space.stat('a.txt'), 'FileNotFound', 'the name removed earlier stays removed');
});

t.test('L18: SMH/CLI delete of one name, to the bin or for good, removes that name only', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'a.txt', 'alpha');
  space.link('a.txt', 'b.txt');
  space.link('a.txt', 'c.txt');
  t.same(space.remove('a.txt'), { namesLeft: 2 }, 'a delete of one name: no item');
  t.same(space.remove('b.txt', { permanent: true }), { namesLeft: 1 }, 'a permanent delete of one name: nothing is lost');
  t.equal(await read(lib, space, 'c.txt'), 'alpha');
  t.equal(space.stat('c.txt').nlink, 1);
  t.same(space.trashList(), []);
  const last = space.remove('c.txt', { kind: 'file' });
  t.type(last.recycledItemId, 'number', 'the last name goes to the bin (T1)');
});

t.test('L18: rename(2) over one of several names removes only that name; rename(a, b) of two names of one node is a no-op', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'a.txt', 'alpha');
  space.link('a.txt', 'b.txt');
  space.createLink('l', 'a.txt');
  await put(lib, space, 'new.txt', 'newer');
  const n = space.stat('a.txt').id;
  space.rename('new.txt', 'b.txt');
  t.same(space.trashList(), [], 'nothing to the bin: the content lives on as a.txt');
  t.equal(await read(lib, space, 'b.txt'), 'newer', 'b.txt is the newcomer');
  t.equal(await read(lib, space, 'a.txt'), 'alpha', 'a.txt keeps the old node');
  t.equal(space.stat('a.txt').nlink, 1);
  t.equal(space.stat('l').link?.targetNode, n, 'links bound to the node stay bound to it (L18, not rebound)');

  space.link('a.txt', 'a2.txt');
  const info = space.rename('a.txt', 'a2.txt');
  t.equal(info.id, n, 'POSIX: rename of a name onto another name of the same node succeeds');
  t.same(space.readdir('').map((e) => e.name).sort(), ['.trash', 'a.txt', 'a2.txt', 'b.txt', 'l'], '…and does nothing');
  t.equal(space.stat('a.txt').nlink, 2);

  // rename of one name moves that name only
  space.mkdir('d');
  const moved = space.rename('a2.txt', 'd/a3.txt');
  t.equal(moved.path, 'd/a3.txt', 'rename answers the moved name');
  t.equal(space.stat('a.txt').id, n);
  t.equal(space.stat('d/a3.txt').id, n);
  t.equal(space.stat('a.txt').nlink, 2, 'still two names');
});

t.test('L19: a bound link names the oldest surviving name, and follows to the next one when it goes', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('x');
  space.mkdir('y');
  await put(lib, space, 'x/first.txt', 'one');
  space.link('x/first.txt', 'y/second.txt');
  space.link('x/first.txt', 'third.txt');
  space.createLink('l', 'y/second.txt');
  t.equal(space.readlink('l'), 'x/first.txt', 'made through the second name, it names the oldest');
  t.equal(space.stat('l').link?.targetPath, 'x/first.txt', 'so does its target path (SMH linkTo)');
  space.rename('x/first.txt', 'x/renamed.txt');
  t.equal(space.readlink('l'), 'y/second.txt', 'a renamed name is the newest: readlink follows to the next one');
  space.unlink('y/second.txt');
  t.equal(space.readlink('l'), 'third.txt', 'removed: the next oldest');
  space.unlink('third.txt');
  t.equal(space.readlink('l'), 'x/renamed.txt', 'removed: the last one left');
  t.equal(await read(lib, space, 'l'), 'one');
});

t.test('L19: an overwrite through any name changes the content seen through every name', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'a.txt', 'old');
  space.link('a.txt', 'b.txt');
  space.createLink('l', 'a.txt');
  const placed = await put(lib, space, 'b.txt', 'uploaded', { conflict: 'overwrite' });
  t.equal(placed.info.id, space.stat('a.txt').id, 'an upload with overwrite keeps the node');
  t.equal(await read(lib, space, 'a.txt'), 'uploaded', 'seen through the other name');
  t.equal(await read(lib, space, 'l'), 'uploaded', 'and through the bound link');
  t.equal(space.stat('a.txt').nlink, 2, 'both names stay');
  const ref = await lib.storeBlobFromStream((await import('node:stream')).Readable.from(Buffer.from('written')));
  space.setContent(space.stat('b.txt').id, ref);
  t.equal(await read(lib, space, 'a.txt'), 'written', 'a content commit through the mount (O_TRUNC + write) likewise');
  t.equal(space.trashList().length, 1, 'the upload kept the old content in the bin (C3), once');
});

t.test('T1/T4/L13/L15: the bin and purge with a node that has names inside and outside a deleted directory', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  await put(lib, space, 'd/in.txt', 'shared');
  space.link('d/in.txt', 'out.txt');
  space.createLink('l', 'out.txt');
  const id = space.stat('out.txt').id;
  const dirItem = space.remove('d', { recursive: true }).recycledItemId!;
  t.equal(space.stat('out.txt').id, id, 'the name outside stays live');
  t.equal(space.readlink('l'), 'out.txt', 'the link names the live name, though the older one is in the bin');
  const restored = space.restore(dirItem);
  t.same(restored.path, ['d'], 'restore of the directory');
  t.equal(space.stat('d/in.txt').id, id, 'brings back the name inside');
  t.equal(space.readlink('l'), 'd/in.txt', 'the oldest surviving name again');

  const again = space.remove('d', { recursive: true }).recycledItemId!;
  const { taskId } = space.purge(again);
  if (taskId !== undefined) await lib.runTasks();
  t.equal(space.stat('out.txt').id, id, 'purging the directory leaves the node under its other name');
  t.equal(space.stat('out.txt').nlink, 1);
  t.equal(await read(lib, space, 'l'), 'shared', 'content and link intact');

  space.mkdir('e');
  space.link('out.txt', 'e/in2.txt');
  space.remove('e', { recursive: true, permanent: true });
  await lib.runTasks();
  t.equal(space.stat('out.txt').nlink, 1, 'a permanent delete of a directory likewise');
  t.equal(await read(lib, space, 'out.txt'), 'shared');

  // a node whose only names are inside the purged directory is purged with it (L13)
  space.mkdir('f');
  await put(lib, space, 'f/only.txt', 'doomed');
  space.link('f/only.txt', 'f/only2.txt');
  space.createLink('l2', 'f/only.txt');
  space.remove('f', { recursive: true, permanent: true });
  await lib.runTasks();
  await expectCode(t, () => space.stat('l2'), 'FileNotFound', 'its bound link is purged with it');
});

t.test('L12: a bound link with several names goes to the bin under its oldest name; restore brings that one back', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'f.txt', 'x');
  space.createLink('l', 'f.txt');
  space.link('l', 'l2');
  const item = space.unlink('f.txt').recycledItemId!;
  await expectCode(t, () => space.stat('l'), 'FileNotFound', 'the link went to the bin');
  await expectCode(t, () => space.stat('l2'), 'FileNotFound', 'and no live name of it is left bound to a binned file');
  t.same(space.trashItem(item).links.map((l) => l.originalPath), ['l']);
  space.restore(item);
  t.equal(space.readlink('l'), 'f.txt', 'restored');
  t.equal(space.stat('l').nlink, 1);
});

t.test('L8: a copy of a file with several names is a new file with one name', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'a.txt', 'alpha');
  space.link('a.txt', 'b.txt');
  const c = space.copy('b.txt', 'c.txt');
  t.not(c.info.id, space.stat('a.txt').id);
  t.equal(c.info.nlink, 1);
  t.equal(space.stat('a.txt').nlink, 2);
  t.same(space.move('b.txt', 'moved.txt').path, ['moved.txt'], 'a dialect move answers the moved name');
  t.equal(space.stat('moved.txt').id, space.stat('a.txt').id);
});

t.test('D4: fsck finds a library with hard links clean after links, unlinks, renames, deletes, restores and purges', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  const space = lib.space('-');
  space.mkdir('d');
  await put(lib, space, 'd/a.txt', 'alpha');
  space.link('d/a.txt', 'b.txt');
  space.link('b.txt', 'c.txt');
  space.createLink('l', 'c.txt');
  space.unlink('d/a.txt');
  space.rename('c.txt', 'd/c.txt');
  const it = space.remove('d', { recursive: true }).recycledItemId!;
  space.restore(it);
  await put(lib, space, 'e.txt', 'e');
  space.link('e.txt', 'e2.txt');
  space.unlink('e.txt');
  space.purge(space.unlink('e2.txt').recycledItemId!);
  await lib.runTasks();
  await lib.collectGarbage();
  lib.close();
  await expectFsckClean(t, dir);
});

t.test('D4: fsck reports a directory with two names; --repair of a bad name keeps a node\'s good names', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true });
  const space = lib.space('-');
  space.mkdir('d');
  await put(lib, space, 'f.txt', 'kept');
  space.link('f.txt', 'd/g.txt');
  const f = space.stat('f.txt').id;
  const d = space.stat('d').id;
  lib.close();
  const db = new Database(join(dir, DB_FILE));
  // a name under a node that is no directory (damage), beside the file's two good names
  db.prepare('INSERT INTO entries (parent, name, node, is_dir, seq) VALUES (?, ?, ?, 0, 3)').run(f, 'bad', f);
  // a directory with a second name
  db.prepare('INSERT INTO entries (parent, name, node, is_dir, seq) VALUES (?, ?, ?, 1, 2)').run(d, 'loop', d);
  db.close();
  const found = await checkLibrary(dir);
  const by = (c: string) => found.findings.find((x) => x.check === c);
  t.equal(by('dir-names')?.count, 1, 'the directory with two names is reported');
  t.equal(by('entry-bad-parent')?.count, 1, 'so is the bad name');
  const fixDb = new Database(join(dir, DB_FILE));
  fixDb.prepare("DELETE FROM entries WHERE name = 'loop'").run(); // not repairable: a person removes it
  fixDb.close();
  const repaired = await checkLibrary(dir, { repair: true });
  t.equal(repaired.findings.find((x) => x.check === 'entry-bad-parent')?.repaired, 1, 'repaired');
  const again = Library.open(dir);
  t.teardown(() => again.close());
  const s = again.space('-');
  t.equal(s.stat('f.txt').id, f, 'the good names stay');
  t.equal(s.stat('d/g.txt').id, f);
  t.equal(s.stat('f.txt').nlink, 2, 'the bad name is gone, not the node moved to lost+found');
  await expectCode(t, () => s.stat('lost+found'), 'FileNotFound', 'nothing went to lost+found');
});
