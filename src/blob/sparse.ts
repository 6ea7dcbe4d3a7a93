/**
 * Sparse files (SPEC D8): a file whose size is far beyond the bytes written into it is stored as
 * ONE blob, a *container*, holding a short text header (the layout) followed by the written data
 * extents back to back. The holes are in no blob: they are never hashed, uploaded or read.
 *
 * Container = header || data, where the header is ASCII text, one item per line:
 *
 *     SMHFS-SPARSE 1
 *     size <logical size in bytes>
 *     <offset> <length>        one line per data extent: ascending, disjoint, not touching,
 *     …                        length > 0, offset + length <= size
 *     end
 *
 * (decimal numbers, single spaces, "\n" line ends, nothing else). The data of the extents follows
 * the "end\n" line immediately, in order. Bytes of the file outside every extent are zeros.
 *
 * Content addressing is untouched: the blob key is the SHA-256 of the container's bytes, like
 * every key, so equal sparse files share one container and a key never changes content. The
 * node row keeps the header text (`nodes.layout`), so a read maps a logical range to container
 * offsets without fetching the header; a dense file has no layout and keeps today's format
 * exactly (key = SHA-256 of the bytes, ETag = MD5 of the bytes). The ETag of a sparse file is
 * the MD5 of its container followed by `-sparse` (the MD5 of the logical bytes would cost a pass
 * over the zeros; the suffix tells clients that it is not the MD5 of the body, as S3's multipart
 * `-N` ETags do).
 *
 * Which files are sparse: while a file is staged the mount records the ranges written into it
 * (`ExtentSet`); at commit `planLayout` keeps as holes only gaps of at least HOLE_MIN bytes
 * (smaller gaps are stored as zeros, like a file system's block granularity) and stores the file
 * dense when no such gap is left. Writes that only append — the common case — never make holes.
 */

/** The first line of every container. */
export const SPARSE_MAGIC = 'SMHFS-SPARSE 1';
/** The smallest gap between written ranges kept as a hole (smaller ones are stored as zeros). */
export const HOLE_MIN = 1 << 20;
/** Above this many extents the smallest gaps are stored as zeros (bounds the header to ~1.5 MB). */
export const MAX_EXTENTS = 65536;
/** Appended to the MD5 of the container to make a sparse file's ETag. */
export const SPARSE_ETAG_SUFFIX = '-sparse';

export interface Extent {
  /** Logical offset in the file. */
  offset: number;
  length: number;
}

/** A piece of a logical range: `blobOffset` is where its bytes are in the container, or null for a hole. */
export interface Segment {
  offset: number;
  length: number;
  blobOffset: number | null;
}

/** The layout of one sparse file: its logical size, its data extents, and its container's header. */
export class SparseLayout {
  readonly size: number;
  readonly extents: readonly Extent[];
  /** The container's header text (also kept in the node row). */
  readonly header: string;
  readonly headerBytes: number;
  /** Bytes of data (sum of extent lengths). */
  readonly dataBytes: number;
  /** Where each extent's data starts in the container. */
  readonly #starts: number[];

  private constructor(size: number, extents: Extent[], header: string) {
    this.size = size;
    this.extents = extents;
    this.header = header;
    this.headerBytes = Buffer.byteLength(header, 'latin1');
    let at = this.headerBytes;
    this.#starts = extents.map((e) => {
      const s = at;
      at += e.length;
      return s;
    });
    this.dataBytes = at - this.headerBytes;
  }

  /** Size of the container blob. */
  get blobSize(): number {
    return this.headerBytes + this.dataBytes;
  }

  static fromExtents(size: number, extents: readonly Extent[]): SparseLayout {
    const list = extents.map((e) => ({ offset: e.offset, length: e.length }));
    check(size, list);
    const lines = [SPARSE_MAGIC, `size ${size}`, ...list.map((e) => `${e.offset} ${e.length}`), 'end', ''];
    return new SparseLayout(size, list, lines.join('\n'));
  }

  /** Parse (and strictly validate) a header as stored in a node row or at the start of a container. */
  static parse(header: string): SparseLayout {
    const cached = parsed.get(header);
    if (cached) return cached;
    const lines = header.split('\n');
    const bad = (why: string): never => {
      throw new Error(`not a valid sparse layout (${why})`);
    };
    if (lines[0] !== SPARSE_MAGIC) bad('no magic line');
    const sizeLine = /^size (0|[1-9]\d*)$/.exec(lines[1] ?? '');
    if (!sizeLine) bad('no size line');
    if (lines[lines.length - 1] !== '' || lines[lines.length - 2] !== 'end') bad('no end line');
    const extents: Extent[] = [];
    for (const line of lines.slice(2, -2)) {
      const m = /^(0|[1-9]\d*) ([1-9]\d*)$/.exec(line);
      if (!m) bad(`bad extent line ${JSON.stringify(line.slice(0, 40))}`);
      extents.push({ offset: Number(m![1]), length: Number(m![2]) });
    }
    const size = Number(sizeLine![1]);
    try {
      check(size, extents);
    } catch (e) {
      bad((e as Error).message);
    }
    const layout = new SparseLayout(size, extents, header);
    if (parsed.size >= 256) parsed.clear();
    parsed.set(header, layout);
    return layout;
  }

  /** Cut the logical range [pos, pos + len) (clipped to the size) into data and hole segments. */
  segments(pos: number, len: number): Segment[] {
    const end = Math.min(this.size, pos + len);
    const out: Segment[] = [];
    let at = pos;
    for (let i = this.#firstEndingAfter(pos); at < end; i++) {
      const e = this.extents[i];
      if (!e || e.offset >= end) {
        out.push({ offset: at, length: end - at, blobOffset: null });
        break;
      }
      if (e.offset > at) {
        out.push({ offset: at, length: e.offset - at, blobOffset: null });
        at = e.offset;
      }
      const stop = Math.min(end, e.offset + e.length);
      out.push({ offset: at, length: stop - at, blobOffset: this.#starts[i]! + (at - e.offset) });
      at = stop;
    }
    return out;
  }

  /** Index of the first extent that ends after `pos`. */
  #firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.extents.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = this.extents[mid]!;
      if (e.offset + e.length <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** lseek(SEEK_DATA): the first data offset >= pos, or undefined (ENXIO). */
  nextData(pos: number): number | undefined {
    return nextData(this.extents, this.#firstEndingAfter(pos), pos, this.size);
  }

  /** lseek(SEEK_HOLE): the first hole offset >= pos (the size counts as a hole), or undefined past the end. */
  nextHole(pos: number): number | undefined {
    return nextHole(this.extents, this.#firstEndingAfter(pos), pos, this.size);
  }
}

const parsed = new Map<string, SparseLayout>();

function check(size: number, extents: Extent[]): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`bad size ${size}`);
  let end = -1;
  for (const e of extents) {
    if (!Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length) || e.offset < 0 || e.length <= 0) {
      throw new Error(`bad extent ${e.offset}+${e.length}`);
    }
    if (e.offset <= end) throw new Error(`extents overlap, touch or are out of order at ${e.offset}`);
    end = e.offset + e.length;
    if (end > size) throw new Error(`extent ${e.offset}+${e.length} ends past the size ${size}`);
  }
}

function nextData(extents: readonly Extent[], i: number, pos: number, size: number): number | undefined {
  if (pos >= size) return undefined;
  const e = extents[i];
  if (!e) return undefined;
  return Math.max(pos, e.offset);
}

function nextHole(extents: readonly Extent[], i: number, pos: number, size: number): number | undefined {
  if (pos >= size) return undefined;
  const e = extents[i];
  if (!e || e.offset > pos) return pos;
  return e.offset + e.length; // extents never touch, so the byte after one is a hole (or the end)
}

/**
 * The ranges of a staging file that hold written bytes: a sorted list of disjoint, non-touching
 * [start, end) intervals. Everything else in the file is a hole (never written, reads as zeros).
 */
export class ExtentSet {
  #starts: number[] = [];
  #ends: number[] = [];

  static of(extents: readonly Extent[]): ExtentSet {
    const s = new ExtentSet();
    for (const e of extents) s.add(e.offset, e.offset + e.length);
    return s;
  }

  get count(): number {
    return this.#starts.length;
  }

  /** Bytes covered. */
  get bytes(): number {
    let n = 0;
    for (let i = 0; i < this.#starts.length; i++) n += this.#ends[i]! - this.#starts[i]!;
    return n;
  }

  /** Mark [start, end) as written. Appends (the common case) cost O(1). */
  add(start: number, end: number): void {
    if (end <= start) return;
    const n = this.#starts.length;
    if (n === 0 || start > this.#ends[n - 1]!) {
      this.#starts.push(start);
      this.#ends.push(end);
      return;
    }
    if (start >= this.#starts[n - 1]!) {
      if (end > this.#ends[n - 1]!) this.#ends[n - 1] = end;
      return;
    }
    // General case: merge every interval that overlaps or touches [start, end).
    let lo = 0;
    while (lo < n && this.#ends[lo]! < start) lo++;
    let hi = lo;
    let s = start;
    let e = end;
    while (hi < n && this.#starts[hi]! <= end) {
      s = Math.min(s, this.#starts[hi]!);
      e = Math.max(e, this.#ends[hi]!);
      hi++;
    }
    this.#starts.splice(lo, hi - lo, s);
    this.#ends.splice(lo, hi - lo, e);
  }

  /** truncate(2) to `size`: nothing at or past it is written any more. */
  truncate(size: number): void {
    let n = this.#starts.length;
    while (n > 0 && this.#starts[n - 1]! >= size) n--;
    this.#starts.length = n;
    this.#ends.length = n;
    if (n > 0 && this.#ends[n - 1]! > size) this.#ends[n - 1] = size;
  }

  /** fallocate(PUNCH_HOLE): nothing in [start, end) is written any more (an extent across it splits in two). */
  remove(start: number, end: number): void {
    if (end <= start) return;
    const starts: number[] = [];
    const ends: number[] = [];
    for (let i = 0; i < this.#starts.length; i++) {
      const s = this.#starts[i]!;
      const e = this.#ends[i]!;
      if (e <= start || s >= end) {
        starts.push(s);
        ends.push(e);
        continue;
      }
      if (s < start) {
        starts.push(s);
        ends.push(start);
      }
      if (e > end) {
        starts.push(end);
        ends.push(e);
      }
    }
    this.#starts = starts;
    this.#ends = ends;
  }

  list(): Extent[] {
    return this.#starts.map((s, i) => ({ offset: s, length: this.#ends[i]! - s }));
  }

  /** Whether [start, end) is entirely unwritten. */
  isHole(start: number, end: number): boolean {
    for (let i = 0; i < this.#starts.length; i++) {
      if (this.#starts[i]! >= end) return true;
      if (this.#ends[i]! > start) return false;
    }
    return true;
  }

  nextData(pos: number, size: number): number | undefined {
    const list = this.list();
    return nextData(list, list.findIndex((e) => e.offset + e.length > pos), pos, size);
  }

  nextHole(pos: number, size: number): number | undefined {
    const list = this.list();
    const i = list.findIndex((e) => e.offset + e.length > pos);
    return nextHole(list, i < 0 ? list.length : i, pos, size);
  }
}

/**
 * How a staged file of `size` bytes whose written ranges are `written` should be stored: a
 * SparseLayout when it has a hole of at least HOLE_MIN bytes after small gaps are filled in,
 * otherwise undefined (store it dense: its bytes, holes and all, as one plain blob). A file
 * written in more than MAX_EXTENTS separate pieces has its smallest gaps stored as zeros, so the
 * header (kept in the node row, parsed by every read) stays bounded.
 */
export function planLayout(size: number, written: ExtentSet): SparseLayout | undefined {
  let runs: Extent[] = [];
  for (const e of written.list()) {
    if (e.offset >= size) break;
    const end = Math.min(size, e.offset + e.length);
    const last = runs[runs.length - 1];
    const prevEnd = last ? last.offset + last.length : 0;
    if (e.offset - prevEnd >= HOLE_MIN) runs.push({ offset: e.offset, length: end - e.offset });
    else if (last) last.length = end - last.offset; // a small gap is stored as zeros
    else runs.push({ offset: 0, length: end }); // a small leading gap too
  }
  const last = runs[runs.length - 1];
  if (last && size - (last.offset + last.length) < HOLE_MIN) last.length = size - last.offset;
  if (runs.length > MAX_EXTENTS) runs = mergeSmallestGaps(runs, runs.length - MAX_EXTENTS);
  const data = runs.reduce((n, e) => n + e.length, 0);
  if (size - data < HOLE_MIN) return undefined;
  return SparseLayout.fromExtents(size, runs);
}

/** Join `k` pairs of neighbouring runs across the smallest gaps (the biggest holes stay holes). */
function mergeSmallestGaps(runs: Extent[], k: number): Extent[] {
  const gap = (i: number): number => runs[i + 1]!.offset - (runs[i]!.offset + runs[i]!.length);
  const order = Array.from({ length: runs.length - 1 }, (_, i) => i).sort((a, b) => gap(a) - gap(b) || a - b);
  const merge = new Set(order.slice(0, k));
  const out: Extent[] = [];
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i]!;
    if (i > 0 && merge.has(i - 1)) {
      const prev = out[out.length - 1]!;
      prev.length = r.offset + r.length - prev.offset;
    } else {
      out.push({ offset: r.offset, length: r.length });
    }
  }
  return out;
}

/** The ETag of a sparse file from the MD5 (hex) of its container. */
export function sparseEtag(containerMd5: string): string {
  return `${containerMd5}${SPARSE_ETAG_SUFFIX}`;
}

/** Size of the blob a file's row points at: the container's for a sparse file, else the file's size. */
export function storedBlobSize(file: { size: number; layout?: string | null | undefined }): number {
  return file.layout ? SparseLayout.parse(file.layout).blobSize : file.size;
}
