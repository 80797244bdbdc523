/**
 * `npm run bench`: measures in one run
 *  (a) the bare ceiling: JSON.parse + avsc validation + encoding, in-process, one core;
 *  (b) the ingress end to end over loopback HTTP into the embedded bus (fsynced), batches of 100
 *      events, with the load generator (`hourglass send`) as a separate process: the maximum rate
 *      with producer keys on and off, then latency at half of it (and the event-loop delay of both
 *      processes), quota isolation between two keys; peak RSS of the ingress process (bench/ingress.ts);
 *  (c) the ETL consumer of one type: bus → committed raw files (bench/etl-consumer.ts);
 *  (d) the dedup step on hours of 5 M and 20 M events with 1% duplicates (bench/etl-dedup.ts), and
 *      DuckDB deduplicating the same 5 M hour from Parquet into Parquet (bench/etl-duckdb.ts), and
 *      the dedup window: a 1 M hour against 7 days of hourly id indexes (bench/etl-dedup-window.ts);
 *  (e) end to end, hour end → published partition, for an hour of ~1 M events (bench/etl-e2e.ts);
 *      then (k) isolation in one `hourglass etl`: a 10,000-event hour of one type closing while a
 *      20 M-event hour of another is deduped (bench/etl-isolation.ts), and (l) 1, 2 and 3
 *      `hourglass etl --roles dedup` workers on one PostgreSQL state store publishing the same 60
 *      partitions (bench/etl-workers.ts);
 *  (f) registry API reads over loopback HTTP (bench/registry-api.ts);
 *  (g) the Google Cloud Pub/Sub bus against Google's in-memory fake: the ingress end to end, the
 *      ETL consumer draining a backlog, and the consumer keeping up with the ingress (bench/pubsub.ts);
 *  (h) the audit of two pipelines (`hourglass audit`) over two hours of 1 M events each (bench/audit.ts);
 *  (i) the ingress on the Kafka bus, against librdkafka's mock cluster (bench/kafka.ts);
 *  (j) only with `--only soak`: the soak (bench/soak.ts): `hourglass dev` with 1-MiB bus segments at
 *      time scale 60 under a steady load of three types (default 20,000 events/s for 300 s;
 *      `--soak-seconds N`, `--soak-rate N`), every topic rolling segments; RSS of the dev process
 *      over time, ingress p99, segment files seen per topic, then every accepted event id checked
 *      to be in the published final partitions exactly once (DuckDB). Exits 1 on any loss.
 * `npm run bench -- --only ingress` runs (b) alone; `-- --only etl` runs (c)–(e), (k) and (l) alone; `-- --only registry` runs (f) alone;
 * `-- --only pubsub` runs (g) alone (`-- --pull-streams N` sets the consumer's streaming pulls);
 * `-- --only audit` runs (h) alone, `-- --only kafka` runs (i) alone, `-- --only soak` runs (j)
 * (and it runs only so).
 * `npm run bench -- --json` prints one JSON object (fields in bench/README.md) as the last line;
 * it is also written to bench/results/latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadEventTypes } from '../core/event-types.js';
import { type AuditBenchResult, measureAudit } from './audit.js';
import { measureCeiling } from './ceiling.js';
import { measureConsumer } from './etl-consumer.js';
import { measureDedup } from './etl-dedup.js';
import { measureDedupWindow } from './etl-dedup-window.js';
import { type DuckdbDedupResult, measureDuckdbDedup } from './etl-duckdb.js';
import { measureEndToEnd } from './etl-e2e.js';
import { type IsolationResult, measureIsolation } from './etl-isolation.js';
import { measureWorkers, type WorkersResult } from './etl-workers.js';
import { type IngressBenchResult, measureIngress } from './ingress.js';
import { type KafkaBenchResult, measureKafka } from './kafka.js';
import { ROOT } from './processes.js';
import { measurePubsub, type PubsubResult } from './pubsub.js';
import { measureRegistryReads } from './registry-api.js';
import { measureSoak, type SoakResult } from './soak.js';

const json = process.argv.includes('--json');
const TYPES = ['EndSong', 'PageView', 'UserCreate'];

const TARGETS = {
  ingressEventsPerSec: 100_000,
  halfLoadP99Ms: 50,
  peakRssMb: 300,
  ratio: 0.5,
  /** (b) saturation with producer keys over without (mean rates). */
  authRatio: 0.95,
  /** (b) key b's p99 while key a floods, over its p99 alone. */
  isolationP99Ratio: 2,
  consumerEventsPerSec: 150_000,
  dedupEventsPerSec: 500_000,
  dedupPeakRssMb: 1024,
  /** (d) Hourglass's dedup events/s over DuckDB's (same 5 M hour, Parquet into Parquet). */
  dedupVsDuckdb: 0.5,
  hourEndToPublishedSec: 60,
  /** (k) a small hour closed while a big one is deduped: closed → published, s. */
  isolationSmallPublishedSec: 5,
  registryReadsPerSec: 2_000,
  pubsubIngressEventsPerSec: 50_000,
  auditTwoHoursSec: 30,
  kafkaIngressEventsPerSec: 50_000,
};
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const onlyIngress = only === 'ingress';
const onlyEtl = only === 'etl';
const onlyRegistry = only === 'registry';
const onlyPubsub = only === 'pubsub';
const onlyAudit = only === 'audit';
const onlyKafka = only === 'kafka';
const onlySoak = only === 'soak';
if (only !== undefined && !['ingress', 'etl', 'registry', 'pubsub', 'audit', 'kafka', 'soak'].includes(only)) {
  throw new Error(`--only takes ingress, etl, registry, pubsub, audit, kafka or soak, got ${JSON.stringify(only)}`);
}
/** A positive whole number from `--<flag> N`, or the default. */
function positiveFlag(flag: string, fallback: number): number {
  if (!process.argv.includes(flag)) return fallback;
  const n = Number(process.argv[process.argv.indexOf(flag) + 1]);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`${flag} takes a positive whole number`);
  return n;
}
const soakSeconds = positiveFlag('--soak-seconds', 300);
const soakRate = positiveFlag('--soak-rate', 20_000);
const pullStreamsFlag = process.argv.includes('--pull-streams')
  ? Number(process.argv[process.argv.indexOf('--pull-streams') + 1])
  : undefined;
if (pullStreamsFlag !== undefined && !(Number.isInteger(pullStreamsFlag) && pullStreamsFlag > 0)) {
  throw new Error('--pull-streams takes a positive whole number');
}

function log(line: string): void {
  if (!json) process.stdout.write(`${line}\n`);
  else process.stderr.write(`${line}\n`);
}

log(
  `machine: ${cpus().length} cores (shared with any other work running on it: figures vary with its load), load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const types = (await loadEventTypes(join(ROOT, 'schemas'))).filter((t) => TYPES.includes(t.name));
const ceiling = only ? { eventsPerSec: 0, avgEventBytes: 0 } : measureCeiling(types, 5);
if (!only) log('(a) ceiling: JSON.parse + validate + encode, in-process, one core …');
if (!only) log(`    ${ceiling.eventsPerSec} events/s (events of ~${ceiling.avgEventBytes} bytes)`);

let result: Record<string, unknown> = {
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  targets: {},
};
if (!only || onlyIngress) {
  const ingress = await measureIngress(log);
  const { halfLoad: half, peakRssMb } = ingress;
  const ratio = only ? null : Math.round((ingress.maxEventsPerSec / ceiling.eventsPerSec) * 100) / 100;
  result = {
    ...result,
    ...(only ? {} : { ceiling: { eventsPerSec: ceiling.eventsPerSec, avgEventBytes: ceiling.avgEventBytes } }),
    ingress,
    ...(ratio === null ? {} : { ratio }),
    targets: {
      ...(result.targets as object),
      ingressEventsPerSec: {
        target: TARGETS.ingressEventsPerSec,
        pass: ingress.maxEventsPerSec >= TARGETS.ingressEventsPerSec,
      },
      halfLoadP99Ms: { target: TARGETS.halfLoadP99Ms, pass: half.p99Ms <= TARGETS.halfLoadP99Ms },
      peakRssMb: { target: TARGETS.peakRssMb, pass: peakRssMb <= TARGETS.peakRssMb },
      ...(ratio === null ? {} : { ratio: { target: TARGETS.ratio, pass: ratio >= TARGETS.ratio } }),
      authRatio: { target: TARGETS.authRatio, pass: ingress.auth.ratio >= TARGETS.authRatio },
      isolationP99Ratio: {
        target: TARGETS.isolationP99Ratio,
        pass:
          ingress.isolation.p99Ratio <= TARGETS.isolationP99Ratio &&
          Object.keys(ingress.isolation.bHttpErrors).length === 0,
      },
    },
    at: new Date().toISOString(),
  };
}

// (c)–(e): the ETL
let etlFigures: {
  consumer: Awaited<ReturnType<typeof measureConsumer>>;
  d5: Awaited<ReturnType<typeof measureDedup>>;
  dedup: Awaited<ReturnType<typeof measureDedup>>[];
  duckdb: DuckdbDedupResult;
  dedupVsDuckdb: number;
  e2e: Awaited<ReturnType<typeof measureEndToEnd>>;
  isolation: IsolationResult;
  workers: WorkersResult;
} | null = null;
if (!onlyIngress && !onlyRegistry && !onlyPubsub && !onlyAudit && !onlyKafka && !onlySoak) {
  log('(c) ETL consumer, one type, 1,000,000 events from the embedded bus into committed raw files …');
  const consumerRuns = [];
  for (let i = 0; i < 2; i++) {
    const c = await measureConsumer(1_000_000, 'snappy');
    log(`    run ${i + 1}: ${c.eventsPerSec} events/s (${c.files} files, snappy)`);
    consumerRuns.push(c);
  }
  const consumer = consumerRuns.reduce((a, b) => (b.eventsPerSec > a.eventsPerSec ? b : a));
  const dedup = [];
  let duckdb = undefined as DuckdbDedupResult | undefined;
  for (const events of [5_000_000, 20_000_000]) {
    log(`(d) dedup of an hour of ${events.toLocaleString('en')} events with 1% duplicates …`);
    const d = await measureDedup(events, undefined, async (dir, d) => {
      log(`    ${d.eventsPerSec} events/s, ${d.seconds} s, peak RSS ${d.peakRssMb} MB, ${d.splits} split(s)`);
      if (duckdb !== undefined) return;
      log(`(d) DuckDB, ${cpus().length} threads, the same hour from one Parquet file into one Parquet file …`);
      duckdb = await measureDuckdbDedup(dir, d);
      const x = duckdb;
      log(
        `    (event_producer, event_id): ${x.eventsPerSec} events/s, ${x.seconds} s, peak RSS ${x.peakRssMb} MB, ${x.rowsOut} rows; event_id alone: ${x.eventIdOnly.eventsPerSec} events/s, ${x.eventIdOnly.seconds} s, peak RSS ${x.eventIdOnly.peakRssMb} MB, ${x.eventIdOnly.rowsOut} rows`,
      );
    });
    dedup.push(d);
  }
  if (duckdb === undefined) throw new Error('the DuckDB dedup did not run');
  log('(e) end to end: hour end → published partition, ~1,000,000 events in the hour …');
  const e2e = await measureEndToEnd();
  log(
    `    ${e2e.hourEndToPublishedSec} s at time scale ${e2e.timeScale} (${e2e.events} events); derived for scale 1: ${e2e.atScale1Sec} s`,
  );
  log('(d) dedup window: an hour of 1,000,000 events against 168 hourly id indexes of 100,000 ids (7 d) …');
  const dedupWindow = await measureDedupWindow(1_000_000, 168, 100_000);
  log(
    `    window check ${dedupWindow.idsPerSec} ids/s (${dedupWindow.windowCheckSeconds} s), ${Math.round(dedupWindow.indexBytesRead / 1e6)} MB of index read, peak RSS ${dedupWindow.peakRssMb} MB (1 h window: ${dedupWindow.oneHour.peakRssMb} MB), ${dedupWindow.duplicatesOfWindow} of ${dedupWindow.injected} retries dropped`,
  );
  log(
    `(k) isolation: one hourglass etl (production defaults, ${cpus().length} cores), a 10,000-event PageView hour closing while a 20,000,000-event EndSong hour is deduped …`,
  );
  const isolation = await measureIsolation();
  log(
    `    B closed → published: ${isolation.smallPublishedAfterCloseSec} s while A ran (claimed after ${isolation.smallClaimedAfterCloseSec} s, step ${isolation.smallDedupSec} s), ${isolation.smallAloneSec} s alone; A closed → published ${isolation.bigDedupSec} s; ${isolation.cpuCores} cores, batchConcurrency ${isolation.batchConcurrency} + 1 small slot; loop delay p99/max ${isolation.loopDelayP99Ms}/${isolation.loopDelayMaxMs} ms; over A's run the ETL used ${isolation.etlCoresUsed ?? '?'} cores, the rest of the machine ${isolation.otherCores ?? '?'}`,
  );
  log(
    `(l) dedup workers: 1, 2, 3 hourglass etl --roles dedup on one PostgreSQL state store, 60 partitions of 30 types × 100,000 events, ${cpus().length} cores …`,
  );
  const workers = await measureWorkers();
  for (const w of workers.runs) {
    log(
      `    ${w.workers} worker(s): ${w.seconds} s (× ${w.speedUp}), ${w.partitions} partitions, ${w.attempts} attempts, published per worker ${w.perWorker.join('/')}, ${w.coresUsed ?? '?'} of ${w.cpuCores} cores used (PostgreSQL ${w.postgresCores ?? '?'}, the rest of the machine ${w.otherCores ?? '?'})${w.ok ? '' : `; CHECKS FAILED: ${w.problems.join('; ')}`}`,
    );
  }
  const d5 = dedup[0] as (typeof dedup)[number];
  const dedupPeak = Math.max(...dedup.map((d) => d.peakRssMb));
  const dedupVsDuckdb = Math.round((d5.eventsPerSec / duckdb.eventsPerSec) * 100) / 100;
  result = {
    ...result,
    etl: {
      consumer,
      consumerRuns: consumerRuns.map((c) => c.eventsPerSec),
      dedup,
      duckdbDedup: duckdb,
      dedupVsDuckdb,
      dedupWindow,
      endToEnd: e2e,
      isolation,
      workers,
    },
    targets: {
      ...(result.targets as object),
      consumerEventsPerSec: {
        target: TARGETS.consumerEventsPerSec,
        pass: consumer.eventsPerSec >= TARGETS.consumerEventsPerSec,
      },
      dedupEventsPerSec: { target: TARGETS.dedupEventsPerSec, pass: d5.eventsPerSec >= TARGETS.dedupEventsPerSec },
      dedupPeakRssMb: { target: TARGETS.dedupPeakRssMb, pass: dedupPeak <= TARGETS.dedupPeakRssMb },
      dedupVsDuckdb: {
        target: TARGETS.dedupVsDuckdb,
        pass: duckdb.rowsMatch && dedupVsDuckdb >= TARGETS.dedupVsDuckdb,
      },
      hourEndToPublishedSec: {
        target: TARGETS.hourEndToPublishedSec,
        pass: e2e.atScale1Sec <= TARGETS.hourEndToPublishedSec,
      },
      isolationSmallPublishedSec: {
        target: TARGETS.isolationSmallPublishedSec,
        pass: isolation.bigStillRunning && isolation.smallPublishedAfterCloseSec <= TARGETS.isolationSmallPublishedSec,
      },
      workersAttemptsEqualPartitions: { target: 1, pass: workers.runs.every((w) => w.ok) },
    },
    at: new Date().toISOString(),
  };

  etlFigures = { consumer, d5, dedup, duckdb, dedupVsDuckdb, e2e, isolation, workers };
}

// (f): registry API reads
if (!onlyIngress && !onlyEtl && !onlyPubsub && !onlyAudit && !onlyKafka && !onlySoak) {
  log('(f) registry API reads, GET /v1/event-types[/EndSong], 16 in flight, 5 s …');
  const reads = await measureRegistryReads(5, 16);
  log(`    ${reads.readsPerSec} reads/s, p50 ${reads.p50Ms} ms, p99 ${reads.p99Ms} ms, ${reads.errors} errors`);
  result = {
    ...result,
    registry: reads,
    targets: {
      ...(result.targets as object),
      registryReadsPerSec: {
        target: TARGETS.registryReadsPerSec,
        pass: reads.readsPerSec >= TARGETS.registryReadsPerSec && reads.errors === 0,
      },
    },
    at: new Date().toISOString(),
  };
}

// (g): the Pub/Sub bus, against the fake
let pubsub: PubsubResult | null = null;
if (!only || onlyPubsub) {
  pubsub = await measurePubsub(log, pullStreamsFlag !== undefined ? { pullStreams: pullStreamsFlag } : {});
  result = {
    ...result,
    pubsub,
    targets: {
      ...(result.targets as object),
      pubsubIngressEventsPerSec: {
        target: TARGETS.pubsubIngressEventsPerSec,
        pass: pubsub.ingress.maxEventsPerSec >= TARGETS.pubsubIngressEventsPerSec,
      },
      pubsubConsumerKeepsUp: { target: 1, pass: pubsub.keepUp.keepsUp },
    },
    at: new Date().toISOString(),
  };
}

// (h): the audit of two pipelines
let audit: AuditBenchResult | null = null;
if (!only || onlyAudit) {
  log('(h) audit of two pipelines, two hours of 1,000,000 events each (one event missing, one extra) …');
  audit = await measureAudit(1_000_000);
  log(
    `    ${audit.seconds} s, ${audit.eventsPerSec} rows/s over both pipelines, peak RSS ${audit.peakRssMb} MB; ${
      audit.correct
        ? 'found exactly the injected differences'
        : `WRONG: missing on a ${JSON.stringify(audit.missingOnA)}, on b ${JSON.stringify(audit.missingOnB)}`
    } (generation ${audit.generateSeconds} s)`,
  );
  result = {
    ...result,
    audit,
    targets: {
      ...(result.targets as object),
      auditTwoHoursSec: {
        target: TARGETS.auditTwoHoursSec,
        pass: audit.correct && audit.seconds <= TARGETS.auditTwoHoursSec,
      },
    },
    at: new Date().toISOString(),
  };
}

// (i): the Kafka bus, against the mock cluster
let kafka: KafkaBenchResult | null = null;
if (!only || onlyKafka) {
  kafka = await measureKafka(log);
  result = {
    ...result,
    kafka,
    targets: {
      ...(result.targets as object),
      kafkaIngressEventsPerSec: {
        target: TARGETS.kafkaIngressEventsPerSec,
        pass: kafka.maxEventsPerSec >= TARGETS.kafkaIngressEventsPerSec,
      },
    },
    at: new Date().toISOString(),
  };
}

// (j): the soak (only with `--only soak`)
let soak: SoakResult | null = null;
if (onlySoak) {
  soak = await measureSoak(log, { seconds: soakSeconds, ratePerSec: soakRate });
  result = {
    ...result,
    soak,
    targets: { ...(result.targets as object), soakNoLoss: { target: 1, pass: soak.pass } },
    at: new Date().toISOString(),
  };
}

const r = result as {
  machine: { cpus: number; cpuModel: string; memGiB: number; node: string };
  ingress: IngressBenchResult;
  ratio: number;
  targets: Record<string, { target: number; pass: boolean }>;
};
log('');
log(`machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memGiB} GiB, Node ${r.machine.node}`);
log('| measure | value | target | |');
log('| --- | --- | --- | --- |');
const pass = (k: string): string => (r.targets[k]?.pass ? 'PASS' : 'FAIL');
const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
if (!only) log(`| (a) ceiling, events/s | ${ceiling.eventsPerSec} | | |`);
if (!only || onlyIngress) {
  const i = r.ingress;
  const h = i.halfLoad;
  const iso = i.isolation;
  log(`| (b) load average (1 min) when (b) began | ${i.loadAverage} | | |`);
  log(
    `| (b) ingress max (keys on), events/s | ${i.maxEventsPerSec} | ≥ ${TARGETS.ingressEventsPerSec} | ${pass('ingressEventsPerSec')} |`,
  );
  log(
    `| (b) keys on / off, mean of ${i.auth.on.runs.length} runs each, events/s | ${i.auth.on.meanEventsPerSec} / ${i.auth.off.meanEventsPerSec} = ${i.auth.ratio} | ≥ ${TARGETS.authRatio} | ${pass('authRatio')} |`,
  );
  log(
    `| (b) CPU of hourglass dev per event, keys on / off, µs | ${i.auth.on.devMicrosPerEvent} / ${i.auth.off.devMicrosPerEvent} (off/on ${i.auth.cpuRatio}) | | |`,
  );
  log(
    `| (b) p50 / p99 at ${h.rate} events/s, ms | ${h.p50Ms} / ${h.p99Ms} | p99 ≤ ${TARGETS.halfLoadP99Ms} | ${pass('halfLoadP99Ms')} |`,
  );
  log(
    `| (b) event-loop delay p99 / max at half load, ms: hourglass dev; hourglass send | ${h.devLoopDelayP99Ms} / ${h.devLoopDelayMaxMs}; ${h.sendLoopDelayP99Ms} / ${h.sendLoopDelayMaxMs} | | |`,
  );
  log(
    `| (b) key b's p99 at ${iso.rateB} events/s alone / while key a sends ${iso.floodA} (rate ${iso.rateA}), ms | ${iso.p99Alone} / ${iso.p99WithFlood} (× ${iso.p99Ratio}; mean of 3 runs each; a: ${iso.a.rateLimited} × 429) | ≤ × ${TARGETS.isolationP99Ratio} | ${pass('isolationP99Ratio')} |`,
  );
  log(`| (b) peak RSS, MB | ${i.peakRssMb} | ≤ ${TARGETS.peakRssMb} | ${pass('peakRssMb')} |`);
}
if (!only) log(`| ratio (b)/(a) | ${r.ratio} | ≥ ${TARGETS.ratio} | ${pass('ratio')} |`);
if (etlFigures !== null) {
  const { consumer, d5, dedup, duckdb, dedupVsDuckdb, e2e, isolation, workers } = etlFigures;
  log(
    `| (c) ETL consumer, events/s | ${consumer.eventsPerSec} | ≥ ${TARGETS.consumerEventsPerSec} | ${pass('consumerEventsPerSec')} |`,
  );
  log(
    `| (d) dedup, 5 M events, events/s | ${d5.eventsPerSec} | ≥ ${TARGETS.dedupEventsPerSec} | ${pass('dedupEventsPerSec')} |`,
  );
  log(
    `| (d) dedup peak RSS (5 M, 20 M), MB | ${dedup.map((d) => d.peakRssMb).join(', ')} | ≤ ${TARGETS.dedupPeakRssMb} | ${pass('dedupPeakRssMb')} |`,
  );
  log(
    `| (d) DuckDB (${duckdb.threads} threads), 5 M events, Parquet → Parquet, by (event_producer, event_id) / event_id alone: events/s; peak RSS, MB; output MB (Hourglass's) | ${duckdb.eventsPerSec} / ${duckdb.eventIdOnly.eventsPerSec}; ${duckdb.peakRssMb} / ${duckdb.eventIdOnly.peakRssMb}; ${mb(duckdb.outputBytes)} / ${mb(duckdb.eventIdOnly.outputBytes)} (${mb(duckdb.hourglassOutputBytes)}); rows ${duckdb.rowsMatch ? 'match' : 'DIFFER'} | | |`,
  );
  log(
    `| (d) dedup ÷ DuckDB (event_producer, event_id), events/s | ${dedupVsDuckdb} | ≥ ${TARGETS.dedupVsDuckdb} | ${pass('dedupVsDuckdb')} |`,
  );
  log(
    `| (e) hour end → published, s (scale 1, derived) | ${e2e.atScale1Sec} | ≤ ${TARGETS.hourEndToPublishedSec} | ${pass('hourEndToPublishedSec')} |`,
  );
  log(
    `| (k) 10,000-event hour closed → published while a 20 M hour of another type is deduped (${isolation.cpuCores} cores), s (alone) | ${isolation.smallPublishedAfterCloseSec} (${isolation.smallAloneSec}) | ≤ ${TARGETS.isolationSmallPublishedSec} | ${pass('isolationSmallPublishedSec')} |`,
  );
  log(
    `| (l) 1 / 2 / 3 dedup workers, 60 partitions × 100,000 events (${workers.cpuCores} cores), s; attempts | ${workers.runs.map((w) => w.seconds).join(' / ')}; ${workers.runs.map((w) => w.attempts).join(' / ')} | attempts = ${workers.partitions} | ${pass('workersAttemptsEqualPartitions')} |`,
  );
}
if (!onlyIngress && !onlyEtl && !onlyPubsub && !onlyAudit && !onlyKafka && !onlySoak) {
  const reg = (result as { registry: { readsPerSec: number } }).registry;
  log(
    `| (f) registry API reads/s | ${reg.readsPerSec} | ≥ ${TARGETS.registryReadsPerSec} | ${pass('registryReadsPerSec')} |`,
  );
}
if (pubsub !== null) {
  const p = pubsub;
  log(
    `| (g) ingress on the Pub/Sub fake, events/s | ${p.ingress.maxEventsPerSec} | ≥ ${TARGETS.pubsubIngressEventsPerSec} | ${pass('pubsubIngressEventsPerSec')} |`,
  );
  log(`| (g) ingress on the fake, p99 at max rate, ms | ${p.ingress.p99Ms} | | |`);
  log(
    `| (g) ETL consumer, backlog drain from the fake (pullStreams ${p.consumer.pullStreams}), events/s | ${p.consumer.eventsPerSec} | | |`,
  );
  log(
    `| (g) keep-up in \`hourglass dev\` (pullStreams ${p.keepUp.pullStreams}), accepted/s → committed/s | ${p.keepUp.acceptedPerSec} → ${p.keepUp.committedPerSec} | all committed | ${pass('pubsubConsumerKeepsUp')} |`,
  );
  log(
    `| (g) keep-up, ETL in the bench process (pullStreams ${p.keepUpTuned.pullStreams}), accepted/s → committed/s | ${p.keepUpTuned.acceptedPerSec} → ${p.keepUpTuned.committedPerSec} | | ${p.keepUpTuned.keepsUp ? 'all committed' : 'not all committed'} |`,
  );
  log('(g): against the in-memory fake pstest, not Pub/Sub itself, on cores shared with other work.');
}
if (audit !== null) {
  log(
    `| (h) audit, two hours of 1 M events on both pipelines, s | ${audit.seconds} | ≤ ${TARGETS.auditTwoHoursSec} | ${pass('auditTwoHoursSec')} |`,
  );
  log(`| (h) audit peak RSS, MB | ${audit.peakRssMb} | | |`);
}
if (kafka !== null) {
  log(
    `| (i) ingress on the Kafka mock cluster, events/s | ${kafka.maxEventsPerSec} | ≥ ${TARGETS.kafkaIngressEventsPerSec} | ${pass('kafkaIngressEventsPerSec')} |`,
  );
  log(`| (i) p99 at max rate, ms; peak RSS, MB | ${kafka.p99Ms}; ${kafka.peakRssMb} | | |`);
  log(`(i): against ${kafka.cluster}, not a real Kafka cluster.`);
}
if (soak !== null) {
  const s = soak;
  const sum = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);
  log(
    `| (j) soak, ${s.sendSeconds} s at ${s.achievedEventsPerSec} events/s: accepted ids missing / duplicated in final partitions | ${sum(s.missing)} / ${sum(s.duplicates)} | 0 / 0 | ${pass('soakNoLoss')} |`,
  );
  log(
    `| (j) segment files seen per topic | ${s.types.map((t) => `${t} ${s.segmentsSeen[t]}`).join(', ')} | > 1 each | |`,
  );
  log(`| (j) ingress p99, ms | ${s.ingressP99Ms} | | |`);
  log(
    `| (j) RSS of hourglass dev, MB (first, median, last, max; slope MB/min) | ${s.rss.firstMb}, ${s.rss.medianMb}, ${s.rss.lastMb}, ${s.rss.maxMb}; ${s.rss.slopeMbPerMin} (${s.rss.trend}) | | |`,
  );
}
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(result, null, 2)}\n`);
if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
if (soak !== null && !soak.pass) process.exitCode = 1;
