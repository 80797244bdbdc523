/**
 * Producer keys as a user meets them: `hourglass dev` creates a dev key on its first start (banner,
 * `<data-dir>/dev-key` 0600) and keeps it across restarts; `hourglass keys create|list|revoke`;
 * `hourglass send` finds the key by flag, environment or data dir.
 */
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hourglass, sendSummary, startDev } from '../support/dev-process.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('producer keys from the command line', () => {
  it('dev creates a key on first start, keys create/list/revoke manage others, send uses them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-keys-'));
    dirs.push(dir);
    let dev = await startDev(['--data-dir', dir, '--no-etl']);
    try {
      expect(dev.key).toMatch(/^hgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
      expect(dev.output()).toContain(`producer key: ${dev.key}`);
      expect(statSync(join(dir, 'dev-key')).mode & 0o777).toBe(0o600);
      // without a key: 401; with the dev key found in the data dir: accepted
      const anonymous = await fetch(`${dev.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: [] }),
      });
      expect(anonymous.status).toBe(401);
      const viaDir = await sendSummary(['--url', dev.url, '--data-dir', dir, '--rate', '200', '--duration', '1']);
      expect(viaDir.accepted).toBeGreaterThan(100);

      const created = await hourglass([
        'keys',
        'create',
        '--producer',
        'web',
        '--types',
        'PageView',
        '--data-dir',
        dir,
      ]);
      const key = created.trim().split('\n').pop() as string;
      expect(key).toMatch(/^hgk_/);
      const listed = JSON.parse(await hourglass(['keys', 'list', '--data-dir', dir, '--format', 'json'])) as {
        id: string;
        producer: string;
        types: string[] | null;
        status: string;
      }[];
      expect(JSON.stringify(listed)).not.toContain(key.slice(17));
      const web = listed.find((k) => k.producer === 'web');
      expect(web).toMatchObject({ types: ['PageView'], status: 'active' });
      expect(listed.find((k) => k.producer === 'dev')).toMatchObject({ types: null });

      // the web key may write PageView only
      const pv = await sendSummary([
        '--url',
        dev.url,
        '--key',
        key,
        '--type',
        'PageView',
        '--rate',
        '200',
        '--duration',
        '1',
      ]);
      expect(pv.accepted).toBeGreaterThan(100);
      const es = await sendSummary([
        '--url',
        dev.url,
        '--key',
        key,
        '--type',
        'EndSong',
        '--rate',
        '200',
        '--duration',
        '1',
      ]);
      expect(es.accepted).toBe(0);
      expect(es.rejectedByCode?.type_not_allowed).toBeGreaterThan(100);

      expect(await hourglass(['keys', 'revoke', web?.id as string, '--data-dir', dir])).toContain('revoked');
      await new Promise((r) => setTimeout(r, 1200));
      const after = await fetch(`${dev.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ events: [] }),
      });
      expect(after.status).toBe(401);
      expect(await after.text()).toContain('revoked');

      // a restart keeps the dev key
      const first = dev.key;
      await dev.stop();
      dev = await startDev(['--data-dir', dir, '--no-etl']);
      expect(dev.key).toBe(first);
    } finally {
      await dev.stop();
    }
  }, 90_000);

  it('keys create refuses what it cannot honour, with exit code 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-keys-'));
    dirs.push(dir);
    for (const args of [
      ['--producer', 'web'],
      ['--producer', 'web', '--types', 'A', '--all-types'],
      ['--producer', 'bad name', '--all-types'],
      ['--producer', 'web', '--all-types', '--origins', 'not-a-url'],
      ['--producer', 'web', '--all-types', '--expires', 'soon'],
      ['--producer', 'web', '--all-types', '--rate', '-1'],
    ]) {
      await expect(hourglass(['keys', 'create', ...args, '--data-dir', dir])).rejects.toMatchObject({ code: 2 });
    }
  });
});
