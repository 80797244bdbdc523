/**
 * Maps JSON payloads onto avsc values (`jsonToAvro`) and turns avsc validation failures into field
 * paths and rules a producer can act on: `payload.viewport.height: required field missing (expected int)`.
 */

import type avro from 'avsc';
import { MIN_EXACT_LONG } from '../../core/schema-limits.js';

export interface SchemaProblem {
  /** Path from the payload root, e.g. `payload.experiments.0` or `payload.tags["a.b"]` (see appendPath). */
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
      const at = path.reduce(appendPath, root);
      if (t.typeName === 'record' && isPlainObject(val)) {
        const fields = new Set((t as avro.types.RecordType).fields.map((f) => f.name));
        const extra = Object.keys(val).find((k) => !fields.has(k));
        if (extra !== undefined) {
          problem = { path: appendPath(at, extra), rule: 'undeclared field (not in the schema)' };
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

const PLAIN_KEY = /^[A-Za-z0-9_]+$/;

/**
 * Appends a key to a rejection path: `.key` for letters, digits and `_` (field names, array
 * indices), else `["key"]` as a JSON string, so map keys and union branch names with dots, spaces
 * or nothing at all stay unambiguous: `payload.tags["a.b"]`, `payload.ref["com.example.Id"].value`.
 */
export function appendPath(path: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** Containers (records, maps, arrays, wrapped unions) a payload may nest; avsc recurses per level. */
export const MAX_PAYLOAD_DEPTH = 100;
export { MIN_EXACT_LONG };

/** The payload as avsc values, or the first problem (the value is then not checked further). */
export type AvroValue =
  | { readonly value: unknown; readonly problem: null }
  | { readonly value: null; readonly problem: SchemaProblem };

/**
 * Maps a JSON payload onto the values avsc validates and encodes, following the ingress's JSON
 * conventions, and refuses what avsc itself would wrongly let through:
 * - bytes and fixed are strings of characters U+0000–U+00FF, one per byte (Avro's JSON encoding),
 *   or Buffers (the bridge's decoded Avro); in a plain union a string goes to the string or enum
 *   branch if there is one, else to the bytes or fixed branch;
 * - only own properties count: a record field named like an `Object.prototype` member
 *   (`constructor`, `toString`, …) is missing unless given, and an undeclared `constructor` key, an
 *   enum symbol `"toString"` or a wrapped union `{"constructor": …}` are refused (avsc looks these
 *   names up through prototypes: it accepted and dropped or rewrote them, or threw);
 * - an array is not a record (avsc took `[]` for a record whose fields all have defaults);
 * - an object or array where a scalar belongs is refused here (avsc coerced them: `["A"]` was
 *   enum symbol A, and `{"toString": 0}` made it throw);
 * - strings and map keys are Unicode: a lone surrogate (`"\ud800"`, which JSON allows) is refused
 *   (UTF-8 cannot hold it: avsc wrote U+FFFD instead);
 * - a long is at least MIN_EXACT_LONG (avsc accepts from −2^53 + 2 but encodes those wrongly);
 * - at most MAX_PAYLOAD_DEPTH levels of nesting (deeper ones overflowed the stack).
 * Everything else is left to avsc's `isValid`. Objects and arrays are copied only where a value
 * changes; a copied record is a null-prototype object.
 */
export function jsonToAvro(type: avro.Type, payload: unknown, root = 'payload'): AvroValue {
  const walk = walkOf(type);
  if (walk === null) return { value: payload, problem: null };
  try {
    return { value: walk(payload, 0), problem: null };
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    return {
      value: null,
      problem: { path: err.keys.reduce<string>((at, k) => appendPath(at, String(k)), root), rule: err.rule },
    };
  }
}

/** Thrown inside a walk; each level it passes adds its key in front (`within`). */
class Refused {
  readonly keys: (string | number)[] = [];
  constructor(readonly rule: string) {}
}

function within(err: unknown, key: string | number): unknown {
  if (err instanceof Refused) err.keys.unshift(key);
  return err;
}

/**
 * Maps one value of a type (or throws Refused); null when avsc's own check of the type is exact and
 * nothing needs mapping (null, boolean, float, double). Built once per type.
 */
type Walk = (v: unknown, depth: number) => unknown;
const walks = new WeakMap<avro.Type, Walk | null>();

function walkOf(t: avro.Type): Walk | null {
  const known = walks.get(t);
  if (known !== undefined) return known;
  // a recursive type meets itself while its walk is built: it calls through this until then
  let built: Walk | null = null;
  walks.set(t, (v, depth) => (built === null ? v : built(v, depth)));
  built = buildWalk(t);
  walks.set(t, built);
  return built;
}

function buildWalk(t: avro.Type): Walk | null {
  const mismatch = (v: unknown) => new Refused(`expected ${describeType(t)}, got ${describeValue(v)}`);
  const tooDeep = () => new Refused(`nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  switch (t.typeName) {
    case 'int': // avsc's `val | 0` runs an object's own toString: `{"toString": 0}` made it throw
      return (v) => {
        if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v)) throw mismatch(v);
        return v;
      };
    case 'long':
      return (v) => {
        if (typeof v === 'number' && v < MIN_EXACT_LONG && Number.isInteger(v)) throw mismatch(v);
        return v;
      };
    case 'string':
      return (v) => {
        if (typeof v === 'string' && !isWellFormed(v)) throw new Refused(NOT_UNICODE);
        return v;
      };
    case 'bytes':
      return (v) => (typeof v === 'string' && isLatin1(v) ? Buffer.from(v, 'latin1') : v);
    case 'fixed': {
      const size = (t as avro.types.FixedType).size;
      return (v) => (typeof v === 'string' && v.length === size && isLatin1(v) ? Buffer.from(v, 'latin1') : v);
    }
    case 'enum': {
      // avsc looks symbols up in a plain object: "constructor" was a symbol, and `["A"]` was A
      const symbols = new Set((t as avro.types.EnumType).symbols);
      return (v) => {
        if (typeof v === 'string' ? !symbols.has(v) : typeof v === 'object' && v !== null) throw mismatch(v);
        return v;
      };
    }
    case 'array': {
      const items = walkOf((t as avro.types.ArrayType).itemsType);
      if (items === null) return null;
      return (v, depth) => {
        if (!Array.isArray(v)) return v;
        if (depth >= MAX_PAYLOAD_DEPTH) throw tooDeep();
        let copy: unknown[] | null = null;
        for (let i = 0; i < v.length; i++) {
          let c: unknown;
          try {
            c = items(v[i], depth + 1);
          } catch (err) {
            throw within(err, i);
          }
          if (c !== v[i]) {
            copy ??= v.slice();
            copy[i] = c;
          }
        }
        return copy ?? v;
      };
    }
    case 'map': {
      const values = walkOf((t as avro.types.MapType).valuesType);
      return (v, depth) => {
        if (!isPlainObject(v) || Buffer.isBuffer(v)) return v;
        if (depth >= MAX_PAYLOAD_DEPTH) throw tooDeep();
        let copy: Record<string, unknown> | null = null;
        for (const k in v) {
          if (!Object.hasOwn(v, k)) continue;
          if (!isWellFormed(k)) throw within(new Refused(`the key is ${NOT_UNICODE}`), k);
          if (values === null) continue;
          let c: unknown;
          try {
            c = values(v[k], depth + 1);
          } catch (err) {
            throw within(err, k);
          }
          if (c !== v[k]) {
            copy ??= Object.assign(Object.create(null), v) as Record<string, unknown>;
            copy[k] = c;
          }
        }
        return copy ?? v;
      };
    }
    case 'record':
    case 'error':
      return recordWalk(t as avro.types.RecordType, mismatch, tooDeep);
    case 'union:unwrapped': {
      const byBucket = new Map<string, Walk | null>();
      for (const b of (t as avro.types.UnwrappedUnionType).types) byBucket.set(bucketOfType(b), walkOf(b));
      // a string goes to bytes or fixed when no branch takes strings
      if (!byBucket.has('string') && byBucket.has('buffer')) byBucket.set('string', byBucket.get('buffer') ?? null);
      if ([...byBucket.values()].every((w) => w === null)) return null;
      return (v, depth) => {
        const walk = byBucket.get(bucketOfValue(v));
        return walk == null ? v : walk(v, depth);
      };
    }
    case 'union:wrapped': {
      // avsc looks branch names up in a plain object: `{"constructor": 1}` made it throw
      const byName = new Map((t as avro.types.WrappedUnionType).types.map((b) => [b.branchName as string, walkOf(b)]));
      return (v, depth) => {
        if (!isPlainObject(v) || Buffer.isBuffer(v)) return v;
        let name: string | null = null;
        for (const k in v) {
          if (!Object.hasOwn(v, k)) continue;
          if (name !== null) return v; // more than one key: avsc refuses it
          name = k;
        }
        if (name === null) return v;
        if (!byName.has(name)) throw mismatch(v);
        const walk = byName.get(name);
        if (walk == null) return v;
        if (depth >= MAX_PAYLOAD_DEPTH) throw tooDeep();
        let c: unknown;
        try {
          c = walk(v[name], depth + 1);
        } catch (err) {
          throw within(err, name);
        }
        if (c === v[name]) return v;
        const out: Record<string, unknown> = Object.create(null);
        out[name] = c;
        return out;
      };
    }
    default:
      return null;
  }
}

/**
 * A record's walk, generated like avsc's own checkers (a field read per line, with its name in the
 * code, is several times faster than a loop over names). Only own properties count: avsc reads
 * `v.constructor` and looks keys up in a plain object, so a field named like an Object.prototype
 * member was never missing and an undeclared `constructor` key was never undeclared.
 */
function recordWalk(t: avro.types.RecordType, mismatch: (v: unknown) => Refused, tooDeep: () => Refused): Walk {
  const names = t.fields.map((f) => f.name);
  const declared = new Set(names);
  const fieldWalks = t.fields.map((f) => walkOf(f.type));
  /** The fields before the i-th of a record, as a null-prototype object. */
  const copyBefore = (v: Record<string, unknown>, i: number) => {
    const out: Record<string, unknown> = Object.create(null);
    for (const n of names.slice(0, i)) if (Object.hasOwn(v, n)) out[n] = v[n];
    return out;
  };
  /** Called when a record holds other own keys than its fields read: the first undeclared one. */
  const undeclared = (v: Record<string, unknown>) => {
    const extra = Object.keys(v).find((k) => !declared.has(k));
    if (extra !== undefined) throw within(new Refused('undeclared field (not in the schema)'), extra);
  };
  let body = `if (typeof v !== 'object' || v === null || isBuffer(v)) return v;
if (isArray(v)) throw mismatch(v);
if (depth >= maxDepth) throw tooDeep();
var copy = null, present = 0, x, c, k;
`;
  const extra = new Map<string, unknown>();
  for (const [i, name] of names.entries()) {
    const key = JSON.stringify(name);
    if (name in Object.prototype) {
      body += `x = hasOwn(v, ${key}) ? v[${key}] : undefined;
if (x === undefined && copy === null && ${key} in v) copy = copyBefore(v, ${i});
`;
    } else body += `x = v[${key}];\n`;
    body += 'if (x !== undefined) {\n  present++;\n';
    const inline = inlineCheck((t.fields[i] as avro.types.Field).type, i, extra);
    if (inline !== null) {
      // the common scalar fields: checked here, a call per field costs more than the check
      if (inline !== 'false') body += `  if (${inline}) throw within(r${i}(x), ${key});\n`;
      body += `  if (copy !== null) copy[${key}] = x;\n}\n`;
      continue;
    }
    if (fieldWalks[i] !== null) {
      body += `  try { c = w${i}(x, depth + 1); } catch (err) { throw within(err, ${key}); }
  if (c !== x && copy === null) copy = copyBefore(v, ${i});
  if (copy !== null) copy[${key}] = c;
`;
    } else body += `  if (copy !== null) copy[${key}] = x;\n`;
    body += '}\n';
  }
  body += `for (k in v) present--;
if (present !== 0) undeclared(v);
return copy === null ? v : copy;`;
  const params = [
    'isBuffer',
    'isArray',
    'hasOwn',
    'mismatch',
    'tooDeep',
    'maxDepth',
    'within',
    'copyBefore',
    'undeclared',
  ];
  const walkNames = fieldWalks.map((_, i) => `w${i}`);
  // names enter the code only as JSON string literals
  const make = new Function(
    ...params,
    ...walkNames,
    ...extra.keys(),
    `return function walkRecord(v, depth) {\n${body}\n};`,
  );
  return make(
    Buffer.isBuffer,
    Array.isArray,
    Object.hasOwn,
    mismatch,
    tooDeep,
    MAX_PAYLOAD_DEPTH,
    within,
    copyBefore,
    undeclared,
    ...fieldWalks,
    ...extra.values(),
  ) as Walk;
}

/**
 * The condition under which `x`, a present value of a field of type `t` (the i-th), is refused,
 * as code (`false`: never); null for types that need their walk. Adds what the code refers to (`r<i>`, the
 * refusal; `s<i>`, enum symbols) to `extra`.
 */
function inlineCheck(t: avro.Type, i: number, extra: Map<string, unknown>, inUnion = false): string | null {
  if (t.typeName === 'union:unwrapped' && !inUnion) {
    // null or one other type: an object there finds no branch, so only that type's own check is left
    const branches = (t as avro.types.UnwrappedUnionType).types;
    const other = branches.filter((b) => b.typeName !== 'null');
    if (branches.length !== 2 || other.length !== 1) return null;
    const inner = inlineCheck(other[0] as avro.Type, i, extra, true);
    return inner === null || inner === 'false' ? inner : `x !== null && ${inner}`;
  }
  const mismatch = (v: unknown) => new Refused(`expected ${describeType(t)}, got ${describeValue(v)}`);
  switch (t.typeName) {
    case 'string':
      extra.set(`r${i}`, () => new Refused(NOT_UNICODE)).set('isWellFormed', isWellFormed);
      return `typeof x === 'string' && !isWellFormed(x)`;
    case 'long':
      extra.set(`r${i}`, mismatch).set('minLong', MIN_EXACT_LONG).set('isInteger', Number.isInteger);
      return `typeof x === 'number' && x < minLong && isInteger(x)`;
    case 'int':
      if (inUnion) return 'false';
      extra.set(`r${i}`, mismatch);
      return `typeof x === 'object' && x !== null && !isBuffer(x)`;
    case 'enum':
      extra.set(`r${i}`, mismatch).set(`s${i}`, new Set((t as avro.types.EnumType).symbols));
      if (inUnion) return `typeof x === 'string' && !s${i}.has(x)`;
      return `(typeof x === 'string' ? !s${i}.has(x) : typeof x === 'object' && x !== null)`;
    default:
      return null;
  }
}

/** avsc's buckets of a plain union: at most one branch of each. */
function bucketOfType(t: avro.Type): string {
  switch (t.typeName) {
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return 'number';
    case 'bytes':
    case 'fixed':
      return 'buffer';
    case 'enum':
      return 'string';
    case 'map':
    case 'record':
    case 'error':
      return 'object';
    default:
      return t.typeName;
  }
}

function bucketOfValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (Buffer.isBuffer(v)) return 'buffer';
  return typeof v;
}

const NOT_UNICODE = 'not Unicode text (a lone surrogate such as \\ud800 cannot be stored)';

/** No lone surrogates: UTF-8 (Avro strings and map keys) cannot hold them; they became U+FFFD. */
function isWellFormed(s: string): boolean {
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
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
    case 'bytes':
      return 'bytes (a string of characters U+0000–U+00FF, one per byte)';
    case 'fixed': {
      const size = (t as avro.types.FixedType).size;
      return `fixed(${size}) (a string of ${size} characters U+0000–U+00FF)`;
    }
    case 'union:unwrapped':
      return (t as avro.types.UnwrappedUnionType).types.map((b: avro.Type) => describeType(b)).join(' or ');
    case 'union:wrapped': // branches that JSON cannot tell apart: named in the value
      return `{"<branch>": value} with a branch of ${(t as avro.types.WrappedUnionType).types.map((b) => b.branchName).join(', ')}`;
    case 'long':
      return 'long (a whole number from -2^52 to 2^53 - 2)';
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
