/**
 * The reconcile loop: makes reality match the registry, type by type, step by idempotent step,
 * through the ports. Each step's state is recorded in the state store (`hourglass types show`
 * prints it); a failed step is retried with exponential backoff and logged, and a crash at any
 * point resumes cleanly because every step checks or repeats idempotently.
 *
 * Steps of an active type:
 * - `bus`: its topic and its ETL subscription exist;
 * - `consumer`: its ETL consumer runs with the type's current versions (when this process runs
 *   the ETL);
 * - `alerts`: its alert rules are registered with the thresholds of its tier (when this process
 *   runs the alerting engine);
 * - `warehouse`: for types stored in the warehouse, its table exists with the current schema
 *   (when a warehouse other than the files is configured).
 * The catalogue every ingress validates against is refreshed by `CatalogSync` (schema
 * distribution) before the steps run.
 *
 * Steps of a retiring type (the ingress already refuses it: `retired_type`):
 * - `drain`: waiting until its subscription has no unacked message and its last hours are
 *   published: every hour up to the one in which all ingress processes had seen the retirement
 *   must end, close and publish;
 * - `consumer`: stopped; `bus`: subscription and topic deleted; `alerts`: its rules removed (its
 *   firing alerts resolve);
 * - `retired`: the registry marks the type retired. Its data stays until the retention sweeper
 *   removes it.
 *
 * A retired type's warehouse table stays, like its files, until retention removes its data.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { type EventCatalog, type EventType, subscriptionFor, topicFor } from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import type { Bus } from '../core/ports/bus.js';
import type { ReconcileStep, StateStore } from '../core/ports/state-store.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import type { EtlService } from '../etl/service.js';
import type { AlertingService } from './alerts/alerting.js';
import { provisionBus } from './provision.js';
import { setStatus } from './registry.js';

export interface ReconcilerDeps {
  readonly store: StateStore;
  readonly bus: Bus;
  readonly catalog: EventCatalog;
  /** The ETL of this process, if it runs one. */
  readonly etl: EtlService | null;
  /** The alerting engine of this process, if it runs one. */
  readonly alerting?: AlertingService | null;
  /** The warehouse types stored there are loaded into, if not the files alone. */
  readonly warehouse?: Warehouse | null;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Real ms between passes. */
  readonly intervalRealMs: number;
  /** Longest wait before retrying a failed step (real ms). */
  readonly retryMaxRealMs: number;
  /**
   * Clock ms after a retirement by which every ingress refuses the type (the registry poll
   * interval, in the pipeline's clock, with a margin).
   */
  readonly refuseMarginMs: number;
}

/** A step's outcome: done, or a condition not met yet (with what is awaited). */
type Outcome = { status: 'done' } | { status: 'waiting'; why: string };

export class Reconciler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** Last recorded state per `type/step`, and when a failed step may run again. */
  private readonly steps = new Map<string, ReconcileStep & { retryAt: number }>();
  private loaded = false;
  /** When this process first saw each retiring type (pipeline clock). */
  private readonly retiringSince = new Map<string, number>();
  /** Schema versions whose warehouse table this process made sure of, per type. */
  private readonly tables = new Map<string, number>();
  private readonly log: Logger;

  constructor(private readonly d: ReconcilerDeps) {
    this.log = d.logger.child({ component: 'reconciler' });
  }

  start(): void {
    this.timer = setInterval(() => void this.pass(), this.d.intervalRealMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await this.queued;
  }

  /**
   * One pass over every type. While one runs, a caller gets the pass that starts after it (one
   * queued at most), so a change made before the call is always seen. Never throws: failures are
   * recorded.
   */
  pass(): Promise<void> {
    if (this.running === null) {
      this.running = this.runPass().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = null;
      return this.pass();
    });
    return this.queued;
  }

  private async runPass(): Promise<void> {
    if (!this.loaded) {
      // resume from the recorded steps (a restart keeps what was done, e.g. a finished drain)
      try {
        for (const st of await this.d.store.listSteps()) this.steps.set(`${st.type}/${st.step}`, { ...st, retryAt: 0 });
        this.loaded = true;
      } catch (err) {
        this.log.warn({ err }, 'could not read the recorded reconcile steps; trying again next pass');
        return;
      }
    }
    const changed: ReconcileStep[] = [];
    for (const t of this.d.catalog.list()) {
      const plan: [string, () => Promise<Outcome>][] =
        t.status === 'active'
          ? [
              ['bus', () => this.ensureBus(t)],
              ['consumer', () => this.ensureConsumer(t)],
              ['alerts', () => this.ensureAlerts(t)],
              ...(t.storage === 'warehouse' && this.d.warehouse
                ? ([['warehouse', () => this.ensureTable(t)]] as [string, () => Promise<Outcome>][])
                : []),
            ]
          : t.status === 'retiring'
            ? [
                ['drain', () => this.drained(t)],
                ['consumer', () => this.stopConsumer(t)],
                ['bus', () => this.removeBus(t)],
                ['alerts', () => this.removeAlerts(t)],
                ['retired', () => this.markRetired(t)],
              ]
            : [];
      for (const [step, run] of plan) {
        const outcome = await this.runStep(t.name, step, run, changed);
        if (outcome !== 'done') break; // the next steps wait for this one
      }
    }
    if (changed.length > 0) {
      await this.d.store.saveSteps(changed).catch((err: unknown) => {
        this.log.warn({ err }, 'could not record reconcile steps; recorded on a later pass');
        for (const s of changed) this.steps.delete(`${s.type}/${s.step}`);
      });
    }
  }

  private async runStep(
    type: string,
    step: string,
    run: () => Promise<Outcome>,
    changed: ReconcileStep[],
  ): Promise<'done' | 'waiting' | 'failed'> {
    const key = `${type}/${step}`;
    const prev = this.steps.get(key);
    const now = Date.now();
    if (prev?.status === 'failed' && now < prev.retryAt) return 'failed';
    // a finished drain stays finished: its condition is about the past
    if (step === 'drain' && prev?.status === 'done') return 'done';
    let next: ReconcileStep & { retryAt: number };
    try {
      const o = await run();
      next = {
        type,
        step,
        status: o.status,
        attempts: o.status === 'done' && prev?.status === 'done' ? prev.attempts : (prev?.attempts ?? 0) + 1,
        error: o.status === 'waiting' ? o.why : null,
        updatedAt: this.d.clock.now(),
        retryAt: 0,
      };
    } catch (err) {
      const attempts = (prev?.status === 'failed' ? prev.attempts : 0) + 1;
      const backoff = Math.min(this.d.retryMaxRealMs, 500 * 2 ** (attempts - 1));
      next = {
        type,
        step,
        status: 'failed',
        attempts,
        error: (err as Error).message,
        updatedAt: this.d.clock.now(),
        retryAt: now + backoff,
      };
      this.log.error({ err, type, step, attempts, retryInMs: backoff }, 'reconcile step failed; retrying');
    }
    if (prev === undefined || prev.status !== next.status || prev.error !== next.error) {
      changed.push({ ...next });
      if (next.status !== 'failed')
        this.log.info({ type, step, status: next.status, detail: next.error }, 'reconcile step');
    }
    this.steps.set(key, next);
    return next.status;
  }

  private async ensureBus(t: EventType): Promise<Outcome> {
    await provisionBus(this.d.bus, [t], this.log);
    return { status: 'done' };
  }

  private async ensureConsumer(t: EventType): Promise<Outcome> {
    await this.d.etl?.ensureConsumer(t);
    return { status: 'done' };
  }

  private async ensureAlerts(t: EventType): Promise<Outcome> {
    await this.d.alerting?.provision(t);
    return { status: 'done' };
  }

  private async ensureTable(t: EventType): Promise<Outcome> {
    // once per schema version per process: a warehouse call each pass would be wasted quota
    const version = t.versions.length;
    if (this.tables.get(t.name) === version) return { status: 'done' };
    await this.d.warehouse?.ensureTable(t);
    this.tables.set(t.name, version);
    return { status: 'done' };
  }

  private async removeAlerts(t: EventType): Promise<Outcome> {
    await this.d.alerting?.unprovision(t.name);
    return { status: 'done' };
  }

  private async drained(t: EventType): Promise<Outcome> {
    if (this.d.bus.capabilities.exactBacklog) {
      // no subscription: an earlier attempt drained it and went on to delete it
      const backlog = await this.d.bus.backlog(subscriptionFor(t.name)).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'subscription_not_found') return { messages: 0 };
        throw err;
      });
      if (backlog.messages > 0) return { status: 'waiting', why: `${backlog.messages} messages not consumed yet` };
    }
    // The last hour that may hold events: the one in which every ingress had seen the retirement
    // (the change, plus the time other processes take to read it). It must end, close and publish.
    // The change's own time may come from another process's clock: this process's first sight of
    // the retirement bounds it too.
    const registered = await this.d.store.getType(t.name);
    const seen = this.retiringSince.get(t.name) ?? this.d.clock.now();
    this.retiringSince.set(t.name, seen);
    const refusedFrom = Math.max(registered?.updatedAt ?? seen, seen) + this.d.refuseMarginMs;
    const lastHour = Math.floor(refusedFrom / HOUR_MS) * HOUR_MS;
    if (this.d.clock.now() < lastHour + HOUR_MS) {
      return {
        status: 'waiting',
        why: `the last hour with events (${new Date(lastHour).toISOString()}) has not ended`,
      };
    }
    const open = await this.d.store.listLedgers({ type: t.name, unclosed: true });
    const openUpToLast = open.filter((e) => e.hour <= lastHour);
    if (openUpToLast.length > 0) {
      return { status: 'waiting', why: `${new Set(openUpToLast.map((e) => e.hour)).size} hours not closed yet` };
    }
    const hours = await this.d.store.listHours({ type: t.name });
    const unpublished = hours.filter((h) => h.state !== 'published');
    if (unpublished.length > 0) {
      return { status: 'waiting', why: `${unpublished.length} hours not published yet (${unpublished[0]?.state})` };
    }
    if (!hours.some((h) => h.hour === lastHour)) {
      return { status: 'waiting', why: `the last hour (${new Date(lastHour).toISOString()}) is not published yet` };
    }
    return { status: 'done' };
  }

  private async stopConsumer(t: EventType): Promise<Outcome> {
    await this.d.etl?.stopConsumer(t.name);
    return { status: 'done' };
  }

  private async removeBus(t: EventType): Promise<Outcome> {
    const topics = await this.d.bus.listTopics();
    if (topics.includes(topicFor(t.name))) {
      await this.d.bus.deleteSubscription(subscriptionFor(t.name)).catch((err: unknown) => {
        if ((err as { code?: string }).code !== 'subscription_not_found') throw err;
      });
      await this.d.bus.deleteTopic(topicFor(t.name));
    }
    return { status: 'done' };
  }

  private async markRetired(t: EventType): Promise<Outcome> {
    await setStatus(
      this.d.store,
      { name: 'reconciler', owner: null, role: 'admin' },
      t.name,
      'retired',
      'drained: last hours published, consumer stopped, topic and subscription deleted',
      this.d.clock.now(),
    );
    return { status: 'done' };
  }
}
