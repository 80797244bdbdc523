/**
 * The ingress as a long-running service: wires the app to its backends, listens, keeps the
 * instance's heartbeat and ledger seals going, and shuts down in order on `close()`:
 * stop intake → finish in-flight requests → save and seal the ledger → store dead letters →
 * record the clean stop.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { IngressInstance } from '../../core/ports/state-store.js';
import { jsonApi } from '../http/json-api.js';
import { buildApp, type IngressApp, type IngressBackends } from './app.js';
import { DeadLetterSink } from './dead-letters.js';
import type { IngestAnswer } from './ingest.js';
import { IngressLedger } from './ledger.js';
import { createIngressMetrics, type IngressMetrics } from './metrics.js';
import { ProducerKeyCache } from './producer-keys.js';

export interface IngressServiceDeps extends IngressBackends {
  readonly metrics?: IngressMetrics;
  /** More routes (the registry API and dashboard in `hourglass dev`): on the admin listener when there is one. */
  readonly routes?: (app: FastifyInstance) => void;
}

/** How often confirmed ledger ranges are saved to the state store (real ms). */
export const LEDGER_FLUSH_REAL_MS = 200;

export function newInstanceId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9-]/g, '')
      .slice(0, 40) || 'host';
  return `ingress-${host}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
}

export class IngressService {
  readonly instanceId: string;
  readonly app: FastifyInstance;
  /** The listener of everything but `POST /v1/events` (`ingress.adminPort`), or null when `app` serves all. */
  readonly adminApp: FastifyInstance | null;
  readonly ledger: IngressLedger;
  readonly deadLetters: DeadLetterSink;
  private readonly logger: Logger;
  private stopping = false;
  private timers: NodeJS.Timeout[] = [];
  private instance: IngressInstance;
  private closing: Promise<void> | null = null;
  private readonly ingestEvents: IngressApp['ingest'];

  constructor(private readonly deps: IngressServiceDeps) {
    const { config, clock, store } = deps;
    this.instanceId = config.instanceId ?? newInstanceId();
    this.logger = deps.logger.child({ component: 'ingress', instance: this.instanceId });
    const activeTypes = () =>
      deps.catalog
        .list()
        // retiring types keep getting sealed (empty) entries so their last hours close
        .filter((t) => t.status !== 'retired')
        .map((t) => t.name);
    this.ledger = new IngressLedger(store, clock, this.instanceId, config.ledgerGraceMs, this.logger, activeTypes);
    this.deadLetters = new DeadLetterSink(store, config.deadLetterMaxPerType, this.logger);
    const now = clock.now();
    this.instance = {
      id: this.instanceId,
      host: hostname(),
      pid: process.pid,
      startedAt: now,
      lastSeenAt: now,
      stoppedAt: null,
    };
    const built = buildApp({
      bus: deps.bus,
      catalog: deps.catalog,
      store,
      clock,
      logger: deps.logger,
      config,
      instanceId: this.instanceId,
      ledger: this.ledger,
      deadLetters: this.deadLetters,
      metrics: deps.metrics ?? createIngressMetrics(),
      isStopping: () => this.stopping,
      keys: config.auth
        ? new ProducerKeyCache(store, {
            recheckMs: config.keyRecheckRealMs,
            defaultRatePerSec: config.keyRatePerSec,
            defaultBurst: config.keyBurst,
          })
        : null,
      separateAdmin: config.adminPort !== null,
    });
    this.app = built.app;
    this.ingestEvents = built.ingest;
    if (config.adminPort !== null) {
      this.adminApp = Fastify({
        loggerInstance: this.logger.child({ listener: 'admin' }) as FastifyBaseLogger,
        logController: new LogController({ disableRequestLogging: true }),
        return503OnClosing: true,
      });
      jsonApi(this.adminApp, 1024 * 1024);
      built.registerAdminRoutes(this.adminApp);
      deps.routes?.(this.adminApp);
    } else {
      this.adminApp = null;
      deps.routes?.(this.app);
    }
  }

  /** Registers the instance, starts listening, starts heartbeat and sealing. Returns the URL. */
  async start(): Promise<string> {
    await this.deps.store.upsertInstance(this.instance);
    let url: string;
    try {
      url = await this.app.listen({ host: this.deps.config.host, port: this.deps.config.port });
      if (this.adminApp !== null) {
        this.adminUrlValue = await this.adminApp.listen({
          host: this.deps.config.adminHost,
          port: this.deps.config.adminPort ?? 0,
        });
      }
    } catch (err) {
      await this.app.close().catch(() => undefined);
      // never served: record a clean stop so the instance is not taken for a vanished one
      const now = this.deps.clock.now();
      await this.deps.store
        .upsertInstance({ ...this.instance, lastSeenAt: now, stoppedAt: now })
        .catch(() => undefined);
      throw err;
    }
    const heartbeat = setInterval(() => void this.heartbeat(), this.deps.config.heartbeatRealMs);
    const seal = setInterval(() => void this.sealDue(), Math.max(50, Math.min(1000, this.deps.clock.toRealMs(10_000))));
    const flush = setInterval(() => void this.flushLedger(), LEDGER_FLUSH_REAL_MS);
    this.timers.push(heartbeat, seal, flush);
    for (const t of this.timers) t.unref();
    this.logger.info({ url, adminUrl: this.adminUrlValue }, 'ingress listening');
    return url;
  }

  private adminUrlValue: string | null = null;

  /** Where the registry, dashboard and other reads are served: the admin listener, or the ingress URL. */
  adminUrl(): string | null {
    return this.adminUrlValue;
  }

  /**
   * Events that come another way than HTTP (the Kafka bridge): validated, published, ledgered and
   * dead-lettered exactly as `POST /v1/events` does. Throws when the bus fails (nothing accepted).
   */
  ingest(events: readonly unknown[]): Promise<IngestAnswer> {
    return this.ingestEvents(events);
  }

  /** The port actually bound (useful with port 0). */
  port(): number {
    const addr = this.app.server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.deps.config.port;
  }

  private async heartbeat(): Promise<void> {
    this.instance = { ...this.instance, lastSeenAt: this.deps.clock.now() };
    try {
      await this.deps.store.upsertInstance(this.instance);
    } catch (err) {
      this.logger.error({ err }, 'heartbeat failed');
    }
  }

  private async flushLedger(): Promise<void> {
    try {
      await this.ledger.flush();
    } catch (err) {
      this.logger.error({ err }, 'saving the ledger failed; will retry');
    }
  }

  private async sealDue(): Promise<void> {
    try {
      await this.ledger.sealDue();
    } catch (err) {
      this.logger.error({ err }, 'sealing the ledger failed; will retry');
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      for (const t of this.timers) clearInterval(t);
      await this.app.close();
      await this.adminApp?.close();
      try {
        await this.ledger.flush();
        await this.ledger.sealAll();
      } catch (err) {
        this.logger.error({ err }, 'sealing the ledger on stop failed; the instance will be treated as vanished');
      }
      await this.deadLetters.flush();
      this.instance = { ...this.instance, lastSeenAt: this.deps.clock.now(), stoppedAt: this.deps.clock.now() };
      await this.deps.store
        .upsertInstance(this.instance)
        .catch((err: unknown) => this.logger.error({ err }, 'recording the stop failed'));
      this.logger.info('ingress stopped');
    })();
    return this.closing;
  }
}
