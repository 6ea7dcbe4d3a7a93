/**
 * One step of the scale bench (bench/scale.ts), run in its own process so the file system under
 * test never shares a thread with its client: `node scale-worker.js STEP ROOT ...`. Every call
 * is a plain synchronous system call, the loop is timed inside (no process start-up), and the
 * result is printed as JSON `{ "ops": N, "seconds": S, "cpu": CPU seconds of this process }`.
 *
 *   create ROOT FILES PER_DIR     mkdir ROOT/dK, then open(O_CREAT)+close ROOT/dK/fI
 *   stat ROOT FILES PER_DIR       lstat each of those
 *   symlink ROOT LINKS PER_DIR    ROOT/links/lI -> ../dK/fI (relative: bound on smhfs), spread over the files
 *   readlink ROOT LINKS           readlink each of those
 *   statfs ROOT N                 statfs(2) N times (what `df` does)
 *   cover ROOT LINKS              ROOT/cover/photo.jpg and LINKS directories cK holding a link `cover` to it
 *   rmcover ROOT                  unlink ROOT/cover/photo.jpg (on smhfs: the LINKS same-named links go with it)
 *   populate DIR FILES PER_DIR    like create, in a plain directory (the bindfs side of the RSS test)
 */
import * as fs from 'node:fs';

const [step, root, a, b] = process.argv.slice(2) as [string, string, string?, string?];
const n = Number(a ?? 0);
const perDir = Number(b ?? 10_000);
const now = (): number => Number(process.hrtime.bigint()) / 1e9;
const file = (i: number): string => `${root}/d${Math.floor(i / perDir)}/f${i % perDir}`;

let ops = 0;
let t0 = now();
let cpu0 = process.cpuUsage();
/** Start the clock (and the CPU count) here: what came before is set-up. */
const start = (): void => {
  t0 = now();
  cpu0 = process.cpuUsage();
};
switch (step) {
  case 'create':
  case 'populate':
    for (let i = 0; i < n; i++) {
      if (i % perDir === 0) fs.mkdirSync(`${root}/d${i / perDir}`);
      fs.closeSync(fs.openSync(file(i), 'w'));
    }
    ops = n;
    break;
  case 'stat':
    for (let i = 0; i < n; i++) fs.lstatSync(file(i));
    ops = n;
    break;
  case 'symlink': {
    fs.mkdirSync(`${root}/links`);
    start();
    const files = Number(process.argv[6] ?? n * 10); // spread the targets over every directory
    const stride = Math.max(1, Math.floor(files / n));
    for (let i = 0; i < n; i++) {
      const target = file(i * stride).slice(root.length + 1);
      fs.symlinkSync(`../${target}`, `${root}/links/l${i}`);
    }
    ops = n;
    break;
  }
  case 'readlink':
    for (let i = 0; i < n; i++) fs.readlinkSync(`${root}/links/l${i}`);
    ops = n;
    break;
  case 'statfs':
    for (let i = 0; i < n; i++) fs.statfsSync(root);
    ops = n;
    break;
  case 'cover':
    fs.mkdirSync(`${root}/cover`);
    fs.writeFileSync(`${root}/cover/photo.jpg`, 'jpeg');
    for (let i = 0; i < n; i++) {
      fs.mkdirSync(`${root}/cover/c${i}`);
      fs.symlinkSync('../photo.jpg', `${root}/cover/c${i}/cover`);
    }
    ops = n;
    break;
  case 'rmcover':
    start();
    fs.unlinkSync(`${root}/cover/photo.jpg`);
    ops = 1;
    break;
  default:
    throw new Error(`scale-worker: unknown step ${step}`);
}
const seconds = now() - t0;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ ops, seconds, cpu: (cpu.user + cpu.system) / 1e6 }));
