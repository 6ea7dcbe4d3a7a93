/**
 * Name and path rules (N1–N3) and the conflict-rename naming of C2. Pure functions, no SQL.
 *
 * A store path is a list of segments. Parsing collapses empty segments and ignores a leading '/';
 * '.' and '..' are refused, so a dialect path can never reach outside its space.
 */
import { fail } from '../errors.js';

export const MAX_NAME_BYTES = 255;
export const MAX_LINK_TARGET_BYTES = 4095;
/** PATH_MAX is 4096 bytes with its NUL: a path (and so a tree's depth) is at most 4095 bytes. */
export const MAX_PATH_BYTES = 4095;
export const TRASH_NAME = '.trash';

export type PathRole = 'source' | 'destination';

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A UTF-16 surrogate without its partner: a string that has no UTF-8 form. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * D5: names and link targets are stored as given or refused, never altered: a string that is not
 * well-formed Unicode (a lone surrogate, what a lossy decoding of foreign bytes can leave) cannot
 * be written as UTF-8 without changing it, so it is refused.
 */
export function checkUtf8(s: string, subject: string, what = 'a name'): void {
  if (LONE_SURROGATE.test(s)) throw fail('NameNotUtf8', `${what} is not valid UTF-8 (it holds a lone UTF-16 surrogate); names are never altered`, subject);
}

/**
 * Parse a space-relative path. `role` picks the error code for '.'/'..' segments (N3). Name
 * lengths are checked where the name is used (lookup or creation), which knows the right code.
 */
export function splitPath(path: string, role: PathRole = 'source'): string[] {
  if (typeof path !== 'string') throw fail('InvalidArgument', 'path must be a string');
  // Checked before splitting: a request cannot make the store walk (or create) 7,000 levels.
  if (path.length * 3 > MAX_PATH_BYTES && byteLength(path) > MAX_PATH_BYTES) {
    throw fail('PathTooLong', `a path is at most ${MAX_PATH_BYTES} bytes (PATH_MAX), this one is ${byteLength(path)}`, truncateUtf8(path, 200) + '…');
  }
  const segs = path.split('/').filter((s) => s.length > 0);
  checkUtf8(path, path, 'the path');
  for (const s of segs) {
    if (s === '.' || s === '..') {
      throw fail(
        role === 'source' ? 'InvalidSourceFile' : 'InvalidDestinationPath',
        `'${s}' segments are not allowed in a path`,
        path,
      );
    }
    if (s.includes('\0')) throw fail('InvalidFileName', 'a name must not contain NUL', path);
  }
  return segs;
}

export function joinPath(segs: readonly string[]): string {
  return segs.join('/');
}

/** N1: validate one name about to be created. */
export function validateName(name: string, isDir: boolean, subject?: string): void {
  if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw fail('InvalidFileName', `'${name}' is not a valid name`, subject ?? name);
  }
  checkUtf8(name, subject ?? name);
  if (byteLength(name) > MAX_NAME_BYTES) {
    throw fail(
      isDir ? 'DirectoryNameLengthExceed' : 'FileNameLengthExceed',
      `name is ${byteLength(name)} bytes, the limit is ${MAX_NAME_BYTES}`,
      subject ?? name,
    );
  }
}

/** N2 */
export function validateLinkTarget(target: string, subject: string): void {
  if (typeof target !== 'string' || target.length === 0) {
    throw fail('FileNotFound', 'a link target must not be empty', subject);
  }
  if (target.includes('\0')) throw fail('InvalidArgument', 'a link target must not contain NUL', subject);
  checkUtf8(target, subject, 'the link target');
  if (byteLength(target) > MAX_LINK_TARGET_BYTES) {
    throw fail('LinkTargetTooLong', `link target is longer than ${MAX_LINK_TARGET_BYTES} bytes`, subject);
  }
}

/**
 * C2: the n-th alternative name. Files split at the last '.' unless it is the first character
 * (`a.tar.gz` → `a.tar (1).gz`, `.bashrc` → `.bashrc (1)`); directories never split. When that
 * would pass 255 bytes the stem is shortened (whole characters; the extension is kept) so it
 * fits: a name of 250 bytes that is taken still has alternatives (native-notes/scale.md). If
 * even the extension leaves no room, the long name is returned and validateName refuses it.
 */
export function conflictName(name: string, n: number, isDir: boolean): string {
  const { stem, ext } = conflictPattern(name, isDir);
  const full = `${stem} (${n})${ext}`;
  if (byteLength(full) <= MAX_NAME_BYTES) return full;
  const room = MAX_NAME_BYTES - byteLength(` (${n})${ext}`);
  const short = room > 0 ? truncateUtf8(stem, room) : '';
  return short.length > 0 ? `${short} (${n})${ext}` : full;
}

/** C2: the parts around ` (n)` in the alternatives to `name`. */
export function conflictPattern(name: string, isDir: boolean): { stem: string; ext: string } {
  const dot = isDir ? -1 : name.lastIndexOf('.');
  return dot <= 0 ? { stem: name, ext: '' } : { stem: name.slice(0, dot), ext: name.slice(dot) };
}

/**
 * The n of `candidate` if it is exactly the C2 alternative `stem (n)ext` (n written as
 * conflictName writes it: no sign, no leading zero), else undefined.
 */
export function conflictNumber(candidate: string, stem: string, ext: string): number | undefined {
  const head = `${stem} (`;
  const tail = `)${ext}`;
  if (candidate.length <= head.length + tail.length || !candidate.startsWith(head) || !candidate.endsWith(tail)) return undefined;
  const digits = candidate.slice(head.length, candidate.length - tail.length);
  return /^[1-9][0-9]{0,14}$/.test(digits) ? Number(digits) : undefined;
}

/** Relative path from directory `from` to `to` (both segment lists from the space root). */
export function relativePath(from: readonly string[], to: readonly string[]): string {
  let common = 0;
  while (common < from.length && common < to.length && from[common] === to[common]) common++;
  const up = from.length - common;
  const parts: string[] = [];
  for (let i = 0; i < up; i++) parts.push('..');
  parts.push(...to.slice(common));
  return parts.length === 0 ? '.' : parts.join('/');
}

/** Cut a string to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  if (byteLength(s) <= max) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const b = byteLength(ch);
    if (bytes + b > max) break;
    out += ch;
    bytes += b;
  }
  return out;
}

/** Name of a recycle item in the `.trash` view: `<id>-<name>`, fitted to 255 bytes. */
export function trashViewName(id: number, name: string): string {
  const prefix = `${id}-`;
  return prefix + truncateUtf8(name, MAX_NAME_BYTES - prefix.length);
}
