/**
 * Completeness (DESIGN.md point 7): the closer's rules, the vanished-instance rule, the dedup
 * step's ledger re-check, and per-type isolation when one type's writes fail.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { ObjectStoreFailed } from '../../core/errors.js';
import { HOUR_MS, hourPath } from '../../core/hours.js';
import { silentLogger } from '../../core/logger.js';
import type { Backlog } from '../../core/ports/bus.js';
import { listAll, type ObjectStore } from '../../core/ports/object-store.js';
import type { RawFile, StateStore } from '../../core/ports/state-store.js';
import { ContainerWriter } from '../../etl/avro-container.js';
import { Closer, type ConsumerView } from '../../etl/closer.js';
import { type Manifest, runDedup } from '../../etl/dedup.js';
import { JobClaims } from '../../etl/job-claims.js';
import { createEtlMetrics } from '../../etl/metrics.js';
import { rawSchemaFor, writeEnvelope } from '../../etl/raw-record.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong, pageView, userCreate } from '../support/ingress-harness.js';
import { overriding } from '../support/overriding.js';

const H = Date.UTC(2026, 10, 22, 10);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type CloserDeps = ConstructorParameters<typeof Closer>[0];

async function stateOnly(clock: ManualClock, over: Partial<CloserDeps> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-closer-'));
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  cleanups.push(async () => {
    await state.close();
    await rm(dir, { recursive: true, force: true });
  });
  const closer = new Closer({
    state,
    clock,
    logger: silentLogger(),
    metrics: createEtlMetrics(new Registry()),
    config: { vanishAfterRealMs: 30_000 },
    types: () => ['EndSong'],
    ...over,
  });
  return { dir, state, closer };
}

const instance = (id: string, startedAt: number, lastSeenAt: number, stoppedAt: number | null = null) => ({
  id,
  host: 'h',
  pid: 1,
  startedAt,
  lastSeenAt,
  stoppedAt,
});

function file(name: string, ranges: Record<string, [number, number][]>): RawFile {
  return { type: 'EndSong', hour: H, kind: 'raw', name, events: 0, bytes: 0, ranges, consumer: 'c', committedAt: 0 };
}

describe('closer', () => {
  it('waits for live instances to seal and for every ledgered event to be persisted', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const { state, closer } = await stateOnly(clock);
    await state.upsertInstance(instance('live', H - HOUR_MS, clock.now()));
    await state.upsertInstance(instance('later', H + HOUR_MS + 1, clock.now())); // started after the hour: not waited for
    await state.upsertInstance(instance('stopped', H - 2 * HOUR_MS, H - HOUR_MS, H - HOUR_MS));
    await state.saveLedgers([
      { instanceId: 'live', type: 'EndSong', hour: H, ranges: [[1, 10]], count: 10, sealed: false, updatedAt: 0 },
    ]);
    expect((await closer.run())[0]?.waitingFor).toMatch(/ingress instance live to seal/);
    await state.sealLedgers([{ instanceId: 'live', type: 'EndSong', hour: H }], clock.now());
    await state.registerFile(file('a', { live: [[1, 4]] }));
    await state.registerFile(
      file('b', {
        live: [
          [6, 10],
          [3, 5],
        ],
      }),
    );
    await state.registerFile(file('c', { other: [[1, 10]] }));
    expect((await closer.run())[0]?.waitingFor).toBeNull();
    expect(await state.listHours()).toMatchObject([
      { type: 'EndSong', hour: H, state: 'closed', closedBy: 'sealed', ledgerTotal: 10 },
    ]);
    // a closed hour is not looked at again, and its raw bucket is frozen
    expect(await closer.run()).toEqual([]);
    expect(await state.registerFile(file('d', { live: [[11, 11]] }))).toBe('hour_closed');
  });

  it('does not close while a ledgered event is not persisted', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const { state, closer } = await stateOnly(clock);
    await state.upsertInstance(instance('i', H, clock.now()));
    await state.saveLedgers([
      {
        instanceId: 'i',
        type: 'EndSong',
        hour: H,
        ranges: [
          [1, 5],
          [8, 9],
        ],
        count: 7,
        sealed: true,
        updatedAt: 0,
      },
    ]);
    await state.registerFile(file('a', { i: [[1, 5]] }));
    expect((await closer.run())[0]?.waitingFor).toBe('2 ledgered events to be persisted (i: 8-9)');
    expect(await state.listHours()).toEqual([]);
  });

  it('closes by the vanished-instance rule: a silent instance counts with its last saved ledger', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const { state, closer } = await stateOnly(clock);
    await state.upsertInstance(instance('alive', H - HOUR_MS, clock.now()));
    await state.sealLedgers([{ instanceId: 'alive', type: 'EndSong', hour: H }], clock.now());
    // crashed mid-hour: last heartbeat 20 minutes ago (> 30 s), ledger saved but never sealed
    await state.upsertInstance(instance('gone', H - HOUR_MS, H + 40 * 60_000));
    await state.saveLedgers([
      { instanceId: 'gone', type: 'EndSong', hour: H, ranges: [[1, 3]], count: 3, sealed: false, updatedAt: 0 },
    ]);
    expect((await closer.run())[0]?.waitingFor).toBe('3 ledgered events to be persisted (gone: 1-3)');
    await state.registerFile(file('a', { gone: [[1, 3]] }));
    expect((await closer.run())[0]?.waitingFor).toBeNull();
    expect(await state.listHours()).toMatchObject([
      { closedBy: 'vanished', vanishedInstances: ['gone'], ledgerTotal: 3 },
    ]);
  });

  it('waits for an unsealed instance until its heartbeat is older than the vanish time', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const { state, closer } = await stateOnly(clock);
    await state.upsertInstance(instance('slow', H - HOUR_MS, clock.now() - 10_000));
    await state.saveLedgers([
      { instanceId: 'slow', type: 'EndSong', hour: H, ranges: [], count: 0, sealed: false, updatedAt: 0 },
    ]);
    expect((await closer.run())[0]?.waitingFor).toMatch(/slow to seal/);
    clock.advance(25_000);
    expect((await closer.run())[0]?.waitingFor).toBeNull();
    expect(await state.listHours()).toMatchObject([{ closedBy: 'vanished', vanishedInstances: ['slow'] }]);
  });

  it('vanished instance without exact backlog: waits the redelivery bound, from a consumer start or its last receipt of the hour too', async () => {
    // the whole process died 10 s before the hour's end (clock scale 1): its ledger of the hour is
    // persisted, but it may have published events its saved ledger does not list
    const death = H + HOUR_MS - 10_000;
    const clock = new ManualClock(H + HOUR_MS + 1000);
    let view: ConsumerView | null = null;
    const { state, closer } = await stateOnly(clock, { redeliveryWithinRealMs: 60_000, consumer: () => view });
    await goneWithItsLedger(state, death);
    const waiting = async () =>
      expect((await closer.run())[0]?.waitingFor).toBe(
        'bus messages a vanished instance may have published to be delivered again',
      );
    // from the death bound (last heartbeat + 30 s vanish): + 60 s redelivery + 30 s vanish
    clock.set(death + 120_000);
    // … but the process restarted slowly: its consumer of the type runs from 30 s after the hour
    view = { steadySince: H + HOUR_MS + 30_000, lastReceivedAt: null, holding: false };
    await waiting();
    clock.set(H + HOUR_MS + 119_999);
    await waiting();
    // it lags, still receiving messages of the hour, and holds some not stored yet
    view = { ...view, lastReceivedAt: H + HOUR_MS + 60_000 };
    clock.set(H + HOUR_MS + 149_999);
    await waiting();
    clock.set(H + HOUR_MS + 150_000);
    view = { ...view, holding: true };
    await waiting();
    view = { ...view, holding: false };
    expect((await closer.run())[0]?.waitingFor).toBeNull();
    expect(await state.listHours()).toMatchObject([{ closedBy: 'vanished', vanishedInstances: ['gone'] }]);
  });

  it('vanished instance without exact backlog and no consumer of the type here: the redelivery bound from the death', async () => {
    const death = H + HOUR_MS - 10_000;
    const clock = new ManualClock(death + 120_000 - 1);
    const { state, closer } = await stateOnly(clock, { redeliveryWithinRealMs: 60_000 });
    await goneWithItsLedger(state, death);
    expect((await closer.run())[0]?.waitingFor).toMatch(/to be delivered again$/);
    clock.advance(1);
    expect((await closer.run())[0]?.waitingFor).toBeNull();
  });
});

/**
 * An instance `gone` that died at `death` with an unsealed ledger of events 1–3 of hour H, all in
 * a registered raw file (what it may have published after its last saved ledger is unknown).
 */
async function goneWithItsLedger(state: StateStore, death: number): Promise<void> {
  await state.upsertInstance(instance('gone', H - HOUR_MS, death));
  await state.saveLedgers([
    { instanceId: 'gone', type: 'EndSong', hour: H, ranges: [[1, 3]], count: 3, sealed: false, updatedAt: death },
  ]);
  await state.registerFile(file('a', { gone: [[1, 3]] }));
}

/** A logger whose records the test reads. */
function capturingLogger() {
  const records: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => records.push(JSON.parse(line)) });
  return { logger, records };
}

describe('closer: loss is never silent', () => {
  // sealed ledger: 1–5 and 8–9; the registered file holds 1–5, so 8 and 9 are missing
  async function sealedWithGap(clock: ManualClock, over: Partial<CloserDeps>) {
    const log = capturingLogger();
    const x = await stateOnly(clock, { logger: log.logger, ...over });
    await x.state.upsertInstance(instance('i', H, clock.now()));
    await x.state.saveLedgers([
      {
        instanceId: 'i',
        type: 'EndSong',
        hour: H,
        ranges: [
          [1, 5],
          [8, 9],
        ],
        count: 7,
        sealed: true,
        updatedAt: H + HOUR_MS,
      },
    ]);
    await x.state.registerFile(file('a', { i: [[1, 5]] }));
    return { ...x, log };
  }
  const ERROR = 'ledger_mismatch: 2 acknowledged events are missing from the bus (i: 8-9)';

  it('exact backlog, empty: the hour fails at once, closed, with the missing ranges, and is logged', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const metrics = createEtlMetrics(new Registry());
    const empty: Backlog = { messages: 0, oldestUnackedPublishTime: null };
    const { state, closer, log } = await sealedWithGap(clock, {
      metrics,
      backlog: async () => empty,
      exactBacklog: true,
      redeliveryWithinRealMs: 60_000,
    });
    expect(await closer.run()).toEqual([{ type: 'EndSong', hour: H, waitingFor: null, failed: ERROR }]);
    expect(await state.listHours()).toMatchObject([
      { type: 'EndSong', hour: H, state: 'failed', error: ERROR, closedBy: 'sealed', ledgerTotal: 7 },
    ]);
    // closed: no raw file joins it any more (a late event goes to late/), and it is not looked at again
    expect(await state.registerFile(file('b', { i: [[8, 9]] }))).toBe('hour_closed');
    expect(await closer.run()).toEqual([]);
    expect((await metrics.hoursFailed.get()).values).toMatchObject([{ labels: { type: 'EndSong' }, value: 1 }]);
    const errors = log.records.filter((r) => r.level === 50);
    expect(errors).toMatchObject([
      { type: 'EndSong', hour: new Date(H).toISOString(), missing: 2, ranges: 'i: 8-9', rule: 'exact_backlog' },
    ]);
  });

  it('claims an hour only once it would close or fail it: an hour that waits costs the state store no write', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    let jobs: JobClaims | null = null;
    let claims = 0;
    let backlog: Backlog = { messages: 3, oldestUnackedPublishTime: H + HOUR_MS - 1 };
    const { state, closer } = await sealedWithGap(clock, {
      claim: (type, hour) => {
        claims++;
        return (jobs as JobClaims).claim({ kind: 'close', type, partition: hour });
      },
      backlog: async () => backlog,
      exactBacklog: true,
      redeliveryWithinRealMs: 60_000,
    });
    jobs = new JobClaims({
      state,
      holder: 'closer-a',
      leaseMs: 30_000,
      logger: silentLogger(),
      metrics: createEtlMetrics(new Registry()),
    });
    // the next hour: sealed, and every ledgered event in a file
    const next = H + HOUR_MS;
    await state.saveLedgers([
      { instanceId: 'i', type: 'EndSong', hour: next, ranges: [[1, 3]], count: 3, sealed: true, updatedAt: next },
    ]);
    await state.registerFile({ ...file('n', { i: [[1, 3]] }), hour: next });
    for (let i = 0; i < 3; i++) expect((await closer.run())[0]?.waitingFor).toMatch(/to be persisted/);
    expect(claims).toBe(0);
    expect(await state.listJobs({ kind: 'close' })).toEqual([]);

    // the bus is empty: the hour fails under one claim; once ended, the next hour closes under one
    backlog = { messages: 0, oldestUnackedPublishTime: null };
    clock.advance(HOUR_MS);
    expect(await closer.run()).toEqual([
      { type: 'EndSong', hour: H, waitingFor: null, failed: ERROR },
      { type: 'EndSong', hour: next, waitingFor: null },
    ]);
    expect(claims).toBe(2);
    expect(await state.listJobs({ kind: 'close' })).toMatchObject([
      { type: 'EndSong', partition: H, state: 'done', holder: 'closer-a', error: ERROR },
      { type: 'EndSong', partition: next, state: 'done', holder: 'closer-a', error: null },
    ]);
    expect(await state.listHours()).toMatchObject([
      { hour: H, state: 'failed', error: ERROR },
      { hour: next, state: 'closed' },
    ]);
  });

  it('exact backlog: reads the backlog before listing the files, so a file registered meanwhile counts', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    let state: SqliteStateStore | undefined;
    const x = await sealedWithGap(clock, {
      // the consumer registers the file holding 8–9, then acks: the backlog read sees it empty
      backlog: async () => {
        await state?.registerFile(file('b', { i: [[8, 9]] }));
        return { messages: 0, oldestUnackedPublishTime: null };
      },
      exactBacklog: true,
    });
    state = x.state;
    expect((await x.closer.run())[0]).toEqual({ type: 'EndSong', hour: H, waitingFor: null });
    expect(await x.state.listHours()).toMatchObject([{ state: 'closed', error: null, ledgerTotal: 7 }]);
  });

  it('exact backlog, not empty: the hour keeps waiting, saying why, until only newer messages are left', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    let backlog: Backlog = { messages: 4, oldestUnackedPublishTime: H + 30 * 60_000 };
    const { state, closer, log } = await sealedWithGap(clock, {
      backlog: async () => backlog,
      exactBacklog: true,
      redeliveryWithinRealMs: 60_000,
    });
    const [check] = await closer.run();
    expect(check?.waitingFor).toBe(
      '2 ledgered events to be persisted (i: 8-9); the bus still holds 4 unacked messages of the type, the oldest published 2026-11-22T10:30:00.000Z',
    );
    expect(await state.listHours()).toEqual([]);
    // however long it takes
    clock.advance(6 * HOUR_MS);
    expect((await closer.run())[0]?.waitingFor).toMatch(/^2 ledgered events to be persisted/);
    expect(await state.listHours()).toEqual([]);
    // what it waits for is logged (debug when first seen; info at most every few minutes after)
    expect(log.records.filter((r) => r.msg === 'hour closing')).toMatchObject([
      { level: 20, type: 'EndSong', waitingFor: check?.waitingFor },
    ]);
    expect(log.records.filter((r) => r.level >= 40)).toEqual([]);
    // traffic goes on, but every unacked message was published after the ledger's last update
    // (plus the vanish time): nothing ledgered is on the bus any more
    backlog = { messages: 4, oldestUnackedPublishTime: H + HOUR_MS + 30_001 };
    expect((await closer.run())[0]?.failed).toBe(ERROR);
    expect(await state.listHours()).toMatchObject([{ state: 'failed', error: ERROR }]);
  });

  it('without exact backlog: fails only once the redelivery bound has passed and the backlog figure is 0', async () => {
    // ledger sealed at the hour's end (H + 1h); first seen missing at H + 1h + 1 s
    const clock = new ManualClock(H + HOUR_MS + 1000);
    let estimate: Backlog = { messages: 0, oldestUnackedPublishTime: null };
    const { state, closer } = await sealedWithGap(clock, {
      backlog: async () => estimate,
      exactBacklog: false,
      redeliveryWithinRealMs: 60_000,
      consumer: () => ({ steadySince: H, lastReceivedAt: null, holding: false }),
    });
    // bound: 60 s redelivery + 30 s vanish after the closer first saw the events missing
    const failAt = H + HOUR_MS + 1000 + 90_000;
    expect((await closer.run())[0]?.waitingFor).toBe(
      `2 ledgered events to be persisted (i: 8-9); counted as lost from ${new Date(failAt).toISOString()} if nothing of the hour arrives until then`,
    );
    clock.set(failAt - 1);
    expect((await closer.run())[0]?.waitingFor).toMatch(/^2 ledgered events to be persisted/);
    expect(await state.listHours()).toEqual([]);
    // past the bound, but the bus reports messages: still waiting
    clock.set(failAt);
    estimate = { messages: 3, oldestUnackedPublishTime: H };
    expect((await closer.run())[0]?.waitingFor).toBe(
      '2 ledgered events to be persisted (i: 8-9); the bus reports 3 unacked messages of the type',
    );
    estimate = { messages: 0, oldestUnackedPublishTime: null };
    expect((await closer.run())[0]?.failed).toBe(ERROR);
    expect(await state.listHours()).toMatchObject([{ state: 'failed', error: ERROR, closedBy: 'sealed' }]);
  });

  it('without exact backlog: any sign of life of the hour, or a consumer restarting or failing, restarts the bound', async () => {
    const clock = new ManualClock(H + 2 * HOUR_MS);
    const t0 = clock.now();
    let view: ConsumerView | null = { steadySince: H, lastReceivedAt: null, holding: false };
    const { state, closer } = await sealedWithGap(clock, { redeliveryWithinRealMs: 60_000, consumer: () => view });
    const waiting = async () =>
      expect((await closer.run())[0]?.waitingFor).toMatch(/^2 ledgered events to be persisted/);
    // the consumer still receives messages of the hour (it lags): 90 s from the last one
    clock.set(t0 + 50_000);
    view = { ...view, lastReceivedAt: clock.now() };
    await waiting();
    clock.set(t0 + 139_999);
    await waiting();
    // … and holds some not stored yet
    clock.set(t0 + 140_000);
    view = { ...view, holding: true };
    expect((await closer.run())[0]?.waitingFor).toMatch(/the consumer holds messages of the hour not stored yet$/);
    // it stores them: a raw file registered (not holding the missing ones) counts from its commit
    view = { ...view, holding: false };
    await state.registerFile({ ...file('late-file', { i: [[2, 2]] }), committedAt: clock.now() });
    clock.set(t0 + 229_999);
    await waiting();
    // its commits fail (it reports "now" while failing), then recover
    view = { ...view, steadySince: clock.now() };
    clock.set(t0 + 319_998);
    await waiting();
    // no consumer of the type in this process: it cannot tell, so it waits
    const kept = view;
    view = null;
    clock.set(t0 + 10 * HOUR_MS);
    expect((await closer.run())[0]?.waitingFor).toMatch(/no consumer of the type runs here to tell$/);
    expect(await state.listHours()).toEqual([]);
    view = kept;
    expect((await closer.run())[0]?.failed).toBe(ERROR);
  });

  it('waits (never fails) when the bus cannot say, or while the backlog cannot be read', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const { state, closer } = await sealedWithGap(clock, {
      backlog: async () => {
        throw new Error('bus down');
      },
      exactBacklog: true,
      redeliveryWithinRealMs: 60_000,
    });
    expect((await closer.run())[0]?.waitingFor).toBe(
      '2 ledgered events to be persisted (i: 8-9); the bus backlog could not be read',
    );
    const bare = await sealedWithGap(clock, {}); // neither backlog nor a redelivery bound
    clock.advance(24 * HOUR_MS);
    expect((await bare.closer.run())[0]?.waitingFor).toBe('2 ledgered events to be persisted (i: 8-9)');
    expect(await state.listHours()).toEqual([]);
    expect(await bare.state.listHours()).toEqual([]);
  });

  it('vanished instances: fails once the rule has finished with them and their events are not on the bus', async () => {
    const clock = new ManualClock(H + HOUR_MS + 1000);
    const { state, closer } = await stateOnly(clock, {
      backlog: async () => ({ messages: 0, oldestUnackedPublishTime: null }),
      exactBacklog: true,
    });
    await state.upsertInstance(instance('gone', H - HOUR_MS, H + 40 * 60_000));
    await state.saveLedgers([
      { instanceId: 'gone', type: 'EndSong', hour: H, ranges: [[1, 3]], count: 3, sealed: false, updatedAt: H },
    ]);
    await state.registerFile(file('a', { gone: [[2, 2]] }));
    expect((await closer.run())[0]?.failed).toBe(
      'ledger_mismatch: 2 acknowledged events are missing from the bus (gone: 1, 3)',
    );
    expect(await state.listHours()).toMatchObject([
      { state: 'failed', closedBy: 'vanished', vanishedInstances: ['gone'], ledgerTotal: 3 },
    ]);
  });

  it('in the ETL on the embedded bus: a sealed ledger naming events no file holds fails the hour at once', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await startEtlHarness({ clock });
    cleanups.push(() => x.close());
    await x.store.upsertInstance(instance('ingress-z', H, H + 2000, H + 2000));
    await x.store.saveLedgers([
      { instanceId: 'ingress-z', type: 'EndSong', hour: H, ranges: [[1, 3]], count: 3, sealed: true, updatedAt: H },
    ]);
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => (await x.store.listHours({ type: 'EndSong', states: ['failed'] })).length === 1);
    const [failed] = await x.store.listHours({ type: 'EndSong', states: ['failed'] });
    expect(failed?.error).toBe('ledger_mismatch: 3 acknowledged events are missing from the bus (ingress-z: 1-3)');
    expect(await listAll(x.objects, 'final/EndSong/')).toEqual([]);
    const violations = await x.etl.metrics.hoursFailed.get();
    expect(violations.values.find((v) => v.labels.type === 'EndSong')?.value).toBe(1);
  });

  it('a daily type: an hour failed by the closer keeps its whole day from being published', async () => {
    const clock = new ManualClock(H + 60_000);
    const x = await startEtlHarness({ clock });
    cleanups.push(() => x.close());
    const user = {
      type: 'UserCreate',
      id: 'u-1',
      payload: {
        userId: 'u1',
        country: 'SE',
        signupMethod: 'EMAIL',
        birthYear: null,
        referrer: null,
        marketingOptIn: true,
      },
    };
    expect((await x.post([user])).body.accepted).toBe(1);
    await x.store.upsertInstance(instance('ingress-z', H, H + 2000, H + 2000));
    await x.store.saveLedgers([
      {
        instanceId: 'ingress-z',
        type: 'UserCreate',
        hour: H + HOUR_MS,
        ranges: [[1, 2]],
        count: 2,
        sealed: true,
        updatedAt: H,
      },
    ]);
    clock.set(H + 2 * HOUR_MS + 1);
    await x.until(async () => {
      const hours = await x.store.listHours({ type: 'UserCreate' });
      return hours.some((r) => r.hour === H && r.state === 'closed') && hours.some((r) => r.state === 'failed');
    });
    clock.set(Date.UTC(2026, 10, 23) + 1);
    await x.until(async () => (await x.store.listHours({ type: 'UserCreate' })).every((r) => r.state === 'failed'));
    const hours = await x.store.listHours({ type: 'UserCreate' });
    expect(hours.find((r) => r.hour === H)?.error).toBe(
      'ledger_mismatch: hour 2026-11-22T11 of the day failed: ledger_mismatch: 2 acknowledged events are missing from the bus (ingress-z: 1-2)',
    );
    expect(await listAll(x.objects, 'final/UserCreate/')).toEqual([]);
  });
});

describe('dedup ledger re-check', () => {
  it('refuses to publish an hour whose raw files lack a ledgered event, and marks it failed', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await startEtlHarness({ clock });
    cleanups.push(() => x.close());
    // a raw file that claims sequences 1–3 of an instance but holds only 1 and 3
    const type = x.catalog.get('EndSong');
    if (type === undefined) throw new Error('EndSong missing');
    const w = new ContainerWriter(rawSchemaFor(type), { codec: 'deflate', blockBytes: 1024 });
    const payload = type.versions[1]?.type.toBuffer(endSong()) as Buffer;
    for (const seq of [1, 3]) {
      const before = w.target.pos;
      writeEnvelope(w.target, {
        id: `ev-${seq}`,
        arrivalTime: H + 1000,
        ingressInstance: 'ingress-z',
        sequence: seq,
        clientTime: null,
        writerVersion: 2,
      });
      w.target.writeBytes(payload);
      w.commitRecord(w.target.pos - before);
    }
    const name = `raw/EndSong/${hourPath(H)}/tampered.avro`;
    await x.objects.put(name, await w.finish());
    await x.store.upsertInstance(instance('ingress-z', H, H, H + 2000));
    await x.store.saveLedgers([
      { instanceId: 'ingress-z', type: 'EndSong', hour: H, ranges: [[1, 3]], count: 3, sealed: true, updatedAt: 0 },
    ]);
    await x.store.registerFile({ ...file(name, { 'ingress-z': [[1, 3]] }), events: 3 });
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => (await x.store.listHours({ type: 'EndSong', states: ['failed'] })).length === 1);
    const [failed] = await x.store.listHours({ type: 'EndSong', states: ['failed'] });
    expect(failed?.error).toMatch(/^ledger_mismatch: 1 ledgered events are not in the raw files \(ingress-z: 2\)/);
    expect(await listAll(x.objects, 'final/EndSong/')).toEqual([]);
    const violations = await x.etl.metrics.hoursFailed.get();
    expect(violations.values.find((v) => v.labels.type === 'EndSong')?.value).toBe(1);
  });

  it('recognises a partition an earlier attempt already published, and removes files no manifest lists', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await startEtlHarness({ clock });
    cleanups.push(() => x.close());
    await x.post(Array.from({ length: 20 }, (_, i) => ({ type: 'EndSong', id: `r-${i}`, payload: endSong() })));
    clock.set(H + HOUR_MS + 1);
    await x.until(async () =>
      (await x.store.listHours({ type: 'EndSong', states: ['published'] })).some((r) => r.hour === H),
    );
    const prefix = `final/EndSong/${hourPath(H)}/`;
    const first = JSON.parse((await x.objects.get(`${prefix}_manifest.json`)).toString()) as Manifest;
    const type = x.catalog.get('EndSong');
    if (type === undefined) throw new Error('EndSong missing');
    const hours = await x.store.listHours({ type: 'EndSong', from: H, to: H + 1 });
    const again = await runDedup(
      { type, start: H, daily: false, hours, earlier: [] },
      {
        objects: x.objects,
        state: x.store,
        clock,
        logger: silentLogger(),
        config: {
          maxIdsInMemory: 1000,
          duckdbMemoryBytes: 128 << 20,
          duckdbThreads: 1,
          rowGroupBytes: 1 << 20,
          workers: 2,
          workDir: join(x.dir, 'work'),
        },
      },
    );
    expect(again.status).toBe('published');
    expect(again.status === 'published' && again.manifest).toEqual(first);
    const names = (await listAll(x.objects, prefix)).map((o) => o.name).sort();
    // the data files and id index of the manifest that stands
    expect(names).toEqual(
      [...first.files.map((f) => f.name), first.idIndex?.name as string, `${prefix}_manifest.json`].sort(),
    );
  });
});

describe('isolation', () => {
  it("keeps other types' hours closing and publishing while one type's writes fail and another floods", async () => {
    let failPageView = true;
    const wrap = (inner: ObjectStore): ObjectStore =>
      overriding(inner, {
        put: async (name, body) => {
          if (failPageView && name.startsWith('raw/PageView/')) {
            throw new ObjectStoreFailed(
              { operation: 'put', name },
              { cause: new Error('ENOSPC: no space left on device') },
            );
          }
          return inner.put(name, body);
        },
      });
    const clock = new ManualClock(H + 10 * 60_000);
    const x: EtlHarness = await startEtlHarness({ clock, wrapObjects: wrap, etl: { retryMaxRealMs: 100 } });
    cleanups.push(() => x.close());
    for (let b = 0; b < 20; b++) {
      await x.post(
        Array.from({ length: 100 }, (_, i) => ({ type: 'EndSong', id: `flood-${b}-${i}`, payload: endSong() })),
      );
    }
    await x.post(Array.from({ length: 100 }, (_, i) => ({ type: 'PageView', id: `pv-${i}`, payload: pageView() })));
    await x.post(
      Array.from({ length: 100 }, (_, i) => ({
        type: 'UserCreate',
        id: `uc-${i}`,
        payload: userCreate({ userId: `u${i}` }),
      })),
    );
    // every EndSong and UserCreate event is stored before the hour ends (a slow machine may still be
    // receiving them, and a receipt after the clock moves would change what is asserted below)
    const committed = async (type: string): Promise<number> =>
      (await x.etl.metrics.eventsCommitted.get()).values.find((v) => v.labels.type === type)?.value ?? 0;
    await x.until(async () => (await committed('EndSong')) === 2000 && (await committed('UserCreate')) === 100);
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => {
      const hours = await x.store.listHours({ from: H, to: H + 1 });
      return (
        hours.some((r) => r.type === 'EndSong' && r.state === 'published') && hours.some((r) => r.type === 'UserCreate')
      );
    });
    expect((await x.store.listHours({ type: 'PageView' })).length).toBe(0);
    expect(await x.query('SELECT count(*) n FROM EndSong')).toEqual([{ n: 2000 }]);
    const failures = await x.etl.metrics.commitFailures.get();
    expect(failures.values.find((v) => v.labels.type === 'PageView')?.value).toBeGreaterThan(0);
    // a consumer whose commits fail is not steady (the closer's redelivery bound counts from then)
    expect(x.etl.consumerFor('PageView')?.steadySince()).toBe(clock.now());
    expect(x.etl.consumerFor('EndSong')?.steadySince()).toBe(H + 10 * 60_000);
    // and holds the messages it could not store; EndSong's are all stored
    expect(x.etl.consumerFor('PageView')?.hourView(H)).toEqual({ lastReceivedAt: expect.any(Number), holding: true });
    expect(x.etl.consumerFor('EndSong')?.hourView(H)).toEqual({ lastReceivedAt: H + 10 * 60_000, holding: false });
    // the disk recovers: nothing was lost, PageView's hour completes
    failPageView = false;
    await x.until(async () =>
      (await x.store.listHours({ type: 'PageView', states: ['published'] })).some((r) => r.hour === H),
    );
    expect(await x.query('SELECT count(*) n, count(DISTINCT event_id) d FROM PageView')).toEqual([{ n: 100, d: 100 }]);
  });
});
