/** Runs the compiled CLI (dist/src/cli/main.js) in a child process, for the cli-*.test.ts files. */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

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

/**
 * `scratch` holding a copy of `template`, a library folder that a file's tests share as their
 * starting point (made once, with the CLI, by the file). Each test changes only its own copy, so
 * they stay independent without 3–4 CLI starts of set-up each. The CLI that made the template has
 * exited, so library.db is closed and complete; the copy is the same library (same id and marker).
 */
export function scratchCopy(t: { teardown(fn: () => void): void }, template: string): { dir: string; lib: string } {
  const s = scratch(t);
  cpSync(template, s.lib, { recursive: true });
  return s;
}

/**
 * Checks, through the store in-process, that `lib` holds what the cli-* tests' small library
 * holds: photos/ with cat.jpg (4 bytes) and the bound link links/cat -> photos/cat.jpg. For a
 * test's copy of a template made with the CLI (three assertions, one per set-up command).
 */
export async function expectCatLibrary(t: Pick<Test, 'equal' | 'same'>, lib: string): Promise<void> {
  // Loaded here, not at the top: most cli-* files never open a library in-process.
  const { Library } = await import('../src/store/library.js');
  const l = Library.open(lib);
  try {
    const space = l.space('-');
    t.equal(space.stat('photos').kind, 'dir', 'the copy has photos/');
    t.equal(space.stat('photos/cat.jpg').size, 4, 'the copy has photos/cat.jpg (4 bytes)');
    const link = space.stat('links/cat', { follow: false });
    t.same([link.kind, link.link?.flavour, link.link?.targetPath], ['link', 'bound', 'photos/cat.jpg'], 'the copy has links/cat -> photos/cat.jpg (bound)');
  } finally {
    l.close();
  }
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
