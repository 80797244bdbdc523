/**
 * Avro object container files (Avro 1.11 specification, "Object Container Files"): a header with
 * the schema and codec, then blocks of records, each followed by the file's sync marker.
 * Codecs: `null`, `deflate` (raw RFC 1951, as the specification requires) and `snappy` (each block
 * followed by the big-endian CRC-32 of its uncompressed bytes, as the specification requires). Files written here
 * are readable by any Avro implementation; the tests read them back with avsc's own decoder.
 */
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { crc32, deflateRaw, inflateRawSync } from 'node:zlib';
import avro from 'avsc';
import snappy from 'snappy';
import { AvroBuffer, readLong } from './avro-binary.js';

export type AvroCodec = 'null' | 'deflate' | 'snappy';
export const AVRO_CODECS: readonly AvroCodec[] = ['null', 'deflate', 'snappy'];

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1
const HEADER = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
});
const deflate = promisify(deflateRaw);

export interface ContainerOptions {
  readonly codec: AvroCodec;
  /** A block is closed (and compressed, off the main thread) once its records reach this size. */
  readonly blockBytes: number;
  /** zlib level for `deflate` (1 fastest … 9 smallest). */
  readonly deflateLevel?: number;
}

/** Builds one container file in memory from already-encoded records. */
export class ContainerWriter {
  private readonly sync = randomBytes(16);
  private readonly block = new AvroBuffer(64 * 1024);
  private blockCount = 0;
  private readonly blocks: Promise<Buffer>[] = [];
  /** Records appended so far. */
  count = 0;
  /** Uncompressed record bytes appended so far. */
  rawBytes = 0;

  constructor(
    private readonly schema: object,
    private readonly options: ContainerOptions,
  ) {}

  /** The buffer the next record is encoded into; call `commitRecord()` after writing one record. */
  get target(): AvroBuffer {
    return this.block;
  }

  /** Marks the bytes written into `target` since the last call as one more record. */
  commitRecord(bytesWritten: number): void {
    this.blockCount++;
    this.count++;
    this.rawBytes += bytesWritten;
    if (this.block.pos >= this.options.blockBytes) this.closeBlock();
  }

  private closeBlock(): void {
    if (this.blockCount === 0) return;
    const data = Buffer.from(this.block.view());
    const count = this.blockCount;
    this.block.reset();
    this.blockCount = 0;
    const body = compress(this.options, data);
    this.blocks.push(
      body.then((b) => {
        const head = new AvroBuffer(24);
        head.writeLong(count);
        head.writeLong(b.length);
        return Buffer.concat([head.view(), b, this.sync]);
      }),
    );
  }

  /** The whole file. */
  async finish(): Promise<Buffer> {
    this.closeBlock();
    const header = HEADER.toBuffer({
      magic: MAGIC,
      meta: {
        'avro.schema': Buffer.from(JSON.stringify(this.schema)),
        'avro.codec': Buffer.from(this.options.codec),
      },
      sync: this.sync,
    });
    return Buffer.concat([header, ...(await Promise.all(this.blocks))]);
  }
}

function compress(options: ContainerOptions, data: Buffer): Promise<Buffer> {
  switch (options.codec) {
    case 'deflate':
      return deflate(data, { level: options.deflateLevel ?? 1 });
    case 'snappy':
      return snappy.compress(data).then((c) => {
        const crc = Buffer.allocUnsafe(4);
        crc.writeUInt32BE(crc32(data) >>> 0);
        return Buffer.concat([c, crc]);
      });
    default:
      return Promise.resolve(data);
  }
}

function uncompress(codec: string, raw: Buffer): Buffer {
  switch (codec) {
    case 'deflate':
      return inflateRawSync(raw);
    case 'snappy': {
      const data = snappy.uncompressSync(raw.subarray(0, raw.length - 4)) as Buffer;
      if (crc32(data) >>> 0 !== raw.readUInt32BE(raw.length - 4)) throw new Error('Avro snappy block CRC mismatch');
      return data;
    }
    default:
      return raw;
  }
}

export interface ContainerContents {
  readonly schema: unknown;
  readonly codec: string;
  /** Decompressed blocks: `count` records encoded back to back in `data`. */
  readonly blocks: { count: number; data: Buffer }[];
}

/** Parses a container file; throws on a bad magic, unknown codec or sync mismatch. */
export function readContainer(file: Buffer): ContainerContents {
  const { schema, codec, blocks } = openContainer(file);
  return { schema, codec, blocks: [...blocks] };
}

/** The header of a container file, and its blocks decompressed one at a time (bounded memory). */
export function openContainer(file: Buffer): {
  schema: unknown;
  codec: string;
  blocks: Iterable<{ count: number; data: Buffer }>;
} {
  const { value, offset } = HEADER.decode(file, 0) as {
    value: { magic: Buffer; meta: Record<string, Buffer>; sync: Buffer };
    offset: number;
  };
  if (offset < 0 || !value.magic.equals(MAGIC)) throw new Error('not an Avro container file');
  const codec = value.meta['avro.codec']?.toString() ?? 'null';
  if (!(AVRO_CODECS as readonly string[]).includes(codec)) throw new Error(`unsupported Avro codec ${codec}`);
  const schema = JSON.parse(value.meta['avro.schema']?.toString() ?? 'null') as unknown;
  function* blocks(): Generator<{ count: number; data: Buffer }> {
    let pos = offset;
    while (pos < file.length) {
      let count: number;
      let size: number;
      [count, pos] = readLong(file, pos);
      [size, pos] = readLong(file, pos);
      if (pos + size + 16 > file.length) throw new Error('truncated Avro container block');
      const raw = file.subarray(pos, pos + size);
      pos += size;
      if (!file.subarray(pos, pos + 16).equals(value.sync)) throw new Error('Avro container sync marker mismatch');
      pos += 16;
      yield { count, data: uncompress(codec, raw) };
    }
  }
  return { schema, codec, blocks: blocks() };
}

/** Every record of a container file, decoded with `type` (the file's schema or a compatible one). */
export function* containerRecords<T>(contents: ContainerContents, type: avro.Type): Generator<T> {
  for (const block of contents.blocks) {
    let pos = 0;
    for (let i = 0; i < block.count; i++) {
      const r = type.decode(block.data, pos);
      if (r.offset < 0) throw new Error('truncated Avro record');
      pos = r.offset;
      yield r.value as T;
    }
  }
}
