/**
 * The BigQuery warehouse: a table per event type in one dataset, loaded from the published
 * partitions' Parquet files in Cloud Storage with one load job per partition. Every REST call
 * goes through the @google-cloud/bigquery client.
 *
 * Tables (`ensureTable`): the dataset is created if missing (in `location`); the table is named
 * after the type, has the columns of schema.ts, and is partitioned by HOUR (hourly types) or DAY
 * (daily types) on `event_arrival_time`, with partitions expiring after the type's
 * `retentionDays` (like its files). A newer schema version adds its new columns (NULLABLE) with a
 * tables.patch; columns are never dropped, and a column whose type changed is a
 * WarehouseSchemaConflict (BigQuery cannot change it). A table created concurrently by another
 * process (409) is taken as it is and patched if needed. What was ensured is remembered per type
 * and schema fingerprint, so the loader's calls cost one round of requests per process.
 *
 * Loads (`loadPartition`): one jobs.insert of a load job — source format PARQUET (list inference,
 * maps as arrays of key/value records, see schema.ts), the partition's files as `gs://` URIs
 * (`sourceUri`), destination the partition decorator `<Type>$YYYYMMDDHH` (hourly) or
 * `<Type>$YYYYMMDD` (daily), write disposition WRITE_TRUNCATE, create disposition CREATE_NEVER —
 * then jobs.get until the job is DONE (waits grow from `pollIntervalRealMs` to
 * `maxPollIntervalRealMs`). The job replaces the partition's rows atomically, so loading the same
 * partition again is idempotent. A job that ends with an error → WarehouseLoadFailed carrying the
 * job's errors; `statistics.load.outputRows` different from the manifest's row count →
 * WarehouseLoadFailed (`row_count_mismatch`; the rows are committed by then: the partition stays
 * unmarked and a retry loads it again). A partition without files deletes the partition
 * (tables.delete of the decorator) instead: there is nothing to load, and nothing may remain.
 * The job also carries `jobTimeoutMs`, so BigQuery cancels a load that runs longer than
 * `jobTimeoutRealMs`; waiting gives up a minute later (WarehouseLoadFailed `timeout`, retriable).
 *
 * Queries (`query`): a query job (jobs.insert, standard SQL, the dataset as default dataset so
 * `SELECT … FROM EndSong` works) and jobs.getQueryResults until complete, page by page. Values
 * come as the client parses them, made plain: INT64 a number when it is a safe integer, else its
 * decimal string; FLOAT64 a number; BOOL a boolean; TIMESTAMP an ISO 8601 string in UTC (nine
 * fractional digits, as the client formats it); DATE, TIME, DATETIME their strings; NUMERIC,
 * BIGNUMERIC decimal strings; BYTES base64; JSON its text; RECORD an object; REPEATED an array (a
 * map column stays an array of `{ key, value }`).
 *
 * SQL for data engineers: {@link hiveViewSql} gives a view with the `date` and `hour` columns the
 * DuckDB views have, derived from the arrival time (not created by the backend).
 *
 * Connection: Google's endpoint with Application Default Credentials, or `apiEndpoint` (an
 * emulator or the test double) without credentials unless `anonymous: false`. Note that the
 * client library prefers the BIGQUERY_EMULATOR_HOST environment variable over `apiEndpoint`.
 * Errors of API calls → WarehouseUnavailable (retriable for network errors, 429 and 5xx).
 */
import {
  BigQuery,
  type BigQueryOptions,
  type Dataset,
  type Job,
  type JobMetadata,
  type TableField,
} from '@google-cloud/bigquery';
import { type Clock, SystemClock } from '../../../core/clock.js';
import type { HourglassError } from '../../../core/errors.js';
import { type EventType, latestVersion } from '../../../core/event-types.js';
import { HOUR_MS } from '../../../core/hours.js';
import type { QueryResult, Warehouse, WarehousePartition } from '../../../core/ports/warehouse.js';
import {
  apiError,
  apiErrorsOf,
  httpStatusOf,
  type JobError,
  WarehouseLoadFailed,
  WarehouseQueryFailed,
  WarehouseSchemaConflict,
} from './errors.js';
import { bigQueryFields, type ExistingField, mergeFields, PARTITION_COLUMN } from './schema.js';

export interface BigQueryWarehouseOptions {
  readonly projectId: string;
  /** Dataset id (letters, digits, `_`). */
  readonly dataset: string;
  /** Location of the dataset and the jobs (e.g. `EU`); default: BigQuery's (US). */
  readonly location?: string;
  /** Another endpoint than Google's (an emulator, the test double), e.g. `http://127.0.0.1:9050`. */
  readonly apiEndpoint?: string;
  /** Send no credentials. Default: true when `apiEndpoint` is given, else false. */
  readonly anonymous?: boolean;
  /** The `gs://bucket/…` URI of a data file, from its object name. */
  readonly sourceUri: (objectName: string) => string;
  /** Sleeps between polls of a running job; it must sleep real milliseconds. Default: SystemClock. */
  readonly clock?: Clock;
  /** First wait between two polls of a job, real ms (default 500); it grows 1.5× a poll. */
  readonly pollIntervalRealMs?: number;
  /** Longest wait between two polls, real ms (default 5000). */
  readonly maxPollIntervalRealMs?: number;
  /** Longest a load job may run, real ms (default 30 minutes). */
  readonly jobTimeoutRealMs?: number;
}

const LOAD_TIMEOUT_GRACE_MS = 60_000;
const DAY_MS = 24 * HOUR_MS;

/** `YYYYMMDDHH` (hourly) or `YYYYMMDD` (daily) of a partition start, UTC. */
export function partitionDecorator(start: number, daily: boolean): string {
  const iso = new Date(start).toISOString(); // 2026-11-22T10:00:00.000Z
  const day = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}`;
  return daily ? day : `${day}${iso.slice(11, 13)}`;
}

/** A BigQuery identifier in backticks. */
function ident(...parts: string[]): string {
  return `\`${parts.join('.').replaceAll('`', '\\`')}\``;
}

/**
 * A view over a type's table with the Hive-style columns of the DuckDB views: `date` (DATE) and,
 * for hourly types, `hour` (INT64), both of the arrival time in UTC. A filter on
 * `event_arrival_time` itself is the one BigQuery is sure to prune partitions with.
 */
export function hiveViewSql(
  projectId: string,
  dataset: string,
  type: EventType,
  viewName = `${type.name}_hive`,
): string {
  const hour = type.partitioning === 'hourly' ? `, EXTRACT(HOUR FROM ${PARTITION_COLUMN}) AS hour` : '';
  return (
    `CREATE OR REPLACE VIEW ${ident(projectId, dataset, viewName)} AS ` +
    `SELECT *, DATE(${PARTITION_COLUMN}) AS date${hour} FROM ${ident(projectId, dataset, type.name)}`
  );
}

/** An auth client that adds no credentials (the library would otherwise look for ADC). */
const NO_CREDENTIALS = { getRequestHeaders: async () => new Headers() } as unknown as BigQueryOptions['authClient'];

export class BigQueryWarehouse implements Warehouse {
  readonly backend = 'bigquery';
  private readonly bq: BigQuery;
  private readonly dataset: Dataset;
  private readonly clock: Clock;
  private readonly pollMs: number;
  private readonly maxPollMs: number;
  private readonly jobTimeoutMs: number;
  private datasetReady: Promise<void> | null = null;
  /** Type name → fingerprint of the schema version whose table is known to be in place. */
  private readonly ensured = new Map<string, string>();

  constructor(private readonly o: BigQueryWarehouseOptions) {
    const anonymous = o.anonymous ?? o.apiEndpoint !== undefined;
    this.bq = new BigQuery({
      projectId: o.projectId,
      ...(o.location !== undefined ? { location: o.location } : {}),
      ...(o.apiEndpoint !== undefined ? { apiEndpoint: o.apiEndpoint } : {}),
      ...(anonymous ? { authClient: NO_CREDENTIALS } : {}),
    });
    this.dataset = this.bq.dataset(o.dataset);
    this.clock = o.clock ?? new SystemClock();
    this.pollMs = o.pollIntervalRealMs ?? 500;
    this.maxPollMs = Math.max(this.pollMs, o.maxPollIntervalRealMs ?? 5000);
    this.jobTimeoutMs = o.jobTimeoutRealMs ?? 30 * 60_000;
  }

  /** The client, for callers that need more of BigQuery (tests, tooling). */
  get client(): BigQuery {
    return this.bq;
  }

  async ensureTable(type: EventType): Promise<void> {
    const latest = latestVersion(type);
    if (this.ensured.get(type.name) === latest.fingerprint) return;
    const fields = bigQueryFields(latest.type, type.name);
    await this.ensureDataset();
    const partitioning = {
      type: type.partitioning === 'daily' ? 'DAY' : 'HOUR',
      field: PARTITION_COLUMN,
      expirationMs: String(type.retentionDays * DAY_MS),
    };
    const table = this.dataset.table(type.name);
    let current = await this.tableMetadata(type.name);
    if (current === null) {
      try {
        await this.dataset.createTable(type.name, {
          schema: { fields: fields as TableField[] },
          timePartitioning: partitioning,
          description: tableDescription(type),
        });
        this.ensured.set(type.name, latest.fingerprint);
        return;
      } catch (err) {
        if (httpStatusOf(err) !== 409) throw apiError(err, `tables.insert of ${type.name}`);
        // created meanwhile by another process: check it like an existing table
        current = await this.tableMetadata(type.name);
        if (current === null) throw apiError(err, `tables.insert of ${type.name}`);
      }
    }
    const tp = current.timePartitioning as { type?: string; field?: string; expirationMs?: string } | undefined;
    if (tp?.type !== partitioning.type || tp.field !== PARTITION_COLUMN) {
      throw new WarehouseSchemaConflict({
        type: type.name,
        rule: `the table is partitioned ${tp ? `by ${tp.type} on ${tp.field ?? '_PARTITIONTIME'}` : 'not at all'}, the type needs ${partitioning.type} on ${PARTITION_COLUMN}`,
      });
    }
    const schema = current.schema as { fields?: ExistingField[] } | undefined;
    const merge = mergeFields(schema?.fields ?? [], fields, type.name);
    const patch: Record<string, unknown> = {};
    if (merge.added.length + merge.relaxed.length > 0) patch.schema = { fields: merge.fields };
    if (tp.expirationMs !== partitioning.expirationMs) patch.timePartitioning = { ...tp, ...partitioning };
    if (Object.keys(patch).length > 0) {
      try {
        await table.setMetadata(patch);
      } catch (err) {
        throw apiError(err, `tables.patch of ${type.name}`);
      }
    }
    this.ensured.set(type.name, latest.fingerprint);
  }

  async loadPartition(p: WarehousePartition): Promise<{ readonly rows: number }> {
    const unit = p.daily ? DAY_MS : HOUR_MS;
    if (p.start % unit !== 0) {
      throw new RangeError(`partition start ${p.start} is not the start of ${p.daily ? 'a day' : 'an hour'} (UTC)`);
    }
    if (p.daily !== (p.type.partitioning === 'daily')) {
      throw new WarehouseSchemaConflict({
        type: p.type.name,
        rule: `a ${p.daily ? 'daily' : 'hourly'} partition of a type partitioned ${p.type.partitioning}`,
      });
    }
    await this.ensureTable(p.type);
    const decorator = partitionDecorator(p.start, p.daily);
    const destination = `${p.type.name}$${decorator}`;
    if (p.files.length === 0) {
      if (p.rows !== 0) {
        throw new WarehouseLoadFailed({
          type: p.type.name,
          destination,
          jobId: '-',
          failure: 'row_count_mismatch',
          expectedRows: p.rows,
          loadedRows: 0,
        });
      }
      try {
        await this.dataset.table(destination).delete();
      } catch (err) {
        if (httpStatusOf(err) !== 404) throw apiError(err, `tables.delete of ${destination}`);
      }
      return { rows: 0 };
    }
    let job: Job;
    try {
      [job] = await this.bq.createJob({
        configuration: {
          load: {
            sourceUris: p.files.map((f) => this.o.sourceUri(f)),
            sourceFormat: 'PARQUET',
            parquetOptions: { enableListInference: true, mapTargetType: 'ARRAY_OF_STRUCT' },
            destinationTable: { projectId: this.o.projectId, datasetId: this.o.dataset, tableId: destination },
            writeDisposition: 'WRITE_TRUNCATE',
            createDisposition: 'CREATE_NEVER',
          },
          jobTimeoutMs: String(this.jobTimeoutMs),
        },
        jobPrefix: `hourglass_load_${p.type.name}_${decorator}_`,
      });
    } catch (err) {
      // the job was created but failed at once: the insert's answer holds its status
      const status = (err as { response?: JobMetadata }).response?.status;
      const jobId = (err as { response?: JobMetadata }).response?.jobReference?.jobId ?? '-';
      if (status?.errorResult || status?.errors) {
        throw new WarehouseLoadFailed(
          { type: p.type.name, destination, jobId, failure: 'job_failed' },
          jobErrors(status),
        );
      }
      throw apiError(err, `jobs.insert of a load into ${destination}`);
    }
    const jobId = job.id ?? '-';
    const meta = await this.waitForJob(job, this.jobTimeoutMs + LOAD_TIMEOUT_GRACE_MS);
    if (meta === null) throw new WarehouseLoadFailed({ type: p.type.name, destination, jobId, failure: 'timeout' });
    if (meta.status?.errorResult) {
      throw new WarehouseLoadFailed(
        { type: p.type.name, destination, jobId, failure: 'job_failed' },
        jobErrors(meta.status),
      );
    }
    const output = meta.statistics?.load?.outputRows;
    const rows = output === undefined || output === null ? Number.NaN : Number(output);
    if (rows !== p.rows) {
      throw new WarehouseLoadFailed({
        type: p.type.name,
        destination,
        jobId,
        failure: 'row_count_mismatch',
        expectedRows: p.rows,
        ...(Number.isFinite(rows) ? { loadedRows: rows } : {}),
      });
    }
    return { rows };
  }

  async query(sql: string): Promise<QueryResult> {
    let job: Job;
    try {
      [job] = await this.bq.createQueryJob({
        query: sql,
        useLegacySql: false,
        defaultDataset: { projectId: this.o.projectId, datasetId: this.o.dataset },
        jobPrefix: 'hourglass_query_',
      });
    } catch (err) {
      throw queryError(err, undefined);
    }
    const rows: Record<string, unknown>[] = [];
    let columns: string[] = [];
    let pageToken: string | undefined;
    let wait = this.pollMs;
    for (;;) {
      let page: unknown[];
      let resp: { jobComplete?: boolean; schema?: { fields?: { name?: string }[] }; pageToken?: string } | undefined;
      try {
        const answer = await job.getQueryResults({
          autoPaginate: false,
          wrapIntegers: { integerTypeCastFunction: safeInteger },
          ...(pageToken !== undefined ? { pageToken } : {}),
        });
        page = answer[0] as unknown[];
        resp = answer[2] as typeof resp;
      } catch (err) {
        throw queryError(err, job.id);
      }
      if (resp?.jobComplete === false) {
        await this.clock.sleep(wait);
        wait = Math.min(this.maxPollMs, wait * 1.5);
        continue;
      }
      if (resp?.schema?.fields) columns = resp.schema.fields.map((f) => f.name ?? '');
      for (const row of page) rows.push(plain(row) as Record<string, unknown>);
      pageToken = resp?.pageToken ?? undefined;
      if (!pageToken) break;
    }
    return { columns, rows };
  }

  async close(): Promise<void> {
    // the client holds no connection of its own to close
  }

  private ensureDataset(): Promise<void> {
    this.datasetReady ??= (async () => {
      try {
        await this.dataset.getMetadata();
        return;
      } catch (err) {
        if (httpStatusOf(err) !== 404) throw apiError(err, `datasets.get of ${this.o.dataset}`);
      }
      try {
        await this.bq.createDataset(this.o.dataset, {
          ...(this.o.location !== undefined ? { location: this.o.location } : {}),
          description: 'Hourglass event types: a table per type, loaded from the published partitions.',
        });
      } catch (err) {
        if (httpStatusOf(err) !== 409) throw apiError(err, `datasets.insert of ${this.o.dataset}`);
      }
    })().catch((err: unknown) => {
      this.datasetReady = null;
      throw err;
    });
    return this.datasetReady;
  }

  /** The table's resource, or null when it does not exist. */
  private async tableMetadata(name: string): Promise<Record<string, unknown> | null> {
    try {
      const [meta] = await this.dataset.table(name).getMetadata();
      return meta as Record<string, unknown>;
    } catch (err) {
      if (httpStatusOf(err) === 404) return null;
      throw apiError(err, `tables.get of ${name}`);
    }
  }

  /** Polls jobs.get until the job is DONE; null when `timeoutMs` passed first. */
  private async waitForJob(job: Job, timeoutMs: number): Promise<JobMetadata | null> {
    const deadline = performance.now() + timeoutMs;
    let meta = job.metadata as JobMetadata | undefined;
    let wait = this.pollMs;
    while (meta?.status?.state !== 'DONE') {
      if (performance.now() >= deadline) return null;
      await this.clock.sleep(wait);
      wait = Math.min(this.maxPollMs, wait * 1.5);
      try {
        [meta] = await job.getMetadata();
      } catch (err) {
        throw apiError(err, `jobs.get of ${job.id}`);
      }
    }
    return meta;
  }
}

function tableDescription(type: EventType): string {
  const text = `${type.description} (owner: ${type.owner}; loaded by Hourglass from the published partitions)`;
  return text.slice(0, 16_384);
}

type JobStatus = NonNullable<JobMetadata['status']>;

/** The job's errors: errorResult first, then the others. */
function jobErrors(status: JobStatus): JobError[] {
  const all = [...(status.errorResult ? [status.errorResult] : []), ...(status.errors ?? [])];
  const seen = new Set<string>();
  const out: JobError[] = [];
  for (const e of all) {
    const err: JobError = {
      reason: e.reason ?? 'unknown',
      message: e.message ?? '',
      ...(e.location ? { location: e.location } : {}),
    };
    const key = `${err.reason}\u0000${err.message}\u0000${err.location ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(err);
  }
  return out;
}

/** A failed query (BigQuery's 4xx answers, a failed job) → WarehouseQueryFailed; others unavailable. */
function queryError(err: unknown, jobId: string | undefined): HourglassError {
  const status = httpStatusOf(err);
  const response = (err as { response?: JobMetadata }).response;
  if (response?.status?.errorResult || response?.status?.errors) {
    return new WarehouseQueryFailed({ jobId: response.jobReference?.jobId ?? jobId }, jobErrors(response.status), {
      cause: err,
    });
  }
  if (status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 403 && status !== 401) {
    const errors = apiErrorsOf(err);
    return new WarehouseQueryFailed(
      jobId !== undefined ? { jobId } : {},
      errors.length > 0 ? errors : [{ reason: 'invalid', message: (err as Error).message }],
      { cause: err },
    );
  }
  return apiError(err, 'query');
}

/** INT64 as a number when that is exact, else as its decimal string. */
function safeInteger(value: string): number | string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
}

/** A value as the client parses it, made plain (see the module comment). */
function plain(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(plain);
  if (Buffer.isBuffer(v)) return v.toString('base64');
  const o = v as Record<string, unknown>;
  // BigQueryTimestamp, BigQueryDate, BigQueryDatetime, BigQueryTime: { value: string }
  if (typeof o.value === 'string' && v.constructor !== Object) return o.value;
  // big.js (NUMERIC, BIGNUMERIC)
  if (v.constructor?.name === 'Big') return String(v);
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]));
}
