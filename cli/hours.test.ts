import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock, SystemClock } from '../core/clock.js';
import { loadConfig } from '../core/config.js';
import { HOUR_MS, hourLabel, hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import { Closer } from '../etl/closer.js';
import { createEtlMetrics } from '../etl/metrics.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { captureIo } from '../test/support/cli-io.js';
import { main } from './main.js';
import { seedRegistry } from './pipeline.js';

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

describe('hourglass hours: ranges, daily types, unknown types', () => {
  const DAY = 24 * HOUR_MS;

  async function fixture() {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-hours-'));
    const store = new SqliteStateStore(join(dir, 'state.sqlite'));
    // the registry tells which types are daily
    await seedRegistry(loadConfig({ overrides: { dataDir: dir } }), store, new SystemClock(), silentLogger());
    const now = Date.now();
    const day = Math.floor(now / DAY) * DAY - 2 * DAY;
    const recent = hourStart(now) - 3 * HOUR_MS;
    const older = hourStart(now) - 30 * HOUR_MS;
    await store.upsertInstance({ id: 'z', host: 'h', pid: 1, startedAt: day, lastSeenAt: now, stoppedAt: now });
    const publish = async (type: string, hour: number, ledger: number, counts: [number, number, number]) => {
      await store.saveLedgers([
        { instanceId: 'z', type, hour, ranges: [[1, ledger]], count: ledger, sealed: true, updatedAt: hour },
      ]);
      await store.closeHour({
        type,
        hour,
        closedAt: hour + HOUR_MS,
        closedBy: 'sealed',
        vanishedInstances: [],
        ledgerTotal: ledger,
      });
      const [eventsIn, duplicates, eventsOut] = counts;
      await store.updateHour(
        type,
        hour,
        { state: 'published', eventsIn, duplicates, eventsOut, manifest: `final/${type}/${hour}/_manifest.json` },
        hour + HOUR_MS,
      );
    };
    // a daily type: every hour of the day records the day's totals
    for (const [h, n] of [
      [1, 4],
      [2, 5],
      [5, 3],
    ] as const) {
      await publish('UserCreate', day + h * HOUR_MS, n, [12, 2, 10]);
    }
    await publish('EndSong', older, 7, [7, 0, 7]);
    await publish('EndSong', recent, 9, [9, 1, 8]);
    // its dedup job failed once on one worker, then another published it
    const key = { kind: 'dedup' as const, type: 'EndSong', partition: recent };
    const first = await store.claimJob(key, 'etl-a', 60_000);
    if (first === null) throw new Error('not claimed');
    await store.finishJob(first, { state: 'ready', runAfterMs: 0, error: 'dedup_failed: x' }, [], now);
    const second = await store.claimJob(key, 'etl-b', 60_000);
    if (second === null) throw new Error('not claimed');
    await store.finishJob(second, { state: 'done' }, [], now);
    await store.close();
    return { dir, day, recent, older };
  }

  const json = async (args: string[]) => {
    const io = captureIo();
    expect(await main(['hours', ...args, '--format', 'json'], io.io)).toBe(0);
    return JSON.parse(io.out()) as { type: string; hour: string; partition: string; ledger: number; out: number }[];
  };

  it('shows a daily type once per day, and keeps the hours asked for with --since or --last', async () => {
    const { dir, day, recent, older } = await fixture();
    try {
      const all = await json(['--data-dir', dir]);
      expect(all.map((r) => [r.type, r.hour, r.partition])).toEqual([
        ['EndSong', new Date(older).toISOString(), 'hour'],
        ['EndSong', new Date(recent).toISOString(), 'hour'],
        ['UserCreate', new Date(day).toISOString(), 'day'],
      ]);
      expect(all[2]).toMatchObject({
        state: 'published',
        ledger: 12,
        in: 12,
        duplicates: 2,
        out: 10,
        closedBy: 'sealed',
      });
      const table = captureIo();
      expect(await main(['hours', '--data-dir', dir], table.io)).toBe(0);
      expect(table.out()).toMatch(
        new RegExp(`UserCreate\\s+${new Date(day).toISOString().slice(0, 10)}\\s+published\\s+12\\s`),
      );

      // attempts and worker: of the job that published the partition; none for a partition without one
      expect(all[1]).toMatchObject({ attempts: 2, worker: 'etl-b' });
      expect(all[0]).toMatchObject({ attempts: null, worker: null });

      const hoursOf = (rows: { type: string; hour: string }[]) => rows.map((r) => `${r.type} ${r.hour}`);
      expect(hoursOf(await json(['--data-dir', dir, '--last', '4']))).toEqual([
        `EndSong ${new Date(recent).toISOString()}`,
      ]);
      expect(hoursOf(await json(['--data-dir', dir, '--since', '6h']))).toEqual([
        `EndSong ${new Date(recent).toISOString()}`,
      ]);
      expect(hoursOf(await json(['--data-dir', dir, '--since', new Date(recent).toISOString().slice(0, 13)]))).toEqual([
        `EndSong ${new Date(recent).toISOString()}`,
      ]);
      // a daily type's day is listed whole when it overlaps the range
      expect(hoursOf(await json(['--data-dir', dir, '--since', '3d']))).toEqual(hoursOf(all));
      expect(hoursOf(await json(['--data-dir', dir, '--since', new Date(day + 3 * HOUR_MS).toISOString()]))).toEqual(
        hoursOf(all),
      );

      for (const bad of [
        ['--since', 'yesterday'],
        ['--since', '6h', '--last', '2'],
        ['--last', '0'],
      ]) {
        const io = captureIo();
        expect(await main(['hours', '--data-dir', dir, ...bad], io.io)).toBe(2);
        expect(io.err()).toMatch(/^hourglass hours: .*(--since|--last)/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown --type, naming the known types', async () => {
    const { dir } = await fixture();
    try {
      const io = captureIo();
      expect(await main(['hours', '--data-dir', dir, '--type', 'EndSnog'], io.io)).toBe(2);
      expect(io.err()).toBe('hourglass hours: no event type "EndSnog"; known types: EndSong, PageView, UserCreate\n');
      expect(io.out()).toBe('');
      expect((await json(['--data-dir', dir, '--type', 'EndSong'])).length).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
