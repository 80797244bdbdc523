/**
 * The state-store contract: every backend (SQLite now, PostgreSQL later) runs this suite.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryConflict } from '../../core/errors.js';
import type { EventTypeDefinition } from '../../core/event-types.js';
import type { NewDeadLetter, StateStore } from '../../core/ports/state-store.js';

const H = Date.UTC(2026, 10, 22, 10);

/** Until `check` holds (polled), or fails after `ms`. */
async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function stateStoreContract(
  name: string,
  make: () => Promise<{ store: StateStore; cleanup: () => Promise<void>; peer: () => Promise<StateStore> }>,
): void {
  describe(`state store contract: ${name}`, () => {
    let store: StateStore;
    let cleanup: () => Promise<void>;
    let peer: () => Promise<StateStore>;
    const peers: StateStore[] = [];
    beforeEach(async () => {
      ({ store, cleanup, peer } = await make());
    });
    afterEach(async () => {
      await Promise.all(peers.splice(0).map((p) => p.close()));
      await store.close();
      await cleanup();
    });
    const otherConnection = async (): Promise<StateStore> => {
      const p = await peer();
      peers.push(p);
      return p;
    };
    const closedHour = { closedAt: 1, closedBy: 'sealed' as const, vanishedInstances: [], ledgerTotal: 0 };

    it('claims a job for one holder at a time, across connections', async () => {
      const other = await otherConnection();
      const key = { kind: 'dedup' as const, type: 'EndSong', partition: H };
      const claims = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : other).claimJob(key, `w${i}`, 60_000)),
      );
      const won = claims.filter((c) => c !== null);
      expect(won).toHaveLength(1);
      expect(won[0]).toMatchObject({ ...key, token: 1, attempts: 1 });
      // many jobs claimed concurrently from two connections: each by exactly one claim
      const keys = Array.from({ length: 25 }, (_, i) => ({
        kind: 'load' as const,
        type: `T${i % 5}`,
        partition: H + i,
      }));
      const results = await Promise.all(
        keys.flatMap((k) => [store.claimJob(k, 'a', 60_000), other.claimJob(k, 'b', 60_000)]),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(keys.length);
      const jobs = await other.listJobs({ kind: 'load' });
      expect(jobs).toHaveLength(keys.length);
      expect(jobs.every((j) => j.state === 'running' && j.attempts === 1 && j.token === 1)).toBe(true);
    });

    it('takes a job over once its lease ended, fencing the earlier holder out', async () => {
      const key = { kind: 'dedup' as const, type: 'EndSong', partition: H };
      await store.closeHour({ ...closedHour, type: 'EndSong', hour: H });
      const first = await store.claimJob(key, 'a', 100);
      expect(first).not.toBeNull();
      if (first === null) return;
      await store.updateHour('EndSong', H, { state: 'deduped' }, 2, first);
      const renewed = await store.renewJob(first, 100);
      expect(renewed).toBeGreaterThanOrEqual(first.leaseUntil);
      expect(await store.claimJob(key, 'b', 60_000)).toBeNull();
      let second: Awaited<ReturnType<StateStore['claimJob']>> = null;
      await eventually(async () => {
        second = await store.claimJob(key, 'b', 60_000);
        return second !== null;
      });
      expect(second).toMatchObject({ holder: 'b', token: first.token + 1, attempts: 2 });
      // the earlier holder changes nothing any more
      expect(await store.renewJob(first, 60_000)).toBeNull();
      await expect(store.updateHour('EndSong', H, { state: 'closed' }, 3, first)).rejects.toMatchObject({
        code: 'lease_lost',
      });
      expect(
        await store.finishJob(first, { state: 'done' }, [{ type: 'EndSong', hour: H, patch: { state: 'failed' } }], 4),
      ).toBe(false);
      expect((await store.listHours({ type: 'EndSong' }))[0]?.state).toBe('deduped');
      // the holder that took over finishes, atomically with the hour
      if (second === null) return;
      expect(
        await store.finishJob(
          second,
          { state: 'done' },
          [{ type: 'EndSong', hour: H, patch: { state: 'published', manifest: 'm', publishedAt: 5 } }],
          5,
        ),
      ).toBe(true);
      expect((await store.listHours({ type: 'EndSong' }))[0]).toMatchObject({ state: 'published', manifest: 'm' });
      expect(await store.listJobs({ type: 'EndSong' })).toEqual([
        expect.objectContaining({ ...key, state: 'done', holder: 'b', attempts: 2, token: 2, error: null }),
      ]);
      // a finished job is never claimed again
      expect(await store.claimJob(key, 'c', 60_000)).toBeNull();
    });

    it('runs a released job again after its delay; a wait is not an attempt', async () => {
      const key = { kind: 'close' as const, type: 'PageView', partition: H };
      const a = await store.claimJob(key, 'a', 60_000);
      if (a === null) throw new Error('not claimed');
      expect(await store.finishJob(a, { state: 'ready', runAfterMs: 60_000, error: 'e1' }, [], 1)).toBe(true);
      expect(await store.claimJob(key, 'b', 60_000)).toBeNull();
      expect((await store.listJobs())[0]).toMatchObject({ state: 'ready', attempts: 1, error: 'e1', holder: 'a' });
      const dedup = { ...key, kind: 'dedup' as const };
      const d = await store.claimJob(dedup, 'a', 60_000);
      if (d === null) throw new Error('not claimed');
      expect(await store.finishJob(d, { state: 'ready', runAfterMs: 0, notAnAttempt: true }, [], 1)).toBe(true);
      const again = await store.claimJob(dedup, 'b', 60_000);
      expect(again).toMatchObject({ attempts: 1, token: 2, holder: 'b' });
      if (again === null) return;
      expect(await store.finishJob(again, { state: 'failed', error: 'gave up' }, [], 2)).toBe(true);
      expect(await store.claimJob(dedup, 'c', 60_000)).toBeNull();
      expect(await store.listJobs({ kind: 'dedup', type: 'PageView', from: H, to: H + 1 })).toEqual([
        expect.objectContaining({ state: 'failed', error: 'gave up', attempts: 1 }),
      ]);
      expect(await store.listJobs({ from: H + 1 })).toEqual([]);
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
      expect((await store.listLedgers({ from: H + 1 })).map((e) => e.instanceId)).toEqual(['i2']);
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

    it('registers raw files until the hour closes, then refuses them atomically', async () => {
      const file = {
        type: 'EndSong',
        hour: H,
        kind: 'raw' as const,
        name: 'raw/EndSong/date=2026-11-22/hour=10/c1-a.avro',
        events: 3,
        bytes: 100,
        ranges: { i1: [[1, 3]] as [number, number][] },
        consumer: 'c1',
        committedAt: 5,
      };
      expect(await store.registerFile(file)).toBe('registered');
      expect(await store.registerFile(file)).toBe('registered');
      expect(await store.listFiles('EndSong', H, 'raw')).toEqual([file]);
      const closing = {
        type: 'EndSong',
        hour: H,
        closedAt: 9,
        closedBy: 'vanished' as const,
        vanishedInstances: ['i9'],
        ledgerTotal: 3,
      };
      expect(await store.closeHour(closing)).toBe(true);
      expect(await store.closeHour(closing)).toBe(false);
      expect(await store.registerFile({ ...file, name: 'raw/x/second.avro' })).toBe('hour_closed');
      expect(await store.listFiles('EndSong', H, 'raw')).toHaveLength(1);
      // late files are kept and counted
      const late = { ...file, kind: 'late' as const, name: 'late/EndSong/date=2026-11-22/hour=10/c1-b.avro' };
      expect(await store.registerFile(late)).toBe('registered');
      expect(await store.registerFile(late)).toBe('registered');
      expect(await store.listFiles('EndSong', H, 'late')).toEqual([late]);
      const [hour] = await store.listHours({ type: 'EndSong' });
      expect(hour).toMatchObject({ state: 'closed', closedBy: 'vanished', vanishedInstances: ['i9'], lateEvents: 3 });
    });

    it('moves hours through their states and filters them', async () => {
      const base = { closedAt: 1, closedBy: 'sealed' as const, vanishedInstances: [], ledgerTotal: 0 };
      await store.closeHour({ ...base, type: 'EndSong', hour: H });
      await store.closeHour({ ...base, type: 'EndSong', hour: H + 3_600_000 });
      await store.closeHour({ ...base, type: 'PageView', hour: H });
      await store.updateHour('EndSong', H, { state: 'deduped', eventsIn: 10, duplicates: 2, eventsOut: 8 }, 2);
      await store.updateHour('EndSong', H, { state: 'published', manifest: 'm', publishedAt: 3 }, 3);
      await store.updateHour('PageView', H, { state: 'failed', error: 'missing' }, 4);
      expect(await store.listHours({ type: 'EndSong', states: ['published'] })).toMatchObject([
        {
          hour: H,
          eventsIn: 10,
          duplicates: 2,
          eventsOut: 8,
          manifest: 'm',
          publishedAt: 3,
          loadedAt: null,
          updatedAt: 3,
        },
      ]);
      await store.updateHour('EndSong', H, { loadedAt: 5 }, 5);
      expect((await store.listHours({ type: 'EndSong', states: ['published'] }))[0]).toMatchObject({
        state: 'published',
        loadedAt: 5,
      });
      expect((await store.listHours({ states: ['closed', 'failed'] })).map((h) => [h.type, h.state])).toEqual([
        ['EndSong', 'closed'],
        ['PageView', 'failed'],
      ]);
      expect(await store.listHours({ from: H + 1, to: H + 7_200_000 })).toHaveLength(1);
      await store.saveLedgers([
        { instanceId: 'i', type: 'EndSong', hour: H, ranges: [], count: 0, sealed: true, updatedAt: 1 },
        { instanceId: 'i', type: 'EndSong', hour: H + 7_200_000, ranges: [], count: 0, sealed: true, updatedAt: 1 },
      ]);
      expect((await store.listLedgers({ unclosed: true })).map((e) => e.hour)).toEqual([H + 7_200_000]);
      expect(await store.listLedgers()).toHaveLength(2);
      expect(await store.listHours({ states: [] })).toEqual([]);
    });

    it('registers types, appends versions, keeps history, and refuses stale or clashing writes', async () => {
      const def: EventTypeDefinition = {
        name: 'EndSong',
        owner: 'team-playback',
        description: 'd',
        tier: 'high',
        partitioning: 'hourly',
        storage: 'files',
        retentionDays: 30,
        status: 'active',
      };
      const v1 = { version: 1, schema: '{"type":"record","name":"EndSong","fields":[]}', fingerprint: 'f1' };
      const created = await store.saveType({
        definition: def,
        newVersions: [v1],
        expectedRevision: 0,
        actor: 'team-playback',
        action: 'create',
        detail: 'created with v1',
        at: 10,
      });
      expect(created).toMatchObject({ ...def, revision: 1, createdAt: 10, updatedAt: 10 });
      // a definition without a compatibility mode or a dedup window gets the default
      expect(created.compatibility).toBe('backward_transitive');
      expect(created.dedupWindow).toBe('1h');
      expect(created.versions).toEqual([{ ...v1, createdAt: 10, createdBy: 'team-playback' }]);
      // a second create (revision 0 expected) loses the race
      await expect(
        store.saveType({
          definition: def,
          newVersions: [],
          expectedRevision: 0,
          actor: 'x',
          action: 'create',
          detail: '',
          at: 11,
        }),
      ).rejects.toBeInstanceOf(RegistryConflict);
      const v2 = { version: 2, schema: '{}', fingerprint: 'f2' };
      const updated = await store.saveType({
        definition: { ...def, tier: 'normal', compatibility: 'full', dedupWindow: '7d' },
        newVersions: [v2],
        expectedRevision: 1,
        actor: 'admin',
        action: 'new_version',
        detail: 'v2; tier high → normal',
        at: 20,
      });
      expect(updated).toMatchObject({
        tier: 'normal',
        compatibility: 'full',
        dedupWindow: '7d',
        revision: 2,
        createdAt: 10,
        updatedAt: 20,
      });
      expect(updated.versions.map((v) => v.version)).toEqual([1, 2]);
      // stale revision, and a version number out of sequence: refused, nothing changes
      await expect(
        store.saveType({
          definition: { ...def, tier: 'low' },
          newVersions: [],
          expectedRevision: 1,
          actor: 'x',
          action: 'update',
          detail: '',
          at: 30,
        }),
      ).rejects.toBeInstanceOf(RegistryConflict);
      await expect(
        store.saveType({
          definition: { ...def, tier: 'low' },
          newVersions: [{ version: 4, schema: '{}', fingerprint: 'f4' }],
          expectedRevision: 2,
          actor: 'x',
          action: 'new_version',
          detail: '',
          at: 30,
        }),
      ).rejects.toBeInstanceOf(RegistryConflict);
      expect(await store.getType('EndSong')).toMatchObject({ tier: 'normal', revision: 2 });
      expect(await store.getType('Nope')).toBeNull();
      await store.saveType({
        definition: { ...def, name: 'PageView', owner: 'team-web' },
        newVersions: [{ ...v1, fingerprint: 'p1' }],
        expectedRevision: 0,
        actor: 'team-web',
        action: 'create',
        detail: '',
        at: 40,
      });
      expect((await store.listTypes()).map((t) => [t.name, t.versions.length])).toEqual([
        ['EndSong', 2],
        ['PageView', 1],
      ]);
      expect((await store.typeHistory('EndSong')).map((h) => [h.at, h.actor, h.action, h.detail])).toEqual([
        [10, 'team-playback', 'create', 'created with v1'],
        [20, 'admin', 'new_version', 'v2; tier high → normal'],
      ]);
    });

    it('keeps the first value of a setting: every caller gets the same one', async () => {
      const [a, b] = await Promise.all([
        store.ensureSetting('test.secret', 'first', 1),
        store.ensureSetting('test.secret', 'second', 2),
      ]);
      expect(a).toBe(b);
      expect(['first', 'second']).toContain(a);
      expect(await store.ensureSetting('test.secret', 'third', 3)).toBe(a);
      expect(await store.ensureSetting('test.other', 'x', 4)).toBe('x');
    });

    it('records reconcile steps per type, replacing by (type, step)', async () => {
      await store.saveSteps([
        { type: 'EndSong', step: 'bus', status: 'done', attempts: 1, error: null, updatedAt: 1 },
        { type: 'EndSong', step: 'consumer', status: 'failed', attempts: 2, error: 'disk full', updatedAt: 2 },
        { type: 'PageView', step: 'bus', status: 'waiting', attempts: 1, error: null, updatedAt: 3 },
      ]);
      await store.saveSteps([
        { type: 'EndSong', step: 'consumer', status: 'done', attempts: 3, error: null, updatedAt: 4 },
      ]);
      expect((await store.listSteps('EndSong')).map((s) => [s.step, s.status, s.attempts, s.error])).toEqual([
        ['bus', 'done', 1, null],
        ['consumer', 'done', 3, null],
      ]);
      expect(await store.listSteps()).toHaveLength(3);
    });

    it('forgets the hours of a type before a time, with their files, ledgers and jobs', async () => {
      const closed = { closedAt: 1, closedBy: 'sealed' as const, vanishedInstances: [], ledgerTotal: 0 };
      for (const [type, hour] of [
        ['EndSong', H],
        ['EndSong', H + 3_600_000],
        ['PageView', H],
      ] as const) {
        await store.saveLedgers([{ instanceId: 'i', type, hour, ranges: [], count: 0, sealed: true, updatedAt: 1 }]);
        await store.registerFile({
          type,
          hour,
          kind: 'raw',
          name: `raw/${type}/${hour}.avro`,
          events: 0,
          bytes: 0,
          ranges: {},
          consumer: 'c',
          committedAt: 1,
        });
        await store.closeHour({ ...closed, type, hour });
      }
      for (const partition of [H, H + 3_600_000]) {
        await store.claimJob({ kind: 'dedup', type: 'EndSong', partition }, 'w', 60_000);
      }
      await store.claimJob({ kind: 'dedup', type: 'PageView', partition: H }, 'w', 60_000);
      expect(await store.forgetHours('EndSong', H + 1)).toBe(1);
      expect((await store.listJobs()).map((j) => [j.type, j.partition])).toEqual([
        ['EndSong', H + 3_600_000],
        ['PageView', H],
      ]);
      expect((await store.listHours()).map((h) => [h.type, h.hour])).toEqual([
        ['EndSong', H + 3_600_000],
        ['PageView', H],
      ]);
      expect(await store.listFiles('EndSong', H, 'raw')).toEqual([]);
      expect((await store.listLedgers({ type: 'EndSong' })).map((e) => e.hour)).toEqual([H + 3_600_000]);
      expect(await store.listFiles('PageView', H, 'raw')).toHaveLength(1);
    });

    it('stores tokens by id with their hash, scope and expiry, lists and revokes them', async () => {
      const t = {
        id: 'a1b2c3d4',
        owner: 'playback',
        role: 'owner' as const,
        scope: 'write' as const,
        hash: 'ab'.repeat(32),
        createdAt: 5,
        expiresAt: null,
        lastUsedAt: null,
        revokedAt: null,
      };
      const reader = { ...t, id: 'ffff0000', owner: 'ops', role: 'admin' as const, scope: 'read' as const };
      await store.addToken(t);
      await store.addToken({ ...reader, expiresAt: 1_900_000_000_000 });
      await expect(store.addToken(t)).rejects.toMatchObject({ code: 'state_store_unavailable' });
      expect(await store.getToken('a1b2c3d4')).toEqual(t);
      expect(await store.getToken('ffff0000')).toEqual({ ...reader, expiresAt: 1_900_000_000_000 });
      expect(await store.getToken('nope')).toBeNull();
      expect((await store.listTokens()).map((x) => [x.owner, x.scope, x.expiresAt])).toEqual([
        ['playback', 'write', null],
        ['ops', 'read', 1_900_000_000_000],
      ]);
      expect(await store.revokeToken('a1b2c3d4', 9)).toBe(true);
      expect(await store.revokeToken('a1b2c3d4', 10)).toBe(true);
      expect((await store.getToken('a1b2c3d4'))?.revokedAt).toBe(9);
      expect(await store.revokeToken('nope', 9)).toBe(false);
    });

    it("records a token's last use at most once per interval", async () => {
      const t = {
        id: 'b1b2c3d4',
        owner: 'playback',
        role: 'owner' as const,
        scope: 'write' as const,
        hash: 'ab'.repeat(32),
        createdAt: 5,
        expiresAt: null,
        lastUsedAt: null,
        revokedAt: null,
      };
      await store.addToken(t);
      const T = 1_800_000_000_000;
      expect(await store.touchToken('b1b2c3d4', T, 60_000)).toBe(true);
      expect((await store.getToken('b1b2c3d4'))?.lastUsedAt).toBe(T);
      // within the interval: not written again
      expect(await store.touchToken('b1b2c3d4', T + 59_999, 60_000)).toBe(false);
      expect((await store.getToken('b1b2c3d4'))?.lastUsedAt).toBe(T);
      expect(await store.touchToken('b1b2c3d4', T + 60_000, 60_000)).toBe(true);
      expect((await store.getToken('b1b2c3d4'))?.lastUsedAt).toBe(T + 60_000);
      // an earlier time (another process's clock) never moves it back within the interval
      expect(await store.touchToken('b1b2c3d4', T + 30_000, 60_000)).toBe(false);
      expect(await store.touchToken('nope', T, 60_000)).toBe(false);
      // the rest of the record is untouched
      expect(await store.getToken('b1b2c3d4')).toEqual({ ...t, lastUsedAt: T + 60_000 });
    });

    it('stores producer keys by id with their hash, scopes and limits, lists and revokes them', async () => {
      const k = {
        id: 'c0ffee000001',
        producer: 'web-app',
        types: ['PageView', 'EndSong'],
        ratePerSec: 250.5,
        burst: 1000,
        origins: ['https://app.example.com'],
        hash: 'cd'.repeat(32),
        createdAt: 5,
        createdBy: 'cli',
        expiresAt: 99,
        revokedAt: null,
      };
      await store.addProducerKey(k);
      await store.addProducerKey({
        ...k,
        id: 'c0ffee000002',
        producer: 'backend',
        types: null,
        ratePerSec: null,
        burst: null,
        origins: [],
        expiresAt: null,
        createdAt: 6,
      });
      await expect(store.addProducerKey(k)).rejects.toMatchObject({ code: 'state_store_unavailable' });
      expect(await store.getProducerKey('c0ffee000001')).toEqual(k);
      expect((await store.getProducerKey('c0ffee000002'))?.types).toBeNull();
      expect(await store.getProducerKey('nope')).toBeNull();
      expect((await store.listProducerKeys()).map((x) => x.producer)).toEqual(['web-app', 'backend']);
      expect(await store.revokeProducerKey('c0ffee000001', 9)).toBe(true);
      expect(await store.revokeProducerKey('c0ffee000001', 10)).toBe(true);
      expect((await store.getProducerKey('c0ffee000001'))?.revokedAt).toBe(9);
      expect(await store.revokeProducerKey('nope', 9)).toBe(false);
    });

    it('replaces and lists alert rules per type', async () => {
      const rule = (r: 'slo_breached' | 'consumer_stuck', budget: number) => ({
        type: 'EndSong',
        rule: r,
        params: { budgetMs: budget },
        createdAt: 3,
      });
      await store.saveAlertRules('EndSong', [rule('slo_breached', 1), rule('consumer_stuck', 2)]);
      await store.saveAlertRules('PageView', [{ ...rule('slo_breached', 5), type: 'PageView' }]);
      await store.saveAlertRules('EndSong', [rule('slo_breached', 7)]);
      expect(await store.listAlertRules('EndSong')).toEqual([rule('slo_breached', 7)]);
      expect((await store.listAlertRules()).map((r) => [r.type, r.rule])).toEqual([
        ['EndSong', 'slo_breached'],
        ['PageView', 'slo_breached'],
      ]);
      await store.saveAlertRules('EndSong', []);
      expect(await store.listAlertRules('EndSong')).toEqual([]);
    });

    it('keeps one firing alert per (rule, type), updates with a notification guard, lists newest first', async () => {
      const a = {
        rule: 'consumer_stuck' as const,
        type: 'EndSong',
        tier: 'high' as const,
        summary: 'stuck',
        details: { backlog: 5, oldest: '2026-11-22T10:00:00.000Z', paged: true, note: null },
        openedAt: 100,
      };
      const first = await store.openAlert(a);
      expect(first).toMatchObject({ ...a, state: 'firing', routes: [], notifications: 0, notifiedAt: null });
      expect(await store.openAlert({ ...a, openedAt: 101 })).toBeNull();
      const other = await store.openAlert({ ...a, type: 'PageView', tier: 'low', openedAt: 102 });
      expect(other).not.toBeNull();
      const seq = first?.seq as number;
      expect(await store.updateAlert(seq, { routes: ['ticket'], notifiedAt: 110, notifications: 1 }, 110, 0)).toBe(
        true,
      );
      // a second evaluator that read the alert before the first notified loses
      expect(await store.updateAlert(seq, { routes: ['ticket'], notifiedAt: 111, notifications: 1 }, 111, 0)).toBe(
        false,
      );
      expect(await store.updateAlert(seq, { state: 'resolved', resolvedAt: 200, details: { backlog: 0 } }, 200)).toBe(
        true,
      );
      const again = await store.openAlert({ ...a, openedAt: 300 });
      expect(again?.seq).not.toBe(seq);
      const all = await store.listAlerts();
      expect(all.map((x) => [x.type, x.state, x.openedAt])).toEqual([
        ['EndSong', 'firing', 300],
        ['PageView', 'firing', 102],
        ['EndSong', 'resolved', 100],
      ]);
      expect(all[2]).toMatchObject({ routes: ['ticket'], notifiedAt: 110, notifications: 1, resolvedAt: 200 });
      expect(all[2]?.details).toEqual({ backlog: 0 });
      expect((await store.listAlerts({ state: 'firing', type: 'EndSong' })).map((x) => x.openedAt)).toEqual([300]);
      expect((await store.listAlerts({ since: 201 })).map((x) => x.state)).toEqual(['firing', 'firing']);
      expect((await store.listAlerts({ since: 200 })).map((x) => x.openedAt)).toEqual([300, 102, 100]);
      expect(await store.listAlerts({ limit: 1 })).toHaveLength(1);
    });

    it('tells the newest file commit per type', async () => {
      const f = {
        type: 'EndSong',
        hour: H,
        kind: 'raw' as const,
        name: 'raw/a.avro',
        events: 1,
        bytes: 1,
        ranges: {},
        consumer: 'c',
        committedAt: 50,
      };
      expect(await store.lastCommits()).toEqual({});
      await store.registerFile(f);
      await store.registerFile({ ...f, name: 'raw/b.avro', committedAt: 70 });
      await store.registerFile({ ...f, type: 'PageView', name: 'raw/c.avro', committedAt: 60 });
      expect(await store.lastCommits()).toEqual({ EndSong: 70, PageView: 60 });
    });

    it('answers ping', async () => {
      expect(await store.ping()).toBe(true);
    });
  });
}
