/**
 * Retiring a type that still has traffic (`hourglass dev`, time scale 360): the ingress refuses it
 * from then on, its subscription drains, its last hours are published, its consumer stops, its
 * topic and subscription are deleted and the registry marks it retired. No accepted event is lost.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hourglass as cli, startDev } from '../support/dev-process.js';

const dirs: string[] = [];
const hourglass = (...args: string[]): Promise<string> => cli(args);
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('retirement', () => {
  it('drains, publishes the last hours and cleans up a type retired under traffic, losing nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-retire-'));
    dirs.push(dir);
    const dev = await startDev(['--data-dir', dir, '--time-scale', '360']);
    try {
      const sending = hourglass(
        'send',
        '--url',
        dev.url,
        ...dev.keyArgs,
        '--type',
        'PageView',
        '--rate',
        '500',
        '--duration',
        '8',
        '--json',
      );
      await new Promise((r) => setTimeout(r, 3000));
      expect(await hourglass('types', 'retire', 'PageView', '--data-dir', dir)).toMatch(/PageView: retiring/);
      const sent = JSON.parse((await sending).trim().split('\n').pop() as string) as {
        accepted: number;
        rejected: number;
        distinctAcceptedIds: number;
      };
      expect(sent.accepted).toBeGreaterThan(500);
      expect(sent.rejected).toBeGreaterThan(500); // refused once retiring

      type Shown = { status: string; steps: { step: string; status: string; error: string | null }[] };
      let shown: Shown = { status: '', steps: [] };
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        shown = JSON.parse(
          await hourglass('types', 'show', 'PageView', '--data-dir', dir, '--format', 'json'),
        ) as Shown;
        if (shown.status === 'retired') break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(shown.status, JSON.stringify(shown.steps)).toBe('retired');
      expect(shown.steps.map((s) => [s.step, s.status])).toEqual(
        expect.arrayContaining([
          ['drain', 'done'],
          ['consumer', 'done'],
          ['bus', 'done'],
          ['alerts', 'done'],
          ['retired', 'done'],
        ]),
      );

      // topic and subscription are gone from the bus; the other types' remain
      expect(await readdir(join(dir, 'bus', 'topics'))).not.toContain('hourglass.PageView');
      expect(await readdir(join(dir, 'bus', 'topics'))).toContain('hourglass.EndSong');
      expect(await readdir(join(dir, 'bus', 'subscriptions'))).not.toContain('hourglass.PageView.etl');

      // every accepted event is in the published partitions, once
      const [counts] = JSON.parse(
        await hourglass(
          'query',
          '--data-dir',
          dir,
          '--format',
          'json',
          'SELECT count(*) AS events, count(DISTINCT event_id) AS ids FROM PageView',
        ),
      ) as { events: number; ids: number }[];
      expect(counts).toEqual({ events: sent.distinctAcceptedIds, ids: sent.distinctAcceptedIds });

      const res = await fetch(`${dev.url}/v1/events`, {
        method: 'POST',
        headers: dev.headers,
        body: JSON.stringify({ events: [{ id: 'late-1', type: 'PageView', version: 1, payload: {} }] }),
      });
      expect(((await res.json()) as { rejected: { code: string }[] }).rejected[0]?.code).toBe('retired_type');
    } finally {
      await dev.stop();
    }
  }, 120_000);
});
