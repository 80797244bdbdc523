/**
 * The closer (DESIGN.md point 7): decides, per (type, hour), when the raw bucket is complete, and
 * closes it. Closing is atomic in the state store with file registration: once closed, no raw file
 * can join the hour, and events that arrive for it later go to `late/`.
 *
 * An ended hour closes when all hold:
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
 *    `vanishAfterRealMs` have passed. Where the type's consumer runs in the closer's process, that
 *    time counts from its start too (a process restarted whole delivers nothing before it runs)
 *    and from the last message of the hour it received (a lagging consumer still takes them), and
 *    it must hold no message of the hour unstored. An event still undelivered by then (a consumer
 *    elsewhere lagging by more than that) arrives after the hour closed and is late (kept under
 *    `late/` and counted).
 *
 * **Loss is never silent.** An hour whose instances have all finished with it but whose ledgers
 * name sequence numbers no registered raw file holds is marked `failed` (closed, so no file can
 * join it later and a late event goes to `late/`; alerting pages on it), with
 * `ledger_mismatch: N acknowledged events are missing from the bus (instance: ranges; …)`, once
 * the bus proves they cannot come any more:
 * - with exact backlog figures (the embedded bus): the type's subscription holds no unacked
 *   message, or only messages published after the ledgers' last update (plus `vanishAfterRealMs`
 *   of margin; a ledger records only what the bus confirmed, so before it saved it). The backlog is read before the raw files are listed: the consumer registers a
 *   file before it acks its messages, so every message acked by then is in a listed file.
 * - without (Pub/Sub, Kafka): once `redeliveryWithinRealMs` plus `vanishAfterRealMs` have passed
 *   since the last sign of life of the hour: the ledgers' last update, the last raw file
 *   registered for it, the last message of it the type's consumer in this process received, the
 *   consumer's start or recovery from failed commits, and the moment this closer first saw the
 *   events missing. The consumer must hold no message of the hour, and the bus's backlog figure,
 *   where it has one, must be 0. Without a consumer of the type in this process, it waits. (A
 *   consumer lagging behind still receives messages of the hour, or registers files of it: the
 *   hour waits for it.)
 * Until then the hour waits in `closing`, saying what for: kept in memory per hour
 * ({@link Closer.waitingFor}, and {@link Closer.explain} judges it again without changing
 * anything, for `hourglass hours` and the dashboard), and logged at debug when first seen, at
 * info once it has waited 30 real seconds and then at most every 5 real minutes; the timeliness
 * SLO alerts on it.
 *
 * One hour's check failing (the store or the bus answering an error about it) is logged and
 * retried on the next pass; the other hours of the pass are still checked.
 *
 * Hours in which no ingress instance recorded anything (no ledger entry of any instance) are not
 * considered: nothing is known about them.
 */
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { HOUR_MS } from '../core/hours.js';
import type { Backlog } from '../core/ports/bus.js';
import type { IngressInstance, LedgerEntry, RawFile, StateStore } from '../core/ports/state-store.js';
import { describeRanges, mergeRanges, missingRanges, type Range, rangeCount } from '../core/ranges.js';
import { hourKey } from './hour-states.js';
import type { Claim } from './job-claims.js';
import { createEtlMetrics, type EtlMetrics } from './metrics.js';

export interface CloserConfig {
  /** An instance whose heartbeat is older than this (real ms) is vanished. */
  readonly vanishAfterRealMs: number;
}

export interface HourCheck {
  readonly type: string;
  readonly hour: number;
  /** Why the hour is not closed yet (null when it closed, or failed, in this pass). */
  readonly waitingFor: string | null;
  /** Set when the hour was marked `failed` in this pass: the error recorded. */
  readonly failed?: string;
}

/**
 * A closing hour's wait is logged at debug when first seen, at info once it has waited
 * `infoAfterRealMs`, then at info at most every `everyRealMs`.
 */
export interface WaitLogTimes {
  readonly infoAfterRealMs: number;
  readonly everyRealMs: number;
}

export const WAIT_LOG_TIMES: WaitLogTimes = { infoAfterRealMs: 30_000, everyRealMs: 5 * 60_000 };

/**
 * How a check acts on its verdict: `close` closes (or fails) the hour; `probe` judges as `close`
 * does (and remembers what it saw) but changes nothing: where `close` would act, it says the hour
 * waits for nothing (`waitingFor` null); `explain` judges without changing or remembering
 * anything, and says in words what would happen.
 */
type Mode = 'close' | 'probe' | 'explain';

/** What a type's consumer knows of an hour (see TypeConsumer). */
export interface ConsumerView {
  /** Since when it has run with its commits succeeding (its start, or its recovery), clock ms. */
  readonly steadySince: number;
  /** When it last received a message of the hour (clock ms), or null. */
  readonly lastReceivedAt: number | null;
  /** Whether it holds messages of the hour not acked yet (open or committing files). */
  readonly holding: boolean;
}

/** What the registered raw files of an hour lack of its ledgers. */
interface Tally {
  readonly files: readonly RawFile[];
  readonly ledgerTotal: number;
  readonly missing: number;
  /** Missing ranges per instance, instances sorted. */
  readonly ranges: readonly (readonly [string, Range[]])[];
}

/** Whether the bus proves that missing ledgered events can no longer arrive. */
type Verdict =
  | { readonly lost: true; readonly rule: 'exact_backlog' | 'redelivery_bound'; readonly backlog: Backlog | null }
  | { readonly lost: false; readonly reason: string | null };

export class Closer {
  /** Per closing hour (`type\0hour`): when this closer first saw ledgered events missing (clock ms). */
  private readonly missingSince = new Map<string, number>();
  /** Per closing hour: when this closer first saw it waiting, and last logged it at info (real ms). */
  private readonly waitLogged = new Map<string, { since: number; info: number | null }>();
  /** Per closing hour: what it waited for at the last pass. */
  private readonly waits = new Map<string, string>();

  constructor(
    private readonly d: {
      readonly state: StateStore;
      readonly clock: Clock;
      readonly logger: Logger;
      readonly metrics: EtlMetrics;
      readonly config: CloserConfig;
      /** Names of the types whose hours are closed. */
      readonly types: () => readonly string[];
      /**
       * Backlog figures of a type's subscription (exact where `exactBacklog`, otherwise the bus's
       * estimate), or null where the bus cannot tell (e.g. no such subscription).
       */
      readonly backlog?: (type: string) => Promise<Backlog | null>;
      /** Whether `backlog` gives exact figures (the embedded bus). */
      readonly exactBacklog?: boolean;
      /** Without exact backlog: within this (real ms) a dead consumer's messages are delivered again. */
      readonly redeliveryWithinRealMs?: number;
      /** What the type's consumer in this process knows of an hour; null when none runs here. */
      readonly consumer?: (type: string, hour: number) => ConsumerView | null;
      /** When waits are logged (default {@link WAIT_LOG_TIMES}). */
      readonly waitLog?: WaitLogTimes;
      /**
       * Claims the hour's `close` job once a check finds it ready to close or fail, before it is
       * checked again and acted on (null: another closer acts on it now, so this one skips it).
       * An hour that still waits is never claimed. Without, every hour is checked and acted on.
       */
      readonly claim?: (type: string, hour: number) => Promise<Claim | null>;
    },
  ) {}

  /** What the hour waited for at the last pass (null: not waiting, or not seen by this closer). */
  waitingFor(type: string, hour: number): string | null {
    return this.waits.get(hourKey(type, hour)) ?? null;
  }

  /**
   * What each ended, unclosed hour of `hours` waits for, judged now as a pass would but without
   * closing, failing or remembering anything; keyed by {@link hourKey}. An hour this closer would
   * close or fail says so ("the closer's next pass …"). Without bus figures (a closer on the state
   * store alone), a vanished instance's messages still on the bus are not checked, and it says so.
   */
  async explain(hours: readonly { type: string; hour: number }[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const now = this.d.clock.now();
    const ended = hours.filter((h) => h.hour + HOUR_MS <= now);
    if (ended.length === 0) return out;
    const instances = await this.d.state.listInstances();
    const finished = this.finishedBy(now);
    for (const { type, hour } of ended) {
      const entries = await this.d.state.listLedgers({ type, hour, unclosed: true });
      if (entries.length === 0) continue;
      const c = await this.check(type, hour, entries, instances, finished, now, 'explain');
      if (c.waitingFor !== null) out.set(hourKey(type, hour), c.waitingFor);
    }
    return out;
  }

  private finishedBy(now: number): (i: IngressInstance) => boolean {
    const staleBefore = now - this.d.config.vanishAfterRealMs * this.d.clock.scale;
    return (i) => i.stoppedAt !== null || i.lastSeenAt < staleBefore;
  }

  /** One pass over every ended, unclosed hour; closes the complete ones. */
  async run(): Promise<HourCheck[]> {
    const now = this.d.clock.now();
    const types = new Set(this.d.types());
    const instances = await this.d.state.listInstances();
    const finished = this.finishedBy(now);

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
    for (const [key, { type, hour, entries }] of pending) {
      let c: HourCheck;
      let claim: Claim | null = null;
      try {
        if (this.d.claim === undefined) c = await this.check(type, hour, entries, instances, finished, now, 'close');
        else {
          // judged first without the claim: an hour that still waits costs the state store no write
          c = await this.check(type, hour, entries, instances, finished, now, 'probe');
          if (c.waitingFor === null) {
            claim = await this.d.claim(type, hour);
            if (claim === null) continue; // another closer acts on it now
            c = await this.check(type, hour, entries, instances, finished, now, 'close');
          }
        }
      } catch (err) {
        // this hour's check failed (its files could not be listed, its bus figures not read):
        // it is retried next pass, and the other hours are checked meanwhile
        this.d.logger.error(
          { err, type, hour: new Date(hour).toISOString() },
          'checking an hour failed; retried next pass',
        );
        c = { type, hour, waitingFor: `the closer's check to succeed (it failed: ${(err as Error).message})` };
      }
      await this.release(claim, c, now);
      out.push(c);
      if (c.waitingFor === null) {
        this.missingSince.delete(key);
        this.waitLogged.delete(key);
        this.waits.delete(key);
      } else {
        this.waits.set(key, c.waitingFor);
        this.logWait(key, c);
      }
    }
    // forget hours that are no longer pending (closed elsewhere, forgotten by retention)
    for (const m of [this.missingSince, this.waitLogged, this.waits]) {
      for (const key of m.keys()) if (!pending.has(key)) m.delete(key);
    }
    const closing = new Map([...types].map((t) => [t, 0]));
    for (const c of out) if (c.waitingFor !== null) closing.set(c.type, (closing.get(c.type) ?? 0) + 1);
    for (const [type, n] of closing) this.d.metrics.hoursClosing.set({ type }, n);
    return out;
  }

  /** Ends the hour's close job: done once it closed or failed; otherwise ready for the next pass (a wait, not an attempt). */
  private async release(claim: Claim | null, c: HourCheck, now: number): Promise<void> {
    if (claim === null) return;
    try {
      if (c.waitingFor === null) await claim.finish({ state: 'done', error: c.failed ?? null }, [], now);
      else await claim.release(now, c.waitingFor);
    } catch (err) {
      // the hour's record is what counts (closing is insert-if-absent); the job is only a claim
      this.d.logger.warn({ err, type: c.type, hour: new Date(c.hour).toISOString() }, 'ending a close job failed');
    }
  }

  private logWait(key: string, c: HourCheck): void {
    const times = this.d.waitLog ?? WAIT_LOG_TIMES;
    const t = performance.now();
    const seen = this.waitLogged.get(key);
    const fields = { type: c.type, hour: new Date(c.hour).toISOString(), waitingFor: c.waitingFor };
    if (seen === undefined) {
      this.d.logger.debug(fields, 'hour closing');
      this.waitLogged.set(key, { since: t, info: null });
    } else if (seen.info === null ? t - seen.since >= times.infoAfterRealMs : t - seen.info >= times.everyRealMs) {
      this.d.logger.info({ ...fields, waitingRealSeconds: Math.round((t - seen.since) / 1000) }, 'hour still closing');
      this.waitLogged.set(key, { since: seen.since, info: t });
    }
  }

  private async check(
    type: string,
    hour: number,
    entries: LedgerEntry[],
    instances: IngressInstance[],
    finished: (i: IngressInstance) => boolean,
    now: number,
    mode: Mode,
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
    // a closer on the state store alone, explaining: it cannot see the bus
    const busUnseen = deathBound > 0 && this.d.backlog === undefined && this.d.redeliveryWithinRealMs === undefined;
    if (deathBound > 0) {
      const bound = Math.min(deathBound, hour + HOUR_MS + vanishMs);
      const backlog = this.d.backlog === undefined || this.d.exactBacklog !== true ? null : await this.d.backlog(type);
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
        // are delivered again, and the consumer had as long again to take them. A consumer of the
        // type here counts from its start (the dead one's messages reach it only once it runs: a
        // whole process restarted slowly) and from the last message of the hour it received (it
        // lags, still taking them), and must hold none of the hour unstored
        const view = this.d.consumer?.(type, hour) ?? null;
        const from = Math.max(bound, view?.steadySince ?? 0, view?.lastReceivedAt ?? 0);
        const settled = from + this.d.redeliveryWithinRealMs * this.d.clock.scale + vanishMs;
        if (now < settled || view?.holding === true) {
          return {
            type,
            hour,
            waitingFor: 'bus messages a vanished instance may have published to be delivered again',
          };
        }
      }
    }

    let tally = await this.tally(type, hour, entries);
    if (tally.missing > 0) {
      const key = hourKey(type, hour);
      const seen = this.missingSince.get(key) ?? now;
      if (mode !== 'explain') this.missingSince.set(key, seen);
      const verdict = await this.verdict(type, hour, entries, tally, seen, now);
      if (!verdict.lost) {
        const detail = describeRanges(tally.ranges);
        const why = verdict.reason === null ? '' : `; ${verdict.reason}`;
        return { type, hour, waitingFor: `${tally.missing} ledgered events to be persisted (${detail})${why}` };
      }
      // list the files again, after the backlog was read: a file registered meanwhile counts
      tally = await this.tally(type, hour, entries);
      if (tally.missing > 0) {
        if (mode === 'probe') return { type, hour, waitingFor: null };
        if (mode === 'explain') {
          return {
            type,
            hour,
            waitingFor: `the closer's next pass, which marks it failed: ${lossError(tally)}`,
          };
        }
        return this.fail(type, hour, tally, vanished, verdict, now);
      }
    }
    if (mode === 'probe') return { type, hour, waitingFor: null };
    if (mode === 'explain') {
      return {
        type,
        hour,
        waitingFor: busUnseen
          ? 'the ETL to see no message a vanished instance published into the hour left on the bus (every ledgered event is stored)'
          : "the closer's next pass (every ledgered event is stored)",
      };
    }

    const { closedBy, created } = await this.close(type, hour, tally, vanished, now);
    if (created) {
      this.d.metrics.hoursClosed.inc({ type, rule: closedBy });
      this.d.logger.info(
        {
          type,
          hour: new Date(hour).toISOString(),
          ledgerTotal: tally.ledgerTotal,
          files: tally.files.length,
          closedBy,
          vanished,
        },
        'hour closed',
      );
    }
    return { type, hour, waitingFor: null };
  }

  /** The hour's registered raw files against its ledgers. */
  private async tally(type: string, hour: number, entries: readonly LedgerEntry[]): Promise<Tally> {
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
    const ranges: [string, Range[]][] = [];
    for (const e of [...entries].sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1))) {
      ledgerTotal += e.count;
      const m = missingRanges(mergeRanges(e.ranges), mergeRanges(have.get(e.instanceId) ?? []));
      if (m.length === 0) continue;
      missing += rangeCount(m);
      ranges.push([e.instanceId, m]);
    }
    return { files, ledgerTotal, missing, ranges };
  }

  /**
   * Whether ledgered events still missing (every instance has finished with the hour) can no
   * longer arrive. Reads the backlog (when it does) before the caller lists the files again.
   */
  private async verdict(
    type: string,
    hour: number,
    entries: readonly LedgerEntry[],
    tally: Tally,
    seen: number,
    now: number,
  ): Promise<Verdict> {
    const scale = this.d.clock.scale;
    const vanishMs = this.d.config.vanishAfterRealMs * scale;
    // every ledgered event was stored by the bus before the entry naming it was saved
    const lastUpdate = Math.max(...entries.map((e) => e.updatedAt));
    const read = async (): Promise<{ figures: Backlog | null } | null> => {
      if (this.d.backlog === undefined) return { figures: null };
      try {
        return { figures: await this.d.backlog(type) };
      } catch (err) {
        this.d.logger.warn({ err, type }, 'reading the bus backlog failed');
        return null;
      }
    };
    const unreadable = { lost: false, reason: 'the bus backlog could not be read' } as const;
    let backlog: { figures: Backlog | null } | null | undefined;
    if (this.d.exactBacklog === true) {
      backlog = await read();
      if (backlog === null) return unreadable;
      const b = backlog.figures;
      if (b !== null) {
        const oldest = b.oldestUnackedPublishTime;
        if (b.messages === 0 || (oldest !== null && oldest > lastUpdate + vanishMs)) {
          return { lost: true, rule: 'exact_backlog', backlog: b };
        }
        return {
          lost: false,
          reason: `the bus still holds ${b.messages} unacked messages of the type${
            oldest === null ? '' : `, the oldest published ${new Date(oldest).toISOString()}`
          }`,
        };
      }
      // no figures (no such subscription): as a bus without exact ones
    }
    if (this.d.redeliveryWithinRealMs === undefined) return { lost: false, reason: null };
    // no exact figures: a consumer may lag, and a dead one's messages come back only after the
    // redelivery time. So only once nothing of the hour has come for that long (plus the vanish
    // time): no ledger update, no raw file registered, nothing received by the type's consumer
    // here, which has run steadily (started, no failed commit) all that time and holds none of it
    const view = this.d.consumer?.(type, hour) ?? null;
    if (view === null) return { lost: false, reason: 'no consumer of the type runs here to tell' };
    const lastCommit = Math.max(0, ...tally.files.map((f) => f.committedAt));
    const from = Math.max(lastUpdate, seen, lastCommit, view.steadySince, view.lastReceivedAt ?? 0);
    const failAt = from + this.d.redeliveryWithinRealMs * scale + vanishMs;
    if (now < failAt) {
      return {
        lost: false,
        reason: `counted as lost from ${new Date(failAt).toISOString()} if nothing of the hour arrives until then`,
      };
    }
    if (view.holding) return { lost: false, reason: 'the consumer holds messages of the hour not stored yet' };
    backlog ??= await read();
    if (backlog === null) return unreadable;
    if (backlog.figures !== null && backlog.figures.messages > 0) {
      return { lost: false, reason: `the bus reports ${backlog.figures.messages} unacked messages of the type` };
    }
    return { lost: true, rule: 'redelivery_bound', backlog: backlog.figures };
  }

  /** Creates the hour's record (its raw bucket frozen); `created` false when another process did. */
  private async close(
    type: string,
    hour: number,
    tally: Tally,
    vanished: string[],
    now: number,
  ): Promise<{ closedBy: 'vanished' | 'sealed'; created: boolean }> {
    const closedBy = vanished.length > 0 ? 'vanished' : 'sealed';
    const created = await this.d.state.closeHour({
      type,
      hour,
      closedAt: now,
      closedBy,
      vanishedInstances: vanished.sort(),
      ledgerTotal: tally.ledgerTotal,
    });
    return { closedBy, created };
  }

  /** Closes the hour (its raw bucket frozen) and marks it `failed`. */
  private async fail(
    type: string,
    hour: number,
    tally: Tally,
    vanished: string[],
    verdict: Extract<Verdict, { lost: true }>,
    now: number,
  ): Promise<HourCheck> {
    const detail = describeRanges(tally.ranges);
    const error = lossError(tally);
    const { closedBy, created } = await this.close(type, hour, tally, vanished, now);
    // recorded meanwhile by another process: its record stands
    if (!created) return { type, hour, waitingFor: null };
    // a crash right here leaves the hour closed: the dedup check then fails it
    await this.d.state.updateHour(type, hour, { state: 'failed', error }, now);
    this.d.metrics.hoursFailed.inc({ type });
    this.d.logger.error(
      {
        type,
        hour: new Date(hour).toISOString(),
        missing: tally.missing,
        ranges: detail,
        ledgerTotal: tally.ledgerTotal,
        files: tally.files.length,
        rule: verdict.rule,
        backlog: verdict.backlog?.messages ?? null,
        closedBy,
        vanished,
      },
      'completeness violated: ledgered events are missing from the bus; hour failed',
    );
    return { type, hour, waitingFor: null, failed: error };
  }
}

function lossError(tally: Tally): string {
  return `ledger_mismatch: ${tally.missing} acknowledged events are missing from the bus (${describeRanges(tally.ranges)})`;
}

/**
 * What ended, unclosed hours wait for, judged from the state store alone (for processes without
 * the ETL: `hourglass hours`, the orchestrator's dashboard). See {@link Closer.explain}.
 */
export function storeExplainer(
  state: StateStore,
  clock: Clock,
  config: CloserConfig,
  logger: Logger,
): (hours: readonly { type: string; hour: number }[]) => Promise<Map<string, string>> {
  const closer = new Closer({
    state,
    clock,
    logger,
    metrics: createEtlMetrics(new Registry()),
    config,
    types: () => [],
  });
  return (hours) => closer.explain(hours);
}
