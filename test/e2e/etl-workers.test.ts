/**
 * Batch workers as users run them: `hourglass etl --roles dedup` processes on one data dir, next
 * to an ETL that consumes and closes. A worker SIGKILLed in the middle of a partition's dedup
 * loses it to another worker once its lease ends; the partition is published once, whole.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { seedRegistry } from '../../cli/pipeline.js';
import { ManualClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { HOUR_MS } from '../../core/hours.js';
import { silentLogger } from '../../core/logger.js';
import { listAll } from '../../core/ports/object-store.js';
import type { Manifest } from '../../etl/dedup.js';
import { type DevProcess, startEtl } from '../support/dev-process.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong } from '../support/ingress-harness.js';

const H = Date.UTC(2026, 10, 22, 10);
const EVENTS = 60_000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('hourglass etl --roles dedup', () => {
  it('takes over the partition of a worker SIGKILLed mid-job once its lease ends, and publishes it once', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x: EtlHarness = await startEtlHarness({ clock, roles: ['consume', 'close'] });
    cleanups.push(() => x.close());
    // the workers read the types from the registry
    await seedRegistry(loadConfig({ overrides: { dataDir: x.dir } }), x.store, clock, silentLogger());
    for (let b = 0; b < EVENTS / 1000; b++) {
      const events = Array.from({ length: 1000 }, (_, i) => ({
        type: 'EndSong',
        id: `e-${b}-${i}`,
        payload: endSong(),
      }));
      expect((await x.post(events)).status).toBe(200);
    }
    clock.set(H + HOUR_MS + 1);
    await x.until(async () => (await x.store.listHours({ type: 'EndSong', states: ['closed'] })).length === 1, 30_000);

    // a short lease, and a dedup split into many small spills so that it takes a while
    const configFile = join(x.dir, 'workers.json');
    await writeFile(
      configFile,
      JSON.stringify({ etl: { jobLeaseRealMs: 1500, passIntervalRealMs: 100, dedupMaxIdsInMemory: 500 } }),
    );
    const args = ['--roles', 'dedup', '--data-dir', x.dir, '--config', configFile];
    const workers: DevProcess[] = [];
    cleanups.push(async () => {
      for (const w of workers) await w.kill();
    });
    const first = await startEtl(args);
    workers.push(first);
    expect(first.output()).toContain('roles dedup');
    const job = async () => (await x.store.listJobs({ kind: 'dedup', type: 'EndSong' }))[0];
    await until(async () => (await job())?.state === 'running', 30_000, 'the first worker claims the partition');
    const claimed = await job();
    expect(claimed?.holder).toContain(`-${first.child.pid}-`);
    await first.kill();
    const killedAt = Date.now();

    const second = await startEtl(args);
    workers.push(second);
    await until(
      async () => (await x.store.listHours({ type: 'EndSong', states: ['published'] })).length === 1,
      60_000,
      'the second worker publishes the partition',
    );
    // not before the first worker's lease ended
    expect((await job())?.holder).toContain(`-${second.child.pid}-`);
    expect(Date.now() - killedAt).toBeGreaterThan(1000);
    expect(await job()).toMatchObject({ state: 'done', attempts: 2, token: 2 });

    const [hour] = await x.store.listHours({ type: 'EndSong' });
    const manifest = JSON.parse((await x.objects.get(hour?.manifest as string)).toString()) as Manifest;
    expect(manifest).toMatchObject({ rawEventsIn: EVENTS, eventsOut: EVENTS, ledgerTotal: EVENTS });
    // only what the manifest lists is in the partition: its data files and id index
    const manifestName = hour?.manifest as string;
    const prefix = manifestName.slice(0, manifestName.lastIndexOf('/') + 1);
    expect((await listAll(x.objects, prefix)).map((o) => o.name).sort()).toEqual(
      [...manifest.files.map((f) => f.name), manifest.idIndex?.name, manifestName].sort(),
    );
    expect(await x.query('SELECT count(*) n, count(DISTINCT event_id) d FROM EndSong')).toEqual([
      { n: EVENTS, d: EVENTS },
    ]);
    // the killed worker's scratch folder went when the next worker started
    expect((await readdir(join(x.dir, 'work'))).filter((n) => n.startsWith(`dedup-${first.child.pid}-`))).toEqual([]);
  }, 180_000);
});
