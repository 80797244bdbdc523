/**
 * Configuration: parsed once at process start from defaults ← config file ← environment ← flags,
 * validated, frozen and passed down. Nothing reads `process.env` at module load.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULTS } from './defaults.js';
import { ConfigInvalid } from './errors.js';
import { type EtlRole, parseRoles } from './etl-roles.js';
import { TIERS, type Tier } from './event-types.js';
import type { AlertSinkConfig } from './ports/alert-sink.js';

export interface IngressConfig {
  readonly host: string;
  readonly port: number;
  /** Stable id of this ingress instance; default: a new one per process start. */
  readonly instanceId: string | null;
  readonly bodyLimitBytes: number;
  readonly maxEventsPerBatch: number;
  readonly maxIdLength: number;
  readonly maxInFlightBytes: number;
  /** Largest event (its JSON) in a batch; a larger one is rejected with `event_too_large`, unparsed. */
  readonly maxEventBytes: number;
  /** Objects and arrays in one request body at most (413 batch_too_large beyond). */
  readonly maxContainersPerBatch: number;
  /** Most open connections (node's `server.maxConnections`); further ones are closed on arrival. */
  readonly maxConnections: number;
  readonly requestTimeoutRealMs: number;
  readonly headersTimeoutRealMs: number;
  readonly ledgerGraceMs: number;
  readonly heartbeatRealMs: number;
  readonly deadLetterMaxPerType: number;
  readonly deadLetterEventBytes: number;
  /** `POST /v1/events` needs a producer key. */
  readonly auth: boolean;
  /** Rate and burst of producer keys that set none (events/s, events; 0: unlimited). */
  readonly keyRatePerSec: number;
  readonly keyBurst: number;
  /** How long a key check is cached (real ms): the bound on revocation. */
  readonly keyRecheckRealMs: number;
  /** How long a request of a key over its rate waits for its 429 (real ms; 0: at once). */
  readonly rateLimitHoldRealMs: number;
  /** Requests of one key waiting so at once; beyond them: 429 at once and the connection closed. */
  readonly rateLimitHoldPerKey: number;
  /** Host names the dashboard answers to (`Host` header; DNS rebinding); empty: any. */
  readonly allowedHosts: readonly string[];
  /**
   * A second listener for everything but `POST /v1/events` (registry, dashboard, dead letters,
   * metrics, health): its port, or null to serve all on `port`.
   */
  readonly adminPort: number | null;
  readonly adminHost: string;
}

export interface HourglassConfig {
  readonly dataDir: string;
  readonly schemasDir: string;
  readonly timeScale: number;
  readonly logLevel: string;
  /** How logs are written: `pretty` lines for people, `json` lines for machines, `auto` (pretty on a terminal). */
  readonly logFormat: LogFormat;
  readonly ingress: IngressConfig;
  readonly gcp: { readonly projectId: string };
  readonly bus: {
    readonly backend: BusBackend;
    readonly segmentBytes: number;
    readonly retentionSweepRealMs: number;
    readonly ackDeadlineRealMs: number;
    readonly topicPrefix: string;
    readonly pullStreams: number;
  };
  readonly kafka: KafkaSettings;
  readonly parallel: ParallelSettings | null;
  readonly state:
    | { readonly backend: 'sqlite' }
    | { readonly backend: 'postgres'; readonly url: string; readonly schema: string };
  readonly store:
    | { readonly backend: 'fs' }
    | { readonly backend: 'gcs'; readonly bucket: string; readonly prefix: string; readonly endpoint: string | null };
  readonly orchestrator: {
    readonly host: string;
    readonly port: number;
    readonly syncIntervalRealMs: number;
    readonly retryMaxRealMs: number;
    readonly retentionSweepRealMs: number;
  };
  readonly registry: {
    /** Active event types per owner; owner tokens and folder applies may not pass it, admin tokens may. */
    readonly maxActiveTypesPerOwner: number;
  };
  readonly warehouse:
    | { readonly backend: 'duckdb' }
    | {
        readonly backend: 'bigquery';
        readonly dataset: string;
        readonly location: string;
        readonly endpoint: string | null;
      };
  readonly etl: EtlSettings;
  readonly alerting: AlertingSettings;
}

export type BusBackend = 'embedded' | 'pubsub' | 'kafka';

export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface KafkaSettings {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly idempotent: boolean;
  readonly sessionTimeoutRealMs: number;
  readonly rebalanceTimeoutRealMs: number;
  readonly ssl: boolean;
  readonly sasl: {
    readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
    readonly username: string;
    readonly password: string;
  } | null;
}

/** The second pipeline of a parallel run. */
export interface ParallelSettings {
  readonly name: string;
  readonly bus: BusBackend;
  readonly ack: 'all' | 'primary';
}

/** The name of the configured bus's pipeline in a parallel run. */
export const MAIN_PIPELINE = 'main';

export interface AlertingSettings {
  readonly sloMs: Readonly<Record<Tier, number>>;
  readonly atRiskShare: number;
  readonly consumerStuckRealMs: number;
  readonly publicationFailingRealMs: number;
  readonly rejectRateShare: number;
  readonly rejectRateWindowRealMs: number;
  readonly rejectRateMinEvents: number;
  readonly deadLetterGrowth: number;
  readonly deadLetterWindowRealMs: number;
  readonly renotifyMs: number;
  readonly businessHours: BusinessHours;
  readonly evaluateIntervalRealMs: number;
  readonly sinks: readonly AlertSinkConfig[];
  readonly deliveryAttempts: number;
  readonly deliveryBackoffRealMs: number;
}

export interface BusinessHours {
  /** IANA time zone name. */
  readonly timezone: string;
  /** 0 = Sunday … 6 = Saturday. */
  readonly days: readonly number[];
  readonly startHour: number;
  readonly endHour: number;
}

export interface EtlSettings {
  readonly codec: 'deflate' | 'snappy' | 'null';
  readonly deflateLevel: number;
  readonly maxFileBytes: number;
  readonly maxFileAgeRealMs: number;
  readonly maxBufferedBytes: number;
  readonly maxOutstandingMessages: number;
  readonly retryMaxRealMs: number;
  readonly vanishAfterRealMs: number;
  readonly passIntervalRealMs: number;
  readonly dedupMaxIdsInMemory: number;
  readonly duckdbMemoryBytes: number;
  readonly duckdbThreads: number;
  readonly dedupRowGroupBytes: number;
  readonly dedupWorkers: number;
  readonly roles: ReadonlySet<EtlRole>;
  readonly batchConcurrency: number;
  readonly jobLeaseRealMs: number;
  readonly metricsHost: string;
  readonly metricsPort: number;
}

/** Environment variables and the setting each one sets. */
export const ENV_SETTINGS: Readonly<Record<string, string>> = {
  HOURGLASS_DATA_DIR: 'dataDir',
  HOURGLASS_SCHEMAS_DIR: 'schemasDir',
  HOURGLASS_TIME_SCALE: 'timeScale',
  HOURGLASS_LOG_LEVEL: 'logLevel',
  HOURGLASS_LOG_FORMAT: 'logFormat',
  HOURGLASS_HOST: 'ingress.host',
  HOURGLASS_PORT: 'ingress.port',
  HOURGLASS_INSTANCE_ID: 'ingress.instanceId',
  HOURGLASS_BODY_LIMIT_BYTES: 'ingress.bodyLimitBytes',
  HOURGLASS_MAX_EVENTS_PER_BATCH: 'ingress.maxEventsPerBatch',
  HOURGLASS_MAX_IN_FLIGHT_BYTES: 'ingress.maxInFlightBytes',
  HOURGLASS_REQUEST_TIMEOUT_MS: 'ingress.requestTimeoutRealMs',
  HOURGLASS_LEDGER_GRACE_MS: 'ingress.ledgerGraceMs',
  HOURGLASS_INGRESS_AUTH: 'ingress.auth',
  HOURGLASS_ALLOWED_HOSTS: 'ingress.allowedHosts',
  HOURGLASS_ADMIN_PORT: 'ingress.adminPort',
  HOURGLASS_ADMIN_HOST: 'ingress.adminHost',
  HOURGLASS_BUS: 'bus.backend',
  HOURGLASS_TOPIC_PREFIX: 'bus.topicPrefix',
  HOURGLASS_PULL_STREAMS: 'bus.pullStreams',
  KAFKA_BROKERS: 'kafka.brokers',
  HOURGLASS_KAFKA_CLIENT_ID: 'kafka.clientId',
  HOURGLASS_KAFKA_PARTITIONS: 'kafka.partitions',
  HOURGLASS_KAFKA_SSL: 'kafka.ssl',
  HOURGLASS_KAFKA_IDEMPOTENT: 'kafka.idempotent',
  HOURGLASS_KAFKA_SASL_MECHANISM: 'kafka.saslMechanism',
  HOURGLASS_KAFKA_SASL_USERNAME: 'kafka.saslUsername',
  HOURGLASS_KAFKA_SASL_PASSWORD: 'kafka.saslPassword',
  HOURGLASS_PARALLEL: 'parallel.name',
  HOURGLASS_PARALLEL_BUS: 'parallel.bus',
  HOURGLASS_PARALLEL_ACK: 'parallel.ack',
  HOURGLASS_STORE: 'store.backend',
  HOURGLASS_GCS_BUCKET: 'store.bucket',
  HOURGLASS_GCS_PREFIX: 'store.prefix',
  HOURGLASS_GCS_ENDPOINT: 'store.endpoint',
  GOOGLE_CLOUD_PROJECT: 'gcp.projectId',
  HOURGLASS_WAREHOUSE: 'warehouse.backend',
  HOURGLASS_BQ_DATASET: 'warehouse.dataset',
  HOURGLASS_BQ_LOCATION: 'warehouse.location',
  HOURGLASS_BQ_ENDPOINT: 'warehouse.endpoint',
  HOURGLASS_STATE: 'state.backend',
  HOURGLASS_STATE_URL: 'state.url',
  HOURGLASS_STATE_SCHEMA: 'state.schema',
  HOURGLASS_SEGMENT_BYTES: 'bus.segmentBytes',
  HOURGLASS_RAW_FILE_BYTES: 'etl.maxFileBytes',
  HOURGLASS_RAW_FILE_AGE_MS: 'etl.maxFileAgeRealMs',
  HOURGLASS_VANISH_AFTER_MS: 'etl.vanishAfterRealMs',
  HOURGLASS_DEDUP_MAX_IDS: 'etl.dedupMaxIdsInMemory',
  HOURGLASS_SYNC_INTERVAL_MS: 'orchestrator.syncIntervalRealMs',
  HOURGLASS_ORCHESTRATOR_PORT: 'orchestrator.port',
  HOURGLASS_ETL_METRICS_PORT: 'etl.metricsPort',
  HOURGLASS_ALERT_TIMEZONE: 'alerting.businessHours.timezone',
};

type Settings = Record<string, unknown>;

export interface ConfigSources {
  /** Path of a config file, JSON or YAML (`.yaml`/`.yml`): the same shape as HourglassConfig, any subset. */
  readonly file?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Settings by dotted path, e.g. `{ 'ingress.port': 9000 }` (command-line flags). */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

export function loadConfig(sources: ConfigSources = {}): HourglassConfig {
  const merged: Settings = structuredClone(DEFAULTS) as unknown as Settings;
  if (sources.file) {
    let fromFile: unknown;
    try {
      const text = readFileSync(sources.file, 'utf8');
      fromFile = /\.ya?ml$/i.test(sources.file) ? parseYaml(text) : JSON.parse(text);
    } catch (err) {
      throw new ConfigInvalid({ key: sources.file, rule: `cannot read config file: ${(err as Error).message}` });
    }
    deepMerge(merged, fromFile as Settings, '');
  }
  for (const [name, path] of Object.entries(ENV_SETTINGS)) {
    const value = sources.env?.[name];
    if (value !== undefined && value !== '') setPath(merged, path, value);
  }
  for (const [path, value] of Object.entries(sources.overrides ?? {})) {
    if (value !== undefined) setPath(merged, path, value);
  }
  return deepFreeze(validate(merged));
}

function deepMerge(target: Settings, source: Settings, prefix: string): void {
  if (typeof source !== 'object' || source === null)
    throw new ConfigInvalid({ key: prefix || '(root)', rule: 'must be an object' });
  for (const [k, v] of Object.entries(source)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (!(k in target)) throw new ConfigInvalid({ key, rule: 'unknown setting' });
    const t = target[k];
    if (Array.isArray(t)) {
      if (!Array.isArray(v)) throw new ConfigInvalid({ key, rule: 'must be an array' });
      target[k] = v;
    } else if (typeof t === 'object' && t !== null) deepMerge(t as Settings, v as Settings, key);
    else target[k] = v;
  }
}

function setPath(target: Settings, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) node = node[p] as Settings;
  node[parts[parts.length - 1] as string] = value;
}

/** A list of host names (an array, or comma-separated text), lower case. */
function hostList(raw: unknown): string[] {
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [];
  return items.map((h) => String(h).trim().toLowerCase()).filter(Boolean);
}

/** A switch: true/false, "on"/"off", "true"/"false", "1"/"0". */
function onOff(s: Settings, key: string, path: string): boolean {
  const raw = s[key];
  if (raw === true || raw === 'on' || raw === 'true' || raw === '1') return true;
  if (raw === false || raw === 'off' || raw === 'false' || raw === '0') return false;
  throw new ConfigInvalid({ key: path, rule: `on or off, got ${JSON.stringify(raw)}` });
}

function num(
  s: Settings,
  key: string,
  path: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  integer = true,
): number {
  const raw = s[key];
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || Number.isNaN(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new ConfigInvalid({
      key: path,
      rule: `must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, got ${JSON.stringify(raw)}`,
    });
  }
  return n;
}

function str(s: Settings, key: string, path: string): string {
  const v = s[key];
  if (typeof v !== 'string' || v === '') throw new ConfigInvalid({ key: path, rule: 'must be a non-empty string' });
  return v;
}

function validate(s: Settings): HourglassConfig {
  const i = s.ingress as Settings;
  const b = s.bus as Settings;
  const st = s.state as Settings;
  const e = s.etl as Settings;
  const so = s.store as Settings;
  const o = s.orchestrator as Settings;
  const g = s.gcp as Settings;
  if (so.backend !== 'fs' && so.backend !== 'gcs') {
    throw new ConfigInvalid({ key: 'store.backend', rule: `must be "fs" or "gcs", got ${JSON.stringify(so.backend)}` });
  }
  const w = s.warehouse as Settings;
  if (w.backend !== 'duckdb' && w.backend !== 'bigquery') {
    throw new ConfigInvalid({
      key: 'warehouse.backend',
      rule: `must be "duckdb" or "bigquery", got ${JSON.stringify(w.backend)}`,
    });
  }
  if (w.backend === 'bigquery' && so.backend !== 'gcs') {
    throw new ConfigInvalid({
      key: 'warehouse.backend',
      rule: 'BigQuery loads the partitions from Cloud Storage: it needs store.backend "gcs"',
    });
  }
  if (w.backend === 'bigquery' && (typeof w.dataset !== 'string' || !/^[A-Za-z0-9_]{1,1024}$/.test(w.dataset))) {
    throw new ConfigInvalid({ key: 'warehouse.dataset', rule: 'letters, digits and "_" (a BigQuery dataset id)' });
  }
  const projectId = typeof g.projectId === 'string' ? g.projectId : '';
  const needsProject =
    b.backend === 'pubsub' ||
    (s.parallel as Settings).bus === 'pubsub' ||
    so.backend === 'gcs' ||
    w.backend === 'bigquery';
  if (needsProject && !/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(projectId)) {
    throw new ConfigInvalid({
      key: 'gcp.projectId',
      rule: `a Google Cloud project id (6–30 lower-case letters, digits, "-") for the ${b.backend === 'pubsub' ? 'Pub/Sub bus' : 'Cloud Storage store'} (GOOGLE_CLOUD_PROJECT), got ${JSON.stringify(projectId)}`,
    });
  }
  if (
    so.backend === 'gcs' &&
    (typeof so.bucket !== 'string' || !/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(so.bucket))
  ) {
    throw new ConfigInvalid({
      key: 'store.bucket',
      rule: `a Cloud Storage bucket name (HOURGLASS_GCS_BUCKET), got ${JSON.stringify(so.bucket)}`,
    });
  }
  if (typeof so.prefix !== 'string' || (so.prefix !== '' && !so.prefix.endsWith('/'))) {
    throw new ConfigInvalid({ key: 'store.prefix', rule: 'empty, or a name prefix ending with "/"' });
  }
  if (
    typeof b.topicPrefix !== 'string' ||
    !/^([A-Za-z][A-Za-z0-9._~+%-]*)?$/.test(b.topicPrefix) ||
    b.topicPrefix.toLowerCase().startsWith('goog')
  ) {
    throw new ConfigInvalid({
      key: 'bus.topicPrefix',
      rule: 'empty, or a letter then letters, digits, ".", "_", "-", "~", "+", "%" (Pub/Sub names), not starting with "goog"',
    });
  }
  if (e.codec !== 'deflate' && e.codec !== 'snappy' && e.codec !== 'null') {
    throw new ConfigInvalid({
      key: 'etl.codec',
      rule: `must be "snappy", "deflate" or "null", got ${JSON.stringify(e.codec)}`,
    });
  }
  const logLevel = str(s, 'logLevel', 'logLevel');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigInvalid({ key: 'logLevel', rule: 'must be fatal, error, warn, info, debug, trace or silent' });
  }
  const logFormat = s.logFormat as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) {
    throw new ConfigInvalid({
      key: 'logFormat',
      rule: `must be auto, pretty or json, got ${JSON.stringify(s.logFormat)}`,
    });
  }
  const busBackend = busBackendOf(b.backend, 'bus.backend');
  const parallel = parallelSettings(s.parallel as Settings, busBackend);
  const kafka = kafkaSettings(s.kafka as Settings, busBackend === 'kafka' || parallel?.bus === 'kafka');
  if (st.backend !== 'sqlite' && st.backend !== 'postgres') {
    throw new ConfigInvalid({
      key: 'state.backend',
      rule: `must be "sqlite" or "postgres", got ${JSON.stringify(st.backend)}`,
    });
  }
  if (st.backend === 'postgres' && (typeof st.url !== 'string' || !/^postgres(ql)?:\/\//.test(st.url))) {
    throw new ConfigInvalid({
      key: 'state.url',
      rule: 'with state.backend "postgres", a postgres:// connection string (HOURGLASS_STATE_URL)',
    });
  }
  const stateSchema = st.schema ?? 'public';
  if (typeof stateSchema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(stateSchema)) {
    throw new ConfigInvalid({ key: 'state.schema', rule: 'a lower-case SQL identifier' });
  }
  const instanceId =
    i.instanceId === undefined || i.instanceId === null ? null : str(i, 'instanceId', 'ingress.instanceId');
  if (instanceId !== null && !/^[A-Za-z0-9._-]{1,100}$/.test(instanceId)) {
    throw new ConfigInvalid({ key: 'ingress.instanceId', rule: 'letters, digits, ".", "_" or "-", at most 100' });
  }
  return {
    dataDir: resolve(str(s, 'dataDir', 'dataDir')),
    schemasDir: resolve(str(s, 'schemasDir', 'schemasDir')),
    timeScale: num(s, 'timeScale', 'timeScale', 1, 100_000, false),
    logLevel,
    logFormat,
    ingress: {
      host: str(i, 'host', 'ingress.host'),
      port: num(i, 'port', 'ingress.port', 0, 65535),
      instanceId,
      bodyLimitBytes: num(i, 'bodyLimitBytes', 'ingress.bodyLimitBytes', 1024, 1024 * 1024 * 1024),
      maxEventsPerBatch: num(i, 'maxEventsPerBatch', 'ingress.maxEventsPerBatch', 1, 100_000),
      maxIdLength: num(i, 'maxIdLength', 'ingress.maxIdLength', 8, 1024),
      maxInFlightBytes: num(i, 'maxInFlightBytes', 'ingress.maxInFlightBytes', 1024, 16 * 1024 * 1024 * 1024),
      maxEventBytes: num(i, 'maxEventBytes', 'ingress.maxEventBytes', 256, 1024 * 1024 * 1024),
      maxContainersPerBatch: num(i, 'maxContainersPerBatch', 'ingress.maxContainersPerBatch', 1000),
      maxConnections: num(i, 'maxConnections', 'ingress.maxConnections', 1, 1_000_000),
      requestTimeoutRealMs: num(i, 'requestTimeoutRealMs', 'ingress.requestTimeoutRealMs', 100),
      headersTimeoutRealMs: num(i, 'headersTimeoutRealMs', 'ingress.headersTimeoutRealMs', 100),
      ledgerGraceMs: num(i, 'ledgerGraceMs', 'ingress.ledgerGraceMs', 0),
      heartbeatRealMs: num(i, 'heartbeatRealMs', 'ingress.heartbeatRealMs', 10),
      deadLetterMaxPerType: num(i, 'deadLetterMaxPerType', 'ingress.deadLetterMaxPerType', 0),
      deadLetterEventBytes: num(i, 'deadLetterEventBytes', 'ingress.deadLetterEventBytes', 64),
      auth: onOff(i, 'auth', 'ingress.auth'),
      keyRatePerSec: num(i, 'keyRatePerSec', 'ingress.keyRatePerSec', 0, Number.MAX_SAFE_INTEGER, false),
      keyBurst: num(i, 'keyBurst', 'ingress.keyBurst', 1),
      keyRecheckRealMs: num(i, 'keyRecheckRealMs', 'ingress.keyRecheckRealMs', 10, 60_000),
      rateLimitHoldRealMs: num(i, 'rateLimitHoldRealMs', 'ingress.rateLimitHoldRealMs', 0, 60_000),
      rateLimitHoldPerKey: num(i, 'rateLimitHoldPerKey', 'ingress.rateLimitHoldPerKey', 0, 1_000_000),
      allowedHosts: hostList(i.allowedHosts),
      adminPort:
        i.adminPort === null || i.adminPort === '' || i.adminPort === undefined
          ? null
          : num(i, 'adminPort', 'ingress.adminPort', 0, 65535),
      adminHost:
        i.adminHost === null || i.adminHost === ''
          ? str(i, 'host', 'ingress.host')
          : str(i, 'adminHost', 'ingress.adminHost'),
    },
    gcp: { projectId },
    bus: {
      backend: busBackend,
      segmentBytes: num(b, 'segmentBytes', 'bus.segmentBytes', 4096),
      retentionSweepRealMs: num(b, 'retentionSweepRealMs', 'bus.retentionSweepRealMs', 10),
      ackDeadlineRealMs: num(b, 'ackDeadlineRealMs', 'bus.ackDeadlineRealMs', 10),
      topicPrefix: b.topicPrefix,
      pullStreams: num(b, 'pullStreams', 'bus.pullStreams', 1, 8192),
    },
    kafka,
    parallel,
    state:
      st.backend === 'postgres'
        ? { backend: 'postgres', url: st.url as string, schema: stateSchema }
        : { backend: 'sqlite' },
    store:
      so.backend === 'gcs'
        ? {
            backend: 'gcs',
            bucket: so.bucket as string,
            prefix: so.prefix,
            endpoint: typeof so.endpoint === 'string' && so.endpoint !== '' ? so.endpoint : null,
          }
        : { backend: 'fs' },
    warehouse:
      w.backend === 'bigquery'
        ? {
            backend: 'bigquery',
            dataset: w.dataset as string,
            location: str(w, 'location', 'warehouse.location'),
            endpoint: typeof w.endpoint === 'string' && w.endpoint !== '' ? w.endpoint : null,
          }
        : { backend: 'duckdb' },
    orchestrator: {
      host: str(o, 'host', 'orchestrator.host'),
      port: num(o, 'port', 'orchestrator.port', 0, 65535),
      syncIntervalRealMs: num(o, 'syncIntervalRealMs', 'orchestrator.syncIntervalRealMs', 50),
      retryMaxRealMs: num(o, 'retryMaxRealMs', 'orchestrator.retryMaxRealMs', 100),
      retentionSweepRealMs: num(o, 'retentionSweepRealMs', 'orchestrator.retentionSweepRealMs', 100),
    },
    registry: {
      maxActiveTypesPerOwner: num(
        s.registry as Settings,
        'maxActiveTypesPerOwner',
        'registry.maxActiveTypesPerOwner',
        1,
        1_000_000,
      ),
    },
    etl: {
      codec: e.codec,
      deflateLevel: num(e, 'deflateLevel', 'etl.deflateLevel', 1, 9),
      maxFileBytes: num(e, 'maxFileBytes', 'etl.maxFileBytes', 1024),
      maxFileAgeRealMs: num(e, 'maxFileAgeRealMs', 'etl.maxFileAgeRealMs', 10),
      maxBufferedBytes: num(e, 'maxBufferedBytes', 'etl.maxBufferedBytes', 1024),
      maxOutstandingMessages: num(e, 'maxOutstandingMessages', 'etl.maxOutstandingMessages', 1),
      retryMaxRealMs: num(e, 'retryMaxRealMs', 'etl.retryMaxRealMs', 10),
      vanishAfterRealMs: num(e, 'vanishAfterRealMs', 'etl.vanishAfterRealMs', 100),
      passIntervalRealMs: num(e, 'passIntervalRealMs', 'etl.passIntervalRealMs', 10),
      dedupMaxIdsInMemory: num(e, 'dedupMaxIdsInMemory', 'etl.dedupMaxIdsInMemory', 1),
      duckdbMemoryBytes: num(e, 'duckdbMemoryBytes', 'etl.duckdbMemoryBytes', 64 * 1024 * 1024),
      duckdbThreads: num(e, 'duckdbThreads', 'etl.duckdbThreads', 1, 64),
      dedupRowGroupBytes: num(e, 'dedupRowGroupBytes', 'etl.dedupRowGroupBytes', 1024),
      dedupWorkers: num(e, 'dedupWorkers', 'etl.dedupWorkers', 1, 64),
      roles: parseRoles(str(e, 'roles', 'etl.roles'), 'etl.roles'),
      batchConcurrency: num(e, 'batchConcurrency', 'etl.batchConcurrency', 0, 256),
      jobLeaseRealMs: num(e, 'jobLeaseRealMs', 'etl.jobLeaseRealMs', 300),
      metricsHost: str(e, 'metricsHost', 'etl.metricsHost'),
      metricsPort: num(e, 'metricsPort', 'etl.metricsPort', 0, 65535),
    },
    alerting: alertingSettings(s.alerting as Settings),
  };
}

function busBackendOf(value: unknown, key: string): BusBackend {
  if (value !== 'embedded' && value !== 'pubsub' && value !== 'kafka') {
    throw new ConfigInvalid({ key, rule: `must be "embedded", "pubsub" or "kafka", got ${JSON.stringify(value)}` });
  }
  return value;
}

function parallelSettings(p: Settings, primary: BusBackend): ParallelSettings | null {
  if (p.name === '' || p.name === undefined) return null;
  const name = str(p, 'name', 'parallel.name');
  if (!/^[a-z][a-z0-9-]{0,29}$/.test(name) || name === MAIN_PIPELINE) {
    throw new ConfigInvalid({
      key: 'parallel.name',
      rule: `lower-case letters, digits and "-", starting with a letter, at most 30, not "${MAIN_PIPELINE}"; got ${JSON.stringify(name)}`,
    });
  }
  const bus = busBackendOf(p.bus, 'parallel.bus');
  if (bus === primary && bus !== 'embedded') {
    throw new ConfigInvalid({ key: 'parallel.bus', rule: `the second bus must differ from bus.backend (${primary})` });
  }
  if (p.ack !== 'all' && p.ack !== 'primary') {
    throw new ConfigInvalid({ key: 'parallel.ack', rule: `must be "all" or "primary", got ${JSON.stringify(p.ack)}` });
  }
  return { name, bus, ack: p.ack };
}

function kafkaSettings(k: Settings, used: boolean): KafkaSettings {
  const raw = k.brokers;
  const brokers = (typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [])
    .map((x) => String(x).trim())
    .filter((x) => x !== '');
  if (used && brokers.length === 0) {
    throw new ConfigInvalid({ key: 'kafka.brokers', rule: 'at least one broker, host:port (KAFKA_BROKERS)' });
  }
  for (const broker of brokers) {
    if (!/^[A-Za-z0-9._[\]:-]+:\d{1,5}$/.test(broker)) {
      throw new ConfigInvalid({ key: 'kafka.brokers', rule: `host:port, got ${JSON.stringify(broker)}` });
    }
  }
  const flag = (v: unknown) => v === true || v === 'true' || v === '1';
  const mechanism = k.saslMechanism;
  if (mechanism !== '' && mechanism !== 'plain' && mechanism !== 'scram-sha-256' && mechanism !== 'scram-sha-512') {
    throw new ConfigInvalid({
      key: 'kafka.saslMechanism',
      rule: `"", "plain", "scram-sha-256" or "scram-sha-512", got ${JSON.stringify(mechanism)}`,
    });
  }
  return {
    brokers,
    clientId: str(k, 'clientId', 'kafka.clientId'),
    partitions: num(k, 'partitions', 'kafka.partitions', 1, 10_000),
    replicationFactor: num(k, 'replicationFactor', 'kafka.replicationFactor', -1, 100),
    idempotent: flag(k.idempotent),
    sessionTimeoutRealMs: num(k, 'sessionTimeoutRealMs', 'kafka.sessionTimeoutRealMs', 1_000, 3_600_000),
    rebalanceTimeoutRealMs: num(k, 'rebalanceTimeoutRealMs', 'kafka.rebalanceTimeoutRealMs', 1_000, 3_600_000),
    ssl: flag(k.ssl),
    sasl:
      mechanism === ''
        ? null
        : {
            mechanism,
            username: str(k, 'saslUsername', 'kafka.saslUsername'),
            password: str(k, 'saslPassword', 'kafka.saslPassword'),
          },
  };
}

function alertingSettings(a: Settings): AlertingSettings {
  const slo = a.sloMs as Settings;
  const bh = a.businessHours as Settings;
  const timezone = str(bh, 'timezone', 'alerting.businessHours.timezone');
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new ConfigInvalid({ key: 'alerting.businessHours.timezone', rule: `not an IANA time zone: ${timezone}` });
  }
  const days = bh.days;
  if (!Array.isArray(days) || days.some((d) => !Number.isInteger(d) || d < 0 || d > 6)) {
    throw new ConfigInvalid({ key: 'alerting.businessHours.days', rule: 'an array of days 0 (Sunday) … 6 (Saturday)' });
  }
  const startHour = num(bh, 'startHour', 'alerting.businessHours.startHour', 0, 24, false);
  const endHour = num(bh, 'endHour', 'alerting.businessHours.endHour', 0, 24, false);
  if (endHour <= startHour) {
    throw new ConfigInvalid({ key: 'alerting.businessHours.endHour', rule: 'must be after startHour' });
  }
  const sloMs = Object.fromEntries(TIERS.map((t) => [t, num(slo, t, `alerting.sloMs.${t}`, 1)])) as Record<
    Tier,
    number
  >;
  return {
    sloMs,
    atRiskShare: num(a, 'atRiskShare', 'alerting.atRiskShare', 0.01, 1, false),
    consumerStuckRealMs: num(a, 'consumerStuckRealMs', 'alerting.consumerStuckRealMs', 100),
    publicationFailingRealMs: num(a, 'publicationFailingRealMs', 'alerting.publicationFailingRealMs', 0),
    rejectRateShare: num(a, 'rejectRateShare', 'alerting.rejectRateShare', 0, 1, false),
    rejectRateWindowRealMs: num(a, 'rejectRateWindowRealMs', 'alerting.rejectRateWindowRealMs', 100),
    rejectRateMinEvents: num(a, 'rejectRateMinEvents', 'alerting.rejectRateMinEvents', 1),
    deadLetterGrowth: num(a, 'deadLetterGrowth', 'alerting.deadLetterGrowth', 1),
    deadLetterWindowRealMs: num(a, 'deadLetterWindowRealMs', 'alerting.deadLetterWindowRealMs', 100),
    renotifyMs: num(a, 'renotifyMs', 'alerting.renotifyMs', 1),
    businessHours: { timezone, days: [...(days as number[])], startHour, endHour },
    evaluateIntervalRealMs: num(a, 'evaluateIntervalRealMs', 'alerting.evaluateIntervalRealMs', 10),
    sinks: sinkSettings(a.sinks),
    deliveryAttempts: num(a, 'deliveryAttempts', 'alerting.deliveryAttempts', 1, 100),
    deliveryBackoffRealMs: num(a, 'deliveryBackoffRealMs', 'alerting.deliveryBackoffRealMs', 1),
  };
}

const SINK_KINDS = ['webhook', 'slack', 'pagerduty'];

function sinkSettings(raw: unknown): AlertSinkConfig[] {
  if (!Array.isArray(raw)) throw new ConfigInvalid({ key: 'alerting.sinks', rule: 'must be an array' });
  const names = new Set<string>();
  return raw.map((item, i) => {
    const at = `alerting.sinks[${i}]`;
    if (typeof item !== 'object' || item === null) throw new ConfigInvalid({ key: at, rule: 'must be an object' });
    const s = item as Settings;
    const name = str(s, 'name', `${at}.name`);
    if (names.has(name)) throw new ConfigInvalid({ key: `${at}.name`, rule: `sink name ${name} is used twice` });
    names.add(name);
    if (!SINK_KINDS.includes(s.kind as string)) {
      throw new ConfigInvalid({ key: `${at}.kind`, rule: `must be one of ${SINK_KINDS.join(', ')}` });
    }
    const routes = s.routes;
    if (routes !== undefined && (!Array.isArray(routes) || routes.some((r) => r !== 'page' && r !== 'ticket'))) {
      throw new ConfigInvalid({ key: `${at}.routes`, rule: 'an array of "page" and "ticket"' });
    }
    const known = new Set(['name', 'kind', 'url', 'routingKey', 'routes', 'headers', 'timeoutRealMs']);
    for (const k of Object.keys(s))
      if (!known.has(k)) throw new ConfigInvalid({ key: `${at}.${k}`, rule: 'unknown setting' });
    const url =
      s.url === undefined && s.kind === 'pagerduty'
        ? 'https://events.pagerduty.com/v2/enqueue'
        : str(s, 'url', `${at}.url`);
    if (!/^https?:\/\//.test(url)) throw new ConfigInvalid({ key: `${at}.url`, rule: 'an http:// or https:// URL' });
    return {
      ...(s as unknown as AlertSinkConfig),
      name,
      url,
      ...(s.timeoutRealMs !== undefined ? { timeoutRealMs: num(s, 'timeoutRealMs', `${at}.timeoutRealMs`, 10) } : {}),
    };
  });
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
