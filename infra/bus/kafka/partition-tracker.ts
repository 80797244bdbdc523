/**
 * Delivery and ack state of one partition of a Kafka subscription, in one consumer generation.
 *
 * Kafka keeps one committed offset per partition; the bus port acks single messages. The tracker
 * turns the one into the other:
 * - the **commit point** is the offset of the first delivered message not yet acked (or the offset
 *   after the last one seen, when every one is acked): committing it never passes an unacked
 *   message;
 * - messages acked above the commit point are the **holes**; they travel with the commit as its
 *   metadata, so a consumer that resumes from the commit point skips them instead of delivering
 *   them again.
 *
 * Offsets are JavaScript numbers: Kafka's are 64-bit, but 2^53 messages in one partition is out of
 * reach.
 */

/** Commit metadata: who wrote it, the acked offsets above the commit point, the oldest unacked time. */
export interface CommitMetadata {
  /** The subscription's incarnation (its creation time): offsets of an earlier one are ignored. */
  readonly incarnation: number;
  /** Acked offsets at or above the commit point, as inclusive ranges. */
  readonly holes: ReadonlyArray<readonly [number, number]>;
  /** Publish time of the message at the commit point when it had been delivered; else null. */
  readonly oldestPublishTime: number | null;
  /** When the commit was written (bus clock). */
  readonly at: number;
}

/** Kafka brokers keep at most `offset.metadata.max.bytes` (4,096 by default) per commit. */
export const MAX_METADATA_CHARS = 3_000;

export function encodeCommitMetadata(m: CommitMetadata): string {
  const holes = [...m.holes];
  let text = JSON.stringify({ i: m.incarnation, h: holes, t: m.oldestPublishTime, a: m.at });
  // dropping the highest holes only costs redeliveries (duplicates), never loss
  while (text.length > MAX_METADATA_CHARS && holes.length > 0) {
    holes.splice(Math.ceil(holes.length / 2));
    text = JSON.stringify({ i: m.incarnation, h: holes, t: m.oldestPublishTime, a: m.at });
  }
  return text;
}

/** Null for metadata that is absent or not ours. */
export function decodeCommitMetadata(text: string | null | undefined): CommitMetadata | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as { i?: unknown; h?: unknown; t?: unknown; a?: unknown };
    if (typeof v.i !== 'number' || !Array.isArray(v.h) || typeof v.a !== 'number') return null;
    const holes = v.h.filter(
      (r): r is [number, number] =>
        Array.isArray(r) && r.length === 2 && Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] <= r[1],
    );
    return { incarnation: v.i, holes, oldestPublishTime: typeof v.t === 'number' ? v.t : null, at: v.a };
  } catch {
    return null;
  }
}

/** Number of offsets the ranges cover. */
export function rangesSize(ranges: ReadonlyArray<readonly [number, number]>): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a + 1;
  return n;
}

interface Entry {
  readonly offset: number;
  readonly publishTime: number;
  readonly deliveredAtReal: number;
  acked: boolean;
}

export type Admission = 'deliver' | 'skip';

export class PartitionTracker {
  /** Delivered messages in offset order, from the commit point on. */
  private readonly entries: Entry[] = [];
  private head = 0;
  /** Offsets at or above `floor` acked by an earlier consumer (from the commit metadata). */
  private readonly skip: Set<number>;
  /** Offset after the last one seen (delivered or skipped); null before the first. */
  private next: number | null = null;
  private lastCommitted: number | null = null;
  private lastCommittedText = '';
  /** Delivered and not acked (kept, not counted: flow control asks for it per message). */
  private unacked = 0;

  /**
   * @param floor first offset to deliver: the committed offset of this incarnation, or the
   *   subscription's start offset.
   * @param holes offsets at or above `floor` already acked (not delivered again).
   */
  constructor(
    readonly floor: number,
    holes: ReadonlyArray<readonly [number, number]> = [],
    maxSkip = 100_000,
  ) {
    this.skip = new Set();
    for (const [a, b] of holes) {
      for (let o = Math.max(a, floor); o <= b && this.skip.size < maxSkip; o++) this.skip.add(o);
    }
  }

  /** The offset the next fetched message should have: the one after the last seen, or the floor. */
  expected(): number {
    return this.next ?? this.floor;
  }

  /**
   * A fetched message: deliver it, or skip it (below the floor, already seen in this generation,
   * or acked by an earlier consumer). The caller makes sure no offset between `expected()` and
   * this one is skipped unseen (see the subscriber's gap check).
   */
  admit(offset: number, publishTime: number, nowReal: number): Admission {
    if (offset < this.floor) return 'skip';
    if (this.next !== null && offset < this.next) return 'skip';
    this.next = offset + 1;
    if (this.skip.delete(offset)) return 'skip';
    this.entries.push({ offset, publishTime, deliveredAtReal: nowReal, acked: false });
    this.unacked++;
    return 'deliver';
  }

  ack(offset: number): void {
    // entries are in offset order: binary search
    let lo = this.head;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.entries[mid] as Entry;
      if (e.offset === offset) {
        if (!e.acked) this.unacked--;
        e.acked = true;
        break;
      }
      if (e.offset < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    while (this.head < this.entries.length && (this.entries[this.head] as Entry).acked) this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Delivered and not acked. */
  get outstanding(): number {
    return this.unacked;
  }

  /** The oldest unacked delivery: its offset and when it was delivered (real ms), or null. */
  oldestUnacked(): { offset: number; deliveredAtReal: number; publishTime: number } | null {
    const e = this.entries[this.head];
    return e === undefined
      ? null
      : { offset: e.offset, deliveredAtReal: e.deliveredAtReal, publishTime: e.publishTime };
  }

  /** The offset to commit: the first unacked, or the one after the last seen. */
  commitPoint(): number {
    const first = this.entries[this.head];
    if (first !== undefined) return first.offset;
    return this.next ?? this.floor;
  }

  /** Acked offsets above the commit point (and the earlier consumer's holes not reached yet). */
  holes(): Array<[number, number]> {
    const offsets: number[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i] as Entry;
      if (e.acked) offsets.push(e.offset);
    }
    for (const o of this.skip) offsets.push(o);
    offsets.sort((a, b) => a - b);
    const out: Array<[number, number]> = [];
    for (const o of offsets) {
      const last = out[out.length - 1];
      if (last !== undefined && last[1] + 1 === o) last[1] = o;
      else out.push([o, o]);
    }
    return out;
  }

  /** The commit to write now, or null when it would repeat the last one. */
  pendingCommit(incarnation: number, now: number): { offset: number; metadata: string } | null {
    const offset = this.commitPoint();
    const oldest = this.entries[this.head];
    const metadata = encodeCommitMetadata({
      incarnation,
      holes: this.holes(),
      oldestPublishTime: oldest?.publishTime ?? null,
      at: now,
    });
    // the time of writing alone does not make a new commit
    const key = metadata.replace(/"a":\d+/, '');
    if (offset === this.lastCommitted && key === this.lastCommittedText) return null;
    return { offset, metadata };
  }

  committed(offset: number, metadata: string): void {
    this.lastCommitted = offset;
    this.lastCommittedText = metadata.replace(/"a":\d+/, '');
  }
}
