/**
 * One test (at least) per SPEC rule id of sections 2–5, against the store API
 * (native-notes/store-api.md). L17 is a mount rule (link(2)) and is tested with the mount.
 */
import t from 'tap';
import type { Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  bareEtag,
  blobOf,
  expectCode,
  md5,
  openLib,
  put,
  read,
  resolveFrom,
  parentOf,
  sha256,
  walk,
} from './helpers/store.js';
import type { NodeInfo } from '../src/store/types.js';

/** photos/cat.jpg ('meow') and links/cat bound to it. */
async function catFixture(t: Test) {
  const L = openLib(t);
  const { lib, space } = L;
  space.mkdir('photos', {});
  space.mkdir('links', {});
  const cat = (await put(lib, space, 'photos/cat.jpg', 'meow', { conflict: 'ask' })).info;
  const link = space.createLink('links/cat', 'photos/cat.jpg', {}).info;
  return { ...L, cat, link };
}

const exists = (space: { stat(p: string, o: { follow?: boolean }): NodeInfo }, p: string) => {
  try {
    space.stat(p, { follow: false });
    return true;
  } catch {
    return false;
  }
};

// -------------------------------------------------------------------------------------------
// N: names and paths

t.test('N1: names are 1–255 bytes of UTF-8 without / or NUL', async (t) => {
  const { lib, space } = openLib(t);
  const n255 = 'é'.repeat(127) + 'x'; // 254 + 1 bytes
  t.equal(Buffer.byteLength(n255), 255);
  const placed = await put(lib, space, n255, 'ok', { conflict: 'ask' });
  t.equal(placed.info.path, n255, 'a 255-byte multibyte name is accepted');
  space.mkdir('d'.repeat(255), {});
  t.equal(space.stat('d'.repeat(255), {}).kind, 'dir');

  const n256 = 'é'.repeat(128);
  t.equal(Buffer.byteLength(n256), 256);
  await expectCode(t, () => put(lib, space, n256, 'x', { conflict: 'ask' }), 'FileNameLengthExceed', 'file name of 256 bytes');
  await expectCode(t, () => space.mkdir('x'.repeat(256), {}), 'DirectoryNameLengthExceed', 'directory name of 256 bytes');
  await expectCode(t, () => space.createLink('y'.repeat(256), n255, {}), 'FileNameLengthExceed', 'link name of 256 bytes');
  await expectCode(t, () => put(lib, space, 'a\0b', 'x', { conflict: 'ask' }), 'InvalidFileName', 'NUL in a name');
  await expectCode(t, () => space.mkdir('a\0b', {}), 'InvalidFileName', 'NUL in a directory name');
  t.notOk(exists(space, 'x'.repeat(256)));
});

t.test('N2: a link target is at most 4095 bytes', async (t) => {
  const { space } = openLib(t);
  const t4095 = 'a/'.repeat(2047) + 'b';
  t.equal(Buffer.byteLength(t4095), 4095);
  const l = space.symlink('ok', t4095, {});
  t.equal(l.link?.flavour, 'path');
  t.equal(space.readlink('ok'), t4095);
  await expectCode(t, () => space.symlink('long', t4095 + 'c', {}), 'LinkTargetTooLong', 'mount symlink 4096 bytes');
  await expectCode(t, () => space.putSymlink('long2', t4095 + 'c', {}), 'LinkTargetTooLong', 'BOS symlink 4096 bytes');
  t.notOk(exists(space, 'long'));
  t.notOk(exists(space, 'long2'));
});

t.test('N3: dialect paths are space-relative; leading / and empty segments ignored; . and .. refused', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('/docs//', {});
  const p = await put(lib, space, '/docs//a.txt', 'A', { conflict: 'ask' });
  t.same(p.path, ['docs', 'a.txt']);
  t.equal(space.stat('docs/a.txt', {}).id, p.info.id);
  t.equal(space.stat('/docs/a.txt', {}).id, p.info.id);
  const l = space.createLink('//docs/l', '/docs//a.txt', {});
  t.same(l.path, ['docs', 'l']);
  t.equal(l.info.link?.targetNode, p.info.id);

  const SRC = ['InvalidSourceFile'] as const;
  const DST = ['InvalidDestinationPath', 'InvalidFileName'] as const;
  await expectCode(t, () => space.createLink('docs/x', 'docs/../docs/a.txt', {}), SRC, 'linkTo with ..');
  await expectCode(t, () => space.createLink('docs/x', './docs/a.txt', {}), SRC, 'linkTo with .');
  await expectCode(t, () => space.createLink('docs/../x', 'docs/a.txt', {}), DST, 'link path with ..');
  await expectCode(t, () => space.move('docs/../docs/a.txt', 'b.txt', {}), SRC, 'move from with ..');
  await expectCode(t, () => space.move('docs/a.txt', '../b.txt', {}), DST, 'move to with ..');
  await expectCode(t, () => space.copy('../docs/a.txt', 'b.txt', {}), SRC, 'copy from with ..');
  await expectCode(t, () => space.copy('docs/a.txt', 'docs/./b.txt', {}), DST, 'copy to with .');
  await expectCode(t, () => put(lib, space, '../etc/passwd', 'x', { conflict: 'ask' }), DST, 'upload to ..');
  await expectCode(t, () => space.mkdir('docs/..', {}), DST, 'mkdir ..');
  await expectCode(t, () => space.putSymlink('../x', 'docs/a.txt', {}), DST, 'BOS key with ..');
  t.same(
    [...walk(space).keys()].sort(),
    ['docs', 'docs/a.txt', 'docs/l'],
    'nothing was created outside or inside the space',
  );
});

t.test('N4: only .trash at the root is reserved', async (t) => {
  const { lib, space } = openLib(t);
  t.equal(space.stat('.trash', {}).kind, 'dir', '.trash is the bin view');
  await expectCode(
    t,
    () => space.mkdir('.trash', {}),
    ['InvalidDestinationPath', 'ReadOnly', 'SameNameDirectoryOrFileExists'],
    'mkdir .trash at the root',
  );
  await expectCode(
    t,
    () => put(lib, space, '.trash', 'x', { conflict: 'overwrite' }),
    ['InvalidDestinationPath', 'ReadOnly', 'SameNameDirectoryOrFileExists'],
    'upload onto .trash',
  );
  space.mkdir('sub', {});
  space.mkdir('sub/.trash', {});
  await put(lib, space, 'sub/.trash/f', 'inner', { conflict: 'ask' });
  t.equal(await read(lib, space, 'sub/.trash/f'), 'inner', '.trash below the root is an ordinary name');
  space.mkdir('trash', {});
  await put(lib, space, '.trashy', 'y', { conflict: 'ask' });
  t.equal(space.stat('.trashy', {}).kind, 'file');
  t.same(space.trashList(), [], 'none of that went to the bin');
});

// -------------------------------------------------------------------------------------------
// L: links

t.test('L1: mount symlink binds to a live file, otherwise stores the path verbatim', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('photos', {});
  space.mkdir('links', {});
  const cat = (await put(lib, space, 'photos/cat.jpg', 'meow', { conflict: 'ask' })).info;
  const mp = { mountpoint: '/mnt/lib' };

  const rel = space.symlink('links/cat', '../photos/cat.jpg', mp);
  t.equal(rel.kind, 'link');
  t.equal(rel.link?.flavour, 'bound', 'relative target to a live file -> bound');
  t.equal(rel.link?.targetNode, cat.id);
  t.equal(space.readlink('links/cat'), '../photos/cat.jpg');

  const dot = space.symlink('photos/self', './cat.jpg', mp);
  t.equal(dot.link?.flavour, 'bound', 'resolved against the link parent');
  t.equal(space.readlink('photos/self'), 'cat.jpg');

  const abs = space.symlink('links/abs', '/mnt/lib/photos/cat.jpg', mp);
  t.equal(abs.link?.flavour, 'bound', 'absolute target under the mountpoint -> bound');
  t.equal(abs.link?.targetNode, cat.id);
  t.equal(space.readlink('links/abs'), '../photos/cat.jpg', 'and reads back relative (L4)');

  const pathCases: Array<[string, string, string]> = [
    ['missing', '../photos/nope.jpg', 'missing target'],
    ['dir', '../photos', 'a directory'],
    ['tolink', 'cat', 'a link (links/cat)'],
    ['outside', '../../etc/passwd', 'outside the space'],
    ['absout', '/etc/passwd', 'absolute, outside the mountpoint'],
    ['prefix', '/mnt/library/photos/cat.jpg', 'absolute, mountpoint only a string prefix'],
  ];
  for (const [name, target, why] of pathCases) {
    const l = space.symlink(`links/${name}`, target, mp);
    t.equal(l.link?.flavour, 'path', `${why} -> path link`);
    t.equal(l.link?.stored, target, `${why}: stored verbatim`);
    t.equal(space.readlink(`links/${name}`), target, `${why}: readlink verbatim (L5)`);
  }
  // a path link never follows: create the missing target now, the link still stores the string
  await put(lib, space, 'photos/nope.jpg', 'late', { conflict: 'ask' });
  t.equal(space.stat('links/missing', { follow: false }).link?.flavour, 'path', 'flavour fixed at creation');

  await expectCode(t, () => space.symlink('links/cat', '../photos/cat.jpg', mp), 'SameNameDirectoryOrFileExists', 'LINK exists: EEXIST');
  t.equal(space.stat('links/cat', { follow: false }).id, rel.id, 'existing link untouched');
});

t.test('L2: createLink needs a live regular file; errors and conflict rename', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('foo/bar2', { parents: true });
  space.mkdir('a/b', { parents: true });
  space.mkdir('a/dir', {});
  const src = (await put(lib, space, 'a/b/file.docx', 'doc', { conflict: 'ask' })).info;
  await put(lib, space, 'foo/bar2/file.docx', 'existing', { conflict: 'ask' });

  const r = space.createLink('foo/bar2/file.docx', 'a/b/file.docx', {});
  t.same(r.path, ['foo', 'bar2', 'file (1).docx'], 'default conflict is rename; response path segments');
  t.equal(r.info.kind, 'link');
  t.equal(r.info.link?.flavour, 'bound', 'always bound');
  t.equal(r.info.link?.targetNode, src.id);
  t.equal(await read(lib, space, 'foo/bar2/file (1).docx'), 'doc');
  t.equal(await read(lib, space, 'foo/bar2/file.docx'), 'existing', 'existing file untouched');

  const top = space.createLink('top', 'a/b/file.docx', {});
  t.same(top.path, ['top']);

  space.putSymlink('a/plink', 'a/b/file.docx', {});
  await expectCode(t, () => space.createLink('foo/x', 'a/missing.docx', {}), 'SourceFileNotFound', 'missing source');
  const e1 = await expectCode(t, () => space.createLink('foo/x', 'a/dir', {}), 'InvalidSourceFile', 'directory source');
  t.match(e1?.message ?? '', /director/i, 'message says directories are not supported');
  const e2 = await expectCode(t, () => space.createLink('foo/x', 'top', {}), 'InvalidSourceFile', 'bound link source');
  t.match(e2?.message ?? '', /secondary|link/i, 'message says secondary links are not supported');
  await expectCode(t, () => space.createLink('foo/x', 'a/plink', {}), 'InvalidSourceFile', 'path link source');
  await expectCode(t, () => space.createLink('nodir/x', 'a/b/file.docx', {}), 'DirectoryNotFound', 'parent not created');
  t.notOk(exists(space, 'foo/x'));
  t.notOk(exists(space, 'nodir'));
});

t.test('L3: BOS PutSymlink is a path link; overwrite, storage class, meta, ETag', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('l', {});
  space.mkdir('data', {});
  const target = (await put(lib, space, 'data/t.txt', 'hello', { conflict: 'ask' })).info;

  const missing = space.putSymlink('l/missing', 'no/such/key', {});
  t.equal(missing.info.kind, 'link');
  t.equal(missing.info.link?.flavour, 'path', 'always a path link');
  t.equal(missing.info.link?.stored, 'no/such/key', 'target not checked at creation');
  t.equal(bareEtag(missing.etag), md5('no/such/key'), 'ETag of a missing target = MD5 of the target key');

  const ok = space.putSymlink('l/ok', 'data/t.txt', {});
  t.equal(ok.info.link?.flavour, 'path', 'even to a live file');
  t.equal(bareEtag(ok.etag), md5('hello'), 'ETag of an existing target = its ETag');
  t.equal(bareEtag(ok.etag), bareEtag(target.etag));

  const second = space.putSymlink('l/second', 'l/ok', {});
  t.equal(second.info.link?.stored, 'l/ok', 'a link to a link is accepted at creation');

  await expectCode(t, () => space.putSymlink('l/ok', 'data/t.txt', { forbidOverwrite: true }), 'ObjectAlreadyExists', 'forbidOverwrite over a link');
  await expectCode(t, () => space.putSymlink('data/t.txt', 'x', { forbidOverwrite: true }), 'ObjectAlreadyExists', 'forbidOverwrite over a file');
  t.equal(space.stat('data/t.txt', { follow: false }).kind, 'file');

  await put(lib, space, 'data/u.txt', 'u', { conflict: 'ask' });
  space.putSymlink('data/u.txt', 'data/t.txt', { forbidOverwrite: false });
  t.equal(space.stat('data/u.txt', { follow: false }).kind, 'link', 'forbidOverwrite false replaces');
  space.putSymlink('l/ok', 'no/such/key', {});
  t.equal(space.getSymlink('l/ok'), 'no/such/key', 'no header replaces');

  await expectCode(t, () => space.putSymlink('l/arch', 'data/t.txt', { storageClass: 'ARCHIVE' }), 'InvalidArgument', 'ARCHIVE refused');
  t.notOk(exists(space, 'l/arch'));
  const ia = space.putSymlink('l/ia', 'data/t.txt', { storageClass: 'STANDARD_IA' });
  t.equal(ia.info.storageClass, 'STANDARD_IA', 'storage class stored on the link');
  t.equal(missing.info.storageClass, 'STANDARD', 'default class STANDARD');

  space.putSymlink('l/meta', 'data/t.txt', { meta: { color: 'red', 'owner-name': 'ann' } });
  t.equal(space.getXattr('l/meta', 'user.color').toString(), 'red', 'x-bce-meta-* stored as user metadata');
  t.equal(space.getXattr('l/meta', 'user.owner-name').toString(), 'ann');

  space.setDefaultStorageClass('ARCHIVE');
  await expectCode(t, () => space.putSymlink('l/arch2', 'data/t.txt', {}), 'InvalidArgument', 'no header while the default class is ARCHIVE');
  t.notOk(exists(space, 'l/arch2'));
  const cold = space.putSymlink('l/cold', 'data/t.txt', { storageClass: 'COLD' });
  t.equal(cold.info.storageClass, 'COLD', 'an explicit non-ARCHIVE class is fine under an ARCHIVE default');
});

t.test('L4: readlink of a bound link is relative to the link parent; st_size is its byte length', async (t) => {
  const { lib, space, cat } = await catFixture(t);
  t.equal(space.readlink('links/cat'), '../photos/cat.jpg');
  const lst = space.stat('links/cat', { follow: false });
  t.equal(lst.kind, 'link');
  t.equal(lst.size, Buffer.byteLength('../photos/cat.jpg'));
  t.equal(lst.link?.targetPath, 'photos/cat.jpg');
  t.equal(lst.link?.readlink, '../photos/cat.jpg');

  space.mkdir('a/b/c', { parents: true });
  space.createLink('a/b/c/deep', 'photos/cat.jpg', {});
  t.equal(space.readlink('a/b/c/deep'), '../../../photos/cat.jpg');
  space.createLink('top', 'photos/cat.jpg', {});
  t.equal(space.readlink('top'), 'photos/cat.jpg');
  space.createLink('photos/same', 'photos/cat.jpg', {});
  t.equal(space.readlink('photos/same'), 'cat.jpg');

  await put(lib, space, 'photos/猫.jpg', 'nyan', { conflict: 'ask' });
  space.createLink('links/猫', 'photos/猫.jpg', {});
  const s = '../photos/猫.jpg';
  t.equal(space.readlink('links/猫'), s);
  t.equal(space.stat('links/猫', { follow: false }).size, Buffer.byteLength(s), 'size in bytes, not characters');
  t.not(Buffer.byteLength(s), s.length);

  space.move('photos/cat.jpg', 'photos/a-much-longer-name.jpg', {});
  const s2 = '../photos/a-much-longer-name.jpg';
  t.equal(space.readlink('links/cat'), s2);
  t.equal(space.stat('links/cat', { follow: false }).size, Buffer.byteLength(s2), 'size follows the current target path');
  t.equal(space.stat('links/cat', { follow: true }).id, cat.id);
});

t.test('L5: path links read back as stored (mount) or relative to the link parent (BOS)', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('x', {});
  space.mkdir('a', {});
  space.symlink('x/m', 'whatever/../y', {});
  t.equal(space.readlink('x/m'), 'whatever/../y', 'mount-made: unchanged');
  t.equal(space.getSymlink('x/m'), 'whatever/../y');

  space.putSymlink('x/l', 'a/b.txt', {});
  t.equal(space.readlink('x/l'), '../a/b.txt', 'BOS-made key a/b.txt at x/l reads as ../a/b.txt');
  t.equal(space.getSymlink('x/l'), 'a/b.txt', 'GET ?symlink returns what was stored');
  t.equal(space.stat('x/l', { follow: false }).link?.pathBase, 'space');
  space.putSymlink('root-l', 'a/b.txt', {});
  t.equal(space.readlink('root-l'), 'a/b.txt');

  // BOS GET through a mount-made path link resolves against the link's parent
  space.symlink('x/rel', 't.txt', {});
  t.equal(space.stat('x/rel', { follow: false }).link?.flavour, 'path', 'target missing at creation');
  const tt = (await put(lib, space, 'x/t.txt', 'via parent', { conflict: 'ask' })).info;
  t.equal(space.resolveRead('x/rel', 'bos').node.id, tt.id);
  t.equal(await read(lib, space, 'x/rel'), 'via parent');
  const ab = (await put(lib, space, 'a/b.txt', 'ab', { conflict: 'ask' })).info;
  t.equal(space.resolveRead('x/l', 'bos').node.id, ab.id, 'BOS-made link resolves from the space root');
});

t.test('L6: reads follow links; BOS refuses missing and secondary targets', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('data', {});
  space.mkdir('l', {});
  const f = (await put(lib, space, 'data/t.txt', 'hello', { conflict: 'ask' })).info;
  const pl = space.putSymlink('l/ok', 'data/t.txt', {}).info;
  const r = space.resolveRead('l/ok', 'bos');
  t.equal(r.node.id, f.id, 'node is the target');
  t.equal(r.link?.id, pl.id, 'link is the link');
  t.equal(r.node.etag, f.etag, 'ETag from the target');
  t.equal(r.node.size, 5, 'Content-Length from the target');

  const b = space.createLink('l/b', 'data/t.txt', {}).info;
  t.equal(space.resolveRead('l/b', 'smh').node.id, f.id, 'SMH follows a bound link');
  t.equal(space.resolveRead('l/b', 'bos').link?.id, b.id);
  t.equal(space.stat('l/b', { follow: true }).id, f.id, 'stat follows');
  t.equal(await read(lib, space, 'l/ok'), 'hello');

  space.putSymlink('l/gone', 'data/none', {});
  await expectCode(t, () => space.resolveRead('l/gone', 'bos'), 'SymlinkTargetNotExist', 'target missing');
  t.equal(space.getSymlink('l/gone'), 'data/none', 'GET ?symlink works for a dangling link');
  space.putSymlink('l/second', 'l/ok', {});
  await expectCode(t, () => space.resolveRead('l/second', 'bos'), 'InvalidTargetType', 'secondary link');
  space.putSymlink('l/tob', 'l/b', {});
  await expectCode(t, () => space.resolveRead('l/tob', 'bos'), 'InvalidTargetType', 'path link to a bound link');
});

t.test('L8: deleting, renaming, moving or copying a bound link never touches the target', async (t) => {
  const { lib, space, cat, link } = await catFixture(t);
  space.move('links/cat', 'links/kitty', {});
  t.equal(space.stat('photos/cat.jpg', {}).id, cat.id, 'target unmoved by a rename of the link');
  t.equal(space.readlink('links/kitty'), '../photos/cat.jpg');
  space.mkdir('deep/er', { parents: true });
  space.move('links/kitty', 'deep/er/kitty', {});
  t.equal(space.readlink('deep/er/kitty'), '../../photos/cat.jpg', 'readlink from the new place');
  t.equal(space.stat('deep/er/kitty', { follow: false }).id, link.id, 'same link identity');

  const cp = space.copy('deep/er/kitty', 'links/copy', {});
  t.equal(cp.info.kind, 'link');
  t.not(cp.info.id, link.id, 'a copy is a new node');
  t.equal(cp.info.link?.flavour, 'bound');
  t.equal(cp.info.link?.targetNode, cat.id, 'bound to the same target');
  t.equal(await read(lib, space, 'links/copy'), 'meow');

  const recycledItemId = space.unlink('links/copy').recycledItemId!;
  t.type(recycledItemId, 'number');
  t.equal(space.stat('photos/cat.jpg', {}).id, cat.id, 'target still live after deleting a link');
  t.notOk(space.stat('photos/cat.jpg', {}).inTrash);
  t.equal(await read(lib, space, 'photos/cat.jpg'), 'meow');
  t.equal(space.readlink('deep/er/kitty'), '../../photos/cat.jpg', 'the other link is untouched');
  const items = space.trashList();
  t.equal(items.length, 1);
  t.equal(items[0]?.kind, 'link');
  t.equal(items[0]?.originalPath, 'links/copy');
  space.remove('deep/er/kitty', { permanent: true });
  t.equal(await read(lib, space, 'photos/cat.jpg'), 'meow', 'a permanent delete of the link leaves the target');
});

t.test('L9: moving the target or an ancestor directory keeps the link working', async (t) => {
  const { lib, space, cat } = await catFixture(t);
  space.move('photos/cat.jpg', 'photos/kitty.jpg', {});
  t.equal(space.readlink('links/cat'), '../photos/kitty.jpg', 'rename of the target');
  space.move('photos', 'albums', {});
  t.equal(space.readlink('links/cat'), '../albums/kitty.jpg', 'moving an ancestor directory');
  t.equal(await read(lib, space, 'links/cat'), 'meow');
  space.mkdir('x/y', { parents: true });
  space.rename('albums', 'x/y/albums');
  t.equal(space.readlink('links/cat'), '../x/y/albums/kitty.jpg', 'rename(2) of an ancestor');
  space.rename('x', 'z');
  t.equal(space.readlink('links/cat'), '../z/y/albums/kitty.jpg');
  t.equal(space.stat('links/cat', { follow: true }).id, cat.id);
  space.move('links', 'z/links', {});
  t.equal(space.readlink('z/links/cat'), '../y/albums/kitty.jpg', 'and moving the link too');
  t.equal(await read(lib, space, 'z/links/cat'), 'meow');
});

t.test('L10: overwriting the target with a file keeps the link and shows the new content', async (t) => {
  await t.test('upload with overwrite', async (t) => {
    const { lib, space, link } = await catFixture(t);
    const p = await put(lib, space, 'photos/cat.jpg', 'new meow', { conflict: 'overwrite' });
    t.same(p.path, ['photos', 'cat.jpg']);
    t.equal(await read(lib, space, 'links/cat'), 'new meow');
    t.equal(space.stat('links/cat', { follow: false }).id, link.id, 'same link');
    t.equal(space.stat('links/cat', { follow: false }).link?.targetNode, p.info.id, 'bound to the node now at that path');
    t.equal(space.readlink('links/cat'), '../photos/cat.jpg');
    const items = space.trashList();
    t.equal(items.length, 1, 'T1: the replaced content went to the bin');
    t.same(items[0]!.links, [], 'no link went to the bin with it');
    t.equal(await read(lib, space, `.trash/${items[0]!.viewName}`), 'meow', 'the bin keeps the old content');
  });
  await t.test('content commit (open O_TRUNC + write)', async (t) => {
    const { lib, space, cat } = await catFixture(t);
    space.setContent(cat.id, await blobOf(lib, 'rewritten'), {});
    t.equal(await read(lib, space, 'links/cat'), 'rewritten');
    t.equal(space.stat('links/cat', { follow: true }).etag, md5('rewritten'));
  });
  await t.test('rename(2) of another file over the target rebinds the link', async (t) => {
    const { lib, space, cat } = await catFixture(t);
    const dog = (await put(lib, space, 'photos/dog.jpg', 'woof', { conflict: 'ask' })).info;
    space.createLink('links/dog', 'photos/dog.jpg', {});
    space.rename('photos/dog.jpg', 'photos/cat.jpg');
    const l = space.stat('links/cat', { follow: false });
    t.equal(l.link?.targetNode, dog.id, 'rebound to the node that took its place');
    t.equal(space.readlink('links/cat'), '../photos/cat.jpg');
    t.equal(await read(lib, space, 'links/cat'), 'woof');
    t.equal(space.readlink('links/dog'), '../photos/cat.jpg', "the moved file's own link followed it (L9)");
    t.not(dog.id, cat.id);
  });
  await t.test('move with overwrite over the target', async (t) => {
    const { lib, space } = await catFixture(t);
    await put(lib, space, 'dog.jpg', 'woof', { conflict: 'ask' });
    const m = space.move('dog.jpg', 'photos/cat.jpg', { conflict: 'overwrite' });
    t.same(m.path, ['photos', 'cat.jpg']);
    t.equal(space.stat('links/cat', { follow: false }).link?.targetNode, m.info.id);
    t.equal(await read(lib, space, 'links/cat'), 'woof');
    t.same(space.trashList().filter((i) => i.kind === 'link'), [], 'the link was not binned');
  });
});

t.test('L11: overwriting the target with a link deletes the target (to the bin, with its links)', async (t) => {
  const { lib, space, cat, link } = await catFixture(t);
  await put(lib, space, 'photos/dog.jpg', 'woof', { conflict: 'ask' });
  const r = space.createLink('photos/cat.jpg', 'photos/dog.jpg', { conflict: 'overwrite' });
  t.same(r.path, ['photos', 'cat.jpg']);
  t.equal(space.stat('photos/cat.jpg', { follow: false }).kind, 'link');
  t.notOk(exists(space, 'links/cat'), 'the bound link left with its target');
  const items = space.trashList();
  t.equal(items.length, 1, 'one item: the old target');
  const it = items[0]!;
  t.equal(it.kind, 'file');
  t.equal(it.originalPath, 'photos/cat.jpg');
  t.same(it.links, [{ nodeId: link.id, originalPath: 'links/cat' }], 'with the cascaded link');

  const back = space.restore(it.id, {});
  t.same(back.path, ['photos', 'cat (1).jpg'], 'restore renames around the new link (C2)');
  t.equal(back.info.id, cat.id);
  t.equal(space.readlink('links/cat'), '../photos/cat (1).jpg', 'the link came back, bound to the old target');
  t.equal(await read(lib, space, 'links/cat'), 'meow');

  // BOS overwrite of a target is the same
  space.putSymlink('photos/cat (1).jpg', 'photos/dog.jpg', {});
  t.notOk(exists(space, 'links/cat'), 'BOS PutSymlink over the target binned the link too');
  t.equal(space.trashList().find((i) => i.originalPath === 'photos/cat (1).jpg')?.links.length, 1);
});

t.test('L12: trashing the target takes its bound links along; restore brings them back', async (t) => {
  const { lib, space, cat, link } = await catFixture(t);
  space.mkdir('more', {});
  const l2 = space.createLink('more/cat2', 'photos/cat.jpg', {}).info;
  const recycledItemId = space.unlink('photos/cat.jpg').recycledItemId!;
  t.notOk(exists(space, 'links/cat'));
  t.notOk(exists(space, 'more/cat2'));
  t.ok(space.statNode(link.id).inTrash, 'a cascaded link is in the bin (NodeInfo.inTrash)');
  t.ok(space.statNode(cat.id).inTrash);
  const items = space.trashList();
  t.equal(items.length, 1, 'links are not separate items (T2)');
  t.equal(items[0]?.id, recycledItemId);
  t.same(
    [...(items[0]?.links ?? [])].sort((a, b) => a.nodeId - b.nodeId),
    [
      { nodeId: link.id, originalPath: 'links/cat' },
      { nodeId: l2.id, originalPath: 'more/cat2' },
    ].sort((a, b) => a.nodeId - b.nodeId),
  );

  // a conflict at one link's original place: that link takes the next free name
  await put(lib, space, 'more/cat2', 'squatter', { conflict: 'ask' });
  const back = space.restore(recycledItemId, {});
  t.same(back.path, ['photos', 'cat.jpg']);
  t.equal(back.info.id, cat.id, 'same identity');
  t.equal(space.stat('links/cat', { follow: false }).id, link.id);
  t.equal(space.readlink('links/cat'), '../photos/cat.jpg');
  t.equal(await read(lib, space, 'links/cat'), 'meow');
  t.equal(space.stat('more/cat2 (1)', { follow: false }).id, l2.id, 'conflicting link renamed per C2');
  t.equal(await read(lib, space, 'more/cat2'), 'squatter');
  t.same(space.trashList(), []);

  // SMH DELETE (remove) behaves the same
  const rm = space.remove('photos/cat.jpg', {});
  t.type(rm.recycledItemId, 'number');
  t.notOk(exists(space, 'links/cat'));
});

t.test('L12: a cascaded link is restored to its original path, not into a trashed parent', async (t) => {
  const { lib, space, cat, link } = await catFixture(t);
  const fi = space.unlink('photos/cat.jpg').recycledItemId!;
  space.remove('links', { recursive: true }); // the link's old parent directory goes to the bin
  space.mkdir('links', {}); // and a new directory takes its path
  const back = space.restore(fi, {});
  t.same(back.path, ['photos', 'cat.jpg']);
  const l = space.statNode(link.id);
  t.equal(l.path, 'links/cat', 'the link is back at RecycleItem.links[].originalPath');
  t.notOk(l.inTrash, 'live, not inside the trashed directory');
  t.equal(space.readlink('links/cat'), '../photos/cat.jpg');
  t.equal(space.stat('links/cat', { follow: true }).id, cat.id);
  t.equal(await read(lib, space, 'links/cat'), 'meow');
});

t.test('L13: permanently deleting the target deletes its bound links at once', async (t) => {
  await t.test('purging the recycle item', async (t) => {
    const { space, link } = await catFixture(t);
    const recycledItemId = space.unlink('photos/cat.jpg').recycledItemId!;
    const r = space.purge(recycledItemId);
    t.equal(r.taskId, undefined, 'a file purge is immediate');
    t.same(space.trashList(), []);
    await expectCode(t, () => space.statNode(link.id), ['FileNotFound', 'SourceFileNotFound'], 'link node gone');
    t.notOk(exists(space, 'links/cat'));
  });
  await t.test('a permanent delete', async (t) => {
    const { space, link, cat } = await catFixture(t);
    space.remove('photos/cat.jpg', { permanent: true });
    t.notOk(exists(space, 'links/cat'));
    t.same(space.trashList(), [], 'nothing went to the bin');
    await expectCode(t, () => space.statNode(link.id), ['FileNotFound', 'SourceFileNotFound'], 'link node gone');
    await expectCode(t, () => space.statNode(cat.id), ['FileNotFound', 'SourceFileNotFound'], 'target node gone');
  });
});

t.test('L14: trashing a directory that contains the target leaves the link working', async (t) => {
  const { lib, space, cat, link } = await catFixture(t);
  const { recycledItemId } = space.remove('photos', { recursive: true });
  t.type(recycledItemId, 'number');
  const l = space.stat('links/cat', { follow: false });
  t.equal(l.id, link.id, 'link still in place');
  t.notOk(l.inTrash);
  const rl = space.readlink('links/cat');
  t.match(rl, /^\.\.\/\.trash\/[^/]+\/cat\.jpg$/, 'readlink points into the .trash view');
  const viaView = resolveFrom(parentOf('links/cat'), rl)!;
  t.equal(space.stat(viaView, {}).id, cat.id, 'the readlink path resolves to the target in the view');
  t.equal(l.size, Buffer.byteLength(rl));
  t.equal(await read(lib, space, 'links/cat'), 'meow', 'reads return the content');
  t.ok(space.stat('links/cat', { follow: true }).inTrash);

  const back = space.restore(recycledItemId!, {});
  t.same(back.path, ['photos']);
  t.equal(space.readlink('links/cat'), '../photos/cat.jpg', 'live path again after restore');
  t.notOk(space.stat('links/cat', { follow: true }).inTrash);
});

t.test('L15: permanently deleting a directory is a task; links to files in it go when it finishes', async (t) => {
  const { lib, space, link } = await catFixture(t);
  space.mkdir('photos/sub', {});
  await put(lib, space, 'photos/dog.jpg', 'woof', { conflict: 'ask' });
  await put(lib, space, 'photos/sub/bird.jpg', 'tweet', { conflict: 'ask' });
  space.createLink('links/bird', 'photos/sub/bird.jpg', {});
  const outside = (await put(lib, space, 'keep.txt', 'keep', { conflict: 'ask' })).info;
  space.createLink('photos/to-keep', 'keep.txt', {});

  const r = space.remove('photos', { permanent: true, recursive: true });
  t.type(r.taskId, 'number', 'a task id');
  t.notOk(exists(space, 'photos'), 'the directory disappears at once');
  const before = lib.task(r.taskId!);
  t.equal(before.kind, 'purge-directory');
  t.ok(['queued', 'running'].includes(before.state), `state before running: ${before.state}`);
  t.equal(before.subject, 'photos');
  t.ok(lib.tasks().some((x) => x.id === r.taskId), 'listed in tasks()');

  await lib.runTasks();
  const after = lib.task(r.taskId!);
  t.equal(after.state, 'done');
  t.ok(after.total >= 4, `counts the nodes (total ${after.total})`);
  t.equal(after.done, after.total, 'done = total');
  t.equal(after.error, null);
  t.notOk(exists(space, 'links/cat'), 'bound link to a file in it deleted');
  t.notOk(exists(space, 'links/bird'), 'also for files in subdirectories');
  await expectCode(t, () => space.statNode(link.id), ['FileNotFound', 'SourceFileNotFound'], 'link node gone');
  t.equal(await read(lib, space, 'keep.txt'), 'keep', 'a target outside survives');
  t.equal(space.stat('keep.txt', {}).id, outside.id);

  // purging a trashed directory is a task as well
  space.mkdir('old', {});
  await put(lib, space, 'old/x', 'x', { conflict: 'ask' });
  space.createLink('links/x', 'old/x', {});
  const { recycledItemId } = space.remove('old', { recursive: true });
  const p = space.purge(recycledItemId!);
  t.type(p.taskId, 'number', 'purge of a directory item is a task');
  t.same(space.trashList(), [], 'the item disappears at once');
  await lib.runTasks();
  t.equal(lib.task(p.taskId!).state, 'done');
  t.notOk(exists(space, 'links/x'));
  await expectCode(t, () => lib.task(987654), 'TaskNotFound', 'unknown task id');
});

t.test('L15: runTasks runs tasks queued after an earlier idle run', async (t) => {
  const { lib, space } = await catFixture(t);
  await lib.runTasks(); // nothing to do yet
  const r = space.remove('photos', { permanent: true, recursive: true });
  await lib.runTasks();
  t.equal(lib.task(r.taskId!).state, 'done', 'the new task ran');
  t.notOk(exists(space, 'links/cat'), 'and deleted the bound link');
  await lib.runTasks();
  t.equal(lib.tasks().filter((x) => x.state !== 'done').length, 0);
});

t.test('L16: a link restored alone whose target is gone is refused', async (t) => {
  await t.test('target trashed', async (t) => {
    const { space } = await catFixture(t);
    const li = space.unlink('links/cat').recycledItemId!;
    const fi = space.unlink('photos/cat.jpg').recycledItemId!;
    const e = await expectCode(t, () => space.restore(li, {}), 'SourceFileNotFound');
    t.ok(e && /exist|gone|found|trash/i.test(e.message), `message: ${e?.message}`);
    t.equal(space.trashList().length, 2, 'both items still in the bin');
    space.restore(fi, {});
    const back = space.restore(li, {});
    t.same(back.path, ['links', 'cat'], 'restorable once the target is back');
    t.equal(space.readlink('links/cat'), '../photos/cat.jpg');
  });
  await t.test('target purged', async (t) => {
    const { space } = await catFixture(t);
    const li = space.unlink('links/cat').recycledItemId!;
    space.remove('photos/cat.jpg', { permanent: true });
    // SPEC L16 names "purged": the item may remain and be refused; a store that deleted the
    // link with its target (L13) reports the item as gone instead.
    await expectCode(t, () => space.restore(li, {}), ['SourceFileNotFound', 'RecycledItemNotFound']);
    t.notOk(exists(space, 'links/cat'));
  });
  await t.test('target alive: restore works', async (t) => {
    const { lib, space } = await catFixture(t);
    const li = space.unlink('links/cat').recycledItemId!;
    space.restore(li, {});
    t.equal(await read(lib, space, 'links/cat'), 'meow');
  });
});

// -------------------------------------------------------------------------------------------
// C: conflict strategies

t.test('C1: ask refuses a same-name entry', async (t) => {
  const { lib, space } = await catFixture(t);
  const SN = 'SameNameDirectoryOrFileExists';
  await expectCode(t, () => put(lib, space, 'photos/cat.jpg', 'x', { conflict: 'ask' }), SN, 'upload');
  await expectCode(t, () => space.createLink('links/cat', 'photos/cat.jpg', { conflict: 'ask' }), SN, 'create link');
  await expectCode(t, () => space.mkdir('photos', { conflict: 'ask' }), SN, 'mkdir');
  await put(lib, space, 'x.jpg', 'x', { conflict: 'ask' });
  await expectCode(t, () => space.move('x.jpg', 'photos/cat.jpg', { conflict: 'ask' }), SN, 'move');
  await expectCode(t, () => space.copy('x.jpg', 'photos/cat.jpg', { conflict: 'ask' }), SN, 'copy');
  t.equal(await read(lib, space, 'photos/cat.jpg'), 'meow');
});

t.test('C2: rename takes the first free "stem (n).ext"', async (t) => {
  const { lib, space } = openLib(t);
  const up = async (p: string) => (await put(lib, space, p, p, { conflict: 'rename' })).path;
  t.same(await up('a.tar.gz'), ['a.tar.gz']);
  t.same(await up('a.tar.gz'), ['a.tar (1).gz'], 'ext from the last dot');
  t.same(await up('a.tar.gz'), ['a.tar (2).gz'], 'n increments');
  t.same(await up('.bashrc'), ['.bashrc']);
  t.same(await up('.bashrc'), ['.bashrc (1)'], 'a leading dot is not an extension');
  t.same(await up('notes'), ['notes']);
  t.same(await up('notes'), ['notes (1)'], 'no extension');
  t.same(await up('notes'), ['notes (2)']);
  t.same(await up('notes'), ['notes (3)']);
  space.remove('notes (1)', { permanent: true });
  t.same(await up('notes'), ['notes (1)'], 'the first free n');
  t.same(space.mkdir('v1.2', {}).path, ['v1.2']);
  t.same(space.mkdir('v1.2', { conflict: 'rename' }).path, ['v1.2 (1)'], 'directories never split');
  t.same(space.mkdir('v1.2', { conflict: 'rename' }).path, ['v1.2 (2)']);
  t.same((await put(lib, space, 'v1.2', 'f', { conflict: 'rename' })).path, ['v1 (1).2'], 'a file named like the dir splits');
  t.equal(await read(lib, space, 'a.tar (1).gz'), 'a.tar.gz');
  for (const p of ['a.tar.gz', 'a.tar (1).gz', 'a.tar (2).gz', '.bashrc (1)', 'notes (3)', 'v1.2 (2)']) {
    t.ok(exists(space, p), `${p} exists`);
  }
});

t.test('C3: overwrite replaces files and links, never directories', async (t) => {
  const { lib, space } = await catFixture(t);
  await expectCode(t, () => put(lib, space, 'photos', 'x', { conflict: 'overwrite' }), 'SameNameDirectoryOrFileExists', 'upload over a dir');
  await expectCode(t, () => space.createLink('photos', 'photos/cat.jpg', { conflict: 'overwrite' }), 'SameNameDirectoryOrFileExists', 'link over a dir');
  await put(lib, space, 'x.txt', 'x', { conflict: 'ask' });
  await expectCode(t, () => space.move('x.txt', 'photos', { conflict: 'overwrite' }), 'SameNameDirectoryOrFileExists', 'move over a dir');
  t.equal(space.stat('photos', {}).kind, 'dir');

  const p = await put(lib, space, 'photos/cat.jpg', 'replaced', { conflict: 'overwrite' });
  t.same(p.path, ['photos', 'cat.jpg'], 'file replaced in place');
  t.equal(await read(lib, space, 'photos/cat.jpg'), 'replaced');

  const f = await put(lib, space, 'links/cat', 'now a file', { conflict: 'overwrite' });
  t.same(f.path, ['links', 'cat'], 'link replaced');
  t.equal(space.stat('links/cat', { follow: false }).kind, 'file');
  t.equal(await read(lib, space, 'links/cat'), 'now a file');
  t.equal(await read(lib, space, 'photos/cat.jpg'), 'replaced', 'replacing a link leaves its target');
});

t.test('C4: default strategies', async (t) => {
  const { lib, space } = await catFixture(t);
  t.same(space.createLink('links/cat', 'photos/cat.jpg').path, ['links', 'cat (1)'], 'create link: rename');
  await put(lib, space, 'x.jpg', 'x', { conflict: 'ask' });
  t.same(space.copy('x.jpg', 'photos/cat.jpg').path, ['photos', 'cat (1).jpg'], 'copy: rename');
  t.same(space.move('x.jpg', 'photos/cat.jpg').path, ['photos', 'cat (2).jpg'], 'move: rename');
  t.same((await put(lib, space, 'photos/cat.jpg', 'up')).path, ['photos', 'cat (3).jpg'], 'upload: rename');
  await expectCode(t, () => space.mkdir('photos'), 'SameNameDirectoryOrFileExists', 'mkdir: ask');
  const id = space.unlink('photos/cat.jpg').recycledItemId!;
  await put(lib, space, 'photos/cat.jpg', 'new', { conflict: 'ask' });
  t.same(space.restore(id).path, ['photos', 'cat (4).jpg'], 'restore: rename');
  t.equal(await read(lib, space, 'photos/cat (4).jpg'), 'meow');
  const bos = space.putSymlink('photos/cat.jpg', 'x', {});
  t.equal(bos.info.kind, 'link', 'BOS: overwrite by default');
});

// -------------------------------------------------------------------------------------------
// T: recycle bin

t.test('T1: deleting files and links moves them to the bin; rmdir of an empty dir removes it', async (t) => {
  const { lib, space, cat, link } = await catFixture(t);
  await put(lib, space, 'photos/dog.jpg', 'woof', { conflict: 'ask' });
  const l2 = space.putSymlink('links/p', 'photos/dog.jpg', {}).info;
  const a = space.unlink('links/p');
  t.type(a.recycledItemId, 'number', 'unlink of a link -> item');
  const b = space.remove('photos/dog.jpg', {});
  t.type(b.recycledItemId, 'number', 'SMH DELETE of a file -> item');
  space.mkdir('empty', {});
  space.rmdir('empty');
  t.notOk(exists(space, 'empty'), 'rmdir removes an empty dir');
  await expectCode(t, () => space.rmdir('photos'), 'DirectoryNotEmpty', 'rmdir of a non-empty dir');
  space.mkdir('photos/sub', {});
  const c = space.remove('photos', { recursive: true });
  t.type(c.recycledItemId, 'number', 'a non-empty directory -> one item');
  const items = space.trashList();
  t.same(
    items.map((i) => [i.id, i.kind, i.originalPath]).sort(),
    [
      [a.recycledItemId, 'link', 'links/p'],
      [b.recycledItemId, 'file', 'photos/dog.jpg'],
      [c.recycledItemId, 'dir', 'photos'],
    ].sort(),
  );
  t.equal(space.stat('links/cat', { follow: false }).id, link.id, 'L14: link to a file in the trashed dir stays');
  t.ok(space.statNode(cat.id).inTrash, 'the directory content is in the bin');
  t.ok(space.statNode(l2.id).inTrash);
});

t.test('T2: a recycle item keeps id, original path, name, kind, size, time and cascaded links', async (t) => {
  const { lib, space, link } = await catFixture(t);
  space.mkdir('photos/sub', {});
  await put(lib, space, 'photos/sub/x.bin', Buffer.alloc(1000, 1), { conflict: 'ask' });
  const t0 = Date.now() * 1000;
  const f = space.unlink('photos/cat.jpg').recycledItemId!;
  const d = space.remove('photos', { recursive: true }).recycledItemId!;
  const t1 = Date.now() * 1000;
  const items = space.trashList();
  t.equal(items.length, 2);
  const fi = items.find((i) => i.id === f)!;
  t.match(fi, { id: f, kind: 'file', name: 'cat.jpg', originalPath: 'photos/cat.jpg', size: 4 });
  t.ok(fi.removedAtUs >= t0 - 5_000_000 && fi.removedAtUs <= t1 + 5_000_000, 'removal time in µs');
  t.same(fi.links, [{ nodeId: link.id, originalPath: 'links/cat' }]);
  const di = items.find((i) => i.id === d)!;
  t.match(di, { id: d, kind: 'dir', name: 'photos', originalPath: 'photos', size: 1000 });
  t.same(di.links, []);
});

t.test('T3: the .trash view is readable and read-only', async (t) => {
  const { lib, space } = await catFixture(t);
  space.mkdir('photos/sub', {});
  await put(lib, space, 'photos/sub/x.txt', 'inside', { conflict: 'ask' });
  await put(lib, space, 'doc.txt', 'document', { conflict: 'ask' });
  const fid = space.unlink('doc.txt').recycledItemId!;
  const did = space.remove('photos', { recursive: true }).recycledItemId!;
  const items = space.trashList();
  const fv = items.find((i) => i.id === fid)!.viewName;
  const dv = items.find((i) => i.id === did)!.viewName;
  t.ok(fv.includes(String(fid)) && fv.includes('doc.txt'), `view name ${fv} shows id and name`);
  t.ok(dv.includes(String(did)) && dv.includes('photos'), `view name ${dv}`);
  t.same(
    space.readdir('.trash').map((e) => e.name).sort(),
    [fv, dv].sort(),
    'one entry per item',
  );
  t.equal(space.stat(`.trash/${fv}`, {}).kind, 'file');
  t.equal(space.stat(`.trash/${fv}`, {}).size, 8);
  t.equal(await read(lib, space, `.trash/${fv}`), 'document', 'content readable');
  t.same(space.readdir(`.trash/${dv}`).map((e) => e.name).sort(), ['cat.jpg', 'sub']);
  t.equal(await read(lib, space, `.trash/${dv}/sub/x.txt`), 'inside');
  t.ok(space.stat(`.trash/${dv}/sub/x.txt`, {}).inTrash);

  const RO = 'ReadOnly';
  await expectCode(t, () => put(lib, space, `.trash/new.txt`, 'x', { conflict: 'ask' }), RO, 'upload into .trash');
  await expectCode(t, () => put(lib, space, `.trash/${dv}/new.txt`, 'x', { conflict: 'ask' }), RO, 'upload into a trashed dir');
  await expectCode(t, () => put(lib, space, `.trash/${fv}`, 'x', { conflict: 'overwrite' }), RO, 'overwrite an item');
  await expectCode(t, () => space.mkdir(`.trash/${dv}/d`, {}), RO, 'mkdir');
  await expectCode(t, () => space.unlink(`.trash/${fv}`), RO, 'unlink');
  await expectCode(t, () => space.remove(`.trash/${dv}/sub/x.txt`, {}), RO, 'remove');
  await expectCode(t, () => space.rename('links/cat', `.trash/${dv}/l`), RO, 'rename into');
  await expectCode(t, () => space.symlink(`.trash/${dv}/s`, 'x', {}), RO, 'symlink');
  await expectCode(t, () => space.createFile(`.trash/${dv}/c`, {}), RO, 'create');
  await expectCode(t, () => space.setattr(`.trash/${fv}`, { mode: 0o600 }), RO, 'chmod');
  const st = space.stat(`.trash/${fv}`, {});
  await expectCode(t, async () => space.setContent(st.id, await blobOf(lib, 'y'), {}), RO, 'write to a trashed file');
  t.equal(await read(lib, space, `.trash/${fv}`), 'document');
});

t.test('T4: restore recreates missing parents; conflicts rename unless told otherwise', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('a/b/c', { parents: true });
  const f = (await put(lib, space, 'a/b/c/f.txt', 'deep', { conflict: 'ask' })).info;
  const id = space.unlink('a/b/c/f.txt').recycledItemId!;
  space.remove('a', { recursive: true, permanent: true });
  await lib.runTasks();
  t.notOk(exists(space, 'a'));
  const r = space.restore(id, {});
  t.same(r.path, ['a', 'b', 'c', 'f.txt'], 'original path');
  t.equal(r.info.id, f.id);
  t.equal(space.stat('a/b', {}).kind, 'dir', 'parents recreated');
  t.equal(await read(lib, space, 'a/b/c/f.txt'), 'deep');

  const id2 = space.unlink('a/b/c/f.txt').recycledItemId!;
  await put(lib, space, 'a/b/c/f.txt', 'newer', { conflict: 'ask' });
  await expectCode(t, () => space.restore(id2, { conflict: 'ask' }), 'SameNameDirectoryOrFileExists', 'ask');
  t.equal(space.trashList().length, 1, 'still in the bin after a refused restore');
  const r2 = space.restore(id2, { conflict: 'rename' });
  t.same(r2.path, ['a', 'b', 'c', 'f (1).txt']);
  t.equal(await read(lib, space, 'a/b/c/f (1).txt'), 'deep');
  t.equal(await read(lib, space, 'a/b/c/f.txt'), 'newer');

  const id3 = space.unlink('a/b/c/f (1).txt').recycledItemId!;
  space.move('a/b/c/f.txt', 'a/b/c/f (1).txt', {});
  const r3 = space.restore(id3, { conflict: 'overwrite' });
  t.same(r3.path, ['a', 'b', 'c', 'f (1).txt'], 'overwrite');
  t.equal(await read(lib, space, 'a/b/c/f (1).txt'), 'deep');

  // a directory item
  const did = space.remove('a/b', { recursive: true }).recycledItemId!;
  space.mkdir('a/b', {});
  t.same(space.restore(did, {}).path, ['a', 'b (1)'], 'directories rename without splitting');
  t.equal(await read(lib, space, 'a/b (1)/c/f (1).txt'), 'deep');
});

t.test('T5: purge, empty, and expiry by retention', async (t) => {
  const { lib, space } = openLib(t);
  for (const n of ['a', 'b', 'c', 'd']) await put(lib, space, n, n, { conflict: 'ask' });
  const a = space.unlink('a').recycledItemId!;
  space.purge(a);
  t.same(space.trashList().map((i) => i.id).includes(a), false, 'purged item gone');
  await expectCode(t, () => space.restore(a, {}), 'RecycledItemNotFound', 'cannot restore a purged item');
  await expectCode(t, () => space.purge(a), 'RecycledItemNotFound', 'cannot purge twice');

  space.unlink('b');
  space.unlink('c');
  const e = await space.emptyTrash();
  t.equal(e.purged, 2, 'empty purges all');
  t.same(space.trashList(), []);

  const old = space.unlink('d').recycledItemId!;
  await sleep(300);
  await put(lib, space, 'e', 'e', { conflict: 'ask' });
  const fresh = space.unlink('e').recycledItemId!;
  t.equal(await space.purgeExpired(0), 0, '0 = keep forever');
  t.equal(await space.purgeExpired(30), 0, 'nothing older than 30 days');
  t.equal(space.trashList().length, 2);
  // 150 ms expressed in days: `old` (300 ms) is past it, `fresh` is not
  const n = await space.purgeExpired(0.15 / 86400);
  t.equal(n, 1, 'one item older than the retention');
  t.same(space.trashList().map((i) => i.id), [fresh]);
  t.notOk(space.trashList().some((i) => i.id === old));
});

t.test('T6: blob bytes go only after no committed metadata references them', async (t) => {
  const { lib, space, blobs } = openLib(t);
  const f = (await put(lib, space, 'unique.txt', 'only here', { conflict: 'ask' })).info;
  const key = f.blob!;
  t.equal(key, sha256('only here'));
  t.ok(await blobs.head(key), 'stored');
  const id = space.unlink('unique.txt').recycledItemId!;
  await lib.collectGarbage();
  t.ok(await blobs.head(key), 'an item in the bin still references it');
  t.equal(await read(lib, space, `.trash/${space.trashList()[0]!.viewName}`), 'only here');
  space.purge(id);
  await lib.collectGarbage();
  t.equal(await blobs.head(key), undefined, 'gone after purge + collection');

  // shared by two files
  const s1 = (await put(lib, space, 's1', 'shared bytes', { conflict: 'ask' })).info;
  const s2 = (await put(lib, space, 's2', 'shared bytes', { conflict: 'ask' })).info;
  t.equal(s1.blob, s2.blob, 'content-addressed: one blob');
  space.remove('s1', { permanent: true });
  await lib.collectGarbage();
  t.ok(await blobs.head(s2.blob!), 'survives while the other file references it');
  t.equal(await read(lib, space, 's2'), 'shared bytes');

  // overwritten content is kept by the bin (T1) until purged; the new content stays
  const o = (await put(lib, space, 'o', 'old content', { conflict: 'ask' })).info;
  await put(lib, space, 'o', 'new content', { conflict: 'overwrite' });
  await lib.collectGarbage();
  t.ok(await blobs.head(o.blob!), 'old content of an overwritten file kept by its bin item');
  space.purge(space.trashList().find((i) => i.originalPath === 'o')!.id);
  await lib.collectGarbage();
  t.equal(await blobs.head(o.blob!), undefined, 'old content collected once its bin item is purged');
  t.equal(await read(lib, space, 'o'), 'new content');

  // a stored-but-uncommitted blob (leased) survives collection; an abandoned one does not
  const pending = await blobOf(lib, 'pending upload');
  await lib.collectGarbage();
  t.ok(await blobs.head(pending.key), 'a leased blob survives collection');
  space.putFile('p', pending, { conflict: 'ask' });
  t.equal(await read(lib, space, 'p'), 'pending upload');
  const dropped = await blobOf(lib, 'abandoned upload');
  lib.abandonBlob(dropped);
  await lib.collectGarbage();
  t.equal(await blobs.head(dropped.key), undefined, 'an abandoned blob is collected');

  // The same bytes written again while the collector is deleting them (rm, then cp again at
  // once): the new upload waits for the delete and stores them anew; nothing is lost.
  for (let round = 0; round < 5; round++) {
    const body = `again and again ${round}`;
    await put(lib, space, 'again', body, { conflict: 'ask' });
    space.remove('again', { permanent: true }); // schedules the blob's collection now
    const again = (await put(lib, space, 'again', body, { conflict: 'ask' })).info;
    await lib.collectGarbage();
    t.ok(await blobs.head(again.blob!), `round ${round}: the rewritten blob is stored`);
    t.equal(await read(lib, space, 'again'), body, `round ${round}: and reads back`);
    space.remove('again', { permanent: true });
  }
});


t.test('T3/L12: links cascaded with a file are shown in the bin view beside it, and still resolve there', async (t) => {
  const { lib, space } = await catFixture(t);
  space.mkdir('more', {});
  space.createLink('more/cat', 'photos/cat.jpg', {});
  const { recycledItemId: id } = space.unlink('photos/cat.jpg');
  const names = space.readdir('.trash').map((e) => e.name).sort();
  t.same(names, [`${id}-cat`, `${id}-cat (1)`, `${id}-cat.jpg`], 'target and both links under the same item id');
  t.equal(space.trashList().length, 1, 'still one item (T2): the links are part of it');
  t.equal(space.readlink(`.trash/${id}-cat`), `${id}-cat.jpg`, 'readlink inside the bin points at the trashed target');
  t.equal(await read(lib, space, `.trash/${id}-cat (1)`), 'meow', 'reads through a cascaded link work in the bin');
  await expectCode(t, () => space.unlink(`.trash/${id}-cat`), 'ReadOnly', 'the view is read-only');
  space.restore(id!, {});
  t.same(space.readdir('.trash').map((e) => e.name), [], 'restore empties the view');
  t.equal(space.readlink('links/cat'), '../photos/cat.jpg');
  t.equal(space.readlink('more/cat'), '../photos/cat.jpg');
});

// -------------------------------------------------------------------------------------------
// One replacement rule (C3, L10, L11, T1): whatever replaces a file or link, the replaced node
// goes to the recycle bin — never deleted for good; a file replaced by a file keeps its links live
// (rebound to the newcomer), anything else takes them to the bin.

t.test('T1/C3: every replacement sends the replaced node to the bin; links rebound to a file that takes its place (L10)', async (t) => {
  const replacements: Array<[string, (f: Awaited<ReturnType<typeof catFixture>>) => Promise<unknown> | unknown, 'file' | 'other']> = [
    ['upload with overwrite (in place)', ({ lib, space }) => put(lib, space, 'photos/cat.jpg', 'new', { conflict: 'overwrite' }), 'file'],
    ['copy over', async ({ lib, space }) => {
      await put(lib, space, 'new.jpg', 'new', { conflict: 'ask' });
      return space.copy('new.jpg', 'photos/cat.jpg', { conflict: 'overwrite' });
    }, 'file'],
    ['move over', async ({ lib, space }) => {
      await put(lib, space, 'new.jpg', 'new', { conflict: 'ask' });
      return space.move('new.jpg', 'photos/cat.jpg', { conflict: 'overwrite' });
    }, 'file'],
    ['rename(2) over', async ({ lib, space }) => {
      await put(lib, space, 'new.jpg', 'new', { conflict: 'ask' });
      return space.rename('new.jpg', 'photos/cat.jpg');
    }, 'file'],
    ['restore over', async ({ lib, space }) => {
      await put(lib, space, 'photos/new.jpg', 'new', { conflict: 'ask' });
      const id = space.unlink('photos/new.jpg').recycledItemId!;
      space.rename('photos/cat.jpg', 'photos/new.jpg'); // the newer file now sits at the item's path
      void id;
      return space.restore(id, { conflict: 'overwrite' });
    }, 'file'],
    ['a link over (L11)', async ({ lib, space }) => {
      await put(lib, space, 'other.jpg', 'other', { conflict: 'ask' });
      return space.createLink('photos/cat.jpg', 'other.jpg', { conflict: 'overwrite' });
    }, 'other'],
    ['a BOS symlink over (L11)', ({ space }) => space.putSymlink('photos/cat.jpg', 'other.jpg', {}), 'other'],
    ['a directory moved over (L11)', ({ space }) => {
      space.mkdir('d', {});
      return space.move('d', 'photos/cat.jpg', { conflict: 'overwrite' });
    }, 'other'],
    ['mkdir with overwrite (L11)', ({ space }) => space.mkdir('photos/cat.jpg', { conflict: 'overwrite' }), 'other'],
  ];
  for (const [what, replace, by] of replacements) {
    await t.test(what, async (t) => {
      const f = await catFixture(t);
      const { lib, space, link } = f;
      const restoreCase = what === 'restore over';
      const binnedPath = restoreCase ? 'photos/new.jpg' : 'photos/cat.jpg';
      const before = space.trashList().length;
      await replace(f);
      const items = space.trashList().filter((i) => i.originalPath === binnedPath && i.kind === 'file');
      t.equal(items.length, 1, 'the replaced file is a bin item');
      const it = items[0]!;
      t.ok(space.trashList().length > before);
      t.equal(await read(lib, space, `.trash/${it.viewName}`), 'meow', 'with its content');
      if (by === 'file') {
        t.same(it.links, [], 'its links stayed live');
        t.equal(space.stat('links/cat', { follow: false }).link?.targetNode, space.stat(binnedPath, {}).id, 'rebound to the file now at its path');
        t.equal(await read(lib, space, 'links/cat'), 'new', 'and show the new content');
      } else {
        t.same(it.links, [{ nodeId: link.id, originalPath: 'links/cat' }], 'its links went along (L12)');
        t.notOk(exists(space, 'links/cat'));
      }
      space.restore(it.id, { conflict: 'rename' });
      t.same(space.trashList().filter((i) => i.id === it.id), [], 'and it can be restored');
    });
  }
});

t.test('T1: an overwritten link goes to the bin; the same bytes uploaded again keep nothing', async (t) => {
  const { lib, space } = await catFixture(t);
  await put(lib, space, 'links/cat', 'a file now', { conflict: 'overwrite' });
  const items = space.trashList();
  t.equal(items.length, 1);
  t.equal(items[0]!.kind, 'link', 'the replaced link is an item');
  t.equal(items[0]!.originalPath, 'links/cat');
  await put(lib, space, 'links/cat', 'a file now', { conflict: 'overwrite' });
  t.equal(space.trashList().length, 1, 'identical bytes: nothing was replaced, nothing to keep');
});

t.test('C5 (store side): authorize sees the source kind and what would be replaced, before anything changes', async (t) => {
  const { lib, space } = await catFixture(t);
  await put(lib, space, 'x.txt', 'x', { conflict: 'ask' });
  const seen: unknown[] = [];
  const refuse = (facts: unknown) => {
    seen.push(facts);
    throw new Error('refused');
  };
  const before = [...walk(space).keys()].sort();
  await t.rejects(async () => space.move('photos', 'x.txt', { conflict: 'overwrite', authorize: refuse }), /refused/);
  await t.rejects(async () => space.copy('x.txt', 'photos/cat.jpg', { conflict: 'overwrite', authorize: refuse }), /refused/);
  await t.rejects(async () => space.mkdir('x.txt', { conflict: 'overwrite', authorize: refuse }), /refused/);
  await t.rejects(async () => space.copy('x.txt', 'new.txt', { authorize: refuse }), /refused/);
  await t.rejects(async () => put(lib, space, 'x.txt', 'y', { conflict: 'overwrite', authorize: refuse }), /refused/);
  t.same(seen, [
    { source: 'dir', replacing: 'file' },
    { source: 'file', replacing: 'file' },
    { replacing: 'file' },
    { source: 'file' },
    { replacing: 'file' },
  ]);
  t.same([...walk(space).keys()].sort(), before, 'nothing changed');
  t.same(space.trashList(), [], 'nothing went to the bin');
  await expectCode(t, () => space.move('photos', 'p2', { kind: 'file' }), 'IsADirectory', 'a file endpoint cannot move a directory');
  await expectCode(t, () => space.copy('x.txt', 'x2', { kind: 'dir' }), 'NotADirectory', 'a directory endpoint cannot copy a file');
});

// -------------------------------------------------------------------------------------------
// D10: links made through a dialect (or the CLI) never lead outside the space

t.test('D10/N3: BOS symlink targets with . or .. segments are refused; keys stay inside the space', async (t) => {
  const { space } = openLib(t);
  space.mkdir('docs', {});
  for (const target of ['../../../../OUTSIDE', 'docs/../../..', '..', './x', 'docs/./a', 'a/..']) {
    await expectCode(t, () => space.putSymlink('docs/l', target, {}), 'InvalidSourceFile', `target ${target}`);
  }
  t.notOk(exists(space, 'docs/l'), 'nothing created');
  const ok = space.putSymlink('docs/l', '/docs//a.txt', {});
  t.equal(ok.info.link?.targetPath, 'docs/a.txt', 'a leading / and empty segments are collapsed');
  t.equal(space.readlink('docs/l'), 'a.txt');
});

t.test('D10: a BOS key stored before N3 was enforced stays inside the space (.. stops at the root, as in a chroot)', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('a/b', { parents: true });
  await put(lib, space, 'OUTSIDE', 'inside after all', { conflict: 'ask' });
  space.putSymlink('a/b/l', 'placeholder', {});
  // what an older smhfs stored for `x-bce-symlink-target: ../../../../OUTSIDE`
  lib.db.prepare("UPDATE nodes SET link_path = '../../../../OUTSIDE' WHERE id = ?").run(space.stat('a/b/l', {}).id);
  const info = space.stat('a/b/l', {});
  t.equal(info.link?.targetPath, 'OUTSIDE', 'targetPath (SMH linkTo) inside the space');
  t.equal(space.readlink('a/b/l'), '../../OUTSIDE', 'readlink stays under the mountpoint');
  t.equal(resolveFrom('a/b', space.readlink('a/b/l')), 'OUTSIDE', 'and leads where targetPath says');
  t.equal(await read(lib, space, 'a/b/l'), 'inside after all', 'reads agree');
  t.equal(space.resolveRead('a/b/l', 'bos').node.path, 'OUTSIDE', 'BOS GET agrees');
});

t.test('D10: a path link made in the mount cannot be copied or moved through a dialect to where it leads outside', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('m2/b/c', { parents: true });
  space.symlink('m2/b/c/up', '../../..', {}); // the space root, from where it is
  space.symlink('m2/b/c/abs', '/etc/passwd', {});
  await put(lib, space, 'f.txt', 'f', { conflict: 'ask' });
  t.equal(space.stat('m2/b/c/up', {}).link?.targetPath, '', 'it leads to the root now');

  const before = [...walk(space).keys()].sort();
  await expectCode(t, () => space.copy('m2/b/c/up', 'up-B', {}), 'InvalidSourceFile', 'copy to the root: would lead 3 levels above it');
  await expectCode(t, () => space.move('m2/b/c/up', 'up-B', {}), 'InvalidSourceFile', 'move to the root');
  await expectCode(t, () => space.move('m2/b', 'b', {}), 'InvalidSourceFile', 'moving its directory up');
  await expectCode(t, () => space.copy('m2', 'x', {}), 'InvalidSourceFile', 'copying a tree holding an absolute link');
  t.same([...walk(space).keys()].sort(), before, 'nothing changed');

  t.same(space.copy('m2/b/c/up', 'm2/b/c/up2', {}).path, ['m2', 'b', 'c', 'up2'], 'a copy beside it still leads inside: allowed');
  space.mkdir('deep/er/still', { parents: true });
  t.same(space.move('m2', 'deep/er/still/m2', {}).path, ['deep', 'er', 'still', 'm2'], 'moving deeper keeps it inside (absolute links move unchanged)');
  t.equal(space.stat('deep/er/still/m2/b/c/up', {}).link?.targetPath, 'deep/er/still', 'and it leads inside');

  // Through a link on the way: a/b/hop leads to the root, so `a/b/hop/..` climbs out of the space
  // the way the kernel walks it, although on paper it stays two levels down.
  space.mkdir('a/b', { parents: true });
  space.symlink('a/b/hop', '../..', {});
  t.equal(space.leadsOutside([], 'a/b/hop/..'), true, 'a/b/hop/.. from the root leads outside');
  t.equal(space.leadsOutside([], 'a/b/hop/f.txt'), false, 'a/b/hop/f.txt does not');
  space.mkdir('z', {});
  space.symlink('z/p', '../a/b/hop/..', {});
  await expectCode(t, () => space.copy('z/p', 'z/p2', {}), 'InvalidSourceFile', 'a copy of it is refused even beside it');
});

// -------------------------------------------------------------------------------------------
// Depth: PATH_MAX semantics and iterative walks

t.test('PathTooLong: a path of more than 4095 bytes is refused before any walk; copies cannot exceed it', async (t) => {
  const { lib, space } = openLib(t);
  const deep = Array.from({ length: 7000 }, () => 'a').join('/');
  await expectCode(t, () => space.mkdir(deep, { parents: true }), 'PathTooLong', 'mkdir -p of 7,000 levels');
  await expectCode(t, () => space.putSymlink(deep, 'x', {}), 'PathTooLong', 'BOS key of 7,000 levels');
  await expectCode(t, () => space.stat(deep, {}), 'PathTooLong', 'a lookup of 7,000 levels');
  t.notOk(exists(space, 'a'), 'nothing created');
  const ok = Array.from({ length: 2047 }, () => 'a').join('/') + '/b'; // 4095 bytes
  t.equal(Buffer.byteLength(ok), 4095);
  space.mkdir(ok, { parents: true });
  // Two such chains stacked by a move (moves keep shapes): 4,096 levels deep.
  space.mkdir('top', {});
  const chain2 = 'top/' + Array.from({ length: 2045 }, () => 'c').join('/');
  space.mkdir(chain2, { parents: true });
  space.move('a', chain2 + '/a', {});
  const r = await expectCode(t, () => space.copy('top', 'copy', {}), 'PathTooLong', 'copying a 4,096-level tree: refused, not a stack overflow');
  t.match(r?.message ?? '', /PATH_MAX/);
  t.notOk(exists(space, 'copy'), 'nothing copied');
  void lib;
});

t.test('L15: purging a deep chain deletes a full batch each time (linear, no recursion)', async (t) => {
  const { lib, space } = openLib(t);
  const chain = Array.from({ length: 2000 }, () => 'd').join('/');
  space.mkdir(chain, { parents: true });
  space.mkdir('top', {});
  space.move('d', 'top/d', {});
  space.mkdir('d', {});
  space.mkdir(chain, { parents: true });
  space.move('d', 'top/d/' + Array.from({ length: 1999 }, () => 'd').join('/') + '/e', {});
  const { taskId } = space.remove('top', { permanent: true, recursive: true });
  t.type(taskId, 'number');
  const task = lib.task(taskId!);
  t.equal(task.total, 4001, '4,000 levels under top, and top');
  const root = (lib.db.prepare('SELECT root FROM tasks WHERE id = ?').get(taskId) as { root: number }).root;
  let batches = 0;
  let deleted = 0;
  for (;;) {
    const r = space.purgeBatch(root, 500);
    batches++;
    deleted += r.deleted;
    if (r.finished) break;
    t.equal(r.deleted, 500, `batch ${batches} deleted a full batch`);
    if (batches > 20) break;
  }
  t.equal(deleted, 4001, 'everything deleted');
  t.equal(batches, 9, 'in ceil(4001 / 500) batches');
});
