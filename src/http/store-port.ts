/**
 * The part of the store contract (native-notes/store-api.md) the HTTP dialects use, written as a
 * structural type so this layer compiles on its own; `Library` from src/store/library.ts satisfies
 * it. Every call is awaited, so a store method may be synchronous or return a promise.
 */
import type { Readable } from 'node:stream';
import type { ReadStream } from '../blob/page-cache.js';
import type { BlobRef, Conflict, DirEntry, NodeInfo, Placed, RecycleItem, StorageClass, Task } from '../store/types.js';

type Awaitable<T> = T | Promise<T>;

export interface TokenInfo {
  space: string;
  grants: string[];
  userId?: string | null;
  expiresAtUs: number;
}

export interface HttpSpace {
  stat(path: string, opts?: { follow?: boolean }): Awaitable<NodeInfo>;
  readdir(path: string): Awaitable<DirEntry[]>;
  resolveRead(path: string, how: 'smh' | 'bos'): Awaitable<{ node: NodeInfo; link?: NodeInfo }>;
  userMeta(pathOrId: string | number): Awaitable<Record<string, string>>;
  mkdir(path: string, opts: { parents?: boolean; conflict?: Conflict }): Awaitable<Placed>;
  createLink(linkPath: string, linkTo: string, opts: { conflict?: Conflict }): Awaitable<Placed>;
  putSymlink(
    key: string,
    target: string,
    opts: { forbidOverwrite?: boolean; storageClass?: StorageClass; meta?: Record<string, string> },
  ): Awaitable<{ info: NodeInfo; etag: string }>;
  getSymlink(key: string): Awaitable<string>;
  putFile(
    path: string,
    blob: BlobRef,
    opts: { conflict?: Conflict; meta?: Record<string, string>; storageClass?: StorageClass; createParents?: boolean },
  ): Awaitable<Placed>;
  move(from: string, to: string, opts: { conflict?: Conflict }): Awaitable<Placed>;
  copy(from: string, to: string, opts: { conflict?: Conflict }): Awaitable<Placed>;
  rmdir(path: string): Awaitable<void>;
  remove(path: string, opts: { permanent?: boolean; recursive?: boolean }): Awaitable<{ recycledItemId?: number; taskId?: number }>;
  trashList(): Awaitable<RecycleItem[]>;
  restore(id: number, opts: { conflict?: Conflict }): Awaitable<Placed>;
  purge(id: number): Awaitable<{ taskId?: number }>;
  emptyTrash(): Awaitable<{ purged: number; taskIds: number[] }>;
}

export interface HttpLibrary {
  readonly libraryId: string;
  readonly librarySecret: string;
  space(name: string): HttpSpace;
  createToken(opts: { space: string; grants: string[]; periodSec: number; userId?: string }): Awaitable<{
    accessToken: string;
    expiresIn: number;
  }>;
  checkToken(token: string): Awaitable<TokenInfo | undefined>;
  storeBlobFromStream(stream: Readable): Promise<BlobRef>;
  abandonBlob(ref: BlobRef): Awaitable<unknown>;
  /** Reads go through the page cache (B2); a ReadStream per response gives readahead (B3). */
  readBlob(key: string, offset: number, length: number, stream?: ReadStream, size?: number): Promise<Buffer>;
  readonly cache: { readonly pageSize: number; openStream(): ReadStream };
  runTasks(): Promise<unknown>;
  tasks(): Awaitable<Task[]>;
  task(id: number): Awaitable<Task>;
}
