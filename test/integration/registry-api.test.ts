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

async function api(method: string, path: string, token: string | null, body?: unknown) {
  const res = await fetch(`${p.url}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes, each pinned by the assertions
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

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
