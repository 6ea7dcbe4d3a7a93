/**
 * Sizes on the command line: parsed from `256M`, `1G`, `512KiB`, `4096` (binary units, as
 * rclone, JuiceFS and the kernel use them) and printed back the same way (`256M`, never
 * `268435456`), so help defaults, messages and the README agree. Every size option has a range,
 * checked at parse time: `--readahead 1T` is a usage error that names the limits.
 */
import { InvalidArgumentError } from 'commander';

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** `256M`, `1m`, `512KiB`, `1G`, `1.5G`, `4096` → bytes (a usage error otherwise). */
export function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a size such as 256M, 1M, 512K or a number of bytes, got ${JSON.stringify(value)}.`);
  const n = Math.round(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${JSON.stringify(value)} is too large.`);
  return n;
}

/** Bytes → `256M`, `1G`, `1.5G`, `512K`, `100` (the largest unit that keeps ≤ 1 decimal exact enough). */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return String(bytes);
  const units = ['K', 'M', 'G', 'T', 'P'];
  let v = bytes;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = Number.isInteger(v) ? String(v) : v >= 100 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, '');
  return `${text}${units[u]}`;
}

/** Bytes for people: `1.5 GiB`, `512 KiB`, `17 bytes` (progress lines, stats). */
export function humanBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} byte${bytes === 1 ? '' : 's'}`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export interface SizeRange {
  min: number;
  max: number;
  /** `0` is accepted as "off"/"the kernel's default" even below `min`. */
  zero?: boolean;
}

/** A commander argument parser for a size within `range` (a usage error naming the limits). */
export function sizeIn(range: SizeRange): (value: string) => number {
  return (value: string): number => {
    const n = parseSize(value);
    if (range.zero && n === 0) return 0;
    if (n < range.min || n > range.max) {
      throw new InvalidArgumentError(
        `${JSON.stringify(value)} is out of range: ${range.zero ? '0 or ' : ''}${formatSize(range.min)} to ${formatSize(range.max)}.`,
      );
    }
    return n;
  };
}
