/**
 * (g) The pipeline on the Google Cloud Pub/Sub bus, against Google's in-memory fake `pstest`
 * (test/fixtures/pubsub.ts builds and starts it; `PUBSUB_EMULATOR_HOST`, when set, is used instead).
 * The figures are the fake's, not the cloud service's: the fake keeps every message in one
 * process, behind one lock, and delivers as described at CONSUMER_PULL_STREAMS.
 *
 *  1. ingress: `hourglass dev --no-etl` on Pub/Sub in its own process, loaded over loopback HTTP
 *     by `hourglass send` at max rate, batches of 100, as (b): a warm-up, then the best of two
 *     8-second runs. The three subscriptions the pipeline provisions have no consumer here; their
 *     backlog is dropped before each run (deleted and created again), so that every run starts
 *     alike (the fake scans a subscription's whole backlog every 10 ms under its lock).
 *  2. consumer: ~500,000 EndSong messages published into the fake, then the ETL consumer of that
 *     type (in-process, as (c)) on a PubSubBus with `pullStreams` CONSUMER_PULL_STREAMS drains
 *     them into committed raw files.
 *  3. keep-up: `hourglass dev` (ingress + ETL in one process) on Pub/Sub, `hourglass send` at max
 *     rate for KEEP_UP_SECONDS; accepted and committed events from its `/metrics`, until every
 *     accepted event is committed or KEEP_UP_GRACE_SECONDS after sending ended. `hourglass dev`
 *     builds its bus with the default `pullStreams` (cli/pipeline.ts `busFor` passes none).
 *  4. keep-up, tuned: the same load on `hourglass dev --no-etl`, with the ETL consumers of the
 *     three types in this process on a PubSubBus with CONSUMER_PULL_STREAMS streams.
 *
 * Each part has a topic prefix of its own and deletes its topics and subscriptions at its end.
 * CPU time of every process involved (ingress, load generator, fake, this process, the rest of
 * the machine) is sampled from /proc during the measured windows.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { SystemClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { type EventType, loadEventTypes, subscriptionFor, topicFor } from '../core/event-types.js';
import { hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import { type ConsumerConfig, TypeConsumer } from '../etl/consumer.js';
import { createEtlMetrics, type EtlMetrics } from '../etl/metrics.js';
import { PubSubBus } from '../infra/bus/pubsub/pubsub-bus.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { startPubsubFake } from '../test/fixtures/pubsub.js';
import { endSongType, messageBatches } from './etl-data.js';
import { type DevServer, machineBusySeconds, ROOT, runSend, type SendResult, startDev } from './processes.js';

const PROJECT = 'hourglass-bench';
const TYPES = ['EndSong', 'PageView', 'UserCreate'];
const SEND_SECONDS = 8;
const MAX_CONCURRENCY = 64;
const MAX_RUNS = 2;
const CONSUMER_EVENTS = 500_000;
/** The consumer part gives up after this long (it then reports the rate reached so far). */
const CONSUMER_LIMIT_SECONDS = 75;
const KEEP_UP_SECONDS = 15;
/** Files are committed at the latest `maxFileAgeRealMs` after their first event; plus a margin. */
const KEEP_UP_GRACE_SECONDS = DEFAULTS.etl.maxFileAgeRealMs / 1000 + 5;
/**
 * Streaming pull connections of the consumer on the fake. The fake hands each stream at most one
 * message per delivery round (one message per response), and a round runs every 10 ms after a
 * scan of the subscription's whole backlog under the server's one lock; so its delivery rate
 * grows with the number of streams until its own CPU (and the client's, a message per response)
 * is spent. Drain rates measured with 500,000 messages on 2 cores shared with other work (each a
 * full drain on a fresh fake unless noted): 512 streams ~2,700/s (first 25 s), 1,024 6,500/s,
 * 2,048 7,300–13,400/s (3 drains), 4,096 9,900–11,600/s (4 drains), 8,192 7,300/s, 16,384
 * 9,900/s. 4,096 gives the best rate; more streams take seconds to open and bring no more. The
 * cloud service sends many messages per response (one stream carries ~10 MB/s): there the
 * library's default, 5, fits.
 */
export const CONSUMER_PULL_STREAMS = 4096;
/** What `hourglass dev` is given here (`bus.pullStreams`, HOURGLASS_PULL_STREAMS): the same as the bench's consumers. */
const DEV_PULL_STREAMS = CONSUMER_PULL_STREAMS;

export interface CpuShare {
  /** Cores used on average during the window (CPU seconds / wall seconds): the `hourglass dev` process… */
  readonly dev: number;
  /** …`hourglass send`… */
  readonly loadGenerator: number;
  /** …the fake (0 for an emulator this process did not start)… */
  readonly fake: number;
  /** …this process (the in-process consumers, publishing the backlog, polling)… */
  readonly bench: number;
  /** …and everything else on the machine (other work, the kernel's share of loopback traffic). */
  readonly other: number;
  readonly seconds: number;
}

export interface PubsubIngressResult {
  readonly maxEventsPerSec: number;
  readonly maxRuns: number[];
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly httpErrors: Record<string, number>;
  readonly peakRssMb: number;
  readonly concurrency: number;
  readonly batch: number;
  /** CPU during the best run; null where /proc is missing. */
  readonly cpu: CpuShare | null;
  /** CPU µs per accepted event in the best run, of the `hourglass dev` process and of the fake. */
  readonly devMicrosPerEvent: number | null;
  readonly fakeMicrosPerEvent: number | null;
}

export interface PubsubConsumerResult {
  readonly events: number;
  /** Rate at which the backlog was published (this process, PubSubBus.publish, calls of 1,000, 8 in flight). */
  readonly publishEventsPerSec: number;
  readonly pullStreams: number;
  /** Events committed into raw files (all of them unless the time limit was reached). */
  readonly committed: number;
  readonly drained: boolean;
  readonly seconds: number;
  readonly eventsPerSec: number;
  readonly files: number;
  readonly cpu: CpuShare | null;
}

export interface KeepUpResult {
  /** Where the ETL ran: in `hourglass dev` (default pullStreams) or in this process. */
  readonly etl: 'hourglass dev' | 'bench process';
  readonly pullStreams: number;
  readonly sendSeconds: number;
  /** Accepted by the ingress during the run (`hourglass_ingress_events_accepted_total`), and the rate `hourglass send` saw. */
  readonly accepted: number;
  readonly acceptedPerSec: number;
  readonly p99Ms: number;
  /** Committed (`hourglass_etl_events_committed_total`, raw and late) when sending ended, and at the last observation. */
  readonly committedAtSendEnd: number;
  readonly committed: number;
  /** Seconds from the end of sending until every accepted event was committed; null: not within the grace. */
  readonly caughtUpAfterSec: number | null;
  /**
   * Committed events per second from the start of sending to the last observation (a file is
   * committed up to `maxFileAgeRealMs` after its first event, so this is below the accepted rate
   * even for a consumer that keeps up: `keepsUp` is the criterion).
   */
  readonly committedPerSec: number;
  readonly keepsUp: boolean;
  readonly cpu: CpuShare | null;
}

export interface PubsubResult {
  /** `pstest` (started here) or the emulator at PUBSUB_EMULATOR_HOST. */
  readonly service: string;
  readonly ingress: PubsubIngressResult;
  readonly consumer: PubsubConsumerResult;
  readonly keepUp: KeepUpResult;
  readonly keepUpTuned: KeepUpResult;
  /** The machine's 1-minute load average when (g) began (other work on its cores lowers every figure). */
  readonly loadAverage: number;
  readonly seconds: number;
}

type Log = (line: string) => void;

export interface PubsubOptions {
  /** Streaming pulls of the consumers in this process (parts 2 and 4). Default CONSUMER_PULL_STREAMS. */
  readonly pullStreams?: number;
}

export async function measurePubsub(log: Log, options: PubsubOptions = {}): Promise<PubsubResult> {
  const pullStreams = options.pullStreams ?? CONSUMER_PULL_STREAMS;
  const started = performance.now();
  const loadAverage = round1(loadavg()[0] ?? 0);
  const given = process.env.PUBSUB_EMULATOR_HOST;
  const fake = await startPubsubFake();
  const service = given ? `emulator at ${given}` : 'pstest (in-memory fake)';
  const suffix = Math.random().toString(36).slice(2, 8);
  try {
    log(
      `(g) Pub/Sub bus on ${service} at ${fake.host}: figures of the fake, not of the cloud service; ${cpus().length} cores shared with other work (load average ${loadAverage})`,
    );
    const ingress = await measureIngress(fake.host, `bench-${suffix}-in-`, log);
    const consumer = await measureBacklogDrain(fake.host, `bench-${suffix}-etl-`, pullStreams, log);
    const keepUp = await measureKeepUp(fake.host, `bench-${suffix}-dev-`, null, log);
    const keepUpTuned = await measureKeepUp(fake.host, `bench-${suffix}-tuned-`, pullStreams, log);
    return {
      service,
      ingress,
      consumer,
      keepUp,
      keepUpTuned,
      loadAverage,
      seconds: round1((performance.now() - started) / 1000),
    };
  } finally {
    await fake.stop();
  }
}

// (1) ingress

async function measureIngress(host: string, prefix: string, log: Log): Promise<PubsubIngressResult> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hourglass-bench-pubsub-'));
  const bus = benchBus(host, prefix, 5);
  try {
    const dev = await startDevOnPubsub(dataDir, host, prefix, ['--no-etl']);
    try {
      const common = ['--url', dev.url, ...dev.keyArgs, '--type', TYPES.join(','), '--batch', '100'];
      log(`    1. ingress, as fast as possible (${MAX_CONCURRENCY} requests in flight, best of ${MAX_RUNS}) …`);
      await runSend([...common, '--concurrency', '16', '--rate', 'max', '--duration', '2']); // warm-up
      const runs: { send: SendResult; cpu: CpuShare | null }[] = [];
      for (let i = 0; i < MAX_RUNS; i++) {
        await dropBacklog(bus);
        const cpu = new CpuSampler(dev.pid);
        const send = await runSend([
          ...common,
          '--concurrency',
          String(MAX_CONCURRENCY),
          '--rate',
          'max',
          '--duration',
          String(SEND_SECONDS),
        ]);
        const share = cpu.stop();
        log(
          `       run ${i + 1}: ${send.eventsPerSec} events/s, p50 ${send.p50Ms} ms, p99 ${send.p99Ms} ms${cpuText(share)}`,
        );
        runs.push({ send, cpu: share });
      }
      const best = runs.reduce((a, b) => (b.send.eventsPerSec > a.send.eventsPerSec ? b : a));
      const perEvent = (cores: number | undefined): number | null =>
        cores === undefined || best.cpu === null || best.send.accepted === 0
          ? null
          : round1((cores * best.cpu.seconds * 1e6) / best.send.accepted);
      const devMicrosPerEvent = perEvent(best.cpu?.dev);
      const fakeMicrosPerEvent = perEvent(best.cpu?.fake);
      if (devMicrosPerEvent !== null)
        log(
          `       best run: CPU per event ${devMicrosPerEvent} µs in \`hourglass dev\`, ${fakeMicrosPerEvent} µs in the fake`,
        );
      return {
        maxEventsPerSec: best.send.eventsPerSec,
        maxRuns: runs.map((r) => r.send.eventsPerSec),
        p50Ms: best.send.p50Ms,
        p99Ms: best.send.p99Ms,
        httpErrors: Object.assign({}, ...runs.map((r) => r.send.httpErrors)) as Record<string, number>,
        peakRssMb: dev.peakRssMb(),
        concurrency: MAX_CONCURRENCY,
        batch: 100,
        cpu: best.cpu,
        devMicrosPerEvent,
        fakeMicrosPerEvent,
      };
    } finally {
      await dev.stop();
    }
  } finally {
    await removeAll(bus);
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Deletes and creates again the pipeline's subscriptions: what an earlier run left is dropped. */
async function dropBacklog(bus: PubSubBus): Promise<void> {
  for (const type of TYPES) {
    await bus.deleteSubscription(subscriptionFor(type));
    await bus.createSubscription(subscriptionFor(type), topicFor(type));
  }
}

// (2) the consumer draining a backlog

async function measureBacklogDrain(
  host: string,
  prefix: string,
  pullStreams: number,
  log: Log,
): Promise<PubsubConsumerResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-pubsub-etl-'));
  const clock = new SystemClock();
  const bus = benchBus(host, prefix, pullStreams);
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  try {
    const type = await endSongType();
    await bus.createTopic(topicFor(type.name));
    await bus.createSubscription(subscriptionFor(type.name), topicFor(type.name));
    log(`    2. ETL consumer, one type, ${CONSUMER_EVENTS.toLocaleString('en')} EndSong messages from the fake …`);
    const publishStarted = performance.now();
    const pending: Promise<void>[] = [];
    for (const b of messageBatches(type, CONSUMER_EVENTS, hourStart(Date.now()) + 1000)) {
      pending.push(bus.publish(b.topic, b.messages));
      if (pending.length >= 8) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const publishEventsPerSec = Math.round(CONSUMER_EVENTS / ((performance.now() - publishStarted) / 1000));
    log(`       backlog published at ${publishEventsPerSec} events/s (in-process, calls of 1,000, 8 in flight)`);
    const metrics = createEtlMetrics(new Registry());
    const consumer = new TypeConsumer(type, {
      bus,
      objects: new FsObjectStore(join(dir, 'objects')),
      state,
      clock,
      logger: silentLogger(),
      metrics,
      consumerId: 'etl-bench',
      config: consumerConfig(),
    });
    const cpu = new CpuSampler(null);
    const started = performance.now();
    await consumer.start();
    let committed = 0;
    while (committed < CONSUMER_EVENTS && performance.now() - started < CONSUMER_LIMIT_SECONDS * 1000) {
      await sleep(50);
      committed = await sum(metrics.eventsCommitted);
    }
    const seconds = (performance.now() - started) / 1000;
    const share = cpu.stop();
    const files = await sum(metrics.filesCommitted);
    const drained = committed >= CONSUMER_EVENTS;
    const eventsPerSec = Math.round(committed / seconds);
    log(
      `       ${eventsPerSec} events/s with pullStreams ${pullStreams} (${committed} events in ${round1(seconds)} s, ${files} files${drained ? '' : `; stopped after ${CONSUMER_LIMIT_SECONDS} s`})${cpuText(share)}`,
    );
    await consumer.close();
    return {
      events: CONSUMER_EVENTS,
      publishEventsPerSec,
      pullStreams,
      committed,
      drained,
      seconds: round1(seconds),
      eventsPerSec,
      files,
      cpu: share,
    };
  } finally {
    await removeAll(bus);
    await state.close();
    await rm(dir, { recursive: true, force: true });
  }
}

// (3), (4) the consumer keeping up with the ingress

/** `benchStreams` null: the ETL of `hourglass dev`; else the consumers in this process, with that many streams. */
async function measureKeepUp(
  host: string,
  prefix: string,
  benchStreams: number | null,
  log: Log,
): Promise<KeepUpResult> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hourglass-bench-pubsub-keepup-'));
  const inBench = benchStreams !== null;
  const etl: KeepUpResult['etl'] = inBench ? 'bench process' : 'hourglass dev';
  // `hourglass dev` gets the same number of streams through HOURGLASS_PULL_STREAMS
  const pullStreams = benchStreams ?? DEV_PULL_STREAMS;
  const bus = benchBus(host, prefix, pullStreams);
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const dev = await startDevOnPubsub(dataDir, host, prefix, inBench ? ['--no-etl'] : []);
    try {
      let committedNow: () => Promise<number>;
      if (inBench) {
        const state = new SqliteStateStore(join(dataDir, 'bench-consumers.sqlite'));
        cleanup.push(() => state.close());
        const metrics = createEtlMetrics(new Registry());
        const types = (await loadEventTypes(join(ROOT, 'schemas'))).filter((t) => TYPES.includes(t.name));
        for (const type of types) {
          const consumer = benchConsumer(type, bus, state, metrics, dataDir);
          await consumer.start();
          cleanup.unshift(() => consumer.close());
        }
        committedNow = () => sum(metrics.eventsCommitted);
      } else {
        committedNow = async () => metricTotal(await scrape(dev.url), 'hourglass_etl_events_committed_total');
      }
      log(
        `    ${inBench ? 4 : 3}. keep-up: ingress at max rate for ${KEEP_UP_SECONDS} s, ETL in ${inBench ? 'the bench process' : '`hourglass dev`'} (pullStreams ${pullStreams}) …`,
      );
      const acceptedNow = async (): Promise<number> =>
        metricTotal(await scrape(dev.url), 'hourglass_ingress_events_accepted_total');
      const acceptedBase = await acceptedNow();
      const base = await committedNow();
      const cpu = new CpuSampler(dev.pid);
      const sendStarted = performance.now();
      const send = await runSend([
        '--url',
        dev.url,
        ...dev.keyArgs,
        '--type',
        TYPES.join(','),
        '--batch',
        '100',
        '--concurrency',
        String(MAX_CONCURRENCY),
        '--rate',
        'max',
        '--duration',
        String(KEEP_UP_SECONDS),
      ]);
      const sendEnded = performance.now();
      const share = cpu.stop();
      const accepted = (await acceptedNow()) - acceptedBase;
      const committedAtSendEnd = (await committedNow()) - base;
      let committed = committedAtSendEnd;
      let caughtUpAfterSec: number | null = null;
      while (performance.now() - sendEnded < KEEP_UP_GRACE_SECONDS * 1000) {
        committed = (await committedNow()) - base;
        if (committed >= accepted) {
          caughtUpAfterSec = round1((performance.now() - sendEnded) / 1000);
          break;
        }
        await sleep(100);
      }
      const committedPerSec = Math.round(committed / ((performance.now() - sendStarted) / 1000));
      const keepsUp = caughtUpAfterSec !== null;
      log(
        `       accepted ${accepted} (${send.eventsPerSec} events/s, p99 ${send.p99Ms} ms); committed ${committedAtSendEnd} when sending ended, ${committed} ${keepsUp ? `(all) ${caughtUpAfterSec} s later` : `${KEEP_UP_GRACE_SECONDS} s later (not all)`}; ${committedPerSec} committed/s${cpuText(share)}`,
      );
      return {
        etl,
        pullStreams,
        sendSeconds: KEEP_UP_SECONDS,
        accepted,
        acceptedPerSec: send.eventsPerSec,
        p99Ms: send.p99Ms,
        committedAtSendEnd,
        committed,
        caughtUpAfterSec,
        committedPerSec,
        keepsUp,
        cpu: share,
      };
    } finally {
      for (const c of cleanup) await c();
      await dev.stop();
    }
  } finally {
    await removeAll(bus);
    await rm(dataDir, { recursive: true, force: true });
  }
}

function benchConsumer(
  type: EventType,
  bus: PubSubBus,
  state: SqliteStateStore,
  metrics: EtlMetrics,
  dir: string,
): TypeConsumer {
  return new TypeConsumer(type, {
    bus,
    objects: new FsObjectStore(join(dir, 'bench-objects')),
    state,
    clock: new SystemClock(),
    logger: silentLogger(),
    metrics,
    consumerId: 'etl-bench',
    config: consumerConfig(),
  });
}

/** The ETL's defaults (as bench (c)). */
function consumerConfig(): ConsumerConfig {
  const e = DEFAULTS.etl;
  return {
    codec: e.codec,
    deflateLevel: e.deflateLevel,
    maxFileBytes: e.maxFileBytes,
    maxFileAgeRealMs: e.maxFileAgeRealMs,
    maxBufferedBytes: e.maxBufferedBytes,
    maxOutstandingMessages: e.maxOutstandingMessages,
    retryMaxRealMs: 1000,
    deadLetterMaxPerType: 100,
  };
}

// helpers

function benchBus(host: string, topicPrefix: string, pullStreams: number): PubSubBus {
  return new PubSubBus({ projectId: PROJECT, topicPrefix, clock: new SystemClock(), apiEndpoint: host, pullStreams });
}

/** Deletes the prefix's topics and subscriptions (the fake keeps them, and scans their backlog, until then). */
async function removeAll(bus: PubSubBus): Promise<void> {
  try {
    for (const topic of await bus.listTopics()) await bus.deleteTopic(topic);
  } finally {
    await bus.close();
  }
}

/** `hourglass dev` on the Pub/Sub bus: the environment of `busFor`, for this child only. */
function startDevOnPubsub(dataDir: string, host: string, prefix: string, args: string[]): Promise<DevServer> {
  const env: Record<string, string> = {
    HOURGLASS_BUS: 'pubsub',
    GOOGLE_CLOUD_PROJECT: PROJECT,
    PUBSUB_EMULATOR_HOST: host,
    HOURGLASS_TOPIC_PREFIX: prefix,
    HOURGLASS_PULL_STREAMS: String(DEV_PULL_STREAMS),
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    // startDev spawns the child before its first await
    return startDev(dataDir, args);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  return res.text();
}

/** Sum of a counter over all its label sets, in Prometheus text. */
function metricTotal(text: string, name: string): number {
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

async function sum(counter: EtlMetrics['eventsCommitted']): Promise<number> {
  return (await counter.get()).values.reduce((n, v) => n + v.value, 0);
}

/**
 * CPU time of this process, its children (by role: the `hourglass dev` whose pid is given, any
 * `hourglass send`, the fake) and of the whole machine, sampled from /proc every 200 ms (a child
 * that exits between samples loses at most its last 200 ms).
 */
class CpuSampler {
  private readonly startedAt = performance.now();
  private readonly machineStart = machineBusySeconds();
  private readonly selfStart = process.cpuUsage();
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, { role: keyof CpuShare; seconds: number }>();
  private readonly timer: NodeJS.Timeout | null;

  constructor(private readonly devPid: number | null) {
    if (this.machineStart === null) {
      this.timer = null;
      return;
    }
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 200);
  }

  stop(): CpuShare | null {
    if (this.timer === null) return null;
    clearInterval(this.timer);
    this.sample(false);
    const wall = (performance.now() - this.startedAt) / 1000;
    const machine = (machineBusySeconds() ?? 0) - (this.machineStart ?? 0);
    const self = process.cpuUsage(this.selfStart);
    const by = { dev: 0, loadGenerator: 0, fake: 0 };
    for (const [pid, { role, seconds }] of this.last) {
      if (role in by) by[role as keyof typeof by] += seconds - (this.first.get(pid) ?? 0);
    }
    const bench = (self.user + self.system) / 1e6;
    const other = Math.max(0, machine - by.dev - by.loadGenerator - by.fake - bench);
    const cores = (s: number): number => Math.round((s / wall) * 100) / 100;
    return {
      dev: cores(by.dev),
      loadGenerator: cores(by.loadGenerator),
      fake: cores(by.fake),
      bench: cores(bench),
      other: cores(other),
      seconds: round1(wall),
    };
  }

  private sample(initial: boolean): void {
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return;
    }
    for (const d of pids) {
      const pid = Number(d);
      let stat: string;
      try {
        stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      } catch {
        continue;
      }
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== process.pid) continue;
      const role = this.roleOf(pid);
      if (role === null) continue;
      const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
      // a child already running when sampling began counts from then; a later one from its start
      if (!this.first.has(pid)) this.first.set(pid, initial ? seconds : 0);
      this.last.set(pid, { role, seconds });
    }
  }

  private roleOf(pid: number): keyof CpuShare | null {
    if (pid === this.devPid) return 'dev';
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      return null;
    }
    if (cmd.includes('pubsub-fake')) return 'fake';
    if (/hourglass\.js send /.test(cmd)) return 'loadGenerator';
    return null;
  }
}

function cpuText(c: CpuShare | null): string {
  if (c === null) return '';
  return `; cores: dev ${c.dev}, send ${c.loadGenerator}, fake ${c.fake}, bench ${c.bench}, other ${c.other}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await measurePubsub((l) => console.log(l)), null, 2));
}
