/** A real bus that a test can take down: while down, every call fails as an unreachable bus does. */
import { PublishFailed } from '../../core/errors.js';
import type {
  Backlog,
  Bus,
  MessageHandler,
  OutgoingMessage,
  SubscribeOptions,
  Subscriber,
  SubscriptionOptions,
} from '../../core/ports/bus.js';

export class SwitchableBus implements Bus {
  down = false;
  readonly backend: string;
  readonly capabilities: Bus['capabilities'];

  constructor(readonly inner: Bus) {
    this.backend = inner.backend;
    this.capabilities = inner.capabilities;
  }

  private check(topic: string): void {
    if (this.down)
      throw new PublishFailed({ topic }, { cause: new Error('connect ECONNREFUSED (bus taken down by the test)') });
  }

  async createTopic(topic: string): Promise<void> {
    this.check(topic);
    await this.inner.createTopic(topic);
  }
  async deleteTopic(topic: string): Promise<void> {
    this.check(topic);
    await this.inner.deleteTopic(topic);
  }
  listTopics(): Promise<string[]> {
    return this.inner.listTopics();
  }
  async createSubscription(subscription: string, topic: string, options?: SubscriptionOptions): Promise<void> {
    this.check(topic);
    await this.inner.createSubscription(subscription, topic, options);
  }
  deleteSubscription(subscription: string): Promise<void> {
    return this.inner.deleteSubscription(subscription);
  }
  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    this.check(topic);
    await this.inner.publish(topic, messages);
  }
  subscribe(subscription: string, handler: MessageHandler, options?: SubscribeOptions): Promise<Subscriber> {
    return this.inner.subscribe(subscription, handler, options);
  }
  backlog(subscription: string): Promise<Backlog> {
    return this.inner.backlog(subscription);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
