/**
 * Rows of the state-store tables as both SQL backends return them (snake_case, epoch ms as
 * numbers, JSON as text), and their mapping to the port's records.
 */
import {
  type CompatibilityMode,
  formatDedupWindow,
  type Partitioning,
  type Storage,
  type Tier,
  type TypeStatus,
} from '../../core/event-types.js';
import type {
  AlertFilter,
  AlertPatch,
  AlertRecord,
  AlertRuleSpec,
  ApiToken,
  DeadLetter,
  HourPatch,
  HourRecord,
  IngressInstance,
  JobKind,
  JobLease,
  JobOutcome,
  JobRecord,
  LedgerEntry,
  ProducerKey,
  RawFile,
  ReconcileStep,
  RegisteredType,
} from '../../core/ports/state-store.js';

export interface LedgerRow {
  instance_id: string;
  type: string;
  hour: number;
  ranges: string;
  count: number;
  /** 0/1 in SQLite, a boolean in PostgreSQL. */
  sealed: number | boolean;
  updated_at: number;
}

export interface InstanceRow {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  last_seen_at: number;
  stopped_at: number | null;
}

export interface DeadLetterRow {
  seq: number;
  type: string;
  received_at: number;
  instance_id: string;
  event_id: string | null;
  code: string;
  path: string;
  message: string;
  event: string;
}

export interface FileRow {
  type: string;
  hour: number;
  kind: string;
  name: string;
  events: number;
  bytes: number;
  ranges: string;
  consumer: string;
  committed_at: number;
}

export interface HourRow {
  type: string;
  hour: number;
  state: string;
  closed_at: number;
  closed_by: string;
  vanished_instances: string;
  ledger_total: number;
  late_events: number;
  events_in: number | null;
  duplicates: number | null;
  events_out: number | null;
  manifest: string | null;
  published_at: number | null;
  loaded_at: number | null;
  error: string | null;
  updated_at: number;
}

export const HOUR_PATCH_COLUMNS: Record<keyof HourPatch, string> = {
  state: 'state',
  eventsIn: 'events_in',
  duplicates: 'duplicates',
  eventsOut: 'events_out',
  manifest: 'manifest',
  publishedAt: 'published_at',
  loadedAt: 'loaded_at',
  error: 'error',
};

export interface TypeRow {
  name: string;
  owner: string;
  description: string;
  tier: string;
  partitioning: string;
  storage: string;
  retention_days: number;
  status: string;
  compatibility: string;
  dedup_window_ms: number;
  revision: number;
  created_at: number;
  updated_at: number;
}

export interface VersionRow {
  type: string;
  version: number;
  schema: string;
  fingerprint: string;
  created_at: number;
  created_by: string;
}

export function typeFromRow(r: TypeRow, versions: readonly VersionRow[]): RegisteredType {
  return {
    name: r.name,
    owner: r.owner,
    description: r.description,
    tier: r.tier as Tier,
    partitioning: r.partitioning as Partitioning,
    storage: r.storage as Storage,
    retentionDays: r.retention_days,
    status: r.status as TypeStatus,
    compatibility: r.compatibility as CompatibilityMode,
    dedupWindow: formatDedupWindow(Number(r.dedup_window_ms)),
    revision: r.revision,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    versions: versions.map((v) => ({
      version: v.version,
      schema: v.schema,
      fingerprint: v.fingerprint,
      createdAt: v.created_at,
      createdBy: v.created_by,
    })),
  };
}

export function ledgerFromRow(r: LedgerRow): LedgerEntry {
  return {
    instanceId: r.instance_id,
    type: r.type,
    hour: r.hour,
    ranges: JSON.parse(r.ranges) as [number, number][],
    count: r.count,
    sealed: r.sealed === 1 || r.sealed === true,
    updatedAt: r.updated_at,
  };
}

export function instanceFromRow(r: InstanceRow): IngressInstance {
  return {
    id: r.id,
    host: r.host,
    pid: r.pid,
    startedAt: r.started_at,
    lastSeenAt: r.last_seen_at,
    stoppedAt: r.stopped_at,
  };
}

export function deadLetterFromRow(r: DeadLetterRow): DeadLetter {
  return {
    seq: r.seq,
    type: r.type,
    receivedAt: r.received_at,
    instanceId: r.instance_id,
    eventId: r.event_id,
    code: r.code,
    path: r.path,
    message: r.message,
    event: r.event,
  };
}

export function fileFromRow(r: FileRow): RawFile {
  return {
    type: r.type,
    hour: r.hour,
    kind: r.kind as RawFile['kind'],
    name: r.name,
    events: r.events,
    bytes: r.bytes,
    ranges: JSON.parse(r.ranges) as RawFile['ranges'],
    consumer: r.consumer,
    committedAt: r.committed_at,
  };
}

export function hourFromRow(r: HourRow): HourRecord {
  return {
    type: r.type,
    hour: r.hour,
    state: r.state as HourRecord['state'],
    closedAt: r.closed_at,
    closedBy: r.closed_by as HourRecord['closedBy'],
    vanishedInstances: JSON.parse(r.vanished_instances) as string[],
    ledgerTotal: r.ledger_total,
    lateEvents: r.late_events,
    eventsIn: r.events_in,
    duplicates: r.duplicates,
    eventsOut: r.events_out,
    manifest: r.manifest,
    publishedAt: r.published_at,
    loadedAt: r.loaded_at,
    error: r.error,
    updatedAt: r.updated_at,
  };
}

export interface StepRow {
  type: string;
  step: string;
  status: string;
  attempts: number;
  error: string | null;
  updated_at: number;
}

export function stepFromRow(r: StepRow): ReconcileStep {
  return {
    type: r.type,
    step: r.step,
    status: r.status as ReconcileStep['status'],
    attempts: r.attempts,
    error: r.error,
    updatedAt: r.updated_at,
  };
}

export interface TokenRow {
  id: string;
  owner: string;
  role: string;
  scope: string;
  hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

export function tokenFromRow(r: TokenRow): ApiToken {
  return {
    id: r.id,
    owner: r.owner,
    role: r.role as ApiToken['role'],
    scope: r.scope as ApiToken['scope'],
    hash: r.hash,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

export interface ProducerKeyRow {
  id: string;
  producer: string;
  types: string | null;
  rate_per_sec: number | null;
  burst: number | null;
  origins: string;
  hash: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  revoked_at: number | null;
}

export function producerKeyFromRow(r: ProducerKeyRow): ProducerKey {
  return {
    id: r.id,
    producer: r.producer,
    types: r.types === null ? null : (JSON.parse(r.types) as string[]),
    ratePerSec: r.rate_per_sec === null ? null : Number(r.rate_per_sec),
    burst: r.burst === null ? null : Number(r.burst),
    origins: JSON.parse(r.origins) as string[],
    hash: r.hash,
    createdAt: Number(r.created_at),
    createdBy: r.created_by,
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  };
}

/** The row values of a key, in the column order of PRODUCER_KEY_COLUMNS. */
export function producerKeyValues(k: ProducerKey): unknown[] {
  return [
    k.id,
    k.producer,
    k.types === null ? null : JSON.stringify(k.types),
    k.ratePerSec,
    k.burst,
    JSON.stringify(k.origins),
    k.hash,
    k.createdAt,
    k.createdBy,
    k.expiresAt,
    k.revokedAt,
  ];
}

export const PRODUCER_KEY_COLUMNS =
  'id, producer, types, rate_per_sec, burst, origins, hash, created_at, created_by, expires_at, revoked_at';

export interface AlertRuleRow {
  type: string;
  rule: string;
  params: string;
  created_at: number;
}

export function alertRuleFromRow(r: AlertRuleRow): AlertRuleSpec {
  return {
    type: r.type,
    rule: r.rule as AlertRuleSpec['rule'],
    params: JSON.parse(r.params) as AlertRuleSpec['params'],
    createdAt: r.created_at,
  };
}

export interface AlertRow {
  seq: number;
  rule: string;
  type: string;
  tier: string;
  state: string;
  summary: string;
  details: string;
  opened_at: number;
  resolved_at: number | null;
  routes: string;
  notified_at: number | null;
  notifications: number;
  updated_at: number;
}

export function alertFromRow(r: AlertRow): AlertRecord {
  return {
    seq: r.seq,
    rule: r.rule as AlertRecord['rule'],
    type: r.type,
    tier: r.tier as AlertRecord['tier'],
    state: r.state as AlertRecord['state'],
    summary: r.summary,
    details: JSON.parse(r.details) as AlertRecord['details'],
    openedAt: r.opened_at,
    resolvedAt: r.resolved_at,
    routes: JSON.parse(r.routes) as AlertRecord['routes'],
    notifiedAt: r.notified_at,
    notifications: r.notifications,
    updatedAt: r.updated_at,
  };
}

/** Columns of an alert patch, as `[column, value]` pairs (JSON columns serialized). */
export function alertPatchColumns(patch: AlertPatch): [string, string | number | null][] {
  const out: [string, string | number | null][] = [];
  if (patch.state !== undefined) out.push(['state', patch.state]);
  if (patch.summary !== undefined) out.push(['summary', patch.summary]);
  if (patch.details !== undefined) out.push(['details', JSON.stringify(patch.details)]);
  if (patch.resolvedAt !== undefined) out.push(['resolved_at', patch.resolvedAt]);
  if (patch.routes !== undefined) out.push(['routes', JSON.stringify(patch.routes)]);
  if (patch.notifiedAt !== undefined) out.push(['notified_at', patch.notifiedAt]);
  if (patch.notifications !== undefined) out.push(['notifications', patch.notifications]);
  return out;
}

/** The WHERE clause of an alert listing (placeholders made by `param(i)`), and its values. */
export function alertFilterSql(
  filter: AlertFilter,
  param: (i: number) => string,
): { where: string; values: (string | number)[] } {
  const clauses: string[] = [];
  const values: (string | number)[] = [];
  if (filter.state !== undefined) {
    values.push(filter.state);
    clauses.push(`state = ${param(values.length)}`);
  }
  if (filter.type !== undefined) {
    values.push(filter.type);
    clauses.push(`type = ${param(values.length)}`);
  }
  if (filter.since !== undefined) {
    values.push(filter.since);
    clauses.push(`(state = 'firing' OR resolved_at >= ${param(values.length)})`);
  }
  return { where: clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '', values };
}

export interface JobRow {
  kind: string;
  type: string;
  partition_start: number;
  state: string;
  holder: string | null;
  lease_until: number | null;
  token: number;
  attempts: number;
  run_after: number;
  error: string | null;
  created_at: number;
  updated_at: number;
}

export function jobFromRow(r: JobRow): JobRecord {
  return {
    kind: r.kind as JobKind,
    type: r.type,
    partition: Number(r.partition_start),
    state: r.state as JobRecord['state'],
    holder: r.holder,
    leaseUntil: r.lease_until === null ? null : Number(r.lease_until),
    token: Number(r.token),
    attempts: Number(r.attempts),
    runAfter: Number(r.run_after),
    error: r.error,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export function leaseFromRow(r: JobRow): JobLease {
  return {
    kind: r.kind as JobKind,
    type: r.type,
    partition: Number(r.partition_start),
    holder: r.holder ?? '',
    token: Number(r.token),
    attempts: Number(r.attempts),
    leaseUntil: Number(r.lease_until),
    createdAt: Number(r.created_at),
  };
}

/**
 * The claim of a job, one statement for both SQL backends (`?` placeholders: number them for
 * PostgreSQL): inserts it running, or takes it when it is ready and due, or running under an ended
 * lease. Parameters: kind, type, partition, holder, lease end, now, now, then now twice more.
 */
export const CLAIM_JOB_SQL = `INSERT INTO jobs (kind, type, partition_start, state, holder, lease_until, token, attempts, run_after, created_at, updated_at)
  VALUES (?, ?, ?, 'running', ?, ?, 1, 1, 0, ?, ?)
  ON CONFLICT (kind, type, partition_start) DO UPDATE SET state = 'running', holder = excluded.holder,
    lease_until = excluded.lease_until, token = jobs.token + 1, attempts = jobs.attempts + 1, updated_at = excluded.updated_at
  WHERE (jobs.state = 'ready' AND jobs.run_after <= ?) OR (jobs.state = 'running' AND jobs.lease_until < ?)
  RETURNING *`;

/** The columns a job's outcome sets, and their values, in order (`ready` waits and counts per outcome). */
export function jobOutcomeSets(
  outcome: JobOutcome,
  now: number,
): { sets: string[]; values: (string | number | null)[] } {
  const error = outcome.error === undefined ? null : outcome.error;
  if (outcome.state === 'ready') {
    return {
      sets: [
        "state = 'ready'",
        'lease_until = NULL',
        'run_after = ?',
        'error = ?',
        'updated_at = ?',
        ...(outcome.notAnAttempt === true ? ['attempts = attempts - 1'] : []),
      ],
      values: [now + Math.max(0, outcome.runAfterMs), error, now],
    };
  }
  return {
    sets: ['state = ?', 'lease_until = NULL', 'error = ?', 'updated_at = ?'],
    values: [outcome.state, error, now],
  };
}

/** The columns an hour patch sets (`column = ?`) and their values, in order; `updated_at` last. */
export function hourPatchSets(patch: HourPatch, at: number): { sets: string[]; values: (string | number | null)[] } {
  const sets: string[] = [];
  const values: (string | number | null)[] = [];
  for (const [k, v] of Object.entries(patch) as [keyof HourPatch, string | number | null | undefined][]) {
    if (v === undefined) continue;
    sets.push(`${HOUR_PATCH_COLUMNS[k]} = ?`);
    values.push(v);
  }
  sets.push('updated_at = ?');
  values.push(at);
  return { sets, values };
}
