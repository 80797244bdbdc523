import { describe, expect, it } from 'vitest';
import {
  decodeCommitMetadata,
  encodeCommitMetadata,
  MAX_METADATA_CHARS,
  PartitionTracker,
  rangesSize,
} from './partition-tracker.js';

describe('PartitionTracker', () => {
  it('commits at the first unacked offset and carries the acks above it as holes', () => {
    const t = new PartitionTracker(10);
    for (let o = 10; o < 16; o++) expect(t.admit(o, 1000 + o, 0)).toBe('deliver');
    expect(t.commitPoint()).toBe(10);
    t.ack(10);
    t.ack(11);
    t.ack(13);
    t.ack(15);
    expect(t.commitPoint()).toBe(12);
    expect(t.holes()).toEqual([
      [13, 13],
      [15, 15],
    ]);
    expect(t.outstanding).toBe(2);
    expect(t.oldestUnacked()).toMatchObject({ offset: 12, publishTime: 1012 });
    t.ack(12);
    t.ack(14);
    expect(t.commitPoint()).toBe(16);
    expect(t.holes()).toEqual([]);
    expect(t.oldestUnacked()).toBeNull();
  });

  it('skips offsets below the floor, seen ones, and the holes of an earlier consumer', () => {
    const t = new PartitionTracker(5, [
      [6, 7],
      [2, 3],
    ]);
    expect(t.admit(4, 0, 0)).toBe('skip');
    expect(t.expected()).toBe(5);
    expect(t.admit(5, 0, 0)).toBe('deliver');
    expect(t.admit(6, 0, 0)).toBe('skip');
    expect(t.admit(7, 0, 0)).toBe('skip');
    expect(t.admit(5, 0, 0)).toBe('skip');
    expect(t.admit(8, 0, 0)).toBe('deliver');
    expect(t.expected()).toBe(9);
    expect(t.commitPoint()).toBe(5);
    // holes not reached yet stay holes in the next commit
    const u = new PartitionTracker(5, [[9, 9]]);
    expect(u.holes()).toEqual([[9, 9]]);
  });

  it('writes a commit only when its offset or holes changed', () => {
    const t = new PartitionTracker(0);
    t.admit(0, 1, 0);
    const first = t.pendingCommit(7, 100);
    expect(first?.offset).toBe(0);
    t.committed(first?.offset as number, first?.metadata as string);
    expect(t.pendingCommit(7, 200)).toBeNull();
    t.ack(0);
    expect(t.pendingCommit(7, 300)?.offset).toBe(1);
  });
});

describe('commit metadata', () => {
  it('round-trips and refuses what is not ours', () => {
    const m = { incarnation: 42, holes: [[3, 5]] as Array<[number, number]>, oldestPublishTime: 9, at: 10 };
    expect(decodeCommitMetadata(encodeCommitMetadata(m))).toEqual(m);
    expect(decodeCommitMetadata('')).toBeNull();
    expect(decodeCommitMetadata('not json')).toBeNull();
    expect(decodeCommitMetadata('{"x":1}')).toBeNull();
  });

  it('drops the highest holes to stay within the broker limit', () => {
    const holes = Array.from({ length: 2000 }, (_, i) => [i * 3, i * 3] as [number, number]);
    const text = encodeCommitMetadata({ incarnation: 1, holes, oldestPublishTime: null, at: 1 });
    expect(text.length).toBeLessThanOrEqual(MAX_METADATA_CHARS);
    const back = decodeCommitMetadata(text);
    expect(back?.holes[0]).toEqual([0, 0]);
    expect(rangesSize(back?.holes ?? [])).toBeLessThan(2000);
  });
});
