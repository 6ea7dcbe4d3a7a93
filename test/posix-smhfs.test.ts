// The POSIX suite through the kernel against smhfs, once per binding (test/posix/targets.ts
// SMHFS_BINDINGS): every case not in the target's staging list (test/posix/staging.ts, each
// with its cause: hard links, the caller's identity, …) must pass. `make posix` reports the rest.
import t from 'tap';
import { fuseUnavailable } from './helpers/mount.js';
import { tapTarget } from './posix/run.js';
import { SMHFS_BINDINGS } from './posix/targets.js';

const why = process.getuid?.() !== 0 ? 'it needs root (setpriv to throw-away users)' : await fuseUnavailable();
if (why) {
  if (process.env.CI) throw new Error(`the POSIX suite must run in CI, but ${why}`);
  t.plan(0, `the POSIX suite on smhfs: ${why}`);
} else {
  for (const binding of Object.keys(SMHFS_BINDINGS)) {
    await t.test(`smhfs (${binding})`, (t) => tapTarget(t, `smhfs-${binding}`));
  }
}
