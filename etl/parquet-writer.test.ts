import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import avro from 'avsc';
import { afterAll, describe, expect, it } from 'vitest';
import { AvroBuffer } from './avro-binary.js';
import { Reader } from './avro-text.js';
import {
  Converted,
  DICTIONARY_MAX_BYTES,
  Logical,
  ParquetColumn,
  ParquetFile,
  Physical,
  Repetition,
  type SchemaNode,
} from './parquet-writer.js';
import { RawParquetTranscoder } from './raw-parquet.js';
import { writeEnvelope } from './raw-record.js';

const payloadType = avro.Type.forSchema({
  type: 'record',
  name: 'Stats',
  fields: [
    { name: 's', type: 'string' },
    { name: 'e', type: { type: 'enum', name: 'E', symbols: ['A', 'B', 'C'] } },
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'fl', type: 'float' },
    { name: 'd', type: 'double' },
    { name: 'z', type: 'double' },
    { name: 'zf', type: 'float' },
    { name: 'bo', type: 'boolean' },
    { name: 'ns', type: ['null', 'string'] },
    { name: 'b', type: 'bytes' },
    { name: 'arr', type: { type: 'array', items: 'long' } },
  ],
});

const BASE = 1_763_805_600_000;
const GROUP = 100;

interface Row {
  s: string;
  e: string;
  i: number;
  l: number;
  fl: number;
  d: number;
  z: number;
  zf: number;
  bo: boolean;
  ns: string | null;
  b: Buffer;
  arr: number[];
}

function makeRow(i: number): Row {
  const long = 'ü'.repeat(20) + 'x'.repeat(40) + String(i);
  return {
    s: i % 10 === 7 ? long : `s${(i * 7919) % 1000}`,
    e: ['A', 'B', 'C'][i % 3] as string,
    i: ((i * 31) % 97) - 48,
    l: (i % 2 === 0 ? -1 : 1) * 2 ** 50 + i,
    fl: i % 11 === 0 ? Number.NaN : (i % 13) - 6.5,
    d: i % 17 === 0 ? Number.NaN : i % 19 === 0 ? -0 : i / 8,
    z: i % 19 === 0 ? -0 : 0.25 + (i % 23),
    zf: i % 19 === 0 ? 0 : -0.5 - (i % 23),
    bo: i % 5 !== 0,
    ns: i % 4 === 0 ? null : `n${i % 9}`,
    b: Buffer.from([0xff - (i % 200), i % 7]),
    arr: Array.from({ length: i % 3 }, (_, k) => i * 10 + k),
  };
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes `n` rows (arrival times ascending), a row group every `GROUP` rows. */
async function writeRows(n: number, pageBytes = 256): Promise<{ path: string; rows: Row[] }> {
  const raw = new AvroBuffer();
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const row = makeRow(i);
    rows.push(row);
    writeEnvelope(raw, {
      id: `id-${i}`,
      producer: i % 3 === 0 ? null : 'web',
      arrivalTime: BASE + i * 1000,
      ingressInstance: 'ingress-1',
      sequence: i + 1,
      clientTime: i % 2 === 0 ? null : BASE - i,
      writerVersion: 3,
    });
    raw.writeBytes(payloadType.toBuffer(row));
  }
  const t = new RawParquetTranscoder(payloadType);
  const reader = new Reader();
  reader.buf = Buffer.from(raw.view());
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-pqstats-'));
  dirs.push(dir);
  const path = join(dir, 'a.parquet');
  const file = await ParquetFile.create(path, t.schema, t.columns, { pageBytes });
  for (let i = 0; i < n; i++) {
    t.envelope(reader);
    t.row(reader);
    file.endRow();
    if (i % GROUP === GROUP - 1) await file.flushRowGroup();
  }
  await file.close();
  return { path, rows };
}

async function duck(): Promise<{ all: (sql: string) => Promise<Record<string, unknown>[]>; close: () => void }> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  return {
    all: async (sql) => (await c.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[],
    close: () => {
      c.closeSync();
      db.closeSync();
    },
  };
}

const LEAVES = ['event_id', 'event_producer', 'event_arrival_time', 'event_ingress_instance', 'event_sequence'];

describe('ParquetFile statistics', () => {
  it('gives each row group the null count, min and max DuckDB computes from its rows', async () => {
    const { path } = await writeRows(300);
    const db = await duck();
    try {
      const meta = await db.all(
        `SELECT row_group_id::INT AS g, path_in_schema AS col, stats_min_value AS min, stats_max_value AS max,
                stats_null_count::INT AS nulls, stats_min AS old_min, stats_max AS old_max
         FROM parquet_metadata('${path}')`,
      );
      const key = (g: unknown, col: unknown) => `${g}/${col}`;
      const got = new Map(meta.map((m) => [key(m.g, m.col), m]));
      expect(meta.every((m) => m.old_min === null && m.old_max === null)).toBe(true);
      const cols = [...LEAVES, ...'event_client_time event_writer_version s e i l fl d z zf bo ns b'.split(' ')];
      const agg = (c: string) => {
        const x = ['fl', 'd'].includes(c) ? `${c}) FILTER (NOT isnan(${c})` : c;
        return `min(${x})::VARCHAR AS "${c}_min", max(${x})::VARCHAR AS "${c}_max", count(*) FILTER (${c} IS NULL)::INT AS "${c}_nulls"`;
      };
      const expected = await db.all(
        `SELECT (file_row_number // ${GROUP})::INT AS g, ${cols.map(agg).join(', ')}
         FROM read_parquet('${path}', file_row_number = true) GROUP BY ALL ORDER BY g`,
      );
      expect(expected).toHaveLength(3);
      for (const e of expected) {
        for (const c of cols) {
          const m = got.get(key(e.g, c));
          expect(m, `${e.g}/${c}`).toBeDefined();
          expect(m?.nulls, `${e.g}/${c} nulls`).toBe(e[`${c}_nulls`]);
          if (c === 's' || c === 'fl' || c === 'd') continue; // truncated or NaN: below
          expect(m?.min, `${e.g}/${c} min`).toBe(e[`${c}_min`]);
          expect(m?.max, `${e.g}/${c} max`).toBe(e[`${c}_max`]);
        }
        // s: the min is exact; the max (over 64 bytes) is cut at a character and its last byte raised
        const s = got.get(key(e.g, 's'));
        expect(s?.min).toBe(e.s_min);
        expect(s?.max).toBe(`${'ü'.repeat(20)}${'x'.repeat(23)}y`);
        expect(Buffer.byteLength(s?.max as string)).toBe(64);
        expect((s?.max as string) > (e.s_max as string)).toBe(true);
      }
      // a list's element column: empty lists count as nulls
      const arr = await db.all(
        `SELECT g, min(x)::VARCHAR AS min, max(x)::VARCHAR AS max, (count(*) FILTER (len(arr) = 0))::INT AS nulls
         FROM (SELECT (file_row_number // ${GROUP})::INT AS g, arr, unnest(CASE WHEN len(arr) = 0 THEN [NULL] ELSE arr END) AS x
               FROM read_parquet('${path}', file_row_number = true)) GROUP BY g ORDER BY g`,
      );
      for (const e of arr) {
        const m = meta.find((x) => x.g === e.g && String(x.col).startsWith('arr'));
        expect({ min: m?.min, max: m?.max, nulls: m?.nulls }).toEqual({ min: e.min, max: e.max, nulls: e.nulls });
      }
      // -0 and NaN: no min/max for chunks with a NaN (DuckDB orders it above every number); a zero
      // minimum is given as -0
      for (const c of ['fl', 'd']) for (const g of [0, 1, 2]) expect(got.get(key(g, c))?.min).toBeNull();
      expect(got.get(key(0, 'z'))?.min).toBe('-0.0');
      expect(got.get(key(0, 'zf'))?.max).toBe('0.0');
      // the footer ends with column_orders (field 7): a TypeDefinedOrder per leaf, in compact Thrift
      const leaves = new Set(meta.map((m) => m.col)).size;
      const file = await readFile(path);
      const footer = file.subarray(file.length - 8 - file.readUInt32LE(file.length - 8), file.length - 8);
      const orders = Buffer.concat([
        Buffer.from([0x19, 0xfc, leaves]), // field 7 (list), ≥ 15 structs
        ...Array.from({ length: leaves }, () => Buffer.from([0x1c, 0, 0])), // { 1: TypeDefinedOrder {} }
        Buffer.from([0]),
      ]);
      expect(leaves).toBeGreaterThan(15);
      expect(footer.subarray(footer.length - orders.length)).toEqual(orders);
    } finally {
      db.close();
    }
  });

  it('answers predicates on every column type as a full scan does', async () => {
    const { path, rows } = await writeRows(300);
    const long7 = rows[7]?.s as string;
    const checks: [string, (r: Row, i: number) => boolean][] = [
      [`s > 's5'`, (r) => Buffer.compare(Buffer.from(r.s), Buffer.from('s5')) > 0],
      [`s = '${long7}'`, (r) => r.s === long7],
      [`s >= '${long7.slice(0, 30)}'`, (r) => Buffer.compare(Buffer.from(r.s), Buffer.from(long7.slice(0, 30))) >= 0],
      [`e = 'B'`, (r) => r.e === 'B'],
      ['i < -40', (r) => r.i < -40],
      ['l > 0', (r) => r.l > 0],
      // DuckDB orders NaN above every number: chunks holding a NaN must not claim a max
      ['fl > 5', (r) => r.fl > 5 || Number.isNaN(r.fl)],
      ['fl > 6', (r) => Number.isNaN(r.fl)],
      ['fl < -6', (r) => r.fl < -6],
      ['d <= 0', (r) => r.d <= 0],
      ['d > 30', (r) => r.d > 30 || Number.isNaN(r.d)],
      ['d > 1000', (r) => Number.isNaN(r.d)],
      ['z <= 0', (r) => r.z <= 0],
      ['zf >= 0', (r) => r.zf >= 0],
      ['isnan(d)', (r) => Number.isNaN(r.d)],
      ['NOT bo', (r) => !r.bo],
      ['ns IS NULL', (r) => r.ns === null],
      [`ns = 'n3'`, (r) => r.ns === 'n3'],
      [`b > '\\xFE'::BLOB`, (r) => Buffer.compare(r.b, Buffer.from([0xfe])) > 0],
      [`event_arrival_time >= to_timestamp(${(BASE + 150_000) / 1000})`, (_r, i) => i >= 150],
      ['event_sequence BETWEEN 99 AND 101', (_r, i) => i >= 98 && i <= 100],
      [`event_producer IS NULL`, (_r, i) => i % 3 === 0],
      [`event_client_time < to_timestamp(${(BASE - 250) / 1000})`, (_r, i) => i % 2 === 1 && i > 250],
    ];
    const db = await duck();
    try {
      for (const [where, f] of checks) {
        const [r] = await db.all(`SELECT count(*)::INT AS n FROM read_parquet('${path}') WHERE ${where}`);
        expect(r?.n, where).toBe(rows.filter(f).length);
      }
    } finally {
      db.close();
    }
  });

  it('lets DuckDB skip row groups by them: a filter never reads the corrupted groups it excludes', async () => {
    const { path } = await writeRows(300);
    const db = await duck();
    try {
      const chunks = await db.all(
        `SELECT row_group_id::INT AS g, data_page_offset::BIGINT AS at, total_compressed_size::BIGINT AS size
         FROM parquet_metadata('${path}') WHERE path_in_schema = 'event_arrival_time' ORDER BY g`,
      );
      expect(chunks).toHaveLength(3);
      // overwrite the arrival-time pages of row groups 1 and 2 (the footer is kept)
      const fh = await open(path, 'r+');
      for (const c of chunks.slice(1))
        await fh.write(Buffer.alloc(Number(c.size), 0xee), 0, Number(c.size), Number(c.at));
      await fh.close();
      const cut = (BASE + GROUP * 1000) / 1000; // the first arrival of row group 1
      const hits = await db.all(
        `SELECT event_id, s FROM read_parquet('${path}') WHERE event_arrival_time < to_timestamp(${cut}) ORDER BY event_sequence`,
      );
      expect(hits.map((h) => h.event_id)).toEqual(Array.from({ length: GROUP }, (_, i) => `id-${i}`));
      expect(hits[7]?.s).toBe(makeRow(7).s);
      await expect(db.all(`SELECT sum(epoch_ms(event_arrival_time)) FROM read_parquet('${path}')`)).rejects.toThrow();
      await expect(
        db.all(`SELECT count(*) FROM read_parquet('${path}') WHERE event_arrival_time < to_timestamp(${cut + 1})`),
      ).rejects.toThrow();
    } finally {
      db.close();
    }
  });
});

describe('ParquetFile dictionary encoding', () => {
  it('reads back every string and enum value as written, chunk after chunk (each with its own dictionary)', async () => {
    const { path, rows } = await writeRows(450);
    const db = await duck();
    try {
      const got = await db.all(`SELECT s, e, ns FROM read_parquet('${path}') ORDER BY event_sequence`);
      expect(got).toEqual(rows.map((r) => ({ s: r.s, e: r.e, ns: r.ns })));
      const [chunks] = await db.all(
        `SELECT count(DISTINCT row_group_id)::INT AS n FROM parquet_metadata('${path}') WHERE path_in_schema = 'e' AND dictionary_page_offset IS NOT NULL`,
      );
      expect(chunks?.n).toBe(5);
    } finally {
      db.close();
    }
  });

  it('dictionary-encodes low-cardinality string chunks only', async () => {
    const { path } = await writeRows(300);
    const db = await duck();
    try {
      const meta = await db.all(
        `SELECT DISTINCT path_in_schema AS col, encodings, dictionary_page_offset IS NOT NULL AS dict
         FROM parquet_metadata('${path}') WHERE row_group_id = 0`,
      );
      const enc = Object.fromEntries(meta.map((m) => [m.col, m]));
      for (const c of ['event_producer', 'event_ingress_instance', 'e', 'ns'])
        expect(enc[c], c).toEqual({ col: c, encodings: 'PLAIN, RLE, RLE_DICTIONARY', dict: true });
      for (const c of ['event_id', 's', 'i', 'event_arrival_time'])
        expect(enc[c], c).toEqual({ col: c, encodings: 'PLAIN, RLE', dict: false });
    } finally {
      db.close();
    }
  });

  it('reads back runs, bit-packed indices of any width, nulls, and the fall back to PLAIN past the size cap', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-pqdict-'));
    dirs.push(dir);
    const path = join(dir, 'd.parquet');
    const column = new ParquetColumn(['v'], Physical.BYTE_ARRAY, 1, 0);
    const schema: SchemaNode = {
      name: 'schema',
      repetition: Repetition.REQUIRED,
      children: [
        {
          name: 'v',
          repetition: Repetition.OPTIONAL,
          physical: Physical.BYTE_ARRAY,
          converted: Converted.UTF8,
          logical: Logical.STRING,
        },
      ],
    };
    // runs of 7 (bit-packed) and of 40 (RLE), up to 700 distinct values (indices 10 bits wide),
    // then long unique values until the dictionary passes its cap
    const value = (i: number): string | null =>
      i % 11 === 0
        ? null
        : i < 4000
          ? `k${Math.floor(i / 7) % 700}`
          : i < 6000
            ? `r${Math.floor(i / 40) % 3}`
            : `u${i}-${'x'.repeat(60)}`;
    const n = 6000 + Math.ceil(DICTIONARY_MAX_BYTES / 64) + 3000;
    const file = await ParquetFile.create(path, schema, [column], { pageBytes: 2048 });
    for (let i = 0; i < n; i++) {
      const v = value(i);
      if (v === null) column.level(0, 0);
      else {
        column.level(0, 1);
        const b = Buffer.from(v);
        column.byteArray(b, 0, b.length);
      }
      file.endRow();
      if (i === 2999) await file.flushRowGroup(); // a second chunk starts with its own dictionary
    }
    const sha256 = await file.close();
    // its SHA-256, taken as it was written, is the one of its bytes
    expect(sha256).toBe(
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex'),
    );
    const db = await duck();
    try {
      const got = await db.all(`SELECT v FROM read_parquet('${path}')`);
      expect(got.length).toBe(n);
      for (let i = 0; i < n; i++) if (got[i]?.v !== value(i)) expect(got[i]?.v, `row ${i}`).toBe(value(i));
      const meta = await db.all(
        `SELECT row_group_id::INT AS g, encodings, stats_null_count::INT AS nulls FROM parquet_metadata('${path}') ORDER BY g`,
      );
      expect(meta).toEqual([
        { g: 0, encodings: 'PLAIN, RLE, RLE_DICTIONARY', nulls: 273 },
        { g: 1, encodings: 'PLAIN, RLE, RLE_DICTIONARY', nulls: Math.ceil(n / 11) - 273 },
      ]);
      // the second chunk's dictionary stopped at the cap (+ the page that crossed it: 2 KiB + 63 rows)
      const [d1] = await db.all(
        `SELECT dictionary_page_offset::BIGINT AS at FROM parquet_metadata('${path}') WHERE row_group_id = 1`,
      );
      const bytes = await readFile(path);
      const at = Number(d1?.at);
      expect([...bytes.subarray(at, at + 3)]).toEqual([0x15, 4, 0x15]); // type DICTIONARY_PAGE, then its size
      let size = 0;
      for (let p = at + 3, shift = 1; ; p++, shift *= 128) {
        size += ((bytes[p] as number) & 0x7f) * shift;
        if ((bytes[p] as number) < 0x80) break;
      }
      size /= 2; // zig-zag
      expect(size).toBeGreaterThan(DICTIONARY_MAX_BYTES);
      expect(size).toBeLessThan(DICTIONARY_MAX_BYTES + 8192); // all of them: ~1.25 MB
      const [filtered] = await db.all(`SELECT count(*)::INT AS n FROM read_parquet('${path}') WHERE v = 'r1'`);
      let r1 = 0;
      for (let i = 0; i < n; i++) if (value(i) === 'r1') r1++;
      expect(filtered?.n).toBe(r1);
    } finally {
      db.close();
    }
  });
});
