import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import avro from 'avsc';
import { afterAll, describe, expect, it } from 'vitest';
import { AvroBuffer } from './avro-binary.js';
import { avroSkipper } from './avro-check.js';
import { Reader } from './avro-text.js';
import { ParquetFile } from './parquet-writer.js';
import { RawParquetTranscoder } from './raw-parquet.js';
import { writeEnvelope } from './raw-record.js';

const payloadSchema = {
  type: 'record',
  name: 'Everything',
  fields: [
    { name: 's', type: 'string' },
    { name: 'e', type: { type: 'enum', name: 'E', symbols: ['A', 'B_2', 'C'] } },
    { name: 'b', type: 'bytes' },
    { name: 'f', type: { type: 'fixed', name: 'F4', size: 4 } },
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'fl', type: 'float' },
    { name: 'd', type: 'double' },
    { name: 'bo', type: 'boolean' },
    { name: 'ns', type: ['null', 'string'] },
    { name: 'nl', type: ['long', 'null'] },
    { name: 'arr', type: { type: 'array', items: 'string' } },
    { name: 'm', type: { type: 'map', values: 'long' } },
    {
      name: 'rec',
      type: {
        type: 'record',
        name: 'Inner',
        fields: [
          { name: 'a', type: 'string' },
          { name: 'b', type: ['null', 'int'] },
          {
            name: 'c',
            type: { type: 'array', items: { type: 'record', name: 'X', fields: [{ name: 'x', type: 'double' }] } },
          },
        ],
      },
    },
    { name: 'nrec', type: ['null', 'Inner'] },
    { name: 'u', type: ['string', 'long', 'null'] },
    { name: 'w', type: ['string', 'Inner'] },
    { name: 'event_id', type: 'string' },
    { name: 'nothing', type: 'null' },
    { name: 'nitems', type: { type: 'array', items: ['null', 'long'] } },
    { name: 'grid', type: { type: 'array', items: { type: 'array', items: 'int' } } },
    { name: 'nmap', type: ['null', { type: 'map', values: ['null', 'Inner'] }], default: null },
    { name: 'fx0', type: { type: 'fixed', name: 'F0', size: 0 } },
  ],
};
const payloadType = avro.Type.forSchema(payloadSchema as avro.Schema, { wrapUnions: 'auto' });

const TRICKY = [
  '',
  'plain',
  'comma, inside',
  'quote " inside',
  '"',
  'new\nline',
  'cr\rlf\r\n',
  'ünïcödé 𝄞',
  '\\back\\slash',
  'tab\tand\u0001control',
  'NULL',
];

function rows(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    const v = payloadType.random() as unknown as Record<string, unknown>;
    const t = TRICKY[i % TRICKY.length] as string;
    v.s = t;
    v.event_id = `p-${i}`;
    (v.rec as Record<string, unknown>).a = TRICKY[(i + 3) % TRICKY.length];
    if (i % 4 === 0) v.arr = [t, '', 'x,y'];
    if (i % 5 === 0) v.m = { [t || 'k']: i, 'a"b': -i - 1 };
    if (i % 3 === 0) v.ns = null;
    if (i % 7 === 0) v.nl = null;
    if (i % 6 === 0) v.b = Buffer.alloc(0);
    if (i % 8 === 0) v.nitems = [];
    if (i % 9 === 0) v.grid = [[], [1, -2], []];
    if (i % 10 === 0) v.nmap = null;
    if (i % 10 === 1) v.nmap = {};
    if (i % 10 === 2) v.nmap = { x: null, y: { a: 'q', b: null, c: [] } };
    if (i % 11 === 0) v.arr = [];
    out.push(v);
  }
  return out;
}

/** What DuckDB should return for a payload value, in `getRowObjectsJson` form, normalised. */
function norm(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Object.keys(o).length === 0) return []; // an empty map reads back as an empty list of entries
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, norm(x)]));
  }
  if (typeof v === 'number') return Number.isInteger(v) ? v : Number(v.toPrecision(6));
  return v;
}

function normDuck(v: unknown): unknown {
  if (Array.isArray(v)) {
    if (
      v.length > 0 &&
      v.every((e) => e !== null && typeof e === 'object' && 'key' in e && 'value' in e && Object.keys(e).length === 2)
    ) {
      return Object.fromEntries(v.map((e: { key: string; value: unknown }) => [e.key, normDuck(e.value)]));
    }
    return v.map(normDuck);
  }
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, normDuck(x)]));
  }
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  if (typeof v === 'number') return Number.isInteger(v) ? v : Number(v.toPrecision(6));
  return v;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('RawParquetTranscoder', () => {
  it('maps every Avro type through Parquet into DuckDB without changing a value', async () => {
    const values = rows();
    const raw = new AvroBuffer();
    // every 7th record repeats an earlier id and is skipped, as the dedup step does
    const kept: number[] = [];
    const producerOf = (i: number): string | null => (i % 3 === 0 ? null : i % 3 === 1 ? 'web' : 'app-ü');
    const keys: Buffer[] = [];
    values.forEach((v, i) => {
      const start = raw.pos;
      writeEnvelope(raw, {
        id: `id,${i}"`,
        producer: producerOf(i),
        arrivalTime: 1_763_805_600_000 + i,
        ingressInstance: 'ingress-1',
        sequence: i + 1,
        clientTime: i % 2 === 0 ? null : 1_700_000_000_000 + i,
        writerVersion: 3,
      });
      // the dedup key: the encoded id and producer union
      const key = new AvroBuffer(64);
      key.writeString(`id,${i}"`);
      const p = producerOf(i);
      if (p === null) key.writeLong(0);
      else {
        key.writeLong(1);
        key.writeString(p);
      }
      keys.push(Buffer.from(key.view()));
      expect(raw.view().subarray(start, start + key.pos)).toEqual(key.view());
      raw.writeBytes(payloadType.toBuffer(v));
      if (i % 7 !== 3) kept.push(i);
    });
    const t = new RawParquetTranscoder(payloadType);
    const skip = avroSkipper(payloadType);
    const reader = new Reader();
    reader.buf = Buffer.from(raw.view());
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-parquet-'));
    dirs.push(dir);
    // tiny pages and several row groups, so page and row-group boundaries are crossed
    const file = await ParquetFile.create(join(dir, 'a.parquet'), t.schema, t.columns, { pageBytes: 512 });
    const seqs: number[] = [];
    for (let i = 0; i < values.length; i++) {
      const k = t.envelope(reader);
      seqs.push(k.sequence);
      expect(reader.buf.toString('utf8', k.idStart, k.idEnd)).toBe(`id,${i}"`);
      expect(k.producerStart < 0 ? null : reader.buf.toString('utf8', k.producerStart, k.producerEnd)).toBe(
        producerOf(i),
      );
      expect(reader.buf.subarray(k.keyStart, k.keyEnd)).toEqual(keys[i]);
      if (i % 7 === 3) {
        reader.pos = skip(reader.buf, reader.pos);
        continue;
      }
      t.row(reader);
      file.endRow();
      if (i % 100 === 99) await file.flushRowGroup();
    }
    await file.close();
    expect(file.rows).toBe(kept.length);
    expect(reader.pos).toBe(reader.buf.length);
    expect(seqs).toEqual(values.map((_, i) => i + 1));

    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const result = await c.runAndReadAll(
      `SELECT * REPLACE (to_base64(b) AS b, to_base64(f) AS f, to_base64(fx0) AS fx0,
              epoch_ms(event_arrival_time) AS event_arrival_time, epoch_ms(event_client_time) AS event_client_time)
       FROM read_parquet('${dir}/a.parquet')`,
    );
    const types = Object.fromEntries(result.columnNames().map((n, i) => [n, result.columnTypes()[i]?.toString()]));
    expect(types).toMatchObject({
      event_arrival_time: 'BIGINT',
      payload_event_id: 'VARCHAR',
      event_producer: 'VARCHAR',
      m: 'MAP(VARCHAR, BIGINT)',
      rec: 'STRUCT("a" VARCHAR, "b" INTEGER, "c" STRUCT("x" DOUBLE)[])',
      nl: 'BIGINT',
      grid: 'INTEGER[][]',
    });
    const described = await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${dir}/a.parquet')`);
    const declared = Object.fromEntries(t.columnTypes.map((col) => [col.name, col.duckType]));
    for (const [name, type] of described.getRows() as [string, string][])
      expect(type, name).toBe(declared[name]?.replaceAll('"', ''));
    const got = result.getRowObjectsJson();
    expect(got).toHaveLength(kept.length);
    got.forEach((row, j) => {
      const i = kept[j] as number;
      const v = values[i] as Record<string, unknown>;
      expect(row.event_id).toBe(`id,${i}"`);
      expect(row.event_producer).toBe(producerOf(i));
      expect(Number(row.event_arrival_time)).toBe(1_763_805_600_000 + i);
      expect(row.event_client_time === null ? null : Number(row.event_client_time)).toBe(
        i % 2 === 0 ? null : 1_700_000_000_000 + i,
      );
      const { u, w, event_id, fl, ...rest } = v;
      const duck = normDuck({ ...row }) as Record<string, unknown>;
      for (const [k, x] of Object.entries(rest)) expect(duck[k], `row ${i} field ${k}`).toEqual(norm(x));
      expect(duck.payload_event_id).toBe(event_id);
      expect(Math.fround(Number(row.fl))).toBe(Math.fround(fl as number));
      expect(row.u === null ? null : JSON.parse(row.u as string)).toEqual(norm(u));
      expect(JSON.parse(row.w as string)).toEqual(normJson(w));
    });
    c.closeSync();
    db.closeSync();
  });
});

/** A general union's value as its JSON column holds it (avsc's wrapped form, bytes as base64). */
function normJson(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (x?.type === 'Buffer' ? Buffer.from(x.data).toString('base64') : x)));
}
