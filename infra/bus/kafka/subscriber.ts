/**
 * A consumer of one Kafka subscription: a kafkajs consumer in the subscription's consumer group.
 *
 * - Offsets are committed by this class only (kafkajs' auto-commit is off), per partition, at the
 *   first unacked message (partition-tracker.ts), every `COMMIT_INTERVAL_MS` and on close: never
 *   past a message whose data is not durably written by the handler.
 * - A nack, or a message unacked past the ack deadline, rewinds its partition to the first unacked
 *   message (a seek): what follows it in the partition is delivered again unless it was acked.
 * - A rebalance starts a new generation: every partition's unacked work is dropped (its acks are
 *   ignored) and the new owner reads from the committed offset, skipping the holes recorded with
 *   it; nothing acked is lost, unacked messages are delivered again.
 * - Flow control: a partition's batch waits (heartbeating) while the consumer holds
 *   `maxOutstandingMessages` unacked messages.
 */
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { Clock } from '../../../core/clock.js';
import type { DeliveredMessage, MessageHandler, Subscriber } from '../../../core/ports/bus.js';
import type { SubscriptionRecord } from './catalog.js';
import { decodeCommitMetadata, PartitionTracker } from './partition-tracker.js';

export const COMMIT_INTERVAL_MS = 200;

export interface KafkaSubscriberOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly subscription: string;
  readonly record: SubscriptionRecord;
  readonly groupId: string;
  readonly kafkaTopic: string;
  readonly handler: MessageHandler;
  readonly maxOutstandingMessages: number;
  readonly maxBatchMessages: number;
  readonly consumerOptions: { sessionTimeout: number; rebalanceTimeout: number; heartbeatInterval: number };
}

export class KafkaSubscriber implements Subscriber {
  private readonly consumer: Consumer;
  private readonly trackers = new Map<number, PartitionTracker>();
  /** Committed offsets and their metadata read at the start of the current generation. */
  private floors: Promise<Map<number, { offset: number; holes: Array<[number, number]> }>> = Promise.resolve(new Map());
  private generation = 0;
  private closed = false;
  private commitTimer: NodeJS.Timeout | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private committing: Promise<void> = Promise.resolve();
  private readonly capacityWaiters = new Set<() => void>();
  /** Rewinds to a partition's expected offset, to tell a hole in the log from a stale position. */
  private readonly gaps = new Map<number, { offset: number; times: number }>();

  constructor(private readonly o: KafkaSubscriberOptions) {
    this.consumer = o.kafka.consumer({
      groupId: o.groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      ...o.consumerOptions,
    });
  }

  async start(): Promise<void> {
    const c = this.consumer;
    c.on(c.events.GROUP_JOIN, (e) => {
      this.generation++;
      this.trackers.clear();
      this.wakeCapacity();
      const partitions = e.payload.memberAssignment[this.o.kafkaTopic] ?? [];
      this.floors = this.readFloors(partitions);
      // a failure surfaces in the next batch (which awaits it); kafkajs then restarts the consumer
      this.floors.catch((err: unknown) =>
        this.o.logger.warn({ err, subscription: this.o.subscription }, 'reading committed offsets failed'),
      );
      this.o.logger.debug({ subscription: this.o.subscription, partitions }, 'kafka consumer joined its group');
    });
    await c.connect();
    await c.subscribe({ topics: [this.o.kafkaTopic], fromBeginning: true });
    // joining the group takes a rebalance (seconds): delivery starts when it is done, and the
    // caller (a process starting several consumers, the ingress waiting behind them) goes on
    c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: (payload) => this.onBatch(payload),
    }).catch((err: unknown) => {
      this.o.logger.error(
        { err, subscription: this.o.subscription },
        'kafka consumer stopped: no delivery until restarted',
      );
    });
    this.commitTimer = setInterval(() => void this.commitNow(), COMMIT_INTERVAL_MS);
    const deadline = this.o.record.ackDeadlineRealMs;
    this.deadlineTimer = setInterval(() => this.expireDeadlines(), Math.max(20, Math.min(1000, deadline / 4)));
  }

  /** Where each assigned partition starts: this incarnation's committed offset, else the start offset. */
  private async readFloors(partitions: number[]) {
    const out = new Map<number, { offset: number; holes: Array<[number, number]> }>();
    const [topic] = await this.o.admin.fetchOffsets({ groupId: this.o.groupId, topics: [this.o.kafkaTopic] });
    const committed = new Map((topic?.partitions ?? []).map((p) => [p.partition, p]));
    for (const p of partitions) {
      const start = this.o.record.startOffsets[String(p)] ?? 0;
      const c = committed.get(p);
      const meta = decodeCommitMetadata(c?.metadata);
      const offset = Number(c?.offset ?? -1);
      if (meta !== null && meta.incarnation === this.o.record.createdAt && offset >= start) {
        out.set(p, { offset, holes: meta.holes.map(([a, b]) => [a, b]) });
      } else out.set(p, { offset: start, holes: [] });
    }
    return out;
  }

  private outstanding(): number {
    let n = 0;
    for (const t of this.trackers.values()) n += t.outstanding;
    return n;
  }

  private async onBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const generation = this.generation;
    const floors = await this.floors;
    if (generation !== this.generation) return;
    let tracker = this.trackers.get(batch.partition);
    if (tracker === undefined) {
      const f = floors.get(batch.partition) ?? {
        offset: this.o.record.startOffsets[String(batch.partition)] ?? 0,
        holes: [],
      };
      tracker = new PartitionTracker(f.offset, f.holes);
      this.trackers.set(batch.partition, tracker);
    }
    let pending: DeliveredMessage[] = [];
    const flush = () => {
      if (pending.length > 0) this.hand(pending);
      pending = [];
    };
    for (const m of batch.messages) {
      if (!p.isRunning() || p.isStale() || this.closed || generation !== this.generation) break;
      while (this.outstanding() + pending.length >= this.o.maxOutstandingMessages) {
        flush();
        await this.waitCapacity(500);
        if (!p.isRunning() || p.isStale() || this.closed || generation !== this.generation) return;
        await p.heartbeat();
      }
      if (this.trackers.get(batch.partition) !== tracker) return;
      const offset = Number(m.offset);
      if (offset > tracker.expected() && !this.acceptGap(batch.partition, tracker.expected(), offset)) {
        flush();
        return;
      }
      const publishTime = Number(m.timestamp);
      if (tracker.admit(offset, publishTime, Date.now()) === 'deliver') {
        pending.push(this.message(batch.partition, tracker, offset, publishTime, m.value, m.headers));
        if (pending.length >= this.o.maxBatchMessages) flush();
      }
      p.resolveOffset(m.offset);
    }
    flush();
    await p.heartbeat();
  }

  /**
   * The fetch position must not be past what this generation has seen: the consumer library may
   * resume a partition from a position of its own (after a rebalance, or a seek of an earlier
   * generation), and delivering from there would let the commit pass messages never delivered.
   * So the partition is rewound to the expected offset; only when the same hole comes back three
   * times are the offsets taken as gone from the log (deleted by retention), and passed.
   */
  private acceptGap(partition: number, expected: number, fetched: number): boolean {
    const gap = this.gaps.get(partition);
    const times = gap?.offset === expected ? gap.times + 1 : 1;
    if (times <= 3) {
      this.gaps.set(partition, { offset: expected, times });
      this.o.logger.debug({ partition, expected, fetched }, 'fetched past the expected offset: rewinding');
      this.consumer.seek({ topic: this.o.kafkaTopic, partition, offset: String(expected) });
      return false;
    }
    this.gaps.delete(partition);
    this.o.logger.warn(
      { subscription: this.o.subscription, partition, from: expected, to: fetched },
      'offsets missing from the log (deleted by retention before they were consumed)',
    );
    return true;
  }

  private message(
    partition: number,
    tracker: PartitionTracker,
    offset: number,
    publishTime: number,
    value: Buffer | null,
    headers: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined,
  ): DeliveredMessage {
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers ?? {})) {
      if (v === undefined) continue;
      const one = Array.isArray(v) ? v[v.length - 1] : v;
      attributes[k] = one === undefined ? '' : one.toString();
    }
    let settled = false;
    return {
      id: `${partition}:${offset}`,
      data: value ?? Buffer.alloc(0),
      attributes,
      publishTime,
      deliveryAttempt: 1,
      ack: () => {
        if (settled) return;
        settled = true;
        if (this.trackers.get(partition) === tracker) {
          tracker.ack(offset);
          this.wakeCapacity();
        }
      },
      nack: () => {
        if (settled) return;
        settled = true;
        if (this.trackers.get(partition) === tracker) this.rewind(partition, tracker);
      },
    };
  }

  private hand(messages: DeliveredMessage[]): void {
    const nackAll = (err: unknown) => {
      this.o.logger.warn({ err, subscription: this.o.subscription }, 'message handler failed: its messages are nacked');
      for (const m of messages) m.nack();
    };
    try {
      const r = this.o.handler(messages);
      if (r instanceof Promise) r.catch(nackAll);
    } catch (err) {
      nackAll(err);
    }
  }

  /** Delivers the partition again from its first unacked message, keeping what was acked after it. */
  private rewind(partition: number, tracker: PartitionTracker): void {
    const oldest = tracker.oldestUnacked();
    if (oldest === null || this.closed) return;
    const next = new PartitionTracker(oldest.offset, tracker.holes());
    this.trackers.set(partition, next);
    this.wakeCapacity();
    try {
      this.consumer.seek({ topic: this.o.kafkaTopic, partition, offset: String(oldest.offset) });
    } catch (err) {
      // not running (closing): the next consumer reads from the committed offset
      this.o.logger.debug({ err, partition }, 'seek refused');
    }
  }

  private expireDeadlines(): void {
    const now = Date.now();
    for (const [partition, tracker] of this.trackers) {
      const oldest = tracker.oldestUnacked();
      if (oldest !== null && now - oldest.deliveredAtReal >= this.o.record.ackDeadlineRealMs) {
        this.o.logger.debug(
          { subscription: this.o.subscription, partition, offset: oldest.offset },
          'ack deadline passed',
        );
        this.rewind(partition, tracker);
      }
    }
  }

  private waitCapacity(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.capacityWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.capacityWaiters.add(done);
    });
  }

  private wakeCapacity(): void {
    for (const w of [...this.capacityWaiters]) w();
  }

  /** Commits every partition whose commit point or holes changed. */
  commitNow(): Promise<void> {
    this.committing = this.committing.then(async () => {
      const generation = this.generation;
      const now = this.o.clock.now();
      const writes: Array<{ partition: number; tracker: PartitionTracker; offset: number; metadata: string }> = [];
      for (const [partition, tracker] of this.trackers) {
        const c = tracker.pendingCommit(this.o.record.createdAt, now);
        if (c !== null) writes.push({ partition, tracker, ...c });
      }
      if (writes.length === 0) return;
      try {
        await this.consumer.commitOffsets(
          writes.map((w) => ({
            topic: this.o.kafkaTopic,
            partition: w.partition,
            offset: String(w.offset),
            metadata: w.metadata,
          })),
        );
        if (generation === this.generation) for (const w of writes) w.tracker.committed(w.offset, w.metadata);
      } catch (err) {
        // a rebalance in progress or a lost generation: the next owner reads from the last commit
        this.o.logger.debug({ err, subscription: this.o.subscription }, 'offset commit failed; retried');
      }
    });
    return this.committing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.commitTimer) clearInterval(this.commitTimer);
    if (this.deadlineTimer) clearInterval(this.deadlineTimer);
    await this.commitNow();
    this.closed = true;
    this.wakeCapacity();
    await this.consumer.disconnect().catch((err: unknown) => {
      this.o.logger.warn({ err, subscription: this.o.subscription }, 'kafka consumer did not disconnect cleanly');
    });
    this.trackers.clear();
  }
}
