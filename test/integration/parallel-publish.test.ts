/**
 * Dual publish in a parallel run: the ingress answers a producer only when both buses hold the
 * events (`parallel.ack: all`: 503 while the second bus is down), or when the main bus holds them
 * and the copy for the second is spooled on local disk (`parallel.ack: primary`: 200, forwarded
 * once the second bus is back, across a restart of the spool).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import { subscriptionFor, topicFor } from '../../core/event-types.js';
import { silentLogger } from '../../core/logger.js';
import type { Bus, DeliveredMessage } from '../../core/ports/bus.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { SpooledBus } from '../../infra/bus/parallel/spooled-bus.js';
import { TeeBus } from '../../infra/bus/parallel/tee-bus.js';
import { provisionBus } from '../../orchestrator/provision.js';
import { endSong, type Harness, startHarness } from '../support/ingress-harness.js';
import { SwitchableBus } from '../support/switchable-bus.js';

const clock = new SystemClock();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-parallel-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function post(h: Harness, ids: string[]): Promise<Response> {
  return fetch(`${h.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events: ids.map((id) => ({ type: 'EndSong', id, payload: endSong() })) }),
  });
}

/** Ids on a bus's EndSong subscription (acked as read). */
async function idsOn(bus: Bus, expected: number, timeoutMs = 10_000): Promise<string[]> {
  const got: DeliveredMessage[] = [];
  const s = await bus.subscribe(subscriptionFor('EndSong'), (ms) => {
    for (const m of ms) {
      got.push(m);
      m.ack();
    }
  });
  const deadline = Date.now() + timeoutMs;
  while (got.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  await s.close();
  return got.map((m) => m.attributes.id as string).sort();
}

async function secondBus(dir?: string): Promise<{ dir: string; real: EmbeddedBus; switchable: SwitchableBus }> {
  const at = dir ?? (await tempDir());
  const real = new EmbeddedBus({ dataDir: at, clock, retentionSweepMs: 0 });
  cleanups.push(() => real.close());
  return { dir: at, real, switchable: new SwitchableBus(real) };
}

describe('parallel run: dual publish', () => {
  it('ack all: 503 while the second bus is down, nothing reported accepted; both buses get every accepted event', async () => {
    const second = await secondBus();
    const h = await startHarness({ wrapBus: (main) => new TeeBus(main, second.switchable) });
    cleanups.push(() => h.close());
    await provisionBus(second.real, h.types, silentLogger());

    expect((await post(h, ['a-1', 'a-2'])).status).toBe(200);
    second.switchable.down = true;
    const refused = await post(h, ['a-3']);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: 'bus_unavailable' } });
    second.switchable.down = false;
    expect((await post(h, ['a-3', 'a-4'])).status).toBe(200);

    // the refused attempt may have reached the main bus (a duplicate of the retry): never fewer
    const onMain = await idsOn(h.bus, 5);
    expect(new Set(onMain)).toEqual(new Set(['a-1', 'a-2', 'a-3', 'a-4']));
    expect(await idsOn(second.real, 4)).toEqual(['a-1', 'a-2', 'a-3', 'a-4']);
  });

  it('ack primary: 200 while the second bus is down; the spooled copies reach it when it is back, also after a restart', async () => {
    const second = await secondBus();
    const spoolDir = await tempDir();
    let spooled: SpooledBus | null = null;
    const h = await startHarness({
      wrapBus: (main) => {
        const spool = new EmbeddedBus({ dataDir: spoolDir, clock, retentionSweepMs: 0 });
        spooled = new SpooledBus(spool, second.switchable, silentLogger());
        return new TeeBus(main, spooled);
      },
    });
    cleanups.push(() => h.close());
    const s = spooled as unknown as SpooledBus;
    await s.start();
    // provisioning creates the spool's topic and forwarder, and the topic on the second bus
    for (const t of h.types) {
      await s.createTopic(topicFor(t.name));
      await s.createSubscription(subscriptionFor(t.name), topicFor(t.name));
    }

    second.switchable.down = true;
    const ids = Array.from({ length: 50 }, (_, i) => `p-${i}`);
    for (let i = 0; i < 50; i += 10) expect((await post(h, ids.slice(i, i + 10))).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect((await s.spooled(topicFor('EndSong'))).messages).toBe(50);
    expect((await second.real.backlog(subscriptionFor('EndSong'))).messages).toBe(0);

    // the process stops while the second bus is down: the spool keeps the copies on disk
    await s.close();
    const back = await secondBus(second.dir);
    const again = new SpooledBus(
      new EmbeddedBus({ dataDir: spoolDir, clock, retentionSweepMs: 0 }),
      back.switchable,
      silentLogger(),
    );
    cleanups.push(() => again.close());
    await again.start();
    const deadline = Date.now() + 40_000;
    while ((await again.spooled(topicFor('EndSong'))).messages > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await again.spooled(topicFor('EndSong'))).messages).toBe(0);
    expect(await idsOn(back.real, 50)).toEqual([...ids].sort());
  }, 60_000);
});
