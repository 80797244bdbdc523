/**
 * Schema evolution rules (DESIGN.md point 10): a new version must read data written with every
 * earlier version (backward transitive), by Avro's schema resolution rules, including defaults and
 * aliases (https://avro.apache.org/docs/1.11.1/specification/#schema-resolution). Each refusal
 * names the field path and the rule, so an owner knows what to change.
 *
 * The structural walk below explains the problems; avsc's resolver, which is what the ETL uses
 * to read old data, has the last word (a schema it refuses is refused even if the walk found
 * nothing to say).
 */
import type avro from 'avsc';

/** Why a reader schema cannot read a writer schema's data. */
export interface Incompatibility {
  /** Where: `field1.field2`, with `[]` for array items, `{}` for map values, `<branch>` for union branches. */
  readonly path: string;
  /** Machine-readable rule broken. */
  readonly rule:
    | 'type_renamed'
    | 'type_changed'
    | 'field_without_default'
    | 'field_renamed_without_alias'
    | 'enum_symbol_removed'
    | 'fixed_size_changed'
    | 'union_branch_unreadable'
    | 'unresolvable';
  readonly message: string;
}

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

/** Every reason `reader` cannot read data written with `writer`. */
export function incompatibilities(reader: avro.Type, writer: avro.Type): Incompatibility[] {
  const out: Incompatibility[] = [];
  walk(reader as unknown as T, writer as unknown as T, '', out, new Set());
  return out;
}

function walk(reader: T, writer: T, path: string, out: Incompatibility[], seen: Set<string>): void {
  const at = path === '' ? 'the schema' : path;
  const r = kind(reader);
  const w = kind(writer);
  if (w === 'union') {
    // every branch the writer may have used must be readable
    for (const branch of writer.types ?? []) walk(reader, branch, join(path, `<${describe(branch)}>`), out, seen);
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
    } else walk(target, writer, path, out, seen);
    return;
  }
  if (!shallowMatch(reader, writer)) {
    const named = ['record', 'enum', 'fixed'];
    if (r === w && named.includes(r)) {
      out.push({
        path: at,
        rule: 'type_renamed',
        message: `${at}: ${r} ${shortName(writer.name)} was renamed to ${shortName(reader.name)} without an alias "${shortName(writer.name)}"`,
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
          const gone = writerFields.filter(
            (wf) => !(reader.fields ?? []).some((rf) => rf.name === wf.name || rf.aliases.includes(wf.name)),
          );
          const renamed = gone.find((wf) => shallowMatch(f.type, wf.type));
          out.push(
            renamed
              ? {
                  path: fieldPath,
                  rule: 'field_renamed_without_alias',
                  message: `${fieldPath}: looks like field "${renamed.name}" renamed; add "aliases": ["${renamed.name}"] to it (or a default)`,
                }
              : {
                  path: fieldPath,
                  rule: 'field_without_default',
                  message: `${fieldPath}: new field without a default: data written before it cannot be read (add a "default")`,
                },
          );
          continue;
        }
        walk(f.type, match.type, fieldPath, out, seen);
      }
      return;
    }
    case 'enum': {
      const symbols = reader.symbols ?? [];
      if (reader.default !== undefined) return;
      const missing = (writer.symbols ?? []).filter((s) => !symbols.includes(s));
      if (missing.length > 0) {
        out.push({
          path: at,
          rule: 'enum_symbol_removed',
          message: `${at}: enum ${shortName(reader.name)} dropped ${missing.map((s) => `"${s}"`).join(', ')} without an enum "default" to read them as`,
        });
      }
      return;
    }
    case 'fixed':
      if (reader.size !== writer.size) {
        out.push({
          path: at,
          rule: 'fixed_size_changed',
          message: `${at}: fixed ${shortName(reader.name)} changed size from ${writer.size} to ${reader.size}`,
        });
      }
      return;
    case 'array':
      walk(reader.itemsType as T, writer.itemsType as T, join(path, '[]'), out, seen);
      return;
    case 'map':
      walk(reader.valuesType as T, writer.valuesType as T, join(path, '{}'), out, seen);
      return;
    default:
      return;
  }
}

/**
 * Checks a candidate version against every earlier one (backward transitive). Returns the problems,
 * each prefixed with the version it cannot read; empty when the version is acceptable.
 */
export function checkEvolution(
  candidate: { version: number; type: avro.Type },
  earlier: readonly { version: number; type: avro.Type }[],
): Incompatibility[] {
  const out: Incompatibility[] = [];
  const top = candidate.type as unknown as T;
  for (const e of earlier) {
    const writer = e.type as unknown as T;
    if (shortName(top.name) !== shortName(writer.name)) {
      out.push({
        path: 'the schema',
        rule: 'type_renamed',
        message: `v${candidate.version} renames the record ${shortName(writer.name)} of v${e.version} to ${shortName(top.name)}: an event type's record name cannot change (aliases do not help here)`,
      });
      continue;
    }
    const found = incompatibilities(candidate.type, e.type).map((p) => ({
      ...p,
      message: `v${candidate.version} cannot read v${e.version} data: ${p.message}`,
    }));
    if (found.length === 0) {
      try {
        candidate.type.createResolver(e.type);
      } catch (err) {
        found.push({
          path: 'the schema',
          rule: 'unresolvable',
          message: `v${candidate.version} cannot read v${e.version} data: ${(err as Error).message}`,
        });
      }
    }
    out.push(...found);
  }
  return out;
}
