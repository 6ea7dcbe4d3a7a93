/**
 * Issue 15 (scale), SMH: the recycle-bin listing pages with SMH's `marker` and `limit` (the
 * store reads one page by id, see test/store-scale.test.ts for the work it does), and a
 * directory's listing reads one store page in name order, not the whole directory.
 */
import t from 'tap';
import { expectError, startHarness } from './helpers/http.js';
import { blobOf } from './helpers/store.js';
import { countSql, type SqlCounter } from './helpers/sql-counter.js';

t.test('T2/H1: GET recycled pages with limit and marker, oldest first, nextMarker until the end', async (t) => {
  const h = await startHarness(t);
  const space = h.lib.space('-');
  const ref = await blobOf(h.lib, 'bytes');
  const ids = h.lib.transaction(() => {
    const out: number[] = [];
    for (let i = 0; i < 2500; i++) {
      space.putFile(`f${i}`, ref, { conflict: 'ask' });
      out.push(space.unlink(`f${i}`).recycledItemId!);
    }
    return out;
  });
  const seen: number[] = [];
  let marker: string | undefined;
  let pages = 0;
  do {
    const res = await h.smh('GET', 'recycled', '', { query: { limit: 1000, marker } });
    t.equal(res.status, 200);
    const contents = res.json.contents as Array<{ id: number; originalPath: string[] }>;
    seen.push(...contents.map((c) => c.id));
    marker = res.json.nextMarker as string | undefined;
    pages++;
    if (pages < 3) t.equal(contents.length, 1000, `page ${pages} is full`);
  } while (marker !== undefined && pages < 10);
  t.equal(pages, 3, 'three pages of at most 1,000');
  t.same(seen, ids, 'every item once, in removal order');
  const def = await h.smh('GET', 'recycled', '');
  t.equal(def.json.contents.length, 1000, 'no limit: 1,000 (SMH default)');
  t.type(def.json.nextMarker, 'string');
  const small = await h.smh('GET', 'recycled', '', { query: { limit: 2, marker: def.json.nextMarker } });
  t.same(small.json.contents.map((c: { originalPath: string[] }) => c.originalPath), [['f1000'], ['f1001']], 'a marker from one page size works with another');
  expectError(t, await h.smh('GET', 'recycled', '', { query: { limit: 0 } }), 400, 'InvalidArgument', 'limit 0');
  expectError(t, await h.smh('GET', 'recycled', '', { query: { limit: 1001 } }), 400, 'InvalidArgument', 'limit over 1,000');
  expectError(t, await h.smh('GET', 'recycled', '', { query: { marker: '%%%' } }), 400, 'InvalidArgument', 'a marker we did not make');
});

t.test('issue 15: GET of a directory reads one store page in name order, whatever the directory holds; the root pages past .trash', async (t) => {
  let sql: SqlCounter | undefined;
  // installed before the server makes its Space, so every statement it prepares is counted
  const h = await startHarness(t, { wrap: (lib) => ((sql = countSql(lib.db)), lib) });
  const space = h.lib.space('-');
  const names = ['!a', '-b', '.c', '.s', '.u', 'A', 'Z', '_', 'a', 'z', 'é', '日本', '\u{1F600}'];
  h.lib.transaction(() => {
    space.mkdir('big');
    for (let i = 0; i < 5000; i++) space.mknod(`big/f${String(i).padStart(4, '0')}`, { mode: 0o100644 });
    for (const n of names) space.mknod(n, { mode: 0o100644 });
  });
  const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  sql!.reset();
  const first = await h.smh('GET', 'directory', 'big', { query: { limit: 10 } });
  t.equal(first.status, 200);
  t.same(first.json.contents.map((c: { name: string }) => c.name), Array.from({ length: 10 }, (_, i) => `f000${i}`), 'the first 10 names');
  t.ok(sql!.counts.rowsRead < 100, `a page of 10 of 5,000 entries read ${sql!.counts.rowsRead} rows (not the directory)`);
  sql!.reset();
  const mid = await h.smh('GET', 'directory', 'big', { query: { limit: 10, marker: Buffer.from('f2999').toString('base64url') } });
  t.same(mid.json.contents.map((c: { name: string }) => c.name), Array.from({ length: 10 }, (_, i) => `f${3000 + i}`), 'after a marker');
  t.ok(sql!.counts.rowsRead < 100, `a page in the middle read ${sql!.counts.rowsRead} rows`);
  const last = await h.smh('GET', 'directory', 'big', { query: { limit: 10, marker: Buffer.from('f4989').toString('base64url') } });
  t.equal(last.json.contents.length, 10, 'the last full page');
  t.equal(last.json.nextMarker, undefined, 'no marker after the last entry');
  // the root, in pages of 2: every name once in byte order, .trash never (the bin has its own API)
  const seen: string[] = [];
  let marker: string | undefined;
  for (let i = 0; i < 20; i++) {
    const res = await h.smh('GET', 'directory', '', { query: { limit: 2, ...(marker ? { marker } : {}) } });
    t.equal(res.status, 200);
    const page = res.json.contents.map((c: { name: string }) => c.name) as string[];
    t.ok(page.length <= 2);
    seen.push(...page);
    marker = res.json.nextMarker as string | undefined;
    if (marker === undefined) break;
  }
  t.same(seen, ['big', ...names].sort(byBytes), 'the root: every name once, in byte order, without .trash');
  expectError(t, await h.smh('GET', 'directory', 'big', { query: { marker: '%%%' } }), 400, 'InvalidArgument', 'a marker we did not make');
  expectError(t, await h.smh('GET', 'directory', 'big', { query: { limit: 1001 } }), 400, 'InvalidArgument', 'limit over 1,000');
});
