/**
 * Child process for the D7 hold tests: another process holding a blob.
 *
 *   node dist/test/helpers/hold-child.js LIBRARY_DIR KEY
 *
 * Opens the library (its own local blob store), holds KEY, prints `held`, and waits for a line
 * on stdin: `release` releases the hold, waits for the collection that may follow, prints
 * `released` and exits. The parent may SIGKILL it instead, as a crash.
 */
import { createInterface } from 'node:readline';
import { Library } from '../../src/store/library.js';

const [dir, key] = process.argv.slice(2);
if (!dir || !key) {
  process.stderr.write('usage: hold-child LIBRARY_DIR KEY\n');
  process.exit(2);
}
const lib = Library.open(dir);
const hold = lib.holdBlob(key);
process.stdout.write('held\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'release') continue;
  hold.release();
  await lib.idle();
  lib.close();
  process.stdout.write('released\n');
  process.exit(0);
}
