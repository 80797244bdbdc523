/**
 * Private files as a user gets them: `hourglass dev` started with umask 000 (so nothing is private
 * unless Hourglass makes it so) on an old data dir (0755), events sent with the dev key, an hour
 * published at time ×360, `hourglass hours` and `hourglass query` run on it, then every folder of
 * the data dir is 0700 and every file 0600 (state, WAL, bus segments and subscription state,
 * raw and final objects, manifests, keys, clock). A new data dir made by a short command is 0700.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDevKey } from '../../cli/dev-key.js';
import { REPO_ROOT } from '../support/dev-process.js';
import { walkModes } from '../support/private-files.js';

const tmp = mkdtempSync(join(tmpdir(), 'hourglass-private-e2e-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

/** `hourglass <args>` started by a shell whose umask is 000; `exec` keeps the pid the command's. */
function umask0(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn('sh', ['-c', 'umask 000; exec "$0" bin/hourglass.js "$@"', process.execPath, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

/** Runs a short `hourglass` command with umask 000 to its end (at most 30 s); its stdout. */
async function hourglass0(args: string[]): Promise<string> {
  const run = umask0(args);
  let stdout = '';
  run.child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
  const code = await run.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`hourglass ${args.join(' ')} exited with ${code}:\n${run.output()}`);
  return stdout;
}

const report = (root: string): string => {
  const w = walkModes(root);
  return w.offenders.length === 0 ? '' : `not private:\n  ${w.offenders.join('\n  ')}\nall:\n  ${w.seen.join('\n  ')}`;
};

function pageView(i: number): unknown {
  return {
    type: 'PageView',
    id: `pv-${i}`,
    payload: {
      sessionId: `s${i % 7}`,
      userId: i % 3 === 0 ? null : `u${i}`,
      url: `/page/${i}`,
      referrer: null,
      loadTimeMs: 50 + i,
      viewport: { width: 1280, height: 800 },
      experiments: [],
    },
  };
}

describe('private files of hourglass dev, started with umask 000', () => {
  it('makes an old data dir 0700 and every folder 0700 and file 0600 in it', async () => {
    const data = join(tmp, 'data');
    mkdirSync(data);
    chmodSync(data, 0o755); // as an older version left it
    const dev = umask0(['dev', '--port', '0', '--log-level', 'warn', '--data-dir', data, '--time-scale', '360']);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`hourglass dev did not start:\n${dev.output()}`)), 30_000);
        const check = (): void => {
          const m = /ingress on (http:\/\/[^\s]+)/.exec(dev.output());
          if (m) {
            clearTimeout(timer);
            resolve(m[1] as string);
          }
        };
        dev.child.stdout?.on('data', check);
        void dev.exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`hourglass dev exited with ${code}:\n${dev.output()}`));
        });
      });
      expect(dev.output()).toContain('data dir was 0755, made it 0700');
      expect(dev.output()).toContain(`chmod -R go= ${data}`);
      expect(statSync(data).mode & 0o777).toBe(0o700);

      const key = readDevKey(data);
      expect(key).toMatch(/^hgk_/);
      let accepted = 0;
      for (let batch = 0; batch < 3; batch++) {
        // the second and third batches resend some ids: a partition with duplicates to remove
        const events = Array.from({ length: 40 }, (_, i) => pageView(batch * 30 + i));
        const res = await fetch(`${url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ events }),
        });
        expect(res.status).toBe(200);
        accepted += ((await res.json()) as { accepted: number }).accepted;
      }
      expect(accepted).toBe(120);

      // an hour is 10 s at ×360: wait for PageView's to be published
      const deadline = Date.now() + 60_000;
      let published = false;
      while (!published && Date.now() < deadline) {
        const hours = JSON.parse(await hourglass0(['hours', '--data-dir', data, '--format', 'json'])) as {
          type: string;
          state: string;
          in: number;
        }[];
        published = hours.some((h) => h.type === 'PageView' && h.state === 'published' && h.in > 0);
        if (!published) await new Promise((r) => setTimeout(r, 1000));
      }
      expect(published).toBe(true);
      const rows = JSON.parse(
        await hourglass0(['query', '--data-dir', data, '--format', 'json', 'SELECT count(*) AS n FROM PageView']),
      ) as { n: number }[];
      expect(rows[0]?.n).toBeGreaterThan(0);

      // while it runs (SQLite's -wal and -shm, open segments, consumer locks) …
      expect(report(data)).toBe('');
    } finally {
      dev.child.kill('SIGTERM');
      const timer = setTimeout(() => dev.child.kill('SIGKILL'), 20_000);
      await dev.exited;
      clearTimeout(timer);
    }
    // … and after it stopped
    expect(report(data)).toBe('');
    const seen = walkModes(data).seen.join('\n');
    for (const what of [
      /^state\.sqlite 0600/m,
      /^dev-key 0600/m,
      /^dev-token 0600/m,
      /^clock\.json 0600/m,
      /^bus\/topics\/[^ ]+\/segments\/[^ ]+\.log 0600/m,
      /^bus\/subscriptions\/[^ ]+\/state\.json 0600/m,
      /^objects\/raw\/PageView\/[^ ]+ 0600 \(file\)/m,
      /^objects\/final\/PageView\/[^ ]+\.parquet 0600/m,
    ]) {
      expect(seen).toMatch(what);
    }
  }, 120_000);

  it('a data dir a short command creates is 0700, its state 0600', async () => {
    const fresh = join(tmp, 'fresh', 'data');
    // read commands refuse a data dir that does not exist; one that makes something creates it
    await expect(hourglass0(['hours', '--data-dir', fresh, '--format', 'json'])).rejects.toThrow(/no data dir/);
    expect(existsSync(fresh)).toBe(false);
    await hourglass0(['keys', 'create', '--producer', 'p', '--all-types', '--data-dir', fresh]);
    expect(report(join(tmp, 'fresh'))).toBe('');
    expect(statSync(join(fresh, 'state.sqlite')).mode & 0o777).toBe(0o600);
  }, 40_000);
});
