/**
 * Turning a message of a legacy Kafka topic into an event for the ingress path.
 *
 * - **JSON values**: an object with a `payload` object is an envelope (`id`, `version`, `time`,
 *   `payload`; a `type` must name the mapped type); any other object is the payload itself.
 * - **Avro values**: the payload in Avro binary of the mapped type's schema version (`--version`,
 *   default the latest), plain or with Confluent's framing (magic byte 0 and a 4-byte schema id,
 *   which is skipped).
 *
 * The event id is, in this order: the payload field `idField` (when configured), the envelope's
 * `id`, the record key, or `<topic>:<partition>:<offset>`, which stays the same when a message is
 * read again, so a re-read is a duplicate that dedup removes.
 */
import type { EventType, SchemaVersion } from '../../core/event-types.js';

export type LegacyFormat = 'json' | 'avro';

export interface LegacyMapping {
  readonly topic: string;
  readonly type: string;
  readonly format: LegacyFormat;
  /** A payload field holding the event id. */
  readonly idField: string | null;
  /** Avro: the schema version the values are written with (default: the latest). */
  readonly version: number | null;
}

export interface LegacyRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: string;
}

/** The event for the ingress, or why the message cannot be one (dead-lettered as undecodable). */
export type Decoded = { readonly event: Record<string, unknown> } | { readonly problem: string };

export function decodeLegacy(record: LegacyRecord, mapping: LegacyMapping, type: EventType): Decoded {
  if (record.value === null || record.value.length === 0) return { problem: 'the message has no value' };
  const fallbackId =
    record.key !== null && record.key.length > 0
      ? record.key.toString('utf8')
      : `${mapping.topic}:${record.partition}:${record.offset}`;
  const time = Number(record.timestamp);
  const clientTime = Number.isFinite(time) && time > 0 ? time : undefined;
  if (mapping.format === 'avro') return decodeAvro(record.value, mapping, type, fallbackId, clientTime);

  let value: unknown;
  try {
    value = JSON.parse(record.value.toString('utf8'));
  } catch (err) {
    return { problem: `not JSON: ${(err as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problem: 'the JSON value is not an object' };
  }
  const v = value as Record<string, unknown>;
  const isEnvelope = typeof v.payload === 'object' && v.payload !== null && !Array.isArray(v.payload);
  if (isEnvelope) {
    if (v.type !== undefined && v.type !== mapping.type) {
      return { problem: `the envelope's type ${JSON.stringify(v.type)} is not the mapped type ${mapping.type}` };
    }
    const payload = v.payload as Record<string, unknown>;
    return {
      event: {
        type: mapping.type,
        id: idOf(payload, mapping) ?? v.id ?? fallbackId,
        ...(v.version !== undefined ? { version: v.version } : {}),
        ...(v.time !== undefined ? { time: v.time } : clientTime !== undefined ? { time: clientTime } : {}),
        payload,
      },
    };
  }
  return {
    event: {
      type: mapping.type,
      id: idOf(v, mapping) ?? fallbackId,
      ...(clientTime !== undefined ? { time: clientTime } : {}),
      payload: v,
    },
  };
}

function idOf(payload: Record<string, unknown>, mapping: LegacyMapping): unknown {
  if (mapping.idField === null) return undefined;
  const id = payload[mapping.idField];
  return typeof id === 'number' ? String(id) : id;
}

function decodeAvro(
  value: Buffer,
  mapping: LegacyMapping,
  type: EventType,
  id: string,
  clientTime: number | undefined,
): Decoded {
  const version: SchemaVersion | undefined =
    mapping.version === null
      ? type.versions[type.versions.length - 1]
      : type.versions.find((v) => v.version === mapping.version);
  if (version === undefined) return { problem: `${type.name} has no schema version ${mapping.version}` };
  const body = value[0] === 0 && value.length > 5 ? value.subarray(5) : value;
  let payload: unknown;
  try {
    payload = version.type.fromBuffer(body);
  } catch (err) {
    if (body !== value) {
      // a plain Avro value can begin with a zero byte too
      try {
        payload = version.type.fromBuffer(value);
      } catch {
        return { problem: `not Avro of ${type.name} v${version.version}: ${(err as Error).message}` };
      }
    } else return { problem: `not Avro of ${type.name} v${version.version}: ${(err as Error).message}` };
  }
  const p = payload as Record<string, unknown>;
  return {
    event: {
      type: mapping.type,
      id: idOf(p, mapping) ?? id,
      version: version.version,
      ...(clientTime !== undefined ? { time: clientTime } : {}),
      payload,
    },
  };
}
