/**
 * The registry HTTP API, served on the ingress port by `hourglass dev` (and by the orchestrator
 * process in a deployment). Every route needs `Authorization: Bearer <token>` (401 otherwise, and
 * for an expired or revoked token); an owner token reads and changes only its owner's types (403;
 * lists leave others out), an admin token reads and changes all; a read-only token (scope `read`)
 * gets 403 on every change. Owner tokens may not set tier high nor pass their owner's quota of
 * active types (registry-policy.ts).
 *
 *   GET  /v1/event-types                  every type (summary)
 *   GET  /v1/event-types/:name            one type with its versions and history
 *   POST /v1/event-types                  register: the definition fields and `schema` (201)
 *   POST /v1/event-types/:name/versions   `{ "schema": … }`: the next version (201; 422 refused)
 *   POST /v1/event-types/:name/retire     start retirement (202)
 *   /v1/producer-keys                     producer write keys (see producer-keys-api.ts)
 *
 * A change is visible to this process's ingress at once (`refresh`), and to other processes
 * within their registry poll interval.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import { TypeNotFound } from '../core/errors.js';
import type { RegisteredType, StateStore } from '../core/ports/state-store.js';
import { registerProducerKeysApi } from './producer-keys-api.js';
import { assertCanRead, canRead, readerOf } from './read-access.js';
import { actorOf, addVersion, registerType, setStatus, typeSummary } from './registry.js';
import { DEFAULT_REGISTRY_LIMITS, type RegistryLimits } from './registry-policy.js';
import { authenticate } from './tokens.js';

export interface RegistryApiDeps {
  readonly store: StateStore;
  readonly clock: Clock;
  /** Makes a change visible to this process (re-reads the registry). */
  readonly refresh: () => Promise<unknown>;
  /** Quotas of owner tokens (`registry.*` settings); default the defaults. */
  readonly limits?: RegistryLimits;
}

function full(t: RegisteredType) {
  return {
    ...typeSummary(t),
    versions: t.versions.map((v) => ({
      version: v.version,
      fingerprint: v.fingerprint,
      createdAt: new Date(v.createdAt).toISOString(),
      createdBy: v.createdBy,
      schema: JSON.parse(v.schema) as unknown,
    })),
  };
}

function objectBody(request: FastifyRequest): Record<string, unknown> {
  const b = request.body;
  return typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as Record<string, unknown>) : {};
}

export function registerRegistryApi(app: FastifyInstance, deps: RegistryApiDeps): void {
  const { store, clock } = deps;
  // every POST changes something: a read-only token is refused there
  const auth = (request: FastifyRequest) => authenticate(store, request, 'write');
  const limits = deps.limits ?? DEFAULT_REGISTRY_LIMITS;

  app.get('/v1/event-types', async (request) => {
    const reader = await readerOf(store, request);
    return { eventTypes: (await store.listTypes()).filter((t) => canRead(reader, t)).map(typeSummary) };
  });

  app.get<{ Params: { name: string } }>('/v1/event-types/:name', async (request) => {
    const reader = await readerOf(store, request);
    const t = await store.getType(request.params.name);
    if (t === null) throw new TypeNotFound({ type: request.params.name });
    assertCanRead(reader, t);
    return { ...full(t), history: await store.typeHistory(t.name), steps: await store.listSteps(t.name) };
  });

  app.post('/v1/event-types', async (request, reply) => {
    const actor = actorOf(await auth(request));
    const t = await registerType(store, actor, objectBody(request), clock.now(), limits);
    await deps.refresh();
    return reply.code(201).send(full(t));
  });

  app.post<{ Params: { name: string } }>('/v1/event-types/:name/versions', async (request, reply) => {
    const actor = actorOf(await auth(request));
    const t = await addVersion(store, actor, request.params.name, objectBody(request).schema, clock.now());
    await deps.refresh();
    return reply.code(201).send(full(t));
  });

  app.post<{ Params: { name: string } }>('/v1/event-types/:name/retire', async (request, reply) => {
    const actor = actorOf(await auth(request));
    const name = request.params.name;
    await setStatus(store, actor, name, 'retiring', 'status: active → retiring', clock.now());
    await deps.refresh();
    const t = await store.getType(name);
    return reply.code(202).send(typeSummary(t as RegisteredType));
  });

  registerProducerKeysApi(app, store);
}
