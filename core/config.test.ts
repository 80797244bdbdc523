import { resolve } from 'node:path';
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

  it.each([
    [{ HOURGLASS_PORT: 'eighty' }, 'ingress.port'],
    [{ HOURGLASS_PORT: '70000' }, 'ingress.port'],
    [{ HOURGLASS_TIME_SCALE: '0' }, 'timeScale'],
    [{ HOURGLASS_LOG_LEVEL: 'loud' }, 'logLevel'],
    [{ HOURGLASS_BUS: 'carrier-pigeon' }, 'bus.backend'],
    [{ HOURGLASS_INSTANCE_ID: 'has space' }, 'ingress.instanceId'],
  ])('refuses %o naming %s', (env, key) => {
    expect(() => loadConfig({ env })).toThrow(ConfigInvalid);
    try {
      loadConfig({ env });
    } catch (err) {
      expect((err as ConfigInvalid).context.key).toBe(key);
    }
  });
});
