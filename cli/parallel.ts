/**
 * Wiring of a parallel run (`parallel` in the configuration): the ingress publishes to the main
 * bus and to a second one, and the second pipeline's ETL consumes the second bus into
 * `pipelines/<name>/` of the store, keeping its own raw files and hours in a state store of its own
 * (`<dataDir>/pipelines/<name>/state.sqlite`, or the PostgreSQL schema `<schema>_<name>`) while
 * sharing the ledgers and the registry with the main pipeline.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { type HourglassConfig, MAIN_PIPELINE, type ParallelSettings } from '../core/config.js';
import type { EtlRole } from '../core/etl-roles.js';
import type { EventCatalog } from '../core/event-types.js';
import type { Bus } from '../core/ports/bus.js';
import type { StateStore } from '../core/ports/state-store.js';
import { EtlService, etlWorkDir } from '../etl/service.js';
import { EmbeddedBus } from '../infra/bus/embedded/embedded-bus.js';
import { SpooledBus } from '../infra/bus/parallel/spooled-bus.js';
import { TeeBus } from '../infra/bus/parallel/tee-bus.js';
import { PipelineStateStore } from '../infra/state/pipeline-state-store.js';
import { PostgresStateStore } from '../infra/state/postgres/postgres-state-store.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { busFor, etlConfigOf, objectStoreFor, openStateStore, pipelineNames } from './pipeline.js';
import { UsageError } from './usage.js';

/** Where the second pipeline keeps its local data (its embedded bus or spool, work files, state). */
export function pipelineDir(config: HourglassConfig, name: string): string {
  return join(config.dataDir, 'pipelines', name);
}

/** The second pipeline's own bus, as its ETL consumes it. */
export function secondBus(config: HourglassConfig, p: ParallelSettings, clock: Clock, logger: Logger): Promise<Bus> {
  return busFor(config, clock, logger.child({ pipeline: p.name }), p.bus, pipelineDir(config, p.name));
}

/**
 * The buses of a process that publishes or provisions: without a parallel run the configured
 * bus; with one, a tee of the main bus and the second (behind a local spool with
 * `parallel.ack: primary` when `spool` is set). `second` is what the second pipeline's ETL consumes.
 */
export async function publishingBuses(
  config: HourglassConfig,
  clock: Clock,
  logger: Logger,
  options: { spool: boolean },
): Promise<{ bus: Bus; second: Bus | null }> {
  const main = await busFor(config, clock, logger);
  const p = config.parallel;
  if (p === null) return { bus: main, second: null };
  let second: Bus;
  try {
    second = await secondBus(config, p, clock, logger);
  } catch (err) {
    await main.close();
    throw err;
  }
  if (p.ack === 'primary' && options.spool) {
    const spool = new EmbeddedBus({
      dataDir: join(pipelineDir(config, p.name), 'spool'),
      clock,
      logger,
      segmentBytes: config.bus.segmentBytes,
      retentionSweepMs: config.bus.retentionSweepRealMs,
      // another process forwarding a topic keeps it: looked at again every second, no long wait
      consumerLockWaitMs: 200,
      defaultAckDeadlineMs: config.bus.ackDeadlineRealMs,
    });
    const spooled = new SpooledBus(spool, second, logger.child({ pipeline: p.name, component: 'spool' }));
    await spooled.start();
    second = spooled;
  }
  return { bus: new TeeBus(main, second), second };
}

/** The second pipeline's state: its own raw files and hours, the main pipeline's ledgers and registry. */
export async function pipelineStateStore(
  config: HourglassConfig,
  name: string,
  shared: StateStore,
): Promise<StateStore> {
  const s = config.state;
  if (s.backend === 'postgres') {
    const own = await PostgresStateStore.open({ url: s.url, schema: `${s.schema}_${name.replace(/-/g, '_')}` });
    return new PipelineStateStore(shared, own);
  }
  const dir = pipelineDir(config, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return new PipelineStateStore(shared, new SqliteStateStore(join(dir, 'state.sqlite')));
}

export const PIPELINE_USAGE = `  --pipeline NAME   in a parallel run: main (default) or the second pipeline (parallel.name)`;

/** The pipeline a `--pipeline` flag names (default main); refuses a name the configuration lacks. */
export function pipelineOf(config: HourglassConfig, value: string | undefined): string {
  const name = value ?? MAIN_PIPELINE;
  if (!pipelineNames(config).includes(name)) {
    throw new UsageError(`--pipeline: no pipeline ${JSON.stringify(name)} here (${pipelineNames(config).join(', ')})`);
  }
  return name;
}

/** A pipeline's state store for a command that reads it; `close` closes what it opened. */
export async function openPipelineState(config: HourglassConfig, pipeline: string): Promise<StateStore> {
  const shared = await openStateStore(config);
  if (pipeline === MAIN_PIPELINE) return shared;
  let own: StateStore;
  try {
    own = await pipelineStateStore(config, pipeline, shared);
  } catch (err) {
    await shared.close();
    throw err;
  }
  const close = own.close.bind(own);
  own.close = async () => {
    await close();
    await shared.close();
  };
  return own;
}

/** The second pipeline's ETL (its metrics in a registry of their own: `hourglass etl --pipeline` serves them). */
export async function secondEtl(
  config: HourglassConfig,
  p: ParallelSettings,
  d: {
    bus: Bus | null;
    shared: StateStore;
    catalog: EventCatalog;
    clock: Clock;
    logger: Logger;
    registry?: Registry;
    roles?: ReadonlySet<EtlRole>;
  },
): Promise<{ etl: EtlService; state: StateStore }> {
  const state = await pipelineStateStore(config, p.name, d.shared);
  const etl = new EtlService({
    bus: d.bus,
    objects: await objectStoreFor(config, p.name),
    state,
    catalog: d.catalog,
    clock: d.clock,
    logger: d.logger.child({ pipeline: p.name }),
    registry: d.registry ?? new Registry(),
    config: etlConfigOf(config),
    workDir: etlWorkDir(pipelineDir(config, p.name)),
    warehouse: null,
    ...(d.roles === undefined ? {} : { roles: d.roles }),
  });
  return { etl, state };
}
