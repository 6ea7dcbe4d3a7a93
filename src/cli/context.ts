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
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { type Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type ErrorCode, SmhError, isSmhError } from '../errors.js';
import { HTTP_OF } from '../http/status.js';
import { DB_FILE, Library, type LibraryOptions as StoreOpenOptions, type Space } from '../store/library.js';
import { LocalBlobStore } from '../blob/local-store.js';
import { type BlobConfig, CONFLICTS, type Conflict, type Task } from '../store/types.js';
import type { BlobStore } from '../blob/types.js';
import { claimBlobStore, inspectStoreOwner, refusalOf } from '../store/ownership.js';
import { checkPostgres } from '../store/postgres/startup.js';
import { PG_RECORD_FILE, pgUrlFor } from '../store/postgres/library.js';
import { DEFAULT_BLOBS, chooseBlobConfig, openBlobStoreFor, settleBlobRecord } from './blobs.js';
import { type Progress, startProgress } from './progress.js';
import { CliError, UsageError } from './usage.js';

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
  /** SPEC §11: the library's metadata in PostgreSQL (`postgres://…`); the folder records it at init. */
  meta?: string;
}

export { CliError, UsageError };

export const USAGE_HINT = '(run "smhfs help [command]" for usage)';

/** The hint after a usage error: the command's own help (`smhfs help trash restore`). */
export function usageHint(commandName: string): string {
  return commandName && commandName !== 'smhfs' ? `(run "smhfs help ${commandName}" for usage)` : USAGE_HINT;
}

/**
 * The default library: `$SMHFS_LIBRARY` when set and not empty, else `$XDG_DATA_HOME/smhfs/default`,
 * else `~/.local/share/smhfs/default` (XDG: relative values are ignored). `make run` leaves the
 * choice to the CLI, so both always mean the same library.
 */
export function defaultLibraryDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['SMHFS_LIBRARY'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const xdg = env['XDG_DATA_HOME'];
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share');
  return join(base, 'smhfs', 'default');
}

/** `--library DIR`: an empty value is refused (it used to mean the default, silently). */
export function parseLibraryOption(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('the library folder must not be empty (leave --library out for the default).');
  return value;
}

/** The library folder the options name: `--library`, else the default (never an empty string). */
export function libraryDir(opts: { library?: string | undefined }): string {
  return opts.library !== undefined && opts.library !== '' ? opts.library : defaultLibraryDir();
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
    ...(str(o['meta']) !== undefined ? { meta: str(o['meta'])! } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Libraries opened by the running action

interface Opened {
  lib: Library;
  dir: string;
  finished: boolean;
  /** A blob store this module made (`--blobs`): closed after the library. */
  ownBlobStore: BlobStore | undefined;
}

const opened: Opened[] = [];

/** Commands that only read: run on a library this process cannot write (`ls`, `cat`, `stat`…). */
export const READ_ONLY_COMMANDS = 'ls, cat, stat, trash list, tasks, blobs';

/**
 * Open the library folder (it must exist: `smhfs init`) and one space of it. The
 * library is closed by `runAction` when the action ends (its queued tasks run first); to close it
 * earlier, call `closeLibrary` (not `lib.close()`: the end of the action would then run tasks on
 * a closed library).
 *
 * `reading`: the command only reads. A library this process cannot write (a read-only file
 * system, another user's folder) is then opened read-only instead of refused; the command works
 * and nothing is written (no tasks are run at the end). A writing command on such a library is
 * refused with one line that says which commands still work.
 */
export async function openLibrary(
  opts: LibraryOptions,
  how: { reading?: boolean; wrap?: (store: BlobStore | undefined, dir: string) => BlobStore | undefined } = {},
): Promise<{ lib: Library; space: Space }> {
  const dir = resolve(libraryDir(opts));
  const wrap = how.wrap ? (store: BlobStore | undefined) => how.wrap!(store, dir) : undefined;
  let lib: Library;
  let blobStore: BlobStore | undefined;
  try {
    ({ lib, blobStore } = await openLibraryWithBlobs(dir, opts, {}, wrap));
  } catch (e) {
    if (!isSmhError(e, 'LibraryReadOnly')) throw e;
    if (!how.reading) {
      throw new SmhError(
        'LibraryReadOnly',
        `this process cannot write to the library (a read-only file system, or a folder of another user); ` +
          `commands that only read (${READ_ONLY_COMMANDS}) still work on it`,
        e.subject || dir,
        { cause: e },
      );
    }
    ({ lib, blobStore } = await openLibraryWithBlobs(dir, opts, { readOnly: true }, wrap));
  }
  const entry: Opened = { lib, dir, finished: false, ownBlobStore: blobStore };
  opened.push(entry);
  let space: Space;
  try {
    space = lib.space(opts.space ?? '-');
  } catch (e) {
    await finishLibrary(entry, false);
    throw e;
  }
  return { lib, space };
}

/**
 * For a wrapper around the library's blob store (metrics): `store`, or — for the library's own
 * default folder, which the library would make itself — a LocalBlobStore of `<dir>/blobs` made
 * here, but only where Library.open will accept the folder (nothing is created in a folder that
 * turns out not to be a library).
 */
export function instrumentableStore(store: BlobStore | undefined, dir: string, wrap: (s: BlobStore) => BlobStore): BlobStore | undefined {
  if (store) return wrap(store);
  const accepted = existsSync(join(dir, DB_FILE)) || existsSync(join(dir, PG_RECORD_FILE)) || (() => {
    try {
      return readdirSync(dir).every((n) => n.startsWith('.'));
    } catch {
      return true; // missing: Library.open creates it
    }
  })();
  return accepted ? wrap(new LocalBlobStore(join(dir, 'blobs'))) : undefined;
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
  const more0 = typeof libOptions === 'function' ? undefined : libOptions;
  // SPEC §11: a PostgreSQL library answers for its server first: one line within 5 s if it cannot.
  await checkMetaServer(dir, opts.meta);
  let choice: ReturnType<typeof chooseBlobConfig>;
  try {
    choice = chooseBlobConfig(dir, opts);
  } catch (e) {
    throw withSubject(e, dir);
  }
  if (more0?.readOnly) choice.record = false;
  const made = await openBlobStoreFor(dir, choice.config);
  let blobStore: BlobStore | undefined = made;
  let lib: Library;
  try {
    blobStore = wrap ? wrap(made) : made;
    // D1 before the library changes anything: the store must be this library's (src/store/ownership.ts).
    await checkStoreOwner(dir, blobStore, more0?.readOnly === true);
    const more = typeof libOptions === 'function' ? libOptions(choice.config) : libOptions;
    // D2: never created implicitly (`smhfs init` creates).
    lib = Library.open(dir, { ...more, ...(blobStore ? { blobStore } : {}), ...(opts.meta !== undefined ? { meta: opts.meta } : {}) });
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
 * The start-up check of a PostgreSQL library (the URL given, else the one the folder records):
 * unreachable, no answer, wrong password, missing database → MetaUnavailable, one line, within
 * 5 s. A folder recording nothing and no URL given: an SQLite library, nothing to check.
 */
export async function checkMetaServer(dir: string, meta: string | undefined): Promise<void> {
  let url = meta;
  if (url === undefined) {
    try {
      url = pgUrlFor(dir, undefined).url;
    } catch {
      return; // no record: SQLite (or no library; Library.open says so)
    }
  }
  try {
    await checkPostgres(url, { applicationName: 'smhfs' });
  } catch (e) {
    throw withSubject(e, dir);
  }
}

/**
 * D1 for an existing library: read its id and a sample of its blobs without opening it for
 * writing, then check (and, for an empty or adoptable store, mark) the store. A folder that holds
 * no readable library is left to `Library.open`, which refuses it with the right message (D2).
 * `readOnly`: a read-only open writes nothing, the marker included: the store is only checked.
 */
async function checkStoreOwner(dir: string, store: BlobStore | undefined, readOnly: boolean): Promise<void> {
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
    const check = { referenced: peek.referenced, isNew: false };
    if (!readOnly) await claimBlobStore(target, peek.libraryId, check);
    else {
      const refusal = refusalOf(await inspectStoreOwner(target, peek.libraryId, check), target, peek.libraryId);
      if (refusal) throw refusal;
    }
  } catch (e) {
    // A store this user may only read cannot be marked: it cannot be written (or deleted from) either.
    if (isSmhError(e, 'BlobUnavailable') && /EACCES|EROFS|EPERM|AccessDenied/.test(e.message)) return;
    throw e;
  }
}

/** Close a library `openLibrary` opened before the action ends, without running its tasks. */
export async function closeLibrary(lib: Library): Promise<void> {
  const entry = opened.find((o) => o.lib === lib);
  if (entry) await finishLibrary(entry, false);
  else lib.close();
}

/**
 * Run queued tasks (L15) to completion — `runTasks` also waits for the blob collection the
 * store scheduled after permanent deletes (T6) — then close. Errors are reported by the caller.
 */
async function finishLibrary(entry: Opened, runTasks: boolean): Promise<void> {
  if (entry.finished) return;
  entry.finished = true;
  try {
    if (runTasks && !entry.lib.readOnly) {
      await runTasksWithProgress(entry.lib);
    }
  } finally {
    entry.lib.close();
    await entry.ownBlobStore?.close?.();
  }
}

/** `lib.runTasks()`, with progress on a terminal (src/cli/progress.ts) once it takes a while. */
async function runTasksWithProgress(lib: Library): Promise<void> {
  const bars = new Map<number, Progress>();
  try {
    await lib.runTasks((t: Task) => {
      let bar = bars.get(t.id);
      if (!bar) bars.set(t.id, (bar = startProgress(`purging ${t.subject || '/'}`, { unit: 'items', noun: 'entries', delayMs: 1000 })));
      bar.update(t.done, t.total);
      if (t.state === 'done' || t.state === 'failed') bar.done(`${t.done}/${t.total} entries, ${t.state}`);
    });
  } finally {
    for (const bar of bars.values()) bar.fail();
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

/** SQLite result codes (an `Internal` error's cause) in shell words, with the code scripts see. */
const SQLITE_WORDS: Array<[RegExp, string, string]> = [
  // SHMSIZE: SQLite could not grow library.db-shm, which on Linux means the disk is full.
  [/^SQLITE_(FULL|IOERR_SHMSIZE)/, 'no space left on device for the library database; free some space (smhfs trash empty frees what the recycle bin holds)', 'InsufficientStorage'],
  [/^SQLITE_(CORRUPT|NOTADB)/, 'the library database is damaged; run "smhfs fsck" on it, and restore it from a backup if fsck cannot repair it', ''],
  [/^SQLITE_IOERR/, 'input/output error reading or writing the library database', ''],
  [/^SQLITE_(READONLY|CANTOPEN|PERM)/, 'the library database cannot be written (read-only file system or permissions)', 'LibraryReadOnly'],
];

/** The code a script sees for an error, and the words a person reads (no `subject: ` prefix). */
export function errorParts(e: unknown): { subject: string | undefined; message: string; code: string | undefined } {
  if (isSmhError(e)) {
    const cause = (e.cause as { code?: unknown } | undefined)?.code;
    // A database SQLite finds damaged is refused by the store as NotALibrary (never re-created,
    // D2); the CLI names the SQLite reason in the same words as when it shows up later. (A file
    // that is no SQLite database at all, NOTADB, stays NotALibrary: it is not a library.)
    const damagedDb = e.code === 'NotALibrary' && typeof cause === 'string' && /^SQLITE_CORRUPT/.test(cause);
    if ((e.code === 'Internal' || damagedDb) && typeof cause === 'string') {
      for (const [re, words, code] of SQLITE_WORDS) {
        if (re.test(cause)) return { subject: e.subject, message: words, code: code || cause.split('_').slice(0, 2).join('_') };
      }
    }
    const h = HTTP_OF[e.code as ErrorCode];
    const code = h && !(VAGUE.has(h.smhCode) && e.code !== 'Internal') ? h.smhCode : e.code;
    return { subject: e.subject, message: withoutSubject(oneLine(e.message), e.subject) || code, code };
  }
  if (e instanceof CliError) return { subject: e.subject, message: withoutSubject(oneLine(e.message), e.subject), code: e.code };
  if (e instanceof Error) {
    const sys = e as NodeJS.ErrnoException;
    if (typeof sys.code === 'string' && typeof sys.syscall === 'string') {
      // "ENOENT: no such file or directory, open './x'" -> "./x: no such file or directory (ENOENT)"
      const text = e.message.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+( '.*')?$/, '');
      return { subject: sys.path, message: oneLine(text), code: sys.code };
    }
    if (typeof sys.code === 'string' && /^SQLITE_/.test(sys.code)) return errorParts(new SmhError('Internal', e.message, undefined, { cause: e }));
    return { subject: undefined, message: oneLine(e.message || e.name), code: undefined };
  }
  return { subject: undefined, message: oneLine(String(e)), code: undefined };
}

/**
 * One line describing an error, without the `smhfs: <command>: ` prefix, in shell words with the
 * code for scripts last: `links/cat: no such file or directory (FileNotFound)`. The code is the
 * SMH code of the rule (src/http/status.ts), or the domain code where the SMH one is a generic
 * 500/502/503 (NotALibrary, LibraryReadOnly, BlobUnavailable, Busy…): that is what says what to fix.
 */
export function describeError(e: unknown): string {
  const { subject, message, code } = errorParts(e);
  const head = subject !== undefined && subject !== '' ? `${subject}: ` : '';
  return `${head}${message}${code !== undefined ? ` (${code})` : ''}`;
}

/** "/tmp/x is not empty…" about /tmp/x reads "is not empty…" after the subject. */
function withoutSubject(message: string, subject: string | undefined): string {
  if (subject && message.startsWith(`${subject} `)) return message.slice(subject.length + 1);
  return message;
}

/**
 * Where error lines go: stderr; a daemon's child also sends them to the waiting parent, which
 * prints them (src/cli/daemon.ts). `hint` is printed on stderr only.
 */
let errorSink = (line: string, hint?: string): void => {
  process.stderr.write(`${line}\n${hint !== undefined ? `${hint}\n` : ''}`);
};

export function setErrorSink(sink: (line: string, hint?: string) => void): void {
  errorSink = sink;
}

/** Print an error as one line on stderr and return its exit code (2 usage, 1 otherwise). */
export function reportError(commandName: string, e: unknown): number {
  if (e instanceof CommanderError) {
    // Already printed by commander when it came from parsing; an action may throw one too.
    // `cmd.error(…)` inside an action has printed its message already; a thrown
    // InvalidArgumentError has not.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e instanceof InvalidArgumentError) {
      process.stderr.write(`smhfs: ${commandName}: ${oneLine(e.message)}\n${usageHint(commandName)}\n`);
    }
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof UsageError) {
    errorSink(`smhfs: ${commandName}: ${oneLine(e.message)}`, usageHint(commandName));
    return 2;
  }
  errorSink(`smhfs: ${commandName}: ${describeError(e)}`);
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
