/**
 * A dedup worker thread: shreds the records the main thread kept into Parquet files of its own.
 * The main thread reads the raw files, checks the ledgers and decides which records to keep (the
 * id set lives there); the workers do the costly part, Avro → Parquet columns → compressed pages,
 * on the other cores. Protocol: `init` once, then `rows` batches (a buffer of raw records and the
 * offsets of those to write; answered with `done`), then `finish` (answered with the files written).
 * Any failure is answered with `error` and ends the worker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Reader } from './avro-text.js';
import { PartitionFiles, type WrittenFile } from './partition-files.js';
import { shred, transcoderFor } from './shred-pool.js';

export interface WorkerInit {
  readonly payloadSchema: unknown;
  readonly dir: string;
  /** Unique prefix of this worker's file names. */
  readonly prefix: string;
  readonly rowGroupBytes: number;
  /** Shared counter of the batches written (see ShredPool); absent when shredding in-thread. */
  readonly written?: Int32Array;
}

export type ToWorker = { kind: 'rows'; data: Uint8Array; offsets: Int32Array; count: number } | { kind: 'finish' };

export type FromWorker =
  | { kind: 'done'; rows: number }
  | { kind: 'finished'; outputs: WrittenFile[] }
  | { kind: 'error'; message: string; stack?: string };

const port = parentPort;
if (port === null) throw new Error('dedup-worker must run in a worker thread');
const init = workerData as WorkerInit;
const transcoder = transcoderFor(init);
const files = new PartitionFiles(transcoder, init.dir, init.prefix, init.rowGroupBytes);
const reader = new Reader();

// messages are handled one at a time, in order
let chain = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  chain = chain
    .then(() => handle(msg))
    .catch((err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ kind: 'error', message: e.message, stack: e.stack } satisfies FromWorker);
      void files.abandon().finally(() => port.close());
    });
});

async function handle(msg: ToWorker): Promise<void> {
  if (msg.kind === 'finish') {
    port?.postMessage({ kind: 'finished', outputs: await files.finish() } satisfies FromWorker);
    return;
  }
  const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  await shred(transcoder, files, reader, data, msg.offsets, msg.count);
  if (init.written) Atomics.add(init.written, 0, 1);
  port?.postMessage({ kind: 'done', rows: msg.count } satisfies FromWorker);
}
