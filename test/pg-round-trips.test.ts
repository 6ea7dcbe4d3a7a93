// Issue 13 "Performance": on PostgreSQL every statement is a network round trip, so what the
// mount asks most must cost few. This counts the statements (PgConnection.stats.queries: every
// statement sent, BEGIN and COMMIT included) each operation sends, on a real cluster: getattr by
// id and by path, lookup, readlink of a bound link, readdir and a readdirplus page of 100 entries
// (half of them bound links), symlink, and create + write + close. Each read's answer is compared
// with the one the rules give asking the engine row by row (its one-statement forms hidden), so a
// cheaper statement cannot answer differently. Counts, not times (perf lives in bench/).
import t, { type Test } from 'tap';
import { usePostgresEngine } from './helpers/store-engines.js';
import { blobOf, openLib } from './helpers/store.js';
import type { Library, Space } from '../src/store/library.js';

await usePostgresEngine(t);

/** Statements `fn` sent on the library's connection, and what it returned. */
function counted<T>(lib: Library, fn: () => T): { statements: number; value: T } {
  const conn = lib.postgres!.conn;
  const before = conn.stats.queries;
  const value = fn();
  return { statements: conn.stats.queries - before, value };
}

/** `fn` answered without the engine's one-statement forms (placed reads, counts with the walk). */
function stepwise<T>(space: Space, fn: () => T): T {
  const rows = (space as unknown as { tree: { rows: Record<string, unknown> } }).tree.rows;
  const saved = { placed: rows.placed, placedPage: rows.placedPage, walk: rows.walk };
  const walk = rows.walk as (start: number, names: string[]) => Array<Record<string, unknown>>;
  delete rows.placed;
  delete rows.placedPage;
  rows.walk = (start: number, names: string[]) =>
    walk(start, names).map((r) => {
      delete r.subdirs;
      delete r.names;
      return r;
    });
  try {
    return fn();
  } finally {
    Object.assign(rows, saved);
  }
}

async function fixture(t: Test): Promise<{ lib: Library; space: Space }> {
  const { lib, space } = openLib(t);
  space.mkdir('a/b/c/d', { parents: true });
  const ref = await blobOf(lib, 'hello');
  space.putFile('a/b/c/d/f.txt', ref);
  space.symlink('a/b/link', 'c/d/f.txt');
  space.mkdir('wide/sub', { parents: true });
  for (let i = 0; i < 50; i++) space.symlink(`wide/l${String(i).padStart(2, '0')}`, '../a/b/c/d/f.txt');
  for (let i = 0; i < 49; i++) space.putFile(`wide/f${String(i).padStart(2, '0')}`, ref);
  space.link('a/b/c/d/f.txt', 'wide/hard'); // a second name: nlink 2
  return { lib, space };
}

t.test('reads the mount asks: one statement each (no BEGIN/COMMIT around a single statement)', async (t) => {
  const { lib, space } = await fixture(t);
  const file = space.stat('a/b/c/d/f.txt');
  const link = space.stat('a/b/link');
  const dir = space.stat('a/b/c/d');
  const wide = space.stat('wide');
  const b = space.stat('a/b');
  const cases: Array<[string, () => unknown]> = [
    ['getattr by id of a file with two names', () => space.statNode(file.id)],
    ['getattr by id of a bound link', () => space.statNode(link.id)],
    ['getattr by id of a directory', () => space.statNode(dir.id)],
    ['getattr by path, 5 segments', () => space.stat('a/b/c/d/f.txt')],
    ['lookup of a file', () => space.lookup(dir.id, 'f.txt')],
    ['lookup of a bound link', () => space.lookup(b.id, 'link')],
    ['readlink of a bound link by id', () => space.readlink(link.id)],
    ['readdir by id of 100 entries, 50 bound links', () => space.readdir(wide.id)],
    ['a readdirplus page of 100 entries, 50 bound links', () => space.readdirPlus(wide.id, undefined, 1000)],
  ];
  for (const [name, fn] of cases) {
    const reference = stepwise(space, fn);
    const { statements, value } = counted(lib, fn);
    t.equal(statements, 1, `${name}: ${statements} statement(s)`);
    t.same(value, reference, `${name}: the same answer as row by row`);
  }
});

/** Statements the change feed adds to a write (src/store/postgres/feed-rows.ts). */
const FEED = 2;

t.test('writes the mount makes: symlink, and create + write + close, in fewer statements', async (t) => {
  const { lib, space } = await fixture(t);
  const dir = space.stat('a/b/c/d');
  const symlink = counted(lib, () => space.symlinkAt(dir.id, 'new-link', 'f.txt'));
  // was 20: the parent resolved row by row, the new link's info read again row by row. Every
  // write also costs the change feed 2 (FEED): its append inside the transaction, and the
  // numbering pass after the commit that a process with no listener (CLI, serve) runs itself.
  t.ok(symlink.statements <= 13 + FEED, `symlink: ${symlink.statements} statements (at most ${13 + FEED})`);
  t.equal(symlink.value.link?.readlink, 'f.txt', 'the new link reads its target');
  const created = counted(lib, () => space.createFileAt(dir.id, 'new.txt'));
  const ref = await blobOf(lib, 'written'); // the upload's lease (its own statements, counted below)
  const committed = counted(lib, () => space.setContent(created.value.id, ref));
  // was 14 + 12: the file's row and place read row by row at each step
  t.ok(created.statements <= 9 + FEED, `create: ${created.statements} statements (at most ${9 + FEED})`);
  t.ok(committed.statements <= 7 + FEED, `close (the content committed): ${committed.statements} statements (at most ${7 + FEED})`);
  t.equal(committed.value.size, 7, 'the committed size');
  t.equal(committed.value.path, 'a/b/c/d/new.txt', 'at its path');
});
