/**
 * The bus port: topics, subscriptions, durable publish and at-least-once delivery.
 *
 * Every backend (embedded on-disk log, Google Cloud Pub/Sub, Kafka) implements this interface and
 * passes the shared contract suite in `test/contracts/bus.contract.ts`.
 *
 * Semantics every backend guarantees:
 * - **Durable publish.** `publish` resolves only after every message of the call is durably
 *   stored by the bus (what "durable" means is stated by each backend). If it rejects, the caller
 *   must treat every message of the call as not accepted (some may still be delivered later:
 *   duplicates are allowed, loss is not).
 * - **At-least-once delivery.** A message is delivered until it is acked. Unacked messages are
 *   redelivered after their ack deadline, after `nack`, and after the consumer closes or crashes.
 * - **No ordering** is promised across messages.
 * - A subscription receives the messages published to its topic after it was created.
 */
export interface OutgoingMessage {
  /** The message body (for Hourglass: the Avro-encoded event payload). */
  readonly data: Buffer;
  /** String attributes (for Hourglass: the event envelope). */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface DeliveredMessage {
  /** Bus-assigned id, unique within the subscription's topic. */
  readonly id: string;
  readonly data: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  /** When the bus stored the message, epoch ms (bus clock). */
  readonly publishTime: number;
  /** 1 on first delivery, then 2, 3, … where the backend can tell; otherwise 1. */
  readonly deliveryAttempt: number;
  /** Acknowledge: the message will not be delivered again. Idempotent. */
  ack(): void;
  /** Negative acknowledgement: deliver again soon. Idempotent; ignored after ack. */
  nack(): void;
}

export interface SubscriptionOptions {
  /** Time a delivered message may stay unacked before it is redelivered, in bus-clock ms. */
  readonly ackDeadlineMs?: number;
}

export interface SubscribeOptions {
  /** Maximum delivered-but-unacked messages held by this consumer (flow control). Default 10,000. */
  readonly maxOutstandingMessages?: number;
  /** Maximum messages per handler call. Default 1,000. */
  readonly maxBatchMessages?: number;
}

/**
 * Called with a batch of messages. The handler acks/nacks each message, now or later; it may be
 * async, but the bus does not wait for it before delivering more (flow control limits outstanding
 * messages). An exception thrown by the handler nacks the batch's unacked messages.
 */
export type MessageHandler = (messages: DeliveredMessage[]) => void | Promise<void>;

export interface Subscriber {
  /** Stops delivery; unacked messages are redelivered to the next subscriber. Idempotent. */
  close(): Promise<void>;
}

export interface Backlog {
  /** Messages published after the subscription was created and not yet acked. */
  readonly messages: number;
  /** Publish time of the oldest unacked message, epoch ms, or null when there is none. */
  readonly oldestUnackedPublishTime: number | null;
}

export interface BusCapabilities {
  /** `backlog()` returns exact figures (otherwise estimates, documented by the backend). */
  readonly exactBacklog: boolean;
  /** `deliveryAttempt` counts redeliveries. */
  readonly countsDeliveryAttempts: boolean;
  /**
   * After a consumer dies, the messages it held unacked are delivered again within this (real ms,
   * subscriptions with the default ack deadline): what a bus without exact backlog figures waits
   * for before it may say that nothing published earlier is still on its way.
   */
  readonly redeliveryWithinRealMs: number;
}

export interface Bus {
  /** Backend name, e.g. `embedded`, `pubsub`, `kafka`. */
  readonly backend: string;
  readonly capabilities: BusCapabilities;

  /** Creates the topic. Idempotent: an existing topic is left as it is. Throws InvalidName. */
  createTopic(topic: string): Promise<void>;
  /** Deletes the topic and its data. Idempotent. Subscriptions of the topic are deleted too. */
  deleteTopic(topic: string): Promise<void>;
  /** Lists topic names. */
  listTopics(): Promise<string[]>;
  /**
   * Creates a subscription on an existing topic. Idempotent for the same topic.
   * Throws TopicNotFound, InvalidName.
   */
  createSubscription(subscription: string, topic: string, options?: SubscriptionOptions): Promise<void>;
  /** Deletes the subscription and its delivery state. Idempotent. */
  deleteSubscription(subscription: string): Promise<void>;
  /**
   * Publishes messages to a topic. Resolves once all are durable (see the backend's definition).
   * Throws TopicNotFound, PublishFailed (retriable), BusClosed.
   */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Starts delivering the subscription's messages to `handler`.
   * Throws SubscriptionNotFound; SubscriptionBusy where the backend allows one consumer only.
   */
  subscribe(subscription: string, handler: MessageHandler, options?: SubscribeOptions): Promise<Subscriber>;
  /** Backlog figures of a subscription. Throws SubscriptionNotFound. */
  backlog(subscription: string): Promise<Backlog>;
  /** Stops subscribers, finishes in-flight publishes, releases files and connections. Idempotent. */
  close(): Promise<void>;
}

/** Topic and subscription names: letters, digits, `-`, `_`, `.`; 3–200 chars; starts with a letter. */
export const BUS_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9._-]{2,199}$/;
