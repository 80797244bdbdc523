/**
 * Wiring of the whole pipeline on the configured backends, in one process (`hourglass dev`).
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { recordedClock, sharedClock } from '../core/clock-origin.js';
import { type BusBackend, type HourglassConfig, MAIN_PIPELINE } from '../core/config.js';
import { ConfigInvalid, EventTypeInvalid } from '../core/errors.js';
import { EventCatalog, loadEventTypes } from '../core/event-types.js';
import { silentLogger } from '../core/logger.js';
import type { Bus } from '../core/ports/bus.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import { tightenDataDir } from '../core/private-files.js';
import { storeExplainer } from '../etl/closer.js';
import { hourKey, type WaitingFor } from '../etl/hour-states.js';
import { type EtlConfig, EtlService, etlWorkDir } from '../etl/service.js';
import { EmbeddedBus } from '../infra/bus/embedded/embedded-bus.js';
import { PostgresStateStore } from '../infra/state/postgres/postgres-state-store.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { type Alerting, createAlerting } from '../orchestrator/alerts/notifier.js';
import { CatalogSync } from '../orchestrator/catalog-sync.js';
import { registerDashboard } from '../orchestrator/dashboard/dashboard-api.js';
import type { DashboardDeps } from '../orchestrator/dashboard/dashboard-data.js';
import { registerPipelineMetrics } from '../orchestrator/pipeline-metrics.js';
import { applyPlan, planTypes, refusalLines } from '../orchestrator/plan.js';
import { Reconciler } from '../orchestrator/reconciler.js';
import { registerRegistryApi } from '../orchestrator/registry-api.js';
import { RetentionSweeper } from '../orchestrator/retention.js';
import { redirectHomeToDashboard } from '../services/http/home-redirect.js';
import { createIngressMetrics } from '../services/ingress/metrics.js';
import { IngressService } from '../services/ingress/server.js';
import { publishingBuses, secondEtl } from './parallel.js';

export interface Pipeline {
  readonly url: string;
  /** Where the registry, dashboard and reads are served (`ingress.adminPort`), else `url`. */
  readonly adminUrl: string;
  readonly clock: Clock;
  readonly bus: Bus;
  readonly store: StateStore;
  readonly objects: ObjectStore;
  readonly catalog: EventCatalog;
  readonly ingress: IngressService;
  /** Null when started with `etl: false`. */
  readonly etl: EtlService | null;
  readonly alerting: Alerting;
  close(): Promise<void>;
}

/** The clock of every process on `config.dataDir` (scaled time continues across restarts). */
export function clockFor(config: HourglassConfig): Clock {
  return sharedClock(config.dataDir, config.timeScale);
}

/**
 * The clock of a command that acts on a pipeline's data: the given time scale, or when none was
 * given, the scaled time the data dir records (so `hourglass types retire` during a scaled
 * `hourglass dev` stamps the pipeline's time).
 */
export function commandClock(config: HourglassConfig, values: { 'time-scale'?: string | boolean }): Clock {
  const given = values['time-scale'] !== undefined || process.env.HOURGLASS_TIME_SCALE !== undefined;
  return given ? clockFor(config) : recordedClock(config.dataDir);
}

/** The configured state store, connected and migrated. */
export async function openStateStore(config: HourglassConfig): Promise<StateStore> {
  if (config.state.backend === 'postgres') {
    return PostgresStateStore.open({ url: config.state.url, schema: config.state.schema });
  }
  return new SqliteStateStore(join(config.dataDir, 'state.sqlite'));
}

/**
 * The configured bus (or `backend`, for the second bus of a parallel run): the embedded log in
 * `embeddedDir` (default the data dir), Google Cloud Pub/Sub (`PUBSUB_EMULATOR_HOST` points it at
 * an emulator) or Kafka. A cloud client library is loaded only when its bus is used.
 */
export async function busFor(
  config: HourglassConfig,
  clock: Clock,
  logger: Logger,
  backend: BusBackend = config.bus.backend,
  embeddedDir: string = config.dataDir,
): Promise<Bus> {
  if (backend === 'kafka') {
    const { KafkaBus } = await import('../infra/bus/kafka/kafka-bus.js');
    const k = config.kafka;
    return new KafkaBus({
      brokers: k.brokers,
      clientId: k.clientId,
      clock,
      logger,
      topicPrefix: config.bus.topicPrefix,
      partitions: k.partitions,
      replicationFactor: k.replicationFactor,
      idempotent: k.idempotent,
      ssl: k.ssl,
      sasl: k.sasl,
      defaultAckDeadlineRealMs: config.bus.ackDeadlineRealMs,
      sessionTimeoutRealMs: k.sessionTimeoutRealMs,
      rebalanceTimeoutRealMs: k.rebalanceTimeoutRealMs,
    });
  }
  if (backend === 'pubsub') {
    const { PubSubBus } = await import('../infra/bus/pubsub/pubsub-bus.js');
    return new PubSubBus({
      projectId: config.gcp.projectId,
      topicPrefix: config.bus.topicPrefix,
      clock,
      logger,
      defaultAckDeadlineRealMs: config.bus.ackDeadlineRealMs,
      pullStreams: config.bus.pullStreams,
    });
  }
  return new EmbeddedBus({
    dataDir: embeddedDir,
    clock,
    logger,
    segmentBytes: config.bus.segmentBytes,
    retentionSweepMs: config.bus.retentionSweepRealMs,
    defaultAckDeadlineMs: config.bus.ackDeadlineRealMs,
  });
}

/**
 * The configured object store: files under `<dataDir>/objects`, or a Cloud Storage bucket. The
 * second pipeline of a parallel run (`pipeline` = `parallel.name`) keeps its data under
 * `pipelines/<name>/` there; `main` (the default) is the configured bus's pipeline.
 */
export async function objectStoreFor(config: HourglassConfig, pipeline: string = MAIN_PIPELINE): Promise<ObjectStore> {
  const s = config.store;
  const sub = pipelineSubdir(config, pipeline);
  if (s.backend === 'gcs') {
    const { GcsObjectStore } = await import('../infra/store/gcs/gcs-object-store.js');
    return new GcsObjectStore({
      bucket: s.bucket,
      prefix: sub === '' ? s.prefix : `${s.prefix}${sub}/`,
      projectId: config.gcp.projectId,
      ...(s.endpoint !== null ? { apiEndpoint: s.endpoint } : {}),
    });
  }
  return new FsObjectStore(sub === '' ? join(config.dataDir, 'objects') : join(config.dataDir, 'objects', sub));
}

/** The pipelines a config defines: `main`, and the parallel run's second one. */
export function pipelineNames(config: HourglassConfig): string[] {
  return config.parallel === null ? [MAIN_PIPELINE] : [MAIN_PIPELINE, config.parallel.name];
}

/** '' for `main`, `pipelines/<name>` for the second pipeline; refuses names the config lacks. */
function pipelineSubdir(config: HourglassConfig, pipeline: string): string {
  if (pipeline === MAIN_PIPELINE) return '';
  if (config.parallel?.name === pipeline) return `pipelines/${pipeline}`;
  throw new ConfigInvalid({
    key: 'parallel.name',
    rule: `no pipeline ${JSON.stringify(pipeline)} in this configuration (it has: ${pipelineNames(config).join(', ')})`,
  });
}

/**
 * The warehouse types stored there are loaded into: null for DuckDB (queries read the final
 * files), or BigQuery, loading from the Cloud Storage bucket.
 */
export async function warehouseFor(config: HourglassConfig): Promise<Warehouse | null> {
  const w = config.warehouse;
  const store = config.store;
  if (w.backend !== 'bigquery' || store.backend !== 'gcs') return null;
  const { BigQueryWarehouse } = await import('../infra/warehouse/bigquery/bigquery-warehouse.js');
  return new BigQueryWarehouse({
    projectId: config.gcp.projectId,
    dataset: w.dataset,
    location: w.location,
    ...(w.endpoint !== null ? { apiEndpoint: w.endpoint } : {}),
    sourceUri: (name) => `gs://${store.bucket}/${store.prefix}${name}`,
  });
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
    batchConcurrency: e.batchConcurrency,
    jobLeaseRealMs: e.jobLeaseRealMs,
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

/**
 * Brings the type folders of `config.schemasDir` into the registry, as `hourglass types apply`
 * does (owners' quota included). A refused change stops the start, saying why; a folder that only
 * lags the registry (a type retired through the API or `hourglass types retire`, its folder still
 * active) is logged as a warning. Without a folder, the registry is used as it is.
 */
export async function seedRegistry(
  config: HourglassConfig,
  store: StateStore,
  clock: Clock,
  logger: Logger,
): Promise<void> {
  if (!existsSync(config.schemasDir)) {
    if ((await store.listTypes()).length > 0) return;
    throw new ConfigInvalid({
      key: 'schemasDir',
      rule: `${config.schemasDir} does not exist and the registry is empty`,
    });
  }
  const plan = await planTypes(config.schemasDir, store, { limits: config.registry });
  for (const p of plan) {
    if (p.warnings !== undefined && p.action !== 'refused')
      logger.warn({ type: p.type, warnings: p.warnings }, `type folder ${p.type} differs from the registry`);
  }
  const result = await applyPlan(plan, store, `hourglass:${hostname()}`, clock.now());
  if (result.refused.length > 0) {
    throw new EventTypeInvalid({
      type: result.refused.map((r) => r.type).join(', '),
      file: config.schemasDir,
      rule: `refused (nothing applied): ${result.refused.map((r) => `${r.type}: ${refusalLines(r).join('; ')}`).join(' | ')}`,
    });
  }
  for (const a of result.applied)
    logger.info({ type: a.type, action: a.action, changes: a.changes }, 'registry updated from the type folders');
}

/** The registry's types, in memory, kept fresh by polling (schema distribution). */
/** The state store and the registry's catalogue, for a command that follows the registry. */
export async function openRegistry(
  config: HourglassConfig,
  logger: Logger,
): Promise<{ state: StateStore; catalog: { catalog: EventCatalog; sync: CatalogSync } }> {
  const state = await openStateStore(config);
  try {
    return { state, catalog: await registryCatalog(config, state, logger) };
  } catch (err) {
    await state.close();
    throw err;
  }
}

export async function registryCatalog(
  config: HourglassConfig,
  store: StateStore,
  logger: Logger,
): Promise<{ catalog: EventCatalog; sync: CatalogSync }> {
  const catalog = new EventCatalog();
  const sync = new CatalogSync(store, catalog, config.orchestrator.syncIntervalRealMs, logger);
  await sync.refresh();
  if (catalog.list().length === 0) {
    throw new ConfigInvalid({
      key: 'schemasDir',
      rule: `no event types registered (declare them under ${config.schemasDir} and run hourglass types apply)`,
    });
  }
  return { catalog, sync };
}

/** The ETL's consumers follow the registry: started for new types and versions, stopped on retirement. */
export function consumersFollowRegistry(etl: EtlService, catalog: EventCatalog, sync: CatalogSync): void {
  sync.onChange(async (changed) => {
    for (const name of changed) {
      const t = catalog.get(name);
      if (t === undefined || t.status === 'retired') await etl.stopConsumer(name);
      else await etl.ensureConsumer(t);
    }
  });
}

/**
 * What closing hours wait for, as the dashboard shows it: with the ETL in this process, what its
 * closer found at its last pass (or judges now, bus figures included); otherwise judged from the
 * state store alone.
 */
export function closingReasons(
  config: HourglassConfig,
  store: StateStore,
  clock: Clock,
  etl: EtlService | null,
): WaitingFor {
  if (etl === null) return storeExplainer(store, clock, etlConfigOf(config).closer, silentLogger());
  return async (hours) => {
    const out = new Map<string, string>();
    const rest: { type: string; hour: number }[] = [];
    for (const h of hours) {
      const w = etl.waitingFor(h.type, h.hour);
      if (w === null) rest.push(h);
      else out.set(hourKey(h.type, h.hour), w);
    }
    for (const [key, w] of await etl.explainClosing(rest)) out.set(key, w);
    return out;
  };
}

/** What the dashboard reads, on this process's backends (and its ETL, if it runs one). */
export function dashboardDeps(
  config: HourglassConfig,
  store: StateStore,
  objects: ObjectStore,
  catalog: EventCatalog,
  clock: Clock,
  etl: EtlService | null = null,
): DashboardDeps {
  return {
    store,
    waitingFor: closingReasons(config, store, clock, etl),
    allowedHosts: config.ingress.allowedHosts,
    objects,
    catalog,
    now: () => clock.now(),
    timeScale: config.timeScale,
    slo: { sloMs: config.alerting.sloMs, atRiskShare: config.alerting.atRiskShare },
  };
}

export async function startPipeline(
  config: HourglassConfig,
  logger: Logger,
  options: { etl?: boolean } = {},
): Promise<Pipeline> {
  tightenDataDir(config.dataDir, logger);
  const clock = clockFor(config);
  const store = await openStateStore(config);
  const objects = await objectStoreFor(config);
  const warehouse = await warehouseFor(config);
  const metrics = createIngressMetrics();
  const { bus, second } = await publishingBuses(config, clock, logger, { spool: true });
  let etl2: { etl: EtlService; state: StateStore } | null = null;
  let sweeper2: RetentionSweeper | null = null;
  const closeBackends = async (): Promise<void> => {
    await sweeper2?.stop();
    await etl2?.etl.close();
    await etl2?.state.close();
    await bus.close();
    await warehouse?.close();
    await store.close();
  };
  let ingress: IngressService | null = null;
  let etl: EtlService | null = null;
  let sync: CatalogSync | null = null;
  let reconciler: Reconciler | null = null;
  let alerting: Alerting | null = null;
  const sweeper = new RetentionSweeper({
    store,
    objects,
    clock,
    logger,
    intervalRealMs: config.orchestrator.retentionSweepRealMs,
  });
  let catalog: EventCatalog;
  let url: string;
  try {
    await seedRegistry(config, store, clock, logger);
    ({ catalog, sync } = await registryCatalog(config, store, logger));
    alerting = await createAlerting({
      store,
      bus,
      catalog,
      clock,
      logger,
      settings: config.alerting,
      registry: metrics.registry,
    });
    registerPipelineMetrics({ bus, store, catalog, clock, logger, registry: metrics.registry });
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
        warehouse,
      });
    }
    reconciler = new Reconciler({
      store,
      bus,
      catalog,
      etl,
      alerting: alerting.service,
      warehouse,
      clock,
      logger,
      intervalRealMs: config.orchestrator.syncIntervalRealMs,
      retryMaxRealMs: config.orchestrator.retryMaxRealMs,
      refuseMarginMs: 2 * config.orchestrator.syncIntervalRealMs * config.timeScale,
    });
    await reconciler.pass();
    await etl?.start();
    if (etl !== null && second !== null && config.parallel !== null) {
      etl2 = await secondEtl(config, config.parallel, { bus: second, shared: store, catalog, clock, logger });
      await etl2.etl.start();
      consumersFollowRegistry(etl2.etl, catalog, sync);
      // the second pipeline's data expires with the same per-type retention
      sweeper2 = new RetentionSweeper({
        store: etl2.state,
        objects: await objectStoreFor(config, config.parallel.name),
        clock,
        logger: logger.child({ pipeline: config.parallel.name }),
        intervalRealMs: config.orchestrator.retentionSweepRealMs,
      });
      sweeper2.start();
    }
    const r = reconciler;
    sync.onChange(() => r.pass());
    sync.start();
    reconciler.start();
    sweeper.start();
    alerting.start();
    const s = sync;
    const c = catalog;
    ingress = new IngressService({
      bus,
      catalog,
      store,
      clock,
      logger,
      config: config.ingress,
      metrics,
      routes: (app) => {
        registerRegistryApi(app, { store, clock, refresh: () => s.refresh(), limits: config.registry });
        registerDashboard(app, dashboardDeps(config, store, objects, c, clock, etl));
        redirectHomeToDashboard(app);
      },
    });
    url = await ingress.start();
  } catch (err) {
    await sweeper.stop();
    await alerting?.stop();
    await sync?.stop();
    await reconciler?.stop();
    await ingress?.close();
    await etl?.close();
    await closeBackends();
    throw err;
  }
  const started = { ingress, etl, sync, reconciler, alerting };
  let closing: Promise<void> | null = null;
  return {
    url,
    adminUrl: (ingress as IngressService).adminUrl() ?? url,
    clock,
    bus,
    store,
    objects,
    catalog,
    ingress,
    etl,
    alerting,
    close() {
      closing ??= (async () => {
        await sweeper.stop();
        await started.alerting.stop();
        await started.sync.stop();
        await started.reconciler.stop();
        await started.ingress.close();
        await started.etl?.close();
        await closeBackends();
      })();
      return closing;
    },
  };
}
