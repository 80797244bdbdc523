/**
 * The write half of Thrift's compact protocol, as much of it as Parquet's metadata (file footer,
 * page headers) uses: structs, i32/i64, binary/string, booleans and lists.
 * Specification: https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md
 */

/** Compact protocol type ids. */
export const T = {
  TRUE: 1,
  FALSE: 2,
  I32: 5,
  I64: 6,
  BINARY: 8,
  LIST: 9,
  STRUCT: 12,
} as const;

/** A Thrift value: integers are i32 unless wrapped with `i64`, strings are binary. */
export type ThriftValue = number | I64 | string | Uint8Array | boolean | ThriftStruct | ThriftList;

export class I64 {
  constructor(readonly value: number) {}
}
export const i64 = (value: number): I64 => new I64(value);

/** Struct fields by field id; undefined fields are left out. */
export type ThriftStruct = { readonly [id: number]: ThriftValue | undefined };

export class ThriftList {
  constructor(
    readonly elementType: number,
    readonly items: readonly ThriftValue[],
  ) {}
}
export const list = (elementType: number, items: readonly ThriftValue[]): ThriftList =>
  new ThriftList(elementType, items);

export class ThriftWriter {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  /** Encodes one struct and returns its bytes. */
  static struct(s: ThriftStruct): Buffer {
    const w = new ThriftWriter();
    w.writeStruct(s);
    return w.buf.subarray(0, w.pos);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned varint of a non-negative integer up to 2^53. */
  private varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  private zigzag(n: number): void {
    if (!Number.isSafeInteger(n)) throw new RangeError(`not a safe integer: ${n}`);
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  private binary(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  private typeOf(v: ThriftValue): number {
    if (typeof v === 'number') return T.I32;
    if (typeof v === 'boolean') return v ? T.TRUE : T.FALSE;
    if (typeof v === 'string' || v instanceof Uint8Array) return T.BINARY;
    if (v instanceof I64) return T.I64;
    if (v instanceof ThriftList) return T.LIST;
    return T.STRUCT;
  }

  private value(v: ThriftValue): void {
    if (typeof v === 'number' || v instanceof I64) this.zigzag(typeof v === 'number' ? v : v.value);
    else if (typeof v === 'string') this.binary(Buffer.from(v, 'utf8'));
    else if (v instanceof Uint8Array) this.binary(v);
    else if (typeof v === 'boolean')
      this.byte(v ? T.TRUE : T.FALSE); // inside lists only
    else if (v instanceof ThriftList) {
      const n = v.items.length;
      if (n < 15) this.byte((n << 4) | v.elementType);
      else {
        this.byte(0xf0 | v.elementType);
        this.varint(n);
      }
      for (const item of v.items) this.value(item);
    } else this.writeStruct(v);
  }

  private writeStruct(s: ThriftStruct): void {
    let last = 0;
    const ids = Object.keys(s)
      .map(Number)
      .sort((a, b) => a - b);
    for (const id of ids) {
      const v = s[id];
      if (v === undefined) continue;
      const type = this.typeOf(v);
      const delta = id - last;
      if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
      else {
        this.byte(type);
        this.zigzag(id);
      }
      if (typeof v !== 'boolean') this.value(v); // booleans live in the field header
      last = id;
    }
    this.byte(0); // stop
  }
}
