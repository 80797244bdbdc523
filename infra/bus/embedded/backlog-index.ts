/**
 * Backlog figures of the embedded bus (unacked messages, oldest unacked publish time) without
 * re-reading the whole backlog on every call and without blocking the event loop.
 *
 * The alert evaluation asks for every type's backlog every second, and with no consumer (`hourglass
 * dev --no-etl`, or a stopped ETL) the backlog only grows: scanning it with synchronous reads, two
 * per frame, took the ingress process's event loop for hundreds of milliseconds each second (request
 * p99 over 200 ms at 50,000 events/s). Segment files are append-only, so what was read of a segment
 * once is kept per (subscription, segment), and each call reads only the bytes appended since,
 * asynchronously, in chunks:
 *
 * - a segment the subscription has not touched (cursor at 0, nothing acked) keeps totals only (sum
 *   of message counts, earliest publish time): constant memory however large the backlog;
 * - a segment being consumed keeps one entry per frame from the cursor on (offset, count, publish
 *   time), dropped as the cursor passes them, so that partly acked frames can be subtracted.
 *
 * A frame is counted only when complete and intact (CRC), as readers deliver it: a write in
 * progress or a torn tail is left for a later call. A segment that became shorter than what was read
 * (truncated back after a failed write) is read again from the cursor.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { bodyIsIntact, FRAME_HEADER_BYTES, readFrameHeader } from './frame.js';
import type { SegmentCursor } from './subscription-state.js';

/** Bytes read per call into the file (a frame larger than this is read whole). */
const CHUNK_BYTES = 256 * 1024;

export interface SegmentBacklog {
  readonly messages: number;
  /** Earliest publish time of a frame with unacked messages, or null when none. */
  readonly oldest: number | null;
}

/** What was read of one segment for one subscription. */
export class SegmentHeaderIndex {
  /** Offset after the last complete, intact frame read. */
  private end: number;
  /** Totals over [start, end): used while the segment is untouched (`frames` null). */
  private total = 0;
  private minTime: number | null = null;
  /** Per-frame entries from `head` on, or null: totals only. */
  private readonly frames: { offsets: number[]; counts: number[]; times: number[]; head: number } | null;
  /** Sum of `counts` from `head` on. */
  private framesTotal = 0;
  /** Publish times never decreased along the segment: the first unacked frame is the oldest. */
  private monotone = true;

  constructor(
    /** Offset the index starts at (a frame boundary). */
    readonly start: number,
    perFrame: boolean,
  ) {
    this.end = start;
    this.frames = perFrame ? { offsets: [], counts: [], times: [], head: 0 } : null;
  }

  get perFrame(): boolean {
    return this.frames !== null;
  }

  get readUpTo(): number {
    return this.end;
  }

  /**
   * Reads the frames appended since the last call. Returns false when the file is gone, or
   * 'shrunk' when it is shorter than what was read (the caller starts over).
   */
  async extend(path: string): Promise<boolean | 'shrunk'> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size < this.end) return 'shrunk';
      let buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(FRAME_HEADER_BYTES, size - this.end)));
      while (this.end + FRAME_HEADER_BYTES <= size) {
        const want = Math.min(buf.length, size - this.end);
        const { bytesRead } = await handle.read(buf, 0, want, this.end);
        if (bytesRead < FRAME_HEADER_BYTES) return true;
        let p = 0;
        let stop = false;
        while (p + FRAME_HEADER_BYTES <= bytesRead) {
          const h = readFrameHeader(buf, p);
          // a header not (yet) complete reads as no frame: left for a later call
          if (h === null || h.count === 0 || h.bodyLength === 0) {
            stop = true;
            break;
          }
          const frameBytes = FRAME_HEADER_BYTES + h.bodyLength;
          if (this.end + p + frameBytes > size) {
            stop = true; // still being written, or a torn tail
            break;
          }
          if (p + frameBytes > bytesRead) {
            // the frame goes past this chunk: read it from its start next round (whole if larger)
            if (p === 0) buf = Buffer.allocUnsafe(frameBytes);
            break;
          }
          if (!bodyIsIntact(h, buf.subarray(p + FRAME_HEADER_BYTES, p + frameBytes))) {
            stop = true;
            break;
          }
          this.add(this.end + p, h.count, h.publishTime);
          p += frameBytes;
        }
        this.end += p;
        if (stop) return true;
      }
      return true;
    } finally {
      await handle.close();
    }
  }

  private add(offset: number, count: number, time: number): void {
    const f = this.frames;
    if (f === null) {
      this.total += count;
      if (this.minTime === null || time < this.minTime) this.minTime = time;
      return;
    }
    const last = f.times.length > f.head ? (f.times[f.times.length - 1] as number) : Number.NEGATIVE_INFINITY;
    if (time < last) this.monotone = false;
    f.offsets.push(offset);
    f.counts.push(count);
    f.times.push(time);
    this.framesTotal += count;
  }

  /** The segment's backlog for a subscription at `cursor` (from, acked as in the subscription's state). */
  backlog(from: number, acked: SegmentCursor['acked']): SegmentBacklog {
    const f = this.frames;
    if (f === null) return { messages: this.total, oldest: this.minTime };
    // drop the frames the cursor has passed
    const first = lowerBound(f.offsets, from, f.head);
    for (let i = f.head; i < first; i++) this.framesTotal -= f.counts[i] as number;
    f.head = first;
    if (f.head > 1024 && f.head * 2 > f.offsets.length) {
      f.offsets.splice(0, f.head);
      f.counts.splice(0, f.head);
      f.times.splice(0, f.head);
      f.head = 0;
    }
    let messages = this.framesTotal;
    const ackedAt = new Map<number, number>();
    for (const [key, indices] of Object.entries(acked)) {
      const offset = Number(key);
      const i = lowerBound(f.offsets, offset, f.head);
      if (f.offsets[i] !== offset) continue; // not read yet (appended after this call's read)
      const n = Math.min(indices.length, f.counts[i] as number);
      messages -= n;
      ackedAt.set(i, n);
    }
    let oldest: number | null = null;
    for (let i = f.head; i < f.offsets.length; i++) {
      if ((f.counts[i] as number) - (ackedAt.get(i) ?? 0) <= 0) continue;
      const t = f.times[i] as number;
      if (oldest === null || t < oldest) oldest = t;
      if (this.monotone) break;
    }
    return { messages, oldest };
  }
}

/** First index ≥ `from` whose value is ≥ `x` (values ascending). */
function lowerBound(values: readonly number[], x: number, from: number): number {
  let lo = from;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((values[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The indexes of one subscription, by segment name. */
export class SubscriptionBacklogIndex {
  private readonly segments = new Map<string, SegmentHeaderIndex>();

  /** The backlog of one segment at the subscription's cursor (undefined: read from 0). */
  async segmentBacklog(name: string, path: string, cursor: SegmentCursor | undefined): Promise<SegmentBacklog> {
    const from = cursor?.offset ?? 0;
    const acked = cursor?.acked ?? {};
    let hasAcks = false;
    for (const _ in acked) {
      hasAcks = true;
      break;
    }
    const untouched = from === 0 && !hasAcks;
    for (let attempt = 0; ; attempt++) {
      let index = this.segments.get(name);
      // start over when the cursor is behind what is kept, when a consumed segment has totals only,
      // or when the cursor jumped past what was read (skip reading the acked part)
      if (
        index === undefined ||
        from < index.start ||
        (!untouched && !index.perFrame) ||
        (index.perFrame && from > index.readUpTo)
      ) {
        index = new SegmentHeaderIndex(from, !untouched);
        this.segments.set(name, index);
      }
      const read = await index.extend(path);
      if (read === true) return index.backlog(from, acked);
      this.segments.delete(name);
      // gone; or shorter than the cursor even when read afresh: nothing of it is there to consume
      if (read === false || attempt > 0) return { messages: 0, oldest: null };
    }
  }

  /** Forgets segments not in `keep` (deleted, or fully acked). */
  retain(keep: ReadonlySet<string>): void {
    for (const name of this.segments.keys()) if (!keep.has(name)) this.segments.delete(name);
  }
}
