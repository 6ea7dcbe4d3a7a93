// H4/L4 through a real kernel (issue 11 item 2): a library served on the libfuse 3 binding with
// long entry/attr timeouts and FUSE_CAP_CACHE_SYMLINKS, its change feed followed into the
// session's invalidations (src/fuse/invalidation.ts). The kernel answers repeated readlinks
// itself; when the CLI — another process — moves a target, or a rename through the mount does,
// the next readlink shows the new path. Served by a thin stand-in (test/helpers/ll-space.ts)
// until the inode adapter serves smhfs on this binding.
import t, { type Test } from 'tap';
import { holdKernelCachesFor } from './helpers/kernel-cache-lock.js';
import { followIntoSession } from '../src/fuse/invalidation.js';
import { Library } from '../src/store/library.js';
import { scratchLibrary, smhfs } from './cli-helpers.js';
import { llMount, llUnavailable, ok, sh } from './helpers/ll.js';
import { SpaceOnLl } from './helpers/ll-space.js';
import { put } from './helpers/store.js';

const LONG = { entryTimeout: 3600, attrTimeout: 3600, negativeTimeout: 3600, cacheSymlinks: true, keepCache: true };

/** A CLI library holding photo.jpg and bound links a/cover, b/cover, c/cover; served by this process. */
async function served(t: Test, follow: { pollMs: number; watchCommits: boolean }) {
  const { dir, lib: libDir } = await scratchLibrary(t);
  const lib = Library.open(libDir);
  t.teardown(() => lib.close());
  const space = lib.space();
  for (const d of ['a', 'b', 'c']) space.mkdir(d);
  await put(lib, space, 'photo.jpg', 'jpeg bytes', { conflict: 'ask' });
  for (const d of ['a', 'b', 'c']) space.createLink(`${d}/cover`, 'photo.jpg');
  const fs = new SpaceOnLl(space);
  const m = await llMount(t, fs, LONG);
  // every invalidation the follower sent, and its promise (the kernel's answer)
  const sent: string[] = [];
  const pending: Array<Promise<boolean>> = [];
  const tracked = {
    invalidateEntry: (p: number, n: string) => {
      sent.push(`entry ${p}/${n}`);
      const r = m.session.invalidateEntry(p, n);
      pending.push(r);
      return r;
    },
    invalidateInode: (ino: number, off?: number, len?: number) => {
      sent.push(`inode ${ino}`);
      const r = m.session.invalidateInode(ino, off, len);
      pending.push(r);
      return r;
    },
  };
  const follower = followIntoSession(lib, '-', tracked, { inoOf: fs.inoOf, ...follow });
  fs.follower = follower;
  t.teardown(() => follower.stop());
  const readlink = async (p: string) => (await ok(`readlink '${m.p(p)}'`)).trim();
  const settled = async () => {
    while (pending.length > 0) await Promise.all(pending.splice(0));
  };
  return { dir, libDir, lib, space, fs, m, follower, sent, settled, readlink };
}

const why = await llUnavailable();
// drop_caches is machine-wide: each subtest that drops the kernel's caches or relies on them
// holds a lock from that step to its end (helpers/kernel-cache-lock.ts); the rest runs beside any file.
if (why) {
  t.plan(0, `binding tests need FUSE: ${why}`);
} else {
  t.test('L4/H4: a CLI mv of a target: the kernel-cached readlink of its links is dropped, the next one shows the new path', async (t) => {
    // the follower polls only when asked: each step below is deterministic
    const s = await served(t, { pollMs: 3_600_000, watchCommits: false });
    await holdKernelCachesFor(t); // what follows asserts the kernel's cached answers
    t.ok(s.m.session.info().want & (1 << 23), 'FUSE_CAP_CACHE_SYMLINKS negotiated');
    t.equal(await s.readlink('a/cover'), '../photo.jpg');
    t.equal((await ok(`stat -L -c %s '${s.m.p('b/cover')}'`)).trim(), '10', 'the link leads to the file');
    const asked = s.fs.calls.get('readlink') ?? 0;
    for (let i = 0; i < 3; i++) t.equal(await s.readlink('a/cover'), '../photo.jpg');
    t.equal(s.fs.calls.get('readlink') ?? 0, asked, 'the kernel answers repeated readlinks from its cache');

    const r = await smhfs(s.dir, s.libDir, ['mv', 'photo.jpg', 'c/photo.jpg']);
    t.equal(r.code, 0, `smhfs mv (another process): ${r.stderr}`);
    t.equal(await s.readlink('a/cover'), '../photo.jpg', 'before the follower has seen it: the stale cached answer (the cache is real)');

    s.follower.poll(); // what the timer or inotify does
    await s.settled();
    for (const l of ['a/cover', 'b/cover']) t.equal(await s.readlink(l), '../c/photo.jpg', `${l}: the new path`);
    t.equal(await s.readlink('c/cover'), 'photo.jpg', 'c/cover: now beside it');
    t.equal((await ok(`stat -L -c %s '${s.m.p('a/cover')}'`)).trim(), '10', 'and it leads to the file');
    t.match((await sh(`stat '${s.m.p('photo.jpg')}'`)).stderr, /No such file/, 'the old name is gone (its cached entry was dropped)');
    t.equal((await sh(`stat -c %s '${s.m.p('c/photo.jpg')}'`)).stdout.trim(), '10', 'the new name is there');
  });

  t.test('H4: followed as a mount follows (inotify and a 50 ms timer), a CLI mv is seen within 1 s, without asking', async (t) => {
    const s = await served(t, { pollMs: 50, watchCommits: true });
    await holdKernelCachesFor(t); // a drop elsewhere would show the new path without the follower
    t.equal(await s.readlink('b/cover'), '../photo.jpg');
    t.equal(await s.readlink('b/cover'), '../photo.jpg');
    const r = await smhfs(s.dir, s.libDir, ['mv', 'photo.jpg', 'a/photo.jpg']);
    t.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    let answer = await s.readlink('b/cover');
    const first = answer;
    while (answer !== '../a/photo.jpg' && Date.now() - t0 < 1000) answer = await s.readlink('b/cover');
    t.equal(answer, '../a/photo.jpg', `seen ${Date.now() - t0} ms after the CLI exited (first readlink after it: ${first})`);
  });

  t.test('L4: a rename through the mount moves a target: its links\' cached answers are dropped during the request', async (t) => {
    const s = await served(t, { pollMs: 3_600_000, watchCommits: false });
    await holdKernelCachesFor(t); // what follows asserts the kernel's cached answers
    t.equal(await s.readlink('c/cover'), '../photo.jpg');
    t.equal(await s.readlink('c/cover'), '../photo.jpg');
    const links = ['a/cover', 'b/cover', 'c/cover'].map((p) => s.fs.inoOf(s.space.stat(p).id));
    await ok(`mv '${s.m.p('photo.jpg')}' '${s.m.p('b/photo.jpg')}'`);
    // no poll: this process's own commit reached the follower in the request itself
    for (const ino of links) t.ok(s.sent.includes(`inode ${ino}`), `link inode ${ino} invalidated`);
    t.notOk(s.sent.includes('entry 1/photo.jpg'), 'not the names the reply told the kernel about');
    await s.settled();
    t.equal(await s.readlink('c/cover'), '../b/photo.jpg', 'the next readlink: the new path');
    t.equal(await s.readlink('b/cover'), 'photo.jpg');
  });

  t.test('issue 15: ls -l of 2,000 entries is answered by readdirplus pages, the repeat by the kernel; a CLI rename in it is seen at once', async (t) => {
    const s = await served(t, { pollMs: 3_600_000, watchCommits: false });
    await holdKernelCachesFor(t); // what follows asserts the kernel's cached answers
    s.space.mkdir('big');
    s.lib.transaction(() => {
      for (let i = 0; i < 2000; i++) s.space.mknod(`big/f${String(i).padStart(4, '0')}`, { mode: 0o100644 });
    });
    const count = (op: string) => s.fs.calls.get(op) ?? 0;
    const [lookups, pages] = [count('lookup'), count('readdirplus')];
    t.equal((await ok(`ls -l '${s.m.p('big')}' | grep -c '^-'`)).trim(), '2000', 'ls -l lists 2,000 files');
    t.ok(count('readdirplus') - pages >= 1 && count('readdirplus') - pages < 100, `${count('readdirplus') - pages} readdirplus pages`);
    t.ok(count('lookup') - lookups < 20, `${count('lookup') - lookups} lookups (not one per entry)`);
    const [l2, g2] = [count('lookup'), count('getattr')];
    t.equal((await ok(`stat -c %s '${s.m.p('big')}'/f1* | wc -l`)).trim(), '1000', 'stat of 1,000 of them');
    const asked = count('lookup') - l2 + count('getattr') - g2;
    t.ok(asked < 10, `${asked} lookups and getattrs: answered by the kernel from what readdirplus gave it`);
    const r = await smhfs(s.dir, s.libDir, ['mv', 'big/f1234', 'big/renamed']);
    t.equal(r.code, 0, r.stderr);
    s.follower.poll();
    await s.settled();
    t.match((await sh(`stat '${s.m.p('big/f1234')}'`)).stderr, /No such file/, 'the old name: gone at once');
    t.equal((await sh(`stat -c %F '${s.m.p('big/renamed')}'`)).stdout.trim(), 'regular empty file', 'the new name: there');
  });
}
