/**
 * What a command that only reads the library loads (native-notes/cli.md, "make"): the test suite
 * starts the CLI ~900 times, and users run it in scripts, so what only some commands need loads
 * with them (dynamic `import()` of a bundle chunk, or a builtin required where it is used), not
 * at every start. Checked on the module graph, not by timing:
 *  - statically: the files dist/src/cli/main.js imports (transitively) hold none of the modules
 *    named below, and import none of the packages and builtins named below — while the build
 *    does hold each of those modules in some chunk beside it (a renamed module fails here rather
 *    than passing vacuously);
 *  - at run time: after `smhfs ls` and `smhfs stat`, those Node builtins are not loaded
 *    (process.moduleLoadList, which catches a `createRequire` at a module's top level too).
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFile } from 'node:child_process';
import { CLI, scratchLibrary } from './cli-helpers.js';

/** Our modules that only some commands use: mount-only, fsck, migrate, serve, S3, the read path. */
const LAZY_MODULES = [
  'blob/disk-cache.js', // mount with a disk cache
  'blob/fault-store.js', // mount with SMHFS_TEST_FAULTS
  'store/fsck.js', // fsck (and migrate)
  'store/migrate.js', // migrate
  'fuse/server.js', // mount
  'http/server.js', // serve
  'blob/s3-store.js', // an S3 blob store
  'vfs/reader.js', // cat, mount, serve: the read path
  'blob/page-cache.js', // and its page cache
];
/** Packages that only some commands use. */
const LAZY_PACKAGES = ['fastify', 'pg', 'libpq', '@aws-sdk/client-s3', 'prom-client', 'fuse-native', 'p-queue'];
/** Builtins that only some commands use: metrics (http), control socket and S3 (net), disk cache (zlib), workers. */
const LAZY_BUILTINS = ['http', 'net', 'zlib', 'worker_threads'];
/** Those not loaded at run time either: node:net comes with node:child_process, which commander loads. */
const NOT_LOADED = LAZY_BUILTINS.filter((b) => b !== 'net');

/** The static import closure of a bundle file: our files, the modules they hold, the bare specifiers. */
function staticGraph(entry: string): { files: Set<string>; modules: Set<string>; externals: Set<string> } {
  const files = new Set<string>();
  const modules = new Set<string>();
  const externals = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    // esbuild marks where each module's code starts: `// dist/src/store/fsck.js`
    for (const m of text.matchAll(/^\/\/ dist\/src\/(\S+\.js)$/gm)) modules.add(m[1]!);
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["'];?$|^import\s*["']([^"']+)["'];?$/gm)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) visit(join(dirname(file), spec));
      else externals.add(spec.replace(/^node:/, ''));
    }
  };
  visit(entry);
  return { files, modules, externals };
}

t.test('a command that reads the library does not load the mount, fsck, migrate, serve or S3 code (static graph)', async (t) => {
  const { files, modules, externals } = staticGraph(CLI);
  // the analysis sees the graph at all
  t.ok(modules.has('store/library.js') && modules.has('cli/commands/library.js'), `the static graph holds the library commands (${files.size} files)`);
  t.ok(externals.has('commander') && externals.has('better-sqlite3'), 'and their packages');
  const everywhere = new Set<string>();
  for (const f of readdirSync(dirname(CLI)).filter((n) => /^main(-chunk-\w+)?\.js$/.test(n))) {
    for (const m of readFileSync(join(dirname(CLI), f), 'utf8').matchAll(/^\/\/ dist\/src\/(\S+\.js)$/gm)) everywhere.add(m[1]!);
  }
  for (const m of LAZY_MODULES) {
    t.ok(everywhere.has(m), `${m} is in the build`);
    t.notOk(modules.has(m), `${m} is not loaded at start`);
  }
  for (const p of LAZY_PACKAGES) t.notOk(externals.has(p), `package ${p} is not imported at start`);
  for (const b of LAZY_BUILTINS) t.notOk(externals.has(b), `builtin node:${b} is not imported at start`);
});

t.test('ls and stat do not load node:http, zlib or worker_threads (run time)', async (t) => {
  const { dir, lib } = await scratchLibrary(t);
  // Loaded before the CLI: at exit, write the builtins this process loaded.
  const hook = `data:text/javascript,${encodeURIComponent(
    "import { writeFileSync } from 'node:fs'; process.on('exit', () => writeFileSync(process.env.SMHFS_TEST_LOADED, JSON.stringify(process.moduleLoadList)));",
  )}`;
  const list = join(dir, 'loaded.json');
  for (const args of [['ls', '/'], ['stat', '/']]) {
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [`--import=${hook}`, CLI, '--library', lib, ...args], { cwd: dir, env: { ...process.env, XDG_DATA_HOME: join(dir, 'xdg'), SMHFS_TEST_LOADED: list } }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const loaded = JSON.parse(readFileSync(list, 'utf8')) as string[];
    t.ok(loaded.includes('NativeModule fs'), `${args[0]}: the list of loaded builtins was written (${loaded.length} entries)`);
    for (const b of NOT_LOADED) t.notOk(loaded.includes(`NativeModule ${b}`), `${args[0]}: node:${b} not loaded`);
  }
});
