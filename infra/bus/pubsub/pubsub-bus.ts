/**
 * The Google Cloud Pub/Sub bus.
 *
 * Names: a port name `n` is the topic / subscription `projects/<projectId>/topics/<topicPrefix>n`
 * (and `…/subscriptions/…`); see names.ts for the rules. Several deployments (or test runs) share
 * a project by using different prefixes; `listTopics` lists this prefix's topics only.
 *
 * Connection: Google's endpoint with Application Default Credentials, or an emulator / fake at
 * `apiEndpoint` or `PUBSUB_EMULATOR_HOST` (plain gRPC, no credentials).
 *
 * Durability: `publish` resolves once Pub/Sub has answered the publish request of every message
 * of the call with a message id, which the service does once it has stored the message (Google's
 * Pub/Sub documentation states how it is replicated; an emulator or the fake keep it in memory
 * only). Calls of up to 1,000 messages and
 * ~9 MiB are one request, larger ones several in parallel; a failure of any → PublishFailed (the
 * others may be delivered: duplicates, never loss). Retries of the client library are bounded by
 * `requestTimeoutRealMs`.
 *
 * Attributes are sent as they are. Pub/Sub's limits apply: at most 100 attributes, keys of at
 * most 256 bytes not starting with `goog`, values of at most 1,024 bytes; a message over them is
 * refused (PublishFailed). An empty value is carried as it is (in protobuf a map entry with an
 * empty value is the same as its default, and comes back as "").
 *
 * Delivery: the library's streaming pull, flow control (`maxOutstandingMessages`, no excess
 * messages) and lease management, batches of messages that arrive within a few ms (up to
 * `maxBatchMessages`), and the bus's ack deadline enforced by the consumer (see subscriber.ts).
 * `deliveryAttempt` is Pub/Sub's count where it gives one (subscriptions with a dead-letter
 * policy), else 1. `publishTime` is Pub/Sub's, as a time of the bus clock.
 *
 * Ack deadline: a subscription's deadline (`ackDeadlineMs` in bus-clock ms, or
 * `defaultAckDeadlineRealMs`) is kept, in real ms, in its label `hourglass-ack-deadline-real-ms`;
 * Pub/Sub's own `ackDeadlineSeconds` is that rounded up to whole seconds, at least 10 and at most
 * 600 (Pub/Sub's bounds), and only matters when a consumer dies.
 *
 * Backlog: an in-process estimate (`capabilities.exactBacklog` is false); backlog-estimate.ts
 * states exactly what it counts.
 */
import { Duration, PubSub, type Subscription, v1 } from '@google-cloud/pubsub';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../../core/clock.js';
import { BusClosed, InvalidName, SubscriptionNotFound, TopicNotFound } from '../../../core/errors.js';
import type {
  Backlog,
  Bus,
  BusCapabilities,
  MessageHandler,
  OutgoingMessage,
  SubscribeOptions,
  Subscriber,
  SubscriptionOptions,
} from '../../../core/ports/bus.js';
import { BacklogEstimate } from './backlog-estimate.js';
import { busError, isAlreadyExists, isNotFound } from './errors.js';
import { PubSubNames } from './names.js';
import { ACK_BATCH_MS, PubSubSubscriber } from './subscriber.js';

export interface PubSubBusOptions {
  readonly projectId: string;
  /** Prepended to every topic and subscription id. Default ''. */
  readonly topicPrefix?: string;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** `HOST:PORT` of an emulator or fake; default `PUBSUB_EMULATOR_HOST`, else Google's endpoint. */
  readonly apiEndpoint?: string;
  /** Ack deadline of subscriptions created without `ackDeadlineMs`, real ms. Default 60 s. */
  readonly defaultAckDeadlineRealMs?: number;
  /** Time limit of one call to Pub/Sub, the library's retries included, real ms. Default 30 s. */
  readonly requestTimeoutRealMs?: number;
  /** Messages per subscription the backlog estimate holds at most. Default 100,000. */
  readonly maxTrackedMessages?: number;
  /**
   * Streaming pull connections per subscriber (at most `maxOutstandingMessages`). Default 5, as
   * the client library's. One stream carries ~10 MB/s of the cloud service; the test fake sends
   * about one message per stream every 10 ms, so its tests use more.
   */
  readonly pullStreams?: number;
}

type PublisherClient = InstanceType<typeof v1.PublisherClient>;
type PubsubMessage = { data: Buffer; attributes: Readonly<Record<string, string>> };

/** Label of a subscription holding the bus's ack deadline, real ms. */
const DEADLINE_LABEL = 'hourglass-ack-deadline-real-ms';
/** Pub/Sub's bounds of a subscription's ack deadline, seconds. */
const MIN_ACK_SECONDS = 10;
const MAX_ACK_SECONDS = 600;
/** Pub/Sub refuses publish requests over 1,000 messages or 10 MB. */
const MAX_REQUEST_MESSAGES = 1000;
const MAX_REQUEST_BYTES = 9 * 1024 * 1024;
/** Time the library gets to send the nacks and acks of a closing consumer. */
const CLOSE_TIMEOUT = Duration.from({ seconds: 10 });

export class PubSubBus implements Bus {
  readonly backend = 'pubsub';
  readonly capabilities: BusCapabilities;
  private readonly names: PubSubNames;
  private readonly pubsub: PubSub;
  private publisher: Promise<PublisherClient> | null = null;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly defaultAckDeadlineRealMs: number;
  private readonly gaxOpts: { timeout: number };
  private readonly estimate: BacklogEstimate;
  private readonly pullStreams: number;
  private readonly subscribers = new Set<PubSubSubscriber>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(options: PubSubBusOptions) {
    this.names = new PubSubNames(options.projectId, options.topicPrefix ?? '');
    this.clock = options.clock;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'pubsub-bus' });
    this.defaultAckDeadlineRealMs = options.defaultAckDeadlineRealMs ?? 60_000;
    this.capabilities = {
      exactBacklog: false,
      countsDeliveryAttempts: false,
      // a dead client's leases end with Pub/Sub's own deadline (whole seconds, 10–600)
      redeliveryWithinRealMs:
        Math.min(MAX_ACK_SECONDS, Math.max(MIN_ACK_SECONDS, Math.ceil(this.defaultAckDeadlineRealMs / 1000))) * 1000,
    };
    this.gaxOpts = { timeout: options.requestTimeoutRealMs ?? 30_000 };
    this.pullStreams = Math.max(1, options.pullStreams ?? 5);
    this.estimate = new BacklogEstimate(options.maxTrackedMessages ?? 100_000, (subscription) =>
      this.logger.warn({ subscription }, 'pubsub: backlog estimate full; its figure is now a lower bound'),
    );
    const endpoint = options.apiEndpoint ?? process.env.PUBSUB_EMULATOR_HOST;
    const emulated = endpoint !== undefined && endpoint !== '' && !/\.googleapis\.com(:\d+)?\/?$/.test(endpoint);
    this.pubsub = new PubSub({
      projectId: options.projectId,
      ...(options.apiEndpoint !== undefined ? { apiEndpoint: options.apiEndpoint } : {}),
      // An emulator takes no credentials; naming the universe spares the client library a lookup
      // of the GCE metadata server (which fails, with a warning, off Google Cloud).
      ...(emulated ? { emulatorMode: true, universeDomain: 'googleapis.com' } : {}),
    });
  }

  async createTopic(topic: string): Promise<void> {
    this.assertOpen();
    this.names.check('topic', topic);
    try {
      await this.pubsub.createTopic(this.names.topic(topic), this.gaxOpts);
    } catch (err) {
      if (!isAlreadyExists(err)) throw busError(err, { topic, missing: 'topic' });
    }
  }

  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    this.names.check('topic', topic);
    const handle = this.pubsub.topic(this.names.topic(topic));
    let subscriptions: string[] = [];
    try {
      const [subs] = await handle.getSubscriptions({ gaxOpts: this.gaxOpts });
      subscriptions = subs.map((s) => s.name);
    } catch (err) {
      if (!isNotFound(err)) throw busError(err, { topic, missing: 'topic' });
    }
    for (const name of subscriptions) {
      const port = this.names.subscriptionName(name);
      if (port !== null) await this.closeSubscribers(port);
      await this.pubsub
        .subscription(name)
        .delete(this.gaxOpts)
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw busError(err, { topic, missing: 'topic' });
        });
      if (port !== null) this.estimate.untrack(port);
    }
    try {
      await handle.delete(this.gaxOpts);
    } catch (err) {
      if (!isNotFound(err)) throw busError(err, { topic, missing: 'topic' });
    }
    this.estimate.untrackTopic(topic);
  }

  async listTopics(): Promise<string[]> {
    this.assertOpen();
    try {
      const [topics] = await this.pubsub.getTopics({ autoPaginate: true, gaxOpts: this.gaxOpts });
      return topics
        .map((t) => this.names.topicName(t.name))
        .filter((n): n is string => n !== null)
        .sort();
    } catch (err) {
      throw busError(err, { topic: `${this.names.prefix}*`, missing: 'topic' });
    }
  }

  async createSubscription(subscription: string, topic: string, options: SubscriptionOptions = {}): Promise<void> {
    this.assertOpen();
    this.names.check('subscription', subscription);
    if (!this.names.valid(topic)) throw new TopicNotFound({ topic });
    const deadlineRealMs = Math.max(
      1,
      Math.ceil(
        options.ackDeadlineMs !== undefined
          ? this.clock.toRealMs(options.ackDeadlineMs)
          : this.defaultAckDeadlineRealMs,
      ),
    );
    const ackDeadlineSeconds = Math.min(MAX_ACK_SECONDS, Math.max(MIN_ACK_SECONDS, Math.ceil(deadlineRealMs / 1000)));
    try {
      await this.pubsub.topic(this.names.topic(topic)).createSubscription(this.names.subscription(subscription), {
        ackDeadlineSeconds,
        labels: { [DEADLINE_LABEL]: String(deadlineRealMs) },
        gaxOpts: this.gaxOpts,
      });
    } catch (err) {
      if (!isAlreadyExists(err)) throw busError(err, { topic, subscription, missing: 'topic' });
      const existing = await this.metadata(subscription);
      if (existing.topic !== this.names.topic(topic)) {
        throw new InvalidName({
          kind: 'subscription',
          name: subscription,
          rule: `already exists on topic ${this.names.topicName(existing.topic ?? '') ?? existing.topic}`,
        });
      }
    }
    this.estimate.track(subscription, topic);
  }

  async deleteSubscription(subscription: string): Promise<void> {
    this.assertOpen();
    this.names.check('subscription', subscription);
    await this.closeSubscribers(subscription);
    try {
      await this.pubsub.subscription(this.names.subscription(subscription)).delete(this.gaxOpts);
    } catch (err) {
      if (!isNotFound(err)) throw busError(err, { subscription, missing: 'subscription' });
    }
    this.estimate.untrack(subscription);
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new BusClosed({ topic });
    if (messages.length === 0) return;
    if (!this.names.valid(topic)) throw new TopicNotFound({ topic });
    const task = this.send(topic, messages);
    this.inFlight.add(task);
    try {
      await task;
    } finally {
      this.inFlight.delete(task);
    }
  }

  private async send(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    let client: PublisherClient;
    try {
      client = await this.publisherClient();
    } catch (err) {
      this.publisher = null;
      throw busError(err, { topic, missing: 'topic', messages: messages.length });
    }
    const name = this.names.topic(topic);
    const sentAt = this.clock.now();
    this.estimate.publishStarted(topic);
    const results = await Promise.allSettled(
      requests(messages).map(async (chunk) => {
        const [response] = await client.publish(
          { topic: name, messages: chunk },
          { ...this.gaxOpts, isBundling: false },
        );
        return response.messageIds ?? [];
      }),
    );
    const ids: string[] = [];
    let failure: unknown = null;
    for (const r of results) {
      if (r.status === 'fulfilled') ids.push(...r.value);
      else failure ??= r.reason;
    }
    this.estimate.published(topic, ids, sentAt);
    if (failure !== null) throw busError(failure, { topic, missing: 'topic', messages: messages.length });
  }

  /** One client for publishing, sending each call's requests as they are (no client-side batching). */
  private publisherClient(): Promise<PublisherClient> {
    // (the library's ClientConfig types `port` as string | number; it always holds a number)
    this.publisher ??= this.pubsub
      .getClientConfig()
      .then((config) => new v1.PublisherClient(config as ConstructorParameters<typeof v1.PublisherClient>[0]));
    return this.publisher;
  }

  async subscribe(subscription: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<Subscriber> {
    this.assertOpen();
    if (!this.names.valid(subscription)) throw new SubscriptionNotFound({ subscription });
    const meta = await this.metadata(subscription);
    const topic = this.names.topicName(meta.topic ?? '');
    if (topic !== null) this.estimate.track(subscription, topic);
    const ackDeadlineSeconds = Math.max(MIN_ACK_SECONDS, Number(meta.ackDeadlineSeconds ?? MIN_ACK_SECONDS));
    const labelled = Number(meta.labels?.[DEADLINE_LABEL]);
    const deadlineRealMs = Number.isFinite(labelled) && labelled > 0 ? labelled : ackDeadlineSeconds * 1000;
    const leaseSeconds = Duration.from({ seconds: ackDeadlineSeconds });
    const maxOutstanding = Math.max(1, options.maxOutstandingMessages ?? 10_000);
    const handle: Subscription = this.pubsub.subscription(this.names.subscription(subscription), {
      flowControl: { maxMessages: maxOutstanding, allowExcessMessages: false },
      streamingOptions: { maxStreams: Math.min(this.pullStreams, maxOutstanding) },
      // Leases are extended by Pub/Sub's deadline at a time, for as long as the bus's deadline
      // (plus one lease, as a margin): the consumer nacks at the bus's deadline itself.
      minAckDeadline: leaseSeconds,
      maxAckDeadline: leaseSeconds,
      maxExtensionTime: Duration.from({ milliseconds: deadlineRealMs + ackDeadlineSeconds * 1000 }),
      batching: { maxMilliseconds: ACK_BATCH_MS },
      closeOptions: { behavior: 'NACK', timeout: CLOSE_TIMEOUT },
    });
    const subscriber: PubSubSubscriber = new PubSubSubscriber({
      name: subscription,
      subscription: handle,
      handler,
      maxBatchMessages: Math.max(1, options.maxBatchMessages ?? 1000),
      ackDeadlineRealMs: deadlineRealMs,
      clock: this.clock,
      logger: this.logger,
      onAck: (id) => this.estimate.acked(subscription, id),
      onClosed: () => this.subscribers.delete(subscriber),
    });
    this.subscribers.add(subscriber);
    subscriber.start();
    return subscriber;
  }

  async backlog(subscription: string): Promise<Backlog> {
    this.assertOpen();
    if (!this.names.valid(subscription)) throw new SubscriptionNotFound({ subscription });
    const meta = await this.metadata(subscription);
    if (!this.estimate.isTracked(subscription)) {
      const topic = this.names.topicName(meta.topic ?? '');
      if (topic !== null) this.estimate.track(subscription, topic);
    }
    return this.estimate.figures(subscription);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subscribers].map((s) => s.close()));
    await Promise.allSettled([...this.inFlight]);
    try {
      if (this.publisher !== null) await (await this.publisher).close();
      await this.pubsub.close();
    } catch (err) {
      this.logger.warn({ err }, 'pubsub: closing the client failed');
    }
  }

  private async metadata(subscription: string) {
    try {
      const [meta] = await this.pubsub.subscription(this.names.subscription(subscription)).getMetadata(this.gaxOpts);
      return meta;
    } catch (err) {
      throw busError(err, { subscription, missing: 'subscription' });
    }
  }

  private async closeSubscribers(subscription: string): Promise<void> {
    await Promise.all([...this.subscribers].filter((s) => s.name === subscription).map((s) => s.close()));
  }

  private assertOpen(): void {
    if (this.closed) throw new BusClosed();
  }
}

/** Splits a call's messages into publish requests within Pub/Sub's limits. */
function requests(messages: readonly OutgoingMessage[]): PubsubMessage[][] {
  const out: PubsubMessage[][] = [];
  let current: PubsubMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    let size = m.data.length + 16;
    for (const [k, v] of Object.entries(m.attributes)) size += Buffer.byteLength(k) + Buffer.byteLength(v) + 8;
    if (current.length > 0 && (current.length >= MAX_REQUEST_MESSAGES || bytes + size > MAX_REQUEST_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ data: m.data, attributes: m.attributes });
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
