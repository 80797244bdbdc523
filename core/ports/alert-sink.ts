/**
 * The alert sink port: where alert notifications go (a generic JSON webhook, Slack, PagerDuty).
 *
 * The alerting engine never calls a sink directly: it hands notifications to a dispatcher that
 * queues them per sink and retries with backoff, so a slow or failing sink never blocks the
 * evaluation of rules.
 */

/** The alert rules Hourglass evaluates, one open alert per (rule, type) at most. */
export const ALERT_RULES = {
  slo_at_risk: 'an hour is not published and a configured share of its timeliness budget is used',
  slo_breached: 'an hour is not published and its timeliness budget is used up',
  consumer_stuck: 'the type has a backlog on the bus and its consumer committed nothing for a while',
  reject_rate_spike: "the share of the type's events rejected by the ingress is above its threshold",
  completeness_violation: 'ledgered events are missing from an hour (publication stopped)',
  publication_failing: 'a closed hour is not published because its dedup step keeps failing (retried)',
  dead_letter_growth: 'the dead-letter area of the type grew faster than its threshold',
} as const;

export type AlertRule = keyof typeof ALERT_RULES;

/** How an alert reaches people: `page` (someone is woken up) or `ticket` (work for later). */
export type AlertRoute = 'page' | 'ticket';

/** An alert as notified: the state-store record, in the shape sinks format. */
export interface AlertView {
  /** Unique per alert occurrence. */
  readonly id: string;
  readonly rule: AlertRule;
  readonly type: string;
  readonly tier: 'high' | 'normal' | 'low';
  readonly state: 'firing' | 'resolved';
  /** One line, human-readable. */
  readonly summary: string;
  /** Figures that explain the alert (backlog, budget used, hours, …). */
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
  /** Epoch ms (pipeline clock). */
  readonly openedAt: number;
  readonly resolvedAt: number | null;
  /**
   * Stable for every notification of the same (rule, type) occurrence: sinks that deduplicate
   * (PagerDuty) key on it, so a re-notification updates the same incident and a resolve closes it.
   */
  readonly dedupKey: string;
}

export interface AlertNotification {
  /** `trigger` (first notice on this route), `renotify` (still firing), `resolve` (cleared). */
  readonly event: 'trigger' | 'renotify' | 'resolve';
  readonly route: AlertRoute;
  readonly alert: AlertView;
  /** Epoch ms (pipeline clock). */
  readonly sentAt: number;
}

export interface AlertSink {
  /** Name from the configuration, for logs and metrics. */
  readonly name: string;
  /** Backend kind: `webhook`, `slack`, `pagerduty`. */
  readonly kind: string;
  /** Routes this sink receives. */
  readonly routes: readonly AlertRoute[];
  /**
   * Delivers one notification. Resolves once the receiver accepted it. Rejects with
   * AlertDeliveryFailed; its `retriable` says whether trying again may help (timeouts, network
   * errors, 429 and 5xx answers are retriable; other 4xx answers are not).
   */
  send(notification: AlertNotification, signal?: AbortSignal): Promise<void>;
}

/** One configured sink (`alerting.sinks[]` in the config file). */
export interface AlertSinkConfig {
  /** Unique among the sinks; used in logs and metrics. */
  readonly name: string;
  readonly kind: 'webhook' | 'slack' | 'pagerduty';
  /**
   * Where notifications are POSTed: the receiver's URL, the Slack incoming-webhook URL, or the
   * PagerDuty Events API v2 endpoint (default `https://events.pagerduty.com/v2/enqueue`).
   */
  readonly url: string;
  /** PagerDuty: the integration's routing key (required for `pagerduty`). */
  readonly routingKey?: string;
  /** Routes it receives; default: `["page"]` for PagerDuty, `["page", "ticket"]` otherwise. */
  readonly routes?: readonly AlertRoute[];
  /** Extra HTTP headers (e.g. an authorization header of the receiver). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time one delivery attempt may take (real ms); default 5,000. */
  readonly timeoutRealMs?: number;
}
