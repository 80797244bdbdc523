import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { schemaArb } from '../test/support/avro-fuzz.js';
import { canonicalSchema, schemaChanges } from './schema-diff.js';

const base = {
  type: 'record',
  name: 'Play',
  namespace: 'hg',
  doc: 'a play',
  fields: [
    { name: 'userId', type: 'string', doc: 'who' },
    { name: 'ms', type: 'int', default: 0 },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B', 'C'] } },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 6, scale: 2 } },
    { name: 'hash', type: { type: 'fixed', name: 'Hash', size: 16 } },
    { name: 'where', type: { type: 'record', name: 'Where', fields: [{ name: 'country', type: 'string' }] } },
    { name: 'tags', type: { type: 'array', items: 'string' }, default: [] },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};

type Schema = typeof base & Record<string, unknown>;
type Field = Record<string, unknown> & { type: Record<string, unknown> };

function changed(edit: (s: Schema, f: (name: string) => Field) => void): string[] {
  const next = structuredClone(base) as Schema;
  edit(next, (name) => next.fields.find((x) => x.name === name) as unknown as Field);
  return schemaChanges(base, next);
}

describe('schema changes that matter to readers', () => {
  it.each<[string, (s: Schema, f: (name: string) => Field) => void, string[]]>([
    ['nothing', () => {}, []],
    [
      'docs only',
      (s, f) => {
        s.doc = 'other';
        f('userId').doc = 'someone';
        f('kind').type.doc = 'the kind';
      },
      [],
    ],
    [
      'the namespace spelled inside the name',
      (s) => {
        s.name = 'hg.Play';
        delete (s as Record<string, unknown>).namespace;
      },
      [],
    ],
    [
      'a default',
      (_s, f) => {
        f('ms').default = 1;
      },
      ['field ms default 0 → 1'],
    ],
    [
      'a default added',
      (_s, f) => {
        f('userId').default = '';
      },
      ['field userId default none → ""'],
    ],
    [
      'aliases',
      (_s, f) => {
        f('userId').aliases = ['uid'];
      },
      ['field userId aliases none → uid'],
    ],
    [
      'a sort order',
      (_s, f) => {
        f('ms').order = 'descending';
      },
      ['field ms order ascending → descending'],
    ],
    [
      'a type',
      (_s, f) => {
        f('ms').type = 'long' as never;
      },
      ['field ms type int → long'],
    ],
    [
      'a logical type',
      (_s, f) => {
        f('at').type = 'long' as never;
      },
      ['field at logical type timestamp-millis → none'],
    ],
    [
      'decimal precision',
      (_s, f) => {
        f('price').type.precision = 8;
      },
      ['field price logical type decimal(6, 2) → decimal(8, 2)'],
    ],
    [
      'enum symbols and default',
      (_s, f) => {
        f('kind').type.symbols = ['A', 'B', 'OTHER'];
        f('kind').type.default = 'OTHER';
      },
      ['field kind symbols A, B, C → A, B, OTHER', 'field kind enum default none → "OTHER"'],
    ],
    [
      'a fixed size',
      (_s, f) => {
        f('hash').type.size = 32;
      },
      ['field hash size 16 → 32'],
    ],
    [
      'a nested field',
      (_s, f) => {
        (f('where').type.fields as Field[]).push({ name: 'city', type: 'string', default: '' } as never);
      },
      ['field where.city added (string, default "")'],
    ],
    [
      'a nested record renamed',
      (_s, f) => {
        f('where').type.name = 'Place';
      },
      ['field where record Where renamed to Place'],
    ],
    [
      'array items',
      (_s, f) => {
        f('tags').type.items = 'int';
      },
      ['field tags[] type string → int'],
    ],
    [
      'a union branch',
      (_s, f) => {
        f('note').type = ['null', 'string', 'int'] as never;
      },
      ['field note type [null, string] → [null, string, int]'],
    ],
    [
      'fields added, removed, reordered',
      (s) => {
        s.fields = [...s.fields.filter((x) => x.name !== 'tags').reverse(), { name: 'x', type: 'int' } as never];
      },
      [
        'field tags removed',
        'field x added (int, no default)',
        'fields of the record reordered: userId, ms, kind, at, price, hash, where, note → note, where, hash, price, at, kind, ms, userId',
      ],
    ],
  ])('%s', (_name, edit, expected) => {
    expect(changed(edit)).toEqual(expected);
  });

  it('ends on recursive types', () => {
    const loop = (dflt: unknown) => ({
      type: 'record',
      name: 'Loop',
      fields: [{ name: 'next', type: ['null', 'Loop'], default: dflt }],
    });
    expect(schemaChanges(loop(null), loop(null))).toEqual([]);
    expect(canonicalSchema(loop(null))).toBe(canonicalSchema(loop(null)));
  });
});

/** Every object of a JSON value with its keys in reverse order, and a `doc` on every object. */
function reshuffled(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reshuffled);
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).reverse()) out[k] = k === 'default' || k === 'symbols' ? o[k] : reshuffled(o[k]);
  if ('type' in o) out.doc = 'added doc';
  return out;
}

describe('schema changes (properties)', () => {
  it('finds none for the same schema with other key order and docs', () => {
    fc.assert(
      fc.property(schemaArb, (g) => {
        expect(schemaChanges(g.avro, reshuffled(g.avro))).toEqual([]);
        expect(canonicalSchema(reshuffled(g.avro))).toBe(canonicalSchema(g.avro));
      }),
      { numRuns: 300 },
    );
  });

  it('names a changed or added default of any top-level field', () => {
    fc.assert(
      fc.property(schemaArb, fc.nat(), (g, pick) => {
        const fields = g.avro.fields as Record<string, unknown>[];
        fc.pre(fields.length > 0);
        const next = structuredClone(g.avro) as { fields: Record<string, unknown>[] };
        const f = next.fields[pick % fields.length] as Record<string, unknown>;
        // a default that cannot be the one it had (a fresh object is never JSON-equal to a non-object)
        f.default = { changed: pick };
        const lines = schemaChanges(g.avro, next);
        const name = f.name as string;
        expect(lines.filter((x) => x.startsWith(`field ${name} default `))).toEqual([
          expect.stringMatching(new RegExp(`→ \\{"changed":${pick}\\}$`)),
        ]);
      }),
      { numRuns: 300 },
    );
  });
});
