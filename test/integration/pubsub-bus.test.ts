/**
 * The Pub/Sub bus against Google's in-memory fake (pstest), or the emulator at
 * PUBSUB_EMULATOR_HOST: the shared bus contract, each test with a topic prefix of its own, and a
 * publish throughput figure.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import type { OutgoingMessage } from '../../core/ports/bus.js';
import { PubSubBus } from '../../infra/bus/pubsub/pubsub-bus.js';
import { busContract } from '../contracts/bus.contract.js';
import { useFixture } from '../fixtures/use-fixture.js';

const PROJECT = 'hourglass-test';
// started once per test run by the global setup (test/fixtures/global-setup.ts)
const fake = { host: await useFixture('pubsubHost') };

function busWithPrefix(topicPrefix: string): PubSubBus {
  return new PubSubBus({
    projectId: PROJECT,
    topicPrefix,
    clock: new SystemClock(),
    apiEndpoint: fake.host,
    // the fake sends about one message per stream every 10 ms (see PubSubBusOptions.pullStreams)
    pullStreams: 32,
  });
}

/** Deletes what a test left under its prefix (the fake keeps every topic and subscription). */
async function removeAll(topicPrefix: string): Promise<void> {
  const bus = busWithPrefix(topicPrefix);
  try {
    for (const topic of await bus.listTopics()) await bus.deleteTopic(topic);
  } finally {
    await bus.close();
  }
}

busContract('pubsub', async () => {
  const prefix = `hg-${randomBytes(4).toString('hex')}-`;
  return { bus: busWithPrefix(prefix), cleanup: () => removeAll(prefix) };
});

describe('pubsub bus: publish throughput', () => {
  it('publishes 20,000 messages of ~300 bytes in calls of 100, 8 calls in flight', async () => {
    const prefix = `hg-${randomBytes(4).toString('hex')}-`;
    const bus = busWithPrefix(prefix);
    const total = 20_000;
    const perCall = 100;
    const lanes = 8;
    const payload = randomBytes(200);
    const attributes = {
      type: 'checkout.completed.v3',
      instance: 'ingress-0',
      hour: '2026-11-01T08:00:00.000Z',
      received: '1793520000000',
    };
    const call = (from: number): OutgoingMessage[] =>
      Array.from({ length: perCall }, (_, i) => ({
        data: payload,
        attributes: { ...attributes, id: `evt-${String(from + i).padStart(8, '0')}` },
      }));
    try {
      await bus.createTopic('throughput');
      await bus.createSubscription('throughput.etl', 'throughput');
      const bytes =
        payload.length +
        Object.entries(call(0)[0]?.attributes ?? {})
          .flat()
          .join('').length;
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: lanes }, async () => {
          while (next < total) {
            const from = next;
            next += perCall;
            await bus.publish('throughput', call(from));
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `pubsub bus publish: ${total} messages of ~${bytes} bytes, calls of ${perCall}, ${lanes} in flight: ` +
          `${seconds.toFixed(2)} s, ${Math.round(total / seconds)} events/s (${fake.host})`,
      );
      expect(seconds).toBeLessThan(60);
      expect((await bus.backlog('throughput.etl')).messages).toBe(total);
    } finally {
      await bus.close();
      await removeAll(prefix);
    }
  }, 90_000);
});
