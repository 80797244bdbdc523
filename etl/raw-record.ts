/**
 * The record layout of raw and final files: the event envelope next to the payload, the payload
 * in the type's current schema (older writer versions resolved to it).
 *
 * ```
 * record <Type>Raw { string id; timestamp-millis arrivalTime; string ingressInstance; long sequence;
 *                    union { null, timestamp-millis } clientTime; int writerVersion; <Type> payload; }
 * ```
 * Avro encodes a record as its fields back to back, so a message written with the current version
 * is stored as encoded envelope + its payload bytes unchanged (checked, not re-encoded).
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
      { name: 'arrivalTime', type: ts },
      { name: 'ingressInstance', type: 'string' },
      { name: 'sequence', type: 'long' },
      { name: 'clientTime', type: ['null', ts], default: null },
      { name: 'writerVersion', type: 'int' },
      { name: 'payload', type: latestVersion(type).schema },
    ],
  };
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
    out.writeString(id);
    out.writeLong(arrivalTime);
    out.writeString(ingressInstance);
    out.writeLong(sequence);
    if (clientTime === null) out.writeLong(0);
    else {
      out.writeLong(1);
      out.writeLong(clientTime);
    }
    out.writeLong(writerVersion);
    out.writeBytes(payload);
    return { id, arrivalTime, ingressInstance, sequence, clientTime, writerVersion };
  }
}
