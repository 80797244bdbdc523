/**
 * Wiring of the whole pipeline on the configured backends, in one process (`hourglass dev`).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { sharedClock } from '../core/clock-origin.js';
import type { HourglassConfig } from '../core/config.js';
import { ConfigInvalid } from '../core/errors.js';
import { EventCatalog, loadEventTypes } from '../core/event-types.js';
import type { Bus } from '../core/ports/bus.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import { type EtlConfig, EtlService, etlWorkDir } from '../etl/service.js';
import { EmbeddedBus } from '../infra/bus/embedded/embedded-bus.js';
import { PostgresStateStore } from '../infra/state/postgres/postgres-state-store.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { provisionBus } from '../orchestrator/provision.js';
import { createIngressMetrics } from '../services/ingress/metrics.js';
import { IngressService } from '../services/ingress/server.js';

export interface Pipeline {
  readonly url: string;
  readonly clock: Clock;
  readonly bus: Bus;
  readonly store: StateStore;
  readonly objects: ObjectStore;
  readonly catalog: EventCatalog;
  readonly ingress: IngressService;
  /** Null when started with `etl: false`. */
  readonly etl: EtlService | null;
  close(): Promise<void>;
}

/** The clock of every process on `config.dataDir` (scaled time continues across restarts). */
export function clockFor(config: HourglassConfig): Clock {
  return sharedClock(config.dataDir, config.timeScale);
}

/** The configured state store, connected and migrated. */
export async function openStateStore(config: HourglassConfig): Promise<StateStore> {
  if (config.state.backend === 'postgres') {
    return PostgresStateStore.open({ url: config.state.url, schema: config.state.schema });
  }
  return new SqliteStateStore(join(config.dataDir, 'state.sqlite'));
}

export function busFor(config: HourglassConfig, clock: Clock, logger: Logger): EmbeddedBus {
  return new EmbeddedBus({
    dataDir: config.dataDir,
    clock,
    logger,
    segmentBytes: config.bus.segmentBytes,
    defaultAckDeadlineMs: config.bus.ackDeadlineRealMs,
  });
}

export function objectStoreFor(config: HourglassConfig): ObjectStore {
  return new FsObjectStore(join(config.dataDir, 'objects'));
}

export function etlConfigOf(config: HourglassConfig): EtlConfig {
  const e = config.etl;
  return {
    consumer: {
      codec: e.codec,
      deflateLevel: e.deflateLevel,
      maxFileBytes: e.maxFileBytes,
      maxFileAgeRealMs: e.maxFileAgeRealMs,
      maxBufferedBytes: e.maxBufferedBytes,
      maxOutstandingMessages: e.maxOutstandingMessages,
      retryMaxRealMs: e.retryMaxRealMs,
      deadLetterMaxPerType: config.ingress.deadLetterMaxPerType,
    },
    closer: { vanishAfterRealMs: e.vanishAfterRealMs },
    dedup: {
      maxIdsInMemory: e.dedupMaxIdsInMemory,
      duckdbMemoryBytes: e.duckdbMemoryBytes,
      duckdbThreads: e.duckdbThreads,
      rowGroupBytes: e.dedupRowGroupBytes,
      workers: e.dedupWorkers,
    },
    passIntervalRealMs: e.passIntervalRealMs,
  };
}

/** The event types under `config.schemasDir`; refuses a missing or empty folder. */
export async function loadCatalog(config: HourglassConfig): Promise<EventCatalog> {
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
  return new EventCatalog(types);
}

export async function startPipeline(
  config: HourglassConfig,
  logger: Logger,
  options: { etl?: boolean } = {},
): Promise<Pipeline> {
  const catalog = await loadCatalog(config);
  const types = catalog.list();
  const clock = clockFor(config);
  const store = await openStateStore(config);
  const objects = objectStoreFor(config);
  const metrics = createIngressMetrics();
  const bus = busFor(config, clock, logger);
  const closeBackends = async (): Promise<void> => {
    await bus.close();
    await store.close();
  };
  let ingress: IngressService | null = null;
  let etl: EtlService | null = null;
  let url: string;
  try {
    await provisionBus(bus, types, logger);
    if (options.etl !== false) {
      etl = new EtlService({
        bus,
        objects,
        state: store,
        catalog,
        clock,
        logger,
        registry: metrics.registry,
        config: etlConfigOf(config),
        workDir: etlWorkDir(config.dataDir),
      });
      await etl.start();
    }
    ingress = new IngressService({ bus, catalog, store, clock, logger, config: config.ingress, metrics });
    url = await ingress.start();
  } catch (err) {
    await ingress?.close();
    await etl?.close();
    await closeBackends();
    throw err;
  }
  const started = { ingress, etl };
  let closing: Promise<void> | null = null;
  return {
    url,
    clock,
    bus,
    store,
    objects,
    catalog,
    ingress,
    etl,
    close() {
      closing ??= (async () => {
        await started.ingress.close();
        await started.etl?.close();
        await closeBackends();
      })();
      return closing;
    },
  };
}
