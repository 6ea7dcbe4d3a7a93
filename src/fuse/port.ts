/**
 * What the FUSE adapter uses of the store (native-notes/store-api.md): nothing else. Picked from
 * the real classes so a change of signature there is a compile error here.
 */
import type { Library, Space } from '../store/library.js';
import type { FeedLibrary, FilesLibrary } from '../vfs/port.js';

export type FuseLibrary = Pick<Library, 'dir' | 'sync'> & FilesLibrary & FeedLibrary;

export type FuseSpace = Pick<
  Space,
  | 'root'
  | 'name'
  | 'stat'
  | 'statNode'
  | 'statWritable'
  | 'statOpen'
  | 'statTruncatable'
  | 'link'
  | 'linkAt'
  | 'readdir'
  | 'readdirPlus'
  | 'readdirStats'
  | 'readdirNames'
  | 'listingVersion'
  | 'readlink'
  | 'statfs'
  | 'mkdir'
  | 'mkdirAt'
  | 'lookup'
  | 'mknodAt'
  | 'createFileAt'
  | 'symlinkAt'
  | 'unlinkAt'
  | 'rmdirAt'
  | 'renameAt'
  | 'exchangeAt'
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
