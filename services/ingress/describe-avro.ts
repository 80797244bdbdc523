/**
 * Turns avsc validation failures into field paths and rules a producer can act on:
 * `payload.viewport.height: required field missing (expected int)`.
 */
import type avro from 'avsc';

export interface SchemaProblem {
  /** Dotted path from the payload root, e.g. `payload.experiments.0`. */
  readonly path: string;
  /** The broken rule, e.g. `expected long, got string`. */
  readonly rule: string;
}

/** Returns the first problem of an invalid value (or null if it is valid). */
export function findSchemaProblem(type: avro.Type, value: unknown, root = 'payload'): SchemaProblem | null {
  let problem: SchemaProblem | null = null;
  type.isValid(value, {
    noUndeclaredFields: true,
    errorHook(path: string[], val: unknown, t: avro.Type) {
      if (problem !== null) return;
      const at = [root, ...path].join('.');
      if (t.typeName === 'record' && isPlainObject(val)) {
        const fields = new Set((t as avro.types.RecordType).fields.map((f) => f.name));
        const extra = Object.keys(val).find((k) => !fields.has(k));
        if (extra !== undefined) {
          problem = { path: `${at}.${extra}`, rule: 'undeclared field (not in the schema)' };
          return;
        }
      }
      if (val === undefined) {
        problem = { path: at, rule: `required field missing (expected ${describeType(t)})` };
        return;
      }
      problem = { path: at, rule: `expected ${describeType(t)}, got ${describeValue(val)}` };
    },
  });
  return problem;
}

export function describeType(t: avro.Type): string {
  switch (t.typeName) {
    case 'enum': {
      const symbols = (t as avro.types.EnumType).symbols;
      const shown = symbols.length > 8 ? [...symbols.slice(0, 8), '…'] : symbols;
      return `one of ${shown.join(', ')}`;
    }
    case 'record':
    case 'error':
      return `record ${shortName(t.name)}`;
    case 'map':
      return `map of ${describeType((t as avro.types.MapType).valuesType)}`;
    case 'array':
      return `array of ${describeType((t as avro.types.ArrayType).itemsType)}`;
    case 'fixed':
      return `fixed(${(t as avro.types.FixedType).size})`;
    case 'union:unwrapped':
    case 'union:wrapped':
      return (t as avro.types.UnwrappedUnionType).types.map((b: avro.Type) => describeType(b)).join(' or ');
    case 'long':
      return 'long (a whole number within ±2^53)';
    default:
      return t.typeName;
  }
}

function shortName(name: string | undefined): string {
  if (!name) return '(anonymous)';
  return name.slice(name.lastIndexOf('.') + 1);
}

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number')
    return Number.isInteger(v)
      ? Number.isSafeInteger(v)
        ? 'integer'
        : 'integer beyond ±2^53'
      : 'number with a fraction';
  if (typeof v === 'string') {
    return v.length > 40 ? `string "${v.slice(0, 40)}…"` : `string ${JSON.stringify(v)}`;
  }
  return typeof v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
