/** `hourglass etl`: the ETL (consumers, closer, dedup) as a process of its own. */
import { parseArgs } from 'node:util';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { MAIN_PIPELINE } from '../core/config.js';
import { rolesText } from '../core/etl-roles.js';
import { createLogger } from '../core/logger.js';
import type { Bus } from '../core/ports/bus.js';
import type { StateStore } from '../core/ports/state-store.js';
import { tightenDataDir } from '../core/private-files.js';
import { EtlService, etlWorkDir } from '../etl/service.js';
import { registerPipelineMetrics } from '../orchestrator/pipeline-metrics.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, LOG_OPTIONS, LOG_USAGE, numberFlag } from './common.js';
import { pipelineOf, secondBus, secondEtl } from './parallel.js';
import {
  busFor,
  clockFor,
  consumersFollowRegistry,
  etlConfigOf,
  objectStoreFor,
  openRegistry,
  warehouseFor,
} from './pipeline.js';
import { untilSignal } from './signals.js';
import type { CliIo } from './usage.js';

export const ETL_USAGE = `Usage: hourglass etl [--roles R] [--data-dir D] [--schemas DIR] [--time-scale N] [--config FILE]
                     [--metrics-port P] [--pipeline NAME] [--log-level L] [--log-format F]

Runs the ETL on its own: a consumer per event type writing raw hour files, the closer, and the
dedup step publishing final partitions. Use it with \`hourglass dev --no-etl\` on the same data dir
(and state store): the types come from the registry, and consumers follow its changes.
Batch jobs (closing, dedup and publication, warehouse loads) are claimed in the state store, so
several \`hourglass etl\` processes on one store (PostgreSQL across machines) share them.
Serves /metrics (Prometheus) and /healthz on --metrics-port.
  --roles R         what this process does, comma-separated (default all; setting etl.roles):
                    consume  a consumer per event type writing raw files (opens the bus)
                    close    closing ended hours (opens the bus)
                    dedup    dedup and publication of closed partitions
                    load     loading published partitions into the warehouse
                    e.g. --roles dedup runs a batch worker that needs only the state and object stores
  --metrics-port P  port of /metrics and /healthz (default 8082; 0 picks a free one)
  --pipeline NAME   in a parallel run, the pipeline whose ETL this is: main (default) or
                    parallel.name (consumes the second bus into pipelines/<name>/)
${LOG_USAGE}
${DATA_DIR_USAGE}`;

export async function runEtl(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      ...LOG_OPTIONS,
      'metrics-port': { type: 'string' },
      pipeline: { type: 'string' },
      roles: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${ETL_USAGE}\n`);
    return 0;
  }
  const config = configFromFlags(values, {
    'etl.metricsPort': numberFlag('metrics-port', values['metrics-port']),
    'etl.roles': values.roles,
  });
  const roles = config.etl.roles;
  const logger = createLogger(config.logLevel, config.logFormat);
  tightenDataDir(config.dataDir, logger);
  const clock = clockFor(config);
  const pipeline = pipelineOf(config, values.pipeline);
  const { state, catalog } = await openRegistry(config, logger);
  const parallel = pipeline === MAIN_PIPELINE ? null : config.parallel;
  // only consumers and the closer use the bus: a batch worker runs without it
  const needsBus = roles.has('consume') || roles.has('close');
  const bus: Bus | null = !needsBus
    ? null
    : parallel === null
      ? await busFor(config, clock, logger)
      : await secondBus(config, parallel, clock, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hourglass_process_' });
  const app = Fastify({ loggerInstance: logger.child({ component: 'etl-metrics' }) as FastifyBaseLogger });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
  let etlState: StateStore = state;
  let etl: EtlService;
  if (parallel === null) {
    etl = new EtlService({
      bus,
      objects: await objectStoreFor(config),
      state,
      catalog: catalog.catalog,
      clock,
      logger,
      registry,
      config: etlConfigOf(config),
      workDir: etlWorkDir(config.dataDir),
      warehouse: roles.has('load') ? await warehouseFor(config) : null,
      roles,
    });
  } else {
    const second = await secondEtl(config, parallel, {
      bus,
      shared: state,
      catalog: catalog.catalog,
      clock,
      logger,
      registry,
      roles,
    });
    etl = second.etl;
    etlState = second.state;
  }
  if (bus !== null)
    registerPipelineMetrics({ bus, store: etlState, catalog: catalog.catalog, clock, logger, registry });
  try {
    await etl.start();
    // types registered, evolved or retired while running: consumers follow the registry
    consumersFollowRegistry(etl, catalog.catalog, catalog.sync);
    catalog.sync.start();
    const url = await app.listen({ host: config.etl.metricsHost, port: config.etl.metricsPort });
    io.stdout.write(
      `hourglass etl: pipeline ${pipeline}, roles ${rolesText(roles)}, ${catalog.catalog.list().length} event types, data dir ${config.dataDir}, metrics on ${url}/metrics\n`,
    );
    await untilSignal(logger);
  } finally {
    await app.close();
    await catalog.sync.stop();
    await etl.close();
    await bus?.close();
    if (etlState !== state) await etlState.close();
    await state.close();
  }
  logger.flush();
  return 0;
}
