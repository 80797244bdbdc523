/**
 * The per-type dedup window: a published partition carries an id index of the keys it kept, and
 * a later partition drops the (producer, id) keys found in the indexes of the partitions in its
 * window (type.json `dedupWindow`), waiting for those still to be published. Partitions
 * published before id indexes are read from their data files.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import type { EventType } from '../../core/event-types.js';
import { HOUR_MS, hourPath } from '../../core/hours.js';
import { listAll, type ObjectStore } from '../../core/ports/object-store.js';
import type { Manifest } from '../../etl/dedup.js';
import type { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong } from '../support/ingress-harness.js';
import { asWrittenBeforeIdIndexes } from '../support/old-partitions.js';
import { overriding } from '../support/overriding.js';

const H = Date.UTC(2026, 10, 2, 10);
const DAY_MS = 24 * HOUR_MS;
let h: EtlHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function start(
  clock: ManualClock,
  dedupWindow: string,
  options: { etl?: Record<string, unknown>; wrapObjects?: (s: ObjectStore) => ObjectStore } = {},
): Promise<EtlHarness> {
  h = await startEtlHarness({
    clock,
    etl: options.etl,
    wrapObjects: options.wrapObjects,
    types: (types: EventType[]) => types.map((t) => (t.name === 'EndSong' ? { ...t, dedupWindow } : t)),
  });
  return h;
}

async function post(x: EtlHarness, ids: string[]): Promise<void> {
  const res = await x.post(ids.map((id, i) => ({ type: 'EndSong', id, payload: endSong({ durationMs: i }) })));
  expect(res.body.accepted).toBe(ids.length);
}

async function committed(x: EtlHarness, hour: number, n: number): Promise<void> {
  await x.until(async () => (await x.store.listFiles('EndSong', hour, 'raw')).reduce((s, f) => s + f.events, 0) >= n);
}

const published = (x: EtlHarness, hour: number) => async () =>
  (await x.store.listHours({ type: 'EndSong', states: ['published'] })).some((r) => r.hour === hour);

const manifestName = (hour: number) => `final/EndSong/${hourPath(hour)}/_manifest.json`;

async function manifest(x: EtlHarness, hour: number): Promise<Manifest> {
  return JSON.parse((await x.objects.get(manifestName(hour))).toString()) as Manifest;
}

/** Posts `ids` in the hour starting at `hour` (10 minutes in) and publishes that hour. */
async function publishHour(x: EtlHarness, clock: ManualClock, hour: number, ids: string[]): Promise<Manifest> {
  clock.set(hour + 10 * 60_000);
  await post(x, ids);
  await committed(x, hour, ids.length);
  clock.set(hour + HOUR_MS + 1);
  await x.until(published(x, hour));
  return manifest(x, hour);
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('dedup window', () => {
  it.each([
    ['in memory', {}],
    ['split and spilled', { dedupMaxIdsInMemory: 3 }],
  ])('drops a retry that comes back 3 days later with a 7d window, counted (%s)', async (_, etl) => {
    const clock = new ManualClock(H);
    const x = await start(clock, '7d', { etl });
    const first = await publishHour(x, clock, H, ids('a', 12));
    expect(first).toMatchObject({
      eventsOut: 12,
      duplicatesOfWindow: 0,
      dedupWindow: { ms: 7 * DAY_MS, partitions: 0, legacyPartitions: 0 },
      idIndex: { ids: 12, hash: 'siphash-2-4-128', keyId: expect.stringMatching(/^[0-9a-f]{16}$/) },
    });
    // the index is kept beside the manifest, and the partition's objects are the listed ones
    const prefix = `final/EndSong/${hourPath(H)}/`;
    const names = (await listAll(x.objects, prefix)).map((o) => o.name).sort();
    expect(names).toEqual([manifestName(H), first.idIndex?.name as string, ...first.files.map((f) => f.name)].sort());
    expect((await x.objects.get(first.idIndex?.name as string)).length).toBe(first.idIndex?.bytes);

    // a day later: other events; 3 days later: retries of five of the first hour's, with new ones
    await publishHour(x, clock, H + DAY_MS, ids('b', 4));
    const later = H + 3 * DAY_MS;
    const m = await publishHour(x, clock, later, [...ids('a', 5), ...ids('c', 6), 'b-1']);
    expect(m).toMatchObject({
      rawEventsIn: 12,
      duplicatesRemoved: 6,
      duplicatesOfWindow: 6,
      duplicatesOfEarlierPartition: 6,
      eventsOut: 6,
      dedupWindow: {
        ms: 7 * DAY_MS,
        from: new Date(later - 7 * DAY_MS).toISOString(),
        partitions: 2,
        legacyPartitions: 0,
      },
      idIndex: { ids: 6 },
    });
    expect(m.dedupWindow?.indexBytesRead).toBeGreaterThan(0);
    expect(
      await x.query(`SELECT event_id FROM EndSong WHERE date = '${hourPath(later).slice(5, 15)}' ORDER BY event_id`),
    ).toEqual(ids('c', 6).map((event_id) => ({ event_id })));
    const [state] = await x.store.listHours({ type: 'EndSong', from: later, to: later + 1 });
    expect(state).toMatchObject({ eventsIn: 12, duplicates: 6, eventsOut: 6 });
  });

  it('keeps a retry that comes back 31 days later with a 30d window', async () => {
    const clock = new ManualClock(H);
    const x = await start(clock, '30d');
    await publishHour(x, clock, H, ['r-1', 'r-2']);
    const within = await publishHour(x, clock, H + 29 * DAY_MS, ['r-1']);
    expect(within).toMatchObject({ duplicatesOfWindow: 1, eventsOut: 0, dedupWindow: { partitions: 1 } });
    const later = H + 31 * DAY_MS;
    const m = await publishHour(x, clock, later, ['r-2', 'r-3']);
    expect(m).toMatchObject({
      rawEventsIn: 2,
      duplicatesOfWindow: 0,
      eventsOut: 2,
      // only the partition of 29 days later is in the window
      dedupWindow: { ms: 30 * DAY_MS, from: new Date(later - 30 * DAY_MS).toISOString(), partitions: 1 },
    });
  });

  it('with the default 1h window, drops only what the previous partition has', async () => {
    const clock = new ManualClock(H);
    const x = await start(clock, '1h');
    await publishHour(x, clock, H, ['d-1']);
    await publishHour(x, clock, H + HOUR_MS, ['d-2']);
    const m = await publishHour(x, clock, H + 2 * HOUR_MS, ['d-1', 'd-2']);
    expect(m).toMatchObject({
      duplicatesOfWindow: 1,
      eventsOut: 1,
      dedupWindow: { ms: HOUR_MS, from: new Date(H + HOUR_MS).toISOString(), partitions: 1 },
    });
  });

  it('waits for a partition of its window that is not published yet', async () => {
    const clock = new ManualClock(H);
    let failing = true;
    const x = await start(clock, '7d', {
      wrapObjects: (store) =>
        overriding(store, {
          putFile: async (name: string, path: string) => {
            if (failing && name.startsWith(`final/EndSong/${hourPath(H)}/`)) throw new Error('store down');
            return store.putFile(name, path);
          },
        }),
    });
    clock.set(H + 10 * 60_000);
    await post(x, ['w-1']);
    await committed(x, H, 1);
    const later = H + 5 * HOUR_MS;
    clock.set(later + 10 * 60_000);
    await post(x, ['w-1', 'w-2']);
    await committed(x, later, 2);
    clock.set(later + HOUR_MS + 1);
    const states = async () =>
      new Map((await x.store.listHours({ type: 'EndSong' })).map((r) => [r.hour, r.state] as const));
    await x.until(async () => (await states()).get(later) === 'closed' && (await states()).get(H) === 'closed');
    for (let i = 0; i < 3; i++) await x.etl.pass();
    // H failed to publish (and is retried); the later hour, whose window holds H, waits for it
    expect((await states()).get(H)).toBe('closed');
    expect((await states()).get(later)).toBe('closed');
    failing = false;
    await x.until(published(x, later));
    expect((await states()).get(H)).toBe('published');
    expect(await manifest(x, later)).toMatchObject({ duplicatesOfWindow: 1, eventsOut: 1 });
  });

  it('reads a partition published before id indexes from its data files', async () => {
    const clock = new ManualClock(H);
    const x = await start(clock, '7d');
    await publishHour(x, clock, H, ['l-1', 'l-2', 'l-3']);
    await asWrittenBeforeIdIndexes(x.objects as FsObjectStore, manifestName(H));
    const m = await publishHour(x, clock, H + 2 * DAY_MS, ['l-2', 'l-4']);
    expect(m).toMatchObject({
      duplicatesOfWindow: 1,
      eventsOut: 1,
      dedupWindow: { partitions: 1, legacyPartitions: 1, indexBytesRead: 0 },
    });
  });
});
