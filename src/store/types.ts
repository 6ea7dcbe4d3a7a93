/**
 * Public types of the library store: the one place that holds every rule (names, links, conflict
 * strategies, the recycle bin) and all SQL. The FUSE adapter, the HTTP dialects and the CLI only
 * translate to and from these calls.
 *
 * Paths given to the store are space-relative strings: a leading '/' is ignored, empty segments
 * collapse, '.' and '..' segments are refused (N3). The root is '' (or '/'). At the space root the
 * name `.trash` is the read-only recycle-bin view (N4, T3): `.trash/<id>-<name>/…` can be stat'ed,
 * listed and read, never written.
 *
 * Times are integer microseconds since the epoch (exact in a JS number), each with the nanoseconds
 * below it (`…NsRem`, 0–999: M2, times keep nanoseconds — whole ns since 1970 are not exact in a JS
 * number). Only utimensat gives a remainder other than 0; fuse-native carries milliseconds.
 */

export type NodeKind = 'dir' | 'file' | 'link' | 'special';
export type LinkFlavour = 'bound' | 'path';
export type StorageClass = 'STANDARD' | 'STANDARD_IA' | 'COLD' | 'ARCHIVE';
export const STORAGE_CLASSES: readonly StorageClass[] = ['STANDARD', 'STANDARD_IA', 'COLD', 'ARCHIVE'];
export type Conflict = 'ask' | 'rename' | 'overwrite';
export const CONFLICTS: readonly Conflict[] = ['ask', 'rename', 'overwrite'];
/** C4: the strategy when none is given — placing a file or link, a move, copy or restore renames; creating a directory asks. */
export const DEFAULT_CONFLICT = { place: 'rename', mkdir: 'ask' } as const satisfies Record<string, Conflict>;

/** Where a path link's stored string is anchored. */
export type PathBase =
  | 'parent' // made through the mount (POSIX): relative to the link's parent, or absolute
  | 'space'; // made through BOS: a key relative to the space root (L5)

export interface LinkInfo {
  flavour: LinkFlavour;
  /** What the mount's readlink returns right now (L4/L5); undefined while a bound target is being purged. */
  readlink: string | undefined;
  /** Bound: the target node id. */
  targetNode?: number;
  /**
   * Where the link leads, space-relative. Bound: the target's current path (may start with
   * `.trash/`; unset while the target is being purged). Path: where the string leads, lexically —
   * a BOS key as such, a mount-made target from the link's parent; unset when it leads outside
   * the space (absolute, or '..' above the root: D10).
   */
  targetPath?: string;
  /** Path: the stored string, as given at creation (BOS `GET ?symlink` returns this). */
  stored?: string;
  pathBase?: PathBase;
}

export interface NodeInfo {
  id: number; // stable identity = st_ino
  kind: NodeKind;
  /** Full st_mode including the file-type bits (S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO…). */
  mode: number;
  uid: number;
  gid: number;
  /** Files: content size. Links: byte length of the readlink string (L4). Dirs: 4096. */
  size: number;
  nlink: number; // dirs: 2 + subdirectories
  rdev: number;
  blob: string | null; // content blob key (files)
  etag: string | null; // hex MD5 of the content (files); sparse files: see src/blob/sparse.ts
  /**
   * D8: present only for a sparse file — the layout (header) of its container blob, whose data
   * extents are the file's written ranges; read it with `ContentReader.readContent` (src/vfs/reader.ts), never as bytes of
   * the file (src/blob/sparse.ts).
   */
  layout?: string;
  storageClass: StorageClass;
  atimeUs: number;
  mtimeUs: number;
  ctimeUs: number;
  birthtimeUs: number;
  /** The nanoseconds below each time (0–999): atime in ns is atimeUs·1000 + atimeNsRem. */
  atimeNsRem: number;
  mtimeNsRem: number;
  ctimeNsRem: number;
  birthtimeNsRem: number;
  /** Current space-relative path ('' for the root; `.trash/…` inside the bin view). */
  path: string;
  /** True when the node is in the recycle bin (an item or inside a trashed directory). */
  inTrash: boolean;
  link?: LinkInfo;
}

export interface DirEntry {
  name: string;
  info: NodeInfo;
}

/**
 * A page of a directory as its attributes need it (readdirplus, issue 15): the names, and per
 * entry `DS.STRIDE` numbers at the `DS` offsets. Packed, not a NodeInfo per entry: a walk lists
 * thousands of entries per request, and that many live objects cost more (allocation, then the
 * young generation's copying) than the SQL that reads them.
 */
export interface DirStats {
  names: string[];
  nums: Float64Array;
  /** D8: a sparse file's layout (what its st_blocks counts), by entry index; the rest have none */
  layouts: Map<number, string>;
}

/**
 * The numbers of an entry of DirStats, as in NodeInfo: KIND is NODE_KINDS' index; NLINK, SIZE
 * (a link's: its readlink answer's bytes) and the times as NodeInfo has them; FLAGS: DS_BOUND for
 * a bound link. µs times fit a double exactly (below 2^53 µs: year 2255).
 */
export const DS = {
  ID: 0,
  KIND: 1,
  MODE: 2,
  NLINK: 3,
  UID: 4,
  GID: 5,
  RDEV: 6,
  SIZE: 7,
  ATIME: 8,
  ATIME_NS: 9,
  MTIME: 10,
  MTIME_NS: 11,
  CTIME: 12,
  CTIME_NS: 13,
  BTIME: 14,
  FLAGS: 15,
  STRIDE: 16,
} as const;
export const DS_BOUND = 1;
/** FLAGS: only the name, ID, KIND and MODE are filled (Space.readdirNames). */
export const DS_NAMES = 2;
export const NODE_KINDS: readonly NodeKind[] = ['file', 'dir', 'link', 'special'];

/** Entry `i` of `d` from a NodeInfo (the root's `.trash`, a listing's `.` and `..`, an engine without a packed page). */
export function putDirStat(d: DirStats, i: number, name: string, info: NodeInfo): void {
  const b = i * DS.STRIDE;
  const n = d.nums;
  d.names[i] = name;
  n[b + DS.ID] = info.id;
  n[b + DS.KIND] = NODE_KINDS.indexOf(info.kind);
  n[b + DS.MODE] = info.mode;
  n[b + DS.NLINK] = info.nlink;
  n[b + DS.UID] = info.uid;
  n[b + DS.GID] = info.gid;
  n[b + DS.RDEV] = info.rdev;
  n[b + DS.SIZE] = info.size;
  n[b + DS.ATIME] = info.atimeUs;
  n[b + DS.ATIME_NS] = info.atimeNsRem;
  n[b + DS.MTIME] = info.mtimeUs;
  n[b + DS.MTIME_NS] = info.mtimeNsRem;
  n[b + DS.CTIME] = info.ctimeUs;
  n[b + DS.CTIME_NS] = info.ctimeNsRem;
  n[b + DS.BTIME] = info.birthtimeUs;
  n[b + DS.FLAGS] = info.link?.flavour === 'bound' ? DS_BOUND : 0;
  if (info.layout !== undefined) d.layouts.set(i, info.layout);
  else d.layouts.delete(i);
}

/** An empty DirStats of `n` entries, to fill. */
/** `spare`: memory to write the numbers over (zeroed first) when it holds them, else a fresh array. */
export function newDirStats(n: number, spare?: ArrayBuffer): DirStats {
  const len = n * DS.STRIDE;
  if (spare && spare.byteLength >= len * 8) {
    const nums = new Float64Array(spare, 0, len);
    nums.fill(0);
    return { names: new Array<string>(n), nums, layouts: new Map() };
  }
  return { names: new Array<string>(n), nums: new Float64Array(len), layouts: new Map() };
}

/** A blob the caller has stored (Library.storeBlob*) and wants a file to point at. */
export interface BlobRef {
  key: string;
  /** The file's size: the blob's, or with `layout` the logical size of the sparse file. */
  size: number;
  etag: string; // hex MD5 (sparse: see src/blob/sparse.ts)
  /** D8: the blob is the container of a sparse file with this layout (src/blob/sparse.ts). */
  layout?: string;
  /** The pending-write lease taken by Library.storeBlob*; the commit that references the blob releases it. */
  lease?: number;
}

export interface Owner {
  mode?: number; // permission bits (0o7777 mask); type bits are implied by the operation
  uid?: number;
  gid?: number;
}

/**
 * What a tree operation is about to do, shown to a caller's check inside the store's transaction
 * (the dialects decide grants from it, C5): the kind of the node moved, copied or restored, and the
 * kind of the node an 'overwrite' is about to replace (to the recycle bin), if any.
 */
export interface OpFacts {
  source?: NodeKind;
  replacing?: NodeKind;
}
/** Throws to refuse; called once, before anything changes. */
export type Authorize = (facts: OpFacts) => void;

export interface Placed {
  info: NodeInfo;
  /** Final path as segments (SMH `{"path": [...]}`), or null when the parent vanished (L2). */
  path: string[] | null;
}

export interface RecycleItem {
  id: number;
  kind: NodeKind;
  name: string; // original name
  originalPath: string; // space-relative
  size: number; // files: content size; dirs: total bytes of files inside
  removedAtUs: number;
  /** Name of the item in the `.trash` view: `<id>-<name>` (shortened to fit 255 bytes). */
  viewName: string;
  /** Bound links cascaded with the item (L12), with the paths they will be restored to. */
  links: Array<{ nodeId: number; originalPath: string }>;
}

export type TaskState = 'queued' | 'running' | 'done' | 'failed';
export interface Task {
  id: number;
  space: string;
  kind: 'purge-directory';
  state: TaskState;
  subject: string; // what is being purged (original path)
  total: number; // nodes to delete
  done: number; // nodes deleted so far
  error: string | null;
  createdAtUs: number;
  updatedAtUs: number;
}

export interface Attrs {
  mode?: number; // permission bits only
  uid?: number;
  gid?: number;
  atimeUs?: number;
  mtimeUs?: number;
  /** The nanoseconds below atimeUs / mtimeUs (0–999; 0 when absent); each only with its time. */
  atimeNsRem?: number;
  mtimeNsRem?: number;
}

export interface StatFs {
  files: number;
  bytes: number;
}

/**
 * Where a library's blob bytes live (B1), as recorded in its `meta` table under `blobs` (JSON).
 * Never credentials: those come from the standard AWS chain of the process that opens the store.
 * The CLI decides the values (src/cli/blobs.ts); the store only keeps them.
 */
export interface BlobConfig {
  /**
   * A local directory — relative means relative to the library folder (`blobs` is the default
   * store) — or `s3://BUCKET/PREFIX/` (an empty prefix is `s3://BUCKET/`).
   */
  url: string;
  s3Endpoint?: string;
  s3Region?: string;
  /** Present only when true. */
  s3PathStyle?: boolean;
}
