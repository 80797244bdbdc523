/**
 * A Parquet file writer for the dedup step: columns are filled value by value (Dremel shredding
 * is the caller's job: it passes repetition and definition levels), each column is cut into data
 * pages (v1, PLAIN values, RLE levels) compressed with snappy, and row groups are written to the
 * file as they fill, so memory stays bounded by one row group. Each column chunk carries statistics
 * (null count, min and max in the type's sort order) and the footer declares that order
 * (`column_orders`), so readers can skip row groups by them. A string or bytes column chunk whose
 * first page has few distinct values (≤ 1/4) is dictionary-encoded: a PLAIN dictionary page, then
 * RLE_DICTIONARY data pages (indices in the RLE/bit-packing hybrid), back to PLAIN pages for the
 * rest of the chunk once the dictionary passes `DICTIONARY_MAX_BYTES`.
 * Format: https://parquet.apache.org/docs/file-format/ (parquet.thrift for the metadata).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import snappy from 'snappy';
import { i64, list, T, type ThriftStruct, type ThriftValue, ThriftWriter } from './thrift-compact.js';

export const Physical = { BOOLEAN: 0, INT32: 1, INT64: 2, FLOAT: 4, DOUBLE: 5, BYTE_ARRAY: 6 } as const;
export type PhysicalType = (typeof Physical)[keyof typeof Physical];

export const Repetition = { REQUIRED: 0, OPTIONAL: 1, REPEATED: 2 } as const;
export type RepetitionType = (typeof Repetition)[keyof typeof Repetition];

/** Converted types (parquet.thrift `ConvertedType`), for readers that predate logical types. */
export const Converted = { UTF8: 0, MAP: 1, MAP_KEY_VALUE: 2, LIST: 3, TIMESTAMP_MILLIS: 9, JSON: 19 } as const;

/** Logical type annotations (parquet.thrift `LogicalType` union). */
export const Logical = {
  STRING: { 1: {} },
  MAP: { 2: {} },
  LIST: { 3: {} },
  TIMESTAMP_MILLIS_UTC: { 8: { 1: true, 2: { 1: {} } } },
  JSON: { 12: {} },
} satisfies Record<string, ThriftStruct>;

/** A node of the Parquet schema: a group (children) or a leaf column (physical type). */
export interface SchemaNode {
  readonly name: string;
  readonly repetition: RepetitionType;
  readonly physical?: PhysicalType;
  readonly converted?: number;
  readonly logical?: ThriftStruct;
  readonly children?: readonly SchemaNode[];
}

const PAGE_BYTES = 1 << 20;
const CODEC_SNAPPY = 1;
const ENCODING_PLAIN = 0;
const ENCODING_RLE = 3;
const ENCODING_RLE_DICTIONARY = 8;
const PAGE_DATA = 0;
const PAGE_DICTIONARY = 2;
/** A chunk's dictionary stops growing past this (the rest of the chunk is PLAIN). */
export const DICTIONARY_MAX_BYTES = 1 << 20;
/** Whether a chunk's byte-array pages are dictionary-encoded: not decided yet, yes, no. */
const DICT_UNDECIDED = 0;
const DICT_ON = 1;
const DICT_OFF = 2;
const MAGIC = Buffer.from('PAR1');
/** Longest byte-array min/max kept in statistics; longer ones are truncated (and marked inexact). */
export const STATS_MAX_BYTES = 64;

/** Levels of a column, one byte each, RLE-encoded when a page is cut. */
class Levels {
  data = new Uint8Array(4096);
  n = 0;
  push(level: number): void {
    if (this.n === this.data.length) {
      const next = new Uint8Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = level;
  }
  /** `<4-byte length><RLE runs>` (the RLE/bit-packing hybrid, runs only), as data page v1 wants. */
  encode(maxLevel: number): Buffer {
    if (maxLevel > 255) throw new RangeError(`nesting too deep for a Parquet column (${maxLevel} levels)`);
    // bit width ≤ 8: every run's value takes one byte
    const out = Buffer.allocUnsafe(4 + this.n * 6);
    let p = 4;
    const d = this.data;
    for (let i = 0; i < this.n; ) {
      const v = d[i] as number;
      let j = i + 1;
      while (j < this.n && d[j] === v) j++;
      let header = (j - i) * 2;
      while (header >= 0x80) {
        out[p++] = (header & 0x7f) | 0x80;
        header = Math.floor(header / 0x80);
      }
      out[p++] = header;
      out[p++] = v;
      i = j;
    }
    out.writeUInt32LE(p - 4, 0);
    this.n = 0;
    return out.subarray(0, p);
  }
}

/** The distinct byte arrays of a column chunk, PLAIN-encoded in order, found by hash. */
class Dictionary {
  plain: Buffer = Buffer.allocUnsafe(64 * 1024);
  private plainView = new DataView(this.plain.buffer, this.plain.byteOffset, this.plain.length);
  /** PLAIN bytes (also: byte size of the dictionary page's values). */
  bytes = 0;
  count = 0;
  /** Per entry: the start of its bytes in `plain` (after its length), then its length. */
  spans = new Int32Array(2048);
  /**
   * Open addressing, at most half full: per slot, an entry's hash and its index + 1 (0 for a free
   * slot), side by side, so that a probe reads one place until the hash matches.
   */
  private table = new Int32Array(2 * 2048);

  reset(): void {
    this.bytes = 0;
    this.count = 0;
    this.table.fill(0);
  }

  /** The start of entry `e`'s bytes in `plain`. */
  start(e: number): number {
    return this.spans[2 * e] as number;
  }

  /**
   * The index of bytes `[start, start+n)` of `view`, added if new. Words are read through the
   * DataView: several times faster than putting bytes together.
   */
  add(view: DataView, start: number, n: number): number {
    // a multiplicative hash, four bytes a step (entries are compared whole: it only spreads them)
    let h = n;
    const body = start + (n & ~3);
    let i = start;
    for (; i < body; i += 4) h = Math.imul(h ^ view.getInt32(i, true), 0x9e3779b1) ^ (h >>> 15);
    for (; i < start + n; i++) h = Math.imul(h ^ view.getUint8(i), 0x01000193);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h ^= h >>> 13;
    const table = this.table;
    const mask = (table.length >> 1) - 1;
    const plain = this.plainView;
    const spans = this.spans;
    let slot = h & mask;
    for (let e = table[2 * slot + 1] as number; e !== 0; e = table[2 * slot + 1] as number) {
      if (table[2 * slot] === h && spans[2 * e - 1] === n) {
        const at = (spans[2 * e - 2] as number) - start;
        let k = start;
        while (k < body && plain.getInt32(at + k, true) === view.getInt32(k, true)) k += 4;
        if (k === body) while (k < start + n && plain.getUint8(at + k) === view.getUint8(k)) k++;
        if (k === start + n) return e - 1;
      }
      slot = (slot + 1) & mask;
    }
    return this.insert(slot, h, view, start, n);
  }

  private insert(slot: number, h: number, view: DataView, start: number, n: number): number {
    const plain = this.plain;
    if (this.bytes + 4 + n > plain.length) {
      const next = Buffer.allocUnsafe(Math.max(plain.length * 2, this.bytes + 4 + n));
      plain.copy(next, 0, 0, this.bytes);
      this.plain = next;
      this.plainView = new DataView(next.buffer, next.byteOffset, next.length);
    }
    const b = this.plain;
    b.writeUInt32LE(n, this.bytes);
    b.set(new Uint8Array(view.buffer, view.byteOffset + start, n), this.bytes + 4);
    const index = this.count++;
    if (2 * index === this.spans.length) {
      const next = new Int32Array(this.spans.length * 2);
      next.set(this.spans);
      this.spans = next;
    }
    this.spans[2 * index] = this.bytes + 4;
    this.spans[2 * index + 1] = n;
    this.bytes += 4 + n;
    this.table[2 * slot] = h;
    this.table[2 * slot + 1] = index + 1;
    if (this.count * 4 > this.table.length) this.grow();
    return index;
  }

  private grow(): void {
    const old = this.table;
    const table = new Int32Array(old.length * 2);
    const mask = (table.length >> 1) - 1;
    for (let o = 0; o < old.length; o += 2) {
      if (old[o + 1] === 0) continue;
      let slot = (old[o] as number) & mask;
      while (table[2 * slot + 1] !== 0) slot = (slot + 1) & mask;
      table[2 * slot] = old[o] as number;
      table[2 * slot + 1] = old[o + 1] as number;
    }
    this.table = table;
  }
}

/** Typed arrays read in the platform's byte order; Parquet's is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const POW2 = Array.from({ length: 41 }, (_, i) => 2 ** i);

/**
 * Dictionary indices as a data page's values: the bit width (one byte), then the RLE/bit-packing
 * hybrid: runs of 8 or more equal indices as RLE runs, the rest bit-packed in groups of 8 (the
 * last group padded with zeros; the page's value count says where the values end).
 */
function encodeIndices(v: Int32Array, n: number, width: number): Buffer {
  const vb = (width + 7) >> 3;
  const out = Buffer.allocUnsafe(16 + n * 5);
  out[0] = width;
  let p = 1;
  const varint = (x: number) => {
    while (x >= 0x80) {
      out[p++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    out[p++] = x;
  };
  /** Whether 8 equal indices start at `i`. */
  const runAt = (i: number) => {
    if (i + 8 > n) return false;
    const x = v[i];
    for (let k = i + 1; k < i + 8; k++) if (v[k] !== x) return false;
    return true;
  };
  let i = 0;
  while (i < n) {
    if (runAt(i)) {
      const x = v[i] as number;
      let j = i + 8;
      while (j < n && v[j] === x) j++;
      varint((j - i) * 2);
      for (let k = 0; k < vb; k++) out[p++] = (x >>> (8 * k)) & 0xff;
      i = j;
      continue;
    }
    const start = i;
    let groups = 0;
    do {
      groups++;
      i += 8;
    } while (i < n && groups < 63 && !runAt(i));
    varint((groups << 1) | 1);
    let acc = 0;
    let bits = 0;
    if (width <= 24) {
      // pending bits (< 8) and one index fit in 31 bits: integer operations
      for (let q = start; q < start + groups * 8; q++) {
        acc |= (q < n ? (v[q] as number) : 0) << bits;
        bits += width;
        while (bits >= 8) {
          out[p++] = acc & 0xff;
          acc >>>= 8;
          bits -= 8;
        }
      }
      continue;
    }
    for (let q = start; q < start + groups * 8; q++) {
      acc += (q < n ? (v[q] as number) : 0) * (POW2[bits] as number);
      bits += width;
      while (bits >= 8) {
        out[p++] = acc % 256;
        acc = Math.floor(acc / 256);
        bits -= 8;
      }
    }
  }
  return out.subarray(0, p);
}

/**
 * One leaf column: the values of the page being filled (PLAIN encoded; booleans one byte each
 * until the page is cut), its levels, and the compressed pages of the current row group.
 */
export class ParquetColumn {
  values: Buffer = Buffer.allocUnsafe(64 * 1024);
  pos = 0;
  /** Value slots in the current page, nulls included. */
  slots = 0;
  readonly reps = new Levels();
  readonly defs = new Levels();
  private pages: Buffer[] = [];
  private chunkSlots = 0;
  private chunkRaw = 0;
  private chunkStored = 0;
  /** Statistics of the current row group: nulls, and min/max (numbers, or bytes for BYTE_ARRAY). */
  private chunkNulls = 0;
  private minNum = Number.NaN;
  private maxNum = Number.NaN;
  private minBytes: Buffer | null = null;
  private maxBytes: Buffer | null = null;
  private hasNaN = false;
  /** Dictionary encoding of the current chunk (byte-array columns only). */
  private dictState = DICT_UNDECIDED;
  private dict: Dictionary | null = null;
  private indices = new Int32Array(0);
  /**
   * Values of the open page given as dictionary indices as they arrived (the chunk's dictionary
   * was decided on by its first page), and the PLAIN bytes they stand for (the page's size).
   */
  private arrived = 0;
  private arrivedBytes = 0;
  /** The dictionary's size when the first of them arrived. */
  private arrivalEntries = 0;
  /** A DataView over the bytes values last came from (a column reads one buffer at a time). */
  private src: Uint8Array | null = null;
  private srcView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  private dictPages = 0;
  private plainPages = 0;

  constructor(
    readonly path: readonly string[],
    readonly physical: PhysicalType,
    readonly maxDef: number,
    readonly maxRep: number,
  ) {}

  ensure(n: number): void {
    if (this.pos + n <= this.values.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.values.length * 2, this.pos + n));
    this.values.copy(next, 0, 0, this.pos);
    this.values = next;
  }

  /** Records a value slot's levels (for columns that have them). */
  level(rep: number, def: number): void {
    if (this.maxRep > 0) this.reps.push(rep);
    if (this.maxDef > 0) this.defs.push(def);
    this.slots++;
  }

  int32(v: number): void {
    this.ensure(4);
    this.values.writeInt32LE(v, this.pos);
    this.pos += 4;
  }

  /** An integer up to ±2^53 as a little-endian int64. */
  int64(v: number): void {
    this.ensure(8);
    const b = this.values;
    const lo = v >>> 0;
    const hi = Math.floor(v / 4294967296) | 0;
    const p = this.pos;
    b[p] = lo;
    b[p + 1] = lo >>> 8;
    b[p + 2] = lo >>> 16;
    b[p + 3] = lo >>> 24;
    b[p + 4] = hi;
    b[p + 5] = hi >>> 8;
    b[p + 6] = hi >>> 16;
    b[p + 7] = hi >>> 24;
    this.pos = p + 8;
  }

  /** Bytes copied as they are (float, double: Avro and Parquet are both little-endian IEEE). */
  raw(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.ensure(n);
    const b = this.values;
    let p = this.pos;
    for (let i = start; i < end; i++) b[p++] = src[i] as number;
    this.pos = p;
  }

  /**
   * A BYTE_ARRAY value: 4-byte length, then the bytes; or, once the chunk's dictionary is on, its
   * index in the dictionary (the bytes are not copied).
   */
  byteArray(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.dictState === DICT_ON) {
      if (src !== this.src) {
        this.src = src;
        this.srcView = new DataView(src.buffer, src.byteOffset, src.byteLength);
      }
      if (this.arrived === 0) this.arrivalEntries = (this.dict as Dictionary).count;
      if (this.arrived === this.indices.length) {
        const next = new Int32Array(Math.max(1024, this.arrived * 2));
        next.set(this.indices);
        this.indices = next;
      }
      this.indices[this.arrived++] = (this.dict as Dictionary).add(this.srcView, start, n);
      this.arrivedBytes += n + 4;
      return;
    }
    this.ensure(n + 4);
    const b = this.values;
    let p = this.pos;
    b[p++] = n;
    b[p++] = n >>> 8;
    b[p++] = n >>> 16;
    b[p++] = n >>> 24;
    if (n > 64) {
      b.set(src.subarray(start, end), p);
      p += n;
    } else for (let i = start; i < end; i++) b[p++] = src[i] as number;
    this.pos = p;
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.values[this.pos++] = v ? 1 : 0;
  }

  /** Bytes buffered in the open page. */
  get pageBytes(): number {
    return this.pos + this.arrivedBytes + this.slots;
  }

  /**
   * Adds the open page's nulls, min and max to the row group's statistics. A dictionary-encoded
   * page's values are all in the dictionary: only its entries from `newEntries` on (those the page
   * added) are looked at.
   */
  private pageStats(newEntries: number): void {
    if (this.maxDef > 0) {
      const d = this.defs.data;
      const max = this.maxDef;
      let nulls = 0;
      for (let i = 0; i < this.defs.n; i++) if ((d[i] as number) < max) nulls++;
      this.chunkNulls += nulls;
    }
    const b = this.values;
    const end = this.pos;
    // a page of dictionary indices given as values arrived has no bytes here: its new entries do
    if (end === 0 && newEntries < 0) return;
    let lo = this.minNum;
    let hi = this.maxNum;
    switch (this.physical) {
      case Physical.BYTE_ARRAY: {
        // unsigned bytewise order; the page's min and max are found in place, then copied
        let minAt = -1;
        let minLen = 0;
        let maxAt = -1;
        let maxLen = 0;
        const d = this.dict;
        if (newEntries >= 0 && d !== null) {
          const plain = d.plain;
          for (let e = newEntries; e < d.count; e++) {
            const p = d.start(e);
            const n = plain.readUInt32LE(p - 4);
            if (minAt < 0) {
              minAt = maxAt = p;
              minLen = maxLen = n;
            } else if (compareBytes(plain, p, n, plain, minAt, minLen) < 0) {
              minAt = p;
              minLen = n;
            } else if (compareBytes(plain, p, n, plain, maxAt, maxLen) > 0) {
              maxAt = p;
              maxLen = n;
            }
          }
          if (minAt >= 0) this.byteBounds(plain, minAt, minLen, maxAt, maxLen);
          return;
        }
        // first 4 bytes (zero-padded) as a number: a value whose prefix lies strictly between the
        // min's and the max's is neither
        let minPre = 0;
        let maxPre = 0;
        for (let p = 0; p < end; ) {
          const n =
            (b[p] as number) |
            ((b[p + 1] as number) << 8) |
            ((b[p + 2] as number) << 16) |
            ((b[p + 3] as number) << 24);
          p += 4;
          const pre = prefix32(b, p, n);
          if (minAt >= 0 && pre > minPre && pre < maxPre) {
            p += n;
            continue;
          }
          if (minAt < 0) {
            minAt = maxAt = p;
            minLen = maxLen = n;
            minPre = maxPre = pre;
          } else if (compareBytes(b, p, n, b, minAt, minLen) < 0) {
            minAt = p;
            minLen = n;
            minPre = pre;
          } else if (compareBytes(b, p, n, b, maxAt, maxLen) > 0) {
            maxAt = p;
            maxLen = n;
            maxPre = pre;
          }
          p += n;
        }
        this.byteBounds(b, minAt, minLen, maxAt, maxLen);
        return;
      }
      case Physical.INT32:
      case Physical.INT64: {
        // typed views read faster than Buffer methods (`values` is never a pool slice: aligned)
        const aligned = LITTLE_ENDIAN && b.byteOffset % 8 === 0;
        const w = aligned ? new Int32Array(b.buffer, b.byteOffset, end >> 2) : null;
        if (this.physical === Physical.INT32)
          for (let k = 0; k < end >> 2; k++) {
            const v = w ? (w[k] as number) : b.readInt32LE(k * 4);
            if (!(v >= lo)) lo = v;
            if (!(v <= hi)) hi = v;
          }
        // the writer's longs are within ±2^53: exact as doubles
        else
          for (let k = 0; k < end >> 2; k += 2) {
            const v = w
              ? ((w[k] as number) >>> 0) + (w[k + 1] as number) * 4294967296
              : b.readUInt32LE(k * 4) + b.readInt32LE(k * 4 + 4) * 4294967296;
            if (!(v >= lo)) lo = v;
            if (!(v <= hi)) hi = v;
          }
        break;
      }
      case Physical.FLOAT:
      case Physical.DOUBLE: {
        // NaN has no place in the spec's order, and DuckDB sorts it above every number: a chunk
        // with a NaN gets no min/max at all (lo/hi start as NaN, so `!(v >= lo)` takes the first)
        const size = this.physical === Physical.FLOAT ? 4 : 8;
        const aligned = LITTLE_ENDIAN && b.byteOffset % 8 === 0;
        const f = !aligned
          ? null
          : size === 4
            ? new Float32Array(b.buffer, b.byteOffset, end >> 2)
            : new Float64Array(b.buffer, b.byteOffset, end >> 3);
        for (let k = 0; k < end / size; k++) {
          const v = f ? (f[k] as number) : size === 4 ? b.readFloatLE(k * 4) : b.readDoubleLE(k * 8);
          if (Number.isNaN(v)) {
            this.hasNaN = true;
            continue;
          }
          if (!(v >= lo)) lo = v;
          if (!(v <= hi)) hi = v;
        }
        break;
      }
      case Physical.BOOLEAN:
        for (let p = 0; p < end; p++) {
          const v = b[p] as number;
          if (!(v >= lo)) lo = v;
          if (!(v <= hi)) hi = v;
        }
        break;
    }
    this.minNum = lo;
    this.maxNum = hi;
  }

  /** Widens the chunk's byte-array min and max to a page's. */
  private byteBounds(b: Buffer, minAt: number, minLen: number, maxAt: number, maxLen: number): void {
    const cm = this.minBytes;
    if (cm === null || compareBytes(b, minAt, minLen, cm, 0, cm.length) < 0)
      this.minBytes = Buffer.from(b.subarray(minAt, minAt + minLen));
    const cx = this.maxBytes;
    if (cx === null || compareBytes(b, maxAt, maxLen, cx, 0, cx.length) > 0)
      this.maxBytes = Buffer.from(b.subarray(maxAt, maxAt + maxLen));
  }

  /** The row group's `Statistics` struct (parquet.thrift), and resets them. */
  private takeStats(): ThriftStruct {
    const stats: { [id: number]: ThriftValue } = { 3: i64(this.chunkNulls) };
    if (this.physical === Physical.BYTE_ARRAY) {
      const min = this.minBytes;
      const max = this.maxBytes;
      if (min !== null && max !== null) {
        const upper = upperBound(max);
        if (upper !== null) {
          const lower = min.length > STATS_MAX_BYTES ? min.subarray(0, charBoundary(min, STATS_MAX_BYTES)) : min;
          stats[5] = upper;
          stats[6] = lower;
          stats[7] = upper === max;
          stats[8] = lower === min;
        }
      }
    } else if (!Number.isNaN(this.minNum) && !this.hasNaN) {
      let min = this.minNum;
      let max = this.maxNum;
      // a zero may be either sign: -0 as min and +0 as max cover both (parquet.thrift ColumnOrder)
      if (min === 0) min = -0;
      if (max === 0) max = 0;
      stats[5] = this.plain(max);
      stats[6] = this.plain(min);
      stats[7] = true;
      stats[8] = true;
    }
    this.chunkNulls = 0;
    this.minNum = Number.NaN;
    this.maxNum = Number.NaN;
    this.minBytes = null;
    this.maxBytes = null;
    this.hasNaN = false;
    return stats;
  }

  /** A number PLAIN-encoded in the column's physical type. */
  private plain(v: number): Buffer {
    switch (this.physical) {
      case Physical.BOOLEAN:
        return Buffer.from([v]);
      case Physical.INT32: {
        const out = Buffer.allocUnsafe(4);
        out.writeInt32LE(v, 0);
        return out;
      }
      case Physical.INT64: {
        const out = Buffer.allocUnsafe(8);
        out.writeBigInt64LE(BigInt(v), 0);
        return out;
      }
      case Physical.FLOAT: {
        const out = Buffer.allocUnsafe(4);
        out.writeFloatLE(v, 0);
        return out;
      }
      default: {
        const out = Buffer.allocUnsafe(8);
        out.writeDoubleLE(v, 0);
        return out;
      }
    }
  }

  /**
   * The open page's values as dictionary indices (adding new values to the chunk's dictionary), or
   * null when the chunk is not dictionary-encoded (decided on its first page with values).
   */
  private dictionaryValues(): Buffer | null {
    if (this.physical !== Physical.BYTE_ARRAY || this.dictState === DICT_OFF) return null;
    const b = this.values;
    const end = this.pos;
    if (end === 0 && this.dictState === DICT_UNDECIDED) return null;
    this.dict ??= new Dictionary();
    const d = this.dict;
    let n = this.arrived;
    if (this.dictState !== DICT_ON) {
      // the chunk's first page: its values were copied; looked up now, to decide
      if (this.indices.length < this.slots)
        this.indices = new Int32Array(Math.max(this.slots, this.indices.length * 2));
      const view = new DataView(b.buffer, b.byteOffset, end);
      for (let p = 0; p < end; ) {
        const len = view.getUint32(p, true);
        this.indices[n++] = d.add(view, p + 4, len);
        p += 4 + len;
      }
    }
    const idx = this.indices;
    if (this.dictState === DICT_UNDECIDED) {
      if (d.count * 4 > n || d.bytes > DICTIONARY_MAX_BYTES) {
        d.reset();
        this.dictState = DICT_OFF;
        return null;
      }
      this.dictState = DICT_ON;
    } else if (d.bytes > DICTIONARY_MAX_BYTES) this.dictState = DICT_OFF; // this page still uses it
    return encodeIndices(idx, n, d.count <= 1 ? 1 : 32 - Math.clz32(d.count - 1));
  }

  /** Cuts the open page: levels and values, compressed, behind a page header. */
  cutPage(): void {
    if (this.slots === 0) return;
    // the dictionary's size before this page's values (added as they arrived, or just below)
    const entries =
      this.arrived > 0 ? this.arrivalEntries : this.dictState === DICT_ON && this.dict !== null ? this.dict.count : 0;
    const indices = this.dictionaryValues();
    this.pageStats(indices !== null ? entries : -1);
    const parts: Buffer[] = [];
    if (this.maxRep > 0) parts.push(this.reps.encode(this.maxRep));
    if (this.maxDef > 0) parts.push(this.defs.encode(this.maxDef));
    if (indices !== null) parts.push(indices);
    else if (this.physical === Physical.BOOLEAN) {
      const bits = Buffer.alloc(Math.ceil(this.pos / 8));
      for (let i = 0; i < this.pos; i++) if (this.values[i]) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
      parts.push(bits);
    } else parts.push(this.values.subarray(0, this.pos));
    // most columns have neither levels nor bits: their values are the page as they are
    const body = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    const stored = snappy.compressSync(body);
    const header = ThriftWriter.struct({
      1: PAGE_DATA,
      2: body.length,
      3: stored.length,
      5: {
        1: this.slots,
        2: indices !== null ? ENCODING_RLE_DICTIONARY : ENCODING_PLAIN,
        3: ENCODING_RLE,
        4: ENCODING_RLE,
      },
    });
    if (indices !== null) this.dictPages++;
    else this.plainPages++;
    this.pages.push(header, stored);
    this.chunkSlots += this.slots;
    this.chunkRaw += header.length + body.length;
    this.chunkStored += header.length + stored.length;
    this.pos = 0;
    this.slots = 0;
    this.arrived = 0;
    this.arrivedBytes = 0;
  }

  /**
   * The chunk's dictionary page (or null), its encodings and `encoding_stats`; resets the
   * dictionary for the next chunk.
   */
  private takeDictionary(): { page: Buffer[] | null; raw: number; encodings: number[]; stats: ThriftStruct[] } {
    const stats: ThriftStruct[] = [];
    const encodings = [ENCODING_PLAIN, ENCODING_RLE];
    let page: Buffer[] | null = null;
    let raw = 0;
    const d = this.dict;
    if (this.dictPages > 0 && d !== null) {
      const body = d.plain.subarray(0, d.bytes);
      const stored = snappy.compressSync(body);
      const header = ThriftWriter.struct({
        1: PAGE_DICTIONARY,
        2: body.length,
        3: stored.length,
        7: { 1: d.count, 2: ENCODING_PLAIN },
      });
      page = [header, stored];
      raw = header.length + body.length;
      encodings.push(ENCODING_RLE_DICTIONARY);
      stats.push({ 1: PAGE_DICTIONARY, 2: ENCODING_PLAIN, 3: 1 });
      stats.push({ 1: PAGE_DATA, 2: ENCODING_RLE_DICTIONARY, 3: this.dictPages });
    }
    if (this.plainPages > 0) stats.push({ 1: PAGE_DATA, 2: ENCODING_PLAIN, 3: this.plainPages });
    d?.reset();
    this.dictState = DICT_UNDECIDED;
    this.dictPages = 0;
    this.plainPages = 0;
    return { page, raw, encodings, stats };
  }

  /** Uncompressed bytes of this column in the current row group (cut pages + open page). */
  get chunkBytes(): number {
    return this.chunkRaw + this.pageBytes;
  }

  /** Takes the row group's pages and their metadata, leaving the column empty. */
  takeChunk(): {
    pages: Buffer[];
    /** Bytes of the dictionary page at the start of `pages` (0: none). */
    dictionaryBytes: number;
    slots: number;
    raw: number;
    stored: number;
    statistics: ThriftStruct;
    encodings: number[];
    encodingStats: ThriftStruct[];
  } {
    this.cutPage();
    const dict = this.takeDictionary();
    const dictStored = dict.page ? (dict.page[0] as Buffer).length + (dict.page[1] as Buffer).length : 0;
    const out = {
      pages: dict.page ? [...dict.page, ...this.pages] : this.pages,
      dictionaryBytes: dictStored,
      slots: this.chunkSlots,
      raw: this.chunkRaw + dict.raw,
      stored: this.chunkStored + dictStored,
      statistics: this.takeStats(),
      encodings: dict.encodings,
      encodingStats: dict.stats,
    };
    this.pages = [];
    this.chunkSlots = 0;
    this.chunkRaw = 0;
    this.chunkStored = 0;
    return out;
  }
}

/** Unsigned bytewise comparison of `a[as, as+an)` and `b[bs, bs+bn)`. */
function compareBytes(a: Uint8Array, as: number, an: number, b: Uint8Array, bs: number, bn: number): number {
  const n = an < bn ? an : bn;
  for (let i = 0; i < n; i++) {
    const d = (a[as + i] as number) - (b[bs + i] as number);
    if (d !== 0) return d;
  }
  return an - bn;
}

/** The first 4 bytes of `b[at, at+n)` as a big-endian unsigned number, zero-padded. */
function prefix32(b: Uint8Array, at: number, n: number): number {
  if (n >= 4)
    return (
      (b[at] as number) * 0x1000000 +
      (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number))
    );
  let v = 0;
  for (let i = 0; i < 4; i++) v = v * 256 + (i < n ? (b[at + i] as number) : 0);
  return v;
}

/** The largest length ≤ `n` that does not cut a UTF-8 sequence of `b` in two. */
function charBoundary(b: Buffer, n: number): number {
  while (n > 0 && ((b[n] as number) & 0xc0) === 0x80) n--;
  return n;
}

/**
 * `max` itself when short enough, else a value ≥ every byte array that starts like it and at most
 * `STATS_MAX_BYTES` long: its prefix up to the last ASCII byte below 0x7f, that byte incremented
 * (still valid UTF-8); null when there is no such byte (no max can be given).
 */
function upperBound(max: Buffer): Buffer | null {
  if (max.length <= STATS_MAX_BYTES) return max;
  for (let i = charBoundary(max, STATS_MAX_BYTES) - 1; i >= 0; i--) {
    const c = max[i] as number;
    if (c < 0x7f) {
      const out = Buffer.from(max.subarray(0, i + 1));
      out[i] = c + 1;
      return out;
    }
  }
  return null;
}

function flatten(node: SchemaNode, out: ThriftStruct[]): void {
  out.push({
    1: node.physical,
    3: node.repetition,
    4: node.name,
    5: node.children?.length,
    6: node.converted,
    10: node.logical,
  });
  for (const child of node.children ?? []) flatten(child, out);
}

/** Writes the columns' rows into one Parquet file, a row group at a time. */
export class ParquetFile {
  private offset = 0;
  private rowGroupRows = 0;
  private readonly rowGroups: ThriftStruct[] = [];
  rows = 0;
  /** SHA-256 of the file's bytes, taken as they are written (the file is written in order). */
  private readonly hash = createHash('sha256');

  private constructor(
    private readonly fh: FileHandle,
    private readonly schema: SchemaNode,
    private readonly columns: readonly ParquetColumn[],
    private readonly pageBytes: number,
  ) {}

  /** Creates the file (it must not exist); `columns` must be empty (a fresh or flushed set). */
  static async create(
    path: string,
    schema: SchemaNode,
    columns: readonly ParquetColumn[],
    options: { pageBytes?: number } = {},
  ): Promise<ParquetFile> {
    const fh = await open(path, 'wx', 0o600);
    const f = new ParquetFile(fh, schema, columns, options.pageBytes ?? PAGE_BYTES);
    await f.write([MAGIC]);
    return f;
  }

  private async write(buffers: Buffer[]): Promise<void> {
    for (const data of buffers) {
      this.hash.update(data);
      for (let done = 0; done < data.length; ) {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, this.offset + done);
        done += bytesWritten;
      }
      this.offset += data.length;
    }
  }

  /** Counts a finished row; cuts pages that are full (a row never straddles two pages). */
  endRow(): void {
    this.rows++;
    this.rowGroupRows++;
    if ((this.rowGroupRows & 63) !== 0) return;
    for (const c of this.columns) if (c.pageBytes >= this.pageBytes) c.cutPage();
  }

  /** Writes the open row group out. */
  async flushRowGroup(): Promise<void> {
    if (this.rowGroupRows === 0) return;
    const chunks: ThriftStruct[] = [];
    let total = 0;
    for (const c of this.columns) {
      const chunk = c.takeChunk();
      const start = this.offset;
      await this.write(chunk.pages);
      total += chunk.raw;
      chunks.push({
        2: i64(start),
        3: {
          1: c.physical,
          2: list(T.I32, chunk.encodings),
          3: list(T.BINARY, [...c.path]),
          4: CODEC_SNAPPY,
          5: i64(chunk.slots),
          6: i64(chunk.raw),
          7: i64(chunk.stored),
          9: i64(start + chunk.dictionaryBytes),
          11: chunk.dictionaryBytes > 0 ? i64(start) : undefined,
          12: chunk.statistics,
          13: list(T.STRUCT, chunk.encodingStats),
        },
      });
    }
    this.rowGroups.push({ 1: list(T.STRUCT, chunks), 2: i64(total), 3: i64(this.rowGroupRows) });
    this.rowGroupRows = 0;
  }

  /** Writes the footer, syncs and closes the file; returns its SHA-256 (hex). */
  async close(): Promise<string> {
    try {
      await this.flushRowGroup();
      const schema: ThriftStruct[] = [];
      flatten(this.schema, schema);
      const footer = ThriftWriter.struct({
        1: 1,
        2: list(T.STRUCT, schema),
        3: i64(this.rows),
        4: list(T.STRUCT, this.rowGroups),
        6: 'hourglass',
        // TypeDefinedOrder for every leaf: signed ints, unsigned bytes, IEEE floats, false < true
        7: list(
          T.STRUCT,
          this.columns.map(() => ({ 1: {} })),
        ),
      });
      const length = Buffer.allocUnsafe(4);
      length.writeUInt32LE(footer.length, 0);
      await this.write([footer, length, MAGIC]);
      await this.fh.sync();
      return this.hash.digest('hex');
    } finally {
      await this.fh.close();
    }
  }

  /** Closes the file without a footer (the caller deletes it). */
  async abandon(): Promise<void> {
    await this.fh.close();
  }
}
