/**
 * Where the dedup step's kept records are shredded into Parquet files: in the calling thread
 * (`InThreadShredder`) or in worker threads (`ShredPool`, see `dedup-worker.ts`), behind one
 * interface.
 */
import { Worker } from 'node:worker_threads';
import avro from 'avsc';
import { Reader } from './avro-text.js';
import type { FromWorker, ToWorker, WorkerInit } from './dedup-worker.js';
import { PartitionFiles, type WrittenFile } from './partition-files.js';
import { RawParquetTranscoder } from './raw-parquet.js';

export interface Shredder {
  /**
   * Writes `count` raw records of `data`, starting at `offsets`. With `giveAway`, the caller no
   * longer uses `data` (a worker may take its memory over instead of copying it).
   */
  submit(data: Buffer, offsets: Int32Array, count: number, giveAway: boolean): Promise<void>;
  /** Closes the files and returns them with their row counts. */
  finish(): Promise<WrittenFile[]>;
  /** Releases everything (after `finish`, or to abandon the step). */
  close(): Promise<void>;
}

/** Opens the shredder for a partition: in this thread when `workers` is 0 or the partition small. */
/** With workers, `helpInThread` lets the calling thread shred batches the workers have no room for. */
export function openShredder(workers: number, init: WorkerInit, helpInThread = true): Shredder {
  return workers > 0 ? new ShredPool(workers, init, helpInThread) : new InThreadShredder(init);
}

export function transcoderFor(init: WorkerInit): RawParquetTranscoder {
  return new RawParquetTranscoder(avro.Type.forSchema(init.payloadSchema as avro.Schema, { wrapUnions: 'auto' }));
}

export class InThreadShredder implements Shredder {
  private readonly transcoder: RawParquetTranscoder;
  private readonly files: PartitionFiles;
  private readonly reader = new Reader();

  constructor(init: WorkerInit) {
    this.transcoder = transcoderFor(init);
    this.files = new PartitionFiles(this.transcoder, init.dir, init.prefix, init.rowGroupBytes);
  }

  async submit(data: Buffer, offsets: Int32Array, count: number): Promise<void> {
    await shred(this.transcoder, this.files, this.reader, data, offsets, count);
  }

  finish(): Promise<WrittenFile[]> {
    return this.files.finish();
  }

  close(): Promise<void> {
    return this.files.abandon();
  }
}

/** Writes the records of `data` at `offsets` as rows, then the row group if it is full. */
export async function shred(
  transcoder: RawParquetTranscoder,
  files: PartitionFiles,
  reader: Reader,
  data: Buffer,
  offsets: Int32Array,
  count: number,
): Promise<void> {
  if (count === 0) return;
  await files.ready();
  reader.buf = data;
  for (let i = 0; i < count; i++) {
    reader.pos = offsets[i] as number;
    transcoder.envelope(reader);
    transcoder.row(reader);
    files.endRow();
  }
  await files.maybeFlush();
}

const IN_FLIGHT_PER_WORKER = 8;

interface Slot {
  readonly worker: Worker;
  /** Batches sent. */
  sent: number;
  /**
   * Batches the worker has written, counted by the worker itself in shared memory: the calling
   * thread, busy reading, sees it without waiting for the worker's messages.
   */
  readonly written: Int32Array;
  finished: { resolve: (outputs: WrittenFile[]) => void; reject: (err: Error) => void } | null;
}

/**
 * Batches of kept records go to the least busy worker, at most a few in flight per worker (bounded
 * memory); when every worker has its fill, the calling thread shreds the batch itself into files
 * of its own, rather than wait (on two cores, one worker and the reading thread then share the
 * work). A failed worker fails the whole step with its error.
 */
export class ShredPool implements Shredder {
  private readonly slots: Slot[];
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private closed = false;
  /** The calling thread's own shredder, opened when it first takes a batch. */
  private local: InThreadShredder | null = null;

  constructor(
    count: number,
    private readonly init: WorkerInit,
    /** Whether the calling thread takes batches when the workers are full (else it waits). */
    private readonly helpInThread = true,
  ) {
    this.slots = Array.from({ length: Math.max(1, count) }, (_, i) => {
      const written = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(new URL('./dedup-worker.js', import.meta.url), {
        workerData: { ...init, prefix: `${init.prefix}-${i}`, written } satisfies WorkerInit,
      });
      const slot: Slot = { worker, sent: 0, written, finished: null };
      worker.on('message', (msg: FromWorker) => {
        if (msg.kind === 'done') {
          // counted in `written`; the message wakes a caller waiting for room
        } else if (msg.kind === 'finished') slot.finished?.resolve(msg.outputs);
        else {
          const err = new Error(`dedup worker failed: ${msg.message}`);
          if (msg.stack) err.stack = msg.stack;
          this.fail(err);
        }
        this.notify();
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`dedup worker exited with code ${code}`));
      });
      return slot;
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const s of this.slots ?? []) s.finished?.reject(this.failure);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Hands the records to a worker; `data` moves there when given away and a whole buffer, else it is copied. */
  async submit(data: Buffer, offsets: Int32Array, count: number, giveAway: boolean): Promise<void> {
    if (count === 0) return;
    for (;;) {
      this.check();
      const inFlight = (s: Slot) => s.sent - Atomics.load(s.written, 0);
      const slot = this.slots.reduce((a, b) => (inFlight(b) < inFlight(a) ? b : a));
      if (inFlight(slot) < IN_FLIGHT_PER_WORKER) {
        const own =
          giveAway &&
          data.byteOffset === 0 &&
          data.byteLength === data.buffer.byteLength &&
          data.buffer instanceof ArrayBuffer;
        const bytes = own ? new Uint8Array(data.buffer) : new Uint8Array(data);
        const msg: ToWorker = { kind: 'rows', data: bytes, offsets, count };
        slot.sent++;
        slot.worker.postMessage(msg, [bytes.buffer as ArrayBuffer, offsets.buffer as ArrayBuffer]);
        return;
      }
      if (this.helpInThread) {
        this.local ??= new InThreadShredder({ ...this.init, prefix: `${this.init.prefix}-t` });
        await this.local.submit(data, offsets, count);
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }

  /** Waits for every batch, closes the workers' files and returns them all. */
  async finish(): Promise<WrittenFile[]> {
    const outputs = await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<WrittenFile[]>((resolve, reject) => {
            if (this.failure) reject(this.failure);
            slot.finished = { resolve, reject };
            slot.worker.postMessage({ kind: 'finish' } satisfies ToWorker);
          }),
      ),
    );
    this.check();
    return [...outputs.flat(), ...((await this.local?.finish()) ?? [])];
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    await this.local?.close();
  }
}
