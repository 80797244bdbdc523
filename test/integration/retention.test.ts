/** The retention sweeper on the filesystem object store and SQLite. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { hourPath } from '../../core/hours.js';
import { silentLogger } from '../../core/logger.js';
import { listAll } from '../../core/ports/object-store.js';
import { finalPrefix, hourPrefix, MANIFEST } from '../../etl/names.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { applyPlan, planTypes } from '../../orchestrator/plan.js';
import { partitionEnd, RetentionSweeper } from '../../orchestrator/retention.js';
import { SCHEMAS_DIR } from '../support/ingress-harness.js';
import { overriding } from '../support/overriding.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 10, 22, 12, 30);

describe('retention sweeper', () => {
  let dir: string;
  let store: SqliteStateStore;
  let objects: FsObjectStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourglass-retention-'));
    store = new SqliteStateStore(join(dir, 'state.sqlite'));
    objects = new FsObjectStore(join(dir, 'objects'));
    await applyPlan(await planTypes(SCHEMAS_DIR, store), store, 'test', 1); // PageView keeps 30 days
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the partition end from object names', () => {
    const h = Date.UTC(2026, 0, 2, 5);
    expect(partitionEnd(`raw/T/${hourPath(h)}/x.avro`)).toBe(h + HOUR);
    expect(partitionEnd(`final/T/${hourPath(h).split('/')[0]}/${MANIFEST}`)).toBe(Date.UTC(2026, 0, 3));
    expect(partitionEnd('final/T/other/x')).toBeNull();
  });

  it('deletes data and records older than the type retention, manifest first, and keeps the rest', async () => {
    const old = Math.floor((NOW - 31 * DAY) / HOUR) * HOUR;
    const edge = Math.floor((NOW - 30 * DAY) / HOUR) * HOUR; // ends after the cutoff: kept
    const recent = Math.floor((NOW - DAY) / HOUR) * HOUR;
    for (const h of [old, edge, recent]) {
      await objects.put(`${hourPrefix('raw', 'PageView', h)}a.avro`, Buffer.from('r'));
      await objects.put(`${hourPrefix('late', 'PageView', h)}a.avro`, Buffer.from('l'));
      await objects.put(`${finalPrefix('PageView', h, false)}part-0.parquet`, Buffer.from('p'));
      await objects.put(`${finalPrefix('PageView', h, false)}ids-0.idx`, Buffer.from('i')); // the id index goes too
      await objects.put(`${finalPrefix('PageView', h, false)}${MANIFEST}`, Buffer.from('{}'));
      await store.saveLedgers([
        { instanceId: 'i', type: 'PageView', hour: h, ranges: [], count: 0, sealed: true, updatedAt: 1 },
      ]);
      await store.closeHour({
        type: 'PageView',
        hour: h,
        closedAt: 1,
        closedBy: 'sealed',
        vanishedInstances: [],
        ledgerTotal: 0,
      });
    }
    await objects.put(`${hourPrefix('raw', 'EndSong', old)}a.avro`, Buffer.from('r')); // EndSong keeps 90 days
    const deleted: string[] = [];
    const watched = overriding(objects, {
      delete: async (name: string) => {
        deleted.push(name);
        return objects.delete(name);
      },
    });
    const sweeper = new RetentionSweeper({
      store,
      objects: watched,
      clock: new ManualClock(NOW),
      logger: silentLogger(),
      intervalRealMs: 60_000,
    });
    expect(await sweeper.sweep()).toEqual({ objects: 5, hours: 1 });
    expect(deleted[0]).toBe(`${finalPrefix('PageView', old, false)}${MANIFEST}`);
    const left = (await listAll(objects, '')).map((o) => o.name);
    expect(left.filter((n) => n.includes(hourPath(old)))).toEqual([`${hourPrefix('raw', 'EndSong', old)}a.avro`]);
    expect(left.filter((n) => n.includes(hourPath(edge)) || n.includes(hourPath(recent)))).toHaveLength(10);
    expect((await store.listHours({ type: 'PageView' })).map((h) => h.hour)).toEqual([edge, recent]);
    expect(await store.listLedgers({ type: 'PageView', hour: old })).toEqual([]);
    expect(await sweeper.sweep()).toEqual({ objects: 0, hours: 0 });
  });
});
