/**
 * What the pipeline can carry, whatever Avro allows: a schema version breaking one of these
 * rules is refused at `types plan`/`apply` and by the registry API, before any event of it exists.
 *
 * - `recursive_type`: a named record that contains itself, directly or through other types.
 *   Parquet and BigQuery columns have a fixed depth; the column mapping would not end.
 * - `column_conflict`: two fields that land in one column: names equal ignoring case at one level
 *   (DuckDB and BigQuery compare column names ignoring case), a top-level field named like a
 *   column the pipeline adds (the envelope's `event_*` columns, the Hive partition columns
 *   `date` and `hour`) other than exactly (an exact envelope name is stored as
 *   `payload_<name>`, which must then be free), or a name BigQuery reserves by prefix.
 * - `nesting_too_deep`: records nested deeper than BigQuery's 15 levels, counted the way the
 *   column mapping (etl/raw-parquet.ts, infra/warehouse/bigquery/schema.ts) nests them: a record,
 *   a map's entries and an array of arrays or maps each add a level. The Parquet writer's limit
 *   (255 repetition or definition levels) is far beyond what 15 such levels can reach.
 *
 * - `unstorable_default`: a field default the ingress could not store as written, so every event
 *   that leaves the field out would be refused or stored wrongly: a long below −2^52 (Avro's
 *   JavaScript encoding rounds it), a string or map key with a lone surrogate (UTF-8 cannot hold
 *   it), or an object key `__proto__` (JavaScript objects drop it).
 *
 * The column names below mirror the ETL's and the BigQuery mapping's; `schema-limits.test.ts`
 * checks they agree.
 */
import type avro from 'avsc';
import type { Refusal } from './errors.js';

export type CarriageRule = 'recursive_type' | 'column_conflict' | 'nesting_too_deep' | 'unstorable_default';

/**
 * The most negative long avsc encodes exactly: below −2^52 its zig-zag arithmetic (−2n − 1 in a
 * double) rounds, and e.g. −4503599627370497 is written as +4503599627370496.
 */
export const MIN_EXACT_LONG = -(2 ** 52);

export interface CarriageProblem extends Refusal {
  readonly rule: CarriageRule;
}

/** Levels of nested records BigQuery allows. */
export const MAX_NESTING_DEPTH = 15;

/** The envelope columns every final Parquet file starts with, in order (etl/raw-parquet.ts writes them). */
export const ENVELOPE_COLUMN_NAMES = [
  'event_id',
  'event_producer',
  'event_arrival_time',
  'event_ingress_instance',
  'event_sequence',
  'event_client_time',
  'event_writer_version',
] as const;

/** The Hive partition columns DuckDB adds from the object names (`date=…/hour=…/`). */
export const PARTITION_COLUMN_NAMES = ['date', 'hour'] as const;

/** Column name prefixes BigQuery reserves, compared ignoring case (infra/warehouse/bigquery/schema.ts). */
export const RESERVED_COLUMN_PREFIXES = [
  '_table_',
  '_file_',
  '_partition',
  '_row_timestamp',
  '__root__',
  '_colidentifier',
] as const;

interface T {
  readonly typeName: string;
  /** Logical types: the type they are stored as. */
  readonly underlyingType?: T;
  readonly name?: string;
  readonly fields?: { readonly name: string; readonly type: T; defaultValue(): unknown }[];
  readonly types?: T[];
  readonly itemsType?: T;
  readonly valuesType?: T;
}

function shortName(name: string | undefined): string {
  return (name ?? '').split('.').pop() as string;
}

function join(path: string, part: string): string {
  if (path === '') return part;
  if (part === '') return path;
  return part.startsWith('[') || part.startsWith('{') ? `${path}${part}` : `${path}.${part}`;
}

/** The non-null branch of a `[null, T]` / `[T, null]` union (an optional column), else null. */
function optionalOf(t: T): T | null {
  if (!t.typeName.startsWith('union')) return null;
  const types = t.types ?? [];
  if (types.length !== 2) return null;
  const nb = types.findIndex((b) => b.typeName === 'null');
  return nb < 0 ? null : (types[1 - nb] as T);
}

/** A type with an optional union unwrapped (the column mapping reads `[null, T]` as a nullable T). */
function unwrap(t: T): T {
  return optionalOf(t) ?? t;
}

/** The column name of a top-level field: envelope names are stored as `payload_<name>`. */
export function payloadColumnName(field: string): string {
  return (ENVELOPE_COLUMN_NAMES as readonly string[]).includes(field) ? `payload_${field}` : field;
}

/**
 * Every rule the schema breaks; empty when the pipeline can carry it. `declared` is the schema as
 * written (JSON), for what parsing it loses (a default's `__proto__` key).
 */
export function carriageProblems(type: avro.Type, declared?: unknown): CarriageProblem[] {
  const root = type as unknown as T;
  const recursive = recursionProblems(root);
  if (recursive.length > 0) return recursive; // the other walks would not end
  return [...columnProblems(root), ...depthProblems(root), ...defaultProblems(root, declared)];
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** What is wrong with a default value of type `t`, or null. */
function badDefault(t: T, v: unknown): string | null {
  const base = t.underlyingType ?? t;
  switch (base.typeName) {
    case 'long':
      return typeof v === 'number' && v < MIN_EXACT_LONG
        ? `is below -2^52 (${v}): Avro's JavaScript encoding would write another number`
        : null;
    case 'string':
      return typeof v === 'string' && LONE_SURROGATE.test(v)
        ? 'holds a lone surrogate, which UTF-8 cannot store'
        : null;
    case 'array':
      for (const item of Array.isArray(v) ? v : []) {
        const bad = badDefault(base.itemsType as T, item);
        if (bad !== null) return bad;
      }
      return null;
    case 'map':
      for (const [k, item] of Object.entries(typeof v === 'object' && v !== null ? v : {})) {
        if (LONE_SURROGATE.test(k)) return 'has a map key with a lone surrogate, which UTF-8 cannot store';
        const bad = badDefault(base.valuesType as T, item);
        if (bad !== null) return bad;
      }
      return null;
    case 'record':
      for (const f of base.fields ?? []) {
        const bad = badDefault(f.type, (v as Record<string, unknown> | null)?.[f.name]);
        if (bad !== null) return bad;
      }
      return null;
    default:
      // a union's default is of its first branch
      return base.typeName.startsWith('union') && base.types?.[0] !== undefined ? badDefault(base.types[0], v) : null;
  }
}

/** Whether a JSON value holds an object with an own key `__proto__`, at any depth. */
function hasProtoKey(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (Object.hasOwn(v, '__proto__')) return true;
  return Object.values(v).some(hasProtoKey);
}

/** Defaults the ingress could not store (see `unstorable_default`). */
function defaultProblems(root: T, declared: unknown): CarriageProblem[] {
  const out: CarriageProblem[] = [];
  const seen = new Set<T>();
  const visit = (t: T, path: string): void => {
    if (seen.has(t)) return;
    seen.add(t);
    if (t.typeName === 'record') {
      for (const f of t.fields ?? []) {
        const at = join(path, f.name);
        const d = f.defaultValue();
        const bad = d === undefined ? null : badDefault(f.type, d);
        if (bad !== null) {
          out.push({ path: at, rule: 'unstorable_default', message: `${at}: its default ${bad}` });
        }
        visit(f.type, at);
      }
    } else if (t.typeName === 'array') visit(t.itemsType as T, join(path, '[]'));
    else if (t.typeName === 'map') visit(t.valuesType as T, join(path, '{}'));
    else if (t.typeName.startsWith('union')) for (const b of t.types ?? []) visit(b, path);
  };
  visit(root, '');
  // parsing drops a `__proto__` key of a default (JSON.parse keeps it as an own key)
  const walk = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    const o = node as Record<string, unknown>;
    if (Object.hasOwn(o, 'default') && hasProtoKey(o.default)) {
      const at = typeof o.name === 'string' ? o.name : 'a default';
      out.push({
        path: at,
        rule: 'unstorable_default',
        message: `${at}: its default has a key "__proto__", which JavaScript objects drop`,
      });
    }
    for (const [k, v] of Object.entries(o)) if (k !== 'default') walk(v);
  };
  walk(declared);
  return out;
}

/** Records that contain themselves: one refusal per record, at the reference that closes the loop. */
function recursionProblems(root: T): CarriageProblem[] {
  const out: CarriageProblem[] = [];
  const done = new Set<T>();
  const reported = new Set<string>();
  const onPath: T[] = [];
  const visit = (t: T, path: string): void => {
    if (done.has(t)) return;
    if (t.typeName === 'record') {
      const at = onPath.indexOf(t);
      if (at >= 0) {
        const name = shortName(t.name);
        if (!reported.has(name)) {
          reported.add(name);
          const via = onPath
            .slice(at)
            .map((r) => shortName(r.name))
            .join(' → ');
          out.push({
            path: path === '' ? 'the schema' : path,
            rule: 'recursive_type',
            message: `${path}: record ${name} contains itself (${via} → ${name}); the pipeline's columns have a fixed depth, so recursive types cannot be stored`,
          });
        }
        return;
      }
      onPath.push(t);
      for (const f of t.fields ?? []) visit(f.type, join(path, f.name));
      onPath.pop();
      done.add(t);
      return;
    }
    if (t.typeName === 'array') visit(t.itemsType as T, join(path, '[]'));
    else if (t.typeName === 'map') visit(t.valuesType as T, join(path, '{}'));
    else if (t.typeName.startsWith('union')) for (const b of t.types ?? []) visit(b, path);
  };
  visit(root, '');
  return out;
}

/** Checks one level of column names: each against those before it, and the reserved prefixes. */
function checkSiblings(
  columns: readonly { readonly column: string; readonly path: string; readonly note?: string }[],
  taken: ReadonlyMap<string, string>,
  out: CarriageProblem[],
): void {
  const seen = new Map(taken);
  for (const { column, path, note } of columns) {
    const lower = column.toLowerCase();
    const other = seen.get(lower);
    if (other !== undefined) {
      out.push({
        path,
        rule: 'column_conflict',
        message: `${path}: column "${column}" collides with ${other} (DuckDB and BigQuery compare column names ignoring case)`,
      });
      continue;
    }
    const prefix = RESERVED_COLUMN_PREFIXES.find((p) => lower.startsWith(p));
    if (prefix !== undefined) {
      out.push({
        path,
        rule: 'column_conflict',
        message: `${path}: BigQuery reserves column names starting with "${prefix}" (any case)`,
      });
    }
    seen.set(lower, `column "${column}" of field ${path}${note ?? ''}`);
  }
}

function columnProblems(root: T): CarriageProblem[] {
  const out: CarriageProblem[] = [];
  const pipeline = new Map<string, string>([
    ...ENVELOPE_COLUMN_NAMES.map((c): [string, string] => [c, `the envelope column "${c}"`]),
    ...PARTITION_COLUMN_NAMES.map((c): [string, string] => [c, `the partition column "${c}"`]),
  ]);
  checkSiblings(
    (root.fields ?? []).map((f) => {
      const column = payloadColumnName(f.name);
      return { column, path: f.name, note: column === f.name ? '' : ` (${f.name} is an envelope name)` };
    }),
    pipeline,
    out,
  );
  const done = new Set<T>();
  const inner = (t: T, path: string): void => {
    const u = unwrap(t);
    if (u.typeName === 'record') {
      if (done.has(u)) return; // a named record is checked where it is defined
      done.add(u);
      const fields = u.fields ?? [];
      if (path !== '')
        checkSiblings(
          fields.map((f) => ({ column: f.name, path: join(path, f.name) })),
          new Map(),
          out,
        );
      for (const f of fields) inner(f.type, join(path, f.name));
    } else if (u.typeName === 'array') inner(u.itemsType as T, join(path, '[]'));
    else if (u.typeName === 'map') inner(u.valuesType as T, join(path, '{}'));
    // any other union is one JSON column: the names inside it are no columns
  };
  inner(root, '');
  return out;
}

/**
 * Levels of nested records of a record schema's deepest column, the way the BigQuery mapping
 * counts them: a record field 1 + its deepest field; an array its items (1 more when the items
 * are themselves repeated: an array or a map); a map 1 + its values; a general union 0 (JSON).
 * The schema's own record is the table, no level.
 */
export function nestingDepth(schema: avro.Type): number {
  return deepestColumn(schema as unknown as T).depth;
}

function deepestColumn(root: T): { depth: number; path: string } {
  let worst = { depth: 0, path: '' };
  for (const f of root.fields ?? []) {
    const d = depthOf(f.type, new Set([root]));
    if (d.depth > worst.depth) worst = { depth: d.depth, path: join(f.name, d.path) };
  }
  return worst;
}

function depthOf(t: T, onPath: Set<T>): { depth: number; path: string } {
  const u = unwrap(t);
  const deepest = (children: { t: T; part: string }[]): { depth: number; path: string } => {
    let best = { depth: 0, path: '' };
    for (const c of children) {
      const d = depthOf(c.t, onPath);
      if (d.depth > best.depth || best.path === '') best = { depth: d.depth, path: join(c.part, d.path) };
    }
    return best;
  };
  switch (u.typeName) {
    case 'record': {
      if (onPath.has(u)) return { depth: 0, path: '' }; // recursion: refused on its own
      onPath.add(u);
      const d = deepest((u.fields ?? []).map((f) => ({ t: f.type, part: f.name })));
      onPath.delete(u);
      return { depth: d.depth + 1, path: d.path };
    }
    case 'array': {
      const items = unwrap(u.itemsType as T);
      const d = deepest([{ t: u.itemsType as T, part: '[]' }]);
      return items.typeName === 'array' || items.typeName === 'map' ? { depth: d.depth + 1, path: d.path } : d;
    }
    case 'map': {
      const d = deepest([{ t: u.valuesType as T, part: '{}' }]);
      return { depth: d.depth + 1, path: d.path };
    }
    default:
      return { depth: 0, path: '' };
  }
}

function depthProblems(root: T): CarriageProblem[] {
  const worst = deepestColumn(root);
  if (worst.depth <= MAX_NESTING_DEPTH) return [];
  return [
    {
      path: worst.path,
      rule: 'nesting_too_deep',
      message: `${worst.path}: nested ${worst.depth} levels deep; BigQuery allows ${MAX_NESTING_DEPTH} (a record, a map's entries and an array of arrays or maps each count one)`,
    },
  ];
}
