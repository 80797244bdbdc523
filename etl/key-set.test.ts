import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareHashes, sortHashes, splitRange } from './id-index.js';
import { Found, KeySet } from './key-set.js';

const hashOf = (w: readonly number[]) => Uint32Array.from(w);
const keyOf = (h: Uint32Array, at = 0) => Array.from(h.subarray(at, at + 4)).join(',');

describe('KeySet', () => {
  it('tells a new key, a copy with its first digest, and a copy with another (the first stays)', () => {
    const set = new KeySet(4);
    const a = hashOf([1, 2, 3, 4]);
    const b = hashOf([1, 2, 3, 5]); // differs in the last word only
    expect(set.add(a, 0, 7, true)).toBe(Found.NEW);
    expect(set.add(b, 0, 7, true)).toBe(Found.NEW);
    expect(set.add(a, 0, 7, true)).toBe(Found.SAME_TAG);
    expect(set.add(a, 0, 8, true)).toBe(Found.OTHER_TAG);
    expect(set.add(a, 0, 7, false)).toBe(Found.SAME_TAG);
    expect(set.size).toBe(2);
    // a hash one word apart is another key
    expect(set.add(hashOf([1, 2, 4, 4]), 0, 7, true)).toBe(Found.NEW);
    expect(set.size).toBe(3);
  });

  it('gives the kept keys sorted, across growth and crowded slots', () => {
    // many keys with the same top word: one long run of probing, through the overflow area
    const set = new KeySet(16);
    const words: number[] = [];
    for (let i = 0; i < 3000; i++) words.push(i % 3 === 0 ? 0xffffff00 : (i * 2654435761) >>> 0, 9, i, 3000 - i);
    const all = Uint32Array.from(words);
    for (let i = 0; i < 3000; i++) expect(set.add(all, 4 * i, i, i % 7 !== 0)).toBe(Found.NEW);
    for (let i = 0; i < 3000; i += 11) expect(set.add(all, 4 * i, i, true)).toBe(Found.SAME_TAG);
    expect(set.size).toBe(3000);
    const keptWords = words.filter((_, w) => Math.floor(w / 4) % 7 !== 0);
    const expected = sortHashes(Uint32Array.from(keptWords), keptWords.length / 4);
    expect(Array.from(set.sortedKept())).toEqual(Array.from(expected));
  });

  it('is emptied for the next split: the same memory, only the new range, nothing of the split before', () => {
    const [lo0, hi0] = splitRange(0, 2);
    const [lo1, hi1] = splitRange(1, 2);
    const set = new KeySet(50, lo0, hi0);
    for (let i = 0; i < 40; i++) expect(set.add(hashOf([lo0 + i * 7919, i, 0, 0]), 0, i, true)).toBe(Found.NEW);
    expect(set.sortedKept().length).toBe(4 * 40);
    set.reset(lo1, hi1);
    expect(set.size).toBe(0);
    expect(() => set.add(hashOf([lo0, 0, 0, 0]), 0, 0, true)).toThrow(/outside/);
    const keys = [hi1 - 1, lo1, lo1 + 5].map((w0, i) => hashOf([w0, i, 1, 1]));
    for (const k of keys) expect(set.add(k, 0, 3, true)).toBe(Found.NEW);
    expect(set.add(keys[1] as Uint32Array, 0, 3, true)).toBe(Found.SAME_TAG);
    expect(Array.from(set.sortedKept())).toEqual([lo1, 1, 1, 1, lo1 + 5, 2, 1, 1, hi1 - 1, 0, 1, 1]);
  });

  it('refuses a key outside its split, and keeps a split in order', () => {
    const [lo, hi] = splitRange(1, 3);
    const set = new KeySet(100, lo, hi);
    expect(() => set.add(hashOf([lo - 1, 0, 0, 0]), 0, 0, true)).toThrow(/outside/);
    expect(() => set.add(hashOf([hi, 0, 0, 0]), 0, 0, true)).toThrow(/outside/);
    expect(set.add(hashOf([hi - 1, 0, 0, 0]), 0, 0, true)).toBe(Found.NEW);
    expect(set.add(hashOf([lo, 0, 0, 0]), 0, 0, true)).toBe(Found.NEW);
    expect(Array.from(set.sortedKept())).toEqual([lo, 0, 0, 0, hi - 1, 0, 0, 0]);
  });

  it('behaves as a map from hash to first digest, and sorts what it kept (property)', () => {
    const word = fc.integer({ min: 0, max: 0xffffffff });
    // few distinct top words and digests, so that copies, conflicts and long runs happen
    const key = fc.tuple(
      fc.constantFrom(0, 1, 0x80000000, 0xffffffff, 12345),
      word,
      fc.integer({ min: 0, max: 3 }),
      word,
    );
    fc.assert(
      fc.property(
        fc.array(fc.record({ key, digest: fc.integer({ min: 0, max: 2 }), kept: fc.boolean() }), { maxLength: 400 }),
        fc.integer({ min: 1, max: 500 }),
        (adds, expected) => {
          const set = new KeySet(expected);
          const reference = new Map<string, { digest: number; kept: boolean; words: number[] }>();
          for (const a of adds) {
            const h = hashOf(a.key);
            const k = keyOf(h);
            const first = reference.get(k);
            const got = set.add(h, 0, a.digest, a.kept);
            if (first === undefined) {
              expect(got).toBe(Found.NEW);
              reference.set(k, { digest: a.digest, kept: a.kept, words: a.key });
            } else expect(got).toBe(first.digest === a.digest ? Found.SAME_TAG : Found.OTHER_TAG);
          }
          expect(set.size).toBe(reference.size);
          const kept = [...reference.values()].filter((r) => r.kept).map((r) => Uint32Array.from(r.words));
          kept.sort((x, y) => compareHashes(x, 0, y, 0));
          const sorted = set.sortedKept();
          expect(sorted.length).toBe(4 * kept.length);
          for (const [i, h] of kept.entries()) expect(keyOf(sorted, 4 * i)).toBe(keyOf(h));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('KeySet limits', () => {
  it('says it is full rather than grow without end when keys share a top word beyond the overflow area', () => {
    const set = new KeySet(16);
    const add = (i: number) => set.add(Uint32Array.from([0xffffffff, i, 0, 0]), 0, 0, true);
    expect(() => {
      for (let i = 0; i < 2000; i++) add(i);
    }).toThrow(/key set is full/);
  });
});
