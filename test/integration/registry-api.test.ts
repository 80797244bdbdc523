/**
 * The registry API on the ingress port of a real pipeline (embedded bus, SQLite, no ETL): tokens,
 * owner rules, evolution refusals, and changes the ingress accepts at once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pipeline, startPipeline } from '../../cli/pipeline.js';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { createToken } from '../../orchestrator/tokens.js';
import { SCHEMAS_DIR } from '../support/ingress-harness.js';
import { callJson } from '../support/json-api.js';

let dir: string;
let p: Pipeline;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hourglass-registry-api-'));
  const config = loadConfig({
    // events are posted without a producer key here (keys: test/integration/ingress-auth.test.ts)
    overrides: { dataDir: dir, schemasDir: SCHEMAS_DIR, 'ingress.port': 0, 'ingress.auth': false, logLevel: 'silent' },
  });
  p = await startPipeline(config, silentLogger(), { etl: false });
  for (const [name, owner, role] of [
    ['search', 'search', 'owner'],
    ['web', 'web', 'owner'],
    ['admin', 'ops', 'admin'],
    ['revoked', 'search', 'owner'],
  ] as const) {
    const t = await createToken(p.store, owner, role, 1);
    tokens[name] = t.token;
    if (name === 'revoked') await p.store.revokeToken(t.id, 2);
  }
});
afterAll(async () => {
  await p.close();
  await rm(dir, { recursive: true, force: true });
});

const api = (method: string, path: string, token: string | null, body?: unknown) =>
  callJson(`${p.url}${path}`, method, token, body);

async function sendEvent(type: string, version: number, payload: object) {
  const r = await api('POST', '/v1/events', null, { events: [{ id: `e-${Math.random()}`, type, version, payload }] });
  return r.body as { accepted: number; rejected: { code: string; message: string }[] };
}

const searchV1 = {
  type: 'record',
  name: 'Search',
  fields: [{ name: 'query', type: 'string' }],
};

describe('registry API', () => {
  it('answers 401 without a valid token, naming why', async () => {
    expect((await api('GET', '/v1/event-types', null)).status).toBe(401);
    expect((await api('GET', '/v1/event-types', 'nonsense')).body.error.code).toBe('unauthorized');
    const unknownId = tokens.search?.replace(/^hgt_[0-9a-f]{12}/, 'hgt_000000000000') as string;
    expect((await api('GET', '/v1/event-types', unknownId)).status).toBe(401);
    const wrongSecret = `${tokens.search?.slice(0, -4)}AAAA`;
    expect((await api('GET', '/v1/event-types', wrongSecret)).status).toBe(401);
    const revoked = await api('GET', '/v1/event-types', tokens.revoked as string);
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.message).toMatch(/revoked/);
  });

  it('lists and shows types: an admin all, an owner its own', async () => {
    const list = await api('GET', '/v1/event-types', tokens.admin as string);
    expect(list.status).toBe(200);
    expect(list.body.eventTypes.map((t: { name: string }) => t.name)).toEqual(['EndSong', 'PageView', 'UserCreate']);
    const own = await api('GET', '/v1/event-types', tokens.web as string);
    expect(own.body.eventTypes.map((t: { name: string }) => t.name)).toEqual(['PageView']);
    const one = await api('GET', '/v1/event-types/EndSong', tokens.admin as string);
    expect(one.body.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(one.body.history[0].action).toBe('create');
    const other = await api('GET', '/v1/event-types/EndSong', tokens.web as string);
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('forbidden');
    expect((await api('GET', '/v1/event-types/PageView', tokens.web as string)).status).toBe(200);
    expect((await api('GET', '/v1/event-types/Nope', tokens.web as string)).status).toBe(404);
  });

  it('registers a type for its owner only, and the ingress accepts it at once', async () => {
    const def = { name: 'Search', owner: 'search', tier: 'normal', schema: searchV1 };
    const other = await api('POST', '/v1/event-types', tokens.web as string, def);
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('forbidden');
    const bad = await api('POST', '/v1/event-types', tokens.search as string, { ...def, tier: 'urgent' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/tier must be one of high, normal, low/);
    const created = await api('POST', '/v1/event-types', tokens.search as string, def);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Search', owner: 'search', status: 'active' });
    expect((await sendEvent('Search', 1, { query: 'jazz' })).accepted).toBe(1);
    const again = await api('POST', '/v1/event-types', tokens.admin as string, def);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('type_exists');
  });

  it('refuses an incompatible version with the field and rule, and accepts a compatible one', async () => {
    const incompatible = await api('POST', '/v1/event-types/Search/versions', tokens.search as string, {
      schema: { ...searchV1, fields: [...searchV1.fields, { name: 'page', type: 'int' }] },
    });
    expect(incompatible.status).toBe(422);
    expect(incompatible.body.error.code).toBe('schema_incompatible');
    expect(incompatible.body.error.refusals).toEqual([
      expect.objectContaining({ path: 'page', rule: 'field_without_default' }),
    ]);
    const v2 = { ...searchV1, fields: [...searchV1.fields, { name: 'page', type: 'int', default: 1 }] };
    expect((await api('POST', '/v1/event-types/Search/versions', tokens.web as string, { schema: v2 })).status).toBe(
      403,
    );
    const ok = await api('POST', '/v1/event-types/Search/versions', tokens.search as string, { schema: v2 });
    expect(ok.status).toBe(201);
    expect(ok.body.versions).toHaveLength(2);
    expect((await sendEvent('Search', 2, { query: 'jazz', page: 3 })).accepted).toBe(1);
  });

  it('lets an admin change any type, and an owner retire its own', async () => {
    const v3 = {
      ...searchV1,
      fields: [
        ...searchV1.fields,
        { name: 'page', type: 'int', default: 1 },
        { name: 'lang', type: ['null', 'string'], default: null },
      ],
    };
    expect((await api('POST', '/v1/event-types/Search/versions', tokens.admin as string, { schema: v3 })).status).toBe(
      201,
    );
    expect((await api('POST', '/v1/event-types/Search/retire', tokens.web as string)).status).toBe(403);
    const retired = await api('POST', '/v1/event-types/Search/retire', tokens.search as string);
    expect(retired.status).toBe(202);
    expect(retired.body.status).toBe('retiring');
    expect((await sendEvent('Search', 1, { query: 'x' })).rejected[0]?.code).toBe('retired_type');
    const late = await api('POST', '/v1/event-types/Search/versions', tokens.search as string, { schema: v3 });
    expect(late.body.error.code).toBe('type_not_active');
  });
});

describe('registry API: what the pipeline can carry, and compatibility modes', () => {
  const record = (name: string, fields: unknown[]) => ({ type: 'record', name, fields });
  const register = (body: object) =>
    api('POST', '/v1/event-types', tokens.admin as string, { owner: 'ops', tier: 'normal', ...body });

  it('refuses a recursive type at registration, naming the rule and the field', async () => {
    const res = await register({
      name: 'Chain',
      schema: record('Chain', [
        { name: 'value', type: 'int' },
        { name: 'next', type: ['null', 'Chain'], default: null },
      ]),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('event_type_invalid');
    expect(res.body.error.refusals).toEqual([
      {
        path: 'next',
        rule: 'recursive_type',
        message: expect.stringMatching(/^v1: next: record Chain contains itself/),
      },
    ]);
    expect((await api('GET', '/v1/event-types/Chain', tokens.admin as string)).status).toBe(404);
  });

  it('refuses a name that differs from a registered one only by case', async () => {
    const res = await register({ name: 'endSong', schema: record('endSong', []) });
    expect(res.status).toBe(400);
    expect(res.body.error.refusals).toEqual([
      expect.objectContaining({ path: 'name', rule: 'name_conflict', message: expect.stringMatching(/EndSong/) }),
    ]);
  });

  it('refuses a version with colliding columns or nesting too deep', async () => {
    expect((await register({ name: 'Deep', schema: record('Deep', [{ name: 'a', type: 'int' }]) })).status).toBe(201);
    const clash = await api('POST', '/v1/event-types/Deep/versions', tokens.admin as string, {
      schema: record('Deep', [
        { name: 'a', type: 'int' },
        { name: 'Date', type: 'string', default: '' },
      ]),
    });
    expect(clash.status).toBe(400);
    expect(clash.body.error.refusals).toEqual([expect.objectContaining({ path: 'Date', rule: 'column_conflict' })]);
    let deep: unknown = 'int';
    for (let i = 0; i < 16; i++) deep = record(`L${i}`, [{ name: `l${i}`, type: deep }]);
    const tooDeep = await api('POST', '/v1/event-types/Deep/versions', tokens.admin as string, {
      schema: record('Deep', [
        { name: 'a', type: 'int' },
        { name: 'deep', type: ['null', deep], default: null },
      ]),
    });
    expect(tooDeep.status).toBe(400);
    expect(tooDeep.body.error.refusals).toEqual([expect.objectContaining({ rule: 'nesting_too_deep' })]);
  });

  it('refuses a default the ingress could not store (a long below -2^52, a __proto__ key)', async () => {
    const res = await register({
      name: 'Defaults',
      schema: record('Defaults', [{ name: 'offset', type: 'long', default: -(2 ** 52) - 1 }]),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.refusals).toEqual([expect.objectContaining({ path: 'offset', rule: 'unstorable_default' })]);
    const raw = await fetch(`${p.url}/v1/event-types`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json' },
      body: '{"name":"Protos","owner":"ops","tier":"normal","schema":{"type":"record","name":"Protos","fields":[{"name":"m","type":{"type":"map","values":"int"},"default":{"__proto__":1}}]}}',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { refusals: { rule: string }[] } }).error.refusals).toEqual([
      expect.objectContaining({ rule: 'unstorable_default' }),
    ]);
  });

  it("stores a type's compatibility mode and checks new versions by it, each refusal once", async () => {
    const bad = await register({ name: 'Modes', compatibility: 'sideways', schema: record('Modes', []) });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/compatibility must be one of backward_transitive, backward, forward/);
    const v1 = record('Modes', [
      { name: 'userId', type: 'string' },
      { name: 'ms', type: 'int' },
    ]);
    const created = await register({ name: 'Modes', compatibility: 'full_transitive', schema: v1 });
    expect(created.status).toBe(201);
    expect(created.body.compatibility).toBe('full_transitive');
    const v2 = record('Modes', [
      { name: 'userId', type: 'string' },
      { name: 'ms', type: 'int' },
      { name: 'offline', type: 'boolean', default: false },
    ]);
    expect((await api('POST', '/v1/event-types/Modes/versions', tokens.admin as string, { schema: v2 })).status).toBe(
      201,
    );
    // userId renamed to country without a default, ms widened: refused both ways
    const v3 = record('Modes', [
      { name: 'ms', type: 'long' },
      { name: 'offline', type: 'boolean', default: false },
      { name: 'country', type: 'string' },
    ]);
    const refused = await api('POST', '/v1/event-types/Modes/versions', tokens.admin as string, { schema: v3 });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('schema_incompatible');
    expect(refused.body.error.refusals).toEqual([
      {
        path: 'country',
        rule: 'field_without_default',
        message: expect.stringMatching(/^v3 cannot read v1, v2 data: country: new field without a default/),
      },
      {
        path: 'userId',
        rule: 'field_removed',
        message: expect.stringMatching(/^v1, v2 cannot read v3 data: userId: removed/),
      },
      { path: 'ms', rule: 'type_changed', message: expect.stringMatching(/^v1, v2 cannot read v3 data: ms: long/) },
    ]);
    const list = await api('GET', '/v1/event-types', tokens.admin as string);
    expect(list.body.eventTypes.find((t: { name: string }) => t.name === 'Modes').compatibility).toBe(
      'full_transitive',
    );
    expect(list.body.eventTypes.find((t: { name: string }) => t.name === 'EndSong').compatibility).toBe(
      'backward_transitive',
    );
  });

  it('refuses a version that is an existing one again, defaults included', async () => {
    const v1 = record('Modes', [
      { name: 'userId', type: 'string', doc: 'other words' },
      { name: 'ms', type: 'int' },
    ]);
    const again = await api('POST', '/v1/event-types/Modes/versions', tokens.admin as string, { schema: v1 });
    expect(again.status).toBe(422);
    expect(again.body.error.refusals).toEqual([expect.objectContaining({ rule: 'duplicate_version' })]);
  });
});
