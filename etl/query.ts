/**
 * SQL over published final partitions with DuckDB (the embedded warehouse). Each event type is a
 * view named after the type over the Parquet files its manifests list — partitions without a
 * manifest are invisible — with the Hive columns `date` (DATE) and `hour` (BIGINT; hourly types),
 * so filters on them prune files. Types known to the catalogue with no data yet are empty views of
 * the right columns. Files are read by column name (`union_by_name`): partitions written with
 * other schema versions have NULL for the columns they lack, and so have partitions written before
 * `event_producer` existed (a view over such partitions only still has the column, all NULL).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { EventCatalog } from '../core/event-types.js';
import { latestVersion } from '../core/event-types.js';
import { listAll, type ObjectStore } from '../core/ports/object-store.js';
import type { Manifest } from './dedup.js';
import { MANIFEST } from './names.js';
import { quoteIdent, RawParquetTranscoder } from './raw-parquet.js';

export interface QueryResult {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
}

export interface QueryOptions {
  readonly memoryBytes: number;
  readonly threads: number;
}

/** Manifests of the published partitions, per type. */
export async function publishedManifests(objects: ObjectStore): Promise<Map<string, Manifest[]>> {
  const out = new Map<string, Manifest[]>();
  for (const o of await listAll(objects, 'final/')) {
    if (!o.name.endsWith(`/${MANIFEST}`)) continue;
    const m = JSON.parse((await objects.get(o.name)).toString()) as Manifest;
    const list = out.get(m.type) ?? [];
    list.push(m);
    out.set(m.type, list);
  }
  return out;
}

/** Local paths of a store's objects, for DuckDB to read. */
export interface LocalFiles {
  /** The object's own file (filesystem store), or a copy of it in the scratch dir. */
  path(name: string): Promise<string>;
  /** Deletes the copies (the store's own files stay). */
  close(): Promise<void>;
}

/**
 * Local files of `objects`: a store without local files (Cloud Storage) has the objects copied
 * into a scratch dir (made on first use, under the OS temp dir, named `<prefix>…`) under their own
 * names, so DuckDB still sees the date=/hour= path parts.
 */
export function localFiles(objects: ObjectStore, prefix: string): LocalFiles {
  let scratch: string | null = null;
  return {
    async path(name) {
      const own = objects.localPath(name);
      if (own !== null) return own;
      scratch ??= await mkdtemp(join(tmpdir(), prefix));
      const path = join(scratch, name);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await writeFile(path, await objects.get(name), { mode: 0o600 });
      return path;
    },
    async close() {
      if (scratch !== null) await rm(scratch, { recursive: true, force: true });
      scratch = null;
    },
  };
}

export async function runQuery(
  sql: string,
  objects: ObjectStore,
  catalog: EventCatalog | null,
  options: QueryOptions,
): Promise<QueryResult> {
  const instance = await DuckDBInstance.create(':memory:', {
    memory_limit: `${Math.floor(options.memoryBytes / (1024 * 1024))}MB`,
    threads: String(options.threads),
  });
  const c = await instance.connect();
  const local = localFiles(objects, 'hourglass-query-');
  try {
    // DuckDB 1.5.5 fails an internal assertion when it reads Parquet column statistics for a Hive
    // partition column (e.g. min(date)) during statistics propagation; planning without that
    // optimizer avoids it (partition pruning is done by filter pushdown and is unaffected)
    await c.run("SET disabled_optimizers = 'statistics_propagation'");
    const manifests = await publishedManifests(objects);
    const names = new Set([...manifests.keys(), ...(catalog?.list().map((t) => t.name) ?? [])]);
    for (const name of names) {
      const files: string[] = [];
      for (const m of manifests.get(name) ?? []) {
        for (const f of m.files) {
          files.push(await local.path(f.name));
        }
      }
      const type = catalog?.get(name);
      let body: string;
      if (files.length > 0) {
        const source = `read_parquet([${files.map(sqlString).join(', ')}], hive_partitioning = true, union_by_name = true)`;
        body = `SELECT * FROM ${source}`;
        const described = await c.runAndReadAll(`DESCRIBE ${body}`);
        if (!described.getRows().some((r) => r[0] === 'event_producer')) {
          // only partitions from before event_producer: the column in its place, NULL
          body = `SELECT event_id, NULL::VARCHAR AS event_producer, * EXCLUDE (event_id) FROM ${source}`;
        }
      } else if (type !== undefined) {
        const cols = new RawParquetTranscoder(latestVersion(type).type).columnTypes.map(
          (col) => `NULL::${col.duckType} AS ${quoteIdent(col.name)}`,
        );
        const hour = type.partitioning === 'hourly' ? ', NULL::BIGINT AS hour' : '';
        body = `SELECT ${cols.join(', ')}, NULL::DATE AS date${hour} WHERE false`;
      } else continue;
      await c.run(`CREATE VIEW ${quoteIdent(name)} AS ${body}`);
    }
    const reader = await c.runAndReadAll(sql);
    const columns = reader.columnNames();
    const types = reader.columnTypes().map((t) => t.toString());
    const maps = columns.filter((_, i) => types[i]?.startsWith('MAP('));
    const numeric = reader
      .columnTypes()
      .map((t, i) => (/^(BIGINT|HUGEINT|UBIGINT|UHUGEINT|DECIMAL\(.*\))$/.test(t.toString()) ? columns[i] : null))
      .filter((n): n is string => n !== null);
    const rows = reader.getRowObjectsJson() as Record<string, unknown>[];
    // 64-bit integers and decimals come as strings (exact); numbers where that loses nothing
    for (const row of rows) {
      for (const m of maps) {
        const v = row[m];
        if (Array.isArray(v))
          row[m] = Object.fromEntries(v.map((e: { key: unknown; value: unknown }) => [e.key, e.value]));
      }
      for (const n of numeric) {
        const v = row[n];
        if (typeof v === 'string') {
          const num = Number(v);
          if (Number.isFinite(num) && (Number.isSafeInteger(num) || !/^-?\d+$/.test(v))) row[n] = num;
        }
      }
    }
    return { columns, rows };
  } finally {
    c.closeSync();
    instance.closeSync();
    await local.close();
  }
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
