/**
 * Per-event rejection codes of the ingress. A rejected event does not fail its batch: it is
 * listed in the answer's `rejected` array with one of these codes, the field path and the rule.
 */
export const REJECTION_CODES = {
  invalid_event: 'the event is not a JSON object',
  missing_type: 'the event has no "type" string',
  unknown_type: 'no event type of that name is registered',
  retired_type: 'the event type is retired and accepts no more events',
  missing_id: 'the event has no "id"',
  invalid_id: 'the id is not a non-empty string of allowed characters within the length limit',
  unknown_version: 'the event type has no schema of that version',
  invalid_version: 'the version is not a positive integer',
  invalid_time: 'the client time is not an ISO-8601 string or epoch milliseconds',
  missing_payload: 'the event has no "payload" object',
  schema_violation: 'the payload does not satisfy the Avro schema',
  unknown_field: 'the event envelope has a field that is not part of the envelope',
  event_too_large: 'the event is more bytes of JSON than ingress.maxEventBytes allows (it was not parsed)',
  type_not_allowed: 'the producer key may not write events of this type (hourglass keys create --types)',
  undecodable_message: 'a message of a bridged Kafka topic is not JSON, or not Avro of the mapped type',
} as const;

export type RejectionCode = keyof typeof REJECTION_CODES;
