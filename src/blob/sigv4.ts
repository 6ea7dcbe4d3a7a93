/**
 * AWS Signature Version 4 for the lean S3 reader (s3-get.ts), on node:crypto alone.
 *
 * Why not @smithy/signature-v4: it pulls in @smithy/core (~340 KB of JavaScript) for a mount that
 * otherwise loads no SDK code, and it is slow per request (a chain of awaited hash objects,
 * Uint8Array conversions and a string-keyed key cache hashing the secret every time): measured
 * 20 KiB allocated and 54–64 µs per signature against 7.4 KiB and 21–29 µs here. What it does is
 * the same, byte for byte (test/blob-sigv4.test.ts compares both on random requests): S3's
 * flavour, i.e. the path is signed as sent (no normalisation, no double encoding); the
 * x-amz-content-sha256 header, when present, is the payload hash (else the empty body's);
 * authorization/x-amz-date/date headers given are dropped and x-amz-date (plus
 * x-amz-security-token with a session token) added; hop-by-hop headers are not signed.
 * The derived signing key is cached per day, region, service and secret (one entry: a mount
 * signs with one identity).
 */
import { createHash, createHmac } from 'node:crypto';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface SignableRequest {
  method: string;
  /** The path exactly as it goes on the wire (already percent-encoded). */
  path: string;
  query?: Record<string, string | string[]>;
  headers: Record<string, string>;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Never signed (proxies and clients change them), as the SDK's signer. */
const UNSIGNABLE = new Set([
  'authorization', 'cache-control', 'connection', 'expect', 'from', 'keep-alive', 'max-forwards', 'pragma',
  'referer', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'x-amzn-trace-id',
]);
/** Dropped from the request: the signer writes them. */
const GENERATED = new Set(['authorization', 'x-amz-date', 'date']);

/** RFC 3986 percent-encoding, as SigV4 wants it (also `!'()*`). */
export function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(query: Record<string, string | string[]> | undefined): string {
  if (!query) return '';
  const parts: Array<[string, string]> = [];
  for (const key of Object.keys(query)) {
    if (key.toLowerCase() === 'x-amz-signature') continue;
    const k = uriEscape(key);
    const v = query[key];
    if (typeof v === 'string') parts.push([k, `${k}=${uriEscape(v)}`]);
    else if (Array.isArray(v) && v.length > 0) parts.push([k, v.map((x) => `${k}=${uriEscape(x)}`).sort().join('&')]);
  }
  parts.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return parts.map((p) => p[1]).join('&');
}

export class SigV4 {
  readonly region: string;
  readonly service: string;
  #keyFor = '';
  #key: Buffer | undefined;

  constructor(region: string, service = 's3') {
    this.region = region;
    this.service = service;
  }

  /**
   * The headers to send: `req.headers` without authorization/x-amz-date/date, plus x-amz-date,
   * x-amz-security-token (with a session token) and authorization. A new object.
   */
  sign(creds: AwsCredentials, req: SignableRequest, date = new Date()): Record<string, string> {
    const longDate = date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
    const shortDate = longDate.slice(0, 8);
    const out: Record<string, string> = {};
    for (const name of Object.keys(req.headers)) if (!GENERATED.has(name.toLowerCase())) out[name] = req.headers[name]!;
    out['x-amz-date'] = longDate;
    if (creds.sessionToken) out['x-amz-security-token'] = creds.sessionToken;
    let payloadHash = EMPTY_SHA256;
    const canonical = new Map<string, string>();
    for (const name of Object.keys(out).sort()) {
      const value = out[name];
      if (value === undefined || value === null) continue;
      const lower = name.toLowerCase();
      if (UNSIGNABLE.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-')) continue;
      canonical.set(lower, value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, ''));
    }
    // The payload hash is the first x-amz-content-sha256 in the headers' own order (as the SDK's).
    for (const name of Object.keys(out)) {
      if (name.toLowerCase() === 'x-amz-content-sha256') {
        payloadHash = out[name]!;
        break;
      }
    }
    const names = [...canonical.keys()].sort();
    let headerLines = '';
    for (const n of names) headerLines += `${n}:${canonical.get(n)}\n`;
    const signedHeaders = names.join(';');
    const canonicalRequest = `${req.method}\n${req.path}\n${canonicalQuery(req.query)}\n${headerLines}\n${signedHeaders}\n${payloadHash}`;
    const scope = `${shortDate}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')}`;
    const signature = createHmac('sha256', this.#signingKey(creds, shortDate)).update(stringToSign, 'utf8').digest('hex');
    out['authorization'] = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return out;
  }

  #signingKey(creds: AwsCredentials, shortDate: string): Buffer {
    const id = `${shortDate}\n${creds.secretAccessKey}`;
    if (this.#key && this.#keyFor === id) return this.#key;
    let key = createHmac('sha256', `AWS4${creds.secretAccessKey}`).update(shortDate, 'utf8').digest();
    for (const part of [this.region, this.service, 'aws4_request']) key = createHmac('sha256', key).update(part, 'utf8').digest();
    this.#keyFor = id;
    this.#key = key;
    return key;
  }
}
