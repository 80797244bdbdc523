/** A real ingress plus the ETL (embedded bus, SQLite, filesystem object store) in one test process. */
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { etlConfigOf } from '../../cli/pipeline.js';
import type { Clock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import type { EtlRole } from '../../core/etl-roles.js';
import { silentLogger } from '../../core/logger.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import type { StateStore } from '../../core/ports/state-store.js';
import type { Warehouse } from '../../core/ports/warehouse.js';
import { runQuery } from '../../etl/query.js';
import { EtlService } from '../../etl/service.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { type Harness, type HarnessOptions, startHarness } from './ingress-harness.js';

export interface EtlHarness extends Harness {
  readonly objects: ObjectStore;
  readonly etl: EtlService;
  /** Posts events; returns the parsed answer. */
  post(events: unknown[]): Promise<{ status: number; body: { accepted: number; rejected: unknown[] } }>;
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** Runs closer + dedup passes until `done` holds (or throws after `timeoutMs`). */
  until(done: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  /**
   * Another ETL process's batch worker on the same data (its own state-store connection; no bus):
   * `dedup` by default. Closed with the harness.
   */
  worker(options?: {
    roles?: readonly EtlRole[];
    etl?: Record<string, unknown>;
    wrapObjects?: (store: ObjectStore) => ObjectStore;
    wrapState?: (store: StateStore) => StateStore;
  }): Promise<EtlService>;
}

export interface EtlHarnessOptions extends HarnessOptions {
  readonly etl?: Record<string, unknown>;
  readonly wrapObjects?: (store: ObjectStore) => ObjectStore;
  readonly warehouse?: Warehouse;
  /** The harness ETL's roles (default all). */
  readonly roles?: readonly EtlRole[];
}

export async function startEtlHarness(options: EtlHarnessOptions & { clock: Clock }): Promise<EtlHarness> {
  const h = await startHarness({ ...options, ingress: { ledgerGraceMs: 0, ...options.ingress } });
  const overrides: Record<string, unknown> = {
    dataDir: h.dir,
    'etl.maxFileAgeRealMs': 50,
    'etl.passIntervalRealMs': 3_600_000, // passes are run by the test
    'etl.vanishAfterRealMs': 10 * 3_600_000,
  };
  for (const [k, v] of Object.entries(options.etl ?? {})) overrides[`etl.${k}`] = v;
  const configOf = (more: Record<string, unknown> = {}) => {
    const all = { ...overrides };
    for (const [k, v] of Object.entries(more)) all[`etl.${k}`] = v;
    return loadConfig({ overrides: all });
  };
  const config = configOf();
  const fs = new FsObjectStore(join(h.dir, 'objects'));
  const objects = options.wrapObjects ? options.wrapObjects(fs) : fs;
  const etl = new EtlService({
    bus: h.bus,
    objects,
    state: h.store,
    catalog: h.catalog,
    clock: options.clock,
    logger: silentLogger(),
    registry: new Registry(),
    config: etlConfigOf(config),
    workDir: join(h.dir, 'work'),
    warehouse: options.warehouse ?? null,
    ...(options.roles === undefined ? {} : { roles: new Set(options.roles) }),
  });
  await etl.start();
  const workers: { etl: EtlService; store: StateStore }[] = [];
  return {
    ...h,
    objects,
    etl,
    async post(events) {
      const res = await fetch(`${h.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events }),
      });
      return { status: res.status, body: (await res.json()) as { accepted: number; rejected: unknown[] } };
    },
    async query(sql) {
      return (await runQuery(sql, fs, h.catalog, { memoryBytes: 128 * 1024 * 1024, threads: 1 })).rows;
    },
    async until(done, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await etl.pass();
        await etl.settled();
        if (await done()) return;
        if (Date.now() > deadline) throw new Error('condition not reached in time');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async worker(o = {}) {
      const own = new SqliteStateStore(join(h.dir, 'state.sqlite'));
      const w = new EtlService({
        bus: null,
        objects: o.wrapObjects ? o.wrapObjects(fs) : fs,
        state: o.wrapState ? o.wrapState(own) : own,
        catalog: h.catalog,
        clock: options.clock,
        logger: silentLogger(),
        registry: new Registry(),
        config: etlConfigOf(configOf(o.etl)),
        workDir: join(h.dir, 'work'),
        warehouse: null,
        roles: new Set(o.roles ?? ['dedup']),
      });
      await w.start();
      workers.push({ etl: w, store: own });
      return w;
    },
    async close() {
      await h.ingress.close();
      await etl.close();
      for (const w of workers) {
        await w.etl.close();
        await w.store.close();
      }
      await h.close();
    },
  };
}
