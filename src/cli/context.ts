/**
 * Shared plumbing for every `smhfs` command module (library, mount, serve):
 *
 * - `globalOptions(cmd)`: the global options (`--library`, `--space`, `--json`, blob options),
 *   merged from the program and the subcommand.
 * - `openLibrary(opts)`: opens the library folder (never creating it: `smhfs init` does, D2),
 *   after checking its blob store is its own (D1), and one space. Every
 *   library opened this way is finished by `runAction`: queued background tasks are run to
 *   completion (L15 purges, with progress on stderr) and the library is closed.
 * - `openLibraryWithBlobs(dir, opts)`: the library with the blob store it records (or the one
 *   `--blobs` names, refused when it differs from the record: src/cli/blobs.ts); the caller
 *   closes both (the mount, which fixes its page-cache options at open).
 * - `runAction(name, fn)`: wraps a commander action. Exit codes: 0 ok; 1 a domain error
 *   (`smhfs: <command>: <subject>: <status> <code>: <message>`, one line on stderr) or an
 *   unexpected error; 2 a usage error (`UsageError`, or commander's own parse errors).
 *
 * Contract for actions: the returned promise resolves when the command is finished (for a
 * long-running command such as `mount`, after it has stopped). After it resolves the libraries it
 * opened are closed and the process exits with the action's exit code.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { type Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type ErrorCode, SmhError, isSmhError } from '../errors.js';
import { HTTP_OF } from '../http/status.js';
import { Library, type LibraryOptions as StoreOpenOptions, type Space } from '../store/library.js';
import { type BlobConfig, CONFLICTS, type Conflict, type Task } from '../store/types.js';
import type { BlobStore } from '../blob/types.js';
import { LocalBlobStore } from '../blob/local-store.js';
import { claimBlobStore } from '../store/ownership.js';
import { DEFAULT_BLOBS, chooseBlobConfig, openBlobStoreFor, settleBlobRecord } from './blobs.js';
import { UsageError } from './usage.js';

export interface LibraryOptions {
  /** Library folder; default `$XDG_DATA_HOME/smhfs/default` (`~/.local/share/smhfs/default`). */
  library?: string;
  /** Space name; default `-` (the one space of a single-tenant library). */
  space?: string;
  json?: boolean;
  /** Blob store: a local directory (or `file:` URL), or an object-store URL (`s3://bucket/prefix`). */
  blobs?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
}

export { UsageError };

export const USAGE_HINT = '(run "smhfs help [command]" for usage)';

/** `$XDG_DATA_HOME/smhfs/default`, falling back to `~/.local/share/smhfs/default` (XDG: relative values are ignored). */
export function defaultLibraryDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_DATA_HOME'];
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share');
  return join(base, 'smhfs', 'default');
}

/** The global options as seen from `cmd` (the command whose action runs; ancestors' values win). */
export function globalOptions(cmd: Command): LibraryOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    library: str(o['library']),
    space: str(o['space']),
    json: o['json'] === true,
    blobs: str(o['blobs']),
    s3Endpoint: str(o['s3Endpoint']),
    s3Region: str(o['s3Region']),
    s3PathStyle: o['s3PathStyle'] === true,
  };
}

// ---------------------------------------------------------------------------------------------
// Libraries opened by the running action

interface Opened {
  lib: Library;
  dir: string;
  closed: boolean;
  finished: boolean;
  /** A blob store this module made (`--blobs`): closed after the library. */
  ownBlobStore: BlobStore | undefined;
}

const opened: Opened[] = [];

/**
 * Open the library folder (it must exist: `smhfs init`) and one space of it. The
 * library is closed by `runAction` when the action ends; closing it earlier yourself is fine.
 */
export async function openLibrary(opts: LibraryOptions): Promise<{ lib: Library; space: Space }> {
  const dir = resolve(opts.library || defaultLibraryDir());
  const { lib, blobStore } = await openLibraryWithBlobs(dir, opts);
  const entry: Opened = { lib, dir, closed: false, finished: false, ownBlobStore: blobStore };
  opened.push(entry);
  // Mark it closed if the action closes it itself, so the epilogue does not close it twice.
  const close = lib.close.bind(lib);
  lib.close = () => {
    entry.closed = true;
    close();
  };
  let space: Space;
  try {
    space = lib.space(opts.space ?? '-');
  } catch (e) {
    await finishLibrary(entry, false);
    throw e;
  }
  return { lib, space };
}

/** Library.open options other than the folder check and the store, which openLibraryWithBlobs decides. */
type LibOpenOptions = Omit<StoreOpenOptions, 'create' | 'blobStore'>;

/**
 * Open the library folder `dir` (it must exist, D2) with its blob store: the one its record
 * names, or `--blobs` (the record is written on first use; a different store is refused with
 * `BlobStoreMismatch`). `libOptions` may depend on the chosen store (the mount's readahead);
 * `wrap` may replace the store before the library gets it (test faults). Returns the store this
 * call made (undefined: the library's own default folder) and the config in force; the caller
 * closes the library, then the store.
 */
export async function openLibraryWithBlobs(
  dir: string,
  opts: LibraryOptions,
  libOptions: LibOpenOptions | ((blobs: BlobConfig) => LibOpenOptions) = {},
  wrap?: (store: BlobStore | undefined) => BlobStore | undefined,
): Promise<{ lib: Library; blobStore: BlobStore | undefined; blobs: BlobConfig }> {
  const choice = chooseBlobConfig(dir, opts);
  const made = await openBlobStoreFor(dir, choice.config);
  let blobStore: BlobStore | undefined = made;
  let lib: Library;
  try {
    blobStore = wrap ? wrap(made) : made;
    // D1 before the library changes anything: the store must be this library's (src/store/ownership.ts).
    await checkStoreOwner(dir, blobStore);
    const more = typeof libOptions === 'function' ? libOptions(choice.config) : libOptions;
    // D2: never created implicitly (`smhfs init` creates).
    lib = Library.open(dir, { ...more, ...(blobStore ? { blobStore } : {}) });
  } catch (e) {
    await made?.close?.().catch(() => undefined);
    throw withSubject(e, dir);
  }
  try {
    settleBlobRecord(lib, dir, choice);
  } catch (e) {
    lib.close();
    await blobStore?.close?.().catch(() => undefined);
    throw e;
  }
  return { lib, blobStore, blobs: choice.config };
}

/**
 * D1 for an existing library: read its id and a sample of its blobs without opening it for
 * writing, then check (and, for an empty or adoptable store, mark) the store. A folder that holds
 * no readable library is left to `Library.open`, which refuses it with the right message (D2).
 */
async function checkStoreOwner(dir: string, store: BlobStore | undefined): Promise<void> {
  let peek: ReturnType<typeof Library.peek>;
  try {
    peek = Library.peek(dir);
  } catch (e) {
    if (isSmhError(e, 'LibraryReadOnly')) return; // a reader that cannot even peek writes nothing either
    throw e;
  }
  if (!peek.library || peek.libraryId === undefined) return;
  const target = store ?? new LocalBlobStore(resolve(dir, DEFAULT_BLOBS.url), { prepare: false });
  try {
    await claimBlobStore(target, peek.libraryId, { referenced: peek.referenced, isNew: false });
  } catch (e) {
    // A store this user may only read cannot be marked: it cannot be written (or deleted from) either.
    if (isSmhError(e, 'BlobUnavailable') && /EACCES|EROFS|EPERM|AccessDenied/.test(e.message)) return;
    throw e;
  }
}

/**
 * Run queued tasks (L15) to completion — `runTasks` also waits for the blob collection the
 * store scheduled after permanent deletes (T6) — then close. Errors are reported by the caller.
 */
async function finishLibrary(entry: Opened, runTasks: boolean): Promise<void> {
  if (entry.finished) return;
  entry.finished = true;
  try {
    if (runTasks && !entry.closed) {
      await runTasksWithProgress(entry.lib);
    }
  } finally {
    entry.lib.close();
    await entry.ownBlobStore?.close?.();
  }
}

/** `lib.runTasks()`, printing progress on stderr once the tasks have taken more than a second. */
async function runTasksWithProgress(lib: Library): Promise<void> {
  const started = Date.now();
  const tty = process.stderr.isTTY === true;
  let printed = false;
  let last = 0;
  const progress = (t: Task): void => {
    const now = Date.now();
    const final = t.state === 'done' || t.state === 'failed';
    if (now - started < 1000 || (!final && now - last < (tty ? 200 : 5000))) return;
    last = now;
    const text = `purging ${t.subject || '/'}: ${t.done}/${t.total}${final ? ` ${t.state}` : ''}`;
    process.stderr.write(tty ? `\r\x1b[Ksmhfs: ${text}${final ? '\n' : ''}` : `smhfs: ${text}\n`);
    printed = !final;
  };
  try {
    await lib.runTasks(progress);
  } finally {
    if (printed && tty) process.stderr.write('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Actions and errors

let exitCode = 0;

/** The exit code the last action asked for (read by main after parsing). */
export function actionExitCode(): number {
  return exitCode;
}

/**
 * Wrap a commander action. `fn` gets commander's arguments unchanged (positional arguments,
 * options, command); it may return an exit code (e.g. 1 after reporting partial failures with
 * `reportError`). Whatever happens, the libraries it opened are finished (tasks run, closed).
 */
export function runAction<A extends unknown[]>(
  commandName: string,
  fn: (...args: A) => unknown,
): (...args: A) => Promise<void> {
  return async (...args: A): Promise<void> => {
    const mark = opened.length;
    let code = 0;
    try {
      const r = await fn(...args);
      if (typeof r === 'number') code = r;
    } catch (e) {
      code = reportError(commandName, e);
    }
    // Finish the libraries this action opened, newest first.
    for (const entry of opened.splice(mark).reverse()) {
      try {
        await finishLibrary(entry, true);
      } catch (e) {
        code = Math.max(code, reportError(commandName, e));
      }
    }
    exitCode = code;
  };
}

/** Generic HTTP codes that say less than the domain code: the CLI shows the domain code instead. */
const VAGUE = new Set(['InternalError', 'ServiceUnavailable', 'BadGateway']);

/** One line describing an error, without the `smhfs: <command>: ` prefix. */
export function describeError(e: unknown): string {
  if (isSmhError(e)) {
    const h = HTTP_OF[e.code as ErrorCode];
    const what = h && !(VAGUE.has(h.smhCode) && e.code !== 'Internal') ? `${h.status} ${h.smhCode}` : e.code;
    const parts = [];
    if (e.subject !== undefined && e.subject !== '') parts.push(e.subject);
    parts.push(what);
    const msg = oneLine(e.message);
    if (msg && msg !== e.code && msg !== h?.smhCode) parts.push(msg);
    return parts.join(': ');
  }
  if (e instanceof Error) {
    const sys = e as NodeJS.ErrnoException;
    if (typeof sys.code === 'string' && typeof sys.syscall === 'string') {
      // "ENOENT: no such file or directory, open './x'" -> "./x: no such file or directory (ENOENT)"
      const text = e.message.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+( '.*')?$/, '');
      return oneLine(`${sys.path !== undefined ? `${sys.path}: ` : ''}${text} (${sys.code})`);
    }
    return oneLine(e.message || e.name);
  }
  return oneLine(String(e));
}

/** Print an error as one line on stderr and return its exit code (2 usage, 1 otherwise). */
export function reportError(commandName: string, e: unknown): number {
  if (e instanceof CommanderError) {
    // Already printed by commander when it came from parsing; an action may throw one too.
    // `cmd.error(…)` inside an action has printed its message already; a thrown
    // InvalidArgumentError has not.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e instanceof InvalidArgumentError) {
      process.stderr.write(`smhfs: ${commandName}: ${oneLine(e.message)}\n${USAGE_HINT}\n`);
    }
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof UsageError) {
    process.stderr.write(`smhfs: ${commandName}: ${oneLine(e.message)}\n${USAGE_HINT}\n`);
    return 2;
  }
  process.stderr.write(`smhfs: ${commandName}: ${describeError(e)}\n`);
  if (process.env['SMHFS_DEBUG'] && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}

/** Re-throw helper: give an `SmhError` without a subject the path it is about. */
export function withSubject(e: unknown, subject: string): unknown {
  if (isSmhError(e) && (e.subject === undefined || e.subject === '')) {
    return new SmhError(e.code, e.message, subject, { cause: e.cause });
  }
  return e;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

// ---------------------------------------------------------------------------------------------
// Argument helpers shared by command modules

/** `--conflict <strategy>` limited to ask|rename|overwrite (a bad value is a usage error). */
export function conflictOption(description = 'when the name is taken: ask (fail), rename, overwrite'): Option {
  return new Option('--conflict <strategy>', description).choices(CONFLICTS as string[]);
}

export function conflictOf(opts: { conflict?: string }): Conflict | undefined {
  return opts.conflict as Conflict | undefined;
}

/** Parser for numeric ids (recycle items, tasks): a positive integer or a usage error. */
export function parseId(value: string): number {
  if (!/^[1-9][0-9]*$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('expected a positive integer id.');
  }
  return Number(value);
}

// ---------------------------------------------------------------------------------------------
// Output

export function printLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
