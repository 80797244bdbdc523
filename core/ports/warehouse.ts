/**
 * The warehouse port: where data engineers query the published partitions. Backends: DuckDB over
 * the final Parquet files (embedded default: nothing is loaded, queries read the files) and
 * BigQuery (a table per type, partitioned by hour or day on the arrival time, each published
 * partition loaded with a load job into its partition).
 *
 * A load replaces the partition's contents (write disposition truncate on the partition), so
 * loading the same published partition again is idempotent.
 */
import type { EventType } from '../event-types.js';

export interface WarehousePartition {
  readonly type: EventType;
  /** Start of the hour, or of the day for daily types (epoch ms, UTC). */
  readonly start: number;
  readonly daily: boolean;
  /** Object names of the partition's Parquet data files, in the object store. */
  readonly files: readonly string[];
  /** Rows the manifest says the partition holds (a load that loads another count fails). */
  readonly rows: number;
}

export interface QueryResult {
  readonly columns: readonly string[];
  readonly rows: readonly Record<string, unknown>[];
}

export interface Warehouse {
  /** Backend name: `duckdb`, `bigquery`. */
  readonly backend: string;
  /** Creates the type's table (and dataset) if missing; idempotent. */
  ensureTable(type: EventType): Promise<void>;
  /** Loads one published partition, replacing that partition's rows; resolves when committed. */
  loadPartition(partition: WarehousePartition): Promise<{ readonly rows: number }>;
  /** Runs SQL over the types' tables. */
  query(sql: string): Promise<QueryResult>;
  close(): Promise<void>;
}
