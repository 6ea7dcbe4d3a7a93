/**
 * What the HTTP dialects use of the store (native-notes/store-api.md): nothing else. Picked from
 * the real classes, like the FUSE adapter's port, so a change of signature there is a compile
 * error here rather than a silent drift.
 */
import type { Library, Space, TokenInfo, Tokens } from '../store/library.js';

export type { TokenInfo };

export type HttpSpace = Pick<
  Space,
  | 'stat'
  | 'readdirPlus'
  | 'resolveRead'
  | 'userMeta'
  | 'mkdir'
  | 'createLink'
  | 'putSymlink'
  | 'getSymlink'
  | 'putFile'
  | 'checkPutFile'
  | 'move'
  | 'copy'
  | 'rmdir'
  | 'remove'
  | 'trashList'
  | 'restore'
  | 'purge'
  | 'emptyTrash'
>;

/** The token records SMH uses: make one (the token endpoint), check one (every request). */
export type HttpTokens = Pick<Tokens, 'create' | 'check'>;

export type HttpLibrary = Pick<
  Library,
  | 'libraryId'
  | 'checkLibrarySecret'
  | 'storeBlobFromStream'
  | 'storeBlobFromFile'
  | 'abandonBlob'
  | 'blobs'
  | 'blobSize'
  | 'holdBlob'
  | 'kickTasks'
  | 'tasks'
  | 'task'
> & { space(name: string): HttpSpace; tokens: HttpTokens };
