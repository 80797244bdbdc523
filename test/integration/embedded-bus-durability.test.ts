/**
 * Embedded-bus behaviour beyond the port contract: crash durability, torn tails, retention,
 * several processes on one data dir, acked positions across restarts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import type { DeliveredMessage } from '../../core/ports/bus.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';

const ROOT = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
const buses: EmbeddedBus[] = [];
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hourglass-bus-'));
  dirs.push(d);
  return d;
}

function open(dataDir: string, extra: Partial<ConstructorParameters<typeof EmbeddedBus>[0]> = {}): EmbeddedBus {
  const bus = new EmbeddedBus({ dataDir, clock: new SystemClock(), retentionSweepMs: 0, pollIntervalMs: 50, ...extra });
  buses.push(bus);
  return bus;
}

function publisher(
  dataDir: string,
  topic: string,
  prefix: string,
  count?: number,
): { child: ChildProcess; confirmed: string[]; done: Promise<number | null> } {
  const args = ['--import', 'tsx', 'test/fixtures/embedded-bus-publisher.ts', dataDir, topic, prefix];
  if (count !== undefined) args.push(String(count));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const confirmed: string[] = [];
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) confirmed.push(...line.split(' ').filter(Boolean));
  });
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, confirmed, done };
}

async function readAll(bus: EmbeddedBus, sub: string, ack = true): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const s = await bus.subscribe(sub, (ms: DeliveredMessage[]) => {
    for (const m of ms) {
      const id = m.attributes.id as string;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      if (ack) m.ack();
    }
  });
  let last = -1;
  for (let stable = 0; stable < 6; ) {
    await new Promise((r) => setTimeout(r, 100));
    if (seen.size === last) stable++;
    else stable = 0;
    last = seen.size;
  }
  await s.close();
  return seen;
}

describe('embedded bus durability', () => {
  it('keeps every confirmed message when the publishing process is killed with SIGKILL', async () => {
    const dir = await tempDir();
    const bus = open(dir);
    await bus.createTopic('t.crash');
    await bus.createSubscription('t.crash.s', 't.crash');
    const p = publisher(dir, 't.crash', 'k');
    while (p.confirmed.length < 2000) await new Promise((r) => setTimeout(r, 20));
    p.child.kill('SIGKILL');
    await p.done;
    const confirmed = [...p.confirmed];
    const seen = await readAll(bus, 't.crash.s');
    const missing = confirmed.filter((id) => !seen.has(id));
    expect(missing).toEqual([]);
  }, 30_000);

  it('ignores a torn tail of a dead writer and still delivers the intact frames', async () => {
    const dir = await tempDir();
    const bus = open(dir);
    await bus.createTopic('t.torn');
    await bus.createSubscription('t.torn.s', 't.torn');
    const p = publisher(dir, 't.torn', 'torn', 10);
    expect(await p.done).toBe(0);
    const segDir = join(dir, 'bus/topics/t.torn/segments');
    const segments = readdirSync(segDir);
    // a half-written frame header and garbage after the last intact frame of each segment
    for (const s of segments)
      appendFileSync(join(segDir, s), Buffer.from([0x48, 0x4c, 0x47, 0x31, 0xff, 0xff, 0, 0, 1, 2, 3]));
    const seen = await readAll(bus, 't.torn.s');
    expect(seen.size).toBe(10 * 20);
    expect((await bus.backlog('t.torn.s')).messages).toBe(0);
  }, 30_000);

  it('several processes publish to one data dir while this one consumes', async () => {
    const dir = await tempDir();
    const bus = open(dir);
    await bus.createTopic('t.multi');
    await bus.createSubscription('t.multi.s', 't.multi');
    const a = publisher(dir, 't.multi', 'a', 50);
    const b = publisher(dir, 't.multi', 'b', 50);
    const seen = new Map<string, number>();
    const s = await bus.subscribe('t.multi.s', (ms) => {
      for (const m of ms) {
        seen.set(m.attributes.id as string, (seen.get(m.attributes.id as string) ?? 0) + 1);
        m.ack();
      }
    });
    expect(await a.done).toBe(0);
    expect(await b.done).toBe(0);
    const deadline = Date.now() + 10_000;
    while (seen.size < 2000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await s.close();
    expect(seen.size).toBe(2 * 50 * 20);
    for (const id of [...a.confirmed, ...b.confirmed]) expect(seen.has(id)).toBe(true);
  }, 30_000);

  it('allows one consumer per subscription: a second one gets subscription_busy', async () => {
    const dir = await tempDir();
    const bus = open(dir);
    await bus.createTopic('t.lock');
    await bus.createSubscription('t.lock.s', 't.lock');
    const s = await bus.subscribe('t.lock.s', () => undefined);
    await expect(bus.subscribe('t.lock.s', () => undefined)).rejects.toMatchObject({ code: 'subscription_busy' });
    const other = open(dir);
    await expect(other.subscribe('t.lock.s', () => undefined)).resolves.toBeDefined(); // same pid: lock is ours
    await s.close();
  });

  it('a killed consumer frees its subscription at once: a successor started without waiting for its exit takes it', async () => {
    const dir = await tempDir();
    const bus = open(dir, { consumerLockWaitMs: 3000 });
    await bus.createTopic('t.kill');
    await bus.createSubscription('t.kill.s', 't.kill');
    for (let round = 0; round < 3; round++) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/fixtures/embedded-bus-consumer.ts', dir, 't.kill.s'],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise<void>((r) => child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && r()));
      // held by a live process: refused, after the bounded wait
      const quick = open(dir, { consumerLockWaitMs: 100 });
      await expect(quick.subscribe('t.kill.s', () => undefined)).rejects.toMatchObject({
        code: 'subscription_busy',
        message: expect.stringContaining(`pid ${child.pid}`),
      });
      child.kill('SIGKILL');
      // not waiting for the exit (nor for the parent to reap it)
      const s = await bus.subscribe('t.kill.s', () => undefined);
      await s.close();
      await exited;
    }
  }, 60_000);

  it('a lock file naming a live process that is not the holder (a reused pid) does not block', async () => {
    const dir = await tempDir();
    const bus = open(dir, { consumerLockWaitMs: 200 });
    await bus.createTopic('t.reuse');
    await bus.createSubscription('t.reuse.s', 't.reuse');
    // pid 1 is always alive: a pid file lock would think the subscription held
    writeFileSync(join(dir, 'bus/subscriptions/t.reuse.s/consumer.lock'), JSON.stringify({ pid: 1 }));
    const s = await bus.subscribe('t.reuse.s', () => undefined);
    await s.close();
  });

  it('keeps acked positions across a restart: acked messages are not delivered again, unacked are', async () => {
    const dir = await tempDir();
    let bus = open(dir);
    await bus.createTopic('t.restart');
    await bus.createSubscription('t.restart.s', 't.restart');
    await bus.publish(
      't.restart',
      Array.from({ length: 100 }, (_, i) => ({ data: Buffer.from([i]), attributes: { id: `r-${i}` } })),
    );
    const s = await bus.subscribe('t.restart.s', (ms) => {
      for (const m of ms) if (Number((m.attributes.id as string).slice(2)) < 60) m.ack();
    });
    await new Promise((r) => setTimeout(r, 300));
    await s.close();
    await bus.close();
    bus = open(dir);
    const seen = await readAll(bus, 't.restart.s');
    expect([...seen.keys()].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `r-${i + 60}`).sort());
  });

  it('retention deletes finished, fully acked segments and keeps unacked ones', async () => {
    const dir = await tempDir();
    const bus = open(dir, { segmentBytes: 64 * 1024 });
    await bus.createTopic('t.ret');
    await bus.createSubscription('t.ret.a', 't.ret');
    await bus.createSubscription('t.ret.b', 't.ret');
    const big = Buffer.alloc(8 * 1024, 1);
    for (let i = 0; i < 40; i++) await bus.publish('t.ret', [{ data: big, attributes: { id: `x-${i}` } }]);
    const segDir = join(dir, 'bus/topics/t.ret/segments');
    const before = readdirSync(segDir).length;
    expect(before).toBeGreaterThan(3);
    await readAll(bus, 't.ret.a');
    expect(await bus.sweep()).toBe(0); // subscription b has acked nothing yet
    await readAll(bus, 't.ret.b');
    const deleted = await bus.sweep();
    expect(deleted).toBeGreaterThan(0);
    expect(readdirSync(segDir).length).toBe(before - deleted);
    // what is left is only the lanes' current segments (not finished yet)
    expect(readdirSync(segDir).length).toBeLessThanOrEqual(2);
  });
});
