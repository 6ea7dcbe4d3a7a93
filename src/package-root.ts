/**
 * The package's root folder (the one holding package.json), found from a module's own URL. Our
 * modules run either as tsc emits them (dist/src/<layer>/…) or bundled into dist/src/cli/
 * (src/cli/bundle.mjs, what the `smhfs` command runs), so no fixed number of `..` fits both: a
 * module that needs a file of the package (the addon build, a worker script) asks here.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const found = new Map<string, string>();

export function packageRoot(moduleUrl: string): string {
  const start = dirname(fileURLToPath(moduleUrl));
  const known = found.get(start);
  if (known !== undefined) return known;
  for (let dir = start; ; ) {
    if (existsSync(join(dir, 'package.json'))) {
      found.set(start, dir);
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${start}: smhfs runs from its package folder (make build)`);
    dir = up;
  }
}
