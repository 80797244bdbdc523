/**
 * (b) 3. Quota isolation: two keys made with `hourglass keys create` on the dev's data dir while
 * it runs: `a` with a rate of A events/s, `b` with room to spare. `b` (`hourglass send`) sends at a
 * moderate rate alone and while `a` sends at 10 × A (a replaying flooder, flood.ts: its requests
 * over the rate get 429 rate_limited, and it does not retry). Six runs of `b` in the order alone,
 * flood, flood, alone, alone, flood, so that a drift of the shared machine falls on both alike; the
 * figure is the mean of `b`'s p99 with the flood over the mean alone, which must stay ≤ 2.
 */
import { Flood, type FloodResult } from './flood.js';
import { DevLoopProbe, type DevLoopStats, type DevServer, runCli, runSend, type SendResult } from './processes.js';

export const ISOLATION = {
  rateA: 5_000,
  flood: 10,
  rateB: 10_000,
  /** b's batches: 200 requests a second at its rate, so each run's p99 rests on ~1,600 requests. */
  batchB: 50,
  /** Each of b's runs. */
  seconds: 8,
  concurrencyA: 8,
  concurrencyB: 4,
  order: ['alone', 'flood', 'flood', 'alone', 'alone', 'flood'] as const,
} as const;

export interface IsolationRun {
  readonly kind: 'alone' | 'flood';
  readonly eventsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly sendLoopDelayP99Ms: number;
  /** `hourglass dev` over b's run: event-loop delay p99 and max (ms), GC pauses and their time (ms). */
  readonly devLoopDelayP99Ms: number;
  readonly devLoopDelayMaxMs: number;
  readonly devGcCount: number;
  readonly devGcMs: number;
  /** CPU seconds of `hourglass dev` over b's run (null without /proc). */
  readonly devCpuSeconds: number | null;
}

export interface IsolationResult {
  readonly rateA: number;
  readonly floodA: number;
  readonly rateB: number;
  readonly keyRateB: number;
  readonly batchB: number;
  readonly seconds: number;
  readonly runs: IsolationRun[];
  /** Mean of b's p99 over its runs alone, and over its runs during a's flood (ms). */
  readonly p99Alone: number;
  readonly p99WithFlood: number;
  /** p99WithFlood / p99Alone. */
  readonly p99Ratio: number;
  /** The flood over all its runs: requests, events accepted, requests answered 429, other answers by status. */
  readonly a: { requests: number; accepted: number; rateLimited: number; otherAnswers: Record<string, number> };
  /** Non-200 answers to key b by status (expected none). */
  readonly bHttpErrors: Record<string, number>;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Creates a producer key for every type on the dev's data dir (`hourglass keys create`); the key. */
export async function createKey(dataDir: string, producer: string, rate: number): Promise<string> {
  const out = await runCli([
    'keys',
    'create',
    '--producer',
    producer,
    '--all-types',
    '--rate',
    String(rate),
    '--data-dir',
    dataDir,
  ]);
  const key = out.trim().split('\n').pop()?.trim() ?? '';
  if (!key.startsWith('hgk_')) throw new Error(`hourglass keys create printed no key:\n${out}`);
  return key;
}

function run(kind: IsolationRun['kind'], r: SendResult, dev: DevLoopStats, cpu: number | null): IsolationRun {
  return {
    kind,
    eventsPerSec: r.eventsPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    maxMs: r.maxMs,
    sendLoopDelayP99Ms: r.loopDelayP99Ms,
    devLoopDelayP99Ms: dev.loopDelayP99Ms,
    devLoopDelayMaxMs: dev.loopDelayMaxMs,
    devGcCount: dev.gcCount,
    devGcMs: dev.gcMs,
    devCpuSeconds: cpu,
  };
}

export async function measureIsolation(
  dev: DevServer,
  dataDir: string,
  types: readonly string[],
  log: (line: string) => void,
): Promise<IsolationResult> {
  const iso = ISOLATION;
  const floodRate = iso.rateA * iso.flood;
  const keyRateB = iso.rateB * 4;
  log(
    `(b) quota isolation: key b at ${iso.rateB} events/s alone and while key a (rate ${iso.rateA}) sends ${floodRate} events/s (runs ${iso.order.join(', ')}) …`,
  );
  const keyA = await createKey(dataDir, 'bench-a', iso.rateA);
  const keyB = await createKey(dataDir, 'bench-b', keyRateB);
  const bArgs = (seconds: number): string[] => [
    '--url',
    dev.url,
    '--key',
    keyB,
    '--type',
    types.join(','),
    '--batch',
    String(iso.batchB),
    '--concurrency',
    String(iso.concurrencyB),
    '--rate',
    String(iso.rateB),
    '--duration',
    String(seconds),
  ];
  await runSend(bArgs(2)); // b's first connections and code paths warm
  const runs: IsolationRun[] = [];
  const floods: FloodResult[] = [];
  const bHttpErrors: Record<string, number> = {};
  for (const kind of iso.order) {
    const flood =
      kind === 'flood'
        ? await Flood.start({
            url: dev.url,
            key: keyA,
            types,
            eventsPerSec: floodRate,
            batch: 100,
            concurrency: iso.concurrencyA,
          })
        : null;
    if (flood !== null) await new Promise((r) => setTimeout(r, 1000)); // a flooding, its bucket empty
    const probe = await DevLoopProbe.start(dev.url);
    const cpu0 = dev.cpuSeconds();
    const b = await runSend(bArgs(iso.seconds));
    const cpu1 = dev.cpuSeconds();
    const loop = await probe.read();
    if (flood !== null) floods.push(await flood.stop());
    for (const [code, n] of Object.entries(b.httpErrors)) bHttpErrors[code] = (bHttpErrors[code] ?? 0) + n;
    const r = run(kind, b, loop, cpu0 === null || cpu1 === null ? null : round2(cpu1 - cpu0));
    runs.push(r);
    log(
      `    b ${kind === 'alone' ? 'alone    ' : "a's flood"}: ${r.eventsPerSec} events/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms; hourglass dev: loop delay p99 ${r.devLoopDelayP99Ms} ms, GC ${r.devGcMs} ms, CPU ${r.devCpuSeconds} s`,
    );
  }
  const meanP99 = (kind: IsolationRun['kind']): number => {
    const of = runs.filter((r) => r.kind === kind);
    return round2(of.reduce((s, r) => s + r.p99Ms, 0) / of.length);
  };
  const p99Alone = meanP99('alone');
  const p99WithFlood = meanP99('flood');
  const byStatus: Record<string, number> = {};
  for (const f of floods) for (const [s, n] of Object.entries(f.byStatus)) byStatus[s] = (byStatus[s] ?? 0) + n;
  const { '200': _ok, '429': rateLimited = 0, ...otherAnswers } = byStatus;
  const a = {
    requests: floods.reduce((s, f) => s + f.requests, 0),
    accepted: floods.reduce((s, f) => s + f.accepted, 0),
    rateLimited,
    otherAnswers,
  };
  const p99Ratio = round2(p99WithFlood / p99Alone);
  log(
    `    b's p99, mean alone / with a's flood: ${p99Alone} / ${p99WithFlood} ms (× ${p99Ratio}); a: ${a.requests} requests, ${a.rateLimited} answered 429, ${a.accepted} events accepted`,
  );
  return {
    rateA: iso.rateA,
    floodA: floodRate,
    rateB: iso.rateB,
    keyRateB,
    batchB: iso.batchB,
    seconds: iso.seconds,
    runs,
    p99Alone,
    p99WithFlood,
    p99Ratio,
    a,
    bHttpErrors,
  };
}
