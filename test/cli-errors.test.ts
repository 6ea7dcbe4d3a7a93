/**
 * CLI exit codes and messages: 1 with one line `smhfs: <command>: <subject>: <words> (<code>)`
 * for a domain error (shell words, the SMH code last, no HTTP status), 2 for usage errors,
 * parseable `--json`, a clear message for a folder that is not a library.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { expectCatLibrary, lines, scratch, scratchCopy, scratchLibrary, smhfs } from './cli-helpers.js';

/**
 * The library every test starts from: photos/cat.jpg and the bound link links/cat, made once with
 * the CLI (its three commands checked here). Each test gets its own copy (`setup`).
 */
let template = '';
t.test('the starting library: mkdir -p, put and ln with the CLI', async (st) => {
  const { dir, lib } = await scratchLibrary(t); // removed at the end of the file
  writeFileSync(join(dir, 'cat.jpg'), 'meow');
  for (const args of [
    ['mkdir', '-p', 'photos', 'links'],
    ['put', './cat.jpg', 'photos/cat.jpg'],
    ['ln', 'photos/cat.jpg', 'links/cat'],
  ]) {
    const r = await smhfs(dir, lib, args);
    st.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  template = lib;
});

/** A test's own copy of the template, checked to hold what the tests rely on. */
async function setup(t: Test) {
  if (!template) throw new Error('no starting library (its test failed)');
  const { dir, lib } = scratchCopy(t, template);
  await expectCatLibrary(t, lib);
  const run = (...args: string[]) => smhfs(dir, lib, args);
  return { dir, lib, run };
}

t.test('C1: ln onto an existing name with --conflict ask: exit 1, one exact line, nothing changed', async (t) => {
  const { run } = await setup(t);
  const before = (await run('--json', 'ls', '-l', 'links')).out;
  const r = await run('ln', 'photos/cat.jpg', 'links/cat', '--conflict', 'ask');
  t.equal(r.code, 1, 'exit 1');
  t.equal(r.out, '', 'nothing on stdout');
  const errLines = lines(r.stderr);
  t.equal(errLines.length, 1, 'exactly one line on stderr');
  t.match(errLines[0], /^smhfs: ln: links\/cat: a file or directory with the same name exists \(SameNameDirectoryOrFileExists\)$/, 'names the command, the path, what happened and the code');
  t.equal((await run('--json', 'ls', '-l', 'links')).out, before, 'nothing changed');
  // The default strategy (rename) succeeds with a new name.
  const renamed = await run('ln', 'photos/cat.jpg', 'links/cat');
  t.equal(renamed.code, 0);
  t.equal(renamed.out, 'links/cat (1) -> photos/cat.jpg (bound)\n', 'C2: rename picks "cat (1)"');
});

t.test('domain errors name the path and the rule', async (t) => {
  const { run } = await setup(t);
  const cases: Array<[string[], RegExp]> = [
    [['stat', 'nope'], /^smhfs: stat: nope: no such file or directory \(FileNotFound\)$/],
    [['cat', 'links/nope'], /^smhfs: cat: links\/nope: no such file or directory \(FileNotFound\)$/],
    [['ln', 'missing.jpg', 'links/x'], /^smhfs: ln: missing\.jpg: the link target does not exist \(SourceFileNotFound\)$/],
    [['ln', 'photos', 'links/dir'], /^smhfs: ln: photos: symbolic links to directories are not supported \(InvalidSourceFile\)$/],
    [['ln', 'links/cat', 'links/second'], /^smhfs: ln: links\/cat: secondary symbolic links are not supported \(InvalidSourceFile\)$/],
    [['trash', 'restore', '999'], /^smhfs: trash restore: 999: no recycle-bin item 999 \(RecycledItemNotFound\)$/],
    [['trash', 'purge', '999'], /^smhfs: trash purge: 999: no recycle-bin item 999 \(RecycledItemNotFound\)$/],
    [['cat', 'photos'], /^smhfs: cat: photos: is a directory \(IsADirectory\)$/],
    [['mkdir', 'photos'], /^smhfs: mkdir: photos: a file or directory with the same name exists \(SameNameDirectoryOrFileExists\)$/],
    [['mkdir', `${'x'.repeat(256)}`], /^smhfs: mkdir: x+: name is 256 bytes, the limit is 255 \(DirectoryNameLengthExceed\)$/],
    [['mv', 'photos', '../outside'], /^smhfs: mv: \S+: '\.\.' segments are not allowed in a path \(InvalidDestinationPath\)$/],
    [['rm', 'photos'], /^smhfs: rm: photos: directory not empty \(remove it recursively\) \(DirectoryNotEmpty\)$/],
  ];
  for (const [args, re] of cases) {
    const r = await run(...args);
    t.equal(r.code, 1, `${args.join(' ')}: exit 1`);
    t.equal(lines(r.stderr).length, 1, `${args.join(' ')}: one line`);
    t.match(r.stderr.trimEnd(), re, `${args.join(' ')}: ${r.stderr.trimEnd()}`);
    t.notMatch(r.stderr, /\b[45]\d\d\b/, `${args.join(' ')}: no HTTP status in a shell message`);
  }
  const ls = await run('--space', 'nosuch', 'ls');
  t.equal(ls.code, 1);
  t.match(ls.stderr, /^smhfs: ls: nosuch: no space 'nosuch' in this library \(SpaceNotFound\)\n$/, 'an unknown space');
  const put = await run('put', './no-such-local-file', 'x');
  t.equal(put.code, 1);
  t.match(put.stderr, /^smhfs: put: .*no-such-local-file: no such file or directory \(ENOENT\)\n$/, 'a missing local file');
});

t.test('usage errors exit 2', async (t) => {
  const { run } = await setup(t);
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['mv', 'photos', 'albums', '--conflict', 'maybe'], /--conflict <strategy>.*'maybe' is invalid.*ask, rename, overwrite/],
    [['ln', 'photos/cat.jpg', 'links/x', '--conflict', 'replace'], /'replace' is invalid/],
    [['trash', 'restore', 'abc'], /expected a positive integer id/],
    [['trash', 'restore', '1', '--conflict', ''], /is invalid/],
    [['ln', 'photos/cat.jpg'], /missing required argument 'link'/],
    [['ls', '--bogus'], /unknown option '--bogus'/],
    [['stat', 'a', 'b'], /too many arguments/],
    [[], /Usage: smhfs/],
    [['--library', '', 'ls'], /--library <dir>.*must not be empty/],
    [['mount', './mnt', '--readahead', '1T'], /'1T' is invalid\. "1T" is out of range: 64K to 1G/],
    [['mount', './mnt', '--cache-size', '12'], /out of range: 16M to/],
    [['mount', './mnt', '--umask', '999'], /expected an octal umask/],
    [['completion', 'tcsh'], /value 'tcsh' is invalid for argument 'shell'. Allowed choices are bash, zsh, fish/],
  ];
  for (const [args, re] of cases) {
    const r = await run(...args);
    t.equal(r.code, 2, `smhfs ${args.join(' ')}: exit 2`);
    t.match(r.stderr, re, `smhfs ${args.join(' ')}: ${r.stderr.split('\n')[0]}`);
  }
  // Nothing was moved by the refused mv.
  t.equal((await run('stat', 'photos')).code, 0, 'photos is still there');
  const help = await run('--help');
  t.equal(help.code, 0, '--help exits 0');
  t.match(help.out, /Library commands[^\n]*:[\s\S]*trash[\s\S]*Mount:[\s\S]*mount/);
});

t.test('--json output parses', async (t) => {
  const { run } = await setup(t);
  await run('rm', 'photos/cat.jpg');
  for (const args of [
    ['ls'],
    ['ls', '-l', 'links'],
    ['stat', 'photos'],
    ['trash', 'list'],
    ['tasks'],
    ['mkdir', 'new'],
    ['mv', 'new', 'newer'],
  ]) {
    const r = await run('--json', ...args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    let parsed: unknown;
    t.doesNotThrow(() => (parsed = JSON.parse(r.out)), `--json ${args.join(' ')} parses`);
    t.not(parsed, undefined);
  }
  // --json works after the command name too.
  const after = await run('trash', 'list', '--json');
  const items = JSON.parse(after.out) as Array<{ links: unknown[] }>;
  t.equal(items.length, 1);
  t.equal(items[0]?.links.length, 1);
});

t.test('a folder that is not a library gives a clear message', async (t) => {
  const { dir } = scratch(t);
  const notLib = join(dir, 'papers');
  mkdirSync(notLib);
  writeFileSync(join(notLib, 'thesis.txt'), 'not a library');
  const r = await smhfs(dir, notLib, ['ls']);
  t.equal(r.code, 1, 'exit 1');
  t.equal(lines(r.stderr).length, 1, 'one line');
  t.match(r.stderr, /^smhfs: ls: \S*papers: is not empty and holds no smhfs library; choose an empty or new folder \(NotALibrary\)$/m, `clear message: ${r.stderr.trimEnd()}`);
  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  const f = await smhfs(dir, file, ['ls']);
  t.equal(f.code, 1, 'a plain file as --library: exit 1');
  t.match(f.stderr, /^smhfs: ls: .*plain-file/, `names the path: ${f.stderr.trimEnd()}`);
});

t.test('D2: the default library is $XDG_DATA_HOME/smhfs/default, made by init; before that commands refuse with a hint', async (t) => {
  const { dir } = scratch(t);
  const before = await smhfs(dir, undefined, ['mkdir', 'x']);
  t.equal(before.code, 1, 'no implicit creation');
  t.equal(lines(before.stderr).length, 1, 'one line');
  t.match(before.stderr, /: there is no library at .*xdg\/smhfs\/default; create one with "smhfs --library .* init" \(NotALibrary\)$/m, before.stderr.trimEnd());
  t.equal((await smhfs(dir, undefined, ['init'])).code, 0, 'init makes the default library');
  const r = await smhfs(dir, undefined, ['mkdir', 'x']);
  t.equal(r.code, 0, r.stderr);
  const ls = await smhfs(dir, join(dir, 'xdg', 'smhfs', 'default'), ['ls']);
  t.match(ls.out, /^x$/m, 'the default library is under XDG_DATA_HOME');
});
