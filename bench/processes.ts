/** Child processes of the benchmark: `hourglass dev` and `hourglass send`, killed on exit. */
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
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface SendResult {
  readonly sent: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly eventsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly httpErrors: Record<string, number>;
}

export async function runSend(args: string[]): Promise<SendResult> {
  const child = start(['send', '--json', ...args]);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) throw new Error(`hourglass send failed (${code}):\n${out}\n${err}`);
  return JSON.parse(last) as SendResult;
}
