/**
 * Fill a new smhfs library with empty files through the store, without a mount (the scale
 * bench's memory test needs 300k files and creating them through FUSE would take minutes):
 * `node scale-populate.js LIBRARY FILES PER_DIR` makes dK/fI like bench/scale-worker.ts.
 */
import { Library } from '../src/store/library.js';

const [dir, files, per] = process.argv.slice(2) as [string, string, string];
const n = Number(files);
const perDir = Number(per);
const lib = Library.open(dir, { create: true });
const space = lib.space('-');
for (let d = 0; d * perDir < n; d++) {
  lib.transaction(() => {
    space.mkdir(`d${d}`);
    for (let i = 0; i < perDir && d * perDir + i < n; i++) space.createFile(`d${d}/f${i}`);
  });
}
lib.close();
