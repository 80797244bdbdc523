/**
 * One type's failure stays its own (real ingress, ETL, embedded bus and SQLite, manual clock):
 * - a type whose query view cannot be made is named and left out, the other types answer; `hour`
 *   is an INTEGER in every view;
 * - a type whose dedup keeps failing shows its error in `hourglass hours`, the dashboard and
 *   alerting, while other types' hours close and publish; it publishes once the fault is gone;
 * - an hour waiting in `closing` says what for, in `hourglass hours`, the dashboard and the log.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { closingReasons, etlConfigOf } from '../../cli/pipeline.js';
import { ManualClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { ObjectStoreFailed } from '../../core/errors.js';
import { EventCatalog, loadEventTypes } from '../../core/event-types.js';
import { HOUR_MS, hourPath, hourStart } from '../../core/hours.js';
import { silentLogger } from '../../core/logger.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import { Closer } from '../../etl/closer.js';
import type { Manifest } from '../../etl/dedup.js';
import { createEtlMetrics } from '../../etl/metrics.js';
import { runQuery, type SkippedView } from '../../etl/query.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { createAlerting } from '../../orchestrator/alerts/notifier.js';
import { registerDashboard } from '../../orchestrator/dashboard/dashboard-api.js';
import { createToken } from '../../orchestrator/tokens.js';
import { jsonApi } from '../../services/http/json-api.js';
import { captureIo } from '../support/cli-io.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong, pageView, SCHEMAS_DIR } from '../support/ingress-harness.js';
import { overriding } from '../support/overriding.js';

const H = Date.UTC(2026, 10, 22, 10);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(clock: ManualClock, wrapObjects?: (s: ObjectStore) => ObjectStore): Promise<EtlHarness> {
  const x = await startEtlHarness({ clock, wrapObjects });
  cleanups.push(() => x.close());
  return x;
}

const query = (x: EtlHarness, sql: string, catalog: EventCatalog = x.catalog) =>
  runQuery(sql, x.objects, catalog, { memoryBytes: 128 * 1024 * 1024, threads: 1 });

const events = (type: 'EndSong' | 'PageView', prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    type,
    id: `${prefix}-${i}`,
    payload: type === 'EndSong' ? endSong() : pageView(),
  }));

const publishedHours = async (x: EtlHarness, type: string) =>
  (await x.store.listHours({ type, states: ['published'] })).map((r) => r.hour);

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = captureIo();
  const code = await main(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

async function dashboard(
  x: EtlHarness,
  clock: ManualClock,
): Promise<{ app: FastifyInstance; auth: Record<string, string> }> {
  const app = Fastify();
  jsonApi(app, 1024 * 1024);
  const config = loadConfig({ overrides: { dataDir: x.dir } });
  registerDashboard(app, {
    store: x.store,
    allowedHosts: ['localhost'],
    objects: x.objects,
    catalog: x.catalog,
    now: () => clock.now(),
    timeScale: 1,
    slo: { sloMs: config.alerting.sloMs, atRiskShare: config.alerting.atRiskShare },
    waitingFor: closingReasons(config, x.store, clock, x.etl),
  });
  cleanups.push(() => app.close());
  return { app, auth: { authorization: `Bearer ${(await createToken(x.store, 'ops', 'admin', 0)).token}` } };
}

describe('query: each type has its view on its own', () => {
  it('hour is an INTEGER in every view, the empty ones too', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await harness(clock);
    const columns =
      "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM EndSong) WHERE column_name IN ('date', 'hour') ORDER BY 1";
    // nothing published yet: the empty view of the catalogue's type
    expect((await query(x, columns)).rows).toEqual([
      { column_name: 'date', column_type: 'DATE' },
      { column_name: 'hour', column_type: 'INTEGER' },
    ]);
    expect((await query(x, 'SELECT hour + 1 AS next FROM EndSong')).rows).toEqual([]);
    expect((await x.post(events('EndSong', 'e', 20))).body.accepted).toBe(20);
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => (await publishedHours(x, 'EndSong')).includes(H));
    expect((await query(x, columns)).rows).toEqual([
      { column_name: 'date', column_type: 'DATE' },
      { column_name: 'hour', column_type: 'INTEGER' },
    ]);
    expect(
      (await query(x, 'SELECT hour + 1 AS next, count(*) AS n FROM EndSong WHERE hour = 10 GROUP BY ALL')).rows,
    ).toEqual([{ next: 11, n: 20 }]);
    expect((await query(x, 'SELECT count(*) AS n FROM EndSong WHERE hour = 9')).rows).toEqual([{ n: 0 }]);
  });

  it('a type whose view cannot be made is named with the reason; the others answer', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await harness(clock);
    await x.post([...events('EndSong', 'e', 20), ...events('PageView', 'p', 10)]);
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => (await publishedHours(x, 'PageView')).includes(H));
    await x.until(async () => (await publishedHours(x, 'EndSong')).includes(H));

    // a type whose name differs only in case from another's: neither gets a view
    const endSongType = x.catalog.get('EndSong');
    if (endSongType === undefined) throw new Error('EndSong not in the catalogue');
    const twins = new EventCatalog([...x.catalog.list(), { ...endSongType, name: 'ENDSONG' }]);
    const seen: SkippedView[] = [];
    const r = await runQuery('SELECT count(*) AS n FROM PageView', x.objects, twins, {
      memoryBytes: 128 * 1024 * 1024,
      threads: 1,
      onSkipped: (s) => seen.push(s),
    });
    expect(r.rows).toEqual([{ n: 10 }]);
    expect(r.skipped.map((s) => s.type).sort()).toEqual(['ENDSONG', 'EndSong']);
    expect(r.skipped[0]?.reason).toMatch(/differs only in case from/);
    expect(seen).toEqual(r.skipped);

    // PageView's published file is damaged, UserCreate's manifest unreadable: EndSong still answers
    const m = JSON.parse((await x.objects.get(`final/PageView/${hourPath(H)}/_manifest.json`)).toString()) as Manifest;
    const damaged = x.objects.localPath(m.files[0]?.name as string) as string;
    await writeFile(damaged, 'not parquet');
    await x.objects.put('final/UserCreate/date=2026-11-22/_manifest.json', Buffer.from('{"type":'));
    const broken = await query(x, 'SELECT count(*) AS n FROM EndSong');
    expect(broken.rows).toEqual([{ n: 20 }]);
    expect(broken.skipped.map((s) => s.type)).toEqual(['PageView', 'UserCreate']);
    expect(broken.skipped[0]?.reason).toMatch(/parquet/i);
    expect(broken.skipped[1]?.reason).toMatch(/^manifest final\/UserCreate\/.* could not be read/);

    // the command: the others answer, the skipped types are named on stderr
    const ok = await cli(['query', '--data-dir', x.dir, '--format', 'json', 'SELECT count(*) AS n FROM EndSong']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual([{ n: 20 }]);
    expect(ok.err).toMatch(/^hourglass query: no view for type PageView: .*parquet/im);
    expect(ok.err).toMatch(/^hourglass query: no view for type UserCreate: manifest /m);
    // asking for a skipped type: DuckDB's error, after the reason
    const bad = await cli(['query', '--data-dir', x.dir, 'SELECT count(*) FROM PageView']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/no view for type PageView[\s\S]*PageView does not exist/);
  });
});

describe('a type whose dedup keeps failing', () => {
  it("shows the error in hours, the dashboard and alerting, never delays other types' hours, and publishes once it recovers", async () => {
    let failPageView = true;
    const fault = () =>
      new ObjectStoreFailed({ operation: 'put', name: 'final/PageView/…' }, { cause: new Error('ENOSPC') });
    const wrap = (inner: ObjectStore): ObjectStore =>
      overriding(inner, {
        put: async (name, body) => {
          if (failPageView && name.startsWith('final/PageView/')) throw fault();
          return inner.put(name, body);
        },
        putFile: async (name, path) => {
          if (failPageView && name.startsWith('final/PageView/')) throw fault();
          return inner.putFile(name, path);
        },
      });
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await harness(clock, wrap);
    await x.post([...events('EndSong', 'e1', 30), ...events('PageView', 'p1', 10)]);
    clock.set(H + HOUR_MS + 10 * 60_000);
    await x.post([...events('EndSong', 'e2', 30), ...events('PageView', 'p2', 10)]);
    clock.set(H + 2 * HOUR_MS + 1);
    // EndSong's two hours publish while PageView's first one keeps failing
    await x.until(async () => {
      const [pv] = await x.store.listHours({ type: 'PageView', from: H, to: H + 1 });
      const es = await publishedHours(x, 'EndSong');
      return es.includes(H) && es.includes(H + HOUR_MS) && (pv?.error ?? null) !== null;
    });
    const [pv] = await x.store.listHours({ type: 'PageView', from: H, to: H + 1 });
    expect(pv).toMatchObject({ state: 'closed', eventsOut: null });
    expect(pv?.error).toMatch(
      /^dedup_failed: .*\[object_store_unavailable\] \(\d+ attempts? since 2026-11-22T12:00:00\.001Z; retried\)$/,
    );
    expect(await publishedHours(x, 'PageView')).toEqual([]);
    expect((await query(x, 'SELECT count(*) AS n FROM EndSong')).rows).toEqual([{ n: 60 }]);
    const failures = await x.etl.metrics.dedupFailures.get();
    expect(failures.values.find((v) => v.labels.type === 'PageView')?.value).toBeGreaterThan(0);
    expect(failures.values.find((v) => v.labels.type === 'EndSong')).toBeUndefined();

    // hourglass hours
    const hours = await cli(['hours', '--data-dir', x.dir, '--type', 'PageView', '--format', 'json']);
    expect(hours.code).toBe(0);
    const rows = JSON.parse(hours.out) as { hour: string; state: string; error: string | null }[];
    expect(rows.find((r) => r.hour === new Date(H).toISOString())).toMatchObject({
      state: 'closed',
      error: expect.stringMatching(/^dedup_failed: /),
    });

    // the dashboard: the cell, the hour's detail and the type's panel
    const { app, auth } = await dashboard(x, clock);
    const grid = (await app.inject({ headers: auth, url: '/v1/dashboard?hours=3' })).json() as {
      types: { name: string; cells: { hour: string; state: string; error: string | null }[] }[];
    };
    const cell = (type: string, hour: number) =>
      grid.types.find((t) => t.name === type)?.cells.find((c) => c.hour === new Date(hour).toISOString());
    expect(cell('PageView', H)).toMatchObject({ state: 'retrying', error: expect.stringMatching(/^dedup_failed: /) });
    expect(cell('EndSong', H)?.state).toBe('published');
    const panel = (await app.inject({ headers: auth, url: '/v1/types/PageView/panel?hours=3' })).json() as {
      issues: { hour: string; state: string; hourState: string; error: string | null }[];
    };
    expect(panel.issues).toContainEqual({
      hour: new Date(H).toISOString(),
      state: 'retrying',
      hourState: 'closed',
      error: expect.stringMatching(/^dedup_failed: /),
      waitingFor: null,
    });

    // alerting: the publication_failing rule fires for PageView only
    const settings = loadConfig({ overrides: { 'alerting.publicationFailingRealMs': 0 } }).alerting;
    const alerting = await createAlerting({
      store: x.store,
      bus: x.bus,
      catalog: x.catalog,
      clock,
      logger: silentLogger(),
      settings,
      registry: new Registry(),
    });
    for (const t of x.catalog.list()) await alerting.service.provision(t);
    await alerting.service.evaluate();
    const firing = (await x.store.listAlerts({ state: 'firing' })).filter((a) => a.rule === 'publication_failing');
    expect(firing).toMatchObject([
      {
        type: 'PageView',
        summary: expect.stringMatching(/^PageView: hour 2026-11-22T10 is closed but not published .*: dedup_failed: /),
      },
    ]);

    // the fault goes: both PageView hours publish, the error is cleared and the alert resolves
    failPageView = false;
    await x.until(async () => (await publishedHours(x, 'PageView')).length === 2, 30_000);
    expect((await x.store.listHours({ type: 'PageView' })).map((r) => r.error)).toEqual([null, null]);
    expect((await query(x, 'SELECT count(*) AS n FROM PageView')).rows).toEqual([{ n: 20 }]);
    await alerting.service.evaluate();
    expect((await x.store.listAlerts({ state: 'firing' })).filter((a) => a.rule === 'publication_failing')).toEqual([]);
    await alerting.stop();
  });

  it('a type whose closer check fails keeps its hour closing, saying why, while others close', async () => {
    let failPageView = true;
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await harness(clock);
    const listFiles = x.store.listFiles.bind(x.store);
    x.store.listFiles = async (type, hour, kind) => {
      if (failPageView && type === 'PageView') throw new Error('disk I/O error');
      return listFiles(type, hour, kind);
    };
    await x.post([...events('EndSong', 'e', 10), ...events('PageView', 'p', 10)]);
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => (await publishedHours(x, 'EndSong')).includes(H));
    expect(await x.store.listHours({ type: 'PageView' })).toEqual([]);
    expect(x.etl.waitingFor('PageView', H)).toMatch(/^the closer's check to succeed \(it failed: disk I\/O error\)/);
    failPageView = false;
    await x.until(async () => (await publishedHours(x, 'PageView')).includes(H));
    expect(x.etl.waitingFor('PageView', H)).toBeNull();
  });
});

describe('a closing hour says what it waits for', () => {
  async function storeDir() {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-closing-'));
    const store = new SqliteStateStore(join(dir, 'state.sqlite'));
    cleanups.push(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    return { dir, store };
  }

  it('in hourglass hours and the dashboard, judged from the state store', async () => {
    const { dir, store } = await storeDir();
    // real time: `hourglass hours` reads the system clock here
    const hour = hourStart(Date.now()) - 3 * HOUR_MS;
    await store.upsertInstance({
      id: 'live',
      host: 'h',
      pid: 1,
      startedAt: hour,
      lastSeenAt: Date.now() + 60_000,
      stoppedAt: null,
    });
    await store.upsertInstance({ id: 'gone', host: 'h', pid: 2, startedAt: hour, lastSeenAt: hour, stoppedAt: hour });
    await store.saveLedgers([
      { instanceId: 'live', type: 'EndSong', hour, ranges: [[1, 3]], count: 3, sealed: false, updatedAt: hour },
      { instanceId: 'gone', type: 'PageView', hour, ranges: [[1, 5]], count: 5, sealed: true, updatedAt: hour },
      { instanceId: 'live', type: 'PageView', hour, ranges: [], count: 0, sealed: true, updatedAt: hour },
    ]);
    const r = await cli(['hours', '--data-dir', dir, '--format', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject([
      { type: 'EndSong', state: 'closing', ledger: 3, waitingFor: 'ingress instance live to seal its ledger' },
      { type: 'PageView', state: 'closing', ledger: 5, waitingFor: '5 ledgered events to be persisted (gone: 1-5)' },
    ]);
    const table = await cli(['hours', '--data-dir', dir]);
    expect(table.out).toMatch(/EndSong\s.*closing\s.*ingress instance live to seal its ledger/);

    const config = loadConfig({ overrides: { dataDir: dir } });
    const clock = new ManualClock(hour + 2 * HOUR_MS);
    const app = Fastify();
    jsonApi(app, 1024 * 1024);
    registerDashboard(app, {
      store,
      allowedHosts: ['localhost'],
      objects: new FsObjectStore(join(dir, 'objects')),
      catalog: new EventCatalog(await loadEventTypes(SCHEMAS_DIR)),
      now: () => clock.now(),
      timeScale: 1,
      slo: { sloMs: config.alerting.sloMs, atRiskShare: config.alerting.atRiskShare },
      waitingFor: closingReasons(config, store, clock, null),
    });
    cleanups.push(() => app.close());
    const auth = { authorization: `Bearer ${(await createToken(store, 'ops', 'admin', 0)).token}` };
    const grid = (await app.inject({ headers: auth, url: '/v1/dashboard?hours=3' })).json() as {
      types: { name: string; cells: { hour: string; state: string; waitingFor: string | null }[] }[];
    };
    const cell = grid.types
      .find((t) => t.name === 'EndSong')
      ?.cells.find((c) => c.hour === new Date(hour).toISOString());
    expect(cell).toMatchObject({ state: 'closing', waitingFor: 'ingress instance live to seal its ledger' });
  });

  it('is logged by the closer at debug when first seen, then at info once it has waited a while', async () => {
    const { store } = await storeDir();
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const records: { level: number; msg: string; waitingFor?: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => records.push(JSON.parse(line)) });
    const metrics = createEtlMetrics(new Registry());
    const closer = new Closer({
      state: store,
      clock,
      logger,
      metrics,
      config: etlConfigOf(loadConfig()).closer,
      types: () => ['EndSong'],
      waitLog: { infoAfterRealMs: 50, everyRealMs: 60_000 },
    });
    await store.upsertInstance({ id: 'i', host: 'h', pid: 1, startedAt: H, lastSeenAt: clock.now(), stoppedAt: null });
    await store.saveLedgers([
      { instanceId: 'i', type: 'EndSong', hour: H, ranges: [[1, 2]], count: 2, sealed: false, updatedAt: H },
    ]);
    const waiting = 'ingress instance i to seal its ledger';
    expect(await closer.run()).toEqual([{ type: 'EndSong', hour: H, waitingFor: waiting }]);
    expect(closer.waitingFor('EndSong', H)).toBe(waiting);
    expect(records.map((r) => [r.level, r.msg, r.waitingFor])).toEqual([[20, 'hour closing', waiting]]);
    const deadline = Date.now() + 5000;
    while (!records.some((r) => r.msg === 'hour still closing') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      await closer.run();
    }
    expect(records.filter((r) => r.msg === 'hour still closing')).toMatchObject([
      { level: 30, waitingFor: waiting, type: 'EndSong', hour: new Date(H).toISOString() },
    ]);
    const closing = await metrics.hoursClosing.get();
    expect(closing.values).toEqual([{ labels: { type: 'EndSong' }, value: 1 }]);
  });
});
