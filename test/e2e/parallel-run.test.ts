/**
 * A parallel run as a team migrating between buses runs it: `hourglass dev` with the embedded bus
 * as the main pipeline and Kafka (librdkafka's mock cluster, or KAFKA_BROKERS) as the second, both
 * ETLs publishing the same hours; `hourglass audit main kafka` finds them identical (exit 0), and
 * finds a partition removed from one side (exit 1).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hourPath } from '../../core/hours.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { useFixture } from '../fixtures/use-fixture.js';
import { hourglass, sendSummary, startDev } from '../support/dev-process.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const kafka = await useFixture('kafka');

async function publishedHours(path: string): Promise<Map<string, number>> {
  const store = new SqliteStateStore(path);
  try {
    const hours = await store.listHours();
    return new Map(
      hours
        .filter((h) => h.state === 'published' && h.type === 'EndSong')
        .map((h) => [String(h.hour), h.eventsOut ?? 0]),
    );
  } finally {
    await store.close();
  }
}

describe('parallel run on the embedded bus and Kafka', () => {
  it('publishes the same hours in both pipelines, and the audit proves it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-parallel-'));
    dirs.push(dir);
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        bus: { topicPrefix: `pr${randomBytes(4).toString('hex')}-` },
        kafka: {
          brokers: kafka.brokers,
          idempotent: kafka.idempotence,
          sessionTimeoutRealMs: 6000,
          rebalanceTimeoutRealMs: 2000,
        },
        parallel: { name: 'kafka', bus: 'kafka', ack: 'all' },
        etl: { maxFileAgeRealMs: 300, passIntervalRealMs: 200 },
      }),
    );
    const common = ['--data-dir', dir, '--config', config];
    const dev = await startDev([...common, '--time-scale', '360'], 60_000);
    let from = 0;
    let to = 0;
    try {
      const sent = await sendSummary([
        '--url',
        dev.url,
        ...dev.keyArgs,
        '--type',
        'EndSong',
        '--rate',
        '1000',
        '--duration',
        '12',
        '--duplicates',
        '0.05',
      ]);
      expect(sent.accepted).toBeGreaterThan(5_000);
      // both pipelines publish the hours the events fell into
      const deadline = Date.now() + 120_000;
      let main = new Map<string, number>();
      let second = new Map<string, number>();
      for (;;) {
        main = await publishedHours(join(dir, 'state.sqlite'));
        second = await publishedHours(join(dir, 'pipelines', 'kafka', 'state.sqlite'));
        const both = [...main.keys()].filter((h) => second.has(h) && (main.get(h) ?? 0) > 0);
        if (both.length >= 2) {
          const hours = both.map(Number).sort((a, b) => a - b);
          from = hours[0] as number;
          to = (hours[1] as number) + 3_600_000;
          break;
        }
        if (Date.now() > deadline) throw new Error(`not published in both: main ${[...main]}, kafka ${[...second]}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      await dev.stop();
    }
    // the second pipeline's hours and data, as a user looks at them
    const hours = JSON.parse(
      await hourglass(['hours', ...common, '--pipeline', 'kafka', '--type', 'EndSong', '--format', 'json']),
    ) as { hour: string; state: string }[];
    expect(hours.filter((h) => h.state === 'published').length).toBeGreaterThanOrEqual(2);
    const count = async (pipeline: string) =>
      JSON.parse(
        await hourglass([
          'query',
          ...common,
          '--pipeline',
          pipeline,
          '--format',
          'json',
          `SELECT count(*) AS n FROM EndSong WHERE epoch_ms(event_arrival_time) >= ${from} AND epoch_ms(event_arrival_time) < ${to}`,
        ]),
      ) as { n: number }[];
    expect(await count('kafka')).toEqual(await count('main'));
    await expect(hourglass(['hours', ...common, '--pipeline', 'nope'])).rejects.toThrow(/no pipeline "nope"/);

    const range = ['--type', 'EndSong', '--from', new Date(from).toISOString(), '--to', new Date(to).toISOString()];
    const same = await hourglass(['audit', ...common, ...range, 'main', 'kafka']);
    expect(same).toMatch(/the pipelines hold the same data/);

    // the second side's first audited partition unpublished (its manifest gone): a difference, exit 1
    await unlink(join(dir, 'objects', 'pipelines', 'kafka', 'final', 'EndSong', hourPath(from), '_manifest.json'));
    const differ = await hourglass(['audit', ...common, ...range, 'main', 'kafka']).then(
      (stdout) => ({ code: 0, stdout }),
      (err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? '' }),
    );
    expect(differ.code).toBe(1);
    expect(differ.stdout).toMatch(/only on a/);
    expect(differ.stdout).toMatch(/the pipelines differ/);
  }, 240_000);
});
