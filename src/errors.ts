/**
 * Typed domain errors. Every layer throws `SmhError` with one of the codes below; the FUSE
 * adapter maps codes to errnos (src/fuse/errno.ts) and each HTTP dialect maps them to a status
 * and its own code name (src/http/…). Both mappings are exhaustive `Record<ErrorCode, …>`, so a
 * new code does not compile until every interface has decided what it means.
 *
 * Code names follow SMH where SMH has one (SourceFileNotFound, SameNameDirectoryOrFileExists…)
 * so the SMH dialect can pass them through unchanged.
 */

export const ERROR_CODES = [
  // lookups
  'FileNotFound', // a path does not exist (also: a missing intermediate directory for reads)
  'DirectoryNotFound', // the parent directory of a path to create does not exist (L2)
  'SourceFileNotFound', // the source/target of a link, move or copy is missing (L2, L16)
  'RecycledItemNotFound',
  'TaskNotFound',
  'SpaceNotFound',
  // names and paths (N1–N3)
  'FileNameLengthExceed',
  'DirectoryNameLengthExceed',
  'LinkTargetTooLong', // N2: a link target over 4095 bytes
  'PathTooLong', // a path over 4095 bytes (PATH_MAX semantics), given or about to be made by a copy
  'InvalidFileName', // empty, contains '/' or NUL, '.' or '..'
  'NameNotUtf8', // D5: a name or link target whose bytes are not valid UTF-8 (never altered, refused)
  'InvalidSourceFile', // a bad source: a '..' segment, a link to a directory or to a link (L2)
  'InvalidDestinationPath', // a bad destination: '..', the root, a reserved name
  // tree shape
  'SameNameDirectoryOrFileExists', // C1
  'NotADirectory',
  'IsADirectory',
  'DirectoryNotEmpty',
  'MoveIntoItself', // rename of a directory into its own subtree (EINVAL)
  'CrossSpace', // rename/link across spaces (EXDEV)
  'TooManyLinks', // ELOOP while resolving a path through links
  'LinkLimitExceeded', // a file already has the most bound links one file may have (EMLINK)
  'OperationTooLarge', // one request would do more synchronous work than the server allows (a huge copy)
  // permissions / capabilities
  'ReadOnly', // writes into the recycle-bin view (T3) -> EPERM
  'NotPermitted', // hard links (L17), ownership changes a non-owner may not make
  'NoPermission', // dialect grant checks (C5)
  'InvalidArgument', // a malformed value (strategy, storage class, header, range…)
  'NotSupported',
  // xattrs
  'NoSuchAttribute',
  'AttributeExists',
  // BOS-specific outcomes the store decides (L3, L6)
  'ObjectAlreadyExists',
  'SymlinkTargetNotExist',
  'InvalidTargetType',
  // ranges / data
  'RangeNotSatisfiable',
  'BlobUnavailable', // a blob read failed after retries (B4)
  'BlobMissing', // committed metadata points at a blob the store does not have
  // library files
  'NotALibrary',
  'BlobStoreOwned', // D1: the blob store belongs to another library (its marker), or holds data that is not this library's
  'SchemaTooNew',
  'LibraryReadOnly',
  'InsufficientStorage', // D9: the disk holding the library or its staging/blobs is full
  'Busy', // transient contention that outlived busy_timeout
  'MetaUnavailable', // the metadata database (PostgreSQL) cannot be reached, refused the login, or was lost mid-commit
  'Internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class SmhError extends Error {
  readonly code: ErrorCode;
  /** The path (space-relative) or id the error is about, for messages like `ln: photos/cat.jpg: …`. */
  readonly subject: string | undefined;

  constructor(code: ErrorCode, message: string, subject?: string, options?: { cause?: unknown }) {
    // A domain error is an answer (ENOENT for every negative lookup), not a bug: its code and
    // subject say what happened, and capturing a stack for each cost ~10 µs per lookup (link
    // bench). Internal errors keep theirs.
    const limit = Error.stackTraceLimit;
    if (code !== 'Internal') Error.stackTraceLimit = 0;
    try {
      super(message, options);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = 'SmhError';
    this.code = code;
    this.subject = subject;
  }
}

export function isSmhError(e: unknown, code?: ErrorCode): e is SmhError {
  return e instanceof SmhError && (code === undefined || e.code === code);
}

/** Helper for terse throws: `throw fail('FileNotFound', 'no such file', path)`. */
export function fail(code: ErrorCode, message: string, subject?: string): SmhError {
  return new SmhError(code, message, subject);
}
