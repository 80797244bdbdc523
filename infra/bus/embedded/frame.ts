/**
 * On-disk frame format of the embedded bus. One `publish` call is one frame:
 *
 * ```
 * header (24 bytes, little endian)
 *   u32 magic 0x31474c48 ("HGL1")   u32 bodyLength   u32 crc32(body)   u32 messageCount
 *   f64 publishTime (epoch ms)
 * body: messageCount × message
 *   u16 attributeCount, then per attribute: u16 keyLength, key (UTF-8), u16 valueLength, value (UTF-8)
 *   u32 dataLength, data
 * ```
 * A frame is valid only when its body is complete and its CRC matches; readers never deliver a
 * torn frame.
 */
import { crc32 } from 'node:zlib';
import type { OutgoingMessage } from '../../../core/ports/bus.js';

export const FRAME_MAGIC = 0x31474c48;
export const FRAME_HEADER_BYTES = 24;
const MAX_ATTRIBUTE_BYTES = 0xffff;

export function encodeFrame(messages: readonly OutgoingMessage[], publishTime: number): Buffer {
  let size = 0;
  const encoded: { keys: Buffer[]; values: Buffer[] }[] = [];
  for (const m of messages) {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    size += 2 + 4 + m.data.length;
    for (const key in m.attributes) {
      const value = m.attributes[key] ?? '';
      const k = Buffer.from(key, 'utf8');
      const v = Buffer.from(value, 'utf8');
      if (k.length > MAX_ATTRIBUTE_BYTES || v.length > MAX_ATTRIBUTE_BYTES) {
        throw new RangeError(`attribute ${key} is longer than ${MAX_ATTRIBUTE_BYTES} bytes`);
      }
      keys.push(k);
      values.push(v);
      size += 4 + k.length + v.length;
    }
    encoded.push({ keys, values });
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + size);
  let pos = FRAME_HEADER_BYTES;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as OutgoingMessage;
    const { keys, values } = encoded[i] as { keys: Buffer[]; values: Buffer[] };
    frame.writeUInt16LE(keys.length, pos);
    pos += 2;
    for (let a = 0; a < keys.length; a++) {
      const k = keys[a] as Buffer;
      const v = values[a] as Buffer;
      frame.writeUInt16LE(k.length, pos);
      k.copy(frame, pos + 2);
      pos += 2 + k.length;
      frame.writeUInt16LE(v.length, pos);
      v.copy(frame, pos + 2);
      pos += 2 + v.length;
    }
    frame.writeUInt32LE(m.data.length, pos);
    m.data.copy(frame, pos + 4);
    pos += 4 + m.data.length;
  }
  const body = frame.subarray(FRAME_HEADER_BYTES);
  frame.writeUInt32LE(FRAME_MAGIC, 0);
  frame.writeUInt32LE(size, 4);
  frame.writeUInt32LE(crc32(body), 8);
  frame.writeUInt32LE(messages.length, 12);
  frame.writeDoubleLE(publishTime, 16);
  return frame;
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

/** Decodes the messages of an intact frame body. The data buffers are copies. */
export function decodeBody(body: Buffer, count: number): DecodedMessage[] {
  const out: DecodedMessage[] = new Array(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const n = body.readUInt16LE(pos);
    pos += 2;
    const attributes: Record<string, string> = {};
    for (let a = 0; a < n; a++) {
      const kl = body.readUInt16LE(pos);
      const key = body.toString('utf8', pos + 2, pos + 2 + kl);
      pos += 2 + kl;
      const vl = body.readUInt16LE(pos);
      attributes[key] = body.toString('utf8', pos + 2, pos + 2 + vl);
      pos += 2 + vl;
    }
    const dl = body.readUInt32LE(pos);
    out[i] = { data: Buffer.from(body.subarray(pos + 4, pos + 4 + dl)), attributes };
    pos += 4 + dl;
  }
  return out;
}
