// renameat2(2) through the kernel (issue 12): RENAME_NOREPLACE and RENAME_EXCHANGE, driven with
// python3's ctypes (coreutils 9.1 has no `mv --exchange`). On our libfuse 3 binding (ll) the
// flags reach the store (test/store-rename-flags.test.ts): an exchange swaps files, directories
// and links across directories, bound links follow their targets at once (the change feed
// invalidates the kernel's cached readlink answers, held 60 s on ll), and contents are checked by
// checksum. libfuse 2 (fuse-native) has no rename flags: the kernel answers EINVAL there, and
// nothing changes (native-notes/fuse-native.md).
import t from 'tap';
import { fuseUnavailable, ok, TEST_BINDING, withMount } from './helpers/mount.js';

/** renameat2(AT_FDCWD, src, AT_FDCWD, dst, flags) in a child process: 'OK' or the errno's name. */
const RENAMEAT2 = `
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
flags = {'NOREPLACE': 1, 'EXCHANGE': 2, 'WHITEOUT': 4}
out = []
for call in sys.argv[1:]:
    f, src, dst = call.split(':')
    r = libc.renameat2(-100, src.encode(), -100, dst.encode(), flags.get(f, 0))
    out.append('OK' if r == 0 else errno.errorcode[ctypes.get_errno()])
print(' '.join(out))
`;
import { PYTHON } from './helpers/python.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const m = await withMount(t);
  const mp = m.mountpoint;
  const run = (cmd: string) => ok(cmd, { cwd: mp });
  /** Each `FLAG:src:dst` as renameat2 answers it, in order. */
  const renameat2 = async (...calls: string[]): Promise<string[]> =>
    (await ok(`${PYTHON} -c "$SCRIPT" ${calls.map((c) => `'${c}'`).join(' ')}`, { cwd: mp, env: { ...process.env, SCRIPT: RENAMEAT2 } })).trim().split(' ');
  const fuseNative = TEST_BINDING === 'fuse-native';

  t.test('RENAME_NOREPLACE: a free name is a rename; an existing one EEXIST and both files are kept', async (t) => {
    await run('mkdir nr && printf one > nr/a && printf two > nr/b');
    const sums = await run('cd nr && sha256sum a b');
    if (fuseNative) {
      t.same(await renameat2('NOREPLACE:nr/a:nr/c'), ['EINVAL'], 'libfuse 2 has no rename flags: EINVAL');
      t.equal(await run('cd nr && sha256sum a b'), sums, 'nothing moved');
      return;
    }
    t.same(await renameat2('NOREPLACE:nr/a:nr/b', 'NOREPLACE:nr/a:nr/c'), ['EEXIST', 'OK']);
    t.equal((await run('ls nr')).trim(), 'b\nc', 'a is now c; b is kept');
    t.equal(await run('cd nr && sha256sum c b'), sums.replace(' a\n', ' c\n'), 'both contents as written');
  });

  t.test('RENAME_EXCHANGE: a file and a directory across directories trade places; inodes, contents and the bin as they should be', async (t) => {
    await run('mkdir -p ex/s ex/t/dir && head -c 300000 /dev/urandom > ex/s/f && printf inner > ex/t/dir/inner');
    const [f, dir] = (await run('stat -c %i ex/s/f ex/t/dir')).trim().split('\n');
    const sumF = (await run('sha256sum < ex/s/f')).trim();
    const bin0 = await run('ls -A .trash | wc -l');
    if (fuseNative) {
      t.same(await renameat2('EXCHANGE:ex/s/f:ex/t/dir'), ['EINVAL'], 'libfuse 2 has no rename flags: EINVAL');
      t.equal((await run('stat -c %i ex/s/f')).trim(), f, 'nothing moved');
      return;
    }
    t.same(await renameat2('EXCHANGE:ex/s/f:ex/t/dir'), ['OK']);
    t.same((await run('stat -c %i:%F ex/s/f ex/t/dir')).trim().split('\n'), [`${dir}:directory`, `${f}:regular file`], 'each name has the other inode');
    t.equal((await run('sha256sum < ex/t/dir')).trim(), sumF, 'the file content, by checksum, under its new name');
    t.equal(await run('cat ex/s/f/inner'), 'inner', 'the directory took what it holds');
    t.same((await run('stat -c %h ex/s ex/t')).trim().split('\n'), ['3', '2'], "parents' link counts: the subdirectory moved from t to s");
    t.equal(await run('ls -A .trash | wc -l'), bin0, 'nothing replaced, nothing in the bin');
    t.same(await renameat2('EXCHANGE:ex/s/f:ex/t/dir'), ['OK'], 'and back');
    t.equal((await run('sha256sum < ex/s/f')).trim(), sumF);
  });

  t.test('RENAME_EXCHANGE: bound links follow their targets at once (the kernel holds readlink answers 60 s on ll)', async (t) => {
    await run('mkdir -p bl/x bl/y && printf jpeg > bl/x/photo.jpg && printf mp3 > bl/y/song.mp3');
    await run('ln -s x/photo.jpg bl/cover && ln -s ../y/song.mp3 bl/x/tune');
    // the kernel now holds both answers
    t.same((await run('readlink bl/cover bl/x/tune')).trim().split('\n'), ['x/photo.jpg', '../y/song.mp3']);
    if (fuseNative) {
      t.same(await renameat2('EXCHANGE:bl/x/photo.jpg:bl/y/song.mp3'), ['EINVAL']);
      return;
    }
    t.same(await renameat2('EXCHANGE:bl/x/photo.jpg:bl/y/song.mp3'), ['OK']);
    t.same((await run('readlink bl/cover bl/x/tune')).trim().split('\n'), ['y/song.mp3', 'photo.jpg'], 'each link names its target at its new place');
    t.equal(await run('cat bl/cover'), 'jpeg', 'and reads it');
    t.equal(await run('cat bl/x/tune'), 'mp3');
  });

  t.test('RENAME_EXCHANGE errnos: a missing name ENOENT, a directory and a name inside it EINVAL, with the bin EPERM; flags together EINVAL', async (t) => {
    await run('mkdir -p ee/d/sub && printf f > ee/g && printf x > ee/gone && rm ee/gone');
    const binned = (await run('ls .trash | grep -- -gone | head -1')).trim();
    t.ok(binned, 'an item in the bin to try');
    const calls = ['EXCHANGE:ee/g:ee/missing', 'EXCHANGE:ee/d:ee/d/sub', 'EXCHANGE:ee/d/sub:ee/d', `EXCHANGE:ee/g:.trash/${binned}`, 'WHITEOUT:ee/g:ee/h'];
    t.same(
      await renameat2(...calls),
      fuseNative ? ['ENOENT', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL'] : ['ENOENT', 'EINVAL', 'EINVAL', 'EPERM', 'EINVAL'],
      fuseNative ? 'the kernel answers what it knows; the rest is EINVAL' : 'as Linux answers them',
    );
    t.equal((await run('find ee | sort')).trim(), 'ee\nee/d\nee/d/sub\nee/g', 'nothing moved');
  });
}
