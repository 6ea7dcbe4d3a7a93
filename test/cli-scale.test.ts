/**
 * Issue 15 (scale), CLI: the recycle bin is listed a page at a time (`trash list --limit N
 * --after ID`) and `trash restore ID` / `rm` report an item read by its id.
 */
import t from 'tap';
import type { Test } from 'tap';
import { lines, scratchLibrary, smhfs } from './cli-helpers.js';

interface Item {
  id: number;
  originalPath: string;
  links: Array<{ nodeId: number; originalPath: string }>;
}

/** `smhfs --library <scratch lib> …` for one test: `run` any command, `ok` one that must exit 0. */
async function cliOf(t: Test) {
  const { dir, lib } = await scratchLibrary(t);
  const run = (...args: string[]) => smhfs(dir, lib, args);
  const ok = async (...args: string[]) => {
    const r = await run(...args);
    t.equal(r.code, 0, `smhfs ${args.join(' ')} exits 0 ${r.stderr}`);
    return r;
  };
  return { run, ok };
}

t.test('T2: trash list --limit N --after ID pages through the bin in removal order', async (t) => {
  const { run, ok } = await cliOf(t);
  await ok('mkdir', '-p', 'd');
  for (const n of ['a', 'b', 'c', 'd/e', 'f']) await ok('put', '-', n).catch(() => undefined);
  await ok('rm', 'a', 'b', 'c', 'd/e', 'f');
  const all = JSON.parse((await ok('--json', 'trash', 'list')).out) as Item[];
  t.same(all.map((i) => i.originalPath), ['a', 'b', 'c', 'd/e', 'f'], 'without options: every item, oldest first');

  const p1 = JSON.parse((await ok('--json', 'trash', 'list', '--limit', '2')).out) as Item[];
  t.same(p1.map((i) => i.originalPath), ['a', 'b'], '--limit 2: the first two');
  const p2 = JSON.parse((await ok('--json', 'trash', 'list', '--limit', '2', '--after', String(p1[1]!.id))).out) as Item[];
  t.same(p2.map((i) => i.originalPath), ['c', 'd/e'], '--after the last id: the next two');

  const text = lines((await ok('trash', 'list', '--limit', '2', '--after', String(p2[1]!.id))).out);
  t.match(text.join('\n'), /\bf\b/, 'the last page holds f');
  t.notOk(text.some((l) => l.startsWith('more items')), 'and says nothing about more');
  const first = lines((await ok('trash', 'list', '--limit', '2')).out);
  t.equal(first[first.length - 1], `more items: smhfs trash list --limit 2 --after ${p1[1]!.id}`, 'a page that is not the last says how to get the next');
  t.same(lines((await ok('trash', 'list', '--after', String(all[4]!.id))).out), ['no more items']);

  const bad = await run('trash', 'list', '--limit', '0');
  t.not(bad.code, 0, '--limit 0 is refused');
  t.match(bad.stderr, /limit/);
});

t.test('T4: trash restore ID reports the links that came back with the item', async (t) => {
  const { run, ok } = await cliOf(t);
  await ok('put', '-', 'photo.jpg');
  await ok('mkdir', 'x');
  await ok('ln', 'photo.jpg', 'x/cover');
  const rm = await ok('rm', 'photo.jpg');
  t.match(rm.out, /moved to the recycle bin as item \d+ with 1 bound link: x\/cover/);
  const id = /item (\d+)/.exec(rm.out)![1]!;
  const back = await ok('trash', 'restore', id);
  t.match(back.out, /restored photo\.jpg/);
  t.match(back.out, /restored link x\/cover -> photo\.jpg \(bound\)/);
  const missing = await run('trash', 'restore', '424242');
  t.not(missing.code, 0);
  t.match(missing.stderr, /424242/);
});
