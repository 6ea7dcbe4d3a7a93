// B1: the library remembers its blob store. `smhfs init` records the store it is given
// in its meta table (URL, S3 endpoint/region/path-style — never credentials); later
// commands without --blobs use it (S3 included: cat, serve, mount); a --blobs naming another store
// is refused with one line and exit 1, changing nothing; `smhfs blobs set` re-points a library
// (no bytes moved, refused when sampled blobs are missing there); local libraries work as before;
// a library from before the record is not pinned to a guess. Plus the spelling rules
// (canonicalBlobConfig / reconcileBlobConfig) as unit tests. Real s3rver, the CLI as a child.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { S3RVER_CREDENTIALS, s3rverStore, startS3rver } from './helpers/s3rver-harness.js';
import { canonicalBlobConfig, reconcileBlobConfig, sameBlobConfig } from '../src/cli/blobs.js';
import { UsageError } from '../src/cli/usage.js';
import { Library } from '../src/store/library.js';
import type { BlobConfig } from '../src/store/types.js';
import { expectFsckClean } from './helpers/fsck.js';
import { CLI, cleanup, fuseUnavailable, ok, smhfs, startMount } from './helpers/mount.js';

const BUCKET = 'smhfs-cfg';
const work = await mkdtemp(join(tmpdir(), 'smhfs-blobs-cfg-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

const s3dir = join(work, 's3rver');
mkdirSync(s3dir);
const s3 = await startS3rver(s3dir, [BUCKET]);
t.teardown(() => s3.close());
const env = {
  AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-east-1',
};
const s3Args = (prefix: string, endpoint = s3.endpoint) => ['--blobs', `s3://${BUCKET}/${prefix}`, '--s3-endpoint', endpoint, '--s3-path-style'];
const run = (lib: string, args: string[]) => smhfs(['--library', lib, ...args], { env });
const src = join(work, 'photo.bin');
const bytes = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));
writeFileSync(src, bytes);
const lib = join(work, 'lib-s3');
const noFuse = await fuseUnavailable();

// ─────────────────────────────── unit: spellings of one store ───────────────────────────────

t.test('B1 canonicalBlobConfig: one spelling per store', async (t) => {
  const lib = '/srv/lib';
  const c = (url: string, more: object = {}, cwd = '/home/u') => canonicalBlobConfig(lib, { url, ...more }, cwd);
  t.same(c('s3://b-1/photos'), { url: 's3://b-1/photos/' }, 'a trailing slash is added');
  t.same(c('s3://b-1/photos///'), { url: 's3://b-1/photos/' }, 'extra trailing slashes go');
  t.same(c('S3://b-1//photos/'), { url: 's3://b-1/photos/' }, 'scheme lowercased, leading slashes of the prefix trimmed');
  t.same(c('s3://b-1'), { url: 's3://b-1/' }, 'no prefix');
  t.same(c('s3://b-1/'), { url: 's3://b-1/' });
  t.same(
    c('s3://b-1/p', { s3Endpoint: 'http://127.0.0.1:9000/', s3Region: ' eu-west-1 ', s3PathStyle: true }),
    { url: 's3://b-1/p/', s3Endpoint: 'http://127.0.0.1:9000', s3Region: 'eu-west-1', s3PathStyle: true },
    'endpoint without trailing slash, region trimmed',
  );
  t.same(c('s3://b-1/p', { s3Endpoint: 'HTTP://MinIO.local:9000' }).s3Endpoint, 'http://minio.local:9000', 'scheme and host lowercased');
  t.same(c('s3://b-1/p', { s3PathStyle: false }), { url: 's3://b-1/p/' }, 'path-style only when on');
  t.throws(() => c('s3://b-1/p', { s3Endpoint: 'http://ak:sk@127.0.0.1:9000' }), UsageError, 'credentials in the endpoint are refused');
  t.throws(() => c('/data/blobs', { s3Region: 'x' }), UsageError, 'S3 options with a local directory');
  t.throws(() => c('ftp://x/y'), UsageError, 'unsupported scheme');

  t.same(c('/srv/lib/blobs'), { url: 'blobs' }, 'the default folder, absolute');
  t.same(c('/srv/lib/blobs/'), { url: 'blobs' }, 'with a trailing slash');
  t.same(c('file:///srv/lib/blobs'), { url: 'blobs' }, 'as a file: URL');
  t.same(c('../../srv/lib/blobs', {}, '/home/u'), { url: 'blobs' }, 'relative to the working directory');
  t.same(c('b2', {}, '/srv/lib'), { url: 'b2' }, 'inside the library: relative to it');
  t.same(c('data', {}, '/home/u'), { url: '/home/u/data' }, 'outside the library: absolute');
  t.same(c('/srv/library-2/blobs'), { url: '/srv/library-2/blobs' }, 'a sibling with a common name prefix is outside');
});

t.test('B1 reconcileBlobConfig: same store in another spelling, left-out S3 options come from the record', async (t) => {
  const lib = '/srv/lib';
  const rec = { url: 's3://b-1/p/', s3Endpoint: 'http://h:9000', s3PathStyle: true };
  const given = (url: string, more: object = {}) => canonicalBlobConfig(lib, { url, ...more }, '/');
  t.same(reconcileBlobConfig(lib, given('s3://b-1/p'), rec), rec, 'URL alone: endpoint and path-style from the record');
  t.same(reconcileBlobConfig(lib, given('s3://b-1/p/', { s3Endpoint: 'http://h:9000/', s3PathStyle: true }), rec), rec, 'everything again');
  t.equal(reconcileBlobConfig(lib, given('s3://b-1/q'), rec), undefined, 'another prefix');
  t.equal(reconcileBlobConfig(lib, given('s3://b-2/p'), rec), undefined, 'another bucket');
  t.equal(reconcileBlobConfig(lib, given('s3://b-1/p', { s3Endpoint: 'http://other:9000' }), rec), undefined, 'another endpoint');
  t.equal(reconcileBlobConfig(lib, given('s3://b-1/p', { s3Region: 'eu-west-1' }), rec), undefined, 'a region the record does not have');
  t.equal(reconcileBlobConfig(lib, given('s3://b-1/p', { s3PathStyle: true }), { url: 's3://b-1/p/' }), undefined, 'path-style the record does not have');
  t.equal(reconcileBlobConfig(lib, given('/srv/lib/blobs'), rec), undefined, 'local against S3');
  t.same(reconcileBlobConfig(lib, given('/srv/lib/blobs/'), { url: 'blobs' }), { url: 'blobs' }, 'the default folder');
  t.equal(reconcileBlobConfig(lib, given('/srv/other'), { url: 'blobs' }), undefined, 'another folder');
  t.ok(sameBlobConfig(lib, { url: 's3://b-1/p' }, { url: 's3://b-1/p/' }));
  t.notOk(sameBlobConfig(lib, { url: 's3://b-1/p/' }, { url: 's3://b-1/p/', s3PathStyle: true }), 'set compares every option');
});

// ─────────────────────────────── the CLI against s3rver ───────────────────────────────


/** The library's meta table (the CLI is not running: a plain read). */
function meta(dir: string): Record<string, string> {
  const db = new Database(join(dir, 'library.db'), { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries((db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map((r) => [r.key, r.value]));
  } finally {
    db.close();
  }
}
/** Blob objects under a prefix, as s3rver keeps them on disk. */
const objects = (prefix: string): string[] =>
  existsSync(join(s3dir, BUCKET, prefix)) ? readdirSync(join(s3dir, BUCKET, prefix)).filter((n) => /^[0-9a-f]{64}\._S3rver_object$/.test(n)) : [];
/** Blob files of a local store (two levels of fan-out). */
function localBlobs(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory() && depth < 2) walk(join(d, e.name), depth + 1);
      else if (e.isFile() && /^[0-9a-f]{64}$/.test(e.name)) out.push(e.name);
    }
  };
  walk(dir, 0);
  return out;
}

t.test('B1 put with --blobs s3://, then cat without --blobs returns the bytes', async (t) => {
  const init = await run(lib, [...s3Args('lib1'), 'init']);
  t.equal(init.code, 0, init.stderr);
  const mk = await run(lib, [...s3Args('lib1'), 'mkdir', 'photos']);
  t.equal(mk.code, 0, mk.stderr);
  const put = await run(lib, [...s3Args('lib1'), 'put', src, 'photos/photo.bin']);
  t.equal(put.code, 0, put.stderr);
  t.equal(objects('lib1').length, 1, 'the blob is in the bucket');

  const cat = await smhfs(['--library', lib, 'cat', 'photos/photo.bin'], { env });
  t.equal(cat.code, 0, cat.stderr);
  const catBin = await ok(`'${process.execPath}' '${CLI}' --library '${lib}' cat photos/photo.bin | cmp - '${src}' && echo same`, { env });
  t.equal(catBin.trim(), 'same', 'byte-identical without --blobs');
  t.same(localBlobs(join(lib, 'blobs')), [], 'nothing was read from or written to a local store');

  const put2 = await smhfs(['--library', lib, 'put', src, 'photos/copy.bin'], { env });
  t.equal(put2.code, 0, put2.stderr);
  t.same(localBlobs(join(lib, 'blobs')), [], 'a put without --blobs writes to S3 too, never locally');

  const same = await run(lib, ['--blobs', `s3://${BUCKET}/lib1/`, '--s3-endpoint', `${s3.endpoint}/`, 'cat', 'photos/photo.bin']);
  t.equal(same.code, 0, `the same store spelled differently (options left out come from the record): ${same.stderr}`);

  const show = await run(lib, ['--json', 'blobs']);
  t.equal(show.code, 0, show.stderr);
  t.same(JSON.parse(show.stdout), { recorded: true, url: `s3://${BUCKET}/lib1/`, s3Endpoint: s3.endpoint, s3PathStyle: true });
  const text = await run(lib, ['blobs']);
  t.match(text.stdout, new RegExp(`blobs:\\s+s3://${BUCKET}/lib1/\\n.*s3 endpoint:\\s+${s3.endpoint.replace(/\./g, '\\.')}`, 's'));
});

t.test('B1 the record holds the store, never a secret', async (t) => {
  const m = meta(lib);
  t.same(JSON.parse(m['blobs']!), { url: `s3://${BUCKET}/lib1/`, s3Endpoint: s3.endpoint, s3PathStyle: true }, 'URL, endpoint, path-style');
  t.notMatch(m['blobs']!, /S3RVER|secret|credential|access.?key|token/i, 'no credentials in the record');
  const files = ['library.db', 'library.db-wal'].map((f) => join(lib, f)).filter((f) => existsSync(f));
  for (const f of files) t.notOk(readFileSync(f).includes('S3RVER'), `${f} does not contain the key or the secret`);
});

t.test('B1 a different --blobs is refused with one line and exit 1; nothing changes', async (t) => {
  const before = meta(lib);
  const listing = (await run(lib, ['ls', '-l', 'photos'])).stdout;
  const other = join(work, 'elsewhere');
  const cases: Array<[string, string[]]> = [
    ['another prefix', s3Args('lib2')],
    ['another endpoint', s3Args('lib1', 'http://127.0.0.1:9')],
    ['a local directory', ['--blobs', other]],
    ['the local default', ['--blobs', join(lib, 'blobs')]],
  ];
  for (const [what, args] of cases) {
    const r = await run(lib, [...args, 'put', src, 'photos/new.bin']);
    t.equal(r.code, 1, `${what}: exit 1`);
    t.match(r.stderr, /^smhfs: put: \S+: this library keeps its blobs in s3:\/\/smhfs-cfg\/lib1\/ \(endpoint http:\/\/127\.0\.0\.1:\d+, path-style\), not in .+; .*smhfs blobs set .* \(BlobStoreMismatch\)\n$/, `${what}: one helpful line: ${r.stderr}`);
  }
  const cat = await run(lib, ['--blobs', other, 'cat', 'photos/photo.bin']);
  t.equal(cat.code, 1, 'reads are refused too');
  t.same(meta(lib), before, 'the record is unchanged');
  t.equal((await run(lib, ['ls', '-l', 'photos'])).stdout, listing, 'the tree is unchanged');
  t.equal(objects('lib2').length, 0, 'nothing written under the other prefix');
  t.notOk(existsSync(other), 'the other directory was not created');
  t.same(localBlobs(join(lib, 'blobs')), [], 'nothing written locally');
});

t.test('B1 smhfs blobs set re-points the library (moving the bytes is the user\'s job)', async (t) => {
  const before = meta(lib)['blobs'];
  const refused = await run(lib, ['blobs', 'set', `s3://${BUCKET}/lib2`, '--s3-endpoint', s3.endpoint, '--s3-path-style']);
  t.equal(refused.code, 1, 'the blobs are not there yet: refused');
  t.match(refused.stderr, /^smhfs: blobs set: \S+: 1 of 1 sampled blobs .* --force \(BlobsMissing\)\n$/, refused.stderr);
  t.equal(meta(lib)['blobs'], before, 'record unchanged');
  const unreachable = await run(lib, ['blobs', 'set', `s3://no-such-bucket/x`, '--s3-endpoint', s3.endpoint, '--s3-path-style']);
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /does not exist/, 'the new store must be reachable');
  const withBlobs = await run(lib, [...s3Args('lib2'), 'blobs', 'set', `s3://${BUCKET}/lib2`]);
  t.equal(withBlobs.code, 2, '--blobs next to blobs set is a usage error');

  // The user copies the bytes (here with the SDK, as `aws s3 sync` would), then re-points.
  const from = s3rverStore(s3, BUCKET, 'lib1');
  const to = s3rverStore(s3, BUCKET, 'lib2');
  for await (const b of from.list()) await to.putStream(await from.getRange(b.key, 0, b.size));
  const set = await run(lib, ['blobs', 'set', `s3://${BUCKET}/lib2/`, '--s3-endpoint', s3.endpoint, '--s3-path-style']);
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /blobs now s3:\/\/smhfs-cfg\/lib2\/ .*\(was s3:\/\/smhfs-cfg\/lib1\/ .*no bytes were moved/);
  t.same(JSON.parse(meta(lib)['blobs']!), { url: `s3://${BUCKET}/lib2/`, s3Endpoint: s3.endpoint, s3PathStyle: true });
  // Only lib2 has the bytes now: reads without --blobs must come from there.
  for await (const b of from.list()) await from.delete(b.key);
  await from.close();
  await to.close();
  const cat = await ok(`'${process.execPath}' '${CLI}' --library '${lib}' cat photos/photo.bin | cmp - '${src}' && echo same`, { env });
  t.equal(cat.trim(), 'same', 'cat reads from the new store');
  const again = await run(lib, ['blobs', 'set', `s3://${BUCKET}/lib2`, '--s3-endpoint', s3.endpoint, '--s3-path-style']);
  t.equal(again.code, 0);
  t.match(again.stdout, /blobs unchanged/);
  const old = await run(lib, [...s3Args('lib1'), 'cat', 'photos/photo.bin']);
  t.equal(old.code, 1, 'the old store is now the different one');
  t.match(old.stderr, /lib2.*\(BlobStoreMismatch\)$/m);
});

t.test('B1 serve without --blobs serves the recorded S3 store', async (t) => {
  const tok = await run(lib, ['--json', 'token', 'create', '--grant', 'admin']);
  t.equal(tok.code, 0, tok.stderr);
  const { accessToken, libraryId } = JSON.parse(tok.stdout) as { accessToken: string; libraryId: string };
  const child = spawn(process.execPath, [CLI, '--library', lib, 'serve', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 200 && !/at (http:\/\/\S+)/.test(err) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  const url = /at (http:\/\/\S+)/.exec(err)?.[1];
  t.ok(url, `serving: ${err}`);
  if (url) {
    const r = await fetch(`${url}/api/v1/file/${libraryId}/-/photos/photo.bin?access_token=${accessToken}`);
    t.equal(r.status, 200);
    t.ok(Buffer.from(await r.arrayBuffer()).equals(bytes), 'the bytes, from S3');
  }
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('B1 mount without --blobs mounts the recorded S3 store', async (t) => {
  // It mounts: without FUSE it fails (a test needing a component never skips).
  if (noFuse) throw new Error(`this test mounts, but ${noFuse}`);
  const dir = await mkdtemp(join(work, 'mnt-'));
  t.equal((await smhfs(['--library', join(dir, 'lib'), ...s3Args('lib3'), 'init'], { env })).code, 0);
  const put = await smhfs(['--library', join(dir, 'lib'), ...s3Args('lib3'), 'put', src, 'a.bin'], { env });
  t.equal(put.code, 0, put.stderr);
  const m = await startMount({ dir, env });
  t.teardown(() => cleanup(m, { keepDir: true }));
  t.equal((await ok(`cmp '${m.p('a.bin')}' '${src}' && echo same`)).trim(), 'same', 'read through the kernel from S3');
  await ok(`printf written > '${m.p('w.txt')}'`);
  t.equal(objects('lib3').length, 2, 'the new file went to the bucket');
  t.same(localBlobs(join(dir, 'lib', 'blobs')), [], 'and not to a local store');
  const st = await smhfs(['stats', m.mountpoint]);
  t.match(st.stdout, /blobs\s+s3:\/\/smhfs-cfg\/lib3\//, 'stats name the store');
  await m.stop();
});

t.test('B1 a local library keeps working as before, and records the local default', async (t) => {
  const local = join(work, 'lib-local');
  t.equal((await smhfs(['--library', local, 'init'])).code, 0);
  const put = await smhfs(['--library', local, 'put', src, 'x.bin']);
  t.equal(put.code, 0, put.stderr);
  t.same(JSON.parse(meta(local)['blobs']!), { url: 'blobs' }, 'the default, relative to the library folder');
  t.equal(localBlobs(join(local, 'blobs')).length, 1);
  const cat = await ok(`'${process.execPath}' '${CLI}' --library '${local}' cat x.bin | cmp - '${src}' && echo same`);
  t.equal(cat.trim(), 'same');
  for (const spelling of [join(local, 'blobs'), `${join(local, 'blobs')}/`, `file://${join(local, 'blobs')}`]) {
    const r = await smhfs(['--library', local, '--blobs', spelling, 'stat', 'x.bin']);
    t.equal(r.code, 0, `--blobs ${spelling} is the same store: ${r.stderr}`);
  }
  const s3r = await smhfs(['--library', local, ...s3Args('lib9'), 'ls'], { env });
  t.equal(s3r.code, 1, 'an S3 store for a local library is refused');
  t.match(s3r.stderr, /this library keeps its blobs in \S+\/lib-local\/blobs \(the library's own folder\), not in s3:\/\/smhfs-cfg\/lib9\/.*\(BlobStoreMismatch\)$/m);
  const show = await smhfs(['--library', local, 'blobs']);
  t.match(show.stdout, /blobs:\s+\S+\/lib-local\/blobs \(the library's own folder\)\nrecorded:\s+yes/);

  // A directory outside the library is recorded absolute, and used from then on.
  const outside = join(work, 'lib-outside');
  const dirBlobs = join(work, 'outside-blobs');
  t.equal((await smhfs(['--library', outside, '--blobs', dirBlobs, 'init'])).code, 0);
  const p2 = await smhfs(['--library', outside, '--blobs', dirBlobs, 'put', src, 'y.bin']);
  t.equal(p2.code, 0, p2.stderr);
  t.same(JSON.parse(meta(outside)['blobs']!), { url: dirBlobs });
  const c2 = await ok(`'${process.execPath}' '${CLI}' --library '${outside}' cat y.bin | cmp - '${src}' && echo same`);
  t.equal(c2.trim(), 'same', 'cat without --blobs finds the outside directory');
});

t.test('B1 a library from before the record: not pinned to a guess', async (t) => {
  const old = join(work, 'lib-old');
  t.equal((await smhfs(['--library', old, 'init'])).code, 0);
  t.equal((await smhfs(['--library', old, 'put', src, 'z.bin'])).code, 0);
  const db = new Database(join(old, 'library.db'));
  db.prepare("DELETE FROM meta WHERE key = 'blobs'").run();
  db.close();
  const cat = await smhfs(['--library', old, 'stat', 'z.bin']);
  t.equal(cat.code, 0, cat.stderr);
  t.equal(meta(old)['blobs'], undefined, 'a command without --blobs records nothing');
  const show = await smhfs(['--library', old, '--json', 'blobs']);
  t.same(JSON.parse(show.stdout), { recorded: false, url: 'blobs', dir: join(old, 'blobs') });
  const named = await smhfs(['--library', old, '--blobs', join(old, 'blobs'), 'stat', 'z.bin']);
  t.equal(named.code, 0, named.stderr);
  t.same(JSON.parse(meta(old)['blobs']!), { url: 'blobs' }, 'a store the user names is recorded');
});

t.test('B1 store: the record is kept in meta, known fields only', async (t) => {
  const dir = join(work, 'lib-store');
  t.same(Library.peekBlobConfig(dir), { library: false, blobs: undefined }, 'no library yet');
  const l = Library.open(dir, { create: true });
  try {
    t.same(Library.peekBlobConfig(dir), { library: true, blobs: undefined }, 'Library.open alone records nothing (the CLI decides)');
    t.equal(l.blobConfig(), undefined);
    const rec = { url: 's3://b-1/p/', s3Endpoint: 'http://h:9000', s3PathStyle: true, secretAccessKey: 'SK', s3Region: 'r' } as BlobConfig;
    t.same(l.recordBlobConfig(rec), { url: 's3://b-1/p/', s3Endpoint: 'http://h:9000', s3Region: 'r', s3PathStyle: true }, 'unknown fields are dropped');
    t.same(l.recordBlobConfig({ url: 'blobs' }).url, 's3://b-1/p/', 'a second record does not replace the first');
    l.setBlobConfig({ url: 'blobs', s3PathStyle: false });
    t.same(l.blobConfig(), { url: 'blobs' }, 'set replaces it');
    t.same(Library.peekBlobConfig(dir), { library: true, blobs: { url: 'blobs' } }, 'peek sees it while the library is open');
    t.throws(() => l.setBlobConfig({ url: '' }), { code: 'InvalidArgument' });
  } finally {
    l.close();
  }
  const foreign = join(work, 'lib-foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'library.db'), 'not sqlite at all, just text long enough to not be empty'.repeat(20));
  t.same(Library.peekBlobConfig(foreign), { library: true, blobs: undefined }, 'not a library: left to Library.open to refuse');
  const r = await smhfs(['--library', foreign, 'ls']);
  t.match(r.stderr, /NotALibrary/, 'which it does');
});

t.test('B1 a library the user may only read: the record is read, never required to be written', async (t) => {
  const dir = join(work, 'lib-ro');
  t.equal((await smhfs(['--library', dir, 'init'])).code, 0);
  t.equal((await smhfs(['--library', dir, 'put', src, 'r.bin'])).code, 0);
  const before = meta(dir)['blobs'];
  const isRoot = process.getuid?.() === 0;
  const tree = (p: string, file: number, d: number): void => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) tree(join(p, e.name), file, d);
      else chmodSync(join(p, e.name), file);
    }
    chmodSync(p, d);
  };
  chmodSync(work, 0o755);
  tree(dir, 0o444, 0o555);
  t.teardown(() => tree(dir, 0o644, 0o755));
  // An owner's process with the library open (as a mount would be) keeps library.db-shm there,
  // which is what SQLite needs to read a WAL database from a read-only folder.
  const holder = new Database(join(dir, 'library.db'), { readonly: true });
  holder.prepare('SELECT 1').get();
  t.teardown(() => holder.close());
  const as = isRoot ? { uid: 65534, gid: 65534 } : {};
  // `env -u NODE_OPTIONS`: tap's process hooks (added to NODE_OPTIONS) would write into the repo as `nobody`.
  const cliAs = (args: string[]) =>
    spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, CLI, '--library', dir, ...args], { encoding: 'utf8', timeout: 60_000, cwd: work, ...as });
  const r = cliAs(['blobs']);
  t.equal(r.status, 0, `smhfs blobs reads the record: ${r.stderr}`);
  t.match(r.stdout, /recorded:\s+yes/);
  const c = cliAs(['cat', 'r.bin']);
  t.notMatch(c.stderr, /BlobStoreMismatch|blob-store record/, `no record-related failure (Library.open's own read-only rule applies): ${c.stderr.trim()}`);
  t.equal(meta(dir)['blobs'], before, 'record unchanged');
});

t.test('D4: after re-pointing, refusals and read-only use, every library here is consistent', async (t) => {
  await expectFsckClean(t, lib, env, 'the S3 library (re-pointed)');
  for (const name of ['lib-local', 'lib-outside', 'lib-old']) await expectFsckClean(t, join(work, name), {}, name);
});
