/**
 * Who may read what: every read that may show event data or a team's setup (registry, dashboard,
 * hours, alerts, dead letters) needs a registry token (`Authorization: Bearer hgt_…`). An admin
 * token reads every type; an owner token reads only its owner's types (403 for another's, and
 * lists leave them out). A read-only token (scope `read`) reads the same, and changes nothing.
 */
import { Forbidden } from '../core/errors.js';
import type { StateStore } from '../core/ports/state-store.js';
import { authenticate, type Credentials, type TokenAccess } from './tokens.js';

export interface Reader {
  readonly owner: string;
  readonly admin: boolean;
}

/**
 * The reader of a request's `Authorization` header; throws Unauthorized. A route that changes
 * something asks for `write` access: a read-only token then gets Forbidden.
 */
export async function readerOf(store: StateStore, request: Credentials, access: TokenAccess = 'read'): Promise<Reader> {
  const token = await authenticate(store, request, access);
  return { owner: token.owner, admin: token.role === 'admin' };
}

export function canRead(reader: Reader, type: { readonly owner: string }): boolean {
  return reader.admin || reader.owner === type.owner;
}

/** Throws Forbidden unless the reader may read the type. */
export function assertCanRead(reader: Reader, type: { readonly name: string; readonly owner: string }): void {
  if (!canRead(reader, type)) throw new Forbidden({ owner: reader.owner, type: type.name, action: 'read' });
}
