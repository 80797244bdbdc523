/**
 * PostgreSQL state store (`pg`), for several instances on several machines. The same tables and
 * behaviour as the SQLite store; where SQLite serialises writers, this one takes row locks or
 * transaction-scoped advisory locks:
 * - a raw file's registration and its hour's closing lock the same (type, hour) advisory key, so a
 *   closed hour's raw bucket never changes;
 * - a ledger entry is read `FOR UPDATE` before it is replaced (a sealed entry never changes);
 * - a type's registry row is read `FOR UPDATE` and its revision checked.
 * Epoch milliseconds are BIGINT, read back as numbers. `DATABASE_URL`-style connection strings;
 * an optional `schema` keeps several stores apart in one database (tests do that).
 */
import pg from 'pg';
import { LeaseLost, LedgerSealed, RegistryConflict, StateStoreFailed } from '../../../core/errors.js';
import { compatibilityOf, dedupWindowMs } from '../../../core/event-types.js';
import { HOUR_MS } from '../../../core/hours.js';
import type {
  AlertFilter,
  AlertPatch,
  AlertRecord,
  AlertRuleSpec,
  ApiToken,
  DeadLetter,
  HourFilter,
  HourPatch,
  HourRecord,
  HourUpdate,
  IngressInstance,
  JobFilter,
  JobKey,
  JobLease,
  JobOutcome,
  JobRecord,
  LedgerEntry,
  LedgerFilter,
  LedgerKey,
  NewAlert,
  NewDeadLetter,
  ProducerKey,
  RawFile,
  ReconcileStep,
  RegisteredType,
  RegistryChange,
  StateStore,
  TypeWrite,
} from '../../../core/ports/state-store.js';
import {
  type AlertRow,
  type AlertRuleRow,
  alertFilterSql,
  alertFromRow,
  alertPatchColumns,
  alertRuleFromRow,
  CLAIM_JOB_SQL,
  type DeadLetterRow,
  deadLetterFromRow,
  type FileRow,
  fileFromRow,
  type HourRow,
  hourFromRow,
  hourPatchSets,
  type InstanceRow,
  instanceFromRow,
  type JobRow,
  jobFromRow,
  jobOutcomeSets,
  type LedgerRow,
  leaseFromRow,
  ledgerFromRow,
  PRODUCER_KEY_COLUMNS,
  type ProducerKeyRow,
  producerKeyFromRow,
  producerKeyValues,
  type StepRow,
  stepFromRow,
  type TokenRow,
  type TypeRow,
  tokenFromRow,
  typeFromRow,
  type VersionRow,
} from '../rows.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';

const INT8 = 20;

/** WHERE conditions with numbered parameters: `add('hour >= ?', v)`. */
function conditions(): { where: string[]; args: unknown[]; add: (clause: string, v: unknown) => void } {
  const where: string[] = [];
  const args: unknown[] = [];
  return {
    where,
    args,
    add: (clause, v) => {
      args.push(v);
      where.push(clause.replace('?', `$${args.length}`));
    },
  };
}
/** `?` placeholders numbered `$1`, `$2`… from `first`. */
function numbered(sql: string, first = 1): string {
  let n = first - 1;
  return sql.replace(/\?/g, () => `$${++n}`);
}
/** The server's real time, epoch ms: every machine's leases are judged by one clock. */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
const MIGRATION_LOCK = 0x686f7572; // "hour"
const UNIQUE_VIOLATION = '23505';

/** BIGINT columns come back as numbers (epoch ms and counters stay far below 2^53). */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PostgresStateStoreOptions {
  readonly url: string;
  /** Schema the tables live in (created if missing); default `public`. */
  readonly schema?: string;
  readonly maxConnections?: number;
}

type Sql = (text: string, values?: readonly unknown[]) => Promise<pg.QueryResult>;

/** Applies an hour patch (and its `updated_at`). */
async function patchHour(sql: Sql, type: string, hour: number, patch: HourPatch, at: number): Promise<void> {
  const { sets, values } = hourPatchSets(patch, at);
  await sql(numbered(`UPDATE hours SET ${sets.join(', ')} WHERE type = ? AND hour = ?`), [...values, type, hour]);
}

export class PostgresStateStore implements StateStore {
  readonly backend = 'postgres';
  private readonly pool: pg.Pool;

  private constructor(
    pool: pg.Pool,
    private readonly schema: string,
  ) {
    this.pool = pool;
  }

  /** Connects and runs pending migrations. */
  static async open(options: PostgresStateStoreOptions): Promise<PostgresStateStore> {
    const schema = options.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid PostgreSQL schema name ${schema}`);
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 4,
      types,
      options: `-c search_path=${schema}`,
    });
    // an idle client's connection error must not crash the process; the next query reports it
    pool.on('error', () => undefined);
    const store = new PostgresStateStore(pool, schema);
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new StateStoreFailed({ operation: 'open postgres' }, { cause: err });
    }
    return store;
  }

  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        await c.query(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
        );
        const applied = new Set(
          (await c.query('SELECT version FROM schema_migrations')).rows.map((r) => r.version as number),
        );
        for (const m of POSTGRES_MIGRATIONS) {
          if (applied.has(m.version)) continue;
          await c.query('BEGIN');
          try {
            await c.query(m.sql);
            await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
              m.version,
              m.name,
              Date.now(),
            ]);
            await c.query('COMMIT');
          } catch (err) {
            await c.query('ROLLBACK');
            throw err;
          }
        }
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } finally {
      c.release();
    }
  }

  /** Migration versions applied. */
  async appliedMigrations(): Promise<number[]> {
    return (await this.pool.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map(
      (r) => r.version as number,
    );
  }

  private async run<T>(operation: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    try {
      return await fn((text, values) => this.pool.query(text, values as unknown[]));
    } catch (err) {
      throw this.wrap(operation, err);
    }
  }

  /** Runs `fn` in one transaction on one connection. */
  private async tx<T>(operation: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw this.wrap(operation, err);
    }
    try {
      await c.query('BEGIN');
      const out = await fn((text, values) => c.query(text, values as unknown[]));
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw this.wrap(operation, err);
    } finally {
      c.release();
    }
  }

  private wrap(operation: string, err: unknown): Error {
    if (
      err instanceof LedgerSealed ||
      err instanceof RegistryConflict ||
      err instanceof StateStoreFailed ||
      err instanceof LeaseLost
    )
      return err;
    return new StateStoreFailed({ operation }, { cause: err });
  }

  saveLedgers(entries: readonly LedgerEntry[]): Promise<void> {
    return this.tx('saveLedgers', async (sql) => {
      for (const e of entries) {
        const row = await sql(
          'SELECT sealed FROM ledgers WHERE type = $1 AND hour = $2 AND instance_id = $3 FOR UPDATE',
          [e.type, e.hour, e.instanceId],
        );
        if (row.rows[0]?.sealed === true)
          throw new LedgerSealed({ instanceId: e.instanceId, type: e.type, hour: e.hour });
        await sql(
          `INSERT INTO ledgers (instance_id, type, hour, ranges, count, sealed, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (type, hour, instance_id) DO UPDATE SET ranges = excluded.ranges, count = excluded.count,
             sealed = excluded.sealed, updated_at = excluded.updated_at`,
          [e.instanceId, e.type, e.hour, JSON.stringify(e.ranges), e.count, e.sealed, e.updatedAt],
        );
      }
    });
  }

  sealLedgers(keys: readonly LedgerKey[], at: number): Promise<void> {
    return this.tx('sealLedgers', async (sql) => {
      for (const k of keys) {
        await sql(
          `INSERT INTO ledgers (instance_id, type, hour, ranges, count, sealed, updated_at) VALUES ($1, $2, $3, '[]', 0, true, $4)
           ON CONFLICT (type, hour, instance_id) DO UPDATE SET sealed = true, updated_at = excluded.updated_at
           WHERE ledgers.sealed = false`,
          [k.instanceId, k.type, k.hour, at],
        );
      }
    });
  }

  listLedgers(filter: LedgerFilter = {}): Promise<LedgerEntry[]> {
    return this.run('listLedgers', async (sql) => {
      const { where, args, add } = conditions();
      if (filter.type !== undefined) add('type = ?', filter.type);
      if (filter.hour !== undefined) add('hour = ?', filter.hour);
      if (filter.from !== undefined) add('hour >= ?', filter.from);
      if (filter.instanceId !== undefined) add('instance_id = ?', filter.instanceId);
      if (filter.unclosed === true) {
        where.push('NOT EXISTS (SELECT 1 FROM hours h WHERE h.type = ledgers.type AND h.hour = ledgers.hour)');
      }
      const text = `SELECT * FROM ledgers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY type, hour, instance_id`;
      return ((await sql(text, args)).rows as LedgerRow[]).map(ledgerFromRow);
    });
  }

  upsertInstance(i: IngressInstance): Promise<void> {
    return this.run('upsertInstance', async (sql) => {
      await sql(
        `INSERT INTO ingress_instances (id, host, pid, started_at, last_seen_at, stopped_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, stopped_at = excluded.stopped_at`,
        [i.id, i.host, i.pid, i.startedAt, i.lastSeenAt, i.stoppedAt],
      );
    });
  }

  listInstances(): Promise<IngressInstance[]> {
    return this.run('listInstances', async (sql) =>
      ((await sql('SELECT * FROM ingress_instances ORDER BY started_at, id')).rows as InstanceRow[]).map(
        instanceFromRow,
      ),
    );
  }

  addDeadLetters(items: readonly NewDeadLetter[], maxPerType: number): Promise<void> {
    return this.tx('addDeadLetters', async (sql) => {
      const perType = new Map<string, number>();
      for (const d of items) {
        await sql(
          'INSERT INTO dead_letters (type, received_at, instance_id, event_id, code, path, message, event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
          [d.type, d.receivedAt, d.instanceId, d.eventId, d.code, d.path, d.message, d.event],
        );
        perType.set(d.type, (perType.get(d.type) ?? 0) + 1);
      }
      for (const [type, n] of perType) {
        await sql(
          'INSERT INTO dead_letter_totals (type, total) VALUES ($1, $2) ON CONFLICT (type) DO UPDATE SET total = dead_letter_totals.total + excluded.total',
          [type, n],
        );
        await sql(
          'DELETE FROM dead_letters WHERE type = $1 AND seq <= (SELECT seq FROM dead_letters WHERE type = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)',
          [type, maxPerType],
        );
      }
    });
  }

  listDeadLetters(type: string, limit: number): Promise<DeadLetter[]> {
    return this.run('listDeadLetters', async (sql) =>
      (
        (await sql('SELECT * FROM dead_letters WHERE type = $1 ORDER BY seq DESC LIMIT $2', [type, limit]))
          .rows as DeadLetterRow[]
      ).map(deadLetterFromRow),
    );
  }

  deadLetterTotals(): Promise<Record<string, number>> {
    return this.run('deadLetterTotals', async (sql) => {
      const out: Record<string, number> = {};
      for (const r of (await sql('SELECT type, total FROM dead_letter_totals ORDER BY type')).rows as {
        type: string;
        total: number;
      }[]) {
        out[r.type] = r.total;
      }
      return out;
    });
  }

  /** Serialises registration and closing of one (type, hour) across connections and machines. */
  private lockHour(sql: Sql, type: string, hour: number): Promise<pg.QueryResult> {
    return sql('SELECT pg_advisory_xact_lock(hashtext($1), $2)', [type, Math.floor(hour / HOUR_MS)]);
  }

  registerFile(f: RawFile): Promise<'registered' | 'hour_closed'> {
    return this.tx('registerFile', async (sql): Promise<'registered' | 'hour_closed'> => {
      await this.lockHour(sql, f.type, f.hour);
      if (
        f.kind === 'raw' &&
        (await sql('SELECT 1 FROM hours WHERE type = $1 AND hour = $2', [f.type, f.hour])).rowCount
      ) {
        return 'hour_closed';
      }
      const inserted = await sql(
        `INSERT INTO files (type, hour, kind, name, events, bytes, ranges, consumer, committed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING`,
        [f.type, f.hour, f.kind, f.name, f.events, f.bytes, JSON.stringify(f.ranges), f.consumer, f.committedAt],
      );
      if (f.kind === 'late' && inserted.rowCount === 1) {
        await sql('UPDATE hours SET late_events = late_events + $1, updated_at = $2 WHERE type = $3 AND hour = $4', [
          f.events,
          f.committedAt,
          f.type,
          f.hour,
        ]);
      }
      return 'registered';
    });
  }

  listFiles(type: string, hour: number, kind: RawFile['kind']): Promise<RawFile[]> {
    return this.run('listFiles', async (sql) =>
      (
        (await sql('SELECT * FROM files WHERE type = $1 AND hour = $2 AND kind = $3 ORDER BY name', [type, hour, kind]))
          .rows as FileRow[]
      ).map(fileFromRow),
    );
  }

  closeHour(h: Parameters<StateStore['closeHour']>[0]): Promise<boolean> {
    return this.tx('closeHour', async (sql) => {
      await this.lockHour(sql, h.type, h.hour);
      const r = await sql(
        `INSERT INTO hours (type, hour, state, closed_at, closed_by, vanished_instances, ledger_total, updated_at)
         VALUES ($1, $2, 'closed', $3, $4, $5, $6, $7) ON CONFLICT (type, hour) DO NOTHING`,
        [h.type, h.hour, h.closedAt, h.closedBy, JSON.stringify(h.vanishedInstances), h.ledgerTotal, h.closedAt],
      );
      return r.rowCount === 1;
    });
  }

  updateHour(type: string, hour: number, patch: HourPatch, at: number, fence?: JobLease): Promise<void> {
    if (fence === undefined) return this.run('updateHour', (sql) => patchHour(sql, type, hour, patch, at));
    return this.tx('updateHour', async (sql) => {
      await this.checkFence(sql, fence);
      await patchHour(sql, type, hour, patch, at);
    });
  }

  /** Throws LeaseLost unless the claim still holds its job; locks the job's row for the transaction. */
  private async checkFence(sql: Sql, lease: JobLease): Promise<void> {
    const held = await sql(
      "SELECT 1 FROM jobs WHERE kind = $1 AND type = $2 AND partition_start = $3 AND token = $4 AND state = 'running' FOR UPDATE",
      [lease.kind, lease.type, lease.partition, lease.token],
    );
    if (held.rowCount !== 1) throw new LeaseLost(lease);
  }

  claimJob(key: JobKey, holder: string, leaseMs: number): Promise<JobLease | null> {
    return this.run('claimJob', async (sql) => {
      // the server's clock decides (one clock for every machine); $5 is the lease's length
      const text = numbered(CLAIM_JOB_SQL)
        .replace(/\$5\b/, () => `${NOW_MS} + $5`)
        .replace(/\$[6-9]\b/g, () => NOW_MS);
      const r = await sql(text, [key.kind, key.type, key.partition, holder, leaseMs]);
      const row = r.rows[0] as JobRow | undefined;
      return row === undefined ? null : leaseFromRow(row);
    });
  }

  renewJob(lease: JobLease, leaseMs: number): Promise<number | null> {
    return this.run('renewJob', async (sql) => {
      const r = await sql(
        `UPDATE jobs SET lease_until = ${NOW_MS} + $1, updated_at = ${NOW_MS}
         WHERE kind = $2 AND type = $3 AND partition_start = $4 AND token = $5 AND state = 'running' RETURNING lease_until`,
        [leaseMs, lease.kind, lease.type, lease.partition, lease.token],
      );
      const row = r.rows[0] as { lease_until: number } | undefined;
      return row === undefined ? null : Number(row.lease_until);
    });
  }

  finishJob(lease: JobLease, outcome: JobOutcome, hours: readonly HourUpdate[], at: number): Promise<boolean> {
    return this.tx('finishJob', async (sql) => {
      const now = Number(((await sql(`SELECT ${NOW_MS} AS now`)).rows[0] as { now: number }).now);
      const { sets, values } = jobOutcomeSets(outcome, now);
      const r = await sql(
        numbered(
          `UPDATE jobs SET ${sets.join(', ')} WHERE kind = ? AND type = ? AND partition_start = ? AND token = ? AND state = 'running'`,
        ),
        [...values, lease.kind, lease.type, lease.partition, lease.token],
      );
      if (r.rowCount !== 1) return false;
      for (const h of hours) await patchHour(sql, h.type, h.hour, h.patch, at);
      return true;
    });
  }

  listJobs(filter: JobFilter = {}): Promise<JobRecord[]> {
    return this.run('listJobs', async (sql) => {
      const { where, args, add } = conditions();
      if (filter.kind !== undefined) add('kind = ?', filter.kind);
      if (filter.type !== undefined) add('type = ?', filter.type);
      if (filter.from !== undefined) add('partition_start >= ?', filter.from);
      if (filter.to !== undefined) add('partition_start < ?', filter.to);
      const r = await sql(
        `SELECT * FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY kind, type, partition_start`,
        args,
      );
      return (r.rows as JobRow[]).map(jobFromRow);
    });
  }

  listHours(filter: HourFilter = {}): Promise<HourRecord[]> {
    return this.run('listHours', async (sql) => {
      const { where, args, add } = conditions();
      if (filter.type !== undefined) add('type = ?', filter.type);
      if (filter.from !== undefined) add('hour >= ?', filter.from);
      if (filter.to !== undefined) add('hour < ?', filter.to);
      if (filter.states !== undefined) add('state = ANY(?)', [...filter.states]);
      const text = `SELECT * FROM hours ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY type, hour`;
      return ((await sql(text, args)).rows as HourRow[]).map(hourFromRow);
    });
  }

  saveType(w: TypeWrite): Promise<RegisteredType> {
    const d = w.definition;
    const conflict = (reason: string, cause?: unknown): RegistryConflict =>
      new RegistryConflict({ type: d.name, expectedRevision: w.expectedRevision, reason }, { cause });
    return this.tx('saveType', async (sql) => {
      const row = (await sql('SELECT revision FROM event_types WHERE name = $1 FOR UPDATE', [d.name])).rows[0] as
        | { revision: number }
        | undefined;
      const current = row?.revision ?? 0;
      if (current !== w.expectedRevision) throw conflict(`revision is ${current}, expected ${w.expectedRevision}`);
      try {
        if (row === undefined) {
          await sql(
            `INSERT INTO event_types (name, owner, description, tier, partitioning, storage, retention_days, status,
               compatibility, dedup_window_ms, revision, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11)`,
            [
              d.name,
              d.owner,
              d.description,
              d.tier,
              d.partitioning,
              d.storage,
              d.retentionDays,
              d.status,
              compatibilityOf(d),
              dedupWindowMs(d),
              w.at,
            ],
          );
        } else {
          await sql(
            `UPDATE event_types SET owner = $1, description = $2, tier = $3, partitioning = $4, storage = $5,
               retention_days = $6, status = $7, compatibility = $8, dedup_window_ms = $9, revision = revision + 1,
               updated_at = $10 WHERE name = $11`,
            [
              d.owner,
              d.description,
              d.tier,
              d.partitioning,
              d.storage,
              d.retentionDays,
              d.status,
              compatibilityOf(d),
              dedupWindowMs(d),
              w.at,
              d.name,
            ],
          );
        }
        const last = (await sql('SELECT COALESCE(MAX(version), 0) AS v FROM schema_versions WHERE type = $1', [d.name]))
          .rows[0].v as number;
        for (const [i, v] of w.newVersions.entries()) {
          if (v.version !== last + i + 1) throw conflict(`version ${v.version} is not next (last is ${last + i})`);
          await sql(
            'INSERT INTO schema_versions (type, version, schema, fingerprint, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)',
            [d.name, v.version, v.schema, v.fingerprint, w.at, w.actor],
          );
        }
        await sql('INSERT INTO type_history (type, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5)', [
          d.name,
          w.at,
          w.actor,
          w.action,
          w.detail,
        ]);
      } catch (err) {
        // two first registrations racing: the loser hits the primary key
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw conflict('created concurrently', err);
        throw err;
      }
      return (await this.readType(sql, d.name)) as RegisteredType;
    });
  }

  private async readType(sql: Sql, name: string): Promise<RegisteredType | null> {
    const r = (await sql('SELECT * FROM event_types WHERE name = $1', [name])).rows[0] as TypeRow | undefined;
    if (r === undefined) return null;
    const versions = (await sql('SELECT * FROM schema_versions WHERE type = $1 ORDER BY version', [name]))
      .rows as VersionRow[];
    return typeFromRow(r, versions);
  }

  getType(name: string): Promise<RegisteredType | null> {
    return this.run('getType', (sql) => this.readType(sql, name));
  }

  listTypes(): Promise<RegisteredType[]> {
    return this.run('listTypes', async (sql) => {
      const versions = (await sql('SELECT * FROM schema_versions ORDER BY type, version')).rows as VersionRow[];
      const byType = new Map<string, VersionRow[]>();
      for (const v of versions) byType.set(v.type, [...(byType.get(v.type) ?? []), v]);
      return ((await sql('SELECT * FROM event_types ORDER BY name')).rows as TypeRow[]).map((r) =>
        typeFromRow(r, byType.get(r.name) ?? []),
      );
    });
  }

  typeHistory(name: string): Promise<RegistryChange[]> {
    return this.run('typeHistory', async (sql) =>
      (
        (
          await sql('SELECT seq, type, at, actor, action, detail FROM type_history WHERE type = $1 ORDER BY seq', [
            name,
          ])
        ).rows as RegistryChange[]
      ).map((r) => ({ ...r })),
    );
  }

  saveSteps(steps: readonly ReconcileStep[]): Promise<void> {
    return this.tx('saveSteps', async (sql) => {
      for (const st of steps) {
        await sql(
          `INSERT INTO reconcile_steps (type, step, status, attempts, error, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (type, step) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
             error = excluded.error, updated_at = excluded.updated_at`,
          [st.type, st.step, st.status, st.attempts, st.error, st.updatedAt],
        );
      }
    });
  }

  listSteps(type?: string): Promise<ReconcileStep[]> {
    return this.run('listSteps', async (sql) =>
      (type === undefined
        ? (await sql('SELECT * FROM reconcile_steps ORDER BY type, step')).rows
        : (await sql('SELECT * FROM reconcile_steps WHERE type = $1 ORDER BY step', [type])).rows
      ).map((r) => stepFromRow(r as StepRow)),
    );
  }

  forgetHours(type: string, before: number): Promise<number> {
    return this.tx('forgetHours', async (sql) => {
      await sql('DELETE FROM files WHERE type = $1 AND hour < $2', [type, before]);
      await sql('DELETE FROM ledgers WHERE type = $1 AND hour < $2', [type, before]);
      await sql('DELETE FROM jobs WHERE type = $1 AND partition_start < $2', [type, before]);
      return (await sql('DELETE FROM hours WHERE type = $1 AND hour < $2', [type, before])).rowCount ?? 0;
    });
  }

  addToken(t: ApiToken): Promise<void> {
    return this.run('addToken', async (sql) => {
      await sql(
        'INSERT INTO api_tokens (id, owner, role, scope, hash, created_at, expires_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [t.id, t.owner, t.role, t.scope, t.hash, t.createdAt, t.expiresAt, t.lastUsedAt, t.revokedAt],
      );
    });
  }

  getToken(id: string): Promise<ApiToken | null> {
    return this.run('getToken', async (sql) => {
      const r = (await sql('SELECT * FROM api_tokens WHERE id = $1', [id])).rows[0] as TokenRow | undefined;
      return r === undefined ? null : tokenFromRow(r);
    });
  }

  listTokens(): Promise<ApiToken[]> {
    return this.run('listTokens', async (sql) =>
      ((await sql('SELECT * FROM api_tokens ORDER BY created_at, id')).rows as TokenRow[]).map(tokenFromRow),
    );
  }

  revokeToken(id: string, at: number): Promise<boolean> {
    return this.run(
      'revokeToken',
      async (sql) =>
        (await sql('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2', [at, id])).rowCount ===
        1,
    );
  }

  touchToken(id: string, at: number, minIntervalMs: number): Promise<boolean> {
    return this.run(
      'touchToken',
      async (sql) =>
        (
          await sql(
            'UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)',
            [at, id, at - minIntervalMs],
          )
        ).rowCount === 1,
    );
  }

  ensureSetting(key: string, value: string, at: number): Promise<string> {
    return this.run('ensureSetting', async (sql) => {
      await sql('INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING', [
        key,
        value,
        at,
      ]);
      return (await sql('SELECT value FROM settings WHERE key = $1', [key])).rows[0].value as string;
    });
  }

  addProducerKey(k: ProducerKey): Promise<void> {
    return this.run('addProducerKey', async (sql) => {
      await sql(
        `INSERT INTO producer_keys (${PRODUCER_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        producerKeyValues(k),
      );
    });
  }

  getProducerKey(id: string): Promise<ProducerKey | null> {
    return this.run('getProducerKey', async (sql) => {
      const r = (await sql('SELECT * FROM producer_keys WHERE id = $1', [id])).rows[0] as ProducerKeyRow | undefined;
      return r === undefined ? null : producerKeyFromRow(r);
    });
  }

  listProducerKeys(): Promise<ProducerKey[]> {
    return this.run('listProducerKeys', async (sql) =>
      ((await sql('SELECT * FROM producer_keys ORDER BY created_at, id')).rows as ProducerKeyRow[]).map(
        producerKeyFromRow,
      ),
    );
  }

  revokeProducerKey(id: string, at: number): Promise<boolean> {
    return this.run(
      'revokeProducerKey',
      async (sql) =>
        (await sql('UPDATE producer_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2', [at, id]))
          .rowCount === 1,
    );
  }

  saveAlertRules(type: string, rules: readonly AlertRuleSpec[]): Promise<void> {
    return this.tx('saveAlertRules', async (sql) => {
      await sql('DELETE FROM alert_rules WHERE type = $1', [type]);
      for (const r of rules) {
        await sql('INSERT INTO alert_rules (type, rule, params, created_at) VALUES ($1, $2, $3, $4)', [
          type,
          r.rule,
          JSON.stringify(r.params),
          r.createdAt,
        ]);
      }
    });
  }

  listAlertRules(type?: string): Promise<AlertRuleSpec[]> {
    return this.run('listAlertRules', async (sql) =>
      (type === undefined
        ? (await sql('SELECT * FROM alert_rules ORDER BY type, rule')).rows
        : (await sql('SELECT * FROM alert_rules WHERE type = $1 ORDER BY rule', [type])).rows
      ).map((r) => alertRuleFromRow(r as AlertRuleRow)),
    );
  }

  openAlert(a: NewAlert): Promise<AlertRecord | null> {
    return this.run('openAlert', async (sql) => {
      const r = (
        await sql(
          `INSERT INTO alerts (rule, type, tier, state, summary, details, opened_at, resolved_at, routes, notified_at,
             notifications, updated_at)
           VALUES ($1, $2, $3, 'firing', $4, $5, $6, NULL, '[]', NULL, 0, $6)
           ON CONFLICT (rule, type) WHERE state = 'firing' DO NOTHING
           RETURNING *`,
          [a.rule, a.type, a.tier, a.summary, JSON.stringify(a.details), a.openedAt],
        )
      ).rows[0] as AlertRow | undefined;
      return r === undefined ? null : alertFromRow(r);
    });
  }

  updateAlert(seq: number, patch: AlertPatch, at: number, expectedNotifications?: number): Promise<boolean> {
    return this.run('updateAlert', async (sql) => {
      const cols = alertPatchColumns(patch);
      const values: (string | number | null)[] = [...cols.map(([, v]) => v), at, seq];
      const set = [...cols.map(([c], i) => `${c} = $${i + 1}`), `updated_at = $${cols.length + 1}`].join(', ');
      let guard = '';
      if (expectedNotifications !== undefined) {
        values.push(expectedNotifications);
        guard = ` AND notifications = $${values.length}`;
      }
      return (await sql(`UPDATE alerts SET ${set} WHERE seq = $${cols.length + 2}${guard}`, values)).rowCount === 1;
    });
  }

  listAlerts(filter: AlertFilter = {}): Promise<AlertRecord[]> {
    return this.run('listAlerts', async (sql) => {
      const { where, values } = alertFilterSql(filter, (i) => `$${i}`);
      const rows = (
        await sql(`SELECT * FROM alerts ${where} ORDER BY opened_at DESC, seq DESC LIMIT $${values.length + 1}`, [
          ...values,
          filter.limit ?? 1000,
        ])
      ).rows as AlertRow[];
      return rows.map(alertFromRow);
    });
  }

  lastCommits(): Promise<Record<string, number>> {
    return this.run('lastCommits', async (sql) => {
      const rows = (await sql('SELECT type, max(committed_at) AS at FROM files GROUP BY type')).rows as {
        type: string;
        at: number;
      }[];
      return Object.fromEntries(rows.map((r) => [r.type, Number(r.at)]));
    });
  }

  async ping(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
