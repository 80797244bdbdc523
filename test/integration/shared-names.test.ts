/**
 * Names, keys, locks and scratch space that are unique per process or per instance, where two
 * topics, types, pipelines or processes meet: each test shows that one of them does not take
 * over, or wait for, another's (the embedded bus once judged one topic's live segment finished
 * because another topic's segment had the same name).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pipelineStateStore, publishingBuses } from '../../cli/parallel.js';
import { objectStoreFor } from '../../cli/pipeline.js';
import { ManualClock, SystemClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { PublishFailed } from '../../core/errors.js';
import type { EventType } from '../../core/event-types.js';
import { HOUR_MS, hourPath } from '../../core/hours.js';
import { silentLogger } from '../../core/logger.js';
import type { Bus, DeliveredMessage, OutgoingMessage } from '../../core/ports/bus.js';
import { listAll, type ObjectStore } from '../../core/ports/object-store.js';
import { type DedupResult, runDedup } from '../../etl/dedup.js';
import { etlWorkDir } from '../../etl/service.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { KafkaBus } from '../../infra/bus/kafka/kafka-bus.js';
import { SpooledBus } from '../../infra/bus/parallel/spooled-bus.js';
import { PostgresStateStore } from '../../infra/state/postgres/postgres-state-store.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { awaitLine, stopChild } from '../fixtures/child.js';
import type { Fixtures } from '../fixtures/global-setup.js';
import { useFixture } from '../fixtures/use-fixture.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong, pageView } from '../support/ingress-harness.js';
import { overriding } from '../support/overriding.js';
import { SwitchableBus } from '../support/switchable-bus.js';

const ROOT = resolve(import.meta.dirname, '../..');
const clock = new SystemClock();
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-shared-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function embedded(dataDir: string): EmbeddedBus {
  const bus = new EmbeddedBus({ dataDir, clock, retentionSweepMs: 0, pollIntervalMs: 50, consumerLockWaitMs: 200 });
  cleanups.push(() => bus.close());
  return bus;
}

function messages(tag: string, n: number): OutgoingMessage[] {
  return Array.from({ length: n }, (_, i) => ({ data: Buffer.from(`${tag}-${i}`), attributes: { id: `${tag}-${i}` } }));
}

/** Collects (and acks) the ids a subscription delivers, until `close`. */
async function collect(bus: Bus, subscription: string): Promise<{ ids: Map<string, number>; at: Map<string, number> }> {
  const ids = new Map<string, number>();
  const at = new Map<string, number>();
  const s = await bus.subscribe(subscription, (ms: DeliveredMessage[]) => {
    for (const m of ms) {
      const id = m.attributes.id as string;
      ids.set(id, (ids.get(id) ?? 0) + 1);
      if (!at.has(id)) at.set(id, Date.now());
      m.ack();
    }
  });
  cleanups.push(() => s.close());
  return { ids, at };
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

/** A bus that refuses publishes to the given topics (counting the attempts), as a bus lacking those topics does. */
class RefusingBus extends SwitchableBus {
  readonly attempts = new Map<string, number>();
  constructor(
    inner: Bus,
    private readonly refused: ReadonlySet<string>,
  ) {
    super(inner);
  }
  override async publish(topic: string, ms: readonly OutgoingMessage[]): Promise<void> {
    this.attempts.set(topic, (this.attempts.get(topic) ?? 0) + 1);
    if (this.refused.has(topic)) throw new PublishFailed({ topic }, { cause: new Error('refused by the test') });
    await super.publish(topic, ms);
  }
}

describe('parallel run: the spool', () => {
  it("one topic the second bus refuses does not hold up another topic's forwarding (backoff is per topic)", async () => {
    const target = embedded(await tempDir());
    const refusing = new RefusingBus(target, new Set(['t.stuck']));
    const spooled = new SpooledBus(embedded(await tempDir()), refusing, silentLogger());
    cleanups.push(() => spooled.close());
    await spooled.start();
    await spooled.createTopic('t.stuck');
    await spooled.createTopic('t.flowing');
    await target.createSubscription('t.flowing.s', 't.flowing');
    const got = await collect(target, 't.flowing.s');

    await spooled.publish('t.stuck', messages('stuck', 1));
    // four refusals in a row: the next attempt of that topic is 2–4 s away
    await until(() => (refusing.attempts.get('t.stuck') ?? 0) >= 4);
    const sent = Date.now();
    await spooled.publish('t.flowing', messages('flowing', 5));
    await until(() => got.ids.size === 5, 10_000);
    const latest = Math.max(...got.at.values());
    expect(latest - sent).toBeLessThan(1_500);
  }, 30_000);

  it('a second process spooling into the same data dir starts, its events are forwarded, and it takes over forwarding when the first stops', async () => {
    const spoolDir = await tempDir();
    const targetDir = await tempDir();
    const target = embedded(targetDir);
    await target.createTopic('t.events');
    await target.createSubscription('t.events.s', 't.events');

    // another process (say `hourglass dev`) spools into the same data dir and forwards t.events
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/spool-forwarder.ts', spoolDir, targetDir, 't.events'],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    ) as ChildProcessWithoutNullStreams;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    cleanups.push(() => stopChild(child));
    await awaitLine(child, {
      name: 'spool forwarder',
      stream: 'stdout',
      pattern: /^(forwarding)$/m,
      timeoutMs: 20_000,
    });

    // this process (say `hourglass bridge`) spools into it too, leaving t.events to the forwarder there
    const spooled = new SpooledBus(embedded(spoolDir), target, silentLogger());
    cleanups.push(() => spooled.close());
    await spooled.start();
    const got = await collect(target, 't.events.s');
    await spooled.publish('t.events', messages('first', 10));
    await until(() => got.ids.size === 10);

    // the other process dies: this one forwards what is spooled from then on
    child.kill('SIGKILL');
    await exited;
    await spooled.publish('t.events', messages('after', 10));
    await until(() => got.ids.size === 20, 20_000);
    expect([...got.ids.keys()].sort()).toEqual(
      [...messages('first', 10), ...messages('after', 10)].map((m) => m.attributes.id).sort(),
    );
  }, 60_000);
});

const H = Date.UTC(2026, 10, 22, 10);

/** An ETL harness on a manual clock in hour H, closed after the test. */
async function etlHarness(clock: ManualClock): Promise<EtlHarness> {
  const x = await startEtlHarness({ clock });
  cleanups.push(() => x.close());
  return x;
}

function typeOf(x: EtlHarness, name: string): EventType {
  const t = x.catalog.get(name);
  if (t === undefined) throw new Error(`${name} missing`);
  return t;
}

describe('ETL: raw files and dedup scratch space of several types in one process', () => {
  it("two types' raw files, written by the same consumer process at the same clock time, get names of their own and both register", async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await etlHarness(clock);
    const events = [
      ...Array.from({ length: 30 }, (_, i) => ({ type: 'EndSong', id: `same-${i}`, payload: endSong() })),
      ...Array.from({ length: 20 }, (_, i) => ({ type: 'PageView', id: `same-${i}`, payload: pageView() })),
    ];
    expect((await x.post(events)).body.accepted).toBe(50);
    const files = async (type: string) => x.store.listFiles(type, H, 'raw');
    const count = async (type: string) => (await files(type)).reduce((n, f) => n + f.events, 0);
    await until(async () => (await count('EndSong')) === 30 && (await count('PageView')) === 20);

    const endSongs = await files('EndSong');
    const pageViews = await files('PageView');
    // one consumer process wrote both types (its id is in every name) at one time of the clock
    for (const f of [...endSongs, ...pageViews]) {
      expect(f.consumer).toBe(x.etl.id);
      expect(f.committedAt).toBe(H + 10 * 60_000);
      expect(f.name).toContain(x.etl.id);
    }
    // each name is under its own type: a shared name would be registered once (the state store
    // keys files by name) and one type's events would be missing from its hour
    expect(endSongs.every((f) => f.name.startsWith(`raw/EndSong/${hourPath(H)}/`))).toBe(true);
    expect(pageViews.every((f) => f.name.startsWith(`raw/PageView/${hourPath(H)}/`))).toBe(true);
    const names = [...endSongs, ...pageViews].map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    const stored = new Set(
      [...(await listAll(x.objects, 'raw/EndSong/')), ...(await listAll(x.objects, 'raw/PageView/'))].map(
        (o) => o.name,
      ),
    );
    expect([...stored].sort()).toEqual([...names].sort());
  });

  it('two dedup jobs of different types (and two attempts of one partition) running at once use work dirs of their own', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await etlHarness(clock);
    const events = [
      ...Array.from({ length: 40 }, (_, i) => ({ type: 'EndSong', id: `d-${i % 30}`, payload: endSong() })),
      ...Array.from({ length: 25 }, (_, i) => ({ type: 'PageView', id: `d-${i}`, payload: pageView() })),
    ];
    expect((await x.post(events)).body.accepted).toBe(65);
    const count = async (type: string) => (await x.store.listFiles(type, H, 'raw')).reduce((n, f) => n + f.events, 0);
    await until(async () => (await count('EndSong')) === 40 && (await count('PageView')) === 25);
    clock.set(H + HOUR_MS + 1);
    for (const [type, ledgerTotal] of [
      ['EndSong', 40],
      ['PageView', 25],
    ] as const) {
      await x.store.closeHour({
        type,
        hour: H,
        closedAt: clock.now(),
        closedBy: 'sealed',
        vanishedInstances: [],
        ledgerTotal,
      });
    }

    // every job stops before its first upload until all have reached it: all run at once
    const workDir = join(x.dir, 'work');
    const gate = (jobs: number) => {
      const dirs = new Set<string>();
      let open!: () => void;
      const all = new Promise<void>((r) => {
        open = r;
      });
      const objects = overriding(x.objects, {
        putFile: async (name: string, path: string) => {
          dirs.add(dirname(path));
          if (dirs.size >= jobs) open();
          await Promise.race([all, sleep(10_000)]);
          return x.objects.putFile(name, path);
        },
      });
      return { dirs, objects };
    };
    const dedup = async (type: string, objects: ObjectStore): Promise<DedupResult> =>
      runDedup(
        {
          type: typeOf(x, type),
          start: H,
          daily: false,
          hours: await x.store.listHours({ type, from: H, to: H + 1 }),
          earlier: [],
        },
        {
          objects,
          state: x.store,
          clock,
          logger: silentLogger(),
          config: {
            maxIdsInMemory: 1000,
            duckdbMemoryBytes: 128 << 20,
            duckdbThreads: 1,
            rowGroupBytes: 1 << 20,
            workers: 0,
            workDir,
          },
        },
      );

    const types = gate(2);
    const [a, b] = await Promise.all([dedup('EndSong', types.objects), dedup('PageView', types.objects)]);
    expect([...types.dirs].map((d) => d.slice(workDir.length + 1)).sort()).toEqual([
      expect.stringMatching(new RegExp(`^dedup-${process.pid}-EndSong-${H}-[0-9a-z]+-[0-9a-f]+$`)),
      expect.stringMatching(new RegExp(`^dedup-${process.pid}-PageView-${H}-[0-9a-z]+-[0-9a-f]+$`)),
    ]);
    expect(a.status === 'published' && a.manifest).toMatchObject({ type: 'EndSong', rawEventsIn: 40, eventsOut: 30 });
    expect(b.status === 'published' && b.manifest).toMatchObject({ type: 'PageView', rawEventsIn: 25, eventsOut: 25 });
    expect(await readdir(workDir)).toEqual([]);

    // two attempts of the same partition at once: separate work dirs, one manifest stands
    const attempts = gate(2);
    const [c, d] = await Promise.all([dedup('EndSong', attempts.objects), dedup('EndSong', attempts.objects)]);
    expect(attempts.dirs.size).toBe(2);
    expect(c.status === 'published' && d.status === 'published' && c.manifest).toEqual(
      d.status === 'published' && d.manifest,
    );
    const prefix = `final/EndSong/${hourPath(H)}/`;
    const kept = c.status === 'published' ? [...c.manifest.files.map((f) => f.name), c.manifest.idIndex?.name] : [];
    expect((await listAll(x.objects, prefix)).map((o) => o.name).sort()).toEqual(
      [...kept, `${prefix}_manifest.json`].sort(),
    );
    expect(await readdir(workDir)).toEqual([]);
  });
});

describe('parallel run: the two pipelines keep their data apart', () => {
  it('embedded main and second bus with a spool: buses, spool, work dirs, objects and state are separate', async () => {
    const dir = await tempDir();
    const config = loadConfig({
      overrides: { dataDir: dir, 'parallel.name': 'two', 'parallel.bus': 'embedded', 'parallel.ack': 'primary' },
    });
    const { bus, second } = await publishingBuses(config, clock, silentLogger(), { spool: true });
    cleanups.push(() => bus.close());
    if (second === null) throw new Error('no second bus');
    await bus.createTopic('t.events');
    await bus.createSubscription('t.events.s', 't.events');
    const onMain = await collect(bus, 't.events.s');
    const onSecond = await collect(second, 't.events.s');
    await bus.publish('t.events', messages('p', 5));
    await until(() => onMain.ids.size === 5 && onSecond.ids.size === 5);
    await sleep(200);
    expect([...onMain.ids.values()]).toEqual([1, 1, 1, 1, 1]);
    expect([...onSecond.ids.values()]).toEqual([1, 1, 1, 1, 1]);

    // each bus has its own log and subscriptions
    const segments = (root: string) => readdir(join(root, 'bus', 'topics', 't.events', 'segments'));
    const subscriptions = (root: string) => readdir(join(root, 'bus', 'subscriptions'));
    const mainRoot = dir;
    const secondRoot = join(dir, 'pipelines', 'two');
    const spoolRoot = join(dir, 'pipelines', 'two', 'spool');
    expect((await segments(mainRoot)).length).toBeGreaterThan(0);
    expect((await segments(secondRoot)).length).toBeGreaterThan(0);
    expect((await segments(spoolRoot)).length).toBeGreaterThan(0);
    expect(await subscriptions(mainRoot)).toEqual(['t.events.s']);
    expect(await subscriptions(secondRoot)).toEqual(['t.events.s']);
    expect(await subscriptions(spoolRoot)).toEqual(['t.events.forward']);

    // dedup scratch space, objects and ETL state
    expect(etlWorkDir(config.dataDir)).not.toBe(etlWorkDir(secondRoot));
    const mainObjects = await objectStoreFor(config);
    const secondObjects = await objectStoreFor(config, 'two');
    await secondObjects.put(`raw/EndSong/${hourPath(H)}/x.avro`, Buffer.from('second'));
    await secondObjects.put(`final/EndSong/${hourPath(H)}/_manifest.json`, Buffer.from('{}'));
    expect(await listAll(mainObjects, 'raw/')).toEqual([]);
    expect(await listAll(mainObjects, 'final/')).toEqual([]);
    const shared = new SqliteStateStore(join(dir, 'state.sqlite'));
    cleanups.push(() => shared.close());
    const own = await pipelineStateStore(config, 'two', shared);
    cleanups.push(() => own.close());
    const file = {
      type: 'EndSong',
      hour: H,
      kind: 'raw' as const,
      name: `raw/EndSong/${hourPath(H)}/x.avro`,
      events: 1,
      bytes: 6,
      ranges: {},
      consumer: 'c',
      committedAt: 0,
    };
    expect(await own.registerFile(file)).toBe('registered');
    expect(await shared.listFiles('EndSong', H, 'raw')).toEqual([]);
    expect(await own.listFiles('EndSong', H, 'raw')).toHaveLength(1);
  });
});

describe('kafka: two deployments on one cluster', () => {
  let cluster: Fixtures['kafka'];
  beforeAll(async () => {
    cluster = await useFixture('kafka');
  });
  const kafka = (topicPrefix: string) => {
    const bus = new KafkaBus({
      brokers: cluster.brokers,
      clock,
      topicPrefix,
      idempotent: cluster.idempotence,
      sessionTimeoutRealMs: 6_000,
      rebalanceTimeoutRealMs: 2_000,
    });
    cleanups.push(async () => {
      for (const t of await bus.listTopics()) await bus.deleteTopic(t);
      await bus.close();
    });
    return bus;
  };

  it('with their own topic prefixes, the same topic and subscription names: catalogs, topics, groups and backlogs stay apart', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const a = kafka(`hg-${tag}-a-`);
    const b = kafka(`hg-${tag}-b-`);
    await Promise.all(
      [a, b].map(async (bus) => {
        await bus.createTopic('t.events');
        await bus.createSubscription('t.events.etl', 't.events');
      }),
    );
    await a.publish('t.events', messages('a', 7));
    await b.publish('t.events', messages('b', 3));
    expect(await a.backlog('t.events.etl')).toMatchObject({ messages: 7 });
    expect(await b.backlog('t.events.etl')).toMatchObject({ messages: 3 });
    const [onA, onB] = await Promise.all([collect(a, 't.events.etl'), collect(b, 't.events.etl')]);
    await until(() => onA.ids.size === 7 && onB.ids.size === 3, 30_000);
    await sleep(300);
    expect([...onA.ids.keys()].sort()).toEqual(
      messages('a', 7)
        .map((m) => m.attributes.id)
        .sort(),
    );
    expect([...onB.ids.keys()].sort()).toEqual(
      messages('b', 3)
        .map((m) => m.attributes.id)
        .sort(),
    );
    // a's acks are committed in a's group only
    await until(async () => (await a.backlog('t.events.etl')).messages === 0, 10_000);
    await a.deleteSubscription('t.events.etl');
    expect(await b.listTopics()).toEqual(['t.events']);
    await expect(a.backlog('t.events.etl')).rejects.toMatchObject({ code: 'subscription_not_found' });
    await until(async () => (await b.backlog('t.events.etl')).messages === 0, 10_000);
  }, 60_000);
});

describe('object store and state store: concurrent writers, several pipelines', () => {
  it('filesystem store: concurrent puts from one process stage under names of their own and all land intact', async () => {
    const root = await tempDir();
    const store = new FsObjectStore(root);
    const bodies = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * 1024 + i, i));
    await Promise.all(bodies.map((b, i) => store.put(`raw/T${i % 2}/date=2026-11-22/hour=10/f-${i}.avro`, b)));
    for (const [i, b] of bodies.entries()) {
      expect((await store.get(`raw/T${i % 2}/date=2026-11-22/hour=10/f-${i}.avro`)).equals(b)).toBe(true);
    }
    expect(await readdir(join(root, '.staging'))).toEqual([]);
  });

  it("postgres: the main and the second pipeline's stores (two schemas, one database) close and register the same hour on their own", async () => {
    const url = await useFixture('databaseUrl');
    const schema = `t_${Math.random().toString(36).slice(2, 10)}`;
    const config = loadConfig({
      overrides: {
        dataDir: await tempDir(),
        'state.backend': 'postgres',
        'state.url': url,
        'state.schema': schema,
        'parallel.name': 'two',
        'parallel.bus': 'embedded',
      },
    });
    const shared = await PostgresStateStore.open({ url, schema });
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${schema}_two CASCADE`);
      await c.end();
    });
    cleanups.push(() => shared.close());
    const own = await pipelineStateStore(config, 'two', shared);
    cleanups.push(() => own.close());
    const file = (name: string, hour: number) => ({
      type: 'EndSong',
      hour,
      kind: 'raw' as const,
      name,
      events: 1,
      bytes: 1,
      ranges: {},
      consumer: 'c',
      committedAt: 0,
    });
    const close = (hour: number) => ({
      type: 'EndSong',
      hour,
      closedAt: hour + HOUR_MS,
      closedBy: 'sealed' as const,
      vanishedInstances: [],
      ledgerTotal: 0,
    });
    // the main pipeline closed the hour: the second one's raw files still register into it
    expect(await shared.closeHour(close(H))).toBe(true);
    expect(await shared.registerFile(file('raw/EndSong/main.avro', H))).toBe('hour_closed');
    expect(await own.registerFile(file('raw/EndSong/second.avro', H))).toBe('registered');
    expect(await own.closeHour(close(H))).toBe(true);
    // both pipelines registering and closing one (type, hour) at once: the advisory lock key they
    // share (it does not name the schema) only makes them take turns
    const next = H + HOUR_MS;
    const results = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => shared.registerFile(file(`raw/EndSong/m-${i}.avro`, next))),
      ...Array.from({ length: 10 }, (_, i) => own.registerFile(file(`raw/EndSong/s-${i}.avro`, next))),
    ]);
    expect(results.every((r) => r === 'registered')).toBe(true);
    expect(await Promise.all([shared.closeHour(close(next)), own.closeHour(close(next))])).toEqual([true, true]);
    const names = (prefix: string) => Array.from({ length: 10 }, (_, i) => `raw/EndSong/${prefix}-${i}.avro`).sort();
    expect((await shared.listFiles('EndSong', next, 'raw')).map((f) => f.name)).toEqual(names('m'));
    expect((await own.listFiles('EndSong', next, 'raw')).map((f) => f.name)).toEqual(names('s'));
    expect((await shared.listHours({ type: 'EndSong' })).map((h) => h.hour)).toEqual([H, next]);
    expect((await own.listHours({ type: 'EndSong' })).map((h) => h.hour)).toEqual([H, next]);
  });
});
