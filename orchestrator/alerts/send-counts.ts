/**
 * Events sent per type over sliding windows, for the reject-rate and dead-letter rules: accepted
 * events from the ingress ledgers (every instance's count of the current and previous hour, taken
 * as increments), rejected ones from the dead-letter totals. Samples are kept in memory for the
 * longest window.
 *
 * The ingress saves its ledger and its dead letters on their own timers (every 200 and 250 ms), so
 * the newest sample may hold one and not yet the other: a window ends `SETTLE_REAL_MS` before the
 * newest sample, where both are saved. Right after a start a window covers what was seen since,
 * and a window shorter than half its length is not judged (empty counts).
 */
import type { Clock } from '../../core/clock.js';
import { HOUR_MS, hourStart } from '../../core/hours.js';
import type { StateStore } from '../../core/ports/state-store.js';
import type { WindowCounts } from './rules.js';

/** How far behind the newest sample a window ends (real ms). */
export const SETTLE_REAL_MS = 1_000;

interface Sample {
  /** Real ms (performance.now based). */
  readonly at: number;
  readonly accepted: number;
  readonly rejected: number;
}

const EMPTY: WindowCounts = { rejected: 0, sent: 0, spanRealMs: 0 };

export class SendCounts {
  /** Last seen count per ledger entry (instance, type, hour). */
  private readonly seen = new Map<string, { hour: number; count: number }>();
  private readonly accepted = new Map<string, number>();
  private readonly samples = new Map<string, Sample[]>();
  private started = false;

  private readonly keepRealMs: number;

  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    /** Longest window any rule asks for (real ms). */
    longestWindowRealMs: number,
  ) {
    this.keepRealMs = longestWindowRealMs + SETTLE_REAL_MS;
  }

  /**
   * Reads the ledgers and dead-letter totals and records a sample for each of `types` (from their
   * first sample on, before any event of theirs, so a window's base never holds part of a burst)
   * and each type with counts.
   */
  async sample(types: readonly string[], realNow: number = performance.now()): Promise<void> {
    const from = hourStart(this.clock.now()) - HOUR_MS;
    const [entries, rejected] = await Promise.all([this.store.listLedgers({ from }), this.store.deadLetterTotals()]);
    for (const e of entries) {
      const key = `${e.instanceId}\u0000${e.type}\u0000${e.hour}`;
      const prev = this.seen.get(key);
      const added = prev === undefined ? (this.started ? e.count : 0) : Math.max(0, e.count - prev.count);
      this.seen.set(key, { hour: e.hour, count: e.count });
      if (added > 0) this.accepted.set(e.type, (this.accepted.get(e.type) ?? 0) + added);
    }
    for (const [key, v] of this.seen) if (v.hour < from) this.seen.delete(key);
    this.started = true;
    const all = new Set([...types, ...this.accepted.keys(), ...Object.keys(rejected), ...this.samples.keys()]);
    for (const type of all) {
      const list = this.samples.get(type) ?? [];
      list.push({ at: realNow, accepted: this.accepted.get(type) ?? 0, rejected: rejected[type] ?? 0 });
      // keep one sample older than the longest window, as its base
      while (list.length > 2 && (list[1] as Sample).at <= realNow - this.keepRealMs) list.shift();
      this.samples.set(type, list);
    }
  }

  /**
   * Counts of the `windowRealMs` that end `SETTLE_REAL_MS` before the newest sample (or since the
   * first sample, if more recent); empty while that span is under half the window.
   */
  counts(type: string, windowRealMs: number): WindowCounts {
    const list = this.samples.get(type) ?? [];
    const newest = list[list.length - 1];
    if (newest === undefined) return EMPTY;
    const latest = (at: number): Sample | undefined => {
      let found: Sample | undefined;
      for (const s of list) {
        if (s.at <= at) found = s;
        else break;
      }
      return found;
    };
    const end = latest(newest.at - SETTLE_REAL_MS);
    if (end === undefined) return EMPTY;
    const base = latest(end.at - windowRealMs) ?? (list[0] as Sample);
    const span = end.at - base.at;
    if (span < windowRealMs / 2) return EMPTY;
    const rejected = end.rejected - base.rejected;
    return { rejected, sent: end.accepted - base.accepted + rejected, spanRealMs: span };
  }
}
