/**
 * Declarative path to the registry: `plan` compares the type folders of a directory (as in
 * `schemas/`) with the registry and lists what `apply` would do, one action per type:
 *
 * - `create`: a type the registry does not have (with all its versions);
 * - `new_version`: versions after the registered ones (each checked as the type's compatibility
 *   mode asks, with its field diff against the version before it);
 * - `update`: owner, description, tier, storage, retention, compatibility mode or dedup window changed;
 * - `retire`: the folder says `"status": "retiring"` or `"retired"` for an active type;
 * - `refused`: the change breaks a rule (each with its rule name and reason); `apply` then changes
 *   nothing at all;
 * - `unchanged`.
 *
 * Registered versions are immutable (a vN changed in anything a reader sees — fields, types,
 * defaults, aliases, order, logical types, enum symbols; not docs — is refused, saying what
 * changed: add vN+1), versions are never removed, partitioning never changes, a retired type does
 * not come back, and type names differ ignoring case. Types in the registry without a folder are
 * left alone (they may have been registered through the API).
 *
 * Retirement and folders: a folder marked `retiring` or `retired` for a type the registry does not
 * have is registered `retired` at once (nothing was ever accepted, so nothing drains: no topic, no
 * consumer). A folder still `active` for a type retired through the API or `hourglass types
 * retire` is not refused: the registry keeps the type retired and the plan carries a warning
 * saying how to mark the folder. With `limits`, the owners' quota of active types applies
 * (registry-policy.ts).
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { EventTypeInvalid, type Refusal } from '../core/errors.js';
import {
  compatibilityOf,
  dedupWindowMs,
  dedupWindowOf,
  type EventType,
  type EventTypeDefinition,
  loadEventTypeDir,
  nameConflict,
} from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import type { RegisteredType, StateStore } from '../core/ports/state-store.js';
import { schemaChanges } from '../core/schema-diff.js';
import { HASH_BYTES } from '../etl/id-index.js';
import { type RegistryLimits, withQuota } from './registry-policy.js';

export type PlanAction = 'create' | 'new_version' | 'update' | 'retire' | 'refused' | 'unchanged';

export interface PlannedChange {
  readonly type: string;
  readonly action: PlanAction;
  /** What changes, one line each (or why it is refused: the refusals' messages). */
  readonly changes: readonly string[];
  /** For `refused`: each refusal with its rule name (README "Event types"). */
  readonly refusals?: readonly Refusal[];
  /** Differences that change nothing and refuse nothing, but should be fixed (one line each). */
  readonly warnings?: readonly string[];
  /** The write `apply` makes (absent for `refused` and `unchanged`). */
  readonly write?: {
    readonly definition: EventTypeDefinition;
    readonly newVersions: { version: number; schema: string; fingerprint: string }[];
    readonly expectedRevision: number;
  };
}

const UPDATABLE = ['owner', 'description', 'tier', 'storage', 'retentionDays', 'compatibility', 'dedupWindow'] as const;

type DeclaredSchema = { version: number; schema: string; fingerprint: string };

/** Why a change is refused, one line each with its rule name: `message (rule)`. */
export function refusalLines(p: PlannedChange): string[] {
  return p.refusals === undefined ? [...p.changes] : p.refusals.map((r) => `${r.message} (${r.rule})`);
}

/** A refused change: its refusals, and their messages as the change lines. */
function refusedChange(type: string, refusals: readonly Refusal[]): PlannedChange {
  return { type, action: 'refused', changes: refusals.map((r) => r.message), refusals };
}

/**
 * Refuses type folders whose names equal, ignoring case, another folder's of the plan or a
 * registered type's of another spelling (a registered type keeps its name: the newcomer is refused).
 */
function withNameConflicts(plan: readonly PlannedChange[], registered: readonly string[]): PlannedChange[] {
  const names = new Set([...plan.map((p) => p.type), ...registered]);
  return plan.map((p) => {
    const conflict = registered.includes(p.type) ? null : nameConflict(p.type, names);
    return conflict === null ? p : refusedChange(p.type, [...(p.refusals ?? []), conflict]);
  });
}

/** `+ vN (fingerprint)`, then its field diff against the version before it, for new versions. */
function versionLines(all: readonly DeclaredSchema[], from: number, prefix: string): string[] {
  return all
    .filter((s) => s.version >= from)
    .flatMap((s) => {
      const before = all.find((x) => x.version === s.version - 1);
      const fields = before === undefined ? [] : schemaChanges(JSON.parse(before.schema), JSON.parse(s.schema));
      return [`${prefix}v${s.version} (${s.fingerprint.slice(0, 12)})`, ...fields.map((f) => `v${s.version}: ${f}`)];
    });
}

/**
 * The plan for every type folder under `dir`, by type name. With `limits`, changes that would
 * take an owner past its quota of active types are refused.
 */
export async function planTypes(
  dir: string,
  store: StateStore,
  options: { readonly limits?: RegistryLimits | null } = {},
): Promise<PlannedChange[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory());
  const planned: PlannedChange[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const folder = join(dir, e.name);
    if (!(await readdir(folder)).includes('type.json')) continue;
    planned.push(await planOne(folder, e.name, store));
  }
  const registered = await store.listTypes();
  const out = withNameConflicts(
    planned,
    registered.map((t) => t.name),
  );
  return options.limits ? withQuota(out, registered, options.limits) : out;
}

async function planOne(folder: string, folderName: string, store: StateStore): Promise<PlannedChange> {
  let declared: EventType;
  try {
    declared = await loadEventTypeDir(folder);
  } catch (err) {
    if (err instanceof EventTypeInvalid) {
      const file = String(err.context.file ?? folder);
      const refusals =
        err.refusals.length > 0
          ? err.refusals.map((r) => ({ ...r, message: `${basename(file)}: ${r.message}` }))
          : [{ path: file, rule: 'event_type_invalid', message: `${file}: ${err.context.rule}` }];
      return refusedChange(folderName, refusals);
    }
    throw err;
  }
  if (declared.name !== folderName) {
    return refusedChange(declared.name, [
      { path: 'name', rule: 'folder_name_mismatch', message: `folder ${folderName} differs from the type name` },
    ]);
  }
  const registered = await store.getType(declared.name);
  const schemas: DeclaredSchema[] = declared.versions.map((v) => ({
    version: v.version,
    // the declared text, normalised (whitespace does not make a new version)
    schema: JSON.stringify(v.schema),
    fingerprint: v.fingerprint,
  }));
  const definition: EventTypeDefinition = {
    name: declared.name,
    owner: declared.owner,
    description: declared.description,
    tier: declared.tier,
    partitioning: declared.partitioning,
    storage: declared.storage,
    retentionDays: declared.retentionDays,
    status: declared.status === 'retired' ? 'retiring' : declared.status,
    compatibility: compatibilityOf(declared),
    dedupWindow: dedupWindowOf(declared),
  };
  if (registered === null) {
    if (declared.status !== 'active') {
      // retired before this registry knew it (a fresh data dir): nothing to drain
      return {
        type: declared.name,
        action: 'create',
        changes: [
          `registered retired (the folder says ${declared.status}): no topic, no consumer`,
          ...versionLines(schemas, 1, ''),
        ],
        write: { definition: { ...definition, status: 'retired' }, newVersions: schemas, expectedRevision: 0 },
      };
    }
    return {
      type: declared.name,
      action: 'create',
      changes: [
        `owner ${declared.owner}, tier ${declared.tier}, ${declared.partitioning}, storage ${declared.storage}, retention ${declared.retentionDays} d, compatibility ${compatibilityOf(declared)}, dedup window ${dedupWindowOf(declared)}`,
        ...versionLines(schemas, 1, ''),
      ],
      write: { definition, newVersions: schemas, expectedRevision: 0 },
    };
  }
  const planned = diff(registered, definition, schemas, declared.status);
  if (planned.action === 'refused') return planned;
  const cost = await windowCost(store, definition, registered);
  return cost === null ? planned : { ...planned, warnings: [...(planned.warnings ?? []), cost] };
}

/** Id-index bytes one partition's dedup may read for its window before the plan warns. */
const WINDOW_READ_WARN_BYTES = 1e9;

/** Hours looked at for a type's volume: its last week's. */
const RECENT_HOURS = 168;

/**
 * A warning when a longer dedup window makes each partition's dedup read much of the id indexes:
 * it reads the index of every published partition in the window (16 bytes an id), so the cost
 * is the window's hours × the ids of the type's hours, estimated from its largest recent hour.
 */
async function windowCost(
  store: StateStore,
  definition: EventTypeDefinition,
  registered: RegisteredType,
): Promise<string | null> {
  const windowMs = dedupWindowMs(definition);
  if (windowMs <= dedupWindowMs(registered)) return null;
  const hours = (await store.listHours({ type: definition.name }))
    .sort((a, b) => b.hour - a.hour)
    .slice(0, RECENT_HOURS);
  const largest = Math.max(0, ...hours.map((h) => h.eventsOut ?? h.ledgerTotal));
  const windowHours = Math.round(windowMs / HOUR_MS);
  const bytes = windowHours * largest * HASH_BYTES;
  if (bytes < WINDOW_READ_WARN_BYTES) return null;
  return (
    `dedupWindow ${dedupWindowOf(definition)}: each partition's dedup would read the id indexes of the ` +
    `${windowHours} hours before it: about ${(bytes / 1e9).toFixed(1)} GB at the type's largest recent hour ` +
    `(${largest.toLocaleString('en-US')} events), read again for every partition (README, "The dedup window")`
  );
}

function diff(
  registered: RegisteredType,
  definition: EventTypeDefinition,
  schemas: DeclaredSchema[],
  declaredStatus: EventTypeDefinition['status'],
): PlannedChange {
  const type = registered.name;
  const refusals: Refusal[] = [];
  const refused = { push: (rule: string, path: string, message: string) => refusals.push({ path, rule, message }) };
  for (const r of registered.versions) {
    const d = schemas.find((s) => s.version === r.version);
    if (d === undefined) {
      refused.push(
        'version_removed',
        `v${r.version}`,
        `v${r.version} is registered but missing from the folder (versions are never removed)`,
      );
      continue;
    }
    const changed = schemaChanges(JSON.parse(r.schema), JSON.parse(d.schema));
    if (changed.length > 0) {
      refused.push(
        'version_changed',
        `v${r.version}`,
        `v${r.version} changed since it was registered: ${changed.join('; ')}; versions are immutable: undo the change and add v${schemas.length + 1}`,
      );
    }
  }
  if (definition.partitioning !== registered.partitioning) {
    refused.push(
      'partitioning_changed',
      'partitioning',
      `partitioning cannot change (${registered.partitioning} → ${definition.partitioning}): register a new type`,
    );
  }
  const warnings: string[] = [];
  if (registered.status !== 'active' && declaredStatus === 'active') {
    // retired through the API or `hourglass types retire`: the registry stays as it is
    warnings.push(
      `the registry says ${registered.status} and the folder says active: a retired type does not come back ` +
        `(register a new name); set "status": "retired" in ${type}/type.json`,
    );
  }
  const newVersions = schemas.filter((s) => s.version > registered.versions.length);
  if (registered.status !== 'active' && newVersions.length > 0) {
    refused.push(
      'type_not_active',
      `v${newVersions[0]?.version}`,
      `the type is ${registered.status}: no new version (v${newVersions[0]?.version}) for it`,
    );
  }
  if (refusals.length > 0) return refusedChange(type, refusals);
  const warned = warnings.length > 0 ? { warnings } : {};

  const changes: string[] = versionLines(schemas, registered.versions.length + 1, '+ ');
  for (const key of UPDATABLE) {
    if (definition[key] !== registered[key])
      changes.push(`${key}: ${String(registered[key])} → ${String(definition[key])}`);
  }
  const retiring = registered.status === 'active' && declaredStatus !== 'active';
  if (retiring) changes.push('status: active → retiring');
  const status = retiring ? 'retiring' : registered.status;
  if (changes.length === 0) return { type, action: 'unchanged', changes: [], ...warned };
  return {
    type,
    action: retiring ? 'retire' : newVersions.length > 0 ? 'new_version' : 'update',
    changes,
    ...warned,
    write: { definition: { ...definition, status }, newVersions, expectedRevision: registered.revision },
  };
}

/**
 * Applies a plan: nothing when any change is refused (the plan is all or nothing), otherwise every
 * write, each atomic with its history entry. Returns the changes applied.
 */
export async function applyPlan(
  plan: readonly PlannedChange[],
  store: StateStore,
  actor: string,
  now: number,
): Promise<{ applied: PlannedChange[]; refused: PlannedChange[] }> {
  const refused = plan.filter((p) => p.action === 'refused');
  if (refused.length > 0) return { applied: [], refused };
  const applied: PlannedChange[] = [];
  for (const p of plan) {
    if (p.write === undefined) continue;
    await store.saveType({ ...p.write, actor, action: p.action, detail: p.changes.join('; '), at: now });
    applied.push(p);
  }
  return { applied, refused: [] };
}
