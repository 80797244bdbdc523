/**
 * (a) The bare ceiling: JSON.parse + avsc validation + encoding of realistic batches, in-process,
 * on one core (this thread), no HTTP and no bus.
 */

import { BatchFactory } from '../cli/traffic/batches.js';
import { rng } from '../cli/traffic/generators.js';
import { EventCatalog, type EventType } from '../core/event-types.js';
import { BatchEncoder } from '../services/ingress/batch-encoder.js';
import { isRejection, validateEvent } from '../services/ingress/validate-event.js';

export interface CeilingResult {
  readonly eventsPerSec: number;
  readonly avgEventBytes: number;
}

export function measureCeiling(types: EventType[], seconds: number, batchSize = 100): CeilingResult {
  const catalog = new EventCatalog(types);
  const factory = new BatchFactory(types, 'bench', { invalid: 0, duplicates: 0 }, rng(42));
  const bodies = Array.from({ length: 200 }, () => factory.batch(batchSize).body);
  const avgEventBytes = Math.round(bodies.reduce((n, b) => n + Buffer.byteLength(b), 0) / bodies.length / batchSize);
  const limits = { maxIdLength: 128 };
  const run = (ms: number): number => {
    let events = 0;
    const end = performance.now() + ms;
    let i = 0;
    while (performance.now() < end) {
      const body = bodies[i++ % bodies.length] as string;
      const parsed = JSON.parse(body) as { events: unknown[] };
      const encoder = new BatchEncoder(body.length);
      for (let k = 0; k < parsed.events.length; k++) {
        const r = validateEvent(parsed.events[k], k, catalog, limits, (t, p) => encoder.encode(t, p));
        if (isRejection(r)) throw new Error(`bench batch has an invalid event: ${r.message}`);
      }
      events += parsed.events.length;
    }
    return events;
  };
  run(1000); // warm-up
  const started = performance.now();
  const events = run(seconds * 1000);
  return { eventsPerSec: Math.round(events / ((performance.now() - started) / 1000)), avgEventBytes };
}
