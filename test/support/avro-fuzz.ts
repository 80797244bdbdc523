/**
 * Generators and an independent model for fuzzing the ingress's payload validation
 * (`services/ingress/validate-event.fuzz.test.ts`).
 *
 * - `schemaArb`: random Avro record schemas: nested records, enums, fixed, arrays, maps, unions
 *   (plain or wrapped, as avsc's `wrapUnions: 'auto'` decides), references to named types defined
 *   earlier, namespaces, logical types (date, timestamp-millis/micros, decimal on bytes and fixed,
 *   uuid), field defaults, and names that collide with JavaScript built-ins (`constructor`, …).
 * - `payloadArb`: JSON payloads valid by construction under the ingress's JSON conventions, and
 *   mutated copies (a value replaced, a key removed or added, a value wrapped or unwrapped, a
 *   string or number nudged across a limit).
 * - `modelAccepts`: whether the ingress must accept a JSON payload, written from the README's
 *   conventions and the Avro specification, apart from avsc.
 * - `envelopeArb`: an event around a payload, valid or with faults, each fault naming the
 *   rejection code it calls for.
 * - `parsePath` / `resolvePath`: the path syntax of rejections (`payload.a.0`, `payload.m["a.b"]`).
 */
import fc from 'fast-check';
import type { EventType } from '../../core/event-types.js';
import { parseSchema } from '../../core/event-types.js';
import type { RejectionCode } from '../../core/rejection-codes.js';

// ─── schema model ────────────────────────────────────────────────────────────────────────────

type PrimitiveName = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'string' | 'bytes';
type Logical =
  | { logicalType: 'date' }
  | { logicalType: 'timestamp-millis' }
  | { logicalType: 'timestamp-micros' }
  | { logicalType: 'uuid' }
  | { logicalType: 'decimal'; precision: number; scale: number };

export type SchemaNode =
  | { kind: 'primitive'; type: PrimitiveName; logical?: Logical }
  | { kind: 'enum'; fullName: string; symbols: string[] }
  | { kind: 'fixed'; fullName: string; size: number }
  | { kind: 'array'; items: SchemaNode }
  | { kind: 'map'; values: SchemaNode }
  | { kind: 'record'; fullName: string; fields: FieldNode[] }
  | { kind: 'union'; branches: SchemaNode[]; wrapped: boolean };

export interface FieldNode {
  readonly name: string;
  readonly type: SchemaNode;
  /** The default in the payload convention (unions wrapped when the union is), or undefined. */
  payloadDefault: unknown;
  hasDefault: boolean;
}

/** A generated schema: the Avro JSON and the model the checks use. */
export interface GeneratedSchema {
  readonly avro: Record<string, unknown>;
  readonly root: SchemaNode & { kind: 'record' };
  /** Every name a payload could meet: field names, full names of named types, branch names. */
  readonly names: string[];
}

/** Names every JavaScript object inherits (`{}.constructor` is a function), and an array's `length`. */
const BUILTIN_NAMES = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'length'];
const FIELD_NAMES = ['a', 'b', 'id', 'name', 'value', 'count', 'x_1', 'Type', ...BUILTIN_NAMES];
// no built-in names: avsc refuses an enum with a symbol like `valueOf` as a "duplicate" symbol
const SYMBOLS = ['A', 'B', 'C', 'RED', 'GREEN', 'none', 'x_1', 'length'];
const NAMESPACES = [undefined, undefined, 'fz', 'fz.inner', ''];

/** Raw shapes, before names, dedup and defaults. */
type Raw =
  | { k: 'primitive'; type: PrimitiveName; logical?: Logical }
  | { k: 'enum'; symbols: string[]; ns: string | undefined; enumDefault: boolean }
  | { k: 'fixed'; size: number; ns: string | undefined; decimal: boolean }
  | { k: 'array'; items: Raw }
  | { k: 'map'; values: Raw }
  | { k: 'record'; ns: string | undefined; fields: { name: string; type: Raw; withDefault: boolean }[] }
  | { k: 'union'; branches: Raw[] }
  | { k: 'ref'; pick: number };

const primitiveArb: fc.Arbitrary<Raw> = fc.oneof(
  fc
    .constantFrom<PrimitiveName>('null', 'boolean', 'int', 'long', 'float', 'double', 'string', 'bytes')
    .map((type) => ({ k: 'primitive' as const, type })),
  fc.constantFrom<Raw>(
    { k: 'primitive', type: 'int', logical: { logicalType: 'date' } },
    { k: 'primitive', type: 'long', logical: { logicalType: 'timestamp-millis' } },
    { k: 'primitive', type: 'long', logical: { logicalType: 'timestamp-micros' } },
    { k: 'primitive', type: 'string', logical: { logicalType: 'uuid' } },
  ),
  fc
    .integer({ min: 1, max: 20 })
    .chain((precision) =>
      fc
        .integer({ min: 0, max: precision })
        .map(
          (scale): Raw => ({ k: 'primitive', type: 'bytes', logical: { logicalType: 'decimal', precision, scale } }),
        ),
    ),
);

const rawArb: fc.Arbitrary<Raw> = fc.letrec<{ node: Raw; nonUnion: Raw; record: Raw }>((tie) => {
  const depth = { depthIdentifier: 'avro-schema', maxDepth: 4, depthSize: 'small' as const };
  const enumArb = fc.record({
    k: fc.constant('enum' as const),
    symbols: fc.uniqueArray(fc.constantFrom(...SYMBOLS), { minLength: 1, maxLength: 5 }),
    ns: fc.constantFrom(...NAMESPACES),
    enumDefault: fc.boolean(),
  });
  const fixedArb = fc.record({
    k: fc.constant('fixed' as const),
    size: fc.integer({ min: 0, max: 6 }),
    ns: fc.constantFrom(...NAMESPACES),
    decimal: fc.boolean(),
  });
  const refArb = fc.record({ k: fc.constant('ref' as const), pick: fc.nat(20) });
  return {
    node: fc.oneof(
      depth,
      tie('nonUnion'),
      fc.array(tie('nonUnion'), { minLength: 1, maxLength: 4 }).map((branches) => ({
        k: 'union' as const,
        branches,
      })),
    ),
    nonUnion: fc.oneof(
      depth,
      primitiveArb,
      enumArb,
      fixedArb,
      refArb,
      tie('node').map((items) => ({ k: 'array' as const, items })),
      tie('node').map((values) => ({ k: 'map' as const, values })),
      tie('record'),
    ),
    record: fc.record({
      k: fc.constant('record' as const),
      ns: fc.constantFrom(...NAMESPACES),
      fields: fc.array(
        fc.record({ name: fc.constantFrom(...FIELD_NAMES), type: tie('node'), withDefault: fc.boolean() }),
        { maxLength: 5 },
      ),
    }),
  };
}).record;

/** Names the raw tree, drops duplicate field names and union branches, resolves references. */
interface Finalized {
  readonly avro: unknown;
  readonly node: SchemaNode;
  /** Fields that get a default, in a fixed order (finalize is deterministic). */
  readonly defaults: { readonly field: FieldNode; readonly avroField: Record<string, unknown> }[];
}

function finalize(raw: Raw): Finalized {
  let counter = 0;
  const defined: (SchemaNode & { fullName: string })[] = [];
  const needDefaults: Finalized['defaults'] = [];

  function fullName(name: string, ns: string | undefined, enclosing: string): { full: string; space: string } {
    const space = ns === undefined ? enclosing : ns;
    return { full: space === '' ? name : `${space}.${name}`, space };
  }

  function visit(r: Raw, enclosing: string, ancestors: Set<SchemaNode>): { avro: unknown; node: SchemaNode } {
    switch (r.k) {
      case 'primitive': {
        const node: SchemaNode = { kind: 'primitive', type: r.type, ...(r.logical ? { logical: r.logical } : {}) };
        return { avro: r.logical ? { type: r.type, ...r.logical } : r.type, node };
      }
      case 'enum': {
        const { full } = fullName(`E${counter++}`, r.ns, enclosing);
        const node = { kind: 'enum' as const, fullName: full, symbols: r.symbols };
        const avro = {
          type: 'enum',
          name: full.slice(full.lastIndexOf('.') + 1),
          ...(r.ns !== undefined ? { namespace: r.ns } : {}),
          symbols: r.symbols,
          ...(r.enumDefault ? { default: r.symbols[r.symbols.length - 1] } : {}),
        };
        defined.push(node);
        return { avro, node };
      }
      case 'fixed': {
        const { full } = fullName(`F${counter++}`, r.ns, enclosing);
        const node = { kind: 'fixed' as const, fullName: full, size: r.size };
        // decimal precision fitting the size: floor(log10(2^(8·size−1) − 1))
        const maxPrecision = r.size === 0 ? 0 : Math.floor(Math.log10(2 ** (8 * r.size - 1) - 1));
        const avro = {
          type: 'fixed',
          name: full.slice(full.lastIndexOf('.') + 1),
          ...(r.ns !== undefined ? { namespace: r.ns } : {}),
          size: r.size,
          ...(r.decimal && maxPrecision > 0
            ? { logicalType: 'decimal', precision: maxPrecision, scale: Math.min(2, maxPrecision) }
            : {}),
        };
        defined.push(node);
        return { avro, node };
      }
      case 'ref': {
        // a name without a dot resolves in the enclosing namespace: only names it can reach
        const candidates = defined.filter((d) => !ancestors.has(d) && (d.fullName.includes('.') || enclosing === ''));
        const target = candidates[r.pick % Math.max(1, candidates.length)];
        if (target === undefined) return visit({ k: 'primitive', type: 'string' }, enclosing, ancestors);
        return { avro: target.fullName, node: target };
      }
      case 'array': {
        const items = visit(r.items, enclosing, ancestors);
        return { avro: { type: 'array', items: items.avro }, node: { kind: 'array', items: items.node } };
      }
      case 'map': {
        const values = visit(r.values, enclosing, ancestors);
        return { avro: { type: 'map', values: values.avro }, node: { kind: 'map', values: values.node } };
      }
      case 'record': {
        const { full, space } = fullName(counter === 0 ? 'Fuzz' : `R${counter}`, r.ns, enclosing);
        counter++;
        const fields: FieldNode[] = [];
        const node = { kind: 'record' as const, fullName: full, fields };
        const inner = new Set(ancestors).add(node);
        const avroFields: Record<string, unknown>[] = [];
        const seen = new Set<string>();
        for (const f of r.fields) {
          if (seen.has(f.name)) continue;
          seen.add(f.name);
          const t = visit(f.type, space, inner);
          const field: FieldNode = { name: f.name, type: t.node, payloadDefault: undefined, hasDefault: false };
          fields.push(field);
          const avroField: Record<string, unknown> = { name: f.name, type: t.avro };
          avroFields.push(avroField);
          if (f.withDefault) needDefaults.push({ field, avroField });
        }
        const avro = {
          type: 'record',
          name: full.slice(full.lastIndexOf('.') + 1),
          ...(r.ns !== undefined ? { namespace: r.ns } : {}),
          fields: avroFields,
        };
        defined.push(node);
        return { avro, node };
      }
      case 'union': {
        const branches: SchemaNode[] = [];
        const avroBranches: unknown[] = [];
        const keys = new Set<string>();
        for (const b of r.branches) {
          const definedBefore = defined.length;
          const t = visit(b, enclosing, ancestors);
          const key = branchName(t.node);
          if (keys.has(key)) {
            defined.length = definedBefore; // a dropped branch defines nothing later ones may refer to
            continue;
          }
          keys.add(key);
          branches.push(t.node);
          avroBranches.push(t.avro);
        }
        const buckets = branches.map(bucketOf);
        const wrapped = new Set(buckets).size !== buckets.length;
        return { avro: avroBranches, node: { kind: 'union', branches, wrapped } };
      }
    }
  }
  const top = visit(raw, '', new Set());
  return { avro: top.avro, node: top.node, defaults: needDefaults };
}

/** Avro's branch name of a union member (`int`, `map`, or a named type's full name). */
export function branchName(n: SchemaNode): string {
  switch (n.kind) {
    case 'primitive':
      return n.type;
    case 'enum':
    case 'fixed':
    case 'record':
      return n.fullName;
    default:
      return n.kind;
  }
}

/** avsc's union buckets: a union is written plain unless two branches share one. */
function bucketOf(n: SchemaNode): string {
  switch (n.kind) {
    case 'primitive':
      if (n.type === 'int' || n.type === 'long' || n.type === 'float' || n.type === 'double') return 'number';
      if (n.type === 'bytes') return 'buffer';
      return n.type;
    case 'enum':
      return 'string';
    case 'fixed':
      return 'buffer';
    case 'record':
    case 'map':
      return 'object';
    default:
      return n.kind;
  }
}

/** Random Avro record schemas with the model of each. */
export const schemaArb: fc.Arbitrary<GeneratedSchema> = rawArb.chain((raw) =>
  fc.tuple(...finalize(raw).defaults.map((d) => avroDefaultArb(d.field.type))).map((defaults) => {
    // a fresh copy each time: fast-check may map the same raw value more than once
    const f = finalize(raw);
    f.defaults.forEach((d, i) => {
      d.avroField.default = defaults[i];
      d.field.hasDefault = true;
      d.field.payloadDefault = avroDefaultToPayload(d.field.type, defaults[i]);
    });
    const root = f.node as SchemaNode & { kind: 'record' };
    return { avro: f.avro as Record<string, unknown>, root, names: namesOf(root) };
  }),
);

function namesOf(root: SchemaNode): string[] {
  const names = new Set<string>();
  const seen = new Set<SchemaNode>();
  const walk = (n: SchemaNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    names.add(branchName(n));
    if (n.kind === 'record')
      for (const f of n.fields) {
        names.add(f.name);
        walk(f.type);
      }
    if (n.kind === 'enum') for (const s of n.symbols) names.add(s);
    if (n.kind === 'array') walk(n.items);
    if (n.kind === 'map') walk(n.values);
    if (n.kind === 'union') for (const b of n.branches) walk(b);
  };
  walk(root);
  return [...names];
}

/** The event type `Fuzz` the ingress validates against. */
export function eventTypeOf(g: GeneratedSchema): EventType {
  return fuzzEventType(g.avro);
}

/** An active hourly event type `Fuzz` with this schema as its only version. */
export function fuzzEventType(avro: Record<string, unknown>): EventType {
  return {
    name: 'Fuzz',
    owner: 'fuzz',
    description: '',
    tier: 'normal',
    partitioning: 'hourly',
    storage: 'files',
    retentionDays: 30,
    status: 'active',
    versions: [parseSchema('Fuzz', 1, avro)],
  };
}

// ─── JSON values ─────────────────────────────────────────────────────────────────────────────

/** An object with these own, enumerable keys (safe for `__proto__`, as `JSON.parse` makes them). */
export function jsonObject(entries: Iterable<readonly [string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries)
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

export function cloneJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneJson);
  if (typeof v === 'object' && v !== null)
    return jsonObject(Object.keys(v).map((k) => [k, cloneJson((v as Record<string, unknown>)[k])]));
  return v;
}

function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

const latin1CharArb = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const latin1Arb = fc.array(latin1CharArb, { maxLength: 8 }).map((cs) => cs.join(''));
const fixedArb = (size: number) =>
  fc.array(latin1CharArb, { minLength: size, maxLength: size }).map((cs) => cs.join(''));
const TRICKY_STRINGS = ['', 'constructor', '__proto__', 'toString', 'a.b', '["x"]', 'é', '\u0000', '\ud800', '😀'];
const stringArb = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom(...TRICKY_STRINGS),
);
/** Map keys: anything a JSON object may hold, with the awkward ones often. */
const MAP_KEYS = [
  '',
  'a',
  'a.b',
  '.',
  '__proto__',
  'constructor',
  'toString',
  '0',
  '12',
  'x y',
  '["q"]',
  '[',
  'é',
  'null',
];
const mapKeyArb = fc.oneof(fc.constantFrom(...MAP_KEYS), fc.string({ maxLength: 4 }));
/** Longs avsc encodes exactly: −2^52 … 2^53 − 2 (README). */
const LONG_MAX = 9007199254740990;
const LONG_MIN = -(2 ** 52);
const longArb = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger().filter((n) => n >= LONG_MIN && n <= LONG_MAX),
  fc.constantFrom(0, LONG_MAX, LONG_MIN),
);
const intArb = fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31)));
const finiteArb = fc.double({ noNaN: true, noDefaultInfinity: true });

/** A valid value in the Avro JSON encoding of defaults (unions: the first branch, unwrapped). */
function avroDefaultArb(n: SchemaNode): fc.Arbitrary<unknown> {
  switch (n.kind) {
    case 'union': {
      const first = n.branches[0] as SchemaNode;
      return avroDefaultArb(first);
    }
    case 'array':
      return fc.array(avroDefaultArb(n.items), { maxLength: 2 });
    case 'map':
      return fc
        .array(fc.tuple(fc.constantFrom('k', 'a.b', ''), avroDefaultArb(n.values)), { maxLength: 2 })
        .map((es) => Object.fromEntries(es));
    case 'record':
      return fc
        .tuple(...n.fields.map((f) => avroDefaultArb(f.type)))
        .map((vs) => Object.fromEntries(n.fields.map((f, i) => [f.name, vs[i]])));
    default: // (a lone surrogate in a default: refused at registration, if anywhere)
      return plainValueArb(n).filter((v) => typeof v !== 'string' || isUnicode(v));
  }
}

/** The same default in the payload convention (what a producer would send for it). */
function avroDefaultToPayload(n: SchemaNode, d: unknown): unknown {
  switch (n.kind) {
    case 'union': {
      const first = n.branches[0] as SchemaNode;
      const inner = avroDefaultToPayload(first, d);
      return n.wrapped && !(first.kind === 'primitive' && first.type === 'null')
        ? jsonObject([[branchName(first), inner]])
        : inner;
    }
    case 'array':
      return (d as unknown[]).map((x) => avroDefaultToPayload(n.items, x));
    case 'map':
      return jsonObject(Object.entries(d as object).map(([k, x]) => [k, avroDefaultToPayload(n.values, x)]));
    case 'record':
      return jsonObject(
        n.fields.map((f) => [f.name, avroDefaultToPayload(f.type, (d as Record<string, unknown>)[f.name])]),
      );
    default:
      return d;
  }
}

/** Leaves: the same in both conventions. */
function plainValueArb(n: SchemaNode): fc.Arbitrary<unknown> {
  switch (n.kind) {
    case 'primitive':
      switch (n.type) {
        case 'null':
          return fc.constant(null);
        case 'boolean':
          return fc.boolean();
        case 'int':
          return n.logical?.logicalType === 'date' ? fc.integer({ min: -1_000_000, max: 1_000_000 }) : intArb;
        case 'long':
          if (n.logical?.logicalType === 'timestamp-millis')
            // from −2^52 (a schema default below it would be encoded wrongly: avsc, at registration)
            return fc
              .date({ noInvalidDate: true, min: new Date(LONG_MIN) })
              .map((d) => d.getTime())
              .filter((ms) => ms >= LONG_MIN);
          if (n.logical?.logicalType === 'timestamp-micros')
            return fc
              .tuple(
                fc.date({ noInvalidDate: true, min: new Date(-4.5e12), max: new Date(9e12) }),
                fc.integer({ min: 0, max: 999 }),
              )
              .map(([d, us]) => d.getTime() * 1000 + us);
          return longArb;
        case 'float':
          return fc.oneof(fc.float({ noNaN: true, noDefaultInfinity: true }), finiteArb);
        case 'double':
          return finiteArb;
        case 'string':
          return n.logical?.logicalType === 'uuid' ? fc.oneof(fc.uuid(), stringArb) : stringArb;
        case 'bytes':
          return latin1Arb;
      }
      break;
    case 'enum':
      return fc.constantFrom(...n.symbols);
    case 'fixed':
      return fixedArb(n.size);
  }
  throw new Error(`not a leaf: ${n.kind}`);
}

const OMIT = Symbol('omit');

/** A payload value valid by construction (JSON conventions of the ingress). */
export function valueArb(n: SchemaNode): fc.Arbitrary<unknown> {
  switch (n.kind) {
    case 'array':
      return fc.array(valueArb(n.items), { maxLength: 3 });
    case 'map':
      return fc.array(fc.tuple(mapKeyArb, valueArb(n.values)), { maxLength: 3 }).map((es) => jsonObject(es));
    case 'record':
      return fc
        .tuple(
          ...n.fields.map((f) =>
            f.hasDefault ? fc.option(valueArb(f.type), { nil: OMIT, freq: 3 }) : valueArb(f.type),
          ),
        )
        .map((vs) => jsonObject(n.fields.flatMap((f, i) => (vs[i] === OMIT ? [] : [[f.name, vs[i]] as const]))));
    case 'union':
      return fc.oneof(
        ...n.branches.map((b) => {
          const isNull = b.kind === 'primitive' && b.type === 'null';
          if (!n.wrapped) return valueArb(b);
          if (isNull) return fc.constantFrom(null, jsonObject([['null', null]]));
          return valueArb(b).map((v) => jsonObject([[branchName(b), v]]));
        }),
      );
    default:
      return plainValueArb(n);
  }
}

// ─── the model: what the ingress must accept ─────────────────────────────────────────────────

/** No lone surrogates (UTF-8 cannot hold them). */
function isUnicode(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** The branch of a plain (unwrapped) union a JSON value goes to, by its JSON kind. */
function plainBranch(u: SchemaNode & { kind: 'union' }, v: unknown): SchemaNode | undefined {
  const find = (bucket: string) => u.branches.find((b) => bucketOf(b) === bucket);
  if (v === null) return find('null');
  if (typeof v === 'boolean') return find('boolean');
  if (typeof v === 'number') return find('number');
  if (typeof v === 'string') return find('string') ?? find('buffer');
  if (Array.isArray(v)) return find('array');
  if (Buffer.isBuffer(v)) return find('buffer');
  if (typeof v === 'object') return find('object');
  return undefined;
}

/** Whether the ingress must accept `v` for schema `n` (README conventions; independent of avsc). */
export function modelAccepts(n: SchemaNode, v: unknown): boolean {
  switch (n.kind) {
    case 'primitive':
      switch (n.type) {
        case 'null':
          return v === null;
        case 'boolean':
          return typeof v === 'boolean';
        case 'int':
          return typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v <= 2 ** 31 - 1;
        case 'long':
          return typeof v === 'number' && Number.isInteger(v) && v >= LONG_MIN && v <= LONG_MAX;
        case 'float':
        case 'double':
          return typeof v === 'number';
        case 'string':
          return typeof v === 'string' && isUnicode(v);
        case 'bytes':
          return (typeof v === 'string' && isLatin1(v)) || Buffer.isBuffer(v);
      }
      return false;
    case 'enum':
      return typeof v === 'string' && n.symbols.includes(v);
    case 'fixed':
      return (
        (typeof v === 'string' && isLatin1(v) && v.length === n.size) || (Buffer.isBuffer(v) && v.length === n.size)
      );
    case 'array':
      return Array.isArray(v) && v.every((x) => modelAccepts(n.items, x));
    case 'map':
      return isJsonObject(v) && Object.keys(v).every((k) => isUnicode(k) && modelAccepts(n.values, v[k]));
    case 'record': {
      if (!isJsonObject(v)) return false;
      const names = new Set(n.fields.map((f) => f.name));
      if (!Object.keys(v).every((k) => names.has(k))) return false;
      return n.fields.every((f) => (Object.hasOwn(v, f.name) ? modelAccepts(f.type, v[f.name]) : f.hasDefault));
    }
    case 'union': {
      if (!n.wrapped) {
        const b = plainBranch(n, v);
        return b !== undefined && modelAccepts(b, v);
      }
      if (v === null) return n.branches.some((b) => b.kind === 'primitive' && b.type === 'null');
      if (!isJsonObject(v)) return false;
      const keys = Object.keys(v);
      const b = keys.length === 1 ? n.branches.find((x) => branchName(x) === keys[0]) : undefined;
      return b !== undefined && modelAccepts(b, v[keys[0] as string]);
    }
  }
}

/**
 * What an accepted payload must decode to, in the payload convention: defaults filled in, floats
 * rounded to 32 bits, `-0` of int and long as 0, a wrapped `{"null": null}` as null.
 */
export function expectedDecoded(n: SchemaNode, v: unknown): unknown {
  switch (n.kind) {
    case 'primitive':
      if (n.type === 'float') return Math.fround(v as number);
      if (n.type === 'int' || n.type === 'long') return (v as number) + 0;
      if (n.type === 'bytes' && Buffer.isBuffer(v)) return v.toString('latin1');
      return v;
    case 'fixed':
      return Buffer.isBuffer(v) ? v.toString('latin1') : v;
    case 'enum':
      return v;
    case 'array':
      return (v as unknown[]).map((x) => expectedDecoded(n.items, x));
    case 'map':
      return jsonObject(
        Object.keys(v as object).map((k) => [k, expectedDecoded(n.values, (v as Record<string, unknown>)[k])]),
      );
    case 'record': {
      const o = v as Record<string, unknown>;
      return jsonObject(
        n.fields.map((f) => [
          f.name,
          Object.hasOwn(o, f.name) ? expectedDecoded(f.type, o[f.name]) : expectedDecoded(f.type, f.payloadDefault),
        ]),
      );
    }
    case 'union': {
      if (!n.wrapped) return expectedDecoded(plainBranch(n, v) as SchemaNode, v);
      if (v === null) return null;
      const key = Object.keys(v as object)[0] as string;
      if (key === 'null') return null;
      const b = n.branches.find((x) => branchName(x) === key) as SchemaNode;
      return jsonObject([[key, expectedDecoded(b, (v as Record<string, unknown>)[key])]]);
    }
  }
}

/** An avsc-decoded value in the payload convention (Buffers as latin1 strings, wrapped unions as objects). */
export function decodedToJson(n: SchemaNode, v: unknown): unknown {
  switch (n.kind) {
    case 'primitive':
      return Buffer.isBuffer(v) ? v.toString('latin1') : v;
    case 'fixed':
      return (v as Buffer).toString('latin1');
    case 'enum':
      return v;
    case 'array':
      return (v as unknown[]).map((x) => decodedToJson(n.items, x));
    case 'map':
      return jsonObject(
        Object.keys(v as object).map((k) => [k, decodedToJson(n.values, (v as Record<string, unknown>)[k])]),
      );
    case 'record':
      return jsonObject(n.fields.map((f) => [f.name, decodedToJson(f.type, (v as Record<string, unknown>)[f.name])]));
    case 'union': {
      if (v === null) return null;
      if (!n.wrapped) {
        const b = Buffer.isBuffer(v) ? n.branches.find((x) => bucketOf(x) === 'buffer') : plainBranch(n, v);
        return decodedToJson(b as SchemaNode, v);
      }
      const key = Object.keys(v as object)[0] as string;
      const b = n.branches.find((x) => branchName(x) === key) as SchemaNode;
      return jsonObject([[key, decodedToJson(b, (v as Record<string, unknown>)[key])]]);
    }
  }
}

/** Deep equality of JSON-like values (own keys, `Object.is` for numbers). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isJsonObject(a)) {
    if (!isJsonObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return Object.is(a, b);
}

/** Whether a map somewhere in the value has a `__proto__` key (avsc's decoder drops it: not the ingress). */
export function hasProtoKey(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasProtoKey);
  if (isJsonObject(v)) return Object.keys(v).some((k) => k === '__proto__' || hasProtoKey(v[k]));
  return false;
}

/**
 * The payload as avsc values under the same conventions (bytes and fixed strings as Buffers),
 * for asking avsc's `isValid` the same question.
 */
export function toAvroValue(n: SchemaNode, v: unknown): unknown {
  switch (n.kind) {
    case 'primitive':
      return n.type === 'bytes' && typeof v === 'string' && isLatin1(v) ? Buffer.from(v, 'latin1') : v;
    case 'fixed':
      return typeof v === 'string' && isLatin1(v) && v.length === n.size ? Buffer.from(v, 'latin1') : v;
    case 'enum':
      return v;
    case 'array':
      return Array.isArray(v) ? v.map((x) => toAvroValue(n.items, x)) : v;
    case 'map':
      return isJsonObject(v) ? jsonObject(Object.keys(v).map((k) => [k, toAvroValue(n.values, v[k])])) : v;
    case 'record': {
      if (!isJsonObject(v)) return v;
      const types = new Map(n.fields.map((f) => [f.name, f.type]));
      return jsonObject(
        Object.keys(v).map((k) => [k, types.has(k) ? toAvroValue(types.get(k) as SchemaNode, v[k]) : v[k]]),
      );
    }
    case 'union': {
      if (!n.wrapped) {
        const b = plainBranch(n, v);
        return b === undefined ? v : toAvroValue(b, v);
      }
      if (!isJsonObject(v) || Object.keys(v).length !== 1) return v;
      const key = Object.keys(v)[0] as string;
      const b = n.branches.find((x) => branchName(x) === key);
      return b === undefined ? v : jsonObject([[key, toAvroValue(b, v[key])]]);
    }
  }
}

/**
 * Whether avsc's own `isValid` is unsound for this value, so it cannot referee: a name that every
 * JavaScript object inherits (`constructor`, `toString`, `__proto__`, …) as an enum symbol, a
 * wrapped union's key or an undeclared or missing record field; an array where a record belongs;
 * a long below −2^52; a lone surrogate in a string or map key; an object or array for a scalar.
 */
export function avscQuirk(n: SchemaNode, v: unknown): boolean {
  const inherited = (k: unknown) => typeof k === 'string' && k in {};
  // avsc coerces an object where a scalar belongs (`val | 0`, a symbol lookup): `["A"]` is symbol A
  if ((n.kind === 'primitive' || n.kind === 'enum') && typeof v === 'object' && v !== null) return true;
  switch (n.kind) {
    case 'primitive':
      // avsc takes longs down to −2^53 + 2 but encodes those below −2^52 wrongly, and writes lone surrogates as U+FFFD
      if (n.type === 'string') return typeof v === 'string' && !isUnicode(v);
      return n.type === 'long' && typeof v === 'number' && Number.isInteger(v) && v < LONG_MIN && v >= -LONG_MAX;
    case 'enum':
      return typeof v === 'string' && !n.symbols.includes(v) && inherited(v);
    case 'array':
      return Array.isArray(v) && v.some((x) => avscQuirk(n.items, x));
    case 'map':
      return isJsonObject(v) && Object.keys(v).some((k) => !isUnicode(k) || avscQuirk(n.values, v[k]));
    case 'record': {
      if (Array.isArray(v)) return true;
      if (!isJsonObject(v)) return false;
      const names = new Set(n.fields.map((f) => f.name));
      if (Object.keys(v).some((k) => !names.has(k) && inherited(k))) return true;
      return n.fields.some((f) => (Object.hasOwn(v, f.name) ? avscQuirk(f.type, v[f.name]) : inherited(f.name)));
    }
    case 'union': {
      if (!n.wrapped) {
        const b = plainBranch(n, v);
        return b !== undefined && avscQuirk(b, v);
      }
      if (!isJsonObject(v) || Object.keys(v).length !== 1) return false;
      const key = Object.keys(v)[0] as string;
      const b = n.branches.find((x) => branchName(x) === key);
      return b === undefined ? inherited(key) : avscQuirk(b, v[key]);
    }
    default:
      return false;
  }
}

// ─── mutations ───────────────────────────────────────────────────────────────────────────────

export type MutationOp = 'replace' | 'delete' | 'add' | 'wrap' | 'unwrap' | 'arrayify' | 'string' | 'number';
export interface Mutation {
  readonly op: MutationOp;
  readonly at: number;
  readonly junk: unknown;
  readonly key: string;
  readonly variant: number;
}

const JUNK: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53,
  9007199254740991,
  -(2 ** 52) - 1,
  -(2 ** 52) - 2,
  1e300,
  '',
  'x',
  'constructor',
  '__proto__',
  'toString',
  'Ā',
  [],
  [null],
  {},
  { a: 1 },
];
const junkArb: fc.Arbitrary<unknown> = fc
  .oneof(
    fc.constantFrom(...JUNK),
    fc
      .constantFrom('{"constructor":1}', '{"__proto__":{}}', '{"toString":"x"}', '{"null":null}')
      .map((s) => JSON.parse(s)),
    fc.jsonValue({ maxDepth: 2 }),
  )
  .map(cloneJson);
const KEYS = [
  '',
  'zz',
  'a.b',
  '__proto__',
  'constructor',
  'toString',
  'valueOf',
  'length',
  '0',
  'x y',
  '["q"]',
  'null',
  'string',
  'int',
  'long',
  'bytes',
  'map',
  'array',
];

export function mutationArb(names: readonly string[]): fc.Arbitrary<Mutation> {
  return fc.record({
    op: fc.constantFrom<MutationOp>('replace', 'delete', 'add', 'wrap', 'unwrap', 'arrayify', 'string', 'number'),
    at: fc.nat(),
    junk: junkArb,
    key: fc.constantFrom(...KEYS, ...names),
    variant: fc.nat(5),
  });
}

/** Applies a mutation at one place of a copy of the payload. */
export function mutate(payload: unknown, m: Mutation): unknown {
  const root = { value: cloneJson(payload) } as Record<string, unknown>;
  const places: [Record<string, unknown> | unknown[], string | number][] = [];
  const collect = (holder: Record<string, unknown> | unknown[], key: string | number) => {
    places.push([holder, key]);
    const v = (holder as Record<string | number, unknown>)[key];
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) collect(v, i);
    else if (isJsonObject(v)) for (const k of Object.keys(v)) collect(v, k);
  };
  collect(root, 'value');
  // inside the payload when it has an inside (the root itself: a missing_payload mostly)
  const [holder, key] = places[places.length === 1 ? 0 : 1 + (m.at % (places.length - 1))] as [
    Record<string | number, unknown>,
    string | number,
  ];
  const set = (v: unknown) =>
    Object.defineProperty(holder, key, { value: v, enumerable: true, writable: true, configurable: true });
  const v = holder[key];
  switch (m.op) {
    case 'replace':
      set(m.junk);
      break;
    case 'delete':
      if (isJsonObject(v) && Object.keys(v).length > 0) {
        const keys = Object.keys(v);
        delete v[keys[m.variant % keys.length] as string];
      } else if (!Array.isArray(holder) && holder !== root) delete holder[key];
      else if (Array.isArray(holder)) holder.splice(key as number, 1);
      break;
    case 'add':
      if (isJsonObject(v))
        Object.defineProperty(v, m.key, { value: m.junk, enumerable: true, writable: true, configurable: true });
      else if (Array.isArray(v)) v.push(m.junk);
      break;
    case 'wrap':
      set(jsonObject([[m.key, v]]));
      break;
    case 'unwrap':
      if (isJsonObject(v) && Object.keys(v).length === 1) set(v[Object.keys(v)[0] as string]);
      else if (Array.isArray(v) && v.length > 0) set(v[0]);
      break;
    case 'arrayify':
      set(m.variant % 2 === 0 ? [] : [v]);
      break;
    case 'string':
      if (typeof v === 'string')
        set([`${v}Ā`, v.slice(0, -1), `${v}x`, `${v}\u00ff`, v.toUpperCase(), `${v}.`][m.variant]);
      else set(typeof v === 'object' ? JSON.stringify(v) : String(v));
      break;
    case 'number':
      if (typeof v === 'number')
        set([v + 0.5, v * 2 ** 31, 2 ** 31, -(2 ** 31) - 1, 9007199254740991, -(2 ** 52) - 1][m.variant]);
      else set(m.variant);
      break;
  }
  return root.value;
}

/** A payload: valid by construction, or one to three mutations of one. */
export function payloadArb(g: GeneratedSchema): fc.Arbitrary<unknown> {
  const valid = valueArb(g.root);
  return fc.oneof(
    { weight: 2, arbitrary: valid },
    {
      weight: 3,
      arbitrary: fc
        .tuple(valid, fc.array(mutationArb(g.names), { minLength: 1, maxLength: 3 }))
        .map(([p, ms]) => ms.reduce<unknown>((acc, m) => mutate(acc, m), p)),
    },
  );
}

// ─── envelopes ───────────────────────────────────────────────────────────────────────────────

const ENVELOPE_FIELDS = new Set(['type', 'id', 'version', 'time', 'payload']);
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * The rejection codes an event calls for (README, "POST /v1/events"); empty when it must be
 * accepted. The catalog holds `Fuzz` (active) and `Gone` (retired), one version each.
 */
export function expectedFaults(g: GeneratedSchema, event: unknown): Set<RejectionCode> {
  const faults = new Set<RejectionCode>();
  if (!isJsonObject(event)) return faults.add('invalid_event');
  if (Object.keys(event).some((k) => !ENVELOPE_FIELDS.has(k))) faults.add('unknown_field');
  const { type, id, version, time, payload } = Object.fromEntries(
    [...ENVELOPE_FIELDS].map((k) => [k, Object.hasOwn(event, k) ? event[k] : undefined]),
  );
  if (typeof type !== 'string' || type === '') faults.add('missing_type');
  else if (type === 'Gone') faults.add('retired_type');
  else if (type !== 'Fuzz') faults.add('unknown_type');
  if (id === undefined || id === null) faults.add('missing_id');
  else if (typeof id !== 'string' || id.length === 0 || id.length > 128 || !/^[\x21-\x7e]+$/.test(id))
    faults.add('invalid_id');
  if (version !== undefined && version !== null) {
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) faults.add('invalid_version');
    else if (version > 1) faults.add('unknown_version');
  }
  if (time !== undefined && time !== null) {
    const ok =
      typeof time === 'number'
        ? Number.isFinite(time) && time >= 0 && time <= 253402300799999
        : typeof time === 'string' && time.length <= 40 && ISO_TIME.test(time) && !Number.isNaN(Date.parse(time));
    if (!ok) faults.add('invalid_time');
  }
  if (!isJsonObject(payload)) faults.add('missing_payload');
  else if (!modelAccepts(g.root, payload)) faults.add('schema_violation');
  return faults;
}

const pick = <T>(weighted: [number, fc.Arbitrary<T>][]) =>
  fc.oneof(...weighted.map(([weight, arbitrary]) => ({ weight, arbitrary })));
const OMITTED = fc.constant(OMIT);

/** Events around generated payloads: mostly valid envelopes, some with faults of every kind. */
export function envelopeArb(g: GeneratedSchema): fc.Arbitrary<unknown> {
  const fields = fc.tuple(
    pick<unknown>([
      [12, fc.constant('Fuzz')],
      [1, fc.constantFrom(OMIT, null, 5, '', 'Nope', 'constructor', 'Gone')],
    ]),
    pick<unknown>([
      [12, fc.stringMatching(/^[\x21-\x7e]{1,12}$/)],
      [1, fc.constantFrom('x'.repeat(128), 'x'.repeat(129), OMIT, null, 7, '', 'a b', 'é', ['a'], {})],
    ]),
    pick<unknown>([
      [8, fc.constantFrom(OMIT, 1, null)],
      [1, fc.constantFrom(0, -1, 1.5, '1', true, 2, 99)],
    ]),
    pick<unknown>([
      [8, fc.constantFrom(OMIT, null, 0, 1_700_000_000_000, '2026-01-01T10:00:00Z', '2026-01-01T10:00:00.123+02:00')],
      [1, fc.constantFrom('yesterday', -1, 1e20, '2026-01-01', {}, true)],
    ]),
    pick<unknown>([
      [15, payloadArb(g)],
      [1, fc.constantFrom(OMIT, null, [], 'x', 3)],
    ]),
    pick<unknown>([
      [12, OMITTED],
      [1, fc.constantFrom('user', '', 'a.b', '__proto__', 'constructor', 'Payload', '["x"]')],
    ]),
  );
  return pick<unknown>([
    [
      40,
      fields.map(([type, id, version, time, payload, extra]) => {
        const entries: [string, unknown][] = [];
        for (const [k, v] of [
          ['type', type],
          ['id', id],
          ['version', version],
          ['time', time],
          ['payload', payload],
        ] as const)
          if (v !== OMIT) entries.push([k, v]);
        if (extra !== OMIT) entries.push([extra as string, 1]);
        return jsonObject(entries);
      }),
    ],
    [1, fc.constantFrom(null, 'Fuzz', 3, [], [{ type: 'Fuzz' }])],
  ]);
}

// ─── paths ───────────────────────────────────────────────────────────────────────────────────

/**
 * Splits a rejection path into keys: `payload.a.0` → payload, a, 0; a key that is not letters,
 * digits and `_` is written `["…"]` (a JSON string): `payload.m["a.b"]` → payload, m, a.b.
 * Returns null for a malformed path.
 */
export function parsePath(path: string): string[] | null {
  const keys: string[] = [];
  let i = 0;
  while (i < path.length) {
    if (path[i] === '[') {
      if (path[i + 1] !== '"') return null;
      let j = i + 2;
      while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
      if (path[j + 1] !== ']') return null;
      try {
        keys.push(JSON.parse(path.slice(i + 1, j + 1)) as string);
      } catch {
        return null;
      }
      i = j + 2;
      continue;
    }
    if (keys.length > 0) {
      if (path[i] !== '.') return null;
      i++;
    }
    const m = /^[A-Za-z0-9_]+/.exec(path.slice(i));
    if (m === null) return null;
    keys.push(m[0]);
    i += m[0].length;
  }
  return keys;
}

/** Resolves a path against a value through own properties: whether it and its parent exist. */
export function resolvePath(root: unknown, path: string): { parsed: boolean; found: boolean; parentFound: boolean } {
  const keys = parsePath(path);
  if (keys === null) return { parsed: false, found: false, parentFound: false };
  let v: unknown = root;
  for (const [i, k] of keys.entries()) {
    const last = i === keys.length - 1;
    let next: { ok: boolean; value?: unknown };
    if (Array.isArray(v))
      next = /^(0|[1-9]\d*)$/.test(k) && Number(k) < v.length ? { ok: true, value: v[Number(k)] } : { ok: false };
    else if (isJsonObject(v)) next = Object.hasOwn(v, k) ? { ok: true, value: v[k] } : { ok: false };
    else next = { ok: false };
    if (!next.ok) return { parsed: true, found: false, parentFound: last };
    v = next.value;
  }
  return { parsed: true, found: true, parentFound: true };
}
