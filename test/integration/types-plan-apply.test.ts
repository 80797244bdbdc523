/**
 * `hourglass types plan|apply|list|show|retire` against a real SQLite registry in a temp data dir,
 * from type folders edited the way an owner would.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { HOUR_MS } from '../../core/hours.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { captureIo } from '../support/cli-io.js';

const ROOT = new URL('../../', import.meta.url).pathname;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = captureIo();
  const code = await main(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

describe('hourglass types', () => {
  let dir: string;
  let schemas: string;
  let flags: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourglass-types-'));
    schemas = join(dir, 'schemas');
    await cp(join(ROOT, 'schemas'), schemas, { recursive: true });
    flags = ['--data-dir', join(dir, 'data'), '--schemas', schemas, '--actor', 'test'];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const plan = async () =>
    JSON.parse((await run('types', 'plan', ...flags, '--format', 'json')).out) as {
      type: string;
      action: string;
      changes: string[];
      refusals?: { path: string; rule: string; message: string }[];
    }[];

  it('plans, applies, and a second apply changes nothing', async () => {
    expect((await plan()).map((p) => [p.type, p.action])).toEqual([
      ['EndSong', 'create'],
      ['PageView', 'create'],
      ['UserCreate', 'create'],
    ]);
    const applied = await run('types', 'apply', ...flags);
    expect(applied.code).toBe(0);
    expect(applied.out).toMatch(/applied 3 change\(s\)/);
    expect((await plan()).every((p) => p.action === 'unchanged')).toBe(true);
    const again = await run('types', 'apply', ...flags);
    expect(again.out).toMatch(/applied 0 change\(s\)/);
    const list = JSON.parse((await run('types', 'list', ...flags, '--format', 'json')).out) as {
      name: string;
      versions: number;
      revision: number;
    }[];
    expect(list.map((t) => [t.name, t.versions, t.revision])).toEqual([
      ['EndSong', 2, 1],
      ['PageView', 1, 1],
      ['UserCreate', 1, 1],
    ]);
  });

  it('adds a compatible version and a tier change, recorded in the history', async () => {
    await run('types', 'apply', ...flags);
    const v2 = JSON.parse(await readFile(join(schemas, 'PageView', 'v1.avsc'), 'utf8')) as { fields: unknown[] };
    v2.fields.push({ name: 'scrollDepth', type: ['null', 'int'], default: null });
    await writeFile(join(schemas, 'PageView', 'v2.avsc'), JSON.stringify(v2));
    const def = JSON.parse(await readFile(join(schemas, 'PageView', 'type.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(schemas, 'PageView', 'type.json'), JSON.stringify({ ...def, tier: 'normal' }));
    const p = (await plan()).find((x) => x.type === 'PageView');
    expect(p?.action).toBe('new_version');
    expect(p?.changes).toEqual([
      expect.stringMatching(/^\+ v2 \(/),
      'v2: field scrollDepth added ([null, int], default null)',
      'tier: low → normal',
    ]);
    expect((await run('types', 'apply', ...flags)).code).toBe(0);
    const shown = JSON.parse((await run('types', 'show', 'PageView', ...flags, '--format', 'json')).out) as {
      tier: string;
      versions: { version: number; createdBy: string }[];
      history: { actor: string; action: string; detail: string }[];
    };
    expect(shown.tier).toBe('normal');
    expect(shown.versions.map((v) => [v.version, v.createdBy])).toEqual([
      [1, 'test'],
      [2, 'test'],
    ]);
    expect(shown.history.map((h) => h.action)).toEqual(['create', 'new_version']);
    expect(shown.history[1]?.detail).toMatch(/tier: low → normal/);
  });

  it('refuses an incompatible version, naming the field and rule, and applies nothing at all', async () => {
    await run('types', 'apply', ...flags);
    // an incompatible PageView v2 next to a harmless tier change of EndSong
    const v2 = JSON.parse(await readFile(join(schemas, 'PageView', 'v1.avsc'), 'utf8')) as { fields: unknown[] };
    v2.fields.push({ name: 'sessionLength', type: 'long' });
    await writeFile(join(schemas, 'PageView', 'v2.avsc'), JSON.stringify(v2));
    const def = JSON.parse(await readFile(join(schemas, 'EndSong', 'type.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(schemas, 'EndSong', 'type.json'), JSON.stringify({ ...def, tier: 'normal' }));
    const planned = await run('types', 'plan', ...flags);
    expect(planned.code).toBe(1);
    expect(planned.out).toMatch(/PageView\s+refused/);
    const refusal = (await plan()).find((x) => x.type === 'PageView');
    expect(refusal?.changes.join(' ')).toMatch(/v2 cannot read v1 data: sessionLength: new field without a default/);
    const applied = await run('types', 'apply', ...flags);
    expect(applied.code).toBe(1);
    expect(applied.err).toMatch(/nothing applied: 1 change\(s\) refused/);
    const endSong = JSON.parse((await run('types', 'show', 'EndSong', ...flags, '--format', 'json')).out) as {
      tier: string;
    };
    expect(endSong.tier).toBe('high');
  });

  it('refuses editing a registered version, removing one, and changing partitioning', async () => {
    await run('types', 'apply', ...flags);
    const v1 = JSON.parse(await readFile(join(schemas, 'PageView', 'v1.avsc'), 'utf8')) as {
      doc?: string;
      fields: { name: string }[];
    };
    v1.fields = v1.fields.slice(0, -1);
    await writeFile(join(schemas, 'PageView', 'v1.avsc'), JSON.stringify(v1));
    await rm(join(schemas, 'EndSong', 'v2.avsc'));
    const def = JSON.parse(await readFile(join(schemas, 'UserCreate', 'type.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(schemas, 'UserCreate', 'type.json'), JSON.stringify({ ...def, partitioning: 'hourly' }));
    const p = await plan();
    expect(p.find((x) => x.type === 'PageView')?.changes).toEqual([
      'v1 changed since it was registered: field experiments removed; versions are immutable: undo the change and add v2',
    ]);
    expect(p.find((x) => x.type === 'EndSong')?.changes).toEqual([
      'v2 is registered but missing from the folder (versions are never removed)',
    ]);
    expect(p.find((x) => x.type === 'UserCreate')?.changes[0]).toMatch(/partitioning cannot change \(daily → hourly\)/);
  });

  /** Writes a type folder `folder` with this definition and schemas. */
  async function folder(name: string, definition: object, versions: object[]): Promise<void> {
    await mkdir(join(schemas, name), { recursive: true });
    await writeFile(join(schemas, name, 'type.json'), JSON.stringify({ owner: 'team', tier: 'low', ...definition }));
    for (const [i, v] of versions.entries()) await writeFile(join(schemas, name, `v${i + 1}.avsc`), JSON.stringify(v));
  }

  it('refuses what the pipeline cannot carry, showing the rule of each refusal', async () => {
    await run('types', 'apply', ...flags);
    await folder('Loop', { name: 'Loop' }, [
      {
        type: 'record',
        name: 'Loop',
        fields: [
          { name: 'value', type: 'int' },
          { name: 'next', type: ['null', 'Loop'], default: null },
        ],
      },
    ]);
    await folder('Clash', { name: 'Clash' }, [
      {
        type: 'record',
        name: 'Clash',
        fields: [
          { name: 'userId', type: 'string' },
          { name: 'UserId', type: 'string' },
        ],
      },
    ]);
    // a folder differing from a registered type only by case
    await folder('endsong', { name: 'endsong' }, [{ type: 'record', name: 'endsong', fields: [] }]);
    const planned = await run('types', 'plan', ...flags);
    expect(planned.code).toBe(1);
    expect(planned.out).toMatch(/Loop\s+refused\s+recursive_type\s+v1\.avsc: v1: next: record Loop contains itself/);
    expect(planned.out).toMatch(/Clash\s+refused\s+column_conflict\s+v1\.avsc: v1: UserId: column "UserId" collides/);
    expect(planned.out).toMatch(/endsong\s+refused\s+name_conflict\s+endsong differs from EndSong only by case/);
    expect(planned.out).toMatch(/EndSong\s+unchanged/);
    const json = await plan();
    expect(json.find((p) => p.type === 'Loop')).toMatchObject({
      action: 'refused',
      refusals: [{ path: 'next', rule: 'recursive_type' }],
    });
    expect((await run('types', 'apply', ...flags)).code).toBe(1);
    expect((await run('types', 'show', 'Loop', ...flags)).code).toBe(1);
  });

  it('refuses two folders whose names differ only by case', async () => {
    await folder('Search', { name: 'Search' }, [{ type: 'record', name: 'Search', fields: [] }]);
    await folder('search', { name: 'search' }, [{ type: 'record', name: 'search', fields: [] }]);
    await run('types', 'apply', ...flags);
    const p = await plan();
    expect(p.filter((x) => x.action === 'refused').map((x) => [x.type, x.refusals?.[0]?.rule])).toEqual([
      ['search', 'name_conflict'],
      ['Search', 'name_conflict'],
    ]);
  });

  it('refuses a registered version edited in anything a reader sees, saying what changed; a doc edit is nothing', async () => {
    await run('types', 'apply', ...flags);
    const file = join(schemas, 'EndSong', 'v2.avsc');
    const v2 = JSON.parse(await readFile(file, 'utf8')) as { doc: string; fields: Record<string, unknown>[] };
    v2.doc = 'reworded';
    await writeFile(file, JSON.stringify(v2));
    expect((await plan()).find((x) => x.type === 'EndSong')?.action).toBe('unchanged');
    (v2.fields.find((f) => f.name === 'offline') as Record<string, unknown>).default = true;
    await writeFile(file, JSON.stringify(v2));
    const p = (await plan()).find((x) => x.type === 'EndSong');
    expect(p).toMatchObject({
      action: 'refused',
      refusals: [{ path: 'v2', rule: 'version_changed' }],
      changes: [
        'v2 changed since it was registered: field offline default false → true; versions are immutable: undo the change and add v3',
      ],
    });
    const applied = await run('types', 'apply', ...flags);
    expect(applied.code).toBe(1);
    expect(applied.out).toMatch(/EndSong\s+refused\s+version_changed/);
  });

  it('changes the compatibility mode as an update, and checks new versions by it', async () => {
    await run('types', 'apply', ...flags);
    const defFile = join(schemas, 'PageView', 'type.json');
    const def = JSON.parse(await readFile(defFile, 'utf8')) as Record<string, unknown>;
    await writeFile(defFile, JSON.stringify({ ...def, compatibility: 'forward' }));
    expect((await plan()).find((x) => x.type === 'PageView')).toMatchObject({
      action: 'update',
      changes: ['compatibility: backward_transitive → forward'],
    });
    // a v2 without url (v1 has no default for it): fine backward, refused forward
    const v1 = JSON.parse(await readFile(join(schemas, 'PageView', 'v1.avsc'), 'utf8')) as {
      fields: { name: string }[];
    };
    await writeFile(
      join(schemas, 'PageView', 'v2.avsc'),
      JSON.stringify({ ...v1, fields: v1.fields.filter((f) => f.name !== 'url') }),
    );
    const planned = await run('types', 'plan', ...flags);
    expect(planned.out).toMatch(
      /PageView\s+refused\s+field_removed\s+v2\.avsc: v1 cannot read v2 data: url: removed \(or renamed\), but the older version has no default for it/,
    );
    await writeFile(defFile, JSON.stringify(def));
    expect((await plan()).find((x) => x.type === 'PageView')).toMatchObject({
      action: 'new_version',
      changes: [expect.stringMatching(/^\+ v2 \(/), 'v2: field url removed'],
    });
    expect((await run('types', 'apply', ...flags)).code).toBe(0);
    const shown = JSON.parse((await run('types', 'show', 'PageView', ...flags, '--format', 'json')).out) as {
      compatibility: string;
    };
    expect(shown.compatibility).toBe('backward_transitive');
  });

  it('changes the dedup window as an update, shown by list and show; refuses one past the retention', async () => {
    await run('types', 'apply', ...flags);
    const defFile = join(schemas, 'PageView', 'type.json');
    const def = JSON.parse(await readFile(defFile, 'utf8')) as Record<string, unknown>;
    await writeFile(defFile, JSON.stringify({ ...def, dedupWindow: '168h' }));
    expect((await plan()).find((x) => x.type === 'PageView')).toMatchObject({
      action: 'update',
      changes: ['dedupWindow: 1h → 7d'],
    });
    expect((await run('types', 'apply', ...flags)).code).toBe(0);
    expect((await plan()).find((x) => x.type === 'PageView')?.action).toBe('unchanged');
    const list = JSON.parse((await run('types', 'list', ...flags, '--format', 'json')).out) as {
      name: string;
      dedupWindow: string;
    }[];
    expect(list.map((t) => [t.name, t.dedupWindow])).toEqual([
      ['EndSong', '1h'],
      ['PageView', '7d'],
      ['UserCreate', '1h'],
    ]);
    const shown = await run('types', 'show', 'PageView', ...flags);
    expect(shown.out).toMatch(/dedupWindow\s+7d/);
    await writeFile(defFile, JSON.stringify({ ...def, retentionDays: 7, dedupWindow: '8d' }));
    expect((await plan()).find((x) => x.type === 'PageView')).toMatchObject({
      action: 'refused',
      refusals: [{ path: 'dedupWindow', rule: 'dedup_window_beyond_retention' }],
    });
  });

  it('warns when a longer dedup window would make each partition read 1 GB or more of id indexes', async () => {
    await run('types', 'apply', ...flags);
    // a big hour of PageView, published (events out) and one still closing (its ledger)
    const state = new SqliteStateStore(join(dir, 'data', 'state.sqlite'));
    const h = Date.UTC(2026, 10, 22, 10);
    try {
      for (const [hour, events] of [
        [h, 2_000_000],
        [h + HOUR_MS, 1_000_000],
      ] as const) {
        await state.closeHour({
          type: 'PageView',
          hour,
          closedAt: hour + HOUR_MS,
          closedBy: 'sealed',
          vanishedInstances: [],
          ledgerTotal: events + 5,
        });
      }
      await state.updateHour('PageView', h, { state: 'published', eventsOut: 2_000_000 }, h + 2 * HOUR_MS);
    } finally {
      await state.close();
    }
    const defFile = join(schemas, 'PageView', 'type.json');
    const def = JSON.parse(await readFile(defFile, 'utf8')) as Record<string, unknown>;
    const planned = async (window: string) => {
      await writeFile(defFile, JSON.stringify({ ...def, dedupWindow: window }));
      return (await plan()).find((x) => x.type === 'PageView') as { action: string; warnings?: string[] };
    };
    // 168 hours × 2,000,000 ids × 16 bytes
    expect(await planned('7d')).toMatchObject({
      action: 'update',
      warnings: [
        "dedupWindow 7d: each partition's dedup would read the id indexes of the 168 hours before it: about " +
          "5.4 GB at the type's largest recent hour (2,000,000 events), read again for every partition " +
          '(README, "The dedup window")',
      ],
    });
    const text = await run('types', 'plan', ...flags);
    expect(text.err).toMatch(/warning: PageView: dedupWindow 7d: .* about 5\.4 GB/);
    // 24 × 2,000,000 × 16 = 0.77 GB: no warning; nor for a window that does not grow
    expect((await planned('1d')).warnings).toBeUndefined();
    expect((await planned('1h')).warnings).toBeUndefined();
    await writeFile(defFile, JSON.stringify({ ...def, dedupWindow: '7d' }));
    expect((await run('types', 'apply', ...flags)).code).toBe(0);
    expect((await planned('7d')).warnings).toBeUndefined();
  });

  it('retires a type from its folder or the command, and never brings it back', async () => {
    await run('types', 'apply', ...flags);
    expect((await run('types', 'retire', 'PageView', ...flags)).out).toMatch(/PageView: retiring/);
    expect((await run('types', 'retire', 'PageView', ...flags)).out).toMatch(/already retiring/);
    // the folder still says active: not refused, the registry keeps it retiring (a warning says so)
    expect((await plan()).find((x) => x.type === 'PageView')).toMatchObject({
      action: 'unchanged',
      warnings: [expect.stringMatching(/a retired type does not come back/)],
    });
    const def = JSON.parse(await readFile(join(schemas, 'PageView', 'type.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(schemas, 'PageView', 'type.json'), JSON.stringify({ ...def, status: 'retiring' }));
    const def2 = JSON.parse(await readFile(join(schemas, 'UserCreate', 'type.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    await writeFile(join(schemas, 'UserCreate', 'type.json'), JSON.stringify({ ...def2, status: 'retired' }));
    const p = await plan();
    expect(p.find((x) => x.type === 'PageView')?.action).toBe('unchanged');
    expect(p.find((x) => x.type === 'UserCreate')).toMatchObject({
      action: 'retire',
      changes: ['status: active → retiring'],
    });
    expect((await run('types', 'retire', 'Nope', ...flags)).code).toBe(1);
    expect((await run('types', 'frobnicate', ...flags)).code).toBe(2);
  });
});
