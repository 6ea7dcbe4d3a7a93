/**
 * D1: a library and its blob store know each other. The store keeps an owner marker (a small
 * JSON object beside the blobs, `smhfs-library.json`, written by `BlobStore.createMarker` only
 * where none exists) naming the library id that owns it; every command checks it before the
 * library changes anything, so two libraries never share a store and never delete each other's
 * bytes.
 *
 * - marker names this library: fine;
 * - marker names another library (or cannot be read): refused (`BlobStoreOwned`), nothing written;
 * - no marker, store empty (nothing at all in it): claimed, the marker is written;
 * - no marker, store not empty:
 *   - a new library (`smhfs init`): refused — a library is never created over existing data (D2);
 *   - a library made before markers existed: adopted (marker written) only when the store holds
 *     this library's own blobs — every one of a sample of up to 16 keys it references is there;
 *     otherwise refused (the store holds someone else's data, or the library points at the
 *     wrong store).
 *
 * The verdict is decided from reads only (`inspectStoreOwner`, also what fsck shows); `claim`
 * writes the marker when the verdict allows it. Stores without marker support (test doubles)
 * are 'unsupported' and left alone.
 */
import { fail, SmhError } from '../errors.js';
import type { BlobStore } from '../blob/types.js';

export const MARKER_FORMAT = 'smhfs-blob-store-owner';

export interface OwnerMarker {
  format: typeof MARKER_FORMAT;
  library: string;
  created: string;
}

export type OwnerVerdict =
  | { state: 'ours' }
  | { state: 'claimable' } // empty, unmarked
  | { state: 'adoptable'; sampled: number } // unmarked, holds this library's blobs
  | { state: 'other'; owner: string } // marked by another library
  | { state: 'unreadable'; text: string } // a marker smhfs cannot read
  | { state: 'occupied'; why: string } // unmarked, holds data that is not (shown to be) this library's
  | { state: 'unsupported' };

export function markerText(libraryId: string): string {
  const m: OwnerMarker = { format: MARKER_FORMAT, library: libraryId, created: new Date().toISOString() };
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** The library id a marker names, or undefined when it is not a marker smhfs wrote. */
export function markerOwner(text: string): string | undefined {
  try {
    const v = JSON.parse(text) as Partial<OwnerMarker>;
    return v && v.format === MARKER_FORMAT && typeof v.library === 'string' && v.library !== '' ? v.library : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Decide, from reads only, what this store is to the library `libraryId`. `referenced` is a
 * sample of keys the library references (empty for a new library or one without files);
 * `isNew`: the library is being created now.
 */
export async function inspectStoreOwner(
  store: BlobStore,
  libraryId: string,
  opts: { referenced: string[]; isNew: boolean },
): Promise<OwnerVerdict> {
  if (!store.readMarker || !store.createMarker) return { state: 'unsupported' };
  const text = await store.readMarker();
  if (text !== undefined) {
    const owner = markerOwner(text);
    if (owner === undefined) return { state: 'unreadable', text: text.slice(0, 200) };
    return owner === libraryId ? { state: 'ours' } : { state: 'other', owner };
  }
  const empty = store.isEmpty ? await store.isEmpty() : false;
  if (empty) return { state: 'claimable' };
  if (opts.isNew) return { state: 'occupied', why: 'it is not empty' };
  if (opts.referenced.length === 0) return { state: 'occupied', why: 'it holds data, and this library references no blob to recognise' };
  let missing = 0;
  for (const key of opts.referenced) if ((await store.head(key)) === undefined) missing++;
  if (missing > 0) {
    return { state: 'occupied', why: `${missing} of ${opts.referenced.length} sampled blobs this library references are not in it` };
  }
  return { state: 'adoptable', sampled: opts.referenced.length };
}

/** The one-line refusal for a verdict that does not let `libraryId` use `store`, else undefined. */
export function refusalOf(verdict: OwnerVerdict, store: BlobStore, libraryId: string): SmhError | undefined {
  const where = store.description;
  switch (verdict.state) {
    case 'other':
      return fail(
        'BlobStoreOwned',
        `${where} belongs to library ${verdict.owner}, not to this one (${libraryId}); two libraries on one store would delete each other's files: ` +
          `give this library its own store (another folder or s3 prefix)`,
        where,
      );
    case 'unreadable':
      return fail('BlobStoreOwned', `${where} has an owner marker smhfs cannot read (${verdict.text.replace(/\s+/g, ' ')}); nothing was changed`, where);
    case 'occupied':
      return fail(
        'BlobStoreOwned',
        `${where} has no smhfs owner marker and ${verdict.why}; a library never starts over data it cannot show to be its own: ` +
          `use an empty folder or s3 prefix (nothing was changed)`,
        where,
      );
    default:
      return undefined;
  }
}

/**
 * Check the store before the library uses it, writing the marker when the store is claimable or
 * adoptable. Throws `BlobStoreOwned` (nothing written) otherwise. Returns the verdict acted on.
 */
export async function claimBlobStore(
  store: BlobStore,
  libraryId: string,
  opts: { referenced: string[]; isNew: boolean },
): Promise<OwnerVerdict> {
  const verdict = await inspectStoreOwner(store, libraryId, opts);
  const refusal = refusalOf(verdict, store, libraryId);
  if (refusal) throw refusal;
  if (verdict.state === 'claimable' || verdict.state === 'adoptable') {
    const wrote = await store.createMarker!(markerText(libraryId));
    if (!wrote) {
      // Someone marked it between our look and our write: whose is it?
      const again = await inspectStoreOwner(store, libraryId, opts);
      const r = refusalOf(again, store, libraryId);
      if (r) throw r;
      return again;
    }
  }
  return verdict;
}
