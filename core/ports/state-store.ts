/**
 * The state store port: the ingress ledgers, ingress instances, the dead-letter area, the raw
 * files the ETL committed, the hour states and the registry of event types. Backends: SQLite
 * (embedded default), PostgreSQL.
 * Every method may throw StateStoreFailed (retriable), keeping the driver's error as the cause.
 */

import type { EventTypeDefinition, Tier } from '../event-types.js';
import type { AlertRoute, AlertRule } from './alert-sink.js';

/** One ingress instance's ledger for one (type, hour): the sequence numbers it published there. */
export interface LedgerEntry {
  readonly instanceId: string;
  readonly type: string;
  /** Start of the UTC hour, epoch ms. */
  readonly hour: number;
  /** Inclusive, sorted, non-overlapping, non-adjacent ranges of published sequence numbers. */
  readonly ranges: readonly (readonly [number, number])[];
  /** Number of sequence numbers in `ranges`. */
  readonly count: number;
  /** Once sealed, the instance will publish nothing more into this (type, hour). */
  readonly sealed: boolean;
  readonly updatedAt: number;
}

export interface LedgerKey {
  readonly instanceId: string;
  readonly type: string;
  readonly hour: number;
}

export interface LedgerFilter {
  readonly type?: string;
  readonly hour?: number;
  /** Only hours starting at or after this. */
  readonly from?: number;
  readonly instanceId?: string;
  /** Only entries of (type, hour)s that have no hour record yet (not closed). */
  readonly unclosed?: boolean;
}

export interface IngressInstance {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  /** Last heartbeat, epoch ms. */
  readonly lastSeenAt: number;
  /** Set on a clean stop; null while running or after a crash. */
  readonly stoppedAt: number | null;
}

export interface NewDeadLetter {
  /** The event type as sent, or `_unknown` when the type is missing or not registered. */
  readonly type: string;
  readonly receivedAt: number;
  readonly instanceId: string;
  readonly eventId: string | null;
  readonly code: string;
  readonly path: string;
  readonly message: string;
  /** The rejected event as JSON, truncated to a bounded size. */
  readonly event: string;
}

export interface DeadLetter extends NewDeadLetter {
  readonly seq: number;
}

/** Sequence ranges per ingress instance: `{ instanceId: [[from, to], …] }`. */
export type InstanceRanges = Readonly<Record<string, readonly (readonly [number, number])[]>>;

/**
 * A committed file of an hour. `raw` files make up the hour's raw bucket; `late` files hold events
 * that arrived after the hour was closed. Only registered files count: a file in the object store
 * that was never registered (a crash between commit and registration) is ignored, and its
 * messages, never acked, are written again.
 */
export interface RawFile {
  readonly type: string;
  readonly hour: number;
  readonly kind: 'raw' | 'late';
  readonly name: string;
  readonly events: number;
  readonly bytes: number;
  /** The (ingress instance, sequence) ranges of the events in the file. */
  readonly ranges: InstanceRanges;
  /** The ETL consumer that wrote it. */
  readonly consumer: string;
  readonly committedAt: number;
}

/**
 * States an hour goes through once it ended: `closed` (raw bucket complete and frozen), `deduped`
 * (final data written, manifest not yet), `published` (manifest written: readers see it), or
 * `failed` (ledgered events missing: found by the closer, when the bus shows they can no longer
 * arrive, or by the dedup check; frozen like a closed hour, not published, alerting pages).
 * Before a record exists the hour is `open` (not ended) or `closing` (ended, not yet complete).
 */
export type HourState = 'closed' | 'deduped' | 'published' | 'failed';

export interface HourRecord {
  readonly type: string;
  readonly hour: number;
  readonly state: HourState;
  readonly closedAt: number;
  /** `sealed`: every instance sealed; `vanished`: closed by the vanished-instance rule. */
  readonly closedBy: 'sealed' | 'vanished';
  readonly vanishedInstances: readonly string[];
  /** Events the ledgers recorded for the hour when it closed. */
  readonly ledgerTotal: number;
  /** Events that arrived after the hour closed (kept under `late/`). */
  readonly lateEvents: number;
  readonly eventsIn: number | null;
  readonly duplicates: number | null;
  readonly eventsOut: number | null;
  /** Object name of the final partition's manifest, once published. */
  readonly manifest: string | null;
  readonly publishedAt: number | null;
  /** When the published partition was loaded into the warehouse (types stored in the warehouse). */
  readonly loadedAt: number | null;
  readonly error: string | null;
  readonly updatedAt: number;
}

export type HourPatch = Partial<
  Pick<
    HourRecord,
    'state' | 'eventsIn' | 'duplicates' | 'eventsOut' | 'manifest' | 'publishedAt' | 'loadedAt' | 'error'
  >
>;

export interface HourFilter {
  readonly type?: string;
  /** Hours starting at or after this. */
  readonly from?: number;
  /** Hours starting before this. */
  readonly to?: number;
  readonly states?: readonly HourState[];
}

/** A schema version in the registry (append-only). */
export interface RegisteredVersion {
  readonly version: number;
  /** The Avro schema as declared, JSON text. */
  readonly schema: string;
  /** SHA-256 of its Parsing Canonical Form, hex. */
  readonly fingerprint: string;
  readonly createdAt: number;
  readonly createdBy: string;
}

/** An event type in the registry: its definition, its versions, and a revision for safe updates. */
export interface RegisteredType extends EventTypeDefinition {
  readonly versions: readonly RegisteredVersion[];
  /** Starts at 1, +1 per saved change. */
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One entry of a type's change history: who did what, when. */
export interface RegistryChange {
  readonly seq: number;
  readonly type: string;
  readonly at: number;
  readonly actor: string;
  /** `create`, `new_version`, `update`, `retire`, `retired`, … */
  readonly action: string;
  /** What changed, human-readable. */
  readonly detail: string;
}

export interface TypeWrite {
  readonly definition: EventTypeDefinition;
  /** Versions to append (numbered after the registered ones, no gaps). */
  readonly newVersions: readonly { readonly version: number; readonly schema: string; readonly fingerprint: string }[];
  /** The revision the change was planned against; 0 for a new type. */
  readonly expectedRevision: number;
  readonly actor: string;
  readonly action: string;
  readonly detail: string;
  readonly at: number;
}

/**
 * The recorded state of one reconcile step of one type (`bus`, `consumer`, `drain`, …):
 * `done`, `waiting` (a condition not met yet, e.g. a backlog to drain) or `failed` (retried with
 * backoff; `error` says why).
 */
export interface ReconcileStep {
  readonly type: string;
  readonly step: string;
  readonly status: 'done' | 'waiting' | 'failed';
  readonly attempts: number;
  readonly error: string | null;
  readonly updatedAt: number;
}

/**
 * A registry API token: `owner` may change only its own types; `admin` may change all. Scope
 * `read` may only read (what its role may read); `write` may read and change. Only the SHA-256 of
 * the token's secret is stored.
 */
export interface ApiToken {
  readonly id: string;
  readonly owner: string;
  readonly role: 'owner' | 'admin';
  readonly scope: 'read' | 'write';
  /** SHA-256 of the secret, hex. */
  readonly hash: string;
  readonly createdAt: number;
  /** When it stops working (real time, epoch ms); null: never. */
  readonly expiresAt: number | null;
  /** Last successful authentication (real time, epoch ms), recorded at most once per minute; null: never used. */
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

/**
 * A producer write key: lets `producer` write events of `types` (null: every type) through
 * `POST /v1/events`, within its rate. Only the SHA-256 of the key's secret is stored.
 */
export interface ProducerKey {
  readonly id: string;
  /** The producer's name: it travels with every event the key writes. */
  readonly producer: string;
  /** The types the key may write; null: every type. */
  readonly types: readonly string[] | null;
  /** Events per second the key may send (token bucket refill); null: the configured default; 0: unlimited. */
  readonly ratePerSec: number | null;
  /** Events the key may send at once above its rate (bucket size); null: the configured default. */
  readonly burst: number | null;
  /** Browser origins (`scheme://host[:port]`) allowed to use the key; empty: none (not for browsers). */
  readonly origins: readonly string[];
  /** SHA-256 of the secret, hex. */
  readonly hash: string;
  readonly createdAt: number;
  /** Who created it (`cli`, or the registry token's owner). */
  readonly createdBy: string;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

/** An alert rule provisioned for a type, with the thresholds it was provisioned with. */
export interface AlertRuleSpec {
  readonly type: string;
  readonly rule: AlertRule;
  readonly params: Readonly<Record<string, number>>;
  readonly createdAt: number;
}

/** A new alert occurrence (state `firing`). */
export interface NewAlert {
  readonly rule: AlertRule;
  readonly type: string;
  readonly tier: Tier;
  readonly summary: string;
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
  readonly openedAt: number;
}

/**
 * One alert occurrence: opened when its rule's condition starts to hold for its type, resolved
 * when it stops. At most one firing alert per (rule, type).
 */
export interface AlertRecord extends NewAlert {
  readonly seq: number;
  readonly state: 'firing' | 'resolved';
  readonly resolvedAt: number | null;
  /** The routes notified so far (a normal-tier alert opened at night: `ticket`, then `page`). */
  readonly routes: readonly AlertRoute[];
  /** Last notification (trigger or renotify), epoch ms; null before the first. */
  readonly notifiedAt: number | null;
  /** Notifications sent (every route and event counted once per evaluation that sent them). */
  readonly notifications: number;
  readonly updatedAt: number;
}

export type AlertPatch = Partial<
  Pick<AlertRecord, 'state' | 'summary' | 'details' | 'resolvedAt' | 'routes' | 'notifiedAt' | 'notifications'>
>;

export interface AlertFilter {
  readonly state?: AlertRecord['state'];
  readonly type?: string;
  /** Alerts firing now or resolved at or after this. */
  readonly since?: number;
  /** Newest first; default 1,000. */
  readonly limit?: number;
}

/**
 * The batch steps of a partition, each claimed by one worker at a time: `close` (an hour),
 * `dedup` (dedup and publication of an hour or a day) and `load` (a published partition into the
 * warehouse).
 */
export type JobKind = 'close' | 'dedup' | 'load';
export const JOB_KINDS: readonly JobKind[] = ['close', 'dedup', 'load'];

export interface JobKey {
  readonly kind: JobKind;
  readonly type: string;
  /** Start of the partition (or hour, for `close`), epoch ms. */
  readonly partition: number;
}

/**
 * A claim on a job. `token` fences it: every change made under the claim is refused once another
 * worker took the job over (its lease expired), so a worker that stalled never overwrites the
 * work of the one that took over.
 */
export interface JobLease extends JobKey {
  readonly holder: string;
  readonly token: number;
  /** Runs of the job so far, this one included. */
  readonly attempts: number;
  /** When the lease ends unless renewed (the store's real clock, epoch ms). */
  readonly leaseUntil: number;
  /** When the job was first claimed (real time, epoch ms). */
  readonly createdAt: number;
}

/**
 * A job's record: `running` while claimed (a claim whose lease ended can be taken over), `ready`
 * to run again once `runAfter` passed (a retry after a failure, or a step that waits), `done`, or
 * `failed` (given up: not run again).
 */
export interface JobRecord extends JobKey {
  readonly state: 'ready' | 'running' | 'done' | 'failed';
  readonly holder: string | null;
  readonly leaseUntil: number | null;
  readonly token: number;
  readonly attempts: number;
  readonly runAfter: number;
  readonly error: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface JobFilter {
  readonly kind?: JobKind;
  readonly type?: string;
  /** Partitions starting at or after this. */
  readonly from?: number;
  /** Partitions starting before this. */
  readonly to?: number;
}

/** An hour's change made with a job's outcome, atomically with it. */
export interface HourUpdate {
  readonly type: string;
  readonly hour: number;
  readonly patch: HourPatch;
}

/** What a claim ended in: the job is `done`, `failed` (given up), or `ready` again after `runAfterMs`. */
export type JobOutcome =
  | { readonly state: 'done' | 'failed'; readonly error?: string | null }
  | {
      readonly state: 'ready';
      readonly runAfterMs: number;
      readonly error?: string | null;
      /** The run was a wait, not an attempt (a step whose condition does not hold yet): it is not counted. */
      readonly notAnAttempt?: boolean;
    };

export interface StateStore {
  readonly backend: string;

  /**
   * Inserts or replaces ledger entries (keyed by instance, type, hour). Atomic for the call.
   * An entry that is already sealed is never modified: the call throws LedgerSealed for it.
   */
  saveLedgers(entries: readonly LedgerEntry[]): Promise<void>;
  /** Marks entries sealed; creates an empty sealed entry where none exists. Idempotent. */
  sealLedgers(keys: readonly LedgerKey[], at: number): Promise<void>;
  listLedgers(filter?: LedgerFilter): Promise<LedgerEntry[]>;

  /** Inserts or updates an ingress instance (heartbeats and stops use this too). */
  upsertInstance(instance: IngressInstance): Promise<void>;
  listInstances(): Promise<IngressInstance[]>;

  /**
   * Stores rejected events, keeping at most `maxPerType` newest per type; older ones are dropped.
   * Totals per type count every rejection ever stored, dropped or not.
   */
  addDeadLetters(items: readonly NewDeadLetter[], maxPerType: number): Promise<void>;
  /** Newest first. */
  listDeadLetters(type: string, limit: number): Promise<DeadLetter[]>;
  /** Rejections ever stored, per type. */
  deadLetterTotals(): Promise<Record<string, number>>;

  /**
   * Registers a committed file. A `raw` file is refused (`hour_closed`) once its hour is closed,
   * atomically with closing: the closed hour's raw bucket never changes. A `late` file is always
   * registered and adds its events to the hour's late count. Registering a name twice is a no-op.
   */
  registerFile(file: RawFile): Promise<'registered' | 'hour_closed'>;
  listFiles(type: string, hour: number, kind: RawFile['kind']): Promise<RawFile[]>;
  /** Creates the hour's record in state `closed`; false if the hour already has one. */
  closeHour(
    record: Omit<
      HourRecord,
      | 'state'
      | 'lateEvents'
      | 'eventsIn'
      | 'duplicates'
      | 'eventsOut'
      | 'manifest'
      | 'publishedAt'
      | 'loadedAt'
      | 'error'
      | 'updatedAt'
    >,
  ): Promise<boolean>;
  /**
   * Changes an hour's record. With `fence`, only while that claim still holds its job (same token,
   * still running), atomically with the check: otherwise it throws LeaseLost and changes nothing.
   */
  updateHour(type: string, hour: number, patch: HourPatch, at: number, fence?: JobLease): Promise<void>;
  listHours(filter?: HourFilter): Promise<HourRecord[]>;

  /**
   * Claims a job for `holder` for `leaseMs` (real ms): creates it, or takes it when it is `ready`
   * and its `runAfter` passed, or `running` under a lease that ended (a takeover). Each claim
   * raises the token and, unless a wait gave it back, the attempts. Null when the job is held by a
   * live lease, waits, or is `done` or `failed`. Of concurrent claims on one job at most one wins.
   */
  claimJob(key: JobKey, holder: string, leaseMs: number): Promise<JobLease | null>;
  /** Extends a claim's lease; returns the new end, or null when the claim was lost (nothing changed). */
  renewJob(lease: JobLease, leaseMs: number): Promise<number | null>;
  /**
   * Ends a claim with `outcome`, applying `hours` atomically with it. False (nothing changed) when
   * the claim was lost.
   */
  finishJob(lease: JobLease, outcome: JobOutcome, hours: readonly HourUpdate[], at: number): Promise<boolean>;
  /** By kind, type, then partition. */
  listJobs(filter?: JobFilter): Promise<JobRecord[]>;

  /**
   * Saves a type's definition (all of it: a definition without `compatibility` or `dedupWindow`
   * stores the default, `backward_transitive` or 1 h) and appends versions, with its history entry, atomically. Throws
   * RegistryConflict when the type's revision is not `expectedRevision` (0: the type must not
   * exist) or a version number is taken.
   */
  saveType(write: TypeWrite): Promise<RegisteredType>;
  getType(name: string): Promise<RegisteredType | null>;
  /** Every registered type, by name. */
  listTypes(): Promise<RegisteredType[]>;
  /** Oldest first. */
  typeHistory(name: string): Promise<RegistryChange[]>;

  /** Inserts or replaces step records (by type and step). */
  saveSteps(steps: readonly ReconcileStep[]): Promise<void>;
  /** By type, then step. */
  listSteps(type?: string): Promise<ReconcileStep[]>;

  /**
   * Forgets a type's hours that start before `before` (retention): their hour records, file
   * registrations, ledger entries and jobs, atomically. Returns the number of hour records removed.
   */
  forgetHours(type: string, before: number): Promise<number>;

  /**
   * Stores `value` under the deployment setting `key` unless the key has a value already, and
   * returns the value stored: every process that calls it gets the same one (the first writer's).
   * Idempotent.
   */
  ensureSetting(key: string, value: string, at: number): Promise<string>;

  /** Stores a new token (its id must be new). */
  addToken(token: ApiToken): Promise<void>;
  getToken(id: string): Promise<ApiToken | null>;
  listTokens(): Promise<ApiToken[]>;
  /** Marks a token revoked; false if there is no such token. */
  revokeToken(id: string, at: number): Promise<boolean>;
  /**
   * Records a use of the token: sets its `lastUsedAt` to `at` unless it was set within
   * `minIntervalMs` before `at` (so several processes write at most once per interval between
   * them). Returns whether it wrote; false too when there is no such token. Idempotent.
   */
  touchToken(id: string, at: number, minIntervalMs: number): Promise<boolean>;

  /** Stores a new producer key (its id must be new). */
  addProducerKey(key: ProducerKey): Promise<void>;
  getProducerKey(id: string): Promise<ProducerKey | null>;
  /** Every key, revoked and expired ones too, oldest first. */
  listProducerKeys(): Promise<ProducerKey[]>;
  /** Marks a key revoked (the first revocation time is kept); false if there is no such key. */
  revokeProducerKey(id: string, at: number): Promise<boolean>;

  /** Replaces the alert rules of a type (an empty list removes them). */
  saveAlertRules(type: string, rules: readonly AlertRuleSpec[]): Promise<void>;
  /** By type, then rule. */
  listAlertRules(type?: string): Promise<AlertRuleSpec[]>;
  /** Opens an alert; null when one is already firing for its (rule, type). */
  openAlert(alert: NewAlert): Promise<AlertRecord | null>;
  /**
   * Updates an alert. With `expectedNotifications`, only if its notification count is still that
   * (so of several evaluating processes one notifies). Returns whether it was updated.
   */
  updateAlert(seq: number, patch: AlertPatch, at: number, expectedNotifications?: number): Promise<boolean>;
  /** Newest first (by opening). */
  listAlerts(filter?: AlertFilter): Promise<AlertRecord[]>;
  /** The newest file commit per type (epoch ms), for types with files. */
  lastCommits(): Promise<Record<string, number>>;

  /** Whether the store answers (for readiness). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
