/** Realistic events for the ETL benchmarks: bus messages, raw hours and their state. */
import { join } from 'node:path';
import { generatorFor, rng } from '../cli/traffic/generators.js';
import { DEFAULTS } from '../core/defaults.js';
import { type EventType, latestVersion, loadEventTypes, topicFor } from '../core/event-types.js';
import { hourPath } from '../core/hours.js';
import type { OutgoingMessage } from '../core/ports/bus.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import { ContainerWriter } from '../etl/avro-container.js';
import type { DedupConfig } from '../etl/dedup.js';
import { rawSchemaFor, writeEnvelope } from '../etl/raw-record.js';
import { applyPlan, planTypes } from '../orchestrator/plan.js';
import { ROOT } from './processes.js';

export async function endSongType(): Promise<EventType> {
  const t = (await loadEventTypes(join(ROOT, 'schemas'))).find((x) => x.name === 'EndSong');
  if (t === undefined) throw new Error('schemas/EndSong is missing');
  return t;
}

/** Distinct encoded EndSong payloads (current version), reused round-robin. */
export function payloads(type: EventType, n = 2000): Buffer[] {
  const gen = generatorFor(type);
  const r = rng(42);
  const latest = latestVersion(type);
  return Array.from({ length: n }, () => latest.type.toBuffer(gen(r).payload));
}

/** Bus messages as the ingress publishes them: `count` events, ids `e-<i>`, one instance. */
export function* messageBatches(
  type: EventType,
  count: number,
  arrival: number,
  batch = 1000,
): Generator<{ topic: string; messages: OutgoingMessage[] }> {
  const bodies = payloads(type);
  const version = String(latestVersion(type).version);
  for (let start = 0; start < count; start += batch) {
    const messages: OutgoingMessage[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      messages.push({
        data: bodies[i % bodies.length] as Buffer,
        attributes: {
          type: type.name,
          id: `e-${i}`,
          version,
          arrivalTime: String(arrival),
          ingressInstance: 'ingress-bench',
          sequence: String(i + 1),
        },
      });
    }
    yield { topic: topicFor(type.name), messages };
  }
}

/** An hour of raw files written by {@link writeRawHour}, as the state store records it. */
export interface RawHour {
  readonly type: string;
  readonly hour: number;
  readonly instance: string;
  /** Events in the raw files (duplicates included) and sequence numbers ledgered: 1 … events. */
  readonly events: number;
  /** Distinct (producer, id) pairs among them: what the published partition holds. */
  readonly distinct: number;
  readonly files: readonly {
    name: string;
    events: number;
    bytes: number;
    ranges: Record<string, [number, number][]>;
  }[];
}

/**
 * Writes one hour of raw files (snappy Avro, as the consumer writes them) into the object store:
 * `events` events of four producers, ids `<idPrefix><n>`, every 100th repeating the id of the event
 * 50 earlier (a producer retry: same id and payload), arrival times spread over the hour.
 * `bodies` are payloads encoded in the type's current schema, used in turn.
 */
export async function writeRawHour(
  objects: ObjectStore,
  type: EventType,
  hour: number,
  events: number,
  o: { idPrefix: string; bodies: readonly Buffer[]; perFile?: number; instance?: string; consumer?: string },
): Promise<RawHour> {
  const perFile = o.perFile ?? 500_000;
  const instance = o.instance ?? 'ingress-bench';
  const schema = rawSchemaFor(type);
  const files: { name: string; events: number; bytes: number; ranges: Record<string, [number, number][]> }[] = [];
  for (let start = 0, f = 0; start < events; start += perFile, f++) {
    const w = new ContainerWriter(schema, { codec: 'snappy', blockBytes: 256 * 1024 });
    const end = Math.min(events, start + perFile);
    for (let i = start; i < end; i++) {
      const t = w.target;
      const before = t.pos;
      const n = i % 100 === 99 ? i - 50 : i;
      writeEnvelope(t, {
        id: `${o.idPrefix}${n}`,
        producer: `producer-${n % 4}`,
        arrivalTime: hour + Math.floor((i / events) * 3_599_000),
        ingressInstance: instance,
        sequence: i + 1,
        clientTime: null,
        writerVersion: 2,
      });
      t.writeBytes(o.bodies[n % o.bodies.length] as Buffer);
      w.commitRecord(t.pos - before);
    }
    const name = `raw/${type.name}/${hourPath(hour)}/${o.consumer ?? 'etl-bench'}-${String(f).padStart(4, '0')}.avro`;
    const body = await w.finish();
    await objects.put(name, body);
    files.push({ name, events: end - start, bytes: body.length, ranges: { [instance]: [[start + 1, end]] } });
  }
  return { type: type.name, hour, instance, events, distinct: events - Math.floor(events / 100), files };
}

/** Records a written hour in the state store as the ETL and the ingress would: files, sealed ledger, instance. */
export async function registerRawHour(state: StateStore, h: RawHour, consumer = 'etl-bench'): Promise<void> {
  const now = Date.now();
  for (const f of h.files) {
    await state.registerFile({ type: h.type, hour: h.hour, kind: 'raw', consumer, committedAt: now, ...f });
  }
  await state.upsertInstance({
    id: h.instance,
    host: 'bench',
    pid: 1,
    startedAt: h.hour,
    lastSeenAt: now,
    stoppedAt: now,
  });
  await state.saveLedgers([
    {
      instanceId: h.instance,
      type: h.type,
      hour: h.hour,
      ranges: [[1, h.events]],
      count: h.events,
      sealed: true,
      updatedAt: now,
    },
  ]);
}

/** Closes a registered hour (what the closer does once the hour is complete). */
export async function closeRawHour(state: StateStore, h: RawHour): Promise<void> {
  const ok = await state.closeHour({
    type: h.type,
    hour: h.hour,
    closedAt: Date.now(),
    closedBy: 'sealed',
    vanishedInstances: [],
    ledgerTotal: h.events,
  });
  if (!ok) throw new Error(`${h.type} ${new Date(h.hour).toISOString()} was already closed`);
}

/** Registers the event types whose folders are in `dir`, as `hourglass types apply` does. */
export async function applyTypes(dir: string, state: StateStore): Promise<void> {
  const plan = await planTypes(dir, state, { limits: DEFAULTS.registry });
  const result = await applyPlan(plan, state, 'bench', Date.now());
  if (result.refused.length > 0) throw new Error(`types refused: ${result.refused.map((r) => r.type).join(', ')}`);
}

/** The dedup step's configuration with the defaults of `hourglass etl`, scratch space in `workDir`. */
export function defaultDedupConfig(workDir: string, more: Partial<Omit<DedupConfig, 'workDir'>> = {}): DedupConfig {
  return {
    maxIdsInMemory: DEFAULTS.etl.dedupMaxIdsInMemory,
    duckdbMemoryBytes: DEFAULTS.etl.duckdbMemoryBytes,
    duckdbThreads: DEFAULTS.etl.duckdbThreads,
    rowGroupBytes: DEFAULTS.etl.dedupRowGroupBytes,
    workers: DEFAULTS.etl.dedupWorkers,
    ...more,
    workDir,
  };
}
