/**
 * Registry API tokens: `hgt_<id>_<secret>`. The id finds the token; only the SHA-256 of the secret
 * is stored, and it is compared in constant time. A token is shown once, when it is created.
 *
 * A token has a role (`owner`: its owner's types; `admin`: every type), a scope (`write`: reads
 * and changes; `read`: reads only, every change is 403 forbidden) and may expire (401 once it
 * has). Expiry and last use are real time, whatever the pipeline's time scale (like producer
 * keys); the last use is recorded at most once a minute per token.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Forbidden, Unauthorized } from '../core/errors.js';
import type { ApiToken, StateStore } from '../core/ports/state-store.js';

const TOKEN = /^hgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** A token's last use is written at most this often (real ms), to keep the store quiet. */
export const TOKEN_USE_INTERVAL_MS = 60_000;

/** What a request does with its token: only read, or change something. */
export type TokenAccess = 'read' | 'write';

/**
 * What authentication reads of a request: its `Authorization` header, and where to log what
 * does not fail the request (a Fastify request has both).
 */
export interface Credentials {
  readonly headers: { readonly authorization?: string | undefined };
  readonly log: { warn(obj: object, msg: string): void };
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export interface TokenOptions {
  /** `read`: the token may only read. Default `write`. */
  readonly scope?: ApiToken['scope'];
  /** When it stops working (real time, epoch ms); null or absent: never. */
  readonly expiresAt?: number | null;
}

/** Creates a token for `owner` and returns it (the only time its secret is seen). */
export async function createToken(
  store: StateStore,
  owner: string,
  role: ApiToken['role'],
  now: number,
  options: TokenOptions = {},
): Promise<{ token: string; id: string; record: ApiToken }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(owner)) {
    throw new Error(`owner must be letters, digits, ".", "_" or "-" (got ${JSON.stringify(owner)})`);
  }
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record: ApiToken = {
    id,
    owner,
    role,
    scope: options.scope ?? 'write',
    hash: digest(secret).toString('hex'),
    createdAt: now,
    expiresAt: options.expiresAt ?? null,
    lastUsedAt: null,
    revokedAt: null,
  };
  await store.addToken(record);
  return { token: `hgt_${id}_${secret}`, id, record };
}

/** `active`, `expired` or `revoked`, at real time `now`. */
export function tokenStatus(token: ApiToken, now: number): 'active' | 'expired' | 'revoked' {
  if (token.revokedAt !== null) return 'revoked';
  if (token.expiresAt !== null && token.expiresAt <= now) return 'expired';
  return 'active';
}

/**
 * The token the request's `Authorization: Bearer …` header carries. Throws Unauthorized (none,
 * unknown, revoked, expired) and, for `write` access with a read-only token, Forbidden. Records
 * the use; a failure to record it is logged (as a warning on the request's log), and the request
 * goes on.
 */
export async function authenticate(
  store: StateStore,
  request: Credentials,
  access: TokenAccess = 'write',
): Promise<ApiToken> {
  const header = request.headers.authorization;
  if (header === undefined || header === '') throw new Unauthorized({ reason: 'no Authorization header' });
  const m = /^Bearer (\S+)$/i.exec(header);
  const parts = m ? TOKEN.exec(m[1] as string) : null;
  if (parts === null) throw new Unauthorized({ reason: 'not a registry token' });
  const token = await store.getToken(parts[1] as string);
  const given = digest(parts[2] as string);
  // compare even when the id is unknown, so timing does not tell which ids exist
  const stored = token ? Buffer.from(token.hash, 'hex') : Buffer.alloc(32);
  const same = stored.length === given.length && timingSafeEqual(stored, given);
  if (token === null || !same) throw new Unauthorized({ reason: 'unknown token' });
  const now = Date.now();
  const status = tokenStatus(token, now);
  if (status === 'revoked') throw new Unauthorized({ reason: 'the token was revoked' });
  if (status === 'expired') throw new Unauthorized({ reason: 'the token has expired' });
  if (token.lastUsedAt === null || token.lastUsedAt <= now - TOKEN_USE_INTERVAL_MS) {
    // bookkeeping: a failure to record it does not fail the request
    try {
      await store.touchToken(token.id, now, TOKEN_USE_INTERVAL_MS);
    } catch (err) {
      request.log.warn({ err, token: token.id }, "recording the token's last use failed");
    }
  }
  if (access === 'write' && token.scope === 'read') {
    throw new Forbidden({
      owner: token.owner,
      type: 'anything',
      action: 'change',
      reason: `token ${token.id} is read-only (scope read): it may only read`,
    });
  }
  return token;
}
