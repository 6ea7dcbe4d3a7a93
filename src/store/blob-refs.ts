/**
 * The blob life cycle around the metadata (T6, B6, D3, D7): upload leases while bytes are stored
 * and not yet committed, holds of readers, the deletion queue and the collector.
 *
 * Blob deletion works only from the library's own records (D3, T6): a transaction that drops the
 * last reference to a key writes the key into the deletion queue in that same transaction; after
 * the commit (the transaction's after-commit work) the collector — this process at once, any
 * long-running process periodically, `smhfs gc` — dooms queued keys that nothing references,
 * leases (an upload in flight) or holds (a reader in any process, D7), deletes their bytes, and
 * forgets them. A crash anywhere in between leaves the key queued or doomed, never deleted while
 * referenced and never forgotten. The store is never listed to find garbage: only `smhfs gc`
 * does that (`listOrphans`), and only reports unless told to delete.
 *
 * Rows owned by a process name it (src/store/owners.ts); those of processes that are gone are
 * cleaned by the next collection (`reapDeadOwners`).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fail, isSmhError, SmhError } from '../errors.js';
import { HashingTransform, hashFile, type ContentHash } from '../blob/hash.js';
import { EMPTY_BLOB_KEY, type BlobInfo, type BlobStore } from '../blob/types.js';
import { nowUs, type MetaEngine, type MetaTx } from './engine.js';
import { HEARTBEAT_MS, isLocalOwnerDead, LEGACY_LEASE_STALE_US, ownerGone, processOwner, processOwnerMade } from './owners.js';
import type { BlobRows } from './rows.js';
import type { BlobRef } from './types.js';

/** Transactions of the collector and of leases: they lead to space coming back, so they may use the reserve (D9). */
const FREEING = { freeing: true } as const;
const DOOMING = { freeing: true, durable: true } as const;

/**
 * A hold on a blob's bytes (D7): while any process holds a key, no collector in any process
 * deletes it, even after its last reference is gone. `release()` is idempotent; a process that
 * dies releases its holds implicitly (they are reaped as its owner is gone).
 */
export interface BlobHold {
  readonly key: string;
  release(): void;
}

const NO_HOLD: BlobHold = Object.freeze({ key: EMPTY_BLOB_KEY, release: () => undefined });

/** What `reapDeadOwners` cleaned. */
export interface ReapResult {
  holds: number;
  leases: number;
  doomed: number;
}

export interface BlobRefsOptions {
  engine: MetaEngine;
  rows: BlobRows;
  blobs: BlobStore;
  /** This process's staging folder (uploads from a stream are staged there). */
  stagingDir: string;
  /** Nothing can be recorded: holds are no-ops. */
  readOnly: () => boolean;
  /** The error for a full disk (D9: with what emptying the bin would free). */
  diskFull: (cause: unknown) => SmhError;
}

export class BlobRefs {
  private readonly engine: MetaEngine;
  private readonly rows: BlobRows;
  private readonly blobs: BlobStore;
  private readonly stagingDir: string;
  private readonly readOnly: () => boolean;
  private readonly diskFull: (cause: unknown) => SmhError;
  /** The keys each open transaction dropped (see `dropBlobs`). */
  private readonly drops = new WeakMap<MetaTx, string[]>();
  /** This process's holds: one row per key, counted here. */
  private readonly holds = new Map<string, { id: number; refs: number }>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly gcQueue = new Set<string>();
  private gcRunning: Promise<void> | undefined;
  /** Keys this process's collector has doomed and not yet finished deleting (see takeLease). */
  private readonly deleting = new Map<string, Promise<void>>();

  constructor(o: BlobRefsOptions) {
    this.engine = o.engine;
    this.rows = o.rows;
    this.blobs = o.blobs;
    this.stagingDir = o.stagingDir;
    this.readOnly = o.readOnly;
    this.diskFull = o.diskFull;
  }

  /**
   * Called inside a transaction: these blob keys may have lost their last reference. They are
   * queued in the same transaction (D3: the record survives a crash) and collected after it commits.
   */
  dropBlobs(keys: string[]): void {
    const tx = this.engine.current;
    if (!tx) throw fail('Internal', 'dropBlobs outside a transaction');
    const t = nowUs();
    for (const k of keys) {
      if (k === EMPTY_BLOB_KEY) continue;
      this.rows.enqueue(k, t);
      this.droppedIn(tx).push(k);
    }
  }

  /** The keys `tx` dropped: collected together once it commits (never if it rolls back). */
  private droppedIn(tx: MetaTx): string[] {
    let keys = this.drops.get(tx);
    if (!keys) {
      const list: string[] = [];
      this.drops.set(tx, list);
      tx.afterCommit(() => this.scheduleCollect(list));
      keys = list;
    }
    return keys;
  }

  /** Called inside the commit that references a stored blob: its upload lease ends. */
  useLease(ref: BlobRef): void {
    if (ref.lease !== undefined) this.rows.deleteLease(ref.lease);
    if (ref.key !== EMPTY_BLOB_KEY && this.rows.doomed(ref.key)) {
      throw fail('Busy', 'the blob is being garbage-collected; retry the write');
    }
  }

  // ───────────────────────────── blobs ─────────────────────────────

  /**
   * Store a local file as a blob; the returned ref holds a lease until committed. `hash` skips
   * hashing when the caller computed it while writing; `consume` lets the store take the file
   * over (a rename for the local store) — the path is gone afterwards.
   */
  async storeBlobFromFile(
    path: string,
    opts: { hash?: ContentHash; consume?: boolean; onProgress?: (storedBytes: number) => void } = {},
  ): Promise<BlobRef> {
    const h = opts.hash ?? (await hashFile(path));
    return this.storeHashed(path, h.sha256, h.md5, h.size, opts.consume ?? false, opts.onProgress);
  }

  /** Stage a stream to a local file (hashing as it goes), then store it. */
  async storeBlobFromStream(body: Readable, opts: { onProgress?: (storedBytes: number) => void } = {}): Promise<BlobRef> {
    const staged = join(this.stagingDir, `upload-${randomBytes(8).toString('hex')}`);
    const hasher = new HashingTransform();
    try {
      try {
        mkdirSync(this.stagingDir, { recursive: true }); // not made at open on a full disk
        await pipeline(body, hasher, createWriteStream(staged));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') throw this.diskFull(e);
        throw e;
      }
      const h = hasher.digest();
      return await this.storeHashed(staged, h.sha256, h.md5, h.size, true, opts.onProgress);
    } finally {
      await unlink(staged).catch(() => undefined);
    }
  }

  private async storeHashed(
    path: string,
    key: string,
    etag: string,
    size: number,
    consume: boolean,
    onProgress?: (storedBytes: number) => void,
  ): Promise<BlobRef> {
    if (key === EMPTY_BLOB_KEY) {
      if (consume) await unlink(path).catch(() => undefined);
      return { key, size: 0, etag };
    }
    const lease = await this.takeLease(key);
    try {
      if (consume && this.blobs.adoptFile) {
        try {
          await this.blobs.adoptFile(key, path, size);
          return { key, size, etag, lease };
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
        }
      }
      await this.blobs.putFile(key, path, size, onProgress);
      if (consume) await unlink(path).catch(() => undefined);
    } catch (e) {
      this.releaseLease(lease);
      if (isSmhError(e, 'InsufficientStorage')) throw this.diskFull(e); // D9, with what the bin would free
      if (isSmhError(e)) throw e;
      throw new SmhError('BlobUnavailable', `storing the blob failed: ${(e as Error).message}`, undefined, { cause: e });
    }
    return { key, size, etag, lease };
  }

  private async takeLease(key: string): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const lease = this.engine.transaction(() => {
        const doomed = this.rows.doomed(key);
        if (doomed) {
          // A collector that died mid-delete leaves its row behind: the key is no one's, and the
          // upload that follows stores the bytes again if the delete happened.
          if (!ownerGone(doomed.owner, doomed.created)) return undefined;
          this.rows.undoom(key);
        }
        const t = nowUs();
        return this.rows.insertLease(key, processOwner(), t);
      });
      if (lease !== undefined) {
        this.startHeartbeat();
        return lease;
      }
      if (attempt > 200) throw fail('Busy', 'a blob with the same content is being deleted; retry');
      // Our own collector deleting it: go on the moment it is done (writing the same bytes again
      // right after deleting them is common: rm, then cp again). Another process's: poll.
      const ours = this.deleting.get(key);
      await (ours ?? new Promise((r) => setTimeout(r, 25)));
    }
  }

  /** End an upload lease without a commit: its key is queued (collected if nothing references it). */
  private releaseLease(lease: number): void {
    this.engine.transaction(() => {
      const key = this.rows.leaseKey(lease);
      if (key === undefined) return;
      this.rows.deleteLease(lease);
      this.dropBlobs([key]);
    }, FREEING);
  }

  /** A stored blob that will not be committed: drop its lease and collect it if unreferenced. */
  abandonBlob(ref: BlobRef): void {
    if (ref.lease !== undefined) this.releaseLease(ref.lease);
    else if (ref.key !== EMPTY_BLOB_KEY) this.engine.transaction(() => this.dropBlobs([ref.key]), FREEING);
  }

  // ───────────────────────────── holds (D7) ─────────────────────────────

  /**
   * Hold `key`'s bytes for a reader (D7): until `release()`, no collector in any process deletes
   * them, even once no file references them. Refused (FileNotFound) when the bytes are already
   * gone or being deleted — the file the caller resolved was deleted meanwhile: resolve again.
   * One row per key and process, counted in memory, so holding a key twice costs no write. On a
   * library this user may only read nothing can be recorded: the hold is then a no-op (such a
   * reader cannot protect its bytes, as before holds existed).
   */
  holdBlob(key: string): BlobHold {
    if (key === EMPTY_BLOB_KEY) return NO_HOLD;
    if (this.readOnly()) return { key, release: () => undefined }; // nothing can be recorded (see above)
    let entry = this.holds.get(key);
    if (!entry) {
      let id: number;
      try {
        id = this.engine.transaction(() => {
          if (this.rows.doomed(key)) throw fail('FileNotFound', 'the file was deleted while it was being opened (its bytes are being deleted)', key);
          if (!this.rows.referenced(key) && !this.rows.leased(key) && !this.rows.queued(key)) {
            throw fail('FileNotFound', 'the file was deleted while it was being opened (its bytes are gone)', key);
          }
          const t = nowUs();
          return this.rows.insertHold(key, processOwner(), t);
        });
      } catch (e) {
        if (isSmhError(e, 'LibraryReadOnly')) return { key, release: () => undefined };
        throw e;
      }
      entry = { id, refs: 0 };
      this.holds.set(key, entry);
      this.startHeartbeat();
    }
    entry.refs++;
    const held = entry;
    let released = false;
    return {
      key,
      release: () => {
        if (released) return;
        released = true;
        if (--held.refs > 0 || this.holds.get(key) !== held) return;
        this.holds.delete(key);
        if (this.engine.closed) return; // close() dropped the rows
        let queued = false;
        try {
          queued = this.engine.transaction(() => {
            this.rows.deleteHold(held.id);
            return this.rows.queued(key);
          }, FREEING);
        } catch (e) {
          // The row stays until this process is gone or the next collection reaps it.
          console.error(`smhfs: releasing a blob hold failed (it is cleaned up later): ${(e as Error).message}`);
          return;
        }
        if (queued) this.scheduleCollect([key]);
      },
    };
  }

  /** Keep this process's holds and leases alive for other processes' collectors. */
  private startHeartbeat(): void {
    if (this.heartbeat || this.engine.closed) return;
    this.heartbeat = setInterval(() => {
      if (this.engine.closed) return;
      try {
        const t = nowUs();
        const n = this.engine.transaction(() => this.rows.beatHolds(processOwner(), t) + this.rows.beatLeases(processOwner(), t));
        if (n === 0 && this.holds.size === 0) {
          clearInterval(this.heartbeat);
          this.heartbeat = undefined;
        }
      } catch (e) {
        console.error(`smhfs: blob hold heartbeat failed (will retry): ${(e as Error).message}`);
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /**
   * Clean the rows of processes that are gone (`ownerGone`): their holds are dropped, their
   * upload leases end (the keys are queued: collected unless something references them), and
   * keys their collector had doomed are queued again (their delete may or may not have happened).
   */
  reapDeadOwners(opts: { dryRun?: boolean } = {}): ReapResult {
    const now = nowUs();
    const deadHolders = this.rows.holdOwners()
      .filter((h) => ownerGone(h.owner, h.heartbeat, now))
      .map((h) => h.owner);
    const deadLeases = this.rows.leases().filter(
      (p) => p.owner !== processOwner() && (p.heartbeat === null ? isLocalOwnerDead(p.owner) || now - p.created > LEGACY_LEASE_STALE_US : ownerGone(p.owner, p.heartbeat, now)),
    );
    const deadDoomed = this.rows.doomedAll().filter(
      (d) => d.owner !== processOwner() && ownerGone(d.owner, d.created, now),
    );
    const r: ReapResult = { holds: 0, leases: deadLeases.length, doomed: deadDoomed.length };
    if (opts.dryRun) {
      r.holds = this.rows.countHoldsOf(deadHolders);
      return r;
    }
    if (deadHolders.length === 0 && deadLeases.length === 0 && deadDoomed.length === 0) return r;
    this.engine.transaction(() => {
      for (const o of deadHolders) r.holds += this.rows.deleteHoldsOf(o);
      for (const p of deadLeases) {
        this.rows.deleteLease(p.id);
        this.dropBlobs([p.key]);
      }
      for (const d of deadDoomed) {
        this.rows.undoom(d.key);
        this.dropBlobs([d.key]);
      }
    }, FREEING);
    return r;
  }



  scheduleCollect(keys: string[]): void {
    for (const k of keys) if (k !== EMPTY_BLOB_KEY) this.gcQueue.add(k);
    if (this.gcQueue.size === 0 || this.gcRunning) return;
    this.gcRunning = (async () => {
      try {
        while (this.gcQueue.size > 0 && !this.engine.closed) {
          const batch = [...this.gcQueue];
          this.gcQueue.clear();
          await this.collectKeys(batch);
        }
      } catch (e) {
        console.error(`smhfs: blob collection failed (will retry at the next garbage collection): ${(e as Error).message}`);
      } finally {
        this.gcRunning = undefined;
      }
    })();
  }

  /**
   * T6/D3: delete those of these queued keys that no committed metadata, no upload lease and no
   * hold references. They are doomed first (in a transaction), so no new commit or hold can start
   * using them; a referenced key leaves the queue; a leased or held one stays queued.
   */
  private async collectKeys(keys: string[]): Promise<number> {
    const doomed = this.engine.transaction(() =>
      keys.filter((k) => {
        if (!this.rows.queued(k)) return false; // not (or no longer) on the library's records
        if (this.rows.referenced(k)) {
          this.rows.dequeue(k);
          return false;
        }
        if (this.rows.leased(k) || this.rows.held(k)) return false;
        this.rows.doom(k, processOwner(), nowUs());
        this.rows.dequeue(k);
        return true;
      }),
      // Durable before any bytes go: it syncs the log up to and including the commits that
      // dropped these keys' last references, so no crash (PostgreSQL's synchronous_commit=off,
      // SQLite's synchronous=NORMAL on a power loss) can bring back a reference to deleted bytes.
      DOOMING,
    );
    let deleted = 0;
    const done = new Map<string, () => void>();
    for (const k of doomed) this.deleting.set(k, new Promise<void>((r) => done.set(k, r)));
    const finish = (k: string): void => {
      this.deleting.delete(k);
      done.get(k)?.();
    };
    let failure: unknown;
    try {
      for (const key of doomed) {
        try {
          await this.blobs.delete(key);
          if (!this.engine.closed) this.engine.transaction(() => this.rows.undoom(key), FREEING);
          deleted++;
        } catch (e) {
          // Back on the queue for the next collection; the bytes are intact or gone, both fine.
          failure ??= e;
          if (!this.engine.closed) {
            this.engine.transaction(() => {
              this.rows.undoom(key);
              this.rows.enqueue(key, nowUs());
            }, FREEING);
          }
        } finally {
          finish(key);
        }
      }
    } finally {
      for (const k of doomed) finish(k); // closed mid-way: rows left doomed are reaped once this process is gone
    }
    if (failure !== undefined) throw failure;
    return deleted;
  }

  /**
   * Collection from the library's own records (D3, B6): reap the rows of dead processes, then
   * delete every queued key nothing references, leases or holds (up to `limit` keys looked at).
   * Never lists the store: orphans no record mentions are `smhfs gc`'s (collectOrphans).
   */
  async collectGarbage(opts: { limit?: number } = {}): Promise<{ deleted: number; reaped: ReapResult }> {
    const reaped = this.reapDeadOwners();
    const limit = opts.limit ?? Infinity;
    let deleted = 0;
    let seen = 0;
    let after = '';
    while (seen < limit && !this.engine.closed) {
      const keys = this.rows.queuePage(after, Math.min(500, limit - seen));
      if (keys.length === 0) break;
      seen += keys.length;
      after = keys[keys.length - 1]!;
      deleted += await this.collectKeys(keys);
    }
    while (this.gcRunning) await this.gcRunning;
    return { deleted, reaped };
  }

  /** Does any record of the library mention `key` (a file, an upload, a hold, the queue, a deletion)? */
  private mentioned(key: string): boolean {
    return (
      this.rows.referenced(key) ||
      this.rows.leased(key) ||
      this.rows.held(key) ||
      this.rows.queued(key) ||
      this.rows.doomed(key) !== undefined
    );
  }

  /**
   * D3, `smhfs gc`: the keys in the store that no record of the library mentions (orphans), with
   * their size and age. The only place the store is listed to find garbage; it deletes nothing.
   */
  async listOrphans(onProgress?: (listed: number) => void): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    let listed = 0;
    for await (const b of this.blobs.list()) {
      if (b.key !== EMPTY_BLOB_KEY && !this.mentioned(b.key)) out.push(b);
      if (++listed % 1000 === 0) onProgress?.(listed);
    }
    onProgress?.(listed);
    return out;
  }

  /**
   * Delete orphans found by `listOrphans`. Each batch is doomed first (in a transaction that
   * checks again that nothing mentions the key), so an upload of the same bytes that started
   * since waits, and a crash leaves doomed rows that the next collection finishes.
   */
  async deleteOrphans(keys: string[], onProgress?: (deleted: number) => void): Promise<{ deleted: number }> {
    let deleted = 0;
    for (let i = 0; i < keys.length && !this.engine.closed; i += 200) {
      const batch = this.engine.transaction(() =>
        keys.slice(i, i + 200).filter((k) => {
          if (k === EMPTY_BLOB_KEY || this.mentioned(k)) return false;
          this.rows.doom(k, processOwner(), nowUs());
          return true;
        }),
        FREEING,
      );
      for (const key of batch) {
        try {
          await this.blobs.delete(key);
        } finally {
          this.engine.transaction(() => this.rows.undoom(key), FREEING);
        }
        deleted++;
        if (deleted % 100 === 0) onProgress?.(deleted);
      }
    }
    onProgress?.(deleted);
    return { deleted };
  }

  /** Keys on the library's deletion queue (fsck, gc). */
  queuedBlobCount(): number {
    return this.rows.queueCount();
  }

  /** Whether collection started by this process is still running. */
  async idle(): Promise<void> {
    while (this.gcRunning) await this.gcRunning;
  }

  get collecting(): Promise<void> | undefined {
    return this.gcRunning;
  }

  /** Any key on the deletion queue? */
  backlog(): boolean {
    return this.rows.queueAny();
  }

  /**
   * On a clean close: stop the heartbeat and end this process's holds and its uncommitted
   * uploads' leases (their keys are queued, so the next collection deletes what nothing references).
   * Read-only or busy: the rows are reaped once this process is gone. Nothing is collected on the way out.
   */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    try {
      // A process that never named itself (processOwner) owns no rows: nothing to ask.
      if (processOwnerMade() && this.rows.ownsRows(processOwner())) {
        this.engine.transaction(() => {
          this.rows.deleteHoldsOf(processOwner());
          const t = nowUs();
          for (const l of this.rows.leasesOf(processOwner())) {
            this.rows.deleteLease(l.id);
            if (l.key !== EMPTY_BLOB_KEY) this.rows.enqueue(l.key, t);
          }
        });
      }
    } catch {
      // read-only or busy: the rows are reaped once this process is gone
    }
    this.holds.clear();
  }
}
