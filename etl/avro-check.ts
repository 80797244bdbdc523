/**
 * Checks that bytes are one well-formed Avro value of a type, without decoding it (no objects,
 * no strings): the consumer's hot path only needs to know that a payload it stores verbatim is
 * readable. It checks what a decoder would trip on: lengths and counts within the buffer, union
 * branch and enum indices in range, booleans 0 or 1, and no trailing bytes.
 */
import type { Type } from 'avsc';

interface Cursor {
  buf: Buffer;
  pos: number;
}

type Check = (c: Cursor) => void;

function fail(what: string): never {
  throw new Error(what);
}

function long(c: Cursor): number {
  const buf = c.buf;
  let b: number;
  let n = 0;
  let shift = 1;
  let i = 0;
  do {
    if (c.pos >= buf.length) fail('truncated');
    b = buf[c.pos++] as number;
    n += (b & 0x7f) * shift;
    shift *= 128;
    if (++i > 10) fail('varint too long');
  } while (b & 0x80);
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

function skip(c: Cursor, n: number): void {
  if (n < 0 || c.pos + n > c.buf.length) fail('truncated');
  c.pos += n;
}

interface TypeLike {
  readonly typeName: string;
  readonly fields?: { type: TypeLike }[];
  readonly types?: TypeLike[];
  readonly itemsType?: TypeLike;
  readonly valuesType?: TypeLike;
  readonly symbols?: string[];
  readonly size?: number;
  readonly name?: string;
}

function checker(t: TypeLike, seen: Map<TypeLike, Check>): Check {
  const known = seen.get(t);
  if (known) return known;
  let impl: Check = () => undefined;
  const ref: Check = (c) => impl(c);
  seen.set(t, ref);
  switch (t.typeName) {
    case 'null':
      impl = () => undefined;
      break;
    case 'boolean':
      impl = (c) => {
        if (c.pos >= c.buf.length) fail('truncated');
        if ((c.buf[c.pos++] as number) > 1) fail('invalid boolean');
      };
      break;
    case 'int':
    case 'long':
      impl = (c) => void long(c);
      break;
    case 'float':
      impl = (c) => skip(c, 4);
      break;
    case 'double':
      impl = (c) => skip(c, 8);
      break;
    case 'string':
    case 'bytes':
      impl = (c) => skip(c, long(c));
      break;
    case 'fixed': {
      const size = t.size ?? 0;
      impl = (c) => skip(c, size);
      break;
    }
    case 'enum': {
      const n = t.symbols?.length ?? 0;
      impl = (c) => {
        const i = long(c);
        if (i < 0 || i >= n) fail(`enum index ${i} out of range`);
      };
      break;
    }
    case 'array':
    case 'map': {
      const isMap = t.typeName === 'map';
      const item = checker((isMap ? t.valuesType : t.itemsType) as TypeLike, seen);
      impl = (c) => {
        for (let n = long(c); n !== 0; n = long(c)) {
          if (n < 0) {
            n = -n;
            long(c); // block size in bytes
          }
          for (let i = 0; i < n; i++) {
            if (isMap) skip(c, long(c));
            item(c);
          }
        }
      };
      break;
    }
    case 'record':
    case 'error': {
      const fields = (t.fields ?? []).map((f) => checker(f.type, seen));
      impl = (c) => {
        for (const f of fields) f(c);
      };
      break;
    }
    default: {
      if (!t.typeName.startsWith('union')) fail(`unsupported Avro type ${t.typeName}`);
      const branches = (t.types ?? []).map((b) => checker(b, seen));
      impl = (c) => {
        const i = long(c);
        const b = branches[i];
        if (b === undefined) fail(`union branch ${i} out of range`);
        b(c);
      };
    }
  }
  return ref;
}

/** A function that throws (with the reason) unless `buf` is exactly one value of `type`. */
export function avroCheck(type: Type): (buf: Buffer) => void {
  const check = checker(type as unknown as TypeLike, new Map());
  const c: Cursor = { buf: Buffer.alloc(0), pos: 0 };
  return (buf) => {
    c.buf = buf;
    c.pos = 0;
    check(c);
    if (c.pos !== buf.length) fail('trailing bytes');
  };
}

/**
 * A function returning the position just after the value of `type` that starts at `pos`, with the
 * checks of {@link avroCheck} (the same errors).
 */
export function avroSkipper(type: Type): (buf: Buffer, pos: number) => number {
  return compiledSkipper(type as unknown as TypeLike);
}

/** The closure-built skipper {@link avroSkipper} replaced: the reference its tests compare with. */
export function interpretedSkipper(type: Type): (buf: Buffer, pos: number) => number {
  const check = checker(type as unknown as TypeLike, new Map());
  const c: Cursor = { buf: Buffer.alloc(0), pos: 0 };
  return (buf, pos) => {
    c.buf = buf;
    c.pos = pos;
    check(c);
    return c.pos;
  };
}

/**
 * The skipper as one generated function per record type (records may be recursive), the rest
 * written out inline: the dedup step skips every payload it reads, and the closures of `checker`
 * cost it several times more. The code holds no name from the schema, only numbers (enum sizes,
 * fixed sizes, branch counts).
 */
function compiledSkipper(root: TypeLike): (buf: Buffer, pos: number) => number {
  const functions: string[] = [];
  const named = new Map<TypeLike, string>();
  let depth = 0;
  const int = (n: number) => {
    if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
    return String(n);
  };
  // reads a long into `v` (zig-zag decoded), as `long()` above does
  const readLong = (v: string) =>
    `if (p >= L) f('truncated'); x = b[p++]; ` +
    `if (x < 128) ${v} = (x >>> 1) ^ -(x & 1); else { n = x & 127; s = 128; i = 1; ` +
    `do { if (p >= L) f('truncated'); x = b[p++]; n += (x & 127) * s; s *= 128; if (++i > 10) f('varint too long'); } while (x & 128); ` +
    `${v} = n % 2 === 0 ? n / 2 : -(n + 1) / 2; }\n`;
  const skipBytes = (v: string) => `if (${v} < 0 || p + ${v} > L) f('truncated'); p += ${v};\n`;
  const fnOf = (t: TypeLike): string => {
    const known = named.get(t);
    if (known !== undefined) return known;
    const name = `r${named.size}`;
    named.set(t, name);
    const saved = depth;
    depth = 0;
    const body = (t.fields ?? []).map((f) => gen(f.type)).join('');
    depth = saved;
    functions.push(
      `function ${name}(b, p) { const L = b.length; let x = 0, n = 0, s = 0, i = 0, v = 0;\n${body}return p; }`,
    );
    return name;
  };
  const gen = (t: TypeLike): string => {
    switch (t.typeName) {
      case 'null':
        return '';
      case 'boolean':
        return `if (p >= L) f('truncated'); if (b[p++] > 1) f('invalid boolean');\n`;
      case 'int':
      case 'long':
        return readLong('v');
      case 'float':
        return skipBytes('4');
      case 'double':
        return skipBytes('8');
      case 'string':
      case 'bytes':
        return readLong('v') + skipBytes('v');
      case 'fixed':
        return skipBytes(int(t.size ?? 0));
      case 'enum':
        return `${readLong('v')}if (v < 0 || v >= ${int(t.symbols?.length ?? 0)}) f('enum index ' + v + ' out of range');\n`;
      case 'array':
      case 'map': {
        const d = depth++;
        const item = gen((t.typeName === 'map' ? t.valuesType : t.itemsType) as TypeLike);
        depth--;
        const key = t.typeName === 'map' ? readLong('v') + skipBytes('v') : '';
        return (
          `for (;;) { let c${d} = 0; ${readLong(`c${d}`)}if (c${d} === 0) break;\n` +
          `if (c${d} < 0) { c${d} = -c${d}; ${readLong('v')}}\n` +
          `for (let k${d} = 0; k${d} < c${d}; k${d}++) {\n${key}${item}} }\n`
        );
      }
      case 'record':
      case 'error':
        return `p = ${fnOf(t)}(b, p);\n`;
      default: {
        if (!t.typeName.startsWith('union')) throw new Error(`unsupported Avro type ${t.typeName}`);
        const cases = (t.types ?? []).map((branch, k) => `case ${k}: {\n${gen(branch)}break; }\n`).join('');
        return `${readLong('v')}switch (v) {\n${cases}default: f('union branch ' + v + ' out of range'); }\n`;
      }
    }
  };
  const top = `function top(b, p) { const L = b.length; let x = 0, n = 0, s = 0, i = 0, v = 0;\n${gen(root)}return p; }`;
  const code = `${functions.join('\n')}\n${top}\nreturn top;`;
  return new Function('f', code)(fail) as (buf: Buffer, pos: number) => number;
}
