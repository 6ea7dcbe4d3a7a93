/**
 * readdirplus's reply packed straight from the store's numbers (issue 15): a walk lists
 * thousands of entries per request, and a NodeInfo, Attr, Entry and three Timespecs per entry
 * cost more than the SQL that reads them (allocation, then the young generation copying a big
 * live set). So the store's page (Space.readdirStats, numbers per entry) is written into the
 * addon's form (PackedDirPlus) with no object per entry, exactly as the adapter's #entry would
 * have made each one: the same ino, attributes, generation, timeouts and lookup reference.
 *
 * An entry whose attributes need more than its row goes through the adapter's own #entry: an
 * open file (its staged size and times), a sparse file (st_blocks counts its data, D8), a mount
 * with `-o uid/gid/umask`. `.` and `..` are no lookup references.
 *
 * What the listing policy (./listing-policy.ts) asks: every non-directory entry as a name only
 * (`namesOnly`), or the last `probes` non-directory entries whose names do not start with a dot
 * (which `ls` skips, so they would prove nothing). A name-only entry is its ino and type, no
 * reference (PackedDirPlus.putName); the probes sent are returned.
 */
import { DS, DS_BOUND, DS_NAMES, NODE_KINDS, type DirStats, type NodeInfo } from '../store/types.js';
import type { DirStatsPage } from './dir-cursor.js';
import { DIRPLUS, PackedDirPlus, type Entry } from './ll/binding.js';

const FILE_KIND = NODE_KINDS.indexOf('file');
const DIR_KIND = NODE_KINDS.indexOf('dir');
const DOT = 0x2e;

export interface PackContext {
  /** `.` or `..`: attributes, no reference */
  dot(info: NodeInfo): Entry;
  /** an entry the packed path leaves to the adapter (counts its reference itself) */
  entry(info: NodeInfo): Entry;
  /** node `id` as lookup sees it (a directory of a names-only page: DS_NAMES) */
  info(id: number): NodeInfo;
  /** one more kernel reference on node `id` */
  referenced(id: number): void;
  inoOf(id: number): number;
  /** whether node `id` is an open file of this mount */
  open(id: number): boolean;
  /** no `-o uid/gid/umask` (nor presentAs): a row's owner and mode are what the kernel sees */
  plain: boolean;
  /** a bound link's entry and attribute timeouts (undefined: the mount's) */
  boundTimeout: number | undefined;
  blksize: number;
}

/** Which entries go as names only (./listing-policy.ts ReplyPlan). */
export interface NamesPlan {
  namesOnly: boolean;
  probes: number;
}

const ALL_FULL: NamesPlan = { namesOnly: false, probes: 0 };

/** `spare`: an earlier answer the binding has sent, whose numbers this one may reuse (PackedDirPlus.of). */
export function packPlus(pg: DirStatsPage, c: PackContext, plan: NamesPlan = ALL_FULL, probed: string[] = [], spare?: PackedDirPlus): PackedDirPlus {
  const out = PackedDirPlus.of(pg.dots.length + pg.count, spare);
  let i = 0;
  for (const d of pg.dots) out.put(i++, d.name, c.dot(d.info), d.next);
  const st = pg.stats;
  const sn = st.nums;
  const o = out.nums;
  const bound = c.boundTimeout ?? NaN;
  // the probes: the last eligible entries of the page (a reader reaches them last)
  let firstProbe = pg.count;
  if (!plan.namesOnly && plan.probes > 0) {
    let left = plan.probes;
    for (let k = pg.count - 1; k >= 0 && left > 0; k--) {
      if (sn[k * DS.STRIDE + DS.KIND] !== DIR_KIND && st.names[k]!.charCodeAt(0) !== DOT) {
        firstProbe = k;
        left--;
      }
    }
  }
  for (let k = 0; k < pg.count; k++, i++) {
    const s = k * DS.STRIDE;
    const id = sn[s + DS.ID]!;
    const kind = sn[s + DS.KIND]!;
    if (kind !== DIR_KIND && (plan.namesOnly || (k >= firstProbe && st.names[k]!.charCodeAt(0) !== DOT))) {
      const name = st.names[k]!;
      out.putName(i, name, c.inoOf(id), sn[s + DS.MODE]!, pg.firstNext + k);
      if (!plan.namesOnly) probed.push(name);
      continue;
    }
    if ((sn[s + DS.FLAGS]! & DS_NAMES) !== 0) {
      // a names-only page's directory: its attributes, read on their own (a walk enters it)
      out.put(i, st.names[k]!, c.entry(c.info(id)), pg.firstNext + k);
      continue;
    }
    if (!c.plain || st.layouts.has(k) || (sn[s + DS.KIND] === FILE_KIND && c.open(id))) {
      out.put(i, st.names[k]!, c.entry(attrInfo(st, k)), pg.firstNext + k);
      continue;
    }
    c.referenced(id);
    const b = i * DIRPLUS.STRIDE;
    const size = sn[s + DS.SIZE]!;
    out.names[i] = st.names[k]!;
    o[b + DIRPLUS.INO] = c.inoOf(id);
    o[b + DIRPLUS.MODE] = sn[s + DS.MODE]!;
    o[b + DIRPLUS.NLINK] = sn[s + DS.NLINK]!;
    o[b + DIRPLUS.UID] = sn[s + DS.UID]!;
    o[b + DIRPLUS.GID] = sn[s + DS.GID]!;
    o[b + DIRPLUS.RDEV] = sn[s + DS.RDEV]!;
    o[b + DIRPLUS.SIZE] = size;
    o[b + DIRPLUS.BLOCKS] = Math.ceil(size / 512);
    o[b + DIRPLUS.BLKSIZE] = c.blksize;
    putTime(o, b + DIRPLUS.ATIME, sn[s + DS.ATIME]!, sn[s + DS.ATIME_NS]!);
    putTime(o, b + DIRPLUS.MTIME, sn[s + DS.MTIME]!, sn[s + DS.MTIME_NS]!);
    putTime(o, b + DIRPLUS.CTIME, sn[s + DS.CTIME]!, sn[s + DS.CTIME_NS]!);
    o[b + DIRPLUS.GEN] = sn[s + DS.BTIME]!;
    const isBound = (sn[s + DS.FLAGS]! & DS_BOUND) !== 0;
    o[b + DIRPLUS.ATTR_TIMEOUT] = isBound ? bound : NaN;
    o[b + DIRPLUS.ENTRY_TIMEOUT] = isBound ? bound : NaN;
    o[b + DIRPLUS.NEXT] = pg.firstNext + k;
  }
  return out;
}

/** A store time (µs and the nanoseconds below it) as seconds at `at` and nanoseconds at `at + 1`. */
function putTime(d: Float64Array, at: number, us: number, nsRem: number): void {
  const sec = Math.floor(us / 1e6);
  d[at] = sec;
  d[at + 1] = (us - sec * 1e6) * 1000 + nsRem;
}

/**
 * Entry `i` of a packed page as a NodeInfo with what attributes read (the adapter's #attr and
 * nodeStat), for the entries left to #entry. It has no path, blob or link target.
 */
export function attrInfo(d: DirStats, i: number): NodeInfo {
  const n = d.nums;
  const b = i * DS.STRIDE;
  const layout = d.layouts.get(i);
  return {
    id: n[b + DS.ID]!,
    kind: NODE_KINDS[n[b + DS.KIND]!]!,
    mode: n[b + DS.MODE]!,
    uid: n[b + DS.UID]!,
    gid: n[b + DS.GID]!,
    size: n[b + DS.SIZE]!,
    nlink: n[b + DS.NLINK]!,
    rdev: n[b + DS.RDEV]!,
    blob: null,
    etag: null,
    ...(layout !== undefined ? { layout } : {}),
    storageClass: 'STANDARD',
    atimeUs: n[b + DS.ATIME]!,
    mtimeUs: n[b + DS.MTIME]!,
    ctimeUs: n[b + DS.CTIME]!,
    birthtimeUs: n[b + DS.BTIME]!,
    atimeNsRem: n[b + DS.ATIME_NS]!,
    mtimeNsRem: n[b + DS.MTIME_NS]!,
    ctimeNsRem: n[b + DS.CTIME_NS]!,
    birthtimeNsRem: 0,
    path: '',
    inTrash: false,
    ...(n[b + DS.FLAGS]! & DS_BOUND ? { link: { flavour: 'bound' as const, readlink: undefined, targetNode: 0 } } : {}),
  };
}
