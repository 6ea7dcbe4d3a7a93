/** Human-readable formatting for the CLI (the `--json` output uses the store's objects as they are). */
import type { NodeInfo } from '../store/types.js';

const S_IFMT = 0o170000;
const TYPE_CHAR: Record<number, string> = {
  0o140000: 's',
  0o120000: 'l',
  0o100000: '-',
  0o060000: 'b',
  0o040000: 'd',
  0o020000: 'c',
  0o010000: 'p',
};

/** `ls -l` style mode string: `drwxr-xr-x`, `lrwxrwxrwx`, `-rw-r--r--` (with s/S, t/T). */
export function modeString(mode: number, kind?: NodeInfo['kind']): string {
  let type = TYPE_CHAR[mode & S_IFMT];
  if (type === undefined) type = kind === 'dir' ? 'd' : kind === 'link' ? 'l' : kind === 'file' ? '-' : '?';
  const rwx = (bits: number, special: boolean, specialChar: string): string =>
    (bits & 4 ? 'r' : '-') +
    (bits & 2 ? 'w' : '-') +
    (special ? (bits & 1 ? specialChar : specialChar.toUpperCase()) : bits & 1 ? 'x' : '-');
  return (
    type +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't')
  );
}

export function octalMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/** Microseconds since the epoch -> ISO 8601 UTC with microseconds. */
export function isoTime(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString(); // 2024-05-01T12:00:00.123Z
  const micro = String(Math.floor(us) % 1000).padStart(3, '0');
  return `${iso.slice(0, -1)}${micro}Z`;
}

/** Microseconds since the epoch -> `YYYY-MM-DD HH:MM` local time (for listings). */
export function shortTime(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Where a link points, for listings: a bound link's current target path, a path link's stored string. */
export function linkTarget(info: NodeInfo): string {
  const l = info.link;
  if (!l) return '';
  if (l.flavour === 'bound') return l.targetPath ?? '(target being deleted)';
  return l.stored ?? l.readlink ?? '';
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Lay out rows as columns separated by two spaces; `right` lists right-aligned column indexes. */
export function table(rows: string[][], right: number[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => {
        if (i === row.length - 1 && !right.includes(i)) return cell;
        const w = widths[i] ?? 0;
        return right.includes(i) ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd(),
  );
}

/** Placed.path (segments) or the node's path, as one space-relative string. */
export function placedPath(placed: { info: NodeInfo; path: string[] | null }): string {
  return placed.path ? placed.path.join('/') : placed.info.path;
}
