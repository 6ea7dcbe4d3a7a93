/**
 * Data safety through the CLI, as the issue's reproducers were seen (SPEC §10):
 *
 * - D2 (reproducer 1): an emptied `library.db` beside blobs is refused by every command and by
 *   the mount, naming `smhfs fsck`; nothing is re-created and every blob stays.
 * - D1 (reproducer 2): a second library on a store that another owns is refused in one line and
 *   changes nothing in either — on a local folder and on one s3rver bucket; a library from before
 *   the marker that shares such a store is refused too, and the first library keeps its bytes.
 * - D3: mounts never list the store to delete; `smhfs gc` lists orphans, deletes only with
 *   --delete and only past the grace period; kill -9 in the middle of `gc --delete` loses nothing.
 *
 * Every test ends with `smhfs fsck` (exit 0) and the SHA-256 of every earlier file.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { Library } from '../src/store/library.js';
import { S3RVER_CREDENTIALS, s3rverStore, startS3rver } from './helpers/s3rver-harness.js';
import type { BlobStore } from '../src/blob/types.js';
import { expectFsckClean, expectSameFiles, librarySha256, runFsck } from './helpers/fsck.js';
import { CLI, fuseUnavailable, isMounted, sh, smhfs } from './helpers/mount.js';

const work = await mkdtemp(join(tmpdir(), 'smhfs-safety-cli-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const noFuse = await fuseUnavailable();
const BUCKET = 'smhfs-safety';
const s3 = await startS3rver(await mkdtemp(join(work, 's3rver-')), [BUCKET]);
t.teardown(() => s3.close());
const s3env = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };

let seq = 0;
const fresh = (name: string): string => join(work, `${name}-${++seq}`);
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Every file under `dir` with its SHA-256 (the store's bytes, whatever they are). */
function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = sha(readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/**
 * `smhfs mount` of a library that must be refused: it exits 1 without mounting. The refusal comes
 * before FUSE is touched, so this runs (and must pass) with or without FUSE.
 */
async function expectMountRefused(t: Test, library: string, env: NodeJS.ProcessEnv = {}, match?: RegExp): Promise<void> {
  const mp = fresh('mnt');
  mkdirSync(mp);
  const r = await smhfs(['--library', library, 'mount', mp], { env, timeoutMs: 30_000 });
  if (await isMounted(mp)) await sh(`fusermount -uz '${mp}' || umount -l '${mp}'`);
  t.equal(r.code, 1, `mount refused: exit 1 (${r.stderr.trim()})`);
  t.notOk(await isMounted(mp), 'nothing mounted');
  if (match) t.match(r.stderr, match, 'with the reason');
}

t.test('D2 (reproducer 1): an emptied library.db is refused by ls, put and mount; no blob is touched', async (t) => {
  const lib = fresh('lib');
  const src = fresh('src');
  mkdirSync(src);
  const before = new Map<string, string>();
  t.equal((await smhfs(['--library', lib, 'init'])).code, 0);
  for (const name of ['a.bin', 'b.bin', 'c.bin']) {
    const bytes = randomBytes(300_000);
    writeFileSync(join(src, name), bytes);
    t.equal((await smhfs(['--library', lib, 'put', join(src, name), name])).code, 0);
    before.set(name, sha(bytes));
  }
  expectSameFiles(t, before, await librarySha256(lib), 'the library before');
  const blobsBefore = treeOf(join(lib, 'blobs'));
  t.equal(Object.keys(blobsBefore).filter((p) => /[0-9a-f]{64}$/.test(p)).length, 3, 'three blobs stored');

  writeFileSync(join(lib, 'library.db'), ''); // `: > library.db`
  for (const args of [['ls'], ['put', join(src, 'a.bin'), 'again.bin'], ['mkdir', 'x'], ['gc', '--delete', '--grace', '0']]) {
    const r = await smhfs(['--library', lib, ...args]);
    t.equal(r.code, 1, `${args[0]}: exit 1`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args[0]}: one line`);
    t.match(r.stderr, /: .*library\.db is an empty file, but the folder holds blobs\/ .*run "smhfs --library .* fsck".* \(NotALibrary\)\n$/, `${args[0]}: names fsck`);
  }
  await expectMountRefused(t, lib, {}, /empty file.*fsck/);
  t.equal(statSync(join(lib, 'library.db')).size, 0, 'the database was not re-created');
  t.same(treeOf(join(lib, 'blobs')), blobsBefore, 'every blob is still there, byte for byte');
  const f = await runFsck(lib);
  t.equal(f.code, 4, 'fsck: a problem it cannot fix');
  t.equal(f.report?.findings[0]?.check, 'database');
});

t.test('D2: a library folder that does not exist is refused with a hint, and not created', async (t) => {
  const lib = fresh('nolib');
  for (const args of [['ls'], ['mkdir', 'x'], ['token', 'create', '--grant', 'admin']]) {
    const r = await smhfs(['--library', lib, ...args]);
    t.equal(r.code, 1, `${args[0]}: exit 1`);
    t.match(r.stderr, /^smhfs: \S+( \S+)?: \S+: there is no library at \S+; create one with "smhfs --library \S+ init" \(NotALibrary\)\n$/, r.stderr);
  }
  await expectMountRefused(t, lib, {}, /no library at .* init/);
  t.notOk(existsSync(lib), 'no folder was made');
});

interface StoreUnderTest {
  args: string[];
  env: NodeJS.ProcessEnv;
  open(): BlobStore;
  /** Everything the store holds: blob keys and the marker. */
  snapshot(): Promise<{ blobs: string[]; marker: string | undefined }>;
}

async function snapshotOf(store: BlobStore): Promise<{ blobs: string[]; marker: string | undefined }> {
  const blobs: string[] = [];
  for await (const b of store.list()) blobs.push(`${b.key}:${b.size}`);
  return { blobs: blobs.sort(), marker: await store.readMarker!() };
}

function twoLibrariesOneStore(name: string, make: () => StoreUnderTest): void {
  t.test(`D1 (reproducer 2), ${name}: a second library on an owned store is refused, and nothing changes in either`, async (t) => {
    const store = make();
    const run = (lib: string, args: string[], withStore = true) => smhfs(['--library', lib, ...(withStore ? store.args : []), ...args], { env: store.env });
    const A = fresh('A');
    const B2 = fresh('B2');
    const cat = randomBytes(200_000);
    const catFile = fresh('cat.jpg');
    writeFileSync(catFile, cat);
    t.equal((await run(A, ['init'])).code, 0, 'A: init on the empty store');
    t.equal((await run(A, ['put', catFile, 'cat.jpg'], false)).code, 0, 'A: put cat.jpg');
    const s = store.open();
    t.teardown(() => s.close?.());
    const held = await store.snapshot();
    const idA = JSON.parse(held.marker!).library as string;
    t.match(idA, /^smh[0-9a-f]+$/, 'the store is marked with A');

    const init2 = await run(B2, ['init']);
    t.equal(init2.code, 1, 'B2: init on it: exit 1');
    t.equal(init2.stderr.trim().split('\n').length, 1, 'one line');
    t.match(init2.stderr, new RegExp(`: belongs to library ${idA}.* \\(BlobStoreOwned\\)\\n$`), init2.stderr.trim());
    t.notOk(existsSync(B2), 'B2 was not created');
    const mk = await run(B2, ['mkdir', 'x']);
    t.equal(mk.code, 1, 'B2: mkdir x without a library: exit 1 (nothing is created implicitly)');
    t.notOk(existsSync(B2), 'still no B2');
    t.same(await store.snapshot(), held, 'the store is unchanged');

    // A library from before markers existed that names the same store (the old README made this
    // easy): made here with its own store, then its record bent to A's store.
    const B3 = fresh('B3');
    t.equal((await smhfs(['--library', B3, 'init'])).code, 0);
    t.equal((await smhfs(['--library', B3, 'mkdir', 'mine'])).code, 0);
    const db = new Database(join(B3, 'library.db'));
    const record = JSON.parse((db.prepare("SELECT value FROM meta WHERE key = 'blobs'").get() as { value: string }).value) as Record<string, unknown>;
    const aRecord = JSON.parse(readMetaBlobs(A));
    db.prepare("UPDATE meta SET value = ? WHERE key = 'blobs'").run(JSON.stringify(aRecord));
    db.close();
    t.not(JSON.stringify(record), JSON.stringify(aRecord));
    for (const args of [['ls'], ['mkdir', 'x'], ['put', catFile, 'x.jpg']]) {
      const r = await run(B3, args, false);
      t.equal(r.code, 1, `B3 ${args[0]}: exit 1`);
      t.match(r.stderr, new RegExp(`^smhfs: ${args[0]}: .*: belongs to library ${idA}, not to this one.* \\(BlobStoreOwned\\)\\n$`), r.stderr.trim());
    }
    await expectMountRefused(t, B3, store.env, /BlobStoreOwned/);
    t.same(await store.snapshot(), held, 'the store is still unchanged');

    const back = await sh(`set -o pipefail; '${process.execPath}' '${CLI}' --library '${A}' cat cat.jpg | sha256sum`, { env: store.env });
    t.equal(back.code, 0, back.stderr);
    t.equal(back.stdout.split(' ')[0], sha(cat), 'A still has its bytes');
    await expectFsckClean(t, A, store.env, 'A');
  });
}

function readMetaBlobs(lib: string): string {
  const db = new Database(join(lib, 'library.db'), { readonly: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'blobs'").get() as { value: string }).value;
  } finally {
    db.close();
  }
}

twoLibrariesOneStore('a local folder', () => {
  const dir = fresh('store');
  return {
    args: ['--blobs', dir],
    env: {},
    open: () => new LocalBlobStore(dir, { prepare: false }),
    snapshot: () => snapshotOf(new LocalBlobStore(dir, { prepare: false })),
  };
});

twoLibrariesOneStore('one s3rver bucket', () => {
  const prefix = `media-${++seq}`;
  return {
    args: ['--blobs', `s3://${BUCKET}/${prefix}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'],
    env: s3env,
    open: () => s3rverStore(s3, BUCKET, prefix),
    snapshot: async () => {
      const st = s3rverStore(s3, BUCKET, prefix);
      try {
        return await snapshotOf(st);
      } finally {
        await st.close();
      }
    },
  };
});

t.test('D1: a library from before markers adopts a store holding its own blobs; an unmarked store of others is refused', async (t) => {
  const lib = fresh('old');
  const f = fresh('f');
  writeFileSync(f, 'mine');
  t.equal((await smhfs(['--library', lib, 'init'])).code, 0);
  t.equal((await smhfs(['--library', lib, 'put', f, 'f'])).code, 0);
  const marker = join(lib, 'blobs', 'smhfs-library.json');
  const text = readFileSync(marker, 'utf8');
  await rm(marker); // as a library made before markers
  const ls = await smhfs(['--library', lib, 'ls']);
  t.equal(ls.code, 0, `adopted: ${ls.stderr}`);
  t.equal(readFileSync(marker, 'utf8').includes(JSON.parse(text).library), true, 'the marker names it again');

  // A pre-marker library pointed at an unmarked folder of someone else's blobs.
  const foreign = fresh('foreign');
  const other = new LocalBlobStore(foreign);
  await other.putStream(Buffer.from('not yours'));
  const old2 = fresh('old2');
  t.equal((await smhfs(['--library', old2, 'init'])).code, 0);
  t.equal((await smhfs(['--library', old2, 'put', f, 'f'])).code, 0);
  const db = new Database(join(old2, 'library.db'));
  db.prepare("UPDATE meta SET value = ? WHERE key = 'blobs'").run(JSON.stringify({ url: foreign }));
  db.close();
  const r = await smhfs(['--library', old2, 'ls']);
  t.equal(r.code, 1);
  t.match(r.stderr, /: has no smhfs owner marker and 1 of 1 sampled blobs this library references are not in it.* \(BlobStoreOwned\)\n$/);
  t.notOk(existsSync(join(foreign, 'smhfs-library.json')), 'not marked');
  // and init never starts on a non-empty folder
  const r2 = await smhfs(['--library', fresh('new'), '--blobs', foreign, 'init']);
  t.equal(r2.code, 1);
  t.match(r2.stderr, /: has no smhfs owner marker and it is not empty.* \(BlobStoreOwned\)\n$/);
});

t.test('D3: a mount never lists the store to delete: a key no record mentions survives mount and unmount', async (t) => {
  // It mounts: without FUSE it fails (a test needing a component never skips).
  if (noFuse) throw new Error(`this test mounts, but ${noFuse}`);
  const lib = fresh('lib');
  t.equal((await smhfs(['--library', lib, 'init'])).code, 0);
  const stranger = await new LocalBlobStore(join(lib, 'blobs')).putStream(Buffer.from('bytes written by something else'));
  const mp = fresh('mnt');
  mkdirSync(mp);
  const child = spawn(process.execPath, [CLI, '--library', lib, 'mount', mp], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  t.teardown(async () => {
    if (await isMounted(mp)) await sh(`fusermount -uz '${mp}'`);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 400 && !out.includes('serving'); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /serving/, 'mounted');
  await new Promise((r) => setTimeout(r, 1500)); // the background tick runs at once
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  t.ok(existsSync(new LocalBlobStore(join(lib, 'blobs')).pathOf(stranger.key)), 'the unknown key is still there');
  const f = await runFsck(lib);
  t.equal(f.code, 4, 'fsck calls it an orphan');
  t.equal(f.report?.findings.find((x) => x.problem)?.check, 'orphan-blob');
});

t.test('D3: gc lists orphans, deletes only with --delete, only past the grace period', async (t) => {
  const lib = fresh('lib');
  const f = fresh('f');
  writeFileSync(f, 'kept');
  t.equal((await smhfs(['--library', lib, 'init'])).code, 0);
  t.equal((await smhfs(['--library', lib, 'put', f, 'kept'])).code, 0);
  const before = await librarySha256(lib);
  const store = new LocalBlobStore(join(lib, 'blobs'));
  const young = await store.putStream(Buffer.from('a young orphan'));
  const old = await store.putStream(Buffer.from('an old orphan'));
  const past = new Date(Date.now() - 2 * 3600_000);
  utimesSync(store.pathOf(old.key), past, past);

  const dry = await smhfs(['--library', lib, 'gc']);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /^2 orphans \(\d+ bytes\) in local:/);
  t.match(dry.stdout, /nothing deleted \(a dry run\): "smhfs gc --delete" deletes the 1 older than 1h/);
  t.ok(await store.head(young.key));
  t.ok(await store.head(old.key), 'a dry run deletes nothing');

  const del = await smhfs(['--library', lib, '--json', 'gc', '--delete']);
  t.equal(del.code, 0, del.stderr);
  const j = JSON.parse(del.stdout) as { deleted: number; orphans: Array<{ key: string; pastGrace: boolean }> };
  t.equal(j.deleted, 1);
  t.ok(await store.head(young.key), 'the young orphan stays (it may be an upload in flight elsewhere)');
  t.equal(await store.head(old.key), undefined, 'the old one is gone');
  t.equal((await smhfs(['--library', lib, 'gc', '--delete', '--grace', '0'])).code, 0);
  t.equal(await store.head(young.key), undefined, '--grace 0 takes it too');
  await expectFsckClean(t, lib);
  expectSameFiles(t, before, await librarySha256(lib));
  const bad = await smhfs(['--library', lib, 'gc', '--grace', 'soon']);
  t.equal(bad.code, 2, 'a bad duration is a usage error');
});

t.test('D3: kill -9 during gc --delete: nothing referenced is lost; the next gc finishes; fsck clean', async (t) => {
  const lib = fresh('lib');
  const src = fresh('src');
  mkdirSync(src);
  t.equal((await smhfs(['--library', lib, 'init'])).code, 0);
  // The referenced files are set-up here, not what is tested (gc is): stored through the store
  // in-process, which spares 8 CLI starts; each is checked.
  const l = Library.open(lib);
  try {
    for (let i = 0; i < 8; i++) {
      const bytes = randomBytes(50_000 + i);
      writeFileSync(join(src, `f${i}`), bytes);
      const placed = l.space('-').putFile(`f${i}`, await l.storeBlobFromStream(Readable.from(bytes)), { uid: process.getuid!(), gid: process.getgid!() });
      t.same([placed.path, placed.info.size, placed.info.blob], [[`f${i}`], 50_000 + i, sha(bytes)], `f${i} stored`);
    }
  } finally {
    l.close();
  }
  const before = await librarySha256(lib);
  // Many orphans, so that the kill lands while gc is deleting them.
  // Written straight where the store keeps a key (its SHA-256): the store's own put fsyncs each
  // file and its folder, 6,000 fsyncs that took over a minute and test nothing here.
  const store = new LocalBlobStore(join(lib, 'blobs'));
  const orphans: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const bytes = Buffer.from(`orphan ${i}`);
    const key = createHash('sha256').update(bytes).digest('hex');
    mkdirSync(join(store.pathOf(key), '..'), { recursive: true });
    writeFileSync(store.pathOf(key), bytes);
    orphans.push(key);
  }
  t.equal((await store.head(orphans[0]!))?.size, 'orphan 0'.length, 'an orphan written this way is a key of the store');
  const countLeft = (): number => orphans.filter((k) => existsSync(store.pathOf(k))).length;

  const gc = spawn(process.execPath, [CLI, '--library', lib, 'gc', '--delete', '--grace', '0'], { stdio: 'ignore' });
  const exited = new Promise<number | string>((r) => gc.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  let left = orphans.length;
  for (let i = 0; i < 3000 && left === orphans.length; i++) {
    await new Promise((r) => setTimeout(r, 5));
    left = countLeft();
  }
  gc.kill('SIGKILL');
  const how = await exited;
  t.comment(`gc ${how === 'SIGKILL' ? 'killed' : `exited (${how})`} with ${countLeft()} of ${orphans.length} orphans left`);

  // Nothing any file references was touched; what remains is orphans and the dead gc's rows.
  expectSameFiles(t, before, await librarySha256(lib), 'after the kill');
  const f = await runFsck(lib);
  const problems = f.report?.findings.filter((x) => x.problem).map((x) => x.check) ?? [];
  t.ok(problems.every((c) => c === 'orphan-blob'), `only orphans are left as problems: ${problems.join(', ') || 'none'}`);

  const again = await smhfs(['--library', lib, 'gc', '--delete', '--grace', '0']);
  t.equal(again.code, 0, again.stderr);
  t.equal(countLeft(), 0, 'the next gc deleted the rest');
  await expectFsckClean(t, lib, {}, 'after the second gc');
  expectSameFiles(t, before, await librarySha256(lib), 'at the end');
});

t.test('D5 (reproducer 3, CLI): names that are not UTF-8 are refused in one line, never altered, never merged', async (t) => {
  const lib = fresh('lib');
  const src = fresh('src');
  mkdirSync(src);
  writeFileSync(join(src, 'one'), 'first file');
  writeFileSync(join(src, 'two'), 'second file');
  t.equal((await smhfs(['--library', lib, 'init'])).code, 0);
  // Raw bytes reach the CLI only through a shell: Node's own spawn would encode the string as UTF-8.
  const cli = `'${process.execPath}' '${CLI}' --library '${lib}'`;
  for (const [what, command, cmd] of [
    ['put to caf\\xe9.txt', 'put', `${cli} put '${src}/one' $'caf\\xe9.txt'`],
    ['put to caf\\xe8.txt', 'put', `${cli} put '${src}/two' $'caf\\xe8.txt'`],
    ['mkdir', 'mkdir', `${cli} mkdir $'d\\xff'`],
    ['ln', 'ln', `${cli} ln one $'l\\xfe'`],
    ['trash restore', 'trash restore', `${cli} --json trash restore $'\\xff'`],
  ] as const) {
    const r = await sh(cmd);
    t.equal(r.code, 1, `${what}: exit 1`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
    // The shape of every CLI error: smhfs: <command>: <subject>: <message> (<code>)
    t.match(
      r.stderr,
      new RegExp(`^smhfs: ${command}: \\$'[^']*\\\\x[ef][0-9a-f][^']*': argument \\d+ is not valid UTF-8; smhfs keeps names exactly as given.* \\(NameNotUtf8\\)\\n$`),
      `${what}: ${r.stderr.trim()}`,
    );
  }
  const ls = await smhfs(['--library', lib, '--json', 'ls']);
  t.same(JSON.parse(ls.stdout), [], 'nothing was created (no caf\uFFFD.txt)');
  const ok = await sh(`${cli} put '${src}/one' 'café.txt' && ${cli} put '${src}/two' 'cafè.txt'`);
  t.equal(ok.code, 0, `UTF-8 names are fine: ${ok.stderr}`);
  const names = (JSON.parse((await smhfs(['--library', lib, '--json', 'ls'])).stdout) as Array<{ name: string }>).map((e) => e.name).sort();
  t.same(names, ['café.txt', 'cafè.txt'].sort(), 'two names, two files');
  await expectFsckClean(t, lib);
});
