import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import avro from 'avsc';
import { afterAll, describe, expect, it } from 'vitest';
import { AvroBuffer } from './avro-binary.js';
import { writeEnvelope } from './raw-record.js';
import { InThreadShredder, type Shredder, ShredPool } from './shred-pool.js';

const schema = {
  type: 'record',
  name: 'Ping',
  fields: [
    { name: 'n', type: 'long' },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
};
const payload = avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'auto' });

/** `count` raw records in one buffer, and where each starts. */
function records(count: number): { data: Buffer; starts: number[] } {
  const b = new AvroBuffer();
  const starts: number[] = [];
  for (let i = 0; i < count; i++) {
    starts.push(b.pos);
    writeEnvelope(b, {
      id: `id-${i}`,
      producer: i % 2 === 0 ? null : 'web',
      arrivalTime: 1_763_805_600_000 + i,
      ingressInstance: 'ingress-1',
      sequence: i + 1,
      clientTime: null,
      writerVersion: 1,
    });
    b.writeBytes(payload.toBuffer({ n: i, tags: i % 3 === 0 ? [] : [`t${i}`] }));
  }
  return { data: Buffer.from(b.view()), starts };
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function ids(paths: string[]): Promise<number[]> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const list = paths.map((p) => `'${p}'`).join(', ');
    const r = await c.runAndReadAll(`SELECT n FROM read_parquet([${list}]) ORDER BY n`);
    return r.getRows().map((row) => Number(row[0]));
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

describe.each([
  [
    'in this thread',
    (dir: string): Shredder => new InThreadShredder({ payloadSchema: schema, dir, prefix: 'p', rowGroupBytes: 4096 }),
  ],
  [
    'in two workers',
    (dir: string): Shredder => new ShredPool(2, { payloadSchema: schema, dir, prefix: 'p', rowGroupBytes: 4096 }),
  ],
])('shredding %s', (_name, open) => {
  it('writes exactly the records it is given, from buffers given away or lent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-shred-'));
    dirs.push(dir);
    const s = open(dir);
    try {
      const expected: number[] = [];
      for (let batch = 0; batch < 6; batch++) {
        const { data, starts } = records(1000);
        const kept = starts.filter((_, i) => i % 2 === batch % 2);
        for (let i = batch % 2; i < 1000; i += 2) expected.push(i);
        await s.submit(data, Int32Array.from(kept), kept.length, batch < 3);
      }
      const outputs = await s.finish();
      expect(outputs.reduce((n, o) => n + o.rows, 0)).toBe(expected.length);
      expect(await ids(outputs.map((o) => o.path))).toEqual(expected.sort((a, b) => a - b));
    } finally {
      await s.close();
    }
  });

  it('fails the step with the cause when a record cannot be read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-shred-'));
    dirs.push(dir);
    const s = open(dir);
    try {
      const { data } = records(10);
      // an offset past the end: the record is truncated
      const attempt = (async () => {
        await s.submit(data, Int32Array.from([data.length - 3]), 1, false);
        return s.finish();
      })();
      await expect(attempt).rejects.toThrow(/truncated Avro data|out of range/i);
    } finally {
      await s.close();
    }
  });
});

describe('a pool whose workers are full', () => {
  it('has the calling thread shred batches into files of its own: every record once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-shred-'));
    dirs.push(dir);
    const s = new ShredPool(1, { payloadSchema: schema, dir, prefix: 'p', rowGroupBytes: 4096 });
    try {
      const expected: number[] = [];
      // the worker takes a few batches while it starts; the calling thread takes the others
      for (let batch = 0; batch < 30; batch++) {
        const { data, starts } = records(500);
        const kept = starts.filter((_, i) => (i + batch) % 3 !== 0);
        for (let i = 0; i < 500; i++) if ((i + batch) % 3 !== 0) expected.push(i);
        await s.submit(data, Int32Array.from(kept), kept.length, batch % 2 === 0);
      }
      const outputs = await s.finish();
      expect(outputs.some((o) => o.path.includes('p-t-'))).toBe(true);
      expect(outputs.some((o) => o.path.includes('p-0-'))).toBe(true);
      expect(outputs.reduce((n, o) => n + o.rows, 0)).toBe(expected.length);
      expect(await ids(outputs.map((o) => o.path))).toEqual(expected.sort((a, b) => a - b));
    } finally {
      await s.close();
    }
  });
});
