/**
 * Fill a new smhfs library with empty files through the store, without a mount (the scale
 * bench's memory test needs 300k files and creating them through FUSE would take minutes):
 * `node scale-populate.js LIBRARY FILES PER_DIR [META]` makes dK/fI like bench/scale-worker.ts
 * (META: a postgres:// URL, for a PostgreSQL library — bench/postgres-mount.ts).
 */
import { Library } from '../src/store/library.js';

const [dir, files, per, meta] = process.argv.slice(2) as [string, string, string, string | undefined];
const n = Number(files);
const perDir = Number(per);
const lib = Library.open(dir, { create: true, ...(meta ? { meta } : {}) });
const space = lib.space('-');
for (let d = 0; d * perDir < n; d++) {
  lib.transaction(() => {
    space.mkdir(`d${d}`);
    for (let i = 0; i < perDir && d * perDir + i < n; i++) space.createFile(`d${d}/f${i}`);
  });
}
lib.close();
