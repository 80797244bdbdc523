/** Child processes of the benchmark: `hourglass dev`, `hourglass etl` and `hourglass send`, killed on exit. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readDevKey } from '../cli/dev-key.js';

export const ROOT = resolve(import.meta.dirname, '..');
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, ['bin/hourglass.js', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface DevServer {
  readonly url: string;
  /** `hourglass send` arguments carrying the data dir's dev producer key (none with keys off). */
  readonly keyArgs: string[];
  readonly pid: number;
  /** Peak resident set size so far (VmHWM), MB. */
  peakRssMb(): number;
  /** CPU seconds (user + system) the process used so far, from /proc; null where it is missing. */
  cpuSeconds(): number | null;
  stop(): Promise<void>;
}

/** `hourglass dev` (by default the ingress only: `--no-etl`). */
export async function startDev(
  dataDir: string,
  args: string[] = ['--no-etl'],
  env: NodeJS.ProcessEnv = {},
): Promise<DevServer> {
  const child = start(['dev', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...args], env);
  let out = '';
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`hourglass dev did not start:\n${out}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ingress on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1] as string);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hourglass dev exited with ${code}:\n${out}`));
    });
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const key = readDevKey(dataDir);
  return {
    url,
    keyArgs: key === null ? [] : ['--key', key],
    pid: child.pid as number,
    peakRssMb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      return Math.round(kb / 1024);
    },
    cpuSeconds: () => cpuSecondsOf(child.pid as number),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface EtlProcess {
  readonly pid: number;
  /** Its `/metrics` and `/healthz` base URL. */
  readonly url: string;
  /** Its log lines so far (JSON objects, one a line). */
  logs(): Record<string, unknown>[];
  /** CPU seconds (user + system) the process used so far, from /proc; null where it is missing. */
  cpuSeconds(): number | null;
  stop(): Promise<void>;
}

/**
 * `hourglass etl` with `args` (e.g. `--roles dedup --data-dir D`), logging JSON on stderr, its
 * metrics on a free port; resolves once it serves.
 */
export async function startEtl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<EtlProcess> {
  const child = start(['etl', '--metrics-port', '0', '--log-format', 'json', ...args], env);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`hourglass etl did not start:\n${out}\n${err}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /metrics on (http:\/\/\S+)\/metrics/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1] as string);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hourglass etl exited with ${code}:\n${out}\n${err}`));
    });
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    pid: child.pid as number,
    url,
    logs() {
      return err
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    cpuSeconds: () => cpuSecondsOf(child.pid as number),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Busy CPU seconds of the whole machine since boot (/proc/stat), null where it is missing. */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / 100;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) process `pid` used so far, from /proc; null where it is missing. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks of 10 ms
  } catch {
    return null;
  }
}

export interface SendResult {
  readonly sent: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly eventsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly requests: number;
  /** `hourglass send`'s own event-loop delay while sending, ms. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  readonly httpErrors: Record<string, number>;
}

/** Runs an `hourglass` command to its end: its exit code, stdout and stderr. */
async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = start(args);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, out, err };
}

/** Runs an `hourglass` command to its end; its stdout (throws on a non-zero exit). */
export async function runCli(args: string[]): Promise<string> {
  const { code, out, err } = await run(args);
  if (code !== 0) throw new Error(`hourglass ${args.join(' ')} failed (${code}):\n${out}\n${err}`);
  return out;
}

/**
 * The event-loop delay and GC time of a `hourglass dev` process since the last call, from its
 * `/metrics` (prom-client's default metrics: the loop-delay histogram restarts at every scrape).
 */
export interface DevLoopStats {
  /** Event-loop delay p99 and max over the window, ms beyond the 10-ms sampling interval. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  /** Garbage collection: pauses and their total time over the window (ms). */
  readonly gcCount: number;
  readonly gcMs: number;
}

export class DevLoopProbe {
  private gc = { count: 0, sum: 0 };
  private constructor(private readonly url: string) {}

  /** Starts a window (scrapes once, which restarts the loop-delay histogram). */
  static async start(url: string): Promise<DevLoopProbe> {
    const probe = new DevLoopProbe(url);
    await probe.read();
    return probe;
  }

  /** The figures since the start or the last call. */
  async read(): Promise<DevLoopStats> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const value = (name: string): number => {
      let sum = 0;
      for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
      return sum;
    };
    const gc = {
      count: value('hourglass_process_nodejs_gc_duration_seconds_count'),
      sum: value('hourglass_process_nodejs_gc_duration_seconds_sum'),
    };
    // prom-client's histogram samples the time between two 10-ms timer ticks: the delay is the excess
    const delayMs = (name: string): number => Math.max(0, Math.round((value(name) * 1000 - 10) * 10) / 10);
    const stats = {
      loopDelayP99Ms: delayMs('hourglass_process_nodejs_eventloop_lag_p99_seconds'),
      loopDelayMaxMs: delayMs('hourglass_process_nodejs_eventloop_lag_max_seconds'),
      gcCount: gc.count - this.gc.count,
      gcMs: Math.round((gc.sum - this.gc.sum) * 1e4) / 10,
    };
    this.gc = gc;
    return stats;
  }
}

export async function runSend(args: string[]): Promise<SendResult> {
  const { code, out, err } = await run(['send', '--json', ...args]);
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) throw new Error(`hourglass send failed (${code}):\n${out}\n${err}`);
  return JSON.parse(last) as SendResult;
}

/**
 * Runs a bench module in a child process of its own (`node --import tsx bench/<script> …args`),
 * so the peak RSS it reports is its own; its stdout (throws on a non-zero exit).
 */
export function runBenchScript(script: string, args: string[]): Promise<string> {
  return new Promise((resolveOut, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', `bench/${script}`, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.once('exit', (code) =>
      code === 0 ? resolveOut(out) : reject(new Error(`${script} ${args[0]} exited with ${code}`)),
    );
  });
}

/**
 * Writes every dirty page of the file system back (`sync`), so that a timed step that follows does
 * not pay for the writeback of the files the step before it generated.
 */
export function settleDisk(): Promise<void> {
  return new Promise((resolveDone, reject) => {
    const p = spawn('sync', [], { stdio: 'ignore' });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolveDone() : reject(new Error(`sync exited with ${code}`))));
  });
}
