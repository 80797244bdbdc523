/**
 * The ingress ledger (DESIGN.md point 7): per (type, hour), which sequence numbers this instance
 * published. Sequence numbers are per (instance, type), from 1, assigned before publishing; only
 * ranges the bus confirmed are recorded, so a failed publish leaves a gap, never a false entry.
 *
 * Entries are saved to the state store every few hundred milliseconds (`flush`), and always when
 * sealed. An hour's entry is sealed once the hour plus the grace period is over and no publish
 * into it is still in flight; on a clean stop every open entry is sealed at once. A crash can lose
 * the last unsaved ranges, but never makes the ledger claim an event the bus does not have; and
 * an instance that crashed never seals, so the closer's vanished-instance rule decides its hours.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { HOUR_MS } from '../../core/hours.js';
import type { LedgerEntry, StateStore } from '../../core/ports/state-store.js';
import { RangeSet } from './range-set.js';

interface OpenEntry {
  readonly type: string;
  readonly hour: number;
  readonly published: RangeSet;
  inFlight: number;
  dirty: boolean;
}

export interface Reservation {
  readonly type: string;
  readonly hour: number;
  readonly from: number;
  readonly to: number;
}

export class IngressLedger {
  private readonly nextSeq = new Map<string, number>();
  private readonly open = new Map<string, OpenEntry>();
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushScheduled = false;
  private sealing = false;
  /** Hours before this one have been sealed for every type (empty entries included). */
  private sealedThrough: number;

  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    readonly instanceId: string,
    private readonly graceMs: number,
    private readonly logger: Logger,
    /** Names of the types the instance accepts; each gets a sealed (possibly empty) entry per hour. */
    private readonly typeNames: () => readonly string[] = () => [],
  ) {
    this.sealedThrough = Math.floor(clock.now() / HOUR_MS) * HOUR_MS;
  }

  /** Reserves `n` sequence numbers of `type` for a publish into `hour`. */
  reserve(type: string, hour: number, n: number): Reservation {
    const from = this.nextSeq.get(type) ?? 1;
    this.nextSeq.set(type, from + n);
    const entry = this.entry(type, hour);
    entry.inFlight++;
    return { type, hour, from, to: from + n - 1 };
  }

  /** The bus confirmed the reserved range: record it. */
  confirm(r: Reservation): void {
    const entry = this.entry(r.type, r.hour);
    entry.published.add(r.from, r.to);
    entry.inFlight--;
    entry.dirty = true;
  }

  /** The publish failed: the range stays unrecorded (a gap). */
  abandon(r: Reservation): void {
    this.entry(r.type, r.hour).inFlight--;
  }

  private entry(type: string, hour: number): OpenEntry {
    const key = `${type}\u0000${hour}`;
    let e = this.open.get(key);
    if (e === undefined) {
      e = { type, hour, published: new RangeSet(), inFlight: 0, dirty: false };
      this.open.set(key, e);
    }
    return e;
  }

  /**
   * Saves every changed entry; resolves when saved. Calls in the same tick share one write.
   * Rejects with the store's error (the entries stay dirty and are saved by the next flush).
   */
  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flushNow());
      }
    });
  }

  private async flushNow(): Promise<void> {
    this.flushScheduled = false;
    const waiters = this.waiters;
    this.waiters = [];
    const dirty = [...this.open.values()].filter((e) => e.dirty);
    for (const e of dirty) e.dirty = false;
    try {
      if (dirty.length > 0) await this.store.saveLedgers(dirty.map((e) => this.toEntry(e, false)));
      for (const w of waiters) w.resolve();
    } catch (err) {
      for (const e of dirty) e.dirty = true;
      for (const w of waiters) w.reject(err);
    }
  }

  private toEntry(e: OpenEntry, sealed: boolean): LedgerEntry {
    return {
      instanceId: this.instanceId,
      type: e.type,
      hour: e.hour,
      ranges: e.published.toArray(),
      count: e.published.count,
      sealed,
      updatedAt: this.clock.now(),
    };
  }

  /** Seals entries whose hour ended more than the grace period ago. Returns how many. */
  async sealDue(): Promise<number> {
    const now = this.clock.now();
    const sealed = await this.seal((e) => now >= e.hour + HOUR_MS + this.graceMs && e.inFlight === 0);
    // Hours this instance lived through but published nothing into: sealed empty entries say so.
    const keys = [];
    let hour = this.sealedThrough;
    while (now >= hour + HOUR_MS + this.graceMs && keys.length < 10_000) {
      const blocked = [...this.open.values()].some((e) => e.hour <= hour);
      if (blocked) break;
      for (const type of this.typeNames()) keys.push({ instanceId: this.instanceId, type, hour });
      hour += HOUR_MS;
    }
    if (hour !== this.sealedThrough) {
      await this.store.sealLedgers(keys, now);
      this.sealedThrough = hour;
    }
    return sealed;
  }

  /** Seals every entry with nothing in flight (clean stop: this instance publishes no more). */
  async sealAll(): Promise<number> {
    const sealed = await this.seal((e) => e.inFlight === 0);
    const hour = Math.floor(this.clock.now() / HOUR_MS) * HOUR_MS;
    const keys = [];
    for (let h = this.sealedThrough; h <= hour && keys.length < 10_000; h += HOUR_MS) {
      for (const type of this.typeNames()) keys.push({ instanceId: this.instanceId, type, hour: h });
    }
    await this.store.sealLedgers(keys, this.clock.now());
    this.sealedThrough = hour + HOUR_MS;
    return sealed;
  }

  private async seal(due: (e: OpenEntry) => boolean): Promise<number> {
    if (this.sealing) return 0;
    this.sealing = true;
    try {
      const entries = [...this.open.entries()].filter(([, e]) => due(e));
      if (entries.length === 0) return 0;
      await this.store.saveLedgers(entries.map(([, e]) => this.toEntry(e, true)));
      for (const [key] of entries) this.open.delete(key);
      this.logger.info(
        {
          sealed: entries.map(([, e]) => ({
            type: e.type,
            hour: new Date(e.hour).toISOString(),
            count: e.published.count,
          })),
        },
        'ledger sealed',
      );
      return entries.length;
    } finally {
      this.sealing = false;
    }
  }

  /** Open (unsealed) entries, for diagnostics. */
  openEntries(): { type: string; hour: number; count: number; inFlight: number }[] {
    return [...this.open.values()].map((e) => ({
      type: e.type,
      hour: e.hour,
      count: e.published.count,
      inFlight: e.inFlight,
    }));
  }
}
