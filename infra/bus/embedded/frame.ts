/**
 * On-disk frame format of the embedded bus. One `publish` call is one frame:
 *
 * ```
 * header (24 bytes, little endian)
 *   u32 magic 0x31474c48 ("HGL1")   u32 bodyLength   u32 crc32(body)   u32 messageCount
 *   f64 publishTime (epoch ms)
 * body
 *   shared attributes: u16 count, then per attribute: u16 keyLength, key, u16 valueLength, value
 *   own keys: u16 count, then per key: u16 keyLength, key       (0xFFFF: keys per message)
 *   messageCount × message:
 *     with own keys: per own key u16 valueLength, value; then u32 dataLength, data
 *     keys per message: u16 count, pairs as above; then u32 dataLength, data
 * ```
 * Attributes with the same value in every message of the frame (for events: type, version,
 * arrival time, instance) are stored once as shared attributes. When every message has the same
 * other keys (for events: id, sequence), those keys are stored once and each message carries
 * only their values. A message's attributes are the shared ones plus its own. Strings are UTF-8,
 * at most 65,535 bytes each.
 * A frame is valid only when its body is complete and its CRC matches; readers never deliver a
 * torn frame.
 */
import { crc32 } from 'node:zlib';
import type { OutgoingMessage } from '../../../core/ports/bus.js';

export const FRAME_MAGIC = 0x31474c48;
const KEYS_PER_MESSAGE = 0xffff;
export const FRAME_HEADER_BYTES = 24;
const MAX_STRING_BYTES = 0xffff;

/** Keys whose value is the same in every message. */
function sharedKeys(messages: readonly OutgoingMessage[]): string[] {
  const first = messages[0]?.attributes;
  if (first === undefined || messages.length < 2) return [];
  const keys: string[] = [];
  for (const key in first) {
    const value = first[key];
    let same = true;
    for (let i = 1; i < messages.length; i++) {
      if ((messages[i] as OutgoingMessage).attributes[key] !== value) {
        same = false;
        break;
      }
    }
    if (same) keys.push(key);
  }
  return keys;
}

/** A growable output buffer; strings are written as u16 length + UTF-8 bytes. */
class FrameWriter {
  buf: Buffer;
  pos: number;
  constructor(size: number, start: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = start;
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }
  string(s: string): void {
    this.ensure(2 + 3 * s.length); // UTF-8 needs at most 3 bytes per UTF-16 code unit
    const buf = this.buf;
    const at = this.pos + 2;
    if (s.length <= 64) {
      // short ASCII strings (ids, numbers, names) are copied directly: cheaper than a call to write
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === s.length) {
        buf.writeUInt16LE(i, this.pos);
        this.pos = at + i;
        return;
      }
    }
    const n = buf.write(s, at, 'utf8');
    if (n > MAX_STRING_BYTES) throw new RangeError(`attribute string longer than ${MAX_STRING_BYTES} bytes`);
    buf.writeUInt16LE(n, this.pos);
    this.pos = at + n;
  }
  bytes(data: Buffer): void {
    this.ensure(4 + data.length);
    this.buf.writeUInt32LE(data.length, this.pos);
    data.copy(this.buf, this.pos + 4);
    this.pos += 4 + data.length;
  }
}

/** The keys besides the shared ones, when every message has exactly these; otherwise null. */
function uniformOwnKeys(
  messages: readonly OutgoingMessage[],
  isShared: Record<string, true>,
  sharedCount: number,
): string[] | null {
  const first = messages[0]?.attributes;
  if (first === undefined) return [];
  const own: string[] = [];
  for (const k in first) if (isShared[k] !== true) own.push(k);
  const total = sharedCount + own.length;
  for (const m of messages) {
    let n = 0;
    for (const _k in m.attributes) n++;
    if (n !== total) return null;
    for (const k of own) if (m.attributes[k] === undefined) return null;
  }
  return own;
}

export function encodeFrame(messages: readonly OutgoingMessage[], publishTime: number): Buffer {
  const shared = sharedKeys(messages);
  const isShared: Record<string, true> = {};
  for (const k of shared) isShared[k] = true;
  const own = uniformOwnKeys(messages, isShared, shared.length);
  let dataBytes = 0;
  for (const m of messages) dataBytes += m.data.length;
  const w = new FrameWriter(FRAME_HEADER_BYTES + dataBytes + messages.length * 96 + 256, FRAME_HEADER_BYTES);
  const first = messages[0]?.attributes ?? {};
  w.u16(shared.length);
  for (const k of shared) {
    w.string(k);
    w.string(first[k] as string);
  }
  if (own !== null) {
    w.u16(own.length);
    for (const k of own) w.string(k);
    for (const m of messages) {
      const attributes = m.attributes;
      for (const k of own) w.string(attributes[k] as string);
      w.bytes(m.data);
    }
  } else {
    w.u16(KEYS_PER_MESSAGE);
    for (const m of messages) {
      const countAt = w.pos;
      w.u16(0);
      let n = 0;
      const attributes = m.attributes;
      for (const k in attributes) {
        if (isShared[k] === true) continue;
        w.string(k);
        w.string(attributes[k] as string);
        n++;
      }
      if (n > 0) w.buf.writeUInt16LE(n, countAt);
      w.bytes(m.data);
    }
  }
  const frame = w.buf;
  const end = w.pos;
  frame.writeUInt32LE(FRAME_MAGIC, 0);
  frame.writeUInt32LE(end - FRAME_HEADER_BYTES, 4);
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER_BYTES, end)), 8);
  frame.writeUInt32LE(messages.length, 12);
  frame.writeDoubleLE(publishTime, 16);
  return frame.subarray(0, end);
}

export interface FrameHeader {
  readonly bodyLength: number;
  readonly crc: number;
  readonly count: number;
  readonly publishTime: number;
}

/** Parses a header; null when the bytes are not a frame header (torn or foreign data). */
export function readFrameHeader(buf: Buffer, offset: number): FrameHeader | null {
  if (buf.readUInt32LE(offset) !== FRAME_MAGIC) return null;
  return {
    bodyLength: buf.readUInt32LE(offset + 4),
    crc: buf.readUInt32LE(offset + 8),
    count: buf.readUInt32LE(offset + 12),
    publishTime: buf.readDoubleLE(offset + 16),
  };
}

export function bodyIsIntact(header: FrameHeader, body: Buffer): boolean {
  return crc32(body) === header.crc;
}

export interface DecodedMessage {
  readonly data: Buffer;
  readonly attributes: Record<string, string>;
}

/** Decodes the messages of an intact frame body. The data buffers are views of `body`. */
export function decodeBody(body: Buffer, count: number): DecodedMessage[] {
  const out: DecodedMessage[] = new Array(count);
  const keys = new KeyCache();
  const shared: Record<string, string> = {};
  let pos = readAttributes(body, 0, shared, keys);
  const ownCount = body.readUInt16LE(pos);
  pos += 2;
  let own: string[] | null = null;
  if (ownCount !== KEYS_PER_MESSAGE) {
    own = new Array(ownCount);
    for (let k = 0; k < ownCount; k++) {
      const kl = body.readUInt16LE(pos);
      own[k] = body.toString('utf8', pos + 2, pos + 2 + kl);
      pos += 2 + kl;
    }
  }
  for (let i = 0; i < count; i++) {
    // Object.assign keeps V8 on its fast path here (a spread followed by more keys does not)
    const attributes: Record<string, string> = Object.assign({}, shared);
    if (own !== null) {
      for (let k = 0; k < own.length; k++) {
        const vl = body.readUInt16LE(pos);
        attributes[own[k] as string] = body.toString('utf8', pos + 2, pos + 2 + vl);
        pos += 2 + vl;
      }
    } else {
      pos = readAttributes(body, pos, attributes, keys);
    }
    const dl = body.readUInt32LE(pos);
    out[i] = { data: body.subarray(pos + 4, pos + 4 + dl), attributes };
    pos += 4 + dl;
  }
  return out;
}

/**
 * Attribute keys repeat in every message of a frame: decode each distinct key once per frame
 * (compared byte for byte, so any UTF-8 key is handled exactly).
 */
class KeyCache {
  private readonly starts: number[] = [];
  private readonly lengths: number[] = [];
  private readonly strings: string[] = [];

  get(body: Buffer, start: number, length: number): string {
    for (let k = 0; k < this.strings.length; k++) {
      if (this.lengths[k] !== length) continue;
      const other = this.starts[k] as number;
      let same = true;
      for (let b = 0; b < length; b++) {
        if (body[start + b] !== body[other + b]) {
          same = false;
          break;
        }
      }
      if (same) return this.strings[k] as string;
    }
    const s = body.toString('utf8', start, start + length);
    if (this.strings.length < 32) {
      this.starts.push(start);
      this.lengths.push(length);
      this.strings.push(s);
    }
    return s;
  }
}

function readAttributes(body: Buffer, start: number, into: Record<string, string>, keys: KeyCache): number {
  let pos = start;
  const n = body.readUInt16LE(pos);
  pos += 2;
  for (let a = 0; a < n; a++) {
    const kl = body.readUInt16LE(pos);
    const key = keys.get(body, pos + 2, kl);
    pos += 2 + kl;
    const vl = body.readUInt16LE(pos);
    into[key] = body.toString('utf8', pos + 2, pos + 2 + vl);
    pos += 2 + vl;
  }
  return pos;
}
