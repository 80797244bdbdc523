/**
 * Reads frames from a segment file. Stops at the end of the file, at an incomplete frame (a write
 * in progress, or a torn tail), or at bytes that are not an intact frame.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { bodyIsIntact, FRAME_HEADER_BYTES, type FrameHeader, readFrameHeader } from './frame.js';

export interface ScannedFrame {
  readonly offset: number;
  readonly end: number;
  readonly header: FrameHeader;
  readonly body: Buffer;
}

export type ScanStop = 'end' | 'budget' | 'corrupt';

export interface ScanResult {
  readonly frames: ScannedFrame[];
  /** Offset after the last intact frame returned. */
  readonly next: number;
  readonly stop: ScanStop;
}

/** Reads intact frames with their bodies from `from`, up to about `maxBytes`. */
export async function readFrames(handle: FileHandle, from: number, maxBytes: number): Promise<ScanResult> {
  const frames: ScannedFrame[] = [];
  let pos = from;
  let budget = maxBytes;
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  while (budget > 0) {
    const { bytesRead } = await handle.read(header, 0, FRAME_HEADER_BYTES, pos);
    if (bytesRead === 0) return { frames, next: pos, stop: 'end' };
    if (bytesRead < FRAME_HEADER_BYTES) return { frames, next: pos, stop: 'end' };
    const h = readFrameHeader(header, 0);
    if (h === null) return { frames, next: pos, stop: 'corrupt' };
    const body = Buffer.allocUnsafe(h.bodyLength);
    let got = 0;
    while (got < h.bodyLength) {
      const r = await handle.read(body, got, h.bodyLength - got, pos + FRAME_HEADER_BYTES + got);
      if (r.bytesRead === 0) break;
      got += r.bytesRead;
    }
    if (got < h.bodyLength) return { frames, next: pos, stop: 'end' };
    if (!bodyIsIntact(h, body)) return { frames, next: pos, stop: 'corrupt' };
    const end = pos + FRAME_HEADER_BYTES + h.bodyLength;
    frames.push({ offset: pos, end, header: h, body });
    pos = end;
    budget -= FRAME_HEADER_BYTES + h.bodyLength;
  }
  return { frames, next: pos, stop: 'budget' };
}

export interface HeaderEntry {
  readonly offset: number;
  readonly count: number;
  readonly publishTime: number;
}

/**
 * Lists frame headers from `from` without checking bodies (for subscription start positions).
 * Synchronous: used once per new subscription, not on the delivery path (backlog figures, asked
 * for every second, read incrementally and asynchronously: backlog-index.ts).
 */
export function scanHeaders(path: string, from: number): { headers: HeaderEntry[]; end: number } {
  const headers: HeaderEntry[] = [];
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { headers, end: from };
    throw err;
  }
  try {
    const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    let pos = from;
    for (;;) {
      const n = readSync(fd, buf, 0, FRAME_HEADER_BYTES, pos);
      if (n < FRAME_HEADER_BYTES) break;
      const h = readFrameHeader(buf, 0);
      if (h === null) break;
      const end = pos + FRAME_HEADER_BYTES + h.bodyLength;
      const probe = Buffer.allocUnsafe(1);
      if (h.bodyLength > 0 && readSync(fd, probe, 0, 1, end - 1) < 1) break;
      headers.push({ offset: pos, count: h.count, publishTime: h.publishTime });
      pos = end;
    }
    return { headers, end: pos };
  } finally {
    closeSync(fd);
  }
}
