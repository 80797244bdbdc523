import { describe, expect, it } from 'vitest';
import { digest32 } from './payload-digest.js';

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
