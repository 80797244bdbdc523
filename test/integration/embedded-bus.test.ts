import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { busContract } from '../contracts/bus.contract.js';

busContract('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bus-'));
  return {
    bus: new EmbeddedBus({ dataDir: dir, clock: new SystemClock(), retentionSweepMs: 0, pollIntervalMs: 50 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('embedded bus backlog', () => {
  it('counts partly acked frames exactly, call after call, while publishing goes on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-bus-'));
    const bus = new EmbeddedBus({ dataDir: dir, clock: new SystemClock(), retentionSweepMs: 0, pollIntervalMs: 20 });
    try {
      await bus.createTopic('t.partial');
      await bus.createSubscription('t.partial.s', 't.partial');
      const batch = (from: number) =>
        Array.from({ length: 10 }, (_, i) => ({ data: Buffer.from([i]), attributes: { n: String(from + i) } }));
      for (let f = 0; f < 10; f++) await bus.publish('t.partial', batch(f * 10));
      expect((await bus.backlog('t.partial.s')).messages).toBe(100);
      const seen = new Set<string>();
      let firstPublish = Number.POSITIVE_INFINITY;
      const sub = await bus.subscribe('t.partial.s', (ms) => {
        for (const m of ms) {
          seen.add(m.attributes.n as string);
          firstPublish = Math.min(firstPublish, m.publishTime);
          // odd messages stay unacked (and out for the ack deadline)
          if (Number(m.attributes.n) % 2 === 0) m.ack();
        }
      });
      try {
        for (let i = 0; i < 200 && seen.size < 100; i++) await new Promise((r) => setTimeout(r, 20));
        const [a, b] = await Promise.all([bus.backlog('t.partial.s'), bus.backlog('t.partial.s')]);
        expect(a).toEqual({ messages: 50, oldestUnackedPublishTime: firstPublish });
        expect(b).toEqual(a);
        for (let f = 10; f < 15; f++) await bus.publish('t.partial', batch(f * 10));
        for (let i = 0; i < 200 && seen.size < 150; i++) await new Promise((r) => setTimeout(r, 20));
        expect(await bus.backlog('t.partial.s')).toEqual({ messages: 75, oldestUnackedPublishTime: firstPublish });
      } finally {
        await sub.close();
      }
    } finally {
      await bus.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
