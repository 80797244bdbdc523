/**
 * The alert rules: what each provisioned rule checks, as a pure function of a snapshot of the
 * pipeline (hours not yet published, bus backlogs, last commits, reject and dead-letter counts
 * over their windows). The engine (`alerting.ts`) gathers the snapshot and turns conditions into
 * alerts.
 *
 * A rule's thresholds are the ones it was provisioned with (stored with the rule), so a type's
 * rules are what the orchestrator registered for it.
 */
import type { AlertingSettings } from '../../core/config.js';
import type { EventType, Tier } from '../../core/event-types.js';
import { hourLabel } from '../../core/hours.js';
import { ALERT_RULES, type AlertRule } from '../../core/ports/alert-sink.js';
import type { Backlog } from '../../core/ports/bus.js';
import type { AlertRuleSpec } from '../../core/ports/state-store.js';
import type { HourStatus } from '../../etl/hour-states.js';
import { hourSlo, partitionEnd } from '../slo.js';

export interface Condition {
  readonly rule: AlertRule;
  readonly type: string;
  readonly tier: Tier;
  readonly summary: string;
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
}

/** Counts over a rule's window: `sent` = accepted + rejected. */
export interface WindowCounts {
  readonly rejected: number;
  readonly sent: number;
  /** Real ms the counts cover (shorter than the window right after a start). */
  readonly spanRealMs: number;
}

export interface RuleSnapshot {
  /** Pipeline clock, epoch ms. */
  readonly now: number;
  /** Clock ms per real ms. */
  readonly scale: number;
  readonly type: EventType;
  /** The type's hours that are not published (open, closing, closed, deduped, failed). */
  readonly unpublished: readonly HourStatus[];
  /** Null when the bus has no such subscription (yet). */
  readonly backlog: Backlog | null;
  readonly lastCommitAt: number | null;
  /** Rejections and events sent over a window of the given length (real ms). */
  readonly counts: (windowRealMs: number) => WindowCounts;
}

/** The rules a type gets when it is registered, with the thresholds of the settings. */
export function rulesFor(type: EventType, s: AlertingSettings, at: number): AlertRuleSpec[] {
  const budgetMs = s.sloMs[type.tier];
  const params: Record<AlertRule, Record<string, number>> = {
    slo_at_risk: { budgetMs, atRiskShare: s.atRiskShare },
    slo_breached: { budgetMs },
    consumer_stuck: { afterRealMs: s.consumerStuckRealMs },
    reject_rate_spike: {
      share: s.rejectRateShare,
      windowRealMs: s.rejectRateWindowRealMs,
      minEvents: s.rejectRateMinEvents,
    },
    completeness_violation: {},
    publication_failing: { afterRealMs: s.publicationFailingRealMs },
    dead_letter_growth: { count: s.deadLetterGrowth, windowRealMs: s.deadLetterWindowRealMs },
  };
  return (Object.keys(ALERT_RULES) as AlertRule[]).map((rule) => ({
    type: type.name,
    rule,
    params: params[rule],
    createdAt: at,
  }));
}

/** Whether the rule's condition holds for the snapshot; null when it does not. */
export function checkRule(spec: AlertRuleSpec, snap: RuleSnapshot): Condition | null {
  const p = spec.params;
  const t = snap.type;
  const make = (summary: string, details: Condition['details']): Condition => ({
    rule: spec.rule,
    type: t.name,
    tier: t.tier,
    summary: `${t.name}: ${summary}`,
    details,
  });
  switch (spec.rule) {
    case 'slo_at_risk':
    case 'slo_breached': {
      const budgetMs = p.budgetMs ?? 1;
      const policy = { sloMs: { high: budgetMs, normal: budgetMs, low: budgetMs }, atRiskShare: p.atRiskShare ?? 0.5 };
      const want = spec.rule === 'slo_breached' ? 'breached' : 'at_risk';
      const hits = snap.unpublished
        .filter((h) => h.state !== 'failed')
        .map((h) => ({ h, slo: hourSlo(h, t, snap.now, policy) }))
        .filter((x) => x.slo.timeliness === want);
      const first = hits[0];
      if (first === undefined) return null;
      const pct = Math.round(first.slo.budgetUsed * 100);
      return make(
        want === 'breached'
          ? `hour ${hourLabel(first.h.hour)} is not published ${duration(snap.now - first.slo.partitionEnd)} after its end (SLO ${duration(budgetMs)}; ${first.h.state})`
          : `hour ${hourLabel(first.h.hour)} has used ${pct}% of its ${duration(budgetMs)} SLO and is not published (${first.h.state})`,
        {
          hour: new Date(first.h.hour).toISOString(),
          state: first.h.state,
          budgetUsedPercent: pct,
          sloMs: budgetMs,
          deadline: new Date(first.slo.deadline).toISOString(),
          hours: hits.length,
        },
      );
    }
    case 'completeness_violation': {
      const failed = snap.unpublished.filter((h) => h.state === 'failed');
      const first = failed[0];
      if (first === undefined) return null;
      return make(
        `hour ${hourLabel(first.hour)} lacks ledgered events and is not published: ${first.record?.error ?? 'ledger mismatch'}`,
        { hour: new Date(first.hour).toISOString(), hours: failed.length, error: first.record?.error ?? null },
      );
    }
    case 'publication_failing': {
      // a closed (or deduped) hour carries an error only while its dedup step fails and is retried
      const after = p.afterRealMs ?? 600_000;
      const hits = snap.unpublished
        .filter((h) => (h.state === 'closed' || h.state === 'deduped') && h.record !== null && h.record.error !== null)
        .map((h) => {
          const due = Math.max(h.record?.closedAt ?? 0, partitionEnd(h.hour, t.partitioning));
          return { h, realMs: (snap.now - due) / snap.scale };
        })
        .filter((x) => x.realMs >= after);
      const first = hits[0];
      if (first === undefined) return null;
      const error = first.h.record?.error ?? null;
      return make(
        `hour ${hourLabel(first.h.hour)} is closed but not published ${duration(first.realMs)} after it was due: ${error}`,
        {
          hour: new Date(first.h.hour).toISOString(),
          state: first.h.state,
          hours: hits.length,
          error,
          thresholdSeconds: Math.round(after / 1000),
        },
      );
    }
    case 'consumer_stuck': {
      const after = p.afterRealMs ?? 600_000;
      const b = snap.backlog;
      if (b === null || b.messages === 0 || b.oldestUnackedPublishTime === null) return null;
      const oldestRealMs = (snap.now - b.oldestUnackedPublishTime) / snap.scale;
      const sinceCommitRealMs = snap.lastCommitAt === null ? null : (snap.now - snap.lastCommitAt) / snap.scale;
      if (oldestRealMs < after || (sinceCommitRealMs !== null && sinceCommitRealMs < after)) return null;
      return make(
        `${b.messages} messages waiting on the bus, the oldest for ${duration(oldestRealMs)}, and ${
          sinceCommitRealMs === null ? 'no file ever committed' : `no file committed for ${duration(sinceCommitRealMs)}`
        }`,
        {
          backlog: b.messages,
          oldestUnackedSeconds: Math.round(oldestRealMs / 1000),
          lastCommit: snap.lastCommitAt === null ? null : new Date(snap.lastCommitAt).toISOString(),
          thresholdSeconds: Math.round(after / 1000),
        },
      );
    }
    case 'reject_rate_spike': {
      const c = snap.counts(p.windowRealMs ?? 300_000);
      const share = p.share ?? 0.05;
      if (c.sent < (p.minEvents ?? 100) || c.rejected / c.sent <= share) return null;
      return make(
        `${percent(c.rejected / c.sent)} of events rejected in the last ${duration(c.spanRealMs)} (${c.rejected} of ${c.sent}; threshold ${percent(share)})`,
        { rejected: c.rejected, sent: c.sent, windowSeconds: Math.round(c.spanRealMs / 1000), threshold: share },
      );
    }
    case 'dead_letter_growth': {
      const c = snap.counts(p.windowRealMs ?? 900_000);
      const limit = p.count ?? 1000;
      if (c.rejected < limit) return null;
      return make(`${c.rejected} new dead letters in the last ${duration(c.spanRealMs)} (threshold ${limit})`, {
        deadLetters: c.rejected,
        windowSeconds: Math.round(c.spanRealMs / 1000),
        threshold: limit,
      });
    }
  }
}

function percent(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
}

/** `3h`, `2h 5m`, `12m`, `40s`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
}
