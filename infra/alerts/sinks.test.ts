/** The sinks' payloads against local HTTP receivers, and how they classify failures. */
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertNotification } from '../../core/ports/alert-sink.js';
import { type Receiver, startReceiver } from '../../test/support/http-receiver.js';
import { createSink } from './sinks.js';

const alert = {
  id: '42',
  rule: 'slo_breached' as const,
  type: 'EndSong',
  tier: 'high' as const,
  state: 'firing' as const,
  summary: 'EndSong: hour 2026-11-23T10 is not published 3h 30m after its end (SLO 3h; closing)',
  details: { hour: '2026-11-23T10:00:00.000Z', hours: 2, paged: true, error: null },
  openedAt: Date.UTC(2026, 10, 23, 14, 0),
  resolvedAt: null,
  dedupKey: 'hourglass/EndSong/slo_breached/42',
};
const n = (over: Partial<AlertNotification> = {}): AlertNotification => ({
  event: 'trigger',
  route: 'page',
  alert,
  sentAt: Date.UTC(2026, 10, 23, 14, 0, 5),
  ...over,
});

describe('alert sinks', () => {
  let receiver: Receiver | null = null;
  afterEach(async () => {
    await receiver?.close();
    receiver = null;
  });

  it('webhook: the documented JSON body, with configured headers', async () => {
    receiver = await startReceiver(() => 200);
    const sink = createSink({
      name: 'tickets',
      kind: 'webhook',
      url: `${receiver.url}/hook`,
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(sink.routes).toEqual(['page', 'ticket']);
    await sink.send(n({ route: 'ticket', event: 'renotify' }));
    const [r] = receiver.received;
    expect(r?.headers.authorization).toBe('Bearer s3cret');
    expect(r?.headers['content-type']).toBe('application/json');
    expect(r?.body).toEqual({
      version: 1,
      event: 'renotify',
      route: 'ticket',
      sentAt: '2026-11-23T14:00:05.000Z',
      alert: {
        id: '42',
        rule: 'slo_breached',
        ruleDescription: 'an hour is not published and its timeliness budget is used up',
        type: 'EndSong',
        tier: 'high',
        state: 'firing',
        summary: alert.summary,
        details: alert.details,
        openedAt: '2026-11-23T14:00:00.000Z',
        resolvedAt: null,
        dedupKey: 'hourglass/EndSong/slo_breached/42',
      },
    });
  });

  it('PagerDuty: trigger with dedup key and severity by route, resolve with the same key, summary cut to 1024', async () => {
    receiver = await startReceiver(() => 202);
    const sink = createSink({
      name: 'oncall',
      kind: 'pagerduty',
      url: `${receiver.url}/v2/enqueue`,
      routingKey: 'KEY1',
    });
    expect(sink.routes).toEqual(['page']);
    await sink.send(n());
    await sink.send(n({ route: 'ticket', alert: { ...alert, summary: 'x'.repeat(2000) } }));
    await sink.send(n({ event: 'resolve', alert: { ...alert, state: 'resolved', resolvedAt: alert.openedAt + 1 } }));
    const [trigger, ticket, resolve] = receiver.received.map((r) => r.body as Record<string, unknown>);
    expect(trigger).toEqual({
      routing_key: 'KEY1',
      event_action: 'trigger',
      dedup_key: 'hourglass/EndSong/slo_breached/42',
      client: 'Hourglass',
      payload: {
        summary: alert.summary,
        source: 'hourglass',
        severity: 'critical',
        timestamp: '2026-11-23T14:00:05.000Z',
        component: 'EndSong',
        group: 'high',
        class: 'slo_breached',
        custom_details: {
          ...alert.details,
          rule: 'an hour is not published and its timeliness budget is used up',
          openedAt: '2026-11-23T14:00:00.000Z',
        },
      },
    });
    const tp = ticket?.payload as { severity: string; summary: string };
    expect(tp.severity).toBe('warning');
    expect(tp.summary).toHaveLength(1024);
    expect(tp.summary.endsWith('…')).toBe(true);
    expect(resolve).toEqual({ routing_key: 'KEY1', event_action: 'resolve', dedup_key: alert.dedupKey });
  });

  it('Slack: a fallback text and Block Kit blocks within their limits, special characters escaped', async () => {
    receiver = await startReceiver(() => 200);
    const sink = createSink({ name: 'slack', kind: 'slack', url: `${receiver.url}/services/T/B/X` });
    await sink.send(n({ alert: { ...alert, summary: 'EndSong: <b> & co' } }));
    await sink.send(n({ event: 'resolve', route: 'ticket' }));
    const [page, resolved] = receiver.received.map(
      (r) => r.body as { text: string; blocks: { type: string; text?: { text: string }; fields?: unknown[] }[] },
    );
    expect(page?.text).toBe(':rotating_light: PAGE — slo_breached on EndSong (high): EndSong: <b> & co');
    expect(page?.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    expect(page?.blocks[0]?.text?.text).toBe('PAGE — slo_breached on EndSong (high)');
    expect(page?.blocks[1]?.text?.text).toBe('EndSong: &lt;b&gt; &amp; co');
    expect(page?.blocks[2]?.fields).toHaveLength(4);
    expect(resolved?.text).toMatch(/^:white_check_mark: RESOLVED — slo_breached on EndSong/);
  });

  it('classifies failures: 5xx and 429 retriable, other 4xx not, timeouts and refused connections retriable', async () => {
    let status = 503;
    receiver = await startReceiver(() => status);
    const sink = createSink({ name: 'w', kind: 'webhook', url: `${receiver.url}/x`, timeoutRealMs: 300 });
    for (const [s, retriable] of [
      [500, true],
      [503, true],
      [429, true],
      [400, false],
      [404, false],
    ] as const) {
      status = s;
      await expect(sink.send(n())).rejects.toMatchObject({
        code: 'alert_delivery_failed',
        retriable,
        context: { sink: 'w', status: s },
      });
    }
    // a receiver that accepts the connection and never answers
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const hanging = createSink({ name: 'h', kind: 'webhook', url: `http://127.0.0.1:${port}/`, timeoutRealMs: 200 });
    const started = performance.now();
    await expect(hanging.send(n())).rejects.toMatchObject({ retriable: true, message: /no answer within 200 ms/ });
    expect(performance.now() - started).toBeLessThan(5000);
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    // nothing listens there any more
    const refused = createSink({ name: 'r', kind: 'webhook', url: `http://127.0.0.1:${port}/` });
    await expect(refused.send(n())).rejects.toMatchObject({ retriable: true, message: /network error: ECONNREFUSED/ });
  });

  it('refuses a PagerDuty sink without a routing key and a non-HTTP URL', () => {
    expect(() => createSink({ name: 'pd', kind: 'pagerduty', url: 'https://events.pagerduty.com/v2/enqueue' })).toThrow(
      /alerting\.sinks\[pd\]\.routingKey/,
    );
    expect(() => createSink({ name: 'w', kind: 'webhook', url: 'ftp://x' })).toThrow(/http:\/\/ or https:\/\//);
  });
});
