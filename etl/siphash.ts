/**
 * SipHash-2-4 with a 128-bit output (Aumasson and Bernstein; the reference implementation's
 * `siphash` with `outlen` 16), in 32-bit limbs: JavaScript has no fast 64-bit integers, and
 * BigInt is about fifty times slower.
 *
 * The dedup window hashes each (producer, id) key with it, keyed by a secret of the deployment,
 * so producers (untrusted tenants) cannot make two keys collide on purpose; see id-index.ts for
 * the collision bound.
 *
 * A hash is four 32-bit words, most significant first: `w0 w1` is the reference's first 64-bit
 * half (its bytes 0–7, little-endian), `w2 w3` the second (bytes 8–15).
 */

import { viewOf } from './byte-view.js';

export const SIPHASH_KEY_BYTES = 16;

/** A SipHash key read once: its two 64-bit halves as 32-bit words. */
export class SipKey {
  readonly k0h: number;
  readonly k0l: number;
  readonly k1h: number;
  readonly k1l: number;

  constructor(key: Uint8Array) {
    if (key.length !== SIPHASH_KEY_BYTES) throw new RangeError(`a SipHash key is ${SIPHASH_KEY_BYTES} bytes`);
    const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
    this.k0l = b.readUInt32LE(0);
    this.k0h = b.readUInt32LE(4);
    this.k1l = b.readUInt32LE(8);
    this.k1h = b.readUInt32LE(12);
  }
}

/**
 * SipHash-2-4-128 of `src[start, end)` under `key`, into `out[at … at + 3]` (see the header). The
 * state lives in local variables as signed 32-bit halves (small integers to the engine: no number
 * is boxed), so the rounds are written out where they run.
 */
export function siphash128(
  key: SipKey,
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint32Array,
  at: number,
): void {
  let v0h = key.k0h ^ 0x736f6d65;
  let v0l = key.k0l ^ 0x70736575;
  let v1h = key.k1h ^ 0x646f7261;
  let v1l = key.k1l ^ 0x6e646f6d ^ 0xee;
  let v2h = key.k0h ^ 0x6c796765;
  let v2l = key.k0l ^ 0x6e657261;
  let v3h = key.k1h ^ 0x74656462;
  let v3l = key.k1l ^ 0x79746573;
  let h = 0;
  let l = 0;
  const len = end - start;
  const last = start + (len & ~7);
  const view = viewOf(src);
  for (let i = start; ; i += 8) {
    let mh: number;
    let ml: number;
    if (i < last) {
      ml = view.getInt32(i, true);
      mh = view.getInt32(i + 4, true);
    } else {
      // the last block: the remaining bytes, and the length's low byte on top
      ml = 0;
      mh = (len & 0xff) << 24;
      for (let j = 0; i + j < end; j++) {
        const byte = src[i + j] as number;
        if (j < 4) ml |= byte << (8 * j);
        else mh |= byte << (8 * (j - 4));
      }
    }
    v3h ^= mh;
    v3l ^= ml;
    for (let r = 0; r < 2; r++) {
      // v0 += v1; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)
      l = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (l >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = l;
      h = ((v1h << 13) | (v1l >>> 19)) ^ v0h;
      v1l = ((v1l << 13) | (v1h >>> 19)) ^ v0l;
      v1h = h;
      h = v0h;
      v0h = v0l;
      v0l = h;
      // v2 += v3; v3 = rotl(v3, 16) ^ v2
      l = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (l >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = l;
      h = ((v3h << 16) | (v3l >>> 16)) ^ v2h;
      v3l = ((v3l << 16) | (v3h >>> 16)) ^ v2l;
      v3h = h;
      // v0 += v3; v3 = rotl(v3, 21) ^ v0
      l = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (l >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = l;
      h = ((v3h << 21) | (v3l >>> 11)) ^ v0h;
      v3l = ((v3l << 21) | (v3h >>> 11)) ^ v0l;
      v3h = h;
      // v2 += v1; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)
      l = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (l >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = l;
      h = ((v1h << 17) | (v1l >>> 15)) ^ v2h;
      v1l = ((v1l << 17) | (v1h >>> 15)) ^ v2l;
      v1h = h;
      h = v2h;
      v2h = v2l;
      v2l = h;
    }
    v0h ^= mh;
    v0l ^= ml;
    if (i >= last) break;
  }
  v2l ^= 0xee;
  for (let half = 0; half < 2; half++) {
    for (let r = 0; r < 4; r++) {
      // v0 += v1; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)
      l = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (l >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = l;
      h = ((v1h << 13) | (v1l >>> 19)) ^ v0h;
      v1l = ((v1l << 13) | (v1h >>> 19)) ^ v0l;
      v1h = h;
      h = v0h;
      v0h = v0l;
      v0l = h;
      // v2 += v3; v3 = rotl(v3, 16) ^ v2
      l = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (l >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = l;
      h = ((v3h << 16) | (v3l >>> 16)) ^ v2h;
      v3l = ((v3l << 16) | (v3h >>> 16)) ^ v2l;
      v3h = h;
      // v0 += v3; v3 = rotl(v3, 21) ^ v0
      l = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (l >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = l;
      h = ((v3h << 21) | (v3l >>> 11)) ^ v0h;
      v3l = ((v3l << 21) | (v3h >>> 11)) ^ v0l;
      v3h = h;
      // v2 += v1; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)
      l = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (l >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = l;
      h = ((v1h << 17) | (v1l >>> 15)) ^ v2h;
      v1l = ((v1l << 17) | (v1h >>> 15)) ^ v2l;
      v1h = h;
      h = v2h;
      v2h = v2l;
      v2l = h;
    }
    out[at + 2 * half] = v0h ^ v1h ^ v2h ^ v3h;
    out[at + 2 * half + 1] = v0l ^ v1l ^ v2l ^ v3l;
    v1l ^= 0xdd;
  }
}

/** The 16 bytes the reference implementation outputs for a hash (for tests and tools). */
export function referenceBytes(words: Uint32Array, at = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(words[at + 1] as number, 0);
  b.writeUInt32LE(words[at] as number, 4);
  b.writeUInt32LE(words[at + 3] as number, 8);
  b.writeUInt32LE(words[at + 2] as number, 12);
  return b;
}
