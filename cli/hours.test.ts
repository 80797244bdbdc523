import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { HOUR_MS, hourLabel, hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import { Closer } from '../etl/closer.js';
import { createEtlMetrics } from '../etl/metrics.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { captureIo } from '../test/support/cli-io.js';
import { main } from './main.js';

describe('hourglass hours', () => {
  it('shows an hour whose ledgered events are missing from the bus as failed, with the error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-hours-'));
    try {
      const hour = hourStart(Date.now()) - 3 * HOUR_MS;
      const store = new SqliteStateStore(join(dir, 'state.sqlite'));
      await store.upsertInstance({ id: 'z', host: 'h', pid: 1, startedAt: hour, lastSeenAt: hour, stoppedAt: hour });
      await store.saveLedgers([
        { instanceId: 'z', type: 'EndSong', hour, ranges: [[1, 3]], count: 3, sealed: true, updatedAt: hour },
      ]);
      const closer = new Closer({
        state: store,
        clock: new ManualClock(hour + HOUR_MS + 1000),
        logger: silentLogger(),
        metrics: createEtlMetrics(new Registry()),
        config: { vanishAfterRealMs: 30_000 },
        types: () => ['EndSong'],
        backlog: async () => ({ messages: 0, oldestUnackedPublishTime: null }),
        exactBacklog: true,
      });
      await closer.run();
      await store.close();
      const error = 'ledger_mismatch: 3 acknowledged events are missing from the bus (z: 1-3)';
      const json = captureIo();
      expect(await main(['hours', '--data-dir', dir, '--format', 'json'], json.io)).toBe(0);
      expect(JSON.parse(json.out())).toMatchObject([
        { type: 'EndSong', hour: new Date(hour).toISOString(), state: 'failed', ledger: 3, closedBy: 'sealed', error },
      ]);
      const table = captureIo();
      expect(await main(['hours', '--data-dir', dir], table.io)).toBe(0);
      expect(table.out()).toMatch(
        new RegExp(`EndSong\\s+${hourLabel(hour)}\\s+failed\\s+3\\s.*ledger_mismatch: 3 acknowledged`),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
