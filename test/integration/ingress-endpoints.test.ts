/** Health, readiness, metrics, overload, and ledger sealing across real (scaled) hour boundaries. */
import { afterEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../core/clock.js';
import { HOUR_MS } from '../../core/hours.js';
import { endSong, type Harness, startHarness } from '../support/ingress-harness.js';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const batch = (prefix: string, n: number) =>
  JSON.stringify({
    events: Array.from({ length: n }, (_, i) => ({ type: 'EndSong', id: `${prefix}-${i}`, payload: endSong() })),
  });

async function post(url: string, body: string): Promise<Response> {
  return fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

describe('operational endpoints', () => {
  it('healthz, readyz and Prometheus metrics reflect traffic', async () => {
    h = await startHarness();
    expect(await (await fetch(`${h.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      ready: true,
      checks: { accepting: true, bus: true, stateStore: true, eventTypes: true, inFlightBudget: true },
    });
    await post(h.url, batch('m', 7));
    await post(h.url, JSON.stringify({ events: [{ type: 'Nope', id: 'x', payload: {} }] }));
    const text = await (await fetch(`${h.url}/metrics`)).text();
    expect(text).toContain('hourglass_ingress_events_accepted_total{type="EndSong"} 7');
    expect(text).toContain('hourglass_ingress_events_rejected_total{type="_unknown",code="unknown_type"} 1');
    expect(text).toMatch(/hourglass_ingress_publish_duration_seconds_count\{type="EndSong"\} 1/);
    expect(text).toContain('hourglass_ingress_in_flight_bytes 0');
    expect(text).toMatch(/hourglass_ingress_requests_total\{status="200"\} 2/);
  });

  it('answers 429 with Retry-After when too many bytes are in flight, and recovers', async () => {
    h = await startHarness({ ingress: { maxInFlightBytes: 64 * 1024 } });
    const body = batch('o', 200); // ~60 KB each
    const url = h.url;
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(url, body)));
    const statuses = answers.map((r) => r.status);
    expect(statuses).toContain(429);
    expect(statuses).toContain(200);
    const limited = answers.find((r) => r.status === 429) as Response;
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('overloaded');
    expect((await post(url, body)).status).toBe(200);
  });

  it('readiness fails and new batches get 503 while shutting down', async () => {
    h = await startHarness();
    const app = h.ingress.app;
    const closing = h.ingress.close();
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    await closing;
  });
});

describe('ledger sealing at hour boundaries (time ×3600: an hour per second)', () => {
  it('seals each hour after the grace period, with the counts published into it', async () => {
    const clock = new ScaledClock(3600, Date.UTC(2026, 10, 22, 9, 59, 0));
    h = await startHarness({ clock, ingress: { ledgerGraceMs: 60_000 } });
    const firstHour = Math.floor(clock.now() / HOUR_MS) * HOUR_MS;
    let sent = 0;
    const deadline = Date.now() + 2600;
    while (Date.now() < deadline) {
      const r = await post(h.url, batch(`s${sent}`, 10));
      expect(r.status).toBe(200);
      sent += 10;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 1500));
    const ledgers = await h.store.listLedgers({ type: 'EndSong', instanceId: h.ingress.instanceId });
    const sealed = ledgers.filter((l) => l.sealed);
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    expect(sealed.some((l) => l.hour === firstHour)).toBe(true);
    // every published event is in exactly one hour's ledger; sequence ranges do not overlap
    expect(ledgers.reduce((n, l) => n + l.count, 0)).toBe(sent);
    const all = ledgers.flatMap((l) => l.ranges).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < all.length; i++)
      expect((all[i] as [number, number])[0]).toBe((all[i - 1] as [number, number])[1] + 1);
  });
});
