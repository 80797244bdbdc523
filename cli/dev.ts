/** `hourglass dev`: the whole pipeline on the embedded default, in one process. */
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { startPipeline } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const DEV_USAGE = `Usage: hourglass dev [--port P] [--host H] [--data-dir D] [--schemas DIR] [--time-scale N]
                     [--config FILE] [--log-level L]

Runs the ingress on the embedded bus and SQLite state store, with the event types under --schemas.
  --port P          HTTP port (default 8080; 0 picks a free one)
  --host H          address to listen on (default 127.0.0.1)
  --data-dir D      where the bus and state live (default ./.hourglass)
  --schemas DIR     event type declarations (default ./schemas)
  --time-scale N    make time run N times faster (dev and tests only; default 1)
  --config FILE     JSON config file (see README, Configuration)
  --log-level L     fatal|error|warn|info|debug|trace|silent (default info)`;

export async function runDev(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      schemas: { type: 'string' },
      'time-scale': { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${DEV_USAGE}\n`);
    return 0;
  }
  const number = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got ${JSON.stringify(v)}`);
    return n;
  };
  const config = loadConfig({
    file: values.config,
    env: process.env,
    overrides: {
      'ingress.port': number('port', values.port),
      'ingress.host': values.host,
      dataDir: values['data-dir'],
      schemasDir: values.schemas,
      timeScale: number('time-scale', values['time-scale']),
      logLevel: values['log-level'],
    },
  });
  const logger = createLogger(config.logLevel);
  const pipeline = await startPipeline(config, logger);
  io.stdout.write(
    `hourglass dev: ingress on ${pipeline.url} — ${pipeline.catalog.list().length} event types (${pipeline.catalog
      .list()
      .map((t) => t.name)
      .join(', ')}), data dir ${config.dataDir}${config.timeScale !== 1 ? `, time ×${config.timeScale}` : ''}\n` +
      `send traffic: npx hourglass send --url ${pipeline.url} --type ${pipeline.catalog
        .list()
        .map((t) => t.name)
        .join(',')} --rate 1000 --duration 10\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      logger.info({ signal }, 'stopping');
      pipeline.close().then(resolve, (err: unknown) => {
        logger.error({ err }, 'stopping failed');
        resolve();
      });
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
  logger.flush();
  return 0;
}
