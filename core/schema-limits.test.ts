import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RawParquetTranscoder } from '../etl/raw-parquet.js';
import { WarehouseSchemaConflict } from '../infra/warehouse/bigquery/errors.js';
import { type BigQueryField, bigQueryFields } from '../infra/warehouse/bigquery/schema.js';
import { schemaArb } from '../test/support/avro-fuzz.js';
import {
  carriageProblems,
  MAX_NESTING_DEPTH,
  nestingDepth,
  PARTITION_COLUMN_NAMES,
  payloadColumnName,
} from './schema-limits.js';

const parse = (schema: unknown) => avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'auto' });
const record = (name: string, fields: unknown[]) => ({ type: 'record', name, fields });
const rules = (schema: unknown) => carriageProblems(parse(schema), schema).map((p) => [p.rule, p.path]);

/** `levels` records nested in each other, the innermost holding an int. */
function nested(levels: number): unknown {
  let t: unknown = 'int';
  for (let i = levels - 1; i >= 0; i--) t = record(`N${i}`, [{ name: `n${i}`, type: t }]);
  return t;
}

describe('what the pipeline can carry', () => {
  it.each([
    ['a flat record', record('Ok', [{ name: 'a', type: 'int' }]), []],
    ['an envelope name, stored as payload_<name>', record('Ok', [{ name: 'event_id', type: 'string' }]), []],
    [
      'one named record used twice (no recursion)',
      record('Ok', [
        { name: 'a', type: record('P', [{ name: 'x', type: 'int' }]) },
        { name: 'b', type: 'P' },
      ]),
      [],
    ],
    [
      'names inside a general union (one JSON column)',
      record('Ok', [
        {
          name: 'u',
          type: [
            'int',
            record('J', [
              { name: 'x', type: 'int' },
              { name: 'X', type: 'int' },
            ]),
          ],
        },
      ]),
      [],
    ],
    [`${MAX_NESTING_DEPTH} levels of nesting`, record('Ok', [{ name: 'deep', type: nested(MAX_NESTING_DEPTH) }]), []],
    // recursive_type
    [
      'a record that refers to itself',
      record('Loop', [
        { name: 'v', type: 'int' },
        { name: 'next', type: ['null', 'Loop'], default: null },
      ]),
      [['recursive_type', 'next']],
    ],
    [
      'a record that refers to itself through another one and an array',
      record('Tree', [
        { name: 'node', type: record('Node', [{ name: 'children', type: { type: 'array', items: 'Tree' } }]) },
      ]),
      [['recursive_type', 'node.children[]']],
    ],
    [
      'a record that refers to itself through a map',
      record('M', [{ name: 'more', type: { type: 'map', values: 'M' } }]),
      [['recursive_type', 'more{}']],
    ],
    // column_conflict
    [
      'two fields equal ignoring case',
      record('C', [
        { name: 'userId', type: 'string' },
        { name: 'userid', type: 'string' },
      ]),
      [['column_conflict', 'userid']],
    ],
    [
      'two nested fields equal ignoring case',
      record('C', [
        {
          name: 'where',
          type: record('W', [
            { name: 'city', type: 'string' },
            { name: 'City', type: 'string' },
          ]),
        },
      ]),
      [['column_conflict', 'where.City']],
    ],
    [
      'a record in map values with fields equal ignoring case',
      record('C', [
        {
          name: 'm',
          type: {
            type: 'map',
            values: record('V', [
              { name: 'a', type: 'int' },
              { name: 'A', type: 'int' },
            ]),
          },
        },
      ]),
      [['column_conflict', 'm{}.A']],
    ],
    [
      'an envelope column in another case',
      record('C', [{ name: 'Event_Id', type: 'string' }]),
      [['column_conflict', 'Event_Id']],
    ],
    [
      'the column an envelope name is stored as',
      record('C', [
        { name: 'event_id', type: 'string' },
        { name: 'payload_event_id', type: 'string' },
      ]),
      [['column_conflict', 'payload_event_id']],
    ],
    ['the partition column date', record('C', [{ name: 'date', type: 'string' }]), [['column_conflict', 'date']]],
    [
      'the partition column hour, in capitals',
      record('C', [{ name: 'HOUR', type: 'int' }]),
      [['column_conflict', 'HOUR']],
    ],
    [
      'a prefix BigQuery reserves',
      record('C', [{ name: '_PARTITIONTIME', type: 'long' }]),
      [['column_conflict', '_PARTITIONTIME']],
    ],
    // nesting_too_deep
    [
      `${MAX_NESTING_DEPTH + 1} levels of records`,
      record('D', [{ name: 'deep', type: nested(MAX_NESTING_DEPTH + 1) }]),
      [['nesting_too_deep', `deep.${Array.from({ length: MAX_NESTING_DEPTH + 1 }, (_, i) => `n${i}`).join('.')}`]],
    ],
    [
      'maps and arrays of arrays count as levels',
      record('D', [{ name: 'deep', type: mapsAndArrays(MAX_NESTING_DEPTH + 1) }]),
      [['nesting_too_deep', expect.stringMatching(/^deep/)]],
    ],
  ])('%s', (_name, schema, expected) => {
    expect(rules(schema)).toEqual(expected);
  });

  it('names the loop of an indirectly recursive type', () => {
    const [p] = carriageProblems(
      parse(record('A', [{ name: 'b', type: record('B', [{ name: 'a', type: ['null', 'A'], default: null }]) }])),
    );
    expect(p?.message).toMatch(/record A contains itself \(A → B → A\)/);
  });

  it('counts nesting the way BigQuery does: a record, map entries, arrays of arrays or maps', () => {
    expect(nestingDepth(parse(record('R', [{ name: 'a', type: 'int' }])))).toBe(0);
    expect(nestingDepth(parse(record('R', [{ name: 'a', type: nested(3) }])))).toBe(3);
    expect(nestingDepth(parse(record('R', [{ name: 'm', type: { type: 'map', values: 'int' } }])))).toBe(1);
    expect(nestingDepth(parse(record('R', [{ name: 'a', type: { type: 'array', items: 'int' } }])))).toBe(0);
    const arrays = { type: 'array', items: { type: 'array', items: 'int' } };
    expect(nestingDepth(parse(record('R', [{ name: 'a', type: arrays }])))).toBe(1);
    expect(nestingDepth(parse(record('R', [{ name: 'u', type: ['null', nested(2)], default: null }])))).toBe(2);
    expect(nestingDepth(parse(record('R', [{ name: 'j', type: ['int', nested(2)] }])))).toBe(0);
  });

  it('uses the column names of the BigQuery mapping', () => {
    expect(payloadColumnName('event_id')).toBe('payload_event_id');
    expect(payloadColumnName('Event_Id')).toBe('Event_Id');
  });
});

/** Maps of arrays of arrays …, `levels` levels as BigQuery counts them. */
function mapsAndArrays(levels: number): unknown {
  let t: unknown = 'int';
  for (let i = 0; i < levels; i++) {
    t = i % 2 === 0 ? { type: 'map', values: t } : { type: 'array', items: { type: 'array', items: t } };
  }
  return t;
}

// ─── properties: the rules agree with the column mappings themselves ────────────────────────

/** Names that collide with each other, the pipeline's columns or BigQuery's reserved prefixes. */
const EXTRA_NAMES = [
  'a',
  'A',
  'date',
  'Hour',
  'event_id',
  'Event_Id',
  'payload_event_id',
  '_file_x',
  'x_1',
  'X_1',
  'Type',
];

/** A generated schema with fields of colliding names added to its record or its first nested one. */
const collidingArb = fc
  .tuple(schemaArb, fc.uniqueArray(fc.constantFrom(...EXTRA_NAMES), { maxLength: 3 }), fc.boolean())
  .map(([g, names, nestedOne]) => {
    const schema = structuredClone(g.avro) as { fields: { name: string }[] };
    const target = (nestedOne ? firstNestedRecord(schema) : null) ?? schema;
    for (const name of names) {
      if (!target.fields.some((f) => f.name === name)) target.fields.push({ name, type: 'int', default: 0 } as never);
    }
    return schema;
  });

function firstNestedRecord(schema: { fields: { name: string }[] }): { fields: { name: string }[] } | null {
  const stack: unknown[] = schema.fields.map((f) => (f as { type?: unknown }).type);
  while (stack.length > 0) {
    const t = stack.shift();
    if (Array.isArray(t)) stack.push(...t);
    else if (typeof t === 'object' && t !== null) {
      const o = t as Record<string, unknown>;
      if (o.type === 'record') return o as unknown as { fields: { name: string }[] };
      stack.push(o.items, o.values);
    }
  }
  return null;
}

function bigQueryDepth(fields: readonly BigQueryField[]): number {
  return Math.max(0, ...fields.map((f) => (f.type === 'RECORD' ? 1 + bigQueryDepth(f.fields ?? []) : 0)));
}

describe('what the pipeline can carry (properties)', () => {
  it('refuses a column conflict exactly when BigQuery refuses the columns or a partition column is taken', () => {
    fc.assert(
      fc.property(collidingArb, (schema) => {
        const type = parse(schema);
        const refused = carriageProblems(type).some((p) => p.rule === 'column_conflict');
        let bigQuery = false;
        try {
          bigQueryFields(type);
        } catch (err) {
          if (!(err instanceof WarehouseSchemaConflict)) throw err;
          bigQuery = true;
        }
        const partition = (type as unknown as { fields: { name: string }[] }).fields.some((f) =>
          (PARTITION_COLUMN_NAMES as readonly string[]).includes(payloadColumnName(f.name).toLowerCase()),
        );
        expect(refused).toBe(bigQuery || partition);
      }),
      { numRuns: 300 },
    );
  });

  it('counts nesting as the BigQuery columns nest, and what it accepts the Parquet mapping builds', () => {
    fc.assert(
      fc.property(schemaArb, (g) => {
        const type = parse(g.avro);
        const problems = carriageProblems(type);
        expect(problems.every((p) => p.rule !== 'recursive_type')).toBe(true);
        if (problems.length > 0) return;
        expect(nestingDepth(type)).toBe(bigQueryDepth(bigQueryFields(type)));
        const columns = new RawParquetTranscoder(type).columnTypes.map((c) => c.name.toLowerCase());
        const all = [...columns, ...PARTITION_COLUMN_NAMES];
        expect(new Set(all).size).toBe(all.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('unstorable_default', () => {
  const withField = (field: Record<string, unknown>) => record('D', [field]);
  it.each([
    ['a long default at -2^52', { name: 'a', type: 'long', default: -(2 ** 52) }, []],
    ['a long default below -2^52', { name: 'a', type: 'long', default: -(2 ** 52) - 1 }, [['unstorable_default', 'a']]],
    [
      'a timestamp default below -2^52',
      { name: 't', type: { type: 'long', logicalType: 'timestamp-millis' }, default: -(2 ** 52) - 2 },
      [['unstorable_default', 't']],
    ],
    ['a string default with a pair of surrogates', { name: 's', type: 'string', default: '\ud83d\ude00' }, []],
    [
      'a string default with a lone surrogate',
      { name: 's', type: 'string', default: '\ud800' },
      [['unstorable_default', 's']],
    ],
    [
      'a map default with a lone surrogate key',
      { name: 'm', type: { type: 'map', values: 'int' }, default: { '\udc00': 1 } },
      [['unstorable_default', 'm']],
    ],
    [
      'an array of longs, one below -2^52',
      { name: 'xs', type: { type: 'array', items: 'long' }, default: [1, -(2 ** 53) + 2] },
      [['unstorable_default', 'xs']],
    ],
    [
      'a nested record default',
      { name: 'r', type: record('In', [{ name: 's', type: 'string' }]), default: { s: '\udbff' } },
      [['unstorable_default', 'r']],
    ],
    [
      'a union default of its first branch',
      { name: 'u', type: ['string', 'null'], default: '\ud800' },
      [['unstorable_default', 'u']],
    ],
    ['a null default of an optional long', { name: 'u', type: ['null', 'long'], default: null }, []],
  ])('%s', (_, field, expected) => {
    expect(rules(withField(field))).toEqual(expected);
  });

  it('refuses a __proto__ key in a default, which parsing drops', () => {
    const declared = JSON.parse(
      '{"type":"record","name":"D","fields":[{"name":"m","type":{"type":"map","values":"int"},"default":{"__proto__":1,"x":2}}]}',
    );
    expect(rules(declared)).toEqual([['unstorable_default', 'm']]);
    const problem = carriageProblems(parse(declared), declared)[0];
    expect(problem?.message).toMatch(/__proto__/);
    // a field named __proto__ elsewhere is not a default
    expect(rules(JSON.parse('{"type":"record","name":"D","fields":[{"name":"a","type":"int","default":0}]}'))).toEqual(
      [],
    );
  });
});
