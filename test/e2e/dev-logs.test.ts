/**
 * `hourglass dev`'s logs: JSON lines when not on a terminal; when its stdout and stderr go to one
 * file (`> dev.log 2>&1`), the banner is a JSON record too (without secrets), so every line parses.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDevKey, readDevToken } from '../../cli/dev-key.js';
import { REPO_ROOT } from '../support/dev-process.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('hourglass dev logs', () => {
  it('keep a shared stdout and stderr one JSON object per line, the banner a record without secrets', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-dev-logs-'));
    dirs.push(dir);
    const log = join(dir, 'dev.log');
    const fd = openSync(log, 'a');
    const child = spawn(
      process.execPath,
      ['bin/hourglass.js', 'dev', '--port', '0', '--data-dir', join(dir, 'data'), '--no-etl'],
      { cwd: REPO_ROOT, stdio: ['ignore', fd, fd], env: { ...process.env, HOURGLASS_LOG_FORMAT: '' } },
    );
    closeSync(fd);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!readFileSync(log, 'utf8').includes('hourglass dev ready') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const text = readFileSync(log, 'utf8');
    const records = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string; url?: string; keyFile?: string; tokenFile?: string });
    const ready = records.find((r) => r.msg === 'hourglass dev ready');
    expect(ready?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready?.keyFile).toBe(join(dir, 'data', 'dev-key'));
    expect(ready?.tokenFile).toBe(join(dir, 'data', 'dev-token'));
    expect(text).not.toContain(readDevKey(join(dir, 'data')) as string);
    expect(text).not.toContain(readDevToken(join(dir, 'data')) as string);
  });
});
