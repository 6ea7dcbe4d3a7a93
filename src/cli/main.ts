#!/usr/bin/env node
/** `smhfs`: the executable. Everything else is in ./program.ts. */
import { attachDaemonChild, isDaemonChild } from './daemon.js';
import { main } from './program.js';

// The background server of `smhfs mount --daemon`: report errors to the waiting parent too.
if (isDaemonChild()) attachDaemonChild();

// `smhfs cat big | head`: a closed pipe is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const code = await main(process.argv);
// Let buffered output reach its destination, then exit even if a library left a handle open.
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
process.exit(code);
