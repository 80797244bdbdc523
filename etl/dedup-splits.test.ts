import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitsFor } from './dedup.js';

describe('dedup parts', () => {
  it('keeps a partition whole while its ids fit, and splits beyond into parts of at most two thirds of the budget', () => {
    expect(splitsFor(5_000_000, 6_000_000)).toBe(1);
    expect(splitsFor(6_000_000, 6_000_000)).toBe(1);
    expect(splitsFor(6_000_001, 6_000_000)).toBe(2);
    expect(splitsFor(20_000_000, 6_000_000)).toBe(5);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: 1e8 }), (events, budget) => {
        const n = splitsFor(events, budget);
        expect(n).toBeGreaterThanOrEqual(1);
        if (events <= budget) expect(n).toBe(1);
        else expect(Math.ceil(events / n)).toBeLessThanOrEqual(Math.max(1, Math.floor((budget * 2) / 3)));
      }),
    );
  });
});
