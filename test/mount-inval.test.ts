// H4 on the real mount (issue 11 item 2): smhfs served on the libfuse 3 binding with hour-long
// entry and attribute timeouts — the kernel answers repeated lookups and stats itself — follows the
// library's change feed: a change another process makes (the CLI) drops exactly the cached
// entries and attributes it made stale, so the next call through the mount sees it at once (the
// SPEC's bound: within 1 s), not after an hour. Only the ll binding invalidates (fuse-native:
// timeouts only), so this file mounts with --binding ll whatever the suite's binding.
import t from 'tap';
import { cli, fuseUnavailable, ok, sh, withMount } from './helpers/mount.js';

const LONG = ['--binding', 'll', '-o', 'entry_timeout=3600,attr_timeout=3600,negative_timeout=3600'];

/** Poll `probe` through the mount until it gives `want` (1 s: H4's worst case); the ms it took. */
async function seen(probe: () => Promise<string>, want: string): Promise<{ ms: number; last: string }> {
  const t0 = Date.now();
  let last = await probe();
  while (last !== want && Date.now() - t0 < 1000) last = await probe();
  return { ms: Date.now() - t0, last };
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const m = await withMount(t, { args: LONG });
  const mp = m.mountpoint;

  t.test('H4: a CLI mv is seen through the mount at once, though the kernel would keep the old names an hour', async (t) => {
    await ok(`mkdir '${mp}/h4' && echo photo > '${mp}/h4/a.jpg' && ln -s a.jpg '${mp}/h4/link'`);
    const stat = async (p: string) => (await sh(`stat -c %F '${mp}/${p}'`)).stdout.trim() || 'missing';
    t.equal(await stat('h4/a.jpg'), 'regular file');
    t.equal(await stat('h4/b.jpg'), 'missing', 'b.jpg: a cached negative entry now');
    const r = await cli(m, ['mv', 'h4/a.jpg', 'h4/b.jpg']);
    t.equal(r.code, 0, r.stderr);
    const gone = await seen(() => stat('h4/a.jpg'), 'missing');
    t.equal(gone.last, 'missing', `the old name gone ${gone.ms} ms after the CLI exited`);
    const there = await seen(() => stat('h4/b.jpg'), 'regular file');
    t.equal(there.last, 'regular file', `the new name there (its negative entry dropped) after ${there.ms} ms`);
    t.equal((await ok(`readlink '${mp}/h4/link'`)).trim(), 'b.jpg', 'the bound link follows (L4)');
    t.equal(await ok(`cat '${mp}/h4/link'`), 'photo\n');
  });

  t.test('H4: a CLI rm is seen through the mount at once', async (t) => {
    await ok(`echo x > '${mp}/mode.txt' && chmod 644 '${mp}/mode.txt'`);
    const mode = async () => (await ok(`stat -c %a '${mp}/mode.txt'`)).trim();
    t.equal(await mode(), '644');
    const r = await cli(m, ['rm', 'mode.txt']);
    t.equal(r.code, 0, r.stderr);
    const gone = await seen(async () => (await sh(`stat -c %a '${mp}/mode.txt'`)).code === 0 ? 'there' : 'gone', 'gone');
    t.equal(gone.last, 'gone', `a CLI rm seen after ${gone.ms} ms`);
  });
}
