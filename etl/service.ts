/**
 * The ETL process (`hourglass etl`, and inside `hourglass dev`): one consumer per active event
 * type, and a loop that closes complete hours and dedups and publishes closed ones.
 *
 * Dedup jobs run one at a time, oldest partition first across types; a job that throws (store
 * down, disk full, a bug) is retried with backoff without holding up the other partitions, and its
 * error is recorded on its hours (`dedup_failed: …`, state still `closed`) until it succeeds, so
 * `hourglass hours`, the dashboard and the `publication_failing` alert show it. A completeness
 * violation marks the partition's hours `failed` and is not retried; so does an hour the closer
 * failed (ledgered events missing from the bus) for the other hours of its day (daily types).
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { type EventCatalog, type EventType, subscriptionFor } from '../core/event-types.js';
import { HOUR_MS, hourLabel } from '../core/hours.js';
import type { Bus } from '../core/ports/bus.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { HourRecord, StateStore } from '../core/ports/state-store.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import { Closer, type CloserConfig, type HourCheck } from './closer.js';
import { type ConsumerConfig, TypeConsumer } from './consumer.js';
import { type DedupConfig, type PartitionJob, runDedup } from './dedup.js';
import { createEtlMetrics, type EtlMetrics } from './metrics.js';
import { WarehouseLoader } from './warehouse-loader.js';

const DAY_MS = 24 * HOUR_MS;

export interface EtlConfig {
  readonly consumer: ConsumerConfig;
  readonly closer: CloserConfig;
  readonly dedup: Omit<DedupConfig, 'workDir'>;
  /** How often the closer and dedup pass runs (real ms). */
  readonly passIntervalRealMs: number;
}

export interface EtlDeps {
  readonly bus: Bus;
  readonly objects: ObjectStore;
  readonly state: StateStore;
  readonly catalog: EventCatalog;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly config: EtlConfig;
  /** Scratch space for the dedup step. */
  readonly workDir: string;
  /** Run consumers (default true); false runs only the closer and dedup. */
  readonly consume?: boolean;
  /** Where types stored in the warehouse are loaded after publication (none: files only). */
  readonly warehouse?: Warehouse | null;
}

export class EtlService {
  readonly id = `etl-${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly metrics: EtlMetrics;
  private readonly consumers = new Map<string, TypeConsumer>();
  private readonly closer: Closer;
  private readonly loader: WarehouseLoader | null;
  private timer: NodeJS.Timeout | null = null;
  private passing: Promise<void> | null = null;
  /** Per partition whose dedup failed: when to try again (real ms), failures so far, since when (clock ms). */
  private readonly retryAt = new Map<string, { at: number; failures: number; since: number }>();
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly d: EtlDeps) {
    this.metrics = createEtlMetrics(d.registry);
    this.log = d.logger.child({ component: 'etl' });
    this.closer = new Closer({
      state: d.state,
      clock: d.clock,
      logger: this.log,
      metrics: this.metrics,
      config: d.config.closer,
      types: () => this.activeTypes().map((t) => t.name),
      backlog: async (type) => {
        try {
          return await d.bus.backlog(subscriptionFor(type));
        } catch (err) {
          if ((err as { code?: string }).code === 'subscription_not_found') return null;
          throw err;
        }
      },
      exactBacklog: d.bus.capabilities.exactBacklog,
      redeliveryWithinRealMs: d.bus.capabilities.redeliveryWithinRealMs,
      consumer: (type, hour) => {
        const c = this.consumers.get(type);
        return c === undefined ? null : { steadySince: c.steadySince(), ...c.hourView(hour) };
      },
    });
    this.loader = d.warehouse
      ? new WarehouseLoader({
          warehouse: d.warehouse,
          state: d.state,
          objects: d.objects,
          clock: d.clock,
          logger: this.log,
          types: () => this.activeTypes(),
        })
      : null;
  }

  private activeTypes(): EventType[] {
    return this.d.catalog.list().filter((t) => t.status !== 'retired');
  }

  async start(): Promise<void> {
    if (this.d.consume !== false) {
      for (const t of this.activeTypes()) await this.ensureConsumer(t);
    }
    this.timer = setInterval(() => void this.pass(), this.d.config.passIntervalRealMs);
    this.log.info({ id: this.id, types: [...this.consumers.keys()] }, 'etl started');
  }

  /**
   * Runs the type's consumer with its current schema versions: starts it, or restarts it when the
   * type gained a version (what it buffered is committed first). Idempotent.
   */
  async ensureConsumer(t: EventType): Promise<void> {
    if (this.d.consume === false || this.stopped) return;
    const running = this.consumers.get(t.name);
    if (running !== undefined && running.type.versions.length === t.versions.length) return;
    if (running !== undefined) {
      this.consumers.delete(t.name);
      await running.close();
    }
    const c = new TypeConsumer(t, {
      bus: this.d.bus,
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

  /** One closer + dedup pass (shared if one is running). */
  pass(): Promise<void> {
    this.passing ??= this.runPass().finally(() => {
      this.passing = null;
    });
    return this.passing;
  }

  private async runPass(): Promise<void> {
    for (const [type, c] of this.consumers) this.metrics.bufferedBytes.set({ type }, c.bufferedBytes());
    let checks: HourCheck[];
    try {
      checks = await this.closer.run();
    } catch (err) {
      this.log.error({ err }, 'closer pass failed');
      return;
    }
    let jobs: Omit<PartitionJob, 'earlier'>[];
    try {
      jobs = await this.dueJobs(checks);
    } catch (err) {
      this.log.error({ err }, 'listing closed hours failed');
      return;
    }
    for (const due of jobs) {
      if (this.stopped) return;
      const key = `${due.type.name}\u0000${due.start}`;
      const retry = this.retryAt.get(key);
      if (retry !== undefined && performance.now() < retry.at) continue;
      let earlier: string[] | null;
      try {
        earlier = await this.earlierPartition(due);
      } catch (err) {
        this.log.error({ err, type: due.type.name }, 'reading the previous partition failed');
        continue;
      }
      if (earlier === null) continue; // the previous partition is not settled yet
      await this.dedup({ ...due, earlier }, key, retry);
    }
    if (!this.stopped) await this.loader?.pass();
  }

  /**
   * Data files of the type's previous partition (ids there are duplicates), [] when there is none
   * or it failed, or null while it is still to be published (this one waits, so that a retry across
   * the boundary is always caught).
   */
  private async earlierPartition(job: Omit<PartitionJob, 'earlier'>): Promise<string[] | null> {
    const span = job.daily ? DAY_MS : HOUR_MS;
    const from = job.start - span;
    const records = await this.d.state.listHours({ type: job.type.name, from, to: job.start });
    if (records.some((r) => r.state === 'closed' || r.state === 'deduped')) return null;
    const known = records.length > 0 ? records : [];
    if (known.length === 0 || (job.daily && known.length < 24)) {
      // hours of the previous partition that are not closed yet but have ledgers: wait for them
      for (let h = from; h < job.start; h += HOUR_MS) {
        if (known.some((r) => r.hour === h)) continue;
        const ledgers = await this.d.state.listLedgers({ type: job.type.name, hour: h });
        if (ledgers.some((l) => l.count > 0)) return null;
      }
    }
    const manifest = known.find((r) => r.state === 'published' && r.manifest !== null)?.manifest;
    if (manifest === undefined || manifest === null) return [];
    const m = JSON.parse((await this.d.objects.get(manifest)).toString()) as { files: { name: string }[] };
    return m.files.map((f) => f.name);
  }

  /** Closed partitions ready for dedup, oldest first. */
  private async dueJobs(checks: readonly HourCheck[]): Promise<Omit<PartitionJob, 'earlier'>[]> {
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
    for (const day of days.values()) {
      // a day is deduped once it ended and none of its hours is still waiting to close
      const waiting = checks.some(
        (c) => c.type === day.type.name && c.waitingFor !== null && c.hour >= day.start && c.hour < day.start + DAY_MS,
      );
      if (now >= day.start + DAY_MS && !waiting) jobs.push({ ...day, daily: true });
    }
    return jobs.sort((a, b) => a.start - b.start);
  }

  private async dedup(
    job: PartitionJob,
    key: string,
    retry: { failures: number; since: number } | undefined,
  ): Promise<void> {
    const type = job.type.name;
    const started = performance.now();
    try {
      const result =
        (await this.failedHourOfDay(job)) ??
        (await runDedup(job, {
          objects: this.d.objects,
          state: this.d.state,
          clock: this.d.clock,
          logger: this.log,
          config: { ...this.d.config.dedup, workDir: this.d.workDir },
        }));
      const now = this.d.clock.now();
      if (result.status === 'failed') {
        for (const h of job.hours)
          await this.d.state.updateHour(type, h.hour, { state: 'failed', error: result.error }, now);
        this.metrics.hoursFailed.inc({ type });
        this.log.error(
          { type, partition: new Date(job.start).toISOString(), error: result.error },
          'completeness violated: partition not published',
        );
        return;
      }
      for (const h of job.hours) {
        await this.d.state.updateHour(
          type,
          h.hour,
          { state: 'published', manifest: result.manifestName, publishedAt: now, error: null },
          now,
        );
      }
      this.retryAt.delete(key);
      const m = result.manifest;
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
        },
        'partition published',
      );
    } catch (err) {
      const failures = (retry?.failures ?? 0) + 1;
      const since = retry?.since ?? this.d.clock.now();
      const wait = Math.min(60_000, 1000 * 2 ** Math.min(failures - 1, 6));
      this.retryAt.set(key, { at: performance.now() + wait, failures, since });
      this.metrics.dedupFailures.inc({ type });
      this.log.error(
        { err, type, partition: new Date(job.start).toISOString(), failures, retryInMs: wait },
        'dedup failed; will retry',
      );
      await this.recordDedupError(job, err, failures, since);
    }
  }

  /** Records a failing dedup on the partition's hours (cleared when it is published). */
  private async recordDedupError(job: PartitionJob, err: unknown, failures: number, since: number): Promise<void> {
    const e = err as { message?: unknown; code?: unknown };
    const code = typeof e.code === 'string' ? ` [${e.code}]` : '';
    const text = typeof e.message === 'string' ? e.message : String(err);
    const error = `dedup_failed: ${text}${code} (${failures} attempt${failures === 1 ? '' : 's'} since ${new Date(since).toISOString()}; retried)`;
    const now = this.d.clock.now();
    try {
      for (const h of job.hours) await this.d.state.updateHour(job.type.name, h.hour, { error }, now);
    } catch (recordErr) {
      this.log.warn({ err: recordErr, type: job.type.name }, 'recording the dedup error failed');
    }
  }

  /** What an ended hour waited for at the closer's last pass in this process (null: not waiting or not known). */
  waitingFor(type: string, hour: number): string | null {
    return this.closer.waitingFor(type, hour);
  }

  /** What ended, unclosed hours wait for, judged now by this process's closer (bus figures included). */
  explainClosing(hours: readonly { type: string; hour: number }[]): Promise<Map<string, string>> {
    return this.closer.explain(hours);
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

  /** Commits buffered files, stops consumers and the loop. Idempotent. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.consumers.values()].map((c) => c.close()));
    await this.passing;
    this.log.info('etl stopped');
  }
}

export function etlWorkDir(dataDir: string): string {
  return join(dataDir, 'work');
}
