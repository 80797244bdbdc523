/**
 * The ETL process (`hourglass etl`, and inside `hourglass dev`). By its roles: a consumer per
 * active event type (`consume`), a loop that closes complete hours (`close`), dedups and publishes
 * closed partitions (`dedup`) and loads published ones into the warehouse (`load`).
 *
 * Batch steps are jobs claimed in the state store with a lease (see JobClaims), so several ETL
 * processes on one store share the work and never do a partition twice; a job whose holder died is
 * taken over once its lease ends. Dedup jobs of different types run concurrently, up to
 * `batchConcurrency` (plus one slot kept for small partitions, so a small type's hour never queues
 * behind big ones); a type's partitions run one at a time, oldest first, each once the partitions
 * of its dedup window are settled. Jobs start at every pass, and as soon as a job ends. A job that
 * throws (store down, disk full, a bug) is released to be retried with backoff (1 s doubling to
 * 60 s, seen by every process), its error recorded on its hours (`dedup_failed: …`, state still
 * `closed`) until it succeeds, so `hourglass hours`, the dashboard and the `publication_failing`
 * alert show it. A completeness violation marks the partition's hours `failed` and is not retried;
 * so does an hour the closer failed (ledgered events missing from the bus) for the other hours of
 * its day (daily types).
 */

import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { LeaseLost } from '../core/errors.js';
import { ETL_ROLES, type EtlRole } from '../core/etl-roles.js';
import { type EventCatalog, type EventType, subscriptionFor } from '../core/event-types.js';
import { HOUR_MS, hourLabel } from '../core/hours.js';
import type { Bus } from '../core/ports/bus.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { HourRecord, HourUpdate, StateStore } from '../core/ports/state-store.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import { Closer, type CloserConfig } from './closer.js';
import { type ConsumerConfig, TypeConsumer } from './consumer.js';
import {
  type DedupConfig,
  type Manifest,
  type PartitionJob,
  removeDeadWorkDirs,
  runDedup,
  WORKERS_FROM_EVENTS,
} from './dedup.js';
import { type DedupWindow, windowOf } from './dedup-window.js';
import { type Claim, JobClaims, retryDelayMs } from './job-claims.js';
import { createEtlMetrics, type EtlMetrics } from './metrics.js';
import { WarehouseLoader } from './warehouse-loader.js';

const DAY_MS = 24 * HOUR_MS;

export interface EtlConfig {
  readonly consumer: ConsumerConfig;
  readonly closer: CloserConfig;
  readonly dedup: Omit<DedupConfig, 'workDir'>;
  /** How often the closer and dedup pass runs (real ms). */
  readonly passIntervalRealMs: number;
  /** Dedup jobs run at once, of different types (0: one per core); one more for small partitions. */
  readonly batchConcurrency: number;
  /** A claimed job's lease (real ms). */
  readonly jobLeaseRealMs: number;
}

export interface EtlDeps {
  /** The bus (needed by the `consume` and `close` roles; null without them). */
  readonly bus: Bus | null;
  readonly objects: ObjectStore;
  readonly state: StateStore;
  readonly catalog: EventCatalog;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly config: EtlConfig;
  /** Scratch space for the dedup step. */
  readonly workDir: string;
  /** What this process does (default: every role). */
  readonly roles?: ReadonlySet<EtlRole>;
  /** Where types stored in the warehouse are loaded after publication (none: files only). */
  readonly warehouse?: Warehouse | null;
}

export class EtlService {
  readonly id = `etl-${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly metrics: EtlMetrics;
  readonly roles: ReadonlySet<EtlRole>;
  private readonly consumers = new Map<string, TypeConsumer>();
  private readonly closer: Closer | null;
  private readonly loader: WarehouseLoader | null;
  private readonly claims: JobClaims;
  private readonly concurrency: number;
  private timer: NodeJS.Timeout | null = null;
  private passing: Promise<void> | null = null;
  /** The dedup jobs being started (one at a time), and whether to look again once it ends. */
  private scheduling: Promise<void> | null = null;
  private scheduleAgain = false;
  /** Dedup jobs running in this process, by type. */
  private readonly running = new Map<string, { run: Promise<void>; claim: Claim }>();
  /** When this process last started a dedup job of a type (real ms): the least recently served go first. */
  private readonly servedAt = new Map<string, number>();
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly d: EtlDeps) {
    this.metrics = createEtlMetrics(d.registry);
    this.log = d.logger.child({ component: 'etl' });
    this.roles = d.roles ?? new Set(ETL_ROLES);
    const bus = d.bus;
    if (bus === null && (this.roles.has('consume') || this.roles.has('close'))) {
      throw new Error('the consume and close roles need the bus');
    }
    this.concurrency = d.config.batchConcurrency > 0 ? d.config.batchConcurrency : availableParallelism();
    this.claims = new JobClaims({
      state: d.state,
      holder: this.id,
      leaseMs: d.config.jobLeaseRealMs,
      logger: this.log,
      metrics: this.metrics,
    });
    this.closer =
      bus === null || !this.roles.has('close')
        ? null
        : new Closer({
            state: d.state,
            clock: d.clock,
            logger: this.log,
            metrics: this.metrics,
            config: d.config.closer,
            types: () => this.activeTypes().map((t) => t.name),
            backlog: async (type) => {
              try {
                return await bus.backlog(subscriptionFor(type));
              } catch (err) {
                if ((err as { code?: string }).code === 'subscription_not_found') return null;
                throw err;
              }
            },
            exactBacklog: bus.capabilities.exactBacklog,
            redeliveryWithinRealMs: bus.capabilities.redeliveryWithinRealMs,
            consumer: (type, hour) => {
              const c = this.consumers.get(type);
              return c === undefined ? null : { steadySince: c.steadySince(), ...c.hourView(hour) };
            },
            claim: (type, hour) => this.claims.claim({ kind: 'close', type, partition: hour }),
          });
    this.loader =
      d.warehouse && this.roles.has('load')
        ? new WarehouseLoader({
            warehouse: d.warehouse,
            state: d.state,
            objects: d.objects,
            clock: d.clock,
            logger: this.log,
            types: () => this.activeTypes(),
            claims: this.claims,
          })
        : null;
  }

  private activeTypes(): EventType[] {
    return this.d.catalog.list().filter((t) => t.status !== 'retired');
  }

  async start(): Promise<void> {
    if (this.roles.has('dedup')) {
      const removed = await removeDeadWorkDirs(this.d.workDir);
      if (removed.length > 0) this.log.info({ removed }, 'removed scratch folders of dedup workers that died');
    }
    for (const t of this.activeTypes()) await this.ensureConsumer(t);
    this.timer = setInterval(() => void this.pass(), this.d.config.passIntervalRealMs);
    const roles = ETL_ROLES.filter((r) => this.roles.has(r));
    this.log.info(
      { id: this.id, roles, batchConcurrency: this.concurrency, types: [...this.consumers.keys()] },
      'etl started',
    );
    if (this.roles.has('load') && this.loader === null) {
      this.log.info('role load: no warehouse is configured, so nothing is loaded');
    }
  }

  /**
   * Runs the type's consumer with its current schema versions: starts it, or restarts it when the
   * type gained a version (what it buffered is committed first). Idempotent.
   */
  async ensureConsumer(t: EventType): Promise<void> {
    const bus = this.d.bus;
    if (!this.roles.has('consume') || bus === null || this.stopped) return;
    const running = this.consumers.get(t.name);
    if (running !== undefined && running.type.versions.length === t.versions.length) return;
    if (running !== undefined) {
      this.consumers.delete(t.name);
      await running.close();
    }
    const c = new TypeConsumer(t, {
      bus,
      objects: this.d.objects,
      state: this.d.state,
      clock: this.d.clock,
      logger: this.log,
      metrics: this.metrics,
      config: this.d.config.consumer,
      consumerId: this.id,
    });
    await c.start();
    this.consumers.set(t.name, c);
    this.log.info({ type: t.name, versions: t.versions.length }, running ? 'consumer restarted' : 'consumer started');
  }

  /** Stops the type's consumer (committing what it buffered). Idempotent. */
  async stopConsumer(name: string): Promise<void> {
    const c = this.consumers.get(name);
    if (c === undefined) return;
    this.consumers.delete(name);
    await c.close();
  }

  /** Names of the types with a running consumer. */
  consumedTypes(): string[] {
    return [...this.consumers.keys()];
  }

  /**
   * One pass: closes what can close, starts the dedup jobs that are due (without waiting for them:
   * see {@link settled}) and loads what is published (shared if one is running).
   */
  pass(): Promise<void> {
    this.passing ??= this.runPass().finally(() => {
      this.passing = null;
    });
    return this.passing;
  }

  /** Waits for the dedup jobs running now to end. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((r) => r.run));
  }

  private async runPass(): Promise<void> {
    for (const [type, c] of this.consumers) this.metrics.bufferedBytes.set({ type }, c.bufferedBytes());
    if (this.closer !== null) {
      try {
        await this.closer.run();
      } catch (err) {
        this.log.error({ err }, 'closer pass failed');
      }
    }
    if (this.roles.has('dedup') && !this.stopped) await this.fillSlots();
    if (!this.stopped) await this.loader?.pass();
  }

  /**
   * Starts the due dedup jobs that fit in the free slots: at every pass, and as soon as a job ends
   * (its slot, and the type's next partition waiting for it, do not wait for the next pass). One
   * at a time: a call while it runs makes it look once more when done.
   */
  private fillSlots(): Promise<void> {
    if (this.scheduling !== null) {
      this.scheduleAgain = true;
      return this.scheduling;
    }
    this.scheduling = (async () => {
      do {
        this.scheduleAgain = false;
        try {
          await this.startDueJobs();
        } catch (err) {
          this.log.error({ err }, 'listing closed hours failed');
        }
      } while (this.scheduleAgain && !this.stopped);
    })().finally(() => {
      this.scheduling = null;
    });
    return this.scheduling;
  }

  /**
   * Starts due dedup jobs this process can claim, in free slots: per type its oldest due partition
   * (once its window is settled), types served least recently first.
   */
  private async startDueJobs(): Promise<void> {
    const due = await this.dueJobs();
    const byType = new Map<string, Omit<PartitionJob, 'earlier'>>();
    for (const job of due) if (!byType.has(job.type.name)) byType.set(job.type.name, job);
    const order = [...byType.values()].sort(
      (a, b) => (this.servedAt.get(a.type.name) ?? 0) - (this.servedAt.get(b.type.name) ?? 0) || a.start - b.start,
    );
    for (const job of order) {
      if (this.stopped) return;
      const type = job.type.name;
      if (this.running.has(type)) continue;
      const small = job.hours.reduce((n, h) => n + h.ledgerTotal, 0) < WORKERS_FROM_EVENTS;
      // one slot more than batchConcurrency, for small partitions only
      if (this.running.size >= this.concurrency + (small ? 1 : 0)) continue;
      let earlier: DedupWindow | null;
      try {
        earlier = await windowOf(job, { state: this.d.state, objects: this.d.objects });
      } catch (err) {
        this.log.error({ err, type }, 'reading the dedup window failed');
        continue;
      }
      // null: a partition in the window is not settled yet (this one waits, so that a retry within
      // the window is always caught)
      if (earlier === null) continue;
      const claim = await this.claims.claim({ kind: 'dedup', type, partition: job.start });
      if (claim === null) continue; // another worker runs it, or it waits for its retry
      if (this.stopped) {
        await claim.release(this.d.clock.now());
        return;
      }
      this.servedAt.set(type, performance.now());
      const run = this.runDedupJob({ ...job, earlier }, claim).finally(() => {
        this.running.delete(type);
        if (!this.stopped) void this.fillSlots();
      });
      this.running.set(type, { run, claim });
    }
  }

  /** Closed partitions ready for dedup, oldest first. */
  private async dueJobs(): Promise<Omit<PartitionJob, 'earlier'>[]> {
    const now = this.d.clock.now();
    const types = new Map(this.activeTypes().map((t) => [t.name, t]));
    const closed = await this.d.state.listHours({ states: ['closed', 'deduped'] });
    const jobs: Omit<PartitionJob, 'earlier'>[] = [];
    const days = new Map<string, { type: EventType; start: number; hours: HourRecord[] }>();
    for (const h of closed) {
      const type = types.get(h.type);
      if (type === undefined) continue;
      if (type.partitioning === 'hourly') {
        jobs.push({ type, start: h.hour, daily: false, hours: [h] });
        continue;
      }
      const start = Math.floor(h.hour / DAY_MS) * DAY_MS;
      const key = `${h.type}\u0000${start}`;
      const day = days.get(key) ?? { type, start, hours: [] };
      day.hours.push(h);
      days.set(key, day);
    }
    if (days.size > 0) {
      // a day is deduped once it ended and none of its hours with ledgers is still to close
      const unclosed = await this.d.state.listLedgers({ unclosed: true });
      for (const day of days.values()) {
        const waiting = unclosed.some(
          (e) => e.type === day.type.name && e.hour >= day.start && e.hour < day.start + DAY_MS,
        );
        if (now >= day.start + DAY_MS && !waiting) jobs.push({ ...day, daily: true });
      }
    }
    return jobs.sort((a, b) => a.start - b.start);
  }

  private async runDedupJob(job: PartitionJob, claim: Claim): Promise<void> {
    const type = job.type.name;
    const started = performance.now();
    this.metrics.jobsRunning.inc({ kind: 'dedup' });
    const patch = (p: HourUpdate['patch']): HourUpdate[] => job.hours.map((h) => ({ type, hour: h.hour, patch: p }));
    try {
      const result =
        (await this.failedHourOfDay(job)) ??
        (await runDedup(job, {
          objects: this.d.objects,
          state: this.d.state,
          clock: this.d.clock,
          logger: this.log,
          config: { ...this.d.config.dedup, workDir: this.d.workDir },
          fence: claim.lease,
          signal: claim.signal,
        }));
      const now = this.d.clock.now();
      if (result.status === 'failed') {
        await claim.finish(
          { state: 'failed', error: result.error },
          patch({ state: 'failed', error: result.error }),
          now,
        );
        this.metrics.hoursFailed.inc({ type });
        this.log.error(
          { type, partition: new Date(job.start).toISOString(), error: result.error },
          'completeness violated: partition not published',
        );
        return;
      }
      await claim.finish(
        { state: 'done' },
        patch({ state: 'published', manifest: result.manifestName, publishedAt: now, error: null }),
        now,
      );
      this.published(job, result.manifest, started, now, claim);
    } catch (err) {
      if (claim.interrupted) {
        // the process stops: the job goes back, not counted as an attempt, for any worker to run
        await claim
          .release(this.d.clock.now())
          .catch((e: unknown) =>
            this.log.warn({ err: e, job: claim.describe() }, 'releasing a dedup job at shutdown failed'),
          );
        this.log.info({ job: claim.describe() }, 'dedup job released: the process is stopping');
        return;
      }
      if (err instanceof LeaseLost || claim.signal.aborted) {
        this.log.warn({ job: claim.describe() }, 'dedup job given up: another worker took it over');
        return;
      }
      await this.dedupFailed(job, claim, err);
    } finally {
      claim.stop();
      this.metrics.jobsRunning.dec({ kind: 'dedup' });
    }
  }

  private published(job: PartitionJob, m: Manifest, started: number, now: number, claim: Claim): void {
    const type = job.type.name;
    this.metrics.hoursPublished.inc({ type });
    this.metrics.duplicatesRemoved.inc({ type }, m.duplicatesRemoved);
    // a manifest an earlier attempt wrote before idConflicts existed has none
    const conflicts = m.idConflicts ?? 0;
    this.metrics.idConflicts.inc({ type }, conflicts);
    if (conflicts > 0) {
      this.log.warn(
        { type, partition: m.start, idConflicts: conflicts },
        'events reused a (producer, id) with another payload: the first copy was kept',
      );
    }
    this.metrics.dedupSeconds.observe({ type }, (performance.now() - started) / 1000);
    this.metrics.dedupRatio.set({ type }, m.rawEventsIn === 0 ? 0 : m.duplicatesRemoved / m.rawEventsIn);
    const end = job.start + (job.daily ? DAY_MS : HOUR_MS);
    this.metrics.deliveryDelay.observe({ type, tier: job.type.tier }, Math.max(0, now - end) / 1000);
    this.log.info(
      {
        type,
        partition: m.start,
        eventsIn: m.rawEventsIn,
        duplicates: m.duplicatesRemoved,
        idConflicts: conflicts,
        eventsOut: m.eventsOut,
        seconds: m.dedupSeconds,
        attempt: claim.lease.attempts,
      },
      'partition published',
    );
  }

  /**
   * Releases a failed job for a retry with backoff, recording the error on its hours (cleared
   * when it is published).
   */
  private async dedupFailed(job: PartitionJob, claim: Claim, err: unknown): Promise<void> {
    const type = job.type.name;
    const attempts = claim.lease.attempts;
    const now = this.d.clock.now();
    // since the first failure: kept in the error recorded on the hours, so any worker continues it
    const since = job.hours.map((h) => /^dedup_failed: .* since (\S+); retried\)$/.exec(h.error ?? '')?.[1])[0];
    const wait = retryDelayMs(attempts);
    this.metrics.dedupFailures.inc({ type });
    this.log.error(
      { err, type, partition: new Date(job.start).toISOString(), attempts, retryInMs: wait },
      'dedup failed; will retry',
    );
    const e = err as { message?: unknown; code?: unknown };
    const code = typeof e.code === 'string' ? ` [${e.code}]` : '';
    const text = typeof e.message === 'string' ? e.message : String(err);
    const error = `dedup_failed: ${text}${code} (${attempts} attempt${attempts === 1 ? '' : 's'} since ${since ?? new Date(now).toISOString()}; retried)`;
    try {
      await claim.finish(
        { state: 'ready', runAfterMs: wait, error },
        job.hours.map((h) => ({ type, hour: h.hour, patch: { error } })),
        now,
      );
    } catch (recordErr) {
      this.log.warn({ err: recordErr, type }, 'recording the dedup error failed');
    }
  }

  /** What an ended hour waited for at the closer's last pass in this process (null: not waiting or not known). */
  waitingFor(type: string, hour: number): string | null {
    return this.closer?.waitingFor(type, hour) ?? null;
  }

  /** What ended, unclosed hours wait for, judged now by this process's closer (bus figures included). */
  async explainClosing(hours: readonly { type: string; hour: number }[]): Promise<Map<string, string>> {
    return (await this.closer?.explain(hours)) ?? new Map();
  }

  /**
   * A daily partition with an hour the closer marked `failed` (ledgered events missing from the
   * bus) is not published either: the result that fails the day's other hours; null otherwise.
   */
  private async failedHourOfDay(job: PartitionJob): Promise<{ status: 'failed'; error: string } | null> {
    if (!job.daily) return null;
    const failed = await this.d.state.listHours({
      type: job.type.name,
      from: job.start,
      to: job.start + DAY_MS,
      states: ['failed'],
    });
    const first = failed[0];
    if (first === undefined) return null;
    return {
      status: 'failed',
      error: `ledger_mismatch: hour ${hourLabel(first.hour)} of the day failed: ${first.error ?? 'ledgered events missing'}`,
    };
  }

  consumerFor(type: string): TypeConsumer | undefined {
    return this.consumers.get(type);
  }

  /**
   * Commits buffered files, stops consumers and the loop; running dedup jobs stop at their next
   * step and are released (not counted as attempts) for another worker or the next start. Idempotent.
   */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    // running dedup jobs stop at their next step and are released for another worker (or the next start)
    for (const r of this.running.values()) r.claim.interrupt();
    await Promise.all([...this.consumers.values()].map((c) => c.close()));
    await this.passing;
    await this.scheduling;
    await this.settled();
    this.log.info('etl stopped');
  }
}

export function etlWorkDir(dataDir: string): string {
  return join(dataDir, 'work');
}
