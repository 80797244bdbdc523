/**
 * etl.isolation: a small type's hour is published promptly while a big hour of another type is
 * being deduped in the same ETL process. One `hourglass etl --roles dedup` (production defaults:
 * `etl.batchConcurrency` 0, i.e. one dedup job per core, plus the slot for small partitions) on a
 * SQLite state store and the fs object store of one data dir. Raw files, ledgers and the registry
 * are written first (in a child process, not timed); the benchmark then closes hours in the state
 * store as the closer would, and times each from its closing to its partition being published:
 *
 *  1. B alone: a 10,000-event PageView hour, nothing else running (`smallAloneSec`);
 *  2. A: a big EndSong hour (default 20,000,000 events, 1% duplicates; the spill path) is closed;
 *     once its dedup job has run for 5 s, a second 10,000-event PageView hour closes
 *     (`smallPublishedAfterCloseSec`, goal ≤ 5 s), and A is timed to its publication (`bigDedupSec`).
 *
 * B's two hours are two hours apart, so neither reads an earlier partition's ids (the same work).
 *
 *   tsx bench/etl-isolation.ts generate <dir> <bigEvents>   writes the hours (hours.json lists them)
 *   tsx bench/etl-isolation.ts measure [bigEvents]          runs the whole measure; prints its result
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventType, loadEventTypes } from '../core/event-types.js';
import { HOUR_MS, hourStart } from '../core/hours.js';
import type { StateStore } from '../core/ports/state-store.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { applyTypes, closeRawHour, payloads, type RawHour, registerRawHour, writeRawHour } from './etl-data.js';
import { DevLoopProbe, machineBusySeconds, ROOT, runBenchScript, startEtl } from './processes.js';

const HOUR = hourStart(Date.UTC(2026, 0, 1, 12));
const BIG_TYPE = 'EndSong';
const SMALL_TYPE = 'PageView';
const SMALL_EVENTS = 10_000;
/** How long A's dedup job has run when B's hour closes (s). */
const B_AFTER_A_SEC = 5;

interface Hours {
  readonly big: RawHour;
  readonly smallAlone: RawHour;
  readonly small: RawHour;
}

async function generate(dir: string, bigEvents: number): Promise<void> {
  const all = await loadEventTypes(join(ROOT, 'schemas'));
  const typeOf = (name: string): EventType => all.find((t) => t.name === name) as EventType;
  const objects = new FsObjectStore(join(dir, 'objects'));
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  try {
    await applyTypes(join(ROOT, 'schemas'), state);
    const small = typeOf(SMALL_TYPE);
    const smallBodies = payloads(small);
    const hours: Hours = {
      big: await writeRawHour(objects, typeOf(BIG_TYPE), HOUR, bigEvents, {
        idPrefix: 'a-',
        bodies: payloads(typeOf(BIG_TYPE)),
      }),
      smallAlone: await writeRawHour(objects, small, HOUR - 2 * HOUR_MS, SMALL_EVENTS, {
        idPrefix: 'b0-',
        bodies: smallBodies,
      }),
      small: await writeRawHour(objects, small, HOUR, SMALL_EVENTS, { idPrefix: 'b1-', bodies: smallBodies }),
    };
    for (const h of Object.values(hours)) await registerRawHour(state, h);
    writeFileSync(join(dir, 'hours.json'), JSON.stringify(hours));
  } finally {
    await state.close();
  }
}

export interface IsolationResult {
  readonly cpuCores: number;
  /** Dedup jobs the ETL process runs at once (its log: the production default, one per core) … */
  readonly batchConcurrency: number;
  /** … plus one slot for partitions under 250,000 events. */
  readonly loadAverage: number;
  readonly bigEvents: number;
  readonly smallEvents: number;
  /** Writing the raw files, ledgers and registry (not timed in the figures). */
  readonly generateSeconds: number;
  /** B's hour alone: closed → published (s). */
  readonly smallAloneSec: number;
  /** B's hour while A is deduped: closed → published (s); goal ≤ 5. */
  readonly smallPublishedAfterCloseSec: number;
  /** … of which closed → its dedup job claimed (s). */
  readonly smallClaimedAfterCloseSec: number;
  /** The dedup step's own time for B (manifest `dedupSeconds`), alone and while A ran. */
  readonly smallAloneDedupSec: number;
  readonly smallDedupSec: number;
  /** A was still unpublished when B was published. */
  readonly bigStillRunning: boolean;
  /** A's hour: closed → published (s), and the step's own time (manifest). */
  readonly bigDedupSec: number;
  readonly bigStepSec: number;
  /** The ETL process's event-loop delay over B's window while A ran (ms beyond the 10-ms interval). */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  /** Cores the ETL process used over A's run (CPU seconds / wall seconds); null without /proc. */
  readonly etlCoresUsed: number | null;
  /** Cores the rest of the machine used over A's run (busy CPU from /proc/stat less the ETL's); null without /proc. */
  readonly otherCores: number | null;
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Closes the hour and waits for its partition: seconds from closing to published, and the hour's manifest. */
async function closeAndTime(
  state: StateStore,
  dir: string,
  h: RawHour,
  timeoutSec: number,
): Promise<{ seconds: number; closedAt: number; manifest: { dedupSeconds: number; eventsOut: number } }> {
  const closedAt = Date.now();
  const started = performance.now();
  await closeRawHour(state, h);
  for (;;) {
    const [r] = await state.listHours({ type: h.type, from: h.hour, to: h.hour + 1, states: ['published', 'failed'] });
    if (r !== undefined) {
      const seconds = (performance.now() - started) / 1000;
      if (r.state !== 'published' || r.manifest === null) throw new Error(`${h.type} failed: ${r.error}`);
      const manifest = JSON.parse(readFileSync(join(dir, 'objects', r.manifest), 'utf8'));
      if (manifest.eventsOut !== h.distinct)
        throw new Error(`${h.type} published ${manifest.eventsOut} of ${h.distinct}`);
      return { seconds, closedAt, manifest };
    }
    if (performance.now() - started > timeoutSec * 1000)
      throw new Error(`${h.type} not published within ${timeoutSec} s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function measureIsolation(bigEvents = 20_000_000): Promise<IsolationResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-isolation-'));
  try {
    const generating = performance.now();
    await runBenchScript('etl-isolation.ts', ['generate', dir, String(bigEvents)]);
    const generateSeconds = (performance.now() - generating) / 1000;
    const hours = JSON.parse(readFileSync(join(dir, 'hours.json'), 'utf8')) as Hours;
    const loadAverage = round(loadavg()[0] ?? 0);
    const etl = await startEtl(['--roles', 'dedup', '--data-dir', dir]);
    const state = new SqliteStateStore(join(dir, 'state.sqlite'));
    try {
      const alone = await closeAndTime(state, dir, hours.smallAlone, 60);

      // A: closed, and its dedup job running for a few seconds
      const aClosed = performance.now();
      const cpuBefore = etl.cpuSeconds();
      const machineBefore = machineBusySeconds();
      await closeRawHour(state, hours.big);
      const bigRunning = async (): Promise<boolean> =>
        (await state.listJobs({ kind: 'dedup', type: BIG_TYPE })).some((j) => j.state === 'running');
      while (!(await bigRunning())) {
        if (performance.now() - aClosed > 30_000) throw new Error(`${BIG_TYPE}'s dedup job did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, B_AFTER_A_SEC * 1000));
      if (!(await bigRunning())) throw new Error(`${BIG_TYPE}'s dedup ended before B closed: make A bigger`);
      const probe = await DevLoopProbe.start(etl.url);
      const during = await closeAndTime(state, dir, hours.small, 120);
      const loop = await probe.read();
      const [job] = await state.listJobs({
        kind: 'dedup',
        type: SMALL_TYPE,
        from: hours.small.hour,
        to: hours.small.hour + 1,
      });
      const [bigNow] = await state.listHours({ type: BIG_TYPE, from: HOUR, to: HOUR + 1 });
      const bigStillRunning = bigNow?.state !== 'published';
      // A to its end (timed from its closing)
      let big: { dedupSeconds: number } | undefined;
      for (;;) {
        const [r] = await state.listHours({
          type: BIG_TYPE,
          from: HOUR,
          to: HOUR + 1,
          states: ['published', 'failed'],
        });
        if (r !== undefined) {
          if (r.state !== 'published' || r.manifest === null) throw new Error(`${BIG_TYPE} failed: ${r.error}`);
          big = JSON.parse(readFileSync(join(dir, 'objects', r.manifest), 'utf8'));
          break;
        }
        if (performance.now() - aClosed > 600_000) throw new Error(`${BIG_TYPE} not published within 10 minutes`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const bigDedupSec = (performance.now() - aClosed) / 1000;
      const cpuAfter = etl.cpuSeconds();
      const machineAfter = machineBusySeconds();
      const started = etl.logs().find((l) => l.msg === 'etl started');
      if (started === undefined) throw new Error(`hourglass etl logged no start line: ${JSON.stringify(etl.logs())}`);
      return {
        cpuCores: cpus().length,
        batchConcurrency: Number(started.batchConcurrency),
        loadAverage,
        bigEvents,
        smallEvents: SMALL_EVENTS,
        generateSeconds: round(generateSeconds, 1),
        smallAloneSec: round(alone.seconds),
        smallPublishedAfterCloseSec: round(during.seconds),
        smallClaimedAfterCloseSec: job === undefined ? Number.NaN : round((job.createdAt - during.closedAt) / 1000),
        smallAloneDedupSec: alone.manifest.dedupSeconds,
        smallDedupSec: during.manifest.dedupSeconds,
        bigStillRunning,
        bigDedupSec: round(bigDedupSec, 1),
        bigStepSec: (big as { dedupSeconds: number }).dedupSeconds,
        loopDelayP99Ms: loop.loopDelayP99Ms,
        loopDelayMaxMs: loop.loopDelayMaxMs,
        etlCoresUsed: cpuBefore === null || cpuAfter === null ? null : round((cpuAfter - cpuBefore) / bigDedupSec),
        otherCores:
          cpuBefore === null || cpuAfter === null || machineBefore === null || machineAfter === null
            ? null
            : round((machineAfter - machineBefore - (cpuAfter - cpuBefore)) / bigDedupSec),
      };
    } finally {
      await state.close();
      await etl.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, a, b] = process.argv.slice(2);
  if (cmd === 'generate' && a) await generate(a, Number(b));
  else if (cmd === 'measure') console.log(await measureIsolation(a ? Number(a) : undefined));
  else throw new Error('usage: etl-isolation.ts generate <dir> <bigEvents> | measure [bigEvents]');
}
