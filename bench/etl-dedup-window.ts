/**
 * `etl.dedupWindow`: the dedup step on one hour of EndSong events (as bench/etl-dedup.ts makes
 * them) against a dedup window of synthetic id indexes: one per hour before it, each of
 * `idsPerHour` random keyed hashes plus the real hashes of a share of the hour's keys (producer
 * retries that came back days later), which must all be dropped. Runs the step with a 1 h window
 * (one index) and a 7 d window (168 indexes), each in a child process of its own, so the peak
 * RSS of each is the step's alone and shows whether memory stays flat as the window grows.
 *
 *   tsx bench/etl-dedup-window.ts indexes <dir> <hours> <idsPerHour>  writes the window's indexes
 *   tsx bench/etl-dedup-window.ts run <dir> <hours>                   dedups; prints one JSON line
 */
import { randomFillSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '../core/clock.js';
import { HOUR_MS, hourPath, hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import { AvroBuffer } from '../etl/avro-binary.js';
import { idIndexKey, runDedup, writeKey } from '../etl/dedup.js';
import type { DedupWindow, WindowPartition } from '../etl/dedup-window.js';
import { HASH_WORDS, type IdIndexRef, IdIndexWriter, keyIdOf, sortHashes } from '../etl/id-index.js';
import { SipKey, siphash128 } from '../etl/siphash.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { defaultDedupConfig, endSongType } from './etl-data.js';
import { runBenchScript, settleDisk } from './processes.js';

/** The hour bench/etl-dedup.ts generates. */
const HOUR = hourStart(Date.UTC(2026, 0, 1, 12));
/** Every this many events of the hour, one whose key is also in the window. */
const INJECT_EVERY = 100;

/** The keys of the hour's events that the window holds (ids `e-<n>` with n a multiple of 100). */
function injected(events: number): { id: string; producer: string }[] {
  const out: { id: string; producer: string }[] = [];
  for (let n = 0; n < events; n += INJECT_EVERY) out.push({ id: `e-${n}`, producer: `producer-${n % 4}` });
  return out;
}

/** Writes `hours` indexes of the hours before HOUR, and the window's partitions as JSON. */
async function writeIndexes(dir: string, hours: number, idsPerHour: number, events: number): Promise<void> {
  const objects = new FsObjectStore(join(dir, 'objects'));
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  const secret = await idIndexKey(state, Date.now());
  await state.close();
  const key = new SipKey(secret);
  const keys = injected(events);
  const buf = new AvroBuffer(256);
  const partitions: WindowPartition[] = [];
  for (let h = 1; h <= hours; h++) {
    const start = HOUR - h * HOUR_MS;
    // this hour's share of the injected keys, then random hashes
    const mine = keys.filter((_, i) => i % hours === h - 1);
    const words = new Uint32Array(HASH_WORDS * (idsPerHour + mine.length));
    randomFillSync(words.subarray(0, HASH_WORDS * idsPerHour));
    for (const [i, k] of mine.entries()) {
      buf.reset();
      writeKey(buf, k.id, k.producer);
      siphash128(key, buf.buf, 0, buf.pos, words, HASH_WORDS * (idsPerHour + i));
    }
    const n = idsPerHour + mine.length;
    const sorted = sortHashes(words, n);
    const writer = new IdIndexWriter(join(dir, `window-${h}.idx`), n, keyIdOf(secret));
    await writer.append(sorted, sorted.length / HASH_WORDS);
    const done = await writer.finish();
    const name = `final/EndSong/${hourPath(start)}/ids-bench.idx`;
    await objects.putFile(name, done.path);
    await rm(done.path);
    const idIndex: IdIndexRef = {
      name,
      ids: done.ids,
      bytes: done.bytes,
      sha256: done.sha256,
      hash: 'siphash-2-4-128',
      keyId: keyIdOf(secret),
      fanoutBits: done.fanoutBits,
    };
    partitions.push({ start, manifest: `final/EndSong/${hourPath(start)}/_manifest.json`, idIndex, files: [], ids: n });
  }
  partitions.sort((a, b) => a.start - b.start);
  await writeFile(join(dir, 'window.json'), JSON.stringify(partitions));
}

export interface DedupWindowRun {
  readonly windowHours: number;
  readonly events: number;
  readonly eventsOut: number;
  readonly duplicatesOfWindow: number;
  /** Seconds of the whole step, and of its window check (hashing the keys, reading indexes, probing). */
  readonly seconds: number;
  readonly windowCheckSeconds: number;
  /** The hour's events per second of window check. */
  readonly idsPerSec: number;
  readonly indexBytesRead: number;
  readonly peakRssMb: number;
}

async function run(dir: string, hours: number): Promise<DedupWindowRun> {
  const type = await endSongType();
  const all = JSON.parse(await readFile(join(dir, 'window.json'), 'utf8')) as WindowPartition[];
  const partitions = all.filter((p) => p.start >= HOUR - hours * HOUR_MS);
  const window: DedupWindow = { ms: hours * HOUR_MS, from: HOUR - hours * HOUR_MS, partitions };
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  const hoursOf = await state.listHours({ type: 'EndSong' });
  const events = (await state.listFiles('EndSong', HOUR, 'raw')).reduce((n, f) => n + f.events, 0);
  const started = performance.now();
  const result = await runDedup(
    { type, start: HOUR, daily: false, hours: hoursOf, earlier: window },
    {
      objects: new FsObjectStore(join(dir, 'objects')),
      state,
      clock: new SystemClock(),
      logger: silentLogger(),
      config: defaultDedupConfig(join(dir, `work-${hours}`)),
    },
  );
  const seconds = (performance.now() - started) / 1000;
  await state.close();
  if (result.status !== 'published') throw new Error(result.error);
  const m = result.manifest;
  const check = m.dedupWindow?.seconds ?? Number.NaN;
  return {
    windowHours: hours,
    events,
    eventsOut: m.eventsOut,
    duplicatesOfWindow: m.duplicatesOfWindow ?? 0,
    seconds: Math.round(seconds * 100) / 100,
    windowCheckSeconds: check,
    idsPerSec: Math.round(events / check),
    indexBytesRead: m.dedupWindow?.indexBytesRead ?? 0,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

const child = (script: string, args: string[]): Promise<string> => runBenchScript(script, args);
const lastJson = <T>(out: string): T => JSON.parse(out.trim().split('\n').pop() as string) as T;

export interface DedupWindowResult extends DedupWindowRun {
  /** Hashes per window index (random, plus this hour's share of the injected keys). */
  readonly idsPerHour: number;
  /** Keys of the hour that the window holds: the expected `duplicatesOfWindow`. */
  readonly injected: number;
  /** The same hour against a 1 h window (one index): for the growth of time and memory with the window. */
  readonly oneHour: DedupWindowRun;
  /** Index bytes a partition reads per hour of window at this rate, and at 30 d. */
  readonly indexBytesPerWindowHour: number;
  readonly indexBytesAt30d: number;
}

/**
 * Generates an hour of `events` and `hours` indexes of `idsPerHour` before it, then dedups it
 * against 1 h and against all of them, each in a child process.
 */
export async function measureDedupWindow(
  events = 1_000_000,
  hours = 168,
  idsPerHour = 100_000,
): Promise<DedupWindowResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-window-'));
  try {
    await child('etl-dedup.ts', ['generate', dir, String(events)]);
    await child('etl-dedup-window.ts', ['indexes', dir, String(hours), String(idsPerHour), String(events)]);
    await settleDisk();
    const oneHour = lastJson<DedupWindowRun>(await child('etl-dedup-window.ts', ['run', dir, '1']));
    // the hour was published by the first run: publish the second under a fresh store copy of it
    await rm(join(dir, 'objects', 'final', 'EndSong', hourPath(HOUR)), { recursive: true, force: true });
    await settleDisk();
    const week = lastJson<DedupWindowRun>(await child('etl-dedup-window.ts', ['run', dir, String(hours)]));
    const expected = injected(events).length;
    if (week.duplicatesOfWindow !== expected) {
      throw new Error(`the ${hours} h window dropped ${week.duplicatesOfWindow} events, expected ${expected}`);
    }
    const perHour = Math.round(week.indexBytesRead / hours);
    return {
      ...week,
      idsPerHour,
      injected: expected,
      oneHour,
      indexBytesPerWindowHour: perHour,
      indexBytesAt30d: perHour * 720,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, dir, a, b, c] = process.argv.slice(2);
  if (cmd === 'indexes' && dir) await writeIndexes(dir, Number(a), Number(b), Number(c));
  else if (cmd === 'run' && dir) console.log(JSON.stringify(await run(dir, Number(a))));
  else if (cmd === 'measure')
    console.log(await measureDedupWindow(Number(dir ?? 1_000_000), Number(a ?? 168), Number(b ?? 100_000)));
  else throw new Error('usage: etl-dedup-window.ts indexes <dir> <hours> <idsPerHour> <events> | run <dir> <hours>');
}
