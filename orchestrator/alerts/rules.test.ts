import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import type { EventType } from '../../core/event-types.js';
import { HOUR_MS } from '../../core/hours.js';
import type { HourRecord } from '../../core/ports/state-store.js';
import type { HourStatus } from '../../etl/hour-states.js';
import { hourSlo } from '../slo.js';
import { checkRule, duration, type RuleSnapshot, rulesFor } from './rules.js';

const settings = loadConfig().alerting;
const H = Date.UTC(2026, 10, 23, 10);
const type = (tier: EventType['tier'], partitioning: EventType['partitioning'] = 'hourly') =>
  ({ name: 'EndSong', tier, partitioning, status: 'active' }) as EventType;
const spec = (t: EventType, rule: string) => {
  const s = rulesFor(t, settings, 0).find((r) => r.rule === rule);
  if (s === undefined) throw new Error(rule);
  return s;
};
const closing = (hour: number): HourStatus => ({
  type: 'EndSong',
  hour,
  state: 'closing',
  ledgerEvents: 10,
  record: null,
  waitingFor: null,
});
const snapshot = (t: EventType, over: Partial<RuleSnapshot>): RuleSnapshot => ({
  now: H,
  scale: 1,
  type: t,
  unpublished: [],
  backlog: null,
  lastCommitAt: null,
  counts: () => ({ rejected: 0, sent: 0, spanRealMs: 0 }),
  ...over,
});

describe('SLO of an hour', () => {
  const policy = { sloMs: settings.sloMs, atRiskShare: 0.5 };
  const record = (over: Partial<HourRecord>): HourRecord =>
    ({ state: 'published', lateEvents: 0, eventsIn: 100, ...over }) as HourRecord;

  it('measures timeliness from the partition end against the tier budget', () => {
    const s = closing(H);
    expect(hourSlo(s, type('high'), H + HOUR_MS + HOUR_MS, policy)).toMatchObject({
      partitionEnd: H + HOUR_MS,
      deadline: H + 4 * HOUR_MS,
      timeliness: 'pending',
      deliveryDelayMs: null,
    });
    expect(hourSlo(s, type('high'), H + 2.5 * HOUR_MS, policy).timeliness).toBe('at_risk');
    expect(hourSlo(s, type('high'), H + 4 * HOUR_MS, policy).timeliness).toBe('breached');
    expect(hourSlo(s, type('low'), H + 4 * HOUR_MS, policy).timeliness).toBe('pending');
  });

  it('daily types count from the end of the day; published partitions keep their delay', () => {
    expect(hourSlo(closing(H), type('normal', 'daily'), H, policy).partitionEnd).toBe(Date.UTC(2026, 10, 24));
    const published = {
      ...closing(H),
      state: 'published' as const,
      record: record({ publishedAt: H + HOUR_MS + 600_000 }),
    };
    expect(hourSlo(published, type('high'), H + 10 * HOUR_MS, policy)).toMatchObject({
      timeliness: 'met',
      deliveryDelayMs: 600_000,
      complete: true,
      skew: 0,
    });
    const late = { ...published, record: record({ publishedAt: H + 5 * HOUR_MS, lateEvents: 25, eventsIn: 75 }) };
    expect(hourSlo(late, type('high'), H + 10 * HOUR_MS, policy)).toMatchObject({ timeliness: 'missed', skew: 0.25 });
    const failed = { ...closing(H), state: 'failed' as const, record: record({ state: 'failed' }) };
    expect(hourSlo(failed, type('high'), H + 2 * HOUR_MS, policy).complete).toBe(false);
  });
});

describe('alert rules', () => {
  it('every type gets every rule, with its tier budget', () => {
    const rules = rulesFor(type('normal'), settings, 5);
    expect(rules.map((r) => r.rule).sort()).toEqual([
      'completeness_violation',
      'consumer_stuck',
      'dead_letter_growth',
      'publication_failing',
      'reject_rate_spike',
      'slo_at_risk',
      'slo_breached',
    ]);
    expect(rules.find((r) => r.rule === 'slo_breached')?.params).toEqual({ budgetMs: 24 * HOUR_MS });
  });

  it('slo_at_risk and slo_breached fire on the oldest unpublished hour past their share', () => {
    const t = type('high');
    const snap = snapshot(t, {
      now: H + 4.5 * HOUR_MS,
      unpublished: [closing(H), closing(H + HOUR_MS), closing(H + 2 * HOUR_MS)],
    });
    const breached = checkRule(spec(t, 'slo_breached'), snap);
    expect(breached).toMatchObject({ rule: 'slo_breached', type: 'EndSong', tier: 'high' });
    expect(breached?.summary).toBe(
      'EndSong: hour 2026-11-23T10 is not published 3h 30m after its end (SLO 3h; closing)',
    );
    const risk = checkRule(spec(t, 'slo_at_risk'), snap);
    expect(risk?.summary).toContain('hour 2026-11-23T11 has used 83% of its 3h SLO');
    expect(risk?.details.hours).toBe(2);
    expect(checkRule(spec(t, 'slo_at_risk'), { ...snap, now: H + 2 * HOUR_MS, unpublished: [closing(H)] })).toBeNull();
  });

  it('completeness_violation fires on a failed hour', () => {
    const t = type('low');
    const failed: HourStatus = {
      ...closing(H),
      state: 'failed',
      record: { error: '3 ledgered events missing' } as HourRecord,
    };
    expect(checkRule(spec(t, 'completeness_violation'), snapshot(t, { unpublished: [failed] }))?.summary).toBe(
      'EndSong: hour 2026-11-23T10 lacks ledgered events and is not published: 3 ledgered events missing',
    );
    expect(
      checkRule(spec(t, 'slo_breached'), snapshot(t, { unpublished: [failed], now: H + 100 * HOUR_MS })),
    ).toBeNull();
    // failed by the closer (ledgered events missing from the bus), not by the dedup check
    const error = 'ledger_mismatch: 2 acknowledged events are missing from the bus (i: 8-9)';
    const lost: HourStatus = { ...failed, record: { state: 'failed', error } as HourRecord };
    const c = checkRule(spec(type('high'), 'completeness_violation'), snapshot(type('high'), { unpublished: [lost] }));
    expect(c).toMatchObject({
      rule: 'completeness_violation',
      tier: 'high',
      summary: `EndSong: hour 2026-11-23T10 lacks ledgered events and is not published: ${error}`,
      details: { hour: new Date(H).toISOString(), hours: 1, error },
    });
  });

  it('publication_failing fires on a closed hour whose dedup keeps failing, once it has been due long enough', () => {
    const t = type('high');
    const s = spec(t, 'publication_failing');
    expect(s.params).toEqual({ afterRealMs: settings.publicationFailingRealMs });
    const error =
      'dedup_failed: ENOSPC: no space left on device [object_store_unavailable] (4 attempts since …; retried)';
    const stuck: HourStatus = {
      ...closing(H),
      state: 'closed',
      record: { state: 'closed', closedAt: H + HOUR_MS + 5_000, error } as HourRecord,
    };
    const due = H + HOUR_MS + 5_000;
    const snap = (now: number, h: HourStatus = stuck, scale = 1) => snapshot(t, { now, scale, unpublished: [h] });
    expect(checkRule(s, snap(due + settings.publicationFailingRealMs - 1))).toBeNull();
    expect(checkRule(s, snap(due + settings.publicationFailingRealMs))).toMatchObject({
      rule: 'publication_failing',
      summary: `EndSong: hour 2026-11-23T10 is closed but not published 10m after it was due: ${error}`,
      details: { hour: new Date(H).toISOString(), state: 'closed', hours: 1, error },
    });
    // real time: at ×360 the same clock time is far less
    expect(checkRule(s, snap(due + settings.publicationFailingRealMs, stuck, 360))).toBeNull();
    // a closed hour without an error is waiting for its dedup turn, not failing
    const waiting = { ...stuck, record: { ...(stuck.record as HourRecord), error: null } };
    expect(checkRule(s, snap(due + 100 * HOUR_MS, waiting))).toBeNull();
    // a failed hour is completeness_violation's
    expect(checkRule(s, snap(due + 100 * HOUR_MS, { ...stuck, state: 'failed' }))).toBeNull();
    // a daily type's hour is due once its day is over
    const daily = type('high', 'daily');
    const dayEnd = Date.UTC(2026, 10, 24);
    const ds = spec(daily, 'publication_failing');
    expect(checkRule(ds, snapshot(daily, { now: dayEnd - 1, unpublished: [stuck] }))).toBeNull();
    expect(
      checkRule(ds, snapshot(daily, { now: dayEnd + settings.publicationFailingRealMs, unpublished: [stuck] })),
    ).not.toBeNull();
  });

  it('consumer_stuck needs an old backlog and no recent commit, in real time', () => {
    const t = type('high');
    const s = spec(t, 'consumer_stuck');
    const after = settings.consumerStuckRealMs;
    const stuck = snapshot(t, {
      now: H,
      backlog: { messages: 40, oldestUnackedPublishTime: H - after },
      lastCommitAt: H - after - 1,
    });
    expect(checkRule(s, stuck)?.summary).toBe(
      'EndSong: 40 messages waiting on the bus, the oldest for 10m, and no file committed for 10m',
    );
    expect(checkRule(s, { ...stuck, lastCommitAt: H - 1000 })).toBeNull();
    expect(checkRule(s, { ...stuck, backlog: { messages: 0, oldestUnackedPublishTime: null } })).toBeNull();
    // at time scale 360 the same clock age is 360 times less real time
    expect(checkRule(s, { ...stuck, scale: 360 })).toBeNull();
    expect(checkRule(s, { ...stuck, lastCommitAt: null })?.summary).toContain('no file ever committed');
  });

  it('reject_rate_spike and dead_letter_growth read the counts of their windows', () => {
    const t = type('normal');
    const windows: number[] = [];
    const snap = snapshot(t, {
      counts: (w) => {
        windows.push(w);
        return { rejected: 30, sent: 200, spanRealMs: 240_000 };
      },
    });
    expect(checkRule(spec(t, 'reject_rate_spike'), snap)?.summary).toBe(
      'EndSong: 15% of events rejected in the last 4m (30 of 200; threshold 5.0%)',
    );
    expect(windows).toEqual([settings.rejectRateWindowRealMs]);
    const few = snapshot(t, { counts: () => ({ rejected: 30, sent: 60, spanRealMs: 1 }) });
    expect(checkRule(spec(t, 'reject_rate_spike'), few)).toBeNull();
    expect(checkRule(spec(t, 'dead_letter_growth'), snap)).toBeNull();
    const many = snapshot(t, { counts: () => ({ rejected: 1500, sent: 1500, spanRealMs: 900_000 }) });
    expect(checkRule(spec(t, 'dead_letter_growth'), many)?.summary).toBe(
      'EndSong: 1500 new dead letters in the last 15m (threshold 1000)',
    );
  });

  it('formats durations', () => {
    expect([
      duration(500),
      duration(59_000),
      duration(61_000),
      duration(3 * HOUR_MS),
      duration(HOUR_MS + 300_000),
    ]).toEqual(['1s', '59s', '1m', '3h', '1h 5m']);
  });
});
