/**
 * Provisioning of the bus resources every active event type needs: its topic and its ETL
 * subscription. Idempotent. (The full reconcile loop of the orchestrator builds on this.)
 */
import type { Logger } from 'pino';
import { type EventType, subscriptionFor, topicFor } from '../core/event-types.js';
import type { Bus } from '../core/ports/bus.js';

export async function provisionBus(bus: Bus, types: readonly EventType[], logger: Logger): Promise<void> {
  for (const t of types) {
    if (t.status === 'retired') continue;
    await bus.createTopic(topicFor(t.name));
    await bus.createSubscription(subscriptionFor(t.name), topicFor(t.name));
    logger.debug({ type: t.name, topic: topicFor(t.name) }, 'provisioned topic and subscription');
  }
}
