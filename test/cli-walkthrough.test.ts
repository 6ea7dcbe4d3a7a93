/**
 * The CLI walk-through of issue 2, run exactly as a user would (the compiled CLI in child
 * processes, one per command), checking both the human output and the `--json` view.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { lines, scratch, scratchLibrary, smhfs } from './cli-helpers.js';

interface Info {
  id: number;
  kind: string;
  path: string;
  size: number;
  inTrash: boolean;
  link?: { flavour: string; targetPath?: string; targetNode?: number };
}
interface Item {
  id: number;
  kind: string;
  originalPath: string;
  links: Array<{ nodeId: number; originalPath: string }>;
}

t.test('walk-through: mkdir, put, ln, mv, rm, trash list, trash restore, cat', async (t) => {
  const { dir, lib } = scratch(t);
  // Bigger than one 1 MiB read so `cat` streams several chunks.
  const bytes = randomBytes(2.5 * (1 << 20));
  writeFileSync(join(dir, 'cat.jpg'), bytes);
  const run = (...args: string[]) => smhfs(dir, lib, args);
  const ok = async (args: string[]) => {
    const r = await run(...args);
    t.equal(r.code, 0, `smhfs ${args.join(' ')} exits 0`);
    t.equal(r.stderr, '', `smhfs ${args.join(' ')} prints nothing on stderr`);
    return r;
  };
  const json = async <T>(args: string[]): Promise<T> => JSON.parse((await ok(['--json', ...args])).out) as T;

  // smhfs init                                   # D2: the one command that creates a library
  t.match((await ok(['init'])).out, /: new library smh[0-9a-f]+; blobs in .*lib\/blobs/, 'init says what it made');

  // smhfs mkdir -p photos links
  await ok(['mkdir', '-p', 'photos', 'links']);
  t.same(lines((await ok(['ls'])).out), ['links', 'photos'], 'both directories exist');

  // smhfs put ./cat.jpg photos/cat.jpg
  const put = await ok(['put', './cat.jpg', 'photos/cat.jpg']);
  t.match(put.out, /^photos\/cat\.jpg \(2621440 bytes\)\n$/, 'put reports the final path and size');
  const file = await json<Info>(['stat', 'photos/cat.jpg']);
  t.equal(file.kind, 'file');
  t.equal(file.size, bytes.length);

  // smhfs ln photos/cat.jpg links/cat            # bound link
  const ln = await ok(['ln', 'photos/cat.jpg', 'links/cat']);
  t.equal(ln.out, 'links/cat -> photos/cat.jpg (bound)\n');
  let link = await json<Info>(['stat', 'links/cat']);
  t.equal(link.kind, 'link');
  t.equal(link.link?.flavour, 'bound', 'ln makes a bound link');
  t.equal(link.link?.targetPath, 'photos/cat.jpg');
  t.equal(link.link?.targetNode, file.id, 'bound to the file identity');

  // smhfs mv photos albums                       # the link follows
  await ok(['mv', 'photos', 'albums']);
  const stat = await ok(['stat', 'links/cat']);
  t.match(stat.out, /^kind: +link \(bound\)$/m, 'stat shows the flavour');
  t.match(stat.out, /^target: +albums\/cat\.jpg$/m, 'stat links/cat shows albums/cat.jpg');
  link = await json<Info>(['stat', 'links/cat']);
  t.equal(link.link?.targetPath, 'albums/cat.jpg', 'the link follows the move (L9)');
  const lsl = await ok(['ls', '-l', 'links']);
  t.match(lsl.out, /^l\S+ .* cat -> albums\/cat\.jpg \(bound\)$/m, 'ls -l shows the target and flavour');

  // smhfs rm albums/cat.jpg                      # the link goes to the trash with it
  const rm = await ok(['rm', 'albums/cat.jpg']);
  t.match(rm.out, /^albums\/cat\.jpg: moved to the recycle bin as item \d+ with 1 bound link: links\/cat$/m);
  t.same(await json<unknown[]>(['ls', 'links']), [], 'the link left links/ (L12)');
  t.same(await json<unknown[]>(['ls', 'albums']), [], 'the file left albums/');

  // smhfs trash list                             # one item, showing the cascaded link
  const list = await ok(['trash', 'list']);
  const listed = lines(list.out);
  t.equal(listed.length, 3, 'a header, the item, its link');
  t.match(listed[1], /^\s*\d+\s+file\s+2621440\s+\S+ \S+\s+albums\/cat\.jpg$/, 'the item row');
  t.match(listed[2], /\+ bound link links\/cat$/, 'the cascaded link row');
  const items = await json<Item[]>(['trash', 'list']);
  t.equal(items.length, 1, 'one item');
  const item = items[0]!;
  t.equal(item.kind, 'file');
  t.equal(item.originalPath, 'albums/cat.jpg');
  t.same(
    item.links.map((l) => l.originalPath),
    ['links/cat'],
    'the cascaded link is part of the item, not an item of its own (T2)',
  );

  // smhfs trash restore ID                       # both come back
  const restore = await ok(['trash', 'restore', String(item.id)]);
  t.equal(restore.out, 'restored albums/cat.jpg\nrestored link links/cat -> albums/cat.jpg (bound)\n');
  t.same(await json<Item[]>(['trash', 'list']), [], 'the recycle bin is empty again');
  const back = await json<Info>(['stat', 'albums/cat.jpg']);
  t.equal(back.id, file.id, 'the file keeps its identity');
  t.equal(back.inTrash, false);
  link = await json<Info>(['stat', 'links/cat']);
  t.equal(link.link?.flavour, 'bound');
  t.equal(link.link?.targetPath, 'albums/cat.jpg', 'the link is back and bound to the file');

  // smhfs cat links/cat                          # the original bytes
  const cat = await ok(['cat', 'links/cat']);
  t.equal(cat.stdout.length, bytes.length, 'cat returns every byte');
  t.ok(cat.stdout.equals(bytes), 'cat links/cat returns the original bytes');
});

t.test('put - reads standard input; cp makes a second bound link; ls -l of a file', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  const bytes = Buffer.from('hello from stdin\n');
  const put = await smhfs(dir, lib, ['put', '-', 'notes.txt'], bytes);
  t.equal(put.code, 0, put.stderr);
  t.equal((await smhfs(dir, lib, ['ln', 'notes.txt', 'l1'])).code, 0);
  const cp = await smhfs(dir, lib, ['cp', 'l1', 'l2']);
  t.equal(cp.code, 0, cp.stderr);
  const l2 = JSON.parse((await smhfs(dir, lib, ['--json', 'stat', 'l2'])).out) as Info;
  t.equal(l2.link?.flavour, 'bound', 'a copy of a bound link is bound (L8)');
  t.equal(l2.link?.targetPath, 'notes.txt');
  const cat = await smhfs(dir, lib, ['cat', 'l2']);
  t.ok(cat.stdout.equals(bytes), 'cat through the copied link');
  const ls = await smhfs(dir, lib, ['ls', '-l', 'notes.txt']);
  t.match(ls.out, /^-\S+ +\S+ +\S+ +17 +\S+ \S+ +notes\.txt\n$/, 'ls -l of one file shows that file (mode, owner, group, size, time, name)');
  // mv into a directory with a trailing slash.
  t.equal((await smhfs(dir, lib, ['mkdir', 'docs'])).code, 0);
  const mv = await smhfs(dir, lib, ['mv', 'notes.txt', 'docs/']);
  t.equal(mv.out, 'notes.txt -> docs/notes.txt\n', mv.stderr);
  const l1 = JSON.parse((await smhfs(dir, lib, ['--json', 'stat', 'l1'])).out) as Info;
  t.equal(l1.link?.targetPath, 'docs/notes.txt');
});

t.test('rm -r --permanent runs the purge task before exiting (L15)', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  writeFileSync(join(dir, 'f'), 'x');
  for (const args of [
    ['mkdir', '-p', 'd/e'],
    ['put', 'f', 'd/e/f1'],
    ['put', 'f', 'd/f2'],
    ['ln', 'd/e/f1', 'keep'],
  ]) {
    const r = await smhfs(dir, lib, args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  const rm = await smhfs(dir, lib, ['rm', '-r', '--permanent', 'd']);
  t.equal(rm.code, 0, rm.stderr);
  t.match(rm.out, /^d: deleted permanently; its contents are purged by task (\d+)$/m);
  const tasks = JSON.parse((await smhfs(dir, lib, ['--json', 'tasks'])).out) as Array<{ state: string; subject: string }>;
  t.equal(tasks.length, 1, 'one task');
  t.equal(tasks[0]?.state, 'done', 'the purge finished before rm exited');
  const ls = JSON.parse((await smhfs(dir, lib, ['--json', 'ls'])).out) as Array<{ name: string }>;
  t.same(
    ls.map((e) => e.name),
    [],
    'the directory and the link bound to a file in it are gone (L13/L15)',
  );
  const human = await smhfs(dir, lib, ['tasks']);
  t.match(human.out, /^ID +STATE/, 'tasks prints a table');
});
