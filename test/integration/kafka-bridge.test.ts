/**
 * `hourglass bridge`'s consumer against librdkafka's mock cluster (or KAFKA_BROKERS): a legacy
 * topic's JSON and Avro messages go through the ingress path onto the bus; malformed ones are
 * dead-lettered and counted while the offsets move on; while the bus refuses, nothing is committed,
 * and everything arrives once it is back.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import { latestVersion, subscriptionFor } from '../../core/event-types.js';
import { silentLogger } from '../../core/logger.js';
import type { Bus, DeliveredMessage } from '../../core/ports/bus.js';
import { bridgeGroup, earlierBridgeGroup, KafkaBridge } from '../../services/bridge/kafka-bridge.js';
import type { LegacyFormat } from '../../services/bridge/legacy-message.js';
import { createIngressMetrics } from '../../services/ingress/metrics.js';
import { useFixture } from '../fixtures/use-fixture.js';
import { endSong, type Harness, startHarness } from '../support/ingress-harness.js';
import { SwitchableBus } from '../support/switchable-bus.js';

const cluster = await useFixture('kafka');
const kafka = new Kafka({ clientId: 'bridge-test', brokers: cluster.brokers, logLevel: logLevel.NOTHING });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function produce(topic: string, messages: Array<{ key?: string; value: Buffer | string }>): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

/** Committed offsets of the group reached the topic's end. */
async function caughtUp(group: string, topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId: group, topics: [topic] }),
    ]);
    const byPartition = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    return ends.every((e) => Number(e.high) === 0 || (byPartition.get(e.partition) ?? -1) >= Number(e.high));
  } finally {
    await admin.disconnect();
  }
}

async function until(cond: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function bridge(
  h: Harness,
  topic: string,
  format: LegacyFormat,
  idField: string | null = null,
  groups: { groupId: string; earlierGroupId?: string } = { groupId: `bridge-${randomBytes(4).toString('hex')}` },
) {
  const metrics = createIngressMetrics({ defaultMetrics: false });
  const b = new KafkaBridge({
    kafka: {
      brokers: cluster.brokers,
      clientId: 'hourglass',
      ssl: false,
      sasl: null,
      sessionTimeoutRealMs: 6_000,
      rebalanceTimeoutRealMs: 2_000,
    },
    mapping: { topic, type: 'EndSong', format, idField, version: null },
    ...groups,
    fromBeginning: true,
    catalog: h.catalog,
    target: h.ingress,
    clock: new SystemClock(),
    logger: silentLogger(),
    registry: metrics.registry,
    maxEventsPerCall: 1000,
    deadLetterEventBytes: 4096,
  });
  await b.start();
  cleanups.push(() => b.close());
  return { group: b.groupId, metrics, bridge: b };
}

async function idsOn(bus: Bus, expected: number): Promise<string[]> {
  const got: DeliveredMessage[] = [];
  const s = await bus.subscribe(subscriptionFor('EndSong'), (ms) => {
    for (const m of ms) {
      got.push(m);
      m.ack();
    }
  });
  await until(() => got.length >= expected, 10_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  await s.close();
  return got.map((m) => m.attributes.id as string).sort();
}

describe('kafka bridge', () => {
  it('feeds JSON messages through the ingress path; malformed ones are dead-lettered, counted and passed', async () => {
    const h = await startHarness();
    cleanups.push(() => h.close());
    const topic = `legacy-${randomBytes(4).toString('hex')}`;
    await produce(topic, [
      // the payload itself, the id in a payload-independent key
      ...Array.from({ length: 10 }, (_, i) => ({ key: `k-${i}`, value: JSON.stringify(endSong()) })),
      // an envelope with its own id
      ...Array.from({ length: 10 }, (_, i) => ({ value: JSON.stringify({ id: `e-${i}`, payload: endSong() }) })),
      { key: 'bad-json', value: '{"userId": "u1", ' },
      { key: 'bad-field', value: JSON.stringify(endSong({ durationMs: 'long' })) },
      { key: 'wrong-type', value: JSON.stringify({ type: 'PageView', id: 'x', payload: endSong() }) },
    ]);
    const { group, metrics } = await bridge(h, topic, 'json');
    await until(() => caughtUp(group, topic));

    const expected = [
      ...Array.from({ length: 10 }, (_, i) => `k-${i}`),
      ...Array.from({ length: 10 }, (_, i) => `e-${i}`),
    ];
    expect(await idsOn(h.bus, 20)).toEqual(expected.sort());
    await h.ingress.deadLetters.flush();
    const dead = await h.store.listDeadLetters('EndSong', 100);
    expect(dead.map((d) => d.code).sort()).toEqual(['schema_violation', 'undecodable_message', 'undecodable_message']);
    const bad = dead.find((d) => d.message.includes('not JSON'));
    expect(bad?.message).toMatch(new RegExp(`^${topic}\\[\\d\\]@\\d+: not JSON`));
    expect(dead.find((d) => d.code === 'schema_violation')?.path).toBe('payload.durationMs');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(new RegExp(`hourglass_bridge_messages_total\\{topic="${topic}",outcome="accepted"\\} 20`));
    expect(text).toMatch(new RegExp(`hourglass_bridge_messages_total\\{topic="${topic}",outcome="undecodable"\\} 2`));
    expect(text).toMatch(new RegExp(`hourglass_bridge_messages_total\\{topic="${topic}",outcome="rejected"\\} 1`));
    // ledgered like any ingress traffic
    await new Promise((r) => setTimeout(r, 400));
    const ledger = await h.store.listLedgers({ type: 'EndSong' });
    expect(ledger.reduce((n, e) => n + e.count, 0)).toBe(20);
  }, 60_000);

  it('decodes Avro values (plain and Confluent-framed) and takes the id from a payload field', async () => {
    const h = await startHarness();
    cleanups.push(() => h.close());
    const topic = `legacy-${randomBytes(4).toString('hex')}`;
    const t = h.catalog.get('EndSong');
    if (t === undefined) throw new Error('EndSong missing');
    const avro = latestVersion(t).type;
    const plain = avro.toBuffer(endSong({ trackId: 'track-plain' }));
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 42]), avro.toBuffer(endSong({ trackId: 'track-framed' }))]);
    await produce(topic, [{ value: plain }, { value: framed }, { value: Buffer.from([1, 2, 3]) }]);
    const { group } = await bridge(h, topic, 'avro', 'trackId');
    await until(() => caughtUp(group, topic));
    expect(await idsOn(h.bus, 2)).toEqual(['track-framed', 'track-plain']);
    await h.ingress.deadLetters.flush();
    expect((await h.store.listDeadLetters('EndSong', 10)).map((d) => d.code)).toEqual(['undecodable_message']);
  }, 60_000);

  it('commits nothing while the bus refuses; everything arrives once it is back', async () => {
    let switchable: SwitchableBus | null = null;
    const h = await startHarness({
      wrapBus: (bus) => {
        switchable = new SwitchableBus(bus);
        return switchable;
      },
    });
    cleanups.push(() => h.close());
    const s = switchable as unknown as SwitchableBus;
    const topic = `legacy-${randomBytes(4).toString('hex')}`;
    s.down = true;
    await produce(
      topic,
      Array.from({ length: 30 }, (_, i) => ({ key: `d-${i}`, value: JSON.stringify(endSong()) })),
    );
    const { group } = await bridge(h, topic, 'json');
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await caughtUp(group, topic)).toBe(false);
    s.down = false;
    await until(() => caughtUp(group, topic), 40_000);
    expect(await idsOn(h.bus, 30)).toEqual(Array.from({ length: 30 }, (_, i) => `d-${i}`).sort());
  }, 90_000);

  it('a default-grouped bridge keeps the earlier default group where its offsets are; a new mapping gets a group of its own', async () => {
    const h = await startHarness();
    cleanups.push(() => h.close());
    const topic = `legacy-${randomBytes(4).toString('hex')}`;
    await produce(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ key: `old-${i}`, value: JSON.stringify(endSong()) })),
    );
    // a bridge that ran under the earlier default (the topic's name alone), then stopped
    const earlier = await bridge(h, topic, 'json', null, { groupId: earlierBridgeGroup(topic) });
    await until(() => caughtUp(earlier.group, topic));
    expect(await idsOn(h.bus, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `old-${i}`).sort());
    await earlier.bridge.close();
    await produce(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ key: `new-${i}`, value: JSON.stringify(endSong()) })),
    );

    const defaults = { groupId: bridgeGroup(topic, 'EndSong'), earlierGroupId: earlierBridgeGroup(topic) };
    expect(defaults.groupId).toBe(`hourglass-bridge.${topic}.EndSong`);
    const { group } = await bridge(h, topic, 'json', null, defaults);
    expect(group).toBe(earlierBridgeGroup(topic));
    await until(() => caughtUp(group, topic));
    // from its committed offsets: neither the topic read again from the start, nor a gap
    expect(await idsOn(h.bus, 5)).toEqual(Array.from({ length: 5 }, (_, i) => `new-${i}`));

    // a topic no bridge read before: the mapping's own group
    const fresh = `legacy-${randomBytes(4).toString('hex')}`;
    await produce(fresh, [{ key: 'f-0', value: JSON.stringify(endSong()) }]);
    const second = await bridge(h, fresh, 'json', null, {
      groupId: bridgeGroup(fresh, 'EndSong'),
      earlierGroupId: earlierBridgeGroup(fresh),
    });
    expect(second.group).toBe(`hourglass-bridge.${fresh}.EndSong`);
    await until(() => caughtUp(second.group, fresh));
  }, 90_000);
});
