/**
 * Alerting on real backends (embedded bus, SQLite) with a scaled clock, notifying local HTTP
 * receivers through the real sinks: a PagerDuty Events v2 receiver gets pages, a webhook
 * receiver gets tickets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, ScaledClock, SystemClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { EventCatalog, loadEventTypes, subscriptionFor, topicFor } from '../../core/event-types.js';
import { HOUR_MS, hourLabel, hourStart } from '../../core/hours.js';
import { silentLogger } from '../../core/logger.js';
import { Closer } from '../../etl/closer.js';
import { createEtlMetrics } from '../../etl/metrics.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { type Alerting, createAlerting } from '../../orchestrator/alerts/notifier.js';
import { provisionBus } from '../../orchestrator/provision.js';
import { type Receiver, startReceiver } from '../support/http-receiver.js';
import { SCHEMAS_DIR, startHarness } from '../support/ingress-harness.js';

interface PagerDutyBody {
  event_action: 'trigger' | 'resolve';
  dedup_key: string;
  payload?: { summary: string; component: string; class: string; timestamp: string };
}
interface WebhookBody {
  event: 'trigger' | 'renotify' | 'resolve';
  route: 'page' | 'ticket';
  alert: { rule: string; type: string; dedupKey: string; openedAt: string };
  sentAt: string;
}

describe('alerting', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  async function setup(clock: Clock, alerting: Record<string, unknown>, engines = 1) {
    const dir = await mkdtemp(`${tmpdir()}/hourglass-alerting-`);
    const store = new SqliteStateStore(`${dir}/state.sqlite`);
    const bus = new EmbeddedBus({ dataDir: dir, clock });
    const receiver: Receiver = await startReceiver();
    const catalog = new EventCatalog(await loadEventTypes(SCHEMAS_DIR));
    await provisionBus(bus, catalog.list(), silentLogger());
    const overrides: Record<string, unknown> = {
      'alerting.evaluateIntervalRealMs': 100,
      'alerting.deliveryBackoffRealMs': 50,
      'alerting.sinks': [
        { name: 'oncall', kind: 'pagerduty', url: `${receiver.url}/pd`, routingKey: 'R0UT1NGKEY' },
        { name: 'tickets', kind: 'webhook', url: `${receiver.url}/tickets`, routes: ['ticket'] },
      ],
    };
    for (const [k, v] of Object.entries(alerting)) overrides[`alerting.${k}`] = v;
    const settings = loadConfig({ overrides }).alerting;
    const running: Alerting[] = [];
    for (let i = 0; i < engines; i++) {
      const a = await createAlerting({
        store,
        bus,
        catalog,
        clock,
        logger: silentLogger(),
        settings,
        registry: new Registry(),
      });
      for (const t of catalog.list()) await a.service.provision(t);
      a.start();
      running.push(a);
    }
    cleanups.push(async () => {
      for (const a of running) await a.stop();
      await receiver.close();
      await bus.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    const publish = (type: string, n: number) =>
      bus.publish(
        topicFor(type),
        Array.from({ length: n }, (_, i) => ({ data: Buffer.from([i % 256]), attributes: { id: `e${i}` } })),
      );
    return { store, bus, receiver, publish };
  }

  const pd =
    (rule: string, type: string, action: 'trigger' | 'resolve' = 'trigger') =>
    (b: PagerDutyBody) =>
      b.event_action === action && b.dedup_key.startsWith(`hourglass/${type}/${rule}/`);
  const ticket =
    (rule: string, type: string, event: WebhookBody['event'] = 'trigger') =>
    (b: WebhookBody) =>
      b.event === event && b.alert.rule === rule && b.alert.type === type;

  it('a stalled consumer pages for a high-tier type within the configured time, opens only a ticket for a low-tier type, and resolves once consumed', async () => {
    const stuckRealMs = 1500;
    const { store, bus, receiver, publish } = await setup(
      new ScaledClock(360),
      { consumerStuckRealMs: stuckRealMs },
      2,
    );
    const started = performance.now();
    await publish('EndSong', 50);
    await publish('PageView', 20);

    const page = await receiver.waitFor('/pd', pd('consumer_stuck', 'EndSong') as (b: unknown) => boolean);
    const waited = page.at - started;
    expect(waited).toBeGreaterThanOrEqual(stuckRealMs - 50);
    expect(waited).toBeLessThan(stuckRealMs + 3000);
    const body = page.body as PagerDutyBody & { routing_key: string };
    expect(body.routing_key).toBe('R0UT1NGKEY');
    expect(body.payload?.summary).toMatch(/^EndSong: 50 messages waiting on the bus/);

    const t = await receiver.waitFor('/tickets', ticket('consumer_stuck', 'PageView') as (b: unknown) => boolean);
    expect((t.body as WebhookBody).route).toBe('ticket');
    // two engines share the store: each alert is notified once
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.find('/pd', pd('consumer_stuck', 'EndSong') as (b: unknown) => boolean)).toHaveLength(1);
    expect(receiver.find('/tickets', ticket('consumer_stuck', 'PageView') as (b: unknown) => boolean)).toHaveLength(1);
    expect(receiver.find('/pd', pd('consumer_stuck', 'PageView') as (b: unknown) => boolean)).toHaveLength(0);
    expect(receiver.find('/tickets', ticket('consumer_stuck', 'EndSong') as (b: unknown) => boolean)).toHaveLength(0);

    // the consumer catches up: the alert resolves with the same dedup key
    const sub = await bus.subscribe(subscriptionFor('EndSong'), (messages) => {
      for (const m of messages) m.ack();
    });
    const resolved = await receiver.waitFor(
      '/pd',
      pd('consumer_stuck', 'EndSong', 'resolve') as (b: unknown) => boolean,
    );
    expect((resolved.body as PagerDutyBody).dedup_key).toBe(body.dedup_key);
    await sub.close();
    const alerts = await store.listAlerts({ type: 'EndSong' });
    expect(alerts.map((a) => [a.rule, a.state, a.routes])).toEqual([['consumer_stuck', 'resolved', ['page']]]);
    expect((await store.listAlerts({ state: 'firing' })).map((a) => [a.type, a.rule, a.routes])).toEqual([
      ['PageView', 'consumer_stuck', ['ticket']],
    ]);
  });

  it('a normal-tier alert at night opens a ticket, then pages when business hours start', async () => {
    // Monday 08:00 UTC; 12 clock minutes per real second
    const clock = new ScaledClock(720, Date.UTC(2026, 10, 23, 8, 0));
    const { receiver, publish } = await setup(clock, {
      consumerStuckRealMs: 1000,
      businessHours: { timezone: 'UTC', days: [1, 2, 3, 4, 5], startHour: 9, endHour: 17 },
    });
    await publish('UserCreate', 5);
    const t = await receiver.waitFor('/tickets', ticket('consumer_stuck', 'UserCreate') as (b: unknown) => boolean);
    const tb = t.body as WebhookBody;
    expect(Date.parse(tb.sentAt)).toBeLessThan(Date.UTC(2026, 10, 23, 9));
    expect(receiver.find('/pd')).toHaveLength(0);
    const page = await receiver.waitFor('/pd', pd('consumer_stuck', 'UserCreate') as (b: unknown) => boolean, 20_000);
    const pb = page.body as PagerDutyBody;
    expect(Date.parse(pb.payload?.timestamp ?? '')).toBeGreaterThanOrEqual(Date.UTC(2026, 10, 23, 9));
    expect(pb.dedup_key).toBe(tb.alert.dedupKey);
  });

  it('SLO at risk, then breached, for an hour that is not published; both resolve once it is', async () => {
    // an hour ended 5 clock minutes ago; its ledger entry is not sealed, so it is still closing
    const start = hourStart(Date.now()) + 5 * 60_000;
    const clock = new ScaledClock(360, start);
    const hour = hourStart(start) - HOUR_MS;
    const { store, receiver } = await setup(clock, { 'sloMs.high': 30 * 60_000, atRiskShare: 0.5 });
    await store.saveLedgers([
      { instanceId: 'i1', type: 'EndSong', hour, ranges: [[1, 3]], count: 3, sealed: false, updatedAt: start },
    ]);
    const risk = await receiver.waitFor('/pd', pd('slo_at_risk', 'EndSong') as (b: unknown) => boolean);
    expect((risk.body as PagerDutyBody).payload?.summary).toMatch(/has used \d+% of its 30m SLO/);
    const breach = await receiver.waitFor('/pd', pd('slo_breached', 'EndSong') as (b: unknown) => boolean);
    expect((breach.body as PagerDutyBody).payload?.summary).toMatch(
      /is not published 3\dm after its end \(SLO 30m; closing\)/,
    );
    await receiver.waitFor('/pd', pd('slo_at_risk', 'EndSong', 'resolve') as (b: unknown) => boolean);
    // the hour closes and publishes
    await store.closeHour({
      type: 'EndSong',
      hour,
      closedAt: clock.now(),
      closedBy: 'sealed',
      vanishedInstances: [],
      ledgerTotal: 3,
    });
    await store.updateHour('EndSong', hour, { state: 'published', publishedAt: clock.now() }, clock.now());
    await receiver.waitFor('/pd', pd('slo_breached', 'EndSong', 'resolve') as (b: unknown) => boolean);
    expect(await store.listAlerts({ state: 'firing' })).toEqual([]);
  });

  it('an hour the closer fails (ledgered events missing from the bus) pages completeness_violation', async () => {
    // an hour ended 5 clock minutes ago; an instance that stopped had published 1–3 into it
    const start = hourStart(Date.now()) + 5 * 60_000;
    const clock = new ScaledClock(360, start);
    const hour = hourStart(start) - HOUR_MS;
    const { store, bus, receiver } = await setup(clock, {});
    await store.upsertInstance({ id: 'z', host: 'h', pid: 1, startedAt: hour, lastSeenAt: hour, stoppedAt: hour });
    await store.saveLedgers([
      { instanceId: 'z', type: 'EndSong', hour, ranges: [[1, 3]], count: 3, sealed: true, updatedAt: hour },
    ]);
    // the bus holds nothing for EndSong (exact figures): the events can no longer arrive
    const closer = new Closer({
      state: store,
      clock,
      logger: silentLogger(),
      metrics: createEtlMetrics(new Registry()),
      config: { vanishAfterRealMs: 30_000 },
      types: () => ['EndSong'],
      backlog: (type) => bus.backlog(subscriptionFor(type)),
      exactBacklog: bus.capabilities.exactBacklog,
      redeliveryWithinRealMs: bus.capabilities.redeliveryWithinRealMs,
    });
    const error = 'ledger_mismatch: 3 acknowledged events are missing from the bus (z: 1-3)';
    expect((await closer.run()).map((c) => c.failed)).toEqual([error]);
    const page = await receiver.waitFor('/pd', pd('completeness_violation', 'EndSong') as (b: unknown) => boolean);
    expect((page.body as PagerDutyBody).payload?.summary).toBe(
      `EndSong: hour ${hourLabel(hour)} lacks ledgered events and is not published: ${error}`,
    );
    const [alert] = await store.listAlerts({ state: 'firing', type: 'EndSong' });
    expect(alert).toMatchObject({ rule: 'completeness_violation', routes: ['page'], details: { error } });
  });

  it('a reject-rate spike opens an alert from the ingress ledgers and dead letters, and resolves once the window is clean', async () => {
    const h = await startHarness();
    const receiver = await startReceiver();
    const settings = loadConfig({
      overrides: {
        'alerting.evaluateIntervalRealMs': 100,
        'alerting.rejectRateWindowRealMs': 1500,
        'alerting.rejectRateMinEvents': 20,
        'alerting.rejectRateShare': 0.2,
        'alerting.deadLetterGrowth': 15,
        'alerting.deadLetterWindowRealMs': 1500,
        'alerting.sinks': [{ name: 'tickets', kind: 'webhook', url: `${receiver.url}/tickets` }],
      },
    }).alerting;
    const a = await createAlerting({
      store: h.store,
      bus: h.bus,
      catalog: h.catalog,
      clock: new SystemClock(),
      logger: silentLogger(),
      settings,
      registry: new Registry(),
    });
    cleanups.push(async () => {
      await a.stop();
      await receiver.close();
      await h.close();
    });
    for (const t of h.catalog.list()) await a.service.provision(t);
    a.start();
    await new Promise((r) => setTimeout(r, 300)); // a first sample: what came before is not counted
    const view = (i: number, loadTimeMs: unknown) => ({
      type: 'PageView',
      id: `pv-${i}`,
      payload: {
        sessionId: 's',
        userId: null,
        url: '/',
        referrer: null,
        loadTimeMs,
        viewport: { width: 1, height: 1 },
        experiments: [],
      },
    });
    const res = await fetch(`${h.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        events: [
          ...Array.from({ length: 30 }, (_, i) => view(i, 80)),
          ...Array.from({ length: 20 }, (_, i) => view(100 + i, 'fast')),
        ],
      }),
    });
    expect(((await res.json()) as { accepted: number }).accepted).toBe(30);
    const spike = await receiver.waitFor(
      '/tickets',
      ticket('reject_rate_spike', 'PageView') as (b: unknown) => boolean,
    );
    expect((spike.body as WebhookBody & { alert: { summary: string } }).alert.summary).toMatch(
      /^PageView: 40% of events rejected in the last [12]s \(20 of 50; threshold 20%\)$/,
    );
    await receiver.waitFor('/tickets', ticket('dead_letter_growth', 'PageView') as (b: unknown) => boolean);
    // nothing rejected since: both resolve once the window has passed
    await receiver.waitFor('/tickets', ticket('reject_rate_spike', 'PageView', 'resolve') as (b: unknown) => boolean);
    await receiver.waitFor('/tickets', ticket('dead_letter_growth', 'PageView', 'resolve') as (b: unknown) => boolean);
    expect(
      receiver.find('/tickets', ((b: WebhookBody) => b.alert.type !== 'PageView') as (b: unknown) => boolean),
    ).toEqual([]);
  });
});
