/**
 * The Avro → BigQuery column mapping: the shipped schemas and a synthetic schema with every Avro
 * type, each checked column by column, and cross-checked against the Parquet schema our writer
 * produces (etl/raw-parquet.ts) read with the rules of a BigQuery Parquet load (list inference,
 * maps as arrays of key/value records). Then the schema merge of a new version.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadEventTypes, parseSchema } from '../../../core/event-types.js';
import { Converted, Physical, Repetition, type SchemaNode } from '../../../etl/parquet-writer.js';
import { RawParquetTranscoder } from '../../../etl/raw-parquet.js';
import { WarehouseSchemaConflict } from './errors.js';
import {
  type BigQueryField,
  bigQueryFields,
  canonicalType,
  ENVELOPE_FIELDS,
  type ExistingField,
  mergeFields,
} from './schema.js';

/** A column as `name TYPE MODE` with its sub-columns, for compact expectations. */
type Shape = string | [string, Shape[]];

function shape(fields: readonly BigQueryField[]): Shape[] {
  return fields.map((f) => {
    const head = `${f.name} ${f.type} ${f.mode}`;
    return f.fields ? [head, shape(f.fields)] : head;
  });
}

const ENVELOPE: Shape[] = [
  'event_id STRING REQUIRED',
  'event_producer STRING NULLABLE',
  'event_arrival_time TIMESTAMP REQUIRED',
  'event_ingress_instance STRING REQUIRED',
  'event_sequence INT64 REQUIRED',
  'event_client_time TIMESTAMP NULLABLE',
  'event_writer_version INT64 REQUIRED',
];

const EVERYTHING = {
  type: 'record',
  name: 'Everything',
  namespace: 'hourglass.test',
  fields: [
    { name: 'flag', type: 'boolean', doc: 'A flag.' },
    { name: 'count32', type: 'int' },
    { name: 'count64', type: 'long' },
    { name: 'ratio32', type: 'float' },
    { name: 'ratio64', type: 'double' },
    { name: 'label', type: 'string' },
    { name: 'blob', type: 'bytes' },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] } },
    { name: 'hash', type: { type: 'fixed', name: 'Hash', size: 16 } },
    { name: 'nothing', type: 'null' },
    {
      name: 'point',
      type: {
        type: 'record',
        name: 'Point',
        fields: [
          { name: 'x', type: 'double', doc: 'Abscissa.' },
          { name: 'y', type: 'double' },
          { name: 'tags', type: { type: 'array', items: 'string' } },
        ],
      },
    },
    { name: 'names', type: { type: 'array', items: 'string' } },
    { name: 'points', type: { type: 'array', items: 'Point' } },
    { name: 'matrix', type: { type: 'array', items: { type: 'array', items: 'int' } } },
    { name: 'listOfMaps', type: { type: 'array', items: { type: 'map', values: 'long' } } },
    { name: 'maybeItems', type: { type: 'array', items: ['null', 'int'] } },
    { name: 'attrs', type: { type: 'map', values: 'string' } },
    { name: 'pointsByName', type: { type: 'map', values: 'Point' } },
    { name: 'listsByName', type: { type: 'map', values: { type: 'array', items: 'string' } } },
    { name: 'nestedMaps', type: { type: 'map', values: { type: 'map', values: 'int' } } },
    { name: 'maybeLabel', type: ['null', 'string'], default: null },
    { name: 'labelOrNull', type: ['string', 'null'] },
    { name: 'maybePoint', type: ['null', 'Point'], default: null },
    { name: 'maybeNames', type: ['null', { type: 'array', items: 'string' }], default: null },
    { name: 'maybeAttrs', type: ['null', { type: 'map', values: 'int' }], default: null },
    { name: 'choice', type: ['string', 'long'] },
    { name: 'maybeChoice', type: ['null', 'string', 'long'], default: null },
    { name: 'createdAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'createdAtMicros', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'localTime', type: { type: 'long', logicalType: 'local-timestamp-millis' } },
    { name: 'birthday', type: { type: 'int', logicalType: 'date' } },
    { name: 'alarm', type: { type: 'int', logicalType: 'time-millis' } },
    { name: 'alarmMicros', type: { type: 'long', logicalType: 'time-micros' } },
    { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 } },
    {
      name: 'bigPrice',
      type: { type: 'fixed', name: 'Dec', size: 16, logicalType: 'decimal', precision: 38, scale: 9 },
    },
    { name: 'requestId', type: { type: 'string', logicalType: 'uuid' } },
    { name: 'wait', type: { type: 'fixed', name: 'Dur', size: 12, logicalType: 'duration' } },
    { name: 'event_id', type: 'string', doc: 'A payload field named like an envelope column.' },
  ],
};

const POINT: Shape[] = ['x FLOAT64 NULLABLE', 'y FLOAT64 NULLABLE', 'tags STRING REPEATED'];

const EVERYTHING_COLUMNS: Shape[] = [
  ...ENVELOPE,
  'flag BOOL NULLABLE',
  'count32 INT64 NULLABLE',
  'count64 INT64 NULLABLE',
  'ratio32 FLOAT64 NULLABLE',
  'ratio64 FLOAT64 NULLABLE',
  'label STRING NULLABLE',
  'blob BYTES NULLABLE',
  'kind STRING NULLABLE',
  'hash BYTES NULLABLE',
  'nothing STRING NULLABLE',
  ['point RECORD NULLABLE', POINT],
  'names STRING REPEATED',
  ['points RECORD REPEATED', POINT],
  ['matrix RECORD REPEATED', ['element INT64 REPEATED']],
  ['listOfMaps RECORD REPEATED', [['element RECORD REPEATED', ['key STRING NULLABLE', 'value INT64 NULLABLE']]]],
  'maybeItems INT64 REPEATED',
  ['attrs RECORD REPEATED', ['key STRING NULLABLE', 'value STRING NULLABLE']],
  ['pointsByName RECORD REPEATED', ['key STRING NULLABLE', ['value RECORD NULLABLE', POINT]]],
  ['listsByName RECORD REPEATED', ['key STRING NULLABLE', 'value STRING REPEATED']],
  [
    'nestedMaps RECORD REPEATED',
    ['key STRING NULLABLE', ['value RECORD REPEATED', ['key STRING NULLABLE', 'value INT64 NULLABLE']]],
  ],
  'maybeLabel STRING NULLABLE',
  'labelOrNull STRING NULLABLE',
  ['maybePoint RECORD NULLABLE', POINT],
  'maybeNames STRING REPEATED',
  ['maybeAttrs RECORD REPEATED', ['key STRING NULLABLE', 'value INT64 NULLABLE']],
  'choice JSON NULLABLE',
  'maybeChoice JSON NULLABLE',
  'createdAt INT64 NULLABLE',
  'createdAtMicros INT64 NULLABLE',
  'localTime INT64 NULLABLE',
  'birthday INT64 NULLABLE',
  'alarm INT64 NULLABLE',
  'alarmMicros INT64 NULLABLE',
  'price BYTES NULLABLE',
  'bigPrice BYTES NULLABLE',
  'requestId STRING NULLABLE',
  'wait BYTES NULLABLE',
  'payload_event_id STRING NULLABLE',
];

/** A column as a BigQuery Parquet load reads it: name, type, repeated, sub-columns. */
interface Loaded {
  name: string;
  type: string;
  repeated: boolean;
  fields?: Loaded[];
}

/**
 * What a Parquet load (enableListInference, mapTargetType ARRAY_OF_STRUCT) makes of a node of
 * our writer's schema: written from the Parquet format and BigQuery's Parquet conversions, apart
 * from the mapping under test.
 */
function loadedFrom(node: SchemaNode): Loaded {
  const children = node.children;
  if (children) {
    const group = children[0];
    if (node.converted === Converted.LIST && group?.repetition === Repetition.REPEATED) {
      const element = loadedFrom(group.children?.[0] as SchemaNode);
      return element.repeated
        ? { name: node.name, type: 'RECORD', repeated: true, fields: [{ ...element, name: 'element' }] }
        : { ...element, name: node.name, repeated: true };
    }
    if (node.converted === Converted.MAP && group?.repetition === Repetition.REPEATED) {
      return { name: node.name, type: 'RECORD', repeated: true, fields: (group.children ?? []).map(loadedFrom) };
    }
    return { name: node.name, type: 'RECORD', repeated: false, fields: children.map(loadedFrom) };
  }
  const type = (() => {
    switch (node.physical) {
      case Physical.BOOLEAN:
        return 'BOOL';
      case Physical.INT32:
        return 'INT64';
      case Physical.INT64:
        return node.converted === Converted.TIMESTAMP_MILLIS ? 'TIMESTAMP' : 'INT64';
      case Physical.FLOAT:
      case Physical.DOUBLE:
        return 'FLOAT64';
      case Physical.BYTE_ARRAY:
        return node.converted === Converted.UTF8 ? 'STRING' : node.converted === Converted.JSON ? 'JSON' : 'BYTES';
      default:
        return `unsupported physical type ${String(node.physical)}`;
    }
  })();
  return { name: node.name, type, repeated: false };
}

function asLoaded(fields: readonly BigQueryField[]): Loaded[] {
  return fields.map((f) => ({
    name: f.name,
    type: f.type,
    repeated: f.mode === 'REPEATED',
    ...(f.fields ? { fields: asLoaded(f.fields) } : {}),
  }));
}

function everything(fields = EVERYTHING.fields) {
  return parseSchema('Everything', 1, { ...EVERYTHING, fields });
}

describe('BigQuery columns of an event type', () => {
  it('maps every Avro type of a synthetic schema, envelope first', () => {
    const fields = bigQueryFields(everything().type, 'Everything');
    expect(shape(fields)).toEqual(EVERYTHING_COLUMNS);
    expect(fields.find((f) => f.name === 'flag')?.description).toBe('A flag.');
    expect(fields.find((f) => f.name === 'point')?.fields?.[0]?.description).toBe('Abscissa.');
    expect(fields.find((f) => f.name === 'payload_event_id')?.description).toBe(
      'A payload field named like an envelope column.',
    );
    expect(fields.slice(0, ENVELOPE_FIELDS.length)).toEqual(ENVELOPE_FIELDS);
    expect(fields[1]).toMatchObject({ name: 'event_producer', type: 'STRING', mode: 'NULLABLE' });
  });

  it('maps the shipped schemas (latest versions)', async () => {
    const types = await loadEventTypes(resolve(import.meta.dirname, '../../../schemas'));
    const byName = new Map(
      types.map((t) => [t.name, shape(bigQueryFields(t.versions[t.versions.length - 1]?.type as never, t.name))]),
    );
    expect([...byName.keys()]).toEqual(['EndSong', 'PageView', 'UserCreate']);
    expect(byName.get('EndSong')).toEqual([
      ...ENVELOPE,
      'userId STRING NULLABLE',
      'trackId STRING NULLABLE',
      'durationMs INT64 NULLABLE',
      'trackLengthMs INT64 NULLABLE',
      'reasonEnd STRING NULLABLE',
      'shuffle BOOL NULLABLE',
      'playlistId STRING NULLABLE',
      'platform STRING NULLABLE',
      ['context RECORD REPEATED', ['key STRING NULLABLE', 'value STRING NULLABLE']],
      'offline BOOL NULLABLE',
      'bitrateKbps INT64 NULLABLE',
    ]);
    expect(byName.get('PageView')).toEqual([
      ...ENVELOPE,
      'sessionId STRING NULLABLE',
      'userId STRING NULLABLE',
      'url STRING NULLABLE',
      'referrer STRING NULLABLE',
      'loadTimeMs INT64 NULLABLE',
      ['viewport RECORD NULLABLE', ['width INT64 NULLABLE', 'height INT64 NULLABLE']],
      'experiments STRING REPEATED',
    ]);
    expect(byName.get('UserCreate')).toEqual([
      ...ENVELOPE,
      'userId STRING NULLABLE',
      'country STRING NULLABLE',
      'signupMethod STRING NULLABLE',
      'birthYear INT64 NULLABLE',
      'referrer STRING NULLABLE',
      'marketingOptIn BOOL NULLABLE',
    ]);
  });

  it('matches, column for column, what a Parquet load reads from the files our writer produces', async () => {
    const types = await loadEventTypes(resolve(import.meta.dirname, '../../../schemas'));
    const schemas = [...types.flatMap((t) => t.versions.map((v) => v.type)), everything().type];
    for (const avro of schemas) {
      const parquet = new RawParquetTranscoder(avro).schema;
      expect(asLoaded(bigQueryFields(avro))).toEqual((parquet.children ?? []).map(loadedFrom));
    }
  });

  it('keeps REQUIRED for the envelope columns the files always have, and only for them', () => {
    const parquet = new RawParquetTranscoder(everything().type).schema.children ?? [];
    const fields = bigQueryFields(everything().type);
    for (const [i, f] of fields.entries()) {
      const required = parquet[i]?.repetition === Repetition.REQUIRED && i < ENVELOPE_FIELDS.length;
      expect(f.mode === 'REQUIRED', f.name).toBe(required);
    }
  });

  it('refuses names BigQuery refuses: case-insensitive twins, reserved prefixes', () => {
    const twins = everything([
      { name: 'userId', type: 'string' },
      { name: 'userid', type: 'string' },
    ]);
    expect(() => bigQueryFields(twins.type, 'Twins')).toThrow(WarehouseSchemaConflict);
    expect(() => bigQueryFields(twins.type, 'Twins')).toThrow(/Twins, column userid: .*case-insensitive/);
    const nested = everything([
      {
        name: 'r',
        type: {
          type: 'record',
          name: 'R',
          fields: [
            { name: 'A', type: 'int' },
            { name: 'a', type: 'int' },
          ],
        },
      },
    ]);
    expect(() => bigQueryFields(nested.type, 'Nested')).toThrow(/column r\.a/);
    const reserved = everything([{ name: '_PARTITION_hint', type: 'string' }]);
    expect(() => bigQueryFields(reserved.type, 'Reserved')).toThrow(/prefix BigQuery reserves/);
  });

  it('truncates descriptions to BigQuery’s 1024 characters', () => {
    const long = everything([{ name: 'x', type: 'int', doc: 'd'.repeat(5000) }]);
    expect(bigQueryFields(long.type).at(-1)?.description).toHaveLength(1024);
  });
});

describe('merging a new schema version into the table', () => {
  const v1 = parseSchema('T', 1, {
    type: 'record',
    name: 'T',
    fields: [
      { name: 'a', type: 'string' },
      { name: 'gone', type: 'long' },
      { name: 'r', type: { type: 'record', name: 'R', fields: [{ name: 'x', type: 'int' }] } },
    ],
  });
  const v2 = parseSchema('T', 2, {
    type: 'record',
    name: 'T',
    fields: [
      { name: 'a', type: 'string' },
      {
        name: 'r',
        type: {
          type: 'record',
          name: 'R',
          fields: [
            { name: 'x', type: 'int' },
            { name: 'y', type: ['null', 'string'], default: null },
          ],
        },
      },
      { name: 'b', type: 'boolean', default: false },
      { name: 'm', type: { type: 'map', values: 'long' }, default: {} },
    ],
  });
  /** The table as the API answers it: legacy type names, modes spelled out. */
  const answered = (fields: readonly BigQueryField[]): ExistingField[] =>
    fields.map((f) => ({
      name: f.name,
      type: { INT64: 'INTEGER', FLOAT64: 'FLOAT', BOOL: 'BOOLEAN' }[f.type as string] ?? f.type,
      mode: f.mode,
      ...(f.fields ? { fields: answered(f.fields) } : {}),
    }));

  it('adds the new columns (NULLABLE or REPEATED, nested too), keeps dropped ones, changes nothing else', () => {
    const table = answered(bigQueryFields(v1.type));
    const merge = mergeFields(table, bigQueryFields(v2.type), 'T');
    expect(merge.added).toEqual(['r.y', 'b', 'm']);
    expect(merge.relaxed).toEqual([]);
    expect(merge.fields.slice(0, table.length - 1)).toEqual(table.slice(0, -1));
    expect(merge.fields.map((f) => f.name)).toEqual([...table.map((f) => f.name), 'b', 'm']);
    const r = merge.fields.find((f) => f.name === 'r');
    expect(r?.fields?.map((f) => [f.name, canonicalType(f.type), f.mode])).toEqual([
      ['x', 'INT64', 'NULLABLE'],
      ['y', 'STRING', 'NULLABLE'],
    ]);
    expect(merge.fields.find((f) => f.name === 'gone')).toEqual({ name: 'gone', type: 'INTEGER', mode: 'NULLABLE' });
    expect(merge.fields.find((f) => f.name === 'm')).toMatchObject({ type: 'RECORD', mode: 'REPEATED' });
  });

  it('adds event_producer (NULLABLE, last) to a table made before it, changing nothing else', () => {
    const before = answered(bigQueryFields(v2.type).filter((f) => f.name !== 'event_producer'));
    const merge = mergeFields(before, bigQueryFields(v2.type), 'T');
    expect(merge.added).toEqual(['event_producer']);
    expect(merge.relaxed).toEqual([]);
    expect(merge.fields.slice(0, -1)).toEqual(before);
    expect(merge.fields.at(-1)).toMatchObject({ name: 'event_producer', type: 'STRING', mode: 'NULLABLE' });
  });

  it('is a no-op for the same version, in either spelling of the types', () => {
    for (const table of [answered(bigQueryFields(v2.type)), bigQueryFields(v2.type) as ExistingField[]]) {
      const merge = mergeFields(table, bigQueryFields(v2.type), 'T');
      expect(merge.added).toEqual([]);
      expect(merge.relaxed).toEqual([]);
      expect(merge.fields).toEqual(table);
    }
  });

  it('relaxes REQUIRED columns that the schema no longer has or requires, and keeps unknown properties', () => {
    const table: ExistingField[] = [
      ...answered(ENVELOPE_FIELDS),
      {
        name: 'a',
        type: 'STRING',
        mode: 'REQUIRED',
        description: 'kept',
        policyTags: { names: ['t'] },
      } as ExistingField,
      { name: 'old', type: 'INTEGER', mode: 'REQUIRED' },
    ];
    const merge = mergeFields(table, bigQueryFields(v2.type), 'T');
    expect(merge.relaxed).toEqual(['a', 'old']);
    expect(merge.fields.find((f) => f.name === 'a')).toEqual({
      name: 'a',
      type: 'STRING',
      mode: 'NULLABLE',
      description: 'kept',
      policyTags: { names: ['t'] },
    });
    expect(merge.fields.find((f) => f.name === 'event_id')?.mode).toBe('REQUIRED');
  });

  it('refuses a changed type or repetition (BigQuery cannot change them)', () => {
    const table = answered(bigQueryFields(v2.type));
    const bytes = parseSchema('T', 3, {
      type: 'record',
      name: 'T',
      fields: [{ name: 'a', type: 'bytes' }],
    });
    expect(() => mergeFields(table, bigQueryFields(bytes.type), 'T')).toThrow(
      /T, column a: the table has STRING, the schema needs BYTES/,
    );
    const list = parseSchema('T', 3, {
      type: 'record',
      name: 'T',
      fields: [{ name: 'a', type: { type: 'array', items: 'string' } }],
    });
    expect(() => mergeFields(table, bigQueryFields(list.type), 'T')).toThrow(WarehouseSchemaConflict);
    const nested = parseSchema('T', 3, {
      type: 'record',
      name: 'T',
      fields: [{ name: 'r', type: { type: 'record', name: 'R', fields: [{ name: 'x', type: 'string' }] } }],
    });
    expect(() => mergeFields(table, bigQueryFields(nested.type), 'T')).toThrow(/column r\.x/);
  });
});
