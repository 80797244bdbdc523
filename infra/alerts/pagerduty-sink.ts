/**
 * The PagerDuty sink: PagerDuty's Events API v2
 * (https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty),
 * `POST https://events.pagerduty.com/v2/enqueue` unless configured otherwise. PagerDuty answers
 * 202 with `{"status":"success","dedup_key":…}` (any 2xx is success); 400 means the event is
 * invalid (not retried), 429 and 5xx are retried.
 *
 * A `trigger` and a `renotify` are both sent as a trigger event, with the alert's dedup key, so a
 * re-notification updates the open PagerDuty alert instead of opening another:
 *
 * ```json
 * {
 *   "routing_key": "<the integration's key>",
 *   "event_action": "trigger",
 *   "dedup_key": "<alert.dedupKey>",
 *   "payload": {
 *     "summary": "<alert.summary, at most 1,024 characters>",
 *     "source": "hourglass",
 *     "severity": "critical" (route page) | "warning" (route ticket),
 *     "timestamp": "<sentAt, ISO-8601>",
 *     "component": "<event type>",
 *     "group": "<tier>",
 *     "class": "<rule>",
 *     "custom_details": { <alert.details> }
 *   },
 *   "client": "Hourglass"
 * }
 * ```
 *
 * A `resolve` is `{ "routing_key", "event_action": "resolve", "dedup_key" }`. PagerDuty takes
 * dedup keys of up to 255 characters: a longer one is replaced by `hourglass/sha256:<hex>` of it,
 * the same for every event of the alert.
 */
import { createHash } from 'node:crypto';
import type { AlertNotification, AlertSink } from '../../core/ports/alert-sink.js';
import { type HttpSinkOptions, httpSink, truncate } from './http-post.js';

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
const SUMMARY_MAX = 1024;
const DEDUP_KEY_MAX = 255;

export interface PagerDutyTrigger {
  readonly routing_key: string;
  readonly event_action: 'trigger';
  readonly dedup_key: string;
  readonly payload: {
    readonly summary: string;
    readonly source: 'hourglass';
    readonly severity: 'critical' | 'warning';
    readonly timestamp: string;
    readonly component: string;
    readonly group: string;
    readonly class: string;
    readonly custom_details: Readonly<Record<string, string | number | boolean | null>>;
  };
  readonly client: 'Hourglass';
}

export interface PagerDutyResolve {
  readonly routing_key: string;
  readonly event_action: 'resolve';
  readonly dedup_key: string;
}

export function pagerDutyBody(n: AlertNotification, routingKey: string): PagerDutyTrigger | PagerDutyResolve {
  const a = n.alert;
  const dedupKey = pagerDutyDedupKey(a.dedupKey);
  if (n.event === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key: dedupKey };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      summary: truncate(a.summary.trim() === '' ? `${a.rule} on ${a.type}` : a.summary, SUMMARY_MAX),
      source: 'hourglass',
      severity: n.route === 'page' ? 'critical' : 'warning',
      timestamp: new Date(n.sentAt).toISOString(),
      component: a.type,
      group: a.tier,
      class: a.rule,
      custom_details: { ...a.details },
    },
    client: 'Hourglass',
  };
}

/** The alert's dedup key, or a stable digest of it when longer than PagerDuty accepts. */
export function pagerDutyDedupKey(dedupKey: string): string {
  if (dedupKey.length <= DEDUP_KEY_MAX) return dedupKey;
  return `hourglass/sha256:${createHash('sha256').update(dedupKey).digest('hex')}`;
}

export function pagerDutySink(o: HttpSinkOptions & { readonly routingKey: string }): AlertSink {
  return httpSink('pagerduty', o, (n) => pagerDutyBody(n, o.routingKey));
}
