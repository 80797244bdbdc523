import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, inflateRaw } from 'node:zlib';
import avro from 'avsc';
import snappy from 'snappy';
import { describe, expect, it } from 'vitest';
import { AvroBuffer, readLong } from './avro-binary.js';
import { type AvroCodec, ContainerWriter, containerRecords, readContainer } from './avro-container.js';

const schema = {
  type: 'record',
  name: 'Row',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'long' },
  ],
};
const type = avro.Type.forSchema(schema as avro.Schema);

async function build(codec: AvroCodec, rows: { id: string; n: number }[], blockBytes = 64): Promise<Buffer> {
  const w = new ContainerWriter(schema, { codec, blockBytes });
  for (const r of rows) {
    const before = w.target.pos;
    w.target.writeString(r.id);
    w.target.writeLong(r.n);
    w.commitRecord(w.target.pos - before);
  }
  return w.finish();
}

/** Reads a container file with avsc's own decoder (an independent Avro implementation). */
function readWithAvsc(file: Buffer): Promise<unknown[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-avro-'));
  const path = join(dir, 'f.avro');
  writeFileSync(path, file);
  return new Promise((resolve, reject) => {
    const out: unknown[] = [];
    avro
      .createFileDecoder(path, {
        codecs: {
          null: (buf: Buffer, cb: (err: Error | null, data?: Buffer) => void) => cb(null, buf),
          deflate: inflateRaw,
          // snappy as the specification defines it (block + CRC-32)
          snappy: (buf: Buffer, cb: (err: Error | null, data?: Buffer) => void) => {
            const data = snappy.uncompressSync(buf.subarray(0, buf.length - 4)) as Buffer;
            if (crc32(data) >>> 0 !== buf.readUInt32BE(buf.length - 4)) return cb(new Error('crc mismatch'));
            cb(null, data);
          },
        },
      } as never)
      .on('data', (r: unknown) => out.push(r))
      .on('error', reject)
      .on('end', () => {
        rmSync(dir, { recursive: true, force: true });
        resolve(out);
      });
  });
}

describe('Avro container files', () => {
  const rows = Array.from({ length: 500 }, (_, i) => ({
    id: `ü-${i}-${'x'.repeat(i % 7)}`,
    n: i * 1_000_003 - 250_000_000,
  }));

  for (const codec of ['null', 'deflate', 'snappy'] as const) {
    it(`writes files avsc reads back (${codec}, many blocks)`, async () => {
      const file = await build(codec, rows);
      const decoded = (await readWithAvsc(file)).map((r) => ({ ...(r as object) }));
      expect(decoded).toEqual(rows);
      const contents = readContainer(file);
      expect(contents.codec).toBe(codec);
      expect(contents.blocks.length).toBeGreaterThan(10);
      expect([...containerRecords(contents, type)].map((r) => ({ ...(r as object) }))).toEqual(rows);
    });
  }

  it('writes a valid empty file', async () => {
    const file = await build('deflate', []);
    expect(await readWithAvsc(file)).toEqual([]);
    expect(readContainer(file).blocks).toEqual([]);
  });

  it('refuses corrupt files', async () => {
    const file = await build('null', rows.slice(0, 10));
    expect(() => readContainer(Buffer.from('nope'))).toThrow();
    expect(() => readContainer(file.subarray(0, file.length - 3))).toThrow(/truncated/);
    const bad = Buffer.from(file);
    (bad[bad.length - 1] as number) ^= 0xff;
    expect(() => readContainer(bad)).toThrow(/sync marker/);
  });

  it('encodes longs exactly like avsc across the safe-integer range', () => {
    const longs = avro.Type.forSchema('long');
    const b = new AvroBuffer(4);
    for (const n of [
      0,
      1,
      -1,
      63,
      64,
      -64,
      -65,
      2 ** 30,
      -(2 ** 30),
      2 ** 31,
      2 ** 40 + 7,
      -(2 ** 45),
      2 ** 52 + 3,
      -(2 ** 52),
    ]) {
      b.reset();
      b.writeLong(n);
      expect(b.view().equals(longs.toBuffer(n))).toBe(true);
      expect(readLong(b.view(), 0)).toEqual([n, b.pos]);
    }
    const strings = avro.Type.forSchema('string');
    for (const s of ['', 'ascii', 'ünïcödé', '𝄞 music', 'a'.repeat(200)]) {
      b.reset();
      b.writeString(s);
      expect(b.view().equals(strings.toBuffer(s))).toBe(true);
    }
  });
});
