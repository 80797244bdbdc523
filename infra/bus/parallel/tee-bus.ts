/**
 * The bus of a parallel run: every publish goes to the primary bus and to the second one, and
 * resolves only when both resolved, so the ingress answers a producer only when each bus holds
 * the events (or, with the second bus behind a spool, when the copy is on local disk; see
 * spooled-bus.ts). If either fails the publish fails: the producer gets 503 and retries; what one
 * bus already stored becomes a duplicate that dedup removes.
 *
 * Topics and subscriptions are created and deleted on both; consuming (subscribe, backlog) is the
 * primary's: the second pipeline's ETL uses the second bus directly.
 */
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

export class TeeBus implements Bus {
  readonly backend: string;
  readonly capabilities: BusCapabilities;

  constructor(
    readonly primary: Bus,
    readonly second: Bus,
  ) {
    this.backend = `${primary.backend}+${second.backend}`;
    this.capabilities = primary.capabilities;
  }

  async createTopic(topic: string): Promise<void> {
    await both(this.primary.createTopic(topic), this.second.createTopic(topic));
  }
  async deleteTopic(topic: string): Promise<void> {
    await both(this.primary.deleteTopic(topic), this.second.deleteTopic(topic));
  }
  listTopics(): Promise<string[]> {
    return this.primary.listTopics();
  }
  async createSubscription(subscription: string, topic: string, options?: SubscriptionOptions): Promise<void> {
    await both(
      this.primary.createSubscription(subscription, topic, options),
      this.second.createSubscription(subscription, topic, options),
    );
  }
  async deleteSubscription(subscription: string): Promise<void> {
    await both(this.primary.deleteSubscription(subscription), this.second.deleteSubscription(subscription));
  }
  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    await both(this.primary.publish(topic, messages), this.second.publish(topic, messages));
  }
  subscribe(subscription: string, handler: MessageHandler, options?: SubscribeOptions): Promise<Subscriber> {
    return this.primary.subscribe(subscription, handler, options);
  }
  backlog(subscription: string): Promise<Backlog> {
    return this.primary.backlog(subscription);
  }
  async close(): Promise<void> {
    await Promise.allSettled([this.primary.close(), this.second.close()]);
  }
}

/** Waits for both; rethrows the first failure (the primary's when both failed). */
async function both(a: Promise<void>, b: Promise<void>): Promise<void> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
}
