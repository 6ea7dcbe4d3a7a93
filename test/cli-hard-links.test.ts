/**
 * `smhfs ln --hard` (SPEC L17): another name for a file, from the command line; `smhfs rm` of one
 * of several names says that only the name went (L18); `smhfs stat` counts the names.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { lines, scratchLibrary, smhfs } from './cli-helpers.js';

t.test('L17: smhfs ln --hard makes a second name; stat counts names; rm of one name keeps the file (L18)', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  const run = (...args: string[]) => smhfs(dir, lib, args);
  writeFileSync(join(dir, 'local.txt'), 'hard bytes');
  t.equal((await run('put', 'local.txt', 'a.txt')).code, 0);
  t.equal((await run('mkdir', 'd')).code, 0);

  const ln = await run('ln', '--hard', 'a.txt', 'd/b.txt');
  t.equal(ln.code, 0, ln.stderr);
  t.match(ln.out, /^d\/b\.txt => a\.txt \(2 names, id \d+\)\n$/, 'says what it made');
  const stat = await run('--json', 'stat', 'a.txt');
  const info = JSON.parse(stat.out) as { id: number; nlink: number };
  t.equal(info.nlink, 2, 'stat: two names');
  t.equal((JSON.parse((await run('--json', 'stat', 'd/b.txt')).out) as { id: number }).id, info.id, 'one id');
  t.equal((await run('cat', 'd/b.txt')).out, 'hard bytes');
  t.match((await run('stat', 'd/b.txt')).out, /links:\s+2/, 'the text form shows the count');

  const again = await run('ln', '--hard', 'a.txt', 'd/b.txt');
  t.equal(again.code, 1);
  t.match(again.stderr, /SameNameDirectoryOrFileExists/, 'an existing name is refused');
  const dirLink = await run('ln', '--hard', 'd', 'd2');
  t.equal(dirLink.code, 1);
  t.match(dirLink.stderr, /a directory cannot have hard links/, 'a directory is refused');
  const conflict = await run('ln', '--hard', '--conflict', 'rename', 'a.txt', 'd/b.txt');
  t.equal(conflict.code, 1);
  t.match(conflict.stderr, /--hard makes a name only where none exists/, 'no conflict strategy but ask');

  const rm = await run('rm', 'a.txt');
  t.equal(rm.code, 0);
  t.same(lines(rm.out), ['a.txt: name removed; the file lives on under 1 other name (nothing went to the recycle bin)']);
  t.equal((await run('cat', 'd/b.txt')).out, 'hard bytes');
  t.same(JSON.parse((await run('--json', 'trash', 'list')).out), [], 'the bin is empty');
  const last = await run('rm', 'd/b.txt');
  t.match(last.out, /moved to the recycle bin as item \d+/, 'the last name: to the bin');
});
