import type { AlertSinkConfig } from './ports/alert-sink.js';

/**
 * Every default setting, in one place. Times are in milliseconds of the shared clock unless the
 * name says "real".
 */
export const DEFAULTS = {
  /** Where the embedded backends keep their data. */
  dataDir: '.hourglass',
  /** Event type declarations. */
  schemasDir: 'schemas',
  /** 1 in production; N makes an hour pass in 3600/N seconds (dev and tests only). */
  timeScale: 1,
  logLevel: 'info',
  /** `auto`: human-readable lines when the logs go to a terminal, JSON lines otherwise; or `pretty`, `json`. */
  logFormat: 'auto',
  ingress: {
    host: '127.0.0.1',
    port: 8080,
    /** Largest request body; larger bodies get 413 body_too_large. */
    bodyLimitBytes: 5 * 1024 * 1024,
    /** Most events in one request; more get 413 batch_too_large. */
    maxEventsPerBatch: 1000,
    /** Longest event id. */
    maxIdLength: 128,
    /** Request bytes being processed at once; beyond it requests get 429 overloaded. */
    maxInFlightBytes: 64 * 1024 * 1024,
    /**
     * Largest event in a batch, as bytes of its JSON; a larger one is rejected (`event_too_large`)
     * without being parsed, and the rest of its batch goes through.
     */
    maxEventBytes: 64 * 1024,
    /**
     * Objects and arrays in the events of one request, counted as the body is read (each becomes
     * an allocation when parsed); more get 413 batch_too_large before anything is built.
     */
    maxContainersPerBatch: 100_000,
    /** Most open connections; further ones are closed on arrival (node's `server.maxConnections`). */
    maxConnections: 10_000,
    /** A request must arrive completely within this (real ms), or it gets 408 (slow clients). */
    requestTimeoutRealMs: 30_000,
    /** Headers must arrive within this (real ms). */
    headersTimeoutRealMs: 10_000,
    /** An instance seals its ledger for an hour this long after the hour ended. */
    ledgerGraceMs: 5_000,
    /** How often the instance records that it is alive (real ms). */
    heartbeatRealMs: 5_000,
    /** Rejected events kept per type in the dead-letter area (older ones are dropped, totals kept). */
    deadLetterMaxPerType: 1000,
    /** Bytes of a rejected event kept in the dead-letter area. */
    deadLetterEventBytes: 4096,
    /** `POST /v1/events` needs a producer key (`Authorization: Bearer hgk_…`, `hourglass keys create`). */
    auth: true as boolean,
    /**
     * Events per second a producer key may send, per ingress instance, when the key sets no rate of
     * its own (token bucket; 0: unlimited). Over it a request gets 429 rate_limited with Retry-After.
     */
    keyRatePerSec: 10_000,
    /** Events a key may send at once above its rate (the bucket's size), when the key sets none. */
    keyBurst: 20_000,
    /** A key check is cached this long (real ms): a revoked key stops working within it everywhere. */
    keyRecheckRealMs: 1_000,
    /**
     * A request of a key already over its rate is answered 429 after this long (real ms), not at
     * once, so that a producer flooding far over its rate sends few requests per connection; its
     * body is not read meanwhile and holds no share of the in-flight budget. 0: answer at once.
     */
    rateLimitHoldRealMs: 1_000,
    /**
     * Requests of one key held so at once, per ingress instance; beyond them a request over the
     * rate is answered at once and its connection closed (its body is not received).
     */
    rateLimitHoldPerKey: 32,
    /**
     * Host names the dashboard answers to (its `Host` header, port aside), against DNS rebinding;
     * add the names it is reached by when it listens beyond loopback. Empty: any host.
     */
    allowedHosts: ['localhost', '127.0.0.1', '::1'] as string[],
    /**
     * Port of a second listener for everything but `POST /v1/events` and its CORS preflight (the
     * registry API, dashboard, dead letters, alerts, metrics, health), so producers' port can face
     * the internet while the rest stays private. null: everything on `port`.
     */
    adminPort: null as number | null,
    /** Address of the admin listener; '' : the same as `host`. */
    adminHost: '',
  },
  /** Google Cloud settings shared by the Pub/Sub bus, the Cloud Storage store and BigQuery. */
  gcp: {
    /** The project (also from GOOGLE_CLOUD_PROJECT). Credentials: application default credentials. */
    projectId: '',
  },
  bus: {
    /**
     * `embedded` (one machine), `pubsub` (Google Cloud Pub/Sub; honours PUBSUB_EMULATOR_HOST) or
     * `kafka` (settings under `kafka`).
     */
    backend: 'embedded' as 'embedded' | 'pubsub' | 'kafka',
    /** Embedded bus: a writer starts a new segment file past this size. */
    segmentBytes: 64 * 1024 * 1024,
    /** Embedded bus: how often finished, fully acked segments are deleted (real ms). */
    retentionSweepRealMs: 5_000,
    /** Time a delivered message may stay unacked before redelivery (real ms). */
    ackDeadlineRealMs: 60_000,
    /** Pub/Sub: prepended to every topic and subscription name (several pipelines in one project). */
    topicPrefix: '',
    /** Pub/Sub: streaming-pull streams per consumer (the client library's default; more for a fake). */
    pullStreams: 5,
  },
  /** The Kafka bus (`bus.backend: kafka`, or the second bus of a parallel run). */
  kafka: {
    /** Bootstrap brokers, `host:port` (also KAFKA_BROKERS, comma-separated). */
    brokers: [] as string[],
    clientId: 'hourglass',
    /** Partitions of each type's topic, and its replication factor (-1: the broker's default). */
    partitions: 3,
    replicationFactor: -1,
    /** Idempotent producer (needs a controller broker; librdkafka's mock cluster has none). */
    idempotent: true,
    /** Consumer group session timeout, and the time members get to rejoin in a rebalance (real ms). */
    sessionTimeoutRealMs: 10_000,
    rebalanceTimeoutRealMs: 10_000,
    /** TLS to the brokers, and SASL (`plain`, `scram-sha-256`, `scram-sha-512`; '' for none). */
    ssl: false,
    saslMechanism: '' as '' | 'plain' | 'scram-sha-256' | 'scram-sha-512',
    saslUsername: '',
    saslPassword: '',
  },
  /**
   * A parallel run: the ingress publishes every accepted event to the configured bus (pipeline
   * `main`) and to a second bus (pipeline `name`), whose ETL writes under `pipelines/<name>/` in
   * the same store. '' = no parallel run.
   */
  parallel: {
    name: '',
    /** The second bus: `kafka`, `pubsub` or `embedded` (its settings are the `kafka`/`gcp`/`bus` ones). */
    bus: 'kafka' as 'embedded' | 'pubsub' | 'kafka',
    /**
     * `all`: producers are answered once both buses hold the events (503 when either fails);
     * `primary`: once the primary holds them and the copy for the second bus is spooled on local
     * disk, from where it is forwarded when that bus is reachable.
     */
    ack: 'all' as 'all' | 'primary',
  },
  state: {
    backend: 'sqlite' as const,
  },
  store: {
    /** `fs`: files under `<dataDir>/objects`; `gcs`: a Cloud Storage bucket (write-once by precondition). */
    backend: 'fs' as 'fs' | 'gcs',
    /** gcs: the bucket, and a name prefix inside it. */
    bucket: '',
    prefix: '',
    /** gcs: another endpoint (an emulator); STORAGE_EMULATOR_HOST is honoured too. */
    endpoint: '',
  },
  warehouse: {
    /**
     * `duckdb`: queries read the final Parquet files (nothing to load); `bigquery`: types whose
     * `storage` is `warehouse` are loaded into BigQuery after publication (needs the `gcs` store).
     */
    backend: 'duckdb' as 'duckdb' | 'bigquery',
    /** bigquery: the dataset holding a table per type, and its location. */
    dataset: 'hourglass',
    location: 'EU',
    /** bigquery: another API endpoint (a test double or emulator). */
    endpoint: '',
  },
  etl: {
    /** Avro container codec of raw files: `snappy`, `deflate` or `null`. */
    codec: 'snappy' as 'snappy' | 'deflate' | 'null',
    /** zlib level of the deflate codec (1 fastest … 9 smallest). */
    deflateLevel: 1,
    /** A raw file is committed once its records reach this many bytes (uncompressed)… */
    maxFileBytes: 64 * 1024 * 1024,
    /** …or once its first record is this old (real ms). */
    maxFileAgeRealMs: 5_000,
    /** Bytes one type may hold in open files before the biggest is committed early. */
    maxBufferedBytes: 256 * 1024 * 1024,
    /** Delivered-but-unacked messages one type may hold (flow control). */
    maxOutstandingMessages: 200_000,
    /** Longest wait between retries of a failed file commit (real ms). */
    retryMaxRealMs: 30_000,
    /** An ingress instance silent for this long (real ms) is vanished (see the closer's rule). */
    vanishAfterRealMs: 30_000,
    /** How often the closer and dedup pass runs (real ms). */
    passIntervalRealMs: 1_000,
    /**
     * Most event ids the dedup step holds in memory (about id bytes + 12 each, outside the JS
     * heap); bigger partitions are split by id hash and spilled to disk.
     */
    dedupMaxIdsInMemory: 6_000_000,
    /** DuckDB's memory limit in queries and when dedup reads the previous partition's ids. */
    duckdbMemoryBytes: 256 * 1024 * 1024,
    duckdbThreads: 2,
    /** Column data per Parquet row group of a final partition (per writer). */
    dedupRowGroupBytes: 32 * 1024 * 1024,
    /** Worker threads writing Parquet for partitions of 250,000 events or more (0: none). */
    dedupWorkers: 1,
    /**
     * What `hourglass etl` does (`--roles`): `consume` (a consumer per type writing raw files),
     * `close` (closing ended hours), `dedup` (dedup and publication), `load` (warehouse loads).
     */
    roles: 'consume,close,dedup,load',
    /** Batch jobs (dedup and publication) one process runs at once, of different types; 0: one per core. */
    batchConcurrency: 0,
    /** A claimed batch job's lease (real ms): renewed every third of it; taken over by another worker once it ends. */
    jobLeaseRealMs: 30_000,
    /** Where `hourglass etl` serves `/metrics` and `/healthz` (port 0 picks a free one). */
    metricsHost: '127.0.0.1',
    metricsPort: 8082,
  },
  orchestrator: {
    /** Where `hourglass orchestrator` serves the registry API. */
    host: '127.0.0.1',
    port: 8081,
    /** How often the registry is read (schema distribution) and the reconcile loop runs (real ms). */
    syncIntervalRealMs: 1_000,
    /** Longest wait before a failed reconcile step is retried (real ms). */
    retryMaxRealMs: 30_000,
    /** How often data past its type's retention is deleted (real ms). */
    retentionSweepRealMs: 60_000,
  },
  registry: {
    /**
     * Active event types one owner may have. An owner token registering past it gets 403
     * quota_exceeded, and `types plan|apply` refuses folders that would pass it (unless
     * `--allow-over-quota`); an admin token may exceed it.
     */
    maxActiveTypesPerOwner: 50,
  },
  alerting: {
    /**
     * Timeliness SLO per tier: the longest time from a partition's end (its hour, or its day for
     * daily types) to its publication (clock ms).
     */
    sloMs: { high: 3 * 3_600_000, normal: 24 * 3_600_000, low: 72 * 3_600_000 },
    /** `slo_at_risk` fires once this share of the budget is used and the partition is unpublished. */
    atRiskShare: 0.5,
    /** `consumer_stuck`: a backlog whose oldest message is this old, and no commit for as long (real ms). */
    consumerStuckRealMs: 10 * 60_000,
    /**
     * `publication_failing`: a closed partition whose dedup step has failed (and is retried) is
     * still unpublished this long after it became due (closed, and its day over for daily types; real ms).
     */
    publicationFailingRealMs: 10 * 60_000,
    /** `reject_rate_spike`: share of a type's events rejected over the window… */
    rejectRateShare: 0.05,
    /** …of this length (real ms)… */
    rejectRateWindowRealMs: 5 * 60_000,
    /** …once at least this many events were sent in it. */
    rejectRateMinEvents: 100,
    /** `dead_letter_growth`: this many new dead letters of a type… */
    deadLetterGrowth: 1_000,
    /** …within this window (real ms). */
    deadLetterWindowRealMs: 15 * 60_000,
    /** A firing alert is notified again this often (clock ms). */
    renotifyMs: 4 * 3_600_000,
    /**
     * Business hours, when normal-tier alerts page (otherwise they open a ticket, and page when
     * business hours start if still firing). Days: 0 = Sunday … 6 = Saturday; hours 0–24 local to
     * `timezone` (an IANA name).
     */
    businessHours: { timezone: 'UTC', days: [1, 2, 3, 4, 5] as number[], startHour: 9, endHour: 17 },
    /** How often the rules are evaluated (real ms). */
    evaluateIntervalRealMs: 1_000,
    /** Where notifications go: see README, Alerting. None by default (alerts are still recorded). */
    sinks: [] as AlertSinkConfig[],
    /** Delivery attempts per notification and sink (retriable failures), and the first backoff (real ms). */
    deliveryAttempts: 6,
    deliveryBackoffRealMs: 500,
  },
} as const;
