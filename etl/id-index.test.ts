import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import {
  compareHashes,
  fanoutBitsFor,
  HASH_WORDS,
  hasHash,
  IdIndexWriter,
  keyIdOf,
  markHits,
  readIndexRange,
  sortHashes,
  splitOfHash,
  splitRange,
} from './id-index.js';
import { SipKey, siphash128 } from './siphash.js';

const secret = Buffer.alloc(16, 42);
const key = new SipKey(secret);

function hashesOf(ids: readonly string[]): Uint32Array {
  const out = new Uint32Array(HASH_WORDS * ids.length);
  for (const [i, id] of ids.entries()) {
    const b = Buffer.from(id);
    siphash128(key, b, 0, b.length, out, HASH_WORDS * i);
  }
  return out;
}

function list(words: Uint32Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i += 4)
    out.push(Array.from(words.subarray(i, i + 4), (w) => w.toString(16)).join('.'));
  return out;
}

let dir: string;
let objects: FsObjectStore;
let serial = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hourglass-idx-'));
  objects = new FsObjectStore(join(dir, 'objects'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes an index of `ids` split by `splits` as the dedup step does (split after split), and publishes it. */
async function publish(ids: readonly string[], splits: number, fanoutIds = ids.length) {
  const words = hashesOf(ids);
  const writer = new IdIndexWriter(join(dir, `w-${++serial}.idx`), fanoutIds, keyIdOf(secret));
  for (let s = 0; s < splits; s++) {
    const part: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (splitOfHash(words[4 * i] as number, splits) === s) part.push(...words.subarray(4 * i, 4 * i + 4));
    }
    const sorted = sortHashes(Uint32Array.from(part), part.length / 4);
    await writer.append(sorted, sorted.length / 4);
  }
  const done = await writer.finish();
  const name = `final/T/idx-${serial}.idx`;
  await objects.putFile(name, done.path);
  return { ref: { name, ids: done.ids, fanoutBits: done.fanoutBits }, done, words };
}

async function readAll(ref: { name: string; ids: number; fanoutBits: number }, lo: number, hi: number) {
  const parts: number[] = [];
  for await (const chunk of readIndexRange(objects, ref, lo, hi)) parts.push(...chunk);
  return Uint32Array.from(parts);
}

describe('sortHashes', () => {
  it('sorts ascending and removes duplicates', () => {
    const words = hashesOf(Array.from({ length: 3000 }, (_, i) => `id-${i % 2500}`));
    const sorted = sortHashes(words, 3000);
    expect(sorted.length / 4).toBe(2500);
    for (let i = 1; i < 2500; i++) expect(compareHashes(sorted, i - 1, sorted, i)).toBe(-1);
    expect(new Set(list(sorted))).toEqual(new Set(list(words)));
  });

  it('for any hashes (equal top words, repeats, bucketed or not), gives the sorted unique hashes', () => {
    // words drawn from a few values, so hashes share prefixes and repeat; up to 3,000 hashes, so
    // both the unbucketed (< 1,024) and the bucketed paths run
    const word = fc.oneof(
      fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff),
      fc.integer({ min: 0, max: 0xffffffff }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(word, word, word, word), { maxLength: 3000, size: 'max' }),
        fc.integer({ min: 0, max: 2 }),
        (hashes, repeat) => {
          const all = hashes.concat(hashes.slice(0, repeat * 100));
          const words = Uint32Array.from(all.flat());
          const key = (h: readonly number[]) => h.map((w) => w.toString(16).padStart(8, '0')).join('.');
          const expected = [...new Set(all.map(key))].sort();
          const sorted = sortHashes(words, all.length);
          expect(list(sorted).map((s) => key(s.split('.').map((x) => Number.parseInt(x, 16))))).toEqual(expected);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('id index', () => {
  it('round-trips: header, fan-out table and hashes, read whole or in ranges', async () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `event-${i}`);
    const { ref, done, words } = await publish(ids, 1);
    expect(done).toMatchObject({ ids: 20_000, fanoutBits: fanoutBitsFor(20_000) });
    expect(done.fanoutBits).toBe(3);
    expect(done.bytes).toBe(64 + 8 * 9 + 16 * 20_000);
    const header = await objects.getRange(ref.name, 0, 64);
    expect(header.subarray(0, 8).toString('latin1')).toBe('HGIDXv01');
    expect(header.readUInt32LE(12)).toBe(3);
    expect(Number(header.readBigUInt64LE(16))).toBe(20_000);
    expect(header.subarray(24, 32).toString('hex')).toBe(keyIdOf(secret));
    const all = await readAll(ref, 0, 2 ** 32);
    expect(list(all)).toEqual(list(sortHashes(words, 20_000)));
    for (const id of ['event-0', 'event-19999']) expect(hasHash(all, hashesOf([id]), 0)).toBe(true);
    expect(hasHash(all, hashesOf(['event-20000']), 0)).toBe(false);
  });

  it('an empty index reads as nothing', async () => {
    const { ref, done } = await publish([], 3);
    expect(done).toMatchObject({ ids: 0, fanoutBits: 0 });
    expect(await readAll(ref, 0, 2 ** 32)).toEqual(new Uint32Array(0));
  });

  it('refuses hashes out of order', async () => {
    const writer = new IdIndexWriter(join(dir, 'bad.idx'), 10, keyIdOf(secret));
    const sorted = sortHashes(hashesOf(['a', 'b']), 2);
    await writer.append(sorted.subarray(4), 1);
    await expect(writer.append(sorted.subarray(0, 4), 1)).rejects.toThrow(/ascending/);
    await writer.finish();
  });

  it('for any keys and splits, the split ranges cover the index exactly and lookups are exact', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 400 }),
        fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 0, max: 4_000_000 }), // the fan-out table of a bigger index: up to 2^10 buckets
        async (ids, probes, writtenSplits, readSplits, fanoutIds) => {
          const { ref, words } = await publish(ids, writtenSplits, fanoutIds);
          const expected = list(sortHashes(words, ids.length));
          const stored = new Set(ids);
          const seen: string[] = [];
          for (let s = 0; s < readSplits; s++) {
            const [lo, hi] = splitRange(s, readSplits);
            const part = await readAll(ref, lo, hi);
            for (let i = 0; i < part.length; i += 4) {
              expect(splitOfHash(part[i] as number, readSplits)).toBe(s);
            }
            seen.push(...list(part));
            // probing this split's share of the probes finds exactly those stored
            const mine = probes.filter((p) => splitOfHash(hashesOf([p])[0] as number, readSplits) === s);
            const probe = sortHashes(hashesOf(mine), mine.length);
            const hit = new Uint8Array(probe.length / 4);
            await markHits(probe, hit, readIndexRange(objects, ref, lo, hi));
            const hits = new Set(list(probe).filter((_, i) => hit[i] === 1));
            for (const p of mine) expect(hits.has(list(hashesOf([p]))[0] as string)).toBe(stored.has(p));
          }
          expect(seen).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });
});
