/**
 * The one mapping from domain error codes to HTTP status and wire code. The SMH dialect sends
 * `{"code","message"}` with the SMH code; the BOS dialect uses `bosCode` where BOS names the same
 * condition differently. The CLI prints `<status> <code>` from the SMH column.
 */
import type { ErrorCode } from '../errors.js';

export interface HttpError {
  status: number;
  smhCode: string;
  bosCode: string;
}

const h = (status: number, smhCode: string, bosCode = smhCode): HttpError => ({ status, smhCode, bosCode });

export const HTTP_OF: Record<ErrorCode, HttpError> = {
  FileNotFound: h(404, 'FileNotFound', 'NoSuchKey'),
  DirectoryNotFound: h(404, 'DirectoryNotFound', 'NoSuchKey'),
  SourceFileNotFound: h(404, 'SourceFileNotFound', 'NoSuchKey'),
  RecycledItemNotFound: h(404, 'RecycledItemNotFound'),
  TaskNotFound: h(404, 'TaskNotFound'),
  SpaceNotFound: h(404, 'SpaceNotFound', 'NoSuchBucket'),
  FileNameLengthExceed: h(400, 'FileNameLengthExceed', 'InvalidObjectName'),
  DirectoryNameLengthExceed: h(400, 'DirectoryNameLengthExceed', 'InvalidObjectName'),
  LinkTargetTooLong: h(400, 'InvalidArgument', 'InvalidArgument'),
  PathTooLong: h(400, 'PathTooLong', 'InvalidObjectName'),
  InvalidFileName: h(400, 'InvalidFileName', 'InvalidObjectName'),
  NameNotUtf8: h(400, 'InvalidFileName', 'InvalidObjectName'),
  InvalidSourceFile: h(400, 'InvalidSourceFile', 'InvalidArgument'),
  InvalidDestinationPath: h(400, 'InvalidDestinationPath', 'InvalidObjectName'),
  SameNameDirectoryOrFileExists: h(409, 'SameNameDirectoryOrFileExists', 'ObjectAlreadyExists'),
  NotADirectory: h(409, 'NotADirectory', 'InvalidObjectName'),
  IsADirectory: h(409, 'IsADirectory', 'InvalidObjectName'),
  DirectoryNotEmpty: h(409, 'DirectoryNotEmpty'),
  MoveIntoItself: h(400, 'InvalidDestinationPath'),
  CrossSpace: h(400, 'InvalidDestinationPath'),
  TooManyLinks: h(400, 'InvalidSourceFile', 'InvalidTargetType'),
  LinkLimitExceeded: h(409, 'LinkLimitExceeded'),
  OperationTooLarge: h(400, 'OperationTooLarge'),
  ReadOnly: h(403, 'NoPermission', 'AccessDenied'),
  NotPermitted: h(403, 'NoPermission', 'AccessDenied'),
  NoPermission: h(403, 'NoPermission', 'AccessDenied'),
  InvalidArgument: h(400, 'InvalidArgument'),
  NotSupported: h(501, 'NotImplemented'),
  NoSuchAttribute: h(404, 'NoSuchAttribute'),
  AttributeExists: h(409, 'AttributeExists'),
  ObjectAlreadyExists: h(409, 'SameNameDirectoryOrFileExists', 'ObjectAlreadyExists'),
  SymlinkTargetNotExist: h(404, 'SourceFileNotFound', 'SymlinkTargetNotExist'),
  InvalidTargetType: h(400, 'InvalidSourceFile', 'InvalidTargetType'),
  RangeNotSatisfiable: h(416, 'InvalidRange', 'InvalidRange'),
  BlobUnavailable: h(503, 'ServiceUnavailable', 'ServiceUnavailable'),
  BlobMissing: h(502, 'BadGateway', 'InternalError'),
  NotALibrary: h(500, 'InternalError', 'InternalError'),
  BlobStoreOwned: h(500, 'InternalError', 'InternalError'),
  SchemaTooNew: h(500, 'InternalError', 'InternalError'),
  LibraryReadOnly: h(503, 'ServiceUnavailable', 'ServiceUnavailable'),
  InsufficientStorage: h(507, 'InsufficientStorage', 'InsufficientStorage'),
  Busy: h(503, 'ServiceUnavailable', 'SlowDown'),
  MetaUnavailable: h(503, 'ServiceUnavailable', 'ServiceUnavailable'),
  Internal: h(500, 'InternalError', 'InternalError'),
};
