/**
 * The ETL consumer of one event type (DESIGN.md points 5–6): reads the type's subscription,
 * writes each message as a raw record into an Avro container file per (hour of arrival), and
 * commits files to the object store under unique names, on size or age. A message is acked only
 * after its file is committed and registered; until then a crash redelivers it (duplicates, which
 * the dedup step removes, never loss).
 *
 * Each type has its own consumer: its own subscription, buffers, memory budget and retry backoff,
 * so a flooded or failing type cannot hold up another. A file whose hour was closed in the
 * meantime is refused by the state store and goes to `late/` instead (counted, never mixed in).
 * Messages that cannot be stored (bad envelope, unknown version, undecodable payload) are
 * dead-lettered with the reason, counted and acked, so they never block the type.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { type EventType, subscriptionFor } from '../core/event-types.js';
import { hourStart } from '../core/hours.js';
import type { Bus, DeliveredMessage, Subscriber } from '../core/ports/bus.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { InstanceRanges, NewDeadLetter, StateStore } from '../core/ports/state-store.js';
import { rangesOf } from '../core/ranges.js';
import { type AvroCodec, ContainerWriter } from './avro-container.js';
import type { EtlMetrics } from './metrics.js';
import { hourPrefix, uniquePart } from './names.js';
import { BadMessage, RawEncoder, rawSchemaFor } from './raw-record.js';

export interface ConsumerConfig {
  readonly codec: AvroCodec;
  readonly deflateLevel: number;
  /** A file is committed once its records reach this many bytes (uncompressed). */
  readonly maxFileBytes: number;
  /** … or once its first record is this old (real ms). */
  readonly maxFileAgeRealMs: number;
  /** Bytes this type may hold in open files; beyond it the biggest file is committed early. */
  readonly maxBufferedBytes: number;
  /** Flow control: delivered-but-unacked messages this type may hold. */
  readonly maxOutstandingMessages: number;
  /** Longest wait between retries of a failed commit (real ms). */
  readonly retryMaxRealMs: number;
  /** Rejected messages kept per type in the dead-letter area. */
  readonly deadLetterMaxPerType: number;
}

export interface ConsumerDeps {
  readonly bus: Bus;
  readonly objects: ObjectStore;
  readonly state: StateStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: EtlMetrics;
  readonly config: ConsumerConfig;
  /** Unique id of this consumer process; part of every file name it writes. */
  readonly consumerId: string;
}

interface OpenFile {
  readonly kind: 'raw' | 'late';
  readonly hour: number;
  readonly writer: ContainerWriter;
  readonly messages: DeliveredMessage[];
  readonly sequences: Map<string, number[]>;
  readonly openedAt: number;
}

const BLOCK_BYTES = 256 * 1024;
/** Hours whose last receipt is remembered (the most recently received ones). */
const RECEIPTS_KEPT = 1000;

export class TypeConsumer {
  private readonly encoder: RawEncoder;
  private readonly schema: object;
  /** Open files by kind, then hour. */
  private readonly open = { raw: new Map<number, OpenFile>(), late: new Map<number, OpenFile>() };
  /** Hours this consumer learned are closed: their events go straight to `late/`. */
  private readonly closedHours = new Set<number>();
  private subscriber: Subscriber | null = null;
  private timer: NodeJS.Timeout | null = null;
  private commits = new Set<Promise<void>>();
  private failures = 0;
  private retryAt = 0;
  /** Clock time of the start, or of the first successful commit after failed ones. */
  private steady = 0;
  /** Per hour of arrival: when a message of it was last received (clock ms); recent hours only. */
  private readonly received = new Map<number, number>();
  /** Per hour of arrival: files of it being committed (their messages not acked yet). */
  private readonly committing = new Map<number, number>();
  private readonly log: Logger;
  private stopped = false;

  constructor(
    readonly type: EventType,
    private readonly d: ConsumerDeps,
  ) {
    this.encoder = new RawEncoder(type);
    this.schema = rawSchemaFor(type);
    this.log = d.logger.child({ type: type.name, consumer: d.consumerId });
  }

  async start(): Promise<void> {
    this.steady = this.d.clock.now();
    this.subscriber = await this.d.bus.subscribe(subscriptionFor(this.type.name), (batch) => this.receive(batch), {
      maxOutstandingMessages: this.d.config.maxOutstandingMessages,
      maxBatchMessages: 1000,
    });
    this.timer = setInterval(() => this.commitDue(), Math.min(250, this.d.config.maxFileAgeRealMs / 4));
    this.timer.unref();
    this.log.info({ subscription: subscriptionFor(this.type.name) }, 'consumer started');
  }

  /**
   * Clock time since which the consumer has been running with its commits succeeding (its start,
   * or its recovery from failed commits); now while a commit is failing.
   */
  steadySince(): number {
    return this.failures > 0 ? this.d.clock.now() : this.steady;
  }

  /**
   * What the consumer knows of an hour: when it last received a message of it (clock ms; null: not
   * since it started) and whether it holds messages of it not yet acked (open or committing files).
   */
  hourView(hour: number): { lastReceivedAt: number | null; holding: boolean } {
    const open = [this.open.raw.get(hour), this.open.late.get(hour)].some(
      (f) => f !== undefined && f.messages.length > 0,
    );
    return { lastReceivedAt: this.received.get(hour) ?? null, holding: open || (this.committing.get(hour) ?? 0) > 0 };
  }

  /** Open files' bytes (the type's memory in use). */
  bufferedBytes(): number {
    let n = 0;
    for (const f of this.files) n += f.writer.rawBytes;
    return n;
  }

  private receive(batch: DeliveredMessage[]): void {
    const bad: { m: DeliveredMessage; err: BadMessage }[] = [];
    const now = this.d.clock.now();
    for (const m of batch) {
      const arrival = Number(m.attributes.arrivalTime);
      const hour = Number.isSafeInteger(arrival) ? hourStart(arrival) : 0;
      this.noteReceived(hour, now);
      const kind = this.closedHours.has(hour) ? 'late' : 'raw';
      const file = this.fileFor(kind, hour);
      const target = file.writer.target;
      const before = target.pos;
      try {
        const env = this.encoder.encode(m, target);
        let seqs = file.sequences.get(env.ingressInstance);
        if (seqs === undefined) {
          seqs = [];
          file.sequences.set(env.ingressInstance, seqs);
        }
        seqs.push(env.sequence);
        file.messages.push(m);
        file.writer.commitRecord(target.pos - before);
        if (file.writer.rawBytes >= this.d.config.maxFileBytes) this.commit(file);
      } catch (err) {
        target.pos = before;
        if (!(err instanceof BadMessage)) throw err;
        bad.push({ m, err });
      }
    }
    if (bad.length > 0) this.deadLetter(bad);
    // messages are acked only at commit, so held messages count against flow control: commit
    // before they reach it (or the memory budget), or delivery would stall until the age trigger
    let held = 0;
    for (const f of this.files) held += f.messages.length;
    if (this.bufferedBytes() > this.d.config.maxBufferedBytes || held >= this.d.config.maxOutstandingMessages / 4) {
      const biggest = this.files.sort((a, b) => b.messages.length - a.messages.length)[0];
      if (biggest !== undefined) this.commit(biggest);
    }
  }

  private noteReceived(hour: number, now: number): void {
    if (this.received.get(hour) === now) return;
    this.received.delete(hour); // re-inserted last: the map stays in order of last receipt
    this.received.set(hour, now);
    if (this.received.size > RECEIPTS_KEPT) {
      const oldest = this.received.keys().next().value;
      if (oldest !== undefined) this.received.delete(oldest);
    }
  }

  private get files(): OpenFile[] {
    return [...this.open.raw.values(), ...this.open.late.values()];
  }

  private fileFor(kind: 'raw' | 'late', hour: number): OpenFile {
    let f = this.open[kind].get(hour);
    if (f === undefined) {
      f = {
        kind,
        hour,
        writer: new ContainerWriter(this.schema, {
          codec: this.d.config.codec,
          blockBytes: BLOCK_BYTES,
          deflateLevel: this.d.config.deflateLevel,
        }),
        messages: [],
        sequences: new Map(),
        openedAt: performance.now(),
      };
      this.open[kind].set(hour, f);
    }
    return f;
  }

  private commitDue(): void {
    const now = performance.now();
    if (now < this.retryAt) return;
    for (const f of this.files) {
      if (now - f.openedAt >= this.d.config.maxFileAgeRealMs) this.commit(f);
    }
  }

  /** Detaches the file and commits it in the background; acks on success, nacks after a backoff on failure. */
  private commit(file: OpenFile): void {
    this.open[file.kind].delete(file.hour);
    if (file.writer.count === 0) return;
    this.committing.set(file.hour, (this.committing.get(file.hour) ?? 0) + 1);
    const p = this.commitFile(file).finally(() => {
      this.commits.delete(p);
      const n = (this.committing.get(file.hour) ?? 1) - 1;
      if (n > 0) this.committing.set(file.hour, n);
      else this.committing.delete(file.hour);
    });
    this.commits.add(p);
  }

  private async commitFile(file: OpenFile): Promise<void> {
    const started = performance.now();
    const type = this.type.name;
    try {
      const body = await file.writer.finish();
      let kind = file.kind;
      let name = await this.put(kind, file.hour, body);
      const ranges: Record<string, [number, number][]> = {};
      for (const [instance, seqs] of file.sequences) ranges[instance] = rangesOf(seqs);
      const record = (k: 'raw' | 'late', n: string) => ({
        type,
        hour: file.hour,
        kind: k,
        name: n,
        events: file.writer.count,
        bytes: body.length,
        ranges: ranges as InstanceRanges,
        consumer: this.d.consumerId,
        committedAt: this.d.clock.now(),
      });
      if ((await this.d.state.registerFile(record(kind, name))) === 'hour_closed') {
        // the hour closed while the file was open: its events are late; the unregistered raw
        // object is ignored by everything and removed here
        this.closedHours.add(file.hour);
        const rawName = name;
        kind = 'late';
        name = await this.put(kind, file.hour, body);
        await this.d.state.registerFile(record(kind, name));
        await this.d.objects.delete(rawName);
      }
      for (const m of file.messages) m.ack();
      if (this.failures > 0) this.steady = this.d.clock.now();
      this.failures = 0;
      this.d.metrics.eventsCommitted.inc({ type, kind }, file.writer.count);
      this.d.metrics.filesCommitted.inc({ type, kind });
      this.d.metrics.commitSeconds.observe({ type }, (performance.now() - started) / 1000);
      if (kind === 'late') {
        this.d.metrics.lateEvents.inc({ type }, file.writer.count);
        this.log.warn({ hour: new Date(file.hour).toISOString(), events: file.writer.count, name }, 'late events kept');
      } else {
        this.log.debug({ name, events: file.writer.count, bytes: body.length }, 'raw file committed');
      }
    } catch (err) {
      this.failures++;
      const wait = Math.min(this.d.config.retryMaxRealMs, 250 * 2 ** Math.min(this.failures, 10));
      this.retryAt = performance.now() + wait;
      this.d.metrics.commitFailures.inc({ type });
      this.log.error(
        { err, hour: new Date(file.hour).toISOString(), retryInMs: wait },
        'file commit failed; redelivering',
      );
      // hold the messages (flow control stops delivery to this type) until the backoff ends
      await new Promise((r) => setTimeout(r, this.stopped ? 0 : wait).unref());
      for (const m of file.messages) m.nack();
    }
  }

  private async put(kind: 'raw' | 'late', hour: number, body: Buffer): Promise<string> {
    const name = `${hourPrefix(kind, this.type.name, hour)}${this.d.consumerId}-${uniquePart()}.avro`;
    await this.d.objects.put(name, body);
    return name;
  }

  private deadLetter(bad: { m: DeliveredMessage; err: BadMessage }[]): void {
    const now = this.d.clock.now();
    const items: NewDeadLetter[] = bad.map(({ m, err }) => ({
      type: this.type.name,
      receivedAt: now,
      instanceId: this.d.consumerId,
      eventId: m.attributes.id ?? null,
      code: err.code,
      path: err.path,
      message: err.message,
      event: JSON.stringify({ attributes: m.attributes, data: m.data.subarray(0, 2048).toString('base64') }),
    }));
    for (const { err } of bad) this.d.metrics.badMessages.inc({ type: this.type.name, code: err.code });
    this.log.warn({ count: bad.length, first: items[0]?.message }, 'bad messages dead-lettered');
    this.d.state.addDeadLetters(items, this.d.config.deadLetterMaxPerType).then(
      () => {
        for (const { m } of bad) m.ack();
      },
      (err: unknown) => {
        this.log.error({ err }, 'dead-lettering failed; redelivering');
        for (const { m } of bad) m.nack();
      },
    );
  }

  /** Commits what is buffered, waits for commits in flight, then stops delivery. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const f of this.files) this.commit(f);
    while (this.commits.size > 0) await Promise.allSettled([...this.commits]);
    await this.subscriber?.close();
    this.log.info('consumer stopped');
  }
}
