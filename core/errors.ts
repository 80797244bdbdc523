/**
 * One error base for the whole product. Every error has a stable `code` (documented in the
 * README's error table), the HTTP status a service answers with, and a `retriable` flag that
 * retry helpers read (and nothing else). Adapter errors are wrapped at one seam, keeping the
 * cause: `throw new PublishFailed({ topic }, { cause })`.
 */
export type ErrorContext = Readonly<Record<string, string | number | boolean | undefined>>;

export abstract class HourglassError extends Error {
  abstract readonly code: string;
  abstract readonly httpStatus: number;
  abstract readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.context = context;
  }

  toJSON(): { code: string; message: string; retriable: boolean } {
    return { code: this.code, message: this.message, retriable: this.retriable };
  }
}

/** The bus does not know the topic. Not retriable: the topic must be provisioned first. */
export class TopicNotFound extends HourglassError {
  readonly code = 'topic_not_found';
  readonly httpStatus = 503;
  readonly retriable = false;
  constructor(context: { topic: string }, options?: { cause?: unknown }) {
    super(`topic ${context.topic} does not exist`, context, options);
  }
}

/** The bus does not know the subscription. */
export class SubscriptionNotFound extends HourglassError {
  readonly code = 'subscription_not_found';
  readonly httpStatus = 503;
  readonly retriable = false;
  constructor(context: { subscription: string }, options?: { cause?: unknown }) {
    super(`subscription ${context.subscription} does not exist`, context, options);
  }
}

/** Another consumer already holds the subscription (embedded bus: one consumer process per subscription). */
export class SubscriptionBusy extends HourglassError {
  readonly code = 'subscription_busy';
  readonly httpStatus = 409;
  readonly retriable = true;
  constructor(context: { subscription: string; holder: string }, options?: { cause?: unknown }) {
    super(`subscription ${context.subscription} is held by ${context.holder}`, context, options);
  }
}

/** The bus could not make a batch durable. Nothing of the batch may be reported as accepted. */
export class PublishFailed extends HourglassError {
  readonly code = 'bus_unavailable';
  readonly httpStatus = 503;
  readonly retriable = true;
  constructor(context: { topic: string; messages?: number }, options?: { cause?: unknown }) {
    super(`publish to ${context.topic} failed${causeText(options?.cause)}`, context, options);
  }
}

/** The bus is closed or closing. */
export class BusClosed extends HourglassError {
  readonly code = 'bus_closed';
  readonly httpStatus = 503;
  readonly retriable = true;
  constructor(context: ErrorContext = {}) {
    super('the bus is closed', context);
  }
}

/** A name (topic, subscription, event type) breaks the naming rules. */
export class InvalidName extends HourglassError {
  readonly code = 'invalid_name';
  readonly httpStatus = 400;
  readonly retriable = false;
  constructor(context: { kind: string; name: string; rule: string }) {
    super(`invalid ${context.kind} name ${JSON.stringify(context.name)}: ${context.rule}`, context);
  }
}

/** The state store failed (disk, lock, corruption). */
export class StateStoreFailed extends HourglassError {
  readonly code = 'state_store_unavailable';
  readonly httpStatus = 503;
  readonly retriable = true;
  constructor(context: { operation: string }, options?: { cause?: unknown }) {
    super(`state store ${context.operation} failed${causeText(options?.cause)}`, context, options);
  }
}

/** Configuration is invalid; the process refuses to start. */
export class ConfigInvalid extends HourglassError {
  readonly code = 'config_invalid';
  readonly httpStatus = 500;
  readonly retriable = false;
  constructor(context: { key: string; rule: string }) {
    super(`configuration ${context.key}: ${context.rule}`, context);
  }
}

/**
 * Why a registry change is refused, by a stable rule name (README "Event types"): where (a field
 * path such as `where.country`, `the schema`, or a definition field such as `name`), which rule,
 * and a message saying what to change.
 */
export interface Refusal {
  readonly path: string;
  readonly rule: string;
  readonly message: string;
}

/**
 * An event type definition or schema file under schemas/ is invalid. `refusals` name each rule a
 * schema or name breaks (recursive_type, name_conflict, …), when the cause is one of those rules.
 */
export class EventTypeInvalid extends HourglassError {
  readonly code = 'event_type_invalid';
  readonly httpStatus = 400;
  readonly retriable = false;
  readonly refusals: readonly Refusal[];
  constructor(
    context: { type: string; file?: string; rule: string },
    options?: { cause?: unknown; refusals?: readonly Refusal[] },
  ) {
    super(
      `event type ${context.type}${context.file ? ` (${context.file})` : ''}: ${context.rule}`,
      context,
      options !== undefined && 'cause' in options ? { cause: options.cause } : undefined,
    );
    this.refusals = options?.refusals ?? [];
  }

  override toJSON(): { code: string; message: string; retriable: boolean; refusals?: readonly Refusal[] } {
    return { ...super.toJSON(), ...(this.refusals.length > 0 ? { refusals: this.refusals } : {}) };
  }
}

/**
 * A request-level answer of the ingress (the whole request is refused). Per-event rejections are
 * not errors: they are {@link import('./rejection-codes.js').RejectionCode}s in the 200 answer.
 */
export class RequestRejected extends HourglassError {
  readonly code: RequestErrorCode;
  readonly httpStatus: number;
  readonly retriable: boolean;
  constructor(code: RequestErrorCode, message: string, context: ErrorContext = {}) {
    super(message, context);
    this.code = code;
    this.httpStatus = REQUEST_ERRORS[code].status;
    this.retriable = REQUEST_ERRORS[code].retriable;
  }
}

/** Request-level error codes of the ingress, with their HTTP status. */
export const REQUEST_ERRORS = {
  malformed_json: { status: 400, retriable: false },
  invalid_encoding: { status: 400, retriable: false },
  invalid_body: { status: 400, retriable: false },
  invalid_query: { status: 400, retriable: false },
  empty_batch: { status: 400, retriable: false },
  batch_too_large: { status: 413, retriable: false },
  body_too_large: { status: 413, retriable: false },
  unsupported_media_type: { status: 415, retriable: false },
  request_timeout: { status: 408, retriable: true },
  overloaded: { status: 429, retriable: true },
  not_found: { status: 404, retriable: false },
  not_ready: { status: 503, retriable: true },
  internal_error: { status: 500, retriable: true },
} as const satisfies Record<string, { status: number; retriable: boolean }>;

export type RequestErrorCode = keyof typeof REQUEST_ERRORS;

function causeText(cause: unknown): string {
  if (cause instanceof Error) return `: ${cause.message}`;
  return '';
}

/** All error codes that can reach a user, for the docs check. */
export function allErrorCodes(): string[] {
  const classCodes = [
    new TopicNotFound({ topic: 't' }).code,
    new SubscriptionNotFound({ subscription: 's' }).code,
    new SubscriptionBusy({ subscription: 's', holder: 'h' }).code,
    new PublishFailed({ topic: 't' }).code,
    new BusClosed().code,
    new InvalidName({ kind: 'k', name: 'n', rule: 'r' }).code,
    new StateStoreFailed({ operation: 'o' }).code,
    new ConfigInvalid({ key: 'k', rule: 'r' }).code,
    new EventTypeInvalid({ type: 't', rule: 'r' }).code,
    new LedgerSealed({ instanceId: 'i', type: 't', hour: 0 }).code,
    new LeaseLost({ kind: 'dedup', type: 't', partition: 0, holder: 'h', token: 1 }).code,
    new ObjectExists({ name: 'n' }).code,
    new ObjectNotFound({ name: 'n' }).code,
    new ObjectStoreFailed({ operation: 'o', name: 'n' }).code,
    new RegistryConflict({ type: 't', expectedRevision: 0, reason: 'r' }).code,
    new Unauthorized({ reason: 'r' }).code,
    new RateLimited({ key: 'k', producer: 'p', events: 1, ratePerSec: 1, retryAfterSeconds: 1 }).code,
    new OriginNotAllowed({ key: 'k', origin: 'o' }).code,
    new HostNotAllowed({ host: 'h' }).code,
    new Forbidden({ owner: 'o', type: 't', action: 'a' }).code,
    new QuotaExceeded({ owner: 'o', type: 't', count: 1, limit: 1 }).code,
    new TypeNotFound({ type: 't' }).code,
    new ProducerKeyInvalid({ rule: 'r' }).code,
    new ProducerKeyNotFound({ key: 'k' }).code,
    new RegistryRefused('type_exists', 'm', { type: 't' }).code,
    new RegistryRefused('type_not_active', 'm', { type: 't' }).code,
    new RegistryRefused('schema_incompatible', 'm', { type: 't' }).code,
    new AlertDeliveryFailed({ sink: 's', reason: 'r' }, false).code,
  ];
  return [...new Set([...classCodes, ...Object.keys(REQUEST_ERRORS)])];
}

/** A sealed ledger entry was about to be modified: a bug or a second instance using the same id. */
export class LedgerSealed extends HourglassError {
  readonly code = 'ledger_sealed';
  readonly httpStatus = 500;
  readonly retriable = false;
  constructor(context: { instanceId: string; type: string; hour: number }) {
    super(
      `ledger of ${context.instanceId} for ${context.type} hour ${new Date(context.hour).toISOString()} is sealed`,
      context,
    );
  }
}

/** A job's claim was taken over by another worker (its lease ended): the change was not made. */
export class LeaseLost extends HourglassError {
  readonly code = 'lease_lost';
  readonly httpStatus = 409;
  readonly retriable = false;
  constructor(context: { kind: string; type: string; partition: number; holder: string; token: number }) {
    super(
      `the ${context.kind} job of ${context.type} ${new Date(context.partition).toISOString()} is no longer held by ${context.holder} (claim ${context.token}): another worker took it over`,
      context,
    );
  }
}

/** Objects are write-once: the name already exists. */
export class ObjectExists extends HourglassError {
  readonly code = 'object_exists';
  readonly httpStatus = 409;
  readonly retriable = false;
  constructor(context: { name: string }, options?: { cause?: unknown }) {
    super(`object ${context.name} already exists (objects are write-once)`, context, options);
  }
}

export class ObjectNotFound extends HourglassError {
  readonly code = 'object_not_found';
  readonly httpStatus = 404;
  readonly retriable = false;
  constructor(context: { name: string }, options?: { cause?: unknown }) {
    super(`object ${context.name} does not exist`, context, options);
  }
}

/** The object store failed (disk full, permission, network); the cause says why. */
export class ObjectStoreFailed extends HourglassError {
  readonly code = 'object_store_unavailable';
  readonly httpStatus = 503;
  readonly retriable = true;
  constructor(context: { operation: string; name: string }, options?: { cause?: unknown }) {
    const why = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`object store ${context.operation} of ${context.name} failed${why}`, context, options);
  }
}

/**
 * The registry changed since it was read (another apply or API call won the race): read again and
 * retry. Versions are append-only: writing an existing version number is the same conflict.
 */
export class RegistryConflict extends HourglassError {
  readonly code = 'registry_conflict';
  readonly httpStatus = 409;
  readonly retriable = true;
  constructor(context: { type: string; expectedRevision: number; reason: string }, options?: { cause?: unknown }) {
    super(`event type ${context.type} changed concurrently (${context.reason}); read it again`, context, options);
  }
}

/**
 * A valid bearer credential is required (missing, malformed, unknown, expired or revoked): a
 * registry token for the registry API and the read endpoints, a producer key for `POST /v1/events`.
 */
export class Unauthorized extends HourglassError {
  readonly code = 'unauthorized';
  readonly httpStatus = 401;
  readonly retriable = false;
  constructor(context: { reason: string; credential?: 'registry token' | 'producer key' }) {
    super(
      `a valid ${context.credential ?? 'registry token'} is required (Authorization: Bearer …): ${context.reason}`,
      context,
    );
  }
}

/** A producer key sent more events than its rate allows: nothing of the request was accepted. */
export class RateLimited extends HourglassError {
  readonly code = 'rate_limited';
  readonly httpStatus = 429;
  readonly retriable = true;
  /** When a retry of the same request fits the key's rate again, seconds (the Retry-After header). */
  readonly retryAfterSeconds: number;
  constructor(context: {
    key: string;
    producer: string;
    /** The request's events; absent when it was refused before its body was read. */
    events?: number;
    ratePerSec: number;
    retryAfterSeconds: number;
  }) {
    super(
      `producer ${context.producer} (key ${context.key}) is over its rate of ${context.ratePerSec} events/s; ` +
        `retry in ${context.retryAfterSeconds} s`,
      context,
    );
    this.retryAfterSeconds = context.retryAfterSeconds;
  }
}

/** A read route was reached through a host name not in `ingress.allowedHosts` (DNS rebinding). */
export class HostNotAllowed extends HourglassError {
  readonly code = 'host_not_allowed';
  readonly httpStatus = 421;
  readonly retriable = false;
  constructor(context: { host: string }) {
    super(`this server does not answer to host ${JSON.stringify(context.host)} (ingress.allowedHosts)`, context);
  }
}

/** A browser page of an origin the producer key does not list tried to use it (CORS). */
export class OriginNotAllowed extends HourglassError {
  readonly code = 'origin_not_allowed';
  readonly httpStatus = 403;
  readonly retriable = false;
  constructor(context: { key: string; origin: string }) {
    super(`origin ${context.origin} may not use key ${context.key} (hourglass keys create --origins)`, context);
  }
}

/** The token is valid but may not do this (an owner acting on another owner's type). */
export class Forbidden extends HourglassError {
  readonly code = 'forbidden';
  readonly httpStatus = 403;
  readonly retriable = false;
  constructor(context: { owner: string; type: string; action: string; reason?: string }) {
    super(
      `owner ${context.owner} may not ${context.action} ${context.type} (${context.reason ?? 'owned by another team'})`,
      context,
    );
  }
}

/**
 * An owner already has as many active event types as `registry.maxActiveTypesPerOwner` allows:
 * registering another is refused (not retriable: retire one first, or ask an admin, who may exceed it).
 */
export class QuotaExceeded extends HourglassError {
  readonly code = 'quota_exceeded';
  readonly httpStatus = 403;
  readonly retriable = false;
  constructor(context: { owner: string; type: string; count: number; limit: number }) {
    super(
      `owner ${context.owner} may not register ${context.type}: it has ${context.count} active event types, ` +
        `the limit is ${context.limit} (registry.maxActiveTypesPerOwner; retire a type, or ask an admin)`,
      context,
    );
  }
}

/** A producer key cannot be created as asked (a bad producer name, type, rate, origin or expiry). */
export class ProducerKeyInvalid extends HourglassError {
  readonly code = 'producer_key_invalid';
  readonly httpStatus = 400;
  readonly retriable = false;
  constructor(context: { rule: string }) {
    super(`producer key: ${context.rule}`, context);
  }
}

export class ProducerKeyNotFound extends HourglassError {
  readonly code = 'key_not_found';
  readonly httpStatus = 404;
  readonly retriable = false;
  constructor(context: { key: string }) {
    super(`no producer key ${context.key}`, context);
  }
}

export class TypeNotFound extends HourglassError {
  readonly code = 'type_not_found';
  readonly httpStatus = 404;
  readonly retriable = false;
  constructor(context: { type: string }) {
    super(`no event type ${context.type}`, context);
  }
}

/** A change the registry refuses: the type exists already, is retired, or the schema breaks a rule. */
export class RegistryRefused extends HourglassError {
  readonly httpStatus: number;
  readonly retriable = false;
  constructor(
    readonly code: 'type_exists' | 'type_not_active' | 'schema_incompatible',
    message: string,
    context: { type: string },
    /** For `schema_incompatible`: each refusal with its field path and rule. */
    readonly refusals: readonly Refusal[] = [],
  ) {
    super(message, context);
    this.httpStatus = code === 'schema_incompatible' ? 422 : 409;
  }

  override toJSON(): { code: string; message: string; retriable: boolean; refusals?: unknown } {
    return { ...super.toJSON(), ...(this.refusals.length > 0 ? { refusals: this.refusals } : {}) };
  }
}

/**
 * An alert sink did not accept a notification: a network error, a timeout or an error answer.
 * Retriable for timeouts, network errors, 429 and 5xx; not for other 4xx (the payload or the
 * sink's configuration is wrong).
 */
export class AlertDeliveryFailed extends HourglassError {
  readonly code = 'alert_delivery_failed';
  readonly httpStatus = 502;
  readonly retriable: boolean;
  constructor(
    context: { sink: string; status?: number; reason: string },
    retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(
      `alert sink ${context.sink} did not accept the notification: ${context.reason}${context.status !== undefined ? ` (HTTP ${context.status})` : ''}`,
      context,
      options,
    );
    this.retriable = retriable;
  }
}
