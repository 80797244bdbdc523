/**
 * The BigQuery columns of an event type: exactly the columns of the final Parquet files
 * (etl/raw-parquet.ts) as a Parquet load job reads them, so a load of those files into the table
 * succeeds. The load job is run with `parquetOptions.enableListInference` (a Parquet LIST is an
 * ARRAY, not a record holding a repeated `list` record) and `mapTargetType: ARRAY_OF_STRUCT` (a
 * Parquet MAP is a repeated record of `key`, `value`, not a record holding a repeated
 * `key_value` record).
 *
 * Envelope columns first, in the Parquet files' order:
 *
 * | column                   | Parquet                              | BigQuery            |
 * |--------------------------|--------------------------------------|---------------------|
 * | `event_id`               | BYTE_ARRAY STRING, required          | STRING REQUIRED     |
 * | `event_producer`         | BYTE_ARRAY STRING, optional          | STRING NULLABLE     |
 * | `event_arrival_time`     | INT64 TIMESTAMP(MILLIS, UTC), req.   | TIMESTAMP REQUIRED  |
 * | `event_ingress_instance` | BYTE_ARRAY STRING, required          | STRING REQUIRED     |
 * | `event_sequence`         | INT64, required                      | INT64 REQUIRED      |
 * | `event_client_time`      | INT64 TIMESTAMP(MILLIS, UTC), opt.   | TIMESTAMP NULLABLE  |
 * | `event_writer_version`   | INT32, required                      | INT64 REQUIRED      |
 *
 * Then the payload fields of the type's latest schema version, with their Avro names
 * (`payload_<name>` when the name is an envelope column's):
 *
 * | Avro                                     | Parquet (our writer)                 | BigQuery                                  |
 * |------------------------------------------|--------------------------------------|-------------------------------------------|
 * | boolean                                  | BOOLEAN                              | BOOL                                      |
 * | int                                      | INT32                                | INT64                                     |
 * | long                                     | INT64                                | INT64                                     |
 * | float, double                            | FLOAT, DOUBLE                        | FLOAT64                                   |
 * | string, enum                             | BYTE_ARRAY STRING                    | STRING                                    |
 * | bytes, fixed                             | BYTE_ARRAY                           | BYTES                                     |
 * | null                                     | BYTE_ARRAY STRING, always null       | STRING                                    |
 * | record                                   | group                                | RECORD (STRUCT), its fields mapped alike  |
 * | array of T                               | LIST group                           | T, mode REPEATED                          |
 * | array of array / of map (T is repeated)  | LIST group of LIST / MAP groups      | REPEATED RECORD { `element` T } (*)       |
 * | map of T                                 | MAP group, string keys               | REPEATED RECORD { `key` STRING, `value` T } |
 * | `[null, T]` / `[T, null]`                | optional T                           | T (NULLABLE; an array or map: REPEATED, null loads as empty) |
 * | any other union                          | BYTE_ARRAY JSON (JSON text)          | JSON (*)                                  |
 * | timestamp-millis / -micros, local-timestamp-* (long) | INT64 (no annotation)    | INT64                                     |
 * | date, time-millis (int)                  | INT32                                | INT64                                     |
 * | time-micros (long)                       | INT64                                | INT64                                     |
 * | decimal (bytes or fixed), duration (fixed) | BYTE_ARRAY                         | BYTES                                     |
 * | uuid (string)                            | BYTE_ARRAY STRING                    | STRING                                    |
 *
 * Logical types keep their underlying type in our Parquet files (only the envelope's two times
 * are annotated), so a load gives their underlying type: a `timestamp-millis` payload field is an
 * INT64 of epoch milliseconds (`TIMESTAMP_MILLIS(col)` in SQL), a `date` an INT64 of days since
 * the epoch (`DATE_FROM_UNIX_DATE(col)`), a decimal its two's-complement big-endian bytes.
 *
 * Modes: the envelope columns are REQUIRED (NULLABLE for `event_producer` and
 * `event_client_time`), as in every file. `event_producer` is missing from partitions written
 * before it existed; a table made before it gets it added (NULLABLE, after the table's columns,
 * like any new column: a Parquet load matches columns by name), and loading such an old partition
 * leaves it NULL (*).
 * Every payload column and sub-column is NULLABLE (REPEATED for arrays and maps), even for Avro
 * fields that cannot be null: one table holds partitions written with every schema version, a
 * field of one version may be missing from another version's files, and BigQuery only adds
 * NULLABLE or REPEATED columns to an existing table. Loading a required Parquet column into a
 * NULLABLE column is allowed.
 *
 * (*) Not verified against BigQuery itself: that a Parquet load of files lacking a NULLABLE
 * column of the table leaves it NULL (what payload columns of other schema versions rely on too),
 * whether a Parquet load maps the JSON logical type to JSON (rather than refusing it), and how
 * list inference represents a list of lists or of maps (BigQuery has no array of arrays). Items of an array can be null in Avro (`array` of
 * `[null, T]`); BigQuery arrays cannot hold NULL, a load of such a null item fails.
 *
 * Column names: BigQuery compares them case-insensitively and reserves some prefixes; a schema
 * whose names collide that way, or use a reserved prefix, is refused (WarehouseSchemaConflict).
 */
import type { Type } from 'avsc';
import { RESERVED_COLUMN_PREFIXES } from '../../../core/schema-limits.js';
import type { AvroTypeLike } from '../../../etl/avro-text.js';
import { nullBranch } from '../../../etl/avro-text.js';
import { ENVELOPE_COLUMNS } from '../../../etl/raw-parquet.js';
import { WarehouseSchemaConflict } from './errors.js';

export type BigQueryType = 'STRING' | 'BYTES' | 'INT64' | 'FLOAT64' | 'BOOL' | 'TIMESTAMP' | 'JSON' | 'RECORD';
export type BigQueryMode = 'NULLABLE' | 'REQUIRED' | 'REPEATED';

/** A column as the REST API's TableFieldSchema takes it. */
export interface BigQueryField {
  name: string;
  type: BigQueryType;
  mode: BigQueryMode;
  description?: string;
  fields?: BigQueryField[];
}

/**
 * A column as the API answers it (legacy type names, optional mode). Other properties it has
 * (description, policy tags …) are kept as they are by {@link mergeFields}.
 */
export interface ExistingField {
  name?: string | null;
  type?: string | null;
  mode?: string | null;
  description?: string | null;
  fields?: ExistingField[] | null;
}

/** BigQuery's limit on a column description. */
const DESCRIPTION_MAX = 1024;

/** Column name prefixes BigQuery reserves (compared case-insensitively; refused at registration too). */
const RESERVED_PREFIXES: readonly string[] = RESERVED_COLUMN_PREFIXES;

/** The partitioning column of every table. */
export const PARTITION_COLUMN = 'event_arrival_time';

export const ENVELOPE_FIELDS: readonly BigQueryField[] = [
  {
    name: 'event_id',
    type: 'STRING',
    mode: 'REQUIRED',
    description: 'Event id given by the sender (unique per type and producer).',
  },
  {
    name: 'event_producer',
    type: 'STRING',
    mode: 'NULLABLE',
    description: 'The producer whose key sent the event; null when it was sent without a key.',
  },
  {
    name: 'event_arrival_time',
    type: 'TIMESTAMP',
    mode: 'REQUIRED',
    description: 'When the ingress accepted the event (UTC); the partitioning column.',
  },
  {
    name: 'event_ingress_instance',
    type: 'STRING',
    mode: 'REQUIRED',
    description: 'The ingress instance that accepted the event.',
  },
  { name: 'event_sequence', type: 'INT64', mode: 'REQUIRED', description: 'Sequence number within that instance.' },
  {
    name: 'event_client_time',
    type: 'TIMESTAMP',
    mode: 'NULLABLE',
    description: "The sender's own time for the event, when it gave one.",
  },
  {
    name: 'event_writer_version',
    type: 'INT64',
    mode: 'REQUIRED',
    description: 'The schema version the event was sent with (the payload is stored in the latest one).',
  },
];

function descriptionOf(doc: unknown): { description?: string } {
  return typeof doc === 'string' && doc.trim() !== '' ? { description: doc.slice(0, DESCRIPTION_MAX) } : {};
}

/** The BigQuery column of an Avro value (payload rules: NULLABLE unless repeated). */
function column(t: AvroTypeLike, name: string, doc: unknown): BigQueryField {
  const nb = nullBranch(t);
  if (nb >= 0) return column((t.types ?? [])[1 - nb] as AvroTypeLike, name, doc);
  const scalar = (type: BigQueryType): BigQueryField => ({ name, type, mode: 'NULLABLE', ...descriptionOf(doc) });
  switch (t.typeName) {
    case 'null':
    case 'string':
    case 'enum':
      return scalar('STRING');
    case 'boolean':
      return scalar('BOOL');
    case 'int':
    case 'long':
      return scalar('INT64');
    case 'float':
    case 'double':
      return scalar('FLOAT64');
    case 'bytes':
    case 'fixed':
      return scalar('BYTES');
    case 'record':
      return {
        ...scalar('RECORD'),
        fields: siblings(
          (t.fields ?? []).map((f) => column(f.type, f.name, (f as { doc?: unknown }).doc)),
          name,
        ),
      };
    case 'array': {
      const item = column(t.itemsType as AvroTypeLike, 'element', undefined);
      if (item.mode === 'REPEATED') return { ...scalar('RECORD'), mode: 'REPEATED', fields: [item] };
      return { ...item, name, mode: 'REPEATED', ...descriptionOf(doc) };
    }
    case 'map':
      return {
        ...scalar('RECORD'),
        mode: 'REPEATED',
        fields: [
          { name: 'key', type: 'STRING', mode: 'NULLABLE' },
          column(t.valuesType as AvroTypeLike, 'value', undefined),
        ],
      };
    default:
      // any other union: its value as JSON text
      return scalar('JSON');
  }
}

/** Checks the names of one level of columns against BigQuery's rules. */
function siblings(fields: BigQueryField[], parent: string | null): BigQueryField[] {
  const seen = new Map<string, string>();
  for (const f of fields) {
    const lower = f.name.toLowerCase();
    const path = parent === null ? f.name : `${parent}.${f.name}`;
    const other = seen.get(lower);
    if (other !== undefined) {
      throw new WarehouseSchemaConflict({
        type: '?',
        column: path,
        rule: `BigQuery column names are case-insensitive: "${f.name}" and "${other}" collide`,
      });
    }
    if (RESERVED_PREFIXES.some((p) => lower.startsWith(p))) {
      throw new WarehouseSchemaConflict({
        type: '?',
        column: path,
        rule: 'the name starts with a prefix BigQuery reserves',
      });
    }
    seen.set(lower, f.name);
  }
  return fields;
}

/**
 * The table's columns for a payload schema (the type's latest version): envelope columns, then
 * the payload fields. Throws WarehouseSchemaConflict for names BigQuery refuses.
 */
export function bigQueryFields(payloadType: Type, typeName = '?'): BigQueryField[] {
  const t = payloadType as unknown as AvroTypeLike;
  const taken = new Set<string>(ENVELOPE_COLUMNS);
  const payload = (t.fields ?? []).map((f) =>
    column(f.type, taken.has(f.name) ? `payload_${f.name}` : f.name, (f as { doc?: unknown }).doc),
  );
  try {
    return siblings([...ENVELOPE_FIELDS.map((f) => ({ ...f })), ...payload], null);
  } catch (err) {
    if (err instanceof WarehouseSchemaConflict) {
      throw new WarehouseSchemaConflict({
        type: typeName,
        column: String(err.context.column),
        rule: String(err.context.rule),
      });
    }
    throw err;
  }
}

const TYPE_ALIASES: Readonly<Record<string, string>> = {
  INTEGER: 'INT64',
  FLOAT: 'FLOAT64',
  BOOLEAN: 'BOOL',
  STRUCT: 'RECORD',
};

/** A column type in one spelling (the API answers the legacy names: INTEGER, FLOAT, BOOLEAN). */
export function canonicalType(type: string | null | undefined): string {
  const upper = (type ?? '').toUpperCase();
  return TYPE_ALIASES[upper] ?? upper;
}

function modeOf(f: { mode?: string | null }): string {
  return (f.mode ?? 'NULLABLE').toUpperCase();
}

export interface SchemaMerge {
  /** The table's columns after the change: the existing ones (none dropped), then new ones. */
  readonly fields: ExistingField[];
  /** Dotted paths of the columns added. */
  readonly added: string[];
  /** Dotted paths of REQUIRED columns made NULLABLE (absent or nullable in the new schema). */
  readonly relaxed: string[];
}

/**
 * Merges the columns a schema version needs into the table's: missing columns are added as
 * NULLABLE (or REPEATED), at any depth; a REQUIRED column the schema no longer requires is
 * relaxed to NULLABLE; columns the schema no longer has stay. A column whose type or repetition
 * differs cannot be changed by BigQuery: WarehouseSchemaConflict.
 */
export function mergeFields(
  existing: readonly ExistingField[],
  desired: readonly BigQueryField[],
  typeName = '?',
  parent = '',
): SchemaMerge {
  const added: string[] = [];
  const relaxed: string[] = [];
  const wanted = new Map(desired.map((d) => [d.name.toLowerCase(), d]));
  const fields: ExistingField[] = existing.map((e) => {
    const name = e.name ?? '';
    const path = `${parent}${name}`;
    const d = wanted.get(name.toLowerCase());
    wanted.delete(name.toLowerCase());
    if (d === undefined) {
      if (modeOf(e) !== 'REQUIRED') return e;
      relaxed.push(path);
      return { ...e, mode: 'NULLABLE' };
    }
    if (canonicalType(e.type) !== d.type) {
      throw new WarehouseSchemaConflict({
        type: typeName,
        column: path,
        rule: `the table has ${canonicalType(e.type)}, the schema needs ${d.type}; BigQuery cannot change a column's type`,
      });
    }
    if ((modeOf(e) === 'REPEATED') !== (d.mode === 'REPEATED')) {
      throw new WarehouseSchemaConflict({
        type: typeName,
        column: path,
        rule: `the table has mode ${modeOf(e)}, the schema needs ${d.mode}`,
      });
    }
    let out: ExistingField = e;
    if (modeOf(e) === 'REQUIRED' && d.mode !== 'REQUIRED') {
      relaxed.push(path);
      out = { ...out, mode: 'NULLABLE' };
    }
    if (d.type === 'RECORD') {
      const inner = mergeFields(e.fields ?? [], d.fields ?? [], typeName, `${path}.`);
      added.push(...inner.added);
      relaxed.push(...inner.relaxed);
      if (inner.added.length + inner.relaxed.length > 0) out = { ...out, fields: inner.fields };
    }
    return out;
  });
  for (const d of wanted.values()) {
    added.push(`${parent}${d.name}`);
    fields.push(asAdded(d));
  }
  return { fields, added, relaxed };
}

/** A new column of an existing table: BigQuery adds NULLABLE or REPEATED columns only. */
function asAdded(f: BigQueryField): BigQueryField {
  return {
    ...f,
    mode: f.mode === 'REQUIRED' ? 'NULLABLE' : f.mode,
    ...(f.fields ? { fields: f.fields.map(asAdded) } : {}),
  };
}
