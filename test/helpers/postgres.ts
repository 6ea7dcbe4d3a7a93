/**
 * A real PostgreSQL server for a test file (or a bench): `initdb` + `pg_ctl` into a temp dir owned
 * by the `postgres` user (the server refuses to run as root), listening on 127.0.0.1 at a free
 * port and on a unix socket inside the temp dir, so nothing outside that dir is touched and many
 * test files can each run their own cluster at once. Every test gets a fresh database.
 *
 * Speed over durability, as suits a throw-away cluster: fsync, synchronous_commit and
 * full_page_writes are off (a crash of the machine loses the cluster, which no test survives
 * anyway); `settings` can turn them back on for a measurement that needs real commits.
 *
 * Authentication is real: TCP connections need the superuser's password (scram-sha-256), so the
 * wrong-password path is the server's own; the unix socket trusts, for the harness's admin work.
 *
 * Clean-up is by pid and directory, never by name: teardown stops this cluster (`pg_ctl stop`,
 * then SIGKILL of the postmaster pid it wrote, if it is still there) and removes the dir. A
 * watchdog shell, started with the cluster, does the same if the test process dies without its
 * teardown (SIGKILL, a tap timeout), so no server outlives the test run.
 *
 * When PostgreSQL cannot start, `startPostgres` throws with what is missing and how to install
 * it: a test that needs PostgreSQL fails, it never skips.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Test } from 'tap';

export interface PgClusterOptions {
  /** postgresql.conf settings added after the harness's own (they win). */
  settings?: Record<string, string | number>;
  /** Prefix of the temp dir under os.tmpdir(). */
  prefix?: string;
}

export interface PgCluster {
  /** The temp dir holding everything: data/, run/ (socket), server.log. */
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly superuser: 'postgres';
  readonly password: string;
  /** Where initdb, pg_ctl and postgres were found. */
  readonly bindir: string;
  /** server_version_num, e.g. 150018. */
  readonly versionNum: number;
  /** postgres://postgres:<password>@127.0.0.1:<port>/<database> */
  url(database: string, user?: string, password?: string): string;
  /** The running postmaster's pid (from postmaster.pid), or undefined when stopped. */
  pid(): number | undefined;
  /** A new, empty database (UTF8, C collation) and its URL. */
  createDatabase(name?: string): Promise<{ name: string; url: string }>;
  /** Run SQL as the superuser in `database` ('postgres' by default); returns the rows. */
  sql<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: unknown[], database?: string): Promise<R[]>;
  /** Stop (fast: sessions are ended) keeping the data; `start()` brings it back on the same port. */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stop and remove everything. Idempotent. */
  destroy(): Promise<void>;
  /** The last lines of the server log, for failure messages. */
  logTail(lines?: number): string;
}

const INSTALL_HINT =
  'install the PostgreSQL server with `apt-get install postgresql` (as root; `make test` does it), or point SMHFS_PG_BINDIR at a folder holding initdb, pg_ctl and postgres';

/** The folder holding initdb, pg_ctl and postgres: $SMHFS_PG_BINDIR, the newest /usr/lib/postgresql/N/bin, or the PATH. */
export function findPgBindir(): string {
  const need = ['initdb', 'pg_ctl', 'postgres'];
  const has = (dir: string) => need.every((b) => existsSync(join(dir, b)));
  const forced = process.env.SMHFS_PG_BINDIR;
  if (forced) {
    if (!has(forced)) throw new Error(`PostgreSQL: SMHFS_PG_BINDIR=${forced} does not hold ${need.join(', ')}; ${INSTALL_HINT}`);
    return forced;
  }
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (has(join(debian, v, 'bin'))) return join(debian, v, 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && has(dir)) return dir;
  throw new Error(`PostgreSQL server programs (${need.join(', ')}) not found in /usr/lib/postgresql/*/bin or on the PATH; ${INSTALL_HINT}`);
}

/** uid/gid of the user the server runs as: `postgres` when we are root, ourselves otherwise. */
function serverUser(): { runAs: string | undefined; uid: number; gid: number } {
  if (process.getuid?.() !== 0) return { runAs: undefined, uid: process.getuid!(), gid: process.getgid!() };
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0) {
    throw new Error('PostgreSQL refuses to run as root and there is no `postgres` user to run it as; the Debian package postgresql creates it: apt-get install postgresql');
  }
  return { runAs: 'postgres', uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** A port nobody listens on right now (the server may still lose a race for it: start() retries). */
async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

interface Run {
  code: number | null;
  out: string;
}

/** Run a PostgreSQL program as the server user; resolves with its exit code and output. */
function runPg(bindir: string, runAs: string | undefined, prog: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  const file = join(bindir, prog);
  const [cmd, argv] = runAs ? ['runuser', ['-u', runAs, '--', file, ...args]] : [file, args];
  return new Promise((res) => {
    // stdin/stdout/stderr to pipes we drain; pg_ctl start's postmaster gets the log file instead
    // (-l), so it holds none of our pipes open after pg_ctl exits.
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', LANG: 'C' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      res({ code: -1, out: `${out}${e.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, out });
    });
  });
}

/** Whether `pid` runs; a zombie (dead, not yet reaped by PID 1) counts as gone. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S …"; comm may hold spaces and parentheses
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
const pidAlive = processAlive;

let databaseCounter = 0;

/**
 * CREATE DATABASE's strategy for a test cluster: FILE_COPY (PostgreSQL 15+; before 15 it is the
 * only one) copies the template's files, where 15's default, WAL_LOG, writes every block of it
 * through the WAL: 44 against 102 ms of the server's CPU per database on the test machine.
 */
export function fileCopy(versionNum: number): string {
  return versionNum >= 150000 ? ' STRATEGY = FILE_COPY' : '';
}

const INITDB_ARGS = ['-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions'];

/**
 * A fresh data directory at `dataDir`: a copy of a template cluster made by `initdb` once per
 * machine (per server binary and initdb arguments) under os.tmpdir(). initdb costs ~1.2 s of CPU
 * and the suite starts dozens of clusters; a copy costs ~0.15 s. The template is made in a temp
 * dir and renamed into place, so a half-made one is never used; racing makers each rename, and
 * the loser's copy is removed. Its superuser password is replaced when the cluster starts.
 */
async function dataDirFromTemplate(bindir: string, runAs: string | undefined, uid: number, gid: number, dataDir: string): Promise<void> {
  const initdb = statSync(join(bindir, 'initdb'));
  const key = createHash('sha256').update(JSON.stringify([bindir, initdb.size, initdb.mtimeMs, INITDB_ARGS, uid])).digest('hex').slice(0, 16);
  const template = join(tmpdir(), `smhfs-pg-template-${key}`);
  if (!existsSync(join(template, 'PG_VERSION'))) {
    const work = mkdtempSync(join(tmpdir(), 'smhfs-pg-template-new-'));
    try {
      writeFileSync(join(work, 'pwfile'), `${randomBytes(12).toString('hex')}\n`, { mode: 0o600 });
      for (const p of [work, join(work, 'pwfile')]) chownSync(p, uid, gid);
      const init = await runPg(bindir, runAs, 'initdb', ['-D', join(work, 'data'), `--pwfile=${join(work, 'pwfile')}`, ...INITDB_ARGS]);
      if (init.code !== 0) throw new Error(`PostgreSQL: initdb failed (exit ${init.code}):\n${init.out.trim()}`);
      try {
        renameSync(join(work, 'data'), template);
      } catch (e) {
        // Another test file made it first (ENOTEMPTY/EEXIST): theirs is as good as ours.
        if (!existsSync(join(template, 'PG_VERSION'))) throw e;
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  // cp -a keeps the server user's ownership and the 0700 mode the server insists on.
  const cp = spawnSync('cp', ['-a', template, dataDir], { encoding: 'utf8' });
  if (cp.status !== 0) throw new Error(`PostgreSQL: could not copy the template cluster ${template}: ${cp.stderr || cp.error?.message}`);
}

/** Start a new cluster. Throws (never skips) with a message saying what is missing. */
export async function startPostgres(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const bindir = findPgBindir();
  const { runAs, uid, gid } = serverUser();
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? 'smhfs-pg-'));
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'run');
  const logFile = join(dir, 'server.log');
  const password = randomBytes(12).toString('hex');
  mkdirSync(socketDir, { mode: 0o700 });
  for (const p of [dir, socketDir]) chownSync(p, uid, gid);

  let watchdog: number | undefined;
  let destroyed = false;
  const killWatchdog = () => {
    if (watchdog === undefined) return;
    try {
      process.kill(-watchdog, 'SIGKILL'); // its own process group: the shell and its sleep
    } catch {
      /* already gone */
    }
    watchdog = undefined;
  };
  const postmasterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const logTail = (lines = 20): string => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  };
  const removeAll = () => rmSync(dir, { recursive: true, force: true });

  try {
    await dataDirFromTemplate(bindir, runAs, uid, gid, dataDir);
  } catch (e) {
    removeAll();
    throw e;
  }

  let port = 0;
  const writeConf = () => {
    const settings: Record<string, string | number> = {
      listen_addresses: "'127.0.0.1'",
      port,
      unix_socket_directories: `'${socketDir}'`,
      // Throw-away cluster: no fsync, no synchronous commit, no full-page images (see the header).
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 50,
      shared_buffers: "'32MB'",
      log_min_messages: 'warning',
      log_line_prefix: "'%m [%p] '",
      ...opts.settings,
    };
    const body = Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n');
    writeFileSync(join(dataDir, 'postgresql.auto.conf'), `# written by test/helpers/postgres.ts\n${body}\n`);
    chownSync(join(dataDir, 'postgresql.auto.conf'), uid, gid);
  };

  const start = async (): Promise<void> => {
    let last = '';
    // A port found free may be taken before the postmaster binds it: try a few.
    for (let attempt = 0; attempt < 5; attempt++) {
      if (attempt > 0 || port === 0) port = await freePort();
      writeConf();
      const r = await runPg(bindir, runAs, 'pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-s']);
      if (r.code === 0) return;
      last = `${r.out.trim()}\n${logTail()}`;
      if (!/could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(last)) break;
    }
    throw new Error(`PostgreSQL: pg_ctl start failed:\n${last}`);
  };
  // start() keeps the port it had on a restart (URLs handed out stay valid); only a lost race moves it.
  const startSamePort = async (): Promise<void> => {
    writeConf();
    const r = await runPg(bindir, runAs, 'pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-s']);
    if (r.code !== 0) throw new Error(`PostgreSQL: pg_ctl start (port ${port}) failed:\n${r.out.trim()}\n${logTail()}`);
  };
  const stop = async (mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> => {
    if (postmasterPid() === undefined) return;
    const r = await runPg(bindir, runAs, 'pg_ctl', ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '60', '-s']);
    const left = postmasterPid();
    if (left !== undefined) {
      // pg_ctl could not stop it: the pid it wrote is ours to kill (never a name).
      process.kill(left, 'SIGKILL');
      for (let i = 0; i < 100 && pidAlive(left); i++) await new Promise((r2) => setTimeout(r2, 50));
      if (r.code !== 0 && pidAlive(left)) throw new Error(`PostgreSQL: could not stop pid ${left}: ${r.out.trim()}`);
    }
  };

  try {
    await start();
  } catch (e) {
    await stop('immediate').catch(() => undefined);
    removeAll();
    throw e;
  }

  // The watchdog: if this process dies without destroy(), stop this cluster and remove its dir.
  const pgCtl = join(bindir, 'pg_ctl');
  const stopCmd = runAs ? `runuser -u ${runAs} -- '${pgCtl}'` : `'${pgCtl}'`;
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${stopCmd} stop -D '${dataDir}' -m immediate -w -t 30 >/dev/null 2>&1; rm -rf '${dir}'`;
  const dog = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
  dog.unref();
  watchdog = dog.pid;

  const admin = async <R extends Record<string, unknown>>(text: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> => {
    const c = new pg.Client({ host: socketDir, port, user: 'postgres', database });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as R[];
    } finally {
      await c.end();
    }
  };
  // The template's superuser password is its own; this cluster's is set here (hex: no quoting needed).
  await admin(`ALTER ROLE postgres PASSWORD '${password}'`);
  const versionNum = Number((await admin<{ v: string }>("SELECT current_setting('server_version_num') AS v"))[0]!.v);

  const cluster: PgCluster = {
    dir,
    dataDir,
    socketDir,
    host: '127.0.0.1',
    get port() {
      return port;
    },
    superuser: 'postgres',
    password,
    bindir,
    versionNum,
    url: (database, user = 'postgres', pw = password) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    pid: postmasterPid,
    async createDatabase(name) {
      const db = name ?? `t${process.pid}_${++databaseCounter}`;
      await admin(`CREATE DATABASE ${pg.escapeIdentifier(db)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'${fileCopy(versionNum)}`);
      return { name: db, url: cluster.url(db) };
    },
    sql: admin,
    stop,
    start: startSamePort,
    async restart(mode = 'fast') {
      await stop(mode);
      await startSamePort();
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      try {
        await stop('immediate');
      } finally {
        killWatchdog();
        removeAll();
      }
    },
    logTail,
  };
  return cluster;
}

/**
 * A cluster for one test file: destroyed in `t`'s teardown, also when the test fails. When it
 * cannot start, a failing assertion carries the reason into tap's summary, and the error goes on
 * up: the file fails, it never skips.
 */
export async function postgresForTest(t: Test, opts: PgClusterOptions = {}): Promise<PgCluster> {
  let cluster: PgCluster;
  try {
    cluster = await startPostgres(opts);
  } catch (e) {
    t.fail(`a real PostgreSQL is needed and could not start: ${(e as Error).message}`);
    throw e;
  }
  t.teardown(() => cluster.destroy());
  return cluster;
}
