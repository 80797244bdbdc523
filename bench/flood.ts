/**
 * A flooding producer for the quota-isolation measure: it replays a few prebuilt batch bodies (as
 * an abusive client replays bytes) at a fixed request rate, so that what the flood costs the
 * machine is what it costs the ingress, not the generation of fresh events in the load generator.
 * `hourglass send` builds and accounts every event (about 0.3 of a core at 500 requests/s), which
 * on two shared cores slows the process it is meant to measure.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { BatchFactory } from '../cli/traffic/batches.js';
import { rng } from '../cli/traffic/generators.js';
import { loadEventTypes } from '../core/event-types.js';
import { ROOT } from './processes.js';

export interface FloodResult {
  readonly requests: number;
  /** Answers by HTTP status (`network` for failed requests). */
  readonly byStatus: Record<string, number>;
  /** Events of the 200 answers. */
  readonly accepted: number;
}

export interface FloodOptions {
  readonly url: string;
  readonly key: string;
  readonly types: readonly string[];
  readonly eventsPerSec: number;
  readonly batch: number;
  readonly concurrency: number;
}

/** Prebuilt bodies of `batch` valid events each, of the given types in turn. */
async function bodies(types: readonly string[], batch: number, count: number): Promise<string[]> {
  const all = await loadEventTypes(`${ROOT}/schemas`);
  const chosen = types.map((name) => {
    const t = all.find((x) => x.name === name);
    if (t === undefined) throw new Error(`no event type ${name}`);
    return t;
  });
  const factory = new BatchFactory(chosen, 'flood', { invalid: 0, duplicates: 0 }, rng(7));
  return Array.from({ length: count }, () => {
    const pieces: string[] = [];
    for (let i = 0; i < batch; i++) pieces.push(factory.nextEvent().piece);
    return `{"events":[${pieces.join(',')}]}`;
  });
}

export class Flood {
  private stopped = false;
  private readonly done: Promise<FloodResult>;

  private constructor(o: FloodOptions, prebuilt: string[]) {
    this.done = this.run(o, prebuilt);
  }

  /** Starts flooding; `stop()` ends it and gives the counts. */
  static async start(o: FloodOptions): Promise<Flood> {
    return new Flood(o, await bodies(o.types, o.batch, 64));
  }

  async stop(): Promise<FloodResult> {
    this.stopped = true;
    return this.done;
  }

  private async run(o: FloodOptions, prebuilt: string[]): Promise<FloodResult> {
    const pool = new Pool(o.url, { connections: o.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
    const byStatus: Record<string, number> = {};
    let requests = 0;
    let accepted = 0;
    const intervalMs = (1000 * o.batch) / o.eventsPerSec;
    const start = performance.now();
    let slot = 0;
    const worker = async (): Promise<void> => {
      while (!this.stopped) {
        const at = start + slot++ * intervalMs;
        const wait = at - performance.now();
        if (wait > 0) await sleep(wait);
        if (this.stopped) break;
        const body = prebuilt[requests++ % prebuilt.length] as string;
        try {
          const res = await pool.request({
            path: '/v1/events',
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${o.key}` },
            body,
          });
          const text = await res.body.text();
          byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
          if (res.statusCode === 200) accepted += (JSON.parse(text) as { accepted: number }).accepted;
        } catch {
          byStatus.network = (byStatus.network ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    await pool.close();
    return { requests, byStatus, accepted };
  }
}
