/**
 * Loads published partitions into the warehouse, for types whose `storage` is `warehouse`: each
 * published partition not loaded yet (oldest first) is loaded with its manifest's data files, and
 * its hours are marked `loadedAt`. Each load is a `load` job claimed in the state store, so of
 * several ETL processes one loads a partition. A load replaces the partition in the warehouse, so
 * a load repeated after a crash between loading and recording (or after a takeover) is harmless. A
 * failed load is released for a retry with backoff (2 s doubling to 60 s); the files stay the
 * source of truth.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { type EventType, latestVersion, PARTITIONINGS } from '../core/event-types.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { HourRecord, StateStore } from '../core/ports/state-store.js';
import type { Warehouse } from '../core/ports/warehouse.js';
import type { Manifest } from './dedup.js';
import { type Claim, type JobClaims, retryDelayMs } from './job-claims.js';

export interface WarehouseLoaderDeps {
  readonly warehouse: Warehouse;
  readonly state: StateStore;
  readonly objects: ObjectStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The types this process serves (current catalogue). */
  readonly types: () => readonly EventType[];
  readonly claims: JobClaims;
}

export class WarehouseLoader {
  /** Schema fingerprints whose table this process made sure of, per type (a new version checks again). */
  private readonly tables = new Map<string, string>();
  private readonly log: Logger;

  constructor(private readonly d: WarehouseLoaderDeps) {
    this.log = d.logger.child({ component: 'warehouse-loader', warehouse: d.warehouse.backend });
  }

  /** Loads what is due; returns the number of partitions loaded. Never throws. */
  async pass(): Promise<number> {
    const types = new Map(
      this.d
        .types()
        .filter((t) => t.storage === 'warehouse' && t.status !== 'retired')
        .map((t) => [t.name, t]),
    );
    if (types.size === 0) return 0;
    let hours: HourRecord[];
    try {
      hours = (await this.d.state.listHours({ states: ['published'] })).filter(
        (h) => h.loadedAt === null && h.manifest !== null && types.has(h.type),
      );
    } catch (err) {
      this.log.error({ err }, 'listing published hours failed');
      return 0;
    }
    // a daily partition's hours share one manifest
    const partitions = new Map<string, HourRecord[]>();
    for (const h of hours) partitions.set(h.manifest as string, [...(partitions.get(h.manifest as string) ?? []), h]);
    let loaded = 0;
    for (const [manifestName, group] of [...partitions].sort((a, b) => (a[1][0]?.hour ?? 0) - (b[1][0]?.hour ?? 0))) {
      const type = types.get(group[0]?.type ?? '') as EventType;
      const start = Math.min(...group.map((h) => h.hour));
      let claim: Claim | null;
      try {
        claim = await this.d.claims.claim({ kind: 'load', type: type.name, partition: start });
      } catch (err) {
        this.log.error({ err, type: type.name, manifest: manifestName }, 'claiming a warehouse load failed');
        continue;
      }
      if (claim === null) continue; // another worker loads it, or it waits for its retry
      try {
        await this.load(type, manifestName, group, claim);
        loaded++;
      } catch (err) {
        // one step further than a dedup retry: 2 s after the first failure
        const wait = retryDelayMs(claim.lease.attempts + 1);
        this.log.error(
          { err, type: type.name, manifest: manifestName, attempts: claim.lease.attempts, retryInMs: wait },
          'warehouse load failed',
        );
        const error = `warehouse_load_failed: ${(err as Error).message}`;
        await claim.finish({ state: 'ready', runAfterMs: wait, error }, [], this.d.clock.now()).catch((e: unknown) => {
          this.log.warn({ err: e, type: type.name }, 'releasing a failed warehouse load failed');
        });
      } finally {
        claim.stop();
      }
    }
    return loaded;
  }

  private async load(type: EventType, manifestName: string, hours: readonly HourRecord[], claim: Claim): Promise<void> {
    const m = JSON.parse((await this.d.objects.get(manifestName)).toString('utf8')) as Manifest;
    const fingerprint = latestVersion(type).fingerprint;
    if (this.tables.get(type.name) !== fingerprint) {
      await this.d.warehouse.ensureTable(type);
      this.tables.set(type.name, fingerprint);
    }
    const daily = m.partitioning === PARTITIONINGS[1];
    const start = Date.parse(m.start);
    const files = m.files.map((f) => f.name);
    const started = performance.now();
    // an empty partition has no file to load: there is nothing to replace either
    const rows =
      files.length === 0
        ? 0
        : (await this.d.warehouse.loadPartition({ type, start, daily, files, rows: m.eventsOut })).rows;
    const now = this.d.clock.now();
    await claim.finish(
      { state: 'done' },
      hours.map((h) => ({ type: h.type, hour: h.hour, patch: { loadedAt: now } })),
      now,
    );
    this.log.info(
      { type: type.name, partition: m.start, rows, seconds: Math.round(performance.now() - started) / 1000 },
      'partition loaded into the warehouse',
    );
  }
}
