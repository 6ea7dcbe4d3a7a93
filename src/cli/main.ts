#!/usr/bin/env node
/** `smhfs`: the executable. Everything else is in ./program.ts. */
import { escapeBytes, firstNonUtf8Argument } from './argv.js';
import { attachDaemonChild, isDaemonChild } from './daemon.js';
import { main } from './program.js';

// The background server of `smhfs mount --daemon`: report errors to the waiting parent too.
if (isDaemonChild()) attachDaemonChild();

// `smhfs cat big | head`: a closed pipe is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// D5: names are never altered; an argument Node would decode lossily is refused first (./argv.ts).
const bad = firstNonUtf8Argument();
if (bad) {
  process.stderr.write(
    `smhfs: argument ${bad.position} is not valid UTF-8 ($'${escapeBytes(bad.bytes)}'); smhfs keeps names exactly as given and ` +
      `cannot keep this one: use a UTF-8 name (a local file so named: rename it first, e.g. convmv -f latin1 -t utf-8)\n`,
  );
  process.exit(1);
}

const code = await main(process.argv);
// Let buffered output reach its destination, then exit even if a library left a handle open.
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
process.exit(code);
