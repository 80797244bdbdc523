/**
 * The whole pipeline with its state (ledgers, instances, files, hours, registry) in PostgreSQL:
 * `hourglass dev` with `HOURGLASS_STATE=postgres`, traffic, and an hour published, read back by
 * `hourglass hours` and `hourglass types` through the same database.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { useFixture } from '../fixtures/use-fixture.js';
import { hourglass as cli, startDev } from '../support/dev-process.js';

const url = await useFixture('databaseUrl');
const schema = `e2e_${randomBytes(5).toString('hex')}`;
const env = { HOURGLASS_STATE: 'postgres', HOURGLASS_STATE_URL: url, HOURGLASS_STATE_SCHEMA: schema };
const dirs: string[] = [];
const hourglass = (...args: string[]): Promise<string> => cli(args, env);

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
});

describe('pipeline on PostgreSQL state', () => {
  it('publishes a complete hour with ledgers, files and hours in PostgreSQL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-pg-e2e-'));
    dirs.push(dir);
    const dev = await startDev(['--data-dir', dir, '--time-scale', '360'], 30_000, env);
    try {
      const send = JSON.parse(
        (
          await hourglass(
            'send',
            '--url',
            dev.url,
            ...dev.keyArgs,
            '--type',
            'EndSong',
            '--rate',
            '1000',
            '--duration',
            '4',
            '--json',
          )
        )
          .trim()
          .split('\n')
          .pop() as string,
      ) as { accepted: number };
      expect(send.accepted).toBeGreaterThan(2000);
      let published: { in: number; out: number; ledger: number }[] = [];
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const hours = JSON.parse(
          await hourglass('hours', '--data-dir', dir, '--time-scale', '360', '--type', 'EndSong', '--format', 'json'),
        ) as { state: string; in: number; out: number; ledger: number }[];
        published = hours.filter((h) => h.state === 'published' && h.in > 0);
        if (published.length > 0) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(published.length).toBeGreaterThan(0);
      for (const h of published) expect(h.out).toBe(h.ledger);
      // the rows are in PostgreSQL, not in a SQLite file of the data dir
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const n = await c.query(`SELECT count(*)::int AS n FROM ${schema}.hours WHERE state = 'published'`);
      await c.end();
      expect(n.rows[0].n).toBeGreaterThan(0);
    } finally {
      await dev.stop();
    }
  }, 120_000);
});
