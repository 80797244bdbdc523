/**
 * The ingress HTTP app (fastify), apart from the process: tests build it with in-memory or
 * temporary backends and call `app.inject()`; `server.ts` wires the real adapters and listens.
 */

import { createServer } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import type { IngressConfig } from '../../core/config.js';
import { RequestRejected } from '../../core/errors.js';
import type { EventCatalog } from '../../core/event-types.js';
import type { Bus } from '../../core/ports/bus.js';
import type { StateStore } from '../../core/ports/state-store.js';
import { jsonApi } from '../http/json-api.js';
import type { DeadLetterSink } from './dead-letters.js';
import { BusHealth, type IngestAnswer, ingest } from './ingest.js';
import type { IngressLedger } from './ledger.js';
import type { IngressMetrics } from './metrics.js';

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
}

/** The HTTP app, and the same validation and publish path for events that come another way (the bridge). */
export interface IngressApp {
  readonly app: FastifyInstance;
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
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout: config.requestTimeoutRealMs,
          headersTimeout: Math.min(config.headersTimeoutRealMs, config.requestTimeoutRealMs),
          connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.requestTimeoutRealMs / 4))),
          keepAliveTimeout: 10_000,
        },
        handler,
      ),
  });

  jsonApi(app, config.bodyLimitBytes);

  // Bytes of request bodies being handled. A request that alone exceeds the limit still runs when
  // nothing else is in flight, so a large (but allowed) body can never starve.
  let inFlightBytes = 0;
  const busHealth = new BusHealth();
  const requestBytes = new WeakMap<object, number>();
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

  app.post(
    '/v1/events',
    {
      // callback-style hooks: no promise per request on the hot path
      onRequest: (request, _reply, done) => {
        const declared = Number(request.headers['content-length'] ?? config.bodyLimitBytes);
        const size =
          Number.isFinite(declared) && declared >= 0
            ? Math.min(declared, config.bodyLimitBytes)
            : config.bodyLimitBytes;
        if (inFlightBytes + size > config.maxInFlightBytes && inFlightBytes > 0) {
          done(new RequestRejected('overloaded', 'too many bytes in flight; retry after a short wait'));
          return;
        }
        inFlightBytes += size;
        metrics.inFlightBytes.set(inFlightBytes);
        requestBytes.set(request, size);
        done();
      },
      onResponse: (request, reply, done) => {
        const size = requestBytes.get(request);
        if (size !== undefined) {
          inFlightBytes -= size;
          metrics.inFlightBytes.set(inFlightBytes);
        }
        metrics.requests.inc({ status: String(reply.statusCode) });
        metrics.requestSeconds.observe(reply.elapsedTime / 1000);
        done();
      },
    },
    async (request) => {
      if (deps.isStopping?.()) throw new RequestRejected('not_ready', 'the ingress is shutting down');
      const arrival = deps.clock.now();
      const events = batchOf(request.body, config.maxEventsPerBatch);
      return ingest(events, arrival, ingestDeps);
    },
  );

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const checks = {
      accepting: !(deps.isStopping?.() ?? false),
      bus: busHealth.healthy(),
      stateStore: await deps.store.ping(),
      eventTypes: deps.catalog.list().length > 0,
    };
    const ready = Object.values(checks).every(Boolean);
    return reply.code(ready ? 200 : 503).send({ ready, checks });
  });

  app.get('/metrics', async (_request, reply) => {
    metrics.deadLettersDropped.set(deps.deadLetters.dropped);
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get<{ Params: { type: string }; Querystring: { limit?: string } }>('/v1/dead-letters/:type', async (request) => {
    const limit = Math.max(1, Math.min(1000, Number(request.query.limit ?? 100) || 100));
    await deps.deadLetters.flush();
    const [items, totals] = await Promise.all([
      deps.store.listDeadLetters(request.params.type, limit),
      deps.store.deadLetterTotals(),
    ]);
    return { type: request.params.type, total: totals[request.params.type] ?? 0, items };
  });

  return {
    app,
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
