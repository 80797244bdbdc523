/**
 * Events sent per type over sliding windows, for the reject-rate and dead-letter rules: accepted
 * events from the ingress ledgers (every instance's count of the current and previous hour, taken
 * as increments), rejected ones from the dead-letter totals. Samples are kept in memory for the
 * longest window; right after a start a window covers what was seen since.
 */
import type { Clock } from '../../core/clock.js';
import { HOUR_MS, hourStart } from '../../core/hours.js';
import type { StateStore } from '../../core/ports/state-store.js';
import type { WindowCounts } from './rules.js';

interface Sample {
  /** Real ms (performance.now based). */
  readonly at: number;
  readonly accepted: number;
  readonly rejected: number;
}

export class SendCounts {
  /** Last seen count per ledger entry (instance, type, hour). */
  private readonly seen = new Map<string, { hour: number; count: number }>();
  private readonly accepted = new Map<string, number>();
  private readonly samples = new Map<string, Sample[]>();
  private started = false;

  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    /** Longest window any rule asks for (real ms). */
    private readonly keepRealMs: number,
  ) {}

  /** Reads the ledgers and dead-letter totals and records a sample per type. */
  async sample(realNow: number = performance.now()): Promise<void> {
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
    const types = new Set([...this.accepted.keys(), ...Object.keys(rejected), ...this.samples.keys()]);
    for (const type of types) {
      const list = this.samples.get(type) ?? [];
      list.push({ at: realNow, accepted: this.accepted.get(type) ?? 0, rejected: rejected[type] ?? 0 });
      // keep one sample older than the longest window, as its base
      while (list.length > 2 && (list[1] as Sample).at <= realNow - this.keepRealMs) list.shift();
      this.samples.set(type, list);
    }
  }

  /** Counts of the last `windowRealMs` (or since the first sample, if more recent). */
  counts(type: string, windowRealMs: number): WindowCounts {
    const list = this.samples.get(type) ?? [];
    const last = list[list.length - 1];
    if (last === undefined) return { rejected: 0, sent: 0, spanRealMs: 0 };
    let base = list[0] as Sample;
    for (const s of list) {
      if (s.at <= last.at - windowRealMs) base = s;
      else break;
    }
    const rejected = last.rejected - base.rejected;
    return { rejected, sent: last.accepted - base.accepted + rejected, spanRealMs: last.at - base.at };
  }
}
