/**
 * The credentials `hourglass dev` creates on its first start, so a newcomer can send and look at
 * once: a producer key (producer `dev`, every type, no rate limit) in `<data-dir>/dev-key`, and an
 * admin registry token (for the dashboard, the registry and the other reads) in
 * `<data-dir>/dev-token`, both mode 0600 and reused on later starts while the state store knows
 * them as active. `hourglass send` reads the key from there when given none.
 */
import { readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { StateStore } from '../core/ports/state-store.js';
import { createToken } from '../orchestrator/tokens.js';
import { createProducerKey } from '../services/ingress/producer-keys.js';

export const DEV_KEY_FILE = 'dev-key';
export const DEV_TOKEN_FILE = 'dev-token';
const KEY_ID = /^hgk_([0-9a-f]{12})_/;
const TOKEN_ID = /^hgt_([0-9a-f]{12})_/;

/** The dev key of a data dir, or null when there is none. */
export function readDevKey(dataDir: string): string | null {
  return readSecret(join(dataDir, DEV_KEY_FILE));
}

/** The dev admin token of a data dir, or null when there is none. */
export function readDevToken(dataDir: string): string | null {
  return readSecret(join(dataDir, DEV_TOKEN_FILE));
}

function readSecret(path: string): string | null {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text === '' ? null : text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The data dir's dev key: the saved one while it is active, else a new one. */
export async function ensureDevKey(dataDir: string, store: StateStore): Promise<{ key: string; created: boolean }> {
  const saved = readDevKey(dataDir);
  const id = saved === null ? null : KEY_ID.exec(saved)?.[1];
  if (saved !== null && id !== undefined && id !== null) {
    const record = await store.getProducerKey(id);
    if (record !== null && record.revokedAt === null && (record.expiresAt === null || record.expiresAt > Date.now())) {
      return { key: saved, created: false };
    }
  }
  const { key } = await createProducerKey(
    store,
    { producer: 'dev', types: null, ratePerSec: 0, burst: null, createdBy: 'hourglass dev' },
    Date.now(),
  );
  await writeSecret(join(dataDir, DEV_KEY_FILE), key);
  return { key, created: true };
}

/** The data dir's dev admin token: the saved one while it is active, else a new one. */
export async function ensureDevToken(dataDir: string, store: StateStore): Promise<{ token: string; created: boolean }> {
  const saved = readDevToken(dataDir);
  const id = saved === null ? null : TOKEN_ID.exec(saved)?.[1];
  if (saved !== null && id !== undefined && id !== null) {
    const record = await store.getToken(id);
    if (record !== null && record.revokedAt === null) return { token: saved, created: false };
  }
  const { token } = await createToken(store, 'dev', 'admin', Date.now());
  await writeSecret(join(dataDir, DEV_TOKEN_FILE), token);
  return { token, created: true };
}

/** Writes a secret durably, readable by this user only. */
async function writeSecret(path: string, secret: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(`${secret}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
