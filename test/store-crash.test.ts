/**
 * Crash safety (B6, and "each operation in one transaction"): a child process runs a long,
 * deterministic sequence of store operations on a library with the default local blob store,
 * logging each completed operation; we SIGKILL it at a random moment, then check that the
 * library opens, passes `PRAGMA integrity_check`, and shows exactly the state after the logged
 * operations — or after one more (the operation in flight may have committed). Committed file
 * content must read back intact; resumable purge tasks finish; garbage collection keeps every
 * referenced blob, and `smhfs fsck` finds the library clean. Then the child resumes from there,
 * and is killed again, several times.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { rmSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Library } from '../src/store/library.js';
import {
  CRASH_BLOCK,
  bytesOf,
  crashModel,
  crashOpName,
  observeCrashState,
  renderCrashState,
  sha256,
  tempDir,
  walk,
} from './helpers/store.js';
import { expectFsckClean } from './helpers/fsck.js';

const CHILD = fileURLToPath(new URL('./helpers/crash-child.js', import.meta.url));
const ROUNDS = Number(process.env.SMHFS_CRASH_ROUNDS ?? 12);
const TOTAL = CRASH_BLOCK * 60;

/** xorshift for reproducible kill points (the timing itself is not reproducible). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

interface ChildRun {
  done: number[]; // indices logged as done
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Run the child from `start`; kill it with SIGKILL after `killAfter` logged ops plus `delayMs`. */
function runChild(dir: string, start: number, killAfter: number, delayMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(start), String(TOTAL - start)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const done: number[] = [];
    let buf = '';
    let stderr = '';
    let killing = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.stdout.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^done (\d+)$/.exec(line);
        if (m) done.push(Number(m[1]));
        if (!killing && done.length >= killAfter) {
          killing = true;
          const kill = () => child.kill('SIGKILL');
          if (delayMs <= 0) kill();
          else setTimeout(kill, delayMs);
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ done, signal, code, stderr }));
  });
}

t.test('B6: SIGKILL in the middle of a long sequence leaves a consistent library', async (t) => {
  const dir = tempDir('smhfs-crash-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.ok(existsSync(CHILD), `child script built at ${CHILD}`);
  {
    const lib = Library.open(dir, { create: true });
    lib.space('-').mkdir('links', {});
    lib.space('-').mkdir('moved', {});
    lib.close();
  }
  const rand = rng(Number(process.env.SMHFS_CRASH_SEED ?? 7));
  let applied = 0; // ops 0..applied-1 are in the library
  let inFlightCommitted = 0;
  let kills = 0;
  const reported = new Set<number>();

  for (let round = 0; round < ROUNDS && applied < TOTAL; round++) {
    const killAfter = 3 + Math.floor(rand() * 60);
    const delayMs = Math.floor(rand() * 8);
    const run = await runChild(dir, applied, killAfter, delayMs);
    if (run.code !== null && run.code !== 0) {
      t.fail(`child exited with code ${run.code} (not killed): ${run.stderr.slice(0, 3000)}`);
      return;
    }
    const expectSeq = run.done.every((v, i) => v === applied + i);
    t.ok(expectSeq, `round ${round}: the child logged consecutive ops from ${applied}`);
    const logged = applied + run.done.length;
    if (run.signal === 'SIGKILL') kills++;

    // 1. the raw database passes integrity_check (opening it replays the WAL)
    const db = new Database(join(dir, 'library.db'));
    const integrity = db.pragma('integrity_check', { simple: true });
    const fk = db.pragma('foreign_key_check') as unknown[];
    db.close();
    t.equal(integrity, 'ok', `round ${round}: PRAGMA integrity_check`);
    t.same(fk, [], `round ${round}: foreign_key_check`);

    // 2. the library opens; resumable tasks finish
    const lib = Library.open(dir, { create: true });
    try {
      const space = lib.space('-');
      await lib.runTasks();
      const unfinished = lib.tasks().filter((x) => x.state !== 'done' && !reported.has(x.id));
      for (const x of unfinished) reported.add(x.id);
      t.same(
        unfinished.map((x) => `${x.id} ${x.subject}: ${x.state}`),
        [],
        `round ${round}: every purge task is done after restart + runTasks (L15 resumable)`,
      );

      // 3. the state is that after `logged` ops, or after one more (the op in flight)
      const seen = observeCrashState(space);
      const a = renderCrashState(crashModel(logged));
      const b = logged < TOTAL ? renderCrashState(crashModel(logged + 1)) : a;
      const matchesA = JSON.stringify(seen) === JSON.stringify(a);
      const matchesB = JSON.stringify(seen) === JSON.stringify(b);
      const inflight = logged < TOTAL ? `${logged}: ${crashOpName(logged)}` : 'none';
      if (!matchesA && !matchesB) {
        const onlySeen = seen.filter((x) => !a.includes(x));
        const onlyA = a.filter((x) => !seen.includes(x));
        t.fail(`round ${round}: state after kill is neither before nor after op ${inflight}`, {
          onlyInLibrary: onlySeen,
          onlyInModelBefore: onlyA,
          onlyInModelAfter: b.filter((x) => !seen.includes(x)),
        });
        return;
      }
      t.pass(`round ${round}: ${logged} ops logged; op in flight (${inflight}) ${matchesB && !matchesA ? 'committed' : 'not applied'}`);
      if (matchesB && !matchesA) inFlightCommitted++;
      applied = matchesB && !matchesA ? logged + 1 : logged;

      // 4. committed content is intact, before and after garbage collection
      const check = async (when: string) => {
        let files = 0;
        let bad = 0;
        for (const [p, info] of walk(space)) {
          if (info.kind !== 'file') continue;
          files++;
          const bytes = await bytesOf(lib, info);
          if (sha256(bytes) !== info.blob || bytes.length !== info.size) {
            bad++;
            t.fail(`round ${round}: ${p} content does not match its blob key (${when})`);
          }
        }
        t.equal(bad, 0, `round ${round}: ${files} files read back intact ${when}`);
      };
      await check('after restart');
      await lib.collectGarbage();
      await check('after garbage collection');
    } finally {
      lib.close();
    }
    // 5. the product agrees: fsck finds nothing wrong (orphans included: a crash leaks nothing)
    await expectFsckClean(t, dir, {}, `round ${round}`);
  }
  t.ok(kills >= Math.min(ROUNDS, 3), `the child was killed mid-sequence ${kills} times`);
  t.comment(`applied ${applied} ops over ${ROUNDS} rounds; the op in flight had committed ${inFlightCommitted} times`);
  await sleep(0);
});
