// D8 through the mount (reproducer 7): holes are free. Extending a file (truncate up, a write past
// the end, fallocate) costs work and storage in proportion to the bytes written, not the size:
// asserted on the mount's counters (bytes hashed, stored, fetched) and on the store's size —
// never on time. Files without holes keep the dense format (key = SHA-256, ETag = MD5 of the
// bytes). Each test ends with `smhfs fsck` and the checksums of every earlier file.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectFsckClean, expectSameFiles, librarySha256, sha256File } from './helpers/fsck.js';
import { CLI, cli, cleanup, fuseUnavailable, mountStats, ok, sh, startMount, type Mount } from './helpers/mount.js';

const MiB = 1024 * 1024;
const TiB = 1024 ** 4;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Counters {
  io: { bytesHashed: number; bytesStored: number; bytesWritten: number; sparseCommits: number; stagedCopies: number };
  cache: { bytesFetched: number };
}

/** What `smhfs --json stats` prints, asked from this process. */
function counters(m: Mount): Promise<Counters> {
  return mountStats<Counters>(m.mountpoint);
}

/** How much the counters grew from `a` to `b`. */
function grew(a: Counters, b: Counters): { hashed: number; stored: number; fetched: number; written: number; sparse: number } {
  return {
    hashed: b.io.bytesHashed - a.io.bytesHashed,
    stored: b.io.bytesStored - a.io.bytesStored,
    fetched: b.cache.bytesFetched - a.cache.bytesFetched,
    written: b.io.bytesWritten - a.io.bytesWritten,
    sparse: b.io.sparseCommits - a.io.sparseCommits,
  };
}

/** Bytes of the blob files in the local store (sizes of its files, not of its folders). */
async function storeBytes(m: Mount): Promise<number> {
  return Number((await ok(`find '${m.library}/blobs' -type f -not -path '*/.tmp/*' -printf '%s\\n' | awk '{ n += $1 } END { print n + 0 }'`)).trim());
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  t.test('D8: truncate -s 1T, a write at 1 TiB - 1 and fallocate cost what they write (reproducer 7)', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m, { keepDir: true }));
    await ok(`echo kept > '${m.p('kept.txt')}'`);
    const before = await librarySha256(m.library);
    const store0 = await storeBytes(m);

    // It used to hash every zero byte, with the caller in D state for over ten minutes.
    const c0 = await counters(m);
    const tr = await sh(`truncate -s 1T '${m.p('big')}'`, { timeoutMs: 120_000 });
    t.equal(tr.code, 0, tr.stderr);
    const c1 = await counters(m);
    const d1 = grew(c0, c1);
    t.ok(d1.hashed < 4096, `bytes hashed: ${d1.hashed}`);
    t.ok(d1.stored < 4096, `bytes stored: ${d1.stored}`);
    t.equal(d1.sparse, 1, 'committed as one sparse file');
    t.equal((await ok(`stat -c '%s %b' '${m.p('big')}'`)).trim(), `${TiB} 0`, 'stat: 1 TiB, no blocks');
    t.ok((await storeBytes(m)) - store0 < 4096, 'the store grew by a header, not a terabyte');

    // A hole reads as zeros, without a fetch from the store.
    const zeros = await ok(`dd if='${m.p('big')}' bs=1M skip=${512 * 1024} count=4 status=none | od -An -tx1 | sort -u`);
    t.equal(zeros.replace(/\s+/g, ' ').trim(), '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 *', '4 MiB of zeros at 512 GiB');
    const c2 = await counters(m);
    t.equal(grew(c1, c2).fetched, 0, 'nothing fetched from the store for a hole');

    // One byte at the very end: the file is staged sparse, one byte is hashed and stored.
    const w = await sh(`printf Z | dd of='${m.p('big')}' bs=1 seek=${TiB - 1} conv=notrunc status=none`, { timeoutMs: 120_000 });
    t.equal(w.code, 0, w.stderr);
    const c3 = await counters(m);
    const d3 = grew(c2, c3);
    t.equal(d3.written, 1, 'one byte written');
    t.ok(d3.hashed < 4096 && d3.stored < 4096, `hashed ${d3.hashed}, stored ${d3.stored}`);
    t.equal((await ok(`stat -c %s '${m.p('big')}'`)).trim(), String(TiB), 'still 1 TiB');
    t.equal(await ok(`tail -c 1 '${m.p('big')}'`), 'Z', 'the byte is there');
    t.equal(await ok(`dd if='${m.p('big')}' bs=1 skip=${TiB - 2} count=2 status=none | od -An -c`), '  \\0   Z\n', 'after a zero');
    t.ok((await storeBytes(m)) - store0 < 8192, 'the store holds headers and one byte');

    // fallocate (mode 0) extends like truncate; a punched hole is a hole (test/mount-fallocate).
    const fa = await sh(`fallocate -l 2T '${m.p('alloc')}'`, { timeoutMs: 120_000 });
    t.equal(fa.code, 0, fa.stderr);
    t.equal((await ok(`stat -c %s '${m.p('alloc')}'`)).trim(), String(2 * TiB));
    const fk = await sh(`fallocate --keep-size -o 0 -l 1G '${m.p('kept.txt')}'`);
    t.equal(fk.code, 0, fk.stderr);
    t.equal(await ok(`cat '${m.p('kept.txt')}'`), 'kept\n', '--keep-size changes nothing');
    const punch = await sh(`fallocate --punch-hole -o 0 -l 4096 '${m.p('alloc')}'`, { timeoutMs: 120_000 });
    t.equal(punch.code, 0, punch.stderr);
    t.equal((await ok(`stat -c %s '${m.p('alloc')}'`)).trim(), String(2 * TiB), 'a punched hole keeps the size');
    const c4 = await counters(m);
    t.ok(grew(c3, c4).stored < 4096, 'fallocate stored nothing but a header');

    t.equal(await m.stop(), 0);
    const again = await startMount({ dir: m.dir });
    t.teardown(() => cleanup(again));
    t.equal(await ok(`tail -c 1 '${again.p('big')}'`), 'Z', 'after a remount');
    t.equal(await again.stop(), 0);
    await expectFsckClean(t, m.library);
    expectSameFiles(t, before, await librarySha256(m.library), 'earlier files');
  });

  t.test('D8: a sparse file reads like a local sparse file made the same way; cp --sparse=always stays small', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m, { keepDir: true }));
    const before = await librarySha256(m.library);
    const chunk = randomBytes(300_000);
    await writeFile(join(m.dir, 'chunk'), chunk);
    // The same commands on a local file and on one in the mount: 64 MiB with data at three places.
    const make = (f: string): string =>
      `truncate -s 64M '${f}' && dd if='${m.dir}/chunk' of='${f}' bs=100000 seek=100 conv=notrunc status=none && ` +
      `printf 'head' | dd of='${f}' conv=notrunc status=none && dd if='${m.dir}/chunk' of='${f}' bs=1 seek=${64 * MiB - 1000} count=1000 conv=notrunc status=none`;
    await ok(make(join(m.dir, 'local.bin')));
    const c0 = await counters(m);
    await ok(make(m.p('s.bin')));
    const c1 = await counters(m);
    const d = grew(c0, c1);
    t.ok(d.stored < 2 * MiB, `stored ${d.stored} bytes for 64 MiB with ~1.3 MB of data (every commit of the four steps counts)`);
    t.ok(d.hashed < 2 * MiB, `hashed ${d.hashed}`);
    t.ok(d.sparse >= 1, 'committed sparse');
    const local = await sha256File(join(m.dir, 'local.bin'));
    t.equal(await sha256File(m.p('s.bin')), local, 'SHA-256 through the mount = the local sparse file');
    t.ok(Number((await ok(`stat -c %b '${m.p('s.bin')}'`)).trim()) * 512 < 4 * MiB, 'st_blocks counts what is stored');
    const c2 = await counters(m);
    t.ok(grew(c1, c2).fetched < 4 * MiB, `reading all 64 MiB fetched only the data (${grew(c1, c2).fetched} bytes)`);
    await ok(`cp --sparse=always '${m.p('s.bin')}' '${m.dir}/out.bin'`);
    t.equal(await sha256File(join(m.dir, 'out.bin')), local, 'the copy is byte for byte');
    t.ok(Number((await ok(`du -k '${m.dir}/out.bin' | cut -f1`)).trim()) < 4096, 'and stays small on disk');
    const cat = await sh(`'${process.execPath}' '${CLI}' --library '${m.library}' cat s.bin | sha256sum`);
    t.equal(cat.stdout, `${local}  -\n`, 'smhfs cat reads it through its layout');
    // Opened for writing again: only the data is copied into the staging file, holes stay holes.
    const c3 = await counters(m);
    await ok(`printf 'tail' | dd of='${m.p('s.bin')}' bs=1 seek=${32 * MiB} conv=notrunc status=none`);
    await ok(`printf 'tail' | dd of='${m.dir}/local.bin' bs=1 seek=${32 * MiB} conv=notrunc status=none`);
    t.ok(grew(c3, await counters(m)).fetched < 4 * MiB, 'staging a sparse file fetched only its data');
    t.equal(await sha256File(m.p('s.bin')), await sha256File(join(m.dir, 'local.bin')), 'still equal after a rewrite');
    t.equal(await m.stop(), 0);
    await expectFsckClean(t, m.library);
    expectSameFiles(t, before, await librarySha256(m.library), 'earlier files');
  });

  t.test('D8: without a hole of 1 MiB a file stays dense: key = SHA-256, ETag = MD5 of its bytes', async (t) => {
    const m = await startMount();
    t.teardown(() => cleanup(m, { keepDir: true }));
    // 2 MiB of data around a gap of ~450 KB: small gaps are stored as zeros (the dense format).
    const a = randomBytes(MiB);
    const b = randomBytes(MiB);
    await writeFile(join(m.dir, 'a'), a);
    await writeFile(join(m.dir, 'b'), b);
    await ok(`dd if='${m.dir}/a' of='${m.p('d.bin')}' bs=1M status=none && dd if='${m.dir}/b' of='${m.p('d.bin')}' bs=500000 seek=3 conv=notrunc status=none`);
    const bytes = Buffer.concat([a, Buffer.alloc(1_500_000 - MiB), b]);
    const st = await cli(m, ['--json', 'stat', 'd.bin']);
    const info = JSON.parse(st.stdout) as { blob: string; etag: string; size: number; layout?: string };
    t.equal(info.size, bytes.length);
    t.equal(info.layout, undefined, 'no layout');
    t.equal(info.blob, sha(bytes), 'key = SHA-256 of the bytes');
    t.equal(info.etag, createHash('md5').update(bytes).digest('hex'), 'ETag = MD5 of the bytes');
    t.equal(await sha256File(m.p('d.bin')), sha(bytes));
    t.equal(await m.stop(), 0);
    await expectFsckClean(t, m.library);
  });
}
