/**
 * kill -9 of `hourglass dev` while producers send: every event answered as accepted is still on
 * the bus after the restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { type DevProcess, startDev } from '../support/dev-process.js';
import { drain, endSong, pageView } from '../support/ingress-harness.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function produce(dev: DevProcess, prefix: string, accepted: Set<string>, stop: () => boolean): Promise<void> {
  let n = 0;
  const worker = async (w: number): Promise<void> => {
    while (!stop()) {
      const batch = n++;
      const events = Array.from({ length: 50 }, (_, i) =>
        i % 5 === 0
          ? { type: 'PageView', id: `${prefix}-${w}-${batch}-${i}`, payload: pageView() }
          : { type: 'EndSong', id: `${prefix}-${w}-${batch}-${i}`, payload: endSong() },
      );
      try {
        const res = await fetch(`${dev.url}/v1/events`, {
          method: 'POST',
          headers: dev.headers,
          body: JSON.stringify({ events }),
        });
        const body = (await res.json()) as { accepted?: number };
        if (res.status === 200) {
          expect(body.accepted).toBe(events.length);
          for (const e of events) accepted.add(e.id);
        }
      } catch {
        return; // the server is gone
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
}

describe('hourglass dev crash', () => {
  it('keeps every accepted event across kill -9 and restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-crash-'));
    dirs.push(dir);
    const accepted = new Set<string>();
    for (let cycle = 0; cycle < 2; cycle++) {
      const dev = await startDev(['--data-dir', dir, '--no-etl']);
      let killed = false;
      const producing = produce(dev, `c${cycle}`, accepted, () => killed);
      await new Promise((r) => setTimeout(r, 800 + Math.random() * 700));
      killed = true;
      await dev.kill();
      await producing;
    }
    expect(accepted.size).toBeGreaterThan(500);
    // a clean start on the same data dir works after the crashes
    const dev = await startDev(['--data-dir', dir, '--no-etl']);
    expect((await fetch(`${dev.url}/readyz`)).status).toBe(200);
    expect(await dev.stop()).toBe(0);

    const bus = new EmbeddedBus({ dataDir: dir, clock: new SystemClock(), retentionSweepMs: 0 });
    try {
      const seen = new Map<string, number>([
        ...(await drain(bus, 'hourglass.EndSong.etl', 0, 10_000)),
        ...(await drain(bus, 'hourglass.PageView.etl', 0, 10_000)),
      ]);
      const missing = [...accepted].filter((id) => !seen.has(id));
      expect(missing).toEqual([]);
    } finally {
      await bus.close();
    }
  }, 90_000);
});
