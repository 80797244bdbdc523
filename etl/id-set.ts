/**
 * An exact set of event ids (byte strings), kept outside the JavaScript heap: ids are copied into
 * an append-only byte arena and indexed by an open-addressing hash table of typed arrays. Memory
 * is about `id bytes + 2` per id in the arena (+ 4 with tags) plus 8–16 bytes of hash table, and
 * the garbage collector never scans it, which a `Set` of millions of strings makes expensive.
 *
 * A tagged set keeps a 32-bit tag with each id (the dedup step: a digest of the event's payload),
 * so adding an id again tells whether it came with the same tag.
 */
import { viewOf } from './byte-view.js';

/** FNV-1a (32 bits) of `src[start, end)`: the set's slots use its low bits. */
export function fnv1a(src: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= src[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Which of `splits` parts an id of hash `h` belongs to, from the hash's high bits after mixing
 * (Fibonacci hashing), so the ids of one part still spread over all of an IdSet's slots.
 */
export function splitOf(h: number, splits: number): number {
  return Math.floor(((Math.imul(h, 0x9e3779b1) >>> 0) * splits) / 4294967296);
}

/**
 * MurmurHash3 (x86, 32 bits) of `src[start, end)`, four bytes a step: the digest of a payload the
 * dedup step keeps with each id, to tell a copy of an event from another event with its id.
 */
export function digest32(src: Uint8Array, start: number, end: number): number {
  let h = 0x9747b28c;
  let i = start;
  const body = end - ((end - start) & 3);
  const view = viewOf(src);
  for (; i < body; i += 4) {
    let k = view.getInt32(i, true);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const rest = end - i;
  if (rest === 3) k ^= (src[i + 2] as number) << 16;
  if (rest >= 2) k ^= (src[i + 1] as number) << 8;
  if (rest >= 1) {
    k ^= src[i] as number;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= end - start;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** What {@link IdSet.addTagged} found. */
export const Added = { NEW: 0, SAME_TAG: 1, OTHER_TAG: 2 } as const;
export type AddResult = (typeof Added)[keyof typeof Added];

export class IdSet {
  private arena: Buffer;
  private arenaView: DataView;
  private used = 0;
  /**
   * Two words per slot: arena offset + 1 (0 = empty; the arena stays under 4 GiB), then the id's
   * hash (one cache line holds both).
   */
  private table: Uint32Array;
  private mask: number;
  private count = 0;
  /** Bytes of tag after each id in the arena: 4 for a tagged set, else 0. */
  private readonly tagBytes: number;

  constructor(expected = 1024, options: { readonly tagged?: boolean } = {}) {
    this.tagBytes = options.tagged === true ? 4 : 0;
    let cap = 1024;
    while (cap < expected * 2) cap *= 2;
    this.table = new Uint32Array(2 * cap);
    this.mask = cap - 1;
    this.arena = Buffer.allocUnsafe(Math.max(64 * 1024, expected * (24 + this.tagBytes)));
    this.arenaView = new DataView(this.arena.buffer, this.arena.byteOffset, this.arena.length);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.arena.length + this.table.byteLength;
  }

  /** Whether the id `src[start, end)` is in the set. */
  has(src: Uint8Array, start: number, end: number): boolean {
    const h = fnv1a(src, start, end);
    const table = this.table;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = table[2 * slot] as number;
      if (at === 0) return false;
      if (table[2 * slot + 1] === h && this.equals(at - 1, src, start, end - start)) return true;
    }
  }

  /** Adds the id `src[start, end)`; returns false if it was already there. */
  add(src: Uint8Array, start: number, end: number): boolean {
    return this.find(src, start, end, fnv1a(src, start, end), 0) === Added.NEW;
  }

  /**
   * Adds the id `src[start, end)` with `tag` (a tagged set); when the id is there already, tells
   * whether it was added with the same tag (the one it was first added with stays).
   */
  addTagged(src: Uint8Array, start: number, end: number, tag: number): AddResult {
    return this.addTaggedHashed(src, start, end, fnv1a(src, start, end), tag);
  }

  /**
   * `addTagged` with the id's hash given: any 32-bit hash of the id's bytes whose low bits are
   * uniform (the dedup step passes a word of the keyed hash it computes anyway).
   */
  addTaggedHashed(src: Uint8Array, start: number, end: number, hash: number, tag: number): AddResult {
    if (this.tagBytes === 0) throw new Error('addTagged on an id set made without tags');
    return this.find(src, start, end, hash >>> 0, tag);
  }

  /** Finds the id, or adds it with `tag`. */
  private find(src: Uint8Array, start: number, end: number, h: number, tag: number): AddResult {
    const len = end - start;
    const table = this.table;
    let slot = h & this.mask;
    for (;;) {
      const at = table[2 * slot] as number;
      if (at === 0) break;
      if (table[2 * slot + 1] === h && this.equals(at - 1, src, start, len)) {
        if (this.tagBytes === 0) return Added.SAME_TAG;
        return this.arenaView.getUint32(at + 1 + len, true) === tag >>> 0 ? Added.SAME_TAG : Added.OTHER_TAG;
      }
      slot = (slot + 1) & this.mask;
    }
    this.insert(slot, h, src, start, len, tag);
    return Added.NEW;
  }

  private insert(slot: number, h: number, src: Uint8Array, start: number, len: number, tag: number): void {
    const size = len + 2 + this.tagBytes;
    if (this.used + size > this.arena.length) {
      if (this.used + size >= 0xffffffff) throw new RangeError('id set is full (4 GiB of ids)');
      const next = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.used + size));
      this.arena.copy(next, 0, 0, this.used);
      this.arena = next;
      this.arenaView = new DataView(next.buffer, next.byteOffset, next.length);
    }
    const off = this.used;
    const a = this.arena;
    const av = this.arenaView;
    a[off] = len & 0xff;
    a[off + 1] = len >> 8;
    const view = viewOf(src);
    const words = start + (len & ~3);
    let i = start;
    let o = off + 2;
    for (; i < words; i += 4, o += 4) av.setInt32(o, view.getInt32(i, true), true);
    for (; i < start + len; i++) a[o++] = src[i] as number;
    if (this.tagBytes > 0) av.setUint32(off + 2 + len, tag >>> 0, true);
    this.used += size;
    this.table[2 * slot] = off + 1;
    this.table[2 * slot + 1] = h;
    if (++this.count * 2 > this.mask) this.rehash();
  }

  private equals(off: number, src: Uint8Array, start: number, len: number): boolean {
    const a = this.arena;
    if (((a[off] as number) | ((a[off + 1] as number) << 8)) !== len) return false;
    const av = this.arenaView;
    const view = viewOf(src);
    const words = start + (len & ~3);
    const d = off + 2 - start;
    let i = start;
    for (; i < words; i += 4) if (av.getInt32(i + d, true) !== view.getInt32(i, true)) return false;
    for (; i < start + len; i++) if (a[i + d] !== src[i]) return false;
    return true;
  }

  private rehash(): void {
    const old = this.table;
    const cap = old.length; // twice the slots
    this.table = new Uint32Array(2 * cap);
    this.mask = cap - 1;
    const table = this.table;
    for (let i = 0; i < old.length; i += 2) {
      const at = old[i] as number;
      if (at === 0) continue;
      const h = old[i + 1] as number;
      let slot = h & this.mask;
      while (table[2 * slot] !== 0) slot = (slot + 1) & this.mask;
      table[2 * slot] = at;
      table[2 * slot + 1] = h;
    }
  }
}
