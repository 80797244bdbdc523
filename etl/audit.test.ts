import { describe, expect, it } from 'vitest';
import { partitionStarts } from './audit.js';

const iso = (ms: number[]): string[] => ms.map((m) => new Date(m).toISOString());

describe('partitionStarts', () => {
  it('gives the hours of [from, to), from rounded down to its hour', () => {
    expect(iso(partitionStarts(Date.UTC(2026, 10, 22, 10, 30), Date.UTC(2026, 10, 22, 13), false))).toEqual([
      '2026-11-22T10:00:00.000Z',
      '2026-11-22T11:00:00.000Z',
      '2026-11-22T12:00:00.000Z',
    ]);
    expect(partitionStarts(Date.UTC(2026, 10, 22, 10), Date.UTC(2026, 10, 22, 10), false)).toEqual([]);
  });

  it('gives every day that overlaps the range for daily types', () => {
    expect(iso(partitionStarts(Date.UTC(2026, 10, 22, 10), Date.UTC(2026, 10, 22, 12), true))).toEqual([
      '2026-11-22T00:00:00.000Z',
    ]);
    expect(iso(partitionStarts(Date.UTC(2026, 10, 22, 23), Date.UTC(2026, 10, 24), true))).toEqual([
      '2026-11-22T00:00:00.000Z',
      '2026-11-23T00:00:00.000Z',
    ]);
    expect(iso(partitionStarts(Date.UTC(2026, 10, 22, 23), Date.UTC(2026, 10, 24, 0, 0, 1), true))).toHaveLength(3);
  });
});
