import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StateStore } from '../core/ports/state-store.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { authenticate, createToken } from './tokens.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function store(): Promise<SqliteStateStore> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-tokens-'));
  const s = new SqliteStateStore(join(dir, 'state.sqlite'));
  cleanups.push(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });
  return s;
}

/** A request with the token, whose log keeps its warnings. */
function request(token: string) {
  const warnings: { obj: object; msg: string }[] = [];
  return {
    headers: { authorization: `Bearer ${token}` },
    log: { warn: (obj: object, msg: string) => warnings.push({ obj, msg }) },
    warnings,
  };
}

describe('authenticate', () => {
  it("records the token's last use", async () => {
    const s = await store();
    const { token, id } = await createToken(s, 'web', 'owner', Date.now());
    const r = request(token);
    expect((await authenticate(s, r, 'read')).id).toBe(id);
    expect((await s.getToken(id))?.lastUsedAt).not.toBeNull();
    expect(r.warnings).toEqual([]);
  });

  it('lets the request through when the last use cannot be recorded, and logs why, naming the token', async () => {
    const s = await store();
    const { token, id } = await createToken(s, 'web', 'owner', Date.now());
    const failure = new Error('disk I/O error');
    // the store, but its write of the last use fails
    const failing = new Proxy(s, {
      get: (target, key, receiver) =>
        key === 'touchToken' ? () => Promise.reject(failure) : Reflect.get(target, key, receiver),
    }) as StateStore;
    const r = request(token);
    expect((await authenticate(failing, r, 'write')).id).toBe(id);
    expect(r.warnings).toEqual([{ obj: { err: failure, token: id }, msg: "recording the token's last use failed" }]);
    expect((await s.getToken(id))?.lastUsedAt).toBeNull();
  });

  it('refuses a request without a token, an unknown one and a malformed one', async () => {
    const s = await store();
    const { id } = await createToken(s, 'web', 'owner', Date.now());
    const none = { headers: {}, log: { warn: () => undefined } };
    await expect(authenticate(s, none)).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(authenticate(s, request(`hgt_${id}_${'x'.repeat(43)}`))).rejects.toThrow(/unknown token/);
    await expect(authenticate(s, request('not-a-token'))).rejects.toThrow(/not a registry token/);
  });
});
