/**
 * A bus behind a local spool: `publish` resolves once the messages are in an embedded bus on local
 * disk (fsynced), and a forwarder per topic moves them to the target bus, acking each spooled
 * batch only after the target has stored it. While the target is unreachable the spool grows and
 * the forwarder retries with backoff; nothing is dropped, and a restart resumes forwarding from
 * the spool. Messages may reach the target twice (a crash between its publish and the spool's
 * ack), never not at all.
 *
 * Used for the second bus of a parallel run with `parallel.ack: primary`. Topics are created in
 * the spool first, so publishing works while the target is down; creating them on the target is
 * retried by whoever creates topics (the reconcile loop). Subscriptions, delivery and backlog are
 * the target's.
 */
import type { Logger } from 'pino';
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

const FORWARD = '.forward';
const MAX_BACKOFF_MS = 30_000;

export class SpooledBus implements Bus {
  readonly backend: string;
  readonly capabilities: BusCapabilities;
  private readonly forwarders = new Map<string, Promise<Subscriber>>();
  private started: Promise<void> | null = null;
  private closed = false;
  /** No forwarding attempt before this (real ms) after a failure. */
  private retryAt = 0;
  private failures = 0;

  constructor(
    private readonly spool: Bus,
    readonly target: Bus,
    private readonly logger: Logger,
  ) {
    this.backend = target.backend;
    this.capabilities = target.capabilities;
  }

  /** Starts forwarding every topic the spool has (after a restart). */
  start(): Promise<void> {
    this.started ??= (async () => {
      for (const topic of await this.spool.listTopics()) {
        await this.spool.createSubscription(`${topic}${FORWARD}`, topic);
        await this.forward(topic);
      }
    })();
    return this.started;
  }

  /** Messages in the spool not yet stored by the target. */
  spooled(topic: string): Promise<Backlog> {
    return this.spool.backlog(`${topic}${FORWARD}`);
  }

  private forward(topic: string): Promise<Subscriber> {
    let f = this.forwarders.get(topic);
    if (f === undefined) {
      f = this.spool.subscribe(`${topic}${FORWARD}`, (messages) => this.send(topic, messages), {
        maxOutstandingMessages: 20_000,
        maxBatchMessages: 1_000,
      });
      f.catch(() => this.forwarders.delete(topic));
      this.forwarders.set(topic, f);
    }
    return f;
  }

  private async send(topic: string, messages: Parameters<MessageHandler>[0]): Promise<void> {
    const wait = this.retryAt - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (this.closed) return;
    try {
      await this.target.publish(
        topic,
        messages.map((m) => ({ data: m.data, attributes: m.attributes })),
      );
      for (const m of messages) m.ack();
      if (this.failures > 0)
        this.logger.info({ topic, after: this.failures }, 'second bus reachable again: forwarding');
      this.failures = 0;
      this.retryAt = 0;
    } catch (err) {
      this.failures++;
      const backoff = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.failures, 10));
      this.retryAt = Date.now() + backoff * (0.5 + Math.random() / 2);
      if (this.failures === 1 || this.failures % 20 === 0) {
        this.logger.warn({ err, topic, failures: this.failures }, 'second bus refused spooled events: kept, retried');
      }
      for (const m of messages) m.nack();
    }
  }

  async createTopic(topic: string): Promise<void> {
    await this.spool.createTopic(topic);
    await this.spool.createSubscription(`${topic}${FORWARD}`, topic);
    await this.forward(topic);
    await this.target.createTopic(topic);
  }

  async deleteTopic(topic: string): Promise<void> {
    const f = this.forwarders.get(topic);
    this.forwarders.delete(topic);
    if (f !== undefined) await (await f).close();
    await this.spool.deleteTopic(topic);
    await this.target.deleteTopic(topic);
  }

  listTopics(): Promise<string[]> {
    return this.target.listTopics();
  }
  createSubscription(subscription: string, topic: string, options?: SubscriptionOptions): Promise<void> {
    return this.target.createSubscription(subscription, topic, options);
  }
  deleteSubscription(subscription: string): Promise<void> {
    return this.target.deleteSubscription(subscription);
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    await this.start();
    await this.spool.publish(topic, messages);
  }

  subscribe(subscription: string, handler: MessageHandler, options?: SubscribeOptions): Promise<Subscriber> {
    return this.target.subscribe(subscription, handler, options);
  }
  backlog(subscription: string): Promise<Backlog> {
    return this.target.backlog(subscription);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [topic, f] of this.forwarders) {
      await f
        .then((s) => s.close())
        .catch((err: unknown) => this.logger.warn({ err, topic }, 'spool forwarder did not stop cleanly'));
    }
    this.forwarders.clear();
    await Promise.allSettled([this.spool.close(), this.target.close()]);
  }
}
