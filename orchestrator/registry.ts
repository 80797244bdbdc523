/**
 * Changes to the registry made one at a time (the HTTP API, `hourglass types retire`, the
 * reconcile loop), with the same rules as `plan`/`apply`: definitions validated, schemas checked
 * for backward-transitive compatibility, owners acting on their own types only.
 */
import { EventTypeInvalid, Forbidden, RegistryRefused, TypeNotFound } from '../core/errors.js';
import {
  type EventTypeDefinition,
  parseSchema,
  type SchemaVersion,
  type TypeStatus,
  validateDefinition,
} from '../core/event-types.js';
import type { ApiToken, RegisteredType, StateStore } from '../core/ports/state-store.js';
import { checkEvolution } from '../core/schema-evolution.js';

/** Who acts: a token's owner and role, or a trusted operator or process (`admin`). */
export interface Actor {
  readonly name: string;
  readonly owner: string | null;
  readonly role: ApiToken['role'];
}

export function actorOf(token: ApiToken): Actor {
  return { name: `token:${token.id}(${token.owner})`, owner: token.owner, role: token.role };
}

function mayChange(actor: Actor, owner: string, type: string, action: string): void {
  if (actor.role !== 'admin' && actor.owner !== owner) {
    throw new Forbidden({ owner: actor.owner ?? '?', type, action });
  }
}

/** A type as lists show it: its definition, how many versions, its revision and last change. */
export function typeSummary(t: RegisteredType) {
  return {
    name: t.name,
    owner: t.owner,
    description: t.description,
    tier: t.tier,
    partitioning: t.partitioning,
    storage: t.storage,
    retentionDays: t.retentionDays,
    status: t.status,
    versions: t.versions.length,
    revision: t.revision,
    updatedAt: new Date(t.updatedAt).toISOString(),
  };
}

function definitionOf(t: RegisteredType): EventTypeDefinition {
  const { versions: _v, revision: _r, createdAt: _c, updatedAt: _u, ...definition } = t;
  return definition;
}

async function existing(store: StateStore, name: string): Promise<RegisteredType> {
  const t = await store.getType(name);
  if (t === null) throw new TypeNotFound({ type: name });
  return t;
}

/** Registers a new type with its first schema version. */
export async function registerType(
  store: StateStore,
  actor: Actor,
  body: Record<string, unknown>,
  now: number,
): Promise<RegisteredType> {
  const { schema, ...raw } = body;
  if (raw.status !== undefined && raw.status !== 'active') {
    throw new EventTypeInvalid({ type: String(raw.name ?? '?'), rule: 'a new type must be active' });
  }
  const definition = validateDefinition(raw, 'request body');
  mayChange(actor, definition.owner, definition.name, 'register');
  if (schema === undefined)
    throw new EventTypeInvalid({ type: definition.name, rule: 'schema (the Avro record) is required' });
  const v1 = parseSchema(definition.name, 1, schema);
  if ((await store.getType(definition.name)) !== null) {
    throw new RegistryRefused('type_exists', `event type ${definition.name} already exists`, { type: definition.name });
  }
  return store.saveType({
    definition,
    newVersions: [{ version: 1, schema: JSON.stringify(schema), fingerprint: v1.fingerprint }],
    expectedRevision: 0,
    actor: actor.name,
    action: 'create',
    detail: `registered with v1 (${v1.fingerprint.slice(0, 12)})`,
    at: now,
  });
}

/** Adds the next schema version, if it reads every earlier version's data. */
export async function addVersion(
  store: StateStore,
  actor: Actor,
  name: string,
  schema: unknown,
  now: number,
): Promise<RegisteredType> {
  const t = await existing(store, name);
  mayChange(actor, t.owner, name, 'add a version to');
  if (t.status !== 'active') {
    throw new RegistryRefused('type_not_active', `event type ${name} is ${t.status}`, { type: name });
  }
  if (schema === undefined) throw new EventTypeInvalid({ type: name, rule: 'schema (the Avro record) is required' });
  const version = t.versions.length + 1;
  const candidate = parseSchema(name, version, schema);
  const earlier: SchemaVersion[] = t.versions.map((v) => parseSchema(name, v.version, JSON.parse(v.schema)));
  const problems = checkEvolution(candidate, earlier);
  if (problems.length > 0) {
    throw new RegistryRefused(
      'schema_incompatible',
      `v${version} of ${name} is refused: ${problems.map((p) => p.message).join('; ')}`,
      { type: name },
      problems,
    );
  }
  if (earlier.some((e) => e.fingerprint === candidate.fingerprint)) {
    throw new RegistryRefused('schema_incompatible', `the schema is the same as an existing version of ${name}`, {
      type: name,
    });
  }
  return store.saveType({
    definition: definitionOf(t),
    newVersions: [{ version, schema: JSON.stringify(schema), fingerprint: candidate.fingerprint }],
    expectedRevision: t.revision,
    actor: actor.name,
    action: 'new_version',
    detail: `v${version} (${candidate.fingerprint.slice(0, 12)})`,
    at: now,
  });
}

/**
 * Moves a type along its lifecycle (`active` → `retiring` → `retired`); returns null when it is
 * there already.
 */
export async function setStatus(
  store: StateStore,
  actor: Actor,
  name: string,
  status: Exclude<TypeStatus, 'active'>,
  detail: string,
  now: number,
): Promise<RegisteredType | null> {
  const t = await existing(store, name);
  mayChange(actor, t.owner, name, 'retire');
  if (t.status === status || t.status === 'retired') return null;
  return store.saveType({
    definition: { ...definitionOf(t), status },
    newVersions: [],
    expectedRevision: t.revision,
    actor: actor.name,
    action: status === 'retiring' ? 'retire' : 'retired',
    detail,
    at: now,
  });
}
