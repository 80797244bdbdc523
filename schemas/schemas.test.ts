/**
 * The shipped event types as data tables: per type and version, valid payloads round-trip through
 * Avro, invalid ones report the expected field path; every version reads every earlier one.
 */
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canRead, type EventType, loadEventTypes } from '../core/event-types.js';
import { findSchemaProblem } from '../services/ingress/describe-avro.js';

let types: Map<string, EventType>;
beforeAll(async () => {
  types = new Map((await loadEventTypes(resolve(import.meta.dirname))).map((t) => [t.name, t]));
});

const endSongV1 = {
  userId: 'u1',
  trackId: 't1',
  durationMs: 1000,
  trackLengthMs: 200_000,
  reasonEnd: 'SKIP_FORWARD',
  shuffle: true,
  playlistId: 'p1',
  platform: 'ANDROID',
  context: { network: 'wifi' },
};

const table: { type: string; version: number; valid: unknown[]; invalid: [unknown, string][] }[] = [
  {
    type: 'EndSong',
    version: 1,
    valid: [endSongV1, { ...endSongV1, playlistId: null, context: {} }],
    invalid: [
      [{ ...endSongV1, durationMs: '1000' }, 'payload.durationMs'],
      [{ ...endSongV1, platform: 'AMIGA' }, 'payload.platform'],
      [{ ...endSongV1, offline: true }, 'payload.offline'],
    ],
  },
  {
    type: 'EndSong',
    version: 2,
    valid: [
      { ...endSongV1, offline: true, bitrateKbps: 160 },
      { ...endSongV1, offline: false, bitrateKbps: null },
    ],
    invalid: [[{ ...endSongV1, offline: 'no', bitrateKbps: null }, 'payload.offline']],
  },
  {
    type: 'UserCreate',
    version: 1,
    valid: [
      { userId: 'u', country: 'SE', signupMethod: 'EMAIL', birthYear: 1990, referrer: null, marketingOptIn: false },
    ],
    invalid: [
      [
        { userId: 'u', country: 'SE', signupMethod: 'EMAIL', birthYear: '1990', referrer: null, marketingOptIn: false },
        'payload.birthYear',
      ],
    ],
  },
  {
    type: 'PageView',
    version: 1,
    valid: [
      {
        sessionId: 's',
        userId: null,
        url: '/',
        referrer: null,
        loadTimeMs: 3,
        viewport: { width: 1, height: 2 },
        experiments: ['a'],
      },
    ],
    invalid: [
      [
        {
          sessionId: 's',
          userId: null,
          url: '/',
          referrer: null,
          loadTimeMs: 3,
          viewport: { width: 1 },
          experiments: [],
        },
        'payload.viewport.height',
      ],
    ],
  },
];

describe.each(table)('$type v$version', ({ type, version, valid, invalid }) => {
  it('valid payloads round-trip', () => {
    const v = types.get(type)?.versions[version - 1];
    expect(v).toBeDefined();
    for (const value of valid) {
      const decoded = v?.type.fromBuffer(v.type.toBuffer(value));
      expect(decoded).toEqual(value);
    }
  });
  it.each(invalid)('invalid payload %# names %s', (value, path) => {
    const v = types.get(type)?.versions[version - 1];
    expect(v?.type.isValid(value, { noUndeclaredFields: true })).toBe(false);
    expect(findSchemaProblem(v?.type as NonNullable<typeof v>['type'], value)?.path).toBe(path);
  });
});

describe('evolution of the shipped types', () => {
  it('every version reads every earlier version', () => {
    for (const t of types.values()) {
      for (const reader of t.versions) {
        for (const writer of t.versions.slice(0, reader.version - 1)) expect(canRead(reader, writer)).toBeNull();
      }
    }
  });
  it('EndSong v1 data read with v2 gets the defaults', () => {
    const t = types.get('EndSong') as EventType;
    const [v1, v2] = t.versions as [(typeof t.versions)[0], (typeof t.versions)[0]];
    const resolver = v2.type.createResolver(v1.type);
    expect(v2.type.fromBuffer(v1.type.toBuffer(endSongV1), resolver)).toEqual({
      ...endSongV1,
      offline: false,
      bitrateKbps: null,
    });
  });
});

describe('defaults', () => {
  it('a payload may omit fields that have a default; the default is stored', () => {
    const v1 = (types.get('PageView') as EventType).versions[0];
    const sparse = { sessionId: 's', url: '/', loadTimeMs: 1, viewport: { width: 1, height: 1 } };
    expect(v1?.type.isValid(sparse, { noUndeclaredFields: true })).toBe(true);
    expect(v1?.type.fromBuffer(v1.type.toBuffer(sparse))).toEqual({
      ...sparse,
      userId: null,
      referrer: null,
      experiments: [],
    });
  });
});
