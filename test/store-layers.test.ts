/**
 * Issue 10: the store's rules see the engine only through its seam (src/store/engine.ts,
 * rows.ts, space-rows.ts). No SQL, no prepared statement, no pragma, no rowid outside an engine's
 * own folder (src/store/sqlite/, src/store/postgres/) — fsck.ts excepted, which checks SQLite's
 * tables themselves (its reason is at its top), and `smhfs migrate`'s two files, which copy and
 * compare every raw table of one engine into the other and so must speak both (migrate-tables.ts
 * says why at its top). Each violation is listed with its file and line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const storeDir = join(repo, 'src', 'store');
const ENGINE_DIRS = ['sqlite', 'postgres'];
const EXEMPT = new Set(['fsck.ts', 'migrate.ts', 'migrate-tables.ts']);

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (dir === storeDir && ENGINE_DIRS.includes(name)) continue;
      out.push(...tsFiles(p));
    } else if (name.endsWith('.ts') && !(dir === storeDir && EXEMPT.has(name))) out.push(p);
  }
  return out;
}

const RULES: Array<{ what: string; re: RegExp }> = [
  { what: 'an SQL statement', re: /['"`]\s*(SELECT|INSERT|UPDATE|DELETE|WITH RECURSIVE|CREATE|ALTER|PRAGMA)\s/i },
  { what: 'a prepared statement', re: /\.prepare\(/ },
  { what: 'a pragma', re: /\.pragma\(/ },
  { what: 'a rowid', re: /lastInsertRowid/ },
  { what: 'better-sqlite3 (other than its types)', re: /^import (?!type )[^;]*from 'better-sqlite3'/ },
];

t.test('issue 10: no SQL, statement, pragma or rowid in the store outside its engines', async (t) => {
  const files = tsFiles(storeDir);
  t.ok(files.some((f) => f.endsWith('space.ts')) && files.some((f) => f.endsWith(join('ops', 'trash.ts'))), 'the rules are among the files read');
  const found: string[] = [];
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\*|\/\/)/.test(line)) return; // comments may name SQL
      for (const r of RULES) if (r.re.test(line)) found.push(`${relative(repo, file)}:${i + 1}: ${r.what}: ${line.trim()}`);
    });
  }
  t.same(found, [], 'each is in src/store/sqlite/ (or another engine) instead');
});
