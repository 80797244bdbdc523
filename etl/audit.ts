/**
 * The audit of two pipelines (`hourglass audit`): during a migration between buses the ingress
 * publishes every event to both, each bus feeds its own ETL into its own storage area, and this
 * proves that both hold the same published data before the old one is switched off.
 *
 * Per type and partition (hour, or day for daily types) of a range, it reads the Parquet files the
 * two pipelines' manifests list (nothing else) with DuckDB and compares:
 * - the event count and the number of distinct events: (producer, id) keys, as the dedup step
 *   keys them (an id is the producer's own: the same id from two producers is two events; events
 *   without a producer, NULL `event_producer` or partitions written before the column, are one
 *   producer);
 * - an order-independent digest of the rows: every row is hashed over its columns (DuckDB's
 *   64-bit `hash`), the row hashes are summed, and the sum is kept modulo 2^64. It covers every
 *   column of the final files: the envelope (`event_id`, `event_producer`, `event_arrival_time`,
 *   `event_ingress_instance`, `event_sequence`, `event_client_time`, `event_writer_version`) is
 *   stamped by the ingress before the event is published to either bus, and the payload is the
 *   producer's, so no column is specific to a pipeline. The Hive columns `date`/`hour` are not
 *   read (they are the partition itself). A column the two sides store with different types
 *   hashes differently, and a column one side lacks (`event_producer` in partitions written before
 *   it) hashes as NULL there. Digests depend on DuckDB's hash function: compare them only between
 *   runs of the same DuckDB version;
 * - per event (a full outer join on (`event_producer`, `event_id`)): events one side lacks,
 *   events whose rows differ in content, and events whose rows differ only in the **delivery
 *   columns** `event_arrival_time`,
 *   `event_ingress_instance` and `event_sequence`. The last happens legitimately for an event a
 *   producer retried within the hour: each copy has its own arrival time and sequence number,
 *   dedup keeps the first copy it reads, and two buses may deliver the copies in different
 *   orders. These count as differences unless `acceptOtherCopies` is set, which compares without
 *   the delivery columns (then listed as information only).
 *
 * A partition published on one side only is a difference; one published on neither is reported
 * as not published and is not a difference. When counts and digests agree, the per-id join is
 * skipped (a match).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from 'pino';
import { InvalidName, ObjectNotFound, ObjectStoreFailed, TypeNotFound } from '../core/errors.js';
import { TYPE_NAME_PATTERN } from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import { listAll, type ObjectStore } from '../core/ports/object-store.js';
import type { Manifest } from './dedup.js';
import { finalPrefix, MANIFEST } from './names.js';
import { localFiles } from './query.js';
import { quoteIdent } from './raw-parquet.js';

const DAY_MS = 24 * HOUR_MS;

/**
 * Envelope columns that belong to one delivered copy of an event rather than to the event: a
 * producer's retry has the same id and payload but its own arrival time, instance and sequence.
 * `event_producer` is not one of them: a retry comes with the same key, so every copy of an event
 * has the same producer; it is part of the event's identity (the join key) and of its content.
 */
export const DELIVERY_COLUMNS = ['event_arrival_time', 'event_ingress_instance', 'event_sequence'] as const;

export interface AuditPipeline {
  /** How the report names it (a pipeline name or a config file). */
  readonly name: string;
  readonly objects: ObjectStore;
}

export interface AuditOptions {
  readonly a: AuditPipeline;
  readonly b: AuditPipeline;
  /** Event type names (at least one). */
  readonly types: readonly string[];
  /** Start of the range, epoch ms (inclusive; rounded down to its hour). */
  readonly from: number;
  /** End of the range, epoch ms (exclusive). Daily types: every day that overlaps the range. */
  readonly to: number;
  /**
   * Most ids listed per kind of difference and partition (the counts are always exact);
   * default: all of them.
   */
  readonly idLimit?: number;
  /** Compare without the delivery columns (see the module's doc); default false. */
  readonly acceptOtherCopies?: boolean;
  /** DuckDB's memory limit (it spills to disk beyond it); default 256 MiB. */
  readonly memoryBytes?: number;
  /** DuckDB's threads; default 2. */
  readonly threads?: number;
  /** Progress per partition at debug level. */
  readonly logger?: Logger;
}

/** `differ`: published on both sides, not the same; `only_a`/`only_b`: published on that side only. */
export type PartitionStatus = 'match' | 'differ' | 'only_a' | 'only_b' | 'not_published';

/** One side of a published partition. */
export interface SideFigures {
  /** Rows in the files the manifest lists. */
  readonly events: number;
  /** Distinct (producer, id) keys. */
  readonly ids: number;
  /** Order-independent digest of the rows over the compared columns, 16 hex digits. */
  readonly digest: string;
  readonly files: number;
  /** The schema version the partition was written with (from its manifest). */
  readonly schemaVersion: number;
}

/**
 * Events of one kind of difference: the exact count, and the ids of the first ones in (id,
 * producer) order (up to the limit).
 */
export interface IdList {
  readonly count: number;
  readonly ids: readonly string[];
  /**
   * The producer of each listed id (`producers[i]` of `ids[i]`; null: none), present only when
   * one of them has a producer.
   */
  readonly producers?: readonly (string | null)[];
}

export interface PartitionAudit {
  readonly type: string;
  readonly partitioning: 'hourly' | 'daily';
  /** ISO-8601 start and end of the partition. */
  readonly start: string;
  readonly end: string;
  readonly status: PartitionStatus;
  /** Null where the partition is not published. */
  readonly a: SideFigures | null;
  readonly b: SideFigures | null;
  /** Events (by producer and id) `b` holds and `a` lacks. */
  readonly missingOnA: IdList;
  /** Ids `a` holds and `b` lacks. */
  readonly missingOnB: IdList;
  /** Ids on both sides whose rows differ in a compared column other than the delivery columns (or in number). */
  readonly contentDiffers: IdList;
  /** Ids whose rows differ only in the delivery columns (each side kept another copy of a retried event). */
  readonly otherCopy: IdList;
}

export interface AuditReport {
  readonly a: string;
  readonly b: string;
  readonly types: readonly string[];
  /** ISO-8601 bounds of the range as given (partitions of daily types may extend beyond it). */
  readonly from: string;
  readonly to: string;
  /** Columns left out of the comparison (the delivery columns with `acceptOtherCopies`). */
  readonly excludedColumns: readonly string[];
  readonly partitions: readonly PartitionAudit[];
  readonly summary: {
    readonly partitions: number;
    readonly matching: number;
    readonly differing: number;
    readonly notPublished: number;
  };
  /** True when no partition of the range differs. */
  readonly matches: boolean;
}

const NO_IDS: IdList = { count: 0, ids: [] };

/** Partition starts of the range: its hours, or the days that overlap it. */
export function partitionStarts(from: number, to: number, daily: boolean): number[] {
  const span = daily ? DAY_MS : HOUR_MS;
  const out: number[] = [];
  for (let s = Math.floor(from / span) * span; s < to; s += span) out.push(s);
  return out;
}

/** `hourly` or `daily` as the first stored object of `final/<type>/` shows; null when there is none. */
async function storedPartitioning(objects: ObjectStore, type: string): Promise<'hourly' | 'daily' | null> {
  const prefix = `final/${type}/`;
  const first = (await objects.list(prefix, { pageSize: 1 })).objects[0];
  if (first === undefined) return null;
  return /^date=[^/]+\/hour=/.test(first.name.slice(prefix.length)) ? 'hourly' : 'daily';
}

/** The published manifests of `type` for the given partition starts, by start. */
async function manifestsOf(
  objects: ObjectStore,
  type: string,
  starts: readonly number[],
  daily: boolean,
): Promise<Map<number, { name: string; manifest: Manifest }>> {
  const wanted = new Map(starts.map((s) => [`${finalPrefix(type, s, daily)}${MANIFEST}`, s]));
  const days = new Set(starts.map((s) => finalPrefix(type, s, true)));
  const out = new Map<number, { name: string; manifest: Manifest }>();
  for (const day of days) {
    for (const o of await listAll(objects, day)) {
      const start = wanted.get(o.name);
      if (start === undefined) continue;
      let manifest: Manifest;
      try {
        manifest = JSON.parse((await objects.get(o.name)).toString()) as Manifest;
      } catch (err) {
        if (err instanceof ObjectNotFound) continue; // deleted since the listing (retention)
        if (err instanceof SyntaxError) {
          throw new ObjectStoreFailed({ operation: 'parse manifest', name: o.name }, { cause: err });
        }
        throw err;
      }
      out.set(start, { name: o.name, manifest });
    }
  }
  return out;
}

interface Side {
  readonly figures: SideFigures;
  /** Digest over every column, to tell whether anything at all differs. */
  readonly fullDigest: bigint;
}

const U64 = (1n << 64n) - 1n;

function hex64(v: bigint): string {
  return (v & U64).toString(16).padStart(16, '0');
}

/** Sorted union of two sides' columns (name → DuckDB type), the first side's type winning. */
function columnUnion(a: Map<string, string>, b: Map<string, string>): [string, string][] {
  const all = new Map([...b, ...a]);
  return [...all].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * A temp table `side_<tag>` of (id, producer, n, c, r) per (producer, id) from the files: rows,
 * content and full-row hash sums. `producer` is '' for events without one (no producer name is
 * empty), so the key joins with plain equality.
 */
class SideTable {
  constructor(
    readonly tag: 'a' | 'b',
    readonly paths: readonly string[],
    readonly columns: Map<string, string>,
  ) {}

  get table(): string {
    return `side_${this.tag}`;
  }

  source(): string {
    return `read_parquet([${this.paths.map(sqlString).join(', ')}], union_by_name = true, hive_partitioning = false)`;
  }

  static async open(c: DuckDBConnection, tag: 'a' | 'b', paths: readonly string[]): Promise<SideTable> {
    const columns = new Map<string, string>();
    const side = new SideTable(tag, paths, columns);
    if (paths.length > 0) {
      const described = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${side.source()}`);
      for (const [name, type] of described.getRows()) columns.set(String(name), String(type));
    }
    return side;
  }

  async build(c: DuckDBConnection, all: readonly [string, string][]): Promise<void> {
    if (this.paths.length === 0) {
      await c.run(
        `CREATE OR REPLACE TEMP TABLE ${this.table} (id VARCHAR, producer VARCHAR, n BIGINT, c HUGEINT, r HUGEINT)`,
      );
      return;
    }
    const expr = (name: string, type: string): string => (this.columns.has(name) ? quoteIdent(name) : `NULL::${type}`);
    const delivery = new Set<string>(DELIVERY_COLUMNS);
    // `event_producer` (when either side has it) is content, and part of the key: see DELIVERY_COLUMNS
    const content = all.filter(([n]) => !delivery.has(n)).map(([n, t]) => expr(n, t));
    const copy = DELIVERY_COLUMNS.map((n) => expr(n, all.find(([x]) => x === n)?.[1] ?? 'VARCHAR'));
    const producer = this.columns.has('event_producer') ? "coalesce(event_producer, '')" : "''";
    await c.run(
      `CREATE OR REPLACE TEMP TABLE ${this.table} AS
       SELECT id, producer, count(*) AS n, sum(hc) AS c, sum(hash(hc, hk)) AS r
       FROM (SELECT event_id AS id, ${producer} AS producer, hash(${content.join(', ')}) AS hc, hash(${copy.join(', ')}) AS hk
             FROM ${this.source()})
       GROUP BY id, producer`,
    );
  }

  /** Events, distinct ids, content digest and full digest. */
  async totals(c: DuckDBConnection): Promise<{ events: number; ids: number; content: bigint; full: bigint }> {
    const row = (
      await c.runAndReadAll(
        `SELECT coalesce(sum(n), 0)::BIGINT, count(*)::BIGINT, coalesce(sum(c), 0)::HUGEINT, coalesce(sum(r), 0)::HUGEINT FROM ${this.table}`,
      )
    ).getRows()[0] as [bigint, bigint, bigint, bigint];
    return { events: Number(row[0]), ids: Number(row[1]), content: row[2], full: row[3] };
  }
}

type DiffKind = 'missing_a' | 'missing_b' | 'content' | 'copy';

/**
 * The events that differ between the two side tables, by kind: exact counts, the first `limit`
 * (by id, then producer) of each.
 */
async function differingIds(c: DuckDBConnection, limit: number): Promise<Record<DiffKind, IdList>> {
  await c.run(
    `CREATE OR REPLACE TEMP TABLE diff AS
     SELECT coalesce(a.id, b.id) AS id, coalesce(a.producer, b.producer) AS producer,
            CASE WHEN a.id IS NULL THEN 'missing_a'
                 WHEN b.id IS NULL THEN 'missing_b'
                 WHEN a.n <> b.n OR a.c <> b.c THEN 'content'
                 ELSE 'copy' END AS kind
     FROM side_a a FULL OUTER JOIN side_b b ON a.id = b.id AND a.producer = b.producer
     WHERE a.id IS NULL OR b.id IS NULL OR a.n <> b.n OR a.c <> b.c OR a.r <> b.r`,
  );
  const out: Record<DiffKind, { count: number; ids: string[]; producers: (string | null)[] }> = {
    missing_a: { count: 0, ids: [], producers: [] },
    missing_b: { count: 0, ids: [], producers: [] },
    content: { count: 0, ids: [], producers: [] },
    copy: { count: 0, ids: [], producers: [] },
  };
  for (const [kind, n] of (await c.runAndReadAll('SELECT kind, count(*)::BIGINT FROM diff GROUP BY kind')).getRows()) {
    out[kind as DiffKind].count = Number(n);
  }
  const bounded = Number.isFinite(limit)
    ? `SELECT kind, id, producer FROM (SELECT kind, id, producer, row_number() OVER (PARTITION BY kind ORDER BY id, producer) AS k FROM diff) WHERE k <= ${Math.max(0, Math.floor(limit))} ORDER BY kind, id, producer`
    : 'SELECT kind, id, producer FROM diff ORDER BY kind, id, producer';
  const result = await c.stream(bounded);
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    for (const [kind, id, producer] of chunk.getRows()) {
      const list = out[kind as DiffKind];
      list.ids.push(String(id));
      list.producers.push(producer === '' || producer === null ? null : String(producer));
    }
  }
  const lists = {} as Record<DiffKind, IdList>;
  for (const [kind, { count, ids, producers }] of Object.entries(out) as [DiffKind, (typeof out)[DiffKind]][]) {
    lists[kind] = producers.some((p) => p !== null) ? { count, ids, producers } : { count, ids };
  }
  return lists;
}

/** Compares two pipelines' published partitions of the given types over [from, to). */
export async function auditPartitions(options: AuditOptions): Promise<AuditReport> {
  const limit = options.idLimit ?? Number.POSITIVE_INFINITY;
  const accept = options.acceptOtherCopies === true;
  for (const t of options.types) {
    if (!TYPE_NAME_PATTERN.test(t)) {
      throw new InvalidName({ kind: 'event type', name: t, rule: `must match ${TYPE_NAME_PATTERN}` });
    }
  }
  const scratch = await mkdtemp(join(tmpdir(), 'hourglass-audit-'));
  const instance = await DuckDBInstance.create(':memory:', {
    memory_limit: `${Math.floor((options.memoryBytes ?? 256 * 1024 * 1024) / (1024 * 1024))}MB`,
    threads: String(options.threads ?? 2),
    temp_directory: join(scratch, 'duckdb'),
    preserve_insertion_order: 'false',
  });
  const partitions: PartitionAudit[] = [];
  try {
    const c = await instance.connect();
    try {
      for (const type of options.types) {
        const layoutA = await storedPartitioning(options.a.objects, type);
        const layoutB = await storedPartitioning(options.b.objects, type);
        const layout = layoutA ?? layoutB;
        if (layout === null) throw new TypeNotFound({ type });
        const daily = layout === 'daily';
        const starts = partitionStarts(options.from, options.to, daily);
        const manifestsA = await manifestsOf(options.a.objects, type, starts, daily);
        const manifestsB = await manifestsOf(options.b.objects, type, starts, daily);
        for (const start of starts) {
          const started = performance.now();
          const audit = await auditPartition(c, {
            type,
            start,
            daily,
            a: { objects: options.a.objects, published: manifestsA.get(start)?.manifest ?? null },
            b: { objects: options.b.objects, published: manifestsB.get(start)?.manifest ?? null },
            limit,
            accept,
          });
          partitions.push(audit);
          options.logger?.debug(
            {
              type,
              partition: audit.start,
              status: audit.status,
              events: [audit.a?.events ?? null, audit.b?.events ?? null],
              seconds: Math.round(performance.now() - started) / 1000,
            },
            'partition audited',
          );
        }
      }
    } finally {
      c.closeSync();
    }
  } finally {
    instance.closeSync();
    await rm(scratch, { recursive: true, force: true });
  }
  const count = (s: PartitionStatus): number => partitions.filter((p) => p.status === s).length;
  const differing = count('differ') + count('only_a') + count('only_b');
  return {
    a: options.a.name,
    b: options.b.name,
    types: [...options.types],
    from: new Date(options.from).toISOString(),
    to: new Date(options.to).toISOString(),
    excludedColumns: accept ? [...DELIVERY_COLUMNS] : [],
    partitions,
    summary: {
      partitions: partitions.length,
      matching: count('match'),
      differing,
      notPublished: count('not_published'),
    },
    matches: differing === 0,
  };
}

interface PartitionInput {
  readonly type: string;
  readonly start: number;
  readonly daily: boolean;
  readonly a: { readonly objects: ObjectStore; readonly published: Manifest | null };
  readonly b: { readonly objects: ObjectStore; readonly published: Manifest | null };
  readonly limit: number;
  readonly accept: boolean;
}

async function auditPartition(c: DuckDBConnection, p: PartitionInput): Promise<PartitionAudit> {
  const base = {
    type: p.type,
    partitioning: p.daily ? ('daily' as const) : ('hourly' as const),
    start: new Date(p.start).toISOString(),
    end: new Date(p.start + (p.daily ? DAY_MS : HOUR_MS)).toISOString(),
  };
  const none = { missingOnA: NO_IDS, missingOnB: NO_IDS, contentDiffers: NO_IDS, otherCopy: NO_IDS };
  if (p.a.published === null && p.b.published === null) {
    return { ...base, status: 'not_published', a: null, b: null, ...none };
  }
  const filesA = localFiles(p.a.objects, 'hourglass-audit-a-');
  const filesB = localFiles(p.b.objects, 'hourglass-audit-b-');
  try {
    const pathsOf = async (published: Manifest | null, files: typeof filesA): Promise<string[]> => {
      const paths: string[] = [];
      for (const f of published?.files ?? []) {
        const path = await files.path(f.name);
        // a file the manifest lists must be there (DuckDB's own message would not name the object)
        if ((await stat(path).catch(() => null)) === null) throw new ObjectNotFound({ name: f.name });
        paths.push(path);
      }
      return paths;
    };
    const a = await SideTable.open(c, 'a', await pathsOf(p.a.published, filesA));
    const b = await SideTable.open(c, 'b', await pathsOf(p.b.published, filesB));
    const all = columnUnion(a.columns, b.columns);
    await a.build(c, all);
    await b.build(c, all);
    const figures = async (side: SideTable, published: Manifest | null): Promise<Side | null> => {
      if (published === null) return null;
      const t = await side.totals(c);
      return {
        figures: {
          events: t.events,
          ids: t.ids,
          digest: hex64(p.accept ? t.content : t.full),
          files: published.files.length,
          schemaVersion: published.schema.version,
        },
        fullDigest: t.full,
      };
    };
    const sideA = await figures(a, p.a.published);
    const sideB = await figures(b, p.b.published);
    if (sideA === null || sideB === null) {
      // published on one side only: the status says it (the ids are not listed one by one)
      return {
        ...base,
        status: sideA === null ? 'only_b' : 'only_a',
        a: sideA?.figures ?? null,
        b: sideB?.figures ?? null,
        ...none,
      };
    }
    const same =
      sideA.figures.events === sideB.figures.events &&
      sideA.figures.ids === sideB.figures.ids &&
      sideA.fullDigest === sideB.fullDigest;
    if (same) return { ...base, status: 'match', a: sideA.figures, b: sideB.figures, ...none };
    const ids = await differingIds(c, p.limit);
    const differs = ids.missing_a.count + ids.missing_b.count + ids.content.count + (p.accept ? 0 : ids.copy.count) > 0;
    return {
      ...base,
      status: differs ? 'differ' : 'match',
      a: sideA.figures,
      b: sideB.figures,
      missingOnA: ids.missing_a,
      missingOnB: ids.missing_b,
      contentDiffers: ids.content,
      otherCopy: ids.copy,
    };
  } finally {
    await filesA.close();
    await filesB.close();
    await c.run('DROP TABLE IF EXISTS side_a; DROP TABLE IF EXISTS side_b; DROP TABLE IF EXISTS diff');
  }
}
