import { describe, expect, it } from 'vitest';
import type { OutgoingMessage } from '../../../core/ports/bus.js';
import { bodyIsIntact, decodeBody, encodeFrame, FRAME_HEADER_BYTES, readFrameHeader } from './frame.js';

describe('frames', () => {
  it('round-trip messages, with attributes shared by all stored once', () => {
    const messages = Array.from({ length: 3 }, (_, i) => ({
      data: Buffer.from([i, 0, 255]),
      attributes: { type: 'EndSong', id: `e-${i}`, note: i === 2 ? 'ü' : '' },
    }));
    const frame = encodeFrame(messages, 1234.5);
    const h = readFrameHeader(frame, 0);
    expect(h).toMatchObject({ count: 3, publishTime: 1234.5, bodyLength: frame.length - FRAME_HEADER_BYTES });
    const body = frame.subarray(FRAME_HEADER_BYTES);
    expect(bodyIsIntact(h!, body)).toBe(true);
    expect(decodeBody(body, 3)).toEqual(messages);
    // "type" is shared: stored once
    expect(frame.toString('latin1').split('EndSong').length - 1).toBe(1);
  });

  it('decodes keys of equal length but different bytes, and non-ASCII keys, exactly', () => {
    const messages: OutgoingMessage[] = [
      { data: Buffer.from([1]), attributes: { ab: '1', ac: '2', ké: '3' } },
      { data: Buffer.from([2]), attributes: { ac: '4', ab: '5', kè: '6' } },
    ];
    const frame = encodeFrame(messages, 1);
    const h = readFrameHeader(frame, 0);
    expect(decodeBody(frame.subarray(FRAME_HEADER_BYTES), h?.count ?? 0)).toEqual(messages);
  });

  it('round-trips messages whose own keys differ (some carry an extra attribute)', () => {
    const messages: OutgoingMessage[] = [
      { data: Buffer.from([1]), attributes: { type: 'T', id: 'a', clientTime: '2026-01-01T00:00:00.000Z' } },
      { data: Buffer.from([2]), attributes: { type: 'T', id: 'b' } },
      { data: Buffer.alloc(0), attributes: { id: 'c', type: 'T' } },
    ];
    const frame = encodeFrame(messages, 1);
    expect(decodeBody(frame.subarray(FRAME_HEADER_BYTES), 3)).toEqual(messages);
  });

  it('stores keys once when every message has the same ones; long and non-ASCII values survive', () => {
    const messages: OutgoingMessage[] = Array.from({ length: 50 }, (_, i) => ({
      data: Buffer.from([i]),
      attributes: { id: `ïd-${i}-${'x'.repeat(i * 3)}`, sequence: String(i) },
    }));
    const frame = encodeFrame(messages, 1);
    expect(frame.toString('latin1').split('sequence').length - 1).toBe(1);
    expect(decodeBody(frame.subarray(FRAME_HEADER_BYTES), 50)).toEqual(messages);
  });

  it('detects a flipped byte', () => {
    const frame = encodeFrame([{ data: Buffer.from('hello'), attributes: { id: 'x' } }], 1);
    frame.writeUInt8(frame.readUInt8(frame.length - 1) ^ 1, frame.length - 1);
    const h = readFrameHeader(frame, 0);
    expect(bodyIsIntact(h!, frame.subarray(FRAME_HEADER_BYTES))).toBe(false);
  });

  it('rejects bytes that are not a frame', () => {
    expect(readFrameHeader(Buffer.alloc(24), 0)).toBeNull();
  });

  it('refuses attribute strings over 65535 bytes', () => {
    expect(() => encodeFrame([{ data: Buffer.alloc(0), attributes: { id: 'x'.repeat(70_000) } }], 1)).toThrow(
      RangeError,
    );
  });
});
