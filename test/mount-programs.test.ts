// Real programs against a real mount (served by a child process): cat, mv, rm, cp -a, stat,
// find -L, tar, an editor's atomic save on a linked file, git, and byte-exact large files.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseUnavailable, ok, sh, storeCall, withMount } from './helpers/mount.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const m = await withMount(t);
  const mp = m.mountpoint;
  const local = await mkdtemp(join(tmpdir(), 'smhfs-programs-'));
  t.teardown(() => rm(local, { recursive: true, force: true }));
  const run = (cmd: string) => ok(cmd, { cwd: mp });

  /** A tree with files, a nested dir, an empty dir, relative and absolute-outside links, a dangling link. */
  const makeTree = (dir: string) =>
    ok(
      `mkdir -p '${dir}/docs/nested' '${dir}/empty' && printf 'alpha\\n' > '${dir}/docs/a.txt' && ` +
        `head -c 300000 /dev/urandom > '${dir}/docs/nested/blob.bin' && chmod 640 '${dir}/docs/a.txt' && ` +
        `ln -s docs/a.txt '${dir}/link-a' && ln -s ../a.txt '${dir}/docs/nested/up' && ln -s /nonexistent '${dir}/dangling' && ` +
        `ln -s docs '${dir}/dirlink' && touch -d '2021-03-04 05:06:07' '${dir}/docs/a.txt'`,
    );

  t.test('cat, mv, rm, stat: identity survives rename', async (t) => {
    await run('mkdir basic && echo one > basic/f && cat basic/f');
    const ino = (await run('stat -c %i basic/f')).trim();
    await run('mkdir basic/sub && mv basic/f basic/sub/g');
    t.equal((await run('stat -c %i basic/sub/g')).trim(), ino, 'st_ino is the stable identity');
    t.equal((await run('cat basic/sub/g')).trim(), 'one');
    t.equal((await run('stat -c %F:%s:%a:%h basic/sub/g')).trim(), 'regular file:4:644:1');
    t.equal((await run('stat -c %h basic')).trim(), '3', 'directory nlink is 2 + subdirectories');
    await run('rm basic/sub/g && rmdir basic/sub');
    t.equal((await run('ls -A basic')).trim(), '');
  });

  t.test('cp -a preserves a tree with links, in and out of the mount', async (t) => {
    await makeTree(`${local}/src`);
    await ok(`cp -a '${local}/src' '${mp}/cpa'`);
    const listing = (dir: string) => ok(`cd '${dir}' && find . -printf '%y %m %p %l\\n' | sort`);
    t.equal(await listing(`${mp}/cpa`), await listing(`${local}/src`), 'types, modes, names and link targets');
    t.equal((await sh(`diff -r --no-dereference '${local}/src' '${mp}/cpa'`)).code, 0, 'contents');
    t.equal((await run('stat -c %y cpa/docs/a.txt')).trim().slice(0, 19), '2021-03-04 05:06:07', 'mtime kept');
    await ok(`cp -a '${mp}/cpa' '${local}/back'`);
    t.equal(await listing(`${local}/back`), await listing(`${local}/src`), 'and back out');
    t.equal((await sh(`cmp '${local}/src/docs/nested/blob.bin' '${local}/back/docs/nested/blob.bin'`)).code, 0);
  });

  t.test('utimens: atime and mtime are set separately (patched fuse-native), so cp -a and tar keep mtimes', async (t) => {
    await ok(`printf x > '${local}/times.txt' && touch -a -d '2001-01-01 01:01:01' '${local}/times.txt' && touch -m -d '2002-02-02 02:02:02' '${local}/times.txt'`);
    await ok(`cp -a '${local}/times.txt' '${mp}/times.txt'`);
    t.equal((await run('stat -c %y times.txt')).trim().slice(0, 19), '2002-02-02 02:02:02', 'mtime is the source mtime, not its atime');
    t.equal((await run('stat -c %x times.txt')).trim().slice(0, 19), '2001-01-01 01:01:01', 'atime is the source atime');
    await run(`touch -d '2003-03-03 03:03:03' times.txt`);
    t.equal((await run('stat -c %y times.txt')).trim().slice(0, 19), '2003-03-03 03:03:03');
  });

  t.test('find -L follows links through the mount', async (t) => {
    await makeTree(`${mp}/findl`);
    const out = (await run('find -L findl -type f 2>/dev/null | sort')).trim().split('\n');
    t.same(out, ['findl/dirlink/a.txt', 'findl/dirlink/nested/blob.bin', 'findl/dirlink/nested/up', 'findl/docs/a.txt', 'findl/docs/nested/blob.bin', 'findl/docs/nested/up', 'findl/link-a'].sort());
    t.equal((await run('find findl -type l | sort')).trim(), ['findl/dangling', 'findl/dirlink', 'findl/docs/nested/up', 'findl/link-a'].sort().join('\n'));
  });

  t.test('tar: create from and extract into the mount, links included', async (t) => {
    await makeTree(`${mp}/tarsrc`);
    await ok(`tar -cf '${local}/t.tar' -C '${mp}' tarsrc`);
    await run('mkdir tarx');
    await ok(`tar -xpf '${local}/t.tar' -C '${mp}/tarx'`);
    const listing = (dir: string) => ok(`cd '${dir}' && find . -printf '%y %m %p %l\\n' | sort`);
    t.equal(await listing(`${mp}/tarx/tarsrc`), await listing(`${mp}/tarsrc`));
    t.equal((await sh(`diff -r --no-dereference '${mp}/tarsrc' '${mp}/tarx/tarsrc'`)).code, 0);
    const tv = (await ok(`tar -tvf '${local}/t.tar'`)).split('\n').filter((l) => l.includes('->'));
    t.equal(tv.length, 4, 'four links in the archive');
    // Extracted links whose target existed when tar made them are bound links (L1).
    t.same(
      await storeCall(m, "return ['tarx/tarsrc/link-a', 'tarx/tarsrc/dangling'].map((p) => space.stat(p).link.flavour);"),
      ['bound', 'path'],
    );
  });

  t.test('an editor-style atomic save (x.tmp, then mv x.tmp x) on a linked file', async (t) => {
    await run('mkdir edit && echo draft > edit/doc.txt && ln -s doc.txt edit/link && mkdir edit/other && ln -s ../doc.txt edit/other/l2');
    const ino = (await run('stat -c %i edit/doc.txt')).trim();
    await run('printf "final\\n" > edit/doc.txt.tmp && mv edit/doc.txt.tmp edit/doc.txt');
    t.equal((await run('cat edit/link edit/other/l2')).trim(), 'final\nfinal', 'both links show the saved content (L10)');
    t.equal((await run('readlink edit/link')).trim(), 'doc.txt');
    t.same(await storeCall(m, "return ['edit/link', 'edit/other/l2'].map((p) => space.stat(p).link.flavour);"), ['bound', 'bound']);
    t.not((await run('stat -c %i edit/doc.txt')).trim(), ino, 'the name now holds the new node (rename semantics)');
    t.equal((await run('ls -A edit')).trim(), 'doc.txt\nlink\nother', 'no temp file left');
  });

  t.test('git: init, commit files and a symlink, status clean, git mv', async (t) => {
    // The committed link points at a directory, so it is a path link (L1) and behaves exactly as
    // in POSIX. (A link to a file would be bound: git mv of its target would change what the
    // link reads, which is the point of smhfs but not what git expects.)
    const git = 'git -c user.name=smhfs -c user.email=smhfs@example.invalid -c init.defaultBranch=main -c core.fsync=committed';
    await run('mkdir repo');
    const g = (cmd: string) => ok(`${git} ${cmd}`, { cwd: `${mp}/repo` });
    await g('init -q');
    await ok('mkdir src && printf "print(1)\\n" > src/main.py && printf "# readme\\n" > README.md && ln -s src code', { cwd: `${mp}/repo` });
    await g('add -A');
    await g('commit -q -m first');
    t.equal((await g('status --porcelain')).trim(), '', 'clean after commit');
    t.equal((await g('ls-files -s code')).split(' ')[0], '120000', 'the link is committed as a symlink');
    await g('mv README.md README.txt');
    await g('mv src/main.py src/app.py');
    await g('commit -q -m moved');
    t.equal((await g('status --porcelain')).trim(), '', 'clean after git mv');
    t.equal((await g('log --oneline')).trim().split('\n').length, 2);
    t.equal((await ok('cat code/app.py', { cwd: `${mp}/repo` })).trim(), 'print(1)', 'through the link');
    await g('checkout -q HEAD~1');
    t.equal((await ok('cat code/main.py README.md', { cwd: `${mp}/repo` })).trim(), 'print(1)\n# readme', 'checkout restores the tree');
    t.equal((await g('status --porcelain')).trim(), '', 'clean after checkout');
    t.equal((await g('fsck --no-progress 2>&1')).trim(), '', 'git fsck is happy');
  });

  t.test('large files: byte-exact writes, partial overwrites, appends, read-your-writes', async (t) => {
    await ok(`head -c 20000000 /dev/urandom > '${local}/big'`);
    await ok(`cp '${local}/big' '${mp}/big'`);
    t.equal((await sh(`cmp '${local}/big' '${mp}/big'`)).code, 0, 'cp in, read back');
    for (const [seek, count] of [[3, 2], [0, 1], [19, 4]] as const) {
      const patch = `dd if=/dev/urandom of='${local}/patch' bs=1000000 count=${count} status=none && ` +
        `for f in '${local}/big' '${mp}/big'; do dd if='${local}/patch' of="$f" bs=1000000 seek=${seek} conv=notrunc status=none; done`;
      await ok(patch);
      t.equal((await sh(`cmp '${local}/big' '${mp}/big'`)).code, 0, `overwrite ${count} MB at ${seek} MB`);
    }
    await ok(`printf tail | tee -a '${local}/big' >> '${mp}/big'`);
    t.equal((await sh(`cmp '${local}/big' '${mp}/big'`)).code, 0, 'append');
    // B5: the key and ETag a commit records (hashed on the worker while appending, or from the
    // staged file after the overwrites above) are the SHA-256 and MD5 of the bytes.
    const hashes = async (name: string, file: string) => {
      const info = (await storeCall(m, `return space.stat(${JSON.stringify(name)})`)) as { blob: string; etag: string };
      const [sha, md5] = (await ok(`sha256sum < '${file}' && md5sum < '${file}'`)).split('\n').map((l) => l.split(' ')[0]);
      t.same({ blob: info.blob, etag: info.etag }, { blob: sha, etag: md5 }, `${name}: blob key = SHA-256, ETag = MD5 of its bytes`);
    };
    await hashes('big', `${local}/big`);
    await ok(`dd if='${local}/big' of='${mp}/streamed' bs=128k status=none`);
    await hashes('streamed', `${local}/big`);
    // One process keeps the file open for writing while another reads it.
    const r = await ok(`exec 3<>'${mp}/rw'; printf 'staged' >&3; cat '${mp}/rw'; echo; stat -c %s '${mp}/rw'; exec 3>&-; cat '${mp}/rw'`);
    t.equal(r, 'staged\n6\nstaged', 'read-your-writes while open, committed on close');
  });
}
