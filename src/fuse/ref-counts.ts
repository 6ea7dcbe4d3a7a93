/**
 * The kernel's lookup references per node id (the ll adapter's count: +1 per Entry sent, −n per
 * forget), as an open-addressing hash table over typed arrays. A `Map<number, number>` did the
 * same, but a walk adds ten thousand entries per directory page and the forgets after
 * drop_caches remove them all again: the Map's backing store was re-allocated (and its fresh
 * pages faulted in) at every doubling and halving, ~10% of a cold `find`'s server CPU (issue 15).
 * Here the arrays grow by doubling and shrink only when an eighth full, and a slot costs 12 bytes
 * (a Map entry ~37).
 *
 * Linear probing with backward-shift deletion (no tombstones: a probe stops at the first empty
 * slot). Keys are node ids: positive integers below 2^53 (0 marks an empty slot).
 */
const MIN_CAPACITY = 1024;

export class RefCounts {
  #keys = new Float64Array(MIN_CAPACITY);
  #counts = new Uint32Array(MIN_CAPACITY);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The references held on `id` (0: none). */
  count(id: number): number {
    const i = this.#find(id);
    return i < 0 ? 0 : this.#counts[i]!;
  }

  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /** `n` more references on `id`. */
  add(id: number, n = 1): void {
    if (!(id > 0) || !Number.isSafeInteger(id)) throw new RangeError(`RefCounts: not a node id: ${id}`);
    const mask = this.#keys.length - 1;
    let i = hash(id) & mask;
    for (;;) {
      const k = this.#keys[i]!;
      if (k === id) {
        this.#counts[i]! += n;
        return;
      }
      if (k === 0) break;
      i = (i + 1) & mask;
    }
    this.#keys[i] = id;
    this.#counts[i] = n;
    if (++this.#size * 2 > this.#keys.length) this.#resize(this.#keys.length * 2);
  }

  /** `n` fewer references on `id`; at 0 it is gone. Returns what is left. */
  release(id: number, n: number): number {
    const i = this.#find(id);
    if (i < 0) return 0;
    const left = this.#counts[i]! - n;
    if (left > 0) {
      this.#counts[i] = left;
      return left;
    }
    this.#remove(i);
    if (this.#size * 8 < this.#keys.length && this.#keys.length > MIN_CAPACITY) this.#resize(this.#keys.length / 2);
    return 0;
  }

  /** Every id with references. */
  ids(): number[] {
    const out: number[] = [];
    for (const k of this.#keys) if (k !== 0) out.push(k);
    return out;
  }

  #find(id: number): number {
    const mask = this.#keys.length - 1;
    let i = hash(id) & mask;
    for (;;) {
      const k = this.#keys[i]!;
      if (k === id) return i;
      if (k === 0) return -1;
      i = (i + 1) & mask;
    }
  }

  /** Empty slot `i`, shifting back the entries after it whose probe passed through it. */
  #remove(i: number): void {
    const keys = this.#keys;
    const counts = this.#counts;
    const mask = keys.length - 1;
    let hole = i;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const k = keys[j]!;
      if (k === 0) break;
      const home = hash(k) & mask;
      // k may move into the hole when its home is not cyclically within (hole, j]
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        keys[hole] = k;
        counts[hole] = counts[j]!;
        hole = j;
      }
    }
    keys[hole] = 0;
    counts[hole] = 0;
    this.#size--;
  }

  #resize(capacity: number): void {
    const keys = this.#keys;
    const counts = this.#counts;
    this.#keys = new Float64Array(capacity);
    this.#counts = new Uint32Array(capacity);
    const mask = capacity - 1;
    for (let j = 0; j < keys.length; j++) {
      const k = keys[j]!;
      if (k === 0) continue;
      let i = hash(k) & mask;
      while (this.#keys[i] !== 0) i = (i + 1) & mask;
      this.#keys[i] = k;
      this.#counts[i] = counts[j]!;
    }
  }
}

/** Node ids are mostly consecutive: mix them so runs do not cluster (a 32-bit multiplicative hash). */
function hash(id: number): number {
  const lo = id >>> 0;
  const hi = (id / 4294967296) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x27d4eb2d), 0x9e3779b1) >>> 0;
}
