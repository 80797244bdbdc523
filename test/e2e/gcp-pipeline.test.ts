/**
 * `hourglass dev --config examples/gcp.yaml`, pointed by environment at the Pub/Sub fake, the
 * Cloud Storage double and the BigQuery double: traffic in, hours published in the bucket, the
 * warehouse-stored type loaded into its hour partition in BigQuery, `hourglass query` reading the
 * bucket.
 */

import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { type BigQueryDouble, startBigQueryDouble } from '../fixtures/bigquery-double.js';
import { type GcsDouble, startGcsDouble } from '../fixtures/gcs-double.js';
import { useFixture } from '../fixtures/use-fixture.js';
import { hourglass, REPO_ROOT, startDev } from '../support/dev-process.js';

const BUCKET = 'hourglass-gcp-e2e';
const PROJECT = 'hourglass-test';

describe('the pipeline on Google Cloud backends (fakes and doubles)', () => {
  let gcs: GcsDouble;
  let bq: BigQueryDouble;
  let dir: string;
  beforeAll(async () => {
    gcs = await startGcsDouble({ buckets: [BUCKET] });
    bq = await startBigQueryDouble();
    // the double reads no files: a load "loads" the rows its partition's manifest lists
    bq.onLoad((load) => {
      const first = load.sourceUris[0] ?? '';
      const name = first.slice(`gs://${BUCKET}/`.length).replace(/[^/]+$/, '_manifest.json');
      const manifest = gcs.read(BUCKET, name);
      if (manifest === undefined) throw new Error(`no manifest ${name}`);
      return (JSON.parse(manifest.toString()) as { eventsOut: number }).eventsOut;
    });
    dir = await mkdtemp(join(tmpdir(), 'hourglass-gcp-'));
  });
  afterAll(async () => {
    await bq?.stop();
    await gcs?.stop();
    if (dir && !process.env.KEEP) await rm(dir, { recursive: true, force: true });
  });

  it('runs the full pipeline with examples/gcp.yaml and loads a warehouse type into BigQuery', async () => {
    // EndSong is stored in the warehouse; the other types as files only
    const schemas = join(dir, 'schemas');
    await cp(join(REPO_ROOT, 'schemas'), schemas, { recursive: true });
    const typeFile = join(schemas, 'EndSong', 'type.json');
    await writeFile(
      typeFile,
      JSON.stringify({ ...JSON.parse(await readFile(typeFile, 'utf8')), storage: 'warehouse' }),
    );
    const prefix = `g${randomBytes(4).toString('hex')}`;
    const env = {
      PUBSUB_EMULATOR_HOST: await useFixture('pubsubHost'),
      GOOGLE_CLOUD_PROJECT: PROJECT,
      HOURGLASS_TOPIC_PREFIX: prefix,
      HOURGLASS_PULL_STREAMS: '32',
      HOURGLASS_GCS_BUCKET: BUCKET,
      HOURGLASS_GCS_ENDPOINT: gcs.endpoint,
      HOURGLASS_BQ_ENDPOINT: bq.endpoint,
    };
    const data = join(dir, 'data');
    const common = ['--config', join(REPO_ROOT, 'examples/gcp.yaml'), '--data-dir', data];
    const dev = await startDev([...common, '--schemas', schemas, '--time-scale', '360'], 60_000, env);
    try {
      const sent = JSON.parse(
        (
          await hourglass(
            [
              'send',
              '--url',
              dev.url,
              ...dev.keyArgs,
              '--type',
              'EndSong,PageView',
              '--rate',
              '300',
              '--duration',
              '5',
              '--json',
            ],
            env,
          )
        )
          .trim()
          .split('\n')
          .at(-1) as string,
      ) as { accepted: number };
      expect(sent.accepted).toBeGreaterThan(1000);

      // every EndSong hour with events published and loaded
      const store = new SqliteStateStore(join(loadConfig({ overrides: { dataDir: data } }).dataDir, 'state.sqlite'));
      try {
        const deadline = Date.now() + 120_000;
        for (;;) {
          const ledgers = await store.listLedgers({ type: 'EndSong' });
          const hours = await store.listHours({ type: 'EndSong' });
          const withEvents = new Set(ledgers.filter((l) => l.count > 0).map((l) => l.hour));
          const loaded = hours.filter((h) => h.state === 'published' && h.loadedAt !== null).map((h) => h.hour);
          if (withEvents.size > 0 && [...withEvents].every((h) => loaded.includes(h))) break;
          if (Date.now() > deadline) throw new Error(`not loaded in time: ${JSON.stringify(hours)}`);
          await new Promise((r) => setTimeout(r, 500));
        }
        const published = await store.listHours({ type: 'EndSong', states: ['published'] });
        const out = published.reduce((n, h) => n + (h.eventsOut ?? 0), 0);

        // BigQuery: the table, partitioned by hour on the arrival time, and one load per hour with events
        const table = bq.tables.get(`${PROJECT}:hourglass.EndSong`);
        expect(table?.resource.timePartitioning).toMatchObject({ type: 'HOUR', field: 'event_arrival_time' });
        expect(bq.tables.has(`${PROJECT}:hourglass.PageView`)).toBe(false);
        expect(bq.loads.length).toBeGreaterThan(0);
        for (const load of bq.loads) {
          expect(load.destination.tableId).toMatch(/^EndSong\$\d{10}$/);
          expect(load).toMatchObject({ sourceFormat: 'PARQUET', writeDisposition: 'WRITE_TRUNCATE' });
          expect(load.sourceUris.every((u) => u.startsWith(`gs://${BUCKET}/hourglass/final/EndSong/date=`))).toBe(true);
        }
        expect([...(table?.partitions.values() ?? [])].reduce((n, r) => n + r, 0)).toBe(out);

        // the files are in the bucket: hourglass query reads them with DuckDB…
        const sql = 'SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM EndSong';
        const rows = JSON.parse(
          await hourglass(['query', ...common, '--warehouse', 'duckdb', '--format', 'json', sql], env),
        ) as { n: number; d: number }[];
        expect(rows).toEqual([{ n: out, d: out }]);
        // …and, by the config's warehouse, runs SQL in BigQuery (the double answers a canned result)
        bq.setQueryResult(sql, {
          fields: [
            { name: 'n', type: 'INTEGER', mode: 'NULLABLE' },
            { name: 'd', type: 'INTEGER', mode: 'NULLABLE' },
          ],
          rows: [[String(out), String(out)]],
        });
        expect(JSON.parse(await hourglass(['query', ...common, '--format', 'json', sql], env))).toEqual([
          { n: out, d: out },
        ]);
        expect(bq.requests.some((r) => r.method === 'POST' && r.path.endsWith('/jobs'))).toBe(true);
      } finally {
        await store.close();
      }
    } finally {
      await dev.stop();
    }
  }, 240_000);
});
