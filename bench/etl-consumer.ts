/**
 * (c) The ETL consumer of one type: 1,000,000 EndSong messages already on the embedded bus, read,
 * written into Avro container files (deflate, level 1) and committed (object store + state store),
 * every message acked. In-process; the consumer loop is on the main thread, compression on libuv's
 * thread pool.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { SystemClock } from '../core/clock.js';
import { subscriptionFor, topicFor } from '../core/event-types.js';
import { hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import { TypeConsumer } from '../etl/consumer.js';
import { createEtlMetrics } from '../etl/metrics.js';
import { EmbeddedBus } from '../infra/bus/embedded/embedded-bus.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { endSongType, messageBatches } from './etl-data.js';

export interface ConsumerResult {
  readonly events: number;
  readonly seconds: number;
  readonly eventsPerSec: number;
  readonly files: number;
  readonly codec: string;
}

export async function measureConsumer(events: number, codec: 'snappy' | 'deflate' | 'null'): Promise<ConsumerResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-consumer-'));
  const clock = new SystemClock();
  const bus = new EmbeddedBus({ dataDir: dir, clock, retentionSweepMs: 0 });
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  try {
    const type = await endSongType();
    await bus.createTopic(topicFor(type.name));
    await bus.createSubscription(subscriptionFor(type.name), topicFor(type.name));
    const pending: Promise<void>[] = [];
    for (const b of messageBatches(type, events, hourStart(Date.now()) + 1000)) {
      pending.push(bus.publish(b.topic, b.messages));
      if (pending.length >= 32) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const metrics = createEtlMetrics(new Registry());
    const consumer = new TypeConsumer(type, {
      bus,
      objects: new FsObjectStore(join(dir, 'objects')),
      state,
      clock,
      logger: silentLogger(),
      metrics,
      consumerId: 'etl-bench',
      config: {
        codec,
        deflateLevel: 1,
        maxFileBytes: 64 * 1024 * 1024,
        maxFileAgeRealMs: 5000,
        maxBufferedBytes: 256 * 1024 * 1024,
        maxOutstandingMessages: Number(process.env.OUT ?? 200_000),
        retryMaxRealMs: 1000,
        deadLetterMaxPerType: 100,
      },
    });
    const started = performance.now();
    await consumer.start();
    const committed = async (): Promise<number> =>
      (await metrics.eventsCommitted.get()).values.reduce((n, v) => n + v.value, 0);
    while ((await committed()) < events || (await bus.backlog(subscriptionFor(type.name))).messages > 0) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    const files = (await metrics.filesCommitted.get()).values.reduce((n, v) => n + v.value, 0);
    await consumer.close();
    return { events, seconds: round(seconds), eventsPerSec: Math.round(events / seconds), files, codec };
  } finally {
    await bus.close();
    await state.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 1_000_000);
  for (const codec of ['snappy', 'deflate', 'null'] as const) console.log(await measureConsumer(n, codec));
}
