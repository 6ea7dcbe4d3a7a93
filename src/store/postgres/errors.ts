/**
 * PostgreSQL failures as the store's domain errors: one mapping from SQLSTATE (and lost
 * connections) to error codes, as src/store/library.ts has for SQLite's result codes.
 * Serialization failures and deadlocks normally never get here: the connection re-runs the
 * transaction (connection.ts); only when attempts run out do they become Busy.
 */
import { SmhError, type ErrorCode } from '../../errors.js';
import { unavailable } from './startup.js';

/** What a failed statement reported: SQLSTATE and text, or that the connection is gone. */
export class PgError extends Error {
  readonly sqlState: string | undefined;
  readonly detail: string | undefined;
  /** The connection broke (no SQLSTATE from a server that is still talking to us). */
  readonly connectionLost: boolean;
  constructor(message: string, sqlState: string | undefined, detail: string | undefined, connectionLost: boolean) {
    super(message);
    this.name = 'PgError';
    this.sqlState = sqlState;
    this.detail = detail;
    this.connectionLost = connectionLost;
  }
}

/** SQLSTATEs after which the server closes the session (or already has): reconnect. */
export const CONNECTION_STATES = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004']);

/** SQLSTATE → domain error. Serialization failures and deadlocks never get here (retried). */
export function toDomainError(e: unknown, url = ''): unknown {
  if (e instanceof SmhError || !(e instanceof PgError)) return e;
  const s = e.sqlState ?? '';
  const mk = (code: ErrorCode, message: string) => new SmhError(code, message, undefined, { cause: e });
  if (e.connectionLost || CONNECTION_STATES.has(s)) return unavailable(`the connection to PostgreSQL was lost: ${e.message}`, url, e);
  if (s === '53100') return mk('InsufficientStorage', 'the PostgreSQL server is out of disk space; free space on it and retry');
  if (s === '53300') return mk('Busy', 'PostgreSQL has no free connection (max_connections reached); try again');
  if (s === '53200') return mk('Busy', 'the PostgreSQL server is out of memory; try again');
  if (s === '40001' || s === '40P01' || s === '55P03' || s === '57014') return mk('Busy', 'the library is busy (PostgreSQL kept refusing the change); try again');
  if (s === '25006') return mk('LibraryReadOnly', 'the PostgreSQL server accepts no writes (a standby, or default_transaction_read_only); use the primary');
  if (s === '42501') return mk('LibraryReadOnly', `the PostgreSQL role may not do this (${e.message}); grant it the smhfs tables (native-notes/postgres.md)`);
  if (s === '22021') return mk('NameNotUtf8', 'a name or value is not valid UTF-8 (or holds a NUL byte)');
  if (s === '54000') return mk('InvalidArgument', `a value is too large for the database: ${e.message}`);
  return mk('Internal', `database error ${s || '(no SQLSTATE)'}: ${e.message}`);
}
