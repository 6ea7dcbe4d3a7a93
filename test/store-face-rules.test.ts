/**
 * Rules the faces (FUSE adapter, SMH) used to decide themselves and now ask the store for
 * (issue 10): open(2) for writing and truncate(2) of what cannot be written that way, and C4's
 * default conflict strategies (L17, hard links, is test/store-hard-links.test.ts).
 */
import t from 'tap';
import { DEFAULT_CONFLICT } from '../src/store/types.js';
import { expectCode, openLib, put } from './helpers/store.js';

t.test('open(2)/truncate(2): EISDIR for a directory opened for writing or truncated, EINVAL for truncating a non-file', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  await put(lib, space, 'f.txt', 'x', { conflict: 'ask' });
  space.createLink('l', 'f.txt');
  t.equal(space.statOpen('d', { write: false }).kind, 'dir', 'a directory opens for reading');
  await expectCode(t, () => space.statOpen('d', { write: true }), 'IsADirectory', 'but not for writing');
  t.equal(space.statOpen('f.txt', { write: true }).kind, 'file', 'a file opens for writing');
  await expectCode(t, () => space.statTruncatable('d'), 'IsADirectory', 'truncate a directory');
  await expectCode(t, () => space.statTruncatable('l'), 'InvalidArgument', 'truncate a link itself');
  t.equal(space.statTruncatable('f.txt').kind, 'file', 'truncate a file');
  const recycledItemId = space.unlink('f.txt').recycledItemId!;
  const view = space.trashItem(recycledItemId).viewName;
  await expectCode(t, () => space.statOpen(`.trash/${view}`, { write: true }), 'ReadOnly', 'T3: nothing in the bin opens for writing');
  await expectCode(t, () => space.statTruncatable(`.trash/${view}`), 'ReadOnly', 'T3: nor is truncated');
});

t.test('C4: without a strategy, placing renames and a new directory asks', async (t) => {
  const { lib, space } = openLib(t);
  t.same(DEFAULT_CONFLICT, { place: 'rename', mkdir: 'ask' });
  await put(lib, space, 'f.txt', 'one');
  const second = await put(lib, space, 'f.txt', 'two');
  t.same(second.path, ['f (1).txt'], 'a second upload is renamed (C2)');
  space.mkdir('d');
  await expectCode(t, () => space.mkdir('d'), 'SameNameDirectoryOrFileExists', 'a second mkdir is refused');
});
