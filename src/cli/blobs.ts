/**
 * Which blob store a CLI invocation uses (B1), from the global options:
 *
 * - no blob option: the library's default, the local store `<library>/blobs` (created by
 *   `Library.open` after it has checked the folder, so nothing is written into a folder that is
 *   not a library);
 * - `--blobs DIR` or `--blobs file:///DIR`: a local store in DIR;
 * - `--blobs s3://BUCKET[/PREFIX]` (with `--s3-endpoint`, `--s3-region`, `--s3-path-style`): an
 *   S3-compatible store from the blob layer's factory `openBlobStore` (src/blob/s3-store.ts),
 *   loaded only then (the AWS SDK is large).
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
  const { openBlobStore } = await import('../blob/s3-store.js');
  return openBlobStore({
    blobs: url,
    localDir: resolve(libraryDir, 'blobs'),
    ...(opts.s3Endpoint !== undefined ? { s3Endpoint: opts.s3Endpoint } : {}),
    ...(opts.s3Region !== undefined ? { s3Region: opts.s3Region } : {}),
    ...(opts.s3PathStyle ? { s3PathStyle: true } : {}),
  });
}
