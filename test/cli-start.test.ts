/**
 * What a command that only reads the library loads (native-notes/cli.md, "make"): the test suite
 * starts the CLI ~800 times, and users run it in scripts, so what only some commands need loads
 * with them (dynamic `import()`, which esbuild turns into a module initialized at that import, or
 * a builtin required where it is used), not at every start. Checked on the module graph, not by
 * timing:
 *  - statically: the modules that the bundle (dist/src/cli/bundle.cjs, which main.js starts)
 *    initializes at start — the entry's import and require closure, from esbuild's metafile,
 *    dynamic imports left out — are none of the modules named below and import none of the
 *    packages and builtins named below, while the bundle does hold each of those modules (a
 *    renamed module fails here rather than passing vacuously);
 *  - at run time: after `smhfs ls` and `smhfs stat`, those Node builtins are not loaded
 *    (process.moduleLoadList, which catches a `createRequire` at a module's top level too), nor
 *    node:crypto, node:child_process or node:fs/promises, which the bundle loads on first use.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
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
/** Not loaded at run time either (node:net is: the test reads the command's output through a pipe). */
const NOT_LOADED = [...LAZY_BUILTINS.filter((b) => b !== 'net'), 'crypto', 'child_process', 'fs/promises'];

interface Metafile {
  inputs: Record<string, { imports: Array<{ path: string; kind: string; external?: boolean; original?: string }> }>;
}

/**
 * What the bundle initializes at start: the modules reached from the entry by import statements
 * and require calls (not by dynamic import), and the packages and builtins they import (external,
 * or esbuild's `lazy-builtin:` stand-ins, which load the builtin on first use and count as not imported).
 */
function staticGraph(): { modules: Set<string>; bundled: Set<string>; externals: Set<string> } {
  const meta = JSON.parse(readFileSync(join(dirname(CLI), 'bundle.meta.json'), 'utf8')) as Metafile;
  const modules = new Set<string>();
  const externals = new Set<string>();
  const visit = (input: string): void => {
    if (modules.has(input)) return;
    modules.add(input);
    for (const i of meta.inputs[input]?.imports ?? []) {
      if (i.kind === 'dynamic-import' || i.path.startsWith('lazy-builtin:')) continue;
      if (i.external) externals.add(i.path.replace(/^node:/, ''));
      else if (i.path.startsWith('node_modules/')) externals.add(i.path.split('/').slice(1, i.path.split('/')[1]!.startsWith('@') ? 3 : 2).join('/'));
      if (!i.external) visit(i.path);
    }
  };
  visit('dist/src/cli/entry.js');
  const ours = (names: Iterable<string>): Set<string> => new Set([...names].filter((m) => m.startsWith('dist/src/')).map((m) => m.slice('dist/src/'.length)));
  return { modules: ours(modules), bundled: ours(Object.keys(meta.inputs)), externals };
}

t.test('a command that reads the library does not load the mount, fsck, migrate, serve or S3 code (static graph)', async (t) => {
  const { modules, bundled, externals } = staticGraph();
  // the analysis sees the graph at all
  t.ok(modules.has('store/library.js') && modules.has('cli/commands/library.js'), `the static graph holds the library commands (${modules.size} modules)`);
  t.ok(externals.has('commander') && externals.has('better-sqlite3'), 'and their packages');
  for (const m of LAZY_MODULES) {
    t.ok(bundled.has(m), `${m} is in the build`);
    t.notOk(modules.has(m), `${m} is not loaded at start`);
  }
  for (const p of LAZY_PACKAGES) t.notOk(externals.has(p), `package ${p} is not imported at start`);
  for (const b of LAZY_BUILTINS) t.notOk(externals.has(b), `builtin node:${b} is not imported at start`);
});

t.test('ls and stat do not load node:http, zlib, worker_threads, crypto, child_process or fs/promises (run time)', async (t) => {
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
