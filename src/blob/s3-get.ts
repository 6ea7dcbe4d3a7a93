/**
 * Ranged GETs for the S3 store over plain HTTP that read the body straight into the caller's
 * buffers — the page cache's page buffers — with no chunk in between.
 *
 * Why not the SDK: its GET hands the body over as a stream of freshly allocated 64 KiB chunks
 * (socket → HTTP parser → IncomingMessage → 'data'), which we then copy into pages. Measured here
 * on 512 MiB from s3rver, 8 × 8 MiB GETs in flight: the SDK reader costs 1.4 CPU-s per GiB, this
 * one 0.33 (the socket's `onread` option lets the kernel copy each body straight into the page
 * it belongs to; nothing is allocated per chunk, so there is nothing for the GC either). No HTTP
 * library offers reads into caller-owned buffers; undici and node:http both allocate per chunk.
 *
 * Scope, kept small on purpose: GET with a Range header, HTTP/1.1 keep-alive, a Content-Length
 * body; and the few small requests a mount makes at start (`simple`: HEAD of the bucket or of an
 * object, GET of the owner marker), so that a mount that only reads never loads the AWS SDK
 * (s3-store.ts). Requests are signed by our own SigV4 signer (sigv4.ts) with credentials the
 * store gives: fixed ones, or a provider (the SDK's chain, so refreshing credentials keep
 * working). What this does not handle — TLS
 * (`onread` sees ciphertext), object bytes sent chunked — is reported as
 * `Unsupported` and the store goes the SDK's way for that request (https endpoints always do).
 * (A header block over 64 KiB is an error: Node's own HTTP client, the SDK's, refuses 16 KiB.)
 *
 * Trust nothing: the status, Content-Range start and length are checked; bytes before the asked
 * offset (a server that ignores Range and sends 200) are skipped, bytes after it are not read
 * (the socket is dropped instead); a body that ends early is an error, never a short success.
 */
import { connect, type Socket } from 'node:net';
import { SigV4, uriEscape, type AwsCredentials } from './sigv4.js';

const HEAD_MAX = 64 * 1024;
const SCRATCH = 64 * 1024;

/** The request cannot be done here (TLS, a chunked body…): use the SDK for it. */
export class Unsupported extends Error {}

/** The answer to a ranged GET, before the body: what the caller's `sink` is asked for. */
export type RangedOutcome = { kind: 'bytes'; got: number } | { kind: 'missing' } | { kind: 'past-end' };

export interface LeanGetterOptions {
  endpoint: URL;
  bucket: string;
  forcePathStyle: boolean;
  /** Fixed credentials, or a provider asked before each request (it caches, as the SDK's do). */
  credentials: AwsCredentials | (() => Promise<AwsCredentials>);
  region: string;
  /** Idle keep-alive sockets are closed after this (default 4 s, below common server timeouts of 5 s). */
  idleMs?: number;
  /** Idle sockets kept at most (default 16). */
  maxIdle?: number;
}

/** The answer to a small request (`simple`): status, headers, and the body when there is one. */
export interface SimpleAnswer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

interface Plan {
  skip: number;
  targets: Buffer[];
  t: number;
  tPos: number;
  want: number;
  got: number;
  /** Body bytes after the wanted ones (discarded when few, else the socket is dropped). */
  rest: number;
  /** Told of each run of wanted bytes right where it landed (in a target), in order. */
  onBytes?: ((landed: Buffer) => void) | undefined;
}

/** One keep-alive connection reading with `onread`; one request at a time. */
class Conn {
  readonly sock: Socket;
  readonly #head = Buffer.allocUnsafe(HEAD_MAX);
  readonly #scratch = Buffer.allocUnsafe(SCRATCH);
  #headLen = 0;
  #phase: 'idle' | 'head' | 'body' | 'dead' = 'idle';
  #plan: Plan | undefined;
  #onHead: ((status: number, headers: Map<string, string>) => Plan | 'drop') | undefined;
  #done: ((reusable: boolean) => void) | undefined;
  #fail: ((e: Error) => void) | undefined;
  /** Bytes of this response seen (0: the server has not answered yet: safe to retry elsewhere). */
  received = 0;
  used = false;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(host: string, port: number, onGone: (c: Conn) => void) {
    this.sock = connect({
      host,
      port,
      onread: {
        buffer: () => this.#buffer(),
        callback: (n: number, buf: Uint8Array) => {
          this.#read(n, buf);
          return true; // keep reading
        },
      },
    });
    this.sock.setNoDelay(true);
    const gone = (e?: Error): void => {
      const was = this.#phase;
      this.#phase = 'dead';
      onGone(this);
      if (was === 'head' || was === 'body') this.#fail?.(e ?? new Error(this.received === 0 ? 'connection closed before an answer' : 'connection closed mid-body'));
    };
    this.sock.on('error', (e) => gone(e));
    this.sock.on('close', () => gone());
  }

  get alive(): boolean {
    return this.#phase === 'idle';
  }

  /**
   * Send `request` (a full header block) and read the answer: `onHead` sees the status and
   * headers and returns how to read the body, or 'drop' (the body is not wanted: the socket is
   * closed). Resolves with whether the socket is reusable.
   */
  request(request: string, onHead: (status: number, headers: Map<string, string>) => Plan | 'drop'): Promise<boolean> {
    this.used = true;
    this.received = 0;
    this.#headLen = 0;
    this.#phase = 'head';
    this.#onHead = onHead;
    this.#plan = undefined;
    return new Promise<boolean>((resolve, reject) => {
      this.#done = resolve;
      this.#fail = reject;
      this.sock.write(request, 'latin1');
    });
  }

  destroy(e?: Error): void {
    this.sock.destroy(e);
  }

  #buffer(): Buffer {
    const p = this.#plan;
    if (this.#phase === 'body' && p) {
      if (p.skip > 0) return this.#scratch.subarray(0, Math.min(SCRATCH, p.skip));
      if (p.want > p.got) {
        const target = p.targets[p.t]!;
        return target.subarray(p.tPos, p.tPos + Math.min(target.length - p.tPos, p.want - p.got));
      }
      return this.#scratch.subarray(0, Math.min(SCRATCH, Math.max(1, p.rest)));
    }
    if (this.#phase === 'head' && this.#headLen < HEAD_MAX) return this.#head.subarray(this.#headLen);
    // Node asks for the next buffer right after each read, so the one handed out while idle is
    // where the next answer's head lands: the head buffer from its start.
    if (this.#phase === 'idle') return this.#head;
    return this.#scratch; // an oversized head: read and judged below
  }

  #read(n: number, buf: Uint8Array): void {
    if (n <= 0) return;
    this.received += n;
    if (this.#phase === 'head' && (buf.buffer !== this.#head.buffer || buf.byteOffset !== this.#head.byteOffset + this.#headLen)) {
      // Read into another buffer than the head's next byte (cannot happen as requests go; kept
      // so that a change in Node's buffer hand-out cannot corrupt an answer).
      if (this.#headLen + n > HEAD_MAX) return this.#abort(new Error('response header block over 64 KiB'));
      this.#head.set(buf.subarray(0, n), this.#headLen);
    }
    if (this.#phase === 'body') {
      this.#advance(n);
      return;
    }
    if (this.#phase !== 'head' || this.#headLen >= HEAD_MAX) {
      // Bytes nobody asked for, or a head that does not fit: this connection is done.
      this.#phase = 'dead';
      const e = this.#headLen >= HEAD_MAX ? new Error('response header block over 64 KiB') : new Error('unexpected bytes on an idle connection');
      this.sock.destroy();
      this.#fail?.(e);
      return;
    }
    this.#headLen += n;
    const end = this.#head.indexOf('\r\n\r\n', Math.max(0, this.#headLen - n - 3), 'latin1');
    if (end < 0 || end + 4 > this.#headLen) return;
    const lines = this.#head.toString('latin1', 0, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) return this.#abort(new Error(`not an HTTP answer: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`));
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    let plan: Plan | 'drop';
    try {
      plan = this.#onHead!(Number(m[1]), headers);
    } catch (e) {
      return this.#abort(e as Error);
    }
    if (plan === 'drop') {
      this.#phase = 'dead';
      this.sock.destroy();
      this.#done?.(false);
      return;
    }
    this.#plan = plan;
    this.#phase = 'body';
    // Body bytes that came with the head.
    let pos = end + 4;
    while (pos < this.#headLen && this.#phase === 'body') {
      const chunk = this.#head.subarray(pos, this.#headLen);
      const p = this.#plan;
      let take: number;
      if (p.skip > 0) take = Math.min(p.skip, chunk.length);
      else if (p.want > p.got) {
        const target = p.targets[p.t]!;
        take = chunk.copy(target, p.tPos, 0, Math.min(chunk.length, target.length - p.tPos, p.want - p.got));
      } else take = Math.min(p.rest, chunk.length);
      if (take === 0) break; // more bytes than the body: judged by #advance's end state
      pos += take;
      this.#advance(take);
    }
    if (this.#phase === 'body' && pos < this.#headLen) this.#abort(new Error('more bytes than the announced body'));
    else if (this.#phase === 'body') this.#finishIfDone();
  }

  #advance(n: number): void {
    const p = this.#plan!;
    if (p.skip > 0) {
      p.skip -= n;
    } else if (p.want > p.got) {
      p.onBytes?.(p.targets[p.t]!.subarray(p.tPos, p.tPos + n));
      p.got += n;
      p.tPos += n;
      if (p.tPos === p.targets[p.t]!.length) {
        p.t++;
        p.tPos = 0;
      }
    } else {
      p.rest -= n;
    }
    this.#finishIfDone();
  }

  #finishIfDone(): void {
    const p = this.#plan!;
    if (p.skip > 0 || p.got < p.want) return;
    if (p.rest > SCRATCH) {
      // A server that ignored the range: do not read the rest of the object, drop the socket.
      this.#phase = 'dead';
      this.sock.destroy();
      this.#done?.(false);
      return;
    }
    if (p.rest > 0) return;
    this.#phase = 'idle';
    this.#done?.(true);
  }

  #abort(e: Error): void {
    this.#phase = 'dead';
    this.sock.destroy();
    this.#fail?.(e);
  }
}

export class LeanGetter {
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #pathPrefix: string;
  readonly #signer: SigV4;
  readonly #credentials: LeanGetterOptions['credentials'];
  readonly #idle: Conn[] = [];
  readonly #all = new Set<Conn>();
  readonly #idleMs: number;
  readonly #maxIdle: number;
  #closed = false;

  constructor(o: LeanGetterOptions) {
    if (o.endpoint.protocol !== 'http:') throw new Unsupported(`${o.endpoint.protocol} endpoint`);
    const port = Number(o.endpoint.port || 80);
    const host = o.forcePathStyle ? o.endpoint.hostname : `${o.bucket}.${o.endpoint.hostname}`;
    this.#host = host;
    this.#port = port;
    this.#hostHeader = port === 80 ? host : `${host}:${port}`;
    const base = o.endpoint.pathname.replace(/\/+$/, '');
    this.#pathPrefix = o.forcePathStyle ? `${base}/${uriEscape(o.bucket)}/` : `${base}/`;
    this.#signer = new SigV4(o.region, 's3');
    this.#credentials = o.credentials;
    this.#idleMs = o.idleMs ?? 4000;
    this.#maxIdle = o.maxIdle ?? 16;
  }

  /**
   * GET bytes [offset, offset + length) of `objectKey`. `sink(want)` is called once the server
   * said how many there are (min(length, size − offset)) and returns the buffers to fill, in
   * order. Throws Unsupported (use the SDK), or an Error for anything else (the caller makes it
   * BlobUnavailable); `signal` aborts it. `onBytes`, if given, is told of each run of bytes as it
   * lands in the sink's buffers, in order (the disk cache's CRCs, while the bytes are hot); it
   * must not throw.
   */
  async get(objectKey: string, offset: number, length: number, sink: (want: number) => Buffer[], signal: AbortSignal, onBytes?: (landed: Buffer) => void): Promise<RangedOutcome> {
    const head = await this.requestHead(objectKey, offset, length);

    let outcome: RangedOutcome | undefined;
    let errorText: { status: number; body: Buffer } | undefined;
    const onHead = (status: number, h: Map<string, string>): Plan | 'drop' => {
      const ok = status === 200 || status === 206;
      let bodyLen = Number(h.get('content-length'));
      if (h.has('transfer-encoding') || !Number.isSafeInteger(bodyLen) || bodyLen < 0) {
        // Object bytes without a length we can read into pages: the SDK's job. An error document
        // sent chunked (S3 does that) is not needed: its status says enough; drop the socket.
        if (ok) throw new Unsupported(h.has('transfer-encoding') ? `a ${h.get('transfer-encoding')} body` : 'no Content-Length');
        bodyLen = -1;
      }
      const discard = (): Plan | 'drop' => (bodyLen < 0 ? 'drop' : { skip: 0, targets: [], t: 0, tPos: 0, want: 0, got: 0, rest: bodyLen });
      if (status === 404) {
        outcome = { kind: 'missing' };
        return discard();
      }
      if (status === 416) {
        sink(0);
        outcome = { kind: 'past-end' };
        return discard();
      }
      if (!ok) {
        if (bodyLen < 0) {
          errorText = { status, body: Buffer.alloc(0) };
          return 'drop';
        }
        // The error document (S3 sends XML with a <Code>): kept for the message.
        const body = Buffer.alloc(Math.min(bodyLen, 4096));
        errorText = { status, body };
        return { skip: 0, targets: body.length > 0 ? [body] : [], t: 0, tPos: 0, want: body.length, got: 0, rest: bodyLen - body.length };
      }
      let start = 0;
      let total: number;
      if (status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(h.get('content-range') ?? '');
        if (!m || m[3] === '*') throw new Error(`unusable range answer: ${h.get('content-range') ?? 'no Content-Range'}`);
        start = Number(m[1]);
        total = Number(m[3]);
        if (Number(m[2]) - start + 1 !== bodyLen) throw new Error(`Content-Range ${h.get('content-range')} and Content-Length ${bodyLen} disagree`);
      } else {
        total = bodyLen; // a 200: the server ignored the range and sends it all
      }
      if (start > offset) throw new Error(`unusable range answer: ${h.get('content-range')}`);
      const want = Math.max(0, Math.min(length, total - offset));
      const skip = offset - start;
      if (skip + want > bodyLen) throw new Error(`a ${bodyLen}-byte body cannot hold bytes ${offset}+${want}`);
      const targets = sink(want);
      outcome = { kind: 'bytes', got: want };
      return { skip, targets, t: 0, tPos: 0, want, got: 0, rest: bodyLen - skip - want, onBytes };
    };

    await this.#exchange(head, onHead, signal);
    if (errorText) {
      const code = /<Code>([^<]{1,100})<\/Code>/.exec(errorText.body.toString('utf8'))?.[1];
      throw new Error(`HTTP ${errorText.status}${code ? ` ${code}` : ''}`);
    }
    return outcome!;
  }

  /**
   * A small request: HEAD or GET of `objectKey` (undefined: the bucket itself), answered with
   * its status, headers and body (a GET's body, of at most `maxBody` bytes, whatever the status;
   * error documents are cut at 4 KiB). Throws Unsupported for what the SDK must do (a chunked or
   * oversized body of a 2xx GET), an Error when the connection fails; `signal` aborts it.
   */
  async simple(method: 'GET' | 'HEAD', objectKey: string | undefined, signal: AbortSignal, maxBody = 1024 * 1024): Promise<SimpleAnswer> {
    const path = objectKey === undefined ? this.#bucketPath() : this.#objectPath(objectKey);
    const head = await this.#head(method, path, {});
    let answer: SimpleAnswer | undefined;
    const onHead = (status: number, headers: Map<string, string>): Plan | 'drop' => {
      answer = { status, headers, body: Buffer.alloc(0) };
      if (method === 'HEAD') return { skip: 0, targets: [], t: 0, tPos: 0, want: 0, got: 0, rest: 0 };
      const ok = status >= 200 && status < 300;
      const bodyLen = Number(headers.get('content-length'));
      if (headers.has('transfer-encoding') || !Number.isSafeInteger(bodyLen) || bodyLen < 0) {
        if (ok) throw new Unsupported(headers.has('transfer-encoding') ? `a ${headers.get('transfer-encoding')} body` : 'no Content-Length');
        return 'drop'; // an error document we cannot size: its status says enough
      }
      if (ok && bodyLen > maxBody) throw new Unsupported(`a ${bodyLen}-byte body`);
      const keep = ok ? bodyLen : Math.min(bodyLen, 4096);
      answer.body = Buffer.alloc(keep);
      return { skip: 0, targets: keep > 0 ? [answer.body] : [], t: 0, tPos: 0, want: keep, got: 0, rest: bodyLen - keep };
    };
    await this.#exchange(head, onHead, signal);
    return answer!;
  }

  /** Send `head` on a kept-alive connection (once more on a fresh one if a stale one fails). */
  async #exchange(head: string, onHead: (status: number, h: Map<string, string>) => Plan | 'drop', signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new Error('the S3 reader is closed');
      if (signal.aborted) throw new Error('aborted');
      const conn = this.#take();
      const reused = conn.used;
      const abort = (): void => conn.destroy(new Error('aborted'));
      signal.addEventListener('abort', abort, { once: true });
      try {
        const reusable = await conn.request(head, onHead);
        if (reusable) this.#release(conn);
        return;
      } catch (e) {
        // A kept-alive socket the server closed just before our request: once more, fresh.
        if (reused && conn.received === 0 && attempt === 0 && !signal.aborted && !(e instanceof Unsupported)) continue;
        throw e;
      } finally {
        signal.removeEventListener('abort', abort);
      }
    }
  }

  /**
   * The signed request header block of a ranged GET. `payloadHash` and `signingDate` are for
   * tests (AWS's published SigV4 example); requests carry UNSIGNED-PAYLOAD, as the SDK's GETs do.
   */
  async requestHead(objectKey: string, offset: number, length: number, test: { payloadHash?: string; signingDate?: Date } = {}): Promise<string> {
    return this.#head('GET', this.#objectPath(objectKey), { range: `bytes=${offset}-${offset + length - 1}` }, test);
  }

  #objectPath(objectKey: string): string {
    return this.#pathPrefix + objectKey.split('/').map(uriEscape).join('/');
  }

  /** The bucket: `/bucket` path-style (as the SDK's HeadBucket), `/` on the bucket's own host. */
  #bucketPath(): string {
    return this.#pathPrefix.length > 1 ? this.#pathPrefix.slice(0, -1) : '/';
  }

  /** A signed request header block. */
  async #head(method: string, path: string, extra: Record<string, string>, test: { payloadHash?: string; signingDate?: Date } = {}): Promise<string> {
    const c = this.#credentials;
    const creds = typeof c === 'function' ? await c() : c;
    const headers = this.#signer.sign(
      creds,
      { method, path, headers: { host: this.#hostHeader, ...extra, 'x-amz-content-sha256': test.payloadHash ?? 'UNSIGNED-PAYLOAD' } },
      test.signingDate,
    );
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (const k in headers) head += `${k}: ${headers[k]}\r\n`;
    return `${head}\r\n`;
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.destroy();
    this.#all.clear();
    this.#idle.length = 0;
  }

  #take(): Conn {
    for (;;) {
      const c = this.#idle.pop();
      if (!c) break;
      clearTimeout(c.idleTimer);
      if (c.alive) return c;
    }
    const c = new Conn(this.#host, this.#port, (gone) => {
      this.#all.delete(gone);
      const i = this.#idle.indexOf(gone);
      if (i >= 0) this.#idle.splice(i, 1);
    });
    this.#all.add(c);
    return c;
  }

  #release(c: Conn): void {
    if (this.#closed || !c.alive || this.#idle.length >= this.#maxIdle) {
      c.destroy();
      return;
    }
    c.idleTimer = setTimeout(() => c.destroy(), this.#idleMs);
    c.idleTimer.unref();
    this.#idle.push(c);
  }
}
