/**
 * A model-based property test of the embedded bus (fast-check commands). Random sequences of:
 * publish to a random topic, ack or nack a delivered message, let deliveries happen, run the
 * retention sweep, close and reopen the bus, and crash (the process's files are taken as a SIGKILL
 * would leave them, and a new bus opens on them). Segments are tiny, so every topic rolls all the
 * time. Checked:
 * - a sweep never deletes a segment holding a message that some subscription of its topic has not
 *   acked (read from the segment files themselves before the sweep);
 * - every publish that resolved is delivered, to every subscription of its topic, until acked.
 */
import { closeSync, cpSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import type { DeliveredMessage, Subscriber } from '../../core/ports/bus.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { decodeBody, FRAME_HEADER_BYTES, readFrameHeader } from '../../infra/bus/embedded/frame.js';

const TOPICS = ['t.a', 't.b', 't.c'] as const;
type Topic = (typeof TOPICS)[number];
const SUBSCRIPTIONS: Record<string, Topic> = { 't.a.s1': 't.a', 't.a.s2': 't.a', 't.b.s1': 't.b', 't.c.s1': 't.c' };

const roots: string[] = [];
afterAll(async () => {
  for (const d of roots.splice(0)) await rm(d, { recursive: true, force: true });
});

interface Model {
  /** Ids whose publish resolved, per topic. */
  readonly published: Map<Topic, string[]>;
}

/** The bus under test, its subscribers, and what they were handed. */
class Harness {
  bus!: EmbeddedBus;
  dir = '';
  private subs: Subscriber[] = [];
  /** Delivered, not acked or nacked yet. */
  pending: { sub: string; m: DeliveredMessage }[] = [];
  /** Per subscription: ids acked at least once. */
  readonly acked = new Map<string, Set<string>>(Object.keys(SUBSCRIPTIONS).map((s) => [s, new Set<string>()]));
  private next = 0;
  private generation = 0;

  constructor(
    private readonly root: string,
    private readonly segmentBytes: number,
    private readonly writeLanes: number,
  ) {}

  async setUp(): Promise<void> {
    this.dir = join(this.root, `g${this.generation}`);
    this.open();
    for (const t of TOPICS) await this.bus.createTopic(t);
    for (const [s, t] of Object.entries(SUBSCRIPTIONS)) await this.bus.createSubscription(s, t);
    await this.subscribeAll();
  }

  private open(): void {
    this.bus = new EmbeddedBus({
      dataDir: this.dir,
      clock: new SystemClock(),
      segmentBytes: this.segmentBytes,
      writeLanes: this.writeLanes,
      retentionSweepMs: 0,
      pollIntervalMs: 10,
      stateSaveIntervalMs: 10,
    });
  }

  private async subscribeAll(): Promise<void> {
    this.pending = [];
    this.subs = [];
    for (const sub of Object.keys(SUBSCRIPTIONS)) {
      this.subs.push(
        await this.bus.subscribe(sub, (ms) => {
          for (const m of ms) this.pending.push({ sub, m });
        }),
      );
    }
  }

  newId(): string {
    this.next += 1;
    return `m${this.next}`;
  }

  async closeAndReopen(): Promise<void> {
    for (const s of this.subs) await s.close();
    await this.bus.close();
    this.open();
    await this.subscribeAll();
  }

  /** What a SIGKILL leaves: the files as they are now. A new bus opens on a copy of them. */
  async crash(): Promise<void> {
    this.generation += 1;
    const next = join(this.root, `g${this.generation}`);
    cpSync(this.dir, next, { recursive: true });
    const old = { subs: this.subs, bus: this.bus };
    this.dir = next;
    this.open();
    await this.subscribeAll();
    for (const s of old.subs) await s.close();
    await old.bus.close();
  }

  async close(): Promise<void> {
    for (const s of this.subs) await s.close();
    await this.bus.close();
  }
}

/** Message ids in each segment file of a topic, read from the files. */
function idsBySegment(dataDir: string, topic: string): Map<string, string[]> {
  const dir = join(dataDir, 'bus/topics', topic, 'segments');
  const out = new Map<string, string[]>();
  for (const name of readdirSync(dir)) {
    const fd = openSync(join(dir, name), 'r');
    try {
      const buf = Buffer.alloc(fstatSync(fd).size);
      readSync(fd, buf, 0, buf.length, 0);
      const ids: string[] = [];
      let pos = 0;
      while (pos + FRAME_HEADER_BYTES <= buf.length) {
        const h = readFrameHeader(buf, pos);
        if (h === null || pos + FRAME_HEADER_BYTES + h.bodyLength > buf.length) break;
        const body = buf.subarray(pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + h.bodyLength);
        for (const d of decodeBody(body, h.count)) ids.push(d.attributes.id as string);
        pos += FRAME_HEADER_BYTES + h.bodyLength;
      }
      out.set(name, ids);
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

type Cmd = fc.AsyncCommand<Model, Harness>;

class Publish implements Cmd {
  constructor(
    readonly topic: Topic,
    readonly count: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, h: Harness): Promise<void> {
    const ids = Array.from({ length: this.count }, () => h.newId());
    await h.bus.publish(
      this.topic,
      ids.map((id) => ({ data: Buffer.alloc(40, id), attributes: { id } })),
    );
    model.published.get(this.topic)?.push(...ids);
  }
  toString(): string {
    return `publish(${this.topic}, ${this.count})`;
  }
}

class Settle implements Cmd {
  check(): boolean {
    return true;
  }
  async run(): Promise<void> {
    await new Promise((r) => setTimeout(r, 25));
  }
  toString(): string {
    return 'settle';
  }
}

class Answer implements Cmd {
  constructor(
    readonly pick: number,
    readonly ack: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_model: Model, h: Harness): Promise<void> {
    if (h.pending.length === 0) return;
    const [taken] = h.pending.splice(this.pick % h.pending.length, 1);
    if (taken === undefined) return;
    if (this.ack) {
      taken.m.ack();
      h.acked.get(taken.sub)?.add(taken.m.attributes.id as string);
    } else {
      taken.m.nack();
    }
  }
  toString(): string {
    return `${this.ack ? 'ack' : 'nack'}(${this.pick})`;
  }
}

class AckAll implements Cmd {
  check(): boolean {
    return true;
  }
  async run(_model: Model, h: Harness): Promise<void> {
    for (const { sub, m } of h.pending.splice(0)) {
      m.ack();
      h.acked.get(sub)?.add(m.attributes.id as string);
    }
  }
  toString(): string {
    return 'ackAll';
  }
}

class Sweep implements Cmd {
  check(): boolean {
    return true;
  }
  async run(_model: Model, h: Harness): Promise<void> {
    const before = new Map(TOPICS.map((t) => [t, idsBySegment(h.dir, t)]));
    await h.bus.sweep();
    for (const topic of TOPICS) {
      const left = new Set(readdirSync(join(h.dir, 'bus/topics', topic, 'segments')));
      const subs = Object.keys(SUBSCRIPTIONS).filter((s) => SUBSCRIPTIONS[s] === topic);
      for (const [segment, ids] of before.get(topic) ?? []) {
        if (left.has(segment)) continue;
        for (const id of ids) {
          for (const s of subs) {
            if (!h.acked.get(s)?.has(id)) {
              throw new Error(`swept ${topic}/${segment} holding ${id}, which ${s} has not acked`);
            }
          }
        }
      }
    }
  }
  toString(): string {
    return 'sweep';
  }
}

class Reopen implements Cmd {
  check(): boolean {
    return true;
  }
  async run(_model: Model, h: Harness): Promise<void> {
    await h.closeAndReopen();
  }
  toString(): string {
    return 'closeAndReopen';
  }
}

class Crash implements Cmd {
  check(): boolean {
    return true;
  }
  async run(_model: Model, h: Harness): Promise<void> {
    await h.crash();
  }
  toString(): string {
    return 'crash';
  }
}

/** One busy topic and two quiet ones, so that topics roll at different moments. */
const topic = fc.oneof(
  { arbitrary: fc.constant<Topic>('t.a'), weight: 5 },
  { arbitrary: fc.constant<Topic>('t.b'), weight: 1 },
  { arbitrary: fc.constant<Topic>('t.c'), weight: 1 },
);
const publish = fc.tuple(topic, fc.integer({ min: 1, max: 4 })).map(([t, n]) => new Publish(t, n));
/** Publishes weigh more than the rest. */
const commands = [
  publish,
  publish,
  publish,
  fc.constant(new Settle()),
  fc.constant(new Settle()),
  fc.tuple(fc.nat(), fc.boolean()).map(([k, ack]) => new Answer(k, ack)),
  fc.tuple(fc.nat(), fc.constant(true)).map(([k, ack]) => new Answer(k, ack)),
  fc.constant(new AckAll()),
  fc.constant(new Sweep()),
  fc.constant(new Reopen()),
  fc.constant(new Crash()),
];

/** After the commands: keep acking whatever is delivered; every resolved publish must arrive. */
async function drainAndCheck(model: Model, h: Harness): Promise<void> {
  const missing = (): string[] => {
    const out: string[] = [];
    for (const [s, topic] of Object.entries(SUBSCRIPTIONS)) {
      const acked = h.acked.get(s) as Set<string>;
      for (const id of model.published.get(topic) ?? []) if (!acked.has(id)) out.push(`${s}:${id}`);
    }
    return out;
  };
  const deadline = Date.now() + 10_000;
  while (missing().length > 0 && Date.now() < deadline) {
    await new AckAll().run(model, h);
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Sweep().run(model, h);
  expect(missing()).toEqual([]);
}

describe('embedded bus (model-based)', () => {
  it('delivers every resolved publish until acked and never sweeps an unacked segment', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hourglass-bus-model-'));
    roots.push(root);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(96, 300, 1200),
        fc.integer({ min: 1, max: 3 }),
        fc.commands(commands, { maxCommands: 80, size: 'max' }),
        async (segmentBytes, lanes, cmds) => {
          run += 1;
          const h = new Harness(join(root, `r${run}`), segmentBytes, lanes);
          await h.setUp();
          const model: Model = { published: new Map(TOPICS.map((t) => [t, []])) };
          try {
            await fc.asyncModelRun(() => ({ model, real: h }), cmds);
            await drainAndCheck(model, h);
          } finally {
            await h.close();
            await rm(join(root, `r${run}`), { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 30 },
    );
  }, 120_000);
});
