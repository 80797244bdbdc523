/**
 * Service level objectives of a type, from its importance tier (DESIGN.md, "Importance tiers and
 * alerting"), measured per partition:
 * - **timeliness**: time from the partition's end (its hour, or its day for daily types) to its
 *   final partition being published, against the tier's budget (high 3 h, normal 24 h, low 72 h
 *   by default);
 * - **completeness**: every ledgered event is in the published partition (the dedup step checks
 *   it before publishing; a `failed` hour is a violation);
 * - **skew**: the share of the hour's events that arrived after it closed (kept under `late/`).
 */
import type { Partitioning, Tier } from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import type { HourStatus } from '../etl/hour-states.js';

export const DAY_MS = 24 * HOUR_MS;

export interface SloPolicy {
  /** Timeliness budget per tier, clock ms. */
  readonly sloMs: Readonly<Record<Tier, number>>;
  /** Share of the budget after which an unpublished partition is at risk. */
  readonly atRiskShare: number;
}

/**
 * `pending`: not published, within the safe part of its budget (an open hour too); `at_risk`:
 * not published, past the at-risk share; `breached`: not published, budget used up; `met`:
 * published within budget; `missed`: published after its budget.
 */
export type TimelinessStatus = 'pending' | 'at_risk' | 'breached' | 'met' | 'missed';

export interface HourSlo {
  /** End of the partition the hour belongs to, epoch ms. */
  readonly partitionEnd: number;
  /** When the partition must be published by. */
  readonly deadline: number;
  readonly budgetMs: number;
  /** Publication time minus partition end, once published (the recorded delivery delay). */
  readonly deliveryDelayMs: number | null;
  /** Budget used so far (or at publication), 0 … (can exceed 1). */
  readonly budgetUsed: number;
  readonly timeliness: TimelinessStatus;
  /** `true` published with every ledgered event, `false` violated (failed), null not known yet. */
  readonly complete: boolean | null;
  /** Late events / (events in the raw bucket + late events); null before dedup. */
  readonly skew: number | null;
}

/** End of the partition holding `hour`: the hour's end, or its UTC day's end for daily types. */
export function partitionEnd(hour: number, partitioning: Partitioning): number {
  return partitioning === 'daily' ? Math.floor(hour / DAY_MS) * DAY_MS + DAY_MS : hour + HOUR_MS;
}

export function hourSlo(
  status: HourStatus,
  type: { readonly tier: Tier; readonly partitioning: Partitioning },
  now: number,
  policy: SloPolicy,
): HourSlo {
  const end = partitionEnd(status.hour, type.partitioning);
  const budgetMs = policy.sloMs[type.tier];
  const r = status.record;
  const publishedAt = r?.state === 'published' ? r.publishedAt : null;
  const delay = publishedAt !== null ? Math.max(0, publishedAt - end) : null;
  const used = Math.max(0, (delay ?? now - end) / budgetMs);
  let timeliness: TimelinessStatus;
  if (delay !== null) timeliness = delay <= budgetMs ? 'met' : 'missed';
  else if (used >= 1) timeliness = 'breached';
  else if (used >= policy.atRiskShare) timeliness = 'at_risk';
  else timeliness = 'pending';
  const late = r?.lateEvents ?? 0;
  const eventsIn = r?.eventsIn ?? null;
  return {
    partitionEnd: end,
    deadline: end + budgetMs,
    budgetMs,
    deliveryDelayMs: delay,
    budgetUsed: used,
    timeliness,
    complete: r?.state === 'failed' ? false : r?.state === 'published' ? true : null,
    skew: eventsIn === null ? null : eventsIn + late === 0 ? 0 : late / (eventsIn + late),
  };
}
