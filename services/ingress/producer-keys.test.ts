import { describe, expect, it } from 'vitest';
import type { ProducerKey, StateStore } from '../../core/ports/state-store.js';
import { createProducerKey, keySpecProblem, normalizeOrigin, ProducerKeyCache, TokenBucket } from './producer-keys.js';

/** Just the key methods of a state store, counting reads. */
function keyStore(): { store: StateStore; keys: Map<string, ProducerKey>; reads: () => number } {
  const keys = new Map<string, ProducerKey>();
  let reads = 0;
  const store = {
    async addProducerKey(k: ProducerKey) {
      keys.set(k.id, k);
    },
    async getProducerKey(id: string) {
      reads++;
      return keys.get(id) ?? null;
    },
    async listProducerKeys() {
      reads++;
      return [...keys.values()];
    },
  } as unknown as StateStore;
  return { store, keys, reads: () => reads };
}

describe('TokenBucket', () => {
  it('lets a burst through, then the rate, and says how long to wait', () => {
    const b = new TokenBucket(10, 20, 0);
    expect(b.take(20, 0)).toBe(0);
    expect(b.take(5, 0)).toBe(1);
    expect(b.take(5, 500)).toBe(0); // 5 tokens back after 0.5 s
    expect(b.take(10, 500)).toBe(1);
    expect(b.take(30, 10_000)).toBe(0); // larger than the burst: passes on a full bucket, in debt
    expect(b.take(1, 10_000)).toBe(2); // 11 tokens to pay back before one is there
    expect(b.take(1, 11_100)).toBe(0);
  });
  it('lets a request larger than what is left pass whole; the debt holds the rate over time', () => {
    const b = new TokenBucket(100, 200, 0);
    let passed = 0;
    // 10 s of requests of 50 events every 10 ms (5,000 events/s offered, 50 × the rate)
    for (let t = 0; t <= 10_000; t += 10) if (b.take(50, t) === 0) passed += 50;
    expect(passed).toBeGreaterThanOrEqual(100 * 10 + 200 - 50);
    expect(passed).toBeLessThanOrEqual(100 * 10 + 200 + 50);
  });
  it('rate 0 is unlimited', () => {
    const b = new TokenBucket(0, 1, 0);
    for (let i = 0; i < 100; i++) expect(b.take(1000, 0)).toBe(0);
    expect(b.waitForOne(0)).toBe(0);
  });
  it('says whether a request would pass before its size is known (refused before the body is read)', () => {
    const b = new TokenBucket(10, 20, 0);
    expect(b.waitForOne(0)).toBe(0);
    expect(b.take(20, 0)).toBe(0);
    expect(b.waitForOne(0)).toBe(1);
    expect(b.waitForOne(50)).toBe(1); // half an event back
    expect(b.waitForOne(100)).toBe(0); // one event back: a request passes, whatever its size
    expect(b.take(15, 100)).toBe(0);
    expect(b.waitForOne(100)).toBe(2); // 14 in debt: 1.5 s until a token is there
  });
});

describe('key specs', () => {
  it('refuses bad producers, types, limits and origins', () => {
    const ok = { producer: 'web', types: ['PageView'], createdBy: 't' };
    expect(keySpecProblem(ok)).toBeNull();
    expect(keySpecProblem({ ...ok, producer: 'a b' })).toMatch(/producer/);
    expect(keySpecProblem({ ...ok, types: [] })).toMatch(/at least one type/);
    expect(keySpecProblem({ ...ok, types: ['no-dash'] })).toMatch(/type name/);
    expect(keySpecProblem({ ...ok, ratePerSec: -1 })).toMatch(/rate/);
    expect(keySpecProblem({ ...ok, origins: ['https://x.example/path'] })).toMatch(/origin/);
    expect(normalizeOrigin('HTTPS://Shop.Example.com:443/')).toBe('https://shop.example.com');
    expect(normalizeOrigin('ftp://x')).toBeNull();
  });
});

describe('ProducerKeyCache', () => {
  it('checks a known key without the store until the recheck time, then sees a revocation', async () => {
    const { store, keys, reads } = keyStore();
    let now = 1_000_000;
    const { key, record } = await createProducerKey(store, { producer: 'web', types: null, createdBy: 't' }, now);
    const cache = new ProducerKeyCache(store, {
      defaultRatePerSec: 0,
      defaultBurst: 1,
      recheckMs: 1000,
      now: () => now,
    });
    const first = await cache.authenticate(`Bearer ${key}`);
    expect(first.producer).toBe('web');
    const before = reads();
    const again = cache.authenticate(`Bearer ${key}`);
    expect(again).not.toBeInstanceOf(Promise); // cached: synchronous, no store read
    expect(reads()).toBe(before);
    keys.set(record.id, { ...record, revokedAt: now });
    now += 999;
    expect(() => cache.authenticate(`Bearer ${key}`)).not.toThrow();
    now += 2;
    await expect(cache.authenticate(`Bearer ${key}`)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('refuses a wrong secret for a known id, and remembers a bounded number of unknown ids', async () => {
    const { store, reads } = keyStore();
    const { key } = await createProducerKey(store, { producer: 'web', types: null, createdBy: 't' }, 0);
    const cache = new ProducerKeyCache(store, { defaultRatePerSec: 0, defaultBurst: 1, maxUnknown: 10 });
    const wrong = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    await expect(cache.authenticate(`Bearer ${wrong}`)).rejects.toMatchObject({ code: 'unauthorized' });
    const unknown = (i: number) => `Bearer hgk_${i.toString(16).padStart(12, '0')}_${'A'.repeat(43)}`;
    await expect(cache.authenticate(unknown(1))).rejects.toThrow(/unknown key/);
    const r = reads();
    expect(() => cache.authenticate(unknown(1))).toThrow(/unknown key/); // remembered: no read
    expect(reads()).toBe(r);
    for (let i = 2; i < 50; i++) await expect(cache.authenticate(unknown(i))).rejects.toThrow();
    expect((cache as unknown as { entries: Map<string, unknown> }).entries.size).toBeLessThanOrEqual(12);
  });

  it('still refuses a wrong secret, and a revoked key, after the right secret was checked once', async () => {
    const { store, keys } = keyStore();
    let now = 1_000_000;
    const { key, record } = await createProducerKey(store, { producer: 'web', types: null, createdBy: 't' }, now);
    const cache = new ProducerKeyCache(store, { defaultRatePerSec: 0, defaultBurst: 1, now: () => now });
    expect((await cache.authenticate(`Bearer ${key}`)).producer).toBe('web');
    expect((cache.authenticate(`Bearer ${key}`) as { producer: string }).producer).toBe('web');
    for (const i of [key.length - 1, key.length - 20]) {
      const wrong = `${key.slice(0, i)}${key[i] === 'A' ? 'B' : 'A'}${key.slice(i + 1)}`;
      expect(() => cache.authenticate(`Bearer ${wrong}`)).toThrow(/unknown key/);
    }
    keys.set(record.id, { ...record, revokedAt: now });
    now += 1001;
    await expect(cache.authenticate(`Bearer ${key}`)).rejects.toThrow(/revoked/);
  });

  it('knows the origins of active keys only', async () => {
    const { store, keys } = keyStore();
    const { record } = await createProducerKey(
      store,
      { producer: 'web', types: null, origins: ['https://a.example'], createdBy: 't' },
      0,
    );
    await createProducerKey(
      store,
      { producer: 'old', types: null, origins: ['https://b.example'], expiresAt: 1, createdBy: 't' },
      0,
    );
    let now = 10;
    const cache = new ProducerKeyCache(store, { defaultRatePerSec: 0, defaultBurst: 1, now: () => now });
    expect(await cache.originKnown('https://a.example')).toBe(true);
    expect(await cache.originKnown('https://b.example')).toBe(false);
    keys.set(record.id, { ...record, revokedAt: 11 });
    now += 1000;
    expect(await cache.originKnown('https://a.example')).toBe(false);
  });
});
