/**
 * The Kafka bus's catalog: which topics and subscriptions exist, kept in Kafka itself.
 *
 * Kafka has topics but no subscription object (a consumer group comes into being when a consumer
 * joins), and brokers differ in what they allow: a broker may refuse CreateTopics, DeleteTopics
 * or DeleteGroups, or create any topic a client names (auto-creation). So the bus records its own
 * view in a catalog topic, `<prefix>hourglass.bus-catalog`, as keyed records that later records
 * of the same key replace (the topic is created compacted where the broker allows it):
 *
 *   `topic/<name>`        → {"createdAt": t}                  or null (deleted)
 *   `subscription/<name>` → {"topic", "startOffsets", "createdAt", "ackDeadlineRealMs"} or null
 *
 * Every bus instance reads the catalog from the start with a consumer of its own and keeps
 * following it; `sync()` waits until everything written before the call has been read, so a
 * process sees what another one created before it.
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { BusClosed } from '../../../core/errors.js';

export interface TopicRecord {
  readonly createdAt: number;
}

export interface SubscriptionRecord {
  readonly topic: string;
  /** Offset per partition at creation: the subscription gets the messages from there on. */
  readonly startOffsets: Readonly<Record<string, number>>;
  readonly createdAt: number;
  readonly ackDeadlineRealMs: number;
}

const TOPIC = 'topic/';
const SUBSCRIPTION = 'subscription/';

export class KafkaCatalog {
  readonly topics = new Map<string, TopicRecord>();
  readonly subscriptions = new Map<string, SubscriptionRecord>();
  /** Offset after the last record read, per catalog partition. */
  private readonly applied = new Map<number, number>();
  private consumer: Consumer | null = null;
  private started: Promise<void> | null = null;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly producer: Producer,
    readonly topic: string,
    private readonly logger: Logger,
    private readonly consumerOptions: { sessionTimeout: number; rebalanceTimeout: number; heartbeatInterval: number },
  ) {}

  /** Starts following the catalog (once); resolves when the consumer has joined. */
  start(ensureTopic: (topic: string) => Promise<void>): Promise<void> {
    this.started ??= (async () => {
      await ensureTopic(this.topic);
      const consumer = this.kafka.consumer({
        groupId: `${this.topic}.reader-${randomBytes(6).toString('hex')}`,
        allowAutoTopicCreation: false,
        // a broker answers a fetch when data arrives; some (the mock cluster) only after the wait
        maxWaitTimeInMs: 250,
        ...this.consumerOptions,
      });
      this.consumer = consumer;
      const joined = new Promise<void>((resolve) => {
        consumer.on(consumer.events.GROUP_JOIN, () => resolve());
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          this.apply(message.key?.toString() ?? '', message.value);
          this.applied.set(partition, Number(message.offset) + 1);
          for (const w of this.waiters) w();
        },
      });
      await joined;
    })();
    return this.started;
  }

  private apply(key: string, value: Buffer | null): void {
    try {
      if (key.startsWith(TOPIC)) {
        const name = key.slice(TOPIC.length);
        if (value === null) this.topics.delete(name);
        else this.topics.set(name, JSON.parse(value.toString()) as TopicRecord);
      } else if (key.startsWith(SUBSCRIPTION)) {
        const name = key.slice(SUBSCRIPTION.length);
        if (value === null) this.subscriptions.delete(name);
        else this.subscriptions.set(name, JSON.parse(value.toString()) as SubscriptionRecord);
      }
    } catch (err) {
      this.logger.warn({ err, key }, 'unreadable bus catalog record ignored');
    }
  }

  /** Waits until every record written before this call has been read. */
  async sync(timeoutMs = 30_000): Promise<void> {
    if (this.closed) throw new BusClosed();
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    const caughtUp = () =>
      offsets.every((o) => Number(o.high) <= Number(o.low) || (this.applied.get(o.partition) ?? 0) >= Number(o.high));
    await this.waitFor(caughtUp, timeoutMs);
  }

  private waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`bus catalog ${this.topic} not read up to date within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (this.closed) {
          clearTimeout(timer);
          this.waiters.delete(check);
          reject(new BusClosed());
        } else if (cond()) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        }
      };
      this.waiters.add(check);
    });
  }

  putTopic(name: string, record: TopicRecord | null): Promise<void> {
    return this.write(`${TOPIC}${name}`, record);
  }

  putSubscription(name: string, record: SubscriptionRecord | null): Promise<void> {
    return this.write(`${SUBSCRIPTION}${name}`, record);
  }

  /** Writes a record and waits until this instance has read it back. */
  private async write(key: string, record: object | null): Promise<void> {
    const [meta] = await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: [{ key, value: record === null ? null : JSON.stringify(record) }],
    });
    if (meta === undefined || meta.baseOffset === undefined) {
      await this.sync();
      return;
    }
    const partition = meta.partition;
    const offset = Number(meta.baseOffset);
    await this.waitFor(() => (this.applied.get(partition) ?? 0) > offset, 30_000);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters) w();
    await this.consumer?.disconnect().catch((err: unknown) => {
      this.logger.warn({ err }, 'bus catalog reader did not disconnect cleanly');
    });
  }
}
