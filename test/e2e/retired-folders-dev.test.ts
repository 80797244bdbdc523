/**
 * `hourglass dev` and retired types, as a user meets them: after `hourglass types retire` a
 * restart works before the folder is edited (a warning says how), the banner lists only active
 * types and its suggested commands carry `--schemas` (and work), and a folder marked retired
 * registers retired on a fresh data dir, with no topic.
 */
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hourglass as cli, type DevProcess, REPO_ROOT, startDev } from '../support/dev-process.js';

const dirs: string[] = [];
const hourglass = (...args: string[]): Promise<string> => cli(args);
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The whole banner (its last line is the query suggestion), waiting for it to be written. */
async function banner(dev: DevProcess): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (!/^query: .*$/m.test(dev.output())) {
    if (Date.now() > deadline) throw new Error(`no banner:\n${dev.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return dev.output();
}

/** Runs `hourglass dev` on the dirs, hands it to `use`, and stops it; returns its output. */
async function withDev(args: string[], use: (dev: DevProcess, text: string) => Promise<void>): Promise<string> {
  const dev = await startDev(args);
  try {
    await use(dev, await banner(dev));
  } finally {
    const code = await dev.stop();
    expect(code, dev.output()).toBe(0);
  }
  return dev.output();
}

async function setFolderStatus(schemas: string, type: string, status: string): Promise<void> {
  const file = join(schemas, type, 'type.json');
  const def = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(file, JSON.stringify({ ...def, status }));
}

describe('hourglass dev with retired types', () => {
  it('restarts after a retirement before the folder is edited, lists only active types, and suggests working commands', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-retired-dev-'));
    dirs.push(dir);
    const schemas = join(dir, 'schemas');
    await cp(join(REPO_ROOT, 'schemas'), schemas, { recursive: true });
    const data = join(dir, 'data');
    const args = ['--data-dir', data, '--schemas', schemas];

    await withDev(args, async (_dev, text) => {
      expect(text).toContain('3 active event types (EndSong, PageView, UserCreate)');
      expect(text).toMatch(new RegExp(`send traffic: .* --schemas ${schemas} --type EndSong,PageView,UserCreate `));
      const retired = await hourglass('types', 'retire', 'PageView', ...args);
      expect(retired).toContain('PageView: retiring');
      expect(retired).toContain(`set "status": "retired" in ${join(schemas, 'PageView', 'type.json')}`);
    });

    // the folder still says active: the start goes on, with a warning
    let suggested = '';
    const second = await withDev(args, async (_dev, text) => {
      expect(text).toContain('2 active event types (EndSong, UserCreate; 1 retiring or retired not listed)');
      suggested = /^send traffic: npx hourglass (send .*)$/m.exec(text)?.[1] ?? '';
      expect(suggested).toContain(`--schemas ${schemas}`);
      expect(suggested).toContain('--type EndSong,UserCreate ');
      // the suggested command works as printed (shorter and slower)
      const argv = suggested
        .replace('--rate 1000', '--rate 50')
        .replace('--duration 10', '--duration 1')
        .split(' ')
        .concat('--json');
      const summary = JSON.parse((await cli(argv)).trim().split('\n').pop() as string) as {
        accepted: number;
        rejected: number;
      };
      expect(summary.accepted).toBeGreaterThan(0);
      expect(summary.rejected).toBe(0);
    });
    expect(second).toMatch(/type folder PageView differs from the registry/);
    expect(second).toMatch(/set \\?"status\\?": \\?"retired\\?" in PageView\/type.json/);

    // once the folder says retired: no warning
    await setFolderStatus(schemas, 'PageView', 'retired');
    const third = await withDev(args, async (_dev, text) => {
      expect(text).toContain('2 active event types (EndSong, UserCreate;');
    });
    expect(third).not.toMatch(/differs from the registry/);
  });

  it('registers a folder marked retired as retired on a fresh data dir: no topic, no consumer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-retired-fresh-'));
    dirs.push(dir);
    const schemas = join(dir, 'schemas');
    await cp(join(REPO_ROOT, 'schemas'), schemas, { recursive: true });
    await setFolderStatus(schemas, 'PageView', 'retired');
    const data = join(dir, 'data');
    const args = ['--data-dir', data, '--schemas', schemas];
    await withDev(args, async (dev, text) => {
      expect(text).toContain('2 active event types (EndSong, UserCreate; 1 retiring or retired not listed)');
      const topics = await readdir(join(data, 'bus', 'topics'));
      expect(topics).toContain('hourglass.EndSong');
      expect(topics).not.toContain('hourglass.PageView');
      expect(await readdir(join(data, 'bus', 'subscriptions'))).not.toContain('hourglass.PageView.etl');
      const shown = JSON.parse(await hourglass('types', 'show', 'PageView', ...args, '--format', 'json')) as {
        status: string;
        steps: unknown[];
        history: { action: string; detail: string }[];
      };
      expect(shown.status).toBe('retired');
      expect(shown.steps).toEqual([]);
      expect(shown.history.map((h) => h.action)).toEqual(['create']);
      const res = await fetch(`${dev.url}/v1/events`, {
        method: 'POST',
        headers: dev.headers,
        body: JSON.stringify({ events: [{ id: 'pv-1', type: 'PageView', version: 1, payload: {} }] }),
      });
      const body = (await res.json()) as { accepted: number; rejected: { code: string }[] };
      expect(body.rejected.map((r) => r.code)).toEqual(['retired_type']);
    });
  });
});
