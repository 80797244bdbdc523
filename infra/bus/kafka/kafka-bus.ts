/**
 * The Kafka bus (kafkajs).
 *
 * Names: a port topic `t` is the Kafka topic `<topicPrefix>t`; a subscription `s` is the consumer
 * group `<topicPrefix>s`. Which topics and subscriptions exist is kept in the bus catalog (a
 * topic of its own, see catalog.ts), because Kafka has no subscription object and brokers differ
 * in what they allow.
 *
 * Messages: the payload is the record value, the attributes are record headers, the key is the
 * attribute `id` (the event id) when present, the record timestamp is the bus clock at publish.
 *
 * Durability: `publish` resolves once every record of the call is acknowledged by all in-sync
 * replicas of its partition (`acks: -1`); what that protects against follows from the topic's
 * replication factor and the brokers' `min.insync.replicas`. The producer is idempotent unless
 * `idempotent: false` (it needs a controller broker for its producer id; librdkafka's mock
 * cluster advertises none). A failure of any record → PublishFailed (others may be stored:
 * duplicates, never loss).
 *
 * Topics: created with `partitions` and `replicationFactor` through the admin API. A broker that
 * refuses CreateTopics (no controller, or no such API) gets the topic by auto-creation on first
 * use, with the broker's default partition count; this is logged once. Deleting a topic deletes
 * it on the broker where it allows, otherwise (logged) only from the catalog: publish then refuses
 * it, and the broker's retention removes its data.
 *
 * Subscriptions: a subscription records each partition's end offset when it is created and
 * delivers from there. Consumers commit offsets as subscriber.ts describes.
 *
 * Backlog (estimate, `exactBacklog` false): messages = end offset − committed offset (or the start
 * offset before the first commit) − acked holes, per partition. The oldest unacked publish time is
 * the one recorded with the last commit when that message had been delivered; otherwise the time of
 * the last commit (or the subscription's creation): then the message was published after that
 * time, or shortly before it while still being fetched.
 */
import { type Admin, Kafka, type KafkaConfig, logLevel, type Producer, type SASLOptions } from 'kafkajs';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../../core/clock.js';
import {
  BusClosed,
  HourglassError,
  InvalidName,
  PublishFailed,
  SubscriptionNotFound,
  TopicNotFound,
} from '../../../core/errors.js';
import {
  type Backlog,
  BUS_NAME_PATTERN,
  type Bus,
  type BusCapabilities,
  type MessageHandler,
  type OutgoingMessage,
  type SubscribeOptions,
  type Subscriber,
  type SubscriptionOptions,
} from '../../../core/ports/bus.js';
import { KafkaCatalog } from './catalog.js';
import { decodeCommitMetadata, rangesSize } from './partition-tracker.js';
import { KafkaSubscriber } from './subscriber.js';

export interface KafkaBusOptions {
  readonly brokers: readonly string[];
  readonly clientId?: string;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Prepended to every topic and consumer group (several pipelines on one cluster). Default ''. */
  readonly topicPrefix?: string;
  /** Partitions of a new topic. Default 3. */
  readonly partitions?: number;
  /** Replication factor of a new topic; -1 = the broker's default. */
  readonly replicationFactor?: number;
  /** Idempotent producer. Default true. */
  readonly idempotent?: boolean;
  readonly ssl?: boolean;
  readonly sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string } | null;
  /** Ack deadline of subscriptions created without `ackDeadlineMs`, real ms. Default 60 s. */
  readonly defaultAckDeadlineRealMs?: number;
  /** Consumer group session timeout, real ms. Default 10 s. */
  readonly sessionTimeoutRealMs?: number;
  /** Time members get to rejoin in a rebalance, real ms. Default 10 s. */
  readonly rebalanceTimeoutRealMs?: number;
  /** Time limit of one request to a broker, real ms. Default 30 s. */
  readonly requestTimeoutRealMs?: number;
}

/**
 * Bytes of records per produce request (queued calls are joined up to it): a broker refuses record
 * batches over its `message.max.bytes` (1 MB by default).
 */
const MAX_CALL_BYTES = 768 * 1024;
/** Produce requests in flight at once; calls arriving meanwhile are queued and sent together. */
const MAX_SENDS = 4;

interface KafkaRecord {
  readonly key: string | null;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: string;
}

interface QueuedCall {
  readonly topic: string;
  readonly records: KafkaRecord[];
  readonly bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}
const CATALOG = 'hourglass.bus-catalog';
/** Kafka's topic name rule. */
const KAFKA_NAME = /^[A-Za-z0-9._-]{1,249}$/;

export class KafkaBus implements Bus {
  readonly backend = 'kafka';
  readonly capabilities: BusCapabilities;
  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly admin: Admin;
  private readonly producer: Producer;
  private readonly catalog: KafkaCatalog;
  private connected: Promise<void> | null = null;
  private closed = false;
  private noController = false;
  private readonly subscribers = new Set<KafkaSubscriber>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly queue: QueuedCall[] = [];
  private sends = 0;
  private readonly consumerOptions: { sessionTimeout: number; rebalanceTimeout: number; heartbeatInterval: number };

  constructor(private readonly o: KafkaBusOptions) {
    this.logger = (o.logger ?? pino({ level: 'silent' })).child({ component: 'kafka-bus' });
    this.prefix = o.topicPrefix ?? '';
    const config: KafkaConfig = {
      clientId: o.clientId ?? 'hourglass',
      brokers: [...o.brokers],
      ssl: o.ssl ?? false,
      requestTimeout: o.requestTimeoutRealMs ?? 30_000,
      connectionTimeout: 5_000,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 5_000 },
      logLevel: logLevel.NOTHING,
      ...(o.sasl ? { sasl: o.sasl as SASLOptions } : {}),
    };
    this.kafka = new Kafka(config);
    this.admin = this.kafka.admin();
    const idempotent = o.idempotent ?? true;
    this.producer = this.kafka.producer({
      idempotent,
      allowAutoTopicCreation: true,
      ...(idempotent ? { maxInFlightRequests: 5 } : {}),
    });
    const session = o.sessionTimeoutRealMs ?? 10_000;
    this.consumerOptions = {
      sessionTimeout: session,
      rebalanceTimeout: o.rebalanceTimeoutRealMs ?? 10_000,
      heartbeatInterval: Math.max(100, Math.floor(session / 5)),
    };
    this.capabilities = {
      exactBacklog: false,
      countsDeliveryAttempts: false,
      // a dead member leaves the group after its session timeout; the rebalance hands its partitions on
      redeliveryWithinRealMs: session + this.consumerOptions.rebalanceTimeout,
    };
    this.catalog = new KafkaCatalog(
      this.kafka,
      this.admin,
      this.producer,
      `${this.prefix}${CATALOG}`,
      this.logger,
      this.consumerOptions,
    );
  }

  /** Connects the admin client and the producer, and reads the catalog. */
  private ready(): Promise<void> {
    if (this.closed) return Promise.reject(new BusClosed());
    this.connected ??= (async () => {
      await this.admin.connect();
      const cluster = await this.admin.describeCluster();
      if (!cluster.brokers.some((b) => b.nodeId === cluster.controller)) {
        // CreateTopics and DeleteTopics go to the controller: refused at once instead of retried
        this.noController = true;
        this.logger.warn(
          { controller: cluster.controller },
          "the cluster advertises no controller broker: topics are created by auto-creation (the broker's default partition count and settings) and deleted from the bus catalog only",
        );
      }
      try {
        await this.producer.connect();
      } catch (err) {
        if ((err as Error).name === 'KafkaJSBrokerNotFound' && (this.o.idempotent ?? true)) {
          throw new PublishFailed(
            { topic: '(connect)' },
            {
              cause: new Error(
                "the cluster advertises no controller broker, which the idempotent producer needs for its producer id (librdkafka's mock cluster does this): set kafka.idempotent to false there",
              ),
            },
          );
        }
        throw err;
      }
      await this.catalog.start((t) => this.ensureKafkaTopic(t, 1, true));
    })();
    this.connected.catch(() => {
      this.connected = null;
    });
    return this.connected;
  }

  private kafkaName(kind: 'topic' | 'subscription', name: string): string {
    if (!BUS_NAME_PATTERN.test(name)) {
      throw new InvalidName({ kind, name, rule: 'letters, digits, ".", "_", "-"; 3–200 characters; a letter first' });
    }
    const full = `${this.prefix}${name}`;
    if (!KAFKA_NAME.test(full)) {
      throw new InvalidName({
        kind,
        name,
        rule: 'with the topic prefix, at most 249 of letters, digits, ".", "_", "-"',
      });
    }
    return full;
  }

  /** Creates a Kafka topic where the broker allows it, else by auto-creation. */
  private async ensureKafkaTopic(topic: string, partitions: number, compact = false): Promise<void> {
    if (!this.noController) {
      try {
        await this.admin.createTopics({
          waitForLeaders: true,
          topics: [
            {
              topic,
              numPartitions: partitions,
              replicationFactor: this.o.replicationFactor ?? -1,
              ...(compact ? { configEntries: [{ name: 'cleanup.policy', value: 'compact' }] } : {}),
            },
          ],
        });
        return;
      } catch (err) {
        const e = err as Error & { type?: string };
        if (e.type === 'TOPIC_ALREADY_EXISTS') return;
        if (e.name !== 'KafkaJSServerDoesNotSupportApiKey') throw err;
        this.logger.warn(
          { topic, reason: e.message },
          'the cluster refuses CreateTopics: the topic is created by auto-creation',
        );
      }
    }
    await this.admin.fetchTopicMetadata({ topics: [topic] });
  }

  async createTopic(topic: string): Promise<void> {
    const name = this.kafkaName('topic', topic);
    await this.ready();
    if (this.catalog.topics.has(topic)) return;
    await this.catalog.sync();
    if (this.catalog.topics.has(topic)) return;
    await this.ensureKafkaTopic(name, this.o.partitions ?? 3);
    await this.catalog.putTopic(topic, { createdAt: this.o.clock.now() });
  }

  async deleteTopic(topic: string): Promise<void> {
    const name = this.kafkaName('topic', topic);
    await this.ready();
    await this.catalog.sync();
    for (const [sub, rec] of this.catalog.subscriptions) {
      if (rec.topic === topic) await this.deleteSubscription(sub);
    }
    if (!this.catalog.topics.has(topic)) return;
    await this.catalog.putTopic(topic, null);
    if (this.noController) return;
    await this.admin.deleteTopics({ topics: [name] }).catch((err: unknown) => {
      this.logger.warn(
        { err, topic: name },
        "the cluster refused DeleteTopics: the topic is removed from the bus catalog; its data stays until the broker's retention removes it",
      );
    });
  }

  async listTopics(): Promise<string[]> {
    await this.ready();
    await this.catalog.sync();
    return [...this.catalog.topics.keys()].sort();
  }

  async createSubscription(subscription: string, topic: string, options: SubscriptionOptions = {}): Promise<void> {
    this.kafkaName('subscription', subscription);
    const kafkaTopic = this.kafkaName('topic', topic);
    await this.ready();
    await this.catalog.sync();
    if (!this.catalog.topics.has(topic)) throw new TopicNotFound({ topic });
    const existing = this.catalog.subscriptions.get(subscription);
    if (existing !== undefined) {
      if (existing.topic === topic) return;
      throw new InvalidName({ kind: 'subscription', name: subscription, rule: `exists for topic ${existing.topic}` });
    }
    const offsets = await this.admin.fetchTopicOffsets(kafkaTopic);
    const startOffsets: Record<string, number> = {};
    for (const o of offsets) startOffsets[String(o.partition)] = Number(o.high);
    await this.catalog.putSubscription(subscription, {
      topic,
      startOffsets,
      createdAt: this.o.clock.now(),
      ackDeadlineRealMs:
        options.ackDeadlineMs !== undefined
          ? Math.max(1, this.o.clock.toRealMs(options.ackDeadlineMs))
          : (this.o.defaultAckDeadlineRealMs ?? 60_000),
    });
  }

  async deleteSubscription(subscription: string): Promise<void> {
    const group = this.kafkaName('subscription', subscription);
    await this.ready();
    await this.catalog.sync();
    if (!this.catalog.subscriptions.has(subscription)) return;
    await this.catalog.putSubscription(subscription, null);
    await this.admin.deleteGroups([group]).catch((err: unknown) => {
      this.logger.debug({ err, group }, 'consumer group not deleted by the cluster (the catalog no longer lists it)');
    });
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new BusClosed({ topic });
    const kafkaTopic = this.kafkaName('topic', topic);
    try {
      await this.ready();
      if (!this.catalog.topics.has(topic)) await this.catalog.sync();
    } catch (err) {
      // the cluster unreachable: the ingress answers 503 and the producer retries
      if (err instanceof HourglassError) throw err;
      throw new PublishFailed({ topic, messages: messages.length }, { cause: err });
    }
    if (!this.catalog.topics.has(topic)) throw new TopicNotFound({ topic });
    if (messages.length === 0) return;
    const timestamp = String(this.o.clock.now());
    // a call over MAX_CALL_BYTES is queued in parts (each part is one produce request at most)
    const parts: Promise<void>[] = [];
    let records: KafkaRecord[] = [];
    let bytes = 0;
    const queuePart = () => {
      const part = { records, bytes };
      parts.push(
        new Promise<void>((resolve, reject) => {
          this.queue.push({ topic: kafkaTopic, records: part.records, bytes: part.bytes, resolve, reject });
        }),
      );
      records = [];
      bytes = 0;
    };
    for (const m of messages) {
      let size = m.data.length + 64;
      for (const k in m.attributes) size += k.length + (m.attributes[k] as string).length;
      if (records.length > 0 && bytes + size > MAX_CALL_BYTES) queuePart();
      records.push({ key: m.attributes.id ?? null, value: m.data, headers: m.attributes, timestamp });
      bytes += size;
    }
    queuePart();
    const sending = Promise.all(parts).then(() => undefined);
    this.inFlight.add(sending);
    this.flush();
    try {
      await sending;
    } catch (err) {
      if (this.closed) throw new BusClosed({ topic });
      throw new PublishFailed({ topic, messages: messages.length }, { cause: err });
    } finally {
      this.inFlight.delete(sending);
    }
  }

  /**
   * Sends what publish calls queued, as few produce requests as possible: calls that arrive while
   * `MAX_SENDS` requests are in flight wait and go together in the next one (up to
   * MAX_CALL_BYTES; a larger call goes alone). Each call's promise settles with its request.
   */
  private flush(): void {
    while (this.sends < MAX_SENDS && this.queue.length > 0) {
      const batch: QueuedCall[] = [];
      let bytes = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0] as QueuedCall;
        if (batch.length > 0 && bytes + next.bytes > MAX_CALL_BYTES) break;
        batch.push(next);
        bytes += next.bytes;
        this.queue.shift();
      }
      const byTopic = new Map<string, KafkaRecord[]>();
      for (const c of batch) {
        const list = byTopic.get(c.topic);
        if (list === undefined) byTopic.set(c.topic, [...c.records]);
        else for (const r of c.records) list.push(r);
      }
      this.sends++;
      this.producer
        .sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) })
        .then(
          () => {
            for (const c of batch) c.resolve();
          },
          (err: unknown) => {
            for (const c of batch) c.reject(err);
          },
        )
        .finally(() => {
          this.sends--;
          this.flush();
        });
    }
  }

  async subscribe(subscription: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<Subscriber> {
    const groupId = this.kafkaName('subscription', subscription);
    await this.ready();
    await this.catalog.sync();
    const record = this.catalog.subscriptions.get(subscription);
    if (record === undefined) throw new SubscriptionNotFound({ subscription });
    const subscriber = new KafkaSubscriber({
      kafka: this.kafka,
      admin: this.admin,
      clock: this.o.clock,
      logger: this.logger,
      subscription,
      record,
      groupId,
      kafkaTopic: `${this.prefix}${record.topic}`,
      handler,
      maxOutstandingMessages: options.maxOutstandingMessages ?? 10_000,
      maxBatchMessages: options.maxBatchMessages ?? 1_000,
      consumerOptions: this.consumerOptions,
    });
    await subscriber.start();
    this.subscribers.add(subscriber);
    const close = subscriber.close.bind(subscriber);
    subscriber.close = async () => {
      this.subscribers.delete(subscriber);
      await close();
    };
    return subscriber;
  }

  async backlog(subscription: string): Promise<Backlog> {
    const groupId = this.kafkaName('subscription', subscription);
    await this.ready();
    // read every few seconds by metrics and alerting: the followed catalog answers, a miss reads it up to date
    if (!this.catalog.subscriptions.has(subscription)) await this.catalog.sync();
    const record = this.catalog.subscriptions.get(subscription);
    if (record === undefined) throw new SubscriptionNotFound({ subscription });
    const kafkaTopic = `${this.prefix}${record.topic}`;
    const [ends, [committed]] = await Promise.all([
      this.admin.fetchTopicOffsets(kafkaTopic),
      this.admin.fetchOffsets({ groupId, topics: [kafkaTopic] }),
    ]);
    const byPartition = new Map((committed?.partitions ?? []).map((p) => [p.partition, p]));
    let messages = 0;
    let oldest: number | null = null;
    for (const end of ends) {
      const high = Number(end.high);
      const start = record.startOffsets[String(end.partition)] ?? 0;
      const c = byPartition.get(end.partition);
      const meta = decodeCommitMetadata(c?.metadata);
      const ours = meta !== null && meta.incarnation === record.createdAt && Number(c?.offset ?? -1) >= start;
      const base = ours ? Number(c?.offset) : Math.max(start, Number(end.low));
      const holes = ours
        ? rangesSize(meta.holes.filter(([a]) => a >= base && a < high).map(([a, b]) => [a, Math.min(b, high - 1)]))
        : 0;
      const lag = Math.max(0, high - base - holes);
      if (lag === 0) continue;
      messages += lag;
      const t = ours ? (meta.oldestPublishTime ?? meta.at) : record.createdAt;
      oldest = oldest === null ? t : Math.min(oldest, t);
    }
    return { messages, oldestUnackedPublishTime: oldest };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    for (const s of [...this.subscribers]) await s.close();
    await this.catalog.close();
    for (const [what, client] of [
      ['producer', this.producer],
      ['admin client', this.admin],
    ] as const) {
      await client
        .disconnect()
        .catch((err: unknown) => this.logger.warn({ err }, `kafka ${what} did not disconnect cleanly`));
    }
  }
}
