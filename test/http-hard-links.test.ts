/**
 * Hard links as the dialects see them (SPEC L17–L19): each name is its own object — listed,
 * downloaded and described (HEAD, ?info) under its own path, with one content and one ETag —
 * and deleting one name (SMH DELETE, BOS DeleteObject) removes that name only (L18): nothing goes
 * to the recycle bin, the other names keep the content. Names are made through the store (the
 * mount's link(2)); neither dialect has a request that makes one.
 */
import t from 'tap';
import { download, encPath, md5, mkdirp, sdkError, startHarness, upload } from './helpers/http.js';

const B = '-';

t.test('L17 (SMH): every name is listed and read as a file of its own, with one content and ETag', async (t) => {
  const h = await startHarness(t);
  await mkdirp(h, 'd');
  await upload(h, 'a.txt', 'shared bytes');
  h.lib.space('-').link('a.txt', 'd/b.txt');
  h.lib.space('-').link('a.txt', 'd/c.txt');
  const list = await h.smh('GET', 'directory', 'd');
  t.equal(list.status, 200);
  t.same(
    list.json.contents.map((e: { name: string; type: string; size: string }) => [e.name, e.type, e.size]),
    [['b.txt', 'file', '12'], ['c.txt', 'file', '12']],
    'the directory lists both names as files',
  );
  const etags = new Set(list.json.contents.map((e: { eTag: string }) => e.eTag));
  t.equal(etags.size, 1, 'one ETag');
  t.equal((await download(h, 'd/b.txt')).text, 'shared bytes');
  const info = await h.smh('GET', 'file', encPath('d/c.txt'), { query: { info: '' } });
  t.same(info.json.path, ['d', 'c.txt'], '?info answers the name asked for');
  t.equal(info.json.name, 'c.txt');
  t.equal(info.json.type, 'file');

  // L19: an upload with overwrite through one name is seen through every name
  const up = await upload(h, 'd/b.txt', 'new bytes', { conflict_resolution_strategy: 'overwrite' });
  t.same(up.json.path, ['d', 'b.txt'], 'the upload answers the name it went to');
  t.equal((await download(h, 'a.txt')).text, 'new bytes', 'the other names show the new content');
  t.equal((await download(h, 'd/c.txt')).text, 'new bytes');
});

t.test('L18 (SMH): DELETE of one name removes that name only; the last name goes to the bin', async (t) => {
  const h = await startHarness(t);
  await upload(h, 'a.txt', 'keep me');
  h.lib.space('-').link('a.txt', 'b.txt');
  h.lib.space('-').createLink('bound', 'a.txt');
  const del = await h.smh('DELETE', 'file', 'a.txt');
  t.equal(del.status, 204, 'no recycle item: 204 as a delete that left nothing in the bin');
  t.same((await h.smh('GET', 'recycled', '')).json.contents, [], 'the bin is empty');
  t.equal((await download(h, 'b.txt')).text, 'keep me', 'the other name keeps the content');
  t.equal((await download(h, 'bound')).text, 'keep me', 'the bound link stays bound');
  const info = await h.smh('GET', 'file', 'bound', { query: { info: '' } });
  t.same(info.json.linkTo, ['b.txt'], 'and names the surviving name (L19)');
  const perm = await h.smh('DELETE', 'file', 'b.txt');
  t.equal(perm.status, 200, 'the last name: a delete (T1)');
  t.type(perm.json.recycledItemId, 'number');
  const bin = (await h.smh('GET', 'recycled', '')).json.contents;
  t.equal(bin.length, 1);
  t.same(bin[0].originalPath, ['b.txt']);
});

t.test('L17/L18 (BOS): each name is an object (GET, HEAD); DeleteObject of one name leaves the others', async (t) => {
  const h = await startHarness(t);
  await h.bos.putObjectFromString(B, 'x/one.bin', 'object bytes');
  h.lib.space('-').link('x/one.bin', 'x/two.bin');
  const one = await h.bos.getObjectMetadata(B, 'x/one.bin');
  const two = await h.bos.getObjectMetadata(B, 'x/two.bin');
  t.equal(two.http_headers.etag, one.http_headers.etag, 'one ETag');
  t.equal(two.http_headers.etag, md5('object bytes'));
  t.equal((await h.bos.getObject(B, 'x/two.bin')).body.toString(), 'object bytes');

  await h.bos.putObjectFromString(B, 'x/two.bin', 'replaced');
  t.equal((await h.bos.getObject(B, 'x/one.bin')).body.toString(), 'replaced', 'PutObject over one name: every name shows it (L19)');

  await h.bos.deleteObject(B, 'x/one.bin');
  const gone = await sdkError(h.bos.getObject(B, 'x/one.bin'));
  t.equal(gone.code, 'NoSuchKey', 'the deleted name is gone');
  t.equal((await h.bos.getObject(B, 'x/two.bin')).body.toString(), 'replaced', 'the other name stays');
  const bin = (await h.smh('GET', 'recycled', '')).json.contents as Array<{ originalPath: string[]; size: string }>;
  t.same(bin.map((i) => i.originalPath.join('/')), ['x/two.bin'], 'the bin holds only the version PutObject replaced (C3), under the name it was replaced at; the removed name is not there');
});
