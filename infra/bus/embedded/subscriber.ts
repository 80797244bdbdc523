/**
 * The consumer side of one embedded-bus subscription: reads frames from the topic's segments,
 * delivers messages in batches with flow control, tracks leases (ack deadlines), redelivers on
 * nack, deadline or restart, and persists the acked positions.
 */
import { type FileHandle, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DeliveredMessage, MessageHandler, Subscriber } from '../../../core/ports/bus.js';
import { decodeBody } from './frame.js';
import { type LocalWriters, listSegmentNames, segmentIsFinished } from './segment-lifecycle.js';
import { readFrames } from './segment-scan.js';
import { loadState, type SegmentCursor, type SubscriptionState, saveState } from './subscription-state.js';

interface FrameRt {
  readonly offset: number;
  readonly end: number;
  readonly count: number;
  readonly acked: Uint8Array;
  ackedCount: number;
}

interface SegmentRt {
  readonly name: string;
  readonly cursor: SegmentCursor;
  handle: FileHandle | null;
  readPos: number;
  /** Frames read and not yet fully acked, in file order. */
  frames: FrameRt[];
  ended: boolean;
}

type MessageState = 'queued' | 'out' | 'acked';

class EmbeddedMessage implements DeliveredMessage {
  state: MessageState = 'queued';
  deadline = 0;
  deliveryAttempt = 0;
  constructor(
    readonly id: string,
    readonly data: Buffer,
    readonly attributes: Readonly<Record<string, string>>,
    readonly publishTime: number,
    readonly segment: SegmentRt,
    readonly frame: FrameRt,
    readonly index: number,
    private readonly owner: EmbeddedSubscriber,
  ) {}
  ack(): void {
    this.owner.ack(this);
  }
  nack(): void {
    this.owner.nack(this);
  }
}

export interface SubscriberOptions {
  readonly name: string;
  readonly subDir: string;
  readonly segmentsDir: string;
  readonly handler: MessageHandler;
  readonly maxOutstandingMessages: number;
  readonly maxBatchMessages: number;
  readonly ackDeadlineMs: number;
  readonly pollIntervalMs: number;
  readonly stateSaveIntervalMs: number;
  readonly localWriters: LocalWriters;
  readonly logger: Logger;
  readonly onClose: () => Promise<void>;
}

const READ_BUDGET_BYTES = 4 * 1024 * 1024;

export class EmbeddedSubscriber implements Subscriber {
  private state: SubscriptionState = { segments: {} };
  private readonly segments = new Map<string, SegmentRt>();
  private queue: EmbeddedMessage[] = [];
  private readonly out = new Set<EmbeddedMessage>();
  private names: string[] = [];
  private listedAt = 0;
  private pumping = false;
  private again = false;
  private dirty = false;
  private saving: Promise<void> | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly o: SubscriberOptions) {}

  start(): void {
    this.state = loadState(this.o.subDir);
    const leaseCheck = Math.max(20, Math.min(1000, Math.floor(this.o.ackDeadlineMs / 4)));
    this.timers.push(setInterval(() => this.expireLeases(), leaseCheck));
    this.timers.push(setInterval(() => this.notify(true), this.o.pollIntervalMs));
    this.timers.push(setInterval(() => void this.saveIfDirty(), this.o.stateSaveIntervalMs));
    for (const t of this.timers) t.unref();
    this.notify(true);
  }

  /** New data may be there; `relist` forces a fresh segment listing. */
  notify(relist = false): void {
    if (this.closed) return;
    if (relist) this.listedAt = 0;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.again = false;
        await this.fill();
        this.deliver();
      } while (this.again && !this.closed);
    } catch (err) {
      this.o.logger.error({ err, subscription: this.o.name }, 'embedded bus: reading segments failed; retrying');
    } finally {
      this.pumping = false;
    }
  }

  private room(): number {
    return this.o.maxOutstandingMessages - this.out.size - this.queue.length;
  }

  private async fill(): Promise<void> {
    if (this.room() <= 0) return;
    const now = performance.now();
    if (now - this.listedAt >= this.o.pollIntervalMs) {
      this.names = listSegmentNames(await readdir(this.o.segmentsDir).catch(() => []));
      this.listedAt = now;
    }
    for (const name of this.names) {
      if (this.closed || this.room() <= 0) return;
      const seg = this.segmentRt(name);
      if (seg === null || seg.ended) continue;
      const finished = segmentIsFinished(name, this.names, this.o.localWriters);
      if (seg.handle === null) {
        try {
          seg.handle = await open(join(this.o.segmentsDir, name), 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
      }
      const res = await readFrames(seg.handle, seg.readPos, READ_BUDGET_BYTES);
      for (const f of res.frames) this.admitFrame(seg, f.offset, f.end, f.header.count, f.header.publishTime, f.body);
      seg.readPos = res.next;
      if (res.stop !== 'budget' && finished) {
        seg.ended = true;
        await seg.handle.close();
        seg.handle = null;
        this.maybeDone(seg);
      }
      if (res.stop === 'budget') this.again = true;
    }
  }

  private segmentRt(name: string): SegmentRt | null {
    let seg = this.segments.get(name);
    if (seg) return seg;
    let cursor = this.state.segments[name];
    if (cursor === undefined) {
      cursor = { offset: 0, acked: {}, done: false };
      this.state.segments[name] = cursor;
    }
    if (cursor.done) return null;
    seg = { name, cursor, handle: null, readPos: cursor.offset, frames: [], ended: false };
    this.segments.set(name, seg);
    return seg;
  }

  private admitFrame(
    seg: SegmentRt,
    offset: number,
    end: number,
    count: number,
    publishTime: number,
    body: Buffer,
  ): void {
    const frame: FrameRt = { offset, end, count, acked: new Uint8Array(count), ackedCount: 0 };
    const previouslyAcked = seg.cursor.acked[String(offset)];
    if (previouslyAcked) {
      for (const i of previouslyAcked) {
        if (i < count && frame.acked[i] === 0) {
          frame.acked[i] = 1;
          frame.ackedCount++;
        }
      }
    }
    seg.frames.push(frame);
    if (frame.ackedCount === count) {
      this.advance(seg);
      return;
    }
    const decoded = decodeBody(body, count);
    for (let i = 0; i < count; i++) {
      if (frame.acked[i] === 1) continue;
      const d = decoded[i] as { data: Buffer; attributes: Record<string, string> };
      this.queue.push(
        new EmbeddedMessage(`${seg.name}:${offset}:${i}`, d.data, d.attributes, publishTime, seg, frame, i, this),
      );
    }
  }

  /** Hands queued messages to the handler, never more than maxOutstandingMessages unacked. */
  private deliver(): void {
    while (this.queue.length > 0 && !this.closed) {
      const room = Math.min(this.o.maxBatchMessages, this.o.maxOutstandingMessages - this.out.size);
      if (room <= 0) return;
      const taken = this.queue.splice(0, room);
      const batch: EmbeddedMessage[] = [];
      const deadline = performance.now() + this.o.ackDeadlineMs;
      for (const m of taken) {
        if (m.state !== 'queued') continue;
        m.state = 'out';
        m.deliveryAttempt++;
        m.deadline = deadline;
        this.out.add(m);
        batch.push(m);
      }
      if (batch.length === 0) continue;
      try {
        const r = this.o.handler(batch);
        if (r instanceof Promise) r.catch((err: unknown) => this.handlerFailed(batch, err));
      } catch (err) {
        this.handlerFailed(batch, err);
      }
    }
  }

  private handlerFailed(batch: EmbeddedMessage[], err: unknown): void {
    this.o.logger.warn(
      { err, subscription: this.o.name, messages: batch.length },
      'handler failed; messages will be redelivered',
    );
    for (const m of batch) this.nack(m);
  }

  ack(m: EmbeddedMessage): void {
    if (this.closed || m.state === 'acked') return;
    if (m.state === 'out') this.out.delete(m);
    m.state = 'acked';
    const { frame, segment: seg } = m;
    if (frame.acked[m.index] === 1) return;
    frame.acked[m.index] = 1;
    frame.ackedCount++;
    this.dirty = true;
    if (frame.ackedCount === frame.count) {
      delete seg.cursor.acked[String(frame.offset)];
      this.advance(seg);
    } else {
      const key = String(frame.offset);
      const list = seg.cursor.acked[key];
      if (list) list.push(m.index);
      else seg.cursor.acked[key] = [m.index];
    }
    // more to hand out, or room to read more: wake the pump once for all acks of this tick
    if (this.queue.length > 0 || this.out.size + this.queue.length < this.o.maxOutstandingMessages / 2) {
      this.scheduleNotify();
    }
  }

  private notifyScheduled = false;
  private scheduleNotify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      this.notify();
    });
  }

  nack(m: EmbeddedMessage): void {
    if (this.closed || m.state !== 'out') return;
    this.out.delete(m);
    m.state = 'queued';
    this.queue.unshift(m);
    this.notify();
  }

  private advance(seg: SegmentRt): void {
    let i = 0;
    while (i < seg.frames.length && (seg.frames[i] as FrameRt).ackedCount === (seg.frames[i] as FrameRt).count) {
      const f = seg.frames[i] as FrameRt;
      seg.cursor.offset = f.end;
      delete seg.cursor.acked[String(f.offset)];
      i++;
    }
    if (i > 0) seg.frames.splice(0, i);
    this.dirty = true;
    this.maybeDone(seg);
  }

  private maybeDone(seg: SegmentRt): void {
    if (seg.ended && seg.frames.length === 0) {
      seg.cursor.done = true;
      seg.cursor.acked = {};
      this.segments.delete(seg.name);
      this.dirty = true;
    }
  }

  private expireLeases(): void {
    if (this.closed || this.out.size === 0) return;
    const now = performance.now();
    const expired: EmbeddedMessage[] = [];
    for (const m of this.out) if (m.deadline <= now) expired.push(m);
    if (expired.length === 0) return;
    for (const m of expired) {
      this.out.delete(m);
      m.state = 'queued';
    }
    this.queue.unshift(...expired);
    this.notify();
  }

  /** Saves the acked positions now (also used before computing backlog figures). */
  async saveNow(): Promise<void> {
    while (this.saving) await this.saving;
    this.dirty = false;
    const present = new Set(this.names);
    for (const name of Object.keys(this.state.segments)) {
      const c = this.state.segments[name] as SegmentCursor;
      if (c.done && this.names.length > 0 && !present.has(name)) delete this.state.segments[name];
    }
    this.saving = saveState(this.o.subDir, this.state);
    try {
      await this.saving;
    } finally {
      this.saving = null;
    }
  }

  private async saveIfDirty(): Promise<void> {
    if (!this.dirty || this.saving || this.closed) return;
    try {
      await this.saveNow();
    } catch (err) {
      this.dirty = true;
      this.o.logger.error({ err, subscription: this.o.name }, 'embedded bus: saving subscription state failed');
    }
  }

  /** The live state, for retention decisions in this process. */
  cursorOf(segment: string): SegmentCursor | undefined {
    return this.state.segments[segment];
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.closed = true;
      for (const t of this.timers) clearInterval(t);
      while (this.pumping) await new Promise((r) => setTimeout(r, 2));
      try {
        await this.saveNow();
      } catch (err) {
        this.o.logger.error(
          { err, subscription: this.o.name },
          'embedded bus: saving subscription state on close failed',
        );
      }
      for (const seg of this.segments.values()) {
        if (seg.handle) await seg.handle.close().catch(() => undefined);
      }
      this.queue = [];
      this.out.clear();
      await this.o.onClose();
    })();
    return this.closing;
  }
}
