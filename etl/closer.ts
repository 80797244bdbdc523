/**
 * The closer (DESIGN.md point 7): decides, per (type, hour), when the raw bucket is complete, and
 * closes it. Closing is atomic in the state store with file registration: once closed, no raw file
 * can join the hour, and events that arrive for it later go to `late/`.
 *
 * An ended hour closes when both hold:
 * 1. **Every ingress instance has finished with it.** An instance that is alive (heartbeat within
 *    `vanishAfterRealMs`) and started before the hour ended must have sealed its ledger entry for
 *    the hour (live instances seal every hour they lived through, empty ones included). An instance
 *    that stopped, or whose heartbeat is older than `vanishAfterRealMs` (the **vanished-instance
 *    rule**), is finished with it: its ledger entry counts as it was last saved, sealed or not, and
 *    the hour is recorded as closed by the rule `vanished`, naming the instances.
 * 2. **Every ledgered event is persisted.** Every sequence number in those ledger entries is in a
 *    registered raw file of the hour.
 *
 * 3. **Nothing a vanished instance published can still be on its way.** An instance saves its
 *    ledger every ~200 ms, so one that crashed may have published events its saved ledger does not
 *    list. They are on the bus, durably. So where the rule applies, the hour also waits until the
 *    type's subscription holds no unacked message published before the instance's death bound
 *    (its last heartbeat plus `vanishAfterRealMs`, and at most the hour's end plus the same): by
 *    then every such event is in a raw file. That needs exact backlog figures (the embedded bus).
 *    A bus without them (Pub/Sub, Kafka) states within how long a dead consumer's messages are
 *    delivered again; the hour then waits until the death bound plus that time plus
 *    `vanishAfterRealMs` have passed. An event still undelivered by then (a consumer lagging by
 *    more than that) arrives after the hour closed and is late (kept under `late/` and counted).
 *
 * Hours in which no ingress instance recorded anything (no ledger entry of any instance) are not
 * considered: nothing is known about them. An hour waits in `closing` as long as a ledgered event
 * is not persisted; the timeliness SLO alerts on that.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { HOUR_MS } from '../core/hours.js';
import type { Backlog } from '../core/ports/bus.js';
import type { IngressInstance, LedgerEntry, StateStore } from '../core/ports/state-store.js';
import { mergeRanges, missingRanges, type Range, rangeCount } from '../core/ranges.js';
import type { EtlMetrics } from './metrics.js';

export interface CloserConfig {
  /** An instance whose heartbeat is older than this (real ms) is vanished. */
  readonly vanishAfterRealMs: number;
}

export interface HourCheck {
  readonly type: string;
  readonly hour: number;
  /** Why the hour is not closed yet (null when it closed in this pass). */
  readonly waitingFor: string | null;
}

export class Closer {
  constructor(
    private readonly d: {
      readonly state: StateStore;
      readonly clock: Clock;
      readonly logger: Logger;
      readonly metrics: EtlMetrics;
      readonly config: CloserConfig;
      /** Names of the types whose hours are closed. */
      readonly types: () => readonly string[];
      /** Exact backlog of a type's subscription, or null where the bus cannot tell. */
      readonly backlog?: (type: string) => Promise<Backlog | null>;
      /** Without exact backlog: within this (real ms) a dead consumer's messages are delivered again. */
      readonly redeliveryWithinRealMs?: number;
    },
  ) {}

  /** One pass over every ended, unclosed hour; closes the complete ones. */
  async run(): Promise<HourCheck[]> {
    const now = this.d.clock.now();
    const types = new Set(this.d.types());
    const instances = await this.d.state.listInstances();
    const staleBefore = now - this.d.config.vanishAfterRealMs * this.d.clock.scale;
    const finished = (i: IngressInstance): boolean => i.stoppedAt !== null || i.lastSeenAt < staleBefore;

    const pending = new Map<string, { type: string; hour: number; entries: LedgerEntry[] }>();
    for (const e of await this.d.state.listLedgers({ unclosed: true })) {
      if (!types.has(e.type) || e.hour + HOUR_MS > now) continue;
      const key = `${e.type}\u0000${e.hour}`;
      let p = pending.get(key);
      if (p === undefined) {
        p = { type: e.type, hour: e.hour, entries: [] };
        pending.set(key, p);
      }
      p.entries.push(e);
    }

    const out: HourCheck[] = [];
    for (const { type, hour, entries } of pending.values()) {
      out.push(await this.check(type, hour, entries, instances, finished, now));
    }
    return out;
  }

  private async check(
    type: string,
    hour: number,
    entries: LedgerEntry[],
    instances: IngressInstance[],
    finished: (i: IngressInstance) => boolean,
    now: number,
  ): Promise<HourCheck> {
    const byInstance = new Map(entries.map((e) => [e.instanceId, e]));
    const vanished: string[] = [];
    let deathBound = 0;
    const vanishMs = this.d.config.vanishAfterRealMs * this.d.clock.scale;
    for (const i of instances) {
      const e = byInstance.get(i.id);
      if (e?.sealed) continue;
      if (finished(i)) {
        if (e !== undefined) {
          vanished.push(i.id);
          if (i.stoppedAt === null) deathBound = Math.max(deathBound, i.lastSeenAt + vanishMs);
        }
        continue;
      }
      if (i.startedAt < hour + HOUR_MS)
        return { type, hour, waitingFor: `ingress instance ${i.id} to seal its ledger` };
    }
    for (const e of entries) {
      // an entry of an instance the store does not list (should not happen): treat it by its age
      if (!e.sealed && !instances.some((i) => i.id === e.instanceId) && !vanished.includes(e.instanceId)) {
        vanished.push(e.instanceId);
        deathBound = Math.max(deathBound, e.updatedAt + vanishMs);
      }
    }
    if (deathBound > 0) {
      const bound = Math.min(deathBound, hour + HOUR_MS + vanishMs);
      const backlog = this.d.backlog === undefined ? null : await this.d.backlog(type);
      if (backlog !== null) {
        if (backlog.oldestUnackedPublishTime !== null && backlog.oldestUnackedPublishTime < bound) {
          return {
            type,
            hour,
            waitingFor: 'unacked bus messages a vanished instance may have published into the hour',
          };
        }
      } else if (this.d.redeliveryWithinRealMs !== undefined) {
        // no exact backlog: wait until messages held by a consumer that died with the instance
        // are delivered again, and the consumer had as long again to take them
        const settled = bound + this.d.redeliveryWithinRealMs * this.d.clock.scale + vanishMs;
        if (now < settled) {
          return {
            type,
            hour,
            waitingFor: 'bus messages a vanished instance may have published to be delivered again',
          };
        }
      }
    }

    const files = await this.d.state.listFiles(type, hour, 'raw');
    const have = new Map<string, Range[]>();
    for (const f of files) {
      for (const [instance, ranges] of Object.entries(f.ranges)) {
        const list = have.get(instance) ?? [];
        list.push(...ranges);
        have.set(instance, list);
      }
    }
    let ledgerTotal = 0;
    let missing = 0;
    for (const e of entries) {
      ledgerTotal += e.count;
      missing += rangeCount(missingRanges(mergeRanges(e.ranges), mergeRanges(have.get(e.instanceId) ?? [])));
    }
    if (missing > 0) return { type, hour, waitingFor: `${missing} ledgered events to be persisted` };

    const closedBy = vanished.length > 0 ? 'vanished' : 'sealed';
    const created = await this.d.state.closeHour({
      type,
      hour,
      closedAt: now,
      closedBy,
      vanishedInstances: vanished.sort(),
      ledgerTotal,
    });
    if (created) {
      this.d.metrics.hoursClosed.inc({ type, rule: closedBy });
      this.d.logger.info(
        { type, hour: new Date(hour).toISOString(), ledgerTotal, files: files.length, closedBy, vanished },
        'hour closed',
      );
    }
    return { type, hour, waitingFor: null };
  }
}
