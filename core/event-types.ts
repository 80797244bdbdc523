/**
 * Event types: the domain model, and loading the declared types from `schemas/`.
 *
 * A type is a folder `schemas/<Name>/` with `type.json` (definition) and `v1.avsc`, `v2.avsc`, …
 * (its Avro schema versions, numbered from 1 without gaps). Every version must be one the pipeline
 * can carry (core/schema-limits.ts) and evolve from the earlier ones as the type's compatibility
 * mode asks (core/schema-evolution.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import avro from 'avsc';
import { parseDurationMs } from './durations.js';
import { EventTypeInvalid, type Refusal } from './errors.js';
import { HOUR_MS } from './hours.js';
import {
  COMPATIBILITY_MODES,
  type CompatibilityMode,
  checkEvolution,
  DEFAULT_COMPATIBILITY,
} from './schema-evolution.js';
import { carriageProblems } from './schema-limits.js';

export const TIERS = ['high', 'normal', 'low'] as const;
export const PARTITIONINGS = ['hourly', 'daily'] as const;
export const STORAGES = ['files', 'warehouse'] as const;
export const STATUSES = ['active', 'retiring', 'retired'] as const;
export type Tier = (typeof TIERS)[number];
export type Partitioning = (typeof PARTITIONINGS)[number];
export type Storage = (typeof STORAGES)[number];
export type TypeStatus = (typeof STATUSES)[number];
export type { CompatibilityMode };

/** Event type names: PascalCase-friendly identifiers, 2–64 characters. */
export const TYPE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{1,63}$/;

export interface SchemaVersion {
  readonly version: number;
  /** The Avro schema as declared (JSON). */
  readonly schema: unknown;
  /** The parsed Avro type. */
  readonly type: avro.Type;
  /** SHA-256 of the schema's Parsing Canonical Form, hex. */
  readonly fingerprint: string;
}

export interface EventTypeDefinition {
  readonly name: string;
  readonly owner: string;
  readonly description: string;
  readonly tier: Tier;
  readonly partitioning: Partitioning;
  /** Where final partitions land: `files` (Hive-style files) or `warehouse` (files plus a warehouse table). */
  readonly storage: Storage;
  readonly retentionDays: number;
  readonly status: TypeStatus;
  /**
   * Which new versions the type accepts (README "Event types"); absent: `backward_transitive`.
   * Definitions read from a folder, the API or the registry always have it.
   */
  readonly compatibility?: CompatibilityMode;
  /**
   * How far back dedup looks for an event's (producer, id): whole hours, `"6h"`, `"7d"`
   * (README "The dedup window"); absent: `"1h"`, the previous partition. Definitions read from a
   * folder, the API or the registry always have it, written as `formatDedupWindow` writes it.
   */
  readonly dedupWindow?: string;
}

/** The fields of a definition (`type.json`), in the order they are shown. */
export const DEFINITION_FIELDS = [
  'name',
  'owner',
  'description',
  'tier',
  'partitioning',
  'storage',
  'retentionDays',
  'status',
  'compatibility',
  'dedupWindow',
] as const;

const DAY_MS = 24 * HOUR_MS;
export const DEFAULT_DEDUP_WINDOW = '1h';
/** The longest dedup window (the id indexes it reads grow with it). */
export const MAX_DEDUP_WINDOW_MS = 30 * DAY_MS;

/** A dedup window in ms as definitions write it: whole days as `Nd`, else `Nh`. */
export function formatDedupWindow(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS}d` : `${ms / HOUR_MS}h`;
}

/** The dedup window of a definition, in ms (the default when it has none). */
export function dedupWindowMs(def: EventTypeDefinition): number {
  return parseDurationMs(def.dedupWindow ?? DEFAULT_DEDUP_WINDOW, 'hd') ?? HOUR_MS;
}

/** The dedup window of a definition as definitions write it (the default when it has none). */
export function dedupWindowOf(def: EventTypeDefinition): string {
  return formatDedupWindow(dedupWindowMs(def));
}

export interface EventType extends EventTypeDefinition {
  /** Schema versions, ascending; never empty. */
  readonly versions: readonly SchemaVersion[];
}

export function latestVersion(type: EventType): SchemaVersion {
  return type.versions[type.versions.length - 1] as SchemaVersion;
}

/** The bus topic of a type. */
export function topicFor(typeName: string): string {
  return `hourglass.${typeName}`;
}

/** The ETL consumer's subscription of a type. */
export function subscriptionFor(typeName: string): string {
  return `hourglass.${typeName}.etl`;
}

export function parseSchema(typeName: string, version: number, schema: unknown, file?: string): SchemaVersion {
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'auto' });
  } catch (err) {
    throw new EventTypeInvalid(
      { type: typeName, file, rule: `not a valid Avro schema: ${(err as Error).message}` },
      { cause: err },
    );
  }
  if (type.typeName !== 'record') {
    throw new EventTypeInvalid({ type: typeName, file, rule: 'the schema must be an Avro record' });
  }
  return { version, schema, type, fingerprint: type.fingerprint('sha256').toString('hex') };
}

/** The compatibility mode of a definition (the default when it has none). */
export function compatibilityOf(def: EventTypeDefinition): CompatibilityMode {
  return def.compatibility ?? DEFAULT_COMPATIBILITY;
}

/**
 * Refuses a schema version the pipeline cannot carry (recursive types, colliding columns, too
 * deep nesting: core/schema-limits.ts), naming each rule.
 */
export function assertCarriable(typeName: string, version: SchemaVersion, file?: string): void {
  const problems = carriageProblems(version.type, version.schema);
  if (problems.length === 0) return;
  const refusals: Refusal[] = problems.map((p) => ({ ...p, message: `v${version.version}: ${p.message}` }));
  throw new EventTypeInvalid(
    { type: typeName, file, rule: refusals.map((r) => `${r.message} (${r.rule})`).join('; ') },
    { refusals },
  );
}

/**
 * The refusal for a type name equal, ignoring case, to another type's (`endsong` beside
 * `EndSong`): query views are named after types and DuckDB compares names ignoring case, as do
 * object paths on case-insensitive disks. `others` are the names already taken (registered, or
 * other folders of one plan); null when none conflicts.
 */
export function nameConflict(name: string, others: Iterable<string>): Refusal | null {
  const lower = name.toLowerCase();
  const clash = [...others].filter((o) => o !== name && o.toLowerCase() === lower);
  if (clash.length === 0) return null;
  return {
    path: 'name',
    rule: 'name_conflict',
    message: `${name} differs from ${clash.join(', ')} only by case; type names must differ ignoring case (query views and object paths compare them so)`,
  };
}

/** Checks that `reader` can read data written with `writer` (Avro resolution rules). */
export function canRead(reader: SchemaVersion, writer: SchemaVersion): string | null {
  try {
    reader.type.createResolver(writer.type);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

export function validateDefinition(raw: unknown, file: string): EventTypeDefinition {
  const fail = (rule: string): never => {
    throw new EventTypeInvalid({ type: String((raw as { name?: unknown })?.name ?? '?'), file, rule });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return fail('the definition must be a JSON object');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r))
    if (!(DEFINITION_FIELDS as readonly string[]).includes(key)) fail(`unknown field "${key}"`);
  if (typeof r.name !== 'string' || !TYPE_NAME_PATTERN.test(r.name)) {
    fail('name must be 2–64 letters, digits or "_", starting with a letter');
  }
  if (typeof r.owner !== 'string' || r.owner.trim() === '') fail('owner must be a non-empty string');
  if (r.description !== undefined && typeof r.description !== 'string') fail('description must be a string');
  const oneOf = <T extends string>(key: string, values: readonly T[], dflt?: T): T => {
    const v = r[key] ?? dflt;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      fail(`${key} must be one of ${values.join(', ')}`);
    return v as T;
  };
  const tier = oneOf('tier', TIERS);
  const partitioning = oneOf('partitioning', PARTITIONINGS, 'hourly');
  const storage = oneOf('storage', STORAGES, 'files');
  const status = oneOf('status', STATUSES, 'active');
  const compatibility = oneOf('compatibility', COMPATIBILITY_MODES, DEFAULT_COMPATIBILITY);
  const retentionDays = r.retentionDays ?? 30;
  if (typeof retentionDays !== 'number' || !Number.isInteger(retentionDays) || retentionDays < 1) {
    fail('retentionDays must be a positive integer');
  }
  const dedupWindow = checkDedupWindow(
    r.dedupWindow ?? DEFAULT_DEDUP_WINDOW,
    retentionDays as number,
    r.name as string,
    file,
  );
  return {
    name: r.name as string,
    owner: r.owner as string,
    description: (r.description as string | undefined) ?? '',
    tier,
    partitioning,
    storage,
    retentionDays: retentionDays as number,
    status,
    compatibility,
    dedupWindow,
  };
}

/**
 * A valid `dedupWindow` written as `formatDedupWindow` writes it; refuses (naming the field and the
 * rule) anything but whole hours from 1 h to 30 d, or a window longer than the type's retention
 * (the id indexes it reads are deleted with their partitions).
 */
function checkDedupWindow(raw: unknown, retentionDays: number, type: string, file: string): string {
  const refuse = (rule: string, message: string): never => {
    throw new EventTypeInvalid(
      { type, file, rule: `${message} (${rule})` },
      { refusals: [{ path: 'dedupWindow', rule, message }] },
    );
  };
  const ms = typeof raw === 'string' ? parseDurationMs(raw, 'hd') : null;
  if (ms === null || ms % HOUR_MS !== 0 || ms < HOUR_MS || ms > MAX_DEDUP_WINDOW_MS) {
    refuse(
      'dedup_window_invalid',
      `dedupWindow must be whole hours from 1h to 30d, written like "6h" or "7d" (got ${JSON.stringify(raw)})`,
    );
  }
  if ((ms as number) > retentionDays * DAY_MS) {
    refuse(
      'dedup_window_beyond_retention',
      `dedupWindow ${formatDedupWindow(ms as number)} is longer than the retention (${retentionDays} d): the id indexes it reads are deleted with their partitions`,
    );
  }
  return formatDedupWindow(ms as number);
}

/** Loads one type folder. Throws EventTypeInvalid naming the file and the rule. */
export async function loadEventTypeDir(dir: string): Promise<EventType> {
  const defFile = join(dir, 'type.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(defFile, 'utf8'));
  } catch (err) {
    throw new EventTypeInvalid(
      { type: dir, file: defFile, rule: `unreadable: ${(err as Error).message}` },
      { cause: err },
    );
  }
  const def = validateDefinition(raw, defFile);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.avsc'));
  const numbered = files.map((f) => {
    const m = /^v(\d+)\.avsc$/.exec(f);
    if (!m)
      throw new EventTypeInvalid({ type: def.name, file: join(dir, f), rule: 'schema files are named v<N>.avsc' });
    return { file: f, version: Number(m[1]) };
  });
  numbered.sort((a, b) => a.version - b.version);
  if (numbered.length === 0)
    throw new EventTypeInvalid({ type: def.name, file: dir, rule: 'no schema version (v1.avsc)' });
  const versions: SchemaVersion[] = [];
  for (const [i, n] of numbered.entries()) {
    const file = join(dir, n.file);
    if (n.version !== i + 1) throw new EventTypeInvalid({ type: def.name, file, rule: `expected v${i + 1}.avsc next` });
    let schema: unknown;
    try {
      schema = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new EventTypeInvalid({ type: def.name, file, rule: `not JSON: ${(err as Error).message}` }, { cause: err });
    }
    const parsed = parseSchema(def.name, n.version, schema, file);
    assertCarriable(def.name, parsed, file);
    const problems = checkEvolution(parsed, versions, compatibilityOf(def));
    if (problems.length > 0) {
      throw new EventTypeInvalid(
        { type: def.name, file, rule: problems.map((p) => `${p.message} (${p.rule})`).join('; ') },
        { refusals: problems },
      );
    }
    versions.push(parsed);
  }
  return { ...def, versions };
}

/** Loads every type folder under `root` (folders without type.json are ignored). */
export async function loadEventTypes(root: string): Promise<EventType[]> {
  const entries = await readdir(root, { withFileTypes: true });
  const types: EventType[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const dir = join(root, e.name);
    const files = await readdir(dir);
    if (!files.includes('type.json')) continue;
    const t = await loadEventTypeDir(dir);
    if (t.name !== e.name) {
      throw new EventTypeInvalid({
        type: t.name,
        file: join(dir, 'type.json'),
        rule: `folder name ${e.name} differs from the type name`,
      });
    }
    types.push(t);
  }
  return types.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The in-memory catalogue the ingress validates against: no database round trip per event.
 * `replace` swaps the whole set atomically (new types and versions without restart).
 */
export class EventCatalog {
  private byName = new Map<string, EventType>();
  constructor(types: readonly EventType[] = []) {
    this.replace(types);
  }
  replace(types: readonly EventType[]): void {
    this.byName = new Map(types.map((t) => [t.name, t]));
  }
  get(name: string): EventType | undefined {
    return this.byName.get(name);
  }
  list(): EventType[] {
    return [...this.byName.values()];
  }
}
