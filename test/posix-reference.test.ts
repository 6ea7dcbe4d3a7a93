// The POSIX suite validated against references (test/posix/): Linux itself on a plain directory,
// where every case must pass, and bindfs (libfuse 2), where every case must pass but those its
// staging list names with a libfuse 2 / bindfs cause. A case that fails here is a wrong case.
import t from 'tap';
import { fuseUnavailable } from './helpers/mount.js';
import { tapTarget } from './posix/run.js';

if (process.getuid?.() !== 0) {
  if (process.env.CI) throw new Error('the POSIX suite must run in CI, but it needs root (setpriv, allow_other)');
  t.plan(0, 'the POSIX suite needs root (setpriv to throw-away users)');
} else {
  await t.test('plain directory (Linux itself)', (t) => tapTarget(t, 'plain'));
  const why = await fuseUnavailable();
  if (why) t.plan(1, `bindfs needs FUSE: ${why}`);
  else await t.test('bindfs (libfuse 2)', (t) => tapTarget(t, 'bindfs'));
}
