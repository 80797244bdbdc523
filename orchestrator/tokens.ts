/**
 * Registry API tokens: `hgt_<id>_<secret>`. The id finds the token; only the SHA-256 of the secret
 * is stored, and it is compared in constant time. A token is shown once, when it is created.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Unauthorized } from '../core/errors.js';
import type { ApiToken, StateStore } from '../core/ports/state-store.js';

const TOKEN = /^hgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Creates a token for `owner` and returns it (the only time its secret is seen). */
export async function createToken(
  store: StateStore,
  owner: string,
  role: ApiToken['role'],
  now: number,
): Promise<{ token: string; id: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(owner)) {
    throw new Error(`owner must be letters, digits, ".", "_" or "-" (got ${JSON.stringify(owner)})`);
  }
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  await store.addToken({ id, owner, role, hash: digest(secret).toString('hex'), createdAt: now, revokedAt: null });
  return { token: `hgt_${id}_${secret}`, id };
}

/** The token an `Authorization: Bearer …` header carries; throws Unauthorized otherwise. */
export async function authenticate(store: StateStore, header: string | undefined): Promise<ApiToken> {
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
  if (token.revokedAt !== null) throw new Unauthorized({ reason: 'the token was revoked' });
  return token;
}
