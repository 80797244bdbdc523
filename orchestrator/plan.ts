/**
 * Declarative path to the registry: `plan` compares the type folders of a directory (as in
 * `schemas/`) with the registry and lists what `apply` would do, one action per type:
 *
 * - `create`: a type the registry does not have (with all its versions);
 * - `new_version`: versions after the registered ones (each checked against every earlier one);
 * - `update`: owner, description, tier, storage or retention changed;
 * - `retire`: the folder says `"status": "retiring"` or `"retired"` for an active type;
 * - `refused`: the change breaks a rule (with the reason); `apply` then changes nothing at all;
 * - `unchanged`.
 *
 * Registered versions are immutable (a changed vN is refused: add vN+1), versions are never
 * removed, partitioning never changes, and a retired type does not come back. Types in the
 * registry without a folder are left alone (they may have been registered through the API).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EventTypeInvalid } from '../core/errors.js';
import { type EventType, type EventTypeDefinition, loadEventTypeDir } from '../core/event-types.js';
import type { RegisteredType, StateStore } from '../core/ports/state-store.js';

export type PlanAction = 'create' | 'new_version' | 'update' | 'retire' | 'refused' | 'unchanged';

export interface PlannedChange {
  readonly type: string;
  readonly action: PlanAction;
  /** What changes, one line each (or why it is refused). */
  readonly changes: readonly string[];
  /** The write `apply` makes (absent for `refused` and `unchanged`). */
  readonly write?: {
    readonly definition: EventTypeDefinition;
    readonly newVersions: { version: number; schema: string; fingerprint: string }[];
    readonly expectedRevision: number;
  };
}

const UPDATABLE = ['owner', 'description', 'tier', 'storage', 'retentionDays'] as const;

/** The plan for every type folder under `dir`, by type name. */
export async function planTypes(dir: string, store: StateStore): Promise<PlannedChange[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory());
  const out: PlannedChange[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const folder = join(dir, e.name);
    if (!(await readdir(folder)).includes('type.json')) continue;
    out.push(await planOne(folder, e.name, store));
  }
  return out;
}

async function planOne(folder: string, folderName: string, store: StateStore): Promise<PlannedChange> {
  let declared: EventType;
  try {
    declared = await loadEventTypeDir(folder);
  } catch (err) {
    if (err instanceof EventTypeInvalid) {
      return { type: folderName, action: 'refused', changes: [`${err.context.file ?? folder}: ${err.context.rule}`] };
    }
    throw err;
  }
  if (declared.name !== folderName) {
    return { type: declared.name, action: 'refused', changes: [`folder ${folderName} differs from the type name`] };
  }
  const registered = await store.getType(declared.name);
  const schemas = await Promise.all(
    declared.versions.map(async (v) => ({
      version: v.version,
      // the declared text, normalised (whitespace does not make a new version)
      schema: JSON.stringify(JSON.parse(await readFile(join(folder, `v${v.version}.avsc`), 'utf8'))),
      fingerprint: v.fingerprint,
    })),
  );
  const definition: EventTypeDefinition = {
    name: declared.name,
    owner: declared.owner,
    description: declared.description,
    tier: declared.tier,
    partitioning: declared.partitioning,
    storage: declared.storage,
    retentionDays: declared.retentionDays,
    status: declared.status === 'retired' ? 'retiring' : declared.status,
  };
  if (registered === null) {
    if (declared.status !== 'active') {
      return { type: declared.name, action: 'refused', changes: [`a new type must be active (is ${declared.status})`] };
    }
    return {
      type: declared.name,
      action: 'create',
      changes: [
        `owner ${declared.owner}, tier ${declared.tier}, ${declared.partitioning}, storage ${declared.storage}, retention ${declared.retentionDays} d`,
        ...schemas.map((s) => `v${s.version} (${s.fingerprint.slice(0, 12)})`),
      ],
      write: { definition, newVersions: schemas, expectedRevision: 0 },
    };
  }
  return diff(registered, definition, schemas, declared.status);
}

function diff(
  registered: RegisteredType,
  definition: EventTypeDefinition,
  schemas: { version: number; schema: string; fingerprint: string }[],
  declaredStatus: EventTypeDefinition['status'],
): PlannedChange {
  const type = registered.name;
  const refused: string[] = [];
  for (const r of registered.versions) {
    const d = schemas.find((s) => s.version === r.version);
    if (d === undefined)
      refused.push(`v${r.version} is registered but missing from the folder (versions are never removed)`);
    else if (d.fingerprint !== r.fingerprint) {
      refused.push(
        `v${r.version} differs from the registered v${r.version} (versions are immutable: add v${schemas.length + 1})`,
      );
    }
  }
  if (definition.partitioning !== registered.partitioning) {
    refused.push(
      `partitioning cannot change (${registered.partitioning} → ${definition.partitioning}): register a new type`,
    );
  }
  if (registered.status !== 'active' && declaredStatus === 'active') {
    refused.push(`the type is ${registered.status}: a retired type does not come back (register a new name)`);
  }
  if (refused.length > 0) return { type, action: 'refused', changes: refused };

  const newVersions = schemas.filter((s) => s.version > registered.versions.length);
  const changes: string[] = newVersions.map((s) => `+ v${s.version} (${s.fingerprint.slice(0, 12)})`);
  for (const key of UPDATABLE) {
    if (definition[key] !== registered[key])
      changes.push(`${key}: ${String(registered[key])} → ${String(definition[key])}`);
  }
  const retiring = registered.status === 'active' && declaredStatus !== 'active';
  if (retiring) changes.push('status: active → retiring');
  const status = retiring ? 'retiring' : registered.status;
  if (changes.length === 0) return { type, action: 'unchanged', changes: [] };
  return {
    type,
    action: retiring ? 'retire' : newVersions.length > 0 ? 'new_version' : 'update',
    changes,
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
