import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventTypeInvalid } from './errors.js';
import { loadEventTypes } from './event-types.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const record = (fields: unknown[]) => ({ type: 'record', name: 'Thing', fields });
const def = { name: 'Thing', owner: 'team', tier: 'low', partitioning: 'hourly', storage: 'files', retentionDays: 7 };

async function typeDir(definition: unknown, schemas: Record<string, unknown>, folder = 'Thing'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'hourglass-types-'));
  dirs.push(root);
  await mkdir(join(root, folder));
  await writeFile(join(root, folder, 'type.json'), JSON.stringify(definition));
  for (const [file, schema] of Object.entries(schemas)) {
    await writeFile(join(root, folder, file), typeof schema === 'string' ? schema : JSON.stringify(schema));
  }
  return root;
}

describe('dedupWindow', () => {
  const v1 = { 'v1.avsc': record([]) };
  it.each([
    ['1h', 30, '1h'],
    ['6h', 30, '6h'],
    ['48h', 30, '2d'],
    ['1.5d', 30, '36h'],
    ['7d', 7, '7d'],
    ['30d', 30, '30d'],
    ['720h', 30, '30d'],
  ])('%s (retention %i d) is accepted, written as %s', async (dedupWindow, retentionDays, written) => {
    const [t] = await loadEventTypes(await typeDir({ ...def, retentionDays, dedupWindow }, v1));
    expect(t?.dedupWindow).toBe(written);
  });

  it.each([
    ['31d', 90, 'dedup_window_invalid'],
    ['0h', 30, 'dedup_window_invalid'],
    ['90m', 30, 'dedup_window_invalid'],
    ['1.5h', 30, 'dedup_window_invalid'],
    [6, 30, 'dedup_window_invalid'],
    ['1w', 30, 'dedup_window_invalid'],
    ['8d', 7, 'dedup_window_beyond_retention'],
    ['25h', 1, 'dedup_window_beyond_retention'],
  ])('%s (retention %i d) is refused (%s), naming the field', async (dedupWindow, retentionDays, rule) => {
    const err = (await loadEventTypes(await typeDir({ ...def, retentionDays, dedupWindow }, v1)).catch(
      (e: unknown) => e,
    )) as EventTypeInvalid;
    expect(err).toBeInstanceOf(EventTypeInvalid);
    expect(err.message).toMatch(/dedupWindow/);
    expect(err.message).toContain(`(${rule})`);
    expect(err.refusals).toEqual([{ path: 'dedupWindow', rule, message: expect.stringMatching(/^dedupWindow /) }]);
  });
});

describe('loadEventTypes', () => {
  it('loads a valid type with defaults for optional fields', async () => {
    const root = await typeDir(
      { name: 'Thing', owner: 'team', tier: 'low' },
      { 'v1.avsc': record([{ name: 'a', type: 'string' }]) },
    );
    const [t] = await loadEventTypes(root);
    expect(t).toMatchObject({
      name: 'Thing',
      partitioning: 'hourly',
      storage: 'files',
      status: 'active',
      retentionDays: 30,
      compatibility: 'backward_transitive',
      dedupWindow: '1h',
    });
    expect(t?.versions[0]?.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['bad tier', { ...def, tier: 'urgent' }, { 'v1.avsc': record([]) }, /tier must be one of/],
    [
      'bad compatibility mode',
      { ...def, compatibility: 'sideways' },
      { 'v1.avsc': record([]) },
      /compatibility must be one of backward_transitive, backward, forward/,
    ],
    ['unknown definition field', { ...def, color: 'red' }, { 'v1.avsc': record([]) }, /unknown field "color"/],
    ['no schema', def, {}, /no schema version/],
    ['gap in versions', def, { 'v1.avsc': record([]), 'v3.avsc': record([]) }, /expected v2.avsc/],
    [
      'not Avro',
      def,
      { 'v1.avsc': { type: 'record', name: 'Thing', fields: [{ name: 'a', type: 'strnig' }] } },
      /not a valid Avro schema/,
    ],
    ['not JSON', def, { 'v1.avsc': '{oops' }, /not JSON/],
    ['not a record', def, { 'v1.avsc': 'string' }, /not JSON|must be an Avro record/],
    [
      'new field without default',
      def,
      {
        'v1.avsc': record([{ name: 'a', type: 'string' }]),
        'v2.avsc': record([
          { name: 'a', type: 'string' },
          { name: 'b', type: 'int' },
        ]),
      },
      /v2 cannot read v1 data/,
    ],
    [
      'type change',
      def,
      { 'v1.avsc': record([{ name: 'a', type: 'string' }]), 'v2.avsc': record([{ name: 'a', type: 'int' }]) },
      /v2 cannot read v1 data/,
    ],
  ])('refuses: %s', async (_name, definition, schemas, message) => {
    const root = await typeDir(definition, schemas);
    const err = await loadEventTypes(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventTypeInvalid);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses a schema the pipeline cannot carry, naming the rule', async () => {
    const root = await typeDir(def, {
      'v1.avsc': record([{ name: 'next', type: ['null', 'Thing'], default: null }]),
    });
    const err = (await loadEventTypes(root).catch((e: unknown) => e)) as EventTypeInvalid;
    expect(err).toBeInstanceOf(EventTypeInvalid);
    expect(err.refusals).toEqual([expect.objectContaining({ path: 'next', rule: 'recursive_type' })]);
    expect(err.message).toMatch(/v1: next: record Thing contains itself .*\(recursive_type\)/);
    expect(err.toJSON()).toMatchObject({ code: 'event_type_invalid', refusals: err.refusals });
  });

  it("checks versions by the type's compatibility mode", async () => {
    const schemas = {
      'v1.avsc': record([
        { name: 'a', type: 'string' },
        { name: 'b', type: 'int' },
      ]),
      'v2.avsc': record([{ name: 'a', type: 'string' }]),
    };
    // b removed: fine backward (the default), refused forward (v1 has no default for it)
    expect((await loadEventTypes(await typeDir(def, schemas)))[0]?.versions).toHaveLength(2);
    const err = (await loadEventTypes(await typeDir({ ...def, compatibility: 'forward' }, schemas)).catch(
      (e: unknown) => e,
    )) as EventTypeInvalid;
    expect(err.refusals).toEqual([expect.objectContaining({ path: 'b', rule: 'field_removed' })]);
  });

  it('refuses a folder named differently from its type', async () => {
    const root = await typeDir(def, { 'v1.avsc': record([]) }, 'Other');
    await expect(loadEventTypes(root)).rejects.toThrow(/folder name Other differs/);
  });
});
