import { appendFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SubscriptionBacklogIndex } from './backlog-index.js';
import { encodeFrame } from './frame.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function segment(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hg-backlog-'));
  dirs.push(dir);
  const path = join(dir, 'w.l0-000001.log');
  writeFileSync(path, Buffer.alloc(0));
  return path;
}

function frame(count: number, time: number, dataBytes = 10): Buffer {
  return encodeFrame(
    Array.from({ length: count }, (_, i) => ({ data: Buffer.alloc(dataBytes, i), attributes: { id: `m-${i}` } })),
    time,
  );
}

describe('backlog index of the embedded bus', () => {
  it('counts an untouched segment as it grows, reading only what was appended', async () => {
    const path = segment();
    const index = new SubscriptionBacklogIndex();
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 0, oldest: null });
    appendFileSync(path, Buffer.concat([frame(3, 100), frame(2, 90)]));
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 5, oldest: 90 });
    appendFileSync(path, frame(4, 120));
    expect(await index.segmentBacklog('s', path, { offset: 0, acked: {}, done: false })).toEqual({
      messages: 9,
      oldest: 90,
    });
  });

  it('subtracts what the cursor passed and partly acked frames', async () => {
    const path = segment();
    const frames = [frame(3, 100), frame(2, 110), frame(4, 120), frame(5, 130)];
    appendFileSync(path, Buffer.concat(frames));
    const offsets: number[] = [];
    let at = 0;
    for (const f of frames) {
      offsets.push(at);
      at += f.length;
    }
    const index = new SubscriptionBacklogIndex();
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 14, oldest: 100 });
    // first frame fully acked; the third partly (2 of 4); the second not at all
    const cursor = { offset: offsets[1] as number, acked: { [String(offsets[2])]: [0, 3] }, done: false };
    expect(await index.segmentBacklog('s', path, cursor)).toEqual({ messages: 2 + 2 + 5, oldest: 110 });
    // the second frame partly acked: it is still the oldest with unacked messages
    cursor.acked[String(offsets[1])] = [1];
    expect(await index.segmentBacklog('s', path, cursor)).toEqual({ messages: 1 + 2 + 5, oldest: 110 });
    // the cursor passes the first three frames
    const later = { offset: offsets[3] as number, acked: { [String(offsets[3])]: [0] }, done: false };
    expect(await index.segmentBacklog('s', path, later)).toEqual({ messages: 4, oldest: 130 });
    appendFileSync(path, frame(1, 140));
    expect(await index.segmentBacklog('s', path, later)).toEqual({ messages: 5, oldest: 130 });
  });

  it('takes the earliest publish time even when times go back along the segment', async () => {
    const path = segment();
    const a = frame(1, 500);
    appendFileSync(path, Buffer.concat([a, frame(1, 200), frame(1, 300)]));
    const index = new SubscriptionBacklogIndex();
    const cursor = { offset: 0, acked: { '0': [] }, done: false };
    expect(await index.segmentBacklog('s', path, cursor)).toEqual({ messages: 3, oldest: 200 });
    expect(await index.segmentBacklog('s', path, { offset: a.length, acked: {}, done: false })).toEqual({
      messages: 2,
      oldest: 200,
    });
  });

  it('leaves a frame being written or torn for later, and reads it once complete', async () => {
    const path = segment();
    const whole = frame(3, 100);
    const next = frame(2, 110);
    appendFileSync(path, Buffer.concat([whole, next.subarray(0, 10)]));
    const index = new SubscriptionBacklogIndex();
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 3, oldest: 100 });
    // the header complete, the body not yet
    appendFileSync(path, next.subarray(10, 40));
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 3, oldest: 100 });
    appendFileSync(path, next.subarray(40));
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 5, oldest: 100 });
    // a torn header with garbage after it: not counted
    appendFileSync(path, Buffer.from([0x48, 0x4c, 0x47, 0x31, 0xff, 0xff, 0, 0, 1, 2, 3]));
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 5, oldest: 100 });
  });

  it('does not count a frame whose body does not match its checksum', async () => {
    const path = segment();
    const bad = frame(2, 100);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
    appendFileSync(path, Buffer.concat([frame(1, 90), bad]));
    expect(await new SubscriptionBacklogIndex().segmentBacklog('s', path, undefined)).toEqual({
      messages: 1,
      oldest: 90,
    });
  });

  it('reads frames larger than its chunk, and many frames over several chunks', async () => {
    const path = segment();
    const big = frame(2, 50, 300 * 1024);
    const small = Array.from({ length: 2000 }, (_, i) => frame(1 + (i % 3), 100 + i, 200));
    appendFileSync(path, Buffer.concat([big, ...small]));
    const expected = 2 + small.reduce((n, _, i) => n + 1 + (i % 3), 0);
    const index = new SubscriptionBacklogIndex();
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: expected, oldest: 50 });
    const cursor = { offset: big.length, acked: {}, done: false };
    expect(await index.segmentBacklog('s', path, cursor)).toEqual({ messages: expected - 2, oldest: 100 });
  });

  it('reads a segment again when it became shorter, and counts nothing of a deleted one', async () => {
    const path = segment();
    const a = frame(3, 100);
    appendFileSync(path, Buffer.concat([a, frame(2, 110)]));
    const index = new SubscriptionBacklogIndex();
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 5, oldest: 100 });
    truncateSync(path, a.length);
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 3, oldest: 100 });
    rmSync(path);
    expect(await index.segmentBacklog('s', path, undefined)).toEqual({ messages: 0, oldest: null });
  });
});
