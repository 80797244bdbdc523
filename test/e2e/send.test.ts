/** `hourglass send` against a real ingress: its JSON summary matches what the ingress and bus saw. */
import { type AddressInfo, createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSend, type SendSummary } from '../../cli/send.js';
import { drain, type Harness, SCHEMAS_DIR, startHarness } from '../support/ingress-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

async function send(args: string[]): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  stderr.resume();
  const code = await runSend([...args, '--schemas', SCHEMAS_DIR], { stdout, stderr });
  return { code, out };
}

describe('hourglass send', () => {
  it('reports accepted, rejected and distinct ids exactly as the ingress saw them', async () => {
    const { code, out } = await send([
      '--url',
      h.url,
      '--type',
      'EndSong,PageView',
      '--rate',
      '3000',
      '--duration',
      '1.5',
      '--invalid',
      '0.1',
      '--duplicates',
      '0.1',
      '--batch',
      '50',
      '--seed',
      '5',
      '--json',
    ]);
    expect(code).toBe(0);
    const summary = JSON.parse(out.trim().split('\n').pop() as string) as SendSummary;
    expect(summary.sent).toBeGreaterThan(3000);
    expect(summary.sent).toBeLessThan(6000);
    expect(summary.accepted + summary.rejected).toBe(summary.sent);
    expect(summary.rejected / summary.sent).toBeGreaterThan(0.05);
    expect(summary.rejected / summary.sent).toBeLessThan(0.15);
    expect(summary.distinctAcceptedIds).toBeLessThan(summary.accepted);
    expect(Object.keys(summary.rejectedByCode).sort()).toEqual(['missing_id', 'schema_violation', 'unknown_type']);
    for (const value of [summary.eventsPerSec, summary.p50Ms, summary.p99Ms]) expect(value).toBeGreaterThan(0);

    const endSongs = await drain(h.bus, 'hourglass.EndSong.etl', 1);
    const pageViews = await drain(h.bus, 'hourglass.PageView.etl', 1);
    const all = new Map([...endSongs, ...pageViews]);
    const onBus = [...endSongs.values(), ...pageViews.values()].reduce((a, b) => a + b, 0);
    expect(onBus).toBe(summary.accepted);
    expect(all.size).toBe(summary.distinctAcceptedIds);
  });

  it('counts a server that is not there as network errors and exits 1', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { code, out } = await send([
      '--url',
      `http://127.0.0.1:${port}`,
      '--rate',
      '100',
      '--duration',
      '0.3',
      '--json',
    ]);
    expect(code).toBe(1);
    const summary = JSON.parse(out.trim().split('\n').pop() as string) as {
      accepted: number;
      httpErrors: Record<string, number>;
    };
    expect(summary.accepted).toBe(0);
    expect(summary.httpErrors.network).toBeGreaterThan(0);
  });

  it('refuses bad arguments with exit 2 naming the flag', async () => {
    await expect(send(['--rate', 'fast'])).rejects.toThrow(/--rate must be a number/);
    await expect(send(['--type', 'Nope', '--url', h.url])).rejects.toThrow(/--type Nope: no such event type/);
  });
});
