/**
 * The batch scanner against JSON.parse: the same verdict on any bytes, the exact byte span of each
 * event, in whatever chunks the body arrives.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BatchScan, BatchScanner, topLevelStrings } from './batch-scanner.js';

/** Scans `bytes` cut into chunks at the given points. */
function scan(bytes: Buffer, cuts: readonly number[] = [], maxElements?: number): BatchScan & { tooMany: boolean } {
  const s = new BatchScanner(maxElements);
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    s.write(bytes.subarray(from, Math.max(from, cut)));
    from = Math.max(from, cut);
  }
  s.write(bytes.subarray(from));
  return { ...s.end(), tooMany: s.tooMany };
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Cut points inside a body of `length` bytes. */
const cutsArb = (length: number) => fc.array(fc.integer({ min: 0, max: length }), { maxLength: 6 });

/** A JSON text with whitespace of every kind between its tokens. */
function spaced(value: unknown, pad: string): string {
  if (Array.isArray(value)) return `[${pad}${value.map((v) => spaced(v, pad)).join(`${pad},${pad}`)}${pad}]`;
  if (typeof value === 'object' && value !== null) {
    const fields = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}${pad}:${pad}${spaced(v, pad)}`);
    return `{${pad}${fields.join(`${pad},${pad}`)}${pad}}`;
  }
  return JSON.stringify(value);
}

/** Characters that make or break JSON, for mutations. */
const JSON_CHARS = [...'{}[]",:\\/0123456789.eE+-truefalsnl \t\n\r\u0000\u001fx\u00e9\u2028'];

describe('BatchScanner: properties', () => {
  it('finds each event of a batch at the exact bytes of JSON.stringify(event), in any chunks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { maxLength: 12 }),
        fc.dictionary(
          fc.string().filter((k) => k !== 'events'),
          fc.jsonValue(),
          { maxKeys: 3 },
        ),
        fc.nat(),
        (events, others, seed) => {
          const body = Buffer.from(JSON.stringify({ ...others, events }));
          const cuts = Array.from({ length: seed % 5 }, (_, k) => (seed * (k + 7)) % (body.length + 1));
          const r = scan(body, cuts);
          expect(r.valid).toBe(true);
          expect(r.rootIsObject).toBe(true);
          expect(r.events).toBe('array');
          expect(r.starts).toHaveLength(events.length);
          expect(r.ends).toHaveLength(events.length);
          events.forEach((e, k) => {
            expect(body.toString('utf8', r.starts[k], r.ends[k])).toBe(JSON.stringify(e));
          });
          expect(JSON.parse(body.toString('utf8', r.arrayStart, r.arrayEnd))).toEqual(
            JSON.parse(JSON.stringify(events)),
          );
        },
      ),
      { numRuns: 600 },
    );
  });

  it('spans hold with whitespace between tokens', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(' ', '\n', '\t', '\r\n  '),
        (events, pad) => {
          const body = Buffer.from(spaced({ events }, pad));
          const r = scan(body);
          expect(r.valid).toBe(true);
          events.forEach((e, k) => {
            expect(JSON.parse(body.toString('utf8', r.starts[k], r.ends[k]))).toEqual(JSON.parse(JSON.stringify(e)));
            expect(body.toString('utf8', r.starts[k], r.ends[k])).toBe(spaced(e, pad));
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('agrees with JSON.parse on JSON texts and on their mutations (valid ⇔ valid)', () => {
    const mutated = fc
      .tuple(
        fc.json(),
        fc.array(fc.tuple(fc.constantFrom('insert', 'delete', 'replace'), fc.nat(), fc.constantFrom(...JSON_CHARS)), {
          maxLength: 3,
        }),
      )
      .map(([text, edits]) => {
        let t = text;
        for (const [kind, at, ch] of edits) {
          const i = t.length === 0 ? 0 : at % (t.length + (kind === 'insert' ? 1 : 0));
          if (kind === 'insert') t = t.slice(0, i) + ch + t.slice(i);
          else if (kind === 'delete') t = t.slice(0, i) + t.slice(i + 1);
          else t = t.slice(0, i) + ch + t.slice(i + 1);
        }
        return t;
      });
    // structure broken on purpose: a bracket, comma or colon swapped for another, or dropped
    const STRUCTURE = '{}[],:';
    const restructured = fc
      .tuple(fc.json({ depthSize: 'medium' }), fc.nat(), fc.constantFrom(...STRUCTURE, ''))
      .map(([text, at, ch]) => {
        const spots = [...text].flatMap((c, i) => (STRUCTURE.includes(c) ? [i] : []));
        if (spots.length === 0) return text;
        const i = spots[at % spots.length] as number;
        return text.slice(0, i) + ch + text.slice(i + 1);
      });
    fc.assert(
      fc.property(fc.oneof(fc.json(), mutated, restructured, fc.string()), fc.nat(), (text, seed) => {
        const body = Buffer.from(text);
        const cuts = Array.from({ length: seed % 4 }, (_, k) => (seed * (k + 3)) % (body.length + 1));
        // JSON.parse judges the text as decoded (lone surrogates become U+FFFD either way)
        expect(scan(body, cuts).valid).toBe(parses(body.toString('utf8')));
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees with JSON.parse on batches of events with a mutation', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 5 }),
        fc.nat(),
        fc.constantFrom(...JSON_CHARS),
        (events, at, ch) => {
          const text = JSON.stringify({ events });
          const i = at % text.length;
          const body = Buffer.from(text.slice(0, i) + ch + text.slice(i + 1));
          expect(scan(body).valid).toBe(parses(body.toString('utf8')));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('counts past the limit and stops at the first event over it, whatever the chunks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 45 }), cutsArb(300), (limit, n, cuts) => {
        const body = Buffer.from(JSON.stringify({ events: Array.from({ length: n }, (_, k) => ({ k })) }));
        const r = scan(
          body,
          cuts.map((c) => c % (body.length + 1)),
          limit,
        );
        expect(r.tooMany).toBe(n > limit);
        if (n <= limit) expect(r.starts).toHaveLength(n);
      }),
      { numRuns: 300 },
    );
  });
});

describe('BatchScanner: cases', () => {
  it('stops once the body holds more objects and arrays than allowed, wherever they nest', () => {
    const nested = (n: number) =>
      `{"events":[{"type":"A","payload":{"x":[${Array.from({ length: n }, () => '{}').join(',')}]}}]}`;
    // within the events: the event, its payload and its list: 3, plus one per {}
    const within = new BatchScanner(Number.POSITIVE_INFINITY, 10);
    within.write(Buffer.from(nested(7)));
    expect(within.tooComplex).toBe(false);
    expect(within.end().valid).toBe(true);
    const over = new BatchScanner(Number.POSITIVE_INFINITY, 10);
    const body = Buffer.from(nested(8));
    for (let i = 0; i < body.length; i += 7) over.write(body.subarray(i, i + 7));
    expect(over.tooComplex).toBe(true);
  });

  it.each([
    ['', false, 'the body is empty'],
    ['   ', false, 'unexpected end'],
    ['{"events": [', false, 'unexpected end'],
    ['{"events": [1,]}', false, 'a value expected at byte 14'],
    ['{"events": [01]}', false, "',' or the end"],
    ['{"events": [1.]}', false, 'a digit expected'],
    ['{"events": ["\\x"]}', false, 'an invalid escape'],
    ['{"events": ["\\u12g4"]}', false, 'an invalid \\u escape'],
    ['{"events": ["a\tb"]}', false, 'a control character'],
    ['{"events": [tru]}', false, 'an invalid literal'],
    ['{"events": []} x', false, 'more after the JSON value'],
    ['{"events" []}', false, "':' expected"],
    ['{events: []}', false, 'a key expected'],
    ['\ufeff{"events": []}', false, 'a value expected at byte 0'],
    ['{"events": [-0.5e+10, 1E-2, 0, "\\ud800", null, true, false, {}, []]}', true, null],
  ])('%j → valid %s', (text, valid, error) => {
    const r = scan(Buffer.from(text));
    expect(r.valid).toBe(valid);
    expect(parses(text)).toBe(valid);
    if (error !== null) expect(r.error).toContain(error);
  });

  it('tells the shape of the body', () => {
    expect(scan(Buffer.from('[]'))).toMatchObject({ valid: true, rootIsObject: false, events: 'missing' });
    expect(scan(Buffer.from('{"batch": [1]}'))).toMatchObject({ rootIsObject: true, events: 'missing' });
    expect(scan(Buffer.from('{"events": {"0": 1}}'))).toMatchObject({ events: 'other' });
    expect(scan(Buffer.from('{"x": {"events": [1]}, "events": null}'))).toMatchObject({ events: 'other' });
    // an escaped key is the same key; the last of duplicate keys wins, as in JSON.parse
    const escaped = Buffer.from('{"\\u0065vents": [1, 2]}');
    expect(scan(escaped)).toMatchObject({ events: 'array', starts: [escaped.indexOf('1'), escaped.indexOf('2')] });
    const twice = Buffer.from('{"events": [1, 2, 3], "events": ["a"]}');
    const a = twice.indexOf('"a"');
    expect(scan(twice)).toMatchObject({ events: 'array', starts: [a], ends: [a + 3] });
    // a number at the very end of the body, and a deep nesting
    expect(scan(Buffer.from('12'), [1])).toMatchObject({ valid: true });
    const deep = Buffer.from(`{"events": [${'['.repeat(100_000)}${']'.repeat(100_000)}]}`);
    expect(scan(deep)).toMatchObject({ valid: true, starts: [12], ends: [200_012] });
  });

  it('reads the id and type of an event without parsing it', () => {
    const event = { payload: { id: 'inner', big: 'x'.repeat(5000) }, id: 'e-\\"1', version: 2, type: 'EndSong' };
    const body = Buffer.from(`  ${JSON.stringify(event)}`);
    const found = topLevelStrings(body, 2, body.length, ['id', 'type']);
    expect(Object.fromEntries(found)).toEqual({ id: 'e-\\"1', type: 'EndSong' });
    const noId = Buffer.from('{"id": 17, "payload": {"id": "no"}}');
    expect(topLevelStrings(noId, 0, noId.length, ['id']).size).toBe(0);
  });
});
