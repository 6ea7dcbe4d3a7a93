/**
 * Rows owned by a process (upload leases, holds, doomed keys, running tasks) name it as
 * `host:pid:random`; a row whose owner is gone (same host: its pid is not alive; another host: no
 * heartbeat for 5 minutes) is cleaned by the next collection. So are the staging folders
 * (`staging/<pid>-<random>`) of processes of this host that are gone.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { nowUs } from './engine.js';

let thisOwner: string | undefined;
/**
 * This process, as named in the rows it owns (leases, holds, doomed keys, tasks). Made when first
 * asked, not when this module loads: `smhfs ls` never asks, and node:crypto costs ~10 ms of CPU to load.
 */
export function processOwner(): string {
  return (thisOwner ??= `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`);
}

/** Whether processOwner() has been asked (before that, no row can name this process). */
export function processOwnerMade(): boolean {
  return thisOwner !== undefined;
}
/** Heartbeat of this process's holds and leases. */
export const HEARTBEAT_MS = 30_000;
/** A holder on another host is dead after this long without a heartbeat. */
const REMOTE_STALE_US = 5 * 60_000_000;
/** On this host the pid decides; a heartbeat this old means a reused pid (or a process stopped that long). */
const LOCAL_STALE_US = 60 * 60_000_000;
/** Rows written before owners had heartbeats: an upload lease of another host is trusted for a day. */
export const LEGACY_LEASE_STALE_US = 24 * 3600 * 1_000_000;
/** Doomed rows without an owner (written by an older smhfs): stale after a minute, as that version decided. */
const LEGACY_DOOMED_STALE_US = 60_000_000;

/** Staging folders (`staging/<pid>-<random>`) of processes on this host that are gone (B6: crash leftovers). */
export function deadStagingFolders(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(join(dir, 'staging'));
  } catch {
    return [];
  }
  return names.filter((name) => {
    const pid = Number(name.split('-')[0]);
    return Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid);
  });
}

/** `host:pid:random` → host and pid (a host name may itself hold ':'). */
function splitOwner(owner: string): { host: string; pid: number } {
  const parts = owner.split(':');
  if (parts.length < 3) return { host: parts[0] ?? '', pid: Number(parts[1]) };
  return { host: parts.slice(0, -2).join(':'), pid: Number(parts[parts.length - 2]) };
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, someone else's
  }
}

export function isLocalOwnerDead(owner: string): boolean {
  const { host, pid } = splitOwner(owner);
  if (host !== hostname()) return false;
  return !pidAlive(pid);
}

/**
 * Is the process that owns a row gone? Same host: its pid is not alive (or its heartbeat is an
 * hour old: a reused pid); another host: no heartbeat for 5 minutes. `lastSeenUs` is the row's
 * heartbeat (or creation time).
 */
export function ownerGone(owner: string | null, lastSeenUs: number, now = nowUs(), legacyStaleUs = LEGACY_DOOMED_STALE_US): boolean {
  // (a row can only name this process once processOwner() has been asked)
  if (owner !== null && owner === thisOwner) return false;
  if (owner === null) return now - lastSeenUs > legacyStaleUs;
  const { host, pid } = splitOwner(owner);
  if (host === hostname()) return !pidAlive(pid) || now - lastSeenUs > LOCAL_STALE_US;
  return now - lastSeenUs > REMOTE_STALE_US;
}

