/**
 * D4: `smhfs fsck [--repair] [--json]` — the CLI as a user runs it. A library is damaged on
 * purpose (rows removed or bent with SQL, blob files removed or changed), then fsck must name
 * every problem, exit 4, repair with --repair only what loses no byte (exit 4 while some are
 * left, 1 when all were fixed), and exit 0 once the library is whole again.
 */
import { rmSync, truncateSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import t from 'tap';
import { LocalBlobStore } from '../src/blob/local-store.js';
import { Library } from '../src/store/library.js';
import { scratchLibrary, smhfs } from './cli-helpers.js';
import { expectFsckClean, librarySha256, runFsck } from './helpers/fsck.js';

function checks(r: Awaited<ReturnType<typeof runFsck>>): Record<string, { count: number; repaired: number; problem: boolean }> {
  const out: Record<string, { count: number; repaired: number; problem: boolean }> = {};
  for (const f of r.report?.findings ?? []) out[f.check] = { count: f.count, repaired: f.repaired, problem: f.problem };
  return out;
}

t.test('D4: a sound library is clean (exit 0), in words and in JSON', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  writeFileSync(join(dir, 'a'), 'alpha');
  for (const args of [['mkdir', '-p', 'd/e'], ['put', 'a', 'd/e/a'], ['ln', 'd/e/a', 'l'], ['put', 'a', 'b'], ['rm', 'b']]) {
    t.equal((await smhfs(dir, lib, args)).code, 0, args.join(' '));
  }
  const human = await smhfs(dir, lib, ['fsck']);
  t.equal(human.code, 0, human.stderr);
  t.match(human.out, /library smh[0-9a-f]+, blobs in local:.*\n.*\d+ nodes.*\nclean\n$/);
  const r = await expectFsckClean(t, lib);
  t.equal(r?.counts.files, 2, 'two files (one in the bin)');
  t.equal(r?.counts.referencedBlobs, 1, 'sharing one blob');
});

t.test('D4: fsck names every problem, --repair fixes what loses no byte, and the rest is the user\'s', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  // The library to damage is set-up, not what is tested (fsck is): made through the store
  // in-process with what the CLI commands would do (mkdir docs, put …, ln …, rm four,
  // mkdir -p big/sub), which spares 9 CLI starts; each step is checked.
  const owner = { uid: process.getuid!(), gid: process.getgid!() };
  const made = Library.open(lib);
  try {
    const space = made.space('-');
    const put = async (path: string, text: string) => space.putFile(path, await made.storeBlobFromStream(Readable.from(Buffer.from(text))), owner).path;
    t.same(space.mkdir('docs', owner).path, ['docs'], 'mkdir docs');
    t.same(await put('docs/one', 'one'), ['docs', 'one'], 'put docs/one');
    t.same(await put('two', 'two two'), ['two'], 'put two');
    t.same(await put('three', 'three three three'), ['three'], 'put three');
    t.same(await put('four', 'four'), ['four'], 'put four');
    t.same(space.createLink('link-to-one', 'docs/one').path, ['link-to-one'], 'ln docs/one link-to-one');
    t.same(space.createLink('link-to-four', 'four').path, ['link-to-four'], 'ln four link-to-four');
    t.ok(space.remove('four', { permanent: false, recursive: false }).recycledItemId, 'rm four (to the bin, with its link)');
    t.same(space.mkdir('big/sub', { ...owner, parents: true }).path, ['big', 'sub'], 'mkdir -p big/sub');
  } finally {
    made.close();
  }
  const store = new LocalBlobStore(join(lib, 'blobs'));
  const keyOf = (p: string): string => {
    const l = Library.open(lib);
    try {
      return l.space().stat(p).blob!;
    } finally {
      l.close();
    }
  };
  const twoKey = keyOf('two');
  const threeKey = keyOf('three');
  const orphan = await store.putStream(Buffer.from('bytes no record mentions'));

  // The damage: SQL on the closed library, and the blob files.
  const db = new Database(join(lib, 'library.db'));
  const id = (p: string): number => {
    const l = p.split('/');
    let cur = (db.prepare("SELECT root FROM spaces WHERE name = '-'").get() as { root: number }).root;
    for (const seg of l) cur = (db.prepare('SELECT node FROM entries WHERE parent = ? AND name = ?').get(cur, seg) as { node: number }).node;
    return cur;
  };
  const oneId = id('docs/one');
  db.prepare('DELETE FROM entries WHERE node = ?').run(oneId); // a file loses its name: nameless
  db.prepare('INSERT INTO entries (parent, name, node, is_dir) VALUES (?, ?, ?, 0)').run(id('docs'), 'ghost', 999_999); // a name without a node
  db.prepare('UPDATE entries SET is_dir = 1 WHERE node = ?').run(id('link-to-one')); // a wrong directory flag
  const sub = id('big/sub');
  db.prepare("UPDATE nodes SET state = 'purging' WHERE id = ?").run(id('big')); // a purge no task will finish
  db.prepare('DELETE FROM entries WHERE node = ?').run(id('big'));
  db.prepare('DELETE FROM recycle_links').run(); // the link cascaded with 'four' loses the record that restores it
  db.close();
  rmSync(store.pathOf(twoKey)); // bytes gone
  truncateSync(store.pathOf(threeKey), 3); // bytes changed

  const found = await runFsck(lib);
  t.equal(found.code, 4, `problems left: exit 4 ${found.stderr}`);
  const c = checks(found);
  for (const check of ['nameless-node', 'entry-without-node', 'entry-dir-flag', 'purge-task', 'detached-link', 'blob-missing', 'blob-size', 'orphan-blob']) {
    t.ok(c[check]?.problem, `reports ${check}`);
  }
  t.match(found.report?.findings.find((f) => f.check === 'blob-missing')?.examples[0], /^two \(node \d+\): [0-9a-f]{64}$/, 'a missing blob names the file');
  t.match(found.report?.findings.find((f) => f.check === 'orphan-blob')?.examples[0], orphan.key);
  const human = await smhfs(dir, lib, ['fsck']);
  t.equal(human.code, 4);
  t.match(human.out, /PROBLEM blob-missing: 1 blob\(s\) the library references are not in local:/);
  t.match(human.out, /"smhfs fsck --repair" fixes those it can/);

  const repaired = await runFsck(lib, {}, ['--repair']);
  t.equal(repaired.code, 4, 'missing and changed bytes and the orphan are left: still exit 4');
  const rc = checks(repaired);
  for (const check of ['nameless-node', 'entry-without-node', 'entry-dir-flag', 'purge-task', 'detached-link']) {
    t.equal(rc[check]?.repaired, rc[check]?.count, `${check} repaired`);
  }
  for (const check of ['blob-missing', 'blob-size', 'orphan-blob']) t.equal(rc[check]?.repaired, 0, `${check} is not touched`);
  t.ok(await store.head(orphan.key), 'the orphan is still there (only gc --delete deletes)');

  // What --repair did, seen through the CLI: the lost file is in lost+found, the purge finished.
  const lf = await smhfs(dir, lib, ['--json', 'ls', 'lost+found']);
  const names = (JSON.parse(lf.out) as Array<{ name: string }>).map((e) => e.name).sort();
  t.ok(names.includes(`#${oneId}`), `the nameless file is lost+found/#${oneId}: ${names.join(', ')}`);
  t.equal((await smhfs(dir, lib, ['cat', `lost+found/#${oneId}`])).out, 'one', 'with its bytes');
  t.equal((await smhfs(dir, lib, ['cat', 'link-to-one'])).out, 'one', 'the link to it still resolves');
  const after = await runFsck(lib);
  t.notOk(checks(after)['purge-task'], 'the purge was queued again and finished');
  t.notOk((await smhfs(dir, lib, ['--json', 'stat', `lost+found/#${sub}`])).code === 0, 'what was being purged is gone, not found');

  // The user's part: bring the bytes back, delete the orphan.
  writeFileSync(store.pathOf(twoKey), 'two two');
  writeFileSync(store.pathOf(threeKey), 'three three three');
  const old = new Date(Date.now() - 2 * 3600_000);
  utimesSync(store.pathOf(orphan.key), old, old);
  t.equal((await smhfs(dir, lib, ['gc', '--delete'])).code, 0);
  await expectFsckClean(t, lib, {}, 'after the user restored the bytes');
  const files = await librarySha256(lib);
  t.equal(files.get('two'), (await import('node:crypto')).createHash('sha256').update('two two').digest('hex'));
  await store.close();
});

t.test('D4: problems all repaired exit 1; then 0', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  t.equal((await smhfs(dir, lib, ['mkdir', 'x'])).code, 0);
  const db = new Database(join(lib, 'library.db'));
  db.prepare("UPDATE entries SET is_dir = 0 WHERE name = 'x'").run();
  db.close();
  t.equal((await runFsck(lib, {}, ['--repair'])).code, 1, 'found and repaired: exit 1');
  t.equal((await runFsck(lib)).code, 0, 'then clean');
});

t.test('D4/D2: a library whose database is gone or damaged: fsck says what is there, changes nothing, exit 4', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  writeFileSync(join(dir, 'f'), 'content');
  t.equal((await smhfs(dir, lib, ['put', 'f', 'f'])).code, 0);
  writeFileSync(join(lib, 'library.db'), '');
  const r = await smhfs(dir, lib, ['fsck']);
  t.equal(r.code, 4, r.stderr);
  t.match(r.out, /PROBLEM database: library\.db is an empty file; the folder holds blobs\/ \(2 files\) and staging\//);
  t.match(r.out, /restore library\.db from a backup/);
  writeFileSync(join(lib, 'library.db'), 'x'.repeat(8192));
  const j = await runFsck(lib);
  t.equal(j.code, 4);
  t.match(j.report?.findings[0]?.summary, /cannot be trusted: not an SQLite database/);
  const none = await smhfs(dir, join(dir, 'nope'), ['fsck']);
  t.equal(none.code, 8, 'no library folder: fsck could not check (8)');
  t.match(none.stderr, /^smhfs: fsck: .*nope: there is no library folder at .*nope \(NotALibrary\)\n$/);
});

t.test('D4/D11: usage counters (df) that disagree with the nodes are a problem; --repair counts them again', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  writeFileSync(join(dir, 'f'), 'twelve bytes');
  for (const args of [['mkdir', 'd'], ['put', 'f', 'd/f']]) t.equal((await smhfs(dir, lib, args)).code, 0, args.join(' '));
  const counted = (): { nodes: number; bytes: number } => {
    const db = new Database(join(lib, 'library.db'), { readonly: true });
    try {
      return db.prepare("SELECT count(*) AS nodes, coalesce(sum(size), 0) AS bytes FROM nodes WHERE space = '-'").get() as { nodes: number; bytes: number };
    } finally {
      db.close();
    }
  };
  const want = counted();
  const db = new Database(join(lib, 'library.db'));
  db.prepare("UPDATE space_usage SET nodes = nodes + 5, bytes = bytes - 7 WHERE space = '-'").run();
  db.close();

  const found = await runFsck(lib);
  t.equal(found.code, 4, `counters off: exit 4 ${found.stderr}`);
  const f = found.report?.findings.find((x) => x.check === 'space-usage');
  t.ok(f?.problem, 'reports space-usage');
  t.match(f?.examples[0], `space -: recorded ${want.nodes + 5} nodes, ${want.bytes - 7} bytes; counted ${want.nodes} nodes, ${want.bytes} bytes`);
  const repaired = await runFsck(lib, {}, ['--repair']);
  t.equal(repaired.code, 1, 'found and repaired: exit 1');
  const l = Library.open(lib);
  try {
    const st = l.space().statfs();
    t.same({ nodes: st.files, bytes: st.bytes }, want, 'statfs answers from the recounted counters');
  } finally {
    l.close();
  }
  await expectFsckClean(t, lib, {}, 'after the repair');
});
