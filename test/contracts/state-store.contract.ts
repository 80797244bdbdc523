/**
 * The state-store contract: every backend (SQLite now, PostgreSQL later) runs this suite.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewDeadLetter, StateStore } from '../../core/ports/state-store.js';

const H = Date.UTC(2026, 10, 22, 10);

export function stateStoreContract(
  name: string,
  make: () => Promise<{ store: StateStore; cleanup: () => Promise<void> }>,
): void {
  describe(`state store contract: ${name}`, () => {
    let store: StateStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await store.close();
      await cleanup();
    });

    it('saves, replaces and filters ledger entries', async () => {
      const base = { instanceId: 'i1', type: 'EndSong', hour: H, sealed: false, updatedAt: 1 };
      await store.saveLedgers([{ ...base, ranges: [[1, 5]], count: 5 }]);
      await store.saveLedgers([
        { ...base, ranges: [[1, 9]], count: 9 },
        { ...base, type: 'PageView', ranges: [[1, 1]], count: 1 },
        { ...base, instanceId: 'i2', hour: H + 3_600_000, ranges: [], count: 0 },
      ]);
      expect((await store.listLedgers({ type: 'EndSong', instanceId: 'i1' })).map((e) => [e.count, e.ranges])).toEqual([
        [9, [[1, 9]]],
      ]);
      expect(await store.listLedgers({ hour: H })).toHaveLength(2);
      expect(await store.listLedgers()).toHaveLength(3);
    });

    it('seals idempotently, creates empty sealed entries, and never changes a sealed entry', async () => {
      const key = { instanceId: 'i1', type: 'EndSong', hour: H };
      await store.saveLedgers([{ ...key, ranges: [[1, 3]], count: 3, sealed: false, updatedAt: 1 }]);
      await store.sealLedgers([key, { ...key, type: 'PageView' }], 2);
      await store.sealLedgers([key], 3);
      const entries = await store.listLedgers({ hour: H });
      expect(entries.map((e) => [e.type, e.sealed, e.count])).toEqual([
        ['EndSong', true, 3],
        ['PageView', true, 0],
      ]);
      await expect(
        store.saveLedgers([{ ...key, ranges: [[1, 4]], count: 4, sealed: true, updatedAt: 4 }]),
      ).rejects.toMatchObject({
        code: 'ledger_sealed',
      });
      expect((await store.listLedgers({ type: 'EndSong' }))[0]?.count).toBe(3);
    });

    it('a failing ledger save changes nothing (atomic per call)', async () => {
      const key = { instanceId: 'i1', type: 'EndSong', hour: H };
      await store.sealLedgers([key], 1);
      await expect(
        store.saveLedgers([
          { ...key, type: 'PageView', ranges: [[1, 1]], count: 1, sealed: false, updatedAt: 2 },
          { ...key, ranges: [[1, 1]], count: 1, sealed: false, updatedAt: 2 },
        ]),
      ).rejects.toMatchObject({ code: 'ledger_sealed' });
      expect(await store.listLedgers({ type: 'PageView' })).toEqual([]);
    });

    it('records instances with heartbeats and stops', async () => {
      const i = { id: 'i1', host: 'h', pid: 1, startedAt: 10, lastSeenAt: 10, stoppedAt: null };
      await store.upsertInstance(i);
      await store.upsertInstance({ ...i, lastSeenAt: 20 });
      await store.upsertInstance({ ...i, lastSeenAt: 30, stoppedAt: 30 });
      expect(await store.listInstances()).toEqual([{ ...i, lastSeenAt: 30, stoppedAt: 30 }]);
    });

    it('keeps dead letters bounded per type, newest first, with totals of all', async () => {
      const item = (type: string, n: number): NewDeadLetter => ({
        type,
        receivedAt: n,
        instanceId: 'i1',
        eventId: `e${n}`,
        code: 'schema_violation',
        path: 'payload.x',
        message: 'payload.x: expected int, got string',
        event: '{}',
      });
      await store.addDeadLetters(
        Array.from({ length: 8 }, (_, n) => item('EndSong', n)),
        5,
      );
      await store.addDeadLetters([item('EndSong', 8), item('PageView', 9)], 5);
      const kept = await store.listDeadLetters('EndSong', 100);
      expect(kept.map((d) => d.eventId)).toEqual(['e8', 'e7', 'e6', 'e5', 'e4']);
      expect(kept[0]).toMatchObject({ code: 'schema_violation', path: 'payload.x', receivedAt: 8 });
      expect(await store.deadLetterTotals()).toEqual({ EndSong: 9, PageView: 1 });
      expect(await store.listDeadLetters('EndSong', 2)).toHaveLength(2);
    });

    it('answers ping', async () => {
      expect(await store.ping()).toBe(true);
    });
  });
}
