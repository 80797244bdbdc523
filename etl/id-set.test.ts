import { describe, expect, it } from 'vitest';
import { IdSet } from './id-set.js';

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
