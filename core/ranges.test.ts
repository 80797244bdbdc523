import { describe, expect, it } from 'vitest';
import { describeRanges, mergeRanges, missingRanges, rangeCount, rangesOf } from './ranges.js';

describe('ranges', () => {
  it('merges overlapping and adjacent ranges', () => {
    expect(
      mergeRanges([
        [5, 7],
        [1, 2],
        [3, 3],
        [6, 9],
        [20, 21],
        [4, 1],
      ]),
    ).toEqual([
      [1, 3],
      [5, 9],
      [20, 21],
    ]);
  });

  it('builds ranges from unordered values with duplicates', () => {
    expect(rangesOf([4, 2, 3, 3, 9, 1, 10, 12])).toEqual([
      [1, 4],
      [9, 10],
      [12, 12],
    ]);
    expect(rangesOf([])).toEqual([]);
  });

  it('finds what is missing', () => {
    const have = mergeRanges([
      [1, 3],
      [6, 8],
      [12, 20],
    ]);
    expect(
      missingRanges(
        [
          [1, 10],
          [15, 25],
        ],
        have,
      ),
    ).toEqual([
      [4, 5],
      [9, 10],
      [21, 25],
    ]);
    expect(missingRanges([[2, 3]], have)).toEqual([]);
    expect(missingRanges([[1, 2]], [])).toEqual([[1, 2]]);
    expect(
      rangeCount([
        [1, 3],
        [5, 5],
      ]),
    ).toBe(4);
  });

  it('describes missing ranges per instance, bounded', () => {
    expect(
      describeRanges([
        [
          'i1',
          [
            [4, 5],
            [9, 9],
          ],
        ],
        ['i2', [[7, 7]]],
      ]),
    ).toBe('i1: 4-5, 9; i2: 7');
    const many = Array.from(
      { length: 7 },
      (_, i) => [`i${i}`, Array.from({ length: 7 }, (_, j) => [j * 2, j * 2])] as const,
    );
    const text = describeRanges(many as unknown as [string, [number, number][]][]);
    expect(text.split('; ')).toHaveLength(5);
    expect(text.split('; ')[0]).toBe('i0: 0, 2, 4, 6, 8');
  });
});
