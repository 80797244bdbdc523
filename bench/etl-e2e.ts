/**
 * (e) End to end: `hourglass dev` (ingress + ETL in one process) at time scale 120 (an hour lasts
 * 30 s), about 1,000,000 EndSong events sent early in an hour; measured: real time from the end of
 * that hour to its final partition being published. The figure at time scale 1 is derived by
 * adding back what the scale shortens (the ledger grace and the seal check interval, which are in
 * clock time) plus the worst-case age of the hour's last raw file (traffic up to the hour's end).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedClock } from '../core/clock-origin.js';
import { DEFAULTS } from '../core/defaults.js';
import { HOUR_MS, hourStart } from '../core/hours.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { runSend, startDev } from './processes.js';

const SCALE = 120;

export interface EndToEndResult {
  readonly timeScale: number;
  readonly events: number;
  /** Real seconds from the hour's end to its partition being published, at this time scale. */
  readonly hourEndToPublishedSec: number;
  /** The same, derived for time scale 1. */
  readonly atScale1Sec: number;
  readonly dedupSec: number;
}

export async function measureEndToEnd(): Promise<EndToEndResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-e2e-'));
  const dev = await startDev(dir, ['--time-scale', String(SCALE)]);
  const state = new SqliteStateStore(join(dir, 'state.sqlite'));
  try {
    const clock = sharedClock(dir, SCALE);
    // start at the beginning of the next hour
    const hour = hourStart(clock.now()) + HOUR_MS;
    await clock.sleep(hour - clock.now() + 1000);
    const sent = await runSend([
      '--url',
      dev.url,
      ...dev.keyArgs,
      '--type',
      'EndSong',
      '--rate',
      '100000',
      '--duration',
      '11',
      '--batch',
      '500',
      '--concurrency',
      '16',
    ]);
    if (hourStart(clock.now()) !== hour) throw new Error('sending did not finish within the hour; lower the load');
    const hourEndReal = performance.now() + clock.toRealMs(hour + HOUR_MS - clock.now());
    for (;;) {
      const [h] = await state.listHours({ type: 'EndSong', from: hour, to: hour + 1, states: ['published'] });
      if (h !== undefined) {
        const delay = (performance.now() - hourEndReal) / 1000;
        const m = JSON.parse(
          await import('node:fs/promises').then((f) => f.readFile(join(dir, 'objects', h.manifest as string), 'utf8')),
        ) as { dedupSeconds: number; eventsOut: number };
        const shortened = (DEFAULTS.ingress.ledgerGraceMs * (1 - 1 / SCALE) + 1000) / 1000;
        return {
          timeScale: SCALE,
          events: sent.accepted,
          hourEndToPublishedSec: round(delay),
          atScale1Sec: round(delay + shortened + DEFAULTS.etl.maxFileAgeRealMs / 1000),
          dedupSec: m.dedupSeconds,
        };
      }
      if (performance.now() - hourEndReal > 300_000) throw new Error('the hour was not published within 5 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await state.close();
    await dev.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await measureEndToEnd());
