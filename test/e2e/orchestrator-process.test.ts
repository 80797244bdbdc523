/**
 * `hourglass orchestrator` as a process of its own: it applies the type folders, serves the
 * registry API with tokens made by `hourglass tokens`, and its reconcile loop provisions a type
 * registered through the API.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hourglass, startOrchestrator } from '../support/dev-process.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('hourglass orchestrator', () => {
  it('serves the registry API and provisions what is registered through it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-orchestrator-'));
    dirs.push(dir);
    const orch = await startOrchestrator(['--data-dir', dir]);
    try {
      expect((await fetch(`${orch.url}/readyz`)).status).toBe(200);
      const token = (await hourglass(['tokens', 'create', '--owner', 'discovery', '--data-dir', dir])).trim();
      const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const list = (await (await fetch(`${orch.url}/v1/event-types`, { headers: auth })).json()) as {
        eventTypes: { name: string }[];
      };
      // an owner token lists its owner's types only (none yet); an admin's lists all
      expect(list.eventTypes).toEqual([]);
      const admin = (await hourglass(['tokens', 'create', '--owner', 'ops', '--admin', '--data-dir', dir])).trim();
      const all = (await (
        await fetch(`${orch.url}/v1/event-types`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as {
        eventTypes: { name: string }[];
      };
      expect(all.eventTypes.map((t) => t.name)).toEqual(['EndSong', 'PageView', 'UserCreate']);
      const created = await fetch(`${orch.url}/v1/event-types`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({
          name: 'Search',
          owner: 'discovery',
          tier: 'normal',
          schema: { type: 'record', name: 'Search', fields: [{ name: 'query', type: 'string' }] },
        }),
      });
      expect(created.status).toBe(201);
      // the reconcile pass ran before the answer: the topic and subscription exist
      expect(await readdir(join(dir, 'bus', 'topics'))).toContain('hourglass.Search');
      expect(await readdir(join(dir, 'bus', 'subscriptions'))).toContain('hourglass.Search.etl');
      expect((await fetch(`${orch.url}/v1/event-types`)).status).toBe(401);
      // the orchestrator serves the dashboard, its JSON and its metrics too
      expect((await fetch(`${orch.url}/dashboard`)).headers.get('content-type')).toContain('text/html');
      expect((await fetch(`${orch.url}/v1/dashboard?hours=2`)).status).toBe(401);
      const grid = (await (
        await fetch(`${orch.url}/v1/dashboard?hours=2`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as { types: { name: string }[] };
      expect(grid.types.map((t) => t.name)).toContain('EndSong');
      expect(await (await fetch(`${orch.url}/metrics`)).text()).toMatch(/hourglass_bus_backlog_messages\{/);
      expect(await orch.stop()).toBe(0);
    } finally {
      await orch.kill().catch(() => undefined);
    }
  }, 60_000);
});
