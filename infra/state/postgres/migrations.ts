/**
 * Versioned schema migrations of the PostgreSQL state store (the same tables as SQLite's). Append only: never edit a shipped step.
 * They run on start under an advisory lock (several instances may start at once), each in its own
 * transaction, recorded in `schema_migrations`.
 */
export const POSTGRES_MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'ledgers, instances, dead letters',
    sql: `
      CREATE TABLE ledgers (
        instance_id TEXT NOT NULL,
        type TEXT NOT NULL,
        hour BIGINT NOT NULL,
        ranges TEXT NOT NULL,
        count BIGINT NOT NULL,
        sealed BOOLEAN NOT NULL DEFAULT false,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (type, hour, instance_id)
      );
      CREATE TABLE ingress_instances (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        stopped_at BIGINT
      );
      CREATE TABLE dead_letters (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        type TEXT NOT NULL,
        received_at BIGINT NOT NULL,
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
        total BIGINT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'raw files and hour states',
    sql: `
      CREATE TABLE files (
        type TEXT NOT NULL,
        hour BIGINT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL PRIMARY KEY,
        events BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        ranges TEXT NOT NULL,
        consumer TEXT NOT NULL,
        committed_at BIGINT NOT NULL
      );
      CREATE INDEX files_by_hour ON files (type, hour, kind);
      CREATE TABLE hours (
        type TEXT NOT NULL,
        hour BIGINT NOT NULL,
        state TEXT NOT NULL,
        closed_at BIGINT NOT NULL,
        closed_by TEXT NOT NULL,
        vanished_instances TEXT NOT NULL,
        ledger_total BIGINT NOT NULL,
        late_events BIGINT NOT NULL DEFAULT 0,
        events_in BIGINT,
        duplicates BIGINT,
        events_out BIGINT,
        manifest TEXT,
        published_at BIGINT,
        error TEXT,
        updated_at BIGINT NOT NULL,
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
        retention_days BIGINT NOT NULL,
        status TEXT NOT NULL,
        revision BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE schema_versions (
        type TEXT NOT NULL REFERENCES event_types (name),
        version BIGINT NOT NULL,
        schema TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (type, version)
      );
      CREATE TABLE type_history (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        type TEXT NOT NULL,
        at BIGINT NOT NULL,
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
        attempts BIGINT NOT NULL,
        error TEXT,
        updated_at BIGINT NOT NULL,
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
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
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
        created_at BIGINT NOT NULL,
        PRIMARY KEY (type, rule)
      );
      CREATE TABLE alerts (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        rule TEXT NOT NULL,
        type TEXT NOT NULL,
        tier TEXT NOT NULL,
        state TEXT NOT NULL,
        summary TEXT NOT NULL,
        details TEXT NOT NULL,
        opened_at BIGINT NOT NULL,
        resolved_at BIGINT,
        routes TEXT NOT NULL,
        notified_at BIGINT,
        notifications BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule, type) WHERE state = 'firing';
      CREATE INDEX alerts_by_opening ON alerts (opened_at);
      CREATE INDEX files_by_commit ON files (type, committed_at);
    `,
  },
  {
    version: 7,
    name: 'warehouse loads',
    sql: `ALTER TABLE hours ADD COLUMN loaded_at BIGINT;`,
  },
  {
    version: 8,
    name: 'producer keys',
    sql: `
      CREATE TABLE producer_keys (
        id TEXT PRIMARY KEY,
        producer TEXT NOT NULL,
        types TEXT,
        rate_per_sec DOUBLE PRECISION,
        burst DOUBLE PRECISION,
        origins TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT
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
      ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
      ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
    `,
  },
  {
    version: 11,
    name: 'batch jobs',
    sql: `
      CREATE TABLE jobs (
        kind TEXT NOT NULL,
        type TEXT NOT NULL,
        partition_start BIGINT NOT NULL,
        state TEXT NOT NULL,
        holder TEXT,
        lease_until BIGINT,
        token BIGINT NOT NULL,
        attempts BIGINT NOT NULL,
        run_after BIGINT NOT NULL,
        error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (kind, type, partition_start)
      );
    `,
  },
  {
    version: 12,
    name: 'dedup window per event type; deployment settings',
    sql: `
      ALTER TABLE event_types ADD COLUMN dedup_window_ms BIGINT NOT NULL DEFAULT 3600000;
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
    `,
  },
];
