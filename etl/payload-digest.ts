/**
 * The digest of an event's payload the dedup step keeps with each key (etl/key-set.ts), to tell
 * a retry (same payload) from another event reusing the id.
 */
import { viewOf } from './byte-view.js';

/**
 * MurmurHash3 (x86, 32 bits) of `src[start, end)`, four bytes a step: the digest of a payload the
 * dedup step keeps with each id, to tell a copy of an event from another event with its id.
 */
export function digest32(src: Uint8Array, start: number, end: number): number {
  let h = 0x9747b28c;
  let i = start;
  const body = end - ((end - start) & 3);
  const view = viewOf(src);
  for (; i < body; i += 4) {
    let k = view.getInt32(i, true);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const rest = end - i;
  if (rest === 3) k ^= (src[i + 2] as number) << 16;
  if (rest >= 2) k ^= (src[i + 1] as number) << 8;
  if (rest >= 1) {
    k ^= src[i] as number;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= end - start;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
