/** Runs `hourglass dev` as a child process, as a user would. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { readDevKey, readDevToken } from '../../cli/dev-key.js';
import type { SendSummary } from '../../cli/send.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

const execFileP = promisify(execFile);

/** Runs a `hourglass` command to its end and returns what it printed on stdout. */
export async function hourglass(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(process.execPath, ['bin/hourglass.js', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    return stdout;
  } catch (err) {
    // what the command said is the useful part of a failure
    const e = err as Error & { stderr?: string };
    e.message = `${e.message}\n${e.stderr ?? ''}`;
    throw e;
  }
}

/** Runs `hourglass send … --json` to its end and returns its summary (the last stdout line). */
export async function sendSummary(args: string[]): Promise<SendSummary> {
  const out = await hourglass(['send', ...args, '--json']);
  return JSON.parse(out.trim().split('\n').pop() as string) as SendSummary;
}

export interface DevProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** The data dir's dev producer key (`<data-dir>/dev-key`), or null. */
  readonly key: string | null;
  /** Headers of an event batch request: JSON, with the dev key when there is one. */
  readonly headers: Record<string, string>;
  /** `hourglass send` arguments that carry the dev key (none when there is no key). */
  readonly keyArgs: string[];
  /** The data dir's dev admin registry token (`<data-dir>/dev-token`), or null. */
  readonly token: string | null;
}

export async function startDev(args: string[], timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<DevProcess> {
  return startCommand(
    ['dev', '--port', '0', '--log-level', 'warn', ...args],
    /ingress on (http:\/\/[^\s]+)/,
    timeoutMs,
    env,
  );
}

/** Runs `hourglass orchestrator`; resolves with its URL once it listens. */
export async function startOrchestrator(
  args: string[],
  timeoutMs = 30_000,
  env: NodeJS.ProcessEnv = {},
): Promise<DevProcess> {
  return startCommand(
    ['orchestrator', '--port', '0', '--log-level', 'warn', ...args],
    /registry API on (http:\/\/[^\s,]+)/,
    timeoutMs,
    env,
  );
}

/** Runs `hourglass etl`; resolves once it reports that it runs (`url`: its metrics server). */
export async function startEtl(args: string[], timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<DevProcess> {
  return startCommand(
    ['etl', '--metrics-port', '0', '--log-level', 'warn', ...args],
    /metrics on (http:\/\/[^\s]+)\/metrics/,
    timeoutMs,
    env,
  );
}

async function startCommand(
  argv: string[],
  ready: RegExp,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
): Promise<DevProcess> {
  const child = spawn(process.execPath, ['bin/hourglass.js', ...argv], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`hourglass ${argv[0]} did not start in ${timeoutMs} ms:\n${out}`)),
      timeoutMs,
    );
    const check = (): void => {
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1] as string);
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hourglass ${argv[0]} exited with ${code}:\n${out}`));
    });
  });
  const dataDirAt = argv.indexOf('--data-dir');
  const key = dataDirAt >= 0 ? readDevKey(argv[dataDirAt + 1] as string) : null;
  return {
    child,
    url,
    key,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    keyArgs: key ? ['--key', key] : [],
    token: dataDirAt >= 0 ? readDevToken(argv[dataDirAt + 1] as string) : null,
    output: () => out,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    exited,
  };
}
