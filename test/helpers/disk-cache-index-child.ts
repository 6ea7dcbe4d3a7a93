/**
 * Child process for test/blob-disk-cache.test.ts (the index's memory), run with --expose-gc so
 * that nothing else of the test process is measured:
 *
 *   node --expose-gc dist/test/helpers/disk-cache-index-child.js CACHE_DIR UNITS
 *
 * Writes UNITS consecutive 4 KiB units of one blob into a DiskCache (16 MiB segments) and prints
 * `{"writes":N,"indexed":bool,"grew":BYTES}`: what the JS heap and ArrayBuffers grew by, after
 * full collections, with the cache still open.
 */
import { DiskCache } from '../../src/blob/disk-cache.js';

const [dir, unitsArg] = process.argv.slice(2);
if (!dir || !unitsArg) {
  process.stderr.write('usage: disk-cache-index-child CACHE_DIR UNITS\n');
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const units = Number(unitsArg);
const used = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const d = new DiskCache({ dir, maxBytes: 2 ** 40, unitSize: 4096, segmentSize: 16 * 1024 * 1024, maxPendingWriteBytes: 1 << 30, log: () => undefined });
await d.open();
const key = 'f'.repeat(64);
const unit = Buffer.alloc(4096, 7);
const before = await used();
for (let i = 0; i < units; i += 100) await Promise.all(Array.from({ length: Math.min(100, units - i) }, (_, j) => d.write(key, (i + j) * 4096, unit)));
await d.idle();
const grew = (await used()) - before;
process.stdout.write(`${JSON.stringify({ writes: d.stats().writes, indexed: d.has(key, 0, units * 4096), grew })}\n`);
await d.close();
