/**
 * Wiring of the whole pipeline on the configured backends, in one process (`hourglass dev`).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Clock, ScaledClock, SystemClock } from '../core/clock.js';
import type { HourglassConfig } from '../core/config.js';
import { ConfigInvalid } from '../core/errors.js';
import { EventCatalog, loadEventTypes } from '../core/event-types.js';
import type { Bus } from '../core/ports/bus.js';
import type { StateStore } from '../core/ports/state-store.js';
import { EmbeddedBus } from '../infra/bus/embedded/embedded-bus.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { provisionBus } from '../orchestrator/provision.js';
import { IngressService } from '../services/ingress/server.js';

export interface Pipeline {
  readonly url: string;
  readonly clock: Clock;
  readonly bus: Bus;
  readonly store: StateStore;
  readonly catalog: EventCatalog;
  readonly ingress: IngressService;
  close(): Promise<void>;
}

export function clockFor(config: HourglassConfig): Clock {
  return config.timeScale === 1 ? new SystemClock() : new ScaledClock(config.timeScale);
}

export async function startPipeline(config: HourglassConfig, logger: Logger): Promise<Pipeline> {
  const clock = clockFor(config);
  const types = await loadEventTypes(config.schemasDir).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ConfigInvalid({ key: 'schemasDir', rule: `${config.schemasDir} does not exist` });
    }
    throw err;
  });
  if (types.length === 0) {
    throw new ConfigInvalid({
      key: 'schemasDir',
      rule: `no event types (folders with type.json) in ${config.schemasDir}`,
    });
  }
  const catalog = new EventCatalog(types);
  const store = new SqliteStateStore(join(config.dataDir, 'state.sqlite'));
  const bus = new EmbeddedBus({
    dataDir: config.dataDir,
    clock,
    logger,
    segmentBytes: config.bus.segmentBytes,
    defaultAckDeadlineMs: config.bus.ackDeadlineRealMs,
  });
  const closeBackends = async (): Promise<void> => {
    await bus.close();
    await store.close();
  };
  let ingress: IngressService;
  let url: string;
  try {
    await provisionBus(bus, types, logger);
    ingress = new IngressService({ bus, catalog, store, clock, logger, config: config.ingress });
    url = await ingress.start();
  } catch (err) {
    await closeBackends();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    url,
    clock,
    bus,
    store,
    catalog,
    ingress,
    close() {
      closing ??= (async () => {
        await ingress.close();
        await closeBackends();
      })();
      return closing;
    },
  };
}
