/**
 * SQLite state store (better-sqlite3), the embedded default. One file in the data dir, WAL mode,
 * so several processes on one machine can share it (writers take turns; `busy_timeout` waits).
 * `synchronous=NORMAL`: a commit survives a process crash; after a power loss the last commits
 * before the WAL checkpoint may be lost (ledger entries are rebuilt from the bus by then: see
 * the completeness rules).
 */
import { closeSync, constants, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { LeaseLost, LedgerSealed, RegistryConflict, StateStoreFailed } from '../../../core/errors.js';
import { compatibilityOf, dedupWindowMs } from '../../../core/event-types.js';
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
import { SQLITE_MIGRATIONS } from './migrations.js';

export class SqliteStateStore implements StateStore {
  readonly backend = 'sqlite';
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  /**
   * Opens (creating if needed) the database file and runs pending migrations. A new database file
   * is private (0600, in a 0700 folder) whatever the umask: it is created before SQLite opens it,
   * and SQLite gives its -wal and -shm files the database file's permissions.
   */
  constructor(path: string) {
    try {
      if (path !== ':memory:' && path !== '') {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        closeSync(openSync(path, constants.O_RDONLY | constants.O_CREAT, 0o600));
      }
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (err) {
      throw new StateStoreFailed({ operation: `open ${path}` }, { cause: err });
    }
  }

  private migrate(): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
    );
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db
        .transaction(() => {
          this.db.exec(m.sql);
          this.db
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
        })
        .immediate();
    }
  }

  /** Migration versions applied, for tests and `hourglass` diagnostics. */
  appliedMigrations(): number[] {
    return (this.stmt('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map(
      (r) => r.version,
    );
  }

  /** Prepared once, reused (preparing costs more than running on the hot paths). */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private run<T>(operation: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      if (err instanceof LedgerSealed || err instanceof RegistryConflict || err instanceof LeaseLost)
        return Promise.reject(err);
      return Promise.reject(new StateStoreFailed({ operation }, { cause: err }));
    }
  }

  saveLedgers(entries: readonly LedgerEntry[]): Promise<void> {
    return this.run('saveLedgers', () => {
      const sealed = this.stmt('SELECT sealed FROM ledgers WHERE type = ? AND hour = ? AND instance_id = ?');
      const upsert = this.stmt(
        `INSERT INTO ledgers (instance_id, type, hour, ranges, count, sealed, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (type, hour, instance_id) DO UPDATE SET ranges = excluded.ranges, count = excluded.count,
           sealed = excluded.sealed, updated_at = excluded.updated_at`,
      );
      this.db
        .transaction(() => {
          for (const e of entries) {
            const row = sealed.get(e.type, e.hour, e.instanceId) as { sealed: number } | undefined;
            if (row?.sealed === 1) throw new LedgerSealed({ instanceId: e.instanceId, type: e.type, hour: e.hour });
            upsert.run(e.instanceId, e.type, e.hour, JSON.stringify(e.ranges), e.count, e.sealed ? 1 : 0, e.updatedAt);
          }
        })
        .immediate();
    });
  }

  sealLedgers(keys: readonly LedgerKey[], at: number): Promise<void> {
    return this.run('sealLedgers', () => {
      const insert = this.stmt(
        `INSERT INTO ledgers (instance_id, type, hour, ranges, count, sealed, updated_at) VALUES (?, ?, ?, '[]', 0, 1, ?)
         ON CONFLICT (type, hour, instance_id) DO UPDATE SET sealed = 1, updated_at = excluded.updated_at WHERE sealed = 0`,
      );
      this.db
        .transaction(() => {
          for (const k of keys) insert.run(k.instanceId, k.type, k.hour, at);
        })
        .immediate();
    });
  }

  listLedgers(filter: LedgerFilter = {}): Promise<LedgerEntry[]> {
    return this.run('listLedgers', () => {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (filter.type !== undefined) {
        where.push('type = ?');
        args.push(filter.type);
      }
      if (filter.hour !== undefined) {
        where.push('hour = ?');
        args.push(filter.hour);
      }
      if (filter.from !== undefined) {
        where.push('hour >= ?');
        args.push(filter.from);
      }
      if (filter.instanceId !== undefined) {
        where.push('instance_id = ?');
        args.push(filter.instanceId);
      }
      if (filter.unclosed === true) {
        where.push('NOT EXISTS (SELECT 1 FROM hours h WHERE h.type = ledgers.type AND h.hour = ledgers.hour)');
      }
      const sql = `SELECT * FROM ledgers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY type, hour, instance_id`;
      return (this.stmt(sql).all(...args) as LedgerRow[]).map(ledgerFromRow);
    });
  }

  upsertInstance(i: IngressInstance): Promise<void> {
    return this.run('upsertInstance', () => {
      this.stmt(
        `INSERT INTO ingress_instances (id, host, pid, started_at, last_seen_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, stopped_at = excluded.stopped_at`,
      ).run(i.id, i.host, i.pid, i.startedAt, i.lastSeenAt, i.stoppedAt);
    });
  }

  listInstances(): Promise<IngressInstance[]> {
    return this.run('listInstances', () =>
      (this.stmt('SELECT * FROM ingress_instances ORDER BY started_at, id').all() as InstanceRow[]).map(
        instanceFromRow,
      ),
    );
  }

  addDeadLetters(items: readonly NewDeadLetter[], maxPerType: number): Promise<void> {
    return this.run('addDeadLetters', () => {
      const insert = this.stmt(
        'INSERT INTO dead_letters (type, received_at, instance_id, event_id, code, path, message, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const total = this.stmt(
        'INSERT INTO dead_letter_totals (type, total) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET total = total + excluded.total',
      );
      const trim = this.stmt(
        'DELETE FROM dead_letters WHERE type = ? AND seq <= (SELECT seq FROM dead_letters WHERE type = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
      );
      this.db
        .transaction(() => {
          const perType = new Map<string, number>();
          for (const d of items) {
            insert.run(d.type, d.receivedAt, d.instanceId, d.eventId, d.code, d.path, d.message, d.event);
            perType.set(d.type, (perType.get(d.type) ?? 0) + 1);
          }
          for (const [type, n] of perType) {
            total.run(type, n);
            trim.run(type, type, maxPerType);
          }
        })
        .immediate();
    });
  }

  listDeadLetters(type: string, limit: number): Promise<DeadLetter[]> {
    return this.run('listDeadLetters', () =>
      (
        this.stmt('SELECT * FROM dead_letters WHERE type = ? ORDER BY seq DESC LIMIT ?').all(
          type,
          limit,
        ) as DeadLetterRow[]
      ).map(deadLetterFromRow),
    );
  }

  deadLetterTotals(): Promise<Record<string, number>> {
    return this.run('deadLetterTotals', () => {
      const out: Record<string, number> = {};
      for (const r of this.stmt('SELECT type, total FROM dead_letter_totals ORDER BY type').all() as {
        type: string;
        total: number;
      }[]) {
        out[r.type] = r.total;
      }
      return out;
    });
  }

  registerFile(f: RawFile): Promise<'registered' | 'hour_closed'> {
    return this.run('registerFile', () =>
      this.db
        .transaction((): 'registered' | 'hour_closed' => {
          if (f.kind === 'raw' && this.stmt('SELECT 1 FROM hours WHERE type = ? AND hour = ?').get(f.type, f.hour)) {
            return 'hour_closed';
          }
          const inserted = this.stmt(
            `INSERT INTO files (type, hour, kind, name, events, bytes, ranges, consumer, committed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
          ).run(f.type, f.hour, f.kind, f.name, f.events, f.bytes, JSON.stringify(f.ranges), f.consumer, f.committedAt);
          if (f.kind === 'late' && inserted.changes === 1) {
            this.stmt('UPDATE hours SET late_events = late_events + ?, updated_at = ? WHERE type = ? AND hour = ?').run(
              f.events,
              f.committedAt,
              f.type,
              f.hour,
            );
          }
          return 'registered';
        })
        .immediate(),
    );
  }

  listFiles(type: string, hour: number, kind: RawFile['kind']): Promise<RawFile[]> {
    return this.run('listFiles', () =>
      (
        this.stmt('SELECT * FROM files WHERE type = ? AND hour = ? AND kind = ? ORDER BY name').all(
          type,
          hour,
          kind,
        ) as FileRow[]
      ).map(fileFromRow),
    );
  }

  closeHour(h: Parameters<StateStore['closeHour']>[0]): Promise<boolean> {
    return this.run('closeHour', () => {
      const r = this.stmt(
        `INSERT INTO hours (type, hour, state, closed_at, closed_by, vanished_instances, ledger_total, updated_at)
         VALUES (?, ?, 'closed', ?, ?, ?, ?, ?) ON CONFLICT (type, hour) DO NOTHING`,
      ).run(h.type, h.hour, h.closedAt, h.closedBy, JSON.stringify(h.vanishedInstances), h.ledgerTotal, h.closedAt);
      return r.changes === 1;
    });
  }

  updateHour(type: string, hour: number, patch: HourPatch, at: number, fence?: JobLease): Promise<void> {
    return this.run('updateHour', () =>
      this.db
        .transaction(() => {
          if (fence !== undefined) this.checkFence(fence);
          this.patchHour(type, hour, patch, at);
        })
        .immediate(),
    );
  }

  private patchHour(type: string, hour: number, patch: HourPatch, at: number): void {
    const { sets, values } = hourPatchSets(patch, at);
    this.stmt(`UPDATE hours SET ${sets.join(', ')} WHERE type = ? AND hour = ?`).run(...values, type, hour);
  }

  /** Throws LeaseLost unless the claim still holds its job (inside a write transaction). */
  private checkFence(lease: JobLease): void {
    const held = this.stmt(
      "SELECT 1 FROM jobs WHERE kind = ? AND type = ? AND partition_start = ? AND token = ? AND state = 'running'",
    ).get(lease.kind, lease.type, lease.partition, lease.token);
    if (held === undefined) throw new LeaseLost(lease);
  }

  claimJob(key: JobKey, holder: string, leaseMs: number): Promise<JobLease | null> {
    return this.run('claimJob', () => {
      const now = Date.now();
      const r = this.stmt(CLAIM_JOB_SQL).get(
        key.kind,
        key.type,
        key.partition,
        holder,
        now + leaseMs,
        now,
        now,
        now,
        now,
      ) as JobRow | undefined;
      return r === undefined ? null : leaseFromRow(r);
    });
  }

  renewJob(lease: JobLease, leaseMs: number): Promise<number | null> {
    return this.run('renewJob', () => {
      const now = Date.now();
      const r = this.stmt(
        "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE kind = ? AND type = ? AND partition_start = ? AND token = ? AND state = 'running'",
      ).run(now + leaseMs, now, lease.kind, lease.type, lease.partition, lease.token);
      return r.changes === 1 ? now + leaseMs : null;
    });
  }

  finishJob(lease: JobLease, outcome: JobOutcome, hours: readonly HourUpdate[], at: number): Promise<boolean> {
    return this.run('finishJob', () =>
      this.db
        .transaction(() => {
          const { sets, values } = jobOutcomeSets(outcome, Date.now());
          const r = this.stmt(
            `UPDATE jobs SET ${sets.join(', ')} WHERE kind = ? AND type = ? AND partition_start = ? AND token = ? AND state = 'running'`,
          ).run(...values, lease.kind, lease.type, lease.partition, lease.token);
          if (r.changes !== 1) return false;
          for (const h of hours) this.patchHour(h.type, h.hour, h.patch, at);
          return true;
        })
        .immediate(),
    );
  }

  listJobs(filter: JobFilter = {}): Promise<JobRecord[]> {
    return this.run('listJobs', () => {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (filter.kind !== undefined) {
        where.push('kind = ?');
        args.push(filter.kind);
      }
      if (filter.type !== undefined) {
        where.push('type = ?');
        args.push(filter.type);
      }
      if (filter.from !== undefined) {
        where.push('partition_start >= ?');
        args.push(filter.from);
      }
      if (filter.to !== undefined) {
        where.push('partition_start < ?');
        args.push(filter.to);
      }
      const sql = `SELECT * FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY kind, type, partition_start`;
      return (this.stmt(sql).all(...args) as JobRow[]).map(jobFromRow);
    });
  }

  listHours(filter: HourFilter = {}): Promise<HourRecord[]> {
    return this.run('listHours', () => {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (filter.type !== undefined) {
        where.push('type = ?');
        args.push(filter.type);
      }
      if (filter.from !== undefined) {
        where.push('hour >= ?');
        args.push(filter.from);
      }
      if (filter.to !== undefined) {
        where.push('hour < ?');
        args.push(filter.to);
      }
      if (filter.states !== undefined) {
        where.push(`state IN (${filter.states.map(() => '?').join(', ') || "''"})`);
        args.push(...filter.states);
      }
      const sql = `SELECT * FROM hours ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY type, hour`;
      return (this.stmt(sql).all(...args) as HourRow[]).map(hourFromRow);
    });
  }

  saveType(w: TypeWrite): Promise<RegisteredType> {
    return this.run('saveType', () => {
      const d = w.definition;
      const tx = this.db.transaction(() => {
        const row = this.stmt('SELECT revision FROM event_types WHERE name = ?').get(d.name) as
          | { revision: number }
          | undefined;
        const current = row?.revision ?? 0;
        if (current !== w.expectedRevision) {
          throw new RegistryConflict({
            type: d.name,
            expectedRevision: w.expectedRevision,
            reason: `revision is ${current}, expected ${w.expectedRevision}`,
          });
        }
        if (row === undefined) {
          this.stmt(
            `INSERT INTO event_types (name, owner, description, tier, partitioning, storage, retention_days, status,
               compatibility, dedup_window_ms, revision, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
          ).run(
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
            w.at,
          );
        } else {
          this.stmt(
            `UPDATE event_types SET owner = ?, description = ?, tier = ?, partitioning = ?, storage = ?,
               retention_days = ?, status = ?, compatibility = ?, dedup_window_ms = ?, revision = revision + 1,
               updated_at = ? WHERE name = ?`,
          ).run(
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
          );
        }
        const last = (
          this.stmt('SELECT COALESCE(MAX(version), 0) AS v FROM schema_versions WHERE type = ?').get(d.name) as {
            v: number;
          }
        ).v;
        for (const [i, v] of w.newVersions.entries()) {
          if (v.version !== last + i + 1) {
            throw new RegistryConflict({
              type: d.name,
              expectedRevision: w.expectedRevision,
              reason: `version ${v.version} is not next (last is ${last + i})`,
            });
          }
          this.stmt(
            'INSERT INTO schema_versions (type, version, schema, fingerprint, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)',
          ).run(d.name, v.version, v.schema, v.fingerprint, w.at, w.actor);
        }
        this.stmt('INSERT INTO type_history (type, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)').run(
          d.name,
          w.at,
          w.actor,
          w.action,
          w.detail,
        );
      });
      tx.immediate();
      return this.readType(d.name) as RegisteredType;
    });
  }

  private readType(name: string): RegisteredType | null {
    const r = this.stmt('SELECT * FROM event_types WHERE name = ?').get(name) as TypeRow | undefined;
    if (r === undefined) return null;
    const versions = this.stmt('SELECT * FROM schema_versions WHERE type = ? ORDER BY version').all(
      name,
    ) as VersionRow[];
    return typeFromRow(r, versions);
  }

  getType(name: string): Promise<RegisteredType | null> {
    return this.run('getType', () => this.readType(name));
  }

  listTypes(): Promise<RegisteredType[]> {
    return this.run('listTypes', () => {
      const versions = this.stmt('SELECT * FROM schema_versions ORDER BY type, version').all() as VersionRow[];
      const byType = new Map<string, VersionRow[]>();
      for (const v of versions) byType.set(v.type, [...(byType.get(v.type) ?? []), v]);
      return (this.stmt('SELECT * FROM event_types ORDER BY name').all() as TypeRow[]).map((r) =>
        typeFromRow(r, byType.get(r.name) ?? []),
      );
    });
  }

  typeHistory(name: string): Promise<RegistryChange[]> {
    return this.run('typeHistory', () =>
      (this.stmt('SELECT * FROM type_history WHERE type = ? ORDER BY seq').all(name) as RegistryChange[]).map((r) => ({
        ...r,
      })),
    );
  }

  saveSteps(steps: readonly ReconcileStep[]): Promise<void> {
    return this.run('saveSteps', () => {
      const upsert = this.stmt(
        `INSERT INTO reconcile_steps (type, step, status, attempts, error, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (type, step) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
           error = excluded.error, updated_at = excluded.updated_at`,
      );
      this.db
        .transaction(() => {
          for (const st of steps) upsert.run(st.type, st.step, st.status, st.attempts, st.error, st.updatedAt);
        })
        .immediate();
    });
  }

  listSteps(type?: string): Promise<ReconcileStep[]> {
    return this.run('listSteps', () =>
      (type === undefined
        ? this.stmt('SELECT * FROM reconcile_steps ORDER BY type, step').all()
        : this.stmt('SELECT * FROM reconcile_steps WHERE type = ? ORDER BY step').all(type)
      ).map((r) => stepFromRow(r as StepRow)),
    );
  }

  forgetHours(type: string, before: number): Promise<number> {
    return this.run('forgetHours', () =>
      this.db
        .transaction(() => {
          this.stmt('DELETE FROM files WHERE type = ? AND hour < ?').run(type, before);
          this.stmt('DELETE FROM ledgers WHERE type = ? AND hour < ?').run(type, before);
          this.stmt('DELETE FROM jobs WHERE type = ? AND partition_start < ?').run(type, before);
          return this.stmt('DELETE FROM hours WHERE type = ? AND hour < ?').run(type, before).changes;
        })
        .immediate(),
    );
  }

  addToken(t: ApiToken): Promise<void> {
    return this.run('addToken', () => {
      this.stmt(
        'INSERT INTO api_tokens (id, owner, role, scope, hash, created_at, expires_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(t.id, t.owner, t.role, t.scope, t.hash, t.createdAt, t.expiresAt, t.lastUsedAt, t.revokedAt);
    });
  }

  getToken(id: string): Promise<ApiToken | null> {
    return this.run('getToken', () => {
      const r = this.stmt('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow | undefined;
      return r === undefined ? null : tokenFromRow(r);
    });
  }

  listTokens(): Promise<ApiToken[]> {
    return this.run('listTokens', () =>
      (this.stmt('SELECT * FROM api_tokens ORDER BY created_at, id').all() as TokenRow[]).map(tokenFromRow),
    );
  }

  revokeToken(id: string, at: number): Promise<boolean> {
    return this.run(
      'revokeToken',
      () =>
        this.stmt('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?').run(at, id).changes === 1,
    );
  }

  touchToken(id: string, at: number, minIntervalMs: number): Promise<boolean> {
    return this.run(
      'touchToken',
      () =>
        this.stmt(
          'UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)',
        ).run(at, id, at - minIntervalMs).changes === 1,
    );
  }

  ensureSetting(key: string, value: string, at: number): Promise<string> {
    return this.run('ensureSetting', () => {
      this.stmt('INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING').run(
        key,
        value,
        at,
      );
      return (this.stmt('SELECT value FROM settings WHERE key = ?').get(key) as { value: string }).value;
    });
  }

  addProducerKey(k: ProducerKey): Promise<void> {
    return this.run('addProducerKey', () => {
      this.stmt(`INSERT INTO producer_keys (${PRODUCER_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
        ...producerKeyValues(k),
      );
    });
  }

  getProducerKey(id: string): Promise<ProducerKey | null> {
    return this.run('getProducerKey', () => {
      const r = this.stmt('SELECT * FROM producer_keys WHERE id = ?').get(id) as ProducerKeyRow | undefined;
      return r === undefined ? null : producerKeyFromRow(r);
    });
  }

  listProducerKeys(): Promise<ProducerKey[]> {
    return this.run('listProducerKeys', () =>
      (this.stmt('SELECT * FROM producer_keys ORDER BY created_at, id').all() as ProducerKeyRow[]).map(
        producerKeyFromRow,
      ),
    );
  }

  revokeProducerKey(id: string, at: number): Promise<boolean> {
    return this.run(
      'revokeProducerKey',
      () =>
        this.stmt('UPDATE producer_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?').run(at, id).changes ===
        1,
    );
  }

  saveAlertRules(type: string, rules: readonly AlertRuleSpec[]): Promise<void> {
    return this.run('saveAlertRules', () => {
      const insert = this.stmt('INSERT INTO alert_rules (type, rule, params, created_at) VALUES (?, ?, ?, ?)');
      this.db
        .transaction(() => {
          this.stmt('DELETE FROM alert_rules WHERE type = ?').run(type);
          for (const r of rules) insert.run(type, r.rule, JSON.stringify(r.params), r.createdAt);
        })
        .immediate();
    });
  }

  listAlertRules(type?: string): Promise<AlertRuleSpec[]> {
    return this.run('listAlertRules', () =>
      (type === undefined
        ? this.stmt('SELECT * FROM alert_rules ORDER BY type, rule').all()
        : this.stmt('SELECT * FROM alert_rules WHERE type = ? ORDER BY rule').all(type)
      ).map((r) => alertRuleFromRow(r as AlertRuleRow)),
    );
  }

  openAlert(a: NewAlert): Promise<AlertRecord | null> {
    return this.run('openAlert', () => {
      const r = this.stmt(
        `INSERT INTO alerts (rule, type, tier, state, summary, details, opened_at, resolved_at, routes, notified_at,
           notifications, updated_at)
         VALUES (?, ?, ?, 'firing', ?, ?, ?, NULL, '[]', NULL, 0, ?)
         ON CONFLICT (rule, type) WHERE state = 'firing' DO NOTHING
         RETURNING *`,
      ).get(a.rule, a.type, a.tier, a.summary, JSON.stringify(a.details), a.openedAt, a.openedAt) as
        | AlertRow
        | undefined;
      return r === undefined ? null : alertFromRow(r);
    });
  }

  updateAlert(seq: number, patch: AlertPatch, at: number, expectedNotifications?: number): Promise<boolean> {
    return this.run('updateAlert', () => {
      const cols = alertPatchColumns(patch);
      const set = [...cols.map(([c]) => `${c} = ?`), 'updated_at = ?'].join(', ');
      const values = [...cols.map(([, v]) => v), at, seq];
      const guard = expectedNotifications === undefined ? '' : ' AND notifications = ?';
      if (expectedNotifications !== undefined) values.push(expectedNotifications);
      return this.db.prepare(`UPDATE alerts SET ${set} WHERE seq = ?${guard}`).run(...values).changes === 1;
    });
  }

  listAlerts(filter: AlertFilter = {}): Promise<AlertRecord[]> {
    return this.run('listAlerts', () => {
      const { where, values } = alertFilterSql(filter, () => '?');
      return (
        this.db
          .prepare(`SELECT * FROM alerts ${where} ORDER BY opened_at DESC, seq DESC LIMIT ?`)
          .all(...values, filter.limit ?? 1000) as AlertRow[]
      ).map(alertFromRow);
    });
  }

  lastCommits(): Promise<Record<string, number>> {
    return this.run('lastCommits', () => {
      const rows = this.stmt('SELECT type, max(committed_at) AS at FROM files GROUP BY type').all() as {
        type: string;
        at: number;
      }[];
      return Object.fromEntries(rows.map((r) => [r.type, r.at]));
    });
  }

  ping(): Promise<boolean> {
    try {
      this.stmt('SELECT 1').get();
      return Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}
