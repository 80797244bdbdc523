/**
 * An exact set of event ids (byte strings), kept outside the JavaScript heap: ids are copied into
 * an append-only byte arena and indexed by an open-addressing hash table of typed arrays. Memory
 * is about `id bytes + 2` per id in the arena (+ 4 with tags) plus 8–16 bytes of hash table, and
 * the garbage collector never scans it, which a `Set` of millions of strings makes expensive.
 *
 * A tagged set keeps a 32-bit tag with each id (the dedup step: a digest of the event's payload),
 * so adding an id again tells whether it came with the same tag.
 */
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
  for (; i < body; i += 4) {
    let k =
      (src[i] as number) |
      ((src[i + 1] as number) << 8) |
      ((src[i + 2] as number) << 16) |
      ((src[i + 3] as number) << 24);
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
  private used = 0;
  /** Per slot: arena offset + 1 (0 = empty); the arena stays under 4 GiB. */
  private slots: Uint32Array;
  private hashes: Uint32Array;
  private mask: number;
  private count = 0;
  /** Bytes of tag after each id in the arena: 4 for a tagged set, else 0. */
  private readonly tagBytes: number;

  constructor(expected = 1024, options: { readonly tagged?: boolean } = {}) {
    this.tagBytes = options.tagged === true ? 4 : 0;
    let cap = 1024;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Uint32Array(cap);
    this.hashes = new Uint32Array(cap);
    this.mask = cap - 1;
    this.arena = Buffer.allocUnsafe(Math.max(64 * 1024, expected * (24 + this.tagBytes)));
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.arena.length + this.slots.byteLength + this.hashes.byteLength;
  }

  /** Whether the id `src[start, end)` is in the set. */
  has(src: Uint8Array, start: number, end: number): boolean {
    const h = fnv1a(src, start, end);
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = this.slots[slot] as number;
      if (at === 0) return false;
      if (this.hashes[slot] === h && this.equals(at - 1, src, start, end - start)) return true;
    }
  }

  /** Adds the id `src[start, end)`; returns false if it was already there. */
  add(src: Uint8Array, start: number, end: number): boolean {
    const h = fnv1a(src, start, end);
    const len = end - start;
    let slot = h & this.mask;
    for (;;) {
      const at = this.slots[slot] as number;
      if (at === 0) break;
      if (this.hashes[slot] === h && this.equals(at - 1, src, start, len)) return false;
      slot = (slot + 1) & this.mask;
    }
    this.insert(slot, h, src, start, len, 0);
    return true;
  }

  /**
   * Adds the id `src[start, end)` with `tag` (a tagged set); when the id is there already, tells
   * whether it was added with the same tag (the one it was first added with stays).
   */
  addTagged(src: Uint8Array, start: number, end: number, tag: number): AddResult {
    if (this.tagBytes === 0) throw new Error('addTagged on an id set made without tags');
    const h = fnv1a(src, start, end);
    const len = end - start;
    let slot = h & this.mask;
    for (;;) {
      const at = this.slots[slot] as number;
      if (at === 0) break;
      if (this.hashes[slot] === h && this.equals(at - 1, src, start, len)) {
        return this.arena.readUInt32LE(at + 1 + len) === tag >>> 0 ? Added.SAME_TAG : Added.OTHER_TAG;
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
    }
    const off = this.used;
    this.arena[off] = len & 0xff;
    this.arena[off + 1] = len >> 8;
    for (let i = 0; i < len; i++) this.arena[off + 2 + i] = src[start + i] as number;
    if (this.tagBytes > 0) this.arena.writeUInt32LE(tag >>> 0, off + 2 + len);
    this.used += size;
    this.slots[slot] = off + 1;
    this.hashes[slot] = h;
    if (++this.count * 2 > this.mask) this.rehash();
  }

  private equals(off: number, src: Uint8Array, start: number, len: number): boolean {
    const a = this.arena;
    if (((a[off] as number) | ((a[off + 1] as number) << 8)) !== len) return false;
    for (let i = 0; i < len; i++) if (a[off + 2 + i] !== src[start + i]) return false;
    return true;
  }

  private rehash(): void {
    const oldSlots = this.slots;
    const oldHashes = this.hashes;
    const cap = oldSlots.length * 2;
    this.slots = new Uint32Array(cap);
    this.hashes = new Uint32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < oldSlots.length; i++) {
      const at = oldSlots[i] as number;
      if (at === 0) continue;
      const h = oldHashes[i] as number;
      let slot = h & this.mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = at;
      this.hashes[slot] = h;
    }
  }
}
