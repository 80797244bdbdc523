/**
 * The PostgreSQL state store against a real server (the run's fixture: Debian's PostgreSQL
 * started by the test setup, or DATABASE_URL): the shared contract, then what only several
 * connections can show.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { POSTGRES_MIGRATIONS } from '../../infra/state/postgres/migrations.js';
import { PostgresStateStore } from '../../infra/state/postgres/postgres-state-store.js';
import { stateStoreContract } from '../contracts/state-store.contract.js';
import { useFixture } from '../fixtures/use-fixture.js';

const url = await useFixture('databaseUrl');
const H = Date.UTC(2026, 10, 22, 10);

/** A store in a schema of its own, dropped afterwards. */
async function fresh(): Promise<{
  store: PostgresStateStore;
  schema: string;
  cleanup: () => Promise<void>;
  peer: () => Promise<PostgresStateStore>;
}> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const store = await PostgresStateStore.open({ url, schema });
  return {
    store,
    schema,
    peer: () => PostgresStateStore.open({ url, schema }),
    cleanup: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

stateStoreContract('postgres', fresh);

describe('postgres state store', () => {
  it('runs migrations once when several instances start at the same time', async () => {
    const { store, schema, cleanup } = await fresh();
    await store.close();
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStateStore.open({ url, schema })));
    try {
      for (const s of stores) expect(await s.appliedMigrations()).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await cleanup();
    }
  });

  it('lets no raw file register after its hour closed, with registrations racing the close', async () => {
    // consumers register through one store (connection pool), the closer closes through another
    const { store: consumers, schema, cleanup } = await fresh();
    const closer = await PostgresStateStore.open({ url, schema });
    try {
      let n = 0;
      const file = (i: number) => ({
        type: 'EndSong',
        hour: H,
        kind: 'raw' as const,
        name: `raw/EndSong/f-${i}.avro`,
        events: 1,
        bytes: 1,
        ranges: { i1: [[i, i]] as [number, number][] },
        consumer: 'c',
        committedAt: i,
      });
      const registered: string[] = [];
      // four consumers register files back to back until they are told the hour closed
      const loops = Array.from({ length: 4 }, async () => {
        for (;;) {
          const f = file(n++);
          if ((await consumers.registerFile(f)) === 'hour_closed') return;
          registered.push(f.name);
        }
      });
      await new Promise((r) => setTimeout(r, 30));
      expect(
        await closer.closeHour({
          type: 'EndSong',
          hour: H,
          closedAt: 1,
          closedBy: 'sealed',
          vanishedInstances: [],
          ledgerTotal: 0,
        }),
      ).toBe(true);
      // what the dedup step reads right after the close is the raw bucket, for good
      const atClose = (await closer.listFiles('EndSong', H, 'raw')).map((f) => f.name).sort();
      await Promise.all(loops);
      expect(atClose.length).toBeGreaterThan(4);
      expect((await closer.listFiles('EndSong', H, 'raw')).map((f) => f.name).sort()).toEqual(atClose);
      expect(registered.sort()).toEqual(atClose);
    } finally {
      await closer.close();
      await consumers.close();
      await cleanup();
    }
  });

  it('wraps driver failures as state_store_unavailable, and refuses to open an unreachable server', async () => {
    const { store, cleanup } = await fresh();
    await store.close();
    await expect(store.listInstances()).rejects.toMatchObject({ code: 'state_store_unavailable', retriable: true });
    await cleanup();
    await expect(PostgresStateStore.open({ url: 'postgres://nobody@127.0.0.1:1/none' })).rejects.toMatchObject({
      code: 'state_store_unavailable',
    });
  });
});
