/**
 * One machine-wide lock for the test files that touch the kernel's caches: those that drop them
 * (`echo N > /proc/sys/vm/drop_caches` empties every file system's dentries, inodes and pages, not
 * just ours) and those that assert the kernel answered from them (mount-inval's "the kernel
 * answers the stats itself", readdirplus's "a repeat ls -l asks nothing"). tap runs files in
 * parallel, so without it one file's drop_caches lands in the middle of another's cached run and
 * fails it at random. The files holding the lock run one after another; every other file still
 * runs in parallel with them.
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

/** Wait for the lock and take it; the returned function releases it (call it in a teardown). */
export async function holdKernelCaches(): Promise<() => void> {
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
    try {
      if (readFileSync(LOCK, 'utf8') === String(process.pid)) rmSync(LOCK, { force: true });
    } catch {
      // already gone
    }
  };
  process.once('exit', release);
  return release;
}

/** A test file's whole run holds the lock (none when FUSE is missing: `unavailable` says why). */
export async function holdKernelCachesFor(t: { teardown(fn: () => void): void }, unavailable: unknown): Promise<void> {
  if (unavailable) return;
  t.teardown(await holdKernelCaches());
}
