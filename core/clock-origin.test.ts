import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordedClock, sharedClock } from './clock-origin.js';

describe('sharedClock', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('continues scaled time across processes and restarts on one data dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-clock-'));
    dirs.push(dir);
    const first = sharedClock(dir, 3600);
    await new Promise((r) => setTimeout(r, 50));
    const second = sharedClock(dir, 3600);
    // 50 real ms at ×3600 is three minutes of clock time; the second clock continues, not restarts
    expect(second.now() - Date.now()).toBeGreaterThan(100_000);
    expect(Math.abs(second.now() - first.now())).toBeLessThan(20_000);
  });

  it('never goes back when the scale changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-clock-'));
    dirs.push(dir);
    const fast = sharedClock(dir, 10_000);
    await new Promise((r) => setTimeout(r, 30));
    const reached = fast.now();
    const slow = sharedClock(dir, 2);
    expect(slow.now()).toBeGreaterThanOrEqual(reached);
    expect(sharedClock(dir, 1).scale).toBe(1);
  });

  it('never goes back at a high scale, where a real millisecond is many clock seconds', () => {
    // whole-millisecond real origins once let a continued clock read up to `scale` ms behind
    for (let i = 0; i < 200; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'hourglass-clock-'));
      dirs.push(dir);
      const fast = sharedClock(dir, 100_000);
      const reached = fast.now();
      expect(sharedClock(dir, 100_000).now()).toBeGreaterThanOrEqual(reached);
      const slower = sharedClock(dir, 3);
      expect(slower.now()).toBeGreaterThanOrEqual(reached);
    }
  });

  it("lets a command without a scale of its own read the data dir's scaled time", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hourglass-clock-'));
    dirs.push(dir);
    expect(Math.abs(recordedClock(dir).now() - Date.now())).toBeLessThan(1000); // nothing recorded: system time
    const pipeline = sharedClock(dir, 3600);
    await new Promise((r) => setTimeout(r, 50));
    const command = recordedClock(dir);
    expect(command.now() - Date.now()).toBeGreaterThan(100_000);
    // at 3600× a real millisecond is 3.6 s of scaled time: bracket the command's reading
    const before = pipeline.now();
    const read = command.now();
    const after = pipeline.now();
    expect(read).toBeGreaterThanOrEqual(before - 20_000);
    expect(read).toBeLessThanOrEqual(after + 20_000);
  });
});
