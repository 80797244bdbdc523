import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { schemaArb } from '../test/support/avro-fuzz.js';
import { COMPATIBILITY_MODES, type CompatibilityMode, checkEvolution, incompatibilities } from './schema-evolution.js';

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

describe('refusals are precise', () => {
  it('says a new unrelated field has no default, and reports a removed field on its own where the mode asks', () => {
    // userId removed, country added without a default: not a rename
    const next = structuredClone(base) as Schema;
    next.fields = next.fields.filter((f) => f.name !== 'userId');
    next.fields.push({ name: 'country', type: 'string' } as never);
    const backward = checkEvolution(v(next, 2), [v(base, 1)], 'backward_transitive');
    expect(backward).toEqual([
      {
        path: 'country',
        rule: 'field_without_default',
        message:
          'v2 cannot read v1 data: country: new field without a default: data written before it cannot be read (add a "default")',
      },
    ]);
    const full = checkEvolution(v(next, 2), [v(base, 1)], 'full');
    expect(full.map((p) => [p.rule, p.path])).toEqual([
      ['field_without_default', 'country'],
      ['field_removed', 'userId'],
    ]);
    expect(full[1]?.message).toBe(
      'v1 cannot read v2 data: userId: removed (or renamed), but the older version has no default for it',
    );
  });

  it('names each problem once, with every version it concerns', () => {
    const v2 = structuredClone(base) as Schema;
    v2.fields.push({ name: 'offline', type: 'boolean', default: false } as never);
    const v3 = structuredClone(v2) as Schema;
    v3.fields.push({ name: 'bitrate', type: 'int' } as never);
    const problems = checkEvolution(v(v3, 3), [v(base, 1), v(v2, 2)], 'full_transitive');
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'bitrate',
        rule: 'field_without_default',
        message: expect.stringMatching(/^v3 cannot read v1, v2 data: bitrate: new field without a default/),
      }),
    ]);
  });
});

// ─── compatibility modes ────────────────────────────────────────────────────────────────────

const small = {
  type: 'record',
  name: 'Play',
  fields: [
    { name: 'userId', type: 'string' },
    { name: 'ms', type: 'int' },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] } },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};

type Edit = (s: typeof small) => void;
const edited = (edit: Edit, from: typeof small = small): typeof small => {
  const next = structuredClone(from);
  edit(next);
  return next;
};
const fieldOf = (s: typeof small, name: string) => s.fields.find((f) => f.name === name) as Record<string, unknown>;
const without =
  (name: string): Edit =>
  (s) => {
    s.fields = s.fields.filter((f) => f.name !== name);
  };

/** Rules refused per mode; modes not listed accept, or refuse `pipeline` (what every mode refuses). */
type Expect = Partial<Record<CompatibilityMode | 'pipeline', string[]>>;

function expectedFor(e: Expect, mode: CompatibilityMode): string[] {
  return e[mode] ?? e.pipeline ?? [];
}

const FORWARD: CompatibilityMode[] = ['forward', 'forward_transitive', 'full', 'full_transitive'];
const on = (modes: CompatibilityMode[], rules: string[]): Expect => Object.fromEntries(modes.map((m) => [m, rules]));

// each row: the versions (v1 first) and what each mode refuses of the last one
const MODE_TABLE: [string, unknown[], Expect][] = [
  [
    'a field added with a default',
    [small, edited((s) => s.fields.push({ name: 'x', type: 'int', default: 0 } as never))],
    {},
  ],
  [
    'a field added without a default (old data has no value: refused in every mode)',
    [small, edited((s) => s.fields.push({ name: 'x', type: 'int' } as never))],
    { pipeline: ['field_without_default'] },
  ],
  ['a field without a default removed', [small, edited(without('userId'))], on(FORWARD, ['field_removed'])],
  ['a field with a default removed', [small, edited(without('note'))], {}],
  [
    'int widened to long',
    [
      small,
      edited((s) => {
        fieldOf(s, 'ms').type = 'long';
      }),
    ],
    on(FORWARD, ['type_changed']),
  ],
  [
    'long narrowed to int (refused in every mode)',
    [
      edited((s) => {
        fieldOf(s, 'ms').type = 'long';
      }),
      small,
    ],
    { pipeline: ['type_changed'] },
  ],
  [
    'an enum symbol added',
    [
      small,
      edited((s) => {
        (fieldOf(s, 'kind').type as { symbols: string[] }).symbols.push('C');
      }),
    ],
    on(FORWARD, ['enum_symbol_added']),
  ],
  [
    'an enum symbol removed (refused in every mode)',
    [
      small,
      edited((s) => {
        (fieldOf(s, 'kind').type as { symbols: string[] }).symbols = ['A'];
      }),
    ],
    { pipeline: ['enum_symbol_removed'] },
  ],
  [
    'v2 gives userId a default, v3 removes it: only v1 cannot read v3 data',
    [
      small,
      edited((s) => {
        fieldOf(s, 'userId').default = '';
      }),
      edited(without('userId')),
    ],
    on(['forward_transitive', 'full_transitive'], ['field_removed']),
  ],
  [
    'v2 drops ms, v3 adds it back as a string: v3 cannot read v1 data (refused in every mode)',
    [
      small,
      edited(without('ms')),
      edited((s) => s.fields.push({ name: 'ms', type: 'string', default: '' } as never), edited(without('ms'))),
    ],
    {
      pipeline: ['type_changed'],
      // and v1 cannot read v3 data: the other direction, its own refusal
      forward_transitive: ['type_changed', 'type_changed'],
      full_transitive: ['type_changed', 'type_changed'],
    },
  ],
];

describe('compatibility modes', () => {
  const cases = MODE_TABLE.flatMap(([name, versions, e]) =>
    COMPATIBILITY_MODES.map((mode) => [name, mode, versions, expectedFor(e, mode)] as const),
  );
  it.each(cases)('%s — %s', (_name, mode, versions, expected) => {
    const parsed = versions.map((s, i) => v(s, i + 1));
    const candidate = parsed[parsed.length - 1] as { version: number; type: avro.Type };
    const problems = checkEvolution(candidate, parsed.slice(0, -1), mode);
    expect(problems.map((p) => p.rule)).toEqual(expected);
  });

  it('says when a refusal comes from the pipeline rather than the mode', () => {
    const next = edited((s) => s.fields.push({ name: 'x', type: 'int' } as never));
    const [byMode] = checkEvolution(v(next, 2), [v(small, 1)], 'backward');
    const [byPipeline] = checkEvolution(v(next, 2), [v(small, 1)], 'none');
    expect(byMode?.message).not.toMatch(/whatever the compatibility mode/);
    expect(byPipeline?.message).toMatch(/needed whatever the compatibility mode: the pipeline stores every event/);
  });

  it('checks only the previous version in backward, forward and full, every earlier one in *_transitive', () => {
    const three = MODE_TABLE.find(([name]) => name.startsWith('v2 gives userId'))?.[1] as unknown[];
    const parsed = three.map((s, i) => v(s, i + 1));
    const last = parsed[2] as { version: number; type: avro.Type };
    const [p] = checkEvolution(last, parsed.slice(0, 2), 'forward_transitive');
    expect(p?.message).toMatch(/^v1 cannot read v3 data: userId: removed/);
  });
});

/**
 * Whether avsc resolves a schema against itself: it does not when a field is named like a member
 * of every JavaScript object (`valueOf`, `constructor`, …), so such a type cannot get a second
 * version (refused as `unresolvable`).
 */
function selfResolves(schema: unknown): boolean {
  try {
    v(schema, 1).type.createResolver(v(schema, 1).type);
    return true;
  } catch {
    return false;
  }
}

function parses(schema: unknown): boolean {
  try {
    v(schema, 1);
    return true;
  } catch {
    return false;
  }
}

describe('compatibility (properties)', () => {
  it('every mode accepts a schema as its own next version', () => {
    fc.assert(
      fc.property(schemaArb, fc.constantFrom(...COMPATIBILITY_MODES), (g, mode) => {
        fc.pre(selfResolves(g.avro));
        expect(checkEvolution(v(g.avro, 2), [v(g.avro, 1)], mode)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses only what avsc cannot resolve, and accepts only what it can', () => {
    fc.assert(
      fc.property(schemaArb, schemaArb, (a, b) => {
        const reader = v(a.avro, 2).type;
        const writer = v({ ...b.avro, name: a.avro.name }, 1).type;
        let resolves = true;
        try {
          reader.createResolver(writer);
        } catch {
          resolves = false;
        }
        if (incompatibilities(reader, writer, 'backward').length > 0) expect(resolves).toBe(false);
        if (checkEvolution({ version: 2, type: reader }, [{ version: 1, type: writer }]).length === 0)
          expect(resolves).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a removed top-level field is refused forward exactly when the older version has no default for it', () => {
    fc.assert(
      fc.property(schemaArb, fc.nat(), (g, pick) => {
        const fields = g.avro.fields as { name: string; default?: unknown }[];
        fc.pre(fields.length > 0 && selfResolves(g.avro));
        const gone = fields[pick % fields.length] as { name: string; default?: unknown };
        const next = { ...g.avro, fields: fields.filter((f) => f !== gone) };
        // the removed field may have defined a named type used after it
        fc.pre(parses(next));
        expect(checkEvolution(v(next, 2), [v(g.avro, 1)], 'backward')).toEqual([]);
        const forward = checkEvolution(v(next, 2), [v(g.avro, 1)], 'forward');
        expect(forward.map((p) => [p.rule, p.path])).toEqual('default' in gone ? [] : [['field_removed', gone.name]]);
      }),
      { numRuns: 300 },
    );
  });
});
