/**
 * When the bus cannot store events, the ingress answers 503 and reports nothing accepted; every
 * event it did answer as accepted is on the bus. The failure is real: the data dir lives on a
 * small tmpfs that we fill up mid-run (ENOSPC). (Remounting it read-only mid-run is refused by the
 * kernel while the bus holds files open for writing, so the full disk is the failure we make.)
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PublishFailed } from '../../core/errors.js';
import { drain, endSong, type Harness, pageView, startHarness } from '../support/ingress-harness.js';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.js';

let fs: Tmpfs | null = null;
let h: Harness | null = null;

afterEach(async () => {
  await h?.close().catch(() => undefined);
  fs?.unmount();
  fs = null;
  h = null;
});

interface Outcome {
  accepted: Set<string>;
  statuses: Map<number, number>;
  errorCodes: Set<string>;
}

async function sendBatches(
  url: string,
  prefix: string,
  rounds: number,
  outcome: Outcome,
  between?: (round: number) => void | Promise<void>,
) {
  for (let round = 0; round < rounds; round++) {
    await between?.(round);
    const batches = Array.from({ length: 4 }, (_, b) =>
      Array.from({ length: 20 }, (_, i) => ({
        type: 'EndSong',
        id: `${prefix}-${round}-${b}-${i}`,
        payload: endSong(),
      })),
    );
    await Promise.all(
      batches.map(async (events) => {
        const res = await fetch(`${url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events }),
        });
        const body = (await res.json()) as { accepted?: number; error?: { code: string } };
        outcome.statuses.set(res.status, (outcome.statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) {
          expect(body.accepted).toBe(events.length);
          for (const e of events) outcome.accepted.add(e.id);
        } else {
          expect(body).not.toHaveProperty('accepted');
          if (body.error) outcome.errorCodes.add(body.error.code);
        }
      }),
    );
  }
}

describe('bus write failure', () => {
  it('full disk: 503 while full, accepting again once space is freed, nothing accepted lost', async () => {
    fs = mountTmpfs(8 * 1024 * 1024);
    h = await startHarness({ dataDir: fs.path });
    const outcome: Outcome = { accepted: new Set(), statuses: new Map(), errorCodes: new Set() };
    const filler = join(fs.path, 'filler');
    const url = h.url;
    await sendBatches(h.url, 'full', 24, outcome, async (round) => {
      if (round === 8) {
        try {
          writeFileSync(filler, Buffer.alloc(16 * 1024 * 1024));
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
        }
      }
      if (round === 12) {
        const ready = await fetch(`${url}/readyz`);
        expect(ready.status).toBe(503);
        expect(((await ready.json()) as { checks: { bus: boolean } }).checks.bus).toBe(false);
      }
      if (round === 16) unlinkSync(filler);
    });
    expect(outcome.statuses.get(503)).toBeGreaterThan(0);
    expect(outcome.errorCodes).toEqual(new Set(['bus_unavailable']));
    expect(outcome.statuses.get(200)).toBeGreaterThan(0);
    const seen = await drain(h.bus, 'hourglass.EndSong.etl', outcome.accepted.size);
    for (const id of outcome.accepted) expect(seen.has(id), `accepted ${id} is on the bus`).toBe(true);
    expect((await fetch(`${url}/readyz`)).status).toBe(200); // ready again once publishes succeed
  });
});

describe('one type publish failing in a mixed batch', () => {
  it('answers 503 for the whole request; the ledger records only what the bus confirmed', async () => {
    h = await startHarness({
      wrapBus: (bus) =>
        new Proxy(bus, {
          get(target, prop, receiver) {
            if (prop === 'publish') {
              return async (topic: string, messages: Parameters<typeof target.publish>[1]) => {
                if (topic === 'hourglass.PageView') throw new PublishFailed({ topic, messages: messages.length });
                return target.publish(topic, messages);
              };
            }
            return Reflect.get(target, prop, receiver);
          },
        }),
    });
    const res = await h.ingress.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({
        events: [
          { type: 'EndSong', id: 'mix-1', payload: endSong() },
          { type: 'PageView', id: 'mix-2', payload: pageView() },
        ],
      }),
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      error: { code: 'bus_unavailable', message: expect.stringContaining('hourglass.PageView'), retriable: true },
    });
    await h.ingress.ledger.flush();
    const ledgers = await h.store.listLedgers({ instanceId: h.ingress.instanceId });
    expect(ledgers.find((l) => l.type === 'EndSong')?.count).toBe(1);
    expect(ledgers.find((l) => l.type === 'PageView')).toBeUndefined();
  });
});
