/**
 * Realistic payloads for `hourglass send`: hand-written for the shipped types, and a generic
 * fallback from any type's latest schema (avsc's random values, made JSON-safe).
 */
import type avro from 'avsc';
import { type EventType, latestVersion } from '../../core/event-types.js';

export type Rng = () => number;

/** A small, fast, seedable PRNG (mulberry32). */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: Rng, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
const int = (r: Rng, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
const hex = (r: Rng, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(r() * 16)];
  return s;
};
const base62 = (r: Rng, n: number): string => {
  const chars = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let s = '';
  for (let i = 0; i < n; i++) s += chars[Math.floor(r() * 62)];
  return s;
};

/** A payload and the schema version it was written for. */
export interface Generated {
  readonly version: number;
  readonly payload: Record<string, unknown>;
}

export type Generator = (r: Rng) => Generated;

const APP_VERSIONS = ['8.9.12', '8.9.14', '8.10.0', '9.0.1'];
const NETWORKS = ['wifi', 'cellular', 'ethernet', 'offline'];
const COUNTRIES = ['SE', 'US', 'GB', 'DE', 'BR', 'MX', 'JP', 'IN', 'FR', 'ES'];
const PAGES = ['/', '/search', '/browse', '/playlist/', '/album/', '/artist/', '/account', '/premium', '/download'];
const REASONS: [string, number][] = [
  ['TRACK_DONE', 0.55],
  ['SKIP_FORWARD', 0.28],
  ['SKIP_BACK', 0.05],
  ['LOGOUT', 0.02],
  ['ERROR', 0.02],
  ['UNKNOWN', 0.08],
];

function weighted(r: Rng, items: [string, number][]): string {
  let x = r();
  for (const [value, w] of items) {
    x -= w;
    if (x <= 0) return value;
  }
  return (items[items.length - 1] as [string, number])[0];
}

const endSong: Generator = (r) => {
  const trackLengthMs = int(r, 90_000, 420_000);
  const reasonEnd = weighted(r, REASONS);
  const durationMs = reasonEnd === 'TRACK_DONE' ? trackLengthMs : int(r, 0, trackLengthMs);
  const base = {
    userId: `user-${hex(r, 12)}`,
    trackId: `track:${base62(r, 22)}`,
    durationMs,
    trackLengthMs,
    reasonEnd,
    shuffle: r() < 0.35,
    playlistId: r() < 0.4 ? null : `playlist:${base62(r, 22)}`,
    platform: pick(r, ['ANDROID', 'IOS', 'DESKTOP', 'WEB', 'SPEAKER', 'OTHER']),
    context: { appVersion: pick(r, APP_VERSIONS), network: pick(r, NETWORKS) },
  };
  if (r() < 0.3) return { version: 1, payload: base };
  return {
    version: 2,
    payload: { ...base, offline: r() < 0.1, bitrateKbps: r() < 0.2 ? null : pick(r, [96, 160, 320]) },
  };
};

const userCreate: Generator = (r) => ({
  version: 1,
  payload: {
    userId: `user-${hex(r, 12)}`,
    country: pick(r, COUNTRIES),
    signupMethod: pick(r, ['EMAIL', 'PHONE', 'FEDERATED', 'OTHER']),
    birthYear: r() < 0.2 ? null : int(r, 1940, 2012),
    referrer: r() < 0.6 ? null : pick(r, ['friend', 'ad:search', 'ad:social', 'press']),
    marketingOptIn: r() < 0.4,
  },
});

const pageView: Generator = (r) => {
  const page = pick(r, PAGES);
  return {
    version: 1,
    payload: {
      sessionId: `s-${hex(r, 16)}`,
      userId: r() < 0.3 ? null : `user-${hex(r, 12)}`,
      url:
        page.endsWith('/') && page.length > 1
          ? `https://open.example.com${page}${base62(r, 22)}`
          : `https://open.example.com${page}`,
      referrer: r() < 0.5 ? null : pick(r, ['https://www.example.org/', 'https://news.example.net/']),
      loadTimeMs: int(r, 40, 2500),
      viewport: {
        width: pick(r, [360, 390, 768, 1280, 1440, 1920]),
        height: pick(r, [640, 844, 1024, 800, 900, 1080]),
      },
      experiments: r() < 0.5 ? [] : [`exp-${int(r, 1, 40)}`],
    },
  };
};

const HAND_WRITTEN: Record<string, Generator> = { EndSong: endSong, UserCreate: userCreate, PageView: pageView };

/** JSON-safe copy of an avsc random value (bytes as strings, longs within ±2^53). */
function jsonSafe(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (typeof v === 'number') return Number.isSafeInteger(v) || !Number.isInteger(v) ? v : v % 2 ** 31;
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}

export function generatorFor(type: EventType): Generator {
  const hand = HAND_WRITTEN[type.name];
  if (hand) return hand;
  const latest = latestVersion(type);
  return () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const value = jsonSafe(latest.type.random()) as Record<string, unknown>;
      if (latest.type.isValid(value, { noUndeclaredFields: true })) return { version: latest.version, payload: value };
    }
    throw new Error(`cannot generate a valid ${type.name} payload from its schema`);
  };
}

/** Makes a payload invalid in one of several realistic ways; returns the mutated copy. */
export function breakPayload(r: Rng, payload: Record<string, unknown>, type: avro.Type): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...payload };
  const fields = (type as avro.types.RecordType).fields;
  const required = fields.filter((f) => f.defaultValue() === undefined);
  const mode = int(r, 0, 2);
  if (mode === 0 && required.length > 0) {
    delete copy[pick(r, required).name];
  } else if (mode === 1 && fields.length > 0) {
    const f = pick(r, fields);
    copy[f.name] = typeof copy[f.name] === 'string' ? 12345 : 'not-a-number';
  }
  // a mutation that happens to stay valid (e.g. a nullable string) falls back to an extra field
  if (type.isValid(copy, { noUndeclaredFields: true })) copy.undeclaredField = true;
  return copy;
}
