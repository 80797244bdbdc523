/**
 * The state of every known (type, hour): `open` (not ended), `closing` (ended, raw bucket not yet
 * complete), then the recorded states `closed`, `deduped`, `published`, `failed`.
 */
import { HOUR_MS } from '../core/hours.js';
import type { HourRecord, StateStore } from '../core/ports/state-store.js';

export type HourStateName = 'open' | 'closing' | HourRecord['state'];

export interface HourStatus {
  readonly type: string;
  readonly hour: number;
  readonly state: HourStateName;
  readonly ledgerEvents: number;
  readonly record: HourRecord | null;
}

export async function hourStates(
  state: StateStore,
  now: number,
  filter: { type?: string; from?: number; to?: number } = {},
): Promise<HourStatus[]> {
  const records = await state.listHours({ type: filter.type, from: filter.from, to: filter.to });
  const byKey = new Map<string, HourStatus>();
  for (const r of records) {
    byKey.set(`${r.type}\u0000${r.hour}`, {
      type: r.type,
      hour: r.hour,
      state: r.state,
      ledgerEvents: r.ledgerTotal,
      record: r,
    });
  }
  const counts = new Map<string, { type: string; hour: number; n: number }>();
  for (const e of await state.listLedgers({ type: filter.type, from: filter.from })) {
    if (filter.to !== undefined && e.hour >= filter.to) continue;
    const key = `${e.type}\u0000${e.hour}`;
    if (byKey.has(key)) continue;
    const c = counts.get(key) ?? { type: e.type, hour: e.hour, n: 0 };
    c.n += e.count;
    counts.set(key, c);
  }
  for (const [key, c] of counts) {
    byKey.set(key, {
      type: c.type,
      hour: c.hour,
      state: c.hour + HOUR_MS > now ? 'open' : 'closing',
      ledgerEvents: c.n,
      record: null,
    });
  }
  return [...byKey.values()].sort((a, b) => (a.type === b.type ? a.hour - b.hour : a.type < b.type ? -1 : 1));
}
