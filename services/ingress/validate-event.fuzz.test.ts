/**
 * Property-based fuzzing of event validation (fast-check). Random Avro record schemas (nested
 * records, enums, fixed, arrays, maps, plain and wrapped unions, references, namespaces, logical
 * types, defaults, names like `constructor`) and random events around random payloads, valid by
 * construction or mutated (see `test/support/avro-fuzz.ts`). Checked, for every event:
 *
 * - valid ⇔ accepted: accepted exactly when the envelope is valid and the payload satisfies the
 *   schema under the ingress's JSON conventions (an independent model); where avsc's `isValid` is
 *   sound for the value, it must agree (asked with the same conventions: bytes and fixed as
 *   strings of U+0000–U+00FF, unions plain or wrapped as avsc's `wrapUnions: 'auto'` decides);
 * - an accepted payload is encoded faithfully: the Avro binary decodes to the payload with its
 *   defaults filled in, and that decoded value (as the bridge hands Avro messages over) is accepted
 *   and encodes to the same bytes;
 * - every rejection carries a code of REJECTION_CODES that one of the event's faults calls for,
 *   and a path that exists in the submitted event (for a missing field: its parent does);
 * - nothing throws, and over HTTP every answer is a 200 with the right counts and indices.
 *
 * Two levels: `validateEvent` directly (most cases) and `POST /v1/events` through the app with
 * `app.inject()` (a batch of events per case). `HOURGLASS_FUZZ_RUNS=<n>` (`npm run fuzz`) runs n
 * cases directly and n/10 over HTTP instead of the defaults; `HOURGLASS_FUZZ_SEED` (and
 * `HOURGLASS_FUZZ_PATH`) replay a failure fast-check reported.
 */
import type avro from 'avsc';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventCatalog, type EventType, parseSchema } from '../../core/event-types.js';
import { REJECTION_CODES } from '../../core/rejection-codes.js';
import {
  avscQuirk,
  branchName,
  decodedToJson,
  envelopeArb,
  eventTypeOf,
  expectedDecoded,
  expectedFaults,
  fuzzEventType,
  type GeneratedSchema,
  hasProtoKey,
  resolvePath,
  type SchemaNode,
  sameJson,
  schemaArb,
  toAvroValue,
} from '../../test/support/avro-fuzz.js';
import { type Harness, startHarness } from '../../test/support/ingress-harness.js';
import { isRejection, type Rejection, type ValidEvent, validateEvent } from './validate-event.js';

const DIRECT_RUNS = Number(process.env.HOURGLASS_FUZZ_RUNS) || 18_000;
const HTTP_RUNS = Number(process.env.HOURGLASS_FUZZ_RUNS) ? Math.ceil(DIRECT_RUNS / 10) : 2_000;
const REPLAY = process.env.HOURGLASS_FUZZ_SEED
  ? { seed: Number(process.env.HOURGLASS_FUZZ_SEED), path: process.env.HOURGLASS_FUZZ_PATH }
  : {};
/** Real ms allowed per case (generous: CI machines are slow and shared). */
const timeoutFor = (runs: number, msPerRun: number) => Math.max(60_000, runs * msPerRun * 4);
const LIMITS = { maxIdLength: 128 };

function catalogFor(g: GeneratedSchema): { catalog: EventCatalog; type: EventType } {
  const type = eventTypeOf(g);
  return { catalog: new EventCatalog([type, { ...type, name: 'Gone', status: 'retired' }]), type };
}

const show = (v: unknown) => {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
};

/** Throws, naming the broken property, unless the verdict on `event` is right. */
function checkVerdict(
  g: GeneratedSchema,
  type: EventType,
  event: unknown,
  index: number,
  verdict: ValidEvent | Rejection,
): void {
  const faults = expectedFaults(g, event);
  const fail = (what: string) => {
    throw new Error(
      `${what}\n  event: ${show(event)}\n  verdict: ${show(isRejection(verdict) ? verdict : 'accepted')}`,
    );
  };
  if (verdict.index !== index) fail(`index ${verdict.index} for event ${index}`);
  if (isRejection(verdict)) {
    if (!(verdict.code in REJECTION_CODES)) fail(`code ${verdict.code} is not in REJECTION_CODES`);
    if (faults.size === 0) fail('a valid event was rejected');
    if (!faults.has(verdict.code)) fail(`code ${verdict.code}, but the event's faults are ${[...faults].join(', ')}`);
    checkPath(event, verdict, fail);
  } else {
    if (faults.size > 0) fail(`an invalid event was accepted (faults: ${[...faults].join(', ')})`);
    const payload = (event as { payload: unknown }).payload;
    if (!hasProtoKey(payload)) {
      const avroValue = type.versions[0]?.type.fromBuffer(verdict.data);
      const decoded = decodedToJson(g.root, avroValue);
      const expected = expectedDecoded(g.root, payload);
      if (!sameJson(decoded, expected)) fail(`encoded as ${show(decoded)}, expected ${show(expected)}`);
      // the bridge hands over decoded Avro (Buffers, avsc records): the same again
      const again = validateEvent({ type: 'Fuzz', id: 'again', payload: avroValue }, 0, catalogFor(g).catalog, LIMITS);
      if (isRejection(again)) fail(`its decoded Avro value was rejected: ${again.message}`);
      else if (!again.data.equals(verdict.data)) fail('its decoded Avro value encodes differently');
    }
  }
  // the referee the issue names: avsc's isValid under the same conventions, where it is sound
  if (faults.size === 0 || (faults.size === 1 && faults.has('schema_violation'))) {
    const payload = (event as { payload: unknown }).payload;
    if (!avscQuirk(g.root, payload)) {
      const avsc = type.versions[0]?.type.isValid(toAvroValue(g.root, payload), { noUndeclaredFields: true });
      if (avsc !== !isRejection(verdict)) fail(`avsc's isValid says ${avsc}`);
    }
  }
}

function checkPath(event: unknown, r: Rejection, fail: (what: string) => never): void {
  const at = resolvePath(event, r.path);
  if (!at.parsed) fail(`path ${show(r.path)} is malformed`);
  const missing =
    r.code === 'missing_type' ||
    r.code === 'missing_id' ||
    r.code === 'missing_payload' ||
    (r.code === 'schema_violation' && r.message.includes('required field missing'));
  if (!at.found && !(missing && at.parentFound)) fail(`path ${show(r.path)} is not in the event`);
  if (r.path === '' ? r.message.length === 0 : !r.message.startsWith(`${r.path}: `))
    fail(`message ${show(r.message)} does not start with the path`);
}

const caseArb = (perCase: number) =>
  schemaArb.chain((g) => fc.tuple(fc.constant(g), fc.array(envelopeArb(g), { minLength: 1, maxLength: perCase })));

describe('validateEvent (fuzzed)', () => {
  it('the generated schemas are valid Avro, and the model names and wraps as avsc does', () => {
    const same = (n: SchemaNode, t: avro.Type, seen: Set<SchemaNode>): void => {
      if (seen.has(n)) return;
      seen.add(n);
      if (n.kind === 'union') {
        expect(t.typeName).toBe(n.wrapped ? 'union:wrapped' : 'union:unwrapped');
        const branches = (t as avro.types.UnwrappedUnionType).types;
        n.branches.forEach((b, i) => {
          expect(branches[i]?.branchName).toBe(branchName(b));
          same(b, branches[i] as avro.Type, seen);
        });
      } else if (n.kind === 'record') {
        expect(t.name).toBe(n.fullName);
        n.fields.forEach((f, i) => {
          const field = (t as avro.types.RecordType).fields[i];
          expect(field?.name).toBe(f.name);
          expect(field?.defaultValue() !== undefined).toBe(f.hasDefault);
          same(f.type, field?.type as avro.Type, seen);
        });
      } else if (n.kind === 'array') same(n.items, (t as avro.types.ArrayType).itemsType, seen);
      else if (n.kind === 'map') same(n.values, (t as avro.types.MapType).valuesType, seen);
      else expect(t.branchName ?? t.typeName).toBe(branchName(n));
    };
    fc.assert(
      fc.property(schemaArb, (g) => {
        same(g.root, parseSchema('Fuzz', 1, g.avro).type, new Set());
      }),
      { numRuns: 300 },
    );
  });

  it(
    `valid ⇔ accepted, faithful encoding, codes and paths (${DIRECT_RUNS} cases)`,
    () => {
      const started = performance.now();
      let events = 0;
      fc.assert(
        fc.property(caseArb(4), ([g, batch]) => {
          const { catalog, type } = catalogFor(g);
          for (const [i, event] of batch.entries()) {
            events++;
            let verdict: ValidEvent | Rejection;
            try {
              verdict = validateEvent(event, i, catalog, LIMITS);
            } catch (err) {
              throw new Error(`validateEvent threw ${(err as Error).stack}\n  event: ${show(event)}`);
            }
            checkVerdict(g, type, event, i, verdict);
          }
        }),
        { numRuns: DIRECT_RUNS, ...REPLAY },
      );
      console.log(
        `fuzz (direct): ${DIRECT_RUNS} cases, ${events} events in ${Math.round(performance.now() - started)} ms`,
      );
    },
    timeoutFor(DIRECT_RUNS, 1),
  );
});

describe('POST /v1/events (fuzzed)', () => {
  let h: Harness;
  beforeAll(async () => {
    const placeholder = fuzzEventType({ type: 'record', name: 'Fuzz', fields: [] });
    h = await startHarness({ types: () => [placeholder] });
  });
  afterAll(async () => {
    await h?.close();
  });

  it(
    `every answer is a 200 with the right verdict per event (${HTTP_RUNS} cases)`,
    async () => {
      const started = performance.now();
      let events = 0;
      await fc.assert(
        fc.asyncProperty(caseArb(6), async ([g, batch]) => {
          h.catalog.replace(catalogFor(g).catalog.list());
          const body = JSON.stringify({ events: batch });
          const sent = (JSON.parse(body) as { events: unknown[] }).events;
          events += sent.length;
          const res = await h.ingress.app.inject({
            method: 'POST',
            url: '/v1/events',
            headers: { 'content-type': 'application/json' },
            payload: body,
          });
          if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${res.body}\n  body: ${body}`);
          const answer = res.json() as { accepted: number; rejected: Rejection[] };
          const byIndex = new Map(answer.rejected.map((r) => [r.index, r]));
          let valid = 0;
          for (const [i, event] of sent.entries()) {
            const r = byIndex.get(i);
            const faults = expectedFaults(g, event);
            if (faults.size === 0) valid++;
            if (r === undefined) {
              if (faults.size > 0) throw new Error(`event ${i} accepted, faults ${[...faults]}\n  body: ${body}`);
              continue;
            }
            const fail = (what: string): never => {
              throw new Error(`event ${i}: ${what}\n  body: ${body}\n  answer: ${res.body}`);
            };
            if (!(r.code in REJECTION_CODES)) fail(`code ${r.code} is not in REJECTION_CODES`);
            if (!faults.has(r.code)) fail(`code ${r.code}, faults ${[...faults]}`);
            checkPath(event, r, fail);
          }
          if (answer.accepted !== valid)
            throw new Error(`accepted ${answer.accepted}, expected ${valid}\n  body: ${body}`);
          if (answer.rejected.length + valid !== sent.length) throw new Error(`answer ${res.body} for ${body}`);
        }),
        { numRuns: HTTP_RUNS, ...REPLAY },
      );
      console.log(`fuzz (HTTP): ${HTTP_RUNS} cases, ${events} events in ${Math.round(performance.now() - started)} ms`);
    },
    timeoutFor(HTTP_RUNS, 5),
  );
});

/**
 * The bugs the fuzzing found, as plain examples (shrunk counter-examples; the seed and path are
 * fast-check's on the code before the fix, with the generators of that day), and a few its
 * findings led to.
 */
describe('validateEvent regressions (found by the fuzzing)', () => {
  const typeOf = (fields: unknown[], extra: Record<string, unknown> = {}): EventType =>
    fuzzEventType({ type: 'record', name: 'Fuzz', ...extra, fields });
  const verdict = (type: EventType, payload: unknown, event: Record<string, unknown> = {}) =>
    validateEvent({ type: 'Fuzz', id: 'e-1', payload, ...event }, 0, new EventCatalog([type]), LIMITS);
  const rejected = (type: EventType, payload: unknown, path: string, message: RegExp) => {
    const r = verdict(type, payload);
    expect(r).toMatchObject({ code: 'schema_violation', path });
    expect((r as Rejection).message).toMatch(message);
    expect((r as Rejection).message.startsWith(`${path}: `)).toBe(true);
  };
  const decoded = (type: EventType, payload: unknown) => {
    const r = verdict(type, payload);
    if (isRejection(r)) throw new Error(`rejected: ${r.message}`);
    return type.versions[0]?.type.fromBuffer(r.data) as Record<string, unknown>;
  };

  // seed 230546849, path "0:1:0:0:1:1:1:2:2:2:2:2:2:2:2:2:2:2:2:2:2": {"": null} → path "payload."
  // seed 1307929421 (HTTP), path "0:0:0:0:0:0:0:0": envelope key "a.b" → path "a.b"
  it('paths write keys that are not plain names as ["…"]', () => {
    rejected(typeOf([]), { '': null }, 'payload[""]', /undeclared field/);
    const map = typeOf([{ name: 'm', type: { type: 'map', values: 'int' } }]);
    rejected(map, { m: { 'a.b': 'x' } }, 'payload.m["a.b"]', /expected int, got string/);
    rejected(map, { m: { '["q"]': 'x' } }, 'payload.m["[\\"q\\"]"]', /expected int/);
    const record = (name: string) => ({ type: 'record', name, fields: [{ name: 'a', type: 'int' }] });
    const union = typeOf([{ name: 'u', type: [record('X'), record('Y')] }], { namespace: 'fz' });
    rejected(union, { u: { 'fz.X': { a: 'bad' } } }, 'payload.u["fz.X"].a', /expected int/);
    expect(verdict(typeOf([]), {}, { 'a.b': 1 })).toMatchObject({ code: 'unknown_field', path: '["a.b"]' });
  });

  // seed -2088820811, path "1:1:1:3:3:3:3:3:3:3:3:1:2:0:1:1:1:1:1:1:1:1:1:1:1:1": fixed(0) "" rejected
  // seed 2093191379 (HTTP), path "3:3:0:1:1:1:1:1:1:1:1:0:0:0:0": the same, not in a union
  it('bytes and fixed are strings of characters U+0000–U+00FF, one per byte', () => {
    const fixed0 = typeOf([{ name: 'a', type: [{ type: 'fixed', name: 'F1', size: 0 }] }]);
    expect(decoded(fixed0, { a: '' }).a).toEqual(Buffer.alloc(0));
    const t = typeOf([
      { name: 'b', type: 'bytes' },
      { name: 'f', type: { type: 'fixed', name: 'F2', size: 2 } },
      { name: 'd', type: ['null', { type: 'bytes', logicalType: 'decimal', precision: 4, scale: 2 }] },
      { name: 's', type: ['null', 'string', 'bytes'] },
    ]);
    const ok = { b: '\u00ff\u0000', f: 'ab', d: '\u0004\u00d2', s: 'text' };
    expect(decoded(t, ok)).toMatchObject({
      b: Buffer.from([0xff, 0]),
      f: Buffer.from('ab'),
      d: Buffer.from([4, 0xd2]),
    });
    expect(decoded(t, ok).s).toBe('text'); // a string branch takes strings before bytes does
    rejected(t, { ...ok, b: 'Ā' }, 'payload.b', /expected bytes \(a string of characters U\+0000–U\+00FF/);
    rejected(t, { ...ok, f: 'abc' }, 'payload.f', /expected fixed\(2\) \(a string of 2 characters/);
  });

  // seed -1307957696, path "7:3:0:0:0:0:0:1:0:1:1:1:1:1" (without bytes and fixed in the generators)
  // seed -560105952 (HTTP): path "payload.hasOwnProperty", not in the event, "got function"
  it('a field named like an Object.prototype member is missing unless given', () => {
    const t = typeOf([
      { name: 'isPrototypeOf', type: 'string', default: '' },
      { name: 'toString', type: 'int', default: 7 },
    ]);
    expect(decoded(t, {})).toMatchObject({ isPrototypeOf: '', toString: 7 });
    rejected(typeOf([{ name: 'constructor', type: 'string' }]), {}, 'payload.constructor', /required field missing/);
  });

  // seed 1950827949 (HTTP), path "38:3:1:1:1:1:3:3:3:4:4:4:4:4:4:4:4": {"constructor": 1} accepted (dropped)
  it('an undeclared field named like an Object.prototype member is refused', () => {
    rejected(typeOf([], { namespace: 'fz.inner' }), { constructor: 1 }, 'payload.constructor', /undeclared field/);
    rejected(typeOf([]), JSON.parse('{"__proto__": {}}'), 'payload.__proto__', /undeclared field/);
  });

  // seed -1892011370, path "14:293:0:0:0:0:1:2:1:3:3:3:11:0:0:10:1:1:1:1:9": avsc threw (HTTP 500)
  it('a wrapped union keyed by an Object.prototype member is refused, not thrown on', () => {
    const t = typeOf([
      { name: 'u', type: ['string', { type: 'map', values: 'long' }, { type: 'enum', name: 'E', symbols: ['A'] }] },
    ]);
    rejected(
      t,
      { u: { constructor: 1 } },
      'payload.u',
      /expected \{"<branch>": value\} with a branch of string, map, E, got object/,
    );
    rejected(t, JSON.parse('{"u": {"__proto__": 1}}'), 'payload.u', /got object/);
    expect(decoded(t, { u: { E: 'A' } }).u).toEqual({ E: 'A' });
  });

  // seed 1674855719, path "14:6:0:2:2:3:3:4:6:3:6:11:11:12:12:17:23:23:24:24:0:0:0:0:0:1:8:3:8:1:12:13": avsc threw
  it('an object where a scalar belongs is refused, not coerced', () => {
    const t = typeOf([
      { name: 'd', type: { type: 'int', logicalType: 'date' }, default: 0 },
      { name: 'i', type: ['null', 'int'], default: null },
      { name: 'e', type: { type: 'enum', name: 'E', symbols: ['A', 'RED'] }, default: 'A' },
    ]);
    rejected(t, { d: { toString: 0 } }, 'payload.d', /expected int, got object/);
    rejected(t, { i: { toString: 0 } }, 'payload.i', /expected null or int, got object/);
    rejected(t, { i: { valueOf: 1 } }, 'payload.i', /got object/);
    // seed 1668824359 (HTTP), path "7:1:1:3:2:3:3:3:3:3:6:5:6:7:7:7:…": ["A"] was accepted as symbol A
    rejected(t, { e: ['A'] }, 'payload.e', /expected one of A, RED, got array/);
  });

  // seed 853220712, path "4:2:0:4:4:1:3:5:5:8:8:8:8:7:7:2:1:1:5:1:2:1:3:2:9:1:1:…": −(2^52 + 1) decoded as +2^52
  it('longs below −2^52 are refused (avsc would encode them wrongly)', () => {
    const t = typeOf([{ name: 'a', type: { type: 'long', logicalType: 'timestamp-millis' } }]);
    rejected(t, { a: -4503599627370497 }, 'payload.a', /expected long \(a whole number from -2\^52 to 2\^53 - 2\)/);
    expect(decoded(t, { a: -4503599627370496 }).a).toBe(-4503599627370496);
    expect(decoded(t, { a: 9007199254740990 }).a).toBe(9007199254740990);
    rejected(t, { a: 9007199254740991 }, 'payload.a', /expected long/);
  });

  // seed 200745654, path "48:11:1:1:1:1:1:1:1:1:1:1:1:1": a default "\ud800" decoded as U+FFFD (a
  // payload string too; a default is the registration's to refuse)
  it('strings and map keys with a lone surrogate are refused (UTF-8 cannot hold them)', () => {
    const t = typeOf([
      { name: 's', type: 'string', default: '' },
      { name: 'm', type: { type: 'map', values: 'string' }, default: {} },
    ]);
    rejected(t, { s: 'a\ud800' }, 'payload.s', /not Unicode text/);
    rejected(t, { m: { '\udc00': 'x' } }, 'payload.m["\\udc00"]', /key is not Unicode text/);
    expect(decoded(t, { s: '😀', m: { '😀': '😀' } })).toMatchObject({ s: '😀', m: { '😀': '😀' } });
  });

  // found reading avsc after the findings above: the same prototype and coercion lookups
  it('an enum symbol named like an Object.prototype member is refused (it was written as symbol 0)', () => {
    const t = typeOf([{ name: 'e', type: { type: 'enum', name: 'E', symbols: ['A', 'B'] } }]);
    rejected(t, { e: 'constructor' }, 'payload.e', /expected one of A, B, got string "constructor"/);
    rejected(t, { e: '__proto__' }, 'payload.e', /expected one of A, B/);
  });

  it('an array is not a record, even one whose fields all have defaults', () => {
    const t = typeOf([
      { name: 'r', type: { type: 'record', name: 'R', fields: [{ name: 'q', type: 'int', default: 1 }] } },
    ]);
    rejected(t, { r: [] }, 'payload.r', /expected record R, got array/);
    expect(decoded(t, { r: {} }).r).toMatchObject({ q: 1 });
  });

  it('payloads nested deeper than 100 levels are refused, not a stack overflow', () => {
    const t = typeOf([{ name: 'next', type: ['null', 'Fuzz'] }]);
    const nested = (levels: number) => {
      let v: Record<string, unknown> = { next: null };
      for (let i = 1; i < levels; i++) v = { next: v };
      return v;
    };
    expect(isRejection(verdict(t, nested(100)))).toBe(false);
    rejected(t, nested(101), `payload${'.next'.repeat(100)}`, /nested deeper than 100 levels/);
    expect(verdict(t, nested(20_000))).toMatchObject({ code: 'schema_violation', message: /nested deeper/ });
  });
});
