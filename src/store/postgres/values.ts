/**
 * Values between JavaScript and libpq's text format: parameters out (a NUL refused, bytes as
 * hex), columns in (int8 and numeric as exact numbers or an error, the rest as `pg` parses them).
 */
import { pgModule } from './lazy.js';
import { SmhError } from '../../errors.js';

export type PgValue = string | number | bigint | boolean | Buffer | null | undefined | Date | object;

const INT8 = 20;
const NUMERIC = 1700;

function safeNumber(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) && !(Number.isFinite(n) && !/^-?\d+$/.test(text))) {
    throw new SmhError('Internal', `a database integer (${text}) is beyond what JavaScript numbers hold exactly`);
  }
  return n;
}

/** Column parsers by type oid: int8 and numeric as numbers (ids, sizes and µs times fit in 2^53), the rest as pg parses them. */
const parsers = new Map<number, (v: string) => unknown>();
export function parserFor(oid: number): (v: string) => unknown {
  let p = parsers.get(oid);
  if (!p) {
    p = oid === INT8 || oid === NUMERIC ? safeNumber : (pgModule().types.getTypeParser(oid, 'text') as (v: string) => unknown);
    parsers.set(oid, p);
  }
  return p;
}

/** A JavaScript value as libpq's text format. */
export function toParam(v: PgValue): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') {
    // libpq takes C strings: a NUL would silently cut the value short.
    if (v.includes('\0')) throw new SmhError('InvalidArgument', 'a value holds a NUL byte, which PostgreSQL text cannot hold');
    return v;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new SmhError('Internal', `not a finite number: ${v}`);
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`;
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v);
}
