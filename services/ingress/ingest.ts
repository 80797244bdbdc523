/**
 * Handling of one accepted request body: validate every event, publish the valid ones to their
 * types' topics, record the ledger, keep the rejected ones in the dead-letter area.
 *
 * The answer reports events as accepted only when the bus confirmed every publish of the request.
 * If any publish fails, the whole request fails (503) and nothing is reported accepted; events of
 * other types that did reach the bus are then duplicates-to-be when the producer retries, which
 * the dedup step removes.
 */
import type avro from 'avsc';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { type EventCatalog, topicFor } from '../../core/event-types.js';
import { hourStart } from '../../core/hours.js';
import type { Bus, OutgoingMessage } from '../../core/ports/bus.js';
import type { RejectionCode } from '../../core/rejection-codes.js';
import { BatchEncoder } from './batch-encoder.js';
import { boundedJson, type DeadLetterSink } from './dead-letters.js';
import type { IngressLedger, Reservation } from './ledger.js';
import type { IngressMetrics } from './metrics.js';
import {
  isRejection,
  OversizedEvent,
  type Rejection,
  UNKNOWN_TYPE_BUCKET,
  type ValidEvent,
  validateEvent,
} from './validate-event.js';

export interface IngestAnswer {
  readonly accepted: number;
  readonly rejected: { index: number; id: string | null; code: RejectionCode; path: string; message: string }[];
}

export interface IngestDeps {
  readonly bus: Bus;
  readonly catalog: EventCatalog;
  readonly clock: Clock;
  readonly ledger: IngressLedger;
  readonly deadLetters: DeadLetterSink;
  readonly metrics: IngressMetrics;
  readonly logger: Logger;
  readonly instanceId: string;
  readonly maxIdLength: number;
  readonly deadLetterEventBytes: number;
  /** Told the outcome of every publish, for readiness. */
  readonly busHealth: BusHealth;
}

/**
 * Whether the bus is taking publishes: unhealthy from a failed publish until a later one succeeds
 * or `quietMs` pass without a failure.
 */
export class BusHealth {
  private lastFailure = Number.NEGATIVE_INFINITY;
  private lastSuccess = Number.NEGATIVE_INFINITY;
  constructor(private readonly quietMs = 5000) {}
  succeeded(): void {
    this.lastSuccess = performance.now();
  }
  failed(): void {
    this.lastFailure = performance.now();
  }
  healthy(): boolean {
    return this.lastSuccess > this.lastFailure || performance.now() - this.lastFailure > this.quietMs;
  }
}

/**
 * Who sends a batch: the producer named by its key (travelling with every event as the `producer`
 * attribute) and the types the key may write (null: every type). null for the whole scope when the
 * ingress runs without keys (`ingress.auth: off`): events then carry no producer.
 */
export interface ProducerScope {
  readonly producer: string;
  readonly types: ReadonlySet<string> | null;
}

/** Attribute names of a bus message (the event envelope). */
export const ATTR = {
  type: 'type',
  id: 'id',
  producer: 'producer',
  version: 'version',
  arrivalTime: 'arrivalTime',
  instance: 'ingressInstance',
  sequence: 'sequence',
  clientTime: 'clientTime',
} as const;

export async function ingest(
  events: readonly unknown[],
  arrival: number,
  d: IngestDeps,
  scope: ProducerScope | null = null,
): Promise<IngestAnswer> {
  const hour = hourStart(arrival);
  const groups = new Map<string, ValidEvent[]>();
  const rejected: Rejection[] = [];
  const notAllowed: Rejection[] = [];
  const limits = { maxIdLength: d.maxIdLength };
  const encoder = new BatchEncoder(events.length * 256);
  const encode = (type: avro.Type, payload: unknown): Buffer => encoder.encode(type, payload);
  const allowed = scope?.types ?? null;
  for (let i = 0; i < events.length; i++) {
    if (allowed !== null) {
      const denied = typeNotAllowed(events[i], i, allowed);
      if (denied !== null) {
        notAllowed.push(denied);
        continue;
      }
    }
    const r = validateEvent(events[i], i, d.catalog, limits, encode);
    if (isRejection(r)) {
      rejected.push(r);
      continue;
    }
    const g = groups.get(r.type.name);
    if (g) g.push(r);
    else groups.set(r.type.name, [r]);
  }

  if (rejected.length > 0) recordRejections(events, rejected, arrival, d);
  // not dead-lettered: the area of a type the key may not write is not the key's to fill
  for (const r of notAllowed) {
    d.metrics.rejected.inc({
      type: d.catalog.get(r.deadLetterType) ? r.deadLetterType : UNKNOWN_TYPE_BUCKET,
      code: r.code,
    });
  }
  if (notAllowed.length > 0) {
    rejected.push(...notAllowed);
    rejected.sort((a, b) => a.index - b.index);
  }

  const arrivalText = String(arrival);
  const publishes: { type: string; reservation: Reservation; count: number; done: Promise<void> }[] = [];
  for (const [type, valid] of groups) {
    const reservation = d.ledger.reserve(type, hour, valid.length);
    const messages: OutgoingMessage[] = new Array(valid.length);
    for (let k = 0; k < valid.length; k++) {
      const e = valid[k] as ValidEvent;
      // literal keys (the names in ATTR) keep object creation on V8's fast path; with a producer
      // it is one more literal key, not a property added afterwards (another hidden class per event)
      const attributes: Record<string, string> =
        scope === null
          ? {
              type,
              id: e.id,
              version: String(e.version.version),
              arrivalTime: arrivalText,
              ingressInstance: d.instanceId,
              sequence: String(reservation.from + k),
            }
          : {
              type,
              id: e.id,
              version: String(e.version.version),
              arrivalTime: arrivalText,
              ingressInstance: d.instanceId,
              sequence: String(reservation.from + k),
              producer: scope.producer,
            };
      if (e.clientTime !== null) attributes.clientTime = e.clientTime;
      messages[k] = { data: e.data, attributes };
    }
    const started = performance.now();
    const done = d.bus.publish(topicFor(type), messages).then(() => {
      d.metrics.publishSeconds.observe({ type }, (performance.now() - started) / 1000);
    });
    publishes.push({ type, reservation, count: valid.length, done });
  }

  const settled = await Promise.allSettled(publishes.map((p) => p.done));
  let failure: unknown = null;
  for (const [i, s] of settled.entries()) {
    const p = publishes[i] as (typeof publishes)[number];
    if (s.status === 'fulfilled') d.ledger.confirm(p.reservation);
    else {
      d.ledger.abandon(p.reservation);
      failure ??= s.reason;
    }
  }
  if (failure !== null) {
    d.busHealth.failed();
    throw failure;
  }
  if (publishes.length > 0) d.busHealth.succeeded();

  let accepted = 0;
  for (const p of publishes) {
    accepted += p.count;
    d.metrics.accepted.inc({ type: p.type }, p.count);
  }
  return {
    accepted,
    rejected: rejected.map((r) => ({ index: r.index, id: r.id, code: r.code, path: r.path, message: r.message })),
  };
}

/** The rejection of an event whose type the producer's key may not write, or null. */
function typeNotAllowed(event: unknown, index: number, allowed: ReadonlySet<string>): Rejection | null {
  if (typeof event !== 'object' || event === null) return null;
  const { type, id } = event as { type?: unknown; id?: unknown };
  if (typeof type !== 'string' || allowed.has(type)) return null;
  return {
    index,
    id: typeof id === 'string' ? id : null,
    code: 'type_not_allowed',
    path: 'type',
    message: `type: the producer key may not write events of type ${JSON.stringify(type.slice(0, 100))}`,
    deadLetterType: type,
  };
}

/** What the dead-letter area keeps of a rejected event: bounded JSON, or an unparsed event's first bytes. */
function deadLetterJson(event: unknown, maxBytes: number): string {
  return event instanceof OversizedEvent ? event.head : boundedJson(event, maxBytes);
}

function recordRejections(events: readonly unknown[], rejected: Rejection[], arrival: number, d: IngestDeps): void {
  const counts = new Map<string, number>();
  d.deadLetters.add(
    rejected.map((r) => {
      const key = `${r.deadLetterType}\u0000${r.code}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return {
        type: r.deadLetterType,
        receivedAt: arrival,
        instanceId: d.instanceId,
        eventId: r.id,
        code: r.code,
        path: r.path,
        message: r.message,
        event: deadLetterJson(events[r.index], d.deadLetterEventBytes),
      };
    }),
  );
  for (const [key, n] of counts) {
    const [type, code] = key.split('\u0000') as [string, string];
    d.metrics.rejected.inc({ type, code }, n);
  }
}
