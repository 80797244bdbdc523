/** `hourglass query`: SQL over the published final partitions (DuckDB). */
import { parseArgs } from 'node:util';
import { MAIN_PIPELINE } from '../core/config.js';
import { EventCatalog } from '../core/event-types.js';
import { runQuery } from '../etl/query.js';
import { RegistryTypes } from '../orchestrator/catalog-sync.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, formatFlag, formatRows } from './common.js';
import { PIPELINE_USAGE, pipelineOf } from './parallel.js';
import { objectStoreFor, openStateStore, warehouseFor } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const QUERY_USAGE = `Usage: hourglass query [--data-dir D] [--format table|csv|json] [--warehouse duckdb|bigquery] [--pipeline NAME] "<SQL>"

Runs SQL with DuckDB over the published partitions: one view per event type (named after it),
with the columns event_id, event_arrival_time, …, the payload fields, and date/hour (Hive
partition columns, DATE and INTEGER: filter on them to read only those partitions). Unpublished
hours are invisible. A type whose view cannot be made is named on stderr with the reason; the SQL
runs over the other types' views.
With --warehouse bigquery (or warehouse.backend "bigquery"), the SQL runs in BigQuery over the
tables of the types stored in the warehouse (the configured dataset is the default one).
  -f, --format F    table (default), csv, or json (a JSON array of rows)
  --warehouse W     duckdb (default) or bigquery
${PIPELINE_USAGE} (DuckDB over its partitions)
${DATA_DIR_USAGE}`;

export async function runQueryCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      format: { type: 'string', short: 'f' },
      warehouse: { type: 'string' },
      pipeline: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${QUERY_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('give the SQL as one argument (quote it)');
  const format = formatFlag(values.format);
  const config = configFromFlags(values, { 'warehouse.backend': values.warehouse }, { existingDataDir: true });
  const pipeline = pipelineOf(config, values.pipeline);
  if (config.warehouse.backend === 'bigquery' && pipeline === MAIN_PIPELINE) {
    const warehouse = await warehouseFor(config);
    if (warehouse === null) throw new UsageError('BigQuery needs store.backend "gcs" and a project');
    try {
      const result = await warehouse.query(positionals[0] as string);
      io.stdout.write(formatRows(result.columns, result.rows, format));
      return 0;
    } finally {
      await warehouse.close();
    }
  }
  // the registry's types give views even to types with nothing published yet
  const store = await openStateStore(config);
  let catalog: EventCatalog;
  try {
    const types = new RegistryTypes();
    catalog = new EventCatalog((await store.listTypes()).map((t) => types.toEventType(t)));
  } finally {
    await store.close();
  }
  try {
    const result = await runQuery(positionals[0] as string, await objectStoreFor(config, pipeline), catalog, {
      memoryBytes: config.etl.duckdbMemoryBytes,
      threads: config.etl.duckdbThreads,
      // a type whose view cannot be made is named; the SQL runs over the others
      onSkipped: (v) => io.stderr.write(`hourglass query: no view for type ${v.type}: ${v.reason}\n`),
    });
    io.stdout.write(formatRows(result.columns, result.rows, format));
    return 0;
  } catch (err) {
    const msg = (err as Error).message;
    if (/Error:/.test(msg) && !(err as NodeJS.ErrnoException).syscall) {
      // DuckDB's own message says what is wrong with the SQL
      io.stderr.write(`hourglass query: ${msg}\n`);
      return 1;
    }
    throw err;
  }
}
