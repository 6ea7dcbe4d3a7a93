/** Shared by the disk-cache tests and their child process: the bytes page N of a test blob holds. */
import { createHash } from 'node:crypto';

export function pageBytes(key: string, index: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let seed = createHash('sha256').update(`${key}:${index}`).digest();
  for (let pos = 0; pos < size; pos += seed.length) {
    seed.copy(out, pos, 0, Math.min(seed.length, size - pos));
    seed = createHash('sha256').update(seed).digest();
  }
  return out;
}
