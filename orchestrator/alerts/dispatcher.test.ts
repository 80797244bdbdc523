/**
 * The dispatcher with real sinks and local HTTP receivers: retries, giving up, per-sink order,
 * isolation from a hanging sink, the queue limit, closing, metrics and logs.
 */
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertNotification, AlertSink } from '../../core/ports/alert-sink.js';
import { createSink } from '../../infra/alerts/sinks.js';
import type { WebhookBody } from '../../infra/alerts/webhook-sink.js';
import { type Answer, type Received, type Receiver, startHttpReceiver } from '../../test/support/http-receiver.js';
import { AlertDispatcher, type DispatcherOptions } from './dispatcher.js';

type Request = Received<WebhookBody>;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A receiver on 127.0.0.1; `answer` returning null leaves the request unanswered. */
async function receiver(answer: (r: Omit<Request, 'status'>) => Answer | null): Promise<Receiver<WebhookBody>> {
  const rec = await startHttpReceiver<WebhookBody>(answer);
  cleanups.push(() => rec.close());
  return rec;
}

type LogEntry = { level: number; msg: string } & Record<string, unknown>;

/** A pino logger whose entries are kept, and waited for. */
function captureLogs(): { logger: Logger; entries: LogEntry[]; next(msg: RegExp): Promise<LogEntry> } {
  const entries: LogEntry[] = [];
  const listeners = new Set<() => void>();
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        entries.push(JSON.parse(line) as LogEntry);
        for (const l of listeners) l();
      },
    },
  );
  const next = (msg: RegExp) =>
    new Promise<LogEntry>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no log entry matched ${msg}; got ${JSON.stringify(entries)}`));
      }, 20_000);
      const check = () => {
        const hit = entries.find((e) => msg.test(e.msg));
        if (hit === undefined) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      listeners.add(check);
      check();
    });
  return { logger, entries, next };
}

function dispatcher(
  sinks: AlertSink[],
  options: Partial<DispatcherOptions> = {},
): { d: AlertDispatcher; registry: Registry; logs: ReturnType<typeof captureLogs> } {
  const registry = new Registry();
  const logs = captureLogs();
  const d = new AlertDispatcher({ sinks, logger: logs.logger, registry, backoffRealMs: 10, ...options });
  cleanups.push(() => d.close());
  return { d, registry, logs };
}

/** The value of one sample of the registry (0 when absent). */
async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const hit = (metric?.values ?? []).find((v) =>
    Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value),
  );
  return hit?.value ?? 0;
}

const note = (
  id: string,
  event: AlertNotification['event'] = 'trigger',
  route: AlertNotification['route'] = 'page',
): AlertNotification => ({
  event,
  route,
  sentAt: Date.UTC(2026, 10, 23, 14, 0),
  alert: {
    id,
    rule: 'consumer_stuck',
    type: 'EndSong',
    tier: 'high',
    state: event === 'resolve' ? 'resolved' : 'firing',
    summary: `alert ${id}`,
    details: {},
    openedAt: Date.UTC(2026, 10, 23, 13, 0),
    resolvedAt: event === 'resolve' ? Date.UTC(2026, 10, 23, 14, 0) : null,
    dedupKey: `hourglass/EndSong/consumer_stuck/${id}`,
  },
});

const webhook = (name: string, url: string, extra: { timeoutRealMs?: number; routes?: ('page' | 'ticket')[] } = {}) =>
  createSink({ name, kind: 'webhook', url, ...extra });

describe('alert dispatcher', () => {
  it('delivers on the third attempt after two 500 answers, counting the retries', async () => {
    const r = await receiver(() => ({ status: r.requests.length < 2 ? 500 : 202 }));
    const { d, registry, logs } = dispatcher([webhook('flaky', `${r.url}/flaky`)]);
    d.dispatch(note('1'));
    await d.idle();
    expect(r.requests.map((x) => [x.body.alert.id, x.status])).toEqual([
      ['1', 500],
      ['1', 500],
      ['1', 202],
    ]);
    const labels = { sink: 'flaky', route: 'page', event: 'trigger' };
    expect(await sample(registry, 'hourglass_alert_notifications_total', { ...labels, outcome: 'delivered' })).toBe(1);
    expect(await sample(registry, 'hourglass_alert_notifications_total', { ...labels, outcome: 'failed' })).toBe(0);
    expect(await sample(registry, 'hourglass_alert_delivery_retries_total', { sink: 'flaky' })).toBe(2);
    expect(await sample(registry, 'hourglass_alert_queue_length', { sink: 'flaky' })).toBe(0);
    const retries = logs.entries.filter((e) => /retrying/.test(e.msg));
    expect(retries.map((e) => [e.level, e.sink, e.alertId, e.attempt])).toEqual([
      [40, 'flaky', '1', 1],
      [40, 'flaky', '1', 2],
    ]);
  });

  it('gives up a 400 at once, and a retriable failure after maxAttempts; logs sink, alert and attempt', async () => {
    const r = await receiver((x) => ({ status: x.path === '/bad' ? 400 : 503 }));
    const { d, registry, logs } = dispatcher(
      [webhook('bad', `${r.url}/bad`, { routes: ['ticket'] }), webhook('down', `${r.url}/down`, { routes: ['page'] })],
      { maxAttempts: 3 },
    );
    d.dispatch(note('2', 'trigger', 'ticket'));
    d.dispatch(note('3', 'trigger', 'page'));
    await d.idle();
    expect(r.requests.filter((x) => x.path === '/bad')).toHaveLength(1);
    expect(r.requests.filter((x) => x.path === '/down')).toHaveLength(3);
    expect(
      await sample(registry, 'hourglass_alert_notifications_total', {
        sink: 'bad',
        route: 'ticket',
        outcome: 'failed',
      }),
    ).toBe(1);
    expect(
      await sample(registry, 'hourglass_alert_notifications_total', { sink: 'down', route: 'page', outcome: 'failed' }),
    ).toBe(1);
    expect(await sample(registry, 'hourglass_alert_delivery_retries_total', { sink: 'bad' })).toBe(0);
    expect(await sample(registry, 'hourglass_alert_delivery_retries_total', { sink: 'down' })).toBe(2);
    const failures = logs.entries.filter((e) => e.level === 50);
    expect(failures.map((e) => [e.sink, e.alertId, e.attempt, e.retriable])).toEqual(
      expect.arrayContaining([
        ['bad', '2', 1, false],
        ['down', '3', 3, true],
      ]),
    );
    expect(failures).toHaveLength(2);
    expect((failures[0]?.err as { message?: string } | undefined)?.message).toMatch(/HTTP (400|503)/);
  });

  it('keeps each sink in order under retries: a trigger is never overtaken by its resolve', async () => {
    // the trigger of alert 7 fails twice; its resolve and the next trigger are dispatched at once
    let triggerFailures = 0;
    const r = await receiver((x) => {
      if (x.path === '/a' && x.body.event === 'trigger' && x.body.alert.id === '7' && triggerFailures < 2) {
        triggerFailures++;
        return { status: 503 };
      }
      return { status: 202 };
    });
    const { d } = dispatcher([webhook('a', `${r.url}/a`), webhook('b', `${r.url}/b`)]);
    d.dispatch(note('7'));
    d.dispatch(note('7', 'resolve'));
    d.dispatch(note('8'));
    await d.idle();
    const seen = (path: string) =>
      r.requests.filter((x) => x.path === path).map((x) => `${x.body.event} ${x.body.alert.id} ${x.status}`);
    expect(seen('/a')).toEqual(['trigger 7 503', 'trigger 7 503', 'trigger 7 202', 'resolve 7 202', 'trigger 8 202']);
    expect(seen('/b')).toEqual(['trigger 7 202', 'resolve 7 202', 'trigger 8 202']);
  });

  it('a hanging sink delays neither dispatch nor another sink; close() aborts it promptly', async () => {
    const hanging = await receiver(() => null);
    const fast = await receiver(() => ({ status: 202 }));
    const fastSink = webhook('fast', fast.url);
    let accepted = 0;
    let allAccepted: () => void = () => undefined;
    const fiveAccepted = new Promise<void>((resolve) => (allAccepted = resolve));
    const counting: AlertSink = {
      name: fastSink.name,
      kind: fastSink.kind,
      routes: fastSink.routes,
      async send(n, signal) {
        await fastSink.send(n, signal);
        if (++accepted === 5) allAccepted();
      },
    };
    const { d, registry, logs } = dispatcher([webhook('slow', hanging.url, { timeoutRealMs: 60_000 }), counting]);
    for (let i = 0; i < 5; i++) d.dispatch(note(String(i)));
    // dispatch only queued: nothing was sent while it ran
    expect([hanging.requests.length, fast.requests.length]).toEqual([0, 0]);
    await fiveAccepted;
    await new Promise((resolve) => setImmediate(resolve)); // lets the dispatcher count the last one
    expect(fast.requests.map((x) => x.body.alert.id)).toEqual(['0', '1', '2', '3', '4']);
    await hanging.requestCount(1);
    expect(hanging.requests).toHaveLength(1); // one at a time: the others wait behind it
    expect(await sample(registry, 'hourglass_alert_queue_length', { sink: 'slow' })).toBe(5);

    const started = performance.now();
    await d.close();
    expect(performance.now() - started).toBeLessThan(5_000);
    await hanging.connectionClosed(0); // the request in flight was aborted
    const counted = (sink: string, outcome: string) =>
      sample(registry, 'hourglass_alert_notifications_total', { sink, outcome });
    expect(await counted('fast', 'delivered')).toBe(5);
    expect(await counted('slow', 'dropped')).toBe(5);
    expect(await counted('slow', 'failed')).toBe(0);
    expect(await sample(registry, 'hourglass_alert_queue_length', { sink: 'slow' })).toBe(0);
    const notDelivered = logs.entries.filter((e) => /dispatcher is closing/.test(e.msg));
    expect(notDelivered.map((e) => [e.sink, e.alertId])).toEqual(['0', '1', '2', '3', '4'].map((id) => ['slow', id]));

    d.dispatch(note('late'));
    expect(await counted('fast', 'dropped')).toBe(1);
    expect(fast.requests).toHaveLength(5);
  });

  it('close() does not wait for a sink that ignores its abort signal, nor for a retry', async () => {
    let sendStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (sendStarted = resolve));
    const stuck: AlertSink = {
      name: 'stuck',
      kind: 'test',
      routes: ['page'],
      send: () => {
        sendStarted();
        return new Promise<void>(() => undefined);
      },
    };
    const r = await receiver(() => ({ status: 503 }));
    const { d, registry, logs } = dispatcher([stuck, webhook('down', r.url)], { backoffRealMs: 60_000 });
    d.dispatch(note('9'));
    await started;
    await logs.next(/retrying/); // 'down' failed once and waits a minute for its next attempt
    const t0 = performance.now();
    await d.close();
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(r.requests).toHaveLength(1);
    expect(await sample(registry, 'hourglass_alert_notifications_total', { outcome: 'dropped', sink: 'stuck' })).toBe(
      1,
    );
    expect(await sample(registry, 'hourglass_alert_notifications_total', { outcome: 'dropped', sink: 'down' })).toBe(1);
  });

  it('waits as long as a Retry-After asks, capped by maxBackoffRealMs', async () => {
    const r = await receiver((x) =>
      r.requests.filter((y) => y.path === x.path).length === 0
        ? { status: x.path === '/a' ? 429 : 503, headers: { 'retry-after': x.path === '/a' ? '1' : '3600' } }
        : { status: 202 },
    );
    const { d, logs } = dispatcher([webhook('a', `${r.url}/a`), webhook('b', `${r.url}/b`)], {
      backoffRealMs: 1,
      maxBackoffRealMs: 1500,
    });
    d.dispatch(note('5'));
    await d.idle();
    expect(r.requests.map((x) => `${x.path} ${x.status}`).sort()).toEqual(['/a 202', '/a 429', '/b 202', '/b 503']);
    const waits = Object.fromEntries(
      logs.entries.filter((e) => /retrying/.test(e.msg)).map((e) => [e.sink as string, e.retryInMs]),
    );
    expect(waits).toEqual({ a: 1000, b: 1500 });
  });

  it('a full queue drops its oldest waiting notification, not the one being sent', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let sending: () => void = () => undefined;
    const firstSend = new Promise<void>((resolve) => (sending = resolve));
    const sent: string[] = [];
    const gated: AlertSink = {
      name: 'gated',
      kind: 'test',
      routes: ['page'],
      async send(n) {
        sending();
        await gate;
        sent.push(n.alert.id);
      },
    };
    const { d, registry, logs } = dispatcher([gated], { queueLimit: 2 });
    d.dispatch(note('a'));
    await firstSend; // 'a' is being sent
    for (const id of ['b', 'c', 'd', 'e']) d.dispatch(note(id));
    expect(await sample(registry, 'hourglass_alert_queue_length', { sink: 'gated' })).toBe(3);
    release();
    await d.idle();
    expect(sent).toEqual(['a', 'd', 'e']);
    expect(await sample(registry, 'hourglass_alert_notifications_total', { sink: 'gated', outcome: 'dropped' })).toBe(
      2,
    );
    expect(logs.entries.filter((e) => /queue full/.test(e.msg)).map((e) => e.alertId)).toEqual(['b', 'c']);
  });

  it('a broken sink neither throws out of dispatch nor keeps the notification from the others', async () => {
    const r = await receiver(() => ({ status: 202 }));
    const broken = { name: 'broken', kind: 'test', routes: null } as unknown as AlertSink;
    const throwing: AlertSink = {
      name: 'throwing',
      kind: 'test',
      routes: ['page'],
      send: () => {
        throw new TypeError('not a promise');
      },
    };
    const { d, registry } = dispatcher([broken, throwing, webhook('ok', r.url)]);
    expect(() => d.dispatch(note('6'))).not.toThrow();
    await d.idle();
    expect(r.requests.map((x) => x.body.alert.id)).toEqual(['6']);
    expect(await sample(registry, 'hourglass_alert_notifications_total', { sink: 'throwing', outcome: 'failed' })).toBe(
      1,
    );
  });
});
