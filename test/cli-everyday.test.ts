/**
 * Issue 14, the command line as a newcomer meets it (no mount here; see mount-everyday.test.ts):
 * messages in shell words with the code for scripts and exit 1 (2 only for usage), put's checks
 * before it reads a byte, `put -p`, progress only on a terminal (checked under a pseudo-terminal
 * with script(1)), read-only libraries, help generated from one definition (global options,
 * examples, sizes, ranges), completion sourced by bash, the man page rendered by man(1),
 * `--version` with the commit, `ls -l` owners, the mount(8) helper's argv, `make install-files`.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Library } from '../src/store/library.js';
import { CLI, expectCatLibrary, lines, scratch, scratchCopy, smhfs } from './cli-helpers.js';

/** Create a library (the store's API: works whether or not the CLI creates libraries on first use). */
function createLibrary(dir: string, build?: (lib: Library) => void): void {
  const lib = Library.open(dir, { create: true });
  try {
    build?.(lib);
  } finally {
    lib.close();
  }
}

const ROOT = join(CLI, '..', '..', '..', '..');

function sh(cmd: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile('bash', ['-c', cmd], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

/**
 * The library most tests start from: photos/cat.jpg and links/cat, made once (its three CLI
 * commands checked there); each test gets its own copy (`library`).
 */
let template = '';
t.test('the starting library: mkdir -p, put and ln with the CLI', async (st) => {
  const { dir, lib } = scratch(t); // removed at the end of the file
  createLibrary(lib);
  writeFileSync(join(dir, 'cat.jpg'), 'meow');
  for (const args of [['mkdir', '-p', 'photos', 'links'], ['put', './cat.jpg', 'photos/cat.jpg'], ['ln', 'photos/cat.jpg', 'links/cat']]) {
    const r = await smhfs(dir, lib, args);
    st.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  template = lib;
});

/** A test's own copy of the starting library (with photos/cat.jpg and links/cat, checked). */
async function library(t: Test): Promise<{ dir: string; lib: string; run: (...args: string[]) => ReturnType<typeof smhfs> }> {
  if (!template) throw new Error('no starting library (its test failed)');
  const { dir, lib } = scratchCopy(t, template);
  writeFileSync(join(dir, 'cat.jpg'), 'meow');
  await expectCatLibrary(t, lib);
  const run = (...args: string[]) => smhfs(dir, lib, args);
  return { dir, lib, run };
}

/**
 * Run the CLI with a standard input that stays open and never sends a byte: a command that
 * checks before it reads exits; one that reads first waits forever (killed at the deadline).
 */
function withSilentStdin(cwd: string, args: string[], deadlineMs = 30_000): Promise<{ code: number | string; stderr: string; waited: boolean }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, XDG_DATA_HOME: join(cwd, 'xdg') } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let waited = false;
    const timer = setTimeout(() => {
      waited = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      child.stdin!.destroy();
      res({ code: code ?? signal ?? -1, stderr, waited });
    });
  });
}

t.test('issue 14: put checks the destination before reading the source', async (t) => {
  const { dir, lib, run } = await library(t);
  const missing = await withSilentStdin(dir, ['--library', lib, 'put', '-', 'nodir/big.bin']);
  t.equal(missing.waited, false, 'put into a missing directory does not wait for its input');
  t.equal(missing.code, 1, 'exit 1');
  t.match(missing.stderr, /^smhfs: put: nodir\/big\.bin: the parent directory nodir does not exist \(put -p creates it\) \(DirectoryNotFound\)\n$/);
  const taken = await withSilentStdin(dir, ['--library', lib, 'put', '-', 'photos/cat.jpg', '--conflict', 'ask']);
  t.equal(taken.waited, false, 'a taken name under --conflict ask is refused before reading');
  t.equal(taken.code, 1);
  t.match(taken.stderr, /^smhfs: put: photos\/cat\.jpg: a file or directory with the same name exists \(SameNameDirectoryOrFileExists\)\n$/);
  const notDir = await withSilentStdin(dir, ['--library', lib, 'put', '-', 'photos/cat.jpg/x']);
  t.equal(notDir.code, 1, 'a file as a parent: refused before reading');
  t.match(notDir.stderr, /\(NotADirectory\)\n$/);
  const bin = await withSilentStdin(dir, ['--library', lib, 'put', '-', '.trash/x']);
  t.equal(bin.code, 1, 'the recycle-bin view: refused before reading');
  t.match(bin.stderr, /\(NoPermission\)\n$/);

  // A named pipe as the source: opening it would block until a writer comes.
  await sh(`mkfifo '${join(dir, 'fifo')}'`);
  const fifo = await withSilentStdin(dir, ['--library', lib, 'put', './fifo', 'nodir/x']);
  t.equal(fifo.waited, false, 'a pipe source is not opened when the destination is refused');
  t.equal(fifo.code, 1);
  // ...and with a writer it is read once (not hashed, then read again).
  const piped = await sh(`(printf 'through a pipe' > fifo &) ; node '${CLI}' --library '${lib}' put ./fifo piped.txt`, { cwd: dir, timeoutMs: 30_000 });
  t.equal(piped.code, 0, `put of a named pipe: ${piped.stderr}`);
  t.equal((await run('cat', 'piped.txt')).out, 'through a pipe');

  const p = await run('put', '-p', './cat.jpg', 'videos/2025/summer/cat.jpg');
  t.equal(p.code, 0, `put -p: ${p.stderr}`);
  t.equal(p.out, 'videos/2025/summer/cat.jpg (4 bytes)\n');
  t.equal((await run('cat', 'videos/2025/summer/cat.jpg')).out, 'meow', 'put -p made the parents');
  const pAgain = await run('put', '-p', './cat.jpg', 'videos/2025/summer/cat.jpg', '--conflict', 'overwrite');
  t.equal(pAgain.code, 0, 'put -p into existing parents');
  t.same(lines((await run('ls', 'videos/2025/summer')).out), ['cat.jpg'], 'overwritten, not renamed');
  const dirSrc = await run('put', '.', 'x');
  t.equal(dirSrc.code, 1);
  t.match(dirSrc.stderr, /^smhfs: put: \.: is a directory; put stores one file \(smhfs mkdir makes directories\) \(EISDIR\)\n$/);
});

t.test('issue 14: exit 1 for every error that is not about usage, 2 only for usage', async (t) => {
  const { dir, run } = await library(t);
  mkdirSync(join(dir, 'plain'));
  for (const args of [['stats', 'plain'], ['unmount', 'plain']]) {
    const r = await run(...args);
    t.equal(r.code, 1, `${args[0]} on a plain directory: exit 1 (it is not a usage error)`);
    t.match(r.stderr, new RegExp(`^smhfs: ${args[0]}: \\S+/plain: .+ \\(NotMounted\\)\\n$`), r.stderr);
  }
  const empty = await run('--library', '', 'ls');
  t.equal(empty.code, 2, '--library "" is refused (it used to mean the default)');
  t.match(empty.stderr, /must not be empty/);
  const bad = await run('ls', '--bogus');
  t.equal(bad.code, 2);
  t.match(bad.stderr, /\(run "smhfs help ls" for usage\)/, "the hint names the command's own help");
});

t.test('issue 14: the default library follows SMHFS_LIBRARY and XDG_DATA_HOME; an empty SMHFS_LIBRARY is unset', async (t) => {
  const { dir } = scratch(t);
  const env = (extra: NodeJS.ProcessEnv) => ({ ...process.env, XDG_DATA_HOME: join(dir, 'xdg'), SMHFS_DEBUG: '', ...extra });
  const run = (args: string[], extra: NodeJS.ProcessEnv) =>
    new Promise<{ code: number; stderr: string; stdout: string }>((res) => {
      execFile(process.execPath, [CLI, ...args], { cwd: dir, env: env(extra), encoding: 'utf8' }, (err, stdout, stderr) =>
        res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  createLibrary(join(dir, 'from-env'), (l) => l.space('-').mkdir('in-env', {}));
  createLibrary(join(dir, 'xdg', 'smhfs', 'default'), (l) => l.space('-').mkdir('in-xdg', {}));
  const fromEnv = await run(['ls'], { SMHFS_LIBRARY: join(dir, 'from-env') });
  t.equal(fromEnv.stdout, 'in-env\n', `SMHFS_LIBRARY names the library: ${fromEnv.stderr}`);
  const xdg = await run(['ls'], { SMHFS_LIBRARY: '' });
  t.equal(xdg.stdout, 'in-xdg\n', `SMHFS_LIBRARY= (empty) is unset: the XDG default: ${xdg.stderr}`);
});

t.test('issue 14: SQLite trouble is named, never "500 InternalError"', async (t) => {
  const { lib, run } = await library(t);
  // More rows than the first pages hold (made in-process: 30 CLI starts would test nothing more).
  const l = Library.open(lib);
  try {
    for (let i = 0; i < 30; i++) l.space('-').mkdir(`photos/d${i}`);
  } finally {
    l.close();
  }
  // Scribble over every page but the first (the header and schema): the tables are damaged.
  const db = readFileSync(join(lib, 'library.db'));
  for (let off = 8192; off + 2100 < db.length; off += 4096) db.fill(0xa5, off + 100, off + 2100);
  writeFileSync(join(lib, 'library.db'), db);
  const r = await run('ls', 'photos');
  t.equal(r.code, 1);
  t.equal(lines(r.stderr).length, 1, 'one line');
  t.match(r.stderr, /^smhfs: ls: \S+: the library database is damaged; run "smhfs fsck" .* \(SQLITE_CORRUPT\)\n$/, r.stderr);
  t.notMatch(r.stderr, /InternalError|\b500\b/);
});

t.test('D9 (CLI words): a full disk under the library is InsufficientStorage, never an I/O error', async (t) => {
  const { dir } = scratch(t);
  const disk = join(dir, 'disk');
  mkdirSync(disk);
  const m = await sh(`mount -t tmpfs -o size=2m smhfs-test-full '${disk}'`);
  t.equal(m.code, 0, `a 2 MiB tmpfs (needs root): ${m.stderr}`);
  if (m.code !== 0) return;
  t.teardown(() => sh(`umount '${disk}' || umount -l '${disk}'`));
  const lib = join(disk, 'lib');
  createLibrary(lib);
  t.equal((await smhfs(dir, lib, ['mkdir', 'a'])).code, 0);
  // Fill all but a few KiB, then create until the database cannot grow; then fill the rest.
  await sh(`head -c 1900K /dev/zero > '${disk}/filler'`);
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = await smhfs(dir, lib, ['mkdir', `a/dir-${i}-${'x'.repeat(200)}`]);
    if (r.code !== 0) seen.add(r.stderr);
  }
  await sh(`cat /dev/zero >> '${disk}/filler'`);
  const full = await smhfs(dir, lib, ['mkdir', 'b']);
  t.equal(full.code, 1, 'a write on a full disk fails');
  seen.add(full.stderr);
  for (const line of seen) {
    t.match(line, /^smhfs: mkdir: \S+: no space left on device for the library database; .* \(InsufficientStorage\)\n$/, line);
    t.notMatch(line, /IOERR|InternalError|\b500\b/);
  }
});

/** `chmod -R` without following links. */
function chmodTree(p: string, fileMode: number, dirMode: number): void {
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const cp = join(p, e.name);
    if (e.isDirectory()) chmodTree(cp, fileMode, dirMode);
    else if (e.isFile()) chmodSync(cp, fileMode);
  }
  chmodSync(p, dirMode);
}

const READING: Array<[string[], RegExp]> = [
  [['ls', '-l', 'links'], /^l\S+ +root +root +\d+ .* cat -> photos\/cat\.jpg \(bound\)\n$/],
  [['cat', 'links/cat'], /^meow$/],
  [['stat', 'links/cat'], /kind: +link \(bound\)/],
  [['trash', 'list'], /the recycle bin is empty/],
  [['tasks'], /no tasks/],
  [['blobs'], /^blobs: +\S+\/blobs \(the library's own folder\)$/m],
];

t.test('issue 14: a read-only file system: ls, cat, stat, trash list, tasks work; writes say why', async (t) => {
  const { dir, lib } = await library(t);
  const ro = join(dir, 'ro');
  mkdirSync(ro);
  const bind = await sh(`mount --bind '${lib}' '${ro}' && mount -o remount,bind,ro '${ro}'`);
  t.equal(bind.code, 0, `a read-only bind mount (needs root): ${bind.stderr}`);
  t.teardown(() => sh(`umount '${ro}' || umount -l '${ro}'`));
  if (bind.code !== 0) return;
  t.notOk(existsSync(join(ro, 'library.db-shm')), 'closed cleanly: no -shm to read through');
  for (const [args, re] of READING) {
    const r = await smhfs(dir, ro, args);
    t.equal(r.code, 0, `${args.join(' ')} on a read-only file system: ${r.stderr}`);
    t.match(r.out, re, args.join(' '));
  }
  const w = await smhfs(dir, ro, ['mkdir', 'new']);
  t.equal(w.code, 1, 'a write is refused');
  t.match(w.stderr, /^smhfs: mkdir: \S+: .* commands that only read \(ls, cat, stat, trash list, tasks, blobs\) still work on it \(LibraryReadOnly\)\n$/, w.stderr);
  t.notMatch(w.stderr, /fix its permissions/);
});

t.test("issue 14: another user's library: the same commands work for a user who may only read it", async (t) => {
  const { dir, lib } = await library(t);
  chmodSync(dir, 0o755);
  chmodTree(lib, 0o444, 0o555);
  t.teardown(() => chmodTree(lib, 0o644, 0o755));
  // setpriv rather than spawn's uid: the test runner adds a NODE_OPTIONS hook to every child
  // that writes into the checkout at exit, which nobody may not.
  const asNobody = (args: string[]) =>
    sh(`env -i PATH="$PATH" HOME=/nonexistent setpriv --reuid=65534 --regid=65534 --clear-groups '${process.execPath}' '${CLI}' --library '${lib}' ${args.map((a) => `'${a}'`).join(' ')}`, { cwd: '/' });
  for (const [args, re] of READING) {
    const r = await asNobody(args);
    t.equal(r.code, 0, `${args.join(' ')} as nobody: ${r.stderr}`);
    t.match(r.stdout, re, args.join(' '));
  }
  const w = await asNobody(['rm', 'photos/cat.jpg']);
  t.equal(w.code, 1);
  t.match(w.stderr, /still work on it \(LibraryReadOnly\)\n$/);
});

t.test('issue 14: help shows global options, human sizes, one default each, examples; values are checked', async (t) => {
  const { dir } = scratch(t);
  const mount = await smhfs(dir, undefined, ['mount', '--help']);
  t.equal(mount.code, 0);
  t.match(mount.out, /Global Options:\n {2}--library <dir>/, 'mount --help shows --library');
  t.notMatch(mount.out, /--json/, 'but not --json, which mount does not use');
  t.match(mount.out, /--cache-size <size>[^]*?\(default: 256M\)/, 'sizes human-readable');
  t.notMatch(mount.out, /268435456/);
  t.match(mount.out, /--read-only[^]*--uid <uid>[^]*--gid <gid>[^]*--umask <octal>[^]*--log-file <file>[^]*--log-level <level>[^]*--metrics <addr>/);
  t.match(mount.out, /\nExamples:\n {2}\$ smhfs mount \.\/mnt\n/, 'examples');
  const ls = await smhfs(dir, undefined, ['help', 'ls']);
  t.match(ls.out, /path +directory or entry \(default: the space root\)\n/, 'ls: one default, in words');
  t.notMatch(ls.out, /\(default: ""\)/);
  const stats = await smhfs(dir, undefined, ['stats', '--help']);
  t.match(stats.out, /Global Options:\n {2}--json /, 'stats: --json only');
  t.notMatch(stats.out, /--library/);
  for (const [args, re] of [
    [['mount', './mnt', '--readahead', '1T'], /"1T" is out of range: 64K to 1G/],
    [['mount', './mnt', '--page-size', '3K'], /"3K" is out of range: 4K to 64M/],
    [['mount', './mnt', '--uid', 'bob'], /expected a numeric user id/],
    [['mount', './mnt', '--metrics', 'nowhere'], /expected HOST:PORT/],
    [['mount', './mnt', '--log-level', 'loud'], /Allowed choices are error, warn, info, debug/],
  ] as Array<[string[], RegExp]>) {
    const r = await smhfs(dir, undefined, args);
    t.equal(r.code, 2, `${args.join(' ')}: a usage error`);
    t.match(r.stderr, re, args.join(' '));
  }
});

t.test('issue 14: --version and smhfs version name the commit', async (t) => {
  const { dir } = scratch(t);
  const head = (await sh('git rev-parse --short=12 HEAD', { cwd: ROOT })).stdout.trim();
  const v = await smhfs(dir, undefined, ['--version']);
  t.equal(v.code, 0);
  t.match(v.out, /^smhfs \d+\.\d+\.\d+ \(commit [0-9a-f]{12}(\+dirty)?, node v\d+\.\d+\.\d+\)\n$/);
  t.ok(v.out.includes(`commit ${head}`), `the commit is HEAD (${head}): ${v.out.trim()}`);
  const version = await smhfs(dir, undefined, ['version']);
  t.equal(version.out, v.out, 'smhfs version says the same');
  const json = JSON.parse((await smhfs(dir, undefined, ['--json', 'version'])).out) as { version: string; commit: string; node: string };
  t.equal(json.node, process.version);
  t.ok(json.commit.startsWith(head));
});

t.test('issue 14: ls -l shows owner and group', async (t) => {
  const { run } = await library(t);
  const uid = process.getuid!();
  const me = (await sh('id -un')).stdout.trim();
  const grp = (await sh('id -gn')).stdout.trim();
  const l = await run('ls', '-l', 'photos');
  t.match(l.out, new RegExp(`^-rw-r--r-- +${me} +${grp} +4 +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d +cat\\.jpg\\n$`), l.out);
  const n = await run('ls', '-n', 'photos');
  t.match(n.out, new RegExp(`^-rw-r--r-- +${uid} +${process.getgid!()} +4 `), n.out);
});

t.test('issue 14: completion script sourced by bash', async (t) => {
  const { dir } = scratch(t);
  const script = await smhfs(dir, undefined, ['completion', 'bash']);
  t.equal(script.code, 0);
  writeFileSync(join(dir, 'smhfs.bash'), script.out);
  writeFileSync(join(dir, 'photo.jpg'), 'x');
  const probe = `
    source ./smhfs.bash
    complete -p smhfs
    t() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); COMPREPLY=(); _smhfs; echo "$* => \${COMPREPLY[*]}"; }
    t smhfs mo
    t smhfs trash re
    t smhfs mv a b --conflict ''
    t smhfs mount ./mnt --log-level d
    t smhfs --library ./lib mou
    t smhfs mount ./mnt --cache
    t smhfs completion ''
    t smhfs put ./pho
  `;
  const r = await sh(probe, { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  t.same(lines(r.stdout), [
    'complete -o bashdefault -o filenames -F _smhfs smhfs',
    'smhfs mo => mount',
    'smhfs trash re => restore',
    'smhfs mv a b --conflict  => ask rename overwrite',
    'smhfs mount ./mnt --log-level d => debug',
    'smhfs --library ./lib mou => mount',
    'smhfs mount ./mnt --cache => --cache-size --cache-dir --cache-disk-size',
    'smhfs completion  => bash zsh fish',
    'smhfs put ./pho => ./photo.jpg',
  ]);
  const scripts: Record<string, string> = {};
  for (const shell of ['zsh', 'fish']) {
    const s = await smhfs(dir, undefined, ['completion', shell]);
    t.equal(s.code, 0, shell);
    for (const c of ['mount', 'put', 'restore', 'completion']) t.ok(s.out.includes(c), `${shell} completion knows ${c}`);
    scripts[shell] = s.out;
  }
  t.match(scripts['zsh'], /bashcompinit/);
  t.match(scripts['fish'], /complete -c smhfs -n '__fish_seen_subcommand_from mount' -l log-level -x -a 'error warn info debug'/);
});

t.test('issue 14: the man page renders with man(1) and lists every command', async (t) => {
  const { dir } = scratch(t);
  const page = await smhfs(dir, undefined, ['man']);
  t.equal(page.code, 0);
  t.match(page.out, /^\.TH SMHFS 1 /);
  writeFileSync(join(dir, 'smhfs.1'), page.out);
  const r = await sh(`MANWIDTH=100 man --warnings -l ./smhfs.1`, { cwd: dir, env: { MANPAGER: 'cat', PAGER: 'cat' } });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '', 'no groff warnings');
  const text = r.stdout.replace(/.\x08/g, '');
  const commands = ['put', 'cat', 'ls', 'mkdir', 'ln', 'mv', 'cp', 'rm', 'stat', 'trash list', 'trash restore', 'tasks', 'mount', 'unmount', 'stats', 'serve', 'token create', 'blobs set', 'completion', 'man', 'version'];
  for (const c of commands) t.ok(text.includes(`smhfs ${c}`), `documents smhfs ${c}`);
  for (const section of ['GLOBAL OPTIONS', 'COMMANDS', 'EXIT STATUS', 'ENVIRONMENT', 'MOUNTING AT BOOT']) t.ok(text.includes(section), section);
});

t.test('issue 14: progress on a terminal (script(1) gives a pty), silent otherwise', async (t) => {
  const { dir, lib } = scratch(t);
  createLibrary(lib);
  t.equal((await smhfs(dir, lib, ['mkdir', 'x'])).code, 0);
  // Input that takes 1.5 s: long enough for the progress line, however fast the machine.
  const slow = `(head -c 3000000 /dev/zero; sleep 1.5; head -c 3000000 /dev/zero)`;
  // Both at once: the two inputs' 1.5 s pauses overlap instead of adding up.
  const [tty, pipe] = await Promise.all([
    sh(`script -qec "${slow} | node '${CLI}' --library '${lib}' put - x/big.bin" /dev/null`, { cwd: dir, timeoutMs: 60_000 }),
    sh(`${slow} | node '${CLI}' --library '${lib}' put - x/again.bin`, { cwd: dir, timeoutMs: 60_000 }),
  ]);
  t.equal(tty.code, 0, tty.stdout);
  t.match(tty.stdout, /\r\x1b\[Ksmhfs: put x\/big\.bin: \d+\.\d MiB, [\d.]+ \S+\/s/, 'a progress line, redrawn in place');
  t.match(tty.stdout, /\r\x1b\[Ksmhfs: put x\/big\.bin: 5\.7 MiB, done\r?\n/, 'and a last line');
  t.match(tty.stdout, /x\/big\.bin \(6000000 bytes\)/, 'then the result');
  t.equal(pipe.code, 0);
  t.equal(pipe.stderr, '', 'stderr not a terminal: no progress');
});

t.test('make install-files: smhfs, mount.smhfs, mount.fuse.smhfs, the man page and completion in a PREFIX', async (t) => {
  const { dir } = scratch(t);
  const prefix = join(dir, 'usr');
  const r = await sh(`make -s --no-print-directory install-files PREFIX='${prefix}' SBINDIR='${prefix}/sbin'`, { cwd: ROOT });
  t.equal(r.code, 0, r.stderr + r.stdout);
  for (const f of ['bin/smhfs', 'sbin/mount.smhfs', 'sbin/mount.fuse.smhfs', 'share/man/man1/smhfs.1', 'share/bash-completion/completions/smhfs']) {
    t.ok(existsSync(join(prefix, f)), f);
  }
  const v = await sh(`env -i PATH=/usr/bin:/bin '${prefix}/bin/smhfs' --version`);
  t.match(v.stdout, /^smhfs \d+\.\d+\.\d+ \(commit /, 'runs with a minimal environment (no node on a special PATH)');
  const helper = await sh(`'${prefix}/sbin/mount.fuse.smhfs' /lib /mnt -f`);
  t.equal(helper.code, 0, 'the helper understands the mount(8) convention (-f: fake)');
  const usage = await sh(`'${prefix}/sbin/mount.smhfs' /lib`);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /usage: mount\.smhfs LIBRARY MOUNTPOINT/);
});

t.test('issue 14: serve --log-file --log-level --metrics', async (t) => {
  const { dir, lib } = await library(t);
  const log = join(dir, 'logs', 'serve.log');
  const child = spawn(process.execPath, [CLI, '--library', lib, 'serve', '--listen', '127.0.0.1:0', '--log-file', log, '--metrics', '127.0.0.1:0'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, XDG_DATA_HOME: join(dir, 'xdg') },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((res) => child.on('exit', (code, signal) => res(code ?? signal ?? -1)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let text = '';
  for (let i = 0; i < 400 && !/metrics at http/.test(text); i++) {
    await new Promise((r) => setTimeout(r, 50));
    text = existsSync(log) ? readFileSync(log, 'utf8') : '';
  }
  t.match(text, /^\S+Z smhfs\[\d+\] INFO serving \S+\/lib at http:\/\/127\.0\.0\.1:\d+$/m, 'the banner goes to the log file');
  t.equal(stderr, '', 'and not to stderr');
  const api = /serving \S+ at (http:\/\/\S+)/.exec(text)![1]!;
  const metrics = /metrics at (http:\/\/\S+)/.exec(text)![1]!;
  await fetch(`${api}/api/v1/nothing-here`);
  const body = await (await fetch(metrics)).text();
  t.match(body, /^smhfs_request_duration_seconds_count\{op="smh GET"\} 1$/m, 'HTTP requests observed by dialect and method');
  t.match(body, /^smhfs_cache_misses_total \d+$/m, 'cache counters');
  t.match(body, /^smhfs_cache_unit_fetches_total \d+$/m, 'unit fetches');
  t.match(body, /^smhfs_cache_unit_bytes_reused_total \d+$/m, 'unit bytes reused');
  t.match(body, /^smhfs_cache_buffer_bytes \d+$/m, 'page-cache buffer bytes');
  t.match(body, /^smhfs_blob_requests_total\{op="getRange"\} \d+$/m, 'blob requests');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM stops it');
  t.match(readFileSync(log, 'utf8'), /INFO SIGTERM: stopping\n$/);
});
