/**
 * `hourglass types plan|apply|list|show|retire` against a real SQLite registry in a temp data dir,
 * from type folders edited the way an owner would.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
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
    expect(p?.changes).toEqual([expect.stringMatching(/^\+ v2 \(/), 'tier: low → normal']);
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
      'v1 differs from the registered v1 (versions are immutable: add v2)',
    ]);
    expect(p.find((x) => x.type === 'EndSong')?.changes).toEqual([
      'v2 is registered but missing from the folder (versions are never removed)',
    ]);
    expect(p.find((x) => x.type === 'UserCreate')?.changes[0]).toMatch(/partitioning cannot change \(daily → hourly\)/);
  });

  it('retires a type from its folder or the command, and never brings it back', async () => {
    await run('types', 'apply', ...flags);
    expect((await run('types', 'retire', 'PageView', ...flags)).out).toMatch(/PageView: retiring/);
    expect((await run('types', 'retire', 'PageView', ...flags)).out).toMatch(/already retiring/);
    expect((await plan()).find((x) => x.type === 'PageView')?.changes[0]).toMatch(/a retired type does not come back/);
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
