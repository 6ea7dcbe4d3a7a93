/**
 * Checks of the values a caller passes in (a conflict strategy, a storage class, user metadata),
 * and how a user-given string is quoted in a message. Shared by every operation that takes them.
 */
import { fail } from '../errors.js';
import { truncateUtf8 } from './paths.js';
import { CONFLICTS, DEFAULT_CONFLICT, STORAGE_CLASSES, type Conflict, type StorageClass } from './types.js';

/** The largest value of one extended attribute or metadata entry. */
export const MAX_XATTR_VALUE = 64 * 1024;

/** A user-given string inside a message, cut short: errors never echo a megabyte back. */
export function quote(s: string, maxBytes = 200): string {
  const cut = truncateUtf8(s, maxBytes);
  return JSON.stringify(cut === s ? s : `${cut}…`);
}

export function checkConflict(value: unknown): Conflict {
  if (value === undefined) return DEFAULT_CONFLICT.place;
  if (typeof value !== 'string' || !(CONFLICTS as readonly string[]).includes(value)) {
    throw fail('InvalidArgument', `conflict strategy must be one of ${CONFLICTS.join(', ')}, not '${String(value)}'`);
  }
  return value as Conflict;
}

export function checkStorageClass(value: unknown): StorageClass {
  if (typeof value !== 'string' || !(STORAGE_CLASSES as readonly string[]).includes(value)) {
    throw fail('InvalidArgument', `storage class must be one of ${STORAGE_CLASSES.join(', ')}, not '${String(value)}'`);
  }
  return value as StorageClass;
}

export function checkMeta(meta: Record<string, string> | undefined): Record<string, string> {
  if (meta === undefined) return {};
  for (const [k, v] of Object.entries(meta)) {
    if (k.length === 0 || Buffer.byteLength(k) > 255 || typeof v !== 'string' || Buffer.byteLength(v) > MAX_XATTR_VALUE) {
      throw fail('InvalidArgument', `bad metadata entry '${k}'`);
    }
  }
  return meta;
}
