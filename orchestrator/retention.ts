/**
 * The retention sweeper: deletes each type's raw, late and final data older than its
 * `retentionDays` (retired types included: their data stays until then), and the state records of
 * those hours. A final partition is removed manifest first, so a reader never sees a manifest
 * whose files are gone; a partition goes only once all of it is past the retention.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { HOUR_MS } from '../core/hours.js';
import { listAll, type ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import { MANIFEST } from '../etl/names.js';

const DAY_MS = 24 * HOUR_MS;
const PARTITION = /\/date=(\d{4}-\d{2}-\d{2})(?:\/hour=(\d{2}))?\//;

/** The end (epoch ms) of the hour or day a data object belongs to, from its name; null if none. */
export function partitionEnd(name: string): number | null {
  const m = PARTITION.exec(name);
  if (m === null) return null;
  const day = Date.parse(`${m[1]}T00:00:00Z`);
  if (Number.isNaN(day)) return null;
  return m[2] === undefined ? day + DAY_MS : day + Number(m[2]) * HOUR_MS + HOUR_MS;
}

export interface SweepResult {
  readonly objects: number;
  readonly hours: number;
}

export class RetentionSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SweepResult> | null = null;

  constructor(
    private readonly d: {
      readonly store: StateStore;
      readonly objects: ObjectStore;
      readonly clock: Clock;
      readonly logger: Logger;
      readonly intervalRealMs: number;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.d.logger.error({ err }, 'retention sweep failed; retrying later'));
    }, this.d.intervalRealMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One sweep over every type (shared while one runs). */
  sweep(): Promise<SweepResult> {
    this.running ??= this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<SweepResult> {
    let objects = 0;
    let hours = 0;
    const now = this.d.clock.now();
    for (const t of await this.d.store.listTypes()) {
      const cutoff = now - t.retentionDays * DAY_MS;
      for (const kind of ['final', 'raw', 'late'] as const) {
        const expired = (await listAll(this.d.objects, `${kind}/${t.name}/`)).filter((o) => {
          const end = partitionEnd(o.name);
          return end !== null && end <= cutoff;
        });
        // manifests first: the partition disappears for readers before its files do
        expired.sort((a, b) => Number(b.name.endsWith(MANIFEST)) - Number(a.name.endsWith(MANIFEST)));
        for (const o of expired) {
          await this.d.objects.delete(o.name);
          objects++;
        }
      }
      // the hour records and ledgers of hours wholly past the retention
      hours += await this.d.store.forgetHours(t.name, Math.floor(cutoff / HOUR_MS) * HOUR_MS - HOUR_MS + 1);
    }
    if (objects > 0 || hours > 0) this.d.logger.info({ objects, hours }, 'retention sweep removed expired data');
    return { objects, hours };
  }
}
