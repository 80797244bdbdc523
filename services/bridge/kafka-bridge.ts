/**
 * The bridge from a legacy Kafka topic: a consumer group reads the topic, each message becomes an
 * event of the mapped type (legacy-message.ts) and goes through the ingress's own validation,
 * publish and ledger path (`IngressService.ingest`), in batches.
 *
 * Offsets are committed per partition only after the batch is durably published (the ingest call
 * resolved): a crash re-reads from the last commit, and since the ids of re-read messages are the
 * same, dedup removes what was published twice. A message that cannot be decoded is dead-lettered
 * (`undecodable_message`) and one that fails validation is dead-lettered by the ingress path; both
 * are counted, and the offset moves past them. While the bus refuses a publish the batch is
 * retried with backoff and nothing is committed.
 *
 * The default consumer group names the topic and the type (`hourglass-bridge.<topic>.<type>`):
 * replicas of one mapping share it and split the partitions, while two mappings of one topic (to
 * two types) each read all of it. A mapping that ran under the earlier default, which named the
 * topic alone, keeps that group while the new one has no offsets, so a restart after an upgrade
 * neither reads the topic again nor skips what was not committed yet.
 */
import { type Consumer, type EachBatchPayload, Kafka, logLevel, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import type { KafkaSettings } from '../../core/config.js';
import type { EventCatalog } from '../../core/event-types.js';
import type { NewDeadLetter } from '../../core/ports/state-store.js';
import { boundedJson } from '../ingress/dead-letters.js';
import type { IngestAnswer } from '../ingress/ingest.js';
import { decodeLegacy, type LegacyMapping } from './legacy-message.js';

export interface BridgeTarget {
  readonly instanceId: string;
  ingest(events: readonly unknown[]): Promise<IngestAnswer>;
  readonly deadLetters: { add(items: NewDeadLetter[]): void };
}

export interface KafkaBridgeOptions {
  readonly kafka: Pick<
    KafkaSettings,
    'brokers' | 'clientId' | 'ssl' | 'sasl' | 'sessionTimeoutRealMs' | 'rebalanceTimeoutRealMs'
  >;
  readonly mapping: LegacyMapping;
  /** Consumer group of the bridge (default {@link bridgeGroup}). */
  readonly groupId: string;
  /**
   * The group a default-grouped bridge used before ({@link earlierBridgeGroup}): taken instead of
   * `groupId` when it has offsets committed on the topic and `groupId` has none.
   */
  readonly earlierGroupId?: string;
  readonly fromBeginning: boolean;
  readonly catalog: EventCatalog;
  readonly target: BridgeTarget;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Events per ingest call (the ingress's batch limit). */
  readonly maxEventsPerCall: number;
  readonly deadLetterEventBytes: number;
}

const MAX_BACKOFF_MS = 30_000;

/** A bridge's default consumer group: one per mapping of a topic to a type. */
export function bridgeGroup(topic: string, type: string): string {
  return `hourglass-bridge.${topic}.${type}`;
}

/** The default group before it named the type (kept where a bridge's offsets are). */
export function earlierBridgeGroup(topic: string): string {
  return `hourglass-bridge.${topic}`;
}

export class KafkaBridge {
  private readonly kafka: Kafka;
  private consumer: Consumer | null = null;
  /** The group the bridge reads in (known once started). */
  private group: string;
  private readonly messages: Counter<'topic' | 'outcome'>;
  private stopping = false;
  private readonly log: Logger;

  constructor(private readonly o: KafkaBridgeOptions) {
    this.log = o.logger.child({ component: 'bridge', topic: o.mapping.topic, type: o.mapping.type });
    this.group = o.groupId;
    this.kafka = new Kafka({
      clientId: `${o.kafka.clientId}-bridge`,
      brokers: [...o.kafka.brokers],
      ssl: o.kafka.ssl,
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 5_000 },
      ...(o.kafka.sasl ? { sasl: o.kafka.sasl as SASLOptions } : {}),
    });
    this.messages =
      (o.registry.getSingleMetric('hourglass_bridge_messages_total') as Counter<'topic' | 'outcome'> | undefined) ??
      new Counter({
        name: 'hourglass_bridge_messages_total',
        help: 'Messages of legacy Kafka topics handled by the bridge, by outcome (accepted, rejected, undecodable)',
        labelNames: ['topic', 'outcome'],
        registers: [o.registry],
      });
  }

  /** The consumer group the bridge reads in: `groupId`, or the earlier group it kept (once started). */
  get groupId(): string {
    return this.group;
  }

  async start(): Promise<void> {
    this.group = await this.chooseGroup();
    const o = this.o;
    const consumer = this.kafka.consumer({
      groupId: this.group,
      allowAutoTopicCreation: false,
      sessionTimeout: o.kafka.sessionTimeoutRealMs,
      rebalanceTimeout: o.kafka.rebalanceTimeoutRealMs,
      heartbeatInterval: Math.max(100, Math.floor(o.kafka.sessionTimeoutRealMs / 5)),
      maxWaitTimeInMs: 250,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [o.mapping.topic], fromBeginning: o.fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (p) => this.onBatch(consumer, p),
    });
    this.log.info({ group: this.group }, 'bridge consuming');
  }

  /** `groupId`, unless the earlier default group holds the offsets on the topic and it holds none. */
  private async chooseGroup(): Promise<string> {
    const earlier = this.o.earlierGroupId;
    if (earlier === undefined || earlier === this.o.groupId) return this.o.groupId;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const topic = this.o.mapping.topic;
      const committed = async (groupId: string) => {
        const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
        return (offsets?.partitions ?? []).some((p) => Number(p.offset) >= 0);
      };
      if ((await committed(this.o.groupId)) || !(await committed(earlier))) return this.o.groupId;
      this.log.warn(
        { group: earlier, defaultGroup: this.o.groupId },
        `the bridge keeps the consumer group ${earlier}, where its offsets are; the default is now ${this.o.groupId}, ` +
          'one per mapping: two mappings of this topic that both ran under the earlier default share it ' +
          '(and split the partitions) until one is started with --group',
      );
      return earlier;
    } finally {
      await admin.disconnect();
    }
  }

  private async onBatch(consumer: Consumer, p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const type = this.o.catalog.get(this.o.mapping.type);
    if (type === undefined) throw new Error(`event type ${this.o.mapping.type} is not registered`);
    const { topic } = this.o.mapping;
    for (let start = 0; start < batch.messages.length; start += this.o.maxEventsPerCall) {
      if (!p.isRunning() || p.isStale() || this.stopping) return;
      const chunk = batch.messages.slice(start, start + this.o.maxEventsPerCall);
      const events: unknown[] = [];
      const undecodable: NewDeadLetter[] = [];
      for (const m of chunk) {
        const d = decodeLegacy({ ...m, partition: batch.partition }, this.o.mapping, type);
        if ('event' in d) {
          events.push(d.event);
          continue;
        }
        undecodable.push({
          type: this.o.mapping.type,
          receivedAt: this.o.clock.now(),
          instanceId: this.o.target.instanceId,
          eventId: m.key?.toString('utf8') ?? null,
          code: 'undecodable_message',
          path: 'value',
          message: `${topic}[${batch.partition}]@${m.offset}: ${d.problem}`,
          event: boundedJson(
            { topic, partition: batch.partition, offset: m.offset, value: m.value?.toString('utf8') ?? null },
            this.o.deadLetterEventBytes,
          ),
        });
      }
      const answer = events.length > 0 ? await this.publish(events, p) : { accepted: 0, rejected: [] };
      if (answer === null) return;
      if (undecodable.length > 0) this.o.target.deadLetters.add(undecodable);
      this.messages.inc({ topic, outcome: 'accepted' }, answer.accepted);
      this.messages.inc({ topic, outcome: 'rejected' }, answer.rejected.length);
      this.messages.inc({ topic, outcome: 'undecodable' }, undecodable.length);
      const last = chunk[chunk.length - 1];
      if (last === undefined) continue;
      p.resolveOffset(last.offset);
      // durable on the bus (or dead-lettered): the offset may pass these messages now
      await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(BigInt(last.offset) + 1n) }]);
      await p.heartbeat();
    }
  }

  /** Publishes through the ingress path, retrying while the bus refuses; null when stopping. */
  private async publish(events: unknown[], p: EachBatchPayload): Promise<IngestAnswer | null> {
    let failures = 0;
    for (;;) {
      try {
        return await this.o.target.ingest(events);
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 20 === 0) {
          this.log.warn({ err, failures }, 'publishing bridged events failed: not committed, retried');
        }
        const wait = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 10));
        const until = Date.now() + wait;
        while (Date.now() < until) {
          if (!p.isRunning() || p.isStale() || this.stopping) return null;
          await new Promise((r) => setTimeout(r, Math.min(500, until - Date.now())));
          await p.heartbeat();
        }
      }
    }
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.consumer?.disconnect();
  }
}
