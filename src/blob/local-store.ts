/**
 * (Over 600 lines because the kept descriptors serve the async reads, the synchronous reads and
 * the descriptors lent to the mount under one reference count and one sweep: split apart, each
 * part would reach into the others' state.)
 *
 * The default blob store: a local directory, content-addressed by SHA-256.
 *
 * Layout: `<dir>/ab/cd/<key>` where `ab` and `cd` are the key's first two byte pairs — two levels
 * of 256-way fan-out keep directories small (a million blobs ≈ 15 per leaf) without a database.
 * Writes go to `<dir>/.tmp/<pid>-<random>.tmp` (same file system, so rename is atomic), are
 * fsync'd, renamed into place, and the leaf directory is fsync'd so the rename itself is durable.
 * A crash therefore leaves either the complete blob or nothing under its key, plus perhaps a temp
 * file; temp files older than an hour (so never one a live writer is still filling) are removed
 * when a store is constructed (B6).
 *
 * `putFile` copies rather than hard-links the staged file: the mount keeps writing to its staging
 * file after a flush commits a version (the file is still open), and a hard link would let those
 * later writes change a blob whose key promises fixed bytes. The copy also re-hashes, so a caller
 * bug can never store bytes under the wrong key. `adoptFile` (the mount's commit, which hands over
 * a staging file it will not touch again) renames instead and trusts the key its caller computed
 * while the bytes were written; the mount tests check those keys against the bytes.
 *
 * Reads keep up to 64 blob files open (an LRU of descriptors with their sizes): a page read is then
 * one positioned read instead of open + fstat + read + close on the thread pool. Blobs never
 * change, so a descriptor stays valid; one whose blob is deleted is closed (at once, or when the
 * last read using it ends). Deletions by other processes (the CLI, `smhfs serve`, another mount
 * on the same library) are noticed by a sweep every SWEEP_MS that closes descriptors whose file
 * has no name any more (st_nlink 0): an open descriptor would keep the deleted bytes on disk
 * (D7: the space comes back).
 */
import { randomBytes } from 'node:crypto';
import { fstatSync, mkdirSync, readdirSync, readFile as readFileCallback, readvSync, statSync, unlinkSync } from 'node:fs';
import { link, mkdir, open, opendir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { SmhError, isSmhError } from '../errors.js';
import { checkKey, checkRange, checkRangeInto, chunksOf, errno, expectedLength, messageOf } from './common.js';
import { Hasher, isBlobKey, type ContentHash } from './hash.js';
import { EMPTY_BLOB_KEY, MARKER_NAME, type BlobFile, type BlobInfo, type BlobStore } from './types.js';

const TEMP_DIR = '.tmp';
const READ_ONLY_ERRNOS = new Set(['EROFS', 'EACCES', 'EPERM']);
const COPY_CHUNK = 1 << 20;
/** Temp files younger than this may belong to a live writer (another process on the same library). */
export const STALE_TEMP_AGE_MS = 60 * 60 * 1000;

export interface LocalBlobStoreOptions {
  /** Override the 1 h stale-temp threshold (tests). */
  staleTempAgeMs?: number;
  /**
   * false: create nothing and clean nothing at construction (a look at a folder before deciding
   * to use it: `smhfs init` checks a store before the library exists). Default true.
   */
  prepare?: boolean;
}

/** An open blob file shared by reads; closed once evicted and no read uses it. */
class OpenBlob {
  refs = 0;
  evicted = false;
  constructor(
    readonly fh: FileHandle,
    readonly size: number,
  ) {}

  release(): void {
    this.refs--;
    this.#closeIfDone();
  }

  evict(): void {
    this.evicted = true;
    this.#closeIfDone();
  }

  #closeIfDone(): void {
    if (this.evicted && this.refs === 0) void this.fh.close().catch(() => undefined);
  }
}

function blobFile(blob: OpenBlob): BlobFile {
  let released = false;
  return {
    fd: blob.fh.fd,
    size: blob.size,
    release: () => {
      if (released) return;
      released = true;
      blob.release();
    },
  };
}

const OPEN_BLOBS = 64;
/** How often kept descriptors are checked for blobs deleted by other processes. */
export const SWEEP_MS = 2000;

export class LocalBlobStore implements BlobStore {
  readonly description: string;
  readonly dir: string;
  readonly #tmpDir: string;
  /** How many stale temp files the constructor removed (for logs and tests). */
  readonly cleanedTempFiles: number;
  readonly #open = new LRUCache<string, OpenBlob>({ max: OPEN_BLOBS, dispose: (b) => b.evict() });
  /** Opens in progress, so concurrent first reads of a blob open it once. */
  readonly #opening = new Map<string, Promise<OpenBlob>>();
  /** Runs while descriptors are kept (unref'd: never keeps a process alive). */
  #sweeper: NodeJS.Timeout | undefined;

  constructor(dir: string, options: LocalBlobStoreOptions = {}) {
    this.dir = dir;
    this.description = `local:${dir}`;
    this.#tmpDir = join(dir, TEMP_DIR);
    if (options.prepare === false) {
      this.cleanedTempFiles = 0;
      return;
    }
    // Synchronous on purpose: construction happens once at startup, and a store that is usable as
    // soon as `new` returns is simpler for every caller than an async factory.
    try {
      mkdirSync(this.#tmpDir, { recursive: true });
    } catch (e) {
      // A read-only library can still be read; writes will fail with a clear error then.
      if (!READ_ONLY_ERRNOS.has(errno(e) ?? '')) throw e;
    }
    this.cleanedTempFiles = this.cleanStaleTemps(options.staleTempAgeMs ?? STALE_TEMP_AGE_MS);
  }

  /** Remove temp files last modified more than `maxAgeMs` ago; returns how many. */
  cleanStaleTemps(maxAgeMs: number = STALE_TEMP_AGE_MS): number {
    const cutoff = Date.now() - maxAgeMs;
    let removed = 0;
    let names: string[];
    try {
      names = readdirSync(this.#tmpDir);
    } catch (e) {
      if (errno(e) === 'ENOENT' || READ_ONLY_ERRNOS.has(errno(e) ?? '')) return 0;
      throw e;
    }
    for (const name of names) {
      const p = join(this.#tmpDir, name);
      try {
        if (statSync(p).mtimeMs <= cutoff) {
          unlinkSync(p);
          removed++;
        }
      } catch (e) {
        // ENOENT: raced with another cleaner. Read-only: nothing to clean with, and nothing to fear.
        if (errno(e) !== 'ENOENT' && !READ_ONLY_ERRNOS.has(errno(e) ?? '')) throw e;
      }
    }
    return removed;
  }

  /** Where a key lives. */
  pathOf(key: string): string {
    return join(this.dir, key.slice(0, 2), key.slice(2, 4), key);
  }

  async putFile(key: string, path: string, size: number, onProgress?: (storedBytes: number) => void): Promise<void> {
    checkKey(key);
    if (!Number.isSafeInteger(size) || size < 0) throw new SmhError('InvalidArgument', `bad blob size ${size}`, key);
    if (key === EMPTY_BLOB_KEY) {
      // Stores need not hold the empty blob (types.ts); just make sure the caller meant it.
      const st = await stat(path);
      if (st.size !== 0) throw new SmhError('InvalidArgument', `${path} is not empty but was given the empty blob key`, key);
      return;
    }
    const src = await open(path, 'r').catch((e: unknown) => {
      throw new SmhError('InvalidArgument', `cannot read staged file ${path}: ${messageOf(e)}`, key, { cause: e });
    });
    try {
      const st = await src.stat();
      if (st.size !== size) {
        throw new SmhError('InvalidArgument', `staged file ${path} has ${st.size} bytes, expected ${size}`, key);
      }
      if ((await this.head(key))?.size === size) return; // content addressing: already there
      await this.#storeFrom(onProgress ? counted(readChunks(src), onProgress) : readChunks(src), key, size);
    } finally {
      await src.close();
    }
  }

  async adoptFile(key: string, path: string, size: number): Promise<void> {
    try {
      await this.#adopt(key, path, size);
    } catch (e) {
      if (isNoSpace(e)) throw new SmhError('InsufficientStorage', `local blob store ${this.dir}: the disk is full`, key, { cause: e });
      throw e;
    }
  }

  async #adopt(key: string, path: string, size: number): Promise<void> {
    checkKey(key);
    if (key === EMPTY_BLOB_KEY) {
      await unlink(path);
      return;
    }
    const fh = await open(path, 'r+');
    try {
      const st = await fh.stat();
      if (st.size !== size) throw new SmhError('InvalidArgument', `staged file ${path} has ${st.size} bytes, expected ${size}`, key);
      await fh.sync(); // the bytes are on disk before the name can point at them
    } finally {
      await fh.close();
    }
    const final = this.pathOf(key);
    if ((await this.head(key))?.size === size) {
      await unlink(path); // content addressing: already stored
      return;
    }
    await this.#ensureLeafDir(final);
    await rename(path, final); // EXDEV when the staging folder is on another filesystem: caller copies
    await fsyncDir(join(final, '..'));
  }

  async putStream(body: Readable | Buffer): Promise<BlobInfo> {
    const { sha256: key, size } = await this.#storeFrom(chunksOf(body));
    return { key, size };
  }

  /**
   * Write `source` to a temp file while hashing, fsync, check the expected key/size if given,
   * then install under the hash. Returns the hash.
   */
  async #storeFrom(source: AsyncIterable<Buffer>, wantKey?: string, wantSize?: number): Promise<ContentHash> {
    const tmp = join(this.#tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, 'wx', 0o644);
      const hasher = new Hasher({ md5: false }); // the key is all a local store needs
      for await (const chunk of source) {
        // Hash on this thread while the write runs on the libuv pool.
        const written = writeAll(fh, chunk);
        hasher.update(chunk);
        await written;
      }
      const hash = hasher.digest();
      if (wantKey !== undefined && (hash.sha256 !== wantKey || hash.size !== wantSize)) {
        throw new SmhError('InvalidArgument', `content does not match blob key (got ${hash.sha256}, ${hash.size} bytes)`, wantKey);
      }
      await fh.sync(); // the bytes are on disk before the name can point at them
      await fh.close();
      fh = undefined;
      if (hash.sha256 === EMPTY_BLOB_KEY) {
        await unlink(tmp);
        return hash;
      }
      const final = this.pathOf(hash.sha256);
      if ((await this.head(hash.sha256))?.size === hash.size) {
        await unlink(tmp); // someone stored the same bytes meanwhile
        return hash;
      }
      await this.#ensureLeafDir(final);
      await rename(tmp, final); // atomic; replacing an equal blob is harmless
      await fsyncDir(join(final, '..'));
      return hash;
    } catch (e) {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      if (isSmhError(e)) throw e;
      if (isNoSpace(e)) throw new SmhError('InsufficientStorage', `local blob store ${this.dir}: the disk is full`, wantKey, { cause: e });
      throw new SmhError('BlobUnavailable', `local blob store ${this.dir}: cannot store blob: ${messageOf(e)}`, wantKey, { cause: e });
    }
  }

  async #ensureLeafDir(final: string): Promise<void> {
    const leaf = join(final, '..');
    const created = await mkdir(leaf, { recursive: true });
    if (created !== undefined) {
      // New fan-out directories must themselves be durable entries of their parents.
      await fsyncDir(join(leaf, '..'));
      await fsyncDir(this.dir);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    checkKey(key);
    checkRange(key, offset, length);
    if (key === EMPTY_BLOB_KEY) return Buffer.alloc(0);
    const blob = await this.#acquire(key);
    try {
      const want = expectedLength(blob.size, offset, length);
      const buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await blob.fh.read(buf, got, want - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got !== want) throw new SmhError('BlobUnavailable', `blob ${key} ended early (${got} of ${want} bytes)`, key);
      return buf;
    } catch (e) {
      this.#forget(key, blob); // a failing descriptor is not kept for the next read
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', `cannot read blob ${key}: ${messageOf(e)}`, key, { cause: e });
    } finally {
      blob.release();
    }
  }

  /**
   * Fill `targets` in order with the bytes from `offset` (the page cache's pooled page buffers):
   * one `readv` per pass straight into them, no buffer of our own. Exactly sum(lengths) bytes or
   * an error, as for the S3 store; a blob that ends early is BlobUnavailable.
   */
  async getRangeInto(key: string, offset: number, targets: Buffer[]): Promise<void> {
    const total = checkRangeInto(key, offset, targets);
    if (total === 0) return;
    const blob = await this.#acquire(key);
    try {
      if (offset + total > blob.size) {
        throw new SmhError('BlobUnavailable', `blob ${key} has only ${Math.max(0, blob.size - offset)} of ${total} bytes at ${offset}`, key);
      }
      let done = 0;
      let t = 0; // first target not yet full
      let within = 0; // bytes already in it
      while (done < total) {
        const bufs = [targets[t]!.subarray(within), ...targets.slice(t + 1)];
        const { bytesRead } = await blob.fh.readv(bufs, offset + done);
        if (bytesRead === 0) throw new SmhError('BlobUnavailable', `blob ${key} ended early (${done} of ${total} bytes at ${offset})`, key);
        done += bytesRead;
        within += bytesRead;
        while (t < targets.length && within >= targets[t]!.length) within -= targets[t++]!.length;
      }
    } catch (e) {
      this.#forget(key, blob);
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', `cannot read blob ${key}: ${messageOf(e)}`, key, { cause: e });
    } finally {
      blob.release();
    }
  }

  /**
   * `getRangeInto` done synchronously, when the blob's descriptor is already open (the page
   * cache's random reads: a pread that the kernel's page cache answers costs a few µs, the
   * thread-pool round trip of the async path several times that). Returns false, having read
   * nothing, when the descriptor is not open (the async path opens it); throws as getRangeInto.
   */
  getRangeIntoSync(key: string, offset: number, targets: Buffer[]): boolean {
    const total = checkRangeInto(key, offset, targets);
    const blob = this.#open.get(key);
    if (!blob || blob.evicted) return false;
    if (total === 0) return true;
    blob.refs++;
    try {
      if (offset + total > blob.size) {
        throw new SmhError('BlobUnavailable', `blob ${key} has only ${Math.max(0, blob.size - offset)} of ${total} bytes at ${offset}`, key);
      }
      let done = 0;
      while (done < total) {
        const n = readvSync(blob.fh.fd, sliceFrom(targets, done), offset + done);
        if (n === 0) throw new SmhError('BlobUnavailable', `blob ${key} ended early (${done} of ${total} bytes at ${offset})`, key);
        done += n;
      }
      return true;
    } catch (e) {
      this.#forget(key, blob);
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', `cannot read blob ${key}: ${messageOf(e)}`, key, { cause: e });
    } finally {
      blob.release();
    }
  }

  /**
   * The blob's kept descriptor, for a reader that reads the file itself (the mount splicing it
   * into the kernel's pipe, SPEC-silent choice in native-notes/blobs.md): counted as in use, so
   * never closed, until `release()`. Undefined, having opened nothing, when the descriptor is not
   * open yet — `openFile` opens it. The blob file holds exactly the blob's bytes.
   */
  fileSync(key: string): BlobFile | undefined {
    const blob = this.#open.get(key);
    if (!blob || blob.evicted) return undefined;
    blob.refs++;
    return blobFile(blob);
  }

  /** `fileSync`, opening the descriptor when it is not open (BlobMissing when the blob is gone). */
  async openFile(key: string): Promise<BlobFile> {
    return blobFile(await this.#acquire(key));
  }

  /** An open descriptor on the blob, counted as in use until `release()`. */
  async #acquire(key: string): Promise<OpenBlob> {
    for (;;) {
      let blob = this.#open.get(key);
      if (!blob) {
        let opening = this.#opening.get(key);
        if (!opening) {
          opening = this.#openBlob(key).finally(() => this.#opening.delete(key));
          this.#opening.set(key, opening);
        }
        blob = await opening;
      }
      // Evicted (and so closed) between its open and now, by other reads' opens: open again.
      if (blob.evicted) continue;
      blob.refs++;
      return blob;
    }
  }

  async #openBlob(key: string): Promise<OpenBlob> {
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(key), 'r');
    } catch (e) {
      if (errno(e) === 'ENOENT') throw new SmhError('BlobMissing', `blob ${key} is not in ${this.description}`, key);
      throw new SmhError('BlobUnavailable', `cannot open blob ${key}: ${messageOf(e)}`, key, { cause: e });
    }
    try {
      const blob = new OpenBlob(fh, (await fh.stat()).size);
      this.#open.set(key, blob);
      this.#sweeper ??= setInterval(() => this.sweepDeleted(), SWEEP_MS).unref();
      return blob;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw new SmhError('BlobUnavailable', `cannot stat blob ${key}: ${messageOf(e)}`, key, { cause: e });
    }
  }

  /**
   * Close kept descriptors whose blob was deleted (by any process); returns how many. Reads in
   * progress finish on their descriptor first, and the next read of the key opens it again.
   */
  sweepDeleted(): number {
    const gone = [...this.#open.entries()].filter(([, blob]) => {
      try {
        return fstatSync(blob.fh.fd).nlink === 0;
      } catch {
        return true; // a descriptor that cannot be stat'ed is no use either
      }
    });
    for (const [key, blob] of gone) this.#forget(key, blob);
    const closed = gone.length;
    if (this.#open.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
    return closed;
  }

  #forget(key: string, blob?: OpenBlob): void {
    const cached = this.#open.peek(key);
    if (cached && (blob === undefined || cached === blob)) this.#open.delete(key); // dispose evicts it
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    checkKey(key);
    if (key === EMPTY_BLOB_KEY) return { key, size: 0 };
    try {
      const st = await stat(this.pathOf(key));
      return { key, size: st.size };
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw new SmhError('BlobUnavailable', `cannot stat blob ${key}: ${messageOf(e)}`, key, { cause: e });
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    if (key === EMPTY_BLOB_KEY) return;
    this.#forget(key);
    try {
      await unlink(this.pathOf(key));
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw new SmhError('BlobUnavailable', `cannot delete blob ${key}: ${messageOf(e)}`, key, { cause: e });
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    // Walk only well-formed fan-out names; `.tmp` and anything foreign are skipped.
    for await (const l1 of await opendir(this.dir)) {
      if (!l1.isDirectory() || !/^[0-9a-f]{2}$/.test(l1.name)) continue;
      const d1 = join(this.dir, l1.name);
      for await (const l2 of await opendir(d1)) {
        if (!l2.isDirectory() || !/^[0-9a-f]{2}$/.test(l2.name)) continue;
        const d2 = join(d1, l2.name);
        for await (const f of await opendir(d2)) {
          if (!f.isFile() || !isBlobKey(f.name) || !f.name.startsWith(l1.name + l2.name)) continue;
          try {
            const st = await stat(join(d2, f.name));
            yield { key: f.name, size: st.size, modifiedMs: st.mtimeMs };
          } catch (e) {
            if (errno(e) !== 'ENOENT') throw e; // deleted while listing: skip
          }
        }
      }
    }
  }

  /** The owner marker (D1): `<dir>/smhfs-library.json`, outside the fan-out folders `list` walks. */
  async readMarker(): Promise<string | undefined> {
    try {
      // fs.readFile, not node:fs/promises': every command reads the marker, and that module
      // (~4 ms of CPU to load) is otherwise needed only by commands that store or read blobs.
      return await new Promise<string>((resolve, reject) =>
        readFileCallback(join(this.dir, MARKER_NAME), 'utf8', (e, text) => (e ? reject(e) : resolve(text))),
      );
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw new SmhError('BlobUnavailable', `cannot read the owner marker of ${this.description}: ${messageOf(e)}`, undefined, { cause: e });
    }
  }

  /** Written complete and synced under a temp name, then hard-linked into place: link(2) never replaces. */
  async createMarker(text: string): Promise<boolean> {
    const tmp = join(this.#tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.marker.tmp`);
    try {
      await mkdir(this.#tmpDir, { recursive: true });
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await link(tmp, join(this.dir, MARKER_NAME));
      } catch (e) {
        if (errno(e) === 'EEXIST') return false;
        throw e;
      }
      await fsyncDir(this.dir);
      return true;
    } catch (e) {
      if (isSmhError(e)) throw e;
      if (isNoSpace(e)) throw new SmhError('InsufficientStorage', `cannot write the owner marker of ${this.description}: the disk is full`, undefined, { cause: e });
      throw new SmhError('BlobUnavailable', `cannot write the owner marker of ${this.description}: ${messageOf(e)}`, undefined, { cause: e });
    } finally {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  /** Nothing but `.tmp` and (empty) fan-out folders; a missing folder is empty too. */
  async isEmpty(): Promise<boolean> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if (errno(e) === 'ENOENT') return true;
      throw new SmhError('BlobUnavailable', `cannot list ${this.description}: ${messageOf(e)}`, undefined, { cause: e });
    }
    for (const name of names) {
      if (name === TEMP_DIR) continue;
      if (!/^[0-9a-f]{2}$/.test(name)) return false;
      const d1 = join(this.dir, name);
      if (!statSync(d1).isDirectory()) return false;
      for (const n2 of readdirSync(d1)) {
        const d2 = join(d1, n2);
        if (!/^[0-9a-f]{2}$/.test(n2) || !statSync(d2).isDirectory() || readdirSync(d2).length > 0) return false;
      }
    }
    return true;
  }

  /** Close the read descriptors (reads still running finish first: each closes on release). */
  async close(): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#open.clear();
  }

  /** Verify the directory is usable (writable); throws a one-line SmhError otherwise. */
  async check(): Promise<void> {
    const probe = join(this.#tmpDir, `${process.pid}-${randomBytes(4).toString('hex')}.probe.tmp`);
    try {
      const fh = await open(probe, 'wx');
      await fh.close();
      await unlink(probe);
    } catch (e) {
      throw new SmhError('BlobUnavailable', `local blob store ${this.dir} is not writable: ${messageOf(e)}`, undefined, { cause: e });
    }
  }
}

async function* counted(chunks: AsyncIterable<Buffer>, onProgress: (bytes: number) => void): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of chunks) {
    yield c;
    n += c.length;
    onProgress(n);
  }
}

async function* readChunks(fh: FileHandle): AsyncGenerator<Buffer> {
  // A fresh buffer per chunk: the consumer may hold the chunk while we read the next one.
  let pos = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    const { bytesRead } = await fh.read(buf, 0, COPY_CHUNK, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield bytesRead === COPY_CHUNK ? buf : buf.subarray(0, bytesRead);
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/** D9: a full disk (or quota) is InsufficientStorage, never an I/O error. */
function isNoSpace(e: unknown): boolean {
  const code = errno(e);
  return code === 'ENOSPC' || code === 'EDQUOT';
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The buffers `targets` after their first `skip` bytes (a partial readv resumes there). */
function sliceFrom(targets: Buffer[], skip: number): Buffer[] {
  if (skip === 0) return targets;
  const out: Buffer[] = [];
  for (const t of targets) {
    if (skip >= t.length) {
      skip -= t.length;
      continue;
    }
    out.push(skip > 0 ? t.subarray(skip) : t);
    skip = 0;
  }
  return out;
}
