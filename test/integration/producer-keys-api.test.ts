/**
 * Producer keys through the registry API of a real pipeline (embedded bus, SQLite, no ETL, auth
 * on): admins create keys for any types, owners for their own registered types only; lists and
 * revocations are scoped the same way; a key made here writes events at once and stops within the
 * recheck bound once revoked.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pipeline, startPipeline } from '../../cli/pipeline.js';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { createToken } from '../../orchestrator/tokens.js';
import { endSong, pageView, SCHEMAS_DIR } from '../support/ingress-harness.js';
import { callJson } from '../support/json-api.js';

let dir: string;
let p: Pipeline;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hourglass-keys-api-'));
  const config = loadConfig({
    overrides: {
      dataDir: dir,
      schemasDir: SCHEMAS_DIR,
      'ingress.port': 0,
      'ingress.keyRecheckRealMs': 200,
      logLevel: 'silent',
    },
  });
  p = await startPipeline(config, silentLogger(), { etl: false });
  for (const [name, owner, role] of [
    ['web', 'web', 'owner'],
    ['playback', 'playback', 'owner'],
    ['admin', 'ops', 'admin'],
  ] as const) {
    tokens[name] = (await createToken(p.store, owner, role, 1)).token;
  }
});
afterAll(async () => {
  await p.close();
  await rm(dir, { recursive: true, force: true });
});

const api = (method: string, path: string, token: string | null, body?: unknown) =>
  callJson(`${p.url}${path}`, method, token, body);

let n = 0;
const send = (key: string, type: 'EndSong' | 'PageView') =>
  api('POST', '/v1/events', key, {
    events: [{ type, id: `k-${n++}`, payload: type === 'EndSong' ? endSong() : pageView() }],
  });

describe('producer keys through the registry API', () => {
  it('needs a registry token: a producer key or nothing gets 401', async () => {
    expect((await api('GET', '/v1/producer-keys', null)).status).toBe(401);
    const made = await api('POST', '/v1/producer-keys', tokens.admin as string, { producer: 'x', allTypes: true });
    expect((await api('GET', '/v1/producer-keys', made.body.key)).status).toBe(401);
    expect((await api('POST', '/v1/producer-keys', null, { producer: 'x', allTypes: true })).status).toBe(401);
  });

  it('an owner creates a key for its own types; the key writes them at once and nothing else', async () => {
    const made = await api('POST', '/v1/producer-keys', tokens.web as string, {
      producer: 'web-frontend',
      types: ['PageView'],
      rate: 500,
      origins: ['https://app.example.com'],
      expires: '30d',
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      producer: 'web-frontend',
      types: ['PageView'],
      ratePerSec: 500,
      origins: ['https://app.example.com'],
      status: 'active',
      createdBy: 'token owner web',
    });
    expect(made.body.key).toMatch(/^hgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(made.body.key.startsWith(`hgk_${made.body.id}_`)).toBe(true);
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect((await send(made.body.key, 'PageView')).body).toMatchObject({ accepted: 1 });
    const other = await send(made.body.key, 'EndSong');
    expect(other.body.rejected[0]).toMatchObject({ code: 'type_not_allowed' });
  });

  it("refuses an owner a key for another team's type, an unregistered type or every type", async () => {
    const foreign = await api('POST', '/v1/producer-keys', tokens.web as string, {
      producer: 'w',
      types: ['PageView', 'EndSong'],
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toMatchObject({ code: 'forbidden', message: expect.stringContaining('EndSong') });
    const missing = await api('POST', '/v1/producer-keys', tokens.web as string, { producer: 'w', types: ['Nope'] });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('type_not_found');
    const all = await api('POST', '/v1/producer-keys', tokens.web as string, { producer: 'w', allTypes: true });
    expect(all.status).toBe(403);
    expect(all.body.error.message).toContain('only an admin token may');
  });

  it('answers 400 producer_key_invalid naming the rule for a bad body', async () => {
    for (const [body, rule] of [
      [[], 'JSON object'],
      [{ types: ['PageView'] }, 'producer'],
      [{ producer: 'bad name', types: ['PageView'] }, 'producer must be'],
      [{ producer: 'w' }, 'either types'],
      [{ producer: 'w', types: ['PageView'], allTypes: true }, 'either types'],
      [{ producer: 'w', types: 'PageView' }, 'types must be a list'],
      [{ producer: 'w', types: [] }, 'at least one type'],
      [{ producer: 'w', types: ['PageView'], rate: -1 }, 'rate must be'],
      [{ producer: 'w', types: ['PageView'], burst: '9' }, 'burst must be'],
      [{ producer: 'w', types: ['PageView'], origins: ['ftp://x'] }, 'not an origin'],
      [{ producer: 'w', types: ['PageView'], expires: 'soon' }, 'expires must be'],
      [{ producer: 'w', types: ['PageView'], secret: 'mine' }, 'unknown field "secret"'],
    ] as const) {
      const r = await api('POST', '/v1/producer-keys', tokens.web as string, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'producer_key_invalid', message: expect.stringContaining(rule) });
    }
  });

  it('lists keys without secrets: an admin every key, an owner those of its own types only', async () => {
    const mine = await api('POST', '/v1/producer-keys', tokens.playback as string, {
      producer: 'player',
      types: ['EndSong'],
    });
    const admins = await api('GET', '/v1/producer-keys', tokens.admin as string);
    expect(admins.body.keys.map((k: { id: string }) => k.id)).toContain(mine.body.id);
    expect(JSON.stringify(admins.body)).not.toMatch(/hgk_|hash/);
    const web = await api('GET', '/v1/producer-keys', tokens.web as string);
    expect(web.body.keys.length).toBeGreaterThan(0);
    for (const k of web.body.keys) expect(k.types).toEqual(['PageView']);
    const playback = await api('GET', '/v1/producer-keys', tokens.playback as string);
    expect(playback.body.keys.map((k: { id: string }) => k.id)).toEqual([mine.body.id]);
  });

  it("revokes: an owner its own keys (another team's is not found), an admin any; the key stops within the bound", async () => {
    const key = (
      await api('POST', '/v1/producer-keys', tokens.playback as string, { producer: 'p', types: ['EndSong'] })
    ).body;
    expect((await send(key.key, 'EndSong')).status).toBe(200);
    const foreign = await api('POST', `/v1/producer-keys/${key.id}/revoke`, tokens.web as string);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('key_not_found');
    expect((await api('POST', '/v1/producer-keys/000000000000/revoke', tokens.admin as string)).status).toBe(404);
    const revoked = await api('POST', `/v1/producer-keys/${key.id}/revoke`, tokens.playback as string);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: key.id, status: 'revoked' });
    const deadline = Date.now() + 2000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await send(key.key, 'EndSong')).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(401);

    const adminMade = await api('POST', '/v1/producer-keys', tokens.admin as string, {
      producer: 'any',
      allTypes: true,
    });
    expect(adminMade.body.types).toBeNull();
    expect((await api('POST', `/v1/producer-keys/${adminMade.body.id}/revoke`, tokens.web as string)).status).toBe(404);
    expect((await api('POST', `/v1/producer-keys/${adminMade.body.id}/revoke`, tokens.admin as string)).status).toBe(
      200,
    );
  });
});
