/**
 * (d) The dedup step on one hour of EndSong events (four producers) with 1% duplicates (producer
 * retries: same producer, id and payload): raw Avro files (snappy) as
 * the consumer writes them → checked against the ledger → deduplicated → Parquet (snappy) →
 * published. Each size runs in a child process of its own (generation in another), so the peak
 * RSS reported is the dedup step's alone. The run starts after `sync`: the hour's raw files were
 * just written, and their writeback is the generator's cost, not the step's (it took 0.4–0.5 s of
 * a 5 M-event run when the run started right away).
 *
 *   tsx bench/etl-dedup.ts generate <dir> <events>   writes raw files, ledger and a closed hour
 *   tsx bench/etl-dedup.ts run <dir> [maxIdsInMemory] dedups it; prints one JSON line
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import { runDedup, splitsFor } from '../etl/dedup.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { closeRawHour, defaultDedupConfig, endSongType, payloads, registerRawHour, writeRawHour } from './etl-data.js';
import { runBenchScript, settleDisk } from './processes.js';

const HOUR = hourStart(Date.UTC(2026, 0, 1, 12));

async function generate(dir: string, events: number): Promise<void> {
  const type = await endSongType();
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  try {
    // every 100th event repeats the id of an event 50 earlier (a producer retry, same payload);
    // events come from four producers
    const hour = await writeRawHour(new FsObjectStore(join(dir, 'objects')), type, HOUR, events, {
      idPrefix: 'e-',
      bodies: payloads(type),
    });
    await registerRawHour(state, hour);
    await closeRawHour(state, hour);
  } finally {
    await state.close();
  }
}

export interface DedupResult {
  readonly events: number;
  readonly duplicates: number;
  readonly idConflicts: number;
  readonly eventsOut: number;
  readonly seconds: number;
  readonly eventsPerSec: number;
  readonly peakRssMb: number;
  readonly splits: number;
  readonly parquetFiles: number;
  /** Bytes of the Parquet files published. */
  readonly parquetBytes: number;
}

async function run(dir: string, maxIds: number): Promise<DedupResult> {
  const type = await endSongType();
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  const hours = await state.listHours({ type: 'EndSong' });
  const files = await state.listFiles('EndSong', HOUR, 'raw');
  const events = files.reduce((n, f) => n + f.events, 0);
  const started = performance.now();
  const result = await runDedup(
    { type, start: HOUR, daily: false, hours, earlier: [] },
    {
      objects: new FsObjectStore(join(dir, 'objects')),
      state,
      clock: new SystemClock(),
      logger: silentLogger(),
      config: defaultDedupConfig(join(dir, 'work'), { maxIdsInMemory: maxIds }),
    },
  );
  const seconds = (performance.now() - started) / 1000;
  await state.close();
  if (result.status !== 'published') throw new Error(result.error);
  return {
    events,
    duplicates: result.manifest.duplicatesRemoved,
    idConflicts: result.manifest.idConflicts,
    eventsOut: result.manifest.eventsOut,
    seconds: Math.round(seconds * 100) / 100,
    eventsPerSec: Math.round(events / seconds),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    splits: splitsFor(events, maxIds),
    parquetFiles: result.manifest.files.length,
    parquetBytes: result.manifest.files.reduce((n, f) => n + f.bytes, 0),
  };
}

const child = (args: string[]): Promise<string> => runBenchScript('etl-dedup.ts', args);

/**
 * Generates an hour of `events` and dedups it, each in a child process; `then`, if given, runs on
 * the hour's directory (raw files, state, published partition) before it is removed.
 */
export async function measureDedup(
  events: number,
  maxIds: number = DEFAULTS.etl.dedupMaxIdsInMemory,
  then?: (dir: string, result: DedupResult) => Promise<void>,
): Promise<DedupResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-dedup-'));
  try {
    await child(['generate', dir, String(events)]);
    await settleDisk();
    const out = await child(['run', dir, String(maxIds)]);
    const result = JSON.parse(out.trim().split('\n').pop() as string) as DedupResult;
    await then?.(dir, result);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, dir, arg] = process.argv.slice(2);
  if (cmd === 'generate' && dir) await generate(dir, Number(arg));
  else if (cmd === 'run' && dir)
    console.log(JSON.stringify(await run(dir, Number(arg ?? DEFAULTS.etl.dedupMaxIdsInMemory))));
  else if (cmd === 'measure') console.log(await measureDedup(Number(dir ?? 1_000_000), arg ? Number(arg) : undefined));
  else throw new Error('usage: etl-dedup.ts generate <dir> <events> | run <dir> [maxIds] | measure <events> [maxIds]');
}
