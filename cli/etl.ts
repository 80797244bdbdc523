/** `hourglass etl`: the ETL (consumers, closer, dedup) as a process of its own. */
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createLogger } from '../core/logger.js';
import { EtlService, etlWorkDir } from '../etl/service.js';
import { provisionBus } from '../orchestrator/provision.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE } from './common.js';
import { busFor, clockFor, etlConfigOf, loadCatalog, objectStoreFor, openStateStore } from './pipeline.js';
import { untilSignal } from './signals.js';
import type { CliIo } from './usage.js';

export const ETL_USAGE = `Usage: hourglass etl [--data-dir D] [--schemas DIR] [--time-scale N] [--config FILE]

Runs the ETL on its own: a consumer per event type writing raw hour files, the closer, and the
dedup step publishing final partitions. Use it with \`hourglass dev --no-etl\` on the same data dir.
${DATA_DIR_USAGE}
  --log-level L     fatal|error|warn|info|debug|trace|silent (default info)`;

export async function runEtl(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: DATA_DIR_OPTIONS, strict: true });
  if (values.help) {
    io.stdout.write(`${ETL_USAGE}\n`);
    return 0;
  }
  const config = configFromFlags(values);
  const logger = createLogger(config.logLevel);
  const catalog = await loadCatalog(config);
  const clock = clockFor(config);
  const state = await openStateStore(config);
  const bus = busFor(config, clock, logger);
  const etl = new EtlService({
    bus,
    objects: objectStoreFor(config),
    state,
    catalog,
    clock,
    logger,
    registry: new Registry(),
    config: etlConfigOf(config),
    workDir: etlWorkDir(config.dataDir),
  });
  try {
    await provisionBus(bus, catalog.list(), logger);
    await etl.start();
    io.stdout.write(`hourglass etl: ${catalog.list().length} event types, data dir ${config.dataDir}\n`);
    await untilSignal(logger);
  } finally {
    await etl.close();
    await bus.close();
    await state.close();
  }
  logger.flush();
  return 0;
}
