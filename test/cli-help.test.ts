/**
 * Issue 14, the parts of the CLI that are plain functions: help generated from the commander tree
 * (every command's global options, examples, defaults), the progress line (with a fake terminal
 * and clock), sizes, and the mount(8) helper's argv translation.
 */
import t from 'tap';
import { buildProgram } from '../src/cli/program.js';
import { docOf, walk } from '../src/cli/help.js';
import { translateMountHelperArgs } from '../src/cli/mount-helper.js';
import { startProgress } from '../src/cli/progress.js';
import { formatSize, parseSize } from '../src/cli/sizes.js';
import { scratch, smhfs } from './cli-helpers.js';

t.test('issue 14: every command\'s help lists the global options it uses, its examples, no raw defaults', async (t) => {
  const { dir } = scratch(t);
  const program = buildProgram();
  const all = ['--library', '--space', '--json', '--blobs', '--s3-endpoint', '--s3-region', '--s3-path-style'];
  const groupOf: Record<string, string> = { '--library': 'library', '--space': 'space', '--json': 'json', '--blobs': 'blobs', '--s3-endpoint': 's3', '--s3-region': 's3', '--s3-path-style': 's3' };
  for (const info of walk(program).slice(1)) {
    if (info.subcommands.length > 0) continue;
    const name = info.path.join(' ');
    const r = await smhfs(dir, undefined, [...info.path, '--help']);
    t.equal(r.code, 0, `${name} --help`);
    const globals = r.out.split('Global Options:')[1]?.split('\n\n')[0] ?? '';
    const uses = docOf(info.cmd)?.uses ?? docOf(info.cmd.parent!)?.uses;
    for (const flag of all) {
      const expected = uses === undefined || uses.includes(groupOf[flag] as never);
      t.equal(new RegExp(`^  ${flag}\\b`, 'm').test(globals), expected, `${name}: ${flag} ${expected ? 'listed' : 'not listed'}`);
    }
    t.notMatch(r.out, /\(default: ""\)|\(default: \d{6,}\)|\(default: \[\]\)/, `${name}: no empty or raw-byte defaults`);
    if (docOf(info.cmd)?.examples?.length) t.match(r.out, /\nExamples:\n  \$ smhfs /, `${name}: examples`);
  }
  t.equal(formatSize(parseSize('256M')), '256M');
  t.equal(formatSize(parseSize('1.5G')), '1.5G');
  t.equal(formatSize(4096), '4K');
});

t.test('progress: percent, rate and time left from a known total; quiet before the delay', async (t) => {
  let now = 0;
  const out: string[] = [];
  const stream = { isTTY: true, columns: 200, write: (s: string) => out.push(s) };
  const p = startProgress('put a.bin', { total: 100 * 1024 * 1024, stream, now: () => now });
  now = 100;
  p.update(1024 * 1024);
  t.same(out, [], 'nothing within the first 300 ms');
  now = 1000;
  p.update(25 * 1024 * 1024);
  t.same(out, ['\r\x1b[Ksmhfs: put a.bin: 25.0 MiB of 100 MiB (25%), 25.0 MiB/s, 3 s left']);
  now = 1050;
  p.update(26 * 1024 * 1024);
  t.equal(out.length, 1, 'not redrawn within 100 ms');
  now = 4000;
  p.update(100 * 1024 * 1024);
  p.done();
  t.equal(out[out.length - 1], '\r\x1b[Ksmhfs: put a.bin: 100 MiB, done in 4 s\n');
  const quiet: string[] = [];
  const q = startProgress('x', { stream: { isTTY: false, write: (s: string) => quiet.push(s) }, delayMs: 0 });
  q.update(5);
  q.done();
  t.same(quiet, [], 'not a terminal: nothing');
});

t.test('M1: the mount(8) helper convention (mount.smhfs LIBRARY DIR -o OPTIONS)', async (t) => {
  const program = buildProgram();
  t.same(
    translateMountHelperArgs(program, [
      '/srv/lib',
      '/srv/media',
      '-o',
      'rw,allow_other,noauto,nofail,_netdev,x-systemd.automount,comment=x,cache_size=1G,log_file=/var/log/m.log,uid=1000,nosuid,space=photos,debug',
    ]),
    ['mount', '--daemon', '/srv/media', '--library', '/srv/lib', '--allow-other', '--cache-size', '1G', '--log-file', '/var/log/m.log', '--uid', '1000', '--space', 'photos', '--debug', '-o', 'nosuid'],
  );
  t.same(translateMountHelperArgs(program, ['smhfs#/l', '/m', '-o', 'ro', '-v']), ['mount', '--daemon', '/m', '--library', '/l', '--read-only']);
  t.same(translateMountHelperArgs(program, ['/l', '/m', '-f']), [], '-f: a fake mount does nothing');
  t.same(translateMountHelperArgs(program, ['/l', '/m', '-t', 'fuse.smhfs', '-o', 'read_only,metrics=127.0.0.1:9567']), [
    'mount', '--daemon', '/m', '--library', '/l', '--read-only', '--metrics', '127.0.0.1:9567',
  ]);
  t.throws(() => translateMountHelperArgs(program, ['/l']), /usage: mount\.smhfs LIBRARY MOUNTPOINT/);
  t.throws(() => translateMountHelperArgs(program, ['/l', '/m', '-o', 'library=/x']), /first argument/);
  t.throws(() => translateMountHelperArgs(program, ['/l', '/m', '-o', 'cache_size']), /needs a value/);
  t.throws(() => translateMountHelperArgs(program, ['/l', '/m', '-t', 'ext4']), /expected smhfs or fuse\.smhfs/);
});

