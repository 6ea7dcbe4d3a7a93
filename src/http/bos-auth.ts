/**
 * bce-auth-v1 verification, reproducing the canonical request exactly as the official SDK builds
 * it (@baiducloud/sdk src/auth.js):
 *
 *   Authorization  = bce-auth-v1/{ak}/{timestamp}/{expirationSeconds}/{signedHeaders}/{signature}
 *   signingKey     = HMAC-SHA256-hex(sk, "bce-auth-v1/{ak}/{timestamp}/{expirationSeconds}")
 *   canonical      = METHOD \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders
 *   signature      = HMAC-SHA256-hex(signingKey, canonical)
 *
 * CanonicalURI is the request path, URI-encoded except '/' (the SDK encodes the key with
 * `normalize(key, false)` and sends that path; we decode what arrived and encode it again, so any
 * equivalent percent-encoding verifies). CanonicalQueryString is every `k=v` but `authorization`,
 * each URI-encoded, sorted. CanonicalHeaders are the signed headers, `name:value` with the value
 * trimmed and URI-encoded, sorted, joined by '\n'. The signature may also come from an
 * `authorization` query parameter (presigned URLs).
 *
 * As strict as BOS (H3): an empty signed-header list means the default set — host, the
 * content-length/-md5/-type present, and every x-bce-* header present — never "nothing"; with a
 * list, `host`, every x-bce-* header of the request (they change what is stored: symlink target,
 * metadata, storage class, overwrite) and Content-MD5 when sent must be in it, so a captured
 * request cannot be replayed with other ones; a signature is valid for at most
 * MAX_EXPIRATION_SECONDS (7 days, as S3 presigned URLs).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { wire } from './errors.js';

export interface BosCredentials {
  accessKey: string;
  secretKey: string;
}

/** How far a signature's timestamp may lie in the future (client clock ahead of ours). */
export const MAX_FUTURE_SKEW_MS = 15 * 60 * 1000;
/** The longest validity a signature may claim. */
export const MAX_EXPIRATION_SECONDS = 7 * 24 * 3600;
/** Signed by default when the list is empty (besides every x-bce-* header present). */
const DEFAULT_SIGNED = ['host', 'content-length', 'content-md5', 'content-type'];

const ESCAPES: Record<string, string> = { '!': '%21', "'": '%27', '(': '%28', ')': '%29', '*': '%2A' };

/** The SDK's `strings.normalize`: RFC 3986 encoding; with `encodingSlash === false` '/' stays. */
export function uriEncode(s: string, encodingSlash = true): string {
  let r = encodeURIComponent(s).replace(/[!'()*]/g, (c) => ESCAPES[c]!);
  if (!encodingSlash) r = r.replace(/%2F/gi, '/');
  return r;
}

function hmacHex(key: string, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw wire('BosRouteNotFound', `malformed percent-encoding in ${JSON.stringify(s)}`);
  }
}

/** Raw query pairs, decoded, in arrival order. */
export function rawQueryPairs(url: string): Array<[string, string]> {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const out: Array<[string, string]> = [];
  for (const part of url.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    out.push([decode(k), decode(v)]);
  }
  return out;
}

export function canonicalRequest(
  method: string,
  url: string,
  headers: Record<string, string | string[] | undefined>,
  signedHeaders: string[],
): string {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const canonicalUri = uriEncode(decode(rawPath), false);
  const canonicalQuery = rawQueryPairs(url)
    .filter(([k]) => k.toLowerCase() !== 'authorization')
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
    .sort()
    .join('&');
  const canonicalHeaders = signedHeaders
    .map((name) => {
      const raw = headers[name];
      if (raw === undefined) throw wire('SignatureDoesNotMatch', `signed header ${name} is not in the request`);
      const value = (Array.isArray(raw) ? raw.join(',') : raw).trim();
      return `${uriEncode(name)}:${uriEncode(value)}`;
    })
    .sort()
    .join('\n');
  return `${method.toUpperCase()}\n${canonicalUri}\n${canonicalQuery}\n${canonicalHeaders}`;
}

const AUTH_RE = /^bce-auth-v1\/([^/]+)\/(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\/(\d{1,10})\/([^/]*)\/([0-9a-fA-F]{64})$/;

/**
 * Verify a request; throws a WireError (AccessDenied, InvalidHTTPAuthHeader, InvalidAccessKeyId,
 * SignatureDoesNotMatch, RequestExpired) when it does not hold.
 */
export function verifyBosRequest(req: FastifyRequest, creds: BosCredentials | undefined, nowMs = Date.now()): void {
  if (!creds) throw wire('BosAccessDenied', 'the BOS dialect is disabled: the server has no access key configured');
  const fromQuery = rawQueryPairs(req.url).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const header = req.headers.authorization;
  const auth = (fromQuery ?? header ?? '').trim();
  if (auth === '') throw wire('BosAccessDenied', 'missing Authorization (bce-auth-v1 signature required)');
  const m = AUTH_RE.exec(auth);
  if (!m) throw wire('InvalidHTTPAuthHeader', 'Authorization is not bce-auth-v1/{ak}/{timestamp}/{expiration}/{signedHeaders}/{signature}');
  const [, ak, timestamp, expStr, signed, signature] = m as unknown as [string, string, string, string, string, string];
  if (ak !== creds.accessKey) throw wire('InvalidAccessKeyId', `access key ${ak} is not known to this server`);
  const tsMs = Date.parse(timestamp);
  const expiration = Number(expStr);
  if (!Number.isFinite(tsMs) || expiration <= 0) throw wire('InvalidHTTPAuthHeader', `bad timestamp or expiration in Authorization`);
  if (expiration > MAX_EXPIRATION_SECONDS) {
    throw wire('InvalidHTTPAuthHeader', `a signature is valid for at most ${MAX_EXPIRATION_SECONDS} seconds (7 days), not ${expiration}`);
  }
  const present = (name: string): boolean => {
    const v = req.headers[name];
    return v !== undefined && (Array.isArray(v) ? v.join(',') : v).trim() !== '';
  };
  const bceHeaders = Object.keys(req.headers).filter((h) => h.startsWith('x-bce-') && present(h));
  const signedHeaders = signed === '' ? [...DEFAULT_SIGNED.filter(present), ...bceHeaders] : signed.split(';').map((h) => h.trim().toLowerCase());
  const unsigned = [...(present('host') ? ['host'] : []), ...bceHeaders, ...(present('content-md5') ? ['content-md5'] : [])].filter(
    (h) => !signedHeaders.includes(h),
  );
  if (unsigned.length > 0) {
    throw wire('SignatureDoesNotMatch', `the headers ${unsigned.join(', ')} must be signed (host, Content-MD5 and every x-bce-* header sent)`);
  }
  const canonical = canonicalRequest(req.method, req.url, req.headers, signedHeaders);
  const signingKey = hmacHex(creds.secretKey, `bce-auth-v1/${ak}/${timestamp}/${expStr}`);
  const expected = Buffer.from(hmacHex(signingKey, canonical), 'hex');
  const given = Buffer.from(signature.toLowerCase(), 'hex');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw wire('SignatureDoesNotMatch', 'the request signature does not match the signature computed by the server; check the secret key and signing method');
  }
  if (nowMs > tsMs + expiration * 1000 || nowMs < tsMs - MAX_FUTURE_SKEW_MS) {
    throw wire(
      'RequestExpired',
      `request has expired: signed at ${timestamp}, valid ${expiration}s, server time ${new Date(nowMs).toISOString().replace(/\.\d+Z$/, 'Z')}`,
    );
  }
}
