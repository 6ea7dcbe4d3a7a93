/**
 * The one upload path of the faces that receive a whole file at once (SMH and BOS uploads, the
 * CLI's `put`): bytes → a stored blob under an upload lease → one commit in the store → or, when
 * anything after the store took the bytes fails (the commit, a digest check), the blob is
 * abandoned: its lease ends and the collector deletes it if nothing references it (T6, D3).
 * Never a committed partial file, never stored bytes left behind without a lease (SPEC §10).
 *
 * The mount's open files commit through the same store calls (./open-files.ts), staged first
 * because POSIX writes arrive piecewise.
 */
import type { Readable } from 'node:stream';
import type { ContentHash } from '../blob/hash.js';
import type { BlobRef } from '../store/types.js';
import type { UploadLibrary } from './port.js';

/** Where the bytes come from: a stream (HTTP bodies, stdin) or a local file (hashed already or not). */
export type UploadSource =
  | { stream: Readable }
  | { file: string; hash?: ContentHash };

/**
 * Store `source` as a blob, then run `commit` with its ref (the store call that references it:
 * `putFile`, or a check first). If `commit` throws, the blob is abandoned and the error rethrown.
 */
export async function upload<T>(
  lib: UploadLibrary,
  source: UploadSource,
  commit: (ref: BlobRef) => T | Promise<T>,
  opts: { onProgress?: (storedBytes: number) => void } = {},
): Promise<T> {
  const progress = opts.onProgress ? { onProgress: opts.onProgress } : {};
  const ref =
    'stream' in source
      ? await lib.storeBlobFromStream(source.stream, progress)
      : await lib.storeBlobFromFile(source.file, { ...(source.hash ? { hash: source.hash } : {}), ...progress });
  try {
    return await commit(ref);
  } catch (e) {
    lib.abandonBlob(ref);
    throw e;
  }
}
