/**
 * (b) The ingress end to end: `hourglass dev --no-etl` (embedded bus, every accepted event written
 * with O_DSYNC before the answer) in its own process, loaded over loopback HTTP by `hourglass
 * send` in other processes on the same cores, batches of 100 events of three types.
 *
 * 1. Saturation with producer keys on (the dev key, the default) and off (`HOURGLASS_INGRESS_AUTH=off`,
 *    a second `hourglass dev` on a data dir of its own): after a 5-second warm-up of each (a shorter
 *    one left the first run measurably slower: code still being optimized), four 6-second runs of
 *    each at 64 in flight, in the order on, off, off, on, off, on, on, off (a steady drift of the
 *    machine's load, or of either process, falls on both alike). The best run with keys is the
 *    ingress's figure; the cost
 *    of the keys is the ratio of the mean rates (one run is too noisy on shared cores), and, less
 *    sensitive to the machine's other work, the CPU time of `hourglass dev` per accepted event.
 * 2. Half load: half of min(best with keys, 100,000) events/s, 8 in flight, with the dev key. Besides
 *    the request latency, the event-loop delay (p99, max) and GC time of `hourglass dev` over the run
 *    (its `/metrics`) and of the load generator itself (`hourglass send` measures its own): a busy
 *    load generator adds its delay to every latency it measures.
 * 3. Quota isolation between two keys (bench/isolation.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type IsolationResult, measureIsolation } from './isolation.js';
import { DevLoopProbe, type DevServer, runSend, type SendResult, startDev } from './processes.js';

const TYPES = ['EndSong', 'PageView', 'UserCreate'];
const SEND_SECONDS = 8;
/** Length of each saturation run and of each warm-up, s. */
const MAX_SECONDS = 6;
const WARM_UP_SECONDS = 5;
/** Requests in flight for the saturation runs (durable writes are latency-bound: more in flight, bigger group commits). */
export const MAX_CONCURRENCY = 64;
/** Requests in flight at half load (enough to hold the rate). */
export const HALF_CONCURRENCY = 8;
/** Saturation runs per setting (keys on, keys off), in this order; all are listed. */
const RUN_ORDER = ['on', 'off', 'off', 'on', 'off', 'on', 'on', 'off'] as const;
/** The rate the half load is half of, at most. */
const FULL_RATE = 100_000;

export interface HalfLoadResult {
  readonly rate: number;
  readonly eventsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** `hourglass dev`: event-loop delay p99 and max over the run (ms), GC pauses and their time. */
  readonly devLoopDelayP99Ms: number;
  readonly devLoopDelayMaxMs: number;
  readonly devGcCount: number;
  readonly devGcMs: number;
  /** The load generator's own event-loop delay while sending (ms). */
  readonly sendLoopDelayP99Ms: number;
  readonly sendLoopDelayMaxMs: number;
}

export interface AuthRuns {
  readonly maxEventsPerSec: number;
  readonly meanEventsPerSec: number;
  readonly runs: number[];
  /** CPU µs of `hourglass dev` per accepted event over the runs; null without /proc. */
  readonly devMicrosPerEvent: number | null;
}

export interface IngressBenchResult {
  readonly maxEventsPerSec: number;
  readonly maxRuns: number[];
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly halfLoad: HalfLoadResult;
  readonly peakRssMb: number;
  readonly httpErrors: Record<string, number>;
  readonly concurrency: { max: number; halfLoad: number };
  readonly batch: number;
  /**
   * Saturation with producer keys on and off; ratio: mean rate on / mean rate off; cpuRatio: CPU µs
   * of `hourglass dev` per accepted event, off / on (null without /proc).
   */
  readonly auth: {
    readonly on: AuthRuns;
    readonly off: AuthRuns;
    readonly ratio: number;
    readonly cpuRatio: number | null;
  };
  readonly isolation: IsolationResult;
  /** 1-minute load average of the machine when (b) began. */
  readonly loadAverage: number;
}

type Log = (line: string) => void;

const round2 = (x: number): number => Math.round(x * 100) / 100;

export async function measureIngress(log: Log): Promise<IngressBenchResult> {
  const loadAverage = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const dirOn = await mkdtemp(join(tmpdir(), 'hourglass-bench-'));
  const dirOff = await mkdtemp(join(tmpdir(), 'hourglass-bench-nokeys-'));
  let devOff: DevServer | null = null;
  try {
    const dev = await startDev(dirOn);
    try {
      devOff = await startDev(dirOff, ['--no-etl'], { HOURGLASS_INGRESS_AUTH: 'off' });
      const args = (d: DevServer): string[] => [
        '--url',
        d.url,
        ...d.keyArgs,
        '--type',
        TYPES.join(','),
        '--batch',
        '100',
      ];
      const common = args(dev);
      const commonOff = args(devOff);
      log(
        `(b) ingress end to end, as fast as possible (${MAX_CONCURRENCY} requests in flight), producer keys on and off (runs ${RUN_ORDER.join(', ')}) …`,
      );
      for (const c of [common, commonOff])
        await runSend([
          ...c,
          '--concurrency',
          String(MAX_CONCURRENCY),
          '--rate',
          'max',
          '--duration',
          String(WARM_UP_SECONDS),
        ]);
      const on: SendResult[] = [];
      const off: SendResult[] = [];
      const cpu = { on: 0, off: 0 };
      let cpuKnown = true;
      const flags = ['--concurrency', String(MAX_CONCURRENCY), '--rate', 'max', '--duration', String(MAX_SECONDS)];
      for (const setting of RUN_ORDER) {
        const keys = setting === 'on';
        const target = keys ? dev : devOff;
        const before = target.cpuSeconds();
        const run = await runSend([...(keys ? common : commonOff), ...flags]);
        const after = target.cpuSeconds();
        if (before === null || after === null) cpuKnown = false;
        else cpu[setting] += after - before;
        log(`    keys ${keys ? 'on ' : 'off'}: ${run.eventsPerSec} events/s, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms`);
        (keys ? on : off).push(run);
      }
      await devOff.stop();
      devOff = null;
      const best = (rs: SendResult[]): SendResult => rs.reduce((a, b) => (b.eventsPerSec > a.eventsPerSec ? b : a));
      const mean = (rs: SendResult[]): number => Math.round(rs.reduce((a, r) => a + r.eventsPerSec, 0) / rs.length);
      const max = best(on);
      const maxOff = best(off);
      const authRatio = round2(mean(on) / mean(off));
      const micros = (rs: SendResult[], seconds: number): number | null =>
        cpuKnown ? Math.round((seconds * 1e7) / rs.reduce((a, r) => a + r.accepted, 0)) / 10 : null;
      const microsOn = micros(on, cpu.on);
      const microsOff = micros(off, cpu.off);
      const cpuRatio = microsOn === null || microsOff === null ? null : round2(microsOff / microsOn);
      log(
        `    keys on / off: best runs ${max.eventsPerSec} / ${maxOff.eventsPerSec}, means ${mean(on)} / ${mean(off)} = ${authRatio}; CPU of hourglass dev per event ${microsOn} / ${microsOff} µs`,
      );

      const halfRate = Math.round(Math.min(max.eventsPerSec, FULL_RATE) / 2);
      log(`    at half load (${halfRate} events/s, ${HALF_CONCURRENCY} in flight) …`);
      const probe = await DevLoopProbe.start(dev.url);
      const half = await runSend([
        ...common,
        '--concurrency',
        String(HALF_CONCURRENCY),
        '--rate',
        String(halfRate),
        '--duration',
        String(SEND_SECONDS),
      ]);
      const devLoop = await probe.read();
      log(
        `    ${half.eventsPerSec} events/s, p50 ${half.p50Ms} ms, p99 ${half.p99Ms} ms, max ${half.maxMs} ms; event-loop delay p99/max: hourglass dev ${devLoop.loopDelayP99Ms}/${devLoop.loopDelayMaxMs} ms (GC ${devLoop.gcMs} ms in ${devLoop.gcCount} pauses), hourglass send ${half.loopDelayP99Ms}/${half.loopDelayMaxMs} ms`,
      );

      const isolation = await measureIsolation(dev, dirOn, TYPES, log);

      const peakRssMb = dev.peakRssMb();
      const httpErrors: Record<string, number> = {};
      for (const r of [...on, ...off, half]) {
        for (const [code, n] of Object.entries(r.httpErrors)) httpErrors[code] = (httpErrors[code] ?? 0) + n;
      }
      return {
        maxEventsPerSec: max.eventsPerSec,
        maxRuns: on.map((r) => r.eventsPerSec),
        p50Ms: max.p50Ms,
        p99Ms: max.p99Ms,
        halfLoad: {
          rate: halfRate,
          eventsPerSec: half.eventsPerSec,
          p50Ms: half.p50Ms,
          p99Ms: half.p99Ms,
          maxMs: half.maxMs,
          devLoopDelayP99Ms: devLoop.loopDelayP99Ms,
          devLoopDelayMaxMs: devLoop.loopDelayMaxMs,
          devGcCount: devLoop.gcCount,
          devGcMs: devLoop.gcMs,
          sendLoopDelayP99Ms: half.loopDelayP99Ms,
          sendLoopDelayMaxMs: half.loopDelayMaxMs,
        },
        peakRssMb,
        httpErrors,
        concurrency: { max: MAX_CONCURRENCY, halfLoad: HALF_CONCURRENCY },
        batch: 100,
        auth: {
          on: {
            maxEventsPerSec: max.eventsPerSec,
            meanEventsPerSec: mean(on),
            runs: on.map((r) => r.eventsPerSec),
            devMicrosPerEvent: microsOn,
          },
          off: {
            maxEventsPerSec: maxOff.eventsPerSec,
            meanEventsPerSec: mean(off),
            runs: off.map((r) => r.eventsPerSec),
            devMicrosPerEvent: microsOff,
          },
          ratio: authRatio,
          cpuRatio,
        },
        isolation,
        loadAverage,
      };
    } finally {
      await devOff?.stop();
      await dev.stop();
    }
  } finally {
    await rm(dirOn, { recursive: true, force: true });
    await rm(dirOff, { recursive: true, force: true });
  }
}
