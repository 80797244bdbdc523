/**
 * (i) The ingress on the Kafka bus, against librdkafka's mock cluster (test/fixtures/kafka.ts
 * starts it from Debian's kcat; `KAFKA_BROKERS`, when set, is used instead). The figures are the
 * mock's, not a real cluster's: three brokers in one process, in memory, no replication traffic,
 * no disk.
 *
 * `hourglass dev --no-etl` on Kafka in its own process (the producer without idempotence on the
 * mock, which has no controller broker for producer ids), loaded over loopback HTTP by
 * `hourglass send` at max rate, batches of 100, as (b): a warm-up, then the best of two 8-second
 * runs. Nothing consumes; each run uses a topic prefix of its own, so that the mock's bounded
 * partition logs (about 5 MB each, older records dropped) never hold an earlier run's data.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKafka } from '../test/fixtures/kafka.js';
import { type DevServer, runSend, type SendResult, startDev } from './processes.js';

const TYPES = ['EndSong', 'PageView', 'UserCreate'];
const SEND_SECONDS = 8;
const MAX_CONCURRENCY = 64;
const MAX_RUNS = 2;

export interface KafkaBenchResult {
  /** `librdkafka mock cluster (kcat)` or the cluster at KAFKA_BROKERS. */
  readonly cluster: string;
  readonly maxEventsPerSec: number;
  readonly maxRuns: number[];
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly httpErrors: Record<string, number>;
  readonly peakRssMb: number;
  readonly idempotent: boolean;
  readonly concurrency: number;
  readonly batch: number;
}

type Log = (line: string) => void;

export async function measureKafka(log: Log): Promise<KafkaBenchResult> {
  const kafka = await startKafka();
  const cluster = process.env.KAFKA_BROKERS
    ? `cluster at ${process.env.KAFKA_BROKERS}`
    : 'librdkafka mock cluster (kcat)';
  try {
    log(`(i) Kafka bus on the ${cluster}: figures of the mock, not of a real cluster`);
    const runs: { send: SendResult; rss: number }[] = [];
    for (let i = 0; i <= MAX_RUNS; i++) {
      const dataDir = await mkdtemp(join(tmpdir(), 'hourglass-bench-kafka-'));
      const dev = await startDevOnKafka(dataDir, kafka.brokers, kafka.idempotence, `bench${Date.now().toString(36)}-`);
      try {
        const common = ['--url', dev.url, ...dev.keyArgs, '--type', TYPES.join(','), '--batch', '100', '--rate', 'max'];
        if (i === 0) {
          await runSend([...common, '--concurrency', '16', '--duration', '2']); // warm-up
          continue;
        }
        const send = await runSend([
          ...common,
          '--concurrency',
          String(MAX_CONCURRENCY),
          '--duration',
          String(SEND_SECONDS),
        ]);
        log(`    run ${i}: ${send.eventsPerSec} events/s, p50 ${send.p50Ms} ms, p99 ${send.p99Ms} ms`);
        runs.push({ send, rss: dev.peakRssMb() });
      } finally {
        await dev.stop();
        await rm(dataDir, { recursive: true, force: true });
      }
    }
    const best = runs.reduce((a, b) => (b.send.eventsPerSec > a.send.eventsPerSec ? b : a));
    return {
      cluster,
      maxEventsPerSec: best.send.eventsPerSec,
      maxRuns: runs.map((r) => r.send.eventsPerSec),
      p50Ms: best.send.p50Ms,
      p99Ms: best.send.p99Ms,
      httpErrors: Object.assign({}, ...runs.map((r) => r.send.httpErrors)) as Record<string, number>,
      peakRssMb: Math.max(...runs.map((r) => r.rss)),
      idempotent: kafka.idempotence,
      concurrency: MAX_CONCURRENCY,
      batch: 100,
    };
  } finally {
    await kafka.stop();
  }
}

function startDevOnKafka(dataDir: string, brokers: string[], idempotent: boolean, prefix: string): Promise<DevServer> {
  const env: Record<string, string> = {
    HOURGLASS_BUS: 'kafka',
    KAFKA_BROKERS: brokers.join(','),
    HOURGLASS_KAFKA_IDEMPOTENT: String(idempotent),
    HOURGLASS_TOPIC_PREFIX: prefix,
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    // startDev spawns the child before its first await
    return startDev(dataDir, ['--no-etl']);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
