/**
 * Open files of the mount: file handles (one per open(2)/create(2)) over per-node state.
 *
 * B5: writes are staged in a local file under the library's staging folder, shared by every
 * handle of the node so read-your-writes holds across handles (POSIX). The staged bytes are
 * committed — `lib.storeBlobFromFile` then `space.setContent` — on flush (close), fsync and
 * release, and at once for a truncate(2) of a file nobody has open for writing. Until the first
 * write (or truncate) a node has no staging file and reads go to its blob through the page cache
 * with a per-handle readahead stream (B2/B3).
 *
 * Writes are cheap on purpose (the serving thread answers every FUSE request): an idle staged
 * node is written with `writeSync` straight from libfuse's buffer (`writeNow`); while the writes
 * are appends, a `FileHasher` worker follows them by reading the staging file back, so the commit
 * knows the blob key and ETag without a second pass; and the staging file is flushed to disk
 * every EARLY_FLUSH_BYTES, so the fsync the commit owes B5 finds little left to write.
 *
 * Nothing here decides a rule: the store decides what a commit means for links (L10) and whether
 * the node may be written (`statWritable` at open, `setContent` at commit).
 */
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, isSmhError } from '../errors.js';
import { FileHasher } from '../blob/hash-pipeline.js';
import type { ReadStream } from '../blob/page-cache.js';
import type { NodeInfo } from '../store/types.js';
import type { FuseLibrary, FuseSpace } from './port.js';

const COPY_CHUNK = 4 * 1024 * 1024;
/** A staged file starts going to disk after this many bytes, while the writer goes on. */
const EARLY_FLUSH_BYTES = 32 * 1024 * 1024;

export class OpenNode {
  readonly id: number;
  /** Committed content (updated after each commit). */
  blob: string | null;
  blobSize: number;
  /** Current size: the staging file's while staged, else the blob's. */
  size: number;
  /** Last data change (µs) not yet committed, or an explicit utimens while staged. */
  mtimeUs: number | undefined;
  handles = 0;
  writers = 0;
  staging: { path: string; fh: FileHandle } | undefined;
  /** Staged bytes differ from the committed blob. */
  dirty = false;
  /** A commit in progress; writes and truncates wait for it (the blob must match the hash). */
  committing: Promise<void> | undefined;
  /** Materialising the staging file (copying the blob); concurrent writers share it. */
  preparing: Promise<void> | undefined;
  /**
   * Hash of the staged bytes, kept while writes only append (cp, dd, editors):
   * the commit then needs neither a second pass over the file nor a copy (B5, write bench).
   */
  hasher: FileHasher | undefined;
  /** Bytes written since the last early flush started, and that flush (see `#flushEarly`). */
  unflushed = 0;
  flushing: Promise<void> | undefined;

  constructor(info: NodeInfo) {
    this.id = info.id;
    this.blob = info.blob;
    this.blobSize = info.size;
    this.size = info.size;
  }
}

export interface Handle {
  fd: number;
  node: OpenNode;
  writable: boolean;
  stream: ReadStream | undefined;
}

export interface OpenFileStats {
  commits: number;
  commitBytes: number;
  stagedCopies: number;
  bytesRead: number;
  bytesWritten: number;
}

export class OpenFiles {
  readonly #lib: FuseLibrary;
  readonly #space: FuseSpace;
  readonly #nodes = new Map<number, OpenNode>();
  readonly #handles = new Map<number, Handle>();
  #nextFd = 1;
  #stagingReady: Promise<unknown> | undefined;
  readonly stats: OpenFileStats = { commits: 0, commitBytes: 0, stagedCopies: 0, bytesRead: 0, bytesWritten: 0 };

  constructor(lib: FuseLibrary, space: FuseSpace) {
    this.#lib = lib;
    this.#space = space;
  }

  get openHandles(): number {
    return this.#handles.size;
  }

  get openNodes(): number {
    return this.#nodes.size;
  }

  /** Bytes written and not yet committed: the size of every staged file that differs from its blob. */
  get stagedBytes(): number {
    let n = 0;
    for (const node of this.#nodes.values()) if (node.staging && node.dirty) n += node.size;
    return n;
  }

  /** The open state of a node, if any handle has it open (getattr shows staged size/mtime). */
  node(id: number): OpenNode | undefined {
    return this.#nodes.get(id);
  }

  handle(fd: number): Handle {
    const h = this.#handles.get(fd);
    if (!h) throw Object.assign(new Error(`bad file handle ${fd}`), { code: 'EBADF' });
    return h;
  }

  /** A new handle on `info` (a regular file). */
  open(info: NodeInfo, writable: boolean): Handle {
    let node = this.#nodes.get(info.id);
    if (!node) {
      node = new OpenNode(info);
      this.#nodes.set(info.id, node);
    } else if (!node.staging && !node.committing && !node.preparing) {
      // Nobody has staged anything: pick up content changed by others (HTTP, CLI) since.
      node.blob = info.blob;
      node.blobSize = info.size;
      node.size = info.size;
    }
    node.handles++;
    if (writable) node.writers++;
    const fd = this.#allocFd();
    const h: Handle = { fd, node, writable, stream: this.#lib.cache?.openStream() };
    this.#handles.set(fd, h);
    return h;
  }

  #allocFd(): number {
    for (;;) {
      const fd = this.#nextFd;
      this.#nextFd = this.#nextFd >= 0x7fffffff ? 1 : this.#nextFd + 1;
      if (!this.#handles.has(fd)) return fd;
    }
  }

  /** Read into a fresh buffer (never the kernel's: see native-notes on buffer lifetimes). */
  async read(h: Handle, pos: number, len: number): Promise<Buffer> {
    const node = h.node;
    while (node.committing) await node.committing;
    if (node.preparing) await node.preparing;
    let out: Buffer;
    if (node.staging) {
      const want = Math.max(0, Math.min(len, node.size - pos));
      out = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await node.staging.fh.read(out, got, want - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      out = out.subarray(0, got);
    } else {
      if (!node.blob || pos >= node.blobSize) return Buffer.alloc(0);
      out = await this.#lib.readBlob(node.blob, pos, len, h.stream, node.blobSize);
    }
    this.stats.bytesRead += out.length;
    return out;
  }

  /**
   * The common case of a write, done synchronously straight from the kernel's buffer: the node
   * is staged and idle (no commit, no staging copy in progress). A 128 KiB `writeSync` into the
   * page cache costs less than the thread-pool round trip and the copy an async write needs
   * (write bench: 155 → see native-notes/fuse-native.md). Returns undefined when the async
   * path must take it.
   */
  writeNow(h: Handle, buf: Buffer, len: number, pos: number): number | undefined {
    const node = h.node;
    const st = node.staging;
    // A hash worker that fell behind makes writers wait, and only the async path can wait.
    if (!st || node.committing || node.preparing || node.hasher?.behind) return undefined;
    const data = buf.subarray(0, len);
    const hasher = this.#hashReserve(node, pos, len);
    try {
      let done = 0;
      while (done < len) done += writeSync(st.fh.fd, data, done, len - done, pos + done);
    } catch (e) {
      this.#dropHasher(node);
      throw e;
    } finally {
      hasher?.appended();
    }
    this.#written(node, pos, len);
    return len;
  }

  /**
   * While the writes are appends the hash worker follows them (the commit then needs no second
   * pass over the file); any other write means hashing at commit. Appends are counted when they
   * start and announced when every started one is written, so the worker never reads a byte
   * before it is in the file.
   */
  #hashReserve(node: OpenNode, pos: number, len: number): FileHasher | undefined {
    if (node.hasher?.appendAt(pos, len)) return node.hasher;
    this.#dropHasher(node);
    return undefined;
  }

  #dropHasher(node: OpenNode): void {
    node.hasher?.drop();
    node.hasher = undefined;
  }

  #written(node: OpenNode, pos: number, len: number): void {
    if (pos + len > node.size) node.size = pos + len;
    node.dirty = true;
    node.mtimeUs = Date.now() * 1000;
    this.stats.bytesWritten += len;
    node.unflushed += len;
    if (node.unflushed >= EARLY_FLUSH_BYTES && !node.flushing) this.#flushEarly(node);
  }

  /**
   * Start writing the staged bytes to disk while the writer goes on (an fdatasync on the thread
   * pool), so the fsync the commit needs (B5: close returns once the data is durable) finds
   * little left to do: the close of a 256 MiB file went from ~200 to ~120 ms. Failure is harmless
   * here: the commit's own sync reports it.
   */
  #flushEarly(node: OpenNode): void {
    const st = node.staging;
    if (!st) return;
    node.unflushed = 0;
    node.flushing = st.fh
      .datasync()
      .catch(() => undefined)
      .finally(() => {
        node.flushing = undefined;
      });
  }

  /** `data` is the caller's own copy. */
  async write(h: Handle, data: Buffer, pos: number): Promise<number> {
    const node = h.node;
    while (node.committing) await node.committing;
    await this.#ensureStaging(node, undefined);
    const st = node.staging!;
    if (node.hasher?.behind) await node.hasher.drained();
    const hasher = this.#hashReserve(node, pos, data.length);
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await st.fh.write(data, done, data.length - done, pos + done);
        done += bytesWritten;
      }
    } catch (e) {
      this.#dropHasher(node);
      throw e;
    } finally {
      hasher?.appended();
    }
    this.#written(node, pos, data.length);
    return data.length;
  }

  /** ftruncate(2)/truncate(2)/O_TRUNC on an open node: staged; committed by the holders' close. */
  async truncate(node: OpenNode, size: number): Promise<void> {
    while (node.committing) await node.committing;
    await this.#ensureStaging(node, size);
    if (node.size !== size) {
      await node.staging!.fh.truncate(size);
      node.size = size;
    }
    if (size === 0) {
      this.#dropHasher(node);
      node.hasher = new FileHasher(node.staging!.path);
    } else if (size !== node.hasher?.reservedTo) {
      this.#dropHasher(node);
    }
    node.dirty = true;
    node.mtimeUs = Date.now() * 1000;
  }

  /**
   * truncate(2) by path. A node nobody has open for writing is committed at once (truncate is
   * complete when it returns); otherwise the writers' close commits it.
   */
  async truncatePath(info: NodeInfo, size: number): Promise<void> {
    const h = this.open(info, true);
    try {
      await this.truncate(h.node, size);
      if (h.node.writers === 1) await this.commit(h.node);
    } finally {
      await this.release(h.fd);
    }
  }

  /** utimens on a staged node: the commit must keep the caller's mtime (cp -p, tar). */
  setMtime(id: number, mtimeUs: number): void {
    const node = this.#nodes.get(id);
    if (node?.dirty) node.mtimeUs = mtimeUs;
  }

  /**
   * Commit staged bytes if they changed (flush, fsync). The staging file is handed to the blob
   * store (a rename for the local store); later writes stage again from the committed blob.
   */
  async commit(node: OpenNode): Promise<void> {
    while (node.committing) await node.committing;
    if (!node.dirty || !node.staging) return;
    const staging = node.staging;
    const size = node.size;
    node.committing = (async () => {
      node.dirty = false;
      const mtimeUs = node.mtimeUs;
      const hasher = node.hasher;
      const complete = hasher !== undefined && hasher.covers(size);
      node.hasher = undefined;
      node.staging = undefined;
      if (!complete) hasher?.drop();
      // The digest (the hash worker finishing) and the data reaching the disk, side by side; a
      // failed hash worker only costs a second pass: the store hashes the file itself.
      if (node.flushing) await node.flushing;
      const [hash] = await Promise.all([
        complete ? hasher.digest().catch(() => undefined) : undefined,
        staging.fh.datasync().catch(() => undefined), // the store's own sync reports a failure
      ]);
      node.unflushed = 0;
      await staging.fh.close();
      let ref;
      try {
        ref = await this.#lib.storeBlobFromFile(staging.path, { consume: true, ...(hash ? { hash } : {}) });
      } catch (e) {
        // The store did not take the file: the staged bytes are still ours.
        node.staging = { path: staging.path, fh: await open(staging.path, 'r+') };
        node.dirty = true;
        throw e;
      }
      try {
        this.#space.setContent(node.id, ref, mtimeUs !== undefined ? { mtimeUs } : {});
      } catch (e) {
        // Stored but not committed. Unless the file is gone for good (purged, or in the bin),
        // stage its bytes again so a later close or fsync can still commit them.
        if (!isSmhError(e, 'FileNotFound') && !isSmhError(e, 'ReadOnly')) {
          await this.#stageFrom(node, ref.key, ref.size).catch(() => undefined);
          node.dirty = node.staging !== undefined;
        }
        this.#lib.abandonBlob(ref);
        throw e;
      }
      node.blob = ref.key;
      node.blobSize = ref.size;
      node.size = ref.size;
      if (!node.dirty) node.mtimeUs = undefined;
      this.stats.commits++;
      this.stats.commitBytes += size;
    })();
    try {
      await node.committing;
    } finally {
      node.committing = undefined;
    }
  }

  /** release(2): the last close commits anything left and drops the staging file. */
  async release(fd: number): Promise<void> {
    const h = this.#handles.get(fd);
    if (!h) return;
    this.#handles.delete(fd);
    const node = h.node;
    node.handles--;
    if (h.writable) node.writers--;
    let err: unknown;
    if (node.dirty && node.handles === 0) {
      try {
        await this.commit(node);
      } catch (e) {
        err = e;
      }
    }
    if (node.handles === 0 && this.#nodes.get(node.id) === node) {
      this.#nodes.delete(node.id);
      await this.#dropStaging(node);
    }
    if (err) throw err;
  }

  /** Commit every dirty node (shutdown). Returns the errors, one per node that failed. */
  async commitAll(): Promise<Array<{ id: number; error: unknown }>> {
    const failed: Array<{ id: number; error: unknown }> = [];
    for (const node of this.#nodes.values()) {
      try {
        await this.commit(node);
      } catch (error) {
        failed.push({ id: node.id, error });
      }
    }
    return failed;
  }

  async closeAll(): Promise<void> {
    for (const node of this.#nodes.values()) await this.#dropStaging(node);
    this.#nodes.clear();
    this.#handles.clear();
  }

  /**
   * Make sure the node has a staging file holding its current content, or its first
   * `truncateTo` bytes (O_TRUNC / truncate: nothing to copy for 0).
   */
  async #ensureStaging(node: OpenNode, truncateTo: number | undefined): Promise<void> {
    if (node.staging) return;
    if (node.preparing) return node.preparing;
    const keep = truncateTo === undefined ? node.blobSize : Math.min(truncateTo, node.blobSize);
    node.preparing = node.blob ? this.#stageFrom(node, node.blob, keep, node.blobSize) : this.#stageFrom(node, null, 0);
    try {
      await node.preparing;
    } finally {
      node.preparing = undefined;
    }
  }

  /** A new staging file holding the first `keep` bytes of `blob`, hashed as they are copied. */
  async #stageFrom(node: OpenNode, blob: string | null, keep: number, blobSize = keep): Promise<void> {
    await (this.#stagingReady ??= mkdir(this.#lib.stagingDir, { recursive: true }));
    const path = join(this.#lib.stagingDir, `open-${node.id}-${randomBytes(6).toString('hex')}`);
    const fh = await open(path, 'w+', 0o600);
    const hasher = new FileHasher(path);
    try {
      if (keep > 0 && blob) {
        this.stats.stagedCopies++;
        const stream = this.#lib.cache?.openStream();
        for (let off = 0; off < keep; off += COPY_CHUNK) {
          const chunk = await this.#lib.readBlob(blob, off, Math.min(COPY_CHUNK, keep - off), stream, blobSize);
          if (chunk.length === 0) throw fail('BlobMissing', `blob ${blob} is shorter than its metadata says`);
          await hasher.drained();
          let w = 0;
          while (w < chunk.length) w += (await fh.write(chunk, w, chunk.length - w, off + w)).bytesWritten;
          hasher.advance(off + chunk.length);
        }
      }
      node.size = keep;
      node.staging = { path, fh };
      this.#dropHasher(node);
      node.hasher = hasher;
    } catch (e) {
      hasher.drop();
      await fh.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw e;
    }
  }

  async #dropStaging(node: OpenNode): Promise<void> {
    this.#dropHasher(node);
    const st = node.staging;
    if (!st) return;
    node.staging = undefined;
    if (node.flushing) await node.flushing;
    await st.fh.close().catch(() => undefined);
    await unlink(st.path).catch(() => undefined);
  }
}
