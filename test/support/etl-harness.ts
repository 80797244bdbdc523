/** A real ingress plus the ETL (embedded bus, SQLite, filesystem object store) in one test process. */
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { etlConfigOf } from '../../cli/pipeline.js';
import type { Clock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import type { Warehouse } from '../../core/ports/warehouse.js';
import { runQuery } from '../../etl/query.js';
import { EtlService } from '../../etl/service.js';
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
}

export interface EtlHarnessOptions extends HarnessOptions {
  readonly etl?: Record<string, unknown>;
  readonly wrapObjects?: (store: ObjectStore) => ObjectStore;
  readonly warehouse?: Warehouse;
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
  const config = loadConfig({ overrides });
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
  });
  await etl.start();
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
    async close() {
      await h.ingress.close();
      await etl.close();
      await h.close();
    },
  };
}
