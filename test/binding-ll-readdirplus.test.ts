// Issue 15 (walking a tree): smhfs on ll answers readdirplus — one store page per reply, every
// entry's attributes and a lookup reference with it — so `ls -l` and `find` of a big directory
// cost a request per batch of entries, not a lookup per entry. The lookup references it hands out
// are counted exactly (the kernel gives every one back when it drops its inodes), and a listing
// resumes after the last name it sent, so names created and removed meanwhile do not make a
// stable name come twice or not at all. Op counts come from `smhfs stats --json` (the mount's own
// counters), never from timing.
import t from 'tap';
import { holdKernelCachesFor } from './helpers/kernel-cache-lock.js';
import { expectFsckClean } from './helpers/fsck.js';
import { fuseUnavailable, mountStats, ok, sh, storeCall, withMount } from './helpers/mount.js';

const why = await fuseUnavailable();
// drop_caches is machine-wide: each subtest that drops the kernel's caches or relies on them
// holds a lock from that step to its end (helpers/kernel-cache-lock.ts); the rest runs beside any file.
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  type Stats = { ops: Record<string, { calls: number }>; kernelInodes: number };
  // What `smhfs stats --json` prints, asked from this process (no CLI child between two snapshots).
  const stats = (mp: string): Promise<Stats> => mountStats<Stats>(mp);
  const calls = (s: Stats, op: string): number => s.ops[op]?.calls ?? 0;
  /** How many requests of each op ran between two snapshots. */
  const delta = (a: Stats, b: Stats, op: string): number => calls(b, op) - calls(a, op);

  t.test('issue 15: ls -l and find of 2,000 entries are answered by readdirplus pages, with ~0 lookups', async (t) => {
    const m = await withMount(t, { args: ['--binding', 'll'] });
    // made through the mount; drop_caches then makes the kernel forget every one of them
    const made = await sh(
      `cd '${m.mountpoint}' && mkdir big big/sub && for i in $(seq -w 1 1990); do : > big/f$i; done && for i in $(seq 1 9); do mkdir big/sub/d$i; done`,
      { timeoutMs: 120_000 },
    );
    t.equal(made.code, 0, made.stderr);
    await holdKernelCachesFor(t); // it drops them, then counts what the kernel asks
    await ok('sync; echo 2 > /proc/sys/vm/drop_caches');
    const s0 = await stats(m.mountpoint);
    t.equal((await ok(`ls -l '${m.p('big')}' | grep -c '^-'`)).trim(), '1990', 'ls -l lists every file');
    const s1 = await stats(m.mountpoint);
    const pages = delta(s0, s1, 'readdirplus');
    // 2,000 entries of ~170 bytes: a reply of 4 KiB holds ~24, of 32 KiB ~190
    t.ok(pages >= 1 && pages <= 100, `${pages} readdirplus requests for 2,000 entries (a page each)`);
    t.ok(delta(s0, s1, 'lookup') <= 5, `${delta(s0, s1, 'lookup')} lookups (not one per entry)`);
    t.equal(delta(s0, s1, 'readdir'), 0, 'no plain readdir: every listing carries attributes');
    t.ok(delta(s0, s1, 'getattr') <= 5, `${delta(s0, s1, 'getattr')} getattrs: ls -l's stats came with the pages`);
    t.ok(s1.kernelInodes >= 1990, `the kernel holds a reference on every entry it was given (${s1.kernelInodes})`);

    await ok('sync; echo 2 > /proc/sys/vm/drop_caches');
    const s2 = await stats(m.mountpoint);
    t.equal((await ok(`find '${m.p('big')}' | wc -l`)).trim(), '2001', 'find: the directory, 1,990 files, sub and its 9 directories');
    const s3 = await stats(m.mountpoint);
    t.ok(delta(s2, s3, 'lookup') <= 5, `find: ${delta(s2, s3, 'lookup')} lookups (the directories it enters came with the pages)`);
    t.ok(delta(s2, s3, 'readdirplus') <= 100, `find: ${delta(s2, s3, 'readdirplus')} readdirplus requests`);
    // find reads d_type only: after its first reply, files came as names only (nodeid 0), which the
    // kernel emits without an inode or a reference (src/fuse/listing-policy.ts)
    t.ok(s3.kernelInodes - s2.kernelInodes <= 500, `find: the kernel took references only on directories and a first reply (${s2.kernelInodes} → ${s3.kernelInodes})`);
    t.equal((await ok(`find '${m.p('big')}' -type f | wc -l`)).trim(), '1990', 'find -type f: names-only entries carry their type');
    t.equal((await ok(`stat -c %s:%h '${m.p('big/f1500')}'`)).trim(), '0:1', 'a names-only entry answers a stat (a lookup)');

    // find left the files unknown to the kernel (names only): one ls -l gives them back, with
    // a few probes looked up (src/fuse/listing-policy.ts), not a lookup per entry
    t.equal((await ok(`ls -l '${m.p('big')}' | grep -c '^-'`)).trim(), '1990');
    const s3b = await stats(m.mountpoint);
    t.ok(delta(s3, s3b, 'lookup') <= 8, `ls -l after find: ${delta(s3, s3b, 'lookup')} lookups`);
    // the repeat comes from the kernel: names and attributes are cached (60 s, exact invalidation)
    t.equal((await ok(`ls -l '${m.p('big')}' | grep -c '^-'`)).trim(), '1990');
    const s4 = await stats(m.mountpoint);
    t.ok(delta(s3b, s4, 'lookup') + delta(s3b, s4, 'getattr') <= 5, `repeat ls -l: ${delta(s3b, s4, 'lookup')} lookups, ${delta(s3b, s4, 'getattr')} getattrs`);
    await m.stop();
    await expectFsckClean(t, m.library);
  });

  t.test('issue 15: the lookup references readdirplus hands out balance — every one comes back through forget, and each one lets a change be invalidated', async (t) => {
    const m = await withMount(t, { args: ['--binding', 'll'] });
    await holdKernelCachesFor(t); // the kernel's references are counted, then dropped
    const base = (await stats(m.mountpoint)).kernelInodes;
    // churn without unmounting: list, remove some, create others, list again, rename some
    await ok(
      `cd '${m.mountpoint}' && mkdir d && for i in $(seq 1 400); do : > d/a$i; done && ls -l d > /dev/null && ` +
        `rm d/a1?? && for i in $(seq 1 150); do : > d/b$i; done && ls -l d > /dev/null && ls -lR . > /dev/null && ` +
        `for i in $(seq 200 260); do mv d/a$i d/c$i; done && find . -type f | wc -l`,
    );
    const held = (await stats(m.mountpoint)).kernelInodes;
    t.ok(held >= 450, `the kernel holds what the listings gave it (${held})`);
    // a name the kernel knows only from a readdirplus page: a change by another process must reach it
    await ok(`ls -l '${m.p('d')}' > /dev/null`);
    await storeCall(m, `space.setattr(space.stat('d/b77').id, { mode: 0o600 });`);
    let mode = '';
    for (let i = 0; i < 100 && mode !== '600'; i++) {
      mode = (await ok(`stat -c %a '${m.p('d/b77')}'`)).trim();
      if (mode !== '600') await new Promise((res) => setTimeout(res, 20));
    }
    t.equal(mode, '600', "another process's chmod of an entry known from readdirplus is seen (the mount knew the kernel held it)");
    let after = held;
    for (let i = 0; i < 50 && after > base + 2; i++) {
      await ok('sync; echo 2 > /proc/sys/vm/drop_caches');
      after = (await stats(m.mountpoint)).kernelInodes;
      if (after > base + 2) await new Promise((res) => setTimeout(res, 100));
    }
    t.ok(after <= base + 2, `every reference came back: ${held} → ${after} (base ${base})`);
    t.equal((await ok(`ls '${m.p('d')}' | wc -l`)).trim(), String(400 - 100 + 150), 'listed again after the kernel forgot them');
    await m.stop();
    await expectFsckClean(t, m.library);
  });

  t.test('issue 15: a listing under concurrent creates and unlinks returns every stable name exactly once', async (t) => {
    const m = await withMount(t, { args: ['--binding', 'll'] });
    const N = 3000;
    const made = await sh(`cd '${m.mountpoint}' && mkdir d && cd d && for i in $(seq -w 1 ${N}); do : > s$i; done`, { timeoutMs: 120_000 });
    t.equal(made.code, 0, made.stderr);
    const d = m.p('d');
    // names before, between and after the stable ones in name order, made and removed all along
    const churn = sh(
      `cd '${d}' && end=$((SECONDS+8)); n=0; while [ $SECONDS -lt $end ]; do n=$((n+1)); ` +
        `: > a$n; : > s0$n-x; : > t$n; rm -f a$((n-3)) s0$((n-3))-x t$((n-3)); done; echo $n`,
      { timeoutMs: 60_000 },
    );
    const listings: string[][] = [];
    const stopAt = Date.now() + 7000;
    while (Date.now() < stopAt) {
      // ls -f: getdents as it comes, no sort, small buffers through dd-sized reads are not needed:
      // 3,000 entries take many readdirplus replies either way
      const out = await ok(`ls -f '${d}'`);
      listings.push(out.split('\n').filter((n) => /^s\d+$/.test(n)));
    }
    const rounds = Number((await churn).stdout.trim());
    t.ok(rounds > 10, `${rounds} rounds of creates and unlinks ran meanwhile`);
    t.ok(listings.length >= 2, `${listings.length} listings`);
    const want = Array.from({ length: N }, (_, i) => `s${String(i + 1).padStart(4, '0')}`);
    let bad = 0;
    for (const [i, l] of listings.entries()) {
      const sorted = [...l].sort();
      if (sorted.length !== N || sorted.some((n, j) => n !== want[j])) {
        bad++;
        const seen = new Map<string, number>();
        for (const n of l) seen.set(n, (seen.get(n) ?? 0) + 1);
        const twice = [...seen].filter(([, c]) => c > 1).map(([n]) => n);
        const missing = want.filter((n) => !seen.has(n));
        t.fail(`listing ${i}: ${l.length} stable names; twice: ${twice.slice(0, 5).join(' ')}; missing: ${missing.slice(0, 5).join(' ')}`);
      }
    }
    t.equal(bad, 0, `every one of ${listings.length} listings had each of the ${N} stable names exactly once`);
    await m.stop();
    await expectFsckClean(t, m.library);
  });
}
