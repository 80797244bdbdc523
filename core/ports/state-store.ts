/**
 * The state store port: the ingress ledgers, ingress instances and the dead-letter area (and,
 * later, the registry and hour states). Backends: SQLite (embedded default), PostgreSQL.
 * Every method may throw StateStoreFailed (retriable), keeping the driver's error as the cause.
 */

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
  readonly instanceId?: string;
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

  /** Whether the store answers (for readiness). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
