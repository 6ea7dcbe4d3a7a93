/**
 * Issue 15 (scale), mount tier: `smhfs unmount` returns promptly when the server has exited but
 * its parent has not reaped it (a zombie: /proc/PID/stat state Z).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, fuseUnavailable, isMounted, sh, smhfs } from './helpers/mount.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function procState(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
  } catch {
    return undefined;
  }
}

const why = await fuseUnavailable();
if (why) {
  t.plan(0, `mount tests need FUSE: ${why}`);
} else {
  t.test('M1: smhfs unmount returns promptly when the server exited and its parent never reaps it', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'smhfs-zombie-'));
    const mp = join(dir, 'mnt');
    const made = await smhfs(['--library', join(dir, 'lib'), 'init']); // D2: only init creates a library
    t.equal(made.code, 0, `smhfs init ${made.stderr}`);
    // A parent that forks the server and never waits for it (perl: SIGCHLD left at its default).
    const parent = spawn(
      'perl',
      ['-e', 'my $p = fork() // die "fork: $!"; if (!$p) { exec @ARGV or die "exec: $!" } print "$p\\n"; STDOUT->flush(); sleep 600;', process.execPath, CLI, 'mount', mp, '--library', join(dir, 'lib')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    parent.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const parentExited = new Promise((r) => parent.on('exit', r));
    let serverPid: number | undefined;
    t.teardown(async () => {
      if (serverPid !== undefined && (await procState(serverPid)) !== 'Z' && (await procState(serverPid)) !== undefined) {
        try {
          process.kill(serverPid, 'SIGTERM');
        } catch {
          // gone
        }
      }
      for (let i = 0; i < 100 && (await isMounted(mp)); i++) await sleep(100);
      if (await isMounted(mp)) await sh(`fusermount -uz '${mp}' || umount -l '${mp}'`);
      parent.kill('SIGKILL'); // our perl (by its pid): the zombie goes to init with it
      await parentExited;
      if (!(await isMounted(mp))) await rm(dir, { recursive: true, force: true });
    });
    for (let i = 0; i < 400 && !(serverPid !== undefined && (await isMounted(mp)) && out.includes('serving')); i++) {
      serverPid ??= /^(\d+)\n/.exec(out) ? Number(/^(\d+)\n/.exec(out)![1]) : undefined;
      await sleep(50);
    }
    t.ok(serverPid !== undefined && (await isMounted(mp)), `mounted by server ${serverPid} (${out.trim()})`);

    const t0 = Date.now();
    const r = await smhfs(['unmount', mp]);
    const seconds = (Date.now() - t0) / 1000;
    t.equal(r.code, 0, `unmount exits 0 ${r.stderr}`);
    t.equal(await isMounted(mp), false, 'unmounted');
    t.equal(await procState(serverPid!), 'Z', 'the server has exited and is still unreaped (a zombie)');
    // The old code waited its full 30 s for the zombie; a generous bound, not a benchmark.
    t.ok(seconds < 15, `unmount returned after ${seconds.toFixed(1)} s, not after waiting out the zombie`);
  });
}
