/**
 * Each FUSE binding with the adapter that speaks its language: `ll` (our libfuse 3 low-level
 * addon, ./ll/binding.ts) with the inode adapter (./inode-adapter.ts), `fuse-native` (libfuse 2,
 * ./native.ts) with the path adapter (./adapter.ts). The server (./server.ts) knows a frontend
 * only through `Frontend`: make the adapter, mount it, read its counters — never which binding it
 * is. `chooseFrontend` picks the default: ll on Linux when the addon loads, else fuse-native with
 * the reason in one line.
 *
 * The `-o` options a user gives are libfuse 2's vocabulary (mount.fuse(8), fuse-native's past);
 * on ll the ones libfuse 3's low level no longer has become what they meant: `uid=`, `gid=`,
 * `umask=` are applied by the adapter, the timeouts and request sizes are the binding's numbers,
 * `kernel_cache`/`direct_io` open defaults, and the libfuse 2 tuning flags that libfuse 3 made
 * the default (big_writes, nonempty, use_ino, hard_remove, auto_cache, readdir_ino, atomic_o_trunc)
 * are dropped. Everything else passes to libfuse verbatim (it refuses what it does not know).
 */
import type { BindingCapabilities, BindingName, MountedFs } from './binding.js';
import { FuseAdapter, type AdapterOptions, type OpCounter } from './adapter.js';
import { InodeAdapter } from './inode-adapter.js';
import { followChanges } from '../vfs/changes.js';
import { fuseNativeBinding, type OpTimeouts } from './native.js';
import { lowLevelAvailable, mount as llMount, mountConfig, type MountOptions } from './ll/binding.js';
import type { FuseLibrary, FuseSpace } from './port.js';
import type { OpenFiles } from '../vfs/open-files.js';
import type { ContentReader } from '../vfs/reader.js';

export { BINDING_NAMES, type BindingName } from './binding.js';

/** What the server reads of an adapter, whichever binding it serves. */
export interface MountAdapter {
  readonly files: OpenFiles;
  readonly counters: Map<string, OpCounter>;
  snapshot(): Record<string, unknown>;
}

export interface FrontendMountOptions {
  /** The user's `-o` options, one per element. */
  fuseOptions: string[];
  /** Seconds the kernel keeps names and attributes; undefined: the binding's default (LONG_CACHE_SECONDS on ll when the feed hears every process, else 1). */
  attrTimeout: number | undefined;
  debug: boolean;
  /** fuse-native's per-op timeouts. */
  timeouts: OpTimeouts;
}

/** An adapter made and ready to mount. */
export interface Prepared {
  readonly adapter: MountAdapter;
  mount(mountpoint: string): Promise<MountedFs>;
}

export interface Frontend {
  readonly name: BindingName;
  readonly capabilities: BindingCapabilities;
  /** What the binding needs on this machine, for the error when a mount fails. */
  readonly needs: string;
  available(): { ok: true } | { ok: false; reason: string };
  prepare(lib: FuseLibrary, space: FuseSpace, reader: ContentReader, adapter: AdapterOptions, mount: FrontendMountOptions): Prepared;
}

const fuseNativeFrontend: Frontend = {
  name: 'fuse-native',
  capabilities: fuseNativeBinding.capabilities,
  needs: 'libfuse2 and fusermount',
  available: () => fuseNativeBinding.available(),
  prepare(lib, space, reader, adapterOpts, m) {
    const adapter = new FuseAdapter(lib, space, reader, adapterOpts);
    return {
      adapter,
      mount: (mp) => fuseNativeBinding.mount(mp, adapter.ops(), { mountOptions: m.fuseOptions, attrTimeout: m.attrTimeout ?? 1, timeouts: m.timeouts, debug: m.debug }),
    };
  },
};

/** libfuse 2 options that libfuse 3 made the default or dropped: harmless to leave out. */
const LIBFUSE2_ONLY = new Set(['big_writes', 'nonempty', 'use_ino', 'hard_remove', 'auto_cache', 'noauto_cache', 'readdir_ino', 'atomic_o_trunc', 'large_read']);

/** How long the ll mount lets the kernel keep what the change follower invalidates (seconds). */
export const LONG_CACHE_SECONDS = 60;

/** The user's `-o` options as the ll binding and the inode adapter take them. */
export function llOptions(fuseOptions: string[], attrTimeout: number, debug: boolean): { mount: MountOptions; show: { uid?: number; gid?: number; umask?: number } } {
  // readdirplus always (not the kernel's 'auto', which uses it for a directory's first reply
  // only until a lookup in it advises more): a store page with every entry's attributes costs
  // less than a plain name listing (issue 15), and each entry it gives saves a lookup later.
  const mount: MountOptions = { entryTimeout: attrTimeout, attrTimeout, readdirplus: 'always' };
  const show: { uid?: number; gid?: number; umask?: number } = {};
  const rest: string[] = [];
  const num = (o: string, v: string, base = 10): number => {
    const n = base === 8 ? parseInt(v, 8) : Number(v);
    // libfuse's own words for it (fuse_opt_parse)
    if (!Number.isFinite(n) || n < 0 || !/^\d+(\.\d+)?$/.test(v.trim())) throw new Error(`fuse: invalid parameter in option \`${o}'`);
    return n;
  };
  for (const o of fuseOptions.flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x.length > 0)) {
    const eq = o.indexOf('=');
    const key = eq < 0 ? o : o.slice(0, eq);
    const v = eq < 0 ? '' : o.slice(eq + 1);
    if (LIBFUSE2_ONLY.has(o)) continue;
    if (key === 'uid' && eq > 0) show.uid = num(o, v);
    else if (key === 'gid' && eq > 0) show.gid = num(o, v);
    else if (key === 'umask' && eq > 0) show.umask = num(o, v, 8);
    else if (key === 'attr_timeout' && eq > 0) mount.attrTimeout = num(o, v);
    else if (key === 'entry_timeout' && eq > 0) mount.entryTimeout = num(o, v);
    else if (key === 'negative_timeout' && eq > 0) mount.negativeTimeout = num(o, v);
    else if (key === 'max_write' && eq > 0) mount.maxWrite = num(o, v);
    else if (key === 'max_read' && eq > 0) mount.maxRead = num(o, v);
    else if (key === 'max_readahead' && eq > 0) mount.maxReadahead = num(o, v);
    else if (key === 'fsname' && eq > 0) mount.fsname = v;
    else if (key === 'subtype' && eq > 0) mount.subtype = v;
    else if (o === 'kernel_cache') mount.keepCache = true;
    else if (o === 'direct_io') mount.directIo = true;
    else if (o === 'allow_other') mount.allowOther = true;
    else if (o === 'ro') mount.readOnly = true;
    else if (o === 'auto_unmount') mount.autoUnmount = true;
    else if (o === 'splice_write') mount.splice = true; // libfuse 2's names for FUSE_CAP_SPLICE_WRITE
    else if (o === 'no_splice_write') mount.splice = false;
    else if (o === 'default_permissions') continue; // always on
    else rest.push(o);
  }
  if (debug) rest.push('debug');
  mount.options = rest;
  return { mount, show };
}

const llFrontend: Frontend = {
  name: 'll',
  capabilities: { callerContext: true, nanosecondTimes: true, invalidation: true, renameFlags: true, maxRequest: 1 << 20 },
  needs: 'libfuse3 and fusermount3',
  available: () => {
    const a = lowLevelAvailable();
    return a.ok ? { ok: true } : a;
  },
  prepare(lib, space, reader, adapterOpts, m) {
    const log = adapterOpts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    let parsed: ReturnType<typeof llOptions> | undefined;
    let refused: Error | undefined;
    // H4 "at once": where the change follower hears every process and host (SQLite's WAL,
    // PostgreSQL's feed and NOTIFY), the kernel keeps names, attributes and readlink answers long
    // and each change invalidates them; a feed that heard only this process would get 1 s.
    const exact = lib.changes.seesOthers;
    try {
      parsed = llOptions(m.fuseOptions, m.attrTimeout ?? (exact ? LONG_CACHE_SECONDS : 1), m.debug);
      if (exact) parsed.mount.cacheSymlinks = true;
      // A local store's reads are answered with the blob file's descriptor (inode-adapter #read):
      // spliced, its bytes go file → pipe → kernel, one copy in the kernel; without splice libfuse
      // reads them into a bounce buffer it allocates per reply and writes that: a cold 1 GiB read
      // went 186–273 MB/s that way, 1946–3213 MB/s spliced (0.88 and 1.06× the in-memory ll file
      // system pinned, 0.82 and 0.69× unpinned, two session-7 bench runs; even at the 512 KiB
      // max_read splice brings without CAP_SYS_RESOURCE). Only fd answers take the splice path; Buffer answers are
      // written as before. `-o no_splice_write` turns it off.
      if (parsed.mount.splice === undefined && reader.localFiles) parsed.mount.splice = true;
    } catch (e) {
      refused = e as Error; // said when mounting, where the server reports refused options
    }
    const adapter = new InodeAdapter(lib, space, reader, { ...adapterOpts, show: parsed?.show ?? {}, cacheBoundLinks: exact, namesOnly: true });
    return {
      adapter,
      mount: async (mp) => {
        if (refused || !parsed) {
          log(refused?.message ?? 'fuse: bad mount options');
          throw new Error('libfuse refused the mount options');
        }
        const mount = parsed.mount;
        let session: Awaited<ReturnType<typeof llMount>>;
        try {
          session = await llMount(mp, adapter.ops(), {
            ...mount,
            onError: (err, op) => log(`smhfs: ${op}: ${(err as Error)?.stack ?? String(err)} (answered EIO)`),
          });
        } catch (e) {
          // fuse_session_new refuses what it does not know before anything is mounted
          const unknown = /unknown option\(s\): `-o ([^']*)'/.exec((e as Error).message);
          if (!unknown) throw e;
          const bad = unknown[1]!.split(',');
          throw new Error(
            `unknown mount option${bad.length > 1 ? 's' : ''} ${bad.map((o) => `'${o}'`).join(', ')}: libfuse 3 does not know ` +
              `${bad.length > 1 ? 'them' : 'it'} (see "man mount.fuse3" for the options; smhfs's own flags go before the mountpoint, not in -o)`,
          );
        }
        adapter.attachKernel(session);
        // H4: the library's changes, whoever made them, invalidate what the kernel caches
        const follower = followChanges(
          lib,
          space.name,
          {
            invalidateEntry: (dir, name) => adapter.invalidateEntry(dir, name),
            invalidateInode: (id) => adapter.invalidateNode(id),
            // a cascade's thousands of invalidations in one call to the session (issue 15)
            invalidateBatch: (entries, nodes) => adapter.invalidateBatch(entries, nodes),
            invalidateAll: () => adapter.invalidateAll(),
          },
          { onError: (e) => log(`smhfs: following the library's changes: ${(e as Error)?.message ?? String(e)}`) },
        );
        adapter.attachFollower(follower);
        session.on('unmounted', () => {
          follower.stop();
          adapter.attachFollower(undefined);
          adapter.attachKernel(undefined);
        });
        const { args } = mountConfig(mount, adapter.ops());
        const optionString = `${args.slice(1).join(' ')}${mount.splice ? ',splice_write' : ''}`;
        return {
          mountpoint: mp,
          optionString: () => optionString,
          invalidateEntry: (parent, name) => session.invalidateEntry(parent, name),
          invalidateInode: (ino, offset, length) => session.invalidateInode(ino, offset, length),
        };
      },
    };
  },
};

export const FRONTENDS: Readonly<Record<BindingName, Frontend>> = { ll: llFrontend, 'fuse-native': fuseNativeFrontend };

/**
 * The binding to mount with: the one asked for (refused with the reason when it cannot load), or
 * by default ll on Linux when its addon loads, else fuse-native with a note saying why.
 */
export function chooseFrontend(asked: BindingName | undefined): { frontend: Frontend; note?: string } {
  if (asked) {
    const f = FRONTENDS[asked];
    const a = f.available();
    if (!a.ok) throw Object.assign(new Error(`--binding ${asked}: ${a.reason}`), { code: 'EBINDING' });
    return { frontend: f };
  }
  const ll = llFrontend.available();
  if (ll.ok) return { frontend: llFrontend };
  return { frontend: fuseNativeFrontend, note: `mounting with fuse-native (libfuse 2): ${ll.reason}` };
}
