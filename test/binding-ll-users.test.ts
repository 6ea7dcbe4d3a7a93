// M2 through the low-level binding: requests carry their caller (uid, gid, pid, umask), so new
// nodes belong to whoever made them (gid of a setgid directory), the kernel checks supplementary
// groups (default_permissions), and — files being addressed by inode — a file unlinked while open
// stays readable and writable through its descriptor (D7) and is freed after the last close.
import t from 'tap';
import { spawn } from 'node:child_process';
import { MemFs } from './helpers/ll-memfs.js';
import { asUser, llMount, llUnavailable, ok, sh, until } from './helpers/ll.js';

const U = 1234;
const G = 1234;

const why = await llUnavailable();
if (why) {
  t.plan(0, `binding tests need FUSE: ${why}`);
} else {
  t.test('M2: new nodes belong to the caller, with its umask; setgid directories pass their group on', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs, { allowOther: true });
    await ok(`cd '${m.mountpoint}' && mkdir pub && chmod 1777 pub && mkdir team && chown 0:4242 team && chmod 2777 team`);
    const r = await asUser(U, G, `cd '${m.p('pub')}' && umask 027 && echo hi > f && mkdir d && ln -s f l && mkfifo p && stat -c '%n %u:%g %a' f d l p`);
    t.equal(r.stdout, `f ${U}:${G} 640\nd ${U}:${G} 750\nl ${U}:${G} 777\np ${U}:${G} 640\n`, r.stderr);
    t.equal(fs.lastCtx.get('create')?.uid, U, 'the request said who');
    t.equal(fs.lastCtx.get('create')?.umask, 0o027, 'and its umask');
    t.ok((fs.lastCtx.get('create')?.pid ?? 0) > 0, 'and its pid');
    const s = await asUser(U, G, `cd '${m.p('team')}' && touch x && mkdir sub && stat -c '%n %u:%g %A' x sub`);
    t.equal(s.stdout, `x ${U}:4242 -rw-r--r--\nsub ${U}:4242 drwxr-sr-x\n`, 'group of the setgid directory; a new directory stays setgid');
  });

  t.test('supplementary groups are checked by the kernel (default_permissions)', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs, { allowOther: true });
    await ok(`mkdir '${m.p('shared')}' && chown 0:4242 '${m.p('shared')}' && chmod 770 '${m.p('shared')}'`);
    const member = await asUser(U, G, `touch '${m.p('shared/mine')}' && echo ok`, [4242]);
    t.equal(member.stdout, 'ok\n', `a member of group 4242 may write there ${member.stderr}`);
    const other = await asUser(U, G, `touch '${m.p('shared/theirs')}'`);
    t.match(other.stderr, /Permission denied/, 'without the group: EACCES');
    const chown = await asUser(U, G, `chown 0 '${m.p('shared/mine')}'`, [4242]);
    t.match(chown.stderr, /Operation not permitted/, 'giving a file away needs CAP_CHOWN');
  });

  t.test('D7: a file unlinked while open stays readable and writable through its descriptor, and is freed after the last close', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs);
    await ok(`echo 'before unlink' > '${m.p('f')}'`);
    const ino = fs.inoOf('f')!;
    const script = `
      const fs = require('fs');
      const fd = fs.openSync(process.argv[1], 'r+');
      process.stdout.write('open\\n');
      process.stdin.once('data', () => {
        fs.writeSync(fd, 'after unlink, still writable\\n', 14);
        const b = Buffer.alloc(64); const n = fs.readSync(fd, b, 0, 64, 0);
        const st = fs.fstatSync(fd);
        process.stdout.write(JSON.stringify({ text: b.subarray(0, n).toString(), nlink: st.nlink, size: st.size }) + '\\n');
        fs.closeSync(fd);
        process.exit(0);
      });`;
    const holder = spawn(process.execPath, ['-e', script, m.p('f')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => holder.on('exit', r));
    t.ok(await until(() => out.includes('open'), 10_000), 'the file is open');
    await ok(`rm '${m.p('f')}'`);
    t.match((await sh(`ls '${m.mountpoint}'`)).stdout, /^$/, 'the name is gone');
    t.ok(fs.node(ino), 'the node is kept while open');
    holder.stdin!.write('go\n');
    await exited;
    const res = JSON.parse(out.split('\n')[1]!) as { text: string; nlink: number; size: number };
    t.same(res, { text: 'before unlink\nafter unlink, still writable\n', nlink: 0, size: 43 }, 'read back what was written after the unlink');
    t.ok(await until(() => !fs.node(ino), 10_000), 'freed after the last close (release, then forget)');
    t.same(fs.violations, []);
  });
}
