/**
 * Which blob store a CLI invocation uses (B1), from the global options:
 *
 * - no blob option: the library's default, the local store `<library>/blobs` (created by
 *   `Library.open` after it has checked the folder, so nothing is written into a folder that is
 *   not a library);
 * - `--blobs DIR` or `--blobs file:///DIR`: a local store in DIR;
 * - `--blobs s3://BUCKET[/PREFIX]` (with `--s3-endpoint`, `--s3-region`, `--s3-path-style`): an
 *   S3-compatible store from the blob layer's factory `openBlobStore` (src/blob/s3-store.ts),
 *   loaded only then (the AWS SDK is large). Its `check()` (HeadBucket, 5 s deadline) runs before
 *   the command does anything, so a missing bucket, bad credentials or a dead endpoint are one
 *   clear line and exit 1 within seconds — at mount time and for every other command alike.
 */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBlobStore } from '../blob/local-store.js';
import type { BlobStore } from '../blob/types.js';
import type { LibraryOptions } from './context.js';
import { UsageError } from './usage.js';

/** Returns undefined when the library's own default applies. */
export async function openConfiguredBlobStore(libraryDir: string, opts: LibraryOptions): Promise<BlobStore | undefined> {
  const url = opts.blobs;
  const s3Flags = opts.s3Endpoint !== undefined || opts.s3Region !== undefined || opts.s3PathStyle === true;
  if (url === undefined || url === '') {
    if (s3Flags) throw new UsageError('--s3-endpoint, --s3-region and --s3-path-style need --blobs s3://BUCKET[/PREFIX]');
    return undefined;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined || isAbsolute(url) || scheme === 'file') {
    if (s3Flags) throw new UsageError('S3 options given with a local --blobs directory');
    return new LocalBlobStore(scheme === 'file' ? fileURLToPath(url) : resolve(url));
  }
  if (scheme !== 's3') {
    throw new UsageError(`unsupported --blobs ${JSON.stringify(url)}: use a directory or s3://BUCKET[/PREFIX]`);
  }
  // The SDK warns on every start that releases after 2026 will need Node 22: noise for a CLI.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const { checkBlobStore, openBlobStore } = await import('../blob/s3-store.js');
  const store = openBlobStore({
    blobs: url,
    localDir: resolve(libraryDir, 'blobs'),
    ...(opts.s3Endpoint !== undefined ? { s3Endpoint: opts.s3Endpoint } : {}),
    ...(opts.s3Region !== undefined ? { s3Region: opts.s3Region } : {}),
    ...(opts.s3PathStyle ? { s3PathStyle: true } : {}),
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
