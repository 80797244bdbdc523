/**
 * Schema evolution rules: which new versions a type accepts, by its compatibility mode, with the
 * meanings of Confluent Schema Registry's modes and Avro's resolution rules, including defaults
 * and aliases (https://avro.apache.org/docs/1.11.1/specification/#schema-resolution):
 *
 * - `backward`: the new version reads data written with the previous one; `backward_transitive`
 *   (the default): with every earlier one;
 * - `forward`: the previous version reads data written with the new one; `forward_transitive`:
 *   every earlier one does;
 * - `full`, `full_transitive`: both;
 * - `none`: no check of its own.
 *
 * Whatever the mode, the pipeline stores every event in the type's latest version (the ETL
 * resolves older versions' data into it), so a new version must also read the data of every
 * earlier version: the backward-transitive check always runs, and a refusal that only it finds
 * says so.
 *
 * Each refusal names the field path, the rule and the versions, once: the same problem found
 * against several earlier versions is one refusal naming them all.
 *
 * The structural walk below explains the problems; avsc's resolver, which is what the ETL uses
 * to read old data, has the last word (a pair it refuses is refused even if the walk found
 * nothing to say).
 */
import type avro from 'avsc';

export const COMPATIBILITY_MODES = [
  'backward_transitive',
  'backward',
  'forward',
  'forward_transitive',
  'full',
  'full_transitive',
  'none',
] as const;
export type CompatibilityMode = (typeof COMPATIBILITY_MODES)[number];
/** Today's behaviour, and what a type without a `compatibility` gets. */
export const DEFAULT_COMPATIBILITY: CompatibilityMode = 'backward_transitive';

/** Why one schema cannot read another's data. */
export interface Incompatibility {
  /** Where: `field1.field2`, with `[]` for array items, `{}` for map values, `<branch>` for union branches. */
  readonly path: string;
  /** Machine-readable rule broken. */
  readonly rule:
    | 'type_renamed'
    | 'type_changed'
    | 'field_without_default'
    | 'field_renamed_without_alias'
    | 'field_removed'
    | 'enum_symbol_removed'
    | 'enum_symbol_added'
    | 'fixed_size_changed'
    | 'union_branch_unreadable'
    | 'unresolvable';
  readonly message: string;
}

/**
 * Which way a check reads: `backward` — the new version reads the old one's data (the reader is
 * new); `forward` — the old version reads the new one's data (the reader is old).
 */
export type Direction = 'backward' | 'forward';

interface T {
  readonly typeName: string;
  readonly name?: string;
  readonly aliases?: string[];
  readonly fields?: F[];
  readonly symbols?: string[];
  readonly default?: unknown;
  readonly size?: number;
  readonly itemsType?: T;
  readonly valuesType?: T;
  readonly types?: T[];
}
interface F {
  readonly name: string;
  readonly type: T;
  readonly aliases: string[];
  defaultValue(): unknown;
}

const PROMOTIONS: Record<string, readonly string[]> = {
  int: ['long', 'float', 'double'],
  long: ['float', 'double'],
  float: ['double'],
  string: ['bytes'],
  bytes: ['string'],
};

function kind(t: T): string {
  return t.typeName.startsWith('union') ? 'union' : t.typeName;
}

function shortName(name: string | undefined): string {
  return (name ?? '').split('.').pop() as string;
}

/** Whether a reader's named type matches a writer's by name or by one of the reader's aliases. */
function namesMatch(reader: T, writer: T): boolean {
  const w = shortName(writer.name);
  return shortName(reader.name) === w || (reader.aliases ?? []).some((a) => shortName(a) === w);
}

function describe(t: T): string {
  const k = kind(t);
  if (k === 'union') return `union [${(t.types ?? []).map(describe).join(', ')}]`;
  return t.name ? `${k} ${shortName(t.name)}` : k;
}

/** Whether `reader` can read `writer` data, at the top of the two types (no nested detail). */
function shallowMatch(reader: T, writer: T): boolean {
  const r = kind(reader);
  const w = kind(writer);
  if (r === w) {
    if (r === 'record' || r === 'enum' || r === 'fixed') return namesMatch(reader, writer);
    return true;
  }
  return (PROMOTIONS[w] ?? []).includes(r);
}

function join(path: string, part: string): string {
  return path === '' ? part : '[{<'.includes(part.charAt(0)) ? `${path}${part}` : `${path}.${part}`;
}

/** Levenshtein distance, for telling a renamed field from an unrelated one. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/**
 * Whether two field names look like one field renamed: one contains the other (`userId`, `user`),
 * or they differ by a few letters (`userId`, `userID`, `usrId`). Unrelated names (`userId`,
 * `country`) are not a rename, whatever their types.
 */
export function looksRenamed(from: string, to: string): boolean {
  const a = from.toLowerCase();
  const b = to.toLowerCase();
  if (a.length >= 3 && b.length >= 3 && (a.includes(b) || b.includes(a))) return true;
  return distance(a, b) <= Math.max(1, Math.floor(Math.min(a.length, b.length) / 3));
}

/** Every reason `reader` cannot read data written with `writer`. */
export function incompatibilities(reader: avro.Type, writer: avro.Type, direction: Direction): Incompatibility[] {
  const out: Incompatibility[] = [];
  walk(reader as unknown as T, writer as unknown as T, '', out, new Set(), direction);
  return out;
}

function walk(reader: T, writer: T, path: string, out: Incompatibility[], seen: Set<string>, dir: Direction): void {
  const at = path === '' ? 'the schema' : path;
  const r = kind(reader);
  const w = kind(writer);
  if (w === 'union') {
    // every branch the writer may have used must be readable
    for (const branch of writer.types ?? []) walk(reader, branch, join(path, `<${describe(branch)}>`), out, seen, dir);
    return;
  }
  if (r === 'union') {
    const target = (reader.types ?? []).find((b) => shallowMatch(b, writer));
    if (target === undefined) {
      out.push({
        path: at,
        rule: 'union_branch_unreadable',
        message: `${at}: the union ${describe(reader)} has no branch that reads ${describe(writer)} data`,
      });
    } else walk(target, writer, path, out, seen, dir);
    return;
  }
  if (!shallowMatch(reader, writer)) {
    const named = ['record', 'enum', 'fixed'];
    if (r === w && named.includes(r)) {
      const older = shortName((dir === 'backward' ? writer : reader).name);
      const newer = shortName((dir === 'backward' ? reader : writer).name);
      out.push({
        path: at,
        rule: 'type_renamed',
        message:
          dir === 'backward'
            ? `${at}: ${r} ${older} was renamed to ${newer} without an alias "${older}"`
            : `${at}: ${r} ${older} was renamed to ${newer}, a name the older version does not know (aliases on the new version do not help it)`,
      });
    } else {
      out.push({
        path: at,
        rule: 'type_changed',
        message: `${at}: ${describe(writer)} cannot be read as ${describe(reader)} (allowed promotions: int→long/float/double, long→float/double, float→double, string↔bytes)`,
      });
    }
    return;
  }
  switch (r) {
    case 'record': {
      const key = `${reader.name}|${writer.name}`;
      if (seen.has(key)) return; // recursive types: checked once
      seen.add(key);
      const writerFields = writer.fields ?? [];
      for (const f of reader.fields ?? []) {
        const names = [f.name, ...f.aliases];
        const match = writerFields.find((wf) => names.includes(wf.name));
        const fieldPath = join(path, f.name);
        if (match === undefined) {
          if (f.defaultValue() !== undefined) continue;
          out.push(missingField(f, writerFields, reader.fields ?? [], fieldPath, dir));
          continue;
        }
        walk(f.type, match.type, fieldPath, out, seen, dir);
      }
      return;
    }
    case 'enum': {
      const symbols = reader.symbols ?? [];
      if (reader.default !== undefined) return;
      const missing = (writer.symbols ?? []).filter((s) => !symbols.includes(s));
      if (missing.length > 0) {
        const listed = missing.map((s) => `"${s}"`).join(', ');
        out.push(
          dir === 'backward'
            ? {
                path: at,
                rule: 'enum_symbol_removed',
                message: `${at}: enum ${shortName(reader.name)} dropped ${listed} without an enum "default" to read them as`,
              }
            : {
                path: at,
                rule: 'enum_symbol_added',
                message: `${at}: enum ${shortName(reader.name)} gained ${listed}, which the older version cannot read (its enum has no "default")`,
              },
        );
      }
      return;
    }
    case 'fixed':
      if (reader.size !== writer.size) {
        out.push({
          path: at,
          rule: 'fixed_size_changed',
          message: `${at}: fixed ${shortName(reader.name)} changed size from ${(dir === 'backward' ? writer : reader).size} to ${(dir === 'backward' ? reader : writer).size}`,
        });
      }
      return;
    case 'array':
      walk(reader.itemsType as T, writer.itemsType as T, join(path, '[]'), out, seen, dir);
      return;
    case 'map':
      walk(reader.valuesType as T, writer.valuesType as T, join(path, '{}'), out, seen, dir);
      return;
    default:
      return;
  }
}

/** A field the reader has, without a default, that the writer's data lacks. */
function missingField(
  f: F,
  writerFields: readonly F[],
  readerFields: readonly F[],
  fieldPath: string,
  dir: Direction,
): Incompatibility {
  if (dir === 'forward') {
    return {
      path: fieldPath,
      rule: 'field_removed',
      message: `${fieldPath}: removed (or renamed), but the older version has no default for it`,
    };
  }
  // a writer field the reader does not read, of a matching type and a similar name: a rename
  const gone = writerFields.filter(
    (wf) => !readerFields.some((rf) => rf.name === wf.name || rf.aliases.includes(wf.name)),
  );
  const renamed = gone.find((wf) => shallowMatch(f.type, wf.type) && looksRenamed(wf.name, f.name));
  return renamed
    ? {
        path: fieldPath,
        rule: 'field_renamed_without_alias',
        message: `${fieldPath}: looks like field "${renamed.name}" renamed; add "aliases": ["${renamed.name}"] to it (or a default)`,
      }
    : {
        path: fieldPath,
        rule: 'field_without_default',
        message: `${fieldPath}: new field without a default: data written before it cannot be read (add a "default")`,
      };
}

/** The checks a mode asks for against one earlier version (`last`: the version just before the new one). */
function modeChecks(mode: CompatibilityMode, last: boolean): { backward: boolean; forward: boolean } {
  switch (mode) {
    case 'backward':
      return { backward: last, forward: false };
    case 'backward_transitive':
      return { backward: true, forward: false };
    case 'forward':
      return { backward: false, forward: last };
    case 'forward_transitive':
      return { backward: false, forward: true };
    case 'full':
      return { backward: last, forward: last };
    case 'full_transitive':
      return { backward: true, forward: true };
    case 'none':
      return { backward: false, forward: false };
  }
}

interface Found {
  readonly direction: Direction;
  readonly problem: Incompatibility;
  readonly versions: number[];
  /** Whether every pair was asked for by the mode (false: only the pipeline needs it). */
  byMode: boolean;
}

/**
 * Checks a candidate version against the earlier ones under `mode` (and, whatever the mode, for
 * reading every earlier version's data: the pipeline stores events in the latest version).
 * Returns the problems, each once with the versions it concerns; empty when the version is
 * acceptable.
 */
export function checkEvolution(
  candidate: { version: number; type: avro.Type },
  earlier: readonly { version: number; type: avro.Type }[],
  mode: CompatibilityMode = DEFAULT_COMPATIBILITY,
): Incompatibility[] {
  const last = earlier[earlier.length - 1];
  if (last === undefined) return [];
  const top = candidate.type as unknown as T;
  const lastTop = last.type as unknown as T;
  if (shortName(top.name) !== shortName(lastTop.name)) {
    return [
      {
        path: 'the schema',
        rule: 'type_renamed',
        message: `v${candidate.version} renames the record ${shortName(lastTop.name)} of v${last.version} to ${shortName(top.name)}: an event type's record name cannot change (aliases do not help here)`,
      },
    ];
  }
  const found = new Map<string, Found>();
  const note = (direction: Direction, problem: Incompatibility, version: number, byMode: boolean): void => {
    const key = JSON.stringify([direction, problem.path, problem.rule, problem.message]);
    const f = found.get(key);
    if (f === undefined) found.set(key, { direction, problem, versions: [version], byMode });
    else {
      f.versions.push(version);
      f.byMode &&= byMode;
    }
  };
  for (const e of earlier) {
    const asked = modeChecks(mode, e === last);
    // backward: always (the pipeline needs it); forward: when the mode asks
    for (const p of pairCheck(candidate.type, e.type, 'backward')) note('backward', p, e.version, asked.backward);
    if (asked.forward)
      for (const p of pairCheck(e.type, candidate.type, 'forward')) note('forward', p, e.version, true);
  }
  return [...found.values()].map(({ direction, problem, versions, byMode }) => {
    const olds = versions.map((v) => `v${v}`).join(', ');
    const pair =
      direction === 'backward'
        ? `v${candidate.version} cannot read ${olds} data`
        : `${olds} cannot read v${candidate.version} data`;
    const why = byMode
      ? ''
      : ` (needed whatever the compatibility mode: the pipeline stores every event in the latest version)`;
    return { ...problem, message: `${pair}: ${problem.message}${why}` };
  });
}

/** The walk's problems for one pair, or avsc's reason when only its resolver refuses the pair. */
function pairCheck(reader: avro.Type, writer: avro.Type, direction: Direction): Incompatibility[] {
  const found = incompatibilities(reader, writer, direction);
  if (found.length > 0) return found;
  try {
    reader.createResolver(writer);
    return [];
  } catch (err) {
    return [{ path: 'the schema', rule: 'unresolvable', message: (err as Error).message }];
  }
}
