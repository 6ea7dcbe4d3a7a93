/**
 * Content hashing for the blob layer. A blob's key is the lowercase hex SHA-256 of its bytes
 * (content addressing, see types.ts); the MD5 rides along in the same pass because S3-compatible
 * stores want it (Content-MD5 on uploads, ETags in the dialects). Everything streams: a blob may be
 * many GiB and must never be held in memory whole.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface ContentHash {
  /** lowercase hex SHA-256: the blob key */
  sha256: string;
  /** lowercase hex MD5 */
  md5: string;
  size: number;
}

export interface HasherOptions {
  /**
   * Also compute MD5 (default true). MD5 runs at about half SHA-256's speed here, so stores that
   * only need the key turn it off; `digest().md5` is then ''.
   */
  md5?: boolean;
}

/** An incremental SHA-256 (+ MD5) + byte count. */
export class Hasher {
  readonly #sha = createHash('sha256');
  readonly #md5;
  #size = 0;
  #done: ContentHash | undefined;

  constructor(options: HasherOptions = {}) {
    this.#md5 = options.md5 === false ? undefined : createHash('md5');
  }

  update(chunk: Buffer): this {
    if (this.#done) throw new Error('Hasher.update after digest');
    this.#sha.update(chunk);
    this.#md5?.update(chunk);
    this.#size += chunk.length;
    return this;
  }

  get size(): number {
    return this.#size;
  }

  digest(): ContentHash {
    // Idempotent, so a stream's 'finish' handler and its owner can both ask.
    this.#done ??= { sha256: this.#sha.digest('hex'), md5: this.#md5?.digest('hex') ?? '', size: this.#size };
    return this.#done;
  }
}

/**
 * A pass-through Transform that hashes what flows through it. Put it between a source and a
 * destination in `pipeline()`, then read `digest()` once the pipeline resolved.
 */
export class HashingTransform extends Transform {
  readonly #hasher: Hasher;

  constructor(options: HasherOptions = {}) {
    super();
    this.#hasher = new Hasher(options);
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#hasher.update(buf);
    cb(null, buf);
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#hasher.size;
  }

  /** The hash of everything that passed; call after the stream finished. */
  digest(): ContentHash {
    return this.#hasher.digest();
  }
}

export function hashBuffer(buf: Buffer): ContentHash {
  return new Hasher().update(buf).digest();
}

/** Hash a file by streaming it (constant memory whatever its size); `onProgress` gets the bytes hashed so far. */
export async function hashFile(path: string, onProgress?: (hashedBytes: number) => void): Promise<ContentHash> {
  const hasher = new Hasher();
  // 1 MiB reads: fewer syscalls and hash-update calls than the 64 KiB default.
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async function (source) {
    for await (const chunk of source) {
      hasher.update(chunk as Buffer);
      onProgress?.(hasher.size);
    }
  });
  return hasher.digest();
}

/** MD5 of a buffer, base64: the form the Content-MD5 header wants. */
export function md5Base64(buf: Buffer): string {
  return createHash('md5').update(buf).digest('base64');
}

/** Keys are 64 lowercase hex digits; anything else is refused before it can become a path. */
export const BLOB_KEY_RE = /^[0-9a-f]{64}$/;

export function isBlobKey(key: string): boolean {
  return BLOB_KEY_RE.test(key);
}
