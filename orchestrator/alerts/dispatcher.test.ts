/** The dispatcher with real sinks and local receivers: retries, ordering, isolation, limits. */
import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import type { AlertNotification, AlertSink } from '../../core/ports/alert-sink.js';
import { createSink } from '../../infra/alerts/sinks.js';
import { type Receiver, startReceiver } from '../../test/support/http-receiver.js';
import { AlertDispatcher } from './dispatcher.js';

const note = (
  id: string,
  event: AlertNotification['event'] = 'trigger',
  route: 'page' | 'ticket' = 'page',
): AlertNotification => ({
  event,
  route,
  sentAt: 1,
  alert: {
    id,
    rule: 'consumer_stuck',
    type: 'EndSong',
    tier: 'high',
    state: event === 'resolve' ? 'resolved' : 'firing',
    summary: `alert ${id}`,
    details: {},
    openedAt: 0,
    resolvedAt: null,
    dedupKey: `hourglass/EndSong/consumer_stuck/${id}`,
  },
});
const bodyOf = (r: { body: unknown }) => r.body as { event: string; alert: { id: string } };

describe('alert dispatcher', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });
  /** `answer` gets the path and how many requests that path has had, this one included. */
  async function receiver(answer: (path: string, n: number) => number): Promise<Receiver> {
    const counts = new Map<string, number>();
    const r = await startReceiver((path) => {
      counts.set(path, (counts.get(path) ?? 0) + 1);
      return answer(path, counts.get(path) ?? 0);
    });
    cleanups.push(() => r.close());
    return r;
  }
  function dispatcher(sinks: AlertSink[], registry?: Registry, queueLimit?: number): AlertDispatcher {
    const d = new AlertDispatcher({ sinks, logger: silentLogger(), registry, backoffRealMs: 20, queueLimit });
    cleanups.push(() => d.close());
    return d;
  }

  it('retries 5xx answers with backoff until delivered; does not retry a 400; counts outcomes', async () => {
    const r = await receiver((path, n) => (path === '/bad' ? 400 : n <= 2 ? 500 : 202));
    const registry = new Registry();
    const d = dispatcher(
      [
        createSink({ name: 'flaky', kind: 'webhook', url: `${r.url}/flaky`, routes: ['page'] }),
        createSink({ name: 'bad', kind: 'webhook', url: `${r.url}/bad`, routes: ['ticket'] }),
      ],
      registry,
    );
    d.dispatch(note('1'));
    d.dispatch(note('2', 'trigger', 'ticket'));
    await d.idle();
    expect(r.find('/flaky')).toHaveLength(3);
    expect(r.find('/bad')).toHaveLength(1);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(
      /hourglass_alert_notifications_total\{sink="flaky",route="page",event="trigger",outcome="delivered"\} 1/,
    );
    expect(metrics).toMatch(
      /hourglass_alert_notifications_total\{sink="bad",route="ticket",event="trigger",outcome="failed"\} 1/,
    );
    expect(metrics).toMatch(/hourglass_alert_delivery_retries_total\{sink="flaky"\} 2/);
  });

  it('keeps each sink in order under retries: a trigger is never overtaken by its resolve', async () => {
    const r = await receiver((_p, n) => (n % 2 === 1 ? 503 : 202)); // every first attempt fails
    const d = dispatcher([createSink({ name: 'w', kind: 'webhook', url: `${r.url}/w` })]);
    d.dispatch(note('7'));
    d.dispatch(note('7', 'resolve'));
    d.dispatch(note('8'));
    await d.idle();
    const delivered = r.received.filter((_x, i) => i % 2 === 1).map((x) => [bodyOf(x).alert.id, bodyOf(x).event]);
    expect(delivered).toEqual([
      ['7', 'trigger'],
      ['7', 'resolve'],
      ['8', 'trigger'],
    ]);
  });

  it('a hanging sink delays neither dispatch nor the other sinks, and close() ends promptly', async () => {
    const hanging: Server = createServer(() => undefined);
    await new Promise<void>((res) => hanging.listen(0, '127.0.0.1', res));
    cleanups.push(
      () =>
        new Promise<void>((res) => {
          hanging.closeAllConnections();
          hanging.close(() => res());
        }),
    );
    const port = (hanging.address() as { port: number }).port;
    const r = await receiver(() => 202);
    const d = new AlertDispatcher({
      sinks: [
        createSink({ name: 'slow', kind: 'webhook', url: `http://127.0.0.1:${port}/`, timeoutRealMs: 60_000 }),
        createSink({ name: 'fast', kind: 'webhook', url: `${r.url}/fast` }),
      ],
      logger: silentLogger(),
    });
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) d.dispatch(note(String(i)));
    expect(performance.now() - t0).toBeLessThan(50);
    await r.waitFor('/fast', (b: { alert: { id: string } }) => b.alert.id === '4', 10_000);
    const t1 = performance.now();
    await d.close();
    expect(performance.now() - t1).toBeLessThan(2000);
    d.dispatch(note('after-close')); // ignored
    expect(r.find('/fast')).toHaveLength(5);
  });

  it('a full queue drops its oldest waiting notification', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((res) => {
      release = res;
    });
    const sent: string[] = [];
    const sink: AlertSink = {
      name: 'gated',
      kind: 'test',
      routes: ['page'],
      async send(n) {
        await gate;
        sent.push(n.alert.id);
      },
    };
    const registry = new Registry();
    const d = dispatcher([sink], registry, 3);
    for (const id of ['a', 'b', 'c', 'd', 'e']) d.dispatch(note(id));
    expect(await registry.metrics()).toMatch(/hourglass_alert_queue_length\{sink="gated"\} 3/);
    release();
    await d.idle();
    // 'a' was being sent; 'b' and 'c' were the oldest waiting when 'd' and 'e' came
    expect(sent).toEqual(['a', 'd', 'e']);
    expect(await registry.metrics()).toMatch(/outcome="dropped"\} 2/);
  });
});
