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
import { ListingPolicy } from '../src/fuse/listing-policy.js';
import { DIRPLUS, DIRPLUS_NAME_ONLY, PackedDirPlus, type Created, type Ctx, type Entry } from '../src/fuse/ll/binding.js';
import { ContentReader } from '../src/vfs/reader.js';
import { openLib, put } from './helpers/store.js';
import { Library } from '../src/store/library.js';

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

  // The binding marks an answer sent once the addon has copied it (PackedDirPlus.sent): the next
  // answer is written over its numbers (no fresh ~1 MB per 1 MiB reply); one not sent never is.
  space.mkdir('same');
  lib.transaction(() => {
    for (let i = 0; i < 100; i++) space.mknod(`same/s${String(i).padStart(2, '0')}`, { mode: 0o100644 });
  });
  const listAll = async (markSent: boolean) => {
    const a = new InodeAdapter(lib, space, reader, { mountpoint: '/nowhere', show: {}, cacheBoundLinks: true });
    const ops = a.ops();
    const ino = a.inoOf(space.stat('same').id);
    const fh = ops.opendir!(ino, 0, ctx) as number;
    const replies: PackedDirPlus[] = [];
    const copies: Float64Array[] = []; // what the addon copied
    for (let offset = 0; ; ) {
      const r = (await ops.readdirplus!(ino, fh, offset, 4096, ctx)) as PackedDirPlus;
      if (r.names.length === 0) break;
      replies.push(r);
      copies.push(r.nums.slice());
      offset = r.nums[r.nums.length - 1]!;
      if (markSent) r.sent = true;
    }
    ops.releasedir!(ino, fh, 0, ctx);
    return { replies, copies };
  };
  const kept = await listAll(false);
  const lent = await listAll(true);
  t.ok(kept.replies.length > 3, `several replies of 4 KiB (${kept.replies.length})`);
  t.ok(kept.replies.every((r, i) => (i === 0 || r.nums.buffer !== kept.replies[i - 1]!.nums.buffer) && sameNumbers(r.nums, kept.copies[i]!)), 'an answer not sent is never written over');
  // (but `.`, whose atime the first listing moved: relatime)
  const noDot = (c: Float64Array, i: number) => (i === 0 ? c.subarray(DIRPLUS.STRIDE) : c);
  t.ok(lent.copies.length === kept.copies.length && lent.copies.every((c, i) => sameNumbers(noDot(c, i), noDot(kept.copies[i]!, i))), 'answers written over sent ones: the same numbers as fresh ones');
  const reused = lent.replies.filter((r, i) => i > 0 && r.nums.buffer === lent.replies[i - 1]!.nums.buffer).length;
  t.equal(reused, lent.replies.length - 1, 'each answer after the first reuses the sent one\'s numbers');
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

t.test('issue 15: the listing policy gives names only to a process that lists without stat-ing, and attributes again once it stats', async (t) => {
  // pids are their own process here, except 7001 and 7002: two threads of process 7000
  const p = new ListingPolicy({ groupOf: (pid) => (pid === 7001 || pid === 7002 ? 7000 : pid), maxProcesses: 8, firstBytes: 1000, probes: 2 });
  const D = 10;
  const E = 11;
  // a new process: a short first reply, full entries but two probes
  t.same(p.plan(100, D), { maxBytes: 1000, namesOnly: false, probes: 2 }, 'new: a short first reply with probes');
  p.probed(100, D, ['x1', 'x2']);
  t.same(p.modeOf(100), { mode: 'new', late: false });
  // it asks for its next reply without having looked a probe up: it walks (find)
  t.same(p.plan(100, D), { maxBytes: Infinity, namesOnly: true, probes: 0 }, 'no probe looked up before the next reply: names only');
  t.same(p.modeOf(100), { mode: 'names', late: false });
  p.looked(100, D, 'sub', true);
  t.equal(p.modeOf(100).mode, 'names', 'looking up a directory proves nothing (a walk enters them)');
  p.looked(100, 99, 'elsewhere.txt', false);
  t.equal(p.modeOf(100).mode, 'names', 'a lookup outside the directories it was given names in proves nothing');
  t.same(p.plan(100, E), { maxBytes: Infinity, namesOnly: true, probes: 0 }, 'still names in the next directory');
  // then it stats a name it was sent without attributes: back to full, and judged per directory from now on
  p.looked(100, D, 'x7', false);
  t.same(p.modeOf(100), { mode: 'full', late: true }, 'a lookup of a names-only entry: full entries, and it is a late stat-er');
  t.same(p.plan(100, E), { maxBytes: Infinity, namesOnly: false, probes: 1 }, 'full entries, full-size replies, a probe');
  p.probed(100, E, ['e1', 'e2']);
  t.same(p.plan(100, E), { maxBytes: Infinity, namesOnly: false, probes: 1 }, 'late: probes not yet looked up are not judged within the same directory');
  p.probed(100, E, ['e3', 'e4']);
  t.same(p.plan(100, D), { maxBytes: Infinity, namesOnly: true, probes: 0 }, 'late: judged when it starts another directory (none looked up: names)');

  // a process that stats what it lists (ls -l): a probe looked up keeps it on full entries
  t.equal(p.plan(200, D).maxBytes, 1000);
  p.probed(200, D, ['y1', 'y2']);
  p.looked(200, D, 'y0', false);
  t.equal(p.modeOf(200).mode, 'new', 'a name that was no probe proves nothing');
  p.looked(200, E, 'y2', false);
  t.equal(p.modeOf(200).mode, 'new', 'a probe name, but in another directory: nothing');
  p.looked(200, D, 'y2', false);
  t.same(p.modeOf(200), { mode: 'full', late: false }, 'a probe looked up: full');
  t.same(p.plan(200, D), { maxBytes: Infinity, namesOnly: false, probes: 1 });
  p.probed(200, D, ['y3', 'y4']);
  p.looked(200, D, 'y3', false);
  t.same(p.plan(200, E), { maxBytes: Infinity, namesOnly: false, probes: 1 }, 'each reply\'s probe looked up: stays full');
  p.probed(200, E, ['z1']);
  t.equal(p.plan(200, E).namesOnly, true, 'it stopped stat-ing mid-listing: names from its next reply');
  p.stated(200, true);
  t.equal(p.modeOf(200).mode, 'names', "a directory's getattr proves nothing");
  p.stated(200, false);
  t.same(p.modeOf(200), { mode: 'full', late: true }, "a file's getattr: it stats after all");

  // a process that lists on one thread and stats on another is one process
  p.plan(7001, D);
  p.probed(7001, D, ['w1', 'w2']);
  p.looked(7002, D, 'w1', false);
  t.equal(p.modeOf(7001).mode, 'full', "another thread's lookup of the probe counts for the process");
  // pid 0 (the kernel's own requests): always full, never remembered
  t.same(p.plan(0, D), { maxBytes: Infinity, namesOnly: false, probes: 0 }, 'pid 0: full entries, no probes');
  p.probed(0, D, ['q']);
  // bounded: the least recently seen processes are dropped
  for (let pid = 300; pid < 320; pid++) p.plan(pid, D);
  t.ok(p.size.processes <= 8 && p.size.threads <= 16, `bounded: ${JSON.stringify(p.size)}`);
  t.same(p.modeOf(100), { mode: 'new', late: false }, 'a dropped process starts over');
});

t.test('issue 15: with names only, a listing is the same, names-only entries are lookup\'s ino and type, and only full entries are references', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d/sub1/deeper', { parents: true });
  space.mkdir('d/sub2');
  space.mkdir('far');
  await put(lib, space, 'far/target.txt', 'twelve bytes', { conflict: 'ask' });
  space.createLink('d/bound', 'far/target.txt');
  space.symlink('d/path-link', '../far/target.txt');
  space.mknod('d/fifo', { mode: 0o010600 });
  space.mknod('d/.hidden', { mode: 0o100600 });
  lib.transaction(() => {
    for (let i = 0; i < 400; i++) space.mknod(`d/f${String(i).padStart(3, '0')}`, { mode: 0o100644 });
  });
  const reader = new ContentReader(lib);
  const policy = new ListingPolicy({ groupOf: (pid) => pid, firstBytes: 8192 });
  const a = new InodeAdapter(lib, space, reader, { mountpoint: '/nowhere', show: {}, cacheBoundLinks: true, namesOnly: policy });
  const ops = a.ops();
  const dIno = a.inoOf(space.stat('d').id);
  const ctxOf = (pid: number): Ctx => ({ id: 0, uid: 0, gid: 0, pid, umask: 0o022, signal: new AbortController().signal, interrupted: false });
  const want = space.readdir(space.stat('d').id).map((e) => e.name).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  const expected = new Map<number, number>();
  const plus = (ino: number): void => void expected.set(a.inoOf(ino), (expected.get(a.inoOf(ino)) ?? 0) + 1);
  const list = async (pid: number, stat: boolean) => {
    const ctx = ctxOf(pid);
    const fh = ops.opendir!(dIno, 0, ctx) as number;
    const names: string[] = [];
    const nameOnly: string[] = [];
    const sizes: number[] = [];
    let offset = 0;
    let bad = 0;
    for (;;) {
      const r = (await ops.readdirplus!(dIno, fh, offset, 1 << 20, ctx)) as PackedDirPlus;
      if (r.names.length === 0) break;
      sizes.push(r.names.reduce((n, x) => n + entryBytes(x, true), 0));
      for (let i = 0; i < r.names.length; i++) {
        const name = r.names[i]!;
        if (name === '.' || name === '..') continue;
        names.push(name);
        const got = r.nums.subarray(i * DIRPLUS.STRIDE, (i + 1) * DIRPLUS.STRIDE);
        if (r.nameOnly(i)) nameOnly.push(name);
        else plus(got[DIRPLUS.INO]!);
        if (!stat && !r.nameOnly(i)) continue;
        // the kernel has no dentry for a names-only entry: a stat of it is a lookup (from this
        // process if it stats; a find does not, so another process checks it)
        const e = (await ops.lookup!(dIno, name, stat ? ctx : ctxOf(999))) as Entry;
        plus(e.attr.ino);
        if (r.nameOnly(i)) {
          // its dirent: the ino and the file type lookup gives; no attributes, timeouts marked
          if (got[DIRPLUS.INO] !== e.attr.ino || (got[DIRPLUS.MODE]! & 0o170000) !== (e.attr.mode & 0o170000) || got[DIRPLUS.ATTR_TIMEOUT] !== DIRPLUS_NAME_ONLY) bad++;
        } else {
          const w = PackedDirPlus.of(1);
          w.put(0, name, e, got[DIRPLUS.NEXT]!);
          if (!sameNumbers(got, w.nums)) bad++;
        }
      }
      offset = r.nums[r.nums.length - 1]!;
    }
    ops.releasedir!(dIno, fh, 0, ctx);
    return { names, nameOnly, sizes, bad };
  };

  // a process that stats each entry as it reads it (ls -l): full entries but the probes, which it looks up
  const ls = await list(501, true);
  t.same(ls.names, want, 'ls -l-like: every entry once, in name order');
  t.equal(ls.bad, 0, 'each entry is lookup\'s answer; each names-only one lookup\'s ino and type');
  t.ok(ls.sizes[0]! <= 8192, `its first reply is short (${ls.sizes[0]} bytes)`);
  t.ok(ls.nameOnly.length >= 1 && ls.nameOnly.length <= 2 * ls.sizes.length, `only probes went as names (${ls.nameOnly.join(' ')})`);
  t.notOk(ls.nameOnly.some((n) => n.startsWith('.')), 'no dot name is a probe');
  t.same(policy.modeOf(501), { mode: 'full', late: false }, 'it stays on full entries');

  // a process that reads names only (find): after its short first reply, every non-directory entry is a name
  const find = await list(502, false);
  t.same(find.names, want, 'find-like: the same listing');
  t.equal(find.bad, 0);
  const fileNames = want.filter((n) => !n.startsWith('sub'));
  t.ok(find.nameOnly.length >= fileNames.length - 60, `non-directories after the first reply went as names (${find.nameOnly.length} of ${fileNames.length})`);
  t.notOk(find.nameOnly.some((n) => n.startsWith('sub')), 'directories always carry attributes');
  for (const n of ['path-link', 'fifo', 'f399']) t.ok(find.nameOnly.includes(n), `${n}: a name`);
  t.same(policy.modeOf(502), { mode: 'names', late: false }, 'it is on names only');

  // the next directory it reads: names from the first reply
  const again = await list(502, false);
  t.equal(again.nameOnly.length, fileNames.length, 'its next listing: every non-directory a name');
  t.same(again.names, want, 'the same listing again');
  t.ok(again.nameOnly.includes('bound') && again.nameOnly.includes('.hidden'), 'a bound link and a dot name too');
  // it then stats one of them: full entries again
  await ops.lookup!(dIno, 'f123', ctxOf(502));
  plus(a.inoOf(space.stat('d/f123').id));
  t.same(policy.modeOf(502), { mode: 'full', late: true }, 'a lookup of a names-only entry: full entries again');

  const wrong = [...expected].filter(([id, n]) => a.lookups(id) !== n);
  t.same(wrong.map(([id]) => [id, a.lookups(id), expected.get(id)]), [], `references: one per full entry and per lookup, none for names (${expected.size} nodes)`);
});

t.test('issue 15: a names-only page read ahead answers the next request only while nothing changed, and the listing is the same without it', async (t) => {
  const { dir, lib, space, blobs } = openLib(t);
  space.mkdir('d');
  space.mkdir('d/sub');
  lib.transaction(() => {
    for (let i = 0; i < 600; i += 2) space.mknod(`d/f${String(i).padStart(3, '0')}`, { mode: 0o100644 });
  });
  // the store's page reads, counted (the adapter reads through this space)
  let reads = 0;
  const readdirNames = space.readdirNames.bind(space);
  space.readdirNames = (id, after, limit) => {
    reads++;
    return readdirNames(id, after, limit);
  };
  const reader = new ContentReader(lib);
  const adapterOf = (readAheadBytes: number) =>
    new InodeAdapter(lib, space, reader, {
      mountpoint: '/nowhere',
      show: {},
      cacheBoundLinks: true,
      namesOnly: new ListingPolicy({ groupOf: (pid) => pid, firstBytes: 4096 }),
      readAheadBytes,
    });
  const ctx: Ctx = { id: 0, uid: 0, gid: 0, pid: 600, umask: 0o022, signal: new AbortController().signal, interrupted: false };
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const dId = space.stat('d').id;
  /** One listing of d: names and names-only flags in order, and the store reads of each reply. */
  const listing = async (readAheadBytes: number, between: (reply: number, last: string) => void | Promise<void> = () => {}) => {
    const a = adapterOf(readAheadBytes);
    const ops = a.ops();
    const dIno = a.inoOf(dId);
    const fh = ops.opendir!(dIno, 0, ctx) as number;
    const names: string[] = [];
    const flags: boolean[] = [];
    const readsOf: number[] = [];
    let offset = 0;
    for (let reply = 0; ; reply++) {
      const before = reads;
      const r = (await ops.readdirplus!(dIno, fh, offset, 1 << 20, ctx)) as PackedDirPlus;
      readsOf.push(reads - before);
      if (r.names.length === 0) break;
      for (let i = 0; i < r.names.length; i++) {
        if (r.names[i] === '.' || r.names[i] === '..') continue;
        names.push(r.names[i]!);
        flags.push(r.nameOnly(i));
      }
      offset = r.nums[r.nums.length - 1]!;
      await tick(); // the reader consumes the reply: the server reads ahead meanwhile
      await between(reply, names[names.length - 1]!);
    }
    ops.releasedir!(dIno, fh, 0, ctx);
    return { names, flags, readsOf, subRefs: a.lookups(a.inoOf(space.stat('d/sub').id)) };
  };

  // an unchanged directory: the same names, in the same order, the same entries names-only
  const off = await listing(0);
  const on = await listing(4096);
  t.same(on.names, off.names, `with read-ahead: the same listing (${on.names.length} names)`);
  t.same(on.flags, off.flags, 'the same entries go as names only');
  t.ok(on.readsOf.length > 5, `several names-only replies of 4 KiB (${on.readsOf.length})`);
  // the first reply (full entries, a new process) and the second (the first names-only one) read
  // the store; every later one was read ahead: no store read while the request waits
  t.same(on.readsOf.slice(2), on.readsOf.slice(2).map(() => 0), `later replies: no store read on the request (${on.readsOf.join(' ')})`);
  // the directory in the last reply (made ahead): one reference, counted when it was sent
  t.same([off.subRefs, on.subRefs], [1, 1], 'a directory entry made ahead is one reference, as without read-ahead');

  // changes between replies, after the next page was read ahead
  const other = Library.open(dir, { blobStore: blobs });
  t.teardown(() => other.close());
  const seen: string[] = [];
  const changed = await listing(4096, (reply, last) => {
    const n = Number(last.slice(1));
    if (reply === 2) {
      // this connection: a name after the last sent is removed, a new one lands in the next page
      space.unlink(`d/f${String(n + 2).padStart(3, '0')}`);
      space.mknod(`d/f${String(n + 3).padStart(3, '0')}`, { mode: 0o100644 });
      seen.push(`f${String(n + 3).padStart(3, '0')}`);
    }
    if (reply === 4) {
      // another connection (another process on the library)
      other.space('-').mknod(`d/f${String(n + 1).padStart(3, '0')}`, { mode: 0o100644 });
      seen.push(`f${String(n + 1).padStart(3, '0')}`);
    }
    if (reply === 6) {
      // an attribute only (no name changes): the prepared page is dropped all the same
      space.setattr(space.stat(`d/f${String(n + 2).padStart(3, '0')}`).id, { mode: 0o600 });
    }
  });
  const want = space.readdir(dId).map((e) => e.name).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  t.same(changed.names, want, 'the listing shows every change made before the reply it concerns');
  for (const n of seen) t.ok(changed.names.includes(n), `${n}, created after its page was read ahead, is listed`);
  t.equal(changed.readsOf[3], 1, 'after a change by this connection: the page is read again');
  t.equal(changed.readsOf[5], 1, 'after a change by another connection: read again');
  t.equal(changed.readsOf[7], 1, 'after an attribute change: read again');
  t.same([changed.readsOf[4], changed.readsOf[6], changed.readsOf[8]], [0, 0, 0], 'and read ahead again after each');
  t.equal(changed.subRefs, 1, 'replies made ahead and dropped counted no reference');

  // a request that does not resume where the prepared page starts (a seek back) reads for itself
  const a = adapterOf(4096);
  const ops = a.ops();
  const dIno = a.inoOf(dId);
  const fh = ops.opendir!(dIno, 0, ctx) as number;
  const r0 = (await ops.readdirplus!(dIno, fh, 0, 1 << 20, ctx)) as PackedDirPlus;
  const r1 = (await ops.readdirplus!(dIno, fh, r0.nums[r0.nums.length - 1]!, 1 << 20, ctx)) as PackedDirPlus;
  await tick();
  const before = reads;
  const again = (await ops.readdirplus!(dIno, fh, r0.nums[r0.nums.length - 1]!, 1 << 20, ctx)) as PackedDirPlus;
  t.equal(reads - before, 1, 'an offset other than the prepared one: a store read');
  t.same(again.names, r1.names, 'and the same page as the first time');
  ops.releasedir!(dIno, fh, 0, ctx);

  // a reply made ahead that holds a directory, dropped (a change came first): its reference is
  // not counted; the reply made on the request counts it once
  space.mkdir('e');
  lib.transaction(() => {
    for (let i = 0; i < 60; i++) space.mknod(`e/f${String(i).padStart(2, '0')}`, { mode: 0o100644 });
  });
  space.mkdir('e/zsub');
  const eIno = a.inoOf(space.stat('e').id);
  const zIno = a.inoOf(space.stat('e/zsub').id);
  const fe = ops.opendir!(eIno, 0, ctx) as number;
  let eOff = 0;
  let sawZ = 0;
  let late = false;
  for (let reply = 0; reply < 100; reply++) {
    const r = (await ops.readdirplus!(eIno, fe, eOff, 1 << 20, ctx)) as PackedDirPlus;
    if (r.names.length === 0) break;
    if (r.names.includes('zsub')) sawZ++;
    eOff = r.nums[r.nums.length - 1]!;
    await tick();
    if (!late && sawZ === 0 && r.names[r.names.length - 1]! >= 'f40') {
      // the next page (holding zsub) was made ahead meanwhile: a change drops it
      space.mknod('e/g-late', { mode: 0o100644 });
      late = true;
    }
  }
  ops.releasedir!(eIno, fe, 0, ctx);
  t.ok(late && sawZ === 1, 'the directory was listed once, after a change that dropped its reply made ahead');
  t.equal(a.lookups(zIno), 1, 'a dropped reply made ahead counted no reference: one, from the reply sent');
});
