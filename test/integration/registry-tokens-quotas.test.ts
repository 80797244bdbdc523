/**
 * Registry tokens with a scope, an expiry and a recorded last use, and the rules of a shared
 * deployment (a quota of active types per owner, tier high for admins only), on the registry API
 * of a real pipeline (embedded bus, SQLite, no ETL); then `hourglass tokens` in-process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { type Pipeline, startPipeline } from '../../cli/pipeline.js';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { createToken } from '../../orchestrator/tokens.js';
import { captureIo } from '../support/cli-io.js';
import { SCHEMAS_DIR } from '../support/ingress-harness.js';

let dir: string;
let p: Pipeline;
const tokens: Record<string, { token: string; id: string }> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hourglass-registry-tokens-'));
  const config = loadConfig({
    overrides: {
      dataDir: dir,
      schemasDir: SCHEMAS_DIR,
      'ingress.port': 0,
      'ingress.auth': false,
      'registry.maxActiveTypesPerOwner': 2,
      logLevel: 'silent',
    },
  });
  p = await startPipeline(config, silentLogger(), { etl: false });
  const now = Date.now();
  for (const [name, owner, role, options] of [
    ['search', 'search', 'owner', {}],
    ['admin', 'ops', 'admin', {}],
    ['webReader', 'web', 'owner', { scope: 'read' }],
    ['adminReader', 'ops', 'admin', { scope: 'read' }],
    ['expired', 'search', 'owner', { expiresAt: now - 1 }],
    ['expiring', 'search', 'owner', { expiresAt: now + 3_600_000 }],
    ['fresh', 'web', 'owner', {}],
  ] as const) {
    tokens[name] = await createToken(p.store, owner, role, 1, options);
  }
});
afterAll(async () => {
  await p.close();
  await rm(dir, { recursive: true, force: true });
});

const token = (name: string): string => (tokens[name] as { token: string }).token;

async function api(method: string, path: string, bearer: string, body?: unknown) {
  const res = await fetch(`${p.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes, each pinned by the assertions
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const typeBody = (name: string, owner: string, tier = 'normal') => ({
  name,
  owner,
  tier,
  schema: { type: 'record', name, fields: [{ name: 'query', type: 'string' }] },
});

describe('read-only tokens', () => {
  it('read every GET route their role may read', async () => {
    const own = await api('GET', '/v1/event-types', token('webReader'));
    expect(own.status).toBe(200);
    expect(own.body.eventTypes.map((t: { name: string }) => t.name)).toEqual(['PageView']);
    expect((await api('GET', '/v1/event-types/PageView', token('webReader'))).status).toBe(200);
    expect((await api('GET', '/v1/event-types/EndSong', token('webReader'))).status).toBe(403);
    const all = await api('GET', '/v1/event-types', token('adminReader'));
    expect(all.body.eventTypes).toHaveLength(3);
    for (const path of ['/v1/dashboard', '/v1/alerts', '/v1/dead-letters/PageView', '/v1/producer-keys']) {
      expect((await api('GET', path, token('webReader'))).status, path).toBe(200);
    }
  });

  it('get 403 forbidden on every change, naming the rule', async () => {
    const v2 = { schema: { type: 'record', name: 'PageView', fields: [] } };
    for (const [path, body] of [
      ['/v1/event-types', typeBody('Reads', 'web')],
      ['/v1/event-types/PageView/versions', v2],
      ['/v1/event-types/PageView/retire', undefined],
      ['/v1/producer-keys', { producer: 'web-app', types: ['PageView'] }],
      ['/v1/producer-keys/000000000000/revoke', undefined],
    ] as const) {
      for (const reader of ['webReader', 'adminReader']) {
        const r = await api('POST', path, token(reader), body);
        expect(r.status, `${reader} ${path}`).toBe(403);
        expect(r.body.error.code).toBe('forbidden');
        expect(r.body.error.message).toMatch(/is read-only \(scope read\): it may only read/);
      }
    }
    expect((await p.store.getType('PageView'))?.status).toBe('active');
    expect(await p.store.getType('Reads')).toBeNull();
  });
});

describe('token expiry and last use', () => {
  it('answers 401 "the token has expired" once its time has passed', async () => {
    const r = await api('GET', '/v1/event-types', token('expired'));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('unauthorized');
    expect(r.body.error.message).toMatch(/the token has expired/);
    expect((await api('POST', '/v1/event-types', token('expired'), typeBody('Late', 'search'))).status).toBe(401);
    expect((await api('GET', '/v1/event-types', token('expiring'))).status).toBe(200);
  });

  it('records the last use, at most once a minute', async () => {
    const id = (tokens.fresh as { id: string }).id;
    expect((await p.store.getToken(id))?.lastUsedAt).toBeNull();
    const before = Date.now();
    expect((await api('GET', '/v1/event-types', token('fresh'))).status).toBe(200);
    const first = (await p.store.getToken(id))?.lastUsedAt as number;
    expect(first).toBeGreaterThanOrEqual(before);
    expect(first).toBeLessThanOrEqual(Date.now());
    expect((await api('GET', '/v1/event-types/PageView', token('fresh'))).status).toBe(200);
    expect((await p.store.getToken(id))?.lastUsedAt).toBe(first);
  });
});

describe('tier high and the quota of active types', () => {
  it('refuses tier high from an owner token, naming the rule; an admin may set it', async () => {
    const r = await api('POST', '/v1/event-types', token('search'), typeBody('Pager', 'search', 'high'));
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
    expect(r.body.error.message).toMatch(/tier_high_needs_admin/);
    expect(await p.store.getType('Pager')).toBeNull();
    const admin = await api('POST', '/v1/event-types', token('admin'), typeBody('Pager', 'paging', 'high'));
    expect(admin.status).toBe(201);
    expect(admin.body.tier).toBe('high');
  });

  it('refuses registering past the owner quota with quota_exceeded; admins may exceed it; retiring frees a place', async () => {
    expect((await api('POST', '/v1/event-types', token('search'), typeBody('SearchA', 'search'))).status).toBe(201);
    expect((await api('POST', '/v1/event-types', token('search'), typeBody('SearchB', 'search'))).status).toBe(201);
    const over = await api('POST', '/v1/event-types', token('search'), typeBody('SearchC', 'search'));
    expect(over.status).toBe(403);
    expect(over.body.error).toMatchObject({ code: 'quota_exceeded', retriable: false });
    expect(over.body.error.message).toMatch(/owner search .* has 2 active event types, the limit is 2/);
    expect(await p.store.getType('SearchC')).toBeNull();
    // an admin may exceed it
    expect((await api('POST', '/v1/event-types', token('admin'), typeBody('SearchC', 'search'))).status).toBe(201);
    // 3 active: one retired still leaves the owner at its limit, two free a place
    expect((await api('POST', '/v1/event-types/SearchA/retire', token('search'))).status).toBe(202);
    expect((await api('POST', '/v1/event-types', token('search'), typeBody('SearchD', 'search'))).status).toBe(403);
    expect((await api('POST', '/v1/event-types/SearchB/retire', token('search'))).status).toBe(202);
    expect((await api('POST', '/v1/event-types', token('search'), typeBody('SearchD', 'search'))).status).toBe(201);
    // another owner is not affected
    expect((await api('POST', '/v1/event-types', token('fresh'), typeBody('WebA', 'web'))).status).toBe(201);
  });
});

describe('hourglass tokens', () => {
  async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const c = captureIo();
    const code = await main(argv, c.io);
    return { code, out: c.out(), err: c.err() };
  }

  it('creates read-only and expiring tokens, and lists scope, status, expiry and last use', async () => {
    const cliDir = await mkdtemp(join(tmpdir(), 'hourglass-tokens-cli-'));
    try {
      const flags = ['--data-dir', cliDir];
      const reader = await run('tokens', 'create', '--owner', 'web', '--read-only', '--expires', '90d', ...flags);
      expect(reader.code).toBe(0);
      expect(reader.out).toMatch(/^hgt_[0-9a-f]{12}_/);
      expect(reader.err).toMatch(/\(read-only, expires \d{4}-/);
      expect((await run('tokens', 'create', '--owner', 'web', ...flags)).code).toBe(0);
      const bad = await run('tokens', 'create', '--owner', 'web', '--expires', 'soon', ...flags);
      expect(bad.code).toBe(2);
      expect(bad.err).toMatch(/--expires takes a duration/);
      const listed = JSON.parse((await run('tokens', 'list', '--format', 'json', ...flags)).out) as {
        owner: string;
        scope: string;
        status: string;
        expiresAt: string | null;
        lastUsedAt: string | null;
      }[];
      expect(listed).toHaveLength(2);
      const ro = listed.find((t) => t.scope === 'read');
      expect(ro).toMatchObject({ owner: 'web', status: 'active', lastUsedAt: null });
      const days = (Date.parse(ro?.expiresAt as string) - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(89.9);
      expect(days).toBeLessThanOrEqual(90);
      expect(listed.find((t) => t.scope === 'write')).toMatchObject({ expiresAt: null, status: 'active' });
      const table = await run('tokens', 'list', ...flags);
      expect(table.out).toMatch(/scope\s+status\s+createdAt\s+expiresAt\s+lastUsedAt/);
    } finally {
      await rm(cliDir, { recursive: true, force: true });
    }
  });
});
