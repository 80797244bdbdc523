/**
 * Several topics written at once by one process: each topic's segments roll many times, at
 * different moments, while subscriptions read and retention sweeps run. Every acknowledged publish
 * must be delivered, whatever another topic's writers are doing. (A segment of one topic used to be
 * judged finished by another topic's writer whose segment had the same name: the live segment was
 * then swept and later appends vanished.)
 */
import { readdirSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import type { DeliveredMessage, Subscriber } from '../../core/ports/bus.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';

const dirs: string[] = [];
const buses: EmbeddedBus[] = [];
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hourglass-topics-'));
  dirs.push(d);
  return d;
}

/** A logger whose records are kept, to check what the bus says it did. */
function recordingLogger(): { logger: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => records.push(JSON.parse(line)) });
  return { logger, records };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}

describe('embedded bus with several topics', () => {
  it('delivers every acknowledged message of every topic while one topic rolls and sweeps run', async () => {
    const dir = await tempDir();
    const { logger, records } = recordingLogger();
    const bus = new EmbeddedBus({
      dataDir: dir,
      logger,
      clock: new SystemClock(),
      segmentBytes: 4096,
      retentionSweepMs: 20,
      pollIntervalMs: 20,
    });
    buses.push(bus);
    const topics = ['t.a', 't.b', 't.c'];
    const seen = new Map<string, Set<string>>();
    const subs: Subscriber[] = [];
    for (const t of topics) {
      await bus.createTopic(t);
      await bus.createSubscription(`${t}.s`, t);
      const got = new Set<string>();
      seen.set(t, got);
      subs.push(
        await bus.subscribe(`${t}.s`, (ms: DeliveredMessage[]) => {
          for (const m of ms) {
            got.add(m.attributes.id as string);
            m.ack();
          }
        }),
      );
    }
    const published = new Map<string, string[]>(topics.map((t) => [t, []]));
    const body = Buffer.alloc(300, 7);
    // t.a rolls every ~12 messages; t.b and t.c write slowly, so their live segments share names
    // with t.a's finished ones for a long time
    const writeTopic = async (topic: string, n: number, pauseEvery: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const id = `${topic}-${i}`;
        await bus.publish(topic, [{ data: body, attributes: { id } }]);
        (published.get(topic) as string[]).push(id);
        if (i % pauseEvery === 0) await new Promise((r) => setTimeout(r, 5));
      }
    };
    await Promise.all([writeTopic('t.a', 1500, 50), writeTopic('t.b', 150, 2), writeTopic('t.c', 300, 3)]);
    await until(() => topics.every((t) => seen.get(t)?.size === published.get(t)?.length), 15_000);
    for (const s of subs) await s.close();
    for (const t of topics) {
      const missing = (published.get(t) as string[]).filter((id) => !seen.get(t)?.has(id));
      expect({ topic: t, missing: missing.length }).toEqual({ topic: t, missing: 0 });
    }
    // every topic rolled and was swept several times, each deletion logged with its reason and cursors
    const deletions = records.filter((r) => r.msg === 'retention: deleted a finished, fully acked segment');
    for (const t of topics) expect(deletions.filter((r) => r.topic === t).length).toBeGreaterThan(2);
    for (const r of deletions) {
      expect(r.finished).toBe('local-writer-moved-on');
      expect(r.cursors).toEqual([expect.objectContaining({ subscription: `${r.topic as string}.s`, done: true })]);
    }
  }, 60_000);

  it('no two topics of one process name a segment alike', async () => {
    const dir = await tempDir();
    const bus = new EmbeddedBus({ dataDir: dir, clock: new SystemClock(), retentionSweepMs: 0 });
    buses.push(bus);
    for (const t of ['t.x', 't.y']) {
      await bus.createTopic(t);
      await bus.publish(t, [{ data: Buffer.from('a'), attributes: { id: t } }]);
    }
    const x = readdirSync(join(dir, 'bus/topics/t.x/segments'));
    const y = readdirSync(join(dir, 'bus/topics/t.y/segments'));
    expect(x).toHaveLength(1);
    expect(y).toHaveLength(1);
    expect(x[0]).not.toBe(y[0]);
  });

  it('fails a publish whose segment was deleted while being written, then writes a new segment', async () => {
    const dir = await tempDir();
    const bus = new EmbeddedBus({ dataDir: dir, clock: new SystemClock(), retentionSweepMs: 0, writeLanes: 1 });
    buses.push(bus);
    await bus.createTopic('t.gone');
    await bus.createSubscription('t.gone.s', 't.gone');
    await bus.publish('t.gone', [{ data: Buffer.from('1'), attributes: { id: 'one' } }]);
    const segDir = join(dir, 'bus/topics/t.gone/segments');
    for (const f of readdirSync(segDir)) unlinkSync(join(segDir, f));
    await expect(bus.publish('t.gone', [{ data: Buffer.from('2'), attributes: { id: 'two' } }])).rejects.toMatchObject({
      code: 'bus_unavailable',
      httpStatus: 503,
    });
    await bus.publish('t.gone', [{ data: Buffer.from('3'), attributes: { id: 'three' } }]);
    const got: string[] = [];
    const s = await bus.subscribe('t.gone.s', (ms) => {
      for (const m of ms) {
        got.push(m.attributes.id as string);
        m.ack();
      }
    });
    await until(() => got.includes('three'), 5000);
    await s.close();
    expect(got).toEqual(['three']);
  });
});
