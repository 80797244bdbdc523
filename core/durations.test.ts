import { describe, expect, it } from 'vitest';
import { parseDurationMs } from './durations.js';

describe('parseDurationMs', () => {
  it.each([
    ['45s', 'smhd', 45_000],
    ['1.5h', 'smhd', 5_400_000],
    [' 90d ', 'smhd', 90 * 86_400_000],
    ['2w', 'mhdw', 14 * 86_400_000],
    ['0m', 'mhdw', 0],
    ['1w', 'smhd', null],
    ['30s', 'mhdw', null],
    ['soon', 'smhd', null],
    ['-1h', 'smhd', null],
    ['5', 'smhd', null],
  ])('%s with units %s → %s', (text, units, ms) => {
    expect(parseDurationMs(text, units)).toBe(ms);
  });
});
