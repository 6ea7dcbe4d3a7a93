// Bad input through the kernel gets the exact POSIX errno and changes nothing; attributes,
// xattrs, special files and permissions for other users. The mount passes `-o allow_other` so a
// second user (nobody, via setpriv) can try things.
import t from 'tap';
import { fuseUnavailable, nodeSnippet, ok, sh, withMount } from './helpers/mount.js';
import { PYTHON } from './helpers/python.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const m = await withMount(t, { args: ['-o', 'allow_other'] });
  const mp = m.mountpoint;
  const run = (cmd: string) => ok(cmd, { cwd: mp });
  /** The errno name of each call (sync fs in a child process), or OK. */
  const errnos = async (...calls: string[]): Promise<string[]> =>
    JSON.parse(await nodeSnippet(`console.log(JSON.stringify([${calls.map((c) => `errno(() => { ${c} })`).join(',')}]))`, mp)) as string[];
  /** A listing of a subtree (names, types, sizes, link targets) to show nothing changed. */
  const snapshot = (dir: string) => run(`find '${dir}' -printf '%y %s %p %l\\n' | sort`);
  const py = (code: string) => ok(`${PYTHON} -`, { cwd: mp, input: `import os, sys\n${code}\n` });

  await run('mkdir -p bad/full/sub bad/empty && echo x > bad/full/f && echo y > bad/file && ln -s file bad/link');

  t.test('names over 255 bytes: ENAMETOOLONG, nothing made', async (t) => {
    const before = await snapshot('bad');
    const long = 'n'.repeat(256);
    const utf8 = 'é'.repeat(128); // 256 bytes in 128 characters
    t.same(
      await errnos(
        `fs.writeFileSync('bad/${long}', 'x')`,
        `fs.mkdirSync('bad/${long}')`,
        `fs.symlinkSync('file', 'bad/${long}')`,
        `fs.renameSync('bad/file', 'bad/${long}')`,
        `fs.writeFileSync('bad/${utf8}', 'x')`,
        `fs.mkdirSync('bad/${'d'.repeat(255)}'); fs.rmdirSync('bad/${'d'.repeat(255)}')`,
      ),
      ['ENAMETOOLONG', 'ENAMETOOLONG', 'ENAMETOOLONG', 'ENAMETOOLONG', 'ENAMETOOLONG', 'OK'],
      '256 bytes refused (also when UTF-8 makes it so); 255 is fine',
    );
    t.equal(await snapshot('bad'), before, 'nothing changed');
  });

  t.test('link targets over 4095 bytes: ENAMETOOLONG; 4095 is stored and read back exactly', async (t) => {
    const before = await snapshot('bad');
    const target4095 = ('abcdefg/'.repeat(512)).slice(0, 4095);
    t.same(await errnos(`fs.symlinkSync('${'t'.repeat(4096)}', 'bad/toolong')`, `fs.symlinkSync('${'t/'.repeat(2500)}', 'bad/toolong')`), ['ENAMETOOLONG', 'ENAMETOOLONG']);
    t.equal(await snapshot('bad'), before, 'nothing changed');
    t.same(await errnos(`fs.symlinkSync('${target4095}', 'bad/max')`), ['OK']);
    t.equal(await nodeSnippet("process.stdout.write(fs.readlinkSync('bad/max'))", mp), target4095);
    await run('rm bad/max');
  });

  t.test('writes into /.trash: EPERM, nothing changed', async (t) => {
    await run('echo gone > bad/trashme && rm bad/trashme');
    const item = (await run('ls .trash | grep -- -trashme')).trim();
    const before = await snapshot('.trash');
    t.same(
      await errnos(
        `fs.writeFileSync('.trash/${item}', 'x')`,
        `fs.appendFileSync('.trash/${item}', 'x')`,
        `fs.truncateSync('.trash/${item}', 0)`,
        `fs.unlinkSync('.trash/${item}')`,
        `fs.writeFileSync('.trash/new', 'x')`,
        `fs.mkdirSync('.trash/dir')`,
        `fs.symlinkSync('x', '.trash/l')`,
        `fs.renameSync('.trash/${item}', 'bad/back')`,
        `fs.renameSync('bad/file', '.trash/file')`,
        `fs.chmodSync('.trash/${item}', 0o600)`,
        `fs.utimesSync('.trash/${item}', 1, 1)`,
        `fs.rmdirSync('.trash')`,
        `fs.renameSync('.trash', 'bin')`,
      ),
      Array(13).fill('EPERM'),
    );
    t.equal(await snapshot('.trash'), before, 'nothing changed');
    t.equal((await run(`cat '.trash/${item}'`)).trim(), 'gone');
  });

  t.test('link(2): a directory EPERM, a taken name EEXIST (L17)', async (t) => {
    const before = await snapshot('bad');
    t.same(await errnos("fs.linkSync('bad/full', 'bad/hard')", "fs.linkSync('bad/file', 'bad/link')", "fs.linkSync('bad/link', 'bad/full')"), ['EPERM', 'EEXIST', 'EEXIST']);
    t.same(await errnos("fs.lstatSync('bad/hard')"), ['ENOENT']);
    t.equal(await snapshot('bad'), before, 'nothing changed');
  });

  t.test('rmdir of a non-empty directory: ENOTEMPTY, and the other rmdir/rename/unlink errnos', async (t) => {
    const before = await snapshot('bad');
    t.same(
      await errnos(
        "fs.rmdirSync('bad/full')",
        "fs.renameSync('bad/empty', 'bad/full')", // a directory over a non-empty one
        "fs.rmdirSync('bad/file')",
        "fs.unlinkSync('bad/full')",
        "fs.renameSync('bad/file', 'bad/empty')", // a file over a directory
        "fs.renameSync('bad/empty', 'bad/file')", // a directory over a file
        "fs.mkdirSync('bad/full')",
        "fs.writeFileSync('bad/file/x', '')",
        "fs.readFileSync('bad/nope')",
        "fs.openSync('bad/full', 'w')",
      ),
      ['ENOTEMPTY', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR', 'EISDIR', 'ENOTDIR', 'EEXIST', 'ENOTDIR', 'ENOENT', 'EISDIR'],
    );
    t.equal(await snapshot('bad'), before, 'nothing changed');
  });

  t.test('rename of a directory into its own subtree: EINVAL, nothing changed', async (t) => {
    const before = await snapshot('bad');
    t.same(await errnos("fs.renameSync('bad/full', 'bad/full/sub/inner')", "fs.renameSync('bad/full', 'bad/full/inner')"), ['EINVAL', 'EINVAL']);
    t.equal(await snapshot('bad'), before, 'nothing changed');
  });

  t.test('ELOOP through a link cycle', async (t) => {
    await run('ln -s loop-b bad/loop-a && ln -s loop-a bad/loop-b');
    t.same(await errnos("fs.readFileSync('bad/loop-a')"), ['ELOOP']);
    await run('rm bad/loop-a bad/loop-b');
  });

  t.test('chmod, chown, utimens, truncate are stored', async (t) => {
    await run('echo attrs > bad/attrs && chmod 640 bad/attrs && chown 1234:4321 bad/attrs && touch -d "2020-02-03 04:05:06.789" bad/attrs');
    t.equal((await run('stat -c "%a %u %g %y" bad/attrs')).trim(), '640 1234 4321 2020-02-03 04:05:06.789000000 +0000');
    await run('truncate -s 3 bad/attrs');
    t.equal((await run('cat bad/attrs')).trim(), 'att');
    await run('truncate -s 5 bad/attrs');
    t.equal(await run('od -An -c bad/attrs'), await ok("printf 'att\\0\\0' | od -An -c"), 'extended with zeros');
  });

  t.test('mode bits and owners are enforced for other users (default_permissions, allow_other)', async (t) => {
    await run('mkdir -p perm && chmod 755 perm && echo secret > perm/private && chmod 600 perm/private && echo open > perm/public && chmod 644 perm/public');
    const asNobody = (cmd: string) => sh(`setpriv --reuid=65534 --regid=65534 --clear-groups -- bash -c ${JSON.stringify(cmd)}`, { cwd: mp });
    t.equal((await asNobody('cat perm/public')).stdout.trim(), 'open');
    t.match((await asNobody('cat perm/private')).stderr, /Permission denied/, 'EACCES reading a 600 file of root');
    t.match((await asNobody('echo x > perm/public')).stderr, /Permission denied/, 'EACCES writing a 644 file of root');
    t.match((await asNobody('touch perm/new')).stderr, /Permission denied/, 'EACCES creating in a 755 dir of root');
    t.match((await asNobody('chmod 777 perm/public')).stderr, /Operation not permitted/, 'EPERM chmod by a non-owner');
    await run('mkdir perm/mine && chown 65534:65534 perm/mine');
    t.equal((await asNobody('echo hers > perm/mine/f && cat perm/mine/f')).stdout.trim(), 'hers', 'in a directory they own');
    t.equal((await run('stat -c "%u %g" perm/mine/f')).trim(), '65534 65534', 'a new node takes its parent directory\'s owner');
  });

  t.test('mknod: fifos, sockets and device nodes are metadata; a fifo works', async (t) => {
    await run('mkfifo bad/fifo && mknod bad/null c 1 3');
    t.equal((await run('stat -c "%F %t:%T" bad/fifo bad/null')).trim(), 'fifo 0:0\ncharacter special file 1:3');
    t.equal((await run('(echo through > bad/fifo &) ; cat bad/fifo')).trim(), 'through', 'the kernel runs the pipe');
    await run('rm bad/fifo bad/null');
  });

  t.test('xattrs: user.* is user metadata; user.smhfs.storage-class', async (t) => {
    await run('echo x > bad/meta');
    await py("os.setxattr('bad/meta', 'user.color', b'blue')\nos.setxattr('bad/meta', 'user.empty', b'')");
    t.equal((await py("print(os.getxattr('bad/meta', 'user.color').decode())")).trim(), 'blue');
    t.same(JSON.parse((await py("import json; print(json.dumps(sorted(os.listxattr('bad/meta'))))")).trim()), ['user.color', 'user.empty', 'user.smhfs.storage-class']);
    t.equal((await py("print(os.getxattr('bad/meta', 'user.smhfs.storage-class').decode())")).trim(), 'STANDARD');
    await py("os.setxattr('bad/meta', 'user.smhfs.storage-class', b'COLD')");
    t.equal((await py("print(os.getxattr('bad/meta', 'user.smhfs.storage-class').decode())")).trim(), 'COLD');
    const codes = async (code: string): Promise<string> =>
      (await py(`import errno\ntry:\n  ${code}\n  print('OK')\nexcept OSError as e:\n  print(errno.errorcode[e.errno])`)).trim();
    t.equal(await codes("os.getxattr('bad/meta', 'user.nope')"), 'ENODATA');
    t.equal(await codes("os.setxattr('bad/meta', 'user.color', b'red', os.XATTR_CREATE)"), 'EEXIST');
    t.equal(await codes("os.setxattr('bad/meta', 'user.other', b'red', os.XATTR_REPLACE)"), 'ENODATA');
    t.equal(await codes("os.setxattr('bad/meta', 'user.smhfs.storage-class', b'FROZEN')"), 'EINVAL');
    t.equal(await codes("os.setxattr('bad/meta', 'user.smhfs.link', b'bound')"), 'EPERM');
    t.match(await codes("os.setxattr('bad/meta', 'trusted.x', b'1')"), /^(ENOTSUP|EOPNOTSUPP)$/, 'ENOTSUP for other namespaces');
    t.equal(await codes("os.removexattr('bad/meta', 'user.color')"), 'OK');
    t.equal(await codes("os.getxattr('bad/meta', 'user.color')"), 'ENODATA');
    t.equal(await codes(`os.setxattr('.trash', 'user.x', b'1')`), 'EPERM');
  });

  t.test('statfs', async (t) => {
    const r = await run('stat -f -c "%l %T" .');
    t.equal(r.trim(), '255 fuseblk'.replace('fuseblk', r.trim().split(' ')[1]!), 'namemax 255');
    t.match(await run('df -P .'), /smhfs/);
  });
}
