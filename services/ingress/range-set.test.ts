import { describe, expect, it } from 'vitest';
import { RangeSet } from './range-set.js';

describe('RangeSet', () => {
  it.each([
    [
      'appends and merges adjacent',
      [
        [1, 5],
        [6, 9],
      ],
      [[1, 9]],
      9,
    ],
    [
      'keeps gaps',
      [
        [1, 5],
        [8, 9],
      ],
      [
        [1, 5],
        [8, 9],
      ],
      7,
    ],
    [
      'out of order fills a gap',
      [
        [1, 5],
        [11, 20],
        [6, 10],
      ],
      [[1, 20]],
      20,
    ],
    [
      'out of order before all',
      [
        [10, 12],
        [1, 2],
      ],
      [
        [1, 2],
        [10, 12],
      ],
      5,
    ],
    [
      'single numbers',
      [
        [3, 3],
        [1, 1],
        [2, 2],
      ],
      [[1, 3]],
      3,
    ],
  ] as const)('%s', (_name, adds, expected, count) => {
    const s = new RangeSet();
    for (const [a, b] of adds) s.add(a, b);
    expect(s.toArray()).toEqual(expected);
    expect(s.count).toBe(count);
  });
});
