/**
 * D5 on the command line: Node decodes `process.argv` from the raw bytes lossily (bytes that are
 * not UTF-8 become U+FFFD), so `smhfs put f $'caf\xe9.txt'` would store a different name, and two
 * such names would become one. The raw bytes are in /proc/self/cmdline (Linux): an argument that
 * is not valid UTF-8 there is refused before anything runs. Elsewhere (no /proc) nothing is checked.
 */
import { readFileSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';

/** The first user argument whose bytes are not UTF-8: its position (1 = first after `smhfs`) and bytes. */
export function firstNonUtf8Argument(argv: readonly string[] = process.argv): { position: number; bytes: Buffer } | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0) {
      parts.push(raw.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < raw.length) parts.push(raw.subarray(start));
  // cmdline is node, its own options, the script, then the user's arguments: the same tail as argv.
  const user = argv.length - 2;
  if (user <= 0 || parts.length < user) return undefined;
  const tail = parts.slice(parts.length - user);
  const i = tail.findIndex((b) => !isUtf8(b));
  return i < 0 ? undefined : { position: i + 1, bytes: Buffer.from(tail[i]!) };
}

/** Printable ASCII as is, every other byte as \xNN (what a shell's $'…' would take back). */
export function escapeBytes(b: Buffer): string {
  let out = '';
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return out;
}
