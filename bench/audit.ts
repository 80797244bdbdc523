/**
 * (h) The audit of two pipelines (`hourglass audit`) over two hours of 1,000,000 EndSong events
 * each. Both pipelines' final partitions are made the way the ETL makes them: raw Avro files
 * (snappy) with their ledger and closed hours in a state store, then the dedup step, which writes
 * the Parquet files and the manifest. Pipeline `b` lacks one event of the first hour and holds one
 * extra event in the second; the audit must name exactly those two ids. Generation runs in a child
 * process and the audit in another, so the peak RSS reported is the audit's alone.
 *
 *   tsx bench/audit.ts generate <dir> <eventsPerHour>   writes both pipelines' final partitions
 *   tsx bench/audit.ts run <dir> <eventsPerHour>        audits them; prints one JSON line
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import type { EventType } from '../core/event-types.js';
import { HOUR_MS, hourPath, hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import { mergeRanges, rangeCount } from '../core/ranges.js';
import { type AuditReport, auditPartitions } from '../etl/audit.js';
import { ContainerWriter } from '../etl/avro-container.js';
import { type Manifest, runDedup } from '../etl/dedup.js';
import { type RawEnvelope, rawSchemaFor, writeEnvelope } from '../etl/raw-record.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { defaultDedupConfig, endSongType, payloads } from './etl-data.js';
import { ROOT } from './processes.js';

/**
 * One event as the ETL consumer stores it: the envelope the ingress stamped (without `producer`:
 * sent without a producer key), and the payload.
 */
export interface RawEvent extends Omit<RawEnvelope, 'producer'> {
  readonly producer?: string | null;
  /** The payload, Avro-encoded in the type's current schema. */
  readonly payload: Uint8Array;
}

export interface PartitionSource {
  readonly objects: ObjectStore;
  readonly state: StateStore;
  readonly type: EventType;
  /** Start of the hour, or of the day for a daily type. */
  readonly start: number;
  readonly daily: boolean;
  /** In the order the consumer read them (dedup keeps the first copy of an id). */
  readonly events: Iterable<RawEvent>;
  /** Scratch space of the dedup step. */
  readonly workDir: string;
  /** Events per raw file (default 500,000). */
  readonly eventsPerFile?: number;
  /** The dedup step's Parquet row group size (default: the configured default). */
  readonly rowGroupBytes?: number;
}

/**
 * Publishes a final partition from `events` as the ETL does: committed raw files of each hour
 * (snappy Avro, registered with their sequence ranges), the ingress ledgers (sealed) and closed
 * hours in the state store, then the dedup step. Returns the manifest.
 */
export async function publishPartition(p: PartitionSource): Promise<Manifest> {
  const perFile = p.eventsPerFile ?? 500_000;
  const schema = rawSchemaFor(p.type);
  const consumer = `etl-${p.type.name.toLowerCase()}-synthetic`;
  interface Open {
    writer: ContainerWriter;
    ranges: Map<string, [number, number][]>;
  }
  const open = new Map<number, Open>();
  const files = new Map<number, number>();
  const ledgers = new Map<number, Map<string, [number, number][]>>();
  const commit = async (hour: number, o: Open): Promise<void> => {
    const n = files.get(hour) ?? 0;
    files.set(hour, n + 1);
    const name = `raw/${p.type.name}/${hourPath(hour)}/${consumer}-${String(n).padStart(4, '0')}.avro`;
    const body = await o.writer.finish();
    await p.objects.put(name, body);
    const ranges = Object.fromEntries([...o.ranges].map(([i, r]) => [i, mergeRanges(r)]));
    await p.state.registerFile({
      type: p.type.name,
      hour,
      kind: 'raw',
      name,
      events: o.writer.count,
      bytes: body.length,
      ranges,
      consumer,
      committedAt: Date.now(),
    });
    const ledger = ledgers.get(hour) ?? new Map<string, [number, number][]>();
    for (const [i, r] of o.ranges) ledger.set(i, [...(ledger.get(i) ?? []), ...r]);
    ledgers.set(hour, ledger);
  };
  for (const e of p.events) {
    const hour = hourStart(e.arrivalTime);
    let o = open.get(hour);
    if (o === undefined) {
      o = { writer: new ContainerWriter(schema, { codec: 'snappy', blockBytes: 256 * 1024 }), ranges: new Map() };
      open.set(hour, o);
    }
    const t = o.writer.target;
    const before = t.pos;
    writeEnvelope(t, e);
    t.writeBytes(e.payload);
    o.writer.commitRecord(t.pos - before);
    const r = o.ranges.get(e.ingressInstance) ?? [];
    const last = r[r.length - 1];
    if (last !== undefined && last[1] + 1 === e.sequence) last[1] = e.sequence;
    else r.push([e.sequence, e.sequence]);
    o.ranges.set(e.ingressInstance, r);
    if (o.writer.count >= perFile) {
      open.delete(hour);
      await commit(hour, o);
    }
  }
  for (const [hour, o] of open) await commit(hour, o);
  const now = Date.now();
  const instances = new Set<string>();
  for (const [hour, ledger] of ledgers) {
    const entries = [...ledger].map(([instanceId, r]) => {
      instances.add(instanceId);
      const ranges = mergeRanges(r);
      return { instanceId, type: p.type.name, hour, ranges, count: rangeCount(ranges), sealed: true, updatedAt: now };
    });
    await p.state.saveLedgers(entries);
    await p.state.closeHour({
      type: p.type.name,
      hour,
      closedAt: now,
      closedBy: 'sealed',
      vanishedInstances: [],
      ledgerTotal: entries.reduce((n, e) => n + e.count, 0),
    });
  }
  for (const id of instances) {
    await p.state.upsertInstance({
      id,
      host: 'synthetic',
      pid: 1,
      startedAt: p.start,
      lastSeenAt: now,
      stoppedAt: now,
    });
  }
  const end = p.start + (p.daily ? 24 : 1) * HOUR_MS;
  const hours = await p.state.listHours({ type: p.type.name, from: p.start, to: end });
  const result = await runDedup(
    { type: p.type, start: p.start, daily: p.daily, hours, earlier: [] },
    {
      objects: p.objects,
      state: p.state,
      clock: new SystemClock(),
      logger: silentLogger(),
      config: defaultDedupConfig(p.workDir, p.rowGroupBytes === undefined ? {} : { rowGroupBytes: p.rowGroupBytes }),
    },
  );
  if (result.status !== 'published') throw new Error(result.error);
  return result.manifest;
}

/** The first of the two hours audited. */
const FIRST_HOUR = hourStart(Date.UTC(2026, 0, 1, 12));
const INSTANCE = 'ingress-bench';
/** Index of the event of the first hour pipeline `b` lacks. */
const MISSING_INDEX = 123_457;

function missingId(eventsPerHour: number): string {
  return `h0-e-${MISSING_INDEX % eventsPerHour}`;
}
const EXTRA_ID = 'h1-extra';

/**
 * The raw events of hour `h` (0 or 1): `eventsPerHour` distinct ids, every 100th followed later by
 * a producer retry of it (same id and payload, new arrival time and sequence number).
 */
function* hourEvents(
  h: number,
  eventsPerHour: number,
  bodies: readonly Buffer[],
  change: { skip?: string; extra?: string },
): Generator<RawEvent> {
  const hour = FIRST_HOUR + h * HOUR_MS;
  let sequence = 0;
  const event = (i: number, at: number): RawEvent => ({
    id: `h${h}-e-${i}`,
    arrivalTime: hour + Math.floor((at / eventsPerHour) * 3_599_000),
    ingressInstance: INSTANCE,
    sequence: ++sequence,
    clientTime: hour - 60_000 + (i % 60_000),
    writerVersion: 2,
    payload: bodies[i % bodies.length] as Buffer,
  });
  // a skipped event keeps its sequence number: the ingress published it, the pipeline lost it
  for (let i = 0; i < eventsPerHour; i++) {
    const e = event(i, i);
    if (e.id !== change.skip) yield e;
    if (i % 100 === 99) {
      const retry = event(i - 50, i);
      if (retry.id !== change.skip) yield retry;
    }
  }
  // an event only this pipeline holds (with the next sequence number)
  if (change.extra !== undefined) yield { ...event(0, eventsPerHour - 1), id: change.extra };
}

async function generate(dir: string, eventsPerHour: number): Promise<void> {
  const type = await endSongType();
  const bodies = payloads(type);
  for (const side of ['a', 'b'] as const) {
    const root = join(dir, side);
    await mkdir(root, { recursive: true });
    const objects = new FsObjectStore(join(root, 'objects'));
    const state = new SqliteStateStore(join(root, 'state.sqlite'));
    try {
      for (const h of [0, 1]) {
        const change =
          side === 'b' ? (h === 0 ? { skip: missingId(eventsPerHour) } : { extra: EXTRA_ID }) : ({} as const);
        await publishPartition({
          objects,
          state,
          type,
          start: FIRST_HOUR + h * HOUR_MS,
          daily: false,
          events: hourEvents(h, eventsPerHour, bodies, change),
          workDir: join(root, 'work'),
        });
      }
    } finally {
      await state.close();
    }
  }
}

export interface AuditBenchResult {
  readonly eventsPerHour: number;
  readonly hours: number;
  /** Rows read from both pipelines. */
  readonly rows: number;
  readonly seconds: number;
  /** Rows read from both pipelines per second. */
  readonly eventsPerSec: number;
  readonly peakRssMb: number;
  /** The audit named exactly the injected differences (and nothing else). */
  readonly correct: boolean;
  readonly missingOnA: readonly string[];
  readonly missingOnB: readonly string[];
  readonly generateSeconds: number;
}

async function run(dir: string, eventsPerHour: number): Promise<Omit<AuditBenchResult, 'generateSeconds'>> {
  const started = performance.now();
  const report = await auditPartitions({
    a: { name: 'a', objects: new FsObjectStore(join(dir, 'a', 'objects')) },
    b: { name: 'b', objects: new FsObjectStore(join(dir, 'b', 'objects')) },
    types: ['EndSong'],
    from: FIRST_HOUR,
    to: FIRST_HOUR + 2 * HOUR_MS,
    memoryBytes: DEFAULTS.etl.duckdbMemoryBytes,
    threads: DEFAULTS.etl.duckdbThreads,
  });
  const seconds = (performance.now() - started) / 1000;
  const rows = report.partitions.reduce((n, p) => n + (p.a?.events ?? 0) + (p.b?.events ?? 0), 0);
  const missingOnA = report.partitions.flatMap((p) => p.missingOnA.ids);
  const missingOnB = report.partitions.flatMap((p) => p.missingOnB.ids);
  return {
    eventsPerHour,
    hours: report.partitions.length,
    rows,
    seconds: Math.round(seconds * 100) / 100,
    eventsPerSec: Math.round(rows / seconds),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    correct: injectedFound(report, eventsPerHour),
    missingOnA,
    missingOnB,
  };
}

/** The report names the missing id in the first hour, the extra one in the second, and nothing else. */
function injectedFound(report: AuditReport, eventsPerHour: number): boolean {
  const [first, second] = report.partitions;
  const only = (l: { count: number; ids: readonly string[] }, id?: string): boolean =>
    id === undefined ? l.count === 0 : l.count === 1 && l.ids[0] === id;
  return (
    report.partitions.length === 2 &&
    first !== undefined &&
    second !== undefined &&
    first.status === 'differ' &&
    second.status === 'differ' &&
    only(first.missingOnB, missingId(eventsPerHour)) &&
    only(first.missingOnA) &&
    only(second.missingOnA, EXTRA_ID) &&
    only(second.missingOnB) &&
    report.partitions.every((p) => p.contentDiffers.count === 0 && p.otherCopy.count === 0) &&
    first.a?.events === eventsPerHour &&
    first.b?.events === eventsPerHour - 1 &&
    second.a?.events === eventsPerHour &&
    second.b?.events === eventsPerHour + 1
  );
}

function child(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'bench/audit.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`audit ${args[0]} exited with ${code}`))));
  });
}

/**
 * Builds two pipelines' final partitions of two hours of `eventsPerHour` events (one event missing
 * on `b` in the first, one extra on `b` in the second) and audits them, each in a child process.
 */
export async function measureAudit(eventsPerHour = 1_000_000): Promise<AuditBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-audit-'));
  try {
    const generating = performance.now();
    await child(['generate', dir, String(eventsPerHour)]);
    const generateSeconds = Math.round((performance.now() - generating) / 10) / 100;
    const out = await child(['run', dir, String(eventsPerHour)]);
    const result = JSON.parse(out.trim().split('\n').pop() as string) as Omit<AuditBenchResult, 'generateSeconds'>;
    return { ...result, generateSeconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, dir, arg] = process.argv.slice(2);
  if (cmd === 'generate' && dir) await generate(dir, Number(arg ?? 1_000_000));
  else if (cmd === 'run' && dir) console.log(JSON.stringify(await run(dir, Number(arg ?? 1_000_000))));
  else if (cmd === 'measure') console.log(await measureAudit(Number(dir ?? 1_000_000)));
  else
    throw new Error(
      'usage: audit.ts generate <dir> <eventsPerHour> | run <dir> <eventsPerHour> | measure [eventsPerHour]',
    );
}
