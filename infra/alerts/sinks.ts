/**
 * The alert sinks: a generic JSON webhook, Slack's incoming webhooks and PagerDuty's Events API
 * v2, each a small formatter over one HTTP POST (`http-post.ts`).
 *
 * Generic webhook body (version 1):
 *   { "version": 1, "event": "trigger" | "renotify" | "resolve", "route": "page" | "ticket",
 *     "sentAt": ISO-8601,
 *     "alert": { "id", "rule", "ruleDescription", "type", "tier", "state", "summary", "details",
 *                "openedAt": ISO-8601, "resolvedAt": ISO-8601 | null, "dedupKey" } }
 *
 * Slack: `{ "text", "blocks" }` with a header, the summary and the alert's fields
 * (https://api.slack.com/messaging/webhooks; answers 200 `ok`).
 *
 * PagerDuty Events API v2 (https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty):
 * `trigger` with `routing_key`, `dedup_key` and a payload (summary ≤ 1024 characters, source,
 * severity, timestamp, component, group, class, custom_details); a re-notification is a trigger
 * with the same `dedup_key`; `resolve` carries only the routing and dedup keys. Answers 202.
 */
import { ConfigInvalid } from '../../core/errors.js';
import {
  ALERT_RULES,
  type AlertNotification,
  type AlertRoute,
  type AlertSink,
  type AlertSinkConfig,
  type AlertView,
} from '../../core/ports/alert-sink.js';
import { postJson } from './http-post.js';

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
const DEFAULT_TIMEOUT_REAL_MS = 5_000;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function webhookBody(n: AlertNotification) {
  const a = n.alert;
  return {
    version: 1,
    event: n.event,
    route: n.route,
    sentAt: new Date(n.sentAt).toISOString(),
    alert: {
      id: a.id,
      rule: a.rule,
      ruleDescription: ALERT_RULES[a.rule],
      type: a.type,
      tier: a.tier,
      state: a.state,
      summary: a.summary,
      details: a.details,
      openedAt: iso(a.openedAt),
      resolvedAt: iso(a.resolvedAt),
      dedupKey: a.dedupKey,
    },
  };
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Slack mrkdwn needs `&`, `<` and `>` escaped. */
function mrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function slackBody(n: AlertNotification) {
  const a = n.alert;
  const label =
    n.event === 'resolve'
      ? ':white_check_mark: RESOLVED'
      : n.route === 'page'
        ? ':rotating_light: PAGE'
        : ':ticket: TICKET';
  const again = n.event === 'renotify' ? ' (still firing)' : '';
  const title = `${label} — ${a.rule} on ${a.type} (${a.tier})${again}`;
  const details = Object.entries(a.details)
    .slice(0, 8)
    .map(([k, v]) => ({ type: 'mrkdwn', text: cut(`*${mrkdwn(k)}*\n${mrkdwn(String(v))}`, 2000) }));
  return {
    text: cut(`${title}: ${a.summary}`, 3000),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: cut(title.replace(/^:[a-z_]+: /, ''), 150), emoji: true } },
      { type: 'section', text: { type: 'mrkdwn', text: cut(mrkdwn(a.summary), 3000) } },
      ...(details.length > 0 ? [{ type: 'section', fields: details }] : []),
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: cut(
              `opened ${iso(a.openedAt)}${a.resolvedAt !== null ? ` · resolved ${iso(a.resolvedAt)}` : ''} · ${mrkdwn(a.dedupKey)}`,
              2000,
            ),
          },
        ],
      },
    ],
  };
}

export function pagerDutyBody(n: AlertNotification, routingKey: string) {
  const a: AlertView = n.alert;
  if (n.event === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key: a.dedupKey };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: a.dedupKey,
    client: 'Hourglass',
    payload: {
      summary: cut(a.summary, 1024),
      source: 'hourglass',
      severity: n.route === 'page' ? 'critical' : 'warning',
      timestamp: new Date(n.sentAt).toISOString(),
      component: a.type,
      group: a.tier,
      class: a.rule,
      custom_details: { ...a.details, rule: ALERT_RULES[a.rule], openedAt: iso(a.openedAt) },
    },
  };
}

export function createSink(config: AlertSinkConfig): AlertSink {
  const at = `alerting.sinks[${config.name}]`;
  if (!/^https?:\/\//.test(config.url))
    throw new ConfigInvalid({ key: `${at}.url`, rule: 'an http:// or https:// URL' });
  const timeoutRealMs = config.timeoutRealMs ?? DEFAULT_TIMEOUT_REAL_MS;
  const post = (body: unknown, signal?: AbortSignal) =>
    postJson({ sink: config.name, url: config.url, body, headers: config.headers, timeoutRealMs, signal });
  let format: (n: AlertNotification) => unknown;
  let routes: readonly AlertRoute[] = config.routes ?? ['page', 'ticket'];
  switch (config.kind) {
    case 'webhook':
      format = webhookBody;
      break;
    case 'slack':
      format = slackBody;
      break;
    case 'pagerduty': {
      const key = config.routingKey;
      if (key === undefined || key === '') {
        throw new ConfigInvalid({
          key: `${at}.routingKey`,
          rule: 'a PagerDuty sink needs the routing key of its integration',
        });
      }
      format = (n) => pagerDutyBody(n, key);
      routes = config.routes ?? ['page'];
      break;
    }
  }
  return {
    name: config.name,
    kind: config.kind,
    routes,
    async send(n, signal) {
      await post(format(n), signal);
    },
  };
}
