/** Realistic EndSong events for the ETL benchmarks: bus messages and raw files. */
import { join } from 'node:path';
import { generatorFor, rng } from '../cli/traffic/generators.js';
import { type EventType, latestVersion, loadEventTypes, topicFor } from '../core/event-types.js';
import type { OutgoingMessage } from '../core/ports/bus.js';
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
