import { describe, expect, it } from 'vitest';
import { fnv1a, IdSet, splitOf } from './id-set.js';

describe('IdSet', () => {
  it('is exact: adds each distinct id once, across growth, whatever the hash does', () => {
    const set = new IdSet(4);
    const reference = new Set<string>();
    const ids: string[] = [];
    for (let i = 0; i < 50_000; i++) ids.push(i % 7 === 0 ? `dup-${i % 1000}` : `id-${i}-${'ü'.repeat(i % 3)}`);
    for (const id of ids) {
      const b = Buffer.from(`xx${id}yy`);
      expect(set.add(b, 2, b.length - 2)).toBe(!reference.has(id));
      reference.add(id);
    }
    expect(set.size).toBe(reference.size);
  });

  it('tells apart ids of different lengths and prefixes', () => {
    const set = new IdSet();
    const add = (s: string) => {
      const b = Buffer.from(s);
      return set.add(b, 0, b.length);
    };
    expect([add('a'), add('ab'), add(''), add('a'), add('ab'), add('')]).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});

describe('splitOf', () => {
  it('spreads ids over the splits, and each split over all of an id set’s slots', () => {
    const splits = 4;
    const perSplit = Array.from({ length: splits }, () => new Array<number>(8).fill(0));
    for (let i = 0; i < 40_000; i++) {
      const id = Buffer.from(`e-${i}`);
      const h = fnv1a(id, 0, id.length);
      const s = splitOf(h, splits);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(splits);
      const counts = perSplit[s] as number[];
      counts[h & 7] = (counts[h & 7] as number) + 1; // the low bits an IdSet's slot index starts from
    }
    for (const lowBits of perSplit) {
      const total = lowBits.reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThan(40_000 / splits / 1.2);
      for (const n of lowBits) expect(n).toBeGreaterThan(total / 8 / 1.3);
    }
  });
});
