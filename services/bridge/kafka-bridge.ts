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
  /** Consumer group of the bridge (default `hourglass-bridge.<topic>`). */
  readonly groupId: string;
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

export class KafkaBridge {
  private readonly consumer: Consumer;
  private readonly messages: Counter<'topic' | 'outcome'>;
  private stopping = false;
  private readonly log: Logger;

  constructor(private readonly o: KafkaBridgeOptions) {
    this.log = o.logger.child({ component: 'bridge', topic: o.mapping.topic, type: o.mapping.type });
    const kafka = new Kafka({
      clientId: `${o.kafka.clientId}-bridge`,
      brokers: [...o.kafka.brokers],
      ssl: o.kafka.ssl,
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 5_000 },
      ...(o.kafka.sasl ? { sasl: o.kafka.sasl as SASLOptions } : {}),
    });
    this.consumer = kafka.consumer({
      groupId: o.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: o.kafka.sessionTimeoutRealMs,
      rebalanceTimeout: o.kafka.rebalanceTimeoutRealMs,
      heartbeatInterval: Math.max(100, Math.floor(o.kafka.sessionTimeoutRealMs / 5)),
      maxWaitTimeInMs: 250,
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

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.o.mapping.topic], fromBeginning: this.o.fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (p) => this.onBatch(p),
    });
    this.log.info({ group: this.o.groupId }, 'bridge consuming');
  }

  private async onBatch(p: EachBatchPayload): Promise<void> {
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
      await this.consumer.commitOffsets([
        { topic, partition: batch.partition, offset: String(BigInt(last.offset) + 1n) },
      ]);
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
    await this.consumer.disconnect();
  }
}
