/**
 * Logs of the long-running commands (`mount`, `serve`): `--log-file FILE` and `--log-level
 * error|warn|info|debug` (default info), as rclone and JuiceFS have them.
 *
 * Without a file, lines go to stderr as the rest of the CLI writes them (`smhfs: …`). With a
 * file, each line carries a timestamp, the pid and the level:
 * `2026-12-01T10:00:00.000Z smhfs[1234] INFO serving /lib at /mnt`. Lines are appended with one
 * synchronous write each (O_APPEND): ordered, complete after a crash, safe with logrotate's
 * `copytruncate`, and never lost in a buffer when the process is killed. `debug` adds one line per
 * file-system request (op, path, result, time), which costs throughput.
 *
 * The file must not be inside the mountpoint: the server would wait on itself (M4).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError, Option } from 'commander';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  readonly level: LogLevel;
  /** The file lines go to (undefined: stderr). */
  readonly file: string | undefined;
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, message: string): void;
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  close(): void;
}

/** Lines written by the server (`smhfs: …`), sorted into levels for the log. */
export function levelOfLine(line: string): LogLevel {
  if (/\b(failed|could not|cannot|error|returned EIO)\b/i.test(line)) return 'error';
  if (/\b(warning|stale|busy|second signal|injecting)\b/i.test(line)) return 'warn';
  return 'info';
}

export function openLogger(opts: { file?: string | undefined; level?: LogLevel | undefined }): Logger {
  const level = opts.level ?? 'info';
  const file = opts.file !== undefined ? resolve(opts.file) : undefined;
  let fd: number | undefined;
  if (file !== undefined) {
    mkdirSync(dirname(file), { recursive: true });
    fd = openSync(file, 'a', 0o640);
  }
  const write = (lvl: LogLevel, message: string): void => {
    if (RANK[lvl] > RANK[level]) return;
    const text = message.replace(/^smhfs: /, '');
    if (fd === undefined) {
      process.stderr.write(`smhfs: ${text}\n`);
      return;
    }
    try {
      writeSync(fd, `${new Date().toISOString()} smhfs[${process.pid}] ${lvl.toUpperCase()} ${text}\n`);
    } catch {
      // A full or vanished log disk must not stop the file system; stderr is the last resort.
      process.stderr.write(`smhfs: ${text}\n`);
    }
  };
  return {
    level,
    file,
    enabled: (lvl) => RANK[lvl] <= RANK[level],
    log: write,
    error: (m) => write('error', m),
    warn: (m) => write('warn', m),
    info: (m) => write('info', m),
    debug: (m) => write('debug', m),
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** `--log-file` must not be inside the mountpoint (the server would block on itself). */
export function checkLogFile(file: string | undefined, mountpoint: string): void {
  if (file === undefined) return;
  const f = resolve(file);
  const mp = resolve(mountpoint);
  if (f === mp || f.startsWith(`${mp}/`)) throw new InvalidArgumentError(`--log-file ${f} is inside the mountpoint ${mp}; put it elsewhere.`);
}

/** `--log-file FILE` (mount and serve). */
export function logFileOption(): Option {
  return new Option(
    '--log-file <file>',
    'append log lines to FILE (default: stderr; with --daemon /var/log/smhfs.log for root, else ~/.local/state/smhfs/smhfs.log)',
  );
}

/** `--log-level LEVEL` (mount and serve). */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'least severe level logged; debug adds one line per request')
    .choices(LOG_LEVELS as unknown as string[])
    .default('info');
}
