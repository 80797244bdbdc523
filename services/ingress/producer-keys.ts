/**
 * Producer write keys: `hgk_<id>_<secret>`. The id finds the key; only the SHA-256 of the secret
 * is stored and it is compared in constant time. A key names its producer (which travels with
 * every event it writes), the types it may write, its rate (a token bucket per key and ingress
 * instance), the browser origins that may use it, and an optional expiry.
 *
 * Checks are cached: a key is read from the state store at most once per `recheckMs` (default 1 s)
 * per ingress instance, so a revocation takes effect everywhere within that bound, and a request
 * with a known key costs map lookups and a constant-time compare (the secret is hashed once per
 * key and process; after that its digest is found by the secret). Unknown ids are remembered as
 * unknown for the same time (bounded), so random keys cannot hammer the store.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseDurationMs } from '../../core/durations.js';
import { Unauthorized } from '../../core/errors.js';
import type { ProducerKey, StateStore } from '../../core/ports/state-store.js';

const KEY = /^hgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const PRODUCER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,99}$/;

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export interface ProducerKeySpec {
  readonly producer: string;
  /** null: every type. */
  readonly types: readonly string[] | null;
  readonly ratePerSec?: number | null;
  readonly burst?: number | null;
  readonly origins?: readonly string[];
  /** Epoch ms, or null for no expiry. */
  readonly expiresAt?: number | null;
  readonly createdBy: string;
}

/** What is wrong with a key spec, or null. */
export function keySpecProblem(spec: ProducerKeySpec): string | null {
  if (!PRODUCER_NAME.test(spec.producer)) {
    return `producer must be 1-100 letters, digits, ".", "_" or "-" starting with a letter or digit (got ${JSON.stringify(spec.producer)})`;
  }
  if (spec.types !== null) {
    if (spec.types.length === 0) return 'a key needs at least one type (or every type)';
    const bad = spec.types.find((t) => !TYPE_NAME.test(t));
    if (bad !== undefined) return `not a type name: ${JSON.stringify(bad)}`;
  }
  for (const [name, v] of [
    ['rate', spec.ratePerSec],
    ['burst', spec.burst],
  ] as const) {
    if (v !== undefined && v !== null && !(Number.isFinite(v) && v >= 0)) return `${name} must be a number ≥ 0`;
  }
  for (const o of spec.origins ?? []) {
    if (normalizeOrigin(o) === null) return `not an origin (scheme://host[:port]): ${JSON.stringify(o)}`;
  }
  return null;
}

/** `https://App.example.com:443/` → `https://app.example.com`; null when it is not an http(s) origin. */
export function normalizeOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    return null;
  }
  return url.origin;
}

/** `90d`, `12h`, `30m`, `45s` → milliseconds; null when it is not such a duration, or not above 0. */
export function parseKeyLifetime(text: string): number | null {
  const ms = parseDurationMs(text, 'smhd');
  return ms !== null && ms > 0 ? ms : null;
}

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** How `keys list` and `GET /v1/producer-keys` show a key: everything but its hash. */
export function describeProducerKey(k: ProducerKey, now: number) {
  return {
    id: k.id,
    producer: k.producer,
    types: k.types,
    ratePerSec: k.ratePerSec,
    burst: k.burst,
    origins: k.origins,
    status: k.revokedAt !== null ? 'revoked' : k.expiresAt !== null && k.expiresAt <= now ? 'expired' : 'active',
    createdAt: iso(k.createdAt) as string,
    createdBy: k.createdBy,
    expiresAt: iso(k.expiresAt),
    revokedAt: iso(k.revokedAt),
  };
}

/** Creates a key and returns it (the only time its secret is seen). Throws on a bad spec. */
export async function createProducerKey(
  store: StateStore,
  spec: ProducerKeySpec,
  now: number,
): Promise<{ key: string; record: ProducerKey }> {
  const problem = keySpecProblem(spec);
  if (problem !== null) throw new Error(problem);
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record: ProducerKey = {
    id,
    producer: spec.producer,
    types: spec.types === null ? null : [...new Set(spec.types)].sort(),
    ratePerSec: spec.ratePerSec ?? null,
    burst: spec.burst ?? null,
    origins: [...new Set((spec.origins ?? []).map((o) => normalizeOrigin(o) as string))],
    hash: digest(secret).toString('hex'),
    createdAt: now,
    createdBy: spec.createdBy,
    expiresAt: spec.expiresAt ?? null,
    revokedAt: null,
  };
  await store.addProducerKey(record);
  return { key: `hgk_${id}_${secret}`, record };
}

/**
 * A token bucket: `ratePerSec` events per second, up to `burst` at once. A request passes while the
 * bucket holds at least one event's token, and takes all of its events even past empty: the debt is
 * paid back at the rate before the key's next request passes, so the rate holds over time. Whether
 * a request passes does not depend on its size, so a request over the rate is refused before its
 * body is read (a producer flooding far over its rate costs the ingress no parsing).
 */
export class TokenBucket {
  private tokens: number;
  private at: number;
  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes `n` tokens: 0 when they were taken, else the seconds to wait before a request passes. */
  take(n: number, now: number): number {
    const wait = this.waitForOne(now);
    if (wait === 0 && this.ratePerSec !== 0) this.tokens -= n;
    return wait;
  }

  /**
   * 0 when a request would pass now (the bucket holds a token, or the rate is unlimited); else the
   * seconds until one would.
   */
  waitForOne(now: number): number {
    if (this.ratePerSec === 0) return 0;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.ratePerSec);
    this.at = now;
    const need = Math.min(1, this.burst);
    if (this.tokens >= need) return 0;
    return Math.max(1, Math.ceil((need - this.tokens) / this.ratePerSec));
  }
}

/** An authenticated producer: who it is and what it may do. */
export interface ProducerPrincipal {
  readonly keyId: string;
  readonly producer: string;
  /** null: every type. */
  readonly types: ReadonlySet<string> | null;
  readonly origins: ReadonlySet<string>;
  readonly bucket: TokenBucket;
}

interface Entry {
  key: ProducerKey | null;
  hash: Buffer | null;
  principal: ProducerPrincipal | null;
  fetchedAt: number;
  refreshing: Promise<void> | null;
  /**
   * The secret that matched `hash`, and its digest: a request with the same secret skips hashing
   * (SHA-256 per request was about 1.5% of the ingress's CPU). Looked up by Map (by the string's
   * hash, not a prefix comparison), and the digest is still compared in constant time.
   */
  verified: Map<string, Buffer>;
}

export interface KeyCacheOptions {
  /** A key is read again after this long (real ms): the bound on revocation. Default 1,000. */
  readonly recheckMs?: number;
  /** Rate and burst of keys that do not set their own. 0: unlimited. */
  readonly defaultRatePerSec: number;
  readonly defaultBurst: number;
  /** Unknown ids remembered at most (oldest forgotten first). Default 10,000. */
  readonly maxUnknown?: number;
  /** Real time, epoch ms (expiry is real time, whatever the pipeline clock's scale). */
  readonly now?: () => number;
}

export class ProducerKeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly unknownIds = new Set<string>();
  private readonly recheckMs: number;
  private readonly now: () => number;
  private origins: ReadonlySet<string> = new Set();
  private originsAt = Number.NEGATIVE_INFINITY;
  private originsLoading: Promise<void> | null = null;

  constructor(
    private readonly store: StateStore,
    private readonly o: KeyCacheOptions,
  ) {
    this.recheckMs = o.recheckMs ?? 1000;
    this.now = o.now ?? Date.now;
  }

  /**
   * The principal of an `Authorization: Bearer hgk_…` header. Synchronous while the key's check is
   * fresh; otherwise reads the store first. Throws Unauthorized (missing, malformed, unknown,
   * expired or revoked key).
   */
  authenticate(header: string | undefined): ProducerPrincipal | Promise<ProducerPrincipal> {
    if (header === undefined || header === '') {
      throw new Unauthorized({ credential: 'producer key', reason: 'no Authorization header' });
    }
    const space = header.indexOf(' ');
    const scheme = space > 0 ? header.slice(0, space) : '';
    const parts = scheme.toLowerCase() === 'bearer' ? KEY.exec(header.slice(space + 1).trim()) : null;
    if (parts === null) throw new Unauthorized({ credential: 'producer key', reason: 'not a producer key (hgk_…)' });
    const id = parts[1] as string;
    const secret = parts[2] as string;
    const entry = this.entries.get(id);
    if (entry !== undefined && this.now() - entry.fetchedAt < this.recheckMs) return this.check(entry, secret);
    return this.refresh(id).then((e) => this.check(e, secret));
  }

  private refresh(id: string): Promise<Entry> {
    let entry = this.entries.get(id);
    if (entry === undefined) {
      entry = {
        key: null,
        hash: null,
        principal: null,
        fetchedAt: Number.NEGATIVE_INFINITY,
        refreshing: null,
        verified: new Map(),
      };
      this.entries.set(id, entry);
    }
    const e = entry;
    e.refreshing ??= (async () => {
      try {
        const key = await this.store.getProducerKey(id);
        e.key = key;
        const hash = key === null ? null : Buffer.from(key.hash, 'hex');
        if (hash === null || e.hash === null || !hash.equals(e.hash)) e.verified.clear();
        e.hash = hash;
        e.fetchedAt = this.now();
        e.principal = key === null ? null : this.principalOf(key, e.principal);
        this.unknownIds.delete(id);
        if (key === null) this.rememberUnknown(id);
      } finally {
        e.refreshing = null;
      }
    })();
    return e.refreshing.then(() => e);
  }

  /** Keeps at most `maxUnknown` unknown ids (oldest forgotten first). */
  private rememberUnknown(id: string): void {
    this.unknownIds.add(id);
    const max = this.o.maxUnknown ?? 10_000;
    for (const oldest of this.unknownIds) {
      if (this.unknownIds.size <= max) return;
      this.unknownIds.delete(oldest);
      if (this.entries.get(oldest)?.refreshing === null) this.entries.delete(oldest);
    }
  }

  private principalOf(key: ProducerKey, previous: ProducerPrincipal | null): ProducerPrincipal {
    const rate = key.ratePerSec ?? this.o.defaultRatePerSec;
    const burst = key.burst ?? (key.ratePerSec === null ? this.o.defaultBurst : Math.max(1, key.ratePerSec * 2));
    // keep the bucket (and what it holds) while its settings stay
    const bucket =
      previous !== null && previous.bucket.ratePerSec === rate && previous.bucket.burst === burst
        ? previous.bucket
        : new TokenBucket(rate, burst, performance.now());
    return {
      keyId: key.id,
      producer: key.producer,
      types: key.types === null ? null : new Set(key.types),
      origins: new Set(key.origins),
      bucket,
    };
  }

  private check(e: Entry, secret: string): ProducerPrincipal {
    const given = e.verified.get(secret) ?? digest(secret);
    // compare even when the id is unknown, so timing does not tell which ids exist
    const stored = e.hash ?? Buffer.alloc(32);
    const same = stored.length === given.length && timingSafeEqual(stored, given);
    if (e.key === null || e.principal === null || !same) {
      throw new Unauthorized({ credential: 'producer key', reason: 'unknown key' });
    }
    if (e.verified.size === 0) e.verified.set(secret, given);
    if (e.key.revokedAt !== null) throw new Unauthorized({ credential: 'producer key', reason: 'the key was revoked' });
    if (e.key.expiresAt !== null && e.key.expiresAt <= this.now()) {
      throw new Unauthorized({ credential: 'producer key', reason: 'the key has expired' });
    }
    return e.principal;
  }

  /**
   * Whether some active key lists the origin (for CORS preflights, which carry no key). Read from
   * the store at most once per `recheckMs`; answers from the last list meanwhile.
   */
  async originKnown(origin: string): Promise<boolean> {
    if (this.now() - this.originsAt >= this.recheckMs) {
      this.originsLoading ??= (async () => {
        try {
          const now = this.now();
          const keys = await this.store.listProducerKeys();
          const set = new Set<string>();
          for (const k of keys) {
            if (k.revokedAt !== null || (k.expiresAt !== null && k.expiresAt <= now)) continue;
            for (const o of k.origins) set.add(o);
          }
          this.origins = set;
          this.originsAt = now;
        } finally {
          this.originsLoading = null;
        }
      })();
      await this.originsLoading;
    }
    return this.origins.has(origin);
  }
}
