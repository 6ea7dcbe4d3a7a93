/**
 * Child process for test/store-crash.test.ts.
 *
 *   node dist/test/helpers/crash-child.js LIBRARY_DIR START COUNT
 *
 * Opens the library (default blob store: the local directory inside the library) and performs the
 * deterministic operations START .. START+COUNT-1 of `runCrashOp`, writing `done <i>` to stdout
 * after each one has returned (stdout to a pipe is synchronous on Linux, so a logged op is
 * committed). The parent SIGKILLs it somewhere in the middle.
 */
import { Library } from '../../src/store/library.js';
import { crashOpName, runCrashOp } from './store.js';

const [dir, startArg, countArg] = process.argv.slice(2);
if (!dir || startArg === undefined || countArg === undefined) {
  process.stderr.write('usage: crash-child LIBRARY_DIR START COUNT\n');
  process.exit(2);
}
const start = Number(startArg);
const count = Number(countArg);

const lib = Library.open(dir, { create: true });
const space = lib.space('-');
process.stdout.write(`ready ${start}\n`);
for (let i = start; i < start + count; i++) {
  try {
    await runCrashOp(lib, space, i);
  } catch (e) {
    process.stderr.write(`op ${i} (${crashOpName(i)}) failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(3);
  }
  process.stdout.write(`done ${i}\n`);
}
lib.close();
process.stdout.write('finished\n');
