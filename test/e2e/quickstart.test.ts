/**
 * The README quick start, as a user runs it: `hourglass dev --time-scale 360`, `hourglass send`,
 * then `hourglass hours` and `hourglass query` show a complete, deduplicated hour within two
 * minutes of starting.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hourglass as cli, sendSummary, startDev } from '../support/dev-process.js';

const dirs: string[] = [];
const hourglass = (...args: string[]): Promise<string> => cli(args);
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('quick start', () => {
  it('shows a complete, deduplicated, queryable hour within two minutes', async () => {
    const started = Date.now();
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-quickstart-'));
    dirs.push(dir);
    const dev = await startDev(['--data-dir', dir, '--time-scale', '360']);
    try {
      // the key hourglass dev saved in the data dir, as the README's send command finds it
      const send = await sendSummary([
        '--url',
        dev.url,
        '--data-dir',
        dir,
        '--type',
        'EndSong,PageView',
        '--rate',
        '2000',
        '--duration',
        '12',
        '--duplicates',
        '0.05',
      ]);
      expect(send.accepted).toBeGreaterThan(10_000);
      let published: { type: string; hour: string; in: number; duplicates: number; out: number }[] = [];
      while (Date.now() - started < 120_000) {
        const hours = JSON.parse(
          await hourglass('hours', '--data-dir', dir, '--time-scale', '360', '--format', 'json'),
        ) as {
          type: string;
          hour: string;
          state: string;
          in: number;
          duplicates: number;
          out: number;
        }[];
        published = hours.filter((h) => h.type === 'EndSong' && h.state === 'published' && h.in > 0);
        if (published.length > 0) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(published.length).toBeGreaterThan(0);
      const hour = published[0] as (typeof published)[number];
      const [date, hh] = [hour.hour.slice(0, 10), Number(hour.hour.slice(11, 13))];
      const rows = JSON.parse(
        await hourglass(
          'query',
          '--data-dir',
          dir,
          '--format',
          'json',
          `SELECT count(*) AS events, count(DISTINCT event_id) AS ids FROM EndSong WHERE date = '${date}' AND hour = ${hh}`,
        ),
      ) as { events: number; ids: number }[];
      expect(rows).toEqual([{ events: hour.out, ids: hour.out }]);
      expect(hour.out).toBe(hour.in - hour.duplicates);
      // the README's other query, as written: it depends on no date or hour
      const platforms = JSON.parse(
        await hourglass(
          'query',
          '--data-dir',
          dir,
          '--format',
          'json',
          'SELECT platform, round(avg(durationMs)) AS avg_ms, count(*) AS plays FROM EndSong GROUP BY platform ORDER BY platform',
        ),
      ) as { platform: string; avg_ms: number; plays: number }[];
      expect(platforms.length).toBeGreaterThan(1);
      expect(platforms.reduce((sum, p) => sum + Number(p.plays), 0)).toBeGreaterThanOrEqual(hour.out);
      // the ETL's metrics are served with the ingress's
      const metrics = await (await fetch(`${dev.url}/metrics`)).text();
      expect(metrics).toMatch(/hourglass_etl_partitions_published_total\{type="EndSong"\} [1-9]/);
      expect(metrics).toMatch(/hourglass_bus_backlog_messages\{subscription="hourglass\.EndSong\.etl"\} \d+/);
      expect(metrics).toMatch(/hourglass_bus_oldest_unacked_age_seconds\{subscription="hourglass\.EndSong\.etl"\} /);
      expect(metrics).toMatch(/hourglass_hours\{type="EndSong",state="published"\} [1-9]/);
      expect(metrics).toMatch(/hourglass_delivery_delay_seconds_count\{type="EndSong",tier="high"\} [1-9]/);
      expect(metrics).toMatch(/hourglass_etl_dedup_ratio\{type="EndSong"\} [0-9.e-]+/);
      expect(Date.now() - started).toBeLessThan(120_000);
    } finally {
      await dev.stop();
    }
  }, 150_000);
});
