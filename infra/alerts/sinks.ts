/**
 * Builds the configured alert sinks (`alerting.sinks[]`): a generic JSON webhook
 * (`webhook-sink.ts`), a Slack incoming webhook (`slack-sink.ts`) or PagerDuty's Events API v2
 * (`pagerduty-sink.ts`), each a formatter over one HTTP POST (`http-post.ts`). The configuration
 * is checked here, so a sink that is built can only fail at delivery.
 */
import { ConfigInvalid } from '../../core/errors.js';
import type { AlertRoute, AlertSink, AlertSinkConfig } from '../../core/ports/alert-sink.js';
import { type HttpSinkOptions, requestHeaders } from './http-post.js';
import { pagerDutySink } from './pagerduty-sink.js';
import { slackSink } from './slack-sink.js';
import { webhookSink } from './webhook-sink.js';

export { PAGERDUTY_EVENTS_URL } from './pagerduty-sink.js';

/** Routes a sink receives when its configuration names none. */
export const DEFAULT_ROUTES: Readonly<Record<AlertSinkConfig['kind'], readonly AlertRoute[]>> = {
  webhook: ['page', 'ticket'],
  slack: ['page', 'ticket'],
  pagerduty: ['page'],
};

const ROUTES: readonly AlertRoute[] = ['page', 'ticket'];

/** The sink of one configuration entry; throws ConfigInvalid when the entry is unusable. */
export function createSink(config: AlertSinkConfig): AlertSink {
  const at = `alerting.sinks[${config.name}]`;
  if (typeof config.name !== 'string' || config.name === '') {
    throw new ConfigInvalid({ key: 'alerting.sinks[].name', rule: 'every sink needs a name' });
  }
  if (!Object.hasOwn(DEFAULT_ROUTES, config.kind)) {
    throw new ConfigInvalid({
      key: `${at}.kind`,
      rule: `one of webhook, slack, pagerduty (got ${JSON.stringify(config.kind)})`,
    });
  }
  checkUrl(config.url, `${at}.url`);
  const routes = config.routes ?? DEFAULT_ROUTES[config.kind];
  if (!Array.isArray(routes) || routes.length === 0 || routes.some((r) => !ROUTES.includes(r))) {
    throw new ConfigInvalid({ key: `${at}.routes`, rule: 'a non-empty list of "page" and "ticket"' });
  }
  if (config.headers !== undefined) {
    try {
      requestHeaders(config.headers);
    } catch (err) {
      throw new ConfigInvalid({ key: `${at}.headers`, rule: `valid HTTP header names and values (${String(err)})` });
    }
  }
  const t = config.timeoutRealMs;
  if (t !== undefined && !(Number.isFinite(t) && t > 0)) {
    throw new ConfigInvalid({ key: `${at}.timeoutRealMs`, rule: 'a positive number of milliseconds' });
  }
  const o: HttpSinkOptions = {
    name: config.name,
    url: config.url,
    routes: [...routes],
    headers: config.headers,
    timeoutRealMs: config.timeoutRealMs,
  };
  if (config.kind === 'webhook') return webhookSink(o);
  if (config.kind === 'slack') return slackSink(o);
  const routingKey = config.routingKey;
  if (typeof routingKey !== 'string' || routingKey.trim() === '') {
    throw new ConfigInvalid({
      key: `${at}.routingKey`,
      rule: 'a PagerDuty sink needs the routing key (integration key) of its Events API v2 integration',
    });
  }
  return pagerDutySink({ ...o, routingKey });
}

function checkUrl(url: unknown, key: string): void {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    throw new ConfigInvalid({ key, rule: `an http:// or https:// URL (got ${JSON.stringify(url)})` });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ConfigInvalid({ key, rule: `an http:// or https:// URL (got ${u.protocol})` });
  }
  if (u.username !== '' || u.password !== '') {
    throw new ConfigInvalid({ key, rule: 'a URL without user:password (put credentials in headers)' });
  }
}
