/**
 * Harness for the mount tests: every test file mounts a library in a CHILD process
 * (`node dist/src/cli/main.js mount …`), with its own temp mountpoint and library, and drives the
 * mount with real programs in child processes (or async fs calls). Teardown always unmounts:
 * SIGTERM to the server it started (and only that pid), then `fusermount -uz` / `umount -l` as
 * a last resort, then SIGKILL of that pid if it is still there.
 *
 * A test that throws between starting a mount and registering its teardown would leave the mount
 * behind (one was found dead on this machine hours after a failed run). So every mount started here
 * is also remembered: the file's root teardown cleans up any that is still ours, and a synchronous
 * exit hook detaches whatever even that missed (a test process stopped by tap's timeout).
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Repo root (this file is dist/test/helpers/mount.js when it runs). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `bash -c cmd` (a child process: the test process never blocks on the mountpoint). */
export function sh(cmd: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((res) => {
    const child = execFile(
      'bash',
      ['-c', cmd],
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        res({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `sh` that throws with the output when the command fails. */
export async function ok(cmd: string, opts: Parameters<typeof sh>[1] = {}): Promise<string> {
  const r = await sh(cmd, opts);
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${cmd}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Run the smhfs CLI (a child process). */
export function smhfs(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        res({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Run a few lines of Node in a child process with `fs` (sync calls are fine there) and return
 * what it printed; `errno(fn)` inside prints the error code of a throwing call, or OK.
 */
export async function nodeSnippet(body: string, cwd?: string): Promise<string> {
  const prelude =
    "const fs=require('fs');const path=require('path');" +
    "const errno=(f)=>{try{f();return 'OK'}catch(e){return e.code||String(e)}};";
  const r = await new Promise<RunResult>((res) => {
    execFile(process.execPath, ['-e', prelude + body], { cwd, timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      res({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
  if (r.code !== 0) throw new Error(`node snippet failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function mountsHas(mp: string): Promise<string | undefined> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[1] === mp) return f[2];
  }
  return undefined;
}

export async function isMounted(mp: string): Promise<boolean> {
  return (await mountsHas(mp)) !== undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A deadline for Promise.race that does not keep the test process alive. */
const deadline = <T>(ms: number, value: T): Promise<T> => new Promise((r) => setTimeout(() => r(value), ms).unref());

/**
 * Why the mount tests cannot run here, or undefined. In CI (root, /dev/fuse, `make test`) FUSE
 * must be there: a missing prerequisite is an error there, never a quietly skipped suite.
 */
export async function fuseUnavailable(): Promise<string | undefined> {
  const why = await fuseMissing();
  if (why && process.env.CI) throw new Error(`mount tests must run in CI, but ${why}`);
  return why;
}

async function fuseMissing(): Promise<string | undefined> {
  try {
    await access('/dev/fuse');
  } catch {
    return 'no /dev/fuse';
  }
  const r = await sh('command -v fusermount');
  if (r.code !== 0) return 'fusermount is not installed (apt-get install fuse)';
  try {
    await access(CLI);
  } catch {
    return `${CLI} is not built`;
  }
  return undefined;
}

export interface Mount {
  /** Temp folder holding mnt/ and lib/. */
  dir: string;
  mountpoint: string;
  library: string;
  child: ChildProcess;
  pid: number;
  /** stdout+stderr of the server so far. */
  output(): string;
  /** Resolves with the exit code (or the signal name) when the server exits. */
  exited: Promise<number | string>;
  /** SIGTERM the server and wait for it (and the unmount). */
  stop(): Promise<number | string>;
  /** A path inside the mount. */
  p(rel?: string): string;
}

export interface MountOptions {
  /** Reuse a library / temp folder (remount after a crash). */
  dir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /**
   * Make the library first when it does not exist yet (`smhfs init` with the blob options found
   * in `args`; D2: mount never creates one). Default true; false to test the refusal.
   */
  init?: boolean;
}

/** The global blob options (`--blobs X`, `--s3-endpoint X`, `--s3-region X`, `--s3-path-style`) in `args`. */
export function blobOptionsIn(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--blobs' || a === '--s3-endpoint' || a === '--s3-region') out.push(a, args[++i] ?? '');
    else if (/^--(blobs|s3-endpoint|s3-region)=/.test(a) || a === '--s3-path-style') out.push(a);
  }
  return out;
}

/**
 * The FUSE binding the mount tests run on: `SMHFS_TEST_BINDING` (ll or fuse-native; `make test`
 * runs the mount tests once per binding), default the product's default. Children started any
 * other way (`smhfs mount --daemon`, mount(8)) get it through SMHFS_BINDING, which `smhfs mount`
 * reads when --binding is not given.
 */
export const TEST_BINDING = process.env.SMHFS_TEST_BINDING || undefined;
if (TEST_BINDING) process.env.SMHFS_BINDING = TEST_BINDING;
const TEST_BINDING_ARGS = TEST_BINDING ? ['--binding', TEST_BINDING] : [];

/** `smhfs --library DIR init` (no blob options), in this process: initLibrary of src/cli/commands/safety.ts. */
async function initLibraryHere(library: string): Promise<void> {
  const [{ initLibrary }, { DEFAULT_BLOBS }] = await Promise.all([
    import(pathToFileURL(join(ROOT, 'dist', 'src', 'cli', 'commands', 'safety.js')).href) as Promise<typeof import('../../src/cli/commands/safety.js')>,
    import(pathToFileURL(join(ROOT, 'dist', 'src', 'cli', 'blobs.js')).href) as Promise<typeof import('../../src/cli/blobs.js')>,
  ]);
  await initLibrary(resolve(library), DEFAULT_BLOBS);
}

/**
 * A running mount's counters, as `smhfs --json stats MOUNTPOINT` prints them: the same request on
 * the mount's control socket (found through its registry entry), from this process. Tests that
 * poll a counter asked a CLI child dozens of times (~0.3 s of CPU each); the tests of the command
 * itself still run it.
 */
export async function mountStats<T = unknown>(mountpoint: string): Promise<T> {
  const { askMount, readRegistry } = (await import(pathToFileURL(join(ROOT, 'dist', 'src', 'fuse', 'mounts.js')).href)) as typeof import('../../src/fuse/mounts.js');
  const reg = await readRegistry(resolve(mountpoint));
  if (!reg) throw new Error(`no smhfs mount is registered at ${mountpoint}`);
  const text = await askMount(reg.socket, { op: 'stats' });
  return JSON.parse(text) as T;
}

/** Start `smhfs mount` in a child and wait (polling /proc/mounts) until the mount is there. */
export async function startMount(opts: MountOptions = {}): Promise<Mount> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'smhfs-mount-')));
  const mountpoint = join(dir, 'mnt');
  const library = join(dir, 'lib');
  await mkdir(mountpoint, { recursive: true }).catch(() => undefined);
  if (opts.init !== false && !(await access(join(library, 'library.db')).then(() => true, () => false))) {
    const blobOptions = blobOptionsIn(opts.args ?? []);
    if (blobOptions.length === 0 && Object.keys(opts.env ?? {}).length === 0) {
      // The default library (blobs in its own folder): `smhfs init`'s own function, run here. A
      // CLI child per mount cost ~0.45 s of CPU and ~1 s of waiting; its command line is the
      // CLI tests' subject (cli-*.test.ts), not the mount tests'.
      await initLibraryHere(library);
    } else {
      const r = await smhfs(['--library', library, ...blobOptions, 'init'], { env: opts.env ?? {} });
      if (r.code !== 0) throw new Error(`smhfs init failed (${r.code}): ${r.stderr}`);
    }
  }
  const child = spawn(process.execPath, [CLI, 'mount', mountpoint, '--library', library, ...TEST_BINDING_ARGS, ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exitState: number | string | undefined;
  const exited = new Promise<number | string>((res) =>
    child.on('exit', (code, signal) => {
      exitState = code ?? signal ?? -1;
      res(exitState);
    }),
  );
  const pid = child.pid!;
  const m: Mount = {
    dir,
    mountpoint,
    library,
    child,
    pid,
    output: () => out,
    exited,
    p: (rel = '') => (rel ? join(mountpoint, rel) : mountpoint),
    stop: async () => {
      if (exitState === undefined) process.kill(pid, 'SIGTERM');
      const r = await Promise.race([exited, deadline(20_000, 'timeout')]);
      // Say why in the log (a CI page shows only the log): the caller's assertion sees 'timeout' only.
      if (r === 'timeout') process.stderr.write(`smhfs mount at ${mountpoint} (pid ${pid}) had not exited 20 s after SIGTERM; its output:\n${out}\n`);
      return r;
    },
  };
  await remember(m);
  for (let i = 0; ; i++) {
    if ((await mountsHas(mountpoint)) === 'fuse.smhfs' && out.includes('serving')) break;
    if (exitState !== undefined) throw new Error(`smhfs mount exited (${exitState}) before mounting:\n${out}`);
    if (i > 400) {
      await cleanup(m);
      throw new Error(`smhfs mount did not mount within 20 s:\n${out}`);
    }
    await sleep(50);
  }
  return m;
}

/** Mounts started by this process and not cleaned up yet (see the module comment). */
const started = new Set<Mount>();
let safetyNet = false;
async function remember(m: Mount): Promise<void> {
  started.add(m);
  if (safetyNet) return;
  safetyNet = true;
  if (process.env.TAP === '1') {
    // Runs after every subtest's own teardown, failed or not.
    const tap = (await import('tap')).default;
    tap.teardown(async () => {
      for (const left of [...started]) await cleanup(left);
    });
  }
  process.on('exit', () => {
    for (const left of started) {
      if (left.child.exitCode === null && left.child.signalCode === null) {
        try {
          process.kill(left.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('umount', ['-l', left.mountpoint], { stdio: 'ignore', timeout: 5000 });
    }
  });
}

/** Unmount by every means, kill only our pid, and remove the temp folder once nothing is mounted there. */
export async function cleanup(m: Mount, opts: { keepDir?: boolean } = {}): Promise<void> {
  started.delete(m);
  if (m.child.exitCode === null && m.child.signalCode === null) {
    try {
      process.kill(m.pid, 'SIGTERM');
    } catch {
      // gone
    }
    await Promise.race([m.exited, deadline(10_000, 'timeout')]);
  }
  // Our server is gone now. What is still mounted there is either its stale mount, or (after a
  // remount of the same folder) someone else's live one, which is not ours to detach.
  if ((await isMounted(m.mountpoint)) && /not connected/.test((await sh(`stat '${m.mountpoint}'`, { timeoutMs: 5000 })).stderr)) {
    await sh(`fusermount -uz '${m.mountpoint}'`);
    if (await isMounted(m.mountpoint)) await sh(`umount -l '${m.mountpoint}'`);
  }
  if (m.child.exitCode === null && m.child.signalCode === null) {
    try {
      process.kill(m.pid, 'SIGKILL');
    } catch {
      // gone
    }
    await Promise.race([m.exited, deadline(5000, 'timeout')]);
  }
  if (!opts.keepDir && !(await isMounted(m.mountpoint))) await rm(m.dir, { recursive: true, force: true });
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** startMount + teardown on `t`. */
export async function withMount(t: Teardownable, opts: MountOptions = {}): Promise<Mount> {
  const m = await startMount(opts);
  t.teardown(() => cleanup(m));
  return m;
}

/** `smhfs --library <lib> …` against the mounted library from another process. */
export function cli(m: Mount, args: string[]): Promise<RunResult> {
  return smhfs(['--library', m.library, ...args]);
}

/** The recycle bin as the CLI lists it (JSON). */
export async function trashList(m: Mount): Promise<Array<{ id: number; name: string; originalPath: string; links: Array<{ originalPath: string }> }>> {
  const r = await cli(m, ['--json', 'trash', 'list']);
  if (r.code !== 0) throw new Error(`smhfs trash list failed: ${r.stderr}`);
  const v = JSON.parse(r.stdout) as unknown;
  return (Array.isArray(v) ? v : ((v as { items?: unknown[] }).items ?? [])) as Array<{
    id: number;
    name: string;
    originalPath: string;
    links: Array<{ originalPath: string }>;
  }>;
}

/** Wait for the kernel's attribute/entry cache (1 s by default) to expire. */
export const attrTimeout = (): Promise<void> => sleep(1100);

/**
 * Run store code against the mounted library from outside the mount's process (as the HTTP server
 * or the CLI would): `space` and `lib` are in scope; the snippet's result comes back through JSON.
 * It runs in the test process (which never serves a mount), with the library opened and closed
 * around it: a child node per call cost ~0.3 s of CPU and ~0.5 s of waiting, dozens of times per file.
 */
export async function storeCall(m: Mount, body: string): Promise<unknown> {
  const { Library } = (await import(pathToFileURL(join(ROOT, 'dist', 'src', 'store', 'library.js')).href)) as {
    Library: { open(dir: string): { space(name: string): unknown; close(): void } };
  };
  const lib = Library.open(m.library);
  try {
    const run = new AsyncFunction('lib', 'space', body) as (lib: unknown, space: unknown) => Promise<unknown>;
    return JSON.parse(JSON.stringify((await run(lib, lib.space('-'))) ?? null)) as unknown;
  } finally {
    lib.close();
  }
}
const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;
