/**
 * The record layout of raw and final files: the event envelope next to the payload, the payload
 * in the type's current schema (older writer versions resolved to it).
 *
 * ```
 * record <Type>Raw { string id; union { null, string } producer = null;
 *                    timestamp-millis arrivalTime; string ingressInstance; long sequence;
 *                    union { null, timestamp-millis } clientTime; int writerVersion; <Type> payload; }
 * ```
 * Avro encodes a record as its fields back to back, so a message written with the current version
 * is stored as encoded envelope + its payload bytes unchanged (checked, not re-encoded).
 *
 * `producer` is the name of the producer key the event was sent with (the bus attribute
 * `producer`), null when it was sent without one (an ingress without keys, the Kafka bridge). It
 * follows the id so that the dedup key (producer, id) is one contiguous byte range of the record:
 * the encoded id and producer, each length-prefixed, so no two keys share their bytes. Raw files
 * written before the field existed are read as Avro schema resolution reads them (its default,
 * null); the dedup step inserts the null branch itself where only the field is missing.
 */

import type { Type } from 'avsc';
import avro from 'avsc';
import { type EventType, latestVersion, type SchemaVersion } from '../core/event-types.js';
import type { DeliveredMessage } from '../core/ports/bus.js';
import { ATTR } from '../services/ingress/ingest.js';
import type { AvroBuffer } from './avro-binary.js';
import { avroCheck } from './avro-check.js';

export interface RawEnvelope {
  readonly id: string;
  /** The producer key's producer name; null when the event came without one. */
  readonly producer: string | null;
  readonly arrivalTime: number;
  readonly ingressInstance: string;
  readonly sequence: number;
  readonly clientTime: number | null;
  readonly writerVersion: number;
}

export interface RawRecord extends RawEnvelope {
  readonly payload: Record<string, unknown>;
}

/** Codes for messages the consumer cannot store (dead-lettered, acked, counted). */
export type BadMessageCode = 'bad_envelope' | 'unknown_version' | 'undecodable';

export class BadMessage extends Error {
  constructor(
    readonly code: BadMessageCode,
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export function rawSchemaFor(type: EventType): object {
  const ts = { type: 'long', logicalType: 'timestamp-millis' };
  return {
    type: 'record',
    name: `${type.name}Raw`,
    namespace: 'hourglass.raw',
    doc: `${type.name} events with their delivery envelope.`,
    fields: [
      { name: 'id', type: 'string' },
      { name: 'producer', type: ['null', 'string'], default: null },
      { name: 'arrivalTime', type: ts },
      { name: 'ingressInstance', type: 'string' },
      { name: 'sequence', type: 'long' },
      { name: 'clientTime', type: ['null', ts], default: null },
      { name: 'writerVersion', type: 'int' },
      { name: 'payload', type: latestVersion(type).schema },
    ],
  };
}

/** Longest `producer` attribute stored (producer names are at most 100 characters). */
export const MAX_PRODUCER_LENGTH = 256;

/**
 * Encodes a raw record's envelope into `out` (the payload, in the type's current schema, follows
 * it). An empty producer is stored as null: events without a producer are one producer.
 */
export function writeEnvelope(
  out: AvroBuffer,
  e: Omit<RawEnvelope, 'producer'> & { readonly producer?: string | null },
): void {
  out.writeString(e.id);
  if (e.producer === undefined || e.producer === null || e.producer === '') out.writeLong(0);
  else {
    out.writeLong(1);
    out.writeString(e.producer);
  }
  out.writeLong(e.arrivalTime);
  out.writeString(e.ingressInstance);
  out.writeLong(e.sequence);
  if (e.clientTime === null) out.writeLong(0);
  else {
    out.writeLong(1);
    out.writeLong(e.clientTime);
  }
  out.writeLong(e.writerVersion);
}

/** Parses raw records; timestamps stay epoch-ms numbers. */
export function rawTypeFor(type: EventType): Type {
  return avro.Type.forSchema(rawSchemaFor(type) as avro.Schema);
}

/** Encodes bus messages of one event type into raw records. */
export class RawEncoder {
  readonly latest: SchemaVersion;
  private readonly check: (buf: Buffer) => void;
  private readonly versions: Map<number, { version: SchemaVersion; resolver: avro.Resolver | null }>;

  constructor(readonly type: EventType) {
    this.latest = latestVersion(type);
    this.check = avroCheck(this.latest.type);
    this.versions = new Map(
      type.versions.map((v) => [
        v.version,
        { version: v, resolver: v === this.latest ? null : this.latest.type.createResolver(v.type) },
      ]),
    );
  }

  /** Encodes the message's record into `out`; returns the envelope. Throws BadMessage. */
  encode(m: DeliveredMessage, out: AvroBuffer): RawEnvelope {
    const a = m.attributes;
    const id = a[ATTR.id];
    if (id === undefined || id === '') throw new BadMessage('bad_envelope', 'attributes.id', 'missing event id');
    const writerVersion = Number(a[ATTR.version]);
    const v = this.versions.get(writerVersion);
    if (v === undefined) {
      throw new BadMessage(
        'unknown_version',
        'attributes.version',
        `schema version ${JSON.stringify(a[ATTR.version])} of ${this.type.name} is not registered`,
      );
    }
    const arrivalTime = Number(a[ATTR.arrivalTime]);
    const sequence = Number(a[ATTR.sequence]);
    const ingressInstance = a[ATTR.instance];
    if (!Number.isSafeInteger(arrivalTime) || arrivalTime < 0) {
      throw new BadMessage('bad_envelope', 'attributes.arrivalTime', 'must be epoch milliseconds');
    }
    if (!Number.isSafeInteger(sequence) || sequence < 1) {
      throw new BadMessage('bad_envelope', 'attributes.sequence', 'must be a positive integer');
    }
    if (ingressInstance === undefined || ingressInstance === '') {
      throw new BadMessage('bad_envelope', 'attributes.ingressInstance', 'missing ingress instance');
    }
    const p = a[ATTR.producer];
    const producer = p === undefined || p === '' ? null : p;
    if (producer !== null && producer.length > MAX_PRODUCER_LENGTH) {
      throw new BadMessage('bad_envelope', 'attributes.producer', `longer than ${MAX_PRODUCER_LENGTH} characters`);
    }
    const ct = a[ATTR.clientTime];
    const clientTime = ct === undefined ? null : Date.parse(ct);
    if (clientTime !== null && Number.isNaN(clientTime)) {
      throw new BadMessage('bad_envelope', 'attributes.clientTime', 'must be an ISO-8601 date-time');
    }

    let payload: Buffer;
    try {
      if (v.resolver === null) {
        // stored verbatim: only checked to be well-formed
        this.check(m.data);
        payload = m.data;
      } else {
        const r = this.latest.type.decode(m.data, 0, v.resolver);
        if (r.offset !== m.data.length) throw new Error(r.offset < 0 ? 'truncated' : 'trailing bytes');
        payload = this.latest.type.toBuffer(r.value);
      }
    } catch (err) {
      throw new BadMessage(
        'undecodable',
        'data',
        `payload is not valid Avro of ${this.type.name} v${writerVersion}: ${(err as Error).message}`,
      );
    }
    const env = { id, producer, arrivalTime, ingressInstance, sequence, clientTime, writerVersion };
    writeEnvelope(out, env);
    out.writeBytes(payload);
    return env;
  }
}
