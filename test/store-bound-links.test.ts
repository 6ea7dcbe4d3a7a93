/**
 * The per-target count of bound links (schema 10, `bound_links`; issue 11): symlink(2) and SMH's
 * create-link check it against MAX_BOUND_LINKS instead of counting every link bound to the
 * target. Triggers on `nodes` keep it, so it must equal the count(*) it replaces after any mix of
 * the operations that bind, unbind, cascade, restore, purge or retarget a link — checked here
 * after every step of seeded random sequences. Then: the limit is enforced from the counter
 * (EMLINK at MAX_BOUND_LINKS + 1, the count named in the message), and fsck finds a counter that
 * is off (too high, too low, a row for a file with no links, a missing row) and --repair counts
 * them again. Runs on PostgreSQL too (test/pg-store-bound-links.test.ts).
 *
 * Environment: SMHFS_BOUND_SEED, SMHFS_BOUND_RUNS, SMHFS_BOUND_STEPS.
 */
import t from 'tap';
import { isSmhError } from '../src/errors.js';
import type { Library, Space } from '../src/store/library.js';
import { MAX_BOUND_LINKS } from '../src/store/space.js';
import { checkLibrary } from '../src/store/fsck.js';
import { openLib, put } from './helpers/store.js';
import { closeStoreLib, copyStoreLib, sqlRun } from './helpers/store-engines.js';
import { tempDir } from './helpers/store.js';
import { DS, putDirStat } from '../src/store/types.js';
import { rmSync } from 'node:fs';

const SEED = Number(process.env.SMHFS_BOUND_SEED ?? 20261201);
const RUNS = Number(process.env.SMHFS_BOUND_RUNS ?? 6);
const STEPS = Number(process.env.SMHFS_BOUND_STEPS ?? 150);

/** Every row of a query, whatever the engine (no parameters). */
function rows<R>(lib: Library, sql: string): R[] {
  if (lib.engineKind === 'sqlite') return lib.db.prepare(sql).all() as R[];
  return lib.postgres!.conn.query(sql) as R[];
}

/** The counter as recorded, and the links counted, per target: `target:n`, zero rows left out. */
function counters(lib: Library): { recorded: string[]; counted: string[] } {
  const fmt = (r: Array<{ target: number; n: number }>) => r.filter((x) => Number(x.n) !== 0).map((x) => `${x.target}:${x.n}`);
  return {
    recorded: fmt(rows(lib, 'SELECT target, n FROM bound_links ORDER BY target')),
    counted: fmt(
      rows(lib, "SELECT link_node AS target, count(*) AS n FROM nodes WHERE link_flavour = 'bound' AND link_node IS NOT NULL GROUP BY link_node ORDER BY link_node"),
    ),
  };
}

/** mulberry32: a small seeded generator, so a failing run can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const FILES = ['f0', 'f1', 'f2', 'd/f3', 'd/f4'];
const LINKS = ['l0', 'l1', 'l2', 'd/l3', 'd/l4', 'd/e/l5', 'd/e/l6', 'l7'];

/** One random operation that may change which links are bound to what; errors the rules give are fine. */
async function step(lib: Library, space: Space, r: () => number, drawn: { kind: number }): Promise<string> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const f = pick(FILES);
  const l = pick(LINKS);
  const k = Math.floor(r() * 13);
  drawn.kind = k;
  const items = () => space.trashList().map((i) => i.id);
  const rel = (from: string, to: string) => {
    const up = from.split('/').length - 1;
    return '../'.repeat(up) + to;
  };
  switch (k) {
    case 0:
      await put(lib, space, f, `content ${r()}`, { conflict: 'overwrite' });
      return `put ${f}`;
    case 1:
      space.createLink(l, f, { conflict: 'overwrite' });
      return `createLink ${l} -> ${f}`;
    case 2:
      space.symlink(l, rel(l, f));
      return `symlink ${l} -> ${f}`;
    case 3:
      space.remove(pick([f, l]), { permanent: r() < 0.3 });
      return `remove`;
    case 4:
      space.unlink(l);
      return `unlink ${l}`;
    case 5: {
      const it = items();
      if (it.length === 0) return 'restore: empty bin';
      space.restore(pick(it), { conflict: pick(['overwrite', 'rename', 'ask'] as const) });
      return 'restore';
    }
    case 6: {
      const it = items();
      if (it.length === 0) return 'purge: empty bin';
      space.purge(pick(it));
      return 'purge';
    }
    case 7: {
      // L10: a file moved over another; the links bound to the one replaced follow (or go)
      const g = pick(FILES);
      space.move(f, g, { conflict: 'overwrite' });
      return `move ${f} over ${g}`;
    }
    case 8:
      space.copy(l, pick(LINKS), { conflict: 'overwrite' });
      return `copy link ${l}`;
    case 9:
      space.putSymlink(l, f);
      return `putSymlink ${l}`;
    case 10:
      space.link(l, pick(LINKS));
      return `hard link of ${l}`;
    case 11: {
      // a directory holding links goes to the bin, comes back, or moves
      const d = pick(['d', 'd/e']);
      if (r() < 0.5) space.remove(d, { permanent: r() < 0.2 });
      else space.move(d, d === 'd' ? 'z' : 'd/z', { conflict: 'overwrite' });
      return `directory ${d}`;
    }
    default:
      space.mkdir('d/e', { parents: true, conflict: 'ask' });
      if (r() < 0.3) await space.emptyTrash();
      return 'mkdir / empty bin';
  }
}

/** The kinds of step that succeeded in some run. */
const succeeded = new Set<number>();

for (let run = 0; run < RUNS; run++) {
  t.test(`the counter equals the links bound to each file after every step (seed ${SEED + run})`, async (t) => {
    const { lib, space } = openLib(t);
    space.mkdir('d/e', { parents: true });
    for (const f of FILES) await put(lib, space, f, f);
    const r = rng(SEED + run);
    const off: string[] = [];
    const done: string[] = [];
    let ok = 0;
    for (let i = 0; i < STEPS; i++) {
      let what: string;
      try {
        const k = { kind: -1 };
        what = await step(lib, space, r, k);
        succeeded.add(k.kind);
        ok++;
      } catch (e) {
        if (!isSmhError(e)) throw e;
        what = `refused: ${e.code}`;
      }
      done.push(what);
      const c = counters(lib);
      if (c.recorded.join(' ') !== c.counted.join(' ')) off.push(`after step ${i} (${what}): recorded ${c.recorded.join(' ')} counted ${c.counted.join(' ')}`);
    }
    t.same(off.slice(0, 3), [], `no step left the counter off (${off.length} of ${STEPS})`);
    const end = counters(lib);
    t.ok(end.counted.length > 0 || done.some((d) => d.startsWith('createLink') || d.startsWith('symlink')), 'the run bound links');
    t.ok(ok > STEPS / 4, `most steps did something (${ok} of ${STEPS})`);
  });
}

t.test('the sequences reached every kind of step', async (t) => {
  // the runs above are only worth their steps: each operation must have succeeded somewhere
  t.same([...Array(13).keys()].filter((k) => !succeeded.has(k)), [], 'all 13 operations succeeded at least once');
});

t.test('the limit is enforced from the counter: the file at MAX_BOUND_LINKS takes no more', async (t) => {
  const { lib, space } = openLib(t);
  await put(lib, space, 'p.jpg', 'photo');
  space.symlink('first', 'p.jpg');
  const id = space.stat('p.jpg').id;
  t.same(counters(lib).recorded, [`${id}:1`], 'one link counted');
  // as if MAX_BOUND_LINKS - 1 links were bound (making them for real is test/http-security-limits)
  sqlRun(lib, 'UPDATE bound_links SET n = ? WHERE target = ?', MAX_BOUND_LINKS - 1, id);
  space.symlink('last', 'p.jpg');
  t.same(counters(lib).recorded, [`${id}:${MAX_BOUND_LINKS}`], 'the last allowed link counted');
  t.throws(() => space.symlink('over', 'p.jpg'), { code: 'LinkLimitExceeded', message: new RegExp(`has ${MAX_BOUND_LINKS} bound links`) }, 'symlink(2): EMLINK');
  t.throws(() => space.createLink('over2', 'p.jpg'), { code: 'LinkLimitExceeded' }, 'SMH create-link: refused likewise');
  t.throws(() => space.stat('over'), { code: 'FileNotFound' }, 'nothing was made');
  space.unlink('last');
  t.same(counters(lib).recorded, [`${id}:${MAX_BOUND_LINKS}`], 'a link in the bin still counts (it may come back with the file)');
  space.purge(space.trashList().find((i) => i.name === 'last')!.id);
  t.same(counters(lib).recorded, [`${id}:${MAX_BOUND_LINKS - 1}`], 'purging it gives its place back');
  space.symlink('again', 'p.jpg');
  t.equal(space.stat('again').link?.flavour, 'bound', 'so one more may be bound');
});

t.test('fsck finds a wrong counter and --repair counts again', async (t) => {
  const { dir, lib, space, blobs } = openLib(t);
  await put(lib, space, 'a', 'a');
  await put(lib, space, 'b', 'b');
  await put(lib, space, 'c', 'c');
  for (let i = 0; i < 3; i++) space.symlink(`la${i}`, 'a');
  space.symlink('lb', 'b');
  space.symlink('lc', 'c');
  const [a, b, c] = ['a', 'b', 'c'].map((p) => space.stat(p).id) as [number, number, number];
  const clean = await checkLibrary(dir, { blobStore: blobs });
  t.same(clean.findings.filter((f) => f.problem), [], 'clean before');
  sqlRun(lib, 'UPDATE bound_links SET n = n + 2 WHERE target = ?', a); // too high
  sqlRun(lib, 'DELETE FROM bound_links WHERE target = ?', b); // missing
  sqlRun(lib, 'UPDATE bound_links SET n = 0 WHERE target = ?', c); // too low
  sqlRun(lib, 'INSERT INTO bound_links (target, n) VALUES (?, 4)', 999_999); // no such links
  const found = await checkLibrary(dir, { blobStore: blobs });
  const f = found.findings.find((x) => x.check === 'bound-links');
  t.equal(f?.count, 4, 'four counters are off');
  t.equal(f?.repairable, true);
  t.equal(found.exitCode, 4, 'problems left');
  t.match(f?.examples, [`node ${a}: recorded 5 bound link(s); counted 3`, `node ${b}: recorded 0 bound link(s); counted 1`, `node ${c}: recorded 0 bound link(s); counted 1`, 'node 999999: recorded 4 bound link(s); counted 0']);
  const repaired = await checkLibrary(dir, { repair: true, blobStore: blobs });
  t.equal(repaired.findings.find((x) => x.check === 'bound-links')?.repaired, 4, 'repaired');
  t.equal(repaired.exitCode, 1);
  t.same(counters(lib).recorded, [`${a}:3`, `${b}:1`, `${c}:1`], 'counted again from the links');
  const after = await checkLibrary(dir, { blobStore: blobs });
  t.equal(after.exitCode, 0, 'clean after');
});

t.test("a copy of the library (the model tests' restores) has the same counters", async (t) => {
  const { dir, lib, space } = openLib(t);
  await put(lib, space, 'a', 'a');
  for (let i = 0; i < 4; i++) space.symlink(`l${i}`, 'a');
  const copyDir = tempDir();
  t.teardown(() => rmSync(copyDir, { recursive: true, force: true }));
  const copy = copyStoreLib(lib, dir, copyDir);
  t.teardown(() => closeStoreLib(copy));
  const c = counters(copy);
  t.same(c.recorded, c.counted, 'recorded = counted in the copy');
  t.same(c.recorded, [`${space.stat('a').id}:4`]);
});

t.test('issue 15: a packed listing (readdirStats) gives a bound link the size of its readlink answer, in and out of its directory, before and after its target moves — and readdirPlus\'s numbers', async (t) => {
  const { lib, space } = openLib(t);
  space.mkdir('d');
  space.mkdir('far/away', { parents: true });
  await put(lib, space, 'd/near.txt', 'near');
  await put(lib, space, 'far/away/target.bin', 'target');
  space.createLink('d/to-near', 'd/near.txt');
  space.createLink('d/to-far', 'far/away/target.bin');
  space.createLink('far/back', 'd/near.txt');
  const sizes = (dir: string): Record<string, number> => {
    const d = space.readdirStats(space.stat(dir).id, undefined, 100);
    return Object.fromEntries(d.names.map((n, i) => [n, d.nums[i * DS.STRIDE + DS.SIZE]!]));
  };
  const check = (label: string): void => {
    for (const [dir, name] of [['d', 'to-near'], ['d', 'to-far'], ['far', 'back']] as const) {
      t.equal(sizes(dir)[name], Buffer.byteLength(space.readlink(`${dir}/${name}`)), `${label}: ${dir}/${name}`);
    }
    for (const dir of ['d', 'far', '']) {
      const id = dir ? space.stat(dir).id : space.root;
      const got = space.readdirStats(id, undefined, 100);
      const list = space.readdirPlus(id, undefined, 100);
      const want = { names: new Array<string>(list.length), nums: new Float64Array(list.length * DS.STRIDE), layouts: new Map<number, string>() };
      list.forEach((e, i) => putDirStat(want, i, e.name, e.info));
      t.same([got.names, [...got.nums]], [want.names, [...want.nums]], `${label}: ${dir || 'the root'} packed as readdirPlus`);
    }
  };
  check('as made');
  space.rename('far/away', 'far/a-much-longer-name-for-the-folder');
  space.rename('d/near.txt', 'd/n.txt');
  check('after the targets moved');
});
