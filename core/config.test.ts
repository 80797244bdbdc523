import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { DEFAULTS } from './defaults.js';
import { ConfigInvalid } from './errors.js';

describe('loadConfig', () => {
  it('starts from the defaults, resolved and frozen', () => {
    const c = loadConfig();
    expect(c.ingress.port).toBe(DEFAULTS.ingress.port);
    expect(c.ingress.bodyLimitBytes).toBe(5 * 1024 * 1024);
    expect(c.dataDir).toBe(resolve('.hourglass'));
    expect(Object.isFrozen(c.ingress)).toBe(true);
  });

  it('environment overrides defaults, flags override environment', () => {
    const c = loadConfig({
      env: { HOURGLASS_PORT: '9000', HOURGLASS_TIME_SCALE: '360' },
      overrides: { 'ingress.port': 9100 },
    });
    expect(c.ingress.port).toBe(9100);
    expect(c.timeScale).toBe(360);
  });

  it('chooses the Google Cloud backends, and refuses them without a project or bucket', () => {
    const env = {
      HOURGLASS_BUS: 'pubsub',
      HOURGLASS_STORE: 'gcs',
      GOOGLE_CLOUD_PROJECT: 'hourglass-test',
      HOURGLASS_GCS_BUCKET: 'events-prod',
      HOURGLASS_GCS_PREFIX: 'hourglass/',
    };
    const c = loadConfig({ env });
    expect(c.gcp.projectId).toBe('hourglass-test');
    expect(c.bus.backend).toBe('pubsub');
    expect(c.store).toEqual({ backend: 'gcs', bucket: 'events-prod', prefix: 'hourglass/', endpoint: null });
    expect(() => loadConfig({ env: { ...env, GOOGLE_CLOUD_PROJECT: '' } })).toThrow(/gcp\.projectId/);
    expect(() => loadConfig({ env: { ...env, HOURGLASS_GCS_BUCKET: 'Not A Bucket' } })).toThrow(/store\.bucket/);
    expect(() => loadConfig({ env: { ...env, HOURGLASS_GCS_PREFIX: 'no-slash' } })).toThrow(/store\.prefix/);
    expect(() => loadConfig({ env: { HOURGLASS_BUS: 'kafka' } })).toThrow(/kafka\.brokers.*KAFKA_BROKERS/);
    expect(loadConfig({ env: { ...env, HOURGLASS_WAREHOUSE: 'bigquery' } }).warehouse).toEqual({
      backend: 'bigquery',
      dataset: 'hourglass',
      location: 'EU',
      endpoint: null,
    });
    expect(() =>
      loadConfig({ env: { HOURGLASS_WAREHOUSE: 'bigquery', GOOGLE_CLOUD_PROJECT: 'hourglass-test' } }),
    ).toThrow(/needs store\.backend "gcs"/);
  });

  it('chooses the PostgreSQL state store from the environment', () => {
    expect(loadConfig().state).toEqual({ backend: 'sqlite' });
    expect(
      loadConfig({ env: { HOURGLASS_STATE: 'postgres', HOURGLASS_STATE_URL: 'postgres://u@db:5432/hourglass' } }).state,
    ).toEqual({ backend: 'postgres', url: 'postgres://u@db:5432/hourglass', schema: 'public' });
  });

  it('reads a JSON config file below the environment, and refuses unknown settings in it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-config-'));
    try {
      const file = join(dir, 'hourglass.json');
      writeFileSync(file, JSON.stringify({ ingress: { port: 9200, maxEventsPerBatch: 50 }, timeScale: 60 }));
      const c = loadConfig({ file, env: { HOURGLASS_PORT: '9300' } });
      expect(c.ingress.port).toBe(9300);
      expect(c.ingress.maxEventsPerBatch).toBe(50);
      expect(c.timeScale).toBe(60);
      writeFileSync(file, JSON.stringify({ ingress: { prot: 1 } }));
      expect(() => loadConfig({ file })).toThrow(/ingress\.prot: unknown setting/);
      expect(() => loadConfig({ file: join(dir, 'missing.json') })).toThrow(/cannot read config file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('chooses the Kafka bus and a parallel run from the environment', () => {
    const c = loadConfig({
      env: { HOURGLASS_BUS: 'kafka', KAFKA_BROKERS: 'k1:9092, k2:9093', HOURGLASS_KAFKA_IDEMPOTENT: 'false' },
    });
    expect(c.bus.backend).toBe('kafka');
    expect(c.kafka).toMatchObject({ brokers: ['k1:9092', 'k2:9093'], partitions: 3, idempotent: false, sasl: null });
    expect(c.parallel).toBeNull();
    const p = loadConfig({ env: { HOURGLASS_PARALLEL: 'kafka', KAFKA_BROKERS: 'k1:9092' } });
    expect(p.bus.backend).toBe('embedded');
    expect(p.parallel).toEqual({ name: 'kafka', bus: 'kafka', ack: 'all' });
    expect(p.kafka.idempotent).toBe(true);
  });

  it.each([
    [{ HOURGLASS_PORT: 'eighty' }, 'ingress.port'],
    [{ HOURGLASS_PORT: '70000' }, 'ingress.port'],
    [{ HOURGLASS_TIME_SCALE: '0' }, 'timeScale'],
    [{ HOURGLASS_LOG_LEVEL: 'loud' }, 'logLevel'],
    [{ HOURGLASS_LOG_FORMAT: 'xml' }, 'logFormat'],
    [{ HOURGLASS_BUS: 'carrier-pigeon' }, 'bus.backend'],
    [{ HOURGLASS_BUS: 'kafka', KAFKA_BROKERS: 'no-port' }, 'kafka.brokers'],
    [
      { HOURGLASS_BUS: 'kafka', KAFKA_BROKERS: 'k:9092', HOURGLASS_KAFKA_SASL_MECHANISM: 'gssapi' },
      'kafka.saslMechanism',
    ],
    [
      { HOURGLASS_BUS: 'kafka', KAFKA_BROKERS: 'k:9092', HOURGLASS_KAFKA_SASL_MECHANISM: 'plain' },
      'kafka.saslUsername',
    ],
    [{ HOURGLASS_PARALLEL: 'Main' }, 'parallel.name'],
    [{ HOURGLASS_PARALLEL: 'main' }, 'parallel.name'],
    [{ HOURGLASS_PARALLEL: 'kafka' }, 'kafka.brokers'],
    [{ HOURGLASS_PARALLEL: 'kafka', KAFKA_BROKERS: 'k:9092', HOURGLASS_PARALLEL_ACK: 'some' }, 'parallel.ack'],
    [{ HOURGLASS_BUS: 'kafka', KAFKA_BROKERS: 'k:9092', HOURGLASS_PARALLEL: 'again' }, 'parallel.bus'],
    [{ HOURGLASS_INSTANCE_ID: 'has space' }, 'ingress.instanceId'],
    [{ HOURGLASS_STATE: 'mysql' }, 'state.backend'],
    [{ HOURGLASS_STATE: 'postgres' }, 'state.url'],
    [{ HOURGLASS_STATE: 'postgres', HOURGLASS_STATE_URL: 'mysql://x' }, 'state.url'],
    [
      { HOURGLASS_STATE: 'postgres', HOURGLASS_STATE_URL: 'postgres://h/db', HOURGLASS_STATE_SCHEMA: 'Bad-Name' },
      'state.schema',
    ],
  ])('refuses %o naming %s', (env, key) => {
    expect(() => loadConfig({ env })).toThrow(ConfigInvalid);
    try {
      loadConfig({ env });
    } catch (err) {
      expect((err as ConfigInvalid).context.key).toBe(key);
    }
  });
});
