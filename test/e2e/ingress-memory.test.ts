/**
 * Bodies that would amplify into millions of objects are refused before they are built: ten
 * parallel 5 MiB batches of `{}` against `hourglass dev` (a child process), and ten of events
 * within the size cap whose payloads nest thousands of `{}`, are answered 413 quickly and the
 * process's peak RSS stays under 300 MB.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDev } from '../support/dev-process.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A field of /proc/<pid>/status, in MB. */
function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]) / 1024;
}

describe('ingress memory under amplifying bodies', () => {
  it('10 parallel 5 MiB batches of {} → 413 quickly, peak RSS under 300 MB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-memory-'));
    dirs.push(dir);
    // without producer keys: the body itself is what is measured
    const dev = await startDev(['--data-dir', dir], 30_000, { HOURGLASS_INGRESS_AUTH: 'off' });
    try {
      const pid = dev.child.pid as number;
      const post = (body: string) =>
        fetch(`${dev.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const warm = await post(
        JSON.stringify({ events: [{ type: 'EndSong', id: 'warm-1', payload: { userId: 'u' } }] }),
      );
      expect(warm.status).toBe(200);
      const body = `{"events":[${Array.from({ length: 1_700_000 }, () => '{}').join(',')}]}`;
      expect(body.length).toBeGreaterThan(5_000_000);
      const before = statusMb(pid, 'VmRSS');
      writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
      const started = performance.now();
      const answers = await Promise.all(Array.from({ length: 10 }, () => post(body)));
      const ms = performance.now() - started;
      const codes = await Promise.all(
        answers.map(async (r) => [r.status, ((await r.json()) as { error: { code: string } }).error.code]),
      );
      const peak = statusMb(pid, 'VmHWM');
      console.log(
        `10 × ${(body.length / 1048576).toFixed(1)} MiB of {}: answered in ${ms.toFixed(0)} ms; ` +
          `RSS before ${before.toFixed(0)} MB, peak ${peak.toFixed(0)} MB`,
      );
      expect(codes).toEqual(Array.from({ length: 10 }, () => [413, 'batch_too_large']));
      expect(ms).toBeLessThan(5000);
      expect(peak).toBeLessThan(300);
      // and the process serves on
      const after = await post(JSON.stringify({ events: [{ type: 'EndSong', id: 'after-1', payload: {} }] }));
      expect(after.status).toBe(200);

      // the same amplification inside events within the size cap: 1,000 events of ~5 KB, each a
      // payload holding [{},{},…]
      const inner = `[${Array.from({ length: 1_600 }, () => '{}').join(',')}]`;
      const nested = `{"events":[${Array.from({ length: 1000 }, (_, i) => `{"type":"EndSong","id":"n-${i}","payload":{"userId":${inner}}}`).join(',')}]}`;
      expect(nested.length).toBeGreaterThan(4_500_000);
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
      const t0 = performance.now();
      const nestedAnswers = await Promise.all(Array.from({ length: 10 }, () => post(nested)));
      const nestedMs = performance.now() - t0;
      const nestedCodes = await Promise.all(
        nestedAnswers.map(async (r) => [r.status, ((await r.json()) as { error: { code: string } }).error.code]),
      );
      const nestedPeak = statusMb(pid, 'VmHWM');
      console.log(
        `10 × ${(nested.length / 1048576).toFixed(1)} MiB of nested [{}…]: ${nestedMs.toFixed(0)} ms, peak ${nestedPeak.toFixed(0)} MB`,
      );
      expect(nestedCodes).toEqual(Array.from({ length: 10 }, () => [413, 'batch_too_large']));
      expect(nestedPeak).toBeLessThan(300);
    } finally {
      await dev.stop();
    }
  }, 90_000);
});
