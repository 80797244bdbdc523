/**
 * Encodes the payloads of one request into one shared buffer (views per event) instead of one
 * allocation per event. A new encoder per request: the views stay valid for as long as the bus
 * holds them.
 */
import type avro from 'avsc';

export class BatchEncoder {
  private buf: Buffer;
  private pos = 0;

  constructor(sizeHint: number) {
    this.buf = Buffer.allocUnsafe(Math.max(4096, sizeHint));
  }

  encode(type: avro.Type, value: unknown): Buffer {
    let end = type.encode(value, this.buf, this.pos);
    while (end < 0) {
      // `end` is minus the bytes missing; start a larger buffer (earlier views keep theirs)
      this.buf = Buffer.allocUnsafe(
        Math.max(this.buf.length * 2, -end + (end < 0 ? this.buf.length - this.pos : 0) + 4096),
      );
      this.pos = 0;
      end = type.encode(value, this.buf, 0);
    }
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }
}
