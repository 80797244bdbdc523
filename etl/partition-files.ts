import { join } from 'node:path';
import { ParquetFile } from './parquet-writer.js';
import type { RawParquetTranscoder } from './raw-parquet.js';

/** A Parquet file written: its path, rows, and SHA-256 (hex, taken as it was written). */
export interface WrittenFile {
  readonly path: string;
  readonly rows: number;
  readonly sha256: string;
}

/** Rows go into numbered Parquet files in the work directory, a new one every few row groups. */
export class PartitionFiles {
  private static readonly ROW_GROUPS_PER_FILE = 8;
  private file: ParquetFile | null = null;
  private path = '';
  private groups = 0;
  private n = 0;
  private readonly outputs: WrittenFile[] = [];

  constructor(
    private readonly transcoder: RawParquetTranscoder,
    private readonly dir: string,
    /** Unique prefix of the file names. */
    private readonly prefix: string,
    private readonly rowGroupBytes: number,
  ) {}

  /** Counts the row the transcoder just wrote into its columns. */
  endRow(): void {
    if (this.file === null) throw new Error('no Parquet file open');
    this.file.endRow();
  }

  /** Opens the first file (rows may only be written while one is open). */
  async ready(): Promise<void> {
    if (this.file !== null) return;
    this.path = join(this.dir, `${this.prefix}-${String(this.n++).padStart(4, '0')}.parquet`);
    this.file = await ParquetFile.create(this.path, this.transcoder.schema, this.transcoder.columns);
  }

  /** Writes the row group out when it is full, and moves to a new file every few row groups. */
  async maybeFlush(): Promise<void> {
    const f = this.file;
    if (f === null) return;
    let buffered = 0;
    for (const c of this.transcoder.columns) buffered += c.chunkBytes;
    if (buffered < this.rowGroupBytes) return;
    await f.flushRowGroup();
    if (++this.groups >= PartitionFiles.ROW_GROUPS_PER_FILE) await this.closeFile();
  }

  private async closeFile(): Promise<void> {
    const f = this.file;
    if (f === null) return;
    this.file = null;
    this.groups = 0;
    const sha256 = await f.close();
    this.outputs.push({ path: this.path, rows: f.rows, sha256 });
  }

  async finish(): Promise<WrittenFile[]> {
    await this.closeFile();
    return this.outputs;
  }

  /** Closes a file left open by a failure (the work directory is deleted after). */
  async abandon(): Promise<void> {
    const f = this.file;
    this.file = null;
    await f?.abandon();
  }
}
