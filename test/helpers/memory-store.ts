/**
 * An in-memory blob store for tests. It keeps the same contract as the durable stores (content
 * addressing with verification, exact ranges, BlobMissing for absent keys) so tests written
 * against it hold for the real ones; buffers are copied in and out so a caller mutating a buffer
 * can never change stored bytes.
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { SmhError } from '../../src/errors.js';
import { checkKey, checkRange, chunksOf, expectedLength, messageOf } from '../../src/blob/common.js';
import { hashBuffer } from '../../src/blob/hash.js';
import { EMPTY_BLOB_KEY, type BlobInfo, type BlobStore } from '../../src/blob/types.js';

export class MemoryBlobStore implements BlobStore {
  readonly description = 'memory:';
  readonly #blobs = new Map<string, Buffer>();
  #marker: string | undefined;
  readonly #stored = new Map<string, number>();

  async putFile(key: string, path: string, size: number): Promise<void> {
    checkKey(key);
    const bytes = await readFile(path).catch((e: unknown) => {
      throw new SmhError('InvalidArgument', `cannot read staged file ${path}: ${messageOf(e)}`, key, { cause: e });
    });
    if (bytes.length !== size) throw new SmhError('InvalidArgument', `staged file ${path} has ${bytes.length} bytes, expected ${size}`, key);
    const h = hashBuffer(bytes);
    if (h.sha256 !== key) throw new SmhError('InvalidArgument', `content does not match blob key (got ${h.sha256})`, key);
    if (key !== EMPTY_BLOB_KEY && !this.#blobs.has(key)) this.#store(key, bytes);
  }

  async putStream(body: Readable | Buffer): Promise<BlobInfo> {
    const parts: Buffer[] = [];
    for await (const c of chunksOf(body)) parts.push(Buffer.from(c)); // copy: the caller may reuse c
    const bytes = Buffer.concat(parts);
    const key = hashBuffer(bytes).sha256;
    if (key !== EMPTY_BLOB_KEY && !this.#blobs.has(key)) this.#store(key, bytes);
    return { key, size: bytes.length };
  }

  #store(key: string, bytes: Buffer): void {
    this.#blobs.set(key, bytes);
    this.#stored.set(key, Date.now());
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    checkKey(key);
    checkRange(key, offset, length);
    if (key === EMPTY_BLOB_KEY) return Buffer.alloc(0);
    const b = this.#blobs.get(key);
    if (!b) throw new SmhError('BlobMissing', `blob ${key} is not in the memory store`, key);
    const n = expectedLength(b.length, offset, length);
    return Buffer.from(b.subarray(offset, offset + n));
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    checkKey(key);
    if (key === EMPTY_BLOB_KEY) return { key, size: 0 };
    const b = this.#blobs.get(key);
    return b ? { key, size: b.length } : undefined;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    this.#blobs.delete(key);
    this.#stored.delete(key);
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const [key, b] of [...this.#blobs]) yield { key, size: b.length, modifiedMs: this.#stored.get(key) ?? 0 };
  }

  async readMarker(): Promise<string | undefined> {
    return this.#marker;
  }

  async createMarker(text: string): Promise<boolean> {
    if (this.#marker !== undefined) return false;
    this.#marker = text;
    return true;
  }

  async isEmpty(): Promise<boolean> {
    return this.#blobs.size === 0 && this.#marker === undefined;
  }

  /** Number of stored blobs (tests). */
  get count(): number {
    return this.#blobs.size;
  }
}
