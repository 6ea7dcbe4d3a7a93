/**
 * The scale bench's store part (`node scale-store.js DIR`): how long the rules that must stay one
 * transaction hold the serving thread at their largest, and how long one bounded step of the
 * rules that do not (bin empty, retention) takes. In-process on the store, no mount; prints JSON
 * `{ "<what>": milliseconds }`, each the fastest of 3 tries.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Library } from '../src/store/library.js';
import { MAX_BOUND_LINKS } from '../src/store/space.js';

const base = process.argv[2]!;
const out: Record<string, number> = {};
const ms = (fn: () => unknown): number => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};
const best = (key: string, tries: number[]): void => {
  out[key] = Math.min(...tries);
};

let k = 0;
function fresh(): { lib: Library; dir: string } {
  const dir = join(base, `store-${k++}`);
  return { lib: Library.open(dir, { create: true }), dir };
}

// L12/T4/L13: a file with N bound links of one name, each in its own directory (at most
// MAX_BOUND_LINKS: the store refuses more, and this bench stopped there on 16,000).
for (const n of [2000, MAX_BOUND_LINKS]) {
  const { lib, dir } = fresh();
  const s = lib.space('-');
  lib.transaction(() => {
    s.createFile('photo.jpg');
    for (let i = 0; i < n; i++) {
      s.mkdir(`c${i}`);
      s.symlink(`c${i}/cover`, '../photo.jpg');
    }
  });
  const rm: number[] = [];
  const restore: number[] = [];
  for (let i = 0; i < 3; i++) {
    let id = 0;
    rm.push(ms(() => (id = s.unlink('photo.jpg').recycledItemId!)));
    restore.push(ms(() => s.restore(id)));
  }
  best(`unlink: file with ${n} same-named links`, rm);
  best(`restore: file with ${n} links`, restore);
  const id = s.unlink('photo.jpg').recycledItemId!;
  best(`purge: file with ${n} links`, [ms(() => s.purge(id))]);
  lib.close();
  rmSync(dir, { recursive: true, force: true });
}

// A directory of N files: copy (L8), to the bin (its size is summed), permanent delete (a task
// is queued; its total is counted now).
for (const n of [10_000, 100_000]) {
  const { lib, dir } = fresh();
  const s = lib.space('-');
  lib.transaction(() => {
    s.mkdir('d');
    for (let i = 0; i < n; i++) s.createFile(`d/f${i}`);
  });
  best(`copy: directory of ${n} files`, [ms(() => s.copy('d', 'e'))]);
  const tries: number[] = [];
  for (let i = 0; i < 3; i++) {
    let id = 0;
    tries.push(ms(() => (id = s.remove('e', { recursive: true }).recycledItemId!)));
    s.restore(id);
  }
  best(`rm to the bin: directory of ${n} files`, tries);
  best(`rm --permanent: directory of ${n} files (task queued)`, [ms(() => s.remove('e', { permanent: true, recursive: true }))]);
  best(`statfs at ${2 * n} nodes`, [0, 1, 2].map(() => ms(() => s.statfs())));
  lib.close();
  rmSync(dir, { recursive: true, force: true });
}

// One step of emptying a bin of 30,000 items (a step stops at 1,000 nodes).
{
  const { lib, dir } = fresh();
  const s = lib.space('-');
  lib.transaction(() => {
    for (let i = 0; i < 30_000; i++) {
      s.createFile(`f${i}`);
      s.unlink(`f${i}`);
    }
  });
  best('trash list: a page of 1000 of 30000 items', [0, 1, 2].map(() => ms(() => s.trashList({ limit: 1000, after: 20_000 }))));
  const steps: number[] = [];
  const run = lib.transaction.bind(lib);
  // time each transaction the empty runs
  (lib as { transaction: unknown }).transaction = (fn: () => unknown, o?: { durable?: boolean }) => {
    const t0 = performance.now();
    try {
      return run(fn, o);
    } finally {
      steps.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await s.emptyTrash();
  out['empty a bin of 30000 items: whole'] = performance.now() - t0;
  out['empty a bin of 30000 items: longest step'] = Math.max(...steps);
  out['empty a bin of 30000 items: steps'] = steps.length;
  lib.close();
  rmSync(dir, { recursive: true, force: true });
}

process.stdout.write(JSON.stringify(out));
