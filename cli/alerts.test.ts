import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { captureIo } from '../test/support/cli-io.js';
import { main } from './main.js';

describe('hourglass alerts', () => {
  it('lists firing alerts and recently resolved ones, as a table or JSON, filtered by state and type', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-alerts-'));
    try {
      const now = Date.now();
      const store = new SqliteStateStore(join(dir, 'state.sqlite'));
      const base = { tier: 'high' as const, details: { backlog: 7 }, summary: 'EndSong: 7 messages waiting' };
      const old = await store.openAlert({
        ...base,
        rule: 'consumer_stuck',
        type: 'EndSong',
        openedAt: now - 50 * 3_600_000,
      });
      await store.updateAlert(old?.seq as number, { state: 'resolved', resolvedAt: now - 49 * 3_600_000 }, now);
      const recent = await store.openAlert({
        ...base,
        rule: 'slo_breached',
        type: 'EndSong',
        openedAt: now - 3_600_000,
      });
      await store.updateAlert(recent?.seq as number, { routes: ['page'], notifiedAt: now, notifications: 1 }, now, 0);
      await store.openAlert({
        ...base,
        rule: 'reject_rate_spike',
        type: 'PageView',
        tier: 'low',
        openedAt: now - 1000,
      });
      await store.close();
      const table = captureIo();
      expect(await main(['alerts', '--data-dir', dir], table.io)).toBe(0);
      expect(table.out()).toMatch(/id\s+state\s+rule\s+type\s+tier\s+opened\s+resolved\s+routes\s+notified\s+summary/);
      expect(table.out()).toMatch(/firing\s+slo_breached\s+EndSong\s+high\s+.*page\s+1\s+EndSong: 7 messages waiting/);
      expect(table.out()).toContain('(2 rows)');
      const json = captureIo();
      expect(
        await main(['alerts', '--data-dir', dir, '--hours', '100', '--type', 'EndSong', '--format', 'json'], json.io),
      ).toBe(0);
      const rows = JSON.parse(json.out()) as { rule: string; state: string; details: unknown }[];
      expect(rows.map((r) => [r.rule, r.state])).toEqual([
        ['slo_breached', 'firing'],
        ['consumer_stuck', 'resolved'],
      ]);
      expect(rows[0]?.details).toEqual({ backlog: 7 });
      const firing = captureIo();
      expect(await main(['alerts', '--data-dir', dir, '--firing', '--format', 'csv'], firing.io)).toBe(0);
      expect(firing.out().trim().split('\n')).toHaveLength(3);
      const bad = captureIo();
      expect(await main(['alerts', '--data-dir', dir, '--hours', '0'], bad.io)).toBe(2);
      expect(bad.err()).toMatch(/--hours must be positive/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
