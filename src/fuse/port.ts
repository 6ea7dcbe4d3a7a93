/**
 * What the FUSE adapter uses of the store (native-notes/store-api.md): nothing else. Picked from
 * the real classes so a change of signature there is a compile error here.
 */
import type { Library, Space } from '../store/library.js';

export type FuseLibrary = Pick<Library, 'dir' | 'stagingDir' | 'storeBlobFromFile' | 'abandonBlob' | 'readContent' | 'holdBlob' | 'sync'> & {
  readonly cache: Pick<Library['cache'], 'openStream' | 'stats' | 'readLease' | 'readCachedSync'> | undefined;
};

export type FuseSpace = Pick<
  Space,
  | 'stat'
  | 'statNode'
  | 'statWritable'
  | 'readdir'
  | 'readlink'
  | 'statfs'
  | 'mkdir'
  | 'mknod'
  | 'createFile'
  | 'symlink'
  | 'setContent'
  | 'rename'
  | 'unlink'
  | 'rmdir'
  | 'setattr'
  | 'accessed'
  | 'getXattr'
  | 'setXattr'
  | 'listXattr'
  | 'removeXattr'
>;
