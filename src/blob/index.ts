/**
 * The blob layer in one import: stores (local, S3, memory, fault injection), the page cache, and
 * hashing. `types.ts` holds the fixed interface every store implements. Importing this module
 * loads the AWS SDK (via s3-store); hot paths that never touch S3 can import the files directly.
 */
export * from './types.js';
export * from './hash.js';
export { LocalBlobStore, STALE_TEMP_AGE_MS, type LocalBlobStoreOptions } from './local-store.js';
export { MemoryBlobStore } from './memory-store.js';
export { FaultInjectingStore, type BlobOp, type FaultOptions, type FaultStats } from './fault-store.js';
export { PageCache, ReadStream, pageKey, type PageCacheOptions, type PageCacheStats } from './page-cache.js';
export {
  S3BlobStore,
  checkBlobStore,
  openBlobStore,
  parseBlobsUrl,
  type BlobStoreSpec,
  type BlobsUrl,
  type S3BlobStoreOptions,
} from './s3-store.js';
