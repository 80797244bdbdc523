/**
 * The embedded bus: a durable on-disk log in the data dir, for one machine.
 *
 * Layout under `<dataDir>/bus/`:
 * - `topics/<topic>/topic.json`, `topics/<topic>/segments/<writerId>-<n>.log` (frames, see frame.ts);
 *   a writer id is `<process writer id>.<random per topic writer>.l<lane>`, so segment names never
 *   repeat across topics
 * - `subscriptions/<sub>/subscription.json` (topic, ack deadline), `state.json` (acked positions),
 *   `consumer.lock` (the process consuming it)
 *
 * Durability: `publish` resolves after the frame was written to a segment file opened with O_DSYNC
 * (the write returns once the data is on stable storage, as write + fdatasync would; for a new
 * segment file its directory entry is fsynced first). A process crash or power loss after that
 * cannot lose the messages. Each process writes a topic through several lanes (default 2), each
 * a sequential log of its own, so several durable writes are in flight at once.
 *
 * Several processes: each publishing process appends only to its own segment files, so any number
 * of processes may publish to the same data dir. A subscription is consumed by one process at a
 * time (a lock the kernel releases when the holder dies, see consumer-lock.ts; a second consumer
 * gets SubscriptionBusy); different subscriptions may be consumed by different processes.
 *
 * Retention: a segment is deleted once it is finished and every subscription of its topic has
 * acked all of it (at once when the topic has no subscription). Unacked data is kept. Whether a
 * segment is finished is decided per topic: only that topic's writers are asked (see
 * segment-lifecycle.ts). Every deletion is logged with the cursors that allowed it.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../../core/clock.js';
import {
  BusClosed,
  HourglassError,
  InvalidName,
  PublishFailed,
  SubscriptionBusy,
  SubscriptionNotFound,
  TopicNotFound,
} from '../../../core/errors.js';
import {
  type Backlog,
  BUS_NAME_PATTERN,
  type Bus,
  type BusCapabilities,
  type MessageHandler,
  type OutgoingMessage,
  type SubscribeOptions,
  type Subscriber,
  type SubscriptionOptions,
} from '../../../core/ports/bus.js';
import { SubscriptionBacklogIndex } from './backlog-index.js';
import { acquireConsumerLock } from './consumer-lock.js';
import { encodeFrame } from './frame.js';
import { writeFileAtomic } from './fs-util.js';
import { type LocalWriters, listSegmentNames, whyFinished } from './segment-lifecycle.js';
import { scanHeaders } from './segment-scan.js';
import { EmbeddedSubscriber } from './subscriber.js';
import {
  loadMeta,
  loadState,
  type SegmentCursor,
  type SubscriptionMeta,
  type SubscriptionState,
} from './subscription-state.js';
import { TopicLanes } from './topic-writer.js';
import { newWriterId, parseSegmentName } from './writer-id.js';

export interface EmbeddedBusOptions {
  /** The process's data dir; the bus lives in `<dataDir>/bus`. */
  readonly dataDir: string;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** A writer starts a new segment file past this size. Default 64 MiB. */
  readonly segmentBytes?: number;
  /** Ack deadline of new subscriptions, real ms. Default 60 s. */
  readonly defaultAckDeadlineMs?: number;
  /** How often consumers look for data written by other processes, real ms. Default 100. */
  readonly pollIntervalMs?: number;
  /** How often consumers save acked positions, real ms. Default 200. */
  readonly stateSaveIntervalMs?: number;
  /** How often finished, fully acked segments are deleted, real ms. Default 5 s; 0 disables. */
  readonly retentionSweepMs?: number;
  /** Durable writes in flight at once per topic (each lane its own segment files). Default 2. */
  readonly writeLanes?: number;
  /** How long `subscribe` waits for a subscription held by another (e.g. dying) process, real ms. Default 5 s. */
  readonly consumerLockWaitMs?: number;
}

export class EmbeddedBus implements Bus {
  readonly backend = 'embedded';
  readonly capabilities: BusCapabilities;
  private readonly root: string;
  private readonly topicsDir: string;
  private readonly subsDir: string;
  private readonly writerId = newWriterId();
  private readonly writers = new Map<string, TopicLanes>();
  private readonly subscribers = new Map<string, { topic: string; subscriber: EmbeddedSubscriber }>();
  private readonly knownTopics = new Set<string>();
  /** What `backlog` has read of each subscription's segments, and its call in progress. */
  private readonly backlogIndexes = new Map<string, SubscriptionBacklogIndex>();
  private readonly backlogRuns = new Map<string, Promise<Backlog>>();
  private readonly logger: Logger;
  private readonly segmentBytes: number;
  private readonly writeLanes: number;
  private readonly defaultAckDeadlineMs: number;
  private readonly pollIntervalMs: number;
  private readonly stateSaveIntervalMs: number;
  private readonly sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: EmbeddedBusOptions) {
    this.root = join(options.dataDir, 'bus');
    this.topicsDir = join(this.root, 'topics');
    this.subsDir = join(this.root, 'subscriptions');
    // private (0700), as every folder of the data dir; files are 0600
    mkdirSync(this.topicsDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.subsDir, { recursive: true, mode: 0o700 });
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'embedded-bus' });
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.writeLanes = Math.max(1, options.writeLanes ?? 2);
    this.defaultAckDeadlineMs = options.defaultAckDeadlineMs ?? 60_000;
    this.capabilities = {
      exactBacklog: true,
      countsDeliveryAttempts: false,
      redeliveryWithinRealMs: this.defaultAckDeadlineMs,
    };
    this.pollIntervalMs = options.pollIntervalMs ?? 100;
    this.stateSaveIntervalMs = options.stateSaveIntervalMs ?? 200;
    const sweepMs = options.retentionSweepMs ?? 5000;
    if (sweepMs > 0) {
      this.sweepTimer = setInterval(() => {
        this.sweep().catch((err: unknown) => this.logger.error({ err }, 'retention sweep failed'));
      }, sweepMs);
      this.sweepTimer.unref();
    }
  }

  /**
   * What this process's writers know about one topic's segments. Only the topic's own writers
   * answer: a segment of this process that no live writer of the topic claims was written by an
   * earlier writer of the topic that has since closed, so it is finished.
   */
  private localWritersOf(topic: string): LocalWriters {
    const ownPrefix = `${this.writerId}.`;
    return {
      isFinishedLocally: (segment: string): boolean | undefined => {
        const parsed = parseSegmentName(segment);
        if (parsed === null || !parsed.writerId.startsWith(ownPrefix)) return undefined;
        return this.writers.get(topic)?.isFinished(segment) ?? true;
      },
    };
  }

  private topicDir(topic: string): string {
    return join(this.topicsDir, topic);
  }
  private segmentsDir(topic: string): string {
    return join(this.topicsDir, topic, 'segments');
  }
  private subDir(sub: string): string {
    return join(this.subsDir, sub);
  }

  async createTopic(topic: string): Promise<void> {
    this.assertOpen();
    checkName('topic', topic);
    const dir = this.topicDir(topic);
    await mkdir(join(dir, 'segments'), { recursive: true, mode: 0o700 });
    if (!existsSync(join(dir, 'topic.json'))) {
      await writeFileAtomic(
        join(dir, 'topic.json'),
        JSON.stringify({ name: topic, createdAt: this.options.clock.now() }),
      );
    }
    this.knownTopics.add(topic);
  }

  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    checkName('topic', topic);
    for (const meta of this.subscriptionMetas()) {
      if (meta.topic === topic) await this.deleteSubscription(meta.name);
    }
    const writer = this.writers.get(topic);
    if (writer) {
      this.writers.delete(topic);
      await writer.close();
    }
    this.knownTopics.delete(topic);
    await rm(this.topicDir(topic), { recursive: true, force: true });
  }

  async listTopics(): Promise<string[]> {
    const names = await readdir(this.topicsDir).catch(() => []);
    return names.filter((n) => existsSync(join(this.topicDir(n), 'topic.json'))).sort();
  }

  private topicExists(topic: string): boolean {
    if (this.knownTopics.has(topic)) return true;
    if (BUS_NAME_PATTERN.test(topic) && existsSync(join(this.topicDir(topic), 'topic.json'))) {
      this.knownTopics.add(topic);
      return true;
    }
    return false;
  }

  async createSubscription(subscription: string, topic: string, options: SubscriptionOptions = {}): Promise<void> {
    this.assertOpen();
    checkName('subscription', subscription);
    if (!this.topicExists(topic)) throw new TopicNotFound({ topic });
    const dir = this.subDir(subscription);
    const existing = loadMeta(dir);
    if (existing !== null) {
      if (existing.topic === topic) return;
      throw new InvalidName({
        kind: 'subscription',
        name: subscription,
        rule: `already exists on topic ${existing.topic}`,
      });
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Start after everything already in the topic: record each segment's current end.
    const state: SubscriptionState = { segments: {} };
    const segDir = this.segmentsDir(topic);
    for (const name of listSegmentNames(await readdir(segDir).catch(() => []))) {
      state.segments[name] = { offset: scanHeaders(join(segDir, name), 0).end, acked: {}, done: false };
    }
    await writeFileAtomic(join(dir, 'state.json'), JSON.stringify(state));
    const meta: SubscriptionMeta = {
      name: subscription,
      topic,
      createdAt: this.options.clock.now(),
      ackDeadlineMs: options.ackDeadlineMs ?? this.defaultAckDeadlineMs,
    };
    await writeFileAtomic(join(dir, 'subscription.json'), JSON.stringify(meta));
  }

  async deleteSubscription(subscription: string): Promise<void> {
    this.assertOpen();
    checkName('subscription', subscription);
    const live = this.subscribers.get(subscription);
    if (live) await live.subscriber.close();
    this.backlogIndexes.delete(subscription);
    await rm(this.subDir(subscription), { recursive: true, force: true });
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new BusClosed({ topic });
    if (messages.length === 0) return;
    if (!this.topicExists(topic)) throw new TopicNotFound({ topic });
    let writer = this.writers.get(topic);
    if (writer === undefined) {
      writer = new TopicLanes(this.segmentsDir(topic), this.writerId, this.segmentBytes, this.writeLanes, () =>
        this.notifySubscribers(topic),
      );
      this.writers.set(topic, writer);
    }
    try {
      await writer.append(encodeFrame(messages, this.options.clock.now()));
    } catch (err) {
      if (err instanceof HourglassError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(join(this.topicDir(topic), 'topic.json'))) {
        this.knownTopics.delete(topic);
        if (this.writers.get(topic) === writer) this.writers.delete(topic);
        writer
          .close()
          .catch((closeErr: unknown) => this.logger.warn({ err: closeErr, topic }, 'closing writer failed'));
        throw new TopicNotFound({ topic }, { cause: err });
      }
      throw new PublishFailed({ topic, messages: messages.length }, { cause: err });
    }
  }

  private notifySubscribers(topic: string): void {
    for (const s of this.subscribers.values()) if (s.topic === topic) s.subscriber.notify();
  }

  async subscribe(subscription: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<Subscriber> {
    this.assertOpen();
    const dir = this.subDir(subscription);
    const meta = loadMeta(dir);
    if (meta === null) throw new SubscriptionNotFound({ subscription });
    if (this.subscribers.has(subscription)) {
      throw new SubscriptionBusy({ subscription, holder: `this process (${process.pid})` });
    }
    const lock = await acquireConsumerLock(dir, subscription, this.writerId, this.options.consumerLockWaitMs ?? 5000);
    const subscriber = new EmbeddedSubscriber({
      name: subscription,
      subDir: dir,
      segmentsDir: this.segmentsDir(meta.topic),
      handler,
      maxOutstandingMessages: options.maxOutstandingMessages ?? 10_000,
      maxBatchMessages: options.maxBatchMessages ?? 1000,
      ackDeadlineMs: meta.ackDeadlineMs,
      pollIntervalMs: this.pollIntervalMs,
      stateSaveIntervalMs: this.stateSaveIntervalMs,
      localWriters: this.localWritersOf(meta.topic),
      logger: this.logger,
      onClose: async () => {
        this.subscribers.delete(subscription);
        await lock.release();
      },
    });
    this.subscribers.set(subscription, { topic: meta.topic, subscriber });
    subscriber.start();
    return subscriber;
  }

  /**
   * Unacked messages of a subscription and the oldest one's publish time. Reads only what was
   * appended since the last call, asynchronously (backlog-index.ts); calls for one subscription
   * take turns.
   */
  backlog(subscription: string): Promise<Backlog> {
    const previous = this.backlogRuns.get(subscription) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.readBacklog(subscription));
    this.backlogRuns.set(subscription, run);
    const forget = (): void => {
      if (this.backlogRuns.get(subscription) === run) this.backlogRuns.delete(subscription);
    };
    run.then(forget, forget);
    return run;
  }

  private async readBacklog(subscription: string): Promise<Backlog> {
    const dir = this.subDir(subscription);
    const meta = loadMeta(dir);
    if (meta === null) {
      this.backlogIndexes.delete(subscription);
      throw new SubscriptionNotFound({ subscription });
    }
    const live = this.subscribers.get(subscription);
    if (live) await live.subscriber.saveNow();
    const state = loadState(dir);
    const segDir = this.segmentsDir(meta.topic);
    let index = this.backlogIndexes.get(subscription);
    if (index === undefined) {
      index = new SubscriptionBacklogIndex();
      this.backlogIndexes.set(subscription, index);
    }
    let messages = 0;
    let oldest: number | null = null;
    const open = new Set<string>();
    for (const name of listSegmentNames(await readdir(segDir).catch(() => []))) {
      const cursor = state.segments[name];
      if (cursor?.done) continue;
      open.add(name);
      const b = await index.segmentBacklog(name, join(segDir, name), cursor);
      messages += b.messages;
      if (b.oldest !== null && (oldest === null || b.oldest < oldest)) oldest = b.oldest;
    }
    index.retain(open);
    return { messages, oldestUnackedPublishTime: oldest };
  }

  private subscriptionMetas(): SubscriptionMeta[] {
    const out: SubscriptionMeta[] = [];
    for (const name of safeReaddir(this.subsDir)) {
      const meta = loadMeta(this.subDir(name));
      if (meta) out.push(meta);
    }
    return out;
  }

  /**
   * Deletes finished segments that every subscription of their topic has fully acked. Each
   * deletion is logged with the topic, the segment, why it counts as finished and the cursors
   * that allowed it.
   */
  async sweep(): Promise<number> {
    if (this.closed) return 0;
    let deleted = 0;
    const metas = this.subscriptionMetas();
    for (const topic of await this.listTopics()) {
      const segDir = this.segmentsDir(topic);
      const names = listSegmentNames(safeReaddir(segDir));
      const local = this.localWritersOf(topic);
      const states = metas
        .filter((m) => m.topic === topic)
        .map((m) => {
          const live = this.subscribers.get(m.name)?.subscriber;
          const cursors = live
            ? { cursorOf: (s: string) => live.cursorOf(s) }
            : cursorsFrom(loadState(this.subDir(m.name)));
          return { subscription: m.name, ...cursors };
        });
      for (const name of names) {
        const reason = whyFinished(name, names, local);
        if (reason === null) continue;
        if (!states.every((s) => s.cursorOf(name)?.done === true)) continue;
        try {
          await unlink(join(segDir, name));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        deleted++;
        this.logger.info(
          {
            topic,
            segment: name,
            finished: reason,
            cursors: states.map((s) => ({ subscription: s.subscription, ...s.cursorOf(name) })),
          },
          'retention: deleted a finished, fully acked segment',
        );
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const s of [...this.subscribers.values()]) await s.subscriber.close();
    this.closed = true;
    for (const w of this.writers.values()) await w.close();
    this.writers.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new BusClosed();
  }
}

function cursorsFrom(state: SubscriptionState): { cursorOf(s: string): SegmentCursor | undefined } {
  return { cursorOf: (s: string) => state.segments[s] };
}

function checkName(kind: string, name: string): void {
  if (!BUS_NAME_PATTERN.test(name)) {
    throw new InvalidName({
      kind,
      name,
      rule: 'letters, digits, ".", "_" or "-", 3 to 200 characters, starting with a letter',
    });
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
