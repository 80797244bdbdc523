/**
 * The bus contract: every backend (embedded now; Pub/Sub and Kafka next) runs this suite.
 * It asserts only what `core/ports/bus.ts` promises.
 */
import { randomBytes } from 'node:crypto';
import { it as base, describe } from 'vitest';
import type { Bus, DeliveredMessage, OutgoingMessage, Subscriber } from '../../core/ports/bus.js';

export interface BusUnderTest {
  readonly bus: Bus;
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

function messages(n: number, tag: string): OutgoingMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    data: Buffer.from([0, i % 256, 255, 0, 7]),
    attributes: { id: `${tag}-${i}`, note: 'ünïcödé ✓', empty: '' },
  }));
}

/** A test's own bus, and a way to collect what a subscription delivers (closed after the test). */
interface BusFixture {
  readonly bus: Bus;
  readonly subscribers: Subscriber[];
  collect(
    sub: string,
    ack?: boolean,
    options?: Parameters<Bus['subscribe']>[2],
  ): Promise<{ got: DeliveredMessage[]; subscriber: Subscriber }>;
}

/**
 * Runs the contract against the buses `make` returns, one per test. With `concurrent`, the tests
 * run at once (each has its own bus and names): for a backend whose waits are mostly the broker's
 * (the Kafka mock cluster holds every new consumer group's first join for 3 s).
 */
export function busContract(
  name: string,
  make: () => Promise<BusUnderTest>,
  options: { concurrent?: boolean } = {},
): void {
  const uid = () => `c${randomBytes(4).toString('hex')}`;
  const it = base.extend<{ b: BusFixture }>({
    // biome-ignore lint/correctness/noEmptyPattern: vitest reads a fixture's dependencies from its first parameter
    b: async ({}, use) => {
      const t = await make();
      const subscribers: Subscriber[] = [];
      const collect: BusFixture['collect'] = async (sub, ack = true, subscribeOptions) => {
        const got: DeliveredMessage[] = [];
        const subscriber = await t.bus.subscribe(
          sub,
          (ms) => {
            for (const m of ms) {
              got.push(m);
              if (ack) m.ack();
            }
          },
          subscribeOptions,
        );
        subscribers.push(subscriber);
        return { got, subscriber };
      };
      try {
        await use({ bus: t.bus, subscribers, collect });
      } finally {
        for (const s of subscribers.splice(0)) await s.close();
        await t.bus.close();
        await t.cleanup();
      }
    },
  });
  const suite = options.concurrent ? describe.concurrent : describe;
  suite(`bus contract: ${name}`, () => {
    it('creates topics and subscriptions idempotently and lists topics', async ({ b: { bus }, expect }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      await bus.createSubscription(`${topic}.s`, topic);
      expect(await bus.listTopics()).toContain(topic);
    });

    it('refuses invalid names, unknown topics and unknown subscriptions with typed errors', async ({
      b: { bus },
      expect,
    }) => {
      await expect(bus.createTopic('a b')).rejects.toMatchObject({ code: 'invalid_name' });
      await expect(bus.createTopic('x')).rejects.toMatchObject({ code: 'invalid_name' });
      await expect(bus.publish(`t.${uid()}`, messages(1, 'x'))).rejects.toMatchObject({ code: 'topic_not_found' });
      await expect(bus.createSubscription(`s.${uid()}`, `t.${uid()}`)).rejects.toMatchObject({
        code: 'topic_not_found',
      });
      await expect(bus.subscribe(`s.${uid()}`, () => undefined)).rejects.toMatchObject({
        code: 'subscription_not_found',
      });
      await expect(bus.backlog(`s.${uid()}`)).rejects.toMatchObject({ code: 'subscription_not_found' });
    });

    it('delivers every published message with data and attributes intact', async ({ b: { bus, collect }, expect }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      const sent = messages(250, 'm');
      await bus.publish(topic, sent.slice(0, 100));
      await bus.publish(topic, sent.slice(100));
      const { got } = await collect(`${topic}.s`);
      await until(() => got.length >= 250);
      const byId = new Map(got.map((m) => [m.attributes.id, m]));
      expect(byId.size).toBe(250);
      const m7 = byId.get('m-7') as DeliveredMessage;
      expect(m7.data.equals(Buffer.from([0, 7, 255, 0, 7]))).toBe(true);
      expect(m7.attributes).toEqual({ id: 'm-7', note: 'ünïcödé ✓', empty: '' });
      expect(m7.publishTime).toBeGreaterThan(0);
      expect(m7.deliveryAttempt).toBeGreaterThanOrEqual(1);
    });

    it('a subscription gets only messages published after it was created; each subscription gets all', async ({
      b: { bus, collect },
      expect,
    }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.a`, topic);
      await bus.publish(topic, messages(5, 'early'));
      await bus.createSubscription(`${topic}.b`, topic);
      await bus.publish(topic, messages(5, 'late'));
      const a = await collect(`${topic}.a`);
      const b = await collect(`${topic}.b`);
      await until(() => a.got.length >= 10 && b.got.length >= 5);
      await sleep(200);
      expect(a.got).toHaveLength(10);
      expect(b.got.map((m) => m.attributes.id).sort()).toEqual(
        messages(5, 'late')
          .map((m) => m.attributes.id)
          .sort(),
      );
    });

    it('backlog counts unacked messages and the oldest publish time; acks empty it', async ({
      b: { bus, collect },
      expect,
    }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      expect(await bus.backlog(`${topic}.s`)).toEqual({ messages: 0, oldestUnackedPublishTime: null });
      await bus.publish(topic, messages(30, 'b'));
      const before = await bus.backlog(`${topic}.s`);
      expect(before.messages).toBe(30);
      expect(before.oldestUnackedPublishTime).toBeGreaterThan(0);
      const { got } = await collect(`${topic}.s`);
      await until(() => got.length >= 30);
      await until(async () => (await bus.backlog(`${topic}.s`)).messages === 0);
      expect((await bus.backlog(`${topic}.s`)).oldestUnackedPublishTime).toBeNull();
    });

    it('redelivers after nack', async ({ b: { bus, subscribers }, expect }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      await bus.publish(topic, messages(3, 'n'));
      const seen: string[] = [];
      const s = await bus.subscribe(`${topic}.s`, (ms) => {
        for (const m of ms) {
          seen.push(m.attributes.id as string);
          if (seen.filter((x) => x === m.attributes.id).length === 1) m.nack();
          else m.ack();
        }
      });
      subscribers.push(s);
      await until(() => seen.length >= 6);
      expect(new Set(seen).size).toBe(3);
    });

    it('redelivers a message not acked within the ack deadline', async ({ b: { bus, subscribers }, expect }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic, { ackDeadlineMs: 300 });
      await bus.publish(topic, messages(1, 'd'));
      const times: number[] = [];
      const s = await bus.subscribe(`${topic}.s`, (ms) => {
        for (const m of ms) {
          times.push(Date.now());
          if (times.length >= 2) m.ack();
        }
      });
      subscribers.push(s);
      await until(() => times.length >= 2, 5000);
      expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(250);
    });

    it('after a consumer closes without acking, the next one gets the unacked messages (and not the acked)', async ({
      b: { bus, collect },
      expect,
    }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      await bus.publish(topic, messages(20, 'r'));
      const first: DeliveredMessage[] = [];
      const s1 = await bus.subscribe(`${topic}.s`, (ms) => {
        for (const m of ms) {
          first.push(m);
          if (Number((m.attributes.id as string).split('-')[1]) % 2 === 0) m.ack();
        }
      });
      await until(() => first.length >= 20);
      await sleep(100);
      await s1.close();
      const { got } = await collect(`${topic}.s`);
      await until(() => got.length >= 10);
      await sleep(300);
      const ids = got.map((m) => Number((m.attributes.id as string).split('-')[1])).sort((a, b) => a - b);
      expect(ids).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
    });

    it('many concurrent publishes are each delivered once when acked promptly', async ({
      b: { bus, collect },
      expect,
    }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      await Promise.all(Array.from({ length: 200 }, (_, p) => bus.publish(topic, messages(50, `p${p}`))));
      const { got } = await collect(`${topic}.s`, true, { maxOutstandingMessages: 5000 });
      await until(() => got.length >= 10_000, 20_000);
      await sleep(300);
      expect(got).toHaveLength(10_000);
      expect(new Set(got.map((m) => m.attributes.id)).size).toBe(10_000);
    });

    it('respects maxOutstandingMessages (flow control)', async ({ b: { bus, subscribers }, expect }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      await bus.publish(topic, messages(500, 'f'));
      const held: DeliveredMessage[] = [];
      const s = await bus.subscribe(
        `${topic}.s`,
        (ms) => {
          held.push(...ms);
        },
        { maxOutstandingMessages: 50 },
      );
      subscribers.push(s);
      await until(() => held.length >= 50);
      await sleep(300);
      expect(held.length).toBe(50);
      for (const m of held.splice(0)) m.ack();
      await until(() => held.length >= 50);
      await sleep(200);
      expect(held.length).toBe(50);
    });

    it('deletes subscriptions and topics idempotently', async ({ b: { bus }, expect }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.createSubscription(`${topic}.s`, topic);
      await bus.deleteSubscription(`${topic}.s`);
      await bus.deleteSubscription(`${topic}.s`);
      await expect(bus.subscribe(`${topic}.s`, () => undefined)).rejects.toMatchObject({
        code: 'subscription_not_found',
      });
      await bus.createSubscription(`${topic}.s2`, topic);
      await bus.deleteTopic(topic);
      await bus.deleteTopic(topic);
      expect(await bus.listTopics()).not.toContain(topic);
      await expect(bus.publish(topic, messages(1, 'x'))).rejects.toMatchObject({ code: 'topic_not_found' });
      await expect(bus.backlog(`${topic}.s2`)).rejects.toMatchObject({ code: 'subscription_not_found' });
    });

    it('refuses to publish after close', async ({ b: { bus }, expect }) => {
      const topic = `t.${uid()}`;
      await bus.createTopic(topic);
      await bus.close();
      await expect(bus.publish(topic, messages(1, 'x'))).rejects.toMatchObject({ code: 'bus_closed', retriable: true });
    });
  });
}
