/**
 * A scaled clock shared by every process on one data dir, across restarts: the first process
 * records where its scaled time started (`<dataDir>/clock.json`); later ones continue from there,
 * so a restarted `hourglass dev` or a separate `hourglass etl` sees the same hours, and time never
 * goes back. At scale 1 the system clock is used and nothing is recorded.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, preciseNow, ScaledClock, SystemClock } from './clock.js';
import { writeFileSyncAtomic } from './fs-atomic.js';

interface Origin {
  readonly scale: number;
  /** Real epoch ms (fractional, {@link preciseNow}) at which the scaled clock read `clockOrigin`. */
  readonly realOrigin: number;
  readonly clockOrigin: number;
}

export function sharedClock(dataDir: string, scale: number): Clock {
  if (scale === 1) return new SystemClock();
  const path = join(dataDir, 'clock.json');
  let origin: Origin | null = null;
  try {
    origin = JSON.parse(readFileSync(path, 'utf8')) as Origin;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const realNow = preciseNow();
  if (origin !== null && origin.scale === scale) return new ScaledClock(scale, origin.clockOrigin, origin.realOrigin);
  // a new origin; never behind the time an earlier scale had reached
  const start =
    origin === null ? realNow : Math.max(realNow, origin.clockOrigin + (realNow - origin.realOrigin) * origin.scale);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSyncAtomic(path, `${JSON.stringify({ scale, realOrigin: realNow, clockOrigin: start })}\n`);
  return new ScaledClock(scale, start, realNow);
}

/**
 * The clock of a data dir as its pipeline runs it: the recorded scaled time if there is one, else
 * the system clock. For commands that act on a running pipeline's data (`hourglass types`,
 * `tokens`, `hours`) without a time scale of their own.
 */
export function recordedClock(dataDir: string): Clock {
  try {
    const origin = JSON.parse(readFileSync(join(dataDir, 'clock.json'), 'utf8')) as Origin;
    return new ScaledClock(origin.scale, origin.clockOrigin, origin.realOrigin);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return new SystemClock();
  }
}
