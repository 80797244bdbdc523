/**
 * `hourglass orchestrator`: the orchestrator as a process of its own, for deployments where the
 * ingress and the ETL run apart: the registry API (and `/healthz`, `/readyz`), schema
 * distribution, the reconcile loop (bus resources, drains and retirements; each ETL process
 * follows the registry for its consumers) and the retention sweeper.
 */
import { parseArgs } from 'node:util';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createLogger } from '../core/logger.js';
import { tightenDataDir } from '../core/private-files.js';
import { createAlerting } from '../orchestrator/alerts/notifier.js';
import { registerDashboard } from '../orchestrator/dashboard/dashboard-api.js';
import { registerPipelineMetrics } from '../orchestrator/pipeline-metrics.js';
import { Reconciler } from '../orchestrator/reconciler.js';
import { registerRegistryApi } from '../orchestrator/registry-api.js';
import { RetentionSweeper } from '../orchestrator/retention.js';
import { redirectHomeToDashboard } from '../services/http/home-redirect.js';
import { jsonApi } from '../services/http/json-api.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, LOG_OPTIONS, LOG_USAGE, numberFlag } from './common.js';
import { publishingBuses } from './parallel.js';
import {
  clockFor,
  dashboardDeps,
  objectStoreFor,
  openStateStore,
  registryCatalog,
  seedRegistry,
  warehouseFor,
} from './pipeline.js';
import { untilSignal } from './signals.js';
import type { CliIo } from './usage.js';

export const ORCHESTRATOR_USAGE = `Usage: hourglass orchestrator [--port P] [--host H] [--data-dir D] [--schemas DIR] [--time-scale N]
                              [--config FILE] [--log-level L] [--log-format F]

Runs the orchestrator on its own: the registry API (GET/POST /v1/event-types …), schema
distribution, the reconcile loop, the retention sweeper, alerting (rules, routing, sinks), the
dashboard (/dashboard) and /metrics, on the configured state store and bus.
The type folders of --schemas are applied at start when the folder exists. GET / redirects to
the dashboard.
  --port P          HTTP port (default 8081; 0 picks a free one)
  --host H          address to listen on (default 127.0.0.1)
${LOG_USAGE}
${DATA_DIR_USAGE}`;

export async function runOrchestrator(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...DATA_DIR_OPTIONS, ...LOG_OPTIONS, port: { type: 'string' }, host: { type: 'string' } },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${ORCHESTRATOR_USAGE}\n`);
    return 0;
  }
  const config = configFromFlags(values, {
    'orchestrator.port': numberFlag('port', values.port),
    'orchestrator.host': values.host,
  });
  const logger = createLogger(config.logLevel, config.logFormat);
  tightenDataDir(config.dataDir, logger);
  const clock = clockFor(config);
  const store = await openStateStore(config);
  // in a parallel run, topics and subscriptions are provisioned on both buses
  const { bus } = await publishingBuses(config, clock, logger, { spool: false });
  try {
    await seedRegistry(config, store, clock, logger);
    const { catalog, sync } = await registryCatalog(config, store, logger);
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'hourglass_process_' });
    registerPipelineMetrics({ bus, store, catalog, clock, logger, registry });
    const alerting = await createAlerting({ store, bus, catalog, clock, logger, settings: config.alerting, registry });
    const reconciler = new Reconciler({
      store,
      bus,
      catalog,
      etl: null,
      alerting: alerting.service,
      warehouse: await warehouseFor(config),
      clock,
      logger,
      intervalRealMs: config.orchestrator.syncIntervalRealMs,
      retryMaxRealMs: config.orchestrator.retryMaxRealMs,
      refuseMarginMs: 2 * config.orchestrator.syncIntervalRealMs * config.timeScale,
    });
    const objects = await objectStoreFor(config);
    const sweeper = new RetentionSweeper({
      store,
      objects,
      clock,
      logger,
      intervalRealMs: config.orchestrator.retentionSweepRealMs,
    });
    const app = Fastify({ loggerInstance: logger.child({ component: 'orchestrator' }) as FastifyBaseLogger });
    jsonApi(app, 1024 * 1024);
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_request, reply) => {
      const ready = await store.ping();
      return reply.code(ready ? 200 : 503).send({ ready, checks: { stateStore: ready } });
    });
    app.get('/metrics', async (_request, reply) =>
      reply.header('content-type', registry.contentType).send(await registry.metrics()),
    );
    registerRegistryApi(app, { store, clock, refresh: () => sync.refresh(), limits: config.registry });
    registerDashboard(app, dashboardDeps(config, store, objects, catalog, clock));
    redirectHomeToDashboard(app);
    await reconciler.pass();
    sync.onChange(() => reconciler.pass());
    sync.start();
    reconciler.start();
    sweeper.start();
    alerting.start();
    try {
      const url = await app.listen({ host: config.orchestrator.host, port: config.orchestrator.port });
      io.stdout.write(`hourglass orchestrator: registry API on ${url}, ${catalog.list().length} event types\n`);
      await untilSignal(logger);
    } finally {
      await app.close();
      await alerting.stop();
      await sweeper.stop();
      await sync.stop();
      await reconciler.stop();
    }
  } finally {
    await bus.close();
    await store.close();
  }
  logger.flush();
  return 0;
}
