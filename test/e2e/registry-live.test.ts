/**
 * Self-service while `hourglass dev` runs (real clock): a type declared in the schemas folder and
 * applied is accepted end to end within 10 s, and so is its next version; the reconcile steps are
 * recorded.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hourglass as cli, type DevProcess, REPO_ROOT, startDev } from '../support/dev-process.js';

const dirs: string[] = [];
const hourglass = (...args: string[]): Promise<string> => cli(args);
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const search = (fields: object[]) => ({
  type: 'record',
  name: 'Search',
  namespace: 'hourglass.events',
  fields: [{ name: 'query', type: 'string' }, ...fields],
});

async function send(dev: DevProcess, version: number, payload: object): Promise<{ accepted: number; code?: string }> {
  const res = await fetch(`${dev.url}/v1/events`, {
    method: 'POST',
    headers: dev.headers,
    body: JSON.stringify({ events: [{ id: `s-${Math.random()}`, type: 'Search', version, payload }] }),
  });
  // before the new type's topic is provisioned the whole request is refused (503 topic_not_found)
  if (res.status !== 200) {
    const refused = (await res.json()) as { error?: { code?: string } };
    return { accepted: 0, code: refused.error?.code };
  }
  const body = (await res.json()) as { accepted: number; rejected: { code: string }[] };
  return { accepted: body.accepted, code: body.rejected[0]?.code };
}

/** Real ms until an event of `version` is accepted (polling every 100 ms, at most 20 s). */
async function acceptedAfter(dev: DevProcess, version: number, payload: object): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < 20_000) {
    if ((await send(dev, version, payload)).accepted === 1) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
  return Number.POSITIVE_INFINITY;
}

describe('self-service event types with hourglass dev running', () => {
  it('accepts a new type, then its new version, within 10 s of apply', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-live-'));
    dirs.push(dir);
    const schemas = join(dir, 'schemas');
    await cp(join(REPO_ROOT, 'schemas'), schemas, { recursive: true });
    const data = join(dir, 'data');
    const dev = await startDev(['--data-dir', data, '--schemas', schemas]);
    try {
      expect((await send(dev, 1, { query: 'x' })).code).toBe('unknown_type');

      await mkdir(join(schemas, 'Search'));
      await writeFile(
        join(schemas, 'Search', 'type.json'),
        JSON.stringify({ name: 'Search', owner: 'discovery', tier: 'normal' }),
      );
      await writeFile(join(schemas, 'Search', 'v1.avsc'), JSON.stringify(search([])));
      await hourglass('types', 'apply', schemas, '--data-dir', data);
      const v1 = await acceptedAfter(dev, 1, { query: 'jazz' });
      expect(v1).toBeLessThanOrEqual(10_000);

      await writeFile(
        join(schemas, 'Search', 'v2.avsc'),
        JSON.stringify(search([{ name: 'results', type: 'int', default: 0 }])),
      );
      await hourglass('types', 'apply', schemas, '--data-dir', data);
      const v2 = await acceptedAfter(dev, 2, { query: 'jazz', results: 7 });
      expect(v2).toBeLessThanOrEqual(10_000);

      console.info(`new type accepted ${v1} ms after apply; new version ${v2} ms after apply`);
      const shown = JSON.parse(await hourglass('types', 'show', 'Search', '--data-dir', data, '--format', 'json')) as {
        versions: unknown[];
        steps: { step: string; status: string }[];
      };
      expect(shown.versions).toHaveLength(2);
      expect(shown.steps.map((s) => [s.step, s.status])).toEqual([
        ['alerts', 'done'],
        ['bus', 'done'],
        ['consumer', 'done'],
      ]);
    } finally {
      await dev.stop();
    }
  }, 90_000);
});
