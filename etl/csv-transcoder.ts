/**
 * Transcodes raw records (Avro binary) straight into CSV lines for DuckDB, without building
 * JavaScript objects: strings are copied byte for byte (quoted when needed), numbers are written as
 * digits, nested values (records, arrays, maps, general unions) become JSON text that DuckDB casts
 * back to STRUCT, LIST or MAP. This is the dedup step's hot loop.
 *
 * Column mapping (Avro → DuckDB): boolean BOOLEAN, int INTEGER, long BIGINT, float FLOAT, double
 * DOUBLE, string and enum VARCHAR, bytes and fixed BLOB (base64 strings when nested), record
 * STRUCT, array LIST, map MAP(VARCHAR, …), `[null, T]` nullable T, any other union JSON (the
 * value itself where its branch is unambiguous, as avsc reads it, else `{"branch": value}`). Logical types keep their underlying type, except the
 * envelope's `arrivalTime`/`clientTime`, which become TIMESTAMP columns.
 * Envelope columns are `event_id`, `event_arrival_time`, `event_ingress_instance`,
 * `event_sequence`, `event_client_time`, `event_writer_version`; payload fields follow with their
 * own names (`payload_<name>` if a name is taken by the envelope).
 */
import type { Type } from 'avsc';

/** How one output column is read back by DuckDB. */
export interface ColumnPlan {
  readonly name: string;
  /** Type of the CSV column as read. */
  readonly csvType: string;
  /** Expression producing the final column from the CSV column. */
  readonly select: string;
  /** Type of the final column. */
  readonly finalType: string;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const NL = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';

/** A growing byte buffer with the writes the transcoder needs (byte loops: short values dominate). */
export class TextSink {
  buf: Buffer;
  pos = 0;
  constructor(size = 1 << 20) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }
  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  byte(b: number): void {
    if (this.pos + 1 > this.buf.length) this.grow(1);
    this.buf[this.pos++] = b;
  }
  ascii(s: string): void {
    const n = s.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }
  bytes(b: Uint8Array): void {
    const n = b.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = b[i] as number;
    this.pos = p;
  }
  integer(n: number): void {
    if (this.pos + 24 > this.buf.length) this.grow(24);
    const buf = this.buf;
    if (n < 0) {
      buf[this.pos++] = 0x2d;
      n = -n;
    }
    if (n < 1e9) {
      this.small(n);
      return;
    }
    // split into a high part and nine low digits, each exact in 32-bit arithmetic
    const hi = Math.floor(n / 1e9);
    let lo = n - hi * 1e9;
    this.small(hi);
    let p = this.pos + 9;
    this.pos = p;
    for (let i = 0; i < 9; i++) {
      const q = (lo / 10) | 0;
      buf[--p] = 0x30 + (lo - q * 10);
      lo = q;
    }
  }
  /** 0 <= n < 1e9. */
  private small(n: number): void {
    const buf = this.buf;
    let digits = 1;
    for (let m = n; m >= 10; m = (m / 10) | 0) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = (n / 10) | 0;
      buf[--p] = 0x30 + (n - q * 10);
      n = q;
    } while (n > 0);
  }
  /** A CSV field from UTF-8 bytes: as is, or quoted (quotes doubled) when it needs to be. */
  csvText(src: Uint8Array, start: number, end: number): void {
    const len = end - start;
    if (this.pos + 2 * len + 2 > this.buf.length) this.grow(2 * len + 2);
    const out = this.buf;
    let p = this.pos;
    let plain = len > 0;
    for (let i = start; i < end; i++) {
      const c = src[i] as number;
      if (c === QUOTE || c === COMMA || c === NL || c === CR) {
        plain = false;
        break;
      }
      out[p++] = c;
    }
    if (plain) {
      this.pos = p;
      return;
    }
    p = this.pos;
    out[p++] = QUOTE;
    for (let i = start; i < end; i++) {
      const c = src[i] as number;
      if (c === QUOTE) out[p++] = QUOTE;
      out[p++] = c;
    }
    out[p++] = QUOTE;
    this.pos = p;
  }
  /** A JSON string from UTF-8 bytes. */
  jsonText(src: Uint8Array, start: number, end: number): void {
    if (this.pos + (end - start) * 6 + 2 > this.buf.length) this.grow((end - start) * 6 + 2);
    const out = this.buf;
    let p = this.pos;
    out[p++] = QUOTE;
    for (let i = start; i < end; i++) {
      const c = src[i] as number;
      if (c === QUOTE || c === BACKSLASH) {
        out[p++] = BACKSLASH;
        out[p++] = c;
      } else if (c < 0x20) {
        out[p++] = BACKSLASH;
        out[p++] = 0x75; // u
        out[p++] = 0x30;
        out[p++] = 0x30;
        out[p++] = HEX.charCodeAt(c >> 4);
        out[p++] = HEX.charCodeAt(c & 15);
      } else out[p++] = c;
    }
    out[p++] = QUOTE;
    this.pos = p;
  }
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** A cursor over Avro binary data. */
export class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  long(): number {
    const buf = this.buf;
    let b = buf[this.pos++] as number;
    let n = b & 0x7f;
    let shift = 128;
    while (b & 0x80) {
      b = buf[this.pos++] as number;
      n += (b & 0x7f) * shift;
      shift *= 128;
    }
    if (this.pos > buf.length) throw new RangeError('truncated Avro data');
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
  /** Skips a length-prefixed string/bytes, returning its [start, end). */
  span(): number {
    const len = this.long();
    const start = this.pos;
    this.pos += len;
    if (len < 0 || this.pos > this.buf.length) throw new RangeError('truncated Avro data');
    return start;
  }
}

type Emit = (r: Reader, out: TextSink) => void;

interface AvroTypeLike {
  readonly typeName: string;
  readonly fields?: { name: string; type: AvroTypeLike }[];
  readonly types?: AvroTypeLike[];
  readonly itemsType?: AvroTypeLike;
  readonly valuesType?: AvroTypeLike;
  readonly symbols?: string[];
  readonly size?: number;
  readonly branchName?: string;
}

function base64(out: TextSink, r: Reader, start: number, end: number, quoted: boolean): void {
  const s = r.buf.toString('base64', start, end);
  if (quoted) out.byte(QUOTE);
  out.ascii(s);
  if (quoted) out.byte(QUOTE);
}

function nullBranch(t: AvroTypeLike): number {
  if (t.typeName !== 'union:unwrapped' && t.typeName !== 'union:wrapped') return -1;
  const types = t.types ?? [];
  if (types.length !== 2) return -1;
  return types.findIndex((x) => x.typeName === 'null');
}

function isNested(t: AvroTypeLike): boolean {
  if (['record', 'array', 'map'].includes(t.typeName)) return true;
  if (t.typeName.startsWith('union')) {
    const n = nullBranch(t);
    return n < 0 || isNested((t.types ?? [])[1 - n] as AvroTypeLike);
  }
  return false;
}

/** DuckDB type of an Avro type (`nested`: inside a JSON value, where bytes are base64 strings). */
export function duckType(t: AvroTypeLike, nested = false): string {
  switch (t.typeName) {
    case 'null':
    case 'string':
    case 'enum':
      return 'VARCHAR';
    case 'boolean':
      return 'BOOLEAN';
    case 'int':
      return 'INTEGER';
    case 'long':
      return 'BIGINT';
    case 'float':
      return 'FLOAT';
    case 'double':
      return 'DOUBLE';
    case 'bytes':
    case 'fixed':
      return nested ? 'VARCHAR' : 'BLOB';
    case 'array':
      return `${duckType(t.itemsType as AvroTypeLike, true)}[]`;
    case 'map':
      return `MAP(VARCHAR, ${duckType(t.valuesType as AvroTypeLike, true)})`;
    case 'record':
      return `STRUCT(${(t.fields ?? []).map((f) => `${quoteIdent(f.name)} ${duckType(f.type, true)}`).join(', ')})`;
    default: {
      const n = nullBranch(t);
      return n < 0 ? 'JSON' : duckType((t.types ?? [])[1 - n] as AvroTypeLike, nested);
    }
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Calls `item` for each item of an Avro array or map (blocks of items, negative counts with sizes). */
function blockItems(r: Reader, item: (first: boolean) => void): void {
  let first = true;
  for (let n = r.long(); n !== 0; n = r.long()) {
    if (n < 0) {
      n = -n;
      r.long(); // the block's size in bytes
    }
    for (let i = 0; i < n; i++) {
      item(first);
      first = false;
    }
  }
}

/** Emits a value as JSON. */
function jsonEmitter(t: AvroTypeLike): Emit {
  switch (t.typeName) {
    case 'null':
      return (_r, out) => out.ascii('null');
    case 'boolean':
      return (r, out) => out.ascii(r.buf[r.pos++] === 1 ? 'true' : 'false');
    case 'int':
    case 'long':
      return (r, out) => out.integer(r.long());
    case 'float':
      return (r, out) => {
        const v = r.buf.readFloatLE(r.pos);
        r.pos += 4;
        out.ascii(Number.isFinite(v) ? String(v) : 'null');
      };
    case 'double':
      return (r, out) => {
        const v = r.buf.readDoubleLE(r.pos);
        r.pos += 8;
        out.ascii(Number.isFinite(v) ? String(v) : 'null');
      };
    case 'string':
      return (r, out) => {
        const s = r.span();
        out.jsonText(r.buf, s, r.pos);
      };
    case 'bytes':
      return (r, out) => {
        const s = r.span();
        base64(out, r, s, r.pos, true);
      };
    case 'fixed': {
      const size = t.size as number;
      return (r, out) => {
        r.pos += size;
        base64(out, r, r.pos - size, r.pos, true);
      };
    }
    case 'enum': {
      const symbols = (t.symbols ?? []).map((s) => JSON.stringify(s));
      return (r, out) => out.ascii(symbols[r.long()] as string);
    }
    case 'array': {
      const item = jsonEmitter(t.itemsType as AvroTypeLike);
      return (r, out) => {
        out.byte(0x5b);
        blockItems(r, (first) => {
          if (!first) out.byte(COMMA);
          item(r, out);
        });
        out.byte(0x5d);
      };
    }
    case 'map': {
      const value = jsonEmitter(t.valuesType as AvroTypeLike);
      return (r, out) => {
        out.byte(0x7b);
        blockItems(r, (first) => {
          if (!first) out.byte(COMMA);
          const s = r.span();
          out.jsonText(r.buf, s, r.pos);
          out.byte(0x3a);
          value(r, out);
        });
        out.byte(0x7d);
      };
    }
    case 'record': {
      const fields = (t.fields ?? []).map((f) => ({ key: `${JSON.stringify(f.name)}:`, emit: jsonEmitter(f.type) }));
      return (r, out) => {
        out.byte(0x7b);
        for (let i = 0; i < fields.length; i++) {
          const f = fields[i] as (typeof fields)[number];
          if (i > 0) out.byte(COMMA);
          out.ascii(f.key);
          f.emit(r, out);
        }
        out.byte(0x7d);
      };
    }
    default: {
      const types = t.types ?? [];
      const nb = nullBranch(t);
      const branches = types.map((b) => jsonEmitter(b));
      if (nb >= 0 || t.typeName === 'union:unwrapped') {
        return (r, out) => (branches[r.long()] as Emit)(r, out);
      }
      const keys = types.map((b) => `{${JSON.stringify(b.branchName ?? b.typeName)}:`);
      return (r, out) => {
        const i = r.long();
        if (types[i]?.typeName === 'null') {
          out.ascii('null');
          return;
        }
        out.ascii(keys[i] as string);
        (branches[i] as Emit)(r, out);
        out.byte(0x7d);
      };
    }
  }
}

/** Emits a value as one CSV field (empty = NULL). */
function csvEmitter(t: AvroTypeLike, scratch: TextSink): Emit {
  if (isNested(t)) {
    const nb = nullBranch(t);
    const json = nb >= 0 ? (t.types ?? []).map((b) => jsonEmitter(b)) : [jsonEmitter(t)];
    return (r, out) => {
      scratch.pos = 0;
      if (nb >= 0) {
        const branch = r.long();
        if (branch === nb) return;
        (json[branch] as Emit)(r, scratch);
      } else (json[0] as Emit)(r, scratch);
      out.csvText(scratch.buf, 0, scratch.pos);
    };
  }
  switch (t.typeName) {
    case 'null':
      return () => undefined;
    case 'string':
      return (r, out) => {
        const s = r.span();
        if (s === r.pos) out.ascii('""');
        else out.csvText(r.buf, s, r.pos);
      };
    case 'enum': {
      const symbols = (t.symbols ?? []).map((x) => Buffer.from(x));
      return (r, out) => out.bytes(symbols[r.long()] as Buffer);
    }
    case 'bytes':
      return (r, out) => {
        const s = r.span();
        base64(out, r, s, r.pos, s === r.pos);
      };
    case 'fixed': {
      const size = t.size as number;
      return (r, out) => {
        r.pos += size;
        base64(out, r, r.pos - size, r.pos, size === 0);
      };
    }
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return jsonEmitter(t);
    default: {
      const nb = nullBranch(t);
      const other = csvEmitter((t.types ?? [])[1 - nb] as AvroTypeLike, scratch);
      return (r, out) => {
        if (r.long() !== nb) other(r, out);
      };
    }
  }
}

export const ENVELOPE_COLUMNS = [
  'event_id',
  'event_arrival_time',
  'event_ingress_instance',
  'event_sequence',
  'event_client_time',
  'event_writer_version',
] as const;

/** The fields of one raw record the dedup step needs, read while transcoding. */
export interface RecordKeys {
  idStart: number;
  idEnd: number;
  instanceStart: number;
  instanceEnd: number;
  sequence: number;
}

/**
 * Transcodes raw records of one payload schema. `line` writes one record as a CSV line into a
 * sink and fills `keys`; the caller decides (dedup) whether to keep the line.
 */
export class RawCsvTranscoder {
  readonly columns: ColumnPlan[];
  private readonly payload: Emit[];
  private readonly scratch = new TextSink(64 * 1024);
  readonly keys: RecordKeys = { idStart: 0, idEnd: 0, instanceStart: 0, instanceEnd: 0, sequence: 0 };

  constructor(payloadType: Type) {
    const t = payloadType as unknown as AvroTypeLike;
    const fields = t.fields ?? [];
    const taken = new Set<string>(ENVELOPE_COLUMNS);
    this.columns = [
      { name: 'event_id', csvType: 'VARCHAR', select: 'event_id', finalType: 'VARCHAR' },
      {
        name: 'event_arrival_time',
        csvType: 'BIGINT',
        select: 'epoch_ms(event_arrival_time) AS event_arrival_time',
        finalType: 'TIMESTAMP',
      },
      { name: 'event_ingress_instance', csvType: 'VARCHAR', select: 'event_ingress_instance', finalType: 'VARCHAR' },
      { name: 'event_sequence', csvType: 'BIGINT', select: 'event_sequence', finalType: 'BIGINT' },
      {
        name: 'event_client_time',
        csvType: 'BIGINT',
        select: 'epoch_ms(event_client_time) AS event_client_time',
        finalType: 'TIMESTAMP',
      },
      { name: 'event_writer_version', csvType: 'INTEGER', select: 'event_writer_version', finalType: 'INTEGER' },
      ...fields.map((f) => {
        const name = taken.has(f.name) ? `payload_${f.name}` : f.name;
        const q = quoteIdent(name);
        const type = duckType(f.type);
        if (isNested(f.type)) {
          return { name, csvType: 'VARCHAR', select: `CAST(json(${q}) AS ${type}) AS ${q}`, finalType: type };
        }
        if (type === 'BLOB') return { name, csvType: 'VARCHAR', select: `from_base64(${q}) AS ${q}`, finalType: type };
        return { name, csvType: type, select: q, finalType: type };
      }),
    ];
    this.payload = fields.map((f) => csvEmitter(f.type, this.scratch));
  }

  /** Reads one raw record at `r.pos` and writes its CSV line (with the newline) into `out`. */
  line(r: Reader, out: TextSink): void {
    const k = this.keys;
    k.idStart = r.span();
    k.idEnd = r.pos;
    out.csvText(r.buf, k.idStart, k.idEnd);
    out.byte(COMMA);
    out.integer(r.long());
    out.byte(COMMA);
    k.instanceStart = r.span();
    k.instanceEnd = r.pos;
    out.csvText(r.buf, k.instanceStart, k.instanceEnd);
    out.byte(COMMA);
    k.sequence = r.long();
    out.integer(k.sequence);
    out.byte(COMMA);
    if (r.long() === 1) out.integer(r.long());
    out.byte(COMMA);
    out.integer(r.long());
    const payload = this.payload;
    for (let i = 0; i < payload.length; i++) {
      out.byte(COMMA);
      (payload[i] as Emit)(r, out);
    }
    out.byte(NL);
  }
}
