/**
 * Producer write keys on `POST /v1/events`: 401 without a valid key, types outside the key's scope
 * rejected per event, the producer's name on every published event, rate limits with Retry-After,
 * revocation within the recheck bound, and CORS per key.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveredMessage } from '../../core/ports/bus.js';
import { createToken } from '../../orchestrator/tokens.js';
import { createProducerKey } from '../../services/ingress/producer-keys.js';
import { adminHeaders, endSong, type Harness, pageView, startHarness } from '../support/ingress-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    ingress: { auth: true, keyRecheckRealMs: 200, keyRatePerSec: 0, rateLimitHoldRealMs: 1000, rateLimitHoldPerKey: 2 },
  });
});
afterAll(async () => {
  await h.close();
});

async function key(spec: Partial<Parameters<typeof createProducerKey>[1]> = {}): Promise<{ key: string; id: string }> {
  const { key, record } = await createProducerKey(
    h.store,
    { producer: 'web', types: null, createdBy: 'test', ...spec },
    Date.now(),
  );
  return { key, id: record.id };
}

async function post(
  events: unknown[],
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${h.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ events }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
let n = 0;
const ev = (type = 'EndSong') => ({ type, id: `auth-${n++}`, payload: type === 'EndSong' ? endSong() : pageView() });

async function until(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

describe('producer keys', () => {
  it('answers 401 unauthorized without a key, with a malformed, unknown, expired or revoked key', async () => {
    const expired = await key({ expiresAt: Date.now() - 1 });
    const revoked = await key();
    await h.store.revokeProducerKey(revoked.id, Date.now());
    const good = await key();
    const wrongSecret = `${good.key.slice(0, 30)}${good.key.slice(30).split('').reverse().join('')}`;
    for (const [headers, reason] of [
      [{}, 'no Authorization header'],
      [{ authorization: 'Basic abc' }, 'not a producer key'],
      [bearer('hgk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'unknown key'],
      [bearer(wrongSecret), 'unknown key'],
      [bearer(expired.key), 'the key has expired'],
      [bearer(revoked.key), 'the key was revoked'],
    ] as const) {
      const r = await post([ev()], headers);
      expect(r.status).toBe(401);
      expect(r.body.error).toMatchObject({ code: 'unauthorized', message: expect.stringContaining(reason) });
    }
    expect((await post([ev()], bearer(good.key))).status).toBe(200);
  });

  it('rejects events of types the key may not write (type_not_allowed) and accepts the rest of the batch', async () => {
    const k = await key({ types: ['PageView'] });
    const r = await post([ev('PageView'), ev('EndSong'), { type: 'Nope', id: 'x', payload: {} }], bearer(k.key));
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(r.body.rejected).toEqual([
      expect.objectContaining({ index: 1, code: 'type_not_allowed', path: 'type' }),
      expect.objectContaining({ index: 2, code: 'type_not_allowed', path: 'type' }),
    ]);
    // not dead-lettered into the area of a type the key may not write
    await h.ingress.deadLetters.flush();
    expect((await h.store.listDeadLetters('EndSong', 100)).filter((d) => d.code === 'type_not_allowed')).toEqual([]);
  });

  it("puts the key's producer on every published event", async () => {
    const k = await key({ producer: 'checkout-service', types: ['UserCreate', 'PageView'] });
    const sent = ev('PageView');
    expect((await post([sent], bearer(k.key))).body.accepted).toBe(1);
    const got: DeliveredMessage[] = [];
    await h.bus.createSubscription('auth.pv', 'hourglass.PageView').catch(() => undefined);
    // the subscription starts after what is in the topic: publish once more
    const again = ev('PageView');
    expect((await post([again], bearer(k.key))).body.accepted).toBe(1);
    const s = await h.bus.subscribe('auth.pv', (ms) => {
      for (const m of ms) {
        got.push(m);
        m.ack();
      }
    });
    await until(async () => got.some((m) => m.attributes.id === again.id), 5000);
    await s.close();
    expect(got.find((m) => m.attributes.id === again.id)?.attributes.producer).toBe('checkout-service');
  });

  it('answers 429 rate_limited with Retry-After over the key rate, accepting nothing of the request', async () => {
    const k = await key({ ratePerSec: 5, burst: 10 });
    const first = await post(
      Array.from({ length: 10 }, () => ev()),
      bearer(k.key),
    );
    expect(first.status).toBe(200);
    const over = await post(
      Array.from({ length: 10 }, () => ev()),
      bearer(k.key),
    );
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ code: 'rate_limited', retriable: true });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // another key is not affected
    const other = await key({ ratePerSec: 5, burst: 10 });
    expect(
      (
        await post(
          Array.from({ length: 10 }, () => ev()),
          bearer(other.key),
        )
      ).status,
    ).toBe(200);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/hourglass_ingress_rate_limited_total\{producer="web"\} [1-9]/);
  });

  it('refuses a key with no room for one event before reading the body; the connection stays usable', async () => {
    const k = await key({ ratePerSec: 1, burst: 5 });
    expect(
      (
        await post(
          Array.from({ length: 5 }, () => ev()),
          bearer(k.key),
        )
      ).status,
    ).toBe(200);
    // the bucket is empty: even a body that is not JSON is answered 429, not 400 (it was not parsed)
    const res = await fetch(`${h.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(k.key) },
      body: `{"events": [${'x'.repeat(200_000)}`,
    });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // another key right after on the same server: the unread body did not wedge anything
    expect((await post([ev()], bearer((await key()).key))).status).toBe(200);
  });

  it('holds a refusal over the rate, holding no in-flight bytes, without slowing another key; past the cap it answers at once and closes', async () => {
    const k = await key({ ratePerSec: 0.01, burst: 1 }); // one event, then none for 100 s
    expect((await post([ev()], bearer(k.key))).status).toBe(200);
    const raw = (signal?: AbortSignal) =>
      request(`${h.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(k.key) },
        body: JSON.stringify({ events: Array.from({ length: 50 }, () => ev()) }),
        signal,
      });
    const t0 = performance.now();
    const heldA = raw();
    const heldB = raw();
    await new Promise((r) => setTimeout(r, 100));
    // two are held (the cap): the third is answered at once, and its connection closed
    const third = await raw();
    expect(third.statusCode).toBe(429);
    expect(third.headers.connection).toBe('close');
    await third.body.text();
    expect(performance.now() - t0).toBeLessThan(500);
    // held requests hold none of the in-flight budget, and another key is answered at once
    const gauge = /hourglass_ingress_in_flight_bytes (\d+)/.exec(await (await fetch(`${h.url}/metrics`)).text());
    expect(Number(gauge?.[1])).toBe(0);
    const t1 = performance.now();
    expect((await post([ev()], bearer((await key()).key))).status).toBe(200);
    expect(performance.now() - t1).toBeLessThan(400);
    for (const res of await Promise.all([heldA, heldB])) {
      expect(res.statusCode).toBe(429);
      expect(res.headers.connection).not.toBe('close');
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // held half to one and a half times rateLimitHoldRealMs (jittered)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(500);
    // a client that gives up while held costs nothing: the server goes on
    const gone = new AbortController();
    const abandoned = raw(gone.signal).catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 50));
    gone.abort();
    expect(await abandoned).toBeInstanceOf(Error);
    await new Promise((r) => setTimeout(r, 1600)); // its hold has ended
    expect((await post([ev()], bearer((await key()).key))).status).toBe(200);
  });

  it('a revoked key stops working within the recheck bound', async () => {
    const k = await key();
    expect((await post([ev()], bearer(k.key))).status).toBe(200);
    await h.store.revokeProducerKey(k.id, Date.now());
    const revokedAt = Date.now();
    await until(async () => (await post([ev()], bearer(k.key))).status === 401, 3000);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    expect((await post([ev()], bearer(k.key))).status).toBe(401);
  });

  it('CORS: answers the preflight for a listed origin, refuses other origins', async () => {
    const k = await key({ origins: ['https://shop.example.com'] });
    const pre = await fetch(`${h.url}/v1/events`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://shop.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
    const ok = await post([ev()], { ...bearer(k.key), origin: 'https://shop.example.com' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
    const evil = await post([ev()], { ...bearer(k.key), origin: 'https://evil.example.net' });
    expect(evil.status).toBe(403);
    expect(evil.body.error).toMatchObject({ code: 'origin_not_allowed' });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const prefEvil = await fetch(`${h.url}/v1/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' },
    });
    expect(prefEvil.status).toBe(403);
    expect(prefEvil.headers.get('access-control-allow-origin')).toBeNull();
    // a key without origins is not for browsers
    const server = await key();
    expect((await post([ev()], { ...bearer(server.key), origin: 'https://shop.example.com' })).status).toBe(403);
  });
});

describe('reads are not public', () => {
  it('dead letters need a registry token; an owner reads only its own types', async () => {
    const pvOwner = h.catalog.get('PageView')?.owner as string;
    const own = `Bearer ${(await createToken(h.store, pvOwner, 'owner', 0)).token}`;
    const read = (url: string, authorization?: string) =>
      h.ingress.app.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} });
    expect((await read('/v1/dead-letters/PageView')).statusCode).toBe(401);
    expect((await read('/v1/dead-letters/PageView', own)).statusCode).toBe(200);
    const other = await read('/v1/dead-letters/EndSong', own);
    expect(other.statusCode).toBe(403);
    expect(other.json().error.code).toBe('forbidden');
    // the bucket of unknown types is for admins
    expect((await read('/v1/dead-letters/_unknown', own)).statusCode).toBe(403);
    expect((await read('/v1/dead-letters/_unknown', (await adminHeaders(h)).authorization)).statusCode).toBe(200);
    // health, readiness and metrics stay open
    for (const url of ['/healthz', '/readyz', '/metrics']) expect((await read(url)).statusCode, url).toBe(200);
  });

  it('ingress.adminPort moves everything but POST /v1/events to a second listener', async () => {
    const split = await startHarness({ ingress: { auth: true, adminPort: 0 } });
    try {
      const admin = split.ingress.adminUrl() as string;
      expect(admin).not.toBe(split.url);
      const { key } = await createProducerKey(
        split.store,
        { producer: 'web', types: null, createdBy: 't' },
        Date.now(),
      );
      const posted = await fetch(`${split.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ events: [ev()] }),
      });
      expect(posted.status).toBe(200);
      const auth = await adminHeaders(split);
      for (const path of ['/metrics', '/v1/dead-letters/EndSong']) {
        expect((await fetch(`${split.url}${path}`, { headers: auth })).status, path).toBe(404);
        expect((await fetch(`${admin}${path}`, { headers: auth })).status, path).toBe(200);
      }
      for (const path of ['/healthz', '/readyz']) {
        expect((await fetch(`${split.url}${path}`)).status, path).toBe(200);
        expect((await fetch(`${admin}${path}`)).status, path).toBe(200);
      }
      expect((await fetch(`${admin}/v1/events`, { method: 'POST' })).status).toBe(404);
    } finally {
      await split.close();
    }
  });
});
