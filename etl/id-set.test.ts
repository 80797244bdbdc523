import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Added, digest32, fnv1a, IdSet, splitOf } from './id-set.js';

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

describe('IdSet with tags', () => {
  it('tells a new id, the same id with its first tag, and with another tag (the first stays), across growth', () => {
    const set = new IdSet(4, { tagged: true });
    const add = (id: string, tag: number) => {
      const b = Buffer.from(`<${id}>`);
      return set.addTagged(b, 1, b.length - 1, tag);
    };
    for (let i = 0; i < 20_000; i++) expect(add(`id-${i}`, i * 2654435761)).toBe(Added.NEW);
    for (let i = 0; i < 20_000; i += 7) {
      expect(add(`id-${i}`, i * 2654435761)).toBe(Added.SAME_TAG);
      expect(add(`id-${i}`, i * 2654435761 + 1)).toBe(Added.OTHER_TAG);
      expect(add(`id-${i}`, i * 2654435761)).toBe(Added.SAME_TAG);
    }
    expect(add('', 0xffffffff)).toBe(Added.NEW);
    expect(add('', -1)).toBe(Added.SAME_TAG); // the same 32 bits
    expect(set.size).toBe(20_001);
  });

  it('with the hash given, is exact and keeps first tags whatever the hash (constant, few bits, good)', () => {
    const hashes = [() => 0, (b: Buffer) => (b[0] ?? 0) & 3, (b: Buffer) => fnv1a(b, 0, b.length)];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 9 }), fc.integer({ min: 0, max: 2 })), {
          maxLength: 2000,
          size: 'max',
        }),
        fc.constantFrom(0, 1, 2),
        (adds, which) => {
          const hash = hashes[which] as (b: Buffer) => number;
          const set = new IdSet(4, { tagged: true });
          const first = new Map<string, number>();
          for (const [id, tag] of adds) {
            const b = Buffer.from(`..${id}`);
            const got = set.addTaggedHashed(b, 2, b.length, hash(b.subarray(2)), tag);
            const was = first.get(id);
            expect(got).toBe(was === undefined ? Added.NEW : was === tag ? Added.SAME_TAG : Added.OTHER_TAG);
            if (was === undefined) first.set(id, tag);
          }
          expect(set.size).toBe(first.size);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses tags on a set made without them', () => {
    expect(() => new IdSet().addTagged(Buffer.from('a'), 0, 1, 0)).toThrow(/without tags/);
  });
});

describe('digest32', () => {
  it('is MurmurHash3 x86_32 (seed 0x9747b28c) of the bytes, whatever their alignment', () => {
    // published test vectors of MurmurHash3_x86_32 with that seed (every tail length)
    const cases: [string, number][] = [
      ['a', 0x7fa09ea6],
      ['aa', 0x5d211726],
      ['aaa', 0x283e0130],
      ['aaaa', 0x5a97808a],
      ['ab', 0x74875592],
      ['abc', 0xc84a62dd],
      ['abcd', 0xf0478627],
      ['Hello, world!', 0x24884cba],
      ['The quick brown fox jumps over the lazy dog', 0x2fa826cd],
    ];
    for (const [text, expected] of cases) {
      const b = Buffer.from(`xyz${text}`);
      expect(digest32(b, 3, b.length), text).toBe(expected);
    }
  });

  it('differs for payloads one byte apart', () => {
    const a = Buffer.from('0123456789abcdef0');
    const seen = new Set<number>();
    for (let i = 0; i < a.length; i++) {
      const b = Buffer.from(a);
      b[i] = (b[i] as number) ^ 1;
      seen.add(digest32(b, 0, b.length));
    }
    seen.add(digest32(a, 0, a.length));
    expect(seen.size).toBe(a.length + 1);
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
