/**
 * The alert sinks against local HTTP receivers: the exact payload of each format, the headers
 * sent, and how answers, timeouts, cancellations and network errors are classified.
 */
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertDeliveryFailed, ConfigInvalid } from '../../core/errors.js';
import type { AlertNotification, AlertSinkConfig, AlertView } from '../../core/ports/alert-sink.js';
import { type Answer, type Received, type Receiver, startHttpReceiver } from '../../test/support/http-receiver.js';
import { type AlertDeliveryError, parseRetryAfter, truncate } from './http-post.js';
import { createSink } from './sinks.js';
import type { SlackBody } from './slack-sink.js';

type Request = Omit<Received, 'status'>;

const receivers: Receiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
});

/** A receiver on 127.0.0.1; `answer` returning null leaves the request unanswered. */
async function receiver(
  answer: (r: Omit<Request, 'status'>) => Answer | null = () => ({ status: 200, body: '' }),
): Promise<Receiver> {
  const r = await startHttpReceiver(answer);
  receivers.push(r);
  return r;
}

/** A port nothing listens on (it was just released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const alert: AlertView = {
  id: '42',
  rule: 'slo_breached',
  type: 'EndSong',
  tier: 'high',
  state: 'firing',
  summary: 'EndSong: hour 2026-11-23T10 is not published 3h 30m after its end (SLO 3h; closing)',
  details: { hour: '2026-11-23T10:00:00.000Z', hours: 2, paged: true, error: null },
  openedAt: Date.UTC(2026, 10, 23, 14, 0),
  resolvedAt: null,
  dedupKey: 'hourglass/EndSong/slo_breached/42',
};
const resolvedAlert: AlertView = { ...alert, state: 'resolved', resolvedAt: Date.UTC(2026, 10, 23, 15, 10) };
const note = (over: Partial<AlertNotification> = {}): AlertNotification => ({
  event: 'trigger',
  route: 'page',
  alert,
  sentAt: Date.UTC(2026, 10, 23, 14, 0, 5),
  ...over,
});

/** The error `p` rejected with (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<AlertDeliveryError> {
  const outcome = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(AlertDeliveryFailed);
  return outcome as AlertDeliveryError;
}

describe('webhook sink', () => {
  it('POSTs the documented version-1 body with the configured headers', async () => {
    const r = await receiver(() => ({ status: 204 }));
    const sink = createSink({
      name: 'tickets',
      kind: 'webhook',
      url: `${r.url}/hook?team=data`,
      headers: { authorization: 'Bearer s3cret', 'X-Team': 'data' },
    });
    expect([sink.name, sink.kind, sink.routes]).toEqual(['tickets', 'webhook', ['page', 'ticket']]);
    await sink.send(note({ route: 'ticket', event: 'renotify' }));
    await sink.send(note({ route: 'ticket', event: 'resolve', alert: resolvedAlert }));
    const [renotify, resolve] = r.requests;
    expect(renotify?.method).toBe('POST');
    expect(renotify?.path).toBe('/hook?team=data');
    expect(renotify?.headers).toMatchObject({
      authorization: 'Bearer s3cret',
      'x-team': 'data',
      'content-type': 'application/json',
      'user-agent': 'hourglass-alerting',
    });
    expect(renotify?.body).toEqual({
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
        details: { hour: '2026-11-23T10:00:00.000Z', hours: 2, paged: true, error: null },
        openedAt: '2026-11-23T14:00:00.000Z',
        resolvedAt: null,
        dedupKey: 'hourglass/EndSong/slo_breached/42',
      },
    });
    expect(resolve?.body).toMatchObject({
      event: 'resolve',
      alert: { state: 'resolved', resolvedAt: '2026-11-23T15:10:00.000Z', dedupKey: alert.dedupKey },
    });
  });

  it('a configured header replaces a default one of the same name', async () => {
    const r = await receiver();
    const sink = createSink({
      name: 'w',
      kind: 'webhook',
      url: r.url,
      headers: { 'Content-Type': 'application/json; charset=utf-8', 'User-Agent': 'ops-bridge' },
    });
    await sink.send(note());
    expect(r.requests[0]?.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.requests[0]?.headers['user-agent']).toBe('ops-bridge');
  });
});

describe('Slack sink', () => {
  it('sends a one-line fallback text and header, section, fields and context blocks; "ok" is success', async () => {
    const r = await receiver(() => ({ status: 200, body: 'ok' }));
    const sink = createSink({ name: 'slack', kind: 'slack', url: `${r.url}/services/T0/B0/X0` });
    expect(sink.routes).toEqual(['page', 'ticket']);
    await sink.send(note());
    expect(r.requests[0]?.body).toEqual({
      text: `:rotating_light: PAGE — slo_breached on EndSong (high): ${alert.summary}`,
      blocks: [
        {
          type: 'header',
          text: { type: 'plain_text', text: ':rotating_light: PAGE — slo_breached on EndSong (high)', emoji: true },
        },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: `${alert.summary}\n_an hour is not published and its timeliness budget is used up_`,
          },
        },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*hour*\n2026-11-23T10:00:00.000Z' },
            { type: 'mrkdwn', text: '*hours*\n2' },
            { type: 'mrkdwn', text: '*paged*\ntrue' },
            { type: 'mrkdwn', text: '*error*\nnull' },
          ],
        },
        {
          type: 'context',
          elements: [
            { type: 'mrkdwn', text: 'opened 2026-11-23T14:00:00.000Z' },
            { type: 'mrkdwn', text: 'page · alert 42 · hourglass/EndSong/slo_breached/42' },
          ],
        },
      ],
    });
  });

  it('titles tickets, re-notifications and resolutions; escapes mrkdwn; leaves out empty details', async () => {
    const r = await receiver(() => ({ status: 200, body: 'ok' }));
    const sink = createSink({ name: 'slack', kind: 'slack', url: r.url });
    await sink.send(note({ route: 'ticket', alert: { ...alert, summary: 'a <b> & c\nsecond line', details: {} } }));
    await sink.send(note({ event: 'renotify' }));
    await sink.send(note({ event: 'resolve', alert: resolvedAlert }));
    const [ticket, renotify, resolve] = r.requests.map((x) => x.body as SlackBody);
    expect(ticket?.text).toBe(':ticket: TICKET — slo_breached on EndSong (high): a &lt;b&gt; &amp; c second line');
    expect(ticket?.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    expect(ticket?.blocks[1]).toMatchObject({
      text: { text: expect.stringMatching(/^a &lt;b&gt; &amp; c second line\n/) },
    });
    expect(renotify?.blocks[0]).toMatchObject({
      text: { text: ':rotating_light: PAGE — slo_breached on EndSong (high) — still firing' },
    });
    expect(resolve?.text).toBe(`:white_check_mark: RESOLVED — slo_breached on EndSong (high): ${alert.summary}`);
    expect(resolve?.blocks.at(-1)).toMatchObject({
      elements: [{ text: 'opened 2026-11-23T14:00:00.000Z · resolved 2026-11-23T15:10:00.000Z' }, {}],
    });
  });

  it("keeps every text within Block Kit's limits", async () => {
    const r = await receiver(() => ({ status: 200, body: 'ok' }));
    const sink = createSink({ name: 'slack', kind: 'slack', url: r.url });
    const details = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`figure${i}`, '&'.repeat(3000)]));
    await sink.send(
      note({
        alert: { ...alert, type: 'T'.repeat(200), summary: '<&>'.repeat(3000), details, dedupKey: 'k'.repeat(3000) },
      }),
    );
    const body = r.requests[0]?.body as SlackBody;
    expect(body.text.length).toBeLessThanOrEqual(3000);
    const texts: { text: string; max: number }[] = [];
    for (const b of body.blocks) {
      expect(['header', 'section', 'context']).toContain(b.type);
      if (b.type === 'header') texts.push({ text: b.text.text, max: 150 });
      else if (b.type === 'context') for (const e of b.elements) texts.push({ text: e.text, max: 2000 });
      else if ('fields' in b) {
        expect(b.fields).toHaveLength(10);
        expect(b.fields[9]?.text).toBe("*…*\n6 more in the alert's details");
        for (const f of b.fields) texts.push({ text: f.text, max: 2000 });
      } else texts.push({ text: b.text.text, max: 3000 });
    }
    expect(texts).toHaveLength(1 + 1 + 10 + 2);
    for (const t of texts) {
      expect(t.text.length).toBeLessThanOrEqual(t.max);
      // a cut never leaves half an escape behind
      expect(t.text).not.toMatch(/&(?!amp;|lt;|gt;)/);
    }
    expect(texts[0]?.text).toHaveLength(150);
    expect(texts[0]?.text.endsWith('…')).toBe(true);
  });

  it("treats Slack's error answers as not retriable and quotes them", async () => {
    const r = await receiver(() => ({ status: 404, body: 'channel_not_found' }));
    const sink = createSink({ name: 'slack', kind: 'slack', url: r.url });
    const err = await failure(sink.send(note()));
    expect(err.retriable).toBe(false);
    expect(err.context).toMatchObject({ sink: 'slack', status: 404 });
    expect(err.message).toBe(
      'alert sink slack did not accept the notification: the receiver answered "channel_not_found" (HTTP 404)',
    );
  });
});

describe('PagerDuty sink', () => {
  const accepted = (req: Request): Answer => ({
    status: 202,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      status: 'success',
      message: 'Event processed',
      dedup_key: (req.body as { dedup_key: string }).dedup_key,
    }),
  });

  it('triggers with the dedup key and severity by route, re-notifies with the same key, resolves it', async () => {
    const r = await receiver(accepted);
    const sink = createSink({ name: 'oncall', kind: 'pagerduty', url: `${r.url}/v2/enqueue`, routingKey: 'KEY1' });
    expect([sink.kind, sink.routes]).toEqual(['pagerduty', ['page']]);
    await sink.send(note());
    await sink.send(note({ event: 'renotify', sentAt: Date.UTC(2026, 10, 23, 15, 0) }));
    await sink.send(note({ route: 'ticket' }));
    await sink.send(note({ event: 'resolve', alert: resolvedAlert }));
    expect(r.requests.map((x) => x.path)).toEqual(Array(4).fill('/v2/enqueue'));
    const [trigger, renotify, ticket, resolve] = r.requests.map((x) => x.body as Record<string, unknown>);
    const expected = {
      routing_key: 'KEY1',
      event_action: 'trigger',
      dedup_key: 'hourglass/EndSong/slo_breached/42',
      payload: {
        summary: alert.summary,
        source: 'hourglass',
        severity: 'critical',
        timestamp: '2026-11-23T14:00:05.000Z',
        component: 'EndSong',
        group: 'high',
        class: 'slo_breached',
        custom_details: { hour: '2026-11-23T10:00:00.000Z', hours: 2, paged: true, error: null },
      },
      client: 'Hourglass',
    };
    expect(trigger).toEqual(expected);
    expect(renotify).toEqual({ ...expected, payload: { ...expected.payload, timestamp: '2026-11-23T15:00:00.000Z' } });
    expect(ticket).toEqual({ ...expected, payload: { ...expected.payload, severity: 'warning' } });
    expect(resolve).toEqual({ routing_key: 'KEY1', event_action: 'resolve', dedup_key: alert.dedupKey });
  });

  it('cuts the summary to 1,024 characters and replaces a dedup key longer than 255 by a stable digest', async () => {
    const r = await receiver(accepted);
    const sink = createSink({ name: 'oncall', kind: 'pagerduty', url: r.url, routingKey: 'KEY1' });
    const long = { ...alert, summary: 'x'.repeat(2000), dedupKey: `hourglass/${'T'.repeat(300)}/slo_breached/42` };
    await sink.send(note({ alert: long }));
    await sink.send(note({ event: 'resolve', alert: { ...long, state: 'resolved', resolvedAt: long.openedAt + 1 } }));
    const [trigger, resolve] = r.requests.map((x) => x.body as { dedup_key: string; payload?: { summary: string } });
    expect(trigger?.payload?.summary).toBe(`${'x'.repeat(1023)}…`);
    expect(trigger?.dedup_key).toMatch(/^hourglass\/sha256:[0-9a-f]{64}$/);
    expect(resolve?.dedup_key).toBe(trigger?.dedup_key);
  });

  it('an invalid event (400) is not retriable', async () => {
    const r = await receiver(() => ({
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: '{"status":"invalid event","message":"Event object is invalid","errors":["Length of \'routing_key\' is incorrect"]}',
    }));
    const sink = createSink({ name: 'oncall', kind: 'pagerduty', url: r.url, routingKey: 'short' });
    const err = await failure(sink.send(note()));
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/invalid event.*\(HTTP 400\)$/);
  });
});

describe('delivery failures', () => {
  it('5xx and 429 answers are retriable, other 4xx are not; the reason quotes the start of the body', async () => {
    let status = 500;
    const r = await receiver(() => ({ status, body: `  error\n  ${'y'.repeat(500)}` }));
    const sink = createSink({ name: 'w', kind: 'webhook', url: r.url });
    const cases = [
      [500, true],
      [502, true],
      [503, true],
      [504, true],
      [429, true],
      [400, false],
      [401, false],
      [403, false],
      [404, false],
      [410, false],
      [422, false],
    ] as const;
    for (const [s, retriable] of cases) {
      status = s;
      const err = await failure(sink.send(note()));
      expect({ status: err.context.status, retriable: err.retriable }).toEqual({ status: s, retriable });
      expect(err.code).toBe('alert_delivery_failed');
      expect(err.message).toBe(
        `alert sink w did not accept the notification: the receiver answered "error ${'y'.repeat(194)}…" (HTTP ${s})`,
      );
      expect(err.retryAfterRealMs).toBeUndefined();
    }
    expect(r.requests).toHaveLength(cases.length);
  });

  it("exposes a 429 or 503 answer's Retry-After, in seconds or as a date", async () => {
    const answers: Answer[] = [
      { status: 429, headers: { 'retry-after': '7' } },
      { status: 503, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } },
      { status: 500, headers: { 'retry-after': '7' } },
    ];
    const r = await receiver(() => answers.shift() ?? { status: 200 });
    const sink = createSink({ name: 'w', kind: 'webhook', url: r.url });
    expect((await failure(sink.send(note()))).retryAfterRealMs).toBe(7000);
    const dated = (await failure(sink.send(note()))).retryAfterRealMs;
    expect(dated).toBeGreaterThan(0);
    expect(dated).toBeLessThanOrEqual(60_000);
    expect((await failure(sink.send(note()))).retryAfterRealMs).toBeUndefined();
  });

  it('does not follow a redirect (a redirected POST may become a GET)', async () => {
    const r = await receiver((req) =>
      req.path === '/old' ? { status: 302, headers: { location: '/new' } } : { status: 200 },
    );
    const sink = createSink({ name: 'w', kind: 'webhook', url: `${r.url}/old` });
    const err = await failure(sink.send(note()));
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/redirect.*\(HTTP 302\)$/);
    expect(r.requests.map((x) => x.path)).toEqual(['/old']);
  });

  it('a receiver that never answers times out (retriable) and the connection is closed', async () => {
    const r = await receiver(() => null);
    const sink = createSink({ name: 'h', kind: 'webhook', url: r.url, timeoutRealMs: 200 });
    const started = performance.now();
    const err = await failure(sink.send(note()));
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(err.retriable).toBe(true);
    expect(err.message).toBe('alert sink h did not accept the notification: no answer within 200 ms');
    await r.connectionClosed(0);
  });

  it('a cancelled attempt ends at once and is not retriable', async () => {
    const r = await receiver(() => null);
    const sink = createSink({ name: 'h', kind: 'webhook', url: r.url, timeoutRealMs: 60_000 });
    const controller = new AbortController();
    const sending = failure(sink.send(note(), controller.signal));
    await r.requestCount(1);
    controller.abort();
    const err = await sending;
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/delivery cancelled$/);
    await r.connectionClosed(0);
  });

  it('a refused connection is a retriable network error', async () => {
    const port = await closedPort();
    const sink = createSink({ name: 'r', kind: 'webhook', url: `http://127.0.0.1:${port}/` });
    const err = await failure(sink.send(note()));
    expect(err.retriable).toBe(true);
    expect(err.context.status).toBeUndefined();
    expect(err.message).toMatch(/network error: ECONNREFUSED$/);
  });
});

describe('createSink', () => {
  const invalid = (config: Partial<AlertSinkConfig>): ConfigInvalid => {
    try {
      createSink({ name: 's', kind: 'webhook', url: 'https://example.test/hook', ...config } as AlertSinkConfig);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigInvalid);
      return err as ConfigInvalid;
    }
    throw new Error(`accepted ${JSON.stringify(config)}`);
  };

  it('refuses a PagerDuty sink without a routing key', () => {
    for (const routingKey of [undefined, '', '  ']) {
      const err = invalid({
        name: 'pd',
        kind: 'pagerduty',
        url: 'https://events.pagerduty.com/v2/enqueue',
        routingKey,
      });
      expect(err.context.key).toBe('alerting.sinks[pd].routingKey');
    }
  });

  it('refuses URLs other than http(s), URLs with credentials, bad headers, timeouts, routes and kinds', () => {
    for (const url of ['ftp://example.test/x', 'not a url', 'file:///etc/passwd', 'https://user:pw@example.test/']) {
      expect(invalid({ url }).context.key).toBe('alerting.sinks[s].url');
    }
    expect(invalid({ headers: { 'bad header': 'x' } }).context.key).toBe('alerting.sinks[s].headers');
    expect(invalid({ timeoutRealMs: 0 }).context.key).toBe('alerting.sinks[s].timeoutRealMs');
    expect(invalid({ routes: [] }).context.key).toBe('alerting.sinks[s].routes');
    expect(invalid({ routes: ['pager' as 'page'] }).context.key).toBe('alerting.sinks[s].routes');
    expect(invalid({ kind: 'email' as 'webhook' }).context.key).toBe('alerting.sinks[s].kind');
  });

  it('takes the configured routes, else page and ticket (page only for PagerDuty)', () => {
    const base = { name: 's', url: 'http://127.0.0.1:9/' };
    expect(createSink({ ...base, kind: 'slack' }).routes).toEqual(['page', 'ticket']);
    expect(createSink({ ...base, kind: 'webhook', routes: ['ticket'] }).routes).toEqual(['ticket']);
    expect(createSink({ ...base, kind: 'pagerduty', routingKey: 'k' }).routes).toEqual(['page']);
    expect(createSink({ ...base, kind: 'pagerduty', routingKey: 'k', routes: ['page', 'ticket'] }).routes).toEqual([
      'page',
      'ticket',
    ]);
  });
});

describe('helpers', () => {
  it('parseRetryAfter reads seconds and HTTP dates', () => {
    const now = Date.UTC(2026, 10, 23, 12, 0, 0);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  it('truncate marks the cut and never splits a surrogate pair', () => {
    expect(truncate('abc', 3)).toBe('abc');
    expect(truncate('abcd', 3)).toBe('ab…');
    expect(truncate('a😀bc', 4)).toBe('a😀…');
    expect(truncate('ab😀c', 4)).toBe('ab…');
  });
});
