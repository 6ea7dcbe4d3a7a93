/**
 * The library's record of where its blob bytes live (`meta` key "blobs", JSON `BlobConfig`):
 * only the known fields, with their types checked, are ever written or read back.
 */
import { fail } from '../errors.js';
import type { BlobConfig } from './types.js';

/** `meta` key of the library's blob-store record (JSON `BlobConfig`). */
export const BLOBS_KEY = 'blobs';

/** Only the known fields, with their types checked: nothing else (no credentials) is ever recorded. */
export function cleanBlobConfig(c: BlobConfig): BlobConfig {
  if (typeof c.url !== 'string' || c.url === '') throw fail('InvalidArgument', 'a blob configuration needs a url');
  const out: BlobConfig = { url: c.url };
  if (c.s3Endpoint !== undefined) {
    if (typeof c.s3Endpoint !== 'string') throw fail('InvalidArgument', 's3Endpoint must be a string');
    out.s3Endpoint = c.s3Endpoint;
  }
  if (c.s3Region !== undefined) {
    if (typeof c.s3Region !== 'string') throw fail('InvalidArgument', 's3Region must be a string');
    out.s3Region = c.s3Region;
  }
  if (c.s3PathStyle === true) out.s3PathStyle = true;
  return out;
}

export function parseBlobConfig(value: string): BlobConfig {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    v = undefined;
  }
  try {
    if (typeof v !== 'object' || v === null) throw new Error('not an object');
    return cleanBlobConfig(v as BlobConfig);
  } catch {
    throw fail('Internal', `the library's blob-store record (meta "${BLOBS_KEY}") is damaged: ${value}`);
  }
}
