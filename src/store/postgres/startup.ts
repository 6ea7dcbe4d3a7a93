/**
 * Where a PostgreSQL library lives, and the start-up check: within 5 s, one line for an
 * unreachable server, a server that does not answer, a wrong password, a missing database (issue
 * 13). The check uses the asynchronous `pg` client, whose errors carry the server's SQLSTATE even
 * during the login (libpq's carry only localised text there). Messages name the server, the user
 * and the database, never the password: URLs are shown redacted.
 */
import { pgModule } from './lazy.js';
import { SmhError } from '../../errors.js';

export interface StartupOptions {
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Start-up check and (re)connect budget; libpq's connect_timeout is in whole seconds (≥ 2). */
  connectTimeoutMs?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
}

function isUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/** Host, port, user and database a URL names (libpq's defaults filled in), for messages. */
export function describeTarget(url: string): PgTarget {
  if (!isUrl(url)) throw new SmhError('InvalidArgument', 'a PostgreSQL library is named by a URL: postgres://user@host:port/database');
  const u = new URL(url);
  const hostParam = u.searchParams.get('host');
  const host = decodeURIComponent(u.hostname) || hostParam || process.env.PGHOST || '/var/run/postgresql';
  const port = Number(u.port || u.searchParams.get('port') || process.env.PGPORT || 5432);
  const user = decodeURIComponent(u.username) || process.env.PGUSER || process.env.USER || 'postgres';
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || process.env.PGDATABASE || user;
  return { host, port, user, database };
}

/** The URL without its password: what messages and logs may show. */
export function redactUrl(url: string): string {
  if (!isUrl(url)) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of ['password', 'sslpassword']) if (u.searchParams.has(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export function where(t: PgTarget): string {
  return t.host.startsWith('/') ? `socket ${t.host}/.s.PGSQL.${t.port}` : `${t.host}:${t.port}`;
}

export function unavailable(message: string, url: string, cause?: unknown): SmhError {
  return new SmhError('MetaUnavailable', message, redactUrl(url), { cause });
}

/** One line for a failed login, from the pg client's error (SQLSTATE or socket errno). */
function loginMessage(e: { code?: string; message?: string }, t: PgTarget, timeoutMs: number): string {
  const at = where(t);
  switch (e.code) {
    case 'ECONNREFUSED':
      return `cannot reach PostgreSQL at ${at}: connection refused; is the server running and listening there?`;
    case 'ENOENT':
      return `cannot reach PostgreSQL at ${at}: no such socket; is the server running there?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot reach PostgreSQL: the host name ${JSON.stringify(t.host)} does not resolve`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach PostgreSQL at ${at}: no route to the host`;
    case 'ETIMEDOUT':
    case 'TIMEOUT':
      return `cannot reach PostgreSQL at ${at}: no answer within ${timeoutMs / 1000} s`;
    case '28P01':
      return `PostgreSQL at ${at} refused the password of user ${JSON.stringify(t.user)}; check the URL, PGPASSWORD or ~/.pgpass`;
    case '28000':
      return `PostgreSQL at ${at} refused user ${JSON.stringify(t.user)} for database ${JSON.stringify(t.database)} (no such role, or no pg_hba.conf entry allows it): ${e.message ?? ''}`.trim();
    case '3D000':
      return `database ${JSON.stringify(t.database)} does not exist on PostgreSQL at ${at}; create it: createdb -h ${t.host} -p ${t.port} -U ${t.user} -E UTF8 -T template0 ${t.database}`;
    case '53300':
      return `PostgreSQL at ${at} has no free connection (max_connections reached); raise max_connections or close other clients`;
    case '57P03':
      return `PostgreSQL at ${at} is starting up or shutting down; try again in a moment`;
    default:
      return `cannot connect to PostgreSQL at ${at}: ${(e.message ?? String(e)).split('\n')[0]}${e.code ? ` (${e.code})` : ''}`;
  }
}

/**
 * The start-up check: connect once (asynchronously, at most `connectTimeoutMs`, 5 s by default)
 * and answer with one line for what went wrong. Throws SmhError('MetaUnavailable').
 */
export async function checkPostgres(url: string, opts: StartupOptions = {}): Promise<void> {
  const target = describeTarget(url);
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const client = new (pgModule().Client)({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: opts.applicationName ?? 'smhfs' });
  // A connection that fails later must not crash the process through an unhandled 'error'.
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    // connectionTimeoutMillis covers the socket and the login; the race is a belt for DNS.
    await Promise.race([
      client.connect(),
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })), timeoutMs + 250);
      }),
    ]);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    // pg reports its own connection timeout as a plain Error
    const code = err.code ?? (/timeout/i.test(err.message ?? '') ? 'TIMEOUT' : undefined);
    throw unavailable(loginMessage({ ...err, code }, target, timeoutMs), url, e);
  } finally {
    clearTimeout(timer);
    client.end().catch(() => undefined);
  }
}
