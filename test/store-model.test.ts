/**
 * Model-based randomized test of the store (fast-check): long random sequences of
 * put / ln (createLink) / symlink / mv / cp / rm / rm --permanent / restore / purge / empty /
 * mkdir are applied to the store and to a plain in-memory reference model. After every step:
 *
 *  - the two agree on every live path (kind, node identity, file content, link flavour and
 *    target path) and on the recycle bin (items, cascaded links, the content of trashed dirs);
 *  - every live bound link resolves to an existing file (live, or inside a trashed directory,
 *    L14), and its readlink leads there;
 *  - no bound link anywhere (live, in the bin view, cascaded) references a purged node, and
 *    purged nodes are gone;
 *  - every few steps, and at the end: every recycle item is restored, one at a time, on a
 *    consistent copy of the database (VACUUM INTO) and the result compared with the model's
 *    prediction (restored, or refused with the right code) — the real library is not mutated.
 *
 * Where the SPEC leaves an outcome open the model either accepts each reading (noted "lenient")
 * or does not generate that situation ("skip"); the decisions are listed in `skip(...)` reasons.
 *
 * Nodes here have one name each; hard links (several names, L17–L19) have their own model in
 * test/store-names-model.test.ts.
 *
 * The libraries' folders are made in memory (/dev/shm, `memoryTempDir`): this is a test of the
 * rules, not of what survives a crash, and on SQLite each durable commit's fsync would wait for
 * the disk (18.5 -> 14.6 s wall).
 *
 * Environment: SMHFS_MODEL_SEED, SMHFS_MODEL_RUNS, SMHFS_MODEL_STEPS, SMHFS_MODEL_SHRINK=1.
 */
import t from 'tap';
import fc from 'fast-check';
import { rmSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Library, type Space } from '../src/store/library.js';
import { MemoryBlobStore } from './helpers/memory-store.js';
import { isSmhError, type ErrorCode } from '../src/errors.js';
import type { Conflict, NodeInfo, Placed, RecycleItem } from '../src/store/types.js';
import { closeStoreLib, copyStoreLib, inOneSnapshot, openStoreLib, rowsDigest } from './helpers/store-engines.js';
import { readerOf, storeEngine, joinPath, parentOf, relPath, resolveFrom, sha256, memoryTempDir } from './helpers/store.js';

const SEED = Number(process.env.SMHFS_MODEL_SEED ?? 20240611);
// On PostgreSQL (test/pg-store-model.test.ts) every statement is a round trip: the first 15 of
// the same seed's runs, to keep `make test` short.
const RUNS = Number(process.env.SMHFS_MODEL_RUNS ?? (storeEngine.name === 'postgres' ? 15 : 30));
const STEPS = Number(process.env.SMHFS_MODEL_STEPS ?? 200);
const RESTORE_CHECK_EVERY = 20;

const NAMES = ['a', 'b', 'c.txt', 'd.tar.gz', '.e'];
const CONTENTS = ['alpha', 'beta', 'gamma\n', 'δέλτα', 'epsilon epsilon epsilon', 'z'];
const CONFLICTS: Array<Conflict | undefined> = ['ask', 'rename', 'overwrite', undefined];
const SN: ErrorCode = 'SameNameDirectoryOrFileExists';

// ---------------------------------------------------------------------------------------------
// the reference model (plain data, so structuredClone copies it)

type Kind = 'dir' | 'file' | 'link';
interface MNode {
  mid: number;
  sid: number | undefined; // store id (learned from results)
  kind: Kind;
  parent: number | null; // null: an item root, a cascaded link
  name: string;
  content?: string; // file
  flavour?: 'bound' | 'path';
  target?: number; // bound link: mid of the target file
  stored?: string; // path link
  cascadedIn?: number; // link carried by a recycle item (L12)
}
interface MItem {
  id: number;
  root: number; // mid
  kind: Kind;
  name: string;
  originalPath: string;
  viewName: string;
  links: Array<{ mid: number; originalPath: string }>;
  /** A link item whose target was purged: the store may keep it (restore refused) or drop it. */
  doomed?: boolean;
}
interface Model {
  nodes: Map<number, MNode>;
  items: MItem[];
  purged: Set<number>; // store ids that must no longer exist
  next: number;
}

function newModel(rootSid: number): Model {
  const m: Model = { nodes: new Map(), items: [], purged: new Set(), next: 1 };
  m.nodes.set(0, { mid: 0, sid: rootSid, kind: 'dir', parent: null, name: '' });
  return m;
}
function addNode(m: Model, n: Omit<MNode, 'mid'>): MNode {
  const node = { ...n, mid: m.next++ } as MNode;
  if (node.sid !== undefined) m.purged.delete(node.sid); // ids of purged nodes may be reused
  m.nodes.set(node.mid, node);
  return node;
}
const node = (m: Model, mid: number): MNode => {
  const n = m.nodes.get(mid);
  if (!n) throw new Error(`model: no node ${mid}`);
  return n;
};
const childrenOf = (m: Model, mid: number) => [...m.nodes.values()].filter((n) => n.parent === mid);
const childNamed = (m: Model, mid: number, name: string) => [...m.nodes.values()].find((n) => n.parent === mid && n.name === name);

type Loc = { at: 'live' } | { at: 'trash'; item: MItem; isRoot: boolean } | { at: 'cascaded'; item: MItem };
function locate(m: Model, mid: number): Loc {
  let n = node(m, mid);
  if (n.cascadedIn !== undefined) return { at: 'cascaded', item: m.items.find((i) => i.id === n.cascadedIn)! };
  while (n.parent !== null) n = node(m, n.parent);
  if (n.mid === 0) return { at: 'live' };
  const item = m.items.find((i) => i.root === n.mid);
  if (!item) throw new Error(`model: node ${mid} is detached`);
  return { at: 'trash', item, isRoot: n.mid === mid };
}
/** Space path of a node: live `a/b`, in the bin view `.trash/<view>/…`; undefined if cascaded. */
function pathOf(m: Model, mid: number): string | undefined {
  const segs: string[] = [];
  let n = node(m, mid);
  if (n.cascadedIn !== undefined) return undefined;
  while (n.parent !== null) {
    segs.unshift(n.name);
    n = node(m, n.parent);
  }
  if (n.mid === 0) return segs.join('/');
  const item = m.items.find((i) => i.root === n.mid)!;
  return ['.trash', item.viewName, ...segs].join('/');
}
function subtree(m: Model, mid: number): MNode[] {
  const out: MNode[] = [node(m, mid)];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(m, out[i]!.mid));
  return out;
}
const inSubtree = (m: Model, mid: number, rootMid: number): boolean => {
  for (let n: MNode | undefined = node(m, mid); n; n = n.parent === null ? undefined : node(m, n.parent)) if (n.mid === rootMid) return true;
  return false;
};
const boundTo = (m: Model, fileMid: number) => [...m.nodes.values()].filter((n) => n.kind === 'link' && n.flavour === 'bound' && n.target === fileMid);
const liveNodes = (m: Model) =>
  [...m.nodes.values()]
    .filter((n) => n.mid !== 0 && n.cascadedIn === undefined && locate(m, n.mid).at === 'live')
    .map((n) => ({ n, p: pathOf(m, n.mid)! }))
    .sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : 0));
const liveDirs = (m: Model) => [{ n: node(m, 0), p: '' }, ...liveNodes(m).filter((x) => x.n.kind === 'dir')];
/** Live node at a space path, walking only directories; 'blocked' when a non-dir is in the way. */
function lookup(m: Model, path: string): MNode | undefined | 'blocked' {
  let cur = node(m, 0);
  const segs = path === '' ? [] : path.split('/');
  for (let i = 0; i < segs.length; i++) {
    if (cur.kind !== 'dir') return 'blocked';
    const c = childNamed(m, cur.mid, segs[i]!);
    if (!c) return undefined;
    cur = c;
  }
  return cur;
}
/** C2 */
function variant(name: string, n: number, isDir: boolean): string {
  const dot = name.lastIndexOf('.');
  if (isDir || dot <= 0) return `${name} (${n})`;
  return `${name.slice(0, dot)} (${n})${name.slice(dot)}`;
}
function freeName(m: Model, dirMid: number, name: string, isDir: boolean, also: Set<string> = new Set()): string {
  for (let n = 1; ; n++) {
    const v = variant(name, n, isDir);
    if (!childNamed(m, dirMid, v) && !also.has(v)) return v;
  }
}
function detach(m: Model, mid: number) {
  for (const n of subtree(m, mid)) {
    if (n.sid !== undefined) m.purged.add(n.sid);
    m.nodes.delete(n.mid);
  }
}
/** Purge nodes (a subtree) plus every bound link to files among them (L13/L15); doom link items. */
function purgeNodes(m: Model, rootMid: number) {
  const gone = new Set(subtree(m, rootMid).map((n) => n.mid));
  for (const f of gone) {
    if (!m.nodes.has(f) || node(m, f).kind !== 'file') continue;
    for (const l of boundTo(m, f)) {
      if (gone.has(l.mid)) continue;
      const loc = locate(m, l.mid);
      if (loc.at === 'trash' && loc.isRoot) loc.item.doomed = true;
      else if (loc.at === 'live' || loc.at === 'cascaded') detach(m, l.mid);
      else throw new Error('model: purge with a bound link inside another trashed dir (should have been skipped)');
    }
  }
  detach(m, rootMid);
}

// ---------------------------------------------------------------------------------------------
// operations

type Op =
  | { op: 'mkdir'; dir: number; name: number }
  | { op: 'put'; dir: number; name: number; content: number; conflict: number }
  | { op: 'ln'; dir: number; name: number; src: number; conflict: number }
  | { op: 'symlink'; dir: number; name: number; tgt: number }
  | { op: 'mv'; src: number; dir: number; name: number; conflict: number }
  | { op: 'cp'; src: number; dir: number; name: number; conflict: number }
  | { op: 'rm'; src: number }
  | { op: 'rmp'; src: number }
  | { op: 'restore'; item: number; conflict: number }
  | { op: 'purge'; item: number }
  | { op: 'empty' };

const nat = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('mkdir' as const), dir: nat, name: nat }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('put' as const), dir: nat, name: nat, content: nat, conflict: nat }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('ln' as const), dir: nat, name: nat, src: nat, conflict: nat }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('symlink' as const), dir: nat, name: nat, tgt: nat }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('mv' as const), src: nat, dir: nat, name: nat, conflict: nat }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cp' as const), src: nat, dir: nat, name: nat, conflict: nat }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('rm' as const), src: nat }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rmp' as const), src: nat }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('restore' as const), item: nat, conflict: nat }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('purge' as const), item: nat }) },
  { weight: 1, arbitrary: fc.constant({ op: 'empty' as const }) },
);

interface Env {
  lib: Library;
  space: Space;
}
type Plan =
  | { t: 'skip'; why: string }
  | { t: 'error'; desc: string; codes: ErrorCode[]; call: (e: Env) => unknown }
  | { t: 'ok'; desc: string; call: (e: Env) => unknown; after: (res: unknown, e: Env) => Promise<void> | void };

class Mismatch extends Error {}
function expectEq(a: unknown, b: unknown, what: string) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Mismatch(`${what}: store ${JSON.stringify(a)} != model ${JSON.stringify(b)}`);
}
const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);
const segsOf = (p: string) => (p === '' ? [] : p.split('/'));

async function storeContent(lib: Library, s: string) {
  return lib.storeBlobFromStream(Readable.from(Buffer.from(s)));
}

type Placement =
  | { t: 'error'; codes: ErrorCode[] }
  | { t: 'skip'; why: string }
  | { t: 'ok'; name: string; replaced?: MNode; mode?: 'l10' | 'l11' | 'replink' };

/**
 * Where a new node `incoming` (kind `kind`; `movingMid` when an existing node is moved) lands
 * in `dirMid` under `name` with strategy `conflict` (C1–C3).
 */
function place(
  m: Model,
  dirMid: number,
  name: string,
  conflict: Conflict | 'rename-default',
  kind: Kind,
  incoming: { movingMid?: number; boundTarget?: number },
): Placement {
  const existing = childNamed(m, dirMid, name);
  if (!existing) return { t: 'ok', name };
  if (incoming.movingMid === existing.mid) return { t: 'skip', why: 'move/copy onto itself' };
  if (conflict === 'ask') return { t: 'error', codes: [SN] };
  if (conflict === 'rename' || conflict === 'rename-default') return { t: 'ok', name: freeName(m, dirMid, name, kind === 'dir') };
  if (existing.kind === 'dir') return { t: 'error', codes: [SN] }; // C3
  if (existing.kind === 'link') return { t: 'ok', name, replaced: existing, mode: 'replink' };
  if (kind === 'file') return { t: 'ok', name, replaced: existing, mode: 'l10' };
  // L11: the replaced file goes to the bin with its live bound links
  if (incoming.boundTarget === existing.mid) return { t: 'skip', why: 'a link overwriting its own target' };
  for (const l of boundTo(m, existing.mid)) {
    const loc = locate(m, l.mid);
    if (loc.at === 'trash' && !loc.isRoot) return { t: 'skip', why: 'L11 with a bound link inside a trashed dir (SPEC silent)' };
    if (incoming.movingMid !== undefined && inSubtree(m, l.mid, incoming.movingMid))
      return { t: 'skip', why: 'L11 would cascade a link out of the moved directory' };
  }
  return { t: 'ok', name, replaced: existing, mode: 'l11' };
}

/** Trash a file with its live bound links (L12), as item `id`. */
function trashFile(m: Model, f: MNode, id: number, originalPath: string) {
  const links = boundTo(m, f.mid).filter((l) => locate(m, l.mid).at === 'live');
  const item: MItem = {
    id,
    root: f.mid,
    kind: 'file',
    name: f.name,
    originalPath,
    viewName: `${id}-${f.name}`,
    links: links.map((l) => ({ mid: l.mid, originalPath: pathOf(m, l.mid)! })),
  };
  for (const l of links) {
    l.parent = null;
    l.cascadedIn = id;
  }
  f.parent = null;
  m.items.push(item);
}
function trashWhole(m: Model, n: MNode, id: number, originalPath: string) {
  m.items.push({ id, root: n.mid, kind: n.kind, name: n.name, originalPath, viewName: `${id}-${n.name}`, links: [] });
  n.parent = null;
}

/**
 * After the store placed `incoming` over `replaced`: apply the one replacement rule to the model
 * (C3, L10, L11, T1): the replaced file or link always goes to the bin as an item of its own; a
 * file replaced by a file keeps no links (they are rebound to the newcomer, L10), a file replaced
 * by anything else takes its live bound links along (L11/L12). An upload over a file keeps the
 * file's identity: the item holds the old version as a new node (`sidOfItem`).
 * `survivorSid` is the id the store reports for the node now at the path.
 */
function applyReplace(
  m: Model,
  replaced: MNode,
  mode: 'l10' | 'l11' | 'replink',
  incoming: MNode,
  survivorSid: number,
  replacedPath: string,
  newItems: RecycleItem[],
  sidOfItem: (it: RecycleItem) => number,
) {
  const adopt = (kind: Kind) => {
    const it = newItems.find((i) => i.originalPath === replacedPath && i.kind === kind);
    if (it) newItems.splice(newItems.indexOf(it), 1);
    return it;
  };
  const oldIncomingSid = incoming.sid;
  incoming.sid = survivorSid;
  m.purged.delete(survivorSid);
  if (mode === 'l11') {
    const it = adopt('file');
    if (!it) throw new Mismatch(`L11: ${replacedPath} was overwritten by a non-file but no recycle item appeared`);
    trashFile(m, replaced, it.id, replacedPath);
  } else if (mode === 'l10') {
    for (const l of boundTo(m, replaced.mid)) l.target = incoming.mid; // L10: rebound
    const it = adopt('file');
    if (!it && replaced.sid === survivorSid && replaced.content === incoming.content) {
      m.nodes.delete(replaced.mid); // the same bytes uploaded over themselves: nothing to keep
      return;
    }
    if (!it) throw new Mismatch(`T1: the file replaced at ${replacedPath} did not go to the recycle bin`);
    expectEq(it.links, [], `L10: the replaced file's item carries no links (they were rebound)`);
    if (replaced.sid === survivorSid) replaced.sid = sidOfItem(it); // in place: the bin holds the old version
    trashWhole(m, replaced, it.id, replacedPath);
  } else {
    const it = adopt('link');
    if (!it) throw new Mismatch(`T1: the link replaced at ${replacedPath} did not go to the recycle bin`);
    trashWhole(m, replaced, it.id, replacedPath);
  }
  if (oldIncomingSid !== undefined && oldIncomingSid !== survivorSid) m.purged.add(oldIncomingSid);
}

function checkPlaced(res: unknown, path: string, kind: Kind, what: string): Placed {
  const p = res as Placed;
  expectEq(p.path, segsOf(path), `${what}: Placed.path`);
  expectEq(p.info.kind, kind, `${what}: Placed.info.kind`);
  return p;
}

/** The node id of a recycle item (its entry in the bin view). */
const itemSid = (space: Space) => (it: RecycleItem): number => space.stat(`.trash/${it.viewName}`, {}).id;

/**
 * D10 for a move or copy of `src` to `newPath`: 'outside' when a mount-made path link in what
 * moves would lead outside the space from its new place (then the store refuses it with
 * InvalidSourceFile), 'unsure' when a link lies on the way of such a target (the store walks it as
 * the kernel would; the model does not), else 'inside'.
 */
function d10(m: Model, src: { n: MNode; p: string }, newPath: string, op: 'mv' | 'cp'): 'outside' | 'inside' | 'unsure' {
  const after = (path: string): MNode | undefined | 'blocked' => {
    if (path === newPath || path.startsWith(newPath + '/')) return lookup(m, src.p + path.slice(newPath.length));
    if (op === 'mv' && (path === src.p || path.startsWith(src.p + '/'))) return undefined;
    return lookup(m, path);
  };
  let verdict: 'outside' | 'inside' | 'unsure' = 'inside';
  for (const l of subtree(m, src.n.mid)) {
    if (l.kind !== 'link' || l.flavour !== 'path') continue;
    const stored = l.stored!;
    if (stored.startsWith('/')) {
      if (op === 'cp') return 'outside';
      continue;
    }
    const at = newPath + pathOf(m, l.mid)!.slice(src.p.length);
    const dir = parentOf(at);
    if (resolveFrom(dir, stored) === undefined) return 'outside';
    const segs = dir === '' ? [] : dir.split('/');
    for (const seg of stored.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        segs.pop();
        continue;
      }
      segs.push(seg);
      const n = after(segs.join('/'));
      if (n === undefined || n === 'blocked') break;
      if (n.kind === 'link') verdict = 'unsure';
    }
  }
  return verdict;
}

function newItemsSince(space: Space, m: Model): RecycleItem[] {
  const known = new Set(m.items.map((i) => i.id));
  return space.trashList().filter((i) => !known.has(i.id));
}

function plan(m: Model, op: Op): Plan {
  const dirs = liveDirs(m);
  const live = liveNodes(m);
  switch (op.op) {
    case 'mkdir': {
      const d = pick(dirs, op.dir)!;
      const name = pick(NAMES, op.name)!;
      const path = joinPath(d.p, name);
      const desc = `mkdir ${path}`;
      if (childNamed(m, d.n.mid, name)) return { t: 'error', desc, codes: [SN], call: ({ space }) => space.mkdir(path, {}) };
      return {
        t: 'ok',
        desc,
        call: ({ space }) => space.mkdir(path, {}),
        after: (res) => {
          const p = checkPlaced(res, path, 'dir', desc);
          addNode(m, { sid: p.info.id, kind: 'dir', parent: d.n.mid, name });
        },
      };
    }
    case 'put': {
      const d = pick(dirs, op.dir)!;
      const name = pick(NAMES, op.name)!;
      const content = pick(CONTENTS, op.content)!;
      const conflict = pick(['ask', 'rename', 'overwrite'] as const, op.conflict)!;
      const path = joinPath(d.p, name);
      const desc = `put ${path} ${JSON.stringify(content)} --conflict ${conflict}`;
      const call = async ({ lib, space }: Env) => {
        const ref = await storeContent(lib, content);
        try {
          return space.putFile(path, ref, { conflict });
        } catch (e) {
          lib.abandonBlob(ref);
          throw e;
        }
      };
      const pl = place(m, d.n.mid, name, conflict, 'file', {});
      if (pl.t === 'skip') return { t: 'skip', why: pl.why };
      if (pl.t === 'error') return { t: 'error', desc, codes: pl.codes, call };
      const finalPath = joinPath(d.p, pl.name);
      return {
        t: 'ok',
        desc,
        call,
        after: (res, { space }) => {
          const p = checkPlaced(res, finalPath, 'file', desc);
          const replacedPath = pl.replaced ? pathOf(m, pl.replaced.mid)! : '';
          const newItems = pl.replaced ? newItemsSince(space, m) : [];
          if (pl.replaced) pl.replaced.parent = -1; // out of the way while placing
          const n = addNode(m, { sid: undefined, kind: 'file', parent: d.n.mid, name: pl.name, content });
          if (pl.replaced) applyReplace(m, pl.replaced, pl.mode!, n, p.info.id, replacedPath, newItems, itemSid(space));
          else {
            n.sid = p.info.id;
            m.purged.delete(n.sid);
          }
        },
      };
    }
    case 'ln': {
      const d = pick(dirs, op.dir)!;
      const name = pick(NAMES, op.name)!;
      const src = pick(live, op.src);
      if (!src) return { t: 'skip', why: 'nothing to link to' };
      const conflict = pick(CONFLICTS, op.conflict);
      const path = joinPath(d.p, name);
      const desc = `ln ${src.p} ${path} --conflict ${conflict ?? '(default)'}`;
      const call = ({ space }: Env) => space.createLink(path, src.p, conflict === undefined ? {} : { conflict });
      const srcErr: ErrorCode[] = src.n.kind === 'file' ? [] : ['InvalidSourceFile'];
      const pl = place(m, d.n.mid, name, conflict ?? 'rename-default', 'link', { boundTarget: src.n.mid });
      if (srcErr.length) return { t: 'error', desc, codes: [...srcErr, ...(pl.t === 'error' ? pl.codes : [])], call };
      if (pl.t === 'skip') return { t: 'skip', why: pl.why };
      if (pl.t === 'error') return { t: 'error', desc, codes: pl.codes, call };
      const finalPath = joinPath(d.p, pl.name);
      return {
        t: 'ok',
        desc,
        call,
        after: (res, { space }) => {
          const p = checkPlaced(res, finalPath, 'link', desc);
          expectEq(p.info.link?.flavour, 'bound', `${desc}: flavour`);
          const replacedPath = pl.replaced ? pathOf(m, pl.replaced.mid)! : '';
          const newItems = pl.replaced ? newItemsSince(space, m) : [];
          if (pl.replaced) pl.replaced.parent = -1;
          const n = addNode(m, { sid: undefined, kind: 'link', parent: d.n.mid, name: pl.name, flavour: 'bound', target: src.n.mid });
          if (pl.replaced) applyReplace(m, pl.replaced, pl.mode!, n, p.info.id, replacedPath, newItems, itemSid(space));
          else {
            n.sid = p.info.id;
            m.purged.delete(n.sid);
          }
        },
      };
    }
    case 'symlink': {
      const d = pick(dirs, op.dir)!;
      const name = pick(NAMES, op.name)!;
      const path = joinPath(d.p, name);
      const targets = [...live.map((x) => relPath(d.p, x.p)), 'zz-missing', '../'.repeat(segsOf(d.p).length + 1) + 'outside'];
      const target = pick(targets, op.tgt)!;
      const desc = `symlink ${path} -> ${target}`;
      const call = ({ space }: Env) => space.symlink(path, target, {});
      if (childNamed(m, d.n.mid, name)) return { t: 'error', desc, codes: [SN], call };
      const resolved = resolveFrom(d.p, target);
      const tn = resolved === undefined ? undefined : lookup(m, resolved);
      const bound = typeof tn === 'object' && tn.kind === 'file' ? tn : undefined;
      return {
        t: 'ok',
        desc,
        call,
        after: (res) => {
          const info = res as NodeInfo;
          expectEq(info.kind, 'link', `${desc}: kind`);
          expectEq(info.link?.flavour, bound ? 'bound' : 'path', `${desc}: flavour (L1)`);
          addNode(m, {
            sid: info.id,
            kind: 'link',
            parent: d.n.mid,
            name,
            ...(bound ? { flavour: 'bound' as const, target: bound.mid } : { flavour: 'path' as const, stored: target }),
          });
        },
      };
    }
    case 'mv': {
      const src = pick(live, op.src);
      if (!src) return { t: 'skip', why: 'nothing to move' };
      const d = pick(dirs, op.dir)!;
      const name = pick([...NAMES, src.n.name], op.name)!;
      const conflict = pick(CONFLICTS, op.conflict);
      const path = joinPath(d.p, name);
      const desc = `mv ${src.p} ${path} --conflict ${conflict ?? '(default)'}`;
      const call = ({ space }: Env) => space.move(src.p, path, conflict === undefined ? {} : { conflict });
      if (d.n.mid === src.n.mid || inSubtree(m, d.n.mid, src.n.mid)) {
        const pl = place(m, d.n.mid, name, conflict ?? 'rename-default', src.n.kind, { movingMid: src.n.mid });
        return { t: 'error', desc, codes: ['MoveIntoItself', ...(pl.t === 'error' ? pl.codes : [])], call };
      }
      const pl = place(m, d.n.mid, name, conflict ?? 'rename-default', src.n.kind, {
        movingMid: src.n.mid,
        ...(src.n.flavour === 'bound' ? { boundTarget: src.n.target } : {}),
      });
      if (pl.t === 'skip') return { t: 'skip', why: pl.why };
      if (pl.t === 'error') return { t: 'error', desc, codes: pl.codes, call };
      const finalPath = joinPath(d.p, pl.name);
      const escape = d10(m, src, finalPath, 'mv');
      if (escape === 'unsure') return { t: 'skip', why: 'D10 with a link on the way of a path link target' };
      if (escape === 'outside') return { t: 'error', desc, codes: ['InvalidSourceFile'], call };
      return {
        t: 'ok',
        desc,
        call,
        after: (res, { space }) => {
          const p = checkPlaced(res, finalPath, src.n.kind, desc);
          const replacedPath = pl.replaced ? pathOf(m, pl.replaced.mid)! : '';
          const newItems = pl.replaced ? newItemsSince(space, m) : [];
          if (pl.replaced) pl.replaced.parent = -1;
          src.n.parent = d.n.mid;
          src.n.name = pl.name;
          if (pl.replaced) applyReplace(m, pl.replaced, pl.mode!, src.n, p.info.id, replacedPath, newItems, itemSid(space));
          else expectEq(p.info.id, src.n.sid, `${desc}: identity survives a move`);
        },
      };
    }
    case 'cp': {
      const srcs = live.filter((x) => x.n.kind !== 'dir');
      const src = pick(srcs, op.src);
      if (!src) return { t: 'skip', why: 'nothing to copy' };
      const d = pick(dirs, op.dir)!;
      const name = pick([...NAMES, src.n.name], op.name)!;
      const conflict = pick(CONFLICTS, op.conflict);
      const path = joinPath(d.p, name);
      const desc = `cp ${src.p} ${path} --conflict ${conflict ?? '(default)'}`;
      const call = ({ space }: Env) => space.copy(src.p, path, conflict === undefined ? {} : { conflict });
      const pl = place(m, d.n.mid, name, conflict ?? 'rename-default', src.n.kind, {
        movingMid: src.n.mid,
        ...(src.n.flavour === 'bound' ? { boundTarget: src.n.target } : {}),
      });
      if (pl.t === 'skip') return { t: 'skip', why: pl.why };
      if (pl.t === 'error') return { t: 'error', desc, codes: pl.codes, call };
      const finalPath = joinPath(d.p, pl.name);
      const escape = d10(m, src, finalPath, 'cp');
      if (escape === 'unsure') return { t: 'skip', why: 'D10 with a link on the way of a path link target' };
      if (escape === 'outside') return { t: 'error', desc, codes: ['InvalidSourceFile'], call };
      return {
        t: 'ok',
        desc,
        call,
        after: (res, { space }) => {
          const p = checkPlaced(res, finalPath, src.n.kind, desc);
          if (p.info.id === src.n.sid) throw new Mismatch(`${desc}: a copy must be a new node`);
          const replacedPath = pl.replaced ? pathOf(m, pl.replaced.mid)! : '';
          const newItems = pl.replaced ? newItemsSince(space, m) : [];
          if (pl.replaced) pl.replaced.parent = -1;
          const { mid: _mid, sid: _sid, parent: _parent, name: _name, ...rest } = src.n;
          const n = addNode(m, { ...rest, sid: undefined, parent: d.n.mid, name: pl.name });
          if (pl.replaced) applyReplace(m, pl.replaced, pl.mode!, n, p.info.id, replacedPath, newItems, itemSid(space));
          else {
            n.sid = p.info.id;
            m.purged.delete(n.sid);
          }
        },
      };
    }
    case 'rm': {
      const src = pick(live, op.src);
      if (!src) return { t: 'skip', why: 'nothing to remove' };
      const desc = `rm -r ${src.p}`;
      if (src.n.kind === 'file') {
        for (const l of boundTo(m, src.n.mid)) {
          const loc = locate(m, l.mid);
          if (loc.at === 'trash' && !loc.isRoot) return { t: 'skip', why: 'L12 with a bound link inside a trashed dir (SPEC silent)' };
        }
      }
      const empty = src.n.kind === 'dir' && childrenOf(m, src.n.mid).length === 0;
      return {
        t: 'ok',
        desc,
        call: ({ space }) => space.remove(src.p, { recursive: true }),
        after: (res) => {
          const r = res as { recycledItemId?: number; taskId?: number };
          if (r.recycledItemId === undefined) {
            // lenient only for an empty directory (rmdir semantics); T1: nothing else is lost
            if (!empty) throw new Mismatch(`${desc}: no recycledItemId (T1)`);
            detach(m, src.n.mid);
            return;
          }
          if (src.n.kind === 'file') trashFile(m, src.n, r.recycledItemId, src.p);
          else trashWhole(m, src.n, r.recycledItemId, src.p);
        },
      };
    }
    case 'rmp': {
      const src = pick(live, op.src);
      if (!src) return { t: 'skip', why: 'nothing to remove' };
      const desc = `rm -r --permanent ${src.p}`;
      for (const f of subtree(m, src.n.mid).filter((x) => x.kind === 'file')) {
        for (const l of boundTo(m, f.mid)) {
          const loc = locate(m, l.mid);
          if (loc.at === 'trash' && !loc.isRoot) return { t: 'skip', why: 'purge with a bound link inside a trashed dir (SPEC silent)' };
        }
      }
      return {
        t: 'ok',
        desc,
        call: async ({ space, lib }) => {
          const r = space.remove(src.p, { permanent: true, recursive: true });
          await lib.runTasks();
          return r;
        },
        after: (res, { lib }) => {
          const r = res as { recycledItemId?: number; taskId?: number };
          if (r.recycledItemId !== undefined) throw new Mismatch(`${desc}: a permanent delete made a recycle item`);
          if (src.n.kind === 'dir' && childrenOf(m, src.n.mid).length > 0 && r.taskId === undefined)
            throw new Mismatch(`${desc}: a non-empty directory purge must be a task (L15)`);
          if (r.taskId !== undefined) expectEq(lib.task(r.taskId).state, 'done', `${desc}: task state after runTasks`);
          purgeNodes(m, src.n.mid);
        },
      };
    }
    case 'restore': {
      const items = [...m.items].sort((a, b) => a.id - b.id);
      const item = pick(items, op.item);
      if (!item) return { t: 'skip', why: 'empty bin' };
      const conflict = pick([undefined, 'rename', 'ask'] as const, op.conflict);
      return planRestore(m, item, conflict);
    }
    case 'purge': {
      const items = [...m.items].sort((a, b) => a.id - b.id);
      const item = pick(items, op.item);
      if (!item) return { t: 'skip', why: 'empty bin' };
      const desc = `trash purge ${item.id} (${item.originalPath})`;
      const inItem = new Set(subtree(m, item.root).map((n) => n.mid));
      for (const f of inItem) {
        if (node(m, f).kind !== 'file') continue;
        for (const l of boundTo(m, f)) {
          if (inItem.has(l.mid)) continue;
          const loc = locate(m, l.mid);
          if (loc.at === 'trash' && !loc.isRoot) return { t: 'skip', why: 'purge with a bound link inside another trashed dir (SPEC silent)' };
        }
      }
      return {
        t: 'ok',
        desc,
        call: async ({ space, lib }) => {
          const r = space.purge(item.id);
          await lib.runTasks();
          return r;
        },
        after: (res, { lib }) => {
          const r = res as { taskId?: number };
          if (item.kind === 'dir' && childrenOf(m, item.root).length > 0 && r.taskId === undefined)
            throw new Mismatch(`${desc}: a directory purge must be a task (L15)`);
          if (item.kind !== 'dir' && r.taskId !== undefined) throw new Mismatch(`${desc}: a file/link purge is immediate (L13)`);
          if (r.taskId !== undefined) expectEq(lib.task(r.taskId).state, 'done', `${desc}: task state`);
          for (const l of item.links) detach(m, l.mid);
          m.items.splice(m.items.indexOf(item), 1);
          purgeNodes(m, item.root);
        },
      };
    }
    case 'empty': {
      return {
        t: 'ok',
        desc: 'trash empty',
        call: async ({ space, lib }) => {
          const r = await space.emptyTrash();
          await lib.runTasks();
          return r;
        },
        after: (res, { lib }) => {
          const r = res as { purged: number; taskIds: number[] };
          expectEq(r.purged, m.items.length, 'trash empty: purged count');
          for (const id of r.taskIds) expectEq(lib.task(id).state, 'done', `trash empty: task ${id} state after runTasks`);
          // every node in the bin goes; live links bound to files in trashed dirs go too (L15)
          const binRoots = [...m.items.map((i) => i.root), ...m.items.flatMap((i) => i.links.map((l) => l.mid))];
          const inBin = new Set(binRoots.filter((r) => m.nodes.has(r)).flatMap((r) => subtree(m, r).map((n) => n.mid)));
          const liveLinks = [...m.nodes.values()].filter(
            (l) => l.kind === 'link' && l.flavour === 'bound' && !inBin.has(l.mid) && inBin.has(l.target!),
          );
          for (const l of liveLinks) if (locate(m, l.mid).at !== 'live') throw new Error('model: link outside the bin is not live');
          m.items = [];
          for (const mid of [...inBin, ...liveLinks.map((l) => l.mid)]) {
            const n = m.nodes.get(mid);
            if (!n) continue;
            if (n.sid !== undefined) m.purged.add(n.sid);
            m.nodes.delete(mid);
          }
        },
      };
    }
  }
}

function planRestore(m: Model, item: MItem, conflict: 'rename' | 'ask' | undefined): Plan {
  const desc = `trash restore ${item.id} (${item.originalPath}) --conflict ${conflict ?? '(default)'}`;
  const call = ({ space }: Env) => space.restore(item.id, conflict === undefined ? {} : { conflict });
  const root = node(m, item.root);
  if (item.doomed) return { t: 'error', desc, codes: ['SourceFileNotFound'], call };
  if (root.kind === 'link' && root.flavour === 'bound') {
    const tl = locate(m, root.target!);
    if (tl.at === 'trash' && !tl.isRoot) return { t: 'skip', why: 'L16 with the target inside a trashed dir (SPEC silent)' };
    if (tl.at !== 'live') return { t: 'error', desc, codes: ['SourceFileNotFound'], call }; // L16
  }
  // parents (T4): existing dirs, or created; a non-dir in the way is not specified
  const segs = segsOf(item.originalPath);
  let cur = node(m, 0);
  const toCreate: string[] = [];
  for (const s of segs.slice(0, -1)) {
    if (toCreate.length) {
      toCreate.push(s);
      continue;
    }
    const c = childNamed(m, cur.mid, s);
    if (!c) toCreate.push(s);
    else if (c.kind !== 'dir') return { t: 'skip', why: 'restore with a non-directory in the parent path (SPEC silent)' };
    else cur = c;
  }
  const name = segs[segs.length - 1]!;
  let finalName = name;
  if (!toCreate.length && childNamed(m, cur.mid, name)) {
    if (conflict === 'ask') return { t: 'error', desc, codes: [SN], call };
    finalName = freeName(m, cur.mid, name, root.kind === 'dir');
  }
  // cascaded links: their parents must exist (possibly created for the item); conflicts rename
  const linkPlans: Array<{ l: MNode; parentPath: string; name: string }> = [];
  const createdPaths = new Set<string>();
  {
    let p = segs.slice(0, segs.length - 1 - toCreate.length).join('/');
    for (const s of toCreate) createdPaths.add((p = joinPath(p, s)));
  }
  const itemPath = joinPath(segs.slice(0, -1).join('/'), finalName);
  const usedIn = new Map<string, Set<string>>();
  for (const { mid, originalPath } of item.links) {
    const pp = parentOf(originalPath);
    const ln = originalPath.slice(pp === '' ? 0 : pp.length + 1);
    const parent = lookup(m, pp);
    if (createdPaths.has(pp)) {
      linkPlans.push({ l: node(m, mid), parentPath: pp, name: ln });
      continue;
    }
    if (parent === undefined || parent === 'blocked' || parent.kind !== 'dir')
      return { t: 'skip', why: 'a cascaded link whose parent is gone (SPEC silent)' };
    const used = usedIn.get(pp) ?? new Set<string>();
    if (pp === parentOf(itemPath)) used.add(finalName);
    let nm = ln;
    if (childNamed(m, parent.mid, ln) || used.has(ln)) {
      if (item.links.filter((x) => parentOf(x.originalPath) === pp).length > 1)
        return { t: 'skip', why: 'several cascaded links renamed in one dir (order unspecified)' };
      nm = freeName(m, parent.mid, ln, false, used);
    }
    used.add(nm);
    usedIn.set(pp, used);
    linkPlans.push({ l: node(m, mid), parentPath: pp, name: nm });
  }
  return {
    t: 'ok',
    desc,
    call,
    after: (res) => {
      const p = checkPlaced(res, itemPath, root.kind, desc);
      expectEq(p.info.id, root.sid, `${desc}: identity survives the bin`);
      let parent = cur;
      for (const s of toCreate) parent = addNode(m, { sid: undefined, kind: 'dir', parent: parent.mid, name: s });
      root.parent = parent.mid;
      root.name = finalName;
      m.items.splice(m.items.indexOf(item), 1);
      for (const lp of linkPlans) {
        const par = lookup(m, lp.parentPath);
        if (typeof par !== 'object') throw new Error(`model: restore link parent ${lp.parentPath} missing`);
        lp.l.parent = par.mid;
        lp.l.name = lp.name;
        delete lp.l.cascadedIn;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// comparison

/**
 * `space.stat(p, { follow: false })` remembered for one compare(): compare runs in one snapshot
 * (or inside a transaction nothing else writes to), so asking the same path again would get the
 * same answer; a live bound link's lstat was read twice (checkNode, then the invariants below),
 * ~8% of pg-store-model's time.
 */
type Lstat = (p: string) => NodeInfo;
function lstatOnce(space: Space): Lstat {
  const seen = new Map<string, NodeInfo>();
  return (p) => {
    let info = seen.get(p);
    if (!info) seen.set(p, (info = space.stat(p, { follow: false })));
    return info;
  };
}

function compareTree(space: Space, m: Model, storeRoot: string, modelRoot: number, prefix: string, lstat: Lstat) {
  const entries = new Map<string, NodeInfo>();
  const rec = (p: string) => {
    for (const e of space.readdir(p)) {
      if (p === '' && e.name === '.trash') continue;
      const cp = joinPath(p, e.name);
      entries.set(cp, e.info);
      if (e.info.kind === 'dir') rec(cp);
    }
  };
  if (lstat(storeRoot).kind === 'dir') rec(storeRoot);
  const want = new Map<string, MNode>();
  const mrec = (mid: number, p: string) => {
    for (const c of childrenOf(m, mid)) {
      const cp = joinPath(p, c.name);
      want.set(cp, c);
      if (c.kind === 'dir') mrec(c.mid, cp);
    }
  };
  mrec(modelRoot, storeRoot);
  const a = [...entries.keys()].sort();
  const b = [...want.keys()].sort();
  expectEq(a, b, `${prefix} paths`);
  for (const [p, mn] of want) checkNode(m, p, entries.get(p)!, mn, lstat);
}

function checkNode(m: Model, p: string, info: NodeInfo, mn: MNode, lstat: Lstat) {
  expectEq(info.kind, mn.kind, `${p}: kind`);
  if (mn.sid === undefined) {
    mn.sid = info.id; // a directory recreated by restore (T4)
    m.purged.delete(mn.sid);
  }
  expectEq(info.id, mn.sid, `${p}: identity`);
  if (mn.kind === 'file') {
    expectEq(info.blob, sha256(mn.content!), `${p}: content`);
    expectEq(info.size, Buffer.byteLength(mn.content!), `${p}: size`);
  } else if (mn.kind === 'link') {
    const li = lstat(p).link;
    expectEq(li?.flavour, mn.flavour, `${p}: link flavour`);
    if (mn.flavour === 'bound') {
      const tgt = m.nodes.get(mn.target!);
      if (!tgt) {
        // a doomed link item the store kept (L16): it must not reference the purged node
        if (li?.targetNode != null && m.purged.has(li.targetNode))
          throw new Mismatch(`${p}: bound link references purged node ${li.targetNode}`);
        return;
      }
      expectEq(li?.targetNode, tgt.sid, `${p}: bound target identity`);
      expectEq(li?.targetPath, pathOf(m, tgt.mid), `${p}: bound target path`);
    } else {
      expectEq(li?.stored, mn.stored, `${p}: path link string`);
    }
  }
}

function compare(space: Space, m: Model) {
  const lstat = lstatOnce(space);
  // doomed link items: the store may have dropped them with their target (lenient, L13 vs L16)
  const storeItems = space.trashList();
  const storeIds = new Set(storeItems.map((i) => i.id));
  for (const it of [...m.items]) {
    if (it.doomed && !storeIds.has(it.id)) {
      m.items.splice(m.items.indexOf(it), 1);
      detach(m, it.root);
    }
  }
  // live tree
  const rootInfo = lstat('');
  expectEq(rootInfo.id, node(m, 0).sid, 'root identity');
  compareTree(space, m, '', 0, 'live', lstat);
  // the bin
  expectEq(
    storeItems.map((i) => i.id).sort((a, b) => a - b),
    m.items.map((i) => i.id).sort((a, b) => a - b),
    'recycle item ids',
  );
  for (const si of storeItems) {
    const mi = m.items.find((i) => i.id === si.id)!;
    expectEq([si.kind, si.name, si.originalPath], [mi.kind, mi.name, mi.originalPath], `item ${si.id}`);
    if (!si.viewName.includes(String(si.id)) || !si.viewName.includes(mi.name)) throw new Mismatch(`item ${si.id}: view name ${si.viewName} (T3)`);
    mi.viewName = si.viewName;
    const links = (l: Array<{ id: number | undefined; p: string }>) => l.map((x) => `${x.id}@${x.p}`).sort();
    expectEq(
      links(si.links.map((l) => ({ id: l.nodeId, p: l.originalPath }))),
      links(mi.links.map((l) => ({ id: node(m, l.mid).sid, p: l.originalPath }))),
      `item ${si.id}: cascaded links (T2)`,
    );
  }
  for (const mi of m.items) {
    const vp = `.trash/${mi.viewName}`;
    checkNode(m, vp, lstat(vp), node(m, mi.root), lstat);
    if (mi.kind === 'dir') compareTree(space, m, vp, mi.root, `bin ${mi.id}`, lstat);
    for (const l of mi.links) {
      const ln = node(m, l.mid);
      const info = space.statNode(ln.sid!);
      // (inTrash of cascaded links is pinned by the L12 rules test)
      expectEq([info.kind, info.link?.targetNode], ['link', node(m, ln.target!).sid], `cascaded link ${ln.sid}`);
    }
  }
  // invariants on every bound link in the model's view of the store
  for (const n of m.nodes.values()) {
    if (n.kind !== 'link' || n.flavour !== 'bound') continue;
    const tgt = m.nodes.get(n.target!);
    if (!tgt) continue; // doomed item, checked in checkNode
    if (m.purged.has(tgt.sid!)) throw new Mismatch(`bound link ${n.sid} references purged node ${tgt.sid}`);
    const loc = locate(m, n.mid);
    if (loc.at !== 'live') continue;
    const lp = pathOf(m, n.mid)!;
    const info = lstat(lp);
    const ti = space.statNode(info.link!.targetNode!);
    expectEq(ti.kind, 'file', `${lp}: target is a file`);
    const tloc = locate(m, tgt.mid);
    if (tloc.at === 'cascaded' || (tloc.at === 'trash' && tloc.isRoot)) throw new Mismatch(`model: live link ${lp} bound to a trashed file item`);
    expectEq(ti.inTrash, tloc.at === 'trash', `${lp}: target inTrash (L14)`);
    expectEq(space.stat(lp, { follow: true }).id, ti.id, `${lp}: following`);
    const rl = space.readlink(lp);
    expectEq(resolveFrom(parentOf(lp), rl), ti.path, `${lp}: readlink ${rl} leads to the target (L4/L14)`);
    expectEq(info.size, Buffer.byteLength(rl), `${lp}: lstat size (L4)`);
  }
}

/** The model as a string: equal strings, equal models. */
function modelKey(m: Model): string {
  return JSON.stringify([[...m.nodes], m.items, [...m.purged], m.next]);
}

function describeBin(m: Model): string {
  return m.items
    .map((i) => {
      const r = m.nodes.get(i.root);
      const links = i.links.map((l) => `${l.originalPath}#${m.nodes.get(l.mid)?.sid}`).join(', ');
      return `item ${i.id} ${i.kind} ${i.originalPath} #${r?.sid}${i.doomed ? ' doomed' : ''}${links ? ` links: ${links}` : ''}`;
    })
    .join('\n');
}

function checkPurged(space: Space, sids: number[]) {
  for (const sid of sids) {
    let gone = false;
    try {
      space.statNode(sid);
    } catch (e) {
      gone = isSmhError(e);
    }
    if (!gone) throw new Mismatch(`purged node ${sid} still exists`);
  }
}

/** Every item: restore it (rolled back, or on a reopened copy of the database at the end of a run), compare with the model's prediction. */
async function checkRestorable(lib: Library, dir: string, m: Model, final: boolean) {
  for (const item of [...m.items]) {
    const clone = structuredClone(m);
    const ci = clone.items.find((i) => i.id === item.id)!;
    const p = planRestore(clone, ci, undefined);
    if (p.t === 'skip') continue;
    if (lib.engineKind === 'postgres' || !final) {
      // The restore runs in one transaction on the library itself, compared, then rolled back
      // (restore and the checks are synchronous; the rule's own transaction joins the outer one).
      // A copy costs a CREATE DATABASE on PostgreSQL, and on SQLite a file copy, an open and a
      // close per item (40% of this test's CPU): SQLite restores from a reopened copy only at the
      // end of each run, so a restore that depended on state not in the database would still show.
      const rollback = new Error('rollback');
      try {
        lib.transaction(() => {
          runPlanSync({ lib, space: lib.space('-') }, clone, p, `(rolled back) ${p.desc}`);
          compare(lib.space('-'), clone);
          throw rollback;
        });
      } catch (e) {
        if (e instanceof Mismatch) throw new Mismatch(`restorability of item ${item.id}: ${e.message}`);
        if (e !== rollback) throw e;
      }
      continue;
    }
    const copyDir = memoryTempDir('smhfs-model-copy-');
    let copy: Library | undefined;
    try {
      copy = copyStoreLib(lib, dir, copyDir, { blobStore: new MemoryBlobStore() });
      await runPlan({ lib: copy, space: copy.space('-') }, clone, p, `(copy) ${p.desc}`);
      compare(copy.space('-'), clone);
    } catch (e) {
      if (e instanceof Mismatch) throw new Mismatch(`restorability of item ${item.id}: ${e.message}`);
      throw e;
    } finally {
      if (copy) closeStoreLib(copy);
      rmSync(copyDir, { recursive: true, force: true });
    }
  }
}

/**
 * Whether the call's outcome is what the plan expects: a refusal with one of its codes (true: the
 * plan is done), or success (false: its check runs next). Throws a Mismatch otherwise.
 */
function refusedAsPlanned(p: Exclude<Plan, { t: 'skip' }>, desc: string, threw: boolean, err: unknown): boolean {
  if (p.t === 'error') {
    if (!threw) throw new Mismatch(`${desc}: expected ${p.codes.join('|')}, but it succeeded`);
    if (!isSmhError(err) || !p.codes.includes(err.code))
      throw new Mismatch(`${desc}: expected ${p.codes.join('|')}, got ${isSmhError(err) ? err.code : String(err)}: ${(err as Error)?.message}`);
    return true;
  }
  if (threw) throw new Mismatch(`${desc}: unexpected error ${isSmhError(err) ? err.code : ''} ${(err as Error)?.message ?? String(err)}`);
  return false;
}

/** `runPlan` for a plan whose call and check are synchronous (restore), inside a transaction. */
function runPlanSync(env: Env, m: Model, p: Plan, desc: string): void {
  if (p.t === 'skip') return;
  let res: unknown;
  let err: unknown;
  let threw = false;
  try {
    res = p.call(env);
  } catch (e) {
    threw = true;
    err = e;
  }
  if (res instanceof Promise) throw new Error(`${desc}: the plan is not synchronous`);
  if (refusedAsPlanned(p, desc, threw, err) || p.t !== 'ok') return;
  if (p.after(res, env) instanceof Promise) throw new Error(`${desc}: the check is not synchronous`);
}

async function runPlan(env: Env, m: Model, p: Plan, desc: string) {
  if (p.t === 'skip') return;
  let res: unknown;
  let err: unknown;
  let threw = false;
  try {
    res = await p.call(env);
  } catch (e) {
    threw = true;
    err = e;
  }
  if (refusedAsPlanned(p, desc, threw, err) || p.t !== 'ok') return;
  await p.after(res, env);
}

// ---------------------------------------------------------------------------------------------

t.test('model: random operation sequences agree with the reference model', async (t) => {
  let runs = 0;
  let steps = 0;
  let skipped = 0;
  let unchangedRefusals = 0;
  const skipReasons = new Map<string, number>();
  const opCounts = new Map<string, number>();
  let firstFailure: string | undefined;
  const started = Date.now();

  const prop = fc.asyncProperty(fc.array(opArb, { minLength: STEPS, maxLength: STEPS }), async (ops) => {
    runs++;
    const dir = memoryTempDir('smhfs-model-');
    const lib = openStoreLib(dir, { blobStore: new MemoryBlobStore() });
    const log: string[] = [];
    try {
      const space = lib.space('-');
      const env = { lib, space };
      const m = newModel(space.stat('', {}).id);
      // Whether the rows and the model are as the last full compare() saw them (see below).
      let asCompared = false;
      // The rows' digest taken at the end of the step before (undefined: none taken, or the step
      // was not the one just before): between that and this step's start the test only reads (a
      // skipped plan touches the model alone, checkPurged reads, nothing is awaited), so it is
      // this step's `before` too, as if taken again. Saves a digest per refusal that follows one.
      let rowsNow: string | undefined;
      for (let i = 0; i < ops.length; i++) {
        const p = plan(m, ops[i]!);
        if (p.t === 'skip') {
          skipped++;
          skipReasons.set(p.why, (skipReasons.get(p.why) ?? 0) + 1);
          continue;
        }
        steps++;
        opCounts.set(ops[i]!.op + (p.t === 'error' ? ' (refused)' : ''), (opCounts.get(ops[i]!.op + (p.t === 'error' ? ' (refused)' : '')) ?? 0) + 1);
        log.push(`${i}: ${p.desc}${p.t === 'error' ? ` => ${p.codes.join('|')}` : ''}`);
        const purgedBefore = new Set(m.purged);
        try {
          // A refused step (27% of them) must leave the store as it was. On PostgreSQL, when its
          // rows (one digest) and the model are unchanged since the last full compare(), that
          // compare's reads would answer the same again: it is not repeated. A refusal that
          // changed any row is compared in full. (SQLite: no digest, every step compared.)
          const before = p.t === 'error' && asCompared ? { rows: rowsNow ?? rowsDigest(lib), model: modelKey(m) } : undefined;
          rowsNow = undefined;
          await runPlan(env, m, p, `step ${i} ${p.desc}`);
          if (before?.rows !== undefined) rowsNow = rowsDigest(lib);
          if (before?.rows === undefined || before.rows !== rowsNow || before.model !== modelKey(m)) {
            // One snapshot for the whole comparison (PostgreSQL: ~half the round trips).
            inOneSnapshot(lib, () => compare(space, m));
            asCompared = true;
          } else unchangedRefusals++;
          checkPurged(space, [...m.purged].filter((s) => !purgedBefore.has(s)));
          if ((i + 1) % RESTORE_CHECK_EVERY === 0 || i === ops.length - 1) {
            asCompared = false; // the collection below may change rows compare() never saw
            rowsNow = undefined;
            await checkRestorable(lib, dir, m, i === ops.length - 1);
            // T6: collection never removes a referenced blob; contents read back
            await lib.collectGarbage();
            for (const n of m.nodes.values()) {
              if (n.kind !== 'file') continue;
              const key = sha256(n.content!);
              if (!(await lib.blobs.head(key))) throw new Mismatch(`blob ${key} of node ${n.sid} collected while referenced (T6)`);
              const bytes = await readerOf(lib).readBlob(key, 0, Buffer.byteLength(n.content!));
              if (bytes.toString() !== n.content) throw new Mismatch(`content of node ${n.sid} reads back wrong`);
            }
          }
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          if (process.env.SMHFS_MODEL_LOG && !firstFailure) writeFileSync(process.env.SMHFS_MODEL_LOG, log.join('\n') + '\n');
          firstFailure ??= `run ${runs}, step ${i}: ${msg}\n${e instanceof Mismatch ? '' : (e as Error).stack ?? ''}\n--- last operations ---\n${log.slice(-25).join('\n')}\n--- model bin ---\n${describeBin(m)}`;
          throw new Error(`${msg}\n--- last operations ---\n${log.slice(-25).join('\n')}`, { cause: e });
        }
      }
    } finally {
      closeStoreLib(lib);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  try {
    await fc.assert(prop, { numRuns: RUNS, seed: SEED, endOnFailure: process.env.SMHFS_MODEL_SHRINK !== '1' });
    t.pass(`${runs} runs × ${STEPS} operations agree with the model`);
  } catch (e) {
    const [head, ...rest] = (firstFailure ?? (e as Error).message.slice(0, 6000)).split('\n');
    t.fail(head!, { details: rest });
  }
  t.comment(`seed ${SEED}; ${steps} operations applied, ${skipped} skipped; ${Date.now() - started} ms`);
  if (unchangedRefusals) t.comment(`${unchangedRefusals} refusals left every row and the model as last compared (not compared again)`);
  t.comment(`ops: ${[...opCounts].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  t.comment(`skipped: ${[...skipReasons].map(([k, v]) => `${k} ×${v}`).join('; ')}`);
});
