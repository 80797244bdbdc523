/**
 * The ingress HTTP app (fastify), apart from the process: tests build it with in-memory or
 * temporary backends and call `app.inject()`; `server.ts` wires the real adapters and listens.
 */

import { createServer } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import type { IngressConfig } from '../../core/config.js';
import { Forbidden, RequestRejected } from '../../core/errors.js';
import type { EventCatalog } from '../../core/event-types.js';
import type { Bus } from '../../core/ports/bus.js';
import type { StateStore } from '../../core/ports/state-store.js';
import { assertCanRead, readerOf } from '../../orchestrator/read-access.js';
import { jsonApi } from '../http/json-api.js';
import type { DeadLetterSink } from './dead-letters.js';
import { type EventsBody, eventsBodyParser } from './events-body.js';
import { BusHealth, type IngestAnswer, ingest } from './ingest.js';
import type { IngressLedger } from './ledger.js';
import { InFlightBudget, limitConnections } from './limits.js';
import type { IngressMetrics } from './metrics.js';
import { producerAuth } from './producer-auth.js';
import type { ProducerKeyCache } from './producer-keys.js';

/** The backends and settings the ingress runs on. */
export interface IngressBackends {
  readonly bus: Bus;
  readonly catalog: EventCatalog;
  readonly store: StateStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: IngressConfig;
}

export interface IngressAppDeps extends IngressBackends {
  readonly instanceId: string;
  readonly ledger: IngressLedger;
  readonly deadLetters: DeadLetterSink;
  readonly metrics: IngressMetrics;
  /** Set while the service shuts down: readiness fails, new batches get 503. */
  readonly isStopping?: () => boolean;
  /** Producer keys; null or absent: `POST /v1/events` takes no key (`ingress.auth: off`). */
  readonly keys?: ProducerKeyCache | null;
  /**
   * The reads (metrics, dead letters) are served by another app (`ingress.adminPort`): the caller
   * registers them there with `registerAdminRoutes`. Default: on this app.
   */
  readonly separateAdmin?: boolean;
}

/** The HTTP app, and the same validation and publish path for events that come another way (the bridge). */
export interface IngressApp {
  readonly app: FastifyInstance;
  /** Registers health, readiness, metrics and dead letters on another app (the admin listener). */
  registerAdminRoutes(target: FastifyInstance): void;
  /** Validates, publishes and records events as `POST /v1/events` does (throws when the bus fails). */
  ingest(events: readonly unknown[]): Promise<IngestAnswer>;
}

export function buildApp(deps: IngressAppDeps): IngressApp {
  const { config, metrics } = deps;
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'ingress' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    serverFactory: (handler) => {
      const headersTimeout = Math.min(config.headersTimeoutRealMs, config.requestTimeoutRealMs);
      const server = createServer(
        {
          requestTimeout: config.requestTimeoutRealMs,
          headersTimeout,
          connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.requestTimeoutRealMs / 4))),
          keepAliveTimeout: 10_000,
        },
        handler,
      );
      limitConnections(server, {
        maxConnections: config.maxConnections,
        silentMs: headersTimeout,
        onDrop: () => metrics.connectionsDropped.inc(),
      });
      return server;
    },
  });

  jsonApi(app, config.bodyLimitBytes);

  const budget = new InFlightBudget(config.maxInFlightBytes, config.bodyLimitBytes, (bytes) =>
    metrics.inFlightBytes.set(bytes),
  );
  // each request's share of the budget, released by whichever way the request ends first
  const releases = new WeakMap<object, () => void>();
  const busHealth = new BusHealth();
  const ingestDeps = {
    bus: deps.bus,
    catalog: deps.catalog,
    clock: deps.clock,
    ledger: deps.ledger,
    deadLetters: deps.deadLetters,
    metrics,
    logger: deps.logger,
    instanceId: deps.instanceId,
    maxIdLength: config.maxIdLength,
    deadLetterEventBytes: config.deadLetterEventBytes,
    busHealth,
  };

  const auth = deps.keys
    ? producerAuth(app, deps.keys, {
        onRateLimited: (producer) => metrics.rateLimited.inc({ producer }),
        holdMs: config.rateLimitHoldRealMs,
        holdPerKey: config.rateLimitHoldPerKey,
        releaseBudget: (request) => releases.get(request)?.(),
      })
    : null;

  // A scope of its own: its JSON bodies are read by the batch scanner, which enforces the batch
  // and event limits before anything is parsed (events-body.ts).
  app.register(async (scope) => {
    eventsBodyParser(scope, {
      bodyLimitBytes: config.bodyLimitBytes,
      maxEventsPerBatch: config.maxEventsPerBatch,
      maxEventBytes: config.maxEventBytes,
      maxContainersPerBatch: config.maxContainersPerBatch,
      headBytes: config.deadLetterEventBytes,
    });
    scope.post(
      '/v1/events',
      {
        ...(auth ? { preParsing: auth.hook } : {}),
        // callback-style hooks: no promise per request on the hot path
        onRequest: (request, reply, done) => {
          const declared = Number(request.headers['content-length'] ?? config.bodyLimitBytes);
          const size =
            Number.isFinite(declared) && declared >= 0
              ? Math.min(declared, config.bodyLimitBytes)
              : config.bodyLimitBytes;
          const release = budget.reserve(size);
          if (release === null) {
            done(new RequestRejected('overloaded', 'too many bytes in flight; retry after a short wait'));
            return;
          }
          releases.set(request, release);
          // The response's 'close' ends every request, however it ends: answered, refused by any
          // hook, failed, cut by the client (mid-body or while handled), or timed out (node answers
          // 408 and closes the socket, and fastify sees no response). onResponse and
          // onRequestAbort release earlier where they run; the release frees the bytes once.
          reply.raw.once('close', release);
          if (reply.raw.destroyed) release();
          done();
        },
        onRequestAbort: (request, done) => {
          releases.get(request)?.();
          done();
        },
        onResponse: (request, reply, done) => {
          releases.get(request)?.();
          metrics.requests.inc({ status: String(reply.statusCode) });
          metrics.requestSeconds.observe(reply.elapsedTime / 1000);
          done();
        },
      },
      async (request) => {
        if (deps.isStopping?.()) throw new RequestRejected('not_ready', 'the ingress is shutting down');
        const refused = (request.body as EventsBody | undefined)?.rejection;
        if (refused) throw refused;
        const arrival = deps.clock.now();
        const events = batchOf(request.body, config.maxEventsPerBatch);
        return ingest(events, arrival, ingestDeps, auth ? auth.admit(request, events.length) : null);
      },
    );
  });

  const registerHealth = (target: FastifyInstance): void => {
    target.get('/healthz', async () => ({ status: 'ok' }));

    target.get('/readyz', async (_request, reply) => {
      const checks = {
        accepting: !(deps.isStopping?.() ?? false),
        bus: busHealth.healthy(),
        stateStore: await deps.store.ping(),
        eventTypes: deps.catalog.list().length > 0,
        // a largest batch would get 429 overloaded now
        inFlightBudget: !budget.exhausted(),
      };
      const ready = Object.values(checks).every(Boolean);
      return reply.code(ready ? 200 : 503).send({ ready, checks });
    });
  };

  const registerReads = (target: FastifyInstance): void => {
    target.get('/metrics', async (_request, reply) => {
      metrics.deadLettersDropped.set(deps.deadLetters.dropped);
      return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
    });

    // rejected events with their payloads: a registry token of the type's owner, or an admin's
    target.get<{ Params: { type: string }; Querystring: { limit?: string } }>(
      '/v1/dead-letters/:type',
      async (request) => {
        const reader = await readerOf(deps.store, request);
        const name = request.params.type;
        const known = deps.catalog.get(name);
        if (known !== undefined) assertCanRead(reader, known);
        else if (!reader.admin) throw new Forbidden({ owner: reader.owner, type: name, action: 'read' });
        const limit = Math.max(1, Math.min(1000, Number(request.query.limit ?? 100) || 100));
        await deps.deadLetters.flush();
        const [items, totals] = await Promise.all([
          deps.store.listDeadLetters(name, limit),
          deps.store.deadLetterTotals(),
        ]);
        return { type: name, total: totals[name] ?? 0, items };
      },
    );
  };

  registerHealth(app);
  if (deps.separateAdmin !== true) registerReads(app);

  return {
    app,
    registerAdminRoutes: (target) => {
      registerHealth(target);
      registerReads(target);
    },
    ingest: (events) => {
      if (deps.isStopping?.()) return Promise.reject(new RequestRejected('not_ready', 'the ingress is shutting down'));
      return ingest(events, deps.clock.now(), ingestDeps);
    },
  };
}

/** The `events` array of a request body, or the request-level rejection. */
export function batchOf(body: unknown, maxEvents: number): unknown[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RequestRejected('invalid_body', 'the body must be a JSON object {"events": [...]}');
  }
  const events = (body as { events?: unknown }).events;
  if (events === undefined) throw new RequestRejected('invalid_body', 'the body has no "events" field');
  if (!Array.isArray(events)) throw new RequestRejected('invalid_body', '"events" must be an array');
  if (events.length === 0) throw new RequestRejected('empty_batch', '"events" is empty');
  if (events.length > maxEvents) {
    throw new RequestRejected(
      'batch_too_large',
      `${events.length} events in one request; at most ${maxEvents} are allowed`,
    );
  }
  return events;
}
