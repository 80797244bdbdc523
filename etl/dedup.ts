/**
 * The dedup step (DESIGN.md point 8): turns a closed hour (or, for daily types, a day of closed
 * hours) into its final partition.
 *
 * 1. Reads every registered raw file of the partition, checking each record's (ingress instance,
 *    sequence) against the ledgers: a ledgered event
 *    missing from the raw hour is a completeness violation; the partition is then not published
 *    and its hours are marked `failed` (alerting pages on that state).
 * 2. Removes duplicates by (producer, event id), keeping the first copy read (files in name
 *    order, which is commit order per consumer), and drops events whose (producer, id) is already
 *    in a published partition of the type's dedup window (a producer retry that crossed the hour
 *    boundary, or came back days later: etl/dedup-window.ts). Ids
 *    are the producers' own, so one producer's id never removes another producer's event; events
 *    without a producer (no key, raw files or partitions from before producers) are one producer.
 *    A copy whose payload bytes differ from the copy kept is still removed, and counted as an id
 *    conflict: a payload digest (30 bits of MurmurHash3) is kept with each key, so the check costs
 *    a hash of each payload, and misses a conflict with probability 2^-30. Copies of a
 *    (producer, id) of the window are not checked for conflicts (their payloads are not read).
 *    Keys are compared by their 128-bit keyed hash (SipHash-2-4-128: etl/id-index.ts states the
 *    collision bound), within the partition (etl/key-set.ts) as against the window, reading
 *    only the part of each window partition's id index that the split covers: when the window's
 *    hashes fit the id budget they are loaded and each key looked up as it is read; otherwise
 *    the split's key hashes are sorted and merged with each index part first (the records are
 *    then read twice). Memory is bounded whatever the window: at most `maxIdsInMemory` ids are
 *    held, plus one read buffer of index; a bigger partition is
 *    split by the top bits of the key hash into spill files on disk, deduplicated one split at a
 *    time. Partitions published before id indexes are read with DuckDB instead.
 * 3. Shreds the records kept straight from Avro into Parquet columns (no objects built; see
 *    `raw-parquet.ts` for the column mapping), snappy-compressed pages, row groups of about
 *    `rowGroupBytes`, a new file every few row groups.
 * 4. Publishes atomically, data first and manifest last: Parquet files and the id index of the
 *    keys kept (`ids-….idx`) under unique names, then `_manifest.json` (write-once: a crash after
 *    it was written is recognised on the retry). Readers only see files a manifest lists; files
 *    of an attempt that crashed are deleted.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import avro from 'avsc';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { ObjectExists } from '../core/errors.js';
import { type EventType, latestVersion } from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import { listAll, type ObjectStore } from '../core/ports/object-store.js';
import type { HourRecord, JobLease, RawFile, StateStore } from '../core/ports/state-store.js';
import { describeRanges, mergeRanges, missingRanges, type Range, rangeCount } from '../core/ranges.js';
import { AvroBuffer } from './avro-binary.js';
import { avroSkipper } from './avro-check.js';
import { openContainer } from './avro-container.js';
import { Reader, TextSink } from './avro-text.js';
import { type DedupWindow, windowOfFiles } from './dedup-window.js';
import {
  HASH_BYTES,
  HASH_WORDS,
  hasHash,
  type IdIndexRef,
  IdIndexWriter,
  indexOfHash,
  keyIdOf,
  markHits,
  type RangeReadStats,
  readIndexRange,
  sortHashes,
  splitOfHash,
  splitRange,
} from './id-index.js';
import { Found, KeySet } from './key-set.js';
import { finalPrefix, MANIFEST, uniquePart } from './names.js';
import type { WrittenFile } from './partition-files.js';
import { RawParquetTranscoder } from './raw-parquet.js';
import { rawSchemaFor, rawTypeFor } from './raw-record.js';
import { openShredder, type Shredder } from './shred-pool.js';
import { SipKey, siphash128 } from './siphash.js';
import { WasmSipHasher } from './siphash-wasm.js';

/** Partitions with fewer raw events are shredded in the calling thread. */
export const WORKERS_FROM_EVENTS = 250_000;

export interface DedupConfig {
  /** Most distinct event ids held in memory; bigger partitions are split and spilled to disk. */
  readonly maxIdsInMemory: number;
  /** DuckDB's memory limit when it reads the ids of partitions without an id index (it spills beyond it). */
  readonly duckdbMemoryBytes: number;
  readonly duckdbThreads: number;
  /** Column data buffered per Parquet row group before it is written out (per worker). */
  readonly rowGroupBytes: number;
  /**
   * Worker threads that write the Parquet files of big partitions while the calling thread reads
   * and dedups (it writes batches itself, into files of its own, when the workers are full);
   * 0: all in the calling thread.
   */
  readonly workers: number;
  /** Local scratch space (spill files, Parquet files before publication, DuckDB temp files). */
  readonly workDir: string;
}

export interface PartitionJob {
  readonly type: EventType;
  /** Start of the hour, or of the day for daily types. */
  readonly start: number;
  readonly daily: boolean;
  /** The closed hours the partition is made of. */
  readonly hours: readonly HourRecord[];
  /**
   * The published partitions whose ids are duplicates: the partition's dedup window
   * (etl/dedup-window.ts), or the data files of one earlier partition, read as a partition
   * without an id index.
   */
  readonly earlier: DedupWindow | readonly string[];
}

export interface Manifest {
  readonly type: string;
  readonly partitioning: 'hourly' | 'daily';
  readonly start: string;
  readonly end: string;
  readonly schema: { readonly version: number; readonly fingerprint: string };
  readonly rawFiles: number;
  readonly rawEventsIn: number;
  readonly duplicatesRemoved: number;
  /**
   * Of those, events whose (producer, id) was already published in the dedup window; named when
   * the window was the previous partition, and kept equal to `duplicatesOfWindow`.
   */
  readonly duplicatesOfEarlierPartition: number;
  /** The same count (absent from manifests written before dedup windows). */
  readonly duplicatesOfWindow?: number;
  /** The window deduped against (absent from manifests written before dedup windows). */
  readonly dedupWindow?: {
    readonly ms: number;
    /** Start of the earliest partition the window may hold. */
    readonly from: string;
    /** Published partitions in it. */
    readonly partitions: number;
    /** Of those, partitions without a usable id index, whose ids were read from their data files. */
    readonly legacyPartitions: number;
    /** Bytes of id index read (fan-out entries and hashes). */
    readonly indexBytesRead: number;
    /** Seconds spent hashing the partition's keys and looking them up in the window. */
    readonly seconds: number;
  };
  /** The id index of the keys kept (absent from manifests written before it). */
  readonly idIndex?: IdIndexRef;
  /**
   * Of those, copies of a (producer, id) of this partition whose payload differs from the copy
   * kept: the producer reused an id for another event. Absent from manifests written before it.
   */
  readonly idConflicts: number;
  readonly eventsOut: number;
  readonly ledgerTotal: number;
  readonly lateEventsAtPublish: number;
  readonly closedBy: readonly string[];
  readonly vanishedInstances: readonly string[];
  readonly files: readonly { name: string; bytes: number; rows: number; sha256: string }[];
  readonly closedAt: string;
  readonly publishedAt: string;
  readonly dedupSeconds: number;
  readonly format: 'parquet';
}

export type DedupResult =
  | { readonly status: 'published'; readonly manifest: Manifest; readonly manifestName: string }
  | { readonly status: 'failed'; readonly error: string };

export interface DedupDeps {
  readonly objects: ObjectStore;
  readonly state: StateStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: DedupConfig;
  /** The job's claim: the partition's hour records change only while it holds (LeaseLost otherwise). */
  readonly fence?: JobLease;
  /** Aborted when the claim is lost: the run stops at its next step. */
  readonly signal?: AbortSignal;
}

/** Sequence numbers seen per ingress instance, as bitsets over the ledgered ranges. */
class SequenceCheck {
  private readonly seen = new Map<string, { min: number; bits: Uint8Array; required: Range[] }>();
  private last: { min: number; bits: Uint8Array } | undefined;

  constructor(required: Map<string, Range[]>) {
    for (const [instance, ranges] of required) {
      const merged = mergeRanges(ranges);
      if (merged.length === 0) continue;
      const min = (merged[0] as Range)[0];
      const max = (merged[merged.length - 1] as Range)[1];
      this.seen.set(instance, { min, bits: new Uint8Array(((max - min) >> 3) + 1), required: merged });
    }
  }

  private lastBytes = Buffer.alloc(0);

  /** Marks a sequence number of the instance named by `buf[start, end)` (no string made per call). */
  markBytes(buf: Buffer, start: number, end: number, seq: number): void {
    const last = this.lastBytes;
    let same = last.length === end - start;
    for (let i = 0; same && i < last.length; i++) same = last[i] === buf[start + i];
    if (!same) {
      this.lastBytes = Buffer.from(buf.subarray(start, end));
      this.last = this.seen.get(buf.toString('utf8', start, end));
    }
    this.markLast(seq);
  }

  private markLast(seq: number): void {
    const s = this.last;
    if (s === undefined) return;
    const i = seq - s.min;
    if (i >= 0 && i < s.bits.length * 8) s.bits[i >> 3] = (s.bits[i >> 3] as number) | (1 << (i & 7));
  }

  /** Ledgered sequence ranges not seen, per instance. */
  missing(): Map<string, [number, number][]> {
    const out = new Map<string, [number, number][]>();
    for (const [instance, s] of this.seen) {
      const have: [number, number][] = [];
      for (let i = 0; i < s.bits.length * 8; i++) {
        if ((s.bits[i >> 3] as number) & (1 << (i & 7))) {
          const last = have[have.length - 1];
          if (last !== undefined && last[1] === s.min + i - 1) last[1] = s.min + i;
          else have.push([s.min + i, s.min + i]);
        }
      }
      const m = missingRanges(s.required, have);
      if (m.length > 0) out.set(instance, m);
    }
    return out;
  }
}

/**
 * Event ids of published partitions without an id index (written before indexes, or hashed with
 * another key), read from their Parquet files with DuckDB, once per split.
 */
class EarlierIds {
  private constructor(
    private readonly paths: string[],
    readonly rows: number,
    private readonly d: DedupDeps,
    private readonly work: string,
    /** Whether the files have `event_producer` (partitions written before it do not). */
    private readonly producers = false,
  ) {}

  static async open(names: readonly string[], work: string, d: DedupDeps): Promise<EarlierIds> {
    if (names.length === 0) return new EarlierIds([], 0, d, work);
    const paths: string[] = [];
    for (const name of names) {
      let path = d.objects.localPath(name);
      if (path === null) {
        path = join(work, `earlier-${paths.length}.parquet`);
        await writeFile(path, await d.objects.get(name), { mode: 0o600 });
      }
      paths.push(path);
    }
    const ids = new EarlierIds(paths, 0, d, work);
    const { rows, producers } = await ids.withConnection(async (c, files) => {
      const columns = (await c.runAndReadAll(`DESCRIBE SELECT * FROM ${files}`)).getRows().map((r) => r[0]);
      const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM ${files}`)).getRows()[0]?.[0] ?? 0);
      return { rows, producers: columns.includes('event_producer') };
    });
    return new EarlierIds(paths, rows, d, work, producers);
  }

  private async withConnection<T>(
    fn: (c: import('@duckdb/node-api').DuckDBConnection, files: string) => Promise<T>,
  ): Promise<T> {
    const instance = await DuckDBInstance.create(':memory:', {
      memory_limit: `${Math.floor(this.d.config.duckdbMemoryBytes / (1024 * 1024))}MB`,
      threads: String(this.d.config.duckdbThreads),
      temp_directory: join(this.work, 'duckdb'),
    });
    try {
      const c = await instance.connect();
      try {
        return await fn(c, `read_parquet([${this.paths.map(sqlString).join(', ')}], union_by_name = true)`);
      } finally {
        c.closeSync();
      }
    } finally {
      instance.closeSync();
    }
  }

  /**
   * Marks `hit[i]` for each hash `i` of `probe` (sorted, split `split` of `splits`) that is the
   * hash of a (producer, id) key of these partitions, encoded as in raw records (see RecordKeys).
   */
  async markHits(probe: Uint32Array, hit: Uint8Array, split: number, splits: number, key: SipKey): Promise<void> {
    if (this.rows === 0 || probe.length === 0) return;
    const buf = new AvroBuffer(1024);
    const h = new Uint32Array(HASH_WORDS);
    const producer = this.producers ? 'event_producer' : 'NULL::VARCHAR';
    await this.withConnection(async (c, files) => {
      const result = await c.stream(`SELECT event_id, ${producer} FROM ${files}`);
      for (
        let chunk = await result.fetchChunk();
        chunk !== null && chunk.rowCount > 0;
        chunk = await result.fetchChunk()
      ) {
        const ids = chunk.getColumnValues(0);
        const producers = chunk.getColumnValues(1);
        for (let i = 0; i < ids.length; i++) {
          buf.reset();
          writeKey(buf, ids[i] as string, producers[i] as string | null);
          siphash128(key, buf.buf, 0, buf.pos, h, 0);
          if (splits > 1 && splitOfHash(h[0] as number, splits) !== split) continue;
          const at = indexOfHash(probe, h, 0);
          if (at >= 0) hit[at] = 1;
        }
      }
    });
  }
}

/** The deployment setting that holds the id index hash key (hex). */
export const ID_INDEX_KEY_SETTING = 'dedup.idIndexKey';

/** The deployment's id index hash key: made by the first process that asks, then shared by all. */
export async function idIndexKey(state: StateStore, now: number): Promise<Buffer> {
  const hex = await state.ensureSetting(ID_INDEX_KEY_SETTING, randomBytes(16).toString('hex'), now);
  const key = Buffer.from(hex, 'hex');
  if (key.length !== 16) throw new Error(`the setting ${ID_INDEX_KEY_SETTING} is not 16 bytes of hex`);
  return key;
}

/**
 * The check of a partition's keys against its dedup window: the window partitions' id indexes,
 * read by split range, and DuckDB over the data files of those without a usable index.
 */
class WindowCheck {
  readonly indexed: IdIndexRef[];
  readonly legacyPartitions: number;
  readonly io: RangeReadStats = { bytes: 0, requests: 0 };

  private constructor(
    readonly window: DedupWindow,
    keyId: string,
    private readonly legacy: EarlierIds,
    private readonly key: SipKey,
    private readonly d: DedupDeps,
  ) {
    const usable = (p: DedupWindow['partitions'][number]) => p.idIndex !== null && p.idIndex.keyId === keyId;
    this.indexed = window.partitions.flatMap((p) => (usable(p) && p.idIndex !== null ? [p.idIndex] : []));
    this.legacyPartitions = window.partitions.filter((p) => !usable(p)).length;
  }

  static async open(window: DedupWindow, key: SipKey, keyId: string, work: string, d: DedupDeps): Promise<WindowCheck> {
    const legacy = window.partitions.filter((p) => (p.idIndex === null || p.idIndex.keyId !== keyId) && p.ids !== 0);
    const stale = legacy.filter((p) => p.idIndex !== null);
    if (stale.length > 0) {
      d.logger.warn(
        { partitions: stale.map((p) => p.manifest) },
        'id indexes hashed with another key: reading their partitions ids instead',
      );
    }
    const ids = await EarlierIds.open(
      legacy.flatMap((p) => p.files),
      work,
      d,
    );
    return new WindowCheck(window, keyId, ids, key, d);
  }

  /** Ids of the window's indexes. */
  get indexedIds(): number {
    return this.indexed.reduce((n, r) => n + r.ids, 0);
  }

  /**
   * Whether split ranges of the window's hashes fit the id budget of `splits` splits, so a split
   * may load them and look each key up as it goes (one pass over the records) instead of
   * probing the window with the split's own keys first (two passes).
   */
  fits(splits: number, maxIdsInMemory: number): boolean {
    return this.legacy.rows === 0 && this.indexedIds <= splits * maxIdsInMemory;
  }

  /** The window's hashes of split `split` of `splits`, sorted (when it `fits`). */
  async load(split: number, splits: number): Promise<Uint32Array> {
    const [lo, hi] = splitRange(split, splits);
    const all = new HashList(Math.ceil(this.indexedIds / splits));
    for (const ref of this.indexed) {
      for await (const chunk of readIndexRange(this.d.objects, ref, lo, hi, this.io)) {
        for (let at = 0; at < chunk.length; at += HASH_WORDS) all.push(chunk, at);
      }
    }
    return all.sorted();
  }

  /** Whether no key can be in the window (nothing to read). */
  get empty(): boolean {
    return this.legacy.rows === 0 && this.indexed.every((r) => r.ids === 0);
  }

  /** Of the sorted, unique hashes `probe` of split `split` of `splits`, those the window holds (sorted). */
  async hits(probe: Uint32Array, split: number, splits: number): Promise<Uint32Array> {
    const n = probe.length / HASH_WORDS;
    const hit = new Uint8Array(n);
    if (n === 0 || this.empty) return new Uint32Array(0);
    const [lo, hi] = splitRange(split, splits);
    for (const ref of this.indexed) {
      await markHits(probe, hit, readIndexRange(this.d.objects, ref, lo, hi, this.io));
    }
    await this.legacy.markHits(probe, hit, split, splits, this.key);
    let m = 0;
    for (let i = 0; i < n; i++) m += hit[i] as number;
    const out = new Uint32Array(HASH_WORDS * m);
    for (let i = 0, j = 0; i < n; i++) {
      if (hit[i] === 1) out.set(probe.subarray(HASH_WORDS * i, HASH_WORDS * i + HASH_WORDS), HASH_WORDS * j++);
    }
    return out;
  }
}

/** A growing list of hashes. */
class HashList {
  words: Uint32Array;
  length = 0;

  constructor(expected: number) {
    this.words = new Uint32Array(HASH_WORDS * Math.max(16, expected));
  }

  push(src: Uint32Array, at: number): void {
    if (HASH_WORDS * (this.length + 1) > this.words.length) {
      const next = new Uint32Array(this.words.length * 2);
      next.set(this.words);
      this.words = next;
    }
    const o = HASH_WORDS * this.length++;
    this.words[o] = src[at] as number;
    this.words[o + 1] = src[at + 1] as number;
    this.words[o + 2] = src[at + 2] as number;
    this.words[o + 3] = src[at + 3] as number;
  }

  sorted(): Uint32Array {
    return sortHashes(this.words, this.length);
  }
}

/** A dedup key as raw records hold it: the id, then the producer as a `[null, string]` union. */
export function writeKey(out: AvroBuffer, id: string, producer: string | null): void {
  out.writeString(id);
  if (producer === null || producer === '') out.writeLong(0);
  else {
    out.writeLong(1);
    out.writeString(producer);
  }
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * Parts a partition of `events` is deduped in: one while its ids fit `maxIdsInMemory`; beyond, parts
 * of at most two thirds of it, since the spill path also holds the spill files' buffers (measured
 * when keys were held with their bytes: 20 M events in parts of 5 M peaked at 1,044 MB, in parts
 * of 4 M at 937 MB; with the key set of 20-byte slots, parts of 4 M peak at 773–791 MB).
 */
export function splitsFor(events: number, maxIdsInMemory: number): number {
  if (events <= maxIdsInMemory) return 1;
  return Math.ceil(events / Math.max(1, Math.floor((maxIdsInMemory * 2) / 3)));
}

/** Scratch folders of dedup attempts are named `dedup-<pid>-…` (see {@link removeDeadWorkDirs}). */
const WORK_DIR_PREFIX = 'dedup-';
/** Before each record in a spill file: its length (u32), then its key's hash. */
const SPILL_HEADER = 4 + HASH_BYTES;

/**
 * Removes the scratch folders that processes no longer running left in `workDir` (a worker killed
 * in the middle of a job). Folders of live processes, and names not of this form, are kept.
 * Returns the names removed.
 */
export async function removeDeadWorkDirs(workDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(workDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(/^dedup-(\d+)-/.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid <= 0 || processAlive(pid)) continue;
    await rm(join(workDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function runDedup(job: PartitionJob, d: DedupDeps): Promise<DedupResult> {
  const started = performance.now();
  const type = job.type;
  const attempt = uniquePart();
  const work = join(d.config.workDir, `${WORK_DIR_PREFIX}${process.pid}-${type.name}-${job.start}-${attempt}`);
  await mkdir(work, { recursive: true, mode: 0o700 });
  const log = d.logger.child({ type: type.name, partition: new Date(job.start).toISOString() });
  let pool: Shredder | undefined;
  // final files this attempt uploaded, and whether it went on to write the manifest
  const uploaded: string[] = [];
  let manifestTried = false;
  let index: IdIndexWriter | undefined;
  try {
    const files: RawFile[] = [];
    const required = new Map<string, Range[]>();
    let ledgerTotal = 0;
    for (const h of job.hours) {
      files.push(...(await d.state.listFiles(type.name, h.hour, 'raw')));
      for (const e of await d.state.listLedgers({ type: type.name, hour: h.hour })) {
        ledgerTotal += e.count;
        const list = required.get(e.instanceId) ?? [];
        list.push(...e.ranges);
        required.set(e.instanceId, list);
      }
    }
    files.sort((a, b) => (a.name < b.name ? -1 : 1));
    const totalEvents = files.reduce((n, f) => n + f.events, 0);
    const window = Array.isArray(job.earlier)
      ? windowOfFiles(job.earlier as readonly string[], job.start, job.daily)
      : (job.earlier as DedupWindow);
    const secret = await idIndexKey(d.state, d.clock.now());
    const sip = new WasmSipHasher(secret);
    const sipKey = new SipKey(secret);
    const keyId = keyIdOf(secret);
    const windowCheck = await WindowCheck.open(window, sipKey, keyId, work, d);
    const splits = splitsFor(totalEvents, d.config.maxIdsInMemory);
    const ids = new IdIndexWriter(join(work, `ids-${attempt}.idx`), totalEvents, keyId);
    index = ids;
    const payloadType = latestVersion(type).type;
    const transcoder = new RawParquetTranscoder(payloadType);
    const skipPayload = avroSkipper(payloadType);
    const check = new SequenceCheck(required);
    // worker threads pay off only for big partitions (starting them costs about half a second)
    // in the spill path the reading thread holds spill buffers: it leaves all shredding to the workers
    const shredders = openShredder(
      totalEvents >= WORKERS_FROM_EVENTS ? d.config.workers : 0,
      {
        payloadSchema: payloadType.schema(),
        dir: work,
        prefix: `part-${attempt}`,
        rowGroupBytes: d.config.rowGroupBytes,
      },
      splits === 1,
    );
    pool = shredders;
    const stats = { in: 0, duplicates: 0, earlier: 0, conflicts: 0 };
    let windowSeconds = 0;
    let finishing: Promise<WrittenFile[]> | null = null;

    const reader = new Reader();
    // the loops below are CPU-bound: let other work of the process (the ingress in `hourglass dev`,
    // other types' consumers) run every few milliseconds
    let lastYield = performance.now();
    const breathe = async (): Promise<void> => {
      d.signal?.throwIfAborted();
      if (performance.now() - lastYield < 10) return;
      await new Promise((r) => setImmediate(r));
      lastYield = performance.now();
    };
    const hash = new Uint32Array(HASH_WORDS);
    // per record of a batch: where it starts, its key's hash and its payload's digest
    let recordStarts = new Int32Array(0);
    let hashes = new Uint32Array(0);
    let digests = new Uint32Array(0);
    /** The hashes of the block `sip` holds, in `hashes` (grown as needed). */
    const batchHashes = (count: number): Uint32Array => {
      if (hashes.length < HASH_WORDS * count) hashes = new Uint32Array(2 * HASH_WORDS * count);
      sip.copyOut(count, hashes, 0);
      return hashes;
    };
    /**
     * Dedups the records of `reader.buf` from `reader.pos` (`count` of them, or one at each of
     * `starts`, each after its 4-byte length and its key's 16-byte hash) and hands those kept to the
     * workers; every key goes to `seen`, flagged kept unless the window holds it. `hits`: sorted
     * hashes of keys in the window (all of the split's, or those of the split's keys).
     */
    const dedupRecords = async (
      seen: KeySet,
      hits: Uint32Array,
      count: number,
      starts: Int32Array | null,
      markSequences: boolean,
    ): Promise<void> => {
      const buf = reader.buf;
      const keptAt = new Int32Array(count);
      if (recordStarts.length < count) recordStarts = new Int32Array(2 * count);
      if (hashes.length < HASH_WORDS * count) hashes = new Uint32Array(2 * HASH_WORDS * count);
      if (digests.length < count) digests = new Uint32Array(2 * count);
      // first the keys and their hashes, and each key's slot of the key set touched: the loads of
      // the touch loop are independent, so the CPU has many of the set's cache misses in flight
      // at once, instead of one at a time in the loop that adds them. The block goes into the
      // hasher's memory for the payload digests (and the keys' hashes, unless spilled with them).
      sip.load(buf, starts === null ? count : 0);
      for (let i = 0; i < count; i++) {
        if (starts !== null) reader.pos = starts[i] as number;
        const start = reader.pos;
        const k = transcoder.envelope(reader);
        if (markSequences) {
          stats.in++;
          check.markBytes(buf, k.instanceStart, k.instanceEnd, k.sequence);
        }
        const payload = reader.pos;
        const end = starts === null ? skipPayload(buf, payload) : start + buf.readUInt32LE(start - SPILL_HEADER);
        // the keyed hash (needed for the id index) is also the key in the key set
        if (starts === null) sip.hash(k.keyStart, k.keyEnd, i);
        else
          for (let w = 0; w < HASH_WORDS; w++)
            hashes[HASH_WORDS * i + w] = buf.readUInt32LE(start - HASH_BYTES + 4 * w);
        recordStarts[i] = start;
        digests[i] = sip.digest(payload, end);
        if (starts === null) reader.pos = end;
      }
      if (starts === null) batchHashes(count);
      seen.touch(hashes, count);
      let n = 0;
      for (let i = 0; i < count; i++) {
        const at = HASH_WORDS * i;
        // a key the window holds is not kept: neither in the data nor in the partition's index
        const inWindow = hits.length > 0 && hasHash(hits, hashes, i);
        const added = seen.add(hashes, at, digests[i] as number, !inWindow);
        if (added !== Found.NEW) {
          stats.duplicates++;
          if (added === Found.OTHER_TAG) stats.conflicts++;
        } else if (inWindow) stats.earlier++;
        else keptAt[n++] = recordStarts[i] as number;
      }
      await shredders.submit(buf, keptAt, n, starts === null);
    };

    if (splits === 1) {
      const seen = new KeySet(totalEvents);
      let hits: Uint32Array = new Uint32Array(0);
      if (windowCheck.fits(1, d.config.maxIdsInMemory)) {
        const checkStarted = performance.now();
        hits = await windowCheck.load(0, 1);
        windowSeconds += (performance.now() - checkStarted) / 1000;
      } else if (!windowCheck.empty) {
        const checkStarted = performance.now();
        // the keys' hashes first, to look them up in the window; the records are read again below
        const all = new HashList(totalEvents);
        for await (const block of recordBlocks(files, type, skipPayload, d)) {
          reader.buf = block.data;
          reader.pos = 0;
          sip.load(block.data, block.count);
          for (let i = 0; i < block.count; i++) {
            const k = transcoder.envelope(reader);
            reader.pos = skipPayload(reader.buf, reader.pos);
            sip.hash(k.keyStart, k.keyEnd, i);
          }
          const blockHashes = batchHashes(block.count);
          for (let i = 0; i < block.count; i++) all.push(blockHashes, HASH_WORDS * i);
          await breathe();
        }
        hits = await windowCheck.hits(all.sorted(), 0, 1);
        windowSeconds += (performance.now() - checkStarted) / 1000;
      }
      for await (const block of recordBlocks(files, type, skipPayload, d)) {
        reader.buf = block.data;
        reader.pos = 0;
        await dedupRecords(seen, hits, block.count, null, true);
        await breathe();
      }
      // the workers write their last batches and close their files while the kept keys are sorted
      finishing = shredders.finish();
      finishing.catch(() => undefined); // awaited below; a failure in the meantime is not unhandled
      const sorted = seen.sortedKept();
      await ids.append(sorted, sorted.length / HASH_WORDS);
    } else {
      // spill: raw record bytes, each after its length and its key's hash, go to one file per
      // split (a range of key hashes), then each split is deduped alone
      log.info(
        { events: totalEvents, window: window.partitions.length, splits },
        'partition larger than the in-memory id budget: spilling',
      );
      const spills = Array.from({ length: splits }, (_, i) => ({
        path: join(work, `split-${i}.bin`),
        sink: new TextSink(1 << 20),
      }));
      const handles = await Promise.all(spills.map((s) => open(s.path, 'w', 0o600)));
      try {
        for await (const block of recordBlocks(files, type, skipPayload, d)) {
          reader.buf = block.data;
          reader.pos = 0;
          sip.load(block.data, block.count);
          const bounds = new Int32Array(block.count + 1);
          for (let i = 0; i < block.count; i++) {
            bounds[i] = reader.pos;
            const k = transcoder.envelope(reader);
            reader.pos = skipPayload(reader.buf, reader.pos);
            stats.in++;
            check.markBytes(reader.buf, k.instanceStart, k.instanceEnd, k.sequence);
            sip.hash(k.keyStart, k.keyEnd, i);
          }
          bounds[block.count] = reader.pos;
          const blockHashes = batchHashes(block.count);
          for (let i = 0; i < block.count; i++) {
            const start = bounds[i] as number;
            const end = bounds[i + 1] as number;
            const at = HASH_WORDS * i;
            const s = spills[splitOfHash(blockHashes[at] as number, splits)] as (typeof spills)[number];
            s.sink.ensure(SPILL_HEADER + end - start);
            s.sink.buf.writeUInt32LE(end - start, s.sink.pos);
            for (let w = 0; w < HASH_WORDS; w++) {
              s.sink.buf.writeUInt32LE(blockHashes[at + w] as number, s.sink.pos + 4 + 4 * w);
            }
            s.sink.pos += SPILL_HEADER;
            reader.buf.copy(s.sink.buf, s.sink.pos, start, end);
            s.sink.pos += end - start;
          }
          await breathe();
          for (const [i, s] of spills.entries()) {
            if (s.sink.pos >= 4 << 20) {
              await (handles[i] as import('node:fs/promises').FileHandle).write(s.sink.buf, 0, s.sink.pos);
              s.sink.pos = 0;
            }
          }
        }
        for (const [i, s] of spills.entries()) {
          await (handles[i] as import('node:fs/promises').FileHandle).write(s.sink.buf, 0, s.sink.pos);
          s.sink.pos = 0;
        }
      } finally {
        await Promise.all(handles.map((h) => h.close()));
      }
      let seen: KeySet | null = null;
      for (const [split, s] of spills.entries()) {
        const [lo, hi] = splitRange(split, splits);
        if (seen === null) seen = new KeySet(Math.ceil(totalEvents / splits), lo, hi);
        else seen.reset(lo, hi);
        let hits: Uint32Array = new Uint32Array(0);
        if (windowCheck.fits(splits, d.config.maxIdsInMemory)) {
          const checkStarted = performance.now();
          hits = await windowCheck.load(split, splits);
          windowSeconds += (performance.now() - checkStarted) / 1000;
        } else if (!windowCheck.empty) {
          const checkStarted = performance.now();
          const all = new HashList(Math.ceil(totalEvents / splits));
          for await (const chunk of spillChunks(s.path)) {
            for (let pos = 0; pos < chunk.length; pos += SPILL_HEADER + chunk.readUInt32LE(pos)) {
              for (let w = 0; w < HASH_WORDS; w++) hash[w] = chunk.readUInt32LE(pos + 4 + 4 * w);
              all.push(hash, 0);
            }
          }
          hits = await windowCheck.hits(all.sorted(), split, splits);
          windowSeconds += (performance.now() - checkStarted) / 1000;
        }
        for await (const chunk of spillChunks(s.path)) {
          // records are framed; a chunk holds whole records only
          const starts: number[] = [];
          for (let pos = 0; pos < chunk.length; pos += SPILL_HEADER + chunk.readUInt32LE(pos)) {
            starts.push(pos + SPILL_HEADER);
          }
          reader.buf = chunk;
          await dedupRecords(seen, hits, starts.length, Int32Array.from(starts), false);
          await breathe();
        }
        const sorted = seen.sortedKept();
        await ids.append(sorted, sorted.length / HASH_WORDS);
        await rm(s.path, { force: true });
      }
    }
    // the index's header goes in (and the file is digested) while the workers finish
    const indexFinishing = ids.finish();
    indexFinishing.catch(() => undefined); // awaited below; a failure in the meantime is not unhandled
    const outputs = await (finishing ?? shredders.finish());

    const missing = check.missing();
    if (missing.size > 0) {
      const total = [...missing.values()].reduce((n, r) => n + rangeCount(r), 0);
      const detail = describeRanges(missing.entries());
      return {
        status: 'failed',
        error: `ledger_mismatch: ${total} ledgered events are not in the raw files (${detail})`,
      };
    }

    // publish: data first, manifest last
    const prefix = finalPrefix(type.name, job.start, job.daily);
    // the data files and the id index go up side by side; every upload is waited for, so that a
    // failure leaves no upload running behind the cleanup
    const indexName = `${prefix}ids-${attempt}.idx`;
    const indexUpload = (async () => {
      const indexFile = await indexFinishing;
      d.signal?.throwIfAborted();
      await d.objects.putFile(indexName, indexFile.path);
      uploaded.push(indexName);
      return indexFile;
    })();
    const dataUploads = outputs
      .filter((o) => o.rows > 0)
      .map(async (o) => {
        d.signal?.throwIfAborted();
        const name = `${prefix}${o.path.slice(o.path.lastIndexOf('/') + 1)}`;
        const info = await d.objects.putFile(name, o.path);
        uploaded.push(name);
        return { name, bytes: info.size, rows: o.rows, sha256: o.sha256 };
      });
    for (const u of await Promise.allSettled([indexUpload, ...dataUploads])) {
      if (u.status === 'rejected') throw u.reason;
    }
    const indexFile = await indexUpload;
    const published = await Promise.all(dataUploads);
    const eventsOut = published.reduce((n, f) => n + f.rows, 0);
    if (indexFile.ids !== eventsOut) throw new Error(`indexed ${indexFile.ids} ids, expected ${eventsOut}`);
    const idIndex: IdIndexRef = {
      name: indexName,
      ids: indexFile.ids,
      bytes: indexFile.bytes,
      sha256: indexFile.sha256,
      hash: 'siphash-2-4-128',
      keyId,
      fanoutBits: indexFile.fanoutBits,
    };
    const earlierDuplicates = stats.earlier;
    if (eventsOut !== stats.in - stats.duplicates - earlierDuplicates) {
      throw new Error(`wrote ${eventsOut} rows, expected ${stats.in - stats.duplicates - earlierDuplicates}`);
    }
    stats.duplicates += earlierDuplicates;
    const now = d.clock.now();
    for (const h of job.hours) {
      await d.state.updateHour(
        type.name,
        h.hour,
        { state: 'deduped', eventsIn: stats.in, duplicates: stats.duplicates, eventsOut },
        now,
        d.fence,
      );
    }
    const latest = latestVersion(type);
    const manifest: Manifest = {
      type: type.name,
      partitioning: job.daily ? 'daily' : 'hourly',
      start: new Date(job.start).toISOString(),
      end: new Date(job.start + (job.daily ? 24 : 1) * HOUR_MS).toISOString(),
      schema: { version: latest.version, fingerprint: latest.fingerprint },
      rawFiles: files.length,
      rawEventsIn: stats.in,
      duplicatesRemoved: stats.duplicates,
      duplicatesOfEarlierPartition: earlierDuplicates,
      duplicatesOfWindow: earlierDuplicates,
      dedupWindow: {
        ms: window.ms,
        from: new Date(window.from).toISOString(),
        partitions: window.partitions.length,
        legacyPartitions: windowCheck.legacyPartitions,
        indexBytesRead: windowCheck.io.bytes,
        seconds: Math.round(windowSeconds * 1000) / 1000,
      },
      idConflicts: stats.conflicts,
      eventsOut,
      ledgerTotal,
      lateEventsAtPublish: job.hours.reduce((n, h) => n + h.lateEvents, 0),
      closedBy: [...new Set(job.hours.map((h) => h.closedBy))],
      vanishedInstances: [...new Set(job.hours.flatMap((h) => h.vanishedInstances))].sort(),
      files: published,
      idIndex,
      closedAt: new Date(Math.max(...job.hours.map((h) => h.closedAt), 0)).toISOString(),
      publishedAt: new Date(now).toISOString(),
      dedupSeconds: Math.round(performance.now() - started) / 1000,
      format: 'parquet',
    };
    const manifestName = `${prefix}${MANIFEST}`;
    let final = manifest;
    d.signal?.throwIfAborted();
    manifestTried = true;
    try {
      await d.objects.put(manifestName, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    } catch (err) {
      if (!(err instanceof ObjectExists)) throw err;
      // an earlier attempt published and crashed before recording it: that manifest stands
      final = JSON.parse((await d.objects.get(manifestName)).toString()) as Manifest;
      log.warn({ manifest: manifestName }, 'partition was already published; keeping that manifest');
    }
    // files of attempts that never got a manifest
    const listed = new Set(final.files.map((f) => f.name));
    if (final.idIndex !== undefined) listed.add(final.idIndex.name);
    for (const o of await listAll(d.objects, prefix)) {
      if (o.name !== manifestName && !listed.has(o.name) && !o.name.slice(prefix.length).includes('/')) {
        await d.objects.delete(o.name);
      }
    }
    return { status: 'published', manifest: final, manifestName };
  } catch (err) {
    // stopped before its manifest (its claim lost, a write failed): no manifest lists its files,
    // so they go (best effort: a later attempt's cleanup removes what is left)
    if (!manifestTried) {
      for (const name of uploaded) {
        await d.objects
          .delete(name)
          .catch((e: unknown) => log.warn({ err: e, name }, 'removing an unlisted file failed'));
      }
    }
    throw err;
  } finally {
    await index?.abort();
    await pool?.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** Decompressed record blocks of the files, in the type's current raw layout. */
async function* recordBlocks(
  files: readonly RawFile[],
  type: EventType,
  skipPayload: (buf: Buffer, pos: number) => number,
  d: DedupDeps,
): AsyncGenerator<{ count: number; data: Buffer }> {
  const schema = rawSchemaFor(type) as { fields: { name: string }[] };
  const current = JSON.stringify(schema);
  // the same layout without `producer`, as raw files were written before it
  const withoutProducer = JSON.stringify({ ...schema, fields: schema.fields.filter((f) => f.name !== 'producer') });
  const currentType = rawTypeFor(type);
  const scratch = { buf: Buffer.alloc(0) };
  for (const f of files) {
    const path = d.objects.localPath(f.name);
    const bytes = path !== null ? await readWhole(path, scratch) : await d.objects.get(f.name);
    let contents = openContainer(bytes);
    // uncompressed blocks are views of the file's bytes: those must outlive the next file's read
    if (contents.codec === 'null' && bytes.buffer === scratch.buf.buffer) contents = openContainer(Buffer.from(bytes));
    const written = JSON.stringify(contents.schema);
    if (written === current) {
      yield* contents.blocks;
      continue;
    }
    if (written === withoutProducer) {
      for (const block of contents.blocks) yield withNullProducer(block, skipPayload);
      continue;
    }
    // written with an earlier schema of the type: resolve each record to the current one
    const writer = avro.Type.forSchema(contents.schema as avro.Schema);
    const resolver = currentType.createResolver(writer);
    for (const block of contents.blocks) {
      const out: Buffer[] = [];
      let pos = 0;
      for (let i = 0; i < block.count; i++) {
        const r = currentType.decode(block.data, pos, resolver);
        pos = r.offset;
        out.push(currentType.toBuffer(r.value));
      }
      yield { count: block.count, data: Buffer.concat(out) };
    }
  }
}

/**
 * The bytes of the local file at `path`, read into `scratch.buf` (grown when too small): every
 * file of a partition is read into the same memory, whose pages are then mapped once, where a
 * buffer per file faulted each of its pages in again (about 100,000 faults for a 5 M-event hour).
 */
async function readWhole(path: string, scratch: { buf: Buffer }): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    // with room to spare: the files of an hour differ in size by a little
    if (scratch.buf.length < size) scratch.buf = Buffer.allocUnsafe(Math.ceil(size * 1.25));
    let got = 0;
    while (got < size) {
      const { bytesRead } = await handle.read(scratch.buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return scratch.buf.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/**
 * A block of raw records written before records had a producer, in the current layout: the null
 * branch of `producer` inserted after each id (what schema resolution gives, without decoding
 * the payloads).
 */
function withNullProducer(
  block: { count: number; data: Buffer },
  skipPayload: (buf: Buffer, pos: number) => number,
): { count: number; data: Buffer } {
  const r = new Reader();
  r.buf = block.data;
  const out = new AvroBuffer(block.data.length + block.count + 16);
  for (let i = 0; i < block.count; i++) {
    const start = r.pos;
    r.span(); // id
    const idEnd = r.pos;
    r.long(); // arrivalTime
    r.span(); // ingressInstance
    r.long(); // sequence
    if (r.long() === 1) r.long(); // clientTime
    r.long(); // writerVersion
    r.pos = skipPayload(r.buf, r.pos);
    out.writeBytes(block.data.subarray(start, idEnd));
    out.writeLong(0);
    out.writeBytes(block.data.subarray(idEnd, r.pos));
  }
  return { count: block.count, data: out.view() };
}

/** A spill file in chunks of whole records (each: u32 length, the key's 16-byte hash, the record). */
async function* spillChunks(path: string): AsyncGenerator<Buffer> {
  let carry = Buffer.alloc(0);
  for await (const data of createReadStream(path, { highWaterMark: 8 << 20 })) {
    const buf = carry.length > 0 ? Buffer.concat([carry, data as Buffer]) : (data as Buffer);
    let pos = 0;
    while (pos + SPILL_HEADER <= buf.length && pos + SPILL_HEADER + buf.readUInt32LE(pos) <= buf.length) {
      pos += SPILL_HEADER + buf.readUInt32LE(pos);
    }
    if (pos > 0) yield buf.subarray(0, pos);
    carry = Buffer.from(buf.subarray(pos));
  }
  if (carry.length > 0) throw new Error(`truncated spill file ${path}`);
}
