/**
 * Schema distribution: every process that validates or consumes events keeps the registry's
 * types in memory (`EventCatalog`: no database round trip per event) and refreshes them by
 * polling the registry, so a new type or version is accepted within one interval, without a
 * restart. Listeners hear which types changed.
 */
import type { Logger } from 'pino';
import { type EventCatalog, type EventType, parseSchema, type SchemaVersion } from '../core/event-types.js';
import type { RegisteredType, StateStore } from '../core/ports/state-store.js';

/** Builds catalogue entries from registry rows, parsing each schema version once. */
export class RegistryTypes {
  private readonly parsed = new Map<string, SchemaVersion>();

  toEventType(t: RegisteredType): EventType {
    const versions = t.versions.map((v) => {
      const key = `${t.name}/${v.version}/${v.fingerprint}`;
      let s = this.parsed.get(key);
      if (s === undefined) {
        s = parseSchema(t.name, v.version, JSON.parse(v.schema));
        this.parsed.set(key, s);
      }
      return s;
    });
    const { versions: _v, revision: _r, createdAt: _c, updatedAt: _u, ...definition } = t;
    return { ...definition, versions };
  }
}

export class CatalogSync {
  private readonly types = new RegistryTypes();
  private revisions = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<string[]> | null = null;
  private queued: Promise<string[]> | null = null;
  private readonly listeners: ((changed: string[]) => void | Promise<void>)[] = [];

  constructor(
    private readonly store: StateStore,
    private readonly catalog: EventCatalog,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** Called after each refresh that changed something, with the names of the changed types. */
  onChange(listener: (changed: string[]) => void | Promise<void>): void {
    this.listeners.push(listener);
  }

  /**
   * Reads the registry; replaces the catalogue if any type changed. While a read runs, a caller
   * gets the read that starts after it (one queued at most), so a change made before the call is
   * always seen.
   */
  refresh(): Promise<string[]> {
    if (this.running === null) {
      this.running = this.load().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => [])
      .then(() => {
        this.queued = null;
        return this.refresh();
      });
    return this.queued;
  }

  private async load(): Promise<string[]> {
    const registered = await this.store.listTypes();
    const next = new Map(registered.map((t) => [t.name, t.revision]));
    const changed = registered.filter((t) => this.revisions.get(t.name) !== t.revision).map((t) => t.name);
    for (const name of this.revisions.keys()) if (!next.has(name)) changed.push(name);
    if (changed.length === 0) return [];
    const types: EventType[] = [];
    for (const t of registered) {
      try {
        types.push(this.types.toEventType(t));
      } catch (err) {
        // a registry row that does not parse cannot have passed the checks: keep the rest working
        this.logger.error({ err, type: t.name }, 'registered type does not parse; left out of the catalogue');
      }
    }
    this.catalog.replace(types);
    this.revisions = next;
    this.logger.info({ changed }, 'event types updated from the registry');
    for (const l of this.listeners) {
      try {
        await l(changed);
      } catch (err) {
        this.logger.error({ err, changed }, 'a registry change listener failed');
      }
    }
    return changed;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.logger.error({ err }, 'registry refresh failed; retrying'));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
    await this.queued?.catch(() => undefined);
  }
}
