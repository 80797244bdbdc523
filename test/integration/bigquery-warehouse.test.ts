/**
 * The BigQuery warehouse through the real @google-cloud/bigquery client, against the REST double
 * (test/fixtures/bigquery-double.ts): tables, schema evolution, load jobs into partition
 * decorators, job failures, row-count checks, queries — asserting the requests the client sent.
 *
 * Against another endpoint, set BIGQUERY_TEST_ENDPOINT (and BIGQUERY_TEST_PROJECT, default
 * `hourglass-test`), e.g. a BigQuery emulator started with `--project=hourglass-test`:
 *
 *   BIGQUERY_TEST_ENDPOINT=http://127.0.0.1:9050 npx vitest run test/integration/bigquery-warehouse.test.ts
 *
 * or Google's endpoint with Application Default Credentials (sent when the endpoint is
 * googleapis.com): BIGQUERY_TEST_ENDPOINT=https://bigquery.googleapis.com BIGQUERY_TEST_PROJECT=<p>.
 * Then the double is not started: the tests that only need the API run (tables and their
 * evolution read back with the client, a COUNT(*) query), each in a dataset of its own that is
 * deleted afterwards; the tests that need the double (request bodies, load jobs whose row counts
 * the test supplies, injected failures, canned query results) do not run.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { BigQuery, TableField } from '@google-cloud/bigquery';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type EventType, loadEventTypes, parseSchema } from '../../core/event-types.js';
import { HOUR_MS } from '../../core/hours.js';
import {
  BigQueryWarehouse,
  type BigQueryWarehouseOptions,
  hiveViewSql,
  partitionDecorator,
} from '../../infra/warehouse/bigquery/bigquery-warehouse.js';
import {
  WarehouseLoadFailed,
  WarehouseQueryFailed,
  WarehouseSchemaConflict,
} from '../../infra/warehouse/bigquery/errors.js';
import { bigQueryFields, canonicalType, type ExistingField } from '../../infra/warehouse/bigquery/schema.js';
import { type BigQueryDouble, type RecordedRequest, startBigQueryDouble } from '../fixtures/bigquery-double.js';

const EXTERNAL = process.env.BIGQUERY_TEST_ENDPOINT;
const PROJECT = process.env.BIGQUERY_TEST_PROJECT ?? 'hourglass-test';
const BUCKET = 'hourglass-test-bucket';
const H = Date.UTC(2026, 10, 22, 10);
const DAY = Date.UTC(2026, 10, 22);
const BASE = `/bigquery/v2/projects/${PROJECT}`;

let endSong: EventType;
let userCreate: EventType;
let pageView: EventType;

beforeAll(async () => {
  const types = await loadEventTypes(resolve(import.meta.dirname, '../../schemas'));
  const byName = new Map(types.map((t) => [t.name, t]));
  endSong = byName.get('EndSong') as EventType;
  userCreate = byName.get('UserCreate') as EventType;
  pageView = byName.get('PageView') as EventType;
});

/** EndSong as it was before v2. */
const endSongV1 = (): EventType => ({ ...endSong, versions: endSong.versions.slice(0, 1) });

/** EndSong with one more version, made of the v2 fields `edit` returns. */
function endSongWith(edit: (fields: Record<string, unknown>[]) => Record<string, unknown>[]): EventType {
  const v2 = endSong.versions[1]?.schema as { fields: Record<string, unknown>[] };
  const v3 = parseSchema('EndSong', 3, { ...v2, fields: edit(v2.fields) });
  return { ...endSong, versions: [...endSong.versions, v3] };
}

const files = (hour: number, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `final/EndSong/${new Date(hour).toISOString().slice(0, 10)}/part-${i}.parquet`);

interface Ctx {
  double: BigQueryDouble | null;
  dataset: string;
  warehouse: BigQueryWarehouse;
  open(options?: Partial<BigQueryWarehouseOptions>): BigQueryWarehouse;
}

function setup(): Ctx {
  const ctx = {} as Ctx;
  const opened: BigQueryWarehouse[] = [];
  beforeEach(async () => {
    ctx.double = EXTERNAL ? null : await startBigQueryDouble();
    ctx.dataset = `hourglass_test_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    ctx.open = (options = {}) => {
      const w = new BigQueryWarehouse({
        projectId: PROJECT,
        dataset: ctx.dataset,
        apiEndpoint: EXTERNAL ?? ctx.double?.endpoint,
        ...(EXTERNAL?.includes('googleapis.com') ? { anonymous: false } : {}),
        sourceUri: (name) => `gs://${BUCKET}/${name}`,
        pollIntervalRealMs: 5,
        maxPollIntervalRealMs: EXTERNAL ? 2000 : 20,
        ...options,
      });
      opened.push(w);
      return w;
    };
    ctx.warehouse = ctx.open();
  });
  afterEach(async () => {
    if (EXTERNAL) await ctx.warehouse.client.dataset(ctx.dataset).delete({ force: true });
    for (const w of opened.splice(0)) await w.close();
    await ctx.double?.stop();
  });
  return ctx;
}

/** The table as the API answers it, read with the client. */
async function tableOf(bq: BigQuery, dataset: string, name: string): Promise<Record<string, unknown>> {
  const [meta] = await bq.dataset(dataset).table(name).getMetadata();
  return meta as Record<string, unknown>;
}

function columns(fields: readonly ExistingField[]): unknown[] {
  return fields.map((f) => {
    const head = `${f.name} ${canonicalType(f.type)} ${f.mode ?? 'NULLABLE'}`;
    return f.fields ? [head, columns(f.fields)] : head;
  });
}

const expected = (type: EventType): unknown[] =>
  columns(bigQueryFields(type.versions[type.versions.length - 1]?.type as never) as ExistingField[]);

/** The requests after the first `from`, as `METHOD path` with the base path cut. */
function calls(double: BigQueryDouble, from = 0): string[] {
  return double.requests.slice(from).map((r) => `${r.method} ${r.path.replace(BASE, '')}`);
}

function bodyOf(double: BigQueryDouble, call: string): Record<string, unknown> {
  const r = double.requests.find((x) => `${x.method} ${x.path.replace(BASE, '')}` === call) as RecordedRequest;
  expect(r, call).toBeDefined();
  return r.body as Record<string, unknown>;
}

describe('BigQuery warehouse: tables and queries (any endpoint)', () => {
  const ctx = setup();

  it('creates the dataset and an hourly table with the mapped columns, partitioned on event_arrival_time', async () => {
    await ctx.warehouse.ensureTable(endSong);
    const table = await tableOf(ctx.warehouse.client, ctx.dataset, 'EndSong');
    expect(columns((table.schema as { fields: ExistingField[] }).fields)).toEqual(expected(endSong));
    expect(table.timePartitioning).toMatchObject({ type: 'HOUR', field: 'event_arrival_time' });
    // idempotent: again, and from another process
    await ctx.warehouse.ensureTable(endSong);
    await ctx.open().ensureTable(endSong);
    const again = await tableOf(ctx.warehouse.client, ctx.dataset, 'EndSong');
    expect(columns((again.schema as { fields: ExistingField[] }).fields)).toEqual(expected(endSong));
  });

  it('adds the nullable columns of a newer schema version, dropping none', async () => {
    await ctx.warehouse.ensureTable(endSongV1());
    await ctx.open().ensureTable(endSong);
    const table = await tableOf(ctx.warehouse.client, ctx.dataset, 'EndSong');
    expect(columns((table.schema as { fields: ExistingField[] }).fields)).toEqual(expected(endSong));
    // a version without `shuffle` keeps the column
    await ctx.open().ensureTable(endSongWith((f) => f.filter((x) => x.name !== 'shuffle')));
    const after = await tableOf(ctx.warehouse.client, ctx.dataset, 'EndSong');
    expect(columns((after.schema as { fields: ExistingField[] }).fields)).toEqual(expected(endSong));
  });

  it('adds event_producer (NULLABLE, last) to a table made before the column existed', async () => {
    const now = bigQueryFields(endSong.versions[endSong.versions.length - 1]?.type as never, 'EndSong');
    const before = now.filter((f) => f.name !== 'event_producer');
    await ctx.warehouse.client.createDataset(ctx.dataset);
    await ctx.warehouse.client.dataset(ctx.dataset).createTable('EndSong', {
      schema: { fields: before as TableField[] },
      timePartitioning: { type: 'HOUR', field: 'event_arrival_time', expirationMs: String(90 * 24 * HOUR_MS) },
    });
    await ctx.warehouse.ensureTable(endSong);
    const table = await tableOf(ctx.warehouse.client, ctx.dataset, 'EndSong');
    const fields = (table.schema as { fields: ExistingField[] }).fields;
    expect(columns(fields)).toEqual([...columns(before as ExistingField[]), 'event_producer STRING NULLABLE']);
  });

  it('partitions daily types by DAY', async () => {
    await ctx.warehouse.ensureTable(userCreate);
    const table = await tableOf(ctx.warehouse.client, ctx.dataset, 'UserCreate');
    expect(table.timePartitioning).toMatchObject({ type: 'DAY', field: 'event_arrival_time' });
  });

  it('queries with the dataset as default dataset', async () => {
    await ctx.warehouse.ensureTable(endSong);
    expect(await ctx.warehouse.query('SELECT COUNT(*) AS n FROM EndSong')).toEqual({
      columns: ['n'],
      rows: [{ n: 0 }],
    });
  });
});

describe.runIf(!EXTERNAL)('BigQuery warehouse: requests, loads and failures (the double)', () => {
  const ctx = setup();
  const d = (): BigQueryDouble => ctx.double as BigQueryDouble;

  it('sends datasets.get/insert and tables.get/insert with the schema, partitioning and expiration; once per process', async () => {
    const w = ctx.open({ location: 'EU' });
    await w.ensureTable(endSong);
    expect(calls(d())).toEqual([
      `GET /datasets/${ctx.dataset}`,
      'POST /datasets',
      `GET /datasets/${ctx.dataset}/tables/EndSong`,
      `POST /datasets/${ctx.dataset}/tables`,
    ]);
    expect(bodyOf(d(), 'POST /datasets')).toMatchObject({
      datasetReference: { datasetId: ctx.dataset },
      location: 'EU',
    });
    const body = bodyOf(d(), `POST /datasets/${ctx.dataset}/tables`);
    expect(body).toMatchObject({
      tableReference: { projectId: PROJECT, datasetId: ctx.dataset, tableId: 'EndSong' },
      timePartitioning: { type: 'HOUR', field: 'event_arrival_time', expirationMs: String(90 * 24 * HOUR_MS) },
    });
    expect((body.schema as { fields: unknown }).fields).toEqual(
      JSON.parse(JSON.stringify(bigQueryFields(endSong.versions[1]?.type as never))),
    );
    expect(body.description).toContain('owner: playback');
    expect(d().datasets.get(`${PROJECT}:${ctx.dataset}`)?.location).toBe('EU');

    const n = d().requests.length;
    await w.ensureTable(endSong);
    expect(calls(d(), n)).toEqual([]);
    await ctx.open().ensureTable(endSong);
    expect(calls(d(), n)).toEqual([`GET /datasets/${ctx.dataset}`, `GET /datasets/${ctx.dataset}/tables/EndSong`]);
  });

  it('patches a newer version in: the table’s columns plus the new ones, NULLABLE', async () => {
    await ctx.warehouse.ensureTable(endSongV1());
    const n = d().requests.length;
    await ctx.warehouse.ensureTable(endSong);
    expect(calls(d(), n)).toEqual([
      `GET /datasets/${ctx.dataset}/tables/EndSong`,
      `PATCH /datasets/${ctx.dataset}/tables/EndSong`,
    ]);
    const patch = bodyOf(d(), `PATCH /datasets/${ctx.dataset}/tables/EndSong`);
    expect(Object.keys(patch)).toEqual(['schema']);
    const fields = (patch.schema as { fields: ExistingField[] }).fields;
    expect(fields.slice(-2)).toEqual([
      { name: 'offline', type: 'BOOL', mode: 'NULLABLE', description: 'Played from downloaded content.' },
      { name: 'bitrateKbps', type: 'INT64', mode: 'NULLABLE', description: 'Audio bitrate, when known.' },
    ]);
    // the table's own columns went back as the API answered them (legacy type names)
    expect(fields.find((f) => f.name === 'durationMs')).toMatchObject({ type: 'INTEGER', mode: 'NULLABLE' });
    const stored = d().tables.get(`${PROJECT}:${ctx.dataset}.EndSong`)?.resource.schema as { fields: ExistingField[] };
    expect(stored.fields.map((f) => f.name).slice(-3)).toEqual(['context', 'offline', 'bitrateKbps']);

    // a version dropping a field changes nothing; a changed retention patches the expiration only
    const m = d().requests.length;
    await ctx.warehouse.ensureTable(endSongWith((f) => f.filter((x) => x.name !== 'shuffle')));
    expect(calls(d(), m)).toEqual([`GET /datasets/${ctx.dataset}/tables/EndSong`]);
    await ctx.open().ensureTable({ ...endSong, retentionDays: 7 });
    const last = d().requests.at(-1) as RecordedRequest;
    expect(last.method).toBe('PATCH');
    expect(last.body).toEqual({
      timePartitioning: { type: 'HOUR', field: 'event_arrival_time', expirationMs: String(7 * 24 * HOUR_MS) },
    });
  });

  it('refuses a column whose type changed, or a table partitioned otherwise, without patching', async () => {
    await ctx.warehouse.ensureTable(endSong);
    const changed = endSongWith((f) => f.map((x) => (x.name === 'trackId' ? { ...x, type: 'bytes' } : x)));
    const n = d().requests.length;
    await expect(ctx.warehouse.ensureTable(changed)).rejects.toThrow(WarehouseSchemaConflict);
    await expect(ctx.warehouse.ensureTable(changed)).rejects.toThrow(
      /column trackId: the table has STRING, the schema needs BYTES/,
    );
    expect(calls(d(), n).filter((c) => c.startsWith('PATCH'))).toEqual([]);
    await expect(ctx.open().ensureTable({ ...endSong, partitioning: 'daily' })).rejects.toThrow(
      /partitioned by HOUR on event_arrival_time, the type needs DAY/,
    );
  });

  it('loads a partition with one PARQUET load job into EndSong$2026112210 (WRITE_TRUNCATE), waits for DONE; a reload replaces it', async () => {
    d().pollsUntilDone = 3;
    d().onLoad(() => 40);
    const partition = { type: endSong, start: H, daily: false, files: files(H, 2), rows: 40 };
    const n = d().requests.length;
    expect(await ctx.warehouse.loadPartition(partition)).toEqual({ rows: 40 });

    const insert = d().requests.find((r) => r.method === 'POST' && r.path === `${BASE}/jobs`) as RecordedRequest;
    const body = insert.body as { jobReference: { jobId: string }; configuration: Record<string, unknown> };
    expect(body.jobReference.jobId).toMatch(/^hourglass_load_EndSong_2026112210_/);
    expect(body.configuration).toEqual({
      load: {
        sourceUris: [`gs://${BUCKET}/${partition.files[0]}`, `gs://${BUCKET}/${partition.files[1]}`],
        sourceFormat: 'PARQUET',
        parquetOptions: { enableListInference: true, mapTargetType: 'ARRAY_OF_STRUCT' },
        destinationTable: { projectId: PROJECT, datasetId: ctx.dataset, tableId: 'EndSong$2026112210' },
        writeDisposition: 'WRITE_TRUNCATE',
        createDisposition: 'CREATE_NEVER',
      },
      jobTimeoutMs: String(30 * 60_000),
    });
    const jobId = body.jobReference.jobId;
    expect(calls(d(), n)).toEqual([
      `GET /datasets/${ctx.dataset}`,
      'POST /datasets',
      `GET /datasets/${ctx.dataset}/tables/EndSong`,
      `POST /datasets/${ctx.dataset}/tables`,
      'POST /jobs',
      `GET /jobs/${jobId}`,
      `GET /jobs/${jobId}`,
      `GET /jobs/${jobId}`,
    ]);
    expect(d().loads).toHaveLength(1);
    expect(d().loads[0]).toMatchObject({
      destination: { tableId: 'EndSong$2026112210' },
      writeDisposition: 'WRITE_TRUNCATE',
      sourceFormat: 'PARQUET',
    });

    await ctx.warehouse.loadPartition(partition);
    expect(d().loads).toHaveLength(2);
    expect(d().loads[1]?.jobId).not.toBe(jobId);
    const table = d().tables.get(`${PROJECT}:${ctx.dataset}.EndSong`);
    expect([...(table?.partitions ?? [])]).toEqual([['2026112210', 40]]);
    expect(await ctx.warehouse.query('SELECT COUNT(*) AS n FROM EndSong')).toEqual({
      columns: ['n'],
      rows: [{ n: 40 }],
    });

    // the next hour is another partition
    d().onLoad(() => 5);
    await ctx.warehouse.loadPartition({ ...partition, start: H + HOUR_MS, files: files(H + HOUR_MS, 1), rows: 5 });
    expect(d().loads[2]?.destination.tableId).toBe('EndSong$2026112211');
    expect([...(table?.partitions ?? [])]).toEqual([
      ['2026112210', 40],
      ['2026112211', 5],
    ]);
  });

  it('loads daily types into $YYYYMMDD', async () => {
    d().onLoad(() => 3);
    const partition = {
      type: userCreate,
      start: DAY,
      daily: true,
      files: ['final/UserCreate/date=2026-11-22/a.parquet'],
      rows: 3,
    };
    await ctx.warehouse.loadPartition(partition);
    expect(d().loads[0]?.destination.tableId).toBe('UserCreate$20261122');
    expect(d().tables.get(`${PROJECT}:${ctx.dataset}.UserCreate`)?.resource.timePartitioning).toMatchObject({
      type: 'DAY',
    });
    await expect(ctx.warehouse.loadPartition({ ...partition, daily: false, start: H })).rejects.toThrow(
      WarehouseSchemaConflict,
    );
    expect(partitionDecorator(DAY, true)).toBe('20261122');
    expect(partitionDecorator(Date.UTC(2027, 0, 1, 0), false)).toBe('2027010100');
  });

  it('rejects with the job’s errors when the load job fails', async () => {
    d().onLoad(() => 40);
    d().failNextJob(
      'Error while reading data, error message: Parquet column "bitrateKbps" has type INT32 which does not match the target cpp_type STRING',
    );
    const partition = { type: endSong, start: H, daily: false, files: files(H, 1), rows: 40 };
    const err = (await ctx.warehouse.loadPartition(partition).catch((e: unknown) => e)) as WarehouseLoadFailed;
    expect(err).toBeInstanceOf(WarehouseLoadFailed);
    expect(err.message).toMatch(
      /^BigQuery load job hourglass_load_EndSong_2026112210_\S+ into EndSong\$2026112210 failed: Error while reading data/,
    );
    expect(err).toMatchObject({ code: 'warehouse_load_failed', retriable: false, context: { failure: 'job_failed' } });
    expect(err.jobErrors).toEqual([
      { reason: 'invalid', message: expect.stringContaining('does not match the target') },
    ]);
    expect(d().tables.get(`${PROJECT}:${ctx.dataset}.EndSong`)?.partitions.size).toBe(0);

    d().failNextJob('Backend error, the job will be retried', 'backendError');
    await expect(ctx.warehouse.loadPartition(partition)).rejects.toMatchObject({ retriable: true });
    // the next attempt succeeds
    expect(await ctx.warehouse.loadPartition(partition)).toEqual({ rows: 40 });
  });

  it('rejects when the job loaded another row count than the manifest’s', async () => {
    d().onLoad(() => 39);
    const partition = { type: endSong, start: H, daily: false, files: files(H, 1), rows: 40 };
    const err = (await ctx.warehouse.loadPartition(partition).catch((e: unknown) => e)) as WarehouseLoadFailed;
    expect(err).toBeInstanceOf(WarehouseLoadFailed);
    expect(err.context).toMatchObject({ failure: 'row_count_mismatch', expectedRows: 40, loadedRows: 39 });
    expect(err.message).toMatch(/loaded 39 rows, the manifest says 40/);
  });

  it('deletes the partition for a partition without files', async () => {
    d().onLoad(() => 4);
    await ctx.warehouse.loadPartition({ type: endSong, start: H, daily: false, files: files(H, 1), rows: 4 });
    const n = d().requests.length;
    expect(await ctx.warehouse.loadPartition({ type: endSong, start: H, daily: false, files: [], rows: 0 })).toEqual({
      rows: 0,
    });
    expect(calls(d(), n)).toEqual([`DELETE /datasets/${ctx.dataset}/tables/EndSong$2026112210`]);
    expect(d().tables.get(`${PROJECT}:${ctx.dataset}.EndSong`)?.partitions.size).toBe(0);
    await expect(
      ctx.warehouse.loadPartition({ type: endSong, start: H, daily: false, files: [], rows: 2 }),
    ).rejects.toThrow(WarehouseLoadFailed);
  });

  it('returns a query’s columns and rows, page by page, as plain values', async () => {
    d().pageRows = 2;
    d().pollsUntilDone = 2;
    const at = String(H * 1000); // TIMESTAMP in µs (formatOptions.useInt64Timestamp)
    d().setQueryResult('SELECT * FROM PageView', {
      fields: [
        { name: 'event_id', type: 'STRING' },
        { name: 'n', type: 'INTEGER' },
        { name: 'big', type: 'INTEGER' },
        { name: 'ratio', type: 'FLOAT' },
        { name: 'ok', type: 'BOOLEAN' },
        { name: 'at', type: 'TIMESTAMP' },
        { name: 'day', type: 'DATE' },
        { name: 'price', type: 'NUMERIC' },
        { name: 'blob', type: 'BYTES' },
        { name: 'doc', type: 'JSON' },
        { name: 'experiments', type: 'STRING', mode: 'REPEATED' },
        {
          name: 'viewport',
          type: 'RECORD',
          fields: [
            { name: 'width', type: 'INTEGER' },
            { name: 'height', type: 'INTEGER' },
          ],
        },
        {
          name: 'context',
          type: 'RECORD',
          mode: 'REPEATED',
          fields: [
            { name: 'key', type: 'STRING' },
            { name: 'value', type: 'STRING' },
          ],
        },
      ],
      rows: [
        [
          'e1',
          '1',
          '9007199254740993',
          '0.5',
          'true',
          at,
          '2026-11-22',
          '12.50',
          'AAE=',
          '{"a":1}',
          ['x', 'y'],
          ['800', '600'],
          [['app', '1.2']],
        ],
        ['e2', '-2', '7', '1e-3', 'false', null, null, null, null, null, [], null, []],
        ['e3', '3', '0', '2', 'true', at, '2026-11-23', '0', '', 'null', ['z'], ['1', '2'], []],
      ],
    });
    await ctx.warehouse.ensureTable(pageView);
    const n = d().requests.length;
    const result = await ctx.warehouse.query('SELECT *\n  FROM PageView');
    expect(result.columns).toEqual([
      'event_id',
      'n',
      'big',
      'ratio',
      'ok',
      'at',
      'day',
      'price',
      'blob',
      'doc',
      'experiments',
      'viewport',
      'context',
    ]);
    expect(result.rows).toHaveLength(3);
    expect(result.rows[0]).toEqual({
      event_id: 'e1',
      n: 1,
      big: '9007199254740993',
      ratio: 0.5,
      ok: true,
      at: expect.stringMatching(/^2026-11-22T10:00:00(\.0+)?Z$/),
      day: '2026-11-22',
      price: '12.5',
      blob: 'AAE=',
      doc: '{"a":1}',
      experiments: ['x', 'y'],
      viewport: { width: 800, height: 600 },
      context: [{ key: 'app', value: '1.2' }],
    });
    expect(result.rows[1]).toMatchObject({
      n: -2,
      ratio: 0.001,
      ok: false,
      at: null,
      viewport: null,
      experiments: [],
      context: [],
    });
    const query = bodyOf(d(), 'POST /jobs') as {
      configuration: { query: Record<string, unknown> };
      jobReference: { jobId: string };
    };
    expect(query.configuration.query).toMatchObject({
      query: 'SELECT *\n  FROM PageView',
      useLegacySql: false,
      defaultDataset: { projectId: PROJECT, datasetId: ctx.dataset },
    });
    const id = query.jobReference.jobId;
    expect(id).toMatch(/^hourglass_query_/);
    // not complete at the first poll, then two pages
    expect(calls(d(), n)).toEqual(['POST /jobs', `GET /queries/${id}`, `GET /queries/${id}`, `GET /queries/${id}`]);
    expect(d().requests.at(-1)?.query).toMatchObject({ pageToken: '2', 'formatOptions.useInt64Timestamp': 'true' });
  });

  it('rejects a failing query with BigQuery’s message', async () => {
    await ctx.warehouse.ensureTable(endSong);
    const err = (await ctx.warehouse
      .query('SELECT nope FROM EndSong')
      .catch((e: unknown) => e)) as WarehouseQueryFailed;
    expect(err).toBeInstanceOf(WarehouseQueryFailed);
    expect(err.message).toMatch(/^BigQuery query failed: the BigQuery double has no result for this query/);
    expect(err).toMatchObject({ code: 'warehouse_query_failed', retriable: false });
    d().failNextJob('Unrecognized name: nope at [1:8]', 'invalidQuery');
    await expect(ctx.warehouse.query('SELECT COUNT(*) AS n FROM EndSong')).rejects.toThrow(/Unrecognized name: nope/);
  });

  it('the double refuses schema patches BigQuery refuses', async () => {
    await ctx.warehouse.ensureTable(endSong);
    const table = ctx.warehouse.client.dataset(ctx.dataset).table('EndSong');
    const [meta] = await table.getMetadata();
    const fields = (meta.schema as { fields: TableField[] }).fields;
    await expect(table.setMetadata({ schema: { fields: fields.slice(1) } })).rejects.toThrow(
      /Field event_id is missing/,
    );
    await expect(
      table.setMetadata({ schema: { fields: [...fields, { name: 'x', type: 'STRING', mode: 'REQUIRED' }] } }),
    ).rejects.toThrow(/Cannot add required field x/);
    await expect(
      table.setMetadata({ schema: { fields: fields.map((f) => (f.name === 'userId' ? { ...f, type: 'BYTES' } : f)) } }),
    ).rejects.toThrow(/changed type from STRING to BYTES/);
  });

  it('documents a view with the date and hour columns of the DuckDB views', () => {
    expect(hiveViewSql('p', 'events', endSong)).toBe(
      'CREATE OR REPLACE VIEW `p.events.EndSong_hive` AS SELECT *, DATE(event_arrival_time) AS date, ' +
        'EXTRACT(HOUR FROM event_arrival_time) AS hour FROM `p.events.EndSong`',
    );
    expect(hiveViewSql('p', 'events', userCreate)).not.toContain('hour');
  });
});
