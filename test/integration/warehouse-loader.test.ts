/**
 * Published partitions of types stored in the warehouse are loaded after publication (the ETL on
 * a manual clock, a recording warehouse): once each, with the manifest's files and row count,
 * retried after a failure, and never for types stored as files only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import type { EventType } from '../../core/event-types.js';
import { HOUR_MS } from '../../core/hours.js';
import type { Warehouse, WarehousePartition } from '../../core/ports/warehouse.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong } from '../support/ingress-harness.js';

const H = Date.UTC(2026, 10, 22, 10);

class RecordingWarehouse implements Warehouse {
  readonly backend = 'recording';
  readonly tables: string[] = [];
  readonly loads: WarehousePartition[] = [];
  failures = 0;
  async ensureTable(type: EventType): Promise<void> {
    this.tables.push(type.name);
  }
  async loadPartition(p: WarehousePartition): Promise<{ rows: number }> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('load job failed: backend unavailable');
    }
    this.loads.push(p);
    return { rows: p.rows };
  }
  async query(): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
    return { columns: [], rows: [] };
  }
  async close(): Promise<void> {}
}

describe('warehouse loader', () => {
  let x: EtlHarness | null = null;
  afterEach(async () => {
    await x?.close();
    x = null;
  });

  it('loads each published partition of a warehouse type once, after a failed attempt is retried', async () => {
    const warehouse = new RecordingWarehouse();
    warehouse.failures = 1;
    const clock = new ManualClock(H + 10 * 60_000);
    x = await startEtlHarness({
      clock,
      warehouse,
      types: (types) => types.map((t) => (t.name === 'EndSong' ? { ...t, storage: 'warehouse' as const } : t)),
    });
    const h = x;
    const events = Array.from({ length: 40 }, (_, i) => ({ type: 'EndSong', id: `e-${i}`, payload: endSong() }));
    await h.post([...events, ...events.slice(0, 4)]);
    await h.post([{ type: 'PageView', id: 'p1', payload: { sessionId: 's', url: '/', loadTimeMs: 1 } }]);
    clock.set(H + HOUR_MS + 1);
    const loaded = async () =>
      (await h.store.listHours({ type: 'EndSong', from: H, to: H + 1 }))[0]?.loadedAt !== null &&
      (await h.store.listHours({ type: 'EndSong', from: H, to: H + 1 })).length === 1;
    await h.until(loaded, 20_000);
    expect(warehouse.tables).toEqual(['EndSong']);
    expect(warehouse.loads).toHaveLength(1);
    const [load] = warehouse.loads;
    expect(load).toMatchObject({ start: H, daily: false, rows: 40 });
    expect(load?.type.name).toBe('EndSong');
    expect(load?.files.length).toBeGreaterThan(0);
    expect(load?.files.every((f) => f.startsWith('final/EndSong/date=2026-11-22/hour=10/'))).toBe(true);
    // more passes load nothing again; PageView (files only) is never loaded
    for (let i = 0; i < 2; i++) {
      await h.etl.pass();
      await h.etl.settled();
    }
    expect(warehouse.loads).toHaveLength(1);
    expect((await h.store.listHours({ type: 'PageView', states: ['published'] }))[0]?.loadedAt).toBeNull();
  }, 40_000);
});
