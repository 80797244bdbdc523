/**
 * The producer is part of the event: the ingress (with producer keys) puts the key's producer on
 * every event, and the ETL carries it into raw records and the final column `event_producer`.
 * Dedup is by (producer, id), within the hour and against the previous partition; a reused
 * (producer, id) with other payload bytes keeps the first copy and is counted (`idConflicts`,
 * `hourglass_etl_id_conflicts_total`). Events without a producer dedup among themselves by id, as
 * before, and raw files and final partitions written before producers existed are still read.
 */
import type avro from 'avsc';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { type EventType, topicFor } from '../../core/event-types.js';
import { HOUR_MS, hourPath } from '../../core/hours.js';
import type { OutgoingMessage } from '../../core/ports/bus.js';
import { ContainerWriter } from '../../etl/avro-container.js';
import type { Manifest } from '../../etl/dedup.js';
import { rawSchemaFor } from '../../etl/raw-record.js';
import type { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { createProducerKey } from '../../services/ingress/producer-keys.js';
import { type EtlHarness, startEtlHarness } from '../support/etl-harness.js';
import { endSong } from '../support/ingress-harness.js';
import { asWrittenBeforeProducers } from '../support/old-partitions.js';

const H = Date.UTC(2026, 10, 22, 10);
let h: EtlHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function start(clock: ManualClock, etl: Record<string, unknown> = {}): Promise<EtlHarness> {
  // (the harness's ledgerGraceMs: 0 is replaced by these ingress options, so it is given again)
  h = await startEtlHarness({ clock, ingress: { auth: true, keyRatePerSec: 0, ledgerGraceMs: 0 }, etl });
  return h;
}

/** A producer key of `producer` for every type. */
async function keyOf(x: EtlHarness, producer: string): Promise<string> {
  return (await createProducerKey(x.store, { producer, types: null, createdBy: 'test' }, Date.now())).key;
}

/** Posts EndSong events with a producer key; returns the number accepted. */
async function postAs(x: EtlHarness, key: string, events: { id: string; durationMs: number }[]): Promise<number> {
  const res = await fetch(`${x.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({
      events: events.map((e) => ({ type: 'EndSong', id: e.id, payload: endSong({ durationMs: e.durationMs }) })),
    }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { accepted: number }).accepted;
}

let bareSequence = 0;

/**
 * Publishes EndSong events without a producer straight to the bus, as an ingress without keys or
 * the Kafka bridge does (`producer: ''` where given: an empty attribute is no producer either).
 */
async function publishBare(
  x: EtlHarness,
  arrival: number,
  events: { id: string; durationMs: number; producer?: string }[],
): Promise<void> {
  const v2 = x.catalog.get('EndSong')?.versions[1]?.type as avro.Type;
  const messages: OutgoingMessage[] = events.map((e) => ({
    data: v2.toBuffer(endSong({ durationMs: e.durationMs })),
    attributes: {
      type: 'EndSong',
      id: e.id,
      version: '2',
      arrivalTime: String(arrival),
      ingressInstance: 'ingress-bare',
      sequence: String(++bareSequence),
      ...(e.producer !== undefined ? { producer: e.producer } : {}),
    },
  }));
  await x.bus.publish(topicFor('EndSong'), messages);
}

const published = (x: EtlHarness, hour: number) => async () =>
  (await x.store.listHours({ type: 'EndSong', states: ['published'] })).some((r) => r.hour === hour);

const manifestName = (hour: number) => `final/EndSong/${hourPath(hour)}/_manifest.json`;

async function manifest(x: EtlHarness, hour: number): Promise<Manifest> {
  return JSON.parse((await x.objects.get(manifestName(hour))).toString()) as Manifest;
}

/** Waits until the consumer committed `n` raw events of the hour. */
async function committed(x: EtlHarness, hour: number, n: number): Promise<void> {
  await x.until(async () => (await x.store.listFiles('EndSong', hour, 'raw')).reduce((s, f) => s + f.events, 0) >= n);
}

async function conflictsMetric(x: EtlHarness): Promise<number | undefined> {
  const m = await x.etl.metrics.idConflicts.get();
  expect(m.name).toBe('hourglass_etl_id_conflicts_total');
  return m.values.find((v) => v.labels.type === 'EndSong')?.value;
}

describe('dedup by (producer, id)', () => {
  it("keeps the same id from two producers: one producer never removes another's event", async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    // billing happens to send checkout's id first
    expect(await postAs(x, await keyOf(x, 'billing'), [{ id: 'order-42', durationMs: 1 }])).toBe(1);
    expect(await postAs(x, await keyOf(x, 'checkout'), [{ id: 'order-42', durationMs: 2 }])).toBe(1);
    await publishBare(x, H + 20 * 60_000, [{ id: 'order-42', durationMs: 3 }]);
    await committed(x, H, 3);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, H));
    expect(await manifest(x, H)).toMatchObject({
      rawEventsIn: 3,
      duplicatesRemoved: 0,
      idConflicts: 0,
      eventsOut: 3,
    });
    expect(await x.query('SELECT event_id, event_producer, durationMs FROM EndSong ORDER BY durationMs')).toEqual([
      { event_id: 'order-42', event_producer: 'billing', durationMs: 1 },
      { event_id: 'order-42', event_producer: 'checkout', durationMs: 2 },
      { event_id: 'order-42', event_producer: null, durationMs: 3 },
    ]);
    expect(await conflictsMetric(x)).toBe(0);
  });

  it("removes a producer's retry, and counts a reused id with another payload as an id conflict, keeping the first", async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    const checkout = await keyOf(x, 'checkout');
    await postAs(x, checkout, [
      { id: 'a-1', durationMs: 1 },
      { id: 'a-2', durationMs: 2 },
    ]);
    // a retry of a-1 (same payload), and a-2 again with another payload
    await postAs(x, checkout, [
      { id: 'a-1', durationMs: 1 },
      { id: 'a-2', durationMs: 222 },
    ]);
    // another producer's a-2 is its own event
    await postAs(x, await keyOf(x, 'billing'), [{ id: 'a-2', durationMs: 333 }]);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, H));
    expect(await manifest(x, H)).toMatchObject({
      rawEventsIn: 5,
      duplicatesRemoved: 2,
      duplicatesOfEarlierPartition: 0,
      idConflicts: 1,
      eventsOut: 3,
    });
    expect(
      await x.query('SELECT event_producer, event_id, durationMs FROM EndSong ORDER BY event_producer, event_id'),
    ).toEqual([
      { event_producer: 'billing', event_id: 'a-2', durationMs: 333 },
      { event_producer: 'checkout', event_id: 'a-1', durationMs: 1 },
      { event_producer: 'checkout', event_id: 'a-2', durationMs: 2 },
    ]);
    expect(await conflictsMetric(x)).toBe(1);
    const [state] = await x.store.listHours({ type: 'EndSong', from: H, to: H + 1 });
    expect(state).toMatchObject({ eventsIn: 5, duplicates: 2, eventsOut: 3 });
  });

  it('dedups events without a producer among themselves by id, as before (an empty producer is none)', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    await publishBare(x, H + 60_000, [
      { id: 'b-1', durationMs: 1 },
      { id: 'b-1', durationMs: 1 },
      { id: 'b-2', durationMs: 2 },
      { id: 'b-2', durationMs: 22 },
      { id: 'b-1', durationMs: 1, producer: '' },
      { id: 'b-3', durationMs: 3, producer: 'p'.repeat(257) }, // no producer name is that long
    ]);
    await postAs(x, await keyOf(x, 'checkout'), [{ id: 'b-1', durationMs: 100 }]);
    await committed(x, H, 6);
    await x.until(async () => (await x.store.listDeadLetters('EndSong', 10)).length === 1);
    expect((await x.store.listDeadLetters('EndSong', 10)).map((l) => [l.eventId, l.code, l.path])).toEqual([
      ['b-3', 'bad_envelope', 'attributes.producer'],
    ]);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, H));
    expect(await manifest(x, H)).toMatchObject({
      rawEventsIn: 6,
      duplicatesRemoved: 3,
      idConflicts: 1,
      eventsOut: 3,
    });
    expect(
      await x.query(
        'SELECT event_id, event_producer, durationMs FROM EndSong ORDER BY event_id, event_producer NULLS FIRST',
      ),
    ).toEqual([
      { event_id: 'b-1', event_producer: null, durationMs: 1 },
      { event_id: 'b-1', event_producer: 'checkout', durationMs: 100 },
      { event_id: 'b-2', event_producer: null, durationMs: 2 },
    ]);
  });

  it.each([
    ['in memory', {}],
    ['split and spilled', { dedupMaxIdsInMemory: 2 }],
  ])('drops a retry that crossed the hour boundary only for the same producer (%s)', async (_, etl) => {
    const clock = new ManualClock(H + 59 * 60_000);
    const x = await start(clock, etl);
    const checkout = await keyOf(x, 'checkout');
    await postAs(x, checkout, [{ id: 'x-1', durationMs: 1 }]);
    await publishBare(x, H + 59 * 60_000, [{ id: 'x-2', durationMs: 2 }]);
    await committed(x, H, 2);
    clock.set(H + HOUR_MS + 1000);
    await postAs(x, checkout, [
      { id: 'x-1', durationMs: 1 }, // checkout's retry: in the previous partition
      { id: 'x-2', durationMs: 3 }, // checkout's own x-2: the previous partition has a producer-less one
    ]);
    await postAs(x, await keyOf(x, 'billing'), [{ id: 'x-1', durationMs: 4 }]);
    await publishBare(x, H + HOUR_MS + 2000, [
      { id: 'x-2', durationMs: 2 }, // a retry without producer: in the previous partition
      { id: 'x-1', durationMs: 5 }, // no producer-less x-1 before
    ]);
    await committed(x, H + HOUR_MS, 5);
    clock.set(H + 2 * HOUR_MS + 1);
    await x.until(published(x, H + HOUR_MS));
    expect(await manifest(x, H + HOUR_MS)).toMatchObject({
      rawEventsIn: 5,
      duplicatesRemoved: 2,
      duplicatesOfEarlierPartition: 2,
      idConflicts: 0,
      eventsOut: 3,
    });
    expect(
      await x.query(
        'SELECT event_id, event_producer, durationMs FROM EndSong WHERE hour = 11 ORDER BY event_id, durationMs',
      ),
    ).toEqual([
      { event_id: 'x-1', event_producer: 'billing', durationMs: 4 },
      { event_id: 'x-1', event_producer: null, durationMs: 5 },
      { event_id: 'x-2', event_producer: 'checkout', durationMs: 3 },
    ]);
  });
});

describe('data written before producers', () => {
  /** A raw file as consumers wrote them before records had a producer (current payload schema, or `payload`'s). */
  function legacyRawFile(
    type: EventType,
    payload: { version: number; type: avro.Type; schema: unknown },
    records: { id: string; sequence: number; value: Record<string, unknown> }[],
  ): ContainerWriter {
    const current = rawSchemaFor(type) as { fields: { name: string; type: unknown }[] };
    const schema = {
      ...current,
      fields: current.fields
        .filter((f) => f.name !== 'producer')
        .map((f) => (f.name === 'payload' ? { ...f, type: payload.schema } : f)),
    };
    const w = new ContainerWriter(schema, { codec: 'deflate', blockBytes: 1024 });
    for (const r of records) {
      const t = w.target;
      const before = t.pos;
      t.writeString(r.id);
      t.writeLong(H + 30 * 60_000);
      t.writeString('ingress-old');
      t.writeLong(r.sequence);
      t.writeLong(0);
      t.writeLong(payload.version);
      t.writeBytes(payload.type.toBuffer(r.value));
      w.commitRecord(t.pos - before);
    }
    return w;
  }

  it('reads raw files without the producer field: their events have none', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    await postAs(x, await keyOf(x, 'checkout'), [{ id: 'o-1', durationMs: 1 }]);
    const type = x.catalog.get('EndSong') as EventType;
    const [v1, v2] = type.versions as [EventType['versions'][0], EventType['versions'][0]];
    const { offline: _o, bitrateKbps: _b, ...v1Song } = endSong({ durationMs: 11 });
    // the current payload schema (read without decoding), then v1's (read by schema resolution)
    const files = [
      legacyRawFile(type, v2, [
        { id: 'o-1', sequence: 1, value: endSong({ durationMs: 10 }) },
        { id: 'o-2', sequence: 2, value: endSong({ durationMs: 11, bitrateKbps: null }) },
        { id: 'o-2', sequence: 3, value: endSong({ durationMs: 11, bitrateKbps: null }) },
      ]),
      // o-2 from v1 resolves to the same payload (offline false, bitrateKbps null): a duplicate
      legacyRawFile(type, v1, [
        { id: 'o-3', sequence: 4, value: { ...v1Song, durationMs: 12 } },
        { id: 'o-2', sequence: 5, value: v1Song },
      ]),
    ];
    for (const [i, w] of files.entries()) {
      const name = `raw/EndSong/${hourPath(H)}/etl-old-${i}.avro`;
      const body = await w.finish();
      await x.objects.put(name, body);
      await x.store.registerFile({
        type: 'EndSong',
        hour: H,
        kind: 'raw',
        name,
        events: w.count,
        bytes: body.length,
        ranges: { 'ingress-old': i === 0 ? [[1, 3]] : [[4, 5]] },
        consumer: 'etl-old',
        committedAt: clock.now(),
      });
    }
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, H));
    expect(await manifest(x, H)).toMatchObject({
      rawEventsIn: 6,
      duplicatesRemoved: 2,
      idConflicts: 0,
      eventsOut: 4,
    });
    expect(
      await x.query(
        'SELECT event_id, event_producer, event_writer_version v, durationMs, offline, bitrateKbps FROM EndSong ' +
          'ORDER BY event_id, event_producer NULLS FIRST',
      ),
    ).toEqual([
      { event_id: 'o-1', event_producer: null, v: 2, durationMs: 10, offline: false, bitrateKbps: 320 },
      { event_id: 'o-1', event_producer: 'checkout', v: 2, durationMs: 1, offline: false, bitrateKbps: 320 },
      { event_id: 'o-2', event_producer: null, v: 2, durationMs: 11, offline: false, bitrateKbps: null },
      { event_id: 'o-3', event_producer: null, v: 1, durationMs: 12, offline: false, bitrateKbps: null },
    ]);
  });

  it('reads partitions without event_producer (NULL in the views) and dedups the next hour against them', async () => {
    const clock = new ManualClock(H + 10 * 60_000);
    const x = await start(clock);
    const checkout = await keyOf(x, 'checkout');
    await postAs(x, checkout, [{ id: 'p-1', durationMs: 1 }]);
    await publishBare(x, H + 20 * 60_000, [{ id: 'p-2', durationMs: 2 }]);
    await committed(x, H, 2);
    clock.set(H + HOUR_MS + 1);
    await x.until(published(x, H));
    // the partition as it was written before producers: no column, nobody's events
    await asWrittenBeforeProducers(x.objects as FsObjectStore, manifestName(H));
    expect((await manifest(x, H)).idConflicts).toBeUndefined();
    expect(await x.query('SELECT event_id, event_producer FROM EndSong ORDER BY event_id')).toEqual([
      { event_id: 'p-1', event_producer: null },
      { event_id: 'p-2', event_producer: null },
    ]);
    const columns = (await x.query('DESCRIBE EndSong')).map((r) => r.column_name);
    expect(columns.slice(0, 3)).toEqual(['event_id', 'event_producer', 'event_arrival_time']);

    await postAs(x, checkout, [{ id: 'p-1', durationMs: 1 }]); // checkout's own p-1: kept
    await publishBare(x, H + HOUR_MS + 60_000, [
      { id: 'p-2', durationMs: 2 }, // in the old partition, without producer: dropped
      { id: 'p-3', durationMs: 3 },
    ]);
    await committed(x, H + HOUR_MS, 3);
    clock.set(H + 2 * HOUR_MS + 1);
    await x.until(published(x, H + HOUR_MS));
    expect(await manifest(x, H + HOUR_MS)).toMatchObject({
      rawEventsIn: 3,
      duplicatesOfEarlierPartition: 1,
      duplicatesRemoved: 1,
      eventsOut: 2,
    });
    // old and new partitions read together, by column name
    expect(
      await x.query('SELECT hour, event_id, event_producer, durationMs FROM EndSong ORDER BY hour, event_id'),
    ).toEqual([
      { hour: 10, event_id: 'p-1', event_producer: null, durationMs: 1 },
      { hour: 10, event_id: 'p-2', event_producer: null, durationMs: 2 },
      { hour: 11, event_id: 'p-1', event_producer: 'checkout', durationMs: 1 },
      { hour: 11, event_id: 'p-3', event_producer: null, durationMs: 3 },
    ]);
  });
});
