/**
 * Browsers as producers (CORS per key), in Debian's Chromium: a page served from an origin the key
 * lists posts events with its key and gets 200; a page of another origin using the same key is
 * refused (the browser sees no CORS answer, the ingress answers 403 origin_not_allowed).
 * Chromium must be installed at /usr/bin/chromium (`npm test` installs it where apt is there).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { type DevProcess, hourglass, startDev } from '../support/dev-process.js';
import { pageView } from '../support/ingress-harness.js';

let dir = '';
let dev: DevProcess | undefined;
let browser: Browser | undefined;
const sites: Server[] = [];

/** A site on its own port (its own origin) serving an empty page. */
async function site(): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>shop</title><p>shop</p>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  sites.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hourglass-cors-'));
  dev = await startDev(['--data-dir', dir, '--no-etl']);
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await dev?.stop();
  for (const s of sites) s.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a browser page as a producer', () => {
  it('posts from an allowed origin with its key; another origin is refused', async () => {
    const d = dev as DevProcess;
    const shop = await site();
    const evil = await site();
    const created = await hourglass([
      'keys',
      'create',
      '--producer',
      'shop-web',
      '--types',
      'PageView',
      '--origins',
      shop,
      '--data-dir',
      dir,
    ]);
    const key = created.trim().split('\n').pop() as string;
    const page = await (browser as Browser).newPage();
    const postFrom = async (origin: string): Promise<{ status: number; body: unknown } | { error: string }> => {
      await page.goto(origin);
      return page.evaluate(
        async ({ url, key, event }) => {
          try {
            const res = await fetch(`${url}/v1/events`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
              body: JSON.stringify({ events: [event] }),
            });
            return { status: res.status, body: await res.json() };
          } catch (err) {
            return { error: String(err) };
          }
        },
        { url: d.url, key, event: { type: 'PageView', id: `web-${Date.now()}`, payload: pageView() } },
      );
    };
    const ok = await postFrom(shop);
    expect(ok).toMatchObject({ status: 200, body: { accepted: 1 } });
    // the browser blocks the answer to another origin: the page sees a network error
    const refused = await postFrom(evil);
    expect(refused).toMatchObject({ error: expect.stringMatching(/Failed to fetch/) });
    // what the ingress answered that page
    const direct = await fetch(`${d.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, origin: evil },
      body: JSON.stringify({ events: [{ type: 'PageView', id: 'x', payload: pageView() }] }),
    });
    expect(direct.status).toBe(403);
    expect(((await direct.json()) as { error: { code: string } }).error.code).toBe('origin_not_allowed');
  }, 60_000);
});
