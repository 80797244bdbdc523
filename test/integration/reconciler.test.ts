/**
 * The reconcile loop on real backends (embedded bus, SQLite) with faults injected at the bus:
 * failed steps are recorded and retried with backoff, and a restart between steps resumes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Clock, ManualClock, SystemClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { EventCatalog, subscriptionFor, topicFor } from '../../core/event-types.js';
import { silentLogger } from '../../core/logger.js';
import type { Bus } from '../../core/ports/bus.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { AlertingService } from '../../orchestrator/alerts/alerting.js';
import { CatalogSync } from '../../orchestrator/catalog-sync.js';
import { applyPlan, planTypes } from '../../orchestrator/plan.js';
import { Reconciler } from '../../orchestrator/reconciler.js';
import { SCHEMAS_DIR } from '../support/ingress-harness.js';

/** The bus with `method` failing its first `times` calls. */
function failing(bus: Bus, method: 'createSubscription' | 'deleteTopic', times: number): Bus {
  let left = times;
  return new Proxy(bus, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop !== method || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
      return async (...args: unknown[]) => {
        if (left-- > 0) throw new Error(`${method}: broker unavailable`);
        return (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

describe('reconciler', () => {
  let dir: string;
  let store: SqliteStateStore;
  let bus: EmbeddedBus;
  let catalog: EventCatalog;
  let sync: CatalogSync;
  const clock = new SystemClock();
  const reconciler = (b: Bus, c: Clock = clock) =>
    new Reconciler({
      store,
      bus: b,
      catalog,
      etl: null,
      alerting: new AlertingService({
        store,
        bus: b,
        catalog,
        clock: c,
        logger: silentLogger(),
        settings: loadConfig().alerting,
        notifier: null,
      }),
      clock: c,
      logger: silentLogger(),
      intervalRealMs: 1000,
      retryMaxRealMs: 100,
      refuseMarginMs: 0,
    });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourglass-reconcile-'));
    store = new SqliteStateStore(join(dir, 'state.sqlite'));
    bus = new EmbeddedBus({ dataDir: dir, clock });
    await applyPlan(await planTypes(SCHEMAS_DIR, store), store, 'test', 1);
    catalog = new EventCatalog();
    sync = new CatalogSync(store, catalog, 1000, silentLogger());
    await sync.refresh();
  });
  afterEach(async () => {
    await bus.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('records a failed step with its error, retries it after a backoff, and then records it done', async () => {
    const r = reconciler(failing(bus, 'createSubscription', 4));
    await r.pass();
    const failed = (await store.listSteps('EndSong')).find((s) => s.step === 'bus');
    expect(failed).toMatchObject({ status: 'failed', attempts: 1, error: 'createSubscription: broker unavailable' });
    // the consumer step waits for the bus step
    expect((await store.listSteps('EndSong')).map((s) => s.step)).toEqual(['bus']);
    await r.pass(); // within the backoff: not tried again
    expect((await store.listSteps('EndSong')).find((s) => s.step === 'bus')?.attempts).toBe(1);
    for (
      let i = 0;
      i < 20 && (await store.listSteps('EndSong')).find((s) => s.step === 'bus')?.status !== 'done';
      i++
    ) {
      await new Promise((res) => setTimeout(res, 120));
      await r.pass();
    }
    expect((await store.listSteps('EndSong')).map((s) => [s.step, s.status])).toEqual([
      ['alerts', 'done'],
      ['bus', 'done'],
      ['consumer', 'done'],
    ]);
    expect(await bus.listTopics()).toContain(topicFor('EndSong'));
  });

  it('resumes a retirement after a crash between its steps', async () => {
    await reconciler(bus).pass();
    // every active type got its alert rules
    expect((await store.listAlertRules('PageView')).map((r) => r.rule)).toHaveLength(7);
    expect((await store.listAlertRules('EndSong')).find((r) => r.rule === 'slo_breached')?.params).toEqual({
      budgetMs: 3 * 3_600_000,
    });
    const t = await store.getType('PageView');
    if (t === null) throw new Error('PageView not registered');
    const { versions: _v, revision, createdAt: _c, updatedAt: _u, ...definition } = t;
    // retired two hours ago (in the pipeline's clock, a manual one here)
    const retiredAt = Date.now() - 2 * 3_600_000;
    const lastHour = Math.floor(retiredAt / 3_600_000) * 3_600_000;
    const manual = new ManualClock(retiredAt);
    await store.saveType({
      definition: { ...definition, status: 'retiring' },
      newVersions: [],
      expectedRevision: revision,
      actor: 'test',
      action: 'retire',
      detail: '',
      at: retiredAt,
    });
    await sync.refresh();
    const stepOf = async (step: string) => (await store.listSteps('PageView')).find((s) => s.step === step);
    // this process deletes the subscription, then "dies" before the topic is deleted
    const first = reconciler(failing(bus, 'deleteTopic', 1), manual);
    await first.pass();
    expect(await stepOf('drain')).toMatchObject({ status: 'waiting', error: expect.stringMatching(/has not ended/) });
    manual.set(lastHour + 3_600_000 + 1);
    await first.pass();
    expect(await stepOf('drain')).toMatchObject({
      status: 'waiting',
      error: expect.stringMatching(/not published yet/),
    });
    // the ETL publishes the last hour
    await store.closeHour({
      type: 'PageView',
      hour: lastHour,
      closedAt: 1,
      closedBy: 'sealed',
      vanishedInstances: [],
      ledgerTotal: 0,
    });
    await store.updateHour('PageView', lastHour, { state: 'published', manifest: 'm', publishedAt: 2 }, 2);
    await first.pass();
    expect(await stepOf('drain')).toMatchObject({ status: 'done' });
    expect(await stepOf('bus')).toMatchObject({ status: 'failed', error: 'deleteTopic: broker unavailable' });
    expect(await bus.listTopics()).toContain(topicFor('PageView'));
    expect((await store.getType('PageView'))?.status).toBe('retiring');

    // a new process picks up where it stopped: the recorded drain stands, the rest is repeated
    await reconciler(bus, manual).pass();
    expect(await bus.listTopics()).not.toContain(topicFor('PageView'));
    await expect(bus.backlog(subscriptionFor('PageView'))).rejects.toMatchObject({ code: 'subscription_not_found' });
    expect((await store.getType('PageView'))?.status).toBe('retired');
    expect(await store.listAlertRules('PageView')).toEqual([]);
    expect(await store.listAlertRules('EndSong')).toHaveLength(7);
    expect((await store.typeHistory('PageView')).map((h) => [h.actor, h.action])).toEqual([
      ['test', 'create'],
      ['test', 'retire'],
      ['reconciler', 'retired'],
    ]);
    // the other types are untouched
    expect(await bus.listTopics()).toContain(topicFor('EndSong'));
  });

  it('makes sure of the warehouse table of a warehouse-stored type, once per schema version', async () => {
    const t = await store.getType('EndSong');
    if (t === null) throw new Error('EndSong not registered');
    const { versions: _v, revision, createdAt: _c, updatedAt: _u, ...definition } = t;
    await store.saveType({
      definition: { ...definition, storage: 'warehouse' },
      newVersions: [],
      expectedRevision: revision,
      actor: 'test',
      action: 'update',
      detail: 'storage: files → warehouse',
      at: 2,
    });
    await sync.refresh();
    const ensured: string[] = [];
    const warehouse = {
      backend: 'recording',
      ensureTable: async (type: { name: string; versions: readonly unknown[] }) => {
        ensured.push(`${type.name}@${type.versions.length}`);
      },
      loadPartition: async () => ({ rows: 0 }),
      query: async () => ({ columns: [], rows: [] }),
      close: async () => undefined,
    };
    const r = new Reconciler({
      store,
      bus,
      catalog,
      etl: null,
      warehouse,
      clock,
      logger: silentLogger(),
      intervalRealMs: 1000,
      retryMaxRealMs: 100,
      refuseMarginMs: 0,
    });
    await r.pass();
    await r.pass();
    expect(ensured).toEqual(['EndSong@2']);
    expect((await store.listSteps('EndSong')).find((s) => s.step === 'warehouse')?.status).toBe('done');
    expect((await store.listSteps('PageView')).map((s) => s.step)).not.toContain('warehouse');
  });
});
