/**
 * Small helpers every blob store shares: argument checks that turn bad input into typed errors
 * before it reaches a path or a URL, and the one way we iterate a `Readable | Buffer` body.
 */
import type { Readable } from 'node:stream';
import { SmhError } from '../errors.js';
import { isBlobKey } from './hash.js';
import { EMPTY_BLOB_KEY } from './types.js';

/** A key is 64 lowercase hex digits; anything else could escape the store's directory or prefix. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || !isBlobKey(key)) {
    throw new SmhError('InvalidArgument', `not a blob key (want 64 lowercase hex digits): ${String(key).slice(0, 80)}`, String(key));
  }
}

export function checkRange(key: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new SmhError('InvalidArgument', `bad blob range offset=${offset} length=${length}`, key);
  }
}

/**
 * The checks every `getRangeInto` starts with; returns the bytes the targets want (0: nothing to
 * do). The empty blob has no bytes to fill anything with.
 */
export function checkRangeInto(key: string, offset: number, targets: Buffer[]): number {
  checkKey(key);
  const total = targets.reduce((a, t) => a + t.length, 0);
  checkRange(key, offset, total);
  if (total > 0 && key === EMPTY_BLOB_KEY) throw new SmhError('BlobUnavailable', `the empty blob has no bytes at ${offset}`, key);
  return total;
}

/** The bytes a getRange of a blob of `size` bytes must return. */
export function expectedLength(size: number, offset: number, length: number): number {
  return Math.max(0, Math.min(length, size - offset));
}

export async function* chunksOf(body: Readable | Buffer): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(body)) {
    if (body.length > 0) yield body;
    return;
  }
  for await (const chunk of body) {
    yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
  }
}

export function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
