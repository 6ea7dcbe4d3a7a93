/**
 * The id-addressed writes (issue 10: an inode-addressed adapter — the libfuse 3 binding — names
 * a place as (directory id, name)): mkdirAt, unlinkAt, rmdirAt, renameAt give the outcome their
 * path forms give — the same answer or the same error, and the same tree, bin and link bindings
 * after. Each case runs the path form on one library and the id form on a twin built the same
 * way (so node and item ids agree), then compares.
 */
import t, { type Test } from 'tap';
import { SmhError } from '../src/errors.js';
import type { Library, Space } from '../src/store/library.js';
import type { NodeInfo } from '../src/store/types.js';
import { openLib, put } from './helpers/store.js';
import { inOneSnapshot } from './helpers/store-engines.js';

const MISSING = 987654;

async function twin(t: Test): Promise<{ lib: Library; space: Space; binView: string }> {
  const { lib, space } = openLib(t);
  for (const d of ['photos', 'docs', 'empty', 'full', 'full/sub', 'links']) space.mkdir(d);
  await put(lib, space, 'photos/cat.jpg', 'meow', { conflict: 'ask' });
  await put(lib, space, 'photos/dog.jpg', 'woof', { conflict: 'ask' });
  await put(lib, space, 'docs/a.txt', 'a', { conflict: 'ask' });
  await put(lib, space, 'docs/b.txt', 'b', { conflict: 'ask' });
  space.createLink('links/cat', 'photos/cat.jpg');
  space.createLink('links/dog', 'photos/dog.jpg');
  space.symlink('links/rel', '../docs/a.txt');
  const recycledItemId = space.unlink('docs/b.txt').recycledItemId!;
  return { lib, space, binView: space.trashItem(recycledItemId).viewName };
}

/** What a call answered, without its times: a node's identity and shape, or the error's code and message. */
function answer(fn: () => unknown): unknown {
  const node = (i: NodeInfo): unknown => ({ id: i.id, kind: i.kind, mode: i.mode, size: i.size, nlink: i.nlink, uid: i.uid, gid: i.gid });
  try {
    const r = fn() as { id?: number; info?: NodeInfo; path?: string[] | null } | undefined;
    if (r && typeof r === 'object' && 'info' in r && r.info) return { placed: node(r.info), path: r.path };
    if (r && typeof r === 'object' && 'kind' in r) return node(r as unknown as NodeInfo);
    return r;
  } catch (e) {
    if (!(e instanceof SmhError)) throw e;
    return { error: e.code, message: e.message };
  }
}

/** The space as a whole: every path with its node, each link's readlink, the bin's items. */
function state(x: { lib: Library; space: Space }): unknown {
  // One snapshot for the whole walk (PostgreSQL: a BEGIN/COMMIT per multi-statement read otherwise).
  return inOneSnapshot(x.lib, () => stateOf(x.space));
}

function stateOf(space: Space): unknown {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of space.readdir(dir)) {
      if (dir === '' && e.name === '.trash') continue;
      const p = dir ? `${dir}/${e.name}` : e.name;
      const link = e.info.kind === 'link' ? ` -> ${space.readlink(p)}` : '';
      out.push(`${p} #${e.info.id} ${e.info.kind} nlink=${e.info.nlink} size=${e.info.size}${link}`);
      if (e.info.kind === 'dir') walk(p);
    }
  };
  walk('');
  const bin = space.trashList().map((i) => `${i.viewName} ${i.kind} ${i.originalPath}`);
  return { tree: out, bin };
}

interface Case {
  rule: string;
  byPath: (s: Space, binView: string) => unknown;
  byId: (s: Space, id: (path: string) => number, binView: string) => unknown;
}

/** One case in a subtest of its own, so its two libraries are closed when it ends (on PostgreSQL their databases are reused by the next case). */
async function same(t: Test, c: Case): Promise<void> {
  await t.test(c.rule, async (t) => {
    const a = await twin(t);
    const b = await twin(t);
    t.same(state(b), state(a), `${c.rule}: the twins start alike`);
    const id = (path: string): number => (path === '' ? b.space.root : b.space.stat(path).id);
    const byPath = answer(() => c.byPath(a.space, a.binView));
    const byId = answer(() => c.byId(b.space, id, b.binView));
    t.same(byId, byPath, `${c.rule}: same answer (${String(JSON.stringify(byPath)).slice(0, 120)})`);
    t.same(state(b), state(a), `${c.rule}: same tree, links and bin after`);
  });
}

const long = 'n'.repeat(256);

t.test('L9/L10/L11/T3/N1: renameAt gives what rename gives', async (t) => {
  const cases: Case[] = [
    { rule: 'L9 a file within its directory', byPath: (s) => s.rename('photos/cat.jpg', 'photos/kitty.jpg'), byId: (s, id) => s.renameAt(id('photos'), 'cat.jpg', id('photos'), 'kitty.jpg') },
    { rule: 'L9 a file to another directory (its bound link follows)', byPath: (s) => s.rename('photos/cat.jpg', 'docs/cat.jpg'), byId: (s, id) => s.renameAt(id('photos'), 'cat.jpg', id('docs'), 'cat.jpg') },
    { rule: 'L9 a directory', byPath: (s) => s.rename('full', 'docs/full2'), byId: (s, id) => s.renameAt(id(''), 'full', id('docs'), 'full2') },
    { rule: 'L9 onto itself', byPath: (s) => s.rename('photos/cat.jpg', 'photos/cat.jpg'), byId: (s, id) => s.renameAt(id('photos'), 'cat.jpg', id('photos'), 'cat.jpg') },
    { rule: 'L10/L11 a file over a file (the replaced one to the bin, its links rebound)', byPath: (s) => s.rename('photos/dog.jpg', 'photos/cat.jpg'), byId: (s, id) => s.renameAt(id('photos'), 'dog.jpg', id('photos'), 'cat.jpg') },
    { rule: 'a directory over an empty directory', byPath: (s) => s.rename('full/sub', 'empty'), byId: (s, id) => s.renameAt(id('full'), 'sub', id(''), 'empty') },
    { rule: 'a directory over a non-empty directory', byPath: (s) => s.rename('empty', 'full'), byId: (s, id) => s.renameAt(id(''), 'empty', id(''), 'full') },
    { rule: 'a directory into itself', byPath: (s) => s.rename('full', 'full/sub/x'), byId: (s, id) => s.renameAt(id(''), 'full', id('full/sub'), 'x') },
    { rule: 'a directory over a file', byPath: (s) => s.rename('empty', 'docs/a.txt'), byId: (s, id) => s.renameAt(id(''), 'empty', id('docs'), 'a.txt') },
    { rule: 'a file over a directory', byPath: (s) => s.rename('docs/a.txt', 'empty'), byId: (s, id) => s.renameAt(id('docs'), 'a.txt', id(''), 'empty') },
    { rule: 'a missing source', byPath: (s) => s.rename('docs/none', 'docs/x'), byId: (s, id) => s.renameAt(id('docs'), 'none', id('docs'), 'x') },
    { rule: 'a source under a file', byPath: (s) => s.rename('docs/a.txt/x', 'docs/x'), byId: (s, id) => s.renameAt(id('docs/a.txt'), 'x', id('docs'), 'x') },
    { rule: 'a missing destination directory', byPath: (s) => s.rename('docs/a.txt', 'gone/x'), byId: (s, id) => s.renameAt(id('docs'), 'a.txt', MISSING, 'x') },
    { rule: 'a destination under a file', byPath: (s) => s.rename('docs/a.txt', 'photos/cat.jpg/x'), byId: (s, id) => s.renameAt(id('docs'), 'a.txt', id('photos/cat.jpg'), 'x') },
    { rule: 'T3 out of the bin', byPath: (s, v) => s.rename(`.trash/${v}`, 'docs/back'), byId: (s, id, v) => s.renameAt(id('.trash'), v, id('docs'), 'back') },
    { rule: 'T3 into the bin', byPath: (s) => s.rename('docs/a.txt', '.trash/x'), byId: (s, id) => s.renameAt(id('docs'), 'a.txt', id('.trash'), 'x') },
    { rule: 'T3 onto .trash', byPath: (s) => s.rename('docs/a.txt', '.trash'), byId: (s, id) => s.renameAt(id('docs'), 'a.txt', id(''), '.trash') },
    { rule: 'N1 a new name over 255 bytes', byPath: (s) => s.rename('docs/a.txt', `docs/${long}`), byId: (s, id) => s.renameAt(id('docs'), 'a.txt', id('docs'), long) },
    { rule: 'N1 a directory name over 255 bytes', byPath: (s) => s.rename('empty', `docs/${long}`), byId: (s, id) => s.renameAt(id(''), 'empty', id('docs'), long) },
    { rule: 'N1 an invalid new name', byPath: (s) => s.rename('docs/a.txt', 'docs/a\0b'), byId: (s, id) => s.renameAt(id('docs'), 'a.txt', id('docs'), 'a\0b') },
  ];
  for (const c of cases) await same(t, c);
});

t.test('T1/L12/T3: unlinkAt gives what unlink gives', async (t) => {
  const cases: Case[] = [
    { rule: 'T1/L12 a file (to the bin, its bound link with it)', byPath: (s) => s.unlink('photos/cat.jpg'), byId: (s, id) => s.unlinkAt(id('photos'), 'cat.jpg') },
    { rule: 'T1 a link', byPath: (s) => s.unlink('links/dog'), byId: (s, id) => s.unlinkAt(id('links'), 'dog') },
    { rule: 'T1 a symlink', byPath: (s) => s.unlink('links/rel'), byId: (s, id) => s.unlinkAt(id('links'), 'rel') },
    { rule: 'a directory', byPath: (s) => s.unlink('empty'), byId: (s, id) => s.unlinkAt(id(''), 'empty') },
    { rule: 'a missing name', byPath: (s) => s.unlink('docs/none'), byId: (s, id) => s.unlinkAt(id('docs'), 'none') },
    { rule: 'a name under a file', byPath: (s) => s.unlink('docs/a.txt/x'), byId: (s, id) => s.unlinkAt(id('docs/a.txt'), 'x') },
    { rule: 'a name over 255 bytes', byPath: (s) => s.unlink(`docs/${long}`), byId: (s, id) => s.unlinkAt(id('docs'), long) },
    { rule: 'T3 an item in the bin', byPath: (s, v) => s.unlink(`.trash/${v}`), byId: (s, id, v) => s.unlinkAt(id('.trash'), v) },
    { rule: 'T3 the bin itself', byPath: (s) => s.unlink('.trash'), byId: (s, id) => s.unlinkAt(id(''), '.trash') },
  ];
  for (const c of cases) await same(t, c);
});

t.test('T3: rmdirAt gives what rmdir gives', async (t) => {
  const cases: Case[] = [
    { rule: 'an empty directory', byPath: (s) => s.rmdir('full/sub'), byId: (s, id) => s.rmdirAt(id('full'), 'sub') },
    { rule: 'a non-empty directory', byPath: (s) => s.rmdir('full'), byId: (s, id) => s.rmdirAt(id(''), 'full') },
    { rule: 'a file', byPath: (s) => s.rmdir('docs/a.txt'), byId: (s, id) => s.rmdirAt(id('docs'), 'a.txt') },
    { rule: 'a missing name', byPath: (s) => s.rmdir('none'), byId: (s, id) => s.rmdirAt(id(''), 'none') },
    { rule: 'T3 the bin', byPath: (s) => s.rmdir('.trash'), byId: (s, id) => s.rmdirAt(id(''), '.trash') },
    { rule: 'T3 an item in the bin', byPath: (s, v) => s.rmdir(`.trash/${v}`), byId: (s, id, v) => s.rmdirAt(id('.trash'), v) },
  ];
  for (const c of cases) await same(t, c);
});

t.test('M2/C2/T3/N1: mkdirAt gives what mkdir gives', async (t) => {
  const cases: Case[] = [
    { rule: 'a new directory', byPath: (s) => s.mkdir('docs/new'), byId: (s, id) => s.mkdirAt(id('docs'), 'new') },
    { rule: 'M2 owner and mode given', byPath: (s) => s.mkdir('docs/new', { uid: 7, gid: 8, mode: 0o2750 }), byId: (s, id) => s.mkdirAt(id('docs'), 'new', { uid: 7, gid: 8, mode: 0o2750 }) },
    { rule: 'in the root', byPath: (s) => s.mkdir('new'), byId: (s, id) => s.mkdirAt(id(''), 'new') },
    { rule: 'C4 a taken name (the default: ask)', byPath: (s) => s.mkdir('full'), byId: (s, id) => s.mkdirAt(id(''), 'full') },
    { rule: 'C2 a taken name, rename', byPath: (s) => s.mkdir('docs/a.txt', { conflict: 'rename' }), byId: (s, id) => s.mkdirAt(id('docs'), 'a.txt', { conflict: 'rename' }) },
    { rule: 'an invalid conflict strategy', byPath: (s) => s.mkdir('docs/new', { conflict: 'bogus' as never }), byId: (s, id) => s.mkdirAt(id('docs'), 'new', { conflict: 'bogus' as never }) },
    { rule: 'a missing parent', byPath: (s) => s.mkdir('gone/new'), byId: (s) => s.mkdirAt(MISSING, 'new') },
    { rule: 'a parent that is a file', byPath: (s) => s.mkdir('docs/a.txt/new'), byId: (s, id) => s.mkdirAt(id('docs/a.txt'), 'new') },
    { rule: 'T3 in the bin', byPath: (s) => s.mkdir('.trash/new'), byId: (s, id) => s.mkdirAt(id('.trash'), 'new') },
    { rule: 'T3 .trash in the root', byPath: (s) => s.mkdir('.trash'), byId: (s, id) => s.mkdirAt(id(''), '.trash') },
    { rule: 'N1 a name over 255 bytes', byPath: (s) => s.mkdir(`docs/${long}`), byId: (s, id) => s.mkdirAt(id('docs'), long) },
    { rule: 'N1 an invalid name', byPath: (s) => s.mkdir('docs/a\0b'), byId: (s, id) => s.mkdirAt(id('docs'), 'a\0b') },
  ];
  for (const c of cases) await same(t, c);
});

t.test('mkdirAt and renameAt by an id of another space, or of a directory being purged: DirectoryNotFound as for a missing parent', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  const other = lib.createSpace('other');
  t.same(answer(() => space.mkdirAt(other.root, 'x')), answer(() => space.mkdir('gone/x')), 'another space');
  for (let i = 0; i < 3; i++) await put(lib, space, `big/d${i}/f.txt`, 'y', { conflict: 'ask', createParents: true });
  const big = space.stat('big');
  space.remove('big', { permanent: true, recursive: true });
  t.same(answer(() => space.renameAt(space.root, 'd', big.id, 'x')), answer(() => space.rename('d', 'gone/x')), 'a directory being purged');
  t.ok(space.stat('d'), 'nothing moved');
  await lib.runTasks();
});

t.test('N1: a source name that is no single segment is refused as the path form refuses it, or as an invalid name', async (t) => {
  const { space } = openLib(t);
  space.mkdir('d');
  t.same(answer(() => space.unlinkAt(space.root, '..')), answer(() => space.unlink('d/..')), "'..'");
  t.same(answer(() => space.rmdirAt(space.root, 'a\0b')), answer(() => space.rmdir('a\0b')), 'NUL');
  for (const name of ['', 'd/x', '/d']) {
    t.same(answer(() => space.renameAt(space.root, name, space.root, 'e')), { error: 'InvalidFileName', message: `'${name}' is not a valid name` }, `'${name}'`);
  }
  t.ok(space.stat('d'), 'nothing changed');
});

t.test('M2/C4/T3/N1: createFileAt and mknodAt give what createFile and mknod give', async (t) => {
  const fifo = 0o010644;
  const cases: Case[] = [
    { rule: 'a new file', byPath: (s) => s.createFile('docs/new'), byId: (s, id) => s.createFileAt(id('docs'), 'new') },
    { rule: 'M2 owner and mode given', byPath: (s) => s.createFile('docs/new', { uid: 7, gid: 8, mode: 0o640 }), byId: (s, id) => s.createFileAt(id('docs'), 'new', { uid: 7, gid: 8, mode: 0o640 }) },
    { rule: 'C4 a taken name', byPath: (s) => s.createFile('docs/a.txt'), byId: (s, id) => s.createFileAt(id('docs'), 'a.txt') },
    { rule: 'a missing parent', byPath: (s) => s.createFile('gone/new'), byId: (s) => s.createFileAt(MISSING, 'new') },
    { rule: 'a parent that is a file', byPath: (s) => s.createFile('docs/a.txt/new'), byId: (s, id) => s.createFileAt(id('docs/a.txt'), 'new') },
    { rule: 'T3 in the bin', byPath: (s) => s.createFile('.trash/new'), byId: (s, id) => s.createFileAt(id('.trash'), 'new') },
    { rule: 'T3 .trash in the root', byPath: (s) => s.createFile('.trash'), byId: (s, id) => s.createFileAt(id(''), '.trash') },
    { rule: 'N1 a name over 255 bytes', byPath: (s) => s.createFile(`docs/${long}`), byId: (s, id) => s.createFileAt(id('docs'), long) },
    { rule: 'a fifo', byPath: (s) => s.mknod('docs/p', { mode: fifo, uid: 3, gid: 4 }), byId: (s, id) => s.mknodAt(id('docs'), 'p', { mode: fifo, uid: 3, gid: 4 }) },
    { rule: 'mknod of a regular file', byPath: (s) => s.mknod('docs/r', { mode: 0o100600 }), byId: (s, id) => s.mknodAt(id('docs'), 'r', { mode: 0o100600 }) },
    { rule: 'mknod of a directory', byPath: (s) => s.mknod('docs/d', { mode: 0o040755 }), byId: (s, id) => s.mknodAt(id('docs'), 'd', { mode: 0o040755 }) },
    { rule: 'mknod over a taken name', byPath: (s) => s.mknod('docs/a.txt', { mode: fifo }), byId: (s, id) => s.mknodAt(id('docs'), 'a.txt', { mode: fifo }) },
    { rule: 'T3 mknod in the bin', byPath: (s) => s.mknod('.trash/p', { mode: fifo }), byId: (s, id) => s.mknodAt(id('.trash'), 'p', { mode: fifo }) },
  ];
  for (const c of cases) await same(t, c);
});

t.test('L1/T3/N1: symlinkAt gives what symlink gives (bound to a live file, else a path link)', async (t) => {
  const mp = { mountpoint: '/mnt/lib' };
  const cases: Case[] = [
    { rule: 'L1 bound: a relative target that is a live file', byPath: (s) => s.symlink('links/c2', '../photos/cat.jpg'), byId: (s, id) => s.symlinkAt(id('links'), 'c2', '../photos/cat.jpg') },
    { rule: 'L1 bound: an absolute target under the mountpoint', byPath: (s) => s.symlink('links/c3', '/mnt/lib/photos/dog.jpg', mp), byId: (s, id) => s.symlinkAt(id('links'), 'c3', '/mnt/lib/photos/dog.jpg', mp) },
    { rule: 'L1 a path link: a missing target', byPath: (s) => s.symlink('links/x', 'nowhere', { uid: 5, gid: 6 }), byId: (s, id) => s.symlinkAt(id('links'), 'x', 'nowhere', { uid: 5, gid: 6 }) },
    { rule: 'L1 a path link: a directory', byPath: (s) => s.symlink('links/d', '../docs'), byId: (s, id) => s.symlinkAt(id('links'), 'd', '../docs') },
    { rule: 'a taken name', byPath: (s) => s.symlink('links/cat', 'x'), byId: (s, id) => s.symlinkAt(id('links'), 'cat', 'x') },
    { rule: 'a missing parent', byPath: (s) => s.symlink('gone/x', 'x'), byId: (s) => s.symlinkAt(MISSING, 'x', 'x') },
    { rule: 'T3 in the bin', byPath: (s) => s.symlink('.trash/x', 'x'), byId: (s, id) => s.symlinkAt(id('.trash'), 'x', 'x') },
    { rule: 'N1 a name over 255 bytes', byPath: (s) => s.symlink(`links/${long}`, 'x'), byId: (s, id) => s.symlinkAt(id('links'), long, 'x') },
  ];
  for (const c of cases) await same(t, c);
});
