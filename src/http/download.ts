/**
 * Shared by both dialects: `Range` parsing and streaming a file's content through the one read
 * path (src/vfs/reader.ts: page cache → blob store).
 *
 * B4: the first chunk is read before any header is sent, so a blob that cannot be read at all is a
 * clean 502/503. A failure after that destroys the response: the client sees a connection closed
 * before Content-Length bytes arrived, never short bytes presented as success.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { fail } from '../errors.js';
import type { NodeInfo } from '../store/types.js';
import { RangeError416 } from './errors.js';
import type { ContentReader, OpenContent } from '../vfs/reader.js';

/** Inclusive byte range. */
export interface ByteRange {
  start: number;
  end: number;
}


/**
 * Parse a `Range` header against a size. Absent or empty → undefined (whole body). Anything else
 * that is not one satisfiable `bytes=` range → 416 (we prefer a clear error to silently ignoring a
 * range the client meant, SPEC section 9).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const h = header.trim();
  if (h === '') return undefined;
  const m = /^bytes\s*=\s*(\d*)\s*-\s*(\d*)$/i.exec(h);
  if (!m) {
    const why = /^bytes\s*=.*,/i.test(h) ? 'multiple ranges are not supported' : `malformed Range header: ${JSON.stringify(h)}`;
    throw new RangeError416(why, size);
  }
  const [, a, b] = m as unknown as [string, string, string];
  const num = (s: string): number => {
    const n = Number(s);
    if (!Number.isSafeInteger(n)) throw new RangeError416(`range value out of bounds: ${s}`, size);
    return n;
  };
  if (a === '' && b === '') throw new RangeError416('malformed Range header: no positions', size);
  if (a === '') {
    const n = num(b);
    if (n === 0 || size === 0) throw new RangeError416(`range ${h} not satisfiable for size ${size}`, size);
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = num(a);
  const end = b === '' ? size - 1 : num(b);
  if (end < start) throw new RangeError416(`malformed Range header: ${h} ends before it starts`, size);
  if (start >= size) throw new RangeError416(`range ${h} not satisfiable for size ${size}`, size);
  return { start, end: Math.min(end, size - 1) };
}

async function readChunk(content: OpenContent, offset: number, len: number): Promise<Buffer> {
  // readContent: a sparse file's holes are zeros, never fetched (D8)
  const buf = await content.read(offset, len);
  if (buf.length !== len) throw fail('BlobUnavailable', `short read of blob ${content.version.blob}: ${buf.length} of ${len} bytes at ${offset}`);
  return buf;
}

/**
 * Send the content of `file` (headers other than the length/range ones are the caller's). For HEAD
 * nothing is read.
 */
export async function sendContent(
  reply: FastifyReply,
  reader: ContentReader,
  file: NodeInfo,
  rangeHeader: string | undefined,
  head: boolean,
): Promise<FastifyReply> {
  const size = file.size;
  const range = parseRange(rangeHeader, size);
  const start = range ? range.start : 0;
  const end = range ? range.end : size - 1; // inclusive; -1 for an empty file
  const length = end - start + 1;
  reply.header('accept-ranges', 'bytes');
  if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-length', String(length));
  if (head || length === 0) return reply.send();
  const key = file.blob;
  if (!key) throw fail('BlobMissing', `file ${file.path} has no content blob`, file.path);
  // Chunks are one cache page and end on page boundaries; the reader's own stream makes the page
  // cache read ahead while the client keeps reading sequentially (B3).
  const chunk = reader.cache.pageSize;
  const firstLen = Math.min(length, chunk - (start % chunk));
  // D7: held until the response is done, so a delete by anyone cannot take the bytes mid-body.
  const content = reader.openContent(file);
  let first: Buffer;
  try {
    first = await readChunk(content, start, firstLen);
  } catch (e) {
    content.release();
    throw e;
  }
  async function* rest(): AsyncGenerator<Buffer> {
    yield first;
    let off = start + firstLen;
    while (off <= end) {
      const n = Math.min(chunk, end - off + 1);
      yield await readChunk(content, off, n);
      off += n;
    }
  }
  const body = Readable.from(rest(), { objectMode: false });
  body.once('close', () => content.release());
  return reply.send(body);
}

/** RFC 7231 date from microseconds. */
export function httpDate(us: number): string {
  return new Date(Math.floor(us / 1000)).toUTCString();
}

/** ISO 8601 (SMH style) from microseconds. */
export function isoDate(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString();
}
