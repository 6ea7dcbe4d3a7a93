// fallocate(2) through the kernel (issue 12, D8), each mode with the programs that use it:
// `fallocate -l` (mode 0: extends, the range a hole), `fallocate --keep-size` (KEEP_SIZE: changes nothing),
// `fallocate -p` (PUNCH_HOLE|KEEP_SIZE: the range reads as zeros, the size stays, a hole of 1 MiB
// or more is stored as one), python's os.posix_fallocate, and the modes we do not offer
// (ZERO_RANGE, COLLAPSE_RANGE: EOPNOTSUPP). Every result is compared by checksum with the same
// calls on a local file (tmpfs or the disk: both have every mode), then again after the mount's
// commit (a remount reads the stored version).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectFsckClean } from './helpers/fsck.js';
import { cleanup, fuseUnavailable, ok, sh, smhfs, startMount, type Mount } from './helpers/mount.js';
import { PYTHON } from './helpers/python.js';

const MiB = 1024 * 1024;

async function sparseCommits(m: Mount): Promise<number> {
  const r = await smhfs(['--json', 'stats', m.mountpoint]);
  if (r.code !== 0) throw new Error(`smhfs stats: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { io: { sparseCommits: number } }).io.sparseCommits;
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const m = await startMount();
  t.teardown(() => cleanup(m, { keepDir: true }));
  const local = mkdtempSync(join(tmpdir(), 'smhfs-fallocate-'));
  t.teardown(() => rmSync(local, { recursive: true, force: true }));
  /** Run `cmd` (with {} for a directory) in the mount and on the local folder; both must succeed. */
  const both = async (cmd: string): Promise<void> => {
    await ok(cmd.replaceAll('{}', m.mountpoint));
    await ok(cmd.replaceAll('{}', local));
  };
  /** `sha256sum` and `stat -c %s` of `name` in the mount and locally: [mount, local]. */
  const sums = async (name: string): Promise<[string, string]> => {
    const one = async (dir: string) => (await ok(`cd '${dir}' && sha256sum '${name}' && stat -c %s '${name}'`)).trim();
    return [await one(m.mountpoint), await one(local)];
  };

  t.test('fallocate -l (mode 0) extends with zeros; --keep-size (KEEP_SIZE) keeps the size; posix_fallocate too', async (t) => {
    await both("printf ab > '{}/ext'");
    await both("fallocate -l 8192 '{}/ext'");
    const [mine, theirs] = await sums('ext');
    t.equal(mine, theirs, 'mode 0: size 8192, ab then zeros, as a local file');
    t.match(mine, /\n8192$/);
    await both("fallocate --keep-size -o 0 -l 1048576 '{}/ext'");
    t.same(await sums('ext'), [mine, mine], 'KEEP_SIZE past the end: size and content unchanged');
    await both(`${PYTHON} -c "import os; fd = os.open('{}/px', os.O_RDWR | os.O_CREAT, 0o644); os.write(fd, b'xyz'); os.posix_fallocate(fd, 0, 70000); os.close(fd)"`);
    const [p1, p2] = await sums('px');
    t.equal(p1, p2, 'posix_fallocate: as a local file');
    t.match(p1, /\n70000$/);
  });

  t.test('fallocate -p (PUNCH_HOLE|KEEP_SIZE): the range reads as zeros, the size stays; a 2 MiB hole is stored as a hole', async (t) => {
    await ok(`head -c ${4 * MiB} /dev/urandom > '${local}/seed'`);
    await both(`cp '${local}/seed' '{}/punched'`);
    const sparse0 = await sparseCommits(m);
    await both("fallocate -p -o 1048576 -l 2097152 '{}/punched'");
    const [mine, theirs] = await sums('punched');
    t.equal(mine, theirs, 'the same bytes as the same punch on a local file');
    t.match(mine, new RegExp(`\\n${4 * MiB}$`), 'the size stays');
    t.equal((await ok(`cmp '${m.p('punched')}' '${local}/seed' | wc -l`)).trim(), '1', 'and it differs from what was written');
    t.equal(await ok(`dd if='${m.p('punched')}' bs=1M skip=1 count=2 status=none | tr -d '\\0' | wc -c`), '0\n', 'the range is zeros');
    t.equal((await sparseCommits(m)) - sparse0, 1, 'committed as a sparse container (D8): the hole was neither hashed nor stored');

    // across the end of the file and in a small range: the size still stays
    await both("fallocate -p -o 3670016 -l 10485760 '{}/punched'");
    await both("fallocate -p -o 10 -l 100 '{}/punched'");
    const [m2, l2] = await sums('punched');
    t.equal(m2, l2, 'a punch across the end and a 100-byte one: as locally');
    t.match(m2, new RegExp(`\\n${4 * MiB}$`));
  });

  t.test('fallocate -p on a file open for writing: the writer sees the hole, its later writes land, one commit at the close', async (t) => {
    await ok(`head -c ${3 * MiB} /dev/urandom > '${local}/seed2'`);
    await both(`cp '${local}/seed2' '{}/open'`);
    const script = (dir: string) =>
      `${PYTHON} -c "
import os
fd = os.open('${dir}/open', os.O_RDWR)
os.write(fd, b'head')
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
assert libc.fallocate(fd, 3, 0, ${2 * MiB}) == 0, ctypes.get_errno()
assert os.pread(fd, 4, 0) == b'\\0' * 4
os.pwrite(fd, b'tail', ${MiB})
os.close(fd)"`;
    await ok(script(m.mountpoint));
    await ok(script(local));
    const [mine, theirs] = await sums('open');
    t.equal(mine, theirs, 'what the writer did, in order, as on a local file');
  });

  t.test('modes not offered: EOPNOTSUPP (ZERO_RANGE, COLLAPSE_RANGE, INSERT_RANGE), nothing changes; EBADF read-only', async (t) => {
    await ok(`head -c ${2 * MiB} /dev/urandom > '${m.p('other')}'`);
    const sum0 = await ok(`sha256sum < '${m.p('other')}'`);
    for (const flag of ['-z', '-c', '-i']) {
      const r = await sh(`fallocate ${flag} -o 0 -l 1048576 '${m.p('other')}'`);
      t.not(r.code, 0, `fallocate ${flag} fails`);
      t.match(r.stderr, /not supported/i, `fallocate ${flag}: EOPNOTSUPP`);
    }
    const ro = await sh(`${PYTHON} -c "
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
fd = os.open('${m.p('other')}', os.O_RDONLY)
print(libc.fallocate(fd, 3, 0, 4096), ctypes.get_errno())"`);
    t.equal(ro.stdout.trim(), '-1 9', 'a punch through a read-only descriptor: EBADF');
    t.equal(await ok(`sha256sum < '${m.p('other')}'`), sum0, 'the content is unchanged');
  });

  t.test('after a remount every file reads as before (the stored versions), and fsck is clean', async (t) => {
    const names = ['ext', 'px', 'punched', 'open'];
    const before = await Promise.all(names.map(async (n) => (await sums(n))[1]));
    t.equal(await m.stop(), 0);
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    for (const [i, n] of names.entries()) {
      t.equal((await ok(`cd '${again.mountpoint}' && sha256sum '${n}' && stat -c %s '${n}'`)).trim(), before[i], `${n}: as locally`);
    }
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
  });
}
