/**
 * Changes to the registry made one at a time (the HTTP API, `hourglass types retire`, the
 * reconcile loop), with the same rules as `plan`/`apply`: definitions validated, type names
 * unique ignoring case, schemas the pipeline can carry (core/schema-limits.ts) and evolving as
 * the type's compatibility mode asks (core/schema-evolution.ts), owners acting on their own types
 * only.
 */
import { EventTypeInvalid, Forbidden, RegistryRefused, TypeNotFound } from '../core/errors.js';
import {
  assertCarriable,
  compatibilityOf,
  dedupWindowOf,
  type EventTypeDefinition,
  nameConflict,
  parseSchema,
  type SchemaVersion,
  type TypeStatus,
  validateDefinition,
} from '../core/event-types.js';
import type { ApiToken, RegisteredType, StateStore } from '../core/ports/state-store.js';
import { canonicalSchema, schemaChanges } from '../core/schema-diff.js';
import { checkEvolution } from '../core/schema-evolution.js';
import {
  assertTierAllowed,
  assertWithinQuota,
  DEFAULT_REGISTRY_LIMITS,
  type RegistryLimits,
} from './registry-policy.js';

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
    compatibility: compatibilityOf(t),
    dedupWindow: dedupWindowOf(t),
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

/**
 * Registers a new type with its first schema version. A non-admin may not set tier high, nor
 * register past its owner's quota of active types (registry-policy.ts).
 */
export async function registerType(
  store: StateStore,
  actor: Actor,
  body: Record<string, unknown>,
  now: number,
  limits: RegistryLimits = DEFAULT_REGISTRY_LIMITS,
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
  assertCarriable(definition.name, v1);
  assertTierAllowed(actor, definition.name, definition.tier, null, 'register');
  if ((await store.getType(definition.name)) !== null) {
    throw new RegistryRefused('type_exists', `event type ${definition.name} already exists`, { type: definition.name });
  }
  const conflict = nameConflict(
    definition.name,
    (await store.listTypes()).map((t) => t.name),
  );
  if (conflict !== null) {
    throw new EventTypeInvalid({ type: definition.name, rule: conflict.message }, { refusals: [conflict] });
  }
  await assertWithinQuota(store, actor, definition.owner, definition.name, limits);
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

/**
 * Adds the next schema version, if the pipeline can carry it (400 `event_type_invalid` naming the
 * rules) and it evolves from the earlier ones as the type's compatibility mode asks (422
 * `schema_incompatible` naming the rules).
 */
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
  assertCarriable(name, candidate);
  const earlier: SchemaVersion[] = t.versions.map((v) => parseSchema(name, v.version, JSON.parse(v.schema)));
  const problems = checkEvolution(candidate, earlier, compatibilityOf(t));
  if (problems.length > 0) {
    throw new RegistryRefused(
      'schema_incompatible',
      `v${version} of ${name} is refused: ${problems.map((p) => p.message).join('; ')}`,
      { type: name },
      problems,
    );
  }
  const same = earlier.find((e) => canonicalSchema(e.schema) === canonicalSchema(schema));
  if (same !== undefined) {
    const message = `the schema is the same as v${same.version} of ${name} (docs aside)`;
    throw new RegistryRefused('schema_incompatible', message, { type: name }, [
      { path: 'the schema', rule: 'duplicate_version', message },
    ]);
  }
  const previous = earlier[earlier.length - 1] as SchemaVersion;
  const fields = schemaChanges(previous.schema, schema);
  return store.saveType({
    definition: definitionOf(t),
    newVersions: [{ version, schema: JSON.stringify(schema), fingerprint: candidate.fingerprint }],
    expectedRevision: t.revision,
    actor: actor.name,
    action: 'new_version',
    detail: [`v${version} (${candidate.fingerprint.slice(0, 12)})`, ...fields].join('; '),
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
