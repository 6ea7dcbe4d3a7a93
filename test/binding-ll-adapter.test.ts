// smhfs on our libfuse 3 binding (issue 11 phase 2, M1/M2): what the inode adapter adds to the
// mount tests every binding runs (test/mount-*.test.ts run on both; the POSIX suite has an
// smhfs-ll column): st_ino is the node id, the kernel's lookup references come back, new nodes
// belong to the caller, one time can change alone, the binding is named and chosen as asked.
import t from 'tap';
import { holdKernelCachesFor } from './helpers/kernel-cache-lock.js';
import { expectFsckClean } from './helpers/fsck.js';
import { cli, fuseUnavailable, ok, sh, smhfs, withMount } from './helpers/mount.js';
import { PYTHON } from './helpers/python.js';

const why = await fuseUnavailable();
// drop_caches is machine-wide: each subtest that drops the kernel's caches or relies on them
// holds a lock from that step to its end (helpers/kernel-cache-lock.ts); the rest runs beside any file.
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  const stats = async (mp: string): Promise<Record<string, unknown>> => JSON.parse((await smhfs(['stats', mp, '--json'])).stdout) as Record<string, unknown>;

  t.test('M1: --binding ll is named by smhfs stats; st_ino is the node id, the root is 1', async (t) => {
    const m = await withMount(t, { args: ['--binding', 'll'] });
    await ok(`cd '${m.mountpoint}' && mkdir -p a/b && echo hi > a/b/f && ln -s f a/b/l`);
    const s = await stats(m.mountpoint);
    t.equal(s['binding'], 'll');
    for (const p of ['a', 'a/b', 'a/b/f', 'a/b/l']) {
      const id = (JSON.parse((await cli(m, ['--json', 'stat', p])).stdout) as { id: number }).id;
      t.equal(Number((await ok(`stat -c %i '${m.p(p)}'`)).trim()), id, `${p}: st_ino = node id ${id}`);
    }
    t.equal((await ok(`stat -c %i '${m.mountpoint}'`)).trim(), '1', 'the root answers as FUSE_ROOT_ID');
    t.equal((await ok(`ls -i '${m.p('a/b')}' | sort -k2`)).trim().split('\n').length, 2, 'readdir answers both entries');
    await m.stop();
    await expectFsckClean(t, m.library);
  });

  t.test('B1 (issue 16): a local blob is read from its own file — bytes exact at every offset, the page cache untouched; a file deleted while open still reads its bytes', async (t) => {
    const m = await withMount(t, { args: ['--binding', 'll'] });
    // 3 MiB + 5 bytes: reads cross 1 MiB requests and end short at EOF.
    await ok(`head -c 3145733 /dev/urandom > '${m.dir}/src.bin' && cp '${m.dir}/src.bin' '${m.p('f.bin')}'`);
    await holdKernelCachesFor(t); // it drops them from here on
    await ok('sync; echo 3 > /proc/sys/vm/drop_caches');
    t.equal(await ok(`md5sum < '${m.p('f.bin')}'`), await ok(`md5sum < '${m.dir}/src.bin'`), 'a whole read is exact');
    const probe =
      "import os,sys\n" +
      "a=open(sys.argv[1],'rb',buffering=0); b=open(sys.argv[2],'rb')\n" +
      "bad=0\n" +
      "for off,n in [(0,1),(4095,2),(1048575,4097),(3145728,100),(3145733,10),(5000000,10),(2000000,1048576)]:\n" +
      "  a.seek(off); b.seek(off)\n" +
      "  if a.read(n)!=b.read(n): bad+=1; print('differs at',off,n)\n" +
      "print('bad',bad)\n";
    await ok(`cat > '${m.dir}/probe.py' <<'PY'\n${probe}PY`);
    await ok('sync; echo 3 > /proc/sys/vm/drop_caches');
    t.equal((await ok(`${PYTHON} '${m.dir}/probe.py' '${m.p('f.bin')}' '${m.dir}/src.bin'`)).trim(), 'bad 0', 'reads at odd offsets and past the end are exact');
    const st = await stats(m.mountpoint);
    const cache = st['cache'] as { bytesFetched: number; misses: number };
    t.equal(cache.bytesFetched, 0, 'no byte was copied through the page cache');
    // The descriptor answers are spliced (file → pipe → kernel), not copied through libfuse's buffer.
    t.match(st['mountOptions'], /[ ,]splice_write(,|$)/, `a local store mounts with splice (${String(st['mountOptions'])})`);
    t.equal(cache.misses, 0, 'no page-cache miss');
    // D7: a file removed while open keeps its bytes for the reader (the lent descriptor and the hold).
    const r = await ok(
      `exec 3< '${m.p('f.bin')}'; rm '${m.p('f.bin')}'; ` +
        `sync; echo 3 > /proc/sys/vm/drop_caches; md5sum <&3; exec 3<&-`,
    );
    t.equal(r, await ok(`md5sum < '${m.dir}/src.bin'`), 'the open reader still reads the bytes it opened');
    await m.stop();
    await expectFsckClean(t, m.library);
  });

  t.test("M2: the kernel's lookup references come back when it drops its inodes (forget)", async (t) => {
    const m = await withMount(t, { args: ['--binding', 'll'] });
    await holdKernelCachesFor(t); // the kernel must keep what it looked up until this test drops it
    await ok(`cd '${m.mountpoint}' && mkdir d && for i in $(seq 1 300); do echo $i > d/f$i; done && stat d/* > /dev/null`);
    const before = (await stats(m.mountpoint))['kernelInodes'] as number;
    t.ok(before >= 300, `the kernel holds the files it looked up (${before})`);
    let after = before;
    for (let i = 0; i < 50 && after > before / 2; i++) {
      await ok('sync; echo 2 > /proc/sys/vm/drop_caches');
      after = (await stats(m.mountpoint))['kernelInodes'] as number;
      if (after > before / 2) await new Promise((r) => setTimeout(r, 100));
    }
    t.ok(after < before / 2, `forgotten: ${before} → ${after} inodes`);
    t.equal((await ok(`cat '${m.p('d/f17')}'`)).trim(), '17', 'a forgotten file is looked up again');
    await m.stop();
    await expectFsckClean(t, m.library);
  });

  t.test('M2: a user’s new file, directory and link are theirs; a setgid directory gives its group; one time changes alone', async (t) => {
    const m = await withMount(t, { args: ['--binding', 'll', '--allow-other'] });
    await ok(`chmod 1777 '${m.mountpoint}' && mkdir '${m.p('team')}' && chown 0:4242 '${m.p('team')}' && chmod 2777 '${m.p('team')}'`);
    const as = (cmd: string): Promise<string> => ok(`setpriv --reuid 4321 --regid 4321 --clear-groups sh -c "${cmd}"`, { cwd: m.mountpoint });
    await as('echo mine > f && mkdir d && ln -s f l && mkfifo p && echo t > team/g && mkdir team/sub');
    t.equal((await ok(`stat -c '%u:%g' f d p`, { cwd: m.mountpoint })).trim().split('\n').join(' '), '4321:4321 4321:4321 4321:4321');
    t.equal((await ok(`stat -c '%u:%g' l`, { cwd: m.mountpoint })).trim(), '4321:4321', 'the link too');
    t.equal((await ok(`stat -c '%u:%g' team/g team/sub`, { cwd: m.mountpoint })).trim().split('\n').join(' '), '4321:4242 4321:4242', "the setgid directory's group");
    t.equal((await ok(`stat -c '%a' team/sub`, { cwd: m.mountpoint })).trim().slice(0, 1), '2', 'a new directory in it is setgid');
    await ok(`touch -m -d '2001-02-03 04:05:06.123456' f && touch -a -d '1960-01-01 00:00:00.5' f`, { cwd: m.mountpoint });
    t.equal((await ok(`stat -c '%x|%y' f`, { cwd: m.mountpoint })).trim(), '1960-01-01 00:00:00.500000000 +0000|2001-02-03 04:05:06.123456000 +0000', 'atime set alone (before 1970), mtime kept to the microsecond');
    await m.stop();
    await expectFsckClean(t, m.library);
  });

  t.test('M1: the binding is chosen as asked; a bad name is refused; SMHFS_BINDING sets the default', async (t) => {
    const m = await withMount(t, { args: ['--binding', 'fuse-native'] });
    t.equal((await stats(m.mountpoint))['binding'], 'fuse-native');
    await m.stop();
    const bad = await sh(`node '${process.cwd()}/dist/src/cli/main.js' mount '${m.mountpoint}' --library '${m.library}' --binding fuse3`);
    t.equal(bad.code, 2, 'a usage error');
    t.match(bad.stderr, /--binding.*expected one of ll, fuse-native/);
    // Without --binding: SMHFS_BINDING decides (as a service's Environment= would)
    const cliPath = `${process.cwd()}/dist/src/cli/main.js`;
    const d = await sh(`node '${cliPath}' mount '${m.mountpoint}' --library '${m.library}' --daemon`, { env: { SMHFS_BINDING: 'fuse-native' } });
    t.equal(d.code, 0, d.stderr);
    t.equal((await stats(m.mountpoint))['binding'], 'fuse-native', 'the env default');
    t.equal((await sh(`node '${cliPath}' unmount '${m.mountpoint}'`)).code, 0);
    await expectFsckClean(t, m.library);
  });
}
