// Kernel caches and their exact invalidation (H4, L4): with long entry/attr timeouts and
// FUSE_CAP_CACHE_SYMLINKS the kernel answers repeated lookups, stats and readlinks itself; a change
// made behind its back — as a change by the CLI, `serve` or another mount will be (phase 2 follows
// the library's change feed) — is seen by the next call of any process as soon as the binding's
// invalidation resolves, without waiting for a timeout. Invalidations are written by a helper
// thread: one the kernel must hold back until we answer a request does not stop the serving thread.
import t from 'tap';
import { holdKernelCachesFor } from './helpers/kernel-cache-lock.js';
import { spawn } from 'node:child_process';
import type { Ctx, Entry } from '../src/fuse/ll/binding.js';
import { MemFs } from './helpers/ll-memfs.js';
import { llMount, llUnavailable, ok, sh, sleep, until } from './helpers/ll.js';

const LONG = { entryTimeout: 3600, attrTimeout: 3600, negativeTimeout: 3600, cacheSymlinks: true, keepCache: true };

const why = await llUnavailable();
// drop_caches is machine-wide: each subtest that drops the kernel's caches or relies on them
// holds a lock from that step to its end (helpers/kernel-cache-lock.ts); the rest runs beside any file.
if (why) {
  t.plan(0, `binding tests need FUSE: ${why}`);
} else {
  t.test('L4: a cached symlink target changes for the next readlink once the inode is invalidated', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs, LONG);
    await holdKernelCachesFor(t); // what follows asserts the kernel's cached answers
    t.ok(m.session.info().want & (1 << 23), 'FUSE_CAP_CACHE_SYMLINKS negotiated');
    await ok(`cd '${m.mountpoint}' && echo A > a && echo B > b && ln -s a link`);
    t.equal(await ok(`readlink '${m.p('link')}'; cat '${m.p('link')}'`), 'a\nA\n');
    const asked = fs.calls.get('readlink') ?? 0;
    t.equal(await ok(`for i in 1 2 3 4 5; do readlink '${m.p('link')}'; done | sort -u`), 'a\n');
    t.equal(fs.calls.get('readlink') ?? 0, asked, 'the kernel answered readlink from its cache');
    // the target moves behind the kernel's back
    const link = fs.node(fs.inoOf('link')!)!;
    link.target = 'b';
    t.equal(await ok(`readlink '${m.p('link')}'`), 'a\n', 'still the cached answer (this is what needs invalidating)');
    t.equal(await m.session.invalidateInode(link.ino), true, 'the kernel had it cached');
    t.equal(await ok(`readlink '${m.p('link')}'; cat '${m.p('link')}'`), 'b\nB\n', 'the next readlink, at once');
  });

  t.test('entries: a rename behind the kernel is seen once the old and new names are invalidated; negative entries too', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs, LONG);
    await holdKernelCachesFor(t); // what follows asserts the kernel's cached answers
    await ok(`echo x > '${m.p('old')}'`);
    t.equal((await sh(`stat -c %s '${m.p('new')}'`)).code, 1, 'new: ENOENT (now a cached negative entry)');
    const root = fs.node(1)!;
    const ino = root.children!.get('old')!;
    root.children!.delete('old');
    root.children!.set('new', ino);
    t.equal((await sh(`stat -c %s '${m.p('old')}'`)).code, 0, 'old: still cached');
    t.equal((await sh(`stat -c %s '${m.p('new')}'`)).code, 1, 'new: still cached as missing');
    t.equal(await m.session.invalidateEntry(1, 'old'), true);
    t.equal(await m.session.invalidateEntry(1, 'new'), true, 'a negative entry is an entry');
    t.match((await sh(`stat -c %s '${m.p('old')}'`)).stderr, /No such file/, 'old is gone');
    t.equal(await ok(`cat '${m.p('new')}'`), 'x\n', 'new is there');
    t.equal(await m.session.invalidateEntry(1, 'never-looked-up'), false, 'nothing cached: false');
    // deleteEntry: the name and the node
    const f = root.children!.get('new')!;
    root.children!.delete('new');
    fs.node(f)!.nlink = 0;
    t.equal(await m.session.deleteEntry(1, f, 'new'), true);
    t.match((await sh(`cat '${m.p('new')}'`)).stderr, /No such file/);
  });

  t.test('attributes and data: cached until invalidated, then fresh', async (t) => {
    const fs = new MemFs();
    const m = await llMount(t, fs, LONG);
    await holdKernelCachesFor(t); // what follows asserts the kernel's cached answers
    await ok(`echo one > '${m.p('f')}' && cat '${m.p('f')}' > /dev/null`);
    const n = fs.node(fs.inoOf('f')!)!;
    n.mode = (n.mode & ~0o777) | 0o600;
    t.equal(await ok(`stat -c %a '${m.p('f')}'`), '644\n', 'cached attributes');
    t.equal(await m.session.invalidateInode(n.ino, -1), true, 'attributes only');
    t.equal(await ok(`stat -c %a '${m.p('f')}'`), '600\n');
    // same size, new bytes: only a data invalidation shows them (keep_cache)
    Buffer.from('two\n').copy(n.data);
    t.equal(await ok(`cat '${m.p('f')}'`), 'one\n', 'cached pages');
    t.equal(await m.session.invalidateInode(n.ino), true, 'attributes and data');
    t.equal(await ok(`cat '${m.p('f')}'`), 'two\n');
  });

  t.test('an invalidation the kernel holds back until we answer does not stop the serving thread', async (t) => {
    const fs = new MemFs();
    let answer!: () => void;
    let waiting = false;
    const origLookup = fs.lookup.bind(fs);
    fs.hooks.lookup = (ctx: Ctx, parent: unknown, name: unknown) =>
      name === 'slow'
        ? new Promise<Entry | number>((r) => {
            waiting = true;
            answer = () => r(origLookup(parent as number, 'target', ctx) as Entry | number);
          })
        : undefined;
    const m = await llMount(t, fs, LONG);
    await holdKernelCachesFor(t); // what follows asserts the kernel's cached answers
    await ok(`mkdir '${m.p('d')}' && echo t > '${m.p('d/target')}' && mkdir '${m.p('e')}' && echo other > '${m.p('e/other')}' && stat '${m.p('d/x')}' || true`);
    const d = fs.inoOf('d')!;
    // a lookup in d waits for us (the kernel holds d's lock meanwhile)
    const caller = spawn('stat', ['-c', '%s', m.p('d/slow')], { stdio: 'ignore' });
    const callerDone = new Promise((r) => caller.on('exit', r));
    t.ok(await until(() => waiting, 10_000), 'the lookup is pending');
    let invalidated = false;
    const inval = m.session.invalidateEntry(d, 'x').then((v) => {
      invalidated = true;
      return v;
    });
    await sleep(300);
    // Linux takes the directory's lock for an entry invalidation: it waits for the lookup
    t.equal(invalidated, false, 'the kernel holds the invalidation back while the lookup is pending');
    t.equal(await ok(`cat '${m.p('e/other')}'`), 'other\n', 'and meanwhile this thread still serves other requests');
    answer();
    t.equal(await inval, true, 'answered: the invalidation goes through');
    await callerDone;
  });

  t.test('close() while an invalidation is held back by a pending request ends cleanly', async (t) => {
    const fs = new MemFs();
    let waiting = false;
    fs.hooks.lookup = (_ctx: Ctx, _parent: unknown, name: unknown) =>
      name === 'slow'
        ? new Promise<number>(() => {
            waiting = true; // never answered by the file system
          })
        : undefined;
    const m = await llMount(t, fs, LONG);
    await ok(`mkdir '${m.p('d')}' && stat '${m.p('d/x')}' || true`);
    const caller = spawn('stat', [m.p('d/slow')], { stdio: 'ignore' });
    const callerDone = new Promise((r) => caller.on('exit', r));
    t.ok(await until(() => waiting, 10_000), 'the lookup is pending');
    const inval = m.session.invalidateEntry(fs.inoOf('d')!, 'x');
    await sleep(200);
    const t0 = Date.now();
    m.session.close();
    await m.session.closed;
    t.ok(Date.now() - t0 < 5000, 'close did not wait on the kernel');
    t.type(await inval, 'boolean', 'the invalidation settled');
    t.not(await Promise.race([callerDone, sleep(10_000).then(() => 'hung')]), 'hung', 'the caller was let go');
    t.equal(await m.session.invalidateEntry(1, 'x'), false, 'an ended session invalidates nothing');
  });
}
