/**
 * The dashboard's JSON API on a real ingress + ETL (manual clock): the grid's cell states as an
 * hour goes from open to published, an hour's detail with its manifest, a type's panel with
 * reject reasons, alerts, and clear answers to bad parameters.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { HOUR_MS } from '../../core/hours.js';
import { registerDashboard } from '../../orchestrator/dashboard/dashboard-api.js';
import { createToken } from '../../orchestrator/tokens.js';
import { jsonApi } from '../../services/http/json-api.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong } from '../support/ingress-harness.js';

const H = Date.UTC(2026, 10, 22, 10);

interface Grid {
  hours: string[];
  types: {
    name: string;
    tier: string;
    cells: { hour: string; state: string; events: number; out: number | null; error: string | null }[];
  }[];
  legend: { state: string; description: string }[];
}

/** Headers of the tests' reads: an admin token (set once the store exists). */
const auth: Record<string, string> = {};

describe('dashboard API', () => {
  let x: EtlHarness | null = null;
  let app: FastifyInstance | null = null;
  afterEach(async () => {
    await app?.close();
    await x?.close();
    app = null;
    x = null;
  });

  async function start(clock: ManualClock) {
    x = await startEtlHarness({ clock });
    const settings = loadConfig({ overrides: { 'alerting.sloMs.high': 2 * HOUR_MS } }).alerting;
    app = Fastify();
    jsonApi(app, 1024 * 1024);
    auth.authorization = `Bearer ${(await createToken(x.store, 'ops', 'admin', 0)).token}`;
    registerDashboard(app, {
      store: x.store,
      allowedHosts: ['localhost'],
      objects: x.objects,
      catalog: x.catalog,
      now: () => clock.now(),
      timeScale: 1,
      slo: { sloMs: settings.sloMs, atRiskShare: settings.atRiskShare },
    });
    return { x, app };
  }

  const grid = async (a: FastifyInstance, hours = 3): Promise<Grid> =>
    (await a.inject({ headers: auth, url: `/v1/dashboard?hours=${hours}` })).json() as Grid;
  const cell = (g: Grid, type: string, hour: number) =>
    g.types.find((t) => t.name === type)?.cells.find((c) => c.hour === new Date(hour).toISOString());

  it('shows cells going from open to published, with SLO states in between, and an hour with its manifest', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const { x, app } = await start(clock);
    const events = Array.from({ length: 30 }, (_, i) => ({ type: 'EndSong', id: `e-${i}`, payload: endSong() }));
    expect((await x.post([...events, ...events.slice(0, 5)])).body.accepted).toBe(35);
    await x.ingress.ledger.flush(); // saved every 200 ms by the running ingress
    let g = await grid(app);
    expect(g.hours).toHaveLength(3);
    expect(g.hours[2]).toBe(new Date(H).toISOString());
    expect(cell(g, 'EndSong', H)).toMatchObject({ state: 'open', events: 35 });
    expect(cell(g, 'EndSong', H - HOUR_MS)?.state).toBe('none');
    expect(g.legend.map((l) => l.state)).toContain('breached');
    expect(g.types.find((t) => t.name === 'EndSong')?.tier).toBe('high');

    // the hour ended; with its ledger unsealed and the clock far past its 2 h budget, it is breached
    const ingressLedger = x.ingress.ledger;
    clock.set(H + HOUR_MS + 1.5 * HOUR_MS);
    expect(cell(await grid(app, 5), 'EndSong', H)?.state).toBe('at_risk');
    clock.set(H + HOUR_MS + 2 * HOUR_MS + 1);
    expect(cell(await grid(app, 5), 'EndSong', H)?.state).toBe('breached');
    await ingressLedger.sealDue();
    await x.until(async () => (await x.store.listHours({ type: 'EndSong', states: ['published'] })).length > 0);
    g = await grid(app, 4);
    expect(cell(g, 'EndSong', H)).toMatchObject({ state: 'published', events: 35, out: 30 });

    const detail = (await app.inject({ headers: auth, url: '/v1/hours/EndSong/2026-11-22T10' })).json() as {
      state: string;
      slo: { timeliness: string; deliveryDelayMs: number };
      files: { raw: number; rawEvents: number };
      manifest: { eventsOut: number; duplicatesRemoved: number; rawEventsIn: number };
    };
    expect(detail.state).toBe('published');
    expect(detail.slo.timeliness).toBe('missed');
    expect(detail.slo.deliveryDelayMs).toBeGreaterThan(2 * HOUR_MS);
    expect(detail.files.rawEvents).toBe(35);
    expect(detail.manifest).toMatchObject({ eventsOut: 30, duplicatesRemoved: 5, rawEventsIn: 35 });
    const same = (await app.inject({ headers: auth, url: `/v1/hours/EndSong/${H}` })).json() as { state: string };
    expect(same.state).toBe('published');
    // a manifest that disappeared (retention racing the read): the rest of the detail still answers
    const [record] = await x.store.listHours({ type: 'EndSong', from: H, to: H + 1 });
    await x.objects.delete(record?.manifest as string);
    const gone = await app.inject({ headers: auth, url: '/v1/hours/EndSong/2026-11-22T10' });
    expect(gone.statusCode).toBe(200);
    expect(gone.json()).toMatchObject({
      state: 'published',
      manifest: null,
      manifestError: expect.stringMatching(/could not be read/),
    });
  });

  it('shows an hour whose ledgered events are missing from the bus as failed, with the error', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const { x, app } = await start(clock);
    // an ingress instance that stopped after publishing 1–4; no raw file holds any of them
    await x.store.upsertInstance({ id: 'ingress-z', host: 'h', pid: 1, startedAt: H, lastSeenAt: H, stoppedAt: H });
    await x.store.saveLedgers([
      { instanceId: 'ingress-z', type: 'EndSong', hour: H, ranges: [[1, 4]], count: 4, sealed: true, updatedAt: H },
    ]);
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => (await x.store.listHours({ type: 'EndSong', states: ['failed'] })).length > 0);
    const error = 'ledger_mismatch: 4 acknowledged events are missing from the bus (ingress-z: 1-4)';
    expect(cell(await grid(app), 'EndSong', H)).toMatchObject({ state: 'failed', events: 4, error });
    const detail = (await app.inject({ headers: auth, url: '/v1/hours/EndSong/2026-11-22T10' })).json() as {
      state: string;
      hourState: string;
      record: { error: string };
    };
    expect(detail).toMatchObject({ state: 'failed', hourState: 'failed', record: { error } });
  });

  it("a type's panel groups reject reasons; alerts are listed; bad parameters get 400 naming the parameter", async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const { x, app } = await start(clock);
    await x.post([
      { type: 'EndSong', id: 'ok-1', payload: endSong() },
      { type: 'EndSong', id: 'bad-1', payload: { ...endSong(), durationMs: 'long' } },
      { type: 'EndSong', id: 'bad-2', payload: { ...endSong(), durationMs: 'short' } },
    ]);
    await x.ingress.deadLetters.flush();
    await x.ingress.ledger.flush();
    await x.store.openAlert({
      rule: 'reject_rate_spike',
      type: 'EndSong',
      tier: 'high',
      summary: 'EndSong: 66% of events rejected',
      details: { rejected: 2 },
      openedAt: clock.now(),
    });
    const panel = (await app.inject({ headers: auth, url: '/v1/types/EndSong/panel' })).json() as {
      rejects: { total: number; reasons: { code: string; path: string; count: number }[] };
      alerts: { rule: string; state: string; dedupKey: string }[];
      throughput: { events: number }[];
    };
    expect(panel.rejects.total).toBe(2);
    expect(panel.rejects.reasons).toEqual([
      expect.objectContaining({ code: 'schema_violation', path: 'payload.durationMs', count: 2 }),
    ]);
    expect(panel.alerts).toEqual([expect.objectContaining({ rule: 'reject_rate_spike', state: 'firing' })]);
    expect(panel.throughput.at(-1)?.events).toBe(1);
    const alerts = (await app.inject({ headers: auth, url: '/v1/alerts?state=firing' })).json() as {
      alerts: unknown[];
    };
    expect(alerts.alerts).toHaveLength(1);
    expect((await grid(app)).types.find((t) => t.name === 'EndSong')).toMatchObject({ firing: 1 });

    for (const [url, message] of [
      ['/v1/dashboard?hours=0', 'hours: must be an integer from 1 to 168, got "0"'],
      ['/v1/hours/EndSong/yesterday', 'hour: expected YYYY-MM-DDTHH, an ISO-8601 time or epoch ms, got "yesterday"'],
      ['/v1/alerts?state=open', 'state: must be firing or resolved, got "open"'],
    ] as const) {
      const res = await app.inject({ headers: auth, url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toEqual({ error: { code: 'invalid_query', message, retriable: false } });
    }
    const missing = await app.inject({ headers: auth, url: '/v1/types/Nope/panel' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('type_not_found');
    const page = await app.inject({ headers: auth, url: '/dashboard' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).not.toMatch(/<(script|link)[^>]+(src|href)=["']?https?:/i);
  });

  it('needs a token for every data route; owners see their own types only', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const { x, app } = await start(clock);
    const owner = (name: string) => x.catalog.get(name)?.owner as string;
    const own = `Bearer ${(await createToken(x.store, owner('PageView'), 'owner', 0)).token}`;
    const routes = ['/v1/dashboard', '/v1/hours/EndSong/2026-11-22T10', '/v1/types/EndSong/panel', '/v1/alerts'];
    for (const url of routes) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(401);
      expect(res.json().error.code).toBe('unauthorized');
      const bad = await app.inject({ url, headers: { authorization: 'Bearer hgt_000000000000_nope' } });
      expect(bad.statusCode, url).toBe(401);
    }
    const g = (await app.inject({ url: '/v1/dashboard', headers: { authorization: own } })).json() as Grid;
    expect(g.types.map((t) => t.name)).toEqual(
      x.catalog
        .list()
        .filter((t) => t.owner === owner('PageView') && t.status !== 'retired')
        .map((t) => t.name),
    );
    if (owner('EndSong') !== owner('PageView')) {
      const other = await app.inject({ url: '/v1/types/EndSong/panel', headers: { authorization: own } });
      expect(other.statusCode).toBe(403);
      expect(other.json().error.code).toBe('forbidden');
    }
    expect((await app.inject({ url: '/v1/types/PageView/panel', headers: { authorization: own } })).statusCode).toBe(
      200,
    );
  });

  it('sends the page with a strict CSP and frame and sniffing protection, and only to allowed host names', async () => {
    const clock = new ManualClock(H);
    const { app } = await start(clock);
    const page = await app.inject({ url: '/dashboard' });
    expect(page.statusCode).toBe(200);
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    // a name that resolves to this machine by DNS rebinding is not one it answers to
    for (const url of ['/dashboard', '/v1/dashboard']) {
      const rebound = await app.inject({ url, headers: { ...auth, host: 'attacker.example:8080' } });
      expect(rebound.statusCode, url).toBe(421);
      expect(rebound.json().error.code).toBe('host_not_allowed');
    }
    expect((await app.inject({ url: '/v1/dashboard', headers: { ...auth, host: 'localhost:8080' } })).statusCode).toBe(
      200,
    );
  });
});
