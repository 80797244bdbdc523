/**
 * The dedup step's set of a partition's keys, held as their 128-bit keyed hashes (SipHash-2-4-128,
 * the hashes of the id index: etl/id-index.ts) in one typed array outside the JavaScript heap.
 *
 * - **Keys by hash.** Two distinct keys of a partition share a hash with probability 2^-128 per
 *   pair: about 5e-26 for a partition of 6 M keys. The hash key is a secret of the deployment, so
 *   producers cannot search for collisions. The window already drops an event on the same
 *   evidence, so no key bytes are kept: 20 bytes a slot, where bytes and offsets took about 42.
 * - **A tag per key**: a 30-bit digest of the first copy's payload, so another copy tells whether
 *   it came with the same payload (a retry) or another one (an id conflict, counted), and a flag
 *   saying whether the key is kept in the partition's id index (a key the window already holds is
 *   not).
 * - **Slots in hash order.** A key's first slot is its hash's top word scaled to the table
 *   (`floor((w0 − lo) × slots / (hi − lo))` for the keys of one split, `[lo, hi)`), and a taken slot
 *   sends it to the next one (linear probing, at most 70% full). So the keys lie in the table in
 *   nearly ascending order, and the sorted list the id index needs is the kept keys moved to the
 *   front of the same array, then an insertion sort that only swaps within the few runs of probing:
 *   no second array and no scatter. The last slots are an overflow area (no wrap-around); a run
 *   reaching its end grows the table.
 * - **Pages mapped ahead.** The table is written once when it is made (see {@link mappedTable}).
 * - **Misses in flight.** {@link KeySet.touch} reads the first slots of a batch of keys before they
 *   are added: the CPU waits for many cache misses at once rather than one by one.
 */
import { HASH_WORDS, insertionSortHashes } from './id-index.js';

/** What {@link KeySet.add} found. */
export const Found = { NEW: 0, SAME_TAG: 1, OTHER_TAG: 2 } as const;
export type FoundResult = (typeof Found)[keyof typeof Found];

/** Words per slot: the hash's four, then the tag word. */
const SLOT = 5;
const TAKEN = 0x80000000;
const KEPT = 0x40000000;
const DIGEST = 0x3fffffff;
const MAX_LOAD = 0.7;
const OVERFLOW_SLOTS = 1024;
const TWO_32 = 4294967296;
/** The largest table (typed arrays stop short of 2^32 bytes in some engines). */
const MAX_BYTES = 2 ** 31;

export class KeySet {
  private table: Uint32Array;
  /** Slots addressed by hash (the overflow area follows). */
  private slots: number;
  private count = 0;
  /** Slots per unit of top word: `slots / (hi − lo)`. */
  private scale = 0;
  /** What {@link KeySet.touch} read. */
  private touched = 0;

  /** A set for about `expected` keys whose top words are in `[lo, hi)` (one split's range). */
  constructor(
    expected: number,
    private lo = 0,
    private hi = TWO_32,
  ) {
    this.slots = Math.max(64, Math.ceil(expected / MAX_LOAD));
    this.setRange(lo, hi);
    this.table = mappedTable(this.slots);
  }

  /** Takes the keys of `[lo, hi)` from now on (the table scaled to it). */
  private setRange(lo: number, hi: number): void {
    if (!(hi > lo)) throw new RangeError(`empty key range [${lo}, ${hi})`);
    this.lo = lo;
    this.hi = hi;
    this.scale = this.slots / (hi - lo);
  }

  /**
   * Empties the set for the keys of another range `[lo, hi)` of about as many keys, in the same
   * memory: the next split of a spilled partition reuses the table, whose pages are mapped, where
   * a new one would be mapped while the last one waits for a collection (about 110 MB more at the
   * peak, in parts of 4 M keys).
   */
  reset(lo: number, hi: number): void {
    this.setRange(lo, hi);
    this.table.fill(0);
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }

  private home(w0: number): number {
    return Math.floor(((w0 >>> 0) - this.lo) * this.scale);
  }

  /**
   * Reads the first slot of each of the first `count` keys of `words` (four words each), before
   * they are added (see the module doc). What it read is kept, so the loads are not optimised away.
   */
  touch(words: Uint32Array, count: number): void {
    const table = this.table;
    let read = this.touched;
    for (let i = 0; i < count; i++)
      read ^= table[SLOT * this.home(words[HASH_WORDS * i] as number) + SLOT - 1] as number;
    this.touched = read;
  }

  /**
   * Adds the key whose hash is `words[at, at + 4)` with the payload digest `digest` (its low 30
   * bits are kept), kept in the id index or not; or tells that it is there, with the digest it was
   * first added with or another. The top word must be in the set's range.
   */
  add(words: Uint32Array, at: number, digest: number, kept: boolean): FoundResult {
    const w0 = words[at] as number;
    const w1 = words[at + 1] as number;
    const w2 = words[at + 2] as number;
    const w3 = words[at + 3] as number;
    if (w0 < this.lo || w0 >= this.hi) throw new RangeError(`hash ${w0} outside the set's range`);
    const table = this.table;
    const end = table.length;
    for (let o = SLOT * this.home(w0); o < end; o += SLOT) {
      const tag = table[o + 4] as number;
      if (tag === 0) {
        table[o] = w0;
        table[o + 1] = w1;
        table[o + 2] = w2;
        table[o + 3] = w3;
        table[o + 4] = (TAKEN | (kept ? KEPT : 0) | (digest & DIGEST)) >>> 0;
        this.count++;
        if (this.count > MAX_LOAD * this.slots) this.grow(2);
        return Found.NEW;
      }
      if (table[o] === w0 && table[o + 1] === w1 && table[o + 2] === w2 && table[o + 3] === w3) {
        return (tag & DIGEST) === (digest & DIGEST) ? Found.SAME_TAG : Found.OTHER_TAG;
      }
    }
    // a run of taken slots reached the end of the overflow area: grow, and add it again
    this.grow(2);
    return this.add(words, at, digest, kept);
  }

  private grow(factor: number): void {
    const old = this.table;
    // only a run of keys with equal top words could keep growing it (not for a keyed hash)
    if (SLOT * 4 * (this.slots * factor + OVERFLOW_SLOTS) > MAX_BYTES) throw new RangeError('key set is full');
    this.slots *= factor;
    this.scale = this.slots / (this.hi - this.lo);
    this.table = mappedTable(this.slots);
    const table = this.table;
    const end = table.length;
    // in slot order, which is nearly hash order: each key lands at or after the one before
    for (let i = 0; i < old.length; i += SLOT) {
      if (old[i + 4] === 0) continue;
      let o = SLOT * this.home(old[i] as number);
      while (o < end && table[o + 4] !== 0) o += SLOT;
      if (o >= end) {
        // cannot happen at half the load, but never lose a key: grow further
        this.table = old;
        this.slots /= factor;
        this.grow(factor * 2);
        return;
      }
      for (let w = 0; w < SLOT; w++) table[o + w] = old[i + w] as number;
    }
  }

  /**
   * The kept keys' hashes in ascending order, four words each (for the id index), moved to the
   * front of the set's own array: the set cannot be used afterwards (until {@link reset}).
   */
  sortedKept(): Uint32Array {
    const t = this.table;
    let n = 0;
    for (let i = 0; i < t.length; i += SLOT) {
      if (((t[i + 4] as number) & KEPT) === 0) continue;
      const o = HASH_WORDS * n++;
      // o <= i: the front never overtakes the slot being read
      t[o] = t[i] as number;
      t[o + 1] = t[i + 1] as number;
      t[o + 2] = t[i + 2] as number;
      t[o + 3] = t[i + 3] as number;
    }
    // nearly sorted already: an insertion sort moves each key back past the few it was placed after
    insertionSortHashes(t, 0, n);
    this.count = 0;
    return t.subarray(0, HASH_WORDS * n);
  }
}

/**
 * A zeroed table of `slots` slots and the overflow area, every page of it written once. A fresh
 * allocation's pages are mapped by the kernel at their first write, a fault each; taken inside
 * the add loop, those faults cost more than the cache misses (measured on a 5 M-event partition:
 * the add loop went from 1.65 s to 0.8 s once the table was written ahead, which takes under
 * 0.1 s for its 143 MB).
 */
function mappedTable(slots: number): Uint32Array {
  const table = new Uint32Array(SLOT * (slots + OVERFLOW_SLOTS));
  table.fill(0);
  return table;
}
