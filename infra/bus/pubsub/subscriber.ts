/**
 * One consumer of a Pub/Sub subscription: the client library's streaming pull (with its flow
 * control and lease management), messages gathered into handler batches, and the bus's ack
 * deadline enforced here.
 *
 * Ack deadline: Pub/Sub's own deadline (the subscription's `ackDeadlineSeconds`, 10 s at least)
 * is kept alive by the library's lease management while this process runs; the bus's deadline
 * (`ackDeadlineRealMs`, any length) is enforced by this consumer, which nacks a message that stays
 * unacked that long, so it is redelivered at once. If the process dies, Pub/Sub redelivers after
 * its own deadline.
 *
 * Nacks of fresh messages wait a little: on receipt the library sends a "receipt" modack (extend
 * by Pub/Sub's deadline), batched with other modacks and nacks (a nack is a modack to 0 s) and
 * sent as one request per deadline, concurrently. A nack in the same batch as the receipt
 * modack can be applied first, and the message then stays leased for Pub/Sub's whole deadline
 * (10 s or more) instead of being redelivered at once (seen with the fake). So a message is
 * nacked no sooner than NACK_GUARD_MS after it arrived, when its receipt modack has gone out.
 * The same can happen, rarely, to a nack that shares its batch with one of the library's periodic
 * lease extensions: that message is then redelivered after Pub/Sub's deadline, as after a crash.
 */
import type { Message, Subscription } from '@google-cloud/pubsub';
import type { Logger } from 'pino';
import type { Clock } from '../../../core/clock.js';
import type { DeliveredMessage, MessageHandler, Subscriber } from '../../../core/ports/bus.js';
import { isNotFound } from './errors.js';

/** Messages that arrive within this many ms of the first one of a batch share a handler call. */
const BATCH_WINDOW_MS = 5;
/** The library sends acks, modacks and nacks in batches at most this old (its `batching` option). */
export const ACK_BATCH_MS = 20;
/** A message is nacked no sooner than this after it arrived (see above): a batch and its request. */
const NACK_GUARD_MS = 3 * ACK_BATCH_MS;

export interface PubSubSubscriberOptions {
  /** Port name of the subscription. */
  readonly name: string;
  /** The library's subscription object, configured, with no listener yet. */
  readonly subscription: Subscription;
  readonly handler: MessageHandler;
  readonly maxBatchMessages: number;
  readonly ackDeadlineRealMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called once per message acked through this consumer. */
  readonly onAck: (id: string) => void;
  /** Called once, when the consumer has closed. */
  readonly onClosed: () => void;
}

class Delivery implements DeliveredMessage {
  settled = false;

  constructor(
    private readonly owner: PubSubSubscriber,
    readonly raw: Message,
    readonly id: string,
    readonly data: Buffer,
    readonly attributes: Readonly<Record<string, string>>,
    readonly publishTime: number,
    readonly deliveryAttempt: number,
    /** performance.now() when it arrived. */
    readonly receivedAt: number,
    /** performance.now() after which the bus's ack deadline has passed. */
    readonly expiresAt: number,
  ) {}

  ack(): void {
    this.owner.settle(this, true);
  }

  nack(): void {
    this.owner.settle(this, false);
  }
}

export class PubSubSubscriber implements Subscriber {
  /** Delivered, not yet acked or nacked, in order of arrival (so of expiry). */
  private readonly unacked = new Set<Delivery>();
  private batch: Delivery[] = [];
  private batchTimer: NodeJS.Timeout | null = null;
  /** Nacks waiting for NACK_GUARD_MS to pass. */
  private readonly delayedNacks = new Map<Delivery, NodeJS.Timeout>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: PubSubSubscriberOptions) {
    const every = Math.max(20, Math.min(1000, Math.floor(o.ackDeadlineRealMs / 4)));
    this.sweeper = setInterval(() => this.expire(), every);
    this.sweeper.unref();
  }

  /** Port name of the subscription. */
  get name(): string {
    return this.o.name;
  }

  start(): void {
    const s = this.o.subscription;
    s.on('error', (err: Error) => this.streamFailed(err));
    s.on('close', () => {
      if (this.closed) return;
      this.o.logger.warn({ subscription: this.o.name }, 'pubsub: delivery stopped by the client library');
      void this.close();
    });
    // the library opens the streaming pull when the first 'message' listener is added
    s.on('message', (m: Message) => this.receive(m));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** ack (true) or nack (false) a delivered message; only the first call counts. */
  settle(d: Delivery, ack: boolean): void {
    if (d.settled) return;
    d.settled = true;
    this.unacked.delete(d);
    if (ack) {
      d.raw.ack();
      this.o.onAck(d.id);
      return;
    }
    const wait = d.receivedAt + NACK_GUARD_MS - performance.now();
    if (wait <= 0) {
      d.raw.nack();
      return;
    }
    this.delayedNacks.set(
      d,
      setTimeout(() => {
        this.delayedNacks.delete(d);
        d.raw.nack();
      }, Math.ceil(wait)),
    );
  }

  private receive(m: Message): void {
    // closing: the library nacks it when it closes
    if (this.closed) return;
    const now = performance.now();
    const d = new Delivery(
      this,
      m,
      m.id,
      Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data),
      m.attributes,
      this.busTime(m.publishTime.getTime()),
      m.deliveryAttempt > 0 ? m.deliveryAttempt : 1,
      now,
      now + this.o.ackDeadlineRealMs,
    );
    this.unacked.add(d);
    this.batch.push(d);
    if (this.batch.length >= this.o.maxBatchMessages) this.flush();
    else this.batchTimer ??= setTimeout(() => this.flush(), BATCH_WINDOW_MS);
  }

  /** Pub/Sub's publish time (wall clock) as a time of the bus clock. */
  private busTime(wallMs: number): number {
    const clock = this.o.clock;
    if (clock.scale === 1) return wallMs;
    return Math.round(clock.now() - (Date.now() - wallMs) * clock.scale);
  }

  private flush(): void {
    if (this.batchTimer !== null) {
      clearTimeout(this.batchTimer);
      this.batchTimer = null;
    }
    while (this.batch.length > 0 && !this.closed) {
      const batch = this.batch.splice(0, this.o.maxBatchMessages).filter((d) => !d.settled);
      if (batch.length > 0) this.invoke(batch);
    }
  }

  private invoke(batch: Delivery[]): void {
    let result: void | Promise<void>;
    try {
      result = this.o.handler(batch);
    } catch (err) {
      this.handlerFailed(batch, err);
      return;
    }
    if (result !== undefined) Promise.resolve(result).catch((err: unknown) => this.handlerFailed(batch, err));
  }

  private handlerFailed(batch: readonly Delivery[], err: unknown): void {
    const unacked = batch.filter((d) => !d.settled);
    this.o.logger.warn(
      { err, subscription: this.o.name, messages: batch.length, nacked: unacked.length },
      'pubsub: message handler failed; its unacked messages are nacked',
    );
    for (const d of unacked) this.settle(d, false);
  }

  /** Nacks messages held past the bus's ack deadline, so that they are delivered again. */
  private expire(): void {
    const now = performance.now();
    for (const d of this.unacked) {
      if (d.expiresAt > now) break;
      this.settle(d, false);
    }
  }

  private streamFailed(err: Error): void {
    if (isNotFound(err)) {
      this.o.logger.warn({ err, subscription: this.o.name }, 'pubsub: the subscription is gone; delivery stops');
      void this.close();
      return;
    }
    this.o.logger.warn({ err, subscription: this.o.name }, 'pubsub: streaming pull failed');
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    if (this.batchTimer !== null) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    this.batch = [];
    const held = [...this.unacked, ...this.delayedNacks.keys()];
    for (const d of this.unacked) d.settled = true;
    this.unacked.clear();
    for (const timer of this.delayedNacks.values()) clearTimeout(timer);
    this.delayedNacks.clear();
    // nack what is held, once the youngest message's receipt modack has gone out
    let youngest = 0;
    for (const d of held) youngest = Math.max(youngest, d.receivedAt);
    const wait = youngest + NACK_GUARD_MS - performance.now();
    if (held.length > 0 && wait > 0) await new Promise((r) => setTimeout(r, Math.ceil(wait)));
    for (const d of held) d.raw.nack();
    try {
      // stops the stream, nacks what the library still leases (messages that arrived while this
      // consumer was closing; a nack of one that arrived in the last few ms can lose the race
      // described above, and it is then redelivered after Pub/Sub's deadline, as after a crash),
      // and sends the pending acks and nacks
      await this.o.subscription.close();
    } catch (err) {
      this.o.logger.warn({ err, subscription: this.o.name }, 'pubsub: closing the subscriber failed');
    }
    this.o.subscription.removeAllListeners('message');
    this.o.subscription.removeAllListeners('close');
    this.o.onClosed();
  }
}
