/**
 * Limits that cannot leak or amplify: the in-flight byte budget comes back to zero however requests
 * end (raw sockets against a listening server, 1,000 requests of each way to end), readiness fails
 * while it is exhausted, the batch and event limits hold before the body is parsed, and the
 * connection cap closes connections beyond it.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, endSong, type Harness, startHarness } from '../support/ingress-harness.js';

/** Declared body size of the cut uploads (under the default 5 MiB body limit). */
const DECLARED = 5_000_000;

async function gauge(h: Harness): Promise<number> {
  const res = await h.ingress.app.inject({ method: 'GET', url: '/metrics' });
  const m = /^hourglass_ingress_in_flight_bytes (\d+)$/m.exec(res.body);
  return Number(m?.[1]);
}

async function until(what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await what()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Opened {
  readonly socket: Socket;
  /** Everything the server sent. */
  readonly received: () => string;
  readonly closed: Promise<void>;
}

/** Connects to the server and writes `data`; resolves once written. */
async function open(url: string, data: string | Buffer): Promise<Opened> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let got = '';
  socket.on('data', (d: Buffer) => {
    got += d.toString('latin1');
  });
  socket.on('error', () => undefined); // resets are part of the game
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  await new Promise<void>((resolve) => socket.write(data, () => resolve()));
  return { socket, received: () => got, closed };
}

const head = (headers: string) => `POST /v1/events HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;
const batchText = (prefix: string, n: number) =>
  JSON.stringify({
    events: Array.from({ length: n }, (_, i) => ({ type: 'EndSong', id: `${prefix}-${i}`, payload: endSong() })),
  });

async function postBatch(h: Harness, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${h.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

describe('the in-flight byte budget is released however a request ends', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      ingress: {
        // room for every cut upload of a wave at once, so each one really holds its share
        maxInFlightBytes: 16 * 1024 * 1024 * 1024,
        requestTimeoutRealMs: 600,
        headersTimeoutRealMs: 600,
      },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  const partial = 'x'.repeat(1000);
  const PER_KIND = 1000;
  const kinds: {
    name: string;
    data: () => string;
    /** Bytes each request holds until it ends (checked mid-wave), or 0 when it is not held. */
    holds: number;
    /** How the client ends it: destroy the socket, or wait for the server to close it. */
    end: 'destroy' | 'server';
    wave: number;
  }[] = [
    {
      name: 'declared Content-Length, body cut mid-way',
      data: () => head(`Content-Type: application/json\r\nContent-Length: ${DECLARED}\r\n`) + partial,
      holds: DECLARED,
      end: 'destroy',
      wave: 100,
    },
    {
      name: 'chunked, cut mid-way',
      data: () =>
        `${head('Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n')}3e8\r\n${partial}\r\n100\r\n{"e`,
      holds: 5 * 1024 * 1024,
      end: 'destroy',
      wave: 100,
    },
    {
      name: 'wrong content type, cut mid-way',
      data: () => head(`Content-Type: text/plain\r\nContent-Length: ${DECLARED}\r\n`) + partial,
      holds: 0,
      end: 'destroy',
      wave: 100,
    },
    {
      name: 'cut mid-headers',
      data: () => 'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Le',
      holds: 0,
      end: 'destroy',
      wave: 100,
    },
    {
      name: 'complete, the client gone before the answer',
      data: () => {
        const body = batchText(`gone-${Math.random().toString(36).slice(2)}`, 3);
        return head(`Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`) + body;
      },
      holds: 0,
      end: 'destroy',
      wave: 100,
    },
    {
      name: 'ended by the request timeout (408)',
      data: () => head(`Content-Type: application/json\r\nContent-Length: ${DECLARED}\r\n`) + partial,
      holds: DECLARED,
      end: 'server',
      wave: 250,
    },
  ];

  it.each(kinds)(
    '$name: 1,000 of them leave the gauge at 0',
    async (kind) => {
      let held = 0;
      for (let done = 0; done < PER_KIND; done += kind.wave) {
        const n = Math.min(kind.wave, PER_KIND - done);
        const wave = await Promise.all(Array.from({ length: n }, () => open(h.url, kind.data())));
        if (kind.holds > 0) {
          // every request of the wave took its share of the budget before it ends
          expect(await until(async () => (await gauge(h)) === n * kind.holds, 5000)).toBe(true);
          held = Math.max(held, await gauge(h));
        }
        if (kind.end === 'destroy') {
          for (const o of wave) o.socket.destroy();
        } else {
          await Promise.all(wave.map((o) => o.closed));
          for (const o of wave) expect(o.received()).toMatch(/^HTTP\/1\.1 408/);
        }
        await Promise.all(wave.map((o) => o.closed));
      }
      if (kind.holds > 0) expect(held).toBe(kind.wave * kind.holds);
      expect(await until(async () => (await gauge(h)) === 0, 3000)).toBe(true);
      const ok = await postBatch(h, batchText(`after-${kind.name.length}-${kind.holds}`, 2));
      expect(ok.status).toBe(200);
      expect(await gauge(h)).toBe(0);
    },
    60_000,
  );

  it('a request refused with 429 holds nothing, and the budget is whole again after', async () => {
    const small = await startHarness({ ingress: { maxInFlightBytes: 2 * DECLARED } });
    try {
      const holders = await Promise.all(
        [0, 1].map(() => open(small.url, head(`Content-Type: application/json\r\nContent-Length: ${DECLARED}\r\n`))),
      );
      expect(await until(async () => (await gauge(small)) === 2 * DECLARED, 5000)).toBe(true);
      const refused = await postBatch(small, batchText('refused', 1));
      expect(refused.status).toBe(429);
      expect(await gauge(small)).toBe(2 * DECLARED);
      for (const o of holders) o.socket.destroy();
      expect(await until(async () => (await gauge(small)) === 0, 3000)).toBe(true);
      expect((await postBatch(small, batchText('whole-again', 1))).status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('requests refused by a hook after the reservation (producer keys)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ ingress: { auth: true, maxInFlightBytes: 16 * 1024 * 1024 * 1024 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('1,000 requests answered 401 (no key, or an unknown one looked up asynchronously) leave the gauge at 0', async () => {
    const unknownKey = 'hgk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    for (let done = 0; done < 1000; done += 100) {
      const wave = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          open(
            h.url,
            head(
              `Content-Type: application/json\r\nContent-Length: ${DECLARED}\r\n${i % 2 === 0 ? '' : `Authorization: Bearer ${unknownKey}\r\n`}`,
            ) + 'x'.repeat(100),
          ),
        ),
      );
      // answered before the body is read; half of the clients leave at once, half after the answer
      await Promise.all(
        wave.map(async (o, i) => {
          if (i % 4 === 0) o.socket.destroy();
          else await until(async () => o.received().length > 0, 5000);
          o.socket.destroy();
          await o.closed;
        }),
      );
      for (const [i, o] of wave.entries()) if (i % 4 !== 0) expect(o.received()).toMatch(/^HTTP\/1\.1 401/);
    }
    expect(await until(async () => (await gauge(h)) === 0, 3000)).toBe(true);
  }, 60_000);
});

describe('readiness while the budget is exhausted', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('/readyz fails inFlightBudget while uploads hold the budget, and recovers when they are gone', async () => {
    h = await startHarness(); // 64 MiB budget, 5 MiB bodies: 13 uploads of 5,000,000 bytes leave too little room
    const holders = await Promise.all(
      Array.from({ length: 13 }, () =>
        open(h.url, `${head(`Content-Type: application/json\r\nContent-Length: ${DECLARED}\r\n`)}{"events":[`),
      ),
    );
    expect(await until(async () => (await gauge(h)) === 13 * DECLARED, 5000)).toBe(true);
    const busy = await fetch(`${h.url}/readyz`);
    expect(busy.status).toBe(503);
    expect(((await busy.json()) as { checks: Record<string, boolean> }).checks).toMatchObject({
      inFlightBudget: false,
      bus: true,
    });
    for (const o of holders) o.socket.destroy();
    expect(await until(async () => (await gauge(h)) === 0, 3000)).toBe(true);
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect((await postBatch(h, batchText('ready-again', 1))).status).toBe(200);
  });
});

describe('batch and event limits before parsing', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('a 5 MiB batch of {} is answered 413 batch_too_large quickly, and the connection goes on', async () => {
    const body = `{"events":[${Array.from({ length: 1_700_000 }, () => '{}').join(',')}]}`;
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 10 }, () => postBatch(h, body)));
    const ms = performance.now() - started;
    for (const r of answers) {
      expect(r.status).toBe(413);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('batch_too_large');
    }
    expect(ms).toBeLessThan(3000);
    expect((await postBatch(h, batchText('after-413', 2))).status).toBe(200);
    expect(await until(async () => (await gauge(h)) === 0, 3000)).toBe(true);
  });

  it('an event over ingress.maxEventBytes is rejected unparsed (event_too_large); the rest goes through', async () => {
    const big = { type: 'EndSong', id: 'big-1', payload: endSong({ trackId: 'x'.repeat(4_900_000) }) };
    const events = [
      { type: 'EndSong', id: 'small-1', payload: endSong() },
      big,
      { type: 'EndSong', id: 'small-2', payload: endSong() },
      // just under the cap: parsed and judged as usual
      { type: 'EndSong', id: 'near-cap', payload: endSong({ trackId: 'y'.repeat(60_000) }) },
    ];
    const res = await postBatch(h, JSON.stringify({ events }));
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { accepted: number; rejected: Record<string, unknown>[] };
    expect(answer.accepted).toBe(3);
    expect(answer.rejected).toEqual([
      {
        index: 1,
        id: 'big-1',
        code: 'event_too_large',
        path: '',
        message: expect.stringMatching(/^the event is \d+ bytes of JSON; at most 65536 are allowed$/),
      },
    ]);
    const dead = await h.ingress.app.inject({
      method: 'GET',
      headers: await adminHeaders(h),
      url: '/v1/dead-letters/EndSong?limit=10',
    });
    const item = (dead.json() as { items: { eventId: string; code: string; event: string }[] }).items.find(
      (i) => i.eventId === 'big-1',
    );
    expect(item?.code).toBe('event_too_large');
    expect(item?.event.startsWith('{"type":"EndSong","id":"big-1"')).toBe(true);
    expect(item?.event.length).toBeLessThanOrEqual(4097);
  });

  it('fields of the body other than events are checked but never built', async () => {
    const junk = `[${Array.from({ length: 500_000 }, () => '{}').join(',')}]`;
    const res = await postBatch(
      h,
      `{"junk":${junk},"events":${JSON.stringify([{ type: 'EndSong', id: 'j-1', payload: endSong() }])}}`,
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(1);
    const bad = await postBatch(h, `{"junk":[1,],"events":[]}`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('malformed_json');
  });
});

describe('the connection cap', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ ingress: { maxConnections: 20, headersTimeoutRealMs: 1000, requestTimeoutRealMs: 1000 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('closes connections beyond ingress.maxConnections on arrival, and silent ones after the headers timeout', async () => {
    const started = Date.now();
    const silent = await Promise.all(Array.from({ length: 20 }, () => open(h.url, '')));
    const extra = await open(h.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await extra.closed;
    expect(extra.received()).toBe('');
    const metrics = await h.ingress.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^hourglass_ingress_connections_dropped_total [1-9]/m);
    // the silent ones are closed by the server once the headers timeout has passed
    await Promise.all(silent.map((o) => o.closed));
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(5000);
    const after = await open(h.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await after.closed;
    expect(after.received()).toMatch(/^HTTP\/1\.1 200/);
  });
});
