/**
 * The state of every known (type, hour): `open` (not ended), `closing` (ended, raw bucket not yet
 * complete, with what it waits for when asked), then the recorded states `closed`, `deduped`,
 * `published`, `failed`; and the same per partition (a daily type's hours folded into its days).
 */
import { HOUR_MS, hourLabel } from '../core/hours.js';
import type { HourRecord, JobRecord, StateStore } from '../core/ports/state-store.js';

export type HourStateName = 'open' | 'closing' | HourRecord['state'];

export interface HourStatus {
  readonly type: string;
  readonly hour: number;
  readonly state: HourStateName;
  readonly ledgerEvents: number;
  readonly record: HourRecord | null;
  /** What a `closing` hour waits for (the closer's words); null otherwise, or when not known. */
  readonly waitingFor: string | null;
}

/** Key of a (type, hour) in maps. */
export function hourKey(type: string, hour: number): string {
  return `${type}\u0000${hour}`;
}

/** What ended, unclosed hours wait for, keyed by {@link hourKey} (an hour not in it: not known). */
export type WaitingFor = (hours: readonly { type: string; hour: number }[]) => Promise<ReadonlyMap<string, string>>;

export async function hourStates(
  state: StateStore,
  now: number,
  filter: { type?: string; from?: number; to?: number } = {},
  waitingFor?: WaitingFor,
): Promise<HourStatus[]> {
  const records = await state.listHours({ type: filter.type, from: filter.from, to: filter.to });
  const byKey = new Map<string, HourStatus>();
  for (const r of records) {
    byKey.set(hourKey(r.type, r.hour), {
      type: r.type,
      hour: r.hour,
      state: r.state,
      ledgerEvents: r.ledgerTotal,
      record: r,
      waitingFor: null,
    });
  }
  const counts = new Map<string, { type: string; hour: number; n: number }>();
  for (const e of await state.listLedgers({ type: filter.type, from: filter.from })) {
    if (filter.to !== undefined && e.hour >= filter.to) continue;
    const key = hourKey(e.type, e.hour);
    if (byKey.has(key)) continue;
    const c = counts.get(key) ?? { type: e.type, hour: e.hour, n: 0 };
    c.n += e.count;
    counts.set(key, c);
  }
  const closing = [...counts.values()].filter((c) => c.hour + HOUR_MS <= now);
  const waits =
    waitingFor === undefined || closing.length === 0 ? new Map<string, string>() : await waitingFor(closing);
  for (const [key, c] of counts) {
    const ended = c.hour + HOUR_MS <= now;
    byKey.set(key, {
      type: c.type,
      hour: c.hour,
      state: ended ? 'closing' : 'open',
      ledgerEvents: c.n,
      record: null,
      waitingFor: ended ? (waits.get(key) ?? null) : null,
    });
  }
  return [...byKey.values()].sort((a, b) => (a.type === b.type ? a.hour - b.hour : a.type < b.type ? -1 : 1));
}

const DAY_MS = 24 * HOUR_MS;

/** A partition: an hour of an hourly type, or a UTC day of a daily type (from its hours). */
export interface PartitionStatus {
  readonly type: string;
  /** Start of the hour, or of the day. */
  readonly start: number;
  readonly daily: boolean;
  /** The least advanced state of its hours; `failed` when one failed. */
  readonly state: HourStateName;
  /** Ledgered events of its hours. */
  readonly ledgerEvents: number;
  readonly eventsIn: number | null;
  readonly duplicates: number | null;
  readonly eventsOut: number | null;
  /** Late events of its hours. */
  readonly lateEvents: number;
  /** `vanished` when one of its hours was closed by that rule; null until all are closed. */
  readonly closedBy: HourRecord['closedBy'] | null;
  readonly manifest: string | null;
  readonly waitingFor: string | null;
  readonly error: string | null;
}

const PROGRESS: Record<HourStateName, number> = { open: 0, closing: 1, closed: 2, deduped: 3, published: 4, failed: 5 };

/**
 * Partitions of the hour states (sorted by type, then hour): an hourly type's hours as they are;
 * a daily type's hours folded into one row per day, since its counts, manifest and error are the
 * day's (every hour of the day records them alike).
 */
export function partitionStates(
  states: readonly HourStatus[],
  isDaily: (type: string) => boolean,
  now: number,
): PartitionStatus[] {
  const out: PartitionStatus[] = [];
  const days = new Map<string, HourStatus[]>();
  for (const s of states) {
    if (!isDaily(s.type)) {
      out.push({
        type: s.type,
        start: s.hour,
        daily: false,
        state: s.state,
        ledgerEvents: s.ledgerEvents,
        eventsIn: s.record?.eventsIn ?? null,
        duplicates: s.record?.duplicates ?? null,
        eventsOut: s.record?.eventsOut ?? null,
        lateEvents: s.record?.lateEvents ?? 0,
        closedBy: s.record?.closedBy ?? null,
        manifest: s.record?.manifest ?? null,
        waitingFor: s.waitingFor,
        error: s.record?.error ?? null,
      });
      continue;
    }
    const key = hourKey(s.type, Math.floor(s.hour / DAY_MS) * DAY_MS);
    days.set(key, [...(days.get(key) ?? []), s]);
  }
  for (const hours of days.values()) out.push(foldDay(hours, now));
  return out.sort((a, b) => (a.type === b.type ? a.start - b.start : a.type < b.type ? -1 : 1));
}

function foldDay(hours: readonly HourStatus[], now: number): PartitionStatus {
  const first = hours[0] as HourStatus;
  const start = Math.floor(first.hour / DAY_MS) * DAY_MS;
  const failed = hours.some((h) => h.state === 'failed');
  const state = failed
    ? 'failed'
    : hours.reduce<HourStateName>((least, h) => (PROGRESS[h.state] < PROGRESS[least] ? h.state : least), 'published');
  const recorded = hours.map((h) => h.record).filter((r): r is HourRecord => r !== null);
  const pick = <T>(f: (r: HourRecord) => T | null): T | null => {
    for (const r of recorded) {
      const v = f(r);
      if (v !== null) return v;
    }
    return null;
  };
  const closing = hours.filter((h) => h.state === 'closing');
  let waitingFor: string | null = null;
  const firstClosing = closing[0];
  if (firstClosing !== undefined) {
    const more = closing.length > 1 ? ` (and ${closing.length - 1} more hours closing)` : '';
    waitingFor = `hour ${hourLabel(firstClosing.hour)}: ${firstClosing.waitingFor ?? 'its raw bucket to be complete'}${more}`;
  } else if (state === 'closed' && now < start + DAY_MS) {
    waitingFor = 'the day to end (a daily type is published once its day is over)';
  }
  return {
    type: first.type,
    start,
    daily: true,
    state,
    ledgerEvents: hours.reduce((n, h) => n + h.ledgerEvents, 0),
    eventsIn: pick((r) => r.eventsIn),
    duplicates: pick((r) => r.duplicates),
    eventsOut: pick((r) => r.eventsOut),
    lateEvents: recorded.reduce((n, r) => n + r.lateEvents, 0),
    closedBy:
      recorded.length < hours.length ? null : recorded.some((r) => r.closedBy === 'vanished') ? 'vanished' : 'sealed',
    manifest: pick((r) => r.manifest),
    waitingFor,
    error: pick((r) => r.error),
  };
}

/** A partition with the batch job that moves it on (or moved it last): runs so far and who ran it. */
export interface PartitionWithJob extends PartitionStatus {
  /** Runs of the job (a retry after a failure, or a takeover after a worker died, adds one); null: no job yet. */
  readonly attempts: number | null;
  /** The ETL process that holds or last held the job; null: no job yet. */
  readonly worker: string | null;
}

/**
 * Each partition with its job: while it is closing, its (first closing) hour's `close` job; after,
 * its `dedup` job (the one that published or failed it).
 */
export function withJobs(partitions: readonly PartitionStatus[], jobs: readonly JobRecord[]): PartitionWithJob[] {
  const byKey = new Map(jobs.map((j) => [`${j.kind}\u0000${hourKey(j.type, j.partition)}`, j]));
  return partitions.map((p) => {
    let job: JobRecord | undefined;
    if (p.state === 'closing' || p.state === 'open') {
      for (let h = p.start; h < p.start + (p.daily ? DAY_MS : HOUR_MS) && job === undefined; h += HOUR_MS) {
        job = byKey.get(`close\u0000${hourKey(p.type, h)}`);
      }
    } else {
      job = byKey.get(`dedup\u0000${hourKey(p.type, p.start)}`);
    }
    return { ...p, attempts: job?.attempts ?? null, worker: job?.holder ?? null };
  });
}
