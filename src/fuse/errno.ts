/**
 * The one mapping from domain error codes to POSIX errnos (M3). Exhaustive by type: a new
 * ErrorCode does not compile until it is given an errno here. Values are Linux errnos; the FUSE
 * adapter returns them negated through fuse-native.
 */
import { constants } from 'node:os';
import type { ErrorCode } from '../errors.js';
import { isSmhError } from '../errors.js';

const E = constants.errno;

export const ERRNO_OF: Record<ErrorCode, number> = {
  FileNotFound: E.ENOENT,
  DirectoryNotFound: E.ENOENT,
  SourceFileNotFound: E.ENOENT,
  RecycledItemNotFound: E.ENOENT,
  TaskNotFound: E.ENOENT,
  SpaceNotFound: E.ENOENT,
  FileNameLengthExceed: E.ENAMETOOLONG,
  DirectoryNameLengthExceed: E.ENAMETOOLONG,
  LinkTargetTooLong: E.ENAMETOOLONG,
  PathTooLong: E.ENAMETOOLONG,
  InvalidFileName: E.EINVAL,
  NameNotUtf8: E.EILSEQ,
  InvalidSourceFile: E.EINVAL,
  InvalidDestinationPath: E.EINVAL,
  SameNameDirectoryOrFileExists: E.EEXIST,
  NotADirectory: E.ENOTDIR,
  IsADirectory: E.EISDIR,
  DirectoryNotEmpty: E.ENOTEMPTY,
  MoveIntoItself: E.EINVAL,
  CrossSpace: E.EXDEV,
  TooManyLinks: E.ELOOP,
  LinkLimitExceeded: E.EMLINK,
  OperationTooLarge: E.E2BIG,
  ReadOnly: E.EPERM,
  NotPermitted: E.EPERM,
  NoPermission: E.EACCES,
  InvalidArgument: E.EINVAL,
  NotSupported: E.ENOTSUP,
  NoSuchAttribute: E.ENODATA,
  AttributeExists: E.EEXIST,
  ObjectAlreadyExists: E.EEXIST,
  SymlinkTargetNotExist: E.ENOENT,
  InvalidTargetType: E.EINVAL,
  RangeNotSatisfiable: E.EINVAL,
  BlobUnavailable: E.EIO,
  BlobMissing: E.EIO,
  NotALibrary: E.EIO,
  BlobStoreOwned: E.EPERM,
  SchemaTooNew: E.EIO,
  LibraryReadOnly: E.EROFS,
  InsufficientStorage: E.ENOSPC,
  Busy: E.EAGAIN,
  MetaUnavailable: E.EIO,
  Internal: E.EIO,
};

/**
 * errno for any thrown value. Unexpected errors (not SmhError) are logged by the caller and
 * become EIO, never a bare -1 (M3).
 */
export function errnoOf(e: unknown): number {
  if (isSmhError(e)) return ERRNO_OF[e.code];
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code in E) return E[code as keyof typeof E];
  return E.EIO;
}
