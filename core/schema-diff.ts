/**
 * What changed between two Avro schemas, as readers of the data see it: the parsed canonical form
 * keeps what matters to a reader — field names, order, types, defaults, aliases, sort order,
 * logical types and their parameters, enum symbols and default, fixed sizes, full names — and
 * drops what does not (`doc`, other attributes, whitespace, key order). Unlike the Parsing
 * Canonical Form (the fingerprint), it keeps defaults and aliases: a changed default changes
 * what old data reads as.
 *
 * `schemaChanges` lists the differences one line each (`field x default 0 → 1`), for the
 * immutability check of registered versions and the field diff `types plan` shows for a new
 * version. Both schemas must be valid Avro (parse them first).
 */

type Canon = string | Canon[] | CanonObject;

interface CanonObject {
  readonly type: string;
  readonly name?: string;
  readonly aliases?: string[];
  readonly fields?: CanonField[];
  readonly symbols?: string[];
  readonly default?: unknown;
  readonly size?: number;
  readonly items?: Canon;
  readonly values?: Canon;
  readonly logicalType?: string;
  readonly precision?: number;
  readonly scale?: number;
}

interface CanonField {
  readonly name: string;
  readonly type: Canon;
  readonly default?: unknown;
  readonly aliases?: string[];
  readonly order?: string;
}

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);
const NAMED = new Set(['record', 'error', 'enum', 'fixed']);

type Json = Record<string, unknown>;

function fullName(name: string, namespace: string): string {
  return name.includes('.') || namespace === '' ? name : `${namespace}.${name}`;
}

function namespaceOf(full: string): string {
  const i = full.lastIndexOf('.');
  return i < 0 ? '' : full.slice(0, i);
}

/** A JSON value with object keys sorted (key order does not matter in a default). */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Json)[k])]),
    );
  }
  return v;
}

function logical(s: Json): Pick<CanonObject, 'logicalType' | 'precision' | 'scale'> {
  if (typeof s.logicalType !== 'string') return {};
  return {
    logicalType: s.logicalType,
    ...(s.precision !== undefined ? { precision: s.precision as number } : {}),
    ...(s.scale !== undefined ? { scale: s.scale as number } : {}),
  };
}

function aliasesOf(s: Json, namespace: string): { aliases?: string[] } {
  const a = Array.isArray(s.aliases) ? (s.aliases as string[]).map((x) => fullName(x, namespace)).sort() : [];
  return a.length > 0 ? { aliases: a } : {};
}

/** Canonicalises `s` in `namespace`; named types go to `defs` (defined once, referred to by full name after). */
function canon(s: unknown, namespace: string, defs: Map<string, CanonObject>): Canon {
  if (typeof s === 'string') return PRIMITIVES.has(s) ? s : fullName(s, namespace);
  if (Array.isArray(s)) return s.map((b) => canon(b, namespace, defs));
  const o = s as Json;
  const type = o.type;
  if (typeof type !== 'string') return canon(type, namespace, defs);
  if (PRIMITIVES.has(type)) {
    const l = logical(o);
    return l.logicalType === undefined ? type : { type, ...l };
  }
  if (type === 'array') return { type, items: canon(o.items, namespace, defs) };
  if (type === 'map') return { type, values: canon(o.values, namespace, defs) };
  if (!NAMED.has(type)) return fullName(type, namespace);
  const name = fullName(o.name as string, typeof o.namespace === 'string' ? o.namespace : namespace);
  const inner = namespaceOf(name);
  const base = { type: type === 'error' ? 'record' : type, name, ...aliasesOf(o, inner) };
  let out: CanonObject;
  if (type === 'enum') {
    out = {
      ...base,
      symbols: [...(o.symbols as string[])],
      ...(o.default !== undefined ? { default: o.default } : {}),
    };
    defs.set(name, out);
  } else if (type === 'fixed') {
    out = { ...base, size: o.size as number, ...logical(o) };
    defs.set(name, out);
  } else {
    // defined before its fields, which may refer to it
    const fields: CanonField[] = [];
    out = { ...base, fields };
    defs.set(name, out);
    for (const f of o.fields as Json[]) {
      fields.push({
        name: f.name as string,
        type: canon(f.type, inner, defs),
        ...('default' in f ? { default: sortKeys(f.default) } : {}),
        ...aliasesOf(f, ''),
        ...(f.order !== undefined && f.order !== 'ascending' ? { order: f.order as string } : {}),
      });
    }
  }
  return out;
}

/** The parsed canonical form of a schema, as JSON text: equal texts read data alike. */
export function canonicalSchema(schema: unknown): string {
  return JSON.stringify(canon(schema, '', new Map()));
}

// ─── differences ─────────────────────────────────────────────────────────────────────────────

interface Side {
  readonly defs: Map<string, CanonObject>;
}

function resolve(c: Canon, side: Side): Canon {
  return typeof c === 'string' && !PRIMITIVES.has(c) ? (side.defs.get(c) ?? c) : c;
}

function short(name: string | undefined): string {
  return (name ?? '').split('.').pop() as string;
}

function kindOf(c: Canon): string {
  if (typeof c === 'string') return PRIMITIVES.has(c) ? c : 'ref';
  if (Array.isArray(c)) return 'union';
  return c.type;
}

function describe(c: Canon, side: Side): string {
  const r = resolve(c, side);
  if (typeof r === 'string') return PRIMITIVES.has(r) ? r : short(r);
  if (Array.isArray(r)) return `[${r.map((b) => describe(b, side)).join(', ')}]`;
  switch (r.type) {
    case 'array':
      return `array<${describe(r.items as Canon, side)}>`;
    case 'map':
      return `map<${describe(r.values as Canon, side)}>`;
    case 'record':
    case 'enum':
    case 'fixed':
      return `${r.type} ${short(r.name)}`;
    default:
      return r.logicalType === undefined ? r.type : `${r.type} (${r.logicalType})`;
  }
}

/** A union branch's identity for pairing branches: its kind and, for named types, its name. */
function branchKey(c: Canon, side: Side): string {
  const r = resolve(c, side);
  const k = kindOf(r);
  return typeof r === 'object' && !Array.isArray(r) && r.name !== undefined ? `${k} ${short(r.name)}` : k;
}

function json(v: unknown): string {
  return v === undefined ? 'none' : JSON.stringify(v);
}

function list(v: readonly string[] | undefined): string {
  return v === undefined || v.length === 0 ? 'none' : v.join(', ');
}

function at(path: string): string {
  return path === '' ? 'the schema' : `field ${path}`;
}

function join(path: string, part: string): string {
  if (path === '') return part;
  return part.startsWith('[') || part.startsWith('{') || part.startsWith('<') ? `${path}${part}` : `${path}.${part}`;
}

interface Walk {
  readonly a: Side;
  readonly b: Side;
  readonly out: string[];
  readonly seen: Set<string>;
}

function diffType(ca: Canon, cb: Canon, path: string, w: Walk): void {
  const a = resolve(ca, w.a);
  const b = resolve(cb, w.b);
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka !== kb) {
    w.out.push(`${at(path)} type ${describe(a, w.a)} → ${describe(b, w.b)}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const keysA = a.map((x) => branchKey(x, w.a));
    const keysB = b.map((x) => branchKey(x, w.b));
    if (keysA.join('|') !== keysB.join('|')) {
      w.out.push(`${at(path)} type ${describe(a, w.a)} → ${describe(b, w.b)}`);
      return;
    }
    a.forEach((x, i) => {
      diffType(x, b[i] as Canon, join(path, `<${describe(x, w.a)}>`), w);
    });
    return;
  }
  const the = at(path);
  const l = (x: Canon) =>
    typeof x !== 'object' || Array.isArray(x) || x.logicalType === undefined
      ? 'none'
      : `${x.logicalType}${x.precision !== undefined ? `(${x.precision}, ${x.scale ?? 0})` : ''}`;
  if (l(a) !== l(b)) w.out.push(`${the} logical type ${l(a)} → ${l(b)}`);
  if (typeof a === 'string' || typeof b === 'string' || Array.isArray(a) || Array.isArray(b)) return; // a primitive
  if (a.name !== undefined && b.name !== undefined) {
    if (a.name !== b.name) w.out.push(`${the} ${a.type} ${short(a.name)} renamed to ${short(b.name)}`);
    if (list(a.aliases) !== list(b.aliases))
      w.out.push(`${the} ${a.type} aliases ${list(a.aliases)} → ${list(b.aliases)}`);
    const pair = `${a.name}|${b.name}`;
    if (w.seen.has(pair)) return; // compared where first met (and recursive types end)
    w.seen.add(pair);
  }
  switch (a.type) {
    case 'array':
      diffType(a.items as Canon, b.items as Canon, join(path, '[]'), w);
      return;
    case 'map':
      diffType(a.values as Canon, b.values as Canon, join(path, '{}'), w);
      return;
    case 'enum':
      if (list(a.symbols) !== list(b.symbols)) w.out.push(`${the} symbols ${list(a.symbols)} → ${list(b.symbols)}`);
      if (json(a.default) !== json(b.default))
        w.out.push(`${the} enum default ${json(a.default)} → ${json(b.default)}`);
      return;
    case 'fixed':
      if (a.size !== b.size) w.out.push(`${the} size ${a.size} → ${b.size}`);
      return;
    case 'record':
      diffFields(a.fields ?? [], b.fields ?? [], path, w);
      return;
    default:
      return;
  }
}

function diffFields(a: readonly CanonField[], b: readonly CanonField[], path: string, w: Walk): void {
  for (const fa of a) {
    if (!b.some((fb) => fb.name === fa.name)) w.out.push(`field ${join(path, fa.name)} removed`);
  }
  for (const fb of b) {
    const p = join(path, fb.name);
    const fa = a.find((x) => x.name === fb.name);
    if (fa === undefined) {
      const dflt = 'default' in fb ? `, default ${json(fb.default)}` : ', no default';
      w.out.push(`field ${p} added (${describe(fb.type, w.b)}${dflt})`);
      continue;
    }
    diffType(fa.type, fb.type, p, w);
    if (json(fa.default) !== json(fb.default))
      w.out.push(`field ${p} default ${json(fa.default)} → ${json(fb.default)}`);
    if (list(fa.aliases) !== list(fb.aliases))
      w.out.push(`field ${p} aliases ${list(fa.aliases)} → ${list(fb.aliases)}`);
    if ((fa.order ?? 'ascending') !== (fb.order ?? 'ascending'))
      w.out.push(`field ${p} order ${fa.order ?? 'ascending'} → ${fb.order ?? 'ascending'}`);
  }
  const kept = (fs: readonly CanonField[], other: readonly CanonField[]) =>
    fs.filter((f) => other.some((o) => o.name === f.name)).map((f) => f.name);
  const orderA = kept(a, b);
  const orderB = kept(b, a);
  if (orderA.join(',') !== orderB.join(',')) {
    w.out.push(`fields of ${path === '' ? 'the record' : path} reordered: ${orderA.join(', ')} → ${orderB.join(', ')}`);
  }
}

/**
 * The differences between two schemas that matter to readers, one line each; empty exactly when
 * their canonical forms are equal.
 */
export function schemaChanges(before: unknown, after: unknown): string[] {
  const a: Side = { defs: new Map() };
  const b: Side = { defs: new Map() };
  const ca = canon(before, '', a.defs);
  const cb = canon(after, '', b.defs);
  if (JSON.stringify(ca) === JSON.stringify(cb)) return [];
  const out: string[] = [];
  diffType(ca, cb, '', { a, b, out, seen: new Set() });
  // a difference the walk does not word (e.g. where a named type is first defined)
  return out.length > 0 ? out : ['the schema changed'];
}
