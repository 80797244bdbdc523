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
 *
 * Per topic: a topic the target refuses (a topic not created there yet) backs off alone; the
 * others keep being forwarded.
 *
 * Several processes on one data dir (`hourglass dev` and `hourglass bridge`) spool into the same
 * spool: each publishes into it, and a topic's forwarder (a subscription of the spool, one
 * consumer at a time) runs in one of them. A process that finds a topic forwarded by another one
 * leaves it to it, and looks again every second, so it takes over when that process is gone.
 */
import type { Logger } from 'pino';
import { SubscriptionBusy } from '../../../core/errors.js';
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
/** How often a process looks for spooled topics no forwarder of its own serves (real ms). */
const ADOPT_INTERVAL_MS = 1_000;

export class SpooledBus implements Bus {
  readonly backend: string;
  readonly capabilities: BusCapabilities;
  private readonly forwarders = new Map<string, Promise<Subscriber>>();
  private started: Promise<void> | null = null;
  private closed = false;
  /** Per topic: failures in a row, and no forwarding attempt before `retryAt` (real ms). */
  private readonly backoff = new Map<string, { failures: number; retryAt: number }>();
  /** Topics another process forwards (logged once). */
  private readonly elsewhere = new Set<string>();
  /** Changes to the spool's topics and subscriptions, one at a time (see `serially`). */
  private changes: Promise<unknown> = Promise.resolve();
  private adoptTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly spool: Bus,
    readonly target: Bus,
    private readonly logger: Logger,
  ) {
    this.backend = target.backend;
    this.capabilities = target.capabilities;
  }

  /** Starts forwarding every topic the spool has (after a restart) that no other process forwards. */
  start(): Promise<void> {
    this.started ??= (async () => {
      await this.adopt();
      this.adoptTimer = setInterval(() => {
        this.adopt().catch((err: unknown) => this.logger.warn({ err }, 'looking for spooled topics failed'));
      }, ADOPT_INTERVAL_MS);
      this.adoptTimer.unref();
    })();
    return this.started;
  }

  /**
   * Runs changes to the spool's topics and subscriptions one at a time (the spool writes their
   * files under temp names of the process). Waiting for a forwarder to start is left outside.
   */
  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.changes.then(fn, fn);
    this.changes = run.catch(() => undefined);
    return run;
  }

  /** Forwards every spooled topic that has no forwarder here (another process's may be gone). */
  private async adopt(): Promise<void> {
    const starting = await this.serially(async () => {
      const out: Promise<void>[] = [];
      if (this.closed) return out;
      for (const topic of await this.spool.listTopics()) {
        if (this.forwarders.has(topic)) continue;
        await this.spool.createSubscription(`${topic}${FORWARD}`, topic);
        const forwarding = this.forward(topic);
        forwarding.catch(() => undefined); // awaited below, after the loop
        out.push(forwarding);
      }
      return out;
    });
    await Promise.all(starting);
  }

  /** Messages in the spool not yet stored by the target. */
  spooled(topic: string): Promise<Backlog> {
    return this.spool.backlog(`${topic}${FORWARD}`);
  }

  /**
   * Starts this process's forwarder of the topic (once); when another process holds the topic's
   * forwarder, leaves it to that one (`adopt` tries again later).
   */
  private async forward(topic: string): Promise<void> {
    let f = this.forwarders.get(topic);
    if (f === undefined) {
      const started = this.spool.subscribe(`${topic}${FORWARD}`, (messages) => this.send(topic, messages), {
        maxOutstandingMessages: 20_000,
        maxBatchMessages: 1_000,
      });
      started.catch(() => {
        if (this.forwarders.get(topic) === started) this.forwarders.delete(topic);
      });
      this.forwarders.set(topic, started);
      f = started;
    }
    try {
      await f;
      if (this.elsewhere.delete(topic)) this.logger.info({ topic }, 'forwarding spooled events taken over');
    } catch (err) {
      if (!(err instanceof SubscriptionBusy)) throw err;
      if (!this.elsewhere.has(topic)) {
        this.elsewhere.add(topic);
        this.logger.info(
          { topic, holder: err.context.holder },
          'spooled events of this topic are forwarded by another process',
        );
      }
    }
  }

  private async send(topic: string, messages: Parameters<MessageHandler>[0]): Promise<void> {
    const wait = (this.backoff.get(topic)?.retryAt ?? 0) - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (this.closed) return;
    try {
      await this.target.publish(
        topic,
        messages.map((m) => ({ data: m.data, attributes: m.attributes })),
      );
      for (const m of messages) m.ack();
      const after = this.backoff.get(topic)?.failures ?? 0;
      if (after > 0) this.logger.info({ topic, after }, 'second bus reachable again: forwarding');
      this.backoff.delete(topic);
    } catch (err) {
      const failures = (this.backoff.get(topic)?.failures ?? 0) + 1;
      const backoff = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 10));
      this.backoff.set(topic, { failures, retryAt: Date.now() + backoff * (0.5 + Math.random() / 2) });
      if (failures === 1 || failures % 20 === 0) {
        this.logger.warn({ err, topic, failures }, 'second bus refused spooled events: kept, retried');
      }
      for (const m of messages) m.nack();
    }
  }

  async createTopic(topic: string): Promise<void> {
    const { forwarding } = await this.serially(async () => {
      await this.spool.createTopic(topic);
      await this.spool.createSubscription(`${topic}${FORWARD}`, topic);
      return { forwarding: this.forward(topic) };
    });
    await forwarding;
    await this.target.createTopic(topic);
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.serially(async () => {
      const f = this.forwarders.get(topic);
      this.forwarders.delete(topic);
      if (f !== undefined)
        await f.then(
          (s) => s.close(),
          () => undefined,
        );
      await this.spool.deleteTopic(topic);
      this.backoff.delete(topic);
      this.elsewhere.delete(topic);
    });
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
    if (this.adoptTimer) clearInterval(this.adoptTimer);
    await this.changes;
    for (const [topic, f] of this.forwarders) {
      await f
        .then((s) => s.close())
        .catch((err: unknown) => this.logger.warn({ err, topic }, 'spool forwarder did not stop cleanly'));
    }
    this.forwarders.clear();
    await Promise.allSettled([this.spool.close(), this.target.close()]);
  }
}
