/** `GET /` on the port that serves the dashboard redirects to it: the ingress port, or `ingress.adminPort`. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startPipeline } from '../../cli/pipeline.js';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { SCHEMAS_DIR } from '../support/ingress-harness.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function pipelineWith(overrides: Record<string, unknown>) {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-home-'));
  dirs.push(dir);
  const config = loadConfig({
    overrides: { dataDir: dir, schemasDir: SCHEMAS_DIR, 'ingress.port': 0, logLevel: 'silent', ...overrides },
  });
  return startPipeline(config, silentLogger(), { etl: false });
}

const home = (url: string) => fetch(`${url}/`, { redirect: 'manual' });

describe('GET /', () => {
  it('redirects to the dashboard on the ingress port', async () => {
    const p = await pipelineWith({});
    try {
      expect(p.adminUrl).toBe(p.url);
      const res = await home(p.url);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('/dashboard');
      expect((await fetch(new URL(res.headers.get('location') as string, p.url))).status).toBe(200);
    } finally {
      await p.close();
    }
  });

  it('redirects on the admin port when ingress.adminPort serves the dashboard, not on the events port', async () => {
    const p = await pipelineWith({ 'ingress.adminPort': 0 });
    try {
      expect(p.adminUrl).not.toBe(p.url);
      const res = await home(p.adminUrl);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('/dashboard');
      expect((await fetch(`${p.adminUrl}/dashboard`)).status).toBe(200);
      expect((await home(p.url)).status).toBe(404);
    } finally {
      await p.close();
    }
  });
});
