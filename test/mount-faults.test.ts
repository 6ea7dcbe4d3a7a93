// Faults through the mount (B4, B5), with the test-only SMHFS_TEST_FAULTS wrapper around the
// library's blob store: a remote read that keeps failing is EIO for `cat` (no bytes, never wrong
// ones); truncated bodies are retried and the bytes are right; an upload that fails makes close(2)
// and fsync(2) fail with EIO and leaves the previous version in place.
import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectFsckClean, expectSameFiles, librarySha256 } from './helpers/fsck.js';
import { cleanup, fuseUnavailable, ok, sh, smhfs, startMount, type Mount } from './helpers/mount.js';
import { PYTHON } from './helpers/python.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const dir = await mkdtemp(join(tmpdir(), 'smhfs-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const library = join(dir, 'lib');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'r.bin'), randomBytes(3 * 1024 * 1024 + 4321));
  await writeFile(join(src, 'v.txt'), 'version one\n');
  const init = await smhfs(['--library', library, 'init']);
  if (init.code !== 0) throw new Error(`init: ${init.stderr}`);
  for (const f of ['r.bin', 'v.txt']) {
    const r = await smhfs(['--library', library, 'put', join(src, f), f]);
    if (r.code !== 0) throw new Error(`put ${f}: ${r.stderr}`);
  }
  const before = await librarySha256(library);

  /** Mount the library with faults injected; always unmounted at the end of the subtest. */
  async function faulty(tt: { teardown(fn: () => unknown): void; ok(v: unknown, m: string): unknown }, faults: object): Promise<Mount> {
    const m = await startMount({ dir, env: { SMHFS_TEST_FAULTS: JSON.stringify(faults) } });
    tt.teardown(() => cleanup(m, { keepDir: true }));
    tt.ok(/SMHFS_TEST_FAULTS is set/.test(m.output()), 'the mount says faults are on');
    return m;
  }
  const stats = async (m: Mount): Promise<{ cache: Record<string, number>; faults: Record<string, number> }> => {
    const r = await smhfs(['--json', 'stats', m.mountpoint]);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { cache: Record<string, number>; faults: Record<string, number> };
  };

  t.test('reads that keep failing: EIO, no bytes', async (t) => {
    const m = await faulty(t, { failRate: 1 });
    const out = join(dir, 'out.bin');
    const r = await sh(`cat '${m.p('r.bin')}' > '${out}'`, { timeoutMs: 60_000 });
    t.not(r.code, 0, 'cat fails');
    t.match(r.stderr, /Input\/output error/, 'with EIO');
    t.equal((await ok(`stat -c %s '${out}'`)).trim(), '0', 'and wrote nothing (never wrong bytes)');
    const s = await stats(m);
    t.ok(s.cache['retries']! >= 4, `retried (${s.cache['retries']})`);
    t.ok(s.cache['errors']! >= 1, 'counted as errors');
    t.equal(s.cache['cachedBytes'], 0, 'nothing cached');
  });

  t.test('truncated bodies are retried: every byte right', async (t) => {
    const m = await faulty(t, { truncateRate: 0.5, seed: 7 });
    await ok(`cmp '${m.p('r.bin')}' '${join(src, 'r.bin')}'`);
    const s = await stats(m);
    t.ok(s.faults['injectedTruncations']! > 0, `truncations injected: ${s.faults['injectedTruncations']}`);
    t.ok(s.cache['retries']! >= s.faults['injectedTruncations']!, 'each one retried');
    t.equal(s.cache['errors'], 0);
  });

  t.test('uploads that fail: close and fsync give EIO, the previous version stays', async (t) => {
    const m = await faulty(t, { failRate: 1, failOps: ['putFile'] });
    const v = m.p('v.txt');
    const py = await sh(
      `${PYTHON} - '${v}' <<'EOF'
import os, sys
f = open(sys.argv[1], 'w')
f.write('version two, longer\\n')
try:
    f.close()
    print('close ok')
except OSError as e:
    print('close', e.errno)
EOF`,
    );
    t.equal(py.code, 0, `the python3 driver ran: ${py.stderr}`);
    t.equal(py.stdout.trim(), 'close 5', 'close(2) fails with EIO');
    // notrunc: dd otherwise truncates and closes a dup'ed fd first, which commits an empty file
    // (no upload needed, so that commit rightly succeeds) before the write that fails.
    const dd = await sh(`printf 'version three\\n' | dd of='${v}' conv=fsync,notrunc status=none`);
    t.not(dd.code, 0, 'dd conv=fsync fails');
    t.match(dd.stderr, /Input\/output error/, 'fsync(2): EIO');
    await new Promise((r) => setTimeout(r, 1100)); // attribute timeout
    t.equal(await ok(`cat '${v}'`), 'version one\n', 'the mount shows the previous version');
    const s = await stats(m);
    t.ok(s.faults['injectedFailures']! >= 2, 'uploads were attempted and failed');
    await m.stop();
    const cat = await smhfs(['--library', library, 'cat', 'v.txt']);
    t.equal(cat.stdout, 'version one\n', 'and so does the library after the mount is gone');
  });

  t.test('D4: after every fault the library is consistent and every file has its bytes', async (t) => {
    await expectFsckClean(t, library);
    expectSameFiles(t, before, await librarySha256(library));
  });
}
