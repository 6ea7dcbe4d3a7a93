// Issue 15 (readdirplus on ll), without a mount: the directory cursor of src/fuse/dir-cursor.ts
// over a real store. A reply never holds more than its `size` bytes of entries (as libfuse
// encodes them), a listing resumes after the last name sent whatever was created or removed
// meanwhile (every name present throughout comes exactly once, in name order), and an offset
// keeps its meaning on its handle after a rewind. test/binding-ll-readdirplus drives the same
// through the kernel.
import t from 'tap';
import { DirCursor, type DirPageEntry } from '../src/fuse/dir-cursor.js';
import type { NodeInfo } from '../src/store/types.js';
import { constants } from 'node:fs';
import { InodeAdapter } from '../src/fuse/inode-adapter.js';
import { RefCounts } from '../src/fuse/ref-counts.js';
import { DIRPLUS, PackedDirPlus, type Created, type Ctx, type Entry } from '../src/fuse/ll/binding.js';
import { ContentReader } from '../src/vfs/reader.js';
import { openLib, put } from './helpers/store.js';

const exists = (space: { stat(p: string): unknown }, p: string): boolean => {
  try {
    space.stat(p);
    return true;
  } catch {
    return false;
  }
};

const entryBytes = (name: string, plus: boolean): number => ((plus ? 152 : 24) + Buffer.byteLength(name) + 7) & ~7;

t.test('issue 15: pages fit the reply, resume after the last name sent, and see each stable name once under concurrent creates and unlinks', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  const dir = space.stat('d').id;
  lib.transaction(() => {
    for (let i = 0; i < 1500; i++) space.mknod(`d/s${String(i).padStart(4, '0')}`, { mode: 0o100644 });
  });
  const hooks = {
    self: (): NodeInfo => space.statNode(dir),
    up: (): NodeInfo => space.statNode(space.root),
    listed: (): void => undefined,
  };
  let churn = 0;
  for (const plus of [true, false]) {
    for (const size of [4096, 32768]) {
      const cursor = new DirCursor();
      const got: string[] = [];
      let offset = 0;
      let replies = 0;
      for (;;) {
        const page: DirPageEntry[] = cursor.page(space, dir, offset, size, plus, hooks);
        if (page.length === 0) break;
        replies++;
        if (page.reduce((n, e) => n + entryBytes(e.name, plus), 0) > size) t.fail(`a reply over ${size} bytes`);
        got.push(...page.map((e) => e.name));
        offset = page[page.length - 1]!.next;
        // between replies, others make and remove names before, among and after the stable ones
        // (from a pool of 6 names per place: new names sorting after the cursor must run out)
        churn++;
        for (const [pre, post] of [['a', ''], ['s0', '-x'], ['t', '']] as const) {
          const made = `d/${pre}${churn % 6}${post}`;
          const gone = `d/${pre}${(churn + 3) % 6}${post}`;
          if (!exists(space, made)) space.mknod(made, { mode: 0o100644 });
          if (exists(space, gone)) space.unlink(gone);
        }
        if (replies > 1000) break;
      }
      t.same(got.slice(0, 2), ['.', '..'], `${plus ? 'readdirplus' : 'readdir'} ${size}: . and .. first`);
      const stable = got.filter((n) => /^s\d{4}$/.test(n));
      t.same(stable, Array.from({ length: 1500 }, (_, i) => `s${String(i).padStart(4, '0')}`), `${plus ? 'readdirplus' : 'readdir'} ${size}: every stable name once, in order (${replies} replies)`);
      const names = got.slice(2);
      t.same(names, [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'name order throughout');
      t.ok(replies > 1 && replies < 1000, `in several replies, and it ends (${replies})`);
      // a rewind lists again; an offset given before still resumes after its own name
      const again = cursor.page(space, dir, 0, size, plus, hooks);
      t.equal(again[0]!.name, '.', 'a rewind starts over');
      const mid = got.indexOf('s0700');
      const resumed = cursor.page(space, dir, mid + 1, size, plus, hooks);
      t.equal(resumed[0]!.name, 's0701', 'an old offset still means the name it was given for');
      t.same(cursor.page(space, dir, 1e9, size, plus, hooks), [], 'an offset never given: nothing follows');
    }
  }
});

t.test('issue 15: the adapter\'s packed readdirplus gives each entry exactly lookup\'s answer, and counts one reference per entry', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d/sub/subsub', { parents: true });
  space.mkdir('far');
  await put(lib, space, 'far/target.txt', 'twelve bytes', { conflict: 'ask' });
  await put(lib, space, 'd/plain.txt', 'hi', { conflict: 'ask' });
  space.link('d/plain.txt', 'd/second-name.txt');
  space.createLink('d/bound', 'far/target.txt');
  space.symlink('d/path-link', '../far/target.txt');
  space.mknod('d/fifo', { mode: 0o010600 });
  lib.transaction(() => {
    for (let i = 0; i < 300; i++) space.mknod(`d/n${String(i).padStart(3, '0')}-${'x'.repeat(i % 40)}`, { mode: 0o100640 });
  });
  const ctx = { id: 0, uid: 0, gid: 0, pid: 1, umask: 0o022, signal: new AbortController().signal, interrupted: false } satisfies Ctx;
  const reader = new ContentReader(lib);
  for (const [label, opts] of [
    ['plain, bound links asked each time', { mountpoint: '/nowhere', show: {}, cacheBoundLinks: false }],
    ['plain, bound links cached', { mountpoint: '/nowhere', show: {}, cacheBoundLinks: true }],
    ['-o uid=,umask= (each entry through #entry)', { mountpoint: '/nowhere', show: { uid: 4321, umask: 0o027 }, cacheBoundLinks: false }],
  ] as const) {
    const a = new InodeAdapter(lib, space, reader, opts);
    const ops = a.ops();
    const dIno = a.inoOf(space.stat('d').id);
    // an open file with staged bytes: its size is the staged one, in the listing as in lookup
    const made = (await ops.create!(dIno, `open-${label.length}.txt`, 0o100644, constants.O_WRONLY | constants.O_CREAT, ctx)) as Created;
    await ops.write!(made.attr.ino, made.fh, Buffer.from('staged bytes, not committed'), 0, 0, ctx);
    // the references this test expects the adapter to hold, by node id: create's, then one per entry listed and per lookup
    const expected = new Map<number, number>([[a.inoOf(made.attr.ino), 1]]);
    const plus = (id: number) => expected.set(id, (expected.get(id) ?? 0) + 1);
    for (const dirIno of [dIno, 1 /* the root: .trash in its place */]) {
      const fh = ops.opendir!(dirIno, 0, ctx) as number;
      let offset = 0;
      let replies = 0;
      const seen: string[] = [];
      let mismatches = 0;
      for (;;) {
        const r = (await ops.readdirplus!(dirIno, fh, offset, 4096, ctx)) as PackedDirPlus;
        t.ok(r instanceof PackedDirPlus, 'a packed reply');
        if (r.names.length === 0) break;
        replies++;
        for (let i = 0; i < r.names.length; i++) {
          const name = r.names[i]!;
          const got = r.nums.subarray(i * DIRPLUS.STRIDE, (i + 1) * DIRPLUS.STRIDE);
          if (name === '.' || name === '..') continue;
          seen.push(name);
          plus(a.inoOf(got[DIRPLUS.INO]!)); // listed
          plus(a.inoOf(got[DIRPLUS.INO]!)); // looked up below
          const want = PackedDirPlus.of(1);
          want.put(0, name, (await ops.lookup!(dirIno, name, ctx)) as Entry, got[DIRPLUS.NEXT]!);
          if (!sameNumbers(got, want.nums)) {
            mismatches++;
            if (mismatches < 4) t.same([...got], [...want.nums], `${label}: ${name} as lookup answers it`);
          }
        }
        offset = r.nums[r.nums.length - 1]!;
      }
      const all = space.readdir(dirIno === 1 ? space.root : space.stat('d').id).map((e) => e.name);
      t.same(seen, all.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))), `${label}, ${dirIno === 1 ? 'root' : 'd'}: every entry once, in name order (${replies} replies)`);
      t.equal(mismatches, 0, `${label}, ${dirIno === 1 ? 'root' : 'd'}: each entry is lookup's answer (ino, attributes, generation, timeouts)`);
      const wrong = [...expected].filter(([id, n]) => a.lookups(id) !== n);
      t.same(wrong.map(([id]) => [id, a.lookups(id)]), [], `${label}, ${dirIno === 1 ? 'root' : 'd'}: each entry listed is one kernel reference (${expected.size} nodes)`);
      ops.releasedir!(dirIno, fh, 0, ctx);
    }
    await ops.release!(made.attr.ino, made.fh, 0, ctx);
  }
});

/** Equal numbers, NaN equal to NaN (an unset timeout). */
function sameNumbers(a: Float64Array, b: Float64Array): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

t.test('issue 15: RefCounts (the adapter\'s lookup references) counts as a Map would, through growth, shrinking and deletions in probe runs', async (t) => {
  const refs = new RefCounts();
  const model = new Map<number, number>();
  let seed = 15;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let wrong = 0;
  // walks (runs of consecutive ids, as a page lists them), scattered big ids, forgets of all or some
  for (let round = 0; round < 40; round++) {
    const base = 1 + rnd(50_000);
    for (let i = 0; i < 3000; i++) {
      const id = round % 5 === 4 ? 2 ** 40 + rnd(1e6) * 7919 : base + i;
      refs.add(id);
      model.set(id, (model.get(id) ?? 0) + 1);
    }
    for (const [id, n] of [...model]) {
      if (round % 3 !== 2 && rnd(4) !== 0) continue;
      const k = round % 3 === 2 ? n : 1 + rnd(n);
      const left = refs.release(id, k);
      if (n - k > 0) model.set(id, n - k);
      else model.delete(id);
      if (left !== Math.max(0, n - k)) wrong++;
    }
    for (const [id, n] of model) if (refs.count(id) !== n || !refs.has(id)) wrong++;
    if (refs.size !== model.size) wrong++;
  }
  t.equal(wrong, 0, 'every count, release and size as the Map model has it');
  t.same(refs.ids().sort((a, b) => a - b), [...model.keys()].sort((a, b) => a - b), 'the ids held');
  t.equal(refs.count(123456789), model.get(123456789) ?? 0, 'an id never added: 0');
  t.equal(refs.release(987654321987, 3), 0, 'releasing an id not held: nothing left, nothing breaks');
  for (const id of refs.ids()) refs.release(id, refs.count(id));
  t.equal(refs.size, 0, 'all released: empty');
  t.same(refs.ids(), []);
  t.throws(() => refs.add(0), RangeError, '0 is no node id');
});
