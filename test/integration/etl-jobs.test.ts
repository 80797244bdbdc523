/**
 * Batch jobs claimed in the state store: several ETL processes' workers on one store share the
 * partitions, each published once; a worker that stalls loses its job to another once its lease
 * ends, and whatever it does afterwards changes nothing; jobs of different types run side by side.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { HOUR_MS } from '../../core/hours.js';
import { listAll, type ObjectStore } from '../../core/ports/object-store.js';
import type { StateStore } from '../../core/ports/state-store.js';
import type { Manifest } from '../../etl/dedup.js';
import type { EtlService } from '../../etl/service.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong, pageView, userCreate } from '../support/ingress-harness.js';
import { overriding } from '../support/overriding.js';

const H = Date.UTC(2026, 10, 22, 10);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The object store, with uploads of final files under `prefix` held until `held` resolves (`onHold` says when one is). */
function holdUploads(prefix: string, held: Promise<void>, onHold: () => void = () => undefined) {
  return (inner: ObjectStore): ObjectStore =>
    overriding(inner, {
      putFile: async (name: string, path: string) => {
        if (name.startsWith(prefix)) {
          onHold();
          await held;
        }
        return inner.putFile(name, path);
      },
    });
}

/** A promise and the function that resolves it. */
function gate(): { held: Promise<void>; release: () => void } {
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => {
    release = r;
  });
  return { held, release };
}

/** A harness whose own ETL only consumes and closes: publishing is left to the workers of a test. */
async function consumeAndClose(clock: ManualClock, etl: Record<string, unknown> = {}): Promise<EtlHarness> {
  const x = await startEtlHarness({ clock, roles: ['consume', 'close'], etl });
  cleanups.push(() => x.close());
  return x;
}

/** Posts `n` events of EndSong and PageView (hourly types), and of UserCreate (daily) if asked, into the clock's hour. */
async function postHour(x: EtlHarness, tag: string, n: number, daily = false): Promise<void> {
  const events = Array.from({ length: n }, (_, i) => [
    { type: 'EndSong', id: `${tag}-es-${i}`, payload: endSong() },
    { type: 'PageView', id: `${tag}-pv-${i}`, payload: pageView() },
    ...(daily ? [{ type: 'UserCreate', id: `${tag}-uc-${i}`, payload: userCreate({ userId: `u${i}` }) }] : []),
  ]).flat();
  expect((await x.post(events)).status).toBe(200);
}

/** A harness with one closed hour of `n` events of EndSong and of PageView (UserCreate's, empty, waits for its day). */
async function oneClosedHour(n: number): Promise<EtlHarness> {
  const clock = new ManualClock(H + 10 * 60_000);
  const x = await consumeAndClose(clock);
  await postHour(x, 'a', n);
  clock.set(H + HOUR_MS + 1);
  await closedHours(x, 3);
  return x;
}

async function closedHours(x: EtlHarness, count: number): Promise<void> {
  await x.until(async () => (await x.store.listHours({ states: ['closed'] })).length === count);
}

/** Passes of the workers (all at once) until `done`. */
async function workUntil(workers: EtlService[], done: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await Promise.all(workers.map((w) => w.pass()));
    await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.all(workers.map((w) => w.settled()));
}

describe('batch jobs', () => {
  it('two workers on one store publish every partition once, each by one claim', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await consumeAndClose(clock);
    await postHour(x, 'a', 50, true);
    clock.set(H + HOUR_MS + 10 * 60_000);
    await postHour(x, 'b', 50, true);
    clock.set(H + 2 * HOUR_MS + 1);
    await closedHours(x, 6);
    // the consuming process publishes nothing; the daily type's day ends
    expect(await x.store.listJobs({ kind: 'dedup' })).toEqual([]);
    clock.set(Math.floor(H / (24 * HOUR_MS) + 1) * 24 * HOUR_MS + 1);
    const [a, b] = [await x.worker(), await x.worker()] as [EtlService, EtlService];
    await workUntil([a, b], async () => (await x.store.listHours({ states: ['published'] })).length === 6);
    // two hours of EndSong and PageView, one day of UserCreate
    const jobs = await x.store.listJobs({ kind: 'dedup' });
    expect(jobs).toHaveLength(5);
    for (const j of jobs) {
      expect(j).toMatchObject({ state: 'done', attempts: 1, token: 1 });
      expect([a.id, b.id]).toContain(j.holder);
    }
    const claims = async (w: EtlService) =>
      (await w.metrics.jobClaims.get()).values.reduce((n, v) => n + (v.labels.kind === 'dedup' ? v.value : 0), 0);
    expect((await claims(a)) + (await claims(b))).toBe(5);
    // each partition holds its 50 events once
    for (const t of ['EndSong', 'PageView', 'UserCreate']) {
      expect(await x.query(`SELECT count(*) n, count(DISTINCT event_id) d FROM ${t}`)).toEqual([{ n: 100, d: 100 }]);
    }
  });

  it('takes over the job of a worker that stalled; the stalled worker then changes nothing', async () => {
    const x = await oneClosedHour(40);

    // worker A stalls in the middle of EndSong's publication: its uploads hang, and so does the
    // state store for its renewals (as a paused process would)
    const { held, release } = gate();
    let entered = false;
    const stallUploads = holdUploads('final/EndSong/', held, () => {
      entered = true;
    });
    const hangRenewals = (inner: StateStore): StateStore =>
      overriding(inner, {
        renewJob: (lease, leaseMs) => (entered ? new Promise(() => undefined) : inner.renewJob(lease, leaseMs)),
      });
    const lease = 400;
    const a = await x.worker({ etl: { jobLeaseRealMs: lease }, wrapObjects: stallUploads, wrapState: hangRenewals });
    await a.pass();
    await x.until(async () => entered);
    // A gives the job up once its lease ended without a renewal
    await x.until(async () => (await a.metrics.leasesLost.get()).values.some((v) => v.value === 1));

    const b = await x.worker({ etl: { jobLeaseRealMs: lease } });
    await workUntil([b], async () => (await x.store.listHours({ states: ['published'] })).length === 2);
    const [job] = await x.store.listJobs({ kind: 'dedup', type: 'EndSong' });
    expect(job).toMatchObject({ state: 'done', attempts: 2, token: 2, holder: b.id });
    const [hour] = await x.store.listHours({ type: 'EndSong' });
    const manifestName = hour?.manifest as string;
    const before = await listAll(x.objects, 'final/EndSong/');

    // A wakes up: its upload goes through, but it writes no hour state and no manifest, and
    // removes the file it uploaded
    release();
    await a.settled();
    expect((await x.store.listHours({ type: 'EndSong' }))[0]).toMatchObject({
      state: 'published',
      manifest: manifestName,
      eventsOut: 40,
    });
    expect((await x.store.listJobs({ kind: 'dedup', type: 'EndSong' }))[0]).toMatchObject({ holder: b.id, token: 2 });
    expect((await listAll(x.objects, 'final/EndSong/')).map((o) => o.name).sort()).toEqual(
      before.map((o) => o.name).sort(),
    );
    const m = JSON.parse((await x.objects.get(manifestName)).toString()) as Manifest;
    expect(m.eventsOut).toBe(40);
    expect(await x.query('SELECT count(*) n, count(DISTINCT event_id) d FROM EndSong')).toEqual([{ n: 40, d: 40 }]);
  });

  it('a worker that stops releases its running job, and another worker runs it without counting an attempt', async () => {
    const x = await oneClosedHour(30);
    const { held, release } = gate();
    let entered = false;
    const a = await x.worker({
      wrapObjects: holdUploads('final/EndSong/', held, () => {
        entered = true;
      }),
    });
    await a.pass();
    await x.until(async () => entered);
    const stopping = a.close();
    release();
    await stopping;
    expect((await x.store.listJobs({ kind: 'dedup', type: 'EndSong' }))[0]).toMatchObject({
      state: 'ready',
      attempts: 0,
      holder: a.id,
    });
    // what it uploaded went with it
    expect(await listAll(x.objects, 'final/EndSong/')).toEqual([]);
    const b = await x.worker();
    await workUntil(
      [b],
      async () => (await x.store.listHours({ type: 'EndSong', states: ['published'] })).length === 1,
    );
    expect((await x.store.listJobs({ kind: 'dedup', type: 'EndSong' }))[0]).toMatchObject({
      state: 'done',
      attempts: 1,
      holder: b.id,
    });
  });

  it("publishes a small type's partition while another type's partition is being published", async () => {
    const x = await oneClosedHour(30);
    const { held, release } = gate();
    const holdEndSong = holdUploads('final/EndSong/', held);
    // one slot (plus the one for small partitions): EndSong holds the first
    const w = await x.worker({ etl: { batchConcurrency: 1 }, wrapObjects: holdEndSong });
    const published = async (type: string) => (await x.store.listHours({ type, states: ['published'] })).length === 1;
    const deadline = Date.now() + 15_000;
    while (!(await published('PageView'))) {
      if (Date.now() > deadline) throw new Error('the other types waited behind EndSong');
      await w.pass();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await published('EndSong')).toBe(false);
    const running = (await w.metrics.jobsRunning.get()).values.find((v) => v.labels.kind === 'dedup')?.value;
    expect(running).toBe(1);
    release();
    await w.settled();
    await workUntil([w], () => published('EndSong'));
  });
});
