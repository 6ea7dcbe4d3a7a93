// copy_file_range(2) through the kernel (issue 12). On our libfuse 3 binding (ll) a whole file
// copied into an empty one shares the source's blob (content-addressed: no byte read, hashed or
// stored again); anything else — a range, a non-empty destination — is answered EOPNOTSUPP and the
// kernel copies through read and write. libfuse 2 (fuse-native) has no copy_file_range: the
// kernel copies every time. Every copy is checked by checksum; then the source is overwritten and
// deleted for good, and the copy still reads the same (the shared bytes are referenced, not
// collected: D3), and fsck is clean.
import t from 'tap';
import { expectFsckClean } from './helpers/fsck.js';
import { cleanup, cli, fuseUnavailable, ok, smhfs, startMount, storeCall, TEST_BINDING, type Mount } from './helpers/mount.js';

const MiB = 1024 * 1024;

async function stored(m: Mount): Promise<number> {
  const r = await smhfs(['--json', 'stats', m.mountpoint]);
  if (r.code !== 0) throw new Error(`smhfs stats: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { io: { bytesStored: number } }).io.bytesStored;
}

/** python3: os.copy_file_range of `len` bytes (default: the whole source) from src@offIn to dst@offOut; prints the bytes copied. */
const copyRange = (src: string, dst: string, offIn = 0, offOut = 0, len?: number, truncate = true): string =>
  `${PYTHON} -c "
import os
s = os.open('${src}', os.O_RDONLY)
d = os.open('${dst}', os.O_WRONLY | os.O_CREAT${truncate ? ' | os.O_TRUNC' : ''}, 0o644)
n = ${len ?? 'os.fstat(s).st_size'}
done = 0
while done < n:
    k = os.copy_file_range(s, d, n - done, ${offIn} + done, ${offOut} + done)
    if k == 0: break
    done += k
print(done)
os.close(s); os.close(d)"`;
import { PYTHON } from './helpers/python.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const m = await startMount();
  t.teardown(() => cleanup(m, { keepDir: true }));
  const mp = m.mountpoint;
  const run = (cmd: string) => ok(cmd, { cwd: mp });
  const ll = TEST_BINDING !== 'fuse-native';
  const blobOf = async (path: string): Promise<string | null> => (await storeCall(m, `return space.stat(${JSON.stringify(path)}).blob;`)) as string | null;

  t.test('a whole file into a new one: same bytes; on ll the same blob, nothing stored again', async (t) => {
    await run(`head -c ${5 * MiB} /dev/urandom > src.bin`);
    const sum = await run('sha256sum < src.bin');
    const stored0 = await stored(m);
    t.equal((await run(copyRange('src.bin', 'copy.bin'))).trim(), String(5 * MiB), 'copy_file_range copied the whole file');
    t.equal(await run('sha256sum < copy.bin'), sum, 'the copy has the same bytes');
    t.not((await run('stat -c %i src.bin copy.bin')).trim().split('\n')[0], (await run('stat -c %i copy.bin')).trim(), 'two files, two inodes');
    if (ll) {
      // the same key holds for any copy (content addressing); that none was stored shows the sharing
      t.equal(await blobOf('copy.bin'), await blobOf('src.bin'), 'the copy references the source blob');
      t.equal((await stored(m)) - stored0, 0, 'no byte stored for the copy: shared, not copied');
    } else {
      t.ok((await stored(m)) - stored0 >= 5 * MiB, 'fuse-native: the kernel copied through write, and the copy was stored');
    }
    // into an existing file, truncated by the open (O_TRUNC: an empty staged version)
    await run('printf old > again.bin');
    t.equal((await run(copyRange('src.bin', 'again.bin'))).trim(), String(5 * MiB));
    t.equal(await run('sha256sum < again.bin'), sum, 'over an existing file (O_TRUNC): the same bytes');
    if (ll) t.equal(await blobOf('again.bin'), await blobOf('src.bin'), 'shared too');
    t.equal(await run('cp --reflink=never src.bin cp.bin && sha256sum < cp.bin'), sum, 'cp --reflink=never');
  });

  t.test('ranges and non-empty destinations: the kernel copies through read and write; bytes as a local copy', async (t) => {
    await run(`head -c ${3 * MiB} /dev/urandom > r.bin && head -c ${MiB} /dev/urandom > dst.bin`);
    const local = await ok(`mktemp -d`).then((s) => s.trim());
    t.teardown(() => ok(`rm -rf '${local}'`));
    await ok(`cp '${mp}/r.bin' '${mp}/dst.bin' '${local}/'`);
    const cases: Array<[string, number, number, number | undefined, boolean]> = [
      ['part.bin', 1000, 0, MiB, true], // a range from the middle into a new file
      ['dst.bin', 0, 4096, 2 * MiB, false], // into a non-empty file at an offset (no O_TRUNC)
      ['dst.bin', 0, 0, undefined, false], // the whole source over a non-empty file
    ];
    const stored0 = await stored(m);
    for (const [dst, offIn, offOut, len, trunc] of cases) {
      const label = `${dst} ← r.bin@${offIn} len ${len ?? 'all'} at ${offOut}${trunc ? ' (O_TRUNC)' : ''}`;
      const a = (await run(copyRange('r.bin', dst, offIn, offOut, len, trunc))).trim();
      const b = (await ok(copyRange(`${local}/r.bin`, `${local}/${dst}`, offIn, offOut, len, trunc))).trim();
      t.equal(a, b, `${label}: as many bytes as locally`);
      t.equal(await run(`sha256sum < ${dst}`), await ok(`sha256sum < '${local}/${dst}'`), `${label}: the same bytes as locally`);
    }
    // none was shared: each was written through the kernel and committed (dst.bin ends as r.bin's 3 MiB)
    t.ok((await stored(m)) - stored0 >= MiB + 3 * MiB, 'the copies were written and stored, not shared');
  });

  t.test('the shared bytes outlive the source: overwritten, deleted for good, the bin emptied — the copy reads the same; fsck clean', async (t) => {
    const sum = await run('sha256sum < copy.bin');
    await run('printf new > src.bin');
    t.equal(await run('sha256sum < copy.bin'), sum, 'after the source was overwritten');
    await run('rm src.bin again.bin');
    const empty = await cli(m, ['trash', 'empty']);
    t.equal(empty.code, 0, empty.stderr);
    const gc = await cli(m, ['gc']);
    t.equal(gc.code, 0, gc.stderr);
    t.equal(await run('sha256sum < copy.bin'), sum, 'after the source and the other copy were purged');
    t.equal(await m.stop(), 0);
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    t.equal(await ok(`sha256sum < '${again.mountpoint}/copy.bin'`), sum, 'after a remount');
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
  });
}
