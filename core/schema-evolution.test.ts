import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { checkEvolution } from './schema-evolution.js';

const base = {
  type: 'record',
  name: 'Play',
  namespace: 'hourglass.events',
  fields: [
    { name: 'userId', type: 'string' },
    { name: 'ms', type: 'int' },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B', 'C'] } },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'where', type: { type: 'record', name: 'Where', fields: [{ name: 'country', type: 'string' }] } },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};

type Schema = typeof base & Record<string, unknown>;

function v(schema: unknown, version: number) {
  return { version, type: avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'auto' }) };
}

/** v1 = base, v2 = base changed by `edit`; returns the refusals for v2. */
function evolve(edit: (s: Schema) => void): { rule: string; path: string; message: string }[] {
  const next = structuredClone(base) as Schema;
  edit(next);
  return checkEvolution(v(next, 2), [v(base, 1)]);
}

function field(s: Schema, name: string): Record<string, unknown> {
  return s.fields.find((f) => f.name === name) as unknown as Record<string, unknown>;
}

describe('schema evolution (backward transitive)', () => {
  it('accepts compatible changes: new fields with defaults, promotions, removed fields, aliases', () => {
    expect(
      evolve((s) => {
        s.fields.push({ name: 'offline', type: 'boolean', default: false } as never);
        field(s, 'ms').type = 'long';
        s.fields = s.fields.filter((f) => f.name !== 'tags');
        field(s, 'userId').name = 'user';
        field(s, 'user').aliases = ['userId'];
        (field(s, 'where').type as Record<string, unknown>).name = 'Place';
        (field(s, 'where').type as Record<string, unknown>).aliases = ['Where'];
        field(s, 'note').type = ['null', 'string', 'long'];
      }),
    ).toEqual([]);
  });

  it('refuses a new field without a default, naming it', () => {
    const [p, ...rest] = evolve((s) => {
      s.fields.push({ name: 'bitrate', type: 'int' } as never);
    });
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ rule: 'field_without_default', path: 'bitrate' });
    expect(p?.message).toMatch(/v2 cannot read v1 data: bitrate: new field without a default/);
  });

  it('refuses a field renamed without an alias, and says so', () => {
    const [p] = evolve((s) => {
      field(s, 'userId').name = 'user';
    });
    expect(p).toMatchObject({ rule: 'field_renamed_without_alias', path: 'user' });
    expect(p?.message).toMatch(/"userId"/);
  });

  it('refuses a type change that is no Avro promotion, with the path inside nested types', () => {
    expect(
      evolve((s) => {
        field(s, 'ms').type = 'string';
      })[0],
    ).toMatchObject({ rule: 'type_changed', path: 'ms' });
    expect(
      evolve((s) => {
        ((field(s, 'where').type as Schema).fields[0] as Record<string, unknown>).type = 'int';
      })[0],
    ).toMatchObject({ rule: 'type_changed', path: 'where.country' });
    expect(
      evolve((s) => {
        field(s, 'tags').type = { type: 'array', items: 'int' };
      })[0],
    ).toMatchObject({ rule: 'type_changed', path: 'tags[]' });
    // narrowing is no promotion
    const wide = structuredClone(base) as Schema;
    field(wide, 'ms').type = 'long';
    expect(checkEvolution(v(base, 2), [v(wide, 1)])[0]).toMatchObject({ rule: 'type_changed', path: 'ms' });
  });

  it('refuses removing enum symbols unless the enum has a default', () => {
    const [p] = evolve((s) => {
      (field(s, 'kind').type as Record<string, unknown>).symbols = ['A', 'B'];
    });
    expect(p).toMatchObject({ rule: 'enum_symbol_removed', path: 'kind' });
    expect(p?.message).toMatch(/"C"/);
    expect(
      evolve((s) => {
        (field(s, 'kind').type as Record<string, unknown>).symbols = ['A', 'B', 'OTHER'];
        (field(s, 'kind').type as Record<string, unknown>).default = 'OTHER';
      }),
    ).toEqual([]);
  });

  it('refuses a nested type renamed without an alias, and a changed record name of the type', () => {
    expect(
      evolve((s) => {
        (field(s, 'where').type as Record<string, unknown>).name = 'Place';
      })[0],
    ).toMatchObject({ rule: 'type_renamed', path: 'where' });
    const [p] = evolve((s) => {
      s.name = 'Playback';
      s.aliases = ['Play'];
    });
    expect(p).toMatchObject({ rule: 'type_renamed', path: 'the schema' });
    expect(p?.message).toMatch(/record name cannot change/);
  });

  it('refuses a union that lost the branch old data used', () => {
    const [p] = evolve((s) => {
      field(s, 'note').type = 'string';
      delete field(s, 'note').default;
    });
    expect(p).toMatchObject({ rule: 'type_changed', path: 'note<null>' });
  });

  it('checks every earlier version, not only the last (transitive)', () => {
    // v2 drops field ms; v3 adds ms back as a string: v3 reads v2 but not v1
    const v2 = structuredClone(base) as Schema;
    v2.fields = v2.fields.filter((f) => f.name !== 'ms');
    const v3 = structuredClone(v2) as Schema;
    v3.fields.push({ name: 'ms', type: 'string', default: '' } as never);
    const problems = checkEvolution(v(v3, 3), [v(base, 1), v(v2, 2)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toMatch(/^v3 cannot read v1 data: ms: int cannot be read as string/);
  });
});
