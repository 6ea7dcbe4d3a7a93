/**
 * D9, the full disk, as SQLite meets it: what counts as a full disk, and the reserve kept in
 * `<library>/.smhfs-reserve` so the library still works on one.
 */
import { closeSync, openSync, statfsSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * D9: space kept in `<library>/.smhfs-reserve` so the library still works on a full disk. The
 * first OPEN_RESERVE bytes are given up by any open that cannot create SQLite's shared-memory
 * file (reads then work: a full disk still lists); the rest only by deletes (their WAL frames),
 * so that `rm --permanent`, purge and `trash empty` work when nothing else can. Given-up space is
 * taken back when the library closes, once the disk has room for it twice over.
 */
export const RESERVE_FILE = '.smhfs-reserve';
export const RESERVE_BYTES = 4 * 1024 * 1024;
export const OPEN_RESERVE = 32 * 1024; // what SQLite's shared-memory file takes, no more: writes must still fail

/** Bytes free for unprivileged use on the file system holding `dir` (Infinity when unknown). */
function freeBytes(dir: string): number {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return Infinity;
  }
}

/** Is this error a full disk? SQLITE_FULL, ENOSPC, or an SQLite I/O error while the disk has no room left. */
export function isDiskFull(e: unknown, dir: string): boolean {
  const code = (e as { code?: string }).code ?? '';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return true;
  return code.startsWith('SQLITE_IOERR') && freeBytes(dir) < OPEN_RESERVE;
}

/** Shrink the reserve to `keep` bytes; true when that gave space back. */
export function releaseReserve(dir: string, keep: number): boolean {
  const p = join(dir, RESERVE_FILE);
  try {
    const size = statSync(p).size;
    if (size <= keep) return false;
    truncateSync(p, keep);
    return true;
  } catch {
    return false;
  }
}

/** Grow the reserve back to its full size when the disk has room for it twice over. Best effort. */
export function topUpReserve(dir: string): void {
  const p = join(dir, RESERVE_FILE);
  const want = RESERVE_BYTES + OPEN_RESERVE;
  let size = 0;
  try {
    size = statSync(p).size;
  } catch {
    size = 0;
  }
  const missing = want - size;
  if (missing <= 0 || freeBytes(dir) < 2 * want) return;
  let fd: number | undefined;
  try {
    fd = openSync(p, 'a');
    // Real zeros, not a sparse extension: the blocks must be taken now to be given back later.
    const zeros = Buffer.alloc(Math.min(missing, 1 << 20));
    for (let left = missing; left > 0; left -= zeros.length) writeSync(fd, zeros, 0, Math.min(left, zeros.length));
  } catch {
    // no room after all, or read-only: the reserve stays as it is
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
