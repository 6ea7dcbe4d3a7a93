/**
 * Issue 15 (scale), SMH: the recycle-bin listing pages with SMH's `marker` and `limit` (the
 * store reads one page by id, see test/store-scale.test.ts for the work it does).
 */
import t from 'tap';
import { expectError, startHarness } from './helpers/http.js';
import { blobOf } from './helpers/store.js';

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
