import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { HOUR_MS } from '../../core/hours.js';
import { silentLogger } from '../../core/logger.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { IngressLedger } from './ledger.js';

const H0 = Date.UTC(2026, 10, 22, 10);
let store: SqliteStateStore;
let clock: ManualClock;
let ledger: IngressLedger;

beforeEach(() => {
  store = new SqliteStateStore(':memory:');
  clock = new ManualClock(H0 + 5 * 60_000);
  ledger = new IngressLedger(store, clock, 'ingress-a', 60_000, silentLogger(), () => ['EndSong', 'PageView']);
});
afterEach(async () => {
  await store.close();
});

describe('IngressLedger', () => {
  it('records confirmed ranges only; a failed publish leaves a gap', async () => {
    const a = ledger.reserve('EndSong', H0, 10);
    const b = ledger.reserve('EndSong', H0, 5);
    const c = ledger.reserve('EndSong', H0, 3);
    expect([a.from, a.to, b.from, b.to, c.from, c.to]).toEqual([1, 10, 11, 15, 16, 18]);
    ledger.confirm(c);
    ledger.abandon(b);
    ledger.confirm(a);
    await ledger.flush();
    const [entry] = await store.listLedgers({ type: 'EndSong' });
    expect(entry).toMatchObject({
      instanceId: 'ingress-a',
      hour: H0,
      ranges: [
        [1, 10],
        [16, 18],
      ],
      count: 13,
      sealed: false,
    });
  });

  it('keeps sequence numbers and entries apart per type and per instance (one store, one hour)', async () => {
    const other = new IngressLedger(store, clock, 'ingress-b', 60_000, silentLogger(), () => ['EndSong', 'PageView']);
    const endSongs = ledger.reserve('EndSong', H0, 3);
    const pageViews = ledger.reserve('PageView', H0, 2);
    const elsewhere = other.reserve('EndSong', H0, 4);
    expect([endSongs.from, pageViews.from, elsewhere.from]).toEqual([1, 1, 1]);
    ledger.confirm(endSongs);
    ledger.confirm(pageViews);
    other.confirm(elsewhere);
    await Promise.all([ledger.flush(), other.flush()]);
    const entries = async () =>
      (await store.listLedgers({ hour: H0 })).map((e) => [e.type, e.instanceId, e.ranges, e.sealed]);
    expect(await entries()).toEqual([
      ['EndSong', 'ingress-a', [[1, 3]], false],
      ['EndSong', 'ingress-b', [[1, 4]], false],
      ['PageView', 'ingress-a', [[1, 2]], false],
    ]);
    // one instance sealing (a clean stop) leaves the other's entry of the same type and hour open
    await ledger.sealAll();
    expect(await entries()).toEqual([
      ['EndSong', 'ingress-a', [[1, 3]], true],
      ['EndSong', 'ingress-b', [[1, 4]], false],
      ['PageView', 'ingress-a', [[1, 2]], true],
    ]);
  });

  it('seals an hour only after the grace period and when nothing is in flight', async () => {
    const r = ledger.reserve('EndSong', H0, 4);
    clock.set(H0 + HOUR_MS + 30_000);
    expect(await ledger.sealDue()).toBe(0);
    clock.set(H0 + HOUR_MS + 61_000);
    expect(await ledger.sealDue()).toBe(0); // still in flight
    ledger.confirm(r);
    await ledger.flush();
    expect(await ledger.sealDue()).toBe(1);
    const entries = await store.listLedgers({ hour: H0 });
    expect(entries.find((e) => e.type === 'EndSong')).toMatchObject({ sealed: true, count: 4 });
    // an hour the instance lived through without events for a type gets an empty sealed entry
    expect(entries.find((e) => e.type === 'PageView')).toMatchObject({ sealed: true, count: 0, ranges: [] });
  });

  it('refuses to modify a sealed entry', async () => {
    ledger.confirm(ledger.reserve('EndSong', H0, 1));
    await ledger.flush();
    clock.set(H0 + HOUR_MS + 61_000);
    await ledger.sealDue();
    ledger.confirm(ledger.reserve('EndSong', H0, 1));
    await expect(ledger.flush()).rejects.toMatchObject({ code: 'ledger_sealed' });
  });

  it('seals everything on a clean stop', async () => {
    ledger.confirm(ledger.reserve('PageView', H0, 2));
    await ledger.flush();
    await ledger.sealAll();
    const entries = await store.listLedgers({ hour: H0 });
    expect(entries.map((e) => [e.type, e.sealed, e.count])).toEqual([
      ['EndSong', true, 0],
      ['PageView', true, 2],
    ]);
  });
});
