/**
 * renameat2(2)'s flags in the store (issue 12): RENAME_NOREPLACE (`rename(…, { noReplace })`)
 * and RENAME_EXCHANGE (`exchange`, `exchangeAt`) — one rule implementation for every engine (the
 * PostgreSQL twin runs this file unchanged: pg-store-rename-flags). What each answers, what it
 * changes (names, times, parents' nlink), that bound links follow their targets through an
 * exchange (L9, L4), and that the change feed records it so a mount can invalidate the kernel's
 * caches (H4). The same calls through the kernel: test/mount-rename-flags.test.ts.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangeRecord } from '../src/store/changes.js';
import type { Library } from '../src/store/library.js';
import { expectCode, openLib, put, read } from './helpers/store.js';

/** The records `fn`'s commits added to the feed, as this process hears them (either engine). */
function recorded(lib: Library, fn: () => unknown): ChangeRecord[] {
  const out: ChangeRecord[] = [];
  const stop = lib.changes.onCommit((rs) => out.push(...rs));
  try {
    fn();
  } finally {
    stop();
  }
  return out;
}

t.test('RENAME_NOREPLACE: EEXIST over an existing name and nothing changes; a free name is a plain rename', async (t) => {
  const { lib, space } = openLib(t);
  const a = (await put(lib, space, 'a', 'A')).info;
  const b = (await put(lib, space, 'b', 'B')).info;
  space.mkdir('d');
  await expectCode(t, () => space.rename('a', 'b', { noReplace: true }), 'SameNameDirectoryOrFileExists', 'by path, over a file');
  await expectCode(t, () => space.renameAt(space.root, 'a', space.root, 'b', { noReplace: true }), 'SameNameDirectoryOrFileExists', 'by id, over a file');
  await expectCode(t, () => space.rename('a', 'd', { noReplace: true }), 'SameNameDirectoryOrFileExists', 'over a directory');
  t.equal(space.stat('a').id, a.id, 'a is still a');
  t.equal(space.stat('b').id, b.id, 'b is still b');
  t.equal(await read(lib, space, 'b'), 'B', "b's content is kept");
  t.equal(space.trashList().length, 0, 'nothing went to the bin');

  const moved = space.renameAt(space.root, 'a', space.stat('d').id, 'a2', { noReplace: true });
  t.equal(moved.id, a.id, 'to a free name: the node moves');
  t.equal(moved.path, 'd/a2', 'to its new place');
  await expectCode(t, () => space.stat('a'), 'FileNotFound', 'the old name is gone');
  t.equal(await read(lib, space, 'd/a2'), 'A');
});

t.test('RENAME_NOREPLACE: a second name of the same node is taken too (Linux checks before its same-inode shortcut)', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'a', 'A');
  space.link('a', 'b');
  await expectCode(t, () => space.rename('a', 'b', { noReplace: true }), 'SameNameDirectoryOrFileExists', 'onto another name of a');
  t.equal(space.stat('a').nlink, 2, 'both names stay');
  await expectCode(t, () => space.rename('a', '.trash', { noReplace: true }), 'ReadOnly', 'the bin stays the bin (T3)');
});

t.test('RENAME_EXCHANGE: two files in one directory trade names; identity and content go with the node', async (t) => {
  const { lib, space } = openLib(t);
  const a = (await put(lib, space, 'a', 'content of a')).info;
  const b = (await put(lib, space, 'b', 'content of b')).info;
  const dir0 = space.stat('');
  await sleep(2);
  const [na, nb] = space.exchange('a', 'b');
  t.equal(na.id, a.id, 'the first answer is a');
  t.equal(na.path, 'b', 'now named b');
  t.equal(nb.id, b.id, 'the second answer is b');
  t.equal(nb.path, 'a', 'now named a');
  t.equal(space.stat('a').id, b.id, 'a names b');
  t.equal(space.stat('b').id, a.id, 'b names a');
  t.equal(await read(lib, space, 'a'), 'content of b');
  t.equal(await read(lib, space, 'b'), 'content of a');
  t.ok(space.stat('a').ctimeUs > b.ctimeUs && space.stat('b').ctimeUs > a.ctimeUs, "both nodes' ctime advanced");
  t.equal(space.stat('a').mtimeUs, b.mtimeUs, "mtime kept (content did not change)");
  const dir1 = space.stat('');
  t.ok(dir1.mtimeUs > dir0.mtimeUs && dir1.ctimeUs > dir0.ctimeUs, "the directory's mtime and ctime advanced");
  t.equal(space.readdir('').filter((e) => e.name !== '.trash').length, 2, 'still two names: nothing parked is left');
  t.equal(space.trashList().length, 0, 'nothing replaced, nothing binned');
});

t.test('RENAME_EXCHANGE: a file and a directory across directories, by id; nlink of both parents; the subtree goes with the directory', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('s');
  space.mkdir('t');
  space.mkdir('t/dir');
  const inner = (await put(lib, space, 't/dir/inner', 'inside')).info;
  const f = (await put(lib, space, 's/f', 'file')).info;
  const dir = space.stat('t/dir');
  const [s0, t0] = [space.stat('s'), space.stat('t')];
  t.equal(s0.nlink, 2, 's: no subdirectory');
  t.equal(t0.nlink, 3, 't: one subdirectory');
  await sleep(2);
  const [nf, nd] = space.exchangeAt(s0.id, 'f', t0.id, 'dir');
  t.equal(nf.path, 't/dir', 'the file is now t/dir');
  t.equal(nd.path, 's/f', 'the directory is now s/f');
  t.equal(space.stat('s/f').id, dir.id);
  t.equal(space.stat('t/dir').id, f.id);
  t.equal(space.stat('s/f/inner').id, inner.id, 'what the directory holds moved with it');
  t.equal(await read(lib, space, 's/f/inner'), 'inside');
  const [s1, t1] = [space.stat('s'), space.stat('t')];
  t.equal(s1.nlink, 3, 's gained the subdirectory');
  t.equal(t1.nlink, 2, 't lost it');
  t.ok(s1.mtimeUs > s0.mtimeUs && t1.mtimeUs > t0.mtimeUs, "both parents' mtime advanced");
  t.equal(s1.ctimeUs, t1.ctimeUs, 'one instant for both parents');
  t.equal(space.stat('s/f').ctimeUs, s1.ctimeUs, 'and for the moved nodes');
});

t.test('RENAME_EXCHANGE: bound links follow their targets through an exchange (L9, L4), and the feed says so (H4)', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('x');
  space.mkdir('y');
  const photo = (await put(lib, space, 'x/photo.jpg', 'jpeg')).info;
  const song = (await put(lib, space, 'y/song.mp3', 'mp3')).info;
  const lp = space.symlink('cover', 'x/photo.jpg');
  const ls = space.symlink('x/tune', '../y/song.mp3');
  t.equal(lp.link?.flavour, 'bound');
  t.equal(ls.link?.flavour, 'bound');
  const rs = recorded(lib, () => space.exchange('x/photo.jpg', 'y/song.mp3'));
  t.equal(space.readlink('cover'), 'y/song.mp3', "the photo's link names the photo at the song's old place");
  t.equal(space.readlink('x/tune'), 'photo.jpg', "the song's link names the song at the photo's old place");
  t.equal(await read(lib, space, 'cover'), 'jpeg', 'and still reads the photo');
  t.equal(await read(lib, space, 'x/tune'), 'mp3', 'and the song');

  const x = space.stat('x').id;
  const y = space.stat('y').id;
  const entry = (parent: number, name: string, node: number) =>
    rs.some((r) => r.kind === 'entry' && r.parent === parent && r.name === name && r.node === node);
  t.ok(entry(x, 'photo.jpg', song.id), 'x/photo.jpg recorded, naming the song now');
  t.ok(entry(y, 'song.mp3', photo.id), 'y/song.mp3 recorded, naming the photo now');
  t.notOk(rs.some((r) => r.kind === 'entry' && r.name !== null && r.name.includes('/')), 'no parked name is recorded');
  const trees = rs.filter((r) => r.kind === 'tree').map((r) => r.node);
  t.ok(trees.includes(photo.id) && trees.includes(song.id), 'a tree change for each node that moved');
  const inv = new Set(rs.flatMap((r) => (r.kind === 'tree' ? lib.changes.dependents(r.node!) : r.kind === 'node' ? [r.node!] : [])));
  t.ok(inv.has(lp.id) && inv.has(ls.id), 'the follower will invalidate both links');
});

t.test('RENAME_EXCHANGE: ENOENT for a missing name, EINVAL for a directory and a name inside it, T3 for the bin; nothing changes', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  space.mkdir('d/sub');
  await put(lib, space, 'd/sub/f', 'f');
  await put(lib, space, 'g', 'g');
  await put(lib, space, 'gone', 'x');
  space.unlink('gone');
  await expectCode(t, () => space.exchange('g', 'missing'), 'FileNotFound', 'the second name missing');
  await expectCode(t, () => space.exchange('missing', 'g'), 'FileNotFound', 'the first name missing');
  await expectCode(t, () => space.exchangeAt(space.root, 'g', space.root, 'missing'), 'FileNotFound', 'by id');
  await expectCode(t, () => space.exchange('d', 'd/sub/f'), 'MoveIntoItself', 'a directory with a file below it');
  await expectCode(t, () => space.exchange('d/sub', 'd'), 'MoveIntoItself', 'a directory with its parent');
  await expectCode(t, () => space.exchangeAt(space.stat('d/sub').id, 'f', space.root, 'd'), 'MoveIntoItself', 'by id, the other way round');
  const binned = space.trashList()[0]!;
  await expectCode(t, () => space.exchange('g', `.trash/${binned.viewName}`), 'ReadOnly', 'with a name in the bin');
  await expectCode(t, () => space.exchange('g', ''), ['InvalidDestinationPath', 'InvalidFileName'], 'with the root');
  t.equal(space.stat('d/sub/f').kind, 'file', 'the tree is as it was');
  t.equal(await read(lib, space, 'g'), 'g');
  t.same(
    space.readdir('').map((e) => e.name).sort(),
    ['.trash', 'd', 'g'],
    'no name was parked or lost',
  );
});

t.test('RENAME_EXCHANGE: two names of one node, or one name twice, succeed and change nothing (Linux); hard links keep their names', async (t) => {
  const { lib, space } = openLib(t);
  const a = (await put(lib, space, 'a', 'A')).info;
  space.link('a', 'b');
  const before = space.stat('a');
  const [x, y] = space.exchange('a', 'b');
  t.equal(x.id, a.id);
  t.equal(y.id, a.id);
  t.same(space.stat('a'), before, 'a unchanged (ctime too)');
  t.same(space.exchange('a', 'a').map((i) => i.id), [a.id, a.id], 'one name twice');

  // one of two names of a node trades places with another file: only that name moves (L17)
  const c = (await put(lib, space, 'c', 'C')).info;
  space.exchange('b', 'c');
  t.equal(space.stat('a').id, a.id, 'a still names the node');
  t.equal(space.stat('c').id, a.id, 'c is now its other name');
  t.equal(space.stat('b').id, c.id, 'b names the other file');
  t.equal(space.stat('a').nlink, 2, 'still two names');
  t.equal(space.stat('b').nlink, 1);
});
