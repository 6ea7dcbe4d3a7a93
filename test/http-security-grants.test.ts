/**
 * Issue 17 finding 3 (grant escalation, C5) as a matrix generated from one table: every SMH
 * endpoint operation that can create or replace something × every grant (and the pairs the table
 * asks for) × each conflict strategy × what sits at the destination (nothing, a file with a bound
 * link to it, a directory) × the source's kind. Each case runs on its own fresh folder `c<n>/`.
 *
 * The table below is the rule as the README and native-notes/http.md state it (the test's own
 * copy, not the server's): an operation needs one of `base`; `overwrite` also needs one of
 * `force`; replacing a file or link also needs one of `replaceFile`; the file endpoint handles
 * files and links, the directory endpoint directories (409 otherwise). Whatever is replaced goes
 * to the recycle bin (T1): links bound to a file replaced by a file stay live (L10), by anything
 * else they go to the bin with it (L11).
 */
import t from 'tap';
import type { Conflict, BlobRef } from '../src/store/types.js';
import { GRANTS } from '../src/http/grants.js';
import { blobOf } from './helpers/store.js';
import { startHarness, type Harness, type Res } from './helpers/http.js';

type Dest = 'absent' | 'file' | 'dir';
type Source = 'file' | 'dir';
interface Row {
  name: string;
  kind: 'file' | 'directory' | 'recycled';
  action: 'link' | 'upload' | 'move' | 'copy' | 'mkdir' | 'restore';
  sources: Source[];
  base: string[];
  force: string[];
  replaceFile: string[];
  ok: number;
}

const LINK_FORCE = ['create_symlink_force', 'upload_file_force'];
const TABLE: Row[] = [
  { name: 'create link', kind: 'file', action: 'link', sources: ['file'], base: ['create_symlink', 'create_symlink_force', 'upload_file', 'upload_file_force'], force: LINK_FORCE, replaceFile: LINK_FORCE, ok: 200 },
  { name: 'upload', kind: 'file', action: 'upload', sources: ['file'], base: ['upload_file', 'upload_file_force'], force: ['upload_file_force'], replaceFile: ['upload_file_force'], ok: 200 },
  { name: 'move (file API)', kind: 'file', action: 'move', sources: ['file', 'dir'], base: ['move_file', 'move_file_force'], force: ['move_file_force'], replaceFile: ['move_file_force'], ok: 200 },
  { name: 'copy (file API)', kind: 'file', action: 'copy', sources: ['file', 'dir'], base: ['copy_file', 'copy_file_force'], force: ['copy_file_force'], replaceFile: ['copy_file_force'], ok: 200 },
  { name: 'move (directory API)', kind: 'directory', action: 'move', sources: ['file', 'dir'], base: ['move_directory', 'move_directory_force'], force: ['move_directory_force'], replaceFile: ['move_file_force'], ok: 200 },
  { name: 'copy (directory API)', kind: 'directory', action: 'copy', sources: ['file', 'dir'], base: ['copy_directory'], force: ['copy_file_force'], replaceFile: ['copy_file_force'], ok: 200 },
  { name: 'create directory', kind: 'directory', action: 'mkdir', sources: ['dir'], base: ['create_directory'], force: ['upload_file_force'], replaceFile: ['upload_file_force'], ok: 201 },
  { name: 'restore', kind: 'recycled', action: 'restore', sources: ['file'], base: ['restore_recycled'], force: ['upload_file_force'], replaceFile: ['upload_file_force'], ok: 200 },
];

/** Every grant alone, none, and the pairs the table combines. */
const GRANT_SETS: string[][] = [
  [],
  ...GRANTS.map((g) => [g]),
  ['copy_directory', 'copy_file_force'],
  ['move_directory_force', 'move_file_force'],
  ['move_directory', 'move_file_force'],
  ['create_directory', 'upload_file_force'],
  ['restore_recycled', 'upload_file_force'],
];
const STRATEGIES: Conflict[] = ['ask', 'rename', 'overwrite'];
const DESTS: Dest[] = ['absent', 'file', 'dir'];

interface Expect {
  status: number;
  code?: string;
  /** The file at the destination went to the bin. */
  replaced?: boolean;
}

function expected(row: Row, source: Source, grants: string[], conflict: Conflict, dest: Dest): Expect {
  const admin = grants.includes('admin') || grants.includes('space_admin');
  const has = (list: string[]) => admin || list.some((g) => grants.includes(g));
  if (!has(row.base)) return { status: 403, code: 'NoPermission' };
  if (conflict === 'overwrite' && !has(row.force)) return { status: 403, code: 'NoPermission' };
  if ((row.action === 'move' || row.action === 'copy') && row.kind === 'file' && source === 'dir') return { status: 409, code: 'IsADirectory' };
  if ((row.action === 'move' || row.action === 'copy') && row.kind === 'directory' && source === 'file') return { status: 409, code: 'NotADirectory' };
  if (dest === 'absent' || conflict === 'rename') return { status: row.ok };
  if (conflict === 'ask' || dest === 'dir') return { status: 409, code: 'SameNameDirectoryOrFileExists' };
  if (!has(row.replaceFile)) return { status: 403, code: 'NoPermission' };
  return { status: row.ok, replaced: true };
}

interface Case {
  row: Row;
  source: Source;
  grants: string[];
  conflict: Conflict;
  dest: Dest;
}

function* cases(): Generator<Case> {
  for (const row of TABLE)
    for (const source of row.sources)
      for (const grants of GRANT_SETS) for (const conflict of STRATEGIES) for (const dest of DESTS) yield { row, source, grants, conflict, dest };
}

/** Folder `c<n>` for one case: the source, the destination as asked, a bound link `bl` to a destination file. */
function setup(h: Harness, n: number, c: Case, refs: { s: BlobRef; d: BlobRef }): { recycled?: number } {
  const space = h.lib.space('-');
  const dir = `c${n}`;
  return h.lib.transaction(() => {
    space.mkdir(dir, {});
    space.putFile(`${dir}/src.txt`, refs.s, { conflict: 'ask' });
    if (c.source === 'dir') space.mkdir(`${dir}/src/inner`, { parents: true });
    else space.putFile(`${dir}/src`, refs.s, { conflict: 'ask' });
    let recycled: number | undefined;
    if (c.row.action === 'restore') {
      space.putFile(`${dir}/dst`, refs.s, { conflict: 'ask' });
      recycled = space.unlink(`${dir}/dst`).recycledItemId!;
    }
    if (c.dest === 'file') {
      space.putFile(`${dir}/dst`, refs.d, { conflict: 'ask' });
      space.createLink(`${dir}/bl`, `${dir}/dst`, { conflict: 'ask' });
    } else if (c.dest === 'dir') space.mkdir(`${dir}/dst/keep`, { parents: true });
    return recycled === undefined ? {} : { recycled };
  });
}

function send(h: Harness, n: number, c: Case, token: string, recycled: number | undefined): Promise<Res> {
  const dir = `c${n}`;
  const query = { conflict_resolution_strategy: c.conflict };
  switch (c.row.action) {
    case 'link':
      return h.smh('PUT', 'file', `${dir}/dst`, { json: { linkTo: `${dir}/src.txt` }, query, token });
    case 'upload':
      return h.smh('PUT', 'file', `${dir}/dst`, { body: 'uploaded', query, token });
    case 'move':
      return h.smh('PUT', c.row.kind as 'file' | 'directory', `${dir}/dst`, { json: { from: `${dir}/src` }, query, token });
    case 'copy':
      return h.smh('PUT', c.row.kind as 'file' | 'directory', `${dir}/dst`, { json: { copyFrom: `${dir}/src` }, query, token });
    case 'mkdir':
      return h.smh('PUT', 'directory', `${dir}/dst`, { query, token });
    case 'restore':
      return h.smh('POST', 'recycled', String(recycled), { query: { ...query, restore: '' }, token });
  }
}

t.test('C5 grant matrix: every endpoint × grant × strategy × destination (finding 3)', async (t) => {
  const h = await startHarness(t);
  const refs = { s: await blobOf(h.lib, 'source'), d: await blobOf(h.lib, 'destination') };
  const tokens = new Map<string, string>();
  const tokenFor = (grants: string[]): string => {
    const key = grants.join(',');
    if (!tokens.has(key)) tokens.set(key, h.token(grants));
    return tokens.get(key)!;
  };
  const space = h.lib.space('-');
  let n = 0;
  let failures = 0;
  const tally = new Map<number, number>();
  for (const c of cases()) {
    n++;
    const { recycled } = setup(h, n, c, refs);
    const want = expected(c.row, c.source, c.grants, c.conflict, c.dest);
    const res = await send(h, n, c, tokenFor(c.grants), recycled);
    tally.set(want.status, (tally.get(want.status) ?? 0) + 1);
    const what = `${c.row.name}, source ${c.source}, grants [${c.grants.join(',')}], ${c.conflict}, destination ${c.dest}`;
    let ok = res.status === want.status && (want.code === undefined || res.json?.code === want.code);
    let detail = `${res.status} ${res.text.slice(0, 160)}`;
    if (ok && want.replaced) {
      // T1: the replaced file is in the bin; L10/L11 for the link bound to it.
      const item = space.trashList().find((i) => i.originalPath === `c${n}/dst` && i.kind === 'file' && i.id !== recycled);
      const byFile = c.row.action === 'upload' || c.row.action === 'restore' || ((c.row.action === 'move' || c.row.action === 'copy') && c.source === 'file');
      let linkLive = false;
      try {
        linkLive = space.stat(`c${n}/bl`, {}).kind === 'link';
      } catch {
        linkLive = false;
      }
      ok = item !== undefined && linkLive === byFile && (item.links.length === 0) === byFile;
      detail = `replaced file in the bin: ${item !== undefined}; bound link ${linkLive ? 'live' : 'binned'} (want ${byFile ? 'live' : 'binned'})`;
    }
    if (!ok) {
      failures++;
      if (failures <= 40) t.fail(`${what}: want ${want.status} ${want.code ?? ''}${want.replaced ? ' (replaced → bin)' : ''}, got ${detail}`);
    }
  }
  t.equal(failures, 0, `${n} cases (${[...tally].map(([s, k]) => `${k}× ${s}`).join(', ')})`);
  t.ok(n > 2000, 'the whole matrix ran');
});

t.test('finding 3 reproducers: no grant escalates, nothing is replaced for good', async (t) => {
  const h = await startHarness(t);
  const space = h.lib.space('-');
  const refs = { s: await blobOf(h.lib, 'src'), v: await blobOf(h.lib, 'victim') };
  space.putFile('src.txt', refs.s, { conflict: 'ask' });
  space.putFile('victim.txt', refs.v, { conflict: 'ask' });
  const copyDir = h.token(['copy_directory']);
  const r1 = await h.smh('PUT', 'directory', 'victim.txt', { json: { copyFrom: 'src.txt' }, query: { conflict_resolution_strategy: 'overwrite' }, token: copyDir });
  t.equal(r1.status, 403, 'copy_directory cannot overwrite a file with a file');
  const copyDirForce = h.token(['copy_directory', 'copy_file_force']);
  const r2 = await h.smh('PUT', 'directory', 'victim.txt', { json: { copyFrom: 'src.txt' }, query: { conflict_resolution_strategy: 'overwrite' }, token: copyDirForce });
  t.equal(r2.status, 409, 'and the directory API does not copy files at all');
  t.equal(r2.json.code, 'NotADirectory');
  const moveDir = h.token(['move_directory']);
  t.equal((await h.smh('PUT', 'directory', 'moved.txt', { json: { from: 'src.txt' }, token: moveDir })).status, 409, 'move_directory does not move files');
  space.mkdir('d', {});
  const moveDirForce = h.token(['move_directory_force']);
  const r3 = await h.smh('PUT', 'directory', 'victim.txt', { json: { from: 'd' }, query: { conflict_resolution_strategy: 'overwrite' }, token: moveDirForce });
  t.equal(r3.status, 403, 'move_directory_force alone cannot replace a file');
  const mkdir = h.token(['create_directory']);
  t.equal((await h.smh('PUT', 'directory', 'victim.txt', { query: { conflict_resolution_strategy: 'overwrite' }, token: mkdir })).status, 403, 'create_directory cannot replace a file');
  const restore = h.token(['restore_recycled']);
  space.putFile('newer.txt', refs.s, { conflict: 'ask' });
  const id = space.unlink('newer.txt').recycledItemId!;
  space.putFile('newer.txt', refs.v, { conflict: 'ask' });
  t.equal((await h.smh('POST', 'recycled', String(id), { query: { restore: '', conflict_resolution_strategy: 'overwrite' }, token: restore })).status, 403, 'restore_recycled cannot replace a newer file');
  t.equal(space.stat('victim.txt', {}).kind, 'file', 'the victim is untouched');
  // With the right grants the replaced file goes to the bin, never away for good.
  const mkdirForce = h.token(['create_directory', 'upload_file_force']);
  t.equal((await h.smh('PUT', 'directory', 'victim.txt', { query: { conflict_resolution_strategy: 'overwrite' }, token: mkdirForce })).status, 201);
  const restoreForce = h.token(['restore_recycled', 'upload_file_force']);
  t.equal((await h.smh('POST', 'recycled', String(id), { query: { restore: '', conflict_resolution_strategy: 'overwrite' }, token: restoreForce })).status, 200);
  const binned = space.trashList().map((i) => i.originalPath).sort();
  t.same(binned, ['newer.txt', 'victim.txt'], 'both replaced files are in the bin (T1)');
});
