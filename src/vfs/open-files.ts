/**
 * (Over 600 lines because the per-node state — staging, hashing, commits, holds, D6 to D8 — is one
 * state machine; a split would have to expose its private fields to the pieces.)
 *
 * Open files of a mount: file handles (one per open(2)/create(2)) over per-node state. Nothing
 * here depends on a FUSE binding: handles are numbers, paths are never used. Committed bytes are
 * read through the one read path (./reader.ts); staged bytes from the staging file.
 *
 * B5: writes are staged in a local file under the library's staging folder, shared by every
 * handle of the node so read-your-writes holds across handles (POSIX). The staged bytes are
 * committed — `lib.storeBlobFromFile` then `space.setContent` — on flush (close), fsync and
 * release, and at once for a truncate(2) of a file nobody has open for writing. Until the first
 * write (or truncate) a node has no staging file and reads go to its blob through the page cache
 * with a per-handle readahead stream (B2/B3).
 *
 * D6: only a writer's close or fsync commits. `discardUnsaved` (the unmount, once its grace is
 * over) drops what neither did — the previous version stays — and later writes and commits are
 * refused (`stopAccepting`).
 *
 * D7: every handle reads the version it opened (`Handle.view`) until this mount commits a new one,
 * and holds that version's blob (`lib.holdBlob`) until it moves on or closes, so a delete or an
 * overwrite by anyone — this mount, the CLI, HTTP, another mount — leaves it readable. A file
 * unlinked or replaced through this mount stays readable and writable through its open handles;
 * its staged writes are dropped at the last close, as POSIX drops an unlinked file's data.
 *
 * D8: the ranges written into a staging file are recorded (`ExtentSet`); the staging file is
 * sparse on disk (holes are never written). At commit a file with holes is stored as a sparse
 * container (src/blob/sparse.ts): only the written extents are copied, hashed and stored. Reads of
 * holes return zeros without a fetch; staging a sparse file copies only its data.
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
import type { ContentHash } from '../blob/hash.js';
import type { ReadStream } from '../blob/page-cache.js';
import { ExtentSet, planLayout, SparseLayout, sparseEtag } from '../blob/sparse.js';
import type { BlobHold } from './port.js';
import type { BlobRef, NodeInfo } from '../store/types.js';
import type { FilesLibrary, FilesSpace } from './port.js';
import type { ContentReader } from './reader.js';

const COPY_CHUNK = 4 * 1024 * 1024;
/** A staged file starts going to disk after this many bytes, while the writer goes on. */
const EARLY_FLUSH_BYTES = 32 * 1024 * 1024;

/** fallocate(2) mode bits (linux/falloc.h). */
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;

/**
 * The largest file this mount can hold: sizes and offsets travel as JS numbers, exact up to
 * 2^53 − 1 bytes (8 PiB). Past it: EFBIG, as a file system past its maximum file size answers.
 */
function checkFileSize(size: number): void {
  if (!Number.isSafeInteger(size)) throw Object.assign(new Error(`file size ${size} is past the largest this mount holds`), { code: 'EFBIG' });
}

/** A committed version of a file's content: what a handle reads while nothing is staged. */
export interface Version {
  blob: string | null;
  /** Logical size. */
  size: number;
  /** Sparse container layout (header text), when the version is sparse (D8). */
  layout: string | undefined;
}

function versionOf(info: NodeInfo): Version {
  return { blob: info.blob, size: info.size, layout: info.layout };
}

export class OpenNode {
  readonly id: number;
  /** The node as last seen in the store (fstat of a file whose name is gone answers from it). */
  info: NodeInfo;
  /** The newest version this mount knows: committed by it, or seen at the last open. */
  committed: Version;
  /** Current size: the staging file's while staged, else the committed version's. */
  size: number;
  /** Last data change (µs) not yet committed, or an explicit utimens while staged. */
  mtimeUs: number | undefined;
  /** The nanoseconds below `mtimeUs` (0–999): only a utimens while staged gives any (M2). */
  mtimeNsRem = 0;
  /**
   * When the staged content last changed (µs): a write or truncate changes ctime too (POSIX), and
   * stat must show it at once, not only after the close commits (getattr shows the later of this
   * and the store's ctime, which a chmod or utimens meanwhile may have moved on).
   */
  ctimeUs: number | undefined;
  readonly handles = new Set<Handle>();
  writers = 0;
  staging: { path: string; fh: FileHandle } | undefined;
  /** While staged: the ranges of the staging file that were written (the rest are holes, D8). */
  written: ExtentSet | undefined;
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
  /**
   * The file lost its name through this mount (unlink, or replaced by a rename) while open: its
   * handles keep reading and writing it, but nothing is committed any more (D7, POSIX).
   */
  orphan = false;

  constructor(info: NodeInfo) {
    this.id = info.id;
    this.info = info;
    this.committed = versionOf(info);
    this.size = info.size;
  }
}

export interface Handle {
  fd: number;
  node: OpenNode;
  writable: boolean;
  stream: ReadStream | undefined;
  /** The version this handle reads while the node has nothing staged (D7 snapshot). */
  view: Version;
  /** Keeps `view`'s blob from being deleted while this handle may read it (D7). */
  hold: BlobHold | undefined;
}

export interface OpenFileStats {
  commits: number;
  commitBytes: number;
  stagedCopies: number;
  bytesRead: number;
  bytesWritten: number;
  /** Bytes hashed for commits (content keys, ETags): D8 says holes never are. */
  bytesHashed: number;
  /** Bytes handed to the blob store by commits (a sparse file's container, not its size). */
  bytesStored: number;
  /** Files committed as sparse containers. */
  sparseCommits: number;
  /** Unsaved files dropped by an unmount whose grace ran out (D6). */
  discarded: number;
}

/** An open file whose unsaved writes an unmount dropped (D6). */
export interface Discarded {
  id: number;
  path: string;
  /** Bytes of the staged version that was dropped. */
  size: number;
}

export class OpenFiles {
  readonly #lib: FilesLibrary;
  readonly #space: FilesSpace;
  /** The one read path of committed bytes (page cache → blob store). */
  readonly reader: ContentReader;
  readonly #nodes = new Map<number, OpenNode>();
  readonly #handles = new Map<number, Handle>();
  #nextFd = 1;
  #stagingReady: Promise<unknown> | undefined;
  /** Set by the unmount once its grace is over: no more writes or commits (D6). */
  #refusing: string | undefined;
  readonly stats: OpenFileStats = {
    commits: 0,
    commitBytes: 0,
    stagedCopies: 0,
    bytesRead: 0,
    bytesWritten: 0,
    bytesHashed: 0,
    bytesStored: 0,
    sparseCommits: 0,
    discarded: 0,
  };

  constructor(lib: FilesLibrary, space: FilesSpace, reader: ContentReader) {
    this.#lib = lib;
    this.#space = space;
    this.reader = reader;
  }

  get openHandles(): number {
    return this.#handles.size;
  }

  get openNodes(): number {
    return this.#nodes.size;
  }

  /**
   * Bytes written and not yet committed: the data of every staged file that differs from its blob
   * (a sparse staging file's holes take no space, D8: only its written ranges count).
   */
  get stagedBytes(): number {
    let n = 0;
    for (const node of this.#nodes.values()) if (node.staging && node.dirty) n += node.written?.bytes ?? node.size;
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

  /**
   * A new handle on `info` (a regular file, or anything else the kernel opens). `readable`: the
   * handle may read (O_RDONLY, O_RDWR); only those hold their version from the start — a handle
   * that only writes (cp, dd) takes a hold if it ever reads its committed bytes (`ensureHold`),
   * which keeps the write path free of the hold's two small transactions per file.
   */
  open(info: NodeInfo, writable: boolean, readable = true): Handle {
    let node = this.#nodes.get(info.id);
    if (!node) {
      node = new OpenNode(info);
      this.#nodes.set(info.id, node);
    } else if (!node.staging && !node.committing && !node.preparing) {
      // Nobody has staged anything: pick up content changed by others (HTTP, CLI) since. Handles
      // opened before keep reading the version they opened (their `view`).
      node.committed = versionOf(info);
      node.size = info.size;
      node.info = info;
    }
    const view = node.committed;
    // D7: hold the bytes this handle may read. Refused when they were deleted between the
    // caller's lookup and now: the file is gone (ENOENT), as if the lookup had come later.
    const hold = readable && view.blob ? this.#hold(view.blob) : undefined;
    const fd = this.#allocFd();
    const h: Handle = { fd, node, writable, stream: this.reader.openStream(), view, hold };
    node.handles.add(h);
    if (writable) node.writers++;
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

  /**
   * `lib.holdBlob`, except on a full disk (D9), where the hold cannot be recorded: the file is
   * then read without one (reading must work on a full disk; a purge by another process could
   * then take the bytes away under the reader, which gets EIO), and not asked again per read.
   */
  #hold(key: string): BlobHold {
    try {
      return this.#lib.holdBlob(key);
    } catch (e) {
      if (!isSmhError(e, 'InsufficientStorage')) throw e;
      if (!this.#warnedFull) {
        this.#warnedFull = true;
        console.error('smhfs: mount: the disk holding the library is full: files are opened without holding their bytes (D7) until there is room');
      }
      return { key, release: () => undefined };
    }
  }

  #warnedFull = false;

  /** Move every handle of `node` to `version` (after this mount committed it); holders hold it. */
  #viewAll(node: OpenNode, version: Version): void {
    for (const h of node.handles) {
      if (h.view === version) continue;
      const old = h.hold;
      h.view = version;
      h.hold = old && version.blob ? this.#hold(version.blob) : undefined;
      old?.release();
    }
  }

  /** Before reading `h.view`'s blob: hold it (D7), if the handle does not yet. */
  ensureHold(h: Handle): void {
    if (!h.hold && h.view.blob) h.hold = this.#hold(h.view.blob);
  }

  /** Read into a fresh buffer (never the kernel's: see native-notes on buffer lifetimes). */
  async read(h: Handle, pos: number, len: number): Promise<Buffer> {
    const node = h.node;
    while (node.committing) await node.committing;
    if (node.preparing) await node.preparing;
    let out: Buffer;
    if (node.staging) {
      // Holes of a sparse staging file read as zeros from the local file system.
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
      this.ensureHold(h);
      out = await this.reader.readContent(h.view, pos, len, h.stream);
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
    if (!st || node.committing || node.preparing || node.hasher?.behind || this.#refusing || !Number.isSafeInteger(pos + len)) return undefined;
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
    node.written?.add(pos, pos + len);
    node.dirty = true;
    node.mtimeUs = node.ctimeUs = Date.now() * 1000;
    node.mtimeNsRem = 0;
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

  /** Refused once the unmount has given up waiting (D6): say so, never accept bytes we will drop. */
  #checkAccepting(): void {
    if (this.#refusing) throw fail('LibraryReadOnly', this.#refusing);
  }

  /** `data` is the caller's own copy. */
  async write(h: Handle, data: Buffer, pos: number): Promise<number> {
    this.#checkAccepting();
    checkFileSize(pos + data.length);
    const node = h.node;
    while (node.committing) await node.committing;
    await this.#ensureStaging(node, undefined);
    this.#checkAccepting();
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

  /**
   * ftruncate(2)/truncate(2)/O_TRUNC on an open node: staged; committed by the holders' close.
   * Growing a file writes nothing: the new range is a hole of the sparse staging file (D8).
   */
  async truncate(node: OpenNode, size: number): Promise<void> {
    this.#checkAccepting();
    checkFileSize(size);
    while (node.committing) await node.committing;
    await this.#ensureStaging(node, size);
    this.#checkAccepting();
    if (node.size !== size) {
      await node.staging!.fh.truncate(size);
      node.size = size;
    }
    node.written?.truncate(size);
    if (size === 0) {
      this.#dropHasher(node);
      node.hasher = new FileHasher(node.staging!.path);
    } else if (size !== node.hasher?.reservedTo) {
      this.#dropHasher(node);
    }
    node.dirty = true;
    node.mtimeUs = node.ctimeUs = Date.now() * 1000;
    node.mtimeNsRem = 0;
  }

  /**
   * fallocate(2) (D8). Mode 0 extends the file like a truncate up — the range stays a hole: a
   * library has no blocks to reserve — and FALLOC_FL_KEEP_SIZE changes nothing.
   * PUNCH_HOLE|KEEP_SIZE (the only way Linux takes PUNCH_HOLE) makes the range a hole of the
   * staged version (`#punchHole`). Zeroing, collapsing and inserting ranges are not supported
   * (EOPNOTSUPP), so programs fall back to writing.
   */
  async fallocate(h: Handle, mode: number, offset: number, length: number): Promise<void> {
    if (mode !== 0 && mode !== FALLOC_FL_KEEP_SIZE && mode !== (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
      throw fail('NotSupported', `fallocate mode 0x${mode.toString(16)} is not supported`);
    }
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) {
      throw fail('InvalidArgument', 'bad fallocate range');
    }
    if (mode === (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) return this.#punchHole(h.node, offset, offset + length);
    if (mode === FALLOC_FL_KEEP_SIZE) return;
    const node = h.node;
    while (node.committing) await node.committing;
    const end = offset + length;
    if (end > (node.staging ? node.size : node.committed.size)) await this.truncate(node, end);
  }

  /**
   * fallocate(PUNCH_HOLE|KEEP_SIZE) of [start, end): reads give zeros there and the size stays.
   * Staged like a write, committed by the writers' close. The range leaves the written extents
   * (D8), so a hole of 1 MiB or more is stored as one — no bytes hashed or uploaded for it; the
   * staging file gets zeros only where bytes were written in the range (Node has no fallocate to
   * punch its own hole), so the work is in proportion to the bytes written, never to the hole.
   */
  async #punchHole(node: OpenNode, start: number, endWanted: number): Promise<void> {
    this.#checkAccepting();
    while (node.committing) await node.committing;
    await this.#ensureStaging(node, undefined);
    this.#checkAccepting();
    const end = Math.min(endWanted, node.size);
    if (start >= end) return; // past the end of the file: nothing to punch (Linux: success)
    const st = node.staging!;
    // the content changes in the middle: the commit hashes the file (as after any non-append write)
    this.#dropHasher(node);
    const written = node.written?.list() ?? [{ offset: 0, length: node.size }];
    let zeros: Buffer | undefined;
    for (const e of written) {
      const from = Math.max(start, e.offset);
      const to = Math.min(end, e.offset + e.length);
      for (let off = from; off < to; off += COPY_CHUNK) {
        const n = Math.min(COPY_CHUNK, to - off);
        zeros ??= Buffer.alloc(Math.min(COPY_CHUNK, end - start));
        await writeFully(st.fh, zeros.subarray(0, n), off);
      }
    }
    node.written?.remove(start, end);
    node.dirty = true;
    node.mtimeUs = node.ctimeUs = Date.now() * 1000;
  }

  /**
   * copy_file_range(2) of a whole file into an empty one (issue 12): the destination takes the
   * source's committed blob — a second reference to the same content-addressed key, no byte read,
   * hashed or stored. Whole means: both offsets 0, `len` covering the source (the kernel clips it
   * to the size), the source's handle reading the version now committed with nothing staged over
   * it, and the destination empty (size 0, staged or not: O_TRUNC stages an empty version).
   * Anything else answers undefined: the caller replies EOPNOTSUPP and the kernel copies through
   * read and write itself. GC safety (D3, D7): the source handle holds the blob's bytes until the
   * new reference is committed, and `setContent` refuses a key being collected (Busy).
   */
  async shareWhole(src: Handle, dst: Handle, offIn: number, offOut: number, len: number): Promise<number | undefined> {
    const from = src.node;
    const to = dst.node;
    const v = src.view;
    if (offIn !== 0 || offOut !== 0 || from === to || !dst.writable || to.orphan) return undefined;
    if (from.staging || from.dirty || from.committing || from.preparing || v !== from.committed) return undefined;
    if (!v.blob || v.size === 0 || len < v.size || from.info.blob !== v.blob || !from.info.etag) return undefined;
    while (to.committing) await to.committing;
    if (to.preparing || (to.staging ? to.size : to.committed.size) !== 0) return undefined;
    this.#checkAccepting();
    this.ensureHold(src);
    const ref: BlobRef = { key: v.blob, size: v.size, etag: from.info.etag, ...(v.layout ? { layout: v.layout } : {}) };
    const info = this.#space.setContent(to.id, ref);
    // An empty staged version (O_TRUNC) is replaced by the shared one: nothing of it to keep. The
    // synchronous part of the drop forgets it at once, and the node moves to the shared version
    // before anything is awaited, so no request in between can stage the empty one again.
    const dropped = this.#dropStaging(to);
    const version: Version = { blob: v.blob, size: v.size, layout: v.layout };
    to.info = info;
    to.committed = version;
    to.size = v.size;
    to.dirty = false;
    to.mtimeUs = to.ctimeUs = undefined;
    this.#viewAll(to, version);
    this.stats.commits++;
    await dropped;
    return v.size;
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
  setMtime(id: number, mtimeUs: number, mtimeNsRem = 0): void {
    const node = this.#nodes.get(id);
    if (node?.dirty) {
      node.mtimeUs = mtimeUs;
      node.mtimeNsRem = mtimeNsRem;
    }
  }

  /** The file lost its name through this mount while open (unlink, rename over it): see `orphan`. */
  markOrphan(id: number): void {
    const node = this.#nodes.get(id);
    if (node) node.orphan = true;
  }

  /**
   * Commit staged bytes if they changed (flush, fsync). The staging file is handed to the blob
   * store (a rename for the local store) or, when it has holes, packed into a sparse container
   * (D8); later writes stage again from the committed blob.
   */
  async commit(node: OpenNode): Promise<void> {
    while (node.committing) await node.committing;
    if (!node.dirty || !node.staging) return;
    // Writes to a file this mount unlinked go nowhere (POSIX); they stay readable until the last close.
    if (node.orphan) return;
    this.#checkAccepting();
    const staging = node.staging;
    const size = node.size;
    const layout = planLayout(size, node.written ?? ExtentSet.of([{ offset: 0, length: size }]));
    node.committing = (async () => {
      node.dirty = false;
      const mtimeUs = node.mtimeUs;
      const mtimeNsRem = node.mtimeNsRem;
      const ctimeUs = node.ctimeUs;
      let ref: BlobRef;
      try {
        ref = layout ? await this.#storeSparse(node, staging, layout) : await this.#storeDense(node, staging, size);
      } catch (e) {
        // The store did not take the file: the staged bytes are still ours.
        if (!node.staging) node.staging = { path: staging.path, fh: await open(staging.path, 'r+') };
        node.dirty = true;
        throw e;
      }
      await this.#dropStaging(node);
      const version: Version = { blob: ref.key, size, layout: ref.layout };
      try {
        // the times of the last write, not of the commit: a close (every fork/exec's too) changes none
        node.info = this.#space.setContent(node.id, ref, {
          ...(mtimeUs !== undefined ? { mtimeUs, mtimeNsRem } : {}),
          ...(ctimeUs !== undefined ? { ctimeUs } : {}),
        });
      } catch (e) {
        const gone = isSmhError(e, 'FileNotFound') || isSmhError(e, 'ReadOnly');
        // Stored but not committed: stage its bytes again so a later close or fsync can still
        // commit them — or, for a file that lost its name through this mount (unlinked while
        // being committed), so its handles still read what they wrote.
        if (!gone || node.handles.size > 0) {
          await this.#stageFrom(node, version, size).catch(() => undefined);
          node.dirty = node.staging !== undefined;
        }
        this.#lib.abandonBlob(ref);
        if (gone && node.orphan) return;
        throw e;
      }
      node.committed = version;
      node.size = size;
      this.#viewAll(node, version);
      if (!node.dirty) {
        node.mtimeUs = node.ctimeUs = undefined;
        node.mtimeNsRem = 0;
      }
      this.stats.commits++;
      this.stats.commitBytes += size;
    })();
    try {
      await node.committing;
    } finally {
      node.committing = undefined;
    }
  }

  /** A dense commit: the staging file itself becomes the blob (renamed into a local store). */
  async #storeDense(node: OpenNode, staging: { path: string; fh: FileHandle }, size: number): Promise<BlobRef> {
    const hasher = node.hasher;
    const complete = hasher !== undefined && hasher.covers(size);
    node.hasher = undefined;
    if (!complete) hasher?.drop();
    // The digest (the hash worker finishing) and the data reaching the disk, side by side; a
    // failed hash worker only costs a second pass: the store hashes the file itself.
    if (node.flushing) await node.flushing;
    const [hash] = await Promise.all([
      complete ? hasher.digest().catch(() => undefined) : this.#hashFile(staging.path, size),
      staging.fh.datasync().catch(() => undefined), // the store's own sync reports a failure
    ]);
    if (complete) this.stats.bytesHashed += size;
    node.unflushed = 0;
    // The store takes the file over (a rename): it must not be open for writing any more.
    await staging.fh.close();
    node.staging = undefined;
    const ref = await this.#lib.storeBlobFromFile(staging.path, { consume: true, ...(hash ? { hash } : {}) });
    this.stats.bytesStored += size;
    return ref;
  }

  /**
   * A sparse commit (D8): the written extents are copied into a container (header + data), which
   * is hashed and stored; the holes are never read, hashed or uploaded. The staging file stays
   * ours until the container is stored.
   */
  async #storeSparse(node: OpenNode, staging: { path: string; fh: FileHandle }, layout: SparseLayout): Promise<BlobRef> {
    this.#dropHasher(node);
    await (this.#stagingReady ??= mkdir(this.#lib.stagingDir, { recursive: true }));
    const path = join(this.#lib.stagingDir, `sparse-${node.id}-${randomBytes(6).toString('hex')}`);
    const out = await open(path, 'wx', 0o600);
    try {
      const header = Buffer.from(layout.header, 'latin1');
      let at = 0;
      while (at < header.length) at += (await out.write(header, at, header.length - at, at)).bytesWritten;
      const chunk = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, layout.dataBytes)));
      for (const e of layout.extents) {
        for (let off = 0; off < e.length; ) {
          const n = Math.min(chunk.length, e.length - off);
          const { bytesRead } = await staging.fh.read(chunk, 0, n, e.offset + off);
          // Past the staging file's end (cannot happen: the size is the file's) reads as zeros.
          if (bytesRead < n) chunk.fill(0, bytesRead, n);
          let w = 0;
          while (w < n) w += (await out.write(chunk, w, n - w, at + w)).bytesWritten;
          at += n;
          off += n;
        }
      }
      await out.datasync();
    } catch (e) {
      await out.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw e;
    }
    await out.close();
    let stored: BlobRef;
    try {
      const hash = await this.#hashFile(path, layout.blobSize);
      stored = await this.#lib.storeBlobFromFile(path, { consume: true, ...(hash ? { hash } : {}) });
    } finally {
      await unlink(path).catch(() => undefined); // consumed on success; ours otherwise
    }
    this.stats.bytesStored += layout.blobSize;
    this.stats.sparseCommits++;
    return { ...stored, size: layout.size, etag: sparseEtag(stored.etag), layout: layout.header };
  }

  /** SHA-256 + MD5 of a file's first `size` bytes on the hash worker (undefined: let the store hash it). */
  async #hashFile(path: string, size: number): Promise<ContentHash | undefined> {
    this.stats.bytesHashed += size;
    return new FileHasher(path, size).digest().catch(() => undefined);
  }

  /** release(2): the last close commits anything left and drops the staging file. */
  async release(fd: number): Promise<void> {
    const h = this.#handles.get(fd);
    if (!h) return;
    this.#handles.delete(fd);
    const node = h.node;
    node.handles.delete(h);
    if (h.writable) node.writers--;
    let err: unknown;
    if (node.dirty && node.handles.size === 0 && !node.orphan && !this.#refusing) {
      try {
        await this.commit(node);
      } catch (e) {
        err = e;
      }
    }
    if (node.handles.size === 0 && this.#nodes.get(node.id) === node) {
      this.#nodes.delete(node.id);
      await this.#dropStaging(node);
    }
    h.hold?.release();
    if (err) throw err;
  }

  // ───────────────────────────── unmount (D6) ─────────────────────────────

  /** Handles open for writing, per file, with their current paths (for the unmount's messages). */
  openForWriting(): Array<{ id: number; path: string; writers: number; unsaved: boolean }> {
    const out: Array<{ id: number; path: string; writers: number; unsaved: boolean }> = [];
    for (const node of this.#nodes.values()) {
      if (node.writers > 0 || node.dirty) out.push({ id: node.id, path: this.#pathOf(node), writers: node.writers, unsaved: node.dirty });
    }
    return out;
  }

  /** Commits in progress (a writer's close or fsync that must finish before the library closes). */
  async commitsDone(): Promise<void> {
    for (;;) {
      const running = [...this.#nodes.values()].map((n) => n.committing).filter((p): p is Promise<void> => p !== undefined);
      if (running.length === 0) return;
      await Promise.allSettled(running);
    }
  }

  /**
   * From now on refuse writes and commits with `reason` (EROFS): the unmount is over. Then drop
   * every staged version that no close or fsync committed — the previous version stays (D6) —
   * and say which.
   */
  async discardUnsaved(reason: string): Promise<Discarded[]> {
    this.#refusing = reason;
    await this.commitsDone();
    const out: Discarded[] = [];
    for (const node of this.#nodes.values()) {
      if (node.preparing) await node.preparing.catch(() => undefined);
      if (!node.dirty || node.orphan) continue;
      out.push({ id: node.id, path: this.#pathOf(node), size: node.size });
      node.dirty = false;
      await this.#dropStaging(node);
      node.size = node.committed.size;
      this.stats.discarded++;
    }
    return out;
  }

  /** The node's current path ('' when it has none any more). */
  #pathOf(node: OpenNode): string {
    try {
      node.info = this.#space.statNode(node.id);
    } catch {
      // purged: the last known path
    }
    return node.info.path;
  }

  /** Forget every handle (the mount is gone): staged leftovers are deleted, holds released. */
  async closeAll(): Promise<void> {
    for (const node of this.#nodes.values()) await this.#dropStaging(node);
    for (const h of this.#handles.values()) h.hold?.release();
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
    const c = node.committed;
    const keep = truncateTo === undefined ? c.size : Math.min(truncateTo, c.size);
    node.preparing = this.#stageFrom(node, c, keep);
    try {
      await node.preparing;
    } finally {
      node.preparing = undefined;
    }
  }

  /**
   * A new staging file holding the first `keep` bytes of `version`: a dense blob is copied (and
   * hashed as it is copied); a sparse one has only its data extents copied, the rest stays holes.
   */
  async #stageFrom(node: OpenNode, version: Version, keep: number): Promise<void> {
    await (this.#stagingReady ??= mkdir(this.#lib.stagingDir, { recursive: true }));
    const path = join(this.#lib.stagingDir, `open-${node.id}-${randomBytes(6).toString('hex')}`);
    const fh = await open(path, 'w+', 0o600);
    const written = new ExtentSet();
    const layout = version.layout ? SparseLayout.parse(version.layout) : undefined;
    const hasher = layout ? undefined : new FileHasher(path);
    // The bytes being copied must not be deleted under the copy (D7): held while it runs.
    const hold = keep > 0 && version.blob ? this.#hold(version.blob) : undefined;
    try {
      if (keep > 0 && version.blob) {
        this.stats.stagedCopies++;
        const stream = this.reader.openStream();
        if (layout) {
          await fh.truncate(keep);
          for (const e of layout.extents) {
            if (e.offset >= keep) break;
            const end = Math.min(keep, e.offset + e.length);
            for (let off = e.offset; off < end; off += COPY_CHUNK) {
              const chunk = await this.reader.readContent(version, off, Math.min(COPY_CHUNK, end - off), stream);
              await writeFully(fh, chunk, off);
            }
            written.add(e.offset, end);
          }
        } else {
          for (let off = 0; off < keep; off += COPY_CHUNK) {
            const chunk = await this.reader.readContent(version, off, Math.min(COPY_CHUNK, keep - off), stream);
            if (chunk.length === 0) throw fail('BlobMissing', `blob ${version.blob} is shorter than its metadata says`);
            await hasher!.drained();
            await writeFully(fh, chunk, off);
            hasher!.advance(off + chunk.length);
          }
          written.add(0, keep);
        }
      }
      node.size = keep;
      node.staging = { path, fh };
      node.written = written;
      this.#dropHasher(node);
      node.hasher = hasher;
    } catch (e) {
      hasher?.drop();
      await fh.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw e;
    } finally {
      hold?.release();
    }
  }

  async #dropStaging(node: OpenNode): Promise<void> {
    this.#dropHasher(node);
    const st = node.staging;
    node.written = undefined;
    if (!st) return;
    node.staging = undefined;
    if (node.flushing) await node.flushing;
    await st.fh.close().catch(() => undefined);
    await unlink(st.path).catch(() => undefined);
  }
}

async function writeFully(fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let w = 0;
  while (w < buf.length) w += (await fh.write(buf, w, buf.length - w, pos + w)).bytesWritten;
}
