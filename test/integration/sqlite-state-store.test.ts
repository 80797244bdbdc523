import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SQLITE_MIGRATIONS } from '../../infra/state/sqlite/migrations.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { stateStoreContract } from '../contracts/state-store.contract.js';

stateStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-sqlite-'));
  return {
    store: new SqliteStateStore(join(dir, 'state.sqlite')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
    peer: async () => new SqliteStateStore(join(dir, 'state.sqlite')),
  };
});

describe('sqlite state store', () => {
  it('runs migrations once and keeps data across reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-sqlite-'));
    try {
      const path = join(dir, 'state.sqlite');
      const a = new SqliteStateStore(path);
      await a.upsertInstance({ id: 'i1', host: 'h', pid: 1, startedAt: 1, lastSeenAt: 1, stoppedAt: null });
      await a.close();
      const b = new SqliteStateStore(path);
      expect(b.appliedMigrations()).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
      expect(await b.listInstances()).toHaveLength(1);
      await b.close();
      // a second process (connection) sees the same data while the first is open (WAL)
      const c = new SqliteStateStore(path);
      const raw = new Database(path, { readonly: true });
      expect((raw.prepare('SELECT count(*) AS n FROM ingress_instances').get() as { n: number }).n).toBe(1);
      raw.close();
      await c.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('wraps driver failures as state_store_unavailable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-sqlite-'));
    try {
      const store = new SqliteStateStore(join(dir, 'state.sqlite'));
      await store.close();
      await expect(store.listInstances()).rejects.toMatchObject({ code: 'state_store_unavailable', retriable: true });
      expect(() => new SqliteStateStore(join(dir, 'state.sqlite', 'not-a-dir', 'x.sqlite'))).toThrow(
        /state store open/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the tokens of a store made before token scopes and expiry: full scope, no expiry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-sqlite-'));
    try {
      const path = join(dir, 'state.sqlite');
      // a database as the release before migration 10 left it
      const raw = new Database(path);
      raw.exec(
        'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
      );
      for (const m of SQLITE_MIGRATIONS.filter((x) => x.version < 10)) {
        raw.exec(m.sql);
        raw.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
      }
      raw
        .prepare('INSERT INTO api_tokens (id, owner, role, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run('0123456789ab', 'dev', 'admin', 'ab'.repeat(32), 5, null);
      raw.close();
      const store = new SqliteStateStore(path);
      expect(await store.getToken('0123456789ab')).toEqual({
        id: '0123456789ab',
        owner: 'dev',
        role: 'admin',
        scope: 'write',
        hash: 'ab'.repeat(32),
        createdAt: 5,
        expiresAt: null,
        lastUsedAt: null,
        revokedAt: null,
      });
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
