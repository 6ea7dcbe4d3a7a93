/**
 * User and group names for `ls -l`, from /etc/passwd and /etc/group (what ls(1) shows through
 * NSS for local accounts; Node has no getpwuid). Read once, on first use; an id without an entry
 * (or on a system without those files) is shown as its number, like ls(1) does.
 */
import { readFileSync } from 'node:fs';

function table(file: string): Map<number, string> {
  const names = new Map<number, string>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    const id = Number(f[2]);
    if (f.length >= 3 && f[0] && Number.isInteger(id) && !names.has(id)) names.set(id, f[0]);
  }
  return names;
}

let users: Map<number, string> | undefined;
let groups: Map<number, string> | undefined;

export function userName(uid: number): string {
  users ??= table('/etc/passwd');
  return users.get(uid) ?? String(uid);
}

export function groupName(gid: number): string {
  groups ??= table('/etc/group');
  return groups.get(gid) ?? String(gid);
}
