/**
 * etl.workers: dedup workers sharing the batch jobs of one PostgreSQL state store. 1, 2 and 3
 * `hourglass etl --roles dedup` processes (production defaults each: one dedup job per core plus
 * the slot for small partitions) on one PostgreSQL state store and one fs object store (the data
 * dir they share) publish the same 60 closed hourly partitions: 30 event types (copies of EndSong's
 * schemas) × 2 consecutive hours of 100,000 events with 1% duplicates (a type's second hour waits
 * for its first and reads its ids, as in production).
 *
 * The raw files are written once (child process, not timed); each run gets a fresh data dir whose
 * raw files are hard links to them and a fresh PostgreSQL schema filled the same way (registry,
 * files, sealed ledgers). Once its workers serve, the run closes the 60 hours and is timed until
 * all are published. Checked per run: every job was run once (the sum of the jobs' `attempts`
 * from `listJobs` equals the partitions), every partition was published exactly once
 * ("partition published" logged once over all the workers) with its ledgered count (the manifest's
 * `rawEventsIn` and `ledgerTotal` equal the events ledgered, `eventsOut` the distinct ones), and
 * only its manifest's files are under its prefix.
 *
 *   tsx bench/etl-workers.ts generate <dir> <types> <eventsPerHour>   type folders and raw files
 *   tsx bench/etl-workers.ts measure [eventsPerHour]                  the whole measure
 */
import { readdirSync, readFileSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadEventTypeDir } from '../core/event-types.js';
import { HOUR_MS, hourStart } from '../core/hours.js';
import { listAll } from '../core/ports/object-store.js';
import type { Manifest } from '../etl/dedup.js';
import { finalPrefix } from '../etl/names.js';
import { PostgresStateStore } from '../infra/state/postgres/postgres-state-store.js';
import { FsObjectStore } from '../infra/store/fs/fs-object-store.js';
import { startPostgres } from '../test/fixtures/postgres.js';
import {
  applyTypes,
  closeRawHour,
  endSongType,
  payloads,
  type RawHour,
  registerRawHour,
  writeRawHour,
} from './etl-data.js';
import { type EtlProcess, machineBusySeconds, ROOT, runBenchScript, startEtl } from './processes.js';

const HOUR = hourStart(Date.UTC(2026, 0, 1, 12));
const TYPES = 30;
const HOURS_PER_TYPE = 2;
const WORKER_COUNTS = [1, 2, 3];

async function generate(dir: string, types: number, events: number): Promise<void> {
  const endSong = await endSongType();
  const bodies = payloads(endSong);
  const src = join(ROOT, 'schemas', 'EndSong');
  const objects = new FsObjectStore(join(dir, 'raw-objects'));
  const hours: RawHour[] = [];
  for (let t = 0; t < types; t++) {
    const name = `Bench${String(t).padStart(2, '0')}`;
    const folder = join(dir, 'schemas', name);
    await mkdir(folder, { recursive: true });
    for (const f of await readdir(src)) {
      const text = (await readFile(join(src, f), 'utf8')).replaceAll('"EndSong"', JSON.stringify(name));
      await writeFile(join(folder, f), text);
    }
    const type = await loadEventTypeDir(folder);
    for (let h = 0; h < HOURS_PER_TYPE; h++) {
      hours.push(await writeRawHour(objects, type, HOUR + h * HOUR_MS, events, { idPrefix: `h${h}-`, bodies }));
    }
  }
  await writeFile(join(dir, 'hours.json'), JSON.stringify(hours));
}

export interface WorkersRun {
  readonly workers: number;
  /** From closing the 60 hours to the last one published (s). */
  readonly seconds: number;
  /** Dedup jobs (partitions) in the store, and the sum of their attempts. */
  readonly partitions: number;
  readonly attempts: number;
  /** The machine's cores. */
  readonly cpuCores: number;
  /** Cores the workers used on average over the run (their CPU seconds / seconds); null without /proc. */
  readonly coresUsed: number | null;
  /**
   * Cores the PostgreSQL server used meanwhile (its processes' CPU over `seconds`); null when it
   * is not a local one started here, or without /proc.
   */
  readonly postgresCores: number | null;
  /**
   * Cores the rest of the machine used meanwhile (its busy CPU over `seconds`, from /proc/stat,
   * less the workers' and PostgreSQL's): the benchmark process and any other work; null without /proc.
   */
  readonly otherCores: number | null;
  /** Partitions published by each worker (its "partition published" log lines). */
  readonly perWorker: number[];
  /** `seconds` of the run with one worker over this one's. */
  readonly speedUp: number;
  /** Every check passed (see `problems` otherwise). */
  readonly ok: boolean;
  readonly problems: string[];
}

export interface WorkersResult {
  readonly cpuCores: number;
  readonly loadAverage: number;
  readonly types: number;
  readonly partitions: number;
  readonly eventsPerPartition: number;
  readonly generateSeconds: number;
  readonly runs: WorkersRun[];
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * CPU seconds of the local PostgreSQL server listening on `port`: its postmaster (found by its
 * `-p <port>` argument, as test/fixtures/postgres.ts starts it) with its children, those that
 * exited included; null when there is none or without /proc.
 */
function postgresCpuSeconds(port: number): number | null {
  const stat = (pid: string): string[] | null => {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return s.slice(s.lastIndexOf(')') + 2).split(' ');
    } catch {
      return null;
    }
  };
  try {
    const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    const postmaster = pids.find((p) => {
      try {
        const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return args[0]?.endsWith('postgres') === true && args[args.indexOf('-p') + 1] === String(port);
      } catch {
        return false;
      }
    });
    if (postmaster === undefined) return null;
    let ticks = 0;
    for (const p of pids) {
      const f = p === postmaster ? stat(p) : null;
      // utime, stime, and the children it waited for: cutime, cstime
      if (f !== null) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else {
        const c = stat(p);
        if (c !== null && c[1] === postmaster) ticks += Number(c[11]) + Number(c[12]);
      }
    }
    return ticks / 100;
  } catch {
    return null;
  }
}

/** Hard-links every file under `from` into `to` (raw files are written once and never change). */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.isDirectory()) await linkTree(join(from, e.name), join(to, e.name));
    else await link(join(from, e.name), join(to, e.name));
  }
}

async function runOnce(
  url: string,
  dir: string,
  hours: readonly RawHour[],
  workers: number,
): Promise<Omit<WorkersRun, 'speedUp'>> {
  const schema = `bench_workers_${workers}_${Date.now().toString(36)}`;
  const data = join(dir, `run-${workers}`);
  await linkTree(join(dir, 'raw-objects'), join(data, 'objects'));
  const state = await PostgresStateStore.open({ url, schema });
  const procs: EtlProcess[] = [];
  try {
    await applyTypes(join(dir, 'schemas'), state);
    for (const h of hours) await registerRawHour(state, h);
    const env = { HOURGLASS_STATE: 'postgres', HOURGLASS_STATE_URL: url, HOURGLASS_STATE_SCHEMA: schema };
    procs.push(
      ...(await Promise.all(
        Array.from({ length: workers }, () => startEtl(['--roles', 'dedup', '--data-dir', data], env)),
      )),
    );
    const cpuBefore = procs.map((p) => p.cpuSeconds());
    const machineBefore = machineBusySeconds();
    const port = Number(new URL(url).port);
    const postgresBefore = postgresCpuSeconds(port);
    const started = performance.now();
    for (const h of hours) await closeRawHour(state, h);
    for (;;) {
      const done = await state.listHours({ states: ['published', 'failed'] });
      if (done.length >= hours.length) break;
      if (performance.now() - started > 600_000)
        throw new Error(`${done.length} of ${hours.length} published in 10 min`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = procs.map((p) => p.cpuSeconds());
    const machineAfter = machineBusySeconds();
    const postgresAfter = postgresCpuSeconds(port);
    const postgres = postgresBefore === null || postgresAfter === null ? null : postgresAfter - postgresBefore;
    const cpu = cpuBefore.every((c) => c !== null) && cpuAfter.every((c) => c !== null);
    const used = cpu ? cpuAfter.reduce((n: number, c, i) => n + (c as number) - (cpuBefore[i] as number), 0) : null;

    const problems: string[] = [];
    const jobs = await state.listJobs({ kind: 'dedup' });
    const attempts = jobs.reduce((n, j) => n + j.attempts, 0);
    if (jobs.length !== hours.length) problems.push(`${jobs.length} dedup jobs for ${hours.length} partitions`);
    if (attempts !== jobs.length) {
      const again = jobs.filter((j) => j.attempts > 1).map((j) => `${j.type} ${new Date(j.partition).toISOString()}`);
      problems.push(`attempts ${attempts} ≠ partitions ${jobs.length}: run more than once: ${again.join(', ')}`);
    }
    for (const j of jobs)
      if (j.state !== 'done') problems.push(`job ${j.type} ${j.partition}: ${j.state} ${j.error ?? ''}`);
    await new Promise((r) => setTimeout(r, 200)); // the workers' last log lines
    const perWorker = procs.map((p) => p.logs().filter((l) => l.msg === 'partition published').length);
    const logged = perWorker.reduce((a, b) => a + b, 0);
    if (logged !== hours.length)
      problems.push(`"partition published" logged ${logged} times for ${hours.length} partitions`);
    const objects = new FsObjectStore(join(data, 'objects'));
    for (const h of hours) {
      const label = `${h.type} ${new Date(h.hour).toISOString()}`;
      const [r] = await state.listHours({ type: h.type, from: h.hour, to: h.hour + 1 });
      if (r?.state !== 'published' || r.manifest === null) {
        problems.push(`${label}: ${r?.state ?? 'no record'} ${r?.error ?? ''}`);
        continue;
      }
      const m = JSON.parse((await objects.get(r.manifest)).toString()) as Manifest;
      if (m.rawEventsIn !== h.events || m.ledgerTotal !== h.events || m.eventsOut !== h.distinct) {
        problems.push(
          `${label}: in ${m.rawEventsIn}, ledger ${m.ledgerTotal}, out ${m.eventsOut}; expected ${h.events}, ${h.events}, ${h.distinct}`,
        );
      }
      const prefix = finalPrefix(h.type, h.hour, false);
      const names = (await listAll(objects, prefix)).map((o) => o.name).sort();
      // its data files, its id index and its manifest: nothing of another attempt
      const expected = [r.manifest, ...m.files.map((f) => f.name), ...(m.idIndex ? [m.idIndex.name] : [])].sort();
      if (JSON.stringify(names) !== JSON.stringify(expected)) problems.push(`${label}: objects ${names.join(', ')}`);
    }
    return {
      workers,
      seconds: round(seconds),
      partitions: jobs.length,
      attempts,
      cpuCores: cpus().length,
      coresUsed: used === null ? null : round(used / seconds),
      postgresCores: postgres === null ? null : round(postgres / seconds),
      otherCores:
        used === null || machineBefore === null || machineAfter === null
          ? null
          : round((machineAfter - machineBefore - used - (postgres ?? 0)) / seconds),
      perWorker,
      ok: problems.length === 0,
      problems,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await state.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
    await rm(data, { recursive: true, force: true });
  }
}

export async function measureWorkers(eventsPerPartition = 100_000): Promise<WorkersResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-workers-'));
  const postgres = await startPostgres();
  try {
    const generating = performance.now();
    await runBenchScript('etl-workers.ts', ['generate', dir, String(TYPES), String(eventsPerPartition)]);
    const generateSeconds = round((performance.now() - generating) / 1000, 1);
    const hours = JSON.parse(await readFile(join(dir, 'hours.json'), 'utf8')) as RawHour[];
    const loadAverage = round(loadavg()[0] ?? 0);
    const runs: Omit<WorkersRun, 'speedUp'>[] = [];
    for (const n of WORKER_COUNTS) runs.push(await runOnce(postgres.url, dir, hours, n));
    const one = runs[0]?.seconds ?? Number.NaN;
    return {
      cpuCores: cpus().length,
      loadAverage,
      types: TYPES,
      partitions: hours.length,
      eventsPerPartition,
      generateSeconds,
      runs: runs.map((r) => ({ ...r, speedUp: round(one / r.seconds) })),
    };
  } finally {
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, a, b, c] = process.argv.slice(2);
  if (cmd === 'generate' && a) await generate(a, Number(b), Number(c));
  else if (cmd === 'measure') console.log(JSON.stringify(await measureWorkers(a ? Number(a) : undefined), null, 2));
  else throw new Error('usage: etl-workers.ts generate <dir> <types> <eventsPerHour> | measure [eventsPerHour]');
}
