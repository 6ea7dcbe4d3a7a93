/**
 * Which blob store a CLI invocation uses (B1). The library remembers its store: the `meta` record
 * `blobs` (a `BlobConfig`: the URL and the S3 endpoint/region/path-style, never credentials) is
 * written by the first command that opens the library, and every later command uses it.
 *
 * - no blob option: the recorded store; without a record, the library's default, the local store
 *   `<library>/blobs` (created by `Library.open` after it has checked the folder, so nothing is
 *   written into a folder that is not a library);
 * - `--blobs DIR` or `--blobs file:///DIR`: a local store in DIR;
 * - `--blobs s3://BUCKET[/PREFIX]` (with `--s3-endpoint`, `--s3-region`, `--s3-path-style`): an
 *   S3-compatible store from the blob layer's factory `openBlobStore` (src/blob/s3-store.ts),
 *   loaded only then (the AWS SDK is large). Its `check()` (HeadBucket, 5 s deadline) runs before
 *   the command does anything, so a missing bucket, bad credentials or a dead endpoint are one
 *   clear line and exit 1 within seconds — at mount time and for every other command alike.
 *
 * A `--blobs` that names another store than the record is refused (`BlobStoreMismatch`, exit 1);
 * the same store in another spelling is fine (see `canonicalBlobConfig`), and S3 options left
 * out are taken from the record. `smhfs blobs set` re-points a library (src/cli/commands/blobs.ts).
 *
 * When the record is written (the decision, native-notes/blobs.md): a new library records what
 * its first command uses (`--blobs`, or the local default); a library made before smhfs
 * remembered its store and holding no record records only a store the user names (`--blobs`, or
 * `smhfs blobs set`) — until then it keeps meaning the local default, unrecorded, because
 * recording a guess could pin an S3 library to its empty local folder.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBlobStore } from '../blob/local-store.js';
import type { BlobStore } from '../blob/types.js';
import { isSmhError } from '../errors.js';
import { Library } from '../store/library.js';
import type { BlobConfig } from '../store/types.js';
import { CliError, UsageError } from './usage.js';

/** The blob options of one invocation (a subset of the global options). */
export interface BlobOptions {
  blobs?: string | undefined;
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
  s3PathStyle?: boolean | undefined;
}

/** The default store as recorded: `<library>/blobs` (relative paths in a record are relative to the library). */
export const DEFAULT_BLOBS: BlobConfig = Object.freeze({ url: 'blobs' });

/** A command gave blob options that name another store than the library's record. */
export class BlobStoreMismatch extends CliError {
  constructor(
    readonly libraryDir: string,
    readonly recorded: BlobConfig,
    readonly given: BlobConfig,
  ) {
    super(
      'BlobStoreMismatch',
      `this library keeps its blobs in ${describeBlobConfig(libraryDir, recorded)}, ` +
        `not in ${describeBlobConfig(libraryDir, given)}; leave out --blobs and the --s3-* options to use its store, ` +
        `or, once the bytes are there, re-point it with "smhfs blobs set ${blobFlags(libraryDir, given).join(' ')}" (it moves no bytes)`,
      libraryDir,
    );
    this.name = 'BlobStoreMismatch';
  }
}

export function isS3(c: BlobConfig): boolean {
  return /^s3:\/\//i.test(c.url);
}

/** The absolute directory of a local config (a relative record is inside the library folder). */
export function localDirOf(libraryDir: string, c: BlobConfig): string {
  return resolve(libraryDir, c.url);
}

/**
 * The blob options as a canonical config, or undefined when none were given. Relative
 * directories are taken from `cwd`, as everywhere on the command line.
 */
export function blobConfigFromOptions(libraryDir: string, opts: BlobOptions, cwd: string = process.cwd()): BlobConfig | undefined {
  const url = opts.blobs;
  const s3Flags = opts.s3Endpoint !== undefined || opts.s3Region !== undefined || opts.s3PathStyle === true;
  if (url === undefined || url === '') {
    if (s3Flags) throw new UsageError('--s3-endpoint, --s3-region and --s3-path-style need --blobs s3://BUCKET[/PREFIX]');
    return undefined;
  }
  return canonicalBlobConfig(
    libraryDir,
    {
      url,
      ...(opts.s3Endpoint !== undefined ? { s3Endpoint: opts.s3Endpoint } : {}),
      ...(opts.s3Region !== undefined ? { s3Region: opts.s3Region } : {}),
      ...(opts.s3PathStyle ? { s3PathStyle: true } : {}),
    },
    cwd,
  );
}

/**
 * One spelling per store, as it is recorded and compared:
 *
 * - local: `DIR`, `DIR/`, `./DIR` and `file:///abs/DIR` are the same directory; a directory inside
 *   the library folder is recorded relative to it (`blobs` for the default, so a library folder
 *   can be moved with its blobs), any other one absolute;
 * - S3: `s3://BUCKET/PREFIX/` — scheme lowercased, leading and trailing slashes of the prefix
 *   trimmed and one trailing slash added (the store's own key layout), `s3://BUCKET/` for no
 *   prefix; the endpoint as a URL without trailing slash (`http://H:9000/` = `http://H:9000`),
 *   never with user info; the region trimmed. Bucket and prefix are validated when the store is
 *   opened (`parseBlobsUrl`), before anything is recorded.
 */
export function canonicalBlobConfig(libraryDir: string, c: BlobConfig, cwd: string = process.cwd()): BlobConfig {
  const url = c.url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const s3Given = c.s3Endpoint !== undefined || c.s3Region !== undefined || c.s3PathStyle === true;
  if (scheme === undefined || isAbsolute(url) || scheme === 'file') {
    if (s3Given) throw new UsageError('S3 options given with a local --blobs directory');
    let dir: string;
    if (scheme === 'file') {
      try {
        dir = fileURLToPath(url);
      } catch (e) {
        throw new UsageError(`--blobs ${JSON.stringify(url)}: ${(e as Error).message}`);
      }
    } else {
      dir = resolve(cwd, url);
    }
    return { url: recordedDir(libraryDir, dir) };
  }
  if (scheme !== 's3') {
    throw new UsageError(`unsupported --blobs ${JSON.stringify(url)}: use a directory or s3://BUCKET[/PREFIX]`);
  }
  const out: BlobConfig = { url: canonicalS3Url(url) };
  if (c.s3Endpoint !== undefined) out.s3Endpoint = canonicalEndpoint(c.s3Endpoint);
  const region = c.s3Region?.trim();
  if (region) out.s3Region = region;
  if (c.s3PathStyle === true) out.s3PathStyle = true;
  return out;
}

/** `s3://BUCKET/PREFIX/` (see `canonicalBlobConfig`). */
export function canonicalS3Url(url: string): string {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/is.exec(url.trim());
  if (!m) return url;
  const prefix = (m[2] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  return `s3://${m[1]}/${prefix === '' ? '' : `${prefix}/`}`;
}

function canonicalEndpoint(endpoint: string): string {
  const e = endpoint.trim();
  let u: URL | undefined;
  try {
    u = new URL(e);
  } catch {
    u = undefined;
  }
  if (u && (u.protocol === 'http:' || u.protocol === 'https:')) {
    if (u.username !== '' || u.password !== '') {
      throw new UsageError('--s3-endpoint must not carry credentials: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE');
    }
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}${u.search}`;
  }
  return e.replace(/\/+$/, '');
}

function recordedDir(libraryDir: string, dir: string): string {
  const rel = relative(resolve(libraryDir), dir);
  if (rel === '') return '.';
  if (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)) return rel;
  return dir;
}

/** Existing directories compare by their real path (symbolic links resolved). */
function sameDir(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return existsSync(p) ? realpathSync.native(p) : p;
    } catch {
      return p;
    }
  };
  return a === b || real(a) === real(b);
}

/**
 * The config to use when `given` was given and `recorded` is the library's record: the record,
 * when `given` names the same store (options `given` leaves out come from the record; those it
 * gives must agree) — undefined when it names another.
 */
export function reconcileBlobConfig(libraryDir: string, given: BlobConfig, recorded: BlobConfig): BlobConfig | undefined {
  if (isS3(given) !== isS3(recorded)) return undefined;
  if (!isS3(given)) return sameDir(localDirOf(libraryDir, given), localDirOf(libraryDir, recorded)) ? recorded : undefined;
  const rec = canonicalBlobConfig(libraryDir, recorded);
  if (given.url !== rec.url) return undefined;
  if (given.s3Endpoint !== undefined && given.s3Endpoint !== rec.s3Endpoint) return undefined;
  if (given.s3Region !== undefined && given.s3Region !== rec.s3Region) return undefined;
  if (given.s3PathStyle === true && rec.s3PathStyle !== true) return undefined;
  return recorded;
}

/** Both name the same store with the same options. */
export function sameBlobConfig(libraryDir: string, a: BlobConfig, b: BlobConfig): boolean {
  if (isS3(a) !== isS3(b)) return false;
  if (!isS3(a)) return sameDir(localDirOf(libraryDir, a), localDirOf(libraryDir, b));
  const x = canonicalBlobConfig(libraryDir, a);
  const y = canonicalBlobConfig(libraryDir, b);
  return x.url === y.url && x.s3Endpoint === y.s3Endpoint && x.s3Region === y.s3Region && (x.s3PathStyle === true) === (y.s3PathStyle === true);
}

/** For people: `/lib/blobs (the library's own folder)`, `s3://b/p/ (endpoint http://…, path-style)`. */
export function describeBlobConfig(libraryDir: string, c: BlobConfig): string {
  if (!isS3(c)) {
    const dir = localDirOf(libraryDir, c);
    return dir === resolve(libraryDir, DEFAULT_BLOBS.url) ? `${dir} (the library's own folder)` : dir;
  }
  const extra = [
    c.s3Endpoint !== undefined ? `endpoint ${c.s3Endpoint}` : '',
    c.s3Region !== undefined ? `region ${c.s3Region}` : '',
    c.s3PathStyle ? 'path-style' : '',
  ].filter((s) => s !== '');
  return `${c.url}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

/** The command-line words naming this store: `s3://b/p/ --s3-endpoint URL --s3-path-style`, or a directory. */
export function blobFlags(libraryDir: string, c: BlobConfig): string[] {
  if (!isS3(c)) return [localDirOf(libraryDir, c)];
  return [
    c.url,
    ...(c.s3Endpoint !== undefined ? ['--s3-endpoint', c.s3Endpoint] : []),
    ...(c.s3Region !== undefined ? ['--s3-region', c.s3Region] : []),
    ...(c.s3PathStyle ? ['--s3-path-style'] : []),
  ];
}

export interface BlobChoice {
  /** The store to open, as recorded or to be recorded. */
  config: BlobConfig;
  /** The library's record before this command (undefined: none). */
  recorded: BlobConfig | undefined;
  /** Write `config` as the record once the library is open (its first use with a store). */
  record: boolean;
}

/**
 * Decide the store from the options and the library's record (read without opening the library
 * for writing). Throws `BlobStoreMismatch` when the options name another store than the record,
 * and `UsageError` for malformed options.
 */
export function chooseBlobConfig(libraryDir: string, opts: BlobOptions): BlobChoice {
  const given = blobConfigFromOptions(libraryDir, opts);
  let peeked: ReturnType<typeof Library.peekBlobConfig>;
  try {
    peeked = Library.peekBlobConfig(libraryDir);
  } catch (e) {
    // Unreadable here (a read-only folder): Library.open reports it; and should it open after
    // all, settleBlobRecord still checks the record before the command runs.
    if (!isSmhError(e, 'LibraryReadOnly')) throw e;
    return { config: given ?? DEFAULT_BLOBS, recorded: undefined, record: false };
  }
  const { library, blobs: recorded } = peeked;
  if (recorded !== undefined) {
    if (given === undefined) return { config: recorded, recorded, record: false };
    const use = reconcileBlobConfig(libraryDir, given, recorded);
    if (use === undefined) throw new BlobStoreMismatch(libraryDir, recorded, given);
    return { config: use, recorded, record: false };
  }
  // No record: a new library records what it starts with; an older one only a store the user names.
  return { config: given ?? DEFAULT_BLOBS, recorded: undefined, record: given !== undefined || !library };
}

/**
 * After `Library.open`: write the record when `choice` says so (first use), and make sure the
 * record in force names the store this process opened — another process may have recorded a
 * different one in between. A record that cannot be written (a read-only library) is no error:
 * the next writable open records it.
 */
export function settleBlobRecord(lib: Library, libraryDir: string, choice: BlobChoice): void {
  let now: BlobConfig | undefined;
  if (choice.record) {
    try {
      now = lib.recordBlobConfig(choice.config);
    } catch (e) {
      if (!isSmhError(e, 'LibraryReadOnly') && !isSmhError(e, 'Busy')) throw e;
      now = lib.blobConfig();
    }
  } else {
    now = lib.blobConfig();
  }
  if (now !== undefined && reconcileBlobConfig(libraryDir, choice.config, now) === undefined) {
    throw new BlobStoreMismatch(libraryDir, now, choice.config);
  }
}

/**
 * Open the store `config` names. Returns undefined for the library's own default folder (which
 * `Library.open` creates once it has checked the folder). S3 stores are checked (HeadBucket).
 */
export async function openBlobStoreFor(libraryDir: string, config: BlobConfig): Promise<BlobStore | undefined> {
  if (!isS3(config)) {
    const dir = localDirOf(libraryDir, config);
    if (dir === resolve(libraryDir, DEFAULT_BLOBS.url)) return undefined;
    return new LocalBlobStore(dir);
  }
  // The SDK warns on every start that releases after 2026 will need Node 22: noise for a CLI.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const { checkBlobStore, openBlobStore } = await import('../blob/s3-store.js');
  const store = openBlobStore({
    blobs: config.url,
    localDir: resolve(libraryDir, DEFAULT_BLOBS.url),
    ...(config.s3Endpoint !== undefined ? { s3Endpoint: config.s3Endpoint } : {}),
    ...(config.s3Region !== undefined ? { s3Region: config.s3Region } : {}),
    ...(config.s3PathStyle ? { s3PathStyle: true } : {}),
  });
  try {
    await checkBlobStore(store, CHECK_TIMEOUT_MS);
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return store;
}

/** How long the start-up check of a remote store may take before the command gives up. */
const CHECK_TIMEOUT_MS = 5000;
