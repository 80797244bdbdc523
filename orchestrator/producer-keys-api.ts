/**
 * Producer write keys through the registry API. An admin token creates keys for any types (or
 * every type), lists and revokes every key; an owner token creates keys only for registered types
 * its team owns, and lists and revokes only keys whose types are all its own. A read-only token
 * lists (as its role may) and gets 403 forbidden on create and revoke.
 *
 *   POST /v1/producer-keys               `{producer, types | allTypes, rate?, burst?, origins?, expires?}` (201, the key once)
 *   GET  /v1/producer-keys               the keys the token may manage, never their secrets
 *   POST /v1/producer-keys/:id/revoke    the key stops working on every ingress within 1 s
 */
import type { FastifyInstance } from 'fastify';
import { Forbidden, ProducerKeyInvalid, ProducerKeyNotFound, TypeNotFound } from '../core/errors.js';
import type { ProducerKey, StateStore } from '../core/ports/state-store.js';
import {
  createProducerKey,
  describeProducerKey,
  keySpecProblem,
  type ProducerKeySpec,
  parseKeyLifetime,
} from '../services/ingress/producer-keys.js';
import { type Reader, readerOf } from './read-access.js';

const FIELDS = new Set(['producer', 'types', 'allTypes', 'rate', 'burst', 'origins', 'expires']);

function optionalNumber(body: Record<string, unknown>, field: string): number | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ProducerKeyInvalid({ rule: `${field} must be a number ≥ 0` });
  }
  return v;
}

function stringList(body: Record<string, unknown>, field: string): string[] | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new ProducerKeyInvalid({ rule: `${field} must be a list of strings` });
  }
  return v as string[];
}

/** The key spec a request body asks for, checked for shape and rules (not yet for rights). */
export function keySpecFromBody(body: unknown, createdBy: string, now: number): ProducerKeySpec {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProducerKeyInvalid({ rule: 'the body must be a JSON object' });
  }
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) {
    throw new ProducerKeyInvalid({ rule: `unknown field ${JSON.stringify(unknown)} (${[...FIELDS].join(', ')})` });
  }
  if (typeof b.producer !== 'string') throw new ProducerKeyInvalid({ rule: 'producer (a name) is required' });
  const types = stringList(b, 'types');
  if (b.allTypes !== undefined && typeof b.allTypes !== 'boolean') {
    throw new ProducerKeyInvalid({ rule: 'allTypes must be true or false' });
  }
  if ((types === undefined) === (b.allTypes !== true)) {
    throw new ProducerKeyInvalid({ rule: 'give either types (a list) or "allTypes": true' });
  }
  let expiresAt: number | null = null;
  if (b.expires !== undefined && b.expires !== null) {
    const ms = typeof b.expires === 'string' ? parseKeyLifetime(b.expires) : null;
    if (ms === null) throw new ProducerKeyInvalid({ rule: 'expires must be a duration such as "90d", "12h" or "30m"' });
    expiresAt = now + ms;
  }
  const spec: ProducerKeySpec = {
    producer: b.producer,
    types: types ?? null,
    ratePerSec: optionalNumber(b, 'rate'),
    burst: optionalNumber(b, 'burst'),
    origins: stringList(b, 'origins') ?? [],
    expiresAt,
    createdBy,
  };
  const problem = keySpecProblem(spec);
  if (problem !== null) throw new ProducerKeyInvalid({ rule: problem });
  return spec;
}

/** The owners of the registered types, by name. */
async function ownersOf(store: StateStore): Promise<Map<string, string>> {
  return new Map((await store.listTypes()).map((t) => [t.name, t.owner]));
}

/** Whether the reader may see and revoke a key: an admin any, an owner those of its own types only. */
function mayManage(reader: Reader, key: Pick<ProducerKey, 'types'>, owners: ReadonlyMap<string, string>): boolean {
  if (reader.admin) return true;
  return key.types?.every((t) => owners.get(t) === reader.owner) ?? false;
}

export function registerProducerKeysApi(app: FastifyInstance, store: StateStore): void {
  // key expiry is real time (the ingress checks it against the system clock), whatever the scale
  const now = (): number => Date.now();

  app.post('/v1/producer-keys', async (request, reply) => {
    const reader = await readerOf(store, request, 'write');
    const spec = keySpecFromBody(request.body, `token owner ${reader.owner}${reader.admin ? ' (admin)' : ''}`, now());
    if (!reader.admin) {
      if (spec.types === null) {
        throw new Forbidden({
          owner: reader.owner,
          type: 'every type',
          action: 'create a key for',
          reason: 'only an admin token may',
        });
      }
      const owners = await ownersOf(store);
      for (const t of spec.types) {
        const owner = owners.get(t);
        if (owner === undefined) throw new TypeNotFound({ type: t });
        if (owner !== reader.owner) throw new Forbidden({ owner: reader.owner, type: t, action: 'create a key for' });
      }
    }
    const { key, record } = await createProducerKey(store, spec, now());
    return reply.code(201).send({ ...describeProducerKey(record, now()), key });
  });

  app.get('/v1/producer-keys', async (request) => {
    const reader = await readerOf(store, request);
    const owners = await ownersOf(store);
    const t = now();
    return {
      keys: (await store.listProducerKeys())
        .filter((k) => mayManage(reader, k, owners))
        .map((k) => describeProducerKey(k, t)),
    };
  });

  app.post<{ Params: { id: string } }>('/v1/producer-keys/:id/revoke', async (request) => {
    const reader = await readerOf(store, request, 'write');
    const id = request.params.id;
    const key = await store.getProducerKey(id);
    // a key the token may not manage is not found for it (ids of other teams' keys are not told)
    if (key === null || !mayManage(reader, key, await ownersOf(store))) throw new ProducerKeyNotFound({ key: id });
    await store.revokeProducerKey(id, now());
    return describeProducerKey((await store.getProducerKey(id)) as ProducerKey, now());
  });
}
