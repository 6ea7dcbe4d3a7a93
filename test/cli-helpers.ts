/** Runs the compiled CLI (dist/src/cli/main.js) in a child process, for the cli-*.test.ts files. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** stdout as UTF-8 text. */
  out: string;
}

/** A scratch folder (cwd of the CLI) with `lib` (not created yet) for the library; removed on teardown. */
export function scratch(t: { teardown(fn: () => void): void }): { dir: string; lib: string } {
  const dir = mkdtempSync(join(tmpdir(), 'smhfs-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, lib: join(dir, 'lib') };
}

/**
 * `scratch` with the library made (`smhfs init`, D2: no other command creates one); `args` are
 * extra global options for init (`--blobs …`).
 */
export async function scratchLibrary(t: { teardown(fn: () => void): void }, args: string[] = []): Promise<{ dir: string; lib: string }> {
  const s = scratch(t);
  const r = await smhfs(s.dir, s.lib, [...args, 'init']);
  if (r.code !== 0) throw new Error(`smhfs init failed (${r.code}): ${r.stderr}`);
  return s;
}

/** The test's environment, but never the real ~/.local/share/smhfs. */
function childEnv(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_DATA_HOME: join(dir, 'xdg') };
  delete env['SMHFS_LIBRARY'];
  delete env['SMHFS_DEBUG'];
  return env;
}

/** `smhfs --library <lib> ...args` with cwd `dir`; never rejects, the exit code is in the result. */
export function smhfs(dir: string, lib: string | undefined, args: string[], input?: Buffer): Promise<Run> {
  const argv = [CLI, ...(lib !== undefined ? ['--library', lib] : []), ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      argv,
      {
        cwd: dir,
        encoding: 'buffer',
        maxBuffer: 256 << 20,
        timeout: 60_000,
        env: childEnv(dir),
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') return reject(err);
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr: stderr.toString('utf8'), out: stdout.toString('utf8') });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** Lines of text without the trailing empty one. */
export function lines(text: string): string[] {
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}
