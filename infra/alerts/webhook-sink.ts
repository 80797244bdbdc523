/**
 * The generic JSON webhook sink: every notification is one POST of this body (version 1, our
 * public format; a change that is not backwards compatible gets a new version number):
 *
 * ```json
 * {
 *   "version": 1,
 *   "event": "trigger" | "renotify" | "resolve",
 *   "route": "page" | "ticket",
 *   "sentAt": "2026-11-23T14:00:05.000Z",
 *   "alert": {
 *     "id": "42",
 *     "rule": "slo_breached",
 *     "ruleDescription": "an hour is not published and its timeliness budget is used up",
 *     "type": "EndSong",
 *     "tier": "high" | "normal" | "low",
 *     "state": "firing" | "resolved",
 *     "summary": "one line",
 *     "details": { "name": "string | number | boolean | null", … },
 *     "openedAt": "2026-11-23T14:00:00.000Z",
 *     "resolvedAt": "2026-11-23T15:10:00.000Z" | null,
 *     "dedupKey": "the same for every notification of this alert"
 *   }
 * }
 * ```
 *
 * `trigger` is the first notice of an alert on a route, `renotify` says it is still firing,
 * `resolve` that it cleared. Times are ISO-8601 in UTC, on the pipeline's clock. Any 2xx answer
 * is success; see `http-post.ts` for how other answers are treated.
 */
import { ALERT_RULES, type AlertNotification, type AlertSink } from '../../core/ports/alert-sink.js';
import { type HttpSinkOptions, httpSink } from './http-post.js';

export interface WebhookBody {
  readonly version: 1;
  readonly event: AlertNotification['event'];
  readonly route: AlertNotification['route'];
  readonly sentAt: string;
  readonly alert: {
    readonly id: string;
    readonly rule: string;
    readonly ruleDescription: string;
    readonly type: string;
    readonly tier: string;
    readonly state: string;
    readonly summary: string;
    readonly details: Readonly<Record<string, string | number | boolean | null>>;
    readonly openedAt: string;
    readonly resolvedAt: string | null;
    readonly dedupKey: string;
  };
}

export function webhookBody(n: AlertNotification): WebhookBody {
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
      openedAt: new Date(a.openedAt).toISOString(),
      resolvedAt: a.resolvedAt === null ? null : new Date(a.resolvedAt).toISOString(),
      dedupKey: a.dedupKey,
    },
  };
}

export function webhookSink(o: HttpSinkOptions): AlertSink {
  return httpSink('webhook', o, webhookBody);
}
