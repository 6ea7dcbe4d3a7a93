// Builds the libfuse 3 low-level addon (src/fuse/ll/build/Release/smhfs_ll.node) with node-gyp
// against the system's libfuse3 (pkg-config fuse3).
//
//   node src/fuse/ll/build.mjs            from npm's postinstall: never fails the install. When the
//                                         build is impossible (no libfuse3-dev, no compiler) it
//                                         writes the reason to build/UNAVAILABLE, which the
//                                         TypeScript loader reports; `--binding fuse-native` works.
//   node src/fuse/ll/build.mjs --strict   from the Makefile, which installed the packages: a
//                                         failure is an error.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const strict = process.argv.includes('--strict');
const marker = join(here, 'build', 'UNAVAILABLE');

function give_up(reason) {
  mkdirSync(join(here, 'build'), { recursive: true });
  writeFileSync(marker, `${reason.trim()}\n`);
  const msg = `smhfs: the libfuse 3 binding was not built: ${reason.trim()}\n` +
    'smhfs: mounts need --binding fuse-native until it is (Debian: apt-get install libfuse3-dev fuse3 pkg-config build-essential, then `make`).\n';
  process.stderr.write(msg);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') give_up(`${process.platform} is not Linux (macOS keeps fuse-native)`);
const pc = spawnSync('pkg-config', ['--modversion', 'fuse3'], { encoding: 'utf8' });
if (pc.error) give_up('pkg-config is not installed');
if (pc.status !== 0) give_up('libfuse3 development files are missing (pkg-config fuse3 failed)');

// node-gyp: npm tells its scripts where its own copy is; outside npm, use the one npm ships with.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter(Boolean);
const gyp = candidates.find((p) => existsSync(p));
if (!gyp) give_up('node-gyp was not found (it ships with npm)');
const args = [gyp, 'rebuild'];
// Node's headers: installed beside node (Debian/NodeSource packages) — no download needed.
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
rmSync(marker, { force: true });
const r = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8' });
if (r.status !== 0) {
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n');
  const errors = out.filter((l) => /error/i.test(l)).slice(0, 8);
  give_up(`node-gyp rebuild failed (libfuse3 ${pc.stdout.trim()}):\n${(errors.length ? errors : out.slice(-12)).join('\n')}`);
}
process.stderr.write(`smhfs: built the libfuse 3 binding (libfuse ${pc.stdout.trim()})\n`);
