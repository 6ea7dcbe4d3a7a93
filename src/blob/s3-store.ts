/**
 * (Over 600 lines because it is one store over one SDK: client set-up, ranged and multipart
 * transfers, retries and the mapping of every S3 error belong together.)
 *
 * A blob store on any S3-compatible object store (AWS S3, MinIO, Ceph RGW, the S3 endpoints of
 * BOS and COS) through `@aws-sdk/client-s3` (B1). Objects are `<prefix><key>`: flat, because the
 * keys are uniformly distributed hex and S3 partitions by key on its own. Credentials come from
 * the SDK's default provider chain (environment, profile, SSO, instance role) unless given.
 *
 * Wire-level choices, each for portability:
 * - `requestChecksumCalculation`/`responseChecksumValidation: 'WHEN_REQUIRED'`: by default SDK v3
 *   streams uploads with aws-chunked encoding and a trailing CRC, which s3rver (and some older
 *   gateways) store verbatim, framing included. Integrity is kept instead with Content-MD5 on
 *   every PutObject and UploadPart, which AWS, MinIO, RGW, BOS and COS all verify, plus a HEAD
 *   after each multipart upload that checks the assembled size. Bodies are always Buffers of
 *   known length, never streams, so the SDK has no reason to frame them.
 * - Multipart above 16 MiB, 8 MiB parts (more for huge files so parts stay ≤ 10,000), at most
 *   4 parts in flight, each read from the file only when its upload starts: memory stays at
 *   parts × partSize however large the blob.
 * - Ranged reads never trust the server to honour the range exactly: the Content-Range is checked,
 *   extra bytes are not read (s3rver answers `bytes=0-0` with the whole object), and a body that
 *   ends early is an error, never a short success (B4).
 * - Ranged reads from an `http:` endpoint (MinIO on a LAN, s3rver) skip the SDK's body stream:
 *   `s3-get.ts` signs with our own SigV4 signer (sigv4.ts) and reads the body straight into the
 *   page buffers (a quarter of the CPU per GiB). https endpoints (AWS) and anything that reader
 *   does not handle go through the SDK as before.
 * - The SDK itself is loaded on first use (`client`, a runtime require): a mount of an http
 *   endpoint that only reads never loads it (issue 16: ~7 MiB of heap, 12 % of the JavaScript
 *   allocation of a read, ~8 MiB of RSS from mount-up on). Its start-up requests — HeadBucket
 *   (`check`), the owner marker (`readMarker`), HEADs of sampled blobs (`head`) — go through the
 *   lean reader too, their errors shaped as the SDK's (`name`, `$metadata.httpStatusCode`), and fall back to the
 *   SDK (with its retries) on a dead connection, a timeout or a 5xx. The lean reader's credentials:
 *   those given, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN used directly
 *   unless AWS_PROFILE is set, else the SDK's default chain (which loads the SDK). Writes,
 *   deletes, lists and https endpoints are the SDK's.
 */
import type { CompletedPart, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SmhError, isSmhError } from '../errors.js';
import { checkKey, checkRange, checkRangeInto, chunksOf, messageOf } from './common.js';
import { HashingTransform, hashBuffer, isBlobKey, md5Base64 } from './hash.js';
import { LocalBlobStore } from './local-store.js';
import { LeanGetter, Unsupported, type SimpleAnswer } from './s3-get.js';
import type { AwsCredentials } from './sigv4.js';
import { EMPTY_BLOB_KEY, MARKER_NAME, type BlobInfo, type BlobStore } from './types.js';

const MiB = 1024 * 1024;

type Sdk = typeof import('@aws-sdk/client-s3');
let sdkModule: Sdk | undefined;
/**
 * The AWS SDK, loaded on first use: a mount that only reads from an http endpoint never needs it
 * (~7 MiB of heap, 12 % of a read's JavaScript allocation). A runtime require, which esbuild
 * leaves alone, so the CLI bundle keeps it lazy too (the package stays outside the bundle).
 */
function sdk(): Sdk {
  return (sdkModule ??= createRequire(import.meta.url)('@aws-sdk/client-s3') as Sdk);
}

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix; a trailing '/' is added when missing ('' = bucket root). */
  prefix?: string;
  /** e.g. http://127.0.0.1:9000 for MinIO; omitted for AWS. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing (http://host/bucket/key), needed by MinIO and s3rver. */
  forcePathStyle?: boolean;
  /** Explicit credentials (tests); otherwise the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Blobs larger than this use multipart upload (default 16 MiB). */
  multipartThreshold?: number;
  /** Multipart part size (default 8 MiB; S3's minimum is 5 MiB). */
  partSize?: number;
  /** Parts uploaded concurrently (default 4). */
  partConcurrency?: number;
  /** SDK attempts per request (default 3). */
  maxAttempts?: number;
  /**
   * Deadline of one ranged GET, SDK retries and body included: `readTimeoutMs` plus one second
   * per MiB asked for (default 10 s, so a 1 MiB page gets 11 s). A hung endpoint then fails the
   * attempt in bounded time and the page cache's own retries take over (B4), well inside the
   * mount's 120 s read timeout.
   */
  readTimeoutMs?: number;
  /** Where putStream spools bodies to learn their hash before uploading (default os.tmpdir()). */
  spoolDir?: string;
  /** Keys per ListObjects page (default 1000, the S3 maximum). */
  listPageSize?: number;
  /** Ranged reads from an http endpoint without the SDK's body stream (default true; s3-get.ts). */
  leanGets?: boolean;
}

export class S3BlobStore implements BlobStore {
  readonly description: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly endpoint: string | undefined;
  /** The SDK client, made (and the SDK loaded) on first use: see `client`. */
  #client: S3Client | undefined;
  readonly #clientConfig: S3ClientConfig;
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #spoolDir: string;
  readonly #listPageSize: number;
  readonly #readTimeoutMs: number;
  /** Ranged GETs of up to 8 MiB: per-request cost dominates smaller ones (page-cache.ts). */
  readonly readRequestBytes = 8 * MiB;
  /** The SDK-less reader for http endpoints; dropped for good once it meets what it cannot do. */
  #lean: LeanGetter | undefined;
  /** Test hook: every ranged GET (either way) as it starts. */
  onRangedGet: ((offset: number, length: number) => void) | undefined;

  constructor(opts: S3BlobStoreOptions) {
    if (!opts.bucket) throw new SmhError('InvalidArgument', 's3 blob store: a bucket name is required');
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix ?? '');
    this.endpoint = opts.endpoint;
    this.description = `s3://${this.bucket}/${this.prefix}${opts.endpoint ? ` at ${opts.endpoint}` : ''}`;
    this.#multipartThreshold = opts.multipartThreshold ?? 16 * MiB;
    this.#partSize = opts.partSize ?? 8 * MiB;
    this.#partConcurrency = opts.partConcurrency ?? 4;
    this.#spoolDir = opts.spoolDir ?? tmpdir();
    this.#listPageSize = opts.listPageSize ?? 1000;
    this.#readTimeoutMs = opts.readTimeoutMs ?? 10_000;
    const region = opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (opts.endpoint ? 'us-east-1' : undefined);
    this.#clientConfig = {
      ...(region !== undefined ? { region } : {}),
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      maxAttempts: opts.maxAttempts ?? 3,
      // The aws-chunked trap, see the module comment.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Fail instead of hanging on a dead endpoint or a stalled connection.
      requestHandler: { connectionTimeout: 5000, socketTimeout: 60_000 },
    };
    if ((opts.leanGets ?? true) && opts.endpoint?.startsWith('http:') && region !== undefined) {
      this.#lean = new LeanGetter({
        endpoint: new URL(opts.endpoint),
        bucket: this.bucket,
        forcePathStyle: opts.forcePathStyle ?? false,
        credentials: leanCredentials(opts.credentials, () => this.client),
        region,
      });
    }
  }

  /**
   * The SDK client, made on first use (writes, deletes, lists, https endpoints, and what the lean
   * reader hands over): loading the SDK is what a read-only mount of an http endpoint avoids.
   */
  get client(): S3Client {
    return (this.#client ??= new (sdk().S3Client)(this.#clientConfig));
  }

  /** Whether the SDK client has been made (tests: a read-only mount never makes it). */
  get sdkLoaded(): boolean {
    return this.#client !== undefined;
  }

  objectKey(key: string): string {
    return this.prefix + key;
  }

  /**
   * Verify the bucket is reachable with the configured credentials (HeadBucket), within
   * `timeoutMs`. Throws a one-line SmhError('BlobUnavailable') that says what is wrong.
   */
  async check(timeoutMs = 5000): Promise<void> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(new SmhError('BlobUnavailable', `${this.#where()}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      // The race also covers credential resolution, which the abort signal does not reach.
      const viaSdk = async (): Promise<void> => {
        await this.client.send(new (sdk().HeadBucketCommand)({ Bucket: this.bucket }), { abortSignal: ac.signal });
      };
      // The lean try gets half the time: a silent endpoint still fails within `timeoutMs`.
      await Promise.race([this.#small('HEAD', undefined, timeoutMs / 2, () => undefined, viaSdk, ac.signal), timeout]);
    } catch (e) {
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', this.#explain(e), undefined, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A small request at start (HEAD of the bucket or an object, GET of the owner marker) through
   * the lean reader when there is one, so that a mount that only reads never loads the SDK; the
   * SDK (`viaSdk`, with its retries) when there is none, or when the lean try got no usable
   * answer: Unsupported, a failed connection, no answer within `leanMs`, a 5xx. Any other
   * answer is final: 2xx goes to `fromAnswer`, the rest is thrown as the SDK would throw it
   * (`name`, `$metadata.httpStatusCode`: what the callers test). `outer` aborting ends it all.
   */
  async #small<T>(
    method: 'GET' | 'HEAD',
    objectKey: string | undefined,
    leanMs: number,
    fromAnswer: (a: SimpleAnswer) => T,
    viaSdk: () => Promise<T>,
    outer?: AbortSignal,
  ): Promise<T> {
    const lean = this.#lean;
    if (lean) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), leanMs);
      const onOuter = (): void => ac.abort();
      outer?.addEventListener('abort', onOuter, { once: true });
      let answer: SimpleAnswer | undefined;
      try {
        answer = await lean.simple(method, objectKey, ac.signal);
      } catch (e) {
        if (outer?.aborted) throw e;
      } finally {
        clearTimeout(timer);
        outer?.removeEventListener('abort', onOuter);
      }
      if (answer && answer.status < 500) {
        if (answer.status >= 200 && answer.status < 300) return fromAnswer(answer);
        throw sdkShapedError(answer);
      }
    }
    return viaSdk();
  }

  #where(): string {
    return `s3 bucket "${this.bucket}"${this.endpoint ? ` at ${this.endpoint}` : ''}`;
  }

  #explain(e: unknown): string {
    const status = httpStatus(e);
    const name = errName(e);
    if (status === 404 || name === 'NoSuchBucket' || name === 'NotFound') return `${this.#where()} does not exist`;
    if (status === 403 || status === 401 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden/.test(name ?? '')) {
      return `${this.#where()}: access denied (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)`;
    }
    if (name === 'CredentialsProviderError' || /credential/i.test(messageOf(e))) {
      return `${this.#where()}: no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)`;
    }
    if (/region is missing/i.test(messageOf(e))) return `${this.#where()}: no region configured (use --s3-region or AWS_REGION)`;
    if (status === 301 || name === 'PermanentRedirect') return `${this.#where()} is in another region (use --s3-region)`;
    return `${this.#where()}: cannot reach it: ${oneLine(messageOf(e)) || name || 'unknown error'}`;
  }

  async putFile(key: string, path: string, size: number, onProgress?: (storedBytes: number) => void): Promise<void> {
    checkKey(key);
    if (!Number.isSafeInteger(size) || size < 0) throw new SmhError('InvalidArgument', `bad blob size ${size}`, key);
    if (key === EMPTY_BLOB_KEY) return; // stores need not hold the empty blob
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new SmhError('InvalidArgument', `cannot read staged file ${path}: ${messageOf(e)}`, key, { cause: e });
    }
    try {
      const st = await fh.stat();
      if (st.size !== size) throw new SmhError('InvalidArgument', `staged file ${path} has ${st.size} bytes, expected ${size}`, key);
      if ((await this.head(key))?.size === size) return; // content addressing: already stored
      if (size <= this.#multipartThreshold) {
        const body = await readExactly(fh, 0, size);
        await this.#putObject(key, body);
        onProgress?.(size);
      } else {
        await this.#putMultipart(key, fh, size, onProgress);
        await this.#verifyStored(key, size); // one HEAD is nothing next to ≥ 16 MiB of parts
      }
    } catch (e) {
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', `cannot upload blob ${key} to ${this.description}: ${oneLine(messageOf(e))}`, key, { cause: e });
    } finally {
      await fh.close();
    }
  }

  async putStream(body: Readable | Buffer): Promise<BlobInfo> {
    if (Buffer.isBuffer(body) && body.length <= this.#multipartThreshold) {
      const { sha256: key, size } = hashBuffer(body);
      if (key === EMPTY_BLOB_KEY) return { key, size };
      if ((await this.head(key))?.size !== size) {
        try {
          await this.#putObject(key, body);
        } catch (e) {
          if (isSmhError(e)) throw e;
          throw new SmhError('BlobUnavailable', `cannot upload blob ${key} to ${this.description}: ${oneLine(messageOf(e))}`, key, { cause: e });
        }
      }
      return { key, size };
    }
    // The key is the hash of the content, known only at the end: spool to a local file first.
    const spool = join(this.#spoolDir, `smhfs-s3-spool-${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    try {
      const hasher = new HashingTransform({ md5: false }); // parts carry their own MD5s
      await pipeline(async function* () {
        yield* chunksOf(body);
      }, hasher, createWriteStream(spool, { flags: 'wx' }));
      const { sha256: key, size } = hasher.digest();
      await this.putFile(key, spool, size);
      return { key, size };
    } finally {
      await rm(spool, { force: true });
    }
  }

  async #putObject(key: string, body: Buffer): Promise<void> {
    await this.client.send(
      new (sdk().PutObjectCommand)({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: body,
        ContentLength: body.length,
        ContentMD5: md5Base64(body),
        ContentType: 'application/octet-stream',
      }),
    );
  }

  async #putMultipart(key: string, fh: FileHandle, size: number, onProgress?: (storedBytes: number) => void): Promise<void> {
    // ≤ 10,000 parts (S3's limit): grow the part size, in whole MiB, for huge blobs.
    const partSize = Math.max(this.#partSize, Math.ceil(size / 10_000 / MiB) * MiB);
    const count = Math.ceil(size / partSize);
    const Key = this.objectKey(key);
    const created = await this.client.send(
      new (sdk().CreateMultipartUploadCommand)({ Bucket: this.bucket, Key, ContentType: 'application/octet-stream' }),
    );
    const UploadId = created.UploadId;
    if (!UploadId) throw new SmhError('BlobUnavailable', `${this.description}: CreateMultipartUpload returned no UploadId`, key);
    const parts: CompletedPart[] = new Array(count);
    let next = 0;
    let failed = false;
    let uploaded = 0;
    const worker = async (): Promise<void> => {
      while (!failed && next < count) {
        const i = next++;
        const start = i * partSize;
        const body = await readExactly(fh, start, Math.min(partSize, size - start));
        const res = await this.client.send(
          new (sdk().UploadPartCommand)({
            Bucket: this.bucket,
            Key,
            UploadId,
            PartNumber: i + 1,
            Body: body,
            ContentLength: body.length,
            ContentMD5: md5Base64(body),
          }),
        );
        if (!res.ETag) throw new SmhError('BlobUnavailable', `${this.description}: part ${i + 1} of ${key} got no ETag`, key);
        parts[i] = { PartNumber: i + 1, ETag: res.ETag };
        uploaded += body.length;
        onProgress?.(uploaded);
      }
    };
    try {
      const workers = Array.from({ length: Math.min(this.#partConcurrency, count) }, () =>
        worker().catch((e: unknown) => {
          failed = true;
          throw e;
        }),
      );
      const results = await Promise.allSettled(workers);
      const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (bad) throw bad.reason;
      await this.client.send(
        new (sdk().CompleteMultipartUploadCommand)({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (e) {
      // Best effort: a dangling upload only costs storage until the bucket's lifecycle rule runs.
      await this.client.send(new (sdk().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key, UploadId })).catch(() => undefined);
      throw e;
    }
  }

  async #verifyStored(key: string, size: number): Promise<void> {
    const got = await this.head(key);
    if (got?.size !== size) {
      throw new SmhError('BlobUnavailable', `${this.description}: stored ${key} has ${got?.size ?? 'no'} bytes, expected ${size}`, key);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    checkKey(key);
    checkRange(key, offset, length);
    if (key === EMPTY_BLOB_KEY) return Buffer.alloc(0);
    if (length === 0) {
      if (!(await this.head(key))) throw new SmhError('BlobMissing', `blob ${key} is not in ${this.description}`, key);
      return Buffer.alloc(0);
    }
    let out: Buffer | undefined;
    const got = await this.#ranged(key, offset, length, (want) => {
      out = Buffer.allocUnsafe(want);
      return [out];
    });
    return got === 0 || !out ? Buffer.alloc(0) : out;
  }

  /**
   * One ranged GET filling `targets` in order (the page cache's coalesced reads): exactly
   * sum(target lengths) bytes from `offset`, or BlobUnavailable/BlobMissing — a blob that ends
   * before the last target is full is an error here, not a short read. `onBytes` (optional) is
   * told of each run of bytes where it landed in the targets, in order (RangeIntoStore).
   */
  async getRangeInto(key: string, offset: number, targets: Buffer[], onBytes?: (landed: Buffer) => void): Promise<void> {
    const total = checkRangeInto(key, offset, targets);
    if (total === 0) return;
    const got = await this.#ranged(
      key,
      offset,
      total,
      (want) => {
        if (want !== total) throw new SmhError('BlobUnavailable', `blob ${key} has only ${want} of ${total} bytes at ${offset}`, key);
        return targets;
      },
      onBytes,
    );
    if (got !== total) throw new SmhError('BlobUnavailable', `short body for ${key}: ${got} of ${total} bytes`, key);
  }

  /**
   * GET `length` bytes at `offset`; `sink(want)` — called once the server said how many bytes
   * there are (min(length, size - offset)) — returns the buffers to fill, in order. Returns the
   * bytes written (0 when the offset is at or past the end). Never trusts the server: the
   * Content-Range start is checked, bytes past the range are not read, a short body is an error.
   */
  async #ranged(key: string, offset: number, length: number, sink: (want: number) => Buffer[], onBytes?: (landed: Buffer) => void): Promise<number> {
    this.onRangedGet?.(offset, length);
    // One deadline for the whole request (SDK retries, headers and body): see readTimeoutMs.
    const deadlineMs = this.#readTimeoutMs + Math.ceil(length / MiB) * 1000;
    if (this.#lean) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), deadlineMs);
      try {
        const r = await this.#lean.get(this.objectKey(key), offset, length, sink, ac.signal, onBytes);
        if (r.kind === 'missing') throw new SmhError('BlobMissing', `blob ${key} is not in ${this.description}`, key);
        return r.kind === 'past-end' ? 0 : r.got;
      } catch (e) {
        if (isSmhError(e)) throw e;
        if (!(e instanceof Unsupported)) {
          const why = ac.signal.aborted ? `no complete answer within ${deadlineMs} ms` : oneLine(messageOf(e));
          throw new SmhError('BlobUnavailable', `cannot read blob ${key} from ${this.description}: ${why}`, key, { cause: e });
        }
        // A server this reader cannot follow (chunked bodies…): the SDK from now on.
        this.#lean.close();
        this.#lean = undefined;
      } finally {
        clearTimeout(timer);
      }
    }
    const ac = new AbortController();
    let body: Readable | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
      body?.destroy(new Error(`no complete answer within ${deadlineMs} ms`));
    }, deadlineMs);
    const failure = (e: unknown): SmhError => {
      const why = timedOut ? `no complete answer within ${deadlineMs} ms` : oneLine(messageOf(e));
      return new SmhError('BlobUnavailable', `cannot read blob ${key} from ${this.description}: ${why}`, key, { cause: e });
    };
    try {
      let res;
      try {
        res = await this.client.send(
          new (sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key), Range: `bytes=${offset}-${offset + length - 1}` }),
          { abortSignal: ac.signal },
        );
      } catch (e) {
        const status = httpStatus(e);
        const name = errName(e);
        if (status === 404 || name === 'NoSuchKey') throw new SmhError('BlobMissing', `blob ${key} is not in ${this.description}`, key);
        if (status === 416 || name === 'InvalidRange') {
          sink(0); // offset at or past the end: nothing (getRangeInto refuses that)
          return 0;
        }
        throw failure(e);
      }
      body = res.Body as Readable | undefined;
      if (timedOut) body?.destroy();
      // Where the body starts and how big the object is, per the server.
      let start = 0;
      let total: number | undefined;
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.ContentRange ?? '');
      if (m) {
        start = Number(m[1]);
        if (m[3] !== '*') total = Number(m[3]);
      } else if (res.ContentLength !== undefined) {
        total = res.ContentLength; // a 200: the server ignored the range and sends it all
      }
      if (start > offset || total === undefined) {
        throw new SmhError('BlobUnavailable', `unusable range answer for ${key}: ${res.ContentRange ?? 'no Content-Range'}`, key);
      }
      const want = Math.max(0, Math.min(length, total - offset));
      const targets = sink(want);
      let skip = offset - start;
      let got = 0;
      let t = 0; // current target
      let tPos = 0; // bytes written into it
      if (want > 0 && body) {
        // 'data' events, not `for await`: an async iterator costs a promise round trip per
        // 64 KiB chunk, which showed in the mount's profile of a cold read.
        const stream = body;
        await new Promise<void>((resolve, reject) => {
          const onData = (c: Buffer): void => {
            let chunk = c;
            if (skip > 0) {
              if (chunk.length <= skip) {
                skip -= chunk.length;
                return;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            let cPos = 0;
            while (cPos < chunk.length && got < want) {
              const target = targets[t]!;
              const n = chunk.copy(target, tPos, cPos, Math.min(chunk.length, cPos + Math.min(target.length - tPos, want - got)));
              onBytes?.(target.subarray(tPos, tPos + n));
              cPos += n;
              tPos += n;
              got += n;
              if (tPos === target.length) {
                t++;
                tPos = 0;
              }
            }
            if (got === want) {
              // Anything past the range we asked for is ignored (s3rver may send the whole object).
              stream.off('data', onData);
              resolve();
            }
          };
          stream.on('data', onData);
          stream.once('end', () => resolve()); // short or not: checked below
          stream.once('close', () => resolve());
          stream.on('error', (e) => reject(failure(e))); // `on`: a late second error must not go unhandled
        });
      }
      if (timedOut) throw failure(undefined);
      if (got !== want) throw new SmhError('BlobUnavailable', `short body for ${key}: ${got} of ${want} bytes`, key);
      return got;
    } catch (e) {
      if (isSmhError(e)) throw e;
      throw failure(e);
    } finally {
      clearTimeout(timer);
      body?.destroy();
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    checkKey(key);
    if (key === EMPTY_BLOB_KEY) return { key, size: 0 };
    try {
      return await this.#small(
        'HEAD',
        this.objectKey(key),
        5000,
        (a) => ({ key, size: Number(a.headers.get('content-length') ?? 0) || 0 }),
        async () => {
          const res = await this.client.send(new (sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }));
          return { key, size: res.ContentLength ?? 0 };
        },
      );
    } catch (e) {
      if (httpStatus(e) === 404 || errName(e) === 'NotFound' || errName(e) === 'NoSuchKey') return undefined;
      throw new SmhError('BlobUnavailable', `cannot stat blob ${key} in ${this.description}: ${oneLine(messageOf(e))}`, key, { cause: e });
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    if (key === EMPTY_BLOB_KEY) return;
    try {
      await this.client.send(new (sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (e) {
      if (httpStatus(e) === 404) return;
      throw new SmhError('BlobUnavailable', `cannot delete blob ${key} from ${this.description}: ${oneLine(messageOf(e))}`, key, { cause: e });
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    // ListObjects (v1) paged by Marker = the last key seen. Without a delimiter that is exact, and
    // v1 is the listing every S3-compatible service implements. Not v2: s3rver builds v2
    // continuation tokens with DES, which OpenSSL 3 (Node ≥ 17) no longer offers, so any
    // truncated v2 page fails there with InternalError.
    let Marker: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.client.send(
          new (sdk().ListObjectsCommand)({ Bucket: this.bucket, Prefix: this.prefix, Marker, MaxKeys: this.#listPageSize }),
        );
      } catch (e) {
        throw new SmhError('BlobUnavailable', `cannot list ${this.description}: ${oneLine(messageOf(e))}`, undefined, { cause: e });
      }
      const contents = res.Contents ?? [];
      for (const o of contents) {
        const name = o.Key?.slice(this.prefix.length);
        // Only our own objects: anything else under the prefix is none of our business.
        if (name !== undefined && isBlobKey(name)) {
          yield { key: name, size: o.Size ?? 0, ...(o.LastModified ? { modifiedMs: o.LastModified.getTime() } : {}) };
        }
      }
      const last = res.NextMarker ?? contents.at(-1)?.Key;
      if (!res.IsTruncated || last === undefined || last === Marker) return;
      Marker = last;
    }
  }

  /** The owner marker (D1): the object `<prefix>smhfs-library.json` (not a blob key: never listed). */
  async readMarker(): Promise<string | undefined> {
    try {
      return await this.#small(
        'GET',
        this.prefix + MARKER_NAME,
        5000,
        (a) => a.body.toString('utf8'),
        async () => {
          const res = await this.client.send(new (sdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.prefix + MARKER_NAME }));
          return (await res.Body?.transformToString('utf8')) ?? '';
        },
      );
    } catch (e) {
      if (httpStatus(e) === 404 || errName(e) === 'NoSuchKey' || errName(e) === 'NotFound') return undefined;
      throw new SmhError('BlobUnavailable', `cannot read the owner marker of ${this.description}: ${oneLine(messageOf(e))}`, undefined, { cause: e });
    }
  }

  /**
   * Written with `If-None-Match: *` (a conditional write: AWS, MinIO and others refuse it with
   * 412 when the object exists), after a look first for services that ignore the condition.
   */
  async createMarker(text: string): Promise<boolean> {
    if ((await this.readMarker()) !== undefined) return false;
    const body = Buffer.from(text, 'utf8');
    try {
      await this.client.send(
        new (sdk().PutObjectCommand)({
          Bucket: this.bucket,
          Key: this.prefix + MARKER_NAME,
          Body: body,
          ContentLength: body.length,
          ContentMD5: md5Base64(body),
          ContentType: 'application/json',
          IfNoneMatch: '*',
        }),
      );
      return true;
    } catch (e) {
      if (httpStatus(e) === 412 || errName(e) === 'PreconditionFailed' || httpStatus(e) === 409) return false;
      throw new SmhError('BlobUnavailable', `cannot write the owner marker of ${this.description}: ${oneLine(messageOf(e))}`, undefined, { cause: e });
    }
  }

  /** No object at all under the prefix (blob, marker or anything else). */
  async isEmpty(): Promise<boolean> {
    try {
      const res = await this.client.send(new (sdk().ListObjectsCommand)({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }));
      return (res.Contents ?? []).length === 0;
    } catch (e) {
      throw new SmhError('BlobUnavailable', `cannot list ${this.description}: ${oneLine(messageOf(e))}`, undefined, { cause: e });
    }
  }

  async close(): Promise<void> {
    this.#lean?.close();
    this.#client?.destroy();
  }
}

export interface BlobsUrl {
  bucket: string;
  prefix: string;
}

/** Parse `s3://BUCKET[/PREFIX]`; throws SmhError('InvalidArgument') on anything else. */
export function parseBlobsUrl(url: string): BlobsUrl {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new SmhError('InvalidArgument', `--blobs: expected s3://BUCKET[/PREFIX], got "${url}"`, url);
  const bucket = m[1]!;
  // S3 bucket naming rules, relaxed to what MinIO/RGW/BOS/COS also accept (3–63, lowercase, digits, . -).
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new SmhError('InvalidArgument', `--blobs: "${bucket}" is not a valid bucket name`, url);
  }
  const prefix = normalizePrefix(m[2] ?? '');
  if (prefix.split('/').some((seg, i, all) => (seg === '' && i < all.length - 1) || seg === '.' || seg === '..')) {
    throw new SmhError('InvalidArgument', `--blobs: bad prefix "${m[2]}" (empty, '.' or '..' segment)`, url);
  }
  return { bucket, prefix };
}

export interface BlobStoreSpec {
  /** `s3://BUCKET/PREFIX`; undefined = the local directory store. */
  blobs?: string;
  /** The library's local blob directory (used when `blobs` is undefined). */
  localDir: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  /** Explicit credentials (tests); otherwise the default AWS provider chain. */
  s3Credentials?: S3BlobStoreOptions['credentials'];
}

/** The blob store a CLI/mount configuration asks for. Does no I/O beyond creating `localDir`. */
export function openBlobStore(spec: BlobStoreSpec): LocalBlobStore | S3BlobStore {
  if (spec.blobs === undefined || spec.blobs === '') return new LocalBlobStore(spec.localDir);
  const { bucket, prefix } = parseBlobsUrl(spec.blobs);
  return new S3BlobStore({
    bucket,
    prefix,
    ...(spec.s3Endpoint !== undefined ? { endpoint: spec.s3Endpoint } : {}),
    ...(spec.s3Region !== undefined ? { region: spec.s3Region } : {}),
    ...(spec.s3PathStyle !== undefined ? { forcePathStyle: spec.s3PathStyle } : {}),
    ...(spec.s3Credentials !== undefined ? { credentials: spec.s3Credentials } : {}),
  });
}

/** Run a store's reachability check when it has one (mount time: fail fast, never hang). */
export async function checkBlobStore(store: BlobStore, timeoutMs?: number): Promise<void> {
  const c = (store as { check?: (t?: number) => Promise<void> }).check;
  if (typeof c === 'function') await c.call(store, timeoutMs);
}

function normalizePrefix(p: string): string {
  const trimmed = p.replace(/^\/+/, '');
  return trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}

async function readExactly(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new SmhError('InvalidArgument', `staged file shrank while uploading (${got} of ${length} bytes at ${position})`);
    got += bytesRead;
  }
  return buf;
}

/**
 * Credentials for the lean reader: the ones given; else the environment's
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN), used directly unless AWS_PROFILE
 * is set (the SDK's default chain prefers the profile then); else the SDK's default chain, which
 * loads the SDK when first asked.
 */
function leanCredentials(given: AwsCredentials | undefined, client: () => S3Client): AwsCredentials | (() => Promise<AwsCredentials>) {
  if (given) return given;
  const env = process.env;
  const id = env['AWS_ACCESS_KEY_ID'];
  const secret = env['AWS_SECRET_ACCESS_KEY'];
  if (!env['AWS_PROFILE'] && id && secret) return { accessKeyId: id, secretAccessKey: secret, sessionToken: env['AWS_SESSION_TOKEN'] || undefined };
  return () => client().config.credentials();
}

/** Names the SDK gives errors without an XML body (HEAD answers have none). */
const STATUS_NAMES: Record<number, string> = { 301: 'PermanentRedirect', 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 412: 'PreconditionFailed' };

/** A non-2xx answer of the lean reader as the SDK throws it: `name` (S3's <Code>), `$metadata.httpStatusCode`. */
function sdkShapedError(a: SimpleAnswer): Error {
  const xml = a.body.toString('utf8');
  const name = /<Code>([^<]{1,100})<\/Code>/.exec(xml)?.[1] ?? STATUS_NAMES[a.status] ?? 'UnknownError';
  const e = new Error(/<Message>([^<]{1,500})<\/Message>/.exec(xml)?.[1] ?? name);
  e.name = name;
  return Object.assign(e, {
    $fault: a.status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: a.status, requestId: a.headers.get('x-amz-request-id') },
  });
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function errName(e: unknown): string | undefined {
  return (e as { name?: string; Code?: string } | undefined)?.Code ?? (e as { name?: string } | undefined)?.name;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
