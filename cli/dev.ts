/** `hourglass dev`: the whole pipeline on the embedded default, in one process. */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { DEFAULTS } from '../core/defaults.js';
import { createLogger } from '../core/logger.js';
import { DEV_KEY_FILE, DEV_TOKEN_FILE, ensureDevKey, ensureDevToken } from './dev-key.js';
import { startPipeline } from './pipeline.js';
import { untilSignal } from './signals.js';
import { type CliIo, UsageError } from './usage.js';

export const DEV_USAGE = `Usage: hourglass dev [--port P] [--host H] [--data-dir D] [--schemas DIR] [--time-scale N]
                     [--config FILE] [--log-level L] [--no-etl]

Runs the whole pipeline in one process on the embedded backends (bus, SQLite state, local object
store, DuckDB): the ingress, and the ETL that writes raw hour files, closes complete hours and
publishes deduplicated final partitions, for the event types under --schemas.
  --port P          HTTP port (default 8080; 0 picks a free one)
  --host H          address to listen on (default 127.0.0.1)
  --data-dir D      where the bus and state live (default ./.hourglass)
  --schemas DIR     event type declarations (default ./schemas)
  --time-scale N    make time run N times faster (dev and tests only; default 1)
  --config FILE     JSON config file (see README, Configuration)
  --log-level L     fatal|error|warn|info|debug|trace|silent (default info)
  --no-etl          run the ingress only (run \`hourglass etl\` on the same data dir)`;

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
      'no-etl': { type: 'boolean' },
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
  const pipeline = await startPipeline(config, logger, { etl: values['no-etl'] !== true });
  const devKey = config.ingress.auth ? await ensureDevKey(config.dataDir, pipeline.store) : null;
  const devToken = await ensureDevToken(config.dataDir, pipeline.store);
  const types = pipeline.catalog
    .list()
    .filter((t) => t.status === 'active')
    .map((t) => t.name);
  io.stdout.write(
    `hourglass dev: ingress on ${pipeline.url}${pipeline.adminUrl !== pipeline.url ? ` (registry, dashboard, reads on ${pipeline.adminUrl})` : ''} — ${pipeline.catalog.list().length} event types (${pipeline.catalog
      .list()
      .map((t) => t.name)
      .join(', ')}), data dir ${config.dataDir}${config.timeScale !== 1 ? `, time ×${config.timeScale}` : ''}\n` +
      (devKey === null
        ? 'producer keys: off (ingress.auth), POST /v1/events takes no key\n'
        : `producer key: ${devKey.key} (all types; ${devKey.created ? 'new, ' : ''}saved in ${join(config.dataDir, DEV_KEY_FILE)})\n`) +
      `send traffic: npx hourglass send --url ${pipeline.url}${config.dataDir === resolve(DEFAULTS.dataDir) ? '' : ` --data-dir ${config.dataDir}`} --type ${types.join(',')} --rate 1000 --duration 10\n` +
      `dashboard:    ${pipeline.adminUrl}/dashboard#token=${devToken.token}\n` +
      `              (an admin registry token, saved in ${join(config.dataDir, DEV_TOKEN_FILE)})\n` +
      `see hours:    npx hourglass hours --data-dir ${config.dataDir}${config.timeScale !== 1 ? ` --time-scale ${config.timeScale}` : ''}\n` +
      `query:        npx hourglass query --data-dir ${config.dataDir} "SELECT date, hour, count(*) FROM ${pipeline.catalog.list()[0]?.name ?? 'EndSong'} GROUP BY ALL ORDER BY ALL"\n`,
  );
  await untilSignal(logger);
  await pipeline.close().catch((err: unknown) => logger.error({ err }, 'stopping failed'));
  logger.flush();
  return 0;
}
