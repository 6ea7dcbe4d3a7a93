// H4 (issue 11): the change feed. Every rule that changes a name, a node's attributes or content,
// or a link's readlink answer records it in the same transaction, numbered in commit order; a
// rolled-back transaction records nothing; the feed is pruned behind a horizon. Tier 1: the store
// alone, no FUSE (the follower that turns records into kernel invalidations: vfs-changes).
import t, { type Test } from 'tap';
import { ChangeFeed, expandMoves, recordingRows, type ChangeRecord } from '../src/store/changes.js';
import { Library } from '../src/store/library.js';
import { sqliteFeedRows } from '../src/store/sqlite/feed-rows.js';
import { sqliteSpaceRows } from '../src/store/sqlite/space-rows.js';
import type { Space } from '../src/store/space.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { openLib, put } from './helpers/store.js';

/** The records `fn` added to the feed ('moves' records expanded into the entries and nodes they stand for). */
function recorded(lib: Library, fn: () => unknown): ChangeRecord[] {
  const from = lib.changes.head();
  fn();
  return expandMoves(lib.changes.read(from, 100_000).records);
}

const entryChanges = (rs: ChangeRecord[]) => rs.filter((r) => r.kind === 'entry').map((r) => [r.parent, r.name]);
const hasEntry = (rs: ChangeRecord[], parent: number, name: string) => rs.some((r) => r.kind === 'entry' && r.parent === parent && r.name === name);
const nodesOf = (rs: ChangeRecord[], kind: 'node' | 'tree') => rs.filter((r) => r.kind === kind).map((r) => r.node);
/** Every node a record asks to invalidate, 'tree' records expanded as the follower expands them. */
const invalidated = (lib: Library, rs: ChangeRecord[]) =>
  new Set(rs.flatMap((r) => (r.kind === 'node' ? [r.node!] : r.kind === 'tree' ? lib.changes.dependents(r.node!) : [])));

/** photo.jpg with bound links a/cover, b/cover, c/cover; an unrelated file and link. */
async function linked(t: Test) {
  const L = openLib(t);
  const { lib, space } = L;
  for (const d of ['a', 'b', 'c', 'x']) space.mkdir(d);
  const photo = (await put(lib, space, 'photo.jpg', 'jpeg', { conflict: 'ask' })).info;
  const links = ['a', 'b', 'c'].map((d) => space.createLink(`${d}/cover`, 'photo.jpg').info);
  await put(lib, space, 'other.txt', 'o', { conflict: 'ask' });
  const other = space.createLink('x/other', 'other.txt').info;
  return { ...L, photo, links, other, dir: (p: string) => space.stat(p).id };
}

t.test('H4/L4: renaming a target with 3 bound links records both names and the moved node, whose dependents are the 3 links', async (t) => {
  const { lib, space, photo, links, other, dir } = await linked(t);
  const rs = recorded(lib, () => space.rename('photo.jpg', 'x/photo2.jpg'));
  t.ok(hasEntry(rs, space.root, 'photo.jpg'), 'the old name');
  t.ok(hasEntry(rs, dir('x'), 'photo2.jpg'), 'the new name');
  t.same(nodesOf(rs, 'tree'), [photo.id], 'one tree change: the node that moved');
  t.ok(nodesOf(rs, 'node').includes(space.root) && nodesOf(rs, 'node').includes(dir('x')), 'both directories changed (mtime)');
  const inv = invalidated(lib, rs);
  for (const l of links) t.ok(inv.has(l.id), `link ${l.path} is invalidated`);
  t.notOk(inv.has(other.id), 'an unrelated link is not');
  t.same([...lib.changes.dependents(photo.id)].sort(), [photo.id, ...links.map((l) => l.id)].sort(), 'dependents: the node and its 3 links');
  for (const l of links) t.equal(space.readlink(l.path), '../x/photo2.jpg', 'and their answers did change');
  t.ok(rs.every((r) => r.space === '-' && r.origin.includes(`:${process.pid}:`)), 'space and origin recorded');
  t.ok(rs.every((r, i) => i === 0 || r.seq === rs[i - 1]!.seq + 1), 'numbered one by one');
});

t.test('H4/L4: a directory rename is one tree change whose dependents are the links in it and bound into it', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d/sub', { parents: true });
  space.mkdir('far');
  const inner = (await put(lib, space, 'd/sub/f.txt', 'f', { conflict: 'ask' })).info;
  const out = (await put(lib, space, 'far/o.txt', 'o', { conflict: 'ask' })).info;
  const toInner = space.createLink('far/to-inner', 'd/sub/f.txt').info;
  const toOut = space.createLink('d/sub/to-out', 'far/o.txt').info;
  const pathLink = space.symlink('d/rel', 'sub/f.txt'); // a path link (relative, stored as given)
  const unrelated = space.createLink('far/to-out', 'far/o.txt').info;
  const rs = recorded(lib, () => space.rename('d', 'e'));
  t.same(nodesOf(rs, 'tree'), [space.stat('e').id], 'one tree change for the whole subtree');
  t.ok(rs.length <= 6, `${rs.length} records, whatever the subtree holds`);
  const dep = new Set(lib.changes.dependents(space.stat('e').id));
  t.ok(dep.has(toInner.id), 'a link bound into it from outside');
  t.ok(dep.has(toOut.id), 'a link in it bound outside');
  t.ok(dep.has(pathLink.id), 'a path link in it');
  t.notOk(dep.has(unrelated.id), 'not a link outside bound outside');
  t.notOk(dep.has(inner.id) || dep.has(out.id), 'files are not dependents (their attributes did not change)');
  t.equal(space.readlink('far/to-inner'), '../e/sub/f.txt');
  t.equal(space.readlink('e/sub/to-out'), '../../far/o.txt');
});

t.test('H4/L12/T4/L13: rm cascades, restore and purge record every link entry that goes and comes back', async (t) => {
  const { lib, space, photo, links, dir } = await linked(t);
  let item = 0;
  const rm = recorded(lib, () => (item = space.unlink('photo.jpg').recycledItemId!));
  t.ok(hasEntry(rm, space.root, 'photo.jpg'), 'the target leaves its directory');
  for (const d of ['a', 'b', 'c']) t.ok(hasEntry(rm, dir(d), 'cover'), `${d}/cover leaves its directory`);
  const bin = space.trash;
  t.ok(hasEntry(rm, bin, `${item}-photo.jpg`), 'the target appears in the bin view');
  t.equal(rm.filter((r) => r.kind === 'entry' && r.parent === bin).length, 4, 'and so do its 3 links');
  const inv = invalidated(lib, rm);
  for (const l of [photo, ...links]) t.ok(inv.has(l.id), `node ${l.id} invalidated`);

  const back = recorded(lib, () => space.restore(item));
  for (const d of ['a', 'b', 'c']) t.ok(hasEntry(back, dir(d), 'cover'), `${d}/cover comes back`);
  t.ok(hasEntry(back, space.root, 'photo.jpg'), 'the target comes back');
  t.equal(back.filter((r) => r.kind === 'entry' && r.parent === bin).length, 4, 'and the bin view loses all four');
  for (const l of links) t.ok(invalidated(lib, back).has(l.id), `link ${l.id} invalidated (state, place)`);

  const again = space.unlink('photo.jpg').recycledItemId!;
  const purge = recorded(lib, () => space.purge(again));
  t.equal(purge.filter((r) => r.kind === 'entry' && r.parent === bin).length, 4, 'purge: four names leave the bin view');
  const gone = nodesOf(purge, 'node');
  for (const l of [photo, ...links]) t.ok(gone.includes(l.id) || nodesOf(purge, 'tree').includes(l.id), `node ${l.id} deleted and recorded`);
});

t.test('H4/L10: overwrites record the content change; a rename over a target rebinds its links, recorded as dependents of the newcomer', async (t) => {
  const { lib, space, photo, links } = await linked(t);
  const head = lib.changes.head();
  await put(lib, space, 'photo.jpg', 'new jpeg', { conflict: 'overwrite' });
  const upload = lib.changes.read(head).records;
  t.ok(nodesOf(upload, 'node').includes(photo.id), 'the overwritten file (same identity, new content)');
  const fresh = (await put(lib, space, 'fresh.jpg', 'fresh', { conflict: 'ask' })).info;
  const over = recorded(lib, () => space.rename('fresh.jpg', 'photo.jpg'));
  t.ok(hasEntry(over, space.root, 'photo.jpg') && hasEntry(over, space.root, 'fresh.jpg'), 'both names');
  t.ok(nodesOf(over, 'tree').includes(fresh.id), 'the newcomer');
  const inv = invalidated(lib, over);
  for (const l of links) {
    t.ok(inv.has(l.id), `rebound link ${l.id} invalidated`);
    t.equal(space.stat(l.path, { follow: false }).link?.targetNode, fresh.id, 'and rebound (L10)');
  }
  t.ok(inv.has(photo.id), 'the replaced file (now in the bin) too');
});

t.test('H4: setattr, setContent, xattrs and atime record the node; a transaction records each change once', async (t) => {
  const { lib, space } = openLib(t);
  const f = (await put(lib, space, 'f.txt', 'f', { conflict: 'ask' })).info;
  t.same(nodesOf(recorded(lib, () => space.setattr('f.txt', { mode: 0o600 })), 'node'), [f.id], 'chmod');
  t.same(nodesOf(recorded(lib, () => space.setXattr('f.txt', 'user.k', Buffer.from('v'))), 'node'), [f.id], 'setxattr (its ctime)');
  t.same(nodesOf(recorded(lib, () => space.removeXattr('f.txt', 'user.k')), 'node'), [f.id], 'removexattr');
  const ref = await lib.storeBlobFromStream((await import('node:stream')).Readable.from([Buffer.from('content')]));
  t.same(nodesOf(recorded(lib, () => space.setContent(f.id, ref)), 'node'), [f.id], 'setContent (a mount flush)');
  const many = recorded(lib, () =>
    lib.transaction(() => {
      for (let i = 0; i < 100; i++) space.mkdir(`m${i}`);
    }),
  );
  t.equal(entryChanges(many).length, 100, 'one entry change per new name');
  t.equal(nodesOf(many, 'node').filter((n) => n === space.root).length, 1, 'the directory touched 100 times: one record');
});

t.test('H4: a rolled-back transaction records nothing; a failed rule records nothing', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('keep');
  const head = lib.changes.head();
  t.throws(() =>
    lib.transaction(() => {
      space.mkdir('gone');
      space.rename('keep', 'moved');
      throw new Error('abort');
    }),
  );
  t.equal(lib.changes.head(), head, 'the head did not move');
  t.same(lib.changes.read(head).records, [], 'nothing recorded');
  t.throws(() => space.rename('keep', 'keep/inside'), 'a rule that fails (into itself)');
  t.equal(lib.changes.head(), head, 'still nothing');
  const rs = recorded(lib, () => space.mkdir('after'));
  t.equal(rs[0]!.seq, head + 1, 'the next change takes the next number: rollbacks leave no gap');
});

t.test('H4: commits of this process are handed to listeners right after the commit, as the feed keeps them', async (t) => {
  const { lib, space } = openLib(t);
  const heard: ChangeRecord[][] = [];
  const off = lib.changes.onCommit((rs) => heard.push([...rs]));
  const head = lib.changes.head();
  space.mkdir('one');
  lib.transaction(() => {
    space.mkdir('two');
    space.mkdir('three');
  });
  off();
  space.mkdir('unheard');
  t.equal(heard.length, 2, 'one call per committed transaction');
  t.same(heard.flat(), lib.changes.read(head).records.slice(0, heard.flat().length), 'the same records, numbers included');
  t.ok(hasEntry(heard[1]!, space.root, 'two') && hasEntry(heard[1]!, space.root, 'three'), 'a transaction is delivered whole');
});

t.test('H4: two connections: numbers follow commit order; data_version moves for the other connection only', async (t) => {
  const { lib, space, dir } = openLib(t);
  const other = Library.open(dir, { blobStore: new MemoryBlobStore() });
  t.teardown(() => other.close());
  const head = lib.changes.head();
  let v = lib.changes.externalVersion();
  space.mkdir('mine');
  t.equal(lib.changes.externalVersion(), v, 'an own commit does not move it (onCommit tells)');
  other.space().mkdir('theirs');
  t.not(lib.changes.externalVersion(), v, "the other connection's commit moves it");
  v = lib.changes.externalVersion();
  space.rename('mine', 'mine2');
  other.space().rename('theirs', 'theirs2');
  const rs = lib.changes.read(head).records;
  t.same(
    entryChanges(rs).map(([, n]) => n),
    ['mine', 'theirs', 'mine', 'mine2', 'theirs', 'theirs2'],
    'both connections in one order',
  );
  t.ok(rs.every((r, i) => i === 0 || r.seq > rs[i - 1]!.seq), 'increasing numbers');
  t.same(other.changes.read(head).records, rs, 'both connections read the same feed');
});

t.test('H4: the feed is pruned behind a horizon; a reader behind it is told to drop everything', async (t) => {
  const { lib, space, dir } = openLib(t);
  // a feed over the same library that keeps 50 numbers and prunes every 10
  const small = new ChangeFeed(lib.engine, sqliteFeedRows(lib.db, dir), { origin: 'test', keep: 50, pruneEvery: 10 });
  for (let i = 0; i < 30; i++) {
    lib.transaction(() => {
      for (let j = 0; j < 7; j++) small.record({ space: '-', kind: 'node', node: i * 10 + j });
    });
  }
  const r0 = lib.changes.read(0);
  t.equal(r0.behind, true, 'a reader from 0 is behind');
  t.ok(r0.horizon >= 210 - 50 - 10 && r0.horizon <= 210 - 50, `horizon ${r0.horizon}: about 50 kept`);
  const count = (lib.db.prepare('SELECT count(*) AS n FROM changes').get() as { n: number }).n;
  t.ok(count <= 60, `${count} rows kept (bounded)`);
  const r1 = lib.changes.read(r0.horizon);
  t.equal(r1.behind, false, 'a reader at the horizon is not');
  t.equal(r1.records[0]?.seq, r0.horizon + 1, 'and reads on from it');
  t.equal(r1.head, 210);
  // the library's own pruning call
  space.mkdir('x');
  t.equal(lib.changes.prune(5), lib.changes.head() - 5, 'prune(keep) moves the horizon');
  t.equal(lib.changes.read(lib.changes.head() - 6).behind, true);
  t.equal(lib.changes.read(lib.changes.head() - 5).behind, false);
});

t.test('H4: changes of one space carry its name', async (t) => {
  const { lib } = openLib(t);
  const other: Space = lib.createSpace('other');
  const rs = recorded(lib, () => other.mkdir('d'));
  t.ok(rs.length > 0 && rs.every((r) => r.space === 'other'), 'space other');
});

t.test('H4: every row primitive is a read, recorded, or a write the kernel cannot see — a new one must be classified', async (t) => {
  const { lib } = openLib(t);
  const raw = sqliteSpaceRows(lib.db);
  const wrapped = recordingRows(raw, '-', lib.changes);
  const READS = ['node', 'child', 'children', 'childrenPage', 'statPage', 'namePage', 'listingVersion', 'entryOf', 'entriesOf', 'nameCount', 'namesBetween', 'hasChildren', 'firstChild', 'subdirCount',
    'spaceClass', 'statfs', 'boundLinksToCascade', 'boundLinksAll', 'boundLinkCount', 'boundTargetsIn', 'parentPathLinksIn',
    'subtreeBytes', 'subtreeCount', 'itemsAfter', 'itemsUpTo', 'itemsOlder', 'lastItem', 'item', 'itemByNode', 'itemLinks', 'xattr', 'xattrs'];
  // writes no kernel cache holds: a new node (nobody has it yet), the space's default class, bin
  // records (items are not in the tree; their view entries are), xattrs (no kernel copy; the rules
  // change ctime with them, which is recorded)
  const UNSEEN = ['insertNode', 'setSpaceClass', 'insertItem', 'deleteItem', 'insertItemLink', 'insertItemLinks', 'deleteItemLinks', 'deleteItemLinkOf',
    'setXattr', 'deleteXattr', 'clearXattrs', 'copyXattrs'];
  const RECORDED = ['insertEntry', 'moveEntry', 'moveName', 'moveLinkNames', 'exchangeNames', 'deleteEntry', 'deleteName', 'deleteNode', 'touch', 'touchCtime', 'touchAtime', 'setState', 'setStates', 'setClass',
    'setContent', 'setattr', 'rebind'];
  const keys = Object.keys(raw).sort();
  const known = new Set([...READS, ...UNSEEN, ...RECORDED]);
  t.same(keys.filter((k) => !known.has(k)), [], 'unclassified primitives: record them in recordingRows (src/store/changes.ts) or list them here');
  const replaced = keys.filter((k) => (wrapped as unknown as Record<string, unknown>)[k] !== (raw as unknown as Record<string, unknown>)[k]);
  t.same(replaced, [...RECORDED].sort(), 'recordingRows records exactly the recorded ones');
});

t.test('H4/L19: hard links — renaming or removing one of a node\'s names records it and invalidates the links that name its oldest', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  const f = (await put(lib, space, 'd/f.txt', 'f', { conflict: 'ask' })).info;
  space.link('d/f.txt', 'g.txt');
  const l = space.createLink('l', 'g.txt').info;
  t.equal(space.readlink('l'), 'd/f.txt', 'L19: the oldest name');
  const mv = recorded(lib, () => space.rename('g.txt', 'h.txt'));
  t.ok(hasEntry(mv, space.root, 'g.txt') && hasEntry(mv, space.root, 'h.txt'), 'both names of the renamed one');
  t.ok(invalidated(lib, mv).has(l.id) && invalidated(lib, mv).has(f.id), 'the node and its link');
  const rm = recorded(lib, () => space.unlink('d/f.txt'));
  t.ok(hasEntry(rm, space.stat('d').id, 'f.txt'), 'the name that went');
  t.ok(invalidated(lib, rm).has(l.id), 'the link, whose answer changed');
  t.equal(space.readlink('l'), 'h.txt', 'to the surviving name');
  t.ok(invalidated(lib, rm).has(f.id), 'and the node (nlink)');
});
