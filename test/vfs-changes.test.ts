// H4/L4 (issue 11): the follower turns the change feed into kernel-cache invalidations — for this
// process's commits right after each commit (side effects of the mount's own requests included),
// for other processes' commits (the CLI, serve, another mount) through data_version and inotify.
// No FUSE here: the invalidations go to a recording sink (binding-ll-inval drives a real kernel).
import t, { type Test } from 'tap';
import { Library } from '../src/store/library.js';
import type { Space } from '../src/store/space.js';
import type { NodeInfo } from '../src/store/types.js';
import { nodeCachesSink } from '../src/fuse/invalidation.js';
import { InodeAdapter } from '../src/fuse/inode-adapter.js';
import type { ContentReader } from '../src/vfs/reader.js';
import { ChangeFollower, followChanges, toSink, type Invalidation } from '../src/vfs/changes.js';
import { scratchLibrary, smhfs } from './cli-helpers.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { openLib, put } from './helpers/store.js';

/** A follower whose invalidations are collected; it never polls by itself unless asked to. */
function follow(t: Test, lib: Library, opts: { pollMs?: number; watchCommits?: boolean; space?: string } = {}) {
  const got: Invalidation[] = [];
  const f = new ChangeFollower(lib, (inv) => got.push(inv), { space: opts.space ?? '-', pollMs: opts.pollMs ?? 3_600_000, watchCommits: opts.watchCommits ?? false });
  f.start();
  t.teardown(() => f.stop());
  const inodes = () => new Set(got.flatMap((i) => ('inode' in i ? [i.inode] : [])));
  const entries = () => got.flatMap((i) => ('entry' in i ? [`${i.entry.parent}/${i.entry.name}`] : []));
  const clear = () => void got.splice(0);
  return { f, got, inodes, entries, clear };
}

async function linkedLib(t: Test) {
  const L = openLib(t);
  const { lib, space } = L;
  for (const d of ['a', 'b', 'c']) space.mkdir(d);
  const photo = (await put(lib, space, 'photo.jpg', 'jpeg', { conflict: 'ask' })).info;
  const links = ['a', 'b', 'c'].map((d) => space.createLink(`${d}/cover`, 'photo.jpg').info);
  return { ...L, photo, links };
}

/** Resolves once `cond()` holds (checked every 5 ms), rejects after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('H4/L4: the side effects of this process\'s own commit are invalidated before the call returns', async (t) => {
  const { lib, space, photo, links } = await linkedLib(t);
  const { inodes, entries } = follow(t, lib);
  space.rename('photo.jpg', 'a/photo.jpg');
  // no await, no poll: delivered in the commit's after-commit work
  for (const l of links) t.ok(inodes().has(l.id), `bound link ${l.path}: its readlink answer changed`);
  t.ok(inodes().has(photo.id), 'the moved node');
  t.same(entries().sort(), [`${space.root}/photo.jpg`, `${space.stat('a').id}/photo.jpg`].sort(), 'the two names');
});

t.test('H4: own() leaves out what the reply tells the kernel, and keeps the side effects', async (t) => {
  const { lib, space, photo, links } = await linkedLib(t);
  const { f, inodes, entries } = follow(t, lib);
  const a = space.stat('a').id;
  f.own({ entries: [[space.root, 'photo.jpg'], [a, 'p.jpg']], nodes: [space.root, a, photo.id] }, () => space.renameAt(space.root, 'photo.jpg', a, 'p.jpg'));
  t.same(entries(), [], 'no entry the reply answered for');
  t.notOk(inodes().has(photo.id) || inodes().has(space.root) || inodes().has(a), 'no node the reply answered for');
  t.same([...inodes()].sort(), links.map((l) => l.id).sort(), 'exactly the 3 bound links');
  // outside own(): everything again
  space.mkdir('d');
  t.ok(entries().includes(`${space.root}/d`), 'a change outside own() is invalidated whole');
});

t.test('H4: another connection\'s commits are seen through data_version, in order, and only when it moved', async (t) => {
  const { lib, space, dir, photo, links } = await linkedLib(t);
  const other = Library.open(dir, { blobStore: new MemoryBlobStore() });
  t.teardown(() => other.close());
  const { f, got, inodes, entries } = follow(t, lib);
  f.poll();
  t.same(got, [], 'nothing changed: nothing');
  other.space().move('photo.jpg', 'b/moved.jpg');
  t.same(got, [], 'not before a poll (another connection)');
  f.poll();
  for (const l of links) t.ok(inodes().has(l.id), `link ${l.id}`);
  t.ok(inodes().has(photo.id));
  t.ok(entries().includes(`${space.root}/photo.jpg`) && entries().includes(`${space.stat('b').id}/moved.jpg`), 'both names');
  const n = got.length;
  f.poll();
  t.equal(got.length, n, 'a second poll with no commit in between reads nothing');
  // interleaved: theirs, then mine — mine arrives at once and theirs is read first, in order
  other.space().mkdir('theirs');
  space.mkdir('mine');
  const order = entries().slice(-2);
  t.same(order, [`${space.root}/theirs`, `${space.root}/mine`], 'commit order kept across connections');
  t.equal(f.lastSeq, lib.changes.head(), 'the cursor is at the head');
});

/** photo.jpg and N bound links to it, each named `cover` in its own directory d0…: the cascade's shape. */
async function coverLinks(lib: Library, space: Space, n: number): Promise<{ photo: NodeInfo; dirs: number[]; links: number[] }> {
  const photo = (await put(lib, space, 'photo.jpg', 'jpeg', { conflict: 'ask' })).info;
  const dirs: number[] = [];
  const links: number[] = [];
  lib.transaction(() => {
    for (let i = 0; i < n; i++) {
      dirs.push(space.mkdir(`d${i}`).info.id);
      links.push(space.createLink(`d${i}/cover`, 'photo.jpg').info.id);
    }
  });
  return { photo, dirs, links };
}

t.test('H4/L12/issue 15: another connection\'s cascade is one feed row, read back into every name and link it moved', async (t) => {
  const { lib, space, dir } = openLib(t);
  const N = 50;
  const { photo, dirs, links } = await coverLinks(lib, space, N);
  const other = Library.open(dir, { blobStore: new MemoryBlobStore() });
  t.teardown(() => other.close());
  const { f, inodes, entries } = follow(t, lib);
  const head = lib.changes.head();
  const item = other.space().unlink('photo.jpg').recycledItemId!;
  const rows = lib.changes.read(head).records;
  t.ok(rows.length <= 10, `${rows.length} feed rows for ${N} cascaded links (3 a link before)`);
  f.poll(); // read from the feed, as another process's commit
  const names = new Set(entries());
  t.ok(dirs.every((d) => names.has(`${d}/cover`)), 'every dK/cover name');
  const bin = space.readdir('.trash').filter((e) => e.name.startsWith(`${item}-cover`));
  t.equal(bin.length, N, 'the links are in the bin view');
  t.ok(bin.every((e) => names.has(`${space.trash}/${e.name}`)), 'and every bin name they took');
  t.ok(links.every((l) => inodes().has(l)) && inodes().has(photo.id), 'every link and the photo');
});

t.test('H4: the timer and inotify catch up without being asked', async (t) => {
  const { lib, dir, links } = await linkedLib(t);
  const other = Library.open(dir, { blobStore: new MemoryBlobStore() });
  t.teardown(() => other.close());
  const polled = follow(t, lib, { pollMs: 20 });
  const watched = follow(t, lib, { pollMs: 3_600_000, watchCommits: true });
  const t0 = Date.now();
  other.space().rename('photo.jpg', 'c/photo.jpg');
  await until(() => links.every((l) => polled.inodes().has(l.id)), 5000, 'timer');
  t.pass(`the 20 ms timer saw it ${Date.now() - t0} ms after the commit`);
  await until(() => links.every((l) => watched.inodes().has(l.id)), 5000, 'inotify');
  t.pass(`inotify (with no timer) saw it ${Date.now() - t0} ms after the commit`);
});

t.test('H4: a follower behind the horizon drops everything and goes on from the head', async (t) => {
  const { lib, space, dir } = openLib(t);
  const other = Library.open(dir, { blobStore: new MemoryBlobStore() });
  t.teardown(() => other.close());
  const { f, got, entries } = follow(t, lib);
  for (let i = 0; i < 20; i++) other.space().mkdir(`d${i}`);
  other.changes.prune(3);
  f.poll();
  t.same(got, [{ all: true }], 'one "drop everything", nothing replayed');
  t.equal(f.lastSeq, lib.changes.head(), 'at the head');
  other.space().mkdir('later');
  f.poll();
  t.same(entries(), [`${space.root}/later`], 'then on as usual');
});

t.test('H4: changes of another space are not this mount\'s', async (t) => {
  const { lib } = openLib(t);
  const other = lib.createSpace('other');
  const { f, got } = follow(t, lib);
  other.mkdir('x');
  t.same(got, [], 'nothing for space -');
  t.equal(f.lastSeq, lib.changes.head(), 'but the cursor moved past it');
});

t.test('H4/L4: a CLI process moving a target: the mount process invalidates its 3 links (followChanges into a sink)', async (t) => {
  const { dir, lib: libDir } = await scratchLibrary(t);
  const lib = Library.open(libDir);
  t.teardown(() => lib.close());
  const space = lib.space();
  for (const d of ['a', 'b', 'c']) space.mkdir(d);
  await put(lib, space, 'photo.jpg', 'jpeg', { conflict: 'ask' });
  const links = ['a', 'b', 'c'].map((d) => space.createLink(`${d}/cover`, 'photo.jpg').info);
  const calls: string[] = [];
  const follower = followChanges(lib, '-', {
    invalidateEntry: (p, n) => void calls.push(`entry ${p}/${n}`),
    invalidateInode: (n) => void calls.push(`inode ${n}`),
    invalidateAll: () => void calls.push('all'),
  }, { pollMs: 50 });
  t.teardown(() => follower.stop());
  const r = await smhfs(dir, libDir, ['mv', 'photo.jpg', 'b/photo.jpg']);
  t.equal(r.code, 0, `smhfs mv: ${r.stderr}`);
  // Deterministic: once the CLI has exited its commit is visible; a poll now (if the timer or
  // inotify has not run already) must deliver it.
  follower.poll();
  for (const l of links) t.ok(calls.includes(`inode ${l.id}`), `${l.path} invalidated`);
  t.ok(calls.includes(`entry ${space.root}/photo.jpg`), 'the old name');
  t.ok(calls.includes(`entry ${space.stat('b').id}/photo.jpg`), 'the new name');
  t.equal(space.readlink('a/cover'), '../b/photo.jpg', 'the answer the kernel will ask for next');
});

t.test('H4: nodeCachesSink hands each invalidation to an adapter in node ids; "drop everything" covers the nodes the kernel holds', async (t) => {
  const calls: string[] = [];
  const errors: unknown[] = [];
  const sink = nodeCachesSink(
    {
      invalidateEntry: async (d, n) => (calls.push(`entry ${d}/${n}`), true),
      invalidateNode: async (id) => {
        calls.push(`node ${id}`);
        if (id === 13) throw new Error('ENODEV');
        return true;
      },
      knownNodes: () => [1, 7, 13],
    },
    (e) => errors.push(e),
  );
  const emit = toSink(sink);
  emit({ entry: { parent: 5, name: 'x' } });
  emit({ inode: 9 });
  emit({ all: true });
  await new Promise((r) => setImmediate(r));
  t.same(calls, ['entry 5/x', 'node 9', 'node 1', 'node 7', 'node 13']);
  t.equal(errors.length, 1, 'a failed invalidation is reported, not thrown');
});

t.test('H4/issue 15: the inode adapter sends a name\'s invalidation only under a directory the kernel holds', async (t) => {
  const { lib, space, photo, links } = await linkedLib(t);
  // no reads happen here: lookups and invalidations only
  const adapter = new InodeAdapter(lib, space, {} as ContentReader, { mountpoint: '/nowhere', log: () => undefined, cacheBoundLinks: true });
  const sent: string[] = [];
  adapter.attachKernel({
    invalidateEntry: async (p, n) => (sent.push(`entry ${p}/${n}`), true),
    invalidateInode: async (ino) => (sent.push(`inode ${ino}`), true),
  });
  const f = new ChangeFollower(lib, toSink(nodeCachesSink(adapter)), { space: '-', pollMs: 3_600_000, watchCommits: false }).start();
  t.teardown(() => f.stop());
  // the kernel looked up a and a/cover (and photo.jpg); b, c and the bin it never saw
  const ops = adapter.ops();
  const a = space.stat('a').id;
  const ctx = { id: 1, uid: 0, gid: 0, pid: process.pid, umask: 0o022, signal: new AbortController().signal, interrupted: false };
  for (const [dir, name] of [[1, 'a'], [a, 'cover'], [1, 'photo.jpg']] as const) ops.lookup!(dir, name, ctx);
  space.unlink('photo.jpg'); // the cascade: a/cover, b/cover, c/cover go to the bin
  await new Promise((r) => setImmediate(r));
  const entries = sent.filter((x) => x.startsWith('entry')).sort();
  t.same(entries, [`entry ${a}/cover`, 'entry 1/photo.jpg'].sort(), 'names only in the root and a (none in b, c or the bin the kernel never looked up)');
  t.same(sent.filter((x) => x.startsWith('inode')).sort(), [`inode ${links[0]!.id}`, `inode ${photo.id}`, 'inode 1'].sort(), 'inodes only of what it holds: a/cover, photo.jpg, the root');
  // once the kernel forgets a, nothing is cached under it
  sent.splice(0);
  ops.forget!(a, 1);
  space.mkdir('a/new');
  await new Promise((r) => setImmediate(r));
  t.same(sent.filter((x) => x.startsWith('entry')), [], 'a forgotten directory: no name invalidated under it');
  space.mkdir('newdir');
  await new Promise((r) => setImmediate(r));
  t.ok(sent.includes('entry 1/newdir'), 'the root is always held: its names are invalidated');
});

t.test('issue 15: a cascade\'s invalidations reach the kernel in one call (entries, then inodes), by the same rules as one at a time', async (t) => {
  const { lib, space } = openLib(t);
  const N = 200;
  const { photo, dirs, links } = await coverLinks(lib, space, N);
  const reader = { cache: { stats: () => ({}) } } as unknown as ContentReader; // only for snapshot()
  const adapter = new InodeAdapter(lib, space, reader, { mountpoint: '/nowhere', log: () => undefined, cacheBoundLinks: true });
  const single: string[] = [];
  const batches: Array<{ entries: string[]; inodes: number[] }> = [];
  adapter.attachKernel({
    invalidateEntry: async (p, n) => (single.push(`entry ${p}/${n}`), true),
    invalidateInode: async (ino) => (single.push(`inode ${ino}`), true),
    invalidateBatch: async (entries, inodes) => {
      batches.push({ entries: entries.map(([p, n]) => `${p}/${n}`), inodes: [...inodes] });
      return entries.length + inodes.length;
    },
  });
  // as the ll mount wires it (src/fuse/frontends.ts): the adapter's batch behind the follower
  const f = followChanges(lib, '-', nodeCachesSink(adapter), { pollMs: 3_600_000, watchCommits: false });
  t.teardown(() => f.stop());
  // the kernel looked up every dK, dK/cover and photo.jpg; the bin it never saw
  const ops = adapter.ops();
  const ctx = { id: 1, uid: 0, gid: 0, pid: process.pid, umask: 0o022, signal: new AbortController().signal, interrupted: false };
  ops.lookup!(1, 'photo.jpg', ctx);
  for (let i = 0; i < N; i++) {
    ops.lookup!(1, `d${i}`, ctx);
    ops.lookup!(dirs[i]!, 'cover', ctx);
  }
  space.unlink('photo.jpg'); // the cascade: N links to the bin, in one transaction
  await new Promise((r) => setImmediate(r));
  t.equal(batches.length, 1, `one call into the session for the whole cascade (${batches.length})`);
  t.same(single, [], 'no call per invalidation');
  const entries = batches.flatMap((b) => b.entries).sort();
  const inodes = batches.flatMap((b) => b.inodes).sort((a, b) => a - b);
  t.same(entries, ['1/photo.jpg', ...dirs.map((d) => `${d}/cover`)].sort(), 'every dK/cover and photo.jpg; no name in the bin the kernel never looked up');
  t.same(inodes, [1, photo.id, ...links].sort((a, b) => a - b), 'every link (its readlink answer), the photo and the root: what the kernel holds');
  t.same(adapter.snapshot()['invalidations'], { calls: 1, notifications: 2 * N + 3 }, 'smhfs stats counts one call for 2N + 3 notifications');
});
