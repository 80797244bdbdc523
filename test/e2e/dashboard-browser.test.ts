/**
 * The dashboard in a real browser: Debian's Chromium, driven by playwright-core, against
 * `hourglass dev --time-scale 360` fed by `hourglass send`. The grid shows the types, a cell seen
 * `open` turns `published` on its own (the page refreshes itself), the published hour's detail
 * shows its manifest, the type panel shows throughput, reject reasons and alerts, and a full-page
 * screenshot lands in `test-results/dashboard.png`.
 *
 * Chromium must be installed at /usr/bin/chromium (`npm test` installs Debian's `chromium` when it
 * is missing); when it cannot start, this test fails.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { CELL_STATES } from '../../orchestrator/dashboard/dashboard-data.js';
import { launchChromium } from '../support/chromium.js';
import { type DevProcess, REPO_ROOT, startDev } from '../support/dev-process.js';

const TYPES = ['EndSong', 'PageView', 'UserCreate'];
const SCREENSHOT = join(REPO_ROOT, 'test-results', 'dashboard.png');
/** How long a cell seen open may take to be published (an hour is 10 s at ×360). */
const PUBLISH_WITHIN_MS = 90_000;

interface Manifest {
  type: string;
  start: string;
  rawEventsIn: number;
  duplicatesRemoved: number;
  eventsOut: number;
  ledgerTotal: number;
  files: { name: string; rows: number }[];
}

let dir: string | undefined;
let dev: DevProcess | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
let sender: ChildProcess | undefined;
let sent: Promise<string> | undefined;
const pageErrors: string[] = [];

/** The cell the test follows from open to published. */
let followed: { hour: string; firstState: string } | undefined;

afterAll(async () => {
  if (sender !== undefined && sender.exitCode === null && sender.signalCode === null) sender.kill('SIGKILL');
  await sent?.catch(() => undefined);
  await browser?.close().catch(() => undefined);
  if (dev !== undefined) await dev.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} did not start (see the first failing test)`);
  return value;
}

/** `hourglass send` as a child process that the suite can stop; resolves with its stdout. */
function send(url: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    sender = execFile(
      process.execPath,
      ['bin/hourglass.js', 'send', '--url', url, ...args],
      { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`hourglass send failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/**
 * The page's document as browser-side functions see it (this file is typed without the DOM
 * library; the functions run in the page, so they name `globalThis.document` themselves).
 */
interface PageGlobal {
  readonly document: {
    getElementById(id: string): { readonly dataset: Record<string, string> };
    querySelectorAll(selector: string): Iterable<{ readonly dataset: Record<string, string> }>;
  };
}

const cell = (type: string, hour: string): string => `button.cell[data-type="${type}"][data-hour="${hour}"]`;

describe('dashboard in Chromium', () => {
  it('starts hourglass dev and Chromium, and shows one grid row per type', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourglass-dashboard-'));
    dev = await startDev(
      ['--data-dir', join(dir, 'data'), '--time-scale', '360', '--schemas', join(REPO_ROOT, 'schemas')],
      60_000,
    );
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));

    const response = await page.goto(`${dev.url}/dashboard?refresh=500`, { timeout: 60_000 });
    expect(response?.status()).toBe(200);
    // no data without a token: the page asks for one
    await page.locator('#token-form').waitFor({ state: 'visible', timeout: 60_000 });
    await page.locator('#token-input').fill(dev.token as string);
    await page.locator('#token-form button[type="submit"]').click();
    await page.locator('#token-form').waitFor({ state: 'hidden' });
    await page.locator('#refreshed:not([data-count="0"])').waitFor({ timeout: 60_000 });

    const rows = await page
      .locator('#grid tbody tr[data-type]')
      .evaluateAll((trs) => trs.map((tr) => (tr as unknown as { dataset: { type: string } }).dataset.type));
    expect(rows).toEqual(TYPES);
    for (const t of TYPES) {
      expect(await page.locator(`button.cell[data-type="${t}"]`).count()).toBe(48);
    }
    const hours = await page
      .locator('button.cell[data-type="EndSong"]')
      .evaluateAll((bs) => bs.map((b) => (b as unknown as { dataset: { hour: string } }).dataset.hour));
    expect(hours.every((h) => /^\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z$/.test(h))).toBe(true);
    expect(new Date(hours[47] as string).getTime() - new Date(hours[0] as string).getTime()).toBe(47 * 3_600_000);

    // the header and the legend, from the API's answer
    expect(await page.locator('#now').textContent()).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
    expect(await page.locator('#time-scale').textContent()).toContain('360');
    expect(await page.locator('#alerts-firing').textContent()).toMatch(/^\d+$/);
    const legend = await page
      .locator('#legend li')
      .evaluateAll((lis) =>
        lis.map((li) => (li as unknown as { dataset: { legendState: string } }).dataset.legendState),
      );
    expect(legend).toEqual(Object.keys(CELL_STATES));
  }, 150_000);

  it('follows a cell from open to published as the page refreshes itself', async () => {
    const p = started(page, 'the browser');
    const d = started(dev, 'hourglass dev');
    sent = send(d.url, [
      ...d.keyArgs,
      '--type',
      'EndSong,PageView',
      '--rate',
      '300',
      '--duration',
      '20',
      '--duplicates',
      '0.05',
      '--json',
    ]);
    sent.catch(() => undefined); // awaited below; a failure is reported there

    // an EndSong hour receiving events right now (`open`), or just ended (`closing`)
    const seen = (await // (a function, not a string: the page's CSP forbids evaluating strings)
    (
      await p.waitForFunction(
        () => {
          const cell = [
            ...(globalThis as unknown as PageGlobal).document.querySelectorAll('button.cell[data-type="EndSong"]'),
          ].find((b) => (b.dataset.state === 'open' || b.dataset.state === 'closing') && Number(b.dataset.events) > 0);
          return cell ? { hour: cell.dataset.hour, state: cell.dataset.state } : null;
        },
        undefined,
        { polling: 200, timeout: 60_000 },
      )
    ).jsonValue()) as { hour: string; state: string };
    expect(['open', 'closing']).toContain(seen.state);
    followed = { hour: seen.hour, firstState: seen.state };

    // the same cell, without reloading the page, until it is published (`late` if late events
    // came in); on the way it may show `closing`, `closed`, or `at_risk` (a high-tier hour's budget
    // is 30 s of real time at ×360), never `failed`
    const target = p.locator(cell('EndSong', followed.hour));
    const states = [followed.firstState];
    const deadline = Date.now() + PUBLISH_WITHIN_MS;
    for (;;) {
      const state = await target.getAttribute('data-state');
      if (state !== null && state !== states.at(-1)) states.push(state);
      if (state === 'published' || state === 'late') break;
      if (Date.now() > deadline) {
        throw new Error(`EndSong ${followed.hour} not published in ${PUBLISH_WITHIN_MS} ms: ${states.join(' → ')}`);
      }
      await sleep(200);
    }
    expect(states.filter((s) => s === 'failed' || s === 'none')).toEqual([]);
    expect(Number(await target.getAttribute('data-out'))).toBeGreaterThan(0);
    expect(await target.getAttribute('title')).toMatch(/\nledger [\d,]+ · out [\d,]+ · duplicates [\d,]+/);

    const result = JSON.parse((await sent).trim().split('\n').pop() as string) as { accepted: number };
    expect(result.accepted).toBeGreaterThan(1_000);
  }, 180_000);

  it("opens a published hour's detail with its manifest, kept open across refreshes", async () => {
    const p = started(page, 'the browser');
    const f = started(followed, 'the followed cell');
    const target = p.locator(cell('EndSong', f.hour));
    const out = Number(await target.getAttribute('data-out'));
    const events = Number(await target.getAttribute('data-events'));
    await target.click();

    const detail = p.locator(`#hour-detail[data-type="EndSong"][data-hour="${f.hour}"]`);
    await detail.locator('#manifest[data-empty="false"]').waitFor();
    const manifest = JSON.parse((await detail.locator('#manifest').textContent()) as string) as Manifest;
    expect(manifest.type).toBe('EndSong');
    expect(manifest.start).toBe(f.hour);
    expect(manifest.eventsOut).toBe(out);
    expect(manifest.eventsOut).toBeGreaterThan(0);
    expect(manifest.ledgerTotal).toBe(events);
    expect(manifest.eventsOut).toBe(manifest.rawEventsIn - manifest.duplicatesRemoved);
    expect(manifest.files.reduce((n, file) => n + file.rows, 0)).toBe(manifest.eventsOut);

    // the panel's own figures agree with the manifest
    const field = async (name: string): Promise<string> =>
      ((await detail.locator(`tr[data-field="${name}"] td`).textContent()) ?? '').trim();
    expect(['published', 'late']).toContain(await field('state'));
    expect(await field('out')).toBe(manifest.eventsOut.toLocaleString('en-US'));
    expect(await field('in')).toBe(manifest.rawEventsIn.toLocaleString('en-US'));
    expect(await field('duplicates')).toBe(manifest.duplicatesRemoved.toLocaleString('en-US'));
    expect(await field('timeliness')).toMatch(/^(met|missed)$/);
    expect(await field('budgetUsed')).toMatch(/%$/);
    expect(await field('deadline')).toMatch(/UTC$/);

    // the cell's type panel opens with it
    await p.locator('#type-panel[data-type="EndSong"] svg.chart').waitFor();

    // two more refreshes: the detail stays open on the same hour
    const count = Number(await p.locator('#refreshed').getAttribute('data-count'));
    await p.waitForFunction(
      (n) => Number((globalThis as unknown as PageGlobal).document.getElementById('refreshed').dataset.count) >= n,
      count + 2,
      {
        polling: 100,
        timeout: 30_000,
      },
    );
    expect(await detail.isVisible()).toBe(true);
    expect(await p.locator(cell('EndSong', f.hour)).getAttribute('class')).toContain('selected');
    expect(JSON.parse((await p.locator('#manifest').textContent()) as string)).toEqual(manifest);
  }, 120_000);

  it("opens a type's panel from its name, with throughput and reject reasons", async () => {
    const p = started(page, 'the browser');
    const d = started(dev, 'hourglass dev');
    // one valid and one invalid PageView: the reject reason shows up in the panel
    const res = await fetch(`${d.url}/v1/events`, {
      method: 'POST',
      headers: d.headers,
      body: JSON.stringify({
        events: [
          {
            type: 'PageView',
            id: 'dash-pv-1',
            payload: {
              sessionId: 's1',
              userId: null,
              url: '/',
              referrer: null,
              loadTimeMs: 87,
              viewport: { width: 1280, height: 800 },
              experiments: [],
            },
          },
          {
            type: 'PageView',
            id: 'dash-pv-2',
            payload: { sessionId: 's1', url: '/<b>search</b>', loadTimeMs: 'fast' },
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'schema_violation' }] });

    await p.locator('.type-name[data-type="PageView"]').click();
    const panel = p.locator('#type-panel[data-type="PageView"]');
    await panel.locator('svg.chart').waitFor();
    expect(await p.locator('tr.selected-type').getAttribute('data-type')).toBe('PageView');
    const reason = panel.locator('#reject-reasons tbody tr', { hasText: 'payload.loadTimeMs' });
    await reason.waitFor();
    expect(await reason.locator('td').first().textContent()).toBe('schema_violation');
    expect(Number(await reason.locator('td').nth(2).textContent())).toBeGreaterThanOrEqual(1);
    expect(await panel.locator('#rejects-total').textContent()).toMatch(/^[1-9][\d,]* rejected/);

    // hourly throughput: the published hours' rows carry their counts
    const throughputRows = await panel.locator('#throughput-table tbody tr').count();
    expect(throughputRows).toBeGreaterThan(0);
    // a bar of published events (empty hours published before the traffic have bars of height 0)
    await panel.locator('svg.chart rect.bar-out:not([height="0.0"])').first().waitFor();
    expect(await panel.locator('h3', { hasText: 'Alerts' }).textContent()).toMatch(
      /^Alerts \(\d+ firing, \d+ resolved\)$/,
    );

    // the hour detail of the EndSong cell stays open next to the PageView panel
    expect(await p.locator('#hour-detail').isVisible()).toBe(true);
    expect(await p.locator('#error-banner').isHidden()).toBe(true);
    expect(pageErrors).toEqual([]);
  }, 90_000);

  it('saves a full-page screenshot', async () => {
    const p = started(page, 'the browser');
    await mkdir(join(REPO_ROOT, 'test-results'), { recursive: true });
    const png = await p.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  }, 60_000);
});
