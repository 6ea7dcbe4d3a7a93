/**
 * Data safety on the store side (SPEC §10): blob bytes are deleted only from the library's own
 * records (D3) and never while any process holds them (D7, the database part). These run on a
 * real local blob store, with other processes played by child processes.
 */
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FaultInjectingStore } from '../src/blob/fault-store.js';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { Library } from '../src/store/library.js';
import { blobOf, expectCode, put, read, sha256, tempDir } from './helpers/store.js';
import { rmSync } from 'node:fs';

const HOLD_CHILD = fileURLToPath(new URL('./helpers/hold-child.js', import.meta.url));

function localLib(t: Test): { dir: string; lib: Library; blobs: LocalBlobStore } {
  const dir = tempDir('smhfs-safety-');
  const lib = Library.open(dir, { create: true });
  t.teardown(() => {
    lib.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, lib, blobs: lib.blobs as LocalBlobStore };
}

/** Start a process holding `key`; resolves once it holds it. */
async function holder(t: Test, dir: string, key: string): Promise<{ child: ChildProcess; line: () => Promise<string> }> {
  const child = spawn(process.execPath, [HOLD_CHILD, dir, key], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const line = async (): Promise<string> => {
    const r = await lines.next();
    return r.done ? '' : String(r.value);
  };
  t.equal(await line(), 'held', 'the other process holds the blob');
  return { child, line };
}

t.test('D7: a blob held by another process survives the purge of its last reference until released', async (t) => {
  const { dir, lib, blobs } = localLib(t);
  const space = lib.space();
  const info = (await put(lib, space, 'movie.bin', 'frames and frames', { conflict: 'ask' })).info;
  const key = info.blob!;
  const h = await holder(t, dir, key);

  space.remove('movie.bin', { permanent: true });
  await lib.collectGarbage();
  t.ok(await blobs.head(key), 'held: the purge left the bytes in the store');
  t.equal(lib.queuedBlobCount(), 1, 'and the key stays on the deletion queue');
  t.equal((await lib.blobs.getRange(key, 0, 6)).toString(), 'frames', 'the holder can still read them');

  h.child.stdin!.write('release\n');
  t.equal(await h.line(), 'released');
  t.equal(await blobs.head(key), undefined, 'the releasing process collected them');
  t.equal(lib.queuedBlobCount(), 0);
  await expectCode(t, () => lib.holdBlob(key), 'FileNotFound', 'a hold on deleted bytes is refused');
});

t.test('D7: the holds of a process killed with SIGKILL are reaped, then its blob is collected', async (t) => {
  const { dir, lib, blobs } = localLib(t);
  const space = lib.space();
  const key = (await put(lib, space, 'a.bin', 'held by a crashing reader', { conflict: 'ask' })).info.blob!;
  const h = await holder(t, dir, key);
  const recycledItemId = space.unlink('a.bin').recycledItemId!;
  space.purge(recycledItemId);
  await lib.collectGarbage();
  t.ok(await blobs.head(key), 'held while the reader lives');
  h.child.kill('SIGKILL');
  await once(h.child, 'exit');
  const r = await lib.collectGarbage();
  t.equal(r.reaped.holds, 1, "the dead reader's hold was reaped");
  t.equal(await blobs.head(key), undefined, 'then the bytes were deleted');
});

t.test('D7: holds of another host count until their heartbeat is 5 minutes old', async (t) => {
  const { lib, blobs } = localLib(t);
  const space = lib.space();
  const key = (await put(lib, space, 'r.bin', 'remote reader', { conflict: 'ask' })).info.blob!;
  const other = `not-${hostname()}:4242:cafe`;
  const now = Date.now() * 1000;
  const hold = lib.db.prepare('INSERT INTO blob_holds (key, owner, heartbeat, created) VALUES (?, ?, ?, ?)');
  const id = Number(hold.run(key, other, now - 60_000_000, now).lastInsertRowid);
  space.remove('r.bin', { permanent: true });
  await lib.collectGarbage();
  t.ok(await blobs.head(key), 'a remote hold with a recent heartbeat is honoured');
  lib.db.prepare('UPDATE blob_holds SET heartbeat = ? WHERE id = ?').run(now - 6 * 60_000_000, id);
  const r = await lib.collectGarbage();
  t.equal(r.reaped.holds, 1, 'a heartbeat older than 5 minutes is a dead holder');
  t.equal(await blobs.head(key), undefined, 'and the bytes go');
});

t.test('D7: holds in one process are counted: the bytes go after the last release', async (t) => {
  const { lib, blobs } = localLib(t);
  const space = lib.space();
  const key = (await put(lib, space, 'c.bin', 'counted', { conflict: 'ask' })).info.blob!;
  const a = lib.holdBlob(key);
  const b = lib.holdBlob(key);
  t.equal((lib.db.prepare('SELECT count(*) AS n FROM blob_holds').get() as { n: number }).n, 1, 'one row per key and process');
  space.remove('c.bin', { permanent: true });
  await lib.idle();
  a.release();
  a.release(); // idempotent: must not release b's share
  await lib.idle();
  t.ok(await blobs.head(key), 'still held by the second hold');
  b.release();
  await lib.idle();
  t.equal(await blobs.head(key), undefined, 'collected by the release');
});

t.test('D3: a crash between the commit and the deletion leaks nothing: the key waits on the queue', async (t) => {
  const dir = tempDir('smhfs-safety-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const local = new LocalBlobStore(join(dir, 'store'));
  const faulty = new FaultInjectingStore(local);
  let lib = Library.open(join(dir, 'lib'), { create: true, blobStore: faulty });
  const key = (await put(lib, lib.space(), 'gone.txt', 'deleted, eventually', { conflict: 'ask' })).info.blob!;
  faulty.failNext(1_000, ['delete']); // the process "dies" before any delete reaches the store
  lib.space().remove('gone.txt', { permanent: true });
  await lib.idle();
  lib.close();
  t.ok(await local.head(key), 'the bytes are still there');

  lib = Library.open(join(dir, 'lib'), { blobStore: local });
  t.teardown(() => lib.close());
  t.equal(lib.queuedBlobCount(), 1, 'the library remembers the key it dropped');
  await lib.collectGarbage();
  t.equal(await local.head(key), undefined, 'the next collection deletes it');
});

t.test('D3: a queued key that is referenced again is kept, and leaves the queue', async (t) => {
  const { lib, blobs } = localLib(t);
  const space = lib.space();
  const key = (await put(lib, space, 'x.txt', 'same bytes', { conflict: 'ask' })).info.blob!;
  // Queue the key without letting the collector run: hold it, drop it, then reference it again.
  const h = lib.holdBlob(key);
  space.remove('x.txt', { permanent: true });
  await put(lib, space, 'y.txt', 'same bytes', { conflict: 'ask' });
  h.release();
  await lib.collectGarbage();
  t.ok(await blobs.head(key), 'the bytes a file references again are kept');
  t.equal(await read(lib, space, 'y.txt'), 'same bytes');
  t.equal(lib.queuedBlobCount(), 0, 'and the key left the queue');
  t.equal(sha256('same bytes'), key);
});

t.test('D3: nothing lists the store at start-up: a key no record mentions stays', async (t) => {
  const { lib, blobs } = localLib(t);
  const stranger = await blobs.putStream(Buffer.from('bytes of some other library'));
  const ref = await blobOf(lib, 'an upload in flight');
  lib.startBackground(60_000);
  await lib.idle();
  await lib.collectGarbage();
  t.ok(await blobs.head(stranger.key), 'an unknown key is never deleted by the background collector');
  t.ok(await blobs.head(ref.key), 'nor a leased one');
  lib.abandonBlob(ref);
  await lib.idle();
  t.equal(await blobs.head(ref.key), undefined, 'an abandoned upload is collected from its own record');
  t.ok(existsSync(blobs.pathOf(stranger.key)));
});

t.test('D10: how a link resolves does not depend on a mount running in the process: the context is per call', async (t) => {
  const { lib } = localLib(t);
  const space = lib.space();
  space.mkdir('a', {});
  await put(lib, space, 'a/f', 'target bytes', { conflict: 'ask' });
  // What the mount does (its mountpoint given with the call): an absolute target under it binds (L1).
  t.equal(space.symlink('bound', '/mnt/x/a/f', { mountpoint: '/mnt/x' }).link?.flavour, 'bound', 'the mount binds an absolute target under its mountpoint');
  // A library that a mount in this process once used must not change how others resolve:
  // the old code kept the mountpoint on the library object.
  (lib as unknown as { mountpoint?: string }).mountpoint = '/mnt/x';
  const made = space.symlink('abs', '/mnt/x/a/f');
  t.equal(made.link?.flavour, 'path', 'without a context the same target is a path link, stored as given');
  await expectCode(t, () => space.resolveRead('abs', 'smh'), 'SourceFileNotFound', 'and leads nowhere for HTTP and the CLI (it would be outside the space)');
  t.equal(space.resolveRead('abs', 'smh', { mountpoint: '/mnt/x' }).node.path, 'a/f', 'the mount, giving its mountpoint, reaches the file');
  t.equal(space.resolveRead('bound', 'smh').node.path, 'a/f', 'a bound link resolves the same everywhere');
  t.equal(space.readlink('abs'), '/mnt/x/a/f', 'readlink returns the stored string (the kernel resolves it)');
});

t.test('D5: the store refuses strings that have no UTF-8 form (lone surrogates) with NameNotUtf8', async (t) => {
  const { lib } = localLib(t);
  const space = lib.space();
  await expectCode(t, () => space.mkdir('caf\uD800', {}), 'NameNotUtf8', 'mkdir');
  await expectCode(t, () => space.createFile('x\uDC00y', {}), 'NameNotUtf8', 'create');
  await expectCode(t, () => space.symlink('l', 'target\uD83D'), 'NameNotUtf8', 'a link target');
  await expectCode(t, () => space.putSymlink('k', 'a/\uDFFF'), 'NameNotUtf8', 'a BOS symlink target');
  await expectCode(t, async () => space.putFile('\uD800.txt', await blobOf(lib, 'x'), {}), 'NameNotUtf8', 'an upload');
  t.equal(space.mkdir('emoji \uD83D\uDE00', {}).info.path, 'emoji \uD83D\uDE00', 'a surrogate pair is a character: fine');
  t.same(space.readdir('').map((e) => e.name).sort(), ['.trash', 'emoji \uD83D\uDE00'], 'nothing else was created');
});
