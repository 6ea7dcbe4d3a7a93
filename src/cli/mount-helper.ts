/**
 * mount(8)'s helper convention, so `mount -t fuse.smhfs LIBRARY DIR -o …`, `mount -t smhfs …` and
 * fstab lines work: mount(8) runs `/sbin/mount.fuse.smhfs` (or `/sbin/mount.smhfs`) as
 * `LIBRARY DIR [-sfnvrw] [-o OPTIONS] [-t TYPE]` and waits for it, so the helper is
 * `smhfs mount --daemon DIR --library LIBRARY …`: it returns once the mount serves, or fails with
 * the reason.
 *
 * OPTIONS (comma-separated, as in fstab) are sorted the way rclone's and JuiceFS's helpers do:
 * - fstab bookkeeping that mount(8) and systemd keep for themselves (`defaults`, `noauto`,
 *   `nofail`, `_netdev`, `user`, `x-systemd.*`, `comment=`…) is dropped; `rw` is the default;
 * - `ro` is `--read-only`;
 * - `NAME=VALUE` or `NAME` where `--NAME` (`_` or `-`) is an option of `smhfs mount` or a global
 *   option is that option: `cache_size=1G`, `log_file=/var/log/smhfs.log`, `metrics=:9567`,
 *   `space=photos`, `uid=1000`, `read_only`;
 * - everything else is a FUSE mount option, passed through (`allow_other`, `nosuid`, `nodev`…).
 */
import type { Command, Option } from 'commander';
import { CliError, UsageError } from './usage.js';

/** Options mount(8), systemd and fstab use for themselves: never passed to the file system. */
const BOOKKEEPING = new Set(['defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', '_netdev', 'nofail', 'rw', 'sw', 'bg', 'fg']);
const BOOKKEEPING_PREFIXES = ['x-', 'comment=', 'X-mount.', 'X-'];
/** smhfs options that make no sense in fstab. */
const NOT_FROM_FSTAB = new Set(['daemon', 'options', 'help', 'version', 'json']);

const normal = (name: string): string => name.replace(/-/g, '_');

function optionIndex(program: Command): Map<string, Option> {
  const index = new Map<string, Option>();
  const mount = program.commands.find((c) => c.name() === 'mount');
  for (const o of [...program.options, ...(mount?.options ?? [])]) {
    if (!o.long) continue;
    const name = o.long.replace(/^--/, '');
    if (!NOT_FROM_FSTAB.has(name)) index.set(normal(name), o);
  }
  return index;
}

/** `LIBRARY DIR -o opts…` → the argv of `smhfs mount --daemon …` (empty for `-f`, a fake mount). */
export function translateMountHelperArgs(program: Command, args: string[]): string[] {
  const positional: string[] = [];
  const optionLists: string[] = [];
  let fake = false;
  let readOnly = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-o' || a === '-t' || a === '-N') {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`mount.smhfs: ${a} needs a value`);
      if (a === '-o') optionLists.push(v);
      else if (a === '-N') throw new CliError('NotSupported', 'mount namespaces (-N) are not supported; run mount inside the namespace instead');
      else if (!/^(fuse\.)?smhfs$/.test(v)) throw new UsageError(`mount.smhfs: file system type ${v}: expected smhfs or fuse.smhfs`);
    } else if (a.startsWith('-o') && a.length > 2) {
      optionLists.push(a.slice(2));
    } else if (/^-[sfnvrwi]+$/.test(a)) {
      // -s sloppy, -n no mtab, -v verbose, -i no helper: nothing to do here; -f fake; -r/-w ro/rw.
      if (a.includes('f')) fake = true;
      if (a.includes('r')) readOnly = true;
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`mount.smhfs: unknown argument ${a} (usage: mount.smhfs LIBRARY MOUNTPOINT [-o OPTIONS])`);
    } else {
      positional.push(a);
    }
  }
  if (positional.length !== 2) {
    throw new UsageError(`usage: mount.smhfs LIBRARY MOUNTPOINT [-o OPTIONS] (got ${positional.length} path${positional.length === 1 ? '' : 's'})`);
  }
  if (fake) return [];
  const [source, dir] = positional as [string, string];
  const library = source.replace(/^smhfs#/, ''); // the old `smhfs#LIBRARY` fuse fstab spelling
  const index = optionIndex(program);
  const flags: string[] = [];
  const fuse: string[] = [];
  for (const opt of optionLists.flatMap((l) => l.split(',')).map((o) => o.trim()).filter((o) => o !== '')) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? undefined : opt.slice(eq + 1);
    if (BOOKKEEPING.has(key) || BOOKKEEPING_PREFIXES.some((p) => opt.startsWith(p))) continue;
    if (key === 'ro') {
      readOnly = true;
      continue;
    }
    const o = index.get(normal(key));
    if (!o) {
      fuse.push(opt);
      continue;
    }
    if (o.long === '--library') throw new UsageError('mount.smhfs: the library is the first argument (the fstab source), not library=');
    if (o.required || o.optional) {
      if (value === undefined && o.required) throw new UsageError(`mount.smhfs: option ${key} needs a value (${key}=…)`);
      flags.push(o.long!, ...(value !== undefined ? [value] : []));
    } else {
      if (value !== undefined && !/^(1|yes|true|on)$/i.test(value)) {
        if (/^(0|no|false|off)$/i.test(value)) continue;
        throw new UsageError(`mount.smhfs: option ${key} takes no value`);
      }
      flags.push(o.long!);
    }
  }
  if (readOnly) flags.push('--read-only');
  return ['mount', '--daemon', dir, '--library', library, ...flags, ...(fuse.length ? ['-o', fuse.join(',')] : [])];
}
