/**
 * (d) DuckDB deduplicating the same hour as the dedup step (bench/etl-dedup.ts), Parquet into
 * Parquet. The hour's raw records, duplicates kept, are first written as one Parquet file by the
 * project's writer (snappy, the dedup step's row-group size): not timed. Then DuckDB, with one
 * thread per core, runs
 *
 *   COPY (SELECT … FROM read_parquet(…) QUALIFY row_number() OVER (PARTITION BY …) = 1)
 *   TO … (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE_BYTES …)
 *
 * once partitioned by `event_id` alone and once by (`event_producer`, `event_id`) keeping the
 * first copy in file order (the dedup step's semantics), each in a child process of its own, so
 * the peak RSS reported is DuckDB's alone (with Node's). Each run starts after `sync`, so that it
 * does not pay for writing back the files written before it (as the dedup step's run does).
 *
 *   tsx bench/etl-duckdb.ts generate-parquet <dir>    writes <dir>/duckdb/in.parquet from the raw files
 *   tsx bench/etl-duckdb.ts run <dir> <id|producer-id> dedups it; prints one JSON line
 *   tsx bench/etl-duckdb.ts measure [events]            both sides on a generated hour (default 1 M)
 */
import { readFile, stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DEFAULTS } from '../core/defaults.js';
import { latestVersion } from '../core/event-types.js';
import { hourStart } from '../core/hours.js';
import { openContainer } from '../etl/avro-container.js';
import { Reader } from '../etl/avro-text.js';
import { ParquetFile } from '../etl/parquet-writer.js';
import { RawParquetTranscoder } from '../etl/raw-parquet.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { endSongType } from './etl-data.js';
import { type DedupResult, measureDedup } from './etl-dedup.js';
import { runBenchScript, settleDisk } from './processes.js';

const HOUR = hourStart(Date.UTC(2026, 0, 1, 12));
/** DuckDB's memory limit: the dedup step's peak-RSS bound (1 GiB). */
const MEMORY_LIMIT_MB = 1024;
const ROW_GROUP_BYTES = DEFAULTS.etl.dedupRowGroupBytes;

type Mode = 'id' | 'producer-id';

/** Writes every raw record of the hour (duplicates kept) into one Parquet file. */
async function generateParquet(dir: string): Promise<void> {
  const type = await endSongType();
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  const files = (await state.listFiles('EndSong', HOUR, 'raw')).sort((a, b) => (a.name < b.name ? -1 : 1));
  await state.close();
  const objects = new FsObjectStore(join(dir, 'objects'));
  const payloadType = latestVersion(type).type;
  const transcoder = new RawParquetTranscoder(payloadType);
  const out = await ParquetFile.create(join(dir, 'duckdb-in.parquet'), transcoder.schema, transcoder.columns);
  const reader = new Reader();
  for (const f of files) {
    const path = objects.localPath(f.name);
    if (path === null) throw new Error(`no local file for ${f.name}`);
    for (const block of openContainer(await readFile(path)).blocks) {
      reader.buf = block.data;
      reader.pos = 0;
      for (let i = 0; i < block.count; i++) {
        transcoder.envelope(reader);
        transcoder.row(reader);
        out.endRow();
      }
      let buffered = 0;
      for (const c of transcoder.columns) buffered += c.chunkBytes;
      if (buffered >= ROW_GROUP_BYTES) await out.flushRowGroup();
    }
  }
  await out.close();
}

export interface DuckdbRun {
  readonly seconds: number;
  readonly eventsPerSec: number;
  readonly peakRssMb: number;
  readonly rowsOut: number;
  readonly outputBytes: number;
}

async function run(dir: string, mode: Mode): Promise<DuckdbRun & { events: number }> {
  const input = join(dir, 'duckdb-in.parquet');
  const output = join(dir, `duckdb-out-${mode}.parquet`);
  const source =
    mode === 'id'
      ? `SELECT * FROM read_parquet('${input}') QUALIFY row_number() OVER (PARTITION BY event_id) = 1`
      : `SELECT * EXCLUDE (file_row_number) FROM read_parquet('${input}', file_row_number = true) QUALIFY row_number() OVER (PARTITION BY event_producer, event_id ORDER BY file_row_number) = 1`;
  const started = performance.now();
  const instance = await DuckDBInstance.create(':memory:', {
    threads: String(cpus().length),
    memory_limit: `${MEMORY_LIMIT_MB}MB`,
    temp_directory: join(dir, 'duckdb-tmp'),
    preserve_insertion_order: 'false',
  });
  const c = await instance.connect();
  let seconds: number;
  let events: number;
  let rowsOut: number;
  try {
    await c.run(
      `COPY (${source}) TO '${output}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE_BYTES ${ROW_GROUP_BYTES})`,
    );
    seconds = (performance.now() - started) / 1000;
    // not timed: rows in and out, from the files' footers
    const count = async (path: string) =>
      Number((await c.runAndReadAll(`SELECT count(*) FROM read_parquet('${path}')`)).getRows()[0]?.[0] ?? -1);
    events = await count(input);
    rowsOut = await count(output);
  } finally {
    c.closeSync();
    instance.closeSync();
  }
  return {
    events,
    seconds: Math.round(seconds * 100) / 100,
    eventsPerSec: Math.round(events / seconds),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    rowsOut,
    outputBytes: (await stat(output)).size,
  };
}

const child = (args: string[]): Promise<string> => runBenchScript('etl-duckdb.ts', args);

export interface DuckdbDedupResult extends DuckdbRun {
  /** DuckDB's threads (the machine's cores) and memory limit. */
  readonly threads: number;
  readonly memoryLimitMb: number;
  /** Rows of the Parquet input (the hour's events, duplicates kept), its size, and the time to write it (not timed). */
  readonly events: number;
  readonly inputBytes: number;
  readonly generateSeconds: number;
  /** The dedup step's output (its Parquet files) and published count, for comparison. */
  readonly hourglassOutputBytes: number;
  readonly hourglassEventsOut: number;
  /** `outputBytes / hourglassOutputBytes`. */
  readonly outputBytesRatio: number;
  /** Whether both DuckDB runs wrote exactly `hourglassEventsOut` rows. */
  readonly rowsMatch: boolean;
  /** The run partitioned by `event_id` alone (the top-level figures are the (producer, id) run's). */
  readonly eventIdOnly: DuckdbRun;
}

/**
 * DuckDB's dedup of the hour in `dir` (generated by bench/etl-dedup.ts, already deduped there with
 * result `hourglass`): the Parquet input is written, then each variant runs in a child process.
 */
export async function measureDuckdbDedup(dir: string, hourglass: DedupResult): Promise<DuckdbDedupResult> {
  const t = performance.now();
  await child(['generate-parquet', dir]);
  const generateSeconds = Math.round((performance.now() - t) / 10) / 100;
  const last = (out: string) => JSON.parse(out.trim().split('\n').pop() as string) as DuckdbRun & { events: number };
  await settleDisk();
  const byId = last(await child(['run', dir, 'id']));
  await settleDisk();
  const byKey = last(await child(['run', dir, 'producer-id']));
  const { events, ...figures } = byKey;
  const { events: _, ...idFigures } = byId;
  return {
    threads: cpus().length,
    memoryLimitMb: MEMORY_LIMIT_MB,
    events,
    inputBytes: (await stat(join(dir, 'duckdb-in.parquet'))).size,
    generateSeconds,
    ...figures,
    hourglassOutputBytes: hourglass.parquetBytes,
    hourglassEventsOut: hourglass.eventsOut,
    outputBytesRatio: Math.round((figures.outputBytes / hourglass.parquetBytes) * 100) / 100,
    rowsMatch:
      events === hourglass.events && byKey.rowsOut === hourglass.eventsOut && byId.rowsOut === hourglass.eventsOut,
    eventIdOnly: idFigures,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, dir, arg] = process.argv.slice(2);
  if (cmd === 'generate-parquet' && dir) await generateParquet(dir);
  else if (cmd === 'run' && dir && (arg === 'id' || arg === 'producer-id'))
    console.log(JSON.stringify(await run(dir, arg)));
  else if (cmd === 'measure') {
    let duckdb = undefined as DuckdbDedupResult | undefined;
    const hourglass = await measureDedup(Number(dir ?? 1_000_000), undefined, async (d, r) => {
      duckdb = await measureDuckdbDedup(d, r);
    });
    console.log({ hourglass, duckdb });
  } else throw new Error('usage: etl-duckdb.ts generate-parquet <dir> | run <dir> <id|producer-id> | measure [events]');
}
