/**
 * Rules of a shared deployment that are not about one type's validity but about who may ask for
 * what: how many active types an owner may have (`registry.maxActiveTypesPerOwner`), and who may
 * set tier `high` (it pages at night).
 *
 * - Owner tokens may not register past the quota (403 `quota_exceeded`) nor set or raise a tier to
 *   `high` (403 `forbidden`, rule `tier_high_needs_admin`). Admin tokens may do both.
 * - Folder applies (`hourglass types plan|apply`, and the start of `hourglass dev` and
 *   `hourglass orchestrator`) run as a local admin: any tier, but a plan that would take an owner
 *   past the quota is refused (`quota_exceeded` in its changes) unless the operator allows it
 *   (`types apply --allow-over-quota`).
 *
 * The quota is checked when the change is made: two registrations for one owner racing at its
 * last free place may both pass (the count may then exceed the limit by the number racing).
 */
import { DEFAULTS } from '../core/defaults.js';
import { Forbidden, QuotaExceeded } from '../core/errors.js';
import type { Tier, TypeStatus } from '../core/event-types.js';
import type { RegisteredType, StateStore } from '../core/ports/state-store.js';
import type { PlannedChange } from './plan.js';
import type { Actor } from './registry.js';

export interface RegistryLimits {
  /** Active event types per owner (admins may exceed it). */
  readonly maxActiveTypesPerOwner: number;
}

export const DEFAULT_REGISTRY_LIMITS: RegistryLimits = DEFAULTS.registry;

/** Throws Forbidden when a non-admin sets `tier` to high (from `previous`, or on a new type: null). */
export function assertTierAllowed(actor: Actor, type: string, tier: Tier, previous: Tier | null, action: string): void {
  if (actor.role === 'admin' || tier !== 'high' || previous === 'high') return;
  throw new Forbidden({
    owner: actor.owner ?? '?',
    type: `${type} at tier high`,
    action,
    reason: 'rule tier_high_needs_admin: only an admin token may set tier high, which pages at night',
  });
}

/** Active types per owner. */
function activeByOwner(types: readonly Pick<RegisteredType, 'owner' | 'status'>[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of types) if (t.status === 'active') counts.set(t.owner, (counts.get(t.owner) ?? 0) + 1);
  return counts;
}

/** Throws QuotaExceeded when a non-admin's new active type would take `owner` past the limit. */
export async function assertWithinQuota(
  store: StateStore,
  actor: Actor,
  owner: string,
  type: string,
  limits: RegistryLimits,
): Promise<void> {
  if (actor.role === 'admin') return;
  const count = activeByOwner(await store.listTypes()).get(owner) ?? 0;
  if (count >= limits.maxActiveTypesPerOwner) {
    throw new QuotaExceeded({ owner, type, count, limit: limits.maxActiveTypesPerOwner });
  }
}

/**
 * A folder plan with the quota applied: when the plan would leave an owner with more active types
 * than the limit, and more than it has now, each change that adds an active type to that owner
 * is refused (the plan is all or nothing, so nothing is applied).
 */
export function withQuota(
  plan: readonly PlannedChange[],
  registered: readonly RegisteredType[],
  limits: RegistryLimits,
): PlannedChange[] {
  const before = new Map<string, { owner: string; status: TypeStatus }>(
    registered.map((t) => [t.name, { owner: t.owner, status: t.status }]),
  );
  const after = new Map(before);
  for (const p of plan) {
    if (p.write !== undefined)
      after.set(p.type, { owner: p.write.definition.owner, status: p.write.definition.status });
  }
  const countBefore = activeByOwner([...before.values()]);
  const countAfter = activeByOwner([...after.values()]);
  const limit = limits.maxActiveTypesPerOwner;
  return plan.map((p) => {
    if (p.write === undefined || p.action === 'refused') return p;
    const { owner, status } = p.write.definition;
    const was = before.get(p.type);
    const adds = status === 'active' && (was === undefined || was.status !== 'active' || was.owner !== owner);
    const n = countAfter.get(owner) ?? 0;
    if (!adds || n <= limit || n <= (countBefore.get(owner) ?? 0)) return p;
    const message =
      `quota_exceeded: owner ${owner} would have ${n} active event types, the limit is ${limit} ` +
      '(registry.maxActiveTypesPerOwner; an admin may exceed it with --allow-over-quota)';
    return {
      type: p.type,
      action: 'refused',
      changes: [message],
      refusals: [{ path: 'owner', rule: 'quota_exceeded', message }],
    };
  });
}
