// Issue 9 through the mount, names and mount plumbing:
// - D5 (reproducer 3): names and link targets that are not valid UTF-8 are refused with EILSEQ by
//   every program, before anything is made; two names never become one; valid UTF-8 works;
// - D11: df -i shows sane inode numbers;
// - item 11: `mount -o bogus_option` names the option and leaves no dead mount behind.
// Each ends with `smhfs fsck` and the checksums of every earlier file.
import t from 'tap';
import { expectFsckClean, expectSameFiles, sha256Tree } from './helpers/fsck.js';
import { cleanup, fuseUnavailable, isMounted, nodeSnippet, ok, sh, smhfs, startMount, withMount } from './helpers/mount.js';

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  t.test('D5: names and link targets that are not UTF-8 are refused with EILSEQ, never altered (reproducer 3)', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m));
    await ok(`cd '${m.mountpoint}' && echo one > one && echo two > two && mkdir d && echo three > d/three`);
    const before = await sha256Tree(m.mountpoint);
    // Each of these used to succeed with the bad bytes replaced by U+FFFD: the two cp's made ONE
    // file 'caf\uFFFD.txt' and the first file's bytes were gone.
    const refused = [
      `cp one $'caf\\xe9.txt'`,
      `cp two $'caf\\xe8.txt'`,
      `touch $'x\\xff'`,
      `mkdir $'dir\\xc3'`,
      `mkdir d/$'sub\\xed\\xa0\\x80'`, // an encoded surrogate: not UTF-8 either
      `ln -s one $'link\\xe9'`,
      `ln -s $'target\\xe9' lnk`,
      `mv one $'moved\\xe9'`,
      `mv d/three $'d/three\\xc0\\xaf'`, // an overlong '/'
      `mkfifo $'fifo\\xe9'`,
      `echo x > $'redirect\\xf5\\x80\\x80\\x80'`, // above U+10FFFF
    ];
    for (const cmd of refused) {
      const r = await sh(cmd, { cwd: m.mountpoint });
      t.not(r.code, 0, `refused: ${cmd}`);
      t.match(r.stderr, /Invalid or incomplete multibyte or wide character/, `EILSEQ: ${cmd}`);
    }
    // The same through the system calls, with raw bytes (Node passes Buffer paths unchanged).
    const calls = await nodeSnippet(
      `const bad = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('.txt')]);` +
        `console.log([errno(() => fs.openSync(bad, 'w')), errno(() => fs.statSync(bad)), errno(() => fs.renameSync('two', bad)),` +
        ` errno(() => fs.symlinkSync(bad, 'ok-link')), errno(() => fs.mkdirSync(bad))].join(' '))`,
      m.mountpoint,
    );
    t.equal(calls, 'EILSEQ EILSEQ EILSEQ EILSEQ EILSEQ', 'open, stat, rename, symlink (target), mkdir');
    const names = await nodeSnippet(`console.log(fs.readdirSync('.', { encoding: 'buffer' }).map((n) => n.toString('hex')).join(' '))`, m.mountpoint);
    t.same(names.split(' ').sort(), ['.trash', 'd', 'one', 'two'].map((n) => Buffer.from(n).toString('hex')).sort(), 'nothing was made, nothing renamed');
    t.notOk(/efbfbd/.test(names), 'no name holds U+FFFD');
    expectSameFiles(t, before, await sha256Tree(m.mountpoint), 'both earlier files');

    // Valid UTF-8, including 4-byte characters, works as before.
    await ok(`cd '${m.mountpoint}' && cp one café.txt && ln -s café.txt 🔗 && mkdir -p 目录/ü && mv two 目录/ü/two`);
    t.equal(await ok(`readlink '${m.p('🔗')}'`), 'café.txt\n');
    t.equal(await ok(`cat '${m.p('🔗')}' '${m.p('目录/ü/two')}'`), 'one\ntwo\n');
    t.equal(await m.stop(), 0);
    await expectFsckClean(t, m.library);
  });

  t.test('D11: df -i shows sane inode counts (used = files - free, none negative)', async (t) => {
    const m = await withMount(t);
    await ok(`cd '${m.mountpoint}' && mkdir a b && touch a/1 a/2 b/3 && ln -s a/1 l`);
    const [total, used, free] = (await ok(`df --output=itotal,iused,iavail '${m.mountpoint}' | tail -1`)).trim().split(/\s+/).map(Number) as [number, number, number];
    t.ok(used >= 0 && free >= 0 && total > 0, `no negative counts (${total} ${used} ${free})`);
    t.equal(total - free, used, 'used = total - free');
    // Root, bin, a, b, 1, 2, 3, l: the space's nodes.
    t.equal(used, 8, 'used inodes are the nodes of the space');
    const st = await ok(`stat -f -c '%c %d' '${m.mountpoint}'`);
    t.equal(st.trim(), `${total} ${free}`, 'statfs agrees with df');
  });

  t.test('issue 9 item 11: mount -o bogus_option names the option and leaves no dead mount', async (t) => {
    const m = await withMount(t);
    t.equal(await m.stop(), 0);
    const bogus = await smhfs(['mount', m.mountpoint, '--library', m.library, '-o', 'bogus_option']);
    t.equal(bogus.code, 1);
    t.match(bogus.stderr, /unknown mount option 'bogus_option'/, 'the error names the option');
    t.equal(await isMounted(m.mountpoint), false, 'nothing is mounted');
    t.equal((await sh(`stat '${m.mountpoint}'`)).code, 0, 'the mountpoint is a plain directory (no ENOTCONN)');
    // A value libfuse itself refuses, after the kernel mount is made: unmounted again at once.
    const badValue = await smhfs(['mount', m.mountpoint, '--library', m.library, '-o', 'allow_other,uid=abc']);
    t.equal(badValue.code, 1);
    t.match(badValue.stderr, /libfuse refused the mount options -o allow_other,uid=abc/);
    t.match(badValue.stderr, /invalid parameter in option `uid=abc'/, "libfuse's own message says which");
    t.equal(await isMounted(m.mountpoint), false, 'nothing is mounted');
    t.equal((await sh(`stat '${m.mountpoint}'`)).code, 0, 'no ENOTCONN');
    const again = await startMount({ dir: m.dir, args: ['-o', 'noatime'] });
    t.teardown(() => cleanup(again));
    t.ok(await isMounted(again.mountpoint), 'a good option mounts');
  });
}
