/** `hourglass dev`: the whole pipeline on the embedded default, in one process. */
import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, LOG_OPTIONS, LOG_USAGE, numberFlag } from './common.js';
import { announceDev } from './dev-banner.js';
import { ensureDevKey, ensureDevToken } from './dev-key.js';
import { startPipeline } from './pipeline.js';
import { untilSignal } from './signals.js';
import type { CliIo } from './usage.js';

export const DEV_USAGE = `Usage: hourglass dev [--port P] [--host H] [--data-dir D] [--schemas DIR] [--time-scale N]
                     [--config FILE] [--log-level L] [--log-format F] [--no-etl]

Runs the whole pipeline in one process on the embedded backends (bus, SQLite state, local object
store, DuckDB): the ingress, and the ETL that writes raw hour files, closes complete hours and
publishes deduplicated final partitions, for the event types under --schemas. GET / on the port
that serves the dashboard redirects to it.
  --port P          HTTP port (default 8080; 0 picks a free one)
  --host H          address to listen on (default 127.0.0.1)
  --no-etl          run the ingress only (run \`hourglass etl\` on the same data dir)
${LOG_USAGE}
${DATA_DIR_USAGE.replace('the time scale the pipeline runs with', 'make time run N times faster')}`;

export async function runDev(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      ...LOG_OPTIONS,
      port: { type: 'string' },
      host: { type: 'string' },
      'no-etl': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${DEV_USAGE}\n`);
    return 0;
  }
  const config = configFromFlags(values, {
    'ingress.port': numberFlag('port', values.port),
    'ingress.host': values.host,
  });
  const logger = createLogger(config.logLevel, config.logFormat);
  const pipeline = await startPipeline(config, logger, { etl: values['no-etl'] !== true });
  const types = pipeline.catalog.list();
  // trapped before the banner: whoever waits for it may stop the process at once
  const stopped = untilSignal(logger);
  announceDev(io, logger, config, {
    url: pipeline.url,
    adminUrl: pipeline.adminUrl,
    types: types.map((t) => t.name),
    activeTypes: types.filter((t) => t.status === 'active').map((t) => t.name),
    key: config.ingress.auth ? await ensureDevKey(config.dataDir, pipeline.store) : null,
    token: (await ensureDevToken(config.dataDir, pipeline.store)).token,
  });
  await stopped;
  await pipeline.close().catch((err: unknown) => logger.error({ err }, 'stopping failed'));
  logger.flush();
  return 0;
}
