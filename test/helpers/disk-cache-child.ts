/**
 * Child process for test/blob-disk-cache.test.ts (kill -9 mid-write).
 *
 *   node dist/test/helpers/disk-cache-child.js CACHE_DIR KEY PAGE_SIZE [SEGMENT_SIZE]
 *
 * Opens a DiskCache in CACHE_DIR and writes page after page of blob KEY (bytes from
 * `pageBytes`, so the parent knows what every page must hold) as fast as it can, forever,
 * printing `wrote N` after each page is stored. The parent SIGKILLs it mid-write.
 */
import { DiskCache } from '../../src/blob/disk-cache.js';
import { pageBytes } from './disk-cache.js';

const [dir, key, psArg, segArg] = process.argv.slice(2);
if (!dir || !key || !psArg) {
  process.stderr.write('usage: disk-cache-child CACHE_DIR KEY PAGE_SIZE\n');
  process.exit(2);
}
const ps = Number(psArg);
const disk = new DiskCache({ dir, maxBytes: 1 << 30, writeConcurrency: 4, ...(segArg ? { segmentSize: Number(segArg) } : {}) });
await disk.open();
process.stdout.write(`ready ${disk.state}\n`);
for (let i = 0; ; i++) {
  // Several writes in flight, so the kill lands inside some of them.
  await Promise.all([0, 1, 2, 3].map((j) => disk.write(key, (4 * i + j) * ps, pageBytes(key, 4 * i + j, ps))));
  process.stdout.write(`wrote ${4 * i + 3}\n`);
}
