/**
 * Builds request bodies cheaply: payload JSON is generated once into pools, and each event is a
 * string piece `{"type":…,"id":…,"version":…,"payload":…}`. Ids are `<run>-<n>`; a duplicate
 * reuses an earlier piece exactly (same id and payload, as a producer retry would).
 */
import type { EventType } from '../../core/event-types.js';
import { breakPayload, type Generator, generatorFor, type Rng } from './generators.js';

const POOL_SIZE = 1024;
const RECENT = 4096;

export interface BatchEvent {
  /** Id counter of the event, or -1 for events that are invalid on purpose. */
  readonly n: number;
  readonly piece: string;
}

interface TypePools {
  readonly name: string;
  readonly valid: string[];
  readonly invalid: string[];
}

export interface BatchOptions {
  readonly invalid: number;
  readonly duplicates: number;
}

export class BatchFactory {
  private readonly pools: TypePools[];
  private next = 0;
  private readonly recent: BatchEvent[] = [];
  private typeIndex = 0;

  constructor(
    types: readonly EventType[],
    private readonly runId: string,
    private readonly options: BatchOptions,
    private readonly r: Rng,
  ) {
    this.pools = types.map((t) => {
      const gen: Generator = generatorFor(t);
      const valid: string[] = [];
      const invalid: string[] = [];
      for (let i = 0; i < POOL_SIZE; i++) {
        const g = gen(r);
        valid.push(`"version":${g.version},"payload":${JSON.stringify(g.payload)}`);
        if (options.invalid > 0 && i < POOL_SIZE / 4) {
          const v = t.versions[g.version - 1] ?? t.versions[0];
          invalid.push(
            `"version":${g.version},"payload":${JSON.stringify(breakPayload(r, g.payload, v?.type ?? t.versions[0]!.type))}`,
          );
        }
      }
      return { name: t.name, valid, invalid };
    });
  }

  /** Number of ids handed out so far (the bound of `n`). */
  get issued(): number {
    return this.next;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.r() * items.length)] as T;
  }

  nextEvent(): BatchEvent {
    const pools = this.pools[this.typeIndex++ % this.pools.length] as TypePools;
    const x = this.r();
    if (x < this.options.invalid) return this.invalidEvent(pools);
    if (x < this.options.invalid + this.options.duplicates && this.recent.length > 0) return this.pick(this.recent);
    const n = this.next++;
    const event = { n, piece: `{"type":"${pools.name}","id":"${this.runId}-${n}",${this.pick(pools.valid)}}` };
    if (this.recent.length < RECENT) this.recent.push(event);
    else this.recent[n % RECENT] = event;
    return event;
  }

  private invalidEvent(pools: TypePools): BatchEvent {
    const kind = Math.floor(this.r() * 4);
    const id = `${this.runId}-bad-${Math.floor(this.r() * 1e9)}`;
    if (kind === 0) return { n: -1, piece: `{"type":"NoSuchType","id":"${id}","payload":{}}` };
    if (kind === 1) return { n: -1, piece: `{"type":"${pools.name}",${this.pick(pools.valid)}}` }; // no id
    return { n: -1, piece: `{"type":"${pools.name}","id":"${id}",${this.pick(pools.invalid)}}` };
  }

  batch(size: number): { events: BatchEvent[]; body: string } {
    const events: BatchEvent[] = new Array(size);
    let body = '{"events":[';
    for (let i = 0; i < size; i++) {
      const e = this.nextEvent();
      events[i] = e;
      body += i === 0 ? e.piece : `,${e.piece}`;
    }
    return { events, body: `${body}]}` };
  }
}
