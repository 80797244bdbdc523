/**
 * An exact set of event ids (byte strings), kept outside the JavaScript heap: ids are copied into
 * an append-only byte arena and indexed by an open-addressing hash table of typed arrays. Memory
 * is about `id bytes + 2` per id in the arena plus 8–16 bytes of hash table, and the garbage
 * collector never scans it, which a `Set` of millions of strings makes expensive.
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

export class IdSet {
  private arena: Buffer;
  private used = 0;
  /** Per slot: arena offset + 1 (0 = empty); the arena stays under 4 GiB. */
  private slots: Uint32Array;
  private hashes: Uint32Array;
  private mask: number;
  private count = 0;

  constructor(expected = 1024) {
    let cap = 1024;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Uint32Array(cap);
    this.hashes = new Uint32Array(cap);
    this.mask = cap - 1;
    this.arena = Buffer.allocUnsafe(Math.max(64 * 1024, expected * 24));
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
    if (this.used + len + 2 > this.arena.length) {
      if (this.used + len + 2 >= 0xffffffff) throw new RangeError('id set is full (4 GiB of ids)');
      const next = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.used + len + 2));
      this.arena.copy(next, 0, 0, this.used);
      this.arena = next;
    }
    const off = this.used;
    this.arena[off] = len & 0xff;
    this.arena[off + 1] = len >> 8;
    for (let i = 0; i < len; i++) this.arena[off + 2 + i] = src[start + i] as number;
    this.used += len + 2;
    this.slots[slot] = off + 1;
    this.hashes[slot] = h;
    if (++this.count * 2 > this.mask) this.rehash();
    return true;
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
