// The libfuse 3 low-level binding, op by op, through real programs (coreutils, util-linux,
// test/helpers/ll-probe.c) in child processes, on the in-memory file system of
// test/helpers/ll-memfs.ts — answered synchronously and, for the core suite, through Promises.
import t from 'tap';
import { MemFs } from './helpers/ll-memfs.js';
import { asUser, llMount, llUnavailable, ok, probe, sh } from './helpers/ll.js';

const why = await llUnavailable();
if (why) {
  t.plan(0, `binding tests need FUSE: ${why}`);
} else {
  for (const mode of ['sync', 'async'] as const) {
    t.test(`files, directories, links and data through coreutils (${mode} answers)`, async (t) => {
      const fs = new MemFs({ async: mode === 'async' });
      const m = await llMount(t, fs);
      const mp = m.mountpoint;
      t.equal(await ok(`cd '${mp}' && mkdir -p a/b && echo hello > a/b/f && cat a/b/f`), 'hello\n', 'mkdir, create, write, read');
      t.equal(await ok(`cd '${mp}' && ln -s b/f a/l && readlink a/l && cat a/l`), 'b/f\nhello\n', 'symlink, readlink, follow');
      const [orig, hard] = (await ok(`cd '${mp}' && ln a/b/f a/hard && stat -c '%h %i' a/b/f a/hard`)).trim().split('\n');
      t.equal(orig, hard, 'a hard link: the same node');
      t.match(orig, /^2 /, 'nlink 2');
      t.equal(await ok(`cd '${mp}' && mv a/b/f a/g && ls a && cat a/g`), 'b\ng\nhard\nl\nhello\n', 'rename');
      t.equal(await ok(`cd '${mp}' && chmod 640 a/g && stat -c '%a' a/g`), '640\n', 'chmod');
      t.equal(await ok(`cd '${mp}' && chown 1234:5678 a/g && stat -c '%u:%g' a/g`), '1234:5678\n', 'chown');
      t.equal(await ok(`cd '${mp}' && truncate -s 3 a/g && cat a/g && truncate -s 6 a/g && od -An -c a/g`), 'hel   h   e   l  \\0  \\0  \\0\n', 'truncate down, then up with zeros');
      // 3 MiB of random bytes, written in odd sizes, read back whole
      const sum = await ok(`cd '${mp}' && head -c 3145728 /dev/urandom > .src && sha256sum < .src && dd if=.src of=data bs=100000 status=none && sha256sum < data && cat data data > twice && stat -c %s twice`);
      const [a, b, size] = sum.trim().split('\n');
      t.equal(a, b, 'the bytes read back are the bytes written');
      t.equal(size, String(2 * 3145728));
      t.equal(await ok(`cd '${mp}' && printf 'x' >> data && stat -c %s data`), '3145729\n', 'O_APPEND');
      t.equal((await sh(`cd '${mp}' && rmdir a`)).stderr.includes('Directory not empty'), true, 'rmdir of a non-empty directory: ENOTEMPTY');
      t.equal(await ok(`cd '${mp}' && rm -r a data twice .src && ls -A`), '', 'rm -r leaves nothing');
      t.same(fs.violations, [], 'no lookup count went negative, no unknown handle');
    });
  }

  t.test('utimensat: nanoseconds, one time alone (UTIME_OMIT), UTIME_NOW', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    const f = m.p('f');
    await ok(`touch '${f}'`);
    t.equal(await probe(['utimens', f, '1000000000', '123456789', '1100000000', '987654321']), 'OK');
    t.equal(await ok(`stat -c '%X.%x|%Y.%y' '${f}'`), '1000000000.2001-09-09 01:46:40.123456789 +0000|1100000000.2004-11-09 11:33:20.987654321 +0000\n', 'both times, to the nanosecond');
    t.equal(await probe(['utimens', f, '0', 'omit', '1200000000', '5']), 'OK');
    t.equal(await ok(`stat -c '%x|%y' '${f}'`), '2001-09-09 01:46:40.123456789 +0000|2008-01-10 21:20:00.000000005 +0000\n', 'UTIME_OMIT keeps atime, mtime set alone');
    t.equal(await probe(['utimens', f, '1300000000', '7', '0', 'omit']), 'OK');
    t.equal(await ok(`stat -c '%x|%y' '${f}'`), '2011-03-13 07:06:40.000000007 +0000|2008-01-10 21:20:00.000000005 +0000\n', 'atime set alone, mtime kept');
    const before = Math.floor(Date.now() / 1000) - 1;
    t.equal(await probe(['utimens', f, '0', 'now', '0', 'now']), 'OK');
    const [x, y] = (await ok(`stat -c '%X %Y' '${f}'`)).trim().split(' ').map(Number);
    t.ok(x! >= before && y! >= before, 'UTIME_NOW sets the current time');
    t.equal(await ok(`touch -m -d '2001-02-03 04:05:06.5' '${f}' && stat -c '%y' '${f}'`), '2001-02-03 04:05:06.500000000 +0000\n', 'touch -m');
  });

  t.test('rename flags: RENAME_NOREPLACE, RENAME_EXCHANGE; others EINVAL', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    await ok(`cd '${m.mountpoint}' && echo A > a && echo B > b && mkdir d`);
    t.equal(await probe(['renameat2', m.p('a'), m.p('b'), '1']), 'EEXIST', 'NOREPLACE onto an existing name');
    t.equal(await probe(['renameat2', m.p('a'), m.p('c'), '1']), 'OK', 'NOREPLACE onto a free name');
    t.equal(await probe(['renameat2', m.p('c'), m.p('b'), '2']), 'OK', 'EXCHANGE');
    t.equal(await ok(`cat '${m.p('b')}' '${m.p('c')}'`), 'A\nB\n', 'the two names swapped their files');
    t.equal(await probe(['renameat2', m.p('b'), m.p('d'), '2']), 'OK', 'EXCHANGE of a file and a directory');
    t.equal(await ok(`stat -c %F '${m.p('b')}' '${m.p('d')}'`), 'directory\nregular file\n');
    t.equal(await probe(['renameat2', m.p('c'), m.p('zz'), '2']), 'ENOENT', 'EXCHANGE needs both');
    t.equal(await probe(['renameat2', m.p('c'), m.p('zz'), '4']), 'EINVAL', 'RENAME_WHITEOUT is not supported: EINVAL');
    t.equal(await probe(['renameat2', m.p('b'), m.p('b/inside'), '0']), 'EINVAL', 'a directory cannot move into itself');
  });

  t.test('xattrs: set, get, list, remove; XATTR_CREATE/REPLACE; exact size probes and ERANGE', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    const f = m.p('f');
    await ok(`touch '${f}'`);
    t.equal(await probe(['setxattr', f, 'user.colour', 'blue', '0']), 'OK');
    t.equal(await probe(['setxattr', f, 'user.colour', 'red', '1']), 'EEXIST', 'XATTR_CREATE on an existing name');
    t.equal(await probe(['setxattr', f, 'user.shape', 'round', '2']), 'ENODATA', 'XATTR_REPLACE of a missing name');
    t.equal(await probe(['setxattr', f, 'user.shape', 'round', '1']), 'OK');
    t.equal(await probe(['getxattr', f, 'user.colour', '0']), '4', 'size probe: the exact length');
    t.equal(await probe(['getxattr', f, 'user.colour', '4']), '4:blue', 'a buffer of exactly that size');
    t.equal(await probe(['getxattr', f, 'user.colour', '3']), 'ERANGE', 'one byte short: ERANGE, never truncated');
    t.equal(await probe(['getxattr', f, 'user.none', '10']), 'ENODATA');
    t.equal(await probe(['listxattr', f, '0']), '23', 'list size probe (user.colour\\0user.shape\\0)');
    t.equal(await probe(['listxattr', f, '23']), '23:user.colour,user.shape,');
    t.equal(await probe(['listxattr', f, '22']), 'ERANGE');
    t.equal(await probe(['removexattr', f, 'user.colour']), 'OK');
    t.equal(await probe(['removexattr', f, 'user.colour']), 'ENODATA');
    t.equal(await probe(['listxattr', f, '100']), '11:user.shape,');
  });

  t.test('mknod (fifo, character device), statfs, fallocate, copy_file_range, SEEK_DATA/SEEK_HOLE, fsync, fsyncdir', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    const mp = m.mountpoint;
    t.equal(await ok(`cd '${mp}' && mkfifo p && mknod c c 1 3 && stat -c '%F %t:%T' p c`), 'fifo 0:0\ncharacter special file 1:3\n');
    const df = (await ok(`stat -f -c '%S %b %l' '${mp}'`)).trim();
    t.equal(df, '4096 1048576 255', 'statfs: block size, blocks, name length');
    t.equal(await ok(`cd '${mp}' && fallocate -l 1048576 big && stat -c %s big`), '1048576\n', 'fallocate extends');
    t.equal(await ok(`cd '${mp}' && fallocate -n -l 2097152 big && stat -c %s big`), '1048576\n', 'FALLOC_FL_KEEP_SIZE keeps the size');
    await ok(`cd '${mp}' && head -c 8192 /dev/urandom | tr '\\000' x > src && head -c 8192 /dev/zero | tr '\\000' y > punched`);
    t.equal(await ok(`cd '${mp}' && fallocate -p -o 4096 -l 4096 punched && od -An -c -j 4095 -N 2 punched`), '   y  \\0\n', 'a punched hole reads zeros');
    t.equal(await probe(['copy', m.p('src'), m.p('copy'), '8192']), '8192', 'copy_file_range copies in the file system');
    t.ok((fs.calls.get('copyFileRange') ?? 0) >= 1, 'the copy was one request to us');
    t.equal(await ok(`cmp '${m.p('src')}' '${m.p('copy')}' && echo same`), 'same\n');
    t.equal(await probe(['seek', m.p('src'), '100', 'data']), '100', 'SEEK_DATA');
    t.equal(await probe(['seek', m.p('src'), '100', 'hole']), '8192', 'SEEK_HOLE: the end');
    t.equal(await probe(['seek', m.p('src'), '9000', 'data']), 'ENXIO', 'past the end: ENXIO');
    const fsyncs = fs.calls.get('fsync') ?? 0;
    await ok(`cd '${mp}' && dd if=/dev/zero of=synced bs=4k count=1 conv=fsync status=none`);
    t.ok((fs.calls.get('fsync') ?? 0) > fsyncs, 'fsync reached us');
    t.equal(await probe(['fsyncdir', mp]), 'OK');
    t.ok((fs.calls.get('fsyncdir') ?? 0) >= 1, 'fsyncdir reached us');
  });

  t.test('atomic_o_trunc: O_TRUNC comes with open, not as a separate truncate', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    await ok(`echo first > '${m.p('f')}'`);
    const setattrs = fs.calls.get('setattr') ?? 0;
    t.equal(await ok(`echo 2nd > '${m.p('f')}' && cat '${m.p('f')}'`), '2nd\n');
    t.equal(fs.calls.get('setattr') ?? 0, setattrs, 'no setattr for the truncation');
    t.ok(m.session.info().want & 8, 'FUSE_CAP_ATOMIC_O_TRUNC negotiated');
  });

  t.test('D5: a name that is not UTF-8 is refused (EILSEQ) before it reaches the file system', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    const r = await sh(`cd '${m.mountpoint}' && touch $'caf\\xe9' ; echo "rc=$?"`);
    t.match(r.stdout + r.stderr, /Invalid or incomplete multibyte or wide character/);
    t.match(r.stdout, /rc=1/);
    const r2 = await sh(`cd '${m.mountpoint}' && ln -s $'t\\xff' link`);
    t.match(r2.stderr, /Invalid or incomplete multibyte/, 'a symlink target too');
    t.equal(await ok(`cd '${m.mountpoint}' && touch 'café ✓' && ls`), 'café ✓\n', 'valid UTF-8 passes unchanged');
    t.equal(fs.calls.get('create'), 1, 'only the valid name reached create');
  });

  t.test('readdir and readdirplus: large directories arrive whole, in pieces', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    const long = 'n'.repeat(200);
    await ok(`cd '${m.mountpoint}' && mkdir d && cd d && for i in $(seq 1 600); do : > ${long}$i; done`);
    t.equal(await ok(`ls -f '${m.p('d')}' | wc -l`), '602\n', 'ls -f: all 600 names plus . and ..');
    t.equal(await ok(`ls -l '${m.p('d')}' | grep -c '^-rw'`), '600\n', 'ls -l: all 600 with attributes');
    t.ok((fs.calls.get('readdirplus') ?? 0) + (fs.calls.get('readdir') ?? 0) > 4, 'in several requests');
    t.same(fs.violations, []);
  });

  t.test('access is asked when the kernel does not check permissions itself (no default_permissions)', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs, { defaultPermissions: false, allowOther: true });
    await ok(`cd '${m.mountpoint}' && echo s > secret && chmod 600 secret && echo p > public && chmod 644 public`);
    t.equal((await asUser(1234, 1234, `test -r '${m.p('secret')}'`)).code, 1, 'not readable for another user');
    t.equal((await asUser(1234, 1234, `test -r '${m.p('public')}'`)).code, 0, 'readable');
    t.equal(fs.lastCtx.get('access')?.uid, 1234, 'the access request carried the caller');
  });

  t.test('mount options: fsname and subtype in the mount table, ro, and other users kept out without allow_other', async (t) => {
    const fs = new MemFs();
    fs.addFile('f', Buffer.from('content\n'));
    const m = await llMount(t, fs, { fsname: 'myfs', subtype: 'mytype', readOnly: true });
    t.match(await ok(`grep ' ${m.mountpoint} ' /proc/mounts`), new RegExp(`^myfs ${m.mountpoint} fuse\\.mytype ro,`));
    t.equal(await ok(`cat '${m.p('f')}'`), 'content\n');
    t.match((await sh(`touch '${m.p('g')}'`)).stderr, /Read-only file system/);
    t.match((await asUser(1234, 1234, `ls '${m.mountpoint}'`)).stderr, /Permission denied/, 'another user: EACCES');
    t.equal(fs.calls.get('create') ?? 0, 0);
  });
}
