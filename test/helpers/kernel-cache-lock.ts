/**
 * One machine-wide lock for the test files that touch the kernel's caches: those that drop them
 * (`echo N > /proc/sys/vm/drop_caches` empties every file system's dentries, inodes and pages, not
 * just ours) and those that assert the kernel answered from them (mount-inval's "the kernel
 * answers the stats itself", readdirplus's "a repeat ls -l asks nothing"). tap runs files in
 * parallel, so without it one file's drop_caches lands in the middle of another's cached run and
 * fails it at random. The lock is held per subtest, only by the subtests that drop or rely on the
 * caches, from the step where that starts to the subtest's end: the rest of those files (mounts,
 * fsck, a listing under churn) runs in parallel with everything. Held per file, it made the files
 * next to each other in tap's order wait for each other whole: ~34 s of an idle job slot in a
 * 2-job run (binding-ll-cache waited 16 s for binding-ll-adapter, binding-ll-requests 18 s).
 *
 * The lock is a file created with O_EXCL holding the holder's pid. A holder that died without
 * releasing it (a crashed test process) is detected by its pid and its lock taken over, so a crash
 * never leaves the next run waiting.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const LOCK = join(tmpdir(), 'smhfs-test-kernel-caches.lock');
/** Long enough for every holder to finish its file under a loaded machine; then the wait fails. */
const WAIT_MS = 10 * 60_000;

function holderAlive(): boolean {
  let text: string;
  try {
    text = readFileSync(LOCK, 'utf8');
  } catch {
    return false; // released meanwhile
  }
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) return true; // just created, pid not written yet
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Wait for the lock and take it; `release` gives it back (call it in a teardown). */
async function takeKernelCaches(): Promise<{ release: () => void; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    try {
      writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!holderAlive()) {
      rmSync(LOCK, { force: true });
      continue;
    }
    if (Date.now() - t0 > WAIT_MS) throw new Error(`waited ${WAIT_MS / 1000} s for ${LOCK} (held by pid ${readFileSync(LOCK, 'utf8')})`);
    await sleep(100);
  }
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    try {
      if (readFileSync(LOCK, 'utf8') === String(process.pid)) rmSync(LOCK, { force: true });
    } catch {
      // already gone
    }
  };
  process.once('exit', release);
  return { release, waitedMs: Date.now() - t0 };
}

/**
 * The (sub)test `t` holds the lock from now to its end. Call it in each subtest that drops the
 * caches or asserts what they hold, at its first step that does (or whose effect a drop elsewhere
 * would undo). The wait is said in a comment, so a run's log shows what the lock cost.
 */
export async function holdKernelCachesFor(t: { teardown(fn: () => void): void; comment(...m: unknown[]): void }): Promise<void> {
  const { release, waitedMs } = await takeKernelCaches();
  t.teardown(release);
  if (waitedMs >= 100) t.comment(`waited ${(waitedMs / 1000).toFixed(1)} s for the kernel-cache lock`);
}
