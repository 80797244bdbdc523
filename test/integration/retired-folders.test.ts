/**
 * Type folders and retirement agree, and folder applies keep the owners' quota: `hourglass types
 * retire|plan|apply` in-process against a real SQLite registry in a temp data dir, with folders
 * edited the way an owner would.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { setStatus } from '../../orchestrator/registry.js';
import { captureIo } from '../support/cli-io.js';

const ROOT = new URL('../../', import.meta.url).pathname;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = captureIo();
  const code = await main(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

interface Planned {
  type: string;
  action: string;
  changes: string[];
  warnings?: string[];
}

describe('type folders of retired types', () => {
  let dir: string;
  let schemas: string;
  let data: string;
  let flags: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourglass-retired-folders-'));
    schemas = join(dir, 'schemas');
    data = join(dir, 'data');
    await cp(join(ROOT, 'schemas'), schemas, { recursive: true });
    flags = ['--data-dir', data, '--schemas', schemas, '--actor', 'test'];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const plan = async (...extra: string[]): Promise<{ code: number; plan: Planned[]; err: string }> => {
    const r = await run('types', 'plan', ...flags, ...extra, '--format', 'json');
    return { code: r.code, plan: JSON.parse(r.out) as Planned[], err: r.err };
  };
  const find = (p: Planned[], type: string): Planned | undefined => p.find((x) => x.type === type);
  const setFolderStatus = async (type: string, status: string): Promise<void> => {
    const file = join(schemas, type, 'type.json');
    const def = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...def, status }));
  };
  /** Marks a type retired in the registry, as the reconcile loop does once it drained. */
  const markRetired = async (type: string): Promise<void> => {
    const store = new SqliteStateStore(join(data, 'state.sqlite'));
    try {
      await setStatus(store, { name: 'reconciler', owner: null, role: 'admin' }, type, 'retired', 'drained', 2);
    } finally {
      await store.close();
    }
  };

  it('retire says how to mark the folder; until then plan and apply warn and change nothing', async () => {
    expect((await run('types', 'apply', ...flags)).code).toBe(0);
    const retired = await run('types', 'retire', 'PageView', ...flags);
    expect(retired.code).toBe(0);
    expect(retired.out).toContain('PageView: retiring');
    expect(retired.out).toContain(`set "status": "retired" in ${join(schemas, 'PageView', 'type.json')}`);

    const p = await plan();
    expect(p.code).toBe(0);
    expect(find(p.plan, 'PageView')).toMatchObject({
      action: 'unchanged',
      warnings: [expect.stringMatching(/registry says retiring and the folder says active.*"status": "retired"/)],
    });
    expect(p.err).toMatch(/hourglass types plan: warning: PageView: /);
    const applied = await run('types', 'apply', ...flags);
    expect(applied.code).toBe(0);
    expect(applied.out).toMatch(/applied 0 change\(s\)/);
    expect(applied.err).toMatch(/warning: PageView/);

    // a folder description edit still applies; the status stays the registry's
    const file = join(schemas, 'PageView', 'type.json');
    const def = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...def, description: 'no longer sent' }));
    expect((await run('types', 'apply', ...flags)).code).toBe(0);
    const shown = JSON.parse((await run('types', 'show', 'PageView', ...flags, '--format', 'json')).out) as {
      status: string;
      description: string;
    };
    expect(shown).toMatchObject({ status: 'retiring', description: 'no longer sent' });
  });

  it('a folder marked retired or retiring is unchanged once the registry says retired', async () => {
    expect((await run('types', 'apply', ...flags)).code).toBe(0);
    expect((await run('types', 'retire', 'PageView', ...flags)).code).toBe(0);
    await markRetired('PageView');
    for (const status of ['retired', 'retiring']) {
      await setFolderStatus('PageView', status);
      const p = await plan();
      expect(p.code).toBe(0);
      expect(find(p.plan, 'PageView'), status).toEqual({ type: 'PageView', action: 'unchanged', changes: [] });
      expect(p.err).toBe('');
    }
    // still active in the folder: a warning, not a refusal
    await setFolderStatus('PageView', 'active');
    expect(find((await plan()).plan, 'PageView')?.warnings?.[0]).toMatch(/registry says retired/);
    // but no new version for a retired type
    await setFolderStatus('PageView', 'retired');
    const v2 = JSON.parse(await readFile(join(schemas, 'PageView', 'v1.avsc'), 'utf8')) as { fields: unknown[] };
    v2.fields.push({ name: 'scrollDepth', type: ['null', 'int'], default: null });
    await writeFile(join(schemas, 'PageView', 'v2.avsc'), JSON.stringify(v2));
    const refused = await plan();
    expect(refused.code).toBe(1);
    expect(find(refused.plan, 'PageView')).toMatchObject({
      action: 'refused',
      changes: ['the type is retired: no new version (v2) for it'],
    });
  });

  it('registers a folder marked retired (or retiring) as retired on a fresh data dir', async () => {
    await setFolderStatus('PageView', 'retired');
    await setFolderStatus('UserCreate', 'retiring');
    const applied = await run('types', 'apply', ...flags, '--format', 'json');
    expect(applied.code).toBe(0);
    const p = JSON.parse(applied.out) as Planned[];
    expect(p.map((x) => [x.type, x.action])).toEqual([
      ['EndSong', 'create'],
      ['PageView', 'create'],
      ['UserCreate', 'create'],
    ]);
    expect(find(p, 'PageView')?.changes[0]).toBe('registered retired (the folder says retired): no topic, no consumer');
    const list = JSON.parse((await run('types', 'list', ...flags, '--format', 'json')).out) as {
      name: string;
      status: string;
      versions: number;
    }[];
    expect(list.map((t) => [t.name, t.status, t.versions])).toEqual([
      ['EndSong', 'active', 2],
      ['PageView', 'retired', 1],
      ['UserCreate', 'retired', 1],
    ]);
    expect((await plan()).plan.every((x) => x.action === 'unchanged')).toBe(true);
  });
});

describe('the owners quota in folder applies', () => {
  let dir: string;
  let schemas: string;
  let flags: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourglass-folder-quota-'));
    schemas = join(dir, 'schemas');
    await cp(join(ROOT, 'schemas'), schemas, { recursive: true });
    // two more types of owner web (PageView is the first)
    for (const name of ['PageView2', 'PageView3']) {
      await cp(join(schemas, 'PageView'), join(schemas, name), { recursive: true });
      const file = join(schemas, name, 'type.json');
      const def = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...def, name }));
    }
    await writeFile(join(dir, 'config.json'), JSON.stringify({ registry: { maxActiveTypesPerOwner: 2 } }));
    flags = ['--data-dir', join(dir, 'data'), '--schemas', schemas, '--config', join(dir, 'config.json')];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses folders that take an owner past its quota, unless --allow-over-quota', async () => {
    const refused = await run('types', 'apply', ...flags, '--format', 'json');
    expect(refused.code).toBe(1);
    const p = JSON.parse(refused.out) as Planned[];
    for (const name of ['PageView', 'PageView2', 'PageView3']) {
      expect(
        p.find((x) => x.type === name),
        name,
      ).toMatchObject({
        action: 'refused',
        changes: [
          expect.stringMatching(
            /^quota_exceeded: owner web would have 3 active event types, the limit is 2 .*--allow-over-quota/,
          ),
        ],
      });
    }
    expect(p.find((x) => x.type === 'EndSong')?.action).toBe('create');
    expect(refused.err).toMatch(/nothing applied/);

    // a folder marked retired does not count
    const file = join(schemas, 'PageView3', 'type.json');
    const def = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...def, status: 'retired' }));
    const within = await run('types', 'apply', ...flags, '--format', 'json');
    expect(within.code).toBe(0);
    expect((JSON.parse(within.out) as Planned[]).map((x) => x.action)).toEqual(Array(5).fill('create'));

    // an admin's deliberate call: past the quota
    await cp(join(schemas, 'PageView2'), join(schemas, 'PageView4'), { recursive: true });
    await writeFile(join(schemas, 'PageView4', 'type.json'), JSON.stringify({ ...def, name: 'PageView4' }));
    expect((await run('types', 'apply', ...flags)).code).toBe(1);
    const over = await run('types', 'apply', ...flags, '--allow-over-quota');
    expect(over.code).toBe(0);
    expect(over.out).toMatch(/applied 1 change\(s\)/);
  });
});
