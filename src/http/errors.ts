/**
 * Error rendering for both dialects. Domain errors (`SmhError`) are mapped through the one table in
 * ./status.ts. The only codes that do not come from there are the dialect-level failures that
 * happen before the store is consulted at all (authentication, unknown routes, transport limits):
 * they have no domain code, so they live in `WIRE` below, each with its status and wire code.
 *
 * Every error leaves in its dialect's shape (SMH `{code, message}`, BOS `{code, message,
 * requestId}`), whoever raised it — the store, a handler, Fastify (bad URL encoding, body limits)
 * or Node's HTTP parser (431, malformed requests: `clientErrorResponse`). Messages echo user input
 * cut short (`MAX_MESSAGE_BYTES`); a 5xx says only what kind of failure it was and the request id,
 * the details (blob-store paths, SQL) go to the server log. A client that went away is logged in
 * one quiet line, not as a failure.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isSmhError, SmhError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { truncateUtf8 } from '../store/paths.js';
import { HTTP_OF } from './status.js';

/** Dialect-only failures (never raised by the store). */
export const WIRE = {
  // SMH (H2) and the SMH token endpoint
  EmptyAccessToken: { status: 400, code: 'EmptyAccessToken' },
  InvalidAccessToken: { status: 403, code: 'InvalidAccessToken' },
  InvalidLibrary: { status: 403, code: 'InvalidLibraryIdOrSecret' },
  SmhRouteNotFound: { status: 404, code: 'NotFound' },
  // BOS (bce-auth-v1)
  BosAccessDenied: { status: 403, code: 'AccessDenied' },
  InvalidHTTPAuthHeader: { status: 400, code: 'InvalidHTTPAuthHeader' },
  InvalidAccessKeyId: { status: 403, code: 'InvalidAccessKeyId' },
  SignatureDoesNotMatch: { status: 403, code: 'SignatureDoesNotMatch' },
  RequestExpired: { status: 403, code: 'RequestExpired' },
  BadDigest: { status: 400, code: 'BadDigest' },
  InvalidDigest: { status: 400, code: 'InvalidDigest' },
  BosRouteNotFound: { status: 400, code: 'InvalidURI' },
  // transport (both dialects)
  EntityTooLarge: { status: 413, code: 'EntityTooLarge' },
  MethodNotAllowed: { status: 405, code: 'MethodNotAllowed' },
  HeaderTooLarge: { status: 431, code: 'RequestHeaderTooLarge' },
  RequestTimeout: { status: 408, code: 'RequestTimeout' },
  MalformedRequest: { status: 400, code: 'MalformedRequest' },
} as const;
export type WireKind = keyof typeof WIRE;

export class WireError extends Error {
  readonly kind: WireKind;
  constructor(kind: WireKind, message: string) {
    super(message);
    this.name = 'WireError';
    this.kind = kind;
  }
}

export function wire(kind: WireKind, message: string): WireError {
  return new WireError(kind, message);
}

/** Longest message an error sends back (input it quotes is cut, never a megabyte echoed). */
export const MAX_MESSAGE_BYTES = 1024;

export interface Rendered {
  status: number;
  smhCode: string;
  bosCode: string;
  message: string;
  /** True when the error is unexpected (a bug or an outage): log it. */
  internal: boolean;
}

/** What a 5xx tells the client: the kind of failure, never its details (paths, SQL). */
const PUBLIC_5XX: Partial<Record<ErrorCode, string>> = {
  BlobMissing: "the file's content is missing from the blob store; run `smhfs fsck` on the library",
  BlobUnavailable: 'the blob store could not be read or written; try again',
  Busy: 'the library is busy; try again',
  MetaUnavailable: 'the library database cannot be reached; try again',
  LibraryReadOnly: 'the library cannot be written on the server',
  InsufficientStorage: "the server's disk is full",
};

function domain(code: ErrorCode, message: string, internal = false): Rendered {
  const h = HTTP_OF[code];
  // 501 is an answer (an operation we do not implement), not a failure
  return { status: h.status, smhCode: h.smhCode, bosCode: h.bosCode, message, internal: internal || (h.status >= 500 && h.status !== 501) };
}

function cut(message: string): string {
  const m = truncateUtf8(message, MAX_MESSAGE_BYTES);
  return m === message ? m : `${m}…`;
}

/** Turn anything thrown by a handler, a hook, Fastify or the store into a wire error. */
export function render(err: unknown): Rendered {
  if (err instanceof WireError) {
    const w = WIRE[err.kind];
    return { status: w.status, smhCode: w.code, bosCode: w.code, message: cut(err.message), internal: false };
  }
  if (isSmhError(err)) {
    const subject = err.subject === undefined ? undefined : truncateUtf8(err.subject, 200) + (Buffer.byteLength(err.subject) > 200 ? '…' : '');
    const msg = subject !== undefined && !err.message.includes(err.subject!) ? `${subject}: ${err.message}` : err.message;
    return domain(err.code, cut(msg));
  }
  const e = err as { validation?: unknown; validationContext?: string; code?: string; statusCode?: number; message?: string };
  if (e && typeof e === 'object') {
    if (e.validation) return domain('InvalidArgument', cut(e.message ?? 'invalid request'));
    switch (e.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return { status: 413, smhCode: WIRE.EntityTooLarge.code, bosCode: WIRE.EntityTooLarge.code, message: 'request body too large', internal: false };
      case 'FST_ERR_MAX_PARAM_LENGTH':
        return domain('PathTooLong', 'the path is too long');
      case 'FST_ERR_BAD_URL':
        return domain('NameNotUtf8', 'the URL is not valid UTF-8 after percent-decoding; names must be UTF-8');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return domain('InvalidArgument', cut(e.message ?? 'invalid request body'));
      default:
        break;
    }
    // Fastify's own 4xx are client errors, not ours; their messages may quote the URL.
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return domain('InvalidArgument', `bad request (${e.code ?? e.statusCode})`);
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return domain('Internal', `internal error: ${message}`, true);
}

/** The client message of a rendered error: 5xx details stay in the log. */
function publicMessage(r: Rendered, err: unknown, requestId: string): string {
  if (r.status < 500 || r.status === 501) return r.message;
  const code = isSmhError(err) ? err.code : 'Internal';
  const what = PUBLIC_5XX[code] ?? 'internal error';
  return `${what} (request ${requestId}; the server log has the details)`;
}

/** A request whose client is gone: nothing to answer, nothing to worry about. */
export function clientGone(req: FastifyRequest): boolean {
  // (not req.raw.destroyed: a request whose body was read to the end is destroyed too)
  const sock = req.raw.socket as Socket | null;
  return sock === null || sock.destroyed || !sock.writable;
}

function logFailure(req: FastifyRequest, r: Rendered, err: unknown): void {
  if (r.internal) req.log.error({ err }, 'request failed');
}

/**
 * An answer sent before the request's body was read (an authentication failure, a refused
 * destination): close the connection after the answer rather than read on — a client must not
 * make the server swallow a gigabyte it has already refused.
 */
export function closeIfBodyUnread(req: FastifyRequest, reply: FastifyReply): void {
  if (req.raw.complete) return;
  const len = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (len === undefined || len === '0')) return;
  reply.header('connection', 'close');
  const socket = req.raw.socket as Socket | null;
  reply.raw.once('finish', () => {
    if (!socket || socket.destroyed) return;
    socket.end(); // our FIN after the answer; then stop waiting for the rest of the body
    setTimeout(() => socket.destroy(), 1000).unref();
  });
}

function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown, dialect: 'smh' | 'bos'): FastifyReply {
  if (clientGone(req)) {
    req.log.info({ reqId: req.id }, 'client closed the connection before the answer');
    return reply;
  }
  const r = render(err);
  logFailure(req, r, err);
  if (reply.sent) return reply;
  if (r.status === 416 && err instanceof RangeError416) reply.header('content-range', `bytes */${err.size}`);
  closeIfBodyUnread(req, reply);
  const message = publicMessage(r, err, String(req.id));
  if (dialect === 'smh') {
    return reply
      .code(r.status)
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify({ code: r.smhCode, message }));
  }
  const requestId = bosRequestId(reply);
  reply.code(r.status).header('x-bce-error-code', r.bosCode);
  if (req.method === 'HEAD') return reply.send();
  return reply
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ code: r.bosCode, message, requestId }));
}

/** SMH error body: `{"code","message"}`. */
export function sendSmhError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  return sendError(req, reply, err, 'smh');
}

/** BOS error body: `{"code","message","requestId"}` (HEAD: headers only). */
export function sendBosError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  return sendError(req, reply, err, 'bos');
}

export function bosRequestId(reply: FastifyReply): string {
  let id = reply.getHeader('x-bce-request-id');
  if (typeof id !== 'string') {
    id = randomUUID();
    reply.header('x-bce-request-id', id);
  }
  return id;
}

/**
 * A whole HTTP response for a failure Node's parser reports before Fastify sees a request (431
 * header too large, 408 header timeout, 400 malformed): the BOS error shape, which carries the
 * SMH one (`code`, `message`) as well, since the dialect is not known yet. `/api/` in the raw
 * request line picks the SMH shape.
 */
export function clientErrorResponse(err: NodeJS.ErrnoException & { rawPacket?: Buffer }): string {
  const kind: WireKind =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'HeaderTooLarge' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT' ? 'RequestTimeout' : 'MalformedRequest';
  const w = WIRE[kind];
  const message =
    kind === 'HeaderTooLarge' ? 'the request headers are too large' : kind === 'RequestTimeout' ? 'the request took too long to arrive' : 'malformed HTTP request';
  const line = err.rawPacket ? err.rawPacket.subarray(0, 256).toString('latin1') : '';
  const smh = /^[A-Z]+ \/api\//.test(line);
  const requestId = randomUUID();
  const body = JSON.stringify(smh ? { code: w.code, message } : { code: w.code, message, requestId });
  const reason = kind === 'HeaderTooLarge' ? 'Request Header Fields Too Large' : kind === 'RequestTimeout' ? 'Request Timeout' : 'Bad Request';
  return (
    `HTTP/1.1 ${w.status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
    (smh ? '' : `x-bce-request-id: ${requestId}\r\nx-bce-error-code: ${w.code}\r\n`) +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** A range past the end: carries the size for `Content-Range: bytes *\/size`. */
export class RangeError416 extends SmhError {
  readonly size: number;
  constructor(message: string, size: number) {
    super('RangeNotSatisfiable', message);
    this.size = size;
  }
}
