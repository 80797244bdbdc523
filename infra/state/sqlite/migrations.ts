/**
 * Versioned schema migrations of the SQLite state store. Append only: never edit a shipped step.
 * They run on open, each in its own transaction, recorded in `schema_migrations`.
 */
export const SQLITE_MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'ledgers, instances, dead letters',
    sql: `
      CREATE TABLE ledgers (
        instance_id TEXT NOT NULL,
        type TEXT NOT NULL,
        hour INTEGER NOT NULL,
        ranges TEXT NOT NULL,
        count INTEGER NOT NULL,
        sealed INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (type, hour, instance_id)
      );
      CREATE TABLE ingress_instances (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        stopped_at INTEGER
      );
      CREATE TABLE dead_letters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        instance_id TEXT NOT NULL,
        event_id TEXT,
        code TEXT NOT NULL,
        path TEXT NOT NULL,
        message TEXT NOT NULL,
        event TEXT NOT NULL
      );
      CREATE INDEX dead_letters_by_type ON dead_letters (type, seq);
      CREATE TABLE dead_letter_totals (
        type TEXT PRIMARY KEY,
        total INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'raw files and hour states',
    sql: `
      CREATE TABLE files (
        type TEXT NOT NULL,
        hour INTEGER NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL PRIMARY KEY,
        events INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        ranges TEXT NOT NULL,
        consumer TEXT NOT NULL,
        committed_at INTEGER NOT NULL
      );
      CREATE INDEX files_by_hour ON files (type, hour, kind);
      CREATE TABLE hours (
        type TEXT NOT NULL,
        hour INTEGER NOT NULL,
        state TEXT NOT NULL,
        closed_at INTEGER NOT NULL,
        closed_by TEXT NOT NULL,
        vanished_instances TEXT NOT NULL,
        ledger_total INTEGER NOT NULL,
        late_events INTEGER NOT NULL DEFAULT 0,
        events_in INTEGER,
        duplicates INTEGER,
        events_out INTEGER,
        manifest TEXT,
        published_at INTEGER,
        error TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (type, hour)
      );
      CREATE INDEX hours_by_state ON hours (state, type, hour);
    `,
  },
  {
    version: 3,
    name: 'registry of event types',
    sql: `
      CREATE TABLE event_types (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        description TEXT NOT NULL,
        tier TEXT NOT NULL,
        partitioning TEXT NOT NULL,
        storage TEXT NOT NULL,
        retention_days INTEGER NOT NULL,
        status TEXT NOT NULL,
        revision INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE schema_versions (
        type TEXT NOT NULL REFERENCES event_types (name),
        version INTEGER NOT NULL,
        schema TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (type, version)
      );
      CREATE TABLE type_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
      );
      CREATE INDEX type_history_by_type ON type_history (type, seq);
    `,
  },
  {
    version: 4,
    name: 'reconcile steps',
    sql: `
      CREATE TABLE reconcile_steps (
        type TEXT NOT NULL,
        step TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        error TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (type, step)
      );
    `,
  },
  {
    version: 5,
    name: 'API tokens',
    sql: `
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      );
    `,
  },
  {
    version: 6,
    name: 'alerts',
    sql: `
      CREATE TABLE alert_rules (
        type TEXT NOT NULL,
        rule TEXT NOT NULL,
        params TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (type, rule)
      );
      CREATE TABLE alerts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        rule TEXT NOT NULL,
        type TEXT NOT NULL,
        tier TEXT NOT NULL,
        state TEXT NOT NULL,
        summary TEXT NOT NULL,
        details TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        resolved_at INTEGER,
        routes TEXT NOT NULL,
        notified_at INTEGER,
        notifications INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule, type) WHERE state = 'firing';
      CREATE INDEX alerts_by_opening ON alerts (opened_at);
      CREATE INDEX files_by_commit ON files (type, committed_at);
    `,
  },
  {
    version: 7,
    name: 'warehouse loads',
    sql: `ALTER TABLE hours ADD COLUMN loaded_at INTEGER;`,
  },
  {
    version: 8,
    name: 'producer keys',
    sql: `
      CREATE TABLE producer_keys (
        id TEXT PRIMARY KEY,
        producer TEXT NOT NULL,
        types TEXT,
        rate_per_sec REAL,
        burst REAL,
        origins TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
      );
    `,
  },
  {
    version: 9,
    name: 'compatibility mode per event type',
    sql: `ALTER TABLE event_types ADD COLUMN compatibility TEXT NOT NULL DEFAULT 'backward_transitive';`,
  },
  {
    version: 10,
    name: 'API token scope, expiry and last use',
    sql: `
      ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'write';
      ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
      ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
    `,
  },
  {
    version: 11,
    name: 'batch jobs',
    sql: `
      CREATE TABLE jobs (
        kind TEXT NOT NULL,
        type TEXT NOT NULL,
        partition_start INTEGER NOT NULL,
        state TEXT NOT NULL,
        holder TEXT,
        lease_until INTEGER,
        token INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        run_after INTEGER NOT NULL,
        error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (kind, type, partition_start)
      );
    `,
  },
  {
    version: 12,
    name: 'dedup window per event type; deployment settings',
    sql: `
      ALTER TABLE event_types ADD COLUMN dedup_window_ms INTEGER NOT NULL DEFAULT 3600000;
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
    `,
  },
];
