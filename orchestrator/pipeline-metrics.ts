/**
 * Prometheus gauges read at scrape time from the bus and the state store: backlog and oldest
 * unacked age per subscription, and hour counts per type and state over the last 48 hours.
 * Registered by every process that holds a bus and a state store (`dev`, `etl`, `orchestrator`).
 */
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { type EventCatalog, subscriptionFor } from '../core/event-types.js';
import { HOUR_MS, hourStart } from '../core/hours.js';
import type { Bus } from '../core/ports/bus.js';
import type { StateStore } from '../core/ports/state-store.js';
import { hourStates } from '../etl/hour-states.js';

export interface PipelineMetricsDeps {
  readonly bus: Bus;
  readonly store: StateStore;
  readonly catalog: EventCatalog;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
}

export function registerPipelineMetrics(d: PipelineMetricsDeps): void {
  const registers = [d.registry];
  const log = d.logger.child({ component: 'metrics' });
  const subscriptions = () =>
    d.catalog
      .list()
      .filter((t) => t.status !== 'retired')
      .map((t) => subscriptionFor(t.name));
  // both backlog gauges read one snapshot (taken at most once per scrape)
  let snapshot: { at: number; rows: Promise<{ sub: string; messages: number; ageSeconds: number }[]> } | null = null;
  const backlogs = () => {
    const at = performance.now();
    if (snapshot === null || at - snapshot.at > 500) {
      const now = d.clock.now();
      const rows = Promise.all(
        subscriptions().map(async (sub) => {
          try {
            const b = await d.bus.backlog(sub);
            const age =
              b.oldestUnackedPublishTime === null ? 0 : Math.max(0, (now - b.oldestUnackedPublishTime) / 1000);
            return [{ sub, messages: b.messages, ageSeconds: age }];
          } catch (err) {
            if ((err as { code?: string }).code !== 'subscription_not_found')
              log.warn({ err, sub }, 'backlog unreadable');
            return [];
          }
        }),
      ).then((r) => r.flat());
      snapshot = { at, rows };
    }
    return snapshot.rows;
  };
  new Gauge({
    name: 'hourglass_bus_backlog_messages',
    help: 'Messages published to the subscription and not yet acked.',
    labelNames: ['subscription'],
    registers,
    async collect() {
      this.reset();
      for (const r of await backlogs()) this.set({ subscription: r.sub }, r.messages);
    },
  });
  new Gauge({
    name: 'hourglass_bus_oldest_unacked_age_seconds',
    help: 'Age of the oldest unacked message of the subscription (pipeline clock; 0 when none).',
    labelNames: ['subscription'],
    registers,
    async collect() {
      this.reset();
      for (const r of await backlogs()) this.set({ subscription: r.sub }, r.ageSeconds);
    },
  });
  new Gauge({
    name: 'hourglass_hours',
    help: 'Hours of the last 48 by type and state (open, closing, closed, deduped, published, failed).',
    labelNames: ['type', 'state'],
    registers,
    async collect() {
      this.reset();
      const now = d.clock.now();
      try {
        for (const s of await hourStates(d.store, now, { from: hourStart(now) - 47 * HOUR_MS })) {
          this.inc({ type: s.type, state: s.state });
        }
      } catch (err) {
        log.warn({ err }, 'hour states unreadable');
      }
    },
  });
}
