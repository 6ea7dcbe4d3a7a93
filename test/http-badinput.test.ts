/**
 * SPEC section 9 over HTTP: every malformed request gets its documented error and changes
 * nothing — every table of <library>/library.db is compared before and after (read-only
 * better-sqlite3 on the side). BOS header and signature cases are in http-bos.test.ts.
 */
import t, { type Test } from 'tap';
import { encPath, expectError, startHarness, unchanged, upload, type Harness, type Res } from './helpers/http.js';

async function setup(t: Test): Promise<Harness> {
  const h = await startHarness(t);
  await h.smh('PUT', 'directory', 'dir');
  await upload(h, 'dir/f.txt', 'content');
  await upload(h, 'g.txt', 'G');
  await h.smh('PUT', 'file', 'dir/l', { json: { linkTo: 'dir/f.txt' } });
  return h;
}

async function bad(t: Test, h: Harness, what: string, status: number, code: string, fn: () => Promise<Res>): Promise<Res> {
  const r = await unchanged(t, h, what, fn);
  expectError(t, r, status, code, what);
  return r;
}

t.test('malformed and unexpected JSON bodies', async (t) => {
  const h = await setup(t);
  const put = (json: string, path = 'new') => () => h.smh('PUT', 'file', path, { json });
  const r = await bad(t, h, 'malformed JSON', 400, 'InvalidArgument', put('{"linkTo": '));
  t.match(r.json.message, /malformed JSON/);
  await bad(t, h, 'unknown field', 400, 'InvalidArgument', put('{"linkTo": "dir/f.txt", "extra": 1}'));
  await bad(t, h, 'only an unknown field', 400, 'InvalidArgument', put('{"linkto": "dir/f.txt"}'));
  await bad(t, h, 'empty object', 400, 'InvalidArgument', put('{}'));
  await bad(t, h, 'two commands at once', 400, 'InvalidArgument', put('{"linkTo": "dir/f.txt", "from": "g.txt"}'));
  await bad(t, h, 'linkTo is a number', 400, 'InvalidArgument', put('{"linkTo": 5}'));
  await bad(t, h, 'linkTo is empty', 400, 'InvalidArgument', put('{"linkTo": ""}'));
  await bad(t, h, 'a JSON array', 400, 'InvalidArgument', put('["dir/f.txt"]'));
  await bad(t, h, 'a JSON string', 400, 'InvalidArgument', put('"dir/f.txt"'));
  await bad(t, h, 'JSON content type, empty body', 400, 'InvalidArgument', () =>
    h.smh('PUT', 'file', 'new', { headers: { 'content-type': 'application/json' }, body: '' }),
  );
  await bad(t, h, 'directory with a JSON linkTo', 400, 'InvalidArgument', () => h.smh('PUT', 'directory', 'nd', { json: { linkTo: 'g.txt' } }));
  await bad(t, h, 'directory with a non-JSON body', 400, 'InvalidArgument', () => h.smh('PUT', 'directory', 'nd', { body: 'bytes' }));
  await bad(t, h, 'JSON body over 1 MiB', 413, 'EntityTooLarge', put(JSON.stringify({ linkTo: 'x'.repeat(1 << 20) })));
});

t.test('bad strategies and query values', async (t) => {
  const h = await setup(t);
  for (const s of ['maybe', 'RENAME', '', 'overwrite,ask']) {
    await bad(t, h, `conflict_resolution_strategy=${JSON.stringify(s)}`, 400, 'InvalidArgument', () =>
      h.smh('PUT', 'file', 'g.txt', { json: { linkTo: 'dir/f.txt' }, query: { conflict_resolution_strategy: s } }),
    );
  }
  await bad(t, h, 'bad strategy on upload', 400, 'InvalidArgument', () => h.smh('PUT', 'file', 'g.txt', { body: 'x', query: { conflict_resolution_strategy: 'replace' } }));
  await bad(t, h, 'bad strategy on restore', 400, 'InvalidArgument', () => h.smh('POST', 'recycled', '1', { query: { restore: '', conflict_resolution_strategy: 'x' } }));
  await bad(t, h, 'permanent=yes', 400, 'InvalidArgument', () => h.smh('DELETE', 'file', 'g.txt', { query: { permanent: 'yes' } }));
  await bad(t, h, 'limit=abc', 400, 'InvalidArgument', () => h.smh('GET', 'directory', 'dir', { query: { limit: 'abc' } }));
  await bad(t, h, 'restore without ?restore', 400, 'InvalidArgument', () => h.smh('POST', 'recycled', '1'));
  await bad(t, h, 'task id not a number', 400, 'InvalidArgument', () => h.smh('GET', 'task', 'one'));
});

t.test('.. paths and other bad paths (N1, N3)', async (t) => {
  const h = await setup(t);
  const base = `/api/v1/file/${h.libId}/-`;
  const tok = `access_token=${h.admin}`;
  const json = { 'content-type': 'application/json' };
  // Raw paths: no client-side normalisation of '..'.
  await bad(t, h, '.. in FilePath', 400, 'InvalidDestinationPath', () => h.raw('PUT', `${base}/dir/../escape?${tok}`, json, '{"linkTo":"dir/f.txt"}'));
  await bad(t, h, 'encoded .. in FilePath', 400, 'InvalidDestinationPath', () => h.raw('PUT', `${base}/%2E%2E/escape?${tok}`, json, '{"linkTo":"dir/f.txt"}'));
  await bad(t, h, '. in FilePath', 400, 'InvalidDestinationPath', () => h.raw('PUT', `${base}/./x?${tok}`, json, '{"linkTo":"dir/f.txt"}'));
  await bad(t, h, '.. upload', 400, 'InvalidDestinationPath', () => h.raw('PUT', `${base}/../up?${tok}`, { 'content-type': 'application/octet-stream' }, 'bytes'));
  await bad(t, h, '.. in linkTo', 400, 'InvalidSourceFile', () => h.smh('PUT', 'file', 'x', { json: { linkTo: '../dir/f.txt' } }));
  await bad(t, h, '.. inside linkTo', 400, 'InvalidSourceFile', () => h.smh('PUT', 'file', 'x', { json: { linkTo: 'dir/../g.txt' } }));
  await bad(t, h, '.. in from', 400, 'InvalidSourceFile', () => h.smh('PUT', 'file', 'x', { json: { from: 'dir/../g.txt' } }));
  await bad(t, h, '.. in copyFrom', 400, 'InvalidSourceFile', () => h.smh('PUT', 'file', 'x', { json: { copyFrom: '../g.txt' } }));
  await bad(t, h, '.. reading', 400, 'InvalidSourceFile', () => h.raw('GET', `${base}/dir/../g.txt?${tok}`));
  await bad(t, h, 'link at the root path', 400, 'InvalidDestinationPath', () => h.smh('PUT', 'file', '', { json: { linkTo: 'g.txt' } }));
  await bad(t, h, 'writing into the bin view', 403, 'NoPermission', () => h.smh('PUT', 'file', '.trash/x', { json: { linkTo: 'g.txt' } }));
  await bad(t, h, 'NUL in a name', 400, 'InvalidFileName', () => h.smh('PUT', 'file', 'a%00b', { json: { linkTo: 'g.txt' } }));
});

t.test('oversize names (N1) and link targets (N2)', async (t) => {
  const h = await setup(t);
  const n256 = 'n'.repeat(256);
  const n255 = 'n'.repeat(255);
  await bad(t, h, '256-byte link name', 400, 'FileNameLengthExceed', () => h.smh('PUT', 'file', n256, { json: { linkTo: 'g.txt' } }));
  await bad(t, h, '256-byte upload name', 400, 'FileNameLengthExceed', () => h.smh('PUT', 'file', `dir/${n256}`, { body: 'x' }));
  await bad(t, h, '256-byte directory name', 400, 'DirectoryNameLengthExceed', () => h.smh('PUT', 'directory', n256));
  await bad(t, h, '86 × 3-byte UTF-8 chars = 258 bytes', 400, 'FileNameLengthExceed', () => h.smh('PUT', 'file', encPath('é'.repeat(129)), { json: { linkTo: 'g.txt' } }));
  await bad(t, h, 'rename target 256 bytes', 400, 'FileNameLengthExceed', () => h.smh('PUT', 'file', n256, { json: { from: 'g.txt' } }));
  const ok = await h.smh('PUT', 'file', n255, { json: { linkTo: 'g.txt' } });
  t.equal(ok.status, 200, 'a 255-byte name is fine');
});

t.test('ranges past the end, unknown ids, bad tokens: errors and nothing changes', async (t) => {
  const h = await setup(t);
  for (const range of ['bytes=7-', 'bytes=100-200', 'bytes=3-1', 'bytes=x-y', 'bytes=0-1,3-4']) {
    const r = await bad(t, h, `Range ${range}`, 416, 'InvalidRange', () => h.smh('GET', 'file', 'dir/f.txt', { headers: { range } }));
    t.equal(r.headers['content-range'], 'bytes */7');
  }
  await bad(t, h, 'restore of an unknown item', 404, 'RecycledItemNotFound', () => h.smh('POST', 'recycled', '12345', { query: { restore: '' } }));
  await bad(t, h, 'purge of an unknown item', 404, 'RecycledItemNotFound', () => h.smh('DELETE', 'recycled', '12345'));
  await bad(t, h, 'unknown task', 404, 'TaskNotFound', () => h.smh('GET', 'task', '777'));
  await bad(t, h, 'unknown space', 403, 'NoPermission', () => h.smh('PUT', 'directory', 'x', {}, 'nospace'));

  const write = (token: string | null, extra: Record<string, string> = {}) => () =>
    h.smh('PUT', 'file', 'newlink', { json: { linkTo: 'dir/f.txt' }, token, headers: extra });
  await bad(t, h, 'no token', 400, 'EmptyAccessToken', write(null));
  await bad(t, h, 'empty access_token', 400, 'EmptyAccessToken', () => h.smh('PUT', 'file', 'newlink', { json: { linkTo: 'dir/f.txt' }, token: null, query: { access_token: '' } }));
  await bad(t, h, 'unknown token', 403, 'InvalidAccessToken', write('not-a-token'));
  await bad(t, h, 'unknown Bearer token', 403, 'InvalidAccessToken', () => h.smh('PUT', 'file', 'newlink', { json: { linkTo: 'dir/f.txt' }, token: 'nope', bearer: true }));
  const expiring = h.token(['admin'], { periodSec: 1 });
  await new Promise((r) => setTimeout(r, 1100));
  await bad(t, h, 'expired token', 403, 'InvalidAccessToken', write(expiring));
  const deleter = h.token(['delete_file']);
  const linker = h.token(['create_symlink']);
  await bad(t, h, 'token without the grant', 403, 'NoPermission', write(deleter));
  await bad(t, h, 'overwrite without _force', 403, 'NoPermission', () =>
    h.smh('PUT', 'file', 'g.txt', { json: { linkTo: 'dir/f.txt' }, token: linker, query: { conflict_resolution_strategy: 'overwrite' } }),
  );
  await bad(t, h, 'upload without the grant', 403, 'NoPermission', () => h.smh('PUT', 'file', 'up.bin', { body: 'data', token: linker }));
  await bad(t, h, 'token endpoint with a wrong secret', 403, 'InvalidLibraryIdOrSecret', () =>
    h.fetch('POST', `/api/v1/token?library_id=${h.libId}&grant=admin`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'library_secret=nope' }),
  );
});

t.test('store-decided refusals change nothing either (L2, C1, T1)', async (t) => {
  const h = await setup(t);
  await bad(t, h, 'link to a missing file', 404, 'SourceFileNotFound', () => h.smh('PUT', 'file', 'x', { json: { linkTo: 'nope' } }));
  await bad(t, h, 'link to a directory', 400, 'InvalidSourceFile', () => h.smh('PUT', 'file', 'x', { json: { linkTo: 'dir' } }));
  await bad(t, h, 'secondary link', 400, 'InvalidSourceFile', () => h.smh('PUT', 'file', 'x', { json: { linkTo: 'dir/l' } }));
  await bad(t, h, 'missing parent', 404, 'DirectoryNotFound', () => h.smh('PUT', 'file', 'no/x', { json: { linkTo: 'g.txt' } }));
  await bad(t, h, 'ask conflict', 409, 'SameNameDirectoryOrFileExists', () =>
    h.smh('PUT', 'file', 'g.txt', { json: { linkTo: 'dir/f.txt' }, query: { conflict_resolution_strategy: 'ask' } }),
  );
  await bad(t, h, 'upload ask conflict', 409, 'SameNameDirectoryOrFileExists', () => h.smh('PUT', 'file', 'g.txt', { body: 'new bytes', query: { conflict_resolution_strategy: 'ask' } }));
  await bad(t, h, 'upload into a missing directory', 404, 'DirectoryNotFound', () => h.smh('PUT', 'file', 'no/up.txt', { body: 'bytes' }));
  await bad(t, h, 'move a directory into itself', 400, 'InvalidDestinationPath', () => h.smh('PUT', 'directory', 'dir/inner', { json: { from: 'dir' } }));
});
