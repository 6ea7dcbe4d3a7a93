// `make build`, after tsc: bundles the `smhfs` command (dist/src/cli/entry.js and every module of
// ours it imports) into dist/src/cli/main.js, plus chunks for what loads later (the mount, the
// HTTP server). Why: Node 20's ES module loader costs ~1 ms per module, and a CLI start loaded
// ~95 of ours — ~0.1 s of CPU out of ~0.4 for every command (the test suite runs ~1,000). npm
// packages stay outside the bundle (imported from node_modules as before, native ones among them),
// so what loads lazily stays lazy. The chunks sit beside main.js, so a module's import.meta.url
// keeps dist/src/cli/'s depth; files of the package are found by src/package-root.ts.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, 'dist', 'src', 'cli');
const CHUNK = /^main-chunk-[A-Z0-9]+\.js(\.map)?$/;

// Chunk names carry a content hash: the last build's are removed first.
for (const f of readdirSync(outdir)) if (CHUNK.test(f)) rmSync(join(outdir, f));

await build({
  entryPoints: { main: join(outdir, 'entry.js') },
  outdir,
  chunkNames: 'main-chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  // Maps point through tsc's maps to src/*.ts (--enable-source-maps shows TypeScript lines).
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});
