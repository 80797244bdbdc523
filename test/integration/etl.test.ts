/**
 * The ETL end to end in one process, on a manual clock: raw hour files, closing, dedup, final
 * partitions, late events, bad messages, daily partitions, empty hours.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { topicFor } from '../../core/event-types.js';
import { HOUR_MS, hourPath } from '../../core/hours.js';
import { listAll } from '../../core/ports/object-store.js';
import type { Manifest } from '../../etl/dedup.js';
import { type EtlHarness, type EtlHarnessOptions, startEtlHarness } from '../support/etl-harness.js';
import { endSong, pageView } from '../support/ingress-harness.js';

const H = Date.UTC(2026, 10, 22, 10);
let h: EtlHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function start(clock: ManualClock, options: Partial<EtlHarnessOptions> = {}): Promise<EtlHarness> {
  h = await startEtlHarness({ clock, ...options });
  return h;
}

const published = (x: EtlHarness, type: string, hour: number) => async () =>
  (await x.store.listHours({ type, states: ['published'] })).some((r) => r.hour === hour);

async function manifest(x: EtlHarness, type: string, hour: number): Promise<Manifest> {
  return JSON.parse((await x.objects.get(`final/${type}/${hourPath(hour)}/_manifest.json`)).toString()) as Manifest;
}

describe('ETL', () => {
  it('publishes a complete, deduplicated hour with v1 and v2 events resolved to the current schema', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    const v2 = Array.from({ length: 300 }, (_, i) => ({
      type: 'EndSong',
      id: `e-${i}`,
      payload: endSong({ durationMs: i }),
    }));
    const v1 = Array.from({ length: 50 }, (_, i) => {
      const { offline: _o, bitrateKbps: _b, ...p } = endSong({ durationMs: 1000 + i });
      return { type: 'EndSong', id: `old-${i}`, version: 1, payload: p };
    });
    expect((await x.post([...v2, ...v1])).body.accepted).toBe(350);
    // producer retries: the same ids again (new sequence numbers), in a later request
    expect((await x.post(v2.slice(0, 40))).body.accepted).toBe(40);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, 'EndSong', H));

    const m = await manifest(x, 'EndSong', H);
    expect(m).toMatchObject({
      type: 'EndSong',
      partitioning: 'hourly',
      rawEventsIn: 390,
      duplicatesRemoved: 40,
      eventsOut: 350,
      ledgerTotal: 390,
      schema: { version: 2 },
      closedBy: ['sealed'],
    });
    expect(m.files.length).toBeGreaterThan(0);
    for (const f of m.files) {
      expect(f.sha256).toBe(
        createHash('sha256')
          .update(await x.objects.get(f.name))
          .digest('hex'),
      );
    }
    const rows = await x.query(
      'SELECT count(*) n, count(DISTINCT event_id) d, count(*) FILTER (event_writer_version = 1) v1, ' +
        'count(*) FILTER (event_writer_version = 1 AND offline = false AND bitrateKbps IS NULL) defaulted, min(date)::VARCHAR d1, min(hour) h FROM EndSong',
    );
    expect(rows).toEqual([{ n: 350, d: 350, v1: 50, defaulted: 50, d1: '2026-11-22', h: 10 }]);
    const [state] = await x.store.listHours({ type: 'EndSong', from: H, to: H + 1 });
    expect(state).toMatchObject({ state: 'published', eventsIn: 390, duplicates: 40, eventsOut: 350, lateEvents: 0 });
    // raw files are Avro containers under the hour, named by the consumer
    const raw = await listAll(x.objects, `raw/EndSong/${hourPath(H)}/`);
    expect(raw.length).toBeGreaterThan(0);
    expect(raw.every((o) => o.name.endsWith('.avro') && o.name.includes(x.etl.id))).toBe(true);
  });

  it.each(['null', 'deflate', 'snappy'])(
    'reads every raw file of an hour into one buffer, whatever the codec (%s): files of growing size, a retry across files',
    async (codec) => {
      const clock = new ManualClock(H + 10 * 60_000);
      const x = await start(clock, { etl: { codec } });
      const rawFiles = async () => (await listAll(x.objects, `raw/EndSong/${hourPath(H)}/`)).length;
      // one raw file per request (files are committed after 50 ms), each bigger than the one before
      let id = 0;
      const sent: { type: string; id: string; payload: unknown }[] = [];
      for (const n of [5, 40, 200]) {
        const before = await rawFiles();
        const batch = Array.from({ length: n }, () => ({
          type: 'EndSong',
          id: `f-${id}`,
          payload: endSong({ durationMs: id++ }),
        }));
        // the first event of the file before comes again: a retry that lands in another file
        const retry = sent.length > 0 ? [sent[sent.length - 1] as (typeof sent)[number]] : [];
        expect((await x.post([...retry, ...batch])).body.accepted).toBe(n + retry.length);
        sent.push(...batch);
        await x.until(async () => (await rawFiles()) > before);
      }
      clock.set(H + HOUR_MS + 1);
      await x.until(published(x, 'EndSong', H));
      expect(await manifest(x, 'EndSong', H)).toMatchObject({
        rawFiles: 3,
        rawEventsIn: 247,
        duplicatesRemoved: 2,
        eventsOut: 245,
      });
      // every row has its own payload: no record was read from another file's bytes
      expect(
        await x.query(
          "SELECT count(*) n, count(*) FILTER (event_id = 'f-' || durationMs::VARCHAR) own, sum(durationMs)::BIGINT s FROM EndSong",
        ),
      ).toEqual([{ n: 245, own: 245, s: (244 * 245) / 2 }]);
    },
  );

  it('drops retries that crossed the hour boundary: ids already in the previous partition', async () => {
    const clock = new ManualClock(H + 59 * 60_000);
    const x = await start(clock);
    const batch = Array.from({ length: 30 }, (_, i) => ({ type: 'EndSong', id: `b-${i}`, payload: endSong() }));
    await x.post(batch);
    clock.set(H + HOUR_MS + 1000);
    // the producer never saw the answer and retries in the next hour, with some new events
    await x.post([...batch, { type: 'EndSong', id: 'new-1', payload: endSong() }]);
    clock.set(H + 2 * HOUR_MS + 1);
    await x.until(published(x, 'EndSong', H + HOUR_MS));
    expect(await manifest(x, 'EndSong', H + HOUR_MS)).toMatchObject({
      rawEventsIn: 31,
      duplicatesRemoved: 30,
      duplicatesOfEarlierPartition: 30,
      eventsOut: 1,
    });
    expect(await x.query('SELECT count(*) n, count(DISTINCT event_id) d FROM EndSong')).toEqual([{ n: 31, d: 31 }]);
  });

  it("starts a type's next partition once the one before it is published, without waiting for a pass", async () => {
    const clock = new ManualClock(H + 30 * 60_000);
    const x = await start(clock);
    await x.post([{ type: 'EndSong', id: 'a-1', payload: endSong() }]);
    clock.set(H + HOUR_MS + 30 * 60_000);
    await x.post([{ type: 'EndSong', id: 'b-1', payload: endSong() }]);
    clock.set(H + 2 * HOUR_MS + 1);
    // passes until both hours are closed (the second waits for the first to be published)…
    const closedBoth = async () =>
      (await x.store.listHours({ type: 'EndSong', from: H, to: H + 2 * HOUR_MS })).length === 2;
    await x.until(closedBoth);
    // …then no pass runs (the harness's pass interval is an hour): the first's end starts the second
    const deadline = Date.now() + 10_000;
    while (!(await published(x, 'EndSong', H + HOUR_MS)()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await published(x, 'EndSong', H + HOUR_MS)()).toBe(true);
    const jobs = await x.store.listJobs({ kind: 'dedup', type: 'EndSong' });
    expect(jobs.map((j) => [j.partition, j.state, j.attempts])).toEqual([
      [H, 'done', 1],
      [H + HOUR_MS, 'done', 1],
    ]);
  });

  it('closes and publishes empty hours with a zero manifest', async () => {
    const clock = new ManualClock(H + 5 * 60_000);
    const x = await start(clock);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, 'PageView', H));
    const m = await manifest(x, 'PageView', H);
    expect(m).toMatchObject({ rawEventsIn: 0, eventsOut: 0, duplicatesRemoved: 0, ledgerTotal: 0, files: [] });
    expect(await x.query('SELECT count(*) n FROM PageView')).toEqual([{ n: 0 }]);
  });

  it('keeps events that arrive for a closed hour under late/, counted, out of the published partition', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    await x.post([{ type: 'PageView', id: 'p-1', payload: pageView() }]);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, 'PageView', H));
    // an event stamped inside the closed hour reaches the bus late (e.g. a redelivery after a crash)
    await x.bus.publish(topicFor('PageView'), [
      {
        data: x.catalog.get('PageView')?.versions[0]?.type.toBuffer(pageView()) as Buffer,
        attributes: {
          type: 'PageView',
          id: 'p-late',
          version: '1',
          arrivalTime: String(H + 30 * 60_000),
          ingressInstance: 'ingress-gone',
          sequence: '7',
        },
      },
    ]);
    await x.until(async () =>
      (await x.store.listHours({ type: 'PageView' })).some((r) => r.hour === H && r.lateEvents === 1),
    );
    const late = await listAll(x.objects, `late/PageView/${hourPath(H)}/`);
    expect(late).toHaveLength(1);
    expect(await x.query("SELECT count(*) n FROM PageView WHERE event_id = 'p-late'")).toEqual([{ n: 0 }]);
    expect(await x.query('SELECT count(*) n FROM PageView')).toEqual([{ n: 1 }]);
    const metrics = await x.etl.metrics.lateEvents.get();
    expect(metrics.values.find((v) => v.labels.type === 'PageView')?.value).toBe(1);
  });

  it('dead-letters bad messages with the reason and keeps the type flowing', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    const good = x.catalog.get('PageView')?.versions[0]?.type.toBuffer(pageView()) as Buffer;
    const attrs = (id: string, extra: Record<string, string> = {}) => ({
      type: 'PageView',
      id,
      version: '1',
      arrivalTime: String(H + 60_000),
      ingressInstance: 'ingress-x',
      sequence: '1',
      ...extra,
    });
    await x.bus.publish(topicFor('PageView'), [
      { data: Buffer.from([0xff, 0xff, 0xff]), attributes: attrs('garbage') },
      { data: good, attributes: attrs('future', { version: '99' }) },
      { data: good, attributes: { ...attrs('x'), id: '' } },
      { data: Buffer.concat([good, Buffer.from([1])]), attributes: attrs('trailing') },
    ]);
    await x.post([{ type: 'PageView', id: 'fine', payload: pageView() }]);
    await x.until(async () => (await x.store.listDeadLetters('PageView', 10)).length === 4);
    const letters = await x.store.listDeadLetters('PageView', 10);
    expect(letters.map((l) => [l.eventId, l.code, l.path]).sort()).toEqual(
      [
        ['', 'bad_envelope', 'attributes.id'],
        ['future', 'unknown_version', 'attributes.version'],
        ['garbage', 'undecodable', 'data'],
        ['trailing', 'undecodable', 'data'],
      ].sort(),
    );
    expect(letters.every((l) => l.instanceId === x.etl.id && l.message.length > 0)).toBe(true);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, 'PageView', H));
    expect(await x.query('SELECT event_id FROM PageView')).toEqual([{ event_id: 'fine' }]);
    expect((await x.bus.backlog('hourglass.PageView.etl')).messages).toBe(0);
  });

  it('publishes a daily type once its day is complete, as one partition', async () => {
    const clock = new ManualClock(H + 60_000);
    const x = await start(clock);
    const user = (i: number) => ({
      type: 'UserCreate',
      id: `u-${i}`,
      payload: {
        userId: `u${i}`,
        country: 'SE',
        signupMethod: 'EMAIL',
        birthYear: null,
        referrer: null,
        marketingOptIn: true,
      },
    });
    await x.post([user(1), user(2)]);
    clock.set(H + 3 * HOUR_MS);
    await x.post([user(3), user(1)]);
    clock.set(H + 4 * HOUR_MS + 1);
    // hours close, but the day is not over: nothing published yet
    await x.until(async () => (await x.store.listHours({ type: 'UserCreate', states: ['closed'] })).length >= 4);
    expect(await listAll(x.objects, 'final/UserCreate/')).toEqual([]);
    const dayEnd = Date.UTC(2026, 10, 23);
    clock.set(dayEnd + 1);
    await x.until(
      async () => (await listAll(x.objects, 'final/UserCreate/date=2026-11-22/_manifest.json')).length === 1,
    );
    const m = JSON.parse(
      (await x.objects.get('final/UserCreate/date=2026-11-22/_manifest.json')).toString(),
    ) as Manifest;
    expect(m).toMatchObject({
      partitioning: 'daily',
      rawEventsIn: 4,
      duplicatesRemoved: 1,
      eventsOut: 3,
      start: '2026-11-22T00:00:00.000Z',
    });
    expect(await x.query('SELECT count(*) n, min(date)::VARCHAR d FROM UserCreate')).toEqual([
      { n: 3, d: '2026-11-22' },
    ]);
    const hours = await x.store.listHours({ type: 'UserCreate', from: H, to: H + 4 * HOUR_MS });
    expect(hours.every((r) => r.state === 'published')).toBe(true);
  });

  it('bounds dedup memory by splitting big partitions, with the same result', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock, { etl: { dedupMaxIdsInMemory: 37 } });
    // ids 0–99 come twice: 0–49 as retries (the same payload), 50–99 with another payload (conflicts)
    const events = Array.from({ length: 400 }, (_, i) => ({
      type: 'EndSong',
      id: `s-${i % 300}`,
      payload: endSong({ durationMs: i < 350 ? i % 300 : i }),
    }));
    await x.post(events.slice(0, 200));
    await x.post(events.slice(200));
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, 'EndSong', H));
    expect(await manifest(x, 'EndSong', H)).toMatchObject({
      rawEventsIn: 400,
      duplicatesRemoved: 100,
      idConflicts: 50,
      eventsOut: 300,
    });
    expect(await x.query('SELECT count(DISTINCT event_id) d, count(*) n, min(durationMs) lo FROM EndSong')).toEqual([
      { d: 300, n: 300, lo: 0 },
    ]);
  });
});
