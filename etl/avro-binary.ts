/**
 * Avro binary encoding primitives (zig-zag varint longs, length-prefixed strings) written into a
 * growing buffer. Used on the consumer's hot path, where building objects for avsc to encode
 * would cost more than the encoding itself.
 */
export class AvroBuffer {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A long (or int): zig-zag, then base-128 varint. Exact for every safe integer. */
  writeLong(n: number): void {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    if (n >= -1073741824 && n < 1073741824) {
      let z = n >= 0 ? n << 1 : (~n << 1) | 1;
      while (z > 0x7f) {
        buf[pos++] = (z & 0x7f) | 0x80;
        z >>>= 7;
      }
      buf[pos++] = z;
    } else {
      let z = n >= 0 ? n * 2 : -n * 2 - 1;
      while (z >= 0x80) {
        buf[pos++] = (z % 0x80) | 0x80;
        z = Math.floor(z / 0x80);
      }
      buf[pos++] = z;
    }
    this.pos = pos;
  }

  writeString(s: string): void {
    const max = s.length * 3;
    this.ensure(max + 10);
    if (s.length < 64) {
      // short strings (ids, names): ASCII fast path, falls back to UTF-8 on the first non-ASCII char
      let ascii = true;
      for (let i = 0; i < s.length; i++) {
        if (s.charCodeAt(i) > 0x7f) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        this.writeLong(s.length);
        const buf = this.buf;
        let pos = this.pos;
        for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
        this.pos = pos;
        return;
      }
    }
    const len = Buffer.byteLength(s);
    this.writeLong(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  writeBytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The bytes written so far (a view: copy before writing more if it must outlive the buffer). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }
}

/** Reads a zig-zag varint long at `pos`; returns [value, next position]. */
export function readLong(buf: Uint8Array, pos: number): [number, number] {
  let n = 0;
  let shift = 1;
  let b: number;
  do {
    if (pos >= buf.length) throw new RangeError('truncated varint');
    b = buf[pos++] as number;
    n += (b & 0x7f) * shift;
    shift *= 128;
  } while (b & 0x80);
  return [n % 2 === 0 ? n / 2 : -(n + 1) / 2, pos];
}
