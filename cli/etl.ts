/** `hourglass etl`: the ETL (consumers, closer, dedup) as a process of its own. */
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createLogger } from '../core/logger.js';
import { EtlService, etlWorkDir } from '../etl/service.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE } from './common.js';
import { busFor, clockFor, etlConfigOf, objectStoreFor, openStateStore, registryCatalog } from './pipeline.js';
import { untilSignal } from './signals.js';
import type { CliIo } from './usage.js';

export const ETL_USAGE = `Usage: hourglass etl [--data-dir D] [--schemas DIR] [--time-scale N] [--config FILE]

Runs the ETL on its own: a consumer per event type writing raw hour files, the closer, and the
dedup step publishing final partitions. Use it with \`hourglass dev --no-etl\` on the same data dir
(and state store): the types come from the registry, and consumers follow its changes.
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
  const clock = clockFor(config);
  const state = await openStateStore(config);
  let catalog: Awaited<ReturnType<typeof registryCatalog>>;
  try {
    catalog = await registryCatalog(config, state, logger);
  } catch (err) {
    await state.close();
    throw err;
  }
  const bus = busFor(config, clock, logger);
  const etl = new EtlService({
    bus,
    objects: objectStoreFor(config),
    state,
    catalog: catalog.catalog,
    clock,
    logger,
    registry: new Registry(),
    config: etlConfigOf(config),
    workDir: etlWorkDir(config.dataDir),
  });
  try {
    await etl.start();
    // types registered, evolved or retired while running: consumers follow the registry
    catalog.sync.onChange(async (changed) => {
      for (const name of changed) {
        const t = catalog.catalog.get(name);
        if (t === undefined || t.status === 'retired') await etl.stopConsumer(name);
        else await etl.ensureConsumer(t);
      }
    });
    catalog.sync.start();
    io.stdout.write(`hourglass etl: ${catalog.catalog.list().length} event types, data dir ${config.dataDir}\n`);
    await untilSignal(logger);
  } finally {
    await catalog.sync.stop();
    await etl.close();
    await bus.close();
    await state.close();
  }
  logger.flush();
  return 0;
}
