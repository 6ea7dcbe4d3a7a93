/**
 * Model-based randomized test of hard links in the store (fast-check; SPEC L17–L19, T1, T4, L12,
 * L13): long random sequences of put / link(2) / unlink / rename(2) / SMH delete (to the bin or
 * permanent) / bound symlink / restore / purge, in a root and two directories, are applied to the
 * store and to a plain reference model where a file is an inode with a list of names in order of
 * age. After every step the two agree on:
 *
 *  - every live name: which inode it is (the store's id), its content, and st_nlink = the number
 *    of its names;
 *  - every bound link: bound to the right inode, and its readlink names the inode's oldest live
 *    name (L19) — a renamed name being the newest;
 *  - the recycle bin: one item per inode whose last name was removed (T1; removing one of
 *    several names makes none, L18), with the bound links that went along (L12);
 *  - purged inodes are gone, and so are their links (L13).
 *
 * test/store-model.test.ts covers the rest of the store with one name per node; this one covers
 * what several names change. Environment: SMHFS_NAMES_SEED, SMHFS_NAMES_RUNS, SMHFS_NAMES_STEPS,
 * SMHFS_NAMES_DEBUG=1 (print each step).
 */
import t from 'tap';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { isSmhError, type ErrorCode } from '../src/errors.js';
import type { Library, Space } from '../src/store/library.js';
import type { NodeInfo } from '../src/store/types.js';
import { openLib, readerOf, storeEngine } from './helpers/store.js';
import { inOneSnapshot } from './helpers/store-engines.js';

const SEED = Number(process.env.SMHFS_NAMES_SEED ?? 20261201);
// On PostgreSQL (test/pg-store-names-model.test.ts) every statement is a round trip: the first 12
// of the same seed's runs (36 s of the suite's time for all 25), as the store model test does.
const RUNS = Number(process.env.SMHFS_NAMES_RUNS ?? (storeEngine.name === 'postgres' ? 12 : 25));
const STEPS = Number(process.env.SMHFS_NAMES_STEPS ?? 120);

const DIRS = ['', 'x', 'y'];
const NAMES = ['a', 'b', 'c', 'd'];
const CONTENTS = ['one', 'two', 'three', 'four!'];

/** A file of the model: its names, oldest first (`dir/name` paths), its content, its store id. */
interface MInode {
  sid: number;
  names: string[];
  content: string;
}
/** A bound link of the model (at `path`, bound to inode `target`); `item` when it went to the bin with it. */
interface MLink {
  sid: number;
  path: string;
  target: number;
  item?: number;
}
interface MItem {
  id: number;
  inode: number; // sid
  originalPath: string;
  links: string[];
}
interface Model {
  inodes: Map<number, MInode>; // by sid, live ones only
  binned: Map<number, MInode>; // by item id
  links: MLink[];
  items: MItem[];
  purged: Set<number>;
}

type Op =
  | { op: 'put'; path: number; content: number }
  | { op: 'link'; src: number; dst: number }
  | { op: 'unlink'; path: number }
  | { op: 'rename'; src: number; dst: number }
  | { op: 'delete'; path: number; permanent: boolean }
  | { op: 'symlink'; src: number; dst: number }
  | { op: 'restore'; item: number }
  | { op: 'purge'; item: number };

const nat = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('put' as const), path: nat, content: nat }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('link' as const), src: nat, dst: nat }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('unlink' as const), path: nat }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('rename' as const), src: nat, dst: nat }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), path: nat, permanent: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('symlink' as const), src: nat, dst: nat }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('restore' as const), item: nat }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('purge' as const), item: nat }) },
);

const ALL_PATHS = DIRS.flatMap((d) => NAMES.map((n) => (d ? `${d}/${n}` : n)));
const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);

class Mismatch extends Error {}
function expectEq(a: unknown, b: unknown, what: string): void {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Mismatch(`${what}: store ${JSON.stringify(a)} != model ${JSON.stringify(b)}`);
}

/** What occupies a path in the model: an inode's name, a live bound link, or nothing. */
function at(m: Model, path: string): { inode: MInode } | { link: MLink } | undefined {
  for (const i of m.inodes.values()) if (i.names.includes(path)) return { inode: i };
  const l = m.links.find((x) => x.item === undefined && x.path === path);
  return l ? { link: l } : undefined;
}

/** The relative path from the directory of `from` to `to` (readlink of a bound link, L4). */
function rel(from: string, to: string): string {
  const a = from.split('/').slice(0, -1);
  const b = to.split('/');
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  return [...Array(a.length - i).fill('..'), ...b.slice(i)].join('/');
}

async function blob(lib: Library, s: string) {
  return lib.storeBlobFromStream(Readable.from(Buffer.from(s)));
}

/** Move an inode whose last name is going to the bin (T1), with its live bound links (L12). */
function binInode(m: Model, inode: MInode, itemId: number, path: string): void {
  const links = m.links.filter((l) => l.item === undefined && l.target === inode.sid);
  for (const l of links) l.item = itemId;
  m.items.push({ id: itemId, inode: inode.sid, originalPath: path, links: links.map((l) => l.path).sort() });
  m.inodes.delete(inode.sid);
  inode.names = [];
  m.binned.set(itemId, inode);
}

/** Remove one name of `inode` (L18). */
function removeName(m: Model, inode: MInode, path: string): void {
  inode.names = inode.names.filter((n) => n !== path);
}

async function apply(m: Model, op: Op, env: { lib: Library; space: Space }): Promise<string> {
  const { lib, space } = env;
  const expectCode = async (what: string, codes: ErrorCode[], fn: () => unknown): Promise<string> => {
    try {
      await fn();
    } catch (e) {
      if (isSmhError(e) && codes.includes(e.code)) return `${what} → ${e.code}`;
      throw e;
    }
    throw new Mismatch(`${what}: expected ${codes.join('|')}, but it succeeded`);
  };
  switch (op.op) {
    case 'put': {
      const path = pick(ALL_PATHS, op.path)!;
      const content = pick(CONTENTS, op.content)!;
      const here = at(m, path);
      const what = `put ${path} ${content}`;
      if (here && 'link' in here) return `${what}: skipped (a link there: L11 is store-model's)`;
      const placed = space.putFile(path, await blob(lib, content), { conflict: 'overwrite' });
      if (here && 'inode' in here) {
        expectEq(placed.info.id, here.inode.sid, `${what}: an upload over a name keeps the inode (L19)`);
        if (here.inode.content !== content) {
          // C3: the old version goes to the bin as a new node; it has no links
          const item = space.trashList().find((i) => !m.items.some((x) => x.id === i.id) && !m.binned.has(i.id));
          if (!item) throw new Mismatch(`${what}: the replaced version did not go to the bin`);
          m.items.push({ id: item.id, inode: -1, originalPath: path, links: [] });
          const oldSid = space.stat(`.trash/${item.viewName}`).id;
          m.purged.delete(oldSid); // ids of purged nodes may be reused
          m.binned.set(item.id, { sid: oldSid, names: [], content: here.inode.content });
        }
        here.inode.content = content;
      } else {
        m.inodes.set(placed.info.id, { sid: placed.info.id, names: [path], content });
        m.purged.delete(placed.info.id);
      }
      return what;
    }
    case 'link': {
      const src = pick(ALL_PATHS, op.src)!;
      const dst = pick(ALL_PATHS, op.dst)!;
      const what = `link ${src} ${dst}`;
      const s = at(m, src);
      if (!s) return expectCode(what, ['FileNotFound'], () => space.link(src, dst));
      if (at(m, dst)) return expectCode(what, ['SameNameDirectoryOrFileExists'], () => space.link(src, dst));
      if ('link' in s) return `${what}: skipped (names of symlinks: store-hard-links.test.ts)`;
      const info = space.link(src, dst);
      s.inode.names.push(dst);
      expectEq(info.id, s.inode.sid, `${what}: the same inode`);
      expectEq(info.nlink, s.inode.names.length, `${what}: nlink`);
      return what;
    }
    case 'unlink':
    case 'delete': {
      const path = pick(ALL_PATHS, op.path)!;
      const permanent = op.op === 'delete' && op.permanent;
      const what = `${op.op} ${path}${permanent ? ' --permanent' : ''}`;
      const call = () => (op.op === 'unlink' ? space.unlink(path) : space.remove(path, { permanent }));
      const here = at(m, path);
      if (!here) return expectCode(what, ['FileNotFound'], call);
      if ('link' in here) return `${what}: skipped (deleting links: store-model)`;
      const r = call() as { recycledItemId?: number; namesLeft?: number };
      if (here.inode.names.length > 1) {
        removeName(m, here.inode, path);
        expectEq(r, { namesLeft: here.inode.names.length }, `${what}: L18 removes one name, no item`);
      } else if (permanent) {
        expectEq(r, {}, `${what}: a permanent delete of the last name`);
        m.inodes.delete(here.inode.sid);
        m.purged.add(here.inode.sid);
        m.links = m.links.filter((l) => (l.target === here.inode.sid ? void m.purged.add(l.sid) : true)); // L13
      } else {
        if (r.recycledItemId === undefined) throw new Mismatch(`${what}: the last name made no recycle item`);
        binInode(m, here.inode, r.recycledItemId, path);
      }
      return what;
    }
    case 'rename': {
      const src = pick(ALL_PATHS, op.src)!;
      const dst = pick(ALL_PATHS, op.dst)!;
      const what = `rename ${src} ${dst}`;
      const s = at(m, src);
      if (!s) return expectCode(what, ['FileNotFound'], () => space.rename(src, dst));
      if ('link' in s) return `${what}: skipped (moving links: store-model)`;
      const d = at(m, dst);
      if (d && 'link' in d) return `${what}: skipped (over a link: store-model)`;
      space.rename(src, dst);
      if (src === dst) return what;
      if (d && d.inode === s.inode) return `${what} (two names of one inode: nothing changes)`;
      if (d) {
        if (d.inode.names.length > 1) removeName(m, d.inode, dst); // L18
        else {
          // the last name of another file: to the bin; links bound to it follow the newcomer (L10)
          const item = space.trashList().find((i) => i.originalPath === dst && !m.items.some((x) => x.id === i.id));
          if (!item) throw new Mismatch(`${what}: the replaced file did not go to the bin`);
          for (const l of m.links) if (l.item === undefined && l.target === d.inode.sid) l.target = s.inode.sid;
          m.items.push({ id: item.id, inode: d.inode.sid, originalPath: dst, links: [] });
          m.inodes.delete(d.inode.sid);
          d.inode.names = [];
          m.binned.set(item.id, d.inode);
        }
      }
      // the moved name is the newest (L19)
      s.inode.names = [...s.inode.names.filter((n) => n !== src), dst];
      return what;
    }
    case 'symlink': {
      const src = pick(ALL_PATHS, op.src)!;
      const dst = pick(ALL_PATHS, op.dst)!;
      const what = `ln -s (bound) ${src} ${dst}`;
      const s = at(m, src);
      if (!s || 'link' in s || at(m, dst)) return `${what}: skipped`;
      const made = space.createLink(dst, src, { conflict: 'ask' });
      m.purged.delete(made.info.id); // ids of purged nodes may be reused
      m.links.push({ sid: made.info.id, path: dst, target: s.inode.sid });
      return what;
    }
    case 'restore': {
      const it = pick(m.items, op.item);
      if (!it) return 'restore: no item';
      const what = `restore ${it.id} (${it.originalPath})`;
      if (it.inode === -1 || at(m, it.originalPath) || it.links.some((l) => at(m, l))) {
        return `${what}: skipped (old versions and renamed restores: store-model)`;
      }
      const placed = space.restore(it.id, { conflict: 'ask' });
      expectEq(placed.path, it.originalPath.split('/'), `${what}: back at its last name (T4)`);
      const inode = m.binned.get(it.id)!;
      m.binned.delete(it.id);
      inode.names = [it.originalPath];
      m.inodes.set(inode.sid, inode);
      for (const l of m.links) if (l.item === it.id) delete l.item;
      m.items = m.items.filter((x) => x !== it);
      return what;
    }
    case 'purge': {
      const it = pick(m.items, op.item);
      if (!it) return 'purge: no item';
      space.purge(it.id);
      const inode = m.binned.get(it.id)!;
      m.binned.delete(it.id);
      m.purged.add(inode.sid);
      m.links = m.links.filter((l) => (l.item === it.id ? void m.purged.add(l.sid) : true)); // L13: its links with it
      m.items = m.items.filter((x) => x !== it);
      return `purge ${it.id}`;
    }
  }
}

async function check(m: Model, env: { lib: Library; space: Space }): Promise<void> {
  // The metadata in one read snapshot (PostgreSQL: a BEGIN/COMMIT per multi-statement read
  // otherwise); the bytes of every name after it (a blob read is asynchronous).
  const contents = inOneSnapshot(env.lib, () => checkRows(m, env));
  for (const c of contents) {
    const bytes = c.info.size === 0 ? '' : (await readerOf(env.lib).readBlob(c.info.blob!, 0, c.info.size)).toString();
    expectEq(bytes, c.content, `${c.name}: content`);
  }
}

function checkRows(m: Model, env: { lib: Library; space: Space }): Array<{ name: string; info: NodeInfo; content: string }> {
  const { space } = env;
  const contents: Array<{ name: string; info: NodeInfo; content: string }> = [];
  for (const inode of m.inodes.values()) {
    for (const name of inode.names) {
      const info = space.stat(name);
      expectEq(info.id, inode.sid, `${name}: inode`);
      expectEq(info.nlink, inode.names.length, `${name}: nlink`);
      contents.push({ name, info, content: inode.content });
    }
  }
  // nothing else lives at the model's paths
  for (const d of DIRS) {
    const listed = space.readdir(d).map((e) => (d ? `${d}/${e.name}` : e.name)).filter((p) => !DIRS.includes(p) && p !== '.trash');
    const expected = ALL_PATHS.filter((p) => p.startsWith(d ? `${d}/` : '') && (d !== '' || !p.includes('/')) && at(m, p) !== undefined);
    expectEq(listed.sort(), expected.sort(), `listing of '${d}'`);
  }
  for (const l of m.links) {
    if (l.item !== undefined) continue;
    const info = space.stat(l.path);
    expectEq(info.link?.targetNode, l.target, `${l.path}: bound to the inode`);
    const target = m.inodes.get(l.target);
    if (target) expectEq(space.readlink(l.path), rel(l.path, target.names[0]!), `${l.path}: readlink names the oldest name (L19)`);
  }
  const items = space.trashList();
  expectEq(items.map((i) => i.id).sort((a, b) => a - b), m.items.map((i) => i.id).sort((a, b) => a - b), 'recycle items (T1, L18: none for one name of several)');
  for (const it of m.items) {
    const s = items.find((i) => i.id === it.id)!;
    expectEq(s.originalPath, it.originalPath, `item ${it.id}: original path`);
    expectEq(s.links.map((l) => l.originalPath).sort(), it.links, `item ${it.id}: its cascaded links (L12)`);
  }
  for (const sid of m.purged) {
    try {
      space.statNode(sid);
      throw new Mismatch(`purged node ${sid} still exists`);
    } catch (e) {
      if (e instanceof Mismatch) throw e;
      if (!isSmhError(e, 'FileNotFound')) throw e;
    }
  }
  return contents;
}

t.test('L17–L19, T1, L12, L13: random sequences of link / unlink / rename / delete / restore / purge agree with a model of inodes and names', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: STEPS, maxLength: STEPS }), async (ops) => {
      runs++;
      const sub = { teardown: (fn: () => void) => cleanups.push(fn) } as unknown as Parameters<typeof openLib>[0];
      const cleanups: Array<() => void> = [];
      const { lib, space } = openLib(sub);
      try {
        space.mkdir('x');
        space.mkdir('y');
        const m: Model = { inodes: new Map(), binned: new Map(), links: [], items: [], purged: new Set() };
        const log: string[] = [];
        for (const op of ops) {
          try {
            log.push(await apply(m, op, { lib, space }));
            if (process.env.SMHFS_NAMES_DEBUG) console.error(log[log.length - 1]);
            await check(m, { lib, space });
          } catch (e) {
            throw new Error(`after ${log.length} step(s):\n  ${log.join('\n  ')}\n  ${JSON.stringify(op)}\n${(e as Error).message}`);
          }
        }
      } finally {
        for (const c of cleanups.reverse()) c();
      }
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true },
  );
  t.equal(runs, RUNS, `${RUNS} random sequences of ${STEPS} steps, each checked after every step`);
});
