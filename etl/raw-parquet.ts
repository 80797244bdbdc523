/**
 * Raw records (Avro binary: envelope + payload in the type's current schema) shredded straight
 * into Parquet columns, without building JavaScript objects. This is the dedup step's hot loop.
 *
 * Column mapping (Avro → Parquet → DuckDB): boolean BOOLEAN; int INT32 (INTEGER); long INT64
 * (BIGINT); float FLOAT; double DOUBLE; string and enum BYTE_ARRAY/STRING (VARCHAR); bytes and
 * fixed BYTE_ARRAY (BLOB); record a group (STRUCT); array a LIST group (T[]); map a MAP group
 * with string keys (MAP(VARCHAR, T)); `[null, T]` an optional T; any other union a JSON string (the
 * value itself where its branch is unambiguous, as avsc reads it, else `{"branch": value}`;
 * NULL for its null branch). Logical types keep their underlying type, except the envelope's
 * `arrivalTime`/`clientTime`, which become UTC timestamps in milliseconds (TIMESTAMP WITH TIME ZONE).
 * Envelope columns are `event_id`, `event_producer` (nullable: null for events sent without a
 * producer key, and absent from partitions written before it existed), `event_arrival_time`,
 * `event_ingress_instance`, `event_sequence`, `event_client_time`, `event_writer_version`;
 * payload fields follow with their own names (`payload_<name>` if a name is taken by the envelope).
 */

import type { Type } from 'avsc';
import { ENVELOPE_COLUMN_NAMES } from '../core/schema-limits.js';
import { type AvroTypeLike, jsonEmitter, nullBranch, type Reader, TextSink } from './avro-text.js';
import {
  Converted,
  Logical,
  ParquetColumn,
  Physical,
  type PhysicalType,
  Repetition,
  type SchemaNode,
} from './parquet-writer.js';

/** The envelope columns every final Parquet file starts with, in order (core/schema-limits.ts). */
export const ENVELOPE_COLUMNS = ENVELOPE_COLUMN_NAMES;

/** The envelope of the raw record just read: byte spans into the reader's buffer and numbers. */
export interface RecordKeys {
  /**
   * The dedup key (producer, id) as bytes `[keyStart, keyEnd)` of the record: the encoded id and
   * producer (length-prefixed, so distinct keys never have the same bytes).
   */
  keyStart: number;
  keyEnd: number;
  idStart: number;
  idEnd: number;
  /** -1 when the event has no producer. */
  producerStart: number;
  producerEnd: number;
  arrivalTime: number;
  instanceStart: number;
  instanceEnd: number;
  sequence: number;
  clientTime: number | null;
  writerVersion: number;
}

/** Writes one Avro value at `r.pos` into its columns, at repetition level `rep`, definition level `def`. */
type Shred = (r: Reader, rep: number, def: number) => void;

interface Built {
  node: SchemaNode;
  shred: Shred;
  columns: ParquetColumn[];
  /** The DuckDB type the column reads back as. */
  duckType: string;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A null (or empty list/map) at every column under a node. */
function nullsOf(columns: readonly ParquetColumn[]): (rep: number, def: number) => void {
  if (columns.length === 1) {
    const c = columns[0] as ParquetColumn;
    return (rep, def) => c.level(rep, def);
  }
  return (rep, def) => {
    for (let i = 0; i < columns.length; i++) (columns[i] as ParquetColumn).level(rep, def);
  };
}

/**
 * Builds a node for an Avro type: `parentDef`/`parentRep` are the levels of its parent, and an
 * optional node adds one definition level.
 */
function build(
  t: AvroTypeLike,
  name: string,
  path: string[],
  parentDef: number,
  parentRep: number,
  optional: boolean,
): Built {
  const nb = nullBranch(t);
  if (nb >= 0 && !optional) {
    const inner = build((t.types ?? [])[1 - nb] as AvroTypeLike, name, path, parentDef, parentRep, true);
    const nulls = nullsOf(inner.columns);
    const present = inner.shred;
    return {
      ...inner,
      shred: (r, rep, def) => {
        if (r.long() === nb) nulls(rep, def);
        else present(r, rep, def + 1);
      },
    };
  }
  const repetition = optional ? Repetition.OPTIONAL : Repetition.REQUIRED;
  const def = parentDef + (optional ? 1 : 0);
  const here = [...path, name];
  const leaf = (
    physical: PhysicalType,
    extra: Partial<SchemaNode> = {},
  ): { node: SchemaNode; column: ParquetColumn } => ({
    node: { name, repetition, physical, ...extra },
    column: new ParquetColumn(here, physical, def, parentRep),
  });

  switch (t.typeName) {
    case 'null': {
      // always null: an optional column that never holds a value
      const c = new ParquetColumn(here, Physical.BYTE_ARRAY, parentDef + 1, parentRep);
      return {
        node: { name, repetition: Repetition.OPTIONAL, physical: Physical.BYTE_ARRAY, ...stringType },
        columns: [c],
        duckType: 'VARCHAR',
        shred: (_r, rep, d) => c.level(rep, d),
      };
    }
    case 'boolean': {
      const { node, column: c } = leaf(Physical.BOOLEAN);
      return {
        node,
        columns: [c],
        duckType: 'BOOLEAN',
        shred: (r, rep, d) => {
          c.level(rep, d);
          c.bool(r.buf[r.pos++] === 1);
        },
      };
    }
    case 'int': {
      const { node, column: c } = leaf(Physical.INT32);
      return {
        node,
        columns: [c],
        duckType: 'INTEGER',
        shred: (r, rep, d) => {
          c.level(rep, d);
          c.int32(r.long());
        },
      };
    }
    case 'long': {
      const { node, column: c } = leaf(Physical.INT64);
      return {
        node,
        columns: [c],
        duckType: 'BIGINT',
        shred: (r, rep, d) => {
          c.level(rep, d);
          c.int64(r.long());
        },
      };
    }
    case 'float':
    case 'double': {
      const size = t.typeName === 'float' ? 4 : 8;
      const { node, column: c } = leaf(size === 4 ? Physical.FLOAT : Physical.DOUBLE);
      return {
        node,
        columns: [c],
        duckType: size === 4 ? 'FLOAT' : 'DOUBLE',
        shred: (r, rep, d) => {
          c.level(rep, d);
          r.pos += size;
          if (r.pos > r.buf.length) throw new RangeError('truncated Avro data');
          c.raw(r.buf, r.pos - size, r.pos);
        },
      };
    }
    case 'string':
    case 'bytes': {
      const { node, column: c } = leaf(Physical.BYTE_ARRAY, t.typeName === 'string' ? stringType : {});
      return {
        node,
        columns: [c],
        duckType: t.typeName === 'string' ? 'VARCHAR' : 'BLOB',
        shred: (r, rep, d) => {
          c.level(rep, d);
          const s = r.span();
          c.byteArray(r.buf, s, r.pos);
        },
      };
    }
    case 'fixed': {
      const size = t.size as number;
      const { node, column: c } = leaf(Physical.BYTE_ARRAY);
      return {
        node,
        columns: [c],
        duckType: 'BLOB',
        shred: (r, rep, d) => {
          c.level(rep, d);
          r.pos += size;
          if (r.pos > r.buf.length) throw new RangeError('truncated Avro data');
          c.byteArray(r.buf, r.pos - size, r.pos);
        },
      };
    }
    case 'enum': {
      // the symbols in one buffer: a column looks its values up faster from one source
      const names = (t.symbols ?? []).map((s) => Buffer.from(s));
      const all = Buffer.concat(names);
      const bounds = [0];
      for (const b of names) bounds.push((bounds[bounds.length - 1] as number) + b.length);
      const { node, column: c } = leaf(Physical.BYTE_ARRAY, stringType);
      return {
        node,
        columns: [c],
        duckType: 'VARCHAR',
        shred: (r, rep, d) => {
          c.level(rep, d);
          const i = r.long();
          if (!(i >= 0 && i < names.length)) throw new RangeError('Avro enum index out of range');
          c.byteArray(all, bounds[i] as number, bounds[i + 1] as number);
        },
      };
    }
    case 'record': {
      const fields = (t.fields ?? []).map((f) => ({
        name: f.name,
        ...build(f.type, f.name, here, def, parentRep, false),
      }));
      const shred = inSequence(fields.map((f) => f.shred));
      return {
        node: { name, repetition, children: fields.map((f) => f.node) },
        columns: fields.flatMap((f) => f.columns),
        duckType: `STRUCT(${fields.map((f) => `${quoteIdent(f.name)} ${f.duckType}`).join(', ')})`,
        shred,
      };
    }
    case 'array':
    case 'map': {
      // <name> (LIST|MAP) { repeated <list|key_value> { element | key, value } }
      const isMap = t.typeName === 'map';
      const groupName = isMap ? 'key_value' : 'list';
      const itemDef = def + 1;
      const itemRep = parentRep + 1;
      const groupPath = [...here, groupName];
      const key = isMap ? new ParquetColumn([...groupPath, 'key'], Physical.BYTE_ARRAY, itemDef, itemRep) : null;
      const item = build(
        (isMap ? t.valuesType : t.itemsType) as AvroTypeLike,
        isMap ? 'value' : 'element',
        groupPath,
        itemDef,
        itemRep,
        false,
      );
      const columns = key ? [key, ...item.columns] : item.columns;
      const empty = nullsOf(columns);
      const itemShred = item.shred;
      const children: SchemaNode[] = key
        ? [{ name: 'key', repetition: Repetition.REQUIRED, physical: Physical.BYTE_ARRAY, ...stringType }, item.node]
        : [item.node];
      return {
        node: {
          name,
          repetition,
          ...(isMap
            ? { converted: Converted.MAP, logical: Logical.MAP }
            : { converted: Converted.LIST, logical: Logical.LIST }),
          children: [{ name: groupName, repetition: Repetition.REPEATED, children }],
        },
        columns,
        duckType: isMap ? `MAP(VARCHAR, ${item.duckType})` : `${item.duckType}[]`,
        shred: (r, rep, d) => {
          // the items' blocks (as blockItems reads them), without a callback made per value
          let at = rep;
          let items = 0;
          for (let n = r.long(); n !== 0; n = r.long()) {
            if (n < 0) {
              n = -n;
              r.long(); // the block's size in bytes
            }
            for (let i = 0; i < n; i++) {
              if (key) {
                key.level(at, d + 1);
                const s = r.span();
                key.byteArray(r.buf, s, r.pos);
              }
              itemShred(r, at, d + 1);
              at = itemRep;
              items++;
            }
          }
          if (items === 0) empty(rep, d);
        },
      };
    }
    default: {
      // a general union (never inside another union): its value as JSON text, NULL for a null branch
      const types = t.types ?? [];
      const hasNull = types.some((b) => b.typeName === 'null');
      const json = jsonEmitter(t);
      const c = new ParquetColumn(here, Physical.BYTE_ARRAY, parentDef + (hasNull ? 1 : 0), parentRep);
      const scratch = new TextSink(4096);
      const present = hasNull ? 1 : 0;
      return {
        node: {
          name,
          repetition: hasNull ? Repetition.OPTIONAL : Repetition.REQUIRED,
          physical: Physical.BYTE_ARRAY,
          converted: Converted.JSON,
          logical: Logical.JSON,
        },
        columns: [c],
        duckType: 'JSON',
        shred: (r, rep, d) => {
          const branch = r.long();
          if (types[branch]?.typeName === 'null') {
            c.level(rep, d);
            return;
          }
          r.pos -= varintLength(branch); // the emitter reads the branch itself
          scratch.pos = 0;
          json(r, scratch);
          c.level(rep, d + present);
          c.byteArray(scratch.buf, 0, scratch.pos);
        },
      };
    }
  }
}

const stringType = { converted: Converted.UTF8, logical: Logical.STRING } as const;

/**
 * One function calling `shreds` in order, each from a call site of its own: a loop over them
 * would call every field's function from one site, which V8 cannot inline (it sees many targets),
 * while a site that always calls the same function can be. The generated code holds only numbers.
 */
function inSequence(shreds: readonly Shred[]): Shred {
  if (shreds.length === 1) return shreds[0] as Shred;
  const names = shreds.map((_, i) => `s${i}`);
  const calls = names.map((n) => `${n}(r, rep, d);`).join(' ');
  const make = new Function('list', `const [${names.join(', ')}] = list; return (r, rep, d) => { ${calls} };`) as (
    list: readonly Shred[],
  ) => Shred;
  return make(shreds);
}

/** Bytes of the zig-zag varint of a small non-negative union branch index. */
function varintLength(branch: number): number {
  let n = branch * 2;
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/**
 * Shreds raw records of one payload schema into Parquet columns. `envelope` reads a record's
 * envelope (filling `keys`); the caller then either `payload`s it into the columns (after
 * `envelopeColumns`) or skips it.
 */
export class RawParquetTranscoder {
  readonly schema: SchemaNode;
  readonly columns: ParquetColumn[];
  /** Output columns and the DuckDB types they read back as. */
  readonly columnTypes: { name: string; duckType: string }[];
  readonly keys: RecordKeys = {
    keyStart: 0,
    keyEnd: 0,
    idStart: 0,
    idEnd: 0,
    producerStart: -1,
    producerEnd: -1,
    arrivalTime: 0,
    instanceStart: 0,
    instanceEnd: 0,
    sequence: 0,
    clientTime: null,
    writerVersion: 0,
  };
  private readonly env: ParquetColumn[];
  /** The payload's fields, one after the other. */
  private readonly payload: Shred;

  constructor(payloadType: Type) {
    const t = payloadType as unknown as AvroTypeLike;
    const taken = new Set<string>(ENVELOPE_COLUMNS);
    const col = (name: string, physical: PhysicalType, optional = false) =>
      new ParquetColumn([name], physical, optional ? 1 : 0, 0);
    this.env = [
      col('event_id', Physical.BYTE_ARRAY),
      col('event_producer', Physical.BYTE_ARRAY, true),
      col('event_arrival_time', Physical.INT64),
      col('event_ingress_instance', Physical.BYTE_ARRAY),
      col('event_sequence', Physical.INT64),
      col('event_client_time', Physical.INT64, true),
      col('event_writer_version', Physical.INT32),
    ];
    const ts = { converted: Converted.TIMESTAMP_MILLIS, logical: Logical.TIMESTAMP_MILLIS_UTC };
    const envNodes: SchemaNode[] = [
      { name: 'event_id', repetition: Repetition.REQUIRED, physical: Physical.BYTE_ARRAY, ...stringType },
      { name: 'event_producer', repetition: Repetition.OPTIONAL, physical: Physical.BYTE_ARRAY, ...stringType },
      { name: 'event_arrival_time', repetition: Repetition.REQUIRED, physical: Physical.INT64, ...ts },
      { name: 'event_ingress_instance', repetition: Repetition.REQUIRED, physical: Physical.BYTE_ARRAY, ...stringType },
      { name: 'event_sequence', repetition: Repetition.REQUIRED, physical: Physical.INT64 },
      { name: 'event_client_time', repetition: Repetition.OPTIONAL, physical: Physical.INT64, ...ts },
      { name: 'event_writer_version', repetition: Repetition.REQUIRED, physical: Physical.INT32 },
    ];
    const fields = (t.fields ?? []).map((f) => {
      const name = taken.has(f.name) ? `payload_${f.name}` : f.name;
      return { name, ...build(f.type, name, [], 0, 0, false) };
    });
    this.schema = {
      name: 'schema',
      repetition: Repetition.REQUIRED,
      children: [...envNodes, ...fields.map((f) => f.node)],
    };
    this.columns = [...this.env, ...fields.flatMap((f) => f.columns)];
    this.payload = inSequence(fields.map((f) => f.shred));
    this.columnTypes = [
      { name: 'event_id', duckType: 'VARCHAR' },
      { name: 'event_producer', duckType: 'VARCHAR' },
      { name: 'event_arrival_time', duckType: 'TIMESTAMP WITH TIME ZONE' },
      { name: 'event_ingress_instance', duckType: 'VARCHAR' },
      { name: 'event_sequence', duckType: 'BIGINT' },
      { name: 'event_client_time', duckType: 'TIMESTAMP WITH TIME ZONE' },
      { name: 'event_writer_version', duckType: 'INTEGER' },
      ...fields.map((f) => ({ name: f.name, duckType: f.duckType })),
    ];
  }

  /** Reads the envelope of the raw record at `r.pos` into `keys`; `r.pos` ends at its payload. */
  envelope(r: Reader): RecordKeys {
    const k = this.keys;
    k.keyStart = r.pos;
    k.idStart = r.span();
    k.idEnd = r.pos;
    if (r.long() === 1) {
      k.producerStart = r.span();
      k.producerEnd = r.pos;
    } else {
      k.producerStart = -1;
      k.producerEnd = -1;
    }
    k.keyEnd = r.pos;
    k.arrivalTime = r.long();
    k.instanceStart = r.span();
    k.instanceEnd = r.pos;
    k.sequence = r.long();
    k.clientTime = r.long() === 1 ? r.long() : null;
    k.writerVersion = r.long();
    return k;
  }

  /** Writes the envelope just read and the payload at `r.pos` as one row. */
  row(r: Reader): void {
    const k = this.keys;
    const [id, producer, arrival, instance, sequence, client, version] = this.env as [
      ParquetColumn,
      ParquetColumn,
      ParquetColumn,
      ParquetColumn,
      ParquetColumn,
      ParquetColumn,
      ParquetColumn,
    ];
    id.slots++;
    id.byteArray(r.buf, k.idStart, k.idEnd);
    if (k.producerStart >= 0) {
      producer.level(0, 1);
      producer.byteArray(r.buf, k.producerStart, k.producerEnd);
    } else producer.level(0, 0);
    arrival.slots++;
    arrival.int64(k.arrivalTime);
    instance.slots++;
    instance.byteArray(r.buf, k.instanceStart, k.instanceEnd);
    sequence.slots++;
    sequence.int64(k.sequence);
    if (k.clientTime !== null) {
      client.level(0, 1);
      client.int64(k.clientTime);
    } else client.level(0, 0);
    version.slots++;
    version.int32(k.writerVersion);
    this.payload(r, 0, 0);
  }
}
