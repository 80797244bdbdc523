/** Builds a real ingress (embedded bus and SQLite in a temp dir) for tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Clock, SystemClock } from '../../core/clock.js';
import { type IngressConfig, loadConfig } from '../../core/config.js';
import { EventCatalog, type EventType, loadEventTypes } from '../../core/event-types.js';
import { silentLogger } from '../../core/logger.js';
import type { Bus } from '../../core/ports/bus.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { provisionBus } from '../../orchestrator/provision.js';
import { createToken } from '../../orchestrator/tokens.js';
import { IngressService } from '../../services/ingress/server.js';

export const SCHEMAS_DIR = resolve(import.meta.dirname, '../../schemas');

export interface Harness {
  readonly dir: string;
  readonly bus: Bus;
  readonly store: SqliteStateStore;
  readonly catalog: EventCatalog;
  readonly ingress: IngressService;
  readonly url: string;
  readonly types: EventType[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly ingress?: Partial<Record<keyof IngressConfig, unknown>>;
  readonly clock?: Clock;
  readonly dataDir?: string;
  /** Wraps the real bus, e.g. to inject faults. */
  readonly wrapBus?: (bus: Bus) => Bus;
  readonly types?: (types: EventType[]) => EventType[];
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'hourglass-test-')));
  // producer keys are off unless a test asks for them (test/integration/ingress-auth.test.ts does)
  const overrides: Record<string, unknown> = {
    dataDir: dir,
    'ingress.port': 0,
    'ingress.auth': false,
    logLevel: 'silent',
  };
  for (const [k, v] of Object.entries(options.ingress ?? {})) overrides[`ingress.${k}`] = v;
  const config = loadConfig({ overrides });
  const clock = options.clock ?? new SystemClock();
  const loaded = await loadEventTypes(SCHEMAS_DIR);
  const types = options.types ? options.types(loaded) : loaded;
  const catalog = new EventCatalog(types);
  const store = new SqliteStateStore(join(dir, 'state.sqlite'));
  const embedded = new EmbeddedBus({ dataDir: dir, clock, retentionSweepMs: 0 });
  const bus = options.wrapBus ? options.wrapBus(embedded) : embedded;
  await provisionBus(embedded, types, silentLogger());
  const ingress = new IngressService({ bus, catalog, store, clock, logger: silentLogger(), config: config.ingress });
  const url = await ingress.start();
  return {
    dir,
    bus: embedded,
    store,
    catalog,
    ingress,
    url,
    types,
    async close() {
      await ingress.close();
      await embedded.close();
      await store.close();
      if (options.dataDir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Headers with a new admin registry token of the harness's store (for the read routes). */
export async function adminHeaders(h: Pick<Harness, 'store'>): Promise<Record<string, string>> {
  return { authorization: `Bearer ${(await createToken(h.store, 'ops', 'admin', 0)).token}` };
}

/** A valid EndSong v2 payload. */
export function endSong(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    userId: 'user-1',
    trackId: 'track-1',
    durationMs: 181_000,
    trackLengthMs: 200_000,
    reasonEnd: 'TRACK_DONE',
    shuffle: false,
    playlistId: null,
    platform: 'IOS',
    context: { appVersion: '8.9.1' },
    offline: false,
    bitrateKbps: 320,
    ...overrides,
  };
}

export function userCreate(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    userId: 'u-1',
    country: 'NO',
    signupMethod: 'PHONE',
    birthYear: 1990,
    referrer: null,
    marketingOptIn: false,
    ...overrides,
  };
}

export function pageView(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sessionId: 's-1',
    userId: null,
    url: 'https://example.org/',
    referrer: null,
    loadTimeMs: 120,
    viewport: { width: 1280, height: 800 },
    experiments: [],
    ...overrides,
  };
}

/** Reads (and acks) a subscription's messages until at least `expected` came and the backlog is empty. */
export async function drain(
  bus: Bus,
  subscription: string,
  expected: number,
  timeoutMs = 10_000,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let total = 0;
  const sub = await bus.subscribe(subscription, (messages) => {
    for (const m of messages) {
      const id = m.attributes.id ?? '';
      seen.set(id, (seen.get(id) ?? 0) + 1);
      total++;
      m.ack();
    }
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    if (total >= expected && (await bus.backlog(subscription)).messages === 0) break;
  }
  await sub.close();
  return seen;
}
