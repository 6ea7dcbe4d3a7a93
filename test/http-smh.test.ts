/**
 * SMH dialect contract tests (SPEC H1, H2, L2, L4–L16 as seen over HTTP, C1–C5, T1–T5), against a
 * real server on 127.0.0.1 with fetch. The seed document's request and response are reproduced
 * byte for byte where it gives them.
 */
import t from 'tap';
import { download, encPath, expectError, mkdirp, startHarness, upload, type Harness } from './helpers/http.js';

const linkTo = (h: Harness, path: string, target: string, query: Record<string, string> = {}, token?: string) =>
  h.smh('PUT', 'file', encPath(path), { json: { linkTo: target }, query, ...(token !== undefined ? { token } : {}) });

/** Poll the SMH task API until the task is done or failed. */
async function waitTask(h: Harness, id: number) {
  for (let i = 0; ; i++) {
    const r = await h.smh('GET', 'task', String(id));
    if (r.status !== 200 || ['done', 'failed'].includes(r.json[0].status) || i > 500) return r;
    await new Promise((res) => setTimeout(res, 10));
  }
}

const info = async (h: Harness, path: string) => (await h.smh('GET', 'file', encPath(path), { query: { info: '' } })).json;

t.test('seed: PUT /api/v1/file/{LibraryId}/{SpaceId}/{FilePath} {"linkTo"} → 200 {"path": [...]} (L2)', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'foo/bar');
  await mkdirp(h, 'foo/bar2');
  await upload(h, 'foo/bar/file.docx', 'the document');
  await upload(h, 'foo/bar2/file.docx', 'a same-name file');

  // The seed's example request and response, for a link whose name is taken (strategy rename).
  const res = await h.smh('PUT', 'file', 'foo/bar2/file.docx', {
    query: { conflict_resolution_strategy: 'rename' },
    headers: { 'content-type': 'application/json' },
    json: '{\n"linkTo": "foo/bar/file.docx"\n}',
  });
  t.equal(res.status, 200);
  t.match(res.headers['content-type'], /^application\/json/);
  t.same(res.json, { path: ['foo', 'bar2', 'file (1).docx'] }, 'the seed response body');

  // Default strategy is rename (C4); a free name is used as given.
  const d = await linkTo(h, 'foo/bar2/file.docx', 'foo/bar/file.docx');
  t.same(d.json, { path: ['foo', 'bar2', 'file (2).docx'] }, 'default strategy = rename');
  const free = await linkTo(h, 'foo/bar2/fresh.docx', '/foo//bar/file.docx');
  t.same(free.json, { path: ['foo', 'bar2', 'fresh.docx'] }, 'leading / and empty segments of linkTo are ignored (N3)');

  // A symbolic link reads as its target's content.
  const got = await download(h, 'foo/bar2/file (1).docx');
  t.equal(got.status, 200);
  t.equal(got.text, 'the document');

  // ?info: type symlink with linkTo segments.
  const i = await info(h, 'foo/bar2/file (1).docx');
  t.equal(i.type, 'symlink');
  t.same(i.linkTo, ['foo', 'bar', 'file.docx']);
  t.same(i.path, ['foo', 'bar2', 'file (1).docx']);
  const f = await info(h, 'foo/bar/file.docx');
  t.equal(f.type, 'file');
  t.equal(f.size, String('the document'.length));
  const dd = await info(h, 'foo/bar');
  t.equal(dd.type, 'dir');
});

t.test('L2: link creation errors and C1–C3 strategies', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'a/dir');
  await upload(h, 'a/f.txt', 'F');
  await upload(h, 'a/g.txt', 'G');
  t.equal((await linkTo(h, 'a/l', 'a/f.txt')).status, 200);

  expectError(t, await linkTo(h, 'a/x', 'a/missing.txt'), 404, 'SourceFileNotFound', 'missing target');
  const dir = await linkTo(h, 'a/x', 'a/dir');
  expectError(t, dir, 400, 'InvalidSourceFile', 'target is a directory');
  t.match(dir.json.message, /directories are not supported/);
  const sec = await linkTo(h, 'a/x', 'a/l');
  expectError(t, sec, 400, 'InvalidSourceFile', 'target is a link');
  t.match(sec.json.message, /secondary symbolic links are not supported/);
  expectError(t, await linkTo(h, 'nope/x', 'a/f.txt'), 404, 'DirectoryNotFound', 'parent directories are not created');

  // C1 ask
  expectError(t, await linkTo(h, 'a/g.txt', 'a/f.txt', { conflict_resolution_strategy: 'ask' }), 409, 'SameNameDirectoryOrFileExists', 'ask');
  // C2 rename: ext split rules
  t.same((await linkTo(h, 'a/g.txt', 'a/f.txt', { conflict_resolution_strategy: 'rename' })).json, { path: ['a', 'g (1).txt'] });
  // C3 overwrite a file (needs _force; admin has it)
  t.same((await linkTo(h, 'a/g.txt', 'a/f.txt', { conflict_resolution_strategy: 'overwrite' })).json, { path: ['a', 'g.txt'] });
  t.equal((await info(h, 'a/g.txt')).type, 'symlink', 'the file was replaced by the link (L11: to the bin)');
  // C3 overwrite a directory behaves as ask
  expectError(t, await linkTo(h, 'a/dir', 'a/f.txt', { conflict_resolution_strategy: 'overwrite' }), 409, 'SameNameDirectoryOrFileExists', 'overwrite a directory = ask');
  // bad strategy
  expectError(t, await linkTo(h, 'a/y', 'a/f.txt', { conflict_resolution_strategy: 'maybe' }), 400, 'InvalidArgument', 'unknown strategy');
});

t.test('{"path": null} when the parent vanished before the response (L2)', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'p');
  await upload(h, 'f', 'x');
  // The store reports path null when the link's parent is gone by the time it places it; force
  // that outcome by wrapping the space the server gets (the dialect only renders it).
  const realSpace = h.lib.space.bind(h.lib);
  const lib = h.lib as unknown as { space: (n?: string) => unknown };
  lib.space = (name?: string) => {
    const s = realSpace(name);
    return new Proxy(s, {
      get(target, prop, recv) {
        if (prop === 'createLink') {
          return (...args: Parameters<typeof s.createLink>) => ({ ...target.createLink(...args), path: null });
        }
        const v = Reflect.get(target, prop, recv);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  };
  t.teardown(() => {
    lib.space = realSpace;
  });
  const r = await linkTo(h, 'p/l', 'f');
  t.equal(r.status, 200);
  t.equal(r.text, '{"path":null}');
});

t.test('upload, download, Range (206/416), info, ETag', async (t) => {
  const h = await startHarness(t);
  const body = Buffer.from('0123456789abcdefghij');
  const up = await h.smh('PUT', 'file', 'data.bin', { body });
  t.equal(up.status, 200);
  t.same(up.json, { path: ['data.bin'] });
  const etag = up.headers['etag'];
  t.match(etag, /^"[0-9a-f]{32}"$/);

  const full = await download(h, 'data.bin');
  t.equal(full.status, 200);
  t.same(full.body, body);
  t.equal(full.headers['content-length'], '20');
  t.equal(full.headers['etag'], etag);
  t.equal(full.headers['accept-ranges'], 'bytes');

  for (const [range, want, cr] of [
    ['bytes=0-3', '0123', 'bytes 0-3/20'],
    ['bytes=18-', 'ij', 'bytes 18-19/20'],
    ['bytes=-5', 'fghij', 'bytes 15-19/20'],
    ['bytes=5-100', '56789abcdefghij', 'bytes 5-19/20'],
  ] as const) {
    const r = await h.smh('GET', 'file', 'data.bin', { headers: { range } });
    t.equal(r.status, 206, range);
    t.equal(r.text, want, range);
    t.equal(r.headers['content-range'], cr, range);
  }
  for (const range of ['bytes=20-', 'bytes=30-40', 'bytes=5-2', 'bytes=abc', 'items=0-1', 'bytes=0-1,4-5', 'bytes=-0']) {
    const r = await h.smh('GET', 'file', 'data.bin', { headers: { range } });
    expectError(t, r, 416, 'InvalidRange', `Range ${range}`);
    t.equal(r.headers['content-range'], 'bytes */20', `${range}: Content-Range bytes */size`);
  }

  // Empty file
  await upload(h, 'empty', '');
  const e = await download(h, 'empty');
  t.equal(e.status, 200);
  t.equal(e.body.length, 0);
  expectError(t, await download(h, 'missing'), 404, 'FileNotFound', 'download of a missing file');
  await mkdirp(h, 'd');
  expectError(t, await download(h, 'd'), 409, 'IsADirectory', 'download of a directory');

  // Upload conflict strategies: rename default, ask, overwrite keeps identity (L10)
  t.same((await h.smh('PUT', 'file', 'data.bin', { body: 'v2' })).json, { path: ['data (1).bin'] });
  expectError(t, await h.smh('PUT', 'file', 'data.bin', { body: 'v2', query: { conflict_resolution_strategy: 'ask' } }), 409, 'SameNameDirectoryOrFileExists', 'upload ask');
  await linkTo(h, 'l', 'data.bin');
  t.same((await h.smh('PUT', 'file', 'data.bin', { body: 'v3', query: { conflict_resolution_strategy: 'overwrite' } })).json, { path: ['data.bin'] });
  t.equal((await download(h, 'l')).text, 'v3', 'L10: the link shows the new content');

  // Large body streams through (and Range in the middle of it)
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  t.equal((await h.smh('PUT', 'file', 'big', { body: big })).status, 200);
  const gb = await download(h, 'big');
  t.ok(gb.body.equals(big), 'large file round-trips');
  const mid = await h.smh('GET', 'file', 'big', { headers: { range: `bytes=${1024 * 1024 - 3}-${2 * 1024 * 1024 + 5}` } });
  t.equal(mid.status, 206);
  t.ok(mid.body.equals(big.subarray(1024 * 1024 - 3, 2 * 1024 * 1024 + 6)), 'range across pages');
});

t.test('delete (T1, L12, L13), recycle bin list/restore/purge/empty (T4, T5, L16)', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'photos');
  await mkdirp(h, 'links');
  await upload(h, 'photos/cat.jpg', 'meow');
  await linkTo(h, 'links/cat', 'photos/cat.jpg');

  const del = await h.smh('DELETE', 'file', 'photos/cat.jpg');
  t.equal(del.status, 200);
  t.type(del.json.recycledItemId, 'number');
  const id = del.json.recycledItemId as number;
  expectError(t, await h.smh('GET', 'file', 'links/cat', { query: { info: '' } }), 404, 'FileNotFound', 'L12: the bound link went to the bin with its target');

  const list = await h.smh('GET', 'recycled', '');
  t.equal(list.status, 200);
  t.equal(list.json.contents.length, 1);
  t.match(list.json.contents[0], { id, name: 'cat.jpg', type: 'file', originalPath: ['photos', 'cat.jpg'], size: '4', links: [['links', 'cat']] });

  const res = await h.smh('POST', 'recycled', String(id), { query: { restore: '' } });
  t.equal(res.status, 200);
  t.same(res.json, { path: ['photos', 'cat.jpg'] });
  t.equal((await download(h, 'links/cat')).text, 'meow', 'L12: restoring the target restores its links');

  // Restore into a taken name renames (T4/C2)
  const d2 = await h.smh('DELETE', 'file', 'photos/cat.jpg');
  await upload(h, 'photos/cat.jpg', 'another');
  t.same((await h.smh('POST', 'recycled', String(d2.json.recycledItemId), { query: { restore: '' } })).json, { path: ['photos', 'cat (1).jpg'] });

  // Permanent delete: 204, links gone too (L13)
  await linkTo(h, 'links/other', 'photos/cat.jpg');
  const p = await h.smh('DELETE', 'file', 'photos/cat.jpg', { query: { permanent: '1' } });
  t.equal(p.status, 204);
  t.equal(p.body.length, 0);
  expectError(t, await h.smh('GET', 'file', 'links/other', { query: { info: '' } }), 404, 'FileNotFound', 'L13');

  // L16: a link deleted alone whose target is then trashed cannot be restored
  await upload(h, 't.txt', 'T');
  await linkTo(h, 'solo', 't.txt');
  const dl = await h.smh('DELETE', 'file', 'solo');
  await h.smh('DELETE', 'file', 't.txt');
  expectError(t, await h.smh('POST', 'recycled', String(dl.json.recycledItemId), { query: { restore: '' } }), 404, 'SourceFileNotFound', 'L16');

  // purge one item, then empty
  const items = (await h.smh('GET', 'recycled', '')).json.contents as Array<{ id: number }>;
  t.ok(items.length >= 2);
  t.equal((await h.smh('DELETE', 'recycled', String(items[0]!.id))).status, 204);
  expectError(t, await h.smh('DELETE', 'recycled', String(items[0]!.id)), 404, 'RecycledItemNotFound', 'purge twice');
  const empty = await h.smh('DELETE', 'recycled', '');
  t.equal(empty.status, 200);
  t.equal(empty.json.purged, items.length - 1);
  t.same((await h.smh('GET', 'recycled', '')).json.contents, []);
  expectError(t, await h.smh('POST', 'recycled', '999999', { query: { restore: '' } }), 404, 'RecycledItemNotFound', 'unknown item');
  expectError(t, await h.smh('POST', 'recycled', 'abc', { query: { restore: '' } }), 400, 'InvalidArgument', 'non-numeric item id');
  expectError(t, await h.smh('DELETE', 'file', 'nothing-here'), 404, 'FileNotFound', 'delete missing');
  await mkdirp(h, 'adir');
  expectError(t, await h.smh('DELETE', 'file', 'adir'), 409, 'IsADirectory', 'file delete of a directory');
  expectError(t, await h.smh('DELETE', 'file', 'adir', { query: { permanent: '2' } }), 400, 'InvalidArgument', 'permanent=2');
});

t.test('move/rename {"from"} and copy {"copyFrom"} (L8, L9)', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'photos');
  await mkdirp(h, 'archive');
  await upload(h, 'photos/cat.jpg', 'meow');
  await linkTo(h, 'cat-link', 'photos/cat.jpg');

  const mv = await h.smh('PUT', 'file', 'archive/kitty.jpg', { json: { from: 'photos/cat.jpg' } });
  t.equal(mv.status, 200);
  t.same(mv.json, { path: ['archive', 'kitty.jpg'] });
  t.same((await info(h, 'cat-link')).linkTo, ['archive', 'kitty.jpg'], 'L9: the link follows the move');
  t.equal((await download(h, 'cat-link')).text, 'meow');

  // move a directory containing the target (L9)
  const md = await h.smh('PUT', 'directory', 'old-archive', { json: { from: 'archive' } });
  t.same(md.json, { path: ['old-archive'] });
  t.same((await info(h, 'cat-link')).linkTo, ['old-archive', 'kitty.jpg']);

  // copy a link: a new link bound to the same target (L8)
  const cp = await h.smh('PUT', 'file', 'cat-link-2', { json: { copyFrom: 'cat-link' } });
  t.same(cp.json, { path: ['cat-link-2'] });
  t.equal((await info(h, 'cat-link-2')).type, 'symlink');
  await h.smh('PUT', 'file', 'renamed.jpg', { json: { from: 'old-archive/kitty.jpg' } });
  t.same((await info(h, 'cat-link-2')).linkTo, ['renamed.jpg'], 'the copy is bound to the same target');

  // copy a file, conflicts
  t.same((await h.smh('PUT', 'file', 'renamed.jpg', { json: { copyFrom: 'renamed.jpg' } })).json, { path: ['renamed (1).jpg'] });
  expectError(t, await h.smh('PUT', 'file', 'x', { json: { from: 'nope' } }), 404, 'SourceFileNotFound', 'move of a missing source');
  expectError(t, await h.smh('PUT', 'file', 'x', { json: { copyFrom: 'nope' } }), 404, 'SourceFileNotFound', 'copy of a missing source');
  expectError(t, await h.smh('PUT', 'file', 'renamed.jpg', { json: { from: 'cat-link', }, query: { conflict_resolution_strategy: 'ask' } }), 409, 'SameNameDirectoryOrFileExists', 'move ask');
});

t.test('directories: create (ask default), list with marker/limit, delete, async purge task (L15)', async (t) => {
  const h = await startHarness(t);
  const c = await h.smh('PUT', 'directory', 'docs');
  t.equal(c.status, 201);
  t.same(c.json, { path: ['docs'] });
  expectError(t, await h.smh('PUT', 'directory', 'docs'), 409, 'SameNameDirectoryOrFileExists', 'directory create defaults to ask (C4)');
  t.same((await h.smh('PUT', 'directory', 'docs', { query: { conflict_resolution_strategy: 'rename' } })).json, { path: ['docs (1)'] });
  expectError(t, await h.smh('PUT', 'directory', 'no/such/parent'), 404, 'DirectoryNotFound', 'parents are not created');

  const names: string[] = [];
  for (let i = 0; i < 7; i++) {
    names.push(`f${i}.txt`);
    await upload(h, `docs/f${i}.txt`, `content ${i}`);
  }
  await mkdirp(h, 'docs/sub');
  await linkTo(h, 'docs/zz-link', 'docs/f0.txt');
  const seen: Array<{ name: string; type: string; linkTo?: string[] }> = [];
  let marker: string | undefined;
  let pages = 0;
  do {
    const r = await h.smh('GET', 'directory', 'docs', { query: { limit: 3, marker } });
    t.equal(r.status, 200);
    t.same(r.json.path, ['docs']);
    t.equal(r.json.type, 'dir');
    t.ok(r.json.contents.length <= 3);
    seen.push(...r.json.contents);
    marker = r.json.nextMarker;
    pages++;
  } while (marker);
  t.equal(pages, 3);
  t.same(
    seen.map((e) => e.name),
    [...names, 'sub', 'zz-link'].sort(),
  );
  t.match(seen.find((e) => e.name === 'zz-link'), { name: 'zz-link', type: 'symlink', linkTo: ['docs', 'f0.txt'] }, 'listing shows linkTo');
  t.equal(seen.find((e) => e.name === 'sub')!.type, 'dir');
  const root = await h.smh('GET', 'directory', '');
  t.same(root.json.path, []);
  t.notOk((root.json.contents as Array<{ name: string }>).some((e) => e.name === '.trash'), 'the bin view is not listed');
  expectError(t, await h.smh('GET', 'directory', 'docs', { query: { limit: 0 } }), 400, 'InvalidArgument', 'limit 0');
  expectError(t, await h.smh('GET', 'directory', 'docs', { query: { limit: 5000 } }), 400, 'InvalidArgument', 'limit too big');
  expectError(t, await h.smh('GET', 'directory', 'docs', { query: { marker: '!!' } }), 400, 'InvalidArgument', 'bad marker');
  expectError(t, await h.smh('GET', 'directory', 'docs/f1.txt'), 409, 'NotADirectory', 'list a file');
  expectError(t, await h.smh('GET', 'directory', 'nothing'), 404, 'FileNotFound', 'list a missing directory');

  // L14: trash the directory holding a target → the outside link keeps working
  await linkTo(h, 'outside', 'docs/f3.txt');
  const dd = await h.smh('DELETE', 'directory', 'docs');
  t.equal(dd.status, 200);
  t.type(dd.json.recycledItemId, 'number');
  t.equal((await download(h, 'outside')).text, 'content 3', 'L14: the link still reads');
  t.equal((await info(h, 'outside')).linkTo[0], '.trash', 'L14: readlink points into the bin view');
  await h.smh('POST', 'recycled', String(dd.json.recycledItemId), { query: { restore: '' } });
  t.same((await info(h, 'outside')).linkTo, ['docs', 'f3.txt'], 'L14: restored');

  // L15: permanent delete of a non-empty directory is a task
  const pd = await h.smh('DELETE', 'directory', 'docs', { query: { permanent: '1' } });
  t.equal(pd.status, 202);
  t.type(pd.json.taskId, 'number');
  expectError(t, await h.smh('GET', 'directory', 'docs'), 404, 'FileNotFound', 'the directory disappears at once');
  const task = await waitTask(h, pd.json.taskId);
  t.equal(task.status, 200);
  t.match(task.json, [{ id: pd.json.taskId, type: 'purge-directory', status: 'done', subject: ['docs'] }]);
  expectError(t, await h.smh('GET', 'file', 'outside', { query: { info: '' } }), 404, 'FileNotFound', 'L15: bound links purged with it');
  expectError(t, await h.smh('GET', 'task', '424242'), 404, 'TaskNotFound', 'unknown task');
  // Empty directory permanent delete → 204
  await mkdirp(h, 'e');
  t.equal((await h.smh('DELETE', 'directory', 'e', { query: { permanent: '1' } })).status, 204);
  await upload(h, 'plain', 'p');
  expectError(t, await h.smh('DELETE', 'directory', 'plain'), 409, 'NotADirectory', 'directory delete of a file');
});

t.test('the background worker runs purge tasks queued over HTTP (L15)', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'big');
  for (let i = 0; i < 5; i++) await upload(h, `big/${i}`, String(i));
  const pd = await h.smh('DELETE', 'directory', 'big', { query: { permanent: '1' } });
  t.equal(pd.status, 202);
  t.equal((await waitTask(h, pd.json.taskId)).json[0].status, 'done', 'the server ran the task without being asked');
});

t.test('H2: access tokens, grants (C5), token endpoint', async (t) => {
  const h = await startHarness(t);
  await upload(h, 'f.txt', 'F');
  await upload(h, 'g.txt', 'G');

  // Token endpoint, shaped like SMH's, except that the secret travels in a POST body (form or
  // JSON), never in the URL.
  const secret = h.lib.rotateLibrarySecret();
  const form = (params: Record<string, string>) => ({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
  const tr = await h.fetch('POST', `/api/v1/token?library_id=${h.libId}&space_id=-&grant=create_symlink,upload_file&period=600`, form({ library_secret: secret }));
  t.equal(tr.status, 200, tr.text);
  t.same(Object.keys(tr.json).sort(), ['accessToken', 'expiresIn']);
  t.equal(tr.json.expiresIn, 600);
  const tok = tr.json.accessToken as string;
  t.equal((await h.fetch('POST', `/api/v1/token`, form({ library_id: h.libId, library_secret: secret }))).json.expiresIn, 86400, 'default period; every parameter in the body');
  const post = await h.fetch('POST', `/api/v1/token?grant=admin`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ library_id: h.libId, library_secret: secret }) });
  t.equal(post.status, 200, 'a JSON body');
  expectError(t, await h.fetch('POST', `/api/v1/token?library_id=${h.libId}`, form({ library_secret: 'wrong' })), 403, 'InvalidLibraryIdOrSecret', 'wrong secret');
  expectError(t, await h.fetch('POST', `/api/v1/token?library_id=other`, form({ library_secret: secret })), 403, 'InvalidLibraryIdOrSecret', 'wrong library');
  expectError(t, await h.fetch('POST', `/api/v1/token?library_id=${h.libId}`), 400, 'InvalidArgument', 'missing secret');
  const inUrl = await h.fetch('GET', `/api/v1/token?library_id=${h.libId}&library_secret=${secret}`);
  expectError(t, inUrl, 400, 'InvalidArgument', 'the secret in the URL is refused');
  t.notMatch(inUrl.text, secret, 'and not echoed');
  expectError(t, await h.fetch('POST', `/api/v1/token?library_id=${h.libId}&grant=fly`, form({ library_secret: secret })), 400, 'InvalidArgument', 'unknown grant');
  expectError(t, await h.fetch('POST', `/api/v1/token?library_id=${h.libId}&space_id=nope`, form({ library_secret: secret })), 404, 'SpaceNotFound', 'unknown space');
  expectError(t, await h.fetch('POST', `/api/v1/token?library_id=${h.libId}&period=0`, form({ library_secret: secret })), 400, 'InvalidArgument', 'period 0');
  expectError(t, await h.fetch('POST', `/api/v1/token?library_id=${h.libId}`, form({ library_secret: secret, color: 'red' })), 400, 'InvalidArgument', 'unknown body field');

  // The token works, as query parameter and as Bearer.
  t.equal((await linkTo(h, 'l1', 'f.txt', {}, tok)).status, 200);
  t.equal((await h.smh('PUT', 'file', 'l2', { json: { linkTo: 'f.txt' }, token: tok, bearer: true })).status, 200, 'Authorization: Bearer');
  // create_symlink without _force cannot overwrite (C5)
  expectError(t, await linkTo(h, 'g.txt', 'f.txt', { conflict_resolution_strategy: 'overwrite' }, tok), 403, 'NoPermission', 'overwrite needs create_symlink_force');
  const force = h.token(['create_symlink_force']);
  t.equal((await linkTo(h, 'l1', 'f.txt', { conflict_resolution_strategy: 'overwrite' }, force)).status, 200, 'create_symlink_force may overwrite');
  t.equal((await linkTo(h, 'l3', 'f.txt', {}, force)).status, 200, '_force also allows ask/rename');
  // upload_file allows links (seed), not deletes
  const up = h.token(['upload_file']);
  t.equal((await linkTo(h, 'l4', 'f.txt', {}, up)).status, 200, 'upload_file allows creating links (seed)');
  expectError(t, await h.smh('PUT', 'file', 'f.txt', { body: 'x', token: up, query: { conflict_resolution_strategy: 'overwrite' } }), 403, 'NoPermission', 'upload overwrite needs upload_file_force');
  expectError(t, await h.smh('DELETE', 'file', 'l4', { token: up }), 403, 'NoPermission', 'delete needs delete_file');
  expectError(t, await h.smh('PUT', 'file', 'moved', { json: { from: 'l4' }, token: up }), 403, 'NoPermission', 'move needs move_file');
  const mv = h.token(['move_file']);
  t.equal((await h.smh('PUT', 'file', 'moved', { json: { from: 'l4' }, token: mv })).status, 200);
  expectError(t, await h.smh('PUT', 'file', 'g.txt', { json: { from: 'moved' }, token: mv, query: { conflict_resolution_strategy: 'overwrite' } }), 403, 'NoPermission', 'move overwrite needs move_file_force');
  expectError(t, await h.smh('PUT', 'directory', 'dd', { token: mv }), 403, 'NoPermission', 'mkdir needs create_directory');
  expectError(t, await h.smh('DELETE', 'recycled', '', { token: mv }), 403, 'NoPermission', 'empty needs delete_recycled');
  // reads need only a valid token
  const none = h.token([]);
  t.equal((await h.smh('GET', 'file', 'f.txt', { token: none })).status, 200, 'download with a grant-less token');
  t.equal((await h.smh('GET', 'directory', '', { token: none })).status, 200, 'list with a grant-less token');
  // space_admin allows everything in its space
  const sa = h.token(['space_admin']);
  t.equal((await h.smh('DELETE', 'file', 'l3', { token: sa })).status, 200);

  // H2 errors
  expectError(t, await h.smh('GET', 'file', 'f.txt', { token: null }), 400, 'EmptyAccessToken', 'no token');
  expectError(t, await h.smh('GET', 'file', 'f.txt', { token: null, headers: { authorization: 'Basic abc' } }), 400, 'EmptyAccessToken', 'not a Bearer token');
  expectError(t, await h.smh('GET', 'file', 'f.txt', { token: 'bogus' }), 403, 'InvalidAccessToken', 'unknown token');
  const short = h.token(['admin'], { periodSec: 1 });
  await new Promise((r) => setTimeout(r, 1100));
  expectError(t, await h.smh('GET', 'file', 'f.txt', { token: short }), 403, 'InvalidAccessToken', 'expired token');
  // token of another library/space
  const r = await h.fetch('GET', `/api/v1/file/otherlib/-/f.txt?access_token=${h.admin}`);
  expectError(t, r, 403, 'InvalidAccessToken', 'URL library is not the token’s');
  h.lib.createSpace('tenant');
  const tenantTok = h.token(['admin'], { space: 'tenant' });
  expectError(t, await h.smh('GET', 'file', 'f.txt', { token: tenantTok }), 403, 'NoPermission', 'token of another space');
  t.equal((await h.smh('PUT', 'directory', 'mine', { token: tenantTok }, 'tenant')).status, 201, 'a tenant token works in its space');
  expectError(t, await h.smh('GET', 'directory', '', { token: h.admin }, 'nosuch'), 403, 'NoPermission', 'unknown space with a token of -');
});

t.test('unknown SMH routes', async (t) => {
  const h = await startHarness(t);
  expectError(t, await h.fetch('GET', '/api/v1/nothing/here'), 404, 'NotFound', 'unknown API');
  expectError(t, await h.fetch('GET', '/api/v1/file'), 404, 'NotFound', 'incomplete path');
  expectError(t, await h.fetch('POST', `/api/v1/file/${h.libId}/-/x`), 404, 'NotFound', 'unsupported method');
  expectError(t, await h.fetch('GET', '/api/v1/directory/x'), 404, 'NotFound', 'directory without a space');
});
