/**
 * The id index of a published partition: the sorted, fixed-width 128-bit keyed hashes
 * (SipHash-2-4-128, etl/siphash.ts) of the (producer, id) keys it kept, written beside its
 * manifest. A later partition whose dedup window covers this one drops the events whose key
 * hash is in it, reading only the part of the index its split covers.
 *
 * Layout (little-endian):
 *
 * - a 64-byte header: the magic `HGIDXv01`, u32 version (1), u32 fan-out bits `k`, u64 count,
 *   8 bytes of key id (which deployment secret hashed it), zeros;
 * - the fan-out table: `2^k + 1` u64 entries, entry `b` the number of hashes whose top `k` bits
 *   are below `b` (so bucket `b` is hashes `[fan[b], fan[b + 1])`);
 * - `count` hashes of 16 bytes each, four u32 words, most significant first, ascending.
 *
 * `k` is chosen so that a bucket holds about 4,096 hashes (64 KiB): the table costs about 0.2 %
 * of the index, and a split's range is read to within a bucket of its bounds.
 *
 * Splits: a hash belongs to split `floor(w0 × S / 2^32)` of `S` (its top 32 bits), so every split
 * is a contiguous range of hashes, and the split of a new key and of its copy in any index agree.
 *
 * Collision bound: two distinct keys share a 128-bit keyed hash with probability 2^-128. A type
 * at 1 M ids/s with a 30-day window checks N = 3.2e13 new ids a year against W = 2.6e12 ids in
 * its window: N × W / 2^128 ≈ 2.4e-13 wrongly dropped events a year, below 1e-12. (64 bits
 * would drop about 4.4 M a year.) The key is a secret of the deployment, so producers cannot
 * search for collisions.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { ObjectStore } from '../core/ports/object-store.js';

export const HASH_WORDS = 4;
export const HASH_BYTES = 16;
export const HEADER_BYTES = 64;
const MAGIC = 'HGIDXv01';
const VERSION = 1;
/** Hashes per fan-out bucket the table aims at. */
const BUCKET_TARGET = 4096;
const MAX_FANOUT_BITS = 24;
const TWO_32 = 4294967296;
/** Bytes of index read per request. */
export const READ_CHUNK_BYTES = 4 << 20;

/** What a manifest says of its id index. */
export interface IdIndexRef {
  /** Object name, beside the manifest. */
  readonly name: string;
  readonly ids: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly hash: 'siphash-2-4-128';
  /** Which deployment key hashed it (see `keyIdOf`). */
  readonly keyId: string;
  readonly fanoutBits: number;
}

/** An id of a hash key that tells keys apart without revealing them: 16 hex digits of its SHA-256. */
export function keyIdOf(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Fan-out bits for an index of about `ids` hashes. */
export function fanoutBitsFor(ids: number): number {
  if (ids <= BUCKET_TARGET) return 0;
  return Math.min(MAX_FANOUT_BITS, Math.ceil(Math.log2(ids / BUCKET_TARGET)));
}

/** The split of `splits` a hash whose top word is `w0` belongs to. */
export function splitOfHash(w0: number, splits: number): number {
  return Math.floor(((w0 >>> 0) * splits) / TWO_32);
}

/** The top words `[lo, hi)` of split `split` of `splits` (hi is at most 2^32). */
export function splitRange(split: number, splits: number): [number, number] {
  return [Math.ceil((split * TWO_32) / splits), Math.ceil(((split + 1) * TWO_32) / splits)];
}

/** Compares hash `i` of `a` with hash `j` of `b` (word offsets `4i`, `4j`). */
export function compareHashes(a: Uint32Array, i: number, b: Uint32Array, j: number): number {
  for (let w = 0; w < HASH_WORDS; w++) {
    const x = a[4 * i + w] as number;
    const y = b[4 * j + w] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Most bits of the top word {@link sortHashes} buckets by (a 4 MiB table of bucket starts). */
const SORT_MAX_BITS = 20;

/**
 * Sorts hashes `[from, to)` of `t` in place by insertion: fast where each hash is near its
 * place (a bucket of a few, a table in nearly hash order).
 */
export function insertionSortHashes(t: Uint32Array, from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const a0 = t[4 * i] as number;
    const a1 = t[4 * i + 1] as number;
    const a2 = t[4 * i + 2] as number;
    const a3 = t[4 * i + 3] as number;
    let j = i - 1;
    for (; j >= from; j--) {
      const o = 4 * j;
      const b0 = t[o] as number;
      if (b0 < a0) break;
      if (b0 === a0) {
        const b1 = t[o + 1] as number;
        if (b1 < a1) break;
        if (b1 === a1) {
          const b2 = t[o + 2] as number;
          if (b2 < a2 || (b2 === a2 && (t[o + 3] as number) <= a3)) break;
        }
      }
      t[o + 4] = b0;
      t[o + 5] = t[o + 1] as number;
      t[o + 6] = t[o + 2] as number;
      t[o + 7] = t[o + 3] as number;
    }
    const o = 4 * (j + 1);
    t[o] = a0;
    t[o + 1] = a1;
    t[o + 2] = a2;
    t[o + 3] = a3;
  }
}

/**
 * The first `n` hashes of `words` sorted ascending, duplicates removed: a counting sort on the top
 * bits of the first word (keyed hashes are uniform: a few hashes a bucket), then an insertion
 * sort of each bucket. Hashes are moved as four words, never through views.
 */
export function sortHashes(words: Uint32Array, n: number): Uint32Array {
  const bits = n < 1024 ? 0 : Math.min(SORT_MAX_BITS, Math.ceil(Math.log2(n / 4)));
  const buckets = 1 << bits;
  const shift = 32 - bits;
  const starts = new Uint32Array(buckets + 1);
  if (bits === 0) starts[1] = n;
  else for (let i = 0; i < n; i++) (starts[((words[4 * i] as number) >>> shift) + 1] as number)++;
  for (let b = 0; b < buckets; b++) starts[b + 1] = (starts[b + 1] as number) + (starts[b] as number);
  const out = new Uint32Array(4 * n);
  if (bits === 0) out.set(words.subarray(0, 4 * n));
  else {
    const next = starts.slice(0, buckets);
    for (let i = 0; i < n; i++) {
      const w0 = words[4 * i] as number;
      const o = 4 * (next[w0 >>> shift] as number)++;
      out[o] = w0;
      out[o + 1] = words[4 * i + 1] as number;
      out[o + 2] = words[4 * i + 2] as number;
      out[o + 3] = words[4 * i + 3] as number;
    }
  }
  for (let b = 0; b < buckets; b++) insertionSortHashes(out, starts[b] as number, starts[b + 1] as number);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    if (m > 0) {
      const p = 4 * (m - 1);
      if (out[p] === out[o] && out[p + 1] === out[o + 1] && out[p + 2] === out[o + 2] && out[p + 3] === out[o + 3])
        continue;
    }
    if (m !== i) {
      const p = 4 * m;
      out[p] = out[o] as number;
      out[p + 1] = out[o + 1] as number;
      out[p + 2] = out[o + 2] as number;
      out[p + 3] = out[o + 3] as number;
    }
    m++;
  }
  return out.subarray(0, 4 * m);
}

/** The position of hash `j` of `words` in the sorted hashes `sorted` (binary search), or -1. */
export function indexOfHash(sorted: Uint32Array, words: Uint32Array, j: number): number {
  let lo = 0;
  let hi = sorted.length / HASH_WORDS;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareHashes(sorted, mid, words, j);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/** Whether the sorted hashes `sorted` hold hash `j` of `words`. */
export function hasHash(sorted: Uint32Array, words: Uint32Array, j: number): boolean {
  return indexOfHash(sorted, words, j) >= 0;
}

/**
 * Writes an index from hashes handed over in ascending order (split after split), to a local
 * file, then `finish` gives its path and what the manifest records.
 */
export class IdIndexWriter {
  readonly fanoutBits: number;
  private readonly counts: Float64Array;
  private count = 0;
  private last = new Uint32Array(4);
  private handle: import('node:fs/promises').FileHandle | null = null;
  /** Where the hashes start: after the header and the fan-out table, written last. */
  private readonly bodyStart: number;

  constructor(
    private readonly path: string,
    expectedIds: number,
    private readonly keyId: string,
  ) {
    this.fanoutBits = fanoutBitsFor(expectedIds);
    this.counts = new Float64Array((1 << this.fanoutBits) + 1);
    this.bodyStart = HEADER_BYTES + 8 * this.counts.length;
  }

  private async file(): Promise<import('node:fs/promises').FileHandle> {
    this.handle ??= await open(this.path, 'w', 0o600);
    return this.handle;
  }

  /** Appends the first `n` hashes of `sorted` (ascending, each above every hash appended before). */
  async append(sorted: Uint32Array, n: number): Promise<void> {
    if (n === 0) return;
    if (this.count > 0 && compareHashes(this.last, 0, sorted, 0) >= 0) {
      throw new Error('id index hashes must be appended in ascending order');
    }
    const handle = await this.file();
    const shift = 32 - this.fanoutBits;
    const bucket = (w0: number) => (this.fanoutBits === 0 ? 0 : w0 >>> shift);
    for (let i = 0; i < n; i++) (this.counts[bucket(sorted[4 * i] as number) + 1] as number)++;
    const bytes = Buffer.from(sorted.buffer, sorted.byteOffset, n * HASH_BYTES);
    await handle.write(bytes, 0, bytes.length, this.bodyStart + this.count * HASH_BYTES);
    this.last = sorted.slice(4 * (n - 1), 4 * n);
    this.count += n;
  }

  /** Closes the file of an index that will not be finished (idempotent). */
  async abort(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }

  /** Writes the header and the fan-out table before the hashes, and closes the file. */
  async finish(): Promise<{ path: string; ids: number; bytes: number; sha256: string; fanoutBits: number }> {
    const fanout = Buffer.alloc(8 * this.counts.length);
    let sum = 0;
    for (let b = 0; b < this.counts.length; b++) {
      sum += this.counts[b] as number;
      fanout.writeBigUInt64LE(BigInt(sum), 8 * b);
    }
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32LE(VERSION, 8);
    header.writeUInt32LE(this.fanoutBits, 12);
    header.writeBigUInt64LE(BigInt(this.count), 16);
    Buffer.from(this.keyId, 'hex').copy(header, 24);
    const handle = await this.file();
    try {
      await handle.write(Buffer.concat([header, fanout]), 0, this.bodyStart, 0);
    } finally {
      await this.abort();
    }
    // the digest reads the file back in order (just written: from the page cache)
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of createReadStream(this.path, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const expected = this.bodyStart + this.count * HASH_BYTES;
    if (bytes !== expected) throw new Error(`id index ${this.path} has ${bytes} bytes, expected ${expected}`);
    return { path: this.path, ids: this.count, bytes, sha256: hash.digest('hex'), fanoutBits: this.fanoutBits };
  }
}

/** A buffer's bytes as u32 words (copied when not 4-byte aligned). */
function wordsOf(buf: Buffer): Uint32Array {
  const b = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
  return new Uint32Array(b.buffer, b.byteOffset, Math.floor(b.length / 4));
}

export interface RangeReadStats {
  /** Bytes of index read (fan-out entries and hashes). */
  bytes: number;
  requests: number;
}

/**
 * The hashes of index `ref` whose top word is in `[lo, hi)`, ascending, a chunk of at most
 * `READ_CHUNK_BYTES` at a time: only that part of the index (to within a fan-out bucket) is read.
 */
export async function* readIndexRange(
  objects: ObjectStore,
  ref: Pick<IdIndexRef, 'name' | 'ids' | 'fanoutBits'>,
  lo: number,
  hi: number,
  stats: RangeReadStats = { bytes: 0, requests: 0 },
): AsyncGenerator<Uint32Array> {
  if (ref.ids === 0 || hi <= lo) return;
  const k = ref.fanoutBits;
  const width = 2 ** (32 - k);
  const first = Math.floor(lo / width);
  const last = Math.floor((hi - 1) / width);
  const fanLength = 8 * (last - first + 2);
  const fan = await objects.getRange(ref.name, HEADER_BYTES + 8 * first, fanLength);
  stats.bytes += fan.length;
  stats.requests++;
  if (fan.length !== fanLength) throw new Error(`id index ${ref.name} is truncated (fan-out table)`);
  const from = Number(fan.readBigUInt64LE(0));
  const to = Number(fan.readBigUInt64LE(fanLength - 8));
  const body = HEADER_BYTES + 8 * ((1 << k) + 1);
  const perChunk = READ_CHUNK_BYTES / HASH_BYTES;
  for (let at = from; at < to; at += perChunk) {
    const n = Math.min(perChunk, to - at);
    const buf = await objects.getRange(ref.name, body + at * HASH_BYTES, n * HASH_BYTES);
    stats.bytes += buf.length;
    stats.requests++;
    if (buf.length !== n * HASH_BYTES) throw new Error(`id index ${ref.name} is truncated`);
    const words = wordsOf(buf);
    // trim the hashes of the buckets' edges that lie outside the range
    let s = 0;
    let e = n;
    while (s < e && (words[4 * s] as number) < lo) s++;
    while (e > s && (words[4 * (e - 1)] as number) >= hi) e--;
    if (e > s) yield words.subarray(4 * s, 4 * e);
  }
}

/**
 * Marks which of the sorted new hashes `probe` (ascending, unique) appear in the ascending
 * chunks of one index, by merging the two: `hit[i]` is set for hash `i` of `probe`. Returns the
 * number of new hits.
 */
export async function markHits(
  probe: Uint32Array,
  hit: Uint8Array,
  chunks: AsyncIterable<Uint32Array>,
): Promise<number> {
  const n = probe.length / HASH_WORDS;
  let i = 0;
  let found = 0;
  for await (const chunk of chunks) {
    const m = chunk.length / HASH_WORDS;
    let j = 0;
    while (i < n && j < m) {
      const c = compareHashes(probe, i, chunk, j);
      if (c < 0) i++;
      else if (c > 0) j++;
      else {
        if (hit[i] === 0) found++;
        hit[i] = 1;
        i++;
        j++;
      }
    }
    if (i >= n) return found;
  }
  return found;
}
