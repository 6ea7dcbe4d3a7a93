/**
 * The blob layer's one interface. A blob is immutable bytes under a key; a key never changes
 * content (B1). Stores know nothing of files, links or the recycle bin: the library store decides
 * which keys are referenced, and asks for deletion only after a committed transaction dropped the
 * last reference (T6).
 *
 * Keys are lowercase hex SHA-256 of the content (content addressing), so `put` of bytes that are
 * already stored is a cheap no-op and two files with equal bytes share one blob.
 */
import type { Readable } from 'node:stream';

export interface BlobInfo {
  key: string;
  size: number;
  /** When the bytes were stored (ms since the epoch), where the store knows it: listings set it (gc's grace period). */
  modifiedMs?: number;
}

/** Name of the owner marker (D1) in a store: beside the blobs, never a blob key, never listed. */
export const MARKER_NAME = 'smhfs-library.json';

/** A blob file's descriptor lent to a reader (`LocalBlobStore.fileSync` / `openFile`). */
export interface BlobFile {
  readonly fd: number;
  /** The blob's size (the file's, when it was opened). */
  readonly size: number;
  /** Give the descriptor back (once; later calls do nothing). */
  release(): void;
}

export interface BlobStore {
  /** A short human description for logs, e.g. `local:/var/lib/smhfs/blobs` or `s3://bucket/prefix`. */
  readonly description: string;
  /**
   * Store the bytes of a local file under `key` (the caller computed the SHA-256 while staging).
   * Durable when the promise resolves (fsync for local, completed upload for S3). `onProgress`,
   * if given, is told how many bytes are stored so far, now and then (progress on a terminal).
   */
  putFile(key: string, path: string, size: number, onProgress?: (storedBytes: number) => void): Promise<void>;
  /**
   * Optional: store the file at `path` by taking it over (a rename), trusting the caller's key.
   * Afterwards the path is gone. Used for staged writes whose hash was computed while writing,
   * so a commit costs an fsync and a rename instead of a copy and a second hash. Stores that
   * cannot adopt (another filesystem, a remote store) leave this out or throw EXDEV.
   */
  adoptFile?(key: string, path: string, size: number): Promise<void>;
  /** Store bytes from a stream; returns the key and size (the store hashes while writing). */
  putStream(body: Readable | Buffer): Promise<BlobInfo>;
  /**
   * Read `length` bytes from `offset`. Returns exactly min(length, size - offset) bytes or throws;
   * never a short buffer presented as success (B4).
   */
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  /** Size of a stored blob, or undefined when absent. */
  head(key: string): Promise<BlobInfo | undefined>;
  /** Delete; deleting an absent key is not an error. */
  delete(key: string): Promise<void>;
  /** Every blob key in the store (never the marker), for `smhfs gc` and `smhfs fsck`. */
  list(): AsyncIterable<BlobInfo>;
  /**
   * D1: the store's owner marker, a small text naming the library that owns the store (the
   * library layer writes and reads its content; the store only keeps it). Undefined when absent.
   * Every real store has it; a store without it (a test double) cannot be claimed by a library.
   */
  readMarker?(): Promise<string | undefined>;
  /**
   * Write the marker only if the store has none: true when this call wrote it, false when one
   * was there (whatever it says: read it again to see whose it is).
   */
  createMarker?(text: string): Promise<boolean>;
  /**
   * True when the store holds nothing at all — no blob, no marker, nothing else (a local folder's
   * own `.tmp` and empty fan-out folders aside): what a new library may start on (D2).
   */
  isEmpty?(): Promise<boolean>;
  close?(): Promise<void>;
}

/** SHA-256 of the empty string: the blob of every empty file; stores need not hold it. */
export const EMPTY_BLOB_KEY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
