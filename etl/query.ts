/**
 * SQL over published final partitions with DuckDB (the embedded warehouse). Each event type is a
 * view named after the type over the Parquet files its manifests list — partitions without a
 * manifest are invisible — with the Hive columns `date` (DATE) and `hour` (INTEGER; hourly types),
 * so filters on them prune files. Types known to the catalogue with no data yet are empty views of
 * the right columns. Files are read by column name (`union_by_name`): partitions written with
 * other schema versions have NULL for the columns they lack, and so have partitions written before
 * `event_producer` existed (a view over such partitions only still has the column, all NULL).
 *
 * Each type's view is made on its own: a type whose view cannot be made (an unreadable manifest or
 * file, a schema DuckDB cannot read, a name that differs only in case from another type's, as
 * DuckDB's names are case-insensitive) is left out and reported in `skipped` with the reason; the
 * SQL runs over the other types' views.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { EventCatalog, EventType } from '../core/event-types.js';
import { latestVersion } from '../core/event-types.js';
import { listAll, type ObjectStore } from '../core/ports/object-store.js';
import type { Manifest } from './dedup.js';
import { MANIFEST } from './names.js';
import { quoteIdent, RawParquetTranscoder } from './raw-parquet.js';

export interface QueryResult {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
  /** Types left without a view (the SQL ran without them), by name. */
  readonly skipped: readonly SkippedView[];
}

/** A type whose view could not be made, and why. */
export interface SkippedView {
  readonly type: string;
  readonly reason: string;
}

export interface QueryOptions {
  readonly memoryBytes: number;
  readonly threads: number;
  /** Called for each type left without a view, before the SQL runs. */
  readonly onSkipped?: (skipped: SkippedView) => void;
}

/** Manifests of the published partitions, per type; a manifest that cannot be read names its type. */
export async function publishedManifests(
  objects: ObjectStore,
): Promise<{ byType: Map<string, Manifest[]>; unreadable: Map<string, string> }> {
  const byType = new Map<string, Manifest[]>();
  const unreadable = new Map<string, string>();
  for (const o of await listAll(objects, 'final/')) {
    if (!o.name.endsWith(`/${MANIFEST}`)) continue;
    const folder = o.name.split('/')[1] ?? '';
    let m: Manifest;
    try {
      m = JSON.parse((await objects.get(o.name)).toString()) as Manifest;
      if (typeof m.type !== 'string' || !Array.isArray(m.files)) throw new Error('not a manifest');
    } catch (err) {
      if (!unreadable.has(folder)) unreadable.set(folder, `manifest ${o.name} could not be read: ${message(err)}`);
      continue;
    }
    const list = byType.get(m.type) ?? [];
    list.push(m);
    byType.set(m.type, list);
  }
  return { byType, unreadable };
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

/**
 * The SELECT behind a type's view, or null when there is nothing to show (no published data and
 * not in the catalogue). Throws when the view cannot be made.
 */
async function viewBody(
  c: DuckDBConnection,
  manifests: readonly Manifest[],
  type: EventType | undefined,
  local: LocalFiles,
): Promise<string | null> {
  const files: string[] = [];
  for (const m of manifests) {
    for (const f of m.files) files.push(await local.path(f.name));
  }
  if (files.length > 0) {
    const kinds = new Set(manifests.filter((m) => m.files.length > 0).map((m) => m.partitioning));
    if (kinds.size > 1) throw new Error('its partitions are of both hourly and daily partitioning');
    // Hive values are text in the path (`hour=07`): typed here, so `hour = 7` and `hour + 1` work
    const hive = kinds.has('daily') ? "{'date': DATE}" : "{'date': DATE, 'hour': INTEGER}";
    const source = `read_parquet([${files.map(sqlString).join(', ')}], hive_partitioning = true, hive_types = ${hive}, union_by_name = true)`;
    const described = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`);
    if (!described.getRows().some((r) => r[0] === 'event_producer')) {
      // only partitions from before event_producer: the column in its place, NULL
      return `SELECT event_id, NULL::VARCHAR AS event_producer, * EXCLUDE (event_id) FROM ${source}`;
    }
    return `SELECT * FROM ${source}`;
  }
  if (type === undefined) return null;
  const cols = new RawParquetTranscoder(latestVersion(type).type).columnTypes.map(
    (col) => `NULL::${col.duckType} AS ${quoteIdent(col.name)}`,
  );
  const hour = type.partitioning === 'hourly' ? ', NULL::INTEGER AS hour' : '';
  return `SELECT ${cols.join(', ')}, NULL::DATE AS date${hour} WHERE false`;
}

/** Makes one view per type; returns the types left without one. */
async function createViews(
  c: DuckDBConnection,
  objects: ObjectStore,
  catalog: EventCatalog | null,
  local: LocalFiles,
): Promise<SkippedView[]> {
  const { byType, unreadable } = await publishedManifests(objects);
  const names = [...new Set([...byType.keys(), ...unreadable.keys(), ...(catalog?.list().map((t) => t.name) ?? [])])];
  const skipped: SkippedView[] = [];
  const byFolded = new Map<string, string[]>();
  for (const name of names) byFolded.set(name.toLowerCase(), [...(byFolded.get(name.toLowerCase()) ?? []), name]);
  for (const name of names.sort()) {
    const twins = (byFolded.get(name.toLowerCase()) ?? []).filter((n) => n !== name);
    if (twins.length > 0) {
      skipped.push({
        type: name,
        reason: `its name differs only in case from ${twins.join(', ')} (DuckDB names are case-insensitive): no view for either`,
      });
      continue;
    }
    const bad = unreadable.get(name);
    if (bad !== undefined) {
      skipped.push({ type: name, reason: bad });
      continue;
    }
    try {
      const body = await viewBody(c, byType.get(name) ?? [], catalog?.get(name), local);
      if (body !== null) await c.run(`CREATE VIEW ${quoteIdent(name)} AS ${body}`);
    } catch (err) {
      skipped.push({ type: name, reason: message(err) });
    }
  }
  return skipped;
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
    const skipped = await createViews(c, objects, catalog, local);
    for (const s of skipped) options.onSkipped?.(s);
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
    return { columns, rows, skipped };
  } finally {
    c.closeSync();
    instance.closeSync();
    await local.close();
  }
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
