import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { digest32 } from './payload-digest.js';
import { SipKey, siphash128 } from './siphash.js';
import { WasmSipHasher } from './siphash-wasm.js';

function wasmHashes(key: Uint8Array, block: Buffer, spans: [number, number][]): Uint32Array {
  const h = new WasmSipHasher(key);
  h.load(block, spans.length);
  for (const [i, [s, e]] of spans.entries()) h.hash(s, e, i);
  const out = new Uint32Array(4 * spans.length + 4);
  h.copyOut(spans.length, out, 4);
  return out.subarray(4);
}

describe('WasmSipHasher', () => {
  it('gives the reference vectors (key 00…0f, messages 00 01 … of 0–63 bytes), as siphash128 does', () => {
    const key = Uint8Array.from({ length: 16 }, (_, i) => i);
    const block = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const spans = Array.from({ length: 64 }, (_, n) => [0, n] as [number, number]);
    const got = wasmHashes(key, block, spans);
    const want = new Uint32Array(4 * 64);
    for (let n = 0; n < 64; n++) siphash128(new SipKey(key), block, 0, n, want, 4 * n);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('equals siphash128 on any bytes at any offset, across blocks that grow its memory (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.array(fc.uint8Array({ maxLength: 70 }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 200_000 }),
        (key, keys, pad) => {
          const block = Buffer.concat([randomBytes(pad % 13), ...keys.map((k) => Buffer.from(k)), randomBytes(pad)]);
          let at = pad % 13;
          const spans = keys.map((k) => {
            const s: [number, number] = [at, at + k.length];
            at += k.length;
            return s;
          });
          const want = new Uint32Array(4 * spans.length);
          for (const [i, [s, e]] of spans.entries()) siphash128(new SipKey(key), block, s, e, want, 4 * i);
          expect(Array.from(wasmHashes(key, block, spans))).toEqual(Array.from(want));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('gives the payload digest of digest32 on any bytes at any offset, whatever follows them (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 40 }),
        fc.uint8Array({ minLength: 3, maxLength: 3 }),
        (payload, at, after) => {
          // bytes before and after the payload: the masked tail load must not take them in
          const block = Buffer.concat([randomBytes(at), Buffer.from(payload), Buffer.from(after)]);
          const h = new WasmSipHasher(randomBytes(16));
          h.load(block, 0);
          expect(h.digest(at, at + payload.length)).toBe(digest32(block, at, at + payload.length));
        },
      ),
      { numRuns: 300 },
    );
  });
});
