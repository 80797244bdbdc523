/**
 * Avro binary read without building JavaScript objects: a cursor over the bytes, a growing byte
 * sink, and emitters that write a value as JSON text (nested values of general unions in the final
 * partitions; bytes and fixed become base64 strings there).
 */
const QUOTE = 0x22;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';

/** A growing byte buffer with the writes the transcoder needs (byte loops: short values dominate). */
export class TextSink {
  buf: Buffer;
  pos = 0;
  constructor(size = 1 << 20) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }
  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  byte(b: number): void {
    if (this.pos + 1 > this.buf.length) this.grow(1);
    this.buf[this.pos++] = b;
  }
  ascii(s: string): void {
    const n = s.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }
  bytes(b: Uint8Array): void {
    const n = b.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = b[i] as number;
    this.pos = p;
  }
  integer(n: number): void {
    if (this.pos + 24 > this.buf.length) this.grow(24);
    const buf = this.buf;
    if (n < 0) {
      buf[this.pos++] = 0x2d;
      n = -n;
    }
    if (n < 1e9) {
      this.small(n);
      return;
    }
    // split into a high part and nine low digits, each exact in 32-bit arithmetic
    const hi = Math.floor(n / 1e9);
    let lo = n - hi * 1e9;
    this.small(hi);
    let p = this.pos + 9;
    this.pos = p;
    for (let i = 0; i < 9; i++) {
      const q = (lo / 10) | 0;
      buf[--p] = 0x30 + (lo - q * 10);
      lo = q;
    }
  }
  /** 0 <= n < 1e9. */
  private small(n: number): void {
    const buf = this.buf;
    let digits = 1;
    for (let m = n; m >= 10; m = (m / 10) | 0) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = (n / 10) | 0;
      buf[--p] = 0x30 + (n - q * 10);
      n = q;
    } while (n > 0);
  }
  /** A JSON string from UTF-8 bytes. */
  jsonText(src: Uint8Array, start: number, end: number): void {
    if (this.pos + (end - start) * 6 + 2 > this.buf.length) this.grow((end - start) * 6 + 2);
    const out = this.buf;
    let p = this.pos;
    out[p++] = QUOTE;
    for (let i = start; i < end; i++) {
      const c = src[i] as number;
      if (c === QUOTE || c === BACKSLASH) {
        out[p++] = BACKSLASH;
        out[p++] = c;
      } else if (c < 0x20) {
        out[p++] = BACKSLASH;
        out[p++] = 0x75; // u
        out[p++] = 0x30;
        out[p++] = 0x30;
        out[p++] = HEX.charCodeAt(c >> 4);
        out[p++] = HEX.charCodeAt(c & 15);
      } else out[p++] = c;
    }
    out[p++] = QUOTE;
    this.pos = p;
  }
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** A cursor over Avro binary data. */
export class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  long(): number {
    const buf = this.buf;
    let b = buf[this.pos++] as number;
    let n = b & 0x7f;
    let shift = 128;
    while (b & 0x80) {
      b = buf[this.pos++] as number;
      n += (b & 0x7f) * shift;
      shift *= 128;
    }
    if (this.pos > buf.length) throw new RangeError('truncated Avro data');
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
  /** Skips a length-prefixed string/bytes, returning its [start, end). */
  span(): number {
    const len = this.long();
    const start = this.pos;
    this.pos += len;
    if (len < 0 || this.pos > this.buf.length) throw new RangeError('truncated Avro data');
    return start;
  }
}

export type Emit = (r: Reader, out: TextSink) => void;

export interface AvroTypeLike {
  readonly typeName: string;
  readonly fields?: { name: string; type: AvroTypeLike }[];
  readonly types?: AvroTypeLike[];
  readonly itemsType?: AvroTypeLike;
  readonly valuesType?: AvroTypeLike;
  readonly symbols?: string[];
  readonly size?: number;
  readonly branchName?: string;
}

function base64(out: TextSink, r: Reader, start: number, end: number): void {
  out.byte(QUOTE);
  out.ascii(r.buf.toString('base64', start, end));
  out.byte(QUOTE);
}

/** Index of the null branch of a `[null, T]` or `[T, null]` union, else -1. */
export function nullBranch(t: AvroTypeLike): number {
  if (t.typeName !== 'union:unwrapped' && t.typeName !== 'union:wrapped') return -1;
  const types = t.types ?? [];
  if (types.length !== 2) return -1;
  return types.findIndex((x) => x.typeName === 'null');
}

/** Calls `item` for each item of an Avro array or map (blocks of items, negative counts with sizes). */
export function blockItems(r: Reader, item: (first: boolean) => void): void {
  let first = true;
  for (let n = r.long(); n !== 0; n = r.long()) {
    if (n < 0) {
      n = -n;
      r.long(); // the block's size in bytes
    }
    for (let i = 0; i < n; i++) {
      item(first);
      first = false;
    }
  }
}

/** Emits a value as JSON. */
export function jsonEmitter(t: AvroTypeLike): Emit {
  switch (t.typeName) {
    case 'null':
      return (_r, out) => out.ascii('null');
    case 'boolean':
      return (r, out) => out.ascii(r.buf[r.pos++] === 1 ? 'true' : 'false');
    case 'int':
    case 'long':
      return (r, out) => out.integer(r.long());
    case 'float':
      return (r, out) => {
        const v = r.buf.readFloatLE(r.pos);
        r.pos += 4;
        out.ascii(Number.isFinite(v) ? String(v) : 'null');
      };
    case 'double':
      return (r, out) => {
        const v = r.buf.readDoubleLE(r.pos);
        r.pos += 8;
        out.ascii(Number.isFinite(v) ? String(v) : 'null');
      };
    case 'string':
      return (r, out) => {
        const s = r.span();
        out.jsonText(r.buf, s, r.pos);
      };
    case 'bytes':
      return (r, out) => {
        const s = r.span();
        base64(out, r, s, r.pos);
      };
    case 'fixed': {
      const size = t.size as number;
      return (r, out) => {
        r.pos += size;
        base64(out, r, r.pos - size, r.pos);
      };
    }
    case 'enum': {
      const symbols = (t.symbols ?? []).map((s) => JSON.stringify(s));
      return (r, out) => out.ascii(symbols[r.long()] as string);
    }
    case 'array': {
      const item = jsonEmitter(t.itemsType as AvroTypeLike);
      return (r, out) => {
        out.byte(0x5b);
        blockItems(r, (first) => {
          if (!first) out.byte(COMMA);
          item(r, out);
        });
        out.byte(0x5d);
      };
    }
    case 'map': {
      const value = jsonEmitter(t.valuesType as AvroTypeLike);
      return (r, out) => {
        out.byte(0x7b);
        blockItems(r, (first) => {
          if (!first) out.byte(COMMA);
          const s = r.span();
          out.jsonText(r.buf, s, r.pos);
          out.byte(0x3a);
          value(r, out);
        });
        out.byte(0x7d);
      };
    }
    case 'record': {
      const fields = (t.fields ?? []).map((f) => ({ key: `${JSON.stringify(f.name)}:`, emit: jsonEmitter(f.type) }));
      return (r, out) => {
        out.byte(0x7b);
        for (let i = 0; i < fields.length; i++) {
          const f = fields[i] as (typeof fields)[number];
          if (i > 0) out.byte(COMMA);
          out.ascii(f.key);
          f.emit(r, out);
        }
        out.byte(0x7d);
      };
    }
    default: {
      const types = t.types ?? [];
      const nb = nullBranch(t);
      const branches = types.map((b) => jsonEmitter(b));
      if (nb >= 0 || t.typeName === 'union:unwrapped') {
        return (r, out) => (branches[r.long()] as Emit)(r, out);
      }
      const keys = types.map((b) => `{${JSON.stringify(b.branchName ?? b.typeName)}:`);
      return (r, out) => {
        const i = r.long();
        if (types[i]?.typeName === 'null') {
          out.ascii('null');
          return;
        }
        out.ascii(keys[i] as string);
        (branches[i] as Emit)(r, out);
        out.byte(0x7d);
      };
    }
  }
}
