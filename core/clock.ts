/**
 * The one clock every component takes its time from. Time is UTC epoch milliseconds.
 *
 * A {@link ScaledClock} runs `scale` times faster than real time (dev and tests only), so an hour
 * passes in seconds and tests exercise real hour boundaries. Timers given in clock milliseconds
 * are converted to real milliseconds.
 */
export interface Clock {
  /** Current time, epoch milliseconds (UTC). */
  now(): number;
  /** How many clock milliseconds pass per real millisecond (1 in production). */
  readonly scale: number;
  /** Resolves after `clockMs` of this clock's time (or rejects with the signal's reason). */
  sleep(clockMs: number, signal?: AbortSignal): Promise<void>;
  /** Real milliseconds that correspond to `clockMs` of this clock. */
  toRealMs(clockMs: number): number;
}

export class SystemClock implements Clock {
  readonly scale = 1;
  now(): number {
    return Date.now();
  }
  sleep(clockMs: number, signal?: AbortSignal): Promise<void> {
    return realSleep(clockMs, signal);
  }
  toRealMs(clockMs: number): number {
    return clockMs;
  }
}

/**
 * The real time now in epoch milliseconds with sub-millisecond precision. Scaled clocks measure
 * from it (not from `Date.now()`, whose whole milliseconds become whole seconds at ×1000), so two
 * clocks that record and continue one origin agree to far below a scaled millisecond.
 */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Reads `start` (default: the real time now) at the real instant `realOrigin` (default: now) and
 * runs `scale` times faster than real time.
 */
export class ScaledClock implements Clock {
  readonly scale: number;
  private readonly realOrigin: number;
  private readonly clockOrigin: number;

  constructor(scale: number, start: number = Date.now(), realOrigin: number = preciseNow()) {
    if (!(scale > 0) || !Number.isFinite(scale))
      throw new RangeError(`time scale must be a positive number, got ${scale}`);
    this.scale = scale;
    this.realOrigin = realOrigin;
    this.clockOrigin = start;
  }

  now(): number {
    return Math.floor(this.clockOrigin + (preciseNow() - this.realOrigin) * this.scale);
  }

  sleep(clockMs: number, signal?: AbortSignal): Promise<void> {
    return realSleep(this.toRealMs(clockMs), signal);
  }

  toRealMs(clockMs: number): number {
    return Math.max(0, clockMs / this.scale);
  }
}

/** A clock that moves only when told to; for unit tests. */
export class ManualClock implements Clock {
  readonly scale = 1;
  private current: number;
  private waiters: { at: number; resolve: () => void }[] = [];

  constructor(start: number) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  set(ms: number): void {
    this.current = ms;
    const due = this.waiters.filter((w) => w.at <= ms);
    this.waiters = this.waiters.filter((w) => w.at > ms);
    for (const w of due) w.resolve();
  }
  advance(ms: number): void {
    this.set(this.current + ms);
  }
  sleep(clockMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ at: this.current + clockMs, resolve });
    });
  }
  toRealMs(clockMs: number): number {
    return clockMs;
  }
}

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
