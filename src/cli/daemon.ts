/**
 * `smhfs mount --daemon`: return once the mount serves (exit 0) or has failed (exit 1, with the
 * reason), leaving the server running in the background — what mount(8), fstab and a systemd
 * `Type=forking` unit need.
 *
 * Node cannot fork, so the parent starts the same command again as a detached child (its own
 * session: no terminal, no SIGHUP when the shell goes) with
 * - stdin from /dev/null, stdout and stderr appended to the log file (libfuse and Node write
 *   there too), and
 * - a status pipe on fd 3 (`SMHFS_DAEMON_STATUS=3` in its environment): the child writes
 *   `ready <json>` once the mount serves, or `error <line>` for each error it reports, then
 *   closes it.
 * The parent prints the error lines it got (or, should the child die silently, its exit status
 * and where the log is), and exits. It waits at most `READY_TIMEOUT_MS`; a child that has not
 * mounted by then is stopped (SIGTERM to its pid) and the parent fails.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { setErrorSink } from './context.js';

const STATUS_ENV = 'SMHFS_DAEMON_STATUS';
/** How long a mount may take to start (S3 checks, migrations of a large library) before the parent gives up. */
const READY_TIMEOUT_MS = 5 * 60_000;

/** The log file of a daemon without `--log-file`: root's in /var/log, a user's in ~/.local/state. */
export function defaultDaemonLog(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/var/log/smhfs.log';
  const state = env['XDG_STATE_HOME'] && env['XDG_STATE_HOME'].startsWith('/') ? env['XDG_STATE_HOME'] : join(homedir(), '.local', 'state');
  return join(state, 'smhfs', 'smhfs.log');
}

/** Set once, at start-up: this process is the background child of `--daemon` (never spawns another). */
const daemonChild = process.env[STATUS_ENV] !== undefined;

/** True in the background child of `--daemon`. */
export function isDaemonChild(): boolean {
  return daemonChild;
}

let statusFd: number | undefined;

/**
 * In the child: take over the status pipe (errors reported from now on also go to the parent)
 * and hide it from the processes this one starts (fusermount, probes).
 */
export function attachDaemonChild(): void {
  const fd = Number(process.env[STATUS_ENV]);
  delete process.env[STATUS_ENV];
  if (!Number.isInteger(fd) || fd < 3) return;
  // Reopened through /proc: Node opens with O_CLOEXEC, so fusermount and other children of this
  // process do not inherit the pipe and keep the parent waiting.
  try {
    statusFd = openSync(`/proc/self/fd/${fd}`, 'w');
    closeSync(fd);
  } catch {
    statusFd = fd;
  }
  setErrorSink((line) => {
    process.stderr.write(`${line}\n`);
    sendStatus(`error ${line}`);
  });
}

function sendStatus(message: string): void {
  if (statusFd === undefined) return;
  try {
    writeSync(statusFd, `${message.replace(/\n/g, ' ')}\n`);
  } catch {
    // the parent is gone: nobody to tell
  }
}

/** In the child, once the mount serves: tell the parent, and close the pipe so it can exit. */
export function daemonReady(info: Record<string, unknown>): void {
  if (statusFd === undefined) return;
  sendStatus(`ready ${JSON.stringify(info)}`);
  try {
    closeSync(statusFd);
  } catch {
    // already closed
  }
  statusFd = undefined;
  setErrorSink((line) => process.stderr.write(`${line}\n`));
}

export interface DaemonResult {
  code: number;
  pid?: number;
  info?: Record<string, unknown>;
}

/**
 * In the parent: start `argv` (this process's own command line) in the background, logging to
 * `logFile`, and wait until it serves or fails. Prints the child's errors on stderr.
 */
export async function runDaemon(logFile: string, label: string): Promise<DaemonResult> {
  let logFd: number;
  try {
    mkdirSync(dirname(logFile), { recursive: true });
    logFd = openSync(logFile, 'a', 0o640);
  } catch (e) {
    process.stderr.write(`smhfs: ${label}: cannot open the log file ${logFile}: ${(e as Error).message}\n`);
    return { code: 1 };
  }
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    env: { ...process.env, [STATUS_ENV]: '3' },
  });
  closeSync(logFd);
  const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
  const errors: string[] = [];
  let info: Record<string, unknown> | undefined;
  const pipeEnded = new Promise<void>((r) => {
    pipe?.once('end', () => r());
    pipe?.once('close', () => r());
    if (!pipe) r();
  });
  const outcome = await new Promise<'ready' | 'exited' | 'timeout'>((resolveOutcome) => {
    let buffered = '';
    const timer = setTimeout(() => resolveOutcome('timeout'), READY_TIMEOUT_MS);
    const done = (r: 'ready' | 'exited' | 'timeout'): void => {
      clearTimeout(timer);
      resolveOutcome(r);
    };
    pipe?.setEncoding('utf8');
    pipe?.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('ready ')) {
          try {
            info = JSON.parse(line.slice(6)) as Record<string, unknown>;
          } catch {
            info = {};
          }
          done('ready');
        } else if (line.startsWith('error ')) {
          errors.push(line.slice(6));
        }
      }
    });
    pipe?.on('error', () => undefined);
    child.once('exit', () => done('exited'));
  });
  if (outcome === 'ready') {
    (pipe as unknown as { destroy?: () => void })?.destroy?.();
    child.unref();
    return { code: 0, pid: child.pid!, ...(info ? { info } : {}) };
  }
  if (outcome === 'timeout') {
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      // gone meanwhile
    }
    process.stderr.write(`smhfs: ${label}: the server did not start serving within ${READY_TIMEOUT_MS / 1000} s; stopped it (see ${logFile})\n`);
    return { code: 1 };
  }
  // Exited before serving: its errors came through the pipe (read to its end); otherwise say how it ended.
  await Promise.race([pipeEnded, new Promise((r) => setTimeout(r, 2000).unref())]);
  for (const line of errors) process.stderr.write(`${line}\n`);
  if (errors.length === 0) {
    const how = child.signalCode ? `was killed by ${child.signalCode}` : `exited with status ${child.exitCode}`;
    process.stderr.write(`smhfs: ${label}: the server ${how} before serving; see ${logFile}\n`);
  }
  return { code: 1 };
}
