/**
 * (f) Registry API reads: `hourglass dev --no-etl` in a child process, a token made with
 * `hourglass tokens create`, then `concurrency` keep-alive loops in this process reading
 * `GET /v1/event-types/EndSong` and `GET /v1/event-types` (alternately) for `seconds`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, startDev } from './processes.js';

const run = promisify(execFile);

export interface RegistryReadResult {
  readonly readsPerSec: number;
  readonly reads: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly concurrency: number;
  readonly seconds: number;
}

function percentile(sorted: number[], p: number): number {
  return Math.round((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0) * 100) / 100;
}

export async function measureRegistryReads(seconds = 5, concurrency = 16): Promise<RegistryReadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bench-registry-'));
  const dev = await startDev(dir);
  try {
    const { stdout } = await run(
      process.execPath,
      ['bin/hourglass.js', 'tokens', 'create', '--owner', 'bench', '--data-dir', dir],
      { cwd: ROOT },
    );
    const headers = { authorization: `Bearer ${stdout.trim()}` };
    const paths = ['/v1/event-types/EndSong', '/v1/event-types'];
    // warm-up
    for (const p of paths) await (await fetch(`${dev.url}${p}`, { headers })).arrayBuffer();
    const latencies: number[] = [];
    let errors = 0;
    const end = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        for (let i = w; performance.now() < end; i++) {
          const t = performance.now();
          const res = await fetch(`${dev.url}${paths[i % 2]}`, { headers });
          await res.arrayBuffer();
          if (res.status !== 200) errors++;
          latencies.push(performance.now() - t);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      readsPerSec: Math.round(latencies.length / elapsed),
      reads: latencies.length,
      errors,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      concurrency,
      seconds,
    };
  } finally {
    await dev.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await measureRegistryReads());
