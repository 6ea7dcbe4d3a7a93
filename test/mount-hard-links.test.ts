// Hard links through the kernel (SPEC L17–L19, issue 12), driven with the programs people run on
// a library: ln, stat -c %h, cp -al, rsync -aH, tar (preserving hard links and with
// --hard-dereference), git clone --local of a repository in the mount, and an editor-style
// open file whose other name is removed. Each test ends with checksums compared to what was
// written, and the suite with `smhfs fsck`.
import t from 'tap';
import { attrTimeout, fuseUnavailable, mountStats, nodeSnippet, ok, sh, storeCall, trashList, withMount } from './helpers/mount.js';
import { expectFsckClean } from './helpers/fsck.js';
import { PYTHON } from './helpers/python.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const m = await withMount(t);
  const mp = m.mountpoint;
  const run = (cmd: string) => ok(cmd, { cwd: mp });
  /** A kernel inode per name (fuse-native, libfuse 2's path API), as the mount itself reports its binding. */
  const namePerInode = (await mountStats<{ binding?: string }>(mp)).binding !== 'll';
  /** The inode number of each path, as `stat -c %i` prints it. */
  const inodes = async (...paths: string[]): Promise<string[]> =>
    (await run(`stat -c %i ${paths.map((p) => `'${p}'`).join(' ')}`)).trim().split('\n');
  /**
   * The link count of each path (`stat -c %h`), once the kernel's attribute cache of every name
   * has expired: through fuse-native (libfuse 2's path API) each name is its own kernel inode, so
   * a link or unlink by one name updates the others' cached attributes only after attr_timeout
   * (native-notes/hard-links.md; the libfuse 3 binding answers by inode and has no such delay:
   * there the counts are checked at once, ~8 s of waiting less per run).
   */
  const nlinks = async (...paths: string[]): Promise<number[]> => {
    if (namePerInode) await attrTimeout();
    return (await run(`stat -c %h ${paths.map((p) => `'${p}'`).join(' ')}`)).trim().split('\n').map(Number);
  };
  /** The errno name of each call (sync fs in a child process), or OK. */
  const errnos = async (...calls: string[]): Promise<string[]> =>
    JSON.parse(await nodeSnippet(`console.log(JSON.stringify([${calls.map((c) => `errno(() => { ${c} })`).join(',')}]))`, mp)) as string[];

  t.test('L17: ln makes a second name of the same inode; stat -c %h counts the names; ctime changes', async (t) => {
    await run('mkdir -p ln/sub && printf hello > ln/a.txt');
    const ctime0 = (await run('stat -c %z ln/a.txt')).trim();
    await attrTimeout();
    await run('ln ln/a.txt ln/sub/b.txt');
    const [a, b] = await inodes('ln/a.txt', 'ln/sub/b.txt');
    t.equal(a, b, 'one inode under both names');
    t.equal((await run('stat -c %h ln/sub/b.txt')).trim(), '2', 'st_nlink 2 through the new name at once');
    t.same(await nlinks('ln/a.txt', 'ln/sub/b.txt'), [2, 2], 'and through both');
    t.not((await run('stat -c %z ln/a.txt')).trim(), ctime0, 'POSIX: link(2) changes the ctime');
    t.equal(await run('cat ln/sub/b.txt'), 'hello');
    await run('ln ln/sub/b.txt ln/c.txt');
    t.same(await nlinks('ln/a.txt', 'ln/sub/b.txt', 'ln/c.txt'), [3, 3, 3], 'three names: %h 3 through every name');
    t.equal((await run('ls -l ln/a.txt')).split(/\s+/)[1], '3', 'ls -l shows the link count');
    t.equal((await run('find ln -samefile ln/a.txt | sort')).trim(), 'ln/a.txt\nln/c.txt\nln/sub/b.txt', 'find -samefile finds every name');
  });

  t.test('L17: link(2) errnos — a directory EPERM, an existing name EEXIST, into .trash EPERM, missing ENOENT', async (t) => {
    await run('mkdir -p le/d && echo x > le/f && echo y > le/g');
    t.same(
      await errnos(
        "fs.linkSync('le/d', 'le/d2')",
        "fs.linkSync('le/f', 'le/g')",
        "fs.linkSync('le/f', 'le/d')",
        "fs.linkSync('le/f', '.trash/f')",
        "fs.linkSync('le/missing', 'le/h')",
        "fs.linkSync('le/f', 'le/nodir/h')",
      ),
      ['EPERM', 'EEXIST', 'EEXIST', 'EPERM', 'ENOENT', 'ENOENT'],
    );
    t.equal((await run('ls le')).trim(), 'd\nf\ng', 'nothing was made');
    t.same(await nlinks('le/f'), [1]);
  });

  t.test('L18: rm of one name leaves the others, nothing in the bin; rm of the last name is a delete', async (t) => {
    await run('mkdir rm1 && printf keep > rm1/a && ln rm1/a rm1/b && ln -s a rm1/bound');
    const before = (await trashList(m)).length;
    await run('rm rm1/a');
    t.equal((await trashList(m)).length, before, 'nothing went to the bin');
    t.equal(await run('cat rm1/b'), 'keep', 'the content lives on');
    t.equal((await run('readlink rm1/bound')).trim(), 'b', 'the bound link names the surviving name (L19)');
    t.equal(await run('cat rm1/bound'), 'keep');
    t.same(await nlinks('rm1/b'), [1], 'one name left');
    await run('rm rm1/b');
    const items = await trashList(m);
    const item = items.find((i) => i.originalPath === 'rm1/b');
    t.ok(item, 'the last name goes to the bin (T1)');
    t.same(item?.links.map((l) => l.originalPath), ['rm1/bound'], 'with its bound link (L12)');
  });

  t.test('L18: mv over one of several names removes that name only; mv of two names of one file does nothing', async (t) => {
    await run('mkdir mv1 && printf old > mv1/a && ln mv1/a mv1/b && printf new > mv1/n');
    const before = (await trashList(m)).length;
    await run('mv mv1/n mv1/b');
    t.equal(await run('cat mv1/a mv1/b'), 'oldnew', 'a keeps the old content, b is the newcomer');
    t.equal((await trashList(m)).length, before, 'nothing went to the bin');
    await run('ln mv1/a mv1/c');
    const r = await errnos("fs.renameSync('mv1/a', 'mv1/c')");
    t.same(r, ['OK'], 'rename(2) of a name onto another name of the same file succeeds');
    t.equal((await run('ls mv1')).trim(), 'a\nb\nc', '…and changes nothing (POSIX)');
  });

  t.test('L19: writing through one name is seen through every name, open or not; an open file keeps its writes when another name goes', async (t) => {
    await run('mkdir w && printf one > w/a && ln w/a w/b && ln -s b w/l');
    await run('printf two > w/a');
    t.equal(await run('cat w/b w/l'), 'twotwo', 'O_TRUNC + write through a: seen through b and the bound link');
    // a process keeps w/b open for writing while another removes w/a: its writes are kept
    const out = await ok(`${PYTHON} -`, {
      cwd: mp,
      input: [
        'import os, subprocess',
        "fd = os.open('w/b', os.O_WRONLY | os.O_TRUNC)",
        "os.write(fd, b'three')",
        "subprocess.run(['rm', 'w/a'], check=True)",
        "os.write(fd, b'+four')",
        'os.close(fd)',
        "print(open('w/b').read())",
      ].join('\n'),
    });
    t.equal(out.trim(), 'three+four', 'every write kept: the file kept a name');
    t.equal(await run('cat w/l'), 'three+four');
  });

  t.test('cp -al makes a tree of hard links; the copies share inodes with the originals', async (t) => {
    await run('mkdir -p cpal/src/d && printf A > cpal/src/a && printf B > cpal/src/d/b && cp -al cpal/src cpal/snap');
    const [a, a2, b, b2] = await inodes('cpal/src/a', 'cpal/snap/a', 'cpal/src/d/b', 'cpal/snap/d/b');
    t.equal(a, a2, 'a: the same inode');
    t.equal(b, b2, 'd/b: the same inode');
    t.same(await nlinks('cpal/src/a', 'cpal/snap/d/b'), [2, 2]);
    // rsnapshot's rotation: remove the old snapshot; the originals stay
    await run('rm -r cpal/src');
    t.equal(await run('cat cpal/snap/a cpal/snap/d/b'), 'AB', 'removing one tree leaves the other whole');
    t.same(await nlinks('cpal/snap/a'), [1]);
  });

  t.test('rsync -aH keeps hard links (a copy into the mount and within it)', async (t) => {
    const src = await ok("mktemp -d /tmp/smhfs-hl-XXXXXX");
    t.teardown(() => sh(`rm -rf '${src.trim()}'`));
    const s = src.trim();
    await ok(`mkdir -p '${s}/tree/x' && printf data > '${s}/tree/f' && ln '${s}/tree/f' '${s}/tree/x/g' && printf solo > '${s}/tree/h'`);
    await run(`rsync -aH '${s}/tree/' rs/`);
    const [f, g, h] = await inodes('rs/f', 'rs/x/g', 'rs/h');
    t.equal(f, g, 'f and x/g are one inode in the mount');
    t.not(f, h);
    t.same(await nlinks('rs/f', 'rs/h'), [2, 1]);
    await run('rsync -aH rs/ rs2/');
    const [f2, g2] = await inodes('rs2/f', 'rs2/x/g');
    t.equal(f2, g2, 'rsync -aH inside the mount keeps them too');
    t.not(f2, f, 'a new inode, not the source');
    t.equal(await run('cat rs2/x/g'), 'data');
  });

  t.test('tar keeps hard links (archive from the mount, extract into it); --hard-dereference stores content twice', async (t) => {
    await run('mkdir -p tr/in && printf tarred > tr/in/one && ln tr/in/one tr/in/two');
    const listing = await run('tar -cvf - -C tr in | tar -tvf -');
    t.match(listing, /in\/two link to in\/one|in\/one link to in\/two/, 'the archive records the second name as a hard link');
    await run('mkdir tr/out && tar -cf - -C tr in | tar -xf - -C tr/out');
    const [one, two] = await inodes('tr/out/in/one', 'tr/out/in/two');
    t.equal(one, two, 'extracting into the mount makes one inode with two names');
    const deref = await run('tar --hard-dereference -cvf - -C tr in | tar -tvf -');
    t.notMatch(deref, / link to /, '--hard-dereference: no hard link entries');
    await run('mkdir tr/deref && tar --hard-dereference -cf - -C tr in | tar -xf - -C tr/deref');
    const [d1, d2] = await inodes('tr/deref/in/one', 'tr/deref/in/two');
    t.not(d1, d2, 'two files');
    t.equal(await run('cat tr/deref/in/two'), 'tarred');
  });

  t.test('git clone --local of a repository in the mount hard-links its objects and checks out', async (t) => {
    const env = 'GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@x GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@x';
    await run(`mkdir repo && cd repo && git init -q -b main && printf 'v1\\n' > f.txt && git add f.txt && ${env} git commit -qm one`);
    await run(`cd repo && printf 'v2\\n' > f.txt && ${env} git commit -qam two`);
    const r = await sh(`${env} git clone -q --local repo clone`, { cwd: mp });
    t.equal(r.code, 0, `git clone --local succeeds: ${r.stderr}`);
    t.equal(await run('cat clone/f.txt'), 'v2\n');
    t.equal((await run(`cd clone && ${env} git log --format=%s`)).trim(), 'two\none');
    t.equal((await run(`cd clone && ${env} git fsck --strict 2>&1; echo rc=$?`)).trim().split('\n').pop(), 'rc=0', 'git fsck finds the clone sound');
    const obj = (await run("cd repo && find .git/objects -type f -path '*/objects/??/*' | head -1")).trim();
    const [o1, o2] = await inodes(`repo/${obj}`, `clone/${obj}`);
    t.equal(o1, o2, 'an object file is one inode in both repositories (git hard-linked it)');
  });

  t.test('D4: fsck finds the library clean after all of the above', async (t) => {
    await storeCall(m, 'return space.stat("").id;'); // the library opens alongside the mount
    await expectFsckClean(t, m.library, {}, 'fsck with the mount running');
  });
}
