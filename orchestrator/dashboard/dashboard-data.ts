/**
 * What the dashboard shows, computed from the state store and the object store: the grid of
 * event types × the last hours (each cell's display state), one hour's detail with its manifest,
 * and a type's panel (hourly throughput, reject reasons, alerts).
 */
import type { EventCatalog, EventType } from '../../core/event-types.js';
import { HOUR_MS, hourStart } from '../../core/hours.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import type { AlertRecord, StateStore } from '../../core/ports/state-store.js';
import { type HourStatus, hourStates, type WaitingFor } from '../../etl/hour-states.js';
import { alertView } from '../alerts/alerting.js';
import { type HourSlo, hourSlo, type SloPolicy } from '../slo.js';

/** Display states of a cell, most urgent first where several apply. */
export const CELL_STATES = {
  failed: 'completeness violated: ledgered events are missing, so it is not published',
  retrying: 'closed, but publishing it failed and is retried: its error says why',
  breached: 'SLO breached: not published within its timeliness budget',
  at_risk: 'SLO at risk: a large share of its timeliness budget used, not published yet',
  late: 'published; some events arrived after the hour closed (kept under late/)',
  published: 'final partition complete and queryable',
  closed: 'raw bucket complete, deduplication pending (daily types: until the day ends)',
  closing: 'ended, waiting for every ledgered event to be stored (what for: in its detail)',
  open: 'the hour has not ended',
  none: 'no data for this hour',
} as const;

export type CellState = keyof typeof CELL_STATES;

export interface DashboardDeps {
  readonly store: StateStore;
  /** Host names the dashboard answers to (DNS rebinding); empty: any. */
  readonly allowedHosts: readonly string[];
  readonly objects: ObjectStore;
  readonly catalog: EventCatalog;
  readonly now: () => number;
  readonly timeScale: number;
  readonly slo: SloPolicy;
  /** What closing hours wait for (none: not shown). */
  readonly waitingFor?: WaitingFor;
}

export interface Cell {
  readonly hour: string;
  readonly state: CellState;
  /** The hour's own state (`open`, `closing`, `closed`, `deduped`, `published`, `failed`), or null. */
  readonly hourState: string | null;
  readonly events: number;
  readonly out: number | null;
  readonly duplicates: number | null;
  readonly late: number;
  readonly timeliness: HourSlo['timeliness'] | null;
  readonly budgetUsed: number | null;
  readonly deliveryDelayMs: number | null;
  /** Why a `failed` hour failed (`ledger_mismatch: …`), or why publishing a closed one fails (`dedup_failed: …`). */
  readonly error: string | null;
  /** What a `closing` hour waits for, else null. */
  readonly waitingFor: string | null;
}

export function cellState(s: HourStatus | undefined, slo: HourSlo | null): CellState {
  if (s === undefined) return 'none';
  if (s.state === 'failed') return 'failed';
  // a closed (or deduped) hour carries an error only while its dedup step fails and is retried
  if ((s.state === 'closed' || s.state === 'deduped') && (s.record?.error ?? null) !== null) return 'retrying';
  if (s.state === 'published') return (s.record?.lateEvents ?? 0) > 0 ? 'late' : 'published';
  if (slo?.timeliness === 'breached') return 'breached';
  if (slo?.timeliness === 'at_risk') return 'at_risk';
  if (s.state === 'deduped') return 'closed';
  return s.state;
}

function typeInfo(t: EventType, slo: SloPolicy) {
  return {
    name: t.name,
    description: t.description,
    owner: t.owner,
    tier: t.tier,
    partitioning: t.partitioning,
    status: t.status,
    sloMs: slo.sloMs[t.tier],
  };
}

export async function dashboardGrid(d: DashboardDeps, hours: number, visible: (t: EventType) => boolean = () => true) {
  const now = d.now();
  const last = hourStart(now);
  const first = last - (hours - 1) * HOUR_MS;
  const states = await hourStates(d.store, now, { from: first }, d.waitingFor);
  const byKey = new Map(states.map((s) => [`${s.type}\u0000${s.hour}`, s]));
  const shown = d.catalog.list().filter((t) => t.status !== 'retired' && visible(t));
  const names = new Set(shown.map((t) => t.name));
  const firing = (await d.store.listAlerts({ state: 'firing' })).filter((a) => names.has(a.type));
  const types = shown.map((t) => {
    const cells: Cell[] = [];
    for (let h = first; h <= last; h += HOUR_MS) {
      const s = byKey.get(`${t.name}\u0000${h}`);
      const slo = s === undefined ? null : hourSlo(s, t, now, d.slo);
      cells.push({
        hour: new Date(h).toISOString(),
        state: cellState(s, slo),
        hourState: s?.state ?? null,
        events: s?.ledgerEvents ?? 0,
        out: s?.record?.eventsOut ?? null,
        duplicates: s?.record?.duplicates ?? null,
        late: s?.record?.lateEvents ?? 0,
        timeliness: slo?.timeliness ?? null,
        budgetUsed: slo === null ? null : round(slo.budgetUsed),
        deliveryDelayMs: slo?.deliveryDelayMs ?? null,
        error: s?.record?.error ?? null,
        waitingFor: s?.waitingFor ?? null,
      });
    }
    return { ...typeInfo(t, d.slo), firing: firing.filter((a) => a.type === t.name).length, cells };
  });
  return {
    now: new Date(now).toISOString(),
    timeScale: d.timeScale,
    hours: Array.from({ length: hours }, (_, i) => new Date(first + i * HOUR_MS).toISOString()),
    types,
    legend: Object.entries(CELL_STATES).map(([state, description]) => ({ state, description })),
    alertsFiring: firing.length,
  };
}

/** One hour of a type: its record, SLO figures, committed files and manifest (null if none). */
export async function hourDetail(d: DashboardDeps, type: EventType, hour: number) {
  const now = d.now();
  const states = await hourStates(d.store, now, { type: type.name, from: hour, to: hour + HOUR_MS }, d.waitingFor);
  const s = states.find((x) => x.hour === hour);
  const slo = s === undefined ? null : hourSlo(s, type, now, d.slo);
  const [raw, late] = await Promise.all([
    d.store.listFiles(type.name, hour, 'raw'),
    d.store.listFiles(type.name, hour, 'late'),
  ]);
  let manifest: unknown = null;
  let manifestError: string | null = null;
  const name = s?.record?.manifest ?? null;
  if (name !== null) {
    try {
      manifest = JSON.parse((await d.objects.get(name)).toString('utf8')) as unknown;
    } catch (err) {
      // e.g. removed by retention since the record was read: the rest of the detail still shows
      manifestError = `manifest ${name} could not be read: ${(err as Error).message}`;
    }
  }
  return {
    type: typeInfo(type, d.slo),
    hour: new Date(hour).toISOString(),
    state: cellState(s, slo),
    hourState: s?.state ?? null,
    ledgerEvents: s?.ledgerEvents ?? 0,
    record: s?.record ?? null,
    waitingFor: s?.waitingFor ?? null,
    slo,
    files: {
      raw: raw.length,
      rawEvents: raw.reduce((n, f) => n + f.events, 0),
      rawBytes: raw.reduce((n, f) => n + f.bytes, 0),
      late: late.length,
      lateEvents: late.reduce((n, f) => n + f.events, 0),
    },
    manifest,
    manifestError,
  };
}

/**
 * A type's panel: events per hour, hours with an error or still closing (newest first, with what
 * they wait for), reject reasons, firing and recent alerts.
 */
export async function typePanel(d: DashboardDeps, type: EventType, hours: number) {
  const now = d.now();
  const first = hourStart(now) - (hours - 1) * HOUR_MS;
  const states = await hourStates(d.store, now, { type: type.name, from: first }, d.waitingFor);
  const byHour = new Map(states.map((s) => [s.hour, s]));
  const [letters, totals, alerts] = await Promise.all([
    d.store.listDeadLetters(type.name, 1000),
    d.store.deadLetterTotals(),
    d.store.listAlerts({ type: type.name, since: now - hours * HOUR_MS, limit: 50 }),
  ]);
  const reasons = new Map<string, { code: string; path: string; count: number; example: string }>();
  for (const l of letters) {
    const key = `${l.code}\u0000${l.path}`;
    const r = reasons.get(key) ?? { code: l.code, path: l.path, count: 0, example: l.message };
    r.count += 1;
    reasons.set(key, r);
  }
  return {
    type: typeInfo(type, d.slo),
    // every hour of the window, oldest first, as in the grid
    throughput: Array.from({ length: hours }, (_, i) => {
      const hour = first + i * HOUR_MS;
      const s = byHour.get(hour);
      return {
        hour: new Date(hour).toISOString(),
        events: s?.ledgerEvents ?? 0,
        out: s?.record?.eventsOut ?? null,
        duplicates: s?.record?.duplicates ?? null,
      };
    }),
    issues: states
      .filter((s) => s.state === 'closing' || (s.record?.error ?? null) !== null)
      .reverse()
      .map((s) => ({
        hour: new Date(s.hour).toISOString(),
        state: cellState(s, hourSlo(s, type, now, d.slo)),
        hourState: s.state,
        error: s.record?.error ?? null,
        waitingFor: s.waitingFor,
      })),
    rejects: {
      total: totals[type.name] ?? 0,
      recent: letters.length,
      reasons: [...reasons.values()].sort((a, b) => b.count - a.count),
    },
    alerts: alerts.map(alertJson),
  };
}

export function alertJson(a: AlertRecord) {
  const v = alertView(a);
  return {
    ...v,
    openedAt: new Date(a.openedAt).toISOString(),
    resolvedAt: a.resolvedAt === null ? null : new Date(a.resolvedAt).toISOString(),
    routes: a.routes,
    notifications: a.notifications,
    notifiedAt: a.notifiedAt === null ? null : new Date(a.notifiedAt).toISOString(),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
