/**
 * Every kind of bad input gets its exact answer, and the server stays up with bounded memory.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, drain, endSong, type Harness, pageView, startHarness } from '../support/ingress-harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    ingress: {
      bodyLimitBytes: 256 * 1024,
      maxEventsPerBatch: 50,
      requestTimeoutRealMs: 600,
      headersTimeoutRealMs: 600,
    },
    types: (types) => [
      ...types,
      { ...(types.find((t) => t.name === 'PageView') as (typeof types)[number]), name: 'OldThing', status: 'retired' },
    ],
  });
});
afterAll(async () => {
  await h.close();
});

async function post(body: string | Buffer, contentType: string | null = 'application/json') {
  const res = await h.ingress.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: contentType === null ? {} : { 'content-type': contentType },
    payload: body,
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

function errorCode(r: { body: Record<string, unknown> }): string {
  return (r.body.error as { code: string }).code;
}

describe('request-level answers', () => {
  it.each([
    ['malformed JSON', '{"events": [', 400, 'malformed_json'],
    ['truncated JSON', '{"events": [{"type": "EndSong"', 400, 'malformed_json'],
    ['not an object: array', '[]', 400, 'invalid_body'],
    ['not an object: string', '"events"', 400, 'invalid_body'],
    ['not an object: number', '42', 400, 'invalid_body'],
    ['not an object: null', 'null', 400, 'invalid_body'],
    ['events missing', '{"batch": []}', 400, 'invalid_body'],
    ['events not an array', '{"events": {"0": {}}}', 400, 'invalid_body'],
    ['empty batch', '{"events": []}', 400, 'empty_batch'],
  ])('%s → %i %s', async (_name, body, status, code) => {
    const r = await post(body);
    expect(r.status).toBe(status);
    expect(errorCode(r)).toBe(code);
    expect(r.body).not.toHaveProperty('accepted');
  });

  it('batch over the count limit → 413 batch_too_large', async () => {
    const events = Array.from({ length: 51 }, (_, i) => ({ type: 'EndSong', id: `count-${i}`, payload: endSong() }));
    const r = await post(JSON.stringify({ events }));
    expect(r.status).toBe(413);
    expect(errorCode(r)).toBe('batch_too_large');
  });

  it('body over the byte limit → 413 body_too_large', async () => {
    const r = await post(
      JSON.stringify({ events: [{ type: 'EndSong', id: 'big', payload: endSong({ trackId: 'x'.repeat(300_000) }) }] }),
    );
    expect(r.status).toBe(413);
    expect(errorCode(r)).toBe('body_too_large');
  });

  it('wrong content type → 415', async () => {
    const r = await post('{"events":[]}', 'text/plain');
    expect(r.status).toBe(415);
    expect(errorCode(r)).toBe('unsupported_media_type');
  });

  it('missing content type → 415', async () => {
    const r = await post('{"events":[]}', null);
    expect(r.status).toBe(415);
    expect(errorCode(r)).toBe('unsupported_media_type');
  });

  it('content type with charset parameter is accepted', async () => {
    const r = await post(
      JSON.stringify({ events: [{ type: 'EndSong', id: 'charset-1', payload: endSong() }] }),
      'application/json; charset=utf-8',
    );
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
  });

  it('non-UTF-8 bytes → 400 invalid_encoding', async () => {
    const prefix = Buffer.from('{"events":[{"type":"EndSong","id":"enc-1","payload":{"userId":"');
    const suffix = Buffer.from('"}}]}');
    const r = await post(Buffer.concat([prefix, Buffer.from([0xc3, 0x28, 0xff, 0xfe]), suffix]));
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe('invalid_encoding');
  });

  it('deeply nested junk as the body → 400, server still answers', async () => {
    const depth = 100_000;
    const r = await post(`${'['.repeat(depth)}${']'.repeat(depth)}`);
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe('invalid_body');
    const ok = await post(JSON.stringify({ events: [{ type: 'EndSong', id: 'after-deep', payload: endSong() }] }));
    expect(ok.status).toBe(200);
  });

  it('unknown route → 404 not_found', async () => {
    const res = await h.ingress.app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });
});

describe('per-event rejections (the rest of the batch goes through)', () => {
  const cases: [string, unknown, string, string, RegExp][] = [
    ['not an object', 'EndSong', 'invalid_event', '', /JSON object/],
    ['unknown type', { type: 'NoSuchType', id: 'r-1', payload: {} }, 'unknown_type', 'type', /NoSuchType/],
    ['retired type', { type: 'OldThing', id: 'r-2', payload: pageView() }, 'retired_type', 'type', /retired/],
    ['missing type', { id: 'r-3', payload: endSong() }, 'missing_type', 'type', /required/],
    ['missing id', { type: 'EndSong', payload: endSong() }, 'missing_id', 'id', /required/],
    ['id not a string', { type: 'EndSong', id: 17, payload: endSong() }, 'invalid_id', 'id', /string/],
    [
      'id too long',
      { type: 'EndSong', id: 'x'.repeat(129), payload: endSong() },
      'invalid_id',
      'id',
      /longer than 128/,
    ],
    ['id with spaces', { type: 'EndSong', id: 'a b', payload: endSong() }, 'invalid_id', 'id', /printable ASCII/],
    [
      'unknown version',
      { type: 'EndSong', id: 'r-4', version: 9, payload: endSong() },
      'unknown_version',
      'version',
      /versions 1 to 2/,
    ],
    [
      'bad version',
      { type: 'EndSong', id: 'r-5', version: 'two', payload: endSong() },
      'invalid_version',
      'version',
      /positive integer/,
    ],
    [
      'bad client time',
      { type: 'EndSong', id: 'r-6', time: 'yesterday', payload: endSong() },
      'invalid_time',
      'time',
      /ISO-8601/,
    ],
    ['missing payload', { type: 'EndSong', id: 'r-7' }, 'missing_payload', 'payload', /required/],
    ['payload not an object', { type: 'EndSong', id: 'r-8', payload: [1, 2] }, 'missing_payload', 'payload', /object/],
    [
      'extra envelope field',
      { type: 'EndSong', id: 'r-9', payload: endSong(), user: 'x' },
      'unknown_field',
      'user',
      /envelope/,
    ],
    [
      'wrong field type',
      { type: 'EndSong', id: 'r-10', payload: endSong({ durationMs: '181000' }) },
      'schema_violation',
      'payload.durationMs',
      /expected long.*got string/,
    ],
    [
      'fractional long',
      { type: 'EndSong', id: 'r-11', payload: endSong({ durationMs: 1.5 }) },
      'schema_violation',
      'payload.durationMs',
      /expected long/,
    ],
    [
      'unsafe long',
      { type: 'EndSong', id: 'r-12', payload: endSong({ durationMs: 2 ** 60 }) },
      'schema_violation',
      'payload.durationMs',
      /beyond/,
    ],
    [
      'missing field',
      { type: 'EndSong', id: 'r-13', payload: endSong({ trackId: undefined }) },
      'schema_violation',
      'payload.trackId',
      /required field missing/,
    ],
    [
      'extra payload field',
      { type: 'EndSong', id: 'r-14', payload: endSong({ mood: 'happy' }) },
      'schema_violation',
      'payload.mood',
      /undeclared field/,
    ],
    [
      'bad enum symbol',
      { type: 'EndSong', id: 'r-15', payload: endSong({ reasonEnd: 'BORED' }) },
      'schema_violation',
      'payload.reasonEnd',
      /one of TRACK_DONE/,
    ],
    [
      'bad map value',
      { type: 'EndSong', id: 'r-16', payload: endSong({ context: { a: 1 } }) },
      'schema_violation',
      'payload.context.a',
      /expected string/,
    ],
    [
      'nullable with wrong type',
      { type: 'EndSong', id: 'r-17', payload: endSong({ playlistId: 5 }) },
      'schema_violation',
      'payload.playlistId',
      /null or string/,
    ],
    [
      'nested record field',
      { type: 'PageView', id: 'r-18', payload: pageView({ viewport: { width: 1 } }) },
      'schema_violation',
      'payload.viewport.height',
      /required field missing/,
    ],
    [
      'array item',
      { type: 'PageView', id: 'r-19', payload: pageView({ experiments: ['a', 3] }) },
      'schema_violation',
      'payload.experiments.1',
      /expected string/,
    ],
    [
      'v1 field set under v2 rules is fine but v1 with v2 field is not',
      { type: 'EndSong', id: 'r-20', version: 1, payload: endSong() },
      'schema_violation',
      'payload.offline',
      /undeclared/,
    ],
  ];

  it.each(cases)('%s', async (_name, bad, code, path, message) => {
    const good = { type: 'EndSong', id: `good-for-${JSON.stringify(bad).length}-${code}-${path}`, payload: endSong() };
    const r = await post(JSON.stringify({ events: [good, bad] }));
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    const rejected = r.body.rejected as {
      index: number;
      id: string | null;
      code: string;
      path: string;
      message: string;
    }[];
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ index: 1, code, path });
    expect(rejected[0]?.message).toMatch(message);
    if (path !== '') expect(rejected[0]?.message.startsWith(`${path}: `)).toBe(true);
  });

  it('deeply nested junk inside a payload is rejected and stored bounded', async () => {
    const depth = 30_000; // the event stays under ingress.maxEventBytes (64 KiB), so it is parsed
    const junk = `${'['.repeat(depth)}"x"${']'.repeat(depth)}`;
    const page = JSON.stringify(pageView({ experiments: '__JUNK__' })).replace('"__JUNK__"', junk);
    const body = `{"events":[{"type":"PageView","id":"deep-1","payload":${page}}]}`;
    const r = await post(body);
    expect(r.status).toBe(200);
    expect(r.body.rejected).toMatchObject([{ code: 'schema_violation', path: 'payload.experiments.0' }]);
    const res = await h.ingress.app.inject({
      method: 'GET',
      headers: await adminHeaders(h),
      url: '/v1/dead-letters/PageView?limit=5',
    });
    const items = res.json().items as { eventId: string; event: string }[];
    const stored = items.find((i) => i.eventId === 'deep-1');
    expect(stored).toBeDefined();
    expect(stored?.event.length).toBeLessThanOrEqual(4097);
  });

  it('rejected events land in the per-type dead-letter area with reason and time', async () => {
    const before = Date.now();
    await post(JSON.stringify({ events: [{ type: 'EndSong', id: 'dl-1', payload: endSong({ shuffle: 'yes' }) }] }));
    const res = await h.ingress.app.inject({
      method: 'GET',
      headers: await adminHeaders(h),
      url: '/v1/dead-letters/EndSong?limit=10',
    });
    const body = res.json() as {
      total: number;
      items: { eventId: string; code: string; path: string; receivedAt: number }[];
    };
    const item = body.items.find((i) => i.eventId === 'dl-1');
    expect(item).toMatchObject({ code: 'schema_violation', path: 'payload.shuffle' });
    expect(item?.receivedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(body.total).toBeGreaterThan(0);
  });
});

describe('slow clients and memory', () => {
  it('a slow-loris body is cut off with 408 and the server keeps serving', async () => {
    const url = new URL(h.url);
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ev',
    );
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write('e');
    }, 100);
    const started = Date.now();
    await closed;
    clearInterval(drip);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 408/);
    const ok = await fetch(`${h.url}/healthz`);
    expect(ok.status).toBe(200);
  });

  it('memory stays bounded under a stream of rejected and oversized requests', async () => {
    const junk = JSON.stringify({
      events: Array.from({ length: 50 }, (_, i) => ({
        type: 'EndSong',
        id: `m-${i}`,
        payload: { x: 'y'.repeat(2000) },
      })),
    });
    const big = 'z'.repeat(300 * 1024);
    global.gc?.();
    const before = process.memoryUsage().rss;
    for (let round = 0; round < 40; round++) {
      await Promise.all([post(junk), post(big), post('{"events": [')]);
    }
    global.gc?.();
    const growth = process.memoryUsage().rss - before;
    await h.ingress.deadLetters.flush();
    expect(growth).toBeLessThan(150 * 1024 * 1024);
    const totals = await h.store.deadLetterTotals();
    expect(totals.EndSong).toBeGreaterThanOrEqual(40 * 50);
    const kept = await h.store.listDeadLetters('EndSong', 5000);
    expect(kept.length).toBeLessThanOrEqual(1000);
  });
});

describe('accepted events', () => {
  it('are on the bus with their envelope and the ledger records them', async () => {
    const events = [
      { type: 'EndSong', id: 'ok-1', time: '2026-01-01T10:00:00Z', payload: endSong() },
      { type: 'EndSong', id: 'ok-2', version: 1, payload: endSong({ offline: undefined, bitrateKbps: undefined }) },
      { type: 'PageView', id: 'ok-3', payload: pageView() },
    ];
    const before = await h.bus.backlog('hourglass.EndSong.etl');
    const r = await post(JSON.stringify({ events }));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ accepted: 3, rejected: [] });
    const after = await h.bus.backlog('hourglass.EndSong.etl');
    expect(after.messages - before.messages).toBe(2);
    await h.ingress.ledger.flush();
    const ledgers = await h.store.listLedgers({ instanceId: h.ingress.instanceId });
    expect(ledgers.find((l) => l.type === 'PageView')?.count).toBeGreaterThanOrEqual(1);
  });
});

describe('the bus', () => {
  it('drains what was accepted here', async () => {
    const seen = await drain(h.bus, 'hourglass.PageView.etl', 1);
    expect(seen.get('ok-3')).toBe(1);
  });
});
