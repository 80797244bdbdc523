/**
 * Rows of the state-store tables as both SQL backends return them (snake_case, epoch ms as
 * numbers, JSON as text), and their mapping to the port's records.
 */
import type { Partitioning, Storage, Tier, TypeStatus } from '../../core/event-types.js';
import type {
  ApiToken,
  DeadLetter,
  HourPatch,
  HourRecord,
  IngressInstance,
  LedgerEntry,
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
  hash: string;
  created_at: number;
  revoked_at: number | null;
}

export function tokenFromRow(r: TokenRow): ApiToken {
  return {
    id: r.id,
    owner: r.owner,
    role: r.role as ApiToken['role'],
    hash: r.hash,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}
