/**
 * The layers of native-notes/architecture.md, checked on the source (issue 10): every import of
 * src/**\/*.ts is read (static, `export … from`, dynamic `import()`, type-only ones too: a type
 * import is still knowledge of the other layer), and
 * - no import cycle between modules (type-only imports count: two modules that name each other's
 *   types cannot be understood, or cut, one at a time);
 * - the store imports nothing from fuse/, http/, vfs/, cli/ (it knows no mounts, HTTP, page cache),
 *   nor the page cache (blob/page-cache.ts, disk-cache.ts): bytes are read in src/vfs/reader.ts;
 * - the blob layer imports nothing from store/ (nor from the faces);
 * - vfs/ imports nothing from fuse/, http/, cli/ (it is what they share);
 * - fuse/ and http/ never import each other (both are faces over vfs/ and the store's ports);
 * - fuse/, http/ and vfs/ reach the store only through their port (fuse/port.ts,
 *   http/store-port.ts, vfs/port.ts) and the shared domain types (store/types.ts, paths.ts);
 * - no file in src/ (TypeScript, or the addon's C) is over 600 lines unless its opening comment
 *   says why ("over 600 lines").
 * Known exceptions are listed below with their reason, so the list is the to-do list: a file that
 * no longer needs its entry fails the test too, and the entry goes.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = join(ROOT, 'src');
const MAX_LINES = 600;

/** Files over the limit without a reason at their top, each with why it may stay so for now. */
const LONG_FILES: Record<string, string> = {
  // none since the store's split (issue 10); add 'path': 'reason' only for work in progress
};

/** Import cycles that are known, as their sorted members joined by ' ↔ ', with the reason. */
const KNOWN_CYCLES: Record<string, string> = {
  // none since the store's split (issue 10: Library and Space no longer import each other)
};

interface Import {
  spec: string;
  typeOnly: boolean;
}

/** Files under `dir` whose name passes `wanted` (TypeScript sources by default). */
function sources(dir: string, wanted = (name: string) => name.endsWith('.ts') && !name.endsWith('.d.ts')): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules' && name !== 'build') out.push(...sources(p, wanted));
    } else if (wanted(name)) out.push(p);
  }
  return out.sort();
}

/** Imports of a TypeScript module, comments removed first (a `from '…'` in a comment is not one). */
function importsOf(text: string): Import[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const out: Import[] = [];
  const stmt = /(?:^|;|\n)\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (const m of code.matchAll(stmt)) {
    const typeOnly = m[2] !== undefined || /^\{\s*(type\s+[\w$]+(\s+as\s+[\w$]+)?\s*,?\s*)+\}$/.test((m[3] ?? '').trim());
    out.push({ spec: m[4]!, typeOnly });
  }
  for (const m of code.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push({ spec: m[1]!, typeOnly: false });
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push({ spec: m[1]!, typeOnly: false });
  return out;
}

const files = sources(SRC);
const rel = (abs: string): string => relative(SRC, abs).split('\\').join('/');
const layerOf = (r: string): string => (r.includes('/') ? r.slice(0, r.indexOf('/')) : r);

/** Relative imports resolved to src-relative paths (`./x.js` → `dir/x.ts`). */
const graph = new Map<string, Array<{ to: string; typeOnly: boolean }>>();
for (const f of files) {
  const deps: Array<{ to: string; typeOnly: boolean }> = [];
  for (const imp of importsOf(readFileSync(f, 'utf8'))) {
    if (!imp.spec.startsWith('.')) continue;
    const target = resolve(dirname(f), imp.spec).replace(/\.js$/, '.ts');
    deps.push({ to: rel(target), typeOnly: imp.typeOnly });
  }
  graph.set(rel(f), deps);
}

t.test('the import reader sees the imports it must', async (t) => {
  const seen = importsOf(`/** import x from './no.js' */\nimport a from './a.js';\nimport type { B } from './b.js';\nimport { type C, type D } from './c.js';\nimport { E, type F } from './e.js';\nexport { G } from './g.js';\nimport './side.js';\nconst h = await import('./h.js'); // from './no2.js'\n`);
  t.same(
    seen.map((i) => `${i.spec}${i.typeOnly ? ' (type)' : ''}`).sort(),
    ['./a.js', './b.js (type)', './c.js (type)', './e.js', './g.js', './h.js', './side.js'].sort(),
  );
  t.ok(graph.size > 50, `read ${graph.size} modules of src/`);
  t.ok([...graph.values()].some((d) => d.length > 0), 'and their imports');
});

/** Imports from layer `from` into any of `forbidden`, as "a.ts → b.ts" lines. */
function crossings(from: string, forbidden: string[]): string[] {
  const out: string[] = [];
  for (const [f, deps] of graph) {
    if (layerOf(f) !== from) continue;
    for (const d of deps) if (forbidden.includes(layerOf(d.to))) out.push(`${f} → ${d.to}${d.typeOnly ? ' (type)' : ''}`);
  }
  return out;
}

t.test('layers: no import runs against the layering', async (t) => {
  t.same(crossings('store', ['fuse', 'http', 'vfs', 'cli']), [], 'the store imports nothing from fuse/, http/, vfs/, cli/');
  const cacheImports = [...graph].flatMap(([f, deps]) =>
    layerOf(f) === 'store' ? deps.filter((d) => /^blob\/(page|disk)-cache\.ts$/.test(d.to)).map((d) => `${f} → ${d.to}`) : [],
  );
  t.same(cacheImports, [], 'the store knows no page cache: reading bytes is src/vfs/reader.ts');
  t.same(crossings('blob', ['store', 'fuse', 'http', 'vfs', 'cli']), [], 'the blob layer imports nothing from store/ nor the faces');
  t.same(crossings('vfs', ['fuse', 'http', 'cli']), [], 'vfs/ imports nothing from fuse/, http/, cli/');
  t.same(crossings('fuse', ['http', 'cli']), [], 'fuse/ imports nothing from http/ or cli/');
  t.same(crossings('http', ['fuse', 'cli']), [], 'http/ imports nothing from fuse/ or cli/');
  // The faces and vfs/ see the store through their port (a Pick<> of the real classes) and the
  // shared domain types, nothing else: the store's inside can move without them noticing.
  const PORTS: Record<string, string> = { fuse: 'fuse/port.ts', http: 'http/store-port.ts', vfs: 'vfs/port.ts' };
  const SHARED = ['store/types.ts', 'store/paths.ts'];
  const pastPorts = [...graph].flatMap(([f, deps]) => {
    const layer = layerOf(f);
    if (!(layer in PORTS)) return [];
    return deps.filter((d) => layerOf(d.to) === 'store' && f !== PORTS[layer] && !SHARED.includes(d.to)).map((d) => `${f} → ${d.to}`);
  });
  t.same(pastPorts, [], 'fuse/, http/ and vfs/ reach the store only through their port and store/types.ts, store/paths.ts');
  t.same(crossings('errors.ts', ['store', 'blob', 'fuse', 'http', 'vfs', 'cli']), [], 'errors.ts imports no layer');
});

/** Strongly connected components of the import graph (Tarjan), those with a cycle. */
function cycles(): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const d of graph.get(v) ?? []) {
      if (!graph.has(d.to)) continue;
      if (!idx.has(d.to)) {
        visit(d.to);
        low.set(v, Math.min(low.get(v)!, low.get(d.to)!));
      } else if (on.has(d.to)) low.set(v, Math.min(low.get(v)!, idx.get(d.to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).some((d) => d.to === v);
      if (scc.length > 1 || selfLoop) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

t.test('no import cycle', async (t) => {
  const found = cycles().map((c) => c.join(' ↔ '));
  const unknown = found.filter((c) => !(c in KNOWN_CYCLES));
  t.same(unknown, [], 'no import cycle between modules of src/');
  for (const [c, why] of Object.entries(KNOWN_CYCLES)) {
    t.ok(found.includes(c), `the known cycle ${c} (${why}) still exists; if it is gone, remove its entry`);
  }
});

/** The addon's C sources (src/fuse/ll/*.c): held to the same length rule as the TypeScript. */
const cFiles = sources(SRC, (name) => name.endsWith('.c'));

t.test(`files: none over ${MAX_LINES} lines unless its opening comment says why`, async (t) => {
  const over: string[] = [];
  for (const f of [...files, ...cFiles]) {
    const text = readFileSync(f, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines <= MAX_LINES) continue;
    const opening = /^\s*\/\*\*?([\s\S]*?)\*\//.exec(text)?.[1] ?? '';
    if (/over ~?600 lines/i.test(opening)) continue;
    over.push(`${rel(f)} (${lines} lines)`);
  }
  const unexplained = over.filter((o) => !(o.slice(0, o.indexOf(' (')) in LONG_FILES));
  t.same(unexplained, [], `every file over ${MAX_LINES} lines says why at its top ("over 600 lines because …")`);
  for (const [f, why] of Object.entries(LONG_FILES)) {
    t.ok(over.some((o) => o.startsWith(`${f} (`)), `${f} is listed as long (${why}); if it is no longer, remove its entry`);
  }
});
