/**
 * The id-addressed reads (issue 10: path-addressed operations are thin wrappers over them; an
 * inode-addressed adapter — the libfuse 3 binding — asks by node id): lookup(parent, name),
 * readdir(id), readlink(id) answer exactly what the path forms answer, the recycle bin included.
 */
import t from 'tap';
import { expectCode, openLib, put } from './helpers/store.js';

t.test('lookup, readdir and readlink by id agree with their path forms', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('photos');
  await put(lib, space, 'photos/cat.jpg', 'meow', { conflict: 'ask' });
  space.mkdir('links');
  space.createLink('links/cat', 'photos/cat.jpg');
  space.symlink('links/rel', '../photos/cat.jpg');
  space.symlink('links/dangling', 'nowhere');

  const photos = space.lookup(space.root, 'photos');
  t.same(photos, space.stat('photos'), 'lookup(root, photos) = stat(photos)');
  const cat = space.lookup(photos.id, 'cat.jpg');
  t.same(cat, space.stat('photos/cat.jpg'), 'a file one level down');
  const links = space.lookup(space.root, 'links');
  for (const name of ['cat', 'rel', 'dangling']) {
    const link = space.lookup(links.id, name);
    t.same(link, space.stat(`links/${name}`), `the link ${name}`);
    t.equal(space.readlink(link.id), space.readlink(`links/${name}`), `readlink(${name}) by id`);
  }
  t.same(space.readdir(space.root), space.readdir(''), 'readdir of the root, .trash included');
  t.same(space.readdir(photos.id), space.readdir('photos'), 'readdir of a directory');

  const bin = space.lookup(space.root, '.trash');
  t.same(bin, space.stat('.trash'), 'the bin view');
  const recycledItemId = space.unlink('photos/cat.jpg').recycledItemId!;
  const view = space.trashItem(recycledItemId).viewName;
  t.same(space.lookup(bin.id, view), space.stat(`.trash/${view}`), 'an item in the bin');
  t.same(space.readdir(bin.id), space.readdir('.trash'), 'readdir of the bin (the file and its cascaded link)');
  t.ok(space.lookup(bin.id, view).inTrash, 'in the bin');
});

t.test('lookup and readdir by id refuse what the path forms refuse', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'f.txt', 'x', { conflict: 'ask' });
  const f = space.stat('f.txt');
  await expectCode(t, () => space.lookup(space.root, 'missing'), 'FileNotFound', 'a missing name');
  await expectCode(t, () => space.lookup(f.id, 'x'), 'NotADirectory', 'a name under a file');
  await expectCode(t, () => space.readdir(f.id), 'NotADirectory', 'readdir of a file');
  await expectCode(t, () => space.readlink(f.id), 'InvalidArgument', 'readlink of a file');
  await expectCode(t, () => space.lookup(space.root, 'n'.repeat(256)), 'FileNameLengthExceed', 'a name over 255 bytes');
  await expectCode(t, () => space.lookup(987654, 'x'), 'FileNotFound', 'an id that is no node');
  const other = lib.createSpace('other');
  await expectCode(t, () => space.readdir(other.root), 'FileNotFound', "another space's node");

  for (let i = 0; i < 3; i++) await put(lib, space, `big/d${i}/f.txt`, 'y', { conflict: 'ask', createParents: true });
  const big = space.stat('big');
  const { taskId } = space.remove('big', { permanent: true, recursive: true });
  t.type(taskId, 'number', 'a directory being purged');
  await expectCode(t, () => space.readdir(big.id), 'FileNotFound', 'has no place: not found by id');
  await lib.runTasks();
});
