/**
 * Error rendering for both dialects. Domain errors (`SmhError`) are mapped through the one table in
 * ./status.ts. The only codes that do not come from there are the dialect-level failures that
 * happen before the store is consulted at all (authentication, unknown routes, transport limits):
 * they have no domain code, so they live in `WIRE` below, each with its status and wire code.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isSmhError, SmhError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
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
  BosRouteNotFound: { status: 400, code: 'InvalidURI' },
  // transport (both dialects)
  EntityTooLarge: { status: 413, code: 'EntityTooLarge' },
  MethodNotAllowed: { status: 405, code: 'MethodNotAllowed' },
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

export interface Rendered {
  status: number;
  smhCode: string;
  bosCode: string;
  message: string;
  /** True when the error is unexpected (a bug or an outage): log it. */
  internal: boolean;
}

function domain(code: ErrorCode, message: string, internal = false): Rendered {
  const h = HTTP_OF[code];
  return { status: h.status, smhCode: h.smhCode, bosCode: h.bosCode, message, internal: internal || h.status >= 500 };
}

/** Turn anything thrown by a handler, a hook, Fastify or the store into a wire error. */
export function render(err: unknown): Rendered {
  if (err instanceof WireError) {
    const w = WIRE[err.kind];
    return { status: w.status, smhCode: w.code, bosCode: w.code, message: err.message, internal: false };
  }
  if (isSmhError(err)) {
    const msg = err.subject !== undefined && !err.message.includes(err.subject) ? `${err.subject}: ${err.message}` : err.message;
    return domain(err.code, msg);
  }
  const e = err as { validation?: unknown; validationContext?: string; code?: string; statusCode?: number; message?: string };
  if (e && typeof e === 'object') {
    if (e.validation) return domain('InvalidArgument', e.message ?? 'invalid request');
    switch (e.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return { ...WIRE.EntityTooLarge, smhCode: WIRE.EntityTooLarge.code, bosCode: WIRE.EntityTooLarge.code, message: 'request body too large', internal: false };
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return domain('InvalidArgument', e.message ?? 'invalid request body');
      default:
        break;
    }
    // Fastify's own 4xx (bad URL encoding and the like) are client errors, not ours.
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return domain('InvalidArgument', e.message ?? 'bad request');
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return domain('Internal', `internal error: ${message}`, true);
}

function logIfInternal(req: FastifyRequest, r: Rendered, err: unknown): void {
  if (r.internal) req.log.error({ err }, 'request failed');
}

/** SMH error body: `{"code","message"}`. */
export function sendSmhError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const r = render(err);
  logIfInternal(req, r, err);
  if (r.status === 416 && err instanceof RangeError416) reply.header('content-range', `bytes */${err.size}`);
  return reply
    .code(r.status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ code: r.smhCode, message: r.message }));
}

/** BOS error body: `{"code","message","requestId"}` (HEAD: headers only). */
export function sendBosError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const r = render(err);
  logIfInternal(req, r, err);
  const requestId = bosRequestId(reply);
  if (r.status === 416 && err instanceof RangeError416) reply.header('content-range', `bytes */${err.size}`);
  reply.code(r.status).header('x-bce-error-code', r.bosCode);
  if (req.method === 'HEAD') return reply.send();
  return reply
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ code: r.bosCode, message: r.message, requestId }));
}

export function bosRequestId(reply: FastifyReply): string {
  let id = reply.getHeader('x-bce-request-id');
  if (typeof id !== 'string') {
    id = randomUUID();
    reply.header('x-bce-request-id', id);
  }
  return id;
}

/** A range past the end: carries the size for `Content-Range: bytes *\/size`. */
export class RangeError416 extends SmhError {
  readonly size: number;
  constructor(message: string, size: number) {
    super('RangeNotSatisfiable', message);
    this.size = size;
  }
}
