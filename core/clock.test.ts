import { describe, expect, it } from 'vitest';
import { ManualClock, ScaledClock } from './clock.js';

describe('clocks', () => {
  it('a scaled clock runs N times faster', async () => {
    const clock = new ScaledClock(3600, Date.UTC(2026, 0, 1));
    const start = clock.now();
    await new Promise((r) => setTimeout(r, 100));
    const elapsed = clock.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(350_000); // ≥ ~6 clock minutes in 100 real ms
    expect(elapsed).toBeLessThan(3_600_000);
    expect(clock.toRealMs(3_600_000)).toBe(1000);
  });

  it('a manual clock wakes sleepers when advanced', async () => {
    const clock = new ManualClock(0);
    let woke = false;
    const p = clock.sleep(1000).then(() => {
      woke = true;
    });
    clock.advance(999);
    await Promise.resolve();
    expect(woke).toBe(false);
    clock.advance(1);
    await p;
    expect(woke).toBe(true);
  });

  it('refuses a non-positive scale', () => {
    expect(() => new ScaledClock(0)).toThrow(RangeError);
  });
});
