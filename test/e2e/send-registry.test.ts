/**
 * `hourglass send` generates traffic for a type that is only in the registry (registered through
 * the API, not in the schemas folder): it reads `GET /v1/event-types/:name` with a registry token
 * (--token, HOURGLASS_TOKEN, or the data dir's dev-token) and sends events of its latest schema.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SendSummary } from '../../cli/send.js';
import { type DevProcess, REPO_ROOT, startDev } from '../support/dev-process.js';

const execFileP = promisify(execFile);
const dirs: string[] = [];
let dev: DevProcess;
let dir: string;

/** Runs `hourglass send`; never throws: the exit code, stdout and stderr. */
async function send(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await execFileP(process.execPath, ['bin/hourglass.js', 'send', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, HOURGLASS_TOKEN: '', HOURGLASS_KEY: '', ...env },
    });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}
const summary = (out: string): SendSummary => JSON.parse(out.trim().split('\n').pop() as string) as SendSummary;

const SEARCH_V1 = {
  type: 'record',
  name: 'Search',
  fields: [
    { name: 'query', type: 'string' },
    { name: 'results', type: 'int' },
  ],
};
const SEARCH_V2 = { ...SEARCH_V1, fields: [...SEARCH_V1.fields, { name: 'locale', type: 'string', default: 'en' }] };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hourglass-send-registry-'));
  dirs.push(dir);
  dev = await startDev(['--data-dir', dir, '--no-etl']);
  const auth = { authorization: `Bearer ${dev.token}`, 'content-type': 'application/json' };
  const created = await fetch(`${dev.url}/v1/event-types`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ name: 'Search', owner: 'discovery', tier: 'normal', schema: SEARCH_V1 }),
  });
  expect(created.status).toBe(201);
  const evolved = await fetch(`${dev.url}/v1/event-types/Search/versions`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ schema: SEARCH_V2 }),
  });
  expect(evolved.status).toBe(201);
});
afterAll(async () => {
  await dev?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('hourglass send with a type from the registry', () => {
  const base = () => ['--url', dev.url, '--rate', '400', '--duration', '1', '--json'];

  it('reads a type missing from the schemas folder from the registry, with the dev token of the data dir', async () => {
    const r = await send([...base(), '--data-dir', dir, '--type', 'Search,PageView']);
    expect(r.err).toContain(`Search: schema version 2 from the registry at ${dev.url}`);
    expect(r.err).not.toContain('PageView: schema version');
    expect(r.code).toBe(0);
    const s = summary(r.out);
    expect(s.accepted).toBeGreaterThan(200);
    expect(s.rejected).toBe(0);
    expect(s.httpErrors).toEqual({});
  });

  it('reads every type from the registry with --registry, with a token from --token or HOURGLASS_TOKEN', async () => {
    const viaFlag = await send([
      ...base(),
      '--key',
      dev.key as string,
      '--registry',
      '--token',
      dev.token as string,
      '--type',
      'EndSong',
    ]);
    expect(viaFlag.err).toContain('EndSong: schema version 2 from the registry');
    expect(viaFlag.code).toBe(0);
    expect(summary(viaFlag.out).rejected).toBe(0);
    const viaEnv = await send(
      [...base(), '--key', dev.key as string, '--type', 'Search', '--data-dir', join(dir, 'elsewhere')],
      {
        HOURGLASS_TOKEN: dev.token as string,
      },
    );
    expect(viaEnv.code).toBe(0);
    expect(summary(viaEnv.out).accepted).toBeGreaterThan(200);
  });

  it('says what is wrong: no token, a refused token, a type the registry lacks', async () => {
    const noToken = await send([...base(), '--type', 'Search', '--data-dir', join(dir, 'elsewhere')]);
    expect(noToken.code).toBe(2);
    expect(noToken.err).toMatch(
      /--type Search: no such event type under .*schemas.*registry token \(--token, \$HOURGLASS_TOKEN/,
    );
    const refused = await send([...base(), '--type', 'Search', '--token', 'hgt_000000000000_nope']);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/the registry at .* refused the token for Search \(401\)/);
    const unknown = await send([...base(), '--data-dir', dir, '--type', 'Nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/--type Nope: no such event type in the registry at /);
  });
});
