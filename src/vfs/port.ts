/**
 * What src/vfs uses of the store (native-notes/store-api.md): nothing else. Picked from the real
 * classes so a change of signature there is a compile error here.
 */
import type { BlobHold, Library, Space } from '../store/library.js';

export type { BlobHold };

/** The read path: which bytes (blob size), may I hold them, and the blob store that has them. */
export type ReaderLibrary = Pick<Library, 'blobs' | 'blobSize' | 'holdBlob'>;

/** The upload path: a blob stored under a lease, given up when its commit fails. */
export type UploadLibrary = Pick<Library, 'storeBlobFromStream' | 'storeBlobFromFile' | 'abandonBlob'>;

/** Open files of a mount: staging, commits, holds. */
export type FilesLibrary = Pick<Library, 'stagingDir' | 'storeBlobFromFile' | 'abandonBlob' | 'holdBlob'>;

export type FilesSpace = Pick<Space, 'setContent' | 'statNode'>;

/** The change feed a mount follows to invalidate the kernel's caches (./changes.ts). */
export type FeedLibrary = Pick<Library, 'changes'>;
export type { ChangeMove, ChangeRecord } from '../store/changes.js';
