/**
 * The one read path of file bytes, shared by every face (the mount, SMH and BOS downloads, the
 * CLI's `cat`): a file's committed version → its blob through the page cache (B2, B3) → the blob
 * store. It owns the page cache; the store only answers metadata (which blob, its size, may I
 * hold it). The mount reads its staged (uncommitted) bytes itself (./open-files.ts) and comes
 * here for everything committed.
 *
 * - `readContent` reads a file's logical bytes: a sparse version (D8) maps through its layout,
 *   holes are zeros and never fetched. `readBlob` reads raw blob bytes (fsck, tests).
 * - `openContent` is "may I read this blob", asked once per reader: it holds the version's bytes
 *   (D7: no collector in any process deletes them until `release`) and gives the reader its own
 *   readahead stream. A version whose bytes are already gone is refused (`FileNotFound`): the
 *   caller resolved a file that was deleted meanwhile, and may resolve again.
 */
import { fail } from '../errors.js';
import { PageCache, type PageCacheOptions, type ReadStream } from '../blob/page-cache.js';
import { SparseLayout } from '../blob/sparse.js';
import { EMPTY_BLOB_KEY, type BlobFile, type BlobStore } from '../blob/types.js';
import type { BlobHold, ReaderLibrary } from './port.js';

export type ReaderOptions = Omit<PageCacheOptions, 'store'>;

/** A committed version of a file's content (a NodeInfo of a file is one). */
export interface ContentVersion {
  blob: string | null;
  /** Logical size. */
  size: number;
  /** Sparse container layout (header text), when the version is sparse (D8). */
  layout?: string | undefined;
  /** For messages only. */
  path?: string;
}

/** One reader of one version: its bytes held (D7), read with its own readahead (B3). */
export interface OpenContent {
  readonly version: ContentVersion;
  readonly stream: ReadStream;
  read(offset: number, length: number): Promise<Buffer>;
  release(): void;
}

export class ContentReader {
  readonly cache: PageCache;
  readonly #lib: ReaderLibrary;

  constructor(lib: ReaderLibrary, opts: ReaderOptions = {}) {
    this.#lib = lib;
    this.cache = new PageCache({ ...opts, store: lib.blobs });
  }

  /** Read raw blob bytes through the page cache (B2); `size` when the caller knows the blob's size. */
  async readBlob(key: string, offset: number, length: number, stream?: ReadStream, size?: number): Promise<Buffer> {
    const blobSize = size ?? this.#lib.blobSize(key);
    if (blobSize === undefined) throw fail('BlobMissing', `no committed file references blob ${key}`);
    return this.cache.read(key, blobSize, offset, length, stream);
  }

  /**
   * Read bytes [offset, offset + length) of a file's content — clipped to its size — through the
   * page cache. A sparse file's holes (D8) are zeros and never fetched; its data comes from its
   * container blob. Use this, not `readBlob`, to read a file: `readBlob` reads blob bytes.
   */
  async readContent(file: ContentVersion, offset: number, length: number, stream?: ReadStream): Promise<Buffer> {
    const want = Math.max(0, Math.min(length, file.size - offset));
    if (want === 0) return Buffer.alloc(0);
    if (!file.blob) throw fail('BlobMissing', `file ${file.path ?? ''} has no content blob`, file.path);
    if (!file.layout) return this.cache.read(file.blob, file.size, offset, want, stream);
    const layout = SparseLayout.parse(file.layout);
    const parts: Buffer[] = [];
    for (const seg of layout.segments(offset, want)) {
      if (seg.blobOffset === null) parts.push(Buffer.alloc(seg.length));
      else parts.push(await this.cache.read(file.blob, layout.blobSize, seg.blobOffset, seg.length, stream));
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * For a binding that answers a read from a file descriptor (splice, or one read into its reply
   * buffer: issue 16, "local reads at the binding's ceiling"): the descriptor of `version`'s blob
   * file when the store is local, the version dense (a sparse one maps through its layout) and
   * the descriptor already open — file offset = blob offset, the file ends where the content
   * does. Undefined otherwise, having started nothing: read through `readContent` (which opens
   * the descriptor for the next time). Synchronous, for the adapter's hot path: use the
   * descriptor before yielding and `release()` it (it stays open until then, even if the blob
   * is deleted meanwhile). The page cache is bypassed: it is for remote bytes; the kernel's own
   * page cache already holds a local file's.
   */
  localFile(version: ContentVersion): BlobFile | undefined {
    if (!version.blob || version.layout || version.blob === EMPTY_BLOB_KEY) return undefined;
    const store = this.#lib.blobs as BlobStore & { fileSync?: (key: string) => BlobFile | undefined };
    if (typeof store.fileSync !== 'function') return undefined;
    const f = store.fileSync(version.blob);
    if (f && f.size !== version.size) {
      f.release(); // not the bytes the library recorded: let the page cache's checks speak
      return undefined;
    }
    return f;
  }

  /** Whether the blob store keeps its blobs in local files (`localFile` can answer). */
  get localFiles(): boolean {
    return typeof (this.#lib.blobs as BlobStore & { openFile?: unknown }).openFile === 'function';
  }

  /**
   * `localFile`, opening the blob's descriptor when it is not open yet (the first read of a
   * file); undefined where `localFile` would be (not a local store, sparse, empty, size mismatch).
   */
  async openLocalFile(version: ContentVersion): Promise<BlobFile | undefined> {
    if (!version.blob || version.layout || version.blob === EMPTY_BLOB_KEY) return undefined;
    const store = this.#lib.blobs as BlobStore & { openFile?: (key: string) => Promise<BlobFile> };
    if (typeof store.openFile !== 'function') return undefined;
    const f = await store.openFile(version.blob);
    if (f.size !== version.size) {
      f.release();
      return undefined;
    }
    return f;
  }

  /** A readahead stream of its own, for a reader that reads sequentially (B3). */
  openStream(): ReadStream {
    return this.cache.openStream();
  }

  /** Hold `key`'s bytes for a reader (D7); see `Library.holdBlob`. */
  hold(key: string): BlobHold {
    return this.#lib.holdBlob(key);
  }

  /**
   * Start reading `version`: its bytes are held until `release()` (D7). Throws `FileNotFound`
   * when they are already gone (deleted since the caller resolved the file).
   */
  openContent(version: ContentVersion): OpenContent {
    const hold = version.blob ? this.#lib.holdBlob(version.blob) : undefined;
    const stream = this.cache.openStream();
    return {
      version,
      stream,
      read: (offset, length) => this.readContent(version, offset, length, stream),
      release: () => hold?.release(),
    };
  }
}
