/**
 * The row primitives of the library (meta, spaces, blob records, tasks, tokens): typed methods
 * the rules call, with no SQL and nothing engine-specific in their shape (no rowids, no
 * `INSERT OR IGNORE`, no pragmas). Each engine implements them with its own statements
 * (src/store/sqlite/rows.ts). The rows of a space's tree are in space-rows.ts.
 *
 * A method returning a new row's id is the engine's business (SQLite: lastInsertRowid;
 * PostgreSQL: RETURNING id).
 */
import type { TaskState } from './types.js';

export interface MetaRows {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  /** Set `key` unless it has a value. */
  add(key: string, value: string): void;
  /** Up to `n` distinct blob keys nodes reference, other than `except`. */
  blobSample(except: string, n: number): string[];
  space(name: string): { root: number; trash: number } | undefined;
  spaceNames(): string[];
  /** A space's root or recycle-bin directory: a node with no entry. */
  insertSpaceDir(space: string, mode: number, timeUs: number): number;
  insertSpace(name: string, root: number, trash: number, timeUs: number): void;
  /** Size and layout of any node holding `blob`. */
  blobSize(blob: string): { size: number; layout: string | null } | undefined;
  /** Bytes of the blobs (other than `emptyKey`) only nodes in recycle bins reference, and the bins' items. */
  trashReclaimable(emptyKey: string): { bytes: number; items: number };
}

export interface LeaseRow {
  id: number;
  key: string;
  owner: string;
  created: number;
  heartbeat: number | null;
}

export interface DoomedRow {
  key: string;
  created: number;
  owner: string | null;
}

/** The records of D3/D7/T6: upload leases (`blob_pending`), holds, the deletion queue, doomed keys. */
export interface BlobRows {
  referenced(key: string): boolean;
  // upload leases
  leased(key: string): boolean;
  leases(): LeaseRow[];
  leaseKey(id: number): string | undefined;
  leasesOf(owner: string): Array<{ id: number; key: string }>;
  insertLease(key: string, owner: string, timeUs: number): number;
  /** Whether there was such a lease. */
  deleteLease(id: number): boolean;
  beatLeases(owner: string, timeUs: number): number;
  // doomed keys (a collector is deleting their bytes)
  doomed(key: string): DoomedRow | undefined;
  doomedAll(): DoomedRow[];
  /** Doom `key` unless it is doomed already. */
  doom(key: string, owner: string, timeUs: number): void;
  undoom(key: string): void;
  // the deletion queue
  queued(key: string): boolean;
  /** Queue `key` unless it is queued already. */
  enqueue(key: string, timeUs: number): void;
  dequeue(key: string): void;
  queuePage(after: string, limit: number): string[];
  queueAny(): boolean;
  queueCount(): number;
  // holds (D7)
  held(key: string): boolean;
  insertHold(key: string, owner: string, timeUs: number): number;
  deleteHold(id: number): void;
  deleteHoldsOf(owner: string): number;
  beatHolds(owner: string, timeUs: number): number;
  holdOwners(): Array<{ owner: string; heartbeat: number }>;
  countHoldsOf(owners: string[]): number;
  /** Does `owner` have a hold or a lease? */
  ownsRows(owner: string): boolean;
}

export interface TaskRow {
  id: number;
  heartbeat: number;
  owner: string | null;
  space: string;
  kind: 'purge-directory';
  state: TaskState;
  subject: string;
  root: number;
  total: number;
  done: number;
  error: string | null;
  created: number;
  updated: number;
}

export interface TaskRows {
  all(): TaskRow[];
  get(id: number): TaskRow | undefined;
  /** Queued tasks, and running ones whose heartbeat is older than `staleUs` or that have an owner. */
  claimable(staleUs: number): TaskRow[];
  claim(id: number, owner: string, timeUs: number): void;
  progress(id: number, done: number, timeUs: number): void;
  finish(id: number, state: 'done' | 'failed', error: string | null, timeUs: number): void;
  /** A purge-directory task, queued. */
  insertPurge(space: string, subject: string, root: number, total: number, timeUs: number): number;
}

export interface TokenRow {
  id: number;
  hash: string;
  space: string;
  grants: string;
  user_id: string | null;
  expires: number;
  created: number;
}

export interface TokenRows {
  insert(hash: string, space: string, grants: string, userId: string | null, expiresUs: number, createdUs: number): void;
  byHash(hash: string): TokenRow | undefined;
  all(): TokenRow[];
  revoke(id: number): boolean;
  revokeHash(hash: string): boolean;
  purgeExpired(nowUs: number): void;
}
