/**
 * SPEC section 9 for the store: every rule violation and malformed argument throws an SmhError
 * with a stable code, and the database is exactly the same before and after (a full dump of
 * every table, compared).
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Library } from '../src/store/library.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import type { Conflict, StorageClass } from '../src/store/types.js';
import {
  blobOf,
  readerOf,
  dumpDb,
  expectCode,
  expectUnchanged,
  openLib,
  put,
  read,
  tempDir,
} from './helpers/store.js';

const SN = 'SameNameDirectoryOrFileExists';
const DST = ['InvalidDestinationPath', 'InvalidFileName'] as const;
const SRC = ['InvalidSourceFile'] as const;

/**
 * photos/cat.jpg + links/cat (bound), links/p (path link, dangling), docs/ (empty),
 * full/inner.txt, and one recycle item (old.txt).
 */
async function fixture(t: Test) {
  const L = openLib(t);
  const { lib, space } = L;
  space.mkdir('photos', {});
  space.mkdir('links', {});
  space.mkdir('docs', {});
  space.mkdir('full', {});
  await put(lib, space, 'photos/cat.jpg', 'meow', { conflict: 'ask' });
  await put(lib, space, 'full/inner.txt', 'inner', { conflict: 'ask' });
  await put(lib, space, 'old.txt', 'old', { conflict: 'ask' });
  space.createLink('links/cat', 'photos/cat.jpg', {});
  space.symlink('links/p', 'nowhere', {});
  const oldItem = space.unlink('old.txt').recycledItemId!;
  const ref = await blobOf(lib, 'a blob ready to commit');
  return { ...L, oldItem, ref };
}

t.test('N1: over-long names change nothing', async (t) => {
  const { dir, space, ref } = await fixture(t);
  const long = 'x'.repeat(256);
  const longMb = '猫'.repeat(86); // 258 bytes, 86 characters
  await expectUnchanged(t, dir, () => space.putFile(`docs/${long}`, ref, { conflict: 'ask' }), 'FileNameLengthExceed', 'upload');
  await expectUnchanged(t, dir, () => space.putFile(`docs/${longMb}`, ref, { conflict: 'ask' }), 'FileNameLengthExceed', 'upload, multibyte');
  await expectUnchanged(t, dir, () => space.mkdir(`docs/${long}`, {}), 'DirectoryNameLengthExceed', 'mkdir');
  await expectUnchanged(t, dir, () => space.mkdir(`docs/new/${long}`, { parents: true }), 'DirectoryNameLengthExceed', 'mkdir -p (no partial parents)');
  await expectUnchanged(t, dir, () => space.createLink(`links/${long}`, 'photos/cat.jpg', {}), 'FileNameLengthExceed', 'createLink');
  await expectUnchanged(t, dir, () => space.symlink(`links/${long}`, '../photos/cat.jpg', {}), 'FileNameLengthExceed', 'symlink');
  await expectUnchanged(t, dir, () => space.putSymlink(`links/${long}`, 'photos/cat.jpg', {}), 'FileNameLengthExceed', 'putSymlink');
  await expectUnchanged(t, dir, () => space.createFile(`docs/${long}`, {}), 'FileNameLengthExceed', 'create');
  await expectUnchanged(t, dir, () => space.move('photos/cat.jpg', `docs/${long}`, {}), 'FileNameLengthExceed', 'move a file');
  await expectUnchanged(t, dir, () => space.move('full', `docs/${long}`, {}), 'DirectoryNameLengthExceed', 'move a dir');
  await expectUnchanged(t, dir, () => space.copy('photos/cat.jpg', `docs/${long}`, {}), 'FileNameLengthExceed', 'copy');
  await expectUnchanged(t, dir, () => space.rename('photos/cat.jpg', `docs/${long}`), 'FileNameLengthExceed', 'rename(2)');
  await expectUnchanged(t, dir, () => space.putFile('docs/a\0b', ref, { conflict: 'ask' }), 'InvalidFileName', 'NUL');
});

t.test('N2: over-long link targets change nothing', async (t) => {
  const { dir, space } = await fixture(t);
  const tooLong = 'a/'.repeat(2048);
  await expectUnchanged(t, dir, () => space.symlink('links/x', tooLong, {}), 'LinkTargetTooLong', 'symlink');
  await expectUnchanged(t, dir, () => space.putSymlink('links/x', tooLong, {}), 'LinkTargetTooLong', 'putSymlink');
});

t.test('N3: . and .. segments change nothing', async (t) => {
  const { dir, space, ref } = await fixture(t);
  await expectUnchanged(t, dir, () => space.putFile('docs/../x', ref, { conflict: 'ask' }), DST, 'upload');
  await expectUnchanged(t, dir, () => space.putFile('../x', ref, { conflict: 'ask' }), DST, 'upload above the root');
  await expectUnchanged(t, dir, () => space.mkdir('docs/./y', {}), DST, 'mkdir .');
  await expectUnchanged(t, dir, () => space.mkdir('docs/../../y', { parents: true }), DST, 'mkdir -p ..');
  await expectUnchanged(t, dir, () => space.createLink('links/x', 'photos/../photos/cat.jpg', {}), SRC, 'linkTo ..');
  await expectUnchanged(t, dir, () => space.createLink('links/../x', 'photos/cat.jpg', {}), DST, 'link path ..');
  await expectUnchanged(t, dir, () => space.move('photos/../photos/cat.jpg', 'docs/c', {}), SRC, 'move from ..');
  await expectUnchanged(t, dir, () => space.move('photos/cat.jpg', 'docs/../../c', {}), DST, 'move to ..');
  await expectUnchanged(t, dir, () => space.copy('./photos/cat.jpg', 'docs/c', {}), SRC, 'copy from .');
  await expectUnchanged(t, dir, () => space.copy('photos/cat.jpg', 'docs/..', {}), DST, 'copy to ..');
  await expectUnchanged(t, dir, () => space.putSymlink('docs/../k', 'photos/cat.jpg', {}), DST, 'BOS key ..');
  await expectUnchanged(t, dir, () => space.move('', 'docs/root', {}), [...SRC, 'InvalidDestinationPath'], 'moving the root');
  await expectUnchanged(t, dir, () => space.move('photos', '', {}), ['InvalidDestinationPath', SN], 'moving onto the root');
});

t.test('N4/T3: writes into the bin view change nothing', async (t) => {
  const { dir, space, ref, oldItem } = await fixture(t);
  const view = space.trashList().find((i) => i.id === oldItem)!.viewName;
  await expectUnchanged(t, dir, () => space.putFile('.trash/x', ref, { conflict: 'ask' }), 'ReadOnly', 'upload into .trash');
  await expectUnchanged(t, dir, () => space.putFile(`.trash/${view}`, ref, { conflict: 'overwrite' }), 'ReadOnly', 'overwrite an item');
  await expectUnchanged(t, dir, () => space.unlink(`.trash/${view}`), 'ReadOnly', 'unlink an item');
  await expectUnchanged(t, dir, () => space.move('photos/cat.jpg', `.trash/cat.jpg`, {}), 'ReadOnly', 'move into .trash');
  await expectUnchanged(t, dir, () => space.mkdir('.trash', {}), ['InvalidDestinationPath', 'ReadOnly', SN], 'mkdir .trash');
  await expectUnchanged(t, dir, () => space.rmdir('.trash'), ['InvalidDestinationPath', 'ReadOnly', 'DirectoryNotEmpty'], 'rmdir .trash');
});

t.test('L2: links to directories, to links, to nothing, under nothing change nothing', async (t) => {
  const { dir, space } = await fixture(t);
  await expectUnchanged(t, dir, () => space.createLink('links/d', 'docs', {}), 'InvalidSourceFile', 'to a directory');
  await expectUnchanged(t, dir, () => space.createLink('links/d', 'links/cat', {}), 'InvalidSourceFile', 'to a bound link');
  await expectUnchanged(t, dir, () => space.createLink('links/d', 'links/p', {}), 'InvalidSourceFile', 'to a path link');
  await expectUnchanged(t, dir, () => space.createLink('links/d', 'photos/none.jpg', {}), 'SourceFileNotFound', 'to nothing');
  await expectUnchanged(t, dir, () => space.createLink('links/d', 'old.txt', {}), 'SourceFileNotFound', 'to a trashed file');
  await expectUnchanged(t, dir, () => space.createLink('nope/d', 'photos/cat.jpg', {}), 'DirectoryNotFound', 'parent missing');
  await expectUnchanged(t, dir, () => space.createLink('links/cat', 'photos/cat.jpg', { conflict: 'ask' }), SN, 'ask');
  await expectUnchanged(t, dir, () => space.createLink('docs', 'photos/cat.jpg', { conflict: 'overwrite' }), SN, 'overwrite a dir');
});

t.test('L3: refused BOS symlinks change nothing', async (t) => {
  const { dir, space } = await fixture(t);
  await expectUnchanged(t, dir, () => space.putSymlink('photos/cat.jpg', 'x', { forbidOverwrite: true }), 'ObjectAlreadyExists', 'forbid overwrite');
  await expectUnchanged(t, dir, () => space.putSymlink('links/a', 'x', { storageClass: 'ARCHIVE' }), 'InvalidArgument', 'ARCHIVE');
  await expectUnchanged(
    t,
    dir,
    () => space.putSymlink('links/a', 'x', { storageClass: 'GLACIER' as unknown as StorageClass }),
    'InvalidArgument',
    'unknown storage class',
  );
  await expectUnchanged(t, dir, () => space.putSymlink('links/cat', 'x', { storageClass: 'ARCHIVE' }), 'InvalidArgument', 'ARCHIVE over an existing link');
});

t.test('L6: refused BOS reads change nothing', async (t) => {
  const { dir, space } = await fixture(t);
  space.putSymlink('links/second', 'links/cat', {});
  await expectUnchanged(t, dir, () => space.resolveRead('links/p', 'bos'), 'SymlinkTargetNotExist', 'dangling');
  await expectUnchanged(t, dir, () => space.resolveRead('links/second', 'bos'), 'InvalidTargetType', 'secondary');
});

t.test('L16: restoring a link whose target is gone changes nothing', async (t) => {
  const { dir, lib, space } = await fixture(t);
  const li = space.unlink('links/cat').recycledItemId!;
  space.unlink('photos/cat.jpg');
  await expectUnchanged(t, dir, () => space.restore(li, {}), 'SourceFileNotFound', 'target trashed');
  await expectUnchanged(t, dir, () => space.restore(li, { conflict: 'overwrite' }), 'SourceFileNotFound', 'target trashed, overwrite');
  const fi = space.trashList().find((i) => i.originalPath === 'photos/cat.jpg')!.id;
  space.purge(fi);
  await lib.collectGarbage(); // let the purge's blob collection settle before the 'before' dump
  // SPEC L16 names "purged" too: the item may remain and be refused, or be gone with its target
  await expectUnchanged(t, dir, () => space.restore(li, {}), ['SourceFileNotFound', 'RecycledItemNotFound'], 'target purged');
});

t.test('T4/T5: unknown ids, refused restores change nothing', async (t) => {
  const { dir, lib, space, oldItem } = await fixture(t);
  await expectUnchanged(t, dir, () => space.purge(99999), 'RecycledItemNotFound', 'purge unknown id');
  await expectUnchanged(t, dir, () => space.purge(-1), ['RecycledItemNotFound', 'InvalidArgument'], 'purge -1');
  await expectUnchanged(t, dir, () => space.purge(Number.NaN), ['RecycledItemNotFound', 'InvalidArgument'], 'purge NaN');
  await expectUnchanged(t, dir, () => space.restore(99999, {}), 'RecycledItemNotFound', 'restore unknown id');
  await expectUnchanged(t, dir, () => space.purgeExpired(-1), 'InvalidArgument', 'negative retention');
  await expectUnchanged(t, dir, () => space.purgeExpired(Number.NaN), 'InvalidArgument', 'NaN retention');
  await expectUnchanged(t, dir, () => lib.task(4242), 'TaskNotFound', 'unknown task');
  await expectUnchanged(t, dir, () => lib.space('no-such-space'), 'SpaceNotFound', 'unknown space');
  await put(lib, space, 'old.txt', 'squatter', { conflict: 'ask' });
  await expectUnchanged(t, dir, () => space.restore(oldItem, { conflict: 'ask' }), SN, 'restore with ask onto a name');
  // the item of another space is not visible here
  const other = lib.createSpace('other');
  await expectUnchanged(t, dir, () => other.restore(oldItem, {}), 'RecycledItemNotFound', 'item of another space');
  await expectUnchanged(t, dir, () => other.purge(oldItem), 'RecycledItemNotFound', 'purge from another space');
});

t.test('C: bad conflict strategy strings change nothing', async (t) => {
  const { dir, space, ref, oldItem } = await fixture(t);
  for (const bad of ['replace', 'ASK', '', 'rename ']) {
    const c = bad as unknown as Conflict;
    await expectUnchanged(t, dir, () => space.putFile('docs/n', ref, { conflict: c }), 'InvalidArgument', `upload ${JSON.stringify(bad)}`);
    await expectUnchanged(t, dir, () => space.createLink('docs/n', 'photos/cat.jpg', { conflict: c }), 'InvalidArgument', `createLink ${JSON.stringify(bad)}`);
    await expectUnchanged(t, dir, () => space.move('photos/cat.jpg', 'docs/n', { conflict: c }), 'InvalidArgument', `move ${JSON.stringify(bad)}`);
    await expectUnchanged(t, dir, () => space.copy('photos/cat.jpg', 'docs/n', { conflict: c }), 'InvalidArgument', `copy ${JSON.stringify(bad)}`);
    await expectUnchanged(t, dir, () => space.mkdir('docs/n', { conflict: c }), 'InvalidArgument', `mkdir ${JSON.stringify(bad)}`);
    await expectUnchanged(t, dir, () => space.restore(oldItem, { conflict: c }), 'InvalidArgument', `restore ${JSON.stringify(bad)}`);
  }
  await expectUnchanged(
    t,
    dir,
    () => space.putFile('docs/n', ref, { conflict: 'ask', storageClass: 'GLACIER' as unknown as StorageClass }),
    'InvalidArgument',
    'upload with an unknown storage class',
  );
});

t.test('tree shape violations change nothing', async (t) => {
  const { dir, space, ref } = await fixture(t);
  space.mkdir('full/sub', {});
  await expectUnchanged(t, dir, () => space.putFile('photos/cat.jpg', ref, { conflict: 'ask' }), SN, 'C1 upload');
  await expectUnchanged(t, dir, () => space.putFile('docs', ref, { conflict: 'overwrite' }), SN, 'C3 overwrite a directory');
  await expectUnchanged(t, dir, () => space.mkdir('docs', {}), SN, 'C4 mkdir defaults to ask');
  await expectUnchanged(t, dir, () => space.move('full', 'full/sub/x', {}), 'MoveIntoItself', 'move into itself');
  await expectUnchanged(t, dir, () => space.rename('full', 'full/sub'), ['MoveIntoItself', 'DirectoryNotEmpty'], 'rename(2) into itself');
  await expectUnchanged(t, dir, () => space.rmdir('full'), 'DirectoryNotEmpty', 'rmdir non-empty');
  await expectUnchanged(t, dir, () => space.rmdir('photos/cat.jpg'), 'NotADirectory', 'rmdir a file');
  await expectUnchanged(t, dir, () => space.unlink('docs'), ['IsADirectory', 'NotPermitted'], 'unlink a directory');
  await expectUnchanged(t, dir, () => space.createFile('photos/cat.jpg', {}), SN, 'create(2) over a file');
  await expectUnchanged(t, dir, () => space.symlink('links/cat', 'x', {}), SN, 'symlink over a link');
  await expectUnchanged(t, dir, () => space.putFile('photos/cat.jpg/x', ref, { conflict: 'ask' }), ['NotADirectory', 'DirectoryNotFound'], 'through a file');
  await expectUnchanged(t, dir, () => space.putFile('nope/x', ref, { conflict: 'ask' }), ['DirectoryNotFound', 'FileNotFound'], 'missing parent');
  await expectUnchanged(t, dir, () => space.move('nope', 'docs/x', {}), 'SourceFileNotFound', 'move a missing source');
  await expectUnchanged(t, dir, () => space.copy('nope', 'docs/x', {}), 'SourceFileNotFound', 'copy a missing source');
  await expectUnchanged(t, dir, () => space.remove('nope', {}), ['FileNotFound', 'SourceFileNotFound'], 'remove missing');
  await expectUnchanged(t, dir, () => space.stat('nope', {}), 'FileNotFound', 'stat missing');
  await expectUnchanged(t, dir, () => space.readlink('photos/cat.jpg'), ['InvalidArgument', 'InvalidTargetType', 'NotSupported'], 'readlink of a file');
});

// -------------------------------------------------------------------------------------------
// library folders

t.test('NotALibrary: folders that are not a library are refused and left alone', async (t) => {
  const base = tempDir();
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const open = (d: string, create: boolean) => () => Library.open(d, { create, blobStore: new MemoryBlobStore() });

  const missing = join(base, 'missing');
  await expectCode(t, open(missing, false), 'NotALibrary', 'a missing folder without create');
  t.notOk(existsSync(missing), 'not created');

  const empty = join(base, 'empty');
  mkdirSync(empty);
  await expectCode(t, open(empty, false), 'NotALibrary', 'an empty folder without create');
  t.same(readdirSync(empty), [], 'nothing written into it');

  const garbage = join(base, 'garbage');
  mkdirSync(garbage);
  writeFileSync(join(garbage, 'library.db'), 'this is not a database, it is a text file\n'.repeat(200));
  const g0 = readFileSync(join(garbage, 'library.db'));
  await expectCode(t, open(garbage, false), 'NotALibrary', 'library.db is not SQLite');
  await expectCode(t, open(garbage, true), 'NotALibrary', 'library.db is not SQLite, even with create');
  t.same(readFileSync(join(garbage, 'library.db')), g0, 'the file is untouched');

  const foreign = join(base, 'foreign');
  mkdirSync(foreign);
  const fdb = new Database(join(foreign, 'library.db'));
  fdb.exec('CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES (\'soup\')');
  fdb.close();
  const f0 = readFileSync(join(foreign, 'library.db'));
  await expectCode(t, open(foreign, false), 'NotALibrary', 'an SQLite file of something else');
  await expectCode(t, open(foreign, true), 'NotALibrary', 'an SQLite file of something else, even with create');
  t.same(readFileSync(join(foreign, 'library.db')), f0, 'the foreign database is untouched');

  const file = join(base, 'plain-file');
  writeFileSync(file, 'x');
  await expectCode(t, open(file, true), ['NotALibrary', 'NotADirectory'], 'a plain file as the library folder');
});

t.test('SchemaTooNew: a database from a newer schema is refused clearly', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lib = Library.open(dir, { create: true, blobStore: new MemoryBlobStore() });
  await put(lib, lib.space('-'), 'f', 'x', { conflict: 'ask' });
  lib.close();
  const db = new Database(join(dir, 'library.db'));
  const v = db.pragma('user_version', { simple: true }) as number;
  t.ok(v >= 1, `a created library has a schema version (${v})`);
  db.pragma(`user_version = ${v + 100}`);
  db.close();
  const before = dumpDb(dir);
  const e = await expectCode(t, () => Library.open(dir, { create: true, blobStore: new MemoryBlobStore() }), 'SchemaTooNew');
  t.match(e?.message ?? '', new RegExp(String(v + 100)), 'the message names the version found');
  t.same(dumpDb(dir), before, 'nothing migrated or changed');
});

/**
 * A read-only library folder. Tests run as root in CI, and root ignores permission bits, so
 * chmod alone proves nothing there. As root we therefore run the attempt in a child process as
 * the unprivileged user `nobody` (uid/gid 65534) against a folder owned by root with modes
 * 0555/0444 — a real read-only library. Acceptable behaviours: Library.open refuses with
 * LibraryReadOnly, or it opens and every write fails with LibraryReadOnly while reads work.
 * Either way the database must be unchanged. As non-root the same is checked in-process.
 */
t.test('LibraryReadOnly: a read-only library folder', async (t) => {
  const base = tempDir();
  chmodSync(base, 0o755);
  const dir = join(base, 'lib');
  t.teardown(() => {
    chmodSync(dir, 0o755);
    rmSync(base, { recursive: true, force: true });
  });
  {
    // default blob store (local, inside the folder), so the child can read content
    const lib = Library.open(dir, { create: true });
    await put(lib, lib.space('-'), 'f.txt', 'readable', { conflict: 'ask' });
    lib.space('-').mkdir('d', {});
    lib.close();
  }
  const before = dumpDb(dir);
  const chmodTree = (p: string, fileMode: number, dirMode: number) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const cp = join(p, e.name);
      if (e.isDirectory()) chmodTree(cp, fileMode, dirMode);
      else chmodSync(cp, fileMode);
    }
    chmodSync(p, dirMode);
  };
  chmodTree(dir, 0o444, 0o555);
  t.teardown(() => chmodTree(dir, 0o644, 0o755));

  const libraryJs = fileURLToPath(new URL('../src/store/library.js', import.meta.url));
  const script = `
    import { Library } from ${JSON.stringify(libraryJs)};
    const out = { open: null, read: null, write: null };
    let lib;
    try { lib = Library.open(${JSON.stringify(dir)}, { create: true }); out.open = 'ok'; }
    catch (e) { out.open = e.code ?? String(e); }
    if (lib) {
      const s = lib.space('-');
      try { const i = s.stat('f.txt', {}); out.read = (await readerOf(lib).readBlob(i.blob, 0, i.size)).toString(); }
      catch (e) { out.read = 'error ' + (e.code ?? String(e)); }
      try { s.mkdir('new', {}); out.write = 'ok'; } catch (e) { out.write = e.code ?? String(e); }
      try { lib.close(); } catch {}
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const isRoot = process.getuid?.() === 0;
  let out: { open: string | null; read: string | null; write: string | null };
  if (isRoot) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      timeout: 60_000,
      cwd: base,
    });
    if (r.error || (r.status !== 0 && !r.stdout)) {
      t.fail(`cannot run a child as nobody here: ${r.error?.message ?? r.stderr}`);
      return;
    }
    out = JSON.parse(r.stdout);
  } else {
    const res: typeof out = { open: null, read: null, write: null };
    let lib: Library | undefined;
    try {
      lib = Library.open(dir, { create: true });
      res.open = 'ok';
    } catch (e) {
      res.open = (e as { code?: string }).code ?? String(e);
    }
    if (lib) {
      const s = lib.space('-');
      try {
        res.read = await read(lib, s, 'f.txt');
      } catch (e) {
        res.read = `error ${(e as { code?: string }).code}`;
      }
      try {
        s.mkdir('new', {});
        res.write = 'ok';
      } catch (e) {
        res.write = (e as { code?: string }).code ?? String(e);
      }
      lib.close();
    }
    out = res;
  }
  t.comment(`read-only library: ${JSON.stringify(out)}`);
  if (out.open === 'ok') {
    t.equal(out.read, 'readable', 'opened read-only: reads work');
    t.equal(out.write, 'LibraryReadOnly', 'opened read-only: a write fails with LibraryReadOnly');
  } else {
    t.equal(out.open, 'LibraryReadOnly', 'open refuses with LibraryReadOnly');
  }
  t.same(dumpDb(dir), before, 'database unchanged');
});
