#!/usr/bin/env node
/**
 * `smhfs`: the executable. Everything else is in ./program.ts. `make build` bundles this module
 * and everything it imports from src/ into dist/src/cli/main.js (src/cli/bundle.mjs): the command
 * that users and tests run is that bundle; tsc's per-module output of this file is entry.js.
 */
import { escapeBytes, firstNonUtf8Argument } from './argv.js';
import { attachDaemonChild, isDaemonChild } from './daemon.js';
import { reportError } from './context.js';
import { commandNameOf, main } from './program.js';
import { CliError } from './usage.js';

// The background server of `smhfs mount --daemon`: report errors to the waiting parent too.
if (isDaemonChild()) attachDaemonChild();

// `smhfs cat big | head`: a closed pipe is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// D5: names are never altered; an argument Node would decode lossily is refused first (./argv.ts),
// in the shape of every other error: `smhfs: put: $'caf\xe9.txt': … (NameNotUtf8)`, exit 1.
const bad = firstNonUtf8Argument();
if (bad) {
  process.exit(
    reportError(
      commandNameOf(process.argv.slice(2)),
      new CliError(
        'NameNotUtf8',
        `argument ${bad.position} is not valid UTF-8; smhfs keeps names exactly as given and cannot keep this one: ` +
          'use a UTF-8 name (rename a local file so named first, e.g. with convmv -f latin1 -t utf-8)',
        `$'${escapeBytes(bad.bytes)}'`,
      ),
    ),
  );
}

// An async function, not top-level await: the bundle is CommonJS (src/cli/bundle.mjs says why).
async function run(): Promise<never> {
  const code = await main(process.argv);
  // Let buffered output reach its destination, then exit even if a library left a handle open.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
  process.exit(code);
}
void run();
