// `make build`, after tsc: bundles the `smhfs` command (dist/src/cli/entry.js, every module of ours
// it imports, and the pure-JavaScript packages it always loads) into one CommonJS file,
// dist/src/cli/bundle.cjs, with a V8 code cache beside it; dist/src/cli/main.js (what users, `make
// install` and the tests run) is a link to main.cjs, copied from src/cli/main.cjs, which compiles
// the bundle with that cache.
//
// Why (a command start is what users' scripts and the test suite, ~800 starts, pay for):
// - Session 10: Node 20's ES module loader costs ~1 ms per module and a start loaded ~95 of ours;
//   an ESM bundle (code-split) took `ls` from ~0.40 to ~0.29 s of CPU.
// - Session 13: what remained of the loader (resolving, linking, compileSourceTextModule of the
//   ESM bundle and its chunks, cjs-module-lexer on CommonJS packages) went with the ES module
//   format: a CommonJS entry never starts Node's ESM loader. A CommonJS bundle cannot be split
//   (esbuild), so what only some commands use is in the same file but initialized lazily (esbuild
//   wraps a module reached by `import()` in an init function run at that import), and V8 compiles
//   a function only when it is first called. The code cache (Node 20 has no
//   module.enableCompileCache) holds the compiled code of a typical command's run (`ls`, run by
//   this script), so a start skips parsing the file. The bundle is kept ASCII (UTF-8 decoding of a
//   1 MB file with a few non-ASCII comment characters cost ~10 ms per start).
//   commander, lru-cache, p-queue (and its dependencies) and better-sqlite3's JavaScript are
//   bundled: what a start loaded from node_modules file by file. Other packages stay outside
//   (native addons, and the big ones only some commands require). Three builtins load on first
//   use (LAZY_BUILTINS). Measured (native-notes/cli.md, session 13): `ls` 294 -> 214 ms of CPU.
// The bundle sits in dist/src/cli/, so a module's import.meta.url (here the bundle's own URL)
// keeps dist/src/cli/'s depth; files of the package are found by src/package-root.ts.
import { build, transform } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, 'dist', 'src', 'cli');
const bundle = join(outdir, 'bundle.cjs');
/** Packages compiled into the bundle: the JavaScript that every start (or `cat`) loads. */
const BUNDLED = new Set(['commander', 'lru-cache', 'p-queue', 'eventemitter3', 'p-timeout', 'better-sqlite3']);
// better-sqlite3 finds its addon through the `bindings` package, which probes paths relative to
// the calling file (the bundle's, once bundled): the addon `bindings` finds now is required by its
// path from the bundle instead (a rebuilt addon lands at the same path).
const requireFrom = createRequire(join(root, 'package.json'));
const sqliteRoot = dirname(requireFrom.resolve('better-sqlite3/package.json'));
const sqliteAddon = createRequire(join(sqliteRoot, 'lib', 'database.js'))('bindings')({ bindings: 'better_sqlite3.node', module_root: sqliteRoot, path: true });
/**
 * Builtins loaded on first use of one of their exports, not at start: child_process (commander
 * requires it at its top for executable subcommands, which smhfs has none of; ~5 ms with the
 * node:net and node:dgram it loads). Each export is a getter on the module object.
 */
const LAZY_BUILTINS = new Set(['child_process', 'crypto', 'fs/promises']);

// What earlier builds left: the ESM bundle's chunks (session 10-12), old caches.
for (const f of readdirSync(outdir)) {
  if (/^main-chunk-[A-Z0-9]+\.js(\.map)?$|^main\.js\.map$|^bundle\.cjs\.cache/.test(f)) rmSync(join(outdir, f));
}

const { metafile } = await build({
  entryPoints: [join(outdir, 'entry.js')],
  // which module imports which, and how: test/cli-start.test.ts reads what a start loads from it
  metafile: true,
  outfile: bundle,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // ASCII: strings and identifiers are escaped; comments esbuild keeps are fixed below.
  charset: 'ascii',
  // The bundle's own URL for import.meta.url (what tsc's ESM modules use to find files).
  define: { 'import.meta.url': '__smhfs_bundle_url' },
  banner: { js: 'var __smhfs_bundle_url = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [
    {
      name: 'externals',
      setup(b) {
        b.onResolve({ filter: /^bindings$/ }, (a) => (a.importer.startsWith(sqliteRoot) ? { path: 'bindings', namespace: 'sqlite-addon' } : undefined));
        b.onLoad({ filter: /.*/, namespace: 'sqlite-addon' }, () => ({
          loader: 'js',
          contents: `module.exports = () => require(${JSON.stringify(`./${relative(outdir, sqliteAddon)}`)});`,
        }));
        // what those two virtual modules require is required at run time
        b.onResolve({ filter: /.*/, namespace: 'sqlite-addon' }, (a) => ({ path: a.path, external: true }));
        b.onResolve({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => ({ path: a.path, external: true }));
        b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (a) => {
          const name = a.path.replace(/^node:/, '');
          if (!LAZY_BUILTINS.has(name)) return undefined;
          return { path: name, namespace: 'lazy-builtin' };
        });
        b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => {
          const keys = Object.keys(requireFrom(`node:${a.path}`));
          return {
            loader: 'js',
            contents: `let m; const load = () => (m ??= require(${JSON.stringify(`node:${a.path}`)}));\n${keys
              .map((k) => `Object.defineProperty(module.exports, ${JSON.stringify(k)}, { enumerable: true, get: () => load()[${JSON.stringify(k)}] });`)
              .join('\n')}`,
          };
        });
        b.onResolve({ filter: /^[^./]/ }, (a) => {
          const pkg = a.path.split('/').slice(0, a.path.startsWith('@') ? 2 : 1).join('/');
          return BUNDLED.has(pkg) ? undefined : { path: a.path, external: true };
        });
      },
    },
  ],
  // Maps point through tsc's maps to src/*.ts (--enable-source-maps shows TypeScript lines).
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});

writeFileSync(join(outdir, 'bundle.meta.json'), JSON.stringify(metafile));

// The shebang esbuild carried over from entry.js would be a syntax error inside main.cjs's
// function wrapper; non-ASCII characters can only be in comments (charset: 'ascii'), and each
// becomes '?' per UTF-16 unit, so every column the source map gives stays where it was.
const built = readFileSync(bundle, 'utf8');
const ascii = built.replace(/^#!/, '//').replace(/[^\x00-\x7f]/g, '?');
const [before, after] = await Promise.all([built.replace(/^#![^\n]*/, ''), ascii].map((code) => transform(code, { minify: true, format: 'cjs', logLevel: 'error' })));
if (before.code !== after.code) throw new Error('bundle.mjs: making the bundle ASCII changed its code');
writeFileSync(bundle, ascii);

copyFileSync(join(root, 'src', 'cli', 'main.cjs'), join(outdir, 'main.cjs'));
rmSync(join(outdir, 'main.js'), { force: true });
symlinkSync('main.cjs', join(outdir, 'main.js'));

// The code caches: a command run with SMHFS_WRITE_CODE_CACHE writes, at its exit, what V8 compiled
// for it (main.cjs). `ls` on a new library: commander, the program's tree, the library's open
// path, the listing. Once with no node options, once with the Makefile's NODE_FLAGS (env).
const scratch = mkdtempSync(join(tmpdir(), 'smhfs-code-cache-'));
try {
  const library = join(scratch, 'library');
  const env = { ...process.env, SMHFS_LIBRARY: library, XDG_DATA_HOME: join(scratch, 'xdg') };
  execFileSync(process.execPath, [join(outdir, 'main.js'), 'init'], { env, stdio: 'ignore' });
  const flags = (process.env.NODE_FLAGS ?? '').split(' ').filter(Boolean);
  for (const options of flags.length > 0 ? [[], flags] : [[]]) {
    execFileSync(process.execPath, [...options, join(outdir, 'main.js'), 'ls', '/'], { env: { ...env, SMHFS_WRITE_CODE_CACHE: '1' }, stdio: 'ignore' });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
