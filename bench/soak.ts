/**
 * (j) The soak: no acknowledged event is lost over a long run while every topic rolls segments.
 *
 * `hourglass dev` (ingress and ETL in one process) in a fresh data dir at time scale 60 (an hour
 * passes in a minute), with bus segments of up to 1 MiB (smaller for a short or slow run) (`HOURGLASS_SEGMENT_BYTES`) so that every topic
 * rolls many segments, loaded by `hourglass send --type EndSong,PageView,UserCreate` at a steady
 * rate (default 20,000 events/s for 300 s; `--soak-rate`, `--soak-seconds`) with 16 requests in
 * flight and up to 5 retries of a request answered 429/503 or failing on the network (a retry
 * resends the same ids). During the run: the RSS of `hourglass dev` (VmRSS, sampled), the segment
 * files present in each topic's `bus/topics/<topic>/segments` (sampled every 500 ms).
 *
 * The scaled clock is placed (a `clock.json` written before `hourglass dev` starts, which it
 * continues from) so that sending ends 10 s (real) before a UTC midnight: UserCreate is
 * partitioned daily, and its day is then over, and published, shortly after sending ends.
 *
 * After sending: waits (at most 120 s plus a quarter of the run) until every (type, hour) that
 * ledgered events is published or failed, stops `hourglass dev`, then reads the published final
 * partitions (the Parquet files the manifests list) with DuckDB and compares, per type, the event
 * ids there with the ids `hourglass send` got accepted. Send issues ids `<run>-<n>` with n = 0, 1,
 * 2, … and, without `--invalid`/`--duplicates`, hands the types out in turn, so with every request
 * answered 200 and nothing rejected the accepted ids of the i-th of k types are exactly the n < sent
 * with n mod k = i. The check is then exact: each of them must be in the final partitions exactly
 * once, and no other id may be there. If some requests failed for good (or events were rejected),
 * which of their ids got in is unknown: the check is then bounded (`exact: false`).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import avro from 'avsc';
import { sharedClock } from '../core/clock-origin.js';
import { topicFor } from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import { openContainer } from '../etl/avro-container.js';
import { hourStates } from '../etl/hour-states.js';
import { SqliteStateStore } from '../infra/state/sqlite/sqlite-state-store.js';
import { runSend, type SendResult, startDev } from './processes.js';

const TYPES = ['EndSong', 'PageView', 'UserCreate'];
const DAY_MS = 24 * HOUR_MS;
const SCALE = 60;
/** Largest segment: a shorter or slower soak uses smaller ones, so that every topic still rolls. */
const MAX_SEGMENT_BYTES = 1024 * 1024;
/** Bytes a topic's lane writes per event, at least (EndSong, PageView, UserCreate frames). */
const MIN_EVENT_BYTES = 60;
/** Real seconds from writing the clock to the planned start of sending (hourglass dev starts within it). */
const START_ALLOWANCE_SEC = 15;
/** Real seconds from the end of sending to the scaled midnight that ends UserCreate's day. */
const DAY_END_MARGIN_SEC = 10;
const SEGMENT_SAMPLE_MS = 500;
const CONCURRENCY = 16;
const RETRIES = 5;

export interface SoakOptions {
  readonly seconds: number;
  readonly ratePerSec: number;
}

export interface RssSeries {
  /** VmRSS of `hourglass dev` while sending, MB, one sample every `intervalSec`. */
  readonly samplesMb: number[];
  readonly intervalSec: number;
  readonly firstMb: number;
  readonly medianMb: number;
  readonly lastMb: number;
  readonly maxMb: number;
  /** Least-squares slope over all samples, MB per minute (includes the warm-up). */
  readonly slopeMbPerMin: number;
  /**
   * Past the warm-up (the first quarter of the samples): the median of the slopes between every two
   * samples (Theil–Sen), MB per minute; robust to the spikes of the hourly dedups.
   */
  readonly steadySlopeMbPerMin: number;
  /** From the steady slope: `upward`, `flat`, `downward`, or `too short` (under a minute of sending). */
  readonly trend: 'upward' | 'flat' | 'downward' | 'too short';
  /** VmRSS once every hour was published (or the wait ended), MB. */
  readonly afterMb: number;
}

export interface SoakResult {
  /** Sending time asked for (real s), and as `hourglass send` measured it. */
  readonly seconds: number;
  readonly sendSeconds: number;
  readonly ratePerSec: number;
  readonly achievedEventsPerSec: number;
  readonly types: string[];
  readonly timeScale: number;
  readonly segmentBytes: number;
  /** Distinct segment files seen per type's topic (rolling exercised: > 1 each). */
  readonly segmentsSeen: Record<string, number>;
  /** Highest segment index seen per topic, plus one, summed over its writers: segments made. */
  readonly segmentsMade: Record<string, number>;
  readonly sent: number;
  readonly accepted: number;
  readonly distinctAcceptedIds: number;
  /** Accepted ids per type (exact when `exact`; otherwise the issued ids of the type). */
  readonly acceptedByType: Record<string, number>;
  readonly rejected: number;
  readonly httpErrors: Record<string, number>;
  readonly finalRows: Record<string, number>;
  readonly finalDistinct: Record<string, number>;
  /** Accepted ids absent from the final partitions, per type, and up to 10 of their n. */
  readonly missing: Record<string, number>;
  readonly missingSample: Record<string, number[]>;
  /**
   * For a type with missing ids: accepted ids in no raw (or late) file either once the wait ended,
   * i.e. lost before the ETL stored them (on the bus), and up to 10 of their n; null when not looked at.
   */
  readonly notInRawFiles: Record<string, number | null>;
  readonly notInRawFilesSample: Record<string, number[]>;
  /** Rows beyond one per id, per type. */
  readonly duplicates: Record<string, number>;
  /** Ids in the final partitions that were not accepted (any run, type or number), per type. */
  readonly unexpected: Record<string, number>;
  /** Sums over the type's manifests: ledgered events and events published. */
  readonly manifests: Record<string, { partitions: number; ledgerTotal: number; eventsOut: number }>;
  readonly passByType: Record<string, boolean>;
  /** (type, hour) with ledgered events not published when the wait ended (or failed). */
  readonly unpublished: { type: string; hour: string; state: string; ledger: number; error: string | null }[];
  /** Real seconds from the end of sending until every hour was published (null: not within the wait). */
  readonly publishedAfterSec: number | null;
  readonly ingressP50Ms: number;
  readonly ingressP99Ms: number;
  readonly ingressMaxMs: number;
  readonly rss: RssSeries;
  /** Whether the accepted ids are known exactly (every request answered 200, nothing rejected). */
  readonly exact: boolean;
  /** No loss, no duplicate, no stray id, every hour published, every topic rolled segments. */
  readonly pass: boolean;
  /** Why `pass` is false. */
  readonly failures: string[];
  /** The data dir, kept when the soak failed (removed when it passed). */
  readonly dataDir: string | null;
}

type Log = (line: string) => void;

interface SendSummary extends SendResult {
  readonly distinctAcceptedIds: number;
  readonly maxMs: number;
  readonly seconds: number;
  readonly rejectedByCode: Record<string, number>;
}

export async function measureSoak(log: Log, options: SoakOptions): Promise<SoakResult> {
  const { seconds, ratePerSec } = options;
  // each topic's two lanes should roll at least four times each during the run
  const perLaneBytes = ((seconds * ratePerSec) / TYPES.length / 2) * MIN_EVENT_BYTES;
  const segmentBytes = Math.max(4096, Math.min(MAX_SEGMENT_BYTES, Math.floor(perLaneBytes / 5)));
  const dataDir = await mkdtemp(join(tmpdir(), 'hourglass-bench-soak-'));
  // the scaled clock: sending ends DAY_END_MARGIN_SEC before a UTC midnight
  const realOrigin = Date.now();
  const spanScaledMs = (START_ALLOWANCE_SEC + seconds + DAY_END_MARGIN_SEC) * 1000 * SCALE;
  const dayEnd = Math.ceil((realOrigin + spanScaledMs) / DAY_MS) * DAY_MS;
  const clockOrigin = dayEnd - spanScaledMs;
  writeFileSync(join(dataDir, 'clock.json'), `${JSON.stringify({ scale: SCALE, realOrigin, clockOrigin })}\n`);
  const sendStartAt = realOrigin + START_ALLOWANCE_SEC * 1000;

  log(
    `(j) soak: hourglass dev at time scale ${SCALE}, segments of ${segmentBytes} bytes, ${TYPES.join(', ')} at ${ratePerSec} events/s for ${seconds} s …`,
  );
  const dev = await startDev(dataDir, ['--time-scale', String(SCALE)], {
    HOURGLASS_SEGMENT_BYTES: String(segmentBytes),
  });
  let stopped = false;
  const stopDev = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await dev.stop();
  };
  const rssMb = (): number => {
    try {
      const status = readFileSync(`/proc/${dev.pid}/status`, 'utf8');
      return Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 102.4) / 10;
    } catch {
      return 0;
    }
  };

  // segment files per topic, sampled
  const seen = new Map<string, Set<string>>(TYPES.map((t) => [t, new Set<string>()]));
  const sampleSegments = (): void => {
    for (const t of TYPES) {
      try {
        for (const name of readdirSync(join(dataDir, 'bus', 'topics', topicFor(t), 'segments'))) {
          if (name.endsWith('.log')) seen.get(t)?.add(name);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  };
  const segmentTimer = setInterval(sampleSegments, SEGMENT_SAMPLE_MS);

  const store = new SqliteStateStore(join(dataDir, 'state.sqlite'));
  const failures: string[] = [];
  let keep = false;
  try {
    const clock = sharedClock(dataDir, SCALE);
    let sendSeconds = seconds;
    const late = Date.now() - sendStartAt;
    if (late > 0) {
      // hourglass dev took longer than the allowance: send less, so that sending still ends before midnight
      sendSeconds = Math.max(1, seconds - Math.ceil(late / 1000));
      log(
        `    hourglass dev took ${Math.round(late / 100) / 10} s more than allowed to start: sending ${sendSeconds} s`,
      );
    } else {
      await new Promise((r) => setTimeout(r, -late));
    }

    // RSS while sending
    const intervalSec = sendSeconds >= 120 ? 5 : 2;
    const samplesMb: number[] = [rssMb()];
    const rssTimer = setInterval(() => samplesMb.push(rssMb()), intervalSec * 1000);
    let sent: SendSummary;
    const sendStarted = performance.now();
    try {
      sent = (await runSend([
        '--url',
        dev.url,
        ...dev.keyArgs,
        '--type',
        TYPES.join(','),
        '--rate',
        String(ratePerSec),
        '--duration',
        String(sendSeconds),
        '--batch',
        '100',
        '--concurrency',
        String(CONCURRENCY),
        '--retries',
        String(RETRIES),
      ])) as SendSummary;
    } finally {
      clearInterval(rssTimer);
    }
    const sendEnded = performance.now();
    log(
      `    sent ${sent.sent}, accepted ${sent.accepted} (${sent.distinctAcceptedIds} distinct ids), rejected ${sent.rejected}, http errors ${JSON.stringify(sent.httpErrors)}; ${sent.eventsPerSec} events/s, p50 ${sent.p50Ms} ms, p99 ${sent.p99Ms} ms, max ${sent.maxMs} ms (${Math.round((sendEnded - sendStarted) / 100) / 10} s)`,
    );
    const rss = rssSeries(samplesMb, intervalSec);
    log(
      `    RSS of hourglass dev while sending: first ${rss.firstMb} MB, median ${rss.medianMb}, last ${rss.lastMb}, max ${rss.maxMb}; slope ${rss.slopeMbPerMin} MB/min (past the warm-up ${rss.steadySlopeMbPerMin}): ${rss.trend}`,
    );

    // wait until every hour with ledgered events is published or failed
    const waitLimitMs = (120 + sendSeconds / 4) * 1000;
    let publishedAfterSec: number | null = null;
    let pending: Awaited<ReturnType<typeof hourStates>> = [];
    log(`    waiting for every hour to be published (UserCreate's day ends ${DAY_END_MARGIN_SEC} s after sending) …`);
    for (;;) {
      const states = (await hourStates(store, clock.now())).filter((s) => TYPES.includes(s.type));
      pending = states.filter((s) => s.ledgerEvents > 0 && s.state !== 'published' && s.state !== 'failed');
      const failed = states.filter((s) => s.state === 'failed');
      if (pending.length === 0 && clock.now() >= dayEnd) {
        publishedAfterSec = Math.round((performance.now() - sendEnded) / 100) / 10;
        pending = failed;
        break;
      }
      if (performance.now() - sendEnded > waitLimitMs) {
        pending = [...pending, ...failed];
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    sampleSegments();
    clearInterval(segmentTimer);
    const afterMb = rssMb();
    await stopDev();
    const unpublished = pending.map((s) => ({
      type: s.type,
      hour: new Date(s.hour).toISOString().slice(0, 13),
      state: s.state,
      ledger: s.ledgerEvents,
      error: s.record?.error ?? null,
    }));
    if (publishedAfterSec !== null && unpublished.length === 0) {
      log(`    every hour published ${publishedAfterSec} s after sending ended`);
    } else {
      for (const u of unpublished) {
        log(`    NOT PUBLISHED: ${u.type} ${u.hour} ${u.state}, ${u.ledger} ledgered${u.error ? `: ${u.error}` : ''}`);
      }
      failures.push(
        `${unpublished.length} (type, hour) with ledgered events not published ${publishedAfterSec === null ? `within ${waitLimitMs / 1000} s after sending` : '(failed)'}`,
      );
    }

    // segment rolling
    const segmentsSeen: Record<string, number> = {};
    const segmentsMade: Record<string, number> = {};
    for (const t of TYPES) {
      const names = seen.get(t) ?? new Set<string>();
      segmentsSeen[t] = names.size;
      const top = new Map<string, number>();
      for (const name of names) {
        const m = /^(.+)-(\d+)\.log$/.exec(name);
        if (m) top.set(m[1] as string, Math.max(top.get(m[1] as string) ?? -1, Number(m[2])));
      }
      segmentsMade[t] = [...top.values()].reduce((a, b) => a + b + 1, 0);
    }
    log(
      `    segment files seen per topic: ${TYPES.map((t) => `${t} ${segmentsSeen[t]} (${segmentsMade[t]} made)`).join(', ')}`,
    );
    for (const t of TYPES) {
      if ((segmentsSeen[t] ?? 0) <= 1) {
        log(`    FAIL: topic ${topicFor(t)} never rolled a segment: the soak did not exercise rolling`);
        failures.push(`topic ${topicFor(t)} showed ${segmentsSeen[t]} segment file(s): no roll exercised`);
      }
    }

    // the accepted ids against the final partitions
    const exact = sent.rejected === 0 && sent.accepted === sent.sent && sent.distinctAcceptedIds === sent.sent;
    const k = TYPES.length;
    const issuedOf = (i: number): number => (sent.sent > i ? Math.floor((sent.sent - 1 - i) / k) + 1 : 0);
    const manifests = await readManifests(join(dataDir, 'objects'));
    const finalRows: Record<string, number> = {};
    const finalDistinct: Record<string, number> = {};
    const missing: Record<string, number> = {};
    const missingSample: Record<string, number[]> = {};
    const duplicates: Record<string, number> = {};
    const unexpected: Record<string, number> = {};
    const acceptedByType: Record<string, number> = {};
    const manifestSums: SoakResult['manifests'] = {};
    const passByType: Record<string, boolean> = {};
    const notInRawFiles: Record<string, number | null> = {};
    const notInRawFilesSample: Record<string, number[]> = {};
    const instance = await DuckDBInstance.create(':memory:', { memory_limit: '1024MB', threads: '2' });
    try {
      const c = await instance.connect();
      try {
        // the run's id prefix: the one most final rows carry (one `hourglass send`, one run)
        const allFiles = [...manifests.values()].flatMap((m) => m.files);
        let run = '';
        if (allFiles.length > 0) {
          const rows = (
            await c.runAndReadAll(
              `SELECT regexp_extract(event_id, '^(.*)-[0-9]+$', 1) AS run, count(*) AS n FROM read_parquet([${allFiles.map(sqlString).join(', ')}]) GROUP BY run ORDER BY n DESC LIMIT 1`,
            )
          ).getRows();
          run = String(rows[0]?.[0] ?? '');
        }
        for (const [i, t] of TYPES.entries()) {
          const m = manifests.get(t) ?? { files: [], partitions: 0, ledgerTotal: 0, eventsOut: 0 };
          manifestSums[t] = { partitions: m.partitions, ledgerTotal: m.ledgerTotal, eventsOut: m.eventsOut };
          const expected = issuedOf(i);
          acceptedByType[t] = expected;
          const source =
            m.files.length > 0
              ? `read_parquet([${m.files.map(sqlString).join(', ')}], union_by_name = true)`
              : '(SELECT NULL::VARCHAR AS event_id WHERE false)';
          await c.run(
            `CREATE OR REPLACE TEMP TABLE ids AS SELECT event_id, regexp_extract(event_id, '^(.*)-[0-9]+$', 1) AS run, TRY_CAST(regexp_extract(event_id, '-([0-9]+)$', 1) AS BIGINT) AS n FROM ${source}`,
          );
          const inSet = `run = ${sqlString(run)} AND n IS NOT NULL AND n >= 0 AND n < ${sent.sent} AND n % ${k} = ${i}`;
          const r = (
            await c.runAndReadAll(
              `SELECT count(*), count(DISTINCT event_id), count(DISTINCT n) FILTER (WHERE ${inSet}) FROM ids`,
            )
          ).getRows()[0] as [bigint, bigint, bigint];
          const rows = Number(r[0]);
          const distinct = Number(r[1]);
          const present = Number(r[2]);
          let sample: number[] = [];
          if (present < expected) {
            const gaps = await c.runAndReadAll(
              `SELECT s.n FROM generate_series(${i}, ${sent.sent - 1}, ${k}) AS s(n) LEFT JOIN (SELECT DISTINCT n FROM ids WHERE ${inSet}) AS p ON p.n = s.n WHERE p.n IS NULL ORDER BY s.n LIMIT 10`,
            );
            sample = gaps.getRows().map((row) => Number(row[0]));
          }
          finalRows[t] = rows;
          finalDistinct[t] = distinct;
          missing[t] = expected - present;
          missingSample[t] = sample;
          duplicates[t] = rows - distinct;
          unexpected[t] = distinct - present;
          await c.run('DROP TABLE IF EXISTS ids');
        }
      } finally {
        c.closeSync();
      }
    } finally {
      instance.closeSync();
    }

    // where ids are missing: are they in the raw files (not published) or in none (lost before the ETL)?
    for (const [i, t] of TYPES.entries()) {
      notInRawFiles[t] = null;
      notInRawFilesSample[t] = [];
      if ((missing[t] ?? 0) === 0) continue;
      const present = await rawIds(join(dataDir, 'objects'), t, sent.sent);
      const lost: number[] = [];
      let count = 0;
      for (let n = i; n < sent.sent; n += k) {
        if (present[n] === 1) continue;
        count++;
        if (lost.length < 10) lost.push(n);
      }
      notInRawFiles[t] = count;
      notInRawFilesSample[t] = lost;
      log(
        `    ${t}: ${count} accepted id(s) are in no raw or late file either (lost before the ETL stored them)${lost.length > 0 ? `: n = ${lost.join(', ')}…` : ''}`,
      );
    }

    // verdict per type
    const unknown = sent.sent - sent.distinctAcceptedIds;
    const totalMissing = Object.values(missing).reduce((a, b) => a + b, 0);
    for (const t of TYPES) {
      const ok = exact
        ? missing[t] === 0 && duplicates[t] === 0 && unexpected[t] === 0
        : (missing[t] ?? 0) <= unknown && duplicates[t] === 0;
      passByType[t] = ok && !unpublished.some((u) => u.type === t);
      log(
        `    ${t}: accepted ${acceptedByType[t]}${exact ? '' : ' (issued)'}, final rows ${finalRows[t]}, distinct ${finalDistinct[t]}, missing ${missing[t]}${(missingSample[t] ?? []).length > 0 ? ` (n = ${missingSample[t]?.join(', ')}…)` : ''}, duplicates ${duplicates[t]}, unexpected ${unexpected[t]}; manifests: ${manifestSums[t]?.partitions} partitions, ledger ${manifestSums[t]?.ledgerTotal}, out ${manifestSums[t]?.eventsOut}: ${passByType[t] ? 'PASS' : 'FAIL'}`,
      );
      if (!ok) {
        failures.push(
          `${t}: ${missing[t]} accepted event(s) missing, ${duplicates[t]} duplicate row(s), ${unexpected[t]} unexpected id(s)`,
        );
      }
    }
    if (!exact) {
      log(
        `    the accepted ids are not known exactly (${unknown} ids in requests that failed or events rejected): the check is bounded (missing ≤ ${unknown} per type)`,
      );
      if (totalMissing > unknown) failures.push(`${totalMissing} missing ids exceed the ${unknown} unconfirmed ones`);
    }
    const pass = failures.length === 0;
    keep = !pass;
    log(`    soak: ${pass ? 'PASS' : `FAIL (${failures.join('; ')}); data dir kept: ${dataDir}`}`);
    return {
      seconds,
      sendSeconds: sent.seconds,
      ratePerSec,
      achievedEventsPerSec: sent.eventsPerSec,
      types: TYPES,
      timeScale: SCALE,
      segmentBytes,
      segmentsSeen,
      segmentsMade,
      sent: sent.sent,
      accepted: sent.accepted,
      distinctAcceptedIds: sent.distinctAcceptedIds,
      acceptedByType,
      rejected: sent.rejected,
      httpErrors: sent.httpErrors,
      finalRows,
      finalDistinct,
      missing,
      missingSample,
      notInRawFiles,
      notInRawFilesSample,
      duplicates,
      unexpected,
      manifests: manifestSums,
      passByType,
      unpublished,
      publishedAfterSec,
      ingressP50Ms: sent.p50Ms,
      ingressP99Ms: sent.p99Ms,
      ingressMaxMs: sent.maxMs,
      rss: { ...rss, afterMb },
      exact,
      pass,
      failures,
      dataDir: keep ? dataDir : null,
    };
  } catch (err) {
    keep = true;
    log(`    soak: ERROR; data dir kept: ${dataDir}`);
    throw err;
  } finally {
    clearInterval(segmentTimer);
    await store.close();
    await stopDev();
    if (!keep) await rm(dataDir, { recursive: true, force: true });
  }
}

/** Published partitions per type: their data files (local paths) and manifest sums. */
async function readManifests(
  objectsDir: string,
): Promise<Map<string, { files: string[]; partitions: number; ledgerTotal: number; eventsOut: number }>> {
  const out = new Map<string, { files: string[]; partitions: number; ledgerTotal: number; eventsOut: number }>();
  let names: string[];
  try {
    names = (await readdir(join(objectsDir, 'final'), { recursive: true })).filter((n) => n.endsWith('_manifest.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  for (const name of names.sort()) {
    const m = JSON.parse(await readFile(join(objectsDir, 'final', name), 'utf8')) as {
      type: string;
      ledgerTotal: number;
      eventsOut: number;
      files: { name: string }[];
    };
    const e = out.get(m.type) ?? { files: [], partitions: 0, ledgerTotal: 0, eventsOut: 0 };
    e.partitions++;
    e.ledgerTotal += m.ledgerTotal;
    e.eventsOut += m.eventsOut;
    for (const f of m.files) e.files.push(join(objectsDir, f.name));
    out.set(m.type, e);
  }
  return out;
}

/**
 * Which ids `<run>-<n>` (n < bound) the type's raw and late files hold, as a byte per n (1: present),
 * whatever the run prefix (one run per soak).
 */
async function rawIds(objectsDir: string, type: string, bound: number): Promise<Uint8Array> {
  const present = new Uint8Array(bound);
  for (const kind of ['raw', 'late']) {
    const dir = join(objectsDir, kind, type);
    let names: string[];
    try {
      names = (await readdir(dir, { recursive: true })).filter((n) => n.endsWith('.avro'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    for (const name of names) {
      const file = openContainer(await readFile(join(dir, name)));
      const reader = avro.Type.forSchema(file.schema as avro.Schema);
      for (const block of file.blocks) {
        let pos = 0;
        for (let j = 0; j < block.count; j++) {
          const r = reader.decode(block.data, pos);
          if (r.offset < 0) throw new Error(`truncated Avro record in ${kind}/${type}/${name}`);
          pos = r.offset;
          const m = /-(\d+)$/.exec((r.value as { id: string }).id);
          const n = m ? Number(m[1]) : -1;
          if (n >= 0 && n < bound) present[n] = 1;
        }
      }
    }
  }
  return present;
}

/** Summary, slopes and trend of an RSS series. */
export function rssSeries(samplesMb: number[], intervalSec: number): Omit<RssSeries, 'afterMb'> {
  const minutes = (i: number): number => (i * intervalSec) / 60;
  const leastSquares = (ys: number[]): number => {
    if (ys.length < 2) return 0;
    const mx = minutes(ys.length - 1) / 2;
    const my = ys.reduce((a, b) => a + b, 0) / ys.length;
    let num = 0;
    let den = 0;
    for (const [i, y] of ys.entries()) {
      num += (minutes(i) - mx) * (y - my);
      den += (minutes(i) - mx) ** 2;
    }
    return den === 0 ? 0 : num / den;
  };
  const theilSen = (ys: number[]): number => {
    const slopes: number[] = [];
    for (let i = 0; i < ys.length; i++) {
      for (let j = i + 1; j < ys.length; j++) slopes.push(((ys[j] as number) - (ys[i] as number)) / minutes(j - i));
    }
    return median(slopes);
  };
  const sorted = [...samplesMb].sort((a, b) => a - b);
  const med = median(samplesMb);
  const steady = samplesMb.slice(Math.floor(samplesMb.length / 4));
  const steadySlope = theilSen(steady);
  const growth = steadySlope * minutes(steady.length - 1);
  // upward: past the warm-up, it grows by more than 16 MB or 5% of the median over the window
  const threshold = Math.max(16, 0.05 * med);
  const trend: RssSeries['trend'] =
    minutes(samplesMb.length - 1) < 1
      ? 'too short'
      : growth > threshold
        ? 'upward'
        : growth < -threshold
          ? 'downward'
          : 'flat';
  const round = (x: number): number => Math.round(x * 10) / 10;
  return {
    samplesMb,
    intervalSec,
    firstMb: samplesMb[0] ?? 0,
    medianMb: med,
    lastMb: samplesMb[samplesMb.length - 1] ?? 0,
    maxMb: sorted[sorted.length - 1] ?? 0,
    slopeMbPerMin: round(leastSquares(samplesMb)),
    steadySlopeMbPerMin: round(steadySlope),
    trend,
  };
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
