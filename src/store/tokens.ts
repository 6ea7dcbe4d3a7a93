/**
 * Access tokens, as records: made, checked, listed, revoked, expired. Only a token's SHA-256 is
 * kept. What a token allows (its grants) means something to the HTTP dialects only
 * (src/http/grants.ts); here a grant is an opaque string.
 */
import { randomBytes } from 'node:crypto';
import { fail } from '../errors.js';
import { nowUs, type MetaEngine } from './engine.js';
import type { TokenRow, TokenRows } from './rows.js';
import { secretHash } from './secrets.js';

export interface TokenInfo {
  space: string;
  grants: string[];
  userId: string | null;
  expiresAtUs: number;
}

/** A token as `smhfs token list` shows it: never the token itself (only its hash is kept). */
export interface TokenRecord extends TokenInfo {
  id: number;
  createdAtUs: number;
}

export class Tokens {
  private readonly engine: MetaEngine;
  private readonly rows: TokenRows;
  private readonly checkSpace: (name: string) => void;

  /** `checkSpace` throws SpaceNotFound for a space the library does not have. */
  constructor(engine: MetaEngine, rows: TokenRows, checkSpace: (name: string) => void) {
    this.engine = engine;
    this.rows = rows;
    this.checkSpace = checkSpace;
  }

  /** A new token for `space` (SpaceNotFound when there is none), valid `periodSec` seconds. */
  create(opts: { space: string; grants: string[]; periodSec: number; userId?: string }): { accessToken: string; expiresIn: number } {
    if (!Number.isInteger(opts.periodSec) || opts.periodSec <= 0 || opts.periodSec > 365 * 86400) {
      throw fail('InvalidArgument', 'token period must be 1 s to 365 days');
    }
    this.checkSpace(opts.space);
    const token = randomBytes(24).toString('base64url');
    const t = nowUs();
    this.engine.transaction(() =>
      this.rows.insert(secretHash(token), opts.space, JSON.stringify(opts.grants), opts.userId ?? null, t + opts.periodSec * 1_000_000, t),
    );
    return { accessToken: token, expiresIn: opts.periodSec };
  }

  check(token: string): TokenInfo | undefined {
    const row = this.rows.byHash(secretHash(token));
    if (!row || row.expires <= nowUs()) return undefined;
    return tokenInfo(row);
  }

  /** Every unexpired token: ids and grants, never the tokens. */
  list(): TokenRecord[] {
    const now = nowUs();
    return this.rows.all().filter((r) => r.expires > now).map((r) => ({ ...tokenInfo(r), id: r.id, createdAtUs: r.created }));
  }

  /** Revoke a token by its id (from `list`) or by the token itself; false when there was none. */
  revoke(idOrToken: number | string): boolean {
    return this.engine.transaction(() => (typeof idOrToken === 'number' ? this.rows.revoke(idOrToken) : this.rows.revokeHash(secretHash(idOrToken))));
  }

  /** Forget expired tokens (inside the caller's transaction, or in one of its own). */
  purgeExpired(): void {
    this.engine.transaction(() => this.rows.purgeExpired(nowUs()));
  }
}

function tokenInfo(r: TokenRow): TokenInfo {
  return { space: r.space, grants: JSON.parse(r.grants) as string[], userId: r.user_id, expiresAtUs: r.expires };
}
