/**
 * `hourglass send`: realistic event traffic against an ingress, at a given rate for a given
 * time, with a progress line and a summary (`--json`: one JSON object as the last stdout line).
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { DEFAULTS } from '../core/defaults.js';
import type { EventType } from '../core/event-types.js';
import { readDevKey, readDevToken } from './dev-key.js';
import { resolveEventTypes } from './registry-types.js';
import { type BatchEvent, BatchFactory } from './traffic/batches.js';
import { rng } from './traffic/generators.js';
import { type CliIo, UsageError } from './usage.js';

export const SEND_USAGE = `Usage: hourglass send [--url U] [--type T[,T2…]] [--rate R] [--duration S] [--invalid F] [--duplicates F]
                      [--batch N] [--concurrency C] [--retries N] [--schemas DIR] [--seed N] [--json]
                      [--key K] [--data-dir D] [--registry] [--registry-url U] [--token T]

  --url U          ingress base URL (default http://127.0.0.1:8080)
  --type T,…       event types to send, spread evenly (default EndSong)
  --rate R         events per second in all (0 or "max": as fast as possible; default 1000)
  --duration S     seconds to send (default 10)
  --invalid F      share 0..1 of events made invalid in varied ways (default 0)
  --duplicates F   share 0..1 of events resent with an earlier event's id and payload (default 0)
  --batch N        events per request (default 100)
  --concurrency C  requests in flight (default 8)
  --retries N      retries of a request answered 429/503 or failing on the network (default 0)
  --seed N         seed of the generated payloads (default: the time)
  --json           print the summary as one JSON object on the last line
  --key K          producer key (Authorization: Bearer K); default $HOURGLASS_KEY, else the
                   key hourglass dev saved in <data-dir>/dev-key, else none
  --data-dir D     where to look for dev-key and dev-token (default ./.hourglass)
  --schemas DIR    event type declarations (default ./schemas); a type that is not there is read
                   from the registry API (GET /v1/event-types/T) and its latest schema used
  --registry       read every type from the registry API, not from --schemas
  --registry-url U where the registry API is (default --url; set it when ingress.adminPort
                   serves the registry on another port)
  --token T        registry token for those reads; default $HOURGLASS_TOKEN, else the admin
                   token hourglass dev saved in <data-dir>/dev-token
  -h, --help       show this help`;

export interface SendSummary {
  sent: number;
  accepted: number;
  rejected: number;
  distinctAcceptedIds: number;
  eventsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * This process's event-loop delay while sending (p99 and max, ms, beyond the 10-ms sampling
   * interval): time an answer may have waited here before its latency was taken, so part of the
   * latencies above when high.
   */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  requests: number;
  seconds: number;
  httpErrors: Record<string, number>;
  rejectedByCode: Record<string, number>;
}

interface SendOptions {
  url: string;
  types: string[];
  rate: number;
  duration: number;
  invalid: number;
  duplicates: number;
  batch: number;
  concurrency: number;
  retries: number;
  schemasDir: string;
  seed: number;
  json: boolean;
  /** The producer key sent as `Authorization: Bearer`, or null for none. */
  key: string | null;
  /** Every type from the registry API, not from `schemasDir`. */
  registryOnly: boolean;
  registryUrl: string;
  /** The registry token for reading types there, or null for none. */
  token: string | null;
}

function parseOptions(argv: string[]): SendOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      type: { type: 'string', default: 'EndSong' },
      rate: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '10' },
      invalid: { type: 'string', default: '0' },
      duplicates: { type: 'string', default: '0' },
      batch: { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '8' },
      retries: { type: 'string', default: '0' },
      schemas: { type: 'string', default: 'schemas' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      key: { type: 'string' },
      'data-dir': { type: 'string', default: DEFAULTS.dataDir },
      registry: { type: 'boolean', default: false },
      'registry-url': { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const num = (flag: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new UsageError(`--${flag} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const urlFlag = (flag: string, raw: string): URL => {
    try {
      return new URL(raw);
    } catch {
      throw new UsageError(`--${flag} must be a URL, got ${JSON.stringify(raw)}`);
    }
  };
  const url = urlFlag('url', values.url);
  const registryUrl = values['registry-url'] === undefined ? url : urlFlag('registry-url', values['registry-url']);
  const dataDir = resolve(values['data-dir']);
  const invalid = num('invalid', values.invalid, 0, 1);
  const duplicates = num('duplicates', values.duplicates, 0, 1);
  if (invalid + duplicates > 1) throw new UsageError('--invalid and --duplicates add up to more than 1');
  const types = values.type
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (types.length === 0) throw new UsageError('--type names no event type');
  return {
    url: url.origin,
    types,
    rate: values.rate === 'max' ? 0 : num('rate', values.rate, 0, 10_000_000),
    duration: num('duration', values.duration, 0.1, 86_400),
    invalid,
    duplicates,
    batch: Math.floor(num('batch', values.batch, 1, 100_000)),
    concurrency: Math.floor(num('concurrency', values.concurrency, 1, 1024)),
    retries: Math.floor(num('retries', values.retries, 0, 100)),
    schemasDir: resolve(values.schemas),
    seed: values.seed === undefined ? Date.now() : Math.floor(num('seed', values.seed, 0, 2 ** 32)),
    json: values.json,
    key: values.key ?? (process.env.HOURGLASS_KEY || null) ?? readDevKey(dataDir),
    registryOnly: values.registry,
    registryUrl: registryUrl.origin,
    token: values.token ?? (process.env.HOURGLASS_TOKEN || null) ?? readDevToken(dataDir),
  };
}

/** Latencies in ms, growing without copying on every push. */
class Latencies {
  private data = new Float64Array(1024);
  private n = 0;
  push(ms: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = ms;
  }
  percentiles(): { p50: number; p90: number; p99: number; max: number } {
    const s = this.data.slice(0, this.n).sort();
    const at = (q: number): number => (this.n === 0 ? 0 : (s[Math.min(this.n - 1, Math.floor(q * this.n))] as number));
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: this.n === 0 ? 0 : (s[this.n - 1] as number) };
  }
  recent(from: number): number {
    const s = this.data.slice(from, this.n).sort();
    return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor(0.99 * s.length))] as number);
  }
  get count(): number {
    return this.n;
  }
}

/** Bit per issued id: which ids the ingress accepted at least once. */
class IdBits {
  private bits = new Uint8Array(1 << 16);
  distinct = 0;
  mark(n: number): void {
    const byte = n >>> 3;
    if (byte >= this.bits.length) {
      const next = new Uint8Array(Math.max(this.bits.length * 2, byte + 1));
      next.set(this.bits);
      this.bits = next;
    }
    const mask = 1 << (n & 7);
    const current = this.bits[byte] ?? 0;
    if ((current & mask) === 0) {
      this.bits[byte] = current | mask;
      this.distinct++;
    }
  }
}

interface Answer {
  accepted?: number;
  rejected?: { index: number; code: string }[];
}

export async function runSend(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const options = parseOptions(argv);
  if (options === 'help') {
    io.stdout.write(`${SEND_USAGE}\n`);
    return 0;
  }
  const types = await resolveEventTypes(
    {
      names: options.types,
      schemasDir: options.schemasDir,
      registryOnly: options.registryOnly,
      registryUrl: options.registryUrl,
      token: options.token,
    },
    io,
  );
  const summary = await sendTraffic(options, types, io);
  printSummary(summary, options, io);
  return summary.requests > 0 && Object.values(summary.httpErrors).reduce((a, b) => a + b, 0) < summary.requests
    ? 0
    : 1;
}

async function sendTraffic(o: SendOptions, types: EventType[], io: CliIo): Promise<SendSummary> {
  const factory = new BatchFactory(types, `send-${randomBytes(4).toString('hex')}`, o, rng(o.seed));
  const pool = new Pool(o.url, {
    connections: o.concurrency,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connectTimeout: 5_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const latencies = new Latencies();
  const ids = new IdBits();
  const httpErrors: Record<string, number> = {};
  const rejectedByCode: Record<string, number> = {};
  let sent = 0;
  let accepted = 0;
  let rejected = 0;
  let requests = 0;
  let stopped = false;
  const onSigint = (): void => {
    stopped = true;
  };
  process.once('SIGINT', onSigint);

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const started = performance.now();
  const endAt = started + o.duration * 1000;
  const msPerBatch = o.rate > 0 ? (o.batch / o.rate) * 1000 : 0;
  let nextAt = started;

  const record = (events: BatchEvent[], answer: Answer): void => {
    const rejectedIdx = new Set<number>();
    for (const r of answer.rejected ?? []) {
      rejectedIdx.add(r.index);
      rejectedByCode[r.code] = (rejectedByCode[r.code] ?? 0) + 1;
    }
    rejected += rejectedIdx.size;
    accepted += answer.accepted ?? 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as BatchEvent;
      if (e.n >= 0 && !rejectedIdx.has(i)) ids.mark(e.n);
    }
  };

  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.key !== null) headers.authorization = `Bearer ${o.key}`;
  const post = async (body: string): Promise<{ status: number; answer: Answer | null; retryAfterMs: number }> => {
    const t0 = performance.now();
    try {
      const res = await pool.request({
        path: '/v1/events',
        method: 'POST',
        headers,
        body,
      });
      const text = await res.body.text();
      latencies.push(performance.now() - t0);
      const retryAfter = Number(res.headers['retry-after'] ?? 0);
      let answer: Answer | null = null;
      try {
        answer = JSON.parse(text) as Answer;
      } catch {
        answer = null;
      }
      return { status: res.statusCode, answer, retryAfterMs: Number.isFinite(retryAfter) ? retryAfter * 1000 : 0 };
    } catch {
      return { status: 0, answer: null, retryAfterMs: 0 }; // network error: counted under httpErrors.network
    }
  };

  const worker = async (): Promise<void> => {
    while (!stopped) {
      const now = performance.now();
      if (now >= endAt) return;
      if (msPerBatch > 0) {
        const at = nextAt;
        nextAt += msPerBatch;
        if (at >= endAt) return; // this batch's slot is after the end of the run
        if (at > now) await new Promise((r) => setTimeout(r, at - now));
        if (performance.now() >= endAt || stopped) return;
      }
      const { events, body } = factory.batch(o.batch);
      sent += events.length;
      for (let attempt = 0; ; attempt++) {
        requests++;
        const { status, answer, retryAfterMs } = await post(body);
        if (status === 200 && answer) {
          record(events, answer);
          break;
        }
        const key = status === 0 ? 'network' : String(status);
        httpErrors[key] = (httpErrors[key] ?? 0) + 1;
        const retriable = status === 0 || status === 429 || status === 503;
        if (!retriable || attempt >= o.retries || stopped) break;
        await new Promise((r) => setTimeout(r, Math.max(retryAfterMs, 100 * 2 ** attempt)));
      }
    }
  };

  let lastCount = 0;
  let lastAnswered = 0;
  let lastAt = started;
  const progress = setInterval(() => {
    const now = performance.now();
    const answered = accepted + rejected;
    const rate = ((answered - lastAnswered) * 1000) / (now - lastAt);
    const line = `sent ${sent}  accepted ${accepted}  rejected ${rejected}  errors ${Object.values(httpErrors).reduce((a, b) => a + b, 0)}  ${Math.round(rate)} ev/s  p99 ${latencies.recent(lastCount).toFixed(1)} ms`;
    io.stderr.write((io.stderr as NodeJS.WriteStream).isTTY ? `\r${line}\u001b[K` : `${line}\n`);
    lastCount = latencies.count;
    lastAnswered = answered;
    lastAt = now;
  }, 1000);
  progress.unref();

  try {
    await Promise.all(Array.from({ length: o.concurrency }, () => worker()));
  } finally {
    clearInterval(progress);
    loopDelay.disable();
    process.off('SIGINT', onSigint);
    if ((io.stderr as NodeJS.WriteStream).isTTY) io.stderr.write('\n');
    await pool.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const p = latencies.percentiles();
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    sent,
    accepted,
    rejected,
    distinctAcceptedIds: ids.distinct,
    eventsPerSec: Math.round((accepted + rejected) / seconds),
    p50Ms: round(p.p50),
    p90Ms: round(p.p90),
    p99Ms: round(p.p99),
    maxMs: round(p.max),
    // each sample is the time between two 10-ms timer ticks: the delay is what exceeds 10 ms
    loopDelayP99Ms: round(Math.max(0, loopDelay.percentile(99) / 1e6 - 10)),
    loopDelayMaxMs: round(Math.max(0, loopDelay.max / 1e6 - 10)),
    requests,
    seconds: round(seconds),
    httpErrors,
    rejectedByCode,
  };
}

function printSummary(s: SendSummary, o: SendOptions, io: CliIo): void {
  const codes = Object.entries(s.rejectedByCode)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  const errors = Object.entries(s.httpErrors)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  io.stdout.write(
    [
      `sent        ${s.sent} events in ${s.requests} requests over ${s.seconds} s (${o.types.join(', ')})`,
      `accepted    ${s.accepted} (${s.distinctAcceptedIds} distinct ids)`,
      `rejected    ${s.rejected}${codes ? ` (${codes})` : ''}`,
      `http errors ${errors || 'none'}`,
      `rate        ${s.eventsPerSec} events/s answered${o.rate > 0 ? ` (target ${o.rate})` : ' (as fast as possible)'}`,
      `latency     p50 ${s.p50Ms} ms, p90 ${s.p90Ms} ms, p99 ${s.p99Ms} ms, max ${s.maxMs} ms`,
      `send's own event-loop delay p99 ${s.loopDelayP99Ms} ms, max ${s.loopDelayMaxMs} ms`,
      '',
    ].join('\n'),
  );
  if (o.json) io.stdout.write(`${JSON.stringify(s)}\n`);
}
