/**
 * The alerting engine of a process: the configured sinks behind a dispatcher (none configured:
 * alerts are recorded and listed, not sent) and the rule evaluation loop.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import type { AlertingSettings } from '../../core/config.js';
import type { EventCatalog } from '../../core/event-types.js';
import type { Bus } from '../../core/ports/bus.js';
import type { StateStore } from '../../core/ports/state-store.js';
import { AlertingService, type Notifier } from './alerting.js';

export interface Alerting {
  readonly service: AlertingService;
  start(): void;
  stop(): Promise<void>;
}

export async function createAlerting(d: {
  store: StateStore;
  bus: Bus;
  catalog: EventCatalog;
  clock: Clock;
  logger: Logger;
  settings: AlertingSettings;
  registry: Registry;
}): Promise<Alerting> {
  let dispatcher: (Notifier & { close(): Promise<void> }) | null = null;
  if (d.settings.sinks.length > 0) {
    // the sink code is loaded only where sinks are configured
    const [{ AlertDispatcher }, { createSink }] = await Promise.all([
      import('./dispatcher.js'),
      import('../../infra/alerts/sinks.js'),
    ]);
    dispatcher = new AlertDispatcher({
      sinks: d.settings.sinks.map(createSink),
      logger: d.logger.child({ component: 'alert-dispatcher' }),
      registry: d.registry,
      maxAttempts: d.settings.deliveryAttempts,
      backoffRealMs: d.settings.deliveryBackoffRealMs,
    });
  }
  const service = new AlertingService({ ...d, notifier: dispatcher });
  return {
    service,
    start: () => service.start(),
    async stop() {
      await service.stop();
      await dispatcher?.close();
    },
  };
}
