/**
 * Validation of one event of a batch: envelope first, then the payload against its type's schema
 * version. Produces either the encoded event or a rejection naming the field path and the rule.
 */
import type avro from 'avsc';
import { type EventCatalog, type EventType, latestVersion, type SchemaVersion } from '../../core/event-types.js';
import type { RejectionCode } from '../../core/rejection-codes.js';
import { appendPath, findSchemaProblem, jsonToAvro } from './describe-avro.js';

export interface ValidEvent {
  readonly index: number;
  readonly id: string;
  readonly type: EventType;
  readonly version: SchemaVersion;
  /** Client time as ISO-8601 (kept as data, never used for bucketing), or null. */
  readonly clientTime: string | null;
  /** The payload as Avro binary of its version's schema. */
  readonly data: Buffer;
}

export interface Rejection {
  readonly index: number;
  readonly id: string | null;
  readonly code: RejectionCode;
  readonly path: string;
  readonly message: string;
  /** The type name for the dead-letter area; `_unknown` when missing or unknown. */
  readonly deadLetterType: string;
}

/**
 * An event of a request body over `ingress.maxEventBytes`, in place of the event: it was never
 * parsed; its id and type are what could be read cheaply from its bytes, `head` its first bytes.
 */
export class OversizedEvent {
  constructor(
    readonly bytes: number,
    readonly limit: number,
    readonly id: string | null,
    readonly type: string | null,
    readonly head: string,
  ) {}
}

export const UNKNOWN_TYPE_BUCKET = '_unknown';
const ENVELOPE_FIELDS = new Set(['type', 'id', 'version', 'time', 'payload']);
const ID_PATTERN = /^[\x21-\x7e]+$/;

export interface ValidationLimits {
  readonly maxIdLength: number;
}

/** Encodes a valid payload; default: one buffer per event. */
export type PayloadEncoder = (type: avro.Type, payload: unknown) => Buffer;
const encodeAlone: PayloadEncoder = (type, payload) => type.toBuffer(payload);

export function validateEvent(
  raw: unknown,
  index: number,
  catalog: EventCatalog,
  limits: ValidationLimits,
  encode: PayloadEncoder = encodeAlone,
): ValidEvent | Rejection {
  if (raw instanceof OversizedEvent) {
    const known = raw.type === null ? undefined : catalog.get(raw.type);
    return reject(
      index,
      raw.id?.slice(0, limits.maxIdLength) ?? null,
      'event_too_large',
      '',
      `the event is ${raw.bytes} bytes of JSON; at most ${raw.limit} are allowed`,
      known ? known.name : UNKNOWN_TYPE_BUCKET,
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return reject(index, null, 'invalid_event', '', 'the event must be a JSON object', UNKNOWN_TYPE_BUCKET);
  }
  const e = raw as Record<string, unknown>;
  const idValue = e.id;
  const idForAnswer = typeof idValue === 'string' ? idValue.slice(0, limits.maxIdLength) : null;
  const typeName = e.type;
  const typeKnown = typeof typeName === 'string' ? catalog.get(typeName) : undefined;
  const bucket = typeKnown ? typeKnown.name : UNKNOWN_TYPE_BUCKET;

  for (const key in e) {
    if (!ENVELOPE_FIELDS.has(key)) {
      return reject(
        index,
        idForAnswer,
        'unknown_field',
        appendPath('', key),
        `not an envelope field (allowed: type, id, version, time, payload)`,
        bucket,
      );
    }
  }
  if (typeof typeName !== 'string' || typeName === '') {
    return reject(
      index,
      idForAnswer,
      'missing_type',
      'type',
      'required: the event type name as a string',
      UNKNOWN_TYPE_BUCKET,
    );
  }
  if (idValue === undefined || idValue === null) {
    return reject(index, null, 'missing_id', 'id', 'required: a producer-assigned unique id', bucket);
  }
  if (typeof idValue !== 'string' || idValue.length === 0) {
    return reject(index, null, 'invalid_id', 'id', 'must be a non-empty string', bucket);
  }
  if (idValue.length > limits.maxIdLength) {
    return reject(index, idForAnswer, 'invalid_id', 'id', `longer than ${limits.maxIdLength} characters`, bucket);
  }
  if (!ID_PATTERN.test(idValue)) {
    return reject(index, idForAnswer, 'invalid_id', 'id', 'only printable ASCII without spaces is allowed', bucket);
  }
  const id = idValue;
  if (typeKnown === undefined) {
    return reject(
      index,
      id,
      'unknown_type',
      'type',
      `no event type named ${JSON.stringify(typeName.slice(0, 64))} is registered`,
      UNKNOWN_TYPE_BUCKET,
    );
  }
  const type = typeKnown;
  if (type.status === 'retired' || type.status === 'retiring') {
    return reject(
      index,
      id,
      'retired_type',
      'type',
      `event type ${type.name} is ${type.status} and accepts no events`,
      bucket,
    );
  }

  let version: SchemaVersion;
  if (e.version === undefined || e.version === null) {
    version = latestVersion(type);
  } else if (typeof e.version !== 'number' || !Number.isInteger(e.version) || e.version < 1) {
    return reject(index, id, 'invalid_version', 'version', 'must be a positive integer', bucket);
  } else {
    const found = type.versions[e.version - 1];
    if (found === undefined) {
      return reject(
        index,
        id,
        'unknown_version',
        'version',
        `${type.name} has versions 1 to ${type.versions.length}`,
        bucket,
      );
    }
    version = found;
  }

  let clientTime: string | null = null;
  if (e.time !== undefined && e.time !== null) {
    clientTime = parseClientTime(e.time);
    if (clientTime === null) {
      return reject(
        index,
        id,
        'invalid_time',
        'time',
        'must be an ISO-8601 date-time string or epoch milliseconds',
        bucket,
      );
    }
  }

  const payload = e.payload;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return reject(index, id, 'missing_payload', 'payload', 'required: a JSON object matching the schema', bucket);
  }
  // JSON conventions (bytes as strings, own properties only, …) first, then avsc's own check
  const avroPayload = jsonToAvro(version.type, payload);
  if (avroPayload.problem !== null) {
    return reject(index, id, 'schema_violation', avroPayload.problem.path, avroPayload.problem.rule, bucket);
  }
  const value = avroPayload.value;
  if (!version.type.isValid(value, { noUndeclaredFields: true })) {
    const problem = findSchemaProblem(version.type, value) ?? { path: 'payload', rule: 'does not match the schema' };
    return reject(index, id, 'schema_violation', problem.path, problem.rule, bucket);
  }
  return { index, id, type, version, clientTime, data: encode(version.type, value) };
}

function reject(
  index: number,
  id: string | null,
  code: RejectionCode,
  path: string,
  rule: string,
  deadLetterType: string,
): Rejection {
  return { index, id, code, path, message: path ? `${path}: ${rule}` : rule, deadLetterType };
}

const ISO_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

function parseClientTime(v: unknown): string | null {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0 || v > 253402300799999) return null;
    return new Date(v).toISOString();
  }
  if (typeof v === 'string' && v.length <= 40 && ISO_PATTERN.test(v)) {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? null : new Date(ms).toISOString();
  }
  return null;
}

export function isRejection(r: ValidEvent | Rejection): r is Rejection {
  return 'code' in r;
}
